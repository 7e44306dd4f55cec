"""Tests for helpers.initialization (notebook 01) and its plots and panel."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers import initialization as init
from helpers import initialization_symmetry, initialization_theory
from helpers.initialization import norm_profile


# ------------------------------------------------------------------ norm_profile contract
@pytest.fixture(scope="module")
def relu_profiles() -> dict[float, init.NormProfile]:
    return {c: norm_profile(c) for c in (1.0, 2.0, 3.0)}


def test_norm_profile_shapes_and_types(relu_profiles):
    for c, p in relu_profiles.items():
        assert p.activation_norms.shape == (50,)
        assert p.grad_norms.shape == (50,)
        assert p.activation_norms.dtype == np.float64
        assert np.all(np.isfinite(p.activation_norms)) and np.all(p.activation_norms > 0)
        assert np.all(np.isfinite(p.grad_norms)) and np.all(p.grad_norms > 0)
        assert p.gain == c and p.depth == 50 and p.width == 100 and p.activation == "relu"
        assert list(p.layers) == list(range(1, 51))


@pytest.mark.parametrize("activation", init.ACTIVATIONS)
def test_norm_profile_every_activation_and_small_sizes(activation):
    p = norm_profile(1.5, depth=3, width=7, activation=activation, batch=5, seed=3)
    assert p.activation_norms.shape == (3,) and p.grad_norms.shape == (3,)
    assert np.all(np.isfinite(p.activation_norms))


def test_norm_profile_is_deterministic():
    a = norm_profile(2.0, depth=10, width=32, batch=64, seed=5)
    b = norm_profile(2.0, depth=10, width=32, batch=64, seed=5)
    c = norm_profile(2.0, depth=10, width=32, batch=64, seed=6)
    np.testing.assert_array_equal(a.activation_norms, b.activation_norms)
    np.testing.assert_array_equal(a.grad_norms, b.grad_norms)
    assert not np.array_equal(a.activation_norms, c.activation_norms)


def test_norm_profile_theory_trend(relu_profiles):
    """c = 1 collapses, c = 3 explodes, c = 2 stays level (the lecture's figure)."""
    a1, a2, a3 = (relu_profiles[c].activation_norms for c in (1.0, 2.0, 3.0))
    assert a1[0] / a1[-1] > 1e3
    assert a3[-1] / a3[0] > 1e3
    assert 0.1 < a2[-1] / a2[0] < 10
    # per-layer log-slope close to the theory 0.5 * ln(c / 2)
    for c in (1.0, 2.0, 3.0):
        a = relu_profiles[c].activation_norms
        slope = np.polyfit(np.arange(50), np.log(a), 1)[0]
        assert abs(slope - 0.5 * math.log(c / 2)) < 0.05
    # gradient levels ordered like the activations, separated by orders of magnitude
    g = {c: np.median(p.grad_norms) for c, p in relu_profiles.items()}
    assert g[1.0] * 1e3 < g[2.0] < g[3.0] / 1e3


def test_layernorm_makes_gains_coincide():
    a = norm_profile(1.0, depth=20, layernorm=True, batch=64).activation_norms
    b = norm_profile(3.0, depth=20, layernorm=True, batch=64).activation_norms
    # LayerNorm without affine: every hidden output has norm sqrt(width) = 10
    np.testing.assert_allclose(a, 10.0, rtol=1e-3)
    np.testing.assert_allclose(b, 10.0, rtol=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"gain": 0.0}, "gain"),
        ({"gain": -1.0}, "gain"),
        ({"gain": float("nan")}, "gain"),
        ({"depth": 0}, "depth"),
        ({"width": 0}, "width"),
        ({"batch": 0}, "batch"),
        ({"batch": 60_001}, "batch"),
        ({"seed": -1}, "seed"),
        ({"activation": "gelu"}, "activation"),
        ({"activation": "ReLU"}, "activation"),
    ],
)
def test_norm_profile_rejects_bad_values(kwargs, name):
    args = {"gain": 2.0, "depth": 2, "width": 4, "batch": 2, **kwargs}
    with pytest.raises(ValueError, match=name):
        norm_profile(**args)


def test_unknown_activation_message_lists_allowed():
    with pytest.raises(ValueError, match="relu.*leaky_relu.*tanh.*sigmoid.*linear"):
        norm_profile(2.0, activation="swish")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"gain": "2"}, "gain"), ({"depth": 2.5}, "depth"), ({"layernorm": "yes"}, "layernorm"),
     ({"depth": True}, "depth")],
)
def test_norm_profile_rejects_bad_types(kwargs, name):
    args = {"gain": 2.0, "depth": 2, "width": 4, "batch": 2, **kwargs}
    with pytest.raises(TypeError, match=name):
        norm_profile(**args)


# ------------------------------------------------------------------ make_mlp
def test_make_mlp_structure_and_variance():
    model = init.make_mlp(2.0, depth=4, width=300, activation="tanh", layernorm=True, seed=1)
    assert len(model) == 5
    assert isinstance(model[0][1], torch.nn.Tanh) and isinstance(model[0][2], torch.nn.LayerNorm)
    weights = init.hidden_weights(model)
    assert [tuple(w.shape) for w in weights] == [(300, 784), (300, 300), (300, 300), (300, 300)]
    assert all(m.bias is None for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert tuple(model[-1].weight.shape) == (10, 300)
    for w in weights:
        n_in = w.shape[1]
        assert float(w.detach().var()) == pytest.approx(2.0 / n_in, rel=0.05)
    assert model(torch.zeros(2, 784)).shape == (2, 10)


def test_make_mlp_same_seed_same_weights():
    a = init.make_mlp(2.0, depth=3, width=8, seed=9)
    b = init.make_mlp(2.0, depth=3, width=8, seed=9)
    for wa, wb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(wa, wb)


def test_mnist_batch_returns_copies():
    x, y = init.mnist_batch(4)
    x.zero_()
    x2, _ = init.mnist_batch(4)
    assert float(x2.sum()) > 0 and x2.shape == (4, 784) and y.shape == (4,)


# ------------------------------------------------------------------ fast path and theory
@pytest.mark.parametrize("activation", init.ACTIVATIONS)
def test_fast_profile_matches_autograd(activation):
    x, y = init.mnist_batch(24)
    model = init.make_mlp(1.7, depth=6, width=40, activation=activation, seed=4)
    weights = [w.detach() for w in init.hidden_weights(model)]
    act, grad = init.fast_profile(x, y, weights, model[-1].weight.detach(), activation)
    act2, grad2, _ = init.profile_model(model, x, y)
    np.testing.assert_allclose(act, act2, rtol=1e-5)
    np.testing.assert_allclose(grad, grad2, rtol=1e-4)


def test_weight_bank_slices_have_the_right_variance():
    bank = init.WeightBank(max_depth=4, max_width=64, seed=0)
    ws, final = bank.weights(3.0, depth=4, width=50)
    assert [tuple(w.shape) for w in ws] == [(50, 784), (50, 50), (50, 50), (50, 50)]
    assert tuple(final.shape) == (10, 50)
    assert float(ws[0].var()) == pytest.approx(3.0 / 784, rel=0.05)
    with pytest.raises(ValueError, match="depth"):
        bank.weights(2.0, depth=5, width=10)
    with pytest.raises(ValueError, match="width"):
        bank.weights(2.0, depth=2, width=65)


def test_theory_relu_closed_form_and_mean_field():
    x, _ = init.mnist_batch(64)
    sq = (x.double() ** 2).sum(dim=1).numpy()
    for c in (1.0, 2.0, 3.0):
        mf = initialization_theory.theory_norms(c, 30, 100, "relu", sq)
        ratios = mf[1:] / mf[:-1]
        np.testing.assert_allclose(ratios, math.sqrt(c / 2), rtol=1e-12)
    # linear: sqrt(c); leaky: sqrt(c (1 + a^2) / 2)
    lin = initialization_theory.theory_norms(1.5, 5, 50, "linear", sq)
    np.testing.assert_allclose(lin[1:] / lin[:-1], math.sqrt(1.5), rtol=1e-12)
    # quadrature agrees with the closed form for a smooth check: E[tanh(h)^2] <= Var h
    assert np.all(initialization_theory.second_moment("tanh", np.array([0.01, 1.0, 9.0])) < [0.01, 1.0, 9.0])
    assert initialization_theory.second_moment("sigmoid", 1e-12) == pytest.approx(0.25, rel=1e-6)
    assert initialization_theory.stable_gain("leaky_relu", 0.1) == pytest.approx(2 / 1.01)


def test_theory_matches_measurement_at_large_width():
    p = norm_profile(1.5, depth=10, width=512, activation="tanh", batch=64)
    x, _ = init.mnist_batch(64)
    th = initialization_theory.theory_norms(1.5, 10, 512, "tanh", (x.double() ** 2).sum(dim=1).numpy())
    np.testing.assert_allclose(p.activation_norms, th, rtol=0.1)


def test_finite_width_slope():
    assert initialization_theory.finite_width_log_slope(2.0, 100) == pytest.approx(-0.0125)
    assert initialization_theory.finite_width_log_slope(1.0, 1_000_000) == pytest.approx(0.5 * math.log(0.5), abs=1e-5)


# ------------------------------------------------------------------ sections 1, 3, 5
@pytest.fixture(scope="module")
def symmetry():
    return {scheme: initialization_symmetry.symmetry_study(scheme, seeds=(0, 1, 2), steps=30, train_images=512,
                                                           eval_images=128)
            for scheme in initialization_symmetry.INIT_SCHEMES}


def test_zero_init_never_moves(symmetry):
    zero = symmetry["zero"]
    assert zero.losses.shape == (3, 30) and zero.first_grad_norms.shape == (3, 3)
    assert np.all(zero.first_grad_norms == 0) and np.all(zero.largest_change == 0)
    np.testing.assert_allclose(zero.eval_loss, math.log(10), rtol=1e-6)
    assert np.all(zero.alive == 0) and np.all(zero.spread == 0)


def test_constant_init_keeps_units_alive_and_identical(symmetry):
    const = symmetry["constant"]
    assert const.alive.shape == (3, 2) and np.all(const.alive == 1.0)
    assert np.all(const.largest_change[:, :2] > 1e-4)  # the hidden layers move ...
    assert const.spread.max() < 1e-6                    # ... together
    assert np.all(const.first_grad_norms[:, :2] < 1e-5) and np.all(const.first_grad_norms[:, 2] > 0.01)
    assert np.all(const.eval_loss < math.log(10))
    assert np.ptp(const.losses[:, 1:], axis=0).max() > 0  # seeds see the data in different orders


def test_random_init_units_differ_and_learn(symmetry):
    rand, const = symmetry["random"], symmetry["constant"]
    assert rand.spread.min() > 0.5
    assert np.all(rand.eval_loss < const.eval_loss.min())
    assert rand.first_layer.shape == (32, 784)


def test_constant_value_and_dead_units():
    # a large constant with a large step kills the second hidden layer: the old, confounded demo
    big = initialization_symmetry.symmetry_study("constant", seeds=(0,), value=0.05, steps=20, lr=0.1, train_images=256)
    assert big.alive[0, 1] == 0.0
    assert big.frozen[0, 1] == 1.0  # a dead ReLU unit gets no gradient at all


def test_a_dead_relu_unit_gets_no_gradient_and_leaky_relu_keeps_every_unit_learning():
    kwargs = {"seeds": (0, 1), "steps": 30, "train_images": 512, "eval_images": 128}
    relu = initialization_symmetry.symmetry_study("random", **kwargs)
    leaky = initialization_symmetry.symmetry_study("random", negative_slope=0.1, **kwargs)
    np.testing.assert_array_equal(relu.frozen, 1 - relu.alive)  # exactly the dead units, no other
    assert relu.frozen.max() > 0 and leaky.frozen.max() == 0
    assert leaky.alive.min() < 1  # units with only negative inputs exist, yet each still gets a gradient
    assert not np.allclose(leaky.eval_loss, relu.eval_loss) and np.all(leaky.eval_loss < math.log(10) / 2)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"scheme": "ones"}, ValueError, "scheme"),
    ({"scheme": "zero", "hidden": ()}, ValueError, "hidden"),
    ({"scheme": "zero", "seeds": ()}, ValueError, "seeds must hold at least one value"),
    ({"scheme": "zero", "seeds": 3}, TypeError, "seeds must be a sequence of ints"),
    ({"scheme": "zero", "hidden": (32, 0)}, ValueError, "every value in hidden must be an int >= 1"),
    ({"scheme": "zero", "seeds": (-1,)}, ValueError, "seed"),
    ({"scheme": "zero", "lr": "0.1"}, TypeError, "lr"),
    ({"scheme": "zero", "batch": 0}, ValueError, "batch"),
    ({"scheme": "zero", "train_images": 10, "batch": 64}, ValueError, "train_images"),
    ({"scheme": "zero", "negative_slope": -0.1}, ValueError, "negative_slope"),
    ({"scheme": "zero", "negative_slope": "0.1"}, TypeError, "negative_slope"),
])
def test_symmetry_study_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        initialization_symmetry.symmetry_study(**kwargs)


def test_drift_log_slopes():
    slopes = init.drift_log_slopes(2.0, width=100, depth=50, networks=40, batch=16)
    assert slopes.shape == (40,) and len(set(slopes.round(8))) == 40
    se = slopes.std(ddof=1) / math.sqrt(40)
    assert abs(slopes.mean() - initialization_theory.finite_width_log_slope(2.0, 100)) < 3 * se
    assert slopes.mean() + 2 * se < 0
    # the infinite-width slope of the gain dominates away from c = 2
    assert abs(init.drift_log_slopes(1.0, width=100, networks=4).mean() - 0.5 * math.log(0.5)) < 0.05
    with pytest.raises(ValueError, match="networks"):
        init.drift_log_slopes(networks=0)
    with pytest.raises(ValueError, match="depth"):
        init.drift_log_slopes(depth=1)
    with pytest.raises(TypeError, match="width"):
        init.drift_log_slopes(width=10.5)


def test_loss_figure_draws_median_and_band():
    from helpers.plots.initialization import loss_figure

    losses = np.array([[2.0, 1.0, 0.5], [2.2, 1.4, 0.7], [2.1, 1.2, 0.9]])
    fig = loss_figure({"random": losses, "one run": losses[0]})
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [2.1, 1.2, 0.7])
    assert "3 seeds" in ax.lines[0].get_label() and len(ax.collections) == 1
    with pytest.raises(ValueError, match="shape"):
        loss_figure({"bad": np.zeros((2, 2, 2))})


def test_variance_checks():
    checks = init.variance_checks(n=256, samples=2048)
    assert len(checks) == 9
    assert abs(checks[0].ratio - 1) < 0.05 and abs(checks[3].ratio - 1) < 0.02
    assert checks[1].ratio > 1.1 and abs(checks[2].ratio - 1) < 0.05


def test_torch_init_mlp():
    default = init.torch_init_mlp("default", depth=3, width=200, bias=True)
    w = default[1][0].weight.detach()
    assert float(w.var()) * 3 * 200 == pytest.approx(1.0, rel=0.05)
    assert float(w.abs().max()) <= 1 / math.sqrt(200)
    kaiming = init.torch_init_mlp("kaiming_normal", depth=3, width=30, bias=True)
    same = init.make_mlp(2.0, depth=3, width=30)
    for a, b in zip(init.hidden_weights(kaiming), init.hidden_weights(same), strict=True):
        assert torch.equal(a, b)
    assert float(kaiming[0][0].bias.detach().abs().sum()) == 0
    with pytest.raises(ValueError, match="init"):
        init.torch_init_mlp("orthogonal")


# ------------------------------------------------------------------ the panel
@pytest.fixture(scope="module")
def slider():
    from helpers.widgets.initialization import variance_slider

    return variance_slider()


@pytest.mark.parametrize("activation", init.ACTIVATIONS)
@pytest.mark.parametrize(("gain", "depth", "width"), [(0.25, 1, 10), (4.0, 100, 512), (0.25, 100, 10), (4.0, 1, 512)])
def test_slider_callback_at_extremes(slider, gain, depth, width, activation):
    png = slider.redraw(gain=gain, depth=depth, width=width, activation=activation)
    assert png.startswith(b"\x89PNG")
    ax_a, ax_g = slider.figure.axes[:2]
    assert len(ax_a.lines[0].get_xdata()) == depth
    assert len(ax_g.lines[0].get_ydata()) == depth
    lo, hi = ax_a.get_ylim()
    assert 0 < lo < hi and math.isfinite(hi)
    assert f"layer {depth}:" in slider.readout


def test_slider_shows_the_theory_trend(slider):
    slider.redraw(gain=1.0, depth=50, width=100, activation="relu")
    low = slider.figure.axes[0].lines[0].get_ydata()
    slider.redraw(gain=3.0, depth=50, width=100, activation="relu")
    high = slider.figure.axes[0].lines[0].get_ydata()
    assert low[0] / low[-1] > 1e3 and high[-1] / high[0] > 1e3
    theory = slider.figure.axes[0].lines[1].get_ydata()
    np.testing.assert_allclose(theory[1:] / theory[:-1], math.sqrt(1.5), rtol=1e-9)


def test_fast_profile_with_scales_equals_scaled_weights():
    x, y = init.mnist_batch(16)
    bank = init.WeightBank(max_depth=5, max_width=32, seed=1)
    ws, final = bank.weights(2.5, depth=5, width=30)
    raw, raw_final = bank.standard(5, 30)
    scales, final_scale = bank.scales(2.5, 5, 30)
    a1, g1 = init.fast_profile(x, y, ws, final, "relu")
    a2, g2 = init.fast_profile(x, y, raw, raw_final, "relu", scales=scales, final_scale=final_scale)
    np.testing.assert_allclose(a1, a2, rtol=1e-5)
    np.testing.assert_allclose(g1, g2, rtol=1e-4)


def test_measurements_run_on_one_thread_and_restore_the_setting():
    previous = torch.get_num_threads()
    seen = []
    original = init.mnist_batch

    def spy(batch=256):
        seen.append(torch.get_num_threads())
        return original(batch)

    init.mnist_batch = spy
    try:
        init.norm_profile(2.0, depth=2, width=8, batch=4)
        init.drift_log_slopes(2.0, width=8, depth=3, networks=2, batch=4)
    finally:
        init.mnist_batch = original
    assert seen == [1, 1]
    assert torch.get_num_threads() == previous


def test_mean_top_probability():
    assert init.mean_top_probability(3.0, batch=64) > 0.99        # saturated softmax
    assert 0.1 <= init.mean_top_probability(2.0, batch=64) < 0.5  # far from it
    assert init.mean_top_probability(2.0, batch=64, seed=1) != init.mean_top_probability(2.0, batch=64)
    with pytest.raises(ValueError, match="batch"):
        init.mean_top_probability(2.0, batch=0)
    with pytest.raises(ValueError, match="gain"):
        init.mean_top_probability(-1.0)


# ------------------------------------------------------------------ kaiming_normal, relu_second_moments
def test_kaiming_normal_shape_variance_and_generator():
    w = init.kaiming_normal(500, 200, torch.Generator().manual_seed(0))
    assert w.shape == (200, 500) and w.dtype == torch.float32
    assert abs(float(w.var()) * 500 / 2 - 1) < 0.03  # 100,000 draws: standard error 0.45 %
    assert abs(float(w.mean())) < 0.002
    again = init.kaiming_normal(500, 200, torch.Generator().manual_seed(0))
    other = init.kaiming_normal(500, 200, torch.Generator().manual_seed(1))
    assert torch.equal(w, again) and not torch.equal(w, other)


@pytest.mark.parametrize(("args", "error", "name"), [
    ((0, 10, torch.Generator()), ValueError, "fan_in"),
    ((10, 0, torch.Generator()), ValueError, "fan_out"),
    ((10.0, 10, torch.Generator()), TypeError, "fan_in"),
    ((10, 10, 0), TypeError, "generator"),
])
def test_kaiming_normal_bad_arguments(args, error, name):
    with pytest.raises(error, match=name):
        init.kaiming_normal(*args)


def test_relu_second_moments_values():
    m = initialization_theory.relu_second_moments(0.5, 3.0, 4)
    assert m.dtype == torch.float64 and m.shape == (4,)
    np.testing.assert_allclose(m.numpy(), [0.75, 1.125, 1.6875, 2.53125])
    np.testing.assert_allclose(initialization_theory.relu_second_moments(0.11, 2.0, 50).numpy(), 0.11)


def test_relu_second_moments_predicts_wide_networks():
    """Wide ReLU layers, 16 networks: the mean measured E[z_i^2] follows m_in (gain / 2)^i."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 64, 500, generator=g, dtype=torch.float64)  # 16 networks, 64 inputs each
    z, measured = x, []
    for _ in range(3):
        w = torch.stack([init.kaiming_normal(500, 500, g) for _ in range(16)]).double() * math.sqrt(3.0 / 2)
        z = torch.relu(torch.bmm(z, w.transpose(1, 2)))
        measured.append(float(z.pow(2).mean()))
    predicted = initialization_theory.relu_second_moments(float(x.pow(2).mean()), 3.0, 3).numpy()
    # one network's factor per layer fluctuates by sqrt(5/500) = 10 %; 16 networks: 2.5 %
    np.testing.assert_allclose(measured, predicted, rtol=0.15)  # forgetting the 1/2 is 2x per layer


@pytest.mark.parametrize(("args", "error", "name"), [
    ((-0.1, 2.0, 3), ValueError, "second_moment_in"),
    ((0.1, 0.0, 3), ValueError, "gain"),
    ((0.1, 2.0, 0), ValueError, "depth"),
    ((0.1, 2.0, 3.0), TypeError, "depth"),
    (("a", 2.0, 3), TypeError, "second_moment_in"),
])
def test_relu_second_moments_bad_arguments(args, error, name):
    with pytest.raises(error, match=name):
        initialization_theory.relu_second_moments(*args)


def test_make_mlp_weight_init_scales_the_draw_by_sqrt_gain_over_2():
    calls = []

    def sampler(fan_in, fan_out, generator):
        calls.append((fan_in, fan_out))
        return init.kaiming_normal(fan_in, fan_out, generator)

    model = init.make_mlp(3.0, depth=3, width=20, seed=4, weight_init=sampler)
    assert calls == [(784, 20), (20, 20), (20, 20), (20, 10)]
    plain = init.make_mlp(3.0, depth=3, width=20, seed=4)
    for a, b in zip(init.hidden_weights(model), init.hidden_weights(plain), strict=True):
        torch.testing.assert_close(a, b)  # same draws, same variance 3 / n_in


@pytest.mark.parametrize(("weight_init", "error", "match"), [
    ("kaiming", TypeError, "weight_init must be a function"),
    (lambda i, o, g: torch.randn(i, o, generator=g), ValueError, "shape"),
    (lambda i, o, g: torch.full((o, i), float("nan")), ValueError, "NaN"),
    (lambda i, o, g: [[0.0] * i] * o, TypeError, "torch.Tensor"),
])
def test_make_mlp_bad_weight_init(weight_init, error, match):
    with pytest.raises(error, match=match):
        init.make_mlp(2.0, depth=2, width=5, weight_init=weight_init)


def test_kaiming_reinit_reaches_nested_layers_and_zeroes_biases():
    model = init.torch_init_mlp("default", depth=3, width=300, bias=True, seed=0)
    same = init.kaiming_reinit(model, torch.Generator().manual_seed(0))
    assert same is model
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 4
    for m in linears:
        assert bool((m.bias == 0).all())
    w = linears[1].weight.detach()  # 300 x 300: 90,000 draws
    assert abs(float(w.var()) * 300 / 2 - 1) < 0.03  # the default's variance is 1/(3 n_in): 6x smaller
    reference = init.torch_init_mlp("kaiming_normal", depth=3, width=300, bias=True, seed=0)
    for a, b in zip(linears, [m for m in reference.modules() if isinstance(m, torch.nn.Linear)], strict=True):
        torch.testing.assert_close(a.weight, b.weight)  # the same draws as nn.init.kaiming_normal_


def test_kaiming_reinit_bad_arguments():
    with pytest.raises(TypeError, match="model"):
        init.kaiming_reinit("model", torch.Generator())
    with pytest.raises(TypeError, match="generator"):
        init.kaiming_reinit(torch.nn.Linear(2, 2), 0)


# ------------------------------------------------------------------ section 2: the first SGD steps (c = 3 and NaN)
def test_sgd_first_steps_start_from_make_mlp_and_blow_up_only_at_large_gain_and_rate():
    run = init.sgd_first_steps([(2.0, 1e-2), (3.0, 1e-2), (3.0, 1e-6)], seeds=(0, 1), steps=2, batch=16)
    assert run.losses.shape == (3, 2, 3) and run.first_change.shape == (3, 2)
    assert run.settings == ((2.0, 1e-2), (3.0, 1e-2), (3.0, 1e-6)) and run.seeds == (0, 1)
    x, y = init.mnist_batch(16)
    for k, seed in enumerate((0, 1)):  # the starting loss is make_mlp's own
        loss = torch.nn.functional.cross_entropy(init.make_mlp(3.0, 50, 100, seed=seed)(x), y)
        assert run.losses[1, k, 0] == pytest.approx(float(loss.detach()), rel=1e-4)
    assert np.isfinite(run.losses[0]).all() and (run.first_nonfinite_step[0] == 0).all()
    assert (run.first_nonfinite_step[1] >= 1).all()
    assert (run.first_nonfinite_step[2] == 0).all()
    # the first step's size is lr * ||grad|| / ||W||: proportional to lr for the same network
    np.testing.assert_allclose(run.first_change[1] / run.first_change[2], 1e4, rtol=1e-4)


def test_first_nonfinite_step_counts_from_one():
    losses = np.array([[[2.0, 1.0, np.nan, np.nan], [2.0, 1.0, 0.5, 0.4], [2.0, np.inf, np.nan, np.nan]]])
    run = init.FirstSteps(settings=((1.0, 0.1),), seeds=(0, 1, 2), losses=losses, first_change=np.zeros((1, 3)))
    assert run.first_nonfinite_step.tolist() == [[2, 0, 1]]


@pytest.mark.parametrize(("settings", "error", "match"), [
    ([], TypeError, "settings"),
    ("2, 0.1", TypeError, "settings"),
    ([(2.0,)], TypeError, "pairs"),
    ([(0.0, 0.1)], ValueError, "gain"),
    ([(2.0, -1.0)], ValueError, "lr"),
])
def test_sgd_first_steps_bad_settings(settings, error, match):
    with pytest.raises(error, match=match):
        init.sgd_first_steps(settings)


def test_sgd_first_steps_bad_sizes():
    with pytest.raises(ValueError, match="steps"):
        init.sgd_first_steps([(2.0, 0.1)], steps=0)
    with pytest.raises(ValueError, match="seeds"):
        init.sgd_first_steps([(2.0, 0.1)], seeds=())


# ------------------------------------------------------------------ section 4: XOR and the handout's affine activation
def test_xor_losses_affine_is_stuck_at_ln2_and_tanh_fits():
    affine = init.xor_losses("affine", seeds=(0, 1), steps=150)
    assert affine.shape == (2,)
    assert (affine > math.log(2) - 1e-4).all() and (affine < 0.70).all()
    assert (init.xor_losses("tanh", seeds=(0, 1), steps=150) < 0.05).all()
    assert (init.xor_losses("relu", seeds=(0, 1), steps=300) < 0.1).all()
    again = init.xor_losses("tanh", seeds=(3,), steps=5)
    np.testing.assert_array_equal(again, init.xor_losses("tanh", seeds=(3,), steps=5))


def test_xor_losses_bad_arguments():
    with pytest.raises(ValueError, match="activation"):
        init.xor_losses("sigmoid")
    with pytest.raises(ValueError, match="steps"):
        init.xor_losses("tanh", steps=0)
    with pytest.raises(ValueError, match="lr"):
        init.xor_losses("tanh", lr=0.0)


# ------------------------------------------------------------------ mean field: tanh's fixed point, backward factor
def test_derivative_second_moment():
    t = initialization_theory
    assert t.derivative_second_moment("relu", 3.0) == pytest.approx(0.5)
    assert t.derivative_second_moment("leaky_relu", 1.0, 0.1) == pytest.approx(1.01 / 2)
    assert t.derivative_second_moment("linear", 2.0) == pytest.approx(1.0)
    assert t.derivative_second_moment("tanh", 1e-12) == pytest.approx(1.0, abs=1e-9)
    assert t.derivative_second_moment("sigmoid", 1e-12) == pytest.approx(1 / 16, rel=1e-6)
    sample = torch.randn(2_000_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    monte_carlo = float((1 - torch.tanh(sample) ** 2).pow(2).mean())
    assert t.derivative_second_moment("tanh", 1.0) == pytest.approx(monte_carlo, rel=2e-3)


def test_fixed_point_and_backward_factor_of_tanh():
    t = initialization_theory
    q = t.fixed_point_variance(25 / 9)
    assert q == pytest.approx(25 / 9 * float(t.second_moment("tanh", q)), rel=1e-9)  # a fixed point
    assert 1.1 < q < 1.3
    assert t.backward_factor(25 / 9, "tanh", q) == pytest.approx(1.10, abs=0.005)
    assert t.fixed_point_variance(1.0) < 1e-3  # Xavier: the signal fades
    assert t.backward_factor(2.0, "relu", 7.0) == pytest.approx(1.0)
    assert t.backward_factor(1.0, "tanh", 0.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="activation"):
        t.fixed_point_variance(2.0, "relu")
    with pytest.raises(ValueError, match="gain"):
        t.backward_factor(0.0, "tanh", 1.0)


def test_tanh_net_at_gain_five_thirds_grows_its_gradient_as_the_mean_field_predicts():
    p = norm_profile(25 / 9, depth=30, activation="tanh", seed=1)
    t = initialization_theory
    q = t.fixed_point_variance(25 / 9)
    assert p.activation_norms[-1] == pytest.approx(math.sqrt(100 * q / (25 / 9)), rel=0.06)
    per_layer = (p.grad_norms[1] / p.grad_norms[-1]) ** (1 / 28)
    assert per_layer == pytest.approx(t.backward_factor(25 / 9, "tanh", q), rel=0.03)


def test_leaky_signals_keeps_each_signal_with_its_own_fan():
    """The forward std sqrt(2 / ((1 + a²) n_in)) keeps E[z²] from layer to layer; the backward
    one, with n_out, keeps E[g²]; in a widening-then-narrowing net each moves the other."""
    def forward_std(n_in, n_out, a):
        return math.sqrt(2 / ((1 + a * a) * n_in))

    def backward_std(n_in, n_out, a):
        return math.sqrt(2 / ((1 + a * a) * n_out))

    widths = [64, 256, 64, 256]
    fwd, bwd = init.leaky_signals(forward_std, widths, batch=512, seed=1)
    assert fwd.shape == bwd.shape == (3,)
    np.testing.assert_allclose(fwd[1:] / fwd[:-1], 1, rtol=0.15)
    fwd_b, bwd_b = init.leaky_signals(backward_std, widths, batch=512, seed=1)
    np.testing.assert_allclose(bwd_b[:-1] / bwd_b[1:], 1, rtol=0.15)
    assert bwd[0] / bwd[1] == pytest.approx(4, rel=0.3)  # the forward std moves the gradient ×4 in 256 -> 64


@pytest.mark.parametrize(("kwargs", "error"), [({"widths": [64]}, ValueError), ({"std": 1.0}, TypeError),
                                                ({"batch": 0}, ValueError), ({"a": "x"}, TypeError)])
def test_leaky_signals_names_a_bad_argument(kwargs, error):
    args = {"std": lambda n_in, n_out, a: 0.1, "widths": [4, 4], **kwargs}
    with pytest.raises(error, match=next(iter(kwargs))):
        init.leaky_signals(**args)
