"""The machinery behind every build-it-yourself exercise: run, diagnose, report, fall back.

An exercise is an :class:`Exercise`: a name, the course's own implementation (the
*reference*), and a ``diagnose`` function that runs the student's function on seeded inputs
and returns ``None`` when it is right, or a one- or two-line message naming the mistake
("normalised over dim 0 (the batch) instead of the last dim", "missing ε: …"). The notebook
calls the exercise on the student's function::

    layer_norm = check.layer_norm(my_layer_norm)

which prints one line (``✓ …`` or ``✗ …``) and returns the function the following cells use:
the student's own when it passed, otherwise the course's reference, saying so. That is what
keeps a notebook running from top to bottom while an exercise is still unanswered, and what
keeps one mistake from costing the later exercises that build on it: the fallback stays in
place when nbgrader grades the notebook too.

Grading: the points sit in a separate, locked cell right after the check::

    check.layer_norm.grade(my_layer_norm)

Outside grading it does nothing. Under nbgrader's ``autograde`` and ``validate`` (which set the
environment variable ``NBGRADER_EXECUTION``) it raises :class:`AssertionError` with the check's
message when the answer is wrong, so that cell, and only that cell, loses its points.

Shortcuts: an exercise may name the library calls its task forbids (``forbidden``: autograd in
a hand-written backward pass, ``torch.softmax`` in a softmax, ...). The student's function runs
under a :class:`torch.overrides.TorchFunctionMode` that records every torch function it calls,
and a :func:`sys.setprofile` hook that sees the forbidden Python functions (``torch.func.jacfwd``,
whose forward mode calls nothing the mode records).
A right answer that calls a forbidden one passes in self-study with a note ("correct, but it
calls torch.softmax: try it by hand"), and is rejected when graded. So is an answer that calls
the course's own implementation of the exercise (``init.kaiming_normal`` is importable in the
notebook): :func:`sys.setprofile` watches for a call of the reference's code.

Concept questions are :class:`Question`: answered in a variable (a choice such as ``"b"``, or
a number), checked with a one-line explanation, ungraded unless an instructor gives their cell
points. Their answers are in this package's source: they are for self-study, not for exams.

The comparison helpers (:func:`compare`, :func:`first_mismatch`) are what the ``diagnose``
functions are made of: they name a wrong shape, and they recognise *typical* mistakes by
comparing the student's output with the outputs those mistakes would give.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.overrides import TorchFunctionMode, resolve_name

from helpers.check.inputs import as_number

__all__ = ["AUTOGRAD", "Exercise", "Feedback", "Question", "compare", "first_line", "first_mismatch", "grading",
           "not_close"]

#: The values of ``NBGRADER_EXECUTION`` under which a failure raises instead of falling back.
GRADING_MODES = ("autograde", "validate")

Diagnosis = Callable[[Callable[..., Any]], "str | None"]

#: The calls that compute gradients for you: forbidden where the task is a backward pass by hand.
AUTOGRAD = ("torch.Tensor.backward", "torch.autograd.grad", "torch.autograd.backward",
            "torch.autograd.functional.jacobian", "torch.autograd.functional.vjp", "torch.autograd.functional.jvp",
            "torch.func.grad", "torch.func.vjp", "torch.func.jvp", "torch.func.jacrev", "torch.func.jacfwd",
            "torch.func.hessian")


def grading() -> bool:
    """True while nbgrader autogrades or validates the notebook (``NBGRADER_EXECUTION``)."""
    return os.environ.get("NBGRADER_EXECUTION", "").lower() in GRADING_MODES


@dataclass(frozen=True)
class Feedback:
    """The verdict on one answer: ``passed`` and the line printed for the student."""

    exercise: str
    passed: bool
    message: str
    written: bool = True  # False when the function still raises NotImplementedError
    shortcuts: tuple[str, ...] = ()  # forbidden calls a right answer made

    def __str__(self) -> str:
        mark = "✓" if self.passed else "✗"
        line = f"{mark} {self.exercise}: {self.message}"
        if self.shortcuts:
            line += (f"\n  Correct, but it calls {', '.join(self.shortcuts)}, which this task asks you to do by hand: "
                     "try it without (a graded run does not accept it).")
        return line


class _CallRecorder(TorchFunctionMode):
    """Records every torch function called while it is active (named afterwards, by
    :func:`_qualified_name`: its first call builds torch's table of names, slow under a profiler)."""

    def __init__(self, seen: set[Any]) -> None:
        super().__init__()
        self.seen = seen

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.seen.add(func)
        return func(*args, **(kwargs or {}))


def _qualified_name(func: Any) -> str:
    name = resolve_name(func)
    if name:
        return name
    owner = getattr(func, "__objclass__", None)  # slot wrappers such as torch.Tensor.backward
    if owner is not None:
        return f"{owner.__module__}.{owner.__qualname__}.{func.__name__}"
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


def _python_code(dotted: str) -> Any:
    """The code object of the Python function named ``dotted`` ("torch.func.jacfwd"), or None
    (a torch built-in, which the :class:`_CallRecorder` sees instead, or no such function)."""
    module, _, attribute = dotted.rpartition(".")
    while module:
        try:
            obj: Any = importlib.import_module(module)
        except ImportError:
            module, _, head = module.rpartition(".")
            attribute = f"{head}.{attribute}"
            continue
        for part in attribute.split("."):
            obj = getattr(obj, part, None)
        return getattr(inspect.unwrap(obj), "__code__", None) if callable(obj) else None
    return None


def _recording(fn: Callable[..., Any], seen: set[Any], called: set[str],
               watched: Mapping[Any, str]) -> Callable[..., Any]:
    """``fn``, recording into ``seen`` the torch functions each of its calls makes, and into
    ``called`` the label of every Python function in ``watched`` (code object -> label) it calls
    outside another watched one (``Tensor.backward`` calls ``torch.autograd.backward``: one shortcut)."""
    depth = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal depth
        if frame.f_code in watched:
            if event == "call":
                if depth == 0:
                    called.add(watched[frame.f_code])
                depth += 1
            elif event == "return":
                depth -= 1

    @functools.wraps(fn)
    def recorded(*args: Any, **kwargs: Any) -> Any:
        previous = sys.getprofile()
        sys.setprofile(profile if watched else previous)
        try:
            with _CallRecorder(seen):
                return fn(*args, **kwargs)
        finally:
            sys.setprofile(previous)
    return recorded


@dataclass(frozen=True)
class Exercise:
    """One build-it-yourself exercise (see the module docstring).

    Attributes:
        name: the function's name in the notebook's cells that follow (``layer_norm``).
        checked: what a pass means, printed after ``✓`` ("matches torch's layer_norm on …").
        reference: the course's own implementation, used when the answer fails.
        diagnose: runs a candidate; returns ``None`` if it is right, else the mistake.
    """

    name: str
    checked: str
    reference: Callable[..., Any]
    diagnose: Diagnosis
    forbidden: tuple[str, ...] = ()

    def feedback(self, student_fn: object) -> Feedback:
        """Judge ``student_fn`` without printing anything (what the unit tests call).

        Raises:
            TypeError: if ``student_fn`` is not callable.
        """
        if not callable(student_fn):
            raise TypeError(
                f"student_fn must be the function you wrote (callable), got {type(student_fn).__name__}")
        seen: set[Any] = set()  # torch functions, as the TorchFunctionMode saw them
        called: set[str] = set()  # watched Python functions, outermost calls only
        own = inspect.unwrap(self.reference)
        code = getattr(own, "__code__", None)
        label = f"the course's own {own.__module__}.{own.__qualname__}" if code is not None else ""
        watched = {code: label} if code is not None and student_fn is not self.reference else {}
        watched.update((found, name) for name in self.forbidden if (found := _python_code(name)) is not None)
        try:
            problem = self.diagnose(_recording(student_fn, seen, called, watched))
        except NotImplementedError:
            return Feedback(self.name, False, "not written yet (it still raises NotImplementedError).",
                            written=False)
        except Exception as error:  # the student's code failed: say where, in one line
            return Feedback(self.name, False,
                            f"your function raised {type(error).__name__}: {first_line(error)}")
        if problem is None:
            python = set(watched.values())
            names = {_qualified_name(func) for func in seen} if self.forbidden else set()
            used = tuple(dict.fromkeys(name for name in (*self.forbidden, *python)
                                       if name in (called if name in python else names)))
            return Feedback(self.name, True, self.checked, shortcuts=used)
        return Feedback(self.name, False, problem)

    def __call__(self, student_fn: object) -> Callable[..., Any]:
        """Print the feedback and return the function the notebook goes on with.

        Returns ``student_fn`` when it passed, else :attr:`reference` (and says so), graded
        or not: the points are given by :meth:`grade`, in a cell of their own.
        """
        result = self.feedback(student_fn)
        print(result)
        if result.passed:
            assert callable(student_fn)  # feedback() raised TypeError otherwise
            return student_fn
        print(f"  The cells below use the course's own {self.name} instead.")
        return self.reference

    def grade(self, student_fn: object) -> None:
        """The graded cell's assertion: under nbgrader's autograde/validate, raise
        :class:`AssertionError` (with the check's message) unless ``student_fn`` is right and
        calls nothing the task forbids. Outside grading it does nothing and prints nothing."""
        if not grading():
            return
        result = self.feedback(student_fn)
        if not result.passed:
            raise AssertionError(str(result))
        if result.shortcuts:
            raise AssertionError(f"✗ {self.name}: right, but it calls {', '.join(result.shortcuts)}, "
                                 "which this task forbids.")


@dataclass(frozen=True)
class Question:
    """A concept question answered in a variable: one of ``choices`` or a number.

    Attributes:
        name: the question's name, printed with its verdict ("q03_small_batch").
        answer: the right choice (a key of ``choices``) or the right number.
        why: one or two sentences printed with ``✓``: why that is the answer.
        choices: for a choice question, every choice -> what picking it wrongly misses
            (the right choice's entry is unused); empty for a numeric question.
        rel_tol: for a numeric question, the relative tolerance of a right answer.
    """

    name: str
    answer: str | float
    why: str
    choices: Mapping[str, str] = field(default_factory=dict)
    rel_tol: float = 0.05

    def __post_init__(self) -> None:
        if self.choices and self.answer not in self.choices:
            raise ValueError(f"answer {self.answer!r} of {self.name} is not one of its choices {sorted(self.choices)}")
        if not self.choices and not isinstance(self.answer, int | float):
            raise TypeError(f"{self.name}: a question without choices needs a numeric answer, got {self.answer!r}")

    def _expected(self) -> str:
        if self.choices:
            return "one of " + ", ".join(f'"{choice}"' for choice in self.choices)
        return "a number"

    def feedback(self, value: object) -> Feedback:
        """Judge an answer without printing anything (what the unit tests call)."""
        if value is None:
            return Feedback(self.name, False, f"not answered yet: replace None by {self._expected()}.", written=False)
        if self.choices:
            choice = value.strip().lower() if isinstance(value, str) else None
            if choice is None or choice not in self.choices:
                return Feedback(self.name, False, f"{value!r} is not a choice here: answer {self._expected()}.")
            if choice == self.answer:
                return Feedback(self.name, True, self.why)
            return Feedback(self.name, False, f'not "{choice}": {self.choices[choice]}')
        number = as_number(value)
        if number is None or not math.isfinite(number):
            return Feedback(self.name, False, f"answer a finite number, got {value!r}.")
        assert isinstance(self.answer, int | float)
        if math.isclose(number, self.answer, rel_tol=self.rel_tol):
            return Feedback(self.name, True, self.why)
        side = "too large" if number > self.answer else "too small"
        return Feedback(self.name, False, f"{number:.4g} is {side} (a right answer is within "
                                          f"{self.rel_tol:.0%}): look again at the reasoning above the question.")

    def __call__(self, value: object) -> None:
        """Print the verdict; under nbgrader's autograde/validate a wrong or missing answer
        also raises :class:`AssertionError` (the cell has 0 points unless the instructor gives it some)."""
        result = self.feedback(value)
        print(result)
        if grading() and not result.passed:
            raise AssertionError(str(result))


def first_line(error: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message, at most ``limit`` characters."""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else ""


def not_close(actual: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float = 0.0) -> bool:
    """True when ``actual`` differs from ``expected`` (same shape) beyond the tolerances."""
    return not torch.allclose(actual.double(), expected.double(), atol=atol, rtol=rtol)


def first_mismatch(actual: torch.Tensor, expected: torch.Tensor, atol: float) -> str:
    """Where two same-shaped tensors first differ, and by how much ("at [2, 3]: 0.41 vs 0.12")."""
    diff = (actual.double() - expected.double()).abs()
    index = tuple(int(i) for i in torch.nonzero(diff > atol)[0]) if bool((diff > atol).any()) \
        else tuple(int(i) for i in torch.unravel_index(torch.argmax(diff), diff.shape))
    where = ", ".join(str(i) for i in index)
    return (f"at [{where}]: {actual[index].item():.4g} instead of {expected[index].item():.4g} "
            f"(largest difference {diff.max().item():.2g})")


def compare(what: str, actual: object, expected: torch.Tensor,
            mistakes: Mapping[str, torch.Tensor] | Sequence[tuple[str, torch.Tensor]],
            atol: float = 1e-5) -> str | None:
    """Compare a student's output with the expected one; name the mistake if it is a known one.

    Args:
        what: the output's name in the message ("the output", "dx").
        actual: what the student's function returned.
        expected: the right answer.
        mistakes: message -> the output that mistake would give (same shape as ``expected``),
            as a mapping or as (message, output) pairs (so that two variants of one mistake can
            share a message); the first one ``actual`` matches is the diagnosis.
        atol: absolute tolerance of every comparison.

    Returns:
        ``None`` if ``actual`` matches ``expected``, else a one-line message.
    """
    if not isinstance(actual, torch.Tensor):
        return f"{what} should be a torch.Tensor, got {type(actual).__name__}."
    if tuple(actual.shape) != tuple(expected.shape):
        return (f"wrong shape: {what} has shape {tuple(actual.shape)}, "
                f"expected {tuple(expected.shape)}.")
    if not bool(torch.isfinite(actual).all()):
        return f"{what} contains NaN or inf."
    if not not_close(actual, expected, atol):
        return None
    pairs = mistakes.items() if isinstance(mistakes, Mapping) else mistakes
    for message, wrong in pairs:
        if tuple(wrong.shape) == tuple(actual.shape) and not not_close(actual, wrong, atol):
            return message
    return f"{what} differs from the right answer {first_mismatch(actual, expected, atol)}."
