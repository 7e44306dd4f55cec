"""Exercises of notebook 01 (Initialization): Kaiming weights, the layer-by-layer prediction, and
re-initialising a PyTorch model."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from helpers import initialization, initialization_theory
from helpers.check.feedback import Exercise, compare

__all__ = ["kaiming_normal", "kaiming_reinit", "relu_second_moments"]


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


def _statistics_problem(w: torch.Tensor, fan_in: int, where: str, named: bool = True) -> str | None:
    """What is wrong with the distribution of the float64 weights ``w`` (``None``: N(0, 2 / fan_in)).

    ``where`` prefixes the message ("the first layer (400 → 100): "); ``named`` looks the
    variance up among the typical mistakes (which assume FAN_IN, FAN_OUT).
    """
    mean, std = float(w.mean()), float(w.std())
    if std == 0.0:
        return f"{where}every weight is the same number: the weights must be random."
    if abs(mean) > 0.05 * std:
        return (f"{where}the weights are not centred (mean {mean:.2g}, std {std:.2g}): torch.rand draws from "
                "[0, 1); Kaiming's weights come from N(0, 2 / fan_in), torch.randn.")
    ratio = float(w.var()) / (2.0 / fan_in)
    kurtosis = float(((w - mean) ** 4).mean() / float(w.var(unbiased=False)) ** 2)
    wrong_variance = abs(math.log(ratio)) >= math.log(1 + VARIANCE_TOLERANCE)
    if wrong_variance or kurtosis < 2.4 or abs(kurtosis - 3.0) > 0.3:
        cut = _truncation_problem(w, fan_in, ratio, kurtosis)
        if cut is not None:  # a cut normal has a smaller variance (Xavier's, nearly) and a smaller kurtosis
            return where + cut
    if wrong_variance:
        known = _named_variance_mistake(ratio) if named else None
        if known is not None:
            return where + known
        return (f"{where}the variance is {ratio:.3g} × 2 / fan_in (std {std:.3g} for fan_in = {fan_in}); "
                f"Kaiming's is 2 / fan_in (std sqrt(2 / fan_in) = {math.sqrt(2 / fan_in):.3g}).")
    if kurtosis < 2.4:
        return (f"{where}the right variance, but uniform, not normal (kurtosis {kurtosis:.2f}; a normal's is 3, "
                "a uniform's 1.8): that is kaiming_uniform_; use torch.randn.")
    if abs(kurtosis - 3.0) > 0.3:
        return f"{where}the right variance, but not normally distributed (kurtosis {kurtosis:.2f}; a normal's is 3)."
    return None


#: The widest |w − mean| of a sample, in sample stds: a normal's is about 4.2 for 40,000 draws
#: (below 3.5 with probability e^−18.6 ≈ 1e-8; e^−14 ≈ 1e-6 for 30,000), a uniform's √3 ≈ 1.73;
#: a normal cut at ±2σ reaches 2 / √0.774 ≈ 2.27 of its own std, one clamped at ±2σ 2.09. Only
#: weights that already fail the variance or kurtosis test are looked at this way.
NORMAL_REACH, UNIFORM_REACH = 3.5, 1.8


def _truncation_problem(w: torch.Tensor, fan_in: int, ratio: float, kurtosis: float) -> str | None:
    """The message for a normal cut at a few σ (``trunc_normal_`` bounds, a clamp), else ``None``.

    Such weights have no tails: no |w| beyond the cut, where a normal sample of this size reaches
    about 4σ; and the cut shrinks the variance (to ≈ 0.774 σ² at ±2σ, close to Xavier's 0.8).
    """
    centred = w - w.mean()
    reach = float(centred.abs().max()) / float(w.std())
    if not UNIFORM_REACH < reach < NORMAL_REACH:
        return None
    bound = float(w.abs().max())
    cut = bound / math.sqrt(2.0 / fan_in)
    on_bounds = float((w.abs() == bound).double().mean())  # a clamp piles the cut weights on ±bound
    clamped = on_bounds > 0.005
    if abs(math.log(ratio)) >= math.log(1 + VARIANCE_TOLERANCE):
        effect = ("clamping shrinks the variance" if clamped else
                  "cutting the tails shrinks the variance (≈ 0.774 σ² at ±2σ)") + f": here {ratio:.3g} × 2 / fan_in"
    else:
        effect = (f"rescaled to the right variance, it still has the wrong shape (kurtosis {kurtosis:.2f}; "
                  "a normal's is 3)")
    whole = ("Kaiming's weights are the whole normal, tails included: torch.randn(fan_out, fan_in, "
             "generator=generator) * sqrt(2 / fan_in)")
    if clamped:
        return (f"clamps a normal at ±{cut:.2g}σ (σ = sqrt(2 / fan_in)): {100 * on_bounds:.1f} % of the weights sit "
                f"exactly on the bounds and none beyond; {effect}. {whole}, no clamp.")
    return (f"draws a truncated normal: no weight beyond ±{cut:.2g}σ (σ = sqrt(2 / fan_in)), where {w.numel():,} "
            f"normal draws reach about 4σ; {effect}. {whole}, without trunc_normal_'s bounds.")


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
        return (f"wrong shape: {shape} for fan_in = {FAN_IN}, fan_out = {FAN_OUT}; "
                f"expected (fan_out, fan_in) = {(FAN_OUT, FAN_IN)}.")
    w = w.detach().double()
    if not bool(torch.isfinite(w).all()):
        return "the weights contain NaN or inf."
    if not torch.equal(w, draw(0).detach().double()):
        return ("ignores the generator: the same seed gave different weights; draw with "
                "torch.randn(..., generator=generator).")
    if torch.equal(w, draw(1).detach().double()):
        return ("the same weights whatever the generator: draw from the generator you are given "
                "(do not re-seed inside the function).")
    return _statistics_problem(w, FAN_IN, "")


kaiming_normal = Exercise(
    name="kaiming_normal",
    checked="(fan_out, fan_in) draws from the generator, mean 0, variance 2 / fan_in, normal.",
    reference=initialization.kaiming_normal,
    diagnose=_diagnose_kaiming_normal,
    # nn.init.kaiming_normal_ is not seen by name (it has no torch-function hook); it fills the tensor
    # with Tensor.normal_, which a draw with torch.randn never calls.
    forbidden=("torch.Tensor.normal_", "torch.nn.init.normal_"),
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
        expected = initialization_theory.relu_second_moments(m_in, gain, depth)
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
    reference=initialization_theory.relu_second_moments,
    diagnose=_diagnose_relu_second_moments,
)


# --------------------------------------------------------------------------------------
# re-initialise a PyTorch model
# --------------------------------------------------------------------------------------
#: The check's model: a Linear with bias, one without bias inside a nested block, and a last
#: Linear with bias, all filled with 3 (biases with 1) so that a layer left alone shows.
_REINIT_LAYERS = (("the first nn.Linear (400 → 100)", 400), ("the nn.Linear inside the nested block (100 → 300)", 100),
                  ("the last nn.Linear (300 → 100)", 300))


def _filled_model() -> nn.Module:
    model = nn.Sequential(nn.Linear(FAN_IN, FAN_OUT), nn.ReLU(),
                          nn.Sequential(nn.Linear(FAN_OUT, 300, bias=False), nn.ReLU()),
                          nn.Linear(300, 100))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                module.weight.fill_(3.0)
                if module.bias is not None:
                    module.bias.fill_(1.0)
    return model


def _diagnose_kaiming_reinit(student: Callable[..., Any]) -> str | None:
    def run(seed: int) -> Any:
        try:
            return student(_filled_model(), torch.Generator().manual_seed(seed))
        except RuntimeError as error:
            if "leaf Variable" in str(error) or "requires grad" in str(error):
                raise _NoGrad() from error
            raise
        except AttributeError as error:
            if "NoneType" in str(error):
                raise _NoBias() from error
            raise

    try:
        model = run(0)
    except _NoGrad:
        return ("changing a parameter in place needs `with torch.no_grad():` around it (autograd refuses "
                "to modify a leaf tensor that requires grad).")
    except _NoBias:
        return ("a layer built with bias=False has bias None (the nested one here): zero the bias only "
                "`if module.bias is not None`.")
    if model is None:
        return "returns None: return the model (the cells below use what your function returns)."
    if not isinstance(model, nn.Module):
        return f"should return the model (an nn.Module), got {type(model).__name__}."
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if [(m.in_features, m.out_features) for m in linears] != [(400, 100), (100, 300), (300, 100)]:
        return "the returned model does not have the layers it was given: re-initialise them, do not replace them."
    untouched = [name for (name, _), m in zip(_REINIT_LAYERS, linears, strict=True) if bool((m.weight == 3.0).all())]
    if untouched == [_REINIT_LAYERS[1][0]]:
        return ("the nn.Linear inside a nested nn.Sequential block was left as it was: loop over "
                "model.modules() (every module, nested ones too), not over model (its top-level children).")
    if untouched:
        return f"{untouched[0]} was left as it was: re-initialise every nn.Linear, the output layer too."
    for (name, _), m in zip(_REINIT_LAYERS, linears, strict=True):
        if m.bias is None:
            continue
        if bool((m.bias == 1.0).all()):
            return f"the biases were left as they were ({name}): set them to zero, bias.zero_()."
        if bool((m.bias != 0).any()):
            return f"the biases should be exactly 0; {name} has values up to {float(m.bias.abs().max()):.2g}."
    first = linears[0].weight.detach().double()
    if not torch.equal(first, next(m for m in run(0).modules() if isinstance(m, nn.Linear)).weight.detach().double()):
        return ("ignores the generator: the same seed gave different weights; pass generator=generator "
                "(or use your kaiming_normal, which takes it).")
    if torch.equal(first, next(m for m in run(1).modules() if isinstance(m, nn.Linear)).weight.detach().double()):
        return "the same weights whatever the generator: draw from the generator you are given."
    for index, ((name, fan_in), m) in enumerate(zip(_REINIT_LAYERS, linears, strict=True)):
        problem = _statistics_problem(m.weight.detach().double(), fan_in, f"{name}: ", named=index == 0)
        if problem is not None:
            return problem
    return None


class _NoGrad(Exception):
    """The answer modified a parameter in place outside ``torch.no_grad()``."""


class _NoBias(Exception):
    """The answer used the ``None`` bias of a layer built with ``bias=False``."""


kaiming_reinit = Exercise(
    name="kaiming_reinit",
    checked="every nn.Linear, nested ones too: weights N(0, 2 / n_in) from the generator, biases 0.",
    reference=initialization.kaiming_reinit,
    diagnose=_diagnose_kaiming_reinit,
)
