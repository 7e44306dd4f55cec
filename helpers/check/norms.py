"""Exercises of notebook 03 (LayerNorm vs BatchNorm vs GroupNorm), written by the student.

* :data:`layer_norm` — LayerNorm's forward pass over the last dimension, with γ, β and ε;
* :data:`layer_norm_backward` — its three gradients (dx, dγ, dβ) by hand, checked against
  autograd in float64;
* :data:`batch_norm` — BatchNorm's forward pass in training mode, for (N, C) and (N, C, H, W).

Every ``diagnose`` runs the answer on seeded float64 inputs whose shapes are all different
(so that a wrong axis shows) with a large ε (so that a missing or misplaced ε shows), and
compares it with the outputs that typical mistakes would give, to name the mistake.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from helpers import norms
from helpers.check.feedback import AUTOGRAD, Exercise, compare
from helpers.check.inputs import call

__all__ = ["batch_norm", "layer_norm", "layer_norm_backward"]

F64 = torch.float64


def _affine(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded float64 γ (around 1) and β of length ``n``."""
    gamma = 1 + 0.5 * torch.randn(n, generator=g, dtype=F64)
    return gamma, torch.randn(n, generator=g, dtype=F64)


def _standardize(x: torch.Tensor, dims: int | tuple[int, ...], eps: float, unbiased: bool = False,
                 outside: bool = False) -> torch.Tensor:
    """x̂ over ``dims``, right or with typical mistakes (unbiased variance, ε outside, or both)."""
    centred = x - x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, unbiased=unbiased, keepdim=True)
    return centred / (var.sqrt() + eps if outside else torch.sqrt(var + eps))


#: The Annotated Transformer's LayerNorm, ``(x - mean) / (x.std(-1, keepdim=True) + eps)``: torch's
#: default std is unbiased (n − 1), and ε is added to the std, outside the square root.
ANNOTATED_TRANSFORMER = ("uses x.std() (unbiased, n−1) with ε added outside the square root, as the Annotated "
                         "Transformer does; LayerNorm uses the biased variance inside: √(var + ε), "
                         "var = x.var(-1, unbiased=False, keepdim=True).")
#: The same two slips in BatchNorm: x.std(dims) + eps.
BATCH_NORM_STD = ("uses x.std() (unbiased, n−1) with ε added outside the square root; training-mode BatchNorm "
                  "normalises with the biased variance inside: √(var + ε), "
                  "var = x.var(dims, unbiased=False, keepdim=True).")
#: When ε is missing, or hard-coded (the Annotated Transformer's 1e-6, torch's 1e-5) in place of the argument.
_NO_EPS = ("uses x.std() (unbiased, n−1) without the eps argument (no ε, or a hard-coded tiny one like the "
           "Annotated Transformer's 1e-6; the check passes eps = {eps:g}): divide by √(var + eps) with the biased "
           "variance, {var}.")


def _std_mistakes(x: torch.Tensor, dims: int | tuple[int, ...], eps: float, message: str, var: str,
                  affine: Callable[[torch.Tensor], torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    """x.std(dims) (unbiased) in place of √(var + ε): ε outside the root, hard-coded, or missing."""
    no_eps = _NO_EPS.format(eps=eps, var=var)
    return [(message, affine(_standardize(x, dims, eps, unbiased=True, outside=True))),
            *((no_eps, affine(_standardize(x, dims, fixed, unbiased=True, outside=True))) for fixed in (1e-6, 1e-5)),
            (no_eps, affine(_standardize(x, dims, 0.0, unbiased=True)))]


# -- LayerNorm forward ------------------------------------------------------------------------
def _reference_layer_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                          eps: float = 1e-5) -> torch.Tensor:
    """The course's LayerNorm over the last dimension (``helpers.norms.layer_norm``)."""
    return norms.layer_norm(x, x.shape[-1], gamma, beta, eps)


def _layer_norm_mistakes(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                         eps: float) -> list[tuple[str, torch.Tensor]]:
    last = -1
    wrong_axis = {
        "normalised over dim 0 (across the batch, BatchNorm-style) instead of the last dim "
        "(each example's features).": _standardize(x, 0, eps) * gamma + beta,
    }
    if x.dim() == 3:
        wrong_axis = {
            "normalised over dim 1 instead of the last dim: write dim=-1, so that it works for "
            "any number of leading dimensions.": _standardize(x, 1, eps) * gamma + beta,
            "normalised over all dims but the first (the whole example) instead of the last dim "
            "only.": _standardize(x, (1, 2), eps) * gamma + beta,
        }
    return [*_std_mistakes(x, last, eps, ANNOTATED_TRANSFORMER, "x.var(-1, unbiased=False, keepdim=True)",
                           lambda x_hat: x_hat * gamma + beta), *{
        **wrong_axis,
        "unbiased variance (divides by n − 1): LayerNorm uses the biased one, x.var(unbiased=False).":
            _standardize(x, last, eps, unbiased=True) * gamma + beta,
        "missing ε: divide by sqrt(var + eps), not sqrt(var).": _standardize(x, last, 0.0) * gamma + beta,
        "ε outside the root: it is sqrt(var + eps), not sqrt(var) + eps.":
            _standardize(x, last, eps, outside=True) * gamma + beta,
        "γ and β are not applied: the output should be x̂ · gamma + beta.": _standardize(x, last, eps),
        "β is not added: the output should be x̂ · gamma + beta.": _standardize(x, last, eps) * gamma,
        "γ is not applied: the output should be x̂ · gamma + beta.": _standardize(x, last, eps) + beta,
        "γ and β swapped: the output is x̂ · gamma + beta.": _standardize(x, last, eps) * beta + gamma,
    }.items()]


def _diagnose_layer_norm(student: Callable[..., Any]) -> str | None:
    eps = 0.5  # large, so that leaving it out (or adding it outside the root) shows
    for shape, seed in (((4, 6), 0), ((2, 3, 6), 1)):  # 4 examples of 6 features; then 2 × 3 tokens
        g = torch.Generator().manual_seed(seed)
        x = 3 * torch.randn(*shape, generator=g, dtype=F64) + 2
        gamma, beta = _affine(6, g)
        expected = _reference_layer_norm(x, gamma, beta, eps)
        what = "the output" if len(shape) == 2 else "the output for a 3-D input (2, 3, 6)"
        out, changed = call(student, (x, gamma, beta, eps))
        if changed:
            return changed
        problem = compare(what, out, expected, _layer_norm_mistakes(x, gamma, beta, eps), atol=1e-6)
        if problem is not None:
            return problem
    return None


layer_norm = Exercise(
    name="layer_norm",
    checked="matches the course's LayerNorm (mean, biased variance, ε inside the root, γ and β) "
            "on 2-D and 3-D inputs.",
    reference=_reference_layer_norm,
    diagnose=_diagnose_layer_norm,
    forbidden=("torch.nn.functional.layer_norm",),  # nn.LayerNorm calls it too
)


# -- LayerNorm backward -----------------------------------------------------------------------
def _reference_layer_norm_backward(dout: torch.Tensor, x: torch.Tensor, gamma: torch.Tensor,
                                   eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The course's hand-written gradients (``helpers.norms.layer_norm_backward``)."""
    return norms.layer_norm_backward(dout, x, gamma, eps)


def _autograd_layer_norm(dout: torch.Tensor, x: torch.Tensor, gamma: torch.Tensor,
                         beta: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """dx, dγ, dβ of ``layer_norm(x) · dout`` by autograd (float64)."""
    x, gamma, beta = (t.detach().clone().requires_grad_() for t in (x, gamma, beta))
    torch.nn.functional.layer_norm(x, (x.shape[-1],), gamma, beta, eps).backward(dout)
    dx, dgamma, dbeta = x.grad, gamma.grad, beta.grad
    assert dx is not None and dgamma is not None and dbeta is not None  # all three are inputs of the loss
    return dx, dgamma, dbeta


def _diagnose_layer_norm_backward(student: Callable[..., Any]) -> str | None:
    g = torch.Generator().manual_seed(2)
    n, d, eps = 4, 6, 0.5                       # 4 examples of 6 features; a large ε
    x = 3 * torch.randn(n, d, generator=g, dtype=F64) + 2
    gamma, beta = _affine(d, g)
    dout = torch.randn(n, d, generator=g, dtype=F64)
    dx_ok, dgamma_ok, dbeta_ok = _autograd_layer_norm(dout, x, gamma, beta, eps)

    answer, changed = call(student, (dout, x, gamma, eps))
    if changed:
        return changed
    if not isinstance(answer, (tuple, list)) or len(answer) != 3:
        return "return three tensors, (dx, dgamma, dbeta); got " + (
            f"{len(answer)} values." if isinstance(answer, (tuple, list)) else f"a {type(answer).__name__}.")
    dx, dgamma, dbeta = answer

    rstd = 1 / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + eps)
    x_hat = (x - x.mean(-1, keepdim=True)) * rstd
    gdx = dout * gamma

    def mean(t: torch.Tensor) -> torch.Tensor:
        return t.mean(-1, keepdim=True)

    def no_eps_dx() -> torch.Tensor:
        r = 1 / x.var(-1, unbiased=False, keepdim=True).sqrt()
        h = (x - x.mean(-1, keepdim=True)) * r
        return r * (gdx - mean(gdx) - h * mean(gdx * h))

    dx_mistakes = {
        "dx treats the mean and the variance as constants (dx = dout · γ / σ): add the two terms "
        "of the gradient through them, − mean(g) − x̂ · mean(g · x̂) with g = dout · γ.": rstd * gdx,
        "dx is missing the gradient through the variance: subtract x̂ · mean(g · x̂) too "
        "(g = dout · γ).": rstd * (gdx - mean(gdx)),
        "dx is missing the gradient through the mean: subtract mean(g) too (g = dout · γ).":
            rstd * (gdx - x_hat * mean(gdx * x_hat)),
        "dx is missing γ: the gradient reaching x̂ is dout · gamma, not dout.":
            rstd * (dout - mean(dout) - x_hat * mean(dout * x_hat)),
        "dx is missing ε: σ is sqrt(var + eps), as in the forward pass.": no_eps_dx(),
    }
    problem = compare("dx", dx, dx_ok, dx_mistakes, atol=1e-8)
    if problem is not None:
        return problem + " (Compared with autograd in float64.)"

    problem = affine_grad_problem(dgamma, dbeta, dgamma_ok, dbeta_ok, dout, x, x_hat,
                                  across="the last dim (the features)", per="feature")
    return None if problem is None else problem + " (Compared with autograd in float64.)"


def affine_grad_problem(dgamma: Any, dbeta: Any, dgamma_ok: torch.Tensor, dbeta_ok: torch.Tensor,
                        dout: torch.Tensor, x: torch.Tensor, x_hat: torch.Tensor, *, across: str,
                        per: str) -> str | None:
    """What is wrong with a normalization layer's dgamma and dbeta, both sums over the batch
    (dim 0) of an ``(n, width)`` dout: swapped, summed over ``across`` instead, left unsummed,
    a sign, a missing x̂, x for x̂, a mean for the sum; ``None`` when both are right."""
    n, width = x.shape
    if all(isinstance(t, torch.Tensor) and t.shape == (width,) for t in (dgamma, dbeta)) and \
            torch.allclose(dgamma, dbeta_ok, atol=1e-8) and torch.allclose(dbeta, dgamma_ok, atol=1e-8):
        return "dgamma and dbeta are swapped: return (dx, dgamma, dbeta)."
    for name, got, ok in (("dgamma", dgamma, dgamma_ok), ("dbeta", dbeta, dbeta_ok)):
        if isinstance(got, torch.Tensor) and tuple(got.shape) == (n,):
            return (f"{name} has shape ({n},): summed over {across} instead of over the batch; "
                    f"sum over dim 0 to get one value per {per}, shape ({width},).")
        if isinstance(got, torch.Tensor) and tuple(got.shape) == (n, width):
            return f"{name} has the shape of x, ({n}, {width}): sum it over the batch (dim 0)."
        mistakes = {f"{name} has the wrong sign.": -ok}
        if name == "dgamma":
            mistakes["dgamma is missing x̂: it is the sum over the batch of dout · x̂, not of dout."] = dout.sum(0)
            mistakes["dgamma uses x instead of x̂: multiply dout by the normalized input."] = (dout * x).sum(0)
            mistakes["dgamma is the mean of dout · x̂ over the batch: it is the sum."] = (dout * x_hat).mean(0)
        else:
            mistakes["dbeta is the mean of dout over the batch: it is the sum."] = dout.mean(0)
        problem = compare(name, got, ok, mistakes, atol=1e-8)
        if problem is not None:
            return problem
    return None


layer_norm_backward = Exercise(
    name="layer_norm_backward",
    checked="dx, dgamma and dbeta match autograd in float64 (4 examples × 6 features).",
    reference=_reference_layer_norm_backward,
    diagnose=_diagnose_layer_norm_backward,
    forbidden=AUTOGRAD,
)


# -- BatchNorm forward, training mode ---------------------------------------------------------
def _reference_batch_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                          eps: float = 1e-5) -> torch.Tensor:
    """The course's training-mode BatchNorm without running statistics (``helpers.norms``)."""
    return norms.batch_norm(x, None, None, gamma, beta, training=True, eps=eps)


def _batch_norm_mistakes(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                         eps: float) -> list[tuple[str, torch.Tensor]]:
    shape = (1, -1, *([1] * (x.dim() - 2)))
    g, b = gamma.reshape(shape), beta.reshape(shape)
    right = (0, *range(2, x.dim()))
    per_example = tuple(range(1, x.dim()))
    mistakes = {
        "normalised each example (over its channels, LayerNorm-style) instead of each channel "
        "over the batch: reduce over dim 0" + (" and the positions, dims (0, 2, 3)." if x.dim() == 4 else ".")
        : _standardize(x, per_example, eps) * g + b,
    }
    if x.dim() == 4:
        mistakes["normalised over the batch only (one mean per channel and position): average over "
                 "the positions too, dims (0, 2, 3)."] = _standardize(x, 0, eps) * g + b
        mistakes["normalised each example's channel over its positions (InstanceNorm) instead of over "
                 "the batch too: dims (0, 2, 3)."] = _standardize(x, (2, 3), eps) * g + b
    return [*_std_mistakes(x, right, eps, BATCH_NORM_STD, "x.var(dims, unbiased=False, keepdim=True)",
                           lambda x_hat: x_hat * g + b), *{
        **mistakes,
        "one mean and variance for the whole tensor: BatchNorm keeps one per channel (dim 1).":
            _standardize(x, tuple(range(x.dim())), eps) * g + b,
        "unbiased variance (divides by n − 1): training-mode BatchNorm normalises with the biased "
        "one, x.var(unbiased=False) (the unbiased one only goes into running_var).":
            _standardize(x, right, eps, unbiased=True) * g + b,
        "missing ε: divide by sqrt(var + eps), not sqrt(var).": _standardize(x, right, 0.0) * g + b,
        "ε outside the root: it is sqrt(var + eps), not sqrt(var) + eps.":
            _standardize(x, right, eps, outside=True) * g + b,
        "γ and β are not applied: the output should be x̂ · gamma + beta (one of each per channel).":
            _standardize(x, right, eps),
        "β is not added: the output should be x̂ · gamma + beta.": _standardize(x, right, eps) * g,
        "γ is not applied: the output should be x̂ · gamma + beta.": _standardize(x, right, eps) + b,
        "γ and β swapped: the output is x̂ · gamma + beta.": _standardize(x, right, eps) * b + g,
    }.items()]


def _diagnose_batch_norm(student: Callable[..., Any]) -> str | None:
    eps = 0.5  # large, so that a missing or misplaced ε shows
    for shape, seed in (((5, 3), 3), ((4, 3, 2, 5), 4)):  # N ≠ C ≠ H ≠ W, so a wrong axis shows
        g = torch.Generator().manual_seed(seed)
        x = 3 * torch.randn(*shape, generator=g, dtype=F64) + 2
        gamma, beta = _affine(3, g)
        label = "(N, C) = (5, 3)" if len(shape) == 2 else "(N, C, H, W) = (4, 3, 2, 5)"
        try:
            out, changed = call(student, (x, gamma, beta, eps))
        except NotImplementedError:
            raise
        except Exception as error:
            text = (str(error).strip().splitlines() or [""])[0][:120]
            if len(shape) == 2:
                return (f"raised {type(error).__name__} on an {label} input ({text}): reduce over dim 0 and "
                        "only the dims after the channels that x has, (0, *range(2, x.dim())).")
            return (f"works on (N, C) but raised {type(error).__name__} on an {label} input ({text}): "
                    "reduce over dims (0, 2, 3) and reshape γ, β to (1, C, 1, 1).")
        if changed:
            return changed
        problem = compare(f"the output for x of shape {label}", out,
                          _reference_batch_norm(x, gamma, beta, eps),
                          _batch_norm_mistakes(x, gamma, beta, eps), atol=1e-6)
        if problem is not None:
            return problem
    return None


batch_norm = Exercise(
    name="batch_norm",
    checked="matches training-mode BatchNorm (per-channel mean and biased variance over the batch "
            "and positions, ε inside the root, γ and β) on (N, C) and (N, C, H, W) inputs.",
    reference=_reference_batch_norm,
    diagnose=_diagnose_batch_norm,
    forbidden=("torch.nn.functional.batch_norm",),  # nn.BatchNorm1d/2d call it too
)
