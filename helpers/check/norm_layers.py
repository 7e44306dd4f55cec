"""Exercises of notebook 03 beyond the forward passes: BatchNorm as a layer.

* :data:`batch_norm_backward` — training-mode BatchNorm's three gradients (dx, dγ, dβ) by hand
  for (N, C) inputs, checked against autograd in float64;
* :data:`batch_norm_step` — one step of BatchNorm with running statistics, in training or eval
  mode, checked against ``torch.nn.BatchNorm1d``;
* :data:`evaluate` — a debugging exercise: a test-accuracy loop with two planted bugs (the model
  left in training mode, per-batch accuracies averaged), fixed without changing the model's mode;
* :data:`layer_norm_module` — the student's LayerNorm as an ``nn.Module`` inside an MLP, trained
  a few SGD steps in float64 next to the same MLP with ``nn.LayerNorm``;
* the concept questions of the notebook (``q03_*``).

Every input is seeded and float64, with a batch size different from the number of channels (so
that a wrong axis shows) and a large ε (so that a missing or misplaced ε shows).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from helpers.check.feedback import AUTOGRAD, Exercise, Question, compare
from helpers.check.inputs import call
from helpers.check.norms import affine_grad_problem
from helpers.norms import sgd_losses

__all__ = ["batch_norm_backward", "batch_norm_step", "evaluate", "layer_norm_module", "q03_bn_vs_ln",
           "q03_eval_mode", "q03_ln_running_stats", "q03_negative_gamma", "q03_small_batch", "q03_transformers"]

F64 = torch.float64
_BATCH_NORM = ("torch.nn.functional.batch_norm",)  # nn.BatchNorm1d calls it too
_SUFFIX = " (Compared with autograd in float64.)"


def _affine(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded float64 γ (around 1) and β of length ``n``."""
    return 1 + 0.5 * torch.randn(n, generator=g, dtype=F64), torch.randn(n, generator=g, dtype=F64)


# -- BatchNorm backward -----------------------------------------------------------------------
def _reference_batch_norm_backward(dout: torch.Tensor, x: torch.Tensor, gamma: torch.Tensor,
                                   eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dx, dγ, dβ of training-mode BatchNorm over dim 0 of an (N, C) input, by hand."""
    r = 1 / torch.sqrt(x.var(0, unbiased=False, keepdim=True) + eps)
    x_hat = (x - x.mean(0, keepdim=True)) * r
    g = dout * gamma
    dx = r * (g - g.mean(0, keepdim=True) - x_hat * (g * x_hat).mean(0, keepdim=True))
    return dx, (dout * x_hat).sum(0), dout.sum(0)


def _autograd_dx(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, dout: torch.Tensor) -> torch.Tensor:
    leaf = x.detach().clone().requires_grad_()
    forward(leaf).backward(dout)
    assert leaf.grad is not None
    return leaf.grad


def _dx_mistakes(dout: torch.Tensor, x: torch.Tensor, gamma: torch.Tensor,
                 eps: float) -> list[tuple[str, torch.Tensor]]:
    n = x.shape[0]
    centred = x - x.mean(0, keepdim=True)
    r = 1 / torch.sqrt(x.var(0, unbiased=False, keepdim=True) + eps)
    x_hat, g = centred * r, dout * gamma

    def over(t: torch.Tensor, dim: int) -> torch.Tensor:
        return t.mean(dim, keepdim=True)

    r1 = 1 / torch.sqrt(x.var(1, unbiased=False, keepdim=True) + eps)
    h1 = (x - x.mean(1, keepdim=True)) * r1
    no_eps = 1 / x.var(0, unbiased=False, keepdim=True).sqrt()
    h0 = centred * no_eps
    return [
        ("dx treats the batch mean and variance as constants (dx = dout · γ / σ): every example's x moves "
         "the batch statistics, so add the two terms through them.", r * g),
        ("dx is missing the gradient through the batch variance.", r * (g - over(g, 0))),
        ("dx is missing the gradient through the batch mean.", r * (g - x_hat * over(g * x_hat, 0))),
        ("dx is LayerNorm's gradient: statistics and means over the features (dim 1); BatchNorm's are over "
         "the batch (dim 0).", r1 * (g - over(g, 1) - h1 * over(g * h1, 1))),
        ("the two correction terms of dx average over the features (dim 1): BatchNorm's statistics, and so "
         "their gradients, are over the batch (dim 0).", r * (g - over(g, 1) - x_hat * over(g * x_hat, 1))),
        ("dx uses the unbiased variance (N − 1): training-mode BatchNorm normalizes with the biased one, "
         "σ² = mean((x − μ)²), so ∂σ²/∂x_i = 2(x_i − μ)/N.",
         _autograd_dx(lambda t: (t - t.mean(0)) / torch.sqrt(t.var(0, unbiased=True) + eps) * gamma, x, dout)),
        ("dx's variance term divides by N − 1: σ² is the biased variance, so ∂σ²/∂x_i = 2(x_i − μ)/N.",
         r * (g - over(g, 0)) - r**3 * centred * (g * centred).sum(0, keepdim=True) / (n - 1)),
        ("dx is missing γ: the gradient reaching x̂ is dout · gamma, not dout.",
         r * (dout - over(dout, 0) - x_hat * over(dout * x_hat, 0))),
        ("dx is missing ε: σ is sqrt(var + eps), as in the forward pass.",
         no_eps * (g - over(g, 0) - h0 * over(g * h0, 0))),
    ]


def _diagnose_batch_norm_backward(student: Callable[..., Any]) -> str | None:
    g = torch.Generator().manual_seed(21)
    n, c, eps = 5, 3, 0.5                      # 5 examples of 3 channels; a large ε
    x = 2 * torch.randn(n, c, generator=g, dtype=F64) + 1
    gamma, beta = _affine(c, g)
    dout = torch.randn(n, c, generator=g, dtype=F64)
    leaves = [t.clone().requires_grad_() for t in (x, gamma, beta)]
    F.batch_norm(leaves[0], None, None, leaves[1], leaves[2], training=True, eps=eps).backward(dout)
    dx_ok, dgamma_ok, dbeta_ok = (t.grad for t in leaves)
    assert dx_ok is not None and dgamma_ok is not None and dbeta_ok is not None

    answer, changed = call(student, (dout, x, gamma, eps))
    if changed:
        return changed
    if not isinstance(answer, (tuple, list)) or len(answer) != 3:
        return "return three tensors, (dx, dgamma, dbeta); got " + (
            f"{len(answer)} values." if isinstance(answer, (tuple, list)) else f"a {type(answer).__name__}.")
    dx, dgamma, dbeta = answer
    problem = compare("dx", dx, dx_ok, _dx_mistakes(dout, x, gamma, eps), atol=1e-8)
    if problem is not None:
        return problem + _SUFFIX
    x_hat = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + eps)
    problem = affine_grad_problem(dgamma, dbeta, dgamma_ok, dbeta_ok, dout, x, x_hat,
                                  across="the channels (dim 1)", per="channel")
    return None if problem is None else problem + _SUFFIX


batch_norm_backward = Exercise(
    name="batch_norm_backward",
    checked="dx, dgamma and dbeta match autograd through F.batch_norm in float64 (5 examples × 3 channels).",
    reference=_reference_batch_norm_backward,
    diagnose=_diagnose_batch_norm_backward,
    forbidden=(*AUTOGRAD, *_BATCH_NORM),
)


# -- BatchNorm with running statistics, both modes --------------------------------------------
Step = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _reference_batch_norm_step(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                               running_mean: torch.Tensor, running_var: torch.Tensor, training: bool,
                               momentum: float = 0.1, eps: float = 1e-5) -> Step:
    """One BatchNorm1d step on an (N, C) input: (output, new running_mean, new running_var)."""
    if training:
        mean, var = x.mean(0), x.var(0, unbiased=False)
        n = x.shape[0]
        new_mean = (1 - momentum) * running_mean + momentum * mean
        new_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)
    else:
        mean, var, new_mean, new_var = running_mean, running_var, running_mean.clone(), running_var.clone()
    return (x - mean) / torch.sqrt(var + eps) * gamma + beta, new_mean, new_var


def _torch_step(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, rm: torch.Tensor, rv: torch.Tensor,
                training: bool, momentum: float, eps: float) -> Step:
    """The oracle: torch.nn.BatchNorm1d with these parameters and running statistics."""
    layer = nn.BatchNorm1d(x.shape[1], eps=eps, momentum=momentum).double()
    assert layer.running_mean is not None and layer.running_var is not None
    with torch.no_grad():
        layer.weight.copy_(gamma)
        layer.bias.copy_(beta)
        layer.running_mean.copy_(rm)
        layer.running_var.copy_(rv)
        layer.train(training)
        out = layer(x)
    return out, layer.running_mean.clone(), layer.running_var.clone()


def _step_mistakes(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, rm: torch.Tensor, rv: torch.Tensor,
                   training: bool, m: float, eps: float) -> dict[str, list[tuple[str, torch.Tensor]]]:
    """What each typical mistake returns, per output (out, running_mean, running_var)."""
    mean, biased, unbiased = x.mean(0), x.var(0, unbiased=False), x.var(0, unbiased=True)

    def norm(mu: torch.Tensor, var: torch.Tensor, outside: bool = False) -> torch.Tensor:
        return (x - mu) / (var.sqrt() + eps if outside else torch.sqrt(var + eps)) * gamma + beta

    if training:
        new_mean, new_var = (1 - m) * rm + m * mean, (1 - m) * rv + m * unbiased
        by_running = "training mode normalizes with the batch's own statistics; the running ones are for eval mode."
        return {
            "out": [("training mode normalizes with the unbiased batch variance: it uses the biased one, "
                     "x.var(0, unbiased=False); the unbiased one only goes into running_var.", norm(mean, unbiased)),
                    (by_running, norm(rm, rv)), (by_running, norm(new_mean, new_var))],
            "running_mean": [
                ("running_mean moves the wrong way: running = (1 − momentum) · running + momentum · batch_mean "
                 "(momentum is the weight of the new batch).", m * rm + (1 - m) * mean),
                ("running_mean is not updated in training mode.", rm),
                ("running_mean is replaced by the batch mean: blend it in with momentum.", mean),
                ("running_mean uses momentum 0.1 whatever the argument says: use momentum.", 0.9 * rm + 0.1 * mean)],
            "running_var": [
                ("running_var is updated with the biased batch variance: PyTorch stores the unbiased one, "
                 "x.var(0, unbiased=True) (it normalizes with the biased one).", (1 - m) * rv + m * biased),
                ("running_var moves the wrong way: running = (1 − momentum) · running + momentum · batch_var.",
                 m * rv + (1 - m) * unbiased),
                ("running_var moves the wrong way (running = (1 − momentum) · running + momentum · batch_var) "
                 "and takes the biased variance (PyTorch stores the unbiased one).", m * rv + (1 - m) * biased),
                ("running_var is not updated in training mode.", rv),
                ("running_var is replaced by the batch variance: blend it in with momentum.", unbiased),
                ("running_var uses momentum 0.1 whatever the argument says: use momentum.", 0.9 * rv + 0.1 * unbiased)],
        }
    batch = "eval mode still uses the batch's statistics: normalize with running_mean and running_var."
    changed = "eval mode changes the running statistics: in eval mode nothing is updated."
    return {
        "out": [(batch, norm(mean, biased)), (batch, norm(mean, unbiased)),
                ("eval mode is missing ε: divide by sqrt(running_var + eps).", (x - rm) / rv.sqrt() * gamma + beta),
                ("eval mode puts ε outside the root: it is sqrt(running_var + eps).", norm(rm, rv, outside=True))],
        "running_mean": [(changed, (1 - m) * rm + m * mean), (changed, m * rm + (1 - m) * mean)],
        "running_var": [(changed, (1 - m) * rv + m * unbiased), (changed, (1 - m) * rv + m * biased),
                        (changed, m * rv + (1 - m) * unbiased)],
    }


def _diagnose_batch_norm_step(student: Callable[..., Any]) -> str | None:
    g = torch.Generator().manual_seed(31)
    c, m, eps = 3, 0.2, 0.5                     # momentum 0.2, not the default 0.1; a large ε
    gamma, beta = _affine(c, g)
    rm = torch.randn(c, generator=g, dtype=F64)
    rv = 0.5 + torch.rand(c, generator=g, dtype=F64)
    # two training steps (batches of 6 and 4: N ≠ C, and N − 1 differs between them), then eval on 2
    for n, training in ((6, True), (4, True), (2, False)):
        x = 2 * torch.randn(n, c, generator=g, dtype=F64) + 1
        mode = f"{'training' if training else 'eval'} mode, x of shape ({n}, {c})"
        answer, changed = call(student, (x, gamma, beta, rm, rv, training, m, eps))
        if changed:
            return changed
        if not isinstance(answer, (tuple, list)) or len(answer) != 3:
            return "return three tensors, (out, running_mean, running_var); got " + (
                f"{len(answer)} values." if isinstance(answer, (tuple, list)) else f"a {type(answer).__name__}.")
        right = _torch_step(x, gamma, beta, rm, rv, training, m, eps)
        mistakes = _step_mistakes(x, gamma, beta, rm, rv, training, m, eps)
        for got, ok, name in zip(answer, right, ("out", "running_mean", "running_var"), strict=True):
            problem = compare(name, got, ok, mistakes[name], atol=1e-8)
            if problem is not None:
                return f"{problem} ({mode}, momentum {m}; compared with nn.BatchNorm1d.)"
        rm, rv = right[1], right[2]
    return None


batch_norm_step = Exercise(
    name="batch_norm_step",
    checked="output, running_mean and running_var match nn.BatchNorm1d over two training steps and one "
            "eval step (momentum 0.2, batches of 6, 4 and 2).",
    reference=_reference_batch_norm_step,
    diagnose=_diagnose_batch_norm_step,
    forbidden=_BATCH_NORM,
)


# -- Debugging: a test-accuracy loop ----------------------------------------------------------
def _reference_evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 100) -> float:
    """Accuracy of ``model`` on (x, y) in eval mode, in batches; the model's mode is restored."""
    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            correct += int((model(x[start:start + batch_size]).argmax(1) == y[start:start + batch_size]).sum())
    model.train(was_training)
    return correct / len(x)


def _debug_model() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A seeded float64 MLP with a BatchNorm1d whose running statistics are the population's, in
    training mode (as after training), and 10 test examples whose labels make the two bugs show."""
    g = torch.Generator().manual_seed(41)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=F64))
        population = torch.randn(500, 4, generator=g, dtype=F64) + 1
        hidden = model[0](population)
        bn = model[1]
        assert isinstance(bn, nn.BatchNorm1d) and bn.running_mean is not None and bn.running_var is not None
        bn.running_mean.copy_(hidden.mean(0))
        bn.running_var.copy_(hidden.var(0))
        x = torch.randn(10, 4, generator=g, dtype=F64) + 1
        model.eval()
        y = model(x).argmax(1)
    y[[1, 8]] = (y[[1, 8]] + 1) % 3  # two wrong: 80 % overall, but 75 %, 100 %, 50 % per batch of 4
    model.train()
    return model, x, y


def _buggy_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, training: bool,
                    per_batch: bool) -> float:
    model = copy.deepcopy(model).train(training)
    right, counts = [], []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            hit = model(x[start:start + batch_size]).argmax(1) == y[start:start + batch_size]
            right.append(float(hit.sum()))
            counts.append(len(hit))
    return sum(r / k for r, k in zip(right, counts, strict=True)) / len(right) if per_batch else sum(right) / len(x)


def _buffers(model: nn.Module) -> list[torch.Tensor]:
    return [b.detach().clone() for b in model.buffers()]


def _diagnose_evaluate(student: Callable[..., Any]) -> str | None:
    model, x, y = _debug_model()
    batch = 4                                   # 10 examples: batches of 4, 4 and 2
    expected = _reference_evaluate(copy.deepcopy(model), x, y, batch)
    before = _buffers(model)
    try:
        value = student(model, x.clone(), y.clone(), batch)
    except ValueError as error:
        if "Expected more than 1 value per channel" in str(error):
            return ("the model ran in training mode, and a batch of one example cannot be normalized by its own "
                    "statistics: call model.eval() before evaluating.")
        raise
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"return the accuracy as a number (a float between 0 and 1), got {type(value).__name__}."
    value = float(value)
    if not 0 <= value <= 1:
        return f"the accuracy should be a fraction between 0 and 1, got {value:.4g}."
    if abs(value - expected) > 1e-6:
        train_mode = {_buggy_accuracy(model, x, y, batch, True, per_batch) for per_batch in (False, True)}
        if any(abs(value - v) <= 1e-6 for v in train_mode):
            return ("the model ran in training mode: BatchNorm normalized each test batch with its own statistics "
                    "(and updated its running averages); call model.eval() before evaluating.")
        if abs(value - _buggy_accuracy(model, x, y, batch, False, True)) <= 1e-6:
            return (f"averages the per-batch accuracies, but the last batch holds {len(x) % batch} examples, not "
                    f"{batch}: count the correct predictions and divide by len(x).")
        return f"the accuracy is {value:.4g}, expected {expected:.4g} (eval mode, every example counted once)."
    if any(not torch.equal(a, b) for a, b in zip(before, _buffers(model), strict=True)):
        return ("the accuracy is right, but evaluating changed BatchNorm's running statistics: run the model "
                "only in eval mode (no forward pass in training mode).")
    if not model.training:
        return ("the accuracy is right, but the model stays in eval mode afterwards: the training loop that calls "
                "evaluate between epochs would go on training with frozen statistics; put the mode back "
                "(was_training = model.training, then model.train(was_training)).")
    model.eval()
    value = student(model, x.clone(), y.clone(), batch)
    if model.training:
        return ("a model given in eval mode comes back in training mode: restore the mode it had "
                "(model.train(was_training)), not always training mode.")
    return None


evaluate = Exercise(
    name="evaluate",
    checked="eval-mode accuracy over every example (10 examples in batches of 4, 4 and 2), running statistics "
            "untouched, the model's mode as it was.",
    reference=_reference_evaluate,
    diagnose=_diagnose_evaluate,
)


# -- LayerNorm as a layer, trained ------------------------------------------------------------
def _reference_layer_norm_module(d: int, eps: float = 1e-5) -> nn.Module:
    """The course's LayerNorm layer: ``nn.LayerNorm(d, eps)`` (γ = 1, β = 0 at the start)."""
    return nn.LayerNorm(d, eps=eps)


class _DetachedLayerNorm(nn.Module):
    """LayerNorm whose mean and variance are detached: the slip the check recognises."""

    def __init__(self, d: int, eps: float) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = nn.Parameter(torch.ones(d)), nn.Parameter(torch.zeros(d)), eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, var = x.mean(-1, keepdim=True).detach(), x.var(-1, unbiased=False, keepdim=True).detach()
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


_STEPS, _LR, _D = 4, 0.5, 6


def _mlp_losses(norm: nn.Module) -> list[float]:
    """Losses of 4 SGD steps of Linear(5, 6) → norm → ReLU → Linear(6, 3) on 8 examples, float64."""
    g = torch.Generator().manual_seed(51)
    first, last = nn.Linear(5, _D), nn.Linear(_D, 3)
    with torch.no_grad():
        for p in (*first.parameters(), *last.parameters()):
            p.copy_(torch.randn(p.shape, generator=g))
    model = nn.Sequential(first, norm, nn.ReLU(), last).double()
    x = torch.randn(8, 5, generator=g, dtype=F64) * 2 + 1
    y = torch.randint(0, 3, (8,), generator=g)
    return list(sgd_losses(model, x, y, steps=_STEPS, lr=_LR))


def _diagnose_layer_norm_module(student: Callable[..., Any]) -> str | None:
    eps = 0.1                                   # not the default, so that a hard-coded ε shows
    layer = student(_D, eps)
    if not isinstance(layer, nn.Module):
        return f"return an nn.Module (an instance of your class), got {type(layer).__name__}."
    shapes = sorted(tuple(p.shape) for p in layer.parameters())
    if shapes != [(_D,), (_D,)]:
        if not shapes:
            return ("the layer has no parameters: γ and β stored as plain tensors are not in model.parameters(), "
                    "so the optimizer never trains them; wrap them in nn.Parameter.")
        return f"the layer's parameters have shapes {shapes}: it needs two, γ and β, each of shape ({_D},)."
    x = torch.randn(4, _D, generator=torch.Generator().manual_seed(52), dtype=F64) * 3 + 2
    with torch.no_grad():
        out = copy.deepcopy(layer).double()(x)
    expected = F.layer_norm(x, (_D,), eps=eps)
    problem = compare("the output of a new layer", out, expected, [
        ("ignores the eps argument (a fixed ε): normalize with the eps the layer was built with.",
         F.layer_norm(x, (_D,), eps=1e-5)),
        ("normalizes over the batch (dim 0), not each example's features.",
         (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + eps)),
    ], atol=1e-8)
    if problem is not None:
        own = [p.detach().double() for p in layer.parameters()]
        if not all(torch.allclose(p, torch.full_like(p, v)) for p, v in zip(own, (1.0, 0.0), strict=True)) and \
                not all(torch.allclose(p, torch.full_like(p, v)) for p, v in zip(own, (0.0, 1.0), strict=True)):
            return ("a new layer does not start as nn.LayerNorm does, with γ = 1 and β = 0 "
                    "(torch.ones(d), torch.zeros(d)), so it does not start as the identity on x̂.")
        return problem + " (float64, γ = 1, β = 0 as at the start.)"
    expected_losses = _mlp_losses(nn.LayerNorm(_D, eps=eps))
    losses = _mlp_losses(layer)
    for step, (got, ok) in enumerate(zip(losses, expected_losses, strict=True)):
        if abs(got - ok) > 1e-9 * max(1.0, abs(ok)):
            if all(abs(a - b) <= 1e-9 for a, b in zip(losses, _mlp_losses(_DetachedLayerNorm(_D, eps)), strict=True)):
                return ("the losses part from nn.LayerNorm's after the first step: your layer's mean and variance "
                        "are detached (.detach(), .item(), .data or torch.no_grad()), so autograd misses the two "
                        "gradient terms through them (the ones your layer_norm_backward has).")
            return (f"in the MLP the loss at SGD step {step + 1} is {got:.6f} with your layer and {ok:.6f} with "
                    "nn.LayerNorm: the gradients through your layer (to x, γ or β) differ from LayerNorm's.")
    return None


layer_norm_module = Exercise(
    name="layer_norm_module",
    checked="a new layer is LayerNorm with γ = 1, β = 0 and the given ε, and an MLP with it follows the same "
            f"MLP with nn.LayerNorm through {_STEPS} SGD steps in float64 (losses within 10⁻⁹).",
    reference=_reference_layer_norm_module,
    diagnose=_diagnose_layer_norm_module,
)


# -- Concept questions ------------------------------------------------------------------------
q03_small_batch = Question(
    name="q03_small_batch",
    answer="b",
    why="with 2 examples every feature is normalized over 2 values (each output ±1): the network trained at "
        "batch 2 never learned (training loss near chance), whatever the running averages did.",
    choices={
        "a": "section 6 evaluated the batch-2 networks with batch-2 statistics too, and they did worse still; "
             "their training loss stayed near chance: the damage is done in training, not at test time.",
        "b": "",
        "c": "dγ and dβ are sums over the batch, but the loss is a mean, so their scale does not shrink with "
             "the batch; and GroupNorm, which has γ and β too, learned fine at batch 2.",
    },
)
q03_bn_vs_ln = Question(
    name="q03_bn_vs_ln",
    answer="a",
    why="BatchNorm: one mean and variance per feature (channel), over the examples of the batch (a column); "
        "LayerNorm: one per example, over its features (a row).",
    choices={
        "a": "",
        "b": "that is the other way round: a column of N × D holds one feature over the batch, BatchNorm's group.",
        "c": "normalizing the whole tensor at once is neither: section 3 shows that map is affine "
             "(correlation 1); both keep one statistic per row or per column.",
    },
)
q03_transformers = Question(
    name="q03_transformers",
    answer="c",
    why="padded sequences of varying length, single-sequence batches at inference and unstable token "
        "statistics make batch statistics unreliable; LayerNorm works on each token, the same in both modes.",
    choices={
        "a": "nn.BatchNorm1d takes (N, C, L) tensors, so it can normalize token features; the trouble is what its "
             "statistics mix (padding, other sequences) and that inference batches are tiny.",
        "b": "both read every value once per statistic; speed is not the reason (the course measures none).",
        "c": "",
    },
)
q03_eval_mode = Question(
    name="q03_eval_mode",
    answer="b",
    why="eval mode normalizes with running_mean and running_var and updates nothing, so an example's output "
        "no longer depends on the rest of its batch (section 5).",
    choices={
        "a": "that is training mode, the behaviour that forgetting model.eval() keeps at test time.",
        "b": "",
        "c": "eval mode updates nothing: the running statistics are frozen, or evaluating would change the model.",
    },
)
q03_ln_running_stats = Question(
    name="q03_ln_running_stats",
    answer="a",
    why="LayerNorm's statistics come from the example itself, which is there at test time as in training: "
        "nothing has to be estimated in advance.",
    choices={
        "a": "",
        "b": "nothing is folded: nn.LayerNorm has no running_mean or running_var buffers at all.",
        "c": "Transformers use LayerNorm with batches of any size, even a single sequence at inference.",
    },
)
q03_negative_gamma = Question(
    name="q03_negative_gamma",
    answer="c",
    why="y = −2·x̂ + β mirrors the histogram around β and doubles its width (std |γ| = 2): the long tail now "
        "points left, so the skewness changes sign, −2; its size does not depend on the scale.",
    choices={
        "a": "a negative γ mirrors the values, so the long tail points the other way: the skewness changes sign.",
        "b": "normalization never removes skewness (section 4's measurement): an affine map keeps the shape.",
        "c": "",
        "d": "skewness is scale-free (it is measured in units of the std), so doubling the width does not double it.",
    },
)
