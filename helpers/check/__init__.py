"""Instant feedback on the functions students write in the build-it-yourself exercises.

Each exercise is called on the student's function and returns the function the notebook
goes on with (the student's when it is right, the course's own otherwise)::

    from helpers import check
    layer_norm = check.layer_norm(my_layer_norm)

It prints one line: ``✓ layer_norm: …`` or ``✗ layer_norm: <the mistake>``; the points of a
graded run come from the locked cell after it, ``check.layer_norm.grade(my_layer_norm)``. The machinery
is in :mod:`helpers.check.feedback`; the exercises live in one module per lecture concept,
named like the compute module they check against.
"""

from __future__ import annotations

import importlib
import pkgutil

from helpers.check.feedback import Exercise, Feedback, Question

__all__ = ["Exercise", "Feedback", "Question"]

#: The modules that hold the machinery, not exercises.
_MACHINERY = {"feedback", "inputs"}

# Every other module of this package holds exercises and questions, exported by name
# (``check.layer_norm``); a new chapter's module is found without an edit here.
for _module in sorted(info.name for info in pkgutil.iter_modules(__path__) if info.name not in _MACHINERY):
    _exports = importlib.import_module(f"{__name__}.{_module}")
    for _name in _exports.__all__:
        globals()[_name] = getattr(_exports, _name)
        __all__.append(_name)
