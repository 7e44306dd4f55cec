"""Lesson plans measured from the notebooks: how long each section takes, and what fits a lab.

A notebook's *section* is a ``## `` heading and everything up to the next ``## `` heading (a
markdown cell may hold several headings: the takeaways, glossary and references share one).
A section is **core** unless the cell that holds its heading carries the tag
``further-reading`` (its heading then says "Đọc thêm (further reading)"); CONTRIBUTING.md,
"Core path and further reading", states the convention.  Inside a core section, a part whose
``### `` heading cell is tagged ``homework`` (a build-it-yourself exercise runs to its last grade
cell, ``check.<name>.grade(...)``, before the next heading; a part without one runs to the next
heading), and every cell tagged ``open-ended`` (an open-ended experiment), is assigned as
homework rather than done in class.

The time model (every constant below, with its reason) turns a section into minutes:

* reading: the words of its markdown (code and outputs excluded) at :data:`READING_WPM`, plus
  :data:`CODE_CELL_MIN` per code cell and :data:`FIGURE_MIN` per figure it draws;
* exercises: :data:`EXERCISE_MIN` per build-it-yourself exercise (a cell tagged ``exercise``),
  :data:`QUESTION_MIN` per concept question (``question``), :data:`WRITTEN_MIN` per written
  answer to a predict-first prompt (a markdown cell tagged ``written-answer``, whose sample
  answer students never see, so its words are not read), :data:`OPEN_ENDED_MIN` per
  open-ended experiment (``open-ended``).

From these minutes come :func:`plans` (one lab, two labs, the full course), rendered into
TEACHING.md's ``teaching-plans`` block, and each notebook's measured total, which its header's
**Time.** line and ``minutes`` in notebooks/course.toml must state.  ``python -m tools.course``
writes the block and the header sentence; a plan that does not fit its slot raises
:class:`PlanDoesNotFit`, so ``make course`` fails loudly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# -- the time model: every constant in one place ---------------------------------------------
#: Words per minute for the notebooks' technical English read by second-language learners
#: (Vietnamese undergraduates).  Careful reading of technical prose by native speakers runs at
#: about 150–200 words a minute; second-language readers of dense text with formulas are
#: slower, so 130 (the issue's own figure) is used.
READING_WPM = 130
#: Minutes per code cell: running it and glancing at its printout (its code is not studied
#: line by line on the core path; the exercises are where code is read closely).
CODE_CELL_MIN = 0.25
#: Minutes per figure: reading its title and axes and finding what the sentence under it
#: says to see (on top of the words of that sentence, counted as reading).
FIGURE_MIN = 1.0
#: Minutes per build-it-yourself exercise (a cell tagged ``exercise``): write a short
#: function, run its check, fix one slip.  TEACHING.md has always allowed 10.
EXERCISE_MIN = 10
#: Minutes per concept question (``question``): predict, pick an answer, read the folded
#: solution.
QUESTION_MIN = 2
#: Minutes per written answer to a predict-first prompt (``written-answer``): two or three
#: sentences with the prediction and its reason before running, one sentence after.
WRITTEN_MIN = 4
#: Minutes per open-ended experiment (``open-ended``): design, run, write a paragraph; always
#: homework in the plans below.
OPEN_ENDED_MIN = 15
#: Headings of sections that are looked up, not read, and not timed.
UNTIMED_HEADINGS = ("Glossary", "References", "License")
#: Minutes of a lab the plans keep free (settling in, the introduction, the wrap-up).
LAB_OVERHEAD_MIN = 10
#: A lab's length in minutes.
LAB_MIN = 90

FURTHER_TAG = "further-reading"
HOMEWORK_TAG = "homework"
OPEN_ENDED_TAG = "open-ended"
WRITTEN_TAG = "written-answer"
#: What a further-reading section's heading must contain.
FURTHER_LABEL = "Đọc thêm (further reading)"


@dataclass(frozen=True)
class Section:
    """One ``## `` section of a notebook and its measured minutes."""

    heading: str
    further: bool
    timed: bool
    words: int
    code_cells: int
    figures: int
    exercises: int
    questions: int
    homework_words: int
    homework_exercises: int
    homework_questions: int
    open_ended: int
    homework_code_cells: int = 0
    homework_figures: int = 0
    written: int = 0
    homework_written: int = 0
    #: The markdown read in class (the homework parts left out), for :func:`further_references`.
    class_text: str = field(default="", repr=False, compare=False)

    @property
    def label(self) -> str:
        """``§N`` for a numbered section, else its heading."""
        match = re.match(r"(\d+)\.", self.heading)
        if match:
            return f"§{match.group(1)}"
        return "the introduction" if self.heading.startswith("(") else self.heading.split(" · ")[0]

    @property
    def class_min(self) -> float:
        """Minutes in class: reading plus the exercises not assigned as homework."""
        if not self.timed:
            return 0.0
        return (self.words / READING_WPM + self.code_cells * CODE_CELL_MIN + self.figures * FIGURE_MIN
                + self.exercises * EXERCISE_MIN + self.questions * QUESTION_MIN + self.written * WRITTEN_MIN)

    @property
    def homework_min(self) -> float:
        """Minutes of the homework parts: their reading, exercises and open-ended experiments."""
        if not self.timed:
            return 0.0
        return (self.homework_words / READING_WPM + self.homework_code_cells * CODE_CELL_MIN
                + self.homework_figures * FIGURE_MIN + self.homework_exercises * EXERCISE_MIN
                + self.homework_questions * QUESTION_MIN + self.homework_written * WRITTEN_MIN
                + self.open_ended * OPEN_ENDED_MIN)


@dataclass(frozen=True)
class Timing:
    """A notebook's sections and its measured core, homework and further-reading minutes."""

    file: str
    sections: tuple[Section, ...]
    #: :func:`further_code_used`: further sections whose cells the core code needs run.
    run_needed: Mapping[str, tuple[str, ...]] = field(default_factory=dict, compare=False)

    @property
    def core(self) -> tuple[Section, ...]:
        return tuple(s for s in self.sections if s.timed and not s.further)

    @property
    def further(self) -> tuple[Section, ...]:
        return tuple(s for s in self.sections if s.timed and s.further)

    @property
    def core_min(self) -> int:
        """The core path in class: its sections' minutes, each rounded up (so the plans' parts
        add up to their totals)."""
        return sum(math.ceil(s.class_min) for s in self.core)

    @property
    def homework_min(self) -> int:
        """Homework from the core sections (tagged exercises, open-ended experiments)."""
        return sum(math.ceil(s.homework_min) for s in self.core)

    @property
    def further_min(self) -> int:
        """Every further-reading section, read and done in full."""
        return sum(math.ceil(s.class_min + s.homework_min) for s in self.further)

    @property
    def total_min(self) -> int:
        """What the header's **Time.** line and course.toml's ``minutes`` state."""
        return self.core_min + self.homework_min + self.further_min


def _is_figure(output: Mapping[str, Any]) -> bool:
    return output.get("output_type") in ("display_data", "execute_result") and "image/png" in output.get("data", {})


def _words(text: str) -> int:
    return len(re.findall(r"\S+", text))


def measure(nb: Any, file: str = "notebook") -> Timing:
    """Measure the sections of ``nb`` (an nbformat v4 notebook) with the time model above.

    Raises:
        ValueError: a further-reading section's heading lacks :data:`FURTHER_LABEL`, or the
            ``further-reading`` tag sits on a cell that does not start with a ``## `` heading.
    """
    sections: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    section_homework = part_homework = False
    part_ends = _exercise_part_ends(nb.cells)

    def start(heading: str, further: bool) -> dict[str, Any]:
        title = heading[3:].strip()
        timed = not any(title.startswith(word) for word in UNTIMED_HEADINGS)
        section = {"heading": title, "further": further, "timed": timed, "words": 0, "code_cells": 0,
                   "figures": 0, "exercises": 0, "questions": 0, "homework_words": 0,
                   "homework_exercises": 0, "homework_questions": 0, "open_ended": 0, "homework_code_cells": 0,
                   "homework_figures": 0, "written": 0, "homework_written": 0, "class_text": ""}
        sections.append(section)
        return section

    for index, cell in enumerate(nb.cells):
        tags = set(cell.metadata.get("tags", []))
        if FURTHER_TAG in tags and not (cell.cell_type == "markdown" and cell.source.startswith("## ")):
            raise ValueError(f"{file} cell {index}: the tag {FURTHER_TAG!r} belongs on a cell that starts "
                             "with a '## ' heading")
        if cell.cell_type == "markdown" and WRITTEN_TAG in tags:
            if current is None:
                current = start("## (before the first section)", False)
            own = section_homework or part_homework
            current["homework_written" if own else "written"] += 1
            continue
        if cell.cell_type == "markdown":
            level = re.match(r"(#{2,3}) ", cell.source)
            if level is not None:
                tagged = HOMEWORK_TAG in tags or OPEN_ENDED_TAG in tags
                if level.group(1) == "##":
                    section_homework, part_homework = tagged, False
                else:
                    part_homework = tagged
            parts = [part for part in re.split(r"(?m)^(?=## )", cell.source) if part]
            for position, part in enumerate(parts):
                if part.startswith("## "):
                    further = FURTHER_TAG in tags and position == 0
                    heading = part.split("\n", 1)[0]
                    if further and FURTHER_LABEL not in heading:
                        raise ValueError(f"{file} cell {index}: a further-reading section's heading must say "
                                         f"{FURTHER_LABEL!r}: {heading!r}")
                    current = start(heading, further)
                if current is None:
                    current = start("## (before the first section)", False)
                own = section_homework or part_homework or OPEN_ENDED_TAG in tags
                current["homework_words" if own else "words"] += _words(part)
                if not own:
                    current["class_text"] += part + "\n"
            if OPEN_ENDED_TAG in tags and current is not None:
                current["open_ended"] += 1
            continue
        if current is None:
            current = start("## (before the first section)", False)
        prefix = "homework_" if section_homework or part_homework else ""
        current[prefix + "code_cells"] += 1
        current[prefix + "figures"] += sum(1 for output in cell.get("outputs", []) if _is_figure(output))
        if "exercise" in tags:
            current[prefix + "exercises"] += 1
        if part_homework and index in part_ends:
            part_homework = False  # the exercises end with their grade cells; the section goes on in class
        if "question" in tags:
            current[prefix + "questions"] += 1
    return Timing(file, tuple(Section(**s) for s in sections), further_code_used(nb))


#: An exercise's grade cell, its last cell (helpers.check: ``check.<name>.grade(my_<name>)``).
_GRADE_CELL = re.compile(r"^check\.\w+\.grade\(", re.MULTILINE)


def _exercise_part_ends(cells: Sequence[Any]) -> set[int]:
    """The index of the last grade cell of each ``### `` part (up to the next heading) that has one."""
    ends: set[int] = set()
    last = None
    for index, cell in enumerate(cells):
        if cell.cell_type == "markdown" and re.match(r"#{2,3} ", cell.source):
            if last is not None:
                ends.add(last)
            last = None
        elif cell.cell_type == "code" and _GRADE_CELL.search(cell.source):
            last = index
    if last is not None:
        ends.add(last)
    return ends


_SECTION_REF = re.compile(r"\b[Ss]ections?\s+(\d+(?:\s*(?:–|-|,|and|or|to)\s*\d+)*)|§\s*(\d+)")
#: What may follow a reference to a further-reading section: it says the reader skipped it.
_MARKED = re.compile(r"(?:'s)?\s*[(,]\s*(?:further reading|Đọc thêm)")
#: What before a reference makes it another notebook's section ("notebook 05, section 5").
_OTHER_NOTEBOOK = re.compile(r"notebook \d\d(?:'s|,)?\s*$")


def section_numbers(text: str) -> set[int]:
    """The section numbers ``text`` refers to ("section 4", "sections 2–5", "§3"); a range counts
    every number in it.  A reference marked as further reading ("section 4 (further reading)",
    "section 6, further reading") and one to another notebook's section ("notebook 05, section
    5") are left out."""
    found: set[int] = set()
    for match in _SECTION_REF.finditer(text):
        if _MARKED.match(text, match.end()) or _OTHER_NOTEBOOK.search(text[max(0, match.start() - 20):match.start()]):
            continue
        if match.group(2):
            found.add(int(match.group(2)))
            continue
        spec = match.group(1)
        for low, high in re.findall(r"(\d+)\s*[–-]\s*(\d+)", spec):
            found.update(range(int(low), int(high) + 1))
        found.update(int(n) for n in re.findall(r"\d+", spec))
    return found


def further_references(timing: Timing) -> list[str]:
    """Where the core path's in-class text sends the reader, by number and without saying so, to
    a further-reading section they may have skipped (one message each).  The introduction (the
    notebook's header, a table of contents) may name any section."""
    further = {int(s.label[1:]): s.label for s in timing.further if s.label.startswith("§")}
    problems = []
    for section in timing.core:
        if section.label == "the introduction":
            continue
        for number in sorted(section_numbers(section.class_text) & set(further)):
            problems.append(f"{timing.file} {section.label}: the core path refers to section {number}, which is "
                            f"further reading: say so (\"section {number} (further reading)\"), reword, or make "
                            f"{further[number]} core")
    return problems


def _bound_and_used(source: str) -> tuple[set[str], set[str]]:
    """Names a code cell binds at its top level and names it reads anywhere."""
    import ast

    lines = [line for line in source.split("\n") if not line.lstrip().startswith(("%", "!"))]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return set(), set()
    bound: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        else:
            bound.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
    local = {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
    local |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return bound, used - (local - bound)


def further_code_used(nb: Any) -> dict[str, tuple[str, ...]]:
    """Further-reading sections whose code the core path's code reads (a name bound only there),
    with the core sections that read it: a learner may skip *reading* them, but their cells must
    run (they do under "Run all").  Keyed by the further section's label, in notebook order."""
    further_only: dict[str, str] = {}
    core_bound: set[str] = set()
    needed: dict[str, list[str]] = {}
    further = False
    label = "the introduction"
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            headings = re.findall(r"(?m)^## (.*)$", cell.source)
            if headings:
                tags = cell.metadata.get("tags", [])
                further = FURTHER_TAG in tags and cell.source.startswith("## ") and len(headings) == 1
                match = re.match(r"(\d+)\.", headings[-1])
                label = f"§{match.group(1)}" if match else headings[-1].split(" · ")[0]
            continue
        bound, used = _bound_and_used(cell.source)
        if further:
            for name in bound - core_bound:
                further_only.setdefault(name, label)
            continue
        for name in sorted((used - bound) & set(further_only) - core_bound):
            readers = needed.setdefault(further_only[name], [])
            if label not in readers:
                readers.append(label)
        core_bound |= bound
    order = list(dict.fromkeys(further_only.values()))
    return {source: tuple(needed[source]) for source in sorted(needed, key=order.index)}


def measure_file(path: Path) -> Timing:
    """:func:`measure` of the notebook at ``path``."""
    import nbformat

    return measure(nbformat.read(path, as_version=4), Path(path).name)


# -- the plans --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lab:
    """One lab: the notebooks whose core paths are done in it."""

    name: str
    notebooks: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """A named plan: labs of :data:`LAB_MIN` minutes."""

    name: str
    purpose: str
    labs: tuple[Lab, ...]


#: The short plans TEACHING.md gives.  A lab holds the core paths of its notebooks; their
#: homework and further reading go home.  Notebook 00 (10 minutes: the setup check) is done
#: before the first lab.  The full course is made from the course table (:func:`plans`), so a
#: new notebook joins it without an edit here.
PLANS: tuple[Plan, ...] = (
    Plan("One 90-minute lab", "a single session on initialization, the course's first idea",
         (Lab("Lab", ("01",)),)),
    Plan("Two 90-minute labs", "initialization, then the normalization layers built from scratch",
         (Lab("Lab 1", ("01",)), Lab("Lab 2", ("03",)))),
)


def plans(course: Any) -> tuple[Plan, ...]:
    """:data:`PLANS`, then the full course: one lab for each notebook of the course table after 00."""
    chapters = [nb.number for nb in course.notebooks if nb.number != "00"]
    full = Plan("The full course", "every notebook's core path in class, one notebook a lab",
                tuple(Lab(f"Lab {index}", (number,)) for index, number in enumerate(chapters, 1)))
    return (*PLANS, full)


class PlanDoesNotFit(ValueError):
    """A lab's core paths need more than its minutes."""


def _fmt(minutes: float) -> str:
    return f"{math.ceil(minutes)}"


def render_plans(course: Any, timings: Mapping[str, Timing]) -> str:
    """TEACHING's ``teaching-plans`` block: the time model, each notebook's sections, the plans.

    Raises:
        PlanDoesNotFit: a lab's core minutes exceed :data:`LAB_MIN` − :data:`LAB_OVERHEAD_MIN`.
        ValueError: a plan names a notebook the course does not have.
    """
    by_number = {nb.number: nb for nb in course.notebooks}
    available = LAB_MIN - LAB_OVERHEAD_MIN
    lines = [
        f"Measured from the notebooks by `tools/plans.py` (`make course`): reading at {READING_WPM} words a "
        f"minute of markdown, plus {CODE_CELL_MIN:g} min per code cell and {FIGURE_MIN:g} min per figure; "
        f"{EXERCISE_MIN} min per build-it-yourself exercise, {QUESTION_MIN} per concept question, "
        f"{WRITTEN_MIN} per written answer, {OPEN_ENDED_MIN} per open-ended experiment (the reasons are in "
        f"`tools/plans.py`). A lab is "
        f"{LAB_MIN} minutes, {LAB_OVERHEAD_MIN} of them kept for settling in and the wrap-up, so its core "
        f"paths must fit in {available}. Glossaries and reference lists are not timed.",
        "",
        "| # | core path (in class) | homework | further reading (Đọc thêm) | in all (header's **Time.**) |",
        "|---|---|---|---|---|",
    ]
    for number, timing in timings.items():
        lines.append(f"| {number} | {timing.core_min} min | {timing.homework_min} min | "
                     f"{timing.further_min} min | {timing.total_min} min |")
    for plan in plans(course):
        lines += ["", f"#### {plan.name}: {plan.purpose}", ""]
        total_class = total_home = 0
        for lab in plan.labs:
            missing = [n for n in lab.notebooks if n not in timings or n not in by_number]
            if missing:
                raise ValueError(f"plan {plan.name!r}, {lab.name}: no notebook {missing}")
            core = sum(timings[n].core_min for n in lab.notebooks)
            if core > available:
                raise PlanDoesNotFit(
                    f"plan {plan.name!r}, {lab.name}: the core paths of {', '.join(lab.notebooks)} take {core} "
                    f"min, more than the {available} a {LAB_MIN}-minute lab has: mark a section further "
                    "reading or an exercise homework (CONTRIBUTING.md), or split the lab")
            home = sum(timings[n].homework_min + timings[n].further_min for n in lab.notebooks)
            total_class += core
            total_home += home
            lines.append(f"- **{lab.name}** ({core} of {available} min):")
            for number in lab.notebooks:
                lines += _notebook_lines(by_number[number], timings[number])
        labs = f"{len(plan.labs)} lab{'s' if len(plan.labs) > 1 else ''}"
        lines += ["", f"In class {total_class} min over {labs}; at home up to {total_home} min "
                  "(homework and further reading)."]
    return "\n".join(lines)


def _notebook_lines(nb: Any, timing: Timing) -> list[str]:
    def parts(sections: Sequence[Section], key: str) -> str:
        chosen = [(s.label, getattr(s, key)) for s in sections if getattr(s, key) > 0]
        return ", ".join(f"{label} {_fmt(minutes)}" for label, minutes in chosen) or "—"

    homework = [s for s in timing.core if s.homework_min > 0]
    lines = [f"  - {nb.number} · {nb.title}: in class, {parts(timing.core, 'class_min')} "
             f"(= {timing.core_min} min)."]
    lines.append("    Homework: " + (parts(homework, "homework_min") + f" (= {timing.homework_min} min): the "
                                   "exercises tagged homework and the open-ended experiments of these sections."
                                   if homework else "none."))
    further = [f"{s.label} {_fmt(s.class_min + s.homework_min)}" for s in timing.further]
    lines.append("    Skip in class, read at home (Đọc thêm): "
                 + (", ".join(further) + f" (= {timing.further_min} min)." if further else "none."))
    for source, readers in timing.run_needed.items():
        lines.append(f"    Run {source}'s cells anyway (Run all does): the code of {', '.join(readers)} uses what "
                     "they compute.")
    return lines


def time_sentence(timing: Timing) -> str:
    """The opening of a header's **Time.** line (its only "N minutes": the measured total)."""
    return (f"**Time.** About {timing.total_min} minutes in all: the core path {timing.core_min} min, homework "
            f"{timing.homework_min} min, further reading (Đọc thêm) {timing.further_min} min (measured from "
            "this notebook; TEACHING.md, \"Lesson plans\").")
