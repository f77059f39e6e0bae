"""Bounded fuzz of intake: whatever the bytes, only a recorded problem comes out, and the
grader's memory stays bounded (issue 9, "Proving it").

The cases are drawn from a fixed seed, so a failure reproduces; their number is fixed,
not their time.
"""

from __future__ import annotations

import io
import json
import random
import resource
import struct
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from grader.intake import IntakeLimits, Submission, intake

CODE = b"import numpy as np\n\n\ndef relu(x):\n    return np.maximum(x, 0)\n"
EXPECTED = ("mlp_numpy.py", "helper.ipynb")
LIMITS = IntakeLimits(max_total_mb=4, max_files=50, max_seconds=5)
SEED = 20261201
CASES_PER_KIND = 12
NOTEBOOK = json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
    {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
     "source": "import numpy as np\n%matplotlib inline\ndef relu(x):\n    return x\n"}]})


def _zip(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _valid(rng: random.Random) -> bytes:
    return _zip({"mlp_numpy.py": CODE, "helper.ipynb": NOTEBOOK.encode(),
                 "manifest.json": b'{"student_id": "x"}', "data.bin": rng.randbytes(2000)})


def _random_bytes(rng: random.Random) -> tuple[str, bytes]:
    return "noise.zip", rng.randbytes(rng.choice([0, 1, 22, 100, 5000]))


def _truncated(rng: random.Random) -> tuple[str, bytes]:
    data = _valid(rng)
    return "cut.zip", data[:rng.randrange(len(data))]


def _flipped(rng: random.Random) -> tuple[str, bytes]:
    data = bytearray(_valid(rng))
    for _ in range(rng.randint(1, 20)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return "flipped.zip", bytes(data)


def _huge_declared(rng: random.Random) -> tuple[str, bytes]:
    data = bytearray(_valid(rng))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = data.find(signature)
        while start >= 0:
            struct.pack_into("<I", data, start + offset, rng.choice(
                [0xFFFF_FFFE, 1 << 31, rng.randrange(1 << 32)]))
            start = data.find(signature, start + 4)
    return "huge.zip", bytes(data)


def _many_entries(rng: random.Random) -> tuple[str, bytes]:
    count = rng.choice([51, 200, 2000])
    return "many.zip", _zip({f"d{i}/" if i % 2 else f"f{i}.py": b"" for i in range(count)})


def _bomb(rng: random.Random) -> tuple[str, bytes]:
    inner = _zip({"zeros.bin": b"\0" * (rng.randint(2, 8) << 20)})
    nested = _zip({"mlp_numpy.py": CODE, "inner.zip": inner, "inner2.zip": _zip(
        {"inner.zip": inner})})
    return rng.choice([("bomb.zip", inner), ("nested.zip", nested)])


def _notebook(rng: random.Random) -> tuple[str, bytes]:
    choices: list[Callable[[], bytes]] = [
        lambda: json.dumps(rng.choice([None, 1, "x", [], {}, {"cells": 5}])).encode(),
        lambda: json.dumps({"nbformat": rng.choice([1, 3, 99, "4", -1]), "cells": []}).encode(),
        lambda: NOTEBOOK.replace('"code"', '"raw"').encode(),
        lambda: rng.randbytes(rng.randint(0, 3000)),
        lambda: b"[" * 100_000,
        lambda: NOTEBOOK.encode()[:rng.randrange(len(NOTEBOOK))],
        lambda: NOTEBOOK.replace("def relu", "def relu(((").encode(),
        lambda: NOTEBOOK.replace("return x", "return " + "+".join(["1"] * 20_000)).encode(),
    ]
    data = rng.choice(choices)()
    return rng.choice([("nb.ipynb", data), ("nb.zip", _zip({"mlp_numpy.ipynb": data}))])


def _python(rng: random.Random) -> tuple[str, bytes]:
    return "mlp_numpy.py", rng.choice([rng.randbytes(500), b"\xef\xbb\xbf" + CODE,
                                       b"# coding: nope\n" + CODE, b"\0" * 100])


KINDS = [_random_bytes, _truncated, _flipped, _huge_declared, _many_entries, _bomb,
         _notebook, _python]


def _cases() -> Iterator[tuple[str, str, bytes]]:
    rng = random.Random(SEED)
    for kind in KINDS:
        for index in range(CASES_PER_KIND):
            name, data = kind(rng)
            yield f"{kind.__name__}-{index}", name, data


def test_intake_of_hostile_bytes_only_ever_records_problems(tmp_path: Path) -> None:
    cases = list(_cases())  # made before measuring: only intake's memory is traced
    import nbformat  # noqa: F401 - imported once, as a long-running grader has it
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    peaks: dict[str, int] = {}
    outcomes: dict[str, Submission] = {}
    try:
        for case, name, data in cases:
            folder = tmp_path / case
            folder.mkdir()
            (folder / name).write_bytes(data)
            work = tmp_path / "work"
            work.mkdir(exist_ok=True)
            tracemalloc.reset_peak()
            outcomes[case] = intake(folder / name, work, expected_files=EXPECTED,
                                    limits=LIMITS)  # raising here fails the test
            peaks[case] = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    for case, sub in outcomes.items():
        assert isinstance(sub, Submission), case
        assert sub.files or sub.problems, f"{case}: nothing graded and no reason given"
        assert all(isinstance(p, str) and p and len(p) <= 1000 for p in sub.problems), case
        assert not any(ord(c) < 32 for p in sub.problems for c in p), (case, sub.problems)
        assert {p.name for p in sub.workspace.iterdir()} <= set(EXPECTED), case
    worst = max(peaks, key=peaks.__getitem__)
    # The budget is 4 MB of content; an entry is held once, plus its chunks while joined.
    assert peaks[worst] < 24 << 20, f"{worst}: {peaks[worst] / 2**20:.1f} MB"
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mb < 200, f"the grader process grew by {grown_mb:.0f} MB"
    kinds = {case.rsplit("-", 1)[0] for case, sub in outcomes.items() if sub.problems}
    assert kinds == {kind.__name__ for kind in KINDS}  # every kind did reach a refusal
