"""Notebook 01's exercises about the two fans of a layer and its concept questions (helpers.check.fans)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from helpers import check
from helpers.check import fans


def _stub(*args, **kwargs):
    raise NotImplementedError()


# ------------------------------------------------------------------ backward_std
@pytest.mark.parametrize("answer", [
    fans.reference_backward_std,
    lambda i, o, a: math.sqrt(2 / (1 + a * a) / o),
    lambda i, o, a: torch.tensor(2.0 / ((1 + a ** 2) * o)).sqrt(),   # a one-element tensor
    lambda i, o, a: np.sqrt(2 / ((1 + a ** 2) * o)),                 # a NumPy scalar
    lambda i, o, a: nn.init.calculate_gain("leaky_relu", a) / math.sqrt(o),
])
def test_backward_std_right_answers_pass(answer):
    result = check.backward_std.feedback(answer)
    assert result.passed, result.message


@pytest.mark.parametrize(("answer", "expected"), [
    (lambda i, o, a: math.sqrt(2 / ((1 + a * a) * i)), "fan_in in place of fan_out"),
    (lambda i, o, a: math.sqrt(2 / o), "the slope is missing"),
    (lambda i, o, a: math.sqrt(2 / ((1 + a) * o)), "(1 + a) / 2 in place of (1 + a²) / 2"),
    (lambda i, o, a: math.sqrt(4 / ((1 + a * a) * (i + o))), "average of the two fans"),
    (lambda i, o, a: 2 / ((1 + a * a) * o), "that is the variance"),
    (lambda i, o, a: math.sqrt((1 + a * a) / (2 * o)), "upside down"),
    (lambda i, o, a: math.sqrt(1 / o), "the activation's factor is missing: 1 / fan_out"),
    (lambda i, o, a: math.sqrt(1 / i), "LeCun's std"),
    (lambda i, o, a: 0.07, "× the std that keeps"),                           # a hard-coded number
    (lambda i, o, a: -math.sqrt(2 / ((1 + a * a) * o)), "a std is positive"),
    (lambda i, o, a: [math.sqrt(2 / o)], "one number"),
    (lambda i, o, a: float("nan"), "finite positive"),
])
def test_backward_std_typical_mistakes_are_named(answer, expected):
    result = check.backward_std.feedback(answer)
    assert not result.passed and result.written
    assert expected in result.message, result.message


def test_backward_std_stub_is_not_written():
    assert not check.backward_std.feedback(_stub).written


def test_backward_std_keeps_the_gradient_of_a_deep_leaky_network():
    """The reference, used in a 12-layer Leaky ReLU stack of alternating widths, keeps E[g²] (not E[z²])."""
    g = torch.Generator().manual_seed(0)
    widths, a = [64, 256] * 6 + [64], 0.3
    weights = [torch.randn(o, i, generator=g, dtype=torch.float64) * fans.reference_backward_std(i, o, a)
               for i, o in zip(widths[:-1], widths[1:], strict=True)]
    x = torch.randn(512, widths[0], generator=g, dtype=torch.float64)
    hs, h = [], x.requires_grad_(True)
    for w in weights:
        hs.append(h)
        h = torch.nn.functional.leaky_relu(h @ w.T, a)
    grads = torch.autograd.grad(h, hs, torch.randn(h.shape, generator=g, dtype=torch.float64))
    second = np.array([float(gr.pow(2).mean()) for gr in grads])
    assert np.abs(np.log(second[1:] / second[:-1])).max() < 0.2, second


# ------------------------------------------------------------------ kaiming_mlp
def _builder(bias=False, swap=False, std_is_var=False, skip_readout=False, flat=False, seed_inside=False,
             uniform=False):
    """A network builder with the chosen bugs (``buggy_kaiming_mlp`` has bias, swap and std_is_var)."""
    def build(n_in, width, depth, n_classes, generator):
        sizes = [n_in] + [width] * depth
        if flat:
            layers = []
            for a, b in zip(sizes[:-1], sizes[1:], strict=True):
                layers += [nn.Linear(a, b, bias=bias), nn.ReLU()]
            model = nn.Sequential(*layers, nn.Linear(width, n_classes, bias=False))
        else:
            model = nn.Sequential(*[nn.Sequential(nn.Linear(a, b, bias=bias), nn.ReLU())
                                    for a, b in zip(sizes[:-1], sizes[1:], strict=True)],
                                  nn.Linear(width, n_classes, bias=False))
        gen = torch.Generator().manual_seed(0) if seed_inside else generator
        with torch.no_grad():
            linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
            for layer in linears[:-1] if skip_readout else linears:
                fan_out, fan_in = layer.weight.shape
                if swap:
                    fan_in, fan_out = fan_out, fan_in
                std = 2.0 / fan_in if std_is_var else math.sqrt(2.0 / fan_in)
                if uniform:
                    layer.weight.uniform_(-std * math.sqrt(3), std * math.sqrt(3), generator=gen)
                else:
                    layer.weight.normal_(0.0, std, generator=gen)
        return model
    return build


@pytest.mark.parametrize("answer", [
    fans.reference_kaiming_mlp,
    _builder(),
    lambda i, w, d, c, g: fans.reference_kaiming_mlp(i, w, d, c, g).double(),
])
def test_kaiming_mlp_right_answers_pass(answer):
    result = check.kaiming_mlp.feedback(answer)
    assert result.passed, result.message


@pytest.mark.parametrize(("answer", "expected"), [
    (_builder(bias=True, swap=True, std_is_var=True), ["3 bugs remain", "biases", "takes a std", "swaps them"]),
    (_builder(bias=True, swap=True), ["2 bugs remain", "biases", "the first layer and the readout layer use fan_out"]),
    (_builder(swap=True), ["one bug remains", "swaps them"]),
    (_builder(bias=True), ["one bug remains", "bias=False"]),
    (_builder(std_is_var=True), ["one bug remains", "takes a std"]),
    (_builder(skip_readout=True), ["the readout layer kept nn.Linear's default init"]),
    (_builder(flat=True), ["keep buggy_kaiming_mlp's structure"]),
    (_builder(seed_inside=True), ["whatever the generator"]),
    (_builder(uniform=True), ["not normal"]),
    (lambda i, w, d, c, g: None, ["returns None"]),
    (lambda i, w, d, c, g: fans.reference_kaiming_mlp(i, w, d + 1, c, g), ["keep buggy_kaiming_mlp's layers"]),
])
def test_kaiming_mlp_remaining_bugs_are_named(answer, expected):
    result = check.kaiming_mlp.feedback(answer)
    assert not result.passed and result.written
    for text in expected:
        assert text in result.message, result.message


def test_the_swap_is_only_named_where_it_shows():
    message = check.kaiming_mlp.feedback(_builder(swap=True)).message
    assert "hidden layer" not in message, message


# ------------------------------------------------------------------ questions
@pytest.mark.parametrize(("question", "right", "wrong"), [
    (fans.q01_second_moment, "b", ["a", "c"]),
    (fans.q01_leaky_gain, 1.98, [2.0, 1.0, 2 / 1.1]),
    (fans.q01_z50, 860, [265, 8600, 3.3]),
    (fans.q01_sigmoid_depth, 10, [20, 6, 12]),
])
def test_questions_accept_the_answer_and_explain_every_wrong_one(question, right, wrong):
    assert question.feedback(right).passed
    assert not question.feedback(None).written
    for value in wrong:
        result = question.feedback(value)
        assert not result.passed and result.message, value
    for choice, why in question.choices.items():
        assert choice == question.answer or len(why) > 20, choice


def test_q01_z50_is_the_theory_for_the_first_256_images():
    from helpers import initialization as init
    from helpers import initialization_theory as theory
    x_norm = float(init.mnist_batch(256)[0].norm(dim=1).mean())
    assert math.isclose(fans.q01_z50.answer, theory.relu_theory_norms(2.5, 50, 100, x_norm)[-1], rel_tol=1e-3)
