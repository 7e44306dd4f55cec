"""Normalization layers from scratch: LayerNorm, BatchNorm, GroupNorm, InstanceNorm, RMSNorm.

Every function has the semantics of its ``torch.nn.functional`` namesake (same arguments,
same output, same in-place update of BatchNorm's running statistics) but is written with
elementary tensor operations only (``mean``, ``var``, ``sqrt``), so a reader can see the
whole method in a few lines.  Invalid inputs raise ``TypeError`` (wrong type) or
``ValueError`` (bad value) naming the argument where torch would refuse them.

The module also holds the small measurements notebook 03 makes about these formulas:
where epsilon sits, biased vs unbiased variance, per-row / per-column statistics, Pearson
correlation and skewness, and what BatchNorm does to a deep ReLU network's activations,
gradients and dead units at initialization.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from helpers.initialization import hidden_weights, make_mlp, mnist_batch
from helpers.training import single_thread
from helpers.validation import (
    check_bool,
    check_int,
    check_ints,
    check_probability,
    check_real,
    check_tensor,
    is_int,
)

ShapeLike = int | Sequence[int] | torch.Size


# -- validation -----------------------------------------------------------------------------
def _check_eps(eps: object) -> float:
    return check_real("eps", eps, minimum=0.0)


def _check_affine(name: str, p: torch.Tensor | None, shape: tuple[int, ...]) -> None:
    if p is None:
        return
    check_tensor(name, p)
    if tuple(p.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(p.shape)}")


def _channels_input(x: torch.Tensor, what: str) -> None:
    if x.dim() < 2:
        raise ValueError(f"x must have at least 2 dimensions (N, C, ...) for {what}, got shape {tuple(x.shape)}")


def _check_normalized_shape(x: torch.Tensor, normalized_shape: ShapeLike) -> tuple[int, ...]:
    if is_int(normalized_shape):
        shape: tuple[int, ...] = (check_int("normalized_shape", normalized_shape, minimum=1),)
    else:
        shape = check_ints("normalized_shape", normalized_shape, minimum=1)
    if len(shape) > x.dim() or tuple(x.shape[x.dim() - len(shape):]) != shape:
        raise ValueError(
            f"normalized_shape {shape} must match the trailing dimensions of x, whose shape is {tuple(x.shape)}"
        )
    return shape


def _per_channel(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A length-C vector shaped to broadcast against x of shape (N, C, *)."""
    return p.reshape(1, -1, *([1] * (x.dim() - 2)))


def _channel_affine(y: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None) -> torch.Tensor:
    """y * gamma + beta with per-channel gamma, beta (either may be None)."""
    if weight is not None:
        y = y * _per_channel(weight, y)
    if bias is not None:
        y = y + _per_channel(bias, y)
    return y


# -- the normalization functions ------------------------------------------------------------
def layer_norm(
    x: torch.Tensor,
    normalized_shape: ShapeLike,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """LayerNorm: standardize over the trailing ``normalized_shape`` dimensions of each example.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with the mean and the *biased*
    variance taken over the last ``len(normalized_shape)`` dimensions, as
    :func:`torch.nn.functional.layer_norm`.

    Raises:
        ValueError: if ``normalized_shape`` is not the trailing shape of ``x``, if ``weight``
            or ``bias`` do not have that shape, or if ``eps`` < 0.
    """
    check_tensor("x", x)
    shape = _check_normalized_shape(x, normalized_shape)
    eps = _check_eps(eps)
    _check_affine("weight", weight, shape)
    _check_affine("bias", bias, shape)
    dims = tuple(range(x.dim() - len(shape), x.dim()))
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, unbiased=False, keepdim=True)
    y = (x - mean) / torch.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def batch_norm(
    x: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """BatchNorm: standardize each channel over the batch (and spatial) dimensions.

    ``x`` has shape ``(N, C)`` or ``(N, C, *)``.  In training mode the batch mean and the
    *biased* batch variance normalize ``x``, and the running statistics (if given) are
    updated in place: ``running = (1 - momentum) * running + momentum * batch_stat``, with
    the *unbiased* variance for ``running_var``.  In eval mode the running statistics
    normalize ``x`` and nothing is updated.  Same semantics as
    :func:`torch.nn.functional.batch_norm`.

    Raises:
        ValueError: for fewer than 2 dimensions, running statistics or affine parameters
            that are not of length C, eval mode without running statistics, training mode
            with a single value per channel or with ``eps`` = 0, ``momentum`` outside [0, 1],
            or ``eps`` < 0.
    """
    check_tensor("x", x)
    _channels_input(x, "batch_norm")
    eps = _check_eps(eps)
    momentum = check_probability("momentum", momentum)
    channels = x.shape[1]
    for name, p in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_affine(name, p, (channels,))
    dims = (0, *range(2, x.dim()))
    if training and eps == 0:
        raise ValueError("eps must be > 0 for training-mode batch_norm (as in torch), got 0")
    if training:
        count = x.numel() // channels
        if count < 2:
            raise ValueError(
                f"training-mode batch_norm needs more than 1 value per channel, got input of shape "
                f"{tuple(x.shape)}: use a batch of at least 2 examples (or eval mode)"
            )
        mean = x.mean(dim=dims)
        var = x.var(dim=dims, unbiased=False)
        with torch.no_grad():
            if running_mean is not None:
                running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
            if running_var is not None:
                unbiased = var.detach() * count / (count - 1)
                running_var.mul_(1 - momentum).add_(momentum * unbiased)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("eval-mode batch_norm (training=False) needs running_mean and running_var")
        mean, var = running_mean, running_var
    y = (x - _per_channel(mean, x)) / torch.sqrt(_per_channel(var, x) + eps)
    return _channel_affine(y, weight, bias)


def group_norm(
    x: torch.Tensor,
    num_groups: int,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """GroupNorm: split the C channels into ``num_groups`` groups and standardize each group
    of each example over its channels and spatial positions.

    ``num_groups = 1`` is LayerNorm over (C, H, W); ``num_groups = C`` is InstanceNorm.
    ``weight`` and ``bias`` are per channel.  Same semantics as
    :func:`torch.nn.functional.group_norm`.

    Raises:
        ValueError: if ``num_groups`` does not divide the number of channels, is < 1, or
            ``eps`` < 0, or ``weight``/``bias`` are not of length C.
    """
    check_tensor("x", x)
    _channels_input(x, "group_norm")
    eps = _check_eps(eps)
    channels = x.shape[1]
    num_groups = check_int("num_groups", num_groups, minimum=1)
    if channels % num_groups:
        raise ValueError(f"num_groups must divide the number of channels ({channels}), got {num_groups}")
    _check_affine("weight", weight, (channels,))
    _check_affine("bias", bias, (channels,))
    grouped = x.reshape(x.shape[0], num_groups, -1)
    mean = grouped.mean(dim=-1, keepdim=True)
    var = grouped.var(dim=-1, unbiased=False, keepdim=True)
    y = ((grouped - mean) / torch.sqrt(var + eps)).reshape(x.shape)
    return _channel_affine(y, weight, bias)


def instance_norm(
    x: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """InstanceNorm: standardize each channel of each example over its spatial positions.

    Same as :func:`torch.nn.functional.instance_norm` without running statistics
    (its default, ``use_input_stats=True``); it is GroupNorm with one channel per group.

    Raises:
        ValueError: if ``x`` has no spatial dimension or a single spatial value, or ``eps`` < 0.
    """
    check_tensor("x", x)
    if x.dim() < 3 or math.prod(x.shape[2:]) < 2:
        raise ValueError(
            f"instance_norm needs x of shape (N, C, *spatial) with more than 1 spatial value, got {tuple(x.shape)}"
        )
    return group_norm(x, x.shape[1], weight, bias, eps)


def rms_norm(
    x: torch.Tensor,
    normalized_shape: ShapeLike,
    weight: torch.Tensor | None = None,
    eps: float | None = None,
) -> torch.Tensor:
    """RMSNorm: LayerNorm without centring, ``x / sqrt(mean(x**2) + eps) * weight``.

    As :func:`torch.nn.functional.rms_norm`, ``eps=None`` means the machine epsilon of
    ``x``'s dtype.

    Raises:
        ValueError: as :func:`layer_norm`.
    """
    check_tensor("x", x)
    eps = torch.finfo(x.dtype).eps if eps is None else eps
    shape = _check_normalized_shape(x, normalized_shape)
    eps = _check_eps(eps)
    _check_affine("weight", weight, shape)
    dims = tuple(range(x.dim() - len(shape), x.dim()))
    y = x / torch.sqrt((x * x).mean(dim=dims, keepdim=True) + eps)
    return y if weight is None else y * weight


def layer_norm_backward(
    dout: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The gradients of LayerNorm over the last dimension, written out by hand.

    For ``y = x̂ · weight + bias`` with ``x̂ = (x - mean) / sqrt(var + eps)`` (mean and biased
    variance over the last dimension of size D) and an upstream gradient ``dout = dL/dy``:

    * ``dbias = dout`` summed over every leading dimension (one value per feature);
    * ``dweight = dout · x̂`` summed the same way;
    * ``dx = (g - mean(g) - x̂ · mean(g · x̂)) / sqrt(var + eps)`` with ``g = dout · weight``
      and the means over the last dimension: the two mean terms are the gradient flowing
      through the mean and the variance, which depend on every feature of the example.

    The same numbers as autograd through :func:`layer_norm` (the unit tests check it).

    Returns:
        ``(dx, dweight, dbias)``, of the shapes of ``x``, ``weight`` and ``weight``.

    Raises:
        TypeError: if ``dout``, ``x`` or ``weight`` is not a tensor, or ``eps`` not a number.
        ValueError: if ``x`` has no dimension, ``dout`` is not of ``x``'s shape, ``weight``
            not of shape ``(D,)``, or ``eps`` < 0.
    """
    check_tensor("dout", dout)
    check_tensor("x", x)
    check_tensor("weight", weight)
    eps = _check_eps(eps)
    if x.dim() < 1:
        raise ValueError("x must have at least 1 dimension (..., D), got a scalar")
    if tuple(dout.shape) != tuple(x.shape):
        raise ValueError(f"dout must have the shape of x, {tuple(x.shape)}, got {tuple(dout.shape)}")
    _check_affine("weight", weight, (x.shape[-1],))
    mean = x.mean(dim=-1, keepdim=True)
    rstd = 1 / torch.sqrt(x.var(dim=-1, unbiased=False, keepdim=True) + eps)
    x_hat = (x - mean) * rstd
    leading = tuple(range(x.dim() - 1))
    dbias = dout.sum(dim=leading) if leading else dout.clone()
    dweight = (dout * x_hat).sum(dim=leading) if leading else dout * x_hat
    g = dout * weight
    dx = rstd * (g - g.mean(dim=-1, keepdim=True) - x_hat * (g * x_hat).mean(dim=-1, keepdim=True))
    return dx, dweight, dbias


# -- measurements for the notebook ----------------------------------------------------------
def standardize_eps_outside(x: torch.Tensor, dim: int | tuple[int, ...] = -1, eps: float = 1e-5) -> torch.Tensor:
    """The lecture-000 formula ``(x - mean) / (std + eps)`` (biased std), for comparison with
    PyTorch's ``(x - mean) / sqrt(var + eps)``.

    Raises:
        ValueError: if ``eps`` < 0.
    """
    eps = _check_eps(eps)
    mean = x.mean(dim=dim, keepdim=True)
    std = x.var(dim=dim, unbiased=False, keepdim=True).sqrt()
    return (x - mean) / (std + eps)


def eps_placement_scale(std: np.ndarray | float, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """For inputs of standard deviation ``std``: the output std with eps inside the root,
    ``std / sqrt(std**2 + eps)``, and with eps outside, ``std / (std + eps)``.

    Raises:
        ValueError: if ``eps`` < 0 or any ``std`` is negative.
    """
    eps = _check_eps(eps)
    s = np.asarray(std, dtype=np.float64)
    if np.any(s < 0):
        raise ValueError("std must be >= 0")
    return s / np.sqrt(s**2 + eps), s / (s + eps)


def lecture_matrix(rows: int, cols: int, mean: float = 2.0, std: float = 2.0, seed: int = 42) -> torch.Tensor:
    """A ``rows x cols`` float32 matrix of N(mean, std^2) values from a seeded generator.

    Raises:
        ValueError: for non-positive sizes or std.
    """
    rows = check_int("rows", rows, minimum=1)
    cols = check_int("cols", cols, minimum=1)
    std = check_real("std", std, minimum=0.0, min_inclusive=False)
    g = torch.Generator().manual_seed(seed)
    return mean + std * torch.randn(rows, cols, generator=g)


@dataclass(frozen=True)
class MatrixStats:
    """Means and (biased) standard deviations of a matrix: whole, per row, per column."""

    mean: float
    std: float
    row_means: np.ndarray
    row_stds: np.ndarray
    col_means: np.ndarray
    col_stds: np.ndarray


def matrix_stats(x: torch.Tensor) -> MatrixStats:
    """Whole-tensor, per-row and per-column means and biased stds of a 2-D tensor.

    Raises:
        ValueError: if ``x`` is not 2-D.
    """
    check_tensor("x", x)
    if x.dim() != 2:
        raise ValueError(f"x must be 2-D, got shape {tuple(x.shape)}")
    a = x.detach().double()
    return MatrixStats(
        mean=float(a.mean()), std=float(a.std(unbiased=False)),
        row_means=a.mean(1).numpy(), row_stds=a.std(1, unbiased=False).numpy(),
        col_means=a.mean(0).numpy(), col_stds=a.std(0, unbiased=False).numpy(),
    )


def pearson(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Pearson correlation between the flattened values of ``a`` and ``b`` (float64).

    Raises:
        ValueError: if the sizes differ or either input is constant.
    """
    u = np.asarray(a.detach() if isinstance(a, torch.Tensor) else a, dtype=np.float64).ravel()
    v = np.asarray(b.detach() if isinstance(b, torch.Tensor) else b, dtype=np.float64).ravel()
    if u.size != v.size:
        raise ValueError(f"a and b must have the same number of values, got {u.size} and {v.size}")
    u, v = u - u.mean(), v - v.mean()
    denominator = np.sqrt((u * u).sum() * (v * v).sum())
    if denominator == 0:
        raise ValueError("pearson needs non-constant inputs")
    return float((u * v).sum() / denominator)


def skewness(x: torch.Tensor | np.ndarray) -> float:
    """The sample skewness ``mean(((x - mean) / std)**3)`` (biased std), in float64."""
    u = np.asarray(x.detach() if isinstance(x, torch.Tensor) else x, dtype=np.float64).ravel()
    u = u - u.mean()
    return float((u**3).mean() / (u**2).mean() ** 1.5)


def panel_inputs(n: int = 2000, seed: int = 0) -> dict[str, np.ndarray]:
    """The inputs of notebook 03's gamma/beta panel: ``n`` Gaussian N(2, 2^2) values and
    ``n`` right-skewed exponential values (scale 2), from a seeded generator.
    """
    rng = np.random.default_rng(seed)
    return {
        "Gaussian N(2, 2²)": rng.normal(2.0, 2.0, size=n),
        "skewed (exponential)": rng.exponential(2.0, size=n),
    }


# -- which values share one mean and variance (the GroupNorm paper's Figure 2) ------------
#: The four methods of the GroupNorm paper's Figure 2, in its order.
CUBE_METHODS = ("Batch Norm", "Layer Norm", "Instance Norm", "Group Norm")


def normalization_set(method: str, n: int = 4, c: int = 6, hw: int = 5, groups: int = 3) -> np.ndarray:
    """Boolean mask of shape ``(n, c, hw)``: the values that share one mean and variance
    with the value at (example 0, channel 0, position 0), for ``method`` in :data:`CUBE_METHODS`
    (``groups`` divides ``c``).
    """
    mask = np.zeros((n, c, hw), dtype=bool)
    if method == "Batch Norm":
        mask[:, 0, :] = True
    elif method == "Layer Norm":
        mask[0, :, :] = True
    elif method == "Instance Norm":
        mask[0, 0, :] = True
    else:
        mask[0, : c // groups, :] = True
    return mask



# -- the gamma/beta panel of notebook 03 --------------------------------------------------------
#: Bins of the panel's histogram of the standardized input x̂.
PANEL_BINS = 60


@dataclass(frozen=True)
class Standardized:
    """An input standardized once (ε = 0) for the gamma/beta panel (:func:`standardize_for_panel`)."""

    var: float
    """The input's (biased) variance σ²."""
    counts: np.ndarray
    """Histogram counts of x̂ = (x − μ)/σ."""
    edges: np.ndarray
    """Bin edges of that histogram."""
    z_mean: float
    """Mean of x̂ (0 up to rounding)."""
    z_std: float
    """Standard deviation of x̂ (1 up to rounding)."""
    skew: float
    """Skewness of x̂ (that of the input: standardization keeps the shape)."""


def standardize_for_panel(values: np.ndarray, bins: int = PANEL_BINS) -> Standardized:
    """What every redraw of the gamma/beta panel needs, computed once for one input (at least
    2 values, not all equal)."""
    z = (values - values.mean()) / np.sqrt(values.var())
    counts, edges = np.histogram(z, bins=bins)
    return Standardized(float(values.var()), counts, edges, float(z.mean()), float(z.std()), skewness(z))


@dataclass(frozen=True)
class LayerNormOutput:
    """The histogram and statistics of y = γ·x̂_ε + β for one panel setting (:func:`panel_output`)."""

    density: np.ndarray
    """Density of the output histogram (its counts are those of x̂, on mapped edges)."""
    edges: np.ndarray
    """Bin edges of the output histogram, ``scale · edges of x̂ + β``."""
    scale: float
    """γ·√(σ² / (σ² + ε)): how much the output is stretched relative to x̂."""
    mean: float
    """Mean of the output, rounded to 3 decimals (never ``-0.0``)."""
    std: float
    """Standard deviation of the output."""


def panel_output(standardized: Standardized, gamma: float, beta: float, eps: float) -> LayerNormOutput:
    """LayerNorm's output y = γ·(x − μ)/√(σ² + ε) + β for the panel's input, from its histogram.

    With ε, x̂_ε = x̂·√(σ² / (σ² + ε)), so the output is ``scale · x̂ + β``: its histogram is
    that of x̂ on the edges ``scale · edges + β`` (same counts), its mean
    ``scale · mean(x̂) + β`` and its std ``scale · std(x̂)``.

    Raises:
        TypeError / ValueError: for a non-numeric γ, β or ε, or ε < 0 (the panel's values).
    """
    gamma, beta, eps = check_real("gamma", gamma), check_real("beta", beta), _check_eps(eps)
    scale = gamma * math.sqrt(standardized.var / (standardized.var + eps))
    edges = scale * standardized.edges + beta
    density = standardized.counts / (standardized.counts.sum() * np.diff(edges))
    mean = round(scale * standardized.z_mean + beta, 3) + 0.0  # + 0.0: never "-0.000"
    return LayerNormOutput(density, edges, scale, mean, scale * standardized.z_std)


# -- BatchNorm in a deep ReLU network at initialization ---------------------------------------
@dataclass(frozen=True)
class DeepReLUProfile:
    """One deep ReLU MLP at initialization, with or without BatchNorm (:func:`deep_relu_profile`)."""

    batch_norm: bool
    activation_norms: np.ndarray
    """Shape ``(depth,)``: mean over the batch of ``||h_i||_2``, the output of hidden layer i (after ReLU)."""
    grad_norms: np.ndarray
    """Shape ``(depth,)``: Frobenius norm of ``d loss / d W_i`` (mean cross-entropy)."""
    dead_fraction: np.ndarray
    """Shape ``(depth,)``: fraction of layer i's units whose ReLU output is 0 for every example of
    the batch ("dead" on it: the weights feeding them get a gradient of exactly 0)."""

    @property
    def depth(self) -> int:
        """Number of hidden layers."""
        return len(self.grad_norms)


def deep_relu_profile(batch_norm: bool, gain: float = 2.0, depth: int = 50, width: int = 100,
                      batch: int = 128, seed: int = 0) -> DeepReLUProfile:
    """Activations, weight gradients and dead units of notebook 01's deep ReLU MLP at initialization.

    The network is :func:`helpers.initialization.make_mlp` (no biases, ``W ~ N(0, gain / n_in)``,
    the same weights for the same ``seed``); with ``batch_norm=True`` a training-mode BatchNorm
    without γ and β (batch statistics, biased variance, ε = 10⁻⁵) sits between every hidden
    linear layer and its ReLU, the placement of Ioffe & Szegedy (2015).  Measured on the first
    ``batch`` MNIST training images.

    Raises:
        TypeError / ValueError: naming a bad argument (``batch`` must be at least 2: BatchNorm
            needs two examples).
    """
    batch_norm = check_bool("batch_norm", batch_norm)
    batch = check_int("batch", batch, minimum=2)
    model = make_mlp(gain, depth, width, "relu", False, seed)    # validates gain, depth, width, seed
    x, y = mnist_batch(batch)
    weights = hidden_weights(model)
    act_norms, dead = np.empty(len(weights)), np.empty(len(weights))
    with single_thread():
        h = x
        for i, weight in enumerate(weights):
            z = h @ weight.T
            if batch_norm:
                z = (z - z.mean(dim=0)) / torch.sqrt(z.var(dim=0, unbiased=False) + 1e-5)
            h = torch.relu(z)
            act_norms[i] = float(h.detach().double().norm(dim=1).mean())
            dead[i] = float(((h > 0).sum(dim=0) == 0).double().mean())
        loss = F.cross_entropy(list(model)[-1](h), y)
        grads = torch.autograd.grad(loss, weights)
    grad_norms = np.array([float(g.double().norm()) for g in grads])
    return DeepReLUProfile(batch_norm, act_norms, grad_norms, dead)


def sgd_losses(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int, lr: float) -> np.ndarray:
    """The cross-entropy loss of ``model`` on the whole batch ``(x, y)`` before each of ``steps``
    plain SGD steps with learning rate ``lr`` (the model is trained in place).

    Two models that start from the same weights and differ only in one layer give the same
    losses exactly when that layer computes, and passes gradients, the same way: notebook 03
    compares the student's LayerNorm with ``nn.LayerNorm`` like that, in float64.

    Raises:
        TypeError / ValueError: ``steps`` not a whole number >= 1, ``lr`` not a positive number.
    """
    steps, lr = check_int("steps", steps, minimum=1), check_real("lr", lr, minimum=0, min_inclusive=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return np.array(losses)
