"""A figure with controls that redraws in place.

A :class:`Panel` owns one matplotlib figure and an ``update`` function that changes that
figure's artists for given control values.  Moving a control calls ``update`` and puts the
re-rendered PNG into an :class:`ipywidgets.Image`: the picture is replaced, never stacked
below the old one, and it works the same in JupyterLab, Colab and VS Code with no extra
matplotlib backend.  It works with ipywidgets 8 and with ipywidgets 7.7 (Colab's).

The ``update`` function is plain Python, so unit tests and the benchmark harness call it
directly through :meth:`Panel.redraw`, with the values from :meth:`Panel.sweep` (every
control at its ends and middle).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: ``update(figure, **values)`` redraws ``figure`` for the control values and returns a
#: short plain-text readout shown under the figure ("" for none).
UpdateFn = Callable[..., str]

PANEL_DPI = 80
#: The MIME type of a live widget view in a notebook output.
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"


class Panel:
    """Controls plus one figure, redrawn in place by ``update`` when a control moves.

    Args:
        figure: the figure to redraw; create it with :func:`helpers.plots.new_figure`.
        update: ``update(figure, **values) -> str`` redraws the figure in place for the
            given control values and returns a readout text.
        controls: the ipywidgets controls, keyed by the ``update`` argument they feed.
        title: a one-line description shown above the controls.
    """

    def __init__(
        self,
        figure: Figure,
        update: UpdateFn,
        controls: Mapping[str, widgets.ValueWidget],
        *,
        title: str = "",
    ) -> None:
        if not isinstance(figure.canvas, FigureCanvasAgg):
            FigureCanvasAgg(figure)  # one canvas for every redraw: its text measurements are reused
        self.figure = figure
        self._update = update
        self.controls: dict[str, widgets.ValueWidget] = dict(controls)
        self.title = title
        self.defaults: dict[str, Any] = self.values()
        self.readout: str = ""
        self._widget: widgets.Widget | None = None
        self.redraw()

    # -- pure part: what tests and benchmarks call -------------------------------------
    def values(self) -> dict[str, Any]:
        """The current value of every control."""
        return {name: control.value for name, control in self.controls.items()}

    def redraw(self, **values: Any) -> bytes:
        """Redraw the figure for ``values`` (missing ones taken from the controls) as PNG bytes.

        Raises:
            ValueError: for a value whose name is not one of the panel's controls.
        """
        unknown = sorted(set(values) - set(self.controls))
        if unknown:
            raise ValueError(f"unknown control(s) {unknown}; this panel has {sorted(self.controls)}")
        merged = {**self.values(), **values}
        self.readout = self._update(self.figure, **merged)
        return self.png()

    def png(self) -> bytes:
        """The figure as it is now, rendered to PNG bytes."""
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=PANEL_DPI)
        return buffer.getvalue()

    def sweep(self) -> list[dict[str, Any]]:
        """Control settings that exercise the panel: each control at its ends and middle
        (every option for a choice control) while the others keep their defaults."""
        settings: list[dict[str, Any]] = []
        for name, control in self.controls.items():
            for value in _probe_values(control):
                settings.append({**self.defaults, name: value})
        return settings

    # -- widget part: a thin layer over redraw() ---------------------------------------
    def widget(self) -> widgets.Widget:
        """The interactive panel: controls, the figure as an image, and the readout."""
        if self._widget is None:
            width = round(self.figure.get_figwidth() * PANEL_DPI)
            image = widgets.Image(value=self.png(), format="png",
                                  layout=widgets.Layout(width=f"{width}px"))
            readout = widgets.HTML(value=_readout_html(self.readout))

            def refresh(_change: object = None) -> None:
                try:
                    image.value = self.redraw()
                    readout.value = _readout_html(self.readout)
                except Exception as error:  # show the failure where the student looks
                    readout.value = (
                        '<pre class="panel-error" style="color:#D55E00">'
                        f"Panel error: {html.escape(repr(error))}</pre>"
                    )
                    raise

            for control in self.controls.values():
                control.observe(refresh, names="value")
            header = [widgets.HTML(f"<b>{html.escape(self.title)}</b>")] if self.title else []
            controls = widgets.HBox(
                list(self.controls.values()), layout=widgets.Layout(flex_flow="row wrap")
            )
            self._widget = widgets.VBox([*header, controls, image, readout])
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """The live widget, plus the current picture as a PNG for frontends without a
        widget manager (RISE slideshows, static viewers): they show the figure instead
        of a bare ``VBox(...)`` text."""
        bundle = widget_mimebundle(self.widget(), **kwargs)
        bundle["image/png"] = base64.b64encode(self.png()).decode("ascii")
        return bundle


def widget_mimebundle(widget: widgets.Widget, **kwargs: Any) -> dict[str, Any]:
    """What displaying ``widget`` publishes, with ipywidgets 8 and 7 alike.

    ipywidgets 8 widgets have ``_repr_mimebundle_``; ipywidgets 7 (Colab's) publish the same
    bundle from ``_ipython_display_`` instead, which this rebuilds.
    """
    if hasattr(widget, "_repr_mimebundle_"):  # ipywidgets 8
        return widget._repr_mimebundle_(**kwargs)
    plaintext = repr(widget)  # ipywidgets 7: as Widget._ipython_display_ builds it
    bundle: dict[str, Any] = {"text/plain": plaintext[:110] + "…" if len(plaintext) > 110 else plaintext}
    if widget._view_name is not None:
        bundle[WIDGET_VIEW_MIME] = {"version_major": 2, "version_minor": 0,
                                    "model_id": widget._model_id}
        handle_displayed = getattr(widget, "_handle_displayed", None)  # ipywidgets 7's callbacks
        if handle_displayed is not None:
            handle_displayed(**kwargs)
    return bundle


def _readout_html(text: str) -> str:
    return f'<pre class="panel-readout">{html.escape(text)}</pre>' if text else ""


def _probe_values(control: widgets.ValueWidget) -> list[Any]:
    """The ends and middle of a slider, or every option of a choice control."""
    if isinstance(control, widgets.FloatLogSlider):
        exponents = (control.min, (control.min + control.max) / 2, control.max)
        return [control.base**e for e in exponents]
    if isinstance(control, (widgets.IntSlider, widgets.BoundedIntText)):
        return [control.min, (control.min + control.max) // 2, control.max]
    if isinstance(control, (widgets.FloatSlider, widgets.BoundedFloatText)):
        return [control.min, (control.min + control.max) / 2, control.max]
    if isinstance(control, (widgets.Checkbox, widgets.ToggleButton)):
        return [False, True]
    if isinstance(control, widgets.widget_selection._Selection):
        return list(control._options_values)  # Dropdown, ToggleButtons, RadioButtons, ...
    return [control.value]
