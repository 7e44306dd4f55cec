"""Argument checks shared by every compute module.

One rule everywhere: a value of the wrong *type* raises :class:`TypeError`, a value of the
right type that is out of range (or not one of the allowed choices) raises
:class:`ValueError`.  Every message names the argument, says what is allowed and shows what
was given, e.g. ``depth must be an int >= 1, got 0``.

Each function returns the value converted to a plain Python type (``int``, ``float``,
``bool``, ``tuple``), so callers write ``depth = check_int("depth", depth, minimum=1)``.
Booleans are never accepted as numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar

import numpy as np

if TYPE_CHECKING:  # torch is imported only when a tensor is checked
    import torch

T = TypeVar("T")

__all__ = [
    "check_bool",
    "check_choice",
    "check_int",
    "check_ints",
    "check_positive",
    "check_probability",
    "check_real",
    "check_reals",
    "check_tensor",
    "is_int",
    "is_real",
]


def is_int(value: object) -> TypeGuard[int | np.integer]:
    """Whether ``value`` is a Python or NumPy integer (not a bool)."""
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))


def is_real(value: object) -> TypeGuard[int | float | np.integer | np.floating]:
    """Whether ``value`` is a Python or NumPy int or float (not a bool)."""
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))


def _range_text(kind: str, minimum: float | None, maximum: float | None, *,
                min_inclusive: bool = True, max_inclusive: bool = True) -> str:
    if minimum is not None and maximum is not None:
        left, right = "[" if min_inclusive else "(", "]" if max_inclusive else ")"
        return f"{kind} in {left}{minimum:g}, {maximum:g}{right}"
    if minimum is not None:
        return f"{kind} {'>=' if min_inclusive else '>'} {minimum:g}"
    if maximum is not None:
        return f"{kind} {'<=' if max_inclusive else '<'} {maximum:g}"
    return kind


def check_int(name: str, value: object, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]`` (either bound optional).

    Raises:
        TypeError: if ``value`` is not an int (a bool is not).
        ValueError: if it is outside the bounds.
    """
    allowed = _range_text("an int", minimum, maximum)
    if not is_int(value):
        raise TypeError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    number = int(value)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValueError(f"{name} must be {allowed}, got {number}")
    return number


def check_real(name: str, value: object, *, minimum: float | None = None, maximum: float | None = None,
               min_inclusive: bool = True, max_inclusive: bool = True) -> float:
    """``value`` as a finite ``float`` within the bounds (either optional; inclusive by default).

    Raises:
        TypeError: if ``value`` is not a real number (a bool is not).
        ValueError: if it is nan, infinite or outside the bounds.
    """
    allowed = _range_text("a finite number", minimum, maximum, min_inclusive=min_inclusive,
                          max_inclusive=max_inclusive)
    if not is_real(value):
        raise TypeError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    number = float(value)
    bad = not math.isfinite(number)
    if minimum is not None:
        bad = bad or (number < minimum if min_inclusive else number <= minimum)
    if maximum is not None:
        bad = bad or (number > maximum if max_inclusive else number >= maximum)
    if bad:
        raise ValueError(f"{name} must be {allowed}, got {number:g}")
    return number


def check_positive(name: str, value: object) -> float:
    """``value`` as a finite ``float`` > 0 (see :func:`check_real`)."""
    return check_real(name, value, minimum=0.0, min_inclusive=False)


def check_probability(name: str, value: object, *, open_interval: bool = False) -> float:
    """``value`` as a ``float`` in [0, 1] (in (0, 1) when ``open_interval``)."""
    return check_real(name, value, minimum=0.0, maximum=1.0, min_inclusive=not open_interval,
                      max_inclusive=not open_interval)


def check_bool(name: str, value: object) -> bool:
    """``value`` as a ``bool``.

    Raises:
        TypeError: if ``value`` is not ``True``/``False`` (a NumPy bool is accepted).
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_choice(name: str, value: T, choices: Collection[object]) -> T:
    """``value`` if it is one of ``choices``.

    Raises:
        ValueError: if it is not (any type: a wrong type is simply not one of the choices).
    """
    try:
        allowed = value in choices
    except TypeError:  # unhashable value tested against a set or dict
        allowed = False
    if not allowed:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def _items(name: str, values: object, what: str) -> list[Any]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a sequence of {what}, got {values!r} ({type(values).__name__})")
    items = list(values)
    if not items:
        raise ValueError(f"{name} must hold at least one value ({what}), got none")
    return items


def check_ints(name: str, values: object, *, minimum: int | None = None,
               maximum: int | None = None) -> tuple[int, ...]:
    """A non-empty sequence of ints within the bounds, as a tuple (see :func:`check_int`).

    Raises:
        TypeError: if ``values`` is not a sequence (a string is not) or holds a non-int.
        ValueError: if it is empty or holds an int outside the bounds.
    """
    what = _range_text("ints", minimum, maximum)
    return tuple(check_int(f"every value in {name}", v, minimum=minimum, maximum=maximum)
                 for v in _items(name, values, what))


def check_reals(name: str, values: object, check: Callable[[str, object], float] = check_positive,
                what: str = "finite numbers > 0") -> tuple[float, ...]:
    """A non-empty sequence of numbers, each passed through ``check`` (default: > 0), as a tuple.

    Raises:
        TypeError: if ``values`` is not a sequence (a string is not) or holds a non-number.
        ValueError: if it is empty or ``check`` rejects an entry.
    """
    return tuple(check(f"every value in {name}", v) for v in _items(name, values, what))


def check_tensor(name: str, value: object, *, ndim: int | Collection[int] | None = None,
                 floating: bool = False, non_empty: bool = False) -> torch.Tensor:
    """``value`` if it is a torch tensor with the required number of dimensions.

    Args:
        ndim: the allowed number(s) of dimensions (any if ``None``).
        floating: require a floating-point dtype.
        non_empty: require at least one element.

    Raises:
        TypeError: if ``value`` is not a :class:`torch.Tensor`, or ``floating`` and its dtype
            is not floating point.
        ValueError: for a number of dimensions not in ``ndim``, or an empty tensor when
            ``non_empty``.
    """
    import torch

    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.dim() not in allowed:
            dims = " or ".join(str(d) for d in allowed)
            raise ValueError(f"{name} must have {dims} dimension(s), got shape {tuple(value.shape)}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {value.dtype}")
    if non_empty and value.numel() == 0:
        raise ValueError(f"{name} must hold at least one element, got shape {tuple(value.shape)}")
    return value
