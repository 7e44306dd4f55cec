"""helpers.handouts: offline HTML handouts and slide decks from executed notebooks."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from helpers.handouts import VENDOR_PACKAGES, export, title_of

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "00_start_here.ipynb"
# A script or stylesheet fetched from the network would break the page offline.  (The
# template's mermaid loader is only reached when a notebook contains a mermaid diagram.)
REMOTE_ASSET = re.compile(r"""(<script[^>]*src=|<link[^>]*href=|widgetRendererSrc = )["']https?://""")


@pytest.mark.parametrize("kind", ["html", "slides"])
def test_export_is_self_contained(kind: str, tmp_path: Path) -> None:
    vendor_dir = tmp_path / "vendor"
    vendor_dir.mkdir()
    pages = export(kind, [NOTEBOOK], tmp_path / kind, vendor_dir)
    page, index = pages
    text = page.read_text(encoding="utf-8")
    assert "data:image/png;base64," in text, "figures are embedded in the page"
    assert not REMOTE_ASSET.search(text), "every script and stylesheet is loaded locally"
    assert "../vendor/requirejs/require.js" in text
    if kind == "slides":
        assert "../vendor/reveal.js/dist/reveal.js" in text
    assert page.name in index.read_text() and title_of(nbformat.read(NOTEBOOK, 4)) in index.read_text()


def test_title_of_reads_the_h1() -> None:
    assert title_of(nbformat.read(NOTEBOOK, 4)).startswith("00 · Start here")
    assert title_of(nbformat.v4.new_notebook()) == "Untitled"


def test_bad_kind_and_layout(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"kind must be one of \('html', 'slides'\)"):
        export("pdf", [NOTEBOOK], tmp_path / "pdf", tmp_path / "vendor")
    with pytest.raises(ValueError, match="must share a parent folder"):
        export("html", [NOTEBOOK], tmp_path / "a" / "html", tmp_path / "vendor")


def test_vendored_packages_are_pinned() -> None:
    assert all("@" in spec.lstrip("@") for spec in VENDOR_PACKAGES.values())
