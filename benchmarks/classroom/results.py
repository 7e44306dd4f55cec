"""What a classroom run measured, the sizing rule derived from it, and the reports (pure).

Nothing here starts a process: :mod:`benchmarks.classroom.run` fills the dataclasses, and
the functions below turn them into statistics, per-student limits, ``CLASSROOM.md`` and
``classroom.json``.  The unit tests (``tests/test_classroom.py``) exercise all of it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.report import markdown_table, median, percentile

MIB = 2**20

#: A class size passes when, with every student working at once, the median slider redraw
#: (browser → kernel → new picture back) stays under this ...
REDRAW_MEDIAN_TARGET_MS = 500.0
#: ... its 95th percentile under this ...
REDRAW_P95_TARGET_MS = 1000.0
#: ... the median "Run all" of the notebook under a minute (about the time a section's
#: introduction takes, during which TEACHING.md suggests starting the run) ...
RUN_ALL_MEDIAN_TARGET_S = 60.0
#: ... and no student failed.  The course's own budget for one student is a 150 ms median
#: redraw (benchmarks/budgets.py); a class gets more slack because students do not all move
#: a slider in the same second, as the benchmark makes them do.

#: Memory requests are rounded up to multiples of this (MiB).
MEMORY_ROUND_MIB = 128
#: CPU requests are rounded up to multiples of this (cores).
CPU_ROUND = 0.05


@dataclass
class StudentResult:
    """One simulated student's run: timings in seconds from asking for the kernel."""

    name: str
    spawn_s: float = math.nan          # the hub's server start, from the REST call to ready
    kernel_ready_s: float = math.nan   # first kernel_info_reply
    first_figure_s: float = math.nan   # first output with a PNG
    run_all_s: float = math.nan        # last cell finished
    cells: int = 0                     # code cells executed
    redraws_ms: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class RoundResult:
    """One class size: N students working at once on one hub."""

    students: int
    notebook: str
    wall_s: float = math.nan                       # from the first login to the last student done
    results: list[StudentResult] = field(default_factory=list)
    peak_mib: dict[str, float] = field(default_factory=dict)   # kind → peak summed RSS
    peak_total_mib: float = math.nan                # hub + proxy + servers + kernels, at once
    server_peak_mib: list[float] = field(default_factory=list)  # per single-user server
    kernel_peak_mib: list[float] = field(default_factory=list)  # per kernel (with children)
    kernel_cpu_s: list[float] = field(default_factory=list)     # per kernel
    server_cpu_s: list[float] = field(default_factory=list)     # per single-user server
    load_average: list[float] | None = None         # 1/5/15 min, at the end of the round
    error: str | None = None                        # the round itself failed (e.g. timeout)

    def __post_init__(self) -> None:
        if isinstance(self.students, bool) or not isinstance(self.students, int):
            raise TypeError(f"students must be an int, got {type(self.students).__name__}")
        if self.students < 1:
            raise ValueError(f"students must be >= 1, got {self.students}")

    @property
    def ok_results(self) -> list[StudentResult]:
        return [r for r in self.results if r.ok]

    @property
    def failures(self) -> int:
        """Students who did not finish (a round that failed as a whole counts all of them)."""
        missing = max(0, self.students - len(self.results))
        return missing + sum(1 for r in self.results if not r.ok)

    def _stat(self, attribute: str, q: float | None = None) -> float:
        values = [getattr(r, attribute) for r in self.ok_results]
        values = [v for v in values if not math.isnan(v)]
        if q is None:
            return median(values)
        return percentile(values, q)

    @property
    def redraws_ms(self) -> list[float]:
        return [t for r in self.ok_results for t in r.redraws_ms]

    @property
    def redraw_median_ms(self) -> float:
        return median(self.redraws_ms)

    @property
    def redraw_p95_ms(self) -> float:
        return percentile(self.redraws_ms, 95)

    def summary(self) -> dict[str, float]:
        """The per-N numbers of the report (NaN where nothing was measured)."""
        return {
            "spawn_median_s": self._stat("spawn_s"),
            "spawn_max_s": self._stat("spawn_s", 100),
            "first_figure_median_s": self._stat("first_figure_s"),
            "first_figure_max_s": self._stat("first_figure_s", 100),
            "run_all_median_s": self._stat("run_all_s"),
            "run_all_max_s": self._stat("run_all_s", 100),
            "redraw_median_ms": self.redraw_median_ms,
            "redraw_p95_ms": self.redraw_p95_ms,
            "memory_per_student_mib": per_student_mib(self),
            "kernel_cpu_median_s": median(self.kernel_cpu_s),
        }


def per_student_mib(round_: RoundResult) -> float:
    """Peak memory of the students' own processes (servers + kernels, summed at the same
    moment) divided by the number of students; NaN when nothing was sampled."""
    if not isinstance(round_, RoundResult):
        raise TypeError(f"round_ must be a RoundResult, got {type(round_).__name__}")
    servers = round_.peak_mib.get("servers")
    kernels = round_.peak_mib.get("kernels")
    if servers is None or kernels is None or not (servers + kernels) > 0:
        return math.nan
    # The two peaks may fall at different moments; their sum bounds the joint peak.
    return (servers + kernels) / round_.students


def passes(round_: RoundResult) -> bool:
    """True when every student finished, "Run all" took under a minute (median) and the
    slider stayed responsive (the targets above)."""
    if not isinstance(round_, RoundResult):
        raise TypeError(f"round_ must be a RoundResult, got {type(round_).__name__}")
    if round_.error is not None or round_.failures or not round_.redraws_ms:
        return False
    return (round_.redraw_median_ms <= REDRAW_MEDIAN_TARGET_MS
            and round_.redraw_p95_ms <= REDRAW_P95_TARGET_MS
            and round_.summary()["run_all_median_s"] <= RUN_ALL_MEDIAN_TARGET_S)


def round_up(value: float, step: float) -> float:
    """``value`` rounded up to a multiple of ``step`` (a value already on it stays).

    Raises:
        ValueError: if ``step`` is not positive or ``value`` is NaN or negative.
    """
    if not step > 0:
        raise ValueError(f"step must be > 0, got {step}")
    if math.isnan(value) or value < 0:
        raise ValueError(f"value must be a non-negative number, got {value}")
    multiple = math.ceil(value / step - 1e-9)
    return round(multiple * step, 10)


def students_per_core(rounds: Sequence[RoundResult], cores: int) -> float:
    """The largest class that passed, with every smaller measured class passing too,
    divided by ``cores``; NaN when even the smallest class failed.

    Raises:
        TypeError: if ``cores`` is not an int.
        ValueError: if ``cores`` < 1 or ``rounds`` is empty.
    """
    if isinstance(cores, bool) or not isinstance(cores, int):
        raise TypeError(f"cores must be an int, got {type(cores).__name__}")
    if cores < 1:
        raise ValueError(f"cores must be >= 1, got {cores}")
    if not rounds:
        raise ValueError("rounds must hold at least one class size")
    best = math.nan
    for round_ in sorted(rounds, key=lambda r: r.students):
        if not passes(round_):
            break
        best = round_.students
    return best / cores


def single_student_cores(round_: RoundResult) -> float:
    """How many cores a student's kernel kept busy while it worked: the median kernel CPU
    seconds over the median time the kernel was asked to work (its "Run all" plus its
    redraws) in ``round_``; NaN when either is missing.

    Raises:
        TypeError: if ``round_`` is not a RoundResult.
    """
    if not isinstance(round_, RoundResult):
        raise TypeError(f"round_ must be a RoundResult, got {type(round_).__name__}")
    cpu = median([c for c in round_.kernel_cpu_s if not math.isnan(c)])
    busy = median([r.run_all_s + sum(r.redraws_ms) / 1000 for r in round_.ok_results
                   if not math.isnan(r.run_all_s)])
    if math.isnan(cpu) or math.isnan(busy) or busy <= 0:
        return math.nan
    return cpu / busy


def derive_limits(rounds: Sequence[RoundResult], cores: int,
                  heaviest_kernel_mib: float | None = None) -> dict[str, Any]:
    """The per-student sizing rule from the measured rounds.

    - ``students_per_core``: :func:`students_per_core`.
    - ``cpu_guarantee``: 1 / students per core, rounded up to :data:`CPU_ROUND` — the share
      of a core each student had in the largest class that still passed.
    - ``cpu_limit``: the cores one student alone used, :func:`single_student_cores` of the
      smallest class, rounded up to half a core (at least 1, at most ``cores``): a lone
      "Run all" is not held back, a busy class shares.
    - ``server_mib``: the largest single-user server seen; ``kernel_mib``: the largest kernel
      seen, or ``heaviest_kernel_mib`` (the course's heaviest notebook from ``make bench``)
      when that is larger.
    - ``memory_guarantee_mib``: one server plus one kernel, rounded up to
      :data:`MEMORY_ROUND_MIB` — what a student with one open notebook needs.
    - ``memory_limit_mib``: one server plus two kernels (the notebook in use plus one left
      running), rounded up to :data:`MEMORY_ROUND_MIB` twice over (at least guarantee + 128).
    - ``memory_per_student_mib``: the largest measured (servers + kernels) / N.

    Raises:
        TypeError: if ``cores`` is not an int.
        ValueError: if ``rounds`` is empty, or no server or kernel memory was measured.
    """
    per_core = students_per_core(rounds, cores)
    alone = single_student_cores(min(rounds, key=lambda r: r.students))
    servers = [m for r in rounds for m in r.server_peak_mib if not math.isnan(m)]
    kernels = [m for r in rounds for m in r.kernel_peak_mib if not math.isnan(m)]
    if not servers or not kernels:
        raise ValueError("rounds hold no measured server or kernel memory")
    if heaviest_kernel_mib is not None and not heaviest_kernel_mib > 0:
        raise ValueError(f"heaviest_kernel_mib must be > 0, got {heaviest_kernel_mib}")
    server_mib = max(servers)
    measured_kernel_mib = max(kernels)
    kernel_mib = max(measured_kernel_mib, heaviest_kernel_mib or 0.0)
    guarantee = round_up(server_mib + kernel_mib, MEMORY_ROUND_MIB)
    limit = max(round_up(server_mib + 2 * kernel_mib, 2 * MEMORY_ROUND_MIB),
                guarantee + MEMORY_ROUND_MIB)
    per_student = [per_student_mib(r) for r in rounds]
    per_student = [m for m in per_student if not math.isnan(m)]
    return {
        "cores": cores,
        "students_per_core": per_core,
        "cpu_guarantee": round_up(1 / per_core, CPU_ROUND) if per_core > 0 else math.nan,
        "single_student_cores": alone,
        "cpu_limit": min(float(cores), max(1.0, round_up(alone, 0.5))) if alone > 0 else float(cores),
        "server_mib": server_mib,
        "measured_kernel_mib": measured_kernel_mib,
        "heaviest_kernel_mib": heaviest_kernel_mib,
        "kernel_mib": kernel_mib,
        "memory_per_student_mib": max(per_student) if per_student else math.nan,
        "memory_guarantee_mib": guarantee,
        "memory_limit_mib": limit,
        "redraw_median_target_ms": REDRAW_MEDIAN_TARGET_MS,
        "redraw_p95_target_ms": REDRAW_P95_TARGET_MS,
        "run_all_median_target_s": RUN_ALL_MEDIAN_TARGET_S,
    }


#: JupyterHub's memory suffixes (``jupyterhub.traitlets.ByteSpecification``): powers of
#: 1024, so ``"1G"`` is 1024 MiB.  Zero to JupyterHub passes ``singleuser.memory`` values
#: through it to KubeSpawner.
BYTE_SUFFIXES = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def byte_specification(mib: float) -> str:
    """A memory size in MiB as JupyterHub writes it: ``"2G"`` for whole GiB, else ``"1792M"``.

    Raises:
        TypeError: if ``mib`` is not a number.
        ValueError: if ``mib`` is not a positive whole number of MiB.
    """
    if isinstance(mib, bool) or not isinstance(mib, (int, float)):
        raise TypeError(f"mib must be a number, got {type(mib).__name__}")
    if not mib > 0 or mib != int(mib):
        raise ValueError(f"mib must be a positive whole number, got {mib}")
    whole = int(mib)
    return f"{whole // 1024}G" if whole % 1024 == 0 else f"{whole}M"


def parse_byte_specification(value: str | int | float) -> float:
    """A JupyterHub memory value (``"1792M"``, ``"2G"``, ``"512K"`` or a number of bytes)
    in MiB, read as ``jupyterhub.traitlets.ByteSpecification`` reads it.

    Raises:
        TypeError: if ``value`` is neither a string nor a number.
        ValueError: if the string has no number before a K, M, G or T suffix.
    """
    if isinstance(value, bool):
        raise TypeError("value must be a string or a number, not a bool")
    if isinstance(value, (int, float)):
        return float(int(value)) / MIB
    if not isinstance(value, str):
        raise TypeError(f"value must be a string or a number, got {type(value).__name__}")
    text = value.strip()
    suffix = text[-1:]
    if suffix not in BYTE_SUFFIXES:
        raise ValueError(f"value {value!r} must end in one of K, M, G, T (JupyterHub's units, "
                         "upper case)")
    try:
        return float(text[:-1]) * BYTE_SUFFIXES[suffix] / MIB
    except ValueError:
        raise ValueError(f"value {value!r} has no number before its unit") from None


def z2jh_resources(limits: Mapping[str, Any]) -> dict[str, Any]:
    """The ``singleuser`` CPU and memory settings of a Zero to JupyterHub values file for
    the derived ``limits`` (what ``deploy/z2jh/values.yaml`` must hold).

    Raises:
        ValueError: if ``limits`` lacks one of the derived numbers.
    """
    try:
        return {
            "cpu": {"guarantee": float(limits["cpu_guarantee"]), "limit": float(limits["cpu_limit"])},
            "memory": {"guarantee": byte_specification(limits["memory_guarantee_mib"]),
                       "limit": byte_specification(limits["memory_limit_mib"])},
        }
    except (KeyError, TypeError) as error:
        raise ValueError(f"limits lacks a derived number: {error!r}") from None


# -- reports ----------------------------------------------------------------------------


def _fmt(x: float | None, spec: str) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def rounds_table(rounds: Sequence[RoundResult]) -> str:
    """One row per class size: timings, redraws, failures."""
    header = ["Students", "Server start s (median / max)", "First figure s (median / max)",
              "Run all s (median / max)", "Redraws", "Redraw median ms", "Redraw p95 ms",
              "Kernel CPU s", "Failures", "Verdict"]
    rows = []
    for r in rounds:
        s = r.summary()
        rows.append([
            r.students,
            f"{_fmt(s['spawn_median_s'], '.1f')} / {_fmt(s['spawn_max_s'], '.1f')}",
            f"{_fmt(s['first_figure_median_s'], '.1f')} / {_fmt(s['first_figure_max_s'], '.1f')}",
            f"{_fmt(s['run_all_median_s'], '.1f')} / {_fmt(s['run_all_max_s'], '.1f')}",
            len(r.redraws_ms), _fmt(s["redraw_median_ms"], ".0f"), _fmt(s["redraw_p95_ms"], ".0f"),
            _fmt(s["kernel_cpu_median_s"], ".1f"), r.failures,
            "ok" if passes(r) else "too slow" if not r.failures and r.error is None else "FAILED",
        ])
    return markdown_table(header, rows)


def memory_table(rounds: Sequence[RoundResult]) -> str:
    """One row per class size: peak summed RSS of each kind of process."""
    header = ["Students", "Hub MiB", "Proxy MiB", "Servers MiB", "Kernels MiB", "Total MiB",
              "Per student MiB", "Largest server MiB", "Largest kernel MiB"]
    rows = []
    for r in rounds:
        p = r.peak_mib
        rows.append([
            r.students, _fmt(p.get("hub"), ".0f"), _fmt(p.get("proxy"), ".0f"),
            _fmt(p.get("servers"), ".0f"), _fmt(p.get("kernels"), ".0f"),
            _fmt(r.peak_total_mib, ".0f"), _fmt(per_student_mib(r), ".0f"),
            _fmt(max(r.server_peak_mib, default=math.nan), ".0f"),
            _fmt(max(r.kernel_peak_mib, default=math.nan), ".0f"),
        ])
    return markdown_table(header, rows)


def failures_lines(rounds: Sequence[RoundResult]) -> list[str]:
    """One bullet per failed student or round."""
    lines = []
    for r in rounds:
        if r.error:
            lines.append(f"- N = {r.students}: {r.error}")
        for s in r.results:
            if s.error:
                lines.append(f"- N = {r.students}, {s.name}: {s.error}")
    return lines


def _clean(x: Any) -> Any:
    """JSON has no NaN: NaN becomes null; floats are rounded to 6 decimals."""
    if isinstance(x, float):
        return None if math.isnan(x) else round(x, 6)
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def to_json(machine: Mapping[str, Any], date: str, options: Mapping[str, Any],
            rounds: Sequence[RoundResult], limits: Mapping[str, Any]) -> str:
    """``classroom.json``: the raw per-student numbers, the per-N summaries and the limits."""
    payload = {
        "date": date,
        "machine": dict(machine),
        "options": dict(options),
        "rounds": [{**asdict(r), "summary": r.summary(), "failures": r.failures,
                    "passes": passes(r)} for r in rounds],
        "limits": dict(limits),
    }
    return json.dumps(_clean(payload), indent=2, ensure_ascii=False) + "\n"


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def from_json(text: str) -> tuple[dict[str, Any], str, dict[str, Any], list[RoundResult], dict[str, Any]]:
    """Read back what :func:`to_json` wrote: ``(machine, date, options, rounds, limits)``.

    Raises:
        ValueError: if ``text`` is not such a document.
    """
    try:
        data = json.loads(text)
        rounds = []
        for r in data["rounds"]:
            students = [StudentResult(
                name=s["name"], spawn_s=_nan(s["spawn_s"]), kernel_ready_s=_nan(s["kernel_ready_s"]),
                first_figure_s=_nan(s["first_figure_s"]), run_all_s=_nan(s["run_all_s"]),
                cells=int(s["cells"]), redraws_ms=[_nan(t) for t in s["redraws_ms"]],
                error=s["error"]) for s in r["results"]]
            rounds.append(RoundResult(
                students=int(r["students"]), notebook=r["notebook"], wall_s=_nan(r["wall_s"]),
                results=students, peak_mib={k: _nan(v) for k, v in r["peak_mib"].items()},
                peak_total_mib=_nan(r["peak_total_mib"]),
                server_peak_mib=[_nan(v) for v in r["server_peak_mib"]],
                kernel_peak_mib=[_nan(v) for v in r["kernel_peak_mib"]],
                kernel_cpu_s=[_nan(v) for v in r["kernel_cpu_s"]],
                server_cpu_s=[_nan(v) for v in r["server_cpu_s"]],
                load_average=r.get("load_average"), error=r.get("error")))
        return data["machine"], data["date"], data["options"], rounds, data["limits"]
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"text is not a classroom.json document: {error!r}") from None


def machine_block(machine: Mapping[str, Any], rounds: Sequence[RoundResult]) -> str:
    """The machine, the package versions and the load averages, as Markdown bullets."""
    from benchmarks.report import machine_lines

    lines = [machine_lines({k: v for k, v in machine.items()
                            if not k.startswith("load_average")})]
    versions = machine.get("versions") or {}
    if versions:
        lines.append("- " + ", ".join(f"{k} {v}" for k, v in versions.items())
                     + ", configurable-http-proxy from npm")
    for label, key in (("before the run (other programs)", "load_average_at_start"),
                       ("after the run (mostly the run's own kernels)", "load_average_at_end")):
        load = machine.get(key)
        if load:
            lines.append(f"- Load average {label} (1/5/15 min): {', '.join(f'{x:.2f}' for x in load)}")
    for r in rounds:
        if r.load_average:
            lines.append(f"- Load average at the end of N = {r.students}, the run's own load included (1/5/15 min): "
                         f"{', '.join(f'{x:.2f}' for x in r.load_average)}")
    if machine.get("duration_s") is not None:
        lines.append(f"- The whole run took {float(machine['duration_s']):.0f} s")
    return "\n".join(lines)


def limits_block(limits: Mapping[str, Any]) -> str:
    """The derived sizing rule as Markdown bullets ("" when none was derived)."""
    if not limits:
        return "No limits could be derived (no round measured memory).\n"
    per_core = limits.get("students_per_core")
    per_core_text = ("none: even the smallest class missed the targets" if per_core is None
                     or (isinstance(per_core, float) and math.isnan(per_core))
                     else f"{per_core:g}")
    guarantee = limits.get("cpu_guarantee")
    heaviest = limits.get("heaviest_kernel_mib")
    kernel_source = (f"the largest kernel measured here ({limits['measured_kernel_mib']:.0f} MiB)"
                     if not heaviest or heaviest <= limits["measured_kernel_mib"] else
                     f"the heaviest notebook's kernel in `make bench` ({heaviest:.0f} MiB; "
                     f"{limits['measured_kernel_mib']:.0f} MiB measured here)")
    return "\n".join([
        f"- **Students per core: {per_core_text}** — the largest class in which nobody failed, "
        f"\"Run all\" took under {limits.get('run_all_median_target_s', RUN_ALL_MEDIAN_TARGET_S):.0f} s "
        f"(median) and slider redraws kept a median under "
        f"{limits['redraw_median_target_ms']:.0f} ms and a 95th percentile under "
        f"{limits['redraw_p95_target_ms']:.0f} ms (every smaller class passing too), divided "
        f"by the {limits['cores']} cores.",
        f"- **CPU per student:** guarantee **{_fmt(guarantee, 'g')}** cores (1 / students per "
        f"core), limit **{_fmt(limits['cpu_limit'], 'g')}** "
        f"(one student alone kept {_fmt(limits.get('single_student_cores'), '.2f')} cores busy "
        "during \"Run all\", rounded up to a multiple of half a core, at least one: a lone run "
        "is not held back, a busy class shares).",
        f"- **Memory per student:** one single-user server ({limits['server_mib']:.0f} MiB at its "
        f"largest) plus one kernel, taken as {kernel_source}: guarantee "
        f"**{limits['memory_guarantee_mib']:.0f} MiB**; with a second kernel left running, limit "
        f"**{limits['memory_limit_mib']:.0f} MiB**. Measured servers + kernels per student: "
        f"{_fmt(limits.get('memory_per_student_mib'), '.0f')} MiB at most.",
        "",
        *z2jh_snippet(limits),
    ])


def z2jh_snippet(limits: Mapping[str, Any]) -> list[str]:
    """The ``singleuser`` resources for ``deploy/z2jh/values.yaml``, as Markdown lines
    (none when the limits are incomplete)."""
    try:
        resources = z2jh_resources(limits)
    except ValueError:
        return []
    if any(math.isnan(v) for v in resources["cpu"].values()):
        return []
    return [
        "In `deploy/z2jh/values.yaml` (Zero to JupyterHub; checked by `tests/test_classroom.py`):",
        "",
        "```yaml",
        "singleuser:",
        "  cpu:",
        f"    guarantee: {resources['cpu']['guarantee']:g}",
        f"    limit: {resources['cpu']['limit']:g}",
        "  memory:",
        f"    guarantee: {resources['memory']['guarantee']}",
        f"    limit: {resources['memory']['limit']}",
        "```",
        "",
    ]


METHOD = """\
## How it is measured

- **The hub.** A real JupyterHub (PyPI `jupyterhub`) with configurable-http-proxy (npm),
  bound to 127.0.0.1 only, with `DummyAuthenticator` and `SimpleLocalProcessSpawner`: every
  student's single-user server (`jupyterhub-singleuser`, JupyterLab's server) is a local
  process running as the hub's own Unix user, in a home folder of its own, showing the
  repository as a shared read-only copy of the course. The ordinary `LocalProcessSpawner`
  would need one system account per student; the processes and their cost are the same, only
  the isolation between students differs (TLJH's system users or Kubernetes pods provide it).
  Every student's environment has `OMP_NUM_THREADS=1` (and the MKL and OpenBLAS
  equivalents), as `deploy/z2jh/values.yaml` sets too: with more kernels than cores, more
  threads per kernel only compete for the same cores. The students get the course as
  committed (`git archive` of the commit named above, first on their `PYTHONPATH`), so edits
  in progress in the working tree do not change the measurement.
- **A class size N.** N users are created through the hub's REST API; all N servers are
  started at once (the login rush: *server start* is from the REST call to the hub reporting
  the server ready); each student gets an API token of their own. Then every student, at the
  same time, does through the proxy what JupyterLab does: reads the notebook through the
  contents API, creates a session (a new kernel: the clock starts), and runs every code cell
  in order over the kernel websocket, each waited for (*run all*; *first figure* is the first
  output carrying a PNG). Then each moves the notebook's slider panel by sending the widget
  `comm_msg` a browser sends when a slider is released, pausing *think* seconds before each
  move; a *redraw* is timed from that message to the panel's new picture arriving back.
  Everybody pressing "Run all" in the same second is the worst case; a real class is
  gentler.
- **Memory.** Every 0.5 s psutil reads the resident memory (RSS) of every process in the
  hub's tree, summed per kind: the hub, the proxy, the single-user servers and the kernels
  (with anything a kernel starts). The tables show the peak of each sum over the round, the
  peak of the total, and per-process peaks. RSS counts shared library pages in every process,
  so the sums slightly overstate what the machine needs.
- **Kernel CPU.** User + system CPU seconds of each kernel process, last read before the
  servers were stopped (the median over the round's kernels).
- **Clean-up.** After each class size every server is stopped and every user deleted through
  the REST API; at the end the hub is stopped (it stops the proxy), and then every process
  ever seen in its tree that still runs is sent SIGTERM, then SIGKILL. The same happens on a
  failure, on the global time limit and on Ctrl-C.
"""


#: Why a notebook is a fair workload, shown under the results when it is the one measured.
NOTEBOOK_NOTES = {
    "notebooks/01_initialization.ipynb": (
        "**Why notebook 01.** It is a typical lecture notebook of the course, mid-weight: "
        "heavier than 00, 04 and 05, lighter than the training-heavy 02 and 06, whose "
        "minute of training a class should stagger anyway (TEACHING.md, *In the room*); the "
        "N = 1 row below is one student alone. Its panel (`variance_slider`: four controls, "
        "a 50-layer forward pass and a redraw per move) is among the slowest of the course's "
        "panels in `make bench` (`benchmarks/RESULTS.md`), so the redraw times are close to "
        "the worst a student sees. Notebook 00, which every student opens first, is lighter "
        "in every respect."),
}


def classroom_markdown(machine: Mapping[str, Any], date: str, options: Mapping[str, Any],
                       rounds: Sequence[RoundResult], limits: Mapping[str, Any]) -> str:
    """The whole of ``CLASSROOM.md``."""
    failures = failures_lines(rounds)
    return "\n".join([
        "# A whole class on one server",
        "",
        f"Measured {date} with `make classroom-bench`: N simulated students at once on a real "
        "JupyterHub on this machine, each running "
        f"`{options.get('notebook')}` and then moving its slider {options.get('moves')} times "
        f"({options.get('think_s')} s apart). `OMP_NUM_THREADS` = "
        f"{options.get('threads_per_kernel')} per kernel; the course as committed at "
        f"{options.get('source', 'HEAD')}. The same numbers, for tools, are in "
        "`classroom.json` next to this file.",
        "",
        NOTEBOOK_NOTES.get(str(options.get("notebook")), ""),
        "",
        "## Machine",
        "",
        machine_block(machine, rounds),
        "",
        "## Results",
        "",
        "### Time, per class size",
        "",
        "Seconds from the student's kernel request (\"Restart kernel and run all\"); server "
        "start is the login before it. A verdict of *ok* means every student finished, the "
        f"median \"Run all\" took under {RUN_ALL_MEDIAN_TARGET_S:.0f} s and redraws kept a median "
        f"under {REDRAW_MEDIAN_TARGET_MS:.0f} ms and a p95 under {REDRAW_P95_TARGET_MS:.0f} ms.",
        "",
        rounds_table(rounds),
        "",
        "### Memory, per class size (peak RSS, MiB)",
        "",
        memory_table(rounds),
        "",
        "### Failures",
        "",
        "\n".join(failures) if failures else "None: every student of every class size finished.",
        "",
        "## Sizing rule derived from these numbers",
        "",
        limits_block(limits),
        METHOD,
        "## Reproduce",
        "",
        "```bash",
        "make classroom-bench                     # N = 1, 5, 10, 20; writes this file",
        "make classroom-bench CLASSROOM_ARGS='--students 1,2 --output build/classroom/out'",
        "```",
        "",
        "Options (`python -m benchmarks.classroom --help`): `--students N,N,...`, `--notebook PATH`, "
        "`--moves N`, `--think SECONDS`, `--timeout SECONDS` (global limit), `--cell-timeout SECONDS`, "
        "`--threads-per-kernel N`, `--output DIR`, `--render-only` (rewrite this file from the JSON).",
        "",
    ])
