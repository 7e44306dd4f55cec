"""The course table (``notebooks/course.toml``) and the documents generated from it.

One entry per notebook holds its number, file, title, topic, the lectures it mirrors, its
time estimate, class slot and ``make bench`` budget.  From it (and, for measured run times,
``benchmarks/results.json``) come the marked blocks of

* README.md: the notebook table (``readme-notebooks``);
* TEACHING.md: the "Before class" table (``teaching-before-class``), the per-notebook
  CPU and memory table (``teaching-per-notebook``) and the lesson plans (``teaching-plans``,
  measured from the notebooks by ``tools.plans``) and the points of each notebook's graded cells
  (``teaching-grading``, read from their nbgrader metadata);
* notebooks/00_start_here.ipynb: the course map (``course-map``);

and, measured from notebooks 01 on (``tools.plans``), each header's **Time.** sentence and
``minutes`` and ``class_slot`` in the course table (``time_differences``, ``sync_times``);

and ``benchmarks/budgets.py`` reads the budgets.  A block sits between the lines
``<!-- begin NAME ... -->`` and ``<!-- end NAME -->``; only its content is rewritten.

``python -m tools.course`` rewrites every block; ``python -m tools.course --check`` changes
nothing and lists, with file and line, what differs (``tests/test_course.py`` runs it, and
also checks TEACHING's section headings and each notebook's header against the table).
Reading the table (``load_course``, what ``benchmarks/budgets.py`` needs) uses the standard
library only; writing the blocks also needs nbformat (notebook 00) and ``tools.notebook_tools``
(the Colab badges).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as the package tomli (the `test` extra)
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The course table.
COURSE_FILE = REPO_ROOT / "notebooks" / "course.toml"
#: ``make bench``'s machine-readable results (run times and memory of every notebook).
RESULTS_FILE = REPO_ROOT / "benchmarks" / "results.json"
#: The notebook that carries the course map.
MAP_NOTEBOOK = "00_start_here.ipynb"

_NUMBER = re.compile(r"\d\d")
_FILE = re.compile(r"(\d\d)_[a-z0-9]+(?:_[a-z0-9]+)*\.ipynb")
_KEY = re.compile(r"[a-z][a-z0-9_]*")
_NOTEBOOK_FIELDS = {"number": str, "file": str, "title": str, "topic": str, "lectures": list,
                    "minutes": int, "class_slot": str, "budget_s": float}
_LECTURE_FIELDS = ("name", "title", "citation")


@dataclass(frozen=True)
class Lecture:
    """A lecture the course mirrors: how the course names it, its own title, its citation."""

    key: str
    name: str
    title: str
    citation: str


@dataclass(frozen=True)
class Notebook:
    """One row of the course table."""

    number: str
    file: str
    title: str
    topic: str
    lectures: tuple[str, ...]
    minutes: int
    class_slot: str
    budget_s: float


@dataclass(frozen=True)
class Course:
    """The course table: notebooks in order, lectures by key."""

    notebooks: tuple[Notebook, ...]
    lectures: Mapping[str, Lecture]

    def budgets(self) -> dict[str, float]:
        """``make bench`` wall-time budget in seconds, keyed by two-digit number."""
        return {nb.number: nb.budget_s for nb in self.notebooks}


@dataclass(frozen=True)
class Measured:
    """One notebook in ``make bench``'s results: medians over its runs."""

    wall_s: float
    cpu_s: float
    peak_mib: float


# -- reading the table ------------------------------------------------------------------------
def _field(entry: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    if name not in entry:
        raise ValueError(f"{where}: the field {name!r} is missing")
    value = entry[name]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"{where}: {name} must be {kind.__name__}, got {type(value).__name__}")
    if isinstance(value, str) and not value.strip():
        raise ValueError(f"{where}: {name} must not be empty")
    return value


def parse_course(data: Mapping[str, Any]) -> Course:
    """Check the parsed TOML of a course table and return it as a :class:`Course`.

    Raises:
        TypeError: ``data`` is not a mapping, or a field has the wrong type (named).
        ValueError: a field is missing, empty, unknown or inconsistent: numbers not two
            digits, not increasing or not the file's prefix, a file not ``NN_snake_case.ipynb``,
            an unknown lecture key, a non-positive time or budget.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"data must be a mapping (parsed TOML), got {type(data).__name__}")
    unknown = set(data) - {"lectures", "notebook"}
    if unknown:
        raise ValueError(f"course table: unknown top-level keys {sorted(unknown)}; allowed: lectures, notebook")
    raw_lectures = data.get("lectures", {})
    if not isinstance(raw_lectures, Mapping):
        raise TypeError(f"lectures must be a table, got {type(raw_lectures).__name__}")
    lectures: dict[str, Lecture] = {}
    for key, entry in raw_lectures.items():
        where = f"lectures.{key}"
        if not _KEY.fullmatch(key):
            raise ValueError(f"{where}: a lecture key is lower-case letters, digits and _")
        if not isinstance(entry, Mapping):
            raise TypeError(f"{where} must be a table, got {type(entry).__name__}")
        extra = set(entry) - set(_LECTURE_FIELDS)
        if extra:
            raise ValueError(f"{where}: unknown fields {sorted(extra)}; allowed: {', '.join(_LECTURE_FIELDS)}")
        lectures[key] = Lecture(key, *(_field(entry, f, str, where) for f in _LECTURE_FIELDS))
    raw_notebooks = data.get("notebook")
    if not isinstance(raw_notebooks, list) or not raw_notebooks:
        raise ValueError("course table: at least one [[notebook]] entry is needed")
    notebooks: list[Notebook] = []
    for index, entry in enumerate(raw_notebooks):
        where = f"notebook #{index + 1}"
        if not isinstance(entry, Mapping):
            raise TypeError(f"{where} must be a table, got {type(entry).__name__}")
        extra = set(entry) - set(_NOTEBOOK_FIELDS)
        if extra:
            raise ValueError(f"{where}: unknown fields {sorted(extra)}; allowed: {', '.join(_NOTEBOOK_FIELDS)}")
        values = {name: _field(entry, name, kind, where) for name, kind in _NOTEBOOK_FIELDS.items()}
        where = f"notebook {values['number']}"
        if not _NUMBER.fullmatch(values["number"]):
            raise ValueError(f"{where}: number must be two digits, e.g. '07'")
        match = _FILE.fullmatch(values["file"])
        if match is None or match.group(1) != values["number"]:
            raise ValueError(f"{where}: file must be '{values['number']}_snake_case.ipynb', got {values['file']!r}")
        if notebooks and values["number"] <= notebooks[-1].number:
            raise ValueError(f"{where}: numbers must increase (it follows {notebooks[-1].number})")
        for key in values["lectures"]:
            if not isinstance(key, str):
                raise TypeError(f"{where}: lectures must be a list of keys (strings), got {type(key).__name__}")
            if key not in lectures:
                raise ValueError(f"{where}: lecture {key!r} is not one of {sorted(lectures)}")
        if values["minutes"] <= 0:
            raise ValueError(f"{where}: minutes must be > 0, got {values['minutes']}")
        if not values["budget_s"] > 0:
            raise ValueError(f"{where}: budget_s must be > 0, got {values['budget_s']}")
        values["lectures"] = tuple(values["lectures"])
        notebooks.append(Notebook(**values))
    return Course(tuple(notebooks), lectures)


def load_course(path: Path = COURSE_FILE) -> Course:
    """Read and check the course table at ``path`` (see :func:`parse_course`)."""
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a path, got {type(path).__name__}")
    with open(path, "rb") as handle:
        try:
            data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"path: {path} is not valid TOML: {error}") from error
    return parse_course(data)


def load_results(path: Path = RESULTS_FILE) -> dict[str, Any]:
    """``make bench``'s results (an empty dict when the file does not exist yet)."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def measured(results: Mapping[str, Any]) -> dict[str, Measured]:
    """Median wall time, kernel CPU time and peak memory of each notebook in ``results``,
    keyed by file name; notebooks that failed or were not run are left out."""
    if not isinstance(results, Mapping):
        raise TypeError(f"results must be a mapping (results.json), got {type(results).__name__}")
    found: dict[str, Measured] = {}
    for entry in results.get("notebooks", []):
        if entry.get("error") or not entry.get("times_s"):
            continue
        found[entry["name"]] = Measured(
            wall_s=float(entry["median_s"]), cpu_s=statistics.median(entry["cpu_s"]),
            peak_mib=float(entry["peak_mib"]))
    return found


# -- the generated blocks ---------------------------------------------------------------------
def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _runs_in(run: Measured | None) -> str:
    return "not measured yet (`make bench`)" if run is None else f"~{run.wall_s:.0f} s"


def readme_table(course: Course, results: Mapping[str, Any]) -> str:
    """README's notebook table; "runs in" is the median of ``make bench``."""
    from tools.notebook_tools import colab_badge

    runs = measured(results)
    lines = ["| # | notebook | topic | runs in | Colab |", "|---|---|---|---|---|"]
    for nb in course.notebooks:
        lines.append(f"| {nb.number} | [{_cell(nb.title)}](notebooks/{nb.file}) | {_cell(nb.topic)} | "
                     f"{_runs_in(runs.get(nb.file))} | {colab_badge(nb.file)} |")
    return "\n".join(lines)


def before_class_table(course: Course, results: Mapping[str, Any]) -> str:
    """TEACHING's "Before class" table: estimate, measured run time, class slot."""
    runs = measured(results)
    lines = ["| # | notebook | in all: core path, homework, further reading (measured; the header's **Time.**) "
             "| runs in (`make bench`, median) | in class |", "|---|---|---|---|---|"]
    for nb in course.notebooks:
        lines.append(f"| {nb.number} | `{nb.file}` | ~{nb.minutes} min | {_runs_in(runs.get(nb.file))} "
                     f"| {_cell(nb.class_slot)} |")
    return "\n".join(lines)


def per_notebook_resources(course: Course, results: Mapping[str, Any]) -> str:
    """TEACHING's per-notebook CPU and memory table, from ``make bench``'s latest results."""
    if not results:
        return "No `make bench` results yet: run `make bench` on an idle machine."
    runs = measured(results)
    machine = results.get("machine", {})
    repeats = results.get("options", {}).get("repeats", "?")
    load_average = machine.get("load_average_at_start") or ["?"]
    load = f"{load_average[0]:.2f}" if isinstance(load_average[0], (int, float)) else "?"
    lines = [
        f"From the latest `make bench` ({results.get('date', '?')}; {machine.get('cpu_model', '?')}, "
        f"{machine.get('logical_cores', '?')} cores, 1-minute load average {load} before the run; median "
        f"of {repeats} runs of each notebook in a fresh kernel). The kernel CPU time is the work "
        "each student's \"Run all\" adds to the server; the peak memory is the kernel's, with its children.",
        "",
        "| # | notebook | \"Run all\" alone | kernel CPU time | peak kernel memory |",
        "|---|---|---|---|---|",
    ]
    for nb in course.notebooks:
        run = runs.get(nb.file)
        if run is None:
            lines.append(f"| {nb.number} | `{nb.file}` | not measured yet | — | — |")
        else:
            lines.append(f"| {nb.number} | `{nb.file}` | {run.wall_s:.0f} s | {run.cpu_s:.0f} CPU s "
                         f"| {run.peak_mib:.0f} MiB |")
    return "\n".join(lines)


def course_map(course: Course, results: Mapping[str, Any] | None = None) -> str:
    """Notebook 00's course map: what each notebook teaches, which lectures it mirrors, and
    the lectures by their full titles."""
    lines = ["| # | notebook | what it teaches | lectures it mirrors |", "|---|---|---|---|"]
    for nb in course.notebooks:
        mirrored = "; ".join(course.lectures[key].name for key in nb.lectures) or "—"
        lines.append(f"| {nb.number} | {_cell(nb.title)} | {_cell(nb.topic)} | {mirrored} |")
    lines += ["", "The lectures, by their full titles (most are in Vietnamese):"]
    used = [key for key in course.lectures if any(key in nb.lectures for nb in course.notebooks)]
    for index, key in enumerate(used):
        lecture = course.lectures[key]
        lines.append(f"- {lecture.name}: {lecture.citation}{'.' if index == len(used) - 1 else ';'}")
    return "\n".join(lines)


def timings(course: Course, root: Path = REPO_ROOT) -> dict[str, Any]:
    """Each notebook's measured sections (``tools.plans.measure_file``), keyed by number."""
    from tools.plans import measure_file

    return {nb.number: measure_file(Path(root) / "notebooks" / nb.file)
            for nb in course.notebooks if nb.number != MAP_NOTEBOOK[:2]}


def lesson_plans(course: Course, results: Mapping[str, Any], root: Path = REPO_ROOT) -> str:
    """TEACHING's lesson plans, measured from the notebooks (``tools.plans.render_plans``);
    raises ``tools.plans.PlanDoesNotFit`` when a plan does not fit its labs."""
    from tools.plans import render_plans

    return render_plans(course, timings(course, root))


def grading_table(course: Course, results: Mapping[str, Any], root: Path = REPO_ROOT) -> str:
    """TEACHING's grading table: per notebook, the points nbgrader grades automatically (the
    exercises' grade cells), by hand (the written answers) and the concept questions' points."""
    import nbformat

    lines = ["| # | exercises (autograded) | written answers (graded by hand) | concept questions "
             "(0 points unless you give them) | points in all |", "|---|---|---|---|---|"]
    for nb in course.notebooks:
        if nb.number == MAP_NOTEBOOK[:2]:
            continue
        cells = nbformat.read(Path(root) / "notebooks" / nb.file, as_version=4).cells
        graded = [(c.cell_type, c.metadata["nbgrader"].get("points", 0), c.metadata.get("tags", []))
                  for c in cells if c.metadata.get("nbgrader", {}).get("grade")]
        auto = [points for kind, points, tags in graded if kind == "code" and "question-check" not in tags]
        hand = [points for kind, points, _ in graded if kind == "markdown"]
        questions = [points for kind, points, tags in graded if "question-check" in tags]
        lines.append(f"| {nb.number} | {len(auto)} exercises, {sum(auto):g} points | {len(hand)} answers, "
                     f"{sum(hand):g} points | {len(questions)} questions, {sum(questions):g} points | "
                     f"{sum(auto) + sum(hand) + sum(questions):g} |")
    return "\n".join(lines)


#: (file relative to the repository, block name, generator); a generator with a ``root``
#: parameter is given the repository it reads the notebooks from.
BLOCKS: tuple[tuple[str, str, Callable[..., str]], ...] = (
    ("README.md", "readme-notebooks", readme_table),
    ("TEACHING.md", "teaching-before-class", before_class_table),
    ("TEACHING.md", "teaching-per-notebook", per_notebook_resources),
    ("TEACHING.md", "teaching-plans", lesson_plans),
    ("TEACHING.md", "teaching-grading", grading_table),
    (f"notebooks/{MAP_NOTEBOOK}", "course-map", course_map),
)


# -- marked blocks in text --------------------------------------------------------------------
def begin_marker(name: str) -> str:
    """The line that opens block ``name`` (what follows the name is free text)."""
    return f"<!-- begin {name} (generated from notebooks/course.toml by `python -m tools.course`) -->"


def end_marker(name: str) -> str:
    return f"<!-- end {name} -->"


def find_block(text: str, name: str) -> tuple[int, int]:
    """0-based indices of the begin and end marker lines of block ``name`` in ``text``.

    Raises:
        TypeError: ``text`` or ``name`` is not a string.
        ValueError: the block is missing, unclosed or present more than once.
    """
    if not isinstance(text, str) or not isinstance(name, str):
        raise TypeError("text and name must be strings")
    lines = text.split("\n")
    begins = [i for i, line in enumerate(lines) if line.startswith(f"<!-- begin {name} ")]
    ends = [i for i, line in enumerate(lines) if line.strip() == end_marker(name)]
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise ValueError(f"block {name!r}: expected one line starting '<!-- begin {name} ' followed by "
                         f"one line '{end_marker(name)}'; found {len(begins)} and {len(ends)}")
    return begins[0], ends[0]


def replace_block(text: str, name: str, content: str) -> str:
    """``text`` with block ``name``'s content (between its markers) replaced by ``content``."""
    begin, end = find_block(text, name)
    lines = text.split("\n")
    return "\n".join([*lines[:begin], begin_marker(name), *content.split("\n"), *lines[end:]])


def block_differences(text: str, name: str, content: str, label: str, first_line: int = 1) -> list[str]:
    """What differs between block ``name`` of ``text`` and ``content``, one message per line,
    each naming ``label`` and the line number (``first_line`` is the number of ``text``'s first line)."""
    try:
        begin, end = find_block(text, name)
    except ValueError as error:
        return [f"{label}: {error}"]
    lines = text.split("\n")
    found, expected = lines[begin + 1: end], content.split("\n")
    problems = []
    if lines[begin] != begin_marker(name):
        problems.append(f"{label} line {first_line + begin}: expected {begin_marker(name)!r}")
    for offset in range(max(len(found), len(expected))):
        have = found[offset] if offset < len(found) else "(nothing)"
        want = expected[offset] if offset < len(expected) else "(nothing: delete the line)"
        if have != want:
            problems.append(f"{label} line {first_line + begin + 1 + offset}: expected {want!r}, found {have!r}")
    return problems


# -- the documents ----------------------------------------------------------------------------
def _map_cell(nb: Any) -> Any:
    cells = [cell for cell in nb.cells if cell.cell_type == "markdown"
             and any(line.startswith("<!-- begin course-map ") for line in cell.source.split("\n"))]
    if len(cells) != 1:
        raise ValueError(f"{MAP_NOTEBOOK}: expected one markdown cell holding the course-map block, found {len(cells)}")
    return cells[0]


def _generate(generate: Callable[..., str], course: Course, results: Mapping[str, Any], root: Path) -> str:
    import inspect

    if "root" in inspect.signature(generate).parameters:
        return generate(course, results, root=root)
    return generate(course, results)


_TIME_SENTENCE = re.compile(r"^\*\*Time\.\*\* About \d+ minutes in all: .*?\"Lesson plans\"\)\.")


def _time_line(header: str) -> tuple[int, str]:
    lines = header.split("\n")
    found = [i for i, line in enumerate(lines) if line.startswith("**Time.**")]
    if len(found) != 1:
        raise ValueError("the header needs one line starting '**Time.**'")
    return found[0], lines[found[0]]


def _new_time_line(line: str, sentence: str) -> str:
    if _TIME_SENTENCE.match(line):
        return _TIME_SENTENCE.sub(lambda _: sentence, line, count=1)
    return sentence + " " + line.removeprefix("**Time.**").lstrip()


def _field_pattern(number: str, field: str) -> re.Pattern[str]:
    """The value of ``field`` in notebook ``number``'s entry of course.toml (an int or a "string")."""
    return re.compile(r'(number = "' + number + r'"\n(?:(?!\[\[notebook\]\]).*\n)*?' + field
                      + r' = )(\d+|"[^"\n]*")')


def _set_field(text: str, number: str, field: str, value: str) -> str:
    """``text`` (course.toml) with notebook ``number``'s ``field`` set to ``value`` (TOML)."""
    return _field_pattern(number, field).sub(lambda match: match.group(1) + value, text, count=1)


def class_slot(timing: Any) -> str:
    """What course.toml's ``class_slot`` says for a measured notebook."""
    return f"core path {timing.core_min} min (of a 90-minute lab)"


def time_differences(root: Path = REPO_ROOT, course: Course | None = None) -> list[str]:
    """Where a notebook header's **Time.** line or course.toml's ``minutes`` disagrees with the
    minutes measured from the notebook (``tools.plans``)."""
    import nbformat

    from tools.plans import time_sentence

    root = Path(root)
    course = load_course(root / "notebooks" / "course.toml") if course is None else course
    problems = []
    for nb in course.notebooks:
        if nb.number == MAP_NOTEBOOK[:2]:
            continue
        timing = timings(Course((nb,), course.lectures), root)[nb.number]
        header = nbformat.read(root / "notebooks" / nb.file, as_version=4).cells[0].source
        try:
            _, line = _time_line(header)
        except ValueError as error:
            problems.append(f"notebooks/{nb.file} cell 0: {error}")
            continue
        if not line.startswith(time_sentence(timing)):
            problems.append(f"notebooks/{nb.file} cell 0: the **Time.** line must start {time_sentence(timing)!r}")
        if nb.minutes != timing.total_min:
            problems.append(f"notebooks/course.toml: notebook {nb.number} has minutes = {nb.minutes}, measured "
                            f"{timing.total_min}")
        if nb.class_slot != class_slot(timing):
            problems.append(f"notebooks/course.toml: notebook {nb.number} has class_slot = {nb.class_slot!r}, "
                            f"measured {class_slot(timing)!r}")
    return problems


def sync_times(root: Path = REPO_ROOT, course: Course | None = None) -> list[str]:
    """Rewrite the headers' **Time.** sentences and course.toml's ``minutes`` to the measured
    minutes; returns the files that changed."""
    import nbformat

    from tools.plans import time_sentence

    root = Path(root)
    table = root / "notebooks" / "course.toml"
    course = load_course(table) if course is None else course
    text = table.read_text(encoding="utf-8")
    new_text = text
    changed = []
    for nb in course.notebooks:
        if nb.number == MAP_NOTEBOOK[:2]:
            continue
        timing = timings(Course((nb,), course.lectures), root)[nb.number]
        path = root / "notebooks" / nb.file
        notebook = nbformat.read(path, as_version=4)
        index, line = _time_line(notebook.cells[0].source)
        new_line = _new_time_line(line, time_sentence(timing))
        if new_line != line:
            lines = notebook.cells[0].source.split("\n")
            lines[index] = new_line
            notebook.cells[0].source = "\n".join(lines)
            nbformat.write(notebook, path)
            changed.append(f"notebooks/{nb.file}")
        new_text = _set_field(new_text, nb.number, "minutes", str(timing.total_min))
        new_text = _set_field(new_text, nb.number, "class_slot", f'"{class_slot(timing)}"')
    if new_text != text:
        table.write_text(new_text, encoding="utf-8")
        changed.append("notebooks/course.toml")
    return changed


def check(root: Path = REPO_ROOT, course: Course | None = None,
          results: Mapping[str, Any] | None = None) -> list[str]:
    """Every difference between the generated blocks and the files under ``root``."""
    import nbformat

    root = Path(root)
    course = load_course(root / "notebooks" / "course.toml") if course is None else course
    results = load_results(root / "benchmarks" / "results.json") if results is None else results
    problems: list[str] = []
    problems += time_differences(root, course)
    for relative, name, generate in BLOCKS:
        try:
            content = _generate(generate, course, results, root)
        except ValueError as error:  # a plan that does not fit (tools.plans.PlanDoesNotFit)
            problems.append(f"{relative} block {name}: {error}")
            continue
        if relative.endswith(".ipynb"):
            nb = nbformat.read(root / relative, as_version=4)
            try:
                cell = _map_cell(nb)
            except ValueError as error:
                problems.append(str(error))
                continue
            index = nb.cells.index(cell)
            problems += block_differences(cell.source, name, content, f"{relative} cell {index} (markdown)")
        else:
            problems += block_differences((root / relative).read_text(encoding="utf-8"), name, content, relative)
    return problems


def sync(root: Path = REPO_ROOT) -> list[str]:
    """Rewrite every generated block under ``root``; returns the files that changed."""
    import nbformat

    root = Path(root)
    course = load_course(root / "notebooks" / "course.toml")
    results = load_results(root / "benchmarks" / "results.json")
    changed: list[str] = sync_times(root, course)
    course = load_course(root / "notebooks" / "course.toml")
    for relative, name, generate in BLOCKS:
        content, path = _generate(generate, course, results, root), root / relative
        if relative.endswith(".ipynb"):
            nb = nbformat.read(path, as_version=4)
            cell = _map_cell(nb)
            new = replace_block(cell.source, name, content)
            if new != cell.source:
                cell.source = new
                nbformat.write(nb, path)
                changed.append(relative)
        else:
            text = path.read_text(encoding="utf-8")
            new = replace_block(text, name, content)
            if new != text:
                path.write_text(new, encoding="utf-8")
                changed.append(relative)
    return sorted(set(changed))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.course", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; list what differs and exit 1 if anything does")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        print("\n".join(problems) if problems else "every generated block is current")
        return 1 if problems else 0
    changed = sync()
    print(f"rewrote {', '.join(changed)}" if changed else "every generated block was already current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
