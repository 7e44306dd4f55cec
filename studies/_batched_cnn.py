"""Many of notebook 03's small CNNs trained at once, for the ``batch_size`` study.

The networks are :func:`helpers.batch_effects.small_cnn`; a :class:`CNNStack` holds several of
one kind (one per seed) as stacked weights (:func:`torch.func.stack_module_state`) and runs them
with ``vmap(functional_call)``.  :func:`train_stacks` trains stacks of different kinds side by
side, each network exactly as :func:`helpers.batch_effects.train_cnn` trains it alone (the same
initial weights, batch order, SGD with momentum) up to float rounding; :func:`accuracy`
measures them in eval mode or, the "forgot ``model.eval()``" bug, in training mode.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

from helpers.batch_effects import CNN_KINDS, small_cnn
from helpers.training import single_thread
from helpers.validation import check_choice, check_int, check_ints, check_positive

__all__ = ["CNNStack", "accuracy", "batch_orders", "make_stack", "network", "train_stacks"]

Tensors = dict[str, torch.Tensor]
EVAL_CHUNK = 1000
"""Test images per forward pass in eval mode (the result does not depend on it; memory does)."""


@dataclass
class CNNStack:
    """``len(seeds)`` networks ``small_cnn(kind, width, hidden, seed)``, weights stacked on dim 0."""

    kind: str
    seeds: tuple[int, ...]
    width: int
    hidden: int
    params: Tensors
    """Each parameter of the networks, stacked: ``[len(seeds), *shape]``, leaves that require grad."""
    buffers: Tensors
    """BatchNorm's running statistics, stacked the same way (empty for the other kinds)."""
    skeleton: nn.Module
    """The architecture on the ``meta`` device: ``functional_call`` runs it with stacked weights."""

    def logits(self, x: torch.Tensor, *, train_mode: bool, buffers: Tensors | None = None) -> torch.Tensor:
        """Logits ``[S, B, 10]`` of every network for ``x``: ``[B, 784]`` (the same images for
        every network) or ``[S, B, 784]`` (a batch per network).  In training mode BatchNorm
        normalizes with the batch and updates ``buffers`` (by default the stack's own) in place."""
        self.skeleton.train(train_mode)
        call: Callable[..., torch.Tensor] = vmap(self._forward, in_dims=(0, 0, 0 if x.dim() == 3 else None))
        return call(self.params, self.buffers if buffers is None else buffers, x)

    def test_batches(self, x: torch.Tensor) -> torch.Tensor:
        """Training-mode logits ``[T, S, B, 10]`` of every network for ``T`` test batches
        ``x`` ``[T, B, 784]``, each normalized with its own statistics as if run on its own.
        The running statistics are updated on copies (one per test batch) and discarded."""
        self.skeleton.train(True)
        copies = {name: value.expand(x.shape[0], *value.shape).clone() for name, value in self.buffers.items()}
        per_network = vmap(self._forward, in_dims=(0, 0, None))
        call: Callable[..., torch.Tensor] = vmap(per_network, in_dims=(None, 0, 0))
        return call(self.params, copies, x)

    def _forward(self, params: Tensors, buffers: Tensors, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = functional_call(self.skeleton, (params, buffers), (x,))
        return out


def make_stack(kind: str, seeds: Sequence[int], width: int = 8, hidden: int = 64) -> CNNStack:
    """The networks ``small_cnn(kind, width, hidden, seed)`` for each seed, as one :class:`CNNStack`.

    Raises:
        ValueError: for a ``kind`` not in :data:`helpers.batch_effects.CNN_KINDS`, no seeds,
            or a ``width``/``hidden`` that :func:`small_cnn` refuses.
    """
    check_choice("kind", kind, CNN_KINDS)
    seeds = tuple(check_ints("seeds", seeds, minimum=0))
    models = [small_cnn(kind, width=width, hidden=hidden, seed=s) for s in seeds]
    params, buffers = stack_module_state(models)
    params = {name: value.detach().clone().requires_grad_() for name, value in params.items()}
    buffers = {name: value.detach().clone() for name, value in buffers.items()}
    skeleton = copy.deepcopy(models[0]).to("meta")
    return CNNStack(kind, seeds, width, hidden, params, buffers, skeleton)


def network(stack: CNNStack, i: int) -> nn.Sequential:
    """Network ``i`` of ``stack`` as an ordinary :func:`small_cnn` (a copy, in eval mode).

    Raises:
        ValueError: if ``i`` is not in [0, len(stack.seeds) - 1].
    """
    i = check_int("i", i, minimum=0, maximum=len(stack.seeds) - 1)
    net = small_cnn(stack.kind, width=stack.width, hidden=stack.hidden, seed=stack.seeds[i])
    state = {name: value[i].detach().clone() for name, value in {**stack.params, **stack.buffers}.items()}
    net.load_state_dict(state)
    return net.eval()


def batch_orders(seeds: Sequence[int], examples: int, batch_size: int, steps: int) -> torch.Tensor:
    """The training images of every step, ``[steps, len(seeds), batch_size]``: for each seed the
    order :func:`helpers.training.train` draws (a fresh permutation per epoch from a generator
    seeded with the seed; the last, incomplete batch of an epoch dropped).

    Raises:
        ValueError: if ``batch_size`` is not in [1, examples] or ``steps`` < 1.
    """
    check_int("batch_size", batch_size, minimum=1, maximum=examples)
    check_int("steps", steps, minimum=1)
    per_epoch = examples // batch_size
    epochs = -(-steps // per_epoch)
    orders = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(int(seed))
        order = torch.cat([torch.randperm(examples, generator=generator)[: per_epoch * batch_size]
                           for _ in range(epochs)])
        orders.append(order[: steps * batch_size].reshape(steps, batch_size))
    return torch.stack(orders, dim=1)


def train_stacks(
    stacks: Sequence[CNNStack],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    examples: int,
    lr: float,
    momentum: float = 0.9,
    on_step: Callable[[], object] | None = None,
) -> np.ndarray:
    """Train every network of ``stacks`` in place with SGD for ``examples // batch_size`` steps.

    All stacks must have the same seeds: network ``i`` of every stack sees the batches that
    :func:`helpers.batch_effects.train_cnn` with ``seed = seeds[i]`` draws.  The loss minimized
    is the sum of the networks' mean cross-entropies, so each receives exactly its own gradient.
    ``on_step()`` is called after every step (e.g. a progress bar's ``update``).

    Returns:
        The training loss of every network at every step, ``(len(stacks), len(seeds), steps)``.

    Raises:
        ValueError: for no stacks, stacks with different seeds, ``batch_size`` not in
            [1, len(x)], ``examples`` < ``batch_size`` or a ``lr`` that is not positive.
    """
    if not stacks:
        raise ValueError("stacks must hold at least one CNNStack, got none")
    seeds = stacks[0].seeds
    if any(stack.seeds != seeds for stack in stacks):
        raise ValueError(f"stacks must all have the same seeds, got {[stack.seeds for stack in stacks]}")
    check_int("batch_size", batch_size, minimum=1, maximum=x.shape[0])
    if check_int("examples", examples, minimum=1) < batch_size:
        raise ValueError(f"examples must be >= batch_size ({batch_size}), got {examples}")
    lr = check_positive("lr", lr)
    steps = examples // batch_size
    orders = batch_orders(seeds, x.shape[0], batch_size, steps)
    parameters = [p for stack in stacks for p in stack.params.values()]
    optimizer = torch.optim.SGD(parameters, lr=lr, momentum=momentum)
    losses = torch.empty(len(stacks), len(seeds), steps)
    with single_thread():
        for step in range(steps):
            index = orders[step]                                             # [S, batch]
            images, labels = x[index], y[index]
            per_network = torch.stack([
                vmap(F.cross_entropy)(stack.logits(images, train_mode=True), labels) for stack in stacks])
            optimizer.zero_grad(set_to_none=True)
            per_network.sum().backward()
            optimizer.step()
            losses[:, :, step] = per_network.detach()
            if on_step is not None:
                on_step()
    return losses.numpy()


@torch.no_grad()
def accuracy(stack: CNNStack, x: torch.Tensor, y: torch.Tensor, batch_size: int | None = None) -> np.ndarray:
    """Test accuracy of every network of ``stack``, shape ``(len(seeds),)``.

    ``batch_size=None``: eval mode (BatchNorm normalizes with its running statistics).  An int:
    the "forgot ``model.eval()``" bug, training mode on consecutive test batches of that size,
    each normalized with its own statistics (:meth:`CNNStack.test_batches`; the running
    statistics are left as they were; trailing examples that do not fill a batch are dropped).
    A network with a fully connected BatchNorm cannot run a batch of 1 in training mode: torch
    refuses a single value per channel (ValueError), under ``vmap`` as for one network.

    Raises:
        ValueError: if ``batch_size`` is not None and not in [1, len(x)]; from torch, for a batch
            of 1 in training mode through a fully connected BatchNorm (kind ``"batch"``).
    """
    correct = torch.zeros(len(stack.seeds))
    with single_thread():
        if batch_size is None:
            for start in range(0, x.shape[0], EVAL_CHUNK):
                logits = stack.logits(x[start : start + EVAL_CHUNK], train_mode=False)
                correct += (logits.argmax(dim=-1) == y[start : start + EVAL_CHUNK]).sum(dim=1)
            return (correct / x.shape[0]).numpy().astype(np.float64)
        batch_size = check_int("batch_size", batch_size, minimum=1, maximum=x.shape[0])
        batches = x.shape[0] // batch_size
        per_call = max(1, EVAL_CHUNK // batch_size)
        for first in range(0, batches, per_call):
            count = min(per_call, batches - first)
            span = slice(first * batch_size, (first + count) * batch_size)
            images = x[span].reshape(count, batch_size, -1)
            logits = stack.test_batches(images)                              # [count, S, batch, 10]
            labels = y[span].reshape(count, 1, batch_size)
            correct += (logits.argmax(dim=-1) == labels).sum(dim=(0, 2))
    return (correct / (batches * batch_size)).numpy().astype(np.float64)
