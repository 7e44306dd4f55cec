"""Notebook 06's derivation and debugging exercises and its questions (helpers.check.transformer_forward)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from helpers import check
from helpers.check import transformer_forward as ex
from helpers.check.feedback import Question
from helpers.transformer import TinyTransformer, reversal_task


def _stub(*args):
    raise NotImplementedError()


@pytest.mark.parametrize("name", ["predicted_stream_norms", "pre_ln_forward"])
def test_exported_reference_passes_and_stub_is_not_written(name):
    exercise = getattr(check, name)
    assert name in ex.__all__ and exercise.name == name
    assert exercise.feedback(exercise.reference).passed, exercise.feedback(exercise.reference)
    stub = exercise.feedback(_stub)
    assert not stub.passed and not stub.written


# -- predicted_stream_norms ---------------------------------------------------------------
def _right_loop(norm0, branch_norms):
    out, squared = [norm0], norm0 ** 2
    for b in branch_norms.tolist():
        squared += b * b
        out.append(squared ** 0.5)
    return out


@pytest.mark.parametrize("answer", [
    lambda n0, b: torch.sqrt(n0 ** 2 + torch.cat([torch.zeros(1, dtype=b.dtype), torch.cumsum(b ** 2, 0)])),
    _right_loop,
    lambda n0, b: np.sqrt(n0 ** 2 + np.concatenate([[0.0], np.cumsum(b.numpy() ** 2)])),
    lambda n0, b: torch.tensor([n0 ** 2] + (b ** 2).tolist()).cumsum(0).sqrt(),  # float32 is close enough
])
def test_predicted_stream_norms_right_answers_in_other_styles_pass(answer):
    result = check.predicted_stream_norms.feedback(answer)
    assert result.passed, result.message


def _zeros(b):
    return torch.zeros(1, dtype=b.dtype)


@pytest.mark.parametrize("answer, words", [
    (lambda n0, b: n0 + torch.cat([_zeros(b), b.cumsum(0)]), "the norms add up"),
    (lambda n0, b: n0 + torch.cat([_zeros(b), (b ** 2).cumsum(0)]).sqrt(), "the embeddings' norm is added"),
    (lambda n0, b: n0 ** 2 + torch.cat([_zeros(b), (b ** 2).cumsum(0)]), "these are the squared norms"),
    (lambda n0, b: (n0 ** 2 + torch.cat([_zeros(b), b.cumsum(0)]) ** 2).sqrt(), "summed before squaring"),
    (lambda n0, b: (n0 ** 2 + torch.cat([_zeros(b), b.cumsum(0)])).sqrt(), "added without squaring"),
    (lambda n0, b: torch.cat([_zeros(b), (b ** 2).cumsum(0)]).sqrt(), "the embeddings are left out"),
    (lambda n0, b: (n0 ** 2 + torch.arange(len(b) + 1) * b.mean() ** 2).sqrt(), "one average branch norm"),
    (lambda n0, b: (n0 ** 2 + (b ** 2).cumsum(0)).sqrt(), "the first entry is missing"),
    (lambda n0, b: (n0 ** 2 + (b ** 2).cumsum(0)), "wrong shape"),
    (lambda n0, b: float((n0 ** 2 + (b ** 2).sum()) ** 0.5), "should be a torch.Tensor"),
])
def test_predicted_stream_norms_mistakes_are_named(answer, words):
    result = check.predicted_stream_norms.feedback(answer)
    assert not result.passed and result.written
    assert words in result.message, result.message


def test_predicted_stream_norms_in_place_and_hard_coded_answers_fail():
    def in_place(n0, b):
        b.pow_(2)
        return (n0 ** 2 + torch.cat([_zeros(b), b.cumsum(0)])).sqrt()

    assert "changed its input b in place" in check.predicted_stream_norms.feedback(in_place).message
    fixed = ex._predicted(11.3, torch.tensor([2.5, 3.9, 0.6, 4.0, 6.5, 3.0], dtype=torch.float64))
    result = check.predicted_stream_norms.feedback(lambda n0, b: fixed.clone())
    assert not result.passed and "norm0 = 3" in result.message


def test_predicted_stream_norms_reference_rejects_bad_arguments():
    with pytest.raises(TypeError, match="norm0 must be a number"):
        ex._predicted("11", [1.0])
    with pytest.raises(ValueError, match="branch_norms must be 1-D"):
        ex._predicted(1.0, torch.ones(2, 2))
    with pytest.raises(ValueError, match="≥ 0"):
        ex._predicted(-1.0, [1.0])
    assert ex._predicted(3.0, [4.0]).tolist() == pytest.approx([3.0, 5.0])


# -- pre_ln_forward --------------------------------------------------------------------------
def _fixed(model, tokens):
    x = model.embed(tokens)
    for block in model.blocks:
        x = x + block.attn(block.ln1(x))
        x = x + block.ffn(block.ln2(x))
    return model.head(model.ln_f(x))


def _with_block_function(model, tokens):  # the notebook's checked pre_ln_block: a dependent answer
    from helpers.transformer import pre_ln_block
    x = model.embed(tokens)
    for b in model.blocks:
        x = pre_ln_block(x, b.ln1, b.attn, b.ln2, b.ffn)
    return model.head(model.ln_f(x))


def _buggy(model, tokens):
    x = model.embed(tokens)
    for block in model.blocks:
        x = block.ln1(x)
        x = x + block.attn(x)
        x = x + block.ffn(block.ln2(x))
    return model.head(x)


def _only_ln_f_fixed(model, tokens):
    return ex._variant(model, tokens, stream1=True)


def _only_stream_fixed(model, tokens):
    return ex._variant(model, tokens, ln_f="none")


@pytest.mark.parametrize("answer", [_fixed, _with_block_function])
def test_pre_ln_forward_right_answers_pass(answer):
    result = check.pre_ln_forward.feedback(answer)
    assert result.passed, result.message


def test_the_reference_forward_is_the_models_forward():
    model = TinyTransformer("pre", n_layers=3, seed=4)
    tokens = reversal_task(5, length=6).tokens
    with torch.no_grad():
        assert torch.allclose(ex._reference_forward(model, tokens), model(tokens), atol=1e-6)
    with pytest.raises(TypeError, match="TinyTransformer"):
        ex._reference_forward(torch.nn.Linear(2, 2), tokens)
    with pytest.raises(TypeError, match="torch.long"):
        ex._reference_forward(model, tokens.float())


@pytest.mark.parametrize("answer, words", [
    (_buggy, "this is the buggy forward unchanged"),
    (_only_ln_f_fixed, "ln_f is fixed, but one bug remains"),
    (_only_stream_fixed, "the blocks are fixed, but one bug remains"),
    (lambda m, t: ex._variant(m, t, stream1=True, stream2=True), "both sublayers now normalize the stream"),
    (lambda m, t: ex._variant(m, t, stream2=True), "the FFN's skip connection carries the normalized stream"),
    (lambda m, t: ex._variant(m, t, ln_f="every"), "ln_f is applied after every block"),
    (lambda m, t: ex._variant(m, t, ln_f="first"), "ln_f is applied to the embeddings"),
    (lambda m, t: ex._variant(m, t, post=True), "wired post-LN"),
    (lambda m, t: m(t), "calls model(tokens)"),
    (lambda m, t: m.head(m.ln_f(torch.nn.Sequential(*m.blocks)(m.embed(t)))), "calls block(x)"),
    (lambda m, t: m.ln_f(m.embed(t)), "return the logits"),
    (lambda m, t: _fixed(m, t) + 1e-3, "differs from the right answer"),
])
def test_pre_ln_forward_names_the_bug_that_remains(answer, words):
    result = check.pre_ln_forward.feedback(answer)
    assert not result.passed and result.written
    assert words in result.message, result.message


def test_every_forward_mistake_gives_logits_of_its_own():
    model, tokens = ex._model(seed=3), reversal_task(3, length=4, seed=5).tokens
    with torch.no_grad():
        outputs = {"right": model(tokens), **dict(ex._forward_mistakes(model, tokens))}
    assert len(outputs) == len(ex._forward_mistakes(model, tokens)) + 1  # messages are distinct
    for (a, out_a), (b, out_b) in itertools.combinations(outputs.items(), 2):
        assert (out_a - out_b).abs().max() > 0.05, f"{a!r} and {b!r} give the same logits"


def test_checking_leaves_the_global_random_state_alone():
    state = torch.random.get_rng_state()
    check.pre_ln_forward.feedback(_fixed)
    assert torch.equal(torch.random.get_rng_state(), state)


# -- questions ---------------------------------------------------------------------------------
QUESTIONS = {"q06_stream_doubling": 31.3, "q06_without_ln_f": "c", "q06_norm_first": "a"}


@pytest.mark.parametrize("name, right", QUESTIONS.items())
def test_questions_accept_the_right_answer_and_refuse_none(name, right):
    question = getattr(check, name)
    assert isinstance(question, Question) and name in ex.__all__
    assert question.feedback(right).passed
    missing = question.feedback(None)
    assert not missing.passed and not missing.written


@pytest.mark.parametrize("name", ["q06_without_ln_f", "q06_norm_first"])
def test_every_wrong_choice_has_its_own_explanation(name):
    question = getattr(check, name)
    for choice, text in question.choices.items():
        result = question.feedback(choice.upper())
        if choice == question.answer:
            assert result.passed and not text
        else:
            assert not result.passed and len(text) > 40 and text in result.message
    assert "not a choice" in question.feedback("d").message


def test_the_doubling_question_refuses_the_linear_sum_and_the_number_of_blocks():
    question = check.q06_stream_doubling
    assert question.feedback(31).passed and question.feedback(32).passed
    assert "too small" in question.feedback(128 ** 0.5 / 3.5).message
    assert "too small" in question.feedback(16).message
