"""Exercises of notebook 01 (Initialization) about the two fans of a layer, and its concept questions.

* :data:`backward_std` — derive the weight std that keeps the *backward* signal's second moment
  through a Leaky ReLU layer (the chapter derives the forward one);
* :data:`kaiming_mlp` — debug a network builder with three realistic bugs (a swapped fan, a std
  given where a variance was meant, biases left in);
* the questions ``q01_*`` of the chapter's *predict first* prompts and exercises.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from helpers.check.feedback import Exercise, Question
from helpers.check.inputs import as_number

__all__ = ["backward_std", "kaiming_mlp", "q01_leaky_gain", "q01_second_moment", "q01_sigmoid_depth",
           "q01_z50"]


# --------------------------------------------------------------------------------------
# the std that keeps the backward signal
# --------------------------------------------------------------------------------------
def reference_backward_std(fan_in: int, fan_out: int, negative_slope: float) -> float:
    """``sqrt(2 / ((1 + a²) · fan_out))``: the gradient with respect to a layer's input sums
    ``fan_out`` terms ``W_kj · φ'(h_k) · g_k``, and ``E[φ'(h)²] = (1 + a²) / 2`` for Leaky ReLU."""
    return math.sqrt(2.0 / ((1.0 + negative_slope ** 2) * fan_out))


#: (fan_in, fan_out, negative_slope): non-square both ways, a slope whose square differs from it.
BACKWARD_SETTINGS = ((400, 100, 0.3), (60, 240, 0.5), (128, 64, 0.0))


def _backward_mistakes(fan_in: int, fan_out: int, a: float) -> list[tuple[str, float]]:
    leaky = 1.0 + a ** 2
    return [
        ("fan_in in place of fan_out: that keeps the forward signal (Kaiming's mode='fan_in'); the gradient "
         "with respect to a layer's input sums over the layer's fan_out outputs.",
         math.sqrt(2.0 / (leaky * fan_in))),
        ("the slope is missing: that is ReLU's std (a = 0). Through a Leaky ReLU the backward signal keeps "
         "E[φ'(h)²] = (1 + a²) / 2 of its second moment, not 1/2.", math.sqrt(2.0 / fan_out)),
        ("(1 + a) / 2 in place of (1 + a²) / 2: φ'(h) is a on the negative half, and it is φ'(h)² that "
         "enters the second moment.", math.sqrt(2.0 / ((1.0 + a) * fan_out))),
        ("the average of the two fans (Xavier's compromise): it keeps neither signal exactly when "
         "fan_in ≠ fan_out; the backward one needs fan_out alone.", math.sqrt(4.0 / (leaky * (fan_in + fan_out)))),
        ("that is the variance 2 / ((1 + a²) · fan_out); return its square root, the std.",
         2.0 / (leaky * fan_out)),
        ("the gain is upside down: the std is sqrt(2 / ((1 + a²) · n)), not sqrt((1 + a²) / (2 n)).",
         math.sqrt(leaky / (2.0 * fan_out))),
        ("the activation's factor is missing: 1 / fan_out keeps the signal of a linear layer; the Leaky "
         "ReLU's derivative passes only (1 + a²) / 2 of it.", math.sqrt(1.0 / fan_out)),
        ("the activation's factor is missing and the fan is fan_in: sqrt(1 / fan_in) is LeCun's std for a "
         "linear layer, forward.", math.sqrt(1.0 / fan_in)),
    ]


def _diagnose_backward_std(student: Callable[..., Any]) -> str | None:
    for fan_in, fan_out, a in BACKWARD_SETTINGS:
        where = f"(fan_in = {fan_in}, fan_out = {fan_out}, negative_slope = {a:g})"
        raw = student(fan_in, fan_out, a)
        value = as_number(raw)
        if value is None:
            return f"should return one number (a float), got {type(raw).__name__} {where}."
        if not math.isfinite(value):
            return f"returned {value} {where}: a std is a finite positive number."
        expected = reference_backward_std(fan_in, fan_out, a)
        if math.isclose(value, expected, rel_tol=1e-6):
            continue
        for message, wrong in _backward_mistakes(fan_in, fan_out, a):
            if math.isclose(value, wrong, rel_tol=1e-6):
                return f"{message} {where}"
        if value <= 0:
            return f"returned {value:.4g} {where}: a std is positive."
        return (f"returned {value:.4g} {where}: {value / expected:.3g} × the std that keeps the backward "
                "signal's second moment.")
    return None


backward_std = Exercise(
    name="backward_std",
    checked="the std that keeps the backward signal's second moment through a Leaky ReLU layer, at three "
            "settings (fan_in ≠ fan_out both ways, a = 0.3, 0.5 and 0).",
    reference=reference_backward_std,
    diagnose=_diagnose_backward_std,
)


# --------------------------------------------------------------------------------------
# debug it: a network builder
# --------------------------------------------------------------------------------------
def reference_kaiming_mlp(n_in: int, width: int, depth: int, n_classes: int,
                          generator: torch.Generator) -> nn.Sequential:
    """``buggy_kaiming_mlp`` fixed: ``depth`` blocks ``nn.Sequential(Linear, ReLU)`` then a readout
    ``Linear(width, n_classes)``, no biases, every weight ``N(0, 2 / fan_in)`` from ``generator``."""
    sizes = [n_in] + [width] * depth
    blocks: list[nn.Module] = [nn.Sequential(nn.Linear(a, b, bias=False), nn.ReLU())
                               for a, b in zip(sizes, sizes[1:], strict=False)]
    model = nn.Sequential(*blocks, nn.Linear(width, n_classes, bias=False))
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, nn.Linear):
                fan_out, fan_in = layer.weight.shape
                layer.weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=generator)
    return model


#: The check's network: a non-square first layer and readout, so that a swapped fan shows in both.
MLP_N_IN, MLP_WIDTH, MLP_DEPTH, MLP_CLASSES = 400, 100, 3, 50


def _linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def _structure_problem(model: object) -> str | None:
    if model is None:
        return "returns None: return the model."
    if not isinstance(model, nn.Sequential):
        return f"should return an nn.Sequential like buggy_kaiming_mlp's, got {type(model).__name__}."
    shapes = [(m.in_features, m.out_features) for m in _linears(model)]
    expected = [(MLP_N_IN, MLP_WIDTH)] + [(MLP_WIDTH, MLP_WIDTH)] * (MLP_DEPTH - 1) + [(MLP_WIDTH, MLP_CLASSES)]
    if shapes != expected:
        return (f"for n_in = {MLP_N_IN}, width = {MLP_WIDTH}, depth = {MLP_DEPTH}, n_classes = {MLP_CLASSES} the "
                f"Linear layers are {shapes}, expected {expected}: keep buggy_kaiming_mlp's layers, fix their init.")
    children = list(model)
    blocks_ok = len(children) == MLP_DEPTH + 1 and isinstance(children[-1], nn.Linear) and all(
        isinstance(b, nn.Sequential) and len(b) == 2 and isinstance(b[0], nn.Linear) and isinstance(b[1], nn.ReLU)
        for b in children[:-1])
    if not blocks_ok:
        return ("keep buggy_kaiming_mlp's structure, depth blocks nn.Sequential(nn.Linear, nn.ReLU) then the "
                "readout nn.Linear: the cells below read the blocks' weights that way.")
    return None


def _tolerance(count: int) -> float:
    """Five standard errors of a sample variance of ``count`` normal draws, relative."""
    return 5.0 * math.sqrt(2.0 / count)


def _layer_problems(model: nn.Sequential) -> list[str]:
    problems: list[str] = []
    linears = _linears(model)
    with_bias = [i for i, m in enumerate(linears) if m.bias is not None]
    if with_bias:
        problems.append("the Linear layers have biases (nn.Linear's default bias=True, which PyTorch fills with "
                        "U(−1/√n_in, 1/√n_in)): the network is bias-free, nn.Linear(..., bias=False).")
    names = ["the first layer", *(f"hidden layer {i + 2}" for i in range(MLP_DEPTH - 1)), "the readout layer"]
    swapped: list[str] = []
    std_for_var: list[str] = []
    default: list[str] = []
    other: list[str] = []
    for name, m in zip(names, linears, strict=True):
        w = m.weight.detach().double()
        fan_in, fan_out = m.in_features, m.out_features
        var = float(w.var())
        tol = _tolerance(w.numel())
        candidates: tuple[tuple[float, tuple[list[str], ...]], ...] = (
            (2.0 / fan_in, ()),
            ((2.0 / fan_in) ** 2, (std_for_var,)), ((2.0 / fan_out) ** 2, (std_for_var, swapped)),
            (2.0 / fan_out, (swapped,)), (1.0 / (3.0 * fan_in), (default,)),
        )
        for target, buckets in candidates:
            if abs(math.log(var / target)) < tol:
                for bucket in buckets:
                    bucket.append(name)
                break
        else:
            other.append(f"{name} has variance {var / (2.0 / fan_in):.3g} × 2 / fan_in")
    if std_for_var:
        problems.append("normal_(0, 2 / fan) takes a std, and 2 / fan is the variance: the std is sqrt(2 / fan_in) "
                        f"({', '.join(std_for_var)}).")
    if swapped:
        problems.append(f"{' and '.join(swapped)} use fan_out: nn.Linear's weight has shape (out_features, "
                        "in_features), so `fan_in, fan_out = weight.shape` swaps them (invisible on the square "
                        "layers only).")
    if default:
        problems.append(f"{', '.join(default)} kept nn.Linear's default init (variance 1 / (3 n_in)): "
                        "re-initialise every nn.Linear.")
    if other:
        problems.append("; ".join(other) + "; Kaiming's is 2 / fan_in.")
    return problems


def _diagnose_kaiming_mlp(student: Callable[..., Any]) -> str | None:
    def build(seed: int) -> Any:
        return student(MLP_N_IN, MLP_WIDTH, MLP_DEPTH, MLP_CLASSES, torch.Generator().manual_seed(seed))

    model = build(0)
    problem = _structure_problem(model)
    if problem is not None:
        return problem
    problems = _layer_problems(model)
    if not problems:
        first = _linears(model)[0].weight.detach()
        if not torch.equal(first, _linears(build(0))[0].weight.detach()):
            problems.append("the same seed gave different weights: draw with generator=generator.")
        elif torch.equal(first, _linears(build(1))[0].weight.detach()):
            problems.append("the same weights whatever the generator: draw from the generator you are given.")
        else:
            w = first.double()
            centred = w - w.mean()
            kurtosis = float((centred ** 4).mean() / float(centred.pow(2).mean()) ** 2)
            if abs(float(w.mean())) > 0.05 * float(w.std()):
                problems.append("the weights are not centred: Kaiming's are N(0, 2 / fan_in).")
            elif abs(kurtosis - 3.0) > 0.3:
                problems.append(f"the weights are not normal (kurtosis {kurtosis:.2f}; a normal's is 3).")
    if not problems:
        return None
    if len(problems) == 1:
        return f"one bug remains: {problems[0]}"
    listed = " ".join(f"({i}) {p}" for i, p in enumerate(problems, start=1))
    return f"{len(problems)} bugs remain: {listed}"


kaiming_mlp = Exercise(
    name="kaiming_mlp",
    checked="bias-free, every layer N(0, 2 / fan_in) from the generator (the non-square first and last layers too).",
    reference=reference_kaiming_mlp,
    diagnose=_diagnose_kaiming_mlp,
)


# --------------------------------------------------------------------------------------
# concept questions
# --------------------------------------------------------------------------------------
q01_second_moment = Question(
    name="q01_second_moment",
    answer="b",
    why="Var(wᵀx) = n · Var(w) · E[x²] for independent zero-mean weights: the inputs enter through their second "
        "moment, which equals Var(x) only for centred inputs, and MNIST pixels have mean 0.13.",
    choices={
        "a": "Var(x) is what the lecture writes, but it only equals E[x²] when the mean is 0; MNIST pixels "
             "(in [0, 1]) have mean 0.13, and E[(w x)²] = E[w²] E[x²] counts the mean too.",
        "b": "",
        "c": "they differ by the squared mean, mean(x)² ≈ 0.017 against E[x²] ≈ 0.11: more than 10 % here.",
    },
)

q01_leaky_gain = Question(
    name="q01_leaky_gain",
    answer=2.0 / 1.01,
    why="the negative half keeps a² of its second moment: E[φ(h)²] = (1 + a²)/2 · Var(h), so c = 2 / (1 + a²) "
        "= 2 / 1.01 ≈ 1.98.",
    rel_tol=0.003,
)

q01_z50 = Question(
    name="q01_z50",
    answer=864.0,
    why="‖Z_50‖ ≈ ‖x‖ · √(100/784) · (2.5/2)^(50/2) = 9.14 · 0.357 · 265 ≈ 860 (the input's mean norm is 9.14).",
    rel_tol=0.1,
)

q01_sigmoid_depth = Question(
    name="q01_sigmoid_depth",
    answer=math.log(1e-6) / math.log(0.25),
    why="about 1/4 per layer: (1/4)^k = 10⁻⁶ gives k = ln(10⁻⁶) / ln(1/4) ≈ 10 layers.",
    rel_tol=0.06,
)
