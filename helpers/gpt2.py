"""GPT-2 small's LayerNorm parameters: their names and what they measure.

GPT-2 small (124M) has 25 LayerNorms of width 768: ``ln_1`` (before attention) and ``ln_2``
(before the MLP) in each of its 12 blocks, and a final ``ln_f``.  Each has a weight γ
("stretch") and a bias β ("shift"): 50 arrays in all, keyed like the Hugging Face
``GPT2Model`` state dict (``h.{i}.ln_1.weight``, ..., ``ln_f.bias``).

This module names the arrays and measures them (statistics, outliers, quantization, folding
γ and β into the next linear layer, the scale of LayerNorm outputs); loading them from the hub
or the shipped snapshot is :mod:`helpers.gpt2_hub`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from helpers.validation import check_choice, check_int, check_positive, check_probability

KINDS = ("weight", "bias")
GROUPS = ("ln_1", "ln_2", "ln_f")
N_LAYERS = 12
WIDTH = 768
#: The lecture's claim: γ lies mostly in this interval.
CLAIM_RANGE = (0.2, 0.4)
#: GPT-2's initialization (``GPT2Config.initializer_range``): linear and embedding weights are
#: drawn from N(0, 0.02²); every LayerNorm starts at γ = 1, β = 0.
GPT2_INIT_STD = 0.02
INIT_VALUE = {"weight": 1.0, "bias": 0.0}
#: The outlier rule of notebook 05: a value is an outlier in its LayerNorm when it lies more than
#: this many robust standard deviations (1.4826 × median absolute deviation) from that
#: LayerNorm's median.
OUTLIER_Z = 10.0


# -- names ------------------------------------------------------------------------------


def layernorm_names() -> list[str]:
    """The 25 LayerNorms in forward order: ``h.0.ln_1``, ``h.0.ln_2``, ..., ``h.11.ln_2``, ``ln_f``."""
    return [f"h.{i}.{g}" for i in range(N_LAYERS) for g in ("ln_1", "ln_2")] + ["ln_f"]


def param_keys() -> list[str]:
    """The 50 parameter keys: ``<layernorm>.weight`` and ``<layernorm>.bias`` for every LayerNorm."""
    return [f"{name}.{kind}" for name in layernorm_names() for kind in KINDS]


def layernorm_name(layer: int, group: str) -> str:
    """The name of a LayerNorm: ``h.{layer}.{group}`` for ln_1/ln_2, ``ln_f`` for the final one.

    Raises:
        ValueError: for a ``group`` not in ``GROUPS`` or a ``layer`` outside 0..11.
    """
    check_choice("group", group, GROUPS)
    if group == "ln_f":
        return "ln_f"
    layer = check_int("layer", layer, minimum=0, maximum=N_LAYERS - 1)
    return f"h.{int(layer)}.{group}"


def group_of(name: str) -> str:
    """``"ln_1"``, ``"ln_2"`` or ``"ln_f"`` for a LayerNorm name (``h.3.ln_2`` -> ``ln_2``)."""
    return name.rsplit(".", 1)[-1]


def short_label(name: str) -> str:
    """A compact label for tables and axes: ``h.3.ln_2`` -> ``3·ln_2``, ``ln_f`` -> ``ln_f``."""
    return name if name == "ln_f" else f"{name.split('.')[1]}·{group_of(name)}"


def validate_params(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Check that ``params`` holds exactly the 50 GPT-2 LayerNorm arrays of shape (768,).

    Returns the arrays as float32, in the order of :func:`param_keys`.

    Raises:
        TypeError: if ``params`` is not a dict.
        ValueError: for missing or extra keys, a wrong shape, or non-finite values.
    """
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
    expected = param_keys()
    missing = sorted(set(expected) - set(params))
    extra = sorted(set(params) - set(expected))
    if missing or extra:
        raise ValueError(
            f"params must have exactly the 50 GPT-2 LayerNorm keys; missing {missing[:4]}"
            f"{'...' if len(missing) > 4 else ''}, unexpected {extra[:4]}{'...' if len(extra) > 4 else ''}"
        )
    out: dict[str, np.ndarray] = {}
    for key in expected:
        value = np.asarray(params[key])
        if value.shape != (WIDTH,):
            raise ValueError(f"params[{key!r}] must have shape ({WIDTH},), got {value.shape}")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"params[{key!r}] has non-finite values")
        out[key] = value.astype(np.float32, copy=False)
    return out


# -- measurements -----------------------------------------------------------------------


def stack(params: dict[str, np.ndarray], kind: str) -> np.ndarray:
    """The 25 LayerNorms' ``kind`` ("weight" = γ or "bias" = β) as a (25, 768) array, forward order.

    Raises:
        ValueError: for an unknown ``kind``.
    """
    check_choice("kind", kind, KINDS)
    return np.stack([params[f"{name}.{kind}"] for name in layernorm_names()])


def values_of(params: dict[str, np.ndarray], kind: str, group: str | None = None) -> np.ndarray:
    """Every value of ``kind`` pooled over all LayerNorms, or over one ``group`` (ln_1/ln_2/ln_f)."""
    if group is not None:
        check_choice("group", group, GROUPS)
    rows = stack(params, kind)
    if group is None:
        return rows.ravel()
    keep = [i for i, n in enumerate(layernorm_names()) if group_of(n) == group]
    return rows[keep].ravel()


def fraction_in(values: np.ndarray, low: float = CLAIM_RANGE[0], high: float = CLAIM_RANGE[1]) -> float:
    """The fraction of ``values`` in the closed interval [low, high]."""
    values = np.asarray(values)
    return float(np.mean((values >= low) & (values <= high)))


@dataclass(frozen=True)
class ParameterHistogram:
    """The histogram and summary of one LayerNorm's γ or β (:func:`parameter_histogram`)."""

    name: str
    """The LayerNorm, e.g. ``"h.0.ln_1"``."""
    kind: str
    """``"weight"`` (γ) or ``"bias"`` (β)."""
    counts: np.ndarray
    """Values per bin."""
    edges: np.ndarray
    """Bin edges (``bins + 1``)."""
    median: float
    std: float
    low: float
    """Smallest value."""
    high: float
    """Largest value."""
    in_claim_range: float
    """Share of the values inside :data:`CLAIM_RANGE` (:func:`fraction_in`)."""


def parameter_histogram(params: dict[str, np.ndarray], layer: int, group: str, kind: str,
                        bins: int) -> ParameterHistogram:
    """The ``bins``-bin histogram of the 768 values of one LayerNorm's γ or β, and their summary.

    Raises:
        TypeError / ValueError: for a ``layer`` outside 0..11, an unknown ``group`` or
            ``kind``, or ``bins`` < 1.
    """
    name = layernorm_name(layer, group)
    check_choice("kind", kind, KINDS)
    bins = check_int("bins", bins, minimum=1)
    values = params[f"{name}.{kind}"]
    counts, edges = np.histogram(values, bins=bins)
    return ParameterHistogram(name, kind, counts, edges, float(np.median(values)), float(values.std()),
                              float(values.min()), float(values.max()), fraction_in(values))


@dataclass(frozen=True)
class LayerNormStats:
    """Summary statistics of one LayerNorm's γ (``kind="weight"``) or β (``kind="bias"``)."""

    name: str
    kind: str
    mean: float
    median: float
    std: float
    min: float
    max: float
    frac_in_claim: float  # fraction in CLAIM_RANGE (meaningful for γ)


def layernorm_stats(params: dict[str, np.ndarray], kind: str = "weight") -> list[LayerNormStats]:
    """One :class:`LayerNormStats` per LayerNorm, in forward order."""
    rows = stack(params, kind)
    return [
        LayerNormStats(
            name, kind, float(r.mean()), float(np.median(r)), float(r.std()), float(r.min()),
            float(r.max()), fraction_in(r),
        )
        for name, r in zip(layernorm_names(), rows, strict=True)
    ]


def stats_table(stats: list[LayerNormStats], digits: int = 3) -> str:
    """A plain-text table of :func:`layernorm_stats` (numbers rounded to ``digits`` significant digits).

    The "in [0.2, 0.4]" column (the lecture's claim) is shown for γ only.
    """
    low, high = CLAIM_RANGE
    claim = bool(stats) and stats[0].kind == "weight"
    head = f"{'LayerNorm':<9} {'mean':>9} {'median':>9} {'std':>9} {'min':>9} {'max':>9}"
    head += f"  in [{low}, {high}]" if claim else ""
    lines = [head, "-" * len(head)]
    for s in stats:
        nums = " ".join(f"{v:>9.{digits}g}" for v in (s.mean, s.median, s.std, s.min, s.max))
        lines.append(f"{short_label(s.name):<9} {nums}" + (f"  {s.frac_in_claim:>11.0%}" if claim else ""))
    return "\n".join(lines)


def int8_roundtrip(y: np.ndarray, keep_channels: tuple[int, ...] | list[int] = ()) -> np.ndarray:
    """``y`` after symmetric int8 quantization with one absmax scale per row, and back (float64).

    Each row (one vector) gets the scale s = max |y_row| / 127; its values become the integers
    round(y / s) in −127..127 and are multiplied back by s. A row of zeros stays zero. Channels in
    ``keep_channels`` are kept exactly (in higher precision) and excluded from the scale, as
    mixed-precision schemes for outlier features do.

    Raises:
        ValueError: if ``y`` is not 2-D (vectors × channels).
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"y must be a 2-D array (vectors × channels), got shape {y.shape}")
    keep = np.zeros(y.shape[1], dtype=bool)
    keep[list(keep_channels)] = True
    rest = y[:, ~keep]
    scale = np.abs(rest).max(axis=1, keepdims=True) / 127.0
    scale[scale == 0] = 1.0
    approx = y.copy()
    approx[:, ~keep] = np.clip(np.round(rest / scale), -127, 127) * scale
    return approx


def int8_roundtrip_error(
    y: np.ndarray, keep_channels: tuple[int, ...] | list[int] = (),
    roundtrip: Callable[[Any], Any] | None = None,
) -> float:
    """Relative error ‖y − ŷ‖ / ‖y‖ after symmetric int8 quantization with one absmax scale per row.

    Channels in ``keep_channels`` are kept exactly (in higher precision) and excluded from the
    scale, as mixed-precision schemes for outlier features do.

    Args:
        y: (vectors, channels) values.
        keep_channels: channels kept aside, unquantized.
        roundtrip: the quantize-and-back function to use on the other channels, called on a
            float64 ``torch.Tensor`` of shape (vectors, channels quantized) and returning one of
            the same shape (e.g. the one written in notebook 05); ``None`` uses
            :func:`int8_roundtrip`.

    Raises:
        ValueError: if ``y`` is not 2-D, or ``roundtrip`` returns the wrong shape.
        TypeError: if ``roundtrip`` is neither ``None`` nor callable.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"y must be a 2-D array (vectors × channels), got shape {y.shape}")
    if roundtrip is None:
        approx = int8_roundtrip(y, keep_channels)
    elif not callable(roundtrip):
        raise TypeError(f"roundtrip must be a function or None, got {type(roundtrip).__name__}")
    else:
        import torch

        keep = np.zeros(y.shape[1], dtype=bool)
        keep[list(keep_channels)] = True
        rest = y[:, ~keep]
        out = roundtrip(torch.from_numpy(rest.copy()))
        out = np.asarray(out.detach().cpu() if isinstance(out, torch.Tensor) else out, dtype=np.float64)
        if out.shape != rest.shape:
            raise ValueError(f"roundtrip must return the shape it was given, {rest.shape}, got {out.shape}")
        approx = y.copy()
        approx[:, ~keep] = out
    total = float(np.linalg.norm(y))
    return float(np.linalg.norm(y - approx)) / total if total > 0 else 0.0


@dataclass(frozen=True)
class ClaimVerdict:
    """Where the lecture's "γ mostly in [0.2, 0.4]" holds: LayerNorms with a majority inside."""

    holds: list[str]
    fails: list[str]
    overall_fraction: float
    threshold: float


def gamma_claim_verdict(params: dict[str, np.ndarray], threshold: float = 0.5) -> ClaimVerdict:
    """Split the 25 LayerNorms by whether more than ``threshold`` of their γ lie in [0.2, 0.4]."""
    threshold = check_probability("threshold", threshold, open_interval=True)
    stats = layernorm_stats(params, "weight")
    holds = [s.name for s in stats if s.frac_in_claim > threshold]
    fails = [s.name for s in stats if s.frac_in_claim <= threshold]
    return ClaimVerdict(holds, fails, fraction_in(values_of(params, "weight")), threshold)


def robust_z_rows(values: Any) -> np.ndarray:
    """Robust z-scores along the last axis, in float64: (value − median) / (1.4826 × MAD).

    The median is the usual one (the mean of the two middle values for an even count), and the
    median absolute deviation MAD = median(|value − median|) is taken along the same axis: one
    centre and one spread per row, e.g. per LayerNorm in a (25, 768) stack.

    Args:
        values: an array (or ``torch.Tensor``) with at least 2 values along its last axis.

    Raises:
        TypeError: if ``values`` is not numeric.
        ValueError: if it has fewer than 2 values along the last axis, non-finite values, or a
            row whose MAD is 0 (no robust spread to divide by).
    """
    if isinstance(values, (str, bytes)) or values is None:
        raise TypeError(f"values must be a numeric array, got {type(values).__name__}")
    try:
        rows = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"values must be a numeric array, got {type(values).__name__}") from error
    if rows.ndim == 0 or rows.shape[-1] < 2:
        raise ValueError(f"values must have at least 2 values along the last axis, got shape {rows.shape}")
    if not np.all(np.isfinite(rows)):
        raise ValueError("values must be finite")
    med = np.median(rows, axis=-1, keepdims=True)
    mad = 1.4826 * np.median(np.abs(rows - med), axis=-1, keepdims=True)
    if np.any(mad == 0):
        raise ValueError("values has a row whose median absolute deviation is 0: no robust spread")
    return (rows - med) / mad


def robust_z(params: dict[str, np.ndarray], kind: str = "weight") -> np.ndarray:
    """(25, 768) robust z-scores: (value − LayerNorm median) / (1.4826 × LayerNorm MAD).

    The median absolute deviation (MAD) times 1.4826 equals the standard deviation for normal
    data but is not inflated by the outliers themselves, so one rule fits every LayerNorm.
    """
    return robust_z_rows(stack(params, kind))


@dataclass(frozen=True)
class RecurringOutlier:
    """A channel that is an outlier (|robust z| > threshold) in many of the 25 LayerNorms."""

    channel: int
    count: int  # in how many of the 25 LayerNorms |robust z| > threshold
    max_abs_z: float  # its largest |robust z|
    where_max: str  # the LayerNorm where that happens


def outliers_from_z(z: Any, threshold: float = OUTLIER_Z, min_layers: int = 10) -> list[RecurringOutlier]:
    """Channels whose |robust z| exceeds ``threshold`` in at least ``min_layers`` LayerNorms,
    from given (25, 768) robust z-scores (:func:`robust_z`, or computed by hand); sorted by
    ``count`` (most first), then by channel number.

    Raises:
        ValueError: if ``z`` is not (25, 768) and finite, ``threshold`` <= 0 or ``min_layers``
            outside 1..25.
    """
    threshold = check_positive("threshold", threshold)
    names = layernorm_names()
    min_layers = check_int("min_layers", min_layers, minimum=1, maximum=len(names))
    z = np.abs(np.asarray(z, dtype=np.float64))
    if z.shape != (len(names), WIDTH) or not np.all(np.isfinite(z)):
        raise ValueError(f"z must be a finite ({len(names)}, {WIDTH}) array, got shape {z.shape}")
    counts = (z > threshold).sum(axis=0)
    keep = [c for c in range(WIDTH) if counts[c] >= min_layers]
    keep.sort(key=lambda c: (-counts[c], c))
    return [RecurringOutlier(c, int(counts[c]), float(z[:, c].max()), names[int(z[:, c].argmax())])
            for c in keep]


def channel_percentile(params: dict[str, np.ndarray], channel: int, kind: str = "weight") -> np.ndarray:
    """(25,) percent of the other 767 channels whose value is below ``channel``'s, per LayerNorm.

    0 means the channel has the smallest value of its LayerNorm, 100 the largest.

    Raises:
        ValueError: for a ``channel`` outside 0..767 or an unknown ``kind``.
    """
    channel = check_int("channel", channel, minimum=0, maximum=WIDTH - 1)
    rows = stack(params, kind)
    below = (rows < rows[:, [channel]]).sum(axis=1)
    return 100.0 * below / (WIDTH - 1)


def fold_layernorm_into_linear(
    gamma: np.ndarray, beta: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fold a LayerNorm's γ, β into the linear layer that reads its output.

    ``W (γ ⊙ x̂ + β) + b = (W · diag γ) x̂ + (W β + b)``, so a LayerNorm without γ, β followed by
    the folded layer computes the same function.

    Args:
        gamma, beta: the LayerNorm's (d,) weight and bias.
        weight: the linear layer's (out, d) weight (PyTorch's ``nn.Linear`` layout).
        bias: its (out,) bias, or ``None`` for no bias.

    Returns:
        ``(folded_weight, folded_bias)`` of shapes (out, d) and (out,).

    Raises:
        ValueError: if the shapes do not fit together.
    """
    gamma, beta, weight = (np.asarray(a, dtype=np.float64) for a in (gamma, beta, weight))
    if gamma.ndim != 1 or beta.shape != gamma.shape:
        raise ValueError(f"gamma and beta must be 1-D of the same length, got {gamma.shape} and {beta.shape}")
    if weight.ndim != 2 or weight.shape[1] != gamma.shape[0]:
        raise ValueError(f"weight must have shape (out, {gamma.shape[0]}), got {weight.shape}")
    b = np.zeros(weight.shape[0]) if bias is None else np.asarray(bias, dtype=np.float64)
    if b.shape != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},), got {b.shape}")
    return weight * gamma[None, :], weight @ beta + b


@dataclass(frozen=True)
class FoldingCheck:
    """LayerNorm(γ, β) → Linear against LayerNorm (no γ, β) → folded Linear, in float32 PyTorch.

    Attributes:
        name: the LayerNorm whose real γ, β were used.
        out_rms: RMS of the original block's output (the scale of the numbers compared).
        max_diff_folded: largest |difference| between the original and the folded version.
        max_diff_gamma_only: the same when only γ is folded and the β term W β is forgotten.
        weight_change: ‖W · diag γ − W‖ / ‖W‖, how far the folded weight is from the original.
    """

    name: str
    out_rms: float
    max_diff_folded: float
    max_diff_gamma_only: float
    weight_change: float


def folding_check(
    params: dict[str, np.ndarray], name: str, *, out_features: int = 2304, n_tokens: int = 64,
    seed: int = 0, fold: Callable[..., Any] | None = None,
) -> FoldingCheck:
    """Fold one real LayerNorm into a Linear layer drawn from GPT-2's N(0, 0.02²) init and compare.

    Standard-normal tokens go through ``torch.nn.LayerNorm`` with the real γ, β and then through
    an ``nn.Linear(768, out_features)`` (2304 = the width of GPT-2's query/key/value projection
    ``c_attn``), and, separately, through a LayerNorm without γ, β and the folded Linear.

    ``fold`` is the folding function to use: ``fold(gamma, beta, weight, bias) ->
    (folded_weight, folded_bias)`` on float32 ``torch.Tensor``s (e.g. the one written in
    notebook 05); ``None`` uses :func:`fold_layernorm_into_linear`.

    Raises:
        ValueError: for an unknown ``name`` or ``out_features``/``n_tokens`` < 1, or when
            ``fold`` returns tensors of the wrong shape.
        TypeError: if ``fold`` is neither ``None`` nor callable.
    """
    import torch

    if name not in layernorm_names():
        raise ValueError(f"name must be one of the 25 LayerNorm names, e.g. 'h.0.ln_1', got {name!r}")
    out_features = check_int("out_features", out_features, minimum=1)
    n_tokens = check_int("n_tokens", n_tokens, minimum=1)
    if fold is not None and not callable(fold):
        raise TypeError(f"fold must be a function or None, got {type(fold).__name__}")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n_tokens, WIDTH, generator=gen)
    weight = torch.randn(out_features, WIDTH, generator=gen) * GPT2_INIT_STD
    bias = torch.zeros(out_features)
    gamma = torch.from_numpy(params[f"{name}.weight"].astype(np.float32))
    beta = torch.from_numpy(params[f"{name}.bias"].astype(np.float32))
    with torch.no_grad():
        original = torch.nn.functional.linear(
            torch.nn.functional.layer_norm(x, (WIDTH,), gamma, beta, 1e-5), weight, bias)
        plain = torch.nn.functional.layer_norm(x, (WIDTH,), None, None, 1e-5)
        if fold is None:
            w_f, b_f = fold_layernorm_into_linear(gamma.numpy(), beta.numpy(), weight.numpy(), bias.numpy())
        else:
            w_t, b_t = fold(gamma.clone(), beta.clone(), weight.clone(), bias.clone())
            w_f, b_f = (np.asarray(torch.as_tensor(t).detach().double()) for t in (w_t, b_t))
            if w_f.shape != tuple(weight.shape) or b_f.shape != tuple(bias.shape):
                raise ValueError(f"fold must return a weight of shape {tuple(weight.shape)} and a bias of "
                                 f"shape {tuple(bias.shape)}, got {w_f.shape} and {b_f.shape}")
        folded = torch.nn.functional.linear(plain, torch.from_numpy(w_f).float(), torch.from_numpy(b_f).float())
        gamma_only = torch.nn.functional.linear(plain, torch.from_numpy(w_f).float(), bias)
    w = weight.double().numpy()
    return FoldingCheck(
        name,
        float(original.pow(2).mean().sqrt()),
        float((original - folded).abs().max()),
        float((original - gamma_only).abs().max()),
        float(np.linalg.norm(w_f - w) / np.linalg.norm(w)),
    )


def apply_layernorm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """PyTorch's LayerNorm over the last axis: (x − mean) / sqrt(var + eps) · γ + β."""
    x = np.asarray(x, dtype=np.float64)
    mu = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


def rms(x: np.ndarray) -> np.ndarray:
    """Root-mean-square over the last axis (the "scale" of each vector)."""
    return np.sqrt(np.mean(np.square(x), axis=-1))


@dataclass(frozen=True)
class OutputScale:
    """What each LayerNorm does to standard-normal vectors (input RMS ≈ 1)."""

    names: list[str]
    input_rms: float  # mean RMS of the input vectors
    output_rms: np.ndarray  # (25,) mean RMS of LN(x) per LayerNorm
    predicted_rms: np.ndarray  # (25,) sqrt(mean γ² + mean β²): the prediction from γ, β alone


def gaussian_output_scale(params: dict[str, np.ndarray], n: int = 512, seed: int = 0) -> OutputScale:
    """Push ``n`` standard-normal 768-vectors through every real LayerNorm and measure the scale."""
    n = check_int("n", n, minimum=2)
    x = np.random.default_rng(seed).standard_normal((n, WIDTH))
    names = layernorm_names()
    out = np.array(
        [rms(apply_layernorm(x, params[f"{m}.weight"], params[f"{m}.bias"])).mean() for m in names]
    )
    gammas, betas = stack(params, "weight"), stack(params, "bias")
    predicted = np.sqrt(np.mean(gammas.astype(np.float64) ** 2 + betas.astype(np.float64) ** 2, axis=1))
    return OutputScale(names, float(rms(x).mean()), out, predicted)


@dataclass(frozen=True)
class ResidualScale:
    """Per LayerNorm, the RMS of the residual stream going in and of the LayerNorm's output."""

    names: list[str]
    input_rms: np.ndarray  # (25,)
    output_rms: np.ndarray  # (25,)
    n_tokens: int
    top_input_channels: list[list[int]]  # per LayerNorm, the 3 channels with the largest mean |input|


def largest_channels(values: np.ndarray, k: int = 6) -> list[int]:
    """The ``k`` channels with the largest |value|, largest first."""
    k = check_int("k", k, minimum=1)
    return [int(c) for c in np.argsort(np.abs(np.asarray(values)), kind="stable")[::-1][:k]]


def residual_stream_scale(model: Any, input_ids: Any) -> ResidualScale:
    """Run real token ids through a ``transformers`` GPT-2 model; record RMS before/after each LayerNorm.

    Args:
        model: a ``GPT2Model`` (e.g. from :func:`load_hub_model`).
        input_ids: a (1, T) integer tensor of token ids.
    """
    import torch

    names = layernorm_names()
    modules = dict(model.named_modules())
    records: dict[str, tuple[float, float, list[int]]] = {}
    handles = []
    for name in names:

        def hook(_module: Any, inputs: Any, output: Any, name: str = name) -> None:
            x = inputs[0][0].detach().double().numpy()
            records[name] = (
                float(rms(x).mean()),
                float(rms(output[0].detach().double().numpy()).mean()),
                [int(c) for c in np.argsort(np.abs(x).mean(axis=0))[::-1][:3]],
            )

        handles.append(modules[name].register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(input_ids)
    finally:
        for handle in handles:
            handle.remove()
    return ResidualScale(
        names,
        np.array([records[n][0] for n in names]),
        np.array([records[n][1] for n in names]),
        int(input_ids.shape[-1]),
        [records[n][2] for n in names],
    )
