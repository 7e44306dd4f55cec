"""Loading GPT-2 small's LayerNorm parameters: the Hugging Face hub or the shipped snapshot.

Two sources give the same 50 arrays (named and measured in :mod:`helpers.gpt2`):

* ``"hub"``: ``transformers.GPT2Model.from_pretrained`` on ``openai-community/gpt2`` at a pinned
  revision, safetensors only, never remote code.  ``transformers`` is imported only when the
  hub is really used (the import alone costs seconds), and a short, bounded reachability probe
  of the hub runs first so that an offline machine fails in seconds, not minutes;
  ``HF_HUB_OFFLINE=1`` makes it fail at once.
* ``"snapshot"``: ``data/gpt2_layernorm.npz``, shipped with the course and SHA-256-verified.

``"auto"`` uses the hub when it is reachable and the snapshot otherwise, and says which one
it used (:func:`load_layernorm_params_with_source`).

``python -m helpers.gpt2_hub export PATH`` regenerates the snapshot from the hub.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from helpers.data import load_npz, sha256_of
from helpers.gpt2 import param_keys, validate_params
from helpers.validation import check_choice, check_positive

#: The Hugging Face model and the exact revision the course uses.
HUB_MODEL_ID = "openai-community/gpt2"
HUB_REVISION = "607a30d783dfa663caf39e06633721c8d4cfcd7e"
#: The host and port probed before any hub download.
HUB_HOST = "huggingface.co"
HUB_PORT = 443
#: Seconds the reachability probe may take (DNS lookup + TCP connect), one attempt.
PROBE_TIMEOUT_S = 3.0
#: Environment variables that switch the hub off (the Hugging Face convention).
OFFLINE_ENV_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")

SNAPSHOT_NAME = "gpt2_layernorm.npz"
SOURCES = ("auto", "hub", "snapshot")


class HubUnavailableError(RuntimeError):
    """The Hugging Face hub cannot be used (offline, switched off, or the download failed)."""


@dataclass(frozen=True)
class LoadedParams:
    """The 50 LayerNorm arrays and where they came from.

    Attributes:
        params: the arrays, keyed as in :func:`param_keys`.
        source: ``"hub"`` or ``"snapshot"``: where the numbers were read.
        reason: one sentence on why that source was used (e.g. why the hub was not).
    """

    params: dict[str, np.ndarray]
    source: str
    reason: str


def hub_offline_reason() -> str | None:
    """Why the hub is switched off by the environment (``HF_HUB_OFFLINE=1`` ...), or ``None``."""
    for var in OFFLINE_ENV_VARS:
        if os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}:
            return f"{var}={os.environ[var]} is set"
    return None


def probe_hub(host: str = HUB_HOST, port: int = HUB_PORT, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """One bounded attempt to open a TCP connection to the hub (DNS lookup included).

    The lookup and connect run in a daemon thread that is given ``timeout`` seconds in all,
    so a slow resolver cannot stall the caller.  No retries.

    Returns:
        ``None`` if the hub answered, else a short reason why it is unreachable.

    Raises:
        ValueError: if ``timeout`` is not a positive number.
    """
    timeout = check_positive("timeout", timeout)
    offline = hub_offline_reason()
    if offline is not None:
        return offline
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(None)
        except OSError as error:
            outcome.append(f"cannot connect to {host}:{port} ({type(error).__name__}: {error})")

    worker = threading.Thread(target=attempt, name="gpt2-hub-probe", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        return f"no answer from {host}:{port} within {timeout:g} s"
    return outcome[0]


def _require_hub(timeout: float) -> None:
    reason = probe_hub(timeout=timeout)
    if reason is not None:
        raise HubUnavailableError(
            f"the Hugging Face hub is not reachable: {reason}. "
            f"Use source='snapshot' (the verified copy in data/{SNAPSHOT_NAME}) or source='auto'."
        )


def load_hub_model(timeout: float = PROBE_TIMEOUT_S) -> Any:
    """GPT-2 small from the hub at the pinned revision (safetensors only, no remote code).

    Raises:
        HubUnavailableError: within about ``timeout`` seconds when the hub is unreachable or
            switched off, or if the download fails.
    """
    _require_hub(timeout)
    from transformers import GPT2Model  # imported lazily: the import alone takes seconds

    try:
        model = GPT2Model.from_pretrained(
            HUB_MODEL_ID, revision=HUB_REVISION, use_safetensors=True, trust_remote_code=False
        )
    except Exception as error:  # network, cache or format errors all mean "hub not usable"
        raise HubUnavailableError(
            f"downloading {HUB_MODEL_ID}@{HUB_REVISION[:12]} failed: {type(error).__name__}: {error}"
        ) from error
    return model.eval()


def load_hub_tokenizer(timeout: float = PROBE_TIMEOUT_S) -> Any:
    """GPT-2's tokenizer from the hub at the pinned revision.

    Raises:
        HubUnavailableError: when the hub is unreachable or the download fails.
    """
    _require_hub(timeout)
    # transformers 5 serves *TokenizerFast names from its lazy-import fallback, which its type declarations omit
    from transformers import GPT2TokenizerFast  # type: ignore[attr-defined]

    try:
        return GPT2TokenizerFast.from_pretrained(HUB_MODEL_ID, revision=HUB_REVISION)
    except Exception as error:
        raise HubUnavailableError(
            f"downloading the GPT-2 tokenizer failed: {type(error).__name__}: {error}"
        ) from error


def params_from_model(model: Any) -> dict[str, np.ndarray]:
    """The 50 LayerNorm arrays of a ``transformers`` ``GPT2Model`` (or its ``state_dict``)."""
    state = model.state_dict() if hasattr(model, "state_dict") else model
    state = {k.removeprefix("transformer."): v for k, v in state.items()}
    missing = [k for k in param_keys() if k not in state]
    if missing:
        raise ValueError(f"model must be a GPT-2 model with LayerNorms {missing[:3]}...; they are missing")
    return validate_params(
        {k: state[k].detach().cpu().numpy().astype(np.float32) for k in param_keys()}
    )


def load_snapshot() -> dict[str, np.ndarray]:
    """The 50 arrays from ``data/gpt2_layernorm.npz`` after its SHA-256 check.

    Raises:
        helpers.data.DataFileError: if the file is missing or corrupted.
        ValueError: if it does not hold the 50 expected arrays.
    """
    return validate_params(load_npz(SNAPSHOT_NAME))


def load_layernorm_params_with_source(
    source: str = "auto", *, timeout: float = PROBE_TIMEOUT_S
) -> LoadedParams:
    """GPT-2 small's LayerNorm parameters, and which source they were read from.

    Args:
        source: ``"hub"`` (download, fail fast offline), ``"snapshot"`` (the verified file
            in ``data/``) or ``"auto"`` (the hub when reachable, else the snapshot).
        timeout: seconds allowed for the hub reachability probe.

    Raises:
        ValueError: for an unknown ``source``.
        HubUnavailableError: for ``source="hub"`` when the hub cannot be used.
        helpers.data.DataFileError: when the snapshot is needed and is missing or corrupted.
    """
    check_choice("source", source, SOURCES)
    if source == "snapshot":
        return LoadedParams(load_snapshot(), "snapshot", "source='snapshot' was requested")
    if source == "hub":
        model = load_hub_model(timeout)
        return LoadedParams(params_from_model(model), "hub", "source='hub' was requested")
    try:
        model = load_hub_model(timeout)
    except HubUnavailableError as error:
        return LoadedParams(load_snapshot(), "snapshot", f"hub not used: {error}")
    return LoadedParams(params_from_model(model), "hub", "the hub was reachable")


def load_layernorm_params(source: str = "auto") -> dict[str, np.ndarray]:
    """GPT-2 small's 50 LayerNorm arrays (float32, shape (768,)), keyed ``h.{i}.ln_1.weight`` ...

    See :func:`load_layernorm_params_with_source` for ``source`` and the errors raised.
    """
    return load_layernorm_params_with_source(source).params


def save_params(params: dict[str, np.ndarray], path: str | os.PathLike[str]) -> str:
    """Write the 50 arrays to an ``.npz`` (uncompressed, no pickles, keys in forward order).

    Returns the SHA-256 of the written file.  The format is deterministic: saving the shipped
    snapshot's arrays reproduces ``data/gpt2_layernorm.npz`` byte for byte, so an export from
    the hub has the same SHA-256 exactly when its values are bit-identical.
    """
    checked = validate_params(params)
    path = Path(path)
    with open(path, "wb") as handle:  # a handle, so numpy does not append ".npz"
        # mypy: a **dict[str, ndarray] might hold savez's allow_pickle: bool (these keys are the parameter names)
        np.savez(handle, **checked)  # type: ignore[arg-type]
    return sha256_of(path)


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.gpt2_hub export PATH``: regenerate the snapshot from the hub."""
    parser = argparse.ArgumentParser(prog="python -m helpers.gpt2_hub")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser(
        "export", help=f"download {HUB_MODEL_ID}@{HUB_REVISION[:12]} and write its 50 LayerNorm arrays"
    )
    export.add_argument("path", type=Path, help="the .npz file to write")
    args = parser.parse_args(argv)
    try:
        params = load_layernorm_params_with_source("hub").params
    except HubUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    digest = save_params(params, args.path)
    print(f"wrote {len(params)} arrays from {HUB_MODEL_ID}@{HUB_REVISION} to {args.path}")
    print(f"sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
