"""tools/torch_index.py: which index pip takes torch from, on stand-in machines and indexes.

The choice is tested on made-up inputs (system, GPU present or not, ``TORCH_INDEX``), the GPU
detection on a stand-in ``nvidia-smi`` and ``/proc`` entry, and what pip then does with the
options on stand-in indexes built here (file:// simple indexes holding tiny wheels named
``torch``): the CPU index's ``X.Y.Z+cpu`` wins over PyPI's ``X.Y.Z`` under the pin of
constraints.txt, and an index that cannot be reached leaves the install working.  PyTorch's
real index is never contacted.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tools import torch_index
from tools.torch_index import CPU_INDEX, IndexChoice, choose, has_nvidia_gpu

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("system", "gpu", "expected"), [
    ("Linux", False, CPU_INDEX),
    ("Linux", True, None),
    ("Darwin", False, None),
    ("Windows", False, None),
    ("Windows", True, None),
])
def test_automatic_choice(system: str, gpu: bool, expected: str | None) -> None:
    for override in (None, "", "  "):  # unset and empty mean automatic
        assert choose(system, gpu, override).url == expected


@pytest.mark.parametrize(("override", "expected"), [
    ("cpu", CPU_INDEX),
    ("CPU", CPU_INDEX),
    ("pypi", None),
    ("cu128", "https://download.pytorch.org/whl/cu128"),
    ("rocm6.4", "https://download.pytorch.org/whl/rocm6.4"),
    ("https://mirror.example/torch/", "https://mirror.example/torch"),
    ("file:///srv/wheels/simple", "file:///srv/wheels/simple"),
])
def test_the_override_wins_on_every_machine(override: str, expected: str | None) -> None:
    for system, gpu in [("Linux", False), ("Linux", True), ("Darwin", False), ("Windows", False)]:
        choice = choose(system, gpu, override)
        assert choice.url == expected
        assert "TORCH_INDEX" in choice.reason


def test_pip_args() -> None:
    assert IndexChoice(None, "").pip_args() == []
    assert IndexChoice(CPU_INDEX, "").pip_args() == ["--extra-index-url", CPU_INDEX]
    assert "TORCH_INDEX=pypi" in choose("Linux", False).reason  # the GPU path is named where the CPU one is taken


@pytest.mark.parametrize("override", ["gpu", "cuda", "cu12", "ftp://x", "cpu please"])
def test_an_override_not_understood_is_refused_naming_the_variable(override: str) -> None:
    with pytest.raises(ValueError, match=r"TORCH_INDEX=.* is not understood"):
        choose("Linux", False, override)


def test_bad_argument_types() -> None:
    with pytest.raises(TypeError, match="system must be a str"):
        choose(None, False)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="gpu must be a bool"):
        choose("Linux", 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="override must be a str"):
        choose("Linux", False, 3)  # type: ignore[arg-type]


def test_gpu_detection_on_stand_ins(tmp_path: Path) -> None:
    absent = tmp_path / "no-driver"
    present = tmp_path / "driver"
    present.mkdir()
    assert not has_nvidia_gpu(which=lambda name: None, proc=absent)
    assert has_nvidia_gpu(which=lambda name: None, proc=present)
    assert has_nvidia_gpu(which=lambda name: "/usr/bin/nvidia-smi" if name == "nvidia-smi" else None, proc=absent)


def test_gpu_detection_finds_nvidia_smi_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    assert has_nvidia_gpu(proc=tmp_path / "no-driver")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not has_nvidia_gpu(proc=tmp_path / "no-driver")


@pytest.mark.parametrize(("system", "gpu", "override", "printed"), [
    ("Linux", False, None, f"--extra-index-url {CPU_INDEX}"),
    ("Linux", True, None, ""),
    ("Linux", False, "pypi", ""),
    ("Darwin", False, None, ""),
    ("Darwin", False, "cpu", f"--extra-index-url {CPU_INDEX}"),
])
def test_command_line_on_stand_in_machines(system: str, gpu: bool, override: str | None, printed: str,
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """What the Makefile reads: the pip options on stdout, the reason on stderr (--explain)."""
    driver = tmp_path / "nvidia"
    if gpu:
        driver.mkdir()
    monkeypatch.setattr(torch_index.platform, "system", lambda: system)
    monkeypatch.setattr(torch_index, "NVIDIA_PROC", driver)
    monkeypatch.setattr(torch_index.shutil, "which", lambda name: None)
    if override is None:
        monkeypatch.delenv("TORCH_INDEX", raising=False)
    else:
        monkeypatch.setenv("TORCH_INDEX", override)
    assert torch_index.main(["--explain"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == printed
    assert err.startswith("torch: ")
    monkeypatch.setenv("TORCH_INDEX", "nonsense")
    assert torch_index.main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "TORCH_INDEX='nonsense' is not understood" in err


def test_runs_as_a_script_with_the_standard_library_alone() -> None:
    """The Makefile runs it with a new venv's Python, before anything is installed."""
    env = {k: v for k, v in os.environ.items() if k != "TORCH_INDEX"}
    result = subprocess.run([sys.executable, "-S", "-I", str(ROOT / "tools" / "torch_index.py"), "--explain"],
                            capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() in {"", f"--extra-index-url {CPU_INDEX}"}
    assert result.stderr.startswith("torch: ")


# -- what pip does with the options, on stand-in indexes -------------------------------------
def _pinned_torch() -> str:
    match = re.search(r"^torch==(\S+)$", (ROOT / "constraints.txt").read_text(), flags=re.MULTILINE)
    assert match, "constraints.txt pins torch"
    return match.group(1)


def _wheel(folder: Path, version: str) -> str:
    """A tiny wheel of a distribution named ``torch`` at ``version``, in ``folder``."""
    name = f"torch-{version}-py3-none-any.whl"
    dist_info = f"torch-{version}.dist-info"
    files = {
        "torch/__init__.py": f"__version__ = {version!r}\n",
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: stand-in\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist_info}/RECORD"] = "\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / name, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return name


def _simple_index(root: Path, version: str) -> str:
    """A PEP 503 index at ``root`` holding one ``torch`` wheel; its file:// address."""
    project = root / "torch"
    name = _wheel(project, version)
    (project / "index.html").write_text(f'<html><body><a href="{name}">{name}</a></body></html>\n')
    return root.as_uri()


def _pip_download(options: list[str], tmp_path: Path) -> list[str]:
    """The wheels ``pip download torch -c constraints.txt`` takes with ``options``: no pip
    configuration, no environment options, no cache, so only the stand-ins are seen."""
    out = tmp_path / "downloaded"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--retries", "0", "--timeout", "5",
                    "-d", str(out), *options, "-c", str(ROOT / "constraints.txt"), "torch>=2.2"],
                   check=True, capture_output=True, text=True, env=env)
    return sorted(p.name for p in out.iterdir())


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the socket is: connections are refused


def test_pip_takes_the_cpu_build_from_the_chosen_index_and_pypi_without_it(tmp_path: Path) -> None:
    version = _pinned_torch()
    pypi = _simple_index(tmp_path / "pypi", version)              # PyPI's build (CUDA on Linux)
    cpu = _simple_index(tmp_path / "cpu-index", f"{version}+cpu")  # PyTorch's CPU index
    chosen = choose("Linux", False, cpu).pip_args()
    assert _pip_download(["--index-url", pypi, *chosen], tmp_path / "cpu") == [f"torch-{version}+cpu-py3-none-any.whl"]
    gpu_path = choose("Linux", False, "pypi").pip_args()
    assert _pip_download(["--index-url", pypi, *gpu_path], tmp_path / "gpu") == [f"torch-{version}-py3-none-any.whl"]


def test_an_unreachable_index_leaves_the_install_working(tmp_path: Path) -> None:
    """As on a machine that cannot reach PyTorch's index: pip warns and takes PyPI's build."""
    version = _pinned_torch()
    pypi = _simple_index(tmp_path / "pypi", version)
    unreachable = choose("Linux", False, f"http://127.0.0.1:{_closed_port()}/whl/cpu").pip_args()
    assert _pip_download(["--index-url", pypi, *unreachable], tmp_path / "dl") == [f"torch-{version}-py3-none-any.whl"]


def test_make_install_takes_torch_alone_from_the_chosen_index_first(tmp_path: Path) -> None:
    """The Makefile's install recipe (dry run): torch with ``--no-deps`` and the options this
    script prints, then the requirements, which bring torch's dependencies from PyPI."""
    result = subprocess.run(["make", "-n", "-B", "install", f"VENV={tmp_path / 'venv'}"], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    torch_step = next(i for i, line in enumerate(lines) if "tools/torch_index.py" in line)
    requirements_step = next(i for i, line in enumerate(lines) if "-r requirements.txt" in line)
    assert torch_step < requirements_step
    assert "--no-deps" in lines[torch_step] and '"torch>=' in lines[torch_step]
    assert "torch_index.py" not in lines[requirements_step]  # that index is asked for torch alone
