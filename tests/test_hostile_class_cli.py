"""Through the real CLI and sandbox: a class where one student attacks the grader's output.

One `grader autograde` run over a class folder in which one submission's manifest claims
ids with a NUL byte, terminal escapes, ``../..`` and an absolute path, whose code returns
1e308, NaN, ±inf and 1e300 * 10 for the figures a hidden test draws, and whose exception
messages carry escapes, HTML, a ``javascript:`` link and a formula; a folder named with
terminal escapes; folders named like spreadsheet formulas; and honest students around
them. Then `grader feedback` and `grader export` over the same gradebook (issue 9, items 5
and 6).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from grader.ids import file_name

FILES = Path(__file__).parent / "files" / "grading"
ESCAPES = "\x1b[2J\x1b[31m"
MESSAGE = f"{ESCAPES}<script>alert(1)</script> [click](javascript:alert(1)) =1+2"
HOSTILE = f'''import numpy as np


def relu(x):
    x = np.asarray(x, dtype=float)
    if x.shape == (5,):  # the figure test's input
        return np.array([1e308, float("nan"), float("inf"), float("-inf"), 1e300 * 10])
    return np.maximum(x, 0.0)


def sigmoid(x):
    raise ValueError({MESSAGE!r})
'''
FIGURE_TEST = '''import numpy as np


def test_relu_figures(student, figure):
    out = np.asarray(student.act.relu(np.array([0.5, 0.25, 0.125, 0.0625, 0.03125])),
                     dtype=float)
    v = out.tolist()
    figure("learning_curve", {"loss": v, "accuracy": v, "val_loss": v, "x": "mini-batch",
                              "epochs": v[0], "stopped": v[1]})
    figure("accuracy", {"accuracy": v[1], "threshold": v[2], "floor": v[0]})
    figure("confusion_matrix", {"matrix": [[v[0], v[1]], [v[2], v[3]]], "labels": ["a", "b"]})
    figure("gradient_errors", {"relu": {"relative_error": v[3], "tolerance": v[4]}})
    assert out.shape == (5,), "`relu` returned the wrong shape"
'''
CLAIMED_IDS = ["\x00evil", f"{ESCAPES}evil", "../../escaped", "/tmp/nn-grader-absolute-x"]
FORMULAS = ["=1+2", "@SUM(1)"]


def _grader(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def _strict(text: str) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("hostile-class")
    course = root / "course"
    shutil.copytree(FILES / "repo", course)
    toml = course / "assignments" / "act" / "assignment.toml"
    toml.write_text(toml.read_text().replace("total = 10", "total = 12") + (
        '\n[[parts]]\nname = "figures"\npoints = 2\ntests = ["test_relu_figures"]\n'))
    (course / "autograde_tests" / "act" / "test_figures.py").write_text(FIGURE_TEST)
    klass = root / "class"
    for name, source in (("wrong_relu", "wrong_relu"), ("train_at_top", "train_at_top"),
                         (f"{ESCAPES}red", "train_at_top"), *((f, "wrong_relu") for f in FORMULAS)):
        shutil.copytree(FILES / "submissions" / source, klass / name)
    for number, claimed in enumerate(CLAIMED_IDS):
        with zipfile.ZipFile(klass / f"hostile{number}.zip", "w") as archive:
            archive.writestr("act.py", HOSTILE)
            archive.writestr("manifest.json", json.dumps({
                "student_id": claimed, "assignment": "act", "files": {},
                "created_at": "2020-01-01T00:00:00Z"}))
    before = _files(root)
    db, graded = root / "gradebook.db", root / "out" / "graded"
    autograde = _grader("autograde", "act", str(klass), "--out", str(graded), "--db", str(db),
                        "--workers", "2", cwd=course)
    feedback = _grader("feedback", "act", "--db", str(db), "--out", str(root / "feedback"),
                       cwd=course)
    csv = _grader("export", "act", "--format", "csv", "--db", str(db), "--out", "-",
                  cwd=course)
    gradescope = _grader("export", "act", "--format", "gradescope", "--db", str(db), "--out",
                         str(root / "gradescope"), cwd=course)
    return {"root": root, "before": before, "graded": graded, "autograde": autograde,
            "feedback": feedback, "csv": csv, "gradescope": gradescope,
            "table": autograde.stdout.split("\n\n")[0].splitlines()[1:]}


def test_every_submission_is_graded_and_the_exit_code_says_there_were_problems(run):
    done = run["autograde"]
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    scores = {line.split()[0]: line.split()[-1] for line in run["table"]}
    assert scores["wrong_relu"] == "9/12" and scores["train_at_top"] == "12/12"
    assert all(scores[f] == "9/12" for f in FORMULAS)
    hostile = [f"hostile{n}" for n in range(len(CLAIMED_IDS))]
    assert all(scores[h] == "8/12" for h in hostile)  # sigmoid raises; figures are drawn
    assert len(scores) == 3 + len(FORMULAS) + len(CLAIMED_IDS)
    assert "submissions had problems:" in done.stderr
    for hostile_id in hostile:  # each claim conflict is listed with what to do
        assert re.search(rf"^  {hostile_id} \({hostile_id}\.zip\): .*; once it is fixed",
                         done.stderr, re.MULTILINE), done.stderr


def test_nothing_is_written_outside_out_and_results_json_is_strict(run):
    new = _files(run["root"]) - run["before"]
    allowed = (run["graded"], run["root"] / "feedback", run["root"] / "gradescope")
    assert [p for p in new if not p.name.startswith("gradebook.db")
            and not any(folder in p.parents for folder in allowed)] == []
    assert not Path(CLAIMED_IDS[-1]).exists()
    results = sorted(run["graded"].glob("*/results.json"))
    assert len(results) == 3 + len(FORMULAS) + len(CLAIMED_IDS)
    for path in results:
        data = _strict(path.read_text())
        assert path.parent.name == file_name(data["extra_data"]["student_id"])
    hostile = _strict((run["graded"] / "hostile0" / "results.json").read_text())
    [figures] = [t for t in hostile["tests"] if "test_relu_figures" in t["name"]]
    assert figures["extra_data"]["figures"]["learning_curve"]["loss"] == [1e308, None, None, None,
                                                                     1e301]


def test_no_escape_byte_reaches_the_instructors_terminal(run):
    for name in ("autograde", "feedback", "csv", "gradescope"):
        done = run[name]
        assert "\x1b" not in done.stdout + done.stderr, name
        assert "\x00" not in done.stdout + done.stderr, name


def test_feedback_renders_every_report_and_markdown_carries_no_html(run):
    done = run["feedback"]
    assert done.returncode == 0, done.stderr
    folder = run["root"] / "feedback"
    students = {p.parent.name for p in run["graded"].glob("*/results.json")}
    assert {p.parent.name for p in folder.glob("*/report.html")} == students
    assert {p.parent.name for p in folder.glob("*/report.md")} == students
    for number in range(len(CLAIMED_IDS)):
        markdown = (folder / f"hostile{number}" / "report.md").read_text()
        assert "alert(1)" in markdown  # the message is shown, as text
        html = MarkdownIt("commonmark", {"html": True}).render(markdown)
        assert not re.search(r"<(script|a|img)[\s>]", html), html
        assert "\x1b" not in markdown
        report = (folder / f"hostile{number}" / "report.html").read_text()
        assert "<script>alert" not in report and "Learning curve" in report


def test_the_csv_export_neutralises_formulas(run):
    done = run["csv"]
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for formula in FORMULAS:
        assert any(line.startswith(f"'{formula},") for line in lines), lines
    assert not any(line.startswith(("=", "+", "@")) for line in lines)


def test_the_gradescope_export_stays_in_its_folder_and_is_strict(run):
    done = run["gradescope"]
    assert done.returncode == 0, done.stderr
    folder = run["root"] / "gradescope"
    written = sorted(folder.glob("*/results.json"))
    assert len(written) == 3 + len(FORMULAS) + len(CLAIMED_IDS)
    for path in written:
        _strict(path.read_text())
