"""Norm drift: how norms vanish or explode through repeated products and through training.

Compute functions for notebook 02 (the LayerNorm lecture's repeated products; the CMU DLSys
notes on initialization and normalization):

* :func:`repeated_product_norms` — the Frobenius norm of ``A_k = s · A_{k-1} · B_k``;
* :func:`growth_per_step`, :func:`first_nonfinite_step` — read such a sequence;
* :func:`normed_profile` — the activation/gradient-norm profile of the deep MLP with a
  BatchNorm after every hidden layer (the LayerNorm version is
  :func:`helpers.initialization.norm_profile` with ``layernorm=True``);
* :func:`backward_growth` — why the gradient grows ≈ 1.2× per layer towards the input when a
  normalization layer follows every ReLU (RMS/std of the normalization input);
* :func:`relu_stack_norms` — the activation norms of a bias-free Linear+ReLU stack;
* :func:`smoothed_losses` — a moving average of training-loss curves.

The long trainings of notebook 02 (many gains, seeds and learning rates) are the studies
``weights_move`` and ``layernorm_depth`` (``studies/``), with their own batched trainer.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import cast

import numpy as np
import torch
from torch import nn

from helpers.initialization import make_mlp, mnist_batch, profile_model
from helpers.training import single_thread
from helpers.validation import (
    check_bool,
    check_choice,
    check_int,
    check_positive,
    check_real,
)

#: The floating-point types :func:`repeated_product_norms` accepts.
DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}


def _check_dtype(dtype: object) -> torch.dtype:
    """``dtype`` if it is one of the torch dtypes of :data:`DTYPES`."""
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be one of the torch dtypes {list(DTYPES)}, got {dtype!r}")
    return check_choice("dtype", dtype, tuple(DTYPES.values()))


def predicted_growth(s: float, n: int, scale_by_sqrt_n: bool = False) -> float:
    """The factor by which ``‖A_k‖_F`` grows per step of ``A_k = s · A_{k-1} · B_k``.

    Each entry of ``A_{k-1} B_k`` is a sum of ``n`` products of independent unit-variance
    numbers, so its standard deviation is ``√n`` times an entry of ``A_{k-1}``: the norm
    grows by ``s·√n`` per step, and by ``s`` when ``B_k`` is divided by ``√n``.  The one
    place this formula is written: figures, the panel and :func:`predicted_overflow_step` use it.

    Raises:
        TypeError / ValueError: for an ``s`` that is not a finite number > 0 or an ``n`` < 1.
    """
    s = check_positive("s", s)
    n = check_int("n", n, minimum=1)
    return s if check_bool("scale_by_sqrt_n", scale_by_sqrt_n) else s * math.sqrt(n)


def predicted_norms(start: float, growth: float, steps: int) -> np.ndarray:
    """``start · growth^k`` for ``k = 0 … steps - 1``, float64 (``inf``/``0`` past its range).

    The curve a repeated product follows if every step multiplies its norm by exactly
    ``growth`` (e.g. :func:`predicted_growth`).
    """
    with np.errstate(over="ignore", under="ignore"):
        return start * growth ** np.arange(steps, dtype=np.float64)


@lru_cache(maxsize=256)
def cached_product_norms(s: float, n: int, dtype: str, scaled: bool, steps: int) -> np.ndarray:
    """:func:`repeated_product_norms` for a dtype given by name (a key of :data:`DTYPES`),
    cached and read-only: revisiting a setting of notebook 02's panel costs nothing."""
    norms = repeated_product_norms(s, n=n, steps=steps, scale_by_sqrt_n=scaled,
                                   dtype=DTYPES[check_choice("dtype", dtype, tuple(DTYPES))])
    norms.setflags(write=False)
    return norms


def norm_range(n: int, dtype: torch.dtype) -> tuple[float, float]:
    """About where ``‖A_k‖_F`` of an ``n × n`` matrix leaves ``dtype``'s range: ``(low, high)``.

    ``high = n × the largest finite value`` (capped at 1e308, a float64 limit) and
    ``low = n × the smallest subnormal``: one entry is about ``‖A_k‖_F / n``.
    """
    info = torch.finfo(dtype)
    return n * info.smallest_normal * info.eps, min(n * info.max, 1e308)


def repeated_product_norms(
    s: float,
    n: int = 30,
    steps: int = 50,
    scale_by_sqrt_n: bool = False,
    dtype: torch.dtype = torch.float32,
    seed: int = 42,
) -> np.ndarray:
    """The Frobenius norms ‖A_0‖_F, …, ‖A_steps‖_F of ``A_k = s · A_{k-1} · B_k``.

    ``A_0`` and every ``B_k`` are ``n × n`` with N(0, 1) entries (``B_k`` divided by √n
    when ``scale_by_sqrt_n``), drawn in float64 from one seeded generator and rounded to
    ``dtype``; the products are computed in ``dtype``, so they overflow and underflow where
    that type does.  Each product multiplies the norm by about ``s·√n`` (by about ``s`` when
    scaled).

    Args:
        s: the scale factor, a finite number > 0.
        n: the matrix size, >= 1.
        steps: the number of products, >= 1.
        scale_by_sqrt_n: divide every ``B_k`` by √n.
        dtype: one of ``torch.float16``, ``torch.bfloat16``, ``torch.float32``, ``torch.float64``.
        seed: seed of the private generator, >= 0.

    Returns:
        A float64 array of shape ``(steps + 1,)``.  Once an entry of ``A_k`` overflows the
        norm is ``inf`` from then on (never ``nan``); once every entry underflows it is
        ``0.0``.  No exception is raised for overflow or underflow.

    Raises:
        TypeError: for an ``s``, ``n``, ``steps`` or ``seed`` of the wrong type, or a ``dtype``
            that is not a torch dtype.
        ValueError: for an out-of-range ``s``, ``n``, ``steps`` or ``seed``, or another torch dtype.
    """
    s = check_positive("s", s)
    n = check_int("n", n, minimum=1)
    steps = check_int("steps", steps, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    dtype = _check_dtype(dtype)

    generator = torch.Generator().manual_seed(seed)
    draws = torch.randn(steps + 1, n, n, generator=generator, dtype=torch.float64)
    if scale_by_sqrt_n:
        draws[1:] /= math.sqrt(n)
    draws = draws.to(dtype)
    scale = torch.tensor(float(s), dtype=torch.float64).to(dtype)
    norms = np.empty(steps + 1, dtype=np.float64)
    a = draws[0]
    overflowed = False
    for k in range(steps + 1):
        if k > 0 and not overflowed:
            a = (scale * a) @ draws[k]
        if overflowed or not bool(torch.isfinite(a).all()):
            overflowed = True
            norms[k] = math.inf
        else:
            norms[k] = float(torch.linalg.matrix_norm(a.double()))
    return norms


def growth_per_step(norms: np.ndarray) -> float:
    """The geometric-mean factor by which the norm changes per step, over the steps where
    it is finite and > 0 (``nan`` if fewer than two such steps)."""
    norms = np.asarray(norms, dtype=np.float64)
    good = np.isfinite(norms) & (norms > 0)
    last = (int(np.argmin(good)) if not good.all() else len(norms)) - 1
    if last < 1:
        return math.nan
    return float(np.exp((np.log(norms[last]) - np.log(norms[0])) / last))


def first_nonfinite_step(norms: np.ndarray) -> int | None:
    """The first step whose norm is ``inf`` (overflow) or ``0`` (underflow), else ``None``."""
    norms = np.asarray(norms, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(norms) | (norms == 0))
    return int(bad[0]) if bad.size else None


def predicted_overflow_step(s: float, n: int, scale_by_sqrt_n: bool, dtype: torch.dtype) -> float:
    """The step at which ``n · (s·√n)^k`` (``n · s^k`` when scaled) leaves ``dtype``'s range:
    its largest value when the growth is > 1, its smallest subnormal when < 1, ``inf`` at 1.

    ``‖A_0‖_F ≈ n`` for an ``n × n`` matrix of N(0, 1) entries; a single entry is about
    ``‖A_k‖_F / n``, and it is the entries that overflow or underflow.
    """
    growth = predicted_growth(s, n, scale_by_sqrt_n)
    if growth == 1:
        return math.inf
    info = torch.finfo(_check_dtype(dtype))
    limit = info.max if growth > 1 else info.smallest_normal * info.eps
    # entry size ≈ 1 · growth^k reaches the limit
    return math.log(limit) / math.log(growth)


# --------------------------------------------------------------------------------------
# Training with snapshots: "weights don't move that much"
# --------------------------------------------------------------------------------------


def _blocks(model: nn.Sequential) -> list[nn.Sequential]:
    """The hidden blocks of a :func:`helpers.initialization.make_mlp` network."""
    return cast("list[nn.Sequential]", list(model)[:-1])  # each: Linear, activation[, normalization]


# --------------------------------------------------------------------------------------
# Normalization layers: the BatchNorm version of the norm profile
# --------------------------------------------------------------------------------------
NORMALIZATIONS = ("none", "layernorm", "batchnorm")


def make_normed_mlp(gain: float, norm: str = "none", depth: int = 50, width: int = 100,
                    seed: int = 0) -> nn.Sequential:
    """:func:`helpers.initialization.make_mlp` (ReLU) with an optional normalization layer,
    without affine parameters, at the end of every hidden block.

    ``norm="layernorm"`` is ``make_mlp(..., layernorm=True)``; ``norm="batchnorm"`` appends
    ``nn.BatchNorm1d(width, affine=False)`` to each block (batch statistics in train mode,
    running averages in eval mode).  The weights are the same for every ``norm``.

    Raises:
        ValueError: for an unknown ``norm`` (make_mlp validates the rest).
    """
    check_choice("norm", norm, NORMALIZATIONS)
    model = make_mlp(gain, depth, width, "relu", norm == "layernorm", seed)
    if norm == "batchnorm":
        for block in _blocks(model):
            block.append(nn.BatchNorm1d(width, affine=False))
    return model


def normed_profile(gain: float, norm: str = "none", depth: int = 50, width: int = 100,
                   batch: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Activation and gradient norms per hidden layer at initialization, on the first ``batch``
    MNIST images, of :func:`make_normed_mlp` (BatchNorm in train mode: batch statistics).

    ``norm="none"``/``"layernorm"`` give the same numbers as
    :func:`helpers.initialization.norm_profile`.
    """
    model = make_normed_mlp(gain, norm, depth, width, seed)
    x, y = mnist_batch(batch)
    with single_thread():  # tiny operations: one thread is faster and machine-independent
        act, grad, _ = profile_model(model, x, y)
    return act, grad


class RescaledProfiles:
    """Norm profiles of :func:`make_normed_mlp` networks for any gain, drawing weights once.

    ``W ~ N(0, c/n)`` is ``√c`` times ``W ~ N(0, 1/n)``: one network per ``(depth, norm)`` is
    drawn at gain 1 and its weights are multiplied in place by ``√(c_new / c_old)`` whenever
    another gain is asked for, so every gain of a ``(depth, norm)`` sees the same random
    draw (a slider moving ``c`` changes the scale only, not the sample).  Profiles are
    cached per ``(gain, depth, norm)``; the ``c = 2`` reference per ``(depth, norm)`` comes
    from :func:`normed_profile` (its own network, the same seed).

    Args:
        batch: the number of MNIST images pushed through each network.
        width: the hidden width of every network.
    """

    def __init__(self, batch: int = 256, width: int = 100) -> None:
        self.batch, self.width = batch, width
        self._x, self._y = mnist_batch(self.batch)
        self._models: dict[tuple[int, str], tuple[nn.Sequential, float]] = {}
        self._profiles: dict[tuple[float, int, str], tuple[np.ndarray, np.ndarray]] = {}
        self._references: dict[tuple[float, int, str], tuple[np.ndarray, np.ndarray]] = {}

    def profile(self, gain: float, depth: int, norm: str) -> tuple[np.ndarray, np.ndarray]:
        """Activation and gradient norms per hidden layer for gain ``gain`` (cached).

        Raises:
            TypeError / ValueError: for a bad ``gain``, ``depth`` or ``norm`` (a panel's values).
        """
        gain = round(check_positive("gain", gain), 6)
        key = (gain, depth, norm)
        if key not in self._profiles:
            model, current = self._models.get((depth, norm)) or (
                make_normed_mlp(1.0, norm, depth=depth, width=self.width), 1.0)
            with torch.no_grad():
                factor = math.sqrt(gain / current)
                for module in model.modules():
                    if isinstance(module, nn.Linear):
                        module.weight.mul_(factor)
            self._models[depth, norm] = (model, gain)
            with single_thread():
                act, grad, _ = profile_model(model, self._x, self._y)
            self._profiles[key] = (act, grad)
        return self._profiles[key]

    def reference(self, depth: int, norm: str, gain: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
        """:func:`normed_profile` at ``gain`` for ``(depth, norm)`` on the same batch (cached)."""
        key = (gain, depth, norm)
        if key not in self._references:
            self._references[key] = normed_profile(gain, norm, depth=depth, width=self.width,
                                                   batch=self.batch)
        return self._references[key]


def smoothed_losses(losses: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """The moving average over ``window`` steps of every seed's training loss.

    ``losses`` is ``[steps, seeds]``; a ``nan`` or ``inf`` loss (a diverged run) counts as
    ln 10, the loss of guessing a digit uniformly, so a diverged run reads as not learning.
    The window shrinks to the number of steps if that is smaller.

    Returns:
        ``(steps, smooth)``: the step at the end of each window, ``[points]``, and the averages,
        ``[seeds, points]``.

    Raises:
        ValueError: if ``losses`` is not 2-D with at least one step, or ``window`` < 1.
    """
    losses = np.nan_to_num(np.asarray(losses, dtype=np.float64), nan=math.log(10), posinf=math.log(10))
    if losses.ndim != 2 or losses.shape[0] < 1:
        raise ValueError(f"losses must be 2-D [steps, seeds] with at least one step, got shape {losses.shape}")
    w = min(check_int("window", window, minimum=1), losses.shape[0])
    kernel = np.ones(w) / w
    smooth = np.stack([np.convolve(losses[:, k], kernel, mode="valid") for k in range(losses.shape[1])])
    return np.arange(w - 1, losses.shape[0]), smooth


def rms_over_std(values: torch.Tensor, dim: int) -> torch.Tensor:
    """``sqrt(mean(v²)) / std(v)`` along ``dim`` (population std): how much larger the scale a
    normalization layer divides by would be if it did not subtract the mean."""
    return values.pow(2).mean(dim).sqrt() / values.std(dim, unbiased=False)


def backward_growth(gain: float, norm: str, depth: int = 50, width: int = 100, batch: int = 256,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Why gradients grow towards the input when a normalization layer follows every ReLU.

    Returns ``(grad_norms, ratios)`` for :func:`make_normed_mlp` ``(gain, norm, depth, width,
    seed)`` on the first ``batch`` MNIST images: ``grad_norms[i]`` is ``‖∂L/∂W_{i+1}‖_F``
    (as in :func:`normed_profile`) and ``ratios[i]`` is :func:`rms_over_std` of the input of
    block ``i+1``'s normalization layer (per example for LayerNorm, then averaged; per unit
    over the batch for BatchNorm, then averaged).  Going backwards through one block, the
    weight matrix and the ReLU multiply the gradient by about the RMS of the ReLU output and
    the normalization divides it by that output's std, so each block multiplies the gradient
    by about ``ratios[i]`` (√(π/(π−1)) ≈ 1.21 for a ReLU of a centred Gaussian), whatever the gain.

    Raises:
        ValueError: if ``norm`` is not ``"layernorm"`` or ``"batchnorm"``.
    """
    check_choice("norm", norm, ("layernorm", "batchnorm"))
    model = make_normed_mlp(gain, norm, depth, width, seed)
    x, y = mnist_batch(batch)
    with single_thread():
        _, grad, _ = profile_model(model, x, y)
        ratios = np.empty(depth)
        h = x
        with torch.no_grad():
            for i, block in enumerate(_blocks(model)):
                r = block[1](block[0](h))
                ratios[i] = float(rms_over_std(r, -1 if norm == "layernorm" else 0).mean())
                h = block[2](r)
    return grad, ratios


def relu_stack_norms(weights: list[torch.Tensor] | tuple[torch.Tensor, ...], x: torch.Tensor) -> torch.Tensor:
    """The mean activation norm of every layer of a bias-free Linear+ReLU stack.

    ``h_0 = x`` and ``h_l = ReLU(h_{l-1} W_lᵀ)``: ``weights[l-1]`` has the shape of
    ``nn.Linear.weight``, ``(n_out, n_in)``.  Entry ``l-1`` of the result is the mean over the
    batch of ``‖h_l‖₂`` (the input is not included): the activation norms
    :func:`helpers.initialization.profile_model` measures in the hidden blocks of a ``make_mlp`` network.

    Args:
        weights: one or more 2-D weight matrices, each one's ``n_in`` the previous one's ``n_out``.
        x: the input batch, ``(batch, n_in)`` of the first matrix.

    Returns:
        A tensor of shape ``(len(weights),)`` in ``x``'s dtype, detached from autograd.

    Raises:
        TypeError: if ``weights`` is not a list/tuple of tensors or ``x`` is not a tensor.
        ValueError: for no weights, a matrix that is not 2-D, or shapes that do not chain.
    """
    if not isinstance(weights, (list, tuple)) or not all(isinstance(w, torch.Tensor) for w in weights):
        raise TypeError(f"weights must be a list or tuple of torch.Tensor, got {type(weights).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if len(weights) == 0:
        raise ValueError("weights must hold at least one matrix, got none")
    if x.dim() != 2:
        raise ValueError(f"x must be 2-D (batch, n_in), got shape {tuple(x.shape)}")
    n_in = x.shape[1]
    for i, w in enumerate(weights):
        if w.dim() != 2 or w.shape[1] != n_in:
            raise ValueError(f"weights[{i}] must have shape (n_out, {n_in}), got {tuple(w.shape)}")
        n_in = w.shape[0]
    norms = torch.empty(len(weights), dtype=x.dtype)
    with torch.no_grad():
        h = x
        for i, w in enumerate(weights):
            h = torch.relu(h @ w.to(x.dtype).t())
            norms[i] = h.norm(dim=1).mean()
    return norms


def format_cell(values: np.ndarray, fmt: str = ".2f", scale: float = 1.0) -> str:
    """One cell of a seed sweep as text: ``"median (min–max)"`` of the finite values times
    ``scale``, with ``", k diverged"`` when ``k`` of them are ``nan``/``inf`` (a diverged run),
    or ``"all diverged"`` when every one is.

    Raises:
        ValueError: for an empty ``values``.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("values must hold at least one value, got none")
    finite = values[np.isfinite(values)] * check_real("scale", scale)
    if finite.size == 0:
        return "all diverged"
    text = f"{np.median(finite):{fmt}} ({finite.min():{fmt}}–{finite.max():{fmt}})"
    lost = values.size - finite.size
    return text + (f", {lost} diverged" if lost else "")
