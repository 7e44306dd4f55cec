"""Whether a student's function changed its inputs in place.

A function that writes into a tensor it was given (``x -= mean``, ``x.sub_(m)``,
``logits[mask] = …``) can return the right values and still break the caller, whose tensor is
now different; inside a check it also corrupts the inputs of the later comparisons, so that
the mistake gets blamed on something else. :func:`call` runs the student's function on copies
of its tensor arguments and says, before anything else is compared, which of them changed::

    out, changed = call(student, (x, gamma, beta, eps))
    if changed:
        return changed        # "your function changed its input x in place; …"

:func:`as_number` reads an answer that should be one number, however it was returned.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["as_number", "call", "in_place_message"]


def as_number(value: object) -> float | None:
    """A Python number, a NumPy scalar or a one-element tensor or array as a float; else ``None``
    (a bool is not a number here)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, np.floating, np.integer)):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.item())
    if isinstance(value, np.ndarray) and value.size == 1:
        return float(value.item())
    return None


def _copy(value: Any) -> Any:
    """``value`` with every tensor in it (in lists and tuples too) replaced by a copy."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad)
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(v) for v in value)
    return value


def _same(before: Any, after: Any) -> bool:
    """True when the copy ``after`` still holds what ``before`` holds (NaN equal to NaN)."""
    if isinstance(before, torch.Tensor):
        if not isinstance(after, torch.Tensor) or after.shape != before.shape or after.dtype != before.dtype:
            return False
        a, b = before.detach(), after.detach()
        return bool(((a == b) | (a.isnan() & b.isnan())).all()) if a.is_floating_point() else torch.equal(a, b)
    if isinstance(before, (list, tuple)):
        return (isinstance(after, (list, tuple)) and len(after) == len(before)
                and all(_same(x, y) for x, y in zip(before, after, strict=True)))
    return True


def _has_tensor(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return any(_has_tensor(v) for v in value)
    return isinstance(value, torch.Tensor)


def _positional_names(student: Callable[..., Any], count: int, fallback: Sequence[str]) -> list[str]:
    """The names the student gave the first ``count`` positional parameters (else ``fallback``'s)."""
    try:
        parameters = list(inspect.signature(student).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature
        parameters = []
    positional = [p.name for p in parameters
                  if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    names = []
    for i in range(count):
        if i < len(positional):
            names.append(positional[i])
        elif i < len(fallback):
            names.append(fallback[i])
        else:
            names.append(f"number {i + 1}")
    return names


def in_place_message(names: Sequence[str], hint: str | None = None) -> str:
    """The message for a function that changed the inputs ``names`` in place."""
    if len(names) == 1:
        what, fix = f"its input {names[0]}", "return a new tensor instead"
    else:
        what = "its inputs " + ", ".join(names[:-1]) + f" and {names[-1]}"
        fix = "return new tensors instead"
    if hint is None:
        x = names[0] if names[0].isidentifier() else "x"
        hint = f"{x} = {x} - m makes a new tensor; {x} -= m, {x}.sub_(m) and {x}[i] = v write into the caller's tensor"
    return f"your function changed {what} in place; {fix} ({hint})."


def call(student: Callable[..., Any], args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None, *,
         names: Sequence[str] = (), hint: str | None = None) -> tuple[Any, str | None]:
    """Run ``student(*args, **kwargs)`` on copies of the tensors among the arguments.

    Args:
        student: the student's function.
        args, kwargs: its arguments; tensors (also inside lists and tuples) are copied, the
            rest is passed as it is. The originals are never handed to the student.
        names: the arguments' names for a function whose signature cannot be read (the
            student's own parameter names are used when it can).
        hint: replaces the message's default example of the fix ("x = x - m makes a new tensor; …").

    Returns:
        ``(output, None)`` when every tensor argument is unchanged after the call, else
        ``(output, message)`` with a message naming the changed ones ("your function changed
        its input x in place; return a new tensor instead (…)."). Exceptions of the student's
        function propagate.
    """
    kwargs = dict(kwargs or {})
    given = [_copy(a) for a in args]
    given_kwargs = {k: _copy(v) for k, v in kwargs.items()}
    output = student(*given, **given_kwargs)
    positional = _positional_names(student, len(args), names)
    changed = [name for name, before, after in zip(positional, args, given, strict=True)
               if _has_tensor(before) and not _same(before, after)]
    changed += [name for name, before in kwargs.items()
                if _has_tensor(before) and not _same(before, given_kwargs[name])]
    return output, (in_place_message(changed, hint) if changed else None)
