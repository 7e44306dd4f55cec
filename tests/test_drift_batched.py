"""studies._batched_mlp (the batched trainer of notebook 02's studies): S MLPs as one model must
be S ordinary MLPs; and helpers.drift's backward-growth measurement."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from helpers.data import load_mnist
from helpers.drift import backward_growth, make_normed_mlp, rms_over_std
from helpers.initialization import hidden_weights, make_mlp
from helpers.training import train
from studies._batched_mlp import (
    BatchedMLP,
    activation_norms,
    batched_error,
    draw_weights,
    relative_change,
    train_batched,
    weight_variances,
    window_means,
)


@pytest.mark.parametrize("gain, seed, depth, width", [(2.0, 0, 3, 16), (1.7, 4, 5, 8)])
def test_draw_weights_are_make_mlps(gain: float, seed: int, depth: int, width: int) -> None:
    ref = make_mlp(gain, depth, width, seed=seed)
    drawn = draw_weights(gain, seed, depth, width)
    expected = hidden_weights(ref) + [ref[-1].weight]
    assert len(drawn) == len(expected) == depth + 1
    for w, r in zip(drawn, expected, strict=True):
        torch.testing.assert_close(w, r.detach(), rtol=0, atol=0)


@pytest.mark.parametrize("norm", ["none", "layernorm"])
def test_batched_model_equals_its_members_outputs_and_gradients(norm: str) -> None:
    gains, seeds = [1.7, 2.0, 2.3], [0, 1, 2]
    model = BatchedMLP(gains, seeds, depth=6, width=20, norm=norm)
    x, y = load_mnist("train", limit=16)
    logits = model(x)
    assert logits.shape == (3, 16, 10)
    losses = torch.stack([F.cross_entropy(logits[k], y) for k in range(3)])
    grads = torch.autograd.grad(losses.sum(), list(model.parameters()))
    for k, (g, s) in enumerate(zip(gains, seeds, strict=True)):
        ref = make_normed_mlp(g, norm, depth=6, width=20, seed=s)
        # the batched products sum in another order than the member's, and 6 LayerNorms of width 20
        # amplify that float32 rounding (1e-7) to ~1e-5; a wrong member would be off by > 0.1
        torch.testing.assert_close(logits[k], ref(x), rtol=1e-4, atol=1e-4)
        ref_grads = torch.autograd.grad(F.cross_entropy(ref(x), y), hidden_weights(ref) + [ref[-1].weight])
        for layer, ref_grad in enumerate(ref_grads):
            torch.testing.assert_close(grads[layer][k].t(), ref_grad, rtol=1e-3,
                                       atol=1e-4 * float(ref_grad.abs().max()))


def test_batched_training_is_separate_sgd_runs_with_the_same_batches() -> None:
    x, y = load_mnist("train", limit=400)
    model = BatchedMLP([2.0, 1.5], [3, 4], depth=4, width=16)
    seen = []
    run = train_batched(model, x, y, lr=[0.05, 0.02], steps=30, batch_size=20, seed=7, on_step=seen.append)
    assert seen == list(range(1, 31))
    for k, (g, s, lr) in enumerate(((2.0, 3, 0.05), (1.5, 4, 0.02))):
        ref = make_normed_mlp(g, depth=4, width=16, seed=s)
        ref_run = train(ref, x, y, lr=lr, epochs=2, batch_size=20, max_steps=30, seed=7, progress=False)
        np.testing.assert_allclose(run.losses[:, k], ref_run.losses, rtol=1e-4)
        for w, r in zip(model.hidden_weights() + [model.weights[-1].detach()],
                        hidden_weights(ref) + [ref[-1].weight], strict=True):
            torch.testing.assert_close(w[k].t(), r.detach(), rtol=1e-4, atol=1e-5)
    assert run.losses.shape == (30, 2) and run.tracked_norms.shape == (0, 2, 0)


def test_tracked_norms_are_the_training_batch_norms() -> None:
    x, y = load_mnist("train", limit=200)
    model = BatchedMLP([2.0], [0], depth=3, width=8)
    before = activation_norms(model, x[torch.randperm(200, generator=torch.Generator().manual_seed(0))[:20]])
    run = train_batched(model, x, y, lr=0.01, steps=12, batch_size=20, track_layers=(1, 3), track_every=5)
    assert run.tracked_steps.tolist() == [0, 5, 10] and run.tracked_norms.shape == (3, 1, 2)
    np.testing.assert_allclose(run.tracked_norms[0, 0], before[0, [0, 2]], rtol=1e-5)


def test_measurements() -> None:
    model = BatchedMLP([2.0, 3.0], [0, 0], depth=3, width=30)
    x, y = load_mnist("train", limit=50)
    var = weight_variances(model)
    assert var.shape == (2, 3)
    np.testing.assert_allclose(var[1] / var[0], 1.5, rtol=1e-5)  # same draws, scaled by √(3/2)
    norms = activation_norms(model, x)
    assert norms.shape == (2, 3) and np.all(norms[1] > norms[0])
    err = batched_error(model, x, y, batch_size=7)
    assert err.shape == (2,) and err[0] == err[1]  # a ReLU network scaled by a constant: same arg-max
    ref = make_mlp(2.0, 3, 30, seed=0)
    assert err[0] == pytest.approx(float((ref(x).argmax(1) != y).double().mean()))
    initial = [w.clone() for w in model.hidden_weights()]
    assert np.all(relative_change(model, initial) == 0)
    with torch.no_grad():
        model.weights[1].mul_(1.1)
    np.testing.assert_allclose(relative_change(model, initial)[:, 1], 0.1, rtol=1e-5)


def test_residual_blocks_add_their_input() -> None:
    x = torch.rand(4, 784)
    for norm in ("layernorm", "none"):
        model = BatchedMLP([2.0], [0], depth=3, width=8, norm=norm, residual=True)
        h = model.hidden(x)
        z = torch.relu(h[0] @ model.weights[1][0])
        assert torch.allclose(h[1], h[0] + (F.layer_norm(z, (8,)) if norm == "layernorm" else z))


def test_rms_over_std() -> None:
    v = torch.tensor([[1.0, 3.0], [2.0, 2.0 + 1e-3]])
    assert float(rms_over_std(v[:1], -1)) == pytest.approx(math.sqrt(5))


def test_window_means() -> None:
    values = np.arange(14, dtype=float).reshape(7, 2)
    np.testing.assert_allclose(window_means(values, 3), [[2, 3], [8, 9]])
    values[1, 0] = np.nan
    assert np.isnan(window_means(values, 3)[0, 0]) and window_means(values, 3)[1, 0] == 8
    with pytest.raises(ValueError, match="window must be <= the number of steps"):
        window_means(values, 8)
    with pytest.raises(ValueError, match="window must be an int >= 1"):
        window_means(values, 0)


def test_backward_growth_per_block_is_about_the_rms_over_std() -> None:
    grad, ratios = backward_growth(2.0, "layernorm", depth=20, batch=128)
    assert grad.shape == ratios.shape == (20,)
    # a ReLU of a centred Gaussian: RMS / std = sqrt(pi / (pi - 1))
    assert np.median(ratios[1:]) == pytest.approx(math.sqrt(math.pi / (math.pi - 1)), rel=0.02)
    assert grad[0] / grad[-1] > 1.1 ** 19
    with pytest.raises(ValueError, match=r"norm must be one of \('layernorm', 'batchnorm'\)"):
        backward_growth(2.0, "none")


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(gains=[2.0], seeds=[0, 1]), ValueError, "equal length"),
    (dict(gains=2.0, seeds=[0]), TypeError, "gains must be a sequence"),
    (dict(gains=[2.0], seeds="0"), TypeError, "seeds must be a sequence"),
    (dict(gains=[], seeds=[]), ValueError, "gains must hold at least one value"),
    (dict(gains=[-1.0], seeds=[0]), ValueError, "every value in gains must be a finite number > 0"),
    (dict(gains=["a"], seeds=[0]), TypeError, "every value in gains must be a finite number > 0"),
    (dict(gains=[2.0], seeds=[-1]), ValueError, "every value in seeds must be an int >= 0"),
    (dict(gains=[2.0], seeds=[0.5]), TypeError, "every value in seeds must be an int >= 0"),
    (dict(gains=[2.0], seeds=[0], norm="batchnorm"), ValueError, "norm must be one of"),
    (dict(gains=[2.0], seeds=[0], residual=1), TypeError, "residual must be True or False"),
])
def test_batched_model_bad_inputs(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        BatchedMLP(depth=2, width=4, **kwargs)


def test_train_batched_bad_inputs() -> None:
    x, y = load_mnist("train", limit=50)
    model = BatchedMLP([2.0, 2.0], [0, 1], depth=2, width=4)
    with pytest.raises(TypeError, match="model must be a BatchedMLP"):
        train_batched(make_normed_mlp(2.0, depth=2, width=4), x, y, lr=0.1, steps=1)
    with pytest.raises(ValueError, match="lr must be a number > 0 or one rate > 0 per member"):
        train_batched(model, x, y, lr=[0.1], steps=1)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        train_batched(model, x, y, lr=-0.1, steps=1)
    with pytest.raises(TypeError, match="lr must be a sequence"):
        train_batched(model, x, y, lr="0.1", steps=1)
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        train_batched(model, x, y, lr=0.1, steps=0)
    with pytest.raises(ValueError, match="batch_size must be <="):
        train_batched(model, x, y, lr=0.1, steps=1, batch_size=51)
    with pytest.raises(ValueError, match="track_layers must be hidden layers"):
        train_batched(model, x, y, lr=0.1, steps=1, track_layers=(3,))
    with pytest.raises(ValueError, match="x and y must have the same length"):
        train_batched(model, x, y[:10], lr=0.1, steps=1)
    with pytest.raises(ValueError, match=r"x must be \[B, 784\]"):
        model(torch.zeros(3, 2, 784))
    with pytest.raises(ValueError, match="depth must be an int >= 1"):
        draw_weights(2.0, 0, depth=0)


# ------------------------------------------------- the studies' extra measurements (notebook 02)


def test_update_cosine_and_random_change_norms() -> None:
    from studies.weights_move import random_change_norms, update_cosine

    model = BatchedMLP([2.0, 2.0], [0, 1], depth=3, width=8)
    initial = [w.clone() for w in model.hidden_weights()]
    with torch.no_grad():                         # member 0: W ← 1.1 W (along W_0); member 1: orthogonal-ish
        model.weights[0][0].mul_(1.1)
        model.weights[1][0].mul_(0.9)
    cosine = update_cosine(model, initial)
    assert cosine.shape == (2, 3)
    np.testing.assert_allclose(cosine[0, 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(cosine[0, 1], -1.0, atol=1e-6)
    x = torch.rand(6, 784)
    trained = [w.clone() for w in model.hidden_weights()]
    before = activation_norms(model, x)
    norms = random_change_norms(model, initial, x, draws=2, seed=0)
    assert norms.shape == (2, 2, 3) and np.isfinite(norms).all()
    for w, t in zip(model.hidden_weights(), trained, strict=True):   # the model is left as it was
        torch.testing.assert_close(w, t, rtol=0, atol=0)
    np.testing.assert_allclose(activation_norms(model, x), before)
    assert not np.allclose(norms[0], norms[1])                       # two different random draws


def test_similarity_kept() -> None:
    from studies.layernorm_depth import similarity_kept

    x, _ = load_mnist("train", limit=12)
    model = BatchedMLP([2.0, 2.0], [0, 1], depth=1, width=200)
    kept = similarity_kept(model, x)
    assert kept.shape == (2,) and np.all(kept > 0.8)                 # one wide random ReLU layer keeps most of it
    deep = BatchedMLP([2.0], [0], depth=40, width=30, norm="layernorm")
    assert similarity_kept(deep, x)[0] < kept.min()
