"""The studies' machinery (studies.store, studies.cli) and every registered study: its quick
configuration runs, its stored results are intact and current, and its claims hold on them."""

from __future__ import annotations

import json
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import studies
from studies import cli, store

STORED_BUDGET_BYTES = 10 * 2**20


# --------------------------------------------------------------------------- a toy study

@dataclass(frozen=True)
class ToyConfig:
    seeds: tuple[int, ...] = (0, 1, 2)
    size: int = 4


def toy_run(config: ToyConfig, device: str = "cpu") -> dict[str, np.ndarray]:
    rng = [np.random.default_rng(seed).normal(size=config.size) for seed in config.seeds]
    return {"draws": np.stack(rng), "seeds": np.asarray(config.seeds)}


def toy_claims(results: studies.Results) -> list[studies.Claim]:
    return [studies.Claim("one row per seed", len(results["draws"]), len(results.config["seeds"]),
                          len(results.config["seeds"]), fmt=".0f")]


@pytest.fixture
def toy_module(tmp_path, monkeypatch):
    """A study module on disk (its fingerprint reads its source), importable as toy_study."""
    source = textwrap.dedent('''
        """A toy study."""
        from helpers.validation import check_int  # a course module: part of the fingerprint


        def run(config, device="cpu"):
            """Docstring."""
            return {"x": check_int("n", 3)}  # a comment


        def claims(results):
            return []


        STUDY = "a description"
    ''')
    path = tmp_path / "toy_study.py"
    path.write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield path
    sys.modules.pop("toy_study", None)


@pytest.fixture
def toy(toy_module, tmp_path, monkeypatch):
    monkeypatch.setenv(store.STUDIES_DIR_ENV, str(tmp_path / "stored"))
    return studies.Study(name="toy", title="A toy study", notebook="00_start_here", full=ToyConfig(),
                         quick=ToyConfig(seeds=(0,), size=2), run=toy_run, claims=toy_claims,
                         module="toy_study")


def test_save_and_load_round_trip_with_provenance(toy, tmp_path):
    results, seconds = store.timed_run(toy, toy.full, "cpu")
    path = store.save(toy, results, seconds=seconds, device="cpu", quick=False)
    loaded = studies.load("toy")
    np.testing.assert_array_equal(loaded["draws"], results["draws"])
    provenance = json.loads(path.read_text())
    assert provenance["seeds"] == [0, 1, 2]
    assert provenance["config"] == {"seeds": [0, 1, 2], "size": 4}
    assert provenance["fingerprint"] == store.fingerprint("toy_study")
    assert provenance["code_modules"] == ["helpers.validation", "toy_study"]
    for key in ("packages", "cpu", "date", "wall_time_s", "npz_sha256", "command"):
        assert provenance[key] not in (None, "", {}), key
    assert provenance["packages"]["numpy"] == np.__version__
    assert store.stale_reason(toy) is None


def test_load_refuses_corrupt_and_missing_results_naming_the_command(toy):
    results, _ = store.timed_run(toy, toy.full, "cpu")
    store.save(toy, results, seconds=0.0, device="cpu", quick=False)
    npz = store.results_dir() / "toy.npz"
    data = bytearray(npz.read_bytes())
    data[-10] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(studies.StudyError, match=r"corrupt.*python -m studies run toy"):
        studies.load("toy")
    npz.unlink()
    with pytest.raises(studies.StudyError, match=r"missing.*python -m studies run toy"):
        studies.load("toy")
    with pytest.raises(studies.StudyError, match=r"missing.*python -m studies run other"):
        studies.load("other")


def test_fingerprint_ignores_comments_docstrings_claims_and_description_but_not_code(toy_module):
    before = store.fingerprint("toy_study")
    source = toy_module.read_text()
    toy_module.write_text(source.replace("# a comment", "# another comment")
                          .replace('"""Docstring."""', '"""Another docstring."""')
                          .replace("return []", "return [1, 2]")
                          .replace('"a description"', '"another description"'))
    assert store.fingerprint("toy_study") == before
    toy_module.write_text(source.replace("check_int(\"n\", 3)", "check_int(\"n\", 4)"))
    assert store.fingerprint("toy_study") != before


def test_stale_results_are_named_with_the_command(toy, toy_module):
    results, _ = store.timed_run(toy, toy.full, "cpu")
    store.save(toy, results, seconds=0.0, device="cpu", quick=False)
    toy_module.write_text(toy_module.read_text().replace("3)", "5)"))
    assert "python -m studies run toy" in store.stale_reason(toy)
    store.save(toy, results, seconds=0.0, device="cpu", quick=True)
    assert "quick configuration" in store.stale_reason(toy)


def test_claims_report_prints_each_and_fails_naming_the_failures(capsys):
    good = studies.Claim("a holds", 1.0, 0.5, None, fmt=".1f")
    bad = studies.Claim("b holds", 3.0, None, 2.0, fmt=".1f")
    studies.report([good])
    assert capsys.readouterr().out == "✓ a holds (measured 1.0, expected ≥ 0.5)\n"
    with pytest.raises(AssertionError, match=r"✗ b holds \(measured 3.0, expected ≤ 2.0\)"):
        studies.report([good, bad])
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as patch:  # a learner's session: every line, then a warning
        patch.delenv("INIT_NORM_STRICT_CLAIMS")
        studies.report([good, bad])
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 2 and "NOT CONFIRMED" in captured.err and "✗ b holds" in captured.err
    assert not studies.Claim("nan", float("nan"), 0, 1).holds
    with pytest.raises(ValueError, match="lo and hi"):
        studies.Claim("no bounds", 1.0, None, None)
    with pytest.raises(TypeError, match="Claim"):
        studies.report([])


def test_report_claims_of_one_section_prints_only_those(capsys):
    results = studies.obtain("regularization")
    studies.report_claims(results, section="§1:")
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith("✓ §1:") for line in lines)
    studies.report_claims(results)
    assert len(capsys.readouterr().out.splitlines()) > len(lines)
    with pytest.raises(ValueError, match="no claim starting with"):
        studies.report_claims(results, section="§9:")
    with pytest.raises(TypeError, match="section"):
        studies.report_claims(results, section=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="studies.Results"):
        studies.report_claims({})  # type: ignore[arg-type]


def test_bad_names_are_named():
    with pytest.raises(ValueError, match="name must be one of"):
        studies.get("no_such_study")
    with pytest.raises(TypeError, match="name must be a str"):
        studies.load(3)
    with pytest.raises(TypeError, match="rerun must be a bool"):
        studies.obtain("x", rerun="yes")


def test_cli_list_prints_one_study_per_line(capsys):
    assert cli.main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == studies.names()


# --------------------------------------------------------------------------- the course's studies

@pytest.mark.parametrize("name", studies.names())
def test_quick_configuration_runs_with_the_stored_arrays_layout(name):
    study = studies.get(name)
    quick = study.execute(study.quick)
    stored = studies.load(name)
    assert sorted(quick.arrays) == sorted(stored.arrays)
    for key, value in stored.arrays.items():
        assert quick[key].ndim == value.ndim, key
        assert quick[key].dtype.kind == value.dtype.kind, key


@pytest.mark.parametrize("name", studies.names())
def test_stored_results_are_intact_and_current(name):
    study = studies.get(name)
    studies.load(name)  # checks the SHA-256
    reason = store.stale_reason(study)
    assert reason is None, reason


@pytest.mark.parametrize("name", studies.names())
def test_claims_hold_on_the_stored_results(name):
    claims = studies.get(name).claims(studies.load(name))
    assert claims, f"study {name!r} makes no claims"
    failed = [claim.line() for claim in claims if not claim.holds]
    assert not failed, "\n".join(failed)


def test_every_stored_file_belongs_to_a_study_and_all_fit_the_budget():
    directory = store.results_dir()
    files = sorted(directory.glob("*"))
    assert {path.stem for path in files} == set(studies.names())
    assert {path.suffix for path in files} <= {".npz", ".json"}
    assert sum(path.stat().st_size for path in files) <= STORED_BUDGET_BYTES


def test_study_modules_are_documented():
    for name in studies.names():
        study = studies.get(name)
        assert study.title and study.notebook and (Path("notebooks") / f"{study.notebook}.ipynb").is_file(), name
        assert study.full != study.quick, name
