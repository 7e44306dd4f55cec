"""Norm drift: how norms vanish or explode through repeated products and through training.

Compute functions for notebook 02 (lectures 000 and 001):

* :func:`repeated_product_norms` — the Frobenius norm of ``A_k = s · A_{k-1} · B_k``;
* :func:`growth_per_step`, :func:`first_nonfinite_step` — read such a sequence;
* :func:`train_with_snapshots` — the shared training loop (:func:`helpers.training.train`)
  plus what the "weights don't move that much" experiment needs: the weights before and
  after, per-layer activation norms before and after, and the activation norms of a few
  layers at every step (recorded through the ``on_step`` hook);
* :func:`batchnorm_profile` — the activation/gradient-norm profile of the deep MLP with a
  BatchNorm after every hidden layer (the LayerNorm version is
  :func:`helpers.initialization.norm_profile` with ``layernorm=True``).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

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


def hidden_linears(model: nn.Module) -> list[nn.Linear]:
    """The ``nn.Linear`` layers of ``model`` in forward order (all of them, output included)."""
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise ValueError("model must contain at least one nn.Linear layer")
    return layers


def weight_variances(model: nn.Module) -> np.ndarray:
    """The variance of each ``nn.Linear`` weight matrix, in forward order (``(layers,)``)."""
    return np.array([float(layer.weight.detach().double().var(unbiased=False))
                     for layer in hidden_linears(model)])


def relative_weight_change(before: nn.Module | list[torch.Tensor], after: nn.Module) -> np.ndarray:
    """``‖W_T − W_0‖_F / ‖W_0‖_F`` for each ``nn.Linear`` layer, in forward order."""
    if isinstance(before, nn.Module):
        before = [layer.weight.detach().clone() for layer in hidden_linears(before)]
    after_w = [layer.weight.detach() for layer in hidden_linears(after)]
    if len(before) != len(after_w):
        raise ValueError(f"before and after must have the same layers, got {len(before)} and {len(after_w)}")
    return np.array([float((a.double() - b.double()).norm() / b.double().norm())
                     for b, a in zip(before, after_w)])


@torch.no_grad()
def activation_norms(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """The mean per-example L2 norm of the output of every ``nn.Linear`` layer except the
    last (the hidden pre-activations), for inputs ``x``; shape ``(layers - 1,)``.

    The model is put in eval mode for the measurement and restored afterwards.
    """
    linears = hidden_linears(model)[:-1]
    found: list[float] = []
    handles = [layer.register_forward_hook(
        lambda _m, _i, out: found.append(float(out.double().norm(dim=-1).mean())))
        for layer in linears]
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return np.array(found)


class _StepNormRecorder:
    """Forward hooks that keep the latest per-example mean activation norm of some layers;
    :meth:`__call__` is an ``on_step`` hook returning them (every ``every`` steps)."""

    def __init__(self, model: nn.Module, layers: list[int], every: int) -> None:
        linears = hidden_linears(model)
        self.latest = np.full(len(layers), np.nan)
        self.every = every
        self.handles = []
        for slot, index in enumerate(layers):
            def hook(_m: nn.Module, _i: object, out: torch.Tensor, slot: int = slot) -> None:
                if torch.is_grad_enabled():  # only training forwards, not evaluations
                    self.latest[slot] = float(out.detach().norm(dim=-1).mean())
            self.handles.append(linears[index].register_forward_hook(hook))

    def __call__(self, step: int, _model: nn.Module) -> np.ndarray | None:
        return self.latest.copy() if step % self.every == 0 else None

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


@dataclass
class DriftRun:
    """What :func:`train_with_snapshots` measures."""

    run: TrainingRun
    """The shared training loop's record (per-step losses and learning rates)."""
    weight_var_init: np.ndarray
    """Variance of each layer's weights at initialization, ``(layers,)``."""
    weight_var_final: np.ndarray
    """Variance of each layer's weights after training, ``(layers,)``."""
    relative_change: np.ndarray
    """``‖W_T − W_0‖_F / ‖W_0‖_F`` per layer, ``(layers,)``."""
    act_norms_init: np.ndarray
    """Mean activation norm per hidden layer on the probe inputs, before training."""
    act_norms_final: np.ndarray
    """The same after training."""
    tracked_layers: list[int]
    """Indices (0-based, among the Linear layers) of the layers tracked during training."""
    tracked_steps: np.ndarray
    """The steps at which the tracked norms were recorded, ``(records,)``."""
    tracked_norms: np.ndarray
    """Mean activation norm of the tracked layers on the training batch, ``(records, len(tracked_layers))``."""
    test_error: float = math.nan
    """Test error after training (``nan`` if no test set was given)."""
    initial_test_error: float = math.nan
    """Test error before training."""
    final_model: nn.Module | None = field(default=None, repr=False)
    """The trained model (kept so later sections can reuse it)."""

    @property
    def layers(self) -> int:
        """The number of ``nn.Linear`` layers."""
        return len(self.weight_var_init)


def train_with_snapshots(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    x_probe: torch.Tensor,
    x_test: torch.Tensor | None = None,
    y_test: torch.Tensor | None = None,
    track_layers: list[int] | tuple[int, ...] = (0, 9, 24, 48),
    track_every: int = 5,
    lr: float = 0.002,
    epochs: int = 1,
    batch_size: int = 32,
    max_steps: int | None = None,
    momentum: float = 0.0,
    warmup_steps: int = 0,
    seed: int = 0,
    progress: bool = False,
) -> DriftRun:
    """Train ``model`` (in place) with :func:`helpers.training.train` and measure the drift.

    Args:
        model: an MLP whose ``nn.Linear`` layers are the layers measured.
        x, y: training inputs and labels.
        x_probe: fixed inputs on which the activation-norm profile is measured before and after.
        x_test, y_test: optional test set for the error before and after.
        track_layers: Linear-layer indices whose activation norm is recorded during training.
        track_every: record them every this many steps.
        lr, epochs, batch_size, max_steps, momentum, warmup_steps, seed, progress: passed to
            :func:`helpers.training.train` (plain SGD).

    Returns:
        A :class:`DriftRun`.

    Raises:
        ValueError: for a tracked layer index out of range or a bad ``track_every``
            (the training loop validates the rest).
    """
    linears = hidden_linears(model)
    track = [int(i) for i in track_layers]
    if any(not 0 <= i < len(linears) for i in track):
        raise ValueError(f"track_layers must be indices in [0, {len(linears) - 1}], got {track}")
    _check_int("track_every", track_every, 1)
    initial = [layer.weight.detach().clone() for layer in linears]
    var_init = weight_variances(model)
    act_init = activation_norms(model, x_probe)
    err_init = error_rate(model, x_test, y_test) if x_test is not None else math.nan
    recorder = _StepNormRecorder(model, track, track_every)
    try:
        run = train(model, x, y, lr=lr, epochs=epochs, batch_size=batch_size, optimizer="sgd",
                    momentum=momentum, warmup_steps=warmup_steps, max_steps=max_steps,
                    on_step=recorder, seed=seed, progress=progress)
    finally:
        recorder.remove()
    tracked = np.array(run.hook_values).reshape(-1, len(track))
    return DriftRun(
        run=run,
        weight_var_init=var_init,
        weight_var_final=weight_variances(model),
        relative_change=relative_weight_change(initial, model),
        act_norms_init=act_init,
        act_norms_final=activation_norms(model, x_probe),
        tracked_layers=track,
        tracked_steps=np.arange(0, run.steps, track_every)[: len(tracked)],
        tracked_norms=tracked,
        test_error=error_rate(model, x_test, y_test) if x_test is not None else math.nan,
        initial_test_error=err_init,
        final_model=model,
    )


def copy_model(model: nn.Module) -> nn.Module:
    """An independent copy of ``model`` (same weights), e.g. to train one init two ways."""
    return copy.deepcopy(model)
