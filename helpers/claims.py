"""Check a notebook's quantitative claims against what it measured, and summarise seed sweeps.

A notebook states a claim in its text ("the norm falls at least 10⁶-fold"), measures the
quantity, and checks it in a short collapsed *check* cell::

    expect(drop, 1e6, None, "the c = 1 activation norm falls at least 10⁶-fold", fmt=".1e")

which prints one ``✓`` line when the measurement agrees.  When it does not, what happens depends
on who runs the notebook (:func:`claim_failed`): under the tests (the environment variable
:data:`STRICT_ENV` set to ``1``, as ``conftest.py``, ``tools.notebook_tools`` and the Colab check
do) it raises ``AssertionError`` naming the claim and the value, so a wrong claim cannot pass
the tests; in a learner's session it prints a prominent warning and the notebook goes on, so one
surprising number on an unusual machine does not stop "Run all" in the middle of a lab.

Results of training or random draws are summarised over seeds with :func:`seed_summary` (median
and range), and claims are checked on every seed with ``expect(summary.min, ...)`` /
``expect(summary.max, ...)`` or on the median.  Curves (one per seed) are summarised point by
point with :func:`seed_band` (minimum, median, maximum), which the figures draw as a line and a
shaded band.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from helpers.validation import check_int, is_real

__all__ = ["STRICT_ENV", "SeedBand", "SeedSummary", "claim_failed", "expect", "seed_band", "seed_summary"]

#: Set to ``1``, a failed claim raises ``AssertionError`` (the tests); unset, it warns (a learner).
STRICT_ENV = "INIT_NORM_STRICT_CLAIMS"


def claim_failed(message: str) -> None:
    """Report a claim the measurement contradicts: raise under the tests, warn otherwise.

    Raises:
        AssertionError: with ``message``, when the environment variable :data:`STRICT_ENV` is ``1``.
    """
    if os.environ.get(STRICT_ENV) == "1":
        raise AssertionError(message)
    rule = "⚠" * 40
    print(f"{rule}\n⚠ NOT CONFIRMED ON THIS RUN · CHƯA ĐƯỢC XÁC NHẬN Ở LẦN CHẠY NÀY\n{message}\n"
          "The notebook goes on, but the text above states something this run did not measure: read it\n"
          "with care and show this message to your instructor. · Notebook vẫn chạy tiếp, nhưng đoạn văn ở\n"
          "trên nêu một điều mà lần chạy này không đo được: hãy đọc thận trọng và báo cho giảng viên.\n"
          f"{rule}", file=sys.stderr)


def _number(name: str, value: object) -> float:
    """``value`` as a float: a real number or a 0-d tensor/array holding one; ±inf is allowed
    (a measurement may overflow), NaN is not."""
    if not is_real(value):
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # a 0-d torch/NumPy value
            return _number(name, value.item())
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    number = float(value)
    if math.isnan(number):
        raise ValueError(f"{name} must not be NaN")
    return number


def expect(value: object, lo: float | None, hi: float | None, claim: str,
           fmt: str = ".3g") -> float:
    """Check that ``lo <= value <= hi`` and print ``✓ claim (measured …, expected …)``.

    Args:
        value: the measured number (a Python, NumPy or 0-d torch scalar).
        lo: the smallest value consistent with the claim, or ``None`` for no lower bound.
        hi: the largest value consistent with the claim, or ``None`` for no upper bound.
        claim: the sentence of the notebook's text being checked, in a few words.
        fmt: the format spec used to print the measured value and the bounds; choose one
            coarse enough that the printed line is the same on every machine.

    Returns:
        The measured value as a float, so a check can be used inline.

    Raises:
        TypeError: if ``value``, ``lo`` or ``hi`` is not a real number, or ``claim`` is not a str.
        ValueError: if ``value`` is NaN, both bounds are ``None``, ``lo > hi`` or ``claim`` is empty.
        AssertionError: if the measured value is outside ``[lo, hi]`` under the tests
            (:func:`claim_failed`; in a learner's session it warns and returns the value).
    """
    if not isinstance(claim, str):
        raise TypeError(f"claim must be a str, got {type(claim).__name__}")
    if not claim.strip():
        raise ValueError("claim must be a non-empty sentence")
    measured = _number("value", value)
    low = None if lo is None else _number("lo", lo)
    high = None if hi is None else _number("hi", hi)
    if low is None and high is None:
        raise ValueError("lo and hi cannot both be None: an expectation needs a bound")
    if low is not None and high is not None and low > high:
        raise ValueError(f"lo must be <= hi, got lo={low} and hi={high}")
    if low is None:
        expected = f"≤ {high:{fmt}}"
    elif high is None:
        expected = f"≥ {low:{fmt}}"
    else:
        expected = f"in [{low:{fmt}}, {high:{fmt}}]"
    shown = f"measured {measured:{fmt}}, expected {expected}"
    if (low is not None and measured < low) or (high is not None and measured > high):
        claim_failed(f"claim fails: {claim} ({shown})")
        return measured
    print(f"✓ {claim} ({shown})")
    return measured


@dataclass(frozen=True)
class SeedSummary:
    """Median and range of one quantity measured once per seed."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        """How many seeds."""
        return len(self.values)

    @property
    def median(self) -> float:
        """The median over seeds."""
        return float(np.median(self.values))

    @property
    def min(self) -> float:
        """The smallest value over seeds."""
        return min(self.values)

    @property
    def max(self) -> float:
        """The largest value over seeds."""
        return max(self.values)

    def format(self, fmt: str = ".3g") -> str:
        """``'median m (range lo–hi, n seeds)'`` with every number in ``fmt``."""
        return f"median {self.median:{fmt}} (range {self.min:{fmt}}–{self.max:{fmt}}, {self.n} seeds)"

    def __str__(self) -> str:
        return self.format()


def seed_summary(values: Iterable[object], min_seeds: int = 5) -> SeedSummary:
    """Summarise one quantity measured over several seeds (median and range).

    Args:
        values: one measured number per seed.
        min_seeds: the fewest seeds a reported result may rest on (the course's rule is 5).

    Raises:
        TypeError: if a value is not a real number or ``min_seeds`` is not an int.
        ValueError: if a value is NaN or there are fewer than ``min_seeds`` values.
    """
    min_seeds = check_int("min_seeds", min_seeds)
    numbers = tuple(_number(f"values[{i}]", v) for i, v in enumerate(values))
    if len(numbers) < min_seeds:
        raise ValueError(f"values must hold at least min_seeds={min_seeds} results, got {len(numbers)}")
    return SeedSummary(numbers)


@dataclass(frozen=True)
class SeedBand:
    """The spread over seeds of a curve (:func:`seed_band`): one value per point."""

    low: np.ndarray
    """Minimum over seeds."""
    median: np.ndarray
    """Median over seeds."""
    high: np.ndarray
    """Maximum over seeds."""


def seed_band(curves: Sequence[np.ndarray] | np.ndarray) -> SeedBand:
    """Minimum, median and maximum over seeds of ``curves`` (one row per seed, equal lengths).

    Raises:
        ValueError: for no curves or curves of different lengths.
    """
    if len(curves) == 0:
        raise ValueError("curves must hold at least one curve, got none")
    rows = np.stack([np.asarray(c, dtype=np.float64) for c in curves])
    return SeedBand(rows.min(0), np.median(rows, 0), rows.max(0))
