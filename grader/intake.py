"""Intake: one submission (folder, zip, .py or .ipynb) → a private workspace copy.

`intake` never raises for a bad submission: what cannot be used is described in
`Submission.problems` (missing files, a damaged zip, a notebook that is not JSON), and
what was adjusted in `Submission.notes` (a renamed file, a converted notebook).

Decisions:

- Only the expected files enter the workspace, under their expected names; nothing else
  from the submission is copied, so no submitted path is ever written to disk.
- A file is found by its base name anywhere in the submission, the shallowest first, so
  a single top folder (`alice/mlp_numpy.py`) or a zip of a folder is fine.
- A wrong name is accepted when unambiguous: if exactly one expected `.py` file is still
  missing and exactly one other `.py` (or `.ipynb`) file was submitted, it is taken under
  the expected name and a note says so (students rename files; grading the work beats a
  zero). Canvas's resubmission suffix (`mlp_numpy-1.py`) is taken silently.
- A notebook submitted for an expected `.py` becomes a module: code cells only, IPython
  line magics, shell escapes (`!pip ...`, `x = !ls`) and non-Python cell magics
  (`%%bash`) commented out. An expected `.ipynb` is copied as it is, once it reads as JSON.
- Zips: entries with absolute paths, `..`, drive letters or symlink modes are never
  extracted (each is a problem); more than `max_files` entries or more than
  `max_total_mb` uncompressed refuses the whole zip; `__MACOSX/`, hidden files and
  `__pycache__` are ignored. Folders get the same limits; symlinks in them are ignored.
- `files` maps each expected name to the sha256 of the workspace file (what is graded).
  A `manifest.json` from `grader submit` ({student_id, assignment, files: {name: sha256},
  created_at}) gives the student id and the submission time; its hashes are checked
  against the submitted bytes and every mismatch is a problem.
- Without a manifest the id comes from the name. Bulk downloads are recognised:

  - Moodle ("Download all submissions"): a folder
    `<Full Name>_<participant id>_assignsubmission_file_` holding the files, or, without
    "download submissions in folders", flat files
    `<Full Name>_<participant id>_assignsubmission_file_<filename>`. The id is the
    participant id, the display name the full name.
  - Canvas ("Download Submissions"): flat files
    `<lastfirst>_<user id>_<attachment id>_<filename>`, and `<lastfirst>_LATE_<user id>_...`
    for late work (e.g. `smithbob_340934_208490284_BobsWork.zip`, as documented by
    mikewesthad/canvas-unzipper). The id is the Canvas user id (unique, and the `ID`
    column of Canvas's gradebook CSV), the display name `lastfirst`, `late_flag` the
    LATE marker. All files of one user id in a folder form one submission.

  Otherwise the id is the folder's name or the file's stem.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from types import MappingProxyType

__all__ = [
    "MANIFEST_NAME",
    "IntakeLimits",
    "Submission",
    "discover",
    "intake",
    "notebook_to_module",
    "parse_canvas_name",
    "parse_moodle_name",
]

MANIFEST_NAME = "manifest.json"
_IGNORED_DIRS = {"__MACOSX", "__pycache__", ".ipynb_checkpoints", ".git"}
_CANVAS_RE = re.compile(
    r"^(?P<name>[^_]+?)(?P<late>_late)?_(?P<user>\d+)_(?P<attachment>\d+)_(?P<file>.+)$",
    re.IGNORECASE)
_MOODLE_RE = re.compile(
    r"^(?P<name>.+?)_(?P<participant>\d+)_assignsubmission_(?P<plugin>[a-z]+)_?(?P<file>.*)$")
_RESUBMISSION_RE = re.compile(r"^(?P<stem>.+)-\d+(?P<suffix>\.[A-Za-z0-9]+)$")
# Python cell magics whose body is still Python.
_PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug"}
# `x = !ls`, `out = %timeit ...`: an assignment from a magic or a shell escape.
_MAGIC_ASSIGN_RE = re.compile(r"^[\w\s,.\[\]()]+=\s*[%!]")


@dataclass(frozen=True)
class IntakeLimits:
    """Bounds on what a submission may hold.

    Attributes:
        max_total_mb: Uncompressed size of everything in the submission, in MB.
        max_files: Number of files (zip entries) in the submission.
    """

    max_total_mb: float = 50.0
    max_files: int = 500

    @property
    def max_total_bytes(self) -> int:
        return int(self.max_total_mb * 1024 * 1024)


@dataclass(frozen=True)
class Submission:
    """One student's submission, copied into a private workspace.

    Attributes:
        student_id: From the manifest, the LMS layout (Moodle participant id, Canvas user
            id) or the file or folder name.
        source: The path the submission was read from.
        workspace: A fresh private folder (mode 0700) holding exactly the expected files
            that were found, under their expected names.
        files: Expected name → sha256 (hex) of the workspace file, for the files found.
        problems: Readable reasons something could not be used; empty when all is well.
        submitted_at: The manifest's `created_at`, else the newest file time (UTC).
        expected: The expected file names.
        display_name: The student's name where the layout gives one, else "".
        late_flag: True when the LMS marked the submission late (Canvas `LATE`).
        layout: "manifest", "moodle", "canvas" or "plain": where the id came from.
        notes: Adjustments that did not stop grading (a renamed file, a converted notebook).
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

    @property
    def missing(self) -> tuple[str, ...]:
        """Expected files that are not in the workspace."""
        return tuple(name for name in self.expected if name not in self.files)

    @property
    def complete(self) -> bool:
        """Whether every expected file is in the workspace."""
        return not self.missing


@dataclass(frozen=True)
class _Candidate:
    """A file in the submission, not yet read."""

    rel: str  # path inside the submission, "/"-separated
    size: int
    read: Callable[[], bytes]
    mtime: float | None

    @property
    def name(self) -> str:
        return PurePosixPath(self.rel).name

    @property
    def depth(self) -> int:
        return self.rel.count("/")


class _Refused(Exception):
    """The whole submission (or archive) cannot be used; the message says why."""


@dataclass
class _State:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse_canvas_name(filename: str) -> dict[str, str] | None:
    """Fields of a Canvas bulk-download file name, or None if it is not one.

    Returns:
        {"name": lastfirst, "user_id", "attachment_id", "filename", "late": "1" or ""}.
    """
    m = _CANVAS_RE.match(filename)
    if m is None:
        return None
    return {"name": m["name"], "user_id": m["user"], "attachment_id": m["attachment"],
            "filename": m["file"], "late": "1" if m["late"] else ""}


def parse_moodle_name(filename: str) -> dict[str, str] | None:
    """Fields of a Moodle bulk-download folder or file name, or None if it is not one.

    Returns:
        {"name": full name, "participant_id", "plugin", "filename" ("" for a folder)}.
    """
    m = _MOODLE_RE.match(filename)
    if m is None:
        return None
    return {"name": m["name"], "participant_id": m["participant"], "plugin": m["plugin"],
            "filename": m["file"]}


def _ignored(rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    return any(p in _IGNORED_DIRS or p.startswith(".") for p in parts)


def _file_candidate(path: Path, rel: str) -> _Candidate:
    info = path.stat()
    return _Candidate(rel=rel, size=info.st_size, read=path.read_bytes, mtime=info.st_mtime)


def _folder_candidates(folder: Path, limits: IntakeLimits, state: _State) -> list[_Candidate]:
    found: list[_Candidate] = []
    total = 0
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if _ignored(rel) or path.is_dir():
            continue
        if path.is_symlink():
            state.notes.append(f"{rel} is a symbolic link and was ignored")
            continue
        if not path.is_file():
            continue
        found.append(_file_candidate(path, rel))
        total += found[-1].size
        if len(found) > limits.max_files:
            raise _Refused(f"the folder holds more than {limits.max_files} files; "
                           f"the limit is {limits.max_files}")
        if total > limits.max_total_bytes:
            raise _Refused(f"the folder holds more than {limits.max_total_mb:g} MB; "
                           f"the limit is {limits.max_total_mb:g} MB")
    return found


def _unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "has an absolute path"
    if ".." in re.split(r"[/\\]", name):
        return "points outside the submission (`..`)"
    return None


def _zip_candidates(data_path: Path, limits: IntakeLimits, state: _State,
                    label: str) -> list[_Candidate]:
    """The files of a zip, checked against the limits; `label` names it in messages."""
    try:
        archive = zipfile.ZipFile(data_path)
    except zipfile.BadZipFile as exc:
        raise _Refused(f"the zip file {label} is damaged: {exc}") from None
    except OSError as exc:
        raise _Refused(f"the zip file {label} cannot be read: {exc}") from None
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > limits.max_files:
            raise _Refused(f"the zip file {label} holds {len(infos)} files; the limit is "
                           f"{limits.max_files}")
        declared = sum(i.file_size for i in infos)
        if declared > limits.max_total_bytes:
            raise _Refused(f"the zip file {label} expands to {declared / 2**20:.1f} MB; the "
                           f"limit is {limits.max_total_mb:g} MB")
        bad = archive.testzip()
        if bad is not None:
            raise _Refused(f"the zip file {label} is damaged: entry {bad!r} fails its CRC check")
        found: list[_Candidate] = []
        for info in infos:
            reason = _unsafe_reason(info)
            if reason is not None:
                state.problems.append(f"zip entry {info.filename!r} in {label} {reason}; it "
                                      "was not extracted")
                continue
            rel = info.filename.replace("\\", "/")
            if _ignored(rel):
                continue
            found.append(_Candidate(rel=rel, size=info.file_size,
                                    read=_zip_reader(data_path, info.filename, info.file_size),
                                    mtime=datetime(*info.date_time).timestamp()))
        return found


def _zip_reader(data_path: Path, member: str, size: int) -> Callable[[], bytes]:
    def read() -> bytes:
        with zipfile.ZipFile(data_path) as archive, archive.open(member) as fh:
            data = fh.read(size + 1)
        if len(data) != size:
            raise _Refused(f"zip entry {member!r} is not the size its header says")
        return data
    return read


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def notebook_to_module(text: str, *, name: str = "notebook.ipynb") -> str:
    """The code cells of a notebook as a Python module.

    IPython line magics (`%matplotlib inline`), shell escapes (`!pip install x`,
    `files = !ls`) and cell magics whose body is not Python (`%%bash`) are commented out;
    the body of `%%time`-like cells is kept.

    Args:
        text: The notebook's JSON text.
        name: Its file name, for the header comment and errors.

    Returns:
        The module's source, one `# %% [cell n]` header per code cell.

    Raises:
        ValueError: If the text is not JSON or not a notebook; the message says which.
    """
    import nbformat

    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name}: notebook is not valid JSON: {exc}") from None
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises several kinds for a non-notebook
        raise ValueError(f"{name}: not a Jupyter notebook: {type(exc).__name__}: {exc}") \
            from None
    out = [f"# Converted from {name} by grader intake: code cells only; IPython magics "
           "and shell lines are commented out.\n"]
    for number, cell in enumerate(nb.cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        lines = str(cell.get("source", "")).splitlines()
        out.append(f"\n# %% [cell {number}]\n")
        whole_cell = False
        if lines and lines[0].lstrip().startswith("%%"):
            magic = lines[0].lstrip()[2:].split(maxsplit=1)[0] if lines[0].strip() != "%%" else ""
            whole_cell = magic not in _PYTHON_CELL_MAGICS
            out.append("# " + lines[0] + "\n")
            lines = lines[1:]
        for line in lines:
            stripped = line.lstrip()
            if whole_cell or stripped.startswith(("%", "!")) or _MAGIC_ASSIGN_RE.match(stripped):
                indent = line[:len(line) - len(stripped)]
                out.append(f"{indent}# {stripped}\n")
            else:
                out.append(line + "\n")
    return "".join(out)


def _sanitize(student_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", student_id).strip("._") or "submission"


def _identity(source: Path) -> tuple[str, str, str, bool]:
    """(layout, student id, display name, late) from the submission's name."""
    name = source.name
    moodle = parse_moodle_name(name)
    if moodle is not None:
        return "moodle", moodle["participant_id"], moodle["name"], False
    if source.is_file() or not source.exists():
        canvas = parse_canvas_name(name)
        if canvas is not None:
            return "canvas", canvas["user_id"], canvas["name"], bool(canvas["late"])
    stem = name if source.is_dir() else source.stem
    return "plain", stem, "", False


def _layout_siblings(source: Path, layout: str) -> list[Path]:
    """The flat files of one Canvas user or Moodle participant next to `source`."""
    if layout == "canvas":
        key = parse_canvas_name(source.name)["user_id"]  # type: ignore[index]

        def same(p: Path) -> bool:
            fields = parse_canvas_name(p.name)
            return fields is not None and fields["user_id"] == key
    else:
        key = parse_moodle_name(source.name)["participant_id"]  # type: ignore[index]

        def same(p: Path) -> bool:
            fields = parse_moodle_name(p.name)
            return fields is not None and fields["participant_id"] == key
    return sorted(p for p in source.parent.iterdir() if p.is_file() and same(p))


def _layout_filename(path: Path, layout: str) -> str:
    if layout == "canvas":
        fields = parse_canvas_name(path.name)
        name = fields["filename"] if fields else path.name
        m = _RESUBMISSION_RE.match(name)
        return f"{m['stem']}{m['suffix']}" if m else name
    if layout == "moodle":
        fields = parse_moodle_name(path.name)
        return fields["filename"] if fields and fields["filename"] else path.name
    return path.name


def _gather(source: Path, layout: str, limits: IntakeLimits,
            state: _State) -> list[_Candidate]:
    """Every file of the submission, with paths relative to it."""
    if source.is_dir():
        found = _folder_candidates(source, limits, state)
        # A folder holding nothing but one zip (Moodle wraps uploads in folders).
        code = [c for c in found if c.name.endswith((".py", ".ipynb"))]
        zips = [c for c in found if c.name.lower().endswith(".zip")]
        if not code and len(zips) == 1:
            return _zip_candidates(source / zips[0].rel, limits, state, zips[0].rel)
        return found
    if not source.exists():
        raise _Refused(f"{source} does not exist")
    paths = _layout_siblings(source, layout) if layout in ("canvas", "moodle") else [source]
    found = []
    for path in paths:
        name = _layout_filename(path, layout)
        if name.lower().endswith(".zip"):
            found.extend(_zip_candidates(path, limits, state, name))
        else:
            found.append(_file_candidate(path, name))
    if len(found) > limits.max_files:
        raise _Refused(f"the submission holds {len(found)} files; the limit is "
                       f"{limits.max_files}")
    if sum(c.size for c in found) > limits.max_total_bytes:
        raise _Refused(f"the submission holds more than {limits.max_total_mb:g} MB; the "
                       f"limit is {limits.max_total_mb:g} MB")
    return found


def _pick(candidates: list[_Candidate], name: str, state: _State) -> _Candidate | None:
    same = sorted((c for c in candidates if c.name == name), key=lambda c: (c.depth, c.rel))
    if not same:
        return None
    if len(same) > 1 and same[0].depth == same[1].depth:
        state.notes.append(f"{name} appears more than once ({', '.join(c.rel for c in same)});"
                           f" used {same[0].rel}")
    return same[0]


def _match(candidates: list[_Candidate], expected: Sequence[str],
           state: _State) -> dict[str, tuple[_Candidate, bool]]:
    """Expected name → (candidate, is a notebook to convert)."""
    chosen: dict[str, tuple[_Candidate, bool]] = {}
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
        state.notes.append(f"{name} was not found; took {other.rel} as {name}")
    return chosen


def _read_manifest(candidates: list[_Candidate], state: _State) -> dict | None:
    hit = _pick(candidates, MANIFEST_NAME, _State())
    if hit is None:
        return None
    try:
        data = json.loads(hit.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        state.problems.append(f"{MANIFEST_NAME} is not valid JSON ({exc}); the student id "
                              "comes from the file name instead")
        return None
    if not isinstance(data, dict) or not isinstance(data.get("student_id"), str) \
            or not data["student_id"].strip():
        state.problems.append(f"{MANIFEST_NAME} has no `student_id` string; the student id "
                              "comes from the file name instead")
        return None
    return data


def _manifest_time(manifest: dict, state: _State) -> datetime | None:
    raw = manifest.get("created_at")
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        state.problems.append(f"{MANIFEST_NAME}: `created_at` must be an ISO 8601 time; "
                              f"received: {raw!r}")
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _check_manifest(manifest: dict, candidates: list[_Candidate],
                    state: _State, assignment: str | None) -> None:
    if assignment is not None and manifest.get("assignment") not in (None, assignment):
        state.problems.append(f"{MANIFEST_NAME} is for assignment "
                              f"{manifest.get('assignment')!r}; expected {assignment!r}")
    listed = manifest.get("files", {})
    if not isinstance(listed, dict):
        state.problems.append(f"{MANIFEST_NAME}: `files` must map names to sha256 hashes; "
                              f"received: {type(listed).__name__}")
        return
    for name, digest in sorted(listed.items()):
        hit = _pick(candidates, name, _State())
        if hit is None:
            state.problems.append(f"{MANIFEST_NAME} lists {name} but the submission has no "
                                  "such file")
        elif (actual := _sha256(hit.read())) != str(digest).lower():
            state.problems.append(f"{name} changed after `grader submit` packed it: its "
                                  f"sha256 is {actual[:12]}..., the manifest says "
                                  f"{str(digest)[:12]}...")


def _install(name: str, candidate: _Candidate, convert: bool, workspace: Path,
             state: _State) -> str | None:
    """Write one expected file into the workspace; its sha256, or None on a problem."""
    data = candidate.read()
    if convert or name.endswith(".ipynb"):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            state.problems.append(f"{candidate.rel}: notebook is not UTF-8 text: {exc}")
            return None
        try:
            module = notebook_to_module(text, name=candidate.name)
        except ValueError as exc:
            state.problems.append(str(exc))
            return None
        if convert:
            data = module.encode("utf-8")
            state.notes.append(f"{candidate.rel} was converted to {name} (code cells only)")
            try:
                compile(module, name, "exec", dont_inherit=True)
            except SyntaxError as exc:
                state.problems.append(f"{name} (from {candidate.rel}) is not valid Python: "
                                      f"line {exc.lineno}: {exc.msg}")
    target = workspace / name
    target.write_bytes(data)
    target.chmod(0o600)
    return _sha256(data)


def intake(source: Path, workdir: Path, *, expected_files: Sequence[str],
           limits: IntakeLimits = IntakeLimits(), assignment: str | None = None) -> Submission:
    """Copy one submission's expected files into a fresh private workspace.

    Args:
        source: A folder, a `.zip`, a `.py` or an `.ipynb`; for Canvas and flat Moodle
            downloads, any one file of the student (the others next to it are included).
        workdir: Where the workspace folder is created (it must exist and be writable).
        expected_files: The names the assignment expects (`["mlp_numpy.py"]`).
        limits: Bounds on size and file count.
        assignment: The assignment id; when given, a manifest for another one is a problem.

    Returns:
        The submission; `problems` says what could not be used. It never raises for a bad
        submission, only when `workdir` cannot hold a new folder (OSError).
    """
    source = Path(source)
    layout, student_id, display_name, late = _identity(source)
    workspace = Path(tempfile.mkdtemp(prefix=f"{_sanitize(student_id)}-", dir=workdir))
    state = _State()
    files: dict[str, str] = {}
    submitted_at: datetime | None = None
    try:
        candidates = _gather(source, layout, limits, state)
        manifest = _read_manifest(candidates, state)
        if manifest is not None:
            layout, student_id = "manifest", manifest["student_id"].strip()
            submitted_at = _manifest_time(manifest, state)
            _check_manifest(manifest, candidates, state, assignment)
        chosen = _match(candidates, expected_files, state)
        for name in expected_files:
            if name not in chosen:
                found = sorted(c.rel for c in candidates if c.name != MANIFEST_NAME)
                state.problems.append(f"{name} is missing; found: "
                                      f"{', '.join(found) if found else 'no files'}")
                continue
            candidate, convert = chosen[name]
            digest = _install(name, candidate, convert, workspace, state)
            if digest is not None:
                files[name] = digest
        if submitted_at is None:
            times = [c.mtime for c, _ in chosen.values() if c.mtime is not None]
            if source.is_file():
                times = [source.stat().st_mtime]
            if times:
                submitted_at = datetime.fromtimestamp(max(times), tz=timezone.utc)
    except _Refused as exc:
        state.problems.append(str(exc))
    except Exception as exc:  # a broken submission must never stop the batch
        state.problems.append(f"the submission could not be read: {type(exc).__name__}: {exc}")
    return Submission(
        student_id=student_id,
        source=source,
        workspace=workspace,
        files=MappingProxyType(files),
        problems=tuple(state.problems),
        submitted_at=submitted_at,
        expected=tuple(expected_files),
        display_name=display_name,
        late_flag=late,
        layout=layout,
        notes=tuple(state.notes),
    )


def discover(folder: Path) -> list[Path]:
    """The submissions in a class folder, one path each, sorted.

    Each subfolder, `.zip`, `.py` and `.ipynb` is one submission; flat Canvas and Moodle
    files of one student (any extension) count once, as their first file; hidden entries,
    `__MACOSX` and other files are skipped.

    Args:
        folder: The class folder (an unpacked LMS download, or one entry per student).

    Returns:
        Paths to pass to `intake`.
    """
    result: list[Path] = []
    seen: set[tuple[str, str]] = set()
    for path in sorted(Path(folder).iterdir()):
        if path.name.startswith(".") or path.name in _IGNORED_DIRS or path.is_symlink():
            continue
        if path.is_dir():
            result.append(path)
            continue
        moodle = parse_moodle_name(path.name)
        canvas = parse_canvas_name(path.name)
        if moodle is not None:
            key = ("moodle", moodle["participant_id"])
        elif canvas is not None:
            key = ("canvas", canvas["user_id"])
        elif path.suffix.lower() in (".zip", ".py", ".ipynb"):
            result.append(path)
            continue
        else:
            continue
        if key not in seen:
            seen.add(key)
            result.append(path)
    return result
