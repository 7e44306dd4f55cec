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

from helpers.check.attention import *  # noqa: F403
from helpers.check.drift import *  # noqa: F403
from helpers.check.fans import *  # noqa: F403
from helpers.check.feedback import Exercise, Feedback, Question
from helpers.check.gpt2 import *  # noqa: F403
from helpers.check.gradcheck import *  # noqa: F403
from helpers.check.initialization import *  # noqa: F403
from helpers.check.norm_layers import *  # noqa: F403
from helpers.check.norms import *  # noqa: F403
from helpers.check.regularization import *  # noqa: F403
from helpers.check.rescaling import *  # noqa: F403
from helpers.check.transformer import *  # noqa: F403
from helpers.check.transformer_forward import *  # noqa: F403
from helpers.check.weight_decay import *  # noqa: F403

__all__ = ["Exercise", "Feedback", "Question"]
