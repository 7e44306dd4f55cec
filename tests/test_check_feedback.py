"""The machinery every build-it-yourself exercise shares (helpers.check.feedback)."""

from __future__ import annotations

import pytest
import torch

from helpers import check
from helpers.check.feedback import Exercise, compare, first_mismatch, grading


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


def test_under_nbgrader_a_failure_raises_instead_of_falling_back(monkeypatch, capsys):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert grading()
    with pytest.raises(AssertionError, match="✗ double: not written yet"):
        DOUBLE(_stub)
    assert DOUBLE(_double) is _double  # a right answer still passes
    monkeypatch.setenv("NBGRADER_EXECUTION", "validate")
    with pytest.raises(AssertionError, match="added instead of multiplied"):
        DOUBLE(lambda x: x + 2)
    monkeypatch.delenv("NBGRADER_EXECUTION")
    assert not grading()
    assert DOUBLE(_stub) is _double


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
