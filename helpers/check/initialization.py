"""Exercises of notebook 01 (Initialization): Kaiming weights and the layer-by-layer prediction."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from helpers import initialization
from helpers.check.feedback import Exercise, compare

__all__ = ["kaiming_normal", "relu_second_moments"]


# --------------------------------------------------------------------------------------
# Kaiming/He normal weights
# --------------------------------------------------------------------------------------
#: The check's layer: non-square, so a transposed matrix or fan_out in place of fan_in shows.
FAN_IN, FAN_OUT = 400, 100
#: A right answer's sample variance is within a few per mille of 2 / fan_in (40,000 draws:
#: standard error 0.7 %); a variance further than this from it is a mistake.
VARIANCE_TOLERANCE = 0.05

#: variance / (2 / fan_in) -> the mistake that gives it (for FAN_IN = 400, FAN_OUT = 100).
_VARIANCE_MISTAKES: dict[float, str] = {
    FAN_IN / FAN_OUT: "fan_out in place of fan_in: Kaiming's variance is 2 / fan_in (the number of "
                      "inputs each output sums), here 2/400, not 2/100.",
    0.5: "variance 1 / fan_in, half of Kaiming's: that is Xavier/LeCun for tanh or linear layers; "
         "ReLU zeroes half the signal, so it needs 2 / fan_in.",
    FAN_IN / (FAN_IN + FAN_OUT): "variance 2 / (fan_in + fan_out): that is Xavier/Glorot's average "
                                 "of the two fans; Kaiming uses 2 / fan_in only.",
    2.0 / FAN_IN: "std 2 / fan_in: that number is the variance; the std is its square root, sqrt(2 / fan_in).",
    1.0 / FAN_IN: "std sqrt(2) / fan_in: the std is sqrt(2 / fan_in), the root of the whole fraction.",
    2.0: "std 2 / sqrt(fan_in), variance 4 / fan_in: the std is sqrt(2 / fan_in), not 2 / sqrt(fan_in).",
    3.0: "std sqrt(6 / fan_in) is the bound of kaiming_uniform_'s uniform distribution, not a std: "
         "for the normal, std = sqrt(2 / fan_in).",
}


def _named_variance_mistake(ratio: float) -> str | None:
    for known, message in _VARIANCE_MISTAKES.items():
        if abs(math.log(ratio / known)) < math.log(1 + VARIANCE_TOLERANCE):
            return message
    return None


def _diagnose_kaiming_normal(student: Callable[..., Any]) -> str | None:
    def draw(seed: int) -> Any:
        return student(FAN_IN, FAN_OUT, torch.Generator().manual_seed(seed))

    w = draw(0)
    if not isinstance(w, torch.Tensor):
        return f"should return a torch.Tensor, got {type(w).__name__}."
    shape = tuple(w.shape)
    if shape == (FAN_IN, FAN_OUT):
        return (f"transposed: shape {shape} is (fan_in, fan_out); a weight matrix is (fan_out, fan_in) = "
                f"{(FAN_OUT, FAN_IN)}, like nn.Linear's weight.")
    if shape != (FAN_OUT, FAN_IN):
        return f"wrong shape: {shape} for fan_in = {FAN_IN}, fan_out = {FAN_OUT}; expected (fan_out, fan_in) = {(FAN_OUT, FAN_IN)}."
    w = w.detach().double()
    if not bool(torch.isfinite(w).all()):
        return "the weights contain NaN or inf."
    if not torch.equal(w, draw(0).detach().double()):
        return ("ignores the generator: the same seed gave different weights; draw with "
                "torch.randn(..., generator=generator).")
    if torch.equal(w, draw(1).detach().double()):
        return ("the same weights whatever the generator: draw from the generator you are given "
                "(do not re-seed inside the function).")
    mean, std = float(w.mean()), float(w.std())
    if std == 0.0:
        return "every weight is the same number: the weights must be random."
    if abs(mean) > 0.05 * std:
        return (f"the weights are not centred (mean {mean:.2g}, std {std:.2g}): torch.rand draws from "
                "[0, 1); Kaiming's weights come from N(0, 2 / fan_in), torch.randn.")
    ratio = float(w.var()) / (2.0 / FAN_IN)
    if abs(math.log(ratio)) >= math.log(1 + VARIANCE_TOLERANCE):
        named = _named_variance_mistake(ratio)
        if named is not None:
            return named
        return (f"the variance is {ratio:.3g} × 2 / fan_in (std {std:.3g} for fan_in = {FAN_IN}); "
                f"Kaiming's is 2 / fan_in (std sqrt(2 / fan_in) = {math.sqrt(2 / FAN_IN):.3g}).")
    kurtosis = float(((w - mean) ** 4).mean() / float(w.var(unbiased=False)) ** 2)
    if kurtosis < 2.4:
        return (f"the right variance, but uniform, not normal (kurtosis {kurtosis:.2f}; a normal's is 3, "
                "a uniform's 1.8): that is kaiming_uniform_; use torch.randn.")
    if abs(kurtosis - 3.0) > 0.3:
        return f"the right variance, but not normally distributed (kurtosis {kurtosis:.2f}; a normal's is 3)."
    return None


kaiming_normal = Exercise(
    name="kaiming_normal",
    checked="(fan_out, fan_in) draws from the generator, mean 0, variance 2 / fan_in, normal.",
    reference=initialization.kaiming_normal,
    diagnose=_diagnose_kaiming_normal,
)


# --------------------------------------------------------------------------------------
# the predicted second moment of every ReLU layer
# --------------------------------------------------------------------------------------
#: The settings the answer is compared at: (m_in, gain, depth).  m_in != 1 and gain != 2, so
#: a forgotten m_in or factor shows; the second setting catches a hard-coded number.
SECOND_MOMENT_SETTINGS = ((0.3, 3.0, 6), (2.0, 1.0, 4))
#: The fraction of Var(h) that is Var(relu(h)) (not E[relu(h)^2], which is 1/2).
_RELU_VARIANCE_FRACTION = 0.5 - 1.0 / (2.0 * math.pi)


def _diagnose_relu_second_moments(student: Callable[..., Any]) -> str | None:
    for m_in, gain, depth in SECOND_MOMENT_SETTINGS:
        expected = initialization.relu_second_moments(m_in, gain, depth)
        layers = torch.arange(1, depth + 1, dtype=torch.float64)
        actual = student(m_in, gain, depth)
        if isinstance(actual, torch.Tensor) and tuple(actual.shape) == (depth + 1,) \
                and abs(float(actual[0]) - m_in) < 1e-6:
            return (f"{depth + 1} entries starting with the input's m_in: return layers 1 … depth only "
                    "(the input is not a layer).")
        if isinstance(actual, torch.Tensor) and tuple(actual.shape) == (depth - 1,):
            return (f"{depth - 1} entries for depth = {depth}: one per layer 1 … depth "
                    "(range(1, depth) stops one short).")
        if isinstance(actual, (list, tuple, np.ndarray)):
            return (f"returns a {type(actual).__name__}; return a tensor: "
                    "torch.tensor(values, dtype=torch.float64).")
        mistakes = {
            "forgot the ½ of ReLU: each layer multiplies E[z²] by gain / 2, not gain.":
                m_in * gain ** layers,
            "used Var(relu(h)) = (1/2 − 1/(2π)) Var(h): the next layer needs the second moment "
            "E[relu(h)²] = Var(h) / 2.": m_in * (gain * _RELU_VARIANCE_FRACTION) ** layers,
            "multiplied by sqrt(gain / 2) per layer, the factor of the norm (std); the second moment "
            "E[z²] gets gain / 2.": m_in * (gain / 2.0) ** (layers / 2.0),
            "off by one: layer 1 should already be m_in · gain / 2 (you start at m_in, the input).":
                m_in * (gain / 2.0) ** (layers - 1),
            "off by one: layer 1 should be m_in · gain / 2 (you apply one layer too many).":
                m_in * (gain / 2.0) ** (layers + 1),
            "forgot m_in: the prediction starts from the input's second moment, m_in · (gain / 2)^i.":
                (gain / 2.0) ** layers,
            "the factor gain / 2 is applied once, not once per layer: it compounds, (gain / 2)^i.":
                m_in * (gain / 2.0) * torch.ones_like(layers),
        }
        problem = compare("the output", actual, expected, mistakes, atol=1e-5)
        if problem is not None:
            return f"{problem} (m_in = {m_in:g}, gain = {gain:g}, depth = {depth})"
    return None


relu_second_moments = Exercise(
    name="relu_second_moments",
    checked="E[z_i²] = m_in · (gain / 2)^i for layers i = 1 … depth, at two settings.",
    reference=initialization.relu_second_moments,
    diagnose=_diagnose_relu_second_moments,
)
