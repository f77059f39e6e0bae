"""What intake reads a submission into: candidate files, under limits, before any is used."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from grader.i18n import Domain

_, _n = Domain("cli").functions()

IGNORED_DIRS = frozenset({"__MACOSX", "__pycache__", ".ipynb_checkpoints", ".git"})


@dataclass(frozen=True)
class IntakeLimits:
    """Bounds on what a submission may hold and cost to read.

    Attributes:
        max_total_mb: Uncompressed size of everything in the submission, in MB.
        max_files: Entries in the submission: files and folders, zip entries of every kind.
        max_ratio: Largest compression ratio (uncompressed / compressed) of a zip entry
            and of a whole zip. Source code deflates 3-10:1 and numpy arrays of zeros
            about 1000:1, so 100:1 leaves honest zips far below it while a zip bomb
            (1000:1 and more, nested) is far above it.
        ratio_floor_mb: Entries and zips smaller than this are not held to `max_ratio`
            (a tiny file of spaces compresses 100:1 and costs nothing).
        max_seconds: Wall time for decompressing one submission.
    """

    max_total_mb: float = 50.0
    max_files: int = 500
    max_ratio: float = 100.0
    ratio_floor_mb: float = 1.0
    max_seconds: float = 10.0

    @property
    def max_total_bytes(self) -> int:
        return int(self.max_total_mb * 1024 * 1024)

    @property
    def ratio_floor_bytes(self) -> int:
        return int(self.ratio_floor_mb * 1024 * 1024)


@dataclass(frozen=True)
class Candidate:
    """A file in the submission, not necessarily read yet.

    Attributes:
        rel: Its path inside the submission, "/"-separated.
        size: Its size in bytes (a zip entry's only once it was decompressed).
        read: Returns its bytes; raises `Refused` when it cannot.
        mtime: Its modification time on the instructor's disk (POSIX seconds); None for
            a zip entry, whose time the student's zip tool wrote.
        order: Upload order where the LMS gives one (Canvas attachment ids), else 0.
    """

    rel: str
    size: int
    read: Callable[[], bytes]
    mtime: float | None = None
    order: int = 0

    @property
    def name(self) -> str:
        return PurePosixPath(self.rel).name

    @property
    def depth(self) -> int:
        return self.rel.count("/")


class Refused(Exception):
    """The whole submission (or archive) cannot be used; the message says why."""


# What to do about a submission over a size or file-count limit: the English end of every
# limit message (each message is one whole translatable sentence that spells it out).
ONLY_ASSIGNMENT = ("hand in only the assignment's files (no datasets, model weights or "
                   "virtual environments)")


@dataclass
class State:
    """What intake found so far: problems stop a file from being used, notes do not."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def ignored(rel: str) -> bool:
    """Whether a path inside a submission is OS or tool litter (`__MACOSX`, dot files)."""
    parts = PurePosixPath(rel).parts
    return any(p in IGNORED_DIRS or p.startswith(".") for p in parts)


def file_candidate(path: Path, rel: str, order: int = 0) -> Candidate:
    """A file on the instructor's disk, read when needed."""
    info = path.stat()
    return Candidate(rel=rel, size=info.st_size, read=path.read_bytes, mtime=info.st_mtime,
                     order=order)


def folder_candidates(folder: Path, limits: IntakeLimits, state: State) -> list[Candidate]:
    """The files of a submitted folder; every entry (folders too) counts against the limits.

    Raises:
        Refused: More entries than `limits.max_files`, or more bytes than allowed.
    """
    found: list[Candidate] = []
    entries = total = 0
    for root, dirs, names in os.walk(folder):
        base = Path(root)
        dirs[:] = sorted(d for d in dirs if not ignored(d))  # litter is never walked
        for name in sorted(names) + dirs:
            if ignored(name):
                continue
            entries += 1
            if entries > limits.max_files:
                raise Refused(_("the folder holds more than {limit} files and folders; the limit "
                                "is {limit}; hand in only the assignment's files (no datasets, "
                                "model weights or virtual environments)", limit=limits.max_files))
            path = base / name
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                state.notes.append(_("{name} is a symbolic link and was ignored", name=rel))
                continue
            if name in dirs or not path.is_file():
                continue
            found.append(file_candidate(path, rel))
            total += found[-1].size
            if total > limits.max_total_bytes:
                raise Refused(_("the folder holds more than {limit} MB; the limit is {limit} MB; "
                                "hand in only the assignment's files (no datasets, model weights "
                                "or virtual environments)", limit=f"{limits.max_total_mb:g}"))
    return sorted(found, key=lambda c: c.rel)
