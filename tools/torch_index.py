"""Which package index pip takes PyTorch from (``make install``; README, "Install").

On Linux, the ``torch`` wheel on PyPI is the CUDA build: with the NVIDIA libraries it pulls in,
about 2.5 GB on disk, of no use on a machine without an NVIDIA GPU (and not what the course's
timings were measured with).  PyTorch publishes the CPU build on its own index,
https://download.pytorch.org/whl/cpu, as ``torch==X.Y.Z+cpu``; given that index as an *extra*
index, pip prefers ``X.Y.Z+cpu`` to PyPI's ``X.Y.Z`` (a local version sorts after the plain
one, and ``torch==X.Y.Z`` admits both), and when the index cannot be reached pip goes on with
PyPI (and any local wheels it is configured with), so the install never depends on that index.

What :func:`choose` decides, in order:

1. ``TORCH_INDEX`` (the environment variable, or ``make install TORCH_INDEX=...``), when set:
   ``cpu`` — the CPU index; ``pypi`` — PyPI alone (on Linux the CUDA build: the GPU path);
   a PyTorch variant such as ``cu128`` or ``rocm6.4`` — https://download.pytorch.org/whl/<variant>;
   an ``http(s)://`` or ``file://`` address — that index.  Anything else is an error.
2. Linux without an NVIDIA GPU (no ``nvidia-smi`` on ``PATH`` and no ``/proc/driver/nvidia``):
   the CPU index.
3. Otherwise PyPI alone: Linux with an NVIDIA GPU gets the CUDA build, macOS and Windows get
   PyPI's wheels, which are CPU builds there (Apple's MPS included on macOS).

From the command line it prints the pip options, nothing when PyPI alone is chosen::

    python tools/torch_index.py            # e.g. --extra-index-url https://download.pytorch.org/whl/cpu
    python tools/torch_index.py --explain  # the same, and on stderr why

Standard library only, Python 3.10+: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: PyTorch's own wheel indexes, one per build variant (``cpu``, ``cu128``, ``rocm6.4``, ...).
PYTORCH_INDEX = "https://download.pytorch.org/whl"
CPU_INDEX = f"{PYTORCH_INDEX}/cpu"
#: The variable that overrides the automatic choice.
OVERRIDE_VARIABLE = "TORCH_INDEX"
#: Present while the NVIDIA kernel driver is loaded.
NVIDIA_PROC = Path("/proc/driver/nvidia")
_VARIANT = re.compile(r"(cpu|cu\d{3,4}|rocm\d+(\.\d+)*|xpu)")


@dataclass(frozen=True)
class IndexChoice:
    """The extra index to give pip (``None``: PyPI alone) and the reason, for people."""

    url: str | None
    reason: str

    def pip_args(self) -> list[str]:
        """The pip options that select this index."""
        return [] if self.url is None else ["--extra-index-url", self.url]


def has_nvidia_gpu(which: Callable[[str], str | None] | None = None, proc: Path | None = None) -> bool:
    """Whether this machine has an NVIDIA GPU with its driver: ``nvidia-smi`` on ``PATH`` (found
    by ``which``, default :func:`shutil.which`) or the driver's ``/proc`` entry (``proc``,
    default :data:`NVIDIA_PROC`)."""
    which = shutil.which if which is None else which
    proc = NVIDIA_PROC if proc is None else proc
    return which("nvidia-smi") is not None or proc.exists()


def _from_override(value: str) -> IndexChoice:
    value = value.strip()
    if value.lower() == "pypi":
        return IndexChoice(None, f"{OVERRIDE_VARIABLE}=pypi: PyPI's torch (on Linux the CUDA build)")
    if value.startswith(("http://", "https://", "file://")):
        return IndexChoice(value.rstrip("/"), f"{OVERRIDE_VARIABLE} names the index {value}")
    if _VARIANT.fullmatch(value.lower()):
        return IndexChoice(f"{PYTORCH_INDEX}/{value.lower()}",
                           f"{OVERRIDE_VARIABLE}={value}: PyTorch's {value.lower()} build")
    raise ValueError(
        f"{OVERRIDE_VARIABLE}={value!r} is not understood: use 'cpu', 'pypi' (on Linux the CUDA build), "
        "a PyTorch variant such as 'cu128', or an index address (https://... or file://...)")


def choose(system: str, gpu: bool, override: str | None = None) -> IndexChoice:
    """The index for ``system`` (``platform.system()``: ``Linux``, ``Darwin``, ``Windows``) on a
    machine with (``gpu``) or without an NVIDIA GPU; ``override`` is ``TORCH_INDEX``'s value
    (``None`` or empty: choose automatically).

    Raises:
        TypeError: if ``system`` is not a string or ``gpu`` not a bool.
        ValueError: if ``override`` is not one of the forms the module docstring lists.
    """
    if not isinstance(system, str):
        raise TypeError(f"system must be a str such as 'Linux', got {type(system).__name__}")
    if not isinstance(gpu, bool):
        raise TypeError(f"gpu must be a bool, got {type(gpu).__name__}")
    if override is not None and not isinstance(override, str):
        raise TypeError(f"override must be a str or None, got {type(override).__name__}")
    if override and override.strip():
        return _from_override(override)
    if system == "Linux" and not gpu:
        return IndexChoice(CPU_INDEX, "Linux without an NVIDIA GPU: PyTorch's CPU build "
                                      f"(the GPU build: {OVERRIDE_VARIABLE}=pypi)")
    if system == "Linux":
        return IndexChoice(None, "Linux with an NVIDIA GPU: PyPI's torch, the CUDA build "
                                 f"(the CPU build: {OVERRIDE_VARIABLE}=cpu)")
    return IndexChoice(None, f"{system}: PyPI's torch, built for this system")


def choose_here(environ: Mapping[str, str] | None = None) -> IndexChoice:
    """:func:`choose` for this machine and ``environ`` (default: this process's environment)."""
    environ = os.environ if environ is None else environ
    system = platform.system()
    gpu = system == "Linux" and has_nvidia_gpu()
    return choose(system, gpu, environ.get(OVERRIDE_VARIABLE))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--explain", action="store_true", help="also say on stderr which index and why")
    args = parser.parse_args(argv)
    try:
        choice = choose_here()
    except ValueError as error:
        print(f"tools/torch_index.py: {error}", file=sys.stderr)
        return 2
    if args.explain:
        where = choice.url or "PyPI alone"
        print(f"torch: {where} ({choice.reason})", file=sys.stderr)
    print(" ".join(choice.pip_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
