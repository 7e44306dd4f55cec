"""tools/colab_setup.py: which requirements count as satisfied, missing or too old (with
``packaging``, or pip's vendored copy of it), the pins that keep pip from upgrading preinstalled
packages, and the reading of pip's JSON report."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "colab_setup.py"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


colab_setup = _load("colab_setup")

# What the Colab runtime read on 2026-11-30 has (tests/colab/colab-versions.txt), plus tqdm and
# safetensors as transformers installs them.
COLAB = {"torch": "2.13.0+cpu", "numpy": "2.0.2", "matplotlib": "3.10.0", "ipywidgets": "7.7.1",
         "tqdm": "4.67.1", "safetensors": "0.6.2", "transformers": "4.57.1", "ipykernel": "6.17.1"}


def test_script_imports_only_the_standard_library_and_packaging() -> None:
    """What runs before the course is installed: the standard library, and packaging or the
    copy of it that pip vendors."""
    tree = ast.parse(SCRIPT.read_text())
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    others = {m for m in modules if m.split(".")[0] not in set(sys.stdlib_module_names) | {"__future__"}}
    assert others == {f"{prefix}packaging.{sub}" for prefix in ("", "pip._vendor.")
                      for sub in ("requirements", "specifiers", "utils", "version")}


@pytest.fixture(scope="module")
def vendored() -> ModuleType:
    """The script loaded where ``packaging`` cannot be imported: it takes pip's copy."""
    blocked = [name for name in sys.modules if name == "packaging" or name.startswith("packaging.")]
    blocked += ["packaging", "packaging.requirements", "packaging.specifiers", "packaging.utils",
                "packaging.version"]
    saved = {name: sys.modules.get(name) for name in blocked}
    sys.modules.update(dict.fromkeys(blocked))  # None: import raises ImportError
    try:
        module = _load("colab_setup_vendored")
    finally:
        for name, module_before in saved.items():
            if module_before is None:
                del sys.modules[name]
            else:
                sys.modules[name] = module_before
    assert module.Requirement.__module__ == "pip._vendor.packaging.requirements"
    assert colab_setup.Requirement.__module__ == "packaging.requirements"
    return module


def test_course_floors_admit_what_colab_ships() -> None:
    requirements = colab_setup.course_requirements(ROOT)
    plan = colab_setup.plan_install(requirements, COLAB)
    assert plan.missing == [] and plan.outdated == [] and plan.to_install == []
    assert len(plan.satisfied) == len(requirements)
    assert "ipywidgets>=7.7" in requirements


def test_requirements_txt_has_the_same_floors_as_pyproject() -> None:
    lines = {line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()}
    assert set(colab_setup.course_requirements(ROOT)) <= lines


def test_plan_sorts_missing_outdated_and_satisfied() -> None:
    installed = {"numpy": "1.25.2", "ipywidgets": "7.7.1", "torch": "2.8.0+cu126"}
    plan = colab_setup.plan_install(
        ["numpy>=1.26", "ipywidgets>=7.7", "torch>=2.2", "tqdm>=4.66", "Safe_Tensors>=0.4"], installed)
    assert plan.missing == ["tqdm>=4.66", "Safe_Tensors>=0.4"]
    assert plan.outdated == ["numpy>=1.26"]
    assert plan.satisfied == ["ipywidgets>=7.7 (7.7.1 installed)", "torch>=2.2 (2.8.0+cu126 installed)"]
    assert plan.to_install == ["tqdm>=4.66", "Safe_Tensors>=0.4", "numpy>=1.26"]


def test_an_installed_version_above_a_cap_is_outdated_not_satisfied() -> None:
    plan = colab_setup.plan_install(["ipywidgets>=7.7,<8"], {"ipywidgets": "8.1.9"})
    assert plan.outdated == ["ipywidgets>=7.7,<8"] and plan.satisfied == []


def test_names_match_after_normalization() -> None:
    plan = colab_setup.plan_install(["typing_extensions>=4", "Jinja2==3.1.6"],
                                    {"typing-extensions": "4.16.0", "jinja2": "3.1.6"})
    assert plan.missing == [] and len(plan.satisfied) == 2


def _is_met(module: ModuleType, version: str, spec: str) -> bool:
    """Whether ``pkg{spec}`` counts as satisfied with ``pkg`` ``version`` installed."""
    plan = module.plan_install([f"pkg{spec}"], {"pkg": version})
    assert plan.missing == [] and len(plan.satisfied) + len(plan.outdated) == 1
    return bool(plan.satisfied)


# Versions in PEP 440 order: a floor at the larger is not met by the smaller, and conversely.
ORDER = [("1.0.dev1", "1.0a1"), ("1.0a1", "1.0b2"), ("1.0b2", "1.0rc1"), ("1.0rc1", "1.0"),
         ("1.0", "1.0.post1"), ("1.0.post1", "1.0.1"), ("1.9", "1.10"), ("2.0.2", "2.0.10"),
         ("7.7.1", "8.1.9"), ("1!0.1", "1!0.2"), ("99", "1!0")]
SPECIFIERS = [
    ("7.7.1", ">=7.7", True), ("7.6.5", ">=7.7", False), ("8.1.9", ">=7.7,<8", False),
    ("2.0.2", "==2.0.*", True), ("2.1.0", "==2.0.*", False), ("2.1.0", "!=2.0.*", True),
    ("4.57.1", "~=4.40", True), ("5.0", "~=4.40", False), ("4.57.1", "~=4.57.0", True),
    ("4.58.0", "~=4.57.0", False), ("1.0", "===1.0", True), ("1.0.0", "===1.0", False),
    ("2.13.0+cpu", "==2.13.0", True), ("3.10.0", ">3.10", False), ("3.10.0", "<=3.10", True),
    # equal versions
    ("1.0", "==1.0.0", True), ("1.0.0", "==1.0", True), ("1.0RC1", "==1.0rc1", True),
    # pre-releases count: Colab's nightly torch meets torch>=2.2
    ("2.14.0.dev20261201+cu126", ">=2.2", True), ("2.2.0rc1", ">=2.2", False),
    *[(smaller, f">={larger}", False) for smaller, larger in ORDER],
    *[(larger, f">={smaller}", True) for smaller, larger in ORDER],
]


@pytest.mark.parametrize(("version", "spec", "met"), SPECIFIERS)
def test_specifiers(version: str, spec: str, met: bool) -> None:
    assert _is_met(colab_setup, version, spec) is met


def test_parse_requirement() -> None:
    """Whitespace, the name's spelling and extras do not matter; the text is kept as written."""
    text = " Torch [cpu] >= 2.2 , < 3 "
    assert colab_setup.plan_install([text, "tqdm"], {"torch": "2.8.0", "tqdm": "0.1"}).satisfied == [
        "Torch [cpu] >= 2.2 , < 3 (2.8.0 installed)", "tqdm (0.1 installed)"]
    assert colab_setup.plan_install([text], {"torch": "3.0"}).outdated == [text.strip()]
    assert colab_setup.canonical_name(colab_setup.parse_requirement(text).name) == "torch"


REJECTED = [
    ("", ValueError, "text must be a requirement"),
    ("numpy>=1.26; python_version<'3.12'", ValueError, "markers are not supported"),
    ("numpy @ https://example.org/numpy.whl", ValueError, "URL requirements"),
    ("numpy=1", ValueError, "text must be a requirement"),
    ("numpy>>1", ValueError, "text must be a requirement"),
    ("numpy>=one", ValueError, "text must be a requirement"),
    ("numpy>=1.*", ValueError, "text must be a requirement"),
    ("numpy~=1", ValueError, "text must be a requirement"),
    (3, TypeError, "text must be a str"),
]


@pytest.mark.parametrize(("text", "error", "match"), REJECTED)
def test_parse_requirement_rejects(text: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        colab_setup.parse_requirement(text)  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore:Creating a LegacyVersion:DeprecationWarning")  # packaging 21
def test_pips_vendored_packaging_gives_the_same_answers(vendored: ModuleType) -> None:
    """Without packaging (a bare interpreter), pip's copy of it decides the same, whatever its
    version (pip 23's copy, packaging 21, would accept ``numpy>=one`` as a legacy specifier)."""
    assert [_is_met(vendored, version, spec) for version, spec, _ in SPECIFIERS] == [
        met for _, _, met in SPECIFIERS]
    for text, error, match in REJECTED:
        with pytest.raises(error, match=match):
            vendored.parse_requirement(text)
    requirements = vendored.course_requirements(ROOT)
    assert vars(vendored.plan_install(requirements, COLAB)) == vars(colab_setup.plan_install(requirements, COLAB))
    assert vendored.pin_constraints(COLAB, ["numpy>=1.26"]) == colab_setup.pin_constraints(COLAB, ["numpy>=1.26"])


def test_bad_arguments_name_the_argument() -> None:
    with pytest.raises(TypeError, match="requirements must be an iterable"):
        colab_setup.plan_install("numpy>=1", {})
    with pytest.raises(TypeError, match="installed must be a mapping"):
        colab_setup.plan_install(["numpy>=1"], [("numpy", "2.0")])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="course_dir must be a path"):
        colab_setup.course_requirements(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="course_dir must hold pyproject.toml"):
        colab_setup.course_requirements(ROOT / "tests")
    with pytest.raises(TypeError, match="name must be a str"):
        colab_setup.canonical_name(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="report_dir must be a path"):
        colab_setup.install_missing(ROOT, dry_run=True, report_dir=5)  # type: ignore[arg-type]


def test_course_requirements_without_tomllib(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n# comment\ndependencies = [\n    "numpy>=1.26",  # why\n'
        '    "ipywidgets>=7.7",\n]\n\n[project.optional-dependencies]\nlab = ["jupyterlab>=4"]\n')
    monkeypatch.setitem(sys.modules, "tomllib", None)  # as on Python 3.10
    assert colab_setup.course_requirements(tmp_path) == ["numpy>=1.26", "ipywidgets>=7.7"]
    monkeypatch.undo()
    assert colab_setup.course_requirements(tmp_path) == ["numpy>=1.26", "ipywidgets>=7.7"]


def test_pins_hold_every_installed_package_except_those_to_upgrade() -> None:
    pins = colab_setup.pin_constraints(
        {"numpy": "1.25.2", "ipywidgets": "7.7.1", "torch": "2.8.0+cu126", "weird": "not-a-version"},
        unpinned=["numpy>=1.26"])
    assert pins == "ipywidgets==7.7.1\ntorch==2.8.0+cu126\n"


REPORT = {
    "version": "1",
    "pip_version": "23.2.1",
    "install": [
        {"metadata": {"name": "tqdm", "version": "4.70.1"}, "requested": True},
        {"metadata": {"name": "ipywidgets", "version": "8.1.9"}, "requested": False},
        {"metadata": {"name": "widgetsnbextension", "version": "4.0.16"}},
    ],
}


def test_parse_pip_report() -> None:
    assert colab_setup.parse_pip_report(REPORT) == [
        ("tqdm", "4.70.1", True), ("ipywidgets", "8.1.9", False), ("widgetsnbextension", "4.0.16", False)]
    assert colab_setup.parse_pip_report({"version": "1", "install": []}) == []


def test_replaced_packages_names_what_pip_would_upgrade() -> None:
    """The issue's case: installing the course upgrades Colab's ipywidgets 7.7.1."""
    assert colab_setup.replaced_packages(REPORT, COLAB) == ["tqdm 4.67.1 -> 4.70.1",
                                                            "ipywidgets 7.7.1 -> 8.1.9"]
    assert colab_setup.replaced_packages(REPORT, {"numpy": "2.0.2"}) == []


@pytest.mark.parametrize(("report", "error", "match"), [
    ([], TypeError, "report must be a mapping"),
    ({"install": []}, ValueError, "pip's installation report"),
    ({"version": "1", "install": [{"metadata": {"name": "x"}}]}, ValueError, "lacks metadata"),
])
def test_parse_pip_report_rejects(report: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        colab_setup.parse_pip_report(report)  # type: ignore[arg-type]


@pytest.mark.parametrize(("version", "valid"), [
    ("2.13.0+cpu", True), ("1!2.0.post1.dev3", True), ("not a version", False), ("1.0-foo", False),
    (1.0, False), (None, False)])
def test_is_version(version: object, valid: bool) -> None:
    assert colab_setup.is_version(version) is valid  # type: ignore[arg-type]


def test_installed_distributions_sees_this_environment() -> None:
    installed = colab_setup.installed_distributions()
    assert "pytest" in installed and colab_setup.is_version(installed["pytest"])


def test_nothing_to_do_runs_no_pip(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """With every requirement satisfied and the course installed from here, pip is not called."""
    calls: list[list[str]] = []
    monkeypatch.setattr(colab_setup, "_pip", lambda args: calls.append(args))
    monkeypatch.setattr(colab_setup, "installed_distributions", lambda: dict(COLAB))
    monkeypatch.setattr(colab_setup, "_course_install_is_current", lambda course, installed: True)
    plan = colab_setup.install_missing(ROOT)
    assert calls == [] and plan.to_install == []
    assert "no restart needed" in capsys.readouterr().out


def test_missing_requirements_are_installed_with_pins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Missing tqdm: a pip dry run with every installed package pinned, then the install;
    the course itself with --no-deps."""
    calls: list[list[str]] = []
    pins: list[str] = []

    def fake_pip(args: list[str]) -> None:
        calls.append(args)
        if "--report" in args:
            Path(args[args.index("--report") + 1]).write_text(
                '{"version": "1", "install": [{"metadata": {"name": "tqdm", "version": "4.70.1"}}]}')
        if "-c" in args:
            pins.append(Path(args[args.index("-c") + 1]).read_text())

    installed = {k: v for k, v in COLAB.items() if k != "tqdm"}
    monkeypatch.setattr(colab_setup, "_pip", fake_pip)
    monkeypatch.setattr(colab_setup, "installed_distributions", lambda: dict(installed))
    monkeypatch.setattr(colab_setup, "_course_install_is_current", lambda course, installed: False)
    plan = colab_setup.install_missing(ROOT, report_dir=tmp_path)
    assert plan.missing == ["tqdm>=4.66"]
    assert calls[0][:1] == ["--dry-run"] and calls[0][-1] == "tqdm>=4.66"
    assert calls[1][-1] == "tqdm>=4.66" and "--dry-run" not in calls[1]
    assert calls[2] == ["--quiet", "--no-deps", "-e", str(ROOT)]
    assert "ipywidgets==7.7.1" in pins[0] and "numpy==2.0.2" in pins[0]
    assert "no restart needed" in capsys.readouterr().out


def test_refuses_when_pip_would_replace_a_preinstalled_package(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def fake_pip(args: list[str]) -> None:
        calls.append(args)
        Path(args[args.index("--report") + 1]).write_text(
            '{"version": "1", "install": [{"metadata": {"name": "ipywidgets", "version": "8.1.9"}}]}')

    monkeypatch.setattr(colab_setup, "_pip", fake_pip)
    monkeypatch.setattr(colab_setup, "installed_distributions",
                        lambda: {k: v for k, v in COLAB.items() if k != "tqdm"})
    with pytest.raises(RuntimeError, match=r"ipywidgets 7\.7\.1 -> 8\.1\.9"):
        colab_setup.install_missing(ROOT, report_dir=tmp_path)
    assert len(calls) == 1, "nothing is installed after a refused dry run"


def test_outdated_packages_are_upgraded_with_a_restart_notice(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Too old: upgraded without pins (the upgrade may need newer dependencies, as ipywidgets 8
    needs widgetsnbextension 4), naming what it replaces and asking for a restart."""
    calls: list[list[str]] = []

    def fake_pip(args: list[str]) -> None:
        calls.append(args)
        if "--report" in args:
            Path(args[args.index("--report") + 1]).write_text(
                '{"version": "1", "install": [{"metadata": {"name": "numpy", "version": "2.4.6"}}]}')

    monkeypatch.setattr(colab_setup, "_pip", fake_pip)
    monkeypatch.setattr(colab_setup, "installed_distributions", lambda: {**COLAB, "numpy": "1.25.2"})
    monkeypatch.setattr(colab_setup, "_course_install_is_current", lambda course, installed: True)
    plan = colab_setup.install_missing(ROOT, report_dir=tmp_path)
    assert plan.outdated == ["numpy>=1.26"]
    assert calls == [["--dry-run", "--quiet", "--report", str(tmp_path / "upgrades.json"), "numpy>=1.26"],
                     ["--quiet", "numpy>=1.26"]]
    out = capsys.readouterr().out
    assert "Upgrading preinstalled packages: numpy 1.25.2 -> 2.4.6" in out
    assert "Restart the session" in out


def test_main_reports_errors_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert colab_setup.main([str(ROOT / "tests")]) == 1
    assert "course_dir must hold pyproject.toml" in capsys.readouterr().err
