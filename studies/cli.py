"""The studies' command line.

    python -m studies list                      one study per line: name, notebook, title
    python -m studies run NAME|all [--quick] [--device cpu|cuda] [--output-dir DIR]
    python -m studies check                     every stored study present, intact and current
    python -m studies verify NAME|all [--scratch DIR]
                                                rerun the full studies into DIR, check every claim
                                                on the rerun, record the outcome in the provenance

``run`` stores full results in ``data/studies`` and quick ones in ``build/studies-quick``
unless ``--output-dir`` says otherwise.  ``verify`` leaves the stored arrays as they are.
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import studies
from studies import store

REPO_ROOT = Path(__file__).resolve().parent.parent
QUICK_DIR = REPO_ROOT / "build" / "studies-quick"
SCRATCH_DIR = REPO_ROOT / "build" / "studies-verify"


def _selected(name: str) -> list[str]:
    if name == "all":
        return studies.names()
    studies.get(name)  # raises, listing the studies, if there is none of that name
    return [name]


def _run(names: list[str], quick: bool, device: str, output_dir: Path | None) -> int:
    directory = output_dir or (QUICK_DIR if quick else store.results_dir())
    total = 0.0
    for name in names:
        study = studies.get(name)
        config = study.quick if quick else study.full
        print(f"{name}: running the {'quick' if quick else 'full'} configuration on {device}")
        results, seconds = store.timed_run(study, config, device)
        path = store.save(study, results, seconds=seconds, device=device, quick=quick, directory=directory)
        total += seconds
        print(f"{name}: {seconds:.0f} s, stored in {path.with_suffix('.npz')} and {path.name}")
    if len(names) > 1:
        print(f"all studies: {total:.0f} s")
    return 0


def _check() -> int:
    problems = []
    for name in studies.names():
        study = studies.get(name)
        try:
            store.load(name)
            reason = store.stale_reason(study)
        except store.StudyError as error:
            reason = str(error)
        if reason:
            problems.append(reason)
        print(f"{name}: {reason or 'stored, intact and current'}")
    return 1 if problems else 0


def _verify(names: list[str], device: str, scratch: Path) -> int:
    failures = 0
    for name in names:
        study = studies.get(name)
        print(f"{name}: rerunning the full configuration on {device} into {scratch}")
        results, seconds = store.timed_run(study, study.full, device)
        store.save(study, results, seconds=seconds, device=device, quick=False, directory=scratch)
        claims = study.claims(results)
        failed = [claim.line() for claim in claims if not claim.holds]
        for claim in claims:
            print(f"  {claim.line()}")
        failures += bool(failed)
        stored = store.results_dir() / f"{name}.json"
        provenance = json.loads(stored.read_text(encoding="utf-8"))
        provenance["verification"] = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "fingerprint": store.fingerprint(study.module),
            "cpu": store.cpu_model(),
            "device": device,
            "wall_time_s": round(seconds, 1),
            "claims": len(claims),
            "held": len(claims) - len(failed),
            "failed": failed,
        }
        stored.write_text(json.dumps(provenance, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{name}: {len(claims) - len(failed)} of {len(claims)} claims hold on the rerun ({seconds:.0f} s)")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studies", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="one study per line: name, notebook, title")
    run = commands.add_parser("run", help="run studies and store their results")
    run.add_argument("name", help="a study's name, or all")
    run.add_argument("--quick", action="store_true", help="the quick configuration (seconds)")
    run.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    run.add_argument("--output-dir", type=Path, default=None)
    commands.add_parser("check", help="every stored study present, intact and current")
    verify = commands.add_parser("verify", help="rerun full studies into a scratch folder and check the claims")
    verify.add_argument("name", help="a study's name, or all")
    verify.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    verify.add_argument("--scratch", type=Path, default=SCRATCH_DIR)
    args = parser.parse_args(argv)
    if args.command == "list":
        for name in studies.names():
            study = studies.get(name)
            print(f"{name}  {study.notebook}  {study.title}")
        return 0
    if args.command == "check":
        return _check()
    if args.command == "run":
        return _run(_selected(args.name), args.quick, args.device, args.output_dir)
    return _verify(_selected(args.name), args.device, args.scratch)
