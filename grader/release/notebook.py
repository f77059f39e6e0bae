"""Release an nbgrader-format notebook exactly as `nbgrader generate_assignment` does.

nbgrader 0.9's `GenerateAssignment` converter (`nbgrader/converters/generate_assignment.py`)
registers these preprocessors on an nbconvert `NotebookExporter`, in this order:

 1. IncludeHeaderFooter   prepend/append header and footer notebooks (if configured)
 2. InstantiateTests      expand `AUTOTEST` snippets (starts a kernel only if one is present)
 3. LockCells             make solution and grade cells undeletable / uneditable
 4. ClearSolutions        replace `### BEGIN SOLUTION` regions and solution cells by stubs
 5. ClearOutput           drop outputs and execution counts
 6. CheckCellMetadata     validate the nbgrader metadata
 7. ComputeChecksums      checksum the cells as released, before hidden tests go
 8. SaveCells             record grade/solution/task cells in the gradebook database
 9. ClearHiddenTests      remove `### BEGIN HIDDEN TESTS` regions
10. ClearMarkScheme       remove `### BEGIN MARK SCHEME` regions
11. ComputeChecksums      again, after the hidden tests are gone
12. CheckCellMetadata     again

`release_notebook` runs the same list through the same exporter, skipping only SaveCells:
it writes to the gradebook database (and needs one), and it changes nothing in the
notebook. nbgrader's converter also records the assignment in that database
(`init_assignment`) and sets file permissions; neither touches the notebook either. The
result is the same text `nbgrader generate_assignment` writes to `release/<id>/`.
"""

from __future__ import annotations

from pathlib import Path

from nbconvert.exporters import NotebookExporter
from nbgrader.preprocessors import (
    CheckCellMetadata,
    ClearHiddenTests,
    ClearMarkScheme,
    ClearOutput,
    ClearSolutions,
    ComputeChecksums,
    IncludeHeaderFooter,
    InstantiateTests,
    LockCells,
)
from traitlets.config import Config

__all__ = ["RELEASE_PREPROCESSORS", "NotebookReleaseError", "release_notebook",
           "release_notebook_text"]

# nbgrader's GenerateAssignment.preprocessors without SaveCells (see the module docstring).
RELEASE_PREPROCESSORS = (
    IncludeHeaderFooter,
    InstantiateTests,
    LockCells,
    ClearSolutions,
    ClearOutput,
    CheckCellMetadata,
    ComputeChecksums,
    ClearHiddenTests,
    ClearMarkScheme,
    ComputeChecksums,
    CheckCellMetadata,
)


class NotebookReleaseError(ValueError):
    """A notebook nbgrader refuses to release; the message names the file and nbgrader's reason."""


def _exporter(config: Config | None) -> NotebookExporter:
    merged = Config()
    merged.Exporter.default_preprocessors = []  # as nbgrader's BaseConverter does
    if config is not None:
        merged.merge(config)
    exporter = NotebookExporter(config=merged)
    for preprocessor in RELEASE_PREPROCESSORS:
        exporter.register_preprocessor(preprocessor)
    return exporter


def _resources(path: Path) -> dict:
    # What nbgrader's init_single_notebook_resources passes (SaveCells reads the rest).
    notebook_id = path.stem
    return {
        "unique_key": notebook_id,
        "output_files_dir": f"{notebook_id}_files",
        "nbgrader": {"student": ".", "assignment": path.parent.name,
                     "notebook": notebook_id, "db_url": ""},
    }


def release_notebook_text(path_in: Path, *, config: Config | None = None) -> str:
    """The released notebook's JSON text.

    Args:
        path_in: The instructor's notebook (nbgrader cell metadata, solution markers).
        config: Optional traitlets overrides for nbgrader's preprocessors, as in
            `nbgrader_config.py` (`c.ClearSolutions.code_stub = {...}`). Header and footer
            paths (`c.IncludeHeaderFooter.header`) are relative to the current directory.

    Returns:
        The text `nbgrader generate_assignment` would write, ending in a newline.

    Raises:
        NotebookReleaseError: If the notebook cannot be read or nbgrader rejects it (a
            solution region outside a solution cell, an unterminated marker, corrupt
            metadata); the message says which.
    """
    path_in = Path(path_in)
    exporter = _exporter(config)
    try:
        output, _ = exporter.from_filename(str(path_in), resources=_resources(path_in))
    except Exception as exc:  # nbgrader raises RuntimeError, ValidationError, ValueError...
        raise NotebookReleaseError(f"{path_in}: nbgrader cannot release this notebook: "
                                   f"{type(exc).__name__}: {exc}") from exc
    return output


def release_notebook(path_in: Path, path_out: Path, *, config: Config | None = None) -> Path:
    """Release one notebook: read `path_in`, write the student version to `path_out`.

    Args:
        path_in: The instructor's notebook.
        path_out: Where the student version goes (its folder is created if needed).
        config: Optional nbgrader preprocessor overrides; see `release_notebook_text`.

    Returns:
        `path_out`.

    Raises:
        NotebookReleaseError: See `release_notebook_text`; nothing is written then.
    """
    text = release_notebook_text(path_in, config=config)
    path_out = Path(path_out)
    path_out.parent.mkdir(parents=True, exist_ok=True)
    path_out.write_text(text, encoding="utf-8")
    return path_out
