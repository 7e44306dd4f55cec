"""Exercise and concept questions of notebook 02 (Norm drift) beyond :mod:`helpers.check.drift`'s.

* :data:`rescale_weights` — design a fix for the drift without a normalization layer: rescale each
  weight matrix once, on a batch of data, so that every layer's output has mean square 1 (a
  variant of Mishkin and Matas's layer-sequential unit-variance initialization, 2016);
* the questions ``q02_*`` of the chapter's *predict first* prompts and exercises.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from helpers.check.feedback import Exercise, Question
from helpers.check.inputs import call

__all__ = ["q02_critical_scale", "q02_float16_steps", "q02_layernorm_norm", "q02_product_growth",
           "rescale_weights"]


# --------------------------------------------------------------------------------------
# rescale every layer once, on data
# --------------------------------------------------------------------------------------
def reference_rescale_weights(weights: Sequence[torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
    """Each ``W_l`` times the positive number that gives ``relu(h_{l-1} W_lᵀ)`` mean square 1 on ``x``,
    layer after layer (each layer's number is computed on the already rescaled layers below it)."""
    out, h = [], x
    for w in weights:
        h = torch.relu(h @ w.T)
        scale = h.pow(2).mean().rsqrt()
        out.append(w * scale)
        h = h * scale
    return out


def _rescale_inputs() -> tuple[list[torch.Tensor], torch.Tensor]:
    # 32 examples of 12 features with a positive mean (like pixels); gains 3, 1, 5, 2 and a last layer 20 -> 8
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 12, generator=g, dtype=torch.float64)
    sizes, gains = (12, 20, 20, 20, 8), (3.0, 1.0, 5.0, 2.0)
    weights = [torch.randn(n_out, n_in, generator=g, dtype=torch.float64) * math.sqrt(c / n_in)
               for n_in, n_out, c in zip(sizes[:-1], sizes[1:], gains, strict=True)]
    return weights, x


def _scales(weights: Sequence[torch.Tensor], x: torch.Tensor, statistic: Callable[[torch.Tensor], torch.Tensor],
            sequential: bool = True, before_relu: bool = False) -> torch.Tensor:
    """The per-layer factors a variant of the method would choose (``statistic(h)`` is divided out)."""
    factors, h = [], x
    for w in weights:
        z = h @ w.T
        out = torch.relu(z)
        factor = 1.0 / statistic(z if before_relu else out)
        factors.append(factor)
        h = out * factor if sequential else out
    return torch.stack(factors)


def _mistakes(weights: list[torch.Tensor], x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    def rms(h: torch.Tensor) -> torch.Tensor:
        return h.pow(2).mean().sqrt()

    return [
        ("each factor was computed on the original network, not on the rescaled layers below it: once layer 1 is "
         "rescaled, layer 2's input has changed, so compute each layer's factor after rescaling the ones before "
         "(layer by layer, on the new h).", _scales(weights, x, rms, sequential=False)),
        ("every layer's output has std 1, not mean square 1: a ReLU output is not centred, so divide by its RMS, "
         "sqrt(mean(h²)), not by h.std().", _scales(weights, x, lambda h: h.std())),
        ("every layer's output has std 1 (population std), not mean square 1: a ReLU output is not centred, so "
         "divide by its RMS, sqrt(mean(h²)).", _scales(weights, x, lambda h: h.std(unbiased=False))),
        ("you made the pre-activation h W.T mean square 1, so after the ReLU the output has about half of it: "
         "measure the layer's output, relu(h W.T).", _scales(weights, x, rms, before_relu=True)),
        ("you divided by the mean square, not by its square root: the factor multiplies h, and h² by its square.",
         _scales(weights, x, lambda h: h.pow(2).mean())),
        ("you made each example's norm ‖h_l‖ 1 on average, not the mean square of the entries: the norm of a "
         "width-n vector of mean square 1 is √n.", _scales(weights, x, lambda h: h.norm(dim=1).mean())),
        ("you made the output's largest entry 1, not its mean square.", _scales(weights, x, lambda h: h.abs().max())),
    ]


def _diagnose_rescale_weights(student: Callable[..., Any]) -> str | None:
    weights, x = _rescale_inputs()
    result, changed = call(student, (weights, x), hint="w * a makes a new tensor; w *= a, w.mul_(a) or "
                                                       "weights[i] = … change the caller's weights")
    if changed:
        return changed
    if isinstance(result, torch.Tensor) or not isinstance(result, (list, tuple)):
        return (f"should return a list of weight matrices (one per layer, like its input), got "
                f"{type(result).__name__}.")
    if len(result) != len(weights):
        return f"returned {len(result)} matrices for {len(weights)} layers: one rescaled matrix per layer."
    factors = []
    for layer, (new, old) in enumerate(zip(result, weights, strict=True), start=1):
        if not isinstance(new, torch.Tensor) or tuple(new.shape) != tuple(old.shape):
            got = tuple(new.shape) if isinstance(new, torch.Tensor) else type(new).__name__
            return f"layer {layer}: expected a tensor of shape {tuple(old.shape)} (the matrix, rescaled), got {got}."
        new = new.detach().double()
        if not bool(torch.isfinite(new).all()):
            return f"layer {layer}'s matrix contains NaN or inf."
        factor = (new * old).sum() / (old * old).sum()
        if float((new - factor * old).norm()) > 1e-6 * float(new.norm()) + 1e-12:
            return (f"layer {layer}'s matrix is not the input's matrix times one number: rescale each matrix as a "
                    "whole (w * a with a scalar a), so that the layer computes the same thing, only larger or "
                    "smaller (per unit or per entry changes the network).")
        if float(factor) <= 0:
            return (f"layer {layer} was multiplied by {float(factor):.3g}: the factor must be positive (a ReLU "
                    "after a negated matrix is another network).")
        factors.append(factor)
    chosen = torch.stack(factors)
    expected = _scales(weights, x, lambda h: h.pow(2).mean().sqrt())
    if torch.allclose(chosen, expected, rtol=1e-4, atol=0.0):
        return None
    for message, wrong in _mistakes(weights, x):
        if torch.allclose(chosen, wrong, rtol=1e-4, atol=0.0):
            return message
    first = int(torch.nonzero(~torch.isclose(chosen, expected, rtol=1e-4, atol=0.0))[0])
    h = x
    for w in result[:first + 1]:
        h = torch.relu(h @ w.detach().double().T)
    return (f"layer {first + 1}'s output has mean square {float(h.pow(2).mean()):.4g} on the batch, not 1 "
            f"(layers before it are right).")


rescale_weights = Exercise(
    name="rescale_weights",
    checked="every layer's matrix times one positive number, and every layer's output of mean square 1 on the "
            "batch (a 4-layer stack of gains 3, 1, 5 and 2).",
    reference=reference_rescale_weights,
    diagnose=_diagnose_rescale_weights,
)


# --------------------------------------------------------------------------------------
# concept questions
# --------------------------------------------------------------------------------------
q02_product_growth = Question(
    name="q02_product_growth",
    answer=math.sqrt(30),
    why="each entry of AB is a sum of n = 30 independent products, so E‖AB‖²_F = n‖A‖²_F: the norm grows "
        "by about √30 ≈ 5.5 per product, and s = 0.5 still grows (≈ 2.7 per step).",
    rel_tol=0.05,
)

q02_float16_steps = Question(
    name="q02_float16_steps",
    answer=math.log2(65504),
    why="an entry starts near 1 and doubles each step, so it passes float16's 65504 after log₂ 65504 ≈ 16 steps "
        "(measured: near step 14, since the largest entry leads the way).",
    rel_tol=0.1,
)

q02_layernorm_norm = Question(
    name="q02_layernorm_norm",
    answer=10.0,
    why="mean 0 and std 1 give a mean square of 1, so the squared norm of 100 entries is 100 and the norm √100 "
        "= 10, at every layer and for every c.",
    rel_tol=0.02,
)

q02_critical_scale = Question(
    name="q02_critical_scale",
    answer=0.1,
    why="one unscaled product multiplies the norm by about s·√n, so the level s is 1/√n = 1/√100 = 0.1.",
    rel_tol=0.02,
)
