"""helpers.drift (+ its plots and panels): repeated products, training with snapshots."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from helpers.drift import (
    first_nonfinite_step,
    growth_per_step,
    norm_range,
    predicted_growth,
    predicted_norms,
    predicted_overflow_step,
    repeated_product_norms,
)

# ---------------------------------------------------------------- repeated products


@pytest.mark.parametrize("s", [0.5, 1.0, 1.5, 2.0])
def test_unscaled_growth_is_about_s_sqrt_n(s: float) -> None:
    norms = repeated_product_norms(s, n=30, steps=20, dtype=torch.float64)
    assert norms.shape == (21,)
    assert norms.dtype == np.float64
    assert growth_per_step(norms) == pytest.approx(s * math.sqrt(30), rel=0.1)


@pytest.mark.parametrize("s", [0.5, 1.0, 1.5, 2.0])
def test_scaled_growth_is_about_s(s: float) -> None:
    norms = repeated_product_norms(s, n=30, steps=50, scale_by_sqrt_n=True, dtype=torch.float64)
    assert growth_per_step(norms) == pytest.approx(s, rel=0.05)


def test_first_norm_is_that_of_an_n_by_n_gaussian_matrix() -> None:
    for n in (10, 30, 100):
        norms = repeated_product_norms(1.0, n=n, steps=1)
        assert norms[0] == pytest.approx(n, rel=0.15)  # E‖A‖_F² = n²


def test_seeded_and_dtype_consistent() -> None:
    a = repeated_product_norms(1.5, seed=3)
    assert np.array_equal(a, repeated_product_norms(1.5, seed=3))
    assert not np.array_equal(a, repeated_product_norms(1.5, seed=4))
    b = repeated_product_norms(1.0, scale_by_sqrt_n=True, steps=10, dtype=torch.float64)
    c = repeated_product_norms(1.0, scale_by_sqrt_n=True, steps=10, dtype=torch.float32)
    np.testing.assert_allclose(b, c, rtol=1e-4)


def test_float32_overflows_to_inf_and_stays_inf() -> None:
    norms = repeated_product_norms(2.0, n=30, steps=50, dtype=torch.float32)
    step = first_nonfinite_step(norms)
    assert step is not None and 30 <= step <= 45
    assert np.all(np.isinf(norms[step:])) and np.all(np.isfinite(norms[:step]))
    assert not np.isnan(norms).any()
    assert abs(step - predicted_overflow_step(2.0, 30, False, torch.float32)) <= 3
    # float64 has room for the same 50 products
    assert first_nonfinite_step(repeated_product_norms(2.0, dtype=torch.float64)) is None


def test_underflow_gives_zero_not_an_exception() -> None:
    norms = repeated_product_norms(0.5, n=30, steps=60, scale_by_sqrt_n=True, dtype=torch.float16)
    step = first_nonfinite_step(norms)
    assert step is not None and norms[step] == 0.0 and np.all(norms[step:] == 0.0)
    assert abs(step - predicted_overflow_step(0.5, 30, True, torch.float16)) <= 6
    norms32 = repeated_product_norms(0.5, n=30, steps=200, scale_by_sqrt_n=True)
    step32 = first_nonfinite_step(norms32)
    assert step32 is not None and step32 > step and norms32[-1] == 0.0


def test_float16_overflows_much_earlier_than_float32() -> None:
    s16 = first_nonfinite_step(repeated_product_norms(2.0, dtype=torch.float16))
    s32 = first_nonfinite_step(repeated_product_norms(2.0, dtype=torch.float32))
    assert s16 is not None and s32 is not None and s16 < s32 / 4


def test_critical_scale() -> None:
    """s = 1/√n without the 1/√n scaling is the scaled case at s = 1."""
    n = 30
    norms = repeated_product_norms(1 / math.sqrt(n), n=n, steps=50, dtype=torch.float64)
    assert 0.8 < norms[-1] / norms[0] < 1.25 or 0.9 < growth_per_step(norms) < 1.1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"s": 0.0}, ValueError, "s must be a finite number > 0"),
        ({"s": -1.0}, ValueError, "s must be a finite number > 0"),
        ({"s": math.inf}, ValueError, "s must be a finite number > 0"),
        ({"s": "2"}, TypeError, "s must be a finite number > 0"),
        ({"s": 1.0, "n": 0}, ValueError, "n must be an int >= 1"),
        ({"s": 1.0, "n": 2.5}, TypeError, "n must be an int >= 1"),
        ({"s": 1.0, "steps": 0}, ValueError, "steps must be an int >= 1"),
        ({"s": 1.0, "seed": -1}, ValueError, "seed must be an int >= 0"),
        ({"s": 1.0, "dtype": torch.int32}, ValueError, "dtype must be one of"),
        ({"s": 1.0, "dtype": "float32"}, TypeError, "dtype must be one of the torch dtypes"),
    ],
)
def test_bad_inputs(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        repeated_product_norms(**kwargs)


def test_predicted_growth_is_s_root_n_or_s() -> None:
    assert predicted_growth(2.0, 16) == pytest.approx(8.0)
    assert predicted_growth(2.0, 16, scale_by_sqrt_n=True) == 2.0
    # the measured growth of a long product follows it (to a few percent for n = 30)
    for scaled in (False, True):
        norms = repeated_product_norms(0.9, n=30, steps=40, scale_by_sqrt_n=scaled, dtype=torch.float64)
        assert growth_per_step(norms) == pytest.approx(predicted_growth(0.9, 30, scaled), rel=0.1)
    with pytest.raises(ValueError, match="s must be a finite number > 0"):
        predicted_growth(0.0, 4)
    with pytest.raises(TypeError, match="n must be an int >= 1"):
        predicted_growth(1.0, 4.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="scale_by_sqrt_n must be True or False"):
        predicted_growth(1.0, 4, 1)  # type: ignore[arg-type]


def test_smoothed_losses() -> None:
    from helpers.drift import smoothed_losses

    losses = np.array([[1.0, 2.0], [3.0, np.nan], [5.0, 2.0], [7.0, np.inf]])
    steps, smooth = smoothed_losses(losses, 2)
    np.testing.assert_array_equal(steps, [1, 2, 3])
    ln10 = math.log(10)
    np.testing.assert_allclose(smooth, [[2.0, 4.0, 6.0], [(2 + ln10) / 2, (ln10 + 2) / 2, (2 + ln10) / 2]])
    assert smoothed_losses(losses, 50)[1].shape == (2, 1)  # the window shrinks to the run
    with pytest.raises(ValueError, match="window must be an int >= 1"):
        smoothed_losses(losses, 0)
    with pytest.raises(ValueError, match="losses must be 2-D"):
        smoothed_losses(np.ones(3), 2)


def test_cached_product_norms() -> None:
    from helpers.drift import cached_product_norms

    norms = cached_product_norms(1.5, 8, "float32", False, 10)
    np.testing.assert_array_equal(norms, repeated_product_norms(1.5, n=8, steps=10, dtype=torch.float32))
    assert cached_product_norms(1.5, 8, "float32", False, 10) is norms and not norms.flags.writeable
    with pytest.raises(ValueError, match="dtype must be one of"):
        cached_product_norms(1.5, 8, "int8", False, 10)


def test_predicted_norms_and_norm_range() -> None:
    np.testing.assert_allclose(predicted_norms(3.0, 2.0, 4), [3.0, 6.0, 12.0, 24.0])
    assert predicted_norms(1.0, 1e10, 40)[-1] == math.inf  # past float64: inf, no warning
    low, high = norm_range(30, torch.float32)
    info = torch.finfo(torch.float32)
    assert high == pytest.approx(30 * info.max) and low == pytest.approx(30 * info.smallest_normal * info.eps)
    assert norm_range(30, torch.float64)[1] == 1e308  # capped at a float64 value


def test_rescaled_profiles_match_a_fresh_network_at_that_gain() -> None:
    from helpers.drift import RescaledProfiles, normed_profile

    profiles = RescaledProfiles(batch=32, width=16)
    first = profiles.profile(1.0, 6, "none")
    act, grad = profiles.profile(3.0, 6, "none")  # the gain-1 network rescaled in place
    ref_act, ref_grad = normed_profile(3.0, "none", depth=6, width=16, batch=32)
    np.testing.assert_allclose(act, ref_act, rtol=1e-4)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-4)
    assert profiles.profile(1.0, 6, "none") is first  # cached, not recomputed from the rescaled net
    assert profiles.reference(6, "none")[0] is profiles.reference(6, "none")[0]
    with pytest.raises(ValueError, match="norm must be one of"):
        profiles.profile(1.0, 6, "groupnorm")
    with pytest.raises(ValueError, match="gain must be a finite number > 0"):
        profiles.profile(0.0, 6, "none")


def test_growth_and_first_nonfinite_helpers() -> None:
    assert growth_per_step(np.array([1.0, 2.0, 4.0, np.inf])) == pytest.approx(2.0)
    assert math.isnan(growth_per_step(np.array([1.0, np.inf])))
    assert first_nonfinite_step(np.array([1.0, 0.5, 0.0])) == 2
    assert first_nonfinite_step(np.array([1.0, 2.0])) is None
    assert predicted_overflow_step(1.0, 30, True, torch.float32) == math.inf


# ---------------------------------------------------------------- normalization layers


def test_normed_profiles() -> None:
    from helpers.drift import make_normed_mlp, normed_profile
    from helpers.initialization import norm_profile

    for norm, ln in (("none", False), ("layernorm", True)):
        act, grad = normed_profile(2.0, norm, depth=10, batch=64)
        ref = norm_profile(2.0, depth=10, layernorm=ln, batch=64)
        np.testing.assert_allclose(act, ref.activation_norms, rtol=1e-6)
        np.testing.assert_allclose(grad, ref.grad_norms, rtol=1e-6)
    model = make_normed_mlp(2.0, "batchnorm", depth=3, width=16)
    assert isinstance(list(model)[0][-1], nn.BatchNorm1d)
    # with a normalization layer, c no longer sets the scale
    for norm in ("layernorm", "batchnorm"):
        acts = [normed_profile(c, norm, depth=20, batch=64)[0] for c in (1.0, 3.0)]
        assert np.all(np.abs(np.log(acts[0] / acts[1])) < math.log(1.05))
    none = [normed_profile(c, "none", depth=20, batch=64)[0] for c in (1.0, 3.0)]
    assert none[1][-1] / none[0][-1] > 1e3
    with pytest.raises(ValueError, match="norm must be one of"):
        make_normed_mlp(2.0, "groupnorm")


# ---------------------------------------------------------------- panels (callbacks)


def test_product_panel_callback() -> None:
    from helpers.widgets.drift import product_panel, update_product

    panel = product_panel()
    panel.redraw(s=2.0, n=30, dtype="float32", scaled=False)
    assert "overflows to inf at step" in panel.readout
    panel.redraw(s=1.0, n=30, dtype="float64", scaled=True)
    assert "stays finite" in panel.readout and "critical s* = 1" in panel.readout
    panel.redraw(s=0.5, n=30, dtype="float16", scaled=True)
    assert "underflows to 0 at step" in panel.readout
    assert update_product(panel.figure, s=1.0, n=4, dtype="float32", scaled=False).startswith("growth per step")
    assert len(panel.figure.axes) == 1


def test_profile_panel_callback() -> None:
    from helpers.widgets.drift import profile_panel

    panel = profile_panel()
    panel.redraw(gain=1.0, depth=20, norm="none")
    assert panel.readout.startswith("c = 1, depth 20, none")
    panel.redraw(gain=3.0, depth=20, norm="layernorm")
    assert "layernorm" in panel.readout
    assert len(panel.figure.axes) == 2
    lines = panel.figure.axes[0].get_lines()
    assert len(lines) == 2 and len(lines[1].get_xdata()) == 20


# ---------------------------------------------------------------- the studies' figures


def test_study_figures_draw_the_quick_studies() -> None:
    import studies
    from helpers.plots import drift as plots

    moved = studies.get("weights_move")
    arrays = moved.execute(moved.quick).arrays
    per_epoch = moved.quick.train_images // moved.quick.batch_size
    figures = [plots.weights_study_figure(arrays),
               plots.learning_figure(arrays, moved.quick.checkpoint_step, per_epoch),
               plots.study_profile_figure(arrays), plots.study_drift_figure(arrays, per_epoch),
               plots.why_little_figure(arrays)]
    depth = studies.get("layernorm_depth")
    depth_arrays = dict(depth.execute(depth.quick).arrays)
    figures.append(plots.similarity_figure(depth_arrays))
    depth_arrays["final_loss"] = depth_arrays["final_loss"].copy()
    depth_arrays["final_loss"][0, 1, 0] = np.nan        # every seed of one cell diverged: an ✕
    figures.append(plots.layernorm_depth_figure(depth_arrays))
    for fig in figures:
        assert fig.axes and all(ax.get_title() and ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
    for fig in figures[:-1]:
        assert all(ax.get_legend() is not None for ax in fig.axes)
    assert [ax.get_legend() is not None for ax in figures[-1].axes] == [True, False, False] * 2  # first column
    crosses = [line for line in figures[-1].axes[0].get_lines() if line.get_marker() == "X"]
    assert len(crosses) == 1 and crosses[0].get_xdata()[0] == depth.quick.lrs[0]
    factors = {"layernorm": np.full((5, 9), 1.25)}
    fig = plots.backward_growth_figure(factors, {"layernorm": np.full((5, 9), 1.21)})
    assert len(fig.axes[0].get_lines()) == 3


def test_format_cell_reports_median_range_and_diverged_runs() -> None:
    from helpers.drift import format_cell

    assert format_cell(np.array([1.0, 3.0, 2.0])) == "2.00 (1.00–3.00)"
    assert format_cell(np.array([0.1, np.nan, 0.3, np.inf]), ".0f", scale=100) == "20 (10–30), 2 diverged"
    assert format_cell(np.array([np.nan, np.nan])) == "all diverged"
    with pytest.raises(ValueError, match="values must hold at least one value"):
        format_cell(np.array([]))


def test_checkpoint_comparison_figure() -> None:
    from helpers.plots import drift as plots

    fig = plots.checkpoint_comparison_figure(np.full(50, 0.01), np.full((5, 50), 0.012), np.full(50, 0.011), 500)
    ax = fig.axes[0]
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None
    assert len(ax.get_lines()) == 3
