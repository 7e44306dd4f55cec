"""Initialization of deep MLPs: how the variance of the first weights sets the signal scale.

Lecture 001 (initialization part) and 002 (vanishing/exploding gradients).  The central
experiment is a deep MLP without biases, weights ``W_i ~ N(0, gain / n_in)``, fed real MNIST
images: :func:`norm_profile` measures, per hidden layer, the norm of the activations and of the
cross-entropy gradient with respect to that layer's weights.  :func:`make_mlp` builds the very
same network so other notebooks (02) can train it.

Everything here is a pure function of its arguments and seed.  The only cache is
:func:`mnist_batch`, which memoises the (read-only) first MNIST training images so interactive
panels do not re-read and re-verify the data file on every redraw; it returns fresh copies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from helpers.data import load_mnist

#: Activations accepted by :func:`make_mlp` and :func:`norm_profile`.
ACTIVATIONS: tuple[str, ...] = ("relu", "leaky_relu", "tanh", "sigmoid", "linear")

#: Default negative slope of ``"leaky_relu"`` (PyTorch's default).
LEAKY_SLOPE = 0.01

#: MNIST images are 28 x 28 = 784 pixels; there are 10 classes.
IN_FEATURES = 784
N_CLASSES = 10
MNIST_TRAIN_SIZE = 60_000


# --------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------
def _check_number(name: str, value: object, *, low: float | None = None, low_inclusive: bool = False,
                  high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if low is not None and (value < low if low_inclusive else value <= low):
        bound = f">= {low:g}" if low_inclusive else f"> {low:g}"
        raise ValueError(f"{name} must be {bound}, got {value:g}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high:g}, got {value:g}")
    return value


def _check_int(name: str, value: object, *, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an int {allowed}, got {value}")
    return value


def _check_activation(activation: object) -> str:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    return str(activation)


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _check_common(gain: object, depth: object, width: object, activation: object,
                  layernorm: object, seed: object, negative_slope: object) -> tuple:
    return (
        _check_number("gain", gain, low=0.0),
        _check_int("depth", depth, low=1),
        _check_int("width", width, low=1),
        _check_activation(activation),
        _check_bool("layernorm", layernorm),
        _check_int("seed", seed, low=0),
        _check_number("negative_slope", negative_slope, low=0.0, low_inclusive=True, high=1.0),
    )


# --------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------
def activation_module(activation: str, negative_slope: float = LEAKY_SLOPE) -> nn.Module:
    """The ``nn.Module`` for an activation name from :data:`ACTIVATIONS`."""
    activation = _check_activation(activation)
    if activation == "relu":
        return nn.ReLU()
    if activation == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    if activation == "tanh":
        return nn.Tanh()
    if activation == "sigmoid":
        return nn.Sigmoid()
    return nn.Identity()


def make_mlp(
    gain: float,
    depth: int = 50,
    width: int = 100,
    activation: str = "relu",
    layernorm: bool = False,
    seed: int = 0,
    *,
    in_features: int = IN_FEATURES,
    n_classes: int = N_CLASSES,
    negative_slope: float = LEAKY_SLOPE,
) -> nn.Sequential:
    """The deep MLP of the lecture, weights drawn from ``N(0, gain / n_in)``, no biases.

    Structure: ``depth`` hidden blocks, then a final linear layer to ``n_classes``::

        model[i]    = nn.Sequential(nn.Linear(n_in, width, bias=False), activation[, nn.LayerNorm])
        model[-1]   = nn.Linear(width, n_classes, bias=False)

    Block 0 maps ``in_features`` (784 MNIST pixels) to ``width``; the others map ``width`` to
    ``width``.  ``model[i][0].weight`` is the hidden weight matrix ``W_{i+1}``; use
    :func:`hidden_weights` to get them all.  With ``layernorm=True`` each block ends with
    ``nn.LayerNorm(width, elementwise_affine=False)`` (after the activation).  Every weight
    matrix, the final one included, is ``N(0, gain / n_in)``, drawn in layer order from
    ``torch.Generator().manual_seed(seed)``: the same arguments give the same network.

    Args:
        gain: the ``c`` in ``Var(W) = c / n_in``; must be > 0 (2 is Kaiming/He for ReLU).
        depth: number of hidden layers (>= 1).
        width: units per hidden layer (>= 1).
        activation: one of :data:`ACTIVATIONS`.
        layernorm: insert a LayerNorm without affine parameters after each hidden layer.
        seed: seed of the weight generator (>= 0).
        in_features: input size (784 for MNIST).
        n_classes: output size (10 for MNIST).
        negative_slope: slope of ``"leaky_relu"`` for negative inputs, in [0, 1].

    Raises:
        ValueError / TypeError: naming the bad argument and the allowed values.
    """
    gain, depth, width, activation, layernorm, seed, negative_slope = _check_common(
        gain, depth, width, activation, layernorm, seed, negative_slope)
    in_features = _check_int("in_features", in_features, low=1)
    n_classes = _check_int("n_classes", n_classes, low=1)
    generator = torch.Generator().manual_seed(seed)

    def linear(n_in: int, n_out: int) -> nn.Linear:
        layer = nn.Linear(n_in, n_out, bias=False)
        with torch.no_grad():
            weight = torch.randn(n_out, n_in, generator=generator) * math.sqrt(gain / n_in)
            layer.weight.copy_(weight)
        return layer

    blocks: list[nn.Module] = []
    n_in = in_features
    for _ in range(depth):
        parts: list[nn.Module] = [linear(n_in, width), activation_module(activation, negative_slope)]
        if layernorm:
            parts.append(nn.LayerNorm(width, elementwise_affine=False))
        blocks.append(nn.Sequential(*parts))
        n_in = width
    blocks.append(linear(width, n_classes))
    return nn.Sequential(*blocks)


def hidden_weights(model: nn.Sequential) -> list[torch.Tensor]:
    """The hidden weight matrices ``W_1 .. W_depth`` of a :func:`make_mlp` network."""
    return [block[0].weight for block in list(model)[:-1]]


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _mnist_head(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    return load_mnist("train", limit=batch)


def mnist_batch(batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``batch`` MNIST training images (flat, in [0, 1]) and labels, as fresh copies.

    Memoised: the data file is read and verified once per ``batch`` size per process.
    """
    batch = _check_int("batch", batch, low=1, high=MNIST_TRAIN_SIZE)
    x, y = _mnist_head(batch)
    return x.clone(), y.clone()


# --------------------------------------------------------------------------------------
# the measurement
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NormProfile:
    """Per-layer norms of one deep MLP at initialization (what :func:`norm_profile` returns)."""

    gain: float
    depth: int
    width: int
    activation: str
    layernorm: bool
    activation_norms: np.ndarray
    """Shape ``(depth,)``: mean over the batch of ``||Z_i||_2``, the output of hidden layer i."""
    grad_norms: np.ndarray
    """Shape ``(depth,)``: Frobenius norm of ``d loss / d W_i`` (mean cross-entropy)."""
    input_norm: float
    """Mean over the batch of ``||x||_2`` for the input images."""
    loss: float
    """The mean cross-entropy at initialization (``inf``/``nan`` if the logits overflow)."""

    @property
    def layers(self) -> np.ndarray:
        """Layer numbers 1..depth, the x axis of every profile plot."""
        return np.arange(1, self.depth + 1)


def profile_model(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray, float]:
    """Activation norms, weight-gradient norms and loss of a :func:`make_mlp` network on ``(x, y)``.

    Returns ``(activation_norms, grad_norms, loss)``; the two arrays have one entry per hidden
    block (see :class:`NormProfile`).  Gradients are computed with ``torch.autograd.grad``: the
    model's ``.grad`` fields are left untouched.
    """
    blocks = list(model)
    weights = hidden_weights(model)
    act_norms = torch.empty(len(blocks) - 1, dtype=torch.float64)
    h = x
    for i, block in enumerate(blocks[:-1]):
        h = block(h)
        act_norms[i] = h.detach().double().norm(dim=1).mean()
    logits = blocks[-1](h)
    loss = F.cross_entropy(logits, y)
    grads = torch.autograd.grad(loss, weights, allow_unused=False)
    grad_norms = torch.stack([g.double().norm() for g in grads])
    return act_norms.numpy(), grad_norms.numpy(), float(loss.detach())


def norm_profile(
    gain: float,
    depth: int = 50,
    width: int = 100,
    activation: str = "relu",
    layernorm: bool = False,
    batch: int = 256,
    seed: int = 0,
    *,
    negative_slope: float = LEAKY_SLOPE,
) -> NormProfile:
    """Measure activation and gradient norms, layer by layer, of the lecture's deep MLP.

    The network is :func:`make_mlp` ``(gain, depth, width, activation, layernorm, seed)``:
    weights ``W_i ~ N(0, gain / n_in)``, no biases, a final linear layer to 10 classes.  The
    inputs are the first ``batch`` MNIST training images in [0, 1] with their real labels.

    Returns:
        A :class:`NormProfile` whose ``activation_norms`` (mean over the batch of the L2 norm
        of each hidden layer's output) and ``grad_norms`` (Frobenius norm of the mean
        cross-entropy gradient with respect to each hidden weight matrix) have shape
        ``(depth,)``.  Deterministic for a given seed.

    Raises:
        ValueError: gain <= 0, depth/width/batch < 1, batch > 60000, seed < 0, or an unknown
            activation (the message names the argument and the allowed values).
        TypeError: an argument of the wrong type.
    """
    gain, depth, width, activation, layernorm, seed, negative_slope = _check_common(
        gain, depth, width, activation, layernorm, seed, negative_slope)
    batch = _check_int("batch", batch, low=1, high=MNIST_TRAIN_SIZE)
    x, y = mnist_batch(batch)
    model = make_mlp(gain, depth, width, activation, layernorm, seed, negative_slope=negative_slope)
    act, grad, loss = profile_model(model, x, y)
    return NormProfile(gain=gain, depth=depth, width=width, activation=activation,
                       layernorm=layernorm, activation_norms=act, grad_norms=grad,
                       input_norm=float(x.norm(dim=1).mean()), loss=loss)


__all__ = [
    "ACTIVATIONS", "LEAKY_SLOPE", "NormProfile", "activation_module", "hidden_weights",
    "make_mlp", "mnist_batch", "norm_profile", "profile_model",
]
