"""helpers.claims: the ✓ check lines and the seed summaries of the notebooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.claims import STRICT_ENV, expect, seed_band, seed_summary


def test_expect_prints_a_check_line_and_returns_the_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert expect(np.float32(0.25), 0.2, 0.3, "a quarter", fmt=".2f") == 0.25
    assert capsys.readouterr().out == "✓ a quarter (measured 0.25, expected in [0.20, 0.30])\n"
    expect(torch.tensor(7.0), 5, None, "at least five", fmt=".0f")
    assert capsys.readouterr().out == "✓ at least five (measured 7, expected ≥ 5)\n"
    expect(3, None, 4, "at most four", fmt=".0f")
    assert "expected ≤ 4" in capsys.readouterr().out


@pytest.mark.parametrize(("value", "lo", "hi"), [(0.31, 0.2, 0.3), (0.19, 0.2, 0.3),
                                                 (4.0, 5.0, None), (6.0, None, 5.0)])
def test_expect_fails_naming_the_claim_and_the_value(value: float, lo: float | None,
                                                     hi: float | None) -> None:
    with pytest.raises(AssertionError, match=r"claim fails: the claim \(measured"):
        expect(value, lo, hi, "the claim")


def test_the_tests_run_strict() -> None:
    """conftest.py sets the variable, so every test (and every kernel nbval starts) is strict."""
    import os

    assert os.environ.get(STRICT_ENV) == "1"


def test_in_a_learners_session_a_failed_claim_warns_and_the_notebook_goes_on(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STRICT_ENV)
    assert expect(0.31, 0.2, 0.3, "the claim", fmt=".2f") == 0.31
    captured = capsys.readouterr()
    assert captured.out == "" and "✓" not in captured.err
    assert "NOT CONFIRMED ON THIS RUN" in captured.err and "CHƯA ĐƯỢC XÁC NHẬN" in captured.err
    assert "claim fails: the claim (measured 0.31, expected in [0.20, 0.30])" in captured.err
    monkeypatch.setenv(STRICT_ENV, "0")  # only "1" is strict
    expect(0.31, 0.2, 0.3, "the claim")
    assert "NOT CONFIRMED" in capsys.readouterr().err


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"value": "1"}, TypeError, "value must be a real number"),
    ({"value": True}, TypeError, "value must be a real number"),
    ({"value": float("nan")}, ValueError, "value must not be NaN"),
    ({"value": torch.ones(2)}, TypeError, "value must be a real number"),
    ({"lo": None, "hi": None}, ValueError, "cannot both be None"),
    ({"lo": 2.0, "hi": 1.0}, ValueError, "lo must be <= hi"),
    ({"claim": ""}, ValueError, "claim must be a non-empty"),
    ({"claim": 3}, TypeError, "claim must be a str"),
])
def test_expect_rejects_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    args = {"value": 1.0, "lo": 0.0, "hi": 2.0, "claim": "x"} | kwargs
    with pytest.raises(error, match=match):
        expect(**args)


def test_seed_summary_median_and_range() -> None:
    summary = seed_summary([3.0, 1.0, 2.0, 5.0, 4.0])
    assert (summary.n, summary.median, summary.min, summary.max) == (5, 3.0, 1.0, 5.0)
    assert str(summary) == "median 3 (range 1–5, 5 seeds)"
    assert summary.format(".1f") == "median 3.0 (range 1.0–5.0, 5 seeds)"
    assert seed_summary([1, 2, 4], min_seeds=3).median == 2.0


@pytest.mark.parametrize(("values", "kwargs", "error", "match"), [
    ([1.0] * 4, {}, ValueError, "at least min_seeds=5"),
    ([1.0] * 4 + ["a"], {}, TypeError, r"values\[4\] must be a real number"),
    ([1.0] * 5, {"min_seeds": 2.0}, TypeError, "min_seeds must be an int"),
])
def test_seed_summary_rejects_bad_arguments(values: list, kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        seed_summary(values, **kwargs)


def test_seed_band_is_min_median_max_per_point() -> None:
    band = seed_band([np.array([1.0, 5.0]), np.array([3.0, 2.0]), np.array([2.0, 9.0])])
    np.testing.assert_array_equal(band.low, [1.0, 2.0])
    np.testing.assert_array_equal(band.median, [2.0, 5.0])
    np.testing.assert_array_equal(band.high, [3.0, 9.0])
    with pytest.raises(ValueError, match="curves must hold at least one"):
        seed_band([])
    with pytest.raises(ValueError):
        seed_band([np.ones(2), np.ones(3)])  # curves of different lengths
