"""Exercise of notebook 03: a numerical gradient check, written by the student.

* :data:`grad_check` — ``grad_check(f, x, dout, dx, h=1e-5)`` returns ``(num_dx, rel_error)``:
  the gradient of ``(f(x) * dout).sum()`` with respect to ``x`` by centred differences, and the
  largest entry-wise relative error between it and an analytic gradient ``dx``,
  max |dx − num_dx| / max(|dx| + |num_dx|, 10⁻⁸) (the form of CS231n's ``rel_error``).

The check runs the answer on seeded float64 functions whose outputs each depend on every input
(so that a perturbation left in place shows), with a planted analytic gradient whose one wrong
entry, exact zeros and signs tell the relative-error formulas apart, and with steps of 10⁻⁵,
10⁻² and the answer's own default.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

from helpers.check.feedback import AUTOGRAD, Exercise, compare, first_line
from helpers.check.inputs import as_number

__all__ = ["grad_check"]

F64 = torch.float64
FLOOR = 1e-8  # the relative error's denominator is at least this (0/0 where both gradients are 0)
Function = Callable[[torch.Tensor], torch.Tensor]


def numerical_gradient(f: Function, x: torch.Tensor, dout: torch.Tensor, h: float = 1e-5, *,
                       scheme: str = "centred", restore: bool = True) -> torch.Tensor:
    """∂(f(x)·dout).sum()/∂x by finite differences, one entry at a time, on a copy of ``x``.

    ``scheme`` is ``"centred"`` (the right one), ``"forward"`` or ``"backward"``; ``restore=False``
    leaves every perturbed entry at x − h (the slip of forgetting to put x[i] back).
    """
    x = x.detach().clone()
    grad = torch.zeros_like(x)
    flat, out = x.view(-1), grad.view(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + h
        plus = (f(x) * dout).sum().item()
        flat[i] = old - h
        minus = (f(x) * dout).sum().item()
        flat[i] = old
        centre = (f(x) * dout).sum().item() if scheme != "centred" else 0.0
        out[i] = {"centred": (plus - minus) / (2 * h), "forward": (plus - centre) / h,
                  "backward": (centre - minus) / h}[scheme]
        if not restore:
            flat[i] = old - h
    return grad


def relative_error(dx: torch.Tensor, num: torch.Tensor) -> float:
    """max |dx − num| / max(|dx| + |num|, 10⁻⁸): the course's relative error."""
    return ((dx - num).abs() / (dx.abs() + num.abs()).clamp(min=FLOOR)).max().item()


def _reference_grad_check(f: Function, x: torch.Tensor, dout: torch.Tensor, dx: torch.Tensor,
                          h: float = 1e-5) -> tuple[torch.Tensor, float]:
    """The course's gradient check: centred differences, then :func:`relative_error`."""
    num = numerical_gradient(f, x, dout, h)
    return num, relative_error(dx, num)


def _problem(seed: int, zero_column: bool = False) -> tuple[Function, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A seeded float64 f (every output depends on every input), x (3, 4), dout and the true dx.

    With ``zero_column`` f ignores x's last column, so that both gradients are exactly 0 there.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 4, generator=g, dtype=F64)
    w = torch.randn(4, 5, generator=g, dtype=F64) / 2
    dout = torch.randn(3, 5, generator=g, dtype=F64)
    if zero_column:
        w[-1] = 0.0

    def f(t: torch.Tensor) -> torch.Tensor:
        return torch.tanh(t @ w) + 0.3 * torch.sin((t[:, :-1] if zero_column else t).sum())

    leaf = x.clone().requires_grad_()
    (f(leaf) * dout).sum().backward()
    assert leaf.grad is not None
    return f, x, dout, leaf.grad.detach()


def _run(student: Callable[..., Any], f: Function, x: torch.Tensor, dout: torch.Tensor, dx: torch.Tensor,
         *h: float) -> tuple[Any, Any, str | None]:
    """Call the student on copies; returns (num, rel, problem with the call or the output's form)."""
    given = x.clone()
    answer = student(f, given, dout.clone(), dx.clone(), *h)
    moved = (given - x).abs().max().item() if given.shape == x.shape else 0.0
    if moved > 1e-12:
        return None, None, (f"x is not the same after your function: an entry stays perturbed (by up to {moved:.2g}); "
                            "put x[i] back to its old value after computing f(x + h) and f(x − h).")
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return None, None, "return two values, (num_dx, rel_error); got " + (
            f"{len(answer)}." if isinstance(answer, (tuple, list)) else f"a {type(answer).__name__}.")
    num, rel = answer
    if isinstance(num, torch.Tensor) and num.dtype != F64 and num.shape == x.shape:
        return None, None, (f"num_dx is {num.dtype}, not float64: torch.zeros(x.shape) is float32 and rounds each "
                            "entry to 7 digits; make it with torch.zeros_like(x).")
    value = as_number(rel)
    if value is None:
        return None, None, f"rel_error should be a number (a float), got {type(rel).__name__}."
    return num, value, None


def _diagnose_grad_check(student: Callable[..., Any]) -> str | None:
    f, x, dout, dx = _problem(11)
    h = 1e-5
    num, rel, problem = _run(student, f, x, dout, dx, h)
    if problem is not None:
        return problem
    right = numerical_gradient(f, x, dout, h)
    problem = compare("num_dx", num, right, [
        ("one-sided (forward) differences, (f(x + h) − f(x)) / h: their error shrinks like h, centred "
         "differences' like h²; use (f(x + h) − f(x − h)) / (2h).",
         numerical_gradient(f, x, dout, h, scheme="forward")),
        ("one-sided (backward) differences, (f(x) − f(x − h)) / h: their error shrinks like h, centred "
         "differences' like h²; use (f(x + h) − f(x − h)) / (2h).",
         numerical_gradient(f, x, dout, h, scheme="backward")),
        ("divided by h instead of 2h: f(x + h) and f(x − h) are 2h apart.", 2 * right),
        ("the sign is flipped: (f(x + h) − f(x − h)) / (2h), not the other way round.", -right),
        ("ignores dout: differentiate (f(x) * dout).sum(), not f(x).sum().",
         numerical_gradient(f, x, torch.ones_like(dout), h)),
        ("an entry stays perturbed after its turn (x[i] is not put back), so the later entries are "
         "differentiated at a shifted point: restore x[i] after f(x − h).",
         numerical_gradient(f, x, dout, h, restore=False)),
    ], atol=1e-8)
    if problem is not None:
        return problem + " (Compared with centred differences, h = 10⁻⁵.)"
    problem = _diagnose_rel_error(student)
    if problem is not None:
        return problem
    if not rel < 1e-6:
        return (f"with the right dx, rel_error is {rel:.3g}: it should be tiny (about 10⁻¹⁰); compute "
                "max |dx − num_dx| / max(|dx| + |num_dx|, 1e-8) over the entries.")

    # The step: h = 10⁻² must be used as given, and the default must be a good one.
    wide, _, problem = _run(student, f, x, dout, dx, 1e-2)
    if problem is not None:
        return problem
    if compare("num_dx", wide, numerical_gradient(f, x, dout, 1e-2), {}, atol=1e-8) is not None:
        return "with h = 0.01 num_dx is not centred differences with that step: use the argument h, not a fixed step."
    try:
        own, _, problem = _run(student, f, x, dout, dx)
    except TypeError as raised:
        return f"called without h it raised TypeError ({first_line(raised)}): give h a default value, as in the stub."
    if problem is not None:
        return problem
    error = relative_error(dx, own)
    if error > 1e-7:
        default = inspect.signature(student).parameters
        step = [p.default for p in default.values() if p.default is not inspect.Parameter.empty]
        said = f"your default h = {step[-1]:g}" if step and isinstance(step[-1], (int, float)) else "your default step"
        if step and isinstance(step[-1], (int, float)) and step[-1] >= 1e-3:
            return (f"{said} is too large: the truncation error of centred differences grows like h² "
                    f"(relative error {error:.1g} against the true gradient); in float64 use about 1e-5.")
        return (f"{said} is too small: f(x + h) − f(x − h) loses digits to rounding (about 10⁻¹⁶ / h; relative "
                f"error {error:.1g} against the true gradient); in float64 use about 1e-5.")
    return None


def _diagnose_rel_error(student: Callable[..., Any]) -> str | None:
    """A planted dx: one entry 10 % off where the gradient is negative, x's last column exactly 0."""
    f, x, dout, dx = _problem(15, zero_column=True)
    num = numerical_gradient(f, x, dout, 1e-5)
    planted = dx.clone()
    at = tuple(int(i) for i in torch.unravel_index(torch.argmin(num), num.shape))  # a negative gradient
    assert num[at] < 0
    planted[at] *= 1.1
    _, rel, problem = _run(student, f, x, dout, planted, 1e-5)
    if problem is not None:
        return problem
    assert rel is not None
    expected = relative_error(planted, num)
    diff, total = (planted - num).abs(), planted.abs() + num.abs()
    one_sided = {"|dx|": diff / planted.abs().clamp(min=FLOOR), "|num_dx|": diff / num.abs().clamp(min=FLOOR),
                 "max(|dx|, |num_dx|)": diff / torch.maximum(planted.abs(), num.abs()).clamp(min=FLOOR)}
    mistakes: list[tuple[str, float]] = [
        *((f"divides by {name} alone: the denominator is |dx| + |num_dx| (symmetric in the two, and "
           "still right when one of them is 0).", ratio.max().item()) for name, ratio in one_sided.items()),
        ("averages the entry-wise errors: take the largest (max), or one bad entry hides among the good ones.",
         (diff / total.clamp(min=FLOOR)).mean().item()),
        ("is the absolute error max |dx − num_dx|: divide by max(|dx| + |num_dx|, 1e-8), so that it does not "
         "depend on the gradient's scale.", diff.max().item()),
        ("is a norm-wise error, ‖dx − num_dx‖ / (‖dx‖ + ‖num_dx‖): the task asks for the largest entry-wise one.",
         ((planted - num).norm() / (planted.norm() + num.norm())).item()),
        ("has no absolute values in the denominator: dx + num_dx is negative where the gradient is, so the "
         "largest error is missed; use |dx| + |num_dx|.", (diff / (planted + num).clamp(min=FLOOR)).max().item()),
    ]
    if rel != rel:  # NaN
        return ("rel_error is NaN: where dx and num_dx are both 0 the ratio is 0/0; floor the denominator, "
                "max(|dx| + |num_dx|, 1e-8).")
    if abs(rel - expected) <= 1e-3 * expected:
        return None
    for message, value in mistakes:
        if abs(rel - value) <= 1e-3 * abs(value):
            return "rel_error " + message
    return (f"rel_error is {rel:.4g} for a dx with one entry 10 % off, expected {expected:.4g}: "
            "max over the entries of |dx − num_dx| / max(|dx| + |num_dx|, 1e-8).")


grad_check = Exercise(
    name="grad_check",
    checked="centred differences of (f(x)·dout).sum(), x left as it was, the step as given (and a good default), "
            "and the largest entry-wise relative error, on seeded float64 functions.",
    reference=_reference_grad_check,
    diagnose=_diagnose_grad_check,
    forbidden=AUTOGRAD,
)
