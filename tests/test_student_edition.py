"""Build-it-yourself exercises: their cells, the student edition, and grading with nbgrader.

In the instructor notebooks (``notebooks/``) each exercise is a *solution cell* that defines
``my_<name>`` with the body between nbgrader's ``### BEGIN SOLUTION`` / ``### END SOLUTION``
markers, followed by a *check cell* ``<name> = check.<name>(my_<name>)`` that later cells
build on. ``make student`` (tools/student.py) replaces the solutions by nbgrader's stub; the
edition must still run from top to bottom, every check saying it fell back to the course's
own implementation; and nbgrader itself must release and autograde the notebooks unchanged.

Tiers: ``make test`` runs every exercise of the edition as a *mini notebook* (the setup cell, the
chapter's imports, then each stub with its check cell), so nothing else of the chapter runs again
after nbval; the edition top to bottom and nbgrader's autograde are ``slow`` (``make test-all``).
"""

from __future__ import annotations

import ast
import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers import check
from helpers.check.feedback import Exercise
from tools.notebook_tools import notebook_client
from tools.student import CODE_STUB, student_notebook, write_edition

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
#: Every chapter after the start page asks students to write code.
WITH_EXERCISES = [path for path in NOTEBOOKS if path.name[:2] != "00"]
MIN_EXERCISES = 2
CHECK_LINE = re.compile(r"^(\w+) = check\.(\w+)\(my_(\w+)\)$", re.MULTILINE)
#: The notebook nbgrader autogrades in full here (the cheapest one to execute).
AUTOGRADED = "05_gpt2_layernorm_parameters.ipynb"


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _solution_cells(nb: nbformat.NotebookNode) -> list[tuple[int, nbformat.NotebookNode]]:
    return [(i, c) for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("solution")]


def _check_cells(nb: nbformat.NotebookNode) -> list[tuple[int, nbformat.NotebookNode, str]]:
    found = []
    for i, cell in enumerate(nb.cells):
        match = CHECK_LINE.search(cell.source) if cell.cell_type == "code" else None
        if match:
            found.append((i, cell, match.group(2)))
    return found


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("student")
    write_edition(NOTEBOOKS, out, ref="student")
    return out


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=lambda p: p.name)
def test_each_chapter_has_exercises_in_nbgraders_format(path):
    nb = _read(path)
    solutions, checks = _solution_cells(nb), _check_cells(nb)
    assert len(solutions) >= MIN_EXERCISES, f"{path.name}: {len(solutions)} build-it-yourself exercises"
    assert len(checks) == len(solutions), f"{path.name}: every solution cell needs one check cell"
    for (i, solution), (j, checker, name) in zip(solutions, checks, strict=True):
        meta, grade = solution.metadata["nbgrader"], checker.metadata.get("nbgrader", {})
        assert solution.cell_type == "code" and meta.get("grade") is False and meta.get("locked") is False
        assert re.search(rf"^def my_{name}\(", solution.source, re.MULTILINE), \
            f"{path.name} cell {i} must define my_{name}, checked in cell {j}"
        lines = [line.strip() for line in solution.source.splitlines()]
        assert lines.count("### BEGIN SOLUTION") == 1 and lines.count("### END SOLUTION") == 1
        assert j > i and grade.get("grade") is True and grade.get("locked") is True \
            and grade.get("points", 0) > 0 and grade.get("solution") is False, \
            f"{path.name} cell {j}: the check cell must be a locked, graded nbgrader test cell"
        assert isinstance(getattr(check, name, None), Exercise), f"helpers.check has no exercise {name}"
        later = "\n".join(c.source for c in nb.cells[j + 1:] if c.cell_type == "code")
        assert not re.search(rf"\bmy_{name}\b", later), \
            f"{path.name}: cells after the check use my_{name}; they must use {name} (the checked one)"


def test_grade_ids_are_unique_across_the_course():
    ids = [c.metadata["nbgrader"]["grade_id"] for path in NOTEBOOKS for c in _read(path).cells
           if "nbgrader" in c.metadata]
    assert ids and len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_student_edition_has_a_stub_for_every_solution_and_nothing_else_changed(path, edition):
    teacher, student = _read(path), _read(edition / path.name)
    assert len(student.cells) == len(teacher.cells)
    for before, after in zip(teacher.cells, student.cells, strict=True):
        assert not after.get("outputs"), "the student edition carries no outputs"
        if before.metadata.get("nbgrader", {}).get("solution"):
            stripped = [line.strip() for line in after.source.splitlines()]
            assert all(line in stripped for line in CODE_STUB.splitlines()), after.source
            assert "BEGIN SOLUTION" not in after.source
            inside = before.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
            for line in filter(str.strip, inside.splitlines()):
                assert line not in after.source.splitlines(), f"solution line kept: {line!r}"
        elif before.cell_type == "markdown":
            assert after.source == before.source.replace("/blob/main/notebooks/", "/blob/student/notebooks/")
        else:
            assert after.source == before.source
    assert "/blob/student/notebooks/" + path.name in student.cells[0].source
    assert (edition / "figures").is_dir()


def test_a_bad_ref_is_refused():
    nb = _read(NOTEBOOKS[0])
    with pytest.raises(ValueError, match="ref must be a git branch or tag name"):
        student_notebook(nb, ref="../main")
    with pytest.raises(TypeError, match="nb must be an nbformat.NotebookNode"):
        student_notebook({"cells": []})


def test_a_solution_outside_a_solution_cell_is_refused():
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"))
    with pytest.raises(RuntimeError, match="non-solution cell"):
        student_notebook(nb)


def exercise_notebook(chapters: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    """The exercises of ``chapters`` as one notebook (one kernel): the first chapter's setup cell,
    ``from helpers import check``, every chapter's import-only cells, then each solution cell
    followed by its check cell.  Each cell keeps its chapter's index in ``metadata.chapter``."""
    def imports_only(cell: nbformat.NotebookNode) -> bool:
        body = ast.parse(cell.source).body if cell.cell_type == "code" else []
        return bool(body) and all(isinstance(node, (ast.Import, ast.ImportFrom)) for node in body)

    setup = [c for c in chapters[0].cells if "setup" in c.metadata.get("tags", [])]
    cells = [*setup, nbformat.v4.new_code_cell("from helpers import check")]
    cells += [c for nb in chapters for c in nb.cells if imports_only(c)]
    for index, nb in enumerate(chapters):
        for (_, solution), (_, checker, _) in zip(_solution_cells(nb), _check_cells(nb), strict=True):
            for cell in (solution, checker):
                copy = nbformat.from_dict(dict(cell))
                copy.metadata = nbformat.from_dict({**cell.metadata, "chapter": index})
                cells.append(copy)
    mini = nbformat.v4.new_notebook(metadata=chapters[0].metadata)
    mini.cells = cells
    return mini


def test_exercise_notebook_keeps_setup_imports_and_exercises_in_order():
    chapters = [_read(path) for path in WITH_EXERCISES[:2]]
    mini = exercise_notebook(chapters)
    sources = [c.source for c in mini.cells]
    assert "setup" in mini.cells[0].metadata["tags"] and sources[1] == "from helpers import check"
    expected = [c.source for nb in chapters
                for (_, solution), (_, checker, _) in zip(_solution_cells(nb), _check_cells(nb), strict=True)
                for c in (solution, checker)]
    assert sources[-len(expected):] == expected
    assert [c.metadata["chapter"] for c in mini.cells[-len(expected):]] == sorted(
        c.metadata["chapter"] for c in mini.cells[-len(expected):])


@pytest.fixture(scope="module")
def exercises_run(edition: Path) -> nbformat.NotebookNode:
    """Every exercise of the student edition, run unanswered in one kernel (errors recorded)."""
    nb = exercise_notebook([_read(edition / path.name) for path in WITH_EXERCISES])
    client = notebook_client(nb, edition / WITH_EXERCISES[0].name)
    client.allow_errors = True
    client.execute()
    return nb


def test_the_exercises_setup_and_imports_run(exercises_run):
    for cell in exercises_run.cells:
        if "chapter" not in cell.metadata:
            errors = [f"{o.ename}: {o.evalue}" for o in cell.outputs if o.output_type == "error"]
            assert not errors, f"{errors} in:\n{cell.source[:200]}"


@pytest.mark.parametrize("index", range(len(WITH_EXERCISES)), ids=[p.name for p in WITH_EXERCISES])
def test_every_exercise_of_the_student_edition_runs_unanswered(index, exercises_run):
    """Each stub runs and its check says it fell back to the course's own implementation."""
    mine = nbformat.v4.new_notebook()
    mine.cells = [c for c in exercises_run.cells if c.metadata.get("chapter") == index]
    for cell in mine.cells:
        errors = [f"{o.ename}: {o.evalue}" for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"{WITH_EXERCISES[index].name}: {errors} in:\n{cell.source[:200]}"
    checks = _check_cells(mine)
    assert len(checks) >= MIN_EXERCISES
    for _, cell, name in checks:
        printed = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert f"✗ {name}: not written yet" in printed, printed
        assert f"The cells below use the course's own {name} instead." in printed, printed


@pytest.mark.slow
@pytest.mark.parametrize("path", WITH_EXERCISES, ids=lambda p: p.name)
def test_the_student_edition_runs_top_to_bottom_with_every_exercise_unanswered(path, edition):
    nb = _read(edition / path.name)
    notebook_client(nb, edition / path.name).execute()
    for _, cell, name in _check_cells(nb):
        printed = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert f"✗ {name}: not written yet" in printed, printed
        assert f"The cells below use the course's own {name} instead." in printed, printed


def _nbgrader(course: Path, *args: str) -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("NBGRADER_EXECUTION", None)
    subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, check=True,
                   capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_nbgrader_releases_the_course_unchanged_and_grades_an_answered_and_an_unanswered_copy(
        tmp_path, edition):
    course = tmp_path / "course"
    (course / "source" / "chapters").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(
        'c = get_config()\nc.CourseDirectory.course_id = "init-norm-course"\n'
        'c.CourseDirectory.db_assignments = [dict(name="chapters")]\n'
        'c.CourseDirectory.db_students = [dict(id="answered"), dict(id="unanswered")]\n')
    for path in WITH_EXERCISES:
        shutil.copy(path, course / "source" / "chapters")
    for name in ("figures", "rise.css"):
        source = ROOT / "notebooks" / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, course / "source" / "chapters" / name)
    _nbgrader(course, "generate_assignment", "chapters", "--force")
    for path in WITH_EXERCISES:  # nbgrader's release and the student edition agree cell by cell
        released = _read(course / "release" / "chapters" / path.name)  # (badges aside)
        ours = [c.source.replace("/blob/student/notebooks/", "/blob/main/notebooks/")
                for c in _read(edition / path.name).cells]
        assert [c.source for c in released.cells] == ours, path.name

    for student, source in (("answered", ROOT / "notebooks"), ("unanswered", course / "release" / "chapters")):
        folder = course / "submitted" / student / "chapters"
        folder.mkdir(parents=True)
        shutil.copy(source / AUTOGRADED, folder)
    _nbgrader(course, "autograde", "chapters")
    _nbgrader(course, "export", "--to", "grades.csv")
    with open(course / "grades.csv", newline="") as handle:
        grades = {row["student_id"]: (float(row["score"]), float(row["max_score"])) for row in csv.DictReader(handle)}
    points = sum(c.metadata["nbgrader"].get("points", 0) for c in _read(ROOT / "notebooks" / AUTOGRADED).cells
                 if c.metadata.get("nbgrader", {}).get("grade"))
    assert points >= MIN_EXERCISES
    assert grades["answered"][0] == points, grades
    assert grades["unanswered"][0] == 0, grades
