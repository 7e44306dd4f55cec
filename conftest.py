"""Runs before any test is collected: the CPU code paths of the unit tests and of the kernels
nbval starts from this process are pinned (tools.notebook_tools.PINNED_NUMERICS), so the stored
outputs are reproduced on any x86-64 machine.  The browser tests' JupyterLab drops the pins: it
runs the notebooks the way a learner's lab does."""

from tools.notebook_tools import pin_numerics

pin_numerics()
