"""Tests for helpers.initialization (notebook 01) and its plots and panel."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers import initialization as init
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
    with pytest.raises((TypeError, ValueError), match=name):
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
    for wa, wb in zip(a.parameters(), b.parameters()):
        assert torch.equal(wa, wb)


def test_mnist_batch_returns_copies():
    x, y = init.mnist_batch(4)
    x.zero_()
    x2, _ = init.mnist_batch(4)
    assert float(x2.sum()) > 0 and x2.shape == (4, 784) and y.shape == (4,)
