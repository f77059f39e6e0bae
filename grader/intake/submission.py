"""One submission → a private workspace copy, with who and when from the instructor's side."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType

from grader.i18n import Domain
from grader.ids import InvalidId, file_name, printable, validate_id
from grader.intake.archives import Budget, zip_candidates
from grader.intake.files import (
    Candidate,
    IntakeLimits,
    Refused,
    State,
    file_candidate,
    folder_candidates,
)
from grader.intake.layouts import (
    Identity,
    canvas_upload_order,
    identify,
    layout_filename,
    layout_siblings,
    received_at,
)
from grader.intake.notebooks import NotebookLines, notebook_to_module, read_notebook_text
from grader.results.records import grader_problem, is_grader_problem
from grader.runtime.definitions import SourceError, parse_source

_, _n = Domain("cli").functions()

MANIFEST_NAME = "manifest.json"
MAX_MANIFEST_BYTES = 64 << 10
"""Largest manifest read (64 KiB): `grader submit` writes a few hundred bytes."""

INSTRUCTOR, RECEIPT = "instructor", "receipt"
DEFAULT_LIMITS = IntakeLimits()


@dataclass(frozen=True)
class Submission:
    """One student's submission, copied into a private workspace.

    Attributes:
        student_id: From the instructor's side only: the LMS layout (Moodle participant
            id, Canvas user id) or the file or folder name (`layouts.identify`); an
            unusable name gives `invalid-<hash>` and a problem.
        source: The path the submission was read from.
        workspace: A fresh private folder (mode 0700) holding exactly the expected files
            that were found, under their expected names.
        files: Expected name → sha256 (hex) of the workspace file, for the files found.
        problems: Readable reasons something could not be used; empty when all is well.
        submitted_at: The instructor's `--submitted-at`, else the receipt time (the newest
            modification time of the download's files as received), UTC.
        expected: The expected file names.
        display_name: The student's name where the layout gives one, else "".
        late_flag: True when the LMS marked the submission late (Canvas `LATE`).
        layout: "moodle", "canvas" or "plain": where the id came from.
        notes: Adjustments and claims that did not stop grading (a renamed file, a
            converted notebook, what the manifest claims).
        claimed_id: The manifest's `student_id` (validated), shown, never used as the id.
        claimed_at: The manifest's `created_at`, shown, never used as the time.
        time_source: "instructor" (`--submitted-at`), "receipt", or "" when unknown.
    """

    student_id: str
    source: Path
    workspace: Path
    files: Mapping[str, str]
    problems: tuple[str, ...]
    submitted_at: datetime | None
    expected: tuple[str, ...] = ()
    display_name: str = ""
    late_flag: bool = False
    layout: str = "plain"
    notes: tuple[str, ...] = ()
    claimed_id: str | None = None
    claimed_at: datetime | None = None
    time_source: str = ""

    @property
    def missing(self) -> tuple[str, ...]:
        """Expected files that are not in the workspace."""
        return tuple(name for name in self.expected if name not in self.files)

    @property
    def complete(self) -> bool:
        """Whether every expected file is in the workspace."""
        return not self.missing


def at_instructor_time(submission: Submission, moment: datetime) -> Submission:
    """The submission with the instructor's submission time (`--submitted-at`).

    Raises:
        ValueError: A time without a UTC offset (it would be read in an unknown zone).
    """
    if moment.tzinfo is None:
        raise ValueError(f"--submitted-at {moment.isoformat()} has no UTC offset; give one, "
                         "e.g. 2026-12-01T23:59+08:00")
    return replace(submission, submitted_at=moment.astimezone(timezone.utc),
                   time_source=INSTRUCTOR)


def lateness_time(submission: Submission, due: datetime,
                  grace_minutes: float = 0.0) -> datetime | None:
    """The time lateness is charged from: one rule, used wherever lateness is computed.

    - The instructor's `--submitted-at` is taken as given.
    - Canvas's LATE marker is Canvas's own verdict, made with the real submission time:
      a LATE submission is charged at least one second past the due date and grace
      period (so "LATE" without a usable time costs one late day, never nothing), and a
      Canvas submission without it is on time, whatever the files' times say (unzipping
      a download sets them to the time of unzipping).
    - Otherwise the receipt time; None (not late) when there is none.

    Args:
        submission: The intake's result.
        due: The assignment's due date (timezone-aware).
        grace_minutes: The late policy's grace period.
    """
    moment = submission.submitted_at
    if submission.time_source == INSTRUCTOR or submission.layout != "canvas":
        return moment
    if submission.late_flag:
        floor = due + timedelta(minutes=grace_minutes, seconds=1)
        return max(moment, floor) if moment is not None else floor
    return min(moment, due) if moment is not None else None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _wanted(expected: Sequence[str]) -> Callable[[str], bool]:
    names = set(expected) | {MANIFEST_NAME}
    return lambda name: name in names or name.lower().endswith((".py", ".ipynb"))


def _gather(source: Path, identity: Identity, budget: Budget, state: State,
            expected: Sequence[str]) -> list[Candidate]:
    """Every file of the submission, with paths relative to it."""
    limits, wanted = budget.limits, _wanted(expected)
    if source.is_dir():
        found = folder_candidates(source, limits, state)
        # A folder holding nothing but one zip (Moodle wraps uploads in folders).
        code = [c for c in found if c.name.endswith((".py", ".ipynb"))]
        zips = [c for c in found if c.name.lower().endswith(".zip")]
        if not code and len(zips) == 1:
            return zip_candidates(source / zips[0].rel, budget, state, zips[0].rel, wanted)
        return found
    if not source.exists():
        raise Refused(_("{source} does not exist", source=source))
    found = []
    for path in layout_siblings(source, identity.layout):
        name = layout_filename(path, identity.layout)
        if name.lower().endswith(".zip"):
            found.extend(zip_candidates(path, budget, state, name, wanted))
        else:
            order = canvas_upload_order(path) if identity.layout == "canvas" else 0
            found.append(file_candidate(path, name, order))
    if len(found) > limits.max_files:
        raise Refused(_("the submission holds {count} files; the limit is {limit}; hand in only "
                        "the assignment's files (no datasets, model weights or virtual "
                        "environments)", count=len(found), limit=limits.max_files))
    if sum(c.size for c in found) > limits.max_total_bytes:
        raise Refused(_("the submission holds more than {limit} MB; the limit is {limit} MB; hand "
                        "in only the assignment's files (no datasets, model weights or virtual "
                        "environments)", limit=f"{limits.max_total_mb:g}"))
    return found


def _pick(candidates: list[Candidate], name: str, state: State) -> Candidate | None:
    """The file called `name`: the shallowest; among equals the latest LMS upload."""
    same = [c for c in candidates if c.name == name]
    if not same:
        return None
    depth = min(c.depth for c in same)
    level = sorted((c for c in same if c.depth == depth), key=lambda c: (-c.order, c.rel))
    if len(level) > 1:
        why = (_("the latest upload (Canvas numbers uploads in order)") if level[0].order
               else _("the first by path"))
        state.notes.append(_("{name} appears more than once ({paths}); used {used}, {why}",
                             name=name, why=why, used=printable(level[0].rel, limit=80),
                             paths=", ".join(printable(c.rel, limit=80) for c in level)))
    return level[0]


def _match(candidates: list[Candidate], expected: Sequence[str],
           state: State) -> dict[str, tuple[Candidate, bool]]:
    """Expected name → (candidate, is a notebook to convert)."""
    chosen: dict[str, tuple[Candidate, bool]] = {}
    for name in expected:
        hit = _pick(candidates, name, state)
        if hit is not None:
            chosen[name] = (hit, False)
        elif name.endswith(".py"):
            notebook = _pick(candidates, name[:-3] + ".ipynb", state)
            if notebook is not None:
                chosen[name] = (notebook, True)
    used = {c.rel for c, _ in chosen.values()}
    missing_py = [n for n in expected if n not in chosen and n.endswith(".py")]
    others = [c for c in candidates if c.rel not in used
              and c.name.endswith((".py", ".ipynb")) and c.name != MANIFEST_NAME]
    if len(missing_py) == 1 and len(others) == 1:
        name, other = missing_py[0], others[0]
        chosen[name] = (other, other.name.endswith(".ipynb"))
        state.notes.append(_("{name} was not found; took {other} as {name}", name=name,
                             other=printable(other.rel, limit=80)))
    return chosen


def _read_manifest(candidates: list[Candidate], state: State) -> dict | None:
    hit = _pick(candidates, MANIFEST_NAME, State())
    if hit is None:
        return None
    if hit.size > MAX_MANIFEST_BYTES:
        state.problems.append(_("{manifest} is {size} bytes; the limit is {limit}; it was "
                                "not read", manifest=MANIFEST_NAME, size=f"{hit.size:,}",
                                limit=f"{MAX_MANIFEST_BYTES:,}"))
        return None
    try:
        data = json.loads(hit.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        reason = _("nested too deeply") if isinstance(exc, RecursionError) else str(exc)[:200]
        state.problems.append(_("{manifest} is not valid JSON ({reason}); it was ignored",
                                manifest=MANIFEST_NAME, reason=reason))
        return None
    if not isinstance(data, dict):
        state.problems.append(_("{manifest} is not a JSON object; it was ignored",
                                manifest=MANIFEST_NAME))
        return None
    return data


def _claimed_time(manifest: dict, state: State) -> datetime | None:
    raw = manifest.get("created_at")
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(str(raw)[:64].replace("Z", "+00:00"))
    except ValueError:
        state.notes.append(_("{manifest}: `created_at` is not an ISO 8601 time; received: "
                             "{received}", manifest=MANIFEST_NAME,
                             received=repr(printable(str(raw), limit=64))))
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _claims(manifest: dict, identity: Identity, state: State) -> tuple[str | None, datetime | None]:
    """The manifest's claimed id and time; a claim that conflicts is reported, not used."""
    raw = manifest.get("student_id")
    claimed_id = None
    if raw is not None:
        try:
            claimed_id = validate_id(raw)
        except InvalidId as exc:
            state.problems.append(_("{manifest} claims a student id that is not valid: "
                                    "{error}; the id comes from the download's name",
                                    manifest=MANIFEST_NAME, error=exc))
    claimed_at = _claimed_time(manifest, state)
    if claimed_id is not None and claimed_id != identity.student_id:
        facts = {"manifest": MANIFEST_NAME, "claimed": repr(claimed_id),
                 "graded": repr(identity.student_id)}
        if identity.layout == "canvas":
            message = _("{manifest} claims student id {claimed}; the submission is graded as "
                        "{graded}, the id from the Canvas download's file name (a Canvas user "
                        "id): the manifest is only a claim", **facts)
        elif identity.layout == "moodle":
            message = _("{manifest} claims student id {claimed}; the submission is graded as "
                        "{graded}, the id from the Moodle download's name (a participant id): "
                        "the manifest is only a claim", **facts)
        else:
            message = _("{manifest} claims student id {claimed}; the submission is graded as "
                        "{graded}, the id from the submission's file or folder name: the "
                        "manifest is only a claim", **facts)
        # LMS ids and student numbers are different namespaces: a difference is expected.
        (state.problems if identity.layout == "plain" else state.notes).append(message)
    if claimed_at is not None:
        state.notes.append(_("{manifest} claims it was created at {time}; lateness uses the "
                             "instructor's side (LMS, receipt time), never this claim",
                             manifest=MANIFEST_NAME,
                             time=claimed_at.isoformat(timespec="seconds")))
    return claimed_id, claimed_at


def _check_manifest(manifest: dict, candidates: list[Candidate],
                    state: State, assignment: str | None) -> None:
    named = manifest.get("assignment")
    if assignment is not None and named not in (None, assignment):
        state.problems.append(_("{manifest} is for assignment {named}; expected {expected}",
                                manifest=MANIFEST_NAME,
                                named=repr(printable(str(named), limit=64)),
                                expected=repr(assignment)))
    listed = manifest.get("files", {})
    if not isinstance(listed, dict):
        state.problems.append(_("{manifest}: `files` must map names to sha256 hashes; "
                                "received: {received}", manifest=MANIFEST_NAME,
                                received=type(listed).__name__))
        return
    for name, digest in sorted(listed.items())[:50]:  # grader submit lists a few files
        hit = _pick(candidates, name, State())
        shown = printable(name, limit=80)
        if hit is None:
            state.problems.append(_("{manifest} lists {name} but the submission has no such "
                                    "file", manifest=MANIFEST_NAME, name=shown))
            continue
        try:
            actual = _sha256(hit.read())
        except Refused:
            continue  # a file intake does not read is not graded either
        if actual != str(digest).lower():
            state.problems.append(_("{name} changed after `grader submit` packed it: its "
                                    "sha256 is {actual}..., the manifest says {listed}...",
                                    name=shown, actual=actual[:12],
                                    listed=printable(str(digest), limit=12)))


def _install(name: str, candidate: Candidate, convert: bool, workspace: Path,
             state: State) -> str | None:
    """Write one expected file into the workspace; its sha256, or None on a problem."""
    data = candidate.read()
    if convert or name.endswith(".ipynb"):
        try:
            module = notebook_to_module(read_notebook_text(data, candidate.name),
                                        name=candidate.name)
        except ValueError as exc:
            state.problems.append(printable(str(exc), limit=400))
            return None
        if convert:
            data = module.encode("utf-8")
            state.notes.append(_("{source} was converted to {name} (code cells only)",
                                 source=printable(candidate.rel, limit=80), name=name))
            parsed = parse_source(module, name)
            if isinstance(parsed, SourceError):
                cell = NotebookLines.from_module(module)  # the student's cell, not ours
                shown = cell.describe(parsed.line) if cell and parsed.line else None
                source = printable(candidate.rel, limit=80)
                if parsed.line:
                    state.problems.append(_(
                        "{name} (from {source}) is not valid Python: {where}: {error}",
                        name=name, source=source, error=parsed.message,
                        where=shown or _("line {line}", line=parsed.line)))
                else:
                    state.problems.append(_("{name} (from {source}) is not valid Python: "
                                            "{error}", name=name, source=source,
                                            error=parsed.message))
    target = workspace / name
    target.write_bytes(data)
    target.chmod(0o600)
    return _sha256(data)


def student_problem(problem: str) -> str:
    """A problem found in the submission as it is recorded. Such a problem may begin with a
    name the student chose (a notebook's file name); it must never read as the grader's own
    failure (`is_grader_problem`), which the dashboard, the reports and `grader autograde`'s
    to-do list treat as the instructor's to resolve."""
    if is_grader_problem(problem):
        return _("in the submission: {problem}", problem=problem)
    return problem


def missing_file(name: str, found: Sequence[str]) -> str:
    """The problem of an expected file that is not in the submission, with what to do."""
    if not found:
        return _("{name} is missing: the submission holds no files; hand in {name} (the file "
                 "itself, a notebook, or a zip holding it)", name=name)
    return _("{name} is missing; found: {found}; hand in {name}, or give the file that holds the "
             "solution that name", name=name, found=", ".join(found))


def intake(source: Path, workdir: Path, *, expected_files: Sequence[str],
           limits: IntakeLimits = DEFAULT_LIMITS, assignment: str | None = None,
           submitted_at: datetime | None = None) -> Submission:
    """Copy one submission's expected files into a fresh private workspace.

    Args:
        source: A folder, a `.zip`, a `.py` or an `.ipynb`; for Canvas and flat Moodle
            downloads, any one file of the student (the others next to it are included).
        workdir: Where the workspace folder is created (it must exist and be writable).
        expected_files: The names the assignment expects (`["mlp_numpy.py"]`).
        limits: Bounds on size, entries, compression ratio and time.
        assignment: The assignment id; a manifest for another one is a problem, and
            `grader submit`'s `<assignment>-<id>.zip` names the student `<id>`.
        submitted_at: The instructor's submission time (`--submitted-at`), for all.

    Returns:
        The submission; `problems` says what could not be used. It never raises for a bad
        submission, only when `workdir` cannot hold a new folder (OSError).
    """
    source = Path(source)
    identity = identify(source, assignment)
    workspace = Path(tempfile.mkdtemp(prefix=f"{file_name(identity.student_id)}-",
                                      dir=workdir))
    state = State()
    if identity.problem:
        state.problems.append(identity.problem)
    files: dict[str, str] = {}
    claimed_id = claimed_at = None
    grader_failed: tuple[str, ...] = ()  # the grader's own failure, never the student's
    try:
        candidates = _gather(source, identity, Budget(limits), state, expected_files)
        manifest = _read_manifest(candidates, state)
        if manifest is not None:
            claimed_id, claimed_at = _claims(manifest, identity, state)
            _check_manifest(manifest, candidates, state, assignment)
        chosen = _match(candidates, expected_files, state)
        for name in expected_files:
            if name not in chosen:
                found = sorted(printable(c.rel, limit=80) for c in candidates
                               if c.name != MANIFEST_NAME)[:20]
                state.problems.append(missing_file(name, found))
                continue
            candidate, convert = chosen[name]
            digest = _install(name, candidate, convert, workspace, state)
            if digest is not None:
                files[name] = digest
    except Refused as exc:
        state.problems.append(printable(str(exc), limit=400))
    except Exception as exc:  # noqa: BLE001 - a broken submission must never stop the batch
        grader_failed = (grader_problem("read the submission", exc),)
    moment = received_at(source)
    submission = Submission(
        student_id=identity.student_id,
        source=source,
        workspace=workspace,
        files=MappingProxyType(files),
        problems=(*map(student_problem, state.problems), *grader_failed),
        submitted_at=moment,
        expected=tuple(expected_files),
        display_name=identity.display_name,
        late_flag=identity.late_flag,
        layout=identity.layout,
        notes=tuple(state.notes),
        claimed_id=claimed_id,
        claimed_at=claimed_at,
        time_source=RECEIPT if moment is not None else "",
    )
    return submission if submitted_at is None else at_instructor_time(submission,
                                                                       submitted_at)
