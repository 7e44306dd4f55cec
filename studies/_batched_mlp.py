"""Many deep MLPs trained at once: the batched trainer of notebook 02's studies.

``S`` networks of the lecture's family — ``depth`` bias-free hidden blocks ``Linear → ReLU``
(optionally ``→ LayerNorm``, optionally with a residual connection), then a final ``Linear``
to 10 classes — are stacked into one model, :class:`BatchedMLP`, whose layer ``i`` holds every
member's weight matrix as one tensor ``[S, n_in, n_out]`` and computes all members with one
``torch.bmm``.  :func:`train_batched` trains them with plain SGD on the same batches: exactly
``S`` separate plain-SGD runs (the tests compare them with :func:`helpers.training.train`), at
the cost of one model.

Member ``k`` starts from exactly the weights of
``helpers.initialization.make_mlp(gains[k], depth, width, seed=seeds[k])`` (every matrix
``N(0, gain / n_in)``, drawn in layer order from ``torch.Generator().manual_seed(seed)``);
:func:`draw_weights` repeats that recipe here so that the studies' results do not depend on
code they do not use, and a test checks that the two agree.

Why ``torch.bmm`` and not ``torch.func`` (``stack_module_state`` + ``vmap(functional_call)``
over ``nn.Sequential`` members, as the Transformer study does): for these 50-layer MLPs the
``vmap`` version measured 1.4–2.6× slower per step on one CPU thread (15 networks, batch 32),
which the studies' time budget cannot afford.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from helpers.training import single_thread
from helpers.validation import check_bool, check_choice, check_int, check_ints, check_positive, check_reals, is_real

#: The normalization a :class:`BatchedMLP` can put after every hidden ReLU.
NORMALIZATIONS = ("none", "layernorm")
#: MNIST: input pixels and classes.
IN_FEATURES, N_CLASSES = 784, 10


def draw_weights(gain: float, seed: int, depth: int = 50, width: int = 100) -> list[torch.Tensor]:
    """The ``depth + 1`` weight matrices of ``make_mlp(gain, depth, width, seed=seed)``, each in
    ``nn.Linear.weight``'s shape ``(n_out, n_in)``: ``randn(n_out, n_in) · √(gain / n_in)`` drawn in
    layer order from one generator seeded with ``seed``.

    Raises:
        TypeError / ValueError: for a ``gain`` that is not a number > 0, or a ``seed`` < 0,
            ``depth`` < 1 or ``width`` < 1.
    """
    gain = check_positive("gain", gain)
    seed = check_int("seed", seed, minimum=0)
    depth = check_int("depth", depth, minimum=1)
    width = check_int("width", width, minimum=1)
    generator = torch.Generator().manual_seed(seed)
    sizes = [IN_FEATURES] + [width] * depth + [N_CLASSES]
    return [torch.randn(n_out, n_in, generator=generator) * math.sqrt(gain / n_in)
            for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)]


class BatchedMLP(nn.Module):
    """``S`` independent deep MLPs evaluated as one model.

    ``weights[i]`` has shape ``[S, n_in, n_out]`` (the transpose of ``nn.Linear.weight``, one
    slice per member).  Hidden block 1 is ``ReLU(x W_1)``, block ``i > 1`` is
    ``z = ReLU(h W_i)``; with ``norm="layernorm"`` every block ends with a LayerNorm without
    affine parameters (eps 1e-5, as ``nn.LayerNorm``); with ``residual=True`` blocks
    ``2..depth`` add their input back, ``h ← h + z``.  The members share nothing but the
    input batch, so the gradient of the *sum* of their losses with respect to member ``k``'s
    weights is the gradient of member ``k``'s own loss.

    Args:
        gains, seeds: one gain ``c`` (``W ~ N(0, c / n_in)``) and one weight seed per member.
        depth, width: hidden layers and their width.
        norm: ``"none"`` or ``"layernorm"``.
        residual: add each hidden block's input to its output (blocks 2..depth).

    Raises:
        TypeError / ValueError: for gains and seeds of different lengths or bad values, or a
            bad ``depth``, ``width``, ``norm`` or ``residual``.
    """

    def __init__(self, gains: object, seeds: object, depth: int = 50, width: int = 100,
                 norm: str = "none", residual: bool = False) -> None:
        super().__init__()
        gains_t = check_reals("gains", gains)
        seeds_t = check_ints("seeds", seeds, minimum=0)
        if len(gains_t) != len(seeds_t):
            raise ValueError(f"gains and seeds must be of equal length (one per member), got {len(gains_t)} "
                             f"and {len(seeds_t)}")
        self.norm = check_choice("norm", norm, NORMALIZATIONS)
        self.residual = check_bool("residual", residual)
        self.depth = check_int("depth", depth, minimum=1)
        self.width = check_int("width", width, minimum=1)
        self.gains, self.seeds = gains_t, seeds_t
        members = [draw_weights(g, s, depth, width) for g, s in zip(gains_t, seeds_t, strict=True)]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([member[i].t() for member in members]).contiguous())
            for i in range(depth + 1))

    @property
    def size(self) -> int:
        """``S``, the number of member networks."""
        return len(self.gains)

    def hidden(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every hidden block for a batch ``x`` of shape ``[B, 784]``, each ``[S, B, width]``."""
        if x.dim() != 2:
            raise ValueError(f"x must be [B, {IN_FEATURES}], got {list(x.shape)}")
        h = torch.matmul(x.unsqueeze(0), self.weights[0]).relu()
        if self.norm == "layernorm":
            h = F.layer_norm(h, (self.width,))
        outs = [h]
        for i in range(1, self.depth):
            z = torch.bmm(h, self.weights[i]).relu()
            if self.norm == "layernorm":
                z = F.layer_norm(z, (self.width,))
            h = h + z if self.residual else z
            outs.append(h)
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[S, B, 10]`` of every member for the batch ``x`` ``[B, 784]``."""
        return torch.bmm(self.hidden(x)[-1], self.weights[-1])

    def hidden_weights(self) -> list[torch.Tensor]:
        """The hidden weight matrices ``W_1..W_depth`` (detached), each ``[S, n_in, n_out]``."""
        return [w.detach() for w in list(self.weights)[:-1]]


@torch.no_grad()
def batched_error(model: BatchedMLP, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
    """The test error of every member of ``model`` on ``(x, y)``, ``[S]`` (a member whose
    logits are not finite counts its arg-max like any other)."""
    wrong = torch.zeros(model.size, dtype=torch.float64)
    with single_thread():
        for start in range(0, x.shape[0], batch_size):
            pred = model(x[start:start + batch_size]).argmax(dim=-1)
            wrong += (pred != y[start:start + batch_size]).sum(dim=1).double()
    return (wrong / y.shape[0]).numpy()


def weight_variances(model: BatchedMLP) -> np.ndarray:
    """The variance of every member's hidden weight matrices, ``[S, depth]``."""
    return np.stack([w.double().flatten(1).var(dim=1, unbiased=False).numpy()
                     for w in model.hidden_weights()], axis=1)


def relative_change(model: BatchedMLP, initial: list[torch.Tensor]) -> np.ndarray:
    """``‖W_i − W_i(0)‖_F / ‖W_i(0)‖_F`` per member and hidden layer, ``[S, depth]``; ``initial``
    is :meth:`BatchedMLP.hidden_weights` copied at initialization."""
    return np.stack([((w.double() - w0.double()).flatten(1).norm(dim=1) / w0.double().flatten(1).norm(dim=1)).numpy()
                     for w, w0 in zip(model.hidden_weights(), initial, strict=True)], axis=1)


@torch.no_grad()
def activation_norms(model: BatchedMLP, x: torch.Tensor) -> np.ndarray:
    """Mean over the batch ``x`` of ``‖h_i‖₂`` for every member and hidden layer, ``[S, depth]``."""
    with single_thread():
        outs = model.hidden(x)
    return np.stack([h.double().norm(dim=-1).mean(dim=-1).numpy() for h in outs], axis=1)


@dataclass
class BatchedRun:
    """What :func:`train_batched` records for the ``S`` members."""

    losses: np.ndarray
    """Training loss of every member at every step, ``[steps, S]`` (``nan`` once it diverges)."""
    tracked_steps: np.ndarray
    """Steps (0-based) at which the tracked layers' norms were recorded, ``[records]``."""
    tracked_norms: np.ndarray
    """Mean activation norm on the training batch, ``[records, S, len(track_layers)]``."""


def _rates(lr: object, size: int) -> torch.Tensor:
    """One learning rate > 0 per member: ``lr`` repeated, or a sequence of ``size`` rates."""
    values = (check_positive("lr", lr),) * size if is_real(lr) else check_reals("lr", lr)
    if len(values) != size or any(not v > 0 for v in values):
        raise ValueError(f"lr must be a number > 0 or one rate > 0 per member ({size}), got {lr!r}")
    return torch.tensor(values, dtype=torch.float32)


def train_batched(
    model: BatchedMLP,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    lr: float | list[float] | tuple[float, ...],
    steps: int,
    batch_size: int = 32,
    seed: int = 0,
    track_layers: list[int] | tuple[int, ...] = (),
    track_every: int = 10,
    on_step: Callable[[int], None] | None = None,
    desc: str = "training",
) -> BatchedRun:
    """Train every member of ``model`` in place with plain SGD on the same shuffled batches.

    Each step takes the next ``batch_size`` examples of a permutation of ``(x, y)`` drawn from
    ``torch.Generator().manual_seed(seed)`` (a new permutation every epoch, the incomplete last
    batch dropped) — the batches :func:`helpers.training.train` draws with the same seed — and
    updates member ``k``'s weights by ``− lr_k · ∇loss_k``.  ``on_step(n)`` is called after the
    ``n``-th step (``n = 1..steps``), e.g. to take checkpoints.  Runs on one CPU thread, with a
    tqdm progress bar.

    Raises:
        TypeError: if ``model`` is not a :class:`BatchedMLP`.
        ValueError: for a bad ``lr``, ``steps``, ``batch_size``, ``seed``, ``track_layers`` or
            ``track_every``, or ``x`` and ``y`` of different lengths.
    """
    if not isinstance(model, BatchedMLP):
        raise TypeError(f"model must be a BatchedMLP, got {type(model).__name__}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same length, got {x.shape[0]} and {y.shape[0]}")
    rates = _rates(lr, model.size).view(-1, 1, 1)
    steps = check_int("steps", steps, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if batch_size > x.shape[0]:
        raise ValueError(f"batch_size must be <= the number of examples ({x.shape[0]}), got {batch_size}")
    seed = check_int("seed", seed, minimum=0)
    every = check_int("track_every", track_every, minimum=1)
    track = list(check_ints("track_layers", track_layers, minimum=1)) if len(track_layers) else []
    if any(i > model.depth for i in track):
        raise ValueError(f"track_layers must be hidden layers in [1, {model.depth}], got {track}")

    generator = torch.Generator().manual_seed(seed)
    per_epoch = x.shape[0] // batch_size
    params = list(model.parameters())
    losses = np.empty((steps, model.size))
    records: list[np.ndarray] = []
    bar = tqdm(total=steps, desc=desc, mininterval=1.0, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} steps")
    with single_thread():
        for step in range(steps):
            if step % per_epoch == 0:
                order = torch.randperm(x.shape[0], generator=generator)
            start = (step % per_epoch) * batch_size
            index = order[start:start + batch_size]
            outs = model.hidden(x[index])
            logits = torch.bmm(outs[-1], model.weights[-1])
            each = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[index].repeat(model.size),
                                   reduction="none").reshape(model.size, -1).mean(dim=1)
            grads = torch.autograd.grad(each.sum(), params)
            with torch.no_grad():
                for p, g in zip(params, grads, strict=True):
                    p.sub_(rates * g)
            values = each.detach().double().numpy()
            losses[step] = np.where(np.isfinite(values), values, np.nan)
            if track and step % every == 0:
                records.append(np.stack([outs[i - 1].detach().norm(dim=-1).mean(dim=-1).double().numpy()
                                         for i in track], axis=-1))
            bar.update(1)
            if on_step is not None:
                on_step(step + 1)
    bar.close()
    tracked = np.array(records) if records else np.empty((0, model.size, len(track)))
    return BatchedRun(losses=losses, tracked_steps=np.arange(0, steps, every)[:len(records)],
                      tracked_norms=tracked)


def window_means(values: np.ndarray, window: int) -> np.ndarray:
    """Means of consecutive, non-overlapping windows of ``window`` rows of ``values``
    (``[steps, ...]`` → ``[steps // window, ...]``; a trailing partial window is dropped);
    ``nan`` rows (diverged runs) make their window ``nan``."""
    window = check_int("window", window, minimum=1)
    values = np.asarray(values, dtype=np.float64)
    points = values.shape[0] // window
    if points < 1:
        raise ValueError(f"window must be <= the number of steps ({values.shape[0]}), got {window}")
    return values[:points * window].reshape(points, window, *values.shape[1:]).mean(axis=1)
