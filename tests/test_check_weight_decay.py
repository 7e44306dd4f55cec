"""Notebook 07's derivation and design exercises and its questions (helpers.check.weight_decay)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from helpers import check
from helpers.check import weight_decay as ex
from helpers.check.feedback import Question


def _stub(*args):
    raise NotImplementedError()


@pytest.mark.parametrize("name", ["equilibrium_norm", "param_groups"])
def test_exported_reference_passes_and_stub_is_not_written(name):
    exercise = getattr(check, name)
    assert name in ex.__all__ and exercise.name == name
    assert exercise.feedback(exercise.reference).passed, exercise.feedback(exercise.reference)
    stub = exercise.feedback(_stub)
    assert not stub.passed and not stub.written


# -- equilibrium_norm ------------------------------------------------------------------------
@pytest.mark.parametrize("answer", [
    lambda lr, lam, g: (lr * g ** 2 / (2 * lam)) ** 0.25,
    lambda lr, lam, g: math.sqrt(g) * (lr / (2 * lam)) ** 0.25,
    lambda lr, lam, g: torch.tensor(lr * g * g / (2 * lam)).pow(0.25),
    lambda lr, lam, g: np.float32((lr * g ** 2 / (2 * lam)) ** 0.25),
    # the exact fixed point of ‖W‖² ← (1 − lr·λ)²‖W‖² + lr²g²/‖W‖², without the approximation
    lambda lr, lam, g: (lr * lr * g * g / (1 - (1 - lr * lam) ** 2)) ** 0.25,
])
def test_equilibrium_norm_right_answers_pass(answer):
    result = check.equilibrium_norm.feedback(answer)
    assert result.passed, result.message


@pytest.mark.parametrize("answer, words", [
    (lambda lr, lam, g: math.sqrt(lr * g * g / (2 * lam)), "take one more square root"),
    (lambda lr, lam, g: lr * g * g / (2 * lam), "take the fourth root"),
    (lambda lr, lam, g: (lr * g * g / lam) ** 0.25, "the factor 2 is missing"),
    (lambda lr, lam, g: (lr * lr * g * g / (2 * lam)) ** 0.25, "one learning rate too many"),
    (lambda lr, lam, g: (g * g / (2 * lam)) ** 0.25, "the learning rate is missing"),
    (lambda lr, lam, g: (lr * g / (2 * lam)) ** 0.25, "the gradient's norm enters squared"),
    (lambda lr, lam, g: math.sqrt(2 * lr * lam), "the angle one step turns"),
    (lambda lr, lam, g: 2 * (lr * g * g / (2 * lam)) ** 0.25, "expected"),
    (lambda lr, lam, g: [1.0, 2.0], "return one number"),
    (lambda lr, lam, g: float("nan"), "returned nan"),
])
def test_equilibrium_norm_mistakes_are_named(answer, words):
    result = check.equilibrium_norm.feedback(answer)
    assert not result.passed and result.written
    assert words in result.message, result.message


def test_equilibrium_norm_mistakes_are_distinct_on_every_case():
    for lr, lam, g in ex._CASES:
        values = [ex._equilibrium_norm(lr, lam, g), math.sqrt(lr * g * g / (2 * lam)), lr * g * g / (2 * lam),
                  (lr * g * g / lam) ** 0.25, (lr * lr * g * g / (2 * lam)) ** 0.25, (g * g / (2 * lam)) ** 0.25,
                  (lr * g / (2 * lam)) ** 0.25, math.sqrt(2 * lr * lam)]
        for i, a in enumerate(values):
            for b in values[i + 1:]:
                assert not math.isclose(a, b, rel_tol=0.01), (lr, lam, g, a, b)


def test_equilibrium_norm_is_the_fixed_point_of_decay_and_orthogonal_steps():
    """The derivation's claim, simulated: decay, then a step of size lr·g/‖w‖ orthogonal to w."""
    lr, lam, g = 0.1, 0.05, 2.0
    norm = 10.0
    for _ in range(3000):
        norm = math.sqrt(((1 - lr * lam) * norm) ** 2 + (lr * g / norm) ** 2)
    assert norm == pytest.approx(ex._equilibrium_norm(lr, lam, g), rel=0.01)


def test_equilibrium_norm_reference_rejects_bad_arguments():
    with pytest.raises(ValueError, match="lam must be a finite number > 0"):
        ex._equilibrium_norm(0.1, 0.0, 1.0)
    with pytest.raises(TypeError, match="lr must be a number"):
        ex._equilibrium_norm("0.1", 0.1, 1.0)


# -- param_groups ----------------------------------------------------------------------------------
def by_name(model, weight_decay):
    decay, rest = [], []
    for name, p in model.named_parameters():
        (rest if name.endswith("bias") or p.ndim < 2 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def by_module(model, weight_decay):  # one group per parameter, by the module's type, tied weights once
    groups, seen = [], set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            decayed = name == "weight" and isinstance(module, (nn.Linear, nn.Conv1d, nn.Embedding))
            groups.append({"params": [p], "weight_decay": weight_decay if decayed else 0.0})
    return groups


def as_tuple_of_generators(model, weight_decay):
    return ({"params": (p for p in model.parameters() if p.ndim >= 2), "weight_decay": weight_decay},
            {"params": (p for p in model.parameters() if p.ndim < 2), "weight_decay": 0})


@pytest.mark.parametrize("answer", [by_name, by_module, as_tuple_of_generators])
def test_param_groups_right_answers_pass(answer):
    result = check.param_groups.feedback(answer)
    assert result.passed, result.message


def no_key(model, weight_decay):
    groups = by_name(model, weight_decay)
    del groups[1]["weight_decay"]
    return groups


def linear_modules_only(model, weight_decay):  # collects Linear weights per module: the tied one twice
    decay = [m.weight for m in model.modules() if isinstance(m, (nn.Linear, nn.Embedding, nn.Conv1d))]
    rest = [p for p in model.parameters() if p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def forgets_the_rest(model, weight_decay):
    return [{"params": [p for p in model.parameters() if p.ndim >= 2], "weight_decay": weight_decay}]


def decays_norms(model, weight_decay):
    decay = [p for n, p in model.named_parameters() if not n.endswith("bias") or n.startswith(("bn", "ln"))]
    rest = [p for n, p in model.named_parameters() if n.endswith("bias") and not n.startswith(("bn", "ln"))]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def decays_biases(model, weight_decay):
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 or n.endswith("bias")
             and not n.startswith(("bn", "ln", "1", "2"))]
    rest = [p for p in model.parameters() if all(p is not q for q in decay)]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def linear_weights_only(model, weight_decay):  # the convolution kernel and the embedding left undecayed
    decay = [m.weight for m in model.modules() if isinstance(m, nn.Linear) and m.weight.ndim == 2]
    decay = list({id(p): p for p in decay}.values())
    rest = [p for p in model.parameters() if all(p is not q for q in decay)]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def two_dims_only(model, weight_decay):
    decay = [p for p in model.parameters() if p.ndim == 2]
    rest = [p for p in model.parameters() if p.ndim != 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


@pytest.mark.parametrize("answer, words", [
    (no_key, "gets AdamW's default, 0.01"),
    (linear_modules_only, "listed more than once: embed.weight = head.weight (a tied weight"),
    (forgets_the_rest, "missing from every group: fc.bias, bn.weight"),
    (decays_norms, "decays the normalization layers' γ and β (bn.weight, bn.bias, ln.weight, ln.bias)"),
    (decays_biases, "decays the biases (fc.bias, conv.bias, head.bias)"),
    (two_dims_only, "does not decay conv.weight"),
    (lambda model, wd: by_name(model, 0.01), "not the weight_decay argument (0.05)"),
    (lambda model, wd: [{"params": list(model.parameters()), "weight_decay": wd}], "decays the biases"),
    (lambda model, wd: {"params": list(model.parameters()), "weight_decay": wd}, "return a list of parameter groups"),
    (lambda model, wd: [{"params": [n for n, _ in model.named_parameters()], "weight_decay": wd}], "names (strings)"),
    (lambda model, wd: [{"params": [torch.zeros(2)], "weight_decay": wd}], "not one of the model's parameters"),
    (lambda model, wd: [list(model.parameters())], "should be a dict"),
    (lambda model, wd: [{"params": list(model.parameters()), "weight_decay": "wd"}], "should be a number"),
])
def test_param_groups_mistakes_are_named(answer, words):
    result = check.param_groups.feedback(answer)
    assert not result.passed and result.written
    assert words in result.message, result.message


def test_param_groups_reports_the_undecayed_kernel():
    result = check.param_groups.feedback(linear_weights_only)
    assert not result.passed and "does not decay conv.weight with the weight_decay argument" in result.message


def test_param_groups_checks_a_second_model_with_another_weight_decay():
    def hard_coded_model(model, weight_decay):
        if isinstance(model, nn.Sequential):
            return [{"params": list(model.parameters()), "weight_decay": weight_decay}]
        return by_name(model, weight_decay)

    result = check.param_groups.feedback(hard_coded_model)
    assert not result.passed and "weight_decay 0.3: decays the biases (0.bias, 2.bias)" in result.message


def test_the_default_decay_is_adamws():
    assert ex.ADAMW_DEFAULT_DECAY == 0.01


# -- questions ---------------------------------------------------------------------------------------
QUESTIONS = {"q07_effective_lr_ratio": 9, "q07_decay_halving": 69_000, "q07_adam_l2_first_step": 1e-3,
             "q07_equilibrium_scaling": 2}
WRONG = {"q07_effective_lr_ratio": 3, "q07_decay_halving": 50, "q07_adam_l2_first_step": 5e-7,
         "q07_equilibrium_scaling": 4}


@pytest.mark.parametrize("name", QUESTIONS)
def test_numeric_questions(name):
    question = getattr(check, name)
    assert isinstance(question, Question) and name in ex.__all__ and not question.choices
    assert question.feedback(QUESTIONS[name]).passed, question.feedback(QUESTIONS[name])
    wrong = question.feedback(WRONG[name])
    assert not wrong.passed and "too small" in wrong.message or "too large" in wrong.message
    assert not question.feedback(None).written
    assert "finite number" in question.feedback("nine").message
