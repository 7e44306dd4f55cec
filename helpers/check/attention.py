"""Exercises of notebook 04 (Attention scaling): the softmax, its Jacobian and attention by hand.

* :data:`softmax`: a numerically stable softmax with a temperature, ``softmax(logits, T, dim)``;
* :data:`softmax_jacobian`: ∂softmax(z)/∂z = diag(p) − p pᵀ of one row of logits;
* :data:`scaled_attention`: softmax(QKᵀ/√d) V with an optional causal mask.

Every input is seeded and float64, with shapes chosen so that each typical mistake (wrong
axis, wrong d, mask after the softmax, …) gives an output of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from helpers import attention as att
from helpers.check.feedback import Exercise, compare, first_line
from helpers.check.inputs import call

__all__ = ["scaled_attention", "softmax", "softmax_jacobian"]

_ATOL = 1e-6


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
)
