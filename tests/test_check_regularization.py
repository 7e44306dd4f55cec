"""The exercises of notebook 07 (helpers.check.regularization): right answers pass, typical mistakes are named."""

from __future__ import annotations

import importlib

import pytest
import torch

from helpers import check
from helpers.check import regularization as ex

B1, B2, EPS = 0.9, 0.999, 1e-8


def _stub(*args, **kwargs):
    raise NotImplementedError()


def _adam(w, grad, m, v, t, lr, lam, *, l2=0.0, decay=0.0, correct=True):
    g = grad + l2 * w
    m = B1 * m + (1 - B1) * g
    v = B2 * v + (1 - B2) * g * g
    m_hat, v_hat = (m / (1 - B1**t), v / (1 - B2**t)) if correct else (m, v)
    return w * (1 - decay) - lr * m_hat / (v_hat.sqrt() + EPS), m, v


def adam_l2_right(w, grad, m, v, t, lr, lam):
    return _adam(w, grad, m, v, t, lr, lam, l2=lam)


def adamw_right(w, grad, m, v, t, lr, lam):
    return _adam(w, grad, m, v, t, lr, lam, decay=lr * lam)


def adamw_with_torch(w, grad, m, v, t, lr, lam):  # the same rule through torch's own optimizer state
    p = torch.nn.Parameter(w.clone())
    opt = torch.optim.AdamW([p], lr=lr, weight_decay=lam)
    opt.state[p] = {"step": torch.tensor(float(t - 1)), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
    p.grad = grad.clone()
    opt.step()
    return p.detach(), opt.state[p]["exp_avg"], opt.state[p]["exp_avg_sq"]


def test_the_exercises_are_exported() -> None:
    for name in ("adam_l2_step", "adamw_step", "inverted_dropout"):
        assert getattr(check, name) is getattr(ex, name)
        assert getattr(check, name).name == name


@pytest.mark.parametrize("exercise,fn", [(ex.adam_l2_step, adam_l2_right), (ex.adamw_step, adamw_right),
                                         (ex.adamw_step, adamw_with_torch)])
def test_adam_right_answers_pass(exercise, fn) -> None:
    assert exercise.feedback(fn).passed, exercise.feedback(fn)
    assert exercise.feedback(exercise.reference).passed


ADAM_L2_MISTAKES = [
    (adamw_right, "this is AdamW's decoupled decay"),
    (lambda w, g, m, v, t, lr, lam: _adam(w, g, m, v, t, lr, lam), "no weight decay at all"),
    (lambda w, g, m, v, t, lr, lam: _adam(w, g, m, v, t, lr, lam, l2=lam, correct=False), "no bias correction"),
    (lambda w, g, m, v, t, lr, lam: _adam(w, g, m, v, t, lr, lam, l2=-lam), "subtracted from the gradient"),
    (lambda w, g, m, v, t, lr, lam: _adam(w, g, m, v, t, lr, lam, l2=lam / 2), "λ/2·w in the gradient"),
    (lambda w, g, m, v, t, lr, lam: adam_l2_right(w, g, m, v, t, lr, lam)[0], "return three tensors"),
]

ADAMW_MISTAKES = [
    (adam_l2_right, "this is Adam + L2"),
    (lambda w, g, m, v, t, lr, lam: _adam(w, g, m, v, t, lr, lam, decay=lam), "missing the learning rate"),
    (lambda w, g, m, v, t, lr, lam: _adam(w, g, m, v, t, lr, lam), "no weight decay at all"),
    (lambda w, g, m, v, t, lr, lam: _adam(w, g, m, v, t, lr, lam, decay=lr * lam, correct=False),
     "no bias correction"),
]


@pytest.mark.parametrize("fn,expected", ADAM_L2_MISTAKES)
def test_adam_l2_mistakes_are_named(fn, expected) -> None:
    result = ex.adam_l2_step.feedback(fn)
    assert not result.passed and expected in result.message, result.message


@pytest.mark.parametrize("fn,expected", ADAMW_MISTAKES)
def test_adamw_mistakes_are_named(fn, expected) -> None:
    result = ex.adamw_step.feedback(fn)
    assert not result.passed and expected in result.message, result.message


def test_wrong_moments_are_named() -> None:
    def moments_from_grad_only(w, grad, m, v, t, lr, lam):
        new_w, _, _ = adam_l2_right(w, grad, m, v, t, lr, lam)
        _, m2, v2 = _adam(w, grad, m, v, t, lr, lam)
        return new_w, m2, v2

    result = ex.adam_l2_step.feedback(moments_from_grad_only)
    assert "m is computed from the loss gradient alone" in result.message


def dropout_right(x, p, training=True):
    if not training:
        return x
    return x * (torch.rand_like(x) >= p) / (1 - p)


def dropout_right_bernoulli(x, p, training=True):
    return x * torch.bernoulli(torch.full_like(x, 1 - p)) / (1 - p) if training else x


DROPOUT_MISTAKES = [
    (lambda x, p, training=True: x * (torch.rand_like(x) >= p) if training else x, "not scaled"),
    (lambda x, p, training=True: x * (torch.rand_like(x) >= p) / (1 - p), "dropped at evaluation"),
    (lambda x, p, training=True: x * (torch.rand(1, x.shape[1], dtype=x.dtype) >= p) / (1 - p) if training else x,
     "shared by the whole batch"),
    (lambda x, p, training=True: x * (torch.rand(x.shape[0], 1, dtype=x.dtype) >= p) / (1 - p) if training else x,
     "dropped or kept whole"),
    (lambda x, p, training=True: x * (torch.rand_like(x) < p) / (1 - p) if training else x,
     "p is the probability to DROP"),
    (lambda x, p, training=True: x * (torch.rand_like(x) >= p) * (1 - p) if training else x,
     "multiplied by (1 - p)"),
    (lambda x, p, training=True: x * (torch.rand_like(x) >= p) / (1 - p) if training else x * (1 - p),
     "non-inverted"),
    (lambda x, p, training=True: x.mul_(torch.rand_like(x) >= p).div_(1 - p) if training else x, "in place"),
]


@pytest.mark.parametrize("fn", [dropout_right, dropout_right_bernoulli])
def test_dropout_right_answers_pass(fn) -> None:
    assert ex.inverted_dropout.feedback(fn).passed
    assert ex.inverted_dropout.feedback(ex.inverted_dropout.reference).passed


@pytest.mark.parametrize("fn,expected", DROPOUT_MISTAKES)
def test_dropout_mistakes_are_named(fn, expected) -> None:
    result = ex.inverted_dropout.feedback(fn)
    assert not result.passed and expected in result.message, result.message


def test_unwritten_exercises_say_so() -> None:
    for exercise in (ex.adam_l2_step, ex.adamw_step, ex.inverted_dropout):
        assert not exercise.feedback(_stub).written


# -- inputs changed in place -------------------------------------------------------------------
def adam_l2_moments_in_place(w, grad, m, v, t, lr, lam):  # right values, like torch.optim's own in-place state
    g = grad + lam * w
    m.mul_(B1).add_((1 - B1) * g)
    v.mul_(B2).add_((1 - B2) * g * g)
    return w - lr * (m / (1 - B1**t)) / ((v / (1 - B2**t)).sqrt() + EPS), m, v


def adamw_weights_in_place(w, grad, m, v, t, lr, lam):
    w.mul_(1 - lr * lam)
    m, v = B1 * m + (1 - B1) * grad, B2 * v + (1 - B2) * grad * grad
    w -= lr * (m / (1 - B1**t)) / ((v / (1 - B2**t)).sqrt() + EPS)
    return w, m, v


@pytest.mark.parametrize("exercise, fn, expected", [
    (ex.adam_l2_step, adam_l2_moments_in_place, "your function changed its inputs m and v in place"),
    (ex.adamw_step, adamw_weights_in_place, "your function changed its input w in place"),
])
def test_adam_inputs_changed_in_place_are_named(exercise, fn, expected) -> None:
    result = exercise.feedback(fn)
    assert not result.passed and result.message.startswith(expected), result.message



# -- the library calls the tasks forbid ------------------------------------------------------------
def adam_l2_with_torch(w, grad, m, v, t, lr, lam):  # torch.optim.Adam on a copy of the state
    p = torch.nn.Parameter(w.clone())
    opt = torch.optim.Adam([p], lr=lr, weight_decay=lam)
    opt.state[p] = {"step": torch.tensor(float(t - 1)), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
    p.grad = grad.clone()
    opt.step()
    return p.detach(), opt.state[p]["exp_avg"], opt.state[p]["exp_avg_sq"]


@pytest.mark.parametrize("exercise, fn", [(ex.adam_l2_step, adam_l2_with_torch), (ex.adamw_step, adamw_with_torch)])
def test_a_step_through_torch_optim_is_right_but_named(exercise, fn) -> None:
    result = exercise.feedback(fn)
    assert result.passed and result.shortcuts == ("profiler._record_function_enter_new", "torch.optim.adam.adam"), \
        result
    assert "a graded run does not accept it" in str(result)


@pytest.mark.parametrize("kind", ["foreach", "fused"])
def test_the_foreach_and_fused_adamw_are_named_too(kind) -> None:
    def adamw_kernel(w, grad, m, v, t, lr, lam):
        p = torch.nn.Parameter(w.clone())
        opt = torch.optim.AdamW([p], lr=lr, weight_decay=lam, **{kind: True})
        opt.state[p] = {"step": torch.tensor(float(t - 1)), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
        p.grad = grad.clone()
        opt.step()
        return p.detach(), opt.state[p]["exp_avg"], opt.state[p]["exp_avg_sq"]

    result = ex.adamw_step.feedback(adamw_kernel)
    assert result.passed and f"torch._VariableFunctionsClass._{kind}_" in " ".join(result.shortcuts), result


@pytest.mark.parametrize(("exercise", "functional", "decoupled"), [
    (ex.adam_l2_step, "adam", False), (ex.adamw_step, "adamw", True), (ex.adamw_step, "adam", True)])
def test_the_functional_optimizer_is_named(exercise, functional, decoupled) -> None:
    """torch.optim.adam.adam / adamw.adamw do the whole step on lists of tensors, without an optimizer."""
    module = importlib.import_module(f"torch.optim.{functional}")

    def step_with(w, grad, m, v, t, lr, lam):
        w, m, v = w.clone(), m.clone(), v.clone()
        options = {"decoupled_weight_decay": True} if functional == "adam" and decoupled else {}
        getattr(module, functional)(
            [w], [grad], [m], [v], [], [torch.tensor(float(t - 1))], foreach=False, amsgrad=False, beta1=B1,
            beta2=B2, lr=lr, weight_decay=lam, eps=EPS, maximize=False, **options)
        return w, m, v

    result = exercise.feedback(step_with)
    assert result.passed and f"torch.optim.{functional}.{functional}" in result.shortcuts, result


def test_a_step_by_hand_with_lerp_on_copies_is_not_flagged() -> None:
    def with_lerp(w, grad, m, v, t, lr, lam):
        g = grad + lam * w
        m = m.clone().lerp_(g, 1 - B1)
        v = v.clone().mul_(B2).addcmul_(g, g, value=1 - B2)
        step = (m / (1 - B1**t)) / ((v / (1 - B2**t)).sqrt() + EPS)
        return w.clone().addcdiv_(step, torch.ones_like(step), value=-lr), m, v

    result = ex.adam_l2_step.feedback(with_lerp)
    assert result.passed and result.shortcuts == (), result


@pytest.mark.parametrize("exercise, fn", [(ex.adam_l2_step, adam_l2_right), (ex.adamw_step, adamw_right)])
def test_a_step_by_hand_calls_nothing_forbidden(exercise, fn) -> None:
    result = exercise.feedback(fn)
    assert result.passed and result.shortcuts == ()


@pytest.mark.parametrize("fn, call", [
    (lambda x, p, training=True: torch.nn.functional.dropout(x, p, training), "torch.nn.functional.dropout"),
    (lambda x, p, training=True: torch.nn.Dropout(p).train(training)(x), "torch.nn.functional.dropout"),
    (lambda x, p, training=True: torch.dropout(x, p, training), "torch.dropout"),
])
def test_library_dropout_is_right_but_named(fn, call) -> None:
    result = ex.inverted_dropout.feedback(fn)
    assert result.passed and call in result.shortcuts, result


@pytest.mark.parametrize("fn", [dropout_right, dropout_right_bernoulli])
def test_dropout_by_hand_calls_nothing_forbidden(fn) -> None:
    assert ex.inverted_dropout.feedback(fn).shortcuts == ()
