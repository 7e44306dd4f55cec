"""``make classroom-bench``: N students at once on a real JupyterHub on this machine.

Usage (from the repository root, with the hub's environment that ``make classroom-bench``
builds in ``build/classroom``)::

    python -m benchmarks.classroom [--students 1,5,10,20] [--notebook PATH] [--moves 8]
                                   [--think 1.0] [--timeout 1500] [--output DIR]
                                   [--render-only]

For each class size N, in one hub: N users are created through the hub's REST API, all
servers are started at once (the login rush), each student gets a token, and all students
run the notebook and move its slider at the same time (the whole class pressing "Run all"
together, the worst case).  Memory of the hub, the proxy, the servers and the kernels is
sampled with psutil throughout.  After the round every server is stopped and the users
deleted.  Whatever happens — a failure, the global ``--timeout``, Ctrl-C or SIGTERM —
every process the run started is stopped before it exits.

Exits 0 when every student of every round finished, 1 otherwise (the report still says
what was measured), 2 for bad arguments, 130 when interrupted (nothing written).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import report  # noqa: E402
from benchmarks.classroom import results  # noqa: E402
from benchmarks.classroom.results import RoundResult, StudentResult  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = ROOT / "benchmarks"
DEFAULT_NOTEBOOK = "notebooks/01_initialization.ipynb"
BUILD = ROOT / "build" / "classroom"


def parse_sizes(text: str) -> list[int]:
    """``"1,5,10,20"`` → ``[1, 5, 10, 20]`` (sorted, without repeats).

    Raises:
        ValueError: naming ``--students`` for an empty list, a non-integer or a size < 1.
    """
    if not isinstance(text, str):
        raise TypeError(f"--students must be a string, got {type(text).__name__}")
    sizes = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            size = int(part)
        except ValueError:
            raise ValueError(f"--students must list whole numbers, got {part!r}") from None
        if size < 1:
            raise ValueError(f"--students sizes must be >= 1, got {size}")
        sizes.add(size)
    if not sizes:
        raise ValueError("--students must name at least one class size")
    return sorted(sizes)


def _sizes(text: str) -> list[int]:
    try:
        return parse_sizes(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.classroom",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=_sizes, default=[1, 5, 10, 20], metavar="N,N,...",
                        help="class sizes to measure, one after the other (default 1,5,10,20)")
    parser.add_argument("--notebook", default=DEFAULT_NOTEBOOK, metavar="PATH",
                        help=f"the notebook every student runs, relative to the repository "
                             f"(default {DEFAULT_NOTEBOOK})")
    parser.add_argument("--moves", type=_positive_int, default=8,
                        help="slider moves per student after the run (default 8)")
    parser.add_argument("--think", type=_non_negative_float, default=1.0, metavar="SECONDS",
                        help="pause before each slider move, as a student looks (default 1.0)")
    parser.add_argument("--timeout", type=_positive_float, default=1500.0, metavar="SECONDS",
                        help="global time limit for the whole run (default 1500)")
    parser.add_argument("--cell-timeout", type=_positive_float, default=600.0, metavar="SECONDS",
                        help="limit for one server start, one cell or one redraw (default 600)")
    parser.add_argument("--threads-per-kernel", type=_positive_int, default=1,
                        help="OMP/MKL/OpenBLAS threads in each student's environment (default 1)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, metavar="DIR",
                        help="where to write CLASSROOM.md and classroom.json (default benchmarks/)")
    parser.add_argument("--run-dir", type=Path, default=BUILD / "run", metavar="DIR",
                        help="the hub's working folder, emptied first (default build/classroom/run)")
    parser.add_argument("--source", default="HEAD", metavar="REF",
                        help="the course the students get: a git commit exported with "
                             "`git archive` (default HEAD: the committed course, not edits in "
                             "progress), or 'worktree' for the files as they are")
    parser.add_argument("--render-only", action="store_true",
                        help="measure nothing: rewrite CLASSROOM.md from classroom.json in --output")
    args = parser.parse_args(argv)
    if not args.render_only and not (ROOT / args.notebook).is_file():
        parser.error(f"--notebook {args.notebook} does not exist")
    return args


def export_course(source: str, destination: Path) -> Path:
    """The course the students get, in ``destination``: the repository itself for
    ``"worktree"``, else the files of git commit ``source`` (``git archive``).

    Raises:
        ValueError: if ``source`` is empty or git cannot export it.
    """
    if not isinstance(source, str) or not source:
        raise ValueError("source must name a git commit or 'worktree'")
    if source == "worktree":
        return ROOT
    destination.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", source],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        raise ValueError(f"source {source!r}: git archive failed: "
                         f"{archive.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(destination, filter="data")
    return destination


def heaviest_kernel_mib(results_json: Path) -> float | None:
    """The largest peak kernel memory of any notebook in ``make bench``'s results.json
    (None when the file is missing or holds none)."""
    try:
        data = json.loads(results_json.read_text())
    except (OSError, ValueError):
        return None
    peaks = [nb.get("peak_mib") for nb in data.get("notebooks", [])]
    peaks = [float(p) for p in peaks if isinstance(p, (int, float)) and p > 0]
    return max(peaks) if peaks else None


def _short(error: BaseException, limit: int = 200) -> str:
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    message = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return message if len(message) <= limit else message[: limit - 1] + "…"


def _versions() -> dict[str, str]:
    found = {}
    for dist in ("jupyterhub", "jupyter_server", "ipykernel", "ipywidgets"):
        found[dist] = report._version(dist)
    return found


async def run_round(hub: Any, watch: Any, size: int, args: argparse.Namespace,
                    round_: RoundResult) -> None:
    """One class size on the running hub; fills ``round_``."""
    from benchmarks.classroom.student import run_student

    names = [f"n{size:02d}-student{i:02d}" for i in range(1, size + 1)]
    start_mono, start_wall = time.monotonic(), time.time()
    await hub.create_users(names)

    async def one(name: str) -> None:
        result = StudentResult(name=name)
        round_.results.append(result)
        try:
            result.spawn_s = await hub.start_server(name, args.cell_timeout)
            token = await hub.new_token(name)
            await run_student(hub, name, token, args.notebook, moves=args.moves,
                              think_s=args.think, cell_timeout_s=args.cell_timeout, result=result)
        except asyncio.CancelledError:
            result.error = result.error or "not finished before the global --timeout"
            raise
        except Exception as error:  # noqa: BLE001 - a failing student is a result
            result.error = _short(error)

    try:
        await asyncio.gather(*(one(name) for name in names))
    finally:
        round_.wall_s = time.monotonic() - start_mono
        watch.sample()
        samples = watch.samples_since(start_mono)
        round_.peak_mib, round_.peak_total_mib = _peaks(samples)
        servers = watch.processes_since(start_wall - 1, "servers")
        kernels = watch.processes_since(start_wall - 1, "kernels")
        round_.server_peak_mib = [s.peak_rss_mib for s in servers]
        round_.server_cpu_s = [s.cpu_s for s in servers]
        # a kernel's own child processes (rare) are counted with the kernel in the sums,
        # and per process here
        round_.kernel_peak_mib = [k.peak_rss_mib for k in kernels]
        round_.kernel_cpu_s = [k.cpu_s for k in kernels]
        round_.load_average = report.load_average()


def _peaks(samples: list[Any]) -> tuple[dict[str, float], float]:
    from benchmarks.classroom.processes import peak_by_kind

    return peak_by_kind(samples)


async def end_round(hub: Any, size: int) -> None:
    """Stop every server of the round and delete its users (errors are ignored: the final
    clean-up stops whatever is left)."""
    names = [f"n{size:02d}-student{i:02d}" for i in range(1, size + 1)]

    async def one(name: str) -> None:
        try:
            await hub.stop_server(name)
            await hub.delete_user(name)
        except Exception:  # noqa: BLE001
            pass

    await asyncio.gather(*(one(name) for name in names))


async def bench(hub: Any, watch: Any, args: argparse.Namespace, rounds: list[RoundResult],
                progress: Any, stop: dict[str, bool]) -> None:
    """Every class size in turn.  SIGINT and SIGTERM set ``stop["interrupted"]`` and cancel
    this task, so the clean-up runs and nothing is written."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def interrupt() -> None:
        stop["interrupted"] = True
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupt)
    await hub.wait_ready()
    watch.start()
    for size in args.students:
        round_ = RoundResult(students=size, notebook=args.notebook)
        rounds.append(round_)
        progress(f"N = {size}: logging in {size} student(s) and running {args.notebook} ...")
        try:
            await run_round(hub, watch, size, args, round_)
        finally:
            try:
                await asyncio.shield(asyncio.wait_for(end_round(hub, size), 90))
            except (asyncio.TimeoutError, asyncio.CancelledError):
                pass  # the final clean-up stops whatever is left
        if stop.get("interrupted"):
            raise asyncio.CancelledError
        s = round_.summary()
        progress(f"N = {size}: run all {s['run_all_median_s']:.1f} s (median), redraw "
                 f"{s['redraw_median_ms']:.0f}/{s['redraw_p95_ms']:.0f} ms (median/p95), "
                 f"{round_.failures} failure(s), {round_.peak_total_mib:.0f} MiB in all")
        await asyncio.sleep(3)  # let the stopped processes go before the next class


def write_reports(output: Path, machine: dict[str, Any], date: str, options: dict[str, Any],
                  rounds: list[RoundResult], limits: dict[str, Any]) -> None:
    output.mkdir(parents=True, exist_ok=True)
    (output / "classroom.json").write_text(results.to_json(machine, date, options, rounds, limits))
    (output / "CLASSROOM.md").write_text(results.classroom_markdown(machine, date, options, rounds, limits))


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render_only:
        (args.output / "CLASSROOM.md").write_text(results.classroom_markdown(
            *results.from_json((args.output / "classroom.json").read_text())))
        return 0

    from benchmarks.classroom.hub import Hub, HubSettings, find_program, python_bin
    from benchmarks.classroom.processes import ProcessWatch, stop_processes

    jupyterhub = find_program("jupyterhub", python_bin())
    run_dir = args.run_dir.resolve()
    shutil.rmtree(run_dir, ignore_errors=True)
    try:
        course = export_course(args.source, run_dir / "course")
    except ValueError as error:
        print(f"--source: {error}", file=sys.stderr)
        return 2
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short",
                             "HEAD" if args.source == "worktree" else args.source],
                            capture_output=True, text=True, check=False).stdout.strip()
    settings = HubSettings(
        run_dir=run_dir, root_dir=course,
        singleuser=find_program("jupyterhub-singleuser", python_bin()),
        proxy=find_program("configurable-http-proxy", BUILD / "node_modules" / ".bin"),
        threads_per_kernel=args.threads_per_kernel,
        start_timeout_s=int(args.cell_timeout))
    machine = report.machine_description()
    machine["load_average_at_start"] = report.load_average()
    machine["versions"] = _versions()
    date = report.today()
    options = {"students": args.students, "notebook": args.notebook, "moves": args.moves,
               "think_s": args.think, "timeout_s": args.timeout,
               "threads_per_kernel": args.threads_per_kernel,
               "source": args.source if args.source == "worktree" else f"{args.source} ({commit})"}

    def progress(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    # requests still in flight when a round is cancelled end with errors nobody waits for
    logging.getLogger("tornado.application").setLevel(logging.CRITICAL)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # until the loop runs
    stop: dict[str, bool] = {"interrupted": False}
    hub = Hub(settings, jupyterhub)
    watch = None
    rounds: list[RoundResult] = []
    started = time.monotonic()
    interrupted = False
    try:
        watch = ProcessWatch(hub.launch())
        progress(f"hub started on {hub.url} (log: {hub.log_path})")
        asyncio.run(asyncio.wait_for(bench(hub, watch, args, rounds, progress, stop), args.timeout))
    except asyncio.TimeoutError:
        progress(f"the global --timeout of {args.timeout:.0f} s ran out")
        if rounds and rounds[-1].error is None:
            rounds[-1].error = f"the global --timeout of {args.timeout:.0f} s ran out"
    except (KeyboardInterrupt, asyncio.CancelledError):
        interrupted = True
        progress("interrupted: stopping everything")
    except Exception as error:  # noqa: BLE001 - report, clean up, fail
        progress(f"the run failed: {_short(error, 500)}\n{hub.log_tail()}")
        if rounds:
            rounds[-1].error = rounds[-1].error or _short(error)
        else:
            return _cleanup(hub, watch, stop_processes, previous, code=1, progress=progress)
    code = _cleanup(hub, watch, stop_processes, previous, code=0, progress=progress)
    if interrupted or stop["interrupted"]:
        return 130
    machine["load_average_at_end"] = report.load_average()
    machine["duration_s"] = round(time.monotonic() - started, 1)
    try:
        limits = results.derive_limits(rounds, os.cpu_count() or 1,
                                       heaviest_kernel_mib(ROOT / "benchmarks" / "results.json"))
    except ValueError as error:
        progress(f"no limits derived: {error}")
        limits = {}
    write_reports(args.output, machine, date, options, rounds, limits)
    progress(f"wrote {args.output}/CLASSROOM.md and classroom.json in {machine['duration_s']:.0f} s")
    failed = any(r.failures or r.error for r in rounds) or len(rounds) < len(args.students)
    return 1 if failed or code else 0


def _cleanup(hub: Any, watch: Any, stop_processes: Any, previous: Any, *, code: int,
             progress: Any) -> int:
    """Stop the sampling, the hub (which stops its servers and proxy) and then every process
    ever seen in its tree that is still running."""
    try:
        if watch is not None:
            watch.stop()
        hub.stop()
        if watch is not None:
            leftover = stop_processes(watch.all_seen())
            if leftover:
                progress(f"had to kill {len(leftover)} process(es) that ignored SIGTERM")
    finally:
        signal.signal(signal.SIGTERM, previous)
    return code


if __name__ == "__main__":
    sys.exit(main())
