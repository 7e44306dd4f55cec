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

Everything here returns data (tensors, NumPy arrays, dataclasses); drawing lives in
:mod:`helpers.plots.transformer`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from helpers.claims import SeedBand, seed_band
from helpers.training import TrainingRun, single_thread, train, warmup_lr
from helpers.validation import check_choice, check_int, check_ints, check_positive, check_reals

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
        kernel (the same function; :func:`torch.func.vmap` batches it, see :func:`train_batched`)."""

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
        if node.op == "call_module":
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
        for ours, theirs in ((block.ffn[0], reference.linear1), (block.ffn[2], reference.linear2),
                             (block.ln1, reference.norm1), (block.ln2, reference.norm2)):
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

    def norm(params: list[torch.nn.Parameter]) -> float:
        return float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params)))

    result = {
        "attention": np.array([norm(list(b.attn.parameters())) for b in model.blocks]),
        "ffn": np.array([norm(list(b.ffn.parameters())) for b in model.blocks]),
        "ffn_w2": np.array([norm([b.ffn[2].weight]) for b in model.blocks]),
        "block": np.array([norm(list(b.parameters())) for b in model.blocks]),
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


# ---------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------
@dataclass
class RunResult:
    """One training run of one variant: its settings, curves and final scores."""

    norm: str
    lr: float
    warmup_steps: int
    seed: int
    losses: np.ndarray
    """Training loss of every step (``nan`` after a divergence)."""
    learning_rates: np.ndarray
    digit_accuracy: float
    """Fraction of answer digits right on held-out sequences."""
    sequence_accuracy: float
    """Fraction of held-out sequences reversed without a mistake."""
    residual_init: np.ndarray
    """:func:`residual_norms` before training."""
    residual_final: np.ndarray
    """:func:`residual_norms` after training."""
    extra: dict[str, object] = field(default_factory=dict)

    def oscillation(self, window: int = 20) -> float:
        """How jagged the loss curve is: mean |loss - its moving average| over the last half."""
        half = self.losses[len(self.losses) // 2 :]
        window = min(window, len(half))
        if window < 1 or not np.isfinite(half).all():
            return float("nan")
        smooth = np.convolve(half, np.ones(window) / window, mode="valid")
        return float(np.mean(np.abs(half[window - 1 :] - smooth)))

    def steps_to(self, threshold: float, window: int = 10) -> int | None:
        """First step at which the ``window``-step moving-average loss is below ``threshold``."""
        if len(self.losses) < window:
            return None
        smooth = np.convolve(np.nan_to_num(self.losses, nan=np.inf), np.ones(window) / window, mode="valid")
        below = np.nonzero(smooth < threshold)[0]
        return int(below[0] + window - 1) if below.size else None


@dataclass
class TrainingSetup:
    """The fixed part of every run: data, model size and schedule."""

    n_layers: int = 3
    d_model: int = 64
    n_heads: int = 4
    length: int = 8
    n_train: int = 4096
    n_test: int = 512
    batch_size: int = 32
    steps: int = 150
    data_seed: int = 0

    def tasks(self) -> tuple[ReversalTask, ReversalTask]:
        """(training set, held-out test set), disjoint seeds."""
        return (reversal_task(self.n_train, self.length, seed=self.data_seed),
                reversal_task(self.n_test, self.length, seed=self.data_seed + 1000))

    def model(self, norm: str, seed: int) -> TinyTransformer:
        return TinyTransformer(norm, n_layers=self.n_layers, d_model=self.d_model,
                               n_heads=self.n_heads, max_len=2 * self.length, seed=seed)


def train_variant(
    norm: str,
    *,
    lr: float,
    warmup_steps: int = 0,
    seed: int = 0,
    setup: TrainingSetup | None = None,
    tasks: tuple[ReversalTask, ReversalTask] | None = None,
) -> RunResult:
    """Train one :class:`TinyTransformer` variant with Adam via :func:`helpers.training.train`.

    Args:
        norm: ``"post"``, ``"pre"`` or ``"none"``.
        lr: peak learning rate; warmup_steps: linear warm-up length (0 for none).
        seed: seeds the initial weights and the batch order.
        setup: data/model/schedule settings (defaults: :class:`TrainingSetup`).
        tasks: precomputed ``setup.tasks()`` to avoid regenerating the data.
    """
    _check_norm(norm)
    setup = TrainingSetup() if setup is None else setup
    train_task, test_task = setup.tasks() if tasks is None else tasks
    model = setup.model(norm, seed)
    probe = test_task.tokens[:256]
    epochs = max(1, math.ceil(setup.steps * setup.batch_size / train_task.tokens.shape[0]))
    with single_thread():
        residual_init = residual_norms(model, probe)
        run: TrainingRun = train(model, train_task.tokens, train_task.targets, lr=lr, epochs=epochs,
                                 batch_size=setup.batch_size, optimizer="adam",
                                 warmup_steps=warmup_steps, max_steps=setup.steps,
                                 loss_fn=sequence_loss, seed=seed, progress=False)
        finite = bool(np.isfinite(run.losses).all())
        if finite:
            digit, sequence = accuracy(model, test_task)
            residual_final = residual_norms(model, probe)
    if not finite:
        digit, sequence = float("nan"), float("nan")
        residual_final = np.full_like(residual_init, np.nan)
    return RunResult(norm, lr, warmup_steps, seed, run.losses, run.learning_rates,
                     digit, sequence, residual_init, residual_final)


RunKey = tuple[str, float, int, int]
"""(norm, lr, warmup_steps, seed)."""


def _grid_setup(norms: tuple[str, ...], lrs: tuple[float, ...], warmups: tuple[int, ...],
                seeds: tuple[int, ...], setup: TrainingSetup | None,
                ) -> tuple[TrainingSetup, tuple[ReversalTask, ReversalTask]]:
    """Validate a grid's settings; return the setup (default if ``None``) and its tasks."""
    for norm in norms:
        _check_norm(norm)
    check_reals("lrs", lrs)
    check_ints("warmups", warmups, minimum=0)
    check_ints("seeds", seeds, minimum=0)
    setup = TrainingSetup() if setup is None else setup
    return setup, setup.tasks()


def run_grid(
    norms: tuple[str, ...] = NORMS,
    lrs: tuple[float, ...] = (1e-2,),
    warmups: tuple[int, ...] = (0, 40),
    seeds: tuple[int, ...] = (0, 1, 2),
    setup: TrainingSetup | None = None,
) -> dict[RunKey, RunResult]:
    """Every combination of the settings, trained with :func:`train_variant`.

    Returns a dict keyed ``(norm, lr, warmup_steps, seed)``.
    """
    setup, tasks = _grid_setup(norms, lrs, warmups, seeds, setup)
    return {
        (norm, lr, warmup, seed): train_variant(norm, lr=lr, warmup_steps=warmup, seed=seed,
                                                setup=setup, tasks=tasks)
        for norm in norms for lr in lrs for warmup in warmups for seed in seeds
    }


def summarize(grid: dict[RunKey, RunResult], norm: str, lr: float, warmup_steps: int) -> dict[str, float]:
    """Mean over seeds of a grid cell: final loss (last 20 steps), accuracies, oscillation.

    Diverged runs count as accuracy 0 and final loss ``nan``.
    """
    runs = [r for (n, l, w, _), r in grid.items() if (n, l, w) == (norm, lr, warmup_steps)]
    if not runs:
        raise ValueError(f"no runs in grid for norm={norm!r}, lr={lr}, warmup_steps={warmup_steps}")
    final = [float(np.mean(r.losses[-20:])) for r in runs]
    return {
        "final_loss": float(np.mean(final)),
        "digit_accuracy": float(np.mean([np.nan_to_num(r.digit_accuracy) for r in runs])),
        "sequence_accuracy": float(np.mean([np.nan_to_num(r.sequence_accuracy) for r in runs])),
        "oscillation": float(np.mean([r.oscillation() for r in runs])),
        "diverged": float(np.mean([not np.isfinite(r.losses).all() for r in runs])),
    }


# ---------------------------------------------------------------------------------------
# many runs at once: one batched model (torch.func) with a batched Adam
# ---------------------------------------------------------------------------------------
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
"""The defaults of :class:`torch.optim.Adam`, which :func:`train_batched` reproduces."""


def _check_runs(lrs: object, seeds: object, warmups: object) -> tuple[list[float], list[int], list[int]]:
    lr_list = list(check_reals("lrs", lrs))
    seed_list = list(check_ints("seeds", seeds, minimum=0))
    warmup_list = list(check_ints("warmups", warmups, minimum=0))
    if not len(lr_list) == len(seed_list) == len(warmup_list):
        raise ValueError(f"lrs, seeds and warmups must have the same length (one entry per run), "
                         f"got {len(lr_list)}, {len(seed_list)} and {len(warmup_list)}")
    return lr_list, seed_list, warmup_list


def _batch_orders(seeds: list[int], n_train: int, batch_size: int, steps: int) -> torch.Tensor:
    """The example indices of every step of every run, ``[runs, steps, batch]``.

    The same order :func:`helpers.training.train` draws: one ``randperm`` per epoch from a
    generator seeded with the run's seed, batches taken in order, the last partial batch dropped.
    """
    per_epoch = n_train // batch_size
    orders = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        batches: list[torch.Tensor] = []
        while len(batches) < steps:
            order = torch.randperm(n_train, generator=generator)
            batches.extend(order[i * batch_size : (i + 1) * batch_size] for i in range(per_epoch))
        orders.append(torch.stack(batches[:steps]))
    return torch.stack(orders)


def train_batched(
    norm: str,
    *,
    lrs: list[float] | tuple[float, ...],
    seeds: list[int] | tuple[int, ...],
    warmups: list[int] | tuple[int, ...],
    setup: TrainingSetup | None = None,
    tasks: tuple[ReversalTask, ReversalTask] | None = None,
) -> list[RunResult]:
    """Train many runs of one variant at once, as ONE batched model; returns one result per run.

    Run ``i`` is what :func:`train_variant` ``(norm, lr=lrs[i], warmup_steps=warmups[i],
    seed=seeds[i])`` computes: the same initial weights, the same batch order, Adam with the
    PyTorch defaults and linear warm-up.  The runs' weights are stacked with
    :func:`torch.func.stack_module_state` and evaluated with ``vmap(functional_call)``;
    a batched Adam (written here, one learning rate per run) updates them.  At these tiny
    sizes this costs far less than the runs one after the other.  Runs are independent:
    one that diverges to ``nan`` does not touch the others.

    Raises:
        TypeError/ValueError: for a bad ``norm`` or lists of different lengths or bad values.
    """
    import copy

    from torch.func import functional_call, stack_module_state, vmap

    _check_norm(norm)
    lr_list, seed_list, warmup_list = _check_runs(lrs, seeds, warmups)
    setup = TrainingSetup() if setup is None else setup
    train_task, test_task = setup.tasks() if tasks is None else tasks
    models = [setup.model(norm, s) for s in seed_list]
    probe = test_task.tokens[:256]
    n_runs, steps = len(models), setup.steps
    with single_thread():
        residual_init = [residual_norms(m, probe) for m in models]
        params, buffers = stack_module_state(models)
        params = {k: v.detach().clone() for k, v in params.items()}
        skeleton = copy.deepcopy(models[0]).to("meta")
        for module in skeleton.modules():
            if isinstance(module, CausalSelfAttention):
                module.explicit = True  # the fused attention kernel has no vmap rule

        def run_loss(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor],
                     tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return sequence_loss(functional_call(skeleton, (p, b), (tokens,)), targets)

        batched_loss = vmap(run_loss)
        orders = _batch_orders(seed_list, train_task.tokens.shape[0], setup.batch_size, steps)
        peak = torch.tensor(lr_list)
        ramp = torch.tensor(warmup_list, dtype=torch.float64)
        first = {k: torch.zeros_like(v) for k, v in params.items()}
        second = {k: torch.zeros_like(v) for k, v in params.items()}
        (beta1, beta2), losses, rates = ADAM_BETAS, np.empty((n_runs, steps)), np.empty((n_runs, steps))
        for step in range(steps):
            index = orders[:, step]
            factor = torch.where(ramp > 0, torch.clamp((step + 1) / ramp.clamp(min=1), max=1.0), 1.0)
            rate = peak * factor.float()
            for p in params.values():
                p.requires_grad_(True)
            loss = batched_loss(params, buffers, train_task.tokens[index], train_task.targets[index])
            grads = torch.autograd.grad(loss.sum(), list(params.values()))
            losses[:, step] = loss.detach().numpy()
            rates[:, step] = [warmup_lr(step, lr, w) for lr, w in zip(lr_list, warmup_list)]
            bias1, bias2 = 1 - beta1 ** (step + 1), 1 - beta2 ** (step + 1)
            with torch.no_grad():
                for (name, p), g in zip(params.items(), grads):
                    first[name].mul_(beta1).add_(g, alpha=1 - beta1)
                    second[name].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                    denom = second[name].sqrt() / math.sqrt(bias2) + ADAM_EPS
                    shape = (n_runs,) + (1,) * (p.dim() - 1)
                    params[name] = p.detach() - (rate / bias1).view(shape) * first[name] / denom
        losses[~np.isfinite(losses)] = np.nan
        results = []
        for i, model in enumerate(models):
            with torch.no_grad():
                for name, p in model.named_parameters():
                    p.copy_(params[name][i])
            finite = bool(np.isfinite(losses[i]).all())
            digit, sequence = accuracy(model, test_task) if finite else (float("nan"), float("nan"))
            final = residual_norms(model, probe) if finite else np.full_like(residual_init[i], np.nan)
            results.append(RunResult(norm, lr_list[i], warmup_list[i], seed_list[i], losses[i],
                                     rates[i], digit, sequence, residual_init[i], final,
                                     extra={"model": model}))
    return results


# ---------------------------------------------------------------------------------------
# the first steps of training, step by step
# ---------------------------------------------------------------------------------------
@torch.no_grad()
def attention_entropy(model: TinyTransformer, tokens: torch.Tensor) -> np.ndarray:
    """Mean entropy (in nats) of every block's attention rows, averaged over heads and queries.

    Shape ``(n_layers,)``.  A query at position t that spreads its attention evenly over its
    t + 1 visible keys has entropy ln(t + 1); one that looks at a single key has entropy 0.
    """
    x = model.embed(tokens)
    entropies = []
    for block in model.blocks:
        weights = block.attn.weights(x if block.norm == "post" else block.ln1(x))
        entropies.append(float(-(weights * weights.clamp_min(1e-30).log()).sum(-1).mean()))
        x = block(x)
    return np.array(entropies)


@dataclass
class EarlySteps:
    """What :func:`early_steps` records for one run, one row per step (after the step)."""

    losses: np.ndarray
    """Training loss of each step, ``(steps,)``."""
    entropy: np.ndarray
    """:func:`attention_entropy` on a fixed probe batch, ``(steps + 1, n_layers)`` (row 0: init)."""
    logit_change: np.ndarray
    """RMS change of the output logits on the probe batch caused by each step, ``(steps,)``."""
    grad_norm: np.ndarray
    """Norm of the whole gradient of each step, ``(steps,)``."""


def early_steps(norm: str, *, lr: float, seed: int = 0, steps: int = 20, warmup_steps: int = 0,
                setup: TrainingSetup | None = None,
                tasks: tuple[ReversalTask, ReversalTask] | None = None) -> EarlySteps:
    """Train ``steps`` steps like :func:`train_variant` and record each step's effect.

    After every step: the attention entropy of each block, how much the output logits on a
    fixed probe batch (64 held-out sequences) moved, and the gradient norm of that step.

    Raises:
        TypeError/ValueError: for a bad ``norm``, ``steps`` or ``lr``.
    """
    _check_norm(norm)
    check_int("steps", steps, minimum=1)
    setup = TrainingSetup() if setup is None else setup
    train_task, test_task = setup.tasks() if tasks is None else tasks
    model = setup.model(norm, seed)
    probe = test_task.tokens[:64]
    record: dict[str, list] = {"entropy": [], "change": [], "grad": []}
    with single_thread():
        with torch.no_grad():
            previous = [model(probe)]
        record["entropy"].append(attention_entropy(model, probe))

        def on_step(step: int, m: nn.Module) -> None:
            grads = [p.grad for p in m.parameters() if p.grad is not None]
            record["grad"].append(float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads))))
            with torch.no_grad():
                logits = m(probe)
            record["change"].append(float((logits - previous[0]).pow(2).mean().sqrt()))
            previous[0] = logits
            record["entropy"].append(attention_entropy(m, probe))

        epochs = max(1, math.ceil(steps * setup.batch_size / train_task.tokens.shape[0]))
        run = train(model, train_task.tokens, train_task.targets, lr=lr, epochs=epochs,
                    batch_size=setup.batch_size, optimizer="adam", warmup_steps=warmup_steps,
                    max_steps=steps, loss_fn=sequence_loss, on_step=on_step, seed=seed, progress=False)
    return EarlySteps(run.losses, np.stack(record["entropy"]), np.array(record["change"]),
                      np.array(record["grad"]))


# ---------------------------------------------------------------------------------------
# the stability study: a learning-rate sweep, several seeds, with and without warm-up
# ---------------------------------------------------------------------------------------
LEARNED_SEQUENCE_ACCURACY = 0.5
"""A run *learned* the task if its loss stayed finite and it reverses at least half of the
held-out sequences without a mistake (guessing gets 10⁻⁶ of them)."""


def run_sweep(
    norms: tuple[str, ...] = NORMS,
    lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2),
    warmups: tuple[int, ...] = (0, 30),
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4),
    setup: TrainingSetup | None = None,
) -> dict[RunKey, RunResult]:
    """Every combination of the settings, each variant's runs trained as one batched model.

    The same runs as :func:`run_grid` (keyed ``(norm, lr, warmup_steps, seed)``), computed
    with :func:`train_batched`.
    """
    setup, tasks = _grid_setup(norms, lrs, warmups, seeds, setup)
    keys = [(lr, w, s) for lr in lrs for w in warmups for s in seeds]
    grid: dict[RunKey, RunResult] = {}
    for norm in norms:
        results = train_batched(norm, lrs=[k[0] for k in keys], warmups=[k[1] for k in keys],
                                seeds=[k[2] for k in keys], setup=setup, tasks=tasks)
        for (lr, w, s), result in zip(keys, results):
            result.extra.pop("model", None)  # keep the grid light
            grid[(norm, lr, w, s)] = result
    return grid


def learned(run: RunResult, threshold: float = LEARNED_SEQUENCE_ACCURACY) -> bool:
    """Whether ``run`` learned the task: finite losses and sequence accuracy >= ``threshold``."""
    return bool(np.isfinite(run.losses).all() and run.sequence_accuracy >= threshold)


def runs_of(grid: Mapping[RunKey, RunResult], norm: str, lr: float, warmup: int) -> list[RunResult]:
    """The runs of one grid cell ``(norm, lr, warmup)`` (all seeds), in seed order."""
    return [grid[k] for k in sorted(grid) if k[:3] == (norm, lr, warmup)]


def residual_band(runs: Sequence[RunResult], when: str) -> SeedBand | None:
    """The residual-stream norm per depth over seeds, ``"init"`` (every run) or ``"final"``
    (only the runs that learned: the others' final norms describe no trained model);
    ``None`` if no run qualifies.

    Raises:
        ValueError: for a ``when`` other than ``"init"`` or ``"final"``.
    """
    check_choice("when", when, ("init", "final"))
    kept = runs if when == "init" else [r for r in runs if learned(r)]
    if not kept:
        return None
    return seed_band([r.residual_init if when == "init" else r.residual_final for r in kept])


@dataclass(frozen=True)
class LossBand:
    """The moving-average training loss of several seeds (:func:`loss_band`)."""

    steps: np.ndarray
    """The step at the centre of each moving-average window."""
    low: np.ndarray
    """Minimum over seeds (non-finite losses ignored)."""
    median: np.ndarray
    """Median over seeds."""
    high: np.ndarray
    """Maximum over seeds."""


def loss_band(runs: Sequence[RunResult], smooth: int = 5) -> LossBand:
    """Min, median and max over ``runs`` of their ``smooth``-step moving-average loss.

    Raises:
        ValueError: for no runs, or ``smooth`` < 1 or longer than the runs.
    """
    if not runs:
        raise ValueError("runs must hold at least one RunResult, got none")
    smooth = check_int("smooth", smooth, minimum=1, maximum=min(len(r.losses) for r in runs))
    losses = np.stack([r.losses for r in runs])
    losses = np.where(np.isfinite(losses), losses, np.nan)
    kernel = np.ones(smooth) / smooth
    smoothed = np.stack([np.convolve(row, kernel, mode="valid") for row in losses])
    with np.errstate(all="ignore"):
        low, mid, high = np.nanmin(smoothed, 0), np.nanmedian(smoothed, 0), np.nanmax(smoothed, 0)
    return LossBand(np.arange(smoothed.shape[1]) + smooth // 2, low, mid, high)


@dataclass(frozen=True)
class CellSummary:
    """What the runs of one grid cell achieved, over seeds (:func:`cell_summary`)."""

    seeds: int
    """The number of runs (seeds)."""
    digit_accuracy: float
    """Median over seeds of the digit accuracy (a diverged run counts 0)."""
    sequence_accuracy: float
    """Median over seeds of the whole-sequence accuracy (a diverged run counts 0)."""
    learned: int
    """How many runs learned the task (:func:`learned`)."""
    residual_init: np.ndarray
    """Median over seeds of the residual-stream norm per depth at initialization."""
    residual_final: np.ndarray
    """Median over the runs that learned of the residual-stream norm after training (``nan``
    if none learned: the others' final norms say nothing about a trained model)."""


def cell_summary(runs: Sequence[RunResult]) -> CellSummary:
    """Medians over seeds of the accuracies of ``runs``, and how many learned.

    Raises:
        ValueError: for no runs.
    """
    if not runs:
        raise ValueError("runs must hold at least one RunResult, got none")
    init = residual_band(runs, "init").median  # type: ignore[union-attr]
    final = residual_band(runs, "final")
    return CellSummary(len(runs), float(np.median([np.nan_to_num(r.digit_accuracy) for r in runs])),
                       float(np.median([np.nan_to_num(r.sequence_accuracy) for r in runs])),
                       sum(learned(r) for r in runs), init,
                       final.median if final is not None else np.full_like(init, np.nan))


def diverged(run: RunResult, factor: float = 2.0) -> bool:
    """Whether ``run``'s loss blew up: ``nan``, or a final loss above ``factor`` × ln 10
    (worse than guessing, which a collapsed run sits at)."""
    if not np.isfinite(run.losses).all():
        return True
    return bool(np.mean(run.losses[-10:]) > factor * math.log(N_DIGITS))


def stability_table(grid: dict[RunKey, RunResult], threshold: float = LEARNED_SEQUENCE_ACCURACY
                    ) -> dict[tuple[str, int], dict[float, int]]:
    """``{(norm, warmup): {lr: number of seeds that learned}}`` for every cell of ``grid``."""
    table: dict[tuple[str, int], dict[float, int]] = {}
    for (norm, lr, warmup, _), run in sorted(grid.items()):
        cell = table.setdefault((norm, warmup), {})
        cell[lr] = cell.get(lr, 0) + int(learned(run, threshold))
    return table


def largest_stable_lr(counts: dict[float, int], n_seeds: int, needed: int | None = None) -> float | None:
    """The largest learning rate at which at least ``needed`` (default: all) seeds learned.

    Raises:
        ValueError: if ``needed`` is not between 1 and ``n_seeds``.
    """
    check_int("n_seeds", n_seeds, minimum=1)
    needed = n_seeds if needed is None else needed
    check_int("needed", needed, minimum=1)
    if needed > n_seeds:
        raise ValueError(f"needed must be <= n_seeds={n_seeds}, got {needed}")
    stable = [lr for lr, count in counts.items() if count >= needed]
    return max(stable) if stable else None
