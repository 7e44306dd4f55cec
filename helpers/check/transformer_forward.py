"""Exercises of notebook 06 that go past one block: a derivation, a debugging exercise, questions.

- ``predicted_stream_norms``: the norm of the residual stream after each sublayer, predicted
  from the embeddings' norm and the norm of what each sublayer adds, for outputs uncorrelated
  with the stream (squared norms add: ‖x + f‖² = ‖x‖² + ‖f‖² + 2⟨x, f⟩, and the cross term
  averages out). The notebook then checks the prediction on measured streams.
- ``pre_ln_forward``: the fix of a given buggy forward of a pre-LN ``TinyTransformer``; the
  check names which of its bugs (the stream itself normalized, ``ln_f`` missing) remains.
- Questions ``q06_stream_doubling``, ``q06_without_ln_f`` and ``q06_norm_first``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from helpers import transformer
from helpers.check.feedback import Exercise, Question, compare
from helpers.check.inputs import call

__all__ = ["pre_ln_forward", "predicted_stream_norms", "q06_norm_first", "q06_stream_doubling",
           "q06_without_ln_f"]

F64 = torch.float64


# ---------------------------------------------------------------------------------------
# the predicted growth of the residual stream
# ---------------------------------------------------------------------------------------
def _predicted(norm0: float, branch_norms: Any) -> torch.Tensor:
    """The course's answer: sqrt(norm0² + b₁² + … + b_k²) for k = 0 … L (L + 1 values)."""
    if isinstance(norm0, bool) or not isinstance(norm0, (int, float, np.floating, torch.Tensor)):
        raise TypeError(f"norm0 must be a number, got {type(norm0).__name__}")
    start = float(norm0)
    if not np.isfinite(start) or start < 0:
        raise ValueError(f"norm0 must be a finite number ≥ 0, got {start}")
    try:
        branches = torch.as_tensor(branch_norms, dtype=F64).detach()
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"branch_norms must be a 1-D tensor, array or list of numbers, got "
                        f"{type(branch_norms).__name__}") from error
    if branches.ndim != 1:
        raise ValueError(f"branch_norms must be 1-D (one norm per sublayer), got shape {tuple(branches.shape)}")
    if not bool(torch.isfinite(branches).all()) or bool((branches < 0).any()):
        raise ValueError("branch_norms must hold finite numbers ≥ 0")
    added = torch.cat([branches.new_zeros(1), torch.cumsum(branches ** 2, 0)])
    return torch.sqrt(start ** 2 + added)


def _as_vector(answer: object) -> object:
    """A list, NumPy array or tensor answer as a float64 tensor; anything else as it is."""
    if isinstance(answer, (list, tuple, np.ndarray)):
        try:
            return torch.as_tensor(np.asarray(answer, dtype=np.float64))
        except (TypeError, ValueError):
            return answer
    if isinstance(answer, torch.Tensor):
        return answer.detach().to(F64)
    return answer


def _diagnose_predicted(student: Callable[..., Any]) -> str | None:
    norm0 = 11.3
    branches = torch.tensor([2.5, 3.9, 0.6, 4.0, 6.5, 3.0], dtype=F64)
    answer, changed = call(student, (norm0, branches), names=("norm0", "branch_norms"),
                           hint="build a new tensor instead of writing into the one you were given")
    if changed:
        return changed
    answer = _as_vector(answer)
    expected = _predicted(norm0, branches)
    n = len(branches)
    if isinstance(answer, torch.Tensor) and tuple(answer.shape) == (n,):
        if not bool((answer - expected[1:]).abs().gt(1e-4).any()):
            return (f"the first entry is missing: return {n + 1} values, the stream after the embeddings "
                    f"(norm0 itself), then after each of the {n} sublayers.")
    squares = torch.cat([branches.new_zeros(1), torch.cumsum(branches ** 2, 0)])
    sums = torch.cat([branches.new_zeros(1), torch.cumsum(branches, 0)])
    steps = torch.arange(n + 1, dtype=F64)
    mistakes = [
        ("the norms add up, norm0 + b₁ + b₂ + …: that holds only if every output points the same way as the "
         "stream. Outputs uncorrelated with the stream add like the sides of a right angle: expand ‖x + f‖².",
         norm0 + sums),
        ("the embeddings' norm is added to the rest, norm0 + sqrt(b₁² + …): the stream's own norm enters "
         "squared too, next to the branches'.", norm0 + squares.sqrt()),
        ("these are the squared norms: take the square root at the end.", norm0 ** 2 + squares),
        ("the branch norms are summed before squaring, (b₁ + b₂ + …)²: that assumes the sublayers' outputs "
         "all point the same way; uncorrelated outputs add their squares, b₁² + b₂² + ….",
         (norm0 ** 2 + sums ** 2).sqrt()),
        ("the branch norms are added without squaring them, sqrt(norm0² + b₁ + b₂ + …): every vector "
         "enters with its squared norm.", (norm0 ** 2 + sums).sqrt()),
        ("the embeddings are left out: the stream starts at norm0, not at 0.", squares.sqrt()),
        ("one average branch norm for every sublayer: the k-th sublayer adds its own branch_norms[k]².",
         (norm0 ** 2 + steps * branches.mean() ** 2).sqrt()),
        ("one average branch norm for every sublayer: the k-th sublayer adds its own branch_norms[k]².",
         (norm0 ** 2 + steps * branches.pow(2).mean()).sqrt()),
    ]
    problem = compare("the prediction", answer, expected, mistakes, atol=1e-4)
    if problem is not None:
        return problem
    other = _as_vector(student(3.0, torch.tensor([4.0, 0.0, 12.0], dtype=F64)))
    return compare("the prediction for norm0 = 3, branch_norms = [4, 0, 12]", other,
                   torch.tensor([3.0, 5.0, 5.0, 13.0], dtype=F64), {}, atol=1e-4)


predicted_stream_norms = Exercise(
    name="predicted_stream_norms",
    checked="sqrt(norm0² + b₁² + … + b_k²) after every sublayer: uncorrelated outputs add their squared norms.",
    reference=_predicted,
    diagnose=_diagnose_predicted,
)


# ---------------------------------------------------------------------------------------
# debugging a pre-LN forward
# ---------------------------------------------------------------------------------------
def _reference_forward(model: Any, tokens: torch.Tensor) -> torch.Tensor:
    """A pre-LN TinyTransformer's forward from its parts: the same logits as ``model(tokens)``."""
    for part in ("embed", "blocks", "ln_f", "head"):
        if not hasattr(model, part):
            raise TypeError(f"model must be a TinyTransformer (it has no {part!r}), got {type(model).__name__}")
    if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.long or tokens.ndim != 2:
        raise TypeError("tokens must be a 2-D torch.long tensor [sequences, positions]")
    x = model.embed(tokens)
    for block in model.blocks:
        x = x + block.attn(block.ln1(x))
        x = x + block.ffn(block.ln2(x))
    return model.head(model.ln_f(x))


def _variant(model: Any, tokens: torch.Tensor, *, stream1: bool = False, stream2: bool = False,
             ln_f: str = "end", post: bool = False) -> torch.Tensor:
    """The forward with a bug: ``stream1``/``stream2`` normalize the stream itself before the
    attention/FFN sublayer (``x = ln(x); x = x + sublayer(x)``); ``ln_f`` is "end", "none",
    "every" (after every block) or "first" (on the embeddings); ``post`` wires the blocks post-LN."""
    x = model.embed(tokens)
    if ln_f == "first":
        x = model.ln_f(x)
    for block in model.blocks:
        if post:
            x = block.ln1(x + block.attn(x))
            x = block.ln2(x + block.ffn(x))
        else:
            x = block.ln1(x) if stream1 else x
            x = x + block.attn(x if stream1 else block.ln1(x))
            x = block.ln2(x) if stream2 else x
            x = x + block.ffn(x if stream2 else block.ln2(x))
        if ln_f == "every":
            x = model.ln_f(x)
    return model.head(model.ln_f(x) if ln_f == "end" else x)


def _model(seed: int) -> transformer.TinyTransformer:
    """A float64 pre-LN TinyTransformer, 2 blocks of width 8, with random biases and LayerNorm γ, β
    (so that ln1, ln2 and ln_f all differ), made without touching the global random state."""
    with torch.random.fork_rng(devices=[]):  # the modules' default initialization draws from it
        model = transformer.TinyTransformer("pre", n_layers=2, d_model=8, n_heads=2, seed=seed).double()
    generator = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.LayerNorm):
                module.weight.copy_(1 + 0.5 * torch.randn(module.weight.shape, generator=generator, dtype=F64))
                module.bias.copy_(0.5 * torch.randn(module.bias.shape, generator=generator, dtype=F64))
            elif isinstance(module, nn.Linear):
                module.bias.copy_(0.3 * torch.randn(module.bias.shape, generator=generator, dtype=F64))
    return model.eval()


#: The buggy forward of the notebook, both bugs left.
_UNCHANGED = ("this is the buggy forward unchanged: both of its bugs are still there (look at what the attention's "
              "skip connection carries, and at what the head reads).")
_STREAM_LEFT = ("ln_f is fixed, but one bug remains: x = block.ln1(x) still replaces the stream by its normalized "
                "copy, so the attention's skip connection carries ln1(x) instead of x and every block "
                "re-normalizes the stream (a post-LN habit). Normalize only the sublayer's input: "
                "x = x + block.attn(block.ln1(x)).")
_LN_F_LEFT = ("the blocks are fixed, but one bug remains: the head reads the stream as it is; a pre-LN model "
              "applies model.ln_f to the stream once, after the last block, right before model.head.")


def _forward_mistakes(model: Any, tokens: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    return [
        (_UNCHANGED, _variant(model, tokens, stream1=True, ln_f="none")),
        (_STREAM_LEFT, _variant(model, tokens, stream1=True)),
        (_LN_F_LEFT, _variant(model, tokens, ln_f="none")),
        ("both sublayers now normalize the stream itself (x = block.ln2(x) before the FFN too): the skip "
         "connections must carry the stream as it is, x = x + block.ffn(block.ln2(x)).",
         _variant(model, tokens, stream1=True, stream2=True)),
        ("both sublayers normalize the stream itself (x = ln(x) before each), and ln_f is still missing.",
         _variant(model, tokens, stream1=True, stream2=True, ln_f="none")),
        ("the FFN's skip connection carries the normalized stream (x = block.ln2(x)): the skip connections "
         "must carry the stream as it is, x = x + block.ffn(block.ln2(x)).",
         _variant(model, tokens, stream2=True)),
        ("ln_f is applied after every block: that normalizes the stream itself, as post-LN does; apply it "
         "once, after the last block, before the head.", _variant(model, tokens, ln_f="every")),
        ("ln_f is applied after every block, and x = block.ln1(x) still normalizes the stream: apply ln_f "
         "once, before the head, and normalize only the sublayer's input.",
         _variant(model, tokens, stream1=True, ln_f="every")),
        ("ln_f is applied to the embeddings, before the blocks: it belongs after the last block, right "
         "before model.head.", _variant(model, tokens, ln_f="first")),
        ("the blocks are wired post-LN, ln1(x + attn(x)): a pre-LN block normalizes only the sublayer's "
         "input, x = x + block.attn(block.ln1(x)).", _variant(model, tokens, post=True)),
    ]


class _OwnForwardCalled(Exception):
    """Raised when the student's function calls the model's or a block's own forward."""


def _refuse(what: str) -> Callable[..., Any]:
    def forward(*args: Any, **kwargs: Any) -> Any:
        raise _OwnForwardCalled(what)
    return forward


def _diagnose_forward(student: Callable[..., Any]) -> str | None:
    model = _model(seed=3)
    tokens = transformer.reversal_task(3, length=4, seed=5).tokens
    with torch.no_grad():
        expected = model(tokens)
        mistakes = _forward_mistakes(model, tokens)
    model.forward = _refuse("model(tokens)")  # type: ignore[method-assign]
    for block in model.blocks:
        block.forward = _refuse("block(x)")
    try:
        with torch.no_grad():
            answer, changed = call(student, (model, tokens), names=("model", "tokens"))
    except _OwnForwardCalled as called:
        return (f"your function calls {called}, the model's own forward: the exercise is to write that "
                "forward from the parts (model.embed, each block's ln1, attn, ln2, ffn, model.ln_f, model.head).")
    if changed:
        return changed
    if isinstance(answer, torch.Tensor) and answer.shape[:-1] == expected.shape[:-1] \
            and answer.shape[-1] == model.head.in_features != expected.shape[-1]:
        return (f"the output has {answer.shape[-1]} features per position, the stream's width: return the "
                f"logits, model.head(…), of shape {tuple(expected.shape)}.")
    return compare("the logits", answer, expected, mistakes, atol=1e-8)


pre_ln_forward = Exercise(
    name="pre_ln_forward",
    checked="the same logits as the pre-LN model's own forward (ln1, ln2 and ln_f all different), from its parts.",
    reference=_reference_forward,
    diagnose=_diagnose_forward,
)


# ---------------------------------------------------------------------------------------
# concept questions
# ---------------------------------------------------------------------------------------
q06_stream_doubling = Question(
    name="q06_stream_doubling",
    answer=3 * 128 / 3.5 ** 2,
    why="the norm doubles when the squared norm is 4 × 128 = 512: 128 + k · 3.5² = 512 gives k = 384 / 12.25 ≈ 31 "
        "sublayers, about 16 blocks. Adding the norms themselves would have said 11.3 / 3.5 ≈ 3.",
    rel_tol=0.05,
)

q06_without_ln_f = Question(
    name="q06_without_ln_f",
    answer="c",
    why="larger, 1.7–1.8× (std 1.3–1.4 → 2.2–2.6 over five seeds): the head now reads the raw stream, whose norm "
        "has grown past √d_model through the blocks, instead of a normalized vector.",
    choices={
        "a": "the head reads the stream, not a normalized copy, and the pre-LN stream is larger than a "
             "LayerNorm output (section 1 measured it growing block after block): the logits grow.",
        "b": "the stream entering ln_f is not a LayerNorm output: its norm is larger than √d_model "
             "(section 1), so removing ln_f changes what the head reads. Measure it.",
        "c": "",
    },
)

q06_norm_first = Question(
    name="q06_norm_first",
    answer="a",
    why="norm_first=True computes x + sa(norm1(x)), then x + ff(norm2(x)): our \"pre\" (the final LN is added "
        "by nn.TransformerEncoder(norm=…)); the default computes norm1(x + sa(x)): our \"post\", the lecture's "
        "§6.3 formula. Section 1 checked both to within 1e-5.",
    choices={
        "a": "",
        "b": "the other way round: norm_first=True puts the LayerNorm first, on the sublayer's input, which is "
             "pre-LN; section 1 compared both layers with our blocks.",
        "c": "norm_first=False is not pre-LN: it normalizes the sum x + sublayer(x), the stream itself "
             "(post-LN); section 1 compared both layers with our blocks.",
    },
)
