"""The notebooks run with the machine's own CPU code paths: ``make notebooks`` (tools.notebook_tools
``execute``) starts its kernels with the caller's environment, adding no variable that would
choose torch's, MKL's or oneDNN's kernels, so a stored output is what a learner's lab computes on
that machine (the outputs nbval compares are written so that they do not depend on it), and a
choice the caller makes (``make test-other-numerics``) reaches the kernel unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from tools import notebook_tools

#: Environment variables that choose the CPU kernels of torch, MKL and oneDNN.
NUMERICS_VARIABLES = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA",
                      "DNNL_MAX_CPU_ISA")
PROBE = ("import json, os, torch\n"
         "print(json.dumps([{k: os.environ.get(k) for k in %r}, torch.backends.cpu.get_cpu_capability()]))")


def test_make_notebooks_adds_no_numerics_choice_and_passes_the_callers_on(tmp_path: Path, monkeypatch) -> None:
    """One kernel (they are slow to start): the caller chose torch's kernels without vector
    instructions and nothing else; the kernel sees exactly that, and torch there obeys it."""
    for name in NUMERICS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    path = tmp_path / "probe.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROBE % (NUMERICS_VARIABLES,))]), path)
    notebook_tools.execute(path)
    variables, capability = json.loads(nbformat.read(path, as_version=4).cells[0].outputs[0]["text"])
    assert variables == {**dict.fromkeys(NUMERICS_VARIABLES), "ATEN_CPU_CAPABILITY": "default"}
    assert capability == "DEFAULT"
