"""Commands about the zoo and its shipped weights: ``models``, ``layers`` and (maintainers) ``ship``."""

import json

from eipviz.cli.options import existing_store, print_csv, print_table, stored_run_id


def cmd_models(args) -> int:
    from eipviz.tables import zoo_overview

    print_table(zoo_overview())
    return 0


def cmd_layers(args) -> int:
    from eipviz.tables import layer_table

    rows = layer_table(args.name)
    (print_csv if args.format == "csv" else print_table)(rows)
    return 0


def cmd_ship(args) -> int:
    from eipviz.shipping import ship_predictions, ship_run

    if args.predictions:
        print(json.dumps({name: ship_predictions(name) for name in args.predictions}, indent=2))
        return 0
    entry = ship_run(existing_store(args.runs_dir), stored_run_id(args.run, "shipped"), float16=args.float16)
    print(json.dumps({k: entry[k] for k in ("file", "sha256", "storage", "test_accuracy", "epochs", "device")},
                     indent=2))
    return 0


def cmd_recipes(args) -> int:
    from eipviz.tables import recipe_table

    (print_csv if args.format == "csv" else print_table)(recipe_table(args.name))
    return 0


def register(sub) -> None:
    p = sub.add_parser("models", help="list the zoo: params built vs documented, documented accuracy")
    p.set_defaults(handler=cmd_models)

    p = sub.add_parser("layers", aliases=["summary"], help="per-layer receptive-field table of a zoo model")
    p.add_argument("name")
    p.add_argument("--format", choices=("table", "csv"), default="table")
    p.set_defaults(handler=cmd_layers)

    p = sub.add_parser("recipes", help="the Models page's recipes of a zoo model: documented and fast, side by side")
    p.add_argument("name")
    p.add_argument("--format", choices=("table", "csv"), default="table")
    p.set_defaults(handler=cmd_recipes)

    p = sub.add_parser("ship", help="(maintainers) copy a run's best checkpoint into weights/ and record it")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", help="the run whose best checkpoint to ship")
    which.add_argument("--predictions", nargs="+", metavar="MODEL",
                       help="only store the test-set predictions of these already shipped models")
    p.add_argument("--runs-dir")
    p.add_argument("--float16", action="store_true",
                   help="store the weights as float16 (half the file; they load as float32)")
    p.set_defaults(handler=cmd_ship)
