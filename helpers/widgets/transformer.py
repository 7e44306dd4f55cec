"""Notebook 06's browsing panel: precomputed training runs, chosen by variant, lr and warm-up.

Training inside a slider callback would take seconds, so the panel only *looks up* runs
trained beforehand (in the notebook: the 3-block runs of the stored study
``transformer_stability``, read with :func:`helpers.transformer_runs.grid_from_arrays`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import ipywidgets as widgets

from helpers.plots.transformer import LABELS, BrowseView
from helpers.transformer import NORMS
from helpers.transformer_runs import RunKey, RunResult, TrainingSetup, run_grid
from helpers.widgets.panel import Panel

#: A grid small enough to train in about a second: what the panel shows when it is given
#: no precomputed runs (tests and the benchmark harness call the factory with no arguments).
TINY_SETUP = TrainingSetup(n_layers=2, length=4, n_train=256, n_test=64, batch_size=16, steps=20)
TINY_LRS = (3e-3, 3e-2)
TINY_WARMUPS = (0, 10)


def tiny_grid() -> dict[RunKey, RunResult]:
    """A quick default grid: 3 variants x 2 learning rates x 2 warm-ups x 1 seed, 20 steps."""
    return run_grid(NORMS, TINY_LRS, TINY_WARMUPS, seeds=(0,), setup=TINY_SETUP)


def browse_panel(grid: Mapping[RunKey, RunResult] | None = None) -> Panel:
    """Browse precomputed runs: loss curves (seed bands) and residual-stream norms.

    Args:
        grid: runs from :func:`helpers.transformer_runs.grid_from_arrays` (a stored study) or
            :func:`helpers.transformer_runs.run_grid`, keyed
            ``(norm, lr, warmup_steps, seed)``; every (norm, lr, warm-up) combination of
            the values present must have been trained.  ``None`` trains :func:`tiny_grid`.

    Raises:
        ValueError: if ``grid`` is empty or misses a combination.
    """
    grid = tiny_grid() if grid is None else dict(grid)
    if not grid:
        raise ValueError("grid must hold at least one run")
    variants = [n for n in NORMS if any(k[0] == n for k in grid)]
    lrs = sorted({k[1] for k in grid})
    warmups = sorted({k[2] for k in grid})
    missing = [(n, lr, w) for n in variants for lr in lrs for w in warmups
               if not any(k[:3] == (n, lr, w) for k in grid)]
    if missing:
        raise ValueError(f"grid must hold every (norm, lr, warmup) combination; missing {missing}")
    controls = {
        "norm": widgets.Dropdown(options=[(LABELS[n], n) for n in variants], value=variants[0],
                                 description="LayerNorm"),
        "lr": widgets.SelectionSlider(options=[(f"{lr:g}", lr) for lr in lrs], value=lrs[-1],
                                      description="learning rate", continuous_update=False),
        "warmup": widgets.ToggleButtons(options=[(f"warm-up {w}" if w else "no warm-up", w) for w in warmups],
                                        value=warmups[0], description="schedule"),
    }

    view = BrowseView(grid)  # every band, line and summary precomputed; redraws update in place
    return Panel(view.figure, make_browse_update(view), controls,
                 title="Pick a variant, a learning rate and a schedule: the runs were trained beforehand.")


def make_browse_update(view: BrowseView) -> Callable[..., str]:
    """The panel's ``update(figure, norm, lr, warmup) -> str``: shows one cell of ``view``'s
    grid and returns what its runs achieved.

    Raises (from the returned function):
        ValueError: for a cell the grid holds no runs for.
    """

    def update(fig: object, norm: str, lr: float, warmup: int) -> str:
        view.update(norm, lr, warmup)
        s = view.summaries[norm, lr, warmup]
        schedule = f"warm-up {warmup}" if warmup else "no warm-up"
        return (f"{LABELS[norm]}, lr {lr:g}, {schedule}: digit accuracy {s.digit_accuracy:.0%}, "
                f"whole sequences {s.sequence_accuracy:.0%} (medians), learned {s.learned}/{s.seeds} seeds")

    return update


PANELS = {"browse": browse_panel}
