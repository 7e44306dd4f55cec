"""Notebook 04's build-it-yourself exercises (helpers.check.attention) and their references."""

from __future__ import annotations

import importlib
import math

import pytest
import torch
from torch.nn import functional as F

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
