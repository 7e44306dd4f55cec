"""Repository hygiene: package lists agree, the required files exist, nothing unsafe ships."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _names(requirements: list[str]) -> set[str]:
    names = set()
    for line in requirements:
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[<>=!~\[ ;]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def test_package_lists_agree() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    from_pyproject = _names(
        pyproject["dependencies"] + [r for extra in pyproject["optional-dependencies"].values() for r in extra]
    )
    from_requirements = _names((ROOT / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str) and d.split(">")[0].split("=")[0] not in {"python", "pip"}]
    conda_to_pypi = {"pytorch": "torch"}
    from_conda = {conda_to_pypi.get(n, n) for n in _names(conda)}
    assert from_pyproject == from_requirements == from_conda
    assert {"-e ."} == set(next(d["pip"] for d in env["dependencies"] if isinstance(d, dict)))


def test_constraints_pin_every_requirement_and_cpu_torch() -> None:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    assert pins["torch"] == "2.13.0"
    missing = _names((ROOT / "requirements.txt").read_text().splitlines()) - set(pins)
    assert not missing, f"constraints.txt does not pin {sorted(missing)}"


def test_required_top_level_files() -> None:
    for name in ("README.md", "LICENSE", "Makefile", ".ci/run", "environment.yml", "pyproject.toml",
                 "requirements.txt", "constraints.txt", "data/README.md"):
        assert (ROOT / name).is_file(), name
    assert "make test" in (ROOT / ".ci/run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme


def _tracked_text_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    files = [ROOT / f for f in out.stdout.splitlines()]
    return [f for f in files if f.suffix in {".py", ".md", ".toml", ".txt", ".yml", ".cfg", ""} and f.is_file()]


def test_no_unsafe_loading_in_code() -> None:
    unsafe = re.compile(r"allow_pickle\s*=\s*True|trust_remote_code\s*=\s*True|pickle\.loads?\(|weights_only\s*=\s*False")
    for path in ROOT.joinpath("helpers").rglob("*.py"):
        assert not unsafe.search(path.read_text()), f"unsafe loading in {path.relative_to(ROOT)}"


def test_no_absolute_local_paths_committed() -> None:
    local = re.compile(r"/(root|home/\w+|Users/\w+|work/main)/")
    for path in _tracked_text_files():
        text = path.read_text(errors="ignore")
        assert not local.search(text), f"absolute local path in {path.relative_to(ROOT)}"


def test_data_readme_credits_every_file() -> None:
    from helpers.data import DATA_FILES

    text = (ROOT / "data/README.md").read_text()
    for name, entry in DATA_FILES.items():
        assert name in text and entry.sha256 in text
    assert "CC BY-SA 3.0" in text and "OpenAI" in text


def test_data_folder_is_small() -> None:
    total = sum(p.stat().st_size for p in (ROOT / "data").iterdir())
    assert total < 15 * 1024 * 1024


def test_binder_environment_mirrors_environment_yml() -> None:
    main = yaml.safe_load((ROOT / "environment.yml").read_text())
    binder = yaml.safe_load((ROOT / ".binder/environment.yml").read_text())
    assert binder["channels"] == main["channels"]
    assert binder["dependencies"] == [d for d in main["dependencies"] if isinstance(d, str)]
    post_build = (ROOT / ".binder/postBuild").read_text()
    assert "pip install --no-deps -e ." in post_build
    assert "mathjax3-extension" in post_build
    assert "jupyter labextension develop --overwrite ." in post_build  # live sliders in RISE


def test_readme_lists_every_notebook_with_its_colab_badge() -> None:
    from tools.notebook_tools import colab_url

    readme = (ROOT / "README.md").read_text()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"(notebooks/{path.name})" in readme, f"README's table misses {path.name}"
        assert f"({colab_url(path.name)})" in readme, f"README's Colab badge for {path.name} is wrong"
    for target in re.findall(r"\]\(((?!https?://)[^)#]+)\)", readme):
        assert (ROOT / target).exists(), f"README links to a missing file: {target}"
