"""helpers.attention, its figures and its panel (notebook 04)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch.nn import functional as F

from helpers.attention import (
    ONE_HOT_THRESHOLD,
    PANEL_N,
    PANEL_TEMPERATURES,
    UNIFORM_THRESHOLD,
    GradientScan,
    dot_product_variance,
    gradient_vs_scale,
    layernorm_logit_std,
    manual_attention,
    projected_logit_std,
    qk_scores,
    random_qk,
    regime_shares,
    row_regime,
    row_stats,
    saturation_scale,
    saturation_sweep,
    softmax_entropy,
    softmax_jacobian,
    softmax_raw_and_scaled,
    std_ratio_over_seeds,
    std_sweep,
    steps_to_loss,
    temperature_curves,
    temperature_row,
)
from helpers.plots.attention import (
    gradient_figure,
    saturation_figure,
    softmax_scatter_figure,
    std_vs_dim_figure,
    temperature_figure,
)
from helpers.widgets.attention import temperature_panel, update_temperature


# -- qk_scores -------------------------------------------------------------------------------
@pytest.mark.parametrize("d", [4, 16, 64, 256])
def test_qk_scores_std_is_sqrt_d_unscaled_and_one_scaled(d: int) -> None:
    # pooled over a few seeds so the check is about the law, not one draw
    raw = torch.cat([qk_scores(100, d, seed=s).flatten() for s in range(4)])
    scaled = torch.cat([qk_scores(100, d, scaled=True, seed=s).flatten() for s in range(4)])
    assert raw.std().item() == pytest.approx(math.sqrt(d), rel=0.1)
    assert scaled.std().item() == pytest.approx(1.0, rel=0.1)


def test_qk_scores_shape_seed_and_scaling() -> None:
    scores = qk_scores(7, 5, seed=3)
    assert isinstance(scores, torch.Tensor) and scores.shape == (7, 7)
    assert torch.equal(scores, qk_scores(7, 5, seed=3))
    assert not torch.equal(scores, qk_scores(7, 5, seed=4))
    torch.testing.assert_close(qk_scores(7, 5, scaled=True, seed=3), scores / math.sqrt(5))
    q, k = random_qk(7, 5, seed=3)
    torch.testing.assert_close(scores, q @ k.T)


def test_dot_product_variance_is_d() -> None:
    for d in (1, 8, 64):
        assert dot_product_variance(d) == pytest.approx(d, rel=0.05)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"n": 0, "d": 4}, "n must be"), ({"n": 4, "d": 0}, "d must be"), ({"n": -1, "d": 4}, "n must be")],
)
def test_qk_scores_rejects_bad_sizes(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        qk_scores(**kwargs)


def test_qk_scores_rejects_non_integers() -> None:
    with pytest.raises(TypeError, match="d must be an int"):
        qk_scores(4, 2.5)  # type: ignore[arg-type]


# -- softmax_entropy -------------------------------------------------------------------------
def test_entropy_of_uniform_rows_is_log_n() -> None:
    for n in (1, 2, 50):
        entropy = softmax_entropy(torch.zeros(3, n))
        torch.testing.assert_close(entropy, torch.full((3,), math.log(n)))


def test_entropy_limits_over_temperature() -> None:
    scores = qk_scores(20, 16)
    hot = softmax_entropy(scores, temperature=1e4)
    cold = softmax_entropy(scores, temperature=1e-4)
    assert torch.allclose(hot, torch.full_like(hot, math.log(20)), atol=1e-3)
    assert torch.all(cold < 1e-6) and torch.all(cold >= 0)
    assert torch.all(torch.isfinite(cold))


def test_entropy_of_one_hot_rows_is_zero() -> None:
    scores = torch.full((4, 10), -1e4)
    scores[torch.arange(4), torch.tensor([0, 3, 5, 9])] = 1e4
    assert torch.all(softmax_entropy(scores) == 0)
    stats = row_stats(scores)
    assert stats.one_hot_fraction == 1.0 and np.all(stats.max_prob == 1.0)


def test_entropy_matches_definition_and_temperature() -> None:
    scores = qk_scores(6, 3, seed=1)
    p = torch.softmax(scores / 2.0, dim=-1)
    torch.testing.assert_close(softmax_entropy(scores, 2.0), -(p * p.log()).sum(-1))
    torch.testing.assert_close(softmax_entropy(scores * 2.0, 2.0), softmax_entropy(scores))


def test_entropy_accepts_numpy() -> None:
    assert softmax_entropy(np.zeros((2, 4))).shape == (2,)


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("inf"), float("nan")])
def test_entropy_rejects_bad_temperature(temperature: float) -> None:
    with pytest.raises(ValueError, match="temperature must be"):
        softmax_entropy(torch.zeros(2, 3), temperature)


@pytest.mark.parametrize("shape", [(3,), (2, 3, 4), (0, 3)])
def test_entropy_rejects_non_2d_scores(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="scores must"):
        softmax_entropy(torch.zeros(shape))


def test_entropy_rejects_non_tensors() -> None:
    with pytest.raises(TypeError, match="scores must be"):
        softmax_entropy([[0.0, 1.0]])  # type: ignore[arg-type]


# -- sweeps ----------------------------------------------------------------------------------
def test_std_sweep_follows_sqrt_d() -> None:
    sweep = std_sweep(range(2, 101, 7))
    ratio = sweep.std_raw / sweep.sqrt_d
    assert np.all((ratio > 0.7) & (ratio < 1.3))
    np.testing.assert_allclose(sweep.std_scaled, ratio)
    with pytest.raises(ValueError, match="dims"):
        std_sweep([])


def test_saturation_sweep_raw_saturates_scaled_does_not() -> None:
    sweep = saturation_sweep([2, 64, 512], repeats=2)
    assert np.all(np.diff(sweep.entropy_raw) < 0)
    assert sweep.one_hot_raw[-1] > 0.3
    assert np.all(sweep.one_hot_scaled == 0)
    assert np.all(sweep.entropy_scaled > 0.8 * sweep.log_n)


def test_one_hot_threshold_is_the_one_definition() -> None:
    scores = torch.tensor([[math.log(9.5), 0.0], [math.log(8.0), 0.0]], dtype=torch.float64)
    # row 0: max p = 9.5/10.5 > 0.9 (one-hot-like), row 1: max p = 8/9 < 0.9 (not)
    assert row_stats(scores).one_hot_fraction == pytest.approx(0.5)
    assert row_regime(0.3, ONE_HOT_THRESHOLD, 50) == "one-hot-like"
    assert row_regime(0.3, ONE_HOT_THRESHOLD - 0.01, 50) == "Goldilocks zone"
    assert row_regime(UNIFORM_THRESHOLD * math.log(50), 0.5, 50) == "uniform-like"
    assert row_regime(0.99 * UNIFORM_THRESHOLD * math.log(50), 0.5, 50) == "Goldilocks zone"


def test_std_ratio_over_seeds() -> None:
    ratios = std_ratio_over_seeds(n=50, d=50, seeds=range(8))
    assert ratios.shape == (8,)
    assert ratios[0] == pytest.approx(qk_scores(50, 50, seed=0).std().item() / math.sqrt(50))
    assert ratios.min() < 1 < ratios.max() and abs(np.median(ratios) - 1) < 0.05
    assert len(set(np.round(ratios, 6))) == 8  # different seeds, different draws
    with pytest.raises(ValueError, match="seeds"):
        std_ratio_over_seeds(seeds=[])
    with pytest.raises(ValueError, match="seed"):
        std_ratio_over_seeds(seeds=[-1])
    with pytest.raises(TypeError, match="d"):
        std_ratio_over_seeds(d=2.5)  # type: ignore[arg-type]


# -- gradients -------------------------------------------------------------------------------
def test_softmax_jacobian_matches_autograd() -> None:
    z = torch.randn(6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    expected = torch.autograd.functional.jacobian(lambda x: torch.softmax(x, 0), z)
    torch.testing.assert_close(softmax_jacobian(z), expected)
    with pytest.raises(ValueError, match="z must have 1 dimension"):
        softmax_jacobian(torch.zeros(2, 2))
    with pytest.raises(TypeError, match="z must be a torch.Tensor"):
        softmax_jacobian([0.0, 1.0])  # type: ignore[arg-type]


def test_gradient_vanishes_for_large_logits() -> None:
    scan = gradient_vs_scale([0.01, 1.0, 3.0, 100.0], rows=100)
    assert scan.grad_norm_median[-1] < 1e-3 * scan.grad_norm_median[1]
    assert scan.jacobian_norm[-1] < scan.jacobian_norm[1]
    assert scan.max_prob[-1] > 0.9 and scan.max_prob[0] < 0.03
    # uniform rows: J = (I - 11ᵀ/n)/n, whose Frobenius norm is sqrt(n - 1)/n
    assert scan.jacobian_norm[0] == pytest.approx(math.sqrt(49) / 50, rel=0.01)
    with pytest.raises(ValueError, match="scale"):
        gradient_vs_scale([0.0])


def test_saturation_scale_interpolates_the_crossing() -> None:
    scales = np.array([1.0, 10.0, 100.0, 1000.0])
    median = np.array([1.0, 0.1, 0.001, 1e-6])
    scan = GradientScan(scales, median, median, median, median)
    # 1% of the peak (0.01) lies halfway between 0.1 and 0.001 in log: s = 10^1.5
    assert saturation_scale(scan, 0.01) == pytest.approx(10**1.5)
    assert saturation_scale(scan, 0.1 * 0.999) == pytest.approx(10.0, rel=1e-3)
    assert math.isnan(saturation_scale(scan, 1e-9))
    real = gradient_vs_scale(np.logspace(-2, 2, 33), rows=100)
    s = saturation_scale(real)
    at_100 = real.grad_norm_median[np.argmin(np.abs(real.scales - 100))]
    assert 10 < s < 40 and at_100 < 0.01 * real.grad_norm_median.max()


def test_gradient_scan_matches_explicit_jacobians() -> None:
    scales = [0.1, 1.0, 30.0, 300.0]
    scan = gradient_vs_scale(scales, n=20, rows=30, seed=3)
    g = torch.Generator().manual_seed(3)
    u = torch.randn(30, 20, generator=g, dtype=torch.float64)
    values = torch.randn(20, 16, generator=g, dtype=torch.float64)
    upstream = torch.randn(30, 16, generator=g, dtype=torch.float64)
    for i, s in enumerate(scales):
        p = torch.softmax(s * u, dim=-1)
        jac = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
        assert scan.jacobian_norm[i] == pytest.approx(torch.linalg.matrix_norm(jac).mean().item(), rel=1e-9)
        dz = (jac @ (upstream @ values.T)[:, :, None]).squeeze(-1)  # J is symmetric
        expected = dz.norm(dim=-1).median().item()
        if s < 100:  # at s = 300 both are ~1e-36: rounding, not a value to compare
            assert scan.grad_norm_median[i] == pytest.approx(expected, rel=1e-6)
        else:
            assert scan.grad_norm_median[i] < 1e-20 and expected < 1e-20


@pytest.mark.parametrize("fraction", [0.0, 1.0, 2.0, -0.5])
def test_saturation_scale_rejects_bad_fractions(fraction: float) -> None:
    scan = GradientScan(np.ones(2), np.ones(2), np.ones(2), np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="fraction"):
        saturation_scale(scan, fraction)


def test_saturation_scale_rejects_non_scans() -> None:
    with pytest.raises(TypeError, match="scan"):
        saturation_scale([1.0, 2.0])  # type: ignore[arg-type]


def test_projected_logit_std_is_variance_of_q() -> None:
    unit = projected_logit_std(256, 64, weight_std=256**-0.5, n=128)
    gpt2 = projected_logit_std(768, 64, weight_std=0.02, n=128)
    assert unit == pytest.approx(1.0, rel=0.1)
    assert gpt2 == pytest.approx(768 * 0.02**2, rel=0.1)
    with pytest.raises(ValueError, match="weight_std"):
        projected_logit_std(8, 4, weight_std=0.0)
    with pytest.raises(TypeError, match="d_head"):
        projected_logit_std(8, "4", weight_std=0.1)  # type: ignore[arg-type]


# -- attention and LayerNorm -----------------------------------------------------------------
@pytest.mark.parametrize("causal", [False, True])
def test_manual_attention_matches_pytorch(causal: bool) -> None:
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 9, 16, generator=g) for _ in range(3))
    torch.testing.assert_close(manual_attention(q, k, v, causal=causal),
                               F.scaled_dot_product_attention(q, k, v, is_causal=causal))


def test_layernorm_gamma_sets_logit_scale() -> None:
    stds = layernorm_logit_std([0.3, 1.0, 2.0])
    np.testing.assert_allclose(stds / stds[1], [0.09, 1.0, 4.0], rtol=1e-6)
    assert stds[1] == pytest.approx(1.0, rel=0.15)
    with pytest.raises(ValueError, match="gamma"):
        layernorm_logit_std([-1.0])


# -- figures and the panel -------------------------------------------------------------------
def test_figures_are_returned() -> None:
    figures = [
        std_vs_dim_figure(std_sweep([2, 8, 32])),
        softmax_scatter_figure(qk_scores(10, 8), 8),
        saturation_figure(saturation_sweep([2, 8], repeats=1)),
        gradient_figure(gradient_vs_scale([0.1, 1.0, 10.0], rows=10), {"scaled": 1.0}),
        temperature_figure(),
    ]
    for fig in figures:
        assert isinstance(fig, Figure)
        for ax in fig.axes:
            assert ax.get_xlabel() and ax.get_ylabel()


def test_row_regime() -> None:
    assert row_regime(math.log(PANEL_N), 1 / PANEL_N, PANEL_N) == "uniform-like"
    assert row_regime(0.0, 1.0, PANEL_N) == "one-hot-like"
    assert row_regime(2.0, 0.3, PANEL_N) == "Goldilocks zone"


def test_softmax_raw_and_scaled() -> None:
    raw = qk_scores(6, 16, seed=1)
    both = softmax_raw_and_scaled(raw, 16)
    np.testing.assert_allclose(both.scores, raw.flatten().numpy())
    np.testing.assert_allclose(both.probs_scaled, torch.softmax(raw / 4, -1).flatten().numpy())
    np.testing.assert_allclose(np.exp(-both.nll_raw), both.probs_raw, rtol=1e-12)
    # rows sum to 1; dividing by √d = 4 flattens them (a smaller largest probability)
    assert both.probs_raw.reshape(6, 6).sum(axis=1) == pytest.approx(np.ones(6))
    assert both.probs_scaled.reshape(6, 6).max(axis=1).mean() < both.probs_raw.reshape(6, 6).max(axis=1).mean()


def test_temperature_row_and_curves() -> None:
    row = temperature_row(64, 1.0, True)
    np.testing.assert_allclose(row.logits, qk_scores(PANEL_N, 64, scaled=True)[0].numpy())
    expected = torch.softmax(torch.from_numpy(row.logits), -1).numpy()
    np.testing.assert_allclose(row.probs, np.sort(expected)[::-1])
    assert row.max_prob == pytest.approx(expected.max())
    assert row.entropy == pytest.approx(float(-(expected * np.log(expected)).sum()))
    assert row.regime == row_regime(row.entropy, row.max_prob, PANEL_N)
    curves = temperature_curves(64, True)
    assert curves.entropy_share.shape == curves.max_prob.shape == PANEL_TEMPERATURES.shape
    # hotter rows are flatter: entropy up, largest probability down
    assert np.all(np.diff(curves.entropy_share) >= -1e-12) and np.all(np.diff(curves.max_prob) <= 1e-12)
    lo, hi = curves.zone
    inside = (PANEL_TEMPERATURES >= lo) & (PANEL_TEMPERATURES <= hi)
    regimes = {row_regime(h * math.log(PANEL_N), p, PANEL_N)
               for h, p in zip(curves.entropy_share[inside], curves.max_prob[inside], strict=True)}
    assert regimes == {"Goldilocks zone"}
    assert temperature_curves(64, True) is curves  # cached


def test_panel_callbacks_at_their_extremes() -> None:
    panel = temperature_panel()
    assert update_temperature(panel.figure, d=64, temperature=1.0, scaled=True).endswith(
        temperature_row(64, 1.0, True).regime)
    controls = panel.controls
    t_min = controls["temperature"].base ** controls["temperature"].min
    t_max = controls["temperature"].base ** controls["temperature"].max
    panel.redraw(temperature=t_min)
    assert "one-hot-like" in panel.readout
    panel.redraw(temperature=t_max)
    assert "uniform-like" in panel.readout
    panel.redraw(temperature=1.0, scaled=False, d=controls["d"].max)
    assert "one-hot-like" in panel.readout
    panel.redraw(temperature=1.0, scaled=True, d=controls["d"].max)
    assert "Goldilocks zone" in panel.readout
    panel.redraw(temperature=1.0, scaled=True, d=controls["d"].min)
    assert "Goldilocks zone" in panel.readout
    bars = list(panel.figure.axes[0].patches[0].get_data().values)
    assert len(bars) == PANEL_N and sum(bars) == pytest.approx(1.0)
    assert bars == sorted(bars, reverse=True)


def test_regime_shares_follow_the_one_definition() -> None:
    scores = torch.tensor([[math.log(9.5), 0.0],   # max p > 0.9: one-hot-like
                           [0.0, 0.0],             # entropy = log 2: uniform-like
                           [math.log(3.0), 0.0]],  # p = 0.75, entropy 0.81 log 2: in between
                          dtype=torch.float64)
    shares = regime_shares(scores)
    assert shares == pytest.approx({"one-hot-like": 1 / 3, "Goldilocks zone": 1 / 3, "uniform-like": 1 / 3})
    # the panel classifies each row the same way
    stats = row_stats(scores)
    regimes = [row_regime(h, p, n=2) for h, p in zip(stats.entropy, stats.max_prob, strict=True)]
    assert regimes == ["one-hot-like", "uniform-like", "Goldilocks zone"]
    # a higher temperature moves every row towards uniform
    assert regime_shares(scores, temperature=100.0)["uniform-like"] == 1.0
    with pytest.raises(ValueError, match="temperature"):
        regime_shares(scores, temperature=0.0)
    with pytest.raises(ValueError, match="2-D"):
        regime_shares(torch.zeros(3))


def test_steps_to_loss_first_recorded_step_below_the_threshold() -> None:
    steps = np.array([5, 10, 15, 20])
    curves = np.array([[2.0, 0.5, 0.05, 0.01],     # below 0.1 from step 15
                       [2.0, 1.0, 0.5, 0.3],       # never
                       [0.01, np.nan, 0.0, 0.0]])  # at once; NaN is never below
    np.testing.assert_array_equal(steps_to_loss(curves, steps), [15, np.inf, 5])
    np.testing.assert_array_equal(steps_to_loss(curves[None], steps, threshold=0.4), [[15, 20, 5]])
    assert steps_to_loss(np.full(4, np.nan), steps) == np.inf


def test_steps_to_loss_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="steps"):
        steps_to_loss(np.zeros((2, 4)), np.arange(3))
    with pytest.raises(ValueError, match="threshold"):
        steps_to_loss(np.zeros(3), np.arange(3), threshold=0.0)
    with pytest.raises(TypeError, match="threshold"):
        steps_to_loss(np.zeros(3), np.arange(3), threshold="low")  # type: ignore[arg-type]
