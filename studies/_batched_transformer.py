"""Many runs of notebook 06's tiny Transformer trained at once, as one batched model.

:func:`train_batched` computes what :func:`helpers.transformer_runs.train_variant` computes for
each of many (learning rate, warm-up, seed) settings of one LayerNorm placement, all in one
pass: the runs' weights are stacked with :func:`torch.func.stack_module_state`, evaluated
with ``vmap(functional_call)``, and updated by a batched Adam (written here, one learning
rate per run).  At these tiny sizes that costs far less than the runs one after the other.
The studies ``transformer_stability`` and ``residual_streams`` use it; students read the
one-run code in :mod:`helpers.transformer_runs`.  The batch order and Adam's constants are
:mod:`studies._attention_batched`'s, which trains notebook 04's Transformers the same way.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.func import functional_call, stack_module_state, vmap

from helpers.training import single_thread, warmup_lr
from helpers.transformer import (
    NORMS,
    CausalSelfAttention,
    ReversalTask,
    TinyTransformer,
    accuracy,
    residual_norms,
    sequence_loss,
)
from helpers.transformer_runs import RunResult, TrainingSetup
from helpers.validation import check_choice, check_int, check_ints, check_reals
from studies._attention_batched import ADAM_BETAS, ADAM_EPS, batch_orders

PROBE_SEQUENCES = 256
"""Held-out sequences on which the residual-stream norms are measured before and after
training (as in ``train_variant``)."""
TRACK_SEQUENCES = 64
"""Held-out sequences (the first of the probe) on which they are measured during training:
a mean over 64 × 2n tokens, at a quarter of the cost."""


def _check_runs(lrs: object, seeds: object, warmups: object) -> tuple[list[float], list[int], list[int]]:
    lr_list = list(check_reals("lrs", lrs))
    seed_list = list(check_ints("seeds", seeds, minimum=0))
    warmup_list = list(check_ints("warmups", warmups, minimum=0))
    if not len(lr_list) == len(seed_list) == len(warmup_list):
        raise ValueError(f"lrs, seeds and warmups must have the same length (one entry per run), "
                         f"got {len(lr_list)}, {len(seed_list)} and {len(warmup_list)}")
    return lr_list, seed_list, warmup_list


def _load(models: Sequence[TinyTransformer], params: dict[str, torch.Tensor]) -> None:
    """Copy the stacked weights into the runs' ordinary models."""
    with torch.no_grad():
        for i, model in enumerate(models):
            for name, p in model.named_parameters():
                p.copy_(params[name][i])


def train_batched(
    norm: str,
    *,
    lrs: Sequence[float],
    seeds: Sequence[int],
    warmups: Sequence[int],
    setup: TrainingSetup | None = None,
    tasks: tuple[ReversalTask, ReversalTask] | None = None,
    record_steps: Sequence[int] = (),
    on_step: Callable[[], object] | None = None,
) -> list[RunResult]:
    """Train many runs of one variant at once, as ONE batched model; one result per run.

    Run ``i`` is what ``train_variant(norm, lr=lrs[i], warmup_steps=warmups[i],
    seed=seeds[i], setup=setup)`` computes: the same initial weights, the same batch order,
    Adam with the PyTorch defaults and linear warm-up.  Runs are independent: one that
    diverges to ``nan`` does not touch the others.

    Args:
        record_steps: after how many steps (0 = before training) to measure every run's
            residual-stream norms on the first :data:`TRACK_SEQUENCES` probe sequences; stored as
            ``result.extra["residual_track"]``, one row per distinct step in increasing
            order, shape ``(len(set(record_steps)), n_layers + 1)``.
        on_step: called after every training step (e.g. a progress bar's update).

    Raises:
        TypeError/ValueError: for a bad ``norm``, lists of different lengths or bad values,
            or record steps outside ``0 … setup.steps``.
    """
    check_choice("norm", norm, NORMS)
    lr_list, seed_list, warmup_list = _check_runs(lrs, seeds, warmups)
    setup = TrainingSetup() if setup is None else setup
    record = sorted(set(check_ints("record_steps", record_steps, minimum=0))) if len(record_steps) else []
    for step in record:
        check_int("record_steps", step, minimum=0, maximum=setup.steps)
    train_task, test_task = setup.tasks() if tasks is None else tasks
    models = [setup.model(norm, s) for s in seed_list]
    probe = test_task.tokens[:PROBE_SEQUENCES]
    track_probe = probe[:TRACK_SEQUENCES]
    n_runs, steps = len(models), setup.steps
    tracks: list[list[np.ndarray]] = [[] for _ in models]

    def measure(params: dict[str, torch.Tensor] | None) -> None:
        if params is not None:
            _load(models, params)
        for i, model in enumerate(models):
            tracks[i].append(residual_norms(model, track_probe))

    with single_thread():
        residual_init = [residual_norms(m, probe) for m in models]
        if 0 in record:
            measure(None)
        params, buffers = stack_module_state(models)
        params = {k: v.detach().clone() for k, v in params.items()}
        skeleton = copy.deepcopy(models[0]).to("meta")
        for module in skeleton.modules():
            if isinstance(module, CausalSelfAttention):
                module.explicit = True  # the fused attention kernel has no vmap rule

        def run_loss(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor],
                     tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return sequence_loss(functional_call(skeleton, (p, b), (tokens,)), targets)

        batched_loss = vmap(run_loss)
        orders = batch_orders(seed_list, train_task.tokens.shape[0], setup.batch_size, steps)
        peak = torch.tensor(lr_list)
        ramp = torch.tensor(warmup_list, dtype=torch.float64)
        first = {k: torch.zeros_like(v) for k, v in params.items()}
        second = {k: torch.zeros_like(v) for k, v in params.items()}
        (beta1, beta2), losses, rates = ADAM_BETAS, np.empty((n_runs, steps)), np.empty((n_runs, steps))
        for step in range(steps):
            index = orders[:, step]
            factor = torch.where(ramp > 0, torch.clamp((step + 1) / ramp.clamp(min=1), max=1.0), 1.0)
            rate = peak * factor.float()
            for p in params.values():
                p.requires_grad_(True)
            loss = batched_loss(params, buffers, train_task.tokens[index], train_task.targets[index])
            grads = torch.autograd.grad(loss.sum(), list(params.values()))
            losses[:, step] = loss.detach().numpy()
            rates[:, step] = [warmup_lr(step, lr, w) for lr, w in zip(lr_list, warmup_list, strict=True)]
            bias1, bias2 = 1 - beta1 ** (step + 1), 1 - beta2 ** (step + 1)
            with torch.no_grad():
                for (name, p), g in zip(params.items(), grads, strict=True):
                    first[name].mul_(beta1).add_(g, alpha=1 - beta1)
                    second[name].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                    denom = second[name].sqrt() / math.sqrt(bias2) + ADAM_EPS
                    shape = (n_runs,) + (1,) * (p.dim() - 1)
                    params[name] = p.detach() - (rate / bias1).view(shape) * first[name] / denom
            if step + 1 in record:
                measure(params)
            if on_step is not None:
                on_step()
        losses[~np.isfinite(losses)] = np.nan
        _load(models, params)
        results = []
        for i, model in enumerate(models):
            finite = bool(np.isfinite(losses[i]).all())
            digit, sequence = accuracy(model, test_task) if finite else (float("nan"), float("nan"))
            final = residual_norms(model, probe) if finite else np.full_like(residual_init[i], np.nan)
            extra: dict[str, object] = {"model": model}
            if record:
                extra["residual_track"] = np.stack(tracks[i])
            results.append(RunResult(norm, lr_list[i], warmup_list[i], seed_list[i], losses[i],
                                     rates[i], digit, sequence, residual_init[i], final, extra=extra))
    return results
