"""Figures of notebook 03: which values each normalization averages over, epsilon's place,
LayerNorm on the lecture's matrices, gamma/beta, running statistics, batch-size and
learning-rate effects, and BatchNorm in a deep ReLU network at initialization."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch, StepPatch

from helpers.norms import CUBE_METHODS, DeepReLUProfile, LayerNormOutput, normalization_set
from helpers.plots import color, label_axes, new_figure


def norm_cube_figure(n: int = 4, c: int = 6, hw: int = 5, groups: int = 3) -> Figure:
    """The GroupNorm paper's Figure 2: the N x C x (H·W) activation tensor drawn as a cube,
    four times, with the set of values one mean/variance is computed over shaded."""
    fig = Figure(figsize=(11.0, 3.4), layout="constrained")
    for k, method in enumerate(CUBE_METHODS):
        ax = fig.add_subplot(1, 4, k + 1, projection="3d")
        mask = normalization_set(method, n, c, hw, groups)
        # voxel axes: x = N (examples), y = C (channels), z = H·W (positions)
        faces = np.empty(mask.shape, dtype=object)
        faces[mask] = color(0)
        faces[~mask] = "#f2f2f2"
        ax.voxels(np.ones_like(mask), facecolors=faces, edgecolor="#9a9a9a", linewidth=0.4)
        ax.set_box_aspect((n, c, hw))
        ax.view_init(elev=22, azim=-130)
        ax.set_xticks([]), ax.set_yticks([]), ax.set_zticks([])
        ax.set_xlabel("N (batch)", labelpad=-10)
        ax.set_ylabel("C (channels)", labelpad=-10)
        ax.set_zlabel("H, W (positions)", labelpad=-10)
        ax.set_title(method)
        if k == 0:
            ax.legend(handles=[Patch(color=color(0), label="one mean and variance"),
                               Patch(facecolor="#f2f2f2", edgecolor="#9a9a9a", label="other values")],
                      loc="upper left", bbox_to_anchor=(-0.1, 1.02), fontsize=8)
    fig.suptitle("Which values each method normalizes together (GroupNorm paper, Fig. 2)")
    return fig


def eps_placement_figure(stds: np.ndarray, inside: np.ndarray, outside: np.ndarray, eps: float) -> Figure:
    """Output std of standardization vs input std, eps inside the root vs added to sigma."""
    fig, axes = new_figure(figsize=(7.0, 3.8))
    ax = axes[0, 0]
    ax.plot(stds, inside, color=color(0), label=r"PyTorch: $(x-\mu)/\sqrt{\sigma^2+\varepsilon}$")
    ax.plot(stds, outside, color=color(3), linestyle="--",
            label=r"the LayerNorm lecture: $(x-\mu)/(\sigma+\varepsilon)$")
    ax.axvline(np.sqrt(eps), color="grey", linestyle=":", label=r"$\sigma=\sqrt{\varepsilon}$")
    ax.axvline(eps, color="grey", linestyle="-.", label=r"$\sigma=\varepsilon$")
    ax.set_xscale("log")
    label_axes(ax, title=f"Where ε sits matters only for tiny variances (ε = {eps:g})",
               xlabel="input standard deviation σ (log scale)", ylabel="output standard deviation")
    return fig


def layernorm_scatter_figure(x: np.ndarray, per_row: np.ndarray, whole: np.ndarray) -> Figure:
    """Output vs input value for LayerNorm over each row and over the whole matrix."""
    fig, axes = new_figure(1, 2, figsize=(9.0, 3.8))
    for ax, y, title in ((axes[0, 0], whole, "over the whole matrix"), (axes[0, 1], per_row, "over each row")):
        if title == "over each row":
            for r in range(min(len(x), 30)):
                ax.plot(x[r], y[r], linestyle="none", marker="o", markersize=2.5,
                        color=color(r % 7), alpha=0.7, label="row 0, 1, 2, ... (colours)" if r == 0 else None)
        else:
            ax.plot(x.ravel(), y.ravel(), linestyle="none", marker="o", markersize=2.5, color=color(0),
                    label="every value")
        label_axes(ax, title=f"LayerNorm {title}", xlabel="input value", ylabel="output value")
    fig.suptitle(f"{x.shape[0]}×{x.shape[1]} matrix: one straight line vs one line per row")
    return fig


# -- gamma / beta panel -----------------------------------------------------------------------
X_RANGE = (-15.0, 25.0)


def gamma_beta_figure() -> Figure:
    """An empty figure for :func:`update_gamma_beta_figure` (one axes, fixed x range)."""
    fig, axes = new_figure(figsize=(6.4, 3.4))
    ax = axes[0, 0]
    ax.stairs([0.0], [0.0, 1.0], fill=True, color=color(0), alpha=0.55, label="output histogram")
    ax.plot([], [], color=color(1), linestyle="--", label="normal curve, same mean and std")
    ax.axvline(0.0, color=color(3), linestyle=":", label="output mean")
    ax.set_xlim(*X_RANGE)
    label_axes(ax, title="", xlabel="output value y = γ·x̂ + β", ylabel="density (1 / unit)")
    ax.legend(loc="upper left", fontsize=8)
    return fig


#: Where the panel draws the normal curve.
GRID = np.linspace(*X_RANGE, 300)


def update_gamma_beta_figure(fig: Figure, output: LayerNormOutput, curve: np.ndarray, skew: float,
                             input_name: str) -> None:
    """Redraw the gamma/beta histogram in place: the ``output`` histogram of
    :func:`helpers.norms.panel_output`, the normal ``curve`` with its mean and std on
    :data:`GRID`, and the output's mean line."""
    ax = fig.axes[0]
    cast(StepPatch, ax.patches[0]).set_data(output.density, output.edges)  # the ax.stairs histogram
    ax.lines[0].set_data(GRID, curve)
    ax.lines[1].set_xdata([output.mean, output.mean])
    ax.set_ylim(0, 1.1 * max(output.density.max(), curve.max()))
    ax.set_title(f"{input_name}: mean {output.mean:.3f}, std {output.std:.3f}, skewness {skew:.2f}",
                 fontsize=11)


def skew_figure(x: np.ndarray, y: np.ndarray) -> Figure:
    """Histograms of a skewed input and its standardized version, with a normal curve."""
    fig, axes = new_figure(1, 2, figsize=(9.0, 3.4))
    for ax, values, name, k in ((axes[0, 0], x, "input (exponential)", 0), (axes[0, 1], y, "after LayerNorm", 2)):
        ax.hist(values, bins=60, density=True, color=color(k), alpha=0.6, label=name)
        grid = np.linspace(values.min(), values.max(), 300)
        m, s = round(float(values.mean()), 2) + 0.0, float(values.std())  # + 0.0: no "-0.00"
        ax.plot(grid, np.exp(-0.5 * ((grid - m) / s) ** 2) / (s * np.sqrt(2 * np.pi)), color=color(1),
                linestyle="--", label="normal curve, same mean and std")
        label_axes(ax, title=f"{name}: mean {m:.2f}, std {s:.2f}", xlabel="value", ylabel="density (1 / unit)")
    fig.suptitle("Standardization shifts and rescales; the shape (the long right tail) stays")
    return fig


# -- BatchNorm in training vs eval -------------------------------------------------------------
def running_mean_figure(batch_means: np.ndarray, traces: Mapping[float, np.ndarray], true_mean: float) -> Figure:
    """Running-mean estimates over update steps for several momenta."""
    fig, axes = new_figure(figsize=(7.0, 3.6))
    ax = axes[0, 0]
    steps = np.arange(1, len(batch_means) + 1)
    ax.plot(steps, batch_means, color="grey", linestyle="none", marker=".", markersize=3, label="batch mean")
    for k, (momentum, trace) in enumerate(traces.items()):
        ax.plot(steps, trace, color=color(k), linestyle=("-", "--", "-.")[k % 3],
                label=f"running mean, momentum {momentum:g}")
    ax.axhline(true_mean, color="black", linestyle=":", label=f"true mean {true_mean:g}")
    label_axes(ax, title="running_mean forgets its start at rate (1 − momentum) per step",
               xlabel="training step", ylabel="mean of one channel")
    ax.legend(fontsize=8)
    return fig


def accuracy_bars_figure(settings: Sequence[str], accuracies: Mapping[str, np.ndarray]) -> Figure:
    """Grouped bar chart of test accuracy: one group per evaluation setting, one bar per model.

    ``accuracies[model]`` has shape ``(len(settings),)`` or ``(len(settings), seeds)``; with
    seeds the bar is the median, the black dots are the single seeds.  A setting whose values
    are all ``nan`` (it raised an error) is drawn as the word "error".

    Raises:
        ValueError: if an entry of ``accuracies`` does not have ``len(settings)`` rows.
    """
    fig, axes = new_figure(figsize=(8.5, 3.8))
    ax = axes[0, 0]
    hatches = ("", "//", "\\\\", "xx")
    width = 0.8 / max(1, len(accuracies))
    for k, (model, values) in enumerate(accuracies.items()):
        table = np.asarray(values, dtype=float).reshape(len(values), -1)
        if table.shape[0] != len(settings):
            raise ValueError(f"accuracies[{model!r}] must have {len(settings)} rows, got {table.shape[0]}")
        offset = (k - (len(accuracies) - 1) / 2) * width
        for i, row in enumerate(table):
            if np.all(np.isnan(row)):
                ax.text(i + offset, 2, "error", ha="center", rotation=90, fontsize=9)
                continue
            median = float(np.nanmedian(row))
            ax.bar(i + offset, 100 * median, width=width, color=color(k), hatch=hatches[k % len(hatches)],
                   label=model if i == 0 else None)
            if table.shape[1] > 1:
                ax.plot(np.full(row.shape, i + offset), 100 * row, linestyle="none", marker=".",
                        color="black", markersize=4, label="single seeds" if k == 0 and i == 0 else None)
            ax.text(i + offset, 100 * np.nanmax(row) + 1, f"{100 * median:.0f}", ha="center", fontsize=8)
    ax.set_xticks(range(len(settings)), settings, fontsize=9)
    ax.set_ylim(0, 110)
    label_axes(ax, title="Trained BatchNorm networks evaluated in eval mode vs (wrongly) in train mode",
               xlabel="evaluation setting", ylabel="test accuracy (%), bar = median")
    ax.legend(loc="lower left", fontsize=8)
    return fig


_SWEEP_STYLES = (("-", "o"), ("--", "s"), ("-.", "^"), (":", "D"), ("-", "v"), ("--", "X"))


def _sweep_axes(ax: Axes, xs: Sequence[float], errors: Mapping[str, np.ndarray], order: Sequence[str] | None) -> None:
    """One line per entry of ``errors`` (rows: the values of ``xs``; columns: seeds): the median,
    with the range over seeds shaded.  A name's place in ``order`` (else its place in ``errors``)
    picks its colour and line style, so that a kind looks the same in every figure."""
    for position, (name, err) in enumerate(errors.items()):
        k = list(order).index(name) if order is not None and name in order else position
        table = 100 * np.asarray(err, dtype=float).reshape(len(err), -1)
        if table.shape[0] != len(xs):
            raise ValueError(f"errors[{name!r}] must have {len(xs)} rows, got {table.shape[0]}")
        line, marker = _SWEEP_STYLES[k % len(_SWEEP_STYLES)]
        ax.plot(xs, np.median(table, axis=1), color=color(k), linestyle=line, marker=marker,
                label=name if table.shape[1] == 1 else f"{name} (median, range of {table.shape[1]} seeds)")
        if table.shape[1] > 1:
            ax.fill_between(xs, table.min(axis=1), table.max(axis=1), color=color(k), alpha=0.12)


def batch_size_figure(batch_sizes: Sequence[int], errors: Mapping[str, np.ndarray],
                      order: Sequence[str] | None = None) -> Figure:
    """Test error vs training batch size, one line per network kind.

    ``errors[name]`` has shape ``(len(batch_sizes),)`` or ``(len(batch_sizes), seeds)``; with
    seeds the line is the median and the shaded band the range over seeds.  ``order``: names
    whose positions fix the colours and line styles (default: the order of ``errors``).

    Raises:
        ValueError: if an entry of ``errors`` does not have ``len(batch_sizes)`` rows.
    """
    fig, axes = new_figure(figsize=(7.0, 3.8))
    ax = axes[0, 0]
    _sweep_axes(ax, batch_sizes, errors, order)
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(batch_sizes), [str(b) for b in batch_sizes])
    label_axes(ax, title="MNIST test error vs training batch size (same examples seen)",
               xlabel="training batch size (log scale)", ylabel="test error (%)")
    ax.legend(fontsize=8)
    return fig


def lr_sweep_figure(lrs: Sequence[float], errors: Mapping[str, np.ndarray], batch_size: int,
                    order: Sequence[str] | None = None) -> Figure:
    """Test error vs learning rate, one line per network kind (as :func:`batch_size_figure`).

    Raises:
        ValueError: if an entry of ``errors`` does not have ``len(lrs)`` rows.
    """
    fig, axes = new_figure(figsize=(7.0, 3.8))
    ax = axes[0, 0]
    _sweep_axes(ax, lrs, errors, order)
    ax.axhline(90, color="grey", linestyle=":", linewidth=1, label="chance (90 % error)")
    ax.set_xscale("log")
    ax.set_xticks(list(lrs), [f"{lr:g}" for lr in lrs])
    label_axes(ax, title=f"MNIST test error vs learning rate (batch {batch_size}, SGD with momentum 0.9)",
               xlabel="learning rate (log scale)", ylabel="test error (%)")
    ax.legend(fontsize=8)
    return fig


def deep_relu_figure(profiles: Mapping[str, Sequence[DeepReLUProfile]]) -> Figure:
    """Weight-gradient norm and fraction of dead units per layer of deep ReLU MLPs at
    initialization (:func:`helpers.norms.deep_relu_profile`), one line per entry of
    ``profiles`` (the median over its seeds, the range shaded).

    Raises:
        ValueError: if an entry holds no profiles or profiles of different depths.
    """
    fig, axes = new_figure(1, 2, figsize=(10.0, 3.8))
    for k, (name, runs) in enumerate(profiles.items()):
        if not runs or len({run.depth for run in runs}) != 1:
            raise ValueError(f"profiles[{name!r}] must hold at least one profile, all of one depth")
        layers = np.arange(1, runs[0].depth + 1)
        for ax, values in ((axes[0, 0], np.array([run.grad_norms for run in runs])),
                           (axes[0, 1], 100 * np.array([run.dead_fraction for run in runs]))):
            line, marker = _SWEEP_STYLES[k % len(_SWEEP_STYLES)]
            ax.plot(layers, np.median(values, axis=0), color=color(k), linestyle=line,
                    label=f"{name} (median, range of {len(runs)} seeds)")
            ax.fill_between(layers, values.min(axis=0), values.max(axis=0), color=color(k), alpha=0.15)
    axes[0, 0].set_yscale("log")
    label_axes(axes[0, 0], title="Gradient of each layer's weights at initialization",
               xlabel="layer (1 = next to the input)", ylabel="‖∂loss/∂W‖ (log scale)")
    label_axes(axes[0, 1], title="Units that are 0 on every image of the batch",
               xlabel="layer (1 = next to the input)", ylabel="dead units (%)")
    for ax in axes[0]:
        ax.legend(fontsize=8)
    return fig
