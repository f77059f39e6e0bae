"""An assignment's sample submissions: planted bugs and correct variants.

``assignments/<id>/samples/bugs.toml`` describes each planted bug as a few edits of
the reference (its solution markers removed) and the parts it must lose points in;
``samples/variants/<name>/`` holds correct solutions written in other styles, which
must earn full marks. Keeping bugs as edits, not copies, means a fix elsewhere in
the reference reaches every sample, and a bug whose lines changed fails loudly.
"""

from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from grader.config import AssignmentConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_MARKER = re.compile(r"(BEGIN|END) (SOLUTION|HIDDEN TESTS)")


class SampleError(ValueError):
    """A sample cannot be built from the reference; the message says which and why."""


@dataclass(frozen=True)
class PlantedBug:
    """One realistic bug: edits (find -> replace) of one student file, and the parts it costs."""

    name: str
    parts: tuple[str, ...]
    edits: tuple[tuple[str, str], ...]
    file: str


def samples_dir(config: AssignmentConfig) -> Path:
    return config.root / "samples"


def load_bugs(config: AssignmentConfig) -> list[PlantedBug]:
    """The planted bugs of `bugs.toml`, or [] when the assignment has none."""
    path = samples_dir(config) / "bugs.toml"
    if not path.is_file():
        return []
    table = tomllib.loads(path.read_text(encoding="utf-8"))
    default_file = config.student_files[0]
    bugs = []
    for name, entry in sorted(table.items()):
        edits = tuple((edit["find"], edit["replace"]) for edit in entry.get("edit", []))
        if not edits:
            raise SampleError(f"{path}: bug `{name}` has no [[{name}.edit]]")
        bugs.append(PlantedBug(name, tuple(entry["parts"]), edits, entry.get("file", default_file)))
    return bugs


def reference_without_markers(config: AssignmentConfig, student_file: str) -> str:
    """The reference file as a student would hand it in: the marker lines removed."""
    file = next(f for f in config.files if f.student == student_file)
    lines = file.reference.read_text(encoding="utf-8").splitlines(keepends=True)
    return "".join(line for line in lines if not _MARKER.search(line))


def bug_source(config: AssignmentConfig, bug: PlantedBug) -> str:
    """The reference with the bug's edits applied.

    Every `find` is located in the unedited reference, where it must occur exactly once
    and not overlap another edit's; then all are replaced at once.
    """
    text = reference_without_markers(config, bug.file)
    spans = []
    for find, replacement in bug.edits:
        count = text.count(find)
        if count != 1:
            raise SampleError(f"bug `{bug.name}`: its `find` text occurs {count} times in the "
                              f"reference of {bug.file}; expected exactly once:\n{find}")
        start = text.index(find)
        spans.append((start, start + len(find), replacement))
    spans.sort()
    for (_, end, _), (start, _, _) in zip(spans, spans[1:], strict=False):
        if start < end:
            raise SampleError(f"bug `{bug.name}`: two of its edits overlap in {bug.file}")
    for start, end, replacement in reversed(spans):
        text = text[:start] + replacement + text[end:]
    return text


def write_bug(config: AssignmentConfig, bug: PlantedBug, folder: Path) -> Path:
    """A submission folder holding the buggy file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / bug.file).write_text(bug_source(config, bug), encoding="utf-8")
    return folder


def variants(config: AssignmentConfig) -> list[Path]:
    """The correct-variant submission folders."""
    return sorted(p for p in (samples_dir(config) / "variants").glob("*") if p.is_dir())


def sample_class(config: AssignmentConfig, target: Path, *,
                 skeleton_folder: Path | None = None, max_bugs: int | None = None,
                 max_variants: int | None = None) -> Path:
    """A class folder: the reference, the bare skeleton, the planted bugs and variants.

    Args:
        config: the assignment.
        target: the class folder to (re)create, one subfolder per "student".
        skeleton_folder: a released student folder whose files are the bare skeleton.
        max_bugs: at most this many planted bugs (the first by name); None: all.
        max_variants: at most this many correct variants; None: all.
    """
    if target.exists():
        shutil.rmtree(target)
    (target / "reference").mkdir(parents=True)
    for file in config.files:
        shutil.copyfile(file.reference, target / "reference" / file.student)
        if skeleton_folder is not None:
            (target / "bare-skeleton").mkdir(exist_ok=True)
            shutil.copyfile(skeleton_folder / file.student, target / "bare-skeleton" / file.student)
    for bug in load_bugs(config)[:max_bugs]:
        write_bug(config, bug, target / f"bug-{bug.name}")
    for variant in variants(config)[:max_variants]:
        shutil.copytree(variant, target / f"variant-{variant.name}")
    return target
