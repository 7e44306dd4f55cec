"""helpers.check.inputs: a student's function runs on copies of its tensor arguments, and a change is named."""

from __future__ import annotations

import pytest
import torch

from helpers.check.inputs import call, in_place_message


def _x() -> torch.Tensor:
    return torch.arange(6, dtype=torch.float64).reshape(2, 3)


def test_a_function_that_leaves_its_inputs_alone_gets_no_message():
    x = _x()
    out, changed = call(lambda x, eps: x - x.mean(-1, keepdim=True) + eps, (x, 0.5))
    assert changed is None
    torch.testing.assert_close(out, _x() - _x().mean(-1, keepdim=True) + 0.5)


@pytest.mark.parametrize("change", [
    lambda x: x.sub_(1.0),
    lambda x: x.__isub__(x.mean(-1, keepdim=True)),
    lambda x: x.__setitem__((0, 0), 7.0),
    lambda x: x.fill_(float("nan")),
    lambda x: x.resize_(6),
])
def test_every_kind_of_in_place_change_is_named_with_the_students_parameter_name(change):
    def student(logits, temperature=1.0):
        change(logits)
        return logits

    x = _x()
    _, changed = call(student, (x,), {"temperature": 2.0})
    assert changed is not None and changed.startswith(
        "your function changed its input logits in place; return a new tensor instead"), changed
    assert "logits -= m, logits.sub_(m)" in changed
    torch.testing.assert_close(x, _x())  # the caller's tensor is never the one handed over


def test_several_changed_inputs_a_keyword_argument_and_a_list_of_tensors():
    def student(weights, x, gamma=None):
        weights[1].mul_(2)
        gamma.zero_()
        return x

    weights = [torch.ones(2), torch.ones(3)]
    _, changed = call(student, (weights, _x()), {"gamma": torch.ones(3)})
    assert changed is not None and "changed its inputs weights and gamma in place; return new tensors instead" \
        in changed, changed
    assert torch.equal(weights[1], torch.ones(3))


def test_names_without_a_signature_and_a_hint_of_ones_own():
    _, changed = call(lambda *args: args[1].add_(1), (_x(), _x()), names=("q", "k"), hint="k + 1, not k += 1")
    assert changed == "your function changed its input k in place; return a new tensor instead (k + 1, not k += 1)."
    _, changed = call(lambda *args: args[1].add_(1), (_x(), _x()))
    assert changed is not None and changed.startswith("your function changed its input number 2 in place"), changed
    _, changed = call(torch.Tensor.abs_, (-_x(),), names=("values",))
    assert changed is not None and "changed its input" in changed
    assert in_place_message(["x", "gamma", "beta"]).startswith("your function changed its inputs x, gamma and beta")


def test_nan_in_an_input_is_no_change_and_exceptions_propagate():
    x = torch.tensor([1.0, float("nan")])
    assert call(lambda v: v * 2, (x,))[1] is None
    with pytest.raises(ZeroDivisionError):
        call(lambda v: 1 / 0, (x,))


def test_requires_grad_is_kept_on_the_copy():
    x = _x().requires_grad_()
    out, changed = call(lambda t: t.requires_grad, (x,))
    assert out is True and changed is None
