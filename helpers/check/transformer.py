"""Exercises of notebook 06 (Where LayerNorm sits in a Transformer).

- ``pre_ln_block``: one pre-LN block (GPT-2) from its four parts, ``x + attn(ln1(x))`` then
  ``+ ffn(ln2(·))``;
- ``post_ln_block``: one post-LN block (the original Transformer), ``ln1(x + attn(x))`` then
  ``ln2(· + ffn(·))``;
- ``stream_norm``: the mean L2 norm of one token's residual-stream vector.

The blocks are checked against the course's :class:`helpers.transformer.Block` with the
same sub-modules. Those sub-modules get random weights (LayerNorm γ and β included, so
``ln1`` and ``ln2`` differ) and the input has a mean and a scale far from a LayerNorm
output's, so every typical mistake below gives an output of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from helpers import transformer
from helpers.check.feedback import Exercise, compare
from helpers.check.inputs import call

__all__ = ["post_ln_block", "pre_ln_block", "stream_norm"]

Part = Callable[[torch.Tensor], torch.Tensor]


def _block(norm: str, seed: int, d_model: int = 8, n_heads: int = 2) -> transformer.Block:
    """A float64 ``Block`` with random weights, made without touching the global random state."""
    with torch.random.fork_rng(devices=[]):
        block = transformer.Block(d_model, n_heads, norm).double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in block.modules():
            if isinstance(module, nn.Linear):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator, dtype=torch.float64)
                                    / module.in_features ** 0.5)
                module.bias.copy_(0.3 * torch.randn(module.bias.shape, generator=generator, dtype=torch.float64))
            elif isinstance(module, nn.LayerNorm):
                module.weight.copy_(1 + 0.5 * torch.randn(module.weight.shape, generator=generator,
                                                          dtype=torch.float64))
                module.bias.copy_(0.5 * torch.randn(module.bias.shape, generator=generator, dtype=torch.float64))
    return block.eval()


def _stream(seed: int) -> torch.Tensor:
    """A residual stream [2 sequences, 5 positions, 8 features], mean 1 and std 2 (not LN-like)."""
    generator = torch.Generator().manual_seed(seed)
    return 1 + 2 * torch.randn(2, 5, 8, generator=generator, dtype=torch.float64)


def _pre(x: torch.Tensor, l1: Part, a: Part, l2: Part, f: Part) -> torch.Tensor:
    h = x + a(l1(x))
    return h + f(l2(h))


def _post(x: torch.Tensor, l1: Part, a: Part, l2: Part, f: Part) -> torch.Tensor:
    h = l1(x + a(x))
    return l2(h + f(h))


def _pre_ln_mistakes(x: torch.Tensor, l1: Part, a: Part, l2: Part, f: Part) -> dict[str, torch.Tensor]:
    """Message -> the output that mistake gives, for the pre-LN block."""
    n1 = l1(x)
    skip_normalized = n1 + a(n1)
    n2 = l2(skip_normalized)
    return {
        "that is post-LN: the LayerNorm is applied after the residual add, ln1(x + attn(x)). "
        "Pre-LN normalizes only the sublayer's input: x + attn(ln1(x)).": _post(x, l1, a, l2, f),
        "no residual connections: each sublayer's output must be added to its input, "
        "x = x + attn(ln1(x)), then x + ffn(ln2(x)).": f(l2(a(l1(x)))),
        "the attention sublayer has no residual connection: x = x + attn(ln1(x)), not attn(ln1(x)).":
            (lambda h: h + f(l2(h)))(a(l1(x))),
        "the FFN sublayer has no residual connection: return x + ffn(ln2(x)), not ffn(ln2(x)).":
            f(l2(x + a(l1(x)))),
        "the skip connection adds the normalized input, x̂ + attn(x̂) with x̂ = ln1(x): it must add "
        "the un-normalized stream, x + attn(ln1(x)) (same for the FFN).": n2 + f(n2),
        "the attention's skip connection adds ln1(x) instead of x: x + attn(ln1(x)).":
            (lambda h: h + f(l2(h)))(skip_normalized),
        "the FFN's skip connection adds ln2(x) instead of x: x + ffn(ln2(x)).":
            (lambda h: l2(h) + f(l2(h)))(x + a(l1(x))),
        "the sublayers are in the wrong order: attention comes first, then the FFN.":
            (lambda h: h + a(l1(h)))(x + f(l2(x))),
        "the sublayers are in the wrong order (attention first, then the FFN), and each "
        "LayerNorm belongs to its own sublayer (ln1 before attn, ln2 before ffn).":
            (lambda h: h + a(l2(h)))(x + f(l1(x))),
        "ln1 is used twice: the FFN's input goes through ln2, x + ffn(ln2(x)).":
            (lambda h: h + f(l1(h)))(x + a(l1(x))),
        "ln2 is used twice: the attention's input goes through ln1, x + attn(ln1(x)).":
            (lambda h: h + f(l2(h)))(x + a(l2(x))),
        "the LayerNorm is applied to the sublayer's output, x + ln1(attn(x)): pre-LN normalizes "
        "its input, x + attn(ln1(x)).": (lambda h: h + l2(f(h)))(x + l1(a(x))),
        "the FFN sublayer is missing: after x = x + attn(ln1(x)), return x + ffn(ln2(x)).": x + a(l1(x)),
        "the attention sublayer is missing: first x = x + attn(ln1(x)), then x + ffn(ln2(x)).": x + f(l2(x)),
    }


def _post_ln_mistakes(x: torch.Tensor, l1: Part, a: Part, l2: Part, f: Part) -> dict[str, torch.Tensor]:
    """Message -> the output that mistake gives, for the post-LN block."""
    n1 = l1(x)
    n2 = l2(n1 + a(n1))
    return {
        "that is pre-LN, x + attn(ln1(x)): post-LN normalizes the residual sum itself, "
        "x = ln1(x + attn(x)), then ln2(x + ffn(x)).": _pre(x, l1, a, l2, f),
        "no residual connections: the LayerNorm normalizes the sum, ln1(x + attn(x)), "
        "not ln1(attn(x)) (same for the FFN).": l2(f(l1(a(x)))),
        "the attention sublayer has no residual connection: x = ln1(x + attn(x)), not ln1(attn(x)).":
            (lambda h: l2(h + f(h)))(l1(a(x))),
        "the FFN sublayer has no residual connection: return ln2(x + ffn(x)), not ln2(ffn(x)).":
            l2(f(l1(x + a(x)))),
        "the LayerNorm is applied before the sublayer, x̂ + attn(x̂) with x̂ = ln1(x): post-LN "
        "applies it after the residual add, ln1(x + attn(x)).": n2 + f(n2),
        "the LayerNorm is applied to the sublayer's output before the add, x + ln1(attn(x)): "
        "post-LN normalizes the sum, ln1(x + attn(x)).": (lambda h: h + l2(f(h)))(x + l1(a(x))),
        "the sublayers are in the wrong order: attention comes first, then the FFN.":
            (lambda h: l1(h + a(h)))(l2(x + f(x))),
        "the sublayers are in the wrong order (attention first, then the FFN), and each "
        "LayerNorm belongs to its own sublayer (ln1 after attn, ln2 after ffn).":
            (lambda h: l2(h + a(h)))(l1(x + f(x))),
        "ln1 is used twice: the FFN's sum goes through ln2, ln2(x + ffn(x)).":
            (lambda h: l1(h + f(h)))(l1(x + a(x))),
        "ln2 is used twice: the attention's sum goes through ln1, ln1(x + attn(x)).":
            (lambda h: l2(h + f(h)))(l2(x + a(x))),
        "the second LayerNorm is missing: return ln2(x + ffn(x)), not x + ffn(x).":
            (lambda h: h + f(h))(l1(x + a(x))),
        "the first LayerNorm is missing: x = ln1(x + attn(x)) before the FFN.":
            (lambda h: l2(h + f(h)))(x + a(x)),
        "the FFN sublayer is missing: after x = ln1(x + attn(x)), return ln2(x + ffn(x)).": l1(x + a(x)),
        "the attention sublayer is missing: first x = ln1(x + attn(x)), then ln2(x + ffn(x)).":
            l2(x + f(x)),
    }


#: How to leave the caller's residual stream alone.
_STREAM_HINT = "write x = x + attn(…), not x += attn(…), so that the caller's residual stream is left as it was"


def _diagnose_block(student: Callable[..., Any], norm: str,
                    mistakes: Callable[..., dict[str, torch.Tensor]]) -> str | None:
    block = _block(norm, seed=1)
    x = _stream(seed=2)
    parts = (block.ln1, block.attn, block.ln2, block.ffn)
    with torch.no_grad():
        expected = block(x)
        wrong = mistakes(x, *parts)
        answer, changed = call(student, (x, *parts), names=("x",), hint=_STREAM_HINT)
    if changed:
        return changed
    problem = compare("the output", answer, expected, wrong, atol=1e-8)
    if problem is not None:
        return problem
    if norm == "pre":  # the "none" variant: the same block with nn.Identity for both LayerNorms
        plain = _block("none", seed=3)
        where = "with nn.Identity for ln1 and ln2 (the \"none\" variant)"
        with torch.no_grad():
            try:
                answer, changed = call(student, (x, plain.ln1, plain.attn, plain.ln2, plain.ffn), names=("x",),
                                       hint=_STREAM_HINT + "; nn.Identity returns x itself, so h = ln1(x); h += … "
                                       "changes x")
            except Exception as error:  # e.g. ln1.weight: an Identity has none
                text = str(error).strip().splitlines()[0] if str(error).strip() else ""
                return (f"{where} your function raised {type(error).__name__}: {text}. "
                        "Call ln1(x) and ln2(x) as they are given.")[:300]
            if changed:
                return f"{where} {changed}"
            problem = compare("the output", answer, plain(x), {}, atol=1e-8)
        if problem is not None:
            return f"{where} {problem} Call ln1(x) and ln2(x) as they are given."
    return None


def _diagnose_pre_ln_block(student: Callable[..., Any]) -> str | None:
    return _diagnose_block(student, "pre", _pre_ln_mistakes)


def _diagnose_post_ln_block(student: Callable[..., Any]) -> str | None:
    return _diagnose_block(student, "post", _post_ln_mistakes)


pre_ln_block = Exercise(
    name="pre_ln_block",
    checked="matches the course's pre-LN Block (and its no-LN version) with the same ln1, attn, ln2, ffn.",
    reference=transformer.pre_ln_block,
    diagnose=_diagnose_pre_ln_block,
)

post_ln_block = Exercise(
    name="post_ln_block",
    checked="matches the course's post-LN Block with the same ln1, attn, ln2, ffn.",
    reference=transformer.post_ln_block,
    diagnose=_diagnose_post_ln_block,
)


# ---------------------------------------------------------------------------------------
# the residual stream's norm
# ---------------------------------------------------------------------------------------
def _norm_input() -> torch.Tensor:
    """[3 sequences, 5 positions, 8 features]: token vectors of different sizes, mean ≠ 0."""
    generator = torch.Generator().manual_seed(4)
    size = 0.5 + 2.5 * torch.rand(3, 5, 1, generator=generator, dtype=torch.float64)
    return 0.5 + size * torch.randn(3, 5, 8, generator=generator, dtype=torch.float64)


def _diagnose_stream_norm(student: Callable[..., Any]) -> str | None:
    x = _norm_input()
    answer, changed = call(student, (x,), hint="compute the norm without modifying x")
    if changed:
        return changed
    if isinstance(answer, torch.Tensor) and answer.numel() != 1:
        return (f"one number expected (the mean over every token), got a tensor of shape "
                f"{tuple(answer.shape)}: did you forget the .mean()?")
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        answer = torch.tensor(float(answer), dtype=torch.float64)
    elif hasattr(answer, "item") and getattr(answer, "size", 1) == 1 and not isinstance(answer, torch.Tensor):
        answer = torch.tensor(float(answer.item()), dtype=torch.float64)  # a NumPy scalar
    if isinstance(answer, torch.Tensor):
        answer = answer.detach().reshape(())
    expected = torch.tensor(transformer.stream_norm(x), dtype=torch.float64)
    squares = x.pow(2).sum(dim=-1)
    mistakes = {
        "the norm of the whole tensor, not one norm per token: x.norm(dim=-1), then the mean.": x.norm(),
        "norm over dim 1 (the positions) instead of the last dim (each token's d_model features).":
            x.norm(dim=1).mean(),
        "norm over dim 0 (the sequences) instead of the last dim (each token's d_model features).":
            x.norm(dim=0).mean(),
        "root mean square (divides by d_model inside the root): the L2 norm is the root of the "
        "plain sum of squares.": x.pow(2).mean(dim=-1).sqrt().mean(),
        "squared norm: take the square root of each token's sum of squares.": squares.mean(),
        "the root of the mean squared norm: average the norms themselves, x.norm(dim=-1).mean().":
            squares.mean().sqrt(),
        "standard deviation of each token's vector, not its norm (the norm does not subtract the mean).":
            x.std(dim=-1).mean(),
        "standard deviation (biased) of each token's vector, not its norm (the norm does not subtract "
        "the mean).": x.std(dim=-1, unbiased=False).mean(),
        "the norm of the mean vector: take each token's norm first, then average the norms.":
            x.mean(dim=(0, 1)).norm(),
        "L1 norm (sum of |x|): the stream's norm is the L2 norm, sqrt(sum of squares).":
            x.abs().sum(dim=-1).mean(),
    }
    problem = compare("the mean norm", answer, expected, mistakes, atol=1e-9)
    if problem is not None and problem.startswith("the mean norm differs"):
        problem = f"the mean norm is {answer.item():.4g}, expected {expected.item():.4g}."
    return problem


stream_norm = Exercise(
    name="stream_norm",
    checked="matches the mean L2 norm of each token's vector, x.norm(dim=-1).mean().",
    reference=transformer.stream_norm,
    diagnose=_diagnose_stream_norm,
)
