"""One explicit call that puts a notebook into the course's reproducible state."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from helpers.style import apply_style
from helpers.validation import check_int


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global random generators.

    Raises:
        TypeError: if ``seed`` is not an ``int``.
        ValueError: if ``seed`` is negative.
    """
    seed = check_int("seed", seed, minimum=0)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _use_png_inline_figures() -> None:
    """Make the inline backend emit PNG only (no SVG/PDF), when running under IPython."""
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: nothing to configure
        return
    shell = get_ipython()
    if shell is None:
        return
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats("png")


def setup_notebook(seed: int = 0) -> torch.device:
    """Seed every generator, apply the course's plot style and deterministic torch settings.

    Call it once, at the top of a notebook.

    Args:
        seed: the seed for Python's ``random``, NumPy and torch.

    Returns:
        The torch device the course uses: CUDA when present, else the CPU.
    """
    seed_everything(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    apply_style()
    _use_png_inline_figures()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
