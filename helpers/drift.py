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
* :class:`BatchedMLP`, :func:`train_batched` — S deep MLPs (several gains and seeds) trained
  at once as one model with ``torch.bmm``; :func:`drift_study` measures how far their weights
  and norms move, :func:`layernorm_sweep` trains LayerNorm MLPs for several learning rates ×
  seeds at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from helpers.initialization import make_mlp, mnist_batch, profile_model
from helpers.training import single_thread, warmup_lr
from helpers.validation import (
    check_bool,
    check_choice,
    check_int,
    check_ints,
    check_positive,
    check_real,
    check_reals,
    is_real,
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
    start = check_real("start", start, minimum=0.0)
    growth = check_real("growth", growth, minimum=0.0)
    steps = check_int("steps", steps, minimum=1)
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
    n = check_int("n", n, minimum=1)
    info = torch.finfo(_check_dtype(dtype))
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


def _blocks(model: nn.Module) -> list[nn.Sequential]:
    """The hidden blocks of a :func:`helpers.initialization.make_mlp` network."""
    if not isinstance(model, nn.Sequential) or len(model) < 2:
        raise ValueError("model must be a make_mlp network: nn.Sequential of hidden blocks + a final nn.Linear")
    return cast("list[nn.Sequential]", list(model)[:-1])  # each: Linear, activation[, normalization]


def _linears(model: nn.Sequential) -> list[nn.Linear]:
    """The Linear layers of a :func:`helpers.initialization.make_mlp` network, in order: the
    first layer of every hidden block, then the output layer."""
    return cast("list[nn.Linear]", [block[0] for block in _blocks(model)] + [model[-1]])


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
        self.batch = check_int("batch", batch, minimum=1)
        self.width = check_int("width", width, minimum=1)
        self._x, self._y = mnist_batch(self.batch)
        self._models: dict[tuple[int, str], tuple[nn.Sequential, float]] = {}
        self._profiles: dict[tuple[float, int, str], tuple[np.ndarray, np.ndarray]] = {}
        self._references: dict[tuple[float, int, str], tuple[np.ndarray, np.ndarray]] = {}

    def profile(self, gain: float, depth: int, norm: str) -> tuple[np.ndarray, np.ndarray]:
        """Activation and gradient norms per hidden layer for gain ``gain`` (cached).

        Raises:
            TypeError / ValueError: for a bad ``gain``, ``depth`` or ``norm``.
        """
        gain = round(check_positive("gain", gain), 6)
        depth = check_int("depth", depth, minimum=1)
        check_choice("norm", norm, NORMALIZATIONS)
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
        key = (check_positive("gain", gain), check_int("depth", depth, minimum=1),
               check_choice("norm", norm, NORMALIZATIONS))
        if key not in self._references:
            self._references[key] = normed_profile(gain, norm, depth=depth, width=self.width,
                                                   batch=self.batch)
        return self._references[key]


# --------------------------------------------------------------------------------------
# Many networks at once: S deep MLPs as one batched model (torch.bmm)
# --------------------------------------------------------------------------------------
BATCHED_NORMALIZATIONS = ("none", "layernorm")


def _check_members(gains: object, seeds: object) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """One gain and one seed per member network: equally long, non-empty sequences."""
    gains_t = check_reals("gains", gains)
    seeds_t = check_ints("seeds", seeds, minimum=0)
    if len(gains_t) != len(seeds_t):
        raise ValueError(f"gains and seeds must be of equal length (one per member), got {len(gains_t)} "
                         f"and {len(seeds_t)}")
    return gains_t, seeds_t


class BatchedMLP(nn.Module):
    """``S`` independent :func:`make_normed_mlp` networks evaluated as one model.

    Member ``k`` has exactly the weights of ``make_normed_mlp(gains[k], norm, depth, width,
    seeds[k])``; they are stacked as ``weights[i]`` of shape ``[S, n_in, n_out]`` (the
    transpose of ``nn.Linear.weight``), so one ``torch.bmm`` computes layer ``i`` of every
    member.  The members share nothing but the input batch: the gradient of the *sum* of
    their losses with respect to member ``k``'s weights is the gradient of member ``k``'s
    own loss, so training the batched model with per-member plain SGD is training ``S``
    separate networks on the same batches.

    ``forward(x)`` takes ``x`` of shape ``[B, in]`` (the same batch for every member) or
    ``[S, B, in]`` and returns logits ``[S, B, classes]``.  With ``norm="layernorm"`` each
    hidden block ends with a LayerNorm without affine parameters (eps 1e-5, like
    ``nn.LayerNorm``); with ``residual=True`` hidden blocks 2..depth add their input back,
    ``h ← h + block(h)``.
    """

    def __init__(self, gains: object, seeds: object, depth: int = 50, width: int = 100,
                 norm: str = "none", residual: bool = False) -> None:
        super().__init__()
        gains_t, seeds_t = _check_members(gains, seeds)
        check_choice("norm", norm, BATCHED_NORMALIZATIONS)
        residual = check_bool("residual", residual)
        self.gains, self.seeds, self.norm, self.residual = gains_t, seeds_t, norm, residual
        members = [make_normed_mlp(g, norm, depth, width, s) for g, s in zip(gains_t, seeds_t, strict=True)]
        layers = [[layer.weight for layer in _linears(m)] for m in members]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([member[i].detach().t() for member in layers]).contiguous())
            for i in range(depth + 1))
        self.depth, self.width = depth, width

    @property
    def size(self) -> int:
        """``S``, the number of member networks."""
        return len(self.gains)

    def hidden(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every hidden block, each ``[S, B, width]``."""
        if x.dim() == 2:
            h = torch.matmul(x.unsqueeze(0), self.weights[0])
        elif x.dim() == 3 and x.shape[0] == self.size:
            h = torch.bmm(x, self.weights[0])
        else:
            raise ValueError(f"x must be [B, in] or [{self.size}, B, in], got {list(x.shape)}")
        outs = []
        for i in range(self.depth):
            if i > 0:
                z = torch.relu(torch.bmm(h, self.weights[i]))
                if self.norm == "layernorm":
                    z = F.layer_norm(z, (self.width,))
                h = h + z if self.residual else z
            else:
                h = torch.relu(h)
                if self.norm == "layernorm":
                    h = F.layer_norm(h, (self.width,))
            outs.append(h)
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.bmm(self.hidden(x)[-1], self.weights[-1])

    def member(self, k: int) -> nn.Sequential:
        """Member ``k`` as an ordinary ``make_normed_mlp`` network holding copies of its weights
        (``residual=True`` has no ``nn.Sequential`` counterpart)."""
        if self.residual:
            raise ValueError("a residual BatchedMLP has no nn.Sequential counterpart")
        k = check_int("k", k, minimum=0, maximum=self.size - 1)
        model = make_normed_mlp(self.gains[k], self.norm, self.depth, self.width, self.seeds[k])
        with torch.no_grad():
            for layer, w in zip(_linears(model), self.weights, strict=True):
                layer.weight.copy_(w[k].t())
        return model



@dataclass
class BatchedRun:
    """What :func:`train_batched` records for the ``S`` members of a :class:`BatchedMLP`."""

    losses: np.ndarray
    """Training loss of every member at every step, ``[steps, S]`` (``nan`` once it diverges)."""
    initial_test_error: np.ndarray
    """Test error of every member before training, ``[S]`` (``nan`` without a test set)."""
    test_error: np.ndarray
    """Test error of every member after training, ``[S]``."""
    tracked_layers: list[int]
    """Hidden layers (1-based) whose mean activation norm was recorded during training."""
    tracked_steps: np.ndarray
    """Steps at which they were recorded, ``[records]``."""
    tracked_norms: np.ndarray
    """Mean activation norm on the training batch, ``[records, S, len(tracked_layers)]``."""

    @property
    def steps(self) -> int:
        """The number of SGD steps taken."""
        return self.losses.shape[0]

    def final_loss(self, fraction: float = 0.1) -> np.ndarray:
        """Mean training loss of every member over the last ``fraction`` of the steps, ``[S]``."""
        tail = max(1, int(round(self.steps * fraction)))
        return np.nanmean(self.losses[-tail:], axis=0)


@torch.no_grad()
def batched_error(model: BatchedMLP, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
    """The test error of every member of ``model`` on ``(x, y)``, ``[S]``."""
    wrong = torch.zeros(model.size, dtype=torch.float64)
    with single_thread():
        for start in range(0, x.shape[0], batch_size):
            pred = model(x[start:start + batch_size]).argmax(dim=-1)
            wrong += (pred != y[start:start + batch_size]).sum(dim=1).double()
    return (wrong / y.shape[0]).numpy()


def _per_member(name: str, value: object, size: int) -> torch.Tensor:
    """One number > 0 for every member: ``value`` itself repeated, or a sequence of ``size``."""
    values = (check_positive(name, value),) * size if is_real(value) else check_reals(name, value)
    if len(values) != size:
        raise ValueError(f"{name} must be a number > 0 or one per member ({size}), got {len(values)} values")
    return torch.tensor(values, dtype=torch.float32)


def train_batched(
    model: BatchedMLP,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    lr: float | list[float] | tuple[float, ...],
    steps: int,
    batch_size: int = 32,
    warmup_steps: int = 0,
    seed: int = 0,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    track_layers: list[int] | tuple[int, ...] = (),
    track_every: int = 10,
) -> BatchedRun:
    """Train every member of ``model`` in place with plain SGD on the same shuffled batches.

    Each step draws the next ``batch_size`` examples of a seeded permutation of ``(x, y)``
    (a new permutation every epoch), computes each member's mean cross-entropy and updates
    member ``k``'s weights by ``− lr_k · gradient`` (``lr`` is one number or one per member;
    a linear warm-up over ``warmup_steps`` as in :func:`helpers.training.warmup_lr`).  This is
    exactly ``S`` separate plain-SGD runs with the same batch order, at the cost of one model
    (one CPU thread, like :func:`helpers.training.train`).

    Raises:
        TypeError: if ``model`` is not a :class:`BatchedMLP`.
        ValueError: for a bad ``lr``, ``steps``, ``batch_size``, ``warmup_steps``, ``seed``,
            ``track_layers`` or ``track_every``.
    """
    if not isinstance(model, BatchedMLP):
        raise TypeError(f"model must be a BatchedMLP, got {type(model).__name__}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same length, got {x.shape[0]} and {y.shape[0]}")
    rates = _per_member("lr", lr, model.size)
    steps = check_int("steps", steps, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if batch_size > x.shape[0]:
        raise ValueError(f"batch_size must be <= the number of examples ({x.shape[0]}), got {batch_size}")
    warmup_steps = check_int("warmup_steps", warmup_steps, minimum=0)
    seed = check_int("seed", seed, minimum=0)
    every = check_int("track_every", track_every, minimum=1)
    track = [int(i) for i in track_layers]
    if any(not 1 <= i <= model.depth for i in track):
        raise ValueError(f"track_layers must be hidden layers in [1, {model.depth}], got {track}")

    err_init = batched_error(model, *test) if test is not None else np.full(model.size, np.nan)
    generator = torch.Generator().manual_seed(seed)
    per_epoch = x.shape[0] // batch_size
    params = list(model.parameters())
    losses = np.empty((steps, model.size))
    records: list[np.ndarray] = []
    order = torch.randperm(x.shape[0], generator=generator)
    with single_thread():
        for step in range(steps):
            if step > 0 and step % per_epoch == 0:
                order = torch.randperm(x.shape[0], generator=generator)
            start = (step % per_epoch) * batch_size
            index = order[start:start + batch_size]
            outs = model.hidden(x[index])
            logits = torch.bmm(outs[-1], model.weights[-1])
            each = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[index].repeat(model.size),
                                   reduction="none").reshape(model.size, -1).mean(dim=1)
            grads = torch.autograd.grad(each.sum(), params)
            scale = (rates * warmup_lr(step, 1.0, warmup_steps)).view(-1, 1, 1)
            with torch.no_grad():
                for p, g in zip(params, grads, strict=True):
                    p.sub_(scale * g)
            values = each.detach().double().numpy()
            losses[step] = np.where(np.isfinite(values), values, np.nan)
            if track and step % every == 0:
                records.append(np.stack([outs[i - 1].detach().norm(dim=-1).mean(dim=-1).double().numpy()
                                         for i in track], axis=-1))
    tracked = np.array(records) if records else np.empty((0, model.size, len(track)))
    return BatchedRun(
        losses=losses,
        initial_test_error=err_init,
        test_error=batched_error(model, *test) if test is not None else np.full(model.size, np.nan),
        tracked_layers=track,
        tracked_steps=np.arange(0, steps, every)[: len(tracked)] if track else np.empty(0, dtype=int),
        tracked_norms=tracked,
    )


def batched_weight_variances(model: BatchedMLP) -> np.ndarray:
    """The variance of every member's hidden weight matrices, ``[S, depth]``."""
    return np.stack([w.detach().double().flatten(1).var(dim=1, unbiased=False).numpy()
                     for w in list(model.weights)[:-1]], axis=1)


@torch.no_grad()
def batched_activation_norms(model: BatchedMLP, x: torch.Tensor) -> np.ndarray:
    """Mean over the batch of ``‖z_i‖₂`` for every member and hidden layer, ``[S, depth]``."""
    with single_thread():
        outs = model.hidden(x)
    return np.stack([h.double().norm(dim=-1).mean(dim=-1).numpy() for h in outs], axis=1)


@dataclass
class DriftStudy:
    """Several gains × several seeds trained at once (:func:`drift_study`); arrays have one
    row per member, in the order ``[(g, s) for g in gains for s in seeds]``."""

    gains: np.ndarray
    """The gain ``c`` of every member, ``[S]``."""
    seeds: np.ndarray
    """The weight seed of every member, ``[S]``."""
    learning_rates: np.ndarray
    """The SGD learning rate of every member, ``[S]``."""
    run: BatchedRun
    """Losses, test errors and tracked norms of the training run."""
    weight_var_init: np.ndarray
    """Variance of every hidden weight matrix at initialization, ``[S, depth]``."""
    weight_var_final: np.ndarray
    """The same after training."""
    relative_change: np.ndarray
    """``‖W_T − W_0‖_F / ‖W_0‖_F`` per member and hidden layer, ``[S, depth]``."""
    act_norms_init: np.ndarray
    """Mean activation norm per member and hidden layer on the probe batch, before training."""
    act_norms_final: np.ndarray
    """The same after training."""

    def members(self, gain: float) -> np.ndarray:
        """The row indices of the members with gain ``gain``."""
        rows = np.flatnonzero(np.isclose(self.gains, gain))
        if rows.size == 0:
            raise ValueError(f"gain must be one of {sorted(set(self.gains.tolist()))}, got {gain!r}")
        return rows

    @property
    def gain_values(self) -> list[float]:
        """The distinct gains, in training order."""
        return list(dict.fromkeys(float(g) for g in self.gains))

    @property
    def variance_ratio(self) -> np.ndarray:
        """``Var(W_T) / Var(W_0)`` per member and hidden layer, ``[S, depth]``."""
        return self.weight_var_final / self.weight_var_init


def drift_study(
    gains: list[float] | tuple[float, ...],
    seeds: list[int] | tuple[int, ...] | range,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    lr: float | dict[float, float],
    steps: int,
    probe: torch.Tensor,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    depth: int = 50,
    width: int = 100,
    batch_size: int = 32,
    warmup_steps: int = 0,
    track_layers: list[int] | tuple[int, ...] = (1, 10, 25, 50),
    track_every: int = 10,
    seed: int = 0,
) -> DriftStudy:
    """Train ``make_mlp(c, depth, width, seed=s)`` for every gain ``c`` and seed ``s`` at once
    (one :class:`BatchedMLP`, plain SGD, same batches) and measure how far weights and norms moved.

    Args:
        gains, seeds: every gain is trained with every seed.
        x, y: training images and labels.
        lr: one SGD learning rate, or one per gain (``{c: lr}``).
        steps, batch_size, warmup_steps, track_layers, track_every, seed: see :func:`train_batched`.
        probe: a fixed batch of images on which the activation-norm profiles are measured.
        test: optional test set ``(x, y)`` for the errors before and after.

    Raises:
        ValueError: for a ``lr`` mapping without every gain (the rest is validated downstream).
    """
    gains_t = check_reals("gains", gains)
    seeds_t = check_ints("seeds", seeds, minimum=0)
    member_gains = [g for g in gains_t for _ in seeds_t]
    member_seeds = [s for _ in gains_t for s in seeds_t]
    if isinstance(lr, dict):
        missing = [g for g in gains_t if g not in lr]
        if missing:
            raise ValueError(f"lr must give a learning rate for every gain, missing {missing}")
        rates = [lr[g] for g in member_gains]
    else:
        rates = [lr] * len(member_gains)
    model = BatchedMLP(member_gains, member_seeds, depth, width)
    initial = [w.detach().clone() for w in list(model.weights)[:-1]]
    var_init = batched_weight_variances(model)
    act_init = batched_activation_norms(model, probe)
    run = train_batched(model, x, y, lr=rates, steps=steps, batch_size=batch_size,
                        warmup_steps=warmup_steps, seed=seed, test=test, track_layers=track_layers,
                        track_every=track_every)
    change = np.stack([((w.detach().double() - w0.double()).flatten(1).norm(dim=1)
                        / w0.double().flatten(1).norm(dim=1)).numpy()
                       for w, w0 in zip(list(model.weights)[:-1], initial, strict=True)], axis=1)
    return DriftStudy(
        gains=np.array(member_gains), seeds=np.array(member_seeds), learning_rates=np.array(rates, dtype=float),
        run=run, weight_var_init=var_init, weight_var_final=batched_weight_variances(model),
        relative_change=change, act_norms_init=act_init,
        act_norms_final=batched_activation_norms(model, probe))


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


@dataclass
class SweepResult:
    """One configuration of :func:`layernorm_sweep`, every seed."""

    losses: np.ndarray
    """Training loss of every seed at every step, ``[steps, seeds]``."""
    test_error: np.ndarray
    """Test error of every seed after training, ``[seeds]`` (``nan`` without a test set)."""

    def final_loss(self, fraction: float = 0.2) -> np.ndarray:
        """Mean training loss of every seed over the last ``fraction`` of the steps."""
        tail = max(1, int(round(self.losses.shape[0] * fraction)))
        return np.nanmean(self.losses[-tail:], axis=0)


def layernorm_sweep(
    depth: int,
    lrs: list[float] | tuple[float, ...],
    seeds: list[int] | tuple[int, ...] | range,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    residual: bool = False,
    gain: float = 2.0,
    batch_size: int = 32,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    seed: int = 0,
) -> dict[float, SweepResult]:
    """Train the LayerNorm MLP (:class:`BatchedMLP` with ``norm="layernorm"``) of the given
    depth for every learning rate × seed at once, plain SGD on the same batches.

    Returns ``{lr: SweepResult}`` with one column per seed.

    Raises:
        TypeError: if ``lrs`` or ``seeds`` is not a sequence of numbers / ints.
        ValueError: for an empty ``lrs`` or ``seeds``, a rate that is not > 0 or a seed < 0
            (the rest is validated downstream).
    """
    lrs = list(check_reals("lrs", lrs))
    seeds = list(check_ints("seeds", seeds, minimum=0))
    model = BatchedMLP([gain] * (len(lrs) * len(seeds)), seeds * len(lrs), depth=depth,
                       norm="layernorm", residual=residual)
    run = train_batched(model, x, y, lr=[r for r in lrs for _ in seeds], steps=steps,
                        batch_size=batch_size, test=test, seed=seed)
    k = len(seeds)
    return {r: SweepResult(run.losses[:, i * k:(i + 1) * k], run.test_error[i * k:(i + 1) * k])
            for i, r in enumerate(lrs)}


def relu_stack_norms(weights: list[torch.Tensor] | tuple[torch.Tensor, ...], x: torch.Tensor) -> torch.Tensor:
    """The mean activation norm of every layer of a bias-free Linear+ReLU stack.

    ``h_0 = x`` and ``h_l = ReLU(h_{l-1} W_lᵀ)``: ``weights[l-1]`` has the shape of
    ``nn.Linear.weight``, ``(n_out, n_in)``.  Entry ``l-1`` of the result is the mean over the
    batch of ``‖h_l‖₂`` (the input is not included), as in
    :func:`helpers.initialization.forward_norms` for the hidden blocks of a ``make_mlp`` network.

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
