"""Figures of notebook 05: GPT-2 small's LayerNorm γ and β, and what they do to activations."""

from __future__ import annotations

from typing import Literal

import numpy as np
from matplotlib.colors import LogNorm, SymLogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from helpers.gpt2 import (
    CLAIM_RANGE,
    GROUPS,
    INIT_VALUE,
    N_LAYERS,
    WIDTH,
    OutputScale,
    ParameterHistogram,
    ResidualScale,
    layernorm_name,
    layernorm_names,
    short_label,
    stack,
    values_of,
)
from helpers.plots import artist, color, freeze_layout, label_axes, new_figure

KIND_LABEL = {"weight": "γ (weight, stretch)", "bias": "β (bias, shift)"}
GROUP_STYLE = {"ln_1": ("-", 0), "ln_2": ("--", 1), "ln_f": (":", 2)}
LINESTYLES = ("-", "--", ":", "-.")
#: Axes position (left, bottom, width, height) of the slider panel's figure.
PANEL_AXES_BOX = (0.11, 0.15, 0.86, 0.75)


def _layer_ticks(ax, names: list[str]) -> None:
    ax.set_xticks(np.arange(len(names)), [short_label(n) for n in names], fontsize=7, rotation=90)


def _edges(values: np.ndarray, bins: int) -> np.ndarray:
    return np.histogram_bin_edges(values, bins=bins)


def _shade_claim(ax, label: bool = True) -> None:
    ax.axvspan(*CLAIM_RANGE, color=color(3), alpha=0.15,
               label=f"lecture's claim: γ in [{CLAIM_RANGE[0]}, {CLAIM_RANGE[1]}]" if label else None)


def _mark_init(ax, kind: str, label: bool = True) -> None:
    ax.axvline(INIT_VALUE[kind], color="black", lw=1.0, ls="--",
               label=f"GPT-2's initial value ({KIND_LABEL[kind].split()[0]} = {INIT_VALUE[kind]:g})" if label else None)


def all_values_histograms(params: dict[str, np.ndarray], bins: int = 120) -> Figure:
    """Histogram of all 19,200 γ values and all 19,200 β values (25 LayerNorms × 768), log-y."""
    fig, axes = new_figure(1, 2, figsize=(10.0, 3.6))
    for ax, kind, i in zip(axes[0], ("weight", "bias"), (0, 1), strict=True):
        values = values_of(params, kind)
        ax.hist(values, bins=bins, color=color(i), alpha=0.8, label=f"all {values.size:,} values")
        if kind == "weight":
            _shade_claim(ax)
        _mark_init(ax, kind)
        ax.set_yscale("log")
        label_axes(ax, title=f"GPT-2 small: every LayerNorm {KIND_LABEL[kind]}",
                   xlabel=f"{KIND_LABEL[kind].split()[0]} value", ylabel="count (log scale)")
    return fig


def group_histograms(params: dict[str, np.ndarray], bins: int = 80) -> Figure:
    """γ and β split by ln_1 (12 × 768), ln_2 (12 × 768) and ln_f (768): step histograms, log-y."""
    fig, axes = new_figure(1, 2, figsize=(10.0, 3.6))
    for ax, kind in zip(axes[0], ("weight", "bias"), strict=True):
        edges = _edges(values_of(params, kind), bins)
        for group in GROUPS:
            ls, c = GROUP_STYLE[group]
            counts, _ = np.histogram(values_of(params, kind, group), bins=edges)
            ax.stairs(counts, edges, color=color(c), ls=ls, lw=1.6, label=group)
        if kind == "weight":
            _shade_claim(ax, label=True)
        _mark_init(ax, kind)
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.8)
        label_axes(ax, title=f"{KIND_LABEL[kind]} by LayerNorm position",
                   xlabel=f"{KIND_LABEL[kind].split()[0]} value", ylabel="count (log scale)")
    return fig


def per_layer_histograms(params: dict[str, np.ndarray], kind: str = "weight", bins: int = 40) -> Figure:
    """Small multiples: one panel per block (ln_1 and ln_2 overlaid) and one for ln_f; shared x, log-y.

    The shared x range is the 0.1–99.9 % range of all 25 LayerNorms.  Values outside it are not
    piled into the edge bins (that would draw a false peak); each panel states how many of its
    values lie beyond the range, and where the farthest one is.
    """
    # Fixed margins: the constrained-layout solver costs more than drawing these 15 panels.
    fig, axes = new_figure(3, 5, figsize=(11.0, 6.4), sharex=True, sharey=True,
                           gridspec_kw=dict(left=0.06, right=0.99, bottom=0.08, top=0.87,
                                            wspace=0.08, hspace=0.42))
    freeze_layout(fig, measure=False)
    values = values_of(params, kind)
    lo, hi = np.percentile(values, [0.1, 99.9])
    edges = np.linspace(lo, hi, bins + 1)
    panels: list[int | Literal["final"]] = [*range(N_LAYERS), "final"]
    for ax, layer in zip(axes.ravel()[:len(panels)], panels, strict=True):
        groups = ("ln_f",) if layer == "final" else ("ln_1", "ln_2")
        shown = []
        for group in groups:
            ls, c = GROUP_STYLE[group]
            name = layernorm_name(0 if layer == "final" else layer, group)
            v = params[f"{name}.{kind}"]
            counts, _ = np.histogram(v, bins=edges)  # values outside [lo, hi] are left out
            ax.stairs(counts, edges, color=color(c), ls=ls, lw=1.4, label=group)
            shown.append(v)
        v = np.concatenate(shown)
        notes = ([f"{(v < lo).sum()} < {lo:.2g}"] if (v < lo).any() else []) + (
            [f"{(v > hi).sum()} > {hi:.2g} (max {v.max():.3g})"] if (v > hi).any() else [])
        if kind == "weight":
            ax.axvspan(*CLAIM_RANGE, color=color(3), alpha=0.15)
        ax.set_yscale("log")
        ax.yaxis.set_minor_locator(NullLocator())  # 15 log axes: minor ticks cost more than they show
        title = "ln_f (final)" if layer == "final" else f"block {layer}"
        ax.set_title(title + "\noff axis: " + (", ".join(notes) if notes else "none"), fontsize=6)
        ax.legend(fontsize=7, loc="upper right")
    for ax in axes.ravel()[len(panels):]:
        ax.set_axis_off()
    symbol = KIND_LABEL[kind].split()[0]
    for ax in axes[:, 0]:
        ax.set_ylabel("count (log scale)")
    fig.supxlabel(f"{symbol} value (axis: the 0.1–99.9 % range of all 25 LayerNorms; "
                  "values beyond it counted in the panels)", y=0.01)
    fig.suptitle(f"{KIND_LABEL[kind]} per block; shaded: the lecture's [0.2, 0.4]" if kind == "weight"
                 else f"{KIND_LABEL[kind]} per block")
    return fig


def parameter_heatmaps(params: dict[str, np.ndarray], marked: list[int] | None = None) -> Figure:
    """γ (log colour scale) and β (symmetric-log colour scale) over 25 LayerNorms × 768 channels."""
    fig, axes = new_figure(2, 1, figsize=(11.0, 6.4))
    names = layernorm_names()
    gammas, betas = stack(params, "weight"), stack(params, "bias")
    g_img = axes[0, 0].imshow(np.clip(np.abs(gammas), 1e-2, None), aspect="auto", cmap="viridis",
                              norm=LogNorm(vmin=1e-2, vmax=float(np.abs(gammas).max())),
                              interpolation="nearest")
    lim = float(np.abs(betas).max())
    b_img = axes[1, 0].imshow(betas, aspect="auto", cmap="PuOr",
                              norm=SymLogNorm(linthresh=0.05, vmin=-lim, vmax=lim),
                              interpolation="nearest")
    fig.colorbar(g_img, ax=axes[0, 0], label="|γ| (log colour scale)")
    fig.colorbar(b_img, ax=axes[1, 0], label="β (symlog colour scale)")
    ticks = list(range(0, len(names), 2)) + [len(names) - 1]
    for ax, kind in zip(axes[:, 0], ("weight", "bias"), strict=True):
        ax.set_yticks(ticks, [short_label(names[t]) for t in ticks], fontsize=7)
        if marked:
            ax.plot(marked, [-0.9] * len(marked), ls="none", marker="v", ms=6, color=color(5),
                    clip_on=False, label="recurring outlier channels")
        label_axes(ax, title=f"{KIND_LABEL[kind]} of every LayerNorm (rows) and channel (columns)",
                   xlabel=f"channel (0 … {WIDTH - 1})", ylabel="LayerNorm (forward order)")
        if marked:
            ax.legend(loc="upper right", fontsize=7, framealpha=0.9)
    return fig


def channel_profiles(params: dict[str, np.ndarray], channels: list[int], kind: str = "weight") -> Figure:
    """One line per outlier channel: its value in each of the 25 LayerNorms, against the median channel."""
    fig, axes = new_figure(figsize=(10.0, 3.6))
    ax = axes[0, 0]
    rows = stack(params, kind)
    x = np.arange(rows.shape[0])
    ax.fill_between(x, np.percentile(rows, 5, axis=1), np.percentile(rows, 95, axis=1),
                    color="grey", alpha=0.3, label="5–95 % of all 768 channels")
    ax.plot(x, np.median(rows, axis=1), color="black", lw=1.2, label="median channel")
    markers = "osD^v<>ph"
    for i, ch in enumerate(channels):
        y = np.clip(rows[:, ch], 1e-2, None) if kind == "weight" else rows[:, ch]
        ax.plot(x, y, color=color(i), ls=LINESTYLES[i % 4], marker=markers[i % 9], ms=4,
                lw=1.2, label=f"channel {ch}")
    _layer_ticks(ax, layernorm_names())
    if kind == "weight":
        ax.set_yscale("log")
        ax.set_ylim(bottom=1e-2)
    label_axes(ax, title=f"Outlier channels across the 25 LayerNorms: {KIND_LABEL[kind]}",
               xlabel="LayerNorm (forward order)",
               ylabel=f"{KIND_LABEL[kind].split()[0]}" + (" (log scale, floor 0.01)" if kind == "weight" else ""))
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def output_scale_figure(scale: OutputScale, residual: ResidualScale | None = None) -> Figure:
    """Output RMS of each real LayerNorm for standard-normal inputs (and, if given, on real text)."""
    ncols = 2 if residual is not None else 1
    fig, axes = new_figure(1, ncols, figsize=(10.0 if residual is not None else 8.0, 3.6))
    ax = axes[0, 0]
    x = np.arange(len(scale.names))
    ax.axhline(scale.input_rms, color="black", lw=1, ls="--", label=f"input RMS ≈ {scale.input_rms:.2f}")
    ax.plot(x, scale.predicted_rms, color=color(1), ls="none", marker="x", ms=7,
            label="predicted √(mean γ² + mean β²)")
    ax.plot(x, scale.output_rms, color=color(0), ls="-", marker="o", ms=4, label="measured output RMS")
    ax.set_yscale("log")
    _layer_ticks(ax, scale.names)
    label_axes(ax, title="N(0, 1) vectors through each real LayerNorm",
               xlabel="LayerNorm (forward order)", ylabel="RMS per vector (log scale)")
    if residual is not None:
        ax = axes[0, 1]
        ax.plot(x, residual.input_rms, color=color(2), ls="-", marker="s", ms=4,
                label="residual stream going in")
        ax.plot(x, residual.output_rms, color=color(0), ls="--", marker="o", ms=4,
                label="LayerNorm output")
        ax.set_yscale("log")
        _layer_ticks(ax, residual.names)
        label_axes(ax, title=f"Real text ({residual.n_tokens} tokens) through GPT-2",
                   xlabel="LayerNorm (forward order)", ylabel="mean RMS per token (log scale)")
    return fig


# -- the slider panel's figure ----------------------------------------------------------


def layernorm_histogram_figure() -> Figure:
    """The slider panel's figure: one axes with a filled step histogram, the claim band and a 0 line.

    The artists are created once; :func:`update_layernorm_histogram` changes their data.
    """
    fig, axes = new_figure(figsize=(6.4, 3.2))
    ax = axes[0, 0]
    ax.stairs(np.ones(10), np.linspace(0, 1, 11), fill=True, color=color(0), alpha=0.85,
              label="values", gid="hist")
    _shade_claim(ax)
    ax.axvline(0.0, color="black", lw=0.8, ls="--", label="0", gid="zero")
    label_axes(ax, title=" ", xlabel=" ", ylabel=" ")
    # Fixed margins instead of constrained layout: the layout solver would otherwise run on
    # every redraw and cost more than the drawing itself.
    freeze_layout(fig, measure=False)
    ax.set_position(PANEL_AXES_BOX)
    return fig


def update_layernorm_histogram(fig: Figure, hist: ParameterHistogram, *, log_y: bool) -> None:
    """Redraw the panel's histogram in place for one LayerNorm's γ or β
    (:func:`helpers.gpt2.parameter_histogram`), on a log or linear count axis."""
    ax = fig.axes[0]
    bars, zero = artist(ax, "hist"), artist(ax, "zero")
    band = next(a for a in ax.patches if a is not bars)
    weight = hist.kind == "weight"
    bars.set_data(hist.counts, hist.edges)
    bars.set_color(color(0 if weight else 1))
    bars.set_label(f"{hist.name}.{hist.kind} (768 values, {len(hist.counts)} bins)")
    band.set_visible(weight)
    label = str(band.get_label()).lstrip("_")  # the label it was drawn with (matplotlib stores a str)
    band.set_label(label if weight else "_" + label)
    zero.set_visible(not weight)
    zero.set_label("_0" if weight else "0")
    span = float(hist.edges[-1] - hist.edges[0]) or 1.0
    ax.set_xlim(hist.edges[0] - 0.05 * span, hist.edges[-1] + 0.05 * span)
    ax.set_yscale("log" if log_y else "linear")
    ax.set_ylim((0.7, hist.counts.max() * 2.0) if log_y else (0, hist.counts.max() * 1.1))
    label_axes(ax, title=f"{hist.name}: {KIND_LABEL[hist.kind]}",
               xlabel=f"{KIND_LABEL[hist.kind].split()[0]} value",
               ylabel="count (log scale)" if log_y else "count", legend=False)
    ax.legend(fontsize=8, loc="upper right")
