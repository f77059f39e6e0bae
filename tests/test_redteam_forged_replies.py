"""Red team: replies forged by the student's process never raise anything but a
`StudentFailure` in the grader.

The runtime's server runs in the student's process, so a submission can write any reply
into the response pipe (as tests/hostile/forger.py does for oversized ones). Well-formed
but lying replies were read with ``int()`` and indexing in the grader: a length of
10**400 raised OverflowError, -1 or "x" ValueError, a traceback line "x" ValueError, an
error record that is a list AttributeError - grader errors, not the submission's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from grader.runtime import SandboxLimits, StudentRuntime
from grader.runtime.errors import ProtocolViolation, StudentError, StudentFailure

HOSTILE = Path(__file__).parent / "hostile"
LIMITS = SandboxLimits(call_timeout_s=10, import_timeout_s=20)
FORGER = (HOSTILE / "forger.py").read_text().split("def forge_header")[0] + '''

def _reply(reply):
    """Write ``reply`` as the answer to the request being served, then stall."""
    header = json.dumps(reply).encode()
    _write(_response_fd(), b"NNG1" + struct.pack(">I", len(header)) + header)
    time.sleep(30)


class Liar:
    """An object whose length is whatever reply it forges."""

    def __init__(self, value):
        self.value = value

    def __len__(self):
        _reply({"ok": True, "v": self.value, "frames": []})
        return 0


def liar(value):
    return Liar(value)


class Honest:
    def __len__(self):
        return 3


def honest():
    return Honest()


def fail_with(error):
    """Answer this call with a forged error record."""
    _reply({"ok": False, "error": error, "frames": []})
'''


def _runtime(tmp_path: Path) -> StudentRuntime:
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    (workspace / "forged.py").write_text(FORGER)
    return StudentRuntime(workspace, ["forged"], limits=LIMITS)


@pytest.mark.parametrize("value", [pytest.param(10**400, id="401-digits"), -1, "x", [1], 2.5,
                                   None])
def test_a_forged_length_is_refused_as_a_protocol_violation(tmp_path: Path, value: Any) -> None:
    with _runtime(tmp_path) as runtime:
        handle = runtime.student.forged.liar(value)
        with pytest.raises(ProtocolViolation, match=r"^Liar len\(\)"):
            len(handle)


def test_an_honest_length_still_crosses(tmp_path: Path) -> None:
    with _runtime(tmp_path) as runtime:
        assert len(runtime.student.forged.honest()) == 3


@pytest.mark.parametrize("error", [
    [1, 2], "x", pytest.param(10**400, id="401-digits"),
    {"kind": "student", "type": "ValueError", "message": "m", "traceback": [["f", "x", "g", "s"]]},
    {"kind": "student", "type": "ValueError", "message": "m", "traceback": [["f"]]},
    {"kind": "student", "type": "ValueError", "message": "m", "traceback": 7},
    {"kind": "student", "type": "ValueError", "message": "m", "traceback": [None, 5, "abc"]},
])
def test_a_forged_error_record_is_the_submissions_failure(tmp_path: Path, error: Any) -> None:
    with _runtime(tmp_path) as runtime:
        with pytest.raises(StudentFailure) as info:
            runtime.student.forged.fail_with(error)
        if isinstance(error, dict):
            assert isinstance(info.value, StudentError) and info.value.student_traceback == ()


def test_a_well_formed_traceback_line_is_kept(tmp_path: Path) -> None:
    error = {"kind": "student", "type": "ValueError", "message": "m",
             "traceback": [["forged.py", 3, "f", "  x = 1  "]]}
    with _runtime(tmp_path) as runtime:
        with pytest.raises(StudentError) as info:
            runtime.student.forged.fail_with(error)
    line = info.value.student_traceback[0]
    assert (line.filename, line.line, line.function, line.source) == ("forged.py", 3, "f",
                                                                       "x = 1")
