"""`grader audit`: the bug x part matrix, its fairness rules, and the CLI verb.

The rules and the rendering are checked on grades made up here (fast); one test runs
the real pipeline on tf_basics with one planted bug (slow: TensorFlow per runtime).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader import audit
from grader.cli import main as cli_main
from grader.config import AssignmentConfig, load_assignment
from grader.results.records import Grade, PartGrade
from grader.samples import load_bugs, variants

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENTS = ("mlp_numpy", "tf_basics", "keras_mlp", "keras_cnn", "alexnet")


def _config(assignment: str) -> AssignmentConfig:
    return load_assignment(REPO / "assignments" / assignment / "assignment.toml")


def _grade(config: AssignmentConfig, lose: set[str]) -> Grade:
    """Full marks except in the parts of `lose`, which earn nothing."""
    return Grade(config.id, config.id, tuple(
        PartGrade(part.name, 0.0 if part.name in lose else float(part.points),
                  float(part.points), ()) for part in config.parts), 0.0)


def _as_listed(config: AssignmentConfig, *, also: dict[str, set[str]] | None = None):
    """A grade function that charges every bug exactly its listed parts (plus `also`)."""
    bugs = {f"bug-{bug.name}": set(bug.parts) for bug in load_bugs(config)}
    skeleton = {part.name for part in config.parts}

    def grade(cfg: AssignmentConfig, folder: Path) -> Grade:
        lose = skeleton if folder.name == "skeleton" else set(bugs.get(folder.name, set()))
        return _grade(cfg, lose | (also or {}).get(folder.name, set()))
    return grade


def test_a_matrix_as_listed_is_fair_and_grades_every_sample(tmp_path):
    config = _config("tf_basics")
    skeleton = tmp_path / "skeleton"
    skeleton.mkdir()
    text, reasons, rows = audit.audit(config, _as_listed(config), skeleton=skeleton)
    assert reasons == []
    names = [row.name for row in rows]
    assert names[:2] == ["reference", "bare skeleton"]
    assert len(rows) == 2 + len(load_bugs(config)) + len(variants(config))
    matrix = text.split("\n\n")[0]  # the legend below explains the marks
    assert "bug softmax_axis_zero" in matrix and "*" in matrix and "!" not in matrix


def test_a_bug_costing_an_unlisted_part_a_silent_bug_and_a_losing_variant_are_unfair(tmp_path):
    config = _config("tf_basics")
    variant = variants(config)[0].name
    also = {"bug-softmax_axis_zero": {"tanh"}, variant: {"relu"}}
    grade = _as_listed(config, also=also)

    def grade_with_silent_bug(cfg: AssignmentConfig, folder: Path) -> Grade:
        return _grade(cfg, set()) if folder.name == "bug-conv_flips_kernel" else grade(cfg, folder)

    text, reasons, _ = audit.audit(config, grade_with_silent_bug)
    assert reasons == [
        "bug conv_flips_kernel costs nothing in `conv2d`; expected it to lose points there "
        "(bugs.toml lists it)",
        "bug softmax_axis_zero costs 6 points in `tanh`, which bugs.toml does not list for it",
        f"variant {variant} costs 6 points in `relu`, though it is correct and must keep "
        "full marks",
    ]
    matrix = text.split("\n\n")[0]
    assert "6!" in matrix and "14*" in matrix and " 0!" in matrix


def test_a_skeleton_that_earns_points_is_unfair():
    config = _config("tf_basics")
    row = audit.row_for("bare skeleton", "skeleton", ["sigmoid", "relu"], _grade(config, {"relu"}))
    assert audit.unfair([row]) == ["bare skeleton costs nothing in `sigmoid`; expected it to "
                                   "lose points there (the bare skeleton must earn nothing)"]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_matrix_fits_100_columns_with_a_legend_for_every_part(assignment):
    config = _config(assignment)
    parts = [part.name for part in config.parts]
    rows = [audit.row_for(f"bug {bug.name}", "bug", bug.parts, _grade(config, set(bug.parts)))
            for bug in load_bugs(config)]
    rows.append(audit.row_for("variant " + "a_very_long_variant_name" * 4, "variant", (),
                              _grade(config, set())))
    text = audit.render(parts, rows, {part.name: part.points for part in config.parts})
    assert max(len(line) for line in text.splitlines()) <= audit.WIDTH, text
    for head, part in zip(audit.abbreviations(parts), parts, strict=True):
        assert f"{head} = {part} (" in text


def test_the_diagnosed_share_counts_bugs_whose_outcomes_carry_a_diagnosis():
    config = _config("tf_basics")
    rows = [audit.Row("bug a", "bug", frozenset({"relu"}), {"relu": 6.0}, ("relu_mask",)),
            audit.Row("bug b", "bug", frozenset({"tanh"}), {"tanh": 6.0}, ()),
            audit.Row("variant c", "variant", frozenset(), {}, ())]
    assert audit.diagnosed_share(rows) == (1, 2, ["bug b"])
    assert config.id == "tf_basics"


class _Graded:
    def __init__(self, grade: Grade):
        self.grade = grade


def _unfair_pipeline(monkeypatch) -> None:
    """grade_path replaced: avg_pool_uses_max also costs max_pool; all else as listed."""
    from grader.grading import run

    config = _config("tf_basics")
    unfair = _as_listed(config, also={"bug-avg_pool_uses_max": {"max_pool"}})

    def fake_grade_path(cfg, path, **_):
        # The skeleton is graded from a temporary folder: it earns nothing anywhere.
        if path.name.startswith("nn-grader-skeleton-"):
            return _Graded(_grade(cfg, {part.name for part in cfg.parts}))
        return _Graded(unfair(cfg, path))

    monkeypatch.setattr(run, "grade_path", fake_grade_path)


def test_release_with_audit_refuses_an_unfair_matrix_and_writes_nothing(monkeypatch, capsys,
                                                                      tmp_path):
    _unfair_pipeline(monkeypatch)
    code = cli_main(["release", str(REPO / "assignments" / "tf_basics" / "assignment.toml"),
                     "--out", str(tmp_path / "release"), "--audit", "--lang", "en"])
    captured = capsys.readouterr()
    assert code == 2, captured.out
    assert "the audit of its planted bugs and variants is unfair" in captured.err
    assert "costs 12 points in `max_pool`" in captured.out
    assert not (tmp_path / "release").exists()


def test_the_cli_exits_1_and_says_why_on_an_unfair_matrix(monkeypatch, capsys):
    _unfair_pipeline(monkeypatch)
    code = cli_main(["audit", str(REPO / "assignments" / "tf_basics" / "assignment.toml")])
    out = capsys.readouterr().out
    assert code == 1, out
    assert ("bug avg_pool_uses_max costs 12 points in `max_pool`, which bugs.toml does not "
            "list for it") in out
    assert "the audit of tf_basics is unfair" in out


@pytest.mark.slow
def test_the_cli_audits_one_real_bug_through_the_pipeline(capsys):
    code = cli_main(["audit", str(REPO / "assignments" / "tf_basics" / "assignment.toml"),
                     "--only", "softmax_axis_zero"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "the audit of tf_basics is fair" in out
    line = next(line for line in out.splitlines() if line.startswith("bug softmax_axis_zero"))
    cells = line.split()[2:-1]  # one per part, then the dx column
    parts = [part.name for part in _config("tf_basics").parts]
    assert cells[parts.index("softmax")].endswith("*"), line
    assert all(cell == "." for index, cell in enumerate(cells)
               if index != parts.index("softmax")), line
