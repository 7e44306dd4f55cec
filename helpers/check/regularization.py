"""Exercises of notebook 07 (weight decay and dropout), written by the student.

* :data:`adam_l2_step` — one Adam step with L2 regularization: ``λ·w`` added to the gradient
  before the moments (what ``torch.optim.Adam(weight_decay=λ)`` does);
* :data:`adamw_step` — one AdamW step: the weights shrink by ``(1 − lr·λ)`` and Adam's step uses
  the loss gradient alone (``torch.optim.AdamW``);
* :data:`inverted_dropout` — inverted dropout in training and evaluation mode.

Both Adam exercises take ``(w, grad, m, v, t, lr, lam)`` with ``t`` the number of this step
(1 for the first) and return ``(w, m, v)`` after it.  They are run for three steps from zero
moments on seeded float64 weights large enough that where ``λ`` enters shows, and compared
with the outputs of the typical mistakes (among them: the other exercise's rule).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from helpers import regularization as reg
from helpers.check.feedback import Exercise, compare
from helpers.check.inputs import call

__all__ = ["adam_l2_step", "adamw_step", "inverted_dropout"]

F64 = torch.float64
LR, LAM, STEPS = 0.01, 0.1, 3
B1, B2 = reg.BETAS
EPS = reg.ADAM_EPS


def _reference_adam(rule: Callable[..., tuple[torch.Tensor, reg.AdamState]]) -> Callable[..., Any]:
    def step(w: torch.Tensor, grad: torch.Tensor, m: torch.Tensor, v: torch.Tensor, t: int, lr: float,
             lam: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        new_w, state = rule(w, grad, reg.AdamState(m, v, t - 1), lr, lam)
        return new_w, state.m, state.v

    return step


def _variant(w: torch.Tensor, grad: torch.Tensor, m: torch.Tensor, v: torch.Tensor, t: int, *, l2: float = 0.0,
             decay: float = 0.0, sign: float = 1.0, correct: bool = True,
             after: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Adam with ``l2·w`` in the gradient, the weights multiplied by ``(1 − decay)`` first, ``after·w``
    added to the step, with or without bias correction."""
    g = grad + sign * l2 * w
    m = B1 * m + (1 - B1) * g
    v = B2 * v + (1 - B2) * g * g
    m_hat, v_hat = (m / (1 - B1 ** t), v / (1 - B2 ** t)) if correct else (m, v)
    new_w = w * (1 - decay) - LR * (m_hat / (v_hat.sqrt() + EPS) + after * w)
    return new_w, m, v


def _run(fn: Callable[..., Any], w: torch.Tensor, grads: list[torch.Tensor], **kwargs: Any) -> torch.Tensor:
    """``w`` after :data:`STEPS` steps of ``fn`` from zero moments (``kwargs`` go to :func:`_variant`)."""
    m, v = torch.zeros_like(w), torch.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        out = fn(w.clone(), g.clone(), m.clone(), v.clone(), t, LR, LAM) if not kwargs else \
            _variant(w, g, m, v, t, **kwargs)
        w, m, v = out
    return w


def _inputs() -> tuple[torch.Tensor, list[torch.Tensor]]:
    g = torch.Generator().manual_seed(7)
    w = 3 * torch.randn(4, 5, generator=g, dtype=F64)          # large weights: where λ enters shows
    grads = [0.1 * torch.randn(4, 5, generator=g, dtype=F64) for _ in range(STEPS)]
    return w, grads


def _shape_problem(answer: object) -> str | None:
    if not isinstance(answer, (tuple, list)) or len(answer) != 3:
        got = f"{len(answer)} values" if isinstance(answer, (tuple, list)) else f"a {type(answer).__name__}"
        return f"return three tensors, (w, m, v) after the step; got {got}."
    return None


def _diagnose_adam(student: Callable[..., Any], decoupled: bool) -> str | None:
    w0, grads = _inputs()
    # the first step from moments that are not zero, so that m.mul_(β₁) shows too; then from zero moments
    warm = (0.1 * grads[1], 0.01 * grads[2] ** 2)
    for m, v in (warm, (torch.zeros_like(w0), torch.zeros_like(w0))):
        first, changed = call(student, (w0, grads[0], m, v, 1, LR, LAM), names=("w", "grad", "m", "v"),
                              hint="w - lr * …, b1 * m + (1 - b1) * g make new tensors; w -= …, m.mul_(b1) and "
                                   "v.add_(…) overwrite the caller's")
        if changed:
            return changed
    problem = _shape_problem(first)
    if problem is not None:
        return problem
    right = _reference_adam(reg.adamw_step if decoupled else reg.adam_l2_step)
    expected = _run(right, w0, grads)
    other = ("AdamW's decoupled decay (w shrinks by (1 − lr·λ), the moments never see λ; adding λ·w to the step "
             "after the moments is the same thing)") if not decoupled else \
        "Adam + L2 (λ·w added to the gradient, so it is divided by √v̂ like the gradient)"
    mistakes = [
        (f"this is {other}: the other exercise.",
         _run(right, w0, grads, decay=LR * LAM) if not decoupled else _run(right, w0, grads, l2=LAM)),
        ("no weight decay at all: λ never enters.", _run(right, w0, grads, decay=0.0)),
        ("no bias correction: divide m by (1 − β₁ᵗ) and v by (1 − β₂ᵗ) before the step.",
         _run(right, w0, grads, decay=LR * LAM, correct=False) if decoupled else
         _run(right, w0, grads, l2=LAM, correct=False)),
    ]
    if decoupled:
        mistakes += [
            ("the decay is missing the learning rate: AdamW shrinks w by (1 − lr·λ), not (1 − λ).",
             _run(right, w0, grads, decay=LAM)),
        ]
    else:
        mistakes += [
            ("λ·w is subtracted from the gradient: the L2 term's gradient is + λ·w.",
             _run(right, w0, grads, l2=LAM, sign=-1.0)),
            ("λ/2·w in the gradient: the derivative of λ/2·‖w‖² is λ·w.", _run(right, w0, grads, l2=LAM / 2)),
        ]
    answer = _run(student, w0, grads)
    problem = compare(f"w after {STEPS} steps", answer, expected, mistakes, atol=1e-9)
    if problem is not None and problem in {message for message, _ in mistakes}:
        return problem + f" (lr = {LR}, λ = {LAM}, float64.)"
    m_ok, v_ok = right(w0, grads[0], torch.zeros_like(w0), torch.zeros_like(w0), 1, LR, LAM)[1:]
    for what, got, ok in (("m", first[1], m_ok), ("v", first[2], v_ok)):
        index = 1 if what == "m" else 2
        moment_problem = compare(f"{what} after the first step", got, ok, {
            f"{what} is computed from the loss gradient alone: in Adam + L2 the gradient is grad + lam · w, "
            "and both moments use it.": _variant(w0, grads[0], torch.zeros_like(w0), torch.zeros_like(w0), 1)[index],
            f"{what} uses grad + lam · w: in AdamW the moments see the loss gradient alone.":
                _variant(w0, grads[0], torch.zeros_like(w0), torch.zeros_like(w0), 1, l2=LAM)[index],
        }, atol=1e-10)
        if moment_problem is not None:
            return moment_problem
    return None if problem is None else problem + f" (lr = {LR}, λ = {LAM}, float64.)"


#: How a torch.optim step shows among the torch functions it calls (its ``step`` is no torch function
#: itself): every ``Optimizer.step`` opens a profiler record, and the foreach and fused Adam kernels
#: have names of their own. A step written by hand calls none of them (Tensor.lerp_ and addcdiv_, which
#: the single-tensor Adam also calls, could be the student's own).
OPTIMIZER_KERNELS = ("profiler._record_function_enter_new", "torch._VariableFunctionsClass._foreach_lerp_",
                     "torch._VariableFunctionsClass._fused_adam_", "torch._VariableFunctionsClass._fused_adamw_",
                     # the functional optimizers, which torch.optim's steps call and a student can call directly
                     "torch.optim.adam.adam", "torch.optim.adamw.adamw")

adam_l2_step = Exercise(
    name="adam_l2_step",
    checked="three steps match torch.optim.Adam(weight_decay=λ): λ·w is in the gradient, the moments and "
            "bias correction are right.",
    reference=_reference_adam(reg.adam_l2_step),
    diagnose=lambda student: _diagnose_adam(student, decoupled=False),
    forbidden=OPTIMIZER_KERNELS,
)

adamw_step = Exercise(
    name="adamw_step",
    checked="three steps match torch.optim.AdamW: w shrinks by (1 − lr·λ), the moments see the loss "
            "gradient alone.",
    reference=_reference_adam(reg.adamw_step),
    diagnose=lambda student: _diagnose_adam(student, decoupled=True),
    forbidden=OPTIMIZER_KERNELS,
)


# -- inverted dropout ---------------------------------------------------------------------------
def _reference_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    return reg.inverted_dropout(x, p, training)


def _diagnose_dropout(student: Callable[..., Any]) -> str | None:
    p = 0.3
    with torch.random.fork_rng():
        torch.manual_seed(0)
        g = torch.Generator().manual_seed(3)
        x = torch.rand(400, 250, generator=g, dtype=F64) + 0.5      # all positive: a zero means "dropped"
        hint = "x * mask / (1 - p), leave x alone"
        out, changed = call(student, (x, p, True), hint=hint)
        if changed:
            return changed
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            return compare("the training output", out, x, {})
        dropped = out == 0
        kept_ratio = torch.where(dropped, torch.ones_like(x), out / x)
        frac = dropped.double().mean().item()
        if dropped.all(dim=0).any() and (dropped == dropped[0]).all():
            return "one mask is shared by the whole batch: draw a mask of x's full shape, one per example."
        if (dropped == dropped[:, :1]).all():
            return "each example is dropped or kept whole: draw one mask value per entry, not per example."
        if abs(frac - (1 - p)) < 0.02 and abs(frac - p) > 0.1:
            return f"{100 * frac:.0f} % of the units were dropped with p = {p}: p is the probability to DROP."
        if abs(frac - p) > 0.02:
            return f"{100 * frac:.0f} % of the units were dropped, expected about {100 * p:.0f} % (p = {p})."
        kept = kept_ratio[~dropped]
        if torch.allclose(kept, torch.ones_like(kept)):
            return "the kept units are not scaled: divide by (1 - p) so the mean stays the same (inverted dropout)."
        if torch.allclose(kept, torch.full_like(kept, 1 - p)):
            return "the kept units are multiplied by (1 - p): inverted dropout divides them by (1 - p)."
        if not torch.allclose(kept, torch.full_like(kept, 1 / (1 - p))):
            return "the kept units should be x / (1 - p) exactly."
        at_eval, changed = call(student, (x, p, False), hint=hint)
        if changed:
            return changed
        if not isinstance(at_eval, torch.Tensor) or at_eval.shape != x.shape:
            return compare("the evaluation output", at_eval, x, {})
        if (at_eval == 0).any():
            return "units are dropped at evaluation: with training=False return x unchanged."
        problem = compare("the evaluation output", at_eval, x, {
            "evaluation multiplies by (1 - p): that is the original (non-inverted) dropout; inverted dropout "
            "scales in training, so evaluation returns x unchanged.": x * (1 - p),
            "evaluation divides by (1 - p): the scaling belongs to training only; return x unchanged.":
                x / (1 - p)}, atol=1e-12)
        if problem is not None:
            return problem
        same, changed = call(student, (x, 0.0, True), hint=hint)
        if changed:
            return changed
        if isinstance(same, torch.Tensor) and same.shape == x.shape and not torch.allclose(same, x):
            return "p = 0 should leave x unchanged in training too."
    return None


inverted_dropout = Exercise(
    name="inverted_dropout",
    checked="drops about p of the entries with a fresh mask per entry, scales the kept ones by 1/(1 − p), "
            "and returns x unchanged at evaluation.",
    reference=_reference_dropout,
    diagnose=_diagnose_dropout,
    forbidden=("torch.nn.functional.dropout", "torch.dropout", "torch.native_dropout"),
)
