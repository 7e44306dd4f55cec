"""The notebook conventions (README, "Notebook conventions"), checked on every notebook."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from helpers.notebook_tools import SETUP_TAG, colab_url, repository_url, setup_cell_source

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
MAX_BYTES = 2 * 1024 * 1024
SLIDE_TYPES = {"slide", "subslide", "fragment", "skip", "notes", "-"}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Absolute paths or user names that must never appear in stored outputs.
LOCAL_PATH = re.compile(r"(/(root|home|Users|tmp|work)/[^\s\"'<>]+)|([A-Za-z]:\\\\Users)")
FORBIDDEN_MIME = {"image/svg+xml", "application/pdf"}


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
            "the setup cell differs from helpers.notebook_tools.setup_cell_source()"
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
        assert any("assert " in c.source for c in _code_cells(nb)), "claims are asserted"

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

    def test_no_widget_state_stored(self, path: Path) -> None:
        assert "widgets" not in _load(path).metadata, "run `make notebooks` to strip widget state"


def test_new_course_notebook_applies_the_conventions() -> None:
    from helpers.notebook_tools import colab_badge, new_course_notebook

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
