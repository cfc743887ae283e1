"""``python -m eipviz``: the same library calls the pages make, from a shell."""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off the CLI

from eipviz.errors import EipvizError


def _print_table(rows: list[dict], out=sys.stdout) -> None:
    """Print dict rows as an aligned text table."""
    if not rows:
        print("(nothing)", file=out)
        return
    headers = list(rows[0])
    cells = [[("" if row[h] is None else str(row[h])) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)), file=out)
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)), file=out)


def _print_csv(rows: list[dict], out=sys.stdout) -> None:
    import csv

    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def cmd_models(args) -> int:
    from eipviz.summary import zoo_overview

    _print_table(zoo_overview())
    return 0


def cmd_summary(args) -> int:
    from eipviz.summary import layer_table

    rows = layer_table(args.name)
    (_print_csv if args.format == "csv" else _print_table)(rows)
    return 0


COMMANDS = {}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eipviz", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the zoo: params built vs documented, documented accuracy")
    p.set_defaults(handler=cmd_models)

    p = sub.add_parser("summary", help="per-layer receptive-field table of a zoo model")
    p.add_argument("name")
    p.add_argument("--format", choices=("table", "csv"), default="table")
    p.set_defaults(handler=cmd_summary)

    for register in COMMANDS.values():
        register(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except EipvizError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
