"""The pinned CPU code paths (tools.notebook_tools.PINNED_NUMERICS): set for this test process by
the repository's conftest.py (so also for nbval's kernels), used by ``make notebooks``, and in
effect in torch."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import torch

from tools import notebook_tools
from tools.notebook_tools import PINNED_NUMERICS, pin_numerics

PROBE = "import os, torch\nprint({k: os.environ.get(k) for k in %r}, torch.backends.cpu.get_cpu_capability())"


def test_pin_numerics_sets_what_is_missing_and_keeps_what_is_set() -> None:
    environ = {"MKL_CBWR": "AVX2", "PATH": "/bin"}
    pin_numerics(environ)
    assert environ == {**PINNED_NUMERICS, "MKL_CBWR": "AVX2", "PATH": "/bin"}


def test_this_process_runs_pinned() -> None:
    """conftest.py pinned the environment before torch was imported here: torch runs its
    kernels without vector instructions, whatever this CPU offers."""
    assert {k: os.environ.get(k) for k in PINNED_NUMERICS} == PINNED_NUMERICS
    assert torch.backends.cpu.get_cpu_capability() == "DEFAULT"


def test_make_notebooks_runs_kernels_pinned(tmp_path: Path, monkeypatch) -> None:
    """``execute`` (make notebooks) pins the kernel even when its caller's environment is not."""
    for name in PINNED_NUMERICS:
        monkeypatch.delenv(name)
    path = tmp_path / "probe.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROBE % sorted(PINNED_NUMERICS))]), path)
    notebook_tools.execute(path)
    printed = nbformat.read(path, as_version=4).cells[0].outputs[0]["text"].strip()
    assert printed == f"{dict(sorted(PINNED_NUMERICS.items()))} DEFAULT"
