"""Exercises of notebook 04 (Attention scaling): the softmax, its Jacobian and attention by hand.

* :data:`softmax`: a numerically stable softmax with a temperature, ``softmax(logits, T, dim)``;
* :data:`softmax_jacobian`: ∂softmax(z)/∂z = diag(p) − p pᵀ of one row of logits;
* :data:`scaled_attention`: softmax(QKᵀ/√d) V with an optional causal mask;
* :data:`cap_temperature`: a design exercise, the smallest temperature that keeps every row's
  largest attention weight at or below p_max;
* :data:`causal_self_attention`: a debugging exercise, a multi-head causal self-attention with
  three planted bugs (heads split across tokens, √width for √d, the mask filled with 0);
* the concept questions of the notebook's last section (``q04_*``).

Every input is seeded and float64, with shapes chosen so that each typical mistake (wrong
axis, wrong d, mask after the softmax, …) gives an output of its own.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import torch

from helpers import attention as att
from helpers.check.feedback import AUTOGRAD, Exercise, Question, compare, first_line
from helpers.check.inputs import as_number, call

__all__ = ["cap_temperature", "causal_self_attention", "q04_divide_by_d", "q04_saturation_scale", "q04_small_head",
           "q04_std_of_scores", "scaled_attention", "softmax", "softmax_jacobian"]

_ATOL = 1e-6

#: The library softmaxes: the softmax exercise forbids them (log_softmax(...).exp() too).
_SOFTMAX_CALLS = ("torch.softmax", "torch.Tensor.softmax", "torch.nn.functional.softmax", "torch.special.softmax",
                  "torch.log_softmax", "torch.Tensor.log_softmax", "torch.nn.functional.log_softmax",
                  "torch.special.log_softmax")
#: The library attentions: the attention exercises forbid them (nn.MultiheadAttention calls the second).
_ATTENTION_CALLS = ("torch.nn.functional.scaled_dot_product_attention",
                    "torch.nn.functional.multi_head_attention_forward")


# -- softmax ---------------------------------------------------------------------------------
def _naive(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    e = torch.exp(z)
    return e / e.sum(dim=dim, keepdim=True)


def _diagnose_softmax(student: Callable[..., Any]) -> str | None:
    g = torch.Generator().manual_seed(0)
    x = 2 * torch.randn(3, 5, generator=g, dtype=torch.float64)  # 3 rows of 5 logits: axes differ

    # 1. the plain softmax over the last dimension (no temperature, no dim given)
    expected = att.stable_softmax(x)
    try:
        out, changed = call(student, (x,))
    except NotImplementedError:
        raise
    except RuntimeError as error:
        if "must match the size" not in str(error):
            raise
        return (f"shapes do not broadcast ({first_line(error)}): keep the reduced dim, "
                "z.amax(dim=dim, keepdim=True) and e.sum(dim=dim, keepdim=True).")
    if changed:
        return changed
    problem = compare("softmax(x)", out, expected, {
        "normalised over dim 0 (down the columns) instead of the last dim: each row "
        "(one query's keys) must sum to 1.": att.stable_softmax(x, dim=0),
        "normalised over every entry of the tensor at once: each row along dim must sum to 1 "
        "(e.sum(dim=dim, keepdim=True)).": torch.exp(x) / torch.exp(x).sum(),
        "exp(x) is not divided by its sum along dim.": torch.exp(x),
        "returned log-probabilities (log_softmax), not probabilities.": torch.log_softmax(x, dim=-1),
        "divided x by its sum instead of exp(x) by the sum of exp(x).": x / x.sum(dim=-1, keepdim=True),
    }, atol=_ATOL)
    if problem:
        return problem

    # 2. the temperature: T = 2.5 must flatten the rows
    t = 2.5
    expected = att.stable_softmax(x, temperature=t)
    out, changed = call(student, (x,), {"temperature": t})
    if changed:
        return changed
    problem = compare("softmax(x, temperature=2.5)", out, expected, {
        "temperature multiplied instead of divided: softmax(x / T), so that T > 1 flattens "
        "the row (you computed softmax(x · T)).": att.stable_softmax(x * t),
        "temperature ignored: the output should be softmax(x / T).": att.stable_softmax(x),
        "temperature applied after the softmax: divide the logits by T, then take the softmax.":
            att.stable_softmax(x) / t,
        "temperature applied as a power p^T: divide the logits by T instead.":
            att.stable_softmax(x) ** t,
    }, atol=_ATOL)
    if problem:
        return problem

    # 3. the dim argument: dim=0 makes the columns sum to 1
    expected = att.stable_softmax(x, dim=0)
    out, changed = call(student, (x,), {"dim": 0})
    if changed:
        return changed
    problem = compare("softmax(x, dim=0)", out, expected, {
        "the dim argument is ignored (always the last dim): use it in max, exp-sum and keepdim.":
            att.stable_softmax(x),
    }, atol=_ATOL)
    if problem:
        return problem

    # 4. large logits: row 0 near +1000 (exp overflows), row 1 near −1000 (exp underflows)
    big = torch.stack([1000 + x[0], -1000 + x[1]])
    out, changed = call(student, (big,))
    if changed:
        return changed
    if isinstance(out, torch.Tensor) and tuple(out.shape) == tuple(big.shape):
        bad = ~torch.isfinite(out)
        if bool(bad[0].any()) and bool(bad[1].any()):
            return ("overflow: with logits near ±1000, exp gives inf (or 0) and inf/inf = nan; "
                    "subtract each row's max before exp (z − z.amax(dim, keepdim=True)).")
        if bool(bad[0].any()):
            return ("overflow: with logits near 1000, exp(1000) = inf and inf/inf = nan; "
                    "subtract each row's max before exp.")
        if bool(bad[1].any()):
            return ("one max for the whole tensor: a row near −1000 underflows to 0/0 = nan when "
                    "the max of another row (near +1000) is subtracted; use z.amax(dim, keepdim=True).")
    problem = compare("softmax of logits near ±1000", out, att.stable_softmax(big), {}, atol=_ATOL)
    if problem:
        return problem

    # 5. rows spread wide: only the max keeps every exponent ≤ 0 (see _WIDE_ROWS)
    out, changed = call(student, (_WIDE_ROWS,))
    if changed:
        return changed
    if isinstance(out, torch.Tensor) and tuple(out.shape) == tuple(_WIDE_ROWS.shape):
        overflowed = tuple(bool(row.any()) for row in ~torch.isfinite(out))
        if any(overflowed):
            centre = _SHIFTS.get(overflowed)
            if centre is not None:
                return _SHIFT_MISTAKE.format(centre=centre)
            return ("overflow on rows spread wide, like [0, 800, −800]: exp(z) is inf beyond z ≈ 709; subtract "
                    "each row's max, z.amax(dim, keepdim=True), so that the largest exponent is exp(0) = 1.")
    return compare("softmax of rows spread wide, like [0, 800, −800]", out, att.stable_softmax(_WIDE_ROWS), {},
                   atol=_ATOL)


#: Rows whose spread is wider than exp's range (exp(z) = inf for z > 709.8): subtracting the max
#: keeps every exponent ≤ 0, subtracting another centre overflows in its own set of rows.
_WIDE_ROWS = torch.tensor([[800.0, 0.0, -800.0, 0.0, 0.0],       # min, mean and median all overflow
                           [-800.0, 0.0, 10.0, 5.0, -5.0],       # only the min (z − min reaches 810)
                           [720.0, 0.0, -800.0, 0.0, 720.0]],    # the min and the median (0), not the mean (128)
                          dtype=torch.float64)
#: Which rows overflow -> the centre subtracted instead of the max.
_SHIFTS: dict[tuple[bool, ...], str] = {
    (True, True, True): "min", (True, False, False): "mean", (True, False, True): "median"}
_SHIFT_MISTAKE = ("subtracts the row {centre}, not the max: exp of a large positive still overflows for rows "
                  "like [0, 800, −800] (exp(z) is inf beyond z ≈ 709); subtract z.amax(dim, keepdim=True), "
                  "so that the largest exponent is exp(0) = 1.")


softmax = Exercise(
    name="softmax",
    checked="rows sum to 1 along dim, softmax(x / T) for T = 2.5, and no overflow at logits ±1000.",
    reference=att.stable_softmax,
    diagnose=_diagnose_softmax,
    forbidden=_SOFTMAX_CALLS,
)


# -- the softmax Jacobian --------------------------------------------------------------------
def _diagnose_softmax_jacobian(student: Callable[..., Any]) -> str | None:
    g = torch.Generator().manual_seed(1)
    z = 1.5 * torch.randn(5, generator=g, dtype=torch.float64)
    # the truth from autograd, not from the closed form the student is asked for
    expected = torch.autograd.functional.jacobian(lambda u: torch.softmax(u, dim=0), z)
    p = torch.softmax(z, dim=0)
    out, changed = call(student, (z,))
    if changed:
        return changed
    if isinstance(out, torch.Tensor) and tuple(out.shape) == (5,):
        return ("returned a vector of shape (5,): the Jacobian of 5 outputs with respect to 5 "
                "logits is a 5×5 matrix, J[i, j] = ∂p_i/∂z_j.")
    return compare("the Jacobian", out, expected, {
        "sign flipped: J = diag(p) − p pᵀ (you computed p pᵀ − diag(p)).": torch.outer(p, p) - torch.diag(p),
        "missing the − p pᵀ term: J = diag(p) − p pᵀ (you returned diag(p)).": torch.diag(p),
        "missing the diag(p) term: J = diag(p) − p pᵀ (you returned −p pᵀ).": -torch.outer(p, p),
        "only the diagonal p_i(1 − p_i): the off-diagonal entries are −p_i p_j.": torch.diag(p * (1 - p)),
        "used the logits z instead of the probabilities p = softmax(z): J = diag(p) − p pᵀ.":
            torch.diag(z) - torch.outer(z, z),
    }, atol=_ATOL)


softmax_jacobian = Exercise(
    name="softmax_jacobian",
    checked="equals autograd's Jacobian of softmax for a row of 5 logits.",
    reference=att.softmax_jacobian,
    diagnose=_diagnose_softmax_jacobian,
    forbidden=AUTOGRAD,  # p may come from any softmax: the derivative is the exercise
)


# -- scaled dot-product attention ------------------------------------------------------------
def _attention_mistakes(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> dict[str, torch.Tensor]:
    """message -> the output of a typical mistake, for unmasked q [n_q, d], k [n_k, d], v [n_k, d_v]."""
    n_q, d = q.shape
    n_k, d_v = v.shape
    s = q @ k.T

    def out(scores: torch.Tensor, dim: int = -1) -> torch.Tensor:
        return torch.softmax(scores, dim=dim) @ v

    return {
        f"forgot the 1/√d: the scores are QKᵀ/√d (here d = {d}), not QKᵀ.": out(s),
        f"divided by d instead of √d (here d = {d}): the scores are QKᵀ/√d.": out(s / d),
        f"softmax over the queries (dim -2) instead of the keys (dim -1): each query's row of "
        f"{n_k} weights must sum to 1.": out(s / math.sqrt(d), dim=0),
        f"wrong d: divided by √{n_k} (the number of keys); d is the last dimension of q and k "
        f"(here {d}).": out(s / math.sqrt(n_k)),
        f"wrong d: divided by √{n_q} (the number of queries); d is the last dimension of q and k "
        f"(here {d}).": out(s / math.sqrt(n_q)),
        f"wrong d: divided by √{d_v} (the width of v); d is the last dimension of q and k "
        f"(here {d}).": out(s / math.sqrt(d_v)),
        "multiplied by √d instead of dividing: the scores are QKᵀ/√d.": out(s * math.sqrt(d)),
    }


def _diagnose_attention(student: Callable[..., Any]) -> str | None:
    g = torch.Generator().manual_seed(0)
    # all different, and √d = √6 is none of the other sizes, so every mix-up changes a shape or a value
    n_q, n_k, d, d_v = 3, 5, 6, 2
    q = 1.5 * torch.randn(n_q, d, generator=g, dtype=torch.float64)
    k = 1.5 * torch.randn(n_k, d, generator=g, dtype=torch.float64)
    v = torch.randn(n_k, d_v, generator=g, dtype=torch.float64)

    # 1. no mask, n_q ≠ n_k ≠ d ≠ d_v
    try:
        out, changed = call(student, (q, k, v))
    except NotImplementedError:
        raise
    except RuntimeError as error:
        return (f"your function raised RuntimeError ({first_line(error)}) for q {list(q.shape)}, "
                f"k {list(k.shape)}: the scores are Q Kᵀ ([{n_q}, {d}] @ [{d}, {n_k}]); was K transposed?")
    if changed:
        return changed
    if isinstance(out, torch.Tensor) and tuple(out.shape) == (n_q, n_k):
        return (f"returned the attention weights [{n_q}, {n_k}]: the output is those weights "
                f"times V, of shape [{n_q}, {d_v}].")
    problem = compare("scaled_attention(q, k, v)", out, att.manual_attention(q, k, v),
                      _attention_mistakes(q, k, v), atol=_ATOL)
    if problem:
        return problem

    # 2. a batch of 2 sequences (the shape attention has in a model: [..., tokens, d])
    qb, kb, vb = (torch.stack([t, t.flip(0)]) for t in (q, k, v))
    try:
        out, changed = call(student, (qb, kb, vb))
    except NotImplementedError:
        raise
    except Exception as error:  # k.T on a 3-D tensor reverses every dim
        return (f"fails on a batch of shape {list(qb.shape)} ({type(error).__name__}: "
                f"{first_line(error)}): transpose the last two dims, k.transpose(-2, -1), not k.T.")
    if changed:
        return changed
    problem = compare(f"scaled_attention on a batch {list(qb.shape)}", out, att.manual_attention(qb, kb, vb), {},
                      atol=_ATOL)
    if problem:
        return problem + " Transpose only the last two dims of k and normalise over the last dim."

    # 3. the causal mask: self-attention over 4 tokens, key j > query i hidden
    n = 4
    x = 1.5 * torch.randn(3, n, d, generator=g, dtype=torch.float64)
    qc, kc, vc = x[0], x[1], x[2, :, :d_v]
    s = qc @ kc.T / math.sqrt(d)
    future = torch.ones(n, n, dtype=torch.bool).triu(diagonal=1)
    past = torch.ones(n, n, dtype=torch.bool).tril(diagonal=-1)
    out, changed = call(student, (qc, kc, vc), {"causal": True})
    if changed:
        return changed
    if isinstance(out, torch.Tensor) and tuple(out.shape) == (n, d_v) and bool(torch.isnan(out).any()):
        return ("NaN with causal=True: a row whose keys are all masked has softmax(−inf, …, −inf) = nan; "
                "hide only keys j > i (triu(diagonal=1)), each token sees itself.")
    return compare("scaled_attention(q, k, v, causal=True)", out, att.manual_attention(qc, kc, vc, causal=True), {
        "causal=True has no effect: hide the keys j > i (the future) before the softmax.":
            torch.softmax(s, dim=-1) @ vc,
        "mask applied after the softmax: the hidden weights are set to 0 but the rows no longer "
        "sum to 1; fill the scores with −inf before the softmax.":
            torch.softmax(s, dim=-1).masked_fill(future, 0.0) @ vc,
        "masked with 0 instead of −inf: a score of 0 still gets weight e⁰ = 1 in the softmax; "
        "fill the hidden scores with float('-inf').":
            torch.softmax(s.masked_fill(future, 0.0), dim=-1) @ vc,
        "masked the past instead of the future: token i may see keys j ≤ i, so hide j > i "
        "(triu(diagonal=1)), not j < i.":
            torch.softmax(s.masked_fill(past, float("-inf")), dim=-1) @ vc,
    }, atol=_ATOL)


scaled_attention = Exercise(
    name="scaled_attention",
    checked="softmax(QKᵀ/√d)V over the keys, for 3 queries and 5 keys, a batch, and a causal mask.",
    reference=att.manual_attention,
    diagnose=_diagnose_attention,
    forbidden=_ATTENTION_CALLS,  # the softmax inside may be the student's or torch's
)


# -- debugging: a causal multi-head self-attention with three planted bugs ------------------------
#: Where each part of the attention can go wrong: part -> {variant: what is wrong with it}; the
#: first variant of each part is the right one. The notebook's given function has the variants
#: "mixed", "width" and "zero".
_SELF_ATTENTION_BUGS: dict[str, dict[str, str]] = {
    "split": {
        "right": "",
        "mixed": "the heads are split with reshape(batch, heads, n, d), which deals the numbers of "
                 "different tokens into one head (future tokens leak into the past): reshape to "
                 "(batch, n, heads, d), then move the heads before the tokens with transpose(1, 2).",
        "one_head": "n_heads is ignored: the width is split into n_heads heads of size d = width // n_heads, "
                    "each with its own softmax.",
    },
    "scale": {
        "right": "",
        "width": "the scores are divided by √width; each head's dot products have d = width // n_heads "
                 "terms, so divide by √d of a head.",
        "d": "the scores are divided by the head size d, not by √d.",
        "none": "the scores are not scaled at all: divide by √d of a head.",
    },
    "mask": {
        "right": "",
        "zero": "the future scores are set to 0 before the softmax: a score of 0 still gets weight e⁰ = 1, "
                "so the future leaks in; fill them with float('-inf').",
        "after": "the mask is applied after the softmax: the hidden weights become 0 but the rows no longer "
                 "sum to 1; fill the scores with −inf before the softmax.",
        "none": "no causal mask: query i must not see the keys j > i.",
    },
}


def self_attention_variant(x: torch.Tensor, w_q: torch.Tensor, w_k: torch.Tensor, w_v: torch.Tensor,
                           n_heads: int, split: str = "right", scale: str = "right",
                           mask: str = "right") -> torch.Tensor:
    """Causal multi-head self-attention with the given variant of each part (see _SELF_ATTENTION_BUGS).

    x is [batch, n, width], each w [width, width]; the result is [batch, n, width]. With the
    default (right) variants this is the answer of the debugging exercise of notebook 04.
    """
    batch, n, width = x.shape
    heads = 1 if split == "one_head" else n_heads
    d = width // heads

    def part(t: torch.Tensor) -> torch.Tensor:
        if split == "mixed":
            return t.reshape(batch, heads, n, d)
        return t.reshape(batch, n, heads, d).transpose(1, 2)

    q, k, v = part(x @ w_q), part(x @ w_k), part(x @ w_v)
    scores = q @ k.transpose(-2, -1)
    scores = scores / {"right": math.sqrt(d), "width": math.sqrt(width), "d": d, "none": 1.0}[scale]
    future = torch.ones(n, n, dtype=torch.bool).triu(diagonal=1)
    if mask in ("right", "zero"):
        scores = scores.masked_fill(future, float("-inf") if mask == "right" else 0.0)
    weights = att.stable_softmax(scores, dim=-1)
    if mask == "after":
        weights = weights.masked_fill(future, 0.0)
    return (weights @ v).transpose(1, 2).reshape(batch, n, width)


def _self_attention_inputs(width: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 5, width, generator=g, dtype=torch.float64)
    w_q, w_k, w_v = (2 * torch.randn(width, width, generator=g, dtype=torch.float64) / math.sqrt(width)
                     for _ in range(3))
    return x, w_q, w_k, w_v


def _remaining(bugs: dict[str, str]) -> str:
    wrong = [_SELF_ATTENTION_BUGS[part][variant] for part, variant in bugs.items() if variant != "right"]
    if len(wrong) == 1:
        return f"one bug remains: {wrong[0]}"
    return f"{len(wrong)} bugs remain; one of them: {wrong[0]}"


def _diagnose_self_attention(student: Callable[..., Any]) -> str | None:
    # 2 sequences of 5 tokens, width 6: 2 heads of size 3 (√6 ≠ √3 ≠ 3), then 3 heads of size 2
    for n_heads, seed in ((2, 0), (3, 1)):
        x, w_q, w_k, w_v = _self_attention_inputs(6, seed)
        out, changed = call(student, (x, w_q, w_k, w_v, n_heads), names=("x", "w_q", "w_k", "w_v", "n_heads"))
        if changed:
            return changed
        expected = self_attention_variant(x, w_q, w_k, w_v, n_heads)
        mistakes = []
        for split, scale, mask in itertools.product(*(list(v) for v in _SELF_ATTENTION_BUGS.values())):
            bugs = {"split": split, "scale": scale, "mask": mask}
            if set(bugs.values()) != {"right"}:
                mistakes.append((_remaining(bugs), self_attention_variant(x, w_q, w_k, w_v, n_heads, **bugs)))
        problem = compare(f"the output (n_heads = {n_heads})", out, expected, mistakes, atol=_ATOL)
        if problem:
            if "differs from the right answer" in problem:
                problem += (" Probe your function as the notebook does: does an earlier output change when "
                            "a later token changes? Does it agree with n_heads = 1 when the width is one head?")
            return problem
    return None


causal_self_attention = Exercise(
    name="causal_self_attention",
    checked="the given layer's bugs are fixed: causal multi-head self-attention for 2 and 3 heads of a width of 6.",
    reference=self_attention_variant,
    diagnose=_diagnose_self_attention,
    forbidden=_ATTENTION_CALLS,
)


# -- concept questions ------------------------------------------------------------------------------
q04_std_of_scores = Question(
    name="q04_std_of_scores",
    answer=8.0,
    why="Var(qᵢkᵢ) = σ_q²σ_k², and the d terms add up: std(q·k) = σ_qσ_k√d = 2 · 0.5 · 8 = 8, as for unit "
        "variances, because only the product σ_qσ_k matters.",
    rel_tol=0.05,
)

q04_divide_by_d = Question(
    name="q04_divide_by_d",
    answer="b",
    why="QKᵀ/d has std √d/d = 1/√d → 0: the logits shrink together and every row tends to the uniform "
        "distribution, so attention cannot prefer any key.",
    choices={
        "a": "one-hot rows need logits that spread wider as d grows; QKᵀ/d spreads less and less (std 1/√d).",
        "b": "",
        "c": "the entropy does change with d: QKᵀ/d has std 1/√d, which shrinks as d grows.",
    },
)

q04_saturation_scale = Question(
    name="q04_saturation_scale",
    answer=23.1,
    why="the median row's gradient first falls below 1% of its peak between the grid points 17.8 and 23.7 "
        "(interpolated ≈ 23.1): the spread unscaled attention reaches at d = s² of about 540.",
    rel_tol=0.06,
)

q04_small_head = Question(
    name="q04_small_head",
    answer="b",
    why="unscaled d = 16 starts at s ≈ 0.5·√16 = 2, near the peak of the gradient curve rather than past it; "
        "the study finds the scaled and unscaled medians within 0.05 nats at every learning rate.",
    choices={
        "a": "at d = 16 unscaled attention starts at s ≈ 2, near the peak of the gradient curve, not on its "
             "falling side: look at the last claim of section 5.",
        "b": "",
        "c": "nothing in the study shows unscaled attention ahead at d = 16: the medians agree within 0.05 nats.",
    },
)


# -- a design exercise: the temperature that caps the largest attention weight ---------------------
def _largest_weight(scores: torch.Tensor, temperature: float, dim: int = -1) -> float:
    """The largest entry of softmax(scores / temperature) along ``dim``, over every row."""
    return float(att.stable_softmax(scores, temperature=temperature, dim=dim).amax())


def cap_temperature_reference(scores: torch.Tensor, p_max: float) -> float:
    """The smallest T > 0 such that no row of softmax(scores / T) (along the last dim) has a weight above p_max.

    The largest weight of a row falls as T grows (towards 1/n), so the smallest T is found by
    bisection on log T, after bracketing it by halving and doubling.

    Raises:
        ValueError: if p_max is not in (1/n, 1), n the number of keys (the last dim of scores).
    """
    n = scores.shape[-1]
    if not 1 / n < p_max < 1:
        raise ValueError(f"p_max must be between 1/n = 1/{n} and 1 (exclusive): no temperature gets every "
                         f"weight below {p_max}" if p_max <= 1 / n else f"p_max must be below 1, got {p_max}")
    lo, hi = 1.0, 1.0
    while _largest_weight(scores, hi) > p_max:
        hi *= 2
    while _largest_weight(scores, lo) <= p_max and lo > 1e-12:
        lo /= 2
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        if _largest_weight(scores, mid) > p_max:
            lo = mid
        else:
            hi = mid
    return hi


def _cap_inputs() -> torch.Tensor:
    g = torch.Generator().manual_seed(4)
    # 4 rows of 8 keys with very different spreads: the sharpest row, not the average one, sets T
    return torch.randn(4, 8, generator=g, dtype=torch.float64) * torch.tensor([[1.0], [3.0], [12.0], [0.5]],
                                                                              dtype=torch.float64)


def _cap_mean_row(scores: torch.Tensor, p_max: float) -> float:
    """The T at which the MEAN of the rows' largest weights is p_max (a typical mistake)."""
    lo, hi = 1e-6, 1e6
    for _ in range(80):
        mid = math.sqrt(lo * hi)
        if float(att.stable_softmax(scores, temperature=mid).amax(dim=-1).mean()) > p_max:
            lo = mid
        else:
            hi = mid
    return hi


def _diagnose_cap_temperature(student: Callable[..., Any]) -> str | None:
    scores = _cap_inputs()
    n = scores.shape[-1]
    for p_max in (0.5, 0.2):
        out, changed = call(student, (scores, p_max), names=("scores", "p_max"))
        if changed:
            return changed
        value = as_number(out)
        if value is None and isinstance(out, torch.Tensor):
            return (f"returned a tensor of shape {tuple(out.shape)}: one temperature for all the rows is asked for, "
                    f"the smallest that caps every row (a number).")
        if value is None or not math.isfinite(value) or value <= 0:
            return f"return a positive number, the temperature T; got {out!r}."
        out = value
        expected = cap_temperature_reference(scores, p_max)
        if math.isclose(out, expected, rel_tol=1e-3):
            continue
        reached = _largest_weight(scores, out)
        if math.isclose(out, 1 / expected, rel_tol=1e-3):
            return ("you returned 1/T: the temperature divides the scores, softmax(scores / T), so a larger T "
                    "flattens the rows.")
        if math.isclose(out, _cap_mean_row(scores, p_max), rel_tol=1e-3):
            return (f"your T caps the mean of the rows' largest weights at {p_max}, but the sharpest row still has "
                    f"{reached:.2f}: every row must stay below p_max, so the sharpest row sets T.")
        if math.isclose(out, cap_temperature_reference(scores.T, p_max) if 1 / scores.shape[0] < p_max else -1,
                        rel_tol=1e-3):
            return "capped the weights along dim 0: each query's row of keys is the last dim."
        if reached > p_max + 1e-9:
            return (f"too small: at T = {out:.4g} a row still gives one key the weight {reached:.4f} > p_max = "
                    f"{p_max} (the smallest T that caps every row is larger).")
        return (f"T = {out:.4g} caps every row, but it is not the smallest such T: at a T 0.1 % smaller the "
                f"largest weight would still be at most {p_max}; search until the bracket is that tight.")
    # p_max at or below 1/n cannot be reached: even T → ∞ gives every key 1/n
    try:
        out = student(scores.clone(), 1 / n)
    except ValueError:
        return None
    return (f"p_max = 1/n = 1/{n} returned {out!r}: no temperature gets every weight below 1/n (T → ∞ gives exactly "
            f"1/n); raise a ValueError that says so.")


cap_temperature = Exercise(
    name="cap_temperature",
    checked="the smallest T that keeps every row's largest weight at p_max (0.5 and 0.2, to 0.1 %), on rows of "
            "very different spreads, and a ValueError for p_max = 1/n.",
    reference=cap_temperature_reference,
    diagnose=_diagnose_cap_temperature,
)
