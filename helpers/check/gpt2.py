"""Exercises of notebook 05 (GPT-2's LayerNorm parameters): the outlier rule, int8 and folding.

* :data:`robust_z` — the notebook's outlier rule: (value − median) / (1.4826 × MAD) per row;
* :data:`int8_roundtrip` — symmetric int8 quantization with one absmax scale per vector, and back;
* :data:`fold_layernorm` — folding a LayerNorm's γ and β into the linear layer that follows it;
* :data:`int8_error` — a derivation: the RMS error of that int8 round trip, predicted from the scale alone;
* the concept questions of the notebook's exercises section (``q05_*``).

The references are the course's own functions in :mod:`helpers.gpt2`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from helpers import gpt2
from helpers.check.feedback import Exercise, Question, compare
from helpers.check.inputs import call

__all__ = ["fold_layernorm", "int8_error", "int8_roundtrip", "q05_beta_tail", "q05_forget_wbeta", "q05_largest_gamma",
           "q05_ln2_rms", "robust_z"]

#: The consistency constant of the outlier rule: 1.4826 × MAD = σ for normal data.
MAD_TO_STD = 1.4826


# -- robust z-scores ---------------------------------------------------------------------


def _reference_robust_z(values: torch.Tensor) -> torch.Tensor:
    """The course's robust z-scores along the last dim (:func:`helpers.gpt2.robust_z_rows`)."""
    return torch.from_numpy(gpt2.robust_z_rows(values.detach().cpu())).to(values.dtype)


def _robust_z_inputs() -> torch.Tensor:
    """3 rows of 8 values (an even count, so the two kinds of median differ), with outliers."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 8, generator=g, dtype=torch.float64) * torch.tensor([[0.1], [1.0], [3.0]]) \
        + torch.tensor([[0.3], [-1.0], [2.0]])
    x[0, 2] += 2.0    # an outlier far above row 0
    x[1, 5] -= 9.0    # one far below row 1
    x[2, 0] += 40.0   # and a huge one in row 2
    return x


def _median(x: torch.Tensor, dim: int | None, lower: bool = False) -> torch.Tensor:
    if dim is None:
        return x.median() if lower else x.quantile(0.5)
    return x.median(dim=dim, keepdim=True).values if lower else x.quantile(0.5, dim=dim, keepdim=True)


def _robust_z_variant(x: torch.Tensor, dim: int | None = -1, lower_centre: bool = False,
                      lower_spread: bool = False, constant: float = MAD_TO_STD,
                      mean_deviation: bool = False) -> torch.Tensor:
    med = _median(x, dim, lower_centre)
    deviation = (x - med).abs()
    if mean_deviation:
        spread = deviation.mean() if dim is None else deviation.mean(dim=dim, keepdim=True)
    else:
        spread = _median(deviation, dim, lower_spread)
    return (x - med) / (constant * spread)


def _diagnose_robust_z(student: Callable[..., Any]) -> str | None:
    x = _robust_z_inputs()
    actual, changed = call(student, (x,), hint="compute new tensors, x - med, not x -= med")
    if changed:
        return changed
    if isinstance(actual, torch.Tensor) and tuple(actual.shape) == tuple(x.shape) and (
            not bool(torch.isfinite(actual).all()) or actual.abs().max().item() > 1e8):
        return ("division by (almost) 0: the spread came out 0 — did you forget the absolute value? "
                "MAD = median(|x − median|); median(x − median) is always 0.")
    expected = _reference_robust_z(x)
    mean = x.mean(dim=-1, keepdim=True)
    median = _median(x, -1)
    lower = "for an even count torch.median returns the lower of the two middle values; the median " \
            "averages them: use torch.quantile(x, 0.5, dim=-1, keepdim=True)"
    mistakes = [
        ("mean and standard deviation instead of median and 1.4826 × MAD: the outliers themselves "
         "inflate the std, so they hide.", (x - mean) / x.std(dim=-1, keepdim=True)),
        ("mean and standard deviation instead of median and 1.4826 × MAD: the outliers themselves "
         "inflate the std, so they hide.", (x - mean) / x.std(dim=-1, unbiased=False, keepdim=True)),
        ("the centre is the median but the spread is the standard deviation: use 1.4826 × MAD, "
         "which the outliers cannot inflate.", (x - median) / x.std(dim=-1, keepdim=True)),
        ("the centre is the median but the spread is the standard deviation: use 1.4826 × MAD, "
         "which the outliers cannot inflate.", (x - median) / x.std(dim=-1, unbiased=False, keepdim=True)),
        ("missing the consistency constant: divide by 1.4826 × MAD, not by the MAD alone "
         "(your z-scores are 1.48× too large).", _robust_z_variant(x, constant=1.0)),
        ("1.4826 is on the wrong side: the spread is 1.4826 × MAD, not MAD / 1.4826 "
         "(your z-scores are 1.4826² ≈ 2.2× too large).", _robust_z_variant(x, constant=1 / MAD_TO_STD)),
        ("mean absolute deviation instead of the MEDIAN absolute deviation: "
         "MAD = median(|x − median|).", _robust_z_variant(x, mean_deviation=True)),
        (lower + ".", _robust_z_variant(x, lower_centre=True, lower_spread=True)),
        (lower + " (for the centre).", _robust_z_variant(x, lower_centre=True)),
        (lower + " (for the MAD).", _robust_z_variant(x, lower_spread=True)),
        ("wrong axis: median and MAD over dim 0 (down each column); the rule takes them along the "
         "last dim, one centre and spread per row (per LayerNorm).", _robust_z_variant(x, dim=0)),
        ("one median and MAD for the whole tensor: the rule takes them per row (per LayerNorm), "
         "along the last dim.", _robust_z_variant(x, dim=None)),
        ("you returned |z|: keep the sign (values below the median get negative z).", expected.abs()),
    ]
    return compare("the output", actual, expected, mistakes, atol=1e-9)


robust_z = Exercise(
    name="robust_z",
    checked="matches the course's robust z-score (median, 1.4826 × MAD, per row) on rows with outliers.",
    reference=_reference_robust_z,
    diagnose=_diagnose_robust_z,
)


# -- int8 round trip ---------------------------------------------------------------------


def _reference_int8_roundtrip(y: torch.Tensor) -> torch.Tensor:
    """The course's int8 round trip, one absmax scale per row (:func:`helpers.gpt2.int8_roundtrip`)."""
    return torch.from_numpy(gpt2.int8_roundtrip(y.detach().cpu().numpy())).to(y.dtype)


def _int8_inputs() -> torch.Tensor:
    """4 vectors of 10 channels on very different scales; row 1's largest magnitude is negative."""
    g = torch.Generator().manual_seed(3)
    y = torch.randn(4, 10, generator=g, dtype=torch.float64) * torch.tensor([[0.1], [1.0], [10.0], [100.0]])
    y[1, 4] = -5.0   # row 1: max |y| comes from a negative value
    y[1] = y[1].clamp(max=2.0)
    return y


def _int8_variant(y: torch.Tensor, dim: int | None = 1, levels: float = 127.0, rounding: str = "round",
                  signed_max: bool = False, dequantize: bool = True) -> torch.Tensor:
    top = y if signed_max else y.abs()
    if dim is None:
        scale = top.max() / levels
    else:
        scale = top.amax(dim=dim, keepdim=True) / levels
    q = getattr(torch, rounding)(y / scale).clamp(-127, 127)
    return q * scale if dequantize else q


def _diagnose_int8_roundtrip(student: Callable[..., Any]) -> str | None:
    y = _int8_inputs()
    actual, changed = call(student, (y,), hint="compute new tensors, y / scale, not y /= scale")
    if changed:
        return changed
    expected = _reference_int8_roundtrip(y)
    mistakes = [
        ("one scale for the whole matrix: each row (vector) gets its own scale max |y_row| / 127, "
         "so small vectors keep their precision.", _int8_variant(y, dim=None)),
        ("one scale per column (channel): the scheme here has one scale per row (vector), "
         "the largest |value| along the last dim.", _int8_variant(y, dim=0)),
        ("the scale uses max(y), not max(|y|): a vector whose largest magnitude is negative gets "
         "clipped.", _int8_variant(y, signed_max=True)),
        ("the integers are returned without multiplying back by the scale: return round(y / s) · s.",
         _int8_variant(y, dequantize=False)),
        ("scale = max|y| / 128: symmetric int8 uses the levels −127..127, so divide by 127.",
         _int8_variant(y, levels=128.0)),
        ("scale = max|y| / 255: that is the unsigned 0..255 range; symmetric int8 uses −127..127, "
         "so divide by 127.", _int8_variant(y, levels=255.0)),
        ("scale = max|y| / 256: symmetric int8 uses the levels −127..127, so divide by 127.",
         _int8_variant(y, levels=256.0)),
        ("floor instead of round: round to the NEAREST integer (torch.round).", _int8_variant(y, rounding="floor")),
        ("truncation instead of rounding: round to the NEAREST integer (torch.round), not toward 0.",
         _int8_variant(y, rounding="trunc")),
        ("ceil instead of round: round to the NEAREST integer (torch.round).", _int8_variant(y, rounding="ceil")),
    ]
    return compare("the output", actual, expected, mistakes, atol=1e-9)


int8_roundtrip = Exercise(
    name="int8_roundtrip",
    checked="matches the course's int8 round trip (one absmax/127 scale per row, rounded, multiplied back).",
    reference=_reference_int8_roundtrip,
    diagnose=_diagnose_int8_roundtrip,
)


# -- folding γ and β into the next linear layer ------------------------------------------


def _reference_fold(gamma: torch.Tensor, beta: torch.Tensor, weight: torch.Tensor,
                    bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The course's fold (:func:`helpers.gpt2.fold_layernorm_into_linear`), on tensors."""
    w_f, b_f = gpt2.fold_layernorm_into_linear(*(np.asarray(t.detach().cpu()) for t in (gamma, beta, weight, bias)))
    return torch.from_numpy(w_f).to(weight.dtype), torch.from_numpy(b_f).to(bias.dtype)


def _fold_inputs(out: int, d: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    gamma = 0.2 + 2 * torch.rand(d, generator=g, dtype=torch.float64)
    beta = torch.randn(d, generator=g, dtype=torch.float64)
    weight = torch.randn(out, d, generator=g, dtype=torch.float64)
    bias = torch.randn(out, generator=g, dtype=torch.float64)
    return gamma, beta, weight, bias


def _fold_mistakes(gamma: torch.Tensor, beta: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
                   ) -> tuple[list[tuple[str, torch.Tensor]], list[tuple[str, torch.Tensor]]]:
    """(message, folded weight) and (message, folded bias) of the typical mistakes.

    The mistakes that mix up W's two axes only run on a square layer (on any other one they
    raise or give the wrong shape, which the message names anyway).
    """
    weights = [("W' = W / γ: the fold multiplies, W' = W · diag(γ).", weight / gamma),
               ("weight' is still W: γ must be folded into it, W' = W · diag(γ).", weight)]
    biases = [("β is forgotten: the bias must become W β + b, not stay b.", bias),
              ("the original bias b is dropped: the new bias is W β + b.", weight @ beta),
              ("β is multiplied by γ again: the bias is W β + b, not W (γ ⊙ β) + b "
               "(β is added after the stretch).", weight @ (gamma * beta) + bias)]
    if weight.shape[0] == weight.shape[1]:
        weights.insert(0, ("γ scales the rows of W (its outputs) instead of its columns (its inputs): "
                           "W' = W · diag(γ) multiplies column j by γ_j.", gamma[:, None] * weight))
        weights.append(("weight' is transposed: keep nn.Linear's layout (out, in), W' = W · diag(γ).",
                        (weight * gamma).T))
        biases += [("Wᵀ β instead of W β: β enters the layer as an input, so it is weight @ beta.",
                    weight.T @ beta + bias),
                   ("β is added to the bias directly: it goes through the layer first, W β + b.",
                    beta + bias)]
    return weights, biases


def _diagnose_fold(student: Callable[..., Any]) -> str | None:
    # a square layer first (a wrong axis or Wᵀ still runs there, so it can be named), then a
    # non-square one (4 outputs, 6 inputs), the way real layers are
    for out, d, seed in ((5, 5, 1), (4, 6, 2)):
        inputs = _fold_inputs(out, d, seed)
        result, changed = call(student, inputs, names=("gamma", "beta", "weight", "bias"),
                               hint="weight * gamma, not weight *= gamma")
        if changed:
            return changed
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            return f"return a pair (folded_weight, folded_bias), got {type(result).__name__}."
        w_f, b_f = result
        if isinstance(w_f, torch.Tensor) and tuple(w_f.shape) == (d, out) and d != out:
            return (f"weight' has shape {tuple(w_f.shape)}, transposed: keep nn.Linear's layout "
                    f"(out, in) = {(out, d)}.")
        expected_w, expected_b = _reference_fold(*inputs)
        weights, biases = _fold_mistakes(*inputs)
        problem = compare("weight'", w_f, expected_w, weights, atol=1e-9) \
            or compare("bias'", b_f, expected_b, biases, atol=1e-9)
        if problem is not None:
            return problem
    return None


fold_layernorm = Exercise(
    name="fold_layernorm",
    checked="folds γ into W's columns and β into the bias (W β + b), on a square and a 4×6 layer.",
    reference=_reference_fold,
    diagnose=_diagnose_fold,
)


# -- predicting the int8 error (a derivation) ----------------------------------------------


def _reference_int8_error(y: torch.Tensor) -> torch.Tensor:
    """The predicted RMS error of each row's int8 round trip: s / √12 with s = max |y_row| / 127.

    The rounding error of a value is spread evenly over [−s/2, s/2] (one rounding step s wide),
    whose variance is s²/12.
    """
    return y.abs().amax(dim=-1) / 127 / np.sqrt(12.0)


def _diagnose_int8_error(student: Callable[..., Any]) -> str | None:
    y = _int8_inputs()
    actual, changed = call(student, (y,), hint="compute new tensors, y.abs(), not y.abs_()")
    if changed:
        return changed
    rows, channels = y.shape
    if isinstance(actual, torch.Tensor):
        if actual.ndim == 0 or actual.numel() == 1:
            return (f"one number for the whole matrix: each row (vector) has its own scale s = max |y_row| / 127, "
                    f"so return one predicted error per row, shape ({rows},).")
        if tuple(actual.shape) == (channels,):
            return (f"one value per column (channel), shape ({channels},): the scale, and so the error, "
                    f"belongs to each row (vector); return shape ({rows},).")
        if tuple(actual.shape) == (rows, 1):
            return f"shape ({rows}, 1): return one number per row, shape ({rows},) (keepdim=False)."
    expected = _reference_int8_error(y)
    step = y.abs().amax(dim=-1) / 127
    measured = (_reference_int8_roundtrip(y) - y).pow(2).mean(dim=-1).sqrt()
    mistakes = [
        ("this is the measured error of one round trip, not the prediction from the scale alone: "
         "derive the RMS of a rounding error spread evenly over one step.", measured),
        ("s / 2 is the largest error a value can get, not the RMS error: a rounding error is spread "
         "evenly over [−s/2, s/2]; its mean square is ∫ e² de / s over that interval.", step / 2),
        ("s² / 12 is the mean square (the variance) of the error: the RMS is its square root.", step ** 2 / 12),
        ("s / 12: the variance of the error is s²/12, so its RMS is s / √12, not s / 12.", step / 12),
        ("s / √3 is the RMS of an error spread over [−s, s]; rounding to the nearest level is off by at "
         "most half a step, [−s/2, s/2].", step / np.sqrt(3.0)),
        ("the whole step s is not the error: rounding to the nearest level is off by at most s/2, and "
         "evenly spread over [−s/2, s/2].", step),
        ("the 127 is missing: the step is s = max |y_row| / 127, one level of −127 … 127.",
         y.abs().amax(dim=-1) / np.sqrt(12.0)),
        ("the step uses max(y), not max |y|: a row whose largest magnitude is negative gets the wrong step.",
         y.amax(dim=-1) / 127 / np.sqrt(12.0)),
        ("divided by 128 levels: symmetric int8 uses −127 … 127, so s = max |y_row| / 127.",
         y.abs().amax(dim=-1) / 128 / np.sqrt(12.0)),
        ("divided by 255 levels: symmetric int8 uses −127 … 127, so s = max |y_row| / 127.",
         y.abs().amax(dim=-1) / 255 / np.sqrt(12.0)),
        ("divided by the row's RMS: return the error itself, in y's units, not relative to the row.",
         expected / y.pow(2).mean(dim=-1).sqrt()),
    ]
    return compare("the predicted error", actual, expected, mistakes, atol=1e-12)


int8_error = Exercise(
    name="int8_error",
    checked="predicts the RMS round-trip error s/√12 of each row (s = max |y_row| / 127) on four rows of "
            "very different sizes.",
    reference=_reference_int8_error,
    diagnose=_diagnose_int8_error,
)


# -- concept questions ---------------------------------------------------------------------

q05_largest_gamma = Question(
    name="q05_largest_gamma",
    answer="c",
    why="ln_f holds the largest γ, ≈ 17.4 in channel 496, the first of the six channels kept aside in the "
        "int8 experiment.",
    choices={
        "a": "h.0.ln_2's γ is bimodal, but its largest value is far below ln_f's 17.4: look at G.max(axis=1).",
        "b": "block 11 drifted up to a median of about 0.5, but its largest γ is far below ln_f's 17.4.",
        "c": "",
    },
)

q05_ln2_rms = Question(
    name="q05_ln2_rms",
    answer=1.0,
    why="√(mean γ² + mean β²) ≈ 1.0 for h.0.ln_2: it keeps the scale, unlike the other block LayerNorms "
        "(≈ 0.2–0.5), because about two thirds of its γ are above 0.9.",
    rel_tol=0.05,
)

q05_beta_tail = Question(
    name="q05_beta_tail",
    answer="b",
    why="h.3.ln_1's β reaches ≈ 1.74, in channel 64, one of the recurring outlier channels of section 4.",
    choices={
        "a": "block 0's ln_1 is unusual for its γ (just below the band), but its β's longest tail is not the "
             "longest: compare the max of every ln_1's β.",
        "b": "",
        "c": "block 11's γ drifted up to about 0.5, but its ln_1's β does not have the longest tail: compare the "
             "max of every ln_1's β.",
    },
)

q05_forget_wbeta = Question(
    name="q05_forget_wbeta",
    answer="c",
    why="the error of dropping W β grows with β relative to γ: ln_f's β reaches ±4, and forgetting W β costs "
        "about 0.7 of its output's RMS.",
    choices={
        "a": "h.5.ln_1's β is small next to ln_f's, which reaches ±4: dropping W β costs h.5.ln_1 less "
             "(look at the table of section 5).",
        "b": "h.0.ln_2's γ is large (about 1), so its β is small next to it: dropping W β costs it the least "
             "of the three (look at the table of section 5).",
        "c": "",
    },
)
