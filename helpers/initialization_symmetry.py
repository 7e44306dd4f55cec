"""Why weights must start random: training from zero, constant and random initialization (notebook 01).

:func:`symmetry_study` trains a small bias-free ReLU (or Leaky ReLU) MLP on MNIST from each scheme
of :data:`INIT_SCHEMES`, over several seeds at once, and records what shows whether the hidden
units stayed copies of each other (their spread), whether they learned, how many died and how many
no longer get a gradient.
The networks and their profiles at initialization are :mod:`helpers.initialization`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import torch
from torch.nn import functional as F

from helpers.initialization import IN_FEATURES, MNIST_TRAIN_SIZE, N_CLASSES, mnist_batch
from helpers.training import single_thread
from helpers.validation import check_choice, check_int, check_ints, check_real

# --------------------------------------------------------------------------------------
# section 1: zero and constant initialization
# --------------------------------------------------------------------------------------
INIT_SCHEMES = ("zero", "constant", "random")


@dataclass(frozen=True)
class SymmetryStudy:
    """Several copies of a small MLP trained from one initialization scheme, one per seed."""

    scheme: str
    seeds: tuple[int, ...]
    losses: np.ndarray
    """Training loss of each seed's minibatch before each step, shape ``(seeds, steps)``."""
    first_grad_norms: np.ndarray
    """Frobenius norm of each weight matrix's gradient at step 0, shape ``(seeds, layers)``
    (the last column is the output layer)."""
    largest_change: np.ndarray
    """``max |W_after - W_before|`` over the entries of each matrix, shape ``(seeds, layers)``."""
    alive: np.ndarray
    """Per hidden layer after training: the fraction of its units whose ReLU output is > 0 for
    at least one evaluation image, shape ``(seeds, hidden layers)``."""
    frozen: np.ndarray
    """Per hidden layer after training: the fraction of its units whose incoming weights get a
    gradient of exactly 0 from the loss on the evaluation images (they would never move again),
    shape ``(seeds, hidden layers)``."""
    spread: np.ndarray
    """Per hidden layer after training: ``max_j ||W[j] - W[0]|| / mean_j ||W[j]||`` (0 = every
    unit a copy of unit 1; 0 for an all-zero matrix), shape ``(seeds, hidden layers)``."""
    eval_loss: np.ndarray
    """Cross-entropy after training on the evaluation images, shape ``(seeds,)``."""
    first_layer: np.ndarray
    """Seed ``seeds[0]``'s first-layer weights after training, shape ``(hidden[0], 784)``."""


@single_thread()  # one thread: faster at these sizes, and float sums in a fixed order
def symmetry_study(scheme: str, seeds: tuple[int, ...] = (0, 1, 2, 3, 4), *, value: float | None = None,
                   hidden: tuple[int, ...] = (32, 32), steps: int = 100, lr: float = 0.1, batch: int = 64,
                   train_images: int = 2048, eval_images: int = 512,
                   negative_slope: float = 0.0) -> SymmetryStudy:
    """Train a bias-free ReLU MLP 784 -> hidden -> 10 with minibatch SGD from ``scheme``, once per seed.

    With ``negative_slope`` ``a`` > 0 the activation is Leaky ReLU, ``max(h, a·h)`` (the weights of
    ``"random"`` stay ``N(0, 2 / n_in)``).

    ``"zero"``: every weight 0.  ``"constant"``: every weight of a layer equal to ``value``
    (default ``1 / n_in``, so each unit starts as the mean of its inputs and, with MNIST's
    non-negative pixels, every ReLU starts active).  ``"random"``: Kaiming ``N(0, 2 / n_in)``.
    Seed ``s`` sets the order in which the first ``train_images`` MNIST training images are
    visited (and, for ``"random"``, the weights).  All seeds train at once as one batched
    model (``torch.bmm`` on stacked weights).  Units are evaluated on the first
    ``eval_images`` training images.

    Raises:
        ValueError / TypeError: naming the bad argument and the allowed values.
    """
    check_choice("scheme", scheme, INIT_SCHEMES)
    seeds = check_ints("seeds", seeds, minimum=0)
    if value is not None:
        value = check_real("value", value)
    steps = check_int("steps", steps, minimum=1)
    lr = check_real("lr", lr, minimum=0.0, min_inclusive=False)
    batch = check_int("batch", batch, minimum=1)
    train_images = check_int("train_images", train_images, minimum=batch, maximum=MNIST_TRAIN_SIZE)
    eval_images = check_int("eval_images", eval_images, minimum=1, maximum=MNIST_TRAIN_SIZE)
    hidden = check_ints("hidden", hidden, minimum=1)
    negative_slope = check_real("negative_slope", negative_slope, minimum=0.0, maximum=1.0)
    n_seeds = len(seeds)
    sizes = [IN_FEATURES, *hidden, N_CLASSES]
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    weights = []
    for n_in, n_out in pairwise(sizes):
        if scheme == "zero":
            w = torch.zeros(n_seeds, n_out, n_in)
        elif scheme == "constant":
            w = torch.full((n_seeds, n_out, n_in), 1.0 / n_in if value is None else value)
        else:
            w = torch.stack([torch.randn(n_out, n_in, generator=g) for g in generators]) * math.sqrt(2.0 / n_in)
        weights.append(w.requires_grad_(True))
    before = [w.detach().clone() for w in weights]
    x_all, y_all = mnist_batch(max(train_images, eval_images))
    x_train, y_train = x_all[:train_images], y_all[:train_images]
    orders = [torch.randperm(train_images, generator=torch.Generator().manual_seed(10_000 + s)) for s in seeds]
    per_epoch = train_images // batch
    losses = np.empty((n_seeds, steps))
    first = np.empty((n_seeds, len(weights)))

    def forward(x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        z, outs = x, []
        for w in weights[:-1]:
            z = F.leaky_relu(torch.bmm(z, w.transpose(1, 2)), negative_slope)
            outs.append(z)
        return torch.bmm(z, weights[-1].transpose(1, 2)), outs

    for step in range(steps):
        start = (step % per_epoch) * batch
        idx = torch.stack([order[start:start + batch] for order in orders])
        logits, _ = forward(x_train[idx])
        loss = F.cross_entropy(logits.reshape(-1, N_CLASSES), y_train[idx].reshape(-1),
                               reduction="none").reshape(n_seeds, batch).mean(dim=1)
        grads = torch.autograd.grad(loss.sum(), weights)  # each seed's loss depends on its own weights only
        losses[:, step] = loss.detach().numpy()
        if step == 0:
            first = torch.stack([g.flatten(1).norm(dim=1) for g in grads], dim=1).numpy()
        with torch.no_grad():
            for w, g in zip(weights, grads, strict=True):
                w -= lr * g
    x_eval, y_eval = x_all[:eval_images], y_all[:eval_images]
    logits, outs = forward(x_eval.expand(n_seeds, -1, -1))
    per_seed = F.cross_entropy(logits.reshape(-1, N_CLASSES), y_eval.repeat(n_seeds),
                               reduction="none").reshape(n_seeds, -1).mean(dim=1)
    eval_grads = torch.autograd.grad(per_seed.sum(), weights[:-1])
    with torch.no_grad():
        eval_loss = per_seed.numpy()
        frozen = torch.stack([(g == 0).all(dim=2).double().mean(dim=1) for g in eval_grads], dim=1).numpy()
        alive = torch.stack([(z > 0).any(dim=1).double().mean(dim=1) for z in outs], dim=1).numpy()
        change = torch.stack([(w - b).abs().flatten(1).max(dim=1).values for w, b in zip(weights, before, strict=True)],
                             dim=1).numpy()
        spread = []
        for w in weights[:-1]:
            rows = w.double().norm(dim=2).mean(dim=1)
            diff = (w - w[:, :1]).double().norm(dim=2).max(dim=1).values
            spread.append(torch.where(rows > 0, diff / rows.clamp_min(1e-300), torch.zeros_like(diff)))
        spread_arr = torch.stack(spread, dim=1).numpy()
    return SymmetryStudy(scheme, seeds, losses, first, change.astype(np.float64), alive, frozen, spread_arr,
                         eval_loss.astype(np.float64), weights[0][0].detach().numpy().copy())


__all__ = ["INIT_SCHEMES", "SymmetryStudy", "symmetry_study"]
