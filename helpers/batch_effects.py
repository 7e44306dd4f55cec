"""Experiments on how normalization layers depend on the batch (notebook 03).

A small convolutional network on MNIST with a choice of normalization layer, trained with
the shared loop :func:`helpers.training.train`, and the measurements the notebook makes:

- the "forgot ``model.eval()``" bug: accuracy of a BatchNorm network run in training mode
  with small test batches vs in eval mode (:func:`train_mode_accuracy`);
- the GroupNorm paper's batch-size sweep (:func:`batch_size_sweep`), with a "conv-only
  BatchNorm" network (kind ``"batch-conv"``) that shows where the batch dependence comes from.

Results of training are reported over several seeds; :class:`StackedCNN` holds S networks as
one model (grouped convolutions, batched matrix products) so that S seeds cost far less than
S separate runs, and :func:`train_stack` / :func:`stack_accuracy` train and evaluate them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from helpers.training import error_rate, single_thread, train
from helpers.validation import check_choice, check_int, check_ints, check_probability

NORM_KINDS = ("batch", "group", "layer", "none")


def norm_layer(kind: str, channels: int, groups: int = 4, dims: int = 2) -> nn.Module:
    """The normalization layer ``kind`` for ``channels`` feature maps (``dims=2``, input
    ``(N, C, H, W)``) or features (``dims=1``, input ``(N, C)``).

    ``"batch"``: BatchNorm2d / BatchNorm1d; ``"group"``: GroupNorm with ``groups`` groups;
    ``"layer"``: LayerNorm over all of an example's channels (and positions), written as
    GroupNorm with one group as in the GroupNorm paper; ``"none"``: identity.

    Raises:
        ValueError: for an unknown ``kind`` or ``dims``, or ``groups`` that does not divide ``channels``.
    """
    check_choice("kind", kind, NORM_KINDS)
    check_choice("dims", dims, (1, 2))
    if kind == "group" and channels % check_int("groups", groups, minimum=1):
        raise ValueError(f"groups must divide channels ({channels}), got {groups}")
    if kind == "batch":
        return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm1d(channels)
    if kind == "group":
        return nn.GroupNorm(groups, channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


# -- several networks trained as one model ------------------------------------------------------

CNN_KINDS = NORM_KINDS + ("batch-conv",)
"""Kinds of :func:`small_cnn`: a normalization kind for every layer, or ``"batch-conv"``,
BatchNorm after the two convolutions and no normalization after the fully connected layer."""


def _layer_kinds(kind: str) -> tuple[str, str]:
    """(kind of the convolutions' norm layers, kind of the fully connected layer's norm)."""
    return ("batch", "none") if kind == "batch-conv" else (kind, kind)


def _stacked_norm(kind: str, networks: int, channels: int, groups: int = 4, dims: int = 2) -> nn.Module:
    """One layer that normalizes ``networks`` side-by-side blocks of ``channels`` channels,
    each exactly as ``norm_layer(kind, channels, groups, dims)`` would."""
    if kind == "batch":
        return nn.BatchNorm2d(networks * channels) if dims == 2 else nn.BatchNorm1d(networks * channels)
    if kind == "group":
        return nn.GroupNorm(networks * groups, networks * channels)
    if kind == "layer":
        return nn.GroupNorm(networks, networks * channels)
    return nn.Identity()



def small_cnn(kind: str = "batch", width: int = 8, hidden: int = 0, seed: int = 0) -> nn.Sequential:
    """A small MNIST classifier taking flat ``[N, 784]`` images.

    conv 3x3 stride 2 (28 -> 14) -> norm -> ReLU -> conv 3x3 stride 2 (14 -> 7) -> norm ->
    ReLU -> [linear to ``hidden`` features -> norm -> ReLU] -> linear to 10 classes, with
    ``width`` then ``2 * width`` channels.  The bracketed fully connected layer is there
    only when ``hidden > 0``; its BatchNorm sees one value per feature and example.
    ``kind`` is one of :data:`CNN_KINDS`; ``"batch-conv"`` puts BatchNorm after the two
    convolutions only (none after the fully connected layer).

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
        norm_layer(conv_kind, width),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
        norm_layer(conv_kind, 2 * width),
        nn.ReLU(),
        nn.Flatten(),
    ]
    features = 2 * width * 7 * 7
    if hidden:
        layers += [nn.Linear(features, hidden), norm_layer(fc_kind, hidden, dims=1), nn.ReLU()]
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
) -> nn.Module:
    """A :func:`small_cnn` trained with SGD on ``examples`` examples' worth of steps.

    ``examples // batch_size`` steps are taken, so runs with different batch sizes see the
    same number of examples.

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
              max_steps=steps, seed=seed, progress=False)
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


@dataclass(frozen=True)
class SweepResult:
    """Test error of each network kind at each training batch size, for every seed."""

    kinds: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    seeds: tuple[int, ...]
    errors: np.ndarray
    """Shape ``(len(kinds), len(batch_sizes), len(seeds))``, fractions in [0, 1]."""
    examples: int
    base_lr: float
    hidden: int

    def median(self) -> np.ndarray:
        """Median error over seeds, shape ``(len(kinds), len(batch_sizes))``."""
        return np.median(self.errors, axis=-1)


def batch_size_sweep(
    x: torch.Tensor,
    y: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    kinds: tuple[str, ...] = ("batch", "batch-conv", "group", "layer"),
    batch_sizes: tuple[int, ...] = (2, 4, 8, 16, 32),
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4),
    examples: int = 4096,
    base_lr: float = 0.05,
    width: int = 8,
    hidden: int = 64,
) -> SweepResult:
    """Train one :func:`small_cnn` (with a ``hidden``-feature layer) per (kind, batch size,
    seed) on the same number of examples and measure its test error in eval mode.

    The learning rate follows the linear scaling rule the GroupNorm paper uses,
    ``lr = base_lr * batch_size / 32``, so every run takes the same total step length.  For
    each batch size all kinds and seeds are trained together as one :class:`StackedCNN`.

    Raises:
        ValueError: for a kind not in :data:`CNN_KINDS`, or empty kinds, batch sizes or seeds.
    """
    if not kinds:
        raise ValueError(f"kinds must hold at least one of {CNN_KINDS}, got none")
    for kind in kinds:
        check_choice("every value in kinds", kind, CNN_KINDS)
    check_ints("batch_sizes", batch_sizes, minimum=1)
    check_ints("seeds", seeds, minimum=0)
    errors = np.zeros((len(kinds), len(batch_sizes), len(seeds)))
    for j, b in enumerate(batch_sizes):
        stack = StackedCNN([k for k in kinds for _ in seeds], [s for _ in kinds for s in seeds],
                           width=width, hidden=hidden)
        train_stack(stack, x, y, batch_size=b, examples=examples, lr=base_lr * b / 32)
        errors[:, j, :] = (1.0 - stack_accuracy(stack, x_test, y_test)).reshape(len(kinds), len(seeds))
    return SweepResult(tuple(kinds), tuple(batch_sizes), tuple(seeds), errors, examples, base_lr, hidden)


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


class StackedCNN(nn.Module):
    """``len(kinds)`` independent :func:`small_cnn` networks evaluated as one model.

    Network ``i`` is ``small_cnn(kinds[i], width, hidden, seeds[i])``, with the same initial
    weights.  The convolutions are grouped convolutions (one group per network), the fully
    connected layers batched matrix products, and each run of networks of the same kind shares
    one normalization layer whose statistics are still computed per network and channel.  At
    these sizes the cost of a step is dominated by per-operation overhead, so S networks cost
    far less than S separate runs.

    Input: ``[B, 784]`` (the same images for every network) or ``[S, B, 784]`` (a batch per
    network).  Output: logits ``[S, B, 10]``.
    """

    def __init__(self, kinds: tuple[str, ...] | list[str], seeds: tuple[int, ...] | list[int],
                 width: int = 8, hidden: int = 64) -> None:
        super().__init__()
        kinds, seeds = tuple(kinds), tuple(seeds)
        if not kinds or len(kinds) != len(seeds):
            raise ValueError(
                f"kinds and seeds must be non-empty and of equal length, got {len(kinds)} and {len(seeds)}")
        for kind in kinds:
            check_choice("every value in kinds", kind, CNN_KINDS)
        if hidden <= 0:
            raise ValueError(f"hidden must be a positive multiple of 4, got {hidden}")
        nets = [small_cnn(k, width=width, hidden=hidden, seed=s) for k, s in zip(kinds, seeds, strict=True)]
        self.kinds, self.seeds, self.width, self.hidden = kinds, seeds, width, hidden
        s = len(kinds)
        self.conv1 = nn.Conv2d(s, s * width, 3, stride=2, padding=1, groups=s)
        self.conv2 = nn.Conv2d(s * width, s * 2 * width, 3, stride=2, padding=1, groups=s)
        # The networks' parameters by their state_dict names ("8.weight": layer 8's weight):
        # get_parameter is typed (a Parameter, never None) where nets[i][8].weight is not.
        self.fc_weight = nn.Parameter(torch.stack([n.get_parameter("8.weight").detach().T for n in nets]))
        self.fc_bias = nn.Parameter(torch.stack([n.get_parameter("8.bias").detach()[None] for n in nets]))
        self.out_weight = nn.Parameter(torch.stack([n.get_parameter("11.weight").detach().T for n in nets]))
        self.out_bias = nn.Parameter(torch.stack([n.get_parameter("11.bias").detach()[None] for n in nets]))
        # runs of consecutive networks with the same kind share one normalization layer
        self.runs: list[tuple[int, int, str]] = []
        start = 0
        for i in range(1, s + 1):
            if i == s or kinds[i] != kinds[start]:
                self.runs.append((start, i, kinds[start]))
                start = i
        self.norm1, self.norm2, self.norm3 = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for a, b, kind in self.runs:
            conv_kind, fc_kind = _layer_kinds(kind)
            self.norm1.append(_stacked_norm(conv_kind, b - a, width))
            self.norm2.append(_stacked_norm(conv_kind, b - a, 2 * width))
            self.norm3.append(_stacked_norm(fc_kind, b - a, hidden, dims=1))
        with torch.no_grad():
            self.get_parameter("conv1.weight").copy_(torch.cat([n.get_parameter("1.weight") for n in nets]))
            self.get_parameter("conv1.bias").copy_(torch.cat([n.get_parameter("1.bias") for n in nets]))
            self.get_parameter("conv2.weight").copy_(torch.cat([n.get_parameter("4.weight") for n in nets]))
            self.get_parameter("conv2.bias").copy_(torch.cat([n.get_parameter("4.bias") for n in nets]))
            for norms, index in ((self.norm1, 2), (self.norm2, 5), (self.norm3, 9)):
                for layer, (a, b, _) in zip(norms, self.runs, strict=True):
                    if not isinstance(layer, nn.Identity):
                        for name in ("weight", "bias"):
                            layer.get_parameter(name).copy_(
                                torch.cat([nets[i].get_parameter(f"{index}.{name}") for i in range(a, b)]))

    def _norm(self, layers: nn.ModuleList, h: torch.Tensor, per_network: int) -> torch.Tensor:
        if len(self.runs) == 1:
            return layers[0](h)
        parts = [layer(h[:, a * per_network : b * per_network])
                 for layer, (a, b, _) in zip(layers, self.runs, strict=True)]
        return torch.cat(parts, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, w = len(self.kinds), self.width
        if x.dim() == 2:
            h = x.reshape(x.shape[0], 1, 28, 28).expand(-1, s, -1, -1)
        else:
            h = x.permute(1, 0, 2).reshape(x.shape[1], s, 28, 28)
        batch = h.shape[0]
        h = torch.relu(self._norm(self.norm1, self.conv1(h), w))
        h = torch.relu(self._norm(self.norm2, self.conv2(h), 2 * w))
        h = h.reshape(batch, s, -1).transpose(0, 1)                      # [S, B, features]
        h = torch.baddbmm(self.fc_bias, h, self.fc_weight)               # [S, B, hidden]
        h = h.transpose(0, 1).reshape(batch, s * self.hidden)
        h = torch.relu(self._norm(self.norm3, h, self.hidden))
        h = h.reshape(batch, s, self.hidden).transpose(0, 1)
        return torch.baddbmm(self.out_bias, h, self.out_weight)           # [S, B, 10]

    def network(self, i: int) -> nn.Sequential:
        """Network ``i`` as an ordinary :func:`small_cnn` (a copy, with its running statistics)."""
        i = check_int("i", i, minimum=0, maximum=len(self.kinds) - 1)
        kind, w, hid = self.kinds[i], self.width, self.hidden
        net = small_cnn(kind, width=w, hidden=hid, seed=self.seeds[i]).train(self.training)
        run = next(r for r, (a, b, _) in enumerate(self.runs) if a <= i < b)
        offset = i - self.runs[run][0]
        with torch.no_grad():
            # parameters by their state_dict names, as in __init__
            net.get_parameter("1.weight").copy_(self.get_parameter("conv1.weight")[i * w : (i + 1) * w])
            net.get_parameter("1.bias").copy_(self.get_parameter("conv1.bias")[i * w : (i + 1) * w])
            net.get_parameter("4.weight").copy_(self.get_parameter("conv2.weight")[i * 2 * w : (i + 1) * 2 * w])
            net.get_parameter("4.bias").copy_(self.get_parameter("conv2.bias")[i * 2 * w : (i + 1) * 2 * w])
            net.get_parameter("8.weight").copy_(self.fc_weight[i].T)
            net.get_parameter("8.bias").copy_(self.fc_bias[i, 0])
            net.get_parameter("11.weight").copy_(self.out_weight[i].T)
            net.get_parameter("11.bias").copy_(self.out_bias[i, 0])
            for norms, index, c in ((self.norm1, 2, w), (self.norm2, 5, 2 * w), (self.norm3, 9, hid)):
                layer, part = norms[run], slice(offset * c, (offset + 1) * c)
                for name in ("weight", "bias", "running_mean", "running_var"):
                    if getattr(layer, name, None) is not None:
                        getattr(net[index], name).copy_(getattr(layer, name)[part])
        return net


def train_stack(
    stack: StackedCNN,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int = 32,
    examples: int = 4096,
    lr: float = 0.05,
    momentum: float = 0.9,
) -> StackedCNN:
    """Train every network of ``stack`` with SGD on ``examples // batch_size`` steps, in place.

    Network ``i`` draws its batches in the order :func:`helpers.training.train` uses with
    ``seed = stack.seeds[i]``, and the loss is the sum of the networks' mean cross-entropies,
    so each network receives exactly its own gradient: network ``i`` follows the same path as
    ``train_cnn(stack.kinds[i], x, y, ..., seed=stack.seeds[i])`` up to float rounding.

    Raises:
        ValueError: if ``batch_size`` is not in [1, len(x)] or ``examples`` < ``batch_size``.
    """
    check_int("batch_size", batch_size, minimum=1, maximum=x.shape[0])
    if check_int("examples", examples, minimum=1) < batch_size:
        raise ValueError(f"examples must be >= batch_size ({batch_size}), got {examples}")
    steps, per_epoch = examples // batch_size, x.shape[0] // batch_size
    generators = [torch.Generator().manual_seed(s) for s in stack.seeds]
    orders: list[torch.Tensor] = []
    for _ in range(-(-steps // per_epoch)):
        orders.append(torch.stack([torch.randperm(x.shape[0], generator=g)[: per_epoch * batch_size]
                                   for g in generators]))
    order = torch.cat(orders, dim=1)                                    # [S, steps * batch]
    opt = torch.optim.SGD(stack.parameters(), lr=lr, momentum=momentum)
    stack.train()
    with single_thread():
        for step in range(steps):
            index = order[:, step * batch_size : (step + 1) * batch_size]
            logits = stack(x[index])
            loss = F.cross_entropy(logits.reshape(-1, 10), y[index].reshape(-1), reduction="sum") / batch_size
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    stack.eval()
    return stack


@torch.no_grad()
def stack_accuracy(stack: StackedCNN, x: torch.Tensor, y: torch.Tensor, batch_size: int | None = None) -> np.ndarray:
    """Accuracy of every network of ``stack``, shape ``(S,)``.

    ``batch_size=None``: eval mode (BatchNorm uses its running statistics).  An int: the
    "forgot ``model.eval()``" bug, run in *training* mode on test batches of that size (on a
    copy, so the running statistics are untouched; trailing examples that do not fill a batch
    are dropped).  torch raises ValueError for a fully connected BatchNorm and batch size 1.

    Raises:
        ValueError: if ``batch_size`` is not None and not in [1, len(x)].
    """
    if batch_size is None:
        model, batch_size = stack.eval(), x.shape[0]
    else:
        check_int("batch_size", batch_size, minimum=1, maximum=x.shape[0])
        model = copy.deepcopy(stack).train()
    correct = torch.zeros(len(stack.kinds))
    total = 0
    with single_thread():
        for start in range(0, x.shape[0] - batch_size + 1, batch_size):
            prediction = model(x[start : start + batch_size]).argmax(dim=-1)       # [S, B]
            correct += (prediction == y[start : start + batch_size]).sum(dim=1)
            total += batch_size
    return (correct / total).numpy().astype(float)
