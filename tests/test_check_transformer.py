"""The build-it-yourself exercises of notebook 06 (helpers.check.transformer)."""

from __future__ import annotations

import itertools

import pytest
import torch

from helpers import check
from helpers.check import transformer as exercises
from helpers.transformer import Block, post_ln_block, pre_ln_block, stream_norm


def _stub(*args):
    raise NotImplementedError()


# -- the reference functions in helpers.transformer ---------------------------------------
@pytest.mark.parametrize("norm, fn", [("pre", pre_ln_block), ("none", pre_ln_block), ("post", post_ln_block)])
def test_block_functions_compute_what_block_computes(norm, fn):
    torch.manual_seed(0)
    block = Block(16, 4, norm)
    with torch.no_grad():
        for p in block.parameters():
            p.add_(0.3 * torch.randn(p.shape))  # LayerNorm γ, β away from 1, 0
        x = 3 * torch.randn(2, 7, 16) + 1
        assert torch.allclose(fn(x, block.ln1, block.attn, block.ln2, block.ffn), block(x), atol=1e-6)


def test_pre_and_post_differ():
    block = Block(8, 2, "pre")
    x = torch.randn(1, 3, 8)
    with torch.no_grad():
        parts = (block.ln1, block.attn, block.ln2, block.ffn)
        assert (pre_ln_block(x, *parts) - post_ln_block(x, *parts)).abs().max() > 0.1


@pytest.mark.parametrize("fn", [pre_ln_block, post_ln_block])
def test_block_functions_reject_bad_arguments(fn):
    block = Block(8, 2, "pre")
    parts = (block.ln1, block.attn, block.ln2, block.ffn)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        fn([[1.0]], *parts)
    with pytest.raises(ValueError, match=r"x must have shape \[batch, positions, d_model\]"):
        fn(torch.zeros(3, 8), *parts)
    with pytest.raises(TypeError, match="ffn must be callable"):
        fn(torch.zeros(1, 3, 8), block.ln1, block.attn, block.ln2, "ffn")


def test_stream_norm_is_the_mean_token_norm():
    x = torch.zeros(2, 3, 4)
    x[0, 0] = torch.tensor([3.0, 4.0, 0.0, 0.0])  # norm 5; the other five tokens have norm 0
    assert stream_norm(x) == pytest.approx(5 / 6)
    layer_norm = torch.nn.functional.layer_norm(torch.randn(5, 7, 64), (64,))
    assert stream_norm(layer_norm) == pytest.approx(8.0, abs=1e-3)  # sqrt(d_model)
    assert isinstance(stream_norm(torch.ones(3)), float)


def test_stream_norm_rejects_bad_arguments():
    with pytest.raises(TypeError, match="floating-point torch.Tensor"):
        stream_norm([1.0, 2.0])
    with pytest.raises(TypeError, match="dtype torch.int64"):
        stream_norm(torch.ones(3, dtype=torch.long))
    with pytest.raises(ValueError, match="at least one dimension"):
        stream_norm(torch.tensor(1.0))
    with pytest.raises(ValueError, match="one entry"):
        stream_norm(torch.zeros(2, 0))


# -- the exercises ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["pre_ln_block", "post_ln_block", "stream_norm"])
def test_exported_and_reference_passes(name):
    exercise = getattr(check, name)
    assert name in exercises.__all__
    result = exercise.feedback(exercise.reference)
    assert result.passed, result.message


@pytest.mark.parametrize("name", ["pre_ln_block", "post_ln_block", "stream_norm"])
def test_stub_is_not_written(name):
    result = getattr(check, name).feedback(_stub)
    assert not result.passed and not result.written


@pytest.mark.parametrize("norm, mistakes", [("pre", exercises._pre_ln_mistakes),
                                            ("post", exercises._post_ln_mistakes)])
def test_every_block_mistake_gives_an_output_of_its_own(norm, mistakes):
    block, x = exercises._block(norm, seed=1), exercises._stream(seed=2)
    with torch.no_grad():
        outputs = {"right": block(x), **mistakes(x, block.ln1, block.attn, block.ln2, block.ffn)}
    for (a, out_a), (b, out_b) in itertools.combinations(outputs.items(), 2):
        assert (out_a - out_b).abs().max() > 0.1, f"{a!r} and {b!r} give the same output"


def test_diagnosing_leaves_the_global_random_state_alone():
    state = torch.random.get_rng_state()
    check.pre_ln_block.feedback(pre_ln_block)
    assert torch.equal(torch.random.get_rng_state(), state)


def _pre_as_post(x, ln1, attn, ln2, ffn):
    x = ln1(x + attn(x))
    return ln2(x + ffn(x))


def _pre_no_residual(x, ln1, attn, ln2, ffn):
    x = attn(ln1(x))
    return ffn(ln2(x))


def _pre_normalized_skip(x, ln1, attn, ln2, ffn):
    x = ln1(x)
    x = x + attn(x)
    x = ln2(x)
    return x + ffn(x)


def _pre_wrong_order(x, ln1, attn, ln2, ffn):
    x = x + ffn(ln2(x))
    return x + attn(ln1(x))


def _pre_same_ln(x, ln1, attn, ln2, ffn):
    x = x + attn(ln1(x))
    return x + ffn(ln1(x))


def _pre_in_place(x, ln1, attn, ln2, ffn):
    x += attn(ln1(x))
    x += ffn(ln2(x))
    return x


def _pre_own_layer_norm(x, ln1, attn, ln2, ffn):  # right with ln1/ln2 = LayerNorm, not with Identity
    x = x + attn(torch.nn.functional.layer_norm(x, x.shape[-1:], ln1.weight, ln1.bias))
    return x + ffn(torch.nn.functional.layer_norm(x, x.shape[-1:], ln2.weight, ln2.bias))


@pytest.mark.parametrize("answer, words", [
    (_pre_as_post, "that is post-LN"),
    (_pre_no_residual, "no residual connections"),
    (_pre_normalized_skip, "the skip connection adds the normalized input"),
    (_pre_wrong_order, "the sublayers are in the wrong order: attention comes first"),
    (_pre_same_ln, "ln1 is used twice"),
    (_pre_in_place, "changed its input x in place"),
    (_pre_own_layer_norm, "the \"none\" variant"),
    (lambda x, ln1, attn, ln2, ffn: x + attn(ln1(x)), "the FFN sublayer is missing"),
    (lambda x, ln1, attn, ln2, ffn: (x + attn(ln1(x)))[:, -1], "wrong shape"),
])
def test_pre_ln_mistakes_are_named(answer, words):
    result = check.pre_ln_block.feedback(answer)
    assert not result.passed and result.written
    assert words in result.message


def _post_as_pre(x, ln1, attn, ln2, ffn):
    x = x + attn(ln1(x))
    return x + ffn(ln2(x))


def _post_no_second_residual(x, ln1, attn, ln2, ffn):
    x = ln1(x + attn(x))
    return ln2(ffn(x))


def _post_ln_on_output(x, ln1, attn, ln2, ffn):
    x = x + ln1(attn(x))
    return x + ln2(ffn(x))


def _post_wrong_order(x, ln1, attn, ln2, ffn):
    x = ln2(x + ffn(x))
    return ln1(x + attn(x))


def _post_same_ln(x, ln1, attn, ln2, ffn):
    x = ln2(x + attn(x))
    return ln2(x + ffn(x))


def _post_missing_second_ln(x, ln1, attn, ln2, ffn):
    x = ln1(x + attn(x))
    return x + ffn(x)


@pytest.mark.parametrize("answer, words", [
    (_post_as_pre, "that is pre-LN"),
    (_post_no_second_residual, "the FFN sublayer has no residual connection"),
    (_post_ln_on_output, "applied to the sublayer's output before the add"),
    (_post_wrong_order, "the sublayers are in the wrong order: attention comes first"),
    (_post_same_ln, "ln2 is used twice"),
    (_post_missing_second_ln, "the second LayerNorm is missing"),
    (lambda x, ln1, attn, ln2, ffn: _post_as_pre(x, ln1, attn, ln2, ffn) + 1e-3, "differs from the right answer"),
])
def test_post_ln_mistakes_are_named(answer, words):
    result = check.post_ln_block.feedback(answer)
    assert not result.passed and result.written
    assert words in result.message


def test_a_block_that_raises_is_reported():
    result = check.post_ln_block.feedback(lambda x, ln1, attn, ln2, ffn: attn(ln1(x.sum(-1))))
    assert not result.passed and result.message.startswith("your function raised")


def _norm_in_place(x):
    x.pow_(2)
    return x.sum(-1).sqrt().mean()


@pytest.mark.parametrize("answer, words", [
    (lambda x: x.norm(), "the norm of the whole tensor"),
    (lambda x: x.norm(dim=1).mean(), "norm over dim 1 (the positions)"),
    (lambda x: x.pow(2).mean(-1).sqrt().mean(), "root mean square"),
    (lambda x: x.pow(2).sum(-1).mean(), "squared norm"),
    (lambda x: x.pow(2).sum(-1).mean().sqrt(), "the root of the mean squared norm"),
    (lambda x: x.std(-1).mean(), "standard deviation of each token's vector"),
    (lambda x: x.norm(dim=-1), "did you forget the .mean()"),
    (lambda x: 2 * x.norm(dim=-1).mean(), "the mean norm is"),
    (_norm_in_place, "changed its input x in place"),
])
def test_stream_norm_mistakes_are_named(answer, words):
    result = check.stream_norm.feedback(answer)
    assert not result.passed and result.written
    assert words in result.message


@pytest.mark.parametrize("answer", [
    lambda x: x.norm(dim=-1).mean(),
    lambda x: x.norm(dim=-1).mean().item(),
    lambda x: x.norm(dim=-1).mean().numpy(),
    lambda x: x.norm(dim=-1).mean().reshape(1),
    lambda x: torch.linalg.vector_norm(x, dim=2).mean(),
])
def test_stream_norm_accepts_every_form_of_one_number(answer):
    assert check.stream_norm.feedback(answer).passed


def test_stream_norm_that_raises_is_reported():
    result = check.stream_norm.feedback(lambda x: x.norm(dim=3))
    assert not result.passed and "your function raised IndexError" in result.message


def test_stream_norm_mistakes_are_distinct():
    x = exercises._norm_input()
    names = {
        "right": x.norm(dim=-1).mean(), "whole": x.norm(), "dim1": x.norm(dim=1).mean(),
        "dim0": x.norm(dim=0).mean(), "rms": x.pow(2).mean(-1).sqrt().mean(),
        "squared": x.pow(2).sum(-1).mean(), "root of mean": x.pow(2).sum(-1).mean().sqrt(),
        "std": x.std(-1).mean(), "biased std": x.std(-1, unbiased=False).mean(),
        "mean vector": x.mean((0, 1)).norm(), "l1": x.abs().sum(-1).mean(),
    }
    for (a, va), (b, vb) in itertools.combinations(names.items(), 2):
        assert abs(float(va - vb)) > 0.05, f"{a} and {b} coincide"


# -- inputs changed in place ---------------------------------------------------------------
def _pre_adding_into_ln1s_output(x, ln1, attn, ln2, ffn):
    h = ln1(x)
    h += attn(h) - h + x  # x + attn(ln1(x)); with nn.Identity, h *is* x, so the caller's x changes
    return h + ffn(ln2(h))


def _post_in_place(x, ln1, attn, ln2, ffn):
    x += attn(x)
    x = ln1(x)
    return ln2(x + ffn(x))


def test_an_input_changed_in_place_is_named_before_the_output() -> None:
    message = check.pre_ln_block.feedback(_pre_adding_into_ln1s_output).message
    assert message.startswith("with nn.Identity for ln1 and ln2 (the \"none\" variant) your function changed its "
                              "input x in place"), message
    assert "nn.Identity returns x itself" in message
    message = check.post_ln_block.feedback(_post_in_place).message
    assert message.startswith("your function changed its input x in place; return a new tensor instead"), message
