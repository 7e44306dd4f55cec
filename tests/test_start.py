"""helpers.start: the samples and the histogram-peak measurement of notebook 00."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.start import BINS, density_histogram, gaussian_density, gaussian_samples, histogram_peak, peak_ratios


def test_samples_are_seeded_and_scaled() -> None:
    a = gaussian_samples(1.0, n=500, seed=3)
    assert a.shape == (500,)
    np.testing.assert_array_equal(a, gaussian_samples(1.0, n=500, seed=3))
    assert not np.array_equal(a, gaussian_samples(1.0, n=500, seed=4))
    assert abs(gaussian_samples(4.0, n=20_000).std() - 4.0) < 0.1


def test_gaussian_density() -> None:
    assert gaussian_density(np.array([0.0]), 2.0)[0] == pytest.approx(1 / (2 * np.sqrt(2 * np.pi)))
    grid = np.linspace(-40, 40, 8001)
    assert np.trapezoid(gaussian_density(grid, 3.0), grid) == pytest.approx(1.0, rel=1e-6)
    assert gaussian_density(np.array([2.0]), 1.0)[0] == pytest.approx(np.exp(-2) / np.sqrt(2 * np.pi))
    assert gaussian_density(np.array([3.0]), 2.0, mean=3.0)[0] == gaussian_density(np.array([0.0]), 2.0)[0]
    with pytest.raises(ValueError, match="sigma must be a finite number > 0"):
        gaussian_density(grid, 0.0)


def test_density_histogram_has_area_one_and_follows_the_density() -> None:
    heights = density_histogram(gaussian_samples(1.0, n=200_000))
    assert heights.shape == (len(BINS) - 1,)
    assert (heights * np.diff(BINS)).sum() == pytest.approx(1.0)
    middles = (BINS[:-1] + BINS[1:]) / 2
    assert np.abs(heights - gaussian_density(middles, 1.0)).max() < 0.02
    with pytest.raises(TypeError, match="samples must be a NumPy array"):
        density_histogram([0.0])  # type: ignore[arg-type]


def test_histogram_peak_of_a_known_histogram() -> None:
    width = BINS[1] - BINS[0]
    # 3 samples in the bar left of 0, 1 in the bar right of 0, 4 far away: (3 + 1) / 8 / (2 width)
    samples = np.array([-0.1, -0.1, -0.2, 0.1, 5.0, 5.0, -5.0, -5.0])
    assert histogram_peak(samples) == pytest.approx(4 / 8 / (2 * width))


def test_histogram_peak_approaches_the_density_at_zero() -> None:
    peak = histogram_peak(gaussian_samples(1.0, n=200_000))
    assert peak == pytest.approx(1 / np.sqrt(2 * np.pi), rel=0.03)


def test_peak_ratio_halves_when_sigma_doubles() -> None:
    ratios = peak_ratios(seeds=range(20))
    assert ratios.shape == (20,)
    assert 0.45 < np.median(ratios) < 0.55
    assert np.median(peak_ratios(factor=1.0, seeds=range(20))) == pytest.approx(1.0, abs=0.05)
    assert len(set(ratios.round(6))) > 10  # independent draws: the ratios differ


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="sigma must be a finite number > 0"):
        gaussian_samples(-1.0)
    with pytest.raises(TypeError, match="sigma must be a finite number > 0"):
        gaussian_samples("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="n must be an int >= 1"):
        gaussian_samples(1.0, n=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        gaussian_samples(1.0, seed=-1)
    with pytest.raises(TypeError, match="samples must be a NumPy array"):
        histogram_peak([0.0, 1.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty 1-D"):
        histogram_peak(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="seeds must hold at least one"):
        peak_ratios(seeds=[])
    with pytest.raises(ValueError, match="factor must be a finite number > 0"):
        peak_ratios(factor=0.0)
