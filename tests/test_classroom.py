"""The classroom benchmark: message reading, slider moves, statistics, fits, the sizing rule, the
reports, process measurement and clean-up, and the Kubernetes values that must agree with the
measured limits.  The slow tests run real kernels (one student, a tiny notebook)."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import time
from pathlib import Path

import ipywidgets as widgets
import nbformat
import psutil
import pytest
import yaml
from jupyter_client.session import Session

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.classroom import processes, results, student  # noqa: E402
from benchmarks.classroom.results import RoundResult, StudentResult  # noqa: E402
from benchmarks.classroom.run import export_course, parse_args, parse_sizes, student_env  # noqa: E402

VALUES = ROOT / "deploy" / "z2jh" / "values.yaml"
N01, N02 = "notebooks/01_initialization.ipynb", "notebooks/02_norm_drift.ipynb"


def _notebook(tmp_path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# title")]
                                  + [nbformat.v4.new_code_cell(s) for s in sources])
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    return path


# -- one student's messages ---------------------------------------------------------------------


def test_code_cells_keeps_non_empty_code_in_order(tmp_path: Path) -> None:
    assert student.code_cells(_notebook(tmp_path, "a = 1\nb = 2", "   \n", "print(a)")) == ["a = 1\nb = 2", "print(a)"]
    assert any("variance_slider" in c for c in student.code_cells(ROOT / N01))
    assert any("product_panel" in c for c in student.code_cells(ROOT / N02))
    (tmp_path / "bad.ipynb").write_text("{}")
    with pytest.raises(nbformat.ValidationError):
        student.code_cells(tmp_path / "bad.ipynb")


def _msg(msg_type: str, content: dict, parent: str = "p1") -> dict:
    return {"header": {"msg_type": msg_type, "msg_id": "m"}, "parent_header": {"msg_id": parent},
            "content": content, "buffers": []}


def test_figures_and_errors_are_recognised() -> None:
    assert student.has_figure(_msg("display_data", {"data": {"image/png": "..."}}))
    assert student.has_figure(_msg("execute_result", {"data": {"image/png": "...", "text/plain": "x"}}))
    assert not student.has_figure(_msg("display_data", {"data": {"text/plain": "x"}}))
    assert not student.has_figure(_msg("stream", {"data": {"image/png": "..."}}))
    assert student.error_text(_msg("error", {"ename": "ValueError", "evalue": "bad"})) == "ValueError: bad"
    assert student.error_text(_msg("execute_reply", {"status": "error", "ename": "E", "evalue": ""})) == "E"
    assert student.error_text(_msg("execute_reply", {"status": "ok"})) is None


def _comm_open(comm_id: str, state: dict) -> dict:
    return _msg("comm_open", {"comm_id": comm_id, "target_name": "jupyter.widget",
                              "data": {"state": state, "buffer_paths": []}})


def test_widgets_slider_and_picture_updates() -> None:
    opened = [_comm_open("box", {"_model_name": "VBoxModel"}), _comm_open("img", {"_model_name": "ImageModel"}),
              _comm_open("s1", {"_model_name": "FloatSliderModel", "min": 0, "max": 1, "value": 0.5}),
              _comm_open("s2", {"_model_name": "IntSliderModel", "min": 0, "max": 9, "value": 1})]
    found = dict(w for w in map(student.widget_opened, opened) if w is not None)
    slider, images = student.slider_and_images(found)
    assert slider is not None and slider[0] == "s1" and images == {"img"}
    assert student.slider_and_images({"box": {"_model_name": "VBoxModel"}}) == (None, frozenset())
    assert student.widget_opened(_msg("display_data", {})) is None
    update = _msg("comm_msg", {"comm_id": "img",
                               "data": {"method": "update", "state": {}, "buffer_paths": [["value"]]}})
    assert student.is_picture_update(update, {"img"}) and not student.is_picture_update(update, {"other"})
    echo = _msg("comm_msg", {"comm_id": "img", "data": {"method": "update", "state": {"layout": "x"}}})
    assert not student.is_picture_update(echo, {"img"})


def test_widget_update_is_what_the_browser_sends_and_survives_the_wire() -> None:
    content = student.widget_update("abc", {"value": 2.5})
    assert content == {"comm_id": "abc", "data": {"method": "update", "state": {"value": 2.5}, "buffer_paths": []}}
    session = Session(key=b"secret")  # what the kernel client signs and sends, read back as the kernel does
    frames = session.serialize(session.msg("comm_msg", content))
    back = session.deserialize(frames[frames.index(b"<IDS|MSG>") + 1:])
    assert back["msg_type"] == "comm_msg" and back["content"] == content
    with pytest.raises(ValueError, match="state"):
        student.widget_update("abc", {})
    with pytest.raises(ValueError, match="comm_id"):
        student.widget_update("", {"value": 1})


@pytest.mark.parametrize("slider", [
    widgets.FloatSlider(value=1.0, min=0.5, max=4.0, step=0.1),
    widgets.IntSlider(value=50, min=10, max=100, step=10),
    widgets.FloatLogSlider(value=1.0, base=10, min=-2, max=2, step=0.1),
    widgets.FloatSlider(value=4.0, min=0.5, max=4.0, step=0.1),
])
@pytest.mark.parametrize("count", [1, 3, 8, 20])
def test_slider_values_always_move_and_stay_in_range(slider: widgets.Widget, count: int) -> None:
    state = slider.get_state()
    values = student.slider_values(state, count)
    assert len(values) == count
    previous = state["value"]
    for value in values:
        assert not math.isclose(value, previous, rel_tol=1e-9), (values, previous)
        previous = value
    log = isinstance(slider, widgets.FloatLogSlider)
    low, high = (slider.base ** slider.min, slider.base ** slider.max) if log else (slider.min, slider.max)
    assert all(low - 1e-9 <= v <= high + 1e-9 for v in values)
    if isinstance(slider, widgets.IntSlider):
        assert all(isinstance(v, int) for v in values)
    if count >= 3:  # the sweep reaches both ends of the range
        assert math.isclose(min(values), low) and math.isclose(max(values), high)


def test_slider_values_names_bad_arguments() -> None:
    state = widgets.FloatSlider().get_state()
    with pytest.raises(ValueError, match="count"):
        student.slider_values(state, 0)
    with pytest.raises(TypeError, match="count"):
        student.slider_values(state, 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="slider"):
        student.slider_values({"_model_name": "ImageModel"}, 2)
    with pytest.raises(ValueError, match="range"):
        student.slider_values({**state, "min": 1.0, "max": 1.0}, 2)


# -- statistics, fits and the sizing rule -------------------------------------------------------


def _round(n: int, redraws: list[float], *, notebook: str = N01, failures: int = 0, cpu: float = 15.0,
           kernel: float = 640.0, run_all: float = 10.0) -> RoundResult:
    students = [StudentResult(f"s{i}", first_figure_s=4.0 + i, run_all_s=run_all + i, cells=20,
                              redraws_ms=list(redraws), cpu_s=cpu, peak_rss_mib=kernel, peak_pss_mib=kernel - 100)
                for i in range(n - failures)]
    students += [StudentResult(f"f{i}", error="StudentError: boom") for i in range(failures)]
    return RoundResult(n, notebook, results=students, total_rss_mib=50.0 + kernel * n,
                       total_pss_mib=100.0 + 500.0 * n)


def test_round_validates_and_counts_failures() -> None:
    with pytest.raises(ValueError, match="students"):
        RoundResult(0, "x")
    with pytest.raises(TypeError, match="students"):
        RoundResult("5", "x")  # type: ignore[arg-type]
    assert _round(5, [100.0], failures=2).failures == 2
    assert RoundResult(4, "x", results=[StudentResult("a")]).failures == 3  # never reported: failed


def test_round_summary_statistics() -> None:
    s = _round(3, [100.0, 200.0, 300.0]).summary()
    assert s["first_figure_median_s"] == 5.0 and s["run_all_median_s"] == 11.0 and s["run_all_max_s"] == 12.0
    assert s["redraw_median_ms"] == 200.0 and s["redraw_p95_ms"] == 300.0
    assert _round(1, [float(t) for t in range(100, 1100, 100)]).summary()["redraw_p95_ms"] == pytest.approx(955.0)
    assert s["cpu_median_s"] == 15.0 and s["peak_rss_max_mib"] == 640.0
    assert s["pss_per_student_mib"] == pytest.approx((100 + 1500) / 3)
    assert math.isnan(_round(2, [100.0], failures=2).summary()["redraw_median_ms"])


def test_passes_needs_no_failure_and_responsive_redraws() -> None:
    assert results.passes(_round(5, [100.0, 200.0]))
    assert not results.passes(_round(5, [100.0], failures=1))
    assert not results.passes(_round(5, [600.0, 600.0]))                # median over 500 ms
    assert not results.passes(_round(5, [100.0] * 18 + [5000.0] * 2))   # p95 over 1 s
    assert not results.passes(_round(5, [100.0], run_all=61.0))         # "Run all" over a minute
    timed_out = _round(5, [100.0])
    timed_out.error = "the global --timeout ran out"
    assert not results.passes(timed_out)


def test_round_up() -> None:
    assert results.round_up(700.0, 128) == 768 and results.round_up(768.0, 128) == 768
    assert results.round_up(0.2, 0.05) == 0.2 and results.round_up(0.201, 0.05) == 0.25
    for value, step in ((1.0, 0), (math.nan, 1)):
        with pytest.raises(ValueError, match="step"):
            results.round_up(value, step)


def test_notebook_fit_extrapolates_the_measured_lines() -> None:
    fit = results.notebook_fit([_round(n, [100.0], cpu=14.0 + 0.5 * n) for n in (1, 2, 4, 8)])
    assert fit["sizes"] == [1, 2, 4, 8]
    assert (fit["pss_a"], fit["pss_b"]) == pytest.approx((100.0, 500.0))
    assert fit["pss_at_target"] == pytest.approx(100.0 + 500.0 * results.TARGET_CLASS)
    assert (fit["cpu_a"], fit["cpu_b"], fit["cpu_s"]) == pytest.approx((14.0, 0.5, 18.0))
    assert fit["cores_at_target"] == pytest.approx(results.TARGET_CLASS * 18.0 / 60.0)
    rounds = [_round(n, [100.0]) for n in (1, 2, 3)]
    for r, pss in zip(rounds, (1.0, 3.0, 2.0), strict=True):
        r.total_pss_mib = pss
    fit = results.notebook_fit(rounds)
    assert (fit["pss_a"], fit["pss_b"]) == pytest.approx((1.0, 0.5))  # least squares, not through the points
    for sizes in ((1,), (2, 2)):
        with pytest.raises(ValueError, match="two distinct"):
            results.notebook_fit([_round(n, [100.0]) for n in sizes])


def test_derive_limits_from_known_rounds() -> None:
    rounds = [_round(n, [100.0], cpu=10.0, kernel=500.0) for n in (1, 2, 4)]
    rounds += [_round(n, [100.0], notebook=N02, cpu=16.0, kernel=800.0) for n in (1, 2, 4)]
    limits = results.derive_limits(rounds, 2, server_mib=110.0, server_pss_mib=95.0)
    assert limits["heaviest_notebook"] == N02 and limits["cpu_s_per_student"] == 16.0
    assert limits["students_per_core"] == 3.5                    # 60 s / 16 CPU-s = 3.75 -> 3.5
    assert limits["cpu_guarantee"] == 0.3 and limits["cpu_limit"] == 1.0   # 1 / 3.5 = 0.286 -> 0.3
    assert limits["kernel_mib"] == 800.0
    assert limits["memory_guarantee_mib"] == 1024                # 110 + 800 = 910 -> 1024
    assert limits["memory_limit_mib"] == 1792                    # 110 + 1600 = 1710 -> 1792
    assert set(limits["fits"]) == {N01, N02}
    with pytest.raises(ValueError, match="server_mib"):
        results.derive_limits(rounds, 2, server_mib=0.0)


def test_byte_specification_and_z2jh_resources() -> None:
    assert results.byte_specification(2048) == "2G" and results.byte_specification(1792) == "1792M"
    with pytest.raises(ValueError, match="mib"):
        results.byte_specification(100.5)
    with pytest.raises(TypeError, match="mib"):
        results.byte_specification(True)  # type: ignore[arg-type]
    resources = results.z2jh_resources({"cpu_guarantee": 0.2, "cpu_limit": 1.0, "memory_guarantee_mib": 1024,
                                        "memory_limit_mib": 1792})
    assert resources == {"cpu": {"guarantee": 0.2, "limit": 1.0}, "memory": {"guarantee": "1G", "limit": "1792M"}}
    with pytest.raises(ValueError, match="limits"):
        results.z2jh_resources({"cpu_guarantee": 0.2})


def test_json_round_trip_and_markdown() -> None:
    rounds = [_round(1, [100.0, 120.0]), _round(2, [150.0, 300.0], failures=1), _round(4, [100.0])]
    rounds[0].load_average = [0.5, 0.4, 0.3]
    limits = results.derive_limits(rounds, 2, server_mib=110.0)
    machine = {"cpu_model": "Test CPU", "logical_cores": 2, "memory_gib": 23.5,
               "load_average_at_start": [0.9, 0.8, 0.7]}
    options = {"notebooks": [N01], "moves": 8, "think_s": 1.0, "threads_per_kernel": 1}
    text = results.to_json(machine, "2026-12-07 00:00 UTC", options, rounds, limits)
    assert "NaN" not in text
    machine2, date2, options2, rounds2, limits2 = results.from_json(text)
    assert date2 == "2026-12-07 00:00 UTC" and options2 == options and rounds2[1].failures == 1
    assert [r.summary()["redraw_median_ms"] for r in rounds2] == [110.0, 225.0, 100.0]
    assert math.isnan(rounds2[1].results[-1].cpu_s) and rounds2[1].results[-1].error == "StudentError: boom"
    page = results.classroom_markdown(machine2, date2, options2, rounds2, limits2)
    assert page == results.classroom_markdown(machine, "2026-12-07 00:00 UTC", options, rounds, limits)
    assert "0.90, 0.80, 0.70" in page and "0.5 0.4 0.3" in page
    assert f"{N01}, N = 2, f0: StudentError: boom" in page and "| FAILED |" in page
    assert "Students per core: 4." in page and "## 40 students, extrapolated" in page
    with pytest.raises(ValueError, match="classroom.json"):
        results.from_json("{}")


# -- processes ----------------------------------------------------------------------------------


def _child(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code])


def test_watch_reads_memory_and_cpu_of_a_kernel_and_its_children() -> None:
    code = ("import subprocess, sys, time; b = bytearray(80 * 2**20); "
            "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
            "t = time.process_time()\nwhile time.process_time() - t < 0.3: pass\ntime.sleep(30)")
    child = _child(code)
    try:
        watch = processes.KernelWatch(interval_s=0.05)
        watch.add(child.pid)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (len(psutil.Process(child.pid).children()) < 1
                                               or psutil.Process(child.pid).cpu_times().user < 0.3):
            time.sleep(0.1)
        cpu, peak_rss, peak_pss = watch.finish(child.pid)
        assert peak_rss >= 80 and 0 < peak_pss <= peak_rss and cpu >= 0.3
        assert watch.total_rss >= 80 and child.pid not in watch.procs
    finally:
        processes.stop_processes([psutil.Process(child.pid)], grace_s=2)


def test_stop_processes_ends_a_process_and_its_children() -> None:
    child = _child("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
                   "'import time; time.sleep(30)']); time.sleep(30)")
    proc = psutil.Process(child.pid)
    deadline = time.monotonic() + 20
    while not proc.children() and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchild = proc.children()[0]
    assert processes.stop_processes([proc], grace_s=5) == []  # both ended on SIGTERM
    child.wait(timeout=5)
    assert not grandchild.is_running()


# -- the command line ---------------------------------------------------------------------------


def test_parse_sizes_and_args() -> None:
    assert parse_sizes("20, 1,5,5") == [1, 5, 20]
    for bad in ("", "0", "x", "1,-2"):
        with pytest.raises(ValueError, match="--students"):
            parse_sizes(bad)
    args = parse_args([])
    assert args.students == [1, 2, 4, 8, 16] and args.notebooks == [N01, N02] and args.source == "HEAD"
    for bad in (["--students", "0"], ["--notebooks", "notebooks/nope.ipynb"], ["--think", "-1"], ["--moves", "x"]):
        with pytest.raises(SystemExit):
            parse_args(bad)


def test_export_course_and_student_env(tmp_path: Path) -> None:
    assert export_course("worktree", tmp_path / "x") == ROOT
    for bad in ("no-such-commit-anywhere", ""):
        with pytest.raises(ValueError, match="source"):
            export_course(bad, tmp_path / "y")
    env = student_env(tmp_path / "course", tmp_path / "home")
    assert env["PYTHONPATH"].split(":")[0] == str(tmp_path / "course") and (tmp_path / "home").is_dir()
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "1"


# -- one student, live --------------------------------------------------------------------------

PANEL = """\
import ipywidgets as w
slider, picture = w.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.5), w.Image(value=b"\\x89PNG 1")
slider.observe(lambda change: setattr(picture, "value", f"PNG {change['new']}".encode()), "value")
w.VBox([slider, picture])"""


@pytest.mark.slow
def test_a_student_runs_a_notebook_and_moves_its_slider(tmp_path: Path) -> None:
    watch = processes.KernelWatch()
    result, seen = StudentResult("s"), []

    def finish(pid: int) -> None:
        seen.append(pid)
        result.cpu_s, result.peak_rss_mib, result.peak_pss_mib = watch.finish(pid)

    path = _notebook(tmp_path, "x = 2 + 2", PANEL)
    env = student_env(ROOT, tmp_path / "home")
    asyncio.run(student.run_student(path, env, result, moves=3, think_s=0.0, cell_timeout_s=60,
                                    on_kernel=watch.add, before_shutdown=finish))
    assert result.cells == 2 and result.run_all_s > 0 and len(result.redraws_ms) == 3
    assert all(0 < t < 60_000 for t in result.redraws_ms) and result.cpu_s > 0 and result.peak_rss_mib > 20
    assert seen and not psutil.pid_exists(seen[0])  # the kernel was shut down
    failing = StudentResult("f")
    with pytest.raises(student.StudentError, match="ZeroDivisionError"):
        asyncio.run(student.run_student(_notebook(tmp_path, "1 / 0"), env, failing, moves=1, think_s=0.0,
                                        cell_timeout_s=60))
    with pytest.raises(student.StudentError, match="no slider panel"):
        asyncio.run(student.run_student(_notebook(tmp_path, "1"), env, failing, moves=1, think_s=0.0,
                                        cell_timeout_s=60))


@pytest.mark.slow
def test_server_memory_of_a_jupyterlab_server(tmp_path: Path) -> None:
    rss, pss = processes.server_memory(ROOT, N01, student_env(ROOT, tmp_path / "home"))
    assert 30 < rss < 2000 and 0 < pss <= rss


# -- the measured results and the Kubernetes values file ----------------------------------------


@pytest.fixture(scope="module")
def measured() -> tuple:
    return results.from_json((ROOT / "benchmarks" / "classroom.json").read_text())


def test_measured_results_cover_both_notebooks_and_every_class_size(measured: tuple) -> None:
    machine, date, options, rounds, limits = measured
    assert options["notebooks"] == [N01, N02] and options["threads_per_kernel"] == 1
    for notebook in (N01, N02):
        assert [r.students for r in rounds if r.notebook == notebook] == options["students"]
    assert len(options["students"]) >= 4 and all(r.error is None and r.failures == 0 for r in rounds)
    assert limits["heaviest_notebook"] == N02


def test_report_and_limits_follow_from_the_json(measured: tuple) -> None:
    machine, date, options, rounds, limits = measured
    derived = results.derive_limits(rounds, limits["cores"], limits["server_mib"], limits["server_pss_mib"])
    for key in ("students_per_core", "cpu_guarantee", "cpu_limit", "memory_guarantee_mib", "memory_limit_mib"):
        assert derived[key] == pytest.approx(limits[key]), key
    page = (ROOT / "benchmarks" / "CLASSROOM.md").read_text()
    assert page == results.classroom_markdown(machine, date, options, rounds, limits)


def test_z2jh_values_parse_and_agree_with_the_measured_limits(measured: tuple) -> None:
    _machine, _date, options, _rounds, limits = measured
    singleuser = yaml.safe_load(VALUES.read_text())["singleuser"]
    expected = results.z2jh_resources(limits)
    assert singleuser["cpu"] == pytest.approx(expected["cpu"])
    assert singleuser["memory"] == expected["memory"]
    assert singleuser["extraEnv"]["OMP_NUM_THREADS"] == str(options["threads_per_kernel"])


def test_z2jh_values_point_at_an_image_built_from_the_binder_recipe() -> None:
    image = yaml.safe_load(VALUES.read_text())["singleuser"]["image"]
    assert image["name"] and str(image["tag"]) not in ("", "latest")
    text = VALUES.read_text() + (VALUES.parent / "README.md").read_text()
    assert "repo2docker" in text
    for recipe in (".binder/environment.yml", ".binder/postBuild"):
        assert recipe in text and (ROOT / recipe).is_file()
