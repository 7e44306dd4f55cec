"""A small, reusable training loop: mini-batch SGD/Adam with optional warm-up.

Used by the notebooks that train for real (02 norm drift, 03 normalization layers,
06 Transformers).  It records what their plots need: the loss of every step, the learning
rate of every step, and whatever a caller's ``on_step`` hook measures.  Snapshot weights
before and after with ``copy.deepcopy(model.state_dict())``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from helpers.validation import check_choice, check_int, check_positive

OPTIMIZERS = ("sgd", "adam")
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ModelT = TypeVar("ModelT", bound=nn.Module)  # train() hands its on_step hook the model it trains


@dataclass
class TrainingRun:
    """What :func:`train` records."""

    losses: np.ndarray
    """Training loss of every step, shape ``(steps,)``; ``nan`` once the loss diverges."""
    learning_rates: np.ndarray
    """Learning rate used at every step, shape ``(steps,)``."""
    hook_values: list[object] = field(default_factory=list)
    """Whatever ``on_step`` returned, in step order (``None`` results are dropped)."""

    @property
    def steps(self) -> int:
        """The number of optimisation steps taken."""
        return len(self.losses)


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one CPU thread inside the block, restoring the previous setting after.

    The course's networks are tiny: with several intra-op threads each small operation pays
    a synchronisation cost that, on a busy machine, makes training many times slower.  One
    thread also fixes the order of floating-point sums, so results do not depend on the core
    count or on how busy the machine is (the BLAS library may otherwise use fewer threads).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def warmup_lr(step: int, base_lr: float, warmup_steps: int) -> float:
    """Linear warm-up from ``base_lr / warmup_steps`` to ``base_lr``, then constant."""
    if warmup_steps <= 0 or step >= warmup_steps:
        return base_lr
    return base_lr * (step + 1) / warmup_steps


def train(
    model: ModelT,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    lr: float,
    epochs: int = 1,
    batch_size: int = 32,
    optimizer: str = "sgd",
    momentum: float = 0.0,
    warmup_steps: int = 0,
    max_steps: int | None = None,
    loss_fn: LossFn = F.cross_entropy,
    on_step: Callable[[int, ModelT], object] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> TrainingRun:
    """Train ``model`` on ``(x, y)`` with shuffled mini-batches; returns the recorded run.

    Args:
        model: the network, trained in place (put in ``train()`` mode here).
        x, y: inputs and targets with the same first dimension.
        lr: the (peak) learning rate.
        epochs: passes over the data.
        batch_size: examples per step (the last, smaller batch of an epoch is dropped).
        optimizer: ``"sgd"`` (with optional ``momentum``) or ``"adam"``.
        warmup_steps: linear learning-rate warm-up over this many steps (0 for none).
        max_steps: stop after this many steps even if epochs remain.
        loss_fn: ``loss_fn(model(x_batch), y_batch)``; cross-entropy by default.
        on_step: called as ``on_step(step, model)`` after each step; non-``None`` results
            are collected in :attr:`TrainingRun.hook_values`.
        seed: seeds the batch order (a private generator; global state is untouched).
        progress: show a tqdm progress bar (one update per epoch's tenth, no timings).

    Training runs on one CPU thread (:func:`single_thread`), so the recorded numbers are
    the same on every machine load and core count.

    Raises:
        ValueError/TypeError: for bad arguments (naming the argument and allowed values).
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same length, got {x.shape[0]} and {y.shape[0]}")
    lr = check_positive("lr", lr)
    epochs = check_int("epochs", epochs, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if batch_size > x.shape[0]:
        raise ValueError(f"batch_size must be <= the number of examples ({x.shape[0]}), got {batch_size}")
    check_choice("optimizer", optimizer, OPTIMIZERS)
    warmup_steps = check_int("warmup_steps", warmup_steps, minimum=0)
    if max_steps is not None:
        max_steps = check_int("max_steps", max_steps, minimum=1)

    if optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    per_epoch = x.shape[0] // batch_size
    total = epochs * per_epoch if max_steps is None else min(max_steps, epochs * per_epoch)
    with single_thread():
        return _train_loop(model, x, y, opt, total=total, epochs=epochs, batch_size=batch_size,
                           per_epoch=per_epoch, lr=lr, warmup_steps=warmup_steps, loss_fn=loss_fn,
                           on_step=on_step, generator=generator, progress=progress)


def _train_loop(model: ModelT, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer, *,
                total: int, epochs: int, batch_size: int, per_epoch: int, lr: float,
                warmup_steps: int, loss_fn: LossFn, on_step: Callable[[int, ModelT], object] | None,
                generator: torch.Generator, progress: bool) -> TrainingRun:
    losses: list[float] = []
    rates: list[float] = []
    hooks: list[object] = []
    model.train()
    bar = tqdm(total=total, disable=not progress, mininterval=0, miniters=max(1, total // 10),
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} steps")
    step = 0
    for _ in range(epochs):
        order = torch.randperm(x.shape[0], generator=generator)
        for start in range(0, per_epoch * batch_size, batch_size):
            if step >= total:
                break
            index = order[start : start + batch_size]
            rate = warmup_lr(step, lr, warmup_steps)
            for group in opt.param_groups:
                group["lr"] = rate
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[index]), y[index])
            loss.backward()
            opt.step()
            value = float(loss.detach())
            losses.append(value if np.isfinite(value) else np.nan)
            rates.append(rate)
            if on_step is not None:
                result = on_step(step, model)
                if result is not None:
                    hooks.append(result)
            step += 1
            bar.update(1)
    bar.close()
    return TrainingRun(np.asarray(losses), np.asarray(rates), hooks)


@torch.no_grad()
def error_rate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 2000) -> float:
    """The fraction of examples whose arg-max prediction differs from the label (eval mode).

    For sequence outputs ``[N, T, classes]`` with targets ``[N, T]`` it is the per-token error.
    """
    was_training = model.training
    model.eval()
    wrong = 0
    for start in range(0, x.shape[0], batch_size):
        prediction = model(x[start : start + batch_size]).argmax(dim=-1)
        wrong += int((prediction != y[start : start + batch_size]).sum())
    model.train(was_training)
    return wrong / y.numel()
