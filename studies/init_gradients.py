"""Study ``init_gradients`` (notebook 06 §3): how large each block's gradient is at initialization.

Xiong et al. (2020), *On Layer Normalization in the Transformer Architecture*, predict that at
initialization post-LN's gradients near the output are larger than pre-LN's, with a gap that
grows with depth.  For every placement (post-LN, pre-LN, none), depth (2 to 16 blocks) and
initialization seed, the study builds :class:`helpers.transformer.TinyTransformer` and measures
the gradient norm ‖∇W₂‖ of each block's second FFN matrix on one fixed batch of reversal
examples (:func:`helpers.transformer.gradients_across_depth`).  Stored:

* ``w2_grad_norms``: ``[norms, depths, seeds, max(depths)]``, NaN beyond a model's last block;
* ``norms``, ``depths``, ``seeds``: the axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

import studies
from helpers.transformer import gradients_across_depth


@dataclass(frozen=True)
class Config:
    """The models and the batch the gradients are measured on."""

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    depths: tuple[int, ...] = (2, 3, 4, 8, 16)
    norms: tuple[str, ...] = ("post", "pre", "none")
    n_examples: int = 128
    length: int = 8


FULL = Config()
QUICK = Config(seeds=(0, 1), depths=(2, 3), n_examples=16, length=4)


def run(config: Config, device: str = "cpu") -> dict[str, np.ndarray]:
    """Measure ‖∇W₂‖ per block for every placement, depth and seed (on the CPU: one batch each)."""
    grads = np.full((len(config.norms), len(config.depths), len(config.seeds), max(config.depths)), np.nan)
    cells = [(i, norm, j, depth) for i, norm in enumerate(config.norms) for j, depth in enumerate(config.depths)]
    for i, norm, j, depth in tqdm(cells, desc="placements x depths"):
        measured = gradients_across_depth(depths=(depth,), norms=(norm,), seeds=config.seeds,
                                          n_examples=config.n_examples, length=config.length)
        grads[i, j, :, :depth] = measured[(norm, depth)]
    return {"w2_grad_norms": grads, "norms": np.array(config.norms), "depths": np.array(config.depths),
            "seeds": np.array(config.seeds)}


def by_depth(results: studies.Results) -> dict[tuple[str, int], np.ndarray]:
    """``{(norm, depth): array [seeds, depth]}``, the layout of ``gradients_across_depth``."""
    grads = results["w2_grad_norms"]
    return {(str(norm), int(depth)): grads[i, j, :, :depth]
            for i, norm in enumerate(results["norms"]) for j, depth in enumerate(results["depths"])}


def depth_slopes(results: studies.Results) -> np.ndarray:
    """Per seed, k in post/pre ratio at the last block ∝ blocksᵏ (a least-squares fit in log-log)."""
    grads, depths = by_depth(results), [int(d) for d in results["depths"]]
    ratio = np.stack([grads[("post", d)][:, -1] / grads[("pre", d)][:, -1] for d in depths], axis=1)
    return np.array([np.polyfit(np.log(depths), np.log(row), 1)[0] for row in ratio])


def claims(results: studies.Results) -> list[studies.Claim]:
    """The claims notebook 06 makes about the study (section 3), over five seeds."""
    claim = studies.Claim
    grads = by_depth(results)
    g = {n: grads[(n, 3)] for n in ("post", "pre", "none")}  # [seeds, blocks], the 3-block model
    slope = depth_slopes(results)
    found = [
        claim("3 blocks: post-LN > 1.2 × pre-LN, every block and seed", (g["post"] / g["pre"]).min(), 1.2, None,
              fmt=".1f"),
        claim("3 blocks: no LN > 2 × post-LN, every block and seed", (g["none"] / g["post"]).min(), 2, None,
              fmt=".1f"),
        claim("3 blocks: post-LN does not grow to the output", (g["post"][:, -1] / g["post"][:, 0]).max(), None,
              1.3, fmt=".1f"),
        claim("post/pre gap grows roughly like √blocks (median k)", np.median(slope), 0.3, 0.7, fmt=".1f"),
        claim("... and grows with depth on every seed", slope.min(), 0.2, None, fmt=".1f"),
    ]
    for d in (8, 16):
        found.append(claim(f"{d} blocks: post-LN grows towards the output, every seed",
                           np.min(grads[("post", d)][:, -1] / grads[("post", d)][:, 0]), 1.2, None, fmt=".1f"))
        found.append(claim(f"{d} blocks: pre-LN does not, every seed",
                           np.max(grads[("pre", d)][:, -1] / grads[("pre", d)][:, 0]), None, 1.0, fmt=".1f"))
    return found


STUDY = studies.Study(
    name="init_gradients",
    title="Tiny Transformers at initialization (post-LN, pre-LN, none; 2-16 blocks; 5 seeds): "
          "the FFN W2 gradient norm of every block",
    notebook="06_layernorm_placement_transformer",
    full=FULL, quick=QUICK, run=run, claims=claims, module=__name__,
)
