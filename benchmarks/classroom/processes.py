"""The kernels as processes: memory (RSS and PSS) and CPU time, a server's memory, clean-up."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path

import psutil

from benchmarks.measure import MIB, read_vm_hwm


def memory_mib(proc: psutil.Process) -> tuple[float, float]:
    """``(RSS, PSS)`` of ``proc`` with its children in MiB (PSS splits shared pages between the
    processes sharing them; RSS stands in where there is no PSS).  Raises psutil.Error if gone."""
    rss = pss = 0.0
    for index, p in enumerate([proc, *proc.children(recursive=True)]):
        try:
            info = p.memory_full_info()
        except psutil.Error:
            if index == 0:
                raise
            continue
        rss, pss = rss + info.rss / MIB, pss + getattr(info, "pss", info.rss) / MIB
    return rss, pss


class KernelWatch:
    """The kernels' memory: :meth:`sample` (every ``interval_s`` in :meth:`run`) updates each
    kernel's peak RSS and PSS and the peaks of their sums over the class at one moment.
    ``started`` keeps every kernel ever added, for the clean-up."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s, self.total_rss, self.total_pss = interval_s, 0.0, 0.0
        self.procs: dict[int, psutil.Process] = {}
        self.started: list[psutil.Process] = []
        self.peak_rss: dict[int, float] = {}
        self.peak_pss: dict[int, float] = {}

    def add(self, pid: int) -> None:
        self.procs[pid] = psutil.Process(pid)
        self.started.append(self.procs[pid])

    def sample(self) -> None:
        rss_sum = pss_sum = 0.0
        for pid, proc in list(self.procs.items()):
            try:
                rss, pss = memory_mib(proc)
            except psutil.Error:
                continue
            rss_sum, pss_sum = rss_sum + rss, pss_sum + pss
            self.peak_rss[pid] = max(self.peak_rss.get(pid, 0.0), rss)
            self.peak_pss[pid] = max(self.peak_pss.get(pid, 0.0), pss)
        self.total_rss, self.total_pss = max(self.total_rss, rss_sum), max(self.total_pss, pss_sum)

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval_s)

    def finish(self, pid: int) -> tuple[float, float, float]:
        """Before kernel ``pid`` stops: its user + system CPU seconds (with its children, live or
        reaped), peak RSS (the larger of the samples and its ``VmHWM``) and peak PSS."""
        self.sample()
        proc, cpu = self.procs.pop(pid, None), float("nan")
        with contextlib.suppress(psutil.Error):
            if proc is not None:
                t = proc.cpu_times()
                cpu = t.user + t.system + t.children_user + t.children_system + sum(
                    sum(c.cpu_times()[:2]) for c in proc.children(recursive=True))
        hwm = (read_vm_hwm(pid) or 0.0) / MIB
        return cpu, max(self.peak_rss.get(pid, 0.0), hwm) or float("nan"), self.peak_pss.get(pid, float("nan"))


def stop_processes(procs: Iterable[psutil.Process], *, grace_s: float = 5.0) -> list[int]:
    """SIGTERM, then after ``grace_s`` SIGKILL, every running process of ``procs`` and its
    children (psutil checks creation times: a reused pid is spared).  Returns the pids killed."""
    family: list[psutil.Process] = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            family += [proc, *proc.children(recursive=True)]
    for p in family:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, still = psutil.wait_procs(family, timeout=grace_s)
    for p in still:
        with contextlib.suppress(psutil.Error):
            p.kill()
    return [p.pid for p in still]


def server_memory(root_dir: Path, notebook: str, env: dict[str, str], timeout_s: float = 120.0) -> tuple[float, float]:
    """``(RSS, PSS)`` in MiB of a JupyterLab server on 127.0.0.1 once it has served the lab
    page and ``notebook`` (under ``root_dir``); the server is stopped after.

    Raises:
        RuntimeError: if the server does not answer within ``timeout_s``.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = psutil.Popen(  # a subprocess.Popen that is also a psutil.Process
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--allow-root",
         f"--ServerApp.root_dir={root_dir}", "--IdentityProvider.token=classroom"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_s
    try:
        for path in ("/api/status", "/lab", f"/api/contents/{notebook}?content=1"):
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                             headers={"Authorization": "token classroom"})
            while True:
                try:
                    urllib.request.urlopen(request, timeout=10).read()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError(f"the JupyterLab server did not answer {path}") from None
                    time.sleep(0.5)
        time.sleep(2)
        rss, pss = memory_mib(server)
        return max(rss, (read_vm_hwm(server.pid) or 0.0) / MIB), pss
    finally:
        stop_processes([server])
