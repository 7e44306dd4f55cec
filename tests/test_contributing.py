"""CONTRIBUTING.md stays true: every test its "Adding notebook NN" checklist names exists, the
file count it states is the count of its table, and the one step no other test covers (the
helpers a notebook imports are unit-tested) holds for every notebook."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

from tools.course import BLOCKS, load_course

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TESTS = {path.name: path.read_text(encoding="utf-8") for path in (ROOT / "tests").glob("test_*.py")
         if path.name != Path(__file__).name}

_IMPORT = re.compile(r"^[ \t]*(?:from\s+(helpers(?:\.\w+)*)\s+import\s+(?:\(([\w,\s]+)\)|([\w, \t]+))"
                     r"|import\s+(helpers(?:\.\w+)+))", re.MULTILINE)


def _section(title: str) -> str:
    match = re.search(rf"^##+ {re.escape(title)}\n(.*?)(?=^## |\Z)", GUIDE, flags=re.MULTILINE | re.DOTALL)
    assert match, f"CONTRIBUTING.md has no section {title!r}"
    return match.group(1)


def _steps() -> list[str]:
    checklist = _section("Adding notebook NN").split("### Files a new notebook touches")[0]
    return re.split(r"^\d+\. ", checklist, flags=re.MULTILINE)[1:]


def _test_names(path: str) -> set[str]:
    """``test_x`` and ``TestClass::test_x`` names defined in ``tests/<path>``."""
    tree = ast.parse((ROOT / "tests" / path).read_text(encoding="utf-8"))
    names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names |= {f"{node.name}::{f.name}" for f in node.body if isinstance(f, ast.FunctionDef)}
    return names


def test_the_checklist_has_steps_each_checked_by_a_named_test() -> None:
    steps = _steps()
    assert len(steps) >= 5, "the 'Adding notebook NN' checklist lost its steps"
    for number, step in enumerate(steps, 1):
        assert re.search(r"`tests/test_\w+\.py::", step), f"checklist step {number} names no test that keeps it true"


@pytest.mark.parametrize("reference", sorted(set(re.findall(r"`tests/(test_\w+\.py)::([\w:]+)`", GUIDE))),
                         ids=lambda ref: "::".join(ref))
def test_every_test_the_checklist_names_exists(reference: tuple[str, str]) -> None:
    path, name = reference
    assert (ROOT / "tests" / path).is_file(), f"CONTRIBUTING.md names tests/{path}, which does not exist"
    assert name in _test_names(path), f"CONTRIBUTING.md names tests/{path}::{name}, which does not exist"


def test_the_stated_file_count_is_the_table_of_files() -> None:
    files_section = _section("Adding notebook NN").split("### Files a new notebook touches")[1]
    rows = re.findall(r"^\| `([^`]+)` \|", files_section, flags=re.MULTILINE)
    total = int(re.search(r"\*\*(\d+) files\*\*", files_section).group(1))
    reusing = int(re.search(r"\((\d+) when it reuses existing helpers[^)]*\)", files_section).group(1))
    new_code = [row for row in rows if "<concept>" in row]
    assert total == len(rows) == len(set(rows)), f"CONTRIBUTING.md says {total} files and lists {len(rows)}"
    assert reusing == total - len(new_code)
    generated = {relative for relative, _, _ in BLOCKS}
    assert generated <= set(rows), "every file `python -m tools.course` writes is listed"
    for needed in ("notebooks/NN_name.ipynb", "notebooks/course.toml", "benchmarks/results.json"):
        assert needed in rows


def test_readme_points_to_contributing() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](CONTRIBUTING.md)" in readme
    assert "Notebook conventions" not in readme, "the conventions live in CONTRIBUTING.md only"


def imported_helpers_modules(nb: nbformat.NotebookNode) -> set[str]:
    """The ``helpers`` modules (not names inside them) the code cells of ``nb`` import."""
    modules: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for match in _IMPORT.finditer(cell.source):
            if match.group(4):
                modules.add(match.group(4))
                continue
            base = match.group(1)
            for name in filter(None, re.split(r"[,\s]+", match.group(2) or match.group(3))):
                candidate = f"{base}.{name}"
                modules.add(candidate if importlib.util.find_spec(base) and _is_module(candidate) else base)
    return modules - {"helpers"}


def _is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _tests_importing(module: str) -> list[str]:
    parent, _, leaf = module.rpartition(".")
    patterns = [re.compile(rf"\b{re.escape(module)}\b"),
                re.compile(rf"from\s+{re.escape(parent)}\s+import\s+[^\n]*\b{leaf}\b")]
    return [name for name, text in TESTS.items() if any(p.search(text) for p in patterns)]


def test_the_import_scan_finds_modules_not_names() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from helpers.widgets import drift\nfrom helpers.claims import expect\n"
                                          "import helpers.plots.norms as p\nfrom helpers import setup_notebook\n"
                                          "from helpers.plots import (\n    attention,\n    gpt2,\n)")]
    assert imported_helpers_modules(nb) == {"helpers.widgets.drift", "helpers.claims", "helpers.plots.norms",
                                          "helpers.plots.attention", "helpers.plots.gpt2"}
    assert _tests_importing("helpers.nonesuch") == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_helpers_module_a_notebook_imports_is_tested(path: Path) -> None:
    modules = imported_helpers_modules(nbformat.read(path, as_version=4))
    untested = sorted(m for m in modules if not _tests_importing(m))
    assert not untested, f"{path.name} imports {untested}, which no tests/test_*.py imports: add unit tests"


def test_the_course_table_lists_what_the_checklist_asks_for() -> None:
    fields = {"number", "file", "title", "topic", "lectures", "minutes", "budget_s"}
    step = _steps()[0]
    assert all(name in step or name.replace("_", " ") in step for name in fields - {"budget_s"}) and "budget_s" in step
    assert load_course().notebooks, "the course table lists the notebooks"
