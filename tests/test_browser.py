"""Real-browser tests: every notebook runs in JupyterLab and its panels respond in Chromium.

nbval proves the notebooks compute what they say, but it cannot move a slider.  These tests
do what a student does: start JupyterLab (headless, localhost, a random free port, a token),
open each notebook in Debian's Chromium driven by Playwright, run all cells, then move the
controls of every interactive panel and check that the picture really changes, with no error
output, no ``panel-error`` readout and no JavaScript error.  A screenshot of each notebook
goes to ``test-artifacts/browser/`` (git-ignored).  Further tests open the HTML and slide
exports offline (no kernel) and check that figures, formulas and saved widgets render, and
present notebooks with RISE: the deck and its formulas render, and a slider dragged on a
slide redraws its figure (the widget manager loads there thanks to ``labextension/``).

The notebooks are copied to a temporary folder before JupyterLab opens them, so nothing the
browser does (autosave, new outputs) touches the repository.  JupyterLab runs with its own
throw-away settings, workspace and runtime folders, and with every background network check
(news, update check, PyPI extension manager) switched off.

Tiers: ``make test`` runs the quick ones (``-m "not slow"``): a *panel gallery* (a small notebook
showing every registered panel, ``helpers.widgets.all_panels``) run in JupyterLab with every control
moved, the RISE slideshow (formulas, and a slider dragged on a slide of a one-panel gallery) and
one handout (that gallery, exported); no course notebook runs in the browser there, since nbval has
executed each already.  ``make test-all`` adds the ``slow`` ones: every course notebook run in
JupyterLab, a RISE deck of a course notebook and the handouts of a course notebook.

JupyterLab runs as a learner has it: with the extensions of the learner set alone
(requirements.txt and what it depends on).  Packages only the full set brings, nbgrader and the
``notebook`` package it pulls in, install JupyterLab extensions that fail to load in RISE
slideshows; the test server is configured to leave their front-end and server extensions out
(:func:`learner_jupyter_config`), and nothing is removed from the environment.

Skips and failures: without ``/usr/bin/chromium`` (``make browser-deps`` installs it) or the
``playwright`` package the tests are skipped, saying how to get them, on a developer machine,
but FAIL in CI (``CI=true``).

Environment knobs: ``BROWSER_RUN_TIMEOUT`` (seconds to run all cells of one notebook,
default 600), ``BROWSER_START_TIMEOUT`` (seconds for JupyterLab to answer, default 90).
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RUN_TIMEOUT_S = float(os.environ.get("BROWSER_RUN_TIMEOUT", "600"))
START_TIMEOUT_S = float(os.environ.get("BROWSER_START_TIMEOUT", "90"))
CONTROL_TIMEOUT_S = 30.0  # one redraw after a control moves (the kernel is otherwise idle)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

# JupyterLab user settings for the test server: no autosave, every cell attached to the DOM
# (so panels below the fold exist), and no background requests to the internet.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/extensionmanager-extension/plugin.jupyterlab-settings": {"enabled": False},
}

# Console messages of type "error" that are not failures of the course.  Each entry is a
# substring and the reason it is harmless; keep this list short and justified.
CONSOLE_ALLOWLIST: dict[str, str] = {}
# Requests that leave the local JupyterLab server are blocked (the course works offline, and
# the tests must not depend on the internet).  The only such request expected is the Colab
# badge image in each notebook's header; Chromium logs its blocked load as
# "Failed to load resource", which is therefore ignored for EXTERNAL addresses only (they are
# listed in the per-notebook report).  A failed load from the local server still fails.


# -- prerequisites --------------------------------------------------------------------------
def _unavailable(reason: str) -> None:
    """Skip on a developer machine, fail in CI: CI must really run the browser."""
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def playwright_api() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the Python package 'playwright' is missing: run `make install-dev` "
                     "(never `playwright install`: the tests use Debian's chromium)")
    if not CHROMIUM.is_file():
        _unavailable(f"{CHROMIUM} is missing, so the browser tests are skipped: `make browser-deps` "
                     "installs Debian's chromium (as root or with sudo; CI runs it)")
    with sync_playwright() as api:
        yield api


@pytest.fixture(scope="session")
def browser_context(playwright_api: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Chromium with a fresh profile; closed even when a test fails."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    try:
        context = playwright_api.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            timeout=START_TIMEOUT_S * 1000,
            viewport={"width": 1280, "height": 1400},
        )
    except Exception as error:  # a browser that does not start is a clean failure, not a hang
        pytest.fail(f"Chromium did not start within {START_TIMEOUT_S:.0f} s: {error}", pytrace=False)
    try:
        yield context
    finally:
        context.close()


# -- the learner's JupyterLab ---------------------------------------------------------------
def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def learner_distributions() -> frozenset[str]:
    """Canonical names of the installed distributions the learner set brings: requirements.txt's
    packages and the course itself, and everything they require (markers evaluated here,
    requested extras followed)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    todo = [Requirement(line.split("#")[0]) for line in lines if line.split("#")[0].strip()]
    todo.append(Requirement("init-norm-course"))
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        requirement = todo.pop()
        key = (_canonical(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.distribution(requirement.name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            needed = Requirement(text)
            if needed.marker is None or any(needed.marker.evaluate({"extra": extra})
                                            for extra in (requirement.extras or {""})):
                todo.append(needed)
    return frozenset(name for name, _ in seen)


@functools.cache
def _installed_by() -> tuple[dict[str, str], dict[str, str]]:
    """Which distribution installed each JupyterLab extension (by its name, e.g.
    ``@jupyter/nbgrader``) and each server extension (by module), from their RECORD files."""
    from importlib import metadata

    lab: dict[str, str] = {}
    server: dict[str, str] = {}
    for dist in metadata.distributions():
        owner = _canonical(dist.metadata["Name"] or "")
        for file in dist.files or []:
            parts = file.parts
            if "labextensions" in parts and parts[-1] == "package.json":
                rest = parts[parts.index("labextensions") + 1:]
                name = "/".join(rest[:2]) if rest[0].startswith("@") else rest[0]
                lab.setdefault(name, owner)
            elif "jupyter_server_config.d" in parts and file.suffix == ".json":
                try:
                    config = json.loads(file.locate().read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                for module in config.get("ServerApp", {}).get("jpserver_extensions", {}):
                    server.setdefault(module, owner)
    return lab, server


def learner_jupyter_config(folder: Path) -> dict[str, Any]:
    """Configuration that shows JupyterLab (and RISE, which loads every extension it finds)
    the learner set's extensions only.  The JupyterLab extensions found on Jupyter's data path
    are linked into ``folder`` but for those installed by a distribution outside
    :func:`learner_distributions` (the course's own, linked by ``make install``, is kept), and
    ``folder`` becomes the only place looked in; server extensions of those distributions are
    switched off."""
    from jupyter_core.paths import jupyter_path
    from jupyterlab_server.config import get_federated_extensions

    learner = learner_distributions()
    lab_owner, server_owner = _installed_by()
    folder.mkdir(parents=True, exist_ok=True)
    for name, extension in get_federated_extensions(jupyter_path("labextensions")).items():
        if lab_owner.get(name, "init-norm-course") not in learner:
            continue
        link = folder / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(extension["ext_path"], target_is_directory=True)
    off = {module: False for module, owner in server_owner.items() if owner not in learner}
    return {"LabServerApp": {"labextensions_path": [str(folder)], "extra_labextensions_path": []},
            "ServerApp": {"jpserver_extensions": off}}


def test_the_test_lab_has_the_learner_sets_extensions_only(tmp_path: Path) -> None:
    """What the browser tests rely on: the course's widget manager, RISE and the course's bridge
    are there; nbgrader's and the notebook package's extensions (the grading extra) are not."""
    config = learner_jupyter_config(tmp_path / "labextensions")
    folder = tmp_path / "labextensions"
    linked = {str(link.relative_to(folder)) for entry in folder.iterdir()
              for link in (entry.iterdir() if entry.name.startswith("@") else [entry])
              if (link / "package.json").is_file()}
    assert {"@jupyter-widgets/jupyterlab-manager", "jupyterlab-rise",
            "@init-norm-course/rise-widgets-bridge"} <= linked, linked
    learner = learner_distributions()
    assert {"jupyterlab", "torch", "ipywidgets", "jupyterlab-rise", "init-norm-course"} <= learner
    assert not {"nbgrader", "pytest", "nbval", "notebook"} & learner
    assert not any(name.startswith(("@jupyter/nbgrader", "@jupyter-notebook")) for name in linked), linked
    lab_owner, server_owner = _installed_by()
    if "nbgrader" in set(server_owner.values()):  # the full set: its server extensions are switched off
        nbgrader_modules = {m for m, owner in server_owner.items() if owner == "nbgrader"}
        assert nbgrader_modules and all(config["ServerApp"]["jpserver_extensions"][m] is False
                                        for m in nbgrader_modules)
    assert not any(config["ServerApp"]["jpserver_extensions"].get(m) is False
                   for m, owner in server_owner.items() if owner in {"jupyterlab", "jupyterlab-rise"})


# -- JupyterLab server ----------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LabServer:
    """A JupyterLab process serving ``root``; :meth:`stop` kills it and its kernels."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.token = secrets.token_hex(24)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "jupyterlab.log"
        settings = home / "lab-settings"
        for name, values in LAB_SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        config_dir = home / "config"
        config_dir.mkdir(parents=True, exist_ok=True)
        (config_dir / "jupyter_server_config.json").write_text(
            json.dumps(learner_jupyter_config(home / "labextensions")))
        env = {
            # a learner's lab: the machine's own CPU code paths, as everywhere in the tests
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(config_dir),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
            "IPYTHONDIR": str(home / "ipython"),
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        }
        command = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
            command.append("--allow-root")
        self._log = self.log_path.open("wb")
        # Own process group, so stop() can take everything the server started with it.
        self.process = subprocess.Popen(command, cwd=root, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def api(self, path: str, method: str = "GET", timeout: float = 5.0) -> Any:
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        try:
            for kernel in self.api("/api/kernels"):
                self.api(f"/api/kernels/{kernel['id']}", method="DELETE", timeout=10.0)
        except Exception:
            pass

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.process.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                self.api("/api/status", timeout=2.0)
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.5)
        raise TimeoutError(f"JupyterLab did not answer on port {self.port} within {timeout:.0f} s:\n"
                           f"{self.log_tail()}")

    def stop(self) -> None:
        """Shut kernels down, stop the server, then kill whatever is left (kernels run in
        their own sessions, so they are collected by PID, not only by process group)."""
        leftovers: list[Any] = []
        try:
            import psutil

            leftovers = psutil.Process(self.process.pid).children(recursive=True)
        except Exception:
            pass
        if self.process.poll() is None:
            self.shutdown_kernels()
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            if self.process.poll() is None:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=10)
        for child in leftovers:
            try:
                child.kill()
            except Exception:
                pass
        self._log.close()


# -- the panel gallery ----------------------------------------------------------------------
GALLERY = "panel_gallery.ipynb"
#: The gallery with one panel, for the RISE and handout smoke tests (quick to run).
SMALL_GALLERY = "panel_gallery_small.ipynb"
SMALL_GALLERY_PANELS = ("start.gaussian",)
#: A course notebook with formulas and panels: its RISE deck, and its handouts in the slow tier.
LATEX_NOTEBOOK = "04_attention_scaling.ipynb"
#: The course notebook whose RISE deck gets a slider dragged in the slow tier (the gallery's, always).
LIVE_NOTEBOOK = "00_start_here.ipynb"


def write_panel_gallery(path: Path, names: tuple[str, ...] | None = None) -> Path:
    """A small course-style notebook that shows every registered panel (or those ``names``),
    one per subslide, under a markdown cell with a formula: the browser, RISE and handout smoke
    tests run it instead of whole course notebooks."""
    from helpers.widgets import all_panels
    from tools.notebook_tools import new_course_notebook

    cells: list[tuple[str, str, dict]] = [
        ("md", "# Panel gallery\n\nEvery interactive panel of the course, at its defaults. "
               "Kaiming's rule: $\\mathrm{Var}(W) = \\dfrac{2}{n_{\\text{in}}}$.", {}),
        ("code", "from helpers.widgets import all_panels\n\npanels = all_panels()",
         {"slideshow": {"slide_type": "skip"}}),
    ]
    for name in sorted(all_panels()) if names is None else names:
        cells.append(("md", f"## {name}", {}))
        cells.append(("code", f"panels[{name!r}]()", {"slideshow": {"slide_type": "subslide"}}))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_course_notebook(path.name, cells), path)
    return path


@pytest.fixture(scope="session")
def lab(playwright_api: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """JupyterLab on a copy of notebooks/; stopped (ports freed) even when tests fail."""
    served = tmp_path_factory.mktemp("lab-root")
    for notebook in [*NOTEBOOKS, ROOT / "notebooks" / "rise.css"]:
        shutil.copy2(notebook, served / notebook.name)
    write_panel_gallery(served / GALLERY)
    write_panel_gallery(served / SMALL_GALLERY, SMALL_GALLERY_PANELS)
    server = LabServer(served, tmp_path_factory.mktemp("lab-home"))
    try:
        server.wait_ready(START_TIMEOUT_S)
    except Exception as error:
        server.stop()
        pytest.fail(str(error), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


# -- page helpers ---------------------------------------------------------------------------
JS_FIND_NOTEBOOK = """
(path) => {
  const app = window.jupyterapp;
  if (!app) return false;
  for (const widget of app.shell.widgets('main')) {
    if (widget.context && widget.context.path === path && widget.content
        && widget.content.widgets && widget.content.widgets.length > 0) {
      window.__panel = widget;
      return true;
    }
  }
  return false;
}
"""

JS_RUN_ALL = """
async (startTimeoutMs) => {
  window.__runAll = null;
  const app = window.jupyterapp;
  const panel = window.__panel;
  try {
    // Commands act on the active notebook: make sure it is this one.
    app.shell.activateById(panel.id);
    await panel.context.ready;
    await panel.sessionContext.ready;
    // Wait for a live, idle kernel: running cells before it exists silently does nothing.
    const start = Date.now();
    const kernel = () => panel.sessionContext.session && panel.sessionContext.session.kernel;
    while (!(kernel() && kernel().status === 'idle')) {
      if (Date.now() - start > startTimeoutMs) {
        window.__runAll = {done: true, ok: false, error: 'the kernel did not start (status: '
          + panel.sessionContext.kernelDisplayStatus + '); is the "python3" kernel installed?'};
        return;
      }
      await new Promise(resolve => setTimeout(resolve, 250));
    }
    const ok = await app.commands.execute('notebook:run-all-cells');
    window.__runAll = {done: true, ok: ok !== false};
  } catch (error) {
    window.__runAll = {done: true, ok: false, error: String(error)};
  }
}
"""

JS_OUTPUT_PROBLEMS = """
() => {
  const panel = window.__panel;
  const problems = [];
  let widgetOutputs = 0;
  const cells = panel.content.model.cells;
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code') continue;
    const source = cell.sharedModel.getSource().split('\\n')[0].slice(0, 60);
    for (const output of cell.outputs.toJSON()) {
      if (output.output_type === 'error') {
        problems.push(`cell ${i} (${source}): ${output.ename}: ${output.evalue}`);
      } else if (output.output_type === 'stream' && output.name === 'stderr') {
        const text = Array.isArray(output.text) ? output.text.join('') : output.text;
        if (/Traceback|Error\\b/.test(text)) problems.push(`cell ${i} (${source}) stderr: ${text.slice(0, 400)}`);
      }
      if (output.data && output.data['""" + WIDGET_VIEW + """']) widgetOutputs += 1;
    }
    if (cell.executionCount === null) problems.push(`cell ${i} (${source}) was not executed`);
  }
  return {problems, widgetOutputs};
}
"""

JS_PROGRESS = """
() => {
  const panel = window.__panel;
  const cells = panel.content.model.cells;
  let done = 0, total = 0, waiting = null;
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code') continue;
    total += 1;
    if (cell.executionCount !== null) done += 1;
    else if (waiting === null) waiting = `cell ${i} (${cell.sharedModel.getSource().split('\\n')[0].slice(0, 60)})`;
  }
  return `${done} of ${total} code cells ran; kernel ${panel.sessionContext.kernelDisplayStatus}`
    + (waiting ? `; still at ${waiting}` : '');
}
"""

# Panels: an ipywidgets VBox holding the panel's image (Panel.widget()).  Controls are
# tagged with data attributes so Python can address them one by one.
JS_FIND_PANELS = """
() => {
  const panels = [];
  const images = document.querySelectorAll('.jp-Notebook .jp-OutputArea-output img.widget-image');
  images.forEach((img, p) => {
    const box = img.closest('.widget-vbox');
    if (!box) return;
    box.setAttribute('data-test-panel', String(p));
    img.setAttribute('data-test-image', String(p));
    const controls = [];
    box.querySelectorAll('.widget-slider, .widget-dropdown, .widget-checkbox, .widget-toggle-buttons')
      .forEach((el, c) => {
        el.setAttribute('data-test-control', `${p}-${c}`);
        const label = Array.from(el.querySelectorAll('.widget-label, .widget-label-basic, label'))
          .find(l => l.textContent.replace(/[\\u200b\\s]/g, ''));
        let kind = 'slider';
        if (el.classList.contains('widget-dropdown')) kind = 'dropdown';
        else if (el.classList.contains('widget-checkbox')) kind = 'checkbox';
        else if (el.classList.contains('widget-toggle-buttons')) kind = 'toggle';
        controls.push({id: `${p}-${c}`, kind, label: label ? label.textContent.trim() : ''});
      });
    const title = box.querySelector('.widget-html b');
    panels.push({id: String(p), title: title ? title.textContent.trim() : '', controls});
  });
  return panels;
}
"""

JS_IMAGE_DIGEST = """
async (img) => {
  if (!img.src) return '';
  const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, b => b.toString(16).padStart(2, '0')).join('') + ':' + bytes.length;
}
"""

JS_PANEL_ERRORS = """
() => Array.from(document.querySelectorAll(
    '.jp-Notebook pre.panel-error, .jp-Notebook .jupyter-widgets-error-widget, .jp-Notebook .widget-error'))
  .map(el => el.textContent.trim().slice(0, 400))
"""


def _image_digest(page: Any, panel_id: str) -> str:
    return page.locator(f'img[data-test-image="{panel_id}"]').evaluate(JS_IMAGE_DIGEST)


def _move_control(page: Any, control: dict[str, str]) -> str:
    """Move one control the way a student would; returns what was done."""
    root = page.locator(f'[data-test-control="{control["id"]}"]')
    if not root.is_visible():
        return "hidden control, not moved"
    root.scroll_into_view_if_needed()
    if control["kind"] == "slider":
        handle = root.locator(".noUi-handle").first
        now, top = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
        key = "Home" if now is not None and top is not None and float(now) >= float(top) else "End"
        handle.focus()
        handle.press(key)
        return f"pressed {key} on the slider handle"
    if control["kind"] == "dropdown":
        select = root.locator("select")
        current = select.input_value()
        values = [o for o in select.locator("option").evaluate_all("os => os.map(o => o.value)")
                  if o != current]
        if not values:
            return "dropdown has a single option"
        select.select_option(values[-1])
        return f"selected option {values[-1]!r}"
    if control["kind"] == "checkbox":
        root.locator("input[type=checkbox]").click()
        return "toggled the checkbox"
    buttons = root.locator("button:not(.mod-active)")
    if buttons.count() == 0:
        return "no other toggle button"
    buttons.last.click()
    return "clicked another toggle button"


def _wait_for_change(page: Any, panel_id: str, before: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    after = before
    while time.monotonic() < deadline:
        after = _image_digest(page, panel_id)
        if after != before or page.evaluate(JS_PANEL_ERRORS):
            return after
        page.wait_for_timeout(200)
    return after


def _console_problem(message: Any, local: str) -> bool:
    """Whether a console message of type error counts as a failure (see CONSOLE_ALLOWLIST)."""
    text, url = message.text, (message.location or {}).get("url", "")
    if text.startswith("Failed to load resource") and url and not url.startswith(local):
        return False  # a blocked external request (offline by design), reported separately
    return not any(fragment in text for fragment in CONSOLE_ALLOWLIST)


def _block_external(page: Any, local: str, blocked: list[str]) -> None:
    def handle(route: Any) -> None:
        url = route.request.url
        if url.startswith((local, "data:", "blob:", "file:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.route("**/*", handle)


# -- the tests ------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_notebook_runs_and_panels_respond(notebook: Path, lab: LabServer, browser_context: Any) -> None:
    _run_all_and_move_every_control(notebook, lab, browser_context)


def test_panel_gallery_runs_and_every_panel_responds(lab: LabServer, browser_context: Any) -> None:
    """Every registered panel, live in JupyterLab: each control moved, the figure redrawn."""
    from helpers.widgets import all_panels

    panels = _run_all_and_move_every_control(Path(GALLERY), lab, browser_context)
    assert panels == len(all_panels()), f"{panels} of {len(all_panels())} registered panels rendered"


def _run_all_and_move_every_control(notebook: Path, lab: LabServer, browser_context: Any) -> int:
    """Run all cells of ``notebook`` (served by ``lab``) in JupyterLab, then move every control
    of every panel; fails on any error.  Returns the number of panels."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser_context.new_page()
    page.set_default_timeout(CONTROL_TIMEOUT_S * 1000)
    console_errors: list[str] = []
    blocked: list[str] = []
    _block_external(page, lab.url, blocked)
    page.on("console", lambda msg: console_errors.append(
        f"console.{msg.type}: {msg.text} ({(msg.location or {}).get('url', '')})")
        if msg.type == "error" and _console_problem(msg, lab.url) else None)
    page.on("pageerror", lambda error: console_errors.append(f"uncaught exception: {error}"))
    try:
        # ?reset: a clean workspace, so no notebook of an earlier test is restored.
        page.goto(f"{lab.url}/lab/tree/{notebook.name}?reset&token={lab.token}",
                  timeout=START_TIMEOUT_S * 1000)
        page.wait_for_function(JS_FIND_NOTEBOOK, arg=notebook.name, timeout=START_TIMEOUT_S * 1000)
        page.evaluate(f"() => {{ ({JS_RUN_ALL})({START_TIMEOUT_S * 1000}); }}")
        try:
            page.wait_for_function("() => window.__runAll && window.__runAll.done",
                                   timeout=RUN_TIMEOUT_S * 1000, polling=500)
        except Exception:
            pytest.fail(f"{notebook.name}: 'Run All Cells' did not finish within {RUN_TIMEOUT_S:.0f} s "
                        f"({page.evaluate(JS_PROGRESS)}); set BROWSER_RUN_TIMEOUT to allow more",
                        pytrace=False)
        run = page.evaluate("() => window.__runAll")
        outputs = page.evaluate(JS_OUTPUT_PROBLEMS)
        assert run["ok"] and not outputs["problems"], (
            f"{notebook.name}: running all cells in JupyterLab failed:\n  "
            + "\n  ".join(outputs["problems"] or [run.get("error", "run-all reported failure")])
        )
        # Every widget output must be rendered by the browser (not "Loading widget..." or
        # an error box): wait for the panel images to appear.
        if outputs["widgetOutputs"]:
            page.wait_for_function(
                "() => document.querySelectorAll('.jp-Notebook img.widget-image').length > 0",
                timeout=CONTROL_TIMEOUT_S * 1000,
            )
        panels = page.evaluate(JS_FIND_PANELS)
        assert len(panels) >= (1 if outputs["widgetOutputs"] else 0), (
            f"{notebook.name}: {outputs['widgetOutputs']} widget output(s) but no panel rendered")

        report: list[str] = []
        for panel in panels:
            name = panel["title"] or f"panel {panel['id']}"
            assert panel["controls"], f"{notebook.name}: {name!r} shows no slider or dropdown"
            changed = []
            for control in panel["controls"]:
                before = _image_digest(page, panel["id"])
                action = _move_control(page, control)
                after = _wait_for_change(page, panel["id"], before, CONTROL_TIMEOUT_S)
                errors = page.evaluate(JS_PANEL_ERRORS)
                assert not errors, (
                    f"{notebook.name}: {name!r}: after control {control['label'] or control['id']!r} "
                    f"({action}) the panel shows an error:\n  " + "\n  ".join(errors))
                if after != before:
                    changed.append(control["label"] or control["id"])
                report.append(f"{name} / {control['label'] or control['id']}: {action}, "
                              f"figure {'changed' if after != before else 'UNCHANGED'}")
            assert changed, (
                f"{notebook.name}: {name!r}: moving its controls never changed the figure "
                f"(the image bytes stayed identical for {CONTROL_TIMEOUT_S:.0f} s after each move):\n  "
                + "\n  ".join(report))
        if panels:
            page.locator('[data-test-panel="0"]').scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / f"{notebook.stem}.png"))
        report += [f"blocked external request: {url}" for url in sorted(set(blocked))]
        (ARTIFACTS / f"{notebook.stem}.txt").write_text("\n".join(report) + "\n")
        late = page.evaluate(JS_OUTPUT_PROBLEMS)["problems"]
        assert not late, f"{notebook.name}: error output after moving the controls:\n  " + "\n  ".join(late)
        assert not console_errors, (f"{notebook.name}: JavaScript errors in the browser console:\n  "
                                    + "\n  ".join(console_errors))
        return len(panels)
    finally:
        if not (ARTIFACTS / f"{notebook.stem}.png").exists():
            try:
                page.screenshot(path=str(ARTIFACTS / f"{notebook.stem}.png"))
            except Exception:
                pass
        page.close()
        lab.shutdown_kernels()  # a kernel left running would slow down the next notebook


def test_html_export_shows_static_figures(browser_context: Any, tmp_path: Path) -> None:
    """The rendered notebook (no kernel, e.g. on GitHub or as a handout) shows its figures."""
    from nbconvert import HTMLExporter

    with_figures = [n for n in NOTEBOOKS
                    if any("image/png" in o.get("data", {}) for c in nbformat.read(n, as_version=4).cells
                           if c.cell_type == "code" for o in c.outputs)]
    assert with_figures, "no notebook has a stored static figure"
    notebook = with_figures[0]
    nb = nbformat.read(notebook, as_version=4)
    expected = [o["data"]["image/png"].replace("\n", "")
                for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    body, _ = HTMLExporter().from_notebook_node(nb)
    for png in expected:
        assert f"data:image/png;base64,{png}" in body.replace("\n", ""), (
            f"{notebook.name}: a stored figure is missing from the HTML export")
    html_path = tmp_path / f"{notebook.stem}.html"
    html_path.write_text(body)

    page = browser_context.new_page()
    try:
        # Offline: the export's CDN scripts (require.js, MathJax) are blocked, figures are inline.
        _block_external(page, "file:", [])
        page.goto(html_path.as_uri())
        page.wait_for_load_state("load")
        sizes = page.evaluate("""() => Array.from(document.images)
            .filter(img => img.src.startsWith('data:image/png'))
            .map(img => [img.complete, img.naturalWidth, img.naturalHeight])""")
        assert len(sizes) >= len(expected), f"{notebook.name}: {len(sizes)} of {len(expected)} figures in the page"
        assert all(done and w > 100 and h > 100 for done, w, h in sizes), (
            f"{notebook.name}: a figure did not load in the HTML export: {sizes}")
        (ARTIFACTS / "html-export").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "html-export" / f"{notebook.stem}.png"), full_page=True)
    finally:
        page.close()


JS_MATHJAX_IDLE = """() => window.MathJax && MathJax.Hub && MathJax.Hub.queue
    && MathJax.Hub.queue.pending === 0 && MathJax.Hub.queue.running === 0"""


@pytest.mark.parametrize("notebook", [SMALL_GALLERY, pytest.param(LATEX_NOTEBOOK, marks=pytest.mark.slow)])
def test_handout_pages_render_offline(browser_context: Any, tmp_path: Path, notebook: str) -> None:
    """The handouts of ``make html`` and ``make slides`` work from the build folder alone:
    a notebook with formulas and widget panels (the panel gallery, and a course notebook in
    the slow tier), executed with its widget state and exported
    by ``tools.handouts.export`` (which copies the committed ``tools/vendor``), opens with
    every non-file request blocked.  No request asks for a file the build folder lacks (the
    lazily loaded MathJax fonts included), MathJax renders the LaTeX, the widget
    HTML manager renders the saved widget state, and the reveal.js deck starts.

    The requests that leave the folder (the Colab badge, the Google Fonts of reveal.js's theme,
    the template's mermaid import) are blocked and listed in ``handouts/<kind>.txt``.
    """
    from tools.handouts import export
    from tools.notebook_tools import execute

    source = (write_panel_gallery(tmp_path / "source" / notebook, SMALL_GALLERY_PANELS)
              if notebook == SMALL_GALLERY else ROOT / "notebooks" / notebook)
    executed = tmp_path / "executed" / notebook
    execute(source, executed, widget_state=True)
    nb = nbformat.read(executed, as_version=4)
    assert nb.metadata.get("widgets"), f"{notebook}: no widget state was saved"
    title = nb.cells[0].source.splitlines()[0][2:]
    build = tmp_path / "build"
    artifacts = ARTIFACTS / "handouts" / Path(notebook).stem
    artifacts.mkdir(parents=True, exist_ok=True)
    for kind in ("html", "slides"):
        page_path = export(kind, [executed], build / kind, build / "vendor")[0]
        page = browser_context.new_page()
        blocked: list[str] = []
        missing: list[str] = []
        errors: list[str] = []
        _block_external(page, "file:", blocked)
        # each page's listeners write to that page's lists (bound now, not looked up at call time)
        page.on("requestfailed", lambda request, missing=missing: missing.append(
            f"{request.url} ({request.failure})") if request.url.startswith("file:") else None)
        page.on("response", lambda response, missing=missing: missing.append(
            f"{response.url} (status {response.status})") if response.status >= 400 else None)
        page.on("pageerror", lambda error, errors=errors: errors.append(f"uncaught exception: {error}"))
        try:
            page.goto(page_path.as_uri(), timeout=START_TIMEOUT_S * 1000)
            page.wait_for_load_state("load")
            page.wait_for_selector(".MathJax_CHTML, mjx-container", state="attached",
                                   timeout=CONTROL_TIMEOUT_S * 1000)
            page.wait_for_function(JS_MATHJAX_IDLE, timeout=CONTROL_TIMEOUT_S * 1000)
            page.wait_for_selector(".jupyter-widgets .widget-slider", state="attached",
                                   timeout=CONTROL_TIMEOUT_S * 1000)
            if kind == "slides":
                first = page.wait_for_selector(".reveal .slides section.present",
                                               timeout=CONTROL_TIMEOUT_S * 1000)
                assert first.is_visible(), "the first slide of the deck is not shown"
                page.wait_for_function("t => document.querySelector('.reveal .slides section.present')"
                                       ".innerText.includes(t)", arg=title, timeout=CONTROL_TIMEOUT_S * 1000)
                page.keyboard.press("ArrowRight")  # the next slide re-renders its formulas
                page.wait_for_function(JS_MATHJAX_IDLE, timeout=CONTROL_TIMEOUT_S * 1000)
            page.evaluate("() => document.fonts.ready.then(() => true)")  # lazily loaded fonts
            page.wait_for_timeout(500)
            page.screenshot(path=str(artifacts / f"{kind}.png"))
            rendered = page.evaluate("""() => ({
                math: document.querySelectorAll('.MathJax_CHTML, mjx-container').length,
                mathErrors: document.querySelectorAll('.MathJax_Error, merror').length,
                sliders: document.querySelectorAll('.jupyter-widgets .widget-slider').length,
                widgetErrors: document.querySelectorAll('.jupyter-widgets-error-widget').length})""")
        finally:
            (artifacts / f"{kind}.txt").write_text(
                "".join(f"blocked external request: {url}\n" for url in sorted(set(blocked))))
            page.close()
        assert not missing, (f"{kind}: the page asked for files missing from the build folder:\n  "
                             + "\n  ".join(missing))
        assert not errors, f"{kind}: JavaScript errors:\n  " + "\n  ".join(errors)
        assert rendered["math"] > 0 and not rendered["mathErrors"], (
            f"{kind}: MathJax did not render: {rendered}")
        assert rendered["sliders"] > 0 and not rendered["widgetErrors"], (
            f"{kind}: the saved widget state was not rendered: {rendered}")


# -- RISE slideshows -------------------------------------------------------------------------
# The present slide itself, not the horizontal stack that holds its subslides.
PRESENT = ".reveal .slides section.present:not(.stack)"
# The RISE app lacks @jupyterlab/console, which the ipywidgets 8 widget manager asks for
# (upstream jupyterlab-contrib/rise#119); the course's labextension provides it
# (labextension/README.md).  Without it this error appears and panels fall back to a PNG.
WIDGET_MANAGER_FAILURE = "Shared module @jupyterlab/console doesn't exist"
# Console errors of the RISE app (jupyterlab-rise 0.43.1) that are not failures of the course,
# each with its reason.  Anything else fails the RISE tests.
RISE_CONSOLE_ALLOWLIST: dict[str, str] = {
    "RangeError: Maximum call stack size exceeded": (
        "raised inside jupyterlab-rise's own bundle while it builds the deck: the stack is in "
        "@jupyter/web-components' design-token palette code (sortColorScaleStops, "
        "reflectToCSS), a known FAST DesignToken recursion (microsoft/fast#6464).  It also "
        "happens with jupyterlab-rise as the only extension installed, in a plain headless "
        "Chromium; the deck, its formulas and its widgets render completely"),
    ".css' because its MIME type ('text/html')": (
        "RISE asks for optional stylesheets next to the notebook (rise.css, which the course "
        "ships, and <notebook>.css, which it does not need); the missing one answers 404"),
}


def _rise_console_problems(errors: list[str]) -> list[str]:
    return [e for e in errors if not any(fragment in e for fragment in RISE_CONSOLE_ALLOWLIST)]


def _rise_test_page(browser_context: Any, lab: LabServer) -> tuple[Any, list[str]]:
    """A page that reaches only the local server, and the list its console errors go to."""
    errors: list[str] = []
    page = browser_context.new_page()
    _block_external(page, lab.url, [])
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and _console_problem(msg, lab.url) else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught exception: {error}"))
    return page, errors


def _open_in_lab(page: Any, lab: LabServer, notebook: str) -> None:
    page.goto(f"{lab.url}/lab/tree/{notebook}?reset&token={lab.token}", timeout=START_TIMEOUT_S * 1000)
    page.wait_for_function(JS_FIND_NOTEBOOK, arg=notebook, timeout=START_TIMEOUT_S * 1000)


def _open_in_rise(page: Any, lab: LabServer, notebook: str) -> Any:
    page.goto(f"{lab.url}/rise/{notebook}?token={lab.token}", timeout=START_TIMEOUT_S * 1000)
    return page.wait_for_selector(PRESENT, timeout=START_TIMEOUT_S * 1000)


def test_rise_slideshow_and_latex_render(lab: LabServer, browser_context: Any) -> None:
    """LaTeX renders in the notebook view (no console error), and RISE presents a notebook:
    its first slide shows the title and the formulas render (the incompatible
    jupyterlab-mathjax3 extension is disabled by the install step).  The RISE app's console
    shows no error beyond RISE_CONSOLE_ALLOWLIST (all of them: rise_console.txt)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    title = nbformat.read(ROOT / "notebooks" / LATEX_NOTEBOOK, as_version=4).cells[0].source.splitlines()[0][2:]
    page, errors = _rise_test_page(browser_context, lab)
    try:
        _open_in_lab(page, lab, LATEX_NOTEBOOK)
        page.wait_for_selector(".jp-Notebook mjx-container", timeout=CONTROL_TIMEOUT_S * 1000)
        assert not errors, "JavaScript errors in the notebook view:\n  " + "\n  ".join(errors)

        first = _open_in_rise(page, lab, LATEX_NOTEBOOK)
        page.wait_for_function(f"t => document.querySelector('{PRESENT}').innerText.includes(t)",
                               arg=title, timeout=CONTROL_TIMEOUT_S * 1000)
        assert first.is_visible(), "the first slide of the RISE deck is not shown"
        page.wait_for_selector(".reveal mjx-container", state="attached", timeout=CONTROL_TIMEOUT_S * 1000)
        page.wait_for_timeout(2000)  # errors of the deck's late rendering steps
        page.screenshot(path=str(ARTIFACTS / "rise_first_slide.png"))
        problems = _rise_console_problems(errors)
        assert not problems, "JavaScript errors in the RISE slideshow:\n  " + "\n  ".join(problems)
    finally:
        (ARTIFACTS / "rise_console.txt").write_text("\n".join(errors) + "\n")
        page.close()
        lab.shutdown_kernels()


@pytest.mark.parametrize("notebook", [SMALL_GALLERY, pytest.param(LIVE_NOTEBOOK, marks=pytest.mark.slow)])
def test_rise_slideshow_sliders_are_live(lab: LabServer, browser_context: Any, notebook: str) -> None:
    """What an instructor does: run the notebook in JupyterLab, open it in RISE (same kernel),
    step to the panel's slide with the presenter's "next" key and drag the slider with the
    mouse.  The widget manager loads in RISE and the figure redraws."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page, errors = _rise_test_page(browser_context, lab)
    try:
        _open_in_lab(page, lab, notebook)
        page.evaluate(f"() => {{ ({JS_RUN_ALL})({START_TIMEOUT_S * 1000}); }}")
        page.wait_for_function("() => window.__runAll && window.__runAll.done",
                               timeout=RUN_TIMEOUT_S * 1000, polling=500)
        problems = page.evaluate(JS_OUTPUT_PROBLEMS)["problems"]
        assert page.evaluate("() => window.__runAll.ok") and not problems, problems
        page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        page.wait_for_timeout(1000)

        _open_in_rise(page, lab, notebook)
        cells = len(nbformat.read(lab.root / notebook, as_version=4).cells)
        for _ in range(cells):  # a deck has at most one slide per cell
            if page.locator(f"{PRESENT} img.widget-image").count():
                break
            page.keyboard.press("Space")  # next slide or subslide
            page.wait_for_timeout(300)
        image = page.locator(f"{PRESENT} img.widget-image").first
        try:
            image.wait_for(state="visible", timeout=CONTROL_TIMEOUT_S * 1000)
        except Exception:
            failures = [e for e in errors if WIDGET_MANAGER_FAILURE in e]
            pytest.fail(f"no live panel on any slide of the RISE deck of {notebook}"
                        + (f"; the widget manager did not load: {failures[0].splitlines()[0]} (is the course's "
                           "labextension installed? `jupyter labextension list`)" if failures else ""),
                        pytrace=False)
        before = image.evaluate(JS_IMAGE_DIGEST)

        handle = page.locator(f"{PRESENT} .widget-slider .noUi-handle").first
        track = page.locator(f"{PRESENT} .widget-slider .noUi-base").first
        # The slide transition moves the slider while it runs: wait until it stands still.
        start, deadline = None, time.monotonic() + CONTROL_TIMEOUT_S
        while time.monotonic() < deadline:
            page.wait_for_timeout(300)
            box = handle.bounding_box()
            if box is not None and box == start:
                break
            start = box
        end = track.bounding_box()
        assert start and end, "the panel's slider is not laid out on the slide"
        y = start["y"] + start["height"] / 2
        page.mouse.move(start["x"] + start["width"] / 2, y)
        page.mouse.down()
        page.mouse.move(end["x"] + 0.8 * end["width"], y, steps=8)
        page.mouse.up()
        deadline = time.monotonic() + CONTROL_TIMEOUT_S
        while image.evaluate(JS_IMAGE_DIGEST) == before and time.monotonic() < deadline:
            page.wait_for_timeout(200)
        page.screenshot(path=str(ARTIFACTS / f"rise_live_panel_{Path(notebook).stem}.png"))
        assert image.evaluate(JS_IMAGE_DIGEST) != before, "dragging the slider in RISE did not redraw the figure"
        problems = _rise_console_problems(errors)
        assert not problems, "JavaScript errors in the RISE slideshow:\n  " + "\n  ".join(problems)
    finally:
        page.close()
        lab.shutdown_kernels()
