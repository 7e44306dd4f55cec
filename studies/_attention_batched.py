"""Many tiny Transformers trained at once, for the study ``attention_training`` (notebook 04).

:func:`train_together` trains several :class:`helpers.transformer.TinyTransformer` of the same
shape (same width, heads and attention scale; different initial weights, batch orders and
learning rates) as ONE batched model: their weights are stacked with
:func:`torch.func.stack_module_state`, the loss of every run is evaluated with
``vmap(functional_call)``, and a batched Adam written here (PyTorch's defaults, one learning
rate per run) updates them.  Run ``i`` computes what
``helpers.training.train(models[i], task.tokens, task.targets, lr=lrs[i], optimizer="adam",
batch_size=..., seed=seeds[i], loss_fn=sequence_loss)`` computes, up to rounding: the same
initial weights, the same batch order (:func:`batch_orders`), the same update.  Runs are
independent: one that diverges to ``nan`` leaves the others alone.

The readable one-network version students read is :func:`helpers.training.train`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import cast

import numpy as np
import torch
from torch.func import functional_call, stack_module_state, vmap

from helpers.transformer import Block, CausalSelfAttention, ReversalTask, TinyTransformer, sequence_loss
from helpers.validation import check_int, check_ints, check_reals

__all__ = ["ADAM_BETAS", "ADAM_EPS", "batch_orders", "train_together"]

ADAM_BETAS = (0.9, 0.999)
"""Adam's (β₁, β₂): PyTorch's defaults, as :func:`helpers.training.train` uses them."""
ADAM_EPS = 1e-8
"""Adam's ε: PyTorch's default."""


def batch_orders(seeds: Sequence[int], n_examples: int, batch_size: int, steps: int) -> torch.Tensor:
    """The example indices of every step of every run, ``[runs, steps, batch_size]``.

    The order :func:`helpers.training.train` draws: one ``randperm`` per epoch from a generator
    seeded with the run's seed, batches taken in order, the last partial batch dropped.

    Raises:
        TypeError/ValueError: for bad seeds, sizes or a batch larger than the data.
    """
    seeds = check_ints("seeds", seeds, minimum=0)
    n_examples = check_int("n_examples", n_examples, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1, maximum=n_examples)
    steps = check_int("steps", steps, minimum=1)
    per_epoch = n_examples // batch_size
    orders = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        batches: list[torch.Tensor] = []
        while len(batches) < steps:
            order = torch.randperm(n_examples, generator=generator)
            batches.extend(order[i * batch_size : (i + 1) * batch_size] for i in range(per_epoch))
        orders.append(torch.stack(batches[:steps]))
    return torch.stack(orders)


def _skeleton(model: TinyTransformer) -> TinyTransformer:
    """A weightless copy of ``model`` whose attention is written out (vmap has no rule for the
    fused kernel; the explicit path computes the same function)."""
    skeleton = copy.deepcopy(model).to("meta")
    for module in skeleton.modules():
        if isinstance(module, CausalSelfAttention):
            module.explicit = True
    return skeleton


def train_together(
    models: Sequence[TinyTransformer],
    task: ReversalTask,
    *,
    lrs: Sequence[float],
    seeds: Sequence[int],
    batch_size: int,
    steps: int,
    on_step: Callable[[], None] | None = None,
) -> np.ndarray:
    """Train ``models`` in place with Adam, run ``i`` at learning rate ``lrs[i]`` on the batch
    order of ``seeds[i]``; returns the training loss of every run and step, ``[runs, steps]``
    (``nan`` once a run diverges).

    The models must have the same architecture and attention scale, and live on one device
    with ``task``.  ``on_step`` is called after every step (a progress bar's update).

    Raises:
        TypeError/ValueError: for an empty or mixed list of models, lists of different lengths
            or bad sizes.
    """
    if not models or not all(isinstance(m, TinyTransformer) for m in models):
        raise TypeError("models must be a non-empty sequence of TinyTransformer")
    shapes = {tuple((name, tuple(p.shape)) for name, p in m.named_parameters()) for m in models}
    scales = {cast(Block, block).attn.attention_scale for m in models for block in m.blocks}
    if len(shapes) != 1 or len(scales) != 1:
        raise ValueError("models must share one architecture and one attention scale")
    lr_list = check_reals("lrs", lrs)
    seed_list = check_ints("seeds", seeds, minimum=0)
    if not len(lr_list) == len(seed_list) == len(models):
        raise ValueError(f"lrs and seeds must have one entry per model ({len(models)}), "
                         f"got {len(lr_list)} and {len(seed_list)}")
    steps = check_int("steps", steps, minimum=1)
    orders = batch_orders(seed_list, task.tokens.shape[0], batch_size, steps)
    device = next(models[0].parameters()).device
    params, buffers = stack_module_state(list(models))
    params = {name: p.detach().clone().requires_grad_(True) for name, p in params.items()}
    skeleton = _skeleton(models[0])

    def run_loss(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor],
                 tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return sequence_loss(functional_call(skeleton, (p, b), (tokens,)), targets)

    batched_loss = vmap(run_loss)
    n_runs = len(models)
    rates = torch.tensor(lr_list, dtype=torch.float32, device=device)
    first = {name: torch.zeros_like(p) for name, p in params.items()}
    second = {name: torch.zeros_like(p) for name, p in params.items()}
    beta1, beta2 = ADAM_BETAS
    losses = np.empty((n_runs, steps))
    for step in range(steps):
        index = orders[:, step].to(device)
        loss = batched_loss(params, buffers, task.tokens[index], task.targets[index])
        grads = torch.autograd.grad(loss.sum(), list(params.values()))
        losses[:, step] = loss.detach().cpu().numpy()
        bias1, bias2 = 1 - beta1 ** (step + 1), 1 - beta2 ** (step + 1)
        with torch.no_grad():
            for (name, p), g in zip(params.items(), grads, strict=True):
                m, v = first[name], second[name]
                m.lerp_(g, 1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                denom = v.sqrt().div_(math.sqrt(bias2)).add_(ADAM_EPS)
                step_size = (rates / bias1).view((n_runs,) + (1,) * (p.dim() - 1))
                p.addcdiv_(m * step_size, denom, value=-1.0)
        if on_step is not None:
            on_step()
    with torch.no_grad():
        for i, model in enumerate(models):
            for name, p in model.named_parameters():
                p.copy_(params[name][i])
    losses[~np.isfinite(losses)] = np.nan
    return losses
