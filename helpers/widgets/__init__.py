"""Interactive panels: thin ipywidgets wrappers around the plotting functions.

Each module ``helpers.widgets.<concept>`` builds :class:`~helpers.widgets.panel.Panel`
objects and lists its panel factories in a module-level ``PANELS`` dict, so tests and the
benchmark harness can find every panel with :func:`all_panels`.

Every panel's ``update(figure, **controls) -> str`` lives here, in its concept's module: a
module-level ``update_<panel>`` function, or ``make_<panel>_update(...)`` returning one when
it works over data prepared once (a weight bank, standardized inputs, trained runs).  An
update asks the compute module (``helpers.<concept>``) for the numbers, hands them to the
drawing function ``helpers.plots.<concept>.update_*_figure`` (which only changes artists)
and formats the readout line.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from helpers.widgets.panel import Panel


def all_panels() -> dict[str, Callable[[], Panel]]:
    """Every registered panel factory, keyed ``"<module>.<name>"`` (e.g. ``"start.gaussian"``)."""
    found: dict[str, Callable[[], Panel]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name == "panel" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name, factory in getattr(module, "PANELS", {}).items():
            found[f"{info.name}.{name}"] = factory
    return found


__all__ = ["Panel", "all_panels"]
