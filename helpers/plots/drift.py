"""Figures of notebook 02 (norm drift): repeated products, weights before/after training,
norms during training, and normalized vs un-normalized norm profiles."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullLocator

from helpers.claims import seed_band
from helpers.drift import growth_per_step, predicted_growth, smoothed_losses
from helpers.plots import artist, color, freeze_layout, label_axes, new_figure, set_limits

LINESTYLES = ("-", "--", "-.", ":")
#: Resolution of the notebook's large static figures (the inline backend renders at ``fig.dpi``):
#: a little below the course default keeps notebook 02, with its many multi-panel study figures,
#: under the 2 MB a notebook may weigh; the slider panels keep the default.
STATIC_DPI = 85
MARKERS = ("o", "s", "^", "D", "v", "P")


def _style(i: int) -> dict:
    """Colour, line style and marker of the ``i``-th curve (readable in grey too)."""
    return {"color": color(i), "linestyle": LINESTYLES[i % len(LINESTYLES)],
            "marker": MARKERS[i % len(MARKERS)], "markevery": 0.1, "markersize": 5}


def _few_log_ticks(ax: Axes, numticks: int = 7) -> None:
    """A log y axis with a handful of labelled decades and no minor ticks: panels redraw fast
    (laying out dozens of tick labels dominates the redraw time)."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, numticks=numticks))
    ax.yaxis.set_minor_locator(NullLocator())


def _plot_norm_sequence(ax: Axes, norms: np.ndarray, i: int, label: str) -> None:
    """One ‖A_k‖ curve; an overflow (inf) or underflow (0) is marked with an ✕ where it happens."""
    steps = np.arange(len(norms))
    good = np.isfinite(norms) & (norms > 0)
    ax.plot(steps[good], norms[good], label=label, **_style(i))
    bad = np.flatnonzero(~good)
    if bad.size:
        k = bad[0]
        y = norms[good][-1] if good.any() else 1.0
        ax.plot([k], [y], marker="X", markersize=11, color=color(i), linestyle="none")
        ax.annotate("inf" if np.isinf(norms[k]) else "0", (k, y), textcoords="offset points",
                    xytext=(4, 4), color=color(i), fontsize=10)


def repeated_product_figure(unscaled: Mapping[float, np.ndarray], scaled: Mapping[float, np.ndarray],
                            n: int, dtype_name: str = "float32") -> Figure:
    """‖A_k‖_F for each ``s``: B_k with N(0, 1) entries (left) and divided by √n (right)."""
    fig, axes = new_figure(1, 2, figsize=(11.0, 4.2))
    fig.set_dpi(STATIC_DPI)
    for ax, data, title, factor in (
        (axes[0, 0], unscaled, f"B_k ~ N(0, 1): growth ≈ s·√n per step (n = {n})", False),
        (axes[0, 1], scaled, "B_k ~ N(0, 1/n): growth ≈ s per step", True),
    ):
        for i, (s, norms) in enumerate(data.items()):
            _plot_norm_sequence(ax, norms, i, f"s = {s:g} (measured ×{growth_per_step(norms):.3g}/step, "
                                             f"predicted ×{predicted_growth(s, n, factor):.3g})")
        ax.set_yscale("log")
        label_axes(ax, title=title, xlabel="step k", ylabel="‖A_k‖_F (log scale)")
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(f"Repeated products A_k = s·A_(k-1)·B_k, {dtype_name}; ✕ = overflow to inf / underflow to 0")
    return fig


# --------------------------------------------------------------------------------------
# Panel (a): one repeated product, any s, n, dtype
# --------------------------------------------------------------------------------------


#: y range of the panel per dtype: both limits of the type stay in view.
Y_LIMITS = {"float16": (1e-8, 1e9), "bfloat16": (1e-46, 1e42), "float32": (1e-46, 1e42),
            "float64": (1e-150, 1e150)}


def _fixed_layout(fig: Figure, label_x: float = -0.11, **margins: float) -> None:
    """Fixed margins, title and axis-label positions instead of a layout engine: a panel
    redraw then does no relayout (measuring tick labels dominated the redraw time)."""
    freeze_layout(fig, measure=False)
    fig.subplots_adjust(**margins)
    for ax in fig.axes:
        ax.set_title(" ", y=1.01)
        ax.xaxis.set_label_coords(0.5, -0.11)
        ax.yaxis.set_label_coords(label_x, 0.5)


def product_panel_figure(steps: int = 60) -> Figure:
    """The figure of the repeated-product panel with its (empty) artists; :func:`update_product_figure`
    updates them in place."""
    fig, axes = new_figure(figsize=(7.0, 3.6))
    _fixed_layout(fig, left=0.13, right=0.98, bottom=0.14, top=0.9)
    ax = axes[0, 0]
    _few_log_ticks(ax)
    ax.set_xlim(0, steps - 1)
    ax.axhline(1.0, color=color(3), linestyle=":", gid="high")
    ax.axhline(1.0, color=color(4), linestyle="-.", gid="low")
    ax.plot([], [], color="0.5", linestyle="--", gid="predicted")
    ax.plot([], [], label="measured ‖A_k‖_F", gid="measured", **_style(0))
    ax.plot([], [], marker="X", markersize=11, color=color(0), linestyle="none", gid="bad")
    ax.annotate("", (0, 1), textcoords="offset points", xytext=(4, 4), color=color(0), fontsize=10,
                gid="note")
    ax.set_xlabel("step k")
    ax.set_ylabel("‖A_k‖_F (log scale)")
    return fig


def update_product_figure(fig: Figure, norms: np.ndarray, predicted: np.ndarray,
                          levels: tuple[float, float], *, s: float, n: int, dtype_name: str,
                          scaled: bool) -> None:
    """Redraw the panel in place: the measured ‖A_k‖_F, the ``predicted`` curve (same steps)
    and the dtype's underflow/overflow ``levels`` (low, high) of :func:`helpers.drift.norm_range`."""
    ax = fig.axes[0]
    art = {name: artist(ax, name) for name in ("high", "low", "predicted", "measured", "bad", "note")}
    steps = np.arange(len(norms))
    growth = predicted_growth(s, n, scaled)
    low, high = levels
    bottom, top = Y_LIMITS[dtype_name]
    art["high"].set_ydata([high, high])
    art["high"].set_visible(high < top)
    art["high"].set_label(f"≈ overflow level (n × largest {dtype_name})")
    art["low"].set_ydata([low, low])
    art["low"].set_visible(low > bottom)
    art["low"].set_label(f"≈ underflow level (n × smallest {dtype_name})")
    art["predicted"].set_data(steps, predicted)
    art["predicted"].set_label(f"predicted ×{growth:.3g} per step")
    good = np.isfinite(norms) & (norms > 0)
    art["measured"].set_data(steps[good], norms[good])
    bad = np.flatnonzero(~good)
    if bad.size:
        k = bad[0]
        y = norms[good][-1] if good.any() else 1.0
        art["bad"].set_data([k], [y])
        art["note"].xy = (k, y)
        art["note"].set_text("inf" if np.isinf(norms[k]) else "0")
    else:
        art["bad"].set_data([], [])
        art["note"].set_text("")
    set_limits(ax, x=(0, len(norms) - 1), y=(bottom, top))
    ax.title.set_text(f"A_k = {s:g}·A_(k-1)·B_k, n = {n}, {dtype_name}, B_k ~ N(0, {'1/n' if scaled else '1'})")
    handles = [a for a in (art["high"], art["low"], art["predicted"], art["measured"]) if a.get_visible()]
    ax.legend(handles=handles, fontsize=8, loc="best")


# --------------------------------------------------------------------------------------
# Weights before / after training
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# Normalization layers
# --------------------------------------------------------------------------------------
NORMALIZATION_TITLES = {"none": "no normalization", "layernorm": "LayerNorm after each layer",
               "batchnorm": "BatchNorm after each layer"}


def normed_profiles_figure(profiles: Mapping[str, Mapping[float, tuple[np.ndarray, np.ndarray]]]) -> Figure:
    """Rows: activation norm, gradient norm; one column per normalization; one curve per ``c``.

    ``profiles[norm][c] = (activation_norms, grad_norms)``.
    """
    cols = len(profiles)
    fig, axes = new_figure(2, cols, figsize=(4.0 * cols, 6.6))
    fig.set_dpi(STATIC_DPI)
    for col, (norm, by_gain) in enumerate(profiles.items()):
        for i, (c, (act, grad)) in enumerate(by_gain.items()):
            layers = np.arange(1, len(act) + 1)
            axes[0, col].plot(layers, act, label=f"c = {c:g}", **_style(i))
            axes[1, col].plot(layers, grad, label=f"c = {c:g}", **_style(i))
        for row, what in ((0, "activation norm ‖z_i‖₂"), (1, "gradient norm ‖∂L/∂W_i‖_F")):
            axes[row, col].set_yscale("log")
            label_axes(axes[row, col], title=NORMALIZATION_TITLES.get(norm, norm),
                       xlabel="hidden layer", ylabel=f"{what} (log scale)")
            axes[row, col].legend(fontsize=8)
    fig.suptitle("50-layer ReLU MLP at init, W ~ N(0, c/n), 256 MNIST images")
    return fig


def profile_panel_figure() -> Figure:
    """The figure of the norm-profile panel with its (empty) artists; :func:`update_profile_figure`
    updates them in place. Each axis holds two lines: the c = 2 reference and the chosen gain."""
    fig, axes = new_figure(1, 2, figsize=(9.0, 3.4))
    _fixed_layout(fig, label_x=-0.19, left=0.1, right=0.98, bottom=0.15, top=0.9, wspace=0.36)
    for ax, what in zip(axes[0], PROFILE_WHAT, strict=True):
        _few_log_ticks(ax, numticks=6)
        ax.plot([], [], color="0.5", linestyle="--", label="c = 2 (reference)")
        ax.plot([], [], color=color(0), marker="o", markevery=0.1, markersize=4, label="c")
        ax.set_xlabel("hidden layer")
        ax.set_ylabel(f"{what} (log scale)")
    return fig


#: The quantity on each axis of the profile panel.
PROFILE_WHAT = ("activation norm ‖z_i‖₂", "gradient norm ‖∂L/∂W_i‖_F")


def _log_limits(values: np.ndarray) -> tuple[float, float]:
    """y limits for positive ``values`` on a log axis, rounded out to whole decades (so a few
    nearby settings share limits and tick labels), with at least one decade either side."""
    finite = values[np.isfinite(values) & (values > 0)]
    if not finite.size:
        return 1e-3, 1e3
    low, high = math.floor(math.log10(finite.min())), math.ceil(math.log10(finite.max()))
    if high - low < 2:
        low, high = low - 1, high + 1
    return 10.0 ** low, 10.0 ** high


def update_profile_figure(fig: Figure, act: np.ndarray, grad: np.ndarray, ref_act: np.ndarray,
                          ref_grad: np.ndarray, gain: float, norm: str) -> None:
    """Redraw the profile panel in place: the chosen profile and the c = 2 reference (same depth, norm)."""
    layers = np.arange(1, len(act) + 1)
    for ax, values, ref, what in zip(fig.axes[:2], (act, grad), (ref_act, ref_grad), PROFILE_WHAT, strict=True):
        ref_line, line = ax.get_lines()[:2]
        shown = np.where(np.isfinite(values) & (values > 0), values, np.nan)
        ref_line.set_data(layers, ref)
        line.set_data(layers, shown)
        line.set_label(f"c = {gain:g}")
        set_limits(ax, x=(0, len(act) + 1), y=_log_limits(np.concatenate([shown, ref])))
        ax.title.set_text(f"{what.split(' ')[0]} norms, {NORMALIZATION_TITLES[norm]}")
        ax.legend(fontsize=8, loc="best")


# --------------------------------------------------------------------------------------
# Several seeds per gain (a DriftStudy): median over seeds, shaded range
# --------------------------------------------------------------------------------------


def _band(ax: Axes, x: np.ndarray, rows: np.ndarray, i: int, label: str, marker: bool = True) -> None:
    """The median over seeds (``rows``: ``[seeds, len(x)]``) as a line, min–max shaded."""
    style = _style(i) if marker else {"color": color(i), "linestyle": LINESTYLES[i % 4]}
    band = seed_band(rows)
    ax.fill_between(x, band.low, band.high, color=color(i), alpha=0.2, linewidth=0)
    ax.plot(x, band.median, label=label, **style)


def _gain_rows(arrays: Mapping[str, np.ndarray]) -> list[tuple[float, np.ndarray]]:
    """``(c, row indices)`` for every gain of a ``weights_move`` study, in training order."""
    gains = np.asarray(arrays["gains"], dtype=np.float64)
    return [(float(c), np.flatnonzero(np.isclose(gains, c))) for c in dict.fromkeys(gains.tolist())]


def weights_study_figure(arrays: Mapping[str, np.ndarray]) -> Figure:
    """The ``weights_move`` study's weights, one colour per gain (median over seeds, range shaded).

    Left, the lecture's figure: every hidden layer's Var(W) at initialization (dotted) and after
    training (solid). Middle: their ratio. Right: ``‖W_T − W_0‖_F / ‖W_0‖_F`` per layer at the
    end (solid) and at the step-``checkpoint`` checkpoint (dashed, median).
    """
    fig, axes = new_figure(1, 3, figsize=(11.5, 3.8))
    fig.set_dpi(STATIC_DPI)
    left, middle, right = axes[0]
    layers = np.arange(1, arrays["relative_change"].shape[1] + 1)
    ratio = arrays["weight_var_final"] / arrays["weight_var_init"]
    n_seeds = 0
    for i, (c, rows) in enumerate(_gain_rows(arrays)):
        n_seeds = len(rows)
        left.plot(layers, np.median(arrays["weight_var_init"][rows], axis=0), color=color(i), linestyle=":",
                  linewidth=2.5, label=f"c = {c:g}, at initialization")
        _band(left, layers, arrays["weight_var_final"][rows], i, f"c = {c:g}, after training")
        _band(middle, layers, ratio[rows], i, f"c = {c:g}")
        _band(right, layers, arrays["relative_change"][rows], i, f"c = {c:g}, end of training")
        right.plot(layers, np.median(arrays["checkpoint_change"][rows], axis=0), color=color(i), linestyle="--",
                   label=f"c = {c:g}, after the checkpoint")
    left.set_yscale("log")
    label_axes(left, title="Var(W) per layer: after training vs at initialization",
               xlabel="hidden layer", ylabel="Var(W_i) (log scale)")
    left.legend(fontsize=7, ncol=2)
    middle.axhline(1.0, color="0.5", linestyle=":", label="unchanged (ratio 1)")
    label_axes(middle, title="Var(W) after / at initialization",
               xlabel="hidden layer", ylabel="Var(W_T) / Var(W_0) (linear scale)")
    right.set_yscale("log")
    label_axes(right, title="How far each layer moved",
               xlabel="hidden layer", ylabel="‖W − W_0‖_F / ‖W_0‖_F (log scale)")
    right.legend(fontsize=7)
    fig.suptitle(f"50-layer ReLU MLPs trained with SGD: median of {n_seeds} seeds per gain, shaded = range")
    return fig


def learning_figure(arrays: Mapping[str, np.ndarray], checkpoint_step: int, steps_per_epoch: int) -> Figure:
    """The ``weights_move`` study's training: left, the training loss (window means); right, the
    test error at initialization, at the checkpoint and after every epoch; one colour per gain,
    median over seeds with the range shaded."""
    fig, axes = new_figure(1, 2, figsize=(11.0, 3.9))
    fig.set_dpi(STATIC_DPI)
    left, right = axes[0]
    epochs = arrays["test_error_epoch"].shape[0]
    x_err = np.concatenate([[0.0, checkpoint_step / steps_per_epoch], np.arange(1, epochs + 1)])
    group = max(1, len(arrays["loss_steps"]) // 40)         # mean over a few windows: ≤ 40 points per curve
    points = len(arrays["loss_steps"]) // group
    loss_epochs = arrays["loss_steps"][group - 1:points * group:group] / steps_per_epoch
    curve = np.nan_to_num(arrays["loss_curve"][:points * group], nan=math.log(10))
    curve = curve.reshape(points, group, -1).mean(axis=1)
    for i, (c, rows) in enumerate(_gain_rows(arrays)):
        _band(left, loss_epochs, curve[:, rows].T, i, f"c = {c:g}", marker=False)
        errors = np.column_stack([arrays["test_error_init"][rows], arrays["checkpoint_error"][rows],
                                  arrays["test_error_epoch"][:, rows].T])
        _band(right, x_err, 100 * errors, i, f"c = {c:g}")
    left.axhline(math.log(10), color="0.5", linestyle=":", label="ln 10 (uniform guess)")
    left.set_ylim(0, 2.6)
    label_axes(left, title="Training loss (mean over windows of steps)", xlabel="epoch",
               ylabel="cross-entropy (nats, linear scale)")
    right.axhline(10, color="0.5", linestyle=":", label="10 % error")
    right.axvline(checkpoint_step / steps_per_epoch, color="0.7", linestyle="--",
                  label=f"step {checkpoint_step} (the live demo's length)")
    right.set_yscale("log")
    label_axes(right, title="Test error on the 10,000 test images", xlabel="epoch",
               ylabel="test error, % (log scale)")
    right.legend(fontsize=8)
    return fig


def study_profile_figure(arrays: Mapping[str, np.ndarray]) -> Figure:
    """Activation-norm profile per layer at initialization (dotted), after the checkpoint
    (dashed, median) and after training (solid, median with the range shaded)."""
    fig, axes = new_figure(figsize=(8.0, 4.3))
    fig.set_dpi(STATIC_DPI)
    ax = axes[0, 0]
    layers = np.arange(1, arrays["act_norms_init"].shape[1] + 1)
    for i, (c, rows) in enumerate(_gain_rows(arrays)):
        ax.plot(layers, np.median(arrays["act_norms_init"][rows], axis=0), color=color(i), linestyle=":",
                linewidth=2.5, label=f"c = {c:g}, at init")
        ax.plot(layers, np.median(arrays["checkpoint_act_norms"][rows], axis=0), color=color(i), linestyle="--",
                label=f"c = {c:g}, at the checkpoint")
        _band(ax, layers, arrays["act_norms_final"][rows], i, f"c = {c:g}, end of training")
    ax.set_yscale("log")
    label_axes(ax, title="Activation norm per layer: at init, at the checkpoint, after training",
               xlabel="hidden layer", ylabel="mean ‖h_i‖₂ over 256 images (log scale)")
    ax.legend(fontsize=7, ncol=3)
    return fig


def study_drift_figure(arrays: Mapping[str, np.ndarray], steps_per_epoch: int) -> Figure:
    """One panel per gain: the tracked layers' activation norms on the training batch during
    training (median over seeds, range shaded)."""
    gain_rows = _gain_rows(arrays)
    fig, axes = new_figure(1, len(gain_rows), figsize=(3.7 * len(gain_rows), 3.5), sharey=True)
    fig.set_dpi(STATIC_DPI)
    group = max(1, len(arrays["tracked_steps"]) // 40)      # mean over a few records: ≤ 40 points per curve
    points = len(arrays["tracked_steps"]) // group
    epochs = arrays["tracked_steps"][:points * group:group] / steps_per_epoch
    norms = arrays["tracked_norms"][:points * group].reshape(points, group, *arrays["tracked_norms"].shape[1:])
    norms = norms.mean(axis=1)
    for ax, (c, rows) in zip(axes[0], gain_rows, strict=True):
        for j, layer in enumerate(arrays["tracked_layers"]):
            _band(ax, epochs, norms[:, rows, j].T, j, f"layer {int(layer)}", marker=False)
        ax.set_yscale("log")
        label_axes(ax, title=f"c = {c:g}", xlabel="epoch", ylabel="mean ‖h_i‖₂ on the batch (log scale)")
        ax.legend(fontsize=8)
    fig.suptitle("Activation norms of a few layers during training (median over seeds, range shaded)")
    return fig


def _cell_band(ax: Axes, lrs: np.ndarray, cells: np.ndarray, i: int, label: str, top: float) -> None:
    """Median and range over seeds (``cells``: ``[rates, seeds]``, ``nan`` = diverged) against the
    learning rate; a rate where every seed diverged is an ✕ at ``top``."""
    finite = np.isfinite(cells)
    some = finite.any(axis=1)
    with np.errstate(all="ignore"):
        low = np.where(some, np.nanmin(np.where(finite, cells, np.inf), axis=1), np.nan)
        high = np.where(some, np.nanmax(np.where(finite, cells, -np.inf), axis=1), np.nan)
        median = np.array([np.median(row[np.isfinite(row)]) if np.isfinite(row).any() else np.nan for row in cells])
    ax.fill_between(lrs, low, high, color=color(i), alpha=0.2, linewidth=0)
    ax.plot(lrs, median, label=label, **_style(i) | {"markevery": 1})
    if not some.all():
        ax.plot(lrs[~some], np.full((~some).sum(), top), marker="X", markersize=10, color=color(i),
                linestyle="none", label=f"{label}: every seed diverged")


def layernorm_depth_figure(arrays: Mapping[str, np.ndarray]) -> Figure:
    """The ``layernorm_depth`` study: one column per architecture; final training loss (top)
    and test error (bottom) against the learning rate, with and without LayerNorm (median over
    seeds, range shaded; ✕ = every seed diverged). The legends are in the first column."""
    depths, residual = arrays["depths"], arrays["residual"]
    lrs, norms = np.asarray(arrays["lrs"], dtype=np.float64), [str(n) for n in arrays["norms"]]
    cols = len(depths)
    fig, axes = new_figure(2, cols, figsize=(2.9 * cols, 5.6), sharey="row")
    fig.set_dpi(STATIC_DPI)
    names = {"layernorm": "with LayerNorm", "none": "without normalization"}
    for a in range(cols):
        arch = f"depth {int(depths[a])}{' + residual' if residual[a] else ''}"
        for n, norm in enumerate(norms):
            _cell_band(axes[0, a], lrs, arrays["final_loss"][a, n], n, names.get(norm, norm), top=2.5)
            _cell_band(axes[1, a], lrs, 100 * arrays["test_error"][a, n], n, names.get(norm, norm), top=95)
        axes[0, a].axhline(math.log(10), color="0.5", linestyle=":", label="ln 10 (uniform guess)")
        axes[0, a].set_ylim(0, 2.6)
        axes[1, a].set_ylim(0, 100)
        for row, what in ((0, "final training loss (nats)"), (1, "test error, %")):
            axes[row, a].set_xscale("log")
            label_axes(axes[row, a], title=arch, xlabel="learning rate (log scale)", ylabel=what, legend=a == 0)
            if a == 0:
                axes[row, a].legend(fontsize=7)
    fig.suptitle("Plain SGD, c = 2, 5 seeds per cell: median, range shaded (✕: every seed diverged)")
    return fig


def why_little_figure(arrays: Mapping[str, np.ndarray]) -> Figure:
    """Why the ``weights_move`` networks' weights move so little, yet their deep norms drift.

    Left (lazy training): the width sweep's relative change ``‖W − W_0‖_F / ‖W_0‖_F`` when the
    training loss first reached the target, median over the ``width × width`` layers (solid) and
    layer 1 (dashed), median over seeds with the range shaded, against the width; dotted: a line
    ∝ 1/√width through the median at the smallest width.  Right: the layer-50 norm after / at
    initialization for the trained weights (filled) and for the initial weights plus a random
    change of the same size in every layer (open), one point per network (and random draw).
    """
    fig, axes = new_figure(1, 2, figsize=(10.5, 3.9))
    fig.set_dpi(STATIC_DPI)
    left, right = axes[0]
    widths = np.asarray(arrays["sweep_widths"], dtype=np.float64)
    change = np.asarray(arrays["sweep_change"], dtype=np.float64)          # [widths, seeds, depth]
    deep = np.median(change[:, :, 1:], axis=2).T if change.shape[2] > 1 else change[:, :, 0].T
    _band(left, widths, deep, 0, "median over layers 2–L (width × width)")
    _band(left, widths, change[:, :, 0].T, 1, "layer 1 (784 × width)")
    start = float(np.median(deep[:, 0]))
    left.plot(widths, start * np.sqrt(widths[0] / widths), color="0.4", linestyle=":", label="∝ 1/√width")
    left.set_xscale("log")
    left.set_xticks(widths, [f"{w:g}" for w in widths])
    left.xaxis.set_minor_locator(NullLocator())
    left.set_yscale("log")
    low, high = 0.7 * np.nanmin(change), 1.4 * np.nanmax(change)
    ticks = [t for t in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5) if low <= t <= high]
    left.set_yticks(ticks, [f"{100 * t:g} %" for t in ticks])
    left.yaxis.set_minor_locator(NullLocator())
    label_axes(left, title="Same loss, wider network: smaller moves",
               xlabel="hidden width (log scale)", ylabel="‖W − W_0‖_F / ‖W_0‖_F (log scale)")
    left.legend(fontsize=7)
    init = np.asarray(arrays["act_norms_init"], dtype=np.float64)[:, -1]
    actual = np.asarray(arrays["act_norms_final"], dtype=np.float64)[:, -1] / init
    random = np.asarray(arrays["random_act_norms"], dtype=np.float64)[:, :, -1] / init   # [draws, networks]
    for i, (c, rows) in enumerate(_gain_rows(arrays)):
        x = np.full(len(rows), i, dtype=np.float64)
        right.plot(x - 0.12, actual[rows], marker=MARKERS[i], color=color(i), linestyle="none",
                   label=f"c = {c:g}, trained")
        right.plot(np.repeat(x + 0.12, random.shape[0]), random[:, rows].T.ravel(), marker=MARKERS[i],
                   markerfacecolor="none", color=color(i), linestyle="none",
                   label=f"c = {c:g}, random change, same size")
    right.axhline(1.0, color="0.5", linestyle=":", label="unchanged")
    _few_log_ticks(right)
    right.set_ylim(0.05, 1e6)                                  # room for the legend above the points
    right.set_xticks(range(len(_gain_rows(arrays))), [f"c = {c:g}" for c, _ in _gain_rows(arrays)])
    label_axes(right, title="Layer 50: trained vs a random change",
               xlabel="initialization gain", ylabel="layer-50 norm / at init (log scale)")
    right.legend(fontsize=6.5, ncol=2, loc="upper center")
    fig.suptitle("Why the weights move little (left), and why their small moves still matter (right)")
    return fig


def similarity_figure(arrays: Mapping[str, np.ndarray]) -> Figure:
    """The ``layernorm_depth`` study: for every architecture and normalization, how much of the input's
    similarity structure the last hidden layer carries at initialization (the correlation of pairwise
    cosine similarities; median over seeds, the range as a horizontal bar) against the best median test
    error over the learning-rate grid; a configuration whose every run diverged is an ✕ at the top."""
    depths, residual = arrays["depths"], arrays["residual"]
    norms = [str(n) for n in arrays["norms"]]
    names = {"layernorm": "LayerNorm", "none": "no normalization"}
    fig, axes = new_figure(1, 1, figsize=(6.8, 3.9))
    fig.set_dpi(STATIC_DPI)
    ax = axes[0][0]
    for a in range(len(depths)):
        for n in range(len(norms)):
            kept = np.asarray(arrays["similarity_init"][a, n], dtype=np.float64)
            errors = np.asarray(arrays["test_error"][a, n], dtype=np.float64)
            medians = [np.median(row[np.isfinite(row)]) for row in errors if np.isfinite(row).any()]
            diverged = not medians
            y = 100.0 if diverged else 100 * min(medians)
            x = float(np.median(kept))
            ax.plot([kept.min(), kept.max()], [y, y], color=color(n), linewidth=1.5, alpha=0.6)
            ax.plot([x], [y], marker="X" if diverged else MARKERS[n], markersize=10 if diverged else 7,
                    color=color(n), linestyle="none")
            ax.annotate(f"depth {int(depths[a])}{' + res.' if residual[a] else ''}", (x, y),
                        textcoords="offset points", xytext=(6, 5), fontsize=8, color=color(n))
    for n, norm in enumerate(norms):
        ax.plot([], [], marker=MARKERS[n], color=color(n), linestyle="-", label=f"{names.get(norm, norm)} "
                "(median, range over seeds)")
    ax.plot([], [], marker="X", color="0.4", linestyle="none", label="every run diverged")
    ax.axvline(0, color="0.6", linewidth=0.8, linestyle=":")
    ax.set_ylim(0, 105)
    label_axes(ax, title="Similarity kept at init vs test error after training",
               xlabel="input similarity kept by the last layer at init (correlation)",
               ylabel="best median test error, 500 steps (%)")
    ax.legend(fontsize=7, loc="center right")
    return fig

def backward_growth_figure(factors: Mapping[str, np.ndarray], ratios: Mapping[str, np.ndarray]) -> Figure:
    """Per block, the factor by which the gradient grows going one layer back
    (‖∂L/∂W_i‖ / ‖∂L/∂W_(i+1)‖, lines) next to the RMS/std of that block's normalization input
    (dashed), median over seeds; ``factors[norm]`` and ``ratios[norm]`` are ``[seeds, layers]``."""
    fig, axes = new_figure(figsize=(8.0, 4.0))
    fig.set_dpi(STATIC_DPI)
    ax = axes[0, 0]
    for i, (norm, rows) in enumerate(factors.items()):
        layers = np.arange(1, rows.shape[1] + 1)
        _band(ax, layers, rows, i, f"{NORMALIZATION_TITLES.get(norm, norm)}: gradient growth per layer")
        ax.plot(layers, np.median(ratios[norm], axis=0), color=color(i), linestyle="--",
                label=f"{NORMALIZATION_TITLES.get(norm, norm)}: RMS / std of the normalization input")
    ax.axhline(math.sqrt(math.pi / (math.pi - 1)), color="0.4", linestyle=":",
               label="√(π/(π−1)) ≈ 1.21 (ReLU of a Gaussian)")
    ax.set_ylim(0.8, 1.8)
    label_axes(ax, title="Going back one layer multiplies the gradient by ≈ RMS / std",
               xlabel="hidden layer i", ylabel="factor per layer (linear scale)")
    ax.legend(fontsize=8)
    return fig


def loss_bands_figure(curves: Mapping[str, np.ndarray], window: int = 20) -> Figure:
    """Training loss of several configurations, ``curves[label]`` of shape ``[steps, seeds]``:
    moving average over ``window`` steps, median over seeds, range shaded, on a linear axis
    that starts at 0 so a loss stuck at ln 10 reads as a flat line at the top."""
    fig, axes = new_figure(figsize=(8.5, 4.2))
    ax = axes[0, 0]
    for i, (label, losses) in enumerate(curves.items()):
        steps, smooth = smoothed_losses(losses, window)
        _band(ax, steps, smooth, i, label)
    ax.axhline(math.log(10), color="0.5", linestyle=":", label="ln 10 ≈ 2.30 (uniform guess)")
    ax.set_ylim(0, 2.6)
    label_axes(ax, title=f"Training loss (moving average over {window} steps; median, range shaded)",
               xlabel="training step", ylabel="cross-entropy (nats, linear scale)")
    ax.legend(fontsize=8, loc="lower left")
    return fig


def relu_stack_figure(measured: Mapping[float, np.ndarray], predicted: Mapping[float, np.ndarray]) -> Figure:
    """Activation norm per layer of deep ReLU MLPs at initialization: measured (median over seeds,
    range shaded; ``measured[c]`` is ``[seeds, depth]``) next to the prediction ``predicted[c]``
    (``[depth]``, dashed, same colour), one colour per gain ``c``."""
    fig, axes = new_figure(figsize=(8.0, 4.4))
    fig.set_dpi(STATIC_DPI)
    ax = axes[0, 0]
    for i, (c, rows) in enumerate(measured.items()):
        rows = np.asarray(rows, dtype=np.float64)
        layers = np.arange(1, rows.shape[1] + 1)
        ax.fill_between(layers, rows.min(axis=0), rows.max(axis=0), color=color(i), alpha=0.2, linewidth=0)
        ax.plot(layers, np.median(rows, axis=0), color=color(i), marker=MARKERS[i % len(MARKERS)],
                markevery=0.1, markersize=5, label=f"c = {c:g}, measured (median of {rows.shape[0]} seeds)")
        ax.plot(layers, np.asarray(predicted[c], dtype=np.float64), color=color(i), linestyle="--",
                linewidth=1.5, label=f"c = {c:g}, predicted")
    ax.set_yscale("log")
    label_axes(ax, title="Deep ReLU MLP at initialization: measured (range shaded) vs predicted norms",
               xlabel="hidden layer l", ylabel="mean ‖h_l‖₂ over 256 images (log scale)")
    ax.legend(fontsize=8)
    return fig


def checkpoint_comparison_figure(live_change: np.ndarray, study_change: np.ndarray, same_seed: np.ndarray,
                                 steps: int) -> Figure:
    """The live network's ``‖W − W_0‖_F / ‖W_0‖_F`` per hidden layer after ``steps`` steps (solid)
    next to the study's networks of the same gain at the same step (``study_change``
    ``[seeds, depth]``: median, range shaded) and the study's network with the same seed
    (``same_seed``, dashed)."""
    fig, axes = new_figure(figsize=(8.0, 4.0))
    ax = axes[0, 0]
    layers = np.arange(1, len(live_change) + 1)
    _band(ax, layers, study_change, 0, f"study: {len(study_change)} seeds (median, range shaded)", marker=False)
    ax.plot(layers, same_seed, color=color(1), linestyle="--", linewidth=2, label="study: the same seed")
    ax.plot(layers, live_change, color=color(2), marker="o", markevery=0.1, markersize=5, linestyle="-",
            label="this notebook's live network")
    ax.set_yscale("log")
    label_axes(ax, title=f"How far each layer moved in {steps} steps: live vs the stored study",
               xlabel="hidden layer", ylabel="‖W − W_0‖_F / ‖W_0‖_F (log scale)")
    ax.legend(fontsize=8)
    return fig
