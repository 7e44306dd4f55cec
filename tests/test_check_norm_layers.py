"""Notebook 03's BatchNorm-as-a-layer exercises and questions (helpers.check.norm_layers): right
answers pass in several styles, each typical mistake is named."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from helpers import check
from helpers.check import norm_layers as ex
from helpers.check.feedback import Question

EXERCISES = ("batch_norm_backward", "batch_norm_step", "evaluate", "layer_norm_module")
QUESTIONS = [name for name in ex.__all__ if name.startswith("q03_")]


def _stub(*args, **kwargs):
    raise NotImplementedError()


def test_the_exercises_and_questions_are_exported():
    for name in (*EXERCISES, *QUESTIONS):
        assert getattr(check, name) is getattr(ex, name)
    assert len(QUESTIONS) == 6 and all(isinstance(getattr(ex, q), Question) for q in QUESTIONS)


@pytest.mark.parametrize("name", EXERCISES)
def test_references_pass_and_stubs_are_unwritten(name):
    exercise = getattr(ex, name)
    assert exercise.feedback(exercise.reference).passed
    assert not exercise.feedback(_stub).written


# -- BatchNorm backward -----------------------------------------------------------------------
def bw_right(dout, x, gamma, eps=1e-5):
    n = x.shape[0]
    mu = x.mean(0)
    var = ((x - mu) ** 2).sum(0) / n
    inv = (var + eps) ** -0.5
    x_hat = (x - mu) * inv
    dx_hat = dout * gamma
    dvar = (dx_hat * (x - mu) * -0.5 * inv**3).sum(0)
    dmu = (-dx_hat * inv).sum(0) + dvar * (-2 * (x - mu)).mean(0)
    return dx_hat * inv + dvar * 2 * (x - mu) / n + dmu / n, (dout * x_hat).sum(0), dout.sum(0)


def bw_autograd(dout, x, gamma, eps=1e-5):
    x, gamma = x.clone().requires_grad_(), gamma.clone().requires_grad_()
    beta = torch.zeros_like(gamma, requires_grad=True)
    F.batch_norm(x, None, None, gamma, beta, training=True, eps=eps).backward(dout)
    return x.grad, gamma.grad, beta.grad


def _bw(dx=None, dgamma=None, dbeta=None):
    def fn(dout, x, gamma, eps=1e-5):
        right = ex._reference_batch_norm_backward(dout, x, gamma, eps)
        r = 1 / torch.sqrt(x.var(0, unbiased=False, keepdim=True) + eps)
        env = dict(dout=dout, x=x, gamma=gamma, eps=eps, r=r, x_hat=(x - x.mean(0)) * r, g=dout * gamma)
        return tuple(right[i] if f is None else f(**env) for i, f in enumerate((dx, dgamma, dbeta)))
    return fn


def _m(t, dim=0):
    return t.mean(dim, keepdim=True)


BW_MISTAKES = [
    (_bw(dx=lambda r, g, **_: r * g), "treats the batch mean and variance as constants"),
    (_bw(dx=lambda r, g, **_: r * (g - _m(g))), "missing the gradient through the batch variance"),
    (_bw(dx=lambda r, g, x_hat, **_: r * (g - x_hat * _m(g * x_hat))), "missing the gradient through the batch mean"),
    (_bw(dx=lambda r, g, x_hat, **_: r * (g - _m(g, 1) - x_hat * _m(g * x_hat, 1))), "average over the features"),
    (_bw(dx=lambda dout, x, gamma, eps, **_: _ln_dx(dout, x, gamma, eps)), "dx is LayerNorm's gradient"),
    (_bw(dx=lambda dout, x, gamma, eps, **_: _unbiased_dx(dout, x, gamma, eps)), "dx uses the unbiased variance"),
    (_bw(dx=lambda r, g, x, **_: r * (g - _m(g)) - r**3 * (x - _m(x)) * (g * (x - _m(x))).sum(0, keepdim=True)
         / (x.shape[0] - 1)), "variance term divides by N − 1"),
    (_bw(dx=lambda r, dout, x_hat, **_: r * (dout - _m(dout) - x_hat * _m(dout * x_hat))), "dx is missing γ"),
    (_bw(dx=lambda dout, x, gamma, **_: ex._reference_batch_norm_backward(dout, x, gamma, 0.0)[0]), "dx is missing ε"),
    (_bw(dgamma=lambda dout, x_hat, **_: (dout * x_hat).sum(1)), "dgamma has shape (5,): summed over the channels"),
    (_bw(dbeta=lambda dout, **_: dout.sum(1)), "dbeta has shape (5,)"),
    (_bw(dbeta=lambda dout, **_: dout), "dbeta has the shape of x"),
    (_bw(dgamma=lambda dout, **_: dout.sum(0)), "dgamma is missing x̂"),
    (_bw(dgamma=lambda dout, x, **_: (dout * x).sum(0)), "dgamma uses x instead of x̂"),
    (_bw(dgamma=lambda dout, x_hat, **_: (dout * x_hat).mean(0)), "dgamma is the mean"),
    (_bw(dbeta=lambda dout, **_: dout.mean(0)), "dbeta is the mean of dout"),
    (_bw(dgamma=lambda dout, **_: dout.sum(0), dbeta=lambda dout, x_hat, **_: (dout * x_hat).sum(0)), "swapped"),
    (_bw(dx=lambda r, g, x_hat, **_: r * (g - _m(g) - x_hat * _m(g * x_hat)) + 1e-3), "dx differs"),
    (lambda dout, x, gamma, eps=1e-5: bw_right(dout, x, gamma, eps)[:2], "return three tensors"),
]


def _ln_dx(dout, x, gamma, eps):
    r = 1 / torch.sqrt(x.var(1, unbiased=False, keepdim=True) + eps)
    h, g = (x - x.mean(1, keepdim=True)) * r, dout * gamma
    return r * (g - _m(g, 1) - h * _m(g * h, 1))


def _unbiased_dx(dout, x, gamma, eps):
    x = x.clone().requires_grad_()
    ((x - x.mean(0)) / torch.sqrt(x.var(0) + eps) * gamma).backward(dout)
    return x.grad


@pytest.mark.parametrize("fn", [bw_right, ex._reference_batch_norm_backward])
def test_batch_norm_backward_right_answers_pass(fn):
    result = ex.batch_norm_backward.feedback(fn)
    assert result.passed and not result.shortcuts, result.message


def test_batch_norm_backward_by_autograd_is_a_shortcut():
    result = ex.batch_norm_backward.feedback(bw_autograd)
    assert result.passed and "torch.Tensor.backward" in result.shortcuts
    assert "torch.nn.functional.batch_norm" in result.shortcuts


@pytest.mark.parametrize("fn,expected", BW_MISTAKES, ids=[m for _, m in BW_MISTAKES])
def test_batch_norm_backward_mistakes_are_named(fn, expected):
    result = ex.batch_norm_backward.feedback(fn)
    assert not result.passed and result.written
    assert expected in result.message, result.message


def test_batch_norm_backward_in_place():
    def in_place(dout, x, gamma, eps=1e-5):
        x -= x.mean(0)
        return bw_right(dout, x, gamma, eps)
    result = ex.batch_norm_backward.feedback(in_place)
    assert not result.passed and "in place" in result.message


# -- BatchNorm with running statistics --------------------------------------------------------
def step_with(train_norm="biased", rm_rule="right", rv_var="unbiased", rv_rule="right", eval_norm="running",
              eval_update=False, momentum_fixed=None, in_place=False):
    """A batch_norm_step written out, with one slip switched on."""
    def fn(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
        m = momentum if momentum_fixed is None else momentum_fixed
        mean, biased, unbiased = x.mean(0), x.var(0, unbiased=False), x.var(0, unbiased=True)
        batch_var = unbiased if rv_var == "unbiased" else biased

        def update(run, stat, rule):
            return {"right": (1 - m) * run + m * stat, "reversed": m * run + (1 - m) * stat,
                    "none": run, "replace": stat}[rule]

        if training or eval_update:
            new_mean, new_var = update(running_mean, mean, rm_rule), update(running_var, batch_var, rv_rule)
        else:
            new_mean, new_var = running_mean, running_var
        if in_place:
            running_mean.copy_(new_mean)
            running_var.copy_(new_var)
        if training:
            mu, var = {"biased": (mean, biased), "unbiased": (mean, unbiased), "running": (running_mean, running_var),
                       "new": (new_mean, new_var)}[train_norm]
        else:
            mu, var = {"running": (running_mean, running_var), "batch": (mean, biased)}[eval_norm]
        return (x - mu) / torch.sqrt(var + eps) * gamma + beta, new_mean, new_var
    return fn


def step_module(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """A right answer through a small class of one's own (running stats kept on the object)."""
    class BN:
        def __init__(self):
            self.rm, self.rv = running_mean.clone(), running_var.clone()

        def __call__(self, x):
            if not training:
                return (x - self.rm) / (self.rv + eps).sqrt() * gamma + beta
            n = x.shape[0]
            mu = x.sum(0) / n
            var = ((x - mu) ** 2).sum(0) / n
            self.rm = self.rm + momentum * (mu - self.rm)
            self.rv = self.rv + momentum * (var * n / (n - 1) - self.rv)
            return (x - mu) / (var + eps).sqrt() * gamma + beta

    layer = BN()
    out = layer(x)
    return out, layer.rm, layer.rv


def step_by_torch(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    rm, rv = running_mean.clone(), running_var.clone()
    return F.batch_norm(x, rm, rv, gamma, beta, training=training, momentum=momentum, eps=eps), rm, rv


@pytest.mark.parametrize("fn", [step_with(), step_module])
def test_batch_norm_step_right_answers_pass(fn):
    result = ex.batch_norm_step.feedback(fn)
    assert result.passed and not result.shortcuts, result.message


def test_batch_norm_step_by_torch_is_a_shortcut():
    result = ex.batch_norm_step.feedback(step_by_torch)
    assert result.passed and result.shortcuts == ("torch.nn.functional.batch_norm",)


STEP_MISTAKES = [
    (step_with(rv_var="biased"), "running_var is updated with the biased batch variance"),
    (step_with(rm_rule="reversed"), "running_mean moves the wrong way"),
    (step_with(rv_rule="reversed"), "running_var moves the wrong way"),
    (step_with(rv_rule="reversed", rv_var="biased"), "running_var moves the wrong way (running"),
    (step_with(rm_rule="none"), "running_mean is not updated in training mode"),
    (step_with(rv_rule="none"), "running_var is not updated in training mode"),
    (step_with(rm_rule="replace"), "running_mean is replaced by the batch mean"),
    (step_with(rv_rule="replace"), "running_var is replaced by the batch variance"),
    (step_with(momentum_fixed=0.1), "running_mean uses momentum 0.1"),
    (step_with(train_norm="unbiased"), "training mode normalizes with the unbiased batch variance"),
    (step_with(train_norm="running"), "training mode normalizes with the batch's own statistics"),
    (step_with(train_norm="new"), "training mode normalizes with the batch's own statistics"),
    (step_with(eval_norm="batch"), "eval mode still uses the batch's statistics"),
    (step_with(eval_update=True), "eval mode changes the running statistics"),
    (step_with(in_place=True), "changed its inputs running_mean and running_var in place"),
]


@pytest.mark.parametrize("fn,expected", STEP_MISTAKES, ids=[m for _, m in STEP_MISTAKES])
def test_batch_norm_step_mistakes_are_named(fn, expected):
    result = ex.batch_norm_step.feedback(fn)
    assert not result.passed and result.written
    assert expected in result.message, result.message


def test_batch_norm_step_eval_eps_slips_are_named():
    def no_eps(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
        out, rm, rv = ex._reference_batch_norm_step(x, gamma, beta, running_mean, running_var, training, momentum, eps)
        if not training:
            out = (x - running_mean) / running_var.sqrt() * gamma + beta
        return out, rm, rv
    result = ex.batch_norm_step.feedback(no_eps)
    assert not result.passed and "eval mode is missing ε" in result.message and "eval mode" in result.message


# -- Debugging: evaluate ----------------------------------------------------------------------
def evaluate_buggy(model, x, y, batch_size=100):
    accuracies = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            logits = model(x[start:start + batch_size])
            accuracies.append((logits.argmax(1) == y[start:start + batch_size]).float().mean().item())
    return sum(accuracies) / len(accuracies)


def evaluate_with(eval_mode=True, per_batch=False, restore=True, always_train=False, tensor=False):
    def fn(model, x, y, batch_size=100):
        was = model.training
        if eval_mode:
            model.eval()
        hits, accuracies = 0, []
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                right = model(x[start:start + batch_size]).argmax(1) == y[start:start + batch_size]
                hits += int(right.sum())
                accuracies.append(right.double().mean())
        if always_train:
            model.train()
        elif restore:
            model.train(was)
        value = torch.stack(accuracies).mean() if per_batch else torch.tensor(hits / len(x))
        return value if tensor else value.item()
    return fn


def evaluate_all_at_once(model, x, y, batch_size=100):
    """Right, another way: one eval-mode pass (the result does not depend on the batching in eval mode)."""
    mode = model.training
    model.eval()
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).double().mean().item()
    model.train(mode)
    return accuracy


@pytest.mark.parametrize("fn", [evaluate_with(), evaluate_with(tensor=True), evaluate_all_at_once])
def test_evaluate_right_answers_pass(fn):
    assert ex.evaluate.feedback(fn).passed


EVAL_MISTAKES = [
    (evaluate_buggy, "the model ran in training mode"),
    (evaluate_with(eval_mode=False), "the model ran in training mode"),
    (evaluate_with(per_batch=True), "averages the per-batch accuracies, but the last batch holds 2 examples"),
    (evaluate_with(restore=False), "the model stays in eval mode afterwards"),
    (evaluate_with(always_train=True), "a model given in eval mode comes back in training mode"),
    (lambda model, x, y, batch_size=100: "80 %", "return the accuracy as a number"),
    (lambda model, x, y, batch_size=100: 80.0, "a fraction between 0 and 1"),
]


@pytest.mark.parametrize("fn,expected", EVAL_MISTAKES, ids=[m for _, m in EVAL_MISTAKES])
def test_evaluate_mistakes_are_named(fn, expected):
    result = ex.evaluate.feedback(fn)
    assert not result.passed and result.written
    assert expected in result.message, result.message


def test_evaluate_names_a_training_mode_pass_and_a_batch_of_one():
    def peeks_in_training_mode(model, x, y, batch_size=100):
        model(x[:batch_size])                      # a forward pass in training mode updates the running stats
        return evaluate_with()(model, x, y, batch_size)
    result = ex.evaluate.feedback(peeks_in_training_mode)
    assert not result.passed and "changed BatchNorm's running statistics" in result.message

    def batches_of_three(model, x, y, batch_size=100):  # 10 = 3 + 3 + 3 + 1 in training mode
        return evaluate_buggy(model, x, y, 3)
    result = ex.evaluate.feedback(batches_of_three)
    assert not result.passed and "a batch of one example" in result.message


def test_the_debugging_models_accuracies_tell_the_bugs_apart():
    model, x, y = ex._debug_model()
    values = {ex._reference_evaluate(copy.deepcopy(model), x, y, 4),
              *(ex._buggy_accuracy(model, x, y, 4, training, per_batch) for training in (False, True)
                for per_batch in (False, True))}
    assert len(values) == 4 and model.training


# -- LayerNorm as a layer ---------------------------------------------------------------------
class Right(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.gamma, self.beta, self.eps = nn.Parameter(torch.ones(d)), nn.Parameter(torch.zeros(d)), eps

    def forward(self, x):
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + self.eps) * self.gamma + self.beta


class Slip(Right):
    def __init__(self, d, eps=1e-5, slip=""):
        super().__init__(d, eps)
        self.slip = slip
        if slip == "plain":
            del self.gamma, self.beta
            self.gamma, self.beta = torch.ones(d), torch.zeros(d)
        if slip == "random":
            self.gamma = nn.Parameter(torch.randn(d, generator=torch.Generator().manual_seed(0)))
        if slip == "one":
            del self.beta
            self.beta = torch.zeros(d)

    def forward(self, x):
        eps = 1e-5 if self.slip == "eps" else self.eps
        dim = 0 if self.slip == "batch" else -1
        mean, var = x.mean(dim, keepdim=True), x.var(dim, unbiased=False, keepdim=True)
        if self.slip == "detach":
            mean, var = mean.detach(), var.detach()
        if self.slip == "beta-grad":
            return (x - mean) / torch.sqrt(var + eps) * self.gamma + self.beta.detach()
        return (x - mean) / torch.sqrt(var + eps) * self.gamma + self.beta


@pytest.mark.parametrize("fn", [lambda d, eps=1e-5: Right(d, eps), lambda d, eps=1e-5: nn.LayerNorm(d, eps=eps)])
def test_layer_norm_module_right_answers_pass(fn):
    assert ex.layer_norm_module.feedback(fn).passed


LN_MODULE_MISTAKES = [
    ("plain", "the layer has no parameters"),
    ("one", "it needs two, γ and β"),
    ("random", "does not start as nn.LayerNorm does"),
    ("eps", "ignores the eps argument"),
    ("batch", "normalizes over the batch (dim 0)"),
    ("detach", "your layer's mean and variance are detached"),
    ("beta-grad", "the loss at SGD step 2"),
]


@pytest.mark.parametrize("slip,expected", LN_MODULE_MISTAKES, ids=[s for s, _ in LN_MODULE_MISTAKES])
def test_layer_norm_module_mistakes_are_named(slip, expected):
    result = ex.layer_norm_module.feedback(lambda d, eps=1e-5: Slip(d, eps, slip))
    assert not result.passed and result.written
    assert expected in result.message, result.message


def test_layer_norm_module_must_return_a_module():
    result = ex.layer_norm_module.feedback(lambda d, eps=1e-5: (lambda x: F.layer_norm(x, (d,), eps=eps)))
    assert not result.passed and "return an nn.Module" in result.message


# -- Questions --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", QUESTIONS)
def test_each_question_accepts_its_answer_and_explains_every_other_choice(name):
    question = getattr(ex, name)
    assert question.feedback(question.answer).passed
    assert not question.feedback(None).passed and not question.feedback(None).written
    for choice, why in question.choices.items():
        result = question.feedback(choice)
        assert result.passed is (choice == question.answer)
        if choice != question.answer:
            assert why and why in result.message
