"""Study ``transformer_stability`` (notebook 06): which learning rates each LayerNorm placement survives.

The tiny decoder-only Transformer of :mod:`helpers.transformer` (``d_model`` 16, 2 heads) with
LayerNorm after each residual sum (``"post"``), before each sublayer (``"pre"``) or nowhere
(``"none"``) learns to reverse 6-digit sequences with Adam (batch 32, 100 steps), for every
peak learning rate, warm-up length, seed and number of blocks.  Each (placement, depth)'s
runs are trained at once as one batched model (``studies/_batched_transformer.py``); every
run is what :func:`helpers.transformer_runs.train_variant` computes for its settings.

Stored for every run, indexed ``[norm, depth, lr, warmup, seed]``:

* ``losses``: the training loss of every step (``nan`` after a divergence; 100 steps are few
  enough to keep them all);
* ``digit_accuracy``, ``sequence_accuracy``: on 256 held-out sequences (``nan`` if diverged);
* ``learned``: :func:`helpers.transformer_runs.learned` (finite loss, at least half of the
  held-out sequences reversed without a mistake); ``diverged``:
  :func:`helpers.transformer_runs.diverged` (``nan`` or a final loss above 2 × ln 10);
* ``residual_init``, ``residual_final``: the residual-stream norm after the embeddings and
  each block, before and after training (padded with ``nan`` beyond the model's depth).

:func:`helpers.transformer_runs.grid_from_arrays` turns them into the grid the figures draw;
:func:`outcome` sorts a run into one of :data:`OUTCOMES` (learned, slow, stuck on the ln 10
plateau, diverged) and :func:`fastest_stable_lr` finds a variant's best learning rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

import studies
from helpers.transformer import N_DIGITS, NORMS
from helpers.transformer_runs import RunKey, RunResult, TrainingSetup, diverged, learned, runs_of
from helpers.validation import check_choice, check_int, check_ints, check_reals
from studies._batched_transformer import train_batched


@dataclass(frozen=True)
class Config:
    """What the study trains: every combination of the tuples below."""

    seeds: tuple[int, ...] = tuple(range(10))
    norms: tuple[str, ...] = NORMS
    depths: tuple[int, ...] = (3, 6)
    """Numbers of Transformer blocks."""
    lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 2e-2, 3e-2, 5e-2, 1e-1)
    """Peak learning rates of Adam (finer between 1e-2 and 1e-1, where the variants part)."""
    warmups: tuple[int, ...] = (0, 30)
    """Linear warm-up lengths in steps (0: none)."""
    d_model: int = 16
    n_heads: int = 2
    length: int = 6
    """Digits per sequence."""
    n_train: int = 4096
    n_test: int = 256
    batch_size: int = 32
    steps: int = 100


FULL = Config()
QUICK = Config(seeds=(0, 1), depths=(1, 2), lrs=(1e-2, 1e-1), warmups=(0, 4), length=4, n_train=256,
               n_test=64, batch_size=16, steps=8)


def setup_of(config: Config, n_layers: int) -> TrainingSetup:
    """The :class:`~helpers.transformer_runs.TrainingSetup` of the runs with ``n_layers`` blocks."""
    return TrainingSetup(n_layers=n_layers, d_model=config.d_model, n_heads=config.n_heads,
                         length=config.length, n_train=config.n_train, n_test=config.n_test,
                         batch_size=config.batch_size, steps=config.steps)


OUTCOMES = ("learned", "slow", "stuck", "diverged")
"""What a run can end as, in :func:`outcome`'s order of precedence (diverged first)."""

PLATEAU_MARGIN = 0.3
"""A run still within this many nats of ln 10 (the loss of guessing a digit) is on the plateau."""


def outcome(run: RunResult) -> str:
    """How ``run`` ended, one of :data:`OUTCOMES`.

    * ``"diverged"``: :func:`~helpers.transformer_runs.diverged` (``nan``, or a final loss
      above 2 × ln 10);
    * ``"learned"``: :func:`~helpers.transformer_runs.learned` (half the held-out sequences
      reversed without a mistake);
    * ``"stuck"``: neither, its loss over the last 10 steps still within
      :data:`PLATEAU_MARGIN` of ln 10 (or above it) and no lower than over the 10 steps
      around mid-training minus 0.1: it sits on the plateau of guessing the average digit;
    * ``"slow"``: the rest: below the plateau or still falling, but not learned in time.

    Raises:
        TypeError: if ``run`` is not a :class:`~helpers.transformer_runs.RunResult`.
        ValueError: if ``run`` has fewer than 20 steps.
    """
    if not isinstance(run, RunResult):
        raise TypeError(f"run must be a RunResult, got {type(run).__name__}")
    losses = np.asarray(run.losses, dtype=float)
    if len(losses) < 20:
        raise ValueError(f"run must have at least 20 steps to tell stuck from slow, got {len(losses)}")
    if diverged(run):
        return "diverged"
    if learned(run):
        return "learned"
    half = len(losses) // 2
    end, middle = losses[-10:].mean(), losses[half - 5 : half + 5].mean()
    if end >= math.log(N_DIGITS) - PLATEAU_MARGIN and end > middle - 0.1:
        return "stuck"
    return "slow"


def outcome_counts(runs: list[RunResult]) -> dict[str, int]:
    """``{outcome: number of runs}`` for every entry of :data:`OUTCOMES` (:func:`outcome`)."""
    found = [outcome(r) for r in runs]
    return {name: found.count(name) for name in OUTCOMES}


def outcome_label(runs: list[RunResult]) -> str:
    """The runs' outcomes in a few characters: the number that learned, then the others by
    how they ended, e.g. ``"3 5p2s"`` (3 learned, 5 stuck on the plateau, 2 slow; ``d``:
    diverged); ``"10"`` when all ten learned."""
    counts = outcome_counts(runs)
    rest = "".join(f"{counts[k]}{c}" for k, c in (("stuck", "p"), ("slow", "s"), ("diverged", "d")) if counts[k])
    return f"{counts['learned']} {rest}".strip()


@dataclass(frozen=True)
class BestLr:
    """A variant's best learning rate (:func:`fastest_stable_lr`) and how fast it trains there."""

    lr: float
    """The stable learning rate with the fewest steps to the target (median over seeds)."""
    steps: tuple[int, ...]
    """Steps each seed needed to bring its 10-step moving-average loss below the target."""

    @property
    def median(self) -> float:
        """The median of :attr:`steps`."""
        return float(np.median(self.steps))


def fastest_stable_lr(grid: Mapping[RunKey, RunResult], norm: str, warmup: int,
                      target: float = 0.5) -> BestLr | None:
    """Among the learning rates at which every seed of ``norm`` learned (``warmup`` steps of
    warm-up), the one whose seeds reach the ``target`` loss in the fewest steps (median);
    ``None`` if no learning rate is stable.

    Raises:
        ValueError: for an unknown ``norm``, a negative ``warmup`` or a ``target`` ≤ 0.
    """
    check_choice("norm", norm, NORMS)
    check_int("warmup", warmup, minimum=0)
    if not target > 0:
        raise ValueError(f"target must be > 0, got {target}")
    best: BestLr | None = None
    for lr in sorted({k[1] for k in grid if k[0] == norm and k[2] == warmup}):
        runs = runs_of(grid, norm, lr, warmup)
        steps = [r.steps_to(target) for r in runs]
        if not all(learned(r) for r in runs) or any(s is None for s in steps):
            continue
        candidate = BestLr(lr, tuple(int(s) for s in steps if s is not None))
        if best is None or candidate.median < best.median:
            best = candidate
    return best


def _check(config: Config) -> None:
    for norm in config.norms:
        check_choice("config.norms", norm, NORMS)
    check_ints("config.seeds", config.seeds, minimum=0)
    check_ints("config.depths", config.depths, minimum=1)
    check_ints("config.warmups", config.warmups, minimum=0)
    check_reals("config.lrs", config.lrs)
    if not config.norms:
        raise ValueError("config.norms must name at least one placement")


def run(config: Config, device: str = "cpu") -> dict[str, np.ndarray]:
    """Train every (placement, depth, lr, warm-up, seed) run and measure it (module docstring)."""
    del device  # models this small run as fast on the CPU as on a GPU
    _check(config)
    norms, depths, lrs, warmups, seeds = config.norms, config.depths, config.lrs, config.warmups, config.seeds
    shape = (len(norms), len(depths), len(lrs), len(warmups), len(seeds))
    losses = np.full(shape + (config.steps,), np.nan)
    digit, sequence = np.full(shape, np.nan), np.full(shape, np.nan)
    learned_runs, diverged_runs = np.zeros(shape, bool), np.zeros(shape, bool)
    residual_init = np.full(shape + (max(depths) + 1,), np.nan)
    residual_final = np.full_like(residual_init, np.nan)
    keys = [(b, c, d) for b in range(len(lrs)) for c in range(len(warmups)) for d in range(len(seeds))]
    tasks = setup_of(config, depths[0]).tasks()  # the data do not depend on the depth
    bar = tqdm(total=len(norms) * len(depths) * config.steps, desc="transformer_stability",
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} steps", mininterval=1.0)
    for a, norm in enumerate(norms):
        for j, depth in enumerate(depths):
            bar.set_postfix_str(f"{norm}, {depth} blocks")
            results = train_batched(norm, lrs=[lrs[b] for b, _, _ in keys],
                                    warmups=[warmups[c] for _, c, _ in keys],
                                    seeds=[seeds[d] for _, _, d in keys],
                                    setup=setup_of(config, depth), tasks=tasks, on_step=lambda: bar.update(1))
            for (b, c, d), result in zip(keys, results, strict=True):
                at = (a, j, b, c, d)
                losses[at] = result.losses
                digit[at], sequence[at] = result.digit_accuracy, result.sequence_accuracy
                learned_runs[at], diverged_runs[at] = learned(result), diverged(result)
                residual_init[at][: depth + 1] = result.residual_init
                residual_final[at][: depth + 1] = result.residual_final
    bar.close()
    return {
        "norms": np.asarray(norms), "depths": np.asarray(depths), "lrs": np.asarray(lrs, dtype=np.float64),
        "warmups": np.asarray(warmups), "seeds": np.asarray(seeds),
        "losses": losses.astype(np.float32), "digit_accuracy": digit.astype(np.float32),
        "sequence_accuracy": sequence.astype(np.float32), "learned": learned_runs, "diverged": diverged_runs,
        "residual_init": residual_init.astype(np.float32), "residual_final": residual_final.astype(np.float32),
    }


def claims(results: studies.Results) -> list[studies.Claim]:
    """The claims notebook 06 makes about the study (section 4): seed counts, over ten seeds."""
    from helpers.transformer_runs import grid_from_arrays, largest_stable_lr, loss_band

    claim = studies.Claim
    n_seeds = len(results["seeds"])
    learned_runs = results["learned"]  # [norm, depth, lr, warmup, seed]
    norms = [str(n) for n in results["norms"]]
    depths = [int(d) for d in results["depths"]]
    lrs = [float(lr) for lr in results["lrs"]]
    warmups = [int(w) for w in results["warmups"]]
    grids = {d: grid_from_arrays(results.arrays, n_layers=d) for d in depths}

    def count(norm: str, depth: int, lr: float, warmup: int) -> int:
        return int(learned_runs[norms.index(norm), depths.index(depth), lrs.index(lr), warmups.index(warmup)].sum())

    def ended(norm: str, depth: int, lr: float, warmup: int, how: str) -> int:
        return outcome_counts(runs_of(grids[depth], norm, lr, warmup))[how]

    def best(norm: str, depth: int, warmup: int) -> float:
        counts = {lr: count(norm, depth, lr, warmup) for lr in lrs}
        stable = largest_stable_lr(counts, n_seeds)
        return float("nan") if stable is None else stable

    def fastest(norm: str, depth: int, warmup: int) -> BestLr:
        found = fastest_stable_lr(grids[depth], norm, warmup)
        if found is None:
            raise AssertionError(f"{norm}, {depth} blocks, warm-up {warmup}: no stable learning rate")
        return found

    def relapsed(run: RunResult) -> bool:  # fell below 0.5 (5-step average), later a step above 1
        smooth = np.convolve(run.losses, np.ones(5) / 5, mode="valid")
        below = np.nonzero(smooth < 0.5)[0]
        return bool(below.size and np.nanmax(run.losses[below[0] + 5 :], initial=0.0) > 1.0)

    grid = grids[3]
    post_band = loss_band(runs_of(grid, "post", 3e-2, 0))
    pre_band = loss_band(runs_of(grid, "pre", 3e-2, 0))
    at_40 = int(np.searchsorted(post_band.steps, 40))
    speed = {n: np.median([r.steps_to(0.5) for r in runs_of(grid, n, 1e-2, 0)]) for n in ("pre", "none")}
    wobble = {n: np.median([r.oscillation() for r in runs_of(grid, n, 1e-2, 0)]) for n in ("pre", "none")}
    at_best = {n: fastest(n, 3, 0) for n in norms}
    stream = {n: np.median([r.residual_final[-1] for r in runs_of(grid, n, 1e-2, 0)]) for n in ("pre", "none")}
    ln_failed = [(n, d, lr, w) for n in ("post", "pre") for d in depths for lr in lrs for w in warmups]
    return [
        # what holds at each learning rate, 3 blocks
        claim("nobody learns at lr 1e-3 in 100 steps (both depths, every variant and schedule)",
              int(learned_runs[:, :, lrs.index(1e-3)].sum()), 0, 0, ".0f"),
        claim("... and at least 115 of those 120 runs end slow (the loss still falling)",
              sum(ended(n, d, 1e-3, w, "slow") for n in norms for d in depths for w in warmups), 115, None, ".0f"),
        claim("lr 3e-3, 3 blocks: every variant learns on at least 7 seeds without warm-up",
              min(count(n, 3, 3e-3, 0) for n in norms), 7, None, ".0f"),
        claim("... and on at most 2 with 30 warm-up steps", max(count(n, 3, 3e-3, 30) for n in norms), None, 2, ".0f"),
        claim(f"3 blocks: pre-LN learns on every seed (of {n_seeds}) at every lr from 1e-2 to 5e-2, both schedules",
              min(count("pre", 3, lr, w) for lr in (1e-2, 2e-2, 3e-2, 5e-2) for w in warmups), n_seeds, n_seeds,
              ".0f"),
        claim("3 blocks: pre-LN's largest stable lr is 5e-2 without warm-up", best("pre", 3, 0), 5e-2, 5e-2, ".0e"),
        claim("3 blocks: post-LN's largest stable lr is 1e-2 without warm-up", best("post", 3, 0), 1e-2, 1e-2, ".0e"),
        claim("3 blocks: no LN's largest stable lr is 1e-2 without warm-up", best("none", 3, 0), 1e-2, 1e-2, ".0e"),
        claim("3 blocks, lr 3e-2, no warm-up: post-LN learns on at most 4 seeds",
              count("post", 3, 3e-2, 0), 0, 4, ".0f"),
        claim("... and with warm-up 30 on at least 7", count("post", 3, 3e-2, 30), 7, n_seeds, ".0f"),
        claim("3 blocks, warm-up 30: post-LN's largest stable lr is 2e-2", best("post", 3, 30), 2e-2, 2e-2, ".0e"),
        claim("3 blocks, lr 3e-2, warm-up 30: after the warm-up, post-LN's loss jumps back above 1 after "
              "falling below 0.5 on at least 2 seeds", sum(relapsed(r) for r in runs_of(grid, "post", 3e-2, 30)),
              2, None, ".0f"),
        claim("3 blocks, lr 3e-2, no warm-up: post-LN's median loss is still above 2 at step 40",
              post_band.median[at_40], 2.0, None, ".2f"),
        claim("... while pre-LN's is below 0.1", pre_band.median[at_40], None, 0.1, ".2f"),
        claim("3 blocks, lr 1e-1, no warm-up: pre-LN learns on at most 2 seeds",
              count("pre", 3, 1e-1, 0), 0, 2, ".0f"),
        claim("... and with warm-up 30 on at least 7", count("pre", 3, 1e-1, 30), 7, n_seeds, ".0f"),
        claim("3 blocks, lr 1e-1: post-LN and no LN learn on no seed, either schedule",
              sum(count(n, 3, 1e-1, w) for n in ("post", "none") for w in warmups), 0, 0, ".0f"),
        claim("3 blocks, lr 1e-1: post-LN is stuck on the plateau on every seed, either schedule",
              sum(ended("post", 3, 1e-1, w, "stuck") for w in warmups), len(warmups) * n_seeds, None, ".0f"),
        claim("3 blocks: no LN learns on every seed at 1e-2 without warm-up", count("none", 3, 1e-2, 0),
              n_seeds, n_seeds, ".0f"),
        claim("no LN diverges on every seed at 1e-1, 3 blocks, both schedules",
              sum(ended("none", 3, 1e-1, w, "diverged") for w in warmups),
              len(warmups) * n_seeds, len(warmups) * n_seeds, ".0f"),
        claim("post-LN and pre-LN never diverge (every lr, schedule and depth)",
              sum(ended(*key, "diverged") for key in ln_failed), 0, 0, ".0f"),
        # 6 blocks: depth
        claim("6 blocks: pre-LN still learns on every seed at 1e-2, 2e-2 and 3e-2, both schedules",
              min(count("pre", 6, lr, w) for lr in (1e-2, 2e-2, 3e-2) for w in warmups), n_seeds, n_seeds, ".0f"),
        claim("6 blocks, lr 5e-2: pre-LN learns on 4 to 9 seeds without warm-up",
              count("pre", 6, 5e-2, 0), 4, n_seeds - 1, ".0f"),
        claim("... and on every seed with warm-up 30", count("pre", 6, 5e-2, 30), n_seeds, n_seeds, ".0f"),
        claim("6 blocks, lr 1e-1: pre-LN learns on no seed without warm-up",
              count("pre", 6, 1e-1, 0), 0, 0, ".0f"),
        claim("... and on at least 7 with warm-up 30", count("pre", 6, 1e-1, 30), 7, n_seeds, ".0f"),
        claim("6 blocks, no warm-up: post-LN has no stable lr (at most 5 seeds learn at any lr)",
              max(count("post", 6, lr, 0) for lr in lrs), 0, 5, ".0f"),
        claim("6 blocks, lr 1e-2: warm-up brings post-LN to at least 8 seeds",
              count("post", 6, 1e-2, 30), 8, None, ".0f"),
        claim("6 blocks, lr 3e-2: post-LN learns on no seed, either schedule",
              sum(count("post", 6, 3e-2, w) for w in warmups), 0, 0, ".0f"),
        claim("6 blocks: no LN learns on at most 1 seed at any lr and schedule",
              max(count("none", 6, lr, w) for lr in lrs for w in warmups), 0, 1, ".0f"),
        # speed and oscillation
        claim("3 blocks, lr 1e-2: pre-LN and no LN converge equally fast (medians of steps to loss 0.5 "
              "within 10)", abs(speed["pre"] - speed["none"]), 0, 10, ".0f"),
        claim("3 blocks, no warm-up, each variant at its best stable lr: pre-LN reaches loss 0.5 1.3× to 2× "
              "sooner than post-LN and no LN (ratio of medians)",
              min(at_best[n].median for n in ("post", "none")) / at_best["pre"].median, 1.3, 2.0, ".1f"),
        claim("... because its best stable lr is larger (best lr of pre-LN ÷ the larger of the others')",
              at_best["pre"].lr / max(at_best[n].lr for n in ("post", "none")), 1.5, None, ".1f"),
        claim("3 blocks, warm-up 30, each variant at its best stable lr: pre-LN reaches loss 0.5 at least 1.2× "
              "sooner than post-LN and no LN (ratio of medians)",
              min(fastest(n, 3, 30).median for n in ("post", "none")) / fastest("pre", 3, 30).median, 1.2, None,
              ".1f"),
        claim("3 blocks, lr 1e-2: no LN oscillates more than pre-LN (ratio of medians)",
              wobble["none"] / wobble["pre"], 2, None, ".1f"),
        # the residual stream of the narrow model
        claim("d_model 16, 3 blocks, lr 1e-2, no warm-up: trained pre-LN and no-LN streams within 1.5× "
              "(ratio of medians)", stream["pre"] / stream["none"], 1 / 1.5, 1.5, ".1f"),
    ]


STUDY = studies.Study(
    name="transformer_stability",
    title="Post-LN, pre-LN and no-LN tiny Transformers on digit reversal: a learning-rate sweep "
          "with and without warm-up, 3 and 6 blocks",
    notebook="06_layernorm_placement_transformer",
    full=FULL, quick=QUICK, run=run, claims=claims, module=__name__,
)
