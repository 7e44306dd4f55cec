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
  of ``loss_every`` steps (``loss_steps``: the last step of each window);
* ``similarity_init`` ``[A, N, S]`` and ``similarity_final`` ``[A, N, L, S]``: does the last hidden
  layer still carry the input's similarity structure?  The Pearson correlation, over the pairs
  of a fixed probe batch (the first ``probe_images`` training images), between the pairwise
  cosine similarities of the input images and those of the layer-``depth`` representations
  (:func:`similarity_kept`), at initialization and after training (``nan`` if the run diverged).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

import studies
from helpers.data import load_mnist
from helpers.training import single_thread
from studies._batched_mlp import BatchedMLP, batched_error, train_batched, window_means


def _cosines(h: torch.Tensor) -> torch.Tensor:
    """The cosine similarity of every pair ``i < j`` of rows of ``h`` (``[..., B, d]`` → ``[..., B(B−1)/2]``)."""
    h = h.double()
    unit = h / h.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    gram = unit @ unit.transpose(-1, -2)
    i, j = torch.triu_indices(h.shape[-2], h.shape[-2], 1)
    return gram[..., i, j]


@torch.no_grad()
def similarity_kept(model: BatchedMLP, probe: torch.Tensor) -> np.ndarray:
    """For every member of ``model``: the Pearson correlation between the pairwise cosine
    similarities of the ``probe`` inputs and those of their last-hidden-layer representations,
    ``[S]`` (≈ 1: the layer keeps the input's similarity structure; ≈ 0: it has lost it;
    ``nan`` for a member whose representations are not finite)."""
    with single_thread():
        target = _cosines(probe)
        out = _cosines(model.hidden(probe)[-1])
    a = target - target.mean()
    b = out - out.mean(dim=-1, keepdim=True)
    corr = (b @ a) / (a.norm() * b.norm(dim=-1))
    return corr.numpy()


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
    probe_images: int = 256


FULL = Config()
QUICK = Config(seeds=(0, 1), depths=(2, 3, 3), residual=(False, False, True), lrs=(0.01, 0.1), width=16,
               steps=20, train_images=640, test_images=100, final_window=5, loss_every=5, probe_images=16)


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
    probe = x[:config.probe_images]
    n_lr, n_seed = len(config.lrs), len(config.seeds)
    shape = (len(config.depths), len(config.norms), n_lr, n_seed)
    final_loss, test_error = np.full(shape, np.nan), np.full(shape, np.nan)
    kept_init, kept_final = np.full((len(config.depths), len(config.norms), n_seed), np.nan), np.full(shape, np.nan)
    curves = []
    for a, (depth, residual) in enumerate(zip(config.depths, config.residual, strict=True)):
        per_norm = []
        for n, norm in enumerate(config.norms):
            model = BatchedMLP([config.gain] * (n_lr * n_seed), list(config.seeds) * n_lr, depth=depth,
                               width=config.width, norm=norm, residual=residual)
            kept_init[a, n] = similarity_kept(model, probe)[:n_seed]    # the rates share each seed's draw
            trained = train_batched(model, x, y, lr=[lr for lr in config.lrs for _ in config.seeds],
                                    steps=config.steps, batch_size=config.batch_size, seed=config.data_seed,
                                    desc=f"depth {depth}{' + residual' if residual else ''}, {norm}")
            diverged = ~np.isfinite(trained.losses).all(axis=0)
            final = trained.losses[-config.final_window:].mean(axis=0)
            error = batched_error(model, x_test, y_test)
            final_loss[a, n] = np.where(diverged, np.nan, final).reshape(n_lr, n_seed)
            test_error[a, n] = np.where(diverged, np.nan, error).reshape(n_lr, n_seed)
            kept_final[a, n] = np.where(diverged, np.nan, similarity_kept(model, probe)).reshape(n_lr, n_seed)
            per_norm.append(window_means(trained.losses, config.loss_every).reshape(-1, n_lr, n_seed))
        curves.append(np.stack(per_norm))
    return {
        "depths": np.asarray(config.depths), "residual": np.asarray(config.residual),
        "norms": np.asarray(config.norms), "lrs": np.asarray(config.lrs), "seeds": np.asarray(config.seeds),
        "final_loss": final_loss.astype(np.float32), "test_error": test_error.astype(np.float32),
        "loss_curve": np.stack(curves).astype(np.float32),
        "similarity_init": kept_init.astype(np.float32), "similarity_final": kept_final.astype(np.float32),
        "loss_steps": np.arange(1, config.steps // config.loss_every + 1) * config.loss_every,
    }


def claims(results: studies.Results) -> list[studies.Claim]:
    """The claims notebook 02 makes about the study (section 4)."""
    import math

    import numpy as np

    from studies import Claim

    depths, residual, lrs = results["depths"], results["residual"], np.round(results["lrs"], 6)
    loss, error, curve = results["final_loss"], results["test_error"], results["loss_curve"]
    arch = {"10": 0, "20": 1, "50": 2, "50+res": 3}
    assert list(depths) == [10, 20, 50, 50] and list(residual) == [False, False, False, True]
    ln, none = 0, 1
    lr = {value: j for j, value in enumerate(lrs.tolist())}
    steps100 = int(np.flatnonzero(results["loss_steps"] == 100)[0])

    def best_median(a: int, n: int, values: np.ndarray) -> float:
        return float(np.nanmin(np.nanmedian(values[a, n], axis=-1)))

    small = [(arch[d], lr[r]) for d in ("10", "20") for r in (0.001, 0.003)]
    learning = [(arch["10"], ln), (arch["10"], none), (arch["20"], ln), (arch["20"], none), (arch["50"], none),
                (arch["50+res"], ln)]
    kept0, kept = results["similarity_init"], results["similarity_final"]
    median0 = np.median(kept0, axis=-1)                                   # [A, N]
    order_broken = sum(int(not median0[arch["10"], n] > median0[arch["20"], n] > median0[arch["50"], n])
                       for n in (ln, none))
    configs = [(a, n) for a in range(len(depths)) for n in (ln, none) if np.isfinite(loss[a, n]).any()]
    sim = np.array([median0[a, n] for a, n in configs])
    err = np.array([best_median(a, n, error) for a, n in configs])
    rank_sim, rank_err = np.argsort(np.argsort(sim)), np.argsort(np.argsort(err))
    spearman = float(np.corrcoef(rank_sim, rank_err)[0, 1])
    at_best = [kept[a, n, int(np.nanargmin(np.nanmedian(loss[a, n], axis=-1)))]
               for a, n in ((arch["10"], ln), (arch["10"], none), (arch["20"], ln), (arch["20"], none),
                            (arch["50+res"], ln))]
    best_at_edge = sum(int(np.nanargmin(np.nanmedian(loss[a, n], axis=-1))) in (0, len(lrs) - 1) for a, n in learning)
    return [
        Claim("depth 50 with LayerNorm: final loss within 0.15 of ln 10 at every rate and seed",
              np.abs(loss[arch["50"], ln] - math.log(10)).max(), None, 0.15, fmt=".2f"),
        Claim("... and test error ≥ 85 % at every rate and seed (%)", 100 * error[arch["50"], ln].min(), 85, None,
              fmt=".0f"),
        Claim("depth 50 without LayerNorm, lr 0.01: every seed's loss below 2.1 (it has started to learn)",
              loss[arch["50"], none, lr[0.01]].max(), None, 2.1, fmt=".2f"),
        Claim("depth 50 without LayerNorm: best median test error 70–80 % (%)",
              100 * best_median(arch["50"], none, error), 70, 80, fmt=".0f"),
        Claim("... but after 100 steps it looked as stuck: median loss ≥ 2.2 at every rate",
              np.nanmin(np.nanmedian(curve[arch["50"], none, steps100], axis=-1)), 2.2, None, fmt=".2f"),
        Claim("depth 50: the best no-LN median loss is > 0.3 below the best LayerNorm one",
              best_median(arch["50"], ln, loss) - best_median(arch["50"], none, loss), 0.3, None, fmt=".2f"),
        Claim("depth 10 and 20 at lr 0.001 and 0.003: every LayerNorm seed below every no-LN seed (smallest gap)",
              min(np.nanmin(loss[a, none, j]) - np.nanmax(loss[a, ln, j]) for a, j in small), 0, None, fmt=".2f"),
        Claim("depth 10, each at its best rate: LayerNorm and no LN within 2 points of test error (points)",
              100 * abs(best_median(arch["10"], ln, error) - best_median(arch["10"], none, error)), None, 2,
              fmt=".1f"),
        Claim("depth 20, each at its best rate: no LN's median test error > 5 points below LayerNorm's (points)",
              100 * (best_median(arch["20"], ln, error) - best_median(arch["20"], none, error)), 5, None, fmt=".0f"),
        Claim("depth 20 with LayerNorm at lr 0.1: stuck at ln 10 on every seed (smallest loss)",
              np.nanmin(loss[arch["20"], ln, lr[0.1]]), 2.3, None, fmt=".2f"),
        Claim("depth 50 + residual with LayerNorm: best median test error ≤ 15 % (%)",
              100 * best_median(arch["50+res"], ln, error), None, 15, fmt=".0f"),
        Claim("... within 3 points of depth 10's best (points)",
              100 * abs(best_median(arch["50+res"], ln, error) - best_median(arch["10"], ln, error)), None, 3,
              fmt=".0f"),
        Claim("depth 50 + residual without normalization: runs diverged, of 25",
              np.isnan(loss[arch["50+res"], none]).sum(), 25, 25, fmt=".0f"),
        Claim("at init, depth 50 with LayerNorm: the last layer keeps none of the input's similarity structure "
              "(correlation within ±0.05, every seed)", np.abs(kept0[arch["50"], ln]).max(), None, 0.05, fmt=".3f"),
        Claim("at init, depth 50 without normalization: close to none (within ±0.1, every seed)",
              np.abs(kept0[arch["50"], none]).max(), None, 0.1, fmt=".3f"),
        Claim("at init, depth 50 + residual with LayerNorm: 0.3–0.4, every seed (smallest)",
              kept0[arch["50+res"], ln].min(), 0.3, 0.4, fmt=".3f"),
        Claim("at init, depth 50 + residual with LayerNorm: ... (largest)", kept0[arch["50+res"], ln].max(), 0.3, 0.4,
              fmt=".3f"),
        Claim("at init, the residual network keeps > 3× more than either plain depth-50 network "
              "(smallest residual / largest plain)",
              kept0[arch["50+res"], ln].min() / kept0[arch["50"]].max(), 3, None, fmt=".1f"),
        Claim("at init, the similarity kept falls with depth 10 → 20 → 50, with and without LayerNorm "
              "(medians; orderings broken)", order_broken, None, 0, fmt=".0f"),
        Claim("at init, depth 20: LayerNorm keeps less than no LN on every seed (largest LN / smallest no-LN)",
              kept0[arch["20"], ln].max() / kept0[arch["20"], none].min(), None, 1, fmt=".2f"),
        Claim("the 7 configurations that do not diverge: more similarity kept at init, lower best test error "
              "(Spearman rank correlation)", spearman, None, -0.8, fmt=".2f"),
        Claim("after training at its best rate, every configuration that learns carries ≥ 0.3, every seed (smallest)",
              np.min(at_best), 0.3, None, fmt=".2f"),
        Claim("after training, both plain depth-50 networks carry < 0.3 at every rate and seed (largest)",
              np.nanmax(kept[arch["50"]]), None, 0.3, fmt=".2f"),
        Claim("every configuration that learns has its best rate inside the grid (best rates at an edge)",
              best_at_edge, None, 0, fmt=".0f"),
    ]


STUDY = studies.Study(
    name="layernorm_depth",
    title="Plain ReLU MLPs with and without LayerNorm at depths 10, 20, 50 and 50 + residual, "
          "over a learning-rate sweep (5 seeds)",
    notebook="02_norm_drift",
    full=FULL, quick=QUICK, run=run, claims=claims, module=__name__,
)
