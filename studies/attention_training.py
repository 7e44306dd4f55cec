"""Study ``attention_training`` (notebook 04, section 5): does dividing by √d help a Transformer learn?

One-block, one-head :class:`helpers.transformer.TinyTransformer` (head size d = width) trained
with Adam on the digit-reversal task, in three versions (:data:`helpers.attention_training.VARIANTS`):
its attention scores multiplied by 1/√d (scaled), by 1 (unscaled), and the control "matched":
multiplied by 1, with W_Q and W_K × d^(-1/4) at initialization, so that its initial logits are
the scaled model's (it separates the logit scale at the start from the parametrization during
training).  For every head size, learning rate and seed of the configuration.  The versions of
a seed start from the same weights (up to the W_Q, W_K factor) and see the same batches (each
batch new, so the training loss is a held-out loss); every learning rate sees the same batches
too.  The models are :func:`helpers.attention_training.variant_model`, trained many at once by
:func:`studies._attention_batched.train_together` (what :func:`helpers.training.train` does,
batched).

Stored arrays (axes: head size, variant [scaled, unscaled, matched], learning rate, seed,
recorded point):

* ``loss``: mean training loss over each block of ``record_every`` steps, ``[H, 3, R, S, P]``;
  ``step`` ``[P]`` is the last step of each block;
* ``logit_std_init`` ``[H, 3, S]`` and ``logit_std_final`` ``[H, 3, R, S]``: the std of the
  attention logits (scale × q·k) on held-out sequences, before and after training;
* ``test_loss`` and ``test_sequence_accuracy`` ``[H, 3, R, S]`` (sequences reversed without a
  mistake), ``test_position_accuracy`` ``[H, 3, R, S, length]`` (per answer position): after
  training, on held-out sequences;
* ``head_sizes``, ``variants``, ``lrs``, ``seeds``: the axes.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from helpers.attention_training import VARIANTS, init_logit_std, training_task, variant_model
from helpers.training import single_thread
from helpers.transformer import answer_logits, reversal_task, sequence_loss
from studies._attention_batched import train_together
from studies.store import Claim, Results, Study

_CHUNK = 20
"""Runs trained as one batched model at most (memory; the results do not depend on it)."""


@dataclass(frozen=True)
class Config:
    """What the study trains: every head size × scaling × learning rate × seed."""

    head_sizes: tuple[int, ...] = (16, 64, 128)
    lrs: tuple[float, ...] = (3e-4, 1e-3, 3e-3, 1e-2)
    seeds: tuple[int, ...] = tuple(range(10))
    steps: int = 160
    record_every: int = 5
    batch_size: int = 16
    length: int = 6
    n_test: int = 1000
    data_seed: int = 0


FULL = Config()
QUICK = Config(head_sizes=(8, 16), lrs=(1e-3, 3e-3), seeds=(0, 1), steps=10, n_test=64)


def _chunks(items: list[tuple[float, int]], size: int) -> list[list[tuple[float, int]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def run(config: Config, device: str = "cpu") -> dict[str, np.ndarray]:
    """Train every run of ``config`` and return the arrays described in the module docstring."""
    if config.steps % config.record_every:
        raise ValueError(f"steps ({config.steps}) must be a multiple of record_every ({config.record_every})")
    heads, lrs, seeds = config.head_sizes, config.lrs, config.seeds
    n_h, n_v, n_r, n_s = len(heads), len(VARIANTS), len(lrs), len(seeds)
    points = config.steps // config.record_every
    task = training_task(config.steps, config.batch_size, config.length, config.data_seed)
    test = reversal_task(config.n_test, config.length, seed=config.data_seed + 1000)
    task.tokens, task.targets = task.tokens.to(device), task.targets.to(device)
    test.tokens, test.targets = test.tokens.to(device), test.targets.to(device)
    probe = test.tokens[:256]
    arrays = {name: np.full(shape, np.nan, dtype=np.float32) for name, shape in (
        ("loss", (n_h, n_v, n_r, n_s, points)), ("logit_std_init", (n_h, n_v, n_s)),
        ("logit_std_final", (n_h, n_v, n_r, n_s)), ("test_loss", (n_h, n_v, n_r, n_s)),
        ("test_position_accuracy", (n_h, n_v, n_r, n_s, config.length)),
        ("test_sequence_accuracy", (n_h, n_v, n_r, n_s)))}
    runs = [(lr, seed) for lr in lrs for seed in seeds]
    groups = _chunks(runs, _CHUNK)
    threads = single_thread() if device == "cpu" else contextlib.nullcontext()
    bar = tqdm(total=n_h * n_v * len(groups) * config.steps, mininterval=1.0,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} batched steps")
    with threads:
        for h, head in enumerate(heads):
            for c, variant in enumerate(VARIANTS):
                for s, seed in enumerate(seeds):
                    model = variant_model(head, variant, seed, length=config.length).to(device)
                    arrays["logit_std_init"][h, c, s] = init_logit_std(model, probe)
                for group in groups:
                    models = [variant_model(head, variant, seed, length=config.length).to(device)
                              for _, seed in group]
                    losses = train_together(models, task, lrs=[lr for lr, _ in group],
                                            seeds=[seed for _, seed in group], batch_size=config.batch_size,
                                            steps=config.steps, on_step=lambda: bar.update(1))
                    blocks = losses.reshape(len(group), points, config.record_every).mean(axis=2)
                    for model, (lr, seed), curve in zip(models, group, blocks, strict=True):
                        r, s = lrs.index(lr), seeds.index(seed)
                        arrays["loss"][h, c, r, s] = curve
                        if not np.isfinite(curve).all():
                            continue  # diverged: the after-training measurements stay nan
                        model.eval()
                        with torch.no_grad():
                            logits = model(test.tokens)
                            arrays["test_loss"][h, c, r, s] = float(sequence_loss(logits, test.targets))
                            correct = answer_logits(logits, config.length).argmax(dim=-1) == test.targets
                        arrays["test_position_accuracy"][h, c, r, s] = correct.float().mean(dim=0).cpu().numpy()
                        arrays["test_sequence_accuracy"][h, c, r, s] = float(correct.all(dim=1).float().mean())
                        arrays["logit_std_final"][h, c, r, s] = init_logit_std(model, probe)
    bar.close()
    return {"head_sizes": np.array(heads, dtype=np.int64), "variants": np.array(VARIANTS),
            "lrs": np.array(lrs, dtype=np.float64), "seeds": np.array(seeds, dtype=np.int64),
            "step": np.arange(1, points + 1, dtype=np.int64) * config.record_every, **arrays}


def claims(results: Results) -> list[Claim]:
    """The claims notebook 04 makes about the study (section 5).

    "Learned": held-out sequence accuracy ≥ 0.9 after training; "steps to 0.1": the first block
    of steps whose mean training loss is below 0.1 (never: ``inf``).  Variant axis: 0 scaled,
    1 unscaled, 2 matched (unscaled, W_Q and W_K × d^(-1/4) at initialization)."""
    from helpers.attention import CHANCE_ACCURACY, LEARNED_ACCURACY, steps_to_loss

    heads, lrs = [int(h) for h in results["head_sizes"]], [float(lr) for lr in results["lrs"]]
    if [str(v) for v in results["variants"]] != ["scaled", "unscaled", "matched"]:
        raise ValueError(f"unexpected variants {results['variants']}")
    h16, h64, h128, base = heads.index(16), heads.index(64), heads.index(128), lrs.index(1e-3)
    big = [h64, h128]
    t = steps_to_loss(results["loss"], results["step"])  # [H, 3, R, S]
    learned = (results["test_sequence_accuracy"] >= LEARNED_ACCURACY).sum(axis=-1)  # [H, 3, R]
    init = results["logit_std_init"]

    def best(h: int, c: int) -> int:
        """The learning rate with the most runs learned, ties broken by the median steps to 0.1."""
        return min(range(len(lrs)), key=lambda r: (-learned[h, c, r], float(np.median(t[h, c, r]))))

    speedup = min(float(np.median(t[h, 1, best(h, 1)]) / np.median(t[h, 0, best(h, 0)])) for h in big)
    fewer = min(int(learned[h, 0, r] - learned[h, 1, r]) for h in big for r in range(len(lrs)))
    small_lrs = [r for r, lr in enumerate(lrs) if lr <= 3e-3]
    stuck = [(h, r, s) for h in big for r in small_lrs for s in range(len(results["seeds"]))
             if results["test_sequence_accuracy"][h, 1, r, s] < LEARNED_ACCURACY]
    positions = [results["test_position_accuracy"][h, 1, r, s] for h, r, s in stuck]
    at_chance = np.mean([p.min() < CHANCE_ACCURACY and p.max() > LEARNED_ACCURACY for p in positions])
    medians = np.median(t, axis=-1)  # [H, 3, R]; inf: the median run never gets below 0.1
    later = min(float(medians[h, 1, r] - medians[h, 0, r]) for h in big for r in range(len(lrs)))
    large_lrs = [r for r, lr in enumerate(lrs) if lr >= 3e-3]
    top = lrs.index(max(lrs))
    late = results["loss"][..., -8:].mean(axis=-1)  # steps 121–160
    d16_gap = np.abs(np.median(late[h16, 1], axis=-1) - np.median(late[h16, 0], axis=-1)).max()
    # The control: matched initial logits, no division during training.
    matched_vs_unscaled = min(int(learned[h, 2, r] - learned[h, 1, r]) for h in big for r in small_lrs)
    matched_lag = max(float(medians[h, 2, r] - medians[h, 0, r]) for h in big for r in small_lrs)
    matched_best = max(float(np.median(t[h, 2, best(h, 2)]) / np.median(t[h, 0, best(h, 0)])) for h in big)
    final = np.nanmedian(results["logit_std_final"], axis=-1)  # [H, 3, R]
    growth = (final[big, 2] / final[big, 0])  # [2, R]
    return [
        Claim("at initialization scaled attention has logit std s ≈ 0.5 (median, every d)",
              np.median(init[:, 0], axis=-1).min(), 0.4, None, ".2f"),
        Claim("... and at most 0.6 (median, every d)", np.median(init[:, 0], axis=-1).max(), None, 0.6, ".2f"),
        Claim("d = 128, lr 1e-3: every scaled run reaches loss 0.1 within 30 steps (slowest seed)",
              t[h128, 0, base].max(), None, 30, ".0f"),
        Claim("d = 128, lr 1e-3: the median unscaled run needs more than 60 steps",
              np.median(t[h128, 1, base]), 60, None, ".0f"),
        Claim("d = 64, lr 1e-3: every scaled run within 65 steps (slowest seed)",
              t[h64, 0, base].max(), None, 65, ".0f"),
        Claim("d = 64, lr 1e-3: the median unscaled run needs more than 80 steps",
              np.median(t[h64, 1, base]), 80, None, ".0f"),
        Claim("d = 64 and 128: at every lr the median unscaled run reaches loss 0.1 later (steps; "
              "inf: never)", later, 10, None, ".0f"),
        Claim("d = 64 and 128: at every lr, at least 2 more scaled than unscaled runs learn (of 10)",
              fewer, 2, None, ".0f"),
        Claim("d = 64 and 128, lr ≤ 3e-3: every scaled run learns (fewest of 10)",
              learned[big][:, 0][:, small_lrs].min(), 10, None, ".0f"),
        Claim("d = 64 and 128: no lr lets more than 7 of 10 unscaled runs learn",
              learned[big][:, 1].max(), None, 7, ".0f"),
        Claim("d = 64 and 128, each at its best lr: unscaled needs ≥ 3× the scaled median steps to 0.1",
              speedup, 3, None, ".1f"),
        Claim("unscaled runs that did not learn (d ≥ 64, lr ≤ 3e-3): share with one position at chance, "
              "another right", at_chance, 1.0, None, ".2f"),
        Claim("d = 64 and 128, lr 1e-2: some scaled runs do not learn either (of 20)",
              (len(results["seeds"]) - learned[big][:, 0, top]).sum(), 1, None, ".0f"),
        Claim("d = 16, lr ≤ 1e-3: no run of any version learns within 160 steps",
              learned[h16][:, [r for r in range(len(lrs)) if r not in large_lrs]].max(), None, 0, ".0f"),
        Claim("d = 16, lr ≥ 3e-3: at least 8 of 10 runs of each version learn",
              learned[h16][:, large_lrs].min(), 8, None, ".0f"),
        Claim("d = 16: scaled and unscaled medians over steps 121–160 agree within 0.05 nats at every lr",
              d16_gap, None, 0.05, ".2f"),
        Claim("control, d = 64 and 128, lr ≤ 3e-3: at least 9 of 10 matched runs learn (fewest)",
              learned[big][:, 2][:, small_lrs].min(), 9, None, ".0f"),
        Claim("control, d = 64 and 128, lr ≤ 3e-3: at every lr at least 2 more matched than unscaled runs "
              "learn (of 10)", matched_vs_unscaled, 2, None, ".0f"),
        Claim("control, d = 64 and 128, lr ≤ 3e-3: the median matched run reaches loss 0.1 at most 5 steps "
              "after the median scaled run (largest lag)", matched_lag, None, 5, ".0f"),
        Claim("control, d = 64 and 128, each at its best lr: matched needs under 2× the scaled median steps "
              "to 0.1", matched_best, None, 2, ".1f"),
        Claim("control, d = 64 and 128, lr 1e-2: at least 2 fewer matched than scaled runs learn (of 10)",
              min(int(learned[h, 0, top] - learned[h, 2, top]) for h in big), 2, None, ".0f"),
        Claim("control, d = 64 and 128: at every lr the median matched run ends with larger logits than the "
              "scaled one (smallest ratio of logit stds)", growth.min(), 1.3, None, ".1f"),
        Claim("control, d = 64 and 128, lr 1e-2: matched logits end at least 5× larger than scaled "
              "(ratio of median logit stds)", growth[:, top].min(), 5, None, ".0f"),
    ]


STUDY = Study(
    name="attention_training",
    title="Scaled vs unscaled attention, trained: head sizes × learning rates × seeds",
    notebook="04_attention_scaling",
    full=FULL,
    quick=QUICK,
    run=run,
    claims=claims,
    module=__name__,
)
