"""helpers.setup_notebook, the style and the environment check."""

from __future__ import annotations

import random

import matplotlib as mpl
import numpy as np
import pytest
import torch

import helpers
from helpers.environment import REQUIRED_PACKAGES, PackageCheck, check_packages
from helpers.setup import seed_everything
from helpers.style import COLORS


def test_setup_notebook_seeds_and_styles() -> None:
    device = helpers.setup_notebook(seed=3)
    assert device.type in {"cpu", "cuda"}
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    helpers.setup_notebook(seed=3)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    assert mpl.rcParams["axes.prop_cycle"].by_key()["color"] == COLORS
    assert mpl.rcParams["savefig.format"] == "png"
    assert torch.are_deterministic_algorithms_enabled()


def test_different_seeds_differ() -> None:
    seed_everything(1)
    a = torch.rand(3)
    seed_everything(2)
    assert not torch.equal(a, torch.rand(3))


@pytest.mark.parametrize("seed", [-1])
def test_negative_seed(seed: int) -> None:
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        helpers.setup_notebook(seed=seed)


@pytest.mark.parametrize("seed", [1.5, "0", None, True])
def test_seed_type(seed: object) -> None:
    with pytest.raises(TypeError, match="seed must be an int"):
        helpers.setup_notebook(seed=seed)  # type: ignore[arg-type]


def test_environment_check_finds_installed_and_missing_packages() -> None:
    checks = check_packages()
    assert [c.name for c in checks] == list(REQUIRED_PACKAGES)
    assert all(c.ok for c in checks)
    missing = check_packages({"no_such_module_xyz": "no-such-distribution-xyz"})
    assert missing == [PackageCheck("no_such_module_xyz", False, "not installed")]


def test_environment_check_covers_what_every_install_set_installs() -> None:
    """Notebook 00's environment check names exactly pyproject's dependencies, which the learner
    set (requirements.txt, environment.yml), the full set and Colab's setup all install."""
    import re
    from pathlib import Path

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    root = Path(__file__).resolve().parent.parent
    dependencies = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    names = {re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0].lower() for d in dependencies}
    assert set(REQUIRED_PACKAGES.values()) == names
