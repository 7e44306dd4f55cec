"""Exercises of notebook 07 that need a derivation or a design decision, and its concept questions.

- ``equilibrium_norm``: the norm at which weight decay and the gradient balance for a weight
  in front of a normalization layer (scale-invariant: its gradient is ``unit_grad_norm / ‖W‖``
  and orthogonal to W). Derived from the balance 2ηλ‖W‖² = η²‖∇‖² of the notebook, it is
  ``(lr · unit_grad_norm² / (2 λ))^(1/4)``; the notebook checks it on a measured run.
- ``param_groups``: AdamW's parameter groups for a model: the weights that multiply inputs
  (Linear and convolution weights, embedding tables) decayed, biases and normalization layers'
  γ and β not, every parameter exactly once (a tied weight too).
- Questions ``q07_effective_lr_ratio``, ``q07_decay_halving``, ``q07_adam_l2_first_step`` and
  ``q07_equilibrium_scaling``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from helpers.check.feedback import Exercise, Question
from helpers.check.inputs import as_number

__all__ = ["equilibrium_norm", "param_groups", "q07_adam_l2_first_step", "q07_decay_halving",
           "q07_effective_lr_ratio", "q07_equilibrium_scaling"]


# ---------------------------------------------------------------------------------------
# the equilibrium norm under weight decay
# ---------------------------------------------------------------------------------------
def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, torch.Tensor)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {number}")
    return number


def _equilibrium_norm(lr: float, lam: float, unit_grad_norm: float) -> float:
    """‖W‖ where 2·lr·λ·‖W‖² = lr²·‖∇‖² with ‖∇‖ = unit_grad_norm / ‖W‖."""
    lr, lam, unit = _positive("lr", lr), _positive("lam", lam), _positive("unit_grad_norm", unit_grad_norm)
    return (lr * unit ** 2 / (2 * lam)) ** 0.25


#: (lr, λ, unit_grad_norm): lr·λ small, so the exact fixed point of (1 − lr·λ)² is within 0.2 %.
_CASES = ((0.1, 1e-2, 3.0), (0.05, 1e-3, 0.7), (0.2, 5e-3, 12.0))


def _diagnose_equilibrium(student: Callable[..., Any]) -> str | None:
    mistakes: list[tuple[str, Callable[[float, float, float], float]]] = [
        ("that is sqrt(lr·g²/(2λ)): either the squared norm ‖W‖² (take one more square root), or a balance "
         "with a fixed gradient norm; in front of a normalization layer ‖∇‖ = unit_grad_norm / ‖W‖, so ‖W‖ "
         "appears on both sides of 2ηλ‖W‖² = η²‖∇‖².", lambda lr, lam, g: math.sqrt(lr * g * g / (2 * lam))),
        ("that is ‖W‖⁴: the balance gives ‖W‖⁴ = lr·g²/(2λ); take the fourth root.",
         lambda lr, lam, g: lr * g * g / (2 * lam)),
        ("the factor 2 is missing: one step shrinks ‖W‖² by (1 − ηλ)² ≈ 1 − 2ηλ, so decay removes 2ηλ‖W‖² "
         "per step.", lambda lr, lam, g: (lr * g * g / lam) ** 0.25),
        ("one learning rate too many: the decay per step is lr·λ, so the balance is 2·lr·λ‖W‖² = lr²‖∇‖² "
         "and one lr cancels.", lambda lr, lam, g: (lr * lr * g * g / (2 * lam)) ** 0.25),
        ("the learning rate is missing: decay removes 2·lr·λ‖W‖² per step and the step adds lr²‖∇‖²; one "
         "lr cancels, the other stays.", lambda lr, lam, g: (g * g / (2 * lam)) ** 0.25),
        ("the gradient's norm enters squared: a step adds lr²‖∇‖², with ‖∇‖ = unit_grad_norm / ‖W‖.",
         lambda lr, lam, g: (lr * g / (2 * lam)) ** 0.25),
        ("that is the angle one step turns W by at the equilibrium, √(2·lr·λ), not the norm of W.",
         lambda lr, lam, g: math.sqrt(2 * lr * lam)),
    ]
    for lr, lam, g in _CASES:
        raw = student(lr, lam, g)
        value = as_number(raw)
        if value is None:
            return f"return one number (a float or a 0-d tensor), got {type(raw).__name__}."
        if not math.isfinite(value):
            return f"for lr = {lr}, λ = {lam}, unit_grad_norm = {g} your function returned {value}."
        right = _equilibrium_norm(lr, lam, g)
        if math.isclose(value, right, rel_tol=2e-3):
            continue
        for message, wrong in mistakes:
            if math.isclose(value, wrong(lr, lam, g), rel_tol=2e-3):
                return message
        return (f"for lr = {lr}, λ = {lam}, unit_grad_norm = {g}: {value:.4g}, expected {right:.4g}. Write the "
                "balance with ‖∇‖ = unit_grad_norm / ‖W‖ and solve it for ‖W‖.")
    return None


equilibrium_norm = Exercise(
    name="equilibrium_norm",
    checked="(lr·g²/(2λ))^(1/4): the norm where decay and the gradient's growth balance, for three settings.",
    reference=_equilibrium_norm,
    diagnose=_diagnose_equilibrium,
)


# ---------------------------------------------------------------------------------------
# AdamW's parameter groups
# ---------------------------------------------------------------------------------------
class _Net(nn.Module):
    """A model with every kind of parameter (its forward is never run): an embedding table tied
    to the output head (as in GPT-2), a linear layer, BatchNorm, a convolution, LayerNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.fc = nn.Linear(8, 16)
        self.bn = nn.BatchNorm1d(16)
        self.conv = nn.Conv1d(16, 8, kernel_size=3)
        self.proj = nn.Linear(8, 8, bias=False)
        self.ln = nn.LayerNorm(8)
        self.head = nn.Linear(8, 10)
        self.head.weight = self.embed.weight  # tied: one tensor, two names


#: The weight decay torch.optim.AdamW gives a group without a "weight_decay" key (its default).
ADAMW_DEFAULT_DECAY = float(inspect.signature(torch.optim.AdamW).parameters["weight_decay"].default)


def _reference_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two AdamW groups: every parameter with two or more dimensions decayed, the rest not."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    decay = float(weight_decay)
    decayed: list[nn.Parameter] = []
    kept: list[nn.Parameter] = []
    for parameter in model.parameters():  # each tensor once, tied ones too
        if parameter.requires_grad:
            (decayed if parameter.ndim >= 2 else kept).append(parameter)
    return [{"params": decayed, "weight_decay": decay}, {"params": kept, "weight_decay": 0.0}]


def _names(model: nn.Module) -> dict[int, str]:
    """id(parameter) -> its name(s) ("head.weight = embed.weight" for a tied one)."""
    found: dict[int, list[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        found.setdefault(id(parameter), []).append(name)
    return {key: " = ".join(names) for key, names in found.items()}


def _listed(names: list[str]) -> str:
    return ", ".join(names)


def _diagnose_groups(student: Callable[..., Any], model: nn.Module, weight_decay: float) -> str | None:
    names = _names(model)
    parameters = {id(p): p for p in model.parameters()}
    answer = student(model, weight_decay)
    if isinstance(answer, dict) or not isinstance(answer, (list, tuple)):
        return ("return a list of parameter groups, dicts such as {\"params\": [...], \"weight_decay\": …}, "
                f"got {type(answer).__name__}.")
    groups = []
    for index, group in enumerate(answer):
        if not isinstance(group, dict) or "params" not in group:
            return f"group {index} should be a dict with a \"params\" entry, got {type(group).__name__}."
        members = group["params"]
        members = [members] if isinstance(members, torch.Tensor) else list(members)
        strangers = [m for m in members if not isinstance(m, torch.Tensor) or id(m) not in parameters]
        if strangers:
            kind = "names (strings)" if isinstance(strangers[0], str) else \
                "something that is not one of the model's parameters"
            return (f"group {index} holds {kind}: put the parameter tensors themselves in \"params\" "
                    "(model.named_parameters() gives each with its name).")
        groups.append((group, members))
    seen: dict[int, int] = {}
    for _, members in groups:
        for member in members:
            seen[id(member)] = seen.get(id(member), 0) + 1
    twice = [names[key] for key, count in seen.items() if count > 1]
    if twice:
        tied = any(" = " in name for name in twice)
        return (f"listed more than once: {_listed(twice)}" + (" (a tied weight: one tensor with two names; "
                "model.parameters() gives it once)" if tied else "") + ". Every parameter belongs to exactly "
                "one group.")
    missing = [names[key] for key in parameters if key not in seen]  # in the model's order
    if missing:
        return (f"missing from every group: {_listed(missing)}. Every parameter must be in a group, those "
                "without decay too (else AdamW does not train them).")
    given: dict[int, float] = {}
    for index, (group, members) in enumerate(groups):
        value = group.get("weight_decay", ADAMW_DEFAULT_DECAY)  # what torch.optim.AdamW reads
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            return f"group {index}'s \"weight_decay\" should be a number, got {type(value).__name__}."
        given |= {id(member): float(value) for member in members}
    default = [group for group, _ in groups if "weight_decay" not in group]
    wanted = {key: (weight_decay if p.ndim >= 2 else 0.0) for key, p in parameters.items()}
    order = list(parameters)  # the model's order, for the messages
    wrong = {key for key in parameters if not math.isclose(given[key], wanted[key], rel_tol=1e-9, abs_tol=1e-12)}
    if not wrong:
        return None
    undecayed_default = [key for key in order if key in wrong and wanted[key] == 0.0
                         and given[key] == ADAMW_DEFAULT_DECAY] if default else []
    if undecayed_default:
        return (f"a group without a \"weight_decay\" key gets AdamW's default, {ADAMW_DEFAULT_DECAY:g}, so "
                f"{_listed([names[k] for k in undecayed_default])} are decayed: write \"weight_decay\": 0.0.")
    decayed_matrices = [key for key in parameters if wanted[key] > 0 and given[key] > 0]
    if decayed_matrices and all(math.isclose(given[k], given[decayed_matrices[0]]) for k in decayed_matrices) \
            and not math.isclose(given[decayed_matrices[0]], weight_decay) \
            and all(given[k] == 0.0 for k in parameters if wanted[k] == 0.0):
        return (f"the decayed group's weight_decay is {given[decayed_matrices[0]]:g}, not the weight_decay "
                f"argument ({weight_decay:g}).")
    module_of = {id(p): module for module in model.modules() for p in module.parameters(recurse=False)}
    norm_types = (nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)
    wrong_in_order = [k for k in order if k in wrong]
    norms = [names[k] for k in wrong_in_order if wanted[k] == 0.0 and isinstance(module_of.get(k), norm_types)]
    biases = [names[k] for k in wrong_in_order if wanted[k] == 0.0 and names[k] not in norms]
    matrices = [names[k] for k in wrong_in_order if wanted[k] > 0]
    parts = []
    if norms:
        parts.append(f"decays the normalization layers' γ and β ({_listed(norms)}): shrinking γ shrinks what "
                     "the normalization outputs, and neither γ nor β makes the function more complex")
    if biases:
        parts.append(f"decays the biases ({_listed(biases)}): a bias only shifts a unit; decaying it pulls "
                     "the shifts to 0 for nothing")
    if matrices:
        parts.append(f"does not decay {_listed(matrices)} with the weight_decay argument: the weights that "
                     "multiply inputs (Linear and convolution weights, the embedding table) are the ones to decay")
    return "; ".join(parts) + "."


def _diagnose_param_groups(student: Callable[..., Any]) -> str | None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = _Net()
    problem = _diagnose_groups(student, model, 0.05)
    if problem is not None:
        return problem
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        plain = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    problem = _diagnose_groups(student, plain, 0.3)
    return None if problem is None else f"for nn.Sequential(Linear, ReLU, Linear) and weight_decay 0.3: {problem}"


param_groups = Exercise(
    name="param_groups",
    checked="every weight matrix, kernel and embedding decayed by weight_decay, biases and γ, β not, each "
            "parameter once (the tied one too), as torch.optim.AdamW reads the groups.",
    reference=_reference_groups,
    diagnose=_diagnose_param_groups,
)


# ---------------------------------------------------------------------------------------
# concept questions
# ---------------------------------------------------------------------------------------
q07_effective_lr_ratio = Question(
    name="q07_effective_lr_ratio",
    answer=9.19,
    why="‖W₁‖² ends about 9× smaller with λ = 1e-2 (median of the five seeds' ratios 9.19; 9.0–9.4), so lr/‖W₁‖² "
        "is about 9× larger: decay in front of BatchNorm speeds up the layer's turning, it does not simplify it.",
    rel_tol=0.1,
)

q07_decay_halving = Question(
    name="q07_decay_halving",
    answer=math.log(2) / 1e-5,
    why="(1 − 1e-5)ⁿ = 1/2 gives n = ln 2 / 1e-5 ≈ 69,000 steps, nearly 60 times the study's 1,200: at this λ "
        "AdamW hardly decays, which is why its ‖W₁‖ barely moves in §1.",
    rel_tol=0.05,
)

q07_adam_l2_first_step = Question(
    name="q07_adam_l2_first_step",
    answer=1e-3,
    why="the gradient is g = λw alone, so after bias correction m̂/√v̂ = g/|g| = 1: the step is lr = 1e-3 "
        "whatever λ, 2,000 times AdamW's lr·λ·w = 5e-7. The same λ is a weak decay for AdamW and a strong one, "
        "for weights with small gradients, for Adam + L2.",
    rel_tol=0.05,
)

q07_equilibrium_scaling = Question(
    name="q07_equilibrium_scaling",
    answer=2.0,
    why="‖W‖⁴ ∝ lr/λ, so ‖W‖² ∝ λ^(-1/2) and lr/‖W‖² ∝ √λ: four times the decay, twice the effective learning "
        "rate (and twice the angle per step, √(2ηλ)).",
    rel_tol=0.05,
)
