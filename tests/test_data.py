"""helpers.data: the real data files, their checksums and the MNIST loader."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from helpers import data


def test_every_shipped_file_matches_its_checksum() -> None:
    for name, entry in data.DATA_FILES.items():
        assert data.sha256_of(data.data_dir() / name) == entry.sha256


def test_load_mnist_train_shapes_and_values() -> None:
    x, y = data.load_mnist("train")
    assert x.shape == (60000, 784) and x.dtype == torch.float32
    assert y.shape == (60000,) and y.dtype == torch.int64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # the original IDX order
    assert torch.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert abs(float(x.mean()) - 0.1307) < 1e-3


def test_load_mnist_test_split_and_limit() -> None:
    x, y = data.load_mnist("test", limit=5)
    assert x.shape == (5, 784) and y.shape == (5,)
    full_x, full_y = data.load_mnist("test")
    assert full_x.shape == (10000, 784)
    assert torch.equal(x, full_x[:5]) and torch.equal(y, full_y[:5])


@pytest.mark.parametrize("split", ["validation", "Train", "", None])
def test_bad_split(split: object) -> None:
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'test'\)"):
        data.load_mnist(split)  # type: ignore[arg-type]


@pytest.mark.parametrize("limit", [0, -3])
def test_bad_limit(limit: object) -> None:
    with pytest.raises(ValueError, match="limit must be an int >= 1"):
        data.load_mnist("train", limit=limit)  # type: ignore[arg-type]


@pytest.mark.parametrize("limit", [2.5, "10", True])
def test_limit_of_wrong_type(limit: object) -> None:
    with pytest.raises(TypeError, match="limit must be an int >= 1"):
        data.load_mnist("train", limit=limit)  # type: ignore[arg-type]


def test_unknown_data_file() -> None:
    with pytest.raises(ValueError, match="name must be one of"):
        data.verified_path("cifar10.npz")


@pytest.fixture
def data_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of data/, used through COURSE_DATA_DIR."""
    for name in data.DATA_FILES:
        shutil.copy(data.data_dir() / name, tmp_path / name)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    return tmp_path


def test_missing_file_is_reported(data_copy: Path) -> None:
    (data_copy / "mnist.npz").unlink()
    with pytest.raises(data.DataFileError) as info:
        data.load_mnist()
    message = str(info.value)
    assert "mnist.npz" in message and "missing" in message
    assert data.DATA_FILES["mnist.npz"].sha256 in message
    assert "git checkout -- data/mnist.npz" in message


def test_corrupted_file_is_refused(data_copy: Path) -> None:
    path = data_copy / "mnist.npz"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(data.DataFileError) as info:
        data.load_mnist()
    message = str(info.value)
    assert "corrupted" in message and data.DATA_FILES["mnist.npz"].sha256 in message


def test_npz_loading_never_allows_pickles(data_copy: Path) -> None:
    arrays = data.load_npz("gpt2_layernorm.npz")
    assert len(arrays) == 50 and all(a.dtype.kind == "f" for a in arrays.values())
