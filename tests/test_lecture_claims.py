"""Every notebook from 01 on ends with "The lecture's claims, checked": each claim of the lectures
it mirrors, quoted with the lecture's title, and its verdict.  A measured verdict names the checks
that measure it, and each of those checks must have printed its ``✓`` line in the notebook's
stored outputs (which strict nbval keeps current), so a verdict cannot outlive its data.

The section is a markdown cell headed ``## The lecture's claims, checked`` holding one table::

    | The lecture says | Verdict | Where | Checked by |
    | --- | --- | --- | --- |
    | "c = 3 gives NaN" (*Khởi tạo tham số*) | does not hold here | §1 | `the c = 3 norm stays finite` |
    | "LayerNorm improves generalization" (*Phân tích …*) | not tested | — | needs a held-out benchmark … |

Verdicts: ``holds``, ``holds with a correction``, ``does not hold here`` (each needs at least
one check, in backticks: the claim text of an ``expect(...)`` or of a study's claim) and
``not tested`` (the last column says why, or where the claim is taken up).

Students do not have the lecture notes, so a section that tests a claim must state it: every
quotation of a measured row appears, word for word, in a markdown cell of a section the row's
"Where" names (``§2``, ``§2, §5``, ``§2–3``), and that cell names the lecture by its title.  The
notes' informal asides (the note-taker's "ko hiểu", *I don't get it*) are never quoted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from tools.course import load_course

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb") if not p.name.startswith("00_"))
HEADING = "## The lecture's claims, checked"
MEASURED = ("holds", "holds with a correction", "does not hold here")
VERDICTS = (*MEASURED, "not tested")
QUOTE = re.compile(r"[\"“][^\"”]{3,}[\"”]")
SECTION = re.compile(r"§\s*(\d+)(?:\s*[–-]\s*(\d+))?")
#: The note-taker's asides in the lecture notes, which a notebook never quotes.
INFORMAL = ("ko hiểu", "k hiểu")
CHECK = re.compile(r"`([^`]+)`")
COURSE = load_course()


@dataclass(frozen=True)
class Verdict:
    """One row of the table."""

    claim: str
    verdict: str
    where: str
    checked_by: str

    @property
    def checks(self) -> list[str]:
        """The claim texts of the checks this verdict rests on."""
        return [text.strip() for text in CHECK.findall(self.checked_by)]


def claims_table(nb: nbformat.NotebookNode) -> list[Verdict]:
    """The rows of the notebook's "The lecture's claims, checked" table (ValueError if absent)."""
    cells = [c for c in nb.cells if c.cell_type == "markdown" and c.source.lstrip().startswith(HEADING)]
    if len(cells) != 1:
        raise ValueError(f"exactly one markdown cell must start with {HEADING!r}, found {len(cells)}")
    rows = [line for line in cells[0].source.splitlines() if line.lstrip().startswith("|")]
    if len(rows) < 3:
        raise ValueError("the section needs a table with a header, a separator and at least one row")
    verdicts = []
    for line in rows[2:]:
        # Split on | that is not inside backticks (a check's text may contain one).
        parts = [p.strip() for p in re.split(r"\|(?=(?:[^`]*`[^`]*`)*[^`]*$)", line.strip().strip("|"))]
        if len(parts) != 4:
            raise ValueError(f"a row has 4 columns (claim, verdict, where, checked by): {line}")
        verdicts.append(Verdict(*parts))
    return verdicts


def passed_checks(nb: nbformat.NotebookNode) -> set[str]:
    """The claim texts of every ``✓`` line in the stored outputs."""
    passed = set()
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = output.get("text", "") if output.get("output_type") == "stream" else ""
            for line in text.splitlines():
                if line.startswith("✓ "):
                    passed.add(re.sub(r" \((measured|expected)\b.*\)$", "", line[2:]).strip())
    return passed


def _plain(text: str) -> str:
    """``text`` with curly quotes made straight and every run of whitespace one space."""
    return " ".join(text.replace("“", '"').replace("”", '"').split())


def section_cells(nb: nbformat.NotebookNode) -> dict[int, list[str]]:
    """The markdown of each numbered section (``## N. …`` up to the next ``## ``), cell by cell,
    a cell that holds several headings split at them."""
    sections: dict[int, list[str]] = {}
    number = None
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for part in re.split(r"(?m)^(?=## )", cell.source):
            if part.startswith("## "):
                heading = re.match(r"## (\d+)\.", part)
                number = int(heading.group(1)) if heading else None
            if number is not None and part.strip():
                sections.setdefault(number, []).append(_plain(part))
    return sections


def where_sections(where: str) -> set[int]:
    """The section numbers a "Where" entry names: ``§2, §5`` → {2, 5}; ``§2–3`` → {2, 3}."""
    numbers: set[int] = set()
    for first, last in SECTION.findall(where):
        numbers.update(range(int(first), int(last or first) + 1))
    return numbers


def unquoted(nb: nbformat.NotebookNode, row: Verdict, titles: list[str]) -> list[str]:
    """The quotations of ``row`` that no cell of its sections states together with the lecture's title."""
    sections = section_cells(nb)
    named = [title for title in titles if title in row.claim]
    cells = [cell for number in where_sections(row.where) for cell in sections.get(number, [])]
    missing = []
    for quote in QUOTE.findall(row.claim):
        inner = _plain(quote)[1:-1]
        if not any(inner in cell and any(title in cell for title in named) for cell in cells):
            missing.append(quote)
    return missing


def problems(nb: nbformat.NotebookNode, titles: list[str]) -> list[str]:
    """What is wrong with the notebook's verdict table: an empty list when nothing is."""
    try:
        table = claims_table(nb)
    except ValueError as error:
        return [str(error)]
    found: list[str] = []
    passed = passed_checks(nb)
    for row in table:
        name = row.claim[:60]
        if not QUOTE.search(row.claim):
            found.append(f"quote the lecture's claim in quotation marks: {name}")
        if not any(title in row.claim for title in titles):
            found.append(f"name the lecture by its title ({' / '.join(titles)}): {name}")
        verdict = row.verdict.strip("*").strip().lower()
        if verdict not in VERDICTS:
            found.append(f"verdict {row.verdict!r} is not one of {VERDICTS}: {name}")
        elif verdict in MEASURED:
            if not row.checks:
                found.append(f"a measured verdict names its checks in backticks: {name}")
            if not where_sections(row.where):
                found.append(f"a measured verdict says in which section (§N) it is measured: {name}")
            found += [f"state {quote} with the lecture's title in {row.where}, so the section stands "
                      f"without the notes: {name}" for quote in unquoted(nb, row, titles)]
            found += [f"check `{c}` printed no ✓ line in the stored outputs: {name}" for c in row.checks
                      if c not in passed]
        elif not row.checked_by.strip(" —-"):
            found.append(f"say why a claim is not tested, or where it is taken up: {name}")
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found += [f"the note-taker's aside {aside!r} is quoted" for aside in INFORMAL
                      if aside in cell.source.lower()]
    return found


BODY = 'The lecture *Khởi tạo tham số* says that “c = 3 gives  NaN”; we check it.'


def _notebook(rows: list[str], outputs: str = "", body: str = BODY) -> nbformat.NotebookNode:
    table = "\n".join([HEADING, "", "| The lecture says | Verdict | Where | Checked by |",
                       "| --- | --- | --- | --- |", *rows])
    code = nbformat.v4.new_code_cell("expect(...)")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text=outputs)]
    section = nbformat.v4.new_markdown_cell(f"## 1. The claim\n\n{body}")
    return nbformat.v4.new_notebook(cells=[section, code, nbformat.v4.new_markdown_cell(table)])


TITLES = ["Khởi tạo tham số"]
GOOD = '| "c = 3 gives NaN" (*Khởi tạo tham số*) | does not hold here | §1 | `the norm stays finite` |'


def test_a_table_whose_checks_passed_is_accepted() -> None:
    nb = _notebook([GOOD, '| "x helps" (*Khởi tạo tham số*) | not tested | — | needs a benchmark |'],
                   "✓ the norm stays finite (measured 3, expected ≤ 10)\n")
    assert problems(nb, TITLES) == []
    assert [row.verdict for row in claims_table(nb)] == ["does not hold here", "not tested"]


@pytest.mark.parametrize(("rows", "outputs", "message"), [
    ([GOOD], "", "printed no ✓ line"),
    ([GOOD], "✗ the norm stays finite (measured 30, expected ≤ 10)\n", "printed no ✓ line"),
    ([GOOD.replace("does not hold here", "true")], "", "is not one of"),
    ([GOOD.replace("`the norm stays finite`", "the norm")], "", "names its checks"),
    ([GOOD.replace('"c = 3 gives NaN"', "c = 3 gives NaN")], "✓ the norm stays finite\n", "quotation marks"),
    ([GOOD.replace("Khởi tạo tham số", "the notes")], "✓ the norm stays finite\n", "by its title"),
    (['| "x" (*Khởi tạo tham số*) | not tested | — | — |'], "", "say why"),
    ([GOOD.replace("§1", "—")], "✓ the norm stays finite\n", "in which section"),
    ([GOOD.replace("§1", "§2")], "✓ the norm stays finite\n", "stands without the notes"),
    ([GOOD.replace("gives NaN", "gives inf")], "✓ the norm stays finite\n", "stands without the notes"),
    (["| a | b |"], "", "4 columns"),
    ([], "", "at least one row"),
])
def test_a_verdict_without_its_data_is_caught(rows: list[str], outputs: str, message: str) -> None:
    found = problems(_notebook(rows, outputs), TITLES)
    assert any(message in p for p in found), found


@pytest.mark.parametrize("body", [
    "The lecture says that “c = 3 gives NaN”.",  # the quote without the title
    "*Khởi tạo tham số* is the lecture. c = 3 gives a large norm.",  # the title without the quote
    "The lecture *Khởi tạo tham số* says “c = 3 gives NaN” (ko hiểu).",  # an aside quoted
])
def test_a_section_that_needs_the_notes_is_caught(body: str) -> None:
    found = problems(_notebook([GOOD], "✓ the norm stays finite\n", body), TITLES)
    assert found, body


def test_a_quote_is_found_in_its_section_across_cells_and_ranges() -> None:
    nb = _notebook([GOOD.replace("§1", "§1–2")], "✓ the norm stays finite\n", "No quote here.")
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("### More\n" + BODY.replace("says", "\nsays")))
    assert problems(nb, TITLES) == []
    assert where_sections("§2, §5, exercise 3") == {2, 5} and where_sections("§2–4") == {2, 3, 4}


def test_a_notebook_without_the_section_is_caught() -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 01 · Title")])
    assert problems(nb, TITLES) == [f"exactly one markdown cell must start with {HEADING!r}, found 0"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_lecture_claim_has_a_verdict_tied_to_its_checks(path: Path) -> None:
    titles = [lecture.title for lecture in COURSE.lectures.values()]
    found = problems(nbformat.read(path, as_version=4), titles)
    assert not found, "\n".join(found)
