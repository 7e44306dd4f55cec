"""Study ``weights_move`` (notebook 02 §2–3): "weights don't move that much".

The lecture's network — a 50-layer, width-100, bias-free ReLU MLP with ``W ~ N(0, c/n_in)``
(:func:`helpers.initialization.make_mlp`) — for ``c`` in {1.7, 2, 2.3} and five weight seeds
each, trained with plain SGD as in the lecture (learning rate 0.002, batch 32, no momentum, no
schedule; one optimizer, rate and batch order for every network) on all 60,000 MNIST training
images for ``epochs`` epochs.  The 15 networks are trained at once
(:class:`studies._batched_mlp.BatchedMLP`).  Measured for every network (rows in the order
``[(c, s) for c in gains for s in seeds]``):

* ``test_error_init``, ``test_error_epoch`` (after every epoch), ``test_error_final``: error
  on the full 10,000-image test set;
* ``weight_var_init``, ``weight_var_final``: the variance of every hidden weight matrix
  (the lecture's figure: per-layer Var(W) after vs at initialization), ``[networks, depth]``;
* ``relative_change``: ``‖W_T − W_0‖_F / ‖W_0‖_F`` per hidden layer;
* ``act_norms_init``, ``act_norms_final``: mean ‖h_i‖₂ of every hidden layer on a fixed probe
  batch (the first 256 training images);
* ``tracked_norms``: mean ‖h_i‖₂ of layers ``track_layers`` on the training batch, every
  ``track_every`` steps (``tracked_steps``);
* ``loss_curve``: the training loss averaged over consecutive windows of ``loss_every`` steps
  (``loss_steps``: the last step of each window);
* a checkpoint after ``checkpoint_step`` steps (the length of the notebook's live demo):
  ``checkpoint_error`` (full test set), ``checkpoint_change`` (relative change per layer) and
  ``checkpoint_act_norms`` (probe profile);
* ``update_cosine``: the cosine between ``W_0`` and the update ``W_T − W_0`` per hidden layer
  (``‖W_T‖²/‖W_0‖² − 1 = 2 r cos + r²``, with ``r`` the relative change);
* ``random_act_norms`` ``[random_draws, networks, depth]``: the probe profile of ``W_0`` plus a
  *random* change of the same size as the training's in every layer (Gaussian, scaled to
  ``‖W_T − W_0‖_F`` layer by layer): does a change of that size alone move the deep norms?

A second, smaller part asks why the weights move so little (lazy training): MLPs of
``sweep_depth`` hidden layers and widths ``sweep_widths`` (the same family, c = 2, seeds
``seeds``) trained with plain SGD at ``sweep_lr`` (batch ``batch_size``, the batch order of
``data_seed``) until the training loss, averaged over the last ``sweep_window`` steps, is below
``sweep_target`` (at most ``sweep_max_steps`` steps):

* ``sweep_widths`` ``[W]``; ``sweep_steps`` ``[W, seeds]``: the step at which each network reached
  the target (``-1``: never); ``sweep_change`` ``[W, seeds, sweep_depth]``: its relative change
  ``‖W − W_0‖_F / ‖W_0‖_F`` per hidden layer at that step (``nan``: never).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

import studies
from helpers.data import load_mnist
from helpers.training import single_thread
from studies._batched_mlp import (
    BatchedMLP,
    activation_norms,
    batched_error,
    relative_change,
    train_batched,
    weight_variances,
    window_means,
)


@dataclass(frozen=True)
class Config:
    """What the study trains and measures."""

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    gains: tuple[float, ...] = (1.7, 2.0, 2.3)
    depth: int = 50
    width: int = 100
    lr: float = 0.002
    batch_size: int = 32
    epochs: int = 5
    """Passes over the training images (1,875 steps each at batch 32)."""
    data_seed: int = 0
    """Seed of the batch order (the same for every network)."""
    train_images: int = 60000
    test_images: int = 10000
    probe_images: int = 256
    checkpoint_step: int = 500
    track_layers: tuple[int, ...] = (1, 10, 25, 50)
    track_every: int = 25
    loss_every: int = 25
    random_draws: int = 3
    """Random changes of the training's size per network (``random_act_norms``)."""
    random_seed: int = 0
    sweep_widths: tuple[int, ...] = (50, 100, 200, 400, 800)
    sweep_depth: int = 5
    sweep_lr: float = 0.01
    sweep_target: float = 0.5
    sweep_window: int = 50
    sweep_max_steps: int = 3000


FULL = Config()
QUICK = Config(seeds=(0, 1), depth=4, width=16, epochs=2, train_images=640, test_images=200, probe_images=32,
               checkpoint_step=10, track_layers=(1, 4), track_every=5, loss_every=5, random_draws=2,
               sweep_widths=(8, 16), sweep_depth=2, sweep_lr=0.05, sweep_target=2.2, sweep_window=5,
               sweep_max_steps=60)


def _check(config: Config) -> None:
    steps = config.epochs * (config.train_images // config.batch_size)
    if not 1 <= config.checkpoint_step <= steps:
        raise ValueError(f"config.checkpoint_step must be in [1, {steps}] (the steps of the run), "
                         f"got {config.checkpoint_step}")
    if any(not 1 <= layer <= config.depth for layer in config.track_layers):
        raise ValueError(f"config.track_layers must be hidden layers in [1, {config.depth}], "
                         f"got {config.track_layers}")
    if not 1 <= config.sweep_window <= config.sweep_max_steps:
        raise ValueError(f"config.sweep_window must be in [1, sweep_max_steps = {config.sweep_max_steps}], "
                         f"got {config.sweep_window}")


def update_cosine(model: BatchedMLP, initial: list[torch.Tensor]) -> np.ndarray:
    """``⟨W_0, W − W_0⟩ / (‖W_0‖_F ‖W − W_0‖_F)`` per member and hidden layer, ``[S, depth]``."""
    rows = []
    for w, w0 in zip(model.hidden_weights(), initial, strict=True):
        a, d = w0.double().flatten(1), (w.double() - w0.double()).flatten(1)
        rows.append(((a * d).sum(dim=1) / (a.norm(dim=1) * d.norm(dim=1))).numpy())
    return np.stack(rows, axis=1)


@torch.no_grad()
def random_change_norms(model: BatchedMLP, initial: list[torch.Tensor], probe: torch.Tensor, draws: int,
                        seed: int) -> np.ndarray:
    """The probe profile (mean ‖h_i‖₂) of ``W_0 + R`` for ``draws`` random changes ``R``, each layer's
    Gaussian and scaled to that layer's ``‖W − W_0‖_F``, ``[draws, S, depth]``; ``model`` is left as it was."""
    generator = torch.Generator().manual_seed(seed)
    trained = [w.clone() for w in model.hidden_weights()]
    out = []
    for _ in range(draws):
        for p, w, w0 in zip(model.weights, trained, initial, strict=False):   # the hidden layers only
            noise = torch.randn(w0.shape, generator=generator, dtype=torch.float64)
            size = (w.double() - w0.double()).flatten(1).norm(dim=1) / noise.flatten(1).norm(dim=1)
            p.copy_((w0.double() + noise * size.view(-1, 1, 1)).float())
        out.append(activation_norms(model, probe))
    for p, w in zip(model.weights, trained, strict=False):
        p.copy_(w)
    return np.stack(out)


def width_sweep(config: Config, x: torch.Tensor, y: torch.Tensor) -> dict[str, np.ndarray]:
    """The lazy-training part of the study (the module docstring): for each width, all seeds at
    once, plain SGD until every network's windowed loss is below the target."""
    n_seed, depth = len(config.seeds), config.sweep_depth
    steps_to = np.full((len(config.sweep_widths), n_seed), -1)
    change = np.full((len(config.sweep_widths), n_seed, depth), np.nan)
    per_epoch = x.shape[0] // config.batch_size
    for k, width in enumerate(config.sweep_widths):
        model = BatchedMLP([2.0] * n_seed, config.seeds, depth=depth, width=width)
        initial = [w.clone() for w in model.hidden_weights()]
        params = list(model.parameters())
        generator = torch.Generator().manual_seed(config.data_seed)
        losses: list[np.ndarray] = []
        bar = tqdm(total=config.sweep_max_steps, desc=f"width {width}", mininterval=1.0,
                   bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} steps")
        with single_thread():
            for step in range(config.sweep_max_steps):
                if step % per_epoch == 0:
                    order = torch.randperm(x.shape[0], generator=generator)
                start = (step % per_epoch) * config.batch_size
                index = order[start:start + config.batch_size]
                logits = model(x[index])
                each = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[index].repeat(n_seed),
                                       reduction="none").reshape(n_seed, -1).mean(dim=1)
                grads = torch.autograd.grad(each.sum(), params)
                with torch.no_grad():
                    for p, g in zip(params, grads, strict=True):
                        p.sub_(config.sweep_lr * g)
                losses.append(each.detach().double().numpy())
                bar.update(1)
                if len(losses) >= config.sweep_window:
                    reached = (np.mean(losses[-config.sweep_window:], axis=0) < config.sweep_target)
                    new = reached & (steps_to[k] < 0)
                    if new.any():
                        change[k, new] = relative_change(model, initial)[new]
                        steps_to[k, new] = step + 1
                    if (steps_to[k] >= 0).all():
                        break
        bar.close()
    return {"sweep_widths": np.asarray(config.sweep_widths), "sweep_steps": steps_to, "sweep_change": change}


def run(config: Config, device: str = "cpu") -> dict[str, np.ndarray]:
    """Train the 15 networks and measure them (the module docstring)."""
    del device  # one-thread CPU batched products; a GPU would not change the measured numbers' meaning
    _check(config)
    x, y = load_mnist("train", limit=config.train_images)
    x_test, y_test = load_mnist("test", limit=config.test_images)
    probe = x[:config.probe_images]
    gains = [c for c in config.gains for _ in config.seeds]
    seeds = [s for _ in config.gains for s in config.seeds]
    model = BatchedMLP(gains, seeds, depth=config.depth, width=config.width)
    initial = [w.clone() for w in model.hidden_weights()]
    per_epoch = config.train_images // config.batch_size
    steps = config.epochs * per_epoch
    out: dict[str, np.ndarray] = {
        "gains": np.asarray(gains), "seeds": np.asarray(seeds),
        "weight_var_init": weight_variances(model), "act_norms_init": activation_norms(model, probe),
        "test_error_init": batched_error(model, x_test, y_test),
    }
    epoch_errors: list[np.ndarray] = []

    def on_step(n: int) -> None:
        if n == config.checkpoint_step:
            out["checkpoint_error"] = batched_error(model, x_test, y_test)
            out["checkpoint_change"] = relative_change(model, initial)
            out["checkpoint_act_norms"] = activation_norms(model, probe)
        if n % per_epoch == 0:
            epoch_errors.append(batched_error(model, x_test, y_test))

    trained = train_batched(model, x, y, lr=config.lr, steps=steps, batch_size=config.batch_size,
                            seed=config.data_seed, track_layers=config.track_layers,
                            track_every=config.track_every, on_step=on_step, desc="weights_move")
    out |= {
        "test_error_epoch": np.stack(epoch_errors), "test_error_final": epoch_errors[-1],
        "weight_var_final": weight_variances(model), "relative_change": relative_change(model, initial),
        "act_norms_final": activation_norms(model, probe),
        "update_cosine": update_cosine(model, initial),
        "random_act_norms": random_change_norms(model, initial, probe, config.random_draws, config.random_seed),
        "tracked_layers": np.asarray(config.track_layers), "tracked_steps": trained.tracked_steps,
        "tracked_norms": trained.tracked_norms,
        "loss_steps": np.arange(1, steps // config.loss_every + 1) * config.loss_every,
        "loss_curve": window_means(trained.losses, config.loss_every),
    }
    out |= width_sweep(config, x, y)
    return {key: value.astype(np.float32) if value.dtype == np.float64 and key != "gains" else value
            for key, value in out.items()}


def claims(results: studies.Results) -> list[studies.Claim]:
    """The claims notebook 02 makes about the study (sections 2 and 3)."""
    import numpy as np

    from studies import Claim

    gains = results["gains"]
    i17, i2, i23 = (np.flatnonzero(np.isclose(gains, c)) for c in (1.7, 2.0, 2.3))
    learned = np.r_[i2, i23]
    err, err500 = results["test_error_final"], results["checkpoint_error"]
    ratio = results["weight_var_final"] / results["weight_var_init"]
    change, change500 = results["relative_change"], results["checkpoint_change"]
    act0, act500, act = (results[k][:, -1] for k in ("act_norms_init", "checkpoint_act_norms", "act_norms_final"))
    tracked = results["tracked_norms"]
    drift = tracked[-4:].mean(axis=0) / tracked[:4].mean(axis=0)      # [networks, tracked layers]
    cosine = results["update_cosine"]
    cross = 2 * cosine / change                  # the cross term 2⟨W_0, ΔW⟩/‖W_0‖² in units of r² = (‖ΔW‖/‖W_0‖)²
    deep_cross = np.median(cross[:, 1:], axis=1)                       # each network's median layer 2–50
    random50 = results["random_act_norms"][:, :, -1] / act0            # [draws, networks]
    sweep = results["sweep_change"]                                    # [widths, seeds, layers]
    sweep_deep = np.median(sweep[:, :, 1:], axis=2)
    log_width = np.log(results["sweep_widths"].astype(np.float64))
    slope = np.array([np.polyfit(log_width, np.log(sweep_deep[:, k]), 1)[0] for k in range(sweep.shape[1])])
    slope1 = np.array([np.polyfit(log_width, np.log(sweep[:, k, 0]), 1)[0] for k in range(sweep.shape[1])])
    return [
        Claim("at initialization every network guesses: test error within 5 points of 90 % (points, worst)",
              100 * np.abs(results["test_error_init"] - 0.9).max(), None, 5, fmt=".1f"),
        Claim("c = 2: test error ≤ 10 % after 5 epochs, every seed (%, worst seed)", 100 * err[i2].max(), None, 10,
              fmt=".1f"),
        Claim("c = 2.3: test error ≤ 10 % after 5 epochs, every seed (%, worst seed)", 100 * err[i23].max(), None, 10,
              fmt=".1f"),
        Claim("c = 2 and 2.3: test error 6–8 % after 5 epochs, every seed (%, best seed)", 100 * err[learned].min(),
              6, 8, fmt=".1f"),
        Claim("c = 2 and 2.3: ... (%, worst seed)", 100 * err[learned].max(), 6, 8, fmt=".1f"),
        Claim("after 3 epochs a c = 2.3 seed was still above 10 % (%, worst c = 2.3 seed)",
              100 * results["test_error_epoch"][2, i23].max(), 10, None, fmt=".1f"),
        Claim("c = 2 and 2.3 leave the uniform guess in the first epoch: error < 60 % after it, every seed (%)",
              100 * results["test_error_epoch"][0, learned].max(), None, 60, fmt=".0f"),
        Claim("... but after 500 steps every c = 2 or 2.3 seed is still above 50 % (%, best seed)",
              100 * err500[learned].min(), 50, None, fmt=".0f"),
        Claim("c = 1.7: seeds still at chance after 5 epochs (error ≥ 85 %)", (err[i17] >= 0.85).sum(), 2, 2,
              fmt=".0f"),
        Claim("c = 1.7: even its best seed is > 2× worse than the worst c = 2 or 2.3 seed",
              err[i17].min() / err[learned].max(), 2, None, fmt=".1f"),
        Claim("c = 1.7's layer-50 signal at init is > 20× weaker than c = 2's (medians)",
              np.median(act0[i2]) / np.median(act0[i17]), 20, None, fmt=".0f"),
        Claim("hidden Var(W) at init within 5 % of c/n, every layer 2–50 and network (%)",
              100 * np.abs(results["weight_var_init"][:, 1:] / (gains[:, None] / 100) - 1).max(), None, 5,
              fmt=".1f"),
        Claim("Var(W) after / at init within 1.5 % of 1, every layer of all 15 networks (%)",
              100 * np.abs(ratio - 1).max(), None, 1.5, fmt=".2f"),
        Claim("Var(W) after / at init within 0.4 % of 1 for layers 2–50 (%)", 100 * np.abs(ratio[:, 1:] - 1).max(),
              None, 0.4, fmt=".2f"),
        Claim("c = 2, 2.3: each network's median relative change over its layers 1–3 % (%, smallest)",
              100 * np.median(change[learned], axis=1).min(), 1, 3, fmt=".1f"),
        Claim("c = 2, 2.3: ... (%, largest)", 100 * np.median(change[learned], axis=1).max(), 1, 3, fmt=".1f"),
        Claim("c = 2, 2.3: layers 2–50 moved by at most 10 % (%, largest)", 100 * change[learned, 1:].max(),
              None, 10, fmt=".0f"),
        Claim("c = 2, 2.3: layer 1 moved most, 15–20 % (%, smallest)", 100 * change[learned, 0].min(), 15, 20,
              fmt=".0f"),
        Claim("c = 2, 2.3: ... (%, largest)", 100 * change[learned, 0].max(), 15, 20, fmt=".0f"),
        Claim("c = 2: layer 1's variance change is 0.35–0.5 r², every seed (exercise 3; smallest)",
              ((ratio[i2, 0] - 1) / change[i2, 0] ** 2).min(), 0.35, 0.5, fmt=".2f"),
        Claim("c = 2: ... (largest)", ((ratio[i2, 0] - 1) / change[i2, 0] ** 2).max(), 0.35, 0.5, fmt=".2f"),
        Claim("c = 2, 2.3: the median relative change grew > 2× from step 500 to the end (median over networks)",
              np.median(np.median(change[learned], axis=1) / np.median(change500[learned], axis=1)), 2, None,
              fmt=".1f"),
        Claim("c = 2: layer-50 norm grew > 5× by the end, every seed", (act[i2] / act0[i2]).min(), 5, None,
              fmt=".1f"),
        Claim("c = 2: ... > 20× in the median", np.median(act[i2] / act0[i2]), 20, None, fmt=".0f"),
        Claim("c = 2.3: layer-50 norm below its init after 500 steps, every seed", (act500[i23] / act0[i23]).max(),
              None, 1, fmt=".2f"),
        Claim("c = 2, 2.3: layer-50 norms spread > 600× at init (largest / smallest)",
              act0[learned].max() / act0[learned].min(), 600, None, fmt=".0f"),
        Claim("c = 2, 2.3: layer-50 norms within 1.5× of each other at the end",
              act[learned].max() / act[learned].min(), None, 1.5, fmt=".2f"),
        Claim("c = 2: layer 1 drifts < 2× during training, layer 50 > 10× (median over seeds, layer 1)",
              np.median(drift[i2, 0]), None, 2, fmt=".1f"),
        Claim("c = 2: ... (layer 50)", np.median(drift[i2, -1]), 10, None, fmt=".0f"),
        Claim("c = 2.3: layer 50 drops > 2.5× within the first 200 steps, every seed (largest min / start)",
              (tracked[results["tracked_steps"] <= 200][:, i23, -1].min(axis=0) / tracked[0, i23, -1]).max(),
              None, 1 / 2.5, fmt=".2f"),
        Claim("the update is nearly orthogonal to W_0: cos(W_0, W_T − W_0) within ±0.1, every layer of all 15 networks",
              np.abs(cosine).max(), None, 0.1, fmt=".3f"),
        Claim("c = 2, 2.3, layer 1: the cross term is −0.65 to −0.5 r², every seed (most negative)",
              cross[learned, 0].min(), -0.65, -0.5, fmt=".2f"),
        Claim("c = 2, 2.3, layer 1: ... (least negative)", cross[learned, 0].max(), -0.65, -0.5, fmt=".2f"),
        Claim("c = 2, 2.3, layers 2–50: the cross term outweighs r², 1–5× in each network's median layer (smallest)",
              np.abs(deep_cross[learned]).min(), 1, 5, fmt=".1f"),
        Claim("c = 2, 2.3, layers 2–50: ... (largest)", np.abs(deep_cross[learned]).max(), 1, 5, fmt=".1f"),
        Claim("c = 1.7, layers 2–50: the cross term is 5–40 r² in each network's median layer (smallest)",
              deep_cross[i17].min(), 5, 40, fmt=".1f"),
        Claim("c = 1.7, layers 2–50: ... (largest)", deep_cross[i17].max(), 5, 40, fmt=".1f"),
        Claim("c = 1.7 and 2: the cross term is positive (weights grow) in ≥ 95 % of layers 2–50",
              (cross[np.r_[i17, i2], 1:] > 0).mean(), 0.95, None, fmt=".2f"),
        Claim("c = 2.3: the cross term is negative (weights shrink) in every layer 2–50 (share positive)",
              (cross[i23, 1:] > 0).mean(), None, 0, fmt=".2f"),
        Claim("a random change of the training's size moves layer 50 by at most ×1.25 either way (every network, draw)",
              np.maximum(random50, 1 / random50).max(), None, 1.25, fmt=".2f"),
        Claim("c = 2: the training's change moves layer 50 > 5× further than any random change of its size "
              "(smallest trained / largest random)", (act[i2] / act0[i2]).min() / random50[:, i2].max(), 5, None,
              fmt=".1f"),
        Claim("width sweep: every network reached the loss target (most steps taken)", results["sweep_steps"].max(),
              1, results.config["sweep_max_steps"] - 1, fmt=".0f"),
        Claim("width sweep: wider reaches the target sooner, width 800 before width 50 on every seed "
              "(steps 800 − steps 50, largest)",
              (results["sweep_steps"][-1] - results["sweep_steps"][0]).max(), None, -1, fmt=".0f"),
        Claim("width sweep: layers 2–5 move ∝ width^(−0.4 to −0.6), every seed (log-log slope, steepest)",
              slope.min(), -0.6, -0.4, fmt=".2f"),
        Claim("width sweep: ... (log-log slope, flattest)", slope.max(), -0.6, -0.4, fmt=".2f"),
        Claim("width sweep: 16× wider, layers 2–5 move 3.5–4.5× less, every seed (smallest factor)",
              (sweep_deep[0] / sweep_deep[-1]).min(), 3.5, 4.5, fmt=".2f"),
        Claim("width sweep: ... (largest factor)", (sweep_deep[0] / sweep_deep[-1]).max(), 3.5, 4.5, fmt=".2f"),
        Claim("width sweep: layer 1 falls faster, log-log slope ≤ −0.6 on every seed (flattest)", slope1.max(),
              None, -0.6, fmt=".2f"),
    ]


STUDY = studies.Study(
    name="weights_move",
    title="50-layer ReLU MLPs (c = 1.7, 2, 2.3; 5 seeds) trained on MNIST with plain SGD: "
          "how far weights, variances and activation norms move",
    notebook="02_norm_drift",
    full=FULL, quick=QUICK, run=run, claims=claims, module=__name__,
)
