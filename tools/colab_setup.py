"""Install the course on Google Colab without upgrading anything Colab has installed.

The notebooks' setup cell clones the course and, on Colab only, runs this file before the
course is importable, so it imports only the standard library and ``packaging`` (PEP 440
versions and PEP 508 requirements, read as pip reads them).  Colab ships ``packaging``, as does
every Jupyter kernel (ipykernel requires it).  Where it is missing (a bare interpreter running
the command line below), the copy pip vendors stands in: this file needs pip anyway.  A
specifier only packaging < 22 accepts (``>=one``, a "legacy" one) is refused as newer ones do.

What it does, in order:

1. reads the course's requirements (``[project].dependencies`` in ``pyproject.toml``);
2. compares each with what is installed: a requirement is *satisfied* when an installed
   version meets it (pre-releases count), *missing* when its distribution is not installed,
   *outdated* when the installed version is too old (or otherwise outside the range);
3. installs only the missing ones, with every installed distribution pinned to its current
   version (a pip constraints file), so that pip cannot upgrade an already-imported package
   as a dependency of a missing one; pip's dry-run report is checked first, and nothing is
   installed if it names a preinstalled package;
4. installs the course itself with ``--no-deps`` (editable), unless it is installed from
   this folder already.

Outdated requirements are upgraded too (with whatever they need, unpinned), and the output
names every package replaced and says to restart the session: an upgrade of a package the kernel has
imported needs a restart to take effect.
With the course's floors (which admit what Colab ships) that does not happen on Colab.

From a notebook (what the setup cell does)::

    runpy.run_path(f"{course}/tools/colab_setup.py")["install_missing"](course)

From a shell::

    python tools/colab_setup.py [COURSE_DIR] [--dry-run --report-dir DIR]

``--dry-run --report-dir DIR`` installs nothing: it writes pip's own ``--dry-run --report``
JSON of what would be installed to ``DIR/requirements.json`` (missing requirements),
``DIR/upgrades.json`` (outdated ones) and ``DIR/course.json`` (the course).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

try:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import Specifier
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version
except ImportError:  # a bare interpreter: pip's own copy (see the module's docstring)
    from pip._vendor.packaging.requirements import InvalidRequirement, Requirement
    from pip._vendor.packaging.specifiers import Specifier
    from pip._vendor.packaging.utils import canonicalize_name
    from pip._vendor.packaging.version import InvalidVersion, Version

#: The course's distribution name (``[project].name`` in ``pyproject.toml``).
COURSE_DIST = "init-norm-course"
#: Seconds allowed for one pip call (a torch download on a slow network included).
PIP_TIMEOUT_S = 1800


def canonical_name(name: str) -> str:
    """A distribution name normalized as pip compares them (PEP 503): ``Jinja2`` -> ``jinja2``,
    ``typing_extensions`` -> ``typing-extensions``.

    Raises:
        TypeError: if ``name`` is not a string.
        ValueError: if ``name`` is empty.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if not name.strip():
        raise ValueError("name must not be empty")
    return canonicalize_name(name.strip())


def is_version(version: str) -> bool:
    """Whether ``version`` is a PEP 440 version (pip refuses pins on anything else)."""
    try:
        Version(version)
    except (InvalidVersion, TypeError):
        return False
    return True


def parse_requirement(text: str) -> Requirement:
    """Parse a PEP 508 requirement without environment markers or URLs into packaging's
    ``Requirement`` (its ``name`` as written: compare it with :func:`canonical_name`).

    Extras (``name[extra]``) are accepted and ignored: what counts is the distribution.

    Raises:
        TypeError: if ``text`` is not a string.
        ValueError: if ``text`` is not a requirement, has a marker or URL, or a specifier is
            malformed.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    try:
        requirement = Requirement(text)
    except InvalidRequirement as error:
        reason = str(error).splitlines()[0]
        raise ValueError(f"text must be a requirement such as 'numpy>=1.26', got {text!r} ({reason})") from None
    legacy = [str(spec) for spec in requirement.specifier if not isinstance(spec, Specifier)]  # packaging < 22
    if legacy:
        raise ValueError(f"text must be a requirement such as 'numpy>=1.26', got {text!r} "
                         f"({legacy[0]} is not a PEP 440 version specifier)")
    if requirement.marker is not None:
        raise ValueError(f"text: environment markers are not supported, got {text!r}")
    if requirement.url is not None:
        raise ValueError(f"text: URL requirements are not supported, got {text!r}")
    return requirement


@dataclass(frozen=True)
class Plan:
    """What :func:`plan_install` found, one requirement text per entry."""

    satisfied: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    outdated: list[str] = field(default_factory=list)

    @property
    def to_install(self) -> list[str]:
        """The requirements pip is asked for: missing first, then outdated."""
        return self.missing + self.outdated


def plan_install(requirements: Iterable[str], installed: Mapping[str, str]) -> Plan:
    """Sort requirements into satisfied, missing and outdated against installed versions.

    Args:
        requirements: requirement texts, e.g. ``["numpy>=1.26", "ipywidgets>=7.7"]``.
        installed: installed distributions, canonical name -> version (see
            :func:`installed_distributions`).

    Raises:
        TypeError: if ``requirements`` is a string or ``installed`` is not a mapping.
        ValueError: if a requirement cannot be parsed.
    """
    if isinstance(requirements, (str, bytes)):
        raise TypeError("requirements must be an iterable of requirement strings, not one string")
    if not isinstance(installed, Mapping):
        raise TypeError(f"installed must be a mapping, got {type(installed).__name__}")
    plan = Plan()
    for text in requirements:
        requirement = parse_requirement(text)
        version = installed.get(canonical_name(requirement.name))
        if version is None:
            plan.missing.append(text.strip())
        elif is_version(version) and requirement.specifier.contains(version, prereleases=True):  # as pip
            plan.satisfied.append(f"{text.strip()} ({version} installed)")
        else:
            plan.outdated.append(text.strip())
    return plan


def installed_distributions(path: Sequence[str] | None = None) -> dict[str, str]:
    """Every distribution importable from ``path`` (``sys.path`` by default), canonical
    name -> version; the first one found wins, as for imports."""
    found: dict[str, str] = {}
    for dist in metadata.distributions(path=list(sys.path if path is None else path)):
        name = dist.metadata["Name"]
        if name and canonical_name(name) not in found:
            found[canonical_name(name)] = dist.version
    return found


def pin_constraints(installed: Mapping[str, str], unpinned: Iterable[str] = ()) -> str:
    """A pip constraints file holding every installed distribution at its version.

    Args:
        installed: canonical name -> version.
        unpinned: requirement texts or names whose distributions are left free (the
            outdated requirements that must be upgraded).

    Distributions whose version is not PEP 440 are left out (pip would reject the line).
    """
    free = {canonical_name(parse_requirement(item).name) for item in unpinned}
    lines = [f"{name}=={version}" for name, version in sorted(installed.items())
             if name not in free and is_version(version)]
    return "\n".join(lines) + "\n"


def course_requirements(course_dir: str | os.PathLike[str]) -> list[str]:
    """The ``[project].dependencies`` of the course's ``pyproject.toml``.

    Raises:
        TypeError: if ``course_dir`` is not a path.
        ValueError: if ``course_dir`` has no ``pyproject.toml`` or it lists no dependencies.
    """
    if not isinstance(course_dir, (str, os.PathLike)):
        raise TypeError(f"course_dir must be a path, got {type(course_dir).__name__}")
    pyproject = Path(course_dir) / "pyproject.toml"
    if not pyproject.is_file():
        raise ValueError(f"course_dir must hold pyproject.toml, got {str(course_dir)!r}")
    text = pyproject.read_text(encoding="utf-8")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: read the one array this needs
        block = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.MULTILINE | re.DOTALL)
        array = re.search(r"^dependencies\s*=\s*\[(.*?)\]", block[1] if block else "",
                          re.MULTILINE | re.DOTALL)
        dependencies = re.findall(r"""["']([^"']+)["']""",
                                  re.sub(r"#[^\n]*", "", array[1])) if array else []
    else:
        dependencies = tomllib.loads(text).get("project", {}).get("dependencies", [])
    if not dependencies:
        raise ValueError(f"course_dir: {pyproject} lists no [project] dependencies")
    return list(dependencies)


def parse_pip_report(report: Mapping[str, object]) -> list[tuple[str, str, bool]]:
    """``(canonical name, version, requested)`` of every distribution in a pip
    ``install --report`` JSON document (``{"version": "1", "install": [...]}``).

    Raises:
        TypeError: if ``report`` is not a mapping.
        ValueError: if it is not a pip installation report.
    """
    if not isinstance(report, Mapping):
        raise TypeError(f"report must be a mapping (pip's JSON report), got {type(report).__name__}")
    items = report.get("install")
    if "version" not in report or not isinstance(items, list):
        raise ValueError("report must be pip's installation report, with 'version' and 'install'")
    planned = []
    for item in items:
        try:
            meta = item["metadata"]
            planned.append((canonical_name(meta["name"]), str(meta["version"]),
                            bool(item.get("requested", False))))
        except (KeyError, TypeError) as error:
            raise ValueError(f"report: an 'install' entry lacks metadata name/version: {item!r}") from error
    return planned


def replaced_packages(report: Mapping[str, object], installed: Mapping[str, str]) -> list[str]:
    """``"name old -> new"`` for every distribution in the pip report that is already
    installed: pip would reinstall, upgrade or downgrade it.  Empty when pip only adds."""
    return [f"{name} {installed[name]} -> {version}" for name, version, _ in parse_pip_report(report)
            if name in installed]


def _course_install_is_current(course_dir: Path, installed: Mapping[str, str]) -> bool:
    """Whether the course is installed (editable or not) from ``course_dir`` already."""
    if canonical_name(COURSE_DIST) not in installed:
        return False
    try:
        direct = json.loads(metadata.distribution(COURSE_DIST).read_text("direct_url.json") or "{}")
    except (metadata.PackageNotFoundError, json.JSONDecodeError):
        return False
    return direct.get("url") == course_dir.resolve().as_uri()


def _pip(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``pip install ARGS`` for this interpreter; its output is printed only on failure."""
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check",
               "--no-input", "--progress-bar", "off", *args]
    print("  $ pip install " + " ".join(args), flush=True)
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=PIP_TIMEOUT_S, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"pip install failed (exit {result.returncode}):\n{result.stdout[-4000:]}")
    return result


def install_missing(course_dir: str | os.PathLike[str], *, dry_run: bool = False,
                    report_dir: str | os.PathLike[str] | None = None) -> Plan:
    """Install what the course needs and is missing; never upgrade a satisfied package.

    Args:
        course_dir: the cloned course (the folder holding ``pyproject.toml``).
        dry_run: install nothing; with ``report_dir``, save what pip would install.
        report_dir: where pip writes its JSON reports of what it would install
            (``requirements.json`` for missing requirements, ``upgrades.json`` for outdated
            ones, and ``course.json`` in a dry run).

    Packages are installed for the running interpreter (``sys.executable``: on Colab, the
    kernel's), and compared with what that interpreter can import.

    Returns:
        The plan: which requirements were satisfied, missing or outdated.

    Raises:
        TypeError: if ``course_dir`` or ``report_dir`` is not a path.
        ValueError: if ``course_dir`` is not the course.
        RuntimeError: if pip fails, or would replace a preinstalled package it was not
            asked to upgrade.
    """
    if report_dir is not None and not isinstance(report_dir, (str, os.PathLike)):
        raise TypeError(f"report_dir must be a path, got {type(report_dir).__name__}")
    requirements = course_requirements(course_dir)  # validates course_dir
    course = Path(course_dir)
    installed = installed_distributions()
    plan = plan_install(requirements, installed)
    print(f"Course requirements already installed: {len(plan.satisfied)} of {len(requirements)}",
          flush=True)
    for line in plan.satisfied:
        print(f"  ok       {line}")
    for text in plan.missing:
        print(f"  missing  {text}")
    for text in plan.outdated:
        name = canonical_name(parse_requirement(text).name)
        print(f"  too old  {text} ({installed.get(name)} installed)")
    reports = Path(report_dir) if report_dir is not None else None
    with tempfile.TemporaryDirectory(prefix="course-setup-") as scratch:
        if reports is None:
            reports = Path(scratch)
        reports.mkdir(parents=True, exist_ok=True)
        if plan.missing:  # with every installed package pinned: pip may add, never replace
            constraints = Path(scratch) / "installed.txt"
            constraints.write_text(pin_constraints(installed), encoding="utf-8")
            report = reports / "requirements.json"
            _pip(["--dry-run", "--quiet", "--report", str(report), "-c", str(constraints),
                  *plan.missing])
            replaced = replaced_packages(json.loads(report.read_text()), installed)
            if replaced:
                raise RuntimeError(f"pip would replace preinstalled packages: {replaced}")
            if not dry_run:
                _pip(["--quiet", "-c", str(constraints), *plan.missing])
        if plan.outdated:  # too old for the course: upgraded, with what they need
            report = reports / "upgrades.json"
            _pip(["--dry-run", "--quiet", "--report", str(report), *plan.outdated])
            replaced = replaced_packages(json.loads(report.read_text()), installed)
            print(f"Upgrading preinstalled packages: {', '.join(replaced)}", flush=True)
            if not dry_run:
                _pip(["--quiet", *plan.outdated])
        if _course_install_is_current(course, installed):
            print(f"{COURSE_DIST} is installed from {course} already")
        else:
            if dry_run:
                _pip(["--dry-run", "--quiet", "--report", str(reports / "course.json"), "--no-deps",
                      "-e", str(course)])
            else:
                _pip(["--quiet", "--no-deps", "-e", str(course)])
    if plan.outdated and not dry_run:
        print("\nUpgraded packages the kernel may have imported already. Restart the session "
              "(Colab: Runtime > Restart session), then run this cell again.", flush=True)
    elif not dry_run:
        print("Done: nothing preinstalled was changed, no restart needed.", flush=True)
    return plan


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python tools/colab_setup.py [COURSE_DIR] [--dry-run] [--report-dir DIR]``."""
    parser = argparse.ArgumentParser(prog="python tools/colab_setup.py", description=__doc__.splitlines()[0])
    parser.add_argument("course_dir", nargs="?", default=str(Path(__file__).resolve().parent.parent),
                        help="the cloned course (default: the folder this file is in)")
    parser.add_argument("--dry-run", action="store_true", help="install nothing")
    parser.add_argument("--report-dir", help="save pip's JSON reports of what it would install here")
    args = parser.parse_args(argv)
    try:
        install_missing(args.course_dir, dry_run=args.dry_run, report_dir=args.report_dir)
    except (RuntimeError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
