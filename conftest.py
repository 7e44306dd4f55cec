"""Runs before any test is collected: the CPU code paths of the notebooks' kernels (started by
nbval and by the browser tests from this process) and of the unit tests themselves are pinned,
so the stored outputs are reproduced on any x86-64 machine (tools.notebook_tools.PINNED_NUMERICS)."""

from tools.notebook_tools import pin_numerics

pin_numerics()
