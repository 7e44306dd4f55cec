"""helpers.regularization, its figures and panels, and the batched trainer of the regularization study."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from helpers import regularization as reg
from helpers.data import load_mnist
from helpers.plots import regularization as plots
from helpers.widgets import regularization as panels
from studies import _batched_regularization as batched


@pytest.fixture(scope="module")
def mnist() -> tuple[torch.Tensor, torch.Tensor]:
    return load_mnist("train", limit=256)


# -- update rules ---------------------------------------------------------------------------------
def test_sgd_l2_and_decoupled_decay_agree() -> None:
    g = torch.Generator().manual_seed(0)
    w, grad = torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randn(6, 4, generator=g, dtype=torch.float64)
    assert torch.allclose(reg.sgd_l2_step(w, grad, 0.1, 0.01), reg.sgd_decay_step(w, grad, 0.1, 0.01), atol=1e-14)
    assert torch.allclose(reg.sgd_l2_step(w, grad, 0.1, 0.0), w - 0.1 * grad)


@pytest.mark.parametrize("rule,optimizer", [(reg.adam_l2_step, torch.optim.Adam), (reg.adamw_step, torch.optim.AdamW)])
def test_adam_rules_match_torch(rule, optimizer) -> None:
    g = torch.Generator().manual_seed(1)
    w = torch.randn(5, 3, generator=g, dtype=torch.float64)
    p = nn.Parameter(w.clone())
    opt = optimizer([p], lr=0.01, weight_decay=0.1)
    state = reg.AdamState.zeros_like(w)
    for _ in range(4):
        grad = torch.randn(5, 3, generator=g, dtype=torch.float64)
        p.grad = grad.clone()
        opt.step()
        w, state = rule(w, grad, state, 0.01, 0.1)
    assert state.t == 4
    assert torch.allclose(p.detach(), w, atol=1e-12)


def test_adam_l2_and_adamw_differ() -> None:
    w, grad = torch.full((3,), 3.0), torch.full((3,), 0.01)
    l2, _ = reg.adam_l2_step(w, grad, reg.AdamState.zeros_like(w), 0.01, 0.1)
    decoupled, _ = reg.adamw_step(w, grad, reg.AdamState.zeros_like(w), 0.01, 0.1)
    assert not torch.allclose(l2, decoupled)


def test_update_rules_reject_bad_arguments() -> None:
    w = torch.zeros(3)
    with pytest.raises(ValueError, match="same shape"):
        reg.sgd_l2_step(w, torch.zeros(4), 0.1, 0.0)
    with pytest.raises(ValueError, match="lr"):
        reg.sgd_decay_step(w, w, 0.0, 0.0)
    with pytest.raises(ValueError, match="lam"):
        reg.adamw_step(w, w, reg.AdamState.zeros_like(w), 0.1, -1.0)
    with pytest.raises(TypeError, match="state must be an AdamState"):
        reg.adam_l2_step(w, w, (w, w), 0.1, 0.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="w must be a torch.Tensor"):
        reg.sgd_l2_step([0.0], w, 0.1, 0.0)  # type: ignore[arg-type]


# -- scale invariance -----------------------------------------------------------------------------
def test_bn_layer_is_scale_invariant_and_its_gradient_scales_inversely(mnist) -> None:
    x, y = mnist
    model = reg.bn_mlp(32, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert reg.scaled_output_change(model, x, 0, 10.0) < 1e-3
    assert reg.scaled_output_change(model, x, 0, 1e-3) > 1e-2          # ε breaks it for tiny weights
    g1, g10 = reg.gradient_norm(model, x, y, 0), reg.gradient_norm(model, x, y, 0, 10.0)
    assert g1 / g10 == pytest.approx(10.0, rel=1e-2)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())   # left as it was


def test_without_batchnorm_scaling_changes_the_output(mnist) -> None:
    x, _ = mnist
    assert reg.scaled_output_change(reg.bn_mlp(32, seed=0, batchnorm=False), x, 0, 10.0) > 1.0


def test_scale_helpers_reject_bad_arguments(mnist) -> None:
    x, y = mnist
    model = reg.bn_mlp(8)
    with pytest.raises(ValueError, match="layer must index an nn.Linear"):
        reg.scaled_output_change(model, x, 1, 2.0)
    with pytest.raises(TypeError, match="model must be an nn.Sequential"):
        reg.gradient_norm(nn.Linear(2, 2), x, y, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="factor"):
        reg.scaled_output_change(model, x, 0, 0.0)
    with pytest.raises(ValueError, match="width"):
        reg.bn_mlp(0)


def test_equilibrium_angle() -> None:
    assert reg.equilibrium_angle(0.1, 0.01) == pytest.approx(math.sqrt(0.002))
    with pytest.raises(ValueError, match="lam"):
        reg.equilibrium_angle(0.1, 0.0)


# -- dropout --------------------------------------------------------------------------------------
def test_inverted_dropout_keeps_the_mean_and_scales_kept_units() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.ones(200, 500)
    out = reg.inverted_dropout(x, 0.4, generator=g)
    assert torch.unique(out).tolist() == pytest.approx([0.0, 1 / 0.6])
    assert out.mean().item() == pytest.approx(1.0, abs=0.02)
    assert (out == 0).double().mean().item() == pytest.approx(0.4, abs=0.01)
    assert reg.inverted_dropout(x, 0.4, training=False) is x
    assert torch.equal(reg.inverted_dropout(x, 0.0), x)


def test_inverted_dropout_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="p must be < 1"):
        reg.inverted_dropout(torch.ones(2), 1.0)
    with pytest.raises(ValueError, match="p"):
        reg.inverted_dropout(torch.ones(2), -0.1)
    with pytest.raises(TypeError, match="training must be a bool"):
        reg.inverted_dropout(torch.ones(2), 0.5, training=1)  # type: ignore[arg-type]


def test_variance_shift_grows_with_p(mnist) -> None:
    x, _ = mnist
    none, half = reg.variance_shift(0.0, x), reg.variance_shift(0.5, x)
    assert none.var_ratio == pytest.approx(1.0) and none.eval_std_after_bn == pytest.approx(1.0)
    assert half.var_ratio > 2.0 and half.eval_std_after_bn < 0.8
    assert half.train_values.shape == half.eval_values.shape == (256 * 64,)
    with pytest.raises(ValueError, match="p must be < 1"):
        reg.variance_shift(1.0, x)


# -- seeds and the live run -----------------------------------------------------------------------
def test_paired_difference() -> None:
    d = reg.paired_difference(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.zeros(5))
    assert (d.median, d.low, d.high, d.mean, d.n) == (3.0, 1.0, 5.0, 3.0, 5)
    half = 2.776 * np.std([1, 2, 3, 4, 5], ddof=1) / math.sqrt(5)
    assert (d.ci_low, d.ci_high) == pytest.approx((3 - half, 3 + half))
    assert d.excludes_zero
    assert "95 % CI" in d.format()
    with pytest.raises(ValueError, match="one value per seed"):
        reg.paired_difference(np.zeros(5), np.zeros(6))
    with pytest.raises(ValueError, match="5 to 31 seeds"):
        reg.paired_difference(np.zeros(3), np.zeros(3))


def test_live_norm_run_decay_shrinks_the_norm(mnist) -> None:
    x, y = mnist
    free = reg.live_norm_run(x, y, 0.0, steps=40, every=20)
    decayed = reg.live_norm_run(x, y, 0.05, steps=40, every=20)
    assert free.shape == decayed.shape == (3,)
    assert free[0] == decayed[0]
    assert free[-1] > free[0] > decayed[-1]
    with pytest.raises(ValueError, match="lam"):
        reg.live_norm_run(x, y, -1.0)


# -- figures and panels ---------------------------------------------------------------------------
def test_figures_draw() -> None:
    rng = np.random.default_rng(0)
    lams = [0.0, 1e-3, 1e-2]
    assert isinstance(plots.adam_weight_decay_figure(lams, {"a": rng.random((3, 5))}, {"a": rng.random((3, 5))}),
                      Figure)
    steps = np.arange(0, 100, 10)
    norms = {0.0: 1 + rng.random((10, 5)), 1e-2: 1 + rng.random((10, 5))}
    assert isinstance(plots.norm_dynamics_figure(steps, norms, norms, 0.1, {1e-2: 0.04}), Figure)
    assert isinstance(plots.gap_figure(["a", "b"], rng.random((2, 5)), rng.random((2, 5)), "t"), Figure)
    assert isinstance(plots.variance_shift_study_figure(["a"], [rng.random((5, 3))], [rng.random(5)]), Figure)
    assert isinstance(plots.weights_move_figure([2.0], {2.0: rng.random(5)}, {2.0: rng.random(5)}), Figure)
    shift = reg.variance_shift(0.5, torch.rand(64, 20))
    assert isinstance(plots.variance_shift_static_figure([(0.5, shift.train_values, shift.eval_values, 2.0)]),
                      Figure)


@pytest.mark.parametrize("p", [0.0, 0.4, 0.8])
def test_dropout_panel_readout_at_ends_and_middle(p: float) -> None:
    panel = panels.dropout_panel()
    panel.redraw(p=p)
    assert panel.readout.startswith(f"p = {p:.2f}: training variance = ")
    expected = 1.0 if p == 0 else None
    if expected is not None:
        assert "= 1.00 × evaluation variance" in panel.readout


def test_decay_panel_readout_at_ends_and_middle() -> None:
    panel = panels.decay_panel()
    options = [value for _, value in panel.controls["lam"].options]
    for lam in (options[0], options[len(options) // 2], options[-1]):
        for group in panels.DECAY_GROUPS:
            panel.redraw(lam=lam, group=group)
            assert panel.readout.startswith(f"λ = {lam:g}: final ‖W₁‖ ")


# -- the study's batched trainer ------------------------------------------------------------------
def _single_mlp(group: batched.MLPGroup, k: int) -> nn.Sequential:
    """Member ``k`` of ``group`` as an ordinary PyTorch model with the same weights."""
    layers: list[nn.Module] = []
    for i in range(2):
        n_in = group.weights[i].shape[1]
        linear = nn.Linear(n_in, group.width, bias=not group.batchnorm)
        linear.weight.data.copy_(group.weights[i][k].t())
        if not group.batchnorm:
            linear.bias.data.zero_()
        layers += [linear] + ([nn.BatchNorm1d(group.width)] if group.batchnorm else []) + [nn.ReLU()]
    out = nn.Linear(group.width, 10)
    out.weight.data.copy_(group.weights[2][k].t())
    out.bias.data.zero_()
    return nn.Sequential(*layers, out)


@pytest.mark.parametrize("batchnorm,optimizer", [(True, "sgd"), (False, "sgd"), (False, "adam_l2"),
                                                 (False, "adamw")])
def test_batched_member_trains_like_a_single_model(mnist, batchnorm: bool, optimizer: str) -> None:
    x, y = mnist
    lr = 0.05 if optimizer == "sgd" else 1e-3
    group = batched.MLPGroup("g", [0, 1], [0.0, 0.01], [0.0, 0.0], batchnorm=batchnorm, width=16,
                             optimizer=optimizer, lr=lr)
    model = _single_mlp(group, 1)
    weights = [m.weight for m in model if isinstance(m, nn.Linear)]
    others = [p for p in model.parameters() if all(p is not w for w in weights)]
    kind = {"sgd": torch.optim.SGD, "adam_l2": torch.optim.Adam, "adamw": torch.optim.AdamW}[optimizer]
    opt = kind([{"params": weights, "weight_decay": 0.01}, {"params": others, "weight_decay": 0.0}], lr=lr)
    for step in range(3):
        xb, yb = x[step * 32:(step + 1) * 32], y[step * 32:(step + 1) * 32]
        logits = group.forward(xb, train=True)
        each = nn.functional.cross_entropy(logits.reshape(-1, 10), yb.repeat(2), reduction="none").view(2, -1)
        group.step(torch.autograd.grad(each.mean(dim=1).sum(), group.params))
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
    assert torch.allclose(group.weights[0][1].t(), model[0].weight, atol=1e-5)
    model.eval()
    assert torch.allclose(group.forward(x[:64], train=False)[1], model(x[:64]), atol=1e-4)


def test_batched_cnn_and_variance_shift_run(mnist) -> None:
    x, y = mnist
    cnn = batched.CNNGroup("cnn", [0, 1], [0.0, 0.2], [0.5, 0.0])
    assert cnn.forward(x[:8], train=True, generator=torch.Generator().manual_seed(0)).shape == (2, 8, 10)
    assert batched.errors(cnn, x[:50], y[:50]).shape == (2,)
    assert batched.weight_norms(cnn).shape == (2, 4)
    group = batched.MLPGroup("bn", [0, 1], [0.0, 0.0], [0.5, 0.5], batchnorm=True, width=16)
    shift = batched.variance_shift(group, x[:64], x[64:128], torch.Generator().manual_seed(0))
    assert shift.shape == (2, 3) and (shift[:, 0] > shift[:, 2]).all()
    with pytest.raises(ValueError, match="optimizer"):
        batched.MLPGroup("x", [0], [0.0], [0.0], batchnorm=False, optimizer="rmsprop")


def test_by_setting_groups_rows_by_seed() -> None:
    values = np.arange(10)
    assert reg.by_setting(values, 5).tolist() == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert reg.by_setting(np.zeros((10, 3)), 5).shape == (2, 5, 3)
    with pytest.raises(ValueError, match="multiple of n_seeds"):
        reg.by_setting(np.zeros(7), 5)


def test_best_settings_picks_lambda_zero_or_the_best_positive_one() -> None:
    lams = np.array([0.0, 1e-3, 1e-2])
    arrays = {"lams": lams}
    for group in ("plain", "dropout", "bn", "bn_dropout"):
        test = np.repeat([0.3, 0.2, 0.25], 5)
        arrays[f"{group}_test_error"], arrays[f"{group}_train_error"] = test, test / 10
    chosen = reg.best_settings(arrays, 5)
    assert list(chosen) == list(reg.SETTINGS)
    assert chosen["no regularization"][2] == 0.0 and chosen["weight decay"][2] == 1e-3
    assert chosen["weight decay"][1].tolist() == [0.2] * 5
    with pytest.raises(KeyError):
        reg.best_settings({"lams": lams}, 5)


def test_decay_panel_reuses_loaded_results_and_rejects_others() -> None:
    import studies

    results = studies.obtain("regularization")
    assert panels.decay_panel(results=results).readout.startswith("λ = 0.001: ")
    with pytest.raises(TypeError, match="studies.Results"):
        panels.decay_panel(results={"lams": []})
