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
  ``checkpoint_act_norms`` (probe profile).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import studies
from helpers.data import load_mnist
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


FULL = Config()
QUICK = Config(seeds=(0, 1), depth=4, width=16, epochs=2, train_images=640, test_images=200, probe_images=32,
               checkpoint_step=10, track_layers=(1, 4), track_every=5, loss_every=5)


def _check(config: Config) -> None:
    steps = config.epochs * (config.train_images // config.batch_size)
    if not 1 <= config.checkpoint_step <= steps:
        raise ValueError(f"config.checkpoint_step must be in [1, {steps}] (the steps of the run), "
                         f"got {config.checkpoint_step}")
    if any(not 1 <= layer <= config.depth for layer in config.track_layers):
        raise ValueError(f"config.track_layers must be hidden layers in [1, {config.depth}], "
                         f"got {config.track_layers}")


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
        "tracked_layers": np.asarray(config.track_layers), "tracked_steps": trained.tracked_steps,
        "tracked_norms": trained.tracked_norms,
        "loss_steps": np.arange(1, steps // config.loss_every + 1) * config.loss_every,
        "loss_curve": window_means(trained.losses, config.loss_every),
    }
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
        Claim("... within 0.4 % for layers 2–50 (%)", 100 * np.abs(ratio[:, 1:] - 1).max(), None, 0.4, fmt=".2f"),
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
        Claim("c = 2, 2.3: ... but within 1.5× of each other at the end", act[learned].max() / act[learned].min(),
              None, 1.5, fmt=".2f"),
        Claim("c = 2: layer 1 drifts < 2× during training, layer 50 > 10× (median over seeds, layer 1)",
              np.median(drift[i2, 0]), None, 2, fmt=".1f"),
        Claim("c = 2: ... (layer 50)", np.median(drift[i2, -1]), 10, None, fmt=".0f"),
        Claim("c = 2.3: layer 50 drops > 2.5× within the first 200 steps, every seed (largest min / start)",
              (tracked[results["tracked_steps"] <= 200][:, i23, -1].min(axis=0) / tracked[0, i23, -1]).max(),
              None, 1 / 2.5, fmt=".2f"),
    ]


STUDY = studies.Study(
    name="weights_move",
    title="50-layer ReLU MLPs (c = 1.7, 2, 2.3; 5 seeds) trained on MNIST with plain SGD: "
          "how far weights, variances and activation norms move",
    notebook="02_norm_drift",
    full=FULL, quick=QUICK, run=run, claims=claims, module=__name__,
)
