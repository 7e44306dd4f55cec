"""The course table (notebooks/course.toml, tools.course) and everything that must agree with it:
README's notebook table, TEACHING's tables and section headings, notebook 00's course map,
each notebook's header, and the benchmark budgets."""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from tools import course as course_tools
from tools.course import (
    BLOCKS,
    Course,
    begin_marker,
    block_differences,
    check,
    course_map,
    end_marker,
    find_block,
    load_course,
    load_results,
    measured,
    parse_course,
    per_notebook_resources,
    readme_table,
    replace_block,
    sync,
)

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as the package tomli (the `test` extra)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
RAW = tomllib.loads((ROOT / "notebooks" / "course.toml").read_text(encoding="utf-8"))
COURSE = load_course()
FIX = "edit notebooks/course.toml (or the file) and run `python -m tools.course`"


# -- the repository agrees with the table ---------------------------------------------------
def test_every_notebook_is_in_the_table_and_every_entry_exists() -> None:
    listed = [nb.file for nb in COURSE.notebooks]
    on_disk = [path.name for path in NOTEBOOKS]
    assert sorted(set(on_disk) - set(listed)) == [], "add these notebooks to notebooks/course.toml"
    assert sorted(set(listed) - set(on_disk)) == [], "notebooks/course.toml lists files that do not exist"


def test_generated_blocks_are_current() -> None:
    problems = check()
    assert not problems, f"{FIX}:\n" + "\n".join(problems)


@pytest.mark.parametrize("nb", COURSE.notebooks, ids=lambda nb: nb.number)
def test_teaching_has_a_section_headed_with_the_title(nb: course_tools.Notebook) -> None:
    lines = (ROOT / "TEACHING.md").read_text(encoding="utf-8").split("\n")
    headings = [(i + 1, line) for i, line in enumerate(lines) if line.startswith(f"### {nb.number} · ")]
    assert headings, f"TEACHING.md: add a section headed '### {nb.number} · {nb.title}...' (CONTRIBUTING.md)"
    number, line = headings[0]
    assert len(headings) == 1, f"TEACHING.md lines {[n for n, _ in headings]}: one section per notebook"
    assert line.startswith(f"### {nb.number} · {nb.title}"), (
        f"TEACHING.md line {number}: {line!r} must start with '### {nb.number} · {nb.title}' "
        "(the title in notebooks/course.toml)")


def test_teaching_sections_follow_the_table_order() -> None:
    text = (ROOT / "TEACHING.md").read_text(encoding="utf-8")
    assert re.findall(r"^### (\d\d) · ", text, flags=re.MULTILINE) == [nb.number for nb in COURSE.notebooks]


@pytest.mark.parametrize("nb", COURSE.notebooks, ids=lambda nb: nb.number)
def test_notebook_header_agrees_with_the_table(nb: course_tools.Notebook) -> None:
    header = nbformat.read(ROOT / "notebooks" / nb.file, as_version=4).cells[0].source
    first = header.split("\n", 1)[0]
    assert first.startswith(f"# {nb.number} · {nb.title}"), (
        f"{nb.file} cell 0: the title {first!r} must start with '# {nb.number} · {nb.title}' (notebooks/course.toml)")
    time_lines = [line for line in header.split("\n") if line.startswith("**Time.**")]
    assert len(time_lines) == 1, f"{nb.file} cell 0: the header needs one line starting '**Time.**'"
    stated = sum(int(n) for n in re.findall(r"(\d+) minutes", time_lines[0]))
    assert stated == nb.minutes, (
        f"{nb.file} cell 0: the header's **Time.** line adds up to {stated} minutes, notebooks/course.toml "
        f"says minutes = {nb.minutes}: change one of them")
    for key in nb.lectures:
        lecture = COURSE.lectures[key]
        names = (lecture.name.removeprefix("the ").lower(), lecture.title.lower())
        assert any(name in header.lower() for name in names), (
            f"{nb.file} cell 0: the header must name {lecture.name} (or quote {lecture.title!r}), "
            "as notebooks/course.toml says it mirrors it")


def test_course_map_names_every_lecture_it_lists_once() -> None:
    text = course_map(COURSE)
    used = {key for nb in COURSE.notebooks for key in nb.lectures}
    for key in used:
        assert text.count(f"- {COURSE.lectures[key].name}: ") == 1
    assert not re.search(r"\b00\d\b", text), "lectures are cited by title, never by a file number"


# -- reading the table ------------------------------------------------------------------------
def _raw() -> dict:
    return copy.deepcopy(RAW)


def test_parse_course_reads_the_repository_table() -> None:
    course = parse_course(_raw())
    assert isinstance(course, Course) and course == COURSE
    assert [nb.number for nb in course.notebooks] == sorted(nb.number for nb in course.notebooks)
    assert course.budgets() == {nb.number: nb.budget_s for nb in course.notebooks}
    assert all(isinstance(nb.lectures, tuple) for nb in course.notebooks)


def _with(change) -> dict:
    data = _raw()
    change(data)
    return data


@pytest.mark.parametrize(("change", "match"), [
    (lambda d: d["notebook"][1].update(number="1"), "two digits"),
    (lambda d: d["notebook"][1].update(file="02_initialization.ipynb"), "file must be '01_snake_case"),
    (lambda d: d["notebook"][1].update(file="01 Initialization.ipynb"), "file must be"),
    (lambda d: d["notebook"].reverse(), "numbers must increase"),
    (lambda d: d["notebook"][1].update(lectures=["nonesuch"]), "lecture 'nonesuch'"),
    (lambda d: d["notebook"][1].update(colour="red"), "unknown fields"),
    (lambda d: d["notebook"][1].pop("title"), "'title' is missing"),
    (lambda d: d["notebook"][1].update(title="  "), "must not be empty"),
    (lambda d: d["notebook"][1].update(budget_s=0), "budget_s must be > 0"),
    (lambda d: d["notebook"][1].update(minutes=-5), "minutes must be > 0"),
    (lambda d: d.update(notebook=[]), "at least one"),
    (lambda d: d.update(extra={}), "unknown top-level"),
    (lambda d: d["lectures"].update(Bad={"name": "a", "title": "b", "citation": "c"}), "lecture key"),
    (lambda d: d["lectures"]["cmu"].update(year=2024), "unknown fields"),
])
def test_parse_course_rejects_bad_values(change, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_course(_with(change))


@pytest.mark.parametrize(("change", "match"), [
    (lambda d: d["notebook"][1].update(minutes="45"), "minutes must be int"),
    (lambda d: d["notebook"][1].update(minutes=True), "minutes must be int"),
    (lambda d: d["notebook"][1].update(budget_s="60"), "budget_s must be float"),
    (lambda d: d["notebook"][1].update(lectures="cmu"), "lectures must be list"),
    (lambda d: d["notebook"][1].update(lectures=[3]), "list of keys"),
    (lambda d: d["notebook"].__setitem__(1, "01"), "must be a table"),
    (lambda d: d.update(lectures=[]), "lectures must be a table"),
    (lambda d: d["lectures"]["cmu"].update(name=1), "name must be str"),
])
def test_parse_course_rejects_wrong_types(change, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        parse_course(_with(change))


def test_parse_course_accepts_an_integer_budget() -> None:
    course = parse_course(_with(lambda d: d["notebook"][1].update(budget_s=45)))
    assert course.notebooks[1].budget_s == 45.0 and isinstance(course.notebooks[1].budget_s, float)


def test_load_course_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="path must be a path"):
        load_course(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="data must be a mapping"):
        parse_course([])  # type: ignore[arg-type]
    broken = tmp_path / "course.toml"
    broken.write_text("[[notebook]\nnumber = ", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_course(broken)


# -- measured run times -----------------------------------------------------------------------
def _results(*entries: dict) -> dict:
    return {"date": "2026-01-01 00:00 UTC", "machine": {"cpu_model": "CPU", "logical_cores": 2,
                                                        "load_average_at_start": [0.5, 0, 0]},
            "options": {"repeats": 3, "notebooks": "*", "notebooks_run": True}, "notebooks": list(entries)}


def _entry(name: str, wall: float, error: str | None = None) -> dict:
    return {"name": name, "times_s": [wall, wall + 2], "cpu_s": [wall - 1, wall + 1, wall + 5],
            "peak_mib": 512.4, "median_s": wall + 1, "error": error}


def test_measured_takes_medians_and_skips_failures() -> None:
    runs = measured(_results(_entry("00_start_here.ipynb", 3.0), _entry("01_initialization.ipynb", 9.0, "boom")))
    assert set(runs) == {"00_start_here.ipynb"}
    assert runs["00_start_here.ipynb"].wall_s == 4.0
    assert runs["00_start_here.ipynb"].cpu_s == 4.0
    assert runs["00_start_here.ipynb"].peak_mib == 512.4
    with pytest.raises(TypeError, match="results must be a mapping"):
        measured([])  # type: ignore[arg-type]


def test_tables_say_when_a_notebook_was_not_measured() -> None:
    results = _results(_entry("00_start_here.ipynb", 3.0))
    table = readme_table(COURSE, results).split("\n")
    assert len(table) == 2 + len(COURSE.notebooks)
    assert "| ~4 s |" in table[2] and "not measured yet" in table[3]
    resources = per_notebook_resources(COURSE, results)
    assert "| 00 | `00_start_here.ipynb` | 4 s | 4 CPU s | 512 MiB |" in resources
    assert "| 01 | `01_initialization.ipynb` | not measured yet | — | — |" in resources
    assert "load average 0.50" in resources and "median of 3 runs" in resources
    assert "run `make bench`" in per_notebook_resources(COURSE, {})


def test_load_results_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert load_results(tmp_path / "results.json") == {}


# -- marked blocks ----------------------------------------------------------------------------
TEXT = "\n".join(["# Title", "", begin_marker("demo"), "old 1", "old 2", end_marker("demo"), "after"])


def test_find_and_replace_block() -> None:
    assert find_block(TEXT, "demo") == (2, 5)
    replaced = replace_block(TEXT, "demo", "new")
    assert replaced.split("\n") == ["# Title", "", begin_marker("demo"), "new", end_marker("demo"), "after"]
    assert replace_block(replaced, "demo", "new") == replaced


@pytest.mark.parametrize("text", [
    "no block here",
    TEXT + "\n" + begin_marker("demo"),
    "\n".join([end_marker("demo"), begin_marker("demo")]),
])
def test_find_block_rejects_missing_or_ambiguous_blocks(text: str) -> None:
    with pytest.raises(ValueError, match="block 'demo'"):
        find_block(text, "demo")
    with pytest.raises(TypeError):
        find_block(None, "demo")  # type: ignore[arg-type]


def test_block_differences_name_the_line_to_change() -> None:
    assert block_differences(TEXT, "demo", "old 1\nold 2", "X.md") == []
    problems = block_differences(TEXT, "demo", "old 1\nnew 2\nnew 3", "X.md")
    assert problems == ["X.md line 5: expected 'new 2', found 'old 2'",
                        "X.md line 6: expected 'new 3', found '(nothing)'"]
    assert block_differences(TEXT, "demo", "old 1", "X.md") == [
        "X.md line 5: expected '(nothing: delete the line)', found 'old 2'"]
    assert block_differences("nothing", "demo", "x", "X.md")[0].startswith("X.md: block 'demo'")


def _copy_of_the_course(tmp_path: Path) -> Path:
    root = tmp_path / "course"
    notebooks = {f"notebooks/{path.name}" for path in NOTEBOOKS}  # the lesson plans measure them
    for relative in ({relative for relative, _, _ in BLOCKS} | {"notebooks/course.toml", "benchmarks/results.json"}
                     | notebooks):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, root / relative)
    return root


def test_sync_rewrites_only_the_blocks_and_check_then_passes(tmp_path: Path) -> None:
    root = _copy_of_the_course(tmp_path)
    assert check(root) == [] and sync(root) == []
    table = root / "notebooks" / "course.toml"
    table.write_text(table.read_text(encoding="utf-8").replace('title = "Norm drift"', 'title = "Norm growth"'),
                     encoding="utf-8")
    readme_before = (root / "README.md").read_text(encoding="utf-8")
    problems = check(root)
    row = next(i for i, line in enumerate(readme_before.split("\n"), 1) if line.startswith("| 02 |"))
    assert any(p.startswith(f"README.md line {row}: expected '| 02 | [Norm growth]") for p in problems), problems
    assert any(p.startswith("notebooks/00_start_here.ipynb cell ") and "Norm growth" in p for p in problems)
    assert any(p.startswith("TEACHING.md line") and "02 · Norm growth" in p for p in problems), "the lesson plans"
    assert sorted(sync(root)) == ["README.md", "TEACHING.md", "notebooks/00_start_here.ipynb"]
    assert check(root) == []
    readme_after = (root / "README.md").read_text(encoding="utf-8")
    assert readme_after.replace("[Norm growth]", "[Norm drift]") == readme_before, "only the row changed"
    nb = nbformat.read(root / "notebooks" / "00_start_here.ipynb", as_version=4)
    original = nbformat.read(ROOT / "notebooks" / "00_start_here.ipynb", as_version=4)
    changed = [i for i, (a, b) in enumerate(zip(nb.cells, original.cells, strict=True)) if a != b]
    assert len(changed) == 1 and "Norm growth" in nb.cells[changed[0]].source


def test_results_change_the_measured_columns(tmp_path: Path) -> None:
    root = _copy_of_the_course(tmp_path)
    results = json.loads((root / "benchmarks" / "results.json").read_text())
    results["notebooks"][0]["median_s"] = 99.0
    (root / "benchmarks" / "results.json").write_text(json.dumps(results))
    problems = check(root)
    assert any(p.startswith("README.md line") and "~99 s" in p for p in problems)
    assert any(p.startswith("TEACHING.md line") and "| 99 s |" in p for p in problems)
    assert sync(root) == ["README.md", "TEACHING.md"]


def test_main_check_reports_and_exits_nonzero(monkeypatch, capsys, tmp_path: Path) -> None:
    root = _copy_of_the_course(tmp_path)
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8")
    stale = re.sub(r"~(\d+) s\b", lambda m: f"~{int(m.group(1)) + 1} s", text, count=1)  # a run time off by 1 s
    assert stale != text
    readme.write_text(stale, encoding="utf-8")
    monkeypatch.setattr(course_tools, "REPO_ROOT", root)
    monkeypatch.setattr(course_tools.check, "__defaults__", (root, None, None))
    monkeypatch.setattr(course_tools.sync, "__defaults__", (root,))
    assert course_tools.main(["--check"]) == 1
    assert "README.md line" in capsys.readouterr().out
    assert course_tools.main([]) == 0
    assert course_tools.main(["--check"]) == 0
    assert "current" in capsys.readouterr().out


def test_the_grading_table_counts_each_notebooks_graded_cells() -> None:
    """Each row's counts are the notebook's exercises (code solution cells), written answers
    (markdown solution cells) and concept questions, read independently of the table."""
    course = load_course()
    rows = {line.split(" | ")[0].strip("| "): line
            for line in course_tools.grading_table(course, {}).splitlines()[2:]}
    for nb in course.notebooks[1:]:
        cells = nbformat.read(ROOT / "notebooks" / nb.file, as_version=4).cells
        solutions = [c for c in cells if c.metadata.get("nbgrader", {}).get("solution")]
        exercises = sum(c.cell_type == "code" for c in solutions)
        written = sum(c.cell_type == "markdown" for c in solutions)
        questions = sum("question-check" in c.metadata.get("tags", []) for c in cells)
        assert f"| {exercises} exercises, {exercises} points | {written} answers, {2 * written} points | " \
               f"{questions} questions, 0 points | {exercises + 2 * written} |" in rows[nb.number], rows[nb.number]
