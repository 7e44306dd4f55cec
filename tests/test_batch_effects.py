"""helpers.batch_effects (notebook 03's one-network CNN code) and studies._batched_cnn, the
batched trainer of the ``batch_size`` study, which must train each network as train_cnn does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import batch_effects as BE
from helpers.data import load_mnist
from studies import _batched_cnn as B


def test_small_cnn_shapes_and_norm_layers() -> None:
    x = torch.rand(3, 784)
    for kind in BE.CNN_KINDS:
        for hidden in (0, 16):
            model = BE.small_cnn(kind, width=4, hidden=hidden)
            assert model(x).shape == (3, 10)
    assert isinstance(BE.norm_layer("batch", 8, dims=1), torch.nn.BatchNorm1d)
    assert BE.norm_layer("layer", 8).num_groups == 1
    instance = BE.norm_layer("instance", 8)
    assert isinstance(instance, torch.nn.GroupNorm) and instance.num_groups == 8
    with pytest.raises(ValueError, match="width must be a positive multiple of 4"):
        BE.small_cnn("batch", width=6)
    with pytest.raises(ValueError, match="hidden must be 0 or a positive multiple of 4"):
        BE.small_cnn("batch", hidden=-4)


def test_train_mode_accuracy_uses_a_copy_and_batch_statistics() -> None:
    x, y = load_mnist("test", limit=64)
    model = BE.small_cnn("batch", width=4, hidden=8).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    acc = BE.train_mode_accuracy(model, x, y, batch_size=8)
    assert 0.0 <= acc <= 1.0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BE.train_mode_accuracy(model, x, y, batch_size=1)  # torch refuses BatchNorm1d on one example
    with pytest.raises(ValueError, match=r"batch_size must be an int in \[1, "):
        BE.train_mode_accuracy(model, x, y, batch_size=0)
    assert 0.0 <= BE.eval_mode_accuracy(model, x, y) <= 1.0


def test_batch_conv_kind_normalizes_only_the_convolutions() -> None:
    model = BE.small_cnn("batch-conv", width=4, hidden=8)
    assert isinstance(model[2], torch.nn.BatchNorm2d) and isinstance(model[5], torch.nn.BatchNorm2d)
    assert isinstance(model[9], torch.nn.Identity)
    assert isinstance(BE.small_cnn("batch", width=4, hidden=8)[9], torch.nn.BatchNorm1d)


def test_group_norm_is_neither_instance_nor_layer_norm() -> None:
    group, instance, layer = (BE.small_cnn(kind, width=8, hidden=64) for kind in ("group", "instance", "layer"))
    # groups of 4 channels after the convolutions (8 and 16 channels), 4 groups of 16 features after the FC layer
    assert [group[i].num_groups for i in (2, 5, 9)] == [2, 4, 4]
    assert [instance[i].num_groups for i in (2, 5)] == [8, 16] and isinstance(instance[9], torch.nn.Identity)
    assert [layer[i].num_groups for i in (2, 5, 9)] == [1, 1, 1]
    x = torch.rand(3, 784, generator=torch.Generator().manual_seed(0))
    features = group[:3](x)          # after the first GroupNorm: each group of 4 channels has mean 0, not each channel
    per_group = features.reshape(3, 2, -1).mean(-1)
    per_channel = features.reshape(3, 8, -1).mean(-1)
    assert per_group.abs().max() < 1e-5 and per_channel.abs().max() > 0.01
    with pytest.raises(ValueError, match="kind must be one of"):
        BE.small_cnn("weight")


def test_running_mean_trace_matches_batchnorm() -> None:
    gen = torch.Generator().manual_seed(0)
    batches = [2 + torch.randn(8, 1, generator=gen) for _ in range(30)]
    layer = torch.nn.BatchNorm1d(1, momentum=0.2)
    with torch.no_grad():
        for b in batches:
            layer(b)
    trace = BE.running_mean_trace(np.array([b.mean().item() for b in batches]), 0.2)
    assert abs(trace[-1] - layer.running_mean.item()) < 1e-5
    with pytest.raises(ValueError, match=r"momentum must be a finite number in \[0, 1\]"):
        BE.running_mean_trace(np.ones(3), 1.5)


# -- studies._batched_cnn -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", BE.CNN_KINDS)
def test_stack_equals_separate_networks(kind) -> None:
    x = torch.rand(6, 784, generator=torch.Generator().manual_seed(0))
    stack = B.make_stack(kind, (0, 1, 2), width=4, hidden=8)
    singles = [BE.small_cnn(kind, width=4, hidden=8, seed=seed) for seed in (0, 1, 2)]
    for train_mode in (True, False):      # training mode (updating the running statistics), then eval mode
        out = stack.logits(x, train_mode=train_mode)
        assert out.shape == (3, 6, 10)
        for i, single in enumerate(singles):
            torch.testing.assert_close(out[i], single.train(train_mode)(x), atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(B.network(stack, i)(x), single.eval()(x), atol=1e-5, rtol=1e-4)
    per_network = torch.rand(3, 5, 784, generator=torch.Generator().manual_seed(1))   # a batch per network
    out = stack.logits(per_network, train_mode=False)
    for i in range(3):
        torch.testing.assert_close(out[i], B.network(stack, i)(per_network[i]), atol=1e-5, rtol=1e-4)


def test_batch_orders_are_train_cnns() -> None:
    orders = B.batch_orders((3, 5), examples=20, batch_size=6, steps=7)   # 3 batches per epoch, 3 epochs
    assert orders.shape == (7, 2, 6)
    for column, seed in enumerate((3, 5)):
        generator = torch.Generator().manual_seed(seed)
        expected = torch.cat([torch.randperm(20, generator=generator)[:18] for _ in range(3)])[:42]
        assert torch.equal(orders[:, column].reshape(-1), expected)
    with pytest.raises(ValueError, match=r"batch_size must be an int in \[1, 20\]"):
        B.batch_orders((0,), examples=20, batch_size=21, steps=1)
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        B.batch_orders((0,), examples=20, batch_size=2, steps=0)


def test_train_stacks_follows_train_cnn() -> None:
    x, y = load_mnist("train", limit=64)
    kinds = ("batch", "batch-conv", "group", "layer", "none")
    # not "instance": with one channel per group, a convolution's bias has a gradient of exactly
    # 0 in exact arithmetic and of rounding noise in float32, which SGD (with momentum)
    # accumulates differently in the two computations
    stacks = [B.make_stack(kind, (3, 4), width=8, hidden=8) for kind in kinds]
    calls = []
    losses = B.train_stacks(stacks, x, y, batch_size=8, examples=96, lr=0.02,      # 12 steps, two epochs
                            on_step=lambda: calls.append(1))
    assert losses.shape == (5, 2, 12) and len(calls) == 12 and np.isfinite(losses).all()
    for stack in stacks:
        for i, seed in enumerate(stack.seeds):
            single = BE.train_cnn(stack.kind, x, y, batch_size=8, examples=96, lr=0.02, width=8, hidden=8,
                                  seed=seed)
            torch.testing.assert_close(B.network(stack, i)(x), single(x), atol=1e-3, rtol=1e-3)
    with pytest.raises(ValueError, match="stacks must hold at least one"):
        B.train_stacks([], x, y, batch_size=8, examples=96, lr=0.02)
    with pytest.raises(ValueError, match="stacks must all have the same seeds"):
        B.train_stacks([stacks[0], B.make_stack("group", (0,), width=8, hidden=8)], x, y,
                       batch_size=8, examples=96, lr=0.02)
    with pytest.raises(ValueError, match=r"batch_size must be an int in \[1, 64\]"):
        B.train_stacks(stacks, x, y, batch_size=0, examples=96, lr=0.02)
    with pytest.raises(ValueError, match="examples must be >= batch_size"):
        B.train_stacks(stacks, x, y, batch_size=32, examples=16, lr=0.02)
    with pytest.raises(ValueError, match="lr must be"):
        B.train_stacks(stacks, x, y, batch_size=8, examples=96, lr=0.0)


def test_accuracy_modes_match_the_one_network_functions() -> None:
    x, y = load_mnist("test", limit=1100)    # more than one eval-mode chunk
    for kind in ("batch", "batch-conv", "group"):
        stack = B.make_stack(kind, (0, 1), width=4, hidden=8)
        B.train_stacks([stack], x, y, batch_size=16, examples=160, lr=0.05)
        before = {name: value.clone() for name, value in stack.buffers.items()}
        evaluated = B.accuracy(stack, x, y)
        for test_batch in (8, 3, 400):     # 3 and 400 leave trailing examples
            wrong_mode = B.accuracy(stack, x, y, batch_size=test_batch)
            assert wrong_mode.shape == (2,)
            for i in range(2):
                single = B.network(stack, i)
                assert wrong_mode[i] == pytest.approx(BE.train_mode_accuracy(single, x, y, test_batch), abs=1e-6)
                assert evaluated[i] == pytest.approx(BE.eval_mode_accuracy(single, x, y), abs=1e-6)
        assert all(torch.equal(before[name], value) for name, value in stack.buffers.items())
        if kind == "batch":
            with pytest.raises(ValueError, match="more than 1 value per channel"):
                B.accuracy(stack, x, y, batch_size=1)     # torch refuses BatchNorm1d on one example
        else:
            assert B.accuracy(stack, x[:50], y[:50], batch_size=1).shape == (2,)
    with pytest.raises(ValueError, match=r"batch_size must be an int in \[1, 1100\]"):
        B.accuracy(stack, x, y, batch_size=1101)


def test_make_stack_and_network_bad_arguments() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        B.make_stack("weight", (0,))
    with pytest.raises(ValueError, match="seeds must hold at least one value"):
        B.make_stack("batch", ())
    with pytest.raises(ValueError, match="width must be a positive multiple of 4"):
        B.make_stack("batch", (0,), width=6)
    with pytest.raises(ValueError, match=r"i must be an int in \[0, 0\]"):
        B.network(B.make_stack("batch", (0,), width=4, hidden=8), 1)


def test_train_cnn_with_progress_bar_is_in_eval_mode() -> None:
    x, y = load_mnist("train", limit=64)
    model = BE.train_cnn("group", x, y, batch_size=8, examples=16, width=4, hidden=8, progress=True)
    assert not model.training
    with pytest.raises(ValueError, match="examples must be >= batch_size"):
        BE.train_cnn("batch", x, y, batch_size=32, examples=16)
