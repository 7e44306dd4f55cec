"""Every registered interactive panel, driven through its update function.

Each panel is swept over its controls' ends and middle (every option of a choice control):
the redraw must succeed and produce a PNG, and moving each control must change the picture.
Concept-specific panel checks live next to the concept's other tests.
"""

from __future__ import annotations

import ipywidgets as widgets
import pytest

from helpers.start import gaussian_samples
from helpers.widgets import Panel, all_panels
from helpers.widgets.start import gaussian_panel

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PANELS = all_panels()


def test_panels_are_registered() -> None:
    assert "start.gaussian" in PANELS


@pytest.mark.parametrize("name", sorted(PANELS))
def test_panel_sweep_redraws(name: str) -> None:
    panel = PANELS[name]()
    assert isinstance(panel, Panel)
    default_png = panel.redraw(**panel.defaults)
    assert default_png.startswith(PNG_MAGIC)
    changed_by = set()
    for setting in panel.sweep():
        png = panel.redraw(**setting)
        assert png.startswith(PNG_MAGIC)
        assert isinstance(panel.readout, str)
        if png != default_png:
            changed_by.update(k for k, v in setting.items() if v != panel.defaults[k])
    assert changed_by == set(panel.controls), (
        f"controls that never change the figure: {sorted(set(panel.controls) - changed_by)}"
    )


@pytest.mark.parametrize("name", sorted(PANELS))
def test_panel_widget_redraws_in_place(name: str) -> None:
    panel = PANELS[name]()
    box = panel.widget()
    images = [w for w in box.children if isinstance(w, widgets.Image)]
    assert len(images) == 1, "one image, replaced on every redraw"
    before = images[0].value
    control_name, control = next(iter(panel.controls.items()))
    target = next(s[control_name] for s in panel.sweep() if s[control_name] != control.value)
    control.value = target
    assert images[0].value != before
    assert panel.widget() is box


def test_gaussian_panel_readout_tracks_sigma() -> None:
    panel = gaussian_panel()
    for sigma in (0.5, 2.25, 4.0):
        panel.redraw(sigma=sigma)
        assert panel.readout == f"sample std = {gaussian_samples(sigma).std():.2f}  (sigma = {sigma:.2f})"
    assert abs(gaussian_samples(4.0).std() - 4.0) < 0.2


def test_panel_rejects_unknown_control() -> None:
    with pytest.raises(ValueError, match=r"unknown control\(s\) \['gamma'\]"):
        gaussian_panel().redraw(gamma=2.0)


def test_sweep_covers_ends_and_middle() -> None:
    panel = gaussian_panel()
    assert [s["sigma"] for s in panel.sweep()] == [0.5, 2.25, 4.0]


def test_broken_update_is_shown_in_the_readout() -> None:
    def broken(fig: object, **values: object) -> str:
        if values["x"] > 0.5:
            raise RuntimeError("boom")
        return ""

    slider = widgets.FloatSlider(value=0.0, min=0.0, max=1.0)
    panel = Panel(gaussian_panel().figure, broken, {"x": slider})
    box = panel.widget()
    with pytest.raises(RuntimeError, match="boom"):
        slider.value = 1.0
    readout = box.children[-1]
    assert "Panel error" in readout.value and "boom" in readout.value
