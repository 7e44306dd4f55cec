"""What every study shares: its description, its stored results and their provenance.

A *study* is an experiment too long to rerun in a lesson (many seeds, long training).  It is
run once by ``python -m studies run NAME``; its arrays are stored in ``data/studies/NAME.npz``
(NumPy's format, loaded with ``allow_pickle=False``) and its provenance in
``data/studies/NAME.json``: the configuration and seeds, a fingerprint of the code that
determines the results, package versions, the CPU/GPU, the date, the wall time and the
SHA-256 of the ``.npz``.  A notebook loads the stored results with :func:`load`, which checks
the SHA-256, and checks its claims on them with :func:`report`.

A study module (``studies/<name>.py``) defines ``STUDY = Study(...)`` with

* ``full`` and ``quick``: two configurations, frozen dataclasses whose fields are plain
  numbers, strings, booleans and tuples of them; ``quick`` runs in seconds (for the tests);
* ``run(config, device)``: runs the experiment with a tqdm progress bar and returns a dict of
  NumPy arrays (the same keys and numbers of dimensions for ``full`` and ``quick``);
* ``claims(results)``: the claims the notebook makes about the study, as a list of
  :class:`Claim` computed from a :class:`Results`.

The fingerprint covers the study module without its ``claims`` function and its ``STUDY``
description (title, notebook), plus every course module (``helpers.*``, ``studies.*``) that the
rest imports, directly or through other course modules, with comments and docstrings removed:
editing a claim, a title or a comment leaves the stored results current, editing the code that
computes them makes them stale.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime
import hashlib
import importlib.util
import json
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from helpers.data import sha256_of

__all__ = [
    "Claim", "Results", "Study", "StudyError", "code_modules", "fingerprint", "load", "report",
    "results_dir", "save", "stale_reason",
]

#: Environment variable that points the studies at another folder (the tests use it).
STUDIES_DIR_ENV = "COURSE_STUDIES_DIR"
#: Modules of this package that describe and store studies but compute nothing of their results.
INFRASTRUCTURE = frozenset({"studies", "studies.store", "studies.cli", "studies.__main__"})
#: The packages whose modules count towards a fingerprint.
COURSE_PACKAGES = ("helpers", "studies")
#: The function and the variable of a study module that the fingerprint leaves out.
CLAIMS_FUNCTION = "claims"
STUDY_VARIABLE = "STUDY"


class StudyError(RuntimeError):
    """Stored results are missing, corrupt or stale; the message names the command that fixes it."""


def results_dir() -> Path:
    """The folder of the stored studies: ``$COURSE_STUDIES_DIR`` or the repository's ``data/studies``."""
    override = os.environ.get(STUDIES_DIR_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "data" / "studies"


def regenerate_command(name: str) -> str:
    """The command that reruns study ``name`` and stores its results."""
    return f"python -m studies run {name}"


@dataclass(frozen=True)
class Claim:
    """One claim a notebook makes about a study: ``lo <= value <= hi`` (a bound may be ``None``).

    ``fmt`` is the format the value and bounds are printed with: coarse enough that the line
    reads the same wherever the stored results are loaded.
    """

    description: str
    value: float
    lo: float | None
    hi: float | None
    fmt: str = ".3g"

    def __post_init__(self) -> None:
        if not isinstance(self.description, str) or not self.description.strip():
            raise ValueError("description must be a non-empty sentence")
        if self.lo is None and self.hi is None:
            raise ValueError(f"claim {self.description!r}: lo and hi cannot both be None")
        object.__setattr__(self, "value", float(self.value))

    @property
    def holds(self) -> bool:
        """Whether the measured value lies within the bounds (NaN never does)."""
        if np.isnan(self.value):
            return False
        return (self.lo is None or self.value >= self.lo) and (self.hi is None or self.value <= self.hi)

    def line(self) -> str:
        """``'✓ description (measured v, expected …)'``, or ``✗`` when the claim fails."""
        if self.lo is None:
            expected = f"≤ {self.hi:{self.fmt}}"
        elif self.hi is None:
            expected = f"≥ {self.lo:{self.fmt}}"
        else:
            expected = f"in [{self.lo:{self.fmt}}, {self.hi:{self.fmt}}]"
        mark = "✓" if self.holds else "✗"
        return f"{mark} {self.description} (measured {self.value:{self.fmt}}, expected {expected})"


def report(claims: Iterable[Claim]) -> None:
    """Print one line per claim; then, if any fails, raise ``AssertionError`` listing them under
    the tests, or warn in a learner's session (``helpers.claims.claim_failed``)."""
    from helpers.claims import claim_failed

    claims = list(claims)
    if not claims or not all(isinstance(c, Claim) for c in claims):
        raise TypeError("report() takes a non-empty list of Claim")
    for claim in claims:
        print(claim.line())
    failed = [claim.line() for claim in claims if not claim.holds]
    if failed:
        claim_failed("claims fail:\n" + "\n".join(failed))


@dataclass(frozen=True)
class Results:
    """A study's arrays with the configuration and provenance they were made with."""

    name: str
    arrays: Mapping[str, np.ndarray]
    config: Mapping[str, Any]
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> np.ndarray:
        try:
            return self.arrays[key]
        except KeyError:
            raise KeyError(f"study {self.name!r} has no array {key!r}; it has {sorted(self.arrays)}") from None


@dataclass(frozen=True)
class Study:
    """A long experiment: its configurations, how to run it, and the claims made about it."""

    name: str
    title: str
    notebook: str
    full: Any
    quick: Any
    run: Callable[..., dict[str, np.ndarray]]
    claims: Callable[[Results], list[Claim]]
    module: str

    def __post_init__(self) -> None:
        for label in ("full", "quick"):
            config = getattr(self, label)
            if not dataclasses.is_dataclass(config) or isinstance(config, type):
                raise TypeError(f"study {self.name!r}: {label} must be a dataclass instance")

    def execute(self, config: Any, device: str = "cpu") -> Results:
        """Run the study on ``config`` and return its results (nothing is stored)."""
        arrays = self.run(config, device)
        if not isinstance(arrays, dict) or not arrays:
            raise TypeError(f"study {self.name!r}: run() must return a non-empty dict of arrays")
        arrays = {key: np.asarray(value) for key, value in arrays.items()}
        for key, value in arrays.items():
            if value.dtype == object:
                raise TypeError(f"study {self.name!r}: array {key!r} has dtype object (it would need pickle)")
        return Results(self.name, arrays, config_dict(config))


def config_dict(config: Any) -> dict[str, Any]:
    """A configuration dataclass as JSON-ready data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


# ---------------------------------------------------------------------------- fingerprint

def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]


def _source_tree(module: str, drop_claims: bool) -> ast.Module:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise StudyError(f"cannot find the source of module {module!r}")
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    if drop_claims:
        tree.body = [node for node in tree.body if not _describes_only(node)]
    _strip_docstrings(tree)
    return tree


def _describes_only(node: ast.stmt) -> bool:
    """The study's ``claims`` function and its ``STUDY = Study(...)`` description: neither changes
    the results (the stored configuration is compared with ``full`` on its own)."""
    if isinstance(node, ast.FunctionDef):
        return node.name == CLAIMS_FUNCTION
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
    return any(isinstance(target, ast.Name) and target.id == STUDY_VARIABLE for target in targets)


def _is_course_module(name: str) -> bool:
    if name.split(".")[0] not in COURSE_PACKAGES:
        return False
    parent = name.rpartition(".")[0]
    if parent and not _is_package(parent):  # `helpers.drift.train` names a function, not a module
        return False
    return importlib.util.find_spec(name) is not None


def _imported(tree: ast.Module, module: str) -> set[str]:
    package = module if _is_package(module) else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] in COURSE_PACKAGES)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] not in COURSE_PACKAGES:
                continue
            found.add(base)
            for alias in node.names:  # `from helpers import check` imports a module
                candidate = f"{base}.{alias.name}"
                if _is_course_module(candidate):
                    found.add(candidate)
    return {name for name in found if _is_course_module(name)}


def _is_package(module: str) -> bool:
    spec = importlib.util.find_spec(module)
    return spec is not None and spec.submodule_search_locations is not None


def code_modules(module: str) -> list[str]:
    """The study module and every course module it imports, directly or indirectly, sorted.

    The package modules that only describe, store and run studies (:data:`INFRASTRUCTURE`) are
    left out; so are the imports made only inside the study's ``claims`` function and ``STUDY``.
    """
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in INFRASTRUCTURE and name != module:  # what they import computes nothing either
            continue
        todo.extend(_imported(_source_tree(name, drop_claims=name == module), name) - seen)
    return sorted(seen - (INFRASTRUCTURE - {module}))


def fingerprint(module: str) -> str:
    """SHA-256 over the code that determines a study's results (see the module docstring)."""
    digest = hashlib.sha256()
    for name in code_modules(module):
        tree = _source_tree(name, drop_claims=name == module)
        digest.update(name.encode())
        digest.update(ast.dump(tree, annotate_fields=False, include_attributes=False).encode())
    return digest.hexdigest()


# ---------------------------------------------------------------------------- provenance

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _environment(device: str) -> dict[str, Any]:
    import torch

    packages = {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__}
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") and torch.cuda.is_available() else None
    return {"packages": packages, "platform": platform.platform(), "machine": platform.machine(),
            "cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpu": gpu, "device": device}


def save(study: Study, results: Results, *, seconds: float, device: str, quick: bool,
         directory: Path | None = None) -> Path:
    """Write ``NAME.npz`` and ``NAME.json`` to ``directory`` and return the JSON's path."""
    directory = results_dir() if directory is None else Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    npz = directory / f"{study.name}.npz"
    np.savez_compressed(npz, **dict(results.arrays))  # type: ignore[arg-type]  # numpy types **kwds as bool
    provenance = {
        "study": study.name,
        "title": study.title,
        "notebook": study.notebook,
        "configuration": "quick" if quick else "full",
        "config": results.config,
        "seeds": results.config.get("seeds"),
        "fingerprint": fingerprint(study.module),
        "code_modules": code_modules(study.module),
        **_environment(device),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_time_s": round(seconds, 1),
        "command": regenerate_command(study.name) + (" --quick" if quick else ""),
        "npz_sha256": sha256_of(npz),
        "arrays": {key: {"shape": list(value.shape), "dtype": str(value.dtype)}
                   for key, value in results.arrays.items()},
    }
    path = directory / f"{study.name}.json"
    path.write_text(json.dumps(provenance, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_provenance(name: str, directory: Path | None = None) -> dict[str, Any]:
    """The stored ``NAME.json`` of a study."""
    directory = results_dir() if directory is None else Path(directory)
    path = directory / f"{name}.json"
    if not path.is_file():
        raise StudyError(f"the stored results of study {name!r} are missing ({path.name} not found in "
                         f"data/studies); regenerate them with `{regenerate_command(name)}`")
    return json.loads(path.read_text(encoding="utf-8"))


def load(name: str, directory: Path | None = None) -> Results:
    """Load a stored study, checking the ``.npz`` against the SHA-256 in its provenance.

    Raises:
        StudyError: if a file is missing or the ``.npz`` does not have its recorded SHA-256;
            the message names the command that regenerates it.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    directory = results_dir() if directory is None else Path(directory)
    provenance = read_provenance(name, directory)
    npz = directory / f"{name}.npz"
    if not npz.is_file():
        raise StudyError(f"the stored results of study {name!r} are missing ({npz.name} not found in "
                         f"data/studies); regenerate them with `{regenerate_command(name)}`")
    if sha256_of(npz) != provenance["npz_sha256"]:
        raise StudyError(f"the stored results of study {name!r} are corrupt ({npz.name} does not have the "
                         f"SHA-256 recorded in {name}.json); regenerate them with `{regenerate_command(name)}`")
    with np.load(npz, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    return Results(name, arrays, provenance["config"], provenance)


def stale_reason(study: Study, directory: Path | None = None) -> str | None:
    """Why the stored results of ``study`` no longer match its code, or ``None`` if they do."""
    provenance = read_provenance(study.name, directory)
    command = regenerate_command(study.name)
    if provenance.get("configuration") != "full":
        return f"study {study.name!r}: the stored results come from the quick configuration; run `{command}`"
    if provenance["config"] != config_dict(study.full):
        return f"study {study.name!r}: the stored configuration differs from the full one; run `{command}`"
    if provenance["fingerprint"] != fingerprint(study.module):
        return (f"study {study.name!r}: the code that computes it changed since its results were stored "
                f"(modules {', '.join(code_modules(study.module))}); run `{command}`")
    return None


def timed_run(study: Study, config: Any, device: str) -> tuple[Results, float]:
    """Run ``study`` on ``config`` and return its results and the wall time in seconds."""
    start = time.perf_counter()
    results = study.execute(config, device)
    return results, time.perf_counter() - start
