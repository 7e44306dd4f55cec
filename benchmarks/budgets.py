"""Every performance budget of the course, in one place.

The harness (``python -m benchmarks.run``) checks these and exits non-zero, naming the
offenders, when one is exceeded.  Budgets are for a student's laptop CPU (2 idle cores).
"""

from __future__ import annotations

import re

#: Wall-time budget in seconds of each notebook, keyed by its two-digit number prefix.
NOTEBOOK_TIME_BUDGET_S: dict[str, float] = {
    "00": 20.0,
    "01": 45.0,
    # 15 MLPs (3 gains x 5 seeds) trained as one batched model, LayerNorm depth and lr
    # sweeps over 5 seeds: ~44 s of kernel CPU on an idle machine.
    "02": 60.0,
    "03": 60.0,
    # Scaled vs unscaled attention trained at head sizes 64 and 256, 5 seeds each (~13 s of ~17 s).
    "04": 35.0,
    "05": 30.0,
    # lr sweep of 120 runs (3 batched models), no-LN warm-up study at d_model 64 (10 runs).
    "06": 90.0,
}
#: Budget of any notebook whose number is not listed above.
DEFAULT_NOTEBOOK_TIME_BUDGET_S = 90.0
#: The whole collection (sum of the per-notebook medians).
TOTAL_TIME_BUDGET_S = 240.0
#: Peak resident memory of the kernel process (and its children) per notebook, in MiB.
PEAK_MEMORY_BUDGET_MIB = 1536.0
#: Median time of one slider redraw (update callback + PNG render), in milliseconds.
REDRAW_MEDIAN_BUDGET_MS = 150.0

_PREFIX = re.compile(r"^(\d+)_")


def notebook_time_budget(name: str) -> float:
    """The wall-time budget in seconds for notebook ``name`` (e.g. ``"03_norms.ipynb"``)."""
    match = _PREFIX.match(name)
    if match is None:
        return DEFAULT_NOTEBOOK_TIME_BUDGET_S
    return NOTEBOOK_TIME_BUDGET_S.get(match.group(1), DEFAULT_NOTEBOOK_TIME_BUDGET_S)
