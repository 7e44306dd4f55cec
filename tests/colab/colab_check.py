"""``make test-colab``: the course in a Colab-like runtime, set up by its own setup cell.

Steps (each printed, with its time):

1. a venv with Colab's versions of the key packages (``tests/colab/colab-versions.txt``);
   its ``pip list`` is the "preinstalled" set;
2. a clone of this repository's HEAD (the notebooks' setup cells brought up to date in the
   clone if they are stale, saying so);
3. pip's own dry-run report of what ``tools/colab_setup.py`` would install there: it must
   name nothing preinstalled;
4. every notebook executed with nbclient in a kernel of that venv that looks like Colab's:
   a ``google.colab`` module imported at kernel start together with ipywidgets, and the
   course's repository address redirected to the local clone, so that the first setup cell
   really clones the course (into a temporary ``INIT_NORM_COURSE_DIR`` instead of
   ``/content/course``) and installs it.  An error in any cell fails; outputs may differ
   from the stored ones (the venv has Colab's versions of numpy, torch and matplotlib, which may
   round differently), so every claim the notebooks check is tested with those versions too.  Each kernel reports
   the versions it imported, and every cell that shows a live panel in the stored notebook
   must show one here too;
5. ``pip list`` again: no preinstalled package was upgraded, downgraded or removed.

Everything is built in a temporary folder, removed at the end (``--keep`` keeps it).  pip's
reports, the pip lists, the executed notebooks and a summary go to ``test-artifacts/colab``.
Run with the course's own environment (it provides nbclient):
``.venv/bin/python tests/colab/colab_check.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.notebook_tools import COURSE_DIR_VARIABLE, SETUP_TAG, repository_url  # noqa: E402

VERSIONS_FILE = ROOT / "tests" / "colab" / "colab-versions.txt"
ARTIFACTS = ROOT / "test-artifacts" / "colab"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
KERNEL_NAME = "colab-like"
#: Runs at kernel start, as Colab's kernel does: google.colab and ipywidgets are imported.
STARTUP = "import google.colab\nimport ipywidgets\n"
#: Appended to every notebook: what the kernel really ran on.
PROBE = """\
import json, sys, importlib.metadata as _md, ipywidgets, helpers, torch
print("COLAB-PROBE " + json.dumps({
    "google.colab imported": "google.colab" in sys.modules,
    "cpu capability": torch.backends.cpu.get_cpu_capability(),
    "helpers": helpers.__file__,
    "imported ipywidgets": ipywidgets.__version__,
    "versions": {n: _md.version(n) for n in ("ipywidgets", "numpy", "matplotlib", "transformers",
                                              "ipykernel", "torch", "tqdm", "safetensors")},
}))"""


def log(message: str) -> None:
    print(f"[test-colab {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command, failing with its output when it fails."""
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed ({result.returncode}):\n"
                           f"{result.stdout[-4000:]}")
    return result


def pip_list(python: Path) -> dict[str, str]:
    """Installed distributions of ``python``'s environment, canonical name -> version."""
    out = run([str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
              env={**os.environ, "PIP_NO_WARN_SCRIPT_LOCATION": "1"}).stdout
    start = out.index("[")  # pip may print warnings before the JSON
    return {_canonical(d["name"]): d["version"] for d in json.loads(out[start: out.rindex("]") + 1])}


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def changed_packages(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """Preinstalled packages whose version changed or which disappeared."""
    return [f"{name} {version} -> {after.get(name, 'removed')}" for name, version in sorted(before.items())
            if after.get(name) != version]


def build_venv(base: Path, python: str) -> Path:
    log(f"venv with Colab's versions from {VERSIONS_FILE.relative_to(ROOT)} ...")
    run([python, "-m", "venv", str(base / "venv")])
    venv_python = base / "venv" / "bin" / "python"
    run([str(venv_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-r", str(VERSIONS_FILE)])
    return venv_python


def clone_source(base: Path) -> Path:
    """A clone of HEAD whose notebooks carry the current setup cell."""
    source = base / "source"
    head = run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]).stdout.strip()
    log(f"cloning HEAD ({head}) of {ROOT.name} into the temporary folder ...")
    run(["git", "clone", "-q", ROOT.as_uri(), str(source)])
    synced = run([sys.executable, "-m", "tools.notebook_tools", "sync-setup",
                  *sorted(str(p) for p in (source / "notebooks").glob("*.ipynb"))], cwd=source).stdout
    stale = [line.split(": ", 1)[1] for line in synced.splitlines() if line.startswith("updated: ")]
    if stale:
        log(f"WARNING: {len(stale)} notebooks' setup cells are stale at HEAD; synced in the clone only "
            "(run `python -m tools.notebook_tools sync-setup notebooks/*.ipynb` in the repository)")
        run(["git", "-C", str(source), "-c", "user.name=test-colab", "-c", "user.email=test-colab@localhost",
             "commit", "-q", "-am", "setup cells synced for the Colab-like test"])
    return source


def check_dry_run(venv_python: Path, source: Path, preinstalled: Mapping[str, str]) -> dict:
    """pip's own report of what the setup script would install must name nothing preinstalled."""
    reports = ARTIFACTS / "pip-reports"
    shutil.rmtree(reports, ignore_errors=True)
    log("dry run of tools/colab_setup.py (pip install --dry-run --report) ...")
    out = run([str(venv_python), str(source / "tools" / "colab_setup.py"), str(source), "--dry-run",
               "--report-dir", str(reports)]).stdout
    print(_indent(out))
    planned: list[tuple[str, str]] = []
    for report in sorted(reports.glob("*.json")):
        data = json.loads(report.read_text())
        planned += [(_canonical(i["metadata"]["name"]), i["metadata"]["version"]) for i in data["install"]]
    replaced = [f"{n} {preinstalled[n]} -> {v}" for n, v in planned if n in preinstalled]
    log(f"pip would install: {', '.join(f'{n} {v}' for n, v in planned) or 'nothing'}; "
        f"of them preinstalled: {', '.join(replaced) or 'none'}")
    if replaced:
        raise AssertionError(f"pip would replace preinstalled packages: {replaced}")
    return {"would_install": planned}


def make_kernel(base: Path, venv_python: Path, source: Path, course: Path) -> dict[str, str]:
    """A kernelspec that starts like Colab's; returns the environment the client needs."""
    fake = base / "fake-colab" / "google" / "colab"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('"""Stands in for Colab\'s google.colab package."""\n')
    startup = base / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text(STARTUP)
    spec = base / "jupyter" / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    env = {
        "PYTHONPATH": str(base / "fake-colab"),
        "IPYTHONDIR": str(base / "ipython"),
        COURSE_DIR_VARIABLE: str(course),
        # the setup cell's `git clone <repository address>` fetches the local clone instead
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.{source.as_uri()}.insteadOf",
        "GIT_CONFIG_VALUE_0": repository_url(),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "INIT_NORM_STRICT_CLAIMS": "1",  # a claim the run contradicts fails (helpers.claims.STRICT_ENV)
    }
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(venv_python), "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f",
                 "{connection_file}"],
        "display_name": "Colab-like", "language": "python", "env": env}, indent=1))
    return {"JUPYTER_PATH": str(base / "jupyter")}


def execute_notebook(path: Path, stored: nbformat.NotebookNode, timeout: int, course: Path) -> dict:
    """Run one notebook in the Colab-like kernel; returns what was seen, errors included."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(nb, timeout=timeout, kernel_name=KERNEL_NAME,
                            resources={"metadata": {"path": str(path.parent)}}, record_timing=False)
    start = time.monotonic()
    result: dict = {"notebook": path.name, "errors": []}
    try:
        client.execute()
    except CellExecutionError as error:
        result["errors"].append(str(error)[-3000:])
    except Exception as error:  # a timeout or a dead kernel
        result["errors"].append(f"{type(error).__name__}: {error}")
    result["seconds"] = round(time.monotonic() - start, 1)
    nbformat.write(nb, ARTIFACTS / "notebooks" / path.name)
    if result["errors"]:
        return result
    probe = next(o.text for o in nb.cells[-1].outputs if o.get("name") == "stdout")
    result["probe"] = json.loads(probe.split("COLAB-PROBE ", 1)[1])
    setup = next(c for c in nb.cells if SETUP_TAG in c.metadata.get("tags", []))
    result["setup_output"] = "".join(o.get("text", "") for o in setup.outputs)
    missing_views = [index for index, cell in enumerate(stored.cells)
                     if any(WIDGET_VIEW in o.get("data", {}) for o in cell.get("outputs", []))
                     and not any(WIDGET_VIEW in o.get("data", {}) for o in nb.cells[index].outputs)]
    if missing_views:
        result["errors"].append(f"cells {missing_views} show a live panel in the stored notebook, not here")
    if not result["probe"]["google.colab imported"]:
        result["errors"].append("google.colab was not imported: the setup cell's Colab branch did not run")
    if not Path(result["probe"]["helpers"]).resolve().is_relative_to(course.resolve()):
        result["errors"].append(f"helpers imported from {result['probe']['helpers']}, not the Colab clone")
    return result


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.strip().splitlines() if "WARNING: Location" not in line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tests/colab/colab_check.py", description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=getattr(sys, "_base_executable", sys.executable),
                        help="the interpreter the Colab-like venv is made from")
    parser.add_argument("--notebooks", default="*.ipynb", help="glob of the notebooks to run")
    parser.add_argument("--cell-timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--budget-minutes", type=float, default=45.0,
                        help="stop (failing) when the whole run exceeds this")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if args.cell_timeout <= 0:
        raise ValueError(f"--cell-timeout must be > 0, got {args.cell_timeout}")
    if args.budget_minutes <= 0:
        raise ValueError(f"--budget-minutes must be > 0, got {args.budget_minutes}")
    started = time.monotonic()
    deadline = started + args.budget_minutes * 60
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    (ARTIFACTS / "notebooks").mkdir(parents=True)
    base = Path(tempfile.mkdtemp(prefix="course-colab-test-"))
    summary: dict = {"versions_file": str(VERSIONS_FILE.relative_to(ROOT)), "failures": []}
    try:
        venv_python = build_venv(base, args.python)
        preinstalled = pip_list(venv_python)
        (ARTIFACTS / "pip-list-before.json").write_text(json.dumps(preinstalled, indent=1, sort_keys=True))
        key = {n: preinstalled.get(n) for n in ("ipywidgets", "numpy", "matplotlib", "transformers",
                                                 "ipykernel", "ipython", "torch", "tqdm", "safetensors")}
        log(f"preinstalled: {len(preinstalled)} packages; {', '.join(f'{n} {v}' for n, v in key.items())} "
            f"({time.monotonic() - started:.0f} s)")
        source = clone_source(base)
        summary.update(check_dry_run(venv_python, source, preinstalled))
        course = base / "content" / "course"
        os.environ.update(make_kernel(base, venv_python, source, course))
        notebooks = sorted((source / "notebooks").glob(args.notebooks))
        if not notebooks:
            raise ValueError(f"--notebooks {args.notebooks!r} matches no notebook")
        log(f"executing {len(notebooks)} notebooks in the Colab-like kernel; the first setup cell "
            f"clones the course into {COURSE_DIR_VARIABLE} and runs tools/colab_setup.py ...")
        results = []
        for path in notebooks:
            if time.monotonic() > deadline:
                summary["failures"].append(f"time budget of {args.budget_minutes} min used up before {path.name}")
                break
            # the clone's copy is what runs (the first setup cell creates it); its notebooks match source
            target = course / "notebooks" / path.name if course.exists() else path
            stored = nbformat.read(path, as_version=4)
            result = execute_notebook(target, stored, args.cell_timeout, course)
            results.append(result)
            status = "ok" if not result["errors"] else "FAILED"
            log(f"{path.name}: {status} in {result['seconds']} s")
            shown = result.get("setup_output", "").strip()
            if shown:  # the whole setup output once, then its last line
                print(_indent(shown if len(results) == 1 else shown.splitlines()[-1]))
            for error in result["errors"]:
                summary["failures"].append(f"{path.name}: {error}")
                print(_indent(error))
        summary["notebooks"] = results
        after = pip_list(venv_python)
        (ARTIFACTS / "pip-list-after.json").write_text(json.dumps(after, indent=1, sort_keys=True))
        changed = changed_packages(preinstalled, after)
        added = sorted(f"{n} {v}" for n, v in after.items() if n not in preinstalled)
        summary.update(changed_preinstalled=changed, added=added)
        log(f"pip list after every notebook: preinstalled packages changed: {', '.join(changed) or 'none'}; "
            f"added: {', '.join(added) or 'none'}")
        if changed:
            summary["failures"].append(f"preinstalled packages changed: {changed}")
        for result in results:
            probe = result.get("probe")
            if probe is None:
                continue
            for name, version in probe["versions"].items():
                if preinstalled.get(_canonical(name)) != version:
                    summary["failures"].append(f"{result['notebook']}: kernel ran {name} {version}, "
                                               f"preinstalled {preinstalled.get(_canonical(name))}")
            if probe["imported ipywidgets"] != preinstalled["ipywidgets"]:
                summary["failures"].append(f"{result['notebook']}: ipywidgets {probe['imported ipywidgets']} "
                                           "was imported")
    except Exception as error:  # report it like any other failure
        summary["failures"].append(f"{type(error).__name__}: {error}")
    finally:
        summary["seconds"] = round(time.monotonic() - started)
        (ARTIFACTS / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
        if args.keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    for failure in summary["failures"]:
        log(f"FAIL: {failure.splitlines()[0] if failure else failure}")
    log(f"{'FAILED' if summary['failures'] else 'passed'} in {summary['seconds']} s "
        f"(details: {ARTIFACTS.relative_to(ROOT)}/summary.json)")
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
