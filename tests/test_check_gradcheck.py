"""The numerical gradient check of notebook 03 (helpers.check.gradcheck): right answers pass in
several styles, and each typical mistake is named."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from helpers import check
from helpers.check import gradcheck as ex


def _rel(dx, num):
    return ((dx - num).abs() / (dx.abs() + num.abs()).clamp(min=1e-8)).max().item()


def make(scheme="centred", restore=True, use_dout=True, divide=2.0, rel=_rel, dtype=None, step=None, default=1e-5):
    """A grad_check in CS231n's style (x perturbed in place), with one slip switched on."""
    def fn(f, x, dout, dx, h=default):
        h = h if step is None else step
        num = torch.zeros(x.shape) if dtype == "float32" else torch.zeros_like(x)
        weight = dout if use_dout else torch.ones_like(dout)
        for i in range(x.numel()):
            old = x.view(-1)[i].item()
            x.view(-1)[i] = old + h
            plus = (f(x) * weight).sum()
            x.view(-1)[i] = old - h
            minus = (f(x) * weight).sum()
            x.view(-1)[i] = old
            centre = (f(x) * weight).sum()
            if not restore:
                x.view(-1)[i] = old - h
            num.view(-1)[i] = {"centred": (plus - minus) / (divide * h), "forward": (plus - centre) / h,
                               "backward": (centre - minus) / h, "flipped": (minus - plus) / (2 * h)}[scheme]
        return num, rel(dx, num)
    fn.__signature__ = inspect.signature(fn).replace(parameters=[
        *list(inspect.signature(fn).parameters.values())[:4],
        inspect.Parameter("h", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default)])
    return fn


def numpy_style(f, x, dout, dx, h=1e-5):
    """On a copy, with numpy's nditer and rel_error as CS231n writes them."""
    xc = x.clone()
    num = torch.zeros_like(x)
    it = np.nditer(xc.numpy(), flags=["multi_index"])
    while not it.finished:
        i = it.multi_index
        old = xc[i].item()
        xc[i] = old + h
        plus = (f(xc) * dout).sum().item()
        xc[i] = old - h
        minus = (f(xc) * dout).sum().item()
        xc[i] = old
        num[i] = (plus - minus) / (2 * h)
        it.iternext()
    a, b = dx.numpy(), num.numpy()
    return num, float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def arithmetic_restore(f, x, dout, dx, h=1e-5):
    """x[i] += h, x[i] -= 2h, x[i] += h: restores x up to rounding, which the check accepts."""
    num = torch.zeros_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            x[i, j] += h
            plus = (f(x) * dout).sum()
            x[i, j] -= 2 * h
            minus = (f(x) * dout).sum()
            x[i, j] += h
            num[i, j] = (plus - minus) / (2 * h)
    return num, torch.max(torch.abs(dx - num) / torch.clamp(torch.abs(dx) + torch.abs(num), min=1e-8))


def test_the_exercise_is_exported():
    assert check.grad_check is ex.grad_check and ex.grad_check.name == "grad_check"


@pytest.mark.parametrize("fn", [make(), numpy_style, arithmetic_restore, make(default=1e-6), ex.grad_check.reference],
                         ids=["in place", "numpy", "arithmetic restore", "default 1e-6", "reference"])
def test_right_answers_pass(fn):
    result = ex.grad_check.feedback(fn)
    assert result.passed and not result.shortcuts, result.message


def test_the_reference_finds_the_true_gradient():
    f, x, dout, dx = ex._problem(11)
    num, rel = ex.grad_check.reference(f, x, dout, dx)
    assert rel < 1e-8 and torch.allclose(num, dx, atol=1e-8)


MISTAKES = [
    (make(scheme="forward"), "one-sided (forward) differences"),
    (make(scheme="backward"), "one-sided (backward) differences"),
    (make(divide=1.0), "divided by h instead of 2h"),
    (make(scheme="flipped"), "the sign is flipped"),
    (make(use_dout=False), "ignores dout"),
    (make(restore=False), "an entry stays perturbed (by up to"),
    (make(dtype="float32"), "num_dx is torch.float32, not float64"),
    (make(step=1e-5), "use the argument h, not a fixed step"),
    (make(default=1e-1), "your default h = 0.1 is too large"),
    (make(default=1e-12), "your default h = 1e-12 is too small"),
    (make(rel=lambda a, b: ((a - b).abs() / (a.abs() + b.abs())).max().item()), "rel_error is NaN"),
    (make(rel=lambda a, b: ((a - b).abs() / b.abs().clamp(min=1e-8)).max().item()), "divides by |num_dx| alone"),
    (make(rel=lambda a, b: ((a - b).abs() / a.abs().clamp(min=1e-8)).max().item()), "divides by |dx| alone"),
    (make(rel=lambda a, b: ((a - b).abs() / torch.maximum(a.abs(), b.abs()).clamp(min=1e-8)).max().item()),
     "divides by |dx| alone"),  # the same value here: |dx| is the larger at the wrong entry
    (make(rel=lambda a, b: ((a - b).abs() / (a.abs() + b.abs()).clamp(min=1e-8)).mean().item()),
     "averages the entry-wise errors"),
    (make(rel=lambda a, b: (a - b).abs().max().item()), "is the absolute error"),
    (make(rel=lambda a, b: ((a - b).norm() / (a.norm() + b.norm())).item()), "is a norm-wise error"),
    (make(rel=lambda a, b: ((a - b).abs() / (a + b).clamp(min=1e-8)).max().item()),
     "has no absolute values in the denominator"),
    (make(rel=lambda a, b: 2 * _rel(a, b)), "rel_error is "),
    (make(rel=lambda a, b: "small"), "rel_error should be a number"),
]


@pytest.mark.parametrize("fn,expected", MISTAKES, ids=[m for _, m in MISTAKES])
def test_mistakes_are_named(fn, expected):
    result = ex.grad_check.feedback(fn)
    assert not result.passed and result.written
    assert expected in result.message, result.message


def test_stub_wrong_returns_and_autograd():
    def stub(f, x, dout, dx, h=1e-5):
        raise NotImplementedError()

    assert not ex.grad_check.feedback(stub).written
    result = ex.grad_check.feedback(lambda f, x, dout, dx, h=1e-5: dx)
    assert not result.passed and "return two values" in result.message

    def by_autograd(f, x, dout, dx, h=1e-5):
        leaf = x.clone().requires_grad_()
        (num,) = torch.autograd.grad((f(leaf) * dout).sum(), leaf)
        return make()(f, x, dout, dx, h)[0] + 0 * num, _rel(dx, make()(f, x, dout, dx, h)[0])

    result = ex.grad_check.feedback(by_autograd)
    assert result.passed and result.shortcuts == ("torch.autograd.grad",)


def test_no_default_step_is_named():
    result = ex.grad_check.feedback(lambda f, x, dout, dx, h: make()(f, x, dout, dx, h))
    assert not result.passed and "give h a default value" in result.message
