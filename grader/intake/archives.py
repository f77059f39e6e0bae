"""Zip files read without trusting them: every entry counted, sizes and time bounded.

A zip's headers are the student's claims. The archive's own size, its central
directory's size and entry count are checked before Python's `zipfile` parses it; every
entry (folders too) counts against `IntakeLimits.max_files`; declared sizes are summed
(folders too: a folder entry "holding" 4 GiB is refused) and held to `max_ratio`; then
the entries intake may use are decompressed once each, in a stream, with a hard byte
bound and a deadline, and a result that is not the size its header said is refused.
Only the two methods every zip tool writes (stored, deflate) are read: Python's bzip2
and LZMA readers decompress a whole block at once, with no bound on what comes out.
"""

from __future__ import annotations

import re
import stat
import time
import unicodedata
import zipfile
from collections.abc import Callable
from pathlib import Path

from grader.i18n import Domain
from grader.intake.files import (
    Candidate,
    IntakeLimits,
    Refused,
    State,
    ignored,
)

_, _n = Domain("cli").functions()

_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
_CHUNK = 1 << 16
# A central directory record is 46 bytes plus the name and extras: 1 KiB is generous.
_DIRECTORY_BYTES_PER_ENTRY = 1024


class Budget:
    """Bytes and seconds left for decompressing one submission (shared by its zips)."""

    def __init__(self, limits: IntakeLimits) -> None:
        self.limits = limits
        self.bytes_left = limits.max_total_bytes
        self.deadline = time.monotonic() + limits.max_seconds


def unsafe_reason(info: zipfile.ZipInfo, label: str = "the zip") -> str | None:
    """Why an entry must never be extracted (absolute, `..`, a link), as the problem's
    sentence, or None."""
    name = info.filename
    mode = info.external_attr >> 16
    entry = repr(name)
    if stat.S_ISLNK(mode):
        return _("zip entry {entry} in {label} is a symbolic link; it was not extracted",
                 entry=entry, label=label)
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return _("zip entry {entry} in {label} has an absolute path; it was not extracted",
                 entry=entry, label=label)
    if ".." in re.split(r"[/\\]", name):
        return _("zip entry {entry} in {label} points outside the submission (`..`); it was "
                 "not extracted", entry=entry, label=label)
    if "\0" in name:
        return _("zip entry {entry} in {label} has a NUL character in its name; it was not "
                 "extracted", entry=entry, label=label)
    return None


def _check_directory(path: Path, limits: IntakeLimits, label: str) -> None:
    """Refuse before `zipfile` builds one object per central directory record."""
    size = path.stat().st_size
    if size > limits.max_total_bytes:
        raise Refused(_("the zip file {label} is {size} MB; the limit is {limit} MB; hand in only "
                        "the assignment's files (no datasets, model weights or virtual "
                        "environments)", label=label, size=f"{size / 2**20:.1f}",
                        limit=f"{limits.max_total_mb:g}"))
    with path.open("rb") as handle:
        end = zipfile._EndRecData(handle)  # noqa: SLF001 - the stdlib's own EOCD reader
    if end is None:
        raise Refused(_("the zip file {label} is damaged: it has no end of central directory "
                        "record (not a zip, or cut short); download it again; if it is damaged "
                        "there too, the student hands in a new zip (from `grader submit` or any "
                        "zip tool)", label=label))
    entries, directory = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]  # noqa: SLF001
    if entries > limits.max_files:
        raise Refused(_("the zip file {label} holds {entries} entries; the limit is {limit} "
                        "(folders count too); hand in only the assignment's files (no datasets, "
                        "model weights or virtual environments)", label=label, entries=entries,
                        limit=limits.max_files))
    if directory > max(1 << 16, limits.max_files * _DIRECTORY_BYTES_PER_ENTRY):
        raise Refused(_("the zip file {label} has a central directory of {size} bytes, more "
                        "than {limit} entries need", label=label, size=f"{directory:,}",
                        limit=limits.max_files))


def _check_unique(infos: list[zipfile.ZipInfo], label: str) -> None:
    """No two file entries share a name (up to case, Unicode normalisation and ``\\``).

    A zip may hold one name twice: intake would grade one copy while ``unzip -o``, a
    plagiarism checker or a TA's file manager shows another, so what was graded would not
    be what is reviewed; the same holds for names equal up to case on macOS or Windows.
    """
    seen: dict[str, str] = {}
    for info in infos:
        if info.is_dir():
            continue
        key = unicodedata.normalize("NFC", info.filename.replace("\\", "/")).casefold()
        if key in seen:
            raise Refused(_("the zip file {label} holds two files named {first} and {second}; "
                            "tools that extract it keep different copies, so which one is the "
                            "submission is ambiguous; ask the student to submit one file of "
                            "each name", label=label, first=repr(seen[key][:100]),
                            second=repr(info.filename[:100])))
        seen[key] = info.filename


def _check_declared(infos: list[zipfile.ZipInfo], limits: IntakeLimits, label: str) -> None:
    """Counts, methods, declared sizes and compression ratios of every entry."""
    if len(infos) > limits.max_files:
        raise Refused(_("the zip file {label} holds {entries} entries; the limit is {limit} "
                        "(folders count too); hand in only the assignment's files (no datasets, "
                        "model weights or virtual environments)", label=label, entries=len(infos),
                        limit=limits.max_files))
    declared = sum(i.file_size for i in infos)
    if declared > limits.max_total_bytes:
        raise Refused(_("the zip file {label} expands to {size} MB; the limit is {limit} MB; hand "
                        "in only the assignment's files (no datasets, model weights or virtual "
                        "environments)", label=label, size=f"{declared / 2**20:.1f}",
                        limit=f"{limits.max_total_mb:g}"))
    for info in infos:
        if info.compress_type not in _METHODS:
            raise Refused(_("zip entry {entry} in {label} uses compression method {method}; "
                            "only stored and deflate are read (what every zip tool writes by "
                            "default): zip the files again", entry=repr(info.filename),
                            label=label, method=info.compress_type))
        if info.is_dir() and info.file_size:
            raise Refused(_("zip entry {entry} in {label} is a folder that claims to hold "
                            "{size} bytes; the zip is damaged", entry=repr(info.filename),
                            label=label, size=f"{info.file_size:,}"))
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > limits.ratio_floor_bytes and ratio > limits.max_ratio:
            raise Refused(_("zip entry {entry} in {label} is compressed {ratio}:1; the limit "
                            "is {limit}:1 (a zip bomb?)", entry=repr(info.filename),
                            label=label, ratio=f"{ratio:,.0f}",
                            limit=f"{limits.max_ratio:g}"))
    packed = sum(i.compress_size for i in infos)
    if declared > limits.ratio_floor_bytes and declared > limits.max_ratio * max(packed, 1):
        raise Refused(_("the zip file {label} is compressed {ratio}:1 overall; the limit is "
                        "{limit}:1 (a zip bomb?)", label=label,
                        ratio=f"{declared / max(packed, 1):,.0f}",
                        limit=f"{limits.max_ratio:g}"))


def _decompress(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: Budget,
                label: str) -> bytes:
    """One entry's bytes, read in chunks under the submission's byte and time budget."""
    limit = min(info.file_size, budget.bytes_left)
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(min(_CHUNK, limit - size + 1)):
                size += len(chunk)
                chunks.append(chunk)
                if size > limit:
                    raise Refused(_("zip entry {entry} in {label} expands beyond the "
                                    "submission's size limit of {limit} MB",
                                    entry=repr(info.filename), label=label,
                                    limit=f"{budget.limits.max_total_mb:g}"))
                if time.monotonic() > budget.deadline:
                    raise Refused(_("decompressing {label} took longer than {limit} s; the "
                                    "zip was refused", label=label,
                                    limit=f"{budget.limits.max_seconds:g}"))
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, RuntimeError) as exc:
        raise Refused(_("the zip file {label} is damaged: entry {entry}: {error}; download it "
                        "again; if it is damaged there too, the student hands in a new zip (from "
                        "`grader submit` or any zip tool)", label=label, entry=repr(info.filename),
                        error=str(exc)[:200])) from None
    if size != info.file_size:
        raise Refused(_("zip entry {entry} in {label} holds {size} bytes; its header says "
                        "{declared}; the zip is damaged; download it again; if it is damaged "
                        "there too, the student hands in a new zip (from `grader submit` or "
                        "any zip tool)", entry=repr(info.filename), label=label,
                        size=f"{size:,}", declared=f"{info.file_size:,}"))
    budget.bytes_left -= size
    return b"".join(chunks)


def zip_candidates(path: Path, budget: Budget, state: State, label: str,
                   wanted: Callable[[str], bool]) -> list[Candidate]:
    """The files of a zip; the ones `wanted` (by name) are decompressed now, once.

    Args:
        path: The zip file on the instructor's disk.
        budget: The submission's bytes and seconds left; decompression draws on it.
        state: Where entries that are never extracted are recorded as problems.
        label: How messages name the zip.
        wanted: Whether intake may use an entry with this base name (code, notebooks,
            the manifest); the others are listed by name and never decompressed.

    Returns:
        One candidate per regular, safe, non-litter entry.

    Raises:
        Refused: The zip is damaged or breaks a limit; the message says which.
    """
    limits = budget.limits
    _check_directory(path, limits, label)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as exc:
        raise Refused(_("the zip file {label} is damaged: {error}; download it again; if it is "
                        "damaged there too, the student hands in a new zip (from `grader submit` "
                        "or any zip tool)", label=label, error=str(exc)[:200])) from None
    except OSError as exc:
        raise Refused(_("the zip file {label} cannot be read: {error}; download it again; if it is "
                        "damaged there too, the student hands in a new zip (from `grader submit` "
                        "or any zip tool)", label=label, error=exc)) from None
    with archive:
        infos = archive.infolist()
        _check_declared(infos, limits, label)
        _check_unique(infos, label)
        found: list[Candidate] = []
        for info in infos:
            if info.is_dir():
                continue
            reason = unsafe_reason(info, label)
            if reason is not None:
                state.problems.append(reason)
                continue
            rel = info.filename.replace("\\", "/")
            if ignored(rel):
                continue
            if wanted(rel.rsplit("/", 1)[-1]):
                data = _decompress(archive, info, budget, label)
                found.append(Candidate(rel=rel, size=len(data), read=lambda d=data: d))
            else:
                found.append(Candidate(rel=rel, size=info.file_size,
                                       read=_not_read(rel, label)))
        return found


def _not_read(rel: str, label: str) -> Callable[[], bytes]:
    def read() -> bytes:
        raise Refused(_("zip entry {entry} in {label} was not decompressed: intake reads "
                        "only code, notebooks and the manifest", entry=repr(rel), label=label))
    return read
