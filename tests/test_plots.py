"""helpers.plots: the shared figure helpers (new_figure, artist, set_limits, freeze_layout)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.plots import artist, freeze_layout, new_figure, set_limits


def _figure():
    fig, axes = new_figure(1, 2, figsize=(6.0, 3.0))
    left, right = axes[0]
    left.plot([0, 1], [0, 1], gid="curve")
    right.axvspan(0.2, 0.4, gid="zone")
    for ax in (left, right):
        ax.set_title("a title")
        ax.set_xlabel("x (units)")
        ax.set_ylabel("y (units)")
    return fig, left, right


def test_artist_finds_by_gid() -> None:
    fig, left, right = _figure()
    assert artist(left, "curve") is left.lines[0]
    assert artist(right, "zone") is right.patches[0]
    with pytest.raises(KeyError, match="no artist with gid 'zone'"):
        artist(left, "zone")


def test_set_limits_changes_only_what_differs() -> None:
    fig, left, _ = _figure()
    set_limits(left, x=(0.0, 2.0), y=(-1.0, 3.0))
    assert left.get_xlim() == (0.0, 2.0) and left.get_ylim() == (-1.0, 3.0)
    calls = []
    left.callbacks.connect("xlim_changed", lambda ax: calls.append("x"))
    left.callbacks.connect("ylim_changed", lambda ax: calls.append("y"))
    set_limits(left, x=(0.0, 2.0), y=(-1.0, 4.0))
    assert calls == ["y"]  # the unchanged x range was left alone
    set_limits(left)  # nothing asked: nothing changes
    assert calls == ["y"]


def test_freeze_layout_keeps_the_constrained_positions() -> None:
    fig, left, right = _figure()
    assert fig.get_layout_engine() is not None
    default = [ax.get_position().bounds for ax in fig.axes]
    assert freeze_layout(fig) is fig
    assert fig.get_layout_engine() is None
    placed = [ax.get_position().bounds for ax in fig.axes]
    assert placed != default  # the constrained layout ran once and moved the axes
    left.set_title("a much longer title that would make a layout engine move the axes")
    fig.draw_without_rendering()
    assert [ax.get_position().bounds for ax in fig.axes] == placed  # frozen: nothing moves


def test_freeze_layout_can_pin_labels_or_skip_measuring() -> None:
    fig, left, _ = _figure()
    freeze_layout(fig, pin_labels=True)
    x, y = left.xaxis.label.get_position(), left.yaxis.label.get_position()
    # pinned in axes fraction: the x label centred below the axes, the y label left of them
    assert left.xaxis.label.get_transform() != left.transData
    assert x[0] == pytest.approx(0.5) and x[1] < 0 and y[0] < 0 and y[1] == pytest.approx(0.5)
    fig2, _, _ = _figure()
    before = [ax.get_position().bounds for ax in fig2.axes]
    freeze_layout(fig2, measure=False)
    assert fig2.get_layout_engine() is None
    assert [ax.get_position().bounds for ax in fig2.axes] == before  # not laid out: placed by hand later
    assert np.isfinite(before).all()
