"""Exercises of notebook 02 (Norm drift): the norms of a deep ReLU stack, measured and predicted,
and the RMS/std ratio behind the gradient growth under LayerNorm/BatchNorm.

* :data:`relu_stack_norms` — the mean activation norm of every layer of a Linear+ReLU stack
  (reference :func:`helpers.drift.relu_stack_norms`);
* :data:`predicted_relu_norms` — the infinite-width prediction of those norms for any list of layer
  widths (the text derives it for a first layer 784 → 100 and square layers after it);
* :data:`rms_std_ratio` — ``RMS(v)/std(v)`` along a dimension (reference
  :func:`helpers.drift.rms_over_std`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from helpers import drift
from helpers.check.feedback import Exercise, compare
from helpers.check.inputs import call

__all__ = ["predicted_relu_norms", "relu_stack_norms", "rms_std_ratio"]


def _as_tensor(value: object) -> object:
    """A NumPy array or a list of numbers as a float64 tensor; anything else unchanged."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.astype(np.float64))
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value):
        return torch.tensor(value, dtype=torch.float64)
    return value


def _off_by_one(what: str, actual: object, expected: torch.Tensor, atol: float,
                first: str) -> str | None:
    """Name an extra or a missing entry (one per layer expected) when the rest matches."""
    if not isinstance(actual, torch.Tensor) or actual.dim() != 1:
        return None
    depth = expected.shape[0]
    if actual.shape[0] == depth + 1:
        if torch.allclose(actual[1:].double(), expected.double(), atol=atol, rtol=0.0):
            return (f"{what} has {depth + 1} entries: it includes {first} as an extra first entry; "
                    f"return one entry per layer, layers 1..{depth}.")
        return f"{what} has {depth + 1} entries, expected one per layer ({depth})."
    if actual.shape[0] == depth - 1:
        if torch.allclose(actual.double(), expected[:-1].double(), atol=atol, rtol=0.0):
            return f"{what} has {depth - 1} entries: the last layer is missing (one entry per layer, {depth})."
        if torch.allclose(actual.double(), expected[1:].double(), atol=atol, rtol=0.0):
            return f"{what} has {depth - 1} entries: the first layer is missing (one entry per layer, {depth})."
        return f"{what} has {depth - 1} entries, expected one per layer ({depth})."
    return None


# --------------------------------------------------------------------------------------
# 1. the activation norms of a Linear+ReLU stack
# --------------------------------------------------------------------------------------
def _reference_relu_stack_norms(weights: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The course's mean ‖h_l‖ per layer of a Linear+ReLU stack (``helpers.drift.relu_stack_norms``)."""
    return drift.relu_stack_norms(weights, x)


def _stack_inputs() -> tuple[list[torch.Tensor], torch.Tensor]:
    # 6 examples of 8 features; layer 1 maps 8 -> 5 (not square, so W vs Wᵀ shows), then 5 -> 5
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 8, generator=g, dtype=torch.float64) + 0.5
    weights = [torch.randn(5, 8, generator=g, dtype=torch.float64) * (2 / 8) ** 0.5]
    weights += [torch.randn(5, 5, generator=g, dtype=torch.float64) * (2 / 5) ** 0.5 for _ in range(3)]
    return weights, x


def _stack_variants(weights: list[torch.Tensor], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-layer quantities of the typical wrong versions (each ``(depth,)``)."""
    out: dict[str, list[torch.Tensor]] = {k: [] for k in (
        "linear", "pre", "frob", "sq", "rms", "unit", "sum", "shifted")}
    h, lin = x, x
    for w in weights:
        z = h @ w.t()
        out["pre"].append(z.norm(dim=1).mean())
        out["shifted"].append(h.norm(dim=1).mean())  # the input of the layer, not its output
        h = torch.relu(z)
        lin = lin @ w.t()
        out["linear"].append(lin.norm(dim=1).mean())
        out["frob"].append(h.norm())
        out["sq"].append(h.pow(2).sum(dim=1).mean())
        out["rms"].append(h.pow(2).sum(dim=1).mean().sqrt())
        out["unit"].append(h.norm(dim=0).mean())
        out["sum"].append(h.norm(dim=1).sum())
    return {k: torch.stack(v) for k, v in out.items()}


def _diagnose_relu_stack_norms(student: Callable[..., Any]) -> str | None:
    weights, x = _stack_inputs()
    expected = _reference_relu_stack_norms(weights, x)
    try:
        actual, changed = call(student, (weights, x), hint="h = torch.relu(h @ w.T) makes a new tensor for each "
                               "layer; x.relu_(), w.t_() or weights[i] = … change the caller's x and weights")
    except RuntimeError as error:
        text = str(error)
        if "shapes cannot be multiplied" in text or "size mismatch" in text or "must match the size" in text:
            return ("a matrix product failed on the first layer, whose weights[0] has shape (5, 8) "
                    "(n_out, n_in) like nn.Linear.weight: a layer computes h @ W.T (or W @ h for one "
                    "column vector h), not h @ W.")
        raise
    if changed:
        return changed
    v = _stack_variants(weights, x)
    mistakes = {
        "the ReLU is missing: h_l = relu(h_{l-1} @ W_l.T); you measured a purely linear stack.": v["linear"],
        "you measured the norm of the pre-activation h_{l-1} @ W_l.T, before the ReLU; measure "
        "the layer's output relu(...).": v["pre"],
        "off by one layer: entry l is the norm of the layer's input (entry 0 is ‖x‖); return the "
        "norms of the outputs of layers 1..depth.": v["shifted"],
        "you took the norm of the whole batch matrix (Frobenius); take each example's norm "
        "(h.norm(dim=1)) and average over the batch.": v["frob"],
        "you averaged the squared norms: take the square root per example first, "
        "h.norm(dim=1).mean().": v["sq"],
        "you took the root of the mean squared norm (RMS over examples); average the norms "
        "themselves, h.norm(dim=1).mean().": v["rms"],
        "you took norms along dim 0 (each unit across the batch); take each example's norm, "
        "h.norm(dim=1).": v["unit"],
        "you summed the norms over the batch; average them (.mean()).": v["sum"],
    }
    off = _off_by_one("the result", actual, expected, 1e-5, "the input's norm ‖x‖")
    if off is not None:
        return off
    return compare("the result", actual, expected, mistakes, atol=1e-5)


relu_stack_norms = Exercise(
    name="relu_stack_norms",
    checked="matches the course's mean ‖h_l‖ per layer of a Linear+ReLU stack (h @ W.T, ReLU, "
            "per-example norm averaged, layers 1..depth).",
    reference=_reference_relu_stack_norms,
    diagnose=_diagnose_relu_stack_norms,
)


# --------------------------------------------------------------------------------------
# 2. the predicted norms
# --------------------------------------------------------------------------------------
def _reference_predicted_relu_norms(gain: float, widths: Sequence[int], input_norm: float) -> torch.Tensor:
    """The predicted mean ‖h_l‖ of a bias-free ReLU stack with layer widths ``widths`` (``widths[0]``
    the input's size) and ``W_l ~ N(0, gain / widths[l − 1])``: ``‖x‖·√(n_l/n_0)·(gain/2)^(l/2)`` for
    l = 1..len(widths) − 1, a float64 tensor (each layer keeps the mean square of an entry times gain/2,
    and the norm of n_l entries is √n_l times their root mean square).

    Raises:
        TypeError / ValueError: ``widths`` not a sequence of at least two positive ints, or ``gain`` or
            ``input_norm`` not a positive number.
    """
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or len(widths) < 2:
        raise TypeError(f"widths must be a list of at least two layer sizes (the input's first), got {widths!r}")
    if any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 for n in widths):
        raise ValueError(f"widths must hold positive ints, got {list(widths)}")
    for name, value in (("gain", gain), ("input_norm", input_norm)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    n = torch.tensor([float(w) for w in widths], dtype=torch.float64)
    layers = torch.arange(1, len(widths), dtype=torch.float64)
    return float(input_norm) * (n[1:] / n[0]).sqrt() * (float(gain) / 2) ** (layers / 2)


#: The check's stack: widths that change deeper in the stack too, so that a width ratio applied to the
#: first layer only, or each layer's own ratio, shows.
PREDICTION_SETTING = (3.0, (200, 50, 80, 80, 30, 60), 7.0)


def _diagnose_predicted_relu_norms(student: Callable[..., Any]) -> str | None:
    gain, widths, input_norm = PREDICTION_SETTING
    expected = _reference_predicted_relu_norms(gain, widths, input_norm)
    actual = _as_tensor(student(gain, list(widths), input_norm))
    depth = len(widths) - 1
    layer = torch.arange(1, depth + 1, dtype=torch.float64)
    n = torch.tensor(widths, dtype=torch.float64)
    ratio = n[1:] / n[0]                                   # n_l / n_0
    right_width = ratio.sqrt()

    def pred(factor: float, exponent: torch.Tensor = layer / 2, width: torch.Tensor = right_width,
             norm: float = input_norm) -> torch.Tensor:
        return norm * width * factor ** exponent

    mistakes = {
        "the ReLU's ½ is missing: a ReLU keeps half of the squared norm, so the factor per layer "
        "is √(gain/2), not √gain.": pred(gain),
        "the factor per layer is gain/2: that is the growth of the squared norm; the norm grows "
        "by √(gain/2).": pred(gain / 2, layer),
        "you predicted the squared norms (‖x‖²·(n_l/n_0)·(gain/2)^l); take the square root.":
            pred(gain / 2, layer, ratio, input_norm ** 2),
        "off by one layer: layer 1 already multiplies by √(gain/2), so layer l has (gain/2)^(l/2), "
        "not (gain/2)^((l−1)/2).": pred(gain / 2, (layer - 1) / 2),
        "off by one layer: layer l has (gain/2)^(l/2), not (gain/2)^((l+1)/2).":
            pred(gain / 2, (layer + 1) / 2),
        "the first layer's width ratio for every layer: that holds when the widths stay the same after "
        "layer 1; here they change, and layer l has n_l units.": pred(gain / 2, width=ratio[0].sqrt().expand(depth)),
        "the widths are missing: a layer of n_l units whose entries have mean square m has norm √(n_l·m), "
        "and the input's entries have mean square ‖x‖²/n_0.": pred(gain / 2, width=torch.ones(depth)),
        "the width ratio needs a square root: it multiplies the squared norm.": pred(gain / 2, width=ratio),
        "the width ratio is upside down: layer l has n_l outputs and the input n_0 entries, so the factor "
        "is √(n_l/n_0).": pred(gain / 2, width=ratio.rsqrt()),
        "each layer's own ratio √(n_l/n_(l−1)) alone: the norm carries the product of the ratios of every "
        "layer up to l.": pred(gain / 2, width=(n[1:] / n[:-1]).sqrt()),
        "the ratio √(n_k/n_0) of every layer k ≤ l multiplied together: the ratios to pass from layer to "
        "layer are n_k/n_(k−1), and their product is n_l/n_0.": pred(gain / 2, width=torch.cumprod(ratio.sqrt(), 0)),
        "the width ratio uses the layer's input size, n_(l−1): layer l's norm sums its n_l outputs.":
            pred(gain / 2, width=(n[:-1] / n[0]).sqrt()),
        "the factor is upside down: √(gain/2) per layer, not √(2/gain).": pred(2 / gain),
    }
    off = _off_by_one("the prediction", actual, expected, 1e-4, "the input's norm")
    if off is not None:
        return off
    return compare("the prediction", actual, expected, mistakes, atol=1e-4)


predicted_relu_norms = Exercise(
    name="predicted_relu_norms",
    checked="matches the course's prediction for layers 1..depth of a stack whose widths change "
            "(200 → 50 → 80 → 80 → 30 → 60, gain 3).",
    reference=_reference_predicted_relu_norms,
    diagnose=_diagnose_predicted_relu_norms,
)


# --------------------------------------------------------------------------------------
# 3. RMS / std
# --------------------------------------------------------------------------------------
def _reference_rms_std_ratio(values: torch.Tensor, dim: int) -> torch.Tensor:
    """``sqrt(mean(v²)) / std(v)`` along ``dim``, population std (``helpers.drift.rms_over_std``)."""
    return drift.rms_over_std(values, dim)


def _diagnose_rms_std_ratio(student: Callable[..., Any]) -> str | None:
    g = torch.Generator().manual_seed(0)
    v = torch.randn(4, 5, generator=g, dtype=torch.float64) + 0.8   # a mean, so RMS ≠ std
    for dim, other in ((1, 0), (0, 1)):
        expected = _reference_rms_std_ratio(v, dim)
        actual, changed = call(student, (v, dim))
        if changed:
            return changed
        if isinstance(actual, torch.Tensor) and tuple(actual.shape) != tuple(expected.shape):
            if tuple(actual.shape) == tuple(_reference_rms_std_ratio(v, other).shape):
                return (f"with dim={dim} the result has shape {tuple(actual.shape)}: you reduced over "
                        f"dim {other}; reduce over the dim you are given.")
            if actual.dim() == 0:
                return f"with dim={dim} the result is one number: reduce over dim only (keep the other dim)."
        rms, std = v.pow(2).mean(dim).sqrt(), v.std(dim, unbiased=False)
        mistakes = {
            "unbiased std (divides by n − 1): use the population std, v.std(dim, unbiased=False) "
            "(torch's default is unbiased).": rms / v.std(dim, unbiased=True),
            "upside down: RMS / std, not std / RMS.": std / rms,
            "the RMS needs a square root: sqrt(mean(v²)), not mean(v²).": v.pow(2).mean(dim) / std,
            "that is the squared ratio, mean(v²)/var(v); take the square root.": rms ** 2 / std ** 2,
            "you centred v before the RMS: the RMS of v − mean(v) is the std, so the ratio is always 1; "
            "take the RMS of v itself.":
                torch.ones_like(rms),
            "mean(|v|) is not the RMS: use sqrt(mean(v²)).": v.abs().mean(dim) / std,
            "that is mean(v)/std(v); the RMS is sqrt(mean(v²)).": v.mean(dim) / std,
        }
        problem = compare(f"the result (dim={dim})", actual, expected, mistakes, atol=1e-6)
        if problem is not None:
            return problem
    return None


rms_std_ratio = Exercise(
    name="rms_std_ratio",
    checked="matches the course's sqrt(mean(v²)) / std(v) (population std) along both dims of a 4 × 5 input.",
    reference=_reference_rms_std_ratio,
    diagnose=_diagnose_rms_std_ratio,
)
