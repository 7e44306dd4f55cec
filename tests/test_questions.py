"""Concept questions: answered in a variable, checked at once, ungraded unless an instructor says so.

In a notebook a question is two cells after its markdown: an ordinary cell tagged ``question``
that sets ``answer_<what> = None`` for the student to replace, and a locked nbgrader test cell
tagged ``question-check``, ``check.<name>(answer_<what>)``, worth 0 points (an instructor who
wants to grade it gives it points). The instructor edition leaves every answer at ``None``: the
answer and its reasoning are in the ``<details>`` that follows, as they were before the questions
were checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from helpers import check
from helpers.check.feedback import Question

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "notebooks").glob("0[1-9]_*.ipynb"))
ASSIGNMENT = re.compile(r"^(answer_\w+) = None\b", re.MULTILINE)
CALL = re.compile(r"^check\.(q\d\d_\w+)\((answer_\w+)\)$")
QUESTIONS = {name: q for name in dir(check) if isinstance(q := getattr(check, name), Question)}


def _cells(path: Path) -> list[nbformat.NotebookNode]:
    return nbformat.read(path, as_version=4).cells


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_chapter_asks_checked_questions_in_two_cells(path):
    cells = _cells(path)
    asked = [i for i, c in enumerate(cells) if "question" in c.metadata.get("tags", [])]
    assert asked, f"{path.name} has no checked concept question"
    for i in asked:
        variable = ASSIGNMENT.search(cells[i].source)
        assert cells[i].cell_type == "code" and variable, f"{path.name} cell {i}: answer_<what> = None"
        assert "nbgrader" not in cells[i].metadata, f"{path.name} cell {i}: the student's cell is an ordinary one"
        checker = cells[i + 1]
        call = CALL.match(checker.source.strip())
        assert "question-check" in checker.metadata.get("tags", []) and call, \
            f"{path.name} cell {i + 1}: check.<name>({variable.group(1)}) must follow the question"
        assert call.group(2) == variable.group(1)
        assert call.group(1) in QUESTIONS, f"helpers.check has no question {call.group(1)}"
        assert call.group(1).startswith(f"q{path.name[:2]}_"), f"{call.group(1)} belongs to another chapter"
        meta = checker.metadata.get("nbgrader", {})
        assert meta.get("grade") is True and meta.get("locked") is True and meta.get("points") == 0 \
            and meta.get("solution") is False and meta.get("grade_id") == f"ex{path.name[:2]}-{call.group(1)}", meta
        printed = "".join(o.get("text", "") for o in checker.get("outputs", []) if o.output_type == "stream")
        assert printed.startswith(f"✗ {call.group(1)}: not answered yet"), \
            f"{path.name}: the instructor edition leaves {variable.group(1)} unanswered; printed {printed!r}"


def test_every_question_is_asked_in_a_notebook():
    asked = {CALL.match(c.source.strip()).group(1) for path in CHAPTERS for c in _cells(path)
             if "question-check" in c.metadata.get("tags", [])}
    assert asked == set(QUESTIONS), sorted(set(QUESTIONS) ^ asked)


@pytest.mark.parametrize("name", sorted(QUESTIONS))
def test_each_question_accepts_its_answer_and_explains_every_wrong_choice(name, monkeypatch):
    question = QUESTIONS[name]
    assert question.name == name and question.why.strip()
    assert question.feedback(question.answer).passed
    if question.choices:
        for choice, hint in question.choices.items():
            if choice != question.answer:
                result = question.feedback(choice)
                assert not result.passed and hint.strip() and hint in result.message, (choice, result)
    else:
        assert isinstance(question.answer, int | float)
        for wrong in (question.answer * 2 + 1, question.answer / 3 - 1):
            assert not question.feedback(wrong).passed, wrong
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")  # graded: right keeps its points, blank loses them
    question(question.answer)
    with pytest.raises(AssertionError, match="not answered yet"):
        question(None)
