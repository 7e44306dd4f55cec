"""The benchmark harness's pure parts: statistics, budgets, tables, machine description.

No timed assertions: timings depend on the machine.  One tiny synthetic notebook checks
that the notebook runner records a run without touching the file.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import budgets, report  # noqa: E402
from benchmarks.report import NotebookResult, PanelResult, ScalingResult  # noqa: E402
from benchmarks.run import find_notebooks, parse_args  # noqa: E402
from tools.course import load_course  # noqa: E402


def _nb(name: str = "01_x.ipynb", times: tuple[float, ...] = (1.0, 2.0, 3.0),
        peak: float = 300.0, budget: float = 45.0) -> NotebookResult:
    return NotebookResult(name=name, budget_s=budget, times_s=list(times),
                          cpu_s=[t / 2 for t in times], peak_rss_mib=[peak] * len(times))


def _panel(name: str = "a.b", times: tuple[float, ...] = (10.0, 20.0, 30.0)) -> PanelResult:
    return PanelResult(name=name, build_ms=5.0, first_ms=50.0, times_ms=list(times),
                       cpu_ms=list(times))


# -- statistics -------------------------------------------------------------------------


def test_median_and_percentile_match_numpy() -> None:
    values = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0]
    assert report.median(values) == 5.0
    assert report.median([1.0, 2.0, 3.0, 10.0]) == 2.5
    for q in (0, 5, 50, 90, 95, 99, 100):
        assert report.percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert report.percentile(list(range(1, 101)), 95) == pytest.approx(95.05)
    assert report.percentile([4.0], 95) == 4.0


def test_statistics_of_nothing_are_nan() -> None:
    assert math.isnan(report.median([]))
    assert math.isnan(report.percentile([], 95))
    assert math.isnan(report.loglog_slope([10], [1.0]))


def test_percentile_rejects_bad_q() -> None:
    with pytest.raises(ValueError, match=r"q must be in \[0, 100\]"):
        report.percentile([1.0], 101)


def test_loglog_slope_recovers_the_exponent() -> None:
    sizes = [10, 20, 40, 80]
    assert report.loglog_slope(sizes, [0.5 * s for s in sizes]) == pytest.approx(1.0)
    assert report.loglog_slope(sizes, [3e-4 * s**2 for s in sizes]) == pytest.approx(2.0)
    assert report.loglog_slope(sizes, [7.0] * 4) == pytest.approx(0.0)
    scaling = ScalingResult("m.f", "d", "n=1", sizes=sizes, times_ms=[s**1.5 for s in sizes])
    assert scaling.exponent == pytest.approx(1.5)


def test_result_properties() -> None:
    nb = _nb(times=(3.0, 1.0, 2.0), peak=400.0)
    nb.peak_rss_mib = [100.0, 400.0, 250.0]
    assert nb.median_s == 2.0 and nb.peak_mib == 400.0
    panel = _panel(times=tuple(float(t) for t in range(1, 21)))
    assert panel.median_ms == 10.5
    assert panel.p95_ms == pytest.approx(19.05)


# -- budgets ----------------------------------------------------------------------------


def test_budgets_come_from_the_course_table() -> None:
    """Each notebook's budget is its ``budget_s`` in notebooks/course.toml; a notebook not in
    the table (or not numbered) gets the default."""
    course = load_course()
    for nb in course.notebooks:
        assert budgets.notebook_time_budget(nb.file) == nb.budget_s
    unused = next(f"{n:02d}" for n in range(100) if f"{n:02d}" not in course.budgets())
    assert budgets.notebook_time_budget(f"{unused}_extra.ipynb") == budgets.DEFAULT_NOTEBOOK_TIME_BUDGET_S
    assert budgets.notebook_time_budget("scratch.ipynb") == budgets.DEFAULT_NOTEBOOK_TIME_BUDGET_S


def test_no_notebook_budget_exceeds_the_default_or_the_total() -> None:
    """README promises every notebook at most the default budget; one notebook alone must
    fit in the total."""
    assert max(budgets.NOTEBOOK_TIME_BUDGET_S.values()) <= budgets.DEFAULT_NOTEBOOK_TIME_BUDGET_S
    assert budgets.DEFAULT_NOTEBOOK_TIME_BUDGET_S < budgets.TOTAL_TIME_BUDGET_S


def test_latest_results_cover_every_notebook_of_the_course_within_budget() -> None:
    """benchmarks/results.json, from which README and TEACHING take their run times, is a
    run of all notebooks (not a partial one) in which each held its budget."""
    results = json.loads((ROOT / "benchmarks" / "results.json").read_text())
    assert results["options"]["notebooks"] == "*" and results["options"]["notebooks_run"], (
        "benchmarks/results.json is a partial run: run `make bench` (all notebooks)")
    measured = {entry["name"]: entry for entry in results["notebooks"]}
    for nb in load_course().notebooks:
        assert nb.file in measured, f"{nb.file} is not in benchmarks/results.json: run `make bench`"
        entry = measured[nb.file]
        assert entry["error"] is None, f"{nb.file} failed in the latest `make bench`"
        assert entry["median_s"] <= nb.budget_s, (
            f"{nb.file}: {entry['median_s']:.1f} s in the latest `make bench` > its budget {nb.budget_s:.0f} s")


def test_everything_within_budget_exits_zero() -> None:
    offenders = report.check_budgets([_nb("00_a.ipynb", budget=20.0), _nb()], [_panel()])
    assert offenders == []
    assert report.exit_code(offenders) == 0


def test_offenders_are_named_and_exit_nonzero() -> None:
    slow = _nb("02_slow.ipynb", times=(70.0, 61.0, 80.0), budget=60.0)
    fat = _nb("03_fat.ipynb", peak=2000.0, budget=60.0)
    fine = _nb("04_fine.ipynb", budget=30.0)
    laggy = _panel("norms.sliders", times=(140.0, 160.0, 170.0))
    snappy = _panel("start.gaussian", times=(40.0, 45.0, 200.0))  # median counts, not max
    offenders = report.check_budgets([slow, fat, fine], [laggy, snappy])
    text = "\n".join(offenders)
    assert len(offenders) == 3
    assert "02_slow.ipynb" in text and "70.0 s > budget 60 s" in text
    assert "03_fat.ipynb" in text and "2000 MiB" in text
    assert "norms.sliders" in text and "160 ms > budget 150 ms" in text
    assert "04_fine" not in text and "start.gaussian" not in text
    assert report.exit_code(offenders) == 1


def test_total_budget_is_checked_on_the_sum_of_medians() -> None:
    many = [_nb(f"0{i}_n.ipynb", times=(20.0,), budget=30.0) for i in range(5)]  # each within budget
    offenders = report.check_budgets(many, [])
    assert offenders == ["all notebooks: total 100.0 s > budget 90 s"]
    assert report.total_notebook_time(many) == 100.0


def test_failures_are_offenders() -> None:
    broken = NotebookResult("05_broken.ipynb", 30.0, error="CellExecutionError: boom")
    panel = PanelResult("x.y", error="RuntimeError: bad")
    offenders = report.check_budgets([broken], [panel])
    assert offenders == ["05_broken.ipynb: failed to run (CellExecutionError: boom)",
                         "panel x.y: failed (RuntimeError: bad)"]


# -- tables and files -------------------------------------------------------------------


def test_markdown_table_shape_and_alignment() -> None:
    table = report.markdown_table(["Name", "Seconds"], [["a|b", "1.5"], ["c", "–"]])
    lines = table.splitlines()
    assert lines[0] == "| Name | Seconds |"
    assert lines[1] == "|:---|---:|"
    assert lines[2] == "| a\\|b | 1.5 |"
    with pytest.raises(ValueError, match="has 1 cells, header has 2"):
        report.markdown_table(["a", "b"], [["only one"]])


def test_notebook_and_panel_tables() -> None:
    nbs = [_nb("00_a.ipynb", times=(10.0, 12.0, 11.0), budget=20.0),
           _nb("01_b.ipynb", times=(50.0,), budget=45.0),
           NotebookResult("02_c.ipynb", 60.0, error="boom")]
    table = report.notebook_table(nbs)
    rows = table.splitlines()
    assert len(rows) == 2 + 3 + 1  # header, rule, three notebooks, total
    assert rows[2].startswith("| 00_a.ipynb | 3 | 11.0 | 10.0 | 12.0 |") and rows[2].endswith("ok |")
    assert "OVER" in rows[3] and "FAILED" in rows[4]
    assert rows[5].startswith("| **Total** |  | 61.0 |")
    ptable = report.panel_table([_panel("start.gaussian"), PanelResult("x.y", error="e")])
    assert "| start.gaussian | 3 | 20 | 29 | 30 | 20 | 50 | 5 | 150 | ok |" in ptable
    assert "FAILED" in ptable and "**All panels**" in ptable


def test_scaling_table_shows_missing_modules() -> None:
    results = [ScalingResult("m.f", "depth", "gain=2", sizes=[10, 20], times_ms=[1.0, 2.0]),
               ScalingResult("m.g", "d", "n=8", available=False, note="ModuleNotFoundError: m")]
    table = report.scaling_table(results)
    assert "10 → 1, 20 → 2" in table and "| 1.00 |" in table
    assert "not available (ModuleNotFoundError: m)" in table


def test_machine_description() -> None:
    machine = report.machine_description()
    for key in ("cpu_model", "logical_cores", "python", "torch", "numpy", "matplotlib", "os"):
        assert machine[key], key
    assert machine["logical_cores"] >= 1
    assert machine["python"].count(".") == 2
    text = report.machine_lines(machine)
    assert machine["cpu_model"] in text and f"torch {machine['torch']}" in text
    assert "cores" in text


def test_results_files_are_complete_and_valid_json(tmp_path: Path) -> None:
    machine = {"cpu_model": "Test CPU", "logical_cores": 2, "physical_cores": 2, "memory_gib": 8,
               "os": "Linux", "python": "3.11.0", "torch": "2.13.0", "numpy": "2", "matplotlib": "3",
               "load_average_at_start": [0.1, 0.2, 0.3]}
    nbs, panels = [_nb("00_a.ipynb", budget=20.0)], [_panel()]
    scaling = [ScalingResult("m.f", "d", "", available=False, note="missing")]
    offenders = report.check_budgets(nbs, panels)
    args = (machine, "2026-01-01 00:00 UTC", {"repeats": 3, "sweeps": 3}, nbs, panels, scaling,
            offenders)
    md = report.results_markdown(*args)
    for needed in ("Test CPU", "2026-01-01", "Python 3.11.0", "torch 2.13.0", "00_a.ipynb",
                   "a.b", "**Total**", "All budgets hold.", "make bench", "VmHWM"):
        assert needed in md, needed
    data = json.loads(report.results_json(*args))
    assert data["ok"] is True and data["offenders"] == []
    assert data["notebooks"][0]["median_s"] == 2.0
    assert data["panels"][0]["p95_ms"] == pytest.approx(29.0)
    assert data["scaling"][0]["exponent"] is None  # NaN is not JSON


# -- the runner -------------------------------------------------------------------------


def test_find_notebooks_by_pattern(tmp_path: Path) -> None:
    for name in ("00_start.ipynb", "03_norms.ipynb", "notes.ipynb", "03_norms.py"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in find_notebooks(tmp_path)] == ["00_start.ipynb", "03_norms.ipynb"]
    assert [p.name for p in find_notebooks(tmp_path, "03*")] == ["03_norms.ipynb"]
    assert [p.name for p in find_notebooks(tmp_path, "03_norms")] == ["03_norms.ipynb"]
    assert find_notebooks(tmp_path, "09_*") == []


def test_options() -> None:
    args = parse_args([])
    assert args.repeats == 3 and args.notebooks == "*" and not args.no_notebooks
    args = parse_args(["--repeats", "1", "--no-panels", "--notebooks", "0[12]*", "--output", "out"])
    assert args.repeats == 1 and args.no_panels and args.output == Path("out")
    with pytest.raises(SystemExit):
        parse_args(["--repeats", "0"])


def test_runs_a_tiny_notebook_without_modifying_it(tmp_path: Path) -> None:
    from benchmarks.measure import run_notebook

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = sum(range(10))"), nbformat.v4.new_code_cell("x")]
    path = tmp_path / "99_tiny.ipynb"  # a number the course table does not use
    nbformat.write(nb, path)
    before = path.read_bytes()
    result = run_notebook(path, repeats=1)
    assert result.error is None, result.error
    assert len(result.times_s) == 1 and result.times_s[0] > 0
    assert result.budget_s == budgets.DEFAULT_NOTEBOOK_TIME_BUDGET_S
    assert result.peak_rss_mib[0] > 1  # a Python kernel uses megabytes, whatever the machine
    assert path.read_bytes() == before

    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")]), path)
    failed = run_notebook(path, repeats=2)
    assert failed.error is not None and "ZeroDivisionError" in failed.error
    assert failed.times_s == []


def test_results_round_trip_and_busy_machine_note() -> None:
    machine = {"cpu_model": "Test CPU", "logical_cores": 2, "python": "3.11.0", "torch": "2",
               "numpy": "2", "matplotlib": "3", "load_average_at_start": [9.5, 5.0, 2.0]}
    nbs = [_nb("00_a.ipynb", budget=20.0), NotebookResult("01_b.ipynb", 45.0, error="boom")]
    panels = [_panel()]
    scaling = [ScalingResult("m.f", "d", "n=1", sizes=[1, 2], times_ms=[1.0, 2.0]),
               ScalingResult("m.g", "d", "", available=False, note="missing")]
    offenders = report.check_budgets(nbs, panels)
    args = (machine, "2026-01-01 00:00 UTC", {"repeats": 3, "sweeps": 3}, nbs, panels, scaling,
            offenders)
    back = report.load_results(report.results_json(*args))
    assert report.results_markdown(*back) == report.results_markdown(*args)
    assert "Busy machine" in report.results_markdown(*args) and "9.5 on 2 cores" in report.busy_machine_note(machine)
    assert report.busy_machine_note({**machine, "load_average_at_start": [1.0, 1.0, 1.0]}) == ""
