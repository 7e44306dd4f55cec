"""Notebook 04's build-it-yourself exercises (helpers.check.attention) and their references."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import nbformat
import pytest
import torch
from torch.nn import functional as F

from helpers import attention as att
from helpers import check
from helpers.attention import manual_attention, softmax_jacobian, stable_softmax

ex = importlib.import_module("helpers.check.attention")  # the module (check.<name> are the exercises)


def _stub(*args, **kwargs):
    raise NotImplementedError()


def _message(exercise, fn) -> str:
    result = exercise.feedback(fn)
    assert not result.passed and result.written
    return result.message


def test_the_exercises_are_exported():
    assert {"scaled_attention", "softmax", "softmax_jacobian"} <= set(ex.__all__)
    assert check.scaled_attention is ex.scaled_attention and check.softmax is ex.softmax
    assert check.softmax_jacobian is ex.softmax_jacobian


# -- stable_softmax (the reference) ------------------------------------------------------------
def test_stable_softmax_matches_torch_on_every_axis_and_temperature():
    x = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for dim in (0, 1, -1):
        for t in (0.5, 1.0, 3.0):
            torch.testing.assert_close(stable_softmax(x, t, dim), torch.softmax(x / t, dim=dim))


def test_stable_softmax_survives_logits_of_plus_minus_1000():
    x = torch.tensor([[1000.0, 999.0, 998.0], [-1000.0, -1001.0, -1002.0]], dtype=torch.float64)
    naive = torch.exp(x) / torch.exp(x).sum(dim=-1, keepdim=True)
    assert torch.isnan(naive).all()  # the failure the stable version avoids
    out = stable_softmax(x)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0], out[1])
    torch.testing.assert_close(out.sum(dim=-1), torch.ones(2, dtype=torch.float64))


def test_stable_softmax_temperature_flattens_and_sharpens():
    x = torch.tensor([2.0, 1.0, 0.0])
    assert stable_softmax(x, 10.0).max() < stable_softmax(x).max() < stable_softmax(x, 0.1).max()


def test_stable_softmax_rejects_bad_arguments():
    with pytest.raises(TypeError, match="logits"):
        stable_softmax([1.0, 2.0])
    with pytest.raises(TypeError, match="logits"):
        stable_softmax(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="temperature"):
        stable_softmax(torch.zeros(3), temperature=0.0)
    with pytest.raises(TypeError, match="temperature"):
        stable_softmax(torch.zeros(3), temperature="hot")
    with pytest.raises(TypeError, match="dim"):
        stable_softmax(torch.zeros(3), dim=1.0)
    with pytest.raises(ValueError, match="dim"):
        stable_softmax(torch.zeros(2, 3), dim=2)


# -- softmax -----------------------------------------------------------------------------------
def test_softmax_reference_and_a_written_answer_pass():
    assert ex.softmax.feedback(stable_softmax).passed

    def mine(logits, temperature=1.0, dim=-1):
        z = logits / temperature
        e = (z - z.max(dim=dim, keepdim=True).values).exp()
        return e / e.sum(dim=dim, keepdim=True)

    assert ex.softmax.feedback(mine).passed


def test_softmax_over_the_wrong_axis_is_named():
    assert "dim 0" in _message(ex.softmax, lambda x, temperature=1.0, dim=-1: stable_softmax(x, temperature, 0))


def test_softmax_temperature_multiplied_is_named():
    def wrong(x, temperature=1.0, dim=-1):
        return stable_softmax(x * temperature, 1.0, dim)

    assert "temperature multiplied instead of divided" in _message(ex.softmax, wrong)


def test_softmax_temperature_ignored_is_named():
    assert "temperature ignored" in _message(ex.softmax, lambda x, temperature=1.0, dim=-1: stable_softmax(x, 1.0, dim))


def test_softmax_ignoring_dim_is_named():
    assert "dim argument is ignored" in _message(
        ex.softmax, lambda x, temperature=1.0, dim=-1: stable_softmax(x, temperature))


def test_softmax_overflow_is_named():
    def naive(x, temperature=1.0, dim=-1):
        e = torch.exp(x / temperature)
        return e / e.sum(dim=dim, keepdim=True)

    assert "overflow" in _message(ex.softmax, naive)


def _shifted_softmax(centre):
    """A softmax that subtracts ``centre(z, dim)`` (keepdim) from the logits before exp."""
    def fn(x, temperature=1.0, dim=-1):
        z = x / temperature
        e = torch.exp(z - centre(z, dim))
        return e / e.sum(dim=dim, keepdim=True)
    return fn


@pytest.mark.parametrize("centre, words", [
    (lambda z, dim: z.amin(dim=dim, keepdim=True), "subtracts the row min, not the max"),
    (lambda z, dim: z.min(dim=dim, keepdim=True).values, "subtracts the row min, not the max"),
    (lambda z, dim: z.mean(dim=dim, keepdim=True), "subtracts the row mean, not the max"),
    (lambda z, dim: z.median(dim=dim, keepdim=True).values, "subtracts the row median, not the max"),
    (lambda z, dim: z.quantile(0.5, dim=dim, keepdim=True), "subtracts the row median, not the max"),
    (lambda z, dim: z.narrow(dim, 0, 1), "overflow on rows spread wide, like [0, 800, −800]"),
])
def test_softmax_subtracting_another_centre_than_the_max_is_named(centre, words):
    # each passes rows near ±1000 (their spread is small) but overflows on [0, 800, −800]
    message = _message(ex.softmax, _shifted_softmax(centre))
    assert words in message, message
    if words.startswith("subtracts"):
        assert "exp of a large positive still overflows for rows like [0, 800, −800]" in message, message


def test_softmax_stable_variants_pass():
    assert ex.softmax.feedback(_shifted_softmax(lambda z, dim: z.max(dim=dim, keepdim=True).values)).passed
    assert ex.softmax.feedback(_shifted_softmax(lambda z, dim: torch.logsumexp(z, dim=dim, keepdim=True))).passed
    assert ex.softmax.feedback(lambda x, temperature=1.0, dim=-1: torch.softmax(x / temperature, dim=dim)).passed


def test_softmax_one_max_for_the_whole_tensor_is_named():
    def global_max(x, temperature=1.0, dim=-1):
        z = x / temperature
        e = torch.exp(z - z.max())
        return e / e.sum(dim=dim, keepdim=True)

    assert "one max for the whole tensor" in _message(ex.softmax, global_max)


def test_softmax_without_keepdim_is_named():
    def no_keepdim(x, temperature=1.0, dim=-1):
        z = x / temperature
        e = torch.exp(z - z.amax(dim=dim))
        return e / e.sum(dim=dim)

    assert "keepdim=True" in _message(ex.softmax, no_keepdim)


def test_softmax_log_probabilities_are_named():
    assert "log_softmax" in _message(
        ex.softmax, lambda x, temperature=1.0, dim=-1: torch.log_softmax(x / temperature, dim))


def test_softmax_an_exception_and_the_stub():
    def broken(x, temperature=1.0, dim=-1):
        return {}["oops"]

    assert "raised KeyError" in _message(ex.softmax, broken)
    assert ex.softmax.feedback(_stub).written is False


# -- softmax_jacobian ----------------------------------------------------------------------------
def test_softmax_jacobian_reference_passes():
    assert ex.softmax_jacobian.feedback(softmax_jacobian).passed


@pytest.mark.parametrize("wrong, words", [
    (lambda z: torch.outer(torch.softmax(z, 0), torch.softmax(z, 0)) - torch.diag(torch.softmax(z, 0)), "sign flipped"),
    (lambda z: torch.diag(torch.softmax(z, 0)), "missing the − p pᵀ term"),
    (lambda z: -torch.outer(torch.softmax(z, 0), torch.softmax(z, 0)), "missing the diag(p) term"),
    (lambda z: torch.diag(torch.softmax(z, 0) * (1 - torch.softmax(z, 0))), "only the diagonal"),
    (lambda z: torch.diag(z) - torch.outer(z, z), "logits z instead of the probabilities"),
    (lambda z: torch.softmax(z, 0) * (1 - torch.softmax(z, 0)), "5×5 matrix"),
])
def test_softmax_jacobian_mistakes_are_named(wrong, words):
    assert words in _message(ex.softmax_jacobian, wrong)


def test_softmax_jacobian_an_exception_and_the_stub():
    assert "raised RuntimeError" in _message(ex.softmax_jacobian, lambda z: torch.diag(z.reshape(1, 1, 5, 1)))
    assert ex.softmax_jacobian.feedback(_stub).written is False


# -- attention -----------------------------------------------------------------------------------
def _attn(scale=None, dim=-1, mask=None, fill=float("-inf"), transpose=lambda k: k.transpose(-2, -1),
          weights_only=False):
    """An attention with one configurable mistake (the defaults give the right answer)."""

    def fn(q, k, v, causal=False):
        s = q @ transpose(k) / (math.sqrt(q.shape[-1]) if scale is None else scale(q, k, v))
        n_q, n_k = s.shape[-2], s.shape[-1]
        hide = torch.ones(n_q, n_k, dtype=torch.bool).triu(1) if mask is None else mask(n_q, n_k)
        if causal:
            s = s.masked_fill(hide, fill)
        p = torch.softmax(s, dim=dim)
        return p if weights_only else p @ v

    return fn


def test_attention_reference_and_pytorch_pass():
    assert ex.scaled_attention.feedback(manual_attention).passed
    assert ex.scaled_attention.feedback(_attn()).passed
    assert ex.scaled_attention.feedback(
        lambda q, k, v, causal=False: F.scaled_dot_product_attention(q, k, v, is_causal=causal)).passed


@pytest.mark.filterwarnings("ignore:The use of `x.T`")
@pytest.mark.parametrize("wrong, words", [
    (_attn(scale=lambda q, k, v: 1.0), "forgot the 1/√d"),
    (_attn(scale=lambda q, k, v: q.shape[-1]), "divided by d instead of √d"),
    (_attn(dim=-2), "softmax over the queries"),
    (_attn(scale=lambda q, k, v: math.sqrt(k.shape[-2])), "the number of keys"),
    (_attn(scale=lambda q, k, v: math.sqrt(q.shape[-2])), "the number of queries"),
    (_attn(scale=lambda q, k, v: math.sqrt(v.shape[-1])), "the width of v"),
    (_attn(scale=lambda q, k, v: v.shape[-1]), "differs from the right answer"),
    (_attn(scale=lambda q, k, v: 1 / math.sqrt(q.shape[-1])), "multiplied by √d instead of dividing"),
    (_attn(transpose=lambda k: k), "was K transposed"),
    (_attn(transpose=lambda k: k.T), "k.transpose(-2, -1), not k.T"),
    (_attn(weights_only=True), "returned the attention weights"),
    (_attn(fill=0.0), "masked with 0 instead of −inf"),
    (_attn(mask=lambda n_q, n_k: torch.ones(n_q, n_k, dtype=torch.bool).triu(0)), "hide only keys j > i"),
    (_attn(mask=lambda n_q, n_k: torch.ones(n_q, n_k, dtype=torch.bool).tril(-1)), "masked the past"),
    (lambda q, k, v, causal=False: manual_attention(q, k, v), "causal=True has no effect"),
])
def test_attention_mistakes_are_named(wrong, words):
    assert words in _message(ex.scaled_attention, wrong)


def test_attention_mask_after_the_softmax_is_named():
    def after(q, k, v, causal=False):
        p = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
        if causal:
            p = p.masked_fill(torch.ones(p.shape[-2], p.shape[-1], dtype=torch.bool).triu(1), 0.0)
        return p @ v

    assert "mask applied after the softmax" in _message(ex.scaled_attention, after)


def test_attention_mistakes_give_different_outputs():
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(3, 6, generator=g, dtype=torch.float64), torch.randn(5, 6, generator=g, dtype=torch.float64),
               torch.randn(5, 2, generator=g, dtype=torch.float64))
    outputs = [manual_attention(q, k, v), *ex._attention_mistakes(q, k, v).values()]
    for i, a in enumerate(outputs):
        for b in outputs[i + 1:]:
            assert (a - b).abs().max() > 1e-3


def test_attention_an_exception_and_the_stub():
    def broken(q, k, v, causal=False):
        raise ZeroDivisionError("no")

    assert "raised ZeroDivisionError" in _message(ex.scaled_attention, broken)
    assert ex.scaled_attention.feedback(_stub).written is False


# -- forbidden calls: each exercise's shortcut passes in self-study with a note, fails when graded ---
def _softmax_by_log_softmax(x, temperature=1.0, dim=-1):
    return torch.log_softmax(x / temperature, dim=dim).exp()


def _jacobian_by_autograd(z):
    return torch.autograd.functional.jacobian(lambda u: torch.softmax(u, dim=0), z)


def _jacobian_by_backward(z):
    rows = []
    for i in range(z.shape[0]):
        leaf = z.detach().clone().requires_grad_()
        torch.softmax(leaf, dim=0)[i].backward()
        rows.append(leaf.grad)
    return torch.stack(rows)


def _attention_by_module(q, k, v, causal=False):
    """nn.MultiheadAttention with identity projections: F.multi_head_attention_forward underneath."""
    d = q.shape[-1]
    mha = torch.nn.MultiheadAttention(d, 1, bias=False, batch_first=True, dtype=q.dtype)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.eye(d, dtype=q.dtype).repeat(3, 1))
        mha.out_proj.weight.copy_(torch.eye(d, dtype=q.dtype))
    n_q, n_k = q.shape[-2], k.shape[-2]
    mask = torch.ones(n_q, n_k, dtype=torch.bool).triu(1) if causal else None
    batched = q.ndim == 3
    qb, kb, vb = (t if batched else t[None] for t in (q, k, v))
    out = mha(qb, kb, torch.cat([vb, vb.new_zeros(*vb.shape[:-1], d - vb.shape[-1])], dim=-1),
              attn_mask=mask, need_weights=False)[0][..., :v.shape[-1]]
    return out if batched else out[0]


@pytest.mark.parametrize("exercise, shortcut, call", [
    (ex.softmax, lambda x, temperature=1.0, dim=-1: torch.softmax(x / temperature, dim=dim), "torch.softmax"),
    (ex.softmax, lambda x, temperature=1.0, dim=-1: (x / temperature).softmax(dim), "torch.Tensor.softmax"),
    (ex.softmax, lambda x, temperature=1.0, dim=-1: F.softmax(x / temperature, dim=dim),
     "torch.nn.functional.softmax"),
    (ex.softmax, lambda x, temperature=1.0, dim=-1: torch.special.softmax(x / temperature, dim),
     "torch.special.softmax"),
    (ex.softmax, _softmax_by_log_softmax, "torch.log_softmax"),
    (ex.softmax_jacobian, _jacobian_by_autograd, "torch.autograd.functional.jacobian"),
    (ex.softmax_jacobian, _jacobian_by_backward, "torch.Tensor.backward"),
    (ex.scaled_attention, lambda q, k, v, causal=False: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
     "torch.nn.functional.scaled_dot_product_attention"),
    (ex.scaled_attention, _attention_by_module, "torch.nn.functional.multi_head_attention_forward"),
])
def test_a_forbidden_shortcut_passes_with_a_note_and_fails_when_graded(exercise, shortcut, call, monkeypatch):
    result = exercise.feedback(shortcut)
    assert result.passed and call in result.shortcuts, result
    assert f"Correct, but it calls {call}" in str(result)
    exercise.grade(shortcut)  # outside grading: nothing
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(AssertionError, match=f"right, but it calls .*{call}.*which this task forbids"):
        exercise.grade(shortcut)


def test_answers_by_hand_and_the_references_call_nothing_forbidden(monkeypatch):
    def jacobian_from_torch_softmax(z):  # p may come from any softmax: the derivative is the task
        p = torch.softmax(z, dim=0)
        return torch.diag(p) - torch.outer(p, p)

    def jacobian_by_loops(z):
        p = stable_softmax(z, dim=0)
        return torch.stack([torch.stack([p[i] * (float(i == j) - p[j]) for j in range(len(p))]) for i in range(len(p))])

    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    for exercise, answer in ((ex.softmax, stable_softmax), (ex.softmax_jacobian, softmax_jacobian),
                             (ex.softmax_jacobian, jacobian_from_torch_softmax),
                             (ex.softmax_jacobian, jacobian_by_loops), (ex.scaled_attention, manual_attention),
                             (ex.scaled_attention, _attn()),
                             (ex.causal_self_attention, ex.self_attention_variant)):
        result = exercise.feedback(answer)
        assert result.passed and result.shortcuts == (), (exercise.name, result)
        exercise.grade(answer)


# -- the debugging exercise: causal multi-head self-attention --------------------------------------
NOTEBOOK_04 = Path(__file__).resolve().parent.parent / "notebooks" / "04_attention_scaling.ipynb"


def _given_self_attention():
    """The buggy function the notebook gives, executed from its cell (with the course's softmax)."""
    cells = [c for c in nbformat.read(NOTEBOOK_04, as_version=4).cells
             if c.cell_type == "code" and "def given_self_attention(" in c.source]
    assert len(cells) == 1
    namespace = {"math": math, "torch": torch, "softmax": stable_softmax}
    exec(cells[0].source, namespace)
    return namespace["given_self_attention"]


def _fix_by_einsum(x, w_q, w_k, w_v, n_heads):
    batch, n, width = x.shape
    d = width // n_heads
    q, k, v = ((x @ w).view(batch, n, n_heads, d) for w in (w_q, w_k, w_v))
    scores = torch.einsum("bihd,bjhd->bhij", q, k) / d ** 0.5
    scores = torch.where(torch.ones(n, n, dtype=torch.bool).tril(), scores, torch.tensor(float("-inf")))
    weights = stable_softmax(scores, dim=-1)
    return torch.einsum("bhij,bjhd->bihd", weights, v).reshape(batch, n, width)


def _fix_with_scaled_attention(x, w_q, w_k, w_v, n_heads):
    batch, n, width = x.shape
    q, k, v = ((x @ w).reshape(batch, n, n_heads, -1).permute(0, 2, 1, 3) for w in (w_q, w_k, w_v))
    return manual_attention(q, k, v, causal=True).permute(0, 2, 1, 3).reshape(batch, n, width)


def _fix_head_by_head(x, w_q, w_k, w_v, n_heads):
    d = x.shape[-1] // n_heads
    outs = [manual_attention(*((x @ w)[..., h * d:(h + 1) * d] for w in (w_q, w_k, w_v)), causal=True)
            for h in range(n_heads)]
    return torch.cat(outs, dim=-1)


def _fix_by_sdpa(x, w_q, w_k, w_v, n_heads):
    batch, n, width = x.shape
    q, k, v = ((x @ w).reshape(batch, n, n_heads, -1).transpose(1, 2) for w in (w_q, w_k, w_v))
    return F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(batch, n, width)


@pytest.mark.parametrize("answer", [ex.self_attention_variant, _fix_by_einsum, _fix_with_scaled_attention,
                                    _fix_head_by_head])
def test_self_attention_right_fixes_in_other_styles_pass(answer):
    result = ex.causal_self_attention.feedback(answer)
    assert result.passed and result.shortcuts == (), result


def test_self_attention_fixed_with_sdpa_is_a_shortcut():
    result = ex.causal_self_attention.feedback(_fix_by_sdpa)
    assert result.passed and result.shortcuts == ("torch.nn.functional.scaled_dot_product_attention",)


def test_the_notebooks_given_function_has_the_three_planted_bugs():
    given = _given_self_attention()
    x, w_q, w_k, w_v = ex._self_attention_inputs(6, 0)
    planted = ex.self_attention_variant(x, w_q, w_k, w_v, 2, split="mixed", scale="width", mask="zero")
    torch.testing.assert_close(given(x, w_q, w_k, w_v, 2), planted)
    assert _message(ex.causal_self_attention, given).startswith("3 bugs remain; one of them: the heads are split")


def _with(**bugs):
    return lambda x, w_q, w_k, w_v, n_heads: ex.self_attention_variant(x, w_q, w_k, w_v, n_heads, **bugs)


@pytest.mark.parametrize("bugs, words", [
    ({"split": "mixed"}, "one bug remains: the heads are split with reshape(batch, heads, n, d)"),
    ({"scale": "width"}, "one bug remains: the scores are divided by √width"),
    ({"mask": "zero"}, "one bug remains: the future scores are set to 0 before the softmax"),
    ({"scale": "width", "mask": "zero"}, "2 bugs remain; one of them: the scores are divided by √width"),
    ({"split": "mixed", "mask": "zero"}, "2 bugs remain; one of them: the heads are split"),
    # wrong fixes: another classic bug in place of the planted one
    ({"mask": "after"}, "the mask is applied after the softmax"),
    ({"mask": "none"}, "no causal mask"),
    ({"scale": "d"}, "divided by the head size d, not by √d"),
    ({"scale": "none"}, "the scores are not scaled at all"),
    ({"split": "one_head"}, "n_heads is ignored"),
])
def test_self_attention_each_remaining_bug_is_named(bugs, words):
    assert words in _message(ex.causal_self_attention, _with(**bugs))


def test_self_attention_bug_variants_all_differ():
    x, w_q, w_k, w_v = ex._self_attention_inputs(6, 0)
    outputs = {}
    for split in ("right", "mixed"):
        for scale in ("right", "width", "d", "none"):
            for mask in ("right", "zero", "after", "none"):
                outputs[split, scale, mask] = ex.self_attention_variant(x, w_q, w_k, w_v, 2, split, scale, mask)
    keys = list(outputs)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert (outputs[a] - outputs[b]).abs().max() > 1e-3, (a, b)


def _self_attention_doubling_x_in_place(x, w_q, w_k, w_v, n_heads):  # right values
    x.mul_(2.0)
    return _fix_by_einsum(x / 2, w_q, w_k, w_v, n_heads)


def test_self_attention_an_unknown_mistake_gets_the_probes_and_the_stub_is_not_written():
    message = _message(ex.causal_self_attention, lambda x, w_q, w_k, w_v, n_heads: 2 * _fix_by_einsum(x, w_q, w_k, w_v,
                                                                                                     n_heads))
    assert "differs from the right answer" in message and "does an earlier output change" in message
    assert "wrong shape" in _message(ex.causal_self_attention, lambda x, *_: x[..., :3])
    assert "changed its input x in place" in _message(ex.causal_self_attention, _self_attention_doubling_x_in_place)
    assert ex.causal_self_attention.feedback(_stub).written is False


# -- the design exercise: cap_temperature --------------------------------------------------------------
def _max_weight(scores, t):
    return float(stable_softmax(scores, temperature=t).amax())


def _cap_by_bisection_on_t(scores, p_max):
    """Right, in another style: bisection on T itself (not log T), each row's own cap, the largest kept."""
    n = scores.shape[-1]
    if p_max <= 1 / n or p_max >= 1:
        raise ValueError(f"p_max must be in (1/{n}, 1)")
    caps = []
    for row in scores:
        lo, hi = 0.0, 1.0
        while _max_weight(row, hi) > p_max:
            lo, hi = hi, 2 * hi
        for _ in range(80):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if _max_weight(row, mid) > p_max else (lo, mid)
        caps.append(hi)
    return max(caps)


def _cap_grid(scores, p_max):
    if p_max <= 1 / scores.shape[-1]:
        raise ValueError("p_max too small")
    for t in torch.linspace(0.01, 50, 5000).tolist():
        if _max_weight(scores, t) <= p_max:
            return t


def _cap_no_error(scores, p_max):
    if p_max <= 1 / scores.shape[-1]:
        return float("inf")
    return ex.cap_temperature_reference(scores, p_max)


def _cap_along_dim_0(scores, p_max):
    return ex.cap_temperature_reference(scores.T, p_max) if p_max > 1 / scores.shape[0] else 1.0


@pytest.mark.parametrize("answer", [ex.cap_temperature_reference, _cap_by_bisection_on_t,
                                    lambda s, p: torch.tensor(ex.cap_temperature_reference(s, p))])
def test_cap_temperature_right_answers_pass(answer):
    result = ex.cap_temperature.feedback(answer)
    assert result.passed, result


@pytest.mark.parametrize("answer, words", [
    (lambda s, p: 1 / ex.cap_temperature_reference(s, p), "you returned 1/T"),
    (ex._cap_mean_row, "caps the mean of the rows' largest weights"),
    (_cap_along_dim_0, "along dim 0"),
    (lambda s, p: 0.9 * ex.cap_temperature_reference(s, p), "too small: at T = "),
    (_cap_grid, "not the smallest such T"),
    (lambda s, p: 1.05 * ex.cap_temperature_reference(s, p), "not the smallest such T"),
    (_cap_no_error, "raise a ValueError that says so"),
    (lambda s, p: torch.full((s.shape[0],), ex.cap_temperature_reference(s, p)), "returned a tensor of shape (4,)"),
    (lambda s, p: -1.0, "return a positive number"),
    (lambda s, p: None, "return a positive number"),
])
def test_cap_temperature_mistakes_are_named(answer, words):
    assert words in _message(ex.cap_temperature, answer)


def test_cap_temperature_reference_caps_every_row_and_refuses_an_unreachable_cap():
    scores = ex._cap_inputs()
    t = ex.cap_temperature_reference(scores, 0.3)
    assert _max_weight(scores, t) <= 0.3 < _max_weight(scores, t * 0.999)
    with pytest.raises(ValueError, match="1/n = 1/8"):
        ex.cap_temperature_reference(scores, 0.125)
    with pytest.raises(ValueError, match="below 1"):
        ex.cap_temperature_reference(scores, 1.0)
    assert ex.cap_temperature.feedback(_stub).written is False


# -- concept questions ------------------------------------------------------------------------------
@pytest.mark.parametrize("question, right, wrong", [
    (ex.q04_std_of_scores, 8, [(64.0, "too large"), (1.0, "too small"), (4.0, "too small")]),
    (ex.q04_saturation_scale, 23.7, [(8.0, "too small"), (31.6, "too large")]),
    (ex.q04_divide_by_d, "b", [("a", 'not "a": one-hot rows'), ("c", 'not "c": the entropy does change')]),
    (ex.q04_small_head, "b", [("a", 'not "a": at d = 16'), ("c", 'not "c": nothing in the study')]),
])
def test_the_concept_questions(question, right, wrong):
    assert question.feedback(right).passed
    assert question.feedback(None).written is False
    for value, words in wrong:
        result = question.feedback(value)
        assert not result.passed and words in result.message, result
    assert question.name in ex.__all__ and getattr(check, question.name) is question


def test_the_saturation_question_agrees_with_the_scan():
    import numpy as np

    scan = att.gradient_vs_scale(np.logspace(-2, 2, 33), n=50, rows=200, seed=0)
    assert ex.q04_saturation_scale.feedback(att.saturation_scale(scan, fraction=0.01)).passed
    first_below = scan.scales[np.argmax(scan.grad_norm_median < 0.01 * scan.grad_norm_median.max())]
    assert ex.q04_saturation_scale.feedback(float(first_below)).passed


# -- inputs changed in place -----------------------------------------------------------------------
def _softmax_subtracting_in_place(logits, temperature=1.0, dim=-1):
    logits -= logits.amax(dim=dim, keepdim=True)  # right values, but the caller's logits are shifted
    e = torch.exp(logits / temperature)
    return e / e.sum(dim=dim, keepdim=True)


def _softmax_dividing_in_place(logits, temperature=1.0, dim=-1):
    logits.div_(temperature)
    return torch.softmax(logits, dim=dim)


def _jacobian_in_place(z):
    p = torch.softmax(z.sub_(z.max()), dim=0)
    return torch.diag(p) - torch.outer(p, p)


def _attention_scaling_q_in_place(q, k, v, causal=False):  # right values
    q /= math.sqrt(q.shape[-1])
    return _attn(scale=lambda *_: 1.0)(q, k, v, causal)


@pytest.mark.parametrize("exercise, wrong, words", [
    # used to be blamed on the dim argument: softmax(x, dim=0) then ran on rows already shifted
    (ex.softmax, _softmax_subtracting_in_place, "your function changed its input logits in place; "
                                                "return a new tensor instead"),
    (ex.softmax, _softmax_dividing_in_place, "changed its input logits in place"),
    (ex.softmax_jacobian, _jacobian_in_place, "changed its input z in place"),
    (ex.scaled_attention, _attention_scaling_q_in_place, "changed its input q in place"),
])
def test_an_input_changed_in_place_is_named_first(exercise, wrong, words):
    assert words in _message(exercise, wrong)
