"""Figures of notebook 07: weight decay with SGD, Adam and AdamW; the norm of scale-invariant
weights and the effective learning rate; dropout's variance shift; train/test gaps of the
regularizers on a small MNIST subset."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from helpers.plots import artist, color, label_axes, new_figure, set_limits

ZERO_AT = 1e-5
"""Where λ = 0 is drawn on a logarithmic λ axis (labelled "0")."""


def _lam_axis(ax: Axes, lams: Sequence[float]) -> np.ndarray:
    """Positions of ``lams`` on a log axis, λ = 0 drawn at :data:`ZERO_AT` and labelled 0."""
    pos = np.array([lam if lam > 0 else ZERO_AT for lam in lams])
    ax.set_xscale("log")
    ax.set_xticks(pos)
    ax.set_xticklabels(["0" if lam == 0 else f"{lam:g}" for lam in lams])
    ax.minorticks_off()
    return pos


def _median_range(ax: Axes, x: np.ndarray, rows: np.ndarray, i: int, label: str, marker: str = "o") -> None:
    """Median over seeds (axis 1 of ``rows``) as a line with markers, the range as a band."""
    rows = np.asarray(rows, dtype=np.float64)
    ax.plot(x, np.median(rows, axis=1), marker=marker, color=color(i), label=label)
    ax.fill_between(x, rows.min(axis=1), rows.max(axis=1), color=color(i), alpha=0.2, linewidth=0)


def adam_weight_decay_figure(lams: Sequence[float], errors: Mapping[str, np.ndarray],
                             norms: Mapping[str, np.ndarray]) -> Figure:
    """Test error and final ‖W₁‖ against λ for each optimizer (``{label: [λ, seeds]}``)."""
    fig, axes = new_figure(1, 2, figsize=(11.0, 4.0))
    for ax, data, ylabel, title in ((axes[0, 0], errors, "test error (%)", "Test error after training"),
                                    (axes[0, 1], norms, "‖W₁‖_F at the end", "Size of the first layer's weights")):
        pos = _lam_axis(ax, lams)
        for i, (label, rows) in enumerate(data.items()):
            scale = 100.0 if data is errors else 1.0
            _median_range(ax, pos, scale * rows, i, label)
        label_axes(ax, title=title, xlabel="λ (log scale; 0 at the left)", ylabel=ylabel)
    fig.suptitle("The same λ in the gradient (Adam + L2) or decoupled (AdamW): median and range over 5 seeds")
    return fig


def norm_dynamics_figure(steps: np.ndarray, norms: Mapping[float, np.ndarray], angles: Mapping[float, np.ndarray],
                         lr: float, predicted: Mapping[float, float]) -> Figure:
    """For a BatchNorm MLP trained with SGD at several λ (``{λ: [records, seeds]}``): ‖W₁‖, the
    effective learning rate lr/‖W₁‖² and the angle one step turns W₁, with √(2·lr·λ) dashed."""
    fig, axes = new_figure(1, 3, figsize=(13.0, 4.0))
    for i, lam in enumerate(norms):
        label = f"λ = {lam:g}"
        axes[0, 0].plot(steps, np.median(norms[lam], axis=1), color=color(i), label=label)
        axes[0, 1].plot(steps, np.median(lr / norms[lam] ** 2, axis=1), color=color(i), label=label)
        axes[0, 2].plot(steps, np.median(angles[lam], axis=1), color=color(i), label=label, alpha=0.9)
        if lam in predicted:
            axes[0, 2].axhline(predicted[lam], color=color(i), linestyle="--", linewidth=1.2)
    for ax in axes[0, 1:]:
        ax.set_yscale("log")
    label_axes(axes[0, 0], title="‖W₁‖ grows without decay, shrinks with it", xlabel="step",
               ylabel="‖W₁‖_F (median of 5 seeds)")
    label_axes(axes[0, 1], title="Effective learning rate lr / ‖W₁‖²", xlabel="step",
               ylabel="lr / ‖W₁‖² (log scale)")
    label_axes(axes[0, 2], title="Angle of one step (dashed: √(2·lr·λ))", xlabel="step",
               ylabel="radians per step (log scale)")
    fig.suptitle("Linear → BatchNorm: weight decay only changes the size of W₁, and with it the step")
    return fig


# -- dropout's variance shift (static figure and panel) ------------------------------------------
HIST_BINS = np.linspace(-8.0, 8.0, 81)


def variance_shift_figure() -> Figure:
    """Two histograms (training mode, evaluation mode) of the next layer's pre-activations, to be
    filled by :func:`update_variance_shift_figure`."""
    fig, axes = new_figure(figsize=(8.0, 4.0))
    ax = axes[0, 0]
    zeros = np.full(len(HIST_BINS) - 1, 1e-6)  # filled by the update; positive for the log axis
    ax.stairs(zeros, HIST_BINS, fill=True, alpha=0.45, color=color(1), label="training (dropout on)", gid="train")
    ax.stairs(zeros, HIST_BINS, color=color(0), linewidth=2.0, label="evaluation (dropout off)", gid="eval")
    ax.set_yscale("log")
    label_axes(ax, title="Dropout p = 0", xlabel="pre-activation of the layer after dropout",
               ylabel="density (log scale)")
    set_limits(ax, x=(HIST_BINS[0], HIST_BINS[-1]), y=(1e-4, 1.0))
    return fig


def update_variance_shift_figure(fig: Figure, train_values: np.ndarray, eval_values: np.ndarray, p: float,
                                 var_ratio: float) -> None:
    """Fill the two histograms for dropout rate ``p``."""
    ax = fig.axes[0]
    for gid, values in (("train", train_values), ("eval", eval_values)):
        density, _ = np.histogram(np.clip(values, HIST_BINS[0], HIST_BINS[-1]), bins=HIST_BINS, density=True)
        artist(ax, gid).set_data(np.maximum(density, 1e-6))
    ax.set_title(f"Dropout p = {p:.2f}: training variance {var_ratio:.2f}× the evaluation variance")


def variance_shift_static_figure(shifts: Sequence[tuple[float, np.ndarray, np.ndarray, float]]) -> Figure:
    """The panel's histograms side by side for a few rates ``(p, train, eval, ratio)``."""
    fig, axes = new_figure(1, len(shifts), figsize=(4.0 * len(shifts), 3.6), sharey=True)
    for ax, (p, train, evaluation, ratio) in zip(axes[0], shifts, strict=True):
        for values, i, label, fill in ((train, 1, "training (dropout on)", True),
                                       (evaluation, 0, "evaluation (dropout off)", False)):
            density, _ = np.histogram(np.clip(values, HIST_BINS[0], HIST_BINS[-1]), bins=HIST_BINS, density=True)
            ax.stairs(np.maximum(density, 1e-6), HIST_BINS, fill=fill, alpha=0.45 if fill else 1.0, color=color(i),
                      label=label)
        ax.set_yscale("log")
        ax.set_ylim(1e-4, 1.0)
        label_axes(ax, title=f"p = {p:g}: variance ×{ratio:.1f}", xlabel="pre-activation after dropout",
                   ylabel="density (log scale)", legend=ax is axes[0, 0])
    fig.suptitle("Same mean, wider distribution in training: what a BatchNorm after dropout learns")
    return fig


# -- weight-decay panel ---------------------------------------------------------------------------
def decay_panel_figure(steps: np.ndarray) -> Figure:
    """‖W₁‖ and lr/‖W₁‖² over training for one λ against λ = 0 (bands over seeds), to be filled
    by :func:`update_decay_figure`."""
    fig, axes = new_figure(1, 2, figsize=(11.0, 4.0))
    for ax in axes[0]:
        for gid, i, label in (("zero", 0, "λ = 0"), ("lam", 3, "chosen λ")):
            ax.plot(steps, np.ones_like(steps, dtype=float), color=color(i), label=label, gid=gid)
    axes[0, 1].set_yscale("log")
    label_axes(axes[0, 0], title="‖W₁‖ over training", xlabel="step", ylabel="‖W₁‖_F (median, 5 seeds)")
    label_axes(axes[0, 1], title="Effective learning rate", xlabel="step", ylabel="lr / ‖W₁‖² (log scale)")
    return fig


def update_decay_figure(fig: Figure, steps: np.ndarray, norms: np.ndarray, norms_zero: np.ndarray, lr: float,
                        lam: float, group: str) -> None:
    """Draw the medians over seeds of ``norms`` (``[records, seeds]``) for λ and for λ = 0."""
    ax_norm, ax_lr = fig.axes[:2]
    for ax, transform in ((ax_norm, lambda n: n), (ax_lr, lambda n: lr / n ** 2)):
        artist(ax, "zero").set_data(steps, np.median(transform(norms_zero), axis=1))
        line = artist(ax, "lam")
        line.set_data(steps, np.median(transform(norms), axis=1))
        line.set_label(f"λ = {lam:g}")
        ax.legend()
    both = np.concatenate([norms, norms_zero], axis=1)
    set_limits(ax_norm, x=(steps[0], steps[-1]), y=(0.0, 1.1 * float(both.max())))
    eff = lr / both ** 2
    set_limits(ax_lr, x=(steps[0], steps[-1]), y=(0.5 * float(eff.min()), 2.0 * float(eff.max())))
    ax_norm.set_title(f"‖W₁‖ over training ({group}, λ = {lam:g})")


# -- train / test gaps ----------------------------------------------------------------------------
def gap_figure(labels: Sequence[str], train: np.ndarray, test: np.ndarray, title: str) -> Figure:
    """Training and test error (%) of each setting (``[settings, seeds]``): bars at the median,
    whiskers over the seed range."""
    fig, axes = new_figure(figsize=(max(7.0, 1.5 * len(labels) + 2), 4.2))
    ax = axes[0, 0]
    x = np.arange(len(labels))
    for i, (rows, label, shift) in enumerate(((train, "training error", -0.18), (test, "test error", 0.18))):
        rows = 100 * np.asarray(rows, dtype=np.float64)
        med = np.median(rows, axis=1)
        ax.bar(x + shift, med, width=0.36, color=color(i), label=label)
        ax.errorbar(x + shift, med, yerr=[med - rows.min(axis=1), rows.max(axis=1) - med], fmt="none",
                    ecolor="black", capsize=3, linewidth=1)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=15, ha="right")
    label_axes(ax, title=title, xlabel="setting", ylabel="error (%) — median, whiskers: 5-seed range")
    return fig


def variance_shift_study_figure(labels: Sequence[str], varshift: Sequence[np.ndarray],
                                test: Sequence[np.ndarray]) -> Figure:
    """Left: the second BatchNorm's input variance in training, its running variance and at
    evaluation (each ``[seeds, 3]``), median over seeds; right: the test error of each setting."""
    fig, axes = new_figure(1, 2, figsize=(11.0, 4.0))
    ax = axes[0, 0]
    x = np.arange(len(labels))
    for j, (name, shift) in enumerate((("training mode", -0.25), ("running (used at eval)", 0.0),
                                       ("actual at evaluation", 0.25))):
        ax.bar(x + shift, [np.median(v[:, j]) for v in varshift], width=0.25, color=color(j), label=name)
    ax.set_xticks(x)
    ax.set_xticklabels(labels)
    label_axes(ax, title="Variance of the 2nd BatchNorm's input", xlabel="setting",
               ylabel="mean variance over units (median, 5 seeds)")
    ax = axes[0, 1]
    for k, rows in enumerate(test):
        rows = 100 * np.asarray(rows, dtype=np.float64)
        ax.plot(np.full(rows.shape, k), rows, linestyle="none", marker="o", color=color(k), alpha=0.7)
        ax.plot([k - 0.25, k + 0.25], [np.median(rows)] * 2, color="black")
    ax.plot([], [], linestyle="none", marker="o", color="grey", label="one seed")
    ax.plot([], [], color="black", label="median")
    ax.set_xticks(np.arange(len(labels)))
    ax.set_xticklabels(labels)
    label_axes(ax, title="Test error", xlabel="setting", ylabel="test error (%)")
    fig.suptitle("Dropout before a BatchNorm: the running variance is the training one, not the evaluation one")
    return fig


def weights_move_figure(gains: Sequence[float], errors: Mapping[float, np.ndarray],
                        losses: Mapping[float, np.ndarray]) -> Figure:
    """Notebook 02's study: final test error and training loss of each seed, per gain c."""
    fig, axes = new_figure(1, 2, figsize=(10.0, 3.8))
    for ax, data, ylabel, title in ((axes[0, 0], errors, "test error (%, log scale)", "Test error after 5 epochs"),
                                    (axes[0, 1], losses, "training loss (last 200 steps)", "Training loss")):
        for k, c in enumerate(gains):
            rows = np.asarray(data[c], dtype=np.float64) * (100 if data is errors else 1)
            ax.plot(np.full(rows.shape, k), rows, linestyle="none", marker="o", color=color(k), alpha=0.8,
                    label=f"c = {c:g}")
        ax.set_xticks(range(len(gains)))
        ax.set_xticklabels([f"c = {c:g}" for c in gains])
        ax.set_yscale("log")
        label_axes(ax, title=title, xlabel="initial weight variance c/n", ylabel=ylabel)
    fig.suptitle("The lecture's three initializations after training (notebook 02's study, 5 seeds each)")
    return fig
