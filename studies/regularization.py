"""Study ``regularization`` (notebook 07): weight decay, dropout and BatchNorm on a small MNIST subset.

Every network is trained on the same ``train_images`` MNIST training images (an easy setting to
overfit: a 2-hidden-layer MLP reaches zero training error within a few epochs) with the same
batch order, ``steps`` steps of batch ``batch_size``, five weight seeds each (a seed gives the same
initial weights in every group, so group differences are paired).  Groups
(:mod:`studies._batched_regularization`), each with one member per (λ, seed), rows in the order
``[(λ, s) for λ in lams for s in seeds]``:

* ``dropout_rates``: the plain MLP with dropout rates ``other_p`` (λ = 0), rows ``[(p, s) ...]``;
* ``plain``, ``dropout``, ``bn``, ``bn_dropout`` (dropout after both hidden ReLUs, so the second
  BatchNorm sees dropped inputs) and ``bn_dropout_last`` (dropout only after the last one): plain
  SGD (``lr``) with L2 = weight decay ``λ`` in ``lams``; dropout rate ``p_drop``;
* ``adam_l2`` and ``adamw``: Adam (``adam_lr``) with λ in ``adam_lams``, added to the gradient
  (L2) or decoupled (AdamW), plain MLP;
* ``cnn``: a small CNN, plain SGD (``lr``), no decay, one member per (dropout setting, seed) for
  the settings ``cnn_p_conv`` × ``cnn_p_fc`` listed pairwise.

Measured: eval-mode training and test error at the end (``<group>_train_error``,
``<group>_test_error``, full test set) and every ``curve_every`` steps (``<group>_curve``,
test error on the first ``curve_images`` test images, and ``<group>_curve_train``); every
``record_every`` steps the weight norms ``‖W_l‖_F`` (``<group>_norms``), the angle one step
turns each weight (``<group>_angles``) and the mean training loss of the window
(``<group>_loss``); for the BatchNorm groups the second BatchNorm's input variance in training
mode, its running variance and in evaluation mode (``<group>_varshift``, ``[S, 3]``); for every
MLP the participation ratio of each layer's incoming weights (``<group>_spread``, ``[S, 3]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import studies
from helpers.data import load_mnist
from studies._batched_regularization import (
    CNNGroup,
    MLPGroup,
    errors,
    train_groups,
    variance_shift,
    weight_spread,
)

MLP_GROUPS = ("plain", "dropout", "dropout_rates", "bn", "bn_dropout", "bn_dropout_last", "adam_l2", "adamw")


@dataclass(frozen=True)
class Config:
    """What the study trains and measures."""

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    train_images: int = 1000
    test_images: int = 10000
    curve_images: int = 1000
    width: int = 64
    batch_size: int = 50
    steps: int = 1200
    """60 epochs of the 1,000 images."""
    lr: float = 0.1
    lams: tuple[float, ...] = (0.0, 1e-4, 1e-3, 1e-2, 1e-1)
    p_drop: float = 0.5
    other_p: tuple[float, ...] = (0.1, 0.2, 0.3, 0.7)
    """Further dropout rates of the plain MLP (group ``dropout_rates``, λ = 0)."""
    adam_lr: float = 1e-3
    adam_lams: tuple[float, ...] = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
    cnn_p_conv: tuple[float, ...] = (0.0, 0.0, 0.0, 0.2)
    cnn_p_fc: tuple[float, ...] = (0.0, 0.2, 0.5, 0.0)
    data_seed: int = 0
    record_every: int = 25
    curve_every: int = 200


FULL = Config()
QUICK = Config(seeds=(0, 1), train_images=200, test_images=200, curve_images=100, width=16, batch_size=20,
               steps=50, lams=(0.0, 1e-2), other_p=(0.2,), adam_lams=(0.0, 1e-1), record_every=10, curve_every=25)


def _mlp_groups(config: Config) -> list[MLPGroup]:
    def grid(lams: tuple[float, ...]) -> tuple[list[int], list[float]]:
        return [s for _ in lams for s in config.seeds], [lam for lam in lams for _ in config.seeds]

    seeds, lams = grid(config.lams)
    no_drop, drop = [0.0] * len(seeds), [config.p_drop] * len(seeds)
    width, lr = config.width, config.lr
    groups = [
        MLPGroup("plain", seeds, lams, no_drop, batchnorm=False, width=width, lr=lr),
        MLPGroup("dropout", seeds, lams, drop, batchnorm=False, width=width, lr=lr),
        MLPGroup("dropout_rates", [s for _ in config.other_p for s in config.seeds],
                 [0.0] * (len(config.other_p) * len(config.seeds)), [p for p in config.other_p for _ in config.seeds],
                 batchnorm=False, width=width, lr=lr),
        MLPGroup("bn", seeds, lams, no_drop, batchnorm=True, width=width, lr=lr),
        MLPGroup("bn_dropout", seeds, lams, drop, batchnorm=True, dropout_at="all", width=width, lr=lr),
        MLPGroup("bn_dropout_last", seeds, lams, drop, batchnorm=True, dropout_at="last", width=width, lr=lr),
    ]
    seeds, lams = grid(config.adam_lams)
    for kind in ("adam_l2", "adamw"):
        groups.append(MLPGroup(kind, seeds, lams, [0.0] * len(seeds), batchnorm=False, width=config.width,
                               optimizer=kind, lr=config.adam_lr))
    return groups


def run(config: Config, device: str = "cpu") -> dict[str, np.ndarray]:
    """Train every group and measure it (the module docstring)."""
    del device  # one-thread CPU batched products
    if len(config.cnn_p_conv) != len(config.cnn_p_fc):
        raise ValueError("config.cnn_p_conv and config.cnn_p_fc must list the CNN's settings pairwise")
    if config.steps % config.record_every:
        raise ValueError("config.steps must be a multiple of config.record_every")
    import torch

    x, y = load_mnist("train", limit=config.train_images)
    x_test, y_test = load_mnist("test", limit=config.test_images)
    groups: list[MLPGroup | CNNGroup] = list(_mlp_groups(config))
    cnn_settings = list(zip(config.cnn_p_conv, config.cnn_p_fc, strict=True))
    groups.append(CNNGroup("cnn", [s for _ in cnn_settings for s in config.seeds],
                           [c for c, _ in cnn_settings for _ in config.seeds],
                           [f for _, f in cnn_settings for _ in config.seeds], lr=config.lr))
    trained = train_groups(groups, x, y, x_test[:config.curve_images], y_test[:config.curve_images],
                           steps=config.steps, batch_size=config.batch_size, seed=config.data_seed,
                           record_every=config.record_every, curve_every=config.curve_every, desc="regularization")
    out: dict[str, np.ndarray] = {
        "record_steps": trained.record_steps,
        "curve_steps": np.arange(0, config.steps, config.curve_every),
        "seeds": np.asarray(config.seeds), "lams": np.asarray(config.lams, dtype=np.float32),
        "adam_lams": np.asarray(config.adam_lams, dtype=np.float32),
        "other_p": np.asarray(config.other_p, dtype=np.float32),
    }
    probe_gen = torch.Generator().manual_seed(config.data_seed + 2)
    for g in groups:
        out[f"{g.name}_train_error"] = errors(g, x, y)
        out[f"{g.name}_test_error"] = errors(g, x_test, y_test)
        out[f"{g.name}_curve"] = trained.curve_errors[g.name]
        out[f"{g.name}_curve_train"] = trained.curve_train_errors[g.name]
        out[f"{g.name}_norms"] = trained.norms[g.name]
        out[f"{g.name}_angles"] = trained.angles[g.name]
        out[f"{g.name}_loss"] = trained.losses[g.name]
        if isinstance(g, MLPGroup):
            out[f"{g.name}_spread"] = weight_spread(g)
        if isinstance(g, MLPGroup) and g.batchnorm:
            out[f"{g.name}_varshift"] = variance_shift(g, x[:500], x_test[:2000], probe_gen)
    return {key: value.astype(np.float32) if value.dtype == np.float64 else value for key, value in out.items()}


def claims(results: studies.Results) -> list[studies.Claim]:
    """The claims notebook 07 makes about the study, each prefixed with its section (§1–§5b)."""
    import numpy as np

    from studies import Claim

    seeds = len(results["seeds"])
    lams = [float(v) for v in results["lams"]]
    adam_lams = [float(v) for v in results["adam_lams"]]
    other_p = [float(v) for v in results["other_p"]]

    def by(key: str) -> np.ndarray:
        values = np.asarray(results[key], dtype=np.float64)
        return values.reshape(values.shape[0] // seeds, seeds, *values.shape[1:])

    def at(values: list[float], value: float) -> int:
        return int(np.flatnonzero(np.isclose(values, value, rtol=1e-5, atol=0))[0])

    def lam(value: float) -> int:
        return at(lams, value)

    def interval_has_zero(a: np.ndarray, b: np.ndarray) -> float:
        d = a - b
        half = 2.776 * d.std(ddof=1) / np.sqrt(d.size)  # t(0.975, 4 degrees of freedom): 5 seeds
        return float(abs(d.mean()) <= half)

    test, train = by("plain_test_error"), by("plain_train_error")
    adam_norm = {k: np.asarray(results[f"{k}_norms"][-1, :, 0], dtype=np.float64).reshape(-1, seeds)
                 for k in ("adam_l2", "adamw")}                               # ‖W₁‖ at the last record
    adam_test = {k: by(f"{k}_test_error") for k in ("adam_l2", "adamw")}
    a1, a2, a3, a4 = (at(adam_lams, v) for v in (1e-3, 1e-2, 1.0, 1e-4))
    norms = np.asarray(results["bn_norms"][:, :, 0], dtype=np.float64)      # [records, members]
    norms = norms.reshape(norms.shape[0], -1, seeds)                          # [records, λ, seed]
    angles = np.asarray(results["bn_angles"][:, :, 0], dtype=np.float64).reshape(norms.shape)
    lr = float(results.config["lr"])
    end_angle = np.median(angles[-10:], axis=0)                               # [λ, seed]: the last 250 steps
    bn_test = by("bn_test_error")
    half = norms.shape[0] // 2
    shift = {g: by(f"{g}_varshift")[0] for g in ("bn", "bn_dropout", "bn_dropout_last")}   # λ = 0
    ratio = {g: v[:, 1] / v[:, 2] for g, v in shift.items()}                   # running / evaluation
    rates = by("dropout_rates_test_error")
    p2, p7 = at(other_p, 0.2), at(other_p, 0.7)
    spread = by("plain_spread")[0, :, 2]
    cnn_test, cnn_train = by("cnn_test_error"), by("cnn_train_error")
    settings_best = min(float(np.median(t)) for g in ("plain", "dropout", "bn", "bn_dropout", "bn_dropout_last")
                        for t in by(f"{g}_test_error")[:-1])
    rate_best = min(float(np.median(t)) for t in rates)
    return [
        # §1 Adam + L2 vs AdamW
        Claim("§1: at λ = 1e-2 Adam + L2 leaves ‖W₁‖ at most half of AdamW's (ratio of medians)",
              np.median(adam_norm["adam_l2"][a2]) / np.median(adam_norm["adamw"][a2]), None, 0.5, fmt=".2f"),
        Claim("§1: AdamW with λ ≤ 1e-2 changes the median ‖W₁‖ by less than 2 % (largest change, %)",
              100 * max(abs(np.median(adam_norm["adamw"][k]) / np.median(adam_norm["adamw"][0]) - 1)
                        for k in range(a2 + 1)), None, 2, fmt=".1f"),
        Claim("§1: Adam + L2 with λ = 1e-3 already shrinks it by more than 30 % (%)",
              100 * (1 - np.median(adam_norm["adam_l2"][a1]) / np.median(adam_norm["adam_l2"][0])), 30, None,
              fmt=".0f"),
        Claim("§1: Adam + L2 at λ = 1 leaves every seed at chance (test error ≥ 85 %, best seed)",
              100 * adam_test["adam_l2"][a3].min(), 85, None, fmt=".0f"),
        Claim("§1: AdamW at λ = 1 beats λ = 0 on every seed (largest paired change, points)",
              100 * (adam_test["adamw"][a3] - adam_test["adamw"][0]).max(), None, 0, fmt=".2f"),
        Claim("§1: ... and Adam + L2 at λ = 1e-4 on every seed (largest paired change, points)",
              100 * (adam_test["adamw"][a3] - adam_test["adam_l2"][a4]).max(), None, 0, fmt=".2f"),
        Claim("§1: no λ > 0 lowers Adam + L2's median test error below λ = 0's (best λ > 0 minus λ = 0, points)",
              100 * (min(np.median(t) for t in adam_test["adam_l2"][1:]) - np.median(adam_test["adam_l2"][0])),
              0, None, fmt=".2f"),
        # §2 weight decay in front of BatchNorm
        Claim("§2: λ = 0: ‖W₁‖ grows during training, every seed (smallest end / start)",
              (norms[-1, lam(0.0)] / norms[0, lam(0.0)]).min(), 1.0, None, fmt=".3f"),
        Claim("§2: λ = 1e-2: ‖W₁‖ shrinks about 3-fold, every seed (largest end / start)",
              (norms[-1, lam(1e-2)] / norms[0, lam(1e-2)]).max(), None, 0.4, fmt=".2f"),
        Claim("§2: λ = 0.1: ‖W₁‖ settles; over the last 600 steps it varies by less than 25 % (max / min, worst seed)",
              (norms[half:, lam(0.1)].max(axis=0) / norms[half:, lam(0.1)].min(axis=0)).max(), None, 1.25,
              fmt=".2f"),
        Claim("§2: λ = 0.1: there one step turns W₁ by 0.7–1.2 × √(2·lr·λ) (median over seeds of the last 250 steps)",
              np.median(end_angle[lam(0.1)]) / np.sqrt(2 * lr * 0.1), 0.7, 1.2, fmt=".2f"),
        Claim("§2: λ = 1e-2 is still far from it after 1,200 steps: below 1/3 of √(2·lr·λ) (median)",
              np.median(end_angle[lam(1e-2)]) / np.sqrt(2 * lr * 1e-2), None, 1 / 3, fmt=".2f"),
        Claim("§2: λ = 0.1 raises the effective learning rate lr/‖W₁‖² ≥ 30-fold over λ = 0's at the end (median)",
              np.median(norms[-1, lam(0.0)] ** 2 / norms[-1, lam(0.1)] ** 2), 30, None, fmt=".0f"),
        Claim("§2: λ from 0 to 1e-2 (‖W₁‖ up to 3× smaller): the median test errors lie within 0.3 points",
              100 * (max(np.median(t) for t in bn_test[:lam(1e-2) + 1])
                     - min(np.median(t) for t in bn_test[:lam(1e-2) + 1])), None, 0.3, fmt=".2f"),
        Claim("§2: λ = 0.1 (the largest effective learning rate) doubles it: median test error > 20 %",
              100 * np.median(bn_test[lam(0.1)]), 20, None, fmt=".1f"),
        # §3 λ = 1e-4
        Claim("§3: λ = 1e-4 vs 0: the 95 % interval of the paired test-error difference contains 0 in all 4 networks",
              sum(interval_has_zero(by(f"{g}_test_error")[lam(1e-4)], by(f"{g}_test_error")[0])
                  for g in ("plain", "dropout", "bn", "bn_dropout")), 4, 4, fmt=".0f"),
        Claim("§3: without dropout every seed's difference is within ±0.1 points "
              "(plain and BatchNorm, largest absolute difference)",
              100 * max(np.abs(by(f"{g}_test_error")[lam(1e-4)] - by(f"{g}_test_error")[0]).max()
                        for g in ("plain", "bn")), None, 0.1, fmt=".2f"),
        # §4 dropout and BatchNorm
        Claim("§4: dropout → BatchNorm: its running variance is 1.6–2.2× the variance at evaluation, every seed "
              "(smallest)",
              ratio["bn_dropout"].min(), 1.6, 2.2, fmt=".2f"),
        Claim("§4: ... (largest)", ratio["bn_dropout"].max(), 1.6, 2.2, fmt=".2f"),
        Claim("§4: without dropout the two agree within 10 %, every seed (largest ratio)", ratio["bn"].max(),
              None, 1.1, fmt=".2f"),
        Claim("§4: with dropout only after the last BatchNorm, within 25 % (largest ratio)",
              ratio["bn_dropout_last"].max(), None, 1.25, fmt=".2f"),
        Claim("§4: test error, dropout → BatchNorm vs dropout after it: the paired 95 % interval contains 0",
              interval_has_zero(by("bn_dropout_test_error")[0], by("bn_dropout_last_test_error")[0]), 1, 1,
              fmt=".0f"),
        # §5 overfitting on 1,000 images
        Claim("§5: the plain MLP fits the 1,000 images: training error 0 % on every seed (largest, %)",
              100 * train[0].max(), None, 0, fmt=".1f"),
        Claim("§5: ... while its test error stays above 12 % (smallest seed, %)", 100 * test[0].min(), 12, None,
              fmt=".1f"),
        Claim("§5: weight decay λ = 1e-2 lowers its test error on every seed (largest paired change, points)",
              100 * (test[lam(1e-2)] - test[0]).max(), None, 0, fmt=".2f"),
        Claim("§5: λ = 0.1 underfits: training error above 10 % on every seed (%)", 100 * train[lam(0.1)].min(),
              10, None, fmt=".1f"),
        Claim("§5: dropout p = 0.2 lowers the test error on every seed (largest paired change, points)",
              100 * (rates[p2] - test[0]).max(), None, 0, fmt=".2f"),
        Claim("§5: ... and so does p = 0.1 (largest paired change, points)",
              100 * (rates[at(other_p, 0.1)] - test[0]).max(), None, 0, fmt=".2f"),
        Claim("§5: dropout p = 0.5: the paired 95 % interval of its change contains 0",
              interval_has_zero(by("dropout_test_error")[0], test[0]), 1, 1, fmt=".0f"),
        Claim("§5: dropout p = 0.7 underfits: training error above 2 % on every seed (%)",
              100 * by("dropout_rates_train_error")[p7].min(), 2, None, fmt=".1f"),
        Claim("§5: BatchNorm alone: the paired 95 % interval of its change contains 0",
              interval_has_zero(bn_test[0], test[0]), 1, 1, fmt=".0f"),
        Claim("§5: no setting closes more than 1.5 of the 12 points: best median test error ≥ 11 % (%)",
              100 * min(settings_best, rate_best), 11, None, fmt=".1f"),
        Claim("§5: dropout p = 0.5 spreads the output layer's weights: participation ratio ≥ 1.3× plain's, "
              "every seed (smallest ratio)", (by("dropout_spread")[0, :, 2] / spread).min(), 1.3, None, fmt=".2f"),
        Claim("§5: weight decay λ = 1e-2 does the opposite: a lower ratio than plain's on every seed (largest ratio)",
              (by("plain_spread")[lam(1e-2), :, 2] / spread).max(), None, 1.0, fmt=".2f"),
        # §5b the CNN
        Claim("§5b: the CNN without dropout fits the images: training error 0 %, every seed (largest, %)",
              100 * cnn_train[0].max(), None, 0, fmt=".1f"),
        Claim("§5b: dropout p = 0.2 on the FC layer lowers the test error on every seed (largest paired change)",
              100 * (cnn_test[1] - cnn_test[0]).max(), None, 0, fmt=".2f"),
        Claim("§5b: dropout p = 0.2 on the convolutions lowers it on every seed too (largest paired change)",
              100 * (cnn_test[3] - cnn_test[0]).max(), None, 0, fmt=".2f"),
        Claim("§5b: conv vs FC dropout at p = 0.2: the paired 95 % interval contains 0",
              interval_has_zero(cnn_test[3], cnn_test[1]), 1, 1, fmt=".0f"),
    ]


STUDY = studies.Study(
    name="regularization",
    title="Weight decay (SGD, Adam, AdamW), dropout and BatchNorm on 1,000 MNIST images: 2-layer MLPs and a "
          "small CNN, 5 seeds",
    notebook="07_weight_decay_dropout",
    full=FULL, quick=QUICK, run=run, claims=claims, module=__name__,
)
