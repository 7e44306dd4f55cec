"""helpers.attention_training and the study's batched trainer: scaled vs unscaled attention (notebook 04)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from helpers.attention_training import (
    BATCH_SIZE,
    VARIANTS,
    attention_model,
    init_logit_std,
    train_attention,
    training_task,
    variant_model,
)
from helpers.plots.attention import lr_sweep_figure, training_figure
from helpers.training import train
from helpers.transformer import TinyTransformer, reversal_task, sequence_loss
from studies._attention_batched import batch_orders, train_together


def _tokens() -> torch.Tensor:
    return reversal_task(64, 4, seed=0).tokens


def test_init_logit_std_matches_the_scale() -> None:
    tokens = _tokens()
    scaled = attention_model(64, True, seed=0, length=4)
    unscaled = attention_model(64, False, seed=0, length=4)
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


def test_attention_model_one_head_of_size_d_same_weights_both_scalings() -> None:
    scaled, unscaled = attention_model(32, True, seed=3), attention_model(32, False, seed=3)
    block = scaled.blocks[0]
    assert block.attn.n_heads == 1 and block.attn.qkv.in_features == 32  # type: ignore[union-attr]
    assert block.attn.attention_scale is None  # type: ignore[union-attr]
    assert unscaled.blocks[0].attn.attention_scale == 1.0  # type: ignore[union-attr]
    for (name, a), (_, b) in zip(scaled.named_parameters(), unscaled.named_parameters(), strict=True):
        assert torch.equal(a, b), name


def test_qk_init_scale_multiplies_only_the_query_and_key_projections() -> None:
    plain, small = attention_model(16, False, seed=2), attention_model(16, False, seed=2, qk_init_scale=0.5)
    for (name, a), (_, b) in zip(plain.named_parameters(), small.named_parameters(), strict=True):
        if name == "blocks.0.attn.qkv.weight":
            torch.testing.assert_close(b[:32], 0.5 * a[:32])  # W_Q, W_K
            assert torch.equal(b[32:], a[32:])  # W_V untouched
        else:
            assert torch.equal(a, b), name
    tokens = _tokens()
    ratio = init_logit_std(small, tokens) / init_logit_std(plain, tokens)
    assert ratio == pytest.approx(0.25, rel=1e-5)  # scores × 0.5²


@pytest.mark.parametrize("head_size", [16, 64])
def test_variants_scaled_unscaled_and_matched(head_size: int) -> None:
    tokens = _tokens()
    models = {v: variant_model(head_size, v, seed=1, length=4) for v in VARIANTS}
    stds = {v: init_logit_std(m, tokens) for v, m in models.items()}
    assert stds["matched"] == pytest.approx(stds["scaled"], rel=1e-5)  # the same initial logits
    assert stds["unscaled"] / stds["scaled"] == pytest.approx(head_size**0.5, rel=1e-5)
    assert models["matched"].blocks[0].attn.attention_scale == 1.0  # type: ignore[union-attr]
    assert models["scaled"].blocks[0].attn.attention_scale is None  # type: ignore[union-attr]
    with torch.no_grad():
        torch.testing.assert_close(models["matched"](tokens), models["scaled"](tokens), rtol=1e-4, atol=1e-5)


def test_variant_model_and_qk_init_scale_reject_bad_arguments() -> None:
    with pytest.raises(ValueError, match="variant"):
        variant_model(16, "tiny")
    with pytest.raises(ValueError, match="qk_init_scale"):
        attention_model(16, False, qk_init_scale=0.0)
    with pytest.raises(TypeError, match="head_size"):
        variant_model(16.0, "scaled")  # type: ignore[arg-type]


def test_train_attention_takes_a_variant_name() -> None:
    matched = train_attention(16, "matched", seed=1, steps=3, progress=False)
    scaled = train_attention(16, "scaled", seed=1, steps=3, progress=False)
    assert matched.losses[0] == pytest.approx(scaled.losses[0], rel=1e-4)  # same function at step 1
    with pytest.raises(ValueError, match="variant"):
        train_attention(16, "tiny", steps=2, progress=False)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"head_size": 0}, ValueError, "head_size"),
    ({"head_size": 8.0}, TypeError, "head_size"),
    ({"scaled": "yes"}, TypeError, "scaled"),
    ({"length": 1}, ValueError, "length"),
    ({"norm": "middle"}, ValueError, "norm"),
])
def test_attention_model_rejects_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    arguments = {"head_size": 8, "scaled": True} | kwargs
    with pytest.raises(error, match=match):
        attention_model(**arguments)


def test_training_task_has_one_new_batch_per_step() -> None:
    task = training_task(7, batch_size=4, length=3)
    assert task.tokens.shape == (28, 6) and task.targets.shape == (28, 3)
    assert training_task(5).tokens.shape[0] == 5 * BATCH_SIZE
    with pytest.raises(ValueError, match="steps"):
        training_task(0)


def test_train_attention_is_reproducible_and_pairs_the_scalings() -> None:
    a = train_attention(16, True, seed=1, steps=5, progress=False)
    b = train_attention(16, True, seed=1, steps=5, progress=False)
    u = train_attention(16, False, seed=1, steps=5, progress=False)
    assert a.steps == 5 and np.isfinite(a.losses).all()
    np.testing.assert_array_equal(a.losses, b.losses)
    assert not np.allclose(a.losses[0], u.losses[0])  # same weights and batch, other scale
    with pytest.raises(ValueError, match="lr"):
        train_attention(16, True, lr=0.0)


def test_batch_orders_are_the_orders_train_draws() -> None:
    """One randperm per epoch from the run's seed, the last partial batch dropped (the order
    helpers.training.train draws; the batched Transformer studies use the same function)."""
    orders = batch_orders([0, 5], n_examples=12, batch_size=4, steps=5)
    assert orders.shape == (2, 5, 4)
    generator = torch.Generator().manual_seed(5)
    first_epoch, second_epoch = torch.randperm(12, generator=generator), torch.randperm(12, generator=generator)
    assert torch.equal(orders[1, :3].reshape(-1), first_epoch) and torch.equal(orders[1, 3], second_epoch[:4])
    assert not torch.equal(orders[0], orders[1])
    partial = batch_orders([3], n_examples=40, batch_size=16, steps=3)  # 2 batches an epoch, 8 dropped
    generator = torch.Generator().manual_seed(3)
    first_epoch, second_epoch = torch.randperm(40, generator=generator), torch.randperm(40, generator=generator)
    assert torch.equal(partial[0, 1], first_epoch[16:32]) and torch.equal(partial[0, 2], second_epoch[:16])
    with pytest.raises(ValueError, match="batch_size"):
        batch_orders([0], n_examples=3, batch_size=4, steps=1)


@pytest.mark.parametrize("scaled", [True, False])
def test_train_together_computes_what_train_computes(scaled: bool) -> None:
    task = training_task(6, batch_size=4, length=3)
    runs = [(1e-3, 0), (3e-3, 1), (1e-2, 0)]
    models = [attention_model(8, scaled, seed, length=3) for _, seed in runs]
    together = train_together(models, task, lrs=[lr for lr, _ in runs], seeds=[s for _, s in runs],
                              batch_size=4, steps=6)
    assert together.shape == (3, 6)
    for i, (lr, seed) in enumerate(runs):
        alone = attention_model(8, scaled, seed, length=3)
        run = train(alone, task.tokens, task.targets, lr=lr, batch_size=4, optimizer="adam",
                    loss_fn=sequence_loss, seed=seed, progress=False)
        np.testing.assert_allclose(together[i], run.losses, rtol=1e-4, atol=1e-5)
        for (name, p), q in zip(models[i].named_parameters(), alone.parameters(), strict=True):
            if name == "blocks.0.attn.qkv.bias":
                # the key bias adds one constant to a row of scores, which the softmax ignores: its
                # gradient is 0 up to rounding, and Adam turns that rounding into full-size steps
                p, q = torch.cat([p[:8], p[16:]]), torch.cat([q[:8], q[16:]])
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=name)


def test_train_together_rejects_mixed_models_and_lengths() -> None:
    task = training_task(2, batch_size=4, length=3)
    pair = [attention_model(8, True, 0, length=3), attention_model(8, False, 0, length=3)]
    with pytest.raises(ValueError, match="attention scale"):
        train_together(pair, task, lrs=[1e-3, 1e-3], seeds=[0, 0], batch_size=4, steps=2)
    with pytest.raises(ValueError, match="architecture"):
        train_together([pair[0], attention_model(16, True, 0, length=3)], task, lrs=[1e-3, 1e-3],
                       seeds=[0, 0], batch_size=4, steps=2)
    with pytest.raises(ValueError, match="one entry per model"):
        train_together(pair[:1], task, lrs=[1e-3, 1e-3], seeds=[0], batch_size=4, steps=2)
    with pytest.raises(TypeError, match="TinyTransformer"):
        train_together([], task, lrs=[], seeds=[], batch_size=4, steps=2)


def _curves(seeds: int, points: int) -> dict[tuple[int, bool], np.ndarray]:
    rng = np.random.default_rng(0)
    return {(h, s): rng.uniform(0, 2, (seeds, points)) for h in (16, 64) for s in (True, False)}


def test_training_figure_draws_one_panel_per_head_size() -> None:
    fig = training_figure(np.arange(5, 55, 5), _curves(5, 10), note=", lr 1e-3",
                          references={"one digit at chance": 0.38})
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert all(ax.get_xlabel() and ax.get_ylabel() and ax.get_title() for ax in fig.axes)
    assert fig.legends and "lr 1e-3" in fig.axes[0].get_title()  # one legend, below the panels
    single = {key: value[0] for key, value in _curves(1, 10).items()}  # one seed: 1-D curves, no band
    assert len(training_figure(np.arange(10), single).axes) == 2
    one_panel = training_figure(np.arange(10), {k: v for k, v in single.items() if k[0] == 16})
    assert one_panel.axes[0].get_legend() is not None  # a single panel keeps its own legend


def test_training_figure_rejects_bad_curves() -> None:
    with pytest.raises(TypeError, match="curves"):
        training_figure(np.arange(3), {})
    with pytest.raises(ValueError, match="missing"):
        training_figure(np.arange(3), {(16, True): np.zeros((2, 3))})
    with pytest.raises(ValueError, match="points"):
        training_figure(np.arange(4), _curves(2, 3))


def test_lr_sweep_figure_draws_medians_and_ranges() -> None:
    values = {key: value.T for key, value in _curves(5, 3).items()}  # [3 learning rates, 5 seeds]
    fig = lr_sweep_figure(np.array([1e-3, 3e-3, 1e-2]), values, ylabel="loss")
    assert len(fig.axes) == 2 and fig.axes[0].get_xscale() == "log"
    assert all(ax.get_xlabel() and ax.get_ylabel() and ax.get_title() for ax in fig.axes)
    with pytest.raises(ValueError, match="learning rates"):
        lr_sweep_figure(np.array([1e-3, 3e-3]), values, ylabel="loss")


def test_figures_draw_the_matched_control_when_given() -> None:
    rng = np.random.default_rng(1)
    curves = {(h, v): rng.uniform(0, 2, (5, 10)) for h in (16, 64) for v in ("scaled", "unscaled", "matched")}
    fig = training_figure(np.arange(5, 55, 5), curves)
    assert len(fig.axes[0].get_lines()) == 3  # one median line per variant
    sweep = lr_sweep_figure(np.array([1e-3, 3e-3]), {k: v[:2] for k, v in curves.items()}, ylabel="loss")
    assert len(sweep.legends[0].get_texts()) == 3
    with pytest.raises(ValueError, match="unknown variants"):
        training_figure(np.arange(10), {**curves, (16, "tiny"): np.zeros((5, 10))})
    with pytest.raises(ValueError, match="missing"):
        training_figure(np.arange(5, 55, 5), {k: v for k, v in curves.items() if k != (64, "matched")})
