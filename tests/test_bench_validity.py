"""bench/validity.py: one assignment's section is replaced, the others are kept, and the
overall share is recomputed from every section present (no grading here: `measure` is
replaced by a fixed measurement)."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _validity():
    spec = importlib.util.spec_from_file_location("_validity", REPO / "bench" / "validity.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it runs
    spec.loader.exec_module(module)
    return module


def _section(validity, name: str, bugs: int, diagnosed: int, undiagnosed: tuple[str, ...]):
    body = f"```\nmatrix of {name}\n```\n\nUndiagnosed: {', '.join(undiagnosed)}"
    return validity.Section(name, bugs, diagnosed, 2, True, 12.0,
                            f"Measured 2026-11-30 10:00 UTC on host ({name}).", body,
                            undiagnosed)


def test_measuring_one_assignment_keeps_the_others_and_recomputes_the_share(tmp_path,
                                                                             monkeypatch):
    validity = _validity()
    out = tmp_path / "validity.md"
    out.write_text(validity.render({
        "keras_cnn": _section(validity, "keras_cnn", 4, 1, ("k1", "k2", "k3")),
        "mlp_numpy": _section(validity, "mlp_numpy", 10, 5, ("old",))}), encoding="utf-8")
    fresh = dataclasses.replace(_section(validity, "mlp_numpy", 10, 10, ()),
                                body="```\nnew matrix\n```")
    monkeypatch.setattr(validity, "measure", lambda assignment, note="": fresh)
    assert validity.main(["--assignment", "mlp_numpy", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "11 of 14 planted bugs (79%)" in text  # 10 + 1 of 10 + 4
    assert "matrix of keras_cnn" in text and "new matrix" in text
    assert "matrix of mlp_numpy" not in text and "mlp_numpy/old" not in text
    assert "Undiagnosed: keras_cnn/k1, keras_cnn/k2, keras_cnn/k3." in text
    assert "Not measured: tf_basics, keras_mlp, alexnet." in text
    again = validity.read_sections(text)
    assert sorted(again) == ["keras_cnn", "mlp_numpy"]
    assert again["keras_cnn"].measured == "Measured 2026-11-30 10:00 UTC on host (keras_cnn)."


def test_an_unknown_assignment_is_refused_before_anything_runs(tmp_path, capsys):
    validity = _validity()
    with pytest.raises(SystemExit) as exit_info:
        validity.main(["--assignment", "no_such", "--out", str(tmp_path / "v.md")])
    assert exit_info.value.code == 2
    assert "no assignment no_such; expected some of mlp_numpy" in capsys.readouterr().err
    assert not (tmp_path / "v.md").exists()
