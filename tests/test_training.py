"""helpers.training: the shared training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from helpers.data import load_mnist
from helpers.training import error_rate, single_thread, train, warmup_lr


def _tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))


def test_training_reduces_the_loss_and_the_error() -> None:
    x, y = load_mnist("train", limit=2000)
    model = _tiny_model()
    before = error_rate(model, x, y)
    run = train(model, x, y, lr=0.1, epochs=2, batch_size=50, progress=False)
    assert run.steps == 80 and run.losses.shape == (80,) and run.learning_rates.shape == (80,)
    assert run.losses[-10:].mean() < 0.5 * run.losses[:10].mean()
    assert error_rate(model, x, y) < before - 0.5


def test_same_seed_same_run_and_hooks() -> None:
    x, y = load_mnist("train", limit=500)
    runs = []
    for _ in range(2):
        model = _tiny_model()
        runs.append(train(model, x, y, lr=0.05, batch_size=50, seed=3, progress=False,
                          on_step=lambda step, m: step if step % 5 == 0 else None))
    assert np.array_equal(runs[0].losses, runs[1].losses)
    assert runs[0].hook_values == [0, 5]


def test_warmup_and_max_steps() -> None:
    x, y = load_mnist("train", limit=500)
    run = train(_tiny_model(), x, y, lr=0.1, batch_size=10, warmup_steps=4, max_steps=6, progress=False)
    assert run.steps == 6
    assert np.allclose(run.learning_rates, [0.025, 0.05, 0.075, 0.1, 0.1, 0.1])
    assert warmup_lr(0, 1.0, 0) == 1.0


def test_adam_optimizer_runs() -> None:
    x, y = load_mnist("train", limit=200)
    run = train(_tiny_model(), x, y, lr=1e-3, batch_size=20, optimizer="adam", progress=False)
    assert np.isfinite(run.losses).all()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"lr": 0.0}, ValueError, "lr must be a finite number > 0"),
        ({"lr": float("inf")}, ValueError, "lr must be a finite number > 0"),
        ({"lr": "fast"}, TypeError, "lr must be a finite number > 0"),
        ({"lr": 0.1, "epochs": 0}, ValueError, "epochs must be an int >= 1"),
        ({"lr": 0.1, "batch_size": 2.5}, TypeError, "batch_size must be an int >= 1"),
        ({"lr": 0.1, "batch_size": 10_000}, ValueError, "batch_size must be <= the number of examples"),
        ({"lr": 0.1, "optimizer": "rmsprop"}, ValueError, r"optimizer must be one of \('sgd', 'adam'\)"),
        ({"lr": 0.1, "warmup_steps": -1}, ValueError, "warmup_steps must be an int >= 0"),
        ({"lr": 0.1, "warmup_steps": 1.5}, TypeError, "warmup_steps must be an int >= 0"),
        ({"lr": 0.1, "max_steps": 0}, ValueError, "max_steps must be an int >= 1"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type, message: str) -> None:
    x, y = load_mnist("train", limit=100)
    with pytest.raises(error, match=message):
        train(_tiny_model(), x, y, progress=False, **kwargs)


def test_mismatched_lengths() -> None:
    x, y = load_mnist("train", limit=100)
    with pytest.raises(ValueError, match="x and y must have the same length"):
        train(_tiny_model(), x, y[:50], lr=0.1, progress=False)


def test_training_runs_on_one_thread_and_restores_the_setting() -> None:
    x, y = load_mnist("train", limit=100)
    before = torch.get_num_threads()
    seen = []
    train(_tiny_model(), x, y, lr=0.1, batch_size=50, progress=False,
          on_step=lambda step, model: seen.append(torch.get_num_threads()))
    assert seen == [1, 1] and torch.get_num_threads() == before
    with single_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
