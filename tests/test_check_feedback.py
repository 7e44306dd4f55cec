"""The machinery every build-it-yourself exercise shares (helpers.check.feedback)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import check
from helpers.check.feedback import AUTOGRAD, Exercise, Question, compare, first_mismatch, grading


def _double(x: torch.Tensor) -> torch.Tensor:
    return 2 * x


def _diagnose_double(student) -> str | None:
    x = torch.arange(6.0).reshape(2, 3)
    return compare("the output", student(x), 2 * x, {"added instead of multiplied.": x + 2})


DOUBLE = Exercise("double", "doubles every entry.", _double, _diagnose_double)


def _stub(*args, **kwargs):
    raise NotImplementedError()


def test_a_right_answer_passes_and_is_returned(capsys):
    def mine(x):
        return x * 2

    assert DOUBLE.feedback(mine).passed
    assert DOUBLE(mine) is mine
    assert capsys.readouterr().out == "✓ double: doubles every entry.\n"


def test_a_known_mistake_is_named_and_the_reference_is_returned(capsys):
    def wrong(x):
        return x + 2

    result = DOUBLE.feedback(wrong)
    assert not result.passed and result.written
    assert result.message == "added instead of multiplied."
    assert DOUBLE(wrong) is _double
    out = capsys.readouterr().out.splitlines()
    assert out == ["✗ double: added instead of multiplied.",
                   "  The cells below use the course's own double instead."]


def test_the_stub_says_not_written_and_falls_back(capsys):
    result = DOUBLE.feedback(_stub)
    assert not result.passed and not result.written
    assert "not written yet" in result.message
    assert DOUBLE(_stub) is _double
    assert "use the course's own double" in capsys.readouterr().out


def test_an_exception_in_the_answer_is_reported_in_one_line():
    def broken(x):
        raise IndexError("dimension out of range\nsecond line")

    result = DOUBLE.feedback(broken)
    assert not result.passed
    assert result.message == "your function raised IndexError: dimension out of range"


def test_a_wrong_shape_is_named():
    result = DOUBLE.feedback(lambda x: (2 * x).T)
    assert result.message == "wrong shape: the output has shape (3, 2), expected (2, 3)."


def test_not_a_tensor_and_non_finite_outputs_are_named():
    assert "should be a torch.Tensor, got list" in DOUBLE.feedback(lambda x: [1.0]).message
    assert "NaN or inf" in DOUBLE.feedback(lambda x: x / 0).message


def test_an_unknown_mistake_says_where_it_differs():
    result = DOUBLE.feedback(lambda x: 2 * x + (x == 4).float())
    assert result.message == ("the output differs from the right answer at [1, 1]: 9 instead of 8 "
                              "(largest difference 1).")


def test_first_mismatch_points_at_the_first_entry_beyond_tolerance():
    expected = torch.zeros(3, 4)
    actual = expected.clone()
    actual[2, 1], actual[1, 3] = 0.5, 0.25
    assert first_mismatch(actual, expected, atol=0.1).startswith("at [1, 3]: 0.25 instead of 0")


def test_under_nbgrader_the_check_still_falls_back_and_only_grade_raises(monkeypatch, capsys):
    """One mistake costs one exercise: the fallback stays in place when grading, so the exercises
    that build on this one still run; the points are lost in the graded cell alone."""
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert grading()
    assert DOUBLE(_stub) is _double  # the check cell falls back, graded or not
    with pytest.raises(AssertionError, match="✗ double: not written yet"):
        DOUBLE.grade(_stub)
    DOUBLE.grade(_double)  # a right answer keeps its points
    monkeypatch.setenv("NBGRADER_EXECUTION", "validate")
    with pytest.raises(AssertionError, match="added instead of multiplied"):
        DOUBLE.grade(lambda x: x + 2)
    monkeypatch.delenv("NBGRADER_EXECUTION")
    assert not grading()
    capsys.readouterr()
    assert DOUBLE.grade(_stub) is None  # outside grading the graded cell does nothing ...
    assert capsys.readouterr().out == ""  # ... and prints nothing


def _softmax(x):
    return torch.softmax(x, dim=-1)


SOFTMAX = Exercise(
    name="softmax", checked="right.", reference=_softmax,
    diagnose=lambda fn: compare("the output", fn(torch.tensor([[0.0, 1.0, 2.0]])),
                                _softmax(torch.tensor([[0.0, 1.0, 2.0]])), {}),
    forbidden=("torch.softmax", "torch.Tensor.softmax", "torch.nn.functional.softmax"))


@pytest.mark.parametrize("shortcut", [lambda x: torch.softmax(x, -1), lambda x: x.softmax(-1),
                                      lambda x: torch.nn.functional.softmax(x, dim=-1)],
                         ids=["torch.softmax", "Tensor.softmax", "F.softmax"])
def test_a_forbidden_call_passes_with_a_note_in_self_study_and_fails_when_graded(shortcut, monkeypatch, capsys):
    result = SOFTMAX.feedback(shortcut)
    assert result.passed and len(result.shortcuts) == 1
    assert SOFTMAX(shortcut) is shortcut
    printed = capsys.readouterr().out
    assert printed.startswith("✓ softmax: right.\n  Correct, but it calls torch.") and "by hand" in printed
    SOFTMAX.grade(shortcut)  # not graded: nothing happens
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(AssertionError, match="right, but it calls torch.*which this task forbids"):
        SOFTMAX.grade(shortcut)


def test_an_answer_by_hand_has_no_note_and_keeps_its_points(monkeypatch):
    def by_hand(x):
        e = (x - x.max(dim=-1, keepdim=True).values).exp()
        return e / e.sum(dim=-1, keepdim=True)

    assert SOFTMAX.feedback(by_hand).shortcuts == ()
    assert "\n" not in str(SOFTMAX.feedback(by_hand))
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    SOFTMAX.grade(by_hand)


def test_the_course_reference_may_use_the_library_but_is_never_recorded_as_the_students():
    """Only the student's own calls are recorded: the diagnosis itself calls torch.softmax."""
    assert SOFTMAX.feedback(lambda x: (lambda e: e / e.sum(-1, keepdim=True))(x.exp())).shortcuts == ()


def _autograd_double(x):
    leaf = x.clone().requires_grad_()
    return torch.autograd.grad((leaf ** 2).sum(), leaf)[0]


def _backward_double(x):
    leaf = x.clone().requires_grad_()
    (leaf ** 2).sum().backward()
    return leaf.grad


def _jacobian_double(x):
    return torch.autograd.functional.jacobian(lambda y: (y ** 2).sum(), x)


@pytest.mark.parametrize("backward", [_autograd_double, _backward_double, _jacobian_double],
                         ids=["autograd.grad", "Tensor.backward", "functional.jacobian"])
def test_autograd_is_recognised_however_it_is_called(backward):
    exercise = Exercise(name="grad", checked="right.", reference=lambda x: 2 * x,
                        diagnose=lambda fn: compare("dx", fn(torch.ones(2, 3)), 2 * torch.ones(2, 3), {}),
                        forbidden=AUTOGRAD)
    result = exercise.feedback(backward)
    assert result.passed and result.shortcuts, result


CHOICE = Question(name="q_choice", answer="b", why="because.",
                  choices={"a": "a misses this.", "b": "", "c": "c misses that."})
NUMBER = Question(name="q_number", answer=2.0, why="two.", rel_tol=0.05)


@pytest.mark.parametrize(("question", "value", "passed", "message"), [
    (CHOICE, None, False, 'not answered yet: replace None by one of "a", "b", "c".'),
    (CHOICE, "b", True, "because."),
    (CHOICE, " B ", True, "because."),
    (CHOICE, "a", False, 'not "a": a misses this.'),
    (CHOICE, "d", False, "'d' is not a choice here"),
    (CHOICE, 2, False, "2 is not a choice here"),
    (NUMBER, 2.09, True, "two."),
    (NUMBER, 2.2, False, "2.2 is too large"),
    (NUMBER, 1, False, "1 is too small"),
    (NUMBER, float("nan"), False, "answer a finite number"),
    (NUMBER, "2", False, "answer a finite number"),
    (NUMBER, True, False, "answer a finite number"),
])
def test_questions_judge_choices_and_numbers(question, value, passed, message):
    result = question.feedback(value)
    assert result.passed is passed and result.message.startswith(message), result


def test_a_question_prints_and_raises_only_when_graded(monkeypatch, capsys):
    CHOICE("a")
    assert capsys.readouterr().out == '✗ q_choice: not "a": a misses this.\n'
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    CHOICE("b")
    with pytest.raises(AssertionError, match="not answered yet"):
        CHOICE(None)


def test_a_badly_written_question_is_refused():
    with pytest.raises(ValueError, match="not one of its choices"):
        Question(name="q", answer="z", why=".", choices={"a": "", "b": ""})
    with pytest.raises(TypeError, match="needs a numeric answer"):
        Question(name="q", answer="a", why=".")


@pytest.mark.parametrize("bad", [None, 3, "my_double"])
def test_not_a_function_is_a_type_error(bad):
    with pytest.raises(TypeError, match="student_fn must be the function you wrote"):
        DOUBLE.feedback(bad)


def test_every_exported_exercise_passes_its_own_reference():
    """The course's implementation is the fallback, so it must pass its own check."""
    exercises = {name: getattr(check, name) for name in dir(check)
                 if isinstance(getattr(check, name), Exercise)}
    assert exercises, "helpers.check exports no exercise"
    for name, exercise in exercises.items():
        assert exercise.name == name, f"check.{name} is called {exercise.name!r} in its messages"
        result = exercise.feedback(exercise.reference)
        assert result.passed, f"check.{name} fails the course's own implementation: {result}"
        assert exercise.feedback(_stub).written is False


def test_calling_the_courses_own_implementation_is_a_shortcut_too(monkeypatch):
    """The reference is importable in the notebook (``init.kaiming_normal``): an answer that
    only calls it passes with a note in self-study and is refused when graded."""
    def via_the_course(x):
        return _double(x)

    result = DOUBLE.feedback(via_the_course)
    assert result.passed and result.shortcuts == (f"the course's own {__name__}._double",), result
    assert DOUBLE.feedback(_double).shortcuts == ()  # the reference judged as itself (the fallback's own check)
    assert DOUBLE.feedback(lambda x: x * 2).shortcuts == ()
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(AssertionError, match="calls the course's own"):
        DOUBLE.grade(via_the_course)


def test_the_profiler_in_place_before_a_check_is_restored():
    import sys

    def outer(frame, event, arg):
        return None

    sys.setprofile(outer)
    try:
        DOUBLE.feedback(lambda x: _double(x))
        assert sys.getprofile() is outer
    finally:
        sys.setprofile(None)


@pytest.mark.parametrize("transform", ["jacfwd", "jacrev", "vjp"])
def test_torch_func_transforms_are_autograd_too(transform):
    """Forward mode (jacfwd) calls no torch function the recorder sees: the profiler names it."""
    def square_grad(x):
        f = lambda y: (y ** 2).sum()  # noqa: E731
        if transform == "vjp":
            return torch.func.vjp(f, x)[1](torch.tensor(1.0))[0]
        return getattr(torch.func, transform)(f)(x)

    exercise = Exercise(name="grad", checked="right.", reference=lambda x: 2 * x,
                        diagnose=lambda fn: compare("dx", fn(torch.ones(3)), 2 * torch.ones(3), {}),
                        forbidden=AUTOGRAD)
    result = exercise.feedback(square_grad)
    assert result.passed and f"torch.func.{transform}" in result.shortcuts, result


@pytest.mark.parametrize("value", [2, 2.0, torch.tensor(2.0), torch.tensor([2.0]), np.float32(2.0),
                                   np.array([2.0])])
def test_a_numeric_answer_may_be_any_one_number(value):
    """helpers.check.inputs.as_number: Python, NumPy and one-element torch numbers are numbers."""
    assert NUMBER.feedback(value).passed


@pytest.mark.parametrize("value", [torch.tensor([2.0, 2.0]), [2.0], "2", True])
def test_a_numeric_answer_is_one_number(value):
    assert not NUMBER.feedback(value).passed
