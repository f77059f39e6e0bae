"""The `grader` command line: parses arguments and forwards to one module per verb."""

from __future__ import annotations

import argparse
import sys

from grader import data


def _data_main(args: argparse.Namespace) -> int:
    if args.action == "fetch":
        path = data.fetch_mnist()
        print(f"MNIST is at {path}")
        return 0
    name = args.dataset or data.default_name()
    dataset = data.load(name)
    if args.action == "check":
        print(f"dataset ok: {dataset.name} from {dataset.source}")
    else:
        print(f"dataset:    {dataset.name}")
        print(f"source:     {dataset.source}")
        for split in ("train", "validation", "test"):
            x = getattr(dataset, f"x_{split}")
            y = getattr(dataset, f"y_{split}")
            print(f"{split + ':':11} images {x.shape} {x.dtype}, labels {y.shape}, "
                  f"classes {sorted(set(y.tolist()))}")
    return 0


def _demo_main(args: argparse.Namespace) -> int:
    from grader import demo

    return demo.main(dataset=args.dataset, quick=not args.full)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grader",
        description="Release, check, submit and grade the neural-network assignments.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    data_parser = verbs.add_parser(
        "data", help="check, describe or fetch the dataset",
        description="Check, describe or fetch the dataset the assignments use. "
        "Example: grader data info --dataset fashion_mnist",
    )
    data_parser.add_argument("action", choices=("check", "info", "fetch"),
                             help="check: load and verify; info: print the splits; "
                             "fetch: download MNIST through Keras (needs the network)")
    data_parser.add_argument("--dataset", choices=data.NAMES,
                             help="default: $GRADER_DATASET, else MNIST if cached, "
                             "else Fashion-MNIST")
    data_parser.set_defaults(run=_data_main)

    demo_parser = verbs.add_parser(
        "demo", help="run every reference solution briefly and print a table",
        description="Train every reference solution briefly on the dataset and print "
        "artifact, dataset, epochs, accuracy and seconds. Example: grader demo",
    )
    demo_parser.add_argument("--dataset", choices=data.NAMES)
    demo_parser.add_argument("--full", action="store_true",
                             help="the lecture's full settings instead of quick runs")
    demo_parser.set_defaults(run=_demo_main)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except data.DatasetError as error:
        print(f"grader: {error}", file=sys.stderr)
        return 2
