"""helpers.norms (from-scratch normalization layers) against torch.nn.functional."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from helpers import norms as N

ATOL = 1e-5


def _randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (3.0 * torch.randn(*shape, generator=g) + 1.5).to(dtype)


def _affine(shape: tuple[int, ...], seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)


# -- LayerNorm --------------------------------------------------------------------------------
LN_CASES = [
    ((1, 7), (7,)),
    ((3, 10), (10,)),
    ((30, 30), (30, 30)),
    ((2, 5, 9), (9,)),
    ((2, 5, 9), (5, 9)),
    ((1, 3, 4, 5), (3, 4, 5)),
    ((4, 3, 5, 5), (5,)),
    ((6,), (6,)),
]


@pytest.mark.parametrize("shape,normalized", LN_CASES)
@pytest.mark.parametrize("affine", [False, True])
def test_layer_norm_matches_torch(shape, normalized, affine) -> None:
    x = _randn(*shape)
    w, b = _affine(normalized) if affine else (None, None)
    ours = N.layer_norm(x, normalized, w, b, eps=1e-5)
    theirs = F.layer_norm(x, normalized, w, b, eps=1e-5)
    assert torch.allclose(ours, theirs, atol=ATOL)


def test_layer_norm_accepts_int_and_torch_size() -> None:
    x = _randn(3, 4, 5)
    assert torch.allclose(N.layer_norm(x, 5), F.layer_norm(x, (5,)), atol=ATOL)
    assert torch.allclose(N.layer_norm(x, x.shape[1:]), F.layer_norm(x, x.shape[1:]), atol=ATOL)


def test_layer_norm_large_eps_matches_torch() -> None:
    x = _randn(4, 8) * 1e-3
    assert torch.allclose(N.layer_norm(x, 8, eps=0.1), F.layer_norm(x, (8,), eps=0.1), atol=ATOL)


# -- BatchNorm --------------------------------------------------------------------------------
BN_SHAPES = [(2, 3), (16, 7), (2, 5, 9), (1, 3, 4, 4), (8, 5, 3, 3), (3, 1, 2, 2, 2), (5, 4, 6)]


@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("momentum", [0.1, 0.5, 1.0])
def test_batch_norm_training_matches_torch(shape, affine, momentum) -> None:
    x = _randn(*shape)
    c = shape[1]
    w, b = _affine((c,)) if affine else (None, None)
    rm, rv = _randn(c, seed=3), _randn(c, seed=4).abs() + 0.5
    rm_t, rv_t = rm.clone(), rv.clone()
    ours = N.batch_norm(x, rm, rv, w, b, training=True, momentum=momentum, eps=1e-5)
    theirs = F.batch_norm(x, rm_t, rv_t, w, b, training=True, momentum=momentum, eps=1e-5)
    assert torch.allclose(ours, theirs, atol=ATOL)
    assert torch.allclose(rm, rm_t, atol=ATOL) and torch.allclose(rv, rv_t, atol=1e-4)


@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batch_norm_eval_matches_torch_and_does_not_update(shape) -> None:
    x = _randn(*shape)
    c = shape[1]
    rm, rv = _randn(c, seed=3), _randn(c, seed=4).abs() + 0.5
    before = rm.clone(), rv.clone()
    w, b = _affine((c,))
    ours = N.batch_norm(x, rm, rv, w, b, training=False)
    theirs = F.batch_norm(x, rm.clone(), rv.clone(), w, b, training=False)
    assert torch.allclose(ours, theirs, atol=ATOL)
    assert torch.equal(rm, before[0]) and torch.equal(rv, before[1])


def test_batch_norm_running_var_is_unbiased_but_normalization_is_biased() -> None:
    x = _randn(4, 3)
    rm, rv = torch.zeros(3), torch.ones(3)
    y = N.batch_norm(x, rm, rv, training=True, momentum=1.0, eps=1e-12)
    assert torch.allclose(rv, x.var(0, unbiased=True), atol=1e-5)
    assert torch.allclose(y.var(0, unbiased=False), torch.ones(3), atol=1e-5)


def test_batch_norm_zero_eps() -> None:
    x = _randn(4, 3)
    with pytest.raises(ValueError, match="eps must be > 0 for training-mode"):
        N.batch_norm(x, None, None, training=True, eps=0.0)
    with pytest.raises(ValueError, match="eps must be positive during training"):
        F.batch_norm(x, None, None, training=True, eps=0.0)  # torch refuses it too
    N.batch_norm(x, torch.zeros(3), torch.ones(3), training=False, eps=0.0)  # eval mode allows it


def test_batch_norm_training_without_running_stats() -> None:
    x = _randn(4, 3, 2)
    assert torch.allclose(N.batch_norm(x, None, None, training=True),
                          F.batch_norm(x, None, None, training=True), atol=ATOL)


# -- GroupNorm / InstanceNorm / RMSNorm --------------------------------------------------------
GN_CASES = [((1, 6, 4, 4), 3), ((2, 6, 4, 4), 1), ((2, 6, 4, 4), 6), ((3, 9, 5), 3), ((1, 7, 3, 3), 7),
            ((4, 5, 2, 3), 5), ((2, 4), 2), ((2, 8, 2, 2, 2), 4)]


@pytest.mark.parametrize("shape,groups", GN_CASES)
@pytest.mark.parametrize("affine", [False, True])
def test_group_norm_matches_torch(shape, groups, affine) -> None:
    x = _randn(*shape)
    w, b = _affine((shape[1],)) if affine else (None, None)
    assert torch.allclose(N.group_norm(x, groups, w, b), F.group_norm(x, groups, w, b), atol=ATOL)


@pytest.mark.parametrize("shape", [(1, 3, 5), (2, 5, 4, 4), (3, 7, 2, 3)])
def test_instance_norm_matches_torch(shape) -> None:
    x = _randn(*shape)
    w, b = _affine((shape[1],))
    assert torch.allclose(N.instance_norm(x, w, b), F.instance_norm(x, weight=w, bias=b), atol=ATOL)


@pytest.mark.parametrize("shape,normalized", LN_CASES)
@pytest.mark.parametrize("eps", [None, 1e-6])
def test_rms_norm_matches_torch(shape, normalized, eps) -> None:
    x = _randn(*shape)
    w, _ = _affine(normalized)
    assert torch.allclose(N.rms_norm(x, normalized, w, eps=eps), F.rms_norm(x, normalized, w, eps=eps), atol=ATOL)


def test_special_cases_agree() -> None:
    x = _randn(2, 6, 3, 3)
    assert torch.allclose(N.group_norm(x, 1), N.layer_norm(x, x.shape[1:]), atol=ATOL)
    assert torch.allclose(N.group_norm(x, 6), N.instance_norm(x), atol=ATOL)


# -- gradients ----------------------------------------------------------------------------------
def _gradcheck(fn, *inputs) -> None:
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5)


def test_gradcheck_layer_norm() -> None:
    x = _randn(3, 4, 5, dtype=torch.float64).requires_grad_()
    w, b = (t.double().requires_grad_() for t in _affine((4, 5)))
    _gradcheck(lambda x, w, b: N.layer_norm(x, (4, 5), w, b), x, w, b)


@pytest.mark.parametrize("training", [True, False])
def test_gradcheck_batch_norm(training) -> None:
    x = _randn(4, 3, 2, dtype=torch.float64).requires_grad_()
    w, b = (t.double().requires_grad_() for t in _affine((3,)))

    def fn(x, w, b):
        return N.batch_norm(x, torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64),
                            w, b, training=training)

    _gradcheck(fn, x, w, b)


def test_gradcheck_group_instance_rms() -> None:
    x = _randn(2, 6, 3, dtype=torch.float64).requires_grad_()
    w, b = (t.double().requires_grad_() for t in _affine((6,)))
    _gradcheck(lambda x, w, b: N.group_norm(x, 3, w, b), x, w, b)
    _gradcheck(lambda x, w, b: N.instance_norm(x, w, b), x, w, b)
    w3 = torch.randn(3, dtype=torch.float64, requires_grad=True)
    _gradcheck(lambda x, w: N.rms_norm(x, 3, w, eps=1e-6), x, w3)


def test_gradients_match_torch() -> None:
    x1 = _randn(4, 6, 3, 3).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    (N.group_norm(x1, 2) ** 3).sum().backward()
    (F.group_norm(x2, 2) ** 3).sum().backward()
    assert torch.allclose(x1.grad, x2.grad, atol=1e-4)


# -- bad inputs -----------------------------------------------------------------------------------
def test_bad_num_groups() -> None:
    x = _randn(2, 6, 3)
    with pytest.raises(ValueError, match=r"num_groups must divide the number of channels \(6\), got 4"):
        N.group_norm(x, 4)
    with pytest.raises(ValueError, match="num_groups must be a positive int"):
        N.group_norm(x, 0)


def test_single_value_per_channel_in_training() -> None:
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        N.batch_norm(_randn(1, 4), torch.zeros(4), torch.ones(4), training=True)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        N.batch_norm(_randn(1, 4, 1, 1), None, None, training=True)
    # one example with spatial positions is fine (as in torch)
    N.batch_norm(_randn(1, 4, 2, 2), None, None, training=True)


def test_normalized_shape_mismatch() -> None:
    x = _randn(3, 10)
    for bad in [(3,), (3, 10, 1), (2, 3, 10), (), (0,), 11]:
        with pytest.raises(ValueError, match="normalized_shape"):
            N.layer_norm(x, bad)
        with pytest.raises(ValueError, match="normalized_shape"):
            N.rms_norm(x, bad)


def test_negative_eps() -> None:
    x = _randn(2, 4, 3)
    for call in (lambda: N.layer_norm(x, 3, eps=-1e-5), lambda: N.group_norm(x, 2, eps=-1.0),
                 lambda: N.batch_norm(x, None, None, training=True, eps=-1e-5),
                 lambda: N.instance_norm(x, eps=-1e-5), lambda: N.rms_norm(x, 3, eps=-1e-6),
                 lambda: N.eps_placement_scale(1.0, eps=-1.0), lambda: N.layer_norm(x, 3, eps=float("nan"))):
        with pytest.raises(ValueError, match="eps must be >= 0"):
            call()


def test_other_bad_inputs() -> None:
    x = _randn(4, 3)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        N.layer_norm(x, 3, weight=torch.ones(4))
    with pytest.raises(ValueError, match=r"running_mean must have shape \(3,\)"):
        N.batch_norm(x, torch.zeros(2), torch.ones(3), training=True)
    with pytest.raises(ValueError, match="needs running_mean and running_var"):
        N.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match="momentum must be a number in"):
        N.batch_norm(x, None, None, training=True, momentum=1.5)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        N.batch_norm(torch.ones(3), None, None, training=True)
    with pytest.raises(ValueError, match="instance_norm needs"):
        N.instance_norm(_randn(2, 3))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        N.layer_norm(np.ones((2, 3)), 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="eps must be a number"):
        N.layer_norm(x, 3, eps="small")  # type: ignore[arg-type]


# -- measurement helpers ----------------------------------------------------------------------
def test_eps_placement() -> None:
    inside, outside = N.eps_placement_scale(np.array([1.0, 1e-5]), eps=1e-5)
    assert abs(inside[0] - 1) < 1e-5 and abs(outside[0] - 1) < 1e-4
    assert abs(outside[1] - 0.5) < 1e-12 and inside[1] < 0.01
    x = _randn(5, 8)
    out = N.standardize_eps_outside(x, dim=-1, eps=0.0)
    assert torch.allclose(out, N.layer_norm(x, 8, eps=0.0), atol=1e-5)
    with pytest.raises(ValueError, match="std must be >= 0"):
        N.eps_placement_scale(-1.0)


def test_matrix_stats_pearson_skewness() -> None:
    x = N.lecture_matrix(3, 10)
    assert x.shape == (3, 10) and torch.equal(x, N.lecture_matrix(3, 10))
    s = N.matrix_stats(N.layer_norm(x, 10))
    assert np.allclose(s.row_means, 0, atol=1e-6) and np.allclose(s.row_stds, 1, atol=1e-4)
    assert abs(N.pearson(x, 2 * x + 1) - 1) < 1e-12
    assert abs(N.pearson(x, -x) + 1) < 1e-12
    rng = np.random.default_rng(0)
    e = rng.exponential(size=200_000)
    assert abs(N.skewness(e) - 2) < 0.1 and abs(N.skewness(3 * e + 1) - N.skewness(e)) < 1e-9
    with pytest.raises(ValueError, match="same number of values"):
        N.pearson(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="non-constant"):
        N.pearson(np.ones(3), np.arange(3))
    with pytest.raises(ValueError, match="x must be 2-D"):
        N.matrix_stats(torch.ones(3))
    with pytest.raises(ValueError, match="std must be > 0"):
        N.lecture_matrix(2, 2, std=0.0)
    with pytest.raises(ValueError, match="rows and cols"):
        N.lecture_matrix(0, 2)
