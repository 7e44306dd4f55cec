"""The tree passes ruff with the rules in ``pyproject.toml`` ([tool.ruff]), notebooks included.

Ruff is pinned in ``constraints.txt``, so the rules do not change under the tree; ``make lint``
runs the same check and ``make lint-fix`` applies ruff's safe fixes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True,
                          check=False)


def test_ruff_checks_every_python_file_and_notebook() -> None:
    """No committed code escapes the lint: every tracked ``.py`` and ``.ipynb`` is checked."""
    tracked = subprocess.run(["git", "ls-files", "*.py", "*.ipynb"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    listing = _ruff("check", "--show-files", ".")
    assert listing.returncode == 0, listing.stderr
    checked = {Path(line).resolve().relative_to(ROOT).as_posix() for line in listing.stdout.splitlines()}
    missing = sorted(set(tracked) - checked)
    assert tracked and not missing, f"ruff does not check {missing}"


def test_ruff_check_passes() -> None:
    result = _ruff("check", "--no-cache", "--output-format", "concise", ".")
    assert result.returncode == 0, f"ruff check failed (`make lint-fix` fixes what it safely can):\n{result.stdout}"
