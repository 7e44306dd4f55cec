"""Build-it-yourself exercises: their cells, the student edition, and grading with nbgrader.

In the instructor notebooks (``notebooks/``) each exercise is a *solution cell* that defines
``my_<name>`` with the body between nbgrader's ``### BEGIN SOLUTION`` / ``### END SOLUTION``
markers, followed by a locked *check cell* ``<name> = check.<name>(my_<name>)`` that later cells
build on (it falls back to the course's own function when the answer is wrong, graded or not),
and a locked, graded *grade cell* ``check.<name>.grade(my_<name>)`` that holds the points. So one
wrong answer costs one exercise, not the later ones that use it: a *partially correct student*
(an exercise answered right, the exercises it builds on wrong or blank) keeps the points of what
is right. ``make student`` (tools/student.py) is nbgrader's ``generate_assignment`` with the
course's configuration (tools/nbgrader_config.py): the solutions replaced by nbgrader's stub, the
outputs cleared, the Colab badges and the setup cell's clone pointed at the tag the edition is
published under (``python -m tools.student --publish``), not at ``main``. The edition must still
run from top to bottom, every check saying it fell back to the course's own implementation; an
instructor's nbgrader course with that configuration must release exactly the same notebooks and
autograde them.

Tiers: ``make test`` runs every exercise of the edition as a *mini notebook* (the setup cell, the
chapter's imports, then each stub with its check cell), so nothing else of the chapter runs again
after nbval; the edition top to bottom and nbgrader's autograde are ``slow`` (``make test-all``).
"""

from __future__ import annotations

import ast
import csv
import json
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
from tools.notebook_tools import (
    SETUP_TAG,
    clone_command,
    colab_badge,
    colab_prefix,
    colab_url,
    notebook_client,
    repository_url,
    setup_cell_source,
)
from tools.student import (
    CODE_STUB,
    NBGRADER_CONFIG,
    TEXT_STUB,
    check_ref,
    default_ref,
    publish,
    release_tag,
    write_edition,
)
from tools.student import main as student_main

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
#: Every chapter after the start page asks students to write code.
WITH_EXERCISES = [path for path in NOTEBOOKS if path.name[:2] != "00"]
MIN_EXERCISES = 2
CHECK_LINE = re.compile(r"^(\w+) = check\.(\w+)\(my_(\w+)\)$", re.MULTILINE)
GRADE_LINE = re.compile(r"^check\.(\w+)\.grade\(my_(\w+)\)$", re.MULTILINE)
#: The notebook nbgrader autogrades in full here (the cheapest one to execute).
AUTOGRADED = "05_gpt2_layernorm_parameters.ipynb"
#: The tag the student edition is published under by default: the release's, with -student.
REF = default_ref()
COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/[^\s)\"]*")


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _solution_cells(nb: nbformat.NotebookNode) -> list[tuple[int, nbformat.NotebookNode]]:
    """The exercises' solution cells (code; the written answers are markdown solution cells)."""
    return [(i, c) for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")]


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
    write_edition(NOTEBOOKS, out)  # what `make student` writes
    return out


def _grade_cells(nb: nbformat.NotebookNode) -> list[tuple[int, nbformat.NotebookNode, str]]:
    found = []
    for i, cell in enumerate(nb.cells):
        match = GRADE_LINE.search(cell.source) if cell.cell_type == "code" else None
        if match:
            found.append((i, cell, match.group(1)))
    return found


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=lambda p: p.name)
def test_each_chapter_has_exercises_in_nbgraders_format(path):
    nb = _read(path)
    solutions, checks, grades = _solution_cells(nb), _check_cells(nb), _grade_cells(nb)
    assert len(solutions) >= MIN_EXERCISES, f"{path.name}: {len(solutions)} build-it-yourself exercises"
    assert len(checks) == len(solutions) == len(grades), \
        f"{path.name}: every solution cell needs one check cell and one grade cell"
    for (i, solution), (j, checker, name), (k, grader, graded) in zip(solutions, checks, grades, strict=True):
        meta = solution.metadata["nbgrader"]
        read_only, grade = checker.metadata.get("nbgrader", {}), grader.metadata.get("nbgrader", {})
        assert solution.cell_type == "code" and meta.get("grade") is False and meta.get("locked") is False
        assert re.search(rf"^def my_{name}\(", solution.source, re.MULTILINE), \
            f"{path.name} cell {i} must define my_{name}, checked in cell {j}"
        lines = [line.strip() for line in solution.source.splitlines()]
        assert lines.count("### BEGIN SOLUTION") == 1 and lines.count("### END SOLUTION") == 1
        assert j > i and read_only.get("locked") is True and read_only.get("grade") is False \
            and read_only.get("solution") is False, \
            f"{path.name} cell {j}: the check cell must be locked and ungraded (it falls back, graded or not)"
        assert k == j + 1 and graded == name and grade.get("grade") is True and grade.get("locked") is True \
            and grade.get("points", 0) > 0 and grade.get("solution") is False, \
            f"{path.name} cell {k}: check.{name}.grade(my_{name}) must follow the check as a locked, graded cell"
        assert isinstance(getattr(check, name, None), Exercise), f"helpers.check has no exercise {name}"
        later = "\n".join(c.source for c in nb.cells[k + 1:] if c.cell_type == "code")
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
        if before.metadata.get("nbgrader", {}).get("solution") and before.cell_type == "markdown":
            assert after.source == TEXT_STUB, "a written answer's sample answer and rubric are replaced"
        elif before.metadata.get("nbgrader", {}).get("solution"):
            stripped = [line.strip() for line in after.source.splitlines()]
            assert all(line in stripped for line in CODE_STUB.splitlines()), after.source
            assert "BEGIN SOLUTION" not in after.source
            inside = before.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
            for line in filter(str.strip, inside.splitlines()):
                assert line not in after.source.splitlines(), f"solution line kept: {line!r}"
        elif before.cell_type == "markdown":
            assert after.source == before.source.replace(colab_prefix() + "main/", colab_prefix() + REF + "/")
        elif SETUP_TAG in before.metadata.get("tags", []):
            assert before.source == setup_cell_source() and after.source == setup_cell_source(REF)
        else:
            assert after.source == before.source
    assert (edition / "figures").is_dir() and (edition / "rise.css").is_file()


def test_the_default_ref_is_the_release_tag_with_student():
    version = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.MULTILINE)
    assert version and release_tag() == f"v{version.group(1)}" and REF == f"v{version.group(1)}-student"


def assert_points_at(folder: Path, ref: str, url: str | None = None) -> None:
    """Every notebook in ``folder``: its Colab links open itself on ``ref`` of the repository
    ``url``, and its setup cell clones that repository at ``ref``, read from the cell's syntax."""
    notebooks = sorted(folder.glob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        nb = _read(path)
        links = [link for c in nb.cells if c.cell_type == "markdown" for link in COLAB_LINK.findall(c.source)]
        assert links and set(links) == {colab_url(path.name, ref, url)}, f"{path.name}: {links}"
        setup = [c for c in nb.cells if SETUP_TAG in c.metadata.get("tags", [])]
        assert len(setup) == 1, path.name
        command, cloned = clone_command(setup[0].source)
        assert command == ["git", "clone", "-q", "--depth=1", "--branch", ref, "url", "course"], command
        assert cloned == (repository_url() if url is None else url), cloned
        assert not any("/blob/main/" in c.source for c in nb.cells), f"{path.name} links to main"


def test_the_editions_badges_and_clone_open_the_tag_it_is_published_under(edition):
    """Not main, the instructor edition (another tag: the publishing test below)."""
    assert_points_at(edition, REF)


def test_a_bad_ref_is_refused(tmp_path):
    for bad in ("../main", "a..b", "student/", 'x"; import os', ""):
        with pytest.raises(ValueError, match="ref must be a git branch or tag name"):
            check_ref(bad)
    with pytest.raises(ValueError, match="instructor edition"):
        check_ref("main")
    with pytest.raises(TypeError, match="ref must be a str"):
        check_ref(3)
    with pytest.raises(ValueError, match="ref must be a git branch or tag name"):
        write_edition(NOTEBOOKS[:1], tmp_path / "out", ref="../main")
    assert not (tmp_path / "out").exists()


def _one_cell_notebook(folder: Path, cell: nbformat.NotebookNode) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(cell)
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / "99_x.ipynb")
    return folder / "99_x.ipynb"


def test_a_solution_outside_a_solution_cell_is_refused(tmp_path):
    path = _one_cell_notebook(tmp_path, nbformat.v4.new_code_cell(
        "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"))
    with pytest.raises(RuntimeError, match="non-solution cell"):
        write_edition([path], tmp_path / "out")


def test_a_setup_cell_or_badge_that_is_not_current_is_refused(tmp_path):
    """Its clone or link would not be pointed at the tag; sync-setup makes them current."""
    stale = setup_cell_source().replace('"--depth=1", url', '"--depth=1", "--branch", "main", url')
    path = _one_cell_notebook(tmp_path / "a", nbformat.v4.new_code_cell(stale, metadata={"tags": [SETUP_TAG]}))
    with pytest.raises(RuntimeError, match="not the instructor edition's setup_cell_source.*sync-setup"):
        write_edition([path], tmp_path / "out")
    badge = colab_badge("99_x.ipynb").replace(repository_url().removeprefix("https://github.com/"), "someone/else")
    path = _one_cell_notebook(tmp_path / "b", nbformat.v4.new_markdown_cell(f"# A chapter\n{badge}"))
    with pytest.raises(RuntimeError, match=r"links to the instructor edition on main .*someone/else.*sync-setup"):
        write_edition([path], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _run_git(repo: Path, *args: str, **env: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          env={**os.environ, **env})
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.fixture
def released_course(tmp_path, monkeypatch) -> Path:
    """A git repository holding two of the course's notebooks (with their figures), its
    pyproject.toml and README, as the release tag ``v<version>`` and, after it, a commit on ``main``."""
    for name, value in (("NAME", "Course maintainers"), ("EMAIL", "maintainers@example.org")):
        monkeypatch.setenv(f"GIT_AUTHOR_{name}", value)
        monkeypatch.setenv(f"GIT_COMMITTER_{name}", value)
    repo = tmp_path / "course"
    (repo / "notebooks").mkdir(parents=True)
    for name in ("00_start_here.ipynb", AUTOGRADED, "figures", "rise.css"):
        source = ROOT / "notebooks" / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, repo / "notebooks" / name)
    shutil.copy(ROOT / "pyproject.toml", repo)
    shutil.copy(ROOT / "README.md", repo)
    _run_git(repo, "init", "-q", "-b", "main")
    _run_git(repo, "add", ".")
    _run_git(repo, "commit", "-q", "-m", "the release")
    _run_git(repo, "tag", release_tag())
    (repo / "NEWS").write_text("after the release\n")
    _run_git(repo, "add", "NEWS")
    _run_git(repo, "commit", "-q", "-m", "after the release")
    return repo


def test_publishing_commits_the_edition_of_the_release_under_its_tag(released_course, tmp_path):
    repo, release = released_course, release_tag()
    status, head = _run_git(repo, "status", "--porcelain"), _run_git(repo, "rev-parse", "HEAD")
    commit = publish(repo)
    assert _run_git(repo, "rev-parse", f"{REF}^{{commit}}").strip() == commit
    released = _run_git(repo, "rev-parse", f"{release}^{{commit}}").strip()
    assert _run_git(repo, "rev-parse", f"{commit}^").strip() == released, "its parent is the release"
    changed = _run_git(repo, "diff", "--name-only", release, commit).split()
    assert changed == ["README.md", "notebooks/00_start_here.ipynb", f"notebooks/{AUTOGRADED}"], changed
    readme = _run_git(repo, "show", f"{REF}:README.md")
    assert colab_url(AUTOGRADED, REF) in readme and colab_prefix() + "main/" not in readme, \
        "README's Colab badges open the student edition too"
    assert _run_git(repo, "status", "--porcelain") == status and _run_git(repo, "rev-parse", "HEAD") == head, \
        "publishing changes neither the working tree, the index nor the branch"
    # A student's Colab setup cell clones the tag: run its git command, the repository address
    # mapped onto this repository, and the clone holds the student edition.
    published = nbformat.reads(_run_git(repo, "show", f"{REF}:notebooks/{AUTOGRADED}"), as_version=4)
    setup = next(c for c in published.cells if SETUP_TAG in c.metadata.get("tags", []))
    command, url = clone_command(setup.source)
    cloned = tmp_path / "colab" / "course"
    command = [{"url": url, "course": str(cloned)}.get(word, word) for word in command]
    subprocess.run(command, check=True, capture_output=True, env={
        **os.environ, "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"url.{repo.as_uri()}.insteadOf",
        "GIT_CONFIG_VALUE_0": url})
    assert_points_at(cloned / "notebooks", REF)
    assert (cloned / "notebooks" / "figures").is_dir() and not (cloned / "NEWS").exists(), "the release's tree"
    student = _read(cloned / "notebooks" / AUTOGRADED)
    assert not any(c.get("outputs") for c in student.cells)
    assert all("BEGIN SOLUTION" not in c.source for c in student.cells)
    assert student == published and len(_solution_cells(student)) >= MIN_EXERCISES
    assert sum(CODE_STUB.splitlines()[-1] in c.source for c in student.cells) == len(_solution_cells(student))
    with pytest.raises(RuntimeError, match="exists already"):
        publish(repo)
    with pytest.raises(RuntimeError, match="no tag 'v0.0.0-missing'"):
        publish(repo, release="v0.0.0-missing")
    assert publish(repo, ref="spring/student") != commit
    assert_points_at_tree(repo, "spring/student")


def test_the_command_line_names_what_is_wrong(capsys):
    assert student_main(["--publish", "--release", "v0.0.0-never-tagged"]) == 1
    assert "error: release: no tag 'v0.0.0-never-tagged'" in capsys.readouterr().err
    assert student_main(["--ref", "main", "notebooks/00_start_here.ipynb"]) == 1
    assert "that branch holds the instructor edition" in capsys.readouterr().err
    for wrong in (["--release", "v1", "notebooks/00_start_here.ipynb"], [], ["--publish", "notebooks/x.ipynb"]):
        with pytest.raises(SystemExit):
            student_main(wrong)


def _make_dry_run(*args: str) -> list[str]:
    done = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if "-m tools.student" in line]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_student_uses_the_default_tag_and_make_student_publish_the_publisher():
    assert [line.split() for line in _make_dry_run("student")] == [
        [".venv/bin/python", "-m", "tools.student", "--output-dir", "build/student", "notebooks/*.ipynb"]]
    assert "--ref spring/student " in _make_dry_run("student", "STUDENT_REF=spring/student")[0]
    assert [line.split() for line in _make_dry_run("student-publish", "RELEASE_TAG=v2.0.0")] == [
        [".venv/bin/python", "-m", "tools.student", "--publish", "--release", "v2.0.0"]]


def assert_points_at_tree(repo: Path, ref: str) -> None:
    """The notebooks of ``ref`` in ``repo`` point at ``ref`` (read with git show)."""
    names = _run_git(repo, "ls-tree", "--name-only", f"{ref}:notebooks").split()
    folder = repo.parent / "shown" / ref.replace("/", "_")
    folder.mkdir(parents=True)
    for name in (n for n in names if n.endswith(".ipynb")):
        (folder / name).write_text(_run_git(repo, "show", f"{ref}:notebooks/{name}"), encoding="utf-8")
    assert_points_at(folder, ref)


def exercise_notebook(chapters: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    """The exercises of ``chapters`` as one notebook (one kernel): the first chapter's setup cell,
    ``from helpers import check``, every chapter's import-only cells, then each solution cell
    followed by its check and grade cells.  Each cell keeps its chapter's index in ``metadata.chapter``."""
    def imports_only(cell: nbformat.NotebookNode) -> bool:
        body = ast.parse(cell.source).body if cell.cell_type == "code" else []
        return bool(body) and all(isinstance(node, (ast.Import, ast.ImportFrom)) for node in body)

    setup = [c for c in chapters[0].cells if "setup" in c.metadata.get("tags", [])]
    cells = [*setup, nbformat.v4.new_code_cell("from helpers import check")]
    cells += [c for nb in chapters for c in nb.cells if imports_only(c)]
    for index, nb in enumerate(chapters):
        for exercise in _exercises(nb):
            cells += [_tagged(cell, chapter=index) for cell in exercise]
    mini = nbformat.v4.new_notebook(metadata=chapters[0].metadata)
    mini.cells = cells
    return mini


def _exercises(nb: nbformat.NotebookNode) -> list[tuple[nbformat.NotebookNode, ...]]:
    """Each exercise's (solution, check, grade) cells, in order."""
    return [(solution, checker, grader) for (_, solution), (_, checker, _), (_, grader, _)
            in zip(_solution_cells(nb), _check_cells(nb), _grade_cells(nb), strict=True)]


def _tagged(cell: nbformat.NotebookNode, **metadata: object) -> nbformat.NotebookNode:
    copy = nbformat.from_dict(dict(cell))
    copy.metadata = nbformat.from_dict({**cell.metadata, **metadata})
    return copy


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


def _exercise_name(solution: nbformat.NotebookNode) -> str:
    match = re.search(r"^def my_(\w+)\(", solution.source, re.MULTILINE)
    assert match, solution.source
    return match.group(1)


def dependencies(nb: nbformat.NotebookNode) -> dict[str, list[str]]:
    """Exercise -> the earlier exercises of its chapter whose checked function its solution calls."""
    found: dict[str, list[str]] = {}
    for _, solution in _solution_cells(nb):
        body = solution.source.split("### BEGIN SOLUTION")[1]
        found[_exercise_name(solution)] = [name for name in found if re.search(rf"(?<!my_)\b{name}\b", body)]
    return found


def answered(solution: nbformat.NotebookNode, how: str) -> nbformat.NotebookNode:
    """The solution cell answered ``right`` (as it is), ``blank`` (nbgrader's stub) or ``wrong``
    (returns None)."""
    if how == "right":
        return solution
    head, rest = solution.source.split("### BEGIN SOLUTION")
    _, tail = rest.split("### END SOLUTION")
    indent = head[head.rfind("\n") + 1:]
    body = CODE_STUB if how == "blank" else "return None"
    return _tagged(nbformat.from_dict({**solution, "source": head + body.replace("\n", "\n" + indent) + tail}))


#: (chapter, exercise, the exercises it builds on) for every exercise that builds on another.
DEPENDENT = [(path, name, deps) for path in WITH_EXERCISES for name, deps in dependencies(_read(path)).items() if deps]
PARTIAL_STUDENTS = [(path, name, deps, how) for path, name, deps in DEPENDENT for how in ("wrong", "blank")]


def partial_student(nb: nbformat.NotebookNode, name: str, wrong: list[str], how: str) -> list[nbformat.NotebookNode]:
    """The exercise cells of a chapter up to ``name``: ``wrong`` answered ``how``, the rest right."""
    cells = []
    for solution, checker, grader in _exercises(nb):
        exercise = _exercise_name(solution)
        cells += [answered(solution, how if exercise in wrong else "right"), checker, grader]
        if exercise == name:
            return cells
    raise AssertionError(f"no exercise {name}")


def test_the_course_has_exercises_that_build_on_others():
    """Otherwise the partially correct students below would test nothing."""
    assert {(path.name, name) for path, name, _ in DEPENDENT} >= {
        ("01_initialization.ipynb", "kaiming_reinit"), ("04_attention_scaling.ipynb", "softmax_jacobian")}


def test_answered_writes_a_stub_or_a_wrong_body_in_the_solutions_place():
    _, solution = _solution_cells(_read(WITH_EXERCISES[0]))[0]
    blank, wrong = answered(solution, "blank").source, answered(solution, "wrong").source
    assert "raise NotImplementedError()" in blank and "BEGIN SOLUTION" not in blank
    assert "    return None" in wrong and "BEGIN SOLUTION" not in wrong
    assert answered(solution, "right") is solution


@pytest.fixture(scope="module")
def partial_students_run() -> nbformat.NotebookNode:
    """Every partially correct student (an exercise right, what it builds on wrong or blank), graded
    as nbgrader grades (NBGRADER_EXECUTION=autograde), one after the other in one kernel."""
    chapters = [_read(path) for path in WITH_EXERCISES]
    cells = [c for c in exercise_notebook(chapters).cells if "chapter" not in c.metadata]  # setup, imports
    for index, (path, name, deps, how) in enumerate(PARTIAL_STUDENTS):
        cells += [_tagged(c, student=index) for c in partial_student(_read(path), name, deps, how)]
    nb = nbformat.v4.new_notebook(metadata=chapters[0].metadata)
    nb.cells = cells
    client = notebook_client(nb, WITH_EXERCISES[0])
    client.allow_errors = True
    client.execute(env={**os.environ, "NBGRADER_EXECUTION": "autograde"})
    return nb


@pytest.mark.parametrize("index", range(len(PARTIAL_STUDENTS)),
                         ids=[f"{p.name[:2]}-{n}-{h}" for p, n, _, h in PARTIAL_STUDENTS])
def test_a_partially_correct_student_loses_only_the_points_of_the_wrong_answers(index, partial_students_run):
    """Measured before the grade cells existed: a wrong kaiming_normal cost kaiming_reinit its
    points too (NameError); now only the wrong answer's grade cell fails."""
    path, name, deps, how = PARTIAL_STUDENTS[index]
    mine = [c for c in partial_students_run.cells if c.metadata.get("student") == index]
    for cell in mine:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        grade = GRADE_LINE.search(cell.source)
        if grade and grade.group(1) in deps:
            assert [e.ename for e in errors] == ["AssertionError"], \
                f"{path.name}: {grade.group(1)} must lose its points"
        else:
            assert not errors, f"{path.name}, {name} right, {deps} {how}: " \
                f"{[f'{e.ename}: {e.evalue}' for e in errors]} in:\n{cell.source[:200]}"
    printed = {match.group(2): "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
               for cell in mine if (match := CHECK_LINE.search(cell.source))}
    assert printed[name].startswith(f"✓ {name}:"), printed[name]
    for dep in deps:
        assert f"The cells below use the course's own {dep} instead." in printed[dep], printed[dep]


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
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.mark.slow
def test_nbgrader_releases_the_student_edition_and_grades_answered_unanswered_and_partial_copies(tmp_path):
    """An instructor's nbgrader course that loads the course's configuration (TEACHING.md). Its
    source notebooks are one snapshot of the course, which everything below reads."""
    course = tmp_path / "course"
    chapters = course / "source" / "chapters"
    chapters.mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(
        f'c = get_config()\nload_subconfig({str(NBGRADER_CONFIG)!r})\n'
        'c.CourseDirectory.course_id = "init-norm-course"\n'
        'c.CourseDirectory.db_assignments = [dict(name="chapters")]\n'
        'c.CourseDirectory.db_students = [dict(id="answered"), dict(id="unanswered"), dict(id="partial")]\n'
        # nbgrader's defaults (30 s per cell, 4 s for a cell's first output) fail slow cells on a busy machine
        'c.Execute.timeout = 600\nc.Execute.iopub_timeout = 120\n')
    for path in WITH_EXERCISES:
        shutil.copy(path, chapters)
    for name in ("figures", "rise.css"):
        source = ROOT / "notebooks" / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, chapters / name)
    edition = tmp_path / "edition"
    write_edition(sorted(chapters.glob("*.ipynb")), edition)  # what `make student` writes from them
    _nbgrader(course, "generate_assignment", "chapters", "--force")
    for path in WITH_EXERCISES:  # nbgrader's release is the student edition, byte for byte
        released, ours = course / "release" / "chapters" / path.name, edition / path.name
        assert json.loads(released.read_bytes()) == json.loads(ours.read_bytes()), path.name
        assert released.read_bytes() == ours.read_bytes(), path.name
    assert_points_at(course / "release" / "chapters", REF)

    for student, source in (("answered", chapters), ("unanswered", course / "release" / "chapters")):
        folder = course / "submitted" / student / "chapters"
        folder.mkdir(parents=True)
        shutil.copy(source / AUTOGRADED, folder)
    # The partially correct student: in every chapter with exercises that build on others, what
    # they build on answered wrong, everything else right.
    folder, lost = course / "submitted" / "partial" / "chapters", 0.0
    folder.mkdir(parents=True)
    partial = sorted({path.name for path, _, _ in DEPENDENT})
    for name in partial:
        nb = _read(chapters / name)
        wrong = {dep for p, _, deps in DEPENDENT if p.name == name for dep in deps}
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution") \
                    and _exercise_name(cell) in wrong:
                nb.cells[index] = answered(cell, "wrong")
        lost += sum(c.metadata["nbgrader"]["points"] for _, c, exercise in _grade_cells(nb) if exercise in wrong)
        nbformat.write(nb, folder / name)
    _nbgrader(course, "autograde", "chapters")
    _nbgrader(course, "export", "--to", "grades.csv")
    with open(course / "grades.csv", newline="") as handle:
        grades = {row["student_id"]: (float(row["score"]), float(row["max_score"])) for row in csv.DictReader(handle)}

    def points(path: Path, kind: str = "code") -> float:
        """The points of the cells of ``kind`` nbgrader grades (code: autograded; markdown: by hand)."""
        return sum(c.metadata["nbgrader"].get("points", 0) for c in _read(path).cells
                   if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == kind)

    assert points(chapters / AUTOGRADED) >= MIN_EXERCISES and points(chapters / AUTOGRADED, "markdown") > 0
    # The written answers wait for an instructor: no points until graded by hand, but counted in the maximum.
    assert grades["answered"][0] == points(chapters / AUTOGRADED), grades
    assert grades["answered"][1] == sum(points(path) + points(path, "markdown") for path in chapters.glob("*.ipynb"))
    assert grades["unanswered"][0] == 0, grades
    assert lost > 0 and grades["partial"][0] == sum(points(chapters / name) for name in partial) - lost, grades
