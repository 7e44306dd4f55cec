"""The classroom benchmark's pure parts: kernel messages, statistics, the sizing rule, the
reports, and the Kubernetes values file that must agree with the measured limits.

The live benchmark (a real JupyterHub with N students, ``make classroom-bench``) is not run
here; one test starts and stops a short-lived ``sleep`` to check the clean-up.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import ipywidgets as widgets
import psutil
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.classroom import processes, results, wire  # noqa: E402
from benchmarks.classroom.hub import HubSettings, hub_config  # noqa: E402
from benchmarks.classroom.results import RoundResult, StudentResult  # noqa: E402
from benchmarks.classroom.run import (  # noqa: E402
    export_course,
    heaviest_kernel_mib,
    parse_args,
    parse_sizes,
)

CLASSROOM_JSON = ROOT / "benchmarks" / "classroom.json"
VALUES = ROOT / "deploy" / "z2jh" / "values.yaml"


# -- kernel messages ----------------------------------------------------------------------


def _output(msg_type: str, data: dict, parent: str = "p1", channel: str = "iopub") -> dict:
    return {"header": {"msg_type": msg_type, "msg_id": "m"}, "parent_header": {"msg_id": parent},
            "content": {"data": data}, "channel": channel, "buffers": []}


def test_text_message_round_trip() -> None:
    message = wire.execute_request("1 + 1", session="s")
    frame = wire.encode(message)
    assert isinstance(frame, str)
    back = wire.decode(frame)
    assert back["content"]["code"] == "1 + 1" and back["channel"] == "shell"
    assert back["buffers"] == []


def test_binary_message_round_trip_and_layout() -> None:
    message = {**_output("comm_msg", {}), "buffers": [b"\x89PNG-a", b"second"]}
    frame = wire.encode(message)
    assert isinstance(frame, bytes)
    assert int.from_bytes(frame[:4], "big") == 3  # JSON + two buffers
    back = wire.decode(frame)
    assert back["buffers"] == [b"\x89PNG-a", b"second"]
    assert back["header"] == message["header"]


def test_binary_layout_matches_jupyter_server() -> None:
    base = pytest.importorskip("jupyter_server.services.kernels.connection.base")
    message = {**_output("comm_msg", {}), "buffers": [b"abc", b"defgh"]}
    ours = wire.decode(base.serialize_binary_message(dict(message)))
    assert ours["buffers"] == [b"abc", b"defgh"] and ours["header"] == message["header"]
    theirs = base.deserialize_binary_message(wire.encode(message))
    assert [bytes(b) for b in theirs["buffers"]] == [b"abc", b"defgh"]


@pytest.mark.parametrize("frame", [b"\x00\x00\x00\x05abcd", b"\x00\x00\x00\x02\x00\x00\x00\x0c\x00\x00\x00\x01{}"])
def test_decode_rejects_offsets_that_do_not_fit(frame: bytes) -> None:
    with pytest.raises(ValueError, match="frame"):
        wire.decode(frame)


def test_decode_and_encode_reject_bad_arguments() -> None:
    with pytest.raises(TypeError, match="frame"):
        wire.decode(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="channel"):
        wire.decode(json.dumps({"header": {}}))
    with pytest.raises(ValueError, match="channel"):
        wire.encode({"header": {}})
    with pytest.raises(TypeError, match="buffer 0"):
        wire.encode({**_output("comm_msg", {}), "buffers": ["text"]})


def test_new_message_names_bad_arguments() -> None:
    with pytest.raises(ValueError, match="channel"):
        wire.new_message("x", {}, channel="radio", session="s")
    with pytest.raises(ValueError, match="msg_type"):
        wire.new_message("", {}, session="s")
    with pytest.raises(TypeError, match="content"):
        wire.new_message("x", [], session="s")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="session"):
        wire.new_message("x", {}, session="")
    with pytest.raises(TypeError, match="code"):
        wire.execute_request(None, session="s")  # type: ignore[arg-type]


def test_widget_update_is_what_the_browser_sends() -> None:
    message = wire.widget_update("abc", {"value": 2.5}, session="s")
    assert wire.msg_type(message) == "comm_msg" and message["channel"] == "shell"
    assert message["content"] == {"comm_id": "abc",
                                  "data": {"method": "update", "state": {"value": 2.5}, "buffer_paths": []}}
    with pytest.raises(ValueError, match="state"):
        wire.widget_update("abc", {}, session="s")
    with pytest.raises(ValueError, match="comm_id"):
        wire.widget_update("", {"value": 1}, session="s")


def test_code_cells_keeps_non_empty_code_in_order() -> None:
    notebook = {"cells": [
        {"cell_type": "markdown", "source": "# title"},
        {"cell_type": "code", "source": ["a = 1\n", "b = 2"]},
        {"cell_type": "code", "source": "   \n"},
        {"cell_type": "code", "source": "print(a)"},
    ]}
    assert wire.code_cells(notebook) == ["a = 1\nb = 2", "print(a)"]
    with pytest.raises(ValueError, match="cells"):
        wire.code_cells({"worksheets": []})
    with pytest.raises(TypeError, match="notebook"):
        wire.code_cells("nb.ipynb")  # type: ignore[arg-type]


def test_code_cells_of_the_benchmarked_notebook() -> None:
    notebook = json.loads((ROOT / "notebooks" / "01_initialization.ipynb").read_text())
    cells = wire.code_cells(notebook)
    assert len(cells) >= 10 and any("variance_slider" in c for c in cells)


def test_figures_idle_and_errors_are_recognised() -> None:
    assert wire.has_figure(_output("display_data", {"image/png": "..."}))
    assert wire.has_figure(_output("execute_result", {"image/png": "...", "text/plain": "x"}))
    assert not wire.has_figure(_output("display_data", {"text/plain": "x"}))
    assert not wire.has_figure(_output("stream", {"image/png": "..."}))
    idle = {"header": {"msg_type": "status"}, "parent_header": {"msg_id": "r"},
            "content": {"execution_state": "idle"}, "channel": "iopub"}
    assert wire.is_idle(idle, "r") and not wire.is_idle(idle, "other")
    busy = {**idle, "content": {"execution_state": "busy"}}
    assert not wire.is_idle(busy, "r")
    error = {"header": {"msg_type": "error"}, "content": {"ename": "ValueError", "evalue": "bad"}}
    assert wire.error_text(error) == "ValueError: bad"
    reply = {"header": {"msg_type": "execute_reply"}, "content": {"status": "ok"}}
    assert wire.error_text(reply) is None


def _comm_open(comm_id: str, state: dict) -> dict:
    return {"header": {"msg_type": "comm_open"}, "channel": "iopub",
            "content": {"comm_id": comm_id, "target_name": "jupyter.widget",
                        "data": {"state": state, "buffer_paths": []}}}


def test_widgets_slider_and_picture_updates() -> None:
    opened = [_comm_open("box", {"_model_name": "VBoxModel"}),
              _comm_open("img", {"_model_name": "ImageModel"}),
              _comm_open("s1", {"_model_name": "FloatSliderModel", "min": 0, "max": 1, "value": 0.5}),
              _comm_open("s2", {"_model_name": "IntSliderModel", "min": 0, "max": 9, "value": 1})]
    found: dict[str, dict] = {}
    for message in opened:
        widget = wire.widget_opened(message)
        assert widget is not None
        found[widget[0]] = widget[1]
    slider = wire.find_slider(found)
    assert slider is not None and slider[0] == "s1"
    assert wire.image_ids(found) == {"img"}
    assert wire.find_slider({"box": {"_model_name": "VBoxModel"}}) is None
    assert wire.widget_opened(_output("display_data", {})) is None
    update = {"header": {"msg_type": "comm_msg"}, "channel": "iopub",
              "content": {"comm_id": "img", "data": {"method": "update", "state": {},
                                                     "buffer_paths": [["value"]]}}}
    assert wire.is_picture_update(update, {"img"})
    assert not wire.is_picture_update(update, {"other"})
    echo = {**update, "content": {"comm_id": "img", "data": {"method": "update",
                                                             "state": {"layout": "x"}}}}
    assert not wire.is_picture_update(echo, {"img"})


@pytest.mark.parametrize("slider", [
    widgets.FloatSlider(value=1.0, min=0.5, max=4.0, step=0.1),
    widgets.IntSlider(value=50, min=10, max=100, step=10),
    widgets.FloatLogSlider(value=1.0, base=10, min=-2, max=2, step=0.1),
    widgets.FloatSlider(value=4.0, min=0.5, max=4.0, step=0.1),
])
@pytest.mark.parametrize("count", [1, 3, 8, 20])
def test_slider_values_always_move_and_stay_in_range(slider: widgets.Widget, count: int) -> None:
    state = slider.get_state()
    values = wire.slider_values(state, count)
    assert len(values) == count
    previous = state["value"]
    for value in values:
        assert not math.isclose(value, previous, rel_tol=1e-9), (values, previous)
        previous = value
    if isinstance(slider, widgets.FloatLogSlider):
        low, high = slider.base ** slider.min, slider.base ** slider.max
    else:
        low, high = slider.min, slider.max
    assert all(low - 1e-9 <= v <= high + 1e-9 for v in values)
    if isinstance(slider, widgets.IntSlider):
        assert all(isinstance(v, int) for v in values)
    if count >= 3:  # the sweep reaches both ends of the range
        assert math.isclose(min(values), low) and math.isclose(max(values), high)


def test_slider_values_names_bad_arguments() -> None:
    state = widgets.FloatSlider().get_state()
    with pytest.raises(ValueError, match="count"):
        wire.slider_values(state, 0)
    with pytest.raises(TypeError, match="count"):
        wire.slider_values(state, 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="slider"):
        wire.slider_values({"_model_name": "ImageModel"}, 2)
    with pytest.raises(ValueError, match="range"):
        wire.slider_values({**state, "min": 1.0, "max": 1.0}, 2)


# -- processes ----------------------------------------------------------------------------


@pytest.mark.parametrize("cmdline, parent, expected", [
    (["node", "/x/node_modules/.bin/configurable-http-proxy", "--ip", "127.0.0.1"], None, "proxy"),
    (["/v/bin/python3", "/v/bin/jupyterhub-singleuser", "--allow-root"], None, "servers"),
    (["/v/bin/python3", "-m", "ipykernel_launcher", "-f", "/r/kernel-1.json"], "servers", "kernels"),
    (["/bin/sh", "-c", "true"], "kernels", "kernels"),
    (["/usr/bin/git", "status"], "servers", "servers"),
    (["/usr/bin/git", "status"], None, None),
])
def test_classify(cmdline: list[str], parent: str | None, expected: str | None) -> None:
    assert processes.classify(cmdline, hub_pid=1, pid=2, parent_kind=parent) == expected


def test_classify_hub_by_pid_and_rejects_a_string() -> None:
    assert processes.classify(["python", "jupyterhub"], hub_pid=7, pid=7) == "hub"
    with pytest.raises(TypeError, match="cmdline"):
        processes.classify("python -m ipykernel_launcher", hub_pid=1, pid=2)


def test_peak_by_kind_takes_the_peak_of_each_sum_and_of_the_total() -> None:
    samples = [
        processes.MemorySample(0.0, {"hub": 100, "proxy": 50, "servers": 300, "kernels": 100}, {}),
        processes.MemorySample(0.5, {"hub": 110, "proxy": 50, "servers": 100, "kernels": 600}, {}),
    ]
    peaks, total = processes.peak_by_kind(samples)
    assert peaks == {"hub": 110, "proxy": 50, "servers": 300, "kernels": 600}
    assert total == 860  # the larger of 550 and 860, not the sum of the peaks (1060)


def test_watch_samples_its_root_and_validates() -> None:
    watch = processes.ProcessWatch(os.getpid(), interval_s=0.05)
    sample = watch.sample()
    assert sample.mib["hub"] > 0 and sample.count["hub"] == 1
    with pytest.raises(TypeError, match="hub_pid"):
        processes.ProcessWatch("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="interval_s"):
        processes.ProcessWatch(1, interval_s=0)


def test_stop_processes_ends_a_child_and_spares_a_reused_pid() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        created = psutil.Process(child.pid).create_time()
        spared = processes.stop_processes([processes.Seen(child.pid, created - 100.0, None)], grace_s=0.5)
        assert spared == [] and child.poll() is None  # a different creation time: not ours
        start = time.monotonic()
        processes.stop_processes([processes.Seen(child.pid, created, None)], grace_s=5)
        child.wait(timeout=5)  # psutil may have reaped it already (then Popen reports 0)
        assert time.monotonic() - start < 10 and not psutil.pid_exists(child.pid)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


# -- statistics and the sizing rule ---------------------------------------------------------


def _round(n: int, redraws: list[float], *, failures: int = 0, server: float = 150.0,
           kernel: float = 560.0, run_all: float = 10.0, cpu: float = 9.0) -> RoundResult:
    students = [StudentResult(name=f"s{i}", spawn_s=2.0, kernel_ready_s=0.5, first_figure_s=4.0 + i,
                              run_all_s=run_all + i, cells=20, redraws_ms=list(redraws))
                for i in range(n - failures)]
    students += [StudentResult(name=f"f{i}", error="StudentError: boom") for i in range(failures)]
    return RoundResult(students=n, notebook="notebooks/01_initialization.ipynb", wall_s=30.0,
                       results=students,
                       peak_mib={"hub": 120.0, "proxy": 60.0, "servers": server * n, "kernels": kernel * n},
                       peak_total_mib=180.0 + (server + kernel) * n,
                       server_peak_mib=[server] * n, kernel_peak_mib=[kernel] * n,
                       kernel_cpu_s=[cpu] * n, server_cpu_s=[1.0] * n)


def test_round_validates_and_counts_failures() -> None:
    with pytest.raises(ValueError, match="students"):
        RoundResult(students=0, notebook="x")
    with pytest.raises(TypeError, match="students"):
        RoundResult(students="5", notebook="x")  # type: ignore[arg-type]
    assert _round(5, [100.0], failures=2).failures == 2
    half_done = RoundResult(students=4, notebook="x", results=[StudentResult(name="a")])
    assert half_done.failures == 3  # students who never reported count as failed


def test_round_summary_statistics() -> None:
    r = _round(3, [100.0, 200.0, 300.0])
    s = r.summary()
    assert s["first_figure_median_s"] == 5.0 and s["first_figure_max_s"] == 6.0
    assert s["run_all_median_s"] == 11.0 and s["run_all_max_s"] == 12.0
    assert s["redraw_median_ms"] == 200.0
    assert s["redraw_p95_ms"] == 300.0  # nine redraws, three of each
    spread = _round(1, [float(t) for t in range(100, 1100, 100)])
    assert spread.summary()["redraw_p95_ms"] == pytest.approx(955.0)  # interpolated, as numpy's default
    assert s["memory_per_student_mib"] == pytest.approx(710.0)
    failed = _round(2, [100.0], failures=2)
    assert math.isnan(failed.summary()["redraw_median_ms"])


def test_passes_needs_no_failure_and_responsive_redraws() -> None:
    assert results.passes(_round(5, [100.0, 200.0]))
    assert not results.passes(_round(5, [100.0], failures=1))
    assert not results.passes(_round(5, [600.0, 600.0]))          # median over 500 ms
    assert not results.passes(_round(5, [100.0] * 18 + [5000.0] * 2))  # p95 over 1 s
    assert not results.passes(_round(5, [100.0], run_all=61.0))       # "Run all" over a minute
    timed_out = _round(5, [100.0])
    timed_out.error = "the global --timeout ran out"
    assert not results.passes(timed_out)


def test_students_per_core_stops_at_the_first_class_that_fails() -> None:
    ok, slow = [100.0, 120.0], [900.0, 1500.0]
    rounds = [_round(1, ok), _round(5, ok), _round(10, slow), _round(20, ok)]
    assert results.students_per_core(rounds, 2) == 2.5
    assert results.students_per_core(list(reversed(rounds)), 2) == 2.5  # order does not matter
    assert math.isnan(results.students_per_core([_round(1, slow)], 2))
    with pytest.raises(ValueError, match="cores"):
        results.students_per_core(rounds, 0)
    with pytest.raises(TypeError, match="cores"):
        results.students_per_core(rounds, 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rounds"):
        results.students_per_core([], 2)


def test_round_up() -> None:
    assert results.round_up(700.0, 128) == 768
    assert results.round_up(768.0, 128) == 768
    assert results.round_up(0.2, 0.05) == 0.2
    assert results.round_up(0.201, 0.05) == 0.25
    with pytest.raises(ValueError, match="step"):
        results.round_up(1.0, 0)
    with pytest.raises(ValueError, match="value"):
        results.round_up(math.nan, 1)


def test_derive_limits_from_known_rounds() -> None:
    ok = [100.0, 150.0]
    rounds = [_round(1, ok, cpu=9.5, run_all=10.0), _round(5, ok), _round(10, ok),
              _round(20, [700.0, 900.0])]
    limits = results.derive_limits(rounds, 2)
    assert limits["students_per_core"] == 5.0
    assert limits["cpu_guarantee"] == 0.2
    assert limits["single_student_cores"] == pytest.approx(9.5 / 10.25)  # Run all + two redraws
    assert limits["cpu_limit"] == 1.0
    assert limits["server_mib"] == 150.0 and limits["kernel_mib"] == 560.0
    assert limits["memory_guarantee_mib"] == 768        # 150 + 560 = 710 -> 768
    assert limits["memory_limit_mib"] == 1280           # 150 + 2 * 560 = 1270 -> 1280
    heavier = results.derive_limits(rounds, 2, heaviest_kernel_mib=773.0)
    assert heavier["kernel_mib"] == 773.0 and heavier["measured_kernel_mib"] == 560.0
    assert heavier["memory_guarantee_mib"] == 1024      # 150 + 773 = 923 -> 1024
    assert heavier["memory_limit_mib"] == 1792          # 150 + 1546 = 1696 -> 1792


def test_derive_limits_caps_the_cpu_limit_and_rejects_empty_measurements() -> None:
    busy = [_round(1, [100.0], cpu=30.0, run_all=10.0)]  # 3 cores busy on a 2-core machine
    assert results.derive_limits(busy, 2)["cpu_limit"] == 2.0
    empty = RoundResult(students=1, notebook="x")
    with pytest.raises(ValueError, match="memory"):
        results.derive_limits([empty], 2)
    with pytest.raises(ValueError, match="heaviest_kernel_mib"):
        results.derive_limits(busy, 2, heaviest_kernel_mib=-1.0)


def test_byte_specification_round_trip_in_jupyterhub_units() -> None:
    assert results.byte_specification(2048) == "2G"
    assert results.byte_specification(1792) == "1792M"
    for mib in (128, 768, 1024, 1792, 3072):
        assert results.parse_byte_specification(results.byte_specification(mib)) == mib
    assert results.parse_byte_specification("1.5G") == 1536
    assert results.parse_byte_specification(2**30) == 1024
    with pytest.raises(ValueError, match="mib"):
        results.byte_specification(100.5)
    with pytest.raises(ValueError, match="value"):
        results.parse_byte_specification("2Gi")  # Kubernetes' unit, not JupyterHub's
    with pytest.raises(ValueError, match="value"):
        results.parse_byte_specification("GG")
    with pytest.raises(TypeError, match="value"):
        results.parse_byte_specification(True)  # type: ignore[arg-type]


def test_z2jh_resources() -> None:
    resources = results.z2jh_resources({"cpu_guarantee": 0.2, "cpu_limit": 1.0,
                                        "memory_guarantee_mib": 1024, "memory_limit_mib": 1792})
    assert resources == {"cpu": {"guarantee": 0.2, "limit": 1.0},
                         "memory": {"guarantee": "1G", "limit": "1792M"}}
    with pytest.raises(ValueError, match="limits"):
        results.z2jh_resources({"cpu_guarantee": 0.2})


# -- reports ----------------------------------------------------------------------------------


def test_json_round_trip_and_markdown() -> None:
    rounds = [_round(1, [100.0, 120.0]), _round(5, [150.0, 300.0], failures=1)]
    rounds[0].load_average = [0.5, 0.4, 0.3]
    limits = results.derive_limits(rounds, 2, heaviest_kernel_mib=773.0)
    machine = {"cpu_model": "Test CPU", "logical_cores": 2, "memory_gib": 23.5,
               "load_average_at_start": [0.9, 0.8, 0.7], "versions": {"jupyterhub": "6.1.1"}}
    options = {"notebook": "notebooks/01_initialization.ipynb", "moves": 8, "think_s": 1.0,
               "threads_per_kernel": 1}
    text = results.to_json(machine, "2026-12-01 05:10 UTC", options, rounds, limits)
    assert "NaN" not in text
    machine2, date2, options2, rounds2, limits2 = results.from_json(text)
    assert date2 == "2026-12-01 05:10 UTC" and options2 == options
    assert [r.summary()["redraw_median_ms"] for r in rounds2] == [110.0, 225.0]
    assert rounds2[1].failures == 1 and limits2["memory_guarantee_mib"] == limits["memory_guarantee_mib"]
    page = results.classroom_markdown(machine2, date2, options2, rounds2, limits2)
    assert "| 1 | 2.0 / 2.0 |" in page
    assert "0.90, 0.80, 0.70" in page and "0.50, 0.40, 0.30" in page
    assert "N = 5, f0: StudentError: boom" in page
    assert "Students per core: 0.5" in page  # N = 5 failed, so only N = 1 passed
    with pytest.raises(ValueError, match="classroom.json"):
        results.from_json("{}")


# -- the command line -------------------------------------------------------------------------


def test_parse_sizes() -> None:
    assert parse_sizes("20, 1,5,5") == [1, 5, 20]
    for bad in ("", "0", "x", "1,-2"):
        with pytest.raises(ValueError, match="--students"):
            parse_sizes(bad)


def test_parse_args() -> None:
    args = parse_args([])
    assert args.students == [1, 5, 10, 20] and args.notebook.endswith("01_initialization.ipynb")
    assert args.timeout > 0 and args.source == "HEAD"
    with pytest.raises(SystemExit):
        parse_args(["--students", "0"])
    with pytest.raises(SystemExit):
        parse_args(["--notebook", "notebooks/nope.ipynb"])
    with pytest.raises(SystemExit):
        parse_args(["--think", "-1"])


def test_heaviest_kernel_mib(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"notebooks": [{"peak_mib": 353.0}, {"peak_mib": 773.2},
                                              {"peak_mib": None}]}))
    assert heaviest_kernel_mib(path) == 773.2
    assert heaviest_kernel_mib(tmp_path / "missing.json") is None


def test_export_course(tmp_path: Path) -> None:
    assert export_course("worktree", tmp_path / "x") == ROOT
    with pytest.raises(ValueError, match="source"):
        export_course("no-such-commit-anywhere", tmp_path / "y")
    with pytest.raises(ValueError, match="source"):
        export_course("", tmp_path / "z")


def test_hub_config_binds_localhost_only(tmp_path: Path) -> None:
    from traitlets.config import Config

    settings = HubSettings(run_dir=tmp_path, root_dir=tmp_path / "course",
                           singleuser=tmp_path / "bin" / "jupyterhub-singleuser",
                           proxy=tmp_path / "configurable-http-proxy", threads_per_kernel=1,
                           public_port=8000, hub_port=8081, proxy_api_port=8001)
    config = Config()
    exec(compile(hub_config(settings, "t" * 64), "jupyterhub_config.py", "exec"),
         {"get_config": lambda: config})
    for url in (config.JupyterHub.bind_url, config.JupyterHub.hub_bind_url,
                config.ConfigurableHTTPProxy.api_url):
        assert url.startswith("http://127.0.0.1:")
    assert config.Spawner.ip == "127.0.0.1"
    assert config.JupyterHub.spawner_class == "simple"
    assert config.JupyterHub.authenticator_class == "dummy"
    assert config.Spawner.environment["OMP_NUM_THREADS"] == "1"
    assert config.Spawner.environment["PYTHONPATH"] == str(tmp_path / "course")
    assert config.JupyterHub.services[0]["api_token"] == "t" * 64
    with pytest.raises(ValueError, match="service_token"):
        hub_config(settings, "short")
    with pytest.raises(ValueError, match="threads_per_kernel"):
        HubSettings(run_dir=tmp_path, root_dir=tmp_path, singleuser=tmp_path, proxy=tmp_path,
                    threads_per_kernel=0)
    with pytest.raises(TypeError, match="run_dir"):
        HubSettings(run_dir=str(tmp_path), root_dir=tmp_path, singleuser=tmp_path,  # type: ignore[arg-type]
                    proxy=tmp_path)


# -- the measured results and the Kubernetes values file -----------------------------------------


@pytest.fixture(scope="module")
def measured() -> tuple[dict, list[RoundResult], dict]:
    machine, _date, options, rounds, limits = results.from_json(CLASSROOM_JSON.read_text())
    return options, rounds, limits


def test_measured_results_cover_every_class_size(measured: tuple) -> None:
    options, rounds, limits = measured
    assert [r.students for r in rounds] == [1, 5, 10, 20]
    assert all(r.error is None for r in rounds)
    assert limits, "classroom.json holds no derived limits"
    page = (ROOT / "benchmarks" / "CLASSROOM.md").read_text()
    assert f"Students per core: {limits['students_per_core']:g}" in page


def test_limits_in_the_json_follow_from_its_rounds(measured: tuple) -> None:
    _options, rounds, limits = measured
    derived = results.derive_limits(rounds, limits["cores"], limits.get("heaviest_kernel_mib"))
    for key in ("students_per_core", "cpu_guarantee", "cpu_limit", "memory_guarantee_mib",
                "memory_limit_mib"):
        assert derived[key] == pytest.approx(limits[key]), key


def test_z2jh_values_parse_and_agree_with_the_measured_limits(measured: tuple) -> None:
    options, _rounds, limits = measured
    values = yaml.safe_load(VALUES.read_text())
    singleuser = values["singleuser"]
    expected = results.z2jh_resources(limits)
    assert singleuser["cpu"] == pytest.approx(expected["cpu"])
    for key in ("guarantee", "limit"):
        assert results.parse_byte_specification(singleuser["memory"][key]) == \
            results.parse_byte_specification(expected["memory"][key]), key
    assert singleuser["memory"]["guarantee"] and singleuser["cpu"]["guarantee"] <= singleuser["cpu"]["limit"]
    env = singleuser["extraEnv"]
    assert env["OMP_NUM_THREADS"] == str(options["threads_per_kernel"])


def test_z2jh_values_point_at_an_image_built_from_the_binder_recipe() -> None:
    values = yaml.safe_load(VALUES.read_text())
    image = values["singleuser"]["image"]
    assert image["name"] and str(image["tag"]) not in ("", "latest")
    text = VALUES.read_text() + (VALUES.parent / "README.md").read_text()
    assert "repo2docker" in text
    for recipe in (".binder/environment.yml", ".binder/postBuild"):
        assert recipe in text and (ROOT / recipe).is_file()
