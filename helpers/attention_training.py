"""Does dividing by √d help a Transformer learn? Scaled vs unscaled attention (notebook 04).

Trains :class:`helpers.transformer.TinyTransformer` (one pre-LN block, one attention head, so
the head size is the model width) on the digit-reversal task with attention scores multiplied
by 1/√(head size) (scaled, the default) or by 1 (unscaled), for several head sizes and seeds.
Every training batch is new data (fewer steps × batch size than training examples), so the
training loss is also a held-out loss.

* :func:`init_logit_std`: the standard deviation of the attention logits of a freshly
  initialized TinyTransformer (the first block's first head), the scale s of notebook 04;
* :func:`train_scaling_comparison`: the learning curves, one per head size, scaling and seed.

Pure compute: nothing here draws (the figure is :func:`helpers.plots.attention.training_figure`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch

from helpers.training import single_thread, train
from helpers.transformer import NORMS, Block, TinyTransformer, reversal_task, sequence_loss
from helpers.validation import check_choice, check_int, check_ints, check_positive, check_tensor

__all__ = ["ScalingComparison", "init_logit_std", "train_scaling_comparison"]


@torch.no_grad()
def init_logit_std(model: TinyTransformer, tokens: torch.Tensor) -> float:
    """std of the attention logits q·k × scale of ``model``'s first block and first head.

    The scale is the model's ``attention_scale`` (1/√head size when ``None``). Only the
    entries the causal mask keeps (key position ≤ query position) are counted.

    Raises:
        TypeError: if ``model`` is not a TinyTransformer or ``tokens`` not a tensor.
        ValueError: if ``tokens`` is not 2-D ``[batch, length]``.
    """
    if not isinstance(model, TinyTransformer):
        raise TypeError(f"model must be a TinyTransformer, got {type(model).__name__}")
    check_tensor("tokens", tokens, ndim=2)
    block = cast(Block, model.blocks[0])  # nn.ModuleList holds the model's Blocks
    attn = block.attn
    x = block.ln1(model.embed(tokens))
    width = x.shape[-1]
    head = width // attn.n_heads
    q, k, _ = attn.qkv(x).split(width, dim=-1)
    q, k = q[..., :head], k[..., :head]
    scale = 1 / math.sqrt(head) if attn.attention_scale is None else attn.attention_scale
    scores = scale * q @ k.transpose(-2, -1)
    visible = torch.ones(tokens.shape[1], tokens.shape[1], dtype=torch.bool).tril()
    return float(scores[:, visible].std())


@dataclass
class ScalingComparison:
    """Learning curves of scaled and unscaled attention (:func:`train_scaling_comparison`)."""

    head_sizes: tuple[int, ...]
    seeds: tuple[int, ...]
    losses: dict[tuple[int, bool], np.ndarray]
    """``(head size, scaled)`` -> training losses, shape ``[seeds, steps]``."""
    logit_std: dict[tuple[int, bool], np.ndarray]
    """``(head size, scaled)`` -> std of the attention logits at initialization, per seed."""

    @property
    def steps(self) -> int:
        """Training steps per run."""
        return next(iter(self.losses.values())).shape[1]

    def window_loss(self, head_size: int, scaled: bool, start: int, stop: int) -> np.ndarray:
        """Mean loss over steps ``start`` to ``stop - 1`` (0-based), one value per seed.

        Raises:
            KeyError: if the comparison has no such head size.
            ValueError: if the window is empty or outside the run.
        """
        if (head_size, scaled) not in self.losses:
            raise KeyError(f"no runs for head size {head_size}; trained: {self.head_sizes}")
        if not 0 <= start < stop <= self.steps:
            raise ValueError(f"need 0 <= start < stop <= {self.steps}, got start={start}, stop={stop}")
        return self.losses[head_size, scaled][:, start:stop].mean(axis=1)


def train_scaling_comparison(
    head_sizes: Sequence[int] = (64, 256),
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    *,
    steps: int = 60,
    lr: float = 1e-3,
    batch_size: int = 16,
    length: int = 6,
    n_layers: int = 1,
    norm: str = "pre",
    data_seed: int = 0,
) -> ScalingComparison:
    """Train one TinyTransformer per head size, scaling (1/√head size or 1) and seed.

    Each model has ``n_layers`` blocks with one attention head (``d_model`` = head size) and
    is trained with Adam at learning rate ``lr`` on ``steps`` fresh batches of the reversal
    task of ``length`` digits. The seed sets the initial weights and the batch order; scaled
    and unscaled runs of the same seed start from the same weights and see the same batches.

    Raises:
        TypeError/ValueError: for bad sizes, seeds, ``lr`` or ``norm``.
    """
    head_sizes = check_ints("head_sizes", head_sizes, minimum=1)
    seeds = check_ints("seeds", seeds, minimum=0)
    steps = check_int("steps", steps, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    length = check_int("length", length, minimum=2)
    n_layers = check_int("n_layers", n_layers, minimum=1)
    lr = check_positive("lr", lr)
    check_choice("norm", norm, NORMS)
    task = reversal_task(steps * batch_size, length, seed=data_seed)
    probe = task.tokens[:256]
    losses: dict[tuple[int, bool], np.ndarray] = {}
    logit_std: dict[tuple[int, bool], np.ndarray] = {}
    with single_thread():
        for head in head_sizes:
            for scaled in (True, False):
                curves, stds = [], []
                for seed in seeds:
                    model = TinyTransformer(norm, n_layers=n_layers, d_model=head, n_heads=1,
                                            max_len=2 * length, seed=seed,
                                            attention_scale=None if scaled else 1.0)
                    stds.append(init_logit_std(model, probe))
                    run = train(model, task.tokens, task.targets, lr=lr, epochs=1,
                                batch_size=batch_size, optimizer="adam", max_steps=steps,
                                loss_fn=sequence_loss, seed=seed, progress=False)
                    curves.append(run.losses)
                losses[head, scaled] = np.stack(curves)
                logit_std[head, scaled] = np.array(stds)
    return ScalingComparison(head_sizes, seeds, losses, logit_std)
