"""Study ``batch_size`` (notebook 03): BatchNorm, GroupNorm, LayerNorm and InstanceNorm against
the batch size, and against the learning rate with a network without normalization as control.

The small MNIST CNN of :func:`helpers.batch_effects.small_cnn` (two convolutions and a fully
connected layer, each followed by a normalization and ReLU) with BatchNorm, GroupNorm (groups
of 4 channels) or LayerNorm after every layer, or BatchNorm or InstanceNorm after the
convolutions only ("conv-only BatchNorm", "InstanceNorm"), is trained with SGD at each batch
size on the same number of examples, the learning rate scaled linearly with the batch size (the
GroupNorm paper's rule), for every seed.  Measured for each network:

* ``eval_error``: test error in eval mode (BatchNorm uses its running statistics);
* ``matched_error``: test error in *training* mode on test batches of the training batch size
  (BatchNorm normalizes with the batch's statistics, as during training): the control that
  separates a network that learned badly from running statistics that do not fit it;
* ``train_loss``: the training loss, averaged over ``loss_bins`` equal stretches of the run;
* ``bug_accuracy``: for the networks trained at the largest batch size, the "forgot
  ``model.eval()``" bug: test accuracy in eval mode, then in training mode on test batches of
  ``bug_batch_sizes``, then on batches of ``bug_batch_sizes[0]`` that each hold one digit
  (NaN where torch refuses to run: a fully connected BatchNorm on a batch of 1).

The learning-rate sweep trains ``lr_kinds`` (among them ``"none"``, no normalization: the
control) at batch size ``lr_batch_size`` on the same number of examples with each learning rate
of ``lrs``: ``lr_error`` (test error in eval mode) and ``lr_loss`` (training loss in
``loss_bins`` stretches), shapes ``(lr kind, lr, seed)`` and ``(lr kind, lr, seed, bin)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

import studies
from helpers.batch_effects import CNN_KINDS
from helpers.data import load_mnist
from studies._batched_cnn import CNNStack, accuracy, make_stack, train_stacks

KIND_NAMES = {"batch": "BatchNorm", "batch-conv": "conv-only BatchNorm", "group": "GroupNorm", "layer": "LayerNorm",
              "instance": "InstanceNorm", "none": "no normalization"}


@dataclass(frozen=True)
class Config:
    """What the study trains and measures."""

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    kinds: tuple[str, ...] = ("batch", "batch-conv", "group", "layer", "instance")
    batch_sizes: tuple[int, ...] = (2, 4, 8, 16, 32)
    examples: int = 4096
    """Training examples every run sees (``examples // batch_size`` SGD steps)."""
    train_images: int = 60000
    test_images: int = 5000
    """Test images of the eval-mode error."""
    bug_images: int = 1000
    """Test images of the training-mode evaluations (one forward pass per test batch)."""
    bug_batch_sizes: tuple[int, ...] = (8, 2, 1)
    base_lr: float = 0.05
    """Learning rate at the largest batch size; ``base_lr * batch_size / max(batch_sizes)`` at the others."""
    momentum: float = 0.9
    width: int = 8
    hidden: int = 64
    loss_bins: int = 16
    lr_kinds: tuple[str, ...] = ("none", "batch", "batch-conv", "group", "layer")
    """Kinds of the learning-rate sweep, ``"none"`` (no normalization) the control."""
    lr_batch_size: int = 32
    lrs: tuple[float, ...] = (0.005, 0.015, 0.05, 0.15, 0.5, 1.5)
    """Learning rates of the sweep, half a decade apart, from too slow to diverging for every kind."""


FULL = Config()
QUICK = Config(seeds=(0, 1), batch_sizes=(2, 8), examples=64, train_images=512, test_images=200,
               bug_images=64, width=4, hidden=8, loss_bins=4, lr_kinds=("none", "batch"), lr_batch_size=8,
               lrs=(0.05, 0.5))


def _check(config: Config) -> None:
    if len(config.seeds) < 1 or not config.kinds or not config.batch_sizes or not config.bug_batch_sizes:
        raise ValueError("config must name at least one seed, kind, batch size and bug batch size")
    if not config.lr_kinds or not config.lrs or min(config.lrs) <= 0:
        raise ValueError(f"config must name at least one lr kind and positive lrs, got {config.lrs}")
    for kind in (*config.kinds, *config.lr_kinds):
        if kind not in CNN_KINDS:
            raise ValueError(f"config.kinds and config.lr_kinds must be among {CNN_KINDS}, got {kind!r}")
    if config.examples // max(*config.batch_sizes, config.lr_batch_size) < config.loss_bins:
        raise ValueError(f"config.examples ({config.examples}) must give every run at least "
                         f"loss_bins ({config.loss_bins}) steps")


def run(config: Config, device: str = "cpu") -> dict[str, np.ndarray]:
    """Train every (kind, batch size, seed) network and measure it (the module docstring), on the
    CPU whatever ``device`` says."""
    del device  # always on the CPU: per-step overhead, not arithmetic, dominates these tiny networks
    _check(config)
    x_train, y_train = load_mnist("train", limit=config.train_images)
    x_test, y_test = load_mnist("test", limit=config.test_images)
    x_bug, y_bug = x_test[: config.bug_images], y_test[: config.bug_images]
    by_label = torch.argsort(y_bug, stable=True)
    kinds, sizes, seeds = config.kinds, config.batch_sizes, config.seeds
    shape = (len(kinds), len(sizes), len(seeds))
    eval_error, matched_error = np.zeros(shape), np.zeros(shape)
    train_loss = np.zeros(shape + (config.loss_bins,))
    bug = np.full((len(kinds), 2 + len(config.bug_batch_sizes), len(seeds)), np.nan)
    largest = max(sizes)
    steps = sum(config.examples // b for b in sizes) + len(config.lrs) * (config.examples // config.lr_batch_size)
    bar = tqdm(total=steps, desc="batch_size study", bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} steps",
               mininterval=1.0)
    for j, b in enumerate(sizes):
        bar.set_postfix_str(f"batch {b}")
        stacks = [make_stack(kind, seeds, width=config.width, hidden=config.hidden) for kind in kinds]
        losses = train_stacks(stacks, x_train, y_train, batch_size=b, examples=config.examples,
                              lr=config.base_lr * b / largest, momentum=config.momentum,
                              on_step=lambda: bar.update(1))
        for k, stack in enumerate(stacks):
            eval_error[k, j] = 1 - accuracy(stack, x_test, y_test)
            matched_error[k, j] = 1 - accuracy(stack, x_bug, y_bug, batch_size=b)
            train_loss[k, j] = _binned(losses[k], config.loss_bins)
            if b == largest:
                bug[k] = _bug_accuracies(stack, x_bug, y_bug, by_label, config.bug_batch_sizes)
    lr_shape = (len(config.lr_kinds), len(config.lrs), len(seeds))
    lr_error, lr_loss = np.zeros(lr_shape), np.zeros(lr_shape + (config.loss_bins,))
    for j, lr in enumerate(config.lrs):
        bar.set_postfix_str(f"lr {lr:g}")
        stacks = [make_stack(kind, seeds, width=config.width, hidden=config.hidden) for kind in config.lr_kinds]
        losses = train_stacks(stacks, x_train, y_train, batch_size=config.lr_batch_size, examples=config.examples,
                              lr=lr, momentum=config.momentum, on_step=lambda: bar.update(1))
        for k, stack in enumerate(stacks):
            lr_error[k, j] = 1 - accuracy(stack, x_test, y_test)
            lr_loss[k, j] = _binned(losses[k], config.loss_bins)
    bar.close()
    return {
        "batch_sizes": np.asarray(sizes), "seeds": np.asarray(seeds),
        "bug_batch_sizes": np.asarray(config.bug_batch_sizes),
        "eval_error": eval_error.astype(np.float32), "matched_error": matched_error.astype(np.float32),
        "train_loss": train_loss.astype(np.float32), "bug_accuracy": bug.astype(np.float32),
        "lrs": np.asarray(config.lrs, dtype=np.float32),
        "lr_error": lr_error.astype(np.float32), "lr_loss": lr_loss.astype(np.float32),
    }


def _binned(losses: np.ndarray, bins: int) -> np.ndarray:
    """``(seeds, steps)`` losses -> ``(seeds, bins)`` means over ``bins`` equal stretches (NaN stays NaN)."""
    return np.stack([stretch.mean(axis=-1) for stretch in np.array_split(losses, bins, axis=-1)], axis=-1)


def _bug_accuracies(stack: CNNStack, x: torch.Tensor, y: torch.Tensor, by_label: torch.Tensor,
                    batch_sizes: tuple[int, ...]) -> np.ndarray:
    """Rows: eval mode; training mode with each test batch size; training mode, one digit per batch."""
    rows = [accuracy(stack, x, y)]
    for b in batch_sizes:
        try:
            rows.append(accuracy(stack, x, y, batch_size=b))
        except ValueError:                  # torch refuses: one value per channel
            rows.append(np.full(len(stack.seeds), np.nan))
    rows.append(accuracy(stack, x[by_label], y[by_label], batch_size=batch_sizes[0]))
    return np.array(rows)


def claims(results: studies.Results) -> list[studies.Claim]:
    """The claims notebook 03 makes about the study (sections 5 and 6)."""
    from studies import Claim

    kinds, sizes = list(results.config["kinds"]), list(results.config["batch_sizes"])
    error, matched, loss = results["eval_error"], results["matched_error"], results["train_loss"]
    bn, conv_bn = kinds.index("batch"), kinds.index("batch-conv")
    gn, inst = kinds.index("group"), kinds.index("instance")
    others = [k for k in range(len(kinds)) if k != bn]
    small, large = sizes.index(min(sizes)), sizes.index(max(sizes))
    comfortable = [j for j, b in enumerate(sizes) if b >= 8]
    median = np.median(error, axis=-1)                                  # (kind, batch size)
    final_loss = loss[..., -1]                                          # the last stretch of training
    fc, conv = results["bug_accuracy"][bn], results["bug_accuracy"][conv_bn]   # rows: eval, 8, 2, 1, one digit
    # the learning-rate sweep: (lr kind, lr, seed)
    lr_kinds, lrs = list(results.config["lr_kinds"]), [float(lr) for lr in results.config["lrs"]]
    lr_error, lr_loss = results["lr_error"], results["lr_loss"]
    lr_median = np.median(lr_error, axis=-1)                            # (lr kind, lr)
    control, conv_only = lr_kinds.index("none"), lr_kinds.index("batch-conv")
    every_layer = [lr_kinds.index(kind) for kind in ("batch", "group", "layer")]
    best = lr_median.argmin(axis=1)                                     # each kind's best lr
    early = lr_loss[..., : lr_loss.shape[-1] // 4].mean(axis=-1)        # mean loss over the first quarter
    at = lrs.index
    return [
        # section 5: the networks trained at batch 32, evaluated in eval mode and (wrongly) in training mode
        Claim("bug: every BatchNorm network (conv-only and conv + FC) above 85 % test accuracy in eval mode",
              min(fc[0].min(), conv[0].min()), 0.85, None, ".2f"),
        Claim("bug: conv-only, training mode with batches of 8 within 1 point of eval mode on every seed",
              np.abs(conv[1] - conv[0]).max(), 0, 0.01, ".3f"),
        Claim("bug: conv-only, training mode with batches of 2 within 3 points of eval mode on every seed",
              np.abs(conv[2] - conv[0]).max(), 0, 0.03, ".3f"),
        Claim("bug: conv-only, training mode with batches of 1 costs 1 to 5 points in the median",
              np.median(conv[0] - conv[3]), 0.01, 0.05, ".3f"),
        Claim("bug: conv-only, training mode with batches of 1 costs more than 10 points on the worst seed",
              (conv[0] - conv[3]).max(), 0.10, None, ".2f"),
        Claim("bug: conv + FC, training mode with batches of 8 costs at least 2 points on every seed",
              (fc[0] - fc[1]).min(), 0.02, None, ".3f"),
        Claim("bug: conv + FC, training mode with batches of 8 costs at most 10 points on every seed",
              (fc[0] - fc[1]).max(), None, 0.10, ".3f"),
        Claim("bug: conv + FC, training mode with batches of 2 at least 30 points below eval mode on every seed",
              (fc[0] - fc[2]).min(), 0.30, None, ".2f"),
        Claim("bug: conv + FC, training mode with batches of 1 refused by torch on every seed (seeds refused)",
              np.isnan(fc[3]).sum(), len(fc[3]), len(fc[3]), ".0f"),
        Claim("bug: conv + FC, single-digit batches of 8 below 20 % accuracy on every seed (chance 10 %)",
              fc[4].max(), None, 0.20, ".2f"),
        Claim("bug: test-batch statistics (batches of 8 or 2) raise no BatchNorm network's median accuracy "
              "by more than 1 point over eval mode (largest median gain)",
              max(np.median(net[row] - net[0]) for net in (fc, conv) for row in (1, 2)), None, 0.01, ".3f"),
        # section 6: the batch-size sweep, test error in eval mode
        Claim("sweep: every network learns at batch sizes 8 to 32 (largest test error, any kind and seed)",
              error[:, comfortable].max(), None, 0.20, ".2f"),
        Claim("sweep: BatchNorm's batch-2 error is over 3x its batch-32 error on every seed (smallest ratio)",
              (error[bn, small] / error[bn, large]).min(), 3, None, ".1f"),
        Claim("sweep: conv + FC BatchNorm at batch 2: median error above 30 %", median[bn, small], 0.30, None, ".3f"),
        Claim("sweep: at batch 2 BatchNorm is at least 20 points worse than each other kind on every seed",
              (error[bn, small] - error[others, small].max(axis=0)).min(), 0.20, None, ".2f"),
        Claim("sweep: conv-only BatchNorm does not degrade at batch 2: its batch-2 median error at most 1 point "
              "above its batch-32 median", median[conv_bn, small] - median[conv_bn, large], None, 0.01, ".3f"),
        Claim("sweep: conv-only BatchNorm at batch 2: every seed below 15 % error",
              error[conv_bn, small].max(), None, 0.15, ".3f"),
        Claim("sweep: by batch 4 BatchNorm's median error is no worse than the worst other median",
              median[bn, sizes.index(4)] - median[others, sizes.index(4)].max(), None, 0.0, ".3f"),
        Claim("sweep: conv-only BatchNorm, GroupNorm, LayerNorm, InstanceNorm: median error within 4 points "
              "across batch sizes", max(np.ptp(median[k]) for k in others), 0, 0.04, ".3f"),
        Claim("sweep: conv-only BatchNorm, GroupNorm, LayerNorm, InstanceNorm: every median error at least 8 %",
              median[others].min(), 0.08, None, ".3f"),
        Claim("sweep: conv-only BatchNorm, GroupNorm, LayerNorm, InstanceNorm: every median error at most 14 %",
              median[others].max(), None, 0.14, ".3f"),
        Claim("sweep: at batch sizes 8 to 32 BatchNorm beats GroupNorm on every seed (largest paired difference "
              "BN - GN)", (error[bn, comfortable] - error[gn, comfortable]).max(), None, 0.0, ".3f"),
        Claim("sweep: at batch sizes 8 to 32 BatchNorm's lead over GroupNorm is under 4 points on every seed "
              "(largest paired difference GN - BN)", (error[gn, comfortable] - error[bn, comfortable]).max(),
              0.0, 0.04, ".3f"),
        Claim("sweep: GroupNorm (groups of 4 channels) and InstanceNorm: medians within 2 points at every batch size",
              np.abs(median[gn] - median[inst]).max(), 0, 0.02, ".3f"),
        Claim("sweep: BatchNorm at batch 2 ends training with a loss above 1.5 on every seed (ln 10 = 2.3)",
              final_loss[bn, small].min(), 1.5, None, ".2f"),
        Claim("sweep: every other network at batch 2 ends below 0.5",
              final_loss[others, small].max(), None, 0.5, ".2f"),
        Claim("sweep: BatchNorm at batch 2 evaluated with batch-2 statistics, as in training, is 10 points or "
              "more worse than in eval mode on every seed",
              (matched[bn, small] - error[bn, small]).min(), 0.10, None, ".2f"),
        Claim("sweep: the other networks at batch 2 evaluated with batch-2 statistics within 3 points of eval mode "
              "in the median", np.abs(np.median(matched[others, small] - error[others, small], axis=-1)).max(),
              0, 0.03, ".3f"),
        # section 6: the learning-rate sweep at batch 32, no normalization the control
        Claim("lr: without normalization the best median error is at lr 0.05, inside the grid (its median minus "
              "the better neighbour's)", lr_median[control, at(0.05)]
              - min(lr_median[control, at(0.015)], lr_median[control, at(0.15)]), None, 0.0, ".3f"),
        Claim("lr: at lr 0.5 no normalization and conv-only BatchNorm stay at chance on every seed (smallest error)",
              lr_error[[control, conv_only], at(0.5)].min(), 0.85, None, ".2f"),
        Claim("lr: at lr 0.5 BatchNorm, GroupNorm and LayerNorm on every layer learn on every seed "
              "(largest error)", lr_error[every_layer, at(0.5)].max(), None, 0.5, ".2f"),
        Claim("lr: at lr 1.5 every network fails (smallest median error)", lr_median[:, at(1.5)].min(),
              0.8, None, ".2f"),
        Claim("lr: each at its best lr, BatchNorm, GroupNorm and LayerNorm on every layer beat the control's "
              "median error by at least 2 points (smallest margin)",
              lr_median[control, best[control]] - max(lr_median[k, best[k]] for k in every_layer), 0.02, None, ".3f"),
        Claim("lr: each at its best lr, the mean loss over the first quarter of training is at least 0.3 lower "
              "with BatchNorm, GroupNorm or LayerNorm than without normalization, on every seed",
              min((early[control, best[control]] - early[k, best[k]]).min() for k in every_layer), 0.3, None, ".2f"),
        Claim("lr: at lr 0.005 the control has not learned (median error above 50 %)",
              lr_median[control, at(0.005)], 0.5, None, ".2f"),
        Claim("lr: at lr 0.005 every normalized network has learned (largest median error below 20 %)",
              np.delete(lr_median[:, at(0.005)], control).max(), None, 0.2, ".2f"),
    ]


STUDY = studies.Study(
    name="batch_size",
    title="BatchNorm, GroupNorm and LayerNorm CNNs on MNIST against the training batch size; "
          "the forgotten model.eval()",
    notebook="03_layernorm_batchnorm_groupnorm",
    full=FULL, quick=QUICK, run=run, claims=claims, module=__name__,
)
