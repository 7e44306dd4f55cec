"""Every performance budget of the course, in one place (per-notebook budgets: the course table).

The harness (``python -m benchmarks.run``) checks these and exits non-zero, naming the
offenders, when one is exceeded.  Budgets are for a student's laptop CPU (2 idle cores).
"""

from __future__ import annotations

import re

from tools.course import load_course

#: Wall-time budget in seconds of each notebook, keyed by its two-digit number prefix: the
#: ``budget_s`` of its entry in the course table, ``notebooks/course.toml`` (why each is what
#: it is: the comments there).
NOTEBOOK_TIME_BUDGET_S: dict[str, float] = load_course().budgets()
#: Budget of any notebook whose number is not listed above.
DEFAULT_NOTEBOOK_TIME_BUDGET_S = 30.0
#: The whole collection (sum of the per-notebook medians).
TOTAL_TIME_BUDGET_S = 90.0
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
