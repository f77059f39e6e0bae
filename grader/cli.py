"""The `grader` command line: parses arguments and forwards to one module per verb."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from grader import data
from grader.argparse_i18n import HelpFormatter, argparse_speaks
from grader.i18n import Domain, lazy
from grader.ids import printable

# Help is built before --lang is read: it speaks $GRADER_LANG (or the kit's, see main).
_, _n = Domain("cli").functions()

INTERRUPTED_EXIT = 130  # the shell's status for a command stopped by Ctrl-C (128 + SIGINT)


def _init_main(args: argparse.Namespace) -> int:
    from grader import scaffold

    return scaffold.init_main(folder=args.folder, source=args.source)


def _new_main(args: argparse.Namespace) -> int:
    from grader import scaffold

    return scaffold.new_main(assignment=args.assignment, title=args.title)


def _data_main(args: argparse.Namespace) -> int:
    if args.action == "fetch":
        if args.dataset == data.FASHION_MNIST:
            raise data.DatasetError(f"Fashion-MNIST is not downloaded by the grader: "
                                    f"{data.HOW_TO_GET_FASHION}.")
        path = data.fetch_mnist(args.origin or data.MNIST_URL)
        print(_("MNIST is at {path}", path=path))
        return 0
    if args.origin:
        raise data.DatasetError(f"--origin is for `grader data fetch`, not `grader data "
                                f"{args.action}`; to use a copy, run `grader data fetch "
                                f"--origin {args.origin}` first.")
    name = args.dataset or data.default_name()
    dataset = data.load(name)
    if args.action == "check":
        print(_("dataset ok: {name} from {source}", name=dataset.name, source=dataset.source))
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
                     out=args.out, assignments=args.assignments, workers=args.workers)


def _release_main(args: argparse.Namespace) -> int:
    from grader.release import build

    return build.main(assignment=args.assignment, out=args.out, audit=args.audit,
                      force=args.force)


def _audit_main(args: argparse.Namespace) -> int:
    from grader import audit

    return audit.main(assignment=args.assignment, only=args.only)


def _check_main(args: argparse.Namespace) -> int:
    from grader.kit import check

    return check.main(folder=args.folder, dataset=args.dataset)


def _submit_main(args: argparse.Namespace) -> int:
    from grader.kit import submit

    return submit.main(folder=args.folder, student_id=args.student_id, out=args.out,
                       skip_checks=args.no_check)


def _autograde_main(args: argparse.Namespace) -> int:
    from grader import autograde

    return autograde.main(assignment=args.assignment, submissions=args.submissions,
                          out=args.out, dataset=args.dataset, db=args.db, workers=args.workers,
                          engine=args.engine, address=args.address, force=args.force,
                          gpus_per_submission=args.gpus_per_submission,
                          submitted_at=args.submitted_at)


def _worker_main(args: argparse.Namespace) -> int:
    from grader.service import worker

    return worker.main(db=args.db, course=args.course, engine=args.engine,
                       concurrency=args.concurrency, lease=args.lease, address=args.address)


def _positive_int(text: str) -> int:
    """A count of at least 1 (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(_("expected a whole number of at least 1. "
                                           "Received: {text}", text=repr(text)))
    return value


def _lease_seconds(text: str) -> float:
    """`--lease`: seconds, between 1 and a day (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 1.0 <= value <= 86400.0:  # NaN fails both
        raise argparse.ArgumentTypeError(_("expected seconds between 1 and 86400. "
                                           "Received: {text}", text=repr(text)))
    return value


def _aware_time(text: str):
    """`--submitted-at`: an ISO 8601 time with a UTC offset (argparse type)."""
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(_(
            "{text} is not an ISO 8601 time; expected e.g. {example}", text=repr(text),
            example="2026-12-01T23:59+08:00")) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(_(
            "{text} has no UTC offset; expected e.g. {example}", text=repr(text),
            example="2026-12-01T23:59+08:00"))
    return moment


def _student_id(text: str) -> str:
    """`--student-id`: validated by `grader.ids.validate_id` (argparse type)."""
    from grader.ids import InvalidId, validate_id

    try:
        return validate_id(text)
    except InvalidId as exc:
        raise argparse.ArgumentTypeError(_("{error}; expected your student number or login, "
                                           "e.g. 2023123456", error=exc)) from None


def _feedback_main(args: argparse.Namespace) -> int:
    from grader import feedback

    return feedback.main(assignment=args.assignment, db=args.db, out=args.out,
                         results=args.results)


def _export_main(args: argparse.Namespace) -> int:
    from grader import export

    return export.main(assignment=args.assignment, format=args.format, out=args.out, db=args.db,
                       columns=args.columns, preset=args.preset, student=args.student,
                       encoding=args.encoding)


def _calibrate_main(args: argparse.Namespace) -> int:
    from grader import calibration_cli

    return calibration_cli.main(assignment=args.assignment, dataset=args.dataset,
                                device=args.device, seeds=args.seeds, tests=args.tests)


def _roster_main(args: argparse.Namespace) -> int:
    from grader.gradebook import roster

    if args.issue_codes:
        from grader.service.auth import issue_codes_main

        if args.roster is not None:
            roster.main(roster=args.roster, db=args.db, columns=args.columns)
        return issue_codes_main(db=args.db, out=args.out)
    if args.roster is None:
        print(_("grader: roster needs a ROSTER.csv, or --issue-codes"), file=sys.stderr)
        return 2
    return roster.main(roster=args.roster, db=args.db, columns=args.columns)


def _serve_main(args: argparse.Namespace) -> int:
    from grader.service.app import serve_main

    return serve_main(host=args.host, port=args.port, db=args.db, workers=args.workers,
                      https_only=args.https_only, demo=args.demo)


def _user_main(args: argparse.Namespace) -> int:
    from grader.service.auth import user_main

    return user_main(name=args.name, role=args.role, password_stdin=args.password_stdin,
                     db=args.db)


def _override_main(args: argparse.Namespace) -> int:
    from grader.gradebook import override

    if (args.points is None) != args.clear:  # neither or both: never clear by accident
        print(_("grader override: give the POINTS to set (with --reason) or --clear to "
                "remove the override; received: points={points}, --clear={clear}",
                points=args.points, clear=args.clear), file=sys.stderr)
        return 2
    return override.main(assignment=args.assignment, student=args.student,
                         points=None if args.clear else args.points, reason=args.reason,
                         db=args.db)


def _extend_main(args: argparse.Namespace) -> int:
    from grader.gradebook import override

    return override.extend_main(assignment=args.assignment, student=args.student,
                                days=args.days, reason=args.reason, db=args.db)


COURSE_HELP = lazy("the course folder (holding course.toml); default: $GRADER_COURSE, else the "
            "first folder from the current one upwards that holds a course.toml")
DB_HELP = lazy("the gradebook: a SQLAlchemy URL (postgresql://...) or a SQLite file "
               "(default: gradebook.db in the course folder)")


LANG_HELP = lazy("the language of messages and reports: zh_CN or en (default: $GRADER_LANG, "
                 "else the course's `language`, in a released folder the course's as "
                 "released)")


class Parser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` that takes no abbreviations and errors in its own verb.

    `--worker 1` is an error, not `--workers 1` (``allow_abbrev=False``), and an unknown
    option after a verb shows that verb's usage, not the top-level one (argparse leaves
    a sub-command's unknown arguments to the top-level parser). Every verb's parser is
    of this class (``parser_class`` of the sub-commands), including verbs added later.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", HelpFormatter)  # Chinese wrapped by its width
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):  # noqa: ANN001 - argparse's own
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(unrecognized(extras, self._option_string_actions))
        return namespace, extras


def unrecognized(extras: list[str], known: Iterable[str]) -> str:
    """argparse's message for unknown arguments, with the closest known option named."""
    message = _("unrecognized arguments: {arguments}", arguments=" ".join(extras))
    for extra in extras:
        close = difflib.get_close_matches(extra.split("=", 1)[0],
                                          [o for o in known if o.startswith("--")], n=1)
        if extra.startswith("-") and close:
            return _("{message} (did you mean {option}?)", message=message, option=close[0])
    return message


def _add_assignment_and_student(parser: argparse.ArgumentParser) -> None:
    """The two positional arguments of a verb about one student's grade of one assignment."""
    parser.add_argument("assignment", help=_("assignment id (a folder in assignments/)"))
    parser.add_argument("student", help=_("the student's id"))


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="grader",
        description=_("Release, check, submit and grade the neural-network assignments."),
        epilog=_("Exit status: 0 done; 1 `check`: a public test failed, `audit`: an unfair "
                 "matrix; 2 bad arguments or input (the message says what to change); 3 "
                 "`autograde`: some submissions had problems (listed per submission); 130 "
                 "stopped by Ctrl-C."),
    )
    parser.add_argument("--course", type=Path, metavar="DIR", help=_(COURSE_HELP))
    parser.add_argument("--lang", type=_language, metavar="LANG", help=_(LANG_HELP))
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB",
                                  parser_class=Parser)

    init = verbs.add_parser(
        "init", help=_("start a course of your own: a copy of this lecture's course (instructor)"),
        description=_("Copy the lecture's course (course.toml, assignments/, reference/, "
                      "autograde_tests/) into DIR, a new or empty folder; edit course.toml, "
                      "then work inside DIR. Example: {example}",
                      example="grader init ~/nn-course && cd ~/nn-course"),
    )
    init.add_argument("folder", type=Path, metavar="DIR", help=_("the new course folder"))
    init.add_argument("--from", dest="source", type=Path, metavar="COURSE",
                      help=_("copy this course folder instead (default: the lecture's "
                             "course when the tool runs from its checkout, else an empty "
                             "course)"))
    init.set_defaults(run=_init_main)

    new = verbs.add_parser(
        "new", help=_("scaffold an assignment in the current course (instructor)"),
        description=_("Write assignments/ID/assignment.toml and README.md, reference/ID.py "
                      "with solution markers, and autograde_tests/ID/test_public.py and "
                      "test_hidden.py: an assignment that releases as created (the reference "
                      "scores full marks, the skeleton zero). Example: {example}",
                      example="grader new perceptron && grader release perceptron"),
    )
    new.add_argument("assignment", metavar="ID",
                     help=_("the new assignment's id: lower case letters, digits, "
                            "underscores"))
    new.add_argument("--title", help=_("shown to students (default: the id)"))
    new.set_defaults(run=_new_main)

    data_parser = verbs.add_parser(
        "data", help=_("check, describe or fetch the dataset"),
        description=_("Check, describe or fetch the dataset the assignments use. "
                      "Example: {example}", example="grader data info --dataset fashion_mnist"),
    )
    data_parser.add_argument("action", choices=("check", "info", "fetch"),
                             help=_("check: load and verify; info: print the splits; "
                                    "fetch: download MNIST into Keras's cache (needs the "
                                    "network, or --origin)"))
    data_parser.add_argument("--dataset", choices=data.NAMES,
                             help=_("default: $GRADER_DATASET, else MNIST if cached, "
                                    "else Fashion-MNIST"))
    data_parser.add_argument("--origin", metavar="URL",
                             help=_("fetch: where to download mnist.npz from (default: "
                                    "Keras's URL); a mirror, or file:///path/to/mnist.npz for a "
                                    "copy"))
    data_parser.set_defaults(run=_data_main)

    demo_parser = verbs.add_parser(
        "demo", help=_("an instructor's day end to end: release, a sample class, grading, reports"),
        description=_("For every assignment: release it, build a sample class (the "
                      "reference, the bare skeleton, planted bugs, correct variants), grade it "
                      "in parallel into a gradebook and write the reports and the class "
                      "summary. With --references: train every reference briefly and print a "
                      "table instead. Example: {example}", example="grader demo --out demo-out"),
    )
    demo_parser.add_argument("--dataset", choices=data.NAMES,
                             help=_("the dataset (default: as `grader data` chooses)"))
    demo_parser.add_argument("--out", type=Path, default=Path("demo-out"),
                             help=_("where releases, the class and results go (default: "
                                    "demo-out)"))
    demo_parser.add_argument("--assignments", nargs="*",
                             help=_("only these assignments (default: every one with a "
                                    "suite)"))
    demo_parser.add_argument("--workers", type=int, help=_("parallel grader workers"))
    demo_parser.add_argument("--references", action="store_true",
                             help=_("train every reference solution and print a table"))
    demo_parser.add_argument("--full", action="store_true",
                             help=_("with --references: the lecture's settings, not quick "
                                    "runs"))
    demo_parser.set_defaults(run=_demo_main)

    release = verbs.add_parser(
        "release", help=_("strip the reference into the student folder (instructor)"),
        description=_("Strip the reference solution into a student skeleton, copy the "
                      "public tests, render the instructions, and refuse unless the reference "
                      "scores full marks and the bare skeleton scores zero. Example: {example}",
                      example="grader release mlp_numpy --out release"),
    )
    release.add_argument("assignment", help=_("assignment id (a folder in assignments/)"))
    release.add_argument("--out", type=Path, default=Path("release"),
                         help=_("parent folder of the release (default: ./release)"))
    release.add_argument("--audit", action="store_true",
                         help=_("also grade every planted bug and variant (`grader audit`) "
                                "and refuse on an unfair matrix; minutes for the Keras "
                                "assignments on a CPU, so not the default"))
    release.add_argument("--force", action="store_true",
                         help=_("replace the released folder even when its files were "
                                "changed since it was released (without it such a folder is "
                                "refused)"))
    release.set_defaults(run=_release_main)

    audit = verbs.add_parser(
        "audit", help=_("grade every planted bug and variant: a bug x part matrix (instructor)"),
        description=_("Grade the reference, the bare skeleton, every planted bug of "
                      "samples/bugs.toml and every correct variant, and print the points each "
                      "loses per part. Exits 1, saying why, when a bug costs a part it does not "
                      "list or nothing in a part it lists, or a variant loses a point. "
                      "Example: {example}", example="grader audit tf_basics"),
    )
    audit.add_argument("assignment", help=_("assignment id (a folder in assignments/)"))
    audit.add_argument("--only", nargs="+", default=[], metavar="SAMPLE",
                       help=_("grade only these bugs or variants (by name)"))
    audit.set_defaults(run=_audit_main)

    check = verbs.add_parser(
        "check", help=_("run the public tests on your files (student)"),
        description=_("Run the public tests of a released assignment on the files in the "
                      "folder. Example: cd release/mlp_numpy && grader check"),
    )
    check.add_argument("folder", nargs="?", type=Path, default=Path.cwd(),
                       help=_("the released assignment folder, whatever it is named, or your "
                              "notebook or .py file inside it (default: the current folder)"))
    check.add_argument("--dataset", choices=data.NAMES,
                       help=_("the dataset (default: as `grader data` chooses)"))
    check.set_defaults(run=_check_main)

    submit = verbs.add_parser(
        "submit", help=_("pack your files and a manifest into a zip (student)"),
        description=_("Pack the assignment's files with a manifest (student id, file "
                      "hashes, time) into a zip to hand in. Example: grader submit "
                      "--student-id 2023123456"),
    )
    submit.add_argument("folder", nargs="?", type=Path, default=Path.cwd(),
                        help=_("the released assignment folder (default: the current "
                               "folder)"))
    submit.add_argument("--student-id", required=True, type=_student_id,
                        help=_("your student number or login"))
    submit.add_argument("--out", type=Path, help=_("the zip to write (default: "
                                                   "<folder>/<assignment>-<student id>.zip)"))
    submit.add_argument("--no-check", action="store_true",
                        help=_("do not run the public checks before packing"))
    submit.set_defaults(run=_submit_main)

    autograde = verbs.add_parser(
        "autograde", help=_("grade submissions with the hidden tests (instructor)"),
        description=_("Grade one submission (folder, zip, .py or .ipynb) or a class folder "
                      "with the hidden suite, each in its own sandbox, and write results.json "
                      "per student. Progress: a bar on a terminal, one line per submission in "
                      "a log. Ctrl-C stops at once, keeps what was graded and exits 130; the "
                      "same command grades the rest. Exit status 3: some submissions had "
                      "problems (each listed with what to do). Example: {example}",
                      example="grader autograde mlp_numpy submissions/ --out graded/mlp_numpy"),
    )
    autograde.add_argument("assignment", help=_("assignment id (a folder in assignments/)"))
    autograde.add_argument("submissions", type=Path,
                           help=_("a submission, or a folder of submissions (an LMS "
                                  "download)"))
    autograde.add_argument("--out", type=Path,
                           help=_("where results.json files go (default: graded/<assignment>)"))
    autograde.add_argument("--dataset", choices=data.NAMES,
                           help=_("the dataset (default: the course's, else as `grader data` "
                                  "chooses)"))
    autograde.add_argument("--db", help=_(DB_HELP))
    autograde.add_argument("--workers", type=int,
                           help=_("parallel grader workers (default: one per core)"))
    autograde.add_argument("--engine", choices=("local", "ray"), default="local",
                           help=_("local worker processes, or tasks on a Ray cluster"))
    autograde.add_argument("--address", help=_("with --engine ray: the cluster to join "
                                               "(default: start a local Ray instance)"))
    autograde.add_argument("--gpus-per-submission", type=float, default=0.0,
                           help=_("with --engine ray: GPU share per submission (0.25 = 4 "
                                  "per GPU)"))
    autograde.add_argument("--force", action="store_true",
                           help=_("grade again submissions whose files are already "
                                  "graded"))
    autograde.add_argument("--submitted-at", type=_aware_time, metavar="TIME",
                           help=_("the submission time of every submission of this run, "
                                  "with a UTC offset (e.g. 2026-12-01T23:59+08:00), instead of "
                                  "each one's receipt time; the manifest's time is never "
                                  "used"))
    autograde.set_defaults(run=_autograde_main)

    worker = verbs.add_parser(
        "worker", help=_("grade the queue of `grader serve` (instructor, GPU runner)"),
        description=_("Take jobs from the service's queue (in the gradebook's database) "
                      "and grade them: public checks first, then full grading, recorded as "
                      "`grader autograde` records it. Run it on other machines with --db "
                      "pointing at the course's PostgreSQL and --course at a copy of the "
                      "course folder (with the uploads' folder shared). Ctrl-C or SIGTERM "
                      "stops the workers after their current job. Example: {example}",
                      example="grader worker --db postgresql+psycopg://grader@db/course "
                      "--concurrency 2"),
    )
    worker.add_argument("--db", help=_(DB_HELP))
    worker.add_argument("--engine", choices=("local", "ray"), default="local",
                        help=_("grade in local worker processes, or as tasks on a Ray "
                               "cluster"))
    worker.add_argument("--concurrency", type=_positive_int, default=1,
                        help=_("jobs graded at once (local: worker processes; default: 1)"))
    worker.add_argument("--lease", type=_lease_seconds, default=60.0,
                        help=_("seconds a job stays with a silent worker before another "
                               "takes it (default: 60; workers renew it every third)"))
    worker.add_argument("--address", help=_("with --engine ray: the cluster to join "
                                            "(default: start a local Ray instance)"))
    worker.set_defaults(run=_worker_main)

    feedback = verbs.add_parser(
        "feedback", help=_("write each student's report and the class summary (instructor)"),
        description=_("Write a self-contained HTML (and Markdown) report for every student "
                      "and the class summary, from the gradebook. Example: {example}",
                      example="grader feedback mlp_numpy"),
    )
    feedback.add_argument("assignment", help=_("assignment id (a folder in assignments/)"))
    feedback.add_argument("--db", help=_(DB_HELP))
    feedback.add_argument("--out", type=Path,
                          help=_("where the reports go (default: feedback/<assignment>)"))
    feedback.add_argument("--results", type=Path,
                          help=_("read the results.json files of `grader autograde --out "
                                 "DIR` instead of the gradebook"))
    feedback.set_defaults(run=_feedback_main)

    export = verbs.add_parser(
        "export", help=_("export grades: CSV for the LMS, Gradescope results (instructor)"),
        description=_("Export an assignment's grades. Example: {example}",
                      example="grader export mlp_numpy --format csv --preset canvas "
                      "--out canvas.csv"),
    )
    export.add_argument("assignment", help=_("assignment id (a folder in assignments/)"))
    export.add_argument("--format", required=True,
                        choices=("csv", "gradescope", "gradescope-autograder"),
                        help=_("csv: a table for the LMS or a spreadsheet; gradescope: "
                               "results.json per student; gradescope-autograder: one "
                               "submission's results.json inside Gradescope's autograder"))
    export.add_argument("--out", help=_("a file, a folder, or - for standard output (csv)"))
    export.add_argument("--db", help=_(DB_HELP))
    export.add_argument("--columns", help=_('csv columns, e.g. '
                                            '"student_id=ID,parts,final_score"'))
    export.add_argument("--preset", choices=("canvas", "moodle", "generic"),
                        help=_("csv column names that the LMS's grade import expects; "
                               "generic: id,name,grade,max_grade,status,comment for any other "
                               "LMS or a spreadsheet"))
    export.add_argument("--encoding", choices=("utf-8-sig", "utf-8", "gbk"),
                        default="utf-8-sig",
                        help=_("csv file encoding (default utf-8-sig: UTF-8 with a byte "
                               "order mark, which Excel on Chinese Windows reads without "
                               "garbling names; gbk for older systems)"))
    export.add_argument("--student", help=_("export one student only"))
    export.set_defaults(run=_export_main)

    calibrate = verbs.add_parser(
        "calibrate", help=_("measure accuracy thresholds from the reference (instructor)"),
        description=_("Run the reference under each accuracy test's budget for several "
                      "seeds, by that test's own protocol (Keras [[accuracy]] entries; "
                      "mlp_numpy's trained weights), and write "
                      "assignments/<id>/calibration/<dataset>-<device>.toml (threshold = mean "
                      "- max(3 sigma, 0.5 points)). Example: {example}",
                      example="grader calibrate mlp_numpy --seeds 16"),
    )
    calibrate.add_argument("assignment", help=_("assignment id (a folder in assignments/)"))
    calibrate.add_argument("--dataset", choices=data.NAMES,
                           help=_("the dataset (default: the course's, else as `grader data` "
                                  "chooses)"))
    calibrate.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                           help=_("the device the thresholds are for (default: cpu)"))
    calibrate.add_argument("--seeds", type=int, default=5,
                           help=_("training runs per test, one seed each (default: 5)"))
    calibrate.add_argument("--tests", nargs="*", help=_("only these accuracy tests"))
    calibrate.set_defaults(run=_calibrate_main)

    roster = verbs.add_parser(
        "roster", help=_("add a class roster (CSV: id,name) to the gradebook"),
        description=_("Add the students of a roster CSV (columns id,name, or any headers "
                      "with --columns; UTF-8 with or without a BOM, or GBK) to the gradebook, "
                      "so those who never submit get a report and a zero in exports. Creates "
                      "the gradebook when there is none. Example: {example}",
                      example="grader roster roster.csv --columns 学号=id,姓名=name"),
    )
    roster.add_argument("roster", type=Path, nargs="?", metavar="ROSTER.csv",
                        help=_("the roster: a CSV file with a student id and a name per row"))
    roster.add_argument("--issue-codes", action="store_true",
                        help=_("issue a fresh access code for `grader serve` to every "
                               "student (only hashes are stored; the old codes stop working)"))
    roster.add_argument("--out", help=_("with --issue-codes: write id,name,access_code to "
                                        "this CSV (mode 0600) instead of printing"))
    roster.add_argument("--columns", metavar="HEADER=id,HEADER=name",
                        help=_("which headers hold the student id and the name, e.g. "
                               "学号=id,姓名=name (default: the columns called id and name)"))
    roster.add_argument("--db", help=_(DB_HELP))
    roster.set_defaults(run=_roster_main)

    serve = verbs.add_parser(
        "serve", help=_("run the submission service (students upload, staff dashboard)"),
        description=_("Serve the course on the web: students sign in with their access "
                      "code (`grader roster --issue-codes`), upload, see the public tests' "
                      "result in seconds and the report once released; staff sign in with the "
                      "password of `grader user add`. Starts --workers local grader workers "
                      "(0: none; run `grader worker` elsewhere). HTTPS is the reverse proxy's "
                      "(docs/deploy/nginx.conf). Example: {example}",
                      example="grader serve --port 8000"),
    )
    serve.add_argument("--host", default="127.0.0.1", help=_("address to listen on "
                                                             "(default 127.0.0.1: behind a "
                                                             "reverse proxy)"))
    serve.add_argument("--port", type=int, default=8000,
                       help=_("port to listen on (default: 8000)"))
    serve.add_argument("--db", help=_(DB_HELP))
    serve.add_argument("--workers", type=int, default=1,
                       help=_("local grader worker processes (default 1; 0: none)"))
    serve.add_argument("--https-only", action="store_true",
                       help=_("send the session cookie over HTTPS only (behind TLS)"))
    serve.add_argument("--demo", nargs="?", const="", metavar="DIR",
                       help=_("serve a demo class, already graded, and print its "
                              "instructor's and student's sign-ins: alone, a throwaway copy of "
                              "the course (graded first, about a minute); with DIR, the one "
                              "`grader demo` kept there (demo-out/service). --db is ignored"))
    serve.set_defaults(run=_serve_main)

    user = verbs.add_parser(
        "user", help=_("add a TA or instructor account for grader serve"),
        description=_("Add a staff account (or set a new password for one). The password "
                      "is prompted twice, or read from standard input with --password-stdin. "
                      "Example: {example}", example="grader user add zhang --role instructor"),
    )
    user_verbs = user.add_subparsers(dest="action", required=True, metavar="ACTION")
    user_add = user_verbs.add_parser("add", help=_("add a TA or instructor"),
                                     description=_("Add a TA or instructor account, or set a "
                                                   "new password for one."))
    user_add.add_argument("name", help=_("the user name to sign in with"))
    user_add.add_argument("--role", choices=("ta", "instructor"), required=True,
                          help=_("the account's role: ta or instructor"))
    user_add.add_argument("--password-stdin", action="store_true",
                          help=_("read the password from standard input's first line"))
    user_add.add_argument("--db", help=_(DB_HELP))
    user.set_defaults(run=_user_main)

    override = verbs.add_parser(
        "override", help=_("set or clear an instructor's override of a grade"),
        description=_("Override a student's final score for an assignment (0 to the "
                      "assignment's points, with a reason); the override survives re-grading "
                      "and is shown in reports and exports. Example: {example}",
                      example='grader override mlp_numpy 2023001 95 --reason "regrade of part '
                      '2"'),
    )
    _add_assignment_and_student(override)
    override.add_argument("points", type=float, nargs="?",
                          help=_("the final score, from 0 to the assignment's points"))
    override.add_argument("--reason", default="",
                          help=_("why (required to set an override; shown to the "
                                 "student)"))
    override.add_argument("--clear", action="store_true", help=_("remove the override"))
    override.add_argument("--db", help=_(DB_HELP))
    override.set_defaults(run=_override_main)

    extend = verbs.add_parser(
        "extend", help=_("grant a student an extension of the due date"),
        description=_("Move one student's due date (and any late cutoff) by N days; their "
                      "lateness is recomputed at once and the grant is kept with who, when "
                      "and why. --days 0 clears it. Example: {example}",
                      example='grader extend mlp_numpy 2023001 --days 3 --reason '
                      '"medical certificate"'),
    )
    _add_assignment_and_student(extend)
    extend.add_argument("--days", type=float, required=True,
                        help=_("days to add to the due date (0 clears the extension)"))
    extend.add_argument("--reason", required=True,
                        help=_("why (recorded, shown in reports)"))
    extend.add_argument("--db", help=_(DB_HELP))
    extend.set_defaults(run=_extend_main)
    for verb in verbs.choices.values():  # --course also after the verb (where it wins)
        verb.add_argument("--course", type=Path, metavar="DIR", help=_(COURSE_HELP),
                          default=argparse.SUPPRESS)
        verb.add_argument("--lang", type=_language, metavar="LANG", help=_(LANG_HELP),
                          default=argparse.SUPPRESS)
    return parser


def _language(value: str) -> str:
    """``--lang``: zh_CN or en as people write them; anything else is a usage error."""
    from grader import i18n

    try:
        return i18n.normalise(value)
    except i18n.LanguageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: list[str] | None = None) -> int:
    try:
        from grader import course, i18n

        with (i18n.speaking(_help_language(sys.argv[1:] if argv is None else argv)),
              argparse_speaks()):  # argparse's own words too (grader.argparse_i18n)
            args = build_parser().parse_args(argv)  # --help and usage errors in the language

        # The language of this run: --lang, else the course's (_course_defaults) or the kit's.
        with course.selected(args.course), i18n.speaking(args.lang):
            _course_defaults(args)
            return args.run(args)
    except KeyboardInterrupt:  # a batch handles Ctrl-C itself; this is any other moment
        print(_("grader: stopped by Ctrl-C"), file=sys.stderr)
        return INTERRUPTED_EXIT
    except (data.DatasetError, *_user_errors()) as error:
        shown = "\n".join(printable(line, limit=2000) for line in str(error).splitlines())
        print(f"grader: {shown}", file=sys.stderr)  # student ids: no terminal escapes
        return 2


def _help_language(argv: list[str]) -> str | None:
    """The language of the help, read before the parser exists: ``--lang``, else (with no
    $GRADER_LANG) the released folder's (`grader check`/`submit`'s, else the current
    folder's); None: the default."""
    import os

    from grader import i18n
    from grader.kit.check import NotReleased, kit_language, released_folder

    for index, word in enumerate(argv):
        value = word.split("=", 1)[1] if word.startswith("--lang=") else (
            argv[index + 1] if word == "--lang" and index + 1 < len(argv) else None)
        if value is not None:
            try:
                return i18n.normalise(value)
            except i18n.LanguageError:
                return None  # the parser says what is wrong with it
    if i18n.ENV_VAR in os.environ:
        return None
    # A student's verb names the folder; `grader --help` is read where the student works.
    folders = [Path(word) for word in argv if not word.startswith("-")
               and word not in ("check", "submit")] if {"check", "submit"} & set(argv) else []
    for candidate in [*folders, Path.cwd()]:
        try:
            return kit_language(released_folder(candidate)[0])
        except (NotReleased, OSError):
            continue
    return _course_language(argv)


def _course_language(argv: list[str]) -> str | None:
    """The language of the course an instructor's verb works in (``--course DIR``, else
    $GRADER_COURSE, else the folders upwards), for its help and usage errors; None where
    there is none or it is broken (the run itself then says what is wrong)."""
    from grader import course

    named = None
    for index, word in enumerate(argv):
        if word.startswith("--course="):
            named = word.split("=", 1)[1]
        elif word == "--course" and index + 1 < len(argv):
            named = argv[index + 1]
    try:
        found = course.find_course(named, required=False)
        return found.language if found is not None else None
    except Exception:  # noqa: BLE001 - any broken course: the help stays in the default
        return None


# Verbs a student runs in a released folder, and `init`, which makes a course: no course.
_WITHOUT_COURSE = ("check", "submit", "data", "init")
_GRADEBOOK_ONLY = ("roster", "override", "extend", "user")


def _course_defaults(args: argparse.Namespace) -> None:
    """The course's `dataset` and `lms` where the command line and $GRADER_DATASET say none."""
    import os

    from grader import course

    if args.verb in _WITHOUT_COURSE:
        return
    # A verb that only opens the gradebook has no assignment to find a course by: without
    # --db it needs the course's gradebook, never a new one wherever it happens to run.
    needed = args.verb in _GRADEBOOK_ONLY and getattr(args, "db", None) is None
    found = course.find_course(required=needed)
    if found is None:
        return
    from grader import i18n

    if args.lang is None and i18n.ENV_VAR not in os.environ:  # --lang, $GRADER_LANG win
        i18n.set_language(found.language)
    if (getattr(args, "dataset", "") is None and found.dataset != "auto"
            and not os.environ.get("GRADER_DATASET")):
        args.dataset = found.dataset
    if (args.verb == "export" and args.format == "csv" and args.preset is None
            and args.columns is None and found.lms is not None):
        args.preset = found.lms


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors that are the user's to fix: printed as one message, never a traceback."""
    from grader.calibration import NoCalibration
    from grader.config import ConfigError
    from grader.gradebook import GradebookError, RosterError
    from grader.kit.submit import SubmitRefused
    from grader.release.build import ReleaseRefused
    from grader.release.strip import MarkerError
    from grader.samples import SampleError
    from grader.scaffold import ScaffoldRefused
    from grader.service.demo import NotADemo

    return (ConfigError, ReleaseRefused, MarkerError, SubmitRefused, FileNotFoundError,
            GradebookError, RosterError, NoCalibration, SampleError, ScaffoldRefused,
            NotADemo)
