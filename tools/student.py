"""The student edition of the course: solutions replaced by stubs, outputs cleared.

``python -m tools.student --output-dir build/student notebooks/*.ipynb`` (``make student``)
writes, for every instructor notebook, a copy in which

* each region between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` is replaced by
  nbgrader's stub (``# YOUR CODE HERE`` / ``raise NotImplementedError()``), by nbgrader's own
  ``ClearSolutions`` preprocessor, which also refuses a solution region outside a cell
  marked as a solution cell;
* every output is cleared (nbgrader's ``ClearOutput``), so nothing of the instructor's run
  shows;
* the "Open in Colab" badge opens the student edition, published under the git branch or tag
  ``--ref`` (``student`` by default), instead of the instructor notebook on ``main``.

The figures the notebooks show from ``notebooks/figures`` are copied alongside. The
student edition still runs from top to bottom: every exercise's check falls back to the
course's own implementation while the stub is unanswered (``helpers.check``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearOutput, ClearSolutions

#: What nbgrader puts where a code solution was (``ClearSolutions.code_stub["python"]``).
CODE_STUB = ClearSolutions().code_stub["python"]
#: Files next to the notebooks that they need (images, the slideshow stylesheet).
COMPANIONS = ("figures", "rise.css")

_BADGE = re.compile(r"(https://colab\.research\.google\.com/github/[^)\s]+?/blob/)main(/notebooks/)")


def student_notebook(nb: nbformat.NotebookNode, ref: str = "student") -> nbformat.NotebookNode:
    """The student edition of one instructor notebook (a new object; ``nb`` is unchanged).

    Args:
        nb: the instructor notebook.
        ref: the git branch or tag the student edition is published under; its Colab badge
            opens the notebook there.

    Raises:
        TypeError: if ``nb`` is not a notebook node or ``ref`` is not a str.
        ValueError: if ``ref`` is not a plain branch/tag name.
        RuntimeError: (nbgrader) if a solution region is unclosed, nested, or outside a cell
            marked as a solution cell.
    """
    if not isinstance(nb, nbformat.NotebookNode):
        raise TypeError(f"nb must be an nbformat.NotebookNode, got {type(nb).__name__}")
    if not isinstance(ref, str):
        raise TypeError(f"ref must be a str, got {type(ref).__name__}")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]*", ref) or ".." in ref:
        raise ValueError(f"ref must be a git branch or tag name (letters, digits, . _ / -), got {ref!r}")
    student = nbformat.reads(nbformat.writes(nb), as_version=4)  # a deep copy
    student, _ = ClearSolutions().preprocess(student, {})
    student, _ = ClearOutput().preprocess(student, {})
    for cell in student.cells:
        if cell.cell_type == "markdown":
            cell.source = _BADGE.sub(rf"\g<1>{ref}\g<2>", cell.source)
    return student


def write_edition(notebooks: list[Path], output_dir: Path, ref: str = "student") -> list[Path]:
    """Write the student edition of ``notebooks`` into ``output_dir``; return the new paths."""
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        target = output_dir / path.name
        nbformat.write(student_notebook(nbformat.read(path, as_version=4), ref), target)
        written.append(target)
    for folder in {path.parent for path in notebooks}:
        for name in COMPANIONS:
            source = folder / name
            if source.is_dir():
                shutil.copytree(source, output_dir / name, dirs_exist_ok=True)
            elif source.is_file():
                shutil.copy2(source, output_dir / name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.student", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--output-dir", type=Path, default=Path("build/student"))
    parser.add_argument("--ref", default="student", help="branch or tag the Colab badges open")
    args = parser.parse_args(argv)
    for target in write_edition(args.notebooks, args.output_dir, args.ref):
        print(f"wrote {target}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
