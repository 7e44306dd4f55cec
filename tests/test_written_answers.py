"""Written answers to predict-first prompts: the part of the grade that measures understanding.

Notebooks 01–07 each ask for at least :data:`MIN_WRITTEN` written answers.  A written answer is
a markdown cell right after a "*Predict first:*" prompt on the core path; the prompt ends with
:data:`INSTRUCTION`.  The cell is an nbgrader "manually graded answer" (``grade`` and
``solution`` true, unlocked, ``grade_id`` ``written_<NN>_<topic>``) tagged ``written-answer``;
in the instructor edition it holds a sample answer (*Prediction*, *Why*, *After running*) and
its rubric, ``**Rubric (N points).**`` followed by one ``1 point:`` criterion per point.  The
student edition replaces it with ``tools.student.TEXT_STUB`` (tests/test_student_edition.py),
and TEACHING.md, "Grading", says how the points combine with the autograded exercises.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from tools.plans import WRITTEN_TAG, measure

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted(p for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb") if not p.name.startswith("00_"))
MIN_WRITTEN = 2
INSTRUCTION = ("✍️ **Written answer** (2 points, graded by hand): before you run the next cell, write your "
               "prediction and its reason in the cell below; after running, add one sentence on what you saw "
               "and what, if anything, your reasoning missed.")
PARTS = ("**Sample answer**", "*Prediction:*", "*Why:*", "*After running:*")
RUBRIC = re.compile(r"^\*\*Rubric \((\d+) points?\)\.\*\*", re.MULTILINE)


def written_cells(nb: nbformat.NotebookNode) -> list[int]:
    """Indices of the cells tagged as written answers."""
    return [i for i, cell in enumerate(nb.cells) if WRITTEN_TAG in cell.metadata.get("tags", [])]


def problems(nb: nbformat.NotebookNode, number: str) -> list[str]:
    """What is wrong with the written answers of notebook ``number`` (e.g. ``"01"``); [] if nothing."""
    found = []
    for index, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        tagged = WRITTEN_TAG in cell.metadata.get("tags", [])
        if cell.cell_type == "markdown" and meta.get("solution") and not tagged:
            found.append(f"cell {index}: a markdown answer cell must be tagged {WRITTEN_TAG!r}")
        if not tagged:
            continue
        where = f"cell {index}"
        if cell.cell_type != "markdown":
            found.append(f"{where}: a written answer is a markdown cell")
            continue
        if not (meta.get("grade") is True and meta.get("solution") is True and meta.get("locked") is False):
            found.append(f"{where}: nbgrader metadata must say grade, solution, unlocked (graded by hand)")
        if not re.fullmatch(rf"written_{number}_[a-z0-9_]+", str(meta.get("grade_id", ""))):
            found.append(f"{where}: grade_id must be written_{number}_<topic>, got {meta.get('grade_id')!r}")
        found += [f"{where}: the sample answer needs {part}" for part in PARTS if part not in cell.source]
        if not cell.source.startswith(PARTS[0]):
            found.append(f"{where}: the cell starts with {PARTS[0]}")
        rubric = RUBRIC.search(cell.source)
        points = meta.get("points")
        if rubric is None:
            found.append(f"{where}: a rubric paragraph starts with **Rubric (N points).**")
        elif not (int(rubric.group(1)) == points == cell.source[rubric.end():].count("1 point:")):
            found.append(f"{where}: the rubric's points, its '1 point:' criteria and nbgrader's points "
                         f"({points}) must agree")
        prompt = nb.cells[index - 1] if index else None
        if prompt is None or prompt.cell_type != "markdown" or "*Predict first:*" not in prompt.source \
                or INSTRUCTION not in " ".join(prompt.source.split()):
            found.append(f"{where}: the cell before must be a '*Predict first:*' prompt ending with the instruction")
    return found


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_each_chapter_asks_for_written_answers_graded_by_a_rubric(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    assert len(written_cells(nb)) >= MIN_WRITTEN, f"{path.name}: {len(written_cells(nb))} written answers"
    found = problems(nb, path.name[:2])
    assert not found, "\n".join(found)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_written_answers_are_on_the_core_path_and_in_the_plans(path: Path) -> None:
    """Each is done in class: in a core section, outside the parts assigned as homework."""
    nb = nbformat.read(path, as_version=4)
    timing = measure(nb, path.name)
    assert sum(section.written for section in timing.core) == len(written_cells(nb))


def _notebook(prompt: str, answer: str, **meta: object) -> nbformat.NotebookNode:
    nbgrader = {"grade": True, "solution": True, "locked": False, "points": 2, "grade_id": "written_01_zero",
                "schema_version": 3, **meta}
    cells = [nbformat.v4.new_markdown_cell(prompt),
             nbformat.v4.new_markdown_cell(answer, metadata={"nbgrader": nbgrader, "tags": [WRITTEN_TAG]})]
    return nbformat.v4.new_notebook(cells=cells)


PROMPT = "*Predict first:* which of them learns?\n\n" + INSTRUCTION
ANSWER = ("**Sample answer** (instructor edition). *Prediction:* only Kaiming. *Why:* zero weights give zero "
          "gradients. *After running:* as predicted.\n\n**Rubric (2 points).** 1 point: the zero gradient. "
          "1 point: names the loss staying at ln 10.")


def test_a_well_formed_written_answer_is_accepted() -> None:
    assert problems(_notebook(PROMPT, ANSWER), "01") == []


@pytest.mark.parametrize(("prompt", "answer", "meta", "message"), [
    (PROMPT, ANSWER, {"locked": True}, "graded by hand"),
    (PROMPT, ANSWER, {"grade": False}, "graded by hand"),
    (PROMPT, ANSWER, {"grade_id": "written_02_zero"}, "grade_id"),
    (PROMPT, ANSWER, {"points": 3}, "must agree"),
    (PROMPT, ANSWER.replace("1 point: names", "names"), {}, "must agree"),
    (PROMPT, ANSWER.replace("**Rubric (2 points).**", "Rubric:"), {}, "a rubric paragraph"),
    (PROMPT, ANSWER.replace("*Why:*", "because"), {}, "needs *Why:*"),
    (PROMPT, "Intro. " + ANSWER, {}, "starts with"),
    ("*Predict first:* which of them learns?", ANSWER, {}, "ending with the instruction"),
    ("Which of them learns?\n\n" + INSTRUCTION, ANSWER, {}, "ending with the instruction"),
])
def test_a_malformed_written_answer_is_named(prompt: str, answer: str, meta: dict, message: str) -> None:
    found = problems(_notebook(prompt, answer, **meta), "01")
    assert any(message in problem for problem in found), found


def test_an_untagged_answer_cell_is_named() -> None:
    nb = _notebook(PROMPT, ANSWER)
    nb.cells[1].metadata["tags"] = []
    assert problems(nb, "01") == [f"cell 1: a markdown answer cell must be tagged {WRITTEN_TAG!r}"]


def test_a_written_answer_in_homework_or_further_reading_is_not_on_the_core_path() -> None:
    def answer() -> nbformat.NotebookNode:
        return nbformat.v4.new_markdown_cell(ANSWER, metadata={"tags": [WRITTEN_TAG]})

    homework = nbformat.v4.new_markdown_cell("### ✍️ Build it yourself", metadata={"tags": ["homework"]})
    further = nbformat.v4.new_markdown_cell("## 2. More · Đọc thêm (further reading)",
                                            metadata={"tags": ["further-reading"]})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("## 1. Core"), homework, answer(),
                                         further, answer()])
    timing = measure(nb)
    assert sum(s.written for s in timing.core) == 0 and len(written_cells(nb)) == 2
