"""Study ``residual_streams`` (notebook 06): how big the residual stream gets, block by block, during training.

The full-size tiny Transformer of notebook 06's section 1 (3 blocks, ``d_model`` 64, 4 heads,
8-digit sequences) with LayerNorm after each residual sum (``"post"``), before each sublayer
(``"pre"``) or nowhere (``"none"``) is trained with Adam at one learning rate, with and without
warm-up, for every seed (each placement's runs at once as one batched model,
``studies/_batched_transformer.py``).  Every ``record_every`` steps the mean L2 norm of one
token's residual vector is measured after the embeddings and after every block, on 64
held-out sequences (before and after training: on 256, as ``train_variant`` does).

Stored for every run, indexed ``[norm, lr, warmup, seed]``:

* ``residual_track``: ``[..., checkpoint, depth]``, at the steps ``record_steps`` (0 = before
  training); ``nan`` once a run's weights are no longer finite;
* ``residual_init``, ``residual_final``: before and after training, on 256 sequences
  (``nan`` at the end for a run whose loss became ``nan``), as
  :func:`helpers.transformer_runs.grid_from_arrays` reads them;
* ``losses`` (every step), ``digit_accuracy``, ``sequence_accuracy``, ``learned`` and
  ``diverged`` (:func:`helpers.transformer_runs.learned`, :func:`~helpers.transformer_runs.diverged`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

import studies
from helpers.transformer import NORMS
from helpers.transformer_runs import TrainingSetup, diverged, learned
from helpers.validation import check_choice, check_int, check_ints, check_reals
from studies._batched_transformer import train_batched


@dataclass(frozen=True)
class Config:
    """What the study trains: every combination of placement, learning rate, warm-up and seed."""

    seeds: tuple[int, ...] = tuple(range(10))
    norms: tuple[str, ...] = NORMS
    lrs: tuple[float, ...] = (1e-2,)
    warmups: tuple[int, ...] = (0, 40)
    n_layers: int = 3
    d_model: int = 64
    n_heads: int = 4
    length: int = 8
    n_train: int = 4096
    n_test: int = 512
    batch_size: int = 32
    steps: int = 120
    record_every: int = 10
    """Steps between two measurements of the residual stream."""


FULL = Config()
QUICK = Config(seeds=(0, 1), n_layers=2, d_model=16, n_heads=2, length=4, n_train=256, n_test=64,
               batch_size=16, steps=8, record_every=4, warmups=(0, 4))


def setup_of(config: Config) -> TrainingSetup:
    """The :class:`~helpers.transformer_runs.TrainingSetup` of the study's runs."""
    return TrainingSetup(n_layers=config.n_layers, d_model=config.d_model, n_heads=config.n_heads,
                         length=config.length, n_train=config.n_train, n_test=config.n_test,
                         batch_size=config.batch_size, steps=config.steps)


def _check(config: Config) -> None:
    for norm in config.norms:
        check_choice("config.norms", norm, NORMS)
    if not config.norms:
        raise ValueError("config.norms must name at least one placement")
    check_ints("config.seeds", config.seeds, minimum=0)
    check_ints("config.warmups", config.warmups, minimum=0)
    check_reals("config.lrs", config.lrs)
    check_int("config.steps", config.steps, minimum=1)
    check_int("config.record_every", config.record_every, minimum=1, maximum=config.steps)
    if config.steps % config.record_every:
        raise ValueError(f"config.record_every must divide config.steps={config.steps}, got {config.record_every}")


def run(config: Config, device: str = "cpu") -> dict[str, np.ndarray]:
    """Train every (placement, lr, warm-up, seed) run, measuring its stream (module docstring)."""
    del device  # models this small run as fast on the CPU as on a GPU
    _check(config)
    norms, lrs, warmups, seeds = config.norms, config.lrs, config.warmups, config.seeds
    record = np.arange(0, config.steps + 1, config.record_every)
    shape = (len(norms), len(lrs), len(warmups), len(seeds))
    track = np.full(shape + (len(record), config.n_layers + 1), np.nan)
    losses = np.full(shape + (config.steps,), np.nan)
    digit, sequence = np.full(shape, np.nan), np.full(shape, np.nan)
    learned_runs, diverged_runs = np.zeros(shape, bool), np.zeros(shape, bool)
    init, final = np.full(shape + (config.n_layers + 1,), np.nan), np.full(shape + (config.n_layers + 1,), np.nan)
    keys = [(b, c, d) for b in range(len(lrs)) for c in range(len(warmups)) for d in range(len(seeds))]
    setup = setup_of(config)
    tasks = setup.tasks()
    bar = tqdm(total=len(norms) * config.steps, desc="residual_streams",
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} steps", mininterval=1.0)
    for a, norm in enumerate(norms):
        bar.set_postfix_str(norm)
        results = train_batched(norm, lrs=[lrs[b] for b, _, _ in keys], warmups=[warmups[c] for _, c, _ in keys],
                                seeds=[seeds[d] for _, _, d in keys], setup=setup, tasks=tasks,
                                record_steps=[int(s) for s in record], on_step=lambda: bar.update(1))
        for (b, c, d), result in zip(keys, results, strict=True):
            at = (a, b, c, d)
            rows = np.asarray(result.extra["residual_track"], dtype=float)
            track[at] = np.where(np.isfinite(rows), rows, np.nan)
            losses[at] = result.losses
            digit[at], sequence[at] = result.digit_accuracy, result.sequence_accuracy
            learned_runs[at], diverged_runs[at] = learned(result), diverged(result)
            init[at], final[at] = result.residual_init, result.residual_final
    bar.close()
    return {
        "norms": np.asarray(norms), "lrs": np.asarray(lrs, dtype=np.float64), "warmups": np.asarray(warmups),
        "seeds": np.asarray(seeds), "record_steps": record,
        "residual_track": track.astype(np.float32), "residual_init": init.astype(np.float32),
        "residual_final": final.astype(np.float32), "losses": losses.astype(np.float32),
        "digit_accuracy": digit.astype(np.float32), "sequence_accuracy": sequence.astype(np.float32),
        "learned": learned_runs, "diverged": diverged_runs,
    }


def claims(results: studies.Results) -> list[studies.Claim]:
    """The claims notebook 06 makes about the study (section 6), over ten seeds."""
    claim = studies.Claim
    norms = [str(n) for n in results["norms"]]
    warmups = [int(w) for w in results["warmups"]]
    steps = [int(s) for s in results["record_steps"]]
    n_seeds = len(results["seeds"])

    def at(name: str, norm: str, warmup: int) -> np.ndarray:  # the runs of lr 1e-2
        return np.asarray(results[name][norms.index(norm), 0, warmups.index(warmup)], dtype=float)

    init = {n: at("residual_init", n, 0) for n in norms}  # [seed, depth]; the same for both schedules
    final = {(n, w): at("residual_final", n, w)[:, -1] for n in norms for w in warmups}
    track = {(n, w): at("residual_track", n, w)[..., -1] for n in norms for w in warmups}  # [seed, checkpoint]
    learned = {(n, w): int(at("learned", n, w).sum()) for n in norms for w in warmups}
    diverged = {(n, w): at("diverged", n, w).astype(bool) for n in norms for w in warmups}
    losses = {(n, w): at("losses", n, w) for n in norms for w in warmups}
    post_track = np.concatenate([at("residual_track", "post", w)[..., 1:].ravel() for w in warmups])
    grew = {n: final[(n, 0)] / init[n][:, -1] for n in ("pre", "none")}
    late = {w: np.median(losses[("none", w)][:, 35:40].mean(1)) for w in warmups}
    blown = final[("none", 40)][diverged[("none", 40)]]
    return [
        claim("at init, post-LN's stream has norm √64 = 8 after every block, every seed",
              np.abs(init["post"][:, 1:] - 8).max(), None, 0.01, ".2f"),
        claim("at init, pre-LN's and the no-LN stream grow after every block, every seed",
              min(np.diff(init[n], axis=1).min() for n in ("pre", "none")), 0.1, None, ".1f"),
        claim("post-LN's stream stays between 6 and 10 after every block, every checkpoint and run",
              post_track.min(), 6, None, ".1f"),
        claim("... (the largest)", post_track.max(), None, 10, ".1f"),
        claim(f"no warm-up: post-LN learns on no seed of {n_seeds} at lr 1e-2 (d_model 64)",
              learned[("post", 0)], 0, 0, ".0f"),
        claim("... and on every seed with 40 warm-up steps", learned[("post", 40)], n_seeds, n_seeds, ".0f"),
        claim("pre-LN learns on every seed, both schedules", min(learned[("pre", w)] for w in warmups),
              n_seeds, n_seeds, ".0f"),
        claim("no LN learns on every seed without warm-up", learned[("none", 0)], n_seeds, n_seeds, ".0f"),
        claim("no warm-up: no run of any variant blew up", sum(int(diverged[(n, 0)].sum()) for n in norms),
              0, 0, ".0f"),
        claim("no warm-up: training grows pre-LN's last-block stream at least 4×, every seed",
              grew["pre"].min(), 4, None, ".1f"),
        claim("no warm-up: ... and the no-LN stream by 1.1× to 1.8×, every seed", grew["none"].min(), 1.1, None, ".2f"),
        claim("... (the largest factor)", grew["none"].max(), None, 1.8, ".2f"),
        claim("no warm-up: every trained pre-LN stream is larger than every trained no-LN stream "
              "(smallest pre-LN ÷ largest no-LN)",
              final[("pre", 0)].min() / final[("none", 0)].max(), 1.5, None, ".1f"),
        claim("no warm-up, d_model 64: pre-LN's trained stream is about 3× the no-LN stream (ratio of medians)",
              np.median(final[("pre", 0)]) / np.median(final[("none", 0)]), 2, 4, ".1f"),
        claim("pre-LN's median stream jumps at least 4× in the first 10 steps",
              np.median(track[("pre", 0)][:, steps.index(10)]) / np.median(track[("pre", 0)][:, 0]), 4, None, ".1f"),
        claim("warm-up 40 leaves pre-LN's trained stream smaller (ratio of medians, no warm-up ÷ warm-up)",
              np.median(final[("pre", 0)]) / np.median(final[("pre", 40)]), 1.5, None, ".1f"),
        claim("no LN, warm-up 40: at most 4 seeds learn", learned[("none", 40)], 0, 4, ".0f"),
        claim("... and at least half the seeds blow up", int(diverged[("none", 40)].sum()), n_seeds / 2, None, ".0f"),
        claim("the LayerNorm controls, warm-up 40: no pre-LN or post-LN run blows up",
              sum(int(diverged[(n, 40)].sum()) for n in ("pre", "post")), 0, 0, ".0f"),
        claim("no LN: the warm-up runs are further along at steps 36-40 (ratio of median losses)",
              late[0] / late[40], 3, None, ".0f"),
        claim("no LN: every blown-up stream is ≥ 10× every stream trained without warm-up",
              blown.min() / final[("none", 0)].max() if blown.size else float("nan"), 10, None, ".0f"),
    ]


STUDY = studies.Study(
    name="residual_streams",
    title="The residual-stream norm after every block during training, post-LN vs pre-LN vs no LN, "
          "with and without warm-up",
    notebook="06_layernorm_placement_transformer",
    full=FULL, quick=QUICK, run=run, claims=claims, module=__name__,
)
