"""helpers.drift's batched networks: S MLPs as one model must be S ordinary MLPs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from helpers.data import load_mnist
from helpers.drift import (
    BatchedMLP,
    backward_growth,
    batched_activation_norms,
    batched_error,
    batched_weight_variances,
    drift_study,
    make_normed_mlp,
    rms_over_std,
    train_batched,
)
from helpers.initialization import hidden_weights
from helpers.training import train


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
        torch.testing.assert_close(model.member(k)(x), ref(x), rtol=1e-4, atol=1e-4)


def test_batched_training_is_separate_sgd_runs() -> None:
    x, y = load_mnist("train", limit=400)
    model = BatchedMLP([2.0, 1.5], [3, 4], depth=4, width=16)
    run = train_batched(model, x, y, lr=[0.05, 0.02], steps=30, batch_size=20, warmup_steps=5, seed=7)
    for k, (g, s, lr) in enumerate(((2.0, 3, 0.05), (1.5, 4, 0.02))):
        ref = make_normed_mlp(g, depth=4, width=16, seed=s)
        ref_run = train(ref, x, y, lr=lr, epochs=2, batch_size=20, warmup_steps=5, max_steps=30,
                        seed=7, progress=False)
        np.testing.assert_allclose(run.losses[:, k], ref_run.losses, rtol=1e-4)
        torch.testing.assert_close(model.member(k)(x), ref(x), rtol=1e-4, atol=1e-5)
    assert run.steps == 30 and run.final_loss().shape == (2,)


def test_batched_measurements() -> None:
    model = BatchedMLP([2.0, 3.0], [0, 0], depth=3, width=30)
    x, y = load_mnist("train", limit=50)
    var = batched_weight_variances(model)
    assert var.shape == (2, 3)
    np.testing.assert_allclose(var[1] / var[0], 1.5, rtol=1e-5)  # same draws, scaled by √(3/2)
    norms = batched_activation_norms(model, x)
    assert norms.shape == (2, 3) and np.all(norms[1] > norms[0])
    err = batched_error(model, x, y, batch_size=7)
    assert err.shape == (2,) and np.all((0 <= err) & (err <= 1))


def test_drift_study_records_every_member() -> None:
    x, y = load_mnist("train", limit=600)
    study = drift_study((1.5, 2.0), range(2), x, y, lr={1.5: 0.05, 2.0: 0.05}, steps=40, probe=x[:64],
                        test=(x[:200], y[:200]), depth=4, width=32, batch_size=30, track_layers=(1, 4),
                        track_every=10)
    assert study.gains.tolist() == [1.5, 1.5, 2.0, 2.0] and study.seeds.tolist() == [0, 1, 0, 1]
    assert study.relative_change.shape == (4, 4) and np.all(study.relative_change > 0)
    assert study.run.tracked_norms.shape == (4, 4, 2)
    assert study.members(2.0).tolist() == [2, 3] and study.gain_values == [1.5, 2.0]
    assert np.all(study.run.test_error < study.run.initial_test_error)
    np.testing.assert_allclose(study.variance_ratio, study.weight_var_final / study.weight_var_init)
    with pytest.raises(ValueError, match="gain must be one of"):
        study.members(3.0)
    with pytest.raises(ValueError, match="lr must give a learning rate for every gain"):
        drift_study((1.5, 2.0), range(1), x, y, lr={1.5: 0.1}, steps=1, probe=x[:8], depth=2, width=8)


def test_residual_and_rms_over_std() -> None:
    model = BatchedMLP([2.0], [0], depth=3, width=8, norm="layernorm", residual=True)
    x = torch.rand(4, 784)
    h = model.hidden(x)
    assert torch.allclose(h[1], h[0] + F.layer_norm(torch.relu(h[0] @ model.weights[1][0]), (8,)))
    with pytest.raises(ValueError, match="no nn.Sequential counterpart"):
        model.member(0)
    v = torch.tensor([[1.0, 3.0], [2.0, 2.0 + 1e-3]])
    assert float(rms_over_std(v[:1], -1)) == pytest.approx(math.sqrt(5))


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
    with pytest.raises(ValueError, match="lr must be a number > 0 or one per member"):
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
    with pytest.raises(ValueError, match=r"x must be \[B, in\]"):
        model(torch.zeros(3, 2, 784))
    with pytest.raises(ValueError, match=r"k must be an int in \[0, 1\]"):
        model.member(2)
    with pytest.raises(TypeError, match="k must be an int"):
        model.member(1.0)


def test_layernorm_sweep_groups_members_by_learning_rate() -> None:
    from helpers.drift import layernorm_sweep

    x, y = load_mnist("train", limit=300)
    out = layernorm_sweep(3, (0.05, 0.01), range(3), x, y, steps=20, batch_size=30, test=(x[:100], y[:100]))
    assert list(out) == [0.05, 0.01]
    assert out[0.05].losses.shape == (20, 3) and out[0.01].test_error.shape == (3,)
    assert out[0.05].final_loss().shape == (3,)
    # each column is the seed's own network: the same seed and lr alone gives the same losses
    alone = layernorm_sweep(3, (0.01,), [1], x, y, steps=20, batch_size=30)
    np.testing.assert_allclose(alone[0.01].losses[:, 0], out[0.01].losses[:, 1], rtol=1e-4)
    with pytest.raises(ValueError, match="lrs must hold at least one value"):
        layernorm_sweep(3, (), range(2), x, y, steps=1)


def test_study_figures() -> None:
    from helpers.plots import drift as plots

    x, y = load_mnist("train", limit=300)
    study = drift_study((1.5, 2.0), range(2), x, y, lr=0.05, steps=20, probe=x[:32], depth=4, width=16,
                        batch_size=30, track_layers=(1, 4), track_every=5)
    for fig in (plots.study_weights_figure(study), plots.study_profile_figure(study),
                plots.study_drift_figure(study)):
        assert fig.axes and all(ax.get_title() for ax in fig.axes)
        assert all(ax.get_legend() is not None for ax in fig.axes)
    factors = {"layernorm": np.full((5, 9), 1.25)}
    fig = plots.backward_growth_figure(factors, {"layernorm": np.full((5, 9), 1.21)})
    assert len(fig.axes[0].get_lines()) == 3
    fig = plots.loss_bands_figure({"a": np.full((30, 5), math.log(10)), "b": np.full((30, 5), 0.5)})
    assert fig.axes[0].get_ylim() == (0, 2.6)
