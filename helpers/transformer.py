"""Where LayerNorm sits in a Transformer: a tiny decoder-only model and a task it can learn.

Notebook 06 compares three placements of LayerNorm in the same small GPT-style model:

- ``"post"``: the original Transformer (Vaswani et al., 2017), ``x = LN(x + sublayer(x))``;
- ``"pre"``: GPT-2 and ``nn.TransformerEncoderLayer(norm_first=True)``,
  ``x = x + sublayer(LN(x))`` with one more LN before the output head;
- ``"none"``: the same residual blocks without any LayerNorm.

The task is made in code (no downloads): reverse a short sequence of digits.  The model
reads ``d_1 ... d_n SEP`` and then writes the digits in reverse order, one per position
(teacher forcing, causal attention), so success is measured as the fraction of answer
digits predicted correctly and of whole sequences reversed without a mistake.

Everything here returns data (tensors, NumPy arrays, dataclasses): the model, the task and
measurements at initialization.  Training runs and their statistics are
:mod:`helpers.transformer_runs`; drawing lives in :mod:`helpers.plots.transformer`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from helpers.training import single_thread
from helpers.validation import check_choice, check_int, check_positive

NORMS = ("post", "pre", "none")
"""The LayerNorm placements a :class:`TinyTransformer` can use."""

LN_EPS = 1e-5
"""LayerNorm's epsilon, as the lecture recommends (and PyTorch's default)."""

N_DIGITS = 10
SEP = N_DIGITS
"""The separator token that tells the model to start answering (token id 10)."""
VOCAB = N_DIGITS + 1


# ---------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------
def _check_norm(norm: object) -> None:
    check_choice("norm", norm, NORMS)


def _check_scale(scale: object) -> None:
    if scale is not None:
        check_positive("attention_scale", scale)


# ---------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------
class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t only sees positions <= t.

    Uses :func:`torch.nn.functional.scaled_dot_product_attention`, which multiplies the
    scores by ``attention_scale`` (default ``None``: 1/sqrt(head size), notebook 04) and
    applies the causal mask.  ``attention_scale=1.0`` gives unscaled attention.
    """

    def __init__(self, d_model: int, n_heads: int, attention_scale: float | None = None) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model must be divisible by n_heads, got d_model={d_model}, n_heads={n_heads}")
        _check_scale(attention_scale)
        self.n_heads = n_heads
        self.attention_scale = attention_scale
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.explicit = False
        """Compute softmax(scale·QKᵀ + causal mask)·V step by step instead of with the fused
        kernel (the same function; :func:`torch.func.vmap` batches it, as the studies' batched training does)."""

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, length, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=-1)
        shape = (batch, length, self.n_heads, width // self.n_heads)
        q, k, v = (t.view(shape).transpose(1, 2) for t in (q, k, v))
        return q, k, v

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The attention probabilities, ``[batch, heads, query, key]`` (each row sums to 1)."""
        q, k, _ = self._heads(x)
        scale = 1.0 / math.sqrt(q.shape[-1]) if self.attention_scale is None else self.attention_scale
        scores = (q @ k.transpose(-2, -1)) * scale
        length = x.shape[1]
        future = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)
        scores = scores.masked_fill(future, float("-inf"))
        exp = (scores - scores.amax(dim=-1, keepdim=True)).exp()  # softmax, written out: on CPU
        return exp / exp.sum(dim=-1, keepdim=True)  # this is faster for rows of ~10 keys

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self._heads(x)
        if self.explicit:
            mixed = self.weights(x) @ v
        else:
            mixed = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.attention_scale)
        return self.out(mixed.transpose(1, 2).reshape(batch, length, width))


class Block(nn.Module):
    """One Transformer block (attention + feed-forward, each with a residual connection).

    ``norm`` decides where the two LayerNorms ``ln1``/``ln2`` sit; with ``"none"`` they are
    :class:`torch.nn.Identity` (so the module graph shows there is no normalization).
    """

    def __init__(self, d_model: int, n_heads: int, norm: str, d_ff: int | None = None,
                 attention_scale: float | None = None) -> None:
        super().__init__()
        _check_norm(norm)
        self.norm = norm
        d_ff = 4 * d_model if d_ff is None else d_ff
        self.attn = CausalSelfAttention(d_model, n_heads, attention_scale)
        self.ffn = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))
        make = (lambda: nn.LayerNorm(d_model, eps=LN_EPS)) if norm != "none" else nn.Identity
        self.ln1 = make()
        self.ln2 = make()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm == "post":  # original Transformer: Output = LN(X + Sublayer(X))
            x = self.ln1(x + self.attn(x))
            return self.ln2(x + self.ffn(x))
        # "pre" (GPT-2) and "none": the residual stream itself is never normalized
        x = x + self.attn(self.ln1(x))
        return x + self.ffn(self.ln2(x))


class Embeddings(nn.Module):
    """Token embedding plus learned position embedding, with input checks."""

    def __init__(self, vocab: int, d_model: int, max_len: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(max_len, d_model)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2:
            raise ValueError(f"tokens must have shape [batch, length], got {tuple(tokens.shape)}")
        if tokens.shape[1] > self.pos.num_embeddings:
            raise ValueError(f"tokens length must be <= max_len={self.pos.num_embeddings}, got {tokens.shape[1]}")
        return self.tok(tokens) + self.pos(torch.arange(tokens.shape[1], device=tokens.device))


class TinyTransformer(nn.Module):
    """A decoder-only Transformer: embeddings, ``n_layers`` blocks, (final LN), linear head.

    Args:
        norm: ``"post"``, ``"pre"`` or ``"none"`` (see the module docstring).
        n_layers, d_model, n_heads: depth, width and number of attention heads.
        vocab: number of token ids; max_len: longest sequence (learned positions).
        seed: seeds the initial weights (a private generator; global state is untouched).
        attention_scale: factor on the attention scores q·k; ``None`` (default) is
            1/sqrt(head size), ``1.0`` is unscaled attention (notebook 04).

    Initialization: Xavier-uniform weights and zero biases in every linear layer (as in
    Xiong et al., 2020), embeddings ~ N(0, 1) so each coordinate of the residual stream
    starts at the scale a LayerNorm output has; LayerNorm gamma = 1, beta = 0.

    ``forward(tokens [N, T]) -> logits [N, T, vocab]``.
    """

    def __init__(
        self,
        norm: str = "pre",
        *,
        n_layers: int = 3,
        d_model: int = 64,
        n_heads: int = 4,
        vocab: int = VOCAB,
        max_len: int = 32,
        seed: int = 0,
        attention_scale: float | None = None,
    ) -> None:
        super().__init__()
        _check_norm(norm)
        for name, value in (("n_layers", n_layers), ("d_model", d_model), ("n_heads", n_heads),
                            ("vocab", vocab), ("max_len", max_len)):
            check_int(name, value, minimum=1)
        check_int("seed", seed, minimum=0)
        self.norm = norm
        self.embeddings = Embeddings(vocab, d_model, max_len)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, norm, attention_scale=attention_scale)
                                    for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model, eps=LN_EPS) if norm == "pre" else nn.Identity()
        self.head = nn.Linear(d_model, vocab)
        self._init_weights(seed)

    def _init_weights(self, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    bound = math.sqrt(6.0 / (module.in_features + module.out_features))
                    module.weight.copy_(torch.rand(module.weight.shape, generator=generator) * 2 * bound - bound)
                    module.bias.zero_()
                elif isinstance(module, nn.Embedding):
                    module.weight.copy_(torch.randn(module.weight.shape, generator=generator))

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token plus position embeddings: the residual stream entering block 1."""
        return self.embeddings(tokens)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))

    def residual_stream(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """The residual stream after the embeddings and after every block (n_layers + 1 tensors)."""
        x = self.embed(tokens)
        states = [x]
        for block in self.blocks:
            x = block(x)
            states.append(x)
        return states


SUBLAYERS = ("attn", "ffn", "head")


def layernorm_positions(model: TinyTransformer) -> list[str]:
    """Where the model's LayerNorms sit, read from its module graph (traced with torch.fx).

    Returns one line per LayerNorm call, in execution order:

    - ``"blocks.0.ln1: LN(x + attn) is the residual stream"`` for a LayerNorm on the main
      path: it takes the residual sum and nothing bypasses it (post-LN);
    - ``"blocks.0.ln1: LN(stream) feeds attn only"`` for a LayerNorm on a branch: the skip
      connection bypasses it and its output only enters a sublayer or the output head
      (pre-LN);
    - ``"ln_f: final LN(stream) feeds head only"`` for pre-LN's last LayerNorm.
    """
    from torch import fx

    class _Tracer(fx.Tracer):
        def is_leaf_module(self, module: nn.Module, name: str) -> bool:
            leaves = (Embeddings, CausalSelfAttention, nn.Sequential)
            return isinstance(module, leaves) or super().is_leaf_module(module, name)

    graph = _Tracer().trace(model)
    modules = dict(model.named_modules())

    def kind(node: fx.Node) -> str:
        if node.op == "call_module" and isinstance(node.target, str):  # the module's qualified name
            return node.target.rsplit(".", 1)[-1]
        return getattr(node.target, "__name__", node.op)

    def consumers(node: fx.Node) -> set[str]:
        found: set[str] = set()
        for user in node.users:
            if user.op == "call_module" and isinstance(modules[user.target], nn.Identity):
                found |= consumers(user)  # look through the Identity stand-ins
            else:
                found.add(kind(user))
        return found

    lines = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], nn.LayerNorm):
            continue
        users = consumers(node)
        source = node.args[0]
        bypassed = len(source.users) > 1  # the skip connection also reads the LN's input
        added = [kind(a) for a in source.args if isinstance(a, fx.Node)] if kind(source) in ("add", "iadd") else []
        sub = [k for k in added if k in SUBLAYERS]
        if node.target == "ln_f":
            lines.append(f"ln_f: final LN(stream) feeds {'/'.join(sorted(users))} only")
        elif bypassed and users <= set(SUBLAYERS):
            lines.append(f"{node.target}: LN(stream) feeds {'/'.join(sorted(users))} only")
        elif not bypassed and sub:
            lines.append(f"{node.target}: LN(x + {sub[0]}) is the residual stream")
        else:  # not a placement this module builds; reported as-is
            lines.append(f"{node.target}: LN({kind(source)}) feeds {'/'.join(sorted(users))}")
    return lines


def pytorch_layer_difference(norm: str, *, d_model: int = 16, n_heads: int = 4, seed: int = 0) -> float:
    """Largest |difference| between our :class:`Block` and ``nn.TransformerEncoderLayer``.

    The PyTorch layer gets ``norm_first=True`` for ``"pre"`` and ``norm_first=False`` for
    ``"post"``, a causal mask, no dropout, GELU, and our block's weights (random, including
    LayerNorm gamma and beta).  A difference near 1e-7 means both compute the same function.

    Raises:
        ValueError: for ``norm="none"`` (PyTorch's layer always has LayerNorms).
    """
    if norm not in ("pre", "post"):
        raise ValueError(f"norm must be one of ('pre', 'post'), got {norm!r}")
    generator = torch.Generator().manual_seed(seed)
    block = Block(d_model, n_heads, norm)
    reference = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward=4 * d_model, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=norm == "pre")
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=generator))
        reference.self_attn.in_proj_weight.copy_(block.attn.qkv.weight)
        reference.self_attn.in_proj_bias.copy_(block.attn.qkv.bias)
        reference.self_attn.out_proj.weight.copy_(block.attn.out.weight)
        reference.self_attn.out_proj.bias.copy_(block.attn.out.bias)
        linear1, linear2 = cast(nn.Linear, block.ffn[0]), cast(nn.Linear, block.ffn[2])
        ln1, ln2 = cast(nn.LayerNorm, block.ln1), cast(nn.LayerNorm, block.ln2)  # norm is "pre" or "post"
        for ours, theirs in ((linear1, reference.linear1), (linear2, reference.linear2),
                             (ln1, reference.norm1), (ln2, reference.norm2)):
            theirs.weight.copy_(ours.weight)
            theirs.bias.copy_(ours.bias)
        x = torch.randn(4, 7, d_model, generator=generator)
        mask = nn.Transformer.generate_square_subsequent_mask(7)
        reference.eval()
        expected = reference(x, src_mask=mask, is_causal=True)
        return float((block(x) - expected).abs().max())


def _check_block_parts(x: object, ln1: object, attn: object, ln2: object, ffn: object) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor [batch, positions, d_model], got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(f"x must have shape [batch, positions, d_model], got {tuple(x.shape)}")
    for name, part in (("ln1", ln1), ("attn", attn), ("ln2", ln2), ("ffn", ffn)):
        if not callable(part):
            raise TypeError(f"{name} must be callable (a module or function), got {type(part).__name__}")


def pre_ln_block(x: torch.Tensor, ln1: nn.Module, attn: nn.Module, ln2: nn.Module,
                 ffn: nn.Module) -> torch.Tensor:
    """One pre-LN block (GPT-2), written as a function of its four parts.

    ``x = x + attn(ln1(x))`` then ``x + ffn(ln2(x))``: each sublayer reads a normalized copy
    of the residual stream and adds its output to the un-normalized stream.  With
    :class:`torch.nn.Identity` for ``ln1``/``ln2`` it is the ``"none"`` block.  Computes
    what ``Block(norm="pre")`` (or ``"none"``) computes with the same parts.

    Raises:
        TypeError: if ``x`` is not a tensor or a part is not callable.
        ValueError: if ``x`` is not ``[batch, positions, d_model]``.
    """
    _check_block_parts(x, ln1, attn, ln2, ffn)
    x = x + attn(ln1(x))
    return x + ffn(ln2(x))


def post_ln_block(x: torch.Tensor, ln1: nn.Module, attn: nn.Module, ln2: nn.Module,
                  ffn: nn.Module) -> torch.Tensor:
    """One post-LN block (the original Transformer), written as a function of its four parts.

    ``x = ln1(x + attn(x))`` then ``ln2(x + ffn(x))``: the LayerNorm normalizes the residual
    sum itself.  Computes what ``Block(norm="post")`` computes with the same parts.

    Raises:
        TypeError: if ``x`` is not a tensor or a part is not callable.
        ValueError: if ``x`` is not ``[batch, positions, d_model]``.
    """
    _check_block_parts(x, ln1, attn, ln2, ffn)
    x = ln1(x + attn(x))
    return ln2(x + ffn(x))


def stream_norm(x: torch.Tensor) -> float:
    """The mean L2 norm of one token's vector: ``x.norm(dim=-1).mean()``, as a float.

    ``x`` is a residual stream ``[..., d_model]`` (e.g. ``[batch, positions, d_model]``);
    the norm is taken over the last dimension (one vector per token) and averaged over all
    tokens.  A LayerNorm output with gamma = 1 and beta = 0 has norm about sqrt(d_model).
    :func:`residual_norms` reports this after the embeddings and after every block.

    Raises:
        TypeError: if ``x`` is not a floating-point tensor.
        ValueError: if ``x`` has no dimension or no entries.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point torch.Tensor [..., d_model], got {type(x).__name__}"
                        + (f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) else ""))
    if x.dim() == 0 or x.numel() == 0:
        raise ValueError(f"x must have at least one dimension and one entry, got shape {tuple(x.shape)}")
    return float(x.detach().norm(dim=-1).mean())


# ---------------------------------------------------------------------------------------
# the task
# ---------------------------------------------------------------------------------------
@dataclass
class ReversalTask:
    """Digit-reversal examples: ``tokens`` [N, 2n] and ``targets`` [N, n].

    ``tokens[i] = d_1 ... d_n SEP d_n ... d_2``; the model's outputs at the last ``n``
    positions (from SEP on) must be ``targets[i] = d_n ... d_1``.
    """

    tokens: torch.Tensor
    targets: torch.Tensor

    @property
    def length(self) -> int:
        """The number of digits to reverse, n."""
        return self.targets.shape[1]


def reversal_task(n_examples: int, length: int = 6, seed: int = 0) -> ReversalTask:
    """``n_examples`` random digit sequences of ``length`` digits and their reversals.

    Raises:
        ValueError/TypeError: for a non-positive ``n_examples``, ``length`` < 2 or a bad seed.
    """
    check_int("n_examples", n_examples, minimum=1)
    check_int("length", length, minimum=2)
    check_int("seed", seed, minimum=0)
    generator = torch.Generator().manual_seed(seed)
    digits = torch.randint(0, N_DIGITS, (n_examples, length), generator=generator)
    reversed_digits = digits.flip(1)
    sep = torch.full((n_examples, 1), SEP, dtype=torch.long)
    tokens = torch.cat([digits, sep, reversed_digits[:, :-1]], dim=1)
    return ReversalTask(tokens, reversed_digits)


def answer_logits(logits: torch.Tensor, length: int) -> torch.Tensor:
    """The logits at the answer positions: the last ``length`` of ``[N, T, vocab]``."""
    return logits[:, -length:, :]


def sequence_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over every answer token: flattens ``[N, n, vocab]`` against ``[N, n]``."""
    answer = answer_logits(logits, targets.shape[1])
    return F.cross_entropy(answer.reshape(-1, answer.shape[-1]), targets.reshape(-1))


@torch.no_grad()
def accuracy(model: nn.Module, task: ReversalTask) -> tuple[float, float]:
    """(per-digit accuracy, whole-sequence accuracy) of ``model`` on ``task`` (eval mode)."""
    was_training = model.training
    model.eval()
    prediction = answer_logits(model(task.tokens), task.length).argmax(dim=-1)
    model.train(was_training)
    correct = prediction == task.targets
    return float(correct.float().mean()), float(correct.all(dim=1).float().mean())


# ---------------------------------------------------------------------------------------
# measurements at initialization
# ---------------------------------------------------------------------------------------
def layer_gradient_norms(model: TinyTransformer, task: ReversalTask) -> dict[str, np.ndarray]:
    """Gradient norms of each block's parameters for one batch (the whole ``task``).

    Returns a dict with arrays of length ``n_layers``: ``"attention"`` (Q/K/V and output
    projections), ``"ffn"`` (both feed-forward matrices and biases), ``"ffn_w2"`` (the
    second feed-forward matrix alone, the quantity Xiong et al. analyse) and ``"block"``
    (everything in the block, LayerNorms included); plus the scalars ``"embedding"`` and
    ``"head"`` as 1-element arrays.
    """
    model.zero_grad(set_to_none=True)
    with single_thread():
        sequence_loss(model(task.tokens), task.targets).backward()

    def norm(params: Sequence[torch.Tensor]) -> float:
        squares = []
        for p in params:
            if p.grad is None:
                raise RuntimeError("a parameter of the model got no gradient from the loss")
            squares.append((p.grad.double() ** 2).sum())
        return float(torch.sqrt(cast(torch.Tensor, sum(squares))))  # a tensor: every part has parameters

    blocks = cast("Sequence[Block]", model.blocks)  # nn.ModuleList holds the model's Blocks
    result = {
        "attention": np.array([norm(list(b.attn.parameters())) for b in blocks]),
        "ffn": np.array([norm(list(b.ffn.parameters())) for b in blocks]),
        "ffn_w2": np.array([norm([cast(nn.Linear, b.ffn[2]).weight]) for b in blocks]),
        "block": np.array([norm(list(b.parameters())) for b in blocks]),
        "embedding": np.array([norm(list(model.embeddings.parameters()))]),
        "head": np.array([norm(list(model.head.parameters()))]),
    }
    model.zero_grad(set_to_none=True)
    return result


def gradients_across_depth(
    depths: tuple[int, ...] = (2, 4, 8, 16),
    norms: tuple[str, ...] = ("post", "pre"),
    seeds: tuple[int, ...] = (0, 1, 2),
    n_examples: int = 128,
    length: int = 8,
) -> dict[tuple[str, int], np.ndarray]:
    """FFN ``W2`` gradient norms at initialization for models of several depths.

    Returns ``{(norm, n_layers): array [len(seeds), n_layers]}``: one row per seed (the
    seed sets the initial weights; the batch is the same ``n_examples`` reversal examples).
    """
    for norm in norms:
        _check_norm(norm)
    for depth in depths:
        check_int("depths", depth, minimum=1)
    task = reversal_task(n_examples, length, seed=0)
    return {
        (norm, depth): np.stack([
            layer_gradient_norms(TinyTransformer(norm, n_layers=depth, max_len=2 * length, seed=s), task)["ffn_w2"]
            for s in seeds
        ])
        for norm in norms for depth in depths
    }


@torch.no_grad()
def residual_norms(model: TinyTransformer, tokens: torch.Tensor) -> np.ndarray:
    """Mean L2 norm of one token's residual-stream vector after the embeddings and each block.

    Shape ``(n_layers + 1,)``.  A LayerNorm output with gamma = 1 has norm sqrt(d_model).
    """
    return np.array([float(s.norm(dim=-1).mean()) for s in model.residual_stream(tokens)])


@torch.no_grad()
def sublayer_norms(model: TinyTransformer, tokens: torch.Tensor,
                   norm: Callable[[torch.Tensor], float | torch.Tensor] = stream_norm,
                   ) -> tuple[np.ndarray, torch.Tensor]:
    """The residual stream sublayer by sublayer, in a model whose sublayers add to it.

    In pre-LN and in the model without LN each sublayer adds ``sublayer(ln(x))`` to the stream
    ``x`` (``ln`` is :class:`torch.nn.Identity` without LN).  Returns the stream's norm after the
    embeddings and after every sublayer, ``(2 · n_layers + 1,)``, and the norm of what each
    sublayer adds, a float64 tensor ``(2 · n_layers,)``: ``norm`` of a ``[batch, positions,
    d_model]`` tensor, by default :func:`stream_norm` (notebook 06 passes the one its reader wrote).

    Raises:
        ValueError: for a post-LN model, whose LayerNorm normalizes the sum itself.
    """
    if model.norm == "post":
        raise ValueError("model must add its sublayers to the stream (pre-LN or none), got a post-LN model")
    x = model.embed(tokens)
    stream, added = [float(norm(x))], []
    for block in model.blocks:
        for ln, sublayer in ((block.ln1, block.attn), (block.ln2, block.ffn)):
            out = sublayer(ln(x))  # type: ignore[operator]  # ModuleList items are typed as Module
            added.append(float(norm(out)))
            x = x + out
            stream.append(float(norm(x)))
    return np.array(stream), torch.tensor(added, dtype=torch.float64)
