"""The notebook conventions (README, "Notebook conventions"), checked on every notebook."""

from __future__ import annotations

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
}
MISTRANSLATIONS = ("ép buộc giáo viên", "chuẩn hóa theo lớp")


def _load(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


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
