"""What a classroom run measured, fits over the class size, the sizing rule, ``classroom.json``
and ``CLASSROOM.md`` (pure: nothing here starts a process)."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from benchmarks.report import _fmt, machine_lines, markdown_table, median, percentile

#: A class passes when every student finished, the median slider redraw stayed under this,
REDRAW_MEDIAN_TARGET_MS = 500.0
#: its 95th percentile under this,
REDRAW_P95_TARGET_MS = 1000.0
#: and the median "Run all" under a minute (about a section's introduction, during which
#: TEACHING.md suggests starting the run).
RUN_ALL_MEDIAN_TARGET_S = 60.0
MEMORY_ROUND_MIB = 128  # memory requests are rounded up to multiples of this
CPU_ROUND = 0.05        # CPU requests are rounded up to multiples of this (cores)
#: The class size the sizing is extrapolated to.
TARGET_CLASS = 40


@dataclass
class StudentResult:
    """One simulated student: seconds from asking for a kernel, and its kernel's cost."""

    name: str
    first_figure_s: float = math.nan    # first output with a PNG
    run_all_s: float = math.nan         # last cell finished
    cells: int = 0                      # code cells executed
    redraws_ms: list[float] = field(default_factory=list)
    cpu_s: float = math.nan             # kernel user + system CPU seconds (with children)
    peak_rss_mib: float = math.nan      # the larger of the sampled peak and the kernel's VmHWM
    peak_pss_mib: float = math.nan      # sampled peak proportional set size
    error: str | None = None


@dataclass
class RoundResult:
    """One class size: N students running one notebook at the same time."""

    students: int
    notebook: str
    results: list[StudentResult] = field(default_factory=list)
    total_rss_mib: float = math.nan     # peak of the kernels' summed RSS, at one moment
    total_pss_mib: float = math.nan     # peak of the kernels' summed PSS, at one moment
    load_average: list[float] | None = None   # 1/5/15 min at the end of the round
    error: str | None = None                  # the round itself failed (e.g. timeout)

    def __post_init__(self) -> None:
        if isinstance(self.students, bool) or not isinstance(self.students, int):
            raise TypeError(f"students must be an int, got {type(self.students).__name__}")
        if self.students < 1:
            raise ValueError(f"students must be >= 1, got {self.students}")

    @property
    def failures(self) -> int:
        """Students who did not finish (those who never reported count as failed)."""
        return max(0, self.students - len(self.results)) + sum(r.error is not None for r in self.results)

    @property
    def redraws_ms(self) -> list[float]:
        return [t for r in self.results if r.error is None for t in r.redraws_ms]

    def values(self, attribute: str) -> list[float]:
        """``attribute`` of every student who finished, NaN left out."""
        return [v for r in self.results if r.error is None and not math.isnan(v := getattr(r, attribute))]

    def summary(self) -> dict[str, float]:
        """The per-N numbers of the report (NaN where nothing was measured)."""
        run_all = self.values("run_all_s")
        return {"first_figure_median_s": median(self.values("first_figure_s")), "run_all_median_s": median(run_all),
                "run_all_max_s": max(run_all, default=math.nan), "redraw_median_ms": median(self.redraws_ms),
                "redraw_p95_ms": percentile(self.redraws_ms, 95), "cpu_median_s": median(self.values("cpu_s")),
                "peak_rss_max_mib": max(self.values("peak_rss_mib"), default=math.nan),
                "pss_per_student_mib": self.total_pss_mib / self.students}


def passes(round_: RoundResult) -> bool:
    """Every student finished, "Run all" took under a minute (median) and the slider stayed
    responsive (the targets above): the wall-clock verdict, load-sensitive."""
    if round_.error is not None or round_.failures or not round_.redraws_ms:
        return False
    s = round_.summary()
    return (s["redraw_median_ms"] <= REDRAW_MEDIAN_TARGET_MS and s["redraw_p95_ms"] <= REDRAW_P95_TARGET_MS
            and s["run_all_median_s"] <= RUN_ALL_MEDIAN_TARGET_S)


def round_up(value: float, step: float) -> float:
    """``value`` rounded up to a multiple of ``step`` (a value already on it stays).

    Raises:
        ValueError: if ``step`` is not positive or ``value`` is NaN or negative.
    """
    if not step > 0 or math.isnan(value) or value < 0:
        raise ValueError(f"need step > 0 and a value >= 0, got step {step}, value {value}")
    return round(math.ceil(value / step - 1e-9) * step, 10)


def notebook_fit(rounds: Sequence[RoundResult]) -> dict[str, Any]:
    """One notebook's rounds fitted over N by least squares (``key_a + key_b * N``, ``key_at_target`` at
    :data:`TARGET_CLASS`): ``pss``/``rss``, the kernels' memory at once (MiB); ``cpu``, the median
    CPU seconds per student; ``wall``, the median "Run all" (load-sensitive).  ``cpu_s``: the
    largest median CPU seconds of a round; ``cores_at_target``: the cores the target class needs
    at that cost to run "Run all" within :data:`RUN_ALL_MEDIAN_TARGET_S`.

    Raises:
        ValueError: if fewer than two distinct class sizes were measured.
    """
    done = [r for r in rounds if r.values("cpu_s") and not math.isnan(r.total_pss_mib)]
    sizes, cpu = [r.students for r in done], [r.summary()["cpu_median_s"] for r in done]
    if len(set(sizes)) < 2:
        raise ValueError(f"need two distinct class sizes measured, got {sizes}")
    fit: dict[str, Any] = {"sizes": sizes, "cpu_s": max(cpu)}
    for key, ys in (("pss", [r.total_pss_mib for r in done]), ("rss", [r.total_rss_mib for r in done]), ("cpu", cpu),
                    ("wall", [r.summary()["run_all_median_s"] for r in done])):
        fit[f"{key}_b"], fit[f"{key}_a"] = statistics.linear_regression(sizes, ys)
        fit[f"{key}_at_target"] = fit[f"{key}_a"] + fit[f"{key}_b"] * TARGET_CLASS
    return fit | {"cores_at_target": TARGET_CLASS * fit["cpu_s"] / RUN_ALL_MEDIAN_TARGET_S}


def derive_limits(rounds: Sequence[RoundResult], cores: int, server_mib: float,
                  server_pss_mib: float = math.nan) -> dict[str, Any]:
    """The per-student sizing rule, from CPU seconds and memory (load-robust).  "Run all" of the
    heaviest notebook (largest ``cpu_s``) pressed by the whole class at once takes about
    N * cpu_s / cores: ``students_per_core`` keeps it under :data:`RUN_ALL_MEDIAN_TARGET_S`
    (rounded down to 0.5), ``cpu_guarantee`` is its inverse rounded up to :data:`CPU_ROUND`,
    ``cpu_limit`` 1 (one thread per kernel).  ``memory_guarantee_mib``: one server plus the
    largest kernel (peak RSS), ``memory_limit_mib``: plus a second kernel, rounded up to
    :data:`MEMORY_ROUND_MIB` (twice that for the limit).

    Raises:
        ValueError: if ``server_mib`` is not > 0 or a notebook has fewer than two class sizes.
    """
    if not server_mib > 0:
        raise ValueError(f"server_mib must be > 0, got {server_mib}")
    fits = {nb: notebook_fit([r for r in rounds if r.notebook == nb]) for nb in sorted({r.notebook for r in rounds})}
    heaviest = max(fits, key=lambda nb: fits[nb]["cpu_s"])
    kernel_mib = max(m for r in rounds for m in r.values("peak_rss_mib"))
    per_core = math.floor(2 * RUN_ALL_MEDIAN_TARGET_S / fits[heaviest]["cpu_s"]) / 2
    guarantee = round_up(server_mib + kernel_mib, MEMORY_ROUND_MIB)
    return {"cores": cores, "heaviest_notebook": heaviest, "cpu_s_per_student": fits[heaviest]["cpu_s"],
            "students_per_core": per_core, "cpu_guarantee": round_up(1 / per_core, CPU_ROUND), "cpu_limit": 1.0,
            "server_mib": server_mib, "server_pss_mib": server_pss_mib, "kernel_mib": kernel_mib,
            "memory_guarantee_mib": guarantee, "fits": fits, "target_class": TARGET_CLASS,
            "memory_limit_mib": max(round_up(server_mib + 2 * kernel_mib, 2 * MEMORY_ROUND_MIB),
                                    guarantee + MEMORY_ROUND_MIB)}


def byte_specification(mib: float) -> str:
    """A whole number of MiB as JupyterHub writes it (K, M, G are powers of 1024): ``"2G"`` for
    whole GiB, else ``"1792M"``.

    Raises:
        TypeError: if ``mib`` is not a number.  ValueError: if not a positive whole number.
    """
    if isinstance(mib, bool) or not isinstance(mib, (int, float)):
        raise TypeError(f"mib must be a number, got {type(mib).__name__}")
    if not mib > 0 or mib != int(mib):
        raise ValueError(f"mib must be a positive whole number, got {mib}")
    return f"{int(mib) // 1024}G" if int(mib) % 1024 == 0 else f"{int(mib)}M"


def z2jh_resources(limits: Mapping[str, Any]) -> dict[str, Any]:
    """The ``singleuser`` CPU and memory of ``deploy/z2jh/values.yaml`` for ``limits``.

    Raises:
        ValueError: if ``limits`` lacks one of the derived numbers.
    """
    try:
        return {"cpu": {"guarantee": float(limits["cpu_guarantee"]), "limit": float(limits["cpu_limit"])},
                "memory": {"guarantee": byte_specification(limits["memory_guarantee_mib"]),
                           "limit": byte_specification(limits["memory_limit_mib"])}}
    except (KeyError, TypeError) as error:
        raise ValueError(f"limits lacks a derived number: {error!r}") from None


# -- classroom.json and CLASSROOM.md ----------------------------------------------------------


def _clean(x: Any) -> Any:
    """JSON has no NaN: NaN becomes null; floats are rounded to 6 decimals."""
    if isinstance(x, float):
        return None if math.isnan(x) else round(x, 6)
    if isinstance(x, (dict, list, tuple)):
        return {k: _clean(v) for k, v in x.items()} if isinstance(x, dict) else [_clean(v) for v in x]
    return x


def to_json(machine: Mapping[str, Any], date: str, options: Mapping[str, Any],
            rounds: Sequence[RoundResult], limits: Mapping[str, Any]) -> str:
    """``classroom.json``: every student's numbers, the per-N summaries, the fits and limits."""
    return json.dumps(_clean({"date": date, "machine": dict(machine), "options": dict(options), "rounds": [
        {**asdict(r), "summary": r.summary(), "passes": passes(r)} for r in rounds], "limits": dict(limits)}),
        indent=2, ensure_ascii=False) + "\n"


def _read(cls: Any, data: Mapping[str, Any], **extra: Any) -> Any:
    """A dataclass from its JSON: null is NaN in float fields."""
    return cls(**{f.name: math.nan if data[f.name] is None and f.type == "float" else data[f.name]
                  for f in fields(cls) if f.name not in extra}, **extra)


def from_json(text: str) -> tuple[dict[str, Any], str, dict[str, Any], list[RoundResult], dict[str, Any]]:
    """Read back :func:`to_json`: ``(machine, date, options, rounds, limits)``.

    Raises:
        ValueError: if ``text`` is not such a document.
    """
    try:
        data = json.loads(text)
        rounds = [_read(RoundResult, r, results=[_read(StudentResult, s) for s in r["results"]])
                  for r in data["rounds"]]
        return data["machine"], data["date"], data["options"], rounds, data["limits"]
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"text is not a classroom.json document: {error!r}") from None


def rounds_table(rounds: Sequence[RoundResult]) -> str:
    """Per notebook and class size: CPU and memory (load-robust), then wall times (load-sensitive)."""
    rows = [[r.notebook.rsplit("/", 1)[-1][:2], r.students, _fmt(s["cpu_median_s"], ".1f"),
             _fmt(s["peak_rss_max_mib"], ".0f"), _fmt(r.total_rss_mib, ".0f"), _fmt(r.total_pss_mib, ".0f"),
             _fmt(s["pss_per_student_mib"], ".0f"), _fmt(s["first_figure_median_s"], ".1f"),
             f"{_fmt(s['run_all_median_s'], '.1f')} / {_fmt(s['run_all_max_s'], '.1f')}",
             f"{_fmt(s['redraw_median_ms'], '.0f')} / {_fmt(s['redraw_p95_ms'], '.0f')}", r.failures,
             "ok" if passes(r) else "too slow" if not r.failures and r.error is None else "FAILED",
             " ".join(f"{x:.1f}" for x in r.load_average or [])] for r in rounds for s in [r.summary()]]
    return markdown_table(["NB", "N", "CPU s per student", "Largest kernel RSS MiB", "Kernels RSS MiB",
                           "Kernels PSS MiB", "PSS per student MiB", "First figure s", "Run all s (median / max)",
                           "Redraw ms (median / p95)", "Failed", "Verdict", "Load after"], rows)


def sizing_lines(limits: Mapping[str, Any]) -> list[str]:
    """The fits extrapolated to the target class, the sizing rule and the z2jh values, as Markdown."""
    if not limits:
        return ["No limits could be derived (fewer than two class sizes measured)."]
    n, r = limits["target_class"], z2jh_resources(limits)
    return [f"## {n} students, extrapolated", "",
            f"Straight lines fitted by least squares to the measured class sizes and extended to N = {n}: "
            "an extrapolation, not a measurement.", "", *[
                f"- `{nb}` (fitted over N = {', '.join(map(str, f['sizes']))}): kernels' memory at once PSS ≈ "
                f"{f['pss_a']:.0f} + {f['pss_b']:.0f} × N MiB (RSS ≈ {f['rss_a']:.0f} + {f['rss_b']:.0f} × N); "
                f"at N = {n} **{f['pss_at_target'] / 1024:.1f} GiB PSS** ({f['rss_at_target'] / 1024:.1f} GiB "
                f"RSS). CPU per student ≈ {f['cpu_a']:.1f} + {f['cpu_b']:.2f} × N CPU-seconds (median; kernels "
                f"contend for caches), {f['cpu_s']:.1f} in the largest class: {n} students pressing \"Run all\" "
                f"together need **{f['cores_at_target']:.1f} cores** at that cost to finish within "
                f"{RUN_ALL_MEDIAN_TARGET_S:.0f} s. On these {limits['cores']} cores \"Run all\" took ≈ "
                f"{f['wall_a']:.1f} + {f['wall_b']:.1f} × N s "
                f"(median, load-sensitive): {f['wall_at_target']:.0f} s at N = {n}."
                for nb, f in limits["fits"].items()], "",
            "## Sizing rule derived from these numbers", "",
            f"- **Students per core: {limits['students_per_core']:g}.** \"Run all\" of the heaviest notebook "
            f"(`{limits['heaviest_notebook']}`, {limits['cpu_s_per_student']:.1f} CPU-seconds per student) pressed "
            f"by the whole class at once takes about N × CPU-seconds / cores; {limits['students_per_core']:g} per "
            f"core keeps it under {RUN_ALL_MEDIAN_TARGET_S:.0f} s (rounded down to half a student). The wall-clock "
            "verdicts above are load-sensitive, a check of this rule on the day it was measured.",
            f"- **CPU per student:** guarantee **{r['cpu']['guarantee']:g}** cores (1 / students per core), "
            f"limit **{r['cpu']['limit']:g}** (one thread per kernel).",
            f"- **Memory per student:** one JupyterLab server ({limits['server_mib']:.0f} MiB RSS, "
            f"{_fmt(limits.get('server_pss_mib'), '.0f')} MiB PSS) plus the largest kernel measured "
            f"({limits['kernel_mib']:.0f} MiB peak RSS): guarantee **{limits['memory_guarantee_mib']:.0f} MiB**; "
            f"with a second kernel left running, limit **{limits['memory_limit_mib']:.0f} MiB**.", "",
            "In `deploy/z2jh/values.yaml` (Zero to JupyterHub; checked by `tests/test_classroom.py`):", "",
            "```yaml", yaml.safe_dump({"singleuser": r}, sort_keys=False).strip(), "```"]


TEMPLATE = Path(__file__).with_name("CLASSROOM.md.in")


def classroom_markdown(machine: Mapping[str, Any], date: str, options: Mapping[str, Any],
                       rounds: Sequence[RoundResult], limits: Mapping[str, Any]) -> str:
    """The whole of ``CLASSROOM.md``: :data:`TEMPLATE` filled in."""
    failures = [f"- {r.notebook}, N = {r.students}: {r.error}" for r in rounds if r.error] + [
        f"- {r.notebook}, N = {r.students}, {s.name}: {s.error}" for r in rounds for s in r.results if s.error]
    start = ", ".join(f"{x:.2f}" for x in machine.get("load_average_at_start") or [])
    return TEMPLATE.read_text().format(
        date=date, notebooks=" and ".join(f"`{nb}`" for nb in options.get("notebooks", [])),
        moves=options.get("moves"), think_s=options.get("think_s"), threads=options.get("threads_per_kernel"),
        source=options.get("source", "HEAD"), table=rounds_table(rounds), sizing="\n".join(sizing_lines(limits)),
        machine="\n".join([machine_lines({k: v for k, v in machine.items() if not k.startswith("load_average")}),
                           f"- Load average before the run (other programs; 1/5/15 min): {start}",
                           f"- The whole run took {_fmt(machine.get('duration_s'), '.0f')} s"]),
        failures="\n".join(failures) or "Every student of every class size finished.",
        run_all_target=RUN_ALL_MEDIAN_TARGET_S, redraw_median_target=REDRAW_MEDIAN_TARGET_MS,
        redraw_p95_target=REDRAW_P95_TARGET_MS)
