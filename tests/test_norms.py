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
    with pytest.raises(ValueError, match="num_groups must be an int >= 1"):
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
    for bad in [10.0, (10.0,), "10", (True,)]:
        with pytest.raises(TypeError, match="normalized_shape"):
            N.layer_norm(x, bad)


def test_negative_eps() -> None:
    x = _randn(2, 4, 3)
    for call in (lambda: N.layer_norm(x, 3, eps=-1e-5), lambda: N.group_norm(x, 2, eps=-1.0),
                 lambda: N.batch_norm(x, None, None, training=True, eps=-1e-5),
                 lambda: N.instance_norm(x, eps=-1e-5), lambda: N.rms_norm(x, 3, eps=-1e-6),
                 lambda: N.eps_placement_scale(1.0, eps=-1.0), lambda: N.layer_norm(x, 3, eps=float("nan"))):
        with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
            call()


def test_other_bad_inputs() -> None:
    x = _randn(4, 3)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        N.layer_norm(x, 3, weight=torch.ones(4))
    with pytest.raises(ValueError, match=r"running_mean must have shape \(3,\)"):
        N.batch_norm(x, torch.zeros(2), torch.ones(3), training=True)
    with pytest.raises(ValueError, match="needs running_mean and running_var"):
        N.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match=r"momentum must be a finite number in \[0, 1\]"):
        N.batch_norm(x, None, None, training=True, momentum=1.5)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        N.batch_norm(torch.ones(3), None, None, training=True)
    with pytest.raises(ValueError, match="instance_norm needs"):
        N.instance_norm(_randn(2, 3))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        N.layer_norm(np.ones((2, 3)), 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="eps must be a finite number >= 0"):
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
    with pytest.raises(ValueError, match="std must be a finite number > 0"):
        N.lecture_matrix(2, 2, std=0.0)
    with pytest.raises(ValueError, match="rows must be an int >= 1"):
        N.lecture_matrix(0, 2)


# -- figures and the gamma/beta panel ------------------------------------
from helpers.plots import norms as P  # noqa: E402
from helpers.widgets.norms import gamma_beta_panel  # noqa: E402


def test_norm_sets_shapes_and_sizes() -> None:
    sizes = {m: int(N.normalization_set(m, n=4, c=6, hw=5, groups=3).sum()) for m in N.CUBE_METHODS}
    assert sizes == {"Batch Norm": 20, "Layer Norm": 30, "Instance Norm": 5, "Group Norm": 10}


def test_static_figures_build() -> None:
    x = N.lecture_matrix(30, 30).numpy()
    stds = np.logspace(-7, 1, 20)
    figures = [
        P.eps_placement_figure(stds, *N.eps_placement_scale(stds), eps=1e-5),
        P.layernorm_scatter_figure(x, N.layer_norm(torch.from_numpy(x), 30).numpy(), x),
        P.skew_figure(np.random.default_rng(0).exponential(size=500), np.arange(500.0)),
        P.running_mean_figure(np.ones(10), {0.1: np.ones(10)}, 1.0),
        P.accuracy_bars_figure(["a", "b"], {"m1": [0.9, float("nan")], "m2": [0.5, 0.4]}),
        P.batch_size_figure([2, 4], {"BatchNorm": np.array([0.4, 0.1])}),
    ]
    for fig in figures:
        assert fig.axes and all(ax.get_title() or fig.get_suptitle() for ax in fig.axes)


def test_gamma_beta_panel_extremes_and_readout() -> None:
    panel = gamma_beta_panel()
    gamma, beta, eps = panel.controls["gamma"], panel.controls["beta"], panel.controls["eps"]
    for data in panel.controls["data"].options:
        for g in (gamma.min, gamma.max):
            for b in (beta.min, beta.max):
                for e in (10.0**eps.min, 10.0**eps.max):
                    png = panel.redraw(gamma=g, beta=b, eps=e, data=data)
                    assert png.startswith(b"\x89PNG")
                    mean = float(panel.readout.split("mean = ")[1].split(",")[0])
                    std = float(panel.readout.split("std = ")[1].split(" ")[0])
                    assert abs(mean - b) < 2e-3
                    expected_std = g * np.sqrt(4.0 / (4.0 + e)) if e > 1 else g
                    assert abs(std - expected_std) < 0.1 * g
    panel.redraw(gamma=3.0, beta=5.0, eps=1e-5, data="Gaussian N(2, 2²)")
    assert panel.readout.startswith("output mean = 5.000, std = 3.000")
    panel.redraw(gamma=1.0, beta=0.0, eps=1e-5, data="skewed (exponential)")
    assert "skewness = " in panel.readout and float(panel.readout.split("skewness = ")[1]) > 1.5
    assert "-0.000" not in panel.readout


def test_panel_inputs() -> None:
    inputs = N.panel_inputs(n=1000)
    assert len(inputs) == 2 and all(v.shape == (1000,) for v in inputs.values())


def test_panel_output_is_layernorm_of_the_input() -> None:
    values = N.panel_inputs(n=1000)["skewed (exponential)"]
    standardized = N.standardize_for_panel(values)
    assert standardized.counts.sum() == 1000 and len(standardized.edges) == N.PANEL_BINS + 1
    assert standardized.skew == pytest.approx(N.skewness(values))
    eps = 0.5
    out = N.panel_output(standardized, gamma=2.0, beta=1.0, eps=eps)
    y = N.layer_norm(torch.from_numpy(values)[None, :], 1000, torch.full((1000,), 2.0),
                     torch.full((1000,), 1.0), eps).numpy()[0]
    assert out.mean == pytest.approx(y.mean(), abs=1e-3) and out.std == pytest.approx(y.std(), rel=1e-9)
    np.testing.assert_allclose(out.edges[[0, -1]], [y.min(), y.max()], rtol=1e-9)
    assert (out.density * np.diff(out.edges)).sum() == pytest.approx(1.0)
    assert N.panel_output(standardized, gamma=1.0, beta=0.0, eps=0.0).mean == 0.0  # never -0.0
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        N.panel_output(standardized, 1.0, 0.0, -1.0)
    with pytest.raises(TypeError, match="gamma"):
        N.panel_output(standardized, "1", 0.0, 0.0)  # type: ignore[arg-type]


def test_seed_figures_and_bad_shapes() -> None:
    errs = {"BatchNorm": np.array([[0.4, 0.5], [0.1, 0.12]]), "GroupNorm": np.array([0.15, 0.14])}
    fig = P.batch_size_figure([2, 32], errs)
    assert fig.axes[0].get_legend() is not None and fig.axes[0].get_xlabel()
    acc = {"a": np.array([[0.9, 0.8], [np.nan, np.nan]]), "b": [0.5, 0.4]}
    fig = P.accuracy_bars_figure(["eval", "train"], acc)
    assert "error" in [t.get_text() for t in fig.axes[0].texts]
    with pytest.raises(ValueError, match="must have 2 rows"):
        P.batch_size_figure([2, 32], {"x": np.zeros(3)})
    with pytest.raises(ValueError, match="must have 2 rows"):
        P.accuracy_bars_figure(["eval", "train"], {"x": np.zeros((3, 2))})


# -- LayerNorm backward by hand ------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 5), (7,)])
@pytest.mark.parametrize("eps", [1e-5, 0.5])
def test_layer_norm_backward_matches_autograd(shape, eps) -> None:
    x = _randn(*shape, seed=2, dtype=torch.float64).requires_grad_()
    w, b = (t.double().requires_grad_() for t in _affine((shape[-1],), seed=3))
    dout = _randn(*shape, seed=4, dtype=torch.float64)
    F.layer_norm(x, (shape[-1],), w, b, eps).backward(dout)
    dx, dw, db = N.layer_norm_backward(dout, x.detach(), w.detach(), eps)
    for ours, theirs in ((dx, x.grad), (dw, w.grad), (db, b.grad)):
        assert ours.shape == theirs.shape
        assert torch.allclose(ours, theirs, atol=1e-10)


def test_layer_norm_backward_mean_terms_matter() -> None:
    # without the mean and variance terms dx would be dout * w / std: visibly different
    x, dout = _randn(3, 5, seed=5, dtype=torch.float64), _randn(3, 5, seed=6, dtype=torch.float64)
    w = torch.ones(5, dtype=torch.float64)
    dx, _, _ = N.layer_norm_backward(dout, x, w, 1e-5)
    naive = dout / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
    assert (dx - naive).abs().max() > 0.1
    assert dx.sum(-1).abs().max() < 1e-10


def test_layer_norm_backward_bad_inputs() -> None:
    x = _randn(3, 4, dtype=torch.float64)
    w = torch.ones(4, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"dout must have the shape of x, \(3, 4\)"):
        N.layer_norm_backward(x[:2], x, w)
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        N.layer_norm_backward(x, x, torch.ones(3))
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        N.layer_norm_backward(x, x, w, eps=-1.0)
    with pytest.raises(ValueError, match="at least 1 dimension"):
        N.layer_norm_backward(torch.tensor(1.0), torch.tensor(1.0), w)
    with pytest.raises(TypeError, match="dout must be a torch.Tensor"):
        N.layer_norm_backward(np.ones((3, 4)), x, w)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="weight must be a torch.Tensor"):
        N.layer_norm_backward(x, x, [1.0] * 4)  # type: ignore[arg-type]


# -- BatchNorm in a deep ReLU network at initialization -------------------------------------------
def test_deep_relu_profile_with_and_without_batchnorm() -> None:
    plain = N.deep_relu_profile(False, depth=12, width=32, batch=64, seed=1)
    normed = N.deep_relu_profile(True, depth=12, width=32, batch=64, seed=1)
    for profile in (plain, normed):
        assert profile.depth == 12
        assert profile.activation_norms.shape == profile.grad_norms.shape == profile.dead_fraction.shape == (12,)
        assert np.isfinite(profile.grad_norms).all() and (profile.grad_norms > 0).all()
        assert ((profile.dead_fraction >= 0) & (profile.dead_fraction <= 1)).all()
    # BatchNorm before the ReLU centres every unit over the batch: none is 0 on all examples
    assert normed.dead_fraction.max() == 0 and normed.batch_norm and not plain.batch_norm
    # and makes the network blind to the weights' scale: the same activations for gain 1 and 3
    np.testing.assert_allclose(N.deep_relu_profile(True, gain=1.0, depth=12, width=32, batch=64, seed=1)
                               .activation_norms, N.deep_relu_profile(True, gain=3.0, depth=12, width=32,
                                                                      batch=64, seed=1).activation_norms, rtol=1e-3)
    # without BatchNorm the weights' gradients are those autograd gives the make_mlp network
    from helpers.initialization import make_mlp, mnist_batch, profile_model
    x, y = mnist_batch(64)
    _, grads, _ = profile_model(make_mlp(2.0, 12, 32, "relu", False, 1), x, y)
    np.testing.assert_allclose(plain.grad_norms, grads, rtol=1e-4)
    with pytest.raises(TypeError, match="batch_norm must be True or False"):
        N.deep_relu_profile(1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch must be an int >= 2"):
        N.deep_relu_profile(True, batch=1)
    with pytest.raises(ValueError, match="gain"):
        N.deep_relu_profile(True, gain=-1.0)


def test_sweep_and_deep_relu_figures() -> None:
    fig = P.lr_sweep_figure([0.01, 0.1], {"none": np.array([[0.9, 0.8], [0.1, 0.2]]), "BN": np.array([0.1, 0.1])},
                            batch_size=32)
    assert fig.axes[0].get_legend() is not None and "learning rate" in fig.axes[0].get_xlabel()
    with pytest.raises(ValueError, match="must have 2 rows"):
        P.lr_sweep_figure([0.01, 0.1], {"x": np.zeros(3)}, batch_size=32)
    # order fixes each name's colour: "BN" drawn second here, in the first colour of the order
    fig = P.lr_sweep_figure([0.01, 0.1], {"none": np.zeros(2), "BN": np.zeros(2)}, batch_size=32, order=["BN", "none"])
    lines = {line.get_label().split(" ")[0]: line.get_color() for line in fig.axes[0].lines}
    assert lines["BN"] == P.color(0) and lines["none"] == P.color(1)
    runs = {name: [N.deep_relu_profile(bn, depth=4, width=8, batch=16, seed=s) for s in (0, 1)]
            for name, bn in (("plain", False), ("BatchNorm", True))}
    fig = P.deep_relu_figure(runs)
    assert len(fig.axes) == 2 and all(ax.get_title() and ax.get_legend() is not None for ax in fig.axes)
    with pytest.raises(ValueError, match="at least one profile"):
        P.deep_relu_figure({"empty": []})


def test_sgd_losses_trains_in_place_and_agrees_for_the_same_layer():
    def mlp(norm):
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(5, 6), norm, torch.nn.ReLU(), torch.nn.Linear(6, 3)).double()

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 5, generator=g, dtype=torch.float64), torch.randint(0, 3, (16,), generator=g)
    a = N.sgd_losses(mlp(torch.nn.LayerNorm(6)), x, y, steps=5, lr=0.5)
    b = N.sgd_losses(mlp(torch.nn.LayerNorm(6)), x, y, steps=5, lr=0.5)
    c = N.sgd_losses(mlp(torch.nn.Identity()), x, y, steps=5, lr=0.5)
    assert a.shape == (5,) and a[-1] < a[0]          # it trains
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3                 # another layer, other losses
    with pytest.raises(ValueError, match="lr"):
        N.sgd_losses(mlp(torch.nn.Identity()), x, y, steps=1, lr=0)
