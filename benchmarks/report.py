"""The pure part of the harness: statistics, budget checks, the machine description, tables.

Nothing here runs a notebook; :mod:`benchmarks.measure` produces the results these
functions summarise, and the unit tests (``tests/test_benchmarks.py``) check them directly.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import budgets

# -- statistics -------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (NaN for none)."""
    return float(statistics.median(values)) if values else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``, linearly interpolated between the
    closest ranks (NumPy's default method); NaN for no values.

    Raises:
        ValueError: if ``q`` is outside [0, 100].
    """
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be in [0, 100], got {q}")
    if not values:
        return math.nan
    ordered = sorted(float(v) for v in values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def loglog_slope(sizes: Sequence[float], times: Sequence[float]) -> float:
    """Least-squares slope k of log(time) against log(size): time grows like size**k.

    NaN when fewer than two usable (positive) points.
    """
    points = [(math.log(s), math.log(t)) for s, t in zip(sizes, times, strict=True) if s > 0 and t > 0]
    if len(points) < 2:
        return math.nan
    mx = sum(p[0] for p in points) / len(points)
    my = sum(p[1] for p in points) / len(points)
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:
        return math.nan
    return sum((p[0] - mx) * (p[1] - my) for p in points) / sxx


# -- results ----------------------------------------------------------------------------


@dataclass
class NotebookResult:
    """Repeated headless runs of one notebook, each in a fresh kernel."""

    name: str
    budget_s: float
    times_s: list[float] = field(default_factory=list)
    """Wall time of each run: kernel start + every cell (shutdown excluded)."""
    cpu_s: list[float] = field(default_factory=list)
    """CPU time (user + system) the kernel process and its children used in each run."""
    peak_rss_mib: list[float] = field(default_factory=list)
    """Peak resident memory of the kernel process (and children) in each run, MiB."""
    error: str | None = None

    @property
    def median_s(self) -> float:
        return median(self.times_s)

    @property
    def peak_mib(self) -> float:
        return max(self.peak_rss_mib) if self.peak_rss_mib else math.nan


@dataclass
class PanelResult:
    """Timed redraws of one interactive panel over several sweeps of its controls."""

    name: str
    build_ms: float = math.nan
    """Creating the panel (factory call, including its first redraw)."""
    first_ms: float = math.nan
    """The first timed redraw after creation (warm-up, not in the statistics)."""
    times_ms: list[float] = field(default_factory=list)
    """Wall time of each timed redraw."""
    cpu_ms: list[float] = field(default_factory=list)
    """CPU time of the harness process during each timed redraw."""
    error: str | None = None

    @property
    def median_ms(self) -> float:
        return median(self.times_ms)

    @property
    def median_cpu_ms(self) -> float:
        return median(self.cpu_ms)

    @property
    def p95_ms(self) -> float:
        return percentile(self.times_ms, 95)


@dataclass
class ScalingResult:
    """Time of one compute function against a size knob, the other arguments fixed."""

    function: str
    knob: str
    fixed: str
    sizes: list[int] = field(default_factory=list)
    times_ms: list[float] = field(default_factory=list)
    """Best (smallest) time per call for each size, over several calls."""
    available: bool = True
    note: str = ""

    @property
    def exponent(self) -> float:
        return loglog_slope(self.sizes, self.times_ms)


# -- budgets ----------------------------------------------------------------------------


def check_budgets(notebooks: Sequence[NotebookResult], panels: Sequence[PanelResult]) -> list[str]:
    """One message per exceeded budget or failed measurement, naming the offender.

    Checked: each notebook's median wall time against its budget, the sum of the medians
    against the collection budget, each notebook's peak kernel memory, each panel's
    median redraw time; a notebook or panel that raised is an offender too.
    """
    offenders: list[str] = []
    for nb in notebooks:
        if nb.error is not None:
            offenders.append(f"{nb.name}: failed to run ({nb.error})")
            continue
        if nb.median_s > nb.budget_s:
            offenders.append(f"{nb.name}: median {nb.median_s:.1f} s > budget {nb.budget_s:.0f} s")
        if nb.peak_mib > budgets.PEAK_MEMORY_BUDGET_MIB:
            offenders.append(
                f"{nb.name}: peak kernel memory {nb.peak_mib:.0f} MiB"
                f" > budget {budgets.PEAK_MEMORY_BUDGET_MIB:.0f} MiB"
            )
    total = total_notebook_time(notebooks)
    if total > budgets.TOTAL_TIME_BUDGET_S:
        offenders.append(
            f"all notebooks: total {total:.1f} s > budget {budgets.TOTAL_TIME_BUDGET_S:.0f} s"
        )
    for panel in panels:
        if panel.error is not None:
            offenders.append(f"panel {panel.name}: failed ({panel.error})")
        elif panel.median_ms > budgets.REDRAW_MEDIAN_BUDGET_MS:
            offenders.append(
                f"panel {panel.name}: median redraw {panel.median_ms:.0f} ms"
                f" > budget {budgets.REDRAW_MEDIAN_BUDGET_MS:.0f} ms"
            )
    return offenders


def total_notebook_time(notebooks: Sequence[NotebookResult]) -> float:
    """Sum of the median wall times of the notebooks that ran."""
    return sum(nb.median_s for nb in notebooks if nb.error is None and nb.times_s)


def exit_code(offenders: Sequence[str]) -> int:
    """0 when every budget holds, 1 otherwise."""
    return 1 if offenders else 0


# -- the machine ------------------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else the platform's guess)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_average() -> list[float] | None:
    """The 1/5/15-minute load averages (None where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # Windows
        return None


def machine_description() -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, memory, OS, Python and package versions."""
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
        memory_gib = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:  # pragma: no cover - psutil is a test requirement
        physical, memory_gib = None, None
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": physical,
        "memory_gib": memory_gib,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch": _version("torch"),
        "numpy": _version("numpy"),
        "matplotlib": _version("matplotlib"),
        "load_average_at_start": load_average(),
    }


# -- tables -----------------------------------------------------------------------------


def _fmt(x: float, spec: str) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; numeric-looking columns are right-aligned."""

    def numeric(cell: Any) -> bool:
        text = str(cell).replace(",", "").replace("**", "").strip()
        try:
            float(text)
            return True
        except ValueError:
            return text in {"–", ""}

    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row {list(row)} has {len(row)} cells, header has {len(header)}")
    align = [
        "---:" if rows and all(numeric(row[i]) for row in rows) else ":---"
        for i in range(len(header))
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines)


def notebook_table(notebooks: Sequence[NotebookResult]) -> str:
    """Per-notebook rows and a total row."""
    header = ["Notebook", "Runs", "Median s", "Min s", "Max s", "Kernel CPU s",
              "Peak RSS MiB", "Budget s", "Status"]
    rows = []
    for nb in notebooks:
        if nb.error is not None:
            rows.append([nb.name, len(nb.times_s), "–", "–", "–", "–", "–",
                         _fmt(nb.budget_s, ".0f"), "FAILED"])
            continue
        ok = nb.median_s <= nb.budget_s and not nb.peak_mib > budgets.PEAK_MEMORY_BUDGET_MIB
        rows.append([
            nb.name, len(nb.times_s), _fmt(nb.median_s, ".1f"), _fmt(min(nb.times_s), ".1f"),
            _fmt(max(nb.times_s), ".1f"), _fmt(median(nb.cpu_s), ".1f"), _fmt(nb.peak_mib, ".0f"),
            _fmt(nb.budget_s, ".0f"), "ok" if ok else "OVER",
        ])
    total = total_notebook_time(notebooks)
    peak = max((nb.peak_mib for nb in notebooks if nb.peak_rss_mib), default=math.nan)
    rows.append([
        "**Total**", "", _fmt(total, ".1f"), "", "", "", _fmt(peak, ".0f"),
        _fmt(budgets.TOTAL_TIME_BUDGET_S, ".0f"),
        "ok" if total <= budgets.TOTAL_TIME_BUDGET_S else "OVER",
    ])
    return markdown_table(header, rows)


def panel_table(panels: Sequence[PanelResult]) -> str:
    """Per-panel redraw statistics."""
    header = ["Panel", "Redraws", "Median ms", "p95 ms", "Max ms", "Median CPU ms",
              "First redraw ms", "Build ms", "Budget ms", "Status"]
    rows = []
    for p in panels:
        if p.error is not None:
            rows.append([p.name, len(p.times_ms), "–", "–", "–", "–", "–", "–",
                         _fmt(budgets.REDRAW_MEDIAN_BUDGET_MS, ".0f"), "FAILED"])
            continue
        ok = p.median_ms <= budgets.REDRAW_MEDIAN_BUDGET_MS
        rows.append([
            p.name, len(p.times_ms), _fmt(p.median_ms, ".0f"), _fmt(p.p95_ms, ".0f"),
            _fmt(max(p.times_ms, default=math.nan), ".0f"), _fmt(p.median_cpu_ms, ".0f"),
            _fmt(p.first_ms, ".0f"),
            _fmt(p.build_ms, ".0f"), _fmt(budgets.REDRAW_MEDIAN_BUDGET_MS, ".0f"),
            "ok" if ok else "OVER",
        ])
    if panels:
        every = [t for p in panels if p.error is None for t in p.times_ms]
        rows.append(["**All panels**", len(every), _fmt(median(every), ".0f"),
                     _fmt(percentile(every, 95), ".0f"), _fmt(max(every, default=math.nan), ".0f"),
                     "", "", "", "", ""])
    return markdown_table(header, rows)


def scaling_table(results: Sequence[ScalingResult]) -> str:
    """Time against size for each size knob, with the fitted growth exponent."""
    header = ["Function", "Knob", "Fixed", "Time per call (size → ms)", "Growth exponent k"]
    rows = []
    for r in results:
        if not r.available:
            rows.append([r.function, r.knob, r.fixed, f"not available ({r.note})", "–"])
            continue
        pairs = ", ".join(f"{s} → {t:.3g}" for s, t in zip(r.sizes, r.times_ms, strict=True))
        rows.append([r.function, r.knob, r.fixed, pairs, _fmt(r.exponent, ".2f")])
    return markdown_table(header, rows)


def machine_lines(machine: dict[str, Any]) -> str:
    """The machine description as a Markdown bullet list."""
    cores = f"{machine.get('logical_cores')} logical"
    if machine.get("physical_cores"):
        cores += f" / {machine['physical_cores']} physical"
    lines = [
        f"- CPU: {machine.get('cpu_model')} ({cores} cores)",
        f"- Memory: {machine.get('memory_gib')} GiB; OS: {machine.get('os')}",
        f"- Python {machine.get('python')}, torch {machine.get('torch')}, "
        f"numpy {machine.get('numpy')}, matplotlib {machine.get('matplotlib')}",
    ]
    for when in ("start", "end"):
        load = machine.get(f"load_average_at_{when}")
        if load is not None:
            lines.append(f"- Load average at the {when} of the run (1/5/15 min): "
                         f"{', '.join(str(x) for x in load)} (above the core count means "
                         "other programs competed for the CPU and inflated the times)")
    return "\n".join(lines)


# -- the report -------------------------------------------------------------------------


def summary_markdown(notebooks: Sequence[NotebookResult], panels: Sequence[PanelResult],
                     scaling: Sequence[ScalingResult], offenders: Sequence[str]) -> str:
    """The tables and the verdict (what ``make bench`` prints)."""
    parts = []
    if notebooks:
        parts += ["### Notebooks", "", notebook_table(notebooks), ""]
    if panels:
        parts += ["### Slider redraws", "", panel_table(panels), ""]
    if scaling:
        parts += ["### Cost against size", "", scaling_table(scaling), ""]
    if offenders:
        parts += ["### Over budget", ""] + [f"- {o}" for o in offenders] + [""]
    else:
        parts += ["All budgets hold.", ""]
    return "\n".join(parts)


METHOD = f"""\
## How it is measured

- **Notebooks.** Each notebook in `notebooks/` is read into memory (the `.ipynb` files are
  never modified) and executed headless with nbclient in a fresh `python3` kernel, started in
  the `notebooks/` folder, *repeats* times. *Wall time* runs from asking for the kernel to
  the end of the last cell (kernel start-up included, as in "Restart kernel and run all";
  shutdown excluded); the table shows the median, min and max over the runs. *Kernel CPU*
  is the user + system CPU time of the kernel process and its children, which is less
  sensitive than wall time to other programs competing for the cores.
- **Peak memory.** The peak resident set size (RSS) of the kernel: after every cell the
  harness reads the kernel process's high-water mark `VmHWM` from `/proc/<pid>/status`
  (Linux keeps it exactly, so short spikes between reads are not missed), and a background
  thread samples, every 20 ms with psutil, the RSS of the kernel plus all its child processes.
  The reported peak is the larger of the two (on systems without `/proc`, only the
  sampled value, which can miss spikes shorter than 20 ms). `resource.getrusage` is not
  used: its `ru_maxrss` for children is a maximum over *all* finished children, so it cannot
  separate one notebook from the next.
- **Slider redraws.** Every panel registered in `helpers.widgets` (`all_panels()`) is
  created with matplotlib's Agg backend (what the inline backend uses), and
  `Panel.redraw(**setting)` (the update callback plus rendering the PNG the student sees)
  is timed for every setting of `Panel.sweep()` (each control at its ends and middle),
  over several sweeps. The first redraw after creation is a warm-up, shown separately and
  left out of the median and 95th percentile. *Median CPU* is the CPU time the harness
  process spent per redraw: close to the wall time on an idle machine, much smaller when
  other programs compete for the cores.
- **Cost against size.** Where a notebook has a size knob, the compute function behind it
  is called directly for a few sizes (the best of several calls after a warm-up call: the
  minimum is the estimate least disturbed by other programs), and
  the growth exponent k of time ∝ size^k is fitted on a log-log scale, so a change in
  complexity shows up as a change in k.
- **Budgets** (`benchmarks/budgets.py`): each notebook's median within its own budget
  (00: 20 s, 01: 45 s, 02: 60 s, 03: 60 s, 04: 30 s, 05: 30 s, 06: 90 s, any other
  {budgets.DEFAULT_NOTEBOOK_TIME_BUDGET_S:.0f} s), the sum of the medians under
  {budgets.TOTAL_TIME_BUDGET_S:.0f} s, peak kernel memory under
  {budgets.PEAK_MEMORY_BUDGET_MIB:.0f} MiB (1.5 GiB) per notebook, median slider redraw under
  {budgets.REDRAW_MEDIAN_BUDGET_MS:.0f} ms. `make bench` exits non-zero and names the
  offenders when one is exceeded.
- Timings on a shared or busy machine are inflated; compare runs made on the same machine.
"""


def busy_machine_note(machine: dict[str, Any]) -> str:
    """A warning when the load average exceeded the core count during the run ("" if not)."""
    cores = machine.get("logical_cores") or 0
    loads = [load[0] for load in (machine.get("load_average_at_start"),
                                  machine.get("load_average_at_end")) if load]
    if not cores or not loads or max(loads) <= cores:
        return ""
    return (f"> **Busy machine.** The 1-minute load average reached {max(loads):.1f} on "
            f"{cores} cores during this run: other programs competed for the CPU, so the wall "
            "times above are inflated (roughly by the load divided by the core count) and the "
            "budget verdicts are pessimistic. The CPU-time columns are much less affected and "
            "are closer to what an idle machine shows. Re-run `make bench` on an idle machine "
            "before judging the budgets.\n")


def results_markdown(machine: dict[str, Any], date: str, options: dict[str, Any],
                     notebooks: Sequence[NotebookResult], panels: Sequence[PanelResult],
                     scaling: Sequence[ScalingResult], offenders: Sequence[str]) -> str:
    """The whole of RESULTS.md."""
    return "\n".join([
        "# Performance of the course notebooks and sliders",
        "",
        f"Measured {date} with `make bench` "
        f"({options.get('repeats')} runs per notebook, {options.get('sweeps')} sweeps per panel).",
        "",
        "## Machine",
        "",
        machine_lines(machine),
        "",
        "## Results",
        "",
        summary_markdown(notebooks, panels, scaling, offenders),
        busy_machine_note(machine),
        METHOD,
        "## Reproduce",
        "",
        "```bash",
        "make bench                                      # every notebook and panel; writes this file",
        "python -m benchmarks.run --repeats 1 --notebooks '03_*'  # one notebook, one run",
        "python -m benchmarks.run --no-notebooks          # only slider redraws and size scaling",
        "```",
        "",
        "Options: `--repeats N`, `--sweeps N`, `--notebooks PATTERN`, `--no-notebooks`, "
        "`--no-panels`, `--no-scaling`, `--output DIR`, `--render-only` (rewrite this file from the JSON). "
        "The same numbers, for tools, are in "
        "`results.json` next to this file.",
        "",
    ])


def results_json(machine: dict[str, Any], date: str, options: dict[str, Any],
                 notebooks: Sequence[NotebookResult], panels: Sequence[PanelResult],
                 scaling: Sequence[ScalingResult], offenders: Sequence[str]) -> str:
    """The same results as JSON, with the derived statistics included."""

    def clean(x: Any) -> Any:  # JSON has no NaN
        if isinstance(x, float):
            return None if math.isnan(x) else round(x, 6)
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x

    payload = {
        "date": date,
        "machine": machine,
        "options": options,
        "budgets": {
            "notebook_time_s": budgets.NOTEBOOK_TIME_BUDGET_S,
            "default_notebook_time_s": budgets.DEFAULT_NOTEBOOK_TIME_BUDGET_S,
            "total_time_s": budgets.TOTAL_TIME_BUDGET_S,
            "peak_memory_mib": budgets.PEAK_MEMORY_BUDGET_MIB,
            "redraw_median_ms": budgets.REDRAW_MEDIAN_BUDGET_MS,
        },
        "notebooks": [{**asdict(nb), "median_s": nb.median_s, "peak_mib": nb.peak_mib}
                      for nb in notebooks],
        "total_notebook_time_s": total_notebook_time(notebooks),
        "panels": [{**asdict(p), "median_ms": p.median_ms, "p95_ms": p.p95_ms} for p in panels],
        "scaling": [{**asdict(s), "exponent": s.exponent} for s in scaling],
        "offenders": list(offenders),
        "ok": not offenders,
    }
    return json.dumps(clean(payload), indent=2, ensure_ascii=False) + "\n"


def load_results(text: str) -> tuple:
    """Read back what :func:`results_json` wrote, as the arguments of :func:`results_markdown`."""
    data = json.loads(text)

    def floats(values: list[Any]) -> list[float]:
        return [math.nan if v is None else float(v) for v in values]

    def nan(value: Any) -> float:
        return math.nan if value is None else float(value)

    notebooks = [NotebookResult(name=n["name"], budget_s=n["budget_s"], times_s=floats(n["times_s"]),
                                cpu_s=floats(n["cpu_s"]), peak_rss_mib=floats(n["peak_rss_mib"]),
                                error=n["error"]) for n in data["notebooks"]]
    panels = [PanelResult(name=p["name"], build_ms=nan(p["build_ms"]), first_ms=nan(p["first_ms"]),
                          times_ms=floats(p["times_ms"]), cpu_ms=floats(p.get("cpu_ms", [])),
                          error=p["error"]) for p in data["panels"]]
    scaling = [ScalingResult(function=s["function"], knob=s["knob"], fixed=s["fixed"],
                             sizes=list(s["sizes"]), times_ms=floats(s["times_ms"]),
                             available=s["available"], note=s["note"]) for s in data["scaling"]]
    return (data["machine"], data["date"], data["options"], notebooks, panels, scaling,
            list(data["offenders"]))


def today() -> str:
    """The current UTC date and time, to the minute."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
