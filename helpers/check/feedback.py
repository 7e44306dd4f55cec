"""The machinery behind every build-it-yourself exercise: run, diagnose, report, fall back.

An exercise is an :class:`Exercise`: a name, the course's own implementation (the
*reference*), and a ``diagnose`` function that runs the student's function on seeded inputs
and returns ``None`` when it is right, or a one- or two-line message naming the mistake
("normalised over dim 0 (the batch) instead of the last dim", "missing ε: …"). The notebook
calls the exercise on the student's function::

    layer_norm = check.layer_norm(my_layer_norm)

which prints one line (``✓ …`` or ``✗ …``) and returns the function the following cells use:
the student's own when it passed, otherwise the course's reference, saying so. That is what
keeps a notebook running from top to bottom while an exercise is still unanswered.

Graded runs: under nbgrader's ``autograde`` and ``validate`` (which set the environment
variable ``NBGRADER_EXECUTION``), a failing exercise raises :class:`AssertionError` with the
same message instead of falling back, so the check cell loses its points.

The comparison helpers (:func:`compare`, :func:`first_mismatch`) are what the ``diagnose``
functions are made of: they name a wrong shape, and they recognise *typical* mistakes by
comparing the student's output with the outputs those mistakes would give.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["Exercise", "Feedback", "compare", "first_line", "first_mismatch", "grading", "not_close"]

#: The values of ``NBGRADER_EXECUTION`` under which a failure raises instead of falling back.
GRADING_MODES = ("autograde", "validate")

Diagnosis = Callable[[Callable[..., Any]], "str | None"]


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

    def __str__(self) -> str:
        mark = "✓" if self.passed else "✗"
        return f"{mark} {self.exercise}: {self.message}"


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

    def feedback(self, student_fn: object) -> Feedback:
        """Judge ``student_fn`` without printing anything (what the unit tests call).

        Raises:
            TypeError: if ``student_fn`` is not callable.
        """
        if not callable(student_fn):
            raise TypeError(
                f"student_fn must be the function you wrote (callable), got {type(student_fn).__name__}")
        try:
            problem = self.diagnose(student_fn)
        except NotImplementedError:
            return Feedback(self.name, False, "not written yet (it still raises NotImplementedError).",
                            written=False)
        except Exception as error:  # the student's code failed: say where, in one line
            return Feedback(self.name, False,
                            f"your function raised {type(error).__name__}: {first_line(error)}")
        if problem is None:
            return Feedback(self.name, True, self.checked)
        return Feedback(self.name, False, problem)

    def __call__(self, student_fn: object) -> Callable[..., Any]:
        """Print the feedback and return the function the notebook goes on with.

        Returns ``student_fn`` when it passed, else :attr:`reference` (and says so). Under
        nbgrader's autograde/validate a failure raises :class:`AssertionError` instead.
        """
        result = self.feedback(student_fn)
        print(result)
        if result.passed:
            assert callable(student_fn)  # feedback() raised TypeError otherwise
            return student_fn
        if grading():
            raise AssertionError(str(result))
        print(f"  The cells below use the course's own {self.name} instead.")
        return self.reference


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
