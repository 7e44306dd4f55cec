"""The setup cell's source and ``python -m tools.notebook_tools sync-setup``, which rewrites
it and the Colab badges (the places a notebook names the course repository) in notebooks
without touching anything else."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tools import notebook_tools
from tools.notebook_tools import (
    COURSE_DIR_VARIABLE,
    SETUP_TAG,
    clone_command,
    colab_url,
    repository_url,
    setup_cell_source,
    sync_setup_cell,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "00_start_here.ipynb"


def _setup_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if SETUP_TAG in c["metadata"].get("tags", [])]


@pytest.fixture
def stale(tmp_path: Path) -> Path:
    """A copy of a course notebook whose setup cell holds an older source."""
    path = tmp_path / NOTEBOOK.name
    shutil.copy(NOTEBOOK, path)
    nb = json.loads(path.read_text(encoding="utf-8"))
    _setup_cells(nb)[0]["source"] = ["import helpers\n", "pip install everything"]
    path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def test_setup_cell_runs_the_stdlib_script_on_colab_only() -> None:
    source = setup_cell_source()
    compile(source, "setup", "exec")
    assert 'if "google.colab" in sys.modules:' in source
    assert '"tools", "colab_setup.py"' in source and '["install_missing"](course)' in source
    assert COURSE_DIR_VARIABLE in source and '"/content/course"' in source
    assert "pip" not in source, "installing is the script's job: it upgrades nothing"
    assert (ROOT / "tools" / "colab_setup.py").is_file()


#: The instructor edition's setup cell as the notebooks store it: the clone takes the default branch.
INSTRUCTOR_CLONE = ["git", "clone", "-q", "--depth=1", "url", "course"]


def test_the_instructor_setup_cell_clones_the_default_branch_and_the_student_one_its_tag() -> None:
    instructor, student = setup_cell_source(), setup_cell_source(ref="v1.2.0-student")
    assert clone_command(instructor) == (INSTRUCTOR_CLONE, repository_url())
    assert clone_command(student) == (
        ["git", "clone", "-q", "--depth=1", "--branch", "v1.2.0-student", "url", "course"], repository_url())
    compile(student, "setup", "exec")
    differ = [(a, b) for a, b in zip(instructor.splitlines(), student.splitlines(), strict=True) if a != b]
    assert len(differ) == 1 and "git" in differ[0][0], "the ref changes the clone line only"
    fork = setup_cell_source(url="https://github.com/someone/fork")
    assert clone_command(fork) == (INSTRUCTOR_CLONE, "https://github.com/someone/fork")
    with pytest.raises(ValueError, match="0 git clone commands and 1 url"):
        clone_command('url = "x"')
    for bad in ("../main", 'x", "--upload-pack=evil', ""):
        with pytest.raises(ValueError, match="ref must be a git branch or tag name"):
            setup_cell_source(ref=bad)


def test_the_course_notebooks_store_the_instructor_setup_cell() -> None:
    """The template's ref slot is empty for the instructor edition: the stored cells are current."""
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        setup = _setup_cells(json.loads(path.read_text(encoding="utf-8")))
        assert len(setup) == 1 and "".join(setup[0]["source"]) == setup_cell_source(), path.name


def test_colab_url_names_the_ref_and_the_repository() -> None:
    path = repository_url().removeprefix("https://github.com/")
    assert colab_url("01_x.ipynb") == f"https://colab.research.google.com/github/{path}/blob/main/notebooks/01_x.ipynb"
    assert colab_url("01_x.ipynb", "v1-student", "https://github.com/someone/fork") == \
        "https://colab.research.google.com/github/someone/fork/blob/v1-student/notebooks/01_x.ipynb"


def test_a_fork_changes_the_repository_address_in_pyproject_and_sync_setup_follows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a fork does (TEACHING.md): a new [project.urls] Repository, then sync-setup rewrites
    the setup cell's clone and the Colab badges, and nothing else of the notebook."""
    fork = "https://github.com/someone/init-norm-fork"
    path = tmp_path / NOTEBOOK.name
    shutil.copy(NOTEBOOK, path)
    before = json.loads(path.read_text(encoding="utf-8"))
    monkeypatch.setattr(notebook_tools, "repository_url", lambda: fork)
    assert sync_setup_cell(path) is True
    after = json.loads(path.read_text(encoding="utf-8"))
    assert clone_command("".join(_setup_cells(after)[0]["source"])) == (INSTRUCTOR_CLONE, fork)
    badge = f"({colab_url(NOTEBOOK.name)})"
    assert badge.startswith("(https://colab.research.google.com/github/someone/init-norm-fork/blob/main/")
    assert badge in "".join(after["cells"][0]["source"])
    changed = [i for i, (a, b) in enumerate(zip(before["cells"], after["cells"], strict=True)) if a != b]
    assert changed == sorted({0, before["cells"].index(_setup_cells(before)[0])}), changed
    for a, b in zip(before["cells"], after["cells"], strict=True):
        assert {**a, "source": None} == {**b, "source": None}, "only sources change"
    assert {k: v for k, v in before.items() if k != "cells"} == {k: v for k, v in after.items() if k != "cells"}
    assert sync_setup_cell(path) is False, "a second run changes nothing"


def test_sync_rewrites_only_the_setup_cell(stale: Path) -> None:
    before = json.loads(stale.read_text(encoding="utf-8"))
    assert sync_setup_cell(stale) is True
    after = json.loads(stale.read_text(encoding="utf-8"))
    assert "".join(_setup_cells(after)[0]["source"]) == setup_cell_source()
    _setup_cells(before)[0]["source"] = _setup_cells(after)[0]["source"]
    assert after == before, "nothing but the setup cell's source changes"
    text = stale.read_text(encoding="utf-8")
    assert sync_setup_cell(stale) is False, "a second run changes nothing"
    assert stale.read_text(encoding="utf-8") == text


def test_sync_keeps_an_unchanged_file_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    shutil.copy(NOTEBOOK, path)
    nb = json.loads(path.read_text(encoding="utf-8"))
    _setup_cells(nb)[0]["source"] = setup_cell_source().splitlines(keepends=True)
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")
    assert sync_setup_cell(path) is False
    assert path.read_text(encoding="utf-8") == text


def test_sync_refuses_other_layouts_and_setup_counts(stale: Path) -> None:
    nb = json.loads(stale.read_text(encoding="utf-8"))
    stale.write_text(json.dumps(nb, indent=2), encoding="utf-8")
    with pytest.raises(ValueError, match="not stored in nbformat's layout"):
        sync_setup_cell(stale)
    for cell in _setup_cells(nb):
        cell["metadata"]["tags"].remove(SETUP_TAG)
    stale.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="0 code cells tagged 'setup'"):
        sync_setup_cell(stale)
    with pytest.raises(TypeError, match="path must be a path"):
        sync_setup_cell(3)  # type: ignore[arg-type]


def test_sync_setup_command(stale: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert notebook_tools.main(["sync-setup", str(stale)]) == 0
    assert notebook_tools.main(["sync-setup", str(stale)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"updated: {stale}", f"already current: {stale}"]
