"""Load `assignments/<id>/assignment.toml` into a typed, frozen `AssignmentConfig`.

The schema (every key not listed here is an error that names the key and the file):

```toml
id = "mlp_numpy"                     # required; must equal the folder name
title = "A neural network by hand"   # required
due = 2026-12-23T00:00:00+08:00      # required; a TOML offset date-time (a UTC offset is needed)
total = 100                          # optional; when given the parts' points must add up to it

[[files]]                            # one or more
student = "mlp_numpy.py"             # required; the file the student hands in (.py or .ipynb)
reference = "reference/mlp_numpy.py" # optional; stripped into the skeleton; relative to the course

[[parts]]                            # one or more
name = "layers"                      # required, unique
points = 20                          # required, >= 0
tests = ["test_fc_forward"]          # required, non-empty; test functions in autograde_tests/<id>/
public = false                       # optional; true: these tests also ship with the release
description = "..."                  # optional; shown in reports

[budgets]      # optional, free-form: name = number (time limits, epochs, data sizes)
[budgets.cpu]  # optional: the same kind of numbers, overriding [budgets] on that device
[budgets.gpu]  #   (`config.budgets_for("gpu")`); "cpu" and "gpu" are the only subtables
[thresholds]   # optional, free-form: name = number (accuracies, tolerances)
[parameters]   # optional: the task's own numbers and names, one home for each (hidden sizes,
               #   ...): name = number, string, boolean or an array of them. Tests read them
               #   through the `parameters` fixture, README.md as {{ parameters.name }}, and
               #   the release refuses a reference whose NAME constant (upper case) differs.
[sandbox]      # optional: the runtime's limits, keys named as `SandboxLimits` fields
[sandbox.cpu]  #   (`SANDBOX_KEYS`: call_timeout_s, total_time_s, memory_mb, ...);
[sandbox.gpu]  #   per-device overrides as for budgets (`config.sandbox_for("gpu")`)
[late]         # optional: policy = "none" | "percent_per_day" | "zero_after",
               #           percent = 10, cutoff = <offset date-time>, grace_minutes = 0

[[accuracy]]   # optional, one per accuracy test (see `AccuracyTest`)
test = "test_accuracy"               # required; a test named by a part
module = "keras_cnn"                 # required; a student module (file stem)
build = "build_cnn"                  # required; function returning a compiled model
preprocess = "preprocess"            # required; function (images, labels) -> (x, y)
train_images = 5000                  # budget keys (BUDGET_KEYS); each required, here or in
test_images = 2000                   #   both device subtables below
epochs = 2
batch_size = 128
time_budget_s = 30
seed = 0                             # optional, default 0
[accuracy.gpu]                       # optional: budget keys overriding the above on a GPU
epochs = 10                          #   ([accuracy.cpu] likewise)
```

A test may belong to one part only. `validate_tests` checks the parts against the test
functions actually found in `autograde_tests/<id>/`: a listed test that does not exist and
a found test that belongs to no part are both errors (every hidden test must be worth
something; a helper that should not count must not be named `test_*`).
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from grader.grade_record import late_multiplier
from grader.runtime.sandbox import SandboxLimits

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = [
    "ACCURACY_BUDGET_KEYS",
    "CONFIG_NAME",
    "DEVICES",
    "AccuracyTest",
    "LATE_POLICIES",
    "SANDBOX_KEYS",
    "AssignmentConfig",
    "ConfigError",
    "LatePolicy",
    "Part",
    "StudentFile",
    "load_assignment",
    "parameter_mismatches",
    "validate_tests",
]

CONFIG_NAME = "assignment.toml"
LATE_POLICIES = ("none", "percent_per_day", "zero_after")
# [sandbox] keys: exactly the `SandboxLimits` fields, with the type each must have (int or
# float). One home per limit: call_timeout_s lives here, not in [budgets].
SANDBOX_KEYS: Mapping[str, type] = MappingProxyType({
    name: int if "int" in str(spec.type) else float
    for name, spec in SandboxLimits.__dataclass_fields__.items()
})

DEVICES = ("cpu", "gpu")
"""The devices budgets may differ on (`[budgets.<device>]`, `[accuracy.<device>]`)."""
# Budget keys of an [[accuracy]] entry, with their types; seed is optional (default 0).
ACCURACY_BUDGET_KEYS: Mapping[str, type] = MappingProxyType({
    "train_images": int,
    "test_images": int,
    "epochs": int,
    "batch_size": int,
    "time_budget_s": float,
    "seed": int,
})
_ACCURACY_REQUIRED = ("train_images", "test_images", "epochs", "batch_size", "time_budget_s")

_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# A pytest function name, optionally inside a class: `test_x` or `TestLayer::test_x`.
_TEST_RE = re.compile(r"^([A-Za-z_]\w*::)?[A-Za-z_]\w*$")


class ConfigError(ValueError):
    """An `assignment.toml` that cannot be used; the message names the file and the key.

    Attributes:
        path: The configuration file, as shown in the message.
        key: The dotted key at fault (`parts[2].points`), or "" for the whole file.
    """

    def __init__(self, path: str, key: str, message: str) -> None:
        self.path = path
        self.key = key
        super().__init__(f"{path}: {message}")


@dataclass(frozen=True)
class StudentFile:
    """A file the student hands in.

    Attributes:
        student: Its name in the submission (`mlp_numpy.py`), a plain file name.
        reference: The reference solution stripped into the skeleton (absolute), or None.
    """

    student: str
    reference: Path | None = None


@dataclass(frozen=True)
class Part:
    """A graded part: its points are earned by its tests.

    Attributes:
        name: Unique within the assignment.
        points: Points the part is worth (>= 0).
        tests: Test function names in `autograde_tests/<id>/`.
        public: Whether these tests also ship with the release for `grader check`.
        description: One line for reports, may be empty.
    """

    name: str
    points: float
    tests: tuple[str, ...]
    public: bool = False
    description: str = ""


@dataclass(frozen=True)
class LatePolicy:
    """What a late submission costs.

    Attributes:
        policy: "none" (no penalty), "percent_per_day" (each started day after the due
            date, after the grace period, costs `percent` of the grade) or "zero_after"
            (anything after `cutoff`, default the due date, scores zero).
        percent: Percent of the grade lost per started day (percent_per_day only).
        cutoff: After this, the grade is zero (any policy but "none"); None: no cutoff,
            except for "zero_after" where it means the due date.
        grace_minutes: Minutes after the due date that are not late.
    """

    policy: str = "none"
    percent: float = 0.0
    cutoff: datetime | None = None
    grace_minutes: float = 0.0

    def multiplier(self, submitted_at: datetime, due: datetime) -> float:
        """The factor the grade is multiplied by.

        Args:
            submitted_at: When the submission was made (timezone-aware).
            due: The assignment's due date (timezone-aware).

        Returns:
            A number in [0, 1]: 1 when on time or when the policy is "none".
        """
        return late_multiplier(self, submitted_at, due)  # the one lateness rule


@dataclass(frozen=True)
class AccuracyTest:
    """An accuracy test: the grader trains the student's model under a budget.

    The grader calls ``<module>.<preprocess>(images, labels)`` and ``<module>.<build>()``
    in the student runtime, trains the returned compiled model and computes the
    accuracy itself (`grader.checks.accuracy.measure_accuracy`); `grader calibrate`
    runs the reference under the same budget to set the threshold.

    Attributes:
        test: The hidden test's function name (one of a part's tests).
        module: The student module, e.g. ``"keras_cnn"``.
        build: The function that builds and compiles the model, e.g. ``"build_cnn"``.
        preprocess: The function ``(images, labels) -> (x, y)``.
        budget: Budget keys (`ACCURACY_BUDGET_KEYS`) that apply on every device.
        devices: Per-device overrides of `budget`, by device name.
    """

    test: str
    module: str
    build: str
    preprocess: str
    budget: Mapping[str, float | int] = field(default_factory=lambda: MappingProxyType({}))
    devices: Mapping[str, Mapping[str, float | int]] = field(
        default_factory=lambda: MappingProxyType({}))

    def budget_for(self, device: str) -> Mapping[str, float | int]:
        """The budget on ``device``: the entry's keys with the device's overrides applied.

        Raises:
            ValueError: If ``device`` is not one of `DEVICES`.
        """
        if device not in DEVICES:
            raise ValueError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
        merged = {"seed": 0, **self.budget, **self.devices.get(device, {})}
        return MappingProxyType(merged)


@dataclass(frozen=True)
class AssignmentConfig:
    """One assignment, as `assignment.toml` describes it.

    Attributes:
        id: The assignment id, also its folder name (`mlp_numpy`).
        title: Shown to students.
        due: The due date, timezone-aware.
        files: The files the student hands in.
        parts: The graded parts, in file order.
        budgets: Named numbers: time limits, epochs, data sizes (read-only mapping).
        thresholds: Named numbers: accuracies, tolerances (read-only mapping, floats).
        sandbox: The runtime's limits (keys from `SANDBOX_KEYS`; read-only mapping).
        device_sandbox: `[sandbox.cpu]` / `[sandbox.gpu]`: overrides of `sandbox` per
            device (see `sandbox_for`).
        late: The late policy.
        device_budgets: `[budgets.cpu]` / `[budgets.gpu]`: overrides of `budgets` per
            device (see `budgets_for`).
        accuracy: The `[[accuracy]]` entries, in file order.
        root: The assignment's folder (`<course>/assignments/<id>`).
        repo_root: The course's folder (`grader.course`) that reference paths are relative
            to; it holds `assignments/`, `reference/` and `autograde_tests/`.
        total: The declared total, or None; when given it equals `total_points`.
        parameters: `[parameters]`: the task's own values (arrays as tuples; read-only).
    """

    id: str
    title: str
    due: datetime
    files: tuple[StudentFile, ...]
    parts: tuple[Part, ...]
    budgets: Mapping[str, float | int] = field(default_factory=lambda: MappingProxyType({}))
    thresholds: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    sandbox: Mapping[str, float | int | bool] = field(
        default_factory=lambda: MappingProxyType({}))
    late: LatePolicy = LatePolicy()
    root: Path = Path(".")
    repo_root: Path = Path(".")
    total: float | None = None
    device_budgets: Mapping[str, Mapping[str, float | int]] = field(
        default_factory=lambda: MappingProxyType({}))
    accuracy: tuple[AccuracyTest, ...] = ()
    device_sandbox: Mapping[str, Mapping[str, float | int]] = field(
        default_factory=lambda: MappingProxyType({}))
    parameters: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def sandbox_for(self, device: str | None) -> Mapping[str, float | int]:
        """`sandbox` with the ``[sandbox.<device>]`` overrides applied (None: none applied)."""
        if device is not None and device not in DEVICES:
            raise ValueError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
        return MappingProxyType({**self.sandbox, **self.device_sandbox.get(device or "", {})})

    def budgets_for(self, device: str) -> Mapping[str, float | int]:
        """`budgets` with the ``[budgets.<device>]`` overrides applied (read-only).

        Args:
            device: "cpu" or "gpu".

        Raises:
            ValueError: If ``device`` is not one of `DEVICES`.
        """
        if device not in DEVICES:
            raise ValueError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
        return MappingProxyType({**self.budgets, **self.device_budgets.get(device, {})})

    def accuracy_test(self, test_name: str) -> AccuracyTest:
        """The `[[accuracy]]` entry of a test.

        Raises:
            KeyError: If no entry names ``test_name``.
        """
        for entry in self.accuracy:
            if entry.test == test_name:
                return entry
        listed = ", ".join(entry.test for entry in self.accuracy) or "none"
        raise KeyError(f"`{self.id}` has no [[accuracy]] entry for test `{test_name}`; "
                       f"entries: {listed}")

    @property
    def total_points(self) -> float:
        """The sum of the parts' points."""
        return sum(part.points for part in self.parts)

    @property
    def test_names(self) -> tuple[str, ...]:
        """Every test named by a part, in part order."""
        return tuple(test for part in self.parts for test in part.tests)

    @property
    def public_tests(self) -> tuple[str, ...]:
        """The tests of public parts: they ship with the release."""
        return tuple(test for part in self.parts if part.public for test in part.tests)

    @property
    def student_files(self) -> tuple[str, ...]:
        """The names of the files the student hands in."""
        return tuple(f.student for f in self.files)

    def part_of(self, test_name: str) -> Part:
        """The part a test belongs to.

        Raises:
            KeyError: If no part lists `test_name`.
        """
        for part in self.parts:
            if test_name in part.tests:
                return part
        raise KeyError(f"test `{test_name}` belongs to no part of `{self.id}`; "
                       f"tests: {', '.join(self.test_names)}")


def load_assignment(path_or_id: str | Path, *, repo_root: Path | None = None) -> AssignmentConfig:
    """Read and check an assignment's configuration.

    Args:
        path_or_id: An `assignment.toml`, the folder holding one, or an assignment id
            looked up as `<repo_root>/assignments/<id>/assignment.toml`.
        repo_root: The course's folder (`grader.course`); reference paths are relative to
            it. Default: for a path, the folder above `assignments/`; for an id, the
            current course (``--course``, ``$GRADER_COURSE``, or the first folder holding
            `course.toml` from the current directory up), never the tool's own folder.

    Returns:
        The checked configuration.

    Raises:
        CourseError: (a `ConfigError`) For an id, when no course is found.
        ConfigError: If the file is missing, is not valid TOML, or breaks the schema
            (unknown or missing keys, wrong types, duplicate part names, a test in two
            parts, negative points, a total that the parts do not add up to, a reference
            file that does not exist).
    """
    toml_path = _find_toml(path_or_id, repo_root)
    if repo_root is None:
        repo_root = toml_path.parent.parent.parent
    repo_root = repo_root.resolve()
    shown = _shown(toml_path, repo_root)
    try:
        raw = toml_path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(shown, "", "no such file; expected an assignment.toml in "
                          f"{toml_path.parent}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(shown, "", f"cannot read the file: {exc}") from None
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(shown, "", f"not valid TOML: {exc}") from None
    return _Parser(shown, toml_path.parent.resolve(), repo_root).config(data)


def validate_tests(config: AssignmentConfig, found_test_names: Iterable[str]) -> None:
    """Check the parts' tests against the tests that exist.

    Args:
        config: The assignment.
        found_test_names: Test function names collected from `autograde_tests/<id>/`.

    Raises:
        ConfigError: If a part names a test that does not exist, or a test exists that
            belongs to no part; one message lists every such test and the tests found.
    """
    found = set(found_test_names)
    shown = _shown(config.root / CONFIG_NAME, config.repo_root)
    problems = []
    for part in config.parts:
        missing = [test for test in part.tests if test not in found]
        if missing:
            which = ", ".join(f"`{t}`" for t in missing)
            noun = "test" if len(missing) == 1 else "tests"
            verb = "does" if len(missing) == 1 else "do"
            problems.append(f"part `{part.name}` names {noun} {which} which {verb} not exist")
    orphans = sorted(found - set(config.test_names))
    if orphans:
        problems.append("tests that belong to no part (every hidden test must be worth "
                        "points): " + ", ".join(f"`{t}`" for t in orphans))
    if problems:
        listing = ", ".join(sorted(found)) or "none"
        raise ConfigError(shown, "parts", "; ".join(problems) + f"; tests found: {listing}")


def parameter_mismatches(config: AssignmentConfig) -> list[str]:
    """Where a reference file contradicts `[parameters]`: the release refuses on any.

    A parameter `name` is checked against a top-level constant `NAME = <literal>` of each
    Python reference file that defines one (arrays and tuples compare as sequences), so
    the skeleton a student gets says what assignment.toml says.

    Returns:
        One sentence per contradiction (empty when every constant agrees).
    """
    reasons = []
    for file in config.files:
        if file.reference is None or file.reference.suffix != ".py":
            continue
        constants = _literal_constants(file.reference)
        for name, wanted in config.parameters.items():
            if name.upper() not in constants:
                continue
            found = constants[name.upper()]
            if not _agrees(found, wanted):
                reasons.append(f"{file.reference.name}: {name.upper()} = {found!r} but "
                               f"assignment.toml has [parameters] {name} = "
                               f"{list(wanted) if isinstance(wanted, tuple) else wanted!r}; "
                               "change one so they agree (the skeleton keeps the constant)")
    return reasons


def _agrees(found: Any, wanted: Any) -> bool:
    """A reference's literal against a parameter: sequences item by item, 100 == 100.0,
    but True is not 1."""
    if isinstance(wanted, tuple):
        return (isinstance(found, (list, tuple)) and len(found) == len(wanted)
                and all(_agrees(f, w) for f, w in zip(found, wanted, strict=True)))
    if isinstance(found, bool) or isinstance(wanted, bool):
        return type(found) is type(wanted) and found == wanted
    if isinstance(found, (int, float)) and isinstance(wanted, (int, float)):
        return found == wanted
    return type(found) is type(wanted) and found == wanted


def _literal_constants(path: Path) -> dict[str, Any]:
    """``NAME = <literal>`` at the top level of a Python file (other statements ignored)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return {}  # the release's own checks report an unreadable reference
    found = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, RecursionError):
                continue
    return found


def _find_toml(path_or_id: str | Path, repo_root: Path | None) -> Path:
    text = str(path_or_id)
    bare = isinstance(path_or_id, str) and not any(sep in text for sep in "/\\")
    if bare and (_ID_RE.match(text) or not (text.endswith(".toml") or Path(text).is_dir())):
        # A bare id is the course's assignment, even when a folder of that name (a student
        # release, say) sits in the current directory.
        root = repo_root if repo_root is not None else _course_root()
        return root / "assignments" / text / CONFIG_NAME
    candidate = Path(path_or_id)
    return candidate if candidate.suffix == ".toml" else candidate / CONFIG_NAME


def _course_root() -> Path:
    """The current course's folder (`grader.course.current`): never the tool's own folder."""
    from grader.course import current  # grader.course imports this module

    return current().root


def _shown(path: Path, repo_root: Path) -> str:
    try:
        return str(path.resolve().relative_to(repo_root))
    except ValueError:
        return str(path)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, datetime):
        return "a date-time"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


class _Parser:
    """Turns the parsed TOML into an `AssignmentConfig`, raising on the first problem."""

    _TOP = {"id", "title", "due", "total", "files", "parts", "budgets", "thresholds",
            "parameters",
            "sandbox", "late", "accuracy"}
    _ACCURACY = {"test", "module", "build", "preprocess", *ACCURACY_BUDGET_KEYS, *DEVICES}
    _FILE = {"student", "reference"}
    _PART = {"name", "points", "tests", "public", "description"}
    _LATE = {"policy", "percent", "cutoff", "grace_minutes"}

    def __init__(self, shown: str, root: Path, repo_root: Path) -> None:
        self.shown = shown
        self.root = root
        self.repo_root = repo_root

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(self.shown, key, message)

    def check_keys(self, table: Mapping[str, Any], allowed: set[str], where: str,
                   required: Iterable[str] = ()) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            key = f"{where}.{unknown[0]}" if where else unknown[0]
            place = f"in [{where}]" if where else "at the top level"
            raise self.fail(key, f"unknown key `{key}` {place}; expected one of: "
                            f"{', '.join(sorted(allowed))}")
        for name in required:
            if name not in table:
                key = f"{where}.{name}" if where else name
                raise self.fail(key, f"missing required key `{key}`")

    def expect(self, value: Any, key: str, kinds: tuple[type, ...], what: str) -> Any:
        # bool is an int in Python, but `points = true` is a mistake.
        if isinstance(value, bool) and bool not in kinds:
            ok = False
        else:
            ok = isinstance(value, kinds)
        if not ok:
            raise self.fail(key, f"`{key}` must be {what}; received {_type_name(value)}: "
                            f"{key}={value!r}")
        return value

    def number(self, value: Any, key: str, *, minimum: float | None = None) -> float | int:
        self.expect(value, key, (int, float), "a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(key, f"`{key}` must be a finite number; received: {key}={value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(key, f"`{key}` must be at least {minimum:g}; "
                            f"received: {key}={value!r}")
        return value

    def moment(self, value: Any, key: str) -> datetime:
        example = "an offset date-time like 2026-12-23T00:00:00+08:00"
        if not isinstance(value, datetime):
            raise self.fail(key, f"`{key}` must be {example}; received {_type_name(value)}: "
                            f"{key}={value!r}")
        if value.tzinfo is None:
            raise self.fail(key, f"`{key}` must be {example}; received a local date-time "
                            f"without a UTC offset: {key}={value.isoformat()}")
        return value

    def config(self, data: Mapping[str, Any]) -> AssignmentConfig:
        self.check_keys(data, self._TOP, "", required=("id", "title", "due", "files", "parts"))
        ident = self.expect(data["id"], "id", (str,), "a string")
        if not _ID_RE.match(ident):
            raise self.fail("id", "`id` must be lower case letters, digits and underscores, "
                            f"starting with a letter; received: id={ident!r}")
        if ident != self.root.name:
            raise self.fail("id", f"`id` must equal the folder name `{self.root.name}`; "
                            f"received: id={ident!r}")
        title = self.expect(data["title"], "title", (str,), "a string")
        due = self.moment(data["due"], "due")
        files = self.files(data["files"])
        parts = self.parts(data["parts"])
        total = None
        if "total" in data:
            total = self.number(data["total"], "total", minimum=0)
            actual = sum(part.points for part in parts)
            if not math.isclose(actual, total, abs_tol=1e-9):
                listing = ", ".join(f"{p.name}={p.points:g}" for p in parts)
                raise self.fail("total", f"the parts' points add up to {actual:g}; expected "
                                f"total = {total:g} ({listing})")
        budgets, device_budgets = self.budgets(data.get("budgets", {}))
        sandbox, device_sandbox = self.sandbox(data.get("sandbox", {}))
        return AssignmentConfig(
            id=ident,
            title=title,
            due=due,
            files=files,
            parts=parts,
            budgets=budgets,
            device_budgets=device_budgets,
            accuracy=self.accuracy(data.get("accuracy", []), files, parts),
            parameters=self.parameters(data.get("parameters", {})),
            thresholds=MappingProxyType({
                k: float(v) for k, v in self.numbers(data.get("thresholds", {}),
                                                     "thresholds").items()}),
            sandbox=sandbox,
            device_sandbox=device_sandbox,
            late=self.late(data.get("late", {}), due),
            root=self.root,
            repo_root=self.repo_root,
            total=total,
        )

    def files(self, value: Any) -> tuple[StudentFile, ...]:
        self.expect(value, "files", (list,), "an array of tables ([[files]])")
        if not value:
            raise self.fail("files", "`files` must list at least one [[files]] table; "
                            "received none")
        result: list[StudentFile] = []
        seen: set[str] = set()
        for i, entry in enumerate(value):
            where = f"files[{i}]"
            self.expect(entry, where, (dict,), "a table")
            self.check_keys(entry, self._FILE, where, required=("student",))
            name = self.expect(entry["student"], f"{where}.student", (str,), "a string")
            if Path(name).name != name or name in ("", ".", ".."):
                raise self.fail(f"{where}.student", f"`{where}.student` must be a plain file "
                                f"name without folders; received: student={name!r}")
            if not name.endswith((".py", ".ipynb")):
                raise self.fail(f"{where}.student", f"`{where}.student` must end in .py or "
                                f".ipynb; received: student={name!r}")
            if name in seen:
                raise self.fail(f"{where}.student", f"student file `{name}` is listed twice")
            seen.add(name)
            reference = None
            if "reference" in entry:
                rel = self.expect(entry["reference"], f"{where}.reference", (str,), "a string")
                reference = (self.repo_root / rel).resolve()
                if not reference.is_file():
                    raise self.fail(f"{where}.reference", f"reference file `{rel}` does not "
                                    f"exist; expected a file at {reference}")
            result.append(StudentFile(student=name, reference=reference))
        return tuple(result)

    def parts(self, value: Any) -> tuple[Part, ...]:
        self.expect(value, "parts", (list,), "an array of tables ([[parts]])")
        if not value:
            raise self.fail("parts", "`parts` must list at least one [[parts]] table; "
                            "received none")
        result: list[Part] = []
        owner: dict[str, str] = {}
        for i, entry in enumerate(value):
            where = f"parts[{i}]"
            self.expect(entry, where, (dict,), "a table")
            self.check_keys(entry, self._PART, where, required=("name", "points", "tests"))
            name = self.expect(entry["name"], f"{where}.name", (str,), "a string")
            if any(p.name == name for p in result):
                raise self.fail(f"{where}.name", f"part name `{name}` is used twice; part "
                                "names must be unique")
            points = self.number(entry["points"], f"{where}.points")
            if points < 0:
                raise self.fail(f"{where}.points", f"part `{name}`: points must be >= 0; "
                                f"received: points={points!r}")
            tests = self.expect(entry["tests"], f"{where}.tests", (list,),
                                "an array of test names")
            if not tests:
                raise self.fail(f"{where}.tests", f"part `{name}` lists no tests; expected "
                                "at least one test function name")
            for test in tests:
                self.expect(test, f"{where}.tests", (str,), "an array of strings")
                if not _TEST_RE.match(test):
                    raise self.fail(f"{where}.tests", f"part `{name}`: `{test}` is not a test "
                                    "function name; expected `test_x` or `TestClass::test_x`")
                if test in owner:
                    raise self.fail(f"{where}.tests", f"test `{test}` is listed in part "
                                    f"`{owner[test]}` and in part `{name}`; a test may "
                                    "belong to one part only")
                owner[test] = name
            public = self.expect(entry.get("public", False), f"{where}.public", (bool,),
                                 "true or false")
            description = self.expect(entry.get("description", ""), f"{where}.description",
                                      (str,), "a string")
            result.append(Part(name=name, points=points, tests=tuple(tests), public=public,
                               description=description))
        return tuple(result)

    def budgets(self, value: Any) -> tuple[Mapping[str, float | int],
                                           Mapping[str, Mapping[str, float | int]]]:
        """[budgets] numbers, and its [budgets.cpu] / [budgets.gpu] subtables."""
        self.expect(value, "budgets", (dict,), "a table ([budgets])")
        flat = {key: item for key, item in value.items() if not isinstance(item, dict)}
        devices = {}
        for key, item in value.items():
            if isinstance(item, dict):
                if key not in DEVICES:
                    allowed = ", ".join(f"[budgets.{d}]" for d in DEVICES)
                    raise self.fail(f"budgets.{key}", f"unknown subtable `[budgets.{key}]`; "
                                    f"expected one of: {allowed}")
                devices[key] = self.numbers(item, f"budgets.{key}")
        for where, table in [("budgets", flat)] + [(f"budgets.{d}", t) for d, t in
                                                   devices.items()]:
            moved = sorted(set(table) & set(SANDBOX_KEYS))
            if moved:  # one home per limit
                raise self.fail(f"{where}.{moved[0]}", f"`{where}.{moved[0]}` is a sandbox "
                                f"limit: write it under [{where.replace('budgets', 'sandbox')}]")
        return self.numbers(flat, "budgets"), MappingProxyType(devices)

    def accuracy(self, value: Any, files: tuple[StudentFile, ...],
                 parts: tuple[Part, ...]) -> tuple[AccuracyTest, ...]:
        self.expect(value, "accuracy", (list,), "an array of tables ([[accuracy]])")
        modules = [Path(f.student).stem for f in files]
        tests = {test for part in parts for test in part.tests}
        result: list[AccuracyTest] = []
        for i, entry in enumerate(value):
            where = f"accuracy[{i}]"
            self.expect(entry, where, (dict,), "a table")
            self.check_keys(entry, self._ACCURACY, where,
                            required=("test", "module", "build", "preprocess"))
            names = {key: self.expect(entry[key], f"{where}.{key}", (str,), "a string")
                     for key in ("test", "module", "build", "preprocess")}
            if names["test"] not in tests:
                raise self.fail(f"{where}.test", f"`{where}.test` names `{names['test']}`, "
                                f"which no part lists; tests: {', '.join(sorted(tests))}")
            if any(other.test == names["test"] for other in result):
                raise self.fail(f"{where}.test", f"test `{names['test']}` has two "
                                "[[accuracy]] entries")
            if names["module"] not in modules:
                raise self.fail(f"{where}.module", f"`{where}.module` must be a student "
                                f"module; received: module={names['module']!r}; modules: "
                                f"{', '.join(modules)}")
            budget = self.accuracy_budget(
                {k: v for k, v in entry.items() if k in ACCURACY_BUDGET_KEYS}, where)
            devices = {}
            for device in DEVICES:
                if device in entry:
                    sub = f"{where}.{device}"
                    self.expect(entry[device], sub, (dict,), f"a table ([{sub}])")
                    self.check_keys(entry[device], set(ACCURACY_BUDGET_KEYS), sub)
                    devices[device] = self.accuracy_budget(entry[device], sub)
            for device in DEVICES:
                merged = {**budget, **devices.get(device, {})}
                missing = [key for key in _ACCURACY_REQUIRED if key not in merged]
                if missing:
                    raise self.fail(f"{where}.{missing[0]}", f"missing required key "
                                    f"`{where}.{missing[0]}` (the budget on the {device} has "
                                    f"no {', '.join(missing)}; give it in [[accuracy]] or in "
                                    f"[{where}.{device}])")
            result.append(AccuracyTest(**names, budget=budget,
                                       devices=MappingProxyType(devices)))
        return tuple(result)

    def accuracy_budget(self, table: Mapping[str, Any], where: str) -> Mapping[str, float | int]:
        checked: dict[str, float | int] = {}
        for key, item in table.items():
            kind = ACCURACY_BUDGET_KEYS[key]
            name = f"{where}.{key}"
            if kind is int:
                self.expect(item, name, (int,), "an integer")
                checked[key] = int(self.number(item, name, minimum=0 if key == "seed" else 1))
            else:
                value = float(self.number(item, name, minimum=0))
                if value == 0:
                    raise self.fail(name, f"`{name}` must be positive; received: {name}=0")
                checked[key] = value
        return MappingProxyType(checked)

    def parameters(self, value: Any) -> Mapping[str, Any]:
        """[parameters]: identifiers -> a number, string, boolean or an array of them."""
        self.expect(value, "parameters", (dict,), "a table ([parameters])")
        checked: dict[str, Any] = {}
        for key, item in value.items():
            where = f"parameters.{key}"
            if not key.isidentifier():
                raise self.fail(where, f"`{where}`: a parameter's name must be a Python "
                                f"identifier (tests and templates use it as one); received "
                                f"{key!r}")
            items = item if isinstance(item, list) else [item]
            for element in items:
                self.expect(element, where, (int, float, str, bool),
                            "a number, a string, a boolean or an array of them")
                if isinstance(element, float) and not math.isfinite(element):
                    raise self.fail(where, f"`{where}` must be finite; received: "
                                    f"{where}={item!r}")
            checked[key] = tuple(item) if isinstance(item, list) else item
        return MappingProxyType(checked)

    def numbers(self, value: Any, where: str) -> Mapping[str, float | int]:
        self.expect(value, where, (dict,), f"a table ([{where}])")
        for key, item in value.items():
            self.number(item, f"{where}.{key}")
        return MappingProxyType(dict(value))

    def sandbox(self, value: Any) -> tuple[Mapping[str, float | int],
                                           Mapping[str, Mapping[str, float | int]]]:
        """[sandbox] limits, and its [sandbox.cpu] / [sandbox.gpu] subtables."""
        self.expect(value, "sandbox", (dict,), "a table ([sandbox])")
        devices = {}
        for device in DEVICES:
            if isinstance(value.get(device), dict):
                devices[device] = self.sandbox_limits(value[device], f"sandbox.{device}")
        flat = {key: item for key, item in value.items() if key not in devices}
        return self.sandbox_limits(flat, "sandbox"), MappingProxyType(devices)

    def sandbox_limits(self, value: Mapping[str, Any], where: str) -> Mapping[str, float | int]:
        """One table of `SandboxLimits` fields: known names, positive numbers of their type."""
        self.check_keys(value, set(SANDBOX_KEYS), where)
        for key, item in value.items():
            if SANDBOX_KEYS[key] is int:
                self.expect(item, f"{where}.{key}", (int,), "a positive integer")
                self.number(item, f"{where}.{key}", minimum=1)
            else:
                self.number(item, f"{where}.{key}", minimum=0)
                if item == 0:
                    raise self.fail(f"{where}.{key}", f"`{where}.{key}` must be positive; "
                                    f"received: {where}.{key}=0")
        return MappingProxyType(dict(value))

    def late(self, value: Any, due: datetime) -> LatePolicy:
        self.expect(value, "late", (dict,), "a table ([late])")
        self.check_keys(value, self._LATE, "late")
        policy = self.expect(value.get("policy", "none"), "late.policy", (str,), "a string")
        if policy not in LATE_POLICIES:
            raise self.fail("late.policy", f"`late.policy` must be one of "
                            f"{', '.join(repr(p) for p in LATE_POLICIES)}; received: "
                            f"late.policy={policy!r}")
        percent = 0.0
        if policy == "percent_per_day":
            if "percent" not in value:
                raise self.fail("late.percent", "missing required key `late.percent` for "
                                "policy 'percent_per_day'")
            percent = float(self.number(value["percent"], "late.percent", minimum=0))
            if percent > 100:
                raise self.fail("late.percent", "`late.percent` must be at most 100; "
                                f"received: late.percent={value['percent']!r}")
        elif "percent" in value:
            raise self.fail("late.percent", f"`late.percent` applies to policy "
                            f"'percent_per_day' only; received policy={policy!r}")
        cutoff = None
        if "cutoff" in value:
            cutoff = self.moment(value["cutoff"], "late.cutoff")
            if cutoff < due:
                raise self.fail("late.cutoff", f"`late.cutoff` must not be before `due` "
                                f"({due.isoformat()}); received: {cutoff.isoformat()}")
        grace = float(self.number(value.get("grace_minutes", 0), "late.grace_minutes",
                                  minimum=0))
        return LatePolicy(policy=policy, percent=percent, cutoff=cutoff, grace_minutes=grace)
