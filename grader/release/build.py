"""strip -> release: an assignment's student folder, refused unless it is right.

`release(config, out)` writes ``<out>/<id>/`` with:

- the student skeleton of every file (solution bodies replaced by stubs);
- ``tests/test_public.py``, the public subset of the hidden suite;
- ``assignment.toml`` with the public parts only (what `grader check` runs);
- ``README.md``: the instructions rendered through ``templates/instructions.md.j2``.
- ``.nn-grader-release.json``: the hash of every file written (`grader.release.kit`), so
  a later release refuses to replace the folder once someone edited it, unless forced.

It refuses, writing nothing, unless the reference scores full marks on the hidden
suite, the bare skeleton imports and scores zero on every part, and the release holds
no solution text and no hidden test.
"""

from __future__ import annotations

import ast
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2

from grader.config import AssignmentConfig, parameter_mismatches, validate_tests
from grader.course import template_loader
from grader.i18n import Domain
from grader.intake import intake
from grader.kit.check import PUBLIC_SUITE
from grader.release import kit
from grader.release.strip import find_solution_leaks, strip_file
from grader.reports.templates_env import add_i18n, rendering_language
from grader.results.records import Grade

_, _n = Domain("cli").functions()


class ReleaseRefused(Exception):
    """The release would be wrong; the message lists every reason."""


@dataclass(frozen=True)
class ReleaseReport:
    folder: Path
    reference_grade: Grade
    skeleton_grade: Grade


def suite_tests(suite: Path) -> dict[str, set[str]]:
    """File name -> the ``test_*`` functions defined at the top level of each suite file."""
    found = {}
    for file in sorted(suite.glob("test_*.py")):
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        found[file.name] = {node.name for node in tree.body
                            if isinstance(node, ast.FunctionDef) and node.name.startswith("test")}
    return found


def skeleton_texts(config: AssignmentConfig) -> dict[str, str]:
    """Student file name -> its released text (stripped reference or released notebook)."""
    texts = {}
    for file in config.files:
        if file.reference is None:
            raise ReleaseRefused(_("{file}: no reference file to strip (set `reference` in "
                                   "assignment.toml)", file=file.student))
        if file.reference.suffix == ".ipynb":
            from grader.release.notebook import release_notebook_text  # nbgrader: an extra

            texts[file.student] = release_notebook_text(file.reference)
        else:
            texts[file.student] = strip_file(file.reference).text
    return texts


def check_public_suite(config: AssignmentConfig, suite: Path) -> list[str]:
    """Reasons the public suite may not ship (it must not see the reference or hidden tests)."""
    path = suite / PUBLIC_SUITE
    public_parts = [part for part in config.parts if part.public]
    if not path.is_file():
        return [_("{path} does not exist; parts marked public: {parts}", path=path,
                  parts=", ".join(p.name for p in public_parts))] if public_parts else []
    text = path.read_text(encoding="utf-8")
    reasons = []
    tree = ast.parse(text)
    for node in ast.walk(tree):
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
                 [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        if any(name == "reference" or name.startswith("reference.") for name in names):
            reasons.append(_("{file}:{line}: the public suite imports the reference",
                             file=path.name, line=node.lineno))
    if "BEGIN HIDDEN TESTS" in text:
        reasons.append(_("{file}: contains hidden tests", file=path.name))
    defined = suite_tests(suite).get(PUBLIC_SUITE, set())
    for part in config.parts:
        outside = [test for test in part.tests if test not in defined]
        if part.public and outside:
            reasons.append(_("part `{part}` is public but its tests {tests} are not in "
                             "{suite}", part=part.name, tests=", ".join(outside),
                             suite=PUBLIC_SUITE))
        inside = [test for test in part.tests if test in defined]
        if not part.public and inside:
            reasons.append(_("part `{part}` is hidden but its tests {tests} are in {suite}, "
                             "which ships to students", part=part.name,
                             tests=", ".join(inside), suite=PUBLIC_SUITE))
    return reasons


def render_instructions(config: AssignmentConfig) -> str:
    """The student's README.md: the course's (else the tool's) ``instructions.md.j2`` around
    the assignment's own README.md, in which ``{{ parameters.name }}`` shows a parameter."""
    environment = jinja2.Environment(loader=template_loader(config.repo_root),
                                     undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    body_path = instructions_source(config)
    body = body_path.read_text(encoding="utf-8") if body_path.is_file() else ""
    try:
        body = environment.from_string(body).render(parameters=dict(config.parameters),
                                                    config=config)
    except jinja2.TemplateError as error:  # the instructor's README: say where and what
        line = getattr(error, "lineno", None) or _template_line(error)
        # The jinja2 spellings are values: braces in a message are str.format's.
        facts = {"path": body_path, "line": line, "error": error,
                 "defined": ", ".join(config.parameters) or _("none"),
                 "shows": "{{ parameters.NAME }}", "literal": "{{ '{{' }}", "braces": "{{"}
        raise ReleaseRefused(_(
            "{path} line {line}: {error}; [parameters] defines: {defined} (the README is a "
            "jinja2 template: {shows} shows a value of [parameters] in assignment.toml; write "
            "{literal} for a literal {braces})", **facts) if line else _(
            "{path}: {error}; [parameters] defines: {defined} (the README is a jinja2 "
            "template: {shows} shows a value of [parameters] in assignment.toml; write "
            "{literal} for a literal {braces})", **facts)) from None
    # One template, rendered in the course's language (jinja2.ext.i18n, `reports` catalog).
    with rendering_language(kit.course_language(config)):
        return add_i18n(environment).get_template("instructions.md.j2").render(
            config=config, body=body, install=kit.install_requirement(config),
            language=kit.course_language(config))


def instructions_source(config: AssignmentConfig) -> Path:
    """The assignment's README in the course's language: ``README.<language>.md`` (e.g.
    ``README.zh_CN.md``) when there is one, else ``README.md`` (English, the source)."""
    translated = config.root / f"README.{kit.course_language(config)}.md"
    return translated if translated.is_file() else config.root / "README.md"


def _template_line(error: BaseException) -> int | None:
    """The template line an error was raised on (jinja2 maps its frames to "<template>")."""
    line, trace = None, error.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


def public_config_text(config: AssignmentConfig) -> str:
    """assignment.toml for the student folder: the public parts, no reference paths."""
    lines = [f'id = "{config.id}"', f"title = {_toml_string(config.title)}",
             f"due = {config.due.isoformat()}", ""]
    for file in config.files:
        lines += ["[[files]]", f'student = "{file.student}"', ""]
    for part in config.parts:
        if part.public:
            tests = ", ".join(f'"{test}"' for test in part.tests)
            lines += ["[[parts]]", f'name = "{part.name}"', f"points = {part.points:g}",
                      f"tests = [{tests}]", "public = true", ""]
    for table in ("budgets", "thresholds", "sandbox"):
        values = getattr(config, table)
        if values:
            lines.append(f"[{table}]")
            lines += [f"{key} = {str(value).lower() if isinstance(value, bool) else value}"
                      for key, value in values.items()]
            lines.append("")
    if config.parameters:  # public tests read them too
        lines.append("[parameters]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in config.parameters.items()]
        lines.append("")
    return "\n".join(lines)


def release(
    config: AssignmentConfig,
    out: Path,
    *,
    grade: Callable[[AssignmentConfig, Path], Grade],
    force: bool = False,
) -> ReleaseReport:
    """Builds and checks the student folder, then moves it to ``<out>/<id>``.

    Args:
        config: the assignment.
        out: the parent folder of the release.
        grade: grades a folder of student files with the hidden suite
            (`grader.grading.run`), used for the self-check.
        force: replace ``<out>/<id>`` even when it was edited since it was released
            (`grader.release.kit.edited_files`); without it such a folder is refused.

    Returns:
        Where the release went, and the reference's and skeleton's grades.

    Raises:
        ReleaseRefused: listing every reason; nothing is written.
        MarkerError: a reference has malformed markers; nothing is written.
    """
    target = out / config.id
    refusal = None if force else kit.replace_refusal(target)
    if refusal:  # before grading: a minute of self-check would be wasted
        raise ReleaseRefused(_("release of `{id}` refused: {reason}", id=config.id,
                               reason=refusal))
    suite = config.repo_root / "autograde_tests" / config.id
    found = suite_tests(suite)
    validate_tests(config, set().union(*found.values()) if found else set())
    reasons = check_public_suite(config, suite) + parameter_mismatches(config)
    texts = skeleton_texts(config)
    for file in config.files:
        leaks = find_solution_leaks(texts[file.student], file.reference.read_text(
            encoding="utf-8"), filename=file.student)
        reasons += [_("{file}: solution text left in the skeleton: {leak}", file=file.student,
                      leak=leak) for leak in leaks]

    with tempfile.TemporaryDirectory(prefix="nn-grader-release-") as scratch:
        scratch = Path(scratch)
        reference_dir, skeleton_dir = scratch / "reference", scratch / config.id
        reference_dir.mkdir()
        skeleton_dir.mkdir()
        for file in config.files:
            shutil.copyfile(file.reference, reference_dir / file.student)
            (skeleton_dir / file.student).write_text(texts[file.student], encoding="utf-8")
        reference_grade = grade(config, reference_dir)
        skeleton_grade = grade(config, skeleton_dir)
        reasons += _self_check(reference_grade, skeleton_grade)
        if reasons:
            raise ReleaseRefused(_("release of `{id}` refused:\n- {reasons}", id=config.id,
                                   reasons="\n- ".join(reasons)))

        if (suite / PUBLIC_SUITE).is_file():
            (skeleton_dir / "tests").mkdir()
            shutil.copyfile(suite / PUBLIC_SUITE, skeleton_dir / "tests" / PUBLIC_SUITE)
        # Only the public suite's and the toml's sentences: never the hidden suite's.
        kit.write_course_catalog(skeleton_dir, config, suite / PUBLIC_SUITE)
        (skeleton_dir / "assignment.toml").write_text(public_config_text(config),
                                                      encoding="utf-8")
        (skeleton_dir / "README.md").write_text(render_instructions(config), encoding="utf-8")
        kit.write_manifest(skeleton_dir, config)
        if target.exists():
            shutil.rmtree(target)
        out.mkdir(parents=True, exist_ok=True)
        shutil.move(str(skeleton_dir), target)
    return ReleaseReport(target, reference_grade, skeleton_grade)


def _self_check(reference: Grade, skeleton: Grade) -> list[str]:
    reasons = []
    for part in reference.parts:
        if part.points < part.max_points:
            failed = [f"{t.case} ({t.status}: {t.message.splitlines()[0] if t.message else ''})"
                      for t in part.tests if t.fraction < 1]
            reasons.append(_("the reference scores {points}/{max_points} on part `{part}`; "
                             "failing: {failing}", points=f"{part.points:g}",
                             max_points=f"{part.max_points:g}", part=part.name,
                             failing="; ".join(failed)))
    for part in skeleton.parts:
        if part.points > 0:
            passed = [t.case for t in part.tests if t.fraction > 0]
            reasons.append(_("the bare skeleton scores {points}/{max_points} on part `{part}` "
                             "(tests passing without student code: {passing})",
                             points=f"{part.points:g}", max_points=f"{part.max_points:g}",
                             part=part.name, passing=", ".join(passed)))
    return reasons


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_value(value: object) -> str:
    """A `[parameters]` value (number, string, boolean or a tuple of them) as TOML."""
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    return repr(value)


def student_folder_submission(folder: Path, config: AssignmentConfig, scratch: Path):
    """The intake of a student's working folder (used by `grader check` and `submit`)."""
    return intake(folder, scratch, expected_files=config.student_files, assignment=config.id)


def main(*, assignment: str, out: Path, audit: bool = False, force: bool = False) -> int:
    """`grader release <id> --out DIR [--audit]`: build, self-check, write the student folder.

    With ``audit``, every planted bug and variant is graded first (`grader.audit`), and an
    unfair matrix refuses the release. It is a flag because it grades every sample: minutes
    for the Keras assignments on a CPU.
    """
    from grader.config import load_assignment
    from grader.grading.run import grade_path

    config = load_assignment(assignment)
    if audit:
        from grader import audit as audit_module

        if audit_module.main(assignment=assignment) != 0:
            raise ReleaseRefused(_("release of `{id}` refused: the audit of its planted bugs "
                                   "and variants is unfair (the reasons are listed above)",
                                   id=config.id))
    print(_("releasing {id}: grading the reference and the bare skeleton...", id=config.id),
          flush=True)
    report = release(config, out, grade=lambda cfg, folder: grade_path(cfg, folder).grade,
                     force=force)
    reference, skeleton = report.reference_grade, report.skeleton_grade
    print(_("reference: {reference}/{total}, bare skeleton: {skeleton}/{total}",
            reference=f"{reference.score:g}", skeleton=f"{skeleton.score:g}",
            total=f"{reference.max_score:g}"))
    print(_("released to {folder}", folder=report.folder))
    return 0
