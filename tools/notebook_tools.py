"""Maintainer tooling for the course notebooks (not used inside the notebooks).

``python -m tools.notebook_tools execute notebooks/*.ipynb`` re-executes notebooks in
place with nbclient, the way ``make notebooks`` does, so that the stored outputs are what
nbval compares against.  The result is deterministic: running it twice changes nothing.

* no per-cell timing metadata is recorded;
* widget state is not stored in the notebook (it holds random ids and large images;
  ``make html`` stores it in the exported handouts instead);
* the random model ids of widget outputs are replaced by ids derived from the notebook
  name and the output's position;
* consecutive printed chunks are merged into one stream output (how the kernel happens to
  flush them depends on timing), and carriage-return progress updates are collapsed.

``execute`` runs every kernel with the machine's own CPU code paths, as nbval and learners do:
the stored outputs are written so that they do not depend on them (printed numbers rounded to
what is stable, claims of long experiments checked on stored studies), and the tests compare them
on this machine and again with other numerics (``make test-all``).

``python -m tools.notebook_tools sync-setup notebooks/*.ipynb`` rewrites the two places a
notebook names the course repository, its setup cell (:func:`setup_cell_source`) and its "Open
in Colab" badges (:func:`colab_url`), to the address in ``pyproject.toml`` and changes nothing
else in the file.  A fork changes that address there, once (TEACHING.md, "Two editions").
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
import uuid
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert.preprocessors import CoalesceStreamsPreprocessor

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as the package tomli (the `test` extra)
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parent.parent
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
CELL_TIMEOUT_S = 600


def repository_url() -> str:
    """The course repository's address, configured once in ``pyproject.toml``."""
    with open(REPO_ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["project"]["urls"]["Repository"]


#: The branch the instructor edition (``notebooks/`` with solutions and outputs) lives on.
MAIN_BRANCH = "main"


def colab_url(notebook: str, ref: str = MAIN_BRANCH, url: str | None = None) -> str:
    """The "Open in Colab" address of ``notebooks/<notebook>`` on the git branch or tag ``ref``
    of the repository ``url`` (by default :func:`repository_url`)."""
    return f"{colab_prefix(url)}{ref}/notebooks/{notebook}"


def colab_prefix(url: str | None = None) -> str:
    """What every Colab address of a file of the repository ``url`` starts with, up to the ref."""
    path = (repository_url() if url is None else url).removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{path}/blob/"


SETUP_TAG = "setup"

SETUP_TEMPLATE = """\
# Setup: works in JupyterLab and on Google Colab, where it first fetches the course and
# installs only what Colab lacks (tools/colab_setup.py: no upgrades, so no restart).
import os
import runpy
import subprocess
import sys

if "google.colab" in sys.modules:
    course = os.environ.get("{dir_variable}", "/content/course")
    if not os.path.isdir(course):
        url = "{url}"
        subprocess.run(["git", "clone", "-q", "--depth=1",{branch} url, course], check=True)
    runpy.run_path(os.path.join(course, "tools", "colab_setup.py"))["install_missing"](course)
    sys.path.insert(0, course)

import helpers

device = helpers.setup_notebook(seed=0)"""

#: A branch or tag name that is safe to write into a link and a Python string literal.
SAFE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")

#: The environment variable that moves the Colab clone away from ``/content/course`` (the
#: Colab-like test, ``make test-colab``, clones into a temporary folder).
COURSE_DIR_VARIABLE = "INIT_NORM_COURSE_DIR"


def setup_cell_source(ref: str | None = None, url: str | None = None) -> str:
    """The source every notebook's setup cell must have (tagged ``setup``).

    Args:
        ref: the git branch or tag the Colab clone checks out; ``None`` (the instructor
            edition in ``notebooks/``) clones the default branch, and the source is then the
            one stored in the notebooks.  The student edition passes the tag it is published
            under (``tools/student.py``).
        url: the repository to clone; :func:`repository_url` by default.
    """
    if ref is not None and (not isinstance(ref, str) or not SAFE_REF.fullmatch(ref) or ".." in ref):
        raise ValueError(f"ref must be a git branch or tag name (letters, digits, . _ / -), got {ref!r}")
    branch = "" if ref is None else f' "--branch", "{ref}",'
    return SETUP_TEMPLATE.format(url=repository_url() if url is None else url, branch=branch,
                                 dir_variable=COURSE_DIR_VARIABLE)


def clone_command(source: str) -> tuple[list[str], str]:
    """What a setup cell's Colab clone runs, read from ``source``'s syntax tree: the ``git
    clone`` command (its variables ``url`` and ``course`` left as those names) and the address
    the cell assigns to ``url``.  For checking built notebooks (``tests/``).

    Raises:
        ValueError: if ``source`` does not hold exactly one ``git clone`` list and one ``url = "..."``.
    """
    tree = ast.parse(source)
    urls = [node.value.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
            and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["url"]
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)]
    clones = [node for node in ast.walk(tree) if isinstance(node, ast.List)
              and [getattr(item, "value", None) for item in node.elts[:2]] == ["git", "clone"]]
    if len(urls) != 1 or len(clones) != 1:
        raise ValueError(f"source: {len(clones)} git clone commands and {len(urls)} url assignments, not one each")
    command = [str(item.value) if isinstance(item, ast.Constant) else ast.unparse(item) for item in clones[0].elts]
    return command, urls[0]


#: An "Open in Colab" link to a notebook of the instructor edition of any GitHub repository.
COLAB_MAIN_LINK = re.compile(
    r"https://colab\.research\.google\.com/github/[^/\s)]+/[^/\s)]+/blob/" + MAIN_BRANCH
    + r"/notebooks/([^/\s)]+\.ipynb)")


def sync_colab_links(source: str) -> str:
    """``source`` (a markdown cell's) with every "Open in Colab" link to a notebook on the main
    branch of a GitHub repository pointed at that notebook in :func:`repository_url`."""
    return COLAB_MAIN_LINK.sub(lambda match: colab_url(match.group(1)), source)


def _notebook_json(nb: dict) -> str:
    """A notebook as nbformat writes it (so unchanged notebooks stay byte-identical)."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def sync_setup_cell(path: Path) -> bool:
    """Rewrite the source of ``path``'s setup cell to :func:`setup_cell_source`, and its
    markdown cells' "Open in Colab" links to :func:`colab_url` (:func:`sync_colab_links`):
    the places a notebook names the course repository.

    Nothing else changes: not the cells' outputs, ids, metadata or execution counts, nor any
    other cell or text.  A notebook not stored the way nbformat writes it is refused rather
    than reformatted.

    Returns:
        Whether the file changed.

    Raises:
        TypeError: if ``path`` is not a path.
        ValueError: if the notebook does not have exactly one code cell tagged ``setup``, or
            is not stored in nbformat's layout.
    """
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a path, got {type(path).__name__}")
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    nb = json.loads(text)
    if _notebook_json(nb) != text:
        raise ValueError(f"path: {path} is not stored in nbformat's layout; refusing to reformat it")
    setup = [cell for cell in nb.get("cells", []) if cell.get("cell_type") == "code"
             and SETUP_TAG in cell.get("metadata", {}).get("tags", [])]
    if len(setup) != 1:
        raise ValueError(f"path: {path} has {len(setup)} code cells tagged {SETUP_TAG!r}, not one")
    changed = False
    source = setup_cell_source().splitlines(keepends=True)
    if setup[0]["source"] != source and setup[0]["source"] != "".join(source):
        setup[0]["source"], changed = source, True
    for cell in nb["cells"]:
        if cell.get("cell_type") == "markdown":
            text = "".join(cell["source"])
            synced = sync_colab_links(text)
            if synced != text:
                cell["source"], changed = synced.splitlines(keepends=True), True
    if changed:
        path.write_text(_notebook_json(nb), encoding="utf-8")
    return changed


def colab_badge(notebook: str) -> str:
    """The markdown "Open in Colab" badge for ``notebooks/<notebook>``."""
    return (
        "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"({colab_url(notebook)})"
    )


def new_course_notebook(notebook: str, cells: list[tuple[str, str, dict]]) -> nbformat.NotebookNode:
    """A notebook in the course's conventions from ``(kind, source, metadata)`` triples.

    ``kind`` is ``"md"`` or ``"code"``; the literal ``{badge}`` in a markdown source is
    replaced by the notebook's Colab badge and the code source ``{setup}`` by the standard
    setup cell.  Every cell gets slideshow metadata: markdown cells that open with a ``#``
    or ``##`` heading start a slide, the setup cell is skipped, everything else continues
    the current slide unless the metadata says otherwise.  A live panel should open a
    subslide of its own (``{"slideshow": {"slide_type": "subslide"}}``), so it is seen whole.
    """
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["rise"] = {"scroll": True}  # RISE: a slide taller than the screen scrolls
    for kind, source, metadata in cells:
        metadata = dict(metadata)
        if kind == "md":
            cell = nbformat.v4.new_markdown_cell(source.replace("{badge}", colab_badge(notebook)))
            default = "slide" if source.lstrip().startswith(("# ", "## ")) else "-"
        elif kind == "code":
            if source == "{setup}":
                source = setup_cell_source()
                metadata.setdefault("tags", []).append(SETUP_TAG)
            cell = nbformat.v4.new_code_cell(source)
            default = "skip" if SETUP_TAG in metadata.get("tags", []) else "-"
        else:
            raise ValueError(f"kind must be 'md' or 'code', got {kind!r}")
        metadata.setdefault("slideshow", {"slide_type": default})
        cell.metadata.update(metadata)
        nb.cells.append(cell)
    return nb


def stable_widget_ids(nb: nbformat.NotebookNode, name: str) -> None:
    """Replace the random model ids of widget outputs by ids derived from their position."""
    for index, cell in enumerate(nb.cells):
        for number, output in enumerate(cell.get("outputs", [])):
            view = output.get("data", {}).get(WIDGET_MIME)
            if view is not None:
                view["model_id"] = uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/{index}/{number}").hex
    nb.metadata.pop("widgets", None)


def notebook_client(
    nb: nbformat.NotebookNode, path: Path, *, widget_state: bool = False, timeout: int = CELL_TIMEOUT_S
) -> NotebookClient:
    """An nbclient client that runs ``nb`` (read from ``path``) the course's way: a fresh
    ``python3`` kernel started in the notebook's folder, no timing metadata."""
    return NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
        store_widget_state=widget_state,
    )


def execute(path: Path, output: Path | None = None, *, widget_state: bool = False) -> None:
    """Execute a notebook in a fresh kernel, in its own folder, with the machine's own CPU code
    paths (the caller's environment), and save it.

    Args:
        path: the notebook to run.
        output: where to write the executed notebook (``path`` itself by default).
        widget_state: store the widgets' state in the notebook's metadata, so exported
            pages show each panel's default picture (``make html``); the notebooks in
            the repository are saved without it.
    """
    nb = nbformat.read(path, as_version=4)
    # A claim the run contradicts fails here, as under the tests (helpers.claims.STRICT_ENV).
    strict = {**os.environ, "INIT_NORM_STRICT_CLAIMS": "1"}
    notebook_client(nb, path, widget_state=widget_state).execute(env=strict)
    CoalesceStreamsPreprocessor().preprocess(nb, {})
    if not widget_state:
        stable_widget_ids(nb, path.name)
    output = path if output is None else output
    output.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.notebook_tools")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("execute", help="re-execute notebooks in place")
    run.add_argument("notebooks", nargs="+", type=Path)
    run.add_argument("--output-dir", type=Path, help="write executed copies here instead")
    run.add_argument("--widget-state", action="store_true", help="store widget state")
    sync = commands.add_parser(
        "sync-setup", help="rewrite each notebook's setup cell to setup_cell_source(), nothing else")
    sync.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.command == "sync-setup":
        for path in args.notebooks:
            changed = sync_setup_cell(path)
            print(f"{'updated' if changed else 'already current'}: {path}", flush=True)
        return 0
    for path in args.notebooks:
        print(f"executing {path}", flush=True)
        output = None if args.output_dir is None else args.output_dir / path.name
        execute(path, output, widget_state=args.widget_state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
