"""``python -m benchmarks.classroom``: for each notebook and class size N, N students start a kernel
at once, run every cell and move the slider (the whole class pressing "Run all" together, the
worst case) while the kernels' memory and CPU time are sampled; every kernel started is stopped
whatever happens.  Exits 0 when every student finished, 1 otherwise (the report still says what
was measured), 2 for a bad ``--source``, 130 when interrupted (nothing written)."""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from benchmarks import report
from benchmarks.classroom import results
from benchmarks.classroom.processes import KernelWatch, server_memory, stop_processes
from benchmarks.classroom.results import RoundResult, StudentResult
from benchmarks.classroom.student import run_student
from benchmarks.measure import _short

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = ROOT / "build" / "classroom" / "run"
CELL_TIMEOUT_S = 600.0  # one kernel start, one cell or one redraw


def parse_sizes(text: str) -> list[int]:
    """``"1,5,10,20"`` → ``[1, 5, 10, 20]`` (sorted, without repeats).

    Raises:
        ValueError: naming ``--students`` for an empty list, a non-integer or a size < 1.
    """
    try:
        sizes = sorted({int(p) for p in text.split(",") if p.strip()})
    except ValueError:
        sizes = []
    if not sizes or sizes[0] < 1:
        raise ValueError(f"--students must list whole class sizes >= 1, got {text!r}")
    return sizes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.classroom", description=__doc__.split(":")[0])
    add = parser.add_argument
    add("--students", type=parse_sizes, default=[1, 2, 4, 8, 16], help="class sizes (1,2,4,8,16)")
    add("--notebooks", default="notebooks/01_initialization.ipynb,notebooks/02_norm_drift.ipynb",
        help="notebooks, relative to the repository (01 and 02)")
    add("--moves", type=int, default=8, help="slider moves per student (8)")
    add("--think", type=float, default=1.0, help="seconds before each slider move (1.0)")
    add("--timeout", type=float, default=1500.0, help="global limit in seconds (1500)")
    add("--output", type=Path, default=ROOT / "benchmarks", help="where CLASSROOM.md and classroom.json go")
    add("--source", default="HEAD", help="the course the students get: a git commit (`git archive`, not "
                                         "edits in progress; default HEAD) or 'worktree'")
    add("--render-only", action="store_true", help="rewrite CLASSROOM.md from classroom.json in --output")
    args = parser.parse_args(argv)
    args.notebooks = [nb.strip() for nb in args.notebooks.split(",") if nb.strip()]
    missing = [nb for nb in args.notebooks if not (ROOT / nb).is_file()]
    if not args.render_only and (missing or not args.notebooks):
        parser.error(f"--notebooks: {', '.join(missing) or 'none given'} does not exist")
    if args.moves < 1 or args.think < 0 or not args.timeout > 0:
        parser.error(f"need --moves >= 1, --think >= 0, --timeout > 0; got {args.moves}, {args.think}, {args.timeout}")
    return args


def export_course(source: str, destination: Path) -> Path:
    """The course the students get: the repository for ``"worktree"``, else git commit ``source``
    extracted into ``destination``.

    Raises:
        ValueError: if git cannot export ``source`` (an empty one included).
    """
    if source == "worktree":
        return ROOT
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", source], capture_output=True, check=False)
    if archive.returncode != 0:
        raise ValueError(f"source {source!r}: git archive failed: {archive.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(destination, filter="data")
    return destination


def student_env(course: Path, home: Path) -> dict[str, str]:
    """A student's environment: the course first on ``PYTHONPATH``, one BLAS thread (as the
    course sets), IPython's and matplotlib's state in a home folder of its own."""
    home.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "IPYTHONDIR": str(home / ".ipython"), "MPLCONFIGDIR": str(home / ".matplotlib"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(course), os.environ.get("PYTHONPATH")])),
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def run_round(round_: RoundResult, course: Path, args: argparse.Namespace, watch: KernelWatch) -> None:
    """One notebook and class size, every student at once; fills ``round_``."""

    async def one(result: StudentResult) -> None:
        def finish(pid: int) -> None:
            result.cpu_s, result.peak_rss_mib, result.peak_pss_mib = watch.finish(pid)
        try:
            await run_student(course / round_.notebook, student_env(course, RUN_DIR / "home" / result.name), result,
                              moves=args.moves, think_s=args.think, cell_timeout_s=CELL_TIMEOUT_S,
                              on_kernel=watch.add, before_shutdown=finish)
        except asyncio.CancelledError:
            result.error = result.error or "not finished before the global --timeout"
            raise
        except Exception as error:  # noqa: BLE001 - a failing student is a result
            result.error = _short(error)

    round_.results = [StudentResult(f"n{round_.students:02d}-student{i:02d}") for i in range(1, round_.students + 1)]
    watch.total_rss = watch.total_pss = 0.0
    try:
        await asyncio.gather(*(one(r) for r in round_.results))
    finally:
        round_.total_rss_mib, round_.total_pss_mib = watch.total_rss, watch.total_pss
        round_.load_average = report.load_average()


async def bench(course: Path, args: argparse.Namespace, rounds: list[RoundResult], watch: KernelWatch) -> None:
    sampler = asyncio.create_task(watch.run())
    for notebook, size in itertools.product(args.notebooks, args.students):
        rounds.append(round_ := RoundResult(students=size, notebook=notebook))
        progress(f"{notebook}, N = {size} ...")
        await run_round(round_, course, args, watch)
        summary = ", ".join(f"{k} {v:.1f}" for k, v in round_.summary().items())
        progress(f"  {round_.failures} failure(s); {summary}")
        await asyncio.sleep(3)  # let the stopped kernels go before the next class
    sampler.cancel()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render_only:
        page = results.classroom_markdown(*results.from_json((args.output / "classroom.json").read_text()))
        (args.output / "CLASSROOM.md").write_text(page)
        return 0
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    try:
        course = export_course(args.source, RUN_DIR / "course")
    except ValueError as error:
        print(f"--source: {error}", file=sys.stderr)
        return 2
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.source],
                            capture_output=True, text=True, check=False).stdout.strip()
    machine = {**report.machine_description(), "versions": {
        d: report._version(d) for d in ("jupyter_client", "jupyterlab", "ipykernel", "ipywidgets")}}
    options = {"students": args.students, "notebooks": args.notebooks, "moves": args.moves, "think_s": args.think,
               "timeout_s": args.timeout, "threads_per_kernel": 1,
               "source": args.source if args.source == "worktree" else f"{args.source} ({commit})"}
    previous, watch = signal.signal(signal.SIGTERM, signal.default_int_handler), KernelWatch()  # SIGTERM: as ^C
    rounds: list[RoundResult] = []
    begin = time.monotonic()
    try:
        server_rss, server_pss = server_memory(course, args.notebooks[0], student_env(course, RUN_DIR / "home" / "lab"))
        progress(f"one JupyterLab server: {server_rss:.0f} MiB RSS, {server_pss:.0f} MiB PSS")
        asyncio.run(asyncio.wait_for(bench(course, args, rounds, watch), args.timeout))
    except asyncio.TimeoutError:
        progress(f"the global --timeout of {args.timeout:.0f} s ran out")
        if rounds:
            rounds[-1].error = f"the global --timeout of {args.timeout:.0f} s ran out"
    except KeyboardInterrupt:
        progress("interrupted: stopping everything")
        return 130
    except Exception as error:  # noqa: BLE001 - clean up, fail
        progress(f"the run failed: {_short(error)}")
        return 1
    finally:
        if stop_processes(watch.started):
            progress("had to kill kernels that ignored SIGTERM")
        signal.signal(signal.SIGTERM, previous)
    machine |= {"load_average_at_end": report.load_average(), "duration_s": round(time.monotonic() - begin, 1)}
    try:
        limits = results.derive_limits(rounds, os.cpu_count() or 1, server_rss, server_pss)
    except ValueError as error:
        progress(f"no limits derived: {error}")
        limits = {}
    args.output.mkdir(parents=True, exist_ok=True)
    report_args = (machine, report.today(), options, rounds, limits)
    (args.output / "classroom.json").write_text(results.to_json(*report_args))
    (args.output / "CLASSROOM.md").write_text(results.classroom_markdown(*report_args))
    progress(f"wrote {args.output}/CLASSROOM.md and classroom.json in {machine['duration_s']:.0f} s")
    failed = any(r.failures or r.error for r in rounds) or len(rounds) < len(args.students) * len(args.notebooks)
    return 1 if failed else 0
