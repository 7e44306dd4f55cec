"""The build-it-yourself exercises of notebook 01 (helpers.check.initialization)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers import check, initialization_theory
from helpers import initialization as init


def _stub(*args, **kwargs):
    raise NotImplementedError()


# ------------------------------------------------------------------ kaiming_normal
def _kaiming(scale, shape="out_in", draw=None):
    """An answer: ``draw`` (default torch.randn) of the given shape, times ``scale(fan_in, fan_out)``."""
    def answer(fan_in, fan_out, generator):
        size = (fan_out, fan_in) if shape == "out_in" else (fan_in, fan_out)
        values = torch.randn(*size, generator=generator) if draw is None else draw(size, generator)
        return values * scale(fan_in, fan_out)
    return answer


KAIMING = _kaiming(lambda i, o: math.sqrt(2 / i))


@pytest.mark.parametrize("answer", [
    init.kaiming_normal,
    KAIMING,
    lambda i, o, g: torch.normal(0.0, math.sqrt(2 / i), size=(o, i), generator=g),
    lambda i, o, g: torch.nn.init.kaiming_normal_(torch.empty(o, i), nonlinearity="relu", generator=g),
    lambda i, o, g: torch.randn(o, i, generator=g, dtype=torch.float64) * math.sqrt(2 / i),
    # trunc_normal_'s default bounds are a = −2, b = 2 in absolute value: 28σ here, so nothing is cut
    lambda i, o, g: torch.nn.init.trunc_normal_(torch.empty(o, i), std=math.sqrt(2 / i), generator=g),
])
def test_kaiming_normal_right_answers_pass(answer):
    result = check.kaiming_normal.feedback(answer)
    assert result.passed, result.message


@pytest.mark.parametrize(("answer", "expected"), [
    (_kaiming(lambda i, o: math.sqrt(2 / i), shape="in_out"), "transposed"),
    (_kaiming(lambda i, o: math.sqrt(2 / o)), "fan_out in place of fan_in"),
    (_kaiming(lambda i, o: math.sqrt(1 / i)), "variance 1 / fan_in"),
    (_kaiming(lambda i, o: math.sqrt(2 / (i + o))), "Xavier/Glorot's average"),
    (_kaiming(lambda i, o: 2 / i), "std 2 / fan_in: that number is the variance"),
    (_kaiming(lambda i, o: 2 / math.sqrt(i)), "not 2 / sqrt(fan_in)"),
    (_kaiming(lambda i, o: math.sqrt(6 / i)), "bound of kaiming_uniform_"),
    (_kaiming(lambda i, o: math.sqrt(6 / i), draw=lambda s, g: 2 * torch.rand(*s, generator=g) - 1),
     "uniform, not normal"),
    (_kaiming(lambda i, o: math.sqrt(2 / i), draw=lambda s, g: torch.rand(*s, generator=g)), "not centred"),
    (lambda i, o, g: torch.randn(o, i) * math.sqrt(2 / i), "ignores the generator"),
    (lambda i, o, g: torch.randn(o, i, generator=torch.Generator().manual_seed(0)) * math.sqrt(2 / i),
     "the same weights whatever the generator"),
    (lambda i, o, g: (torch.randn(o, i, generator=g) * math.sqrt(2 / i)).numpy(), "torch.Tensor, got ndarray"),
    (lambda i, o, g: torch.randn(o, generator=g), "wrong shape"),
])
def test_kaiming_normal_typical_mistakes_are_named(answer, expected):
    result = check.kaiming_normal.feedback(answer)
    assert not result.passed and result.written
    assert expected in result.message, result.message


def _truncated(k, rescale=1.0):
    """trunc_normal_ with std √(2 / fan_in) · rescale, cut at ±k of that std."""
    def answer(fan_in, fan_out, generator):
        std = math.sqrt(2 / fan_in) * rescale
        return torch.nn.init.trunc_normal_(torch.empty(fan_out, fan_in), std=std, a=-k * std, b=k * std,
                                           generator=generator)
    return answer


def _clamped(k):
    def answer(fan_in, fan_out, generator):
        std = math.sqrt(2 / fan_in)
        return (torch.randn(fan_out, fan_in, generator=generator) * std).clamp(-k * std, k * std)
    return answer


@pytest.mark.parametrize(("answer", "expected"), [
    # variance 0.774 σ², close to Xavier's 0.8 σ²: it used to be called Xavier
    (_truncated(2.0), "draws a truncated normal: no weight beyond ±2σ (σ = sqrt(2 / fan_in))"),
    (_truncated(2.0), "cutting the tails shrinks the variance (≈ 0.774 σ² at ±2σ): here 0.777 × 2 / fan_in"),
    (_truncated(1.0), "draws a truncated normal: no weight beyond ±1σ"),
    # rescaled to the right variance, its kurtosis (2.35) used to be called uniform
    (_truncated(2.0, rescale=1 / math.sqrt(0.774)), "rescaled to the right variance, it still has the wrong shape"),
    (_clamped(2.0), "clamps a normal at ±2σ (σ = sqrt(2 / fan_in)): 4.6 % of the weights sit exactly on the bounds"),
])
def test_kaiming_normal_a_truncated_normal_is_named(answer, expected):
    result = check.kaiming_normal.feedback(answer)
    assert not result.passed and result.written
    assert expected in result.message, result.message
    assert "Xavier" not in result.message and "uniform" not in result.message, result.message


@pytest.mark.parametrize("answer", [
    _kaiming(lambda i, o: math.sqrt(2 / (i + o))),
    lambda i, o, g: torch.nn.init.xavier_normal_(torch.empty(o, i), generator=g),
])
def test_kaiming_normal_xavier_is_still_named_xavier(answer):
    result = check.kaiming_normal.feedback(answer)
    assert not result.passed and "Xavier/Glorot's average of the two fans" in result.message, result.message


def test_kaiming_normal_an_unknown_variance_is_stated():
    result = check.kaiming_normal.feedback(_kaiming(lambda i, o: 0.3 * math.sqrt(2 / i)))
    assert not result.passed and "the variance is 0.09" in result.message, result.message


def test_kaiming_normal_an_answer_that_raises_and_the_stub():
    result = check.kaiming_normal.feedback(lambda i, o, g: torch.randn(o, i, generator=g) @ torch.ones(3))
    assert not result.passed and result.message.startswith("your function raised RuntimeError")
    stub = check.kaiming_normal.feedback(_stub)
    assert not stub.passed and not stub.written


def test_kaiming_normal_reference_builds_the_notebooks_network():
    """The notebook's networks: make_mlp with the reference sampler is make_mlp's own draw."""
    assert check.kaiming_normal.reference is init.kaiming_normal
    a = init.norm_profile(2.0, depth=5, width=20, batch=8, seed=3)
    b = init.norm_profile(2.0, depth=5, width=20, batch=8, seed=3, weight_init=check.kaiming_normal.reference)
    np.testing.assert_array_equal(a.activation_norms, b.activation_norms)


# ------------------------------------------------------------------ relu_second_moments
def _moments(per_layer, first=1, count=0, use_m=True, dtype=torch.float64):
    """An answer ``m_in * per_layer(gain) ** i`` for ``i = first … first + depth - 1 + count``."""
    def answer(m_in, gain, depth):
        layers = torch.arange(first, first + depth + count, dtype=dtype)
        return (m_in if use_m else 1.0) * per_layer(gain) ** layers
    return answer


RIGHT_MOMENTS = _moments(lambda c: c / 2)


@pytest.mark.parametrize("answer", [
    initialization_theory.relu_second_moments,
    RIGHT_MOMENTS,
    _moments(lambda c: c / 2, dtype=torch.float32),
    lambda m, c, d: torch.tensor([m * (c / 2) ** i for i in range(1, d + 1)]),
])
def test_relu_second_moments_right_answers_pass(answer):
    result = check.relu_second_moments.feedback(answer)
    assert result.passed, result.message


@pytest.mark.parametrize(("answer", "expected"), [
    (_moments(lambda c: c), "forgot the ½ of ReLU"),
    (_moments(lambda c: c * (0.5 - 1 / (2 * math.pi))), "used Var(relu(h))"),
    (_moments(lambda c: math.sqrt(c / 2)), "sqrt(gain / 2) per layer"),
    (_moments(lambda c: c / 2, first=0), "you start at m_in, the input"),
    (_moments(lambda c: c / 2, first=2), "one layer too many"),
    (_moments(lambda c: c / 2, first=0, count=1), "the input is not a layer"),
    (_moments(lambda c: c / 2, count=-1), "stops one short"),
    (_moments(lambda c: c / 2, use_m=False), "forgot m_in"),
    (lambda m, c, d: m * (c / 2) * torch.ones(d, dtype=torch.float64), "applied once, not once per layer"),
    (lambda m, c, d: [m * (c / 2) ** i for i in range(1, d + 1)], "returns a list"),
    (lambda m, c, d: 0.3 * 1.5 ** torch.arange(1, d + 1, dtype=torch.float64), "gain = 1, depth = 4"),
])
def test_relu_second_moments_typical_mistakes_are_named(answer, expected):
    result = check.relu_second_moments.feedback(answer)
    assert not result.passed and result.written
    assert expected in result.message, result.message


def test_relu_second_moments_an_answer_that_raises_and_the_stub():
    result = check.relu_second_moments.feedback(lambda m, c, d: torch.arange(1, d + 1) ** "two")
    assert not result.passed and result.message.startswith("your function raised TypeError")
    stub = check.relu_second_moments.feedback(_stub)
    assert not stub.passed and not stub.written
    assert check.relu_second_moments.reference is initialization_theory.relu_second_moments


# ------------------------------------------------------------------ kaiming_reinit
def _reinit(modules=lambda model: model.modules(), weight=None, zero_bias=True, no_grad=True, returns=True):
    """An answer that loops over ``modules(model)``; ``weight(module, generator)`` draws the new weight."""
    def answer(model, generator):
        with torch.no_grad() if no_grad else torch.enable_grad():
            for module in modules(model):
                if isinstance(module, torch.nn.Linear):
                    new = (init.kaiming_normal(module.in_features, module.out_features, generator)
                           if weight is None else weight(module, generator))
                    module.weight.copy_(new)
                    if zero_bias:
                        module.bias.zero_() if module.bias is not None else None
        return model if returns else None
    return answer


def _nn_init(model, generator):
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu", generator=generator)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
    return model


@pytest.mark.parametrize("answer", [init.kaiming_reinit, _reinit(), _nn_init])
def test_kaiming_reinit_right_answers_pass(answer):
    result = check.kaiming_reinit.feedback(answer)
    assert result.passed, result.message


def _zero_every_bias(model, generator):
    _reinit(zero_bias=False)(model, generator)
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.bias.data.zero_()  # the nested layer has no bias
    return model


@pytest.mark.parametrize(("answer", "expected"), [
    (_reinit(modules=lambda model: model), "inside a nested nn.Sequential block was left as it was"),
    (_reinit(modules=lambda model: list(model.modules())[:-1]), "the last nn.Linear (300 → 100) was left"),
    (_reinit(zero_bias=False), "the biases were left as they were"),
    (_zero_every_bias, "bias None"),
    (_reinit(no_grad=False), "torch.no_grad()"),
    (_reinit(returns=False), "returns None"),
    (_reinit(weight=lambda m, g: torch.randn(m.out_features, m.in_features) * math.sqrt(2 / m.in_features)),
     "ignores the generator"),
    (_reinit(weight=lambda m, g: torch.randn(m.out_features, m.in_features, generator=g)
             * math.sqrt(2 / m.out_features)), "first nn.Linear (400 → 100): fan_out in place of fan_in"),
    (_reinit(weight=lambda m, g: torch.nn.init.xavier_normal_(torch.empty_like(m.weight), generator=g)),
     "Xavier/Glorot"),
    (_reinit(weight=lambda m, g: torch.nn.init.trunc_normal_(
        torch.empty_like(m.weight), std=math.sqrt(2 / m.in_features), a=-2 * math.sqrt(2 / m.in_features),
        b=2 * math.sqrt(2 / m.in_features), generator=g)),
     "the first nn.Linear (400 → 100): draws a truncated normal"),
    (_reinit(weight=lambda m, g: torch.nn.init.kaiming_uniform_(torch.empty_like(m.weight), nonlinearity="relu",
                                                                generator=g)), "uniform, not normal"),
    (lambda model, g: torch.nn.Sequential(torch.nn.Linear(400, 100)), "does not have the layers it was given"),
])
def test_kaiming_reinit_typical_mistakes_are_named(answer, expected):
    result = check.kaiming_reinit.feedback(answer)
    assert not result.passed and result.written
    assert expected in result.message, result.message


def test_kaiming_reinit_an_answer_that_raises_and_the_stub():
    result = check.kaiming_reinit.feedback(lambda model, g: model[7])
    assert not result.passed and result.message.startswith("your function raised IndexError")
    stub = check.kaiming_reinit.feedback(_stub)
    assert not stub.passed and not stub.written
    assert check.kaiming_reinit.reference is init.kaiming_reinit


@pytest.mark.parametrize("answer", [
    lambda i, o, g: torch.nn.init.kaiming_normal_(torch.empty(o, i), nonlinearity="relu", generator=g),
    lambda i, o, g: torch.nn.init.normal_(torch.empty(o, i), 0.0, math.sqrt(2 / i), generator=g),
    lambda i, o, g: torch.empty(o, i).normal_(0.0, math.sqrt(2 / i), generator=g),
])
def test_kaiming_normal_from_nn_init_passes_with_a_note_and_fails_when_graded(answer, monkeypatch):
    result = check.kaiming_normal.feedback(answer)
    assert result.passed and set(result.shortcuts) & {"torch.Tensor.normal_", "torch.nn.init.normal_"}, result
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(AssertionError, match="forbids"):
        check.kaiming_normal.grade(answer)


def test_kaiming_normal_by_hand_calls_nothing_forbidden(monkeypatch):
    assert check.kaiming_normal.feedback(KAIMING).shortcuts == ()
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    check.kaiming_normal.grade(KAIMING)
    check.kaiming_normal.grade(init.kaiming_normal)
