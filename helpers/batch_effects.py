"""Experiments on how normalization layers depend on the batch (notebook 03).

A small convolutional network on MNIST with a choice of normalization layer, trained with
the shared loop :func:`helpers.training.train`, and the measurements the notebook makes:

- the "forgot ``model.eval()``" bug: accuracy of a BatchNorm network run in training mode
  with small test batches vs in eval mode (:func:`train_mode_accuracy`);
- the GroupNorm paper's batch-size experiment: :func:`train_cnn` at a given batch size, with a
  "conv-only BatchNorm" network (kind ``"batch-conv"``) that shows where the batch dependence
  comes from.

This is the readable one-network code; the many-seed version of both experiments is the study
``batch_size`` (``studies/batch_size.py``), which trains many of these networks at once.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from helpers.training import error_rate, single_thread, train
from helpers.validation import check_choice, check_int, check_probability

NORM_KINDS = ("batch", "group", "layer", "instance", "none")
CHANNELS_PER_GROUP = 4
"""GroupNorm after a convolution of :func:`small_cnn`: groups of this many channels."""
FC_GROUPS = 4
"""GroupNorm after the fully connected layer of :func:`small_cnn`: this many groups of features."""


def norm_layer(kind: str, channels: int, groups: int = 4, dims: int = 2) -> nn.Module:
    """The normalization layer ``kind`` for ``channels`` feature maps (``dims=2``, input
    ``(N, C, H, W)``) or features (``dims=1``, input ``(N, C)``).

    ``"batch"``: BatchNorm2d / BatchNorm1d; ``"group"``: GroupNorm with ``groups`` groups;
    ``"layer"``: LayerNorm over all of an example's channels (and positions), written as
    GroupNorm with one group as in the GroupNorm paper; ``"instance"``: InstanceNorm (each
    channel of each example over its positions, with a learned γ and β per channel), written
    as GroupNorm with one channel per group, feature maps only (with ``dims=1`` each feature
    would be normalized over its own single value); ``"none"``: identity.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm1d(channels)
    if kind == "group":
        return nn.GroupNorm(groups, channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "instance":
        return nn.GroupNorm(channels, channels)
    return nn.Identity()


CNN_KINDS = NORM_KINDS + ("batch-conv",)
"""Kinds of :func:`small_cnn`: a normalization kind for every layer, or ``"batch-conv"``,
BatchNorm after the two convolutions and no normalization after the fully connected layer.
``"instance"`` too normalizes the convolutions only (an InstanceNorm of a feature vector would
normalize each value by itself)."""


def _layer_kinds(kind: str) -> tuple[str, str]:
    """(kind of the convolutions' norm layers, kind of the fully connected layer's norm)."""
    return {"batch-conv": ("batch", "none"), "instance": ("instance", "none")}.get(kind, (kind, kind))


def small_cnn(kind: str = "batch", width: int = 8, hidden: int = 0, seed: int = 0) -> nn.Sequential:
    """A small MNIST classifier taking flat ``[N, 784]`` images.

    conv 3x3 stride 2 (28 -> 14) -> norm -> ReLU -> conv 3x3 stride 2 (14 -> 7) -> norm ->
    ReLU -> [linear to ``hidden`` features -> norm -> ReLU] -> linear to 10 classes, with
    ``width`` then ``2 * width`` channels.  The bracketed fully connected layer is there
    only when ``hidden > 0``; its BatchNorm sees one value per feature and example.
    ``kind`` is one of :data:`CNN_KINDS`; ``"batch-conv"`` puts BatchNorm after the two
    convolutions only (none after the fully connected layer), and so does ``"instance"``
    with InstanceNorm.  GroupNorm (``"group"``) splits each convolution's channels into groups
    of :data:`CHANNELS_PER_GROUP` (``width // 4`` and ``width // 2`` groups), so that it is
    neither InstanceNorm (one channel per group) nor LayerNorm (one group), and the fully
    connected layer's features into :data:`FC_GROUPS` groups.

    Raises:
        ValueError: for a ``kind`` not in :data:`CNN_KINDS`, a ``width`` that is not a positive multiple of 4
            or a ``hidden`` that is negative or not a multiple of 4.
    """
    check_choice("kind", kind, CNN_KINDS)
    if check_int("width", width) < 4 or width % 4:
        raise ValueError(f"width must be a positive multiple of 4, got {width}")
    conv_kind, fc_kind = _layer_kinds(kind)
    if check_int("hidden", hidden) < 0 or hidden % 4:
        raise ValueError(f"hidden must be 0 or a positive multiple of 4, got {hidden}")
    torch.manual_seed(seed)
    layers: list[nn.Module] = [
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, width, 3, stride=2, padding=1),
        norm_layer(conv_kind, width, groups=width // CHANNELS_PER_GROUP),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
        norm_layer(conv_kind, 2 * width, groups=2 * width // CHANNELS_PER_GROUP),
        nn.ReLU(),
        nn.Flatten(),
    ]
    features = 2 * width * 7 * 7
    if hidden:
        layers += [nn.Linear(features, hidden), norm_layer(fc_kind, hidden, groups=FC_GROUPS, dims=1), nn.ReLU()]
        features = hidden
    layers.append(nn.Linear(features, 10))
    return nn.Sequential(*layers)


def train_cnn(
    kind: str,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int = 32,
    examples: int = 4096,
    lr: float = 0.05,
    momentum: float = 0.9,
    width: int = 8,
    hidden: int = 0,
    seed: int = 0,
    progress: bool = False,
) -> nn.Module:
    """A :func:`small_cnn` trained with SGD on ``examples`` examples' worth of steps, returned
    in eval mode.

    ``examples // batch_size`` steps are taken, so runs with different batch sizes see the
    same number of examples.  ``progress`` shows a progress bar.

    Raises:
        ValueError: if ``examples`` < ``batch_size`` (and as :func:`helpers.training.train`).
    """
    if check_int("examples", examples, minimum=1) < batch_size:
        raise ValueError(f"examples must be >= batch_size ({batch_size}), got {examples}")
    model = small_cnn(kind, width=width, hidden=hidden, seed=seed)
    steps = examples // batch_size
    epochs = -(-steps // (x.shape[0] // batch_size))
    with single_thread():
        train(model, x, y, lr=lr, epochs=epochs, batch_size=batch_size, momentum=momentum,
              max_steps=steps, seed=seed, progress=progress)
    model.eval()
    return model


@torch.no_grad()
def train_mode_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    """Accuracy of ``model`` run in *training* mode on test batches of ``batch_size``.

    This is the bug of forgetting ``model.eval()``: every BatchNorm layer normalizes with
    the statistics of the test batch instead of its running averages.  A copy of the model
    is used, so the caller's running statistics are not touched.  Trailing examples that do
    not fill a batch are dropped.

    Raises:
        ValueError: if ``batch_size`` is not in [1, len(x)].
    """
    check_int("batch_size", batch_size, minimum=1, maximum=x.shape[0])
    clone = copy.deepcopy(model).train()
    correct = total = 0
    with single_thread():
        for start in range(0, x.shape[0] - batch_size + 1, batch_size):
            prediction = clone(x[start : start + batch_size]).argmax(dim=-1)
            correct += int((prediction == y[start : start + batch_size]).sum())
            total += batch_size
    return correct / total


def eval_mode_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy of ``model`` in eval mode (BatchNorm uses its running statistics)."""
    with single_thread():
        return 1.0 - error_rate(model, x, y)


def running_mean_trace(batch_means: np.ndarray, momentum: float, start: float = 0.0) -> np.ndarray:
    """The running mean after each update ``r <- (1 - momentum) * r + momentum * m``.

    Raises:
        ValueError: if ``momentum`` is not in [0, 1].
    """
    check_probability("momentum", momentum)
    out = np.empty(len(batch_means))
    r = start
    for k, m in enumerate(batch_means):
        r = (1 - momentum) * r + momentum * m
        out[k] = r
    return out
