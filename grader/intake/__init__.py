"""Intake: one submission (folder, zip, .py or .ipynb) → a private workspace copy.

`intake` never raises for a bad submission: what cannot be used is described in
`Submission.problems` (missing files, a damaged or oversized zip, a notebook that is not
JSON, a name that gives no valid id), and what was adjusted or claimed in
`Submission.notes` (a renamed file, a converted notebook, the manifest's claims).

Decisions:

- **Who and when come from the instructor's side** (`layouts`): the LMS download's names
  (Moodle participant id, Canvas user id and LATE marker) or, for a plain upload, the
  file or folder name; the time is the instructor's `--submitted-at`, else the receipt
  time (the newest modification time of the download's files as received, never a time
  inside a zip). A `manifest.json` from `grader submit` is a claim: its `student_id`
  and `created_at` are kept as `claimed_id`/`claimed_at` and shown in the notes; a
  claimed id that differs from the instructor-side id is a problem for a plain upload
  (same namespace: someone else's file, or a renamed one) and a note for an LMS layout
  (a Canvas user id is not a student number). It never changes whose grade it is.
- **Lateness** (`lateness_time`): `--submitted-at` as given; Canvas's LATE marker charges
  at least one second past due and grace (one late day when no later time is known);
  a Canvas submission without it is on time; otherwise the receipt time.
- **Duplicates** (`layouts.survey`): two submissions of one instructor-side id in one
  class folder: the latest by receipt time counts, ties to the last name in sorted
  order; two Canvas files of one user with the same name: the highest attachment id
  (Canvas numbers uploads in order). The others are reported and never graded.
- Only the expected files enter the workspace, under their expected names; no
  submitted path is ever written to disk. The workspace folder's name comes from
  `grader.ids.file_name`.
- A file is found by its base name anywhere in the submission, the shallowest first; a
  wrong name is accepted when unambiguous (one missing `.py`, one other `.py`/`.ipynb`),
  with a note. Canvas's resubmission suffix (`mlp_numpy-1.py`) is taken silently.
- A notebook submitted for an expected `.py` becomes a module (code cells only, magics
  and shell lines commented out); notebooks are read as UTF-8 JSON.
- **Bounded** (`IntakeLimits`, `archives`): every entry (folders too) counts against
  `max_files`; declared sizes are summed and held to `max_ratio` (100:1) per entry and
  overall; only stored/deflate entries are read; the entries intake uses are
  decompressed once each, streamed, under a byte and a time budget; entries with
  absolute paths, `..` or symlink modes are never extracted.
- `files` maps each expected name to the sha256 of the workspace file (what is graded);
  the manifest's hashes are checked against the submitted bytes and every mismatch is
  a problem.
"""

from grader.intake.files import IntakeLimits
from grader.intake.layouts import (
    ClassFolder,
    Duplicate,
    discover,
    identify,
    parse_canvas_name,
    parse_moodle_name,
    survey,
)
from grader.intake.notebooks import notebook_to_module
from grader.intake.submission import (
    MANIFEST_NAME,
    Submission,
    at_instructor_time,
    intake,
    lateness_time,
)

__all__ = [
    "MANIFEST_NAME",
    "ClassFolder",
    "Duplicate",
    "IntakeLimits",
    "Submission",
    "at_instructor_time",
    "discover",
    "identify",
    "intake",
    "lateness_time",
    "notebook_to_module",
    "parse_canvas_name",
    "parse_moodle_name",
    "survey",
]
