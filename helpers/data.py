"""The course's real data sets, shipped in ``data/`` and verified by SHA-256 on every load.

Files are read with ``numpy.load(..., allow_pickle=False)``: no pickle is ever loaded.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from helpers.validation import check_choice, check_int


class DataFile(NamedTuple):
    """A file in ``data/`` with the checksum it must have."""

    name: str
    sha256: str
    description: str


#: Every data file the course ships, with its expected SHA-256.
DATA_FILES: dict[str, DataFile] = {
    f.name: f
    for f in (
        DataFile(
            "mnist.npz",
            "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64",
            "MNIST handwritten digits, 60,000 train + 10,000 test, uint8 28x28",
        ),
        DataFile(
            "gpt2_layernorm.npz",
            "06c3c9ede5712439134628d25a144a092808498ca13b1e2a9404a18f85273599",
            "GPT-2 small (124M) LayerNorm weights and biases, 50 float32 arrays of 768",
        ),
    )
}

#: Environment variable that points the course at another data folder.
DATA_DIR_ENV = "COURSE_DATA_DIR"

SPLITS = ("train", "test")


class DataFileError(RuntimeError):
    """A data file is missing or does not have its expected checksum."""


def data_dir() -> Path:
    """The folder holding the data files: ``$COURSE_DATA_DIR`` or the repository's ``data/``."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "data"


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _restore_hint(name: str) -> str:
    return (
        f"Restore it with `git checkout -- data/{name}` in the course repository "
        f"(or copy it from a fresh clone), or set {DATA_DIR_ENV} to a folder holding a good copy."
    )


def verified_path(name: str) -> Path:
    """The path of data file ``name`` after checking that it exists and its SHA-256 matches.

    Raises:
        ValueError: if ``name`` is not one of the course's data files.
        DataFileError: if the file is missing or its checksum differs.
    """
    check_choice("name", name, sorted(DATA_FILES))
    expected = DATA_FILES[name].sha256
    path = data_dir() / name
    if not path.is_file():
        raise DataFileError(
            f"data file {name!r} is missing (expected SHA-256 {expected}). {_restore_hint(name)}"
        )
    actual = sha256_of(path)
    if actual != expected:
        raise DataFileError(
            f"data file {name!r} is corrupted: SHA-256 is {actual}, expected {expected}. "
            f"{_restore_hint(name)}"
        )
    return path


def load_npz(name: str) -> dict[str, np.ndarray]:
    """Load every array of a verified ``.npz`` data file, without allowing pickles."""
    with np.load(verified_path(name), allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def load_mnist(split: str = "train", limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Real MNIST digits as flat float images and integer labels.

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000 images).
        limit: keep only the first ``limit`` images (in the original order); ``None`` keeps all.

    Returns:
        ``(x, y)``: ``x`` a float32 tensor of shape ``[N, 784]`` with values in ``[0, 1]``,
        ``y`` an int64 tensor of shape ``[N]`` with labels 0-9.

    Raises:
        TypeError: if ``limit`` is not an int (or ``None``).
        ValueError: for an unknown ``split`` or a ``limit`` < 1.
        DataFileError: if ``data/mnist.npz`` is missing or corrupted.
    """
    check_choice("split", split, SPLITS)
    if limit is not None:
        limit = check_int("limit", limit, minimum=1)
    with np.load(verified_path("mnist.npz"), allow_pickle=False) as archive:
        images = archive[f"x_{split}"]
        labels = archive[f"y_{split}"]
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y
