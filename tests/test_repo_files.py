"""Repository hygiene: package lists agree, the required files exist, nothing unsafe ships."""

from __future__ import annotations

import ast
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
    conda = [d for d in env["dependencies"]
             if isinstance(d, str) and d.split(">")[0].split("=")[0] not in {"python", "pip"}]
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
    unsafe = re.compile(r"allow_pickle\s*=\s*True|trust_remote_code\s*=\s*True|pickle\.loads?\("
                        r"|weights_only\s*=\s*False")
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


# -- what `pip install .` installs: the package the notebooks import, nothing else -----------
def _imported_helpers(source: str, package: str) -> set[str]:
    """Dotted names of ``helpers`` modules that ``source`` (code of module/package ``package``)
    imports, with their parent packages; names that are not modules are dropped later."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    found: set[str] = set()
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return {".".join(name.split(".")[:i]) for name in found if name.startswith("helpers")
            for i in range(1, name.count(".") + 2)}


def _helpers_modules() -> dict[str, Path]:
    modules = {}
    for path in (ROOT / "helpers").rglob("*.py"):
        dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        modules[dotted] = path
    return modules


def test_the_import_walk_finds_relative_and_nested_imports() -> None:
    found = _imported_helpers("from .panel import Panel\nfrom helpers.plots import drift\nimport helpers.claims as c",
                              "helpers.widgets")
    assert {"helpers.widgets.panel", "helpers.plots.drift", "helpers.claims", "helpers"} <= found


def test_pip_install_ships_only_the_package_the_notebooks_import() -> None:
    """pyproject.toml installs the ``helpers`` package and ``studies`` (the stored experiments the
    notebooks load) alone (no ``tools``, no vendored JavaScript as package data), and every
    module of ``helpers`` is reached from the notebooks' imports, those of the studies included
    (``studies.obtain`` imports a study by its name)."""
    import nbformat
    from setuptools import find_packages

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert "package-data" not in config, "nothing but Python modules is installed with the package"
    packages = find_packages(str(ROOT), **config["packages"]["find"])
    assert packages and all(p in {"helpers", "studies"} or p.startswith("helpers.") for p in packages), packages
    modules = _helpers_modules()
    todo: set[str] = set()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                todo |= _imported_helpers(cell.source, "")
    for path in sorted((ROOT / "studies").glob("*.py")):
        todo |= _imported_helpers(path.read_text(encoding="utf-8"), "studies")
    reached: set[str] = set()
    while todo:
        name = todo.pop()
        if name in reached or name not in modules:
            continue
        reached.add(name)
        package = name if modules[name].name == "__init__.py" else name.rpartition(".")[0]
        todo |= _imported_helpers(modules[name].read_text(encoding="utf-8"), package) - reached
    assert not sorted(set(modules) - reached), (
        f"helpers modules no notebook imports, even indirectly: {sorted(set(modules) - reached)}; "
        "maintainer code belongs in tools/")
