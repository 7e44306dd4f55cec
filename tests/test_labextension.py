"""The prebuilt labextension that keeps sliders live in RISE slides (labextension/README.md).

What it does in a browser is tested by tests/test_browser.py (a slider moved in a RISE slide
redraws its figure); these tests check that the committed build matches its sources, that it
offers @jupyterlab/console, and that the install step put it where JupyterLab finds it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import helpers

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "labextension"
PREBUILT = SOURCE / "prebuilt"
NAME = "@init-norm-course/rise-widgets-bridge"


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_paths_hook_points_at_the_prebuilt_extension() -> None:
    (entry,) = helpers._jupyter_labextension_paths()
    assert entry["dest"] == NAME
    assert Path(entry["src"]) == PREBUILT
    assert _json(PREBUILT / "package.json")["name"] == NAME


def test_prebuilt_matches_its_sources() -> None:
    source, built = _json(SOURCE / "package.json"), _json(PREBUILT / "package.json")
    for key in ("name", "version", "dependencies", "jupyterlab"):
        expected = source[key]
        if key == "jupyterlab":  # the builder adds the _build section to what it copies
            assert {k: v for k, v in built[key].items() if k != "_build"} == expected
        else:
            assert built[key] == expected, f"prebuilt/package.json {key} differs: run `make labextension`"
    for name in ("install.json", "LICENSE"):
        assert (PREBUILT / name).read_bytes() == (SOURCE / name).read_bytes()
    assert (PREBUILT / "static" / built["jupyterlab"]["_build"]["load"].removeprefix("static/")).is_file()


def test_prebuilt_offers_jupyterlab_console_to_other_extensions() -> None:
    built = _json(PREBUILT / "package.json")
    remote_entry = (PREBUILT / built["jupyterlab"]["_build"]["load"]).read_text(encoding="utf-8")
    # webpack registers each package it shares as  register("<name>", "<version>", ...).
    offered = dict(re.findall(r'\("(@[\w.-]+/[\w.-]+)","(\d+\.\d+\.\d+)"', remote_entry))
    assert offered.get("@jupyterlab/console") == "4.3.4", offered
    # The RISE app provides everything else: nothing but the console is bundled.
    licenses = _json(PREBUILT / "static" / "third-party-licenses.json")["packages"]
    assert [p["name"] for p in licenses] == ["@jupyterlab/console"]


@pytest.mark.slow  # `jupyter labextension list` takes ~20 s; the RISE smoke test shows the extension at work
@pytest.mark.skipif(not (Path(sys.prefix) / "share" / "jupyter" / "labextensions").is_dir(),
                    reason="no JupyterLab installed in this environment")
def test_installed_and_enabled_in_this_environment() -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    listing = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True, text=True, env=env, check=True,
    )
    text = re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr)  # drop colours
    line = next((row for row in text.splitlines() if NAME in row), "")
    assert "enabled" in line and "OK" in line, (
        f"{NAME} is not installed and enabled (run `make install`):\n{text}")
