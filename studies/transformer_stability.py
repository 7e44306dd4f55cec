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

:func:`helpers.transformer_runs.grid_from_arrays` turns them into the grid the figures draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

import studies
from helpers.transformer import NORMS
from helpers.transformer_runs import TrainingSetup, diverged, learned
from helpers.validation import check_choice, check_ints, check_reals
from studies._batched_transformer import train_batched


@dataclass(frozen=True)
class Config:
    """What the study trains: every combination of the tuples below."""

    seeds: tuple[int, ...] = tuple(range(10))
    norms: tuple[str, ...] = NORMS
    depths: tuple[int, ...] = (3, 6)
    """Numbers of Transformer blocks."""
    lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
    """Peak learning rates of Adam."""
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
    """The claims notebook 06 makes about the study (section 4)."""
    return []


STUDY = studies.Study(
    name="transformer_stability",
    title="Post-LN, pre-LN and no-LN tiny Transformers on digit reversal: a learning-rate sweep "
          "with and without warm-up, 3 and 6 blocks",
    notebook="06_layernorm_placement_transformer",
    full=FULL, quick=QUICK, run=run, claims=claims, module=__name__,
)
