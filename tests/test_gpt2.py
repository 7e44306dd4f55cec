"""helpers.gpt2: GPT-2 small's LayerNorm parameters, their sources, measurements and panel."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from helpers import gpt2, gpt2_hub
from helpers.data import DATA_DIR_ENV, DATA_FILES, DataFileError, data_dir, sha256_of
from helpers.plots import gpt2 as gpt2_plots
from helpers.widgets.gpt2 import layernorm_panel

REPO = Path(__file__).resolve().parent.parent
SNAPSHOT_SHA256 = DATA_FILES[gpt2_hub.SNAPSHOT_NAME].sha256


@pytest.fixture(scope="module")
def params() -> dict[str, np.ndarray]:
    return gpt2_hub.load_layernorm_params("snapshot")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# -- the snapshot -----------------------------------------------------------------------


def test_snapshot_keys_shapes_and_dtype(params: dict[str, np.ndarray]) -> None:
    assert list(params) == gpt2.param_keys()
    assert len(params) == 50
    expected = {f"h.{i}.{g}.{k}" for i in range(12) for g in ("ln_1", "ln_2") for k in ("weight", "bias")}
    assert set(params) == expected | {"ln_f.weight", "ln_f.bias"}
    for value in params.values():
        assert value.shape == (768,) and value.dtype == np.float32


def test_snapshot_known_values(params: dict[str, np.ndarray]) -> None:
    assert params["ln_f.weight"][0] == pytest.approx(1.3971, abs=1e-4)
    assert params["h.0.ln_1.weight"][0] == pytest.approx(0.22322033, abs=1e-7)
    np.testing.assert_allclose(
        params["ln_f.weight"][:10],
        [1.3971, 1.3750, 1.8870, 1.1688, 1.2724, 1.2508, 9.4198, 1.4371, 1.4527, 1.1856], atol=1e-4)
    np.testing.assert_allclose(
        params["ln_f.bias"][:5], [0.00108716, 0.03652938, -0.06729616, 0.00016416, -0.06744395],
        atol=1e-8)


def test_corrupted_snapshot_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: None) -> None:
    bad = tmp_path / gpt2_hub.SNAPSHOT_NAME
    shutil.copy(data_dir() / gpt2_hub.SNAPSHOT_NAME, bad)
    raw = bytearray(bad.read_bytes())
    raw[-200] ^= 0xFF  # flip one byte inside the last array
    bad.write_bytes(bytes(raw))
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    for source in ("snapshot", "auto"):  # auto falls back to the snapshot, which is refused too
        with pytest.raises(DataFileError, match="corrupted"):
            gpt2_hub.load_layernorm_params(source)


def test_missing_snapshot_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(DataFileError, match="missing"):
        gpt2_hub.load_layernorm_params("snapshot")


def test_validate_params_names_the_problem(params: dict[str, np.ndarray]) -> None:
    with pytest.raises(TypeError, match="params must be a dict"):
        gpt2.validate_params([1, 2])  # type: ignore[arg-type]
    partial = dict(params)
    del partial["ln_f.bias"]
    with pytest.raises(ValueError, match=r"missing \['ln_f.bias'\]"):
        gpt2.validate_params(partial)
    wrong = {**params, "h.3.ln_2.weight": np.zeros(767, np.float32)}
    with pytest.raises(ValueError, match=r"h.3.ln_2.weight.*shape \(768,\)"):
        gpt2.validate_params(wrong)
    nan = {**params, "ln_f.weight": np.full(768, np.nan, np.float32)}
    with pytest.raises(ValueError, match="non-finite"):
        gpt2.validate_params(nan)


def test_save_params_round_trip(params: dict[str, np.ndarray], tmp_path: Path) -> None:
    path = tmp_path / "export.npz"
    digest = gpt2_hub.save_params(params, path)
    assert digest == sha256_of(path)
    # the export format reproduces the shipped snapshot byte for byte
    assert digest == SNAPSHOT_SHA256
    with np.load(path, allow_pickle=False) as archive:
        assert archive.files == gpt2.param_keys()
        for key in archive.files:
            np.testing.assert_array_equal(archive[key], params[key])


# -- sources and the offline behaviour -----------------------------------------------------


def test_unknown_source_raises_value_error() -> None:
    with pytest.raises(ValueError, match=r"source must be one of \('auto', 'hub', 'snapshot'\), got 'web'"):
        gpt2_hub.load_layernorm_params("web")


def _no_connection(*args: object, **kwargs: object) -> socket.socket:
    raise AssertionError("offline mode must not touch the network")


def test_auto_offline_uses_the_snapshot_at_once_and_says_why(
    offline: None, params: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gpt2_hub.socket, "create_connection", _no_connection)
    loaded = gpt2_hub.load_layernorm_params_with_source("auto")
    assert loaded.source == "snapshot"
    assert "HF_HUB_OFFLINE=1" in loaded.reason
    for key in gpt2.param_keys():
        np.testing.assert_array_equal(loaded.params[key], params[key])


def test_hub_offline_fails_at_once_with_a_clear_message(offline: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpt2_hub.socket, "create_connection", _no_connection)
    expected = "hub is not reachable: HF_HUB_OFFLINE=1 is set.*source='snapshot'"
    with pytest.raises(gpt2_hub.HubUnavailableError, match=expected):
        gpt2_hub.load_layernorm_params("hub")


def test_probe_is_bounded_when_the_network_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A resolver or connect that never answers must not stall the caller."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    calls = []
    release = threading.Event()

    def hang(*args: object, **kwargs: object) -> socket.socket:
        calls.append(args)
        # no answer until the test is over (10 s at most, so a probe that waited for it fails
        # on its reason instead of hanging): only the probe's own timeout can end its wait
        release.wait(timeout=10)
        raise OSError("unreachable")

    monkeypatch.setattr(gpt2_hub.socket, "create_connection", hang)
    try:
        reason = gpt2_hub.probe_hub(timeout=0.2)
        assert reason == "no answer from huggingface.co:443 within 0.2 s"
        assert len(calls) == 1, "one attempt, no retries"
        with pytest.raises(gpt2_hub.HubUnavailableError, match="no answer from huggingface.co:443"):
            gpt2_hub.load_layernorm_params_with_source("hub", timeout=0.2)
        loaded = gpt2_hub.load_layernorm_params_with_source("auto", timeout=0.2)
        assert loaded.source == "snapshot" and "no answer" in loaded.reason
        assert len(calls) == 3, "one attempt per load, no retries"
    finally:
        release.set()  # the hung connects return and their threads end


def test_probe_reports_a_refused_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)

    def refuse(*args: object, **kwargs: object) -> socket.socket:
        raise ConnectionRefusedError("refused")

    monkeypatch.setattr(gpt2_hub.socket, "create_connection", refuse)
    assert gpt2_hub.probe_hub(timeout=1.0) == "cannot connect to huggingface.co:443 (ConnectionRefusedError: refused)"


def test_probe_validates_timeout() -> None:
    for bad in (0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="timeout must be a finite number > 0"):
            gpt2_hub.probe_hub(timeout=bad)
    for bad in ("3", True, None):
        with pytest.raises(TypeError, match="timeout must be a finite number > 0"):
            gpt2_hub.probe_hub(timeout=bad)  # type: ignore[arg-type]


def test_offline_path_never_imports_transformers() -> None:
    code = (
        "import sys, helpers.gpt2_hub as g; r = g.load_layernorm_params_with_source('auto'); "
        "print(r.source, 'transformers' in sys.modules)"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120, check=True)
    assert out.stdout.split() == ["snapshot", "False"]


def test_export_command_fails_cleanly_offline(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    target = tmp_path / "out.npz"
    out = subprocess.run([sys.executable, "-m", "helpers.gpt2_hub", "export", str(target)], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "error: the Hugging Face hub is not reachable: HF_HUB_OFFLINE=1 is set" in out.stderr
    assert not target.exists()


@pytest.mark.network
def test_hub_matches_snapshot(params: dict[str, np.ndarray], tmp_path: Path) -> None:
    reason = gpt2_hub.probe_hub()
    if reason is not None:
        pytest.skip(f"the Hugging Face hub is not reachable ({reason}); the snapshot cannot be compared")
    loaded = gpt2_hub.load_layernorm_params_with_source("hub")
    assert loaded.source == "hub"
    for key in gpt2.param_keys():
        np.testing.assert_allclose(loaded.params[key], params[key], rtol=0, atol=1e-6, err_msg=key)
    digest = gpt2_hub.save_params(loaded.params, tmp_path / "hub.npz")
    assert len(digest) == 64


# -- measurements ------------------------------------------------------------------------


def test_names_and_layernorm_name() -> None:
    names = gpt2.layernorm_names()
    assert len(names) == 25 and names[0] == "h.0.ln_1" and names[-2] == "h.11.ln_2" and names[-1] == "ln_f"
    assert gpt2.layernorm_name(3, "ln_2") == "h.3.ln_2"
    assert gpt2.layernorm_name(7, "ln_f") == "ln_f"
    with pytest.raises(ValueError, match="group must be one of"):
        gpt2.layernorm_name(0, "ln_3")
    with pytest.raises(ValueError, match=r"layer must be an int in \[0, 11\]"):
        gpt2.layernorm_name(12, "ln_1")
    with pytest.raises(TypeError, match="layer must be an int"):
        gpt2.layernorm_name(1.0, "ln_1")  # type: ignore[arg-type]


def test_stack_and_values(params: dict[str, np.ndarray]) -> None:
    assert gpt2.stack(params, "weight").shape == (25, 768)
    assert gpt2.values_of(params, "bias").size == 25 * 768
    assert gpt2.values_of(params, "weight", "ln_f").size == 768
    assert gpt2.values_of(params, "weight", "ln_1").size == 12 * 768
    with pytest.raises(ValueError, match=r"kind must be one of \('weight', 'bias'\)"):
        gpt2.stack(params, "gamma")
    with pytest.raises(ValueError, match="group must be one of"):
        gpt2.values_of(params, "weight", "ln_x")


def test_claim_verdict_matches_the_data(params: dict[str, np.ndarray]) -> None:
    verdict = gpt2.gamma_claim_verdict(params)
    assert set(verdict.fails) == {"h.0.ln_1", "h.0.ln_2", "h.11.ln_1", "h.11.ln_2", "ln_f"}
    assert len(verdict.holds) == 20
    assert 0.7 < verdict.overall_fraction < 0.8
    stats = {s.name: s for s in gpt2.layernorm_stats(params, "bias")}
    assert all(abs(s.median) < 0.03 for s in stats.values())
    table = gpt2.stats_table(gpt2.layernorm_stats(params))
    assert table.count("\n") == 26 and "ln_f" in table


def test_fraction_in_and_apply_layernorm() -> None:
    assert gpt2.fraction_in(np.array([0.1, 0.2, 0.3, 0.4, 0.5])) == pytest.approx(0.6)
    import torch

    x = np.random.default_rng(0).standard_normal((4, 768))
    g = np.random.default_rng(1).uniform(0.1, 2.0, 768)
    b = np.random.default_rng(2).normal(0, 0.1, 768)
    ref = torch.nn.functional.layer_norm(torch.from_numpy(x), (768,), torch.from_numpy(g), torch.from_numpy(b))
    np.testing.assert_allclose(gpt2.apply_layernorm(x, g, b), ref.numpy(), atol=1e-9)


def test_gaussian_output_scale(params: dict[str, np.ndarray]) -> None:
    scale = gpt2.gaussian_output_scale(params, n=256)
    assert abs(scale.input_rms - 1) < 0.02
    np.testing.assert_allclose(scale.output_rms, scale.predicted_rms, rtol=0.03)
    shrinks = [n for n, r in zip(scale.names, scale.output_rms, strict=True) if r < 0.6]
    assert len(shrinks) == 23 and "ln_f" not in shrinks and "h.0.ln_2" not in shrinks
    with pytest.raises(ValueError, match="n must be an int >= 2"):
        gpt2.gaussian_output_scale(params, n=1)


# -- figures and the slider panel ----------------------------------------------------------


def test_static_figures_build(params: dict[str, np.ndarray]) -> None:
    figs = [
        gpt2_plots.all_values_histograms(params),
        gpt2_plots.group_histograms(params),
        gpt2_plots.per_layer_histograms(params, "bias"),
        gpt2_plots.parameter_heatmaps(params, marked=[87, 480]),
        gpt2_plots.channel_profiles(params, [87, 480], "weight"),
        gpt2_plots.output_scale_figure(gpt2.gaussian_output_scale(params, n=64)),
    ]
    for fig in figs:
        assert fig.axes and all(ax.get_title() or not ax.axison for ax in fig.axes if ax.get_label() != "<colorbar>")


def test_panel_callbacks_at_their_extremes(params: dict[str, np.ndarray]) -> None:
    panel = layernorm_panel(params)
    extremes = [
        dict(layer=0, group="ln_1", kind="weight", bins=10, log_y=True),
        dict(layer=11, group="ln_2", kind="bias", bins=150, log_y=False),
        dict(layer=11, group="ln_f", kind="weight", bins=150, log_y=True),
        dict(layer=0, group="ln_f", kind="bias", bins=10, log_y=False),
    ]
    for setting in extremes:
        panel.redraw(**setting)
        name = gpt2.layernorm_name(setting["layer"], setting["group"])
        assert panel.readout.startswith(f"{name}.{setting['kind']}: median ")
        ax = panel.figure.axes[0]
        assert ax.get_yscale() == ("log" if setting["log_y"] else "linear")
        assert name in ax.get_title()
        assert len(panel.figure.axes) == 1, "redrawn in place, no new axes"
    panel.redraw(layer=0, group="ln_1", kind="weight")
    assert panel.readout.endswith("in [0.2, 0.4]: 27%")
    panel.redraw(group="ln_f", kind="weight")
    assert "range [0.00443, 17.4]" in panel.readout


def test_panel_update_rejects_bad_values(params: dict[str, np.ndarray]) -> None:
    panel = layernorm_panel(params)
    with pytest.raises(ValueError, match="bins must be an int >= 1"):
        panel.redraw(bins=0)
    with pytest.raises(ValueError, match="kind must be one of"):
        panel.redraw(kind="gamma")
    with pytest.raises(ValueError, match=r"layer must be an int in \[0, 11\]"):
        panel.redraw(layer=12)


def test_parameter_histogram(params: dict[str, np.ndarray]) -> None:
    hist = gpt2.parameter_histogram(params, 3, "ln_2", "bias", 20)
    values = params["h.3.ln_2.bias"]
    assert hist.name == "h.3.ln_2" and hist.counts.sum() == 768 and len(hist.edges) == 21
    assert (hist.low, hist.high) == (values.min(), values.max())
    assert hist.median == pytest.approx(np.median(values))
    assert hist.in_claim_range == gpt2.fraction_in(values)
    assert gpt2.parameter_histogram(params, 7, "ln_f", "weight", 5).name == "ln_f"  # block ignored
    with pytest.raises(TypeError, match="bins must be an int"):
        gpt2.parameter_histogram(params, 0, "ln_1", "weight", 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="group must be one of"):
        gpt2.parameter_histogram(params, 0, "ln_3", "weight", 10)



def test_residual_stream_scale_code_path_on_a_random_model() -> None:
    """The real-text path, exercised offline on a small randomly initialised GPT-2 (no download)."""
    import torch
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(0)
    model = GPT2Model(GPT2Config(n_layer=12, n_embd=32, n_head=2, vocab_size=50, n_positions=16)).eval()
    ids = torch.arange(10).unsqueeze(0)
    result = gpt2.residual_stream_scale(model, ids)
    assert result.names == gpt2.layernorm_names() and result.n_tokens == 10
    assert result.input_rms.shape == result.output_rms.shape == (25,)
    assert np.all(result.input_rms > 0) and np.all(np.isfinite(result.output_rms))
    # default γ = 1, β = 0: every LayerNorm output has RMS ≈ 1 whatever comes in
    np.testing.assert_allclose(result.output_rms, 1.0, atol=0.01)
    assert all(len(c) == 3 for c in result.top_input_channels)
    assert not any(m._forward_hooks for m in model.modules()), "hooks are removed"
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        gpt2.largest_channels(np.ones(4), k=0)
    assert gpt2.largest_channels(np.array([0.1, -5.0, 3.0]), k=2) == [1, 2]


def test_int8_roundtrip_error(params: dict[str, np.ndarray]) -> None:
    x = np.random.default_rng(0).standard_normal((64, 768))
    y = gpt2.apply_layernorm(x, params["ln_f.weight"], params["ln_f.bias"])
    full = gpt2.int8_roundtrip_error(y)
    kept = gpt2.int8_roundtrip_error(y, gpt2.largest_channels(params["ln_f.weight"]))
    assert kept < full / 1.5
    with pytest.raises(ValueError, match="y must be a 2-D array"):
        gpt2.int8_roundtrip_error(np.zeros(5))


class _FakeGPT2Model:
    """Stands in for ``transformers.GPT2Model`` so the hub code path runs without a network."""

    calls: list[tuple[tuple, dict]] = []
    fail: Exception | None = None
    state: dict = {}

    @classmethod
    def from_pretrained(cls, *args: object, **kwargs: object) -> _FakeGPT2Model:
        cls.calls.append((args, kwargs))
        if cls.fail is not None:
            raise cls.fail
        return cls()

    def eval(self) -> _FakeGPT2Model:
        return self

    def state_dict(self) -> dict:
        return self.state


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch, params: dict[str, np.ndarray]):
    import types

    import torch

    module = types.ModuleType("transformers")
    module.GPT2Model = _FakeGPT2Model  # type: ignore[attr-defined]
    _FakeGPT2Model.calls = []
    _FakeGPT2Model.fail = None
    _FakeGPT2Model.state = {f"transformer.{k}": torch.from_numpy(v.copy()) for k, v in params.items()}
    _FakeGPT2Model.state["transformer.wte.weight"] = torch.zeros(3, 768)
    monkeypatch.setitem(sys.modules, "transformers", module)
    monkeypatch.setattr(gpt2_hub, "probe_hub", lambda **kwargs: None)
    return _FakeGPT2Model


def test_hub_path_pins_the_revision_and_reads_the_layernorms(fake_hub, params: dict[str, np.ndarray]) -> None:
    loaded = gpt2_hub.load_layernorm_params_with_source("auto")
    assert loaded.source == "hub" and loaded.reason == "the hub was reachable"
    (args, kwargs), = fake_hub.calls
    assert args == ("openai-community/gpt2",)
    assert kwargs == {"revision": "607a30d783dfa663caf39e06633721c8d4cfcd7e", "use_safetensors": True,
                      "trust_remote_code": False}
    assert list(loaded.params) == gpt2.param_keys()
    for key in gpt2.param_keys():
        np.testing.assert_array_equal(loaded.params[key], params[key])


def test_failed_download_is_wrapped_and_auto_falls_back(fake_hub) -> None:
    fake_hub.fail = RuntimeError("connection reset")
    with pytest.raises(gpt2_hub.HubUnavailableError, match="failed: RuntimeError: connection reset"):
        gpt2_hub.load_layernorm_params("hub")
    loaded = gpt2_hub.load_layernorm_params_with_source("auto")
    assert loaded.source == "snapshot" and "connection reset" in loaded.reason


# -- outlier rule, channel ranks and folding ----------------------------------------------


def test_robust_z_is_zero_at_the_median_and_flags_a_planted_outlier(params: dict[str, np.ndarray]) -> None:
    planted = dict(params)
    gamma = params["h.5.ln_1.weight"].copy()
    gamma[10] = np.median(gamma) + 50 * np.median(np.abs(gamma - np.median(gamma)))
    planted["h.5.ln_1.weight"] = gamma
    z = gpt2.robust_z(planted, "weight")
    assert z.shape == (25, 768)
    assert z[gpt2.layernorm_names().index("h.5.ln_1"), 10] == pytest.approx(50 / 1.4826, rel=0.01)
    assert np.allclose(np.median(z, axis=1), 0, atol=1e-9)


def test_outliers_match_the_data(params: dict[str, np.ndarray]) -> None:
    z = gpt2.robust_z(params, "weight")
    found = gpt2.outliers_from_z(z, threshold=10, min_layers=10)
    assert [o.channel for o in found] == [87, 266, 480, 447, 64, 373, 481, 138]
    assert all(o.count >= 10 for o in found) and found[0].count == 18
    assert 378 not in {o.channel for o in gpt2.outliers_from_z(gpt2.robust_z(params, "bias"))}
    # a looser rule finds more channels, a stricter one fewer
    assert len(gpt2.outliers_from_z(z, threshold=6)) > len(found)
    assert len(gpt2.outliers_from_z(z, min_layers=20)) < len(found)


def test_channel_percentile(params: dict[str, np.ndarray]) -> None:
    rank = gpt2.channel_percentile(params, 447, "weight")
    assert rank.shape == (25,) and rank[0] > 10 and (rank <= 1.5).sum() == 24
    rows = gpt2.stack(params, "weight")
    assert gpt2.channel_percentile(params, int(np.argmax(rows[-1])))[-1] == 100.0
    for bad in (-1, 768):
        with pytest.raises(ValueError, match=r"channel must be an int in \[0, 767\]"):
            gpt2.channel_percentile(params, bad)
    for bad in (3.0, True):
        with pytest.raises(TypeError, match=r"channel must be an int in \[0, 767\]"):
            gpt2.channel_percentile(params, bad)


def test_fold_layernorm_into_linear_reproduces_the_composition() -> None:
    rng = np.random.default_rng(1)
    gamma, beta = rng.uniform(0.1, 2, 16), rng.normal(size=16)
    w, b, x = rng.normal(size=(5, 16)), rng.normal(size=5), rng.normal(size=(7, 16))
    w_f, b_f = gpt2.fold_layernorm_into_linear(gamma, beta, w, b)
    plain = gpt2.apply_layernorm(x, np.ones(16), np.zeros(16))
    np.testing.assert_allclose(gpt2.apply_layernorm(x, gamma, beta) @ w.T + b, plain @ w_f.T + b_f, atol=1e-12)
    # without the W β term the result is wrong: the check can fail
    assert np.abs(gpt2.apply_layernorm(x, gamma, beta) @ w.T + b - (plain @ w_f.T + b)).max() > 0.1
    _, b_none = gpt2.fold_layernorm_into_linear(gamma, beta, w)
    np.testing.assert_allclose(b_none, w @ beta)


@pytest.mark.parametrize("shapes, message", [
    (((16,), (15,), (5, 16), (5,)), "gamma and beta must be 1-D of the same length"),
    (((16,), (16,), (5, 15), (5,)), r"weight must have shape \(out, 16\)"),
    (((16,), (16,), (5, 16), (4,)), r"bias must have shape \(5,\)"),
])
def test_fold_layernorm_into_linear_rejects_bad_shapes(shapes: tuple, message: str) -> None:
    arrays = [np.ones(s) for s in shapes]
    with pytest.raises(ValueError, match=message):
        gpt2.fold_layernorm_into_linear(*arrays)


def test_folding_check_on_real_layernorms(params: dict[str, np.ndarray]) -> None:
    for name in ("h.5.ln_1", "ln_f"):
        f = gpt2.folding_check(params, name, out_features=256, n_tokens=16)
        assert f.max_diff_folded < 1e-5 * f.out_rms
        assert f.max_diff_gamma_only > 0.1 * f.out_rms
    assert gpt2.folding_check(params, "ln_f", out_features=256).weight_change > 1.0
    with pytest.raises(ValueError, match="name must be one of the 25 LayerNorm names"):
        gpt2.folding_check(params, "ln_g")
    with pytest.raises(ValueError, match="out_features must be an int >= 1"):
        gpt2.folding_check(params, "ln_f", out_features=0)


def test_per_layer_histograms_do_not_pile_outliers_into_the_edge_bins(params: dict[str, np.ndarray]) -> None:
    fig = gpt2_plots.per_layer_histograms(params, "weight")
    ln_f_axes = fig.axes[12]
    assert "20 > 3.4 (max 17.4)" in ln_f_axes.get_title()
    (stairs,) = [p for p in ln_f_axes.patches if hasattr(p, "get_data")]
    assert stairs.get_data().values.sum() == 768 - 26  # the 6 below and 20 above are left out


# -- the references of notebook 05's build-it-yourself exercises ---------------------------


def test_robust_z_rows_on_a_small_example() -> None:
    rows = np.array([[1.0, 2.0, 3.0, 4.0, 100.0, 5.0], [0.0, 0.0, 1.0, 2.0, 2.0, 4.0]])
    z = gpt2.robust_z_rows(rows)
    # row 0: median 3.5 (the mean of the two middle values), |x − 3.5| = 2.5 1.5 .5 .5 96.5 1.5 -> MAD 1.5
    np.testing.assert_allclose(z[0], (rows[0] - 3.5) / (1.4826 * 1.5))
    # row 1: median 1.5, deviations 1.5 1.5 .5 .5 .5 2.5 -> MAD 1.0
    np.testing.assert_allclose(z[1], (rows[1] - 1.5) / 1.4826)
    import torch
    np.testing.assert_array_equal(gpt2.robust_z_rows(torch.tensor(rows)), z)


@pytest.mark.parametrize("values, error, message", [
    ("abc", TypeError, "values must be a numeric array"),
    (None, TypeError, "values must be a numeric array"),
    ([[1.0, "x"]], TypeError, "values must be a numeric array"),
    (np.float64(3.0), ValueError, "at least 2 values along the last axis"),
    (np.ones((3, 1)), ValueError, "at least 2 values along the last axis"),
    (np.array([1.0, np.nan, 2.0]), ValueError, "values must be finite"),
    (np.array([[1.0, 1.0, 1.0, 5.0], [1.0, 2.0, 3.0, 4.0]]), ValueError, "median absolute deviation is 0"),
])
def test_robust_z_rows_rejects_bad_values(values, error, message) -> None:
    with pytest.raises(error, match=message):
        gpt2.robust_z_rows(values)


def test_outliers_from_z(params: dict[str, np.ndarray]) -> None:
    z = gpt2.robust_z(params, "bias")
    # a planted channel that is an outlier everywhere comes first
    planted = z.copy()
    planted[:, 5] = 50.0
    found = gpt2.outliers_from_z(planted, 10, 10)
    assert found[0].channel == 5 and found[0].count == 25
    for kwargs, message in (({"z": z[:, :10]}, r"z must be a finite \(25, 768\) array"),
                            ({"z": z * np.nan}, r"z must be a finite \(25, 768\) array"),
                            ({"z": z, "threshold": -1}, "threshold must be a finite number > 0"),
                            ({"z": z, "min_layers": 30}, r"min_layers must be an int in \[1, 25\]")):
        with pytest.raises(ValueError, match=message):
            gpt2.outliers_from_z(**kwargs)


def test_int8_roundtrip_on_a_small_example() -> None:
    y = np.array([[127.0, -63.6, 0.4, 10.0], [0.0, 0.0, 0.0, 0.0], [-2.54, 1.0, 0.5, 0.0]])
    out = gpt2.int8_roundtrip(y)
    np.testing.assert_allclose(out[0], [127.0, -64.0, 0.0, 10.0])     # scale 1
    np.testing.assert_array_equal(out[1], 0.0)                        # zeros stay zeros
    np.testing.assert_allclose(out[2], [-2.54, 1.0, 0.5, 0.0])       # scale 0.02: on the grid
    kept = gpt2.int8_roundtrip(y, keep_channels=[0])                 # channel 0 kept: scale 63.6 / 127
    assert kept[0, 0] == 127.0 and kept[0, 1] == pytest.approx(-63.6)
    with pytest.raises(ValueError, match="y must be a 2-D array"):
        gpt2.int8_roundtrip(np.ones(4))


def test_int8_roundtrip_error_with_a_given_roundtrip(params: dict[str, np.ndarray]) -> None:
    import torch
    y = gpt2.apply_layernorm(np.random.default_rng(0).standard_normal((16, 768)),
                             params["ln_f.weight"], params["ln_f.bias"])
    keep = gpt2.largest_channels(params["ln_f.weight"])
    as_torch = lambda t: torch.from_numpy(gpt2.int8_roundtrip(t.numpy()))  # noqa: E731
    for channels in ((), keep):
        assert gpt2.int8_roundtrip_error(y, channels, roundtrip=as_torch) == pytest.approx(
            gpt2.int8_roundtrip_error(y, channels), rel=1e-12)
    # a coarser quantizer gives a larger error: the argument is really used
    coarse = lambda t: torch.round(t / t.abs().amax(1, keepdim=True) * 7) / 7 * t.abs().amax(1, keepdim=True)  # noqa: E731
    assert gpt2.int8_roundtrip_error(y, roundtrip=coarse) > 5 * gpt2.int8_roundtrip_error(y)
    with pytest.raises(TypeError, match="roundtrip must be a function or None"):
        gpt2.int8_roundtrip_error(y, roundtrip="round")
    with pytest.raises(ValueError, match="roundtrip must return the shape it was given"):
        gpt2.int8_roundtrip_error(y, keep, roundtrip=lambda t: t[:, :5])


def test_folding_check_with_a_given_fold(params: dict[str, np.ndarray]) -> None:
    right = lambda g, b, w, c: (w * g, w @ b + c)  # noqa: E731
    default = gpt2.folding_check(params, "h.5.ln_1", out_features=64, n_tokens=8)
    given = gpt2.folding_check(params, "h.5.ln_1", out_features=64, n_tokens=8, fold=right)
    assert given.max_diff_folded < 1e-5 * given.out_rms
    assert given.weight_change == pytest.approx(default.weight_change, rel=1e-6)
    wrong = gpt2.folding_check(params, "h.5.ln_1", out_features=64, n_tokens=8,
                               fold=lambda g, b, w, c: (w * g, c))
    assert wrong.max_diff_folded > 0.1 * wrong.out_rms
    with pytest.raises(TypeError, match="fold must be a function or None"):
        gpt2.folding_check(params, "ln_f", fold=3)
    with pytest.raises(ValueError, match="fold must return a weight of shape"):
        gpt2.folding_check(params, "ln_f", out_features=8, fold=lambda g, b, w, c: (w.T, c))
