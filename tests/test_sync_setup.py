"""The setup cell's source and ``python -m tools.notebook_tools sync-setup``, which rewrites
it in notebooks without touching anything else."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tools import notebook_tools
from tools.notebook_tools import COURSE_DIR_VARIABLE, SETUP_TAG, setup_cell_source, sync_setup_cell

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
