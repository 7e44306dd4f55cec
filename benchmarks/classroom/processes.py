"""Which process is what, their memory over time, and stopping every one of them.

Everything the benchmark starts descends from the hub process: the proxy
(configurable-http-proxy, a Node.js program the hub launches), the single-user servers
(the spawner starts them as the hub's children, each in a session of its own) and the
kernels (children of the servers).  :class:`ProcessWatch` samples that tree with psutil,
adds up the resident memory (RSS) of each kind, and remembers every process it has seen, so
:func:`stop_processes` can end them all even when the hub died first.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import psutil

MIB = 2**20
#: The kinds of process, in the order the reports show them.
KINDS = ("hub", "proxy", "servers", "kernels")


def classify(cmdline: Sequence[str], *, hub_pid: int, pid: int,
             parent_kind: str | None = None) -> str | None:
    """What a process of the hub's tree is, from its command line.

    Args:
        cmdline: the process's argument vector (``psutil.Process.cmdline()``).
        hub_pid: the pid of the hub process.
        pid: the pid of this process.
        parent_kind: the kind of its parent, if known: whatever a kernel starts counts
            as the kernel's, whatever a server starts (other than a kernel) as the server's.

    Returns:
        ``"hub"``, ``"proxy"``, ``"servers"``, ``"kernels"``, or None for a process that is
        none of these (it is still stopped at the end, but not counted).

    Raises:
        TypeError: if ``cmdline`` is a string instead of a sequence of arguments.
    """
    if isinstance(cmdline, (str, bytes)):
        raise TypeError("cmdline must be a sequence of arguments, not a string")
    if pid == hub_pid:
        return "hub"
    words = [os.path.basename(str(a)) for a in cmdline] + [str(a) for a in cmdline]
    text = " ".join(words)
    if "configurable-http-proxy" in text:
        return "proxy"
    if "ipykernel_launcher" in text or "ipykernel" in words:
        return "kernels"
    if "jupyterhub-singleuser" in text or "jupyterhub.singleuser" in text:
        return "servers"
    if parent_kind in ("kernels", "servers"):
        return parent_kind
    return None


@dataclass
class MemorySample:
    """The summed RSS (MiB) of each kind of process at one moment, and how many there were."""

    time_s: float
    mib: dict[str, float]
    count: dict[str, int]

    @property
    def total_mib(self) -> float:
        return sum(self.mib.values())


@dataclass
class Seen:
    """A process seen in the tree: its kind, peak RSS and last CPU time (user + system)."""

    pid: int
    create_time: float
    kind: str | None
    peak_rss_mib: float = 0.0
    cpu_s: float = 0.0


@dataclass
class ProcessWatch:
    """Samples the hub's process tree in a background thread.

    Args:
        hub_pid: the hub process, root of the tree.
        interval_s: seconds between samples.
    """

    hub_pid: int
    interval_s: float = 0.5
    samples: list[MemorySample] = field(default_factory=list)
    seen: dict[tuple[int, float], Seen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.hub_pid, bool) or not isinstance(self.hub_pid, int):
            raise TypeError(f"hub_pid must be an int, got {type(self.hub_pid).__name__}")
        if not self.interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {self.interval_s}")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._extra: set[int] = set()

    # -- sampling ---------------------------------------------------------------------
    def add_root(self, pid: int) -> None:
        """Also watch ``pid`` and its descendants (a server that left the hub's tree)."""
        self._extra.add(pid)

    def _processes(self) -> list[tuple[psutil.Process, str | None]]:
        """Every process of the tree with its kind, parents before children."""
        roots = [self.hub_pid, *sorted(self._extra)]
        found: list[tuple[psutil.Process, str | None]] = []
        visited: set[int] = set()
        for root in roots:
            try:
                top = psutil.Process(root)
            except psutil.Error:
                continue
            stack: list[tuple[psutil.Process, str | None]] = [(top, None)]
            while stack:
                proc, parent_kind = stack.pop()
                if proc.pid in visited:
                    continue
                visited.add(proc.pid)
                try:
                    kind = classify(proc.cmdline(), hub_pid=self.hub_pid, pid=proc.pid,
                                    parent_kind=parent_kind)
                    children = proc.children()
                except psutil.Error:
                    continue
                found.append((proc, kind))
                stack.extend((child, kind) for child in children)
        return found

    def sample(self) -> MemorySample:
        """Read the tree once: add a :class:`MemorySample` and update what was seen."""
        mib = {kind: 0.0 for kind in KINDS}
        count = {kind: 0 for kind in KINDS}
        for proc, kind in self._processes():
            try:
                with proc.oneshot():
                    rss = proc.memory_info().rss / MIB
                    times = proc.cpu_times()
                    key = (proc.pid, proc.create_time())
            except psutil.Error:
                continue
            with self._lock:
                entry = self.seen.setdefault(key, Seen(pid=proc.pid, create_time=key[1], kind=kind))
                # the latest reading wins: a process forked by a server becomes a kernel
                # when it execs ipykernel (same pid, same creation time)
                entry.kind = kind if kind is not None else entry.kind
                entry.peak_rss_mib = max(entry.peak_rss_mib, rss)
                entry.cpu_s = max(entry.cpu_s, times.user + times.system)
            if kind is not None:
                mib[kind] += rss
                count[kind] += 1
        result = MemorySample(time_s=time.monotonic(), mib=mib, count=count)
        with self._lock:
            self.samples.append(result)
        return result

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - a vanished process must not end the sampling
                pass
            self._stop.wait(self.interval_s)

    def start(self) -> None:
        """Sample every ``interval_s`` in a daemon thread until :meth:`stop`."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="process-watch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """End the sampling thread (the processes keep running)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    # -- reading ----------------------------------------------------------------------
    def samples_since(self, start: float) -> list[MemorySample]:
        """The samples taken at or after monotonic time ``start``."""
        with self._lock:
            return [s for s in self.samples if s.time_s >= start]

    def processes_since(self, start_wall: float, kind: str) -> list[Seen]:
        """The processes of ``kind`` created at or after wall-clock time ``start_wall``."""
        with self._lock:
            return [s for s in self.seen.values() if s.kind == kind and s.create_time >= start_wall]

    def all_seen(self) -> list[Seen]:
        with self._lock:
            return list(self.seen.values())


def peak_by_kind(samples: Iterable[MemorySample]) -> tuple[dict[str, float], float]:
    """The peak summed RSS (MiB) of each kind over ``samples``, and the peak of the total
    (all kinds at the same moment)."""
    peaks = {kind: 0.0 for kind in KINDS}
    total = 0.0
    for sample in samples:
        for kind in KINDS:
            peaks[kind] = max(peaks[kind], sample.mib.get(kind, 0.0))
        total = max(total, sample.total_mib)
    return peaks, total


def stop_processes(processes: Iterable[Seen], *, grace_s: float = 5.0) -> list[int]:
    """SIGTERM, then after ``grace_s`` SIGKILL, every still-running process of ``processes``.

    A pid is only signalled while its creation time still matches (it was not reused by
    another program).  Returns the pids that had to be killed with SIGKILL.
    """
    alive: list[psutil.Process] = []
    for seen in processes:
        try:
            proc = psutil.Process(seen.pid)
            if abs(proc.create_time() - seen.create_time) > 0.01:
                continue
            proc.send_signal(signal.SIGTERM)
            alive.append(proc)
        except psutil.Error:
            continue
    _, still = psutil.wait_procs(alive, timeout=grace_s)
    killed = []
    for proc in still:
        try:
            proc.kill()
            killed.append(proc.pid)
        except psutil.Error:
            pass
    psutil.wait_procs(still, timeout=grace_s)
    return killed
