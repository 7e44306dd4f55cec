"""What theory predicts for a deep MLP at initialization (notebook 01).

The mean-field (infinite-width) recursion for the activation norms of the networks of
:mod:`helpers.initialization`: :func:`second_moment` of each activation, :func:`theory_norms`
layer by layer (any activation), :func:`relu_theory_norms` in closed form for ReLU,
:func:`fixed_point_variance` and :func:`backward_factor` (where tanh settles, and how much each
layer then multiplies the gradient by),
:func:`relu_second_moments` of the pre-activations, :func:`stable_gain` (the gain that keeps the
signal scale: Kaiming/He for ReLU, Xavier/Glorot for tanh), and :func:`finite_width_log_slope`,
the typical drift of a finite-width network away from the infinite-width line.

Measurements on real networks, to compare with these predictions, are :mod:`helpers.initialization`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from helpers.initialization import (
    ACTIVATIONS,
    IN_FEATURES,
    LEAKY_SLOPE,
    mnist_batch,
)
from helpers.validation import check_choice, check_int, check_real


def relu_second_moments(second_moment_in: float, gain: float, depth: int) -> torch.Tensor:
    """The predicted second moment ``E[z_i^2]`` of every hidden layer of a bias-free ReLU MLP.

    With ``Var(W) = gain / n_in`` a unit's pre-activation has variance ``gain * E[z_{i-1}^2]``
    (``n_in`` terms of variance ``gain / n_in`` times the input's second moment) and ReLU keeps
    half of that: ``E[z_i^2] = (gain / 2) E[z_{i-1}^2]``, so ``E[z_i^2] = m_in (gain / 2)^i``.

    Args:
        second_moment_in: ``E[x^2]`` of the input (>= 0).
        gain: the ``c`` in ``Var(W) = c / n_in`` (> 0).
        depth: number of hidden layers (>= 1).

    Returns:
        float64 tensor of shape ``(depth,)``; entry ``i - 1`` is layer ``i`` (the input is not
        an entry).

    Raises:
        TypeError / ValueError: naming the bad argument and the allowed values.
    """
    m_in = check_real("second_moment_in", second_moment_in, minimum=0.0)
    gain = check_real("gain", gain, minimum=0.0, min_inclusive=False)
    depth = check_int("depth", depth, minimum=1)
    layers = torch.arange(1, depth + 1, dtype=torch.float64)
    return m_in * (gain / 2.0) ** layers


# --------------------------------------------------------------------------------------
# theory: the mean-field (infinite-width) prediction of the activation norms
# --------------------------------------------------------------------------------------
_HERMITE_NODES, _HERMITE_WEIGHTS = np.polynomial.hermite_e.hermegauss(61)
_HERMITE_WEIGHTS = _HERMITE_WEIGHTS / _HERMITE_WEIGHTS.sum()  # E[f(z)], z ~ N(0, 1)


def activation_numpy(activation: str, h: np.ndarray, negative_slope: float = LEAKY_SLOPE) -> np.ndarray:
    """The activation applied to a NumPy array (same definitions as :func:`activation_module`)."""
    if activation == "relu":
        return np.maximum(h, 0.0)
    if activation == "leaky_relu":
        return np.where(h > 0, h, negative_slope * h)
    if activation == "tanh":
        return np.tanh(h)
    if activation == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * h))
    return h


def second_moment(activation: str, variance: np.ndarray | float,
                  negative_slope: float = LEAKY_SLOPE) -> np.ndarray:
    """``E[phi(h)^2]`` for ``h ~ N(0, variance)``, by Gauss-Hermite quadrature (exact for
    the piecewise-linear activations: ``variance / 2`` for ReLU)."""
    variance = np.asarray(variance, dtype=np.float64)
    if activation == "relu":
        return variance / 2.0
    if activation == "leaky_relu":
        return variance * (1.0 + negative_slope**2) / 2.0
    if activation == "linear":
        return variance.copy()
    h = np.sqrt(variance)[..., None] * _HERMITE_NODES
    return (activation_numpy(activation, h) ** 2) @ _HERMITE_WEIGHTS


def stable_gain(activation: str, negative_slope: float = LEAKY_SLOPE) -> float:
    """The gain ``c`` that keeps the second moment of small signals constant from layer to layer.

    ``1 / (E[phi(h)^2] / Var h)`` near ``h = 0``: 2 for ReLU (Kaiming/He), ``2 / (1 + a^2)`` for
    Leaky ReLU with slope ``a``, 1 for linear and tanh (Xavier/Glorot's ``1 / n_in``), 16 for the
    sigmoid's slope 1/4 (its non-zero mean 1/2 makes it blow up the signal anyway).
    """
    activation = check_choice("activation", activation, ACTIVATIONS)
    negative_slope = check_real("negative_slope", negative_slope, minimum=0.0, maximum=1.0)
    return {"relu": 2.0, "leaky_relu": 2.0 / (1.0 + negative_slope**2), "linear": 1.0,
            "tanh": 1.0, "sigmoid": 16.0}[activation]


def theory_norms(
    gain: float,
    depth: int,
    width: int,
    activation: str = "relu",
    input_sq_norms: np.ndarray | None = None,
    *,
    in_features: int = IN_FEATURES,
    negative_slope: float = LEAKY_SLOPE,
) -> np.ndarray:
    """Infinite-width prediction of the mean activation norm ``||Z_i||_2`` of every hidden layer.

    For one input ``x``, unit ``j`` of layer 1 is ``h_j = W_j . x ~ N(0, q_1)`` with
    ``q_1 = gain ||x||^2 / n_in`` (central limit theorem); the layer's output has
    ``E||Z_1||^2 = width E[phi(h)^2]`` and the next layer's pre-activations have variance
    ``q_2 = gain E[phi(h)^2]``, and so on.  For ReLU this is exactly a factor ``sqrt(gain / 2)``
    per layer on the norm.  The result averages ``sqrt(E||Z_i||^2)`` over the inputs.

    Args:
        input_sq_norms: ``||x||^2`` of each input; default: the first 256 MNIST training images.
    """
    gain = check_real("gain", gain, minimum=0.0, min_inclusive=False)
    depth = check_int("depth", depth, minimum=1)
    width = check_int("width", width, minimum=1)
    activation = check_choice("activation", activation, ACTIVATIONS)
    negative_slope = check_real("negative_slope", negative_slope, minimum=0.0, maximum=1.0)
    if input_sq_norms is None:
        x, _ = mnist_batch(256)
        input_sq_norms = (x.double() ** 2).sum(dim=1).numpy()
    q = gain * np.asarray(input_sq_norms, dtype=np.float64) / in_features
    norms = np.empty(depth)
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(depth):
            m = second_moment(activation, q, negative_slope)
            norms[i] = np.mean(np.sqrt(width * m))
            q = gain * m
    return norms


def derivative_second_moment(activation: str, variance: np.ndarray | float,
                             negative_slope: float = LEAKY_SLOPE) -> np.ndarray:
    """``E[phi'(h)^2]`` for ``h ~ N(0, variance)``, by Gauss-Hermite quadrature (exact for the
    piecewise-linear activations: ``1/2`` for ReLU, ``(1 + a^2)/2`` for Leaky ReLU, 1 for linear)."""
    variance = np.asarray(variance, dtype=np.float64)
    activation = check_choice("activation", activation, ACTIVATIONS)
    negative_slope = check_real("negative_slope", negative_slope, minimum=0.0, maximum=1.0)
    if activation == "relu":
        return np.full_like(variance, 0.5)
    if activation == "leaky_relu":
        return np.full_like(variance, (1.0 + negative_slope**2) / 2.0)
    if activation == "linear":
        return np.ones_like(variance)
    h = np.sqrt(variance)[..., None] * _HERMITE_NODES
    phi = activation_numpy(activation, h)
    slope = 1.0 - phi**2 if activation == "tanh" else phi * (1.0 - phi)
    return (slope**2) @ _HERMITE_WEIGHTS


def fixed_point_variance(gain: float, activation: str = "tanh", start: float = 1.0, iterations: int = 2000) -> float:
    """The pre-activation variance ``q*`` a deep network settles at: ``q = gain * E[phi(h)^2]``,
    ``h ~ N(0, q)``, iterated ``iterations`` times from ``q = start`` (the mean-field recursion of
    :func:`theory_norms`, one layer per iteration).

    For tanh with ``gain`` > 1 it converges to a positive ``q*`` (1.18 for PyTorch's
    ``gain = 25/9``); for ``gain`` <= 1 it decays towards 0, slowly (about ``1/layer`` at ``gain = 1``).

    Raises:
        TypeError / ValueError: naming the bad argument; ValueError also for ReLU-like and linear
            activations, whose recursion only scales ``q`` (no fixed point but 0 or infinity).
    """
    gain = check_real("gain", gain, minimum=0.0, min_inclusive=False)
    activation = check_choice("activation", activation, ("tanh", "sigmoid"))
    q = check_real("start", start, minimum=0.0, min_inclusive=False)
    for _ in range(check_int("iterations", iterations, minimum=1)):
        q = float(gain * second_moment(activation, q))
    return q


def backward_factor(gain: float, activation: str, variance: float, negative_slope: float = LEAKY_SLOPE) -> float:
    """Infinite-width factor by which one layer multiplies the norm of the backward signal:
    ``sqrt(gain * E[phi'(h)^2])`` for pre-activations ``h ~ N(0, variance)``.

    The backward signal crosses ``D·W`` per layer (the Viettel handout's product): ``W`` contributes
    ``gain`` to the squared norm, the activation's slope ``E[phi'(h)^2]``.  ReLU with
    ``gain = 2`` gives exactly 1 at any variance; tanh at its fixed point with ``gain = 25/9``
    gives about 1.10 (gradients grow towards the input: Poole et al., 2016; Schoenholz et al., 2017).

    Raises:
        TypeError / ValueError: naming the bad argument and the allowed values.
    """
    gain = check_real("gain", gain, minimum=0.0, min_inclusive=False)
    variance = check_real("variance", variance, minimum=0.0)
    return float(np.sqrt(gain * derivative_second_moment(activation, variance, negative_slope)))


def relu_theory_norms(gain: float, depth: int, width: int, input_norm: float,
                      in_features: int = IN_FEATURES) -> np.ndarray:
    """The ReLU prediction in closed form: ``||Z_i|| = ||x|| sqrt(width / n_in) (gain / 2)^(i / 2)``."""
    layers = np.arange(1, depth + 1)
    return input_norm * math.sqrt(width / in_features) * (gain / 2.0) ** (layers / 2.0)


def finite_width_log_slope(gain: float, width: int) -> float:
    """Expected per-layer change of ``ln ||Z_i||`` for a ReLU net of finite ``width``.

    The squared norm is multiplied at each layer by ``R = (gain / n) sum_j relu(g_j)^2`` with
    ``g_j ~ N(0, 1)``: ``E[R] = gain / 2`` but ``Var R / E[R]^2 = 5 / n``, so to second order
    ``E[ln R] = ln(gain / 2) - 5 / (2 n)``: the typical norm drifts down by ``5 / (4 n)`` per layer
    relative to the infinite-width slope ``ln(gain / 2) / 2``.
    """
    return 0.5 * math.log(gain / 2.0) - 5.0 / (4.0 * width)


__all__ = ["activation_numpy", "backward_factor", "derivative_second_moment", "finite_width_log_slope",
           "fixed_point_variance", "relu_second_moments", "relu_theory_norms", "second_moment", "stable_gain",
           "theory_norms"]
