"""``make bench``: time every notebook, slider and size knob; write RESULTS.md and results.json.

Usage (from the repository root)::

    python -m benchmarks.run [--repeats 3] [--sweeps 3] [--notebooks PATTERN]
                             [--no-notebooks] [--no-panels] [--no-scaling] [--output DIR]
                             [--render-only]

Exits 0 when every budget of :mod:`benchmarks.budgets` holds, 1 otherwise (the offenders
are listed on stderr and in RESULTS.md).
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python benchmarks/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
DEFAULT_OUTPUT = ROOT / "benchmarks"


def find_notebooks(folder: Path, pattern: str = "*") -> list[Path]:
    """The course notebooks (``NN_name.ipynb``) in ``folder`` whose file name matches
    ``pattern`` (a shell glob; ``"03*"`` and ``"03_*.ipynb"`` both work)."""
    found = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    return [p for p in found
            if fnmatch.fnmatch(p.name, pattern) or fnmatch.fnmatch(p.stem, pattern)]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=_positive, default=3,
                        help="runs of each notebook, each in a fresh kernel (default 3)")
    parser.add_argument("--sweeps", type=_positive, default=3,
                        help="timed sweeps over each panel's control settings (default 3)")
    parser.add_argument("--notebooks", default="*", metavar="PATTERN",
                        help="only notebooks whose file name matches this glob, e.g. '03_*'")
    parser.add_argument("--no-notebooks", action="store_true", help="skip executing notebooks")
    parser.add_argument("--no-panels", action="store_true", help="skip timing slider redraws")
    parser.add_argument("--no-scaling", action="store_true", help="skip the cost-against-size timings")
    parser.add_argument("--render-only", action="store_true",
                        help="measure nothing: rewrite RESULTS.md from the results.json in --output")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, metavar="DIR",
                        help="where to write RESULTS.md and results.json (default benchmarks/)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render_only:
        results = report.load_results((args.output / "results.json").read_text())
        (args.output / "RESULTS.md").write_text(report.results_markdown(*results))
        return report.exit_code(results[-1])
    from tqdm.auto import tqdm

    from benchmarks import measure

    machine = report.machine_description()
    date = report.today()
    options = {"repeats": args.repeats, "sweeps": args.sweeps, "notebooks": args.notebooks,
               "notebooks_run": not args.no_notebooks, "panels_run": not args.no_panels,
               "scaling_run": not args.no_scaling}

    notebooks: list[report.NotebookResult] = []
    if not args.no_notebooks:
        paths = find_notebooks(NOTEBOOKS, args.notebooks)
        if not paths:
            print(f"no notebook in notebooks/ matches {args.notebooks!r}", file=sys.stderr)
        with tqdm(total=len(paths) * args.repeats, desc="notebooks", unit="run") as bar:
            for path in paths:
                bar.set_postfix_str(path.name)
                notebooks.append(measure.run_notebook(path, args.repeats, lambda: bar.update(1)))

    panels: list[report.PanelResult] = []
    if not args.no_panels:
        panels = measure.time_panels(args.sweeps, lambda items: tqdm(items, desc="panels"))

    scaling: list[report.ScalingResult] = []
    if not args.no_scaling:
        scaling = measure.time_all_scaling(lambda items: tqdm(items, desc="size scaling"))

    machine["load_average_at_end"] = report.load_average()
    offenders = report.check_budgets(notebooks, panels)
    print(report.summary_markdown(notebooks, panels, scaling, offenders))

    args.output.mkdir(parents=True, exist_ok=True)
    results = (machine, date, options, notebooks, panels, scaling, offenders)
    (args.output / "RESULTS.md").write_text(report.results_markdown(*results))
    (args.output / "results.json").write_text(report.results_json(*results))
    try:
        shown = args.output.resolve().relative_to(ROOT)
    except ValueError:
        shown = args.output
    print(f"wrote {shown}/RESULTS.md and {shown}/results.json", file=sys.stderr)
    if offenders:
        print("Over budget:\n" + "\n".join(f"  - {o}" for o in offenders), file=sys.stderr)
    return report.exit_code(offenders)


if __name__ == "__main__":
    sys.exit(main())
