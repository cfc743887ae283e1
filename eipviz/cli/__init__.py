"""``python -m eipviz``: the same library calls the pages make, from a shell.

Each command imports what it needs inside its handler: ``runs``, ``cancel``,
``scheduler``, ``curves``, ``rename``, ``delete`` and ``import-log`` (unless it
stores the run) never load Keras, so they start in a fraction of a second.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off the CLI

from eipviz.cli import compare, curves, explain, models, runs  # noqa: E402  (after the log level above)
from eipviz.errors import EipvizError  # noqa: E402
from eipviz.quiet import check_keras_settings, import_keras_quietly  # noqa: E402
from eipviz.training.stop import StopFlag  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eipviz", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for area in (models, runs, curves, explain, compare):
        area.register(sub)
    return parser


# Commands that never touch Keras start fast and import nothing heavy.
_LIGHT_COMMANDS = ("import-log", "runs", "cancel", "scheduler", "curves", "rename", "delete")


def needs_keras(args) -> bool:
    """Whether a parsed command imports Keras first: ``train`` only as a worker (``--run-id``); submitting
    or resuming a run only queues it (4-5 s of CPU less)."""
    if args.command == "train":
        return bool(args.run_id)
    return args.command not in _LIGHT_COMMANDS


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "train" and args.run_id:
        # A worker: it catches a Stop before importing Keras (seconds), so a Stop pressed as it starts still
        # cancels the run; Python's default SIGTERM handler would kill it, and the run would be reaped as failed.
        args.stop = StopFlag().install()
    try:
        if needs_keras(args):
            import_keras_quietly()  # checks the settings first
        else:
            check_keras_settings()  # a command that starts a worker without importing Keras here
        return args.handler(args)
    except EipvizError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `... | head` closed its end: nothing more to say, and nowhere to say it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own flush at exit would fail too
        return 1
    except OSError as error:  # a file that cannot be read or written: the system's words, not a traceback
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
