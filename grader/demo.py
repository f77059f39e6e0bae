"""`grader demo`: an instructor's whole day, end to end, on the available dataset.

For every assignment that has a hidden suite: release it (the self-check grades the
reference and the bare skeleton), build a sample class (the reference, the bare
skeleton, planted bugs and correct variants from ``assignments/<id>/samples/``), grade
the class in parallel into a gradebook, and write every student's report and the class
summary. ``--references`` instead trains every reference solution briefly and prints
artifact, dataset, epochs, accuracy, seconds.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from pathlib import Path

from grader import autograde, course, data, feedback, i18n
from grader.config import load_assignment
from grader.grading.run import grade_path
from grader.release.build import release
from grader.samples import sample_class

# The lecture's artifacts in teaching order; each reference module has `run_lecture`.
ARTIFACTS = ("tf_basics", "mlp_numpy", "keras_mlp", "keras_cnn", "alexnet")
# The assignments with hidden suites, graded by the demo.
GRADED = ("tf_basics", "mlp_numpy")

_, _n = i18n.Domain("cli").functions()


@dataclass(frozen=True)
class RunRow:
    artifact: str
    dataset: str
    epochs: int
    accuracy: float | None
    seconds: float


def run_reference(artifact: str, dataset: data.Dataset, *, quick: bool) -> RunRow:
    """Runs one reference module's lecture run and times it."""
    with course.course_imports(course.current().root):  # the course's own reference
        module = importlib.import_module(f"reference.{artifact}")
    start = time.perf_counter()
    epochs, accuracy = module.run_lecture(dataset, quick=quick)
    return RunRow(artifact, dataset.name, epochs, accuracy, time.perf_counter() - start)


def format_table(rows: list[RunRow]) -> str:
    lines = [f"{'artifact':<10} {'dataset':<14} {'epochs':>6} {'accuracy':>9} {'seconds':>8}"]
    for row in rows:
        accuracy = "-" if row.accuracy is None else f"{row.accuracy:.4f}"
        lines.append(f"{row.artifact:<10} {row.dataset:<14} {row.epochs:>6} "
                     f"{accuracy:>9} {row.seconds:>8.1f}")
    return "\n".join(lines)


def references_main(*, dataset: str | None, quick: bool) -> int:
    loaded = data.load(dataset)
    print(_("Running every reference solution on {dataset} (quick runs)...", dataset=loaded.name)
          if quick else _("Running every reference solution on {dataset} (the lecture's "
                          "settings)...", dataset=loaded.name), flush=True)
    rows = []
    for artifact in ARTIFACTS:
        rows.append(run_reference(artifact, loaded, quick=quick))
        print(format_table(rows[-1:]).splitlines()[1], flush=True)
    print()
    print(format_table(rows))
    return 0


# Keras submissions train a network each (tens of seconds on a CPU): a smaller class.
SAMPLE_LIMITS = {"keras_mlp": (2, 1), "keras_cnn": (2, 1), "alexnet": (1, 0)}


def graded_assignments(repo_root: Path) -> list[str]:
    """Assignments with both an assignment.toml and a hidden suite, in teaching order."""
    found = [path.parent.name for path in (repo_root / "assignments").glob("*/assignment.toml")
             if (repo_root / "autograde_tests" / path.parent.name).is_dir()]
    order = {name: index for index, name in enumerate(ARTIFACTS)}
    return sorted(found, key=lambda name: (order.get(name, len(order)), name))


def main(*, dataset: str | None = None, quick: bool = True, references: bool = False,
         out: Path = Path("demo-out"), assignments: list[str] | None = None,
         workers: int | None = None) -> int:
    if references:
        return references_main(dataset=dataset, quick=quick)
    loaded = data.load(dataset)  # fail early, with the data's own message
    names = assignments or graded_assignments(course.current().root)
    print(_("nn-grader demo on {dataset}: {assignments}", dataset=loaded.name,
            assignments=", ".join(names)) + "\n", flush=True)
    started = time.perf_counter()
    for name in names:
        config = load_assignment(name)
        print(f"== {config.id}: {config.title}", flush=True)
        # One gradebook per assignment: the demo's "students" differ between assignments,
        # and a shared roster would list each class as non-submitters of the others.
        db = out / "gradebooks" / f"{config.id}.db"
        db.parent.mkdir(parents=True, exist_ok=True)
        print(_("releasing (the self-check grades the reference and the bare skeleton)..."),
              flush=True)
        # force: the demo's release folder is its own output, rewritten on every run.
        report = release(config, out / "release", force=True,
                         grade=lambda cfg, folder: grade_path(cfg, folder,
                                                              dataset_name=loaded.name).grade)
        print(_("released to {folder}: reference {score}/{max_score}, bare skeleton "
                "{skeleton}", folder=report.folder, score=f"{report.reference_grade.score:g}",
                max_score=f"{report.reference_grade.max_score:g}",
                skeleton=f"{report.skeleton_grade.score:g}"), flush=True)
        max_bugs, max_variants = SAMPLE_LIMITS.get(config.id, (None, None))
        klass = sample_class(config, out / "class" / config.id, skeleton_folder=report.folder,
                             max_bugs=max_bugs, max_variants=max_variants)
        print(_("grading the sample class in {folder} ...", folder=klass), flush=True)
        status = autograde.main(assignment=name, submissions=klass,
                                out=out / "graded" / config.id, dataset=loaded.name, db=db,
                                workers=workers, force=True)
        if status == autograde.INTERRUPTED_EXIT:  # Ctrl-C: autograde said what it kept
            return status
        feedback.main(assignment=name, db=db, out=out / "feedback" / config.id)
        print(flush=True)
    print(_("Done in {seconds} s. Open:", seconds=f"{time.perf_counter() - started:.0f}"))
    for name in names:
        print("  " + _("{page}   (class summary, links to reports)",
                       page=out / "feedback" / name / "index.html"))
    print("  " + _("student folders: {release}/<id>/   gradebooks: {gradebooks}/",
                   release=out / "release", gradebooks=out / "gradebooks"))
    print_service(out / "service")
    return 0


def print_service(folder: Path) -> None:
    """Makes the demo class `grader serve --demo` serves (a copy of the course with an
    instructor and a student, `grader.service.demo.setup_demo`) in `folder`, replacing the
    one an earlier demo left there, and prints how to open it; it starts no server."""
    import shutil

    from grader.service.demo import SIGN_INS, setup_demo

    try:
        import fastapi  # noqa: F401 - the `serve` extra
    except ImportError:
        print("\n" + _("The submission service (grader serve) needs the serve extra: "
                       "pip install 'nn-grader[serve]'; then run grader demo again."))
        return
    if (folder / SIGN_INS).is_file():  # an earlier demo's class: ours to replace
        shutil.rmtree(folder)
    elif folder.exists():
        print("\n" + _("{folder} exists and is not a demo class; the service demo was not "
                       "set up (move that folder away and run grader demo again).",
                       folder=folder))
        return
    demo = setup_demo(folder)
    print("\n" + _("Run the course as a service on its graded demo class (students upload "
                   "and see results; the staff dashboard):"))
    print(f"  grader serve --demo {folder}      " + _("then open {url} and sign in as",
                                                     url="http://127.0.0.1:8000/"))
    print(demo.sign_ins())
