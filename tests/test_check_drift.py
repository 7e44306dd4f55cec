"""The build-it-yourself exercises of notebook 02 (helpers.check.drift) and the compute function
they check against (helpers.drift.relu_stack_norms)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers import check
from helpers.check import drift as ex
from helpers.drift import relu_stack_norms
from helpers.initialization import hidden_weights, make_mlp, profile_model


def _stub(*args):
    raise NotImplementedError()


def _message(exercise, fn) -> str:
    result = exercise.feedback(fn)
    assert not result.passed
    return result.message


# --------------------------------------------------------------------------------------
# helpers.drift.relu_stack_norms
# --------------------------------------------------------------------------------------
def test_relu_stack_norms_is_the_forward_profile_of_make_mlp() -> None:
    model = make_mlp(2.0, depth=7, width=30, seed=3)
    x = torch.randn(16, 784, generator=torch.Generator().manual_seed(1))
    got = relu_stack_norms(hidden_weights(model), x)
    assert got.shape == (7,) and not got.requires_grad
    activations, _, _ = profile_model(model, x, torch.zeros(16, dtype=torch.long))
    np.testing.assert_allclose(got.numpy(), activations, rtol=1e-5)


def test_relu_stack_norms_by_hand() -> None:
    x = torch.tensor([[3.0, -4.0]], dtype=torch.float64)
    w1 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)   # 2 -> 3
    w2 = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)                       # 3 -> 1
    # h1 = relu([3, -4, -1]) = [3, 0, 0], ‖h1‖ = 3; h2 = relu(0) = 0
    assert relu_stack_norms([w1, w2], x).tolist() == [3.0, 0.0]


@pytest.mark.parametrize("weights, x, error, text", [
    ("w", torch.ones(2, 3), TypeError, "weights"),
    ([torch.ones(2, 3)], [[1.0, 2.0, 3.0]], TypeError, "x must be"),
    ([], torch.ones(2, 3), ValueError, "at least one"),
    ([torch.ones(2, 3)], torch.ones(3), ValueError, "2-D"),
    ([torch.ones(2, 4)], torch.ones(2, 3), ValueError, "weights[0]"),
    ([torch.ones(2, 3), torch.ones(2, 3)], torch.ones(5, 3), ValueError, "weights[1]"),
])
def test_relu_stack_norms_rejects_bad_arguments(weights, x, error, text) -> None:
    with pytest.raises(error, match=text.replace("[", r"\[").replace("]", r"\]")):
        relu_stack_norms(weights, x)


# --------------------------------------------------------------------------------------
# exercise 1: relu_stack_norms
# --------------------------------------------------------------------------------------
def _stack(x, weights, *, relu=True, pre=False, transpose=True, reduce=lambda h: h.norm(dim=1).mean(),
           include_input=False, shifted=False):
    out = [reduce(x)] if include_input else []
    h = x
    for w in weights:
        z = h @ (w.T if transpose else w)
        out.append(reduce(h) if shifted else reduce(z) if pre else None)
        h = torch.relu(z) if relu else z
        if not (pre or shifted):
            out[-1] = reduce(h)
    return torch.stack(out)


def test_stack_the_reference_and_a_float32_answer_pass() -> None:
    assert ex.relu_stack_norms.feedback(ex._reference_relu_stack_norms).passed
    assert ex.relu_stack_norms.feedback(lambda w, x: _stack(x.float(), [v.float() for v in w])).passed
    assert check.relu_stack_norms is ex.relu_stack_norms


@pytest.mark.parametrize("answer, text", [
    (lambda w, x: _stack(x, w, relu=False), "the ReLU is missing"),
    (lambda w, x: _stack(x, w, pre=True), "pre-activation"),
    (lambda w, x: _stack(x, w, transpose=False), "h @ W.T"),
    (lambda w, x: _stack(x, w, include_input=True), "includes the input's norm"),
    (lambda w, x: _stack(x, w)[:-1], "the last layer is missing"),
    (lambda w, x: _stack(x, w, shifted=True), "off by one layer"),
    (lambda w, x: _stack(x, w, reduce=lambda h: h.norm()), "Frobenius"),
    (lambda w, x: _stack(x, w, reduce=lambda h: h.pow(2).sum(dim=1).mean()), "averaged the squared norms"),
    (lambda w, x: _stack(x, w, reduce=lambda h: h.pow(2).sum(dim=1).mean().sqrt()), "RMS over examples"),
    (lambda w, x: _stack(x, w, reduce=lambda h: h.norm(dim=0).mean()), "along dim 0"),
    (lambda w, x: _stack(x, w, reduce=lambda h: h.norm(dim=1).sum()), "summed the norms"),
])
def test_stack_typical_mistakes_are_named(answer, text) -> None:
    assert text in _message(ex.relu_stack_norms, answer)


def test_stack_an_unknown_mistake_a_raise_and_the_stub() -> None:
    assert "differs from the right answer" in _message(ex.relu_stack_norms, lambda w, x: 1.1 * _stack(x, w))
    assert "should be a torch.Tensor" in _message(ex.relu_stack_norms, lambda w, x: _stack(x, w).tolist())

    def broken(w, x):
        return w[5]

    assert "raised IndexError" in _message(ex.relu_stack_norms, broken)
    result = ex.relu_stack_norms.feedback(_stub)
    assert not result.passed and not result.written


def test_stack_the_typical_mistakes_all_differ() -> None:
    weights, x = ex._stack_inputs()
    expected = ex._reference_relu_stack_norms(weights, x)
    outputs = [expected, *ex._stack_variants(weights, x).values()]
    for i, a in enumerate(outputs):
        for b in outputs[i + 1:]:
            assert (a - b).abs().max() > 1e-3


# --------------------------------------------------------------------------------------
# exercise 2: predicted_relu_norms
# --------------------------------------------------------------------------------------
def _prediction(gain, widths, input_norm, *, factor=None, width=None, shift=0, squared=False):
    """An answer ``input_norm · width_l · factor^(l + shift)``; the right one by default."""
    n = torch.tensor(widths, dtype=torch.float64)
    factor = math.sqrt(gain / 2) if factor is None else factor
    width = (n[1:] / n[0]).sqrt() if width is None else width(n)
    layers = torch.arange(1, len(widths), dtype=torch.float64)
    out = input_norm * width * factor ** (layers + shift)
    return out ** 2 if squared else out


def _by_layer(gain, widths, input_norm):
    """A right answer in another style: a loop over the layers, squared norms, NumPy."""
    squared, out = input_norm ** 2, []
    for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
        squared = squared * n_out * (gain / n_in) / 2
        out.append(math.sqrt(squared))
    return np.array(out)


def test_prediction_the_reference_a_float32_a_numpy_and_a_loop_answer_pass() -> None:
    assert ex.predicted_relu_norms.feedback(ex._reference_predicted_relu_norms).passed
    assert ex.predicted_relu_norms.feedback(lambda *a: _prediction(*a).float()).passed
    assert ex.predicted_relu_norms.feedback(lambda *a: _prediction(*a).numpy()).passed
    assert ex.predicted_relu_norms.feedback(_by_layer).passed
    assert ex.predicted_relu_norms.feedback(lambda *a: _by_layer(*a).tolist()).passed


def test_prediction_reference_is_the_theory_for_the_notebooks_mlp() -> None:
    from helpers.initialization_theory import relu_theory_norms
    got = ex._reference_predicted_relu_norms(1.7, [784] + [100] * 50, 9.3)
    assert torch.allclose(got, torch.from_numpy(relu_theory_norms(1.7, 50, 100, 9.3, in_features=784)), rtol=1e-9)


@pytest.mark.parametrize("bad", [[784], "784,100", [784, 0], [784, 100.5], [784, True]])
def test_prediction_reference_refuses_bad_widths(bad) -> None:
    with pytest.raises((TypeError, ValueError), match="widths"):
        ex._reference_predicted_relu_norms(2.0, bad, 1.0)


def _first_only(g, ws, x):
    return _prediction(g, ws, x, width=lambda n: (n[1] / n[0]).sqrt().expand(len(ws) - 1))


@pytest.mark.parametrize("answer, text", [
    (lambda g, ws, x: _prediction(g, ws, x, factor=math.sqrt(g)), "the ReLU's ½ is missing"),
    (lambda g, ws, x: _prediction(g, ws, x, factor=g / 2), "growth of the squared norm"),
    (lambda g, ws, x: _prediction(g, ws, x, squared=True), "predicted the squared norms"),
    (lambda g, ws, x: _prediction(g, ws, x, shift=-1), "not (gain/2)^((l−1)/2)"),
    (lambda g, ws, x: _prediction(g, ws, x, shift=1), "not (gain/2)^((l+1)/2)"),
    (_first_only, "the first layer's width ratio for every layer"),
    (lambda g, ws, x: _prediction(g, ws, x, width=lambda n: torch.ones(len(n) - 1)), "the widths are missing"),
    (lambda g, ws, x: _prediction(g, ws, x, width=lambda n: n[1:] / n[0]), "needs a square root"),
    (lambda g, ws, x: _prediction(g, ws, x, width=lambda n: (n[0] / n[1:]).sqrt()), "upside down: layer l"),
    (lambda g, ws, x: _prediction(g, ws, x, width=lambda n: (n[1:] / n[:-1]).sqrt()), "each layer's own ratio"),
    (lambda g, ws, x: _prediction(g, ws, x, width=lambda n: torch.cumprod((n[1:] / n[0]).sqrt(), 0)),
     "multiplied together"),
    (lambda g, ws, x: _prediction(g, ws, x, width=lambda n: (n[:-1] / n[0]).sqrt()), "the layer's input size"),
    (lambda g, ws, x: _prediction(g, ws, x, factor=math.sqrt(2 / g)), "not √(2/gain)"),
    (lambda g, ws, x: torch.cat([torch.tensor([x]), _prediction(g, ws, x)]), "extra first entry"),
])
def test_prediction_typical_mistakes_are_named(answer, text) -> None:
    assert text in _message(ex.predicted_relu_norms, answer)


def test_prediction_a_raise_and_the_stub() -> None:
    assert "raised ZeroDivisionError" in _message(ex.predicted_relu_norms, lambda *a: 1 / 0)
    assert "wrong shape" in _message(ex.predicted_relu_norms, lambda *a: _prediction(*a)[:3])
    assert not ex.predicted_relu_norms.feedback(_stub).written


# --------------------------------------------------------------------------------------
# exercise 3: rms_std_ratio
# --------------------------------------------------------------------------------------
def _rms(v, dim):
    return v.pow(2).mean(dim).sqrt()


def _std(v, dim):
    return v.std(dim, unbiased=False)


def test_ratio_the_reference_passes_and_relu_of_a_gaussian_gives_the_derived_value() -> None:
    assert ex.rms_std_ratio.feedback(ex._reference_rms_std_ratio).passed
    assert ex.rms_std_ratio.feedback(lambda v, d: _rms(v, d) / _std(v, d)).passed
    sample = torch.relu(torch.randn(400_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    assert abs(float(ex._reference_rms_std_ratio(sample, 0)) - math.sqrt(math.pi / (math.pi - 1))) < 5e-3


@pytest.mark.parametrize("answer, text", [
    (lambda v, d: _rms(v, d) / v.std(d), "unbiased std"),
    (lambda v, d: _std(v, d) / _rms(v, d), "upside down"),
    (lambda v, d: v.pow(2).mean(d) / _std(v, d), "needs a square root"),
    (lambda v, d: _rms(v, d) ** 2 / _std(v, d) ** 2, "squared ratio"),
    (lambda v, d: _rms(v - v.mean(d, keepdim=True), d) / _std(v, d), "you centred v"),
    (lambda v, d: v.abs().mean(d) / _std(v, d), "mean(|v|)"),
    (lambda v, d: v.mean(d) / _std(v, d), "mean(v)/std(v)"),
    (lambda v, d: _rms(v, -1) / _std(v, -1), "reduce over the dim you are given"),
    (lambda v, d: _rms(v, 1 - d) / _std(v, 1 - d), "you reduced over dim 0"),
    (lambda v, d: _rms(v.flatten(), 0) / _std(v.flatten(), 0), "is one number"),
])
def test_ratio_typical_mistakes_are_named(answer, text) -> None:
    assert text in _message(ex.rms_std_ratio, answer)


def test_ratio_a_raise_and_the_stub() -> None:
    assert "raised TypeError" in _message(ex.rms_std_ratio, lambda v, d: v.pow(2).mean(d, "x"))
    assert not ex.rms_std_ratio.feedback(_stub).written


# --------------------------------------------------------------------------------------
# inputs changed in place
# --------------------------------------------------------------------------------------
def _stack_relu_in_place(weights, x):  # relu_ on the input itself overwrites the caller's x
    norms, h = [], x.relu_()
    for w in weights:
        h = torch.relu(h @ w.T)
        norms.append(h.norm(dim=1).mean())
    return torch.stack(norms)


def _stack_replacing_weights(weights, x):
    norms, h = [], x
    for i, w in enumerate(weights):
        weights[i] = w.T.contiguous()  # "transposed once for all": the caller's list changes
        h = torch.relu(h @ weights[i])
        norms.append(h.norm(dim=1).mean())
    return torch.stack(norms)


def _ratio_centring_in_place(values, dim):
    rms = values.pow(2).mean(dim).sqrt()
    values -= values.mean(dim, keepdim=True)
    return rms / values.pow(2).mean(dim).sqrt()


@pytest.mark.parametrize("exercise, answer, text", [
    (ex.relu_stack_norms, _stack_relu_in_place, "your function changed its input x in place"),
    (ex.relu_stack_norms, _stack_replacing_weights, "your function changed its input weights in place"),
    (ex.rms_std_ratio, _ratio_centring_in_place, "your function changed its input values in place; "
                                                 "return a new tensor instead"),
])
def test_an_input_changed_in_place_is_named(exercise, answer, text) -> None:
    assert _message(exercise, answer).startswith(text)
