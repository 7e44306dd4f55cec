"""The course package type-checks: mypy over ``helpers`` passes with the settings in ``pyproject.toml``.

The settings ([tool.mypy]) check every function body against the annotations and against
torch's, NumPy's and matplotlib's own types, and flag ``# type: ignore`` comments that are no
longer needed; only ipywidgets and tqdm, which ship no types, are imported unchecked.  mypy is
pinned in ``constraints.txt``, so the check does not change under the tree; ``make typecheck``
runs the same command.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_passes_on_helpers() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"mypy failed (`make typecheck`):\n{result.stdout}{result.stderr}"
