"""Training the tiny Transformers of notebook 06 and reading their runs.

* :class:`TrainingSetup`, :func:`train_variant`, :func:`run_grid`: one run per
  (LayerNorm placement, learning rate, warm-up, seed), on the digit-reversal task of
  :mod:`helpers.transformer`;
* :func:`early_steps`: the first steps of one run, measured step by step;
* :func:`grid_from_arrays`: the runs of a stored study (``transformer_stability``,
  ``residual_streams``) as the same :class:`RunResult` grid;
* :func:`learned`, :func:`diverged`, :func:`stability_table`, :func:`largest_stable_lr`,
  :func:`runs_of`, :func:`loss_band`, :func:`cell_summary`: what the runs did, over seeds.

The model, the task and the measurements at initialization are :mod:`helpers.transformer`;
drawing is :mod:`helpers.plots.transformer`.  The studies train their hundreds of runs with a
batched copy of :func:`train_variant` (``studies/_batched_transformer.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import torch

from helpers.claims import SeedBand, seed_band
from helpers.training import TrainingRun, single_thread, train, warmup_lr
from helpers.transformer import (
    N_DIGITS,
    NORMS,
    Block,
    ReversalTask,
    TinyTransformer,
    accuracy,
    residual_norms,
    reversal_task,
    sequence_loss,
)
from helpers.validation import check_choice, check_int


# ---------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------
@dataclass
class RunResult:
    """One training run of one variant: its settings, curves and final scores."""

    norm: str
    lr: float
    warmup_steps: int
    seed: int
    losses: np.ndarray
    """Training loss of every step (``nan`` after a divergence)."""
    learning_rates: np.ndarray
    digit_accuracy: float
    """Fraction of answer digits right on held-out sequences."""
    sequence_accuracy: float
    """Fraction of held-out sequences reversed without a mistake."""
    residual_init: np.ndarray
    """:func:`residual_norms` before training."""
    residual_final: np.ndarray
    """:func:`residual_norms` after training."""
    extra: dict[str, object] = field(default_factory=dict)

    def oscillation(self, window: int = 20) -> float:
        """How jagged the loss curve is: mean |loss - its moving average| over the last half."""
        half = self.losses[len(self.losses) // 2 :]
        window = min(window, len(half))
        if window < 1 or not np.isfinite(half).all():
            return float("nan")
        smooth = np.convolve(half, np.ones(window) / window, mode="valid")
        return float(np.mean(np.abs(half[window - 1 :] - smooth)))

    def steps_to(self, threshold: float, window: int = 10) -> int | None:
        """First step at which the ``window``-step moving-average loss is below ``threshold``."""
        if len(self.losses) < window:
            return None
        smooth = np.convolve(np.nan_to_num(self.losses, nan=np.inf), np.ones(window) / window, mode="valid")
        below = np.nonzero(smooth < threshold)[0]
        return int(below[0] + window - 1) if below.size else None


@dataclass
class TrainingSetup:
    """The fixed part of every run: data, model size and schedule."""

    n_layers: int = 3
    d_model: int = 64
    n_heads: int = 4
    length: int = 8
    n_train: int = 4096
    n_test: int = 512
    batch_size: int = 32
    steps: int = 150
    data_seed: int = 0

    def tasks(self) -> tuple[ReversalTask, ReversalTask]:
        """(training set, held-out test set), disjoint seeds."""
        return (reversal_task(self.n_train, self.length, seed=self.data_seed),
                reversal_task(self.n_test, self.length, seed=self.data_seed + 1000))

    def model(self, norm: str, seed: int) -> TinyTransformer:
        return TinyTransformer(norm, n_layers=self.n_layers, d_model=self.d_model,
                               n_heads=self.n_heads, max_len=2 * self.length, seed=seed)


def train_variant(
    norm: str,
    *,
    lr: float,
    warmup_steps: int = 0,
    seed: int = 0,
    setup: TrainingSetup | None = None,
    tasks: tuple[ReversalTask, ReversalTask] | None = None,
    progress: bool = False,
) -> RunResult:
    """Train one :class:`TinyTransformer` variant with Adam via :func:`helpers.training.train`.

    Args:
        norm: ``"post"``, ``"pre"`` or ``"none"``.
        lr: peak learning rate; warmup_steps: linear warm-up length (0 for none).
        seed: seeds the initial weights and the batch order.
        setup: data/model/schedule settings (defaults: :class:`TrainingSetup`).
        tasks: precomputed ``setup.tasks()`` to avoid regenerating the data.
        progress: show a progress bar.
    """
    check_choice("norm", norm, NORMS)
    setup = TrainingSetup() if setup is None else setup
    train_task, test_task = setup.tasks() if tasks is None else tasks
    model = setup.model(norm, seed)
    probe = test_task.tokens[:256]
    epochs = max(1, math.ceil(setup.steps * setup.batch_size / train_task.tokens.shape[0]))
    with single_thread():
        residual_init = residual_norms(model, probe)
        run: TrainingRun = train(model, train_task.tokens, train_task.targets, lr=lr, epochs=epochs,
                                 batch_size=setup.batch_size, optimizer="adam",
                                 warmup_steps=warmup_steps, max_steps=setup.steps,
                                 loss_fn=sequence_loss, seed=seed, progress=progress)
        finite = bool(np.isfinite(run.losses).all())
        if finite:
            digit, sequence = accuracy(model, test_task)
            residual_final = residual_norms(model, probe)
    if not finite:
        digit, sequence = float("nan"), float("nan")
        residual_final = np.full_like(residual_init, np.nan)
    return RunResult(norm, lr, warmup_steps, seed, run.losses, run.learning_rates,
                     digit, sequence, residual_init, residual_final)


RunKey = tuple[str, float, int, int]
"""(norm, lr, warmup_steps, seed)."""


def run_grid(
    norms: tuple[str, ...] = NORMS,
    lrs: tuple[float, ...] = (1e-2,),
    warmups: tuple[int, ...] = (0, 40),
    seeds: tuple[int, ...] = (0, 1, 2),
    setup: TrainingSetup | None = None,
) -> dict[RunKey, RunResult]:
    """Every combination of the settings, trained with :func:`train_variant`.

    Returns a dict keyed ``(norm, lr, warmup_steps, seed)``.
    """
    setup = TrainingSetup() if setup is None else setup
    tasks = setup.tasks()
    return {
        (norm, lr, warmup, seed): train_variant(norm, lr=lr, warmup_steps=warmup, seed=seed,
                                                setup=setup, tasks=tasks)
        for norm in norms for lr in lrs for warmup in warmups for seed in seeds
    }


# ---------------------------------------------------------------------------------------
# the first steps of training, step by step
# ---------------------------------------------------------------------------------------
@torch.no_grad()
def attention_entropy(model: TinyTransformer, tokens: torch.Tensor) -> np.ndarray:
    """Mean entropy (in nats) of every block's attention rows, averaged over heads and queries.

    Shape ``(n_layers,)``.  A query at position t that spreads its attention evenly over its
    t + 1 visible keys has entropy ln(t + 1); one that looks at a single key has entropy 0.
    """
    x = model.embed(tokens)
    entropies = []
    for block in cast("Sequence[Block]", model.blocks):  # nn.ModuleList holds the model's Blocks
        weights = block.attn.weights(x if block.norm == "post" else block.ln1(x))
        entropies.append(float(-(weights * weights.clamp_min(1e-30).log()).sum(-1).mean()))
        x = block(x)
    return np.array(entropies)


@dataclass
class EarlySteps:
    """What :func:`early_steps` records for one run, one row per step (after the step)."""

    losses: np.ndarray
    """Training loss of each step, ``(steps,)``."""
    entropy: np.ndarray
    """:func:`attention_entropy` on a fixed probe batch, ``(steps + 1, n_layers)`` (row 0: init)."""
    logit_change: np.ndarray
    """RMS change of the output logits on the probe batch caused by each step, ``(steps,)``."""
    grad_norm: np.ndarray
    """Norm of the whole gradient of each step, ``(steps,)``."""


def early_steps(norm: str, *, lr: float, seed: int = 0, steps: int = 20, warmup_steps: int = 0,
                setup: TrainingSetup | None = None,
                tasks: tuple[ReversalTask, ReversalTask] | None = None) -> EarlySteps:
    """Train ``steps`` steps like :func:`train_variant` and record each step's effect.

    After every step: the attention entropy of each block, how much the output logits on a
    fixed probe batch (64 held-out sequences) moved, and the gradient norm of that step.

    Raises:
        TypeError/ValueError: for a bad ``norm``, ``steps`` or ``lr``.
    """
    check_choice("norm", norm, NORMS)
    check_int("steps", steps, minimum=1)
    setup = TrainingSetup() if setup is None else setup
    train_task, test_task = setup.tasks() if tasks is None else tasks
    model = setup.model(norm, seed)
    probe = test_task.tokens[:64]
    record: dict[str, list] = {"entropy": [], "change": [], "grad": []}
    with single_thread():
        with torch.no_grad():
            previous = [model(probe)]
        record["entropy"].append(attention_entropy(model, probe))

        def on_step(step: int, m: TinyTransformer) -> None:
            grads = [p.grad for p in m.parameters() if p.grad is not None]
            record["grad"].append(float(torch.sqrt(cast(torch.Tensor, sum((g.double() ** 2).sum() for g in grads)))))
            with torch.no_grad():
                logits = m(probe)
            record["change"].append(float((logits - previous[0]).pow(2).mean().sqrt()))
            previous[0] = logits
            record["entropy"].append(attention_entropy(m, probe))

        epochs = max(1, math.ceil(steps * setup.batch_size / train_task.tokens.shape[0]))
        run = train(model, train_task.tokens, train_task.targets, lr=lr, epochs=epochs,
                    batch_size=setup.batch_size, optimizer="adam", warmup_steps=warmup_steps,
                    max_steps=steps, loss_fn=sequence_loss, on_step=on_step, seed=seed, progress=False)
    return EarlySteps(run.losses, np.stack(record["entropy"]), np.array(record["change"]),
                      np.array(record["grad"]))


# ---------------------------------------------------------------------------------------
# the stability study: a learning-rate sweep, several seeds, with and without warm-up
# ---------------------------------------------------------------------------------------
LEARNED_SEQUENCE_ACCURACY = 0.5
"""A run *learned* the task if its loss stayed finite and it reverses at least half of the
held-out sequences without a mistake (guessing gets 10⁻⁶ of them)."""


STUDY_ARRAYS = ("norms", "lrs", "warmups", "seeds", "losses", "digit_accuracy", "sequence_accuracy",
                "residual_init", "residual_final")
"""The arrays :func:`grid_from_arrays` reads (a study may store more)."""


def grid_from_arrays(arrays: Mapping[str, np.ndarray], n_layers: int | None = None) -> dict[RunKey, RunResult]:
    """The runs a study stored, as a grid keyed ``(norm, lr, warmup_steps, seed)``.

    ``arrays`` holds the axes ``norms``, ``lrs``, ``warmups`` and ``seeds`` and, for every
    run, indexed ``[norm, lr, warmup, seed]``: ``losses`` (one per step), ``digit_accuracy``,
    ``sequence_accuracy``, ``residual_init`` and ``residual_final`` (one norm per depth,
    padded with ``nan`` beyond the model's depth).  A study over several depths also stores
    ``depths`` and puts its axis after the norms' (``[norm, depth, lr, warmup, seed]``):
    ``n_layers`` picks one.  The learning rate of every step is recomputed from the schedule.

    Raises:
        KeyError: if an array is missing.
        ValueError: if ``n_layers`` is missing, not stored, or given for a study of one depth.
    """
    missing = [key for key in STUDY_ARRAYS if key not in arrays]
    if missing:
        raise KeyError(f"arrays must hold {list(STUDY_ARRAYS)}; missing {missing}")
    data = {key: np.asarray(arrays[key]) for key in STUDY_ARRAYS}
    if "depths" in arrays:
        depths = [int(d) for d in np.asarray(arrays["depths"])]
        if n_layers not in depths:
            raise ValueError(f"n_layers must be one of the stored depths {depths}, got {n_layers!r}")
        pick = depths.index(n_layers)
        for key in STUDY_ARRAYS[4:]:
            data[key] = data[key][:, pick]
        width = n_layers + 1
        for key in ("residual_init", "residual_final"):
            data[key] = data[key][..., :width]
    elif n_layers is not None:
        raise ValueError(f"n_layers must be None for a study of one depth, got {n_layers!r}")
    grid: dict[RunKey, RunResult] = {}
    for a, norm in enumerate(data["norms"]):
        for b, lr in enumerate(data["lrs"]):
            for c, warmup in enumerate(data["warmups"]):
                for d, seed in enumerate(data["seeds"]):
                    at = (a, b, c, d)
                    losses = data["losses"][at].astype(float)
                    rates = np.array([warmup_lr(step, float(lr), int(warmup)) for step in range(len(losses))])
                    grid[(str(norm), float(lr), int(warmup), int(seed))] = RunResult(
                        str(norm), float(lr), int(warmup), int(seed), losses, rates,
                        float(data["digit_accuracy"][at]), float(data["sequence_accuracy"][at]),
                        data["residual_init"][at].astype(float), data["residual_final"][at].astype(float))
    return grid


def learned(run: RunResult, threshold: float = LEARNED_SEQUENCE_ACCURACY) -> bool:
    """Whether ``run`` learned the task: finite losses and sequence accuracy >= ``threshold``."""
    return bool(np.isfinite(run.losses).all() and run.sequence_accuracy >= threshold)


def runs_of(grid: Mapping[RunKey, RunResult], norm: str, lr: float, warmup: int) -> list[RunResult]:
    """The runs of one grid cell ``(norm, lr, warmup)`` (all seeds), in seed order."""
    return [grid[k] for k in sorted(grid) if k[:3] == (norm, lr, warmup)]


def residual_band(runs: Sequence[RunResult], when: str) -> SeedBand | None:
    """The residual-stream norm per depth over seeds, ``"init"`` (every run) or ``"final"``
    (only the runs that learned: the others' final norms describe no trained model);
    ``None`` if no run qualifies.
    """
    kept = runs if when == "init" else [r for r in runs if learned(r)]
    if not kept:
        return None
    return seed_band([r.residual_init if when == "init" else r.residual_final for r in kept])


@dataclass(frozen=True)
class LossBand:
    """The moving-average training loss of several seeds (:func:`loss_band`)."""

    steps: np.ndarray
    """The step at the centre of each moving-average window."""
    low: np.ndarray
    """Minimum over seeds (non-finite losses ignored)."""
    median: np.ndarray
    """Median over seeds."""
    high: np.ndarray
    """Maximum over seeds."""


def loss_band(runs: Sequence[RunResult], smooth: int = 5) -> LossBand:
    """Min, median and max over ``runs`` (at least one) of their ``smooth``-step moving-average
    loss (``smooth`` at most the runs' length)."""
    losses = np.stack([r.losses for r in runs])
    losses = np.where(np.isfinite(losses), losses, np.nan)
    kernel = np.ones(smooth) / smooth
    smoothed = np.stack([np.convolve(row, kernel, mode="valid") for row in losses])
    with np.errstate(all="ignore"):
        low, mid, high = np.nanmin(smoothed, 0), np.nanmedian(smoothed, 0), np.nanmax(smoothed, 0)
    return LossBand(np.arange(smoothed.shape[1]) + smooth // 2, low, mid, high)


@dataclass(frozen=True)
class CellSummary:
    """What the runs of one grid cell achieved, over seeds (:func:`cell_summary`)."""

    seeds: int
    """The number of runs (seeds)."""
    digit_accuracy: float
    """Median over seeds of the digit accuracy (a diverged run counts 0)."""
    sequence_accuracy: float
    """Median over seeds of the whole-sequence accuracy (a diverged run counts 0)."""
    learned: int
    """How many runs learned the task (:func:`learned`)."""
    residual_init: np.ndarray
    """Median over seeds of the residual-stream norm per depth at initialization."""
    residual_final: np.ndarray
    """Median over the runs that learned of the residual-stream norm after training (``nan``
    if none learned: the others' final norms say nothing about a trained model)."""


def cell_summary(runs: Sequence[RunResult]) -> CellSummary:
    """Medians over seeds of the accuracies of ``runs`` (at least one), and how many learned."""
    init_band = residual_band(runs, "init")
    assert init_band is not None  # every run counts at initialization, and there is at least one
    init = init_band.median
    final = residual_band(runs, "final")
    return CellSummary(len(runs), float(np.median([np.nan_to_num(r.digit_accuracy) for r in runs])),
                       float(np.median([np.nan_to_num(r.sequence_accuracy) for r in runs])),
                       sum(learned(r) for r in runs), init,
                       final.median if final is not None else np.full_like(init, np.nan))


def diverged(run: RunResult, factor: float = 2.0) -> bool:
    """Whether ``run``'s loss blew up: ``nan``, or a final loss above ``factor`` × ln 10
    (worse than guessing, which a collapsed run sits at)."""
    if not np.isfinite(run.losses).all():
        return True
    return bool(np.mean(run.losses[-10:]) > factor * math.log(N_DIGITS))


def stability_table(grid: dict[RunKey, RunResult], threshold: float = LEARNED_SEQUENCE_ACCURACY
                    ) -> dict[tuple[str, int], dict[float, int]]:
    """``{(norm, warmup): {lr: number of seeds that learned}}`` for every cell of ``grid``."""
    table: dict[tuple[str, int], dict[float, int]] = {}
    for (norm, lr, warmup, _), run in sorted(grid.items()):
        cell = table.setdefault((norm, warmup), {})
        cell[lr] = cell.get(lr, 0) + int(learned(run, threshold))
    return table


def largest_stable_lr(counts: dict[float, int], n_seeds: int, needed: int | None = None) -> float | None:
    """The largest learning rate at which at least ``needed`` (default: all) seeds learned.

    Raises:
        ValueError: if ``needed`` is not between 1 and ``n_seeds``.
    """
    check_int("n_seeds", n_seeds, minimum=1)
    needed = n_seeds if needed is None else needed
    check_int("needed", needed, minimum=1)
    if needed > n_seeds:
        raise ValueError(f"needed must be <= n_seeds={n_seeds}, got {needed}")
    stable = [lr for lr, count in counts.items() if count >= needed]
    return max(stable) if stable else None
