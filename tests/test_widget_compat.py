"""Panels display with ipywidgets 8 (the local install) and ipywidgets 7.7 (Colab's).

ipywidgets 7 widgets have no ``_repr_mimebundle_``; a widget whose class hides it stands in
for one here.  ``make test-colab`` runs every notebook with the real ipywidgets 7.7.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from helpers.widgets.panel import WIDGET_VIEW_MIME, widget_mimebundle
from helpers.widgets.start import gaussian_panel


class Version7Slider(widgets.FloatSlider):
    """A slider that, like every ipywidgets 7 widget, lacks ``_repr_mimebundle_``."""

    @property
    def _repr_mimebundle_(self) -> Any:
        raise AttributeError("_repr_mimebundle_")


def test_the_version_7_path_publishes_what_version_8_does() -> None:
    slider = Version7Slider(value=1.0)
    assert not hasattr(slider, "_repr_mimebundle_")
    shown: list[object] = []
    if hasattr(slider, "on_displayed"):  # ipywidgets 7 only
        slider.on_displayed(shown.append)
    bundle = widget_mimebundle(slider)
    assert bundle[WIDGET_VIEW_MIME] == {"version_major": 2, "version_minor": 0,
                                        "model_id": slider.model_id}
    assert bundle["text/plain"] == repr(slider)
    if hasattr(slider, "on_displayed"):
        assert shown == [slider], "display callbacks run, as in ipywidgets 7's _ipython_display_"
    native = widgets.FloatSlider(value=1.0)
    if hasattr(native, "_repr_mimebundle_"):  # ipywidgets 8 here: same keys, same view
        reference = native._repr_mimebundle_()
        assert set(reference) == set(bundle)
        assert reference[WIDGET_VIEW_MIME]["model_id"] == native.model_id


def test_panel_bundle_holds_the_live_view_and_a_picture() -> None:
    bundle = gaussian_panel()._repr_mimebundle_()
    assert {WIDGET_VIEW_MIME, "image/png", "text/plain"} <= set(bundle)


def test_long_reprs_are_shortened_as_ipywidgets_7_does() -> None:
    slider = Version7Slider(description="x" * 200)
    assert widget_mimebundle(slider)["text/plain"].endswith("…")
    assert len(widget_mimebundle(slider)["text/plain"]) == 111
