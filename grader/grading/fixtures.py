"""The fixtures a hidden suite is written against, as one pytest plugin object.

`GradingFixtures` is registered for one pytest run (one submission). Hidden tests
ask for:

- ``student``: the proxy to the submission's sandboxed runtime
  (``student.mlp_numpy.relu(x)``); only plain data comes back.
- ``assignment``, ``thresholds``: the assignment's typed config.
- ``parameters``: the task's own values, ``[parameters]`` of assignment.toml (their one
  home: ``parameters["latent_dims"]``, arrays as tuples).
- ``device``: "cpu" or "gpu", the device this run grades on.
- ``budgets``: the assignment's budgets on that device (``config.budgets_for(device)``).
- ``dataset``: the dataset, loaded in the grader's process (labels never cross).
- ``private_split``: ``private_split(size, name)`` -> a `grader.checks.splits.PrivateSplit`
  of the dataset's test split, in an order secret to the runtime and fixed for this
  submission (its file hashes) and test ``name``; use it for every accuracy measurement.
- ``credit`` and ``figure`` come from `grader.results.plugin`.

A suite's own messages (its ``what`` texts, diagnoses, failure sentences) are the course's
``course`` domain: ``_, _n = course_messages(__file__)`` at the top of the suite, then
``_("... {name} ...", name=...)`` as in the tool's own code (`grader.i18n`).

Before every test the runtime's random generators (Python, numpy, TensorFlow) are
seeded, so a test's result does not depend on which tests ran before it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path

import pytest

from grader import data
from grader.checks.splits import PrivateSplit, private_split
from grader.config import AssignmentConfig
from grader.devices import detect_device
from grader.i18n import course_domain
from grader.runtime.proxy import StudentProxy
from grader.runtime.student import StudentRuntime

SEED = 0  # seeds the student runtime before each test


def course_messages(anchor: str | Path) -> tuple[Callable[..., str], Callable[..., str]]:
    """``(_, _n)`` of the ``course`` domain for a suite: ``_, _n = course_messages(__file__)``.

    The catalog is ``locale/<language>/LC_MESSAGES/course.mo`` in the nearest folder above
    `anchor` that holds ``course.toml`` or ``locale/`` (the course's root; in a student kit,
    the kit's folder). A course without a catalog reads its English messages unchanged.
    Messages are looked up when called, in the language of that moment (``GRADER_LANG``).
    """
    start = Path(anchor).resolve()
    for folder in (start, *start.parents) if start.is_dir() else start.parents:
        if (folder / "course.toml").is_file() or (folder / "locale").is_dir():
            return course_domain(folder).functions()
    return course_domain(start if start.is_dir() else start.parent).functions()


@cache
def load_dataset(name: str | None) -> data.Dataset:
    """One load per grader process, shared by every submission it grades."""
    return data.load(name)


class GradingFixtures:
    """Fixtures for one submission's run of a hidden (or public) suite."""

    def __init__(self, config: AssignmentConfig, runtime: StudentRuntime, *,
                 dataset_name: str | None = None, device: str | None = None,
                 submission_key: str = "") -> None:
        self._config = config
        self._submission_key = submission_key
        self._runtime = runtime
        self._dataset_name = dataset_name
        self._device = device or detect_device()

    @pytest.fixture(scope="session")
    def student(self) -> StudentProxy:
        return self._runtime.student

    @pytest.fixture(scope="session")
    def assignment(self) -> AssignmentConfig:
        return self._config

    @pytest.fixture(scope="session")
    def device(self) -> str:
        return self._device

    @pytest.fixture(scope="session")
    def budgets(self) -> Mapping[str, float]:
        return self._config.budgets_for(self._device)

    @pytest.fixture(scope="session")
    def thresholds(self) -> Mapping[str, float]:
        return self._config.thresholds

    @pytest.fixture(scope="session")
    def parameters(self) -> Mapping[str, object]:
        return self._config.parameters

    @pytest.fixture(scope="session")
    def dataset(self) -> data.Dataset:
        return load_dataset(self._dataset_name)

    @pytest.fixture(scope="session")
    def private_split(self) -> Callable[[int, str], PrivateSplit]:
        def take(size: int, name: str) -> PrivateSplit:
            test = load_dataset(self._dataset_name)
            return private_split(test.x_test, test.y_test, size,
                                 key=f"{self._submission_key}:{name}")
        return take

    @pytest.fixture(autouse=True)
    def _seeded_runtime(self) -> None:
        self._runtime.seed(SEED)
