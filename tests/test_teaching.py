"""The instructor guide TEACHING.md covers every notebook and the ways to serve the course."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "TEACHING.md"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def guide() -> str:
    assert GUIDE.is_file(), "TEACHING.md is missing at the repository root"
    return GUIDE.read_text(encoding="utf-8")


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_is_covered(guide: str, notebook: Path) -> None:
    number = notebook.name[:2]
    assert notebook.name in guide, f"TEACHING.md does not mention {notebook.name}"
    heading = re.compile(rf"^#+ {number} · \S", re.MULTILINE)
    assert heading.search(guide), f"TEACHING.md has no section headed '{number} · ...' for {notebook.name}"


def test_notebook_sections_are_in_order(guide: str) -> None:
    numbers = re.findall(r"^### (\d\d) · ", guide, flags=re.MULTILINE)
    assert numbers == sorted(numbers) and len(numbers) == len(set(numbers))


@pytest.mark.parametrize("term", ["make slides", "make html", "JupyterHub", "Binder"])
def test_mentions_how_to_present_and_serve(guide: str, term: str) -> None:
    assert term in guide, f"TEACHING.md does not mention {term!r}"


@pytest.mark.parametrize("target", ["html", "slides", "lab", "bench"])
def test_make_targets_it_names_exist(guide: str, target: str) -> None:
    if f"make {target}" in guide:
        assert re.search(rf"^{target}:", (ROOT / "Makefile").read_text(), re.MULTILINE)


@pytest.mark.parametrize("path", [
    "benchmarks/RESULTS.md", ".binder/environment.yml", ".binder/postBuild", "environment.yml",
    "requirements.txt", "constraints.txt", "data/README.md",
])
def test_files_it_refers_to_exist(guide: str, path: str) -> None:
    if f"`{path}`" in guide:
        assert (ROOT / path).exists(), f"TEACHING.md refers to {path}, which does not exist"
