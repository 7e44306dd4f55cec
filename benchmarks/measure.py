"""The measuring part of the harness: run notebooks, time slider redraws and size knobs.

Results go into the dataclasses of :mod:`benchmarks.report`, which summarises them.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import psutil
from nbclient import NotebookClient

from benchmarks.budgets import notebook_time_budget
from benchmarks.report import NotebookResult, PanelResult, ScalingResult
from tools.notebook_tools import notebook_client

MIB = 2**20
#: Seconds one cell may run before the notebook counts as failed.
CELL_TIMEOUT_S = 600
#: How often the background thread samples the kernel's memory.
SAMPLE_INTERVAL_S = 0.02


def _short(error: BaseException, limit: int = 160) -> str:
    ename = getattr(error, "ename", None)  # nbclient's CellExecutionError: the kernel's error
    if ename:
        message = f"{ename}: {getattr(error, 'evalue', '')}".strip().rstrip(":")
        return message if len(message) <= limit else message[: limit - 1] + "…"
    text = str(error).strip().splitlines()
    first = next((line for line in text if line.strip()), "")
    message = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return message if len(message) <= limit else message[: limit - 1] + "…"


# -- notebooks --------------------------------------------------------------------------


def read_vm_hwm(pid: int) -> float | None:
    """The peak resident memory (``VmHWM``) of process ``pid`` in bytes, from /proc
    (Linux only; None where it cannot be read)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) * 1024  # the value is in kB
    except OSError:
        return None
    return None


class KernelMonitor:
    """Tracks the peak memory and the CPU time of a kernel process and its children.

    A background thread samples RSS(kernel + children) every :data:`SAMPLE_INTERVAL_S`;
    :meth:`checkpoint` (called after every cell, while the kernel is alive) reads the
    kernel's exact high-water mark ``VmHWM`` and its CPU time.
    """

    def __init__(self) -> None:
        self.process: psutil.Process | None = None
        self.sampled_peak = 0.0
        self.hwm_peak = 0.0
        self.cpu_s = 0.0
        self.last_checkpoint: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, pid: int | None) -> None:
        if pid is None:
            return
        try:
            self.process = psutil.Process(pid)
        except psutil.Error:
            return
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _tree(self) -> list[psutil.Process]:
        assert self.process is not None
        try:
            return [self.process, *self.process.children(recursive=True)]
        except psutil.Error:
            return []

    def _sample(self) -> None:
        while not self._stop.is_set():
            total = 0.0
            for proc in self._tree():
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.sampled_peak = max(self.sampled_peak, total)
            self._stop.wait(SAMPLE_INTERVAL_S)

    def checkpoint(self) -> None:
        self.last_checkpoint = time.perf_counter()
        if self.process is None:
            return
        hwm = read_vm_hwm(self.process.pid)
        if hwm is not None:
            self.hwm_peak = max(self.hwm_peak, hwm)
        cpu = 0.0
        for index, proc in enumerate(self._tree()):
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            cpu += times.user + times.system
            if index == 0:  # children that already exited, as the kernel reaped them
                cpu += times.children_user + times.children_system
        self.cpu_s = max(self.cpu_s, cpu)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def peak_bytes(self) -> float:
        return max(self.sampled_peak, self.hwm_peak)


def _kernel_pid(client: NotebookClient) -> int | None:
    provisioner = getattr(client.km, "provisioner", None)
    pid = getattr(provisioner, "pid", None)
    if pid is None:
        process = getattr(provisioner, "process", None)
        pid = getattr(process, "pid", None)
    return pid


def execute_once(path: Path, timeout: int = CELL_TIMEOUT_S) -> tuple[float, float, float]:
    """Run a copy (in memory) of notebook ``path`` in a fresh kernel, in the notebook's folder.

    Returns:
        (wall seconds from kernel start to the end of the last cell, kernel CPU seconds,
        peak kernel RSS in MiB — NaN if the kernel's process could not be observed).

    Raises:
        nbclient.exceptions.CellExecutionError (or another error) if the notebook fails.
    """
    nb = nbformat.read(path, as_version=4)  # a copy: the file itself is never written
    monitor = KernelMonitor()
    client = notebook_client(nb, path, timeout=timeout)
    client.on_notebook_start = lambda **_: monitor.start(_kernel_pid(client))
    client.on_cell_executed = lambda **_: monitor.checkpoint()
    start = time.perf_counter()
    try:
        client.execute()
        end = monitor.last_checkpoint or time.perf_counter()
    finally:
        monitor.stop()
    peak = monitor.peak_bytes / MIB if monitor.process is not None else float("nan")
    return end - start, monitor.cpu_s, peak


def run_notebook(path: Path, repeats: int, progress: Callable[[], None] = lambda: None,
                 timeout: int = CELL_TIMEOUT_S) -> NotebookResult:
    """Execute ``path`` ``repeats`` times, each in a fresh kernel; stops at the first failure."""
    result = NotebookResult(name=path.name, budget_s=notebook_time_budget(path.name))
    for _ in range(repeats):
        try:
            wall, cpu, peak = execute_once(path, timeout)
        except Exception as error:  # noqa: BLE001 - a failing notebook is a result
            result.error = _short(error)
            progress()
            break
        result.times_s.append(wall)
        result.cpu_s.append(cpu)
        result.peak_rss_mib.append(peak)
        progress()
    return result


# -- panels -----------------------------------------------------------------------------


def discover_panels() -> tuple[dict[str, Callable[[], Any]], list[PanelResult]]:
    """Every registered panel factory; a widgets module that cannot be imported is returned
    as a failed result instead of hiding the others."""
    from helpers import widgets as widgets_pkg

    try:
        return dict(widgets_pkg.all_panels()), []
    except Exception:  # noqa: BLE001 - fall back to one module at a time
        pass
    found: dict[str, Callable[[], Any]] = {}
    broken: list[PanelResult] = []
    for info in sorted(pkgutil.iter_modules(widgets_pkg.__path__), key=lambda i: i.name):
        if info.name == "panel" or info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"helpers.widgets.{info.name}")
        except Exception as error:  # noqa: BLE001
            broken.append(PanelResult(name=f"{info.name} (import)", error=_short(error)))
            continue
        for name, factory in getattr(module, "PANELS", {}).items():
            found[f"{info.name}.{name}"] = factory
    return found, broken


def time_panel(name: str, factory: Callable[[], Any], sweeps: int) -> PanelResult:
    """Create the panel, redraw once (warm-up), then time every sweep setting ``sweeps`` times."""
    result = PanelResult(name=name)
    panel = None
    try:
        start = time.perf_counter()
        panel = factory()
        result.build_ms = (time.perf_counter() - start) * 1000
        settings = panel.sweep() or [dict(panel.defaults)]
        start = time.perf_counter()
        panel.redraw(**settings[0])
        result.first_ms = (time.perf_counter() - start) * 1000
        for _ in range(sweeps):
            for setting in settings:
                start, cpu_start = time.perf_counter(), time.process_time()
                panel.redraw(**setting)
                result.times_ms.append((time.perf_counter() - start) * 1000)
                result.cpu_ms.append((time.process_time() - cpu_start) * 1000)
    except Exception as error:  # noqa: BLE001 - a failing panel is a result
        result.error = _short(error)
    finally:
        if panel is not None:
            panel.figure.clear()
    return result


def time_panels(sweeps: int, progress: Callable[[Any], Any] = iter) -> list[PanelResult]:
    """Time every registered panel with matplotlib's Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    factories, results = discover_panels()
    for name in progress(sorted(factories)):
        results.append(time_panel(name, factories[name], sweeps))
    return results


# -- cost against size ------------------------------------------------------------------


#: (module, function, knob, sizes, other keyword arguments, calls per size).
SCALING_CASES: list[tuple[str, str, str, tuple[int, ...], dict[str, Any], int]] = [
    ("helpers.initialization", "norm_profile", "depth", (10, 20, 40, 80),
     {"gain": 2.0, "width": 100}, 3),
    ("helpers.attention", "qk_scores", "d", (16, 64, 256, 1024),
     {"n": 256, "scaled": True}, 7),
]


def time_scaling(module_name: str, function_name: str, knob: str, sizes: tuple[int, ...],
                 fixed: dict[str, Any], calls: int) -> ScalingResult:
    """Best time per call of ``module.function(**fixed, knob=size)`` for each size.

    A warm-up call (at the smallest size) comes first, so one-off costs such as loading
    MNIST are not counted.  A module or function that does not exist (yet) is recorded as
    not available rather than failing the run.
    """
    fixed_text = ", ".join(f"{k}={v}" for k, v in fixed.items())
    result = ScalingResult(function=f"{module_name}.{function_name}", knob=knob, fixed=fixed_text)
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        result.available, result.note = False, _short(error, 80)
        return result
    except Exception as error:  # noqa: BLE001 - a module being written may not import
        result.available, result.note = False, _short(error, 80)
        return result
    try:
        function(**fixed, **{knob: sizes[0]})
        for size in sizes:
            times = []
            for _ in range(calls):
                start = time.perf_counter()
                function(**fixed, **{knob: size})
                times.append((time.perf_counter() - start) * 1000)
            result.sizes.append(size)
            result.times_ms.append(min(times))
    except Exception as error:  # noqa: BLE001
        result.available, result.note = False, _short(error, 80)
        result.sizes, result.times_ms = [], []
    return result


def time_all_scaling(progress: Callable[[Any], Any] = iter) -> list[ScalingResult]:
    """Every case of :data:`SCALING_CASES`."""
    return [time_scaling(*case) for case in progress(SCALING_CASES)]
