"""The environment check of notebook 00: is every package the course needs importable?"""

from __future__ import annotations

import importlib.util
import platform
from dataclasses import dataclass
from importlib import metadata

#: Import name -> distribution name of every package the notebooks need.
REQUIRED_PACKAGES: dict[str, str] = {
    "torch": "torch",
    "numpy": "numpy",
    "matplotlib": "matplotlib",
    "ipywidgets": "ipywidgets",
    "tqdm": "tqdm",
    "safetensors": "safetensors",
    "transformers": "transformers",
}


@dataclass(frozen=True)
class PackageCheck:
    """Whether one package can be found, and its version."""

    name: str
    ok: bool
    version: str


def check_packages(packages: dict[str, str] | None = None) -> list[PackageCheck]:
    """Look up every required package's installed version without importing heavy ones.

    A package counts as OK when its distribution is installed and its module can be found.
    """
    results = []
    for module, dist in (packages or REQUIRED_PACKAGES).items():
        try:
            version = metadata.version(dist)
            ok = importlib.util.find_spec(module) is not None
        except metadata.PackageNotFoundError:
            version, ok = "not installed", False
        results.append(PackageCheck(module, ok, version))
    return results


def python_version() -> str:
    """The running Python's version, e.g. ``"3.11.7"``."""
    return platform.python_version()
