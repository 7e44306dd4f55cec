"""The shared argument checks: TypeError for a wrong type, ValueError for a bad value,
messages naming the argument and what is allowed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers.validation import (
    check_bool,
    check_choice,
    check_int,
    check_ints,
    check_positive,
    check_probability,
    check_real,
    check_reals,
    check_tensor,
    is_int,
    is_real,
)


def test_is_int_and_is_real_reject_bools():
    assert is_int(3) and is_int(np.int64(3)) and not is_int(True) and not is_int(3.0)
    assert is_real(3) and is_real(2.5) and is_real(np.float32(1)) and not is_real(False)
    assert not is_real("1") and not is_real(None)


def test_check_int_returns_a_python_int():
    value = check_int("depth", np.int64(7), minimum=1)
    assert value == 7 and type(value) is int


@pytest.mark.parametrize("bad", [True, 2.0, "2", None])
def test_check_int_wrong_type(bad):
    with pytest.raises(TypeError, match=r"depth must be an int >= 1"):
        check_int("depth", bad, minimum=1)


def test_check_int_bounds():
    with pytest.raises(ValueError, match=r"depth must be an int >= 1, got 0"):
        check_int("depth", 0, minimum=1)
    with pytest.raises(ValueError, match=r"layer must be an int in \[0, 11\], got 12"):
        check_int("layer", 12, minimum=0, maximum=11)
    assert check_int("layer", 11, minimum=0, maximum=11) == 11


def test_check_real_accepts_ints_and_returns_float():
    value = check_real("gain", 2, minimum=0.0)
    assert value == 2.0 and type(value) is float


@pytest.mark.parametrize("bad", [True, "1.0", None, [1.0]])
def test_check_real_wrong_type(bad):
    with pytest.raises(TypeError, match="gain must be a finite number"):
        check_real("gain", bad)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_check_real_rejects_non_finite(bad):
    with pytest.raises(ValueError, match="gain must be a finite number"):
        check_real("gain", bad)


def test_check_real_inclusive_and_exclusive_bounds():
    assert check_real("slope", 0.0, minimum=0.0, maximum=1.0) == 0.0
    with pytest.raises(ValueError, match=r"slope must be a finite number in \[0, 1\], got 1.5"):
        check_real("slope", 1.5, minimum=0.0, maximum=1.0)
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        check_real("fraction", 1.0, minimum=0.0, maximum=1.0, min_inclusive=False, max_inclusive=False)


def test_check_positive():
    assert check_positive("lr", 1e-3) == 1e-3
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match="lr must be a finite number > 0"):
            check_positive("lr", bad)
    with pytest.raises(TypeError, match="lr"):
        check_positive("lr", "0.1")


def test_check_probability():
    assert check_probability("p", 0.0) == 0.0 and check_probability("p", 1) == 1.0
    with pytest.raises(ValueError, match=r"p must be a finite number in \(0, 1\)"):
        check_probability("p", 0.0, open_interval=True)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_probability("p", 1.2)


def test_check_bool():
    assert check_bool("scaled", np.bool_(True)) is True
    for bad in (1, "yes", None):
        with pytest.raises(TypeError, match="scaled must be True or False"):
            check_bool("scaled", bad)


def test_check_choice():
    assert check_choice("norm", "pre", ("pre", "post")) == "pre"
    with pytest.raises(ValueError, match=r"norm must be one of \('pre', 'post'\), got 'mid'"):
        check_choice("norm", "mid", ("pre", "post"))
    with pytest.raises(ValueError, match="norm must be one of"):
        check_choice("norm", ["pre"], {"pre", "post"})  # unhashable: simply not a choice


def test_check_ints():
    assert check_ints("seeds", range(3), minimum=0) == (0, 1, 2)
    with pytest.raises(TypeError, match="seeds must be a sequence"):
        check_ints("seeds", "012", minimum=0)
    with pytest.raises(TypeError, match="every value in seeds"):
        check_ints("seeds", [0, 1.5], minimum=0)
    with pytest.raises(ValueError, match="seeds must hold at least one"):
        check_ints("seeds", [], minimum=0)
    with pytest.raises(ValueError, match="every value in seeds must be an int >= 0, got -1"):
        check_ints("seeds", [0, -1], minimum=0)


def test_check_reals():
    assert check_reals("scales", (1, 2.5)) == (1.0, 2.5)
    with pytest.raises(ValueError, match="every value in scales"):
        check_reals("scales", [1.0, 0.0])
    with pytest.raises(TypeError, match="scales must be a sequence"):
        check_reals("scales", 1.0)
    with pytest.raises(ValueError, match="at least one"):
        check_reals("scales", [])


def test_check_tensor():
    x = torch.zeros(2, 3)
    assert check_tensor("x", x, ndim=2, floating=True, non_empty=True) is x
    assert check_tensor("x", x, ndim=(1, 2)) is x
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got ndarray"):
        check_tensor("x", np.zeros(3))
    with pytest.raises(ValueError, match=r"x must have 1 dimension\(s\), got shape \(2, 3\)"):
        check_tensor("x", x, ndim=1)
    with pytest.raises(TypeError, match="floating-point"):
        check_tensor("x", torch.zeros(3, dtype=torch.long), floating=True)
    with pytest.raises(ValueError, match="at least one element"):
        check_tensor("x", torch.zeros(0), non_empty=True)
