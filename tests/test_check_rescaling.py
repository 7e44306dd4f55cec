"""Notebook 02's design exercise (rescale every layer once, on data) and its concept questions
(helpers.check.rescaling)."""

from __future__ import annotations

import math

import pytest
import torch

from helpers import check
from helpers.check import rescaling


def _stub(*args, **kwargs):
    raise NotImplementedError()


def _layerwise(statistic, sequential=True, before_relu=False):
    """An answer dividing each layer by ``statistic`` of its output (or pre-activation)."""
    def answer(weights, x):
        out, h = [], x
        for w in weights:
            z = h @ w.T
            r = torch.relu(z)
            a = 1.0 / statistic(z if before_relu else r)
            out.append(w * a)
            h = r * a if sequential else r
        return out
    return answer


def _rms(h):
    return h.pow(2).mean().sqrt()


def _recompute(weights, x):
    """A right answer in another style: rescale, then run the whole prefix again for every layer."""
    out = []
    for w in weights:
        h = x
        for v in out:
            h = torch.relu(h @ v.T)
        out.append(w / torch.relu(h @ w.T).square().mean().sqrt())
    return out


@pytest.mark.parametrize("answer", [
    rescaling.reference_rescale_weights,
    _layerwise(_rms),
    _recompute,
    lambda ws, x: tuple(w.float() for w in rescaling.reference_rescale_weights(ws, x)),   # float32, a tuple
])
def test_rescale_weights_right_answers_pass(answer):
    result = check.rescale_weights.feedback(answer)
    assert result.passed, result.message


def _in_place(weights, x):
    h = x
    for w in weights:
        h = torch.relu(h @ w.T)
        a = 1 / _rms(h)
        w.mul_(a)
        h = h * a
    return weights


def _per_unit(weights, x):
    out, h = [], x
    for w in weights:
        r = torch.relu(h @ w.T)
        a = 1 / (r.pow(2).mean(dim=0).sqrt() + 1e-12)       # one factor per unit (row of W)
        out.append(w * a[:, None])
        h = r * a
    return out


@pytest.mark.parametrize(("answer", "expected"), [
    (_layerwise(_rms, sequential=False), "computed on the original network"),
    (_layerwise(lambda h: h.std()), "std 1, not mean square 1: a ReLU output is not centred"),
    (_layerwise(lambda h: h.std(unbiased=False)), "std 1 (population std)"),
    (_layerwise(_rms, before_relu=True), "pre-activation"),
    (_layerwise(lambda h: h.pow(2).mean()), "not by its square root"),
    (_layerwise(lambda h: h.norm(dim=1).mean()), "each example's norm"),
    (_layerwise(lambda h: h.abs().max()), "largest entry"),
    (_layerwise(lambda h: 2 * _rms(h)), "layer 1's output has mean square 0.25"),
    (_in_place, "changed its input weights in place"),
    (_per_unit, "times one number"),
    (lambda ws, x: [-w for w in rescaling.reference_rescale_weights(ws, x)], "must be positive"),
    (lambda ws, x: torch.stack([w.norm() for w in ws]), "list of weight matrices"),
    (lambda ws, x: rescaling.reference_rescale_weights(ws, x)[:-1], "one rescaled matrix per layer"),
    (lambda ws, x: [w.T for w in rescaling.reference_rescale_weights(ws, x)], "expected a tensor of shape"),
])
def test_rescale_weights_typical_mistakes_are_named(answer, expected):
    result = check.rescale_weights.feedback(answer)
    assert not result.passed and result.written
    assert expected in result.message, result.message


def test_rescale_weights_stub_is_not_written():
    assert not check.rescale_weights.feedback(_stub).written


def test_the_reference_levels_every_layer_and_keeps_the_network():
    weights, x = rescaling._rescale_inputs()
    new = rescaling.reference_rescale_weights(weights, x)
    h, h_old = x, x
    for w, w_old in zip(new, weights, strict=True):
        h, h_old = torch.relu(h @ w.T), torch.relu(h_old @ w_old.T)
        assert math.isclose(float(h.pow(2).mean()), 1.0, rel_tol=1e-9)
        ratio = h / h_old                                   # the same function up to a positive factor
        assert float(ratio[h_old > 0].std()) < 1e-9


@pytest.mark.parametrize(("question", "right", "wrong"), [
    (rescaling.q02_product_growth, 5.5, [1.0, 30, 0.5, 2.7]),
    (rescaling.q02_float16_steps, 16, [8, 32, 65504]),
    (rescaling.q02_layernorm_norm, 10, [1, 100, 0]),
    (rescaling.q02_critical_scale, 0.1, [1, 0.01, 1 / math.sqrt(30)]),
])
def test_questions_accept_the_answer_and_name_wrong_ones(question, right, wrong):
    assert question.feedback(right).passed
    assert not question.feedback(None).written
    for value in wrong:
        result = question.feedback(value)
        assert not result.passed and result.message, value
