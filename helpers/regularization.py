"""Weight decay and dropout, and how they meet normalization layers (notebook 07).

Compute only (numbers, tensors, small models); the figures are in
:mod:`helpers.plots.regularization`, the sliders in :mod:`helpers.widgets.regularization`.

* the update rules: one SGD step with L2 in the gradient or with decoupled decay
  (:func:`sgd_l2_step`, :func:`sgd_decay_step`, the same for SGD), one Adam step with L2 in the
  gradient (:func:`adam_l2_step`, what ``torch.optim.Adam(weight_decay=λ)`` does) or with
  decoupled weight decay (:func:`adamw_step`, ``torch.optim.AdamW``; Loshchilov & Hutter 2019);
* scale invariance: a linear layer followed by BatchNorm computes the same function for any
  scale of its weights (:func:`bn_mlp`, :func:`scaled_output_change`), its gradient shrinks as
  ``1/‖W‖`` (:func:`gradient_norm`), so a step moves the direction by ``≈ η/‖W‖²``
  and plain SGD with decay settles where one step turns ``W`` by
  ``√(2ηλ)`` radians (:func:`equilibrium_angle`);
* dropout: inverted dropout (:func:`inverted_dropout`) keeps every unit's mean and raises the
  variance; :func:`variance_shift` measures the train/eval shift a following BatchNorm sees;
* :func:`paired_difference`: a seed-paired difference with a 95 % t-interval, and
  :func:`live_norm_run`, the notebook's short training of a BatchNorm MLP.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from helpers.training import single_thread
from helpers.validation import check_int, check_positive, check_probability, check_real, check_tensor

__all__ = [
    "AdamState", "PairedDifference", "SETTINGS", "VarianceShift", "adam_l2_step", "adamw_step", "best_settings",
    "bn_mlp", "by_setting",
    "equilibrium_angle", "gradient_norm", "inverted_dropout", "live_norm_run",
    "paired_difference", "scaled_output_change", "sgd_decay_step", "sgd_l2_step",
    "variance_shift",
]

#: Adam's default coefficients (Kingma & Ba 2015; PyTorch's defaults).
BETAS, ADAM_EPS = (0.9, 0.999), 1e-8

#: Two-sided 95 % quantiles of Student's t for 1–30 degrees of freedom.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042)


# -- the update rules ---------------------------------------------------------------------------
def _same_shape(w: object, grad: object) -> tuple[torch.Tensor, torch.Tensor]:
    w_t = check_tensor("w", w)
    g_t = check_tensor("grad", grad)
    if w_t.shape != g_t.shape:
        raise ValueError(f"w and grad must have the same shape, got {tuple(w_t.shape)} and {tuple(g_t.shape)}")
    return w_t, g_t


def sgd_l2_step(w: torch.Tensor, grad: torch.Tensor, lr: float, lam: float) -> torch.Tensor:
    """One SGD step on ``loss + λ/2·‖w‖²``: ``w − lr·(grad + λ·w)``.

    Raises:
        TypeError / ValueError: for tensors of different shapes, ``lr`` ≤ 0 or ``lam`` < 0.
    """
    w, grad = _same_shape(w, grad)
    lr, lam = check_positive("lr", lr), check_real("lam", lam, minimum=0.0)
    return w - lr * (grad + lam * w)


def sgd_decay_step(w: torch.Tensor, grad: torch.Tensor, lr: float, lam: float) -> torch.Tensor:
    """One SGD step with decoupled weight decay: shrink by ``(1 − lr·λ)``, then ``− lr·grad``
    (algebraically the same as :func:`sgd_l2_step`).

    Raises:
        TypeError / ValueError: as :func:`sgd_l2_step`.
    """
    w, grad = _same_shape(w, grad)
    lr, lam = check_positive("lr", lr), check_real("lam", lam, minimum=0.0)
    return w * (1 - lr * lam) - lr * grad


@dataclass(frozen=True)
class AdamState:
    """Adam's first and second moment estimates and the number of steps taken."""

    m: torch.Tensor
    v: torch.Tensor
    t: int = 0

    @classmethod
    def zeros_like(cls, w: torch.Tensor) -> AdamState:
        """The state before the first step."""
        return cls(torch.zeros_like(w), torch.zeros_like(w), 0)


def _adam_update(grad: torch.Tensor, state: AdamState, lr: float) -> tuple[torch.Tensor, AdamState]:
    """Adam's step ``lr · m̂ / (√v̂ + ε)`` for ``grad`` and the new state."""
    b1, b2 = BETAS
    t = state.t + 1
    m = b1 * state.m + (1 - b1) * grad
    v = b2 * state.v + (1 - b2) * grad * grad
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    return lr * m_hat / (v_hat.sqrt() + ADAM_EPS), AdamState(m, v, t)


def _check_adam(w: object, grad: object, state: object, lr: object, lam: object
                ) -> tuple[torch.Tensor, torch.Tensor, AdamState, float, float]:
    w_t, g_t = _same_shape(w, grad)
    if not isinstance(state, AdamState):
        raise TypeError(f"state must be an AdamState, got {type(state).__name__}")
    return w_t, g_t, state, check_positive("lr", lr), check_real("lam", lam, minimum=0.0)


def adam_l2_step(w: torch.Tensor, grad: torch.Tensor, state: AdamState, lr: float,
                 lam: float) -> tuple[torch.Tensor, AdamState]:
    """One Adam step on ``loss + λ/2·‖w‖²``: ``λ·w`` is added to the gradient *before* the moments,
    so it is divided by ``√v̂`` like the rest (``torch.optim.Adam(weight_decay=λ)``).

    Returns:
        The new weights and the new state.

    Raises:
        TypeError / ValueError: for tensors of different shapes, a state that is not an
            :class:`AdamState`, ``lr`` ≤ 0 or ``lam`` < 0.
    """
    w, grad, state, lr, lam = _check_adam(w, grad, state, lr, lam)
    step, new_state = _adam_update(grad + lam * w, state, lr)
    return w - step, new_state


def adamw_step(w: torch.Tensor, grad: torch.Tensor, state: AdamState, lr: float,
               lam: float) -> tuple[torch.Tensor, AdamState]:
    """One AdamW step (decoupled weight decay): shrink ``w`` by ``(1 − lr·λ)``, then take Adam's
    step on the loss gradient alone (``torch.optim.AdamW``).

    Raises:
        TypeError / ValueError: as :func:`adam_l2_step`.
    """
    w, grad, state, lr, lam = _check_adam(w, grad, state, lr, lam)
    step, new_state = _adam_update(grad, state, lr)
    return w * (1 - lr * lam) - step, new_state


# -- scale invariance ---------------------------------------------------------------------------
def bn_mlp(width: int = 64, seed: int = 0, batchnorm: bool = True) -> nn.Sequential:
    """``784 → width → width → 10``, each hidden block ``Linear → BatchNorm1d → ReLU`` (the linear
    layers before BatchNorm have no bias); ``batchnorm=False`` gives ``Linear (with bias) → ReLU``.
    Weights from ``torch.manual_seed(seed)``, PyTorch's default initialization.

    Raises:
        TypeError / ValueError: for ``width`` < 1 or ``seed`` < 0.
    """
    width = check_int("width", width, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for n_in in (784, width):
        if batchnorm:
            layers += [nn.Linear(n_in, width, bias=False), nn.BatchNorm1d(width), nn.ReLU()]
        else:
            layers += [nn.Linear(n_in, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, 10))


def _check_layer(model: object, layer: object) -> tuple[nn.Sequential, int]:
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential, got {type(model).__name__}")
    index = check_int("layer", layer, minimum=0, maximum=len(model) - 1)
    if not isinstance(model[index], nn.Linear):
        raise ValueError(f"layer must index an nn.Linear of model, got {type(model[index]).__name__} at {index}")
    return model, index


def scaled_output_change(model: nn.Sequential, x: torch.Tensor, layer: int, factor: float) -> float:
    """The largest change of ``model``'s outputs (training mode: batch statistics) on ``x`` when
    the weights of linear layer ``model[layer]`` are multiplied by ``factor``; ``model`` is left
    as it was (its running statistics included).

    Raises:
        TypeError / ValueError: for a model that is not an ``nn.Sequential``, a ``layer`` that is
            not one of its ``nn.Linear``, or ``factor`` ≤ 0.
    """
    model, index = _check_layer(model, layer)
    factor = check_positive("factor", factor)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        model.train()
        with torch.no_grad(), single_thread():
            before = model(x)
            weight = model[index].weight
            assert isinstance(weight, torch.Tensor)
            weight.mul_(factor)
            after = model(x)
    finally:
        model.load_state_dict(state)
    return float((after - before).abs().max())


def gradient_norm(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, layer: int,
                  factor: float = 1.0) -> float:
    """``‖∂loss/∂W‖`` of linear layer ``model[layer]`` (cross-entropy on ``(x, y)``, training mode)
    after its weights are multiplied by ``factor``; ``model`` is left as it was.

    Raises:
        TypeError / ValueError: as :func:`scaled_output_change`.
    """
    model, index = _check_layer(model, layer)
    factor = check_positive("factor", factor)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        model.train()
        with torch.no_grad():
            weight = model[index].weight
            assert isinstance(weight, torch.Tensor)
            weight.mul_(factor)
        with single_thread():
            loss = nn.functional.cross_entropy(model(x), y)
            (grad,) = torch.autograd.grad(loss, [weight])
    finally:
        model.load_state_dict(state)
    return float(grad.norm())


def equilibrium_angle(lr: float, lam: float) -> float:
    """``√(2·lr·λ)``: the angle (radians) one plain-SGD step turns a scale-invariant weight once its
    norm stops changing (the gradient is orthogonal to ``W``, so ``‖W‖²`` grows by ``lr²‖g‖²``
    and decay removes ``2·lr·λ·‖W‖²`` per step; equal when ``lr‖g‖/‖W‖ = √(2·lr·λ)``).

    Raises:
        TypeError / ValueError: for ``lr`` ≤ 0 or ``lam`` ≤ 0.
    """
    return math.sqrt(2 * check_positive("lr", lr) * check_positive("lam", lam))


# -- dropout ------------------------------------------------------------------------------------
def inverted_dropout(x: torch.Tensor, p: float, training: bool = True,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Inverted dropout: in training, zero each entry of ``x`` with probability ``p`` (a fresh
    draw per entry, so per example) and scale the kept ones by ``1/(1 − p)``; at evaluation,
    return ``x`` unchanged.

    Raises:
        TypeError / ValueError: for ``x`` that is not a tensor, ``p`` outside ``[0, 1)`` or a
            ``training`` that is not a bool.
    """
    x = check_tensor("x", x)
    p = check_probability("p", p)
    if p >= 1:
        raise ValueError(f"p must be < 1 (p = 1 drops everything), got {p}")
    if not isinstance(training, bool):
        raise TypeError(f"training must be a bool, got {type(training).__name__}")
    if not training or p == 0:
        return x
    keep = torch.rand(x.shape, generator=generator) >= p
    return x * keep / (1 - p)


@dataclass(frozen=True)
class VarianceShift:
    """What a layer after dropout sees in training vs evaluation (:func:`variance_shift`)."""

    p: float
    train_values: np.ndarray
    """Pre-activations of the next layer in training mode (dropout on), flattened."""
    eval_values: np.ndarray
    """The same in evaluation mode (dropout off)."""
    var_ratio: float
    """Mean over units of (variance over the batch in training) / (in evaluation)."""
    mean_shift: float
    """Largest |mean in training − mean in evaluation| over units, in units of the eval std."""
    eval_std_after_bn: float
    """The std at evaluation of a BatchNorm output whose statistics came from training mode
    (median over units): 1 without a shift."""


def variance_shift(p: float, x: torch.Tensor, width: int = 64, seed: int = 0) -> VarianceShift:
    """Inputs ``x`` (e.g. MNIST images) through ``ReLU(Linear)`` → inverted dropout(p) →
    ``Linear``: the second layer's pre-activations in training mode (one dropout mask) vs
    evaluation mode, per unit, with weights ``N(0, 2/fan_in)`` from ``seed``.

    Raises:
        TypeError / ValueError: for ``p`` outside ``[0, 1)``, a bad ``x``, ``width`` or ``seed``.
    """
    p = check_probability("p", p)
    if p >= 1:
        raise ValueError(f"p must be < 1, got {p}")
    x = check_tensor("x", x, ndim=2)
    width = check_int("width", width, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(x.shape[1], width, generator=g) * math.sqrt(2 / x.shape[1])
    w2 = torch.randn(width, width, generator=g) * math.sqrt(2 / width)
    with single_thread():
        h = (x @ w1).relu()
        z_eval = h @ w2
        z_train = inverted_dropout(h, p, training=True, generator=g) @ w2
    var_t, var_e = z_train.var(dim=0), z_eval.var(dim=0)
    shift = ((z_train.mean(dim=0) - z_eval.mean(dim=0)).abs() / var_e.sqrt()).max()
    return VarianceShift(p=p, train_values=z_train.flatten().double().numpy(),
                         eval_values=z_eval.flatten().double().numpy(),
                         var_ratio=float((var_t / var_e).mean()), mean_shift=float(shift),
                         eval_std_after_bn=float((var_e / var_t).sqrt().median()))


# -- seeds --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairedDifference:
    """``a − b`` over paired seeds: median, range, mean and a 95 % t-interval of the mean."""

    median: float
    low: float
    high: float
    mean: float
    ci_low: float
    ci_high: float
    n: int

    @property
    def excludes_zero(self) -> bool:
        """Whether the 95 % interval lies entirely on one side of 0."""
        return self.ci_low > 0 or self.ci_high < 0

    def format(self, fmt: str = ".2f", scale: float = 1.0, unit: str = "") -> str:
        """``'median m (range lo to hi), mean m, 95 % CI [a, b], n seeds'`` scaled by ``scale``."""
        v = [scale * value for value in (self.median, self.low, self.high, self.mean, self.ci_low, self.ci_high)]
        return (f"median {v[0]:+{fmt}}{unit} (range {v[1]:+{fmt}} to {v[2]:+{fmt}}), mean {v[3]:+{fmt}}{unit}, "
                f"95 % CI [{v[4]:+{fmt}}, {v[5]:+{fmt}}], {self.n} seeds")


def by_setting(values: np.ndarray, n_seeds: int) -> np.ndarray:
    """A study's per-member array (rows ``[(setting, seed) for setting … for seed …]``) as
    ``[settings, seeds, ...]``.

    Raises:
        ValueError: if the number of rows is not a multiple of ``n_seeds``.
    """
    n_seeds = check_int("n_seeds", n_seeds, minimum=1)
    array = np.asarray(values)
    if array.ndim < 1 or array.shape[0] % n_seeds:
        raise ValueError(f"values must have a multiple of n_seeds={n_seeds} rows, got shape {array.shape}")
    return array.reshape(array.shape[0] // n_seeds, n_seeds, *array.shape[1:])


#: The settings of :func:`best_settings`: label -> (study group, whether λ > 0 is used).
SETTINGS = {
    "no regularization": ("plain", False),
    "dropout (p = 0.5)": ("dropout", False),
    "weight decay": ("plain", True),
    "dropout + weight decay": ("dropout", True),
    "BatchNorm": ("bn", False),
    "BatchNorm + weight decay": ("bn", True),
    "BatchNorm + dropout": ("bn_dropout", False),
    "all three": ("bn_dropout", True),
}


def best_settings(arrays: Mapping[str, np.ndarray], n_seeds: int
                  ) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """For each setting of :data:`SETTINGS`, the training and test errors over seeds and the λ they
    were measured at: λ = 0, or (for "+ weight decay") the λ > 0 of the study's grid ``arrays["lams"]``
    with the lowest median test error (chosen on the test set, so slightly optimistic).

    Raises:
        KeyError: if ``arrays`` lacks one of the study's arrays.
        ValueError: for a bad ``n_seeds``.
    """
    lams = [float(v) for v in arrays["lams"]]
    out: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
    for label, (group, decayed) in SETTINGS.items():
        train = by_setting(arrays[f"{group}_train_error"], n_seeds)
        test = by_setting(arrays[f"{group}_test_error"], n_seeds)
        candidates = [k for k, lam in enumerate(lams) if (lam > 0) == decayed]
        k = min(candidates, key=lambda i: float(np.median(test[i])))
        out[label] = (train[k], test[k], lams[k])
    return out


def paired_difference(a: np.ndarray, b: np.ndarray, min_seeds: int = 5) -> PairedDifference:
    """The per-seed differences ``a − b`` (same seeds, same order) summarised, with the 95 %
    Student-t interval of their mean.

    Raises:
        ValueError: for arrays of different lengths, fewer than ``min_seeds`` (≥ 2) seeds, more
            than 31, or NaN.
    """
    a_, b_ = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    min_seeds = check_int("min_seeds", min_seeds, minimum=2)
    if a_.shape != b_.shape:
        raise ValueError(f"a and b must hold one value per seed each, got {a_.size} and {b_.size}")
    if not min_seeds <= a_.size <= len(_T95) + 1:
        raise ValueError(f"a and b must hold {min_seeds} to {len(_T95) + 1} seeds, got {a_.size}")
    if np.isnan(a_).any() or np.isnan(b_).any():
        raise ValueError("a and b must not contain NaN")
    d = a_ - b_
    half = _T95[d.size - 2] * d.std(ddof=1) / math.sqrt(d.size)
    return PairedDifference(float(np.median(d)), float(d.min()), float(d.max()), float(d.mean()),
                            float(d.mean() - half), float(d.mean() + half), int(d.size))


# -- the live demo ------------------------------------------------------------------------------
def live_norm_run(x: torch.Tensor, y: torch.Tensor, lam: float, *, seed: int = 0, steps: int = 300,
                  lr: float = 0.1, batch_size: int = 50, width: int = 64, every: int = 25) -> np.ndarray:
    """Train :func:`bn_mlp` with ``torch.optim.SGD(lr, weight_decay=λ on the linear weights only)``
    on ``(x, y)`` and return ``‖W_1‖_F`` every ``every`` steps (step 0 included).

    Raises:
        TypeError / ValueError: for ``lam`` < 0 or a bad ``seed``, ``steps``, ``lr``, ``batch_size``,
            ``width`` or ``every``.
    """
    lam = check_real("lam", lam, minimum=0.0)
    steps, every = check_int("steps", steps, minimum=1), check_int("every", every, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1, maximum=x.shape[0])
    model = bn_mlp(width, seed)
    weights = [m.weight for m in model if isinstance(m, nn.Linear)]
    others = [p for p in model.parameters() if all(p is not w for w in weights)]
    opt = torch.optim.SGD([{"params": weights, "weight_decay": lam}, {"params": others, "weight_decay": 0.0}],
                          lr=check_positive("lr", lr))
    generator = torch.Generator().manual_seed(seed)
    norms = []
    with single_thread():
        for step in range(steps + 1):
            if step % every == 0:
                norms.append(float(weights[0].detach().norm()))
            if step == steps:
                break
            index = torch.randint(0, x.shape[0], (batch_size,), generator=generator)
            loss = nn.functional.cross_entropy(model(x[index]), y[index])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return np.asarray(norms)

