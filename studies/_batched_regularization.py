"""Many small MNIST networks with weight decay, dropout and BatchNorm, trained at once (notebook 07's study).

A :class:`MLPGroup` holds ``S`` two-hidden-layer MLPs ``784 → width → width → 10`` of one
architecture — each hidden block ``Linear → [BatchNorm] → ReLU → [Dropout]`` — as stacked
weights ``[S, n_in, n_out]`` computed with one ``torch.bmm``; a :class:`CNNGroup` holds ``S``
small CNNs (two 3×3 convolutions with max-pooling, one hidden fully connected layer) as one
grouped convolution.  Each member has its own weight seed, weight-decay coefficient ``λ`` and
dropout rates; members with the same seed start from the same weights, so comparisons between
groups are paired.  :func:`train_groups` trains every group on the same batches, each with its
own optimizer: plain SGD with L2 (for SGD the same as decoupled weight decay ``lr·λ``), Adam
with L2 in the gradient, or AdamW (decoupled decay, Loshchilov & Hutter 2019).  Decay and L2
act on the weight matrices only (not on biases or BatchNorm's γ, β).

BatchNorm follows PyTorch: batch statistics with the biased variance in training, running
statistics (update coefficient 0.1, unbiased variance) in evaluation, ε = 1e-5; dropout is
inverted dropout (kept units scaled by ``1/(1 − p)``, a fresh mask per member and example).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from helpers.training import single_thread

OPTIMIZERS = ("sgd", "adam_l2", "adamw")
BN_MOMENTUM, BN_EPS = 0.1, 1e-5
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


def _column(values: Sequence[float]) -> torch.Tensor:
    return torch.tensor(list(values), dtype=torch.float32).view(-1, 1, 1)


def _kaiming(seed: int, shapes: Sequence[tuple[int, ...]]) -> list[torch.Tensor]:
    """Weights ``N(0, 2 / fan_in)`` of the given shapes (fan-in: all dims but the first), drawn in
    order from one generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for shape in shapes:
        fan_in = math.prod(shape[1:])
        out.append(torch.randn(*shape, generator=generator) * math.sqrt(2.0 / fan_in))
    return out


@dataclass
class _Adam:
    """Adam's moment estimates for one parameter list."""

    m: list[torch.Tensor]
    v: list[torch.Tensor]
    t: int = 0


class _Group:
    """What MLP and CNN groups share: parameters, their decay mask and the optimizer step."""

    name: str
    optimizer: str
    lr: float
    lam: torch.Tensor
    params: list[torch.Tensor]
    decayed: list[bool]
    adam: _Adam | None

    def _setup_optimizer(self, optimizer: str, lr: float, lams: Sequence[float]) -> None:
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        self.optimizer, self.lr, self.lam = optimizer, float(lr), _column(lams)
        self.adam = None if optimizer == "sgd" else _Adam([torch.zeros_like(p) for p in self.params],
                                                         [torch.zeros_like(p) for p in self.params])

    def _lam_for(self, p: torch.Tensor) -> torch.Tensor:
        """Each member's ``λ`` shaped to broadcast over ``p`` (a grouped convolution's weight holds
        ``p.shape[0] / S`` consecutive rows per member)."""
        lam = self.lam.view(-1).repeat_interleave(p.shape[0] // self.lam.numel())
        return lam.view(-1, *([1] * (p.dim() - 1)))

    @torch.no_grad()
    def step(self, grads: Sequence[torch.Tensor]) -> None:
        """One optimizer step on every member (the group's optimizer, each member's ``λ``)."""
        if self.adam is not None:
            self.adam.t += 1
        b1, b2 = ADAM_BETAS
        for i, (p, g, decay) in enumerate(zip(self.params, grads, self.decayed, strict=True)):
            lam = self._lam_for(p)
            if self.optimizer == "sgd":
                p.sub_(self.lr * (g + lam * p) if decay else self.lr * g)
                continue
            assert self.adam is not None
            if decay and self.optimizer == "adam_l2":
                g = g + lam * p
            if decay and self.optimizer == "adamw":
                p.mul_(1 - self.lr * lam)
            m, v = self.adam.m[i], self.adam.v[i]
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            m_hat = m / (1 - b1 ** self.adam.t)
            v_hat = v / (1 - b2 ** self.adam.t)
            p.sub_(self.lr * m_hat / (v_hat.sqrt() + ADAM_EPS))


class MLPGroup(_Group):
    """``S`` MLPs ``784 → width → width → 10`` of one architecture (module docstring).

    Args:
        name: the group's label in the results.
        seeds: one weight seed per member.
        lams: one weight-decay coefficient ``λ`` per member.
        p_drop: one dropout rate per member; where the dropout layers sit is ``dropout_at``.
        batchnorm: a BatchNorm (γ, β, running statistics) before each hidden ReLU; the linear
            layer before it has no bias.
        dropout_at: ``"all"`` (after both hidden ReLUs: the second BatchNorm sees dropped inputs)
            or ``"last"`` (only after the last hidden ReLU: no BatchNorm follows a dropout).
        optimizer, lr: ``"sgd"``, ``"adam_l2"`` or ``"adamw"`` and its learning rate.
    """

    def __init__(self, name: str, seeds: Sequence[int], lams: Sequence[float], p_drop: Sequence[float], *,
                 batchnorm: bool, dropout_at: str = "all", width: int = 128, optimizer: str = "sgd",
                 lr: float = 0.1) -> None:
        if not len(seeds) == len(lams) == len(p_drop):
            raise ValueError("seeds, lams and p_drop need one entry per member")
        if dropout_at not in ("all", "last"):
            raise ValueError(f"dropout_at must be 'all' or 'last', got {dropout_at!r}")
        self.name, self.size, self.batchnorm, self.dropout_at = name, len(seeds), batchnorm, dropout_at
        self.width = width
        self.keep = 1 - _column(p_drop)
        sizes = [(784, width), (width, width), (width, 10)]
        members = [_kaiming(s, [(o, i) for i, o in sizes]) for s in seeds]
        self.weights = [torch.stack([m[k].t() for m in members]).contiguous().requires_grad_() for k in range(3)]
        self.biases = [torch.zeros(self.size, 1, o, requires_grad=True) for _, o in sizes]
        self.gammas = [torch.ones(self.size, 1, width, requires_grad=True) for _ in range(2)]
        self.betas = [torch.zeros(self.size, 1, width, requires_grad=True) for _ in range(2)]
        self.running_mean = [torch.zeros(self.size, 1, width) for _ in range(2)]
        self.running_var = [torch.ones(self.size, 1, width) for _ in range(2)]
        hidden_bias = [] if batchnorm else self.biases[:2]
        affine = [t for pair in zip(self.gammas, self.betas, strict=True) for t in pair] if batchnorm else []
        self.params = [*self.weights, *hidden_bias, self.biases[2], *affine]
        self.decayed = [True] * 3 + [False] * (len(self.params) - 3)
        self._setup_optimizer(optimizer, lr, lams)

    def forward(self, x: torch.Tensor, *, train: bool, generator: torch.Generator | None = None,
                probe: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Logits ``[S, B, 10]`` for a batch ``x`` ``[B, 784]``; in training mode dropout draws its
        masks from ``generator`` and BatchNorm updates its running statistics.  ``probe``, if given,
        receives the input of the second BatchNorm (``[S, B, width]``)."""
        h = x.unsqueeze(0).expand(self.size, -1, -1)
        for k in range(2):
            z = torch.bmm(h, self.weights[k])
            if self.batchnorm:
                if probe is not None and k == 1:
                    probe.append(z.detach())
                if train:
                    mean, var = z.mean(dim=1, keepdim=True), z.var(dim=1, unbiased=False, keepdim=True)
                    with torch.no_grad():
                        n = z.shape[1]
                        self.running_mean[k].mul_(1 - BN_MOMENTUM).add_(BN_MOMENTUM * mean)
                        self.running_var[k].mul_(1 - BN_MOMENTUM).add_(BN_MOMENTUM * var * n / (n - 1))
                else:
                    mean, var = self.running_mean[k], self.running_var[k]
                z = (z - mean) / torch.sqrt(var + BN_EPS) * self.gammas[k] + self.betas[k]
            else:
                z = z + self.biases[k]
            h = z.relu()
            if train and (self.dropout_at == "all" or k == 1):
                mask = torch.rand(h.shape, generator=generator) < self.keep
                h = h * mask / self.keep
        return torch.bmm(h, self.weights[2]) + self.biases[2]


class CNNGroup(_Group):
    """``S`` small CNNs on the images average-pooled to 14×14: ``conv 3×3 (1→8) → ReLU → [Dropout p_conv]
    → maxpool 2 → conv 3×3 (8→16) → ReLU → [Dropout p_conv] → maxpool 2 → Linear (144→64) → ReLU →
    [Dropout p_fc] → Linear (64→10)`` (padding 1), each convolution computed for every member at once
    as a product with the unfolded input (``F.unfold``)."""

    def __init__(self, name: str, seeds: Sequence[int], p_conv: Sequence[float], p_fc: Sequence[float], *,
                 lr: float = 0.1) -> None:
        if not len(seeds) == len(p_conv) == len(p_fc):
            raise ValueError("seeds, p_conv and p_fc need one entry per member")
        self.name, self.size = name, len(seeds)
        self.keep_conv, self.keep_fc = 1 - _column(p_conv).view(-1, 1, 1, 1), 1 - _column(p_fc)
        shapes = [(8, 1, 3, 3), (16, 8, 3, 3), (64, 144), (10, 64)]
        members = [_kaiming(s, shapes) for s in seeds]
        self.conv = [torch.stack([m[k].flatten(1) for m in members]).unsqueeze(1).contiguous().requires_grad_()
                     for k in range(2)]
        self.fc = [torch.stack([m[k].t() for m in members]).contiguous().requires_grad_() for k in (2, 3)]
        self.biases = [torch.zeros(self.size, 1, 8, 1, requires_grad=True),
                       torch.zeros(self.size, 1, 16, 1, requires_grad=True),
                       torch.zeros(self.size, 1, 64, requires_grad=True),
                       torch.zeros(self.size, 1, 10, requires_grad=True)]
        self.params = [*self.conv, *self.fc, *self.biases]
        self.decayed = [True] * 4 + [False] * 4
        self._setup_optimizer("sgd", lr, [0.0] * self.size)

    def forward(self, x: torch.Tensor, *, train: bool, generator: torch.Generator | None = None,
                probe: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Logits ``[S, B, 10]`` for a batch ``x`` ``[B, 784]``."""
        del probe
        b, s = x.shape[0], self.size
        image = F.avg_pool2d(x.view(b, 1, 28, 28), 2)                             # [B, 1, 14, 14]
        cols = F.unfold(image, 3, padding=1).unsqueeze(0)                          # [1, B, 9, 196]
        h = torch.matmul(self.conv[0], cols) + self.biases[0]                      # [S, B, 8, 196]
        side = 14
        for k in range(2):
            h = h.relu()
            if train:
                mask = torch.rand(h.shape, generator=generator) < self.keep_conv
                h = h * mask / self.keep_conv
            h = F.max_pool2d(h.reshape(s * b, h.shape[2], side, side), 2)
            side //= 2
            if k == 0:
                cols = F.unfold(h, 3, padding=1).view(s, b, 72, side * side)
                h = torch.matmul(self.conv[1], cols) + self.biases[1]              # [S, B, 16, 49]
        h = h.reshape(s, b, 144)
        h = (torch.bmm(h, self.fc[0]) + self.biases[2]).relu()
        if train:
            mask = torch.rand(h.shape, generator=generator) < self.keep_fc
            h = h * mask / self.keep_fc
        return torch.bmm(h, self.fc[1]) + self.biases[3]


Group = MLPGroup | CNNGroup


@torch.no_grad()
def errors(group: Group, x: torch.Tensor, y: torch.Tensor, chunk: int = 500) -> np.ndarray:
    """Eval-mode error of every member on ``(x, y)``, ``[S]``."""
    wrong = torch.zeros(group.size, dtype=torch.float64)
    for start in range(0, x.shape[0], chunk):
        pred = group.forward(x[start:start + chunk], train=False).argmax(dim=-1)
        wrong += (pred != y[start:start + chunk]).sum(dim=1).double()
    return (wrong / y.shape[0]).numpy()


@torch.no_grad()
def weight_norms(group: Group) -> np.ndarray:
    """Frobenius norm of every member's decayed weight tensors, ``[S, layers]``."""
    out = []
    for p, decay in zip(group.params, group.decayed, strict=True):
        if decay:
            out.append(p.reshape(group.size, -1).double().norm(dim=1).numpy())
    return np.stack(out, axis=1)


@torch.no_grad()
def weight_spread(group: MLPGroup) -> np.ndarray:
    """How evenly each unit spreads its incoming weight, ``[S, 3]``: per layer, the mean over output
    units of the participation ratio ``(Σ w²)² / (n_in · Σ w⁴)`` of the unit's incoming weights
    (1 when all have the same size, ``1/n_in`` when one weight holds everything)."""
    out = []
    for w in group.weights:
        sq = w.detach().double() ** 2                       # [S, n_in, n_out]
        ratio = sq.sum(dim=1) ** 2 / (w.shape[1] * (sq ** 2).sum(dim=1))
        out.append(ratio.mean(dim=1).numpy())
    return np.stack(out, axis=1)


@torch.no_grad()
def variance_shift(group: MLPGroup, x_train: torch.Tensor, x_test: torch.Tensor,
                   generator: torch.Generator) -> np.ndarray:
    """For a BatchNorm group: per member, the mean over channels of the second BatchNorm's input
    variance ``[S, 3]``: in training mode on ``x_train`` (dropout active), its running variance,
    and in evaluation mode on ``x_test`` (no dropout)."""
    saved = [t.clone() for t in group.running_mean + group.running_var]
    train_probe: list[torch.Tensor] = []
    group.forward(x_train, train=True, generator=generator, probe=train_probe)
    for t, s in zip(group.running_mean + group.running_var, saved, strict=True):
        t.copy_(s)  # the probe pass must not move the running statistics
    eval_probe: list[torch.Tensor] = []
    group.forward(x_test, train=False, probe=eval_probe)
    train_var = train_probe[0].var(dim=1, unbiased=False).mean(dim=1)
    eval_var = eval_probe[0].var(dim=1, unbiased=False).mean(dim=1)
    running = group.running_var[1].mean(dim=(1, 2))
    return torch.stack([train_var, running, eval_var], dim=1).double().numpy()


@dataclass
class Trained:
    """What :func:`train_groups` records for each group (keyed by the group's name)."""

    record_steps: np.ndarray
    losses: dict[str, np.ndarray] = field(default_factory=dict)
    """Training loss (mean over each window of ``record_every`` steps), ``[records, S]``."""
    norms: dict[str, np.ndarray] = field(default_factory=dict)
    """Weight norms at the record steps, ``[records, S, layers]``."""
    angles: dict[str, np.ndarray] = field(default_factory=dict)
    """Angle (radians) between a weight tensor before and after one step, at the record steps."""
    curve_errors: dict[str, np.ndarray] = field(default_factory=dict)
    """Eval-mode test error on the curve subset at the curve steps, ``[curve points, S]``."""
    curve_train_errors: dict[str, np.ndarray] = field(default_factory=dict)
    """Eval-mode training error at the curve steps, ``[curve points, S]``."""


def _angles(before: list[torch.Tensor], after: list[torch.Tensor], size: int) -> np.ndarray:
    out = []
    for b, a in zip(before, after, strict=True):
        b2, a2 = b.reshape(size, -1).double(), a.reshape(size, -1).double()
        cos = (b2 * a2).sum(1) / (b2.norm(dim=1) * a2.norm(dim=1))
        out.append(torch.arccos(cos.clamp(-1, 1)).numpy())
    return np.stack(out, axis=1)


def train_groups(groups: Sequence[Group], x: torch.Tensor, y: torch.Tensor, x_curve: torch.Tensor,
                 y_curve: torch.Tensor, *, steps: int, batch_size: int, seed: int, record_every: int,
                 curve_every: int, desc: str = "training",
                 on_step: Callable[[int], None] | None = None) -> Trained:
    """Train every group in place on the same shuffled batches (a new permutation of ``(x, y)``
    every epoch from ``torch.Generator().manual_seed(seed)``; dropout masks from a second
    generator seeded with ``seed + 1``), one thread, a tqdm bar."""
    order_gen = torch.Generator().manual_seed(seed)
    mask_gen = torch.Generator().manual_seed(seed + 1)
    per_epoch = x.shape[0] // batch_size
    out = Trained(record_steps=np.arange(0, steps, record_every))
    window = {g.name: np.zeros(g.size) for g in groups}
    records: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {g.name: [] for g in groups}
    curves: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {g.name: [] for g in groups}
    bar = tqdm(total=steps, desc=desc, mininterval=1.0, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} steps")
    with single_thread():
        for step in range(steps):
            if step % per_epoch == 0:
                order = torch.randperm(x.shape[0], generator=order_gen)
            index = order[(step % per_epoch) * batch_size:(step % per_epoch + 1) * batch_size]
            xb, yb = x[index], y[index]
            for g in groups:
                if step % curve_every == 0:
                    curves[g.name].append((errors(g, x_curve, y_curve), errors(g, x, y)))
                logits = g.forward(xb, train=True, generator=mask_gen)
                each = F.cross_entropy(logits.reshape(-1, 10), yb.repeat(g.size),
                                       reduction="none").view(g.size, -1).mean(dim=1)
                grads = torch.autograd.grad(each.sum(), g.params)
                before = [p.detach().clone() for p, d in zip(g.params, g.decayed, strict=True) if d] \
                    if step % record_every == 0 else None
                g.step(grads)
                window[g.name] += each.detach().double().numpy()
                if before is not None:
                    after = [p.detach() for p, d in zip(g.params, g.decayed, strict=True) if d]
                    norms = np.stack([b.reshape(g.size, -1).double().norm(dim=1).numpy() for b in before], axis=1)
                    records[g.name].append((norms, _angles(before, after, g.size), np.zeros(0)))
                if (step + 1) % record_every == 0:
                    records[g.name][-1] = (*records[g.name][-1][:2], window[g.name] / record_every)
                    window[g.name] = np.zeros(g.size)
            bar.update(1)
            if on_step is not None:
                on_step(step + 1)
    bar.close()
    for g in groups:
        rows = records[g.name]
        out.norms[g.name] = np.stack([r[0] for r in rows])
        out.angles[g.name] = np.stack([r[1] for r in rows])
        out.losses[g.name] = np.stack([r[2] for r in rows])
        out.curve_errors[g.name] = np.stack([c[0] for c in curves[g.name]])
        out.curve_train_errors[g.name] = np.stack([c[1] for c in curves[g.name]])
    return out
