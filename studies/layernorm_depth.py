"""Study ``layernorm_depth`` (notebook 02 §4): does a LayerNorm after every layer keep a plain
deep MLP from training, or is it the depth?

The MLP of notebook 02 (bias-free ``Linear → ReLU`` blocks, width 100, ``W ~ N(0, 2/n_in)``)
at depths 10, 20 and 50, and at depth 50 with a residual connection around blocks 2..50
(``h ← h + block(h)``), each **with** a LayerNorm (no affine parameters) at the end of every
hidden block and **without** one (the control), trained with plain SGD (batch 32, no
momentum, the same batch order for every network) for ``steps`` steps at every learning rate
of ``lrs``, five weight seeds each.  All seeds and rates of one (architecture,
normalization) are trained at once (:class:`studies._batched_mlp.BatchedMLP`).

Arrays (``A`` architectures, ``N`` normalizations, ``L`` rates, ``S`` seeds):

* ``depths``, ``residual`` ``[A]``; ``norms`` ``[N]`` (``"layernorm"``, ``"none"``); ``lrs`` ``[L]``; ``seeds`` ``[S]``;
* ``final_loss`` ``[A, N, L, S]``: training loss averaged over the last ``final_window`` steps
  (``nan`` if the run diverged: a non-finite loss);
* ``test_error`` ``[A, N, L, S]``: error on the first ``test_images`` test images after training
  (``nan`` if the run diverged);
* ``loss_curve`` ``[A, N, points, L, S]``: the training loss averaged over consecutive windows
  of ``loss_every`` steps (``loss_steps``: the last step of each window).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import studies
from helpers.data import load_mnist
from studies._batched_mlp import BatchedMLP, batched_error, train_batched, window_means


@dataclass(frozen=True)
class Config:
    """What the study trains and measures."""

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    depths: tuple[int, ...] = (10, 20, 50, 50)
    residual: tuple[bool, ...] = (False, False, False, True)
    norms: tuple[str, ...] = ("layernorm", "none")
    lrs: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1)
    gain: float = 2.0
    width: int = 100
    batch_size: int = 32
    steps: int = 500
    data_seed: int = 0
    train_images: int = 60000
    test_images: int = 2000
    final_window: int = 50
    loss_every: int = 10


FULL = Config()
QUICK = Config(seeds=(0, 1), depths=(2, 3, 3), residual=(False, False, True), lrs=(0.01, 0.1), width=16,
               steps=20, train_images=640, test_images=100, final_window=5, loss_every=5)


def _check(config: Config) -> None:
    if len(config.depths) != len(config.residual):
        raise ValueError(f"config.depths and config.residual must be of equal length, got "
                         f"{len(config.depths)} and {len(config.residual)}")
    if not 1 <= config.final_window <= config.steps or not 1 <= config.loss_every <= config.steps:
        raise ValueError(f"config.final_window and config.loss_every must be in [1, steps = {config.steps}], "
                         f"got {config.final_window} and {config.loss_every}")


def run(config: Config, device: str = "cpu") -> dict[str, np.ndarray]:
    """Train every (architecture, normalization, rate, seed) network (the module docstring)."""
    del device  # one-thread CPU batched products
    _check(config)
    x, y = load_mnist("train", limit=config.train_images)
    x_test, y_test = load_mnist("test", limit=config.test_images)
    n_lr, n_seed = len(config.lrs), len(config.seeds)
    shape = (len(config.depths), len(config.norms), n_lr, n_seed)
    final_loss, test_error = np.full(shape, np.nan), np.full(shape, np.nan)
    curves = []
    for a, (depth, residual) in enumerate(zip(config.depths, config.residual, strict=True)):
        per_norm = []
        for n, norm in enumerate(config.norms):
            model = BatchedMLP([config.gain] * (n_lr * n_seed), list(config.seeds) * n_lr, depth=depth,
                               width=config.width, norm=norm, residual=residual)
            trained = train_batched(model, x, y, lr=[lr for lr in config.lrs for _ in config.seeds],
                                    steps=config.steps, batch_size=config.batch_size, seed=config.data_seed,
                                    desc=f"depth {depth}{' + residual' if residual else ''}, {norm}")
            diverged = ~np.isfinite(trained.losses).all(axis=0)
            final = trained.losses[-config.final_window:].mean(axis=0)
            error = batched_error(model, x_test, y_test)
            final_loss[a, n] = np.where(diverged, np.nan, final).reshape(n_lr, n_seed)
            test_error[a, n] = np.where(diverged, np.nan, error).reshape(n_lr, n_seed)
            per_norm.append(window_means(trained.losses, config.loss_every).reshape(-1, n_lr, n_seed))
        curves.append(np.stack(per_norm))
    return {
        "depths": np.asarray(config.depths), "residual": np.asarray(config.residual),
        "norms": np.asarray(config.norms), "lrs": np.asarray(config.lrs), "seeds": np.asarray(config.seeds),
        "final_loss": final_loss.astype(np.float32), "test_error": test_error.astype(np.float32),
        "loss_curve": np.stack(curves).astype(np.float32),
        "loss_steps": np.arange(1, config.steps // config.loss_every + 1) * config.loss_every,
    }


def claims(results: studies.Results) -> list[studies.Claim]:
    """The claims notebook 02 makes about the study (section 4)."""
    return []


STUDY = studies.Study(
    name="layernorm_depth",
    title="Plain ReLU MLPs with and without LayerNorm at depths 10, 20, 50 and 50 + residual, "
          "over a learning-rate sweep (5 seeds)",
    notebook="02_norm_drift",
    full=FULL, quick=QUICK, run=run, claims=claims, module=__name__,
)
