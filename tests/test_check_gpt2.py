"""The build-it-yourself exercises of notebook 05 (helpers.check.gpt2): right answers pass,
typical wrong answers are named."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import check, gpt2, gpt2_hub

C = 1.4826


def _stub(*args):
    raise NotImplementedError()


# -- robust_z ------------------------------------------------------------------------------


def _median(x, dim=-1):
    return torch.quantile(x, 0.5, dim=dim, keepdim=True)


def rz_right(x):
    med = _median(x)
    return (x - med) / (C * _median((x - med).abs()))


def rz_numpy_style(x):  # the same rule written with numpy: also right
    a = x.numpy()
    med = np.median(a, axis=-1, keepdims=True)
    return torch.from_numpy((a - med) / (C * np.median(np.abs(a - med), axis=-1, keepdims=True)))


def rz_mean_std(x):
    return (x - x.mean(-1, keepdim=True)) / x.std(-1, keepdim=True)


def rz_median_std(x):
    return (x - _median(x)) / x.std(-1, keepdim=True)


def rz_no_constant(x):
    med = _median(x)
    return (x - med) / _median((x - med).abs())


def rz_constant_divided(x):
    med = _median(x)
    return (x - med) / (_median((x - med).abs()) / C)


def rz_no_abs(x):
    med = _median(x)
    return (x - med) / (C * _median(x - med))


def rz_torch_median(x):
    med = x.median(dim=-1, keepdim=True).values
    return (x - med) / (C * (x - med).abs().median(dim=-1, keepdim=True).values)


def rz_mean_abs_dev(x):
    med = _median(x)
    return (x - med) / (C * (x - med).abs().mean(-1, keepdim=True))


def rz_dim0(x):
    med = _median(x, 0)
    return (x - med) / (C * _median((x - med).abs(), 0))


def rz_global(x):
    med = x.quantile(0.5)
    return (x - med) / (C * (x - med).abs().quantile(0.5))


def rz_abs(x):
    return rz_right(x).abs()


def rz_in_place(x):
    x -= _median(x)
    return x / (C * _median(x.abs()))


def rz_raises(x):
    return x.quantile(0.5, dim=3)


@pytest.mark.parametrize("answer", [rz_right, rz_numpy_style])
def test_robust_z_right_answers_pass(answer):
    result = check.robust_z.feedback(answer)
    assert result.passed, result.message


@pytest.mark.parametrize("answer, words", [
    (rz_mean_std, "mean and standard deviation instead of median and 1.4826 × MAD"),
    (rz_median_std, "the centre is the median but the spread is the standard deviation"),
    (rz_no_constant, "missing the consistency constant"),
    (rz_constant_divided, "1.4826 is on the wrong side"),
    (rz_no_abs, "did you forget the absolute value?"),
    (rz_torch_median, "torch.median returns the lower of the two middle values"),
    (rz_mean_abs_dev, "mean absolute deviation instead of the MEDIAN"),
    (rz_dim0, "wrong axis: median and MAD over dim 0"),
    (rz_global, "one median and MAD for the whole tensor"),
    (rz_abs, "you returned |z|"),
    (rz_in_place, "changed its input x in place; return a new tensor instead (compute new tensors, x - med"),
    (rz_raises, "your function raised IndexError"),
    (lambda x: rz_right(x).T, "wrong shape: the output has shape (8, 3)"),
    (lambda x: rz_right(x).tolist(), "should be a torch.Tensor, got list"),
    (lambda x: rz_right(x) + 0.01, "the output differs from the right answer at [0, 0]"),
])
def test_robust_z_typical_mistakes_are_named(answer, words):
    result = check.robust_z.feedback(answer)
    assert not result.passed and result.written
    assert words in result.message, result.message


def test_robust_z_stub_is_not_written():
    result = check.robust_z.feedback(_stub)
    assert not result.passed and not result.written


def test_robust_z_reference_keeps_dtype_and_matches_the_notebook_rule():
    params = gpt2_hub.load_layernorm_params("snapshot")
    g = torch.from_numpy(gpt2.stack(params, "weight")).double()
    z = check.robust_z.reference(g)
    assert z.dtype == torch.float64 and z.shape == (25, 768)
    np.testing.assert_array_equal(z.numpy(), gpt2.robust_z(params, "weight"))


# -- int8_roundtrip -----------------------------------------------------------------------


def q_right(y):
    s = y.abs().amax(dim=-1, keepdim=True) / 127
    return torch.round(y / s).clamp(-127, 127) * s


def q_one_scale(y):
    s = y.abs().max() / 127
    return torch.round(y / s) * s


def q_per_column(y):
    s = y.abs().amax(dim=0, keepdim=True) / 127
    return torch.round(y / s) * s


def q_signed_max(y):
    s = y.amax(dim=-1, keepdim=True) / 127
    return torch.round(y / s).clamp(-127, 127) * s


def q_no_dequantize(y):
    s = y.abs().amax(dim=-1, keepdim=True) / 127
    return torch.round(y / s).clamp(-127, 127)


def q_levels(levels):
    def answer(y):
        s = y.abs().amax(dim=-1, keepdim=True) / levels
        return torch.round(y / s).clamp(-127, 127) * s
    return answer


def q_floor(y):
    s = y.abs().amax(dim=-1, keepdim=True) / 127
    return torch.floor(y / s) * s


def q_trunc(y):
    s = y.abs().amax(dim=-1, keepdim=True) / 127
    return (y / s).to(torch.int8).double() * s


def test_int8_right_answer_passes():
    result = check.int8_roundtrip.feedback(q_right)
    assert result.passed, result.message


@pytest.mark.parametrize("answer, words", [
    (q_one_scale, "one scale for the whole matrix"),
    (q_per_column, "one scale per column (channel)"),
    (q_signed_max, "the scale uses max(y), not max(|y|)"),
    (q_no_dequantize, "without multiplying back by the scale"),
    (q_levels(128), "scale = max|y| / 128"),
    (q_levels(255), "that is the unsigned 0..255 range"),
    (q_floor, "floor instead of round"),
    (q_trunc, "truncation instead of rounding"),
    (lambda y: y.numpy(), "should be a torch.Tensor, got ndarray"),
    (lambda y: y / 0, "NaN or inf"),
    (lambda y: torch.round(y, decimals="2"), "your function raised TypeError"),
])
def test_int8_typical_mistakes_are_named(answer, words):
    result = check.int8_roundtrip.feedback(answer)
    assert not result.passed and result.written
    assert words in result.message, result.message


def test_int8_stub_is_not_written():
    assert not check.int8_roundtrip.feedback(_stub).written


def test_int8_in_place_answer_is_named():
    def in_place(y):
        s = y.abs().amax(dim=-1, keepdim=True) / 127
        y /= s
        return torch.round(y) * s
    assert "changed its input y in place" in check.int8_roundtrip.feedback(in_place).message


# -- fold_layernorm -----------------------------------------------------------------------


def f_right(gamma, beta, weight, bias):
    return weight * gamma, weight @ beta + bias


def f_diag(gamma, beta, weight, bias):  # the same with matrices: also right
    return weight @ torch.diag(gamma), torch.mv(weight, beta) + bias


def f_rows(gamma, beta, weight, bias):
    return gamma[:, None] * weight, weight @ beta + bias


def f_no_beta(gamma, beta, weight, bias):
    return weight * gamma, bias


def f_beta_times_gamma(gamma, beta, weight, bias):
    return weight * gamma, weight @ (gamma * beta) + bias


def f_transposed_beta(gamma, beta, weight, bias):
    return weight * gamma, weight.T @ beta + bias


def f_no_bias(gamma, beta, weight, bias):
    return weight * gamma, weight @ beta


def f_beta_added(gamma, beta, weight, bias):
    return weight * gamma, beta + bias


def f_divided(gamma, beta, weight, bias):
    return weight / gamma, weight @ beta + bias


def f_transposed_weight(gamma, beta, weight, bias):
    return (weight * gamma).T.contiguous(), weight @ beta + bias


def f_in_place(gamma, beta, weight, bias):
    bias += weight @ beta
    weight *= gamma
    return weight, bias


def f_single(gamma, beta, weight, bias):
    return weight * gamma


@pytest.mark.parametrize("answer", [f_right, f_diag])
def test_fold_right_answers_pass(answer):
    result = check.fold_layernorm.feedback(answer)
    assert result.passed, result.message


@pytest.mark.parametrize("answer, words", [
    (f_rows, "γ scales the rows of W (its outputs) instead of its columns"),
    (f_no_beta, "β is forgotten"),
    (f_beta_times_gamma, "β is multiplied by γ again"),
    (f_transposed_beta, "Wᵀ β instead of W β"),
    (f_no_bias, "the original bias b is dropped"),
    (f_beta_added, "β is added to the bias directly"),
    (f_divided, "W' = W / γ"),
    (f_transposed_weight, "weight' is transposed: keep nn.Linear's layout (out, in)"),
    (f_in_place, "changed its inputs weight and bias in place; return new tensors instead"),
    (lambda g, b, w, c: ((w * g).T if w.shape[0] != w.shape[1] else w * g, w @ b + c),
     "weight' has shape (6, 4), transposed: keep nn.Linear's layout (out, in) = (4, 6)"),
    (f_single, "return a pair (folded_weight, folded_bias)"),
    (lambda g, b, w, c: (w * g, w @ b + c + 1e-3), "bias' differs from the right answer at [0]"),
])
def test_fold_typical_mistakes_are_named(answer, words):
    result = check.fold_layernorm.feedback(answer)
    assert not result.passed and result.written
    assert words in result.message, result.message


def test_fold_answer_right_only_on_square_layers_fails_on_the_non_square_one():
    def square_only(gamma, beta, weight, bias):
        if weight.shape[0] == weight.shape[1]:
            return weight * gamma, weight @ beta + bias
        return weight * gamma, beta + bias   # (6,) + (4,): raises
    assert "your function raised RuntimeError" in check.fold_layernorm.feedback(square_only).message


def test_fold_stub_is_not_written():
    assert not check.fold_layernorm.feedback(_stub).written


def test_fold_reference_keeps_float32():
    g, b, w, c = (torch.ones(3), torch.zeros(3), torch.ones(2, 3), torch.zeros(2))
    w_f, b_f = check.fold_layernorm.reference(g, b, w, c)
    assert w_f.dtype == torch.float32 and b_f.dtype == torch.float32 and w_f.shape == (2, 3)


# -- int8_error (the derivation) -------------------------------------------------------------


def e_right(y):
    return y.abs().amax(dim=-1) / 127 / 12 ** 0.5


def e_numpy_style(y):  # the same prediction through numpy: also right
    return torch.from_numpy(np.abs(y.numpy()).max(axis=1) / (127 * np.sqrt(12)))


def e_by_integral(y):  # RMS of a uniform error on [−s/2, s/2] as sqrt(∫ e² de / s): also right
    s = y.abs().max(dim=1).values / 127
    return torch.sqrt((s / 2) ** 3 * 2 / 3 / s)


def e_measured(y):
    s = y.abs().amax(dim=-1, keepdim=True) / 127
    return (torch.round(y / s) * s - y).pow(2).mean(dim=-1).sqrt()


def _step(y):
    return y.abs().amax(dim=-1) / 127


@pytest.mark.parametrize("answer", [e_right, e_numpy_style, e_by_integral])
def test_int8_error_right_answers_pass(answer):
    result = check.int8_error.feedback(answer)
    assert result.passed, result


@pytest.mark.parametrize("answer, words", [
    (e_measured, "measured error of one round trip, not the prediction"),
    (lambda y: _step(y) / 2, "s / 2 is the largest error"),
    (lambda y: _step(y) ** 2 / 12, "s² / 12 is the mean square"),
    (lambda y: _step(y) / 12, "not s / 12"),
    (lambda y: _step(y) / 3 ** 0.5, "s / √3 is the RMS of an error spread over [−s, s]"),
    (_step, "the whole step s is not the error"),
    (lambda y: y.abs().amax(dim=-1) / 12 ** 0.5, "the 127 is missing"),
    (lambda y: y.amax(dim=-1) / 127 / 12 ** 0.5, "max(y), not max |y|"),
    (lambda y: y.abs().amax(dim=-1) / 128 / 12 ** 0.5, "divided by 128 levels"),
    (lambda y: y.abs().amax(dim=-1) / 255 / 12 ** 0.5, "divided by 255 levels"),
    (lambda y: e_right(y) / y.pow(2).mean(dim=-1).sqrt(), "divided by the row's RMS"),
    (lambda y: y.abs().max() / 127 / 12 ** 0.5, "one number for the whole matrix"),
    (lambda y: y.abs().amax(dim=0) / 127 / 12 ** 0.5, "one value per column (channel), shape (10,)"),
    (lambda y: y.abs().amax(dim=-1, keepdim=True) / 127 / 12 ** 0.5, "shape (4, 1)"),
    (lambda y: e_right(y).tolist(), "should be a torch.Tensor, got list"),
    (lambda y: 1.1 * e_right(y), "differs from the right answer"),
])
def test_int8_error_typical_mistakes_are_named(answer, words):
    result = check.int8_error.feedback(answer)
    assert not result.passed and words in result.message, result


def test_int8_error_stub_and_in_place():
    assert not check.int8_error.feedback(_stub).written

    def in_place(y):
        return y.abs_().amax(dim=-1) / 127 / 12 ** 0.5
    assert "changed its input y in place" in check.int8_error.feedback(in_place).message


def test_int8_error_predicts_the_measured_error_of_many_channels():
    """The derivation's premise: with many channels the error of each row is spread evenly."""
    y = torch.randn(64, 768, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ratio = e_measured(y) / check.int8_error.reference(y)
    assert 0.98 < float(ratio.median()) < 1.02


# -- concept questions ---------------------------------------------------------------------


@pytest.mark.parametrize("question, right, wrong", [
    (check.q05_largest_gamma, "c", [("a", 'not "a": h.0.ln_2'), ("b", 'not "b": block 11')]),
    (check.q05_forget_wbeta, "c", [("a", 'not "a": h.5.ln_1'), ("b", 'not "b": h.0.ln_2')]),
    (check.q05_beta_tail, "b", [("a", 'not "a": block 0'), ("c", 'not "c": block 11')]),
    (check.q05_ln2_rms, 1.0, [(0.3, "too small"), (2.08, "too large")]),
])
def test_the_concept_questions(question, right, wrong):
    assert question.feedback(right).passed and question.feedback(None).written is False
    for value, words in wrong:
        result = question.feedback(value)
        assert not result.passed and words in result.message, result


def test_the_concept_questions_agree_with_the_parameters():
    params = gpt2_hub.load_layernorm_params_with_source("snapshot").params
    g, b = params["h.0.ln_2.weight"].astype(float), params["h.0.ln_2.bias"].astype(float)
    assert check.q05_ln2_rms.feedback(float(np.sqrt(np.mean(g ** 2) + np.mean(b ** 2)))).passed
    stacked = gpt2.stack(params, "weight")
    assert gpt2.layernorm_names()[int(np.argmax(stacked.max(axis=1)))] == "ln_f"
    beta_max = {name: params[f"{name}.bias"].max() for name in gpt2.layernorm_names() if name.endswith("ln_1")}
    assert max(beta_max, key=beta_max.get) == "h.3.ln_1" and int(np.argmax(params["h.3.ln_1.bias"])) == 64
    forget = {name: gpt2.folding_check(params, name, out_features=256, seed=0) for name in ("h.5.ln_1", "h.0.ln_2",
                                                                                            "ln_f")}
    costs = {name: f.max_diff_gamma_only / f.out_rms for name, f in forget.items()}
    assert max(costs, key=costs.get) == "ln_f" and min(costs, key=costs.get) == "h.0.ln_2", costs
