"""Does dividing by √d help a Transformer learn? Scaled vs unscaled attention (notebook 04).

The model is :class:`helpers.transformer.TinyTransformer` with one pre-LN block and ONE
attention head, so the head size d is the model width; its attention scores are multiplied by
1/√d (scaled, the default) or by 1 (unscaled).  The task is notebook 06's digit reversal.
Every training batch is new data (steps × batch size training examples), so the training
loss is also a held-out loss.

* :func:`attention_model`: that model, for a head size, a scaling and a seed (optionally with
  W_Q, W_K multiplied by a factor at initialization);
* :func:`variant_model`: the three versions the study compares (:data:`VARIANTS`): scaled,
  unscaled, and the control "matched": unscaled, with W_Q, W_K × d^(-1/4) so that its initial
  logits are those of the scaled model;
* :func:`init_logit_std`: the standard deviation of the attention logits of a freshly
  initialized TinyTransformer (the first block's first head), the scale s of notebook 04;
* :func:`train_attention`: one training run, with the readable loop of
  :func:`helpers.training.train` (the notebook's live demo).

The many-seed, many-learning-rate version is the study ``attention_training``
(``studies/attention_training.py``), stored in ``data/studies``.  Pure compute: nothing here
draws (the figures are :mod:`helpers.plots.attention`).
"""

from __future__ import annotations

import math
from typing import cast

import torch

from helpers.training import TrainingRun, train
from helpers.transformer import NORMS, Block, ReversalTask, TinyTransformer, reversal_task, sequence_loss
from helpers.validation import check_bool, check_choice, check_int, check_positive, check_tensor

__all__ = ["BATCH_SIZE", "LENGTH", "VARIANTS", "attention_model", "init_logit_std", "train_attention",
           "training_task", "variant_model"]

LENGTH = 6
"""Digits to reverse: the model reads 2 × 6 = 12 tokens."""
BATCH_SIZE = 16
"""Examples per training step."""
VARIANTS = ("scaled", "unscaled", "matched")
"""The versions the study compares: scores × 1/√d; scores × 1; and the control, scores × 1 with
W_Q, W_K multiplied by d^(-1/4) at initialization, so that q·k starts as the scaled model's
q·k/√d (the same initial logits, then trained without the division)."""


def attention_model(head_size: int, scaled: bool, seed: int = 0, *, length: int = LENGTH,
                    n_layers: int = 1, norm: str = "pre", qk_init_scale: float = 1.0) -> TinyTransformer:
    """A TinyTransformer with ``n_layers`` blocks of ONE attention head of size ``head_size``
    (so ``d_model = head_size``), its scores multiplied by 1/√head_size (``scaled``) or by 1.

    The seed sets the initial weights, and the scaling does not touch them: the scaled and
    the unscaled model of one seed start from the same weights.  ``qk_init_scale`` multiplies
    the query and key projections (W_Q, W_K and their biases, which start at 0) of every block
    once, at initialization: the initial scores are multiplied by ``qk_init_scale²``.

    Raises:
        TypeError/ValueError: for a bad size, flag, seed, length, ``norm`` or ``qk_init_scale``.
    """
    head_size = check_int("head_size", head_size, minimum=1)
    scaled = check_bool("scaled", scaled)
    length = check_int("length", length, minimum=2)
    qk_init_scale = check_positive("qk_init_scale", qk_init_scale)
    check_choice("norm", norm, NORMS)
    model = TinyTransformer(norm, n_layers=n_layers, d_model=head_size, n_heads=1, max_len=2 * length,
                            seed=seed, attention_scale=None if scaled else 1.0)
    if qk_init_scale != 1.0:
        with torch.no_grad():
            for block in model.blocks:
                qkv = cast(Block, block).attn.qkv  # rows: W_Q, then W_K, then W_V
                qkv.weight[: 2 * head_size].mul_(qk_init_scale)
                qkv.bias[: 2 * head_size].mul_(qk_init_scale)
    return model


def variant_model(head_size: int, variant: str, seed: int = 0, *, length: int = LENGTH) -> TinyTransformer:
    """:func:`attention_model` for one of :data:`VARIANTS`: ``"scaled"`` (÷√d), ``"unscaled"``
    (× 1, the same weights) or ``"matched"`` (× 1, W_Q and W_K × head_size^(-1/4), so its initial
    scores equal the scaled model's; the other weights are the same as well).

    Raises:
        TypeError/ValueError: for a bad size, variant, seed or length.
    """
    check_choice("variant", variant, VARIANTS)
    head_size = check_int("head_size", head_size, minimum=1)
    factor = head_size ** -0.25 if variant == "matched" else 1.0
    return attention_model(head_size, variant == "scaled", seed, length=length, qk_init_scale=factor)


def training_task(steps: int, batch_size: int = BATCH_SIZE, length: int = LENGTH,
                  data_seed: int = 0) -> ReversalTask:
    """``steps × batch_size`` reversal examples: one pass of :func:`train_attention` sees each
    example once, so every batch is new.

    Raises:
        TypeError/ValueError: for bad sizes or seed.
    """
    steps = check_int("steps", steps, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    return reversal_task(steps * batch_size, length, seed=data_seed)


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
    visible = torch.ones(tokens.shape[1], tokens.shape[1], dtype=torch.bool, device=tokens.device).tril()
    return float(scores[:, visible].std())


def train_attention(head_size: int, scaled: bool | str, seed: int = 0, *, lr: float = 1e-3, steps: int = 40,
                    batch_size: int = BATCH_SIZE, length: int = LENGTH, data_seed: int = 0,
                    progress: bool = True) -> TrainingRun:
    """Train one :func:`attention_model` with Adam at learning rate ``lr`` for ``steps`` new
    batches of the reversal task; returns the run (its loss of every step).

    ``scaled`` is a flag (÷√d or not) or one of :data:`VARIANTS` (:func:`variant_model`).  The
    seed sets the initial weights and the batch order, so the runs of one seed start from the
    same weights and see the same batches.

    Raises:
        TypeError/ValueError: for bad sizes, seeds, variant or ``lr``.
    """
    lr = check_positive("lr", lr)
    task = training_task(steps, batch_size, length, data_seed)
    if isinstance(scaled, str):
        model = variant_model(head_size, scaled, seed, length=length)
    else:
        model = attention_model(head_size, scaled, seed, length=length)
    return train(model, task.tokens, task.targets, lr=lr, epochs=1, batch_size=batch_size,
                 optimizer="adam", max_steps=steps, loss_fn=sequence_loss, seed=seed, progress=progress)
