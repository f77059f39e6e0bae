"""The `grader` command line: parses arguments and forwards to one module per verb."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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

    return demo.main(dataset=args.dataset, quick=not args.full, references=args.references,
                     out=args.out)


def _release_main(args: argparse.Namespace) -> int:
    from grader.release import build

    return build.main(assignment=args.assignment, out=args.out)


def _check_main(args: argparse.Namespace) -> int:
    from grader import check

    return check.main(folder=args.folder, dataset=args.dataset)


def _submit_main(args: argparse.Namespace) -> int:
    from grader import submit

    return submit.main(folder=args.folder, student_id=args.student_id, out=args.out,
                       skip_checks=args.no_check)


def _autograde_main(args: argparse.Namespace) -> int:
    from grader import autograde

    return autograde.main(assignment=args.assignment, submissions=args.submissions,
                          out=args.out, dataset=args.dataset)


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
        "demo", help="an instructor's day end to end: release, a sample class, autograde",
        description="Release tf_basics and mlp_numpy, build a sample class (the reference, "
        "the bare skeleton, planted bugs, correct variants), grade it and print the scores. "
        "With --references: train every reference briefly and print a table instead. "
        "Example: grader demo --out demo-out",
    )
    demo_parser.add_argument("--dataset", choices=data.NAMES)
    demo_parser.add_argument("--out", type=Path, default=Path("demo-out"),
                             help="where releases, the class and results go (default: demo-out)")
    demo_parser.add_argument("--references", action="store_true",
                             help="train every reference solution and print a table")
    demo_parser.add_argument("--full", action="store_true",
                             help="with --references: the lecture's settings, not quick runs")
    demo_parser.set_defaults(run=_demo_main)

    release = verbs.add_parser(
        "release", help="strip the reference into the student folder (instructor)",
        description="Strip the reference solution into a student skeleton, copy the public "
        "tests, render the instructions, and refuse unless the reference scores full marks "
        "and the bare skeleton scores zero. Example: grader release mlp_numpy --out release",
    )
    release.add_argument("assignment", help="assignment id (a folder in assignments/)")
    release.add_argument("--out", type=Path, default=Path("release"),
                         help="parent folder of the release (default: ./release)")
    release.set_defaults(run=_release_main)

    check = verbs.add_parser(
        "check", help="run the public tests on your files (student)",
        description="Run the public tests of a released assignment on the files in the "
        "folder. Example: cd release/mlp_numpy && grader check",
    )
    check.add_argument("folder", nargs="?", type=Path, default=Path.cwd(),
                       help="the released assignment folder (default: the current folder)")
    check.add_argument("--dataset", choices=data.NAMES)
    check.set_defaults(run=_check_main)

    submit = verbs.add_parser(
        "submit", help="pack your files and a manifest into a zip (student)",
        description="Pack the assignment's files with a manifest (student id, file hashes, "
        "time) into a zip to hand in. Example: grader submit --student-id 2023123456",
    )
    submit.add_argument("folder", nargs="?", type=Path, default=Path.cwd())
    submit.add_argument("--student-id", required=True, help="your student number or login")
    submit.add_argument("--out", type=Path, help="the zip to write "
                        "(default: <folder>/<assignment>-<student id>.zip)")
    submit.add_argument("--no-check", action="store_true",
                        help="do not run the public checks before packing")
    submit.set_defaults(run=_submit_main)

    autograde = verbs.add_parser(
        "autograde", help="grade submissions with the hidden tests (instructor)",
        description="Grade one submission (folder, zip, .py or .ipynb) or a class folder "
        "with the hidden suite, each in its own sandbox, and write results.json per student. "
        "Example: grader autograde mlp_numpy submissions/ --out graded/mlp_numpy",
    )
    autograde.add_argument("assignment", help="assignment id (a folder in assignments/)")
    autograde.add_argument("submissions", type=Path,
                           help="a submission, or a folder of submissions (an LMS download)")
    autograde.add_argument("--out", type=Path, help="default: graded/<assignment>")
    autograde.add_argument("--dataset", choices=data.NAMES)
    autograde.set_defaults(run=_autograde_main)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (data.DatasetError, *_user_errors()) as error:
        print(f"grader: {error}", file=sys.stderr)
        return 2


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors that are the user's to fix: printed as one message, never a traceback."""
    from grader.config import ConfigError
    from grader.release.build import ReleaseRefused
    from grader.release.strip import MarkerError
    from grader.submit import SubmitRefused

    return (ConfigError, ReleaseRefused, MarkerError, SubmitRefused, FileNotFoundError)
