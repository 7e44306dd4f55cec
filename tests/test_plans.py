"""Lesson plans measured from the notebooks (tools/plans.py): the core path and further reading
of every notebook, the time model, the plans TEACHING.md gives, and the **Time.** lines and
course.toml's minutes that must agree with them."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import nbformat
import pytest

from tools.course import check, load_course, sync, time_differences, timings
from tools.plans import (
    CODE_CELL_MIN,
    EXERCISE_MIN,
    FURTHER_LABEL,
    FURTHER_TAG,
    HOMEWORK_TAG,
    LAB_MIN,
    LAB_OVERHEAD_MIN,
    OPEN_ENDED_MIN,
    PLANS,
    QUESTION_MIN,
    READING_WPM,
    WRITTEN_MIN,
    WRITTEN_TAG,
    PlanDoesNotFit,
    further_code_used,
    further_references,
    measure,
    measure_file,
    plans,
    render_plans,
    section_numbers,
    time_sentence,
)

ROOT = Path(__file__).resolve().parent.parent
COURSE = load_course()
MEASURED = [nb for nb in COURSE.notebooks if nb.number != "00"]
SKIPPED = "The core path does not depend on this section."


def _nb(*cells: tuple[str, str, list[str]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for kind, source, tags in cells:
        cell = nbformat.v4.new_markdown_cell(source) if kind == "md" else nbformat.v4.new_code_cell(source)
        if tags:
            cell.metadata["tags"] = list(tags)
        nb.cells.append(cell)
    return nb


# -- the repository's notebooks ---------------------------------------------------------------
@pytest.mark.parametrize("nb", MEASURED, ids=lambda nb: nb.number)
def test_every_notebook_has_a_core_path_and_further_reading(nb) -> None:
    timing = measure_file(ROOT / "notebooks" / nb.file)
    assert [s.label for s in timing.core if s.label.startswith("§")], f"{nb.file}: no numbered core section"
    assert timing.further, f"{nb.file}: mark at least one section further reading (CONTRIBUTING.md)"
    available = LAB_MIN - LAB_OVERHEAD_MIN
    assert 40 <= timing.core_min <= available, (
        f"{nb.file}: the core path takes {timing.core_min} min; it must fit a lab ({available} min) and "
        "keep the chapter's argument (at least 40)")


@pytest.mark.parametrize("nb", MEASURED, ids=lambda nb: nb.number)
def test_further_reading_headings_say_so_and_what_is_missed(nb) -> None:
    notebook = nbformat.read(ROOT / "notebooks" / nb.file, as_version=4)
    marked = [c for c in notebook.cells if FURTHER_TAG in c.metadata.get("tags", [])]
    assert marked
    for cell in marked:
        heading, _, rest = cell.source.partition("\n")
        assert heading.startswith("## ") and heading.endswith(FURTHER_LABEL), heading
        sentence = rest.strip().split("\n\n")[0]
        assert sentence.startswith("*Skipping it, you miss ") and sentence.endswith(f"{SKIPPED}*"), (
            f"{nb.file}: {heading!r} needs, under it, one sentence on what a reader who skips it misses "
            f"and {SKIPPED!r}")


@pytest.mark.parametrize("nb", MEASURED, ids=lambda nb: nb.number)
def test_the_core_path_never_sends_the_reader_to_skipped_sections(nb) -> None:
    assert further_references(measure_file(ROOT / "notebooks" / nb.file)) == []


def test_the_plans_fit_and_are_current() -> None:
    measured = timings(COURSE)
    text = render_plans(COURSE, measured)
    every = plans(COURSE)
    assert every[:2] == PLANS
    assert [p.name for p in every] == ["One 90-minute lab", "Two 90-minute labs", "The full course"]
    assert [lab.notebooks for lab in every[1].labs] == [("01",), ("03",)]
    assert sorted(n for lab in every[2].labs for n in lab.notebooks) == sorted(measured)
    for plan in every:
        for lab in plan.labs:
            core = sum(measured[n].core_min for n in lab.notebooks)
            assert core <= LAB_MIN - LAB_OVERHEAD_MIN
            assert f"- **{lab.name}** ({core} of {LAB_MIN - LAB_OVERHEAD_MIN} min):" in text
    assert time_differences() == []
    assert check() == []


@pytest.mark.parametrize("nb", MEASURED, ids=lambda nb: nb.number)
def test_header_and_table_state_the_measured_minutes(nb) -> None:
    timing = measure_file(ROOT / "notebooks" / nb.file)
    header = nbformat.read(ROOT / "notebooks" / nb.file, as_version=4).cells[0].source
    assert time_sentence(timing) in header
    assert nb.minutes == timing.total_min == timing.core_min + timing.homework_min + timing.further_min
    assert nb.class_slot == f"core path {timing.core_min} min (of a 90-minute lab)"


# -- the time model ---------------------------------------------------------------------------
BASE = (("md", "# 99 · A chapter\n\nintro words here", []),
        ("md", "## 1. Core\n\n" + "word " * 260, []),
        ("code", "x = 1", ["exercise"]),
        ("code", "q = 2", ["question"]),
        ("md", "### ✍️ Build it yourself: extra", ["homework"]),
        ("code", "y = x", ["exercise"]),
        ("md", "**An open-ended experiment.** " + "w " * 128, ["open-ended"]),
        ("md", "## 2. Extra · " + FURTHER_LABEL + "\n\n" + "word " * 130, [FURTHER_TAG]),
        ("code", "z = 3", []),
        ("md", "## Glossary · Thuật ngữ\n\n" + "term " * 1000 + "\n## References\n\nmany refs", []))


def test_measure_counts_words_cells_and_exercises() -> None:
    timing = measure(_nb(*BASE))
    intro, core, further, glossary, references = timing.sections
    assert (intro.label, core.label, further.label) == ("the introduction", "§1", "§2")
    assert not glossary.timed and not references.timed and glossary.class_min == 0
    assert core.words == 263 and core.exercises == 1 and core.questions == 1 and core.code_cells == 2
    assert core.class_min == pytest.approx(263 / READING_WPM + 2 * CODE_CELL_MIN + EXERCISE_MIN + QUESTION_MIN)
    assert core.homework_exercises == 1 and core.open_ended == 1
    assert core.homework_min == pytest.approx((6 + 131) / READING_WPM + CODE_CELL_MIN + EXERCISE_MIN
                                              + OPEN_ENDED_MIN)
    assert further.further and further.class_min == pytest.approx(138 / READING_WPM + CODE_CELL_MIN)
    assert timing.total_min == timing.core_min + timing.homework_min + timing.further_min


def test_a_homework_exercise_ends_with_its_grade_cell_and_the_section_goes_on_in_class() -> None:
    cells = [("md", "## 1. Core", []), ("md", "### ✍️ Build it yourself: x", [HOMEWORK_TAG]),
             ("code", "def my_x(): ...", ["exercise"]), ("code", "x = check.x(my_x)", []),
             ("code", "check.x.grade(my_x)", []), ("md", "word " * 130, []), ("code", "plot(x)", [])]
    core = measure(_nb(*cells)).sections[0]
    assert (core.homework_exercises, core.homework_code_cells, core.code_cells) == (1, 3, 1)
    assert core.words == 3 + 130 and core.homework_words == 6
    two = cells[:5] + [("code", "def my_y(): ...", ["exercise"]), ("code", "check.y.grade(my_y)", [])] + cells[5:]
    both = measure(_nb(*two)).sections[0]  # a part with two exercises runs to the second's grade cell
    assert (both.homework_exercises, both.homework_code_cells, both.code_cells, both.words) == (2, 5, 1, 133)
    without_grade = measure(_nb(*[cell for cell in cells if "grade(" not in cell[1]])).sections[0]
    assert without_grade.code_cells == 0 and without_grade.homework_words == 6 + 130


def test_a_written_answer_costs_its_minutes_and_its_sample_answer_is_not_read() -> None:
    base = measure(_nb(*BASE)).sections[1]
    cells = list(BASE)
    cells.insert(2, ("md", "**Sample answer** " + "word " * 500, [WRITTEN_TAG]))
    cells.insert(6, ("md", "**Sample answer** in a homework part", [WRITTEN_TAG]))
    core = measure(_nb(*cells)).sections[1]
    assert (core.written, core.homework_written, core.words, core.homework_words) == \
        (1, 1, base.words, base.homework_words)
    assert core.class_min == pytest.approx(base.class_min + WRITTEN_MIN)
    assert core.homework_min == pytest.approx(base.homework_min + WRITTEN_MIN)


def test_a_notebook_edit_changes_the_measured_minutes() -> None:
    before = measure(_nb(*BASE))
    more_words = list(BASE)
    more_words[1] = ("md", BASE[1][1] + " more" * READING_WPM, [])
    assert measure(_nb(*more_words)).core_min == before.core_min + 1
    more_exercises = [*BASE[:3], ("code", "w = 1", ["exercise"]), *BASE[3:]]
    assert measure(_nb(*more_exercises)).core_min == pytest.approx(before.core_min + EXERCISE_MIN, abs=1)
    as_homework = list(BASE)
    as_homework[1] = ("md", BASE[1][1], ["homework"])
    moved = measure(_nb(*as_homework))
    assert moved.core_min < 2 and moved.homework_min > before.homework_min + EXERCISE_MIN
    as_further = list(BASE)
    as_further[1] = ("md", BASE[1][1].replace("## 1. Core", f"## 1. Core · {FURTHER_LABEL}"), [FURTHER_TAG])
    assert measure(_nb(*as_further)).further_min > before.further_min + EXERCISE_MIN


def test_measure_rejects_misplaced_or_unlabelled_further_reading() -> None:
    unlabelled = list(BASE)
    unlabelled[7] = ("md", "## 2. Extra\n\nwords", [FURTHER_TAG])
    with pytest.raises(ValueError, match="must say 'Đọc thêm"):
        measure(_nb(*unlabelled))
    misplaced = list(BASE)
    misplaced[8] = ("code", "z = 3", [FURTHER_TAG])
    with pytest.raises(ValueError, match="belongs on a cell that starts with a '## ' heading"):
        measure(_nb(*misplaced))


def test_section_numbers_and_references_to_skipped_sections() -> None:
    assert section_numbers("see section 4 and sections 2–3, or §6") == {2, 3, 4, 6}
    assert section_numbers("section 4 (further reading) and section 6, further reading") == set()
    assert section_numbers("notebook 05, section 5, and notebook 03's section 2") == set()
    cells = list(BASE)
    cells[1] = ("md", BASE[1][1] + " as section 2 shows", [])
    assert further_references(measure(_nb(*cells))) == [
        "notebook §1: the core path refers to section 2, which is further reading: say so (\"section 2 "
        "(further reading)\"), reword, or make §2 core"]
    cells[1] = ("md", BASE[1][1] + " as section 2 (further reading) shows", [])
    assert further_references(measure(_nb(*cells))) == []


def test_further_code_used_names_the_sections_whose_cells_must_run() -> None:
    nb = _nb(("md", "## 1. Core", []), ("code", "import math\na = 1", []),
             ("md", f"## 2. Extra · {FURTHER_LABEL}", [FURTHER_TAG]),
             ("code", "b = a + 1\ndef f(n):\n    return n\nshadow = 2", []),
             ("md", "## 3. Core again", []),
             ("code", "shadow = 5\nprint(b, f(3), [n for n in range(2)], shadow, math.pi)", []))
    assert further_code_used(nb) == {"§2": ("§3",)}
    nb.cells[-1].source = "print(a, shadow)"  # shadow: bound in §2 only, now that §3 does not bind it
    assert further_code_used(nb) == {"§2": ("§3",)}
    nb.cells[-1].source = "print(a)"
    assert further_code_used(nb) == {}


def test_a_plan_that_does_not_fit_fails_loudly() -> None:
    measured = timings(COURSE)
    longer = copy.copy(measured)
    notebook = nbformat.read(ROOT / "notebooks" / COURSE.notebooks[1].file, as_version=4)
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        cell.metadata["tags"] = [t for t in tags if t not in ("homework", "open-ended")]
    longer["01"] = measure(notebook, "01")
    assert longer["01"].core_min > LAB_MIN - LAB_OVERHEAD_MIN
    with pytest.raises(PlanDoesNotFit, match=r"plan 'One 90-minute lab', Lab: the core paths of 01 take \d+ min"):
        render_plans(COURSE, longer)


# -- a copy of the course: a stale plan or time fails, sync repairs it ------------------------
def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "course"
    for relative in ("README.md", "TEACHING.md", "benchmarks/results.json"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, root / relative)
    shutil.copytree(ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns("figures", "*.css"))
    return root


def test_a_stale_plan_or_time_fails_and_sync_repairs_it(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    assert check(root) == []
    path = root / "notebooks" / COURSE.notebooks[4].file
    nb = nbformat.read(path, as_version=4)
    first_core = next(i for i, c in enumerate(nb.cells) if c.source.startswith("## 1."))
    nb.cells.insert(first_core + 1, nbformat.v4.new_markdown_cell("added " * (5 * READING_WPM)))
    nbformat.write(nb, path)
    problems = check(root)
    assert any(p.startswith(f"notebooks/{path.name} cell 0: the **Time.** line must start") for p in problems)
    assert any(p.startswith("notebooks/course.toml: notebook 04 has minutes = ") for p in problems)
    assert any(p.startswith("TEACHING.md line") for p in problems), problems
    changed = sync(root)
    assert {"TEACHING.md", "notebooks/course.toml", f"notebooks/{path.name}"} <= set(changed)
    assert check(root) == []
    course = load_course(root / "notebooks" / "course.toml")
    assert course.notebooks[4].minutes == COURSE.notebooks[4].minutes + 5
