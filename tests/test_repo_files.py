"""Repository hygiene: package lists agree, the required files exist, nothing unsafe ships."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as the package tomli (the `test` extra)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def _names(requirements: list[str]) -> set[str]:
    names = set()
    for line in requirements:
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[<>=!~\[ ;]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def _lines(name: str) -> list[str]:
    return (ROOT / name).read_text().splitlines()


PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]
#: The learner set: what requirements.txt, environment.yml and `make lab` install.
LEARNER = _names(PROJECT["dependencies"] + EXTRAS["lab"])
#: What only maintainers (tests, lint, types) and instructors (grading) add.
MAINTAINER = _names(EXTRAS["test"] + EXTRAS["grading"])


def test_install_sets_agree_and_learners_get_no_test_or_grading_stack() -> None:
    """requirements.txt and environment.yml hold the learner set (pyproject's dependencies and
    `lab` extra), requirements-dev.txt adds the `test` and `grading` extras to it, and none of
    the learner files names a test or grading package."""
    assert set(EXTRAS) == {"lab", "test", "grading"}
    assert {"jupyterlab", "torch", "numpy", "matplotlib", "ipywidgets", "transformers"} <= LEARNER
    assert {"pytest", "nbval", "ruff", "mypy", "playwright"} <= _names(EXTRAS["test"])
    assert _names(EXTRAS["grading"]) == {"nbgrader"}
    assert not LEARNER & MAINTAINER
    assert _names(_lines("requirements.txt")) == LEARNER
    dev = _lines("requirements-dev.txt")
    assert "-r requirements.txt" in dev
    assert _names(dev) == MAINTAINER
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"]
             if isinstance(d, str) and d.split(">")[0].split("=")[0] not in {"python", "pip"}]
    conda_to_pypi = {"pytorch": "torch"}
    assert {conda_to_pypi.get(n, n) for n in _names(conda)} == LEARNER
    assert {"-e ."} == set(next(d["pip"] for d in env["dependencies"] if isinstance(d, dict)))


def test_requirement_files_repeat_pyprojects_ranges() -> None:
    """The same range (and marker) for each package everywhere pip reads one."""
    def specs(lines: list[str]) -> set[str]:
        return {line.split("#")[0].strip().replace('"', "'") for line in lines
                if line.split("#")[0].strip() and not line.startswith("-")}

    assert specs(_lines("requirements.txt")) == specs(PROJECT["dependencies"] + EXTRAS["lab"])
    assert specs(_lines("requirements-dev.txt")) == specs(EXTRAS["test"] + EXTRAS["grading"])


def _pins() -> dict[str, str]:
    pins = {}
    for line in _lines("constraints.txt"):
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_constraints_pin_every_requirement_of_every_set_and_cpu_torch() -> None:
    """constraints.txt, made on Python 3.11 (the Makefile's LOCK_PYTHON), pins every package of
    every set that is installed there; torch's pin has no local label, so that it admits both
    PyTorch's CPU build (2.13.0+cpu) and PyPI's build of the release."""
    from packaging.requirements import Requirement

    pins = _pins()
    assert pins["torch"] == "2.13.0"
    lock_python = re.search(r"^LOCK_PYTHON\s*:=\s*(\S+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert lock_python and lock_python.group(1) == "3.11"
    environment = {"python_version": "3.11", "python_full_version": "3.11.0"}
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in _lines(name):
            line = line.split("#")[0].strip()
            if not line or line.startswith("-"):
                continue
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                key = requirement.name.lower().replace("_", "-")
                assert key in pins, f"constraints.txt does not pin {key} ({name})"
                assert requirement.specifier.contains(pins[key], prereleases=True), (
                    f"constraints.txt pins {key}=={pins[key]}, outside {name}'s {requirement.specifier}")


def test_python_versions_the_project_declares() -> None:
    """requires-python admits 3.10, and so does everything the tools and tests import: tomllib
    (3.11+) is imported only where ImportError falls back (to the package tomli, declared for
    3.10 with that marker; tools/colab_setup.py, standard library only, reads its one array
    itself); setuptools reads `license = "MIT"` from version 77 on."""
    assert PROJECT["requires-python"] == ">=3.10"
    assert "tomli>=2; python_version < '3.11'" in EXTRAS["test"]
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    assert PROJECT["license"] == "MIT" and "setuptools>=77" in build["requires"]
    out = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    bare = []
    for name in out.stdout.splitlines():
        if not (ROOT / name).is_file():
            continue
        tree = ast.parse((ROOT / name).read_text(encoding="utf-8"))
        guarded = {id(node) for block in ast.walk(tree) if isinstance(block, ast.Try)
                   if any(isinstance(h.type, ast.Name) and h.type.id in {"ImportError", "ModuleNotFoundError"}
                          for h in block.handlers)
                   for node in block.body}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Import) and any(a.name == "tomllib" for a in node.names)
                    and id(node) not in guarded):
                bare.append(f"{name}:{node.lineno}")
    assert not bare, f"tomllib imported without the tomli fallback for Python 3.10: {bare}"


def test_the_tomllib_fallback_takes_tomli_on_python_3_10(monkeypatch) -> None:
    """tools/course.py imported as on Python 3.10 (no tomllib) uses the package tomli; a
    stand-in module plays tomli here, where Python 3.11 does not install it."""
    import importlib
    import sys
    import types

    stand_in = types.ModuleType("tomli")
    stand_in.loads = lambda text: {"read by": "tomli"}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tomllib", None)  # `import tomllib` raises ModuleNotFoundError
    monkeypatch.setitem(sys.modules, "tomli", stand_in)
    monkeypatch.delitem(sys.modules, "tools.course", raising=False)
    try:
        course = importlib.import_module("tools.course")
        assert course.tomllib is stand_in
    finally:
        sys.modules.pop("tools.course", None)


def test_makefile_installs_the_sets_and_has_no_nbgrader_workaround() -> None:
    """`make lab` installs the learner set, `make test` the full one; nbgrader's front-end is
    not removed by hand (learners do not get nbgrader; the browser tests leave it out)."""
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^lab: install\b", makefile, re.MULTILINE)
    assert re.search(r"^test: install-dev\b", makefile, re.MULTILINE)
    assert re.search(r"^\$\(LEARNER_STAMP\):.*\n(\t.*\n)*\t\$\(PY\) -m pip install --quiet -r requirements\.txt",
                     makefile, re.MULTILINE)
    assert re.search(r"^\$\(FULL_STAMP\):.*\n(\t.*\n)*\t\$\(PY\) -m pip install --quiet -r requirements-dev\.txt",
                     makefile, re.MULTILINE)
    assert "labextensions/@jupyter/nbgrader" not in makefile
    assert "server extension disable" not in makefile
    recipe = re.search(r"^browser-deps:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe and "apt-get install" in recipe.group(1)
    assert makefile.count("apt-get") == recipe.group(1).count("apt-get"), "only `make browser-deps` runs apt-get"
    ci = (ROOT / ".ci/run").read_text()
    assert ci.index("make browser-deps") < ci.index("make test-all")


def test_required_top_level_files() -> None:
    for name in ("README.md", "LICENSE", "Makefile", ".ci/run", "environment.yml", "pyproject.toml",
                 "requirements.txt", "constraints.txt", "data/README.md"):
        assert (ROOT / name).is_file(), name
    assert "make test" in (ROOT / ".ci/run").read_text()
    assert (ROOT / "requirements-dev.txt").is_file()
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
    # /home/jovyan is not a local path: it is the home folder inside Jupyter's container images
    # (the JupyterHub and Binder deployments document it).
    local = re.compile(r"/(root|home/(?!jovyan/)\w+|Users/\w+|work/main)/")
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


def test_binder_installs_the_learner_set() -> None:
    """Binder (and so the JupyterHub image) gets the learner set: every package of it, none that
    only the test or grading extras bring, and the course's own install steps."""
    binder = yaml.safe_load((ROOT / ".binder/environment.yml").read_text())
    assert binder["channels"] == yaml.safe_load((ROOT / "environment.yml").read_text())["channels"]
    specs = [d for d in binder["dependencies"] if isinstance(d, str)]
    specs += [s for d in binder["dependencies"] if isinstance(d, dict) for s in d.get("pip", [])]
    names = {{"pytorch": "torch"}.get(n, n) for n in _names(specs)}
    assert LEARNER <= names, f"Binder misses {sorted(LEARNER - names)}"
    only_maintainers = MAINTAINER - {"psutil", "nbclient", "nbformat", "nbconvert", "pyyaml"}  # JupyterLab needs these
    assert not names & only_maintainers, f"Binder installs {sorted(names & only_maintainers)}"
    post_build = (ROOT / ".binder/postBuild").read_text()
    assert "pip install --no-deps -e ." in post_build
    assert "mathjax3-extension" in post_build
    assert "jupyter labextension develop --overwrite ." in post_build  # live sliders in RISE
    assert "nbgrader" not in post_build


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
        source = modules[name].read_text(encoding="utf-8")
        todo |= _imported_helpers(source, package) - reached
        if package == name and "pkgutil.iter_modules(__path__)" in source:  # imports each module of the package
            todo |= {child for child in modules if child.rpartition(".")[0] == name} - reached
    assert not sorted(set(modules) - reached), (
        f"helpers modules no notebook imports, even indirectly: {sorted(set(modules) - reached)}; "
        "maintainer code belongs in tools/")
