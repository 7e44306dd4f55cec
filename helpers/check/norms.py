"""Exercises of notebook 03 (LayerNorm vs BatchNorm vs GroupNorm): the forward passes by hand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from helpers import norms
from helpers.check.feedback import Exercise, compare

__all__ = ["layer_norm"]


def _reference_layer_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                          eps: float = 1e-5) -> torch.Tensor:
    """The course's LayerNorm over the last dimension (``helpers.norms.layer_norm``)."""
    return norms.layer_norm(x, x.shape[-1], gamma, beta, eps)


def _diagnose_layer_norm(student: Callable[..., Any]) -> str | None:
    g = torch.Generator().manual_seed(0)
    x = 3 * torch.randn(4, 6, generator=g, dtype=torch.float64) + 2   # 4 examples, 6 features
    gamma = 1 + 0.5 * torch.randn(6, generator=g, dtype=torch.float64)
    beta = torch.randn(6, generator=g, dtype=torch.float64)
    eps = 0.5  # large, so that leaving it out (or adding it outside the root) shows
    expected = _reference_layer_norm(x, gamma, beta, eps)

    def standardize(dim: int, unbiased: bool = False, e: float = eps, outside: bool = False) -> torch.Tensor:
        centred = x - x.mean(dim=dim, keepdim=True)
        var = x.var(dim=dim, unbiased=unbiased, keepdim=True)
        scale = var.sqrt() + e if outside else torch.sqrt(var + e)
        return centred / scale

    mistakes = {
        "normalised over dim 0 (across the batch, BatchNorm-style) instead of the last dim "
        "(each example's features).": standardize(0) * gamma + beta,
        "unbiased variance (divides by n − 1): LayerNorm uses the biased one, x.var(unbiased=False).":
            standardize(-1, unbiased=True) * gamma + beta,
        "missing ε: divide by sqrt(var + eps), not sqrt(var).": standardize(-1, e=0.0) * gamma + beta,
        "ε outside the root: it is sqrt(var + eps), not sqrt(var) + eps.":
            standardize(-1, outside=True) * gamma + beta,
        "γ and β are not applied: the output should be x̂ · gamma + beta.": standardize(-1),
        "γ and β swapped: the output is x̂ · gamma + beta.": standardize(-1) * beta + gamma,
    }
    return compare("the output", student(x, gamma, beta, eps), expected, mistakes, atol=1e-6)


layer_norm = Exercise(
    name="layer_norm",
    checked="matches the course's LayerNorm (mean, biased variance, ε inside the root, γ and β).",
    reference=_reference_layer_norm,
    diagnose=_diagnose_layer_norm,
)
