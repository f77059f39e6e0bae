"""Tests for grader.config: assignment.toml → AssignmentConfig."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from grader.config import (
    SANDBOX_KEYS,
    AssignmentConfig,
    ConfigError,
    LatePolicy,
    load_assignment,
    validate_tests,
)
from grader.grading.run import sandbox_limits
from grader.runtime.sandbox import SandboxLimits

REPO = Path(__file__).resolve().parents[1]

GOOD = """\
id = "demo"
title = "A neural network by hand"
due = 2026-12-23T00:00:00+08:00
total = 30

[[files]]
student = "demo.py"
reference = "reference/demo.py"

[[parts]]
name = "layers"
points = 20
tests = ["test_fc_forward", "test_fc_backward"]

[[parts]]
name = "training"
points = 10
tests = ["test_accuracy"]
public = true
description = "trains to the threshold"

[budgets]
train_images = 1000
train_epochs = 2

[thresholds]
accuracy = 0.80
gradient = 1

[sandbox]
memory_mb = 2048
call_timeout_s = 30
total_time_s = 120

[late]
policy = "percent_per_day"
percent = 10
"""


def make_repo(tmp_path: Path, toml: str, assignment_id: str = "demo") -> Path:
    """A repository with assignments/<id>/assignment.toml and reference/demo.py."""
    folder = tmp_path / "assignments" / assignment_id
    folder.mkdir(parents=True)
    (folder / "assignment.toml").write_text(textwrap.dedent(toml), encoding="utf-8")
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "demo.py").write_text("x = 1\n", encoding="utf-8")
    return folder / "assignment.toml"


def load_error(tmp_path: Path, toml: str) -> str:
    path = make_repo(tmp_path, toml)
    with pytest.raises(ConfigError) as info:
        load_assignment(path)
    return str(info.value)


def test_good_file_loads_into_typed_config(tmp_path: Path) -> None:
    config = load_assignment(make_repo(tmp_path, GOOD))
    assert isinstance(config, AssignmentConfig)
    assert config.id == "demo" and config.title == "A neural network by hand"
    assert config.due == datetime(2026, 12, 22, 16, tzinfo=timezone.utc)
    assert config.files[0].student == "demo.py"
    assert config.files[0].reference == (tmp_path / "reference" / "demo.py").resolve()
    assert [p.name for p in config.parts] == ["layers", "training"]
    assert config.parts[0].tests == ("test_fc_forward", "test_fc_backward")
    assert config.parts[1].public and config.parts[1].description
    assert config.total_points == 30 and config.total == 30
    assert config.public_tests == ("test_accuracy",)
    assert config.part_of("test_fc_backward").name == "layers"
    assert config.budgets["train_epochs"] == 2
    assert config.thresholds == {"accuracy": 0.8, "gradient": 1.0}
    assert isinstance(config.thresholds["gradient"], float)
    assert config.sandbox["memory_mb"] == 2048
    assert config.late == LatePolicy(policy="percent_per_day", percent=10.0)
    assert config.root == tmp_path.resolve() / "assignments" / "demo"
    with pytest.raises(TypeError):
        config.budgets["train_epochs"] = 3  # type: ignore[index]


def test_load_by_id_and_by_folder(tmp_path: Path) -> None:
    make_repo(tmp_path, GOOD)
    assert load_assignment("demo", repo_root=tmp_path).id == "demo"
    assert load_assignment(tmp_path / "assignments" / "demo").id == "demo"


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_assignment("nothing", repo_root=tmp_path)


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda t: "colour = 'red'\n" + t, "unknown key `colour` at the top level"),
    (lambda t: t.replace('public = true', 'public = true\nweight = 2'),
     "unknown key `parts[1].weight` in [parts[1]]"),
    (lambda t: t.replace('[sandbox]\n', '[sandbox]\nnetwork = true\n'),
     "unknown key `sandbox.network`"),
    (lambda t: t.replace('title = "A neural network by hand"\n', ''),
     "missing required key `title`"),
    (lambda t: t.replace('points = 20', 'points = "20"'),
     "`parts[0].points` must be a number; received a string: parts[0].points='20'"),
    (lambda t: t.replace('points = 20', 'points = true'),
     "`parts[0].points` must be a number; received a boolean"),
    (lambda t: t.replace('points = 20', 'points = -5').replace('total = 30\n', ''),
     "part `layers`: points must be >= 0; received: points=-5"),
    (lambda t: t.replace('name = "training"', 'name = "layers"'),
     "part name `layers` is used twice"),
    (lambda t: t.replace('tests = ["test_accuracy"]', 'tests = ["test_fc_forward"]'),
     "test `test_fc_forward` is listed in part `layers` and in part `training`"),
    (lambda t: t.replace('tests = ["test_accuracy"]', 'tests = []'),
     "part `training` lists no tests"),
    (lambda t: t.replace('reference/demo.py', 'reference/absent.py'),
     "reference file `reference/absent.py` does not exist"),
    (lambda t: t.replace('total = 30', 'total = 100'),
     "the parts' points add up to 30; expected total = 100 (layers=20, training=10)"),
    (lambda t: t.replace('2026-12-23T00:00:00+08:00', '2026-12-23T00:00:00'),
     "received a local date-time without a UTC offset"),
    (lambda t: t.replace('2026-12-23T00:00:00+08:00', '"tomorrow"'),
     "`due` must be an offset date-time"),
    (lambda t: t.replace('id = "demo"', 'id = "other"'),
     "`id` must equal the folder name `demo`"),
    (lambda t: t.replace('student = "demo.py"', 'student = "src/demo.py"'),
     "must be a plain file name"),
    (lambda t: t.replace('accuracy = 0.80', 'accuracy = "high"'),
     "`thresholds.accuracy` must be a number; received a string"),
    (lambda t: t.replace('policy = "percent_per_day"', 'policy = "sometimes"'),
     "`late.policy` must be one of 'none', 'percent_per_day', 'zero_after'"),
    (lambda t: t.replace('percent = 10\n', ''),
     "missing required key `late.percent` for policy 'percent_per_day'"),
    (lambda t: t.replace('memory_mb = 2048', 'memory_mb = 0'),
     "`sandbox.memory_mb` must be at least 1"),
    (lambda t: t + "[oops\n", "not valid TOML"),
])
def test_errors_name_the_file_and_key(tmp_path: Path, edit, expected: str) -> None:
    message = load_error(tmp_path, edit(GOOD))
    assert message.startswith("assignments/demo/assignment.toml: ")
    assert expected in message


def test_error_carries_the_key(tmp_path: Path) -> None:
    path = make_repo(tmp_path, GOOD.replace('points = 20', 'points = "x"'))
    with pytest.raises(ConfigError) as info:
        load_assignment(path)
    assert info.value.key == "parts[0].points"


def test_validate_tests_accepts_exact_match(tmp_path: Path) -> None:
    config = load_assignment(make_repo(tmp_path, GOOD))
    validate_tests(config, {"test_fc_forward", "test_fc_backward", "test_accuracy"})


def test_validate_tests_names_missing_and_orphan_tests(tmp_path: Path) -> None:
    config = load_assignment(make_repo(tmp_path, GOOD))
    with pytest.raises(ConfigError) as info:
        validate_tests(config, {"test_fc_forward", "test_bwd", "test_accuracy"})
    message = str(info.value)
    assert "part `layers` names test `test_fc_backward` which does not exist" in message
    assert "tests that belong to no part" in message and "`test_bwd`" in message
    assert message.endswith("tests found: test_accuracy, test_bwd, test_fc_forward")


def test_late_policy_multiplier() -> None:
    due = datetime(2026, 12, 23, tzinfo=timezone.utc)
    per_day = LatePolicy("percent_per_day", percent=10, cutoff=due + timedelta(days=5))
    assert per_day.multiplier(due - timedelta(hours=1), due) == 1.0
    assert per_day.multiplier(due + timedelta(minutes=1), due) == pytest.approx(0.9)
    assert per_day.multiplier(due + timedelta(days=1, minutes=1), due) == pytest.approx(0.8)
    assert per_day.multiplier(due + timedelta(days=6), due) == 0.0
    zero = LatePolicy("zero_after", grace_minutes=10)
    assert zero.multiplier(due + timedelta(minutes=5), due) == 1.0
    assert zero.multiplier(due + timedelta(minutes=11), due) == 0.0
    assert LatePolicy().multiplier(due + timedelta(days=99), due) == 1.0


@pytest.mark.parametrize("toml", sorted((REPO / "assignments").glob("*/assignment.toml")),
                         ids=lambda p: p.parent.name)
def test_repository_assignments_load(toml: Path) -> None:
    config = load_assignment(toml, repo_root=REPO)
    assert config.total_points > 0


DEVICE_TOML = GOOD.replace("[thresholds]", """\
[budgets.gpu]
train_epochs = 10

[budgets.cpu]
train_images = 600

[sandbox.gpu]
call_timeout_s = 600
total_time_s = 1800

[[accuracy]]
test = "test_accuracy"
module = "demo"
build = "build_model"
preprocess = "preprocess"
train_images = 5000
test_images = 2000
epochs = 2
batch_size = 128
time_budget_s = 30

[accuracy.gpu]
train_images = 55000
epochs = 10

[thresholds]""")


def test_device_budgets_override_the_plain_ones(tmp_path: Path) -> None:
    config = load_assignment(make_repo(tmp_path, DEVICE_TOML))
    assert dict(config.budgets) == {"train_images": 1000, "train_epochs": 2}
    assert config.budgets_for("gpu") == {"train_images": 1000, "train_epochs": 10}
    assert config.budgets_for("cpu") == {"train_images": 600, "train_epochs": 2}
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        config.budgets_for("tpu")


def test_sandbox_limits_have_one_home_and_device_overrides(tmp_path: Path) -> None:
    config = load_assignment(make_repo(tmp_path, DEVICE_TOML))
    plain, gpu = sandbox_limits(config), sandbox_limits(config, device="gpu")
    assert (plain.call_timeout_s, plain.total_time_s, plain.memory_mb) == (30, 120, 2048)
    assert (gpu.call_timeout_s, gpu.total_time_s, gpu.memory_mb) == (600, 1800, 2048)
    assert sandbox_limits(config, device="cpu") == plain
    assert set(SANDBOX_KEYS) == set(SandboxLimits.__dataclass_fields__)


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda t: t.replace("[sandbox]\n", "[sandbox]\nwall_seconds = 5\n"),
     "unknown key `sandbox.wall_seconds` in [sandbox]; expected one of: address_space_mb, "
     "call_timeout_s, cpu_seconds,"),
    (lambda t: t.replace("[sandbox]\n", "[sandbox]\ngpu = true\n"), "unknown key `sandbox.gpu`"),
    (lambda t: t.replace("train_epochs = 2\n", "train_epochs = 2\ncall_timeout_s = 5\n"),
     "`budgets.call_timeout_s` is a sandbox limit: write it under [sandbox]"),
    (lambda t: t.replace("total_time_s = 120", "total_time_s = 0"),
     "`sandbox.total_time_s` must be positive"),
    (lambda t: t.replace("memory_mb = 2048", "memory_mb = 2048.5"), "`sandbox.memory_mb` must be"),
    (lambda t: t + "\n[sandbox.tpu]\nmemory_mb = 1\n", "unknown key `sandbox.tpu`"),
])
def test_sandbox_keys_are_checked(tmp_path: Path, edit, expected: str) -> None:
    assert expected in load_error(tmp_path, edit(GOOD))


def test_accuracy_entries_and_their_device_budgets(tmp_path: Path) -> None:
    config = load_assignment(make_repo(tmp_path, DEVICE_TOML))
    entry = config.accuracy_test("test_accuracy")
    assert (entry.module, entry.build, entry.preprocess) == ("demo", "build_model", "preprocess")
    assert entry.budget_for("cpu") == {"seed": 0, "train_images": 5000, "test_images": 2000,
                                       "epochs": 2, "batch_size": 128, "time_budget_s": 30.0}
    assert entry.budget_for("gpu")["train_images"] == 55000
    assert entry.budget_for("gpu")["epochs"] == 10
    with pytest.raises(KeyError, match="no \\[\\[accuracy\\]\\] entry for test `test_x`"):
        config.accuracy_test("test_x")
    assert load_assignment(make_repo(tmp_path / "plain", GOOD)).accuracy == ()


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda t: t.replace("[budgets.gpu]", "[budgets.tpu]"),
     "unknown subtable `[budgets.tpu]`; expected one of: [budgets.cpu], [budgets.gpu]"),
    (lambda t: t.replace('test = "test_accuracy"', 'test = "test_nothing"'),
     "`accuracy[0].test` names `test_nothing`, which no part lists"),
    (lambda t: t.replace('module = "demo"', 'module = "other"'),
     "`accuracy[0].module` must be a student module"),
    (lambda t: t.replace("batch_size = 128\n", ""),
     "missing required key `accuracy[0].batch_size`"),
    (lambda t: t.replace("epochs = 2\n", "epochs = 2.5\n"),
     "`accuracy[0].epochs` must be an integer"),
    (lambda t: t.replace("time_budget_s = 30", "time_budget_s = 0"),
     "`accuracy[0].time_budget_s` must be positive"),
    (lambda t: t.replace("[accuracy.gpu]\n", "[accuracy.gpu]\nlearning_rate = 1\n"),
     "unknown key `accuracy[0].gpu.learning_rate`"),
    (lambda t: t.replace('preprocess = "preprocess"\n', ""),
     "missing required key `accuracy[0].preprocess`"),
])
def test_accuracy_and_device_errors(tmp_path: Path, edit, expected: str) -> None:
    assert expected in load_error(tmp_path, edit(DEVICE_TOML))


# -- [parameters]: the task's own values, one home ---------------------------------------------

PARAMETERS = GOOD + """
[parameters]
latent_dims = [100, 200, 300]
learning_rate = 0.1
activation = "relu"
bias = true
"""


def test_parameters_load_read_only_with_arrays_as_tuples(tmp_path: Path) -> None:
    config = load_assignment(make_repo(tmp_path, PARAMETERS))
    assert dict(config.parameters) == {"latent_dims": (100, 200, 300), "learning_rate": 0.1,
                                       "activation": "relu", "bias": True}
    with pytest.raises(TypeError):
        config.parameters["bias"] = False  # type: ignore[index]
    assert load_assignment(make_repo(tmp_path / "none", GOOD)).parameters == {}


# A released assignment.toml sits in the student's folder (`grader check` reads it): every
# value here is what a student could write there.
@pytest.mark.parametrize(("parameters", "expected"), [
    ("[parameters.nested]\nx = 1\n", "`parameters.nested` must be a number, a string, a "
     "boolean or an array of them; received a table"),
    ("[parameters]\nsizes = [[1, 2], [3]]\n", "`parameters.sizes` must be a number, a string, "
     "a boolean or an array of them; received an array"),
    ("[parameters]\nx = inf\n", "`parameters.x` must be finite; received: parameters.x=inf"),
    ("[parameters]\nx = [1, nan]\n", "`parameters.x` must be finite"),
    ("[parameters]\n\"a-b\" = 1\n", "a parameter's name must be a Python identifier"),
    ("[parameters]\n\"__class__\\u0000\" = 1\n", "must be a Python identifier"),
    ("[parameters]\nwhen = 2026-01-01\n", "`parameters.when` must be a number, a string"),
    ("parameters = 3\n", "`parameters` must be a table ([parameters]); received an integer"),
])
def test_bad_parameters_name_the_key(tmp_path: Path, parameters: str, expected: str) -> None:
    text = GOOD.replace('id = "demo"', parameters.strip() + '\nid = "demo"') if (
        parameters.startswith("parameters =")) else GOOD + "\n" + parameters
    message = load_error(tmp_path, text)
    assert message.startswith("assignments/demo/assignment.toml: ")
    assert expected in message, message


@pytest.mark.parametrize(("constant", "parameter", "agrees"), [
    ("LATENT_DIMS = (100, 200, 300)", "latent_dims = [100, 200, 300]", True),
    ("LATENT_DIMS = [100, 200, 300]", "latent_dims = [100, 200, 300]", True),
    ("LATENT_DIMS = (100, 200, 300)", "latent_dims = [100, 200, 400]", False),
    ("LATENT_DIMS = (100, 200)", "latent_dims = [100, 200, 300]", False),
    ("LATENT_DIMS = 100", "latent_dims = [100]", False),
    ("LEARNING_RATE = 0.1", "learning_rate = 0.1", True),
    ("UNITS = 4", "units = 4.0", True),
    ("BIAS = 1", "bias = true", False),
    ("NAME = 'relu'", 'name = "relu"', True),
    ("NAME = 'relu'", 'name = "tanh"', False),
    ("OTHER = 3", "units = 4", True),  # no constant of that name: nothing to compare
    ("UNITS = compute()", "units = 4", True),  # not a literal: not compared
])
def test_reference_constants_must_agree_with_parameters(
        tmp_path: Path, constant: str, parameter: str, agrees: bool) -> None:
    from grader.config import parameter_mismatches

    path = make_repo(tmp_path, GOOD + "\n[parameters]\n" + parameter + "\n")
    (tmp_path / "reference" / "demo.py").write_text(f'"""A reference."""\n{constant}\n')
    reasons = parameter_mismatches(load_assignment(path))
    assert (reasons == []) is agrees, reasons
    if not agrees:
        assert reasons[0].startswith(f"demo.py: {constant.split(' =')[0]} = ")
        assert "assignment.toml has [parameters]" in reasons[0]


def test_the_repositorys_references_agree_with_their_parameters() -> None:
    from grader.config import parameter_mismatches

    mlp = load_assignment(REPO / "assignments" / "mlp_numpy" / "assignment.toml")
    assert mlp.parameters["latent_dims"] == (100, 200, 300)  # the lecture's search
    for toml in sorted((REPO / "assignments").glob("*/assignment.toml")):
        assert parameter_mismatches(load_assignment(toml)) == [], toml.parent.name


def test_the_released_toml_carries_the_parameters_back(tmp_path: Path) -> None:
    from grader.release.build import public_config_text

    config = load_assignment(make_repo(tmp_path, PARAMETERS.replace(
        'activation = "relu"', 'activation = "re\\"lu\\\\ 激活"')))
    released = tmp_path / "released" / "assignments" / "demo"
    released.mkdir(parents=True)
    (released / "assignment.toml").write_text(public_config_text(config), encoding="utf-8")
    again = load_assignment(released / "assignment.toml")
    assert again.parameters == config.parameters
    assert again.parameters["activation"] == 're"lu\\ 激活'
