"""Attention scaling: why the scores QKᵀ are divided by √d (notebook 04).

Pure functions that return tensors, arrays and dataclasses; nothing here draws.

* :func:`random_qk` / :func:`qk_scores`: queries and keys with independent N(0, 1) entries
  and their (optionally scaled) score matrix;
* :func:`std_sweep`: std of QKᵀ and of QKᵀ/√d for many dimensions d;
* :func:`softmax_entropy`, :func:`row_stats`, :func:`saturation_sweep`: how peaked the
  softmax rows are (entropy, largest probability, share of one-hot-like rows);
  :func:`regime_shares`: share of rows that are one-hot-like, uniform-like or in between;
* :func:`softmax_jacobian`, :func:`gradient_vs_scale`: how much gradient reaches the scores
  as their scale grows;
* :func:`manual_attention`, :func:`stable_softmax`: attention and the softmax written out
  (the references of the notebook's build-it-yourself exercises);
* :func:`layernorm_logit_std`: how a LayerNorm gain γ sets the scale of the scores;
* :func:`std_ratio_over_seeds`, :func:`saturation_scale`, :func:`projected_logit_std`: the
  same measurements repeated over seeds, and the logit scale of attention at initialization
  when q and k are projections of LayerNorm outputs (e.g. GPT-2's N(0, 0.02²) weights).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch.nn import functional as F

from helpers.validation import (
    check_int,
    check_ints,
    check_positive,
    check_probability,
    check_reals,
    check_tensor,
)

#: A softmax row counts as "one-hot-like" when its largest probability is at least this.
#: The one definition of the course's notebook 04: row statistics, figures and the panel use it.
ONE_HOT_THRESHOLD = 0.9
#: A softmax row counts as "uniform-like" when its entropy is at least this share of log n.
UNIFORM_THRESHOLD = 0.95


# -- validation ----------------------------------------------------------------------------
def _check_scores(scores: object) -> torch.Tensor:
    if isinstance(scores, np.ndarray):
        scores = torch.from_numpy(scores)
    if not isinstance(scores, torch.Tensor):
        raise TypeError(f"scores must be a 2-D torch tensor or NumPy array, got {type(scores).__name__}")
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D [rows, keys], got shape {tuple(scores.shape)}")
    if scores.shape[0] < 1 or scores.shape[1] < 1:
        raise ValueError(f"scores must have at least one row and one key, got shape {tuple(scores.shape)}")
    if not scores.is_floating_point():
        scores = scores.double()
    return scores


def _check_dims(dims: Sequence[int]) -> list[int]:
    return list(check_ints("dims", dims, minimum=1))


# -- scores ----------------------------------------------------------------------------------
def random_qk(n: int, d: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Queries and keys Q, K of shape ``[n, d]`` with independent N(0, 1) entries (float64).

    Raises:
        ValueError: if ``n`` or ``d`` is < 1.
    """
    n = check_int("n", n, minimum=1)
    d = check_int("d", d, minimum=1)
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(n, d, generator=generator, dtype=torch.float64)
    k = torch.randn(n, d, generator=generator, dtype=torch.float64)
    return q, k


def qk_scores(n: int, d: int, scaled: bool = False, seed: int = 0) -> torch.Tensor:
    """The ``[n, n]`` score matrix QKᵀ (divided by √d when ``scaled``).

    Q, K ∈ R^{n×d} have independent N(0, 1) entries, drawn from ``seed``; each score is a
    dot product of d products of independent unit-variance numbers, so its variance is d.

    Raises:
        ValueError: if ``n`` or ``d`` is < 1.
    """
    q, k = random_qk(n, d, seed)
    scores = q @ k.T
    return scores / math.sqrt(d) if scaled else scores


@dataclass
class StdSweep:
    """Standard deviation of the scores over a range of dimensions (:func:`std_sweep`)."""

    dims: np.ndarray
    """The dimensions d, shape ``(m,)``."""
    std_raw: np.ndarray
    """std(QKᵀ) for each d."""
    std_scaled: np.ndarray
    """std(QKᵀ / √d) for each d."""

    @property
    def sqrt_d(self) -> np.ndarray:
        """The prediction √d for ``std_raw``."""
        return np.sqrt(self.dims)


def std_ratio_over_seeds(n: int = 50, d: int = 50, seeds: Sequence[int] = range(10)) -> np.ndarray:
    """std(QKᵀ)/√d for Q, K ∈ R^{n×d} with N(0, 1) entries, one value per seed.

    Raises:
        ValueError: if ``n`` or ``d`` is < 1 or ``seeds`` is empty.
    """
    n = check_int("n", n, minimum=1)
    d = check_int("d", d, minimum=1)
    seeds = check_ints("seeds", seeds, minimum=0)
    return np.array([qk_scores(n, d, seed=s).std().item() / math.sqrt(d) for s in seeds])


def std_sweep(dims: Sequence[int], n: int = 50, seed: int = 0) -> StdSweep:
    """std(QKᵀ) and std(QKᵀ/√d) for Q, K ∈ R^{n×d}, one draw per d (seed ``seed + d``)."""
    dims = _check_dims(dims)
    n = check_int("n", n, minimum=1)
    raw = np.array([qk_scores(n, d, seed=seed + d).std().item() for d in dims])
    return StdSweep(np.array(dims), raw, raw / np.sqrt(dims))


def dot_product_variance(d: int, pairs: int = 20_000, seed: int = 0) -> float:
    """The sample variance of q·k over ``pairs`` independent pairs q, k ~ N(0, I_d)."""
    d = check_int("d", d, minimum=1)
    pairs = check_int("pairs", pairs, minimum=2)
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(pairs, d, generator=generator, dtype=torch.float64)
    k = torch.randn(pairs, d, generator=generator, dtype=torch.float64)
    return (q * k).sum(dim=1).var().item()


# -- softmax rows ----------------------------------------------------------------------------
def softmax_entropy(scores: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Per-row entropy, in nats, of softmax(scores / temperature).

    The entropy of a row of n keys is log n for the uniform distribution and 0 for a
    one-hot one.

    Args:
        scores: a 2-D tensor (or array) ``[rows, keys]``.
        temperature: T > 0; larger T flattens the distribution.

    Returns:
        A tensor of shape ``[rows]``.

    Raises:
        ValueError: if ``scores`` is not 2-D or ``temperature`` is not > 0.
    """
    scores = _check_scores(scores)
    temperature = check_positive("temperature", temperature)
    log_p = torch.log_softmax(scores / temperature, dim=-1)
    p = log_p.exp()
    # p * log p -> 0 as p -> 0; where p underflows to 0 the product is 0, not nan.
    return -(torch.where(p > 0, p * log_p, torch.zeros_like(p))).sum(dim=-1)


@dataclass
class RowStats:
    """How peaked the softmax rows of a score matrix are (:func:`row_stats`)."""

    entropy: np.ndarray
    """Entropy of every row, in nats."""
    max_prob: np.ndarray
    """Largest probability of every row."""
    log_n: float
    """log(number of keys): the entropy of the uniform distribution."""

    @property
    def one_hot_fraction(self) -> float:
        """Share of rows whose largest probability is at least :data:`ONE_HOT_THRESHOLD`."""
        return float(np.mean(self.max_prob >= ONE_HOT_THRESHOLD))


def row_stats(scores: torch.Tensor, temperature: float = 1.0) -> RowStats:
    """Entropy and largest probability of each row of softmax(scores / temperature)."""
    scores = _check_scores(scores)
    temperature = check_positive("temperature", temperature)
    probs = torch.softmax(scores / temperature, dim=-1)
    return RowStats(
        entropy=softmax_entropy(scores, temperature).numpy(),
        max_prob=probs.max(dim=-1).values.numpy(),
        log_n=math.log(scores.shape[1]),
    )


def regime_shares(scores: torch.Tensor, temperature: float = 1.0) -> dict[str, float]:
    """Share of the rows of softmax(scores / temperature) in each regime of the course's
    working definition: "one-hot-like" (largest probability ≥ :data:`ONE_HOT_THRESHOLD`),
    "uniform-like" (entropy ≥ :data:`UNIFORM_THRESHOLD` · log n) and "Goldilocks zone" (neither).

    Raises:
        ValueError: if ``scores`` is not 2-D or ``temperature`` is not > 0.
    """
    stats = row_stats(scores, temperature)
    one_hot = stats.max_prob >= ONE_HOT_THRESHOLD
    uniform = ~one_hot & (stats.entropy >= UNIFORM_THRESHOLD * stats.log_n)
    return {"one-hot-like": float(one_hot.mean()), "Goldilocks zone": float((~one_hot & ~uniform).mean()),
            "uniform-like": float(uniform.mean())}


@dataclass(frozen=True)
class RawAndScaled:
    """Every score's softmax probability and −log softmax, raw and divided by √d
    (:func:`softmax_raw_and_scaled`); all arrays are flat, in the order of ``scores``."""

    scores: np.ndarray
    """The raw scores q·k."""
    probs_raw: np.ndarray
    """softmax of each row of the raw scores."""
    probs_scaled: np.ndarray
    """softmax of each row of the scores divided by √d."""
    nll_raw: np.ndarray
    """−log softmax of each row of the raw scores (nats)."""
    nll_scaled: np.ndarray
    """−log softmax of each row of the scores divided by √d (nats)."""


def softmax_raw_and_scaled(scores: torch.Tensor, d: int) -> RawAndScaled:
    """softmax and −log softmax of every row of ``scores`` (a 2-D tensor or array) and of
    ``scores / √d``."""
    raw = torch.as_tensor(scores).detach().double()
    scaled = raw / math.sqrt(d)
    flat = [t.flatten().numpy() for t in (raw, torch.softmax(raw, -1), torch.softmax(scaled, -1),
                                          -torch.log_softmax(raw, -1), -torch.log_softmax(scaled, -1))]
    return RawAndScaled(*flat)


def row_regime(entropy: float, max_prob: float, n: int) -> str:
    """The regime of one softmax row of ``n`` keys, by the definitions of :func:`regime_shares`:
    "one-hot-like", "uniform-like" or "Goldilocks zone"."""
    if max_prob >= ONE_HOT_THRESHOLD:
        return "one-hot-like"
    if entropy >= UNIFORM_THRESHOLD * math.log(n):
        return "uniform-like"
    return "Goldilocks zone"


# -- one attention row at any temperature (notebook 04's panel) -----------------------------
#: Keys of the panel's attention row (and queries of the score matrix it comes from).
PANEL_N = 50
#: Temperatures of the panel's entropy and max-probability curves (log-spaced, 0.01 to 100).
PANEL_TEMPERATURES = np.logspace(-2, 2, 81)


@lru_cache(maxsize=1024)
def _panel_logits(d: int, scaled: bool) -> torch.Tensor:
    """The logits of query 0 of :func:`qk_scores` ``(PANEL_N, d, scaled)`` over its keys."""
    return qk_scores(PANEL_N, d, scaled=scaled)[0]


@dataclass(frozen=True)
class TemperatureRow:
    """One attention row at one temperature (:func:`temperature_row`)."""

    logits: np.ndarray
    """The row's logits (divided by √d when scaled), before the temperature."""
    probs: np.ndarray
    """softmax(logits / T), sorted from largest to smallest."""
    entropy: float
    """Entropy of ``probs`` in nats (log n for a uniform row)."""
    max_prob: float
    """The largest probability."""
    regime: str
    """:func:`row_regime` of the row."""


def temperature_row(d: int, temperature: float, scaled: bool) -> TemperatureRow:
    """Query 0's attention row over :data:`PANEL_N` keys with Q, K ∈ R^{n×d} (seed 0), at
    temperature ``temperature``, its scores divided by √d when ``scaled``."""
    logits = _panel_logits(d, scaled)
    stats = row_stats(logits[None, :], temperature)
    probs = torch.softmax(logits / temperature, dim=-1).sort(descending=True).values.numpy()
    entropy, max_prob = float(stats.entropy[0]), float(stats.max_prob[0])
    return TemperatureRow(logits.numpy().copy(), probs, entropy, max_prob, row_regime(entropy, max_prob, PANEL_N))


@dataclass(frozen=True)
class TemperatureCurves:
    """How one attention row changes with the temperature (:func:`temperature_curves`)."""

    temperatures: np.ndarray
    """The temperatures T, :data:`PANEL_TEMPERATURES`."""
    entropy_share: np.ndarray
    """Entropy of softmax(logits / T) divided by log n, per temperature (1 = uniform)."""
    max_prob: np.ndarray
    """Largest probability of softmax(logits / T), per temperature."""
    zone: tuple[float, float] | None
    """Lowest and highest temperature of the grid in the Goldilocks zone (``None`` if none)."""


@lru_cache(maxsize=1024)
def temperature_curves(d: int, scaled: bool) -> TemperatureCurves:
    """Entropy share and largest probability of :func:`temperature_row`'s row over
    :data:`PANEL_TEMPERATURES`, and the temperatures of its Goldilocks zone (cached: they
    depend on d and the scaling, not on the current temperature)."""
    logits = _panel_logits(d, scaled)
    temps = torch.from_numpy(PANEL_TEMPERATURES)
    stats = row_stats(logits[None, :] / temps[:, None])
    share = stats.entropy / stats.log_n
    zone = (stats.max_prob < ONE_HOT_THRESHOLD) & (share < UNIFORM_THRESHOLD)
    for a in (share, stats.max_prob):
        a.setflags(write=False)
    bounds = ((float(PANEL_TEMPERATURES[zone][0]), float(PANEL_TEMPERATURES[zone][-1]))
              if zone.any() else None)
    return TemperatureCurves(PANEL_TEMPERATURES, share, stats.max_prob, bounds)


@dataclass
class SaturationSweep:
    """Mean row statistics of raw and scaled attention over dimensions (:func:`saturation_sweep`)."""

    dims: np.ndarray
    entropy_raw: np.ndarray
    entropy_scaled: np.ndarray
    max_prob_raw: np.ndarray
    max_prob_scaled: np.ndarray
    one_hot_raw: np.ndarray
    one_hot_scaled: np.ndarray
    log_n: float


def saturation_sweep(dims: Sequence[int], n: int = 50, repeats: int = 4, seed: int = 0) -> SaturationSweep:
    """Mean entropy, mean largest probability and one-hot share of the softmax rows of
    QKᵀ and QKᵀ/√d, for Q, K ∈ R^{n×d}, pooled over ``repeats`` draws per d."""
    dims = _check_dims(dims)
    n = check_int("n", n, minimum=1)
    repeats = check_int("repeats", repeats, minimum=1)
    out: dict[str, list[float]] = {k: [] for k in ("er", "es", "mr", "ms", "or", "os")}
    for d in dims:
        raw = torch.cat([qk_scores(n, d, seed=seed + 1000 * r + d) for r in range(repeats)])
        for tag, stats in (("r", row_stats(raw)), ("s", row_stats(raw / math.sqrt(d)))):
            out["e" + tag].append(float(stats.entropy.mean()))
            out["m" + tag].append(float(stats.max_prob.mean()))
            out["o" + tag].append(stats.one_hot_fraction)
    arr = {k: np.array(v) for k, v in out.items()}
    return SaturationSweep(np.array(dims), arr["er"], arr["es"], arr["mr"], arr["ms"],
                           arr["or"], arr["os"], math.log(n))


# -- gradients -------------------------------------------------------------------------------
def softmax_jacobian(z: torch.Tensor) -> torch.Tensor:
    """The Jacobian ∂softmax(z)/∂z = diag(p) − p pᵀ of a 1-D logit vector ``z``.

    Raises:
        TypeError: if ``z`` is not a tensor.
        ValueError: if ``z`` is not 1-D or is empty.
    """
    check_tensor("z", z, ndim=1, non_empty=True)
    p = torch.softmax(z, dim=0)
    return torch.diag(p) - torch.outer(p, p)


@dataclass
class GradientScan:
    """Size of the gradient that reaches the scores, per logit scale (:func:`gradient_vs_scale`)."""

    scales: np.ndarray
    """Standard deviation s of the logits."""
    jacobian_norm: np.ndarray
    """Mean Frobenius norm of the softmax Jacobian of a row."""
    grad_norm: np.ndarray
    """Mean norm of ∂L/∂z per row, for an upstream gradient with N(0, 1) entries."""
    grad_norm_median: np.ndarray
    """Median over rows of the same norm (robust to the rare rows with near-ties)."""
    max_prob: np.ndarray
    """Mean largest probability per row."""


def saturation_scale(scan: GradientScan, fraction: float = 0.01) -> float:
    """The logit scale s, after the peak, at which the median gradient norm first falls
    below ``fraction`` of its peak (``nan`` if it never does on the scan's grid).

    Between the two grid points around the crossing, log(median) is interpolated linearly
    in log s, so the answer does not jump from one grid point to the next.

    Raises:
        TypeError: if ``scan`` is not a :class:`GradientScan`.
        ValueError: if ``fraction`` is not in (0, 1).
    """
    if not isinstance(scan, GradientScan):
        raise TypeError(f"scan must be a GradientScan, got {type(scan).__name__}")
    fraction = check_probability("fraction", fraction, open_interval=True)
    median = scan.grad_norm_median
    peak = int(np.argmax(median))
    below = np.nonzero(median[peak:] < fraction * median[peak])[0]
    if not below.size:
        return float("nan")
    i = peak + int(below[0])  # i > peak, since the peak itself is not below the target
    x0, x1 = np.log(scan.scales[i - 1]), np.log(scan.scales[i])
    y0, y1 = np.log(median[i - 1]), np.log(median[i])
    target = np.log(fraction * median[peak])
    return float(np.exp(x0 + (target - y0) * (x1 - x0) / (y1 - y0)))


def gradient_vs_scale(scales: Sequence[float], n: int = 50, rows: int = 200, seed: int = 0) -> GradientScan:
    """How much gradient flows back through softmax as the logits grow.

    For each scale s, logits z = s·u with u ~ N(0, 1) of shape ``[rows, n]``; the loss is
    L = Σ g · (softmax(z) V) with random V and g, as in an attention layer. Autograd gives
    ∂L/∂z; the Jacobian is computed in closed form for the same rows.
    """
    scales = list(check_reals("scales", scales))
    n = check_int("n", n, minimum=1)
    rows = check_int("rows", rows, minimum=1)
    generator = torch.Generator().manual_seed(seed)
    u = torch.randn(rows, n, generator=generator, dtype=torch.float64)
    values = torch.randn(n, 16, generator=generator, dtype=torch.float64)
    upstream = torch.randn(rows, 16, generator=generator, dtype=torch.float64)
    # all scales at once: z has shape [scales, rows, n]
    z = (torch.tensor(scales, dtype=torch.float64)[:, None, None] * u).requires_grad_(True)
    probs = torch.softmax(z, dim=-1)
    loss = ((probs @ values) * upstream).sum()
    (dz,) = torch.autograd.grad(loss, z)
    p = probs.detach()
    # ‖diag(p) − p pᵀ‖_F² = Σᵢ pᵢ²(1 − pᵢ)² + Σᵢ pᵢ² Σ_{j≠i} pⱼ², without forming the n×n
    # matrices; for the largest pᵢ, 1 − pᵢ and Σ_{j≠i} pⱼ² are summed from the other keys, so
    # nearly one-hot rows do not lose their tiny Jacobian to rounding.
    top = F.one_hot(p.argmax(dim=-1), n).bool()
    others = p.masked_fill(top, 0.0)
    rest = torch.where(top, others.sum(dim=-1, keepdim=True), 1 - p)
    squares = torch.where(top, (others**2).sum(dim=-1, keepdim=True), (p**2).sum(dim=-1, keepdim=True) - p**2)
    jacobian = (p**2 * (rest**2 + squares)).sum(dim=-1).sqrt()
    norms = dz.norm(dim=-1)
    jac = jacobian.mean(dim=1).tolist()
    grad = norms.mean(dim=1).tolist()
    med = norms.median(dim=1).values.tolist()
    max_prob = p.max(dim=-1).values.mean(dim=1).tolist()
    return GradientScan(np.array(scales), np.array(jac), np.array(grad), np.array(med), np.array(max_prob))


# -- attention by hand -----------------------------------------------------------------------
def manual_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False) -> torch.Tensor:
    """softmax(QKᵀ/√d) V written out, with an optional causal mask (key j > query i hidden)."""
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share the last dimension d, got {q.shape[-1]} and {k.shape[-1]}")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        lq, lk = scores.shape[-2], scores.shape[-1]
        hidden = torch.ones(lq, lk, dtype=torch.bool).triu(diagonal=1)
        scores = scores.masked_fill(hidden, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def stable_softmax(logits: torch.Tensor, temperature: float = 1.0, dim: int = -1) -> torch.Tensor:
    """softmax(logits / temperature) along ``dim``, written out the numerically stable way.

    Each slice along ``dim`` has its own maximum subtracted before ``exp``: the result is the
    same (softmax ignores a constant added to a row), but the largest exponent is e⁰ = 1, so
    logits like 1000 do not overflow to inf (inf / inf = nan) and logits like −1000 do not
    underflow to 0 / 0.

    Args:
        logits: a floating-point tensor of any shape.
        temperature: T > 0; larger T flattens the distribution, smaller T sharpens it.
        dim: the dimension whose entries sum to 1 (the keys of an attention row: -1).

    Raises:
        TypeError: if ``logits`` is not a floating-point tensor or ``dim`` is not an int.
        ValueError: if ``temperature`` is not a finite number > 0 or ``dim`` is out of range.
    """
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError(f"logits must be a floating-point torch tensor, got {type(logits).__name__}"
                        + (f" of dtype {logits.dtype}" if isinstance(logits, torch.Tensor) else ""))
    temperature = check_positive("temperature", temperature)
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"dim must be an int, got {dim!r}")
    if not -max(logits.ndim, 1) <= dim < max(logits.ndim, 1):
        raise ValueError(f"dim must be in [{-logits.ndim}, {logits.ndim - 1}] for a {logits.ndim}-D tensor, got {dim}")
    z = logits / temperature
    e = torch.exp(z - z.amax(dim=dim, keepdim=True))
    return e / e.sum(dim=dim, keepdim=True)


# -- bridge to LayerNorm ---------------------------------------------------------------------
def layernorm_logit_std(
    gammas: Sequence[float], d_model: int = 256, d_head: int = 64, n: int = 128, seed: int = 0
) -> np.ndarray:
    """std of the scaled scores QKᵀ/√d_head when Q and K are projections of LayerNorm outputs.

    Tokens x ~ N(3, 5²) (any scale: LayerNorm removes it) go through LayerNorm with gain
    γ (a constant vector) and no shift, then through W_Q, W_K ~ N(0, 1/d_model), which keep
    the variance of their input. Returns one std per γ.
    """
    gammas = list(check_reals("gammas", gammas))
    d_model = check_int("d_model", d_model, minimum=1)
    d_head = check_int("d_head", d_head, minimum=1)
    n = check_int("n", n, minimum=1)
    generator = torch.Generator().manual_seed(seed)
    x = 3 + 5 * torch.randn(n, d_model, generator=generator, dtype=torch.float64)
    w_q = torch.randn(d_model, d_head, generator=generator, dtype=torch.float64) / math.sqrt(d_model)
    w_k = torch.randn(d_model, d_head, generator=generator, dtype=torch.float64) / math.sqrt(d_model)
    out = []
    for g in gammas:
        h = F.layer_norm(x, (d_model,), weight=torch.full((d_model,), g, dtype=torch.float64))
        out.append(((h @ w_q) @ (h @ w_k).T / math.sqrt(d_head)).std().item())
    return np.array(out)


def projected_logit_std(
    d_model: int, d_head: int, weight_std: float, n: int = 128, seed: int = 0
) -> float:
    """std of the scaled scores QKᵀ/√d_head at initialization, when q and k are projections
    of LayerNorm outputs through W_Q, W_K with independent N(0, weight_std²) entries.

    The ``n`` tokens are N(0, 1) vectors of width ``d_model`` passed through LayerNorm (γ = 1,
    β = 0). With weight_std² = 1/d_model the projections keep unit variance and the result
    is ≈ 1; GPT-2 initializes its weights with weight_std = 0.02 (Radford et al., 2019), which
    gives ≈ d_model · 0.02² instead.

    Raises:
        ValueError: for sizes < 1 or a weight_std that is not > 0.
    """
    d_model = check_int("d_model", d_model, minimum=1)
    d_head = check_int("d_head", d_head, minimum=1)
    weight_std = check_positive("weight_std", weight_std)
    n = check_int("n", n, minimum=2)
    generator = torch.Generator().manual_seed(seed)
    x = F.layer_norm(torch.randn(n, d_model, generator=generator, dtype=torch.float64), (d_model,))
    w_q = weight_std * torch.randn(d_model, d_head, generator=generator, dtype=torch.float64)
    w_k = weight_std * torch.randn(d_model, d_head, generator=generator, dtype=torch.float64)
    return ((x @ w_q) @ (x @ w_k).T / math.sqrt(d_head)).std().item()


# -- reading trained runs (notebook 04, section 5) ---------------------------------------------
#: A trained reversal model counts as having "learned" when it reverses at least this share of
#: held-out sequences without a mistake.
LEARNED_ACCURACY = 0.9
#: An answer position counts as "at chance" when its accuracy is below this (chance is 1/10).
CHANCE_ACCURACY = 0.2


def steps_to_loss(curves: np.ndarray, steps: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    """The first recorded step at which each loss curve is below ``threshold``; ``inf`` for a
    curve that never gets there (or only reaches NaN).

    ``curves`` has the recorded points on its last axis (any leading shape, e.g. seeds) and
    ``steps`` the step of each point.

    Raises:
        TypeError: if ``threshold`` is not a real number.
        ValueError: if ``steps`` does not match the last axis of ``curves`` or ``threshold`` <= 0.
    """
    curves = np.asarray(curves, dtype=np.float64)
    steps = np.asarray(steps, dtype=np.float64)
    threshold = check_positive("threshold", threshold)
    if curves.ndim < 1 or steps.shape != curves.shape[-1:]:
        raise ValueError(f"steps must hold one step per recorded point ({curves.shape[-1:] or 'none'}), "
                         f"got shape {steps.shape}")
    below = curves < threshold  # NaN compares False
    return np.where(below.any(axis=-1), steps[np.argmax(below, axis=-1)], np.inf)
