"""Reports in a real browser: headless Chromium opens them from files, with no network.

The test reads the DOM Chromium rendered (``--dump-dom``) for the text a student sees,
the pictures (``data:`` PNGs that decode) and the references (only data URIs, in-page
anchors and relative links to files that exist), and keeps a screenshot of each page
under ``test-artifacts/reports/``.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from grader import feedback
from grader.config import load_assignment
from grader.grading.run import grade_path
from grader.reports import ReportInput, from_graded, render_student_report
from grader.reports.plots import png_size
from grader.results.records import FAILED, Grade, PartGrade, TestOutcome

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")

ROOT = Path(__file__).resolve().parents[1]
FILES = Path(__file__).parent / "files" / "grading"
ACT = load_assignment(FILES / "repo" / "assignments" / "act" / "assignment.toml")
ARTIFACTS = ROOT / "test-artifacts" / "reports"
WINDOW = (1200, 2000)
CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")  # fonts-noto-cjk
BROWSER_TIMEOUT_S = 90
# No network, no first-run work, no background requests: the page must stand alone.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--disable-extensions")


class _Page(HTMLParser):
    """The rendered DOM's text, pictures, links and element ids."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.ids: set[str] = set()
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"])
        if tag in ("style", "script"):
            self._skip += 1
        if tag == "img":
            self.images.append(values.get("src") or "")
        for name in ("href", "src"):
            if values.get(name) and tag != "img":
                self.links.append(values[name])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)

    @property
    def visible(self) -> str:
        return re.sub(r"\s+", " ", " ".join(self.text))


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S)


def _open(page: Path, screenshot: Path, profile: Path) -> _Page:
    """Renders `page` from its file; returns the parsed DOM and writes a screenshot."""
    url = page.resolve().as_uri()
    dom = _chromium("--dump-dom", url, profile=profile)
    assert dom.returncode == 0 and "<html" in dom.stdout, dom.stderr[-2000:]
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.unlink(missing_ok=True)
    shot = _chromium(f"--screenshot={screenshot}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                     url, profile=profile)
    assert shot.returncode == 0 and screenshot.is_file(), shot.stderr[-2000:]
    assert png_size(screenshot.read_bytes()) == WINDOW
    parsed = _Page()
    parsed.feed(dom.stdout)
    return parsed


def _check_references(page: _Page, where: Path) -> None:
    """Pictures decode to PNGs; links are in-page anchors or relative files that exist."""
    for src in page.images:
        assert src.startswith("data:image/png;base64,"), src[:80]
        width, height = png_size(base64.b64decode(src.split(",", 1)[1]))
        assert width > 0 and height > 0
    for link in page.links:
        parts = urlsplit(link)
        if not parts.scheme and not parts.netloc and not parts.path:
            assert parts.fragment in page.ids, f"anchor #{parts.fragment} has no target"
            continue
        assert not parts.scheme and not parts.netloc, f"external reference: {link}"
        assert not link.startswith("/"), f"absolute path: {link}"
        assert (where / unquote(parts.path)).is_file(), f"broken link: {link}"


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """A class's reports: a real graded act submission with a training part, a missing one."""
    graded = grade_path(ACT, FILES / "submissions" / "wrong_relu")
    curve_steps = 100
    training = TestOutcome(
        "test_train_reaches_threshold", "test_train_reaches_threshold", FAILED, 0.1,
        "`train` reached test accuracy 0.6200, below 0.7580: partial credit (none at 0.6000)",
        3.0, {"accuracy": {"dataset": "fashion_mnist", "accuracy": 0.62, "threshold": 0.758,
                           "floor": 0.6},
              "learning_curve": {"loss": [2.3 * 0.98 ** i for i in range(curve_steps)],
                                 "accuracy": [min(0.9, 0.1 + 0.007 * i)
                                              for i in range(curve_steps)],
                                 "x": "mini-batch", "epochs": 1},
              "confusion_matrix": {"dataset": "fashion_mnist",
                                   "labels": [str(c) for c in range(10)],
                                   "matrix": [[40 if i == j else (4 if j == (i + 3) % 10 else 0)
                                               for j in range(10)] for i in range(10)]}})
    grade = graded.grade
    grade = Grade(grade.student_id, grade.assignment,
                  (*grade.parts, PartGrade("training", 0.0, 0.0, (training,))),
                  grade.execution_time_s, grade.problems, grade.skipped_statements)
    row = from_graded(graded, config=ACT)
    row = type(row)(**{**row.__dict__, "grade": grade, "display_name": "Wren Lee"})
    out = tmp_path_factory.mktemp("feedback")
    feedback.write_reports([row], config=ACT, out=out, roster=[("absent1", "Cy Absent")])
    return out


def test_student_report_renders_in_chromium(written, tmp_path):
    page = _open(written / "wrong_relu" / "report.html", ARTIFACTS / "student-report.png",
                 tmp_path / "profile")
    text = page.visible
    for needle in ("wrong_relu", "Wren Lee", "Two activations", "relu", "sigmoid",
                   "2 of 4 values differ from the expected ones", "Hint:", "Learning curve",
                   "Confusion matrix", "Your model reached test accuracy 0.62"):
        assert needle in text, needle
    assert re.search(r"7\s*/\s*10", text)  # the final score
    assert len(page.images) == 2  # the learning curve and the confusion matrix
    _check_references(page, written / "wrong_relu")


def test_missing_student_report_renders_in_chromium(written, tmp_path):
    page = _open(written / "absent1" / "report.html", ARTIFACTS / "missing-report.png",
                 tmp_path / "profile")
    assert "No submission" in page.visible and "Cy Absent" in page.visible
    _check_references(page, written / "absent1")


def test_class_summary_renders_in_chromium(written, tmp_path):
    page = _open(written / "index.html", ARTIFACTS / "class-summary.png", tmp_path / "profile")
    text = page.visible
    for needle in ("Two activations", "Score distribution", "Pass rate per part",
                   "Pass rate per test", "Most often failed", "Failures by reason",
                   "Slowest submissions", "wrong_relu", "absent1", "did not submit",
                   "values differ from the expected ones"):
        assert needle in text, needle
    assert len(page.images) == 1  # the histogram
    assert "wrong_relu/report.html" in page.links and "absent1/report.html" in page.links
    _check_references(page, written)


@pytest.mark.skipif(not CJK_FONT.is_file(), reason="fonts-noto-cjk is not installed "
                    "(scripts/system-deps.sh installs it)")
def test_chinese_names_render_as_chinese(tmp_path):
    """A zh-CN course's reports show 张伟 in the DOM and as glyphs, not as empty boxes.

    Two reports that differ only in a two-character name are screenshotted: with a CJK font
    the pictures differ; without one both names are drawn as the same two empty boxes.
    """
    out = tmp_path / "feedback"
    rows = [ReportInput(student_id="2024001", display_name="张伟", grade=None),
            ReportInput(student_id="2024002", display_name="李娜", grade=None)]
    feedback.write_reports(rows, config=ACT, out=out, language="zh-CN")
    page = _open(out / "2024001" / "report.html", ARTIFACTS / "chinese-name-report.png",
                 tmp_path / "profile")
    assert "张伟" in page.visible
    assert '<html lang="zh-CN">' in (out / "2024001" / "report.html").read_text()
    summary = _open(out / "index.html", ARTIFACTS / "chinese-class-summary.png",
                    tmp_path / "profile")
    assert "张伟" in summary.visible and "李娜" in summary.visible
    pictures = []
    for name in ("张伟", "李娜"):  # the same report but for the name
        html = render_student_report(ReportInput(student_id="2024001", display_name=name),
                                     config=ACT, language="zh-CN").html
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.html").write_text(html, encoding="utf-8")
        _open(tmp_path / name / "report.html", tmp_path / f"{name}.png", tmp_path / "profile")
        pictures.append((tmp_path / f"{name}.png").read_bytes())
    assert pictures[0] != pictures[1], "张伟 and 李娜 were drawn alike: no CJK glyphs"


# -- a zh_CN class: Chinese pages, no English left over ------------------------------------------

# Latin words a Chinese page keeps: the tool's name, time zones, the lecture's own English
# terms (epoch, mini-batch, notebook: the lecture writes them so), and tolerance names.
KEPT_LATIN = {"nn-grader", "GMT", "UTC", "epoch", "mini-batch", "notebook", "NaN", "rtol",
              "atol", "numpy", "Keras", "traceback"}
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_'’.\-]*")


class _Prose(HTMLParser):
    """The rendered text outside code: what must be in the page's language."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "code", "pre"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "code", "pre"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)


def english_leftovers(html: str, allowed: set[str]) -> set[str]:
    """Latin words in `html`'s text outside code that are neither identifiers (a ``_``, a
    digit, an inner dot or capital: ``test_relu``, ``report.html``, ``NotImplementedError``),
    nor `KEPT_LATIN`, nor `allowed` (the class's own names, ids, titles)."""
    prose = _Prose()
    prose.feed(html)
    words = _LATIN_WORD.findall(" ".join(prose.text))
    return {word.rstrip(".-'’") for word in words
            if not re.search(r"[_\d]|\w\.\w|[a-z][A-Z]", word)
            and word.rstrip(".-'’") not in KEPT_LATIN | allowed}


def test_the_leftover_checker_finds_english_and_spares_identifiers():
    html = ("<p>Your model reached <code>relu(x)</code> 准确率 0.62 test_relu_values "
            "report.html NotImplementedError nn-grader epoch Wren</p><pre>raw output</pre>")
    assert english_leftovers(html, {"Wren"}) == {"Your", "model", "reached"}


def _class_words(*texts: str) -> set[str]:
    return {word for text in texts for word in _LATIN_WORD.findall(text)}


@pytest.fixture(scope="module")
def written_zh(tmp_path_factory) -> Path:
    """The same class as `written`, graded and reported in zh_CN (course.toml's language)."""
    from grader import i18n

    with i18n.speaking("zh_CN"):  # the hidden suite's process inherits GRADER_LANG
        graded = grade_path(ACT, FILES / "submissions" / "wrong_relu")
    training = TestOutcome(
        "test_train_reaches_threshold", "test_train_reaches_threshold", FAILED, 0.1,
        "`train` 的测试准确率为 0.6200，低于 0.7580：部分得分（0.6000 以下不得分）", 3.0,
        {"accuracy": {"dataset": "fashion_mnist", "accuracy": 0.62, "threshold": 0.758,
                      "floor": 0.6},
         "learning_curve": {"loss": [2.3 * 0.98 ** i for i in range(100)],
                            "accuracy": [min(0.9, 0.1 + 0.007 * i) for i in range(100)],
                            "x": "mini-batch", "epochs": 1},
         "confusion_matrix": {"dataset": "fashion_mnist", "labels": [str(c) for c in range(10)],
                              "matrix": [[40 if i == j else (4 if j == (i + 3) % 10 else 0)
                                          for j in range(10)] for i in range(10)]}})
    grade = graded.grade
    grade = Grade(grade.student_id, grade.assignment,
                  (*grade.parts, PartGrade("training", 0.0, 0.0, (training,))),
                  grade.execution_time_s, grade.problems, grade.skipped_statements)
    row = from_graded(graded, config=ACT)
    row = type(row)(**{**row.__dict__, "grade": grade, "display_name": "Wren Lee"})
    out = tmp_path_factory.mktemp("feedback-zh")
    feedback.write_reports([row], config=ACT, out=out, roster=[("absent1", "Cy Absent")],
                           language="zh_CN")
    return out


ZH_CLASS_WORDS = _class_words(ACT.title, ACT.id, "relu sigmoid training wrong_relu absent1",
                              "Wren Lee Cy Absent fashion_mnist")


def test_zh_student_report_reads_in_chinese_in_chromium(written_zh, tmp_path):
    page = _open(written_zh / "wrong_relu" / "report.html", ARTIFACTS / "zh-student-report.png",
                 tmp_path / "profile")
    text = page.visible
    for needle in ("评分报告", "最终得分", "各部分得分", "提示：", "学习曲线", "混淆矩阵",
                   "你的模型在 440 张非公开测试图像（fashion_mnist）上的准确率为 0.62",
                   "达到 0.758 得满分", "测试图像中有 400 张分类正确"):
        assert needle in text, needle
    assert re.search(r"7\s*/\s*10", text)
    html = (written_zh / "wrong_relu" / "report.html").read_text(encoding="utf-8")
    assert html.startswith('<!DOCTYPE html>\n<html lang="zh-CN">')
    assert english_leftovers(html, ZH_CLASS_WORDS) == set()
    _check_references(page, written_zh / "wrong_relu")


def test_zh_missing_report_and_class_summary_read_in_chinese_in_chromium(written_zh, tmp_path):
    missing = _open(written_zh / "absent1" / "report.html", ARTIFACTS / "zh-missing-report.png",
                    tmp_path / "profile")
    assert "未提交" in missing.visible and "我们没有收到你的" in missing.visible
    summary = _open(written_zh / "index.html", ARTIFACTS / "zh-class-summary.png",
                    tmp_path / "profile")
    for needle in ("全班汇总", "得分分布", "各部分通过率", "各测试通过率", "最常未通过的测试",
                   "按原因统计的失败", "评分最慢的提交", "未提交", "2 名学生"):
        assert needle in summary.visible, needle
    for page in ("absent1/report.html", "index.html"):
        html = (written_zh / page).read_text(encoding="utf-8")
        assert english_leftovers(html, ZH_CLASS_WORDS) == set(), page
    _check_references(summary, written_zh)


def test_the_english_class_is_caught_by_the_leftover_checker(written):
    """The checker is not vacuous: the same pages in English are full of leftovers."""
    html = (written / "wrong_relu" / "report.html").read_text(encoding="utf-8")
    assert {"final", "score", "Hint"} <= english_leftovers(html, ZH_CLASS_WORDS)
