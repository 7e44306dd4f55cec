"""Norm drift: how norms vanish or explode through repeated products and through training.

Compute functions for notebook 02 (lectures 000 and 001):

* :func:`repeated_product_norms` — the Frobenius norm of ``A_k = s · A_{k-1} · B_k``;
* :func:`growth_per_step`, :func:`first_nonfinite_step` — read such a sequence;
* :func:`train_with_snapshots` — the shared training loop (:func:`helpers.training.train`)
  plus what the "weights don't move that much" experiment needs: the weights before and
  after, per-layer activation norms before and after, and the activation norms of a few
  layers at every step (recorded through the ``on_step`` hook);
* :func:`normed_profile` — the activation/gradient-norm profile of the deep MLP with a
  BatchNorm after every hidden layer (the LayerNorm version is
  :func:`helpers.initialization.norm_profile` with ``layernorm=True``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from helpers.initialization import hidden_weights, make_mlp, mnist_batch, profile_model
from helpers.training import TrainingRun, error_rate, train

#: The floating-point types :func:`repeated_product_norms` accepts.
DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}


def _dtype_name(dtype: torch.dtype) -> str:
    for name, value in DTYPES.items():
        if value == dtype:
            return name
    raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


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
        ValueError: for an invalid ``s``, ``n``, ``steps``, ``dtype`` or ``seed``.
    """
    if isinstance(s, bool) or not isinstance(s, (int, float, np.floating, np.integer)):
        raise ValueError(f"s must be a finite number > 0, got {s!r}")
    if not (math.isfinite(float(s)) and s > 0):
        raise ValueError(f"s must be a finite number > 0, got {s}")
    n = _check_int("n", n, 1)
    steps = _check_int("steps", steps, 1)
    seed = _check_int("seed", seed, 0)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"dtype must be one of {list(DTYPES)} (torch dtypes), got {dtype!r}")
    _dtype_name(dtype)

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
    growth = s if scale_by_sqrt_n else s * math.sqrt(n)
    if growth == 1:
        return math.inf
    info = torch.finfo(dtype)
    limit = info.max if growth > 1 else info.smallest_normal * info.eps
    # entry size ≈ 1 · growth^k reaches the limit
    return math.log(limit) / math.log(growth)


# --------------------------------------------------------------------------------------
# Training with snapshots: "weights don't move that much"
# --------------------------------------------------------------------------------------


def _blocks(model: nn.Module) -> list[nn.Module]:
    """The hidden blocks of a :func:`helpers.initialization.make_mlp` network."""
    if not isinstance(model, nn.Sequential) or len(model) < 2:
        raise ValueError("model must be a make_mlp network: nn.Sequential of hidden blocks + a final nn.Linear")
    return list(model)[:-1]


def weight_variances(model: nn.Sequential) -> np.ndarray:
    """The variance of each hidden weight matrix ``W_1..W_depth`` (shape ``(depth,)``)."""
    _blocks(model)
    return np.array([float(w.detach().double().var(unbiased=False)) for w in hidden_weights(model)])


def relative_weight_change(before: list[torch.Tensor], after: nn.Sequential) -> np.ndarray:
    """``‖W_T − W_0‖_F / ‖W_0‖_F`` for each hidden weight matrix (``before`` = the ``W_0``)."""
    now = hidden_weights(after)
    if len(before) != len(now):
        raise ValueError(f"before must hold one matrix per hidden layer ({len(now)}), got {len(before)}")
    return np.array([float((a.detach().double() - b.double()).norm() / b.double().norm())
                     for b, a in zip(before, now)])


def model_norms(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Activation and weight-gradient norms per hidden layer of ``model`` on ``(x, y)``
    (:func:`helpers.initialization.profile_model`, in eval mode, state restored)."""
    was_training = model.training
    model.eval()
    try:
        act, grad, _ = profile_model(model, x, y)
    finally:
        model.train(was_training)
    return act, grad


class _StepNormRecorder:
    """Forward hooks that keep the latest mean per-example activation norm of some hidden
    blocks; calling it is an ``on_step`` hook returning them every ``every`` steps."""

    def __init__(self, model: nn.Sequential, layers: list[int], every: int) -> None:
        blocks = _blocks(model)
        self.latest = np.full(len(layers), np.nan)
        self.every = every
        self.handles = []
        for slot, index in enumerate(layers):
            def hook(_m: nn.Module, _i: object, out: torch.Tensor, slot: int = slot) -> None:
                if torch.is_grad_enabled():  # training forwards only, not evaluations
                    self.latest[slot] = float(out.detach().norm(dim=-1).mean())
            self.handles.append(blocks[index].register_forward_hook(hook))

    def __call__(self, step: int, _model: nn.Module) -> np.ndarray | None:
        return self.latest.copy() if step % self.every == 0 else None

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


@dataclass
class DriftRun:
    """What :func:`train_with_snapshots` measures (layers are the hidden layers 1..depth)."""

    run: TrainingRun
    """The shared training loop's record (per-step losses and learning rates)."""
    weight_var_init: np.ndarray
    """Variance of each hidden weight matrix at initialization, ``(depth,)``."""
    weight_var_final: np.ndarray
    """The same after training."""
    relative_change: np.ndarray
    """``‖W_T − W_0‖_F / ‖W_0‖_F`` per hidden layer, ``(depth,)``."""
    act_norms_init: np.ndarray
    """Mean activation norm per hidden layer on the probe batch, before training."""
    act_norms_final: np.ndarray
    """The same after training."""
    grad_norms_init: np.ndarray
    """Weight-gradient norm per hidden layer on the probe batch, before training."""
    grad_norms_final: np.ndarray
    """The same after training."""
    tracked_layers: list[int]
    """Hidden layers (1-based, like the profile plots) tracked during training."""
    tracked_steps: np.ndarray
    """The steps at which the tracked norms were recorded, ``(records,)``."""
    tracked_norms: np.ndarray
    """Mean activation norm of the tracked layers on each training batch, ``(records, len(tracked_layers))``."""
    test_error: float = math.nan
    """Test error after training (``nan`` without a test set)."""
    initial_test_error: float = math.nan
    """Test error before training."""
    model: nn.Sequential | None = field(default=None, repr=False)
    """The trained model."""

    @property
    def depth(self) -> int:
        """The number of hidden layers."""
        return len(self.weight_var_init)

    @property
    def final_loss(self) -> float:
        """Mean training loss over the last 10% of the steps."""
        tail = max(1, self.run.steps // 10)
        return float(np.nanmean(self.run.losses[-tail:]))


def train_with_snapshots(
    model: nn.Sequential,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    probe: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    track_layers: list[int] | tuple[int, ...] = (1, 10, 25, 50),
    track_every: int = 10,
    lr: float = 0.005,
    epochs: int = 1,
    batch_size: int = 64,
    max_steps: int | None = None,
    momentum: float = 0.0,
    warmup_steps: int = 100,
    seed: int = 0,
    progress: bool = False,
) -> DriftRun:
    """Train a :func:`helpers.initialization.make_mlp` network in place with plain SGD
    (:func:`helpers.training.train`) and measure how far its weights and norms drift.

    Args:
        model: the network (``nn.Sequential`` of hidden blocks and a final ``nn.Linear``).
        x, y: training images and labels.
        probe: a fixed batch ``(x, y)`` on which the activation- and gradient-norm profiles
            are measured before and after training.
        test: optional test set ``(x, y)`` for the error before and after.
        track_layers: hidden layers (1-based) whose activation norm is recorded during
            training, through forward hooks on the training batches (no extra forward pass).
        track_every: record them every this many steps.
        lr, epochs, batch_size, max_steps, momentum, warmup_steps, seed, progress: passed to
            :func:`helpers.training.train` with ``optimizer="sgd"``.

    Raises:
        ValueError: for a model that is not a make_mlp network, a tracked layer out of
            range or a bad ``track_every`` (the training loop validates the rest).
    """
    depth = len(_blocks(model))
    track = [int(i) for i in track_layers]
    if not track or any(not 1 <= i <= depth for i in track):
        raise ValueError(f"track_layers must be hidden layers in [1, {depth}], got {track}")
    every = _check_int("track_every", track_every, 1)
    initial = [w.detach().clone() for w in hidden_weights(model)]
    var_init = weight_variances(model)
    act_init, grad_init = model_norms(model, *probe)
    err_init = error_rate(model, *test) if test is not None else math.nan
    recorder = _StepNormRecorder(model, [i - 1 for i in track], every)
    try:
        run = train(model, x, y, lr=lr, epochs=epochs, batch_size=batch_size, optimizer="sgd",
                    momentum=momentum, warmup_steps=warmup_steps, max_steps=max_steps,
                    on_step=recorder, seed=seed, progress=progress)
    finally:
        recorder.remove()
    tracked = np.array(run.hook_values, dtype=np.float64).reshape(-1, len(track))
    act_final, grad_final = model_norms(model, *probe)
    return DriftRun(
        run=run,
        weight_var_init=var_init,
        weight_var_final=weight_variances(model),
        relative_change=relative_weight_change(initial, model),
        act_norms_init=act_init,
        act_norms_final=act_final,
        grad_norms_init=grad_init,
        grad_norms_final=grad_final,
        tracked_layers=track,
        tracked_steps=np.arange(0, run.steps, every)[: len(tracked)],
        tracked_norms=tracked,
        test_error=error_rate(model, *test) if test is not None else math.nan,
        initial_test_error=err_init,
        model=model,
    )


# --------------------------------------------------------------------------------------
# Normalization layers: the BatchNorm version of the norm profile
# --------------------------------------------------------------------------------------
NORMS = ("none", "layernorm", "batchnorm")


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
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
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
    act, grad, _ = profile_model(model, x, y)
    return act, grad
