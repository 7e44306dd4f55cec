"""The notebook conventions (README, "Notebook conventions"), checked on every notebook."""

from __future__ import annotations

import configparser
import json
import re
from pathlib import Path

import nbformat
import pytest

from tools.notebook_tools import SETUP_TAG, colab_url, repository_url, setup_cell_source

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
MAX_BYTES = 2 * 1024 * 1024
SLIDE_TYPES = {"slide", "subslide", "fragment", "skip", "notes", "-"}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Absolute paths or user names that must never appear in stored outputs.
LOCAL_PATH = re.compile(r"(/(root|home|Users|tmp|work)/[^\s\"'<>]+)|([A-Za-z]:\\\\Users)")
FORBIDDEN_MIME = {"image/svg+xml", "application/pdf"}
# Claims are checked in short collapsed cells tagged "check" (helpers.claims.expect or assert).
CHECK_TAG = "check"
CHECK_CALL = re.compile(r"^\s*assert\b|\bexpect\(", re.MULTILINE)
MAX_CHECK_LINES = 15
# Students have only the repository: no paths or file names from outside it, and lectures are
# cited by title, not by the number of a file they cannot open.
OUTSIDE_REPO = re.compile(
    r"\.\./shared|MEASUREMENTS\.md|lecture-notes|\b00[0-4]_[0-9a-f]{16}\b|\b[Ll]ectures? `?00[0-4]\b")
# Glossary wording agreed for the whole course: English term -> words its translation must use.
GLOSSARY_WORDING = {
    "skewness": "độ xiên",
    "layer normalization": "chuẩn hóa tầng",
    "layernorm": "chuẩn hóa tầng",
    "batch normalization": "chuẩn hóa theo lô",
    "group normalization": "chuẩn hóa theo nhóm",
    "norm": "chuẩn",
    "regularization": "chính quy hóa",
    "dead relu": "relu chết",
    "covariate shift": "dịch chuyển hiệp biến",
    "normalization": "chuẩn hóa",
    "normal distribution": "phân phối chuẩn",
    "standard deviation": "độ lệch chuẩn",
    "fan-in": "số đầu vào",
}
# "chuẩn" alone is overloaded (norm, normalization, normal distribution, standard deviation):
# every glossary warns about it by naming the one Vietnamese term the course uses for each.
CHUAN_TERMS = ("chuẩn hóa", "phân phối chuẩn", "độ lệch chuẩn")
MISTRANSLATIONS = ("ép buộc giáo viên", "chuẩn hóa theo lớp")
# Outputs nbval compares must be the same on every CPU (AVX2, AVX-512, ARM), each with its own
# code paths.  A cell whose output cannot be (package versions, whether the hub is reachable) is
# tagged "nbval-ignore-output" and says why in its metadata; such cells stay few.
IGNORE_TAG = "nbval-ignore-output"
IGNORE_REASON = "nbval_ignore_reason"
NBVAL_MARKERS = ("NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP", "NBVAL_CHECK_OUTPUT", "NBVAL_RAISES_EXCEPTION")
MAX_IGNORED_CELLS = 3
SANITIZE_CFG = Path(__file__).resolve().parent / "sanitize.cfg"
MAX_SANITIZERS = 4
# A float as Python, NumPy or torch prints it, optionally wrapped (np.float64(...), tensor(...)).
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
WRAPPED_NUMBER = re.compile(r"(?:np\.float(?:16|32|64)|np\.int(?:8|16|32|64)|tensor)\((.*)\)", re.DOTALL)
# A float's full repr (the shortest digits that round-trip) has up to 17 significant digits;
# float32 values have up to 9.  A printed number is rounded to what is stable on every CPU.
MAX_RESULT_DIGITS = 6
MAX_PRINTED_DIGITS = 10


def _load(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


def significant_digits(number: str) -> int:
    """How many significant digits a printed number shows (``'0.0012'`` -> 2, ``'1.50'`` -> 3)."""
    mantissa = re.split(r"[eE]", number.lstrip("+-"))[0]
    digits = mantissa.replace(".", "").lstrip("0")
    if "." not in mantissa:
        digits = digits.rstrip("0") or digits  # trailing zeros of an integer are not precision
    return len(digits)


def bare_float_result(text: str) -> str | None:
    """``text`` (an execute_result's text/plain) when it is nothing but a float with more than
    :data:`MAX_RESULT_DIGITS` significant digits (possibly wrapped as NumPy or torch print it),
    else ``None``: that is a raw repr of a computed value, whose last digits depend on the CPU."""
    stripped = text.strip()
    wrapped = WRAPPED_NUMBER.fullmatch(stripped)
    if wrapped is not None:
        stripped = wrapped.group(1).split(",")[0].strip()
    if NUMBER.fullmatch(stripped) and not re.fullmatch(r"[-+]?\d+", stripped):
        return stripped if significant_digits(stripped) > MAX_RESULT_DIGITS else None
    return None


def long_printed_floats(text: str) -> list[str]:
    """The numbers in ``text`` with a decimal point and more than :data:`MAX_PRINTED_DIGITS`
    significant digits: full float reprs, printed without rounding."""
    return [m for m in re.findall(r"(?<![\w.])[-+]?\d*\.\d+(?:[eE][-+]?\d+)?", text)
            if significant_digits(m) > MAX_PRINTED_DIGITS]


def test_significant_digits_and_float_detection() -> None:
    assert [significant_digits(x) for x in ("0.0012", "1.50", "1e-06", "-3.25e+04", "1200", "0.4944149119436982")] \
        == [2, 3, 1, 3, 2, 16]
    assert bare_float_result("0.4944149119436982") == "0.4944149119436982"
    assert bare_float_result("np.float64(1.4786006191596008)") == "1.4786006191596008"
    assert bare_float_result("tensor(0.1235)") is None  # torch rounds to 4 decimals
    assert bare_float_result("1.0") is None and bare_float_result("42") is None
    assert bare_float_result("0.123457") is None and bare_float_result("3.340692731764253e-13") is not None
    assert bare_float_result("<Figure size 700x360 with 1 Axes>") is None
    assert long_printed_floats("loss 2.3025850929940455, lr 0.001, step 12345678901") == ["2.3025850929940455"]
    assert long_printed_floats("median 0.49 (range 0.41–0.55, 5 seeds)") == []


def test_there_are_notebooks() -> None:
    assert (NOTEBOOKS_DIR / "00_start_here.ipynb") in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
class TestNotebook:
    def test_file_name(self, path: Path) -> None:
        assert re.fullmatch(r"\d\d_[a-z0-9]+(_[a-z0-9]+)*\.ipynb", path.name), (
            f"{path.name}: use NN_snake_case.ipynb"
        )

    def test_size(self, path: Path) -> None:
        assert path.stat().st_size < MAX_BYTES, f"{path.name} is over 2 MB"

    def test_valid_and_python3_kernel(self, path: Path) -> None:
        nb = _load(path)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3"

    def test_header_cell(self, path: Path) -> None:
        first = _load(path).cells[0]
        assert first.cell_type == "markdown"
        text = first.source
        assert re.match(r"# \S", text), "the first cell starts with an H1 title"
        for needed in ("Learning objectives", "Prerequisites", "Lecture", "Time"):
            assert needed in text, f"the header cell must state: {needed}"
        assert "colab-badge.svg" in text, "the header cell carries an Open in Colab badge"
        assert f"({colab_url(path.name)})" in text, "the Colab badge must point at this notebook"

    def test_setup_cell(self, path: Path) -> None:
        setup = [c for c in _code_cells(_load(path)) if SETUP_TAG in c.metadata.get("tags", [])]
        assert len(setup) == 1, "exactly one code cell is tagged 'setup'"
        assert setup[0].source == setup_cell_source(), (
            "the setup cell differs from tools.notebook_tools.setup_cell_source()"
        )
        assert repository_url() in setup[0].source

    def test_teaching_sections(self, path: Path) -> None:
        text = "\n".join(c.source for c in _load(path).cells if c.cell_type == "markdown")
        assert "Key takeaways" in text
        assert "Glossary" in text and "Tiếng Việt" in text
        if not path.name.startswith("00_"):
            assert "<details>" in text, "exercises with hidden solutions use <details>"
            assert "Predict" in text or "predict" in text, "include predict-then-run prompts"

    def test_executed_in_order(self, path: Path) -> None:
        counts = [c.execution_count for c in _code_cells(_load(path))]
        assert counts == list(range(1, len(counts) + 1)), "re-run the notebook top to bottom"

    def test_outputs_clean(self, path: Path) -> None:
        for cell in _code_cells(_load(path)):
            for output in cell.outputs:
                assert output.output_type != "error", f"error output in cell:\n{cell.source}"
                data = output.get("data", {})
                assert not FORBIDDEN_MIME & set(data), "figures must be PNG only"
                text = json.dumps(output)
                match = LOCAL_PATH.search(text)
                assert match is None, f"local path {match.group(0) if match else ''!r} in an output"

    def test_has_figures_and_asserts(self, path: Path) -> None:
        nb = _load(path)
        images = [
            o for c in _code_cells(nb) for o in c.outputs if "image/png" in o.get("data", {})
        ]
        assert images, "the notebook shows at least one PNG figure"
        assert any(CHECK_CALL.search(c.source) for c in _code_cells(nb)), "claims are checked"

    def test_slide_metadata(self, path: Path) -> None:
        nb = _load(path)
        # RISE: a slide taller than the screen (a panel with its readout) scrolls, not clips.
        assert nb.metadata.get("rise", {}).get("scroll") is True
        for cell in nb.cells:
            slide_type = cell.metadata.get("slideshow", {}).get("slide_type")
            assert slide_type in SLIDE_TYPES, f"cell without slide metadata:\n{cell.source[:80]}"

    def test_live_panels_lead_their_slide(self, path: Path) -> None:
        """In a slideshow, a live panel is seen without scrolling: it opens a slide or
        subslide, after at most one line of markdown, with no other figure above it."""
        before: list[nbformat.NotebookNode] = []  # cells already on the current (sub)slide
        for cell in _load(path).cells:
            if cell.metadata["slideshow"]["slide_type"] in {"slide", "subslide"}:
                before = []
            outputs = cell.get("outputs", [])
            if any(WIDGET_VIEW in o.get("data", {}) for o in outputs):
                shown = [c for c in before if c.metadata["slideshow"]["slide_type"] != "skip"]
                assert len(shown) <= 1 and all(c.cell_type == "markdown" for c in shown), (
                    f"the live panel `{cell.source[:40]}` shares its slide with "
                    f"{[c.source[:40] for c in shown]}: give it a subslide of its own")
            before.append(cell)

    def test_claims_are_checked_in_collapsed_check_cells(self, path: Path) -> None:
        """Teaching cells show the idea; each claim is checked in a short collapsed cell below."""
        for cell in _code_cells(_load(path)):
            tags = cell.metadata.get("tags", [])
            has_check = CHECK_CALL.search(cell.source) is not None
            if has_check or CHECK_TAG in tags:
                where = f"cell:\n{cell.source[:120]}"
                assert has_check, f"a cell tagged {CHECK_TAG!r} must check something, {where}"
                assert CHECK_TAG in tags, f"assert/expect belongs in a cell tagged {CHECK_TAG!r}, {where}"
                assert cell.metadata.get("jupyter", {}).get("source_hidden") is True, (
                    f"check cells are collapsed (metadata jupyter.source_hidden), {where}")
                assert len(cell.source.splitlines()) <= MAX_CHECK_LINES, f"check cell too long, {where}"

    def test_names_nothing_outside_the_repository(self, path: Path) -> None:
        for cell in _load(path).cells:
            texts = [cell.source] + [json.dumps(o, ensure_ascii=False) for o in cell.get("outputs", [])]
            for text in texts:
                match = OUTSIDE_REPO.search(text)
                assert match is None, (
                    f"{match.group(0) if match else ''!r} names a file students do not have; "
                    f"cite the lecture by its title:\n{cell.source[:120]}")

    def test_glossary_wording(self, path: Path) -> None:
        text = "\n".join(c.source for c in _load(path).cells if c.cell_type == "markdown")
        for wrong in MISTRANSLATIONS:
            assert wrong not in text.lower(), f"glossary: {wrong!r} is a mistranslation"
        glossary = text[text.find("Glossary"):]
        for row in re.findall(r"^\|([^|\n]+)\|([^|\n]+)\|", glossary, flags=re.MULTILINE):
            english, vietnamese = (cell.strip().strip("*").lower() for cell in row)
            needed = GLOSSARY_WORDING.get(re.sub(r"\s*\(.*\)$", "", english))
            if needed is not None:
                assert needed in vietnamese, f"glossary: translate {english!r} with {needed!r}"
        missing = [term for term in CHUAN_TERMS if term not in glossary.lower()]
        assert not missing, f"glossary: the note on the overloaded 'chuẩn' names {missing}"

    def test_ignored_outputs_are_few_and_explained(self, path: Path) -> None:
        """nbval compares every stored output, on every CPU with its own code paths; a cell whose
        output cannot be the same everywhere is tagged, with its reason in the cell's metadata."""
        ignored = []
        for cell in _code_cells(_load(path)):
            where = f"cell:\n{cell.source[:120]}"
            tags = cell.metadata.get("tags", [])
            markers = [m for m in NBVAL_MARKERS if m in cell.source]
            assert not markers, f"{markers}: use the tag {IGNORE_TAG!r} with a reason, {where}"
            nbval_tags = [t for t in tags if t.startswith("nbval") and t != IGNORE_TAG]
            assert not nbval_tags, f"{nbval_tags}: every cell runs and is compared (or tagged {IGNORE_TAG!r}), {where}"
            if IGNORE_TAG in tags:
                reason = cell.metadata.get(IGNORE_REASON)
                assert isinstance(reason, str) and reason.strip(), (
                    f"a cell tagged {IGNORE_TAG!r} says why in metadata {IGNORE_REASON!r}, {where}")
                ignored.append(cell)
            else:
                assert IGNORE_REASON not in cell.metadata, f"{IGNORE_REASON!r} without the tag {IGNORE_TAG!r}, {where}"
        assert len(ignored) <= MAX_IGNORED_CELLS, (
            f"{len(ignored)} cells tagged {IGNORE_TAG!r} (at most {MAX_IGNORED_CELLS}): print rounded numbers "
            f"instead; the reasons given: {[c.metadata[IGNORE_REASON] for c in ignored]}")

    def test_no_bare_float_is_a_cells_result(self, path: Path) -> None:
        """A computed float shown as a cell's result prints all its digits, whose last ones
        depend on the CPU: write ``_ = expect(...)`` (or end the line with ``;``), or print it rounded."""
        for cell in _code_cells(_load(path)):
            for output in cell.outputs:
                if output.output_type == "execute_result":
                    shown = bare_float_result(output.get("data", {}).get("text/plain", ""))
                    assert shown is None, f"the cell's result is the raw float {shown}:\n{cell.source[-200:]}"

    def test_printed_numbers_are_rounded(self, path: Path) -> None:
        """A number printed with all the digits of its float repr cannot match on another CPU."""
        for cell in _code_cells(_load(path)):
            if IGNORE_TAG in cell.metadata.get("tags", []):
                continue
            for output in cell.outputs:
                text = output.get("text", "") + output.get("data", {}).get("text/plain", "")
                found = long_printed_floats(text)
                assert not found, f"unrounded numbers {found} printed by cell:\n{cell.source[:200]}"

    def test_no_widget_state_stored(self, path: Path) -> None:
        assert "widgets" not in _load(path).metadata, "run `make notebooks` to strip widget state"


def test_new_course_notebook_applies_the_conventions() -> None:
    from tools.notebook_tools import colab_badge, new_course_notebook

    nb = new_course_notebook("99_demo.ipynb", [
        ("md", "# 99 · Demo\n\n{badge}", {}),
        ("code", "{setup}", {}),
        ("md", "## 1. A section", {}),
        ("code", "x = 1", {}),
        ("code", "panel", {"slideshow": {"slide_type": "subslide"}}),
    ])
    assert colab_badge("99_demo.ipynb") in nb.cells[0].source
    assert nb.cells[1].source == setup_cell_source() and SETUP_TAG in nb.cells[1].metadata.tags
    kinds = [c.metadata.slideshow.slide_type for c in nb.cells]
    assert kinds == ["slide", "skip", "slide", "-", "subslide"]
    assert nb.metadata.rise == {"scroll": True}
    with pytest.raises(ValueError, match="kind must be 'md' or 'code'"):
        new_course_notebook("99_demo.ipynb", [("raw", "x", {})])


def sanitizers() -> list[tuple[str, list[str], dict[str, str]]]:
    """The sections of tests/sanitize.cfg: name, the comment lines just above it, its keys."""
    sections: list[tuple[str, list[str], dict[str, str]]] = []
    comments: list[str] = []
    for line in SANITIZE_CFG.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comments.append(stripped.lstrip("#").strip())
        elif stripped.startswith("["):
            sections.append((stripped.strip("[]"), comments, {}))
            comments = []
        elif not stripped:
            comments = [] if not sections or sections[-1][2] else comments
    parser = configparser.ConfigParser()
    parser.read(SANITIZE_CFG, encoding="utf-8")
    return [(name, above, dict(parser[name])) for name, above, _ in sections]


def test_sanitizers_are_few_and_each_says_why() -> None:
    """nbval's sanitizers rewrite outputs before comparing them: each may hide only text that
    is volatile by nature (never a result), and says which and why in a comment above it."""
    found = sanitizers()
    assert 0 < len(found) <= MAX_SANITIZERS, f"{len(found)} sanitizers (at most {MAX_SANITIZERS})"
    for name, comments, keys in found:
        assert set(keys) == {"regex", "replace"}, f"[{name}]: a sanitizer is one regex and its replacement"
        re.compile(keys["regex"])
        assert any(len(line.split()) >= 4 for line in comments), (
            f"[{name}]: say in a comment just above it why this text is volatile")
        assert not re.fullmatch(r"[\\d.+\-eE\[\]*?()|]+", keys["regex"]), (
            f"[{name}]: {keys['regex']!r} would hide numbers, i.e. results")
