"""The course's studies: long multi-seed experiments, run once, stored, loaded by the notebooks.

``python -m studies list`` names them, ``python -m studies run NAME`` (or ``make studies``)
reruns one and stores its results in ``data/studies/``; a notebook calls :func:`obtain` to load
them (or, with ``rerun=True``, to run them again in the notebook) and :func:`report` to check
its claims on them.  How a study is written and stored: :mod:`studies.store`.
"""

from __future__ import annotations

import importlib
import pkgutil

from studies.store import Claim, Results, Study, StudyError, load, report

__all__ = ["Claim", "Results", "Study", "StudyError", "get", "load", "names", "obtain", "report", "report_claims"]

_NOT_STUDIES = frozenset({"store", "cli", "__main__"})


def names() -> list[str]:
    """Every study's name, sorted."""
    return sorted(info.name for info in pkgutil.iter_modules(__path__)
                  if info.name not in _NOT_STUDIES and not info.name.startswith("_"))


def get(name: str) -> Study:
    """The study called ``name``.

    Raises:
        TypeError: if ``name`` is not a str.
        ValueError: if there is no such study (the message lists them).
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name not in names():
        raise ValueError(f"name must be one of {names()}, got {name!r}")
    study = importlib.import_module(f"studies.{name}").STUDY
    if not isinstance(study, Study) or study.name != name:
        raise TypeError(f"studies/{name}.py must define STUDY = Study(name={name!r}, ...)")
    return study


def default_device() -> str:
    """``"cuda"`` when a GPU is available (e.g. Colab's), else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def obtain(name: str, rerun: bool = False, device: str | None = None) -> Results:
    """The results of study ``name``: loaded from ``data/studies`` (checked by SHA-256), or,
    with ``rerun=True``, computed afresh in this process with the full configuration (on
    ``device``, by default the GPU when there is one) without touching the stored files."""
    if not isinstance(rerun, bool):
        raise TypeError(f"rerun must be a bool, got {type(rerun).__name__}")
    if not rerun:
        return load(name)
    study = get(name)
    return study.execute(study.full, device or default_device())


def report_claims(results: Results, section: str | None = None) -> None:
    """Print the claims the notebook makes about a study, checked on ``results``; raise
    ``AssertionError`` naming every claim that fails.

    With ``section`` (e.g. ``"§2:"``), only the claims whose description starts with it, so a
    notebook can check each section's claims where that section measures them.

    Raises:
        TypeError: if ``results`` is not a :class:`Results` or ``section`` is not a str.
        ValueError: if no claim of the study starts with ``section``.
    """
    if not isinstance(results, Results):
        raise TypeError(f"results must be studies.Results, got {type(results).__name__}")
    if section is not None and not isinstance(section, str):
        raise TypeError(f"section must be a str or None, got {type(section).__name__}")
    claims = get(results.name).claims(results)
    if section is not None:
        claims = [claim for claim in claims if claim.description.startswith(section)]
        if not claims:
            raise ValueError(f"study {results.name!r} has no claim starting with {section!r}")
    report(claims)
