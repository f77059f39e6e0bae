"""`grader export --format gradescope-autograder`: a zip to upload as a Gradescope autograder.

``setup.sh`` (installs this grader in Gradescope's Ubuntu image), ``run_autograder``
(grades ``/autograder/submission`` and writes ``/autograder/results/results.json`` with
the one serializer), the grader's source and the course files of the assignment.
Gradescope applies its own late policy there, so the bundle's results carry the score
before any late penalty (no grade record).
"""

from __future__ import annotations

import traceback
import zipfile
from pathlib import Path

from grader.config import AssignmentConfig, load_assignment
from grader.export.common import ExportError
from grader.export.gradescope import gradescope_results
from grader.ids import printable
from grader.results.records import json_text

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder image (Ubuntu).
# It installs nn-grader (bundled in nn-grader/) and what grading needs: bubblewrap for the
# sandbox, and a dataset for the accuracy tests.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv python3-pip bubblewrap
# Fashion-MNIST from the distribution; MNIST is fetched below when the build has network.
apt-get install -y --no-install-recommends dataset-fashion-mnist \\
  || echo "dataset-fashion-mnist is not packaged here; relying on MNIST"
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --upgrade pip
/autograder/venv/bin/pip install /autograder/source/nn-grader
/autograder/venv/bin/python -m grader data fetch || echo "MNIST not downloaded"
/autograder/venv/bin/python -m grader data check
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for each submission: grade /autograder/submission with the hidden
# suite of `{assignment}` and write /autograder/results/results.json.
# AUTOGRADER_ROOT (default /autograder) and GRADER_PYTHON (default the venv setup.sh made)
# let the bundle be tried outside Gradescope.
set -euo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PYTHON="${{GRADER_PYTHON:-$ROOT/venv/bin/python}}"
mkdir -p "$ROOT/results"
cd "$ROOT/source/course"
exec "$PYTHON" - "$ROOT" "$ROOT/source/course" "{assignment}" <<'PY'
import sys
from pathlib import Path

from grader.export import run_gradescope_autograder

sys.exit(run_gradescope_autograder(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]))
PY
"""

_BUNDLED_PROJECT = ("pyproject.toml", "README.md", "grader", "reference")


def write_autograder_bundle(config: AssignmentConfig, target: Path) -> Path:
    """Writes the Gradescope autograder zip for an assignment.

    The zip holds ``setup.sh`` and ``run_autograder`` at its root, ``nn-grader/`` (this
    grader's source, installed by setup.sh) and ``course/`` (the assignment's folder, its
    hidden suite and the reference files its assignment.toml names).

    Raises:
        ExportError: when the grader's source tree (pyproject.toml) cannot be found.
    """
    project = Path(__file__).resolve().parents[2]
    if not (project / "pyproject.toml").is_file():
        raise ExportError(f"the autograder bundle needs nn-grader's source checkout; no "
                          f"pyproject.toml in {project}")
    course = config.repo_root
    course_files = [config.root, course / "autograde_tests" / config.id,
                    *(f.reference for f in config.files if f.reference is not None)]
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as bundle:
        _add_script(bundle, "setup.sh", SETUP_SH)
        _add_script(bundle, "run_autograder", RUN_AUTOGRADER.format(assignment=config.id))
        for name in _BUNDLED_PROJECT:
            _add_tree(bundle, project / name, f"nn-grader/{name}")
        for path in course_files:
            rel = path.resolve().relative_to(course.resolve()).as_posix()
            _add_tree(bundle, path, f"course/{rel}")
    return target


def run_gradescope_autograder(root: Path, course: Path, assignment: str) -> int:
    """Inside Gradescope: grade ``<root>/submission``, write ``<root>/results/results.json``.

    A grader failure still writes a results.json (score 0, the reason in its output), so
    the student sees a message rather than Gradescope's "autograder failed"; the traceback
    goes to stderr, which only instructors see.
    """
    from grader.grading.run import grade_path

    results = root / "results" / "results.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    try:
        config = load_assignment(course / "assignments" / assignment)
        graded = grade_path(config, root / "submission")
        payload = gradescope_results(config, graded.grade,
                                     display_name=graded.submission.display_name,
                                     notes=graded.submission.notes)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - any failure must still reach the student
        reason = printable(f"{type(exc).__name__}: {exc}", limit=400)
        payload = {"score": 0.0, "output": f"The autograder could not grade this "
                   f"submission: {reason}", "tests": []}
        traceback.print_exc()
    results.write_text(json_text(payload), encoding="utf-8")
    return 0


def _add_script(bundle: zipfile.ZipFile, name: str, text: str) -> None:
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.external_attr = 0o100755 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    bundle.writestr(info, text)


def _add_tree(bundle: zipfile.ZipFile, path: Path, arcname: str) -> None:
    if path.is_file():
        bundle.write(path, arcname)
        return
    for item in sorted(path.rglob("*")):
        rel = item.relative_to(path)
        if item.is_file() and not any(part == "__pycache__" or part.startswith(".")
                                      for part in rel.parts):
            bundle.write(item, f"{arcname}/{rel.as_posix()}")
