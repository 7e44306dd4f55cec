"""The exercises of notebook 03 (helpers.check.norms): right answers pass, typical mistakes are named."""

from __future__ import annotations

import pytest
import torch

from helpers import check
from helpers.check import norms as ex


def _stub(*args, **kwargs):
    raise NotImplementedError()


def _std(x, dim, eps, unbiased=False):
    return (x - x.mean(dim, keepdim=True)) / torch.sqrt(x.var(dim, unbiased=unbiased, keepdim=True) + eps)


def test_the_exercises_are_exported() -> None:
    for name in ("layer_norm", "layer_norm_backward", "batch_norm"):
        assert getattr(check, name) is getattr(ex, name)
        assert getattr(check, name).name == name


# -- LayerNorm forward ------------------------------------------------------------------------
def ln_right(x, gamma, beta, eps=1e-5):
    return _std(x, -1, eps) * gamma + beta


def ln_right_other_formula(x, gamma, beta, eps=1e-5):  # mean of squares, written differently
    centred = x - x.mean(-1, keepdim=True)
    return centred * torch.rsqrt((centred**2).mean(-1, keepdim=True) + eps) * gamma + beta


LN_MISTAKES = [
    (lambda x, g, b, eps=1e-5: _std(x, 0, eps) * g + b, "normalised over dim 0"),
    (lambda x, g, b, eps=1e-5: _std(x, -1, eps, unbiased=True) * g + b, "unbiased variance"),
    (lambda x, g, b, eps=1e-5: _std(x, -1, 0.0) * g + b, "missing ε"),
    (lambda x, g, b, eps=1e-5: (x - x.mean(-1, keepdim=True)) / (x.std(-1, unbiased=False, keepdim=True) + eps) * g + b,
     "ε outside the root"),
    (lambda x, g, b, eps=1e-5: _std(x, -1, eps), "γ and β are not applied"),
    (lambda x, g, b, eps=1e-5: _std(x, -1, eps) * g, "β is not added"),
    (lambda x, g, b, eps=1e-5: _std(x, -1, eps) + b, "γ is not applied"),
    (lambda x, g, b, eps=1e-5: _std(x, -1, eps) * b + g, "γ and β swapped"),
    (lambda x, g, b, eps=1e-5: _std(x, 1, eps) * g + b, "normalised over dim 1 instead of the last dim"),
    (lambda x, g, b, eps=1e-5: _std(x, tuple(range(1, x.dim())), eps) * g + b,
     "normalised over all dims but the first"),
    (lambda x, g, b, eps=1e-5: ln_right(x, g, b, eps)[..., :-1], "wrong shape"),
    # the Annotated Transformer's LayerNorm: unbiased x.std() with ε added outside the root
    (lambda x, g, b, eps=1e-5: g * (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + eps) + b,
     "uses x.std() (unbiased, n−1) with ε added outside the square root, as the Annotated Transformer does; "
     "LayerNorm uses the biased variance inside: √(var + ε)"),
    (lambda x, g, b, eps=1e-5: g * (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + 1e-6) + b,
     "uses x.std() (unbiased, n−1) without the eps argument"),
    (lambda x, g, b, eps=1e-5: g * (x - x.mean(-1, keepdim=True)) / x.std(-1, keepdim=True) + b,
     "uses x.std() (unbiased, n−1) without the eps argument"),
    # its two halves on their own
    (lambda x, g, b, eps=1e-5: g * (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + eps) + b,
     "unbiased variance (divides by n − 1)"),
    (lambda x, g, b, eps=1e-5: g * (x - x.mean(-1, keepdim=True)) / (x.std(-1, correction=0, keepdim=True) + eps) + b,
     "ε outside the root"),
    (lambda x, g, b, eps=1e-5: ln_right(x, g, b, eps) + 1e-3, "differs from the right answer at [0, 0]"),
]


@pytest.mark.parametrize("fn", [ln_right, ln_right_other_formula])
def test_layer_norm_right_answers_pass(fn) -> None:
    assert ex.layer_norm.feedback(fn).passed
    assert ex.layer_norm.feedback(ex.layer_norm.reference).passed


@pytest.mark.parametrize("fn,expected", LN_MISTAKES)
def test_layer_norm_mistakes_are_named(fn, expected) -> None:
    result = ex.layer_norm.feedback(fn)
    assert not result.passed and result.written
    assert expected in result.message, result.message


def test_layer_norm_stub_and_raising_answer() -> None:
    assert not ex.layer_norm.feedback(_stub).written

    def broken(x, gamma, beta, eps=1e-5):
        return x.mean(dim=5)

    result = ex.layer_norm.feedback(broken)
    assert not result.passed and result.written and "raised IndexError" in result.message


# -- LayerNorm backward -----------------------------------------------------------------------
def _parts(dout, x, gamma, eps):
    rstd = 1 / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + eps)
    x_hat = (x - x.mean(-1, keepdim=True)) * rstd
    return rstd, x_hat, dout * gamma


def bw_right(dout, x, gamma, eps=1e-5):
    rstd, x_hat, g = _parts(dout, x, gamma, eps)
    dx = rstd * (g - g.mean(-1, keepdim=True) - x_hat * (g * x_hat).mean(-1, keepdim=True))
    return dx, (dout * x_hat).sum(0), dout.sum(0)


def bw_autograd(dout, x, gamma, eps=1e-5):  # a student may also use autograd on their forward
    x, gamma = x.clone().requires_grad_(), gamma.clone().requires_grad_()
    beta = torch.zeros_like(gamma, requires_grad=True)
    (ln_right(x, gamma, beta, eps) * dout).sum().backward()
    return x.grad, gamma.grad, beta.grad


def _bw_with(dx=None, dgamma=None, dbeta=None):
    def fn(dout, x, gamma, eps=1e-5):
        rstd, x_hat, g = _parts(dout, x, gamma, eps)
        right = bw_right(dout, x, gamma, eps)
        env = dict(dout=dout, x=x, gamma=gamma, eps=eps, rstd=rstd, x_hat=x_hat, g=g)
        return tuple(right[i] if f is None else f(**env) for i, f in enumerate((dx, dgamma, dbeta)))
    return fn


def _mean(t):
    return t.mean(-1, keepdim=True)


BW_MISTAKES = [
    (_bw_with(dx=lambda rstd, g, **_: rstd * g), "dx treats the mean and the variance as constants"),
    (_bw_with(dx=lambda rstd, g, **_: rstd * (g - _mean(g))), "dx is missing the gradient through the variance"),
    (_bw_with(dx=lambda rstd, g, x_hat, **_: rstd * (g - x_hat * _mean(g * x_hat))),
     "dx is missing the gradient through the mean"),
    (_bw_with(dx=lambda rstd, dout, x_hat, **_: rstd * (dout - _mean(dout) - x_hat * _mean(dout * x_hat))),
     "dx is missing γ"),
    (_bw_with(dx=lambda dout, x, gamma, **_: bw_right(dout, x, gamma, 0.0)[0]), "dx is missing ε"),
    (_bw_with(dx=lambda rstd, g, x_hat, **_: 1.01 * rstd * (g - _mean(g) - x_hat * _mean(g * x_hat))),
     "dx differs from the right answer at [0, 0]"),
    (_bw_with(dgamma=lambda dout, x_hat, **_: (dout * x_hat).sum(-1)),
     "dgamma has shape (4,): summed over the last dim"),
    (_bw_with(dbeta=lambda dout, **_: dout.sum(-1)), "dbeta has shape (4,): summed over the last dim"),
    (_bw_with(dgamma=lambda dout, x_hat, **_: dout * x_hat), "dgamma has the shape of x"),
    (_bw_with(dgamma=lambda dout, **_: dout.sum(0)), "dgamma is missing x̂"),
    (_bw_with(dgamma=lambda dout, x, **_: (dout * x).sum(0)), "dgamma uses x instead of x̂"),
    (_bw_with(dbeta=lambda dout, **_: dout.mean(0)), "dbeta is the mean of dout"),
    (lambda dout, x, gamma, eps=1e-5: (lambda r: (r[0], r[2], r[1]))(bw_right(dout, x, gamma, eps)),
     "dgamma and dbeta are swapped"),
    (lambda dout, x, gamma, eps=1e-5: bw_right(dout, x, gamma, eps)[0], "return three tensors"),
]


@pytest.mark.parametrize("fn", [bw_right, bw_autograd])
def test_layer_norm_backward_right_answers_pass(fn) -> None:
    assert ex.layer_norm_backward.feedback(fn).passed
    assert ex.layer_norm_backward.feedback(ex.layer_norm_backward.reference).passed


@pytest.mark.parametrize("fn,expected", BW_MISTAKES)
def test_layer_norm_backward_mistakes_are_named(fn, expected) -> None:
    result = ex.layer_norm_backward.feedback(fn)
    assert not result.passed and result.written
    assert expected in result.message, result.message


def test_layer_norm_backward_names_autograd_and_the_index() -> None:
    def off_at_one_entry(dout, x, gamma, eps=1e-5):
        dx, dgamma, dbeta = bw_right(dout, x, gamma, eps)
        dx = dx.clone()
        dx[2, 3] += 0.5
        return dx, dgamma, dbeta

    message = ex.layer_norm_backward.feedback(off_at_one_entry).message
    assert "dx differs from the right answer at [2, 3]" in message and "autograd in float64" in message


def test_layer_norm_backward_stub_and_raising_answer() -> None:
    assert not ex.layer_norm_backward.feedback(_stub).written

    def broken(dout, x, gamma, eps=1e-5):
        return dout @ x, None, None

    result = ex.layer_norm_backward.feedback(broken)
    assert not result.passed and "raised RuntimeError" in result.message


# -- BatchNorm forward, training mode ---------------------------------------------------------
def _per_channel(p, x):
    return p.reshape(1, -1, *([1] * (x.dim() - 2)))


def _dims(x):
    return (0, *range(2, x.dim()))


def bn_right(x, gamma, beta, eps=1e-5):
    return _std(x, _dims(x), eps) * _per_channel(gamma, x) + _per_channel(beta, x)


def bn_with_torch(x, gamma, beta, eps=1e-5):
    return torch.nn.functional.batch_norm(x, None, None, gamma, beta, training=True, eps=eps)


def _bn(dims, eps_used=None, unbiased=False, affine=True):
    def fn(x, gamma, beta, eps=1e-5):
        y = _std(x, dims(x), eps if eps_used is None else eps_used, unbiased)
        return y * _per_channel(gamma, x) + _per_channel(beta, x) if affine else y
    return fn


BN_MISTAKES = [
    (_bn(lambda x: tuple(range(1, x.dim()))), "normalised each example"),
    (_bn(_dims, unbiased=True), "unbiased variance"),
    (_bn(_dims, eps_used=0.0), "missing ε"),
    (_bn(_dims, affine=False), "γ and β are not applied"),
    (_bn(lambda x: tuple(range(x.dim()))), "one mean and variance for the whole tensor"),
    (lambda x, g, b, eps=1e-5: bn_right(x, b, g, eps), "γ and β swapped"),
    (lambda x, g, b, eps=1e-5: (x - x.mean(_dims(x), keepdim=True))
     / (x.std(_dims(x), unbiased=False, keepdim=True) + eps)
     * _per_channel(g, x) + _per_channel(b, x), "ε outside the root"),
    # right on (N, C), wrong on (N, C, H, W):
    (_bn(lambda x: 0), "normalised over the batch only (one mean per channel and position)"),
    (_bn(lambda x: (2, 3) if x.dim() == 4 else 0), "(InstanceNorm)"),
    (lambda x, g, b, eps=1e-5: _std(x, 0, eps) * g + b, "works on (N, C) but raised RuntimeError"),
    (lambda x, g, b, eps=1e-5: bn_right(x, g, b, eps)[:, :2], "wrong shape"),
    (lambda x, g, b, eps=1e-5: (x - x.mean(_dims(x), keepdim=True)) / (x.std(_dims(x), keepdim=True) + eps)
     * _per_channel(g, x) + _per_channel(b, x),
     "uses x.std() (unbiased, n−1) with ε added outside the square root; training-mode BatchNorm normalises "
     "with the biased variance inside: √(var + ε)"),
    (lambda x, g, b, eps=1e-5: (x - x.mean(_dims(x), keepdim=True)) / x.std(_dims(x), keepdim=True)
     * _per_channel(g, x) + _per_channel(b, x), "uses x.std() (unbiased, n−1) without the eps argument"),
]


@pytest.mark.parametrize("fn", [bn_right, bn_with_torch])
def test_batch_norm_right_answers_pass(fn) -> None:
    assert ex.batch_norm.feedback(fn).passed
    assert ex.batch_norm.feedback(ex.batch_norm.reference).passed


@pytest.mark.parametrize("fn,expected", BN_MISTAKES)
def test_batch_norm_mistakes_are_named(fn, expected) -> None:
    result = ex.batch_norm.feedback(fn)
    assert not result.passed and result.written
    assert expected in result.message, result.message


def test_batch_norm_stub_and_raising_answer() -> None:
    assert not ex.batch_norm.feedback(_stub).written

    def broken(x, gamma, beta, eps=1e-5):
        return x.mean(dim=(0, 2, 3))  # only works on 4-D input

    result = ex.batch_norm.feedback(broken)
    assert not result.passed and result.written
    assert "raised IndexError on an (N, C) = (5, 3) input" in result.message, result.message


def test_the_reference_falls_back_for_a_wrong_answer(capsys) -> None:
    chosen = ex.batch_norm(_bn(_dims, unbiased=True))
    assert chosen is ex.batch_norm.reference
    assert "use the course's own batch_norm" in capsys.readouterr().out


# -- inputs changed in place -------------------------------------------------------------------
def ln_centring_in_place(x, gamma, beta, eps=1e-5):  # right values: it used to pass
    x -= x.mean(-1, keepdim=True)
    return x / torch.sqrt((x ** 2).mean(-1, keepdim=True) + eps) * gamma + beta


def ln_unsqueezing_gamma(x, gamma, beta, eps=1e-5):  # right values; the caller's gamma becomes (1, 6)
    gamma.unsqueeze_(0)
    return _std(x, -1, eps) * gamma + beta


def bn_centring_in_place(x, gamma, beta, eps=1e-5):
    x.sub_(x.mean(_dims(x), keepdim=True))
    return x / torch.sqrt((x ** 2).mean(_dims(x), keepdim=True) + eps) * _per_channel(gamma, x) + _per_channel(beta, x)


def bw_dout_in_place(dout, x, gamma, eps=1e-5):
    rstd, x_hat, _ = _parts(dout, x, gamma, eps)
    dbeta, dgamma = dout.sum(0), (dout * x_hat).sum(0)
    dout *= gamma
    dx = rstd * (dout - _mean(dout) - x_hat * _mean(dout * x_hat))
    return dx, dgamma, dbeta


@pytest.mark.parametrize("exercise, fn, expected", [
    (ex.layer_norm, ln_centring_in_place, "your function changed its input x in place; return a new tensor instead"),
    (ex.layer_norm, ln_unsqueezing_gamma, "your function changed its input gamma in place"),
    (ex.batch_norm, bn_centring_in_place, "your function changed its input x in place"),
    (ex.layer_norm_backward, bw_dout_in_place, "your function changed its input dout in place"),
])
def test_an_input_changed_in_place_is_named(exercise, fn, expected) -> None:
    result = exercise.feedback(fn)
    assert not result.passed and result.written
    assert result.message.startswith(expected), result.message


# -- the calls each task forbids ---------------------------------------------------------------
def ln_by_torch(x, gamma, beta, eps=1e-5):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), gamma, beta, eps)


def ln_by_module(x, gamma, beta, eps=1e-5):
    layer = torch.nn.LayerNorm(x.shape[-1], eps=eps).double()
    with torch.no_grad():
        layer.weight.copy_(gamma)
        layer.bias.copy_(beta)
        return layer(x)


@pytest.mark.parametrize("exercise, fn, call", [
    (ex.layer_norm, ln_by_torch, "torch.nn.functional.layer_norm"),
    (ex.layer_norm, ln_by_module, "torch.nn.functional.layer_norm"),
    (ex.layer_norm_backward, bw_autograd, "torch.Tensor.backward"),
    (ex.batch_norm, bn_with_torch, "torch.nn.functional.batch_norm"),
])
def test_a_right_answer_through_a_forbidden_call_passes_with_a_note(exercise, fn, call) -> None:
    result = exercise.feedback(fn)
    assert result.passed and result.shortcuts == (call,), result
    assert f"Correct, but it calls {call}" in str(result)


@pytest.mark.parametrize("exercise, fn", [(ex.layer_norm, ln_right), (ex.layer_norm_backward, bw_right),
                                          (ex.batch_norm, bn_right)])
def test_answers_by_hand_call_nothing_forbidden(exercise, fn) -> None:
    result = exercise.feedback(fn)
    assert result.passed and not result.shortcuts
