"""`grader submit`: pack the student's files and a manifest into a zip to hand in."""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from grader.i18n import Domain
from grader.ids import InvalidId, file_name, validate_id
from grader.intake import MANIFEST_NAME
from grader.kit.check import (
    NOTEBOOK,
    PUBLIC_SUITE,
    check_folder,
    load_released,
    released_folder,
    use_kit_language,
)
from grader.results.records import PASSED

_, _n = Domain("cli").functions()


class SubmitRefused(Exception):
    """The submission cannot be packed; the message says what to fix."""


def manifest(folder: Path, files: list[str], *, student_id: str, assignment: str) -> dict:
    """The manifest: the student's claims (id, time) and the hashes of the packed files.

    The grader shows the id and time as claims only: who and when come from the
    instructor's side (the LMS download, the receipt time).
    """
    return {
        "student_id": student_id,
        "assignment": assignment,
        "files": {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
                  for name in files},
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def pack(folder: Path, *, student_id: str, out: Path | None = None) -> Path:
    """Writes ``<assignment>-<student_id>.zip`` with the student files and manifest.json.

    The assignment comes from the folder's assignment.toml, whatever the folder is named.

    Raises:
        SubmitRefused: An invalid id (`grader.ids.validate_id`) or a missing file.
    """
    folder, _work = released_folder(folder)
    config = load_released(folder)
    try:
        student_id = validate_id(student_id)
    except InvalidId as exc:
        raise SubmitRefused(_("--student-id: {error}; expected your student number or "
                              "login, e.g. --student-id 2023123456", error=exc)) from None
    # A student who works in the notebook hands it in instead of the .py (intake converts it).
    files = [name if (folder / name).is_file() or not (folder / notebook).is_file()
             else notebook
             for name, notebook in ((n, Path(n).stem + NOTEBOOK) for n in config.student_files)]
    missing = [name for name in files if not (folder / name).is_file()]
    if missing:
        raise SubmitRefused(_("{missing} missing in {folder}; the assignment needs: {needed} "
                              "(or the notebook of the same name)", missing=", ".join(missing),
                              folder=folder, needed=", ".join(config.student_files)))
    out = out or folder / f"{config.id}-{file_name(student_id)}.zip"
    record = manifest(folder, files, student_id=student_id, assignment=config.id)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in files:
            archive.write(folder / name, name)
        archive.writestr(MANIFEST_NAME, json.dumps(record, indent=2))
    return out


def main(*, folder: Path, student_id: str, out: Path | None = None,
         skip_checks: bool = False) -> int:
    folder = folder.resolve()
    use_kit_language(folder)
    path = pack(folder, student_id=student_id, out=out)
    released, _work = released_folder(folder)
    if not skip_checks and (released / "tests" / PUBLIC_SUITE).is_file():
        grade = check_folder(folder)
        failing = [t.case for p in grade.parts for t in p.tests if t.status != PASSED]
        if failing:
            print(_n("warning: {n} public check fails: {failing}. Run `grader check` to see "
                     "why; the zip was written anyway.",
                     "warning: {n} public checks fail: {failing}. Run `grader check` to see "
                     "why; the zip was written anyway.", len(failing),
                     failing=", ".join(failing)), file=sys.stderr)
    print(_("wrote {path}: hand this file in.", path=path))
    return 0
