"""Initialization of deep MLPs: how the variance of the first weights sets the signal scale.

The CMU DLSys notes (initialization part) and the Viettel AI Race handout (vanishing/exploding gradients).  The central
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import cast

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from helpers.data import load_mnist
from helpers.training import single_thread
from helpers.validation import check_bool, check_choice, check_int, check_ints, check_real

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
def _check_common(gain: object, depth: object, width: object, activation: object,
                  layernorm: object, seed: object, negative_slope: object) -> tuple:
    return (
        check_real("gain", gain, minimum=0.0, min_inclusive=False),
        check_int("depth", depth, minimum=1),
        check_int("width", width, minimum=1),
        check_choice("activation", activation, ACTIVATIONS),
        check_bool("layernorm", layernorm),
        check_int("seed", seed, minimum=0),
        check_real("negative_slope", negative_slope, minimum=0.0, maximum=1.0),
    )


# --------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------
#: A weight sampler ``(fan_in, fan_out, generator) -> (fan_out, fan_in)`` tensor (see :func:`kaiming_normal`).
WeightInit = Callable[[int, int, torch.Generator], torch.Tensor]


def kaiming_normal(fan_in: int, fan_out: int, generator: torch.Generator) -> torch.Tensor:
    """Kaiming/He normal weights for a ReLU layer: ``(fan_out, fan_in)`` draws from ``N(0, 2 / fan_in)``.

    The shape is that of ``nn.Linear(fan_in, fan_out).weight``, so ``x @ W.T`` maps ``fan_in``
    inputs to ``fan_out`` outputs.  Every entry is ``sqrt(2 / fan_in)`` times a standard normal
    drawn from ``generator`` (``torch.randn``), the variance ``nn.init.kaiming_normal_(w,
    nonlinearity="relu")`` uses (He et al., 2015).

    Raises:
        TypeError: ``fan_in``/``fan_out`` not ints, or ``generator`` not a ``torch.Generator``.
        ValueError: ``fan_in`` or ``fan_out`` < 1.
    """
    fan_in = check_int("fan_in", fan_in, minimum=1)
    fan_out = check_int("fan_out", fan_out, minimum=1)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return torch.randn(fan_out, fan_in, generator=generator) * math.sqrt(2.0 / fan_in)


def _drawn(weight_init: WeightInit, n_in: int, n_out: int, generator: torch.Generator) -> torch.Tensor:
    """``weight_init(n_in, n_out, generator)``, checked to be a finite ``(n_out, n_in)`` tensor."""
    weight = weight_init(n_in, n_out, generator)
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"weight_init must return a torch.Tensor, got {type(weight).__name__}")
    if tuple(weight.shape) != (n_out, n_in):
        raise ValueError(f"weight_init({n_in}, {n_out}, generator) must have shape (fan_out, fan_in) = "
                         f"{(n_out, n_in)}, got {tuple(weight.shape)}")
    if not bool(torch.isfinite(weight).all()):
        raise ValueError("weight_init returned NaN or inf")
    return weight.detach().to(torch.float32)


def activation_module(activation: str, negative_slope: float = LEAKY_SLOPE) -> nn.Module:
    """The ``nn.Module`` for an activation name from :data:`ACTIVATIONS`."""
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
    weight_init: WeightInit | None = None,
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
        weight_init: a Kaiming-normal sampler ``(fan_in, fan_out, generator) -> (fan_out, fan_in)``
            tensor with ``Var = 2 / fan_in``, such as :func:`kaiming_normal`; each matrix is then
            ``sqrt(gain / 2)`` times its draw (so again ``Var = gain / n_in``), drawn from the same
            generator in the same order.  ``None`` (default): ``torch.randn`` directly.

    Raises:
        ValueError / TypeError: naming the bad argument and the allowed values (also when
            ``weight_init`` is not callable or returns something other than a finite
            ``(fan_out, fan_in)`` tensor).
    """
    gain, depth, width, activation, layernorm, seed, negative_slope = _check_common(
        gain, depth, width, activation, layernorm, seed, negative_slope)
    in_features = check_int("in_features", in_features, minimum=1)
    n_classes = check_int("n_classes", n_classes, minimum=1)
    if weight_init is not None and not callable(weight_init):
        raise TypeError(f"weight_init must be a function (fan_in, fan_out, generator) -> tensor or None, "
                        f"got {type(weight_init).__name__}")
    generator = torch.Generator().manual_seed(seed)

    def linear(n_in: int, n_out: int) -> nn.Linear:
        layer = nn.Linear(n_in, n_out, bias=False)
        with torch.no_grad():
            if weight_init is None:
                weight = torch.randn(n_out, n_in, generator=generator) * math.sqrt(gain / n_in)
            else:
                weight = _drawn(weight_init, n_in, n_out, generator) * math.sqrt(gain / 2.0)
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
    hidden = cast("list[nn.Sequential]", list(model)[:-1])  # each: Linear, activation[, LayerNorm]
    return [cast(nn.Linear, block[0]).weight for block in hidden]


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
    batch = check_int("batch", batch, minimum=1, maximum=MNIST_TRAIN_SIZE)
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


def leaky_signals(std: Callable[[int, int, float], float], widths: Sequence[int], a: float = 0.3,
                  batch: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """How the forward and the backward signal travel through a bias-free Leaky ReLU MLP.

    Layer ``i`` maps ``widths[i]`` to ``widths[i + 1]`` features with weights drawn from
    ``N(0, std(n_in, n_out, a)²)`` and a Leaky ReLU of slope ``a``; the input is ``batch`` rows of
    N(0, 1) noise and the gradient at the output is N(0, 1) noise too (all float64, seeded).

    Returns:
        ``(forward, backward)``: ``forward[i]`` is E[z²] of layer ``i``'s output, ``backward[i]``
        is E[g²] of the gradient at layer ``i``'s input (one entry per layer each).

    Raises:
        TypeError / ValueError: ``std`` not callable, fewer than two widths, a width, ``batch``
        or ``seed`` not a whole number in range, ``a`` not a real number.
    """
    if not callable(std):
        raise TypeError(f"std must be a function std(n_in, n_out, a), got {type(std).__name__}")
    widths = check_ints("widths", widths, minimum=1)
    if len(widths) < 2:
        raise ValueError(f"widths must name at least an input and an output width, got {list(widths)}")
    a = check_real("a", a)
    batch, seed = check_int("batch", batch, minimum=1), check_int("seed", seed, minimum=0)
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(batch, widths[0], generator=g, dtype=torch.float64).requires_grad_(True)
    inputs, forward = [], []
    for n_in, n_out in pairwise(widths):
        inputs.append(h)
        w = torch.randn(n_out, n_in, generator=g, dtype=torch.float64) * std(n_in, n_out, a)
        h = F.leaky_relu(h @ w.T, a)
        forward.append(float(h.detach().pow(2).mean()))
    grads = torch.autograd.grad(h, inputs, torch.randn(h.shape, generator=g, dtype=torch.float64))
    return np.array(forward), np.array([float(gr.pow(2).mean()) for gr in grads])


@single_thread()  # one thread: faster at these sizes, and float sums in a fixed order
def mean_top_probability(gain: float, depth: int = 50, width: int = 100, batch: int = 256, seed: int = 0) -> float:
    """How sure the untrained :func:`make_mlp` ReLU network is: the mean over the first ``batch``
    MNIST images of its largest softmax probability (0.1 for a uniform guess over 10 classes,
    1 for a saturated softmax that puts all its mass on one class).

    Raises:
        ValueError / TypeError: naming the bad argument and the allowed values.
    """
    batch = check_int("batch", batch, minimum=1, maximum=MNIST_TRAIN_SIZE)
    model = make_mlp(gain, depth, width, "relu", False, seed)
    x, _ = mnist_batch(batch)
    with torch.no_grad():
        probs = torch.softmax(model(x).double(), dim=1)
    return float(probs.max(dim=1).values.mean())


@single_thread()  # one thread: faster at these sizes, and float sums in a fixed order
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
    weight_init: WeightInit | None = None,
) -> NormProfile:
    """Measure activation and gradient norms, layer by layer, of the lecture's deep MLP.

    The network is :func:`make_mlp` ``(gain, depth, width, activation, layernorm, seed)``:
    weights ``W_i ~ N(0, gain / n_in)``, no biases, a final linear layer to 10 classes.  The
    inputs are the first ``batch`` MNIST training images in [0, 1] with their real labels.
    ``weight_init`` (a Kaiming-normal sampler such as :func:`kaiming_normal`) draws the weight
    matrices instead of ``torch.randn``, scaled by ``sqrt(gain / 2)`` (see :func:`make_mlp`).

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
    batch = check_int("batch", batch, minimum=1, maximum=MNIST_TRAIN_SIZE)
    x, y = mnist_batch(batch)
    model = make_mlp(gain, depth, width, activation, layernorm, seed, negative_slope=negative_slope,
                     weight_init=weight_init)
    act, grad, loss = profile_model(model, x, y)
    return NormProfile(gain=gain, depth=depth, width=width, activation=activation,
                       layernorm=layernorm, activation_norms=act, grad_norms=grad,
                       input_norm=float(x.norm(dim=1).mean()), loss=loss)


# --------------------------------------------------------------------------------------
# a fast profile for interactive panels: weights from a bank, manual backward
# --------------------------------------------------------------------------------------
class WeightBank:
    """Standard-normal weights for up to ``max_depth`` layers of up to ``max_width`` units.

    Drawn once; the leading ``width x n_in`` block of each matrix is again i.i.d. N(0, 1), so a
    network of any smaller size is a slice, scaled by ``sqrt(gain / n_in)``.  Lets a slider
    redraw without drawing millions of random numbers each time.
    """

    def __init__(self, max_depth: int = 100, max_width: int = 512, seed: int = 0,
                 in_features: int = IN_FEATURES, n_classes: int = N_CLASSES) -> None:
        self.max_depth, self.max_width = max_depth, max_width
        generator = torch.Generator().manual_seed(seed)
        self.first = torch.randn(max_width, in_features, generator=generator)
        self.hidden = torch.randn(max(max_depth - 1, 1), max_width, max_width, generator=generator)
        self.final = torch.randn(n_classes, max_width, generator=generator)

    def standard(self, depth: int, width: int) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Unscaled N(0, 1) views (no copy): hidden matrices ``W_1..W_depth`` and the final one."""
        depth = check_int("depth", depth, minimum=1, maximum=self.max_depth)
        width = check_int("width", width, minimum=1, maximum=self.max_width)
        ws = [self.first[:width]] + [self.hidden[i, :width, :width] for i in range(depth - 1)]
        return ws, self.final[:, :width]

    @staticmethod
    def scales(gain: float, depth: int, width: int, in_features: int = IN_FEATURES) -> tuple[list[float], float]:
        """The factors ``sqrt(gain / n_in)`` that turn :meth:`standard` into ``N(0, gain / n_in)``."""
        gain = check_real("gain", gain, minimum=0.0, min_inclusive=False)
        return ([math.sqrt(gain / in_features)] + [math.sqrt(gain / width)] * (depth - 1),
                math.sqrt(gain / width))

    def weights(self, gain: float, depth: int, width: int) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Hidden matrices ``W_1..W_depth`` and the final matrix, each scaled to ``N(0, gain / n_in)``."""
        ws, final = self.standard(depth, width)
        scales, final_scale = self.scales(gain, depth, width, self.first.shape[1])
        return [w * s for w, s in zip(ws, scales, strict=True)], final * final_scale


def _derivative(activation: str, h: torch.Tensor, z: torch.Tensor, negative_slope: float) -> torch.Tensor | None:
    if activation == "relu":
        return (h > 0).to(h.dtype)
    if activation == "leaky_relu":
        return torch.where(h > 0, torch.ones_like(h), torch.full_like(h, negative_slope))
    if activation == "tanh":
        return 1.0 - z * z
    if activation == "sigmoid":
        return z * (1.0 - z)
    return None  # linear: derivative 1


def fast_profile(
    x: torch.Tensor,
    y: torch.Tensor,
    weights: list[torch.Tensor],
    final: torch.Tensor,
    activation: str = "relu",
    *,
    negative_slope: float = LEAKY_SLOPE,
    scales: list[float] | None = None,
    final_scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Activation and gradient norms of a bias-free MLP given its weight matrices (no autograd).

    Same quantities as :func:`norm_profile` (no LayerNorm), computed with a hand-written
    backward pass that never forms the weight gradients: ``||d_i^T z_{i-1}||_F^2`` equals
    ``sum((d_i d_i^T) * (z_{i-1} z_{i-1}^T))``, which costs ``batch^2 x width`` instead of
    ``batch x width^2``.  Used by the slider panel; tests check it against autograd.

    ``scales`` (one per hidden matrix) and ``final_scale`` multiply the matrices on the fly
    (the network's weights are ``scales[i] * weights[i]``), so a caller holding standard-normal
    weights never has to copy them.
    """
    if scales is None:
        scales = [1.0] * len(weights)
    activation = check_choice("activation", activation, ACTIVATIONS)
    module = activation_module(activation, negative_slope)
    zs = [x]
    hs = []
    with torch.no_grad():
        z = x
        for w, s in zip(weights, scales, strict=True):
            h = (z @ w.T).mul_(s)
            z = module(h)
            hs.append(h)
            zs.append(z)
        logits = (z @ final.T) * final_scale
        probs = torch.softmax(logits.double(), dim=1)
        probs[torch.arange(len(y)), y] -= 1.0
        delta = ((probs / len(y)).to(z.dtype) @ final).mul_(final_scale)  # d loss / d z_L
        grad_sq = np.empty(len(weights))
        for i in range(len(weights) - 1, -1, -1):
            d = _derivative(activation, hs[i], zs[i + 1], negative_slope)
            if d is not None:
                delta = delta * d  # d loss / d h_i
            zin = zs[i].double()
            dd = delta.double()
            grad_sq[i] = float(((dd @ dd.T) * (zin @ zin.T)).sum())
            if i > 0:
                delta = (delta @ weights[i]).mul_(scales[i])
        act = np.array([float(zz.double().norm(dim=1).mean()) for zz in zs[1:]])
    return act, np.sqrt(np.maximum(grad_sq, 0.0))


# --------------------------------------------------------------------------------------
# section 2: the finite-width drift, over many networks at once
# --------------------------------------------------------------------------------------
@single_thread()  # one thread: faster at these sizes, and float sums in a fixed order
def drift_log_slopes(gain: float = 2.0, width: int = 100, depth: int = 50, networks: int = 40,
                     batch: int = 32, seed: int = 0) -> np.ndarray:
    """Per-layer slope of ``ln ||Z_i||`` for ``networks`` independent bias-free ReLU MLPs.

    Each network is :func:`make_mlp`-shaped (weights ``N(0, gain / n_in)``, ``depth`` hidden
    layers of ``width`` units) and sees the first ``batch`` MNIST images; the slope is the
    least-squares fit of the mean ``ln ||Z_i||_2`` against ``i``.  All networks run at once as
    one batched forward pass; their weights are drawn layer by layer from one generator seeded
    with ``seed``.  Compare with
    :func:`helpers.initialization_theory.finite_width_log_slope`.

    Returns:
        Shape ``(networks,)``: one slope per network.
    """
    gain = check_real("gain", gain, minimum=0.0, min_inclusive=False)
    width = check_int("width", width, minimum=1)
    depth = check_int("depth", depth, minimum=2)
    networks = check_int("networks", networks, minimum=1)
    batch = check_int("batch", batch, minimum=1, maximum=MNIST_TRAIN_SIZE)
    generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    x, _ = mnist_batch(batch)
    z = x.expand(networks, -1, -1)
    log_norms = np.empty((depth, networks))
    n_in = IN_FEATURES
    with torch.no_grad():
        for i in range(depth):
            w = torch.randn(networks, width, n_in, generator=generator) * math.sqrt(gain / n_in)
            z = torch.relu(torch.bmm(z, w.transpose(1, 2)))
            log_norms[i] = np.log(z.double().norm(dim=2).mean(dim=1).numpy())
            n_in = width
    return np.polyfit(np.arange(depth), log_norms, 1)[0]


@dataclass(frozen=True)
class FirstSteps:
    """The first plain-SGD steps of :func:`make_mlp` ReLU networks, for several ``(gain, lr)``
    settings and seeds (what :func:`sgd_first_steps` returns)."""

    settings: tuple[tuple[float, float], ...]
    """The ``(gain, lr)`` pairs, in the order of the first axis of every array."""
    seeds: tuple[int, ...]
    losses: np.ndarray
    """Mean cross-entropy before step 1 and after step 1, 2, ..., shape ``(settings, seeds, steps + 1)``
    (``inf`` or ``nan`` once the network's numbers leave float32's range)."""
    first_change: np.ndarray
    """The relative size of the first step, ``lr * ||grad W_i|| / ||W_i||``, largest over the
    hidden matrices, shape ``(settings, seeds)``."""

    @property
    def first_nonfinite_step(self) -> np.ndarray:
        """The first step after which the loss is NaN or infinite (0: none within the steps taken),
        shape ``(settings, seeds)``."""
        bad = ~np.isfinite(self.losses[..., 1:])
        return np.where(bad.any(axis=-1), bad.argmax(axis=-1) + 1, 0)


@single_thread()  # one thread: faster at these sizes, and float sums in a fixed order
def sgd_first_steps(settings: Sequence[tuple[float, float]], seeds: Sequence[int] = (0, 1, 2, 3, 4),
                    steps: int = 3, depth: int = 50, width: int = 100, batch: int = 64) -> FirstSteps:
    """Take ``steps`` plain SGD steps from the lecture's deep ReLU network, for every ``(gain, lr)``
    in ``settings`` and every seed, all at once.

    Network ``(gain, lr, seed)`` starts with the weights of :func:`make_mlp` ``(gain, depth, width,
    seed=seed)`` (the same float32 numbers as :func:`norm_profile`, no biases) and takes the steps
    ``W <- W - lr * grad`` of the mean cross-entropy on the first ``batch`` MNIST training images
    (the same images every step: the question is whether the numbers stay finite).  All networks
    run as one batched model (``torch.bmm``), each one's loss depending on its own weights only.

    Raises:
        ValueError / TypeError: naming the bad argument and the allowed values.
    """
    if isinstance(settings, (str, bytes)) or not isinstance(settings, Sequence) or not settings:
        raise TypeError(f"settings must be a non-empty sequence of (gain, lr) pairs, got {settings!r}")
    pairs = []
    for pair in settings:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"settings must hold (gain, lr) pairs, got {pair!r}")
        pairs.append((check_real("gain", pair[0], minimum=0.0, min_inclusive=False),
                      check_real("lr", pair[1], minimum=0.0, min_inclusive=False)))
    seeds = check_ints("seeds", seeds, minimum=0)
    steps = check_int("steps", steps, minimum=1)
    depth = check_int("depth", depth, minimum=1)
    width = check_int("width", width, minimum=1)
    batch = check_int("batch", batch, minimum=1, maximum=MNIST_TRAIN_SIZE)
    sizes = [(IN_FEATURES, width)] + [(width, width)] * (depth - 1) + [(width, N_CLASSES)]
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    params = []
    for n_in, n_out in sizes:  # make_mlp's draws, layer by layer from each seed's generator
        standard = [torch.randn(n_out, n_in, generator=g) for g in generators]
        params.append(torch.stack([z * math.sqrt(gain / n_in) for gain, _ in pairs for z in standard])
                      .requires_grad_(True))
    lr = torch.tensor([lr for _, lr in pairs for _ in seeds]).view(-1, 1, 1)
    x, y = mnist_batch(batch)
    n = len(pairs) * len(seeds)
    losses = np.empty((n, steps + 1))
    first_change = np.zeros(n)
    for step in range(steps + 1):
        z = x.expand(n, -1, -1)
        for w in params[:-1]:
            z = torch.relu(torch.bmm(z, w.transpose(1, 2)))
        logits = torch.bmm(z, params[-1].transpose(1, 2))
        loss = F.cross_entropy(logits.reshape(-1, N_CLASSES), y.repeat(n), reduction="none").reshape(n, batch).mean(1)
        losses[:, step] = loss.detach().double().numpy()
        if step == steps:
            break
        grads = torch.autograd.grad(loss.sum(), params)  # each network's loss depends on its own weights only
        with torch.no_grad():
            if step == 0:  # lr * ||grad W_i|| / ||W_i||, largest over the hidden matrices
                relative = torch.stack([g.double().flatten(1).norm(dim=1) / w.double().flatten(1).norm(dim=1)
                                        for w, g in zip(params[:-1], grads, strict=False)]).amax(0)
                first_change = (relative * lr.view(-1).double()).numpy()
            for w, g in zip(params, grads, strict=True):
                w -= lr * g
    shape = (len(pairs), len(seeds))
    return FirstSteps(settings=tuple(pairs), seeds=seeds, losses=losses.reshape(*shape, -1),
                      first_change=first_change.reshape(shape))


# --------------------------------------------------------------------------------------
# section 4: why the activation must be non-linear
# --------------------------------------------------------------------------------------
#: Activations of :func:`xor_losses`: the handout's affine ``2h + 3`` and two non-linear ones.
XOR_ACTIVATIONS: tuple[str, ...] = ("affine", "tanh", "relu")
XOR_X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = torch.tensor([0.0, 1.0, 1.0, 0.0])


@single_thread()  # one thread: faster at these sizes, and float sums in a fixed order
def xor_losses(activation: str, seeds: tuple[int, ...] = (0, 1, 2, 3, 4), hidden: int = 8, layers: int = 2,
               steps: int = 300, lr: float = 0.05) -> np.ndarray:
    """Fit XOR with a small MLP ``2 -> hidden (x layers) -> 1`` and return each seed's final loss.

    ``activation`` is one of :data:`XOR_ACTIVATIONS`: ``"affine"`` is the Viettel handout's example
    ``f(h) = 2h + 3``, with which the whole network is an affine function of its input, so its
    loss cannot go below ``ln 2`` (the best an affine model does on XOR); ``"tanh"`` and
    ``"relu"`` are non-linear.  Weights ``N(0, 1 / n_in)`` with zero biases, drawn from
    ``torch.Generator().manual_seed(seed)``; full-batch Adam on the binary cross-entropy of
    the four XOR points, every seed at once (stacked weights, ``torch.bmm``).

    Returns:
        Shape ``(seeds,)``: the binary cross-entropy (nats) after ``steps`` steps.

    Raises:
        ValueError / TypeError: naming the bad argument and the allowed values.
    """
    activation = check_choice("activation", activation, XOR_ACTIVATIONS)
    seeds = check_ints("seeds", seeds, minimum=0)
    hidden = check_int("hidden", hidden, minimum=1)
    layers = check_int("layers", layers, minimum=1)
    steps = check_int("steps", steps, minimum=1)
    lr = check_real("lr", lr, minimum=0.0, min_inclusive=False)
    sizes = [2] + [hidden] * layers + [1]
    weights: list[torch.Tensor] = []
    biases: list[torch.Tensor] = []
    for n_in, n_out in pairwise(sizes):
        draws = [torch.randn(n_out, n_in, generator=torch.Generator().manual_seed(1000 * s + len(weights)))
                 for s in seeds]
        weights.append((torch.stack(draws) / math.sqrt(n_in)).requires_grad_(True))
        biases.append(torch.zeros(len(seeds), 1, n_out, requires_grad=True))
    phi: Callable[[torch.Tensor], torch.Tensor] = {
        "affine": lambda h: 2.0 * h + 3.0, "tanh": torch.tanh, "relu": torch.relu}[activation]
    # Adam acts element by element, so one optimizer over the stacked weights trains every seed
    # on its own; each seed's loss depends on its own weights only.
    optimizer = torch.optim.Adam([*weights, *biases], lr=lr)
    x = XOR_X.expand(len(seeds), -1, -1)
    target = XOR_Y.expand(len(seeds), -1)

    def loss_per_seed() -> torch.Tensor:
        z = x
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            z = torch.baddbmm(b, z, w.transpose(1, 2))
            if i < len(weights) - 1:
                z = phi(z)
        return F.binary_cross_entropy_with_logits(z[..., 0], target, reduction="none").mean(dim=1)

    for _ in range(steps):
        optimizer.zero_grad()
        loss_per_seed().sum().backward()
        optimizer.step()
    with torch.no_grad():
        return loss_per_seed().double().numpy()


# --------------------------------------------------------------------------------------
# section 3: the derivation, one step at a time
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VarianceCheck:
    """One step of the variance derivation: the predicted and the measured value."""

    claim: str
    predicted: float
    measured: float

    @property
    def ratio(self) -> float:
        """measured / predicted."""
        return self.measured / self.predicted


@single_thread()  # one thread: faster at these sizes, and float sums in a fixed order
def variance_checks(n: int = 784, samples: int = 4096, seed: int = 0,
                    negative_slope: float = 0.1) -> list[VarianceCheck]:
    """Measure each step of the Kaiming/Xavier derivation against its prediction.

    Rows: ``Var(w^T x) = n Var(w) Var(x)`` for Gaussian ``x``; the same for real MNIST images,
    where ``x`` is not centred and the right quantity is ``E[x^2]``; ``E[relu(h)^2] = Var(h)/2``
    (while ``Var(relu(h))`` is smaller); Leaky ReLU's ``(1 + a^2) / 2``; one ReLU layer with
    ``Var(W) = 2 / n`` keeps the second moment; tanh and sigmoid slopes at 0.
    """
    n = check_int("n", n, minimum=1)
    samples = check_int("samples", samples, minimum=2)
    gen = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    checks: list[VarianceCheck] = []

    def randn(*shape: int) -> torch.Tensor:
        # standard normals drawn in float32 (about four times faster to draw than float64 on a
        # CPU), every sum and moment then computed in float64
        return torch.randn(*shape, generator=gen).double()

    # 1. linear layer, Gaussian inputs, Var(w) = 1/n
    w = randn(samples, n) / math.sqrt(n)
    xg = randn(samples, n)
    s = (w * xg).sum(dim=1)
    checks.append(VarianceCheck("Var(w.x), x ~ N(0,1), Var(w) = 1/n  ->  n Var(w) Var(x)", 1.0, float(s.var())))
    # 2. real MNIST images: the lecture's Var(x) vs the second moment E[x^2]
    x, _ = mnist_batch(256)
    x = x.double()
    wm = randn(samples, IN_FEATURES) / math.sqrt(IN_FEATURES)
    sm = wm @ x.T  # every (w, image) pair
    checks.append(VarianceCheck("Var(w.x), MNIST x, with the lecture's Var(x) of the pixels",
                                float(x.var()), float(sm.pow(2).mean())))
    checks.append(VarianceCheck("Var(w.x), MNIST x, with the second moment E[x^2]",
                                float(x.pow(2).mean()), float(sm.pow(2).mean())))
    # 3. ReLU halves the second moment (not the variance)
    h = randn(samples * 64)
    r = torch.relu(h)
    checks.append(VarianceCheck("E[relu(h)^2] / Var(h)", 0.5, float(r.pow(2).mean() / h.var())))
    checks.append(VarianceCheck("Var(relu(h)) / Var(h)  (= 1/2 - 1/(2 pi))", 0.5 - 1 / (2 * math.pi),
                                float(r.var() / h.var())))
    a = negative_slope
    lk = torch.where(h > 0, h, a * h)
    checks.append(VarianceCheck(f"E[leaky_relu(h)^2] / Var(h), slope a = {a:g}  ->  (1 + a^2)/2",
                                (1 + a * a) / 2, float(lk.pow(2).mean() / h.var())))
    # 4. one ReLU layer with Var(W) = 2/n keeps the second moment of the layer input
    zin = torch.relu(randn(512, n))
    wk = randn(n, n) * math.sqrt(2.0 / n)
    zout = torch.relu(zin @ wk.T)
    checks.append(VarianceCheck("E[z_out^2] / E[z_in^2], ReLU layer, Var(W) = 2/n", 1.0,
                                float(zout.pow(2).mean() / zin.pow(2).mean())))
    # 5. tanh with Xavier Var(W) = 1/n: keeps small signals, shrinks large ones
    for std in (0.1, 1.0):
        t = torch.tanh(std * randn(512, n))
        wx = randn(n, n) / math.sqrt(n)
        t2 = torch.tanh(t @ wx.T)
        checks.append(VarianceCheck(f"E[z_out^2] / E[z_in^2], tanh layer, Var(W) = 1/n, input std {std:g}",
                                    1.0, float(t2.pow(2).mean() / t.pow(2).mean())))
    return checks


# --------------------------------------------------------------------------------------
# section 5: PyTorch's defaults
# --------------------------------------------------------------------------------------
TORCH_INITS = ("default", "kaiming_normal", "xavier_normal")


def torch_init_mlp(init: str = "default", depth: int = 50, width: int = 100, activation: str = "relu",
                   bias: bool = False, seed: int = 0) -> nn.Sequential:
    """The :func:`make_mlp` architecture initialised the way PyTorch code usually does it.

    ``"default"``: whatever ``nn.Linear`` does on construction (``kaiming_uniform_`` with
    ``a = sqrt(5)``, i.e. ``U(-1/sqrt(n_in), 1/sqrt(n_in))``, ``Var = 1 / (3 n_in)``; biases
    ``U(-1/sqrt(n_in), 1/sqrt(n_in))``).  ``"kaiming_normal"``: ``nn.init.kaiming_normal_(w,
    nonlinearity="relu")`` (``Var = 2 / n_in``), biases 0.  ``"xavier_normal"``:
    ``nn.init.xavier_normal_`` (``Var = 2 / (n_in + n_out)``), biases 0.  The seed is used
    through a private generator (the global one is left alone).
    """
    check_choice("init", init, TORCH_INITS)
    depth = check_int("depth", depth, minimum=1)
    width = check_int("width", width, minimum=1)
    activation = check_choice("activation", activation, ACTIVATIONS)
    bias = check_bool("bias", bias)
    gen = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    sizes = [IN_FEATURES] + [width] * depth
    blocks: list[nn.Module] = []
    linears = []
    for n_in, n_out in pairwise(sizes):
        lin = nn.Linear(n_in, n_out, bias=bias)
        linears.append(lin)
        blocks.append(nn.Sequential(lin, activation_module(activation)))
    final = nn.Linear(width, N_CLASSES, bias=bias)
    linears.append(final)
    blocks.append(final)
    with torch.no_grad():
        for lin in linears:
            n_in = lin.in_features
            bound = 1.0 / math.sqrt(n_in)
            if init == "default":  # exactly what nn.Linear.reset_parameters does, seeded
                nn.init.kaiming_uniform_(lin.weight, a=math.sqrt(5), generator=gen)
                if lin.bias is not None:
                    nn.init.uniform_(lin.bias, -bound, bound, generator=gen)
            else:
                if init == "kaiming_normal":
                    nn.init.kaiming_normal_(lin.weight, nonlinearity="relu", generator=gen)
                else:
                    nn.init.xavier_normal_(lin.weight, generator=gen)
                if lin.bias is not None:
                    nn.init.zeros_(lin.bias)
    return nn.Sequential(*blocks)


def kaiming_reinit(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Re-initialise every ``nn.Linear`` of ``model`` in place, Kaiming-normal weights and zero biases.

    Every ``nn.Linear`` that ``model.modules()`` reaches (nested blocks included, in that order)
    gets the weight :func:`kaiming_normal` ``(in_features, out_features, generator)``, i.e.
    ``N(0, 2 / n_in)``, and a bias of zeros if it has one.  Other modules are left alone.

    Returns:
        ``model`` itself (re-initialised in place).

    Raises:
        TypeError: ``model`` not an ``nn.Module`` or ``generator`` not a ``torch.Generator``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                module.weight.copy_(kaiming_normal(module.in_features, module.out_features, generator))
                if module.bias is not None:
                    module.bias.zero_()
    return model


@single_thread()  # one thread: faster at these sizes, and float sums in a fixed order
def model_profile(model: nn.Sequential, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Activation and gradient norms per hidden block of a :func:`make_mlp`-shaped model on MNIST."""
    x, y = mnist_batch(batch)
    act, grad, _ = profile_model(model, x, y)
    return act, grad


__all__ = [
    "ACTIVATIONS", "LEAKY_SLOPE", "TORCH_INITS", "XOR_ACTIVATIONS", "FirstSteps", "NormProfile", "VarianceCheck",
    "WeightBank", "WeightInit", "activation_module", "fast_profile", "drift_log_slopes",
    "hidden_weights", "kaiming_normal", "kaiming_reinit", "leaky_signals", "make_mlp", "mean_top_probability",
    "mnist_batch", "model_profile", "norm_profile", "profile_model", "sgd_first_steps", "torch_init_mlp",
    "variance_checks", "xor_losses",
]
