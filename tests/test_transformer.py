"""helpers.transformer, its figures and its panel, and the batched training of the studies (notebook 06)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from helpers.plots.transformer import (
    LABELS,
    early_steps_figure,
    gradient_norms_figure,
    loss_curves_figure,
    residual_norms_figure,
    residual_track_figure,
    stability_depths_figure,
)
from helpers.transformer import (
    NORMS,
    SEP,
    VOCAB,
    Block,
    CausalSelfAttention,
    TinyTransformer,
    accuracy,
    layer_gradient_norms,
    layernorm_positions,
    pytorch_layer_difference,
    residual_norms,
    reversal_task,
    sequence_loss,
    stream_norm,
    sublayer_norms,
)
from helpers.transformer_runs import (
    RunResult,
    TrainingSetup,
    attention_entropy,
    cell_summary,
    diverged,
    early_steps,
    grid_from_arrays,
    largest_stable_lr,
    learned,
    loss_band,
    residual_band,
    run_grid,
    runs_of,
    stability_table,
    train_variant,
)
from helpers.widgets.transformer import browse_panel
from studies._batched_transformer import TRACK_SEQUENCES, train_batched

QUICK = TrainingSetup(n_layers=2, length=4, n_train=128, n_test=32, batch_size=16, steps=6)


# -- the model ----------------------------------------------------------------------------
@pytest.mark.parametrize("norm", NORMS)
def test_variants_run_forward_and_backward(norm: str) -> None:
    model = TinyTransformer(norm, n_layers=2, max_len=8)
    task = reversal_task(5, length=4)
    logits = model(task.tokens)
    assert logits.shape == (5, 8, VOCAB)
    loss = sequence_loss(logits, task.targets)
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)


def test_layernorm_counts_per_variant() -> None:
    counts = {n: sum(isinstance(m, nn.LayerNorm) for m in TinyTransformer(n, n_layers=3).modules())
              for n in NORMS}
    assert counts == {"post": 6, "pre": 7, "none": 0}
    for module in TinyTransformer("pre").modules():
        if isinstance(module, nn.LayerNorm):
            assert module.eps == 1e-5


def test_post_ln_normalizes_the_residual_sum() -> None:
    assert layernorm_positions(TinyTransformer("post", n_layers=2)) == [
        "blocks.0.ln1: LN(x + attn) is the residual stream",
        "blocks.0.ln2: LN(x + ffn) is the residual stream",
        "blocks.1.ln1: LN(x + attn) is the residual stream",
        "blocks.1.ln2: LN(x + ffn) is the residual stream",
    ]


def test_pre_ln_normalizes_only_the_branch_and_adds_a_final_ln() -> None:
    assert layernorm_positions(TinyTransformer("pre", n_layers=2)) == [
        "blocks.0.ln1: LN(stream) feeds attn only",
        "blocks.0.ln2: LN(stream) feeds ffn only",
        "blocks.1.ln1: LN(stream) feeds attn only",
        "blocks.1.ln2: LN(stream) feeds ffn only",
        "ln_f: final LN(stream) feeds head only",
    ]
    assert layernorm_positions(TinyTransformer("none", n_layers=2)) == []


def test_post_ln_outputs_are_normalized_and_pre_ln_stream_is_not() -> None:
    tokens = reversal_task(16, length=4).tokens
    post = TinyTransformer("post", n_layers=2, max_len=8).residual_stream(tokens)[-1]
    pre = TinyTransformer("pre", n_layers=2, max_len=8).residual_stream(tokens)[-1]
    assert torch.allclose(post.mean(-1), torch.zeros(()), atol=1e-4)
    assert torch.allclose(post.std(-1, unbiased=False), torch.ones(()), atol=1e-3)
    assert pre.std(-1, unbiased=False).mean() > 1.2


def test_blocks_match_pytorch_encoder_layer() -> None:
    """"pre" is nn.TransformerEncoderLayer(norm_first=True) (lecture 003), "post" the default."""
    assert pytorch_layer_difference("pre") < 1e-5
    assert pytorch_layer_difference("post") < 1e-5
    with pytest.raises(ValueError, match="norm must be one of"):
        pytorch_layer_difference("none")


def test_attention_is_causal() -> None:
    model = TinyTransformer("pre", n_layers=2, max_len=8).eval()
    tokens = reversal_task(3, length=4).tokens
    changed = tokens.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 10
    with torch.no_grad():
        a, b = model(tokens), model(changed)
    assert torch.allclose(a[:, :-1], b[:, :-1], atol=1e-6)
    assert not torch.allclose(a[:, -1], b[:, -1])


def test_same_seed_same_weights() -> None:
    a, b, c = (TinyTransformer("post", seed=s) for s in (3, 3, 4))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.head.weight, c.head.weight)


# -- the task -----------------------------------------------------------------------------
def test_task_is_deterministic_and_correct() -> None:
    a, b = reversal_task(50, length=5, seed=7), reversal_task(50, length=5, seed=7)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.tokens, reversal_task(50, length=5, seed=8).tokens)
    assert a.tokens.shape == (50, 10) and a.targets.shape == (50, 5) and a.length == 5
    for tokens, target in zip(a.tokens.tolist(), a.targets.tolist(), strict=True):
        digits = tokens[:5]
        assert all(0 <= d <= 9 for d in digits)
        assert tokens[5] == SEP
        assert target == digits[::-1]
        assert tokens[6:] == target[:-1]  # teacher forcing: the answer so far


def test_task_example_by_hand() -> None:
    task = reversal_task(1, length=3, seed=0)
    d = task.tokens[0, :3].tolist()
    assert task.tokens[0].tolist() == [*d, SEP, d[2], d[1]]
    assert task.targets[0].tolist() == [d[2], d[1], d[0]]


def test_accuracy_of_a_perfect_and_a_wrong_model() -> None:
    task = reversal_task(20, length=4)

    class Oracle(nn.Module):
        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            logits = torch.zeros(tokens.shape[0], tokens.shape[1], VOCAB)
            logits[:, -4:, :].scatter_(2, task.targets.unsqueeze(-1), 1.0)
            return logits

    class AlwaysSep(nn.Module):
        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            logits = torch.zeros(tokens.shape[0], tokens.shape[1], VOCAB)
            logits[..., SEP] = 1.0
            return logits

    assert accuracy(Oracle(), task) == (1.0, 1.0)
    assert accuracy(AlwaysSep(), task) == (0.0, 0.0)
    loss = sequence_loss(Oracle()(task.tokens) * 100, task.targets)
    assert float(loss) < 1e-6


# -- measurements and training --------------------------------------------------------------
def test_gradient_and_residual_measurements() -> None:
    task = reversal_task(32, length=4)
    for norm in NORMS:
        model = TinyTransformer(norm, n_layers=3, max_len=8)
        grads = layer_gradient_norms(model, task)
        assert set(grads) == {"attention", "ffn", "ffn_w2", "block", "embedding", "head"}
        assert grads["block"].shape == (3,) and (grads["block"] > 0).all()
        assert all(p.grad is None for p in model.parameters())
        norms = residual_norms(model, task.tokens)
        assert norms.shape == (4,)
        if norm == "post":  # every block ends with a LayerNorm: norm sqrt(64) = 8
            assert np.allclose(norms[1:], 8.0, atol=0.01)


def test_sublayer_norms_follow_the_stream_sublayer_by_sublayer() -> None:
    tokens = reversal_task(16, length=4, seed=0).tokens
    for norm in ("pre", "none"):
        model = TinyTransformer(norm, n_layers=3, seed=1)
        stream, added = sublayer_norms(model, tokens)
        assert stream.shape == (7,) and added.shape == (6,) and added.dtype == torch.float64
        # after each block's second sublayer the stream is the block's output
        np.testing.assert_allclose(stream[::2], residual_norms(model, tokens), rtol=1e-5)
        assert (added > 0).all()
        with torch.no_grad():  # the first sublayer adds attention of the (normalized) embeddings
            first = model.blocks[0].attn(model.blocks[0].ln1(model.embed(tokens)))
        assert added[0] == pytest.approx(stream_norm(first), rel=1e-6)
    model = TinyTransformer("pre", n_layers=3, seed=1)
    squared, _ = sublayer_norms(model, tokens, norm=lambda x: x.pow(2).sum(-1).mean())  # another measure
    with torch.no_grad():
        assert squared[0] == pytest.approx(float(model.embed(tokens).pow(2).sum(-1).mean()), rel=1e-6)
    with pytest.raises(ValueError, match="post-LN"):
        sublayer_norms(TinyTransformer("post", n_layers=2), tokens)


def test_train_variant_is_deterministic_and_learns() -> None:
    a = train_variant("pre", lr=3e-3, seed=1, setup=QUICK)
    b = train_variant("pre", lr=3e-3, seed=1, setup=QUICK)
    assert np.array_equal(a.losses, b.losses) and a.losses.shape == (6,)
    assert a.residual_init.shape == (3,) and 0 <= a.digit_accuracy <= 1
    longer = train_variant("pre", lr=3e-3, seed=1,
                           setup=TrainingSetup(n_layers=2, length=4, n_train=512, n_test=64,
                                               batch_size=32, steps=60))
    assert longer.losses[-10:].mean() < 0.5 * longer.losses[:5].mean()


def test_run_grid() -> None:
    grid = run_grid(("post", "none"), lrs=(1e-3,), warmups=(0, 2), seeds=(0, 1), setup=QUICK)
    assert sorted(grid) == sorted((n, 1e-3, w, s) for n in ("post", "none") for w in (0, 2) for s in (0, 1))
    warm = grid[("post", 1e-3, 2, 0)]
    assert np.allclose(warm.learning_rates[:3], [5e-4, 1e-3, 1e-3])


def test_run_result_helpers() -> None:
    run = train_variant("none", lr=1e-3, setup=QUICK)
    run.losses = np.concatenate([np.linspace(3, 1, 40), np.full(40, 0.1)])
    assert run.steps_to(0.5) is not None and run.steps_to(0.01) is None
    assert run.oscillation() == pytest.approx(0.0, abs=1e-12)
    run.losses[60] = 5.0
    assert run.oscillation() > 0.01


# -- bad options ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: TinyTransformer("middle"), ValueError, r"norm must be one of \('post', 'pre', 'none'\)"),
        (lambda: Block(64, 4, "postln"), ValueError, "norm must be one of"),
        (lambda: TinyTransformer("pre", n_layers=0), ValueError, "n_layers must be an int >= 1"),
        (lambda: TinyTransformer("pre", d_model=60, n_heads=8), ValueError, "d_model must be divisible by n_heads"),
        (lambda: TinyTransformer("pre", n_heads=2.5), TypeError, "n_heads must be an int"),
        (lambda: reversal_task(0), ValueError, "n_examples must be an int >= 1"),
        (lambda: reversal_task(10, length=1), ValueError, "length must be an int >= 2"),
        (lambda: reversal_task(10, seed=-1), ValueError, "seed must be an int >= 0"),
        (lambda: train_variant("both", lr=1e-3, setup=QUICK), ValueError, "norm must be one of"),
        (lambda: TinyTransformer("pre", max_len=4)(reversal_task(2, length=4).tokens), ValueError,
         "tokens length must be <= max_len=4"),
        (lambda: TinyTransformer("pre")(torch.zeros(3, dtype=torch.long)), ValueError, "tokens must have shape"),
    ],
)
def test_bad_options_raise(call, error, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=message):
        call()


# -- figures and panel ----------------------------------------------------------------------
def test_figures_build() -> None:
    grid = run_grid(NORMS, lrs=(1e-3,), warmups=(0, 2), seeds=(0, 1), setup=QUICK)
    task = reversal_task(16, length=4)
    grads = {n: layer_gradient_norms(TinyTransformer(n, n_layers=2, max_len=8), task) for n in NORMS}
    figures = [
        gradient_norms_figure(grads),
        gradient_norms_figure(grads, depth_ratios={2: 1.5, 4: 2.0}),
        loss_curves_figure(grid, 1e-3, (0, 2)),
        residual_norms_figure(grid, 1e-3, 0, d_model=64),
        residual_norms_figure(grid, 1e-3, 0, only_learned=False),
    ]
    for fig in figures:
        for ax in fig.axes:
            assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
            assert ax.get_legend() is not None
    # no run learns at 1e-3 in 6 steps: only every run's stream is drawn after training
    learned_only, every_run = (fig.axes[1].get_legend().get_texts() for fig in figures[-2:])
    assert not any("runs)" in t.get_text() for t in learned_only)
    assert [t.get_text() for t in every_run] == [f"{LABELS[n]} (2/2 runs)" for n in NORMS]


def _run(seed: int, losses: list[float], sequence_accuracy: float, final: float) -> RunResult:
    """A hand-made RunResult: three depths of residual norms, 1 at init and ``final`` after."""
    return RunResult("pre", 1e-3, 0, seed, np.array(losses), np.full(len(losses), 1e-3), 0.9,
                     sequence_accuracy, np.ones(3), np.full(3, final))


def test_runs_of_picks_one_cell_in_seed_order() -> None:
    runs = {("pre", 1e-3, 0, s): _run(s, [1.0, 1.0], 1.0, 1.0) for s in (2, 0, 1)}
    runs[("post", 1e-3, 0, 0)] = _run(0, [1.0, 1.0], 1.0, 1.0)
    assert [r.seed for r in runs_of(runs, "pre", 1e-3, 0)] == [0, 1, 2]
    assert runs_of(runs, "pre", 1e-2, 0) == []


def test_loss_band_is_min_median_max_of_the_moving_average() -> None:
    runs = [_run(0, [4.0, 2.0, 0.0, 2.0], 1.0, 1.0), _run(1, [2.0, 2.0, 2.0, 2.0], 1.0, 1.0),
            _run(2, [0.0, 0.0, float("nan"), 0.0], 1.0, 1.0)]
    band = loss_band(runs, smooth=2)
    np.testing.assert_array_equal(band.steps, [1, 2, 3])
    np.testing.assert_allclose(band.low, [0.0, 1.0, 1.0])  # the nan windows of seed 2 are left out
    np.testing.assert_allclose(band.median, [2.0, 1.5, 1.5])
    np.testing.assert_allclose(band.high, [3.0, 2.0, 2.0])


def test_cell_summary_counts_the_runs_that_learned() -> None:
    runs = [_run(0, [1.0], 1.0, 10.0), _run(1, [1.0], 0.0, 1000.0), _run(2, [float("nan")], float("nan"), 1e9)]
    summary = cell_summary(runs)
    assert summary.seeds == 3 and summary.learned == 1
    assert summary.sequence_accuracy == 0.0  # median of 1, 0 and a diverged run counted as 0
    np.testing.assert_array_equal(summary.residual_init, np.ones(3))
    np.testing.assert_array_equal(summary.residual_final, np.full(3, 10.0))  # only the run that learned
    assert np.isnan(cell_summary(runs[1:]).residual_final).all()


def test_residual_band() -> None:
    runs = [_run(0, [1.0], 1.0, 10.0), _run(1, [1.0], 0.0, 1000.0)]
    np.testing.assert_array_equal(residual_band(runs, "init").median, np.ones(3))
    np.testing.assert_array_equal(residual_band(runs, "final").high, np.full(3, 10.0))  # the run that learned
    assert residual_band(runs[1:], "final") is None


def test_browse_panel_with_a_precomputed_grid() -> None:
    grid = run_grid(NORMS, lrs=(1e-3, 1e-2), warmups=(0, 2), seeds=(0,), setup=QUICK)
    panel = browse_panel(grid)
    assert set(panel.controls) == {"norm", "lr", "warmup"}
    panel.redraw(norm="none", lr=1e-2, warmup=2)
    assert panel.readout.startswith("no LN, lr 0.01, warm-up 2: digit accuracy")
    summary = cell_summary(runs_of(grid, "none", 1e-2, 2))
    assert panel.readout.endswith(f"learned {summary.learned}/1 seeds")
    with pytest.raises(ValueError, match="grid must hold at least one run"):
        browse_panel({})
    partial = {k: v for k, v in grid.items() if k != ("pre", 1e-2, 2, 0)}
    with pytest.raises(ValueError, match="missing"):
        browse_panel(partial)


def test_attention_scale_multiplies_the_scores() -> None:
    """attention_scale=None is 1/sqrt(head size); a float is the factor on q·k, checked by hand."""
    torch.manual_seed(0)
    x = torch.randn(2, 5, 16)
    for scale in (None, 1.0, 0.05):
        attn = CausalSelfAttention(16, 2, attention_scale=scale)
        q, k, v = attn.qkv(x).split(16, dim=-1)
        q, k, v = (t.view(2, 5, 2, 8).transpose(1, 2) for t in (q, k, v))
        factor = 1 / 8 ** 0.5 if scale is None else scale
        scores = (q @ k.transpose(-1, -2)) * factor
        scores = scores.masked_fill(torch.ones(5, 5, dtype=torch.bool).triu(1), float("-inf"))
        expected = attn.out((scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 5, 16))
        torch.testing.assert_close(attn(x), expected)
    unscaled = TinyTransformer("pre", d_model=16, n_heads=2, attention_scale=1.0)
    assert all(block.attn.attention_scale == 1.0 for block in unscaled.blocks)


@pytest.mark.parametrize(("scale", "error"), [(0.0, ValueError), (-1.0, ValueError),
                                              (float("inf"), ValueError), ("1", TypeError)])
def test_attention_scale_rejects_bad_values(scale: object, error: type) -> None:
    with pytest.raises(error, match="attention_scale must be"):
        TinyTransformer("pre", attention_scale=scale)  # type: ignore[arg-type]


# -- many runs as one batched model (studies/_batched_transformer.py) -----------------------
@pytest.mark.parametrize("norm", NORMS)
def test_batched_training_matches_plain_runs(norm: str) -> None:
    """Each run of the batched model follows train_variant step by step (same init, batches, Adam)."""
    setup = TrainingSetup(n_layers=2, d_model=16, n_heads=2, length=4, n_train=128, n_test=32,
                          batch_size=16, steps=12)
    runs = train_batched(norm, lrs=[1e-2, 3e-3, 3e-2], seeds=[0, 1, 2], warmups=[0, 4, 0], setup=setup)
    for run in runs:
        plain = train_variant(norm, lr=run.lr, warmup_steps=run.warmup_steps, seed=run.seed, setup=setup)
        np.testing.assert_allclose(run.losses, plain.losses, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(run.learning_rates, plain.learning_rates)
        assert run.digit_accuracy == pytest.approx(plain.digit_accuracy, abs=1 / 128)
        np.testing.assert_allclose(run.residual_final, plain.residual_final, rtol=1e-3)
    assert runs[0].losses[-1] != runs[2].losses[-1]  # different lrs and seeds: different runs


def test_explicit_attention_equals_the_fused_kernel() -> None:
    model = TinyTransformer("pre", n_layers=2, d_model=16, n_heads=2, max_len=8, seed=3)
    tokens = reversal_task(4, length=4).tokens
    fused = model(tokens)
    for block in model.blocks:
        block.attn.explicit = True
        weights = block.attn.weights(model.embed(tokens))
        assert torch.allclose(weights.sum(-1), torch.ones(()), atol=1e-6)
        assert float(weights.detach().triu(1).abs().max()) == 0.0  # causal: no weight on the future
    assert torch.allclose(model(tokens), fused, atol=1e-5)


def test_a_diverged_run_does_not_touch_the_others() -> None:
    setup = TrainingSetup(n_layers=2, d_model=16, n_heads=2, length=4, n_train=128, n_test=32,
                          batch_size=16, steps=5)
    alone = train_batched("none", lrs=[1e-3], seeds=[0], warmups=[0], setup=setup)[0]
    both = train_batched("none", lrs=[1e-3, 1e30], seeds=[0, 0], warmups=[0, 0], setup=setup)
    assert not np.isfinite(both[1].losses).all() and diverged(both[1]) and not learned(both[1])
    np.testing.assert_allclose(both[0].losses, alone.losses, rtol=1e-5)


def _sweep(norms: tuple[str, ...], lrs: tuple[float, ...], warmups: tuple[int, ...],
           seeds: tuple[int, ...]) -> dict[tuple[str, float, int, int], RunResult]:
    """Every combination, each variant's runs batched, keyed like run_grid."""
    keys = [(lr, w, s) for lr in lrs for w in warmups for s in seeds]
    grid = {}
    for norm in norms:
        runs = train_batched(norm, lrs=[k[0] for k in keys], warmups=[k[1] for k in keys],
                             seeds=[k[2] for k in keys], setup=QUICK)
        grid.update({(norm, lr, w, s): run for (lr, w, s), run in zip(keys, runs, strict=True)})
    return grid


def test_residual_track_during_training() -> None:
    runs = train_batched("pre", lrs=[1e-2, 1e-2], seeds=[0, 1], warmups=[0, 0], setup=QUICK,
                         record_steps=[6, 0, 3])
    _, test = QUICK.tasks()
    for run in runs:
        track = run.extra["residual_track"]
        assert isinstance(track, np.ndarray) and track.shape == (3, QUICK.n_layers + 1)
        model = QUICK.model("pre", run.seed)
        np.testing.assert_allclose(track[0], residual_norms(model, test.tokens[:TRACK_SEQUENCES]), rtol=1e-6)
        trained = run.extra["model"]
        assert isinstance(trained, TinyTransformer)
        np.testing.assert_allclose(track[-1], residual_norms(trained, test.tokens[:TRACK_SEQUENCES]), rtol=1e-6)
    with pytest.raises(ValueError, match="record_steps"):
        train_batched("pre", lrs=[1e-2], seeds=[0], warmups=[0], setup=QUICK, record_steps=[7])


def test_grid_from_arrays_rebuilds_the_runs() -> None:
    grid = _sweep(("post", "pre"), (1e-3, 1e-2), (0, 2), (0, 1))
    norms, lrs, warmups, seeds = ("post", "pre"), (1e-3, 1e-2), (0, 2), (0, 1)
    keys = [(n, lr, w, s) for n in norms for lr in lrs for w in warmups for s in seeds]
    shape = (2, 2, 2, 2)

    def stack(field: str) -> np.ndarray:
        values = [getattr(grid[k], field) for k in keys]
        return np.asarray(values, dtype=np.float32).reshape(shape + np.shape(values[0]))

    arrays = {"norms": np.asarray(norms), "lrs": np.asarray(lrs), "warmups": np.asarray(warmups),
              "seeds": np.asarray(seeds), **{f: stack(f) for f in ("losses", "digit_accuracy",
              "sequence_accuracy", "residual_init", "residual_final")}}
    rebuilt = grid_from_arrays(arrays)
    assert sorted(rebuilt) == sorted(grid)
    for key, run in grid.items():
        np.testing.assert_allclose(rebuilt[key].losses, run.losses, rtol=1e-6)
        np.testing.assert_allclose(rebuilt[key].learning_rates, run.learning_rates)
        assert learned(rebuilt[key]) == learned(run)
    # a study over depths: its axis follows the norms', residuals padded with nan
    deep = {k: np.stack([v, v], axis=1) if v.ndim >= 4 else v for k, v in arrays.items()}
    deep["residual_init"] = np.concatenate([deep["residual_init"], np.full(shape[:1] + (2,) + shape[1:] + (1,),
                                                                             np.nan, np.float32)], -1)
    deep["residual_final"] = deep["residual_init"]
    deep["depths"] = np.array([QUICK.n_layers, QUICK.n_layers + 1])
    picked = grid_from_arrays(deep, n_layers=QUICK.n_layers)
    assert picked[("pre", 1e-2, 2, 1)].residual_init.shape == (QUICK.n_layers + 1,)
    with pytest.raises(ValueError, match="n_layers must be one of the stored depths"):
        grid_from_arrays(deep, n_layers=9)
    with pytest.raises(ValueError, match="n_layers must be None"):
        grid_from_arrays(arrays, n_layers=2)
    with pytest.raises(KeyError, match="missing"):
        grid_from_arrays({"norms": arrays["norms"]})


def test_sweep_table_and_largest_stable_lr() -> None:
    grid = _sweep(("pre",), (1e-3, 1e-2), (0, 2), (0, 1))
    assert sorted(grid) == sorted(("pre", lr, w, s) for lr in (1e-3, 1e-2) for w in (0, 2) for s in (0, 1))
    table = stability_table(grid, threshold=0.0)  # every finite run counts as learned
    assert table == {("pre", 0): {1e-3: 2, 1e-2: 2}, ("pre", 2): {1e-3: 2, 1e-2: 2}}
    assert stability_table(grid, threshold=1.01)[("pre", 0)] == {1e-3: 0, 1e-2: 0}
    assert largest_stable_lr({1e-3: 5, 3e-3: 5, 1e-2: 3, 3e-2: 0}, 5) == 3e-3
    assert largest_stable_lr({1e-3: 5, 3e-3: 5, 1e-2: 4, 3e-2: 0}, 5, needed=4) == 1e-2
    assert largest_stable_lr({1e-3: 0}, 5) is None
    with pytest.raises(ValueError, match="needed must be <= n_seeds"):
        largest_stable_lr({1e-3: 1}, 2, needed=3)


def test_early_steps_and_attention_entropy() -> None:
    setup = TrainingSetup(n_layers=2, d_model=16, n_heads=2, length=4, n_train=128, n_test=64,
                          batch_size=16, steps=10)
    model = setup.model("post", 0)
    tokens = reversal_task(8, length=4).tokens
    entropy = attention_entropy(model, tokens)
    # each query t sees t + 1 keys: the entropy is between 0 and the mean of ln(t + 1)
    assert entropy.shape == (2,) and (entropy > 0).all()
    assert (entropy <= np.mean(np.log(np.arange(1, 9))) + 1e-6).all()
    record = early_steps("post", lr=1e-2, steps=6, setup=setup)
    assert record.losses.shape == (6,) and record.entropy.shape == (7, 2)
    assert record.logit_change.shape == (6,) and (record.logit_change > 0).all()
    assert (record.grad_norm > 0).all()
    fig = early_steps_figure({"post": [record, record]}, 1e-2)
    assert all(ax.get_title() and ax.get_xlabel() and ax.get_legend() for ax in fig.axes)


def test_stability_figure() -> None:
    grid = _sweep(NORMS, (1e-3, 1e-2), (0, 2), (0,))
    fig = stability_depths_figure({2: grid, 3: grid})
    assert len(fig.axes) == 4 and fig.axes[2].get_title() == "3 blocks, no warm-up"
    assert all(ax.get_title() and ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() for ax in fig.axes)
    with pytest.raises(ValueError, match="grids must hold"):
        stability_depths_figure({})


def test_residual_track_figure() -> None:
    steps = np.array([0, 10, 20])
    blown = np.array([[8.0, 20.0, 30.0], [8.0, 2e3, np.nan]])  # the second run's weights became nan
    tracks = {("post", 0): np.full((2, 3), 8.0), ("none", 0): blown, ("none", 40): blown}
    fig = residual_track_figure(steps, tracks, 1e-2, d_model=64)
    assert len(fig.axes) == 2
    assert all(ax.get_title() and ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() for ax in fig.axes)
    median = fig.axes[0].get_lines()[1].get_ydata()  # "none" after "post"
    np.testing.assert_allclose(median, [8.0, 1010.0, 30.0])
    with pytest.raises(ValueError, match="checkpoints"):
        residual_track_figure(steps[:2], tracks, 1e-2)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: train_batched("pre", lrs=[1e-3], seeds=[0, 1], warmups=[0], setup=QUICK), ValueError,
         "same length"),
        (lambda: train_batched("pre", lrs=1e-3, seeds=[0], warmups=[0], setup=QUICK), TypeError, "lrs must be"),
        (lambda: train_batched("pre", lrs=[-1.0], seeds=[0], warmups=[0], setup=QUICK), ValueError,
         "every value in lrs must be a finite number > 0"),
        (lambda: train_batched("pre", lrs=[1e-3], seeds=[-1], warmups=[0], setup=QUICK), ValueError,
         "every value in seeds must be an int >= 0"),
        (lambda: train_batched("mid", lrs=[1e-3], seeds=[0], warmups=[0], setup=QUICK), ValueError,
         "norm must be one of"),
        (lambda: train_batched("pre", lrs=(), seeds=(), warmups=(), setup=QUICK), ValueError,
         "lrs must hold at least one value"),
        (lambda: early_steps("pre", lr=1e-3, steps=0, setup=QUICK), ValueError, "steps must be an int >= 1"),
        (lambda: largest_stable_lr({1e-3: 1}, 0), ValueError, "n_seeds must be an int >= 1"),
    ],
)
def test_new_helpers_reject_bad_input(call, error, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=message):
        call()


# -- the stability study's readers: how a run ended, and each variant's best learning rate --
def _curve(start: float, end: float, steps: int = 40) -> list[float]:
    return list(np.linspace(start, end, steps))


def test_outcome_tells_learned_slow_stuck_and_diverged_apart() -> None:
    from studies.transformer_stability import OUTCOMES, outcome, outcome_counts, outcome_label

    plateau = [2.3] * 40
    runs = {
        "learned": _run(0, _curve(3.0, 0.1), 0.9, 1.0),
        "slow": _run(1, _curve(3.0, 2.05), 0.0, 1.0),            # still falling, near the plateau
        "slow ": _run(2, _curve(3.0, 1.2), 0.1, 1.0),             # below the plateau, not learned
        "stuck": _run(3, plateau, 0.0, 1.0),                     # flat at ln 10
        "diverged": _run(4, [*plateau[:-1], float("nan")], float("nan"), 1.0),
        "diverged ": _run(5, [5.0] * 40, 0.0, 1.0),              # above 2 ln 10
    }
    assert {name: outcome(run) for name, run in runs.items()} == {n: n.strip() for n in runs}
    counts = outcome_counts(list(runs.values()))
    assert tuple(counts) == OUTCOMES
    assert counts == {"learned": 1, "slow": 2, "stuck": 1, "diverged": 2}
    assert outcome_label(list(runs.values())) == "1 1p2s2d"
    assert outcome_label([runs["learned"]] * 10) == "10" and outcome_label([runs["stuck"]] * 3) == "0 3p"
    with pytest.raises(ValueError, match="at least 20 steps"):
        outcome(_run(0, [2.3] * 10, 0.0, 1.0))
    with pytest.raises(TypeError, match="run must be a RunResult"):
        outcome("run")  # type: ignore[arg-type]


def test_fastest_stable_lr_picks_the_quickest_rate_where_every_seed_learns() -> None:
    from studies.transformer_stability import fastest_stable_lr

    def run(lr: float, seed: int, losses: list[float], accuracy: float) -> RunResult:
        return RunResult("pre", lr, 0, seed, np.array(losses), np.full(len(losses), lr), 0.9, accuracy,
                         np.ones(2), np.ones(2))

    grid = {}
    for seed in (0, 1):
        grid[("pre", 1e-2, 0, seed)] = run(1e-2, seed, _curve(3.0, 0.0, 100), 1.0)    # below 0.5 at step 88
        grid[("pre", 3e-2, 0, seed)] = run(3e-2, seed, _curve(3.0, 0.0, 50), 1.0)     # at step 46
    grid[("pre", 1e-1, 0, 0)] = run(1e-1, 0, _curve(3.0, 0.0, 20), 1.0)
    grid[("pre", 1e-1, 0, 1)] = run(1e-1, 1, [2.3] * 20, 0.0)                        # one seed stuck
    best = fastest_stable_lr(grid, "pre", 0)
    assert best is not None and best.lr == 3e-2
    assert best.steps == (46, 46) and best.median == 46
    assert fastest_stable_lr(grid, "pre", 0, target=1e-9) is None     # no seed gets that low
    assert fastest_stable_lr(grid, "post", 0) is None                 # no runs of that variant
    with pytest.raises(ValueError, match="target must be > 0"):
        fastest_stable_lr(grid, "pre", 0, target=0.0)
    with pytest.raises(ValueError, match="norm must be one of"):
        fastest_stable_lr(grid, "mid", 0)
