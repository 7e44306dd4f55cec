"""helpers.attention_training: scaled vs unscaled attention in the tiny Transformer (notebook 04)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from helpers.attention_training import ScalingComparison, init_logit_std, train_scaling_comparison
from helpers.plots.attention import training_figure
from helpers.transformer import TinyTransformer, reversal_task


def _tokens() -> torch.Tensor:
    return reversal_task(64, 4, seed=0).tokens


def test_init_logit_std_matches_the_scale() -> None:
    tokens = _tokens()
    scaled = TinyTransformer("pre", n_layers=1, d_model=64, n_heads=1, max_len=8, seed=0)
    unscaled = TinyTransformer("pre", n_layers=1, d_model=64, n_heads=1, max_len=8, seed=0,
                               attention_scale=1.0)
    s, u = init_logit_std(scaled, tokens), init_logit_std(unscaled, tokens)
    assert u / s == pytest.approx(8.0, rel=1e-5)  # same weights, factor √64
    # Xavier-uniform qkv of shape 64 x 192 has variance 1/128, so Var(q) ≈ 0.5 = s
    assert 0.3 < s < 0.7


def test_init_logit_std_rejects_bad_inputs() -> None:
    model = TinyTransformer("pre", n_layers=1, d_model=8, n_heads=2, max_len=8, seed=0)
    with pytest.raises(TypeError, match="model"):
        init_logit_std(torch.nn.Linear(2, 2), _tokens())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tokens must have 2 dimension"):
        init_logit_std(model, _tokens()[0])
    with pytest.raises(TypeError, match="tokens must be a torch.Tensor"):
        init_logit_std(model, _tokens().tolist())  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def small() -> ScalingComparison:
    return train_scaling_comparison(head_sizes=(8, 16), seeds=(0, 1), steps=6, batch_size=4, length=3)


def test_train_scaling_comparison_shapes_and_pairs(small: ScalingComparison) -> None:
    assert small.head_sizes == (8, 16) and small.seeds == (0, 1) and small.steps == 6
    assert set(small.losses) == {(8, True), (8, False), (16, True), (16, False)}
    for key, curves in small.losses.items():
        assert curves.shape == (2, 6) and np.isfinite(curves).all()
        ratio = small.logit_std[key[0], False] / small.logit_std[key[0], True]
        np.testing.assert_allclose(ratio, math.sqrt(key[0]), rtol=1e-5)
    # at step 1 both versions of a seed have the same weights but different scales: losses differ
    assert not np.allclose(small.losses[16, True][:, 0], small.losses[16, False][:, 0])
    window = small.window_loss(8, True, 2, 6)
    np.testing.assert_allclose(window, small.losses[8, True][:, 2:6].mean(axis=1))
    fig = training_figure(small, small)
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    assert all(ax.get_xlabel() and ax.get_ylabel() and ax.get_title() for ax in fig.axes)


def test_training_figure_rejects_non_comparisons() -> None:
    with pytest.raises(TypeError, match="ScalingComparison"):
        training_figure()
    with pytest.raises(TypeError, match="ScalingComparison"):
        training_figure({"losses": []})  # type: ignore[arg-type]


def test_scaled_attention_learns_faster_at_a_large_head() -> None:
    run = train_scaling_comparison(head_sizes=(128,), seeds=(0,), steps=40, length=4)
    assert run.window_loss(128, True, 30, 40)[0] < run.window_loss(128, False, 30, 40)[0]


def test_window_loss_rejects_bad_windows(small: ScalingComparison) -> None:
    with pytest.raises(ValueError, match="start"):
        small.window_loss(8, True, 4, 4)
    with pytest.raises(ValueError, match="stop"):
        small.window_loss(8, True, 0, 7)
    with pytest.raises(KeyError, match="head size"):
        small.window_loss(32, True, 0, 2)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"head_sizes": ()}, ValueError, "head_sizes"),
    ({"head_sizes": (0,)}, ValueError, "head_sizes"),
    ({"head_sizes": 64}, TypeError, "head_sizes"),
    ({"seeds": (-1,)}, ValueError, "seeds"),
    ({"steps": 0}, ValueError, "steps"),
    ({"lr": 0.0}, ValueError, "lr"),
    ({"lr": "big"}, TypeError, "lr"),
    ({"norm": "middle"}, ValueError, "norm"),
    ({"length": 1}, ValueError, "length"),
])
def test_train_scaling_comparison_rejects_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        train_scaling_comparison(**kwargs)
