"""The instructor guide TEACHING.md covers every notebook and the ways to serve the course."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "TEACHING.md"


@pytest.fixture(scope="module")
def guide() -> str:
    assert GUIDE.is_file(), "TEACHING.md is missing at the repository root"
    return GUIDE.read_text(encoding="utf-8")


# Its notebook sections (one "### NN · <title>" heading per notebook of notebooks/course.toml,
# in order) and its generated tables: tests/test_course.py.


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
