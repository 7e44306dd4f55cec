"""The student edition of the course, built by nbgrader, and its publication under a git tag.

``python -m tools.student --output-dir build/student notebooks/*.ipynb`` (``make student``)
runs nbgrader's ``generate_assignment`` on the instructor notebooks, in a temporary nbgrader
course configured by ``tools/nbgrader_config.py``, and writes its release: for every notebook
a copy in which

* each region between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` is replaced by
  nbgrader's stub (``# YOUR CODE HERE`` / ``raise NotImplementedError()``); nbgrader refuses
  a solution region outside a cell marked as a solution cell;
* each written answer to a predict-first prompt (a markdown cell that nbgrader grades by hand)
  has its sample answer and rubric replaced by :data:`TEXT_STUB`, which says what to write;
* every output is cleared, so nothing of the instructor's run shows;
* the "Open in Colab" badges open the student edition, published under the git tag ``--ref``
  (:func:`default_ref`: ``v<version>-student``, from ``pyproject.toml``'s version), instead
  of the instructor edition on ``main``; and the setup cell's Colab clone checks out that tag
  (:class:`StudentEditionLinks`, the preprocessor the nbgrader configuration adds).

nbgrader is the one builder: an instructor's own nbgrader course that loads the same
configuration (TEACHING.md) releases exactly these notebooks.  The figures and the slideshow
stylesheet come along (nbgrader copies an assignment's other files).  The student edition still
runs from top to bottom: every exercise's check falls back to the course's own implementation
while the stub is unanswered (``helpers.check``).

``python -m tools.student --publish [--release v<version>] [--ref <tag>]`` publishes it: it
builds the edition from the notebooks of the release tag and commits it, as ``notebooks/``, on
top of that release's tree (README's Colab badges pointed at it too), under the tag the badges
open (:func:`publish`).  Nothing is pushed, and neither the working tree, the index nor a
branch changes.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
from nbconvert.preprocessors import Preprocessor
from nbgrader.preprocessors import ClearSolutions
from traitlets import Unicode, default
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as the package tomli (the `test` extra)
    import tomli as tomllib

from tools.notebook_tools import (
    COLAB_MAIN_LINK,
    MAIN_BRANCH,
    REPO_ROOT,
    SAFE_REF,
    SETUP_TAG,
    colab_prefix,
    repository_url,
    setup_cell_source,
)

#: What nbgrader puts where a code solution was (``ClearSolutions.code_stub["python"]``).
CODE_STUB = ClearSolutions().code_stub["python"]
#: What the student edition shows in a written answer's cell (nbgrader's
#: ``ClearSolutions.text_stub``, set by ``tools/nbgrader_config.py``), in English and Vietnamese.
TEXT_STUB = ("✍️ *Your answer* (double-click this cell to write in it). Before running: your prediction "
             "and its reason. After running: what you saw, and what your reasoning missed, if anything.\n\n"
             "*Câu trả lời của bạn* (nhấp đúp vào ô này để viết). Trước khi chạy: dự đoán của bạn và lý do. "
             "Sau khi chạy: bạn đã thấy gì, và lập luận của bạn còn thiếu điều gì (nếu có).")
#: The nbgrader configuration that makes nbgrader's release the student edition.
NBGRADER_CONFIG = Path(__file__).resolve().parent / "nbgrader_config.py"
#: The assignment the notebooks form in the temporary nbgrader course.
ASSIGNMENT = "course"
#: The student edition of release ``v<version>`` is published as ``v<version><STUDENT_SUFFIX>``.
STUDENT_SUFFIX = "-student"


def _pyproject(text: str | None = None) -> dict:
    if text is None:
        text = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def release_tag(version: str | None = None) -> str:
    """The git tag of a release: ``v<version>``, by default ``pyproject.toml``'s version."""
    return f"v{_pyproject()['project']['version'] if version is None else version}"


def default_ref(release: str | None = None) -> str:
    """The tag the student edition of ``release`` (:func:`release_tag` by default) is published
    under, which its badges open and its setup cell clones: ``<release>-student``."""
    return f"{release_tag() if release is None else release}{STUDENT_SUFFIX}"


def check_ref(ref: object) -> str:
    """``ref`` if it is a branch or tag name the student edition can be published under.

    Raises:
        TypeError: if ``ref`` is not a str.
        ValueError: if it is not a plain branch/tag name, or is ``main`` (the instructor edition).
    """
    if not isinstance(ref, str):
        raise TypeError(f"ref must be a str, got {type(ref).__name__}")
    if not SAFE_REF.fullmatch(ref) or ".." in ref or ref.endswith((".", "/", ".lock")):
        raise ValueError(f"ref must be a git branch or tag name (letters, digits, . _ / -), got {ref!r}")
    if ref == MAIN_BRANCH:
        raise ValueError(f"ref must not be {MAIN_BRANCH!r}: that branch holds the instructor edition "
                         "(solutions filled in, outputs stored)")
    return ref


class StudentEditionLinks(Preprocessor):
    """Points a notebook's links to the course repository at the student edition.

    The "Open in Colab" badges of the repository's notebooks on ``main`` are pointed at
    ``ref``, and the setup cell (tagged ``setup``) is replaced by
    ``setup_cell_source(ref, repository)``, whose Colab clone checks out ``ref``.  A setup cell
    that is not the instructor edition's current one, or a Colab link to ``main`` of another
    repository, is refused (run ``python -m tools.notebook_tools sync-setup`` on the notebook
    first), so no notebook leaves with a link to or a clone of an instructor edition.
    ``tools/nbgrader_config.py`` adds it to nbgrader's ``generate_assignment``; configure it
    there (``c.StudentEditionLinks.ref = "..."``).
    """

    ref = Unicode(help="The git tag or branch the student edition is published under "
                       "(default: v<version>-student, from pyproject.toml).").tag(config=True)
    repository = Unicode(help="The course repository's address (default: pyproject.toml's "
                              "[project.urls] Repository).").tag(config=True)

    @default("enabled")
    def _default_enabled(self) -> bool:  # nbconvert's preprocessors are off unless enabled
        return True

    @default("ref")
    def _default_ref(self) -> str:
        return default_ref()

    @default("repository")
    def _default_repository(self) -> str:
        return repository_url()

    def preprocess(self, nb: nbformat.NotebookNode, resources: dict) -> tuple[nbformat.NotebookNode, dict]:
        ref = check_ref(self.ref)
        prefix = colab_prefix(self.repository)
        instructor, student = f"{prefix}{MAIN_BRANCH}/", f"{prefix}{ref}/"
        expected = setup_cell_source(url=self.repository)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "markdown":
                cell.source = cell.source.replace(instructor, student)
                left = COLAB_MAIN_LINK.search(cell.source)
                if left:
                    name = resources.get("metadata", {}).get("name", "the notebook")
                    raise ValueError(
                        f"{name}: cell {index} links to the instructor edition on {MAIN_BRANCH} of another "
                        f"repository ({left.group(0)}); run `python -m tools.notebook_tools sync-setup` on it first")
            elif cell.cell_type == "code" and SETUP_TAG in cell.metadata.get("tags", []):
                if cell.source != expected:
                    name = resources.get("metadata", {}).get("name", "the notebook")
                    raise ValueError(
                        f"{name}: the setup cell (cell {index}) is not the instructor edition's "
                        "setup_cell_source(); run `python -m tools.notebook_tools sync-setup` on it first")
                cell.source = setup_cell_source(ref, self.repository)
        return nb, resources


def nbgrader_config(ref: str | None = None, repository: str | None = None) -> Config:
    """The configuration ``tools/nbgrader_config.py`` gives nbgrader, with ``ref`` and
    ``repository`` (when given) set on :class:`StudentEditionLinks`."""
    config = PyFileConfigLoader(NBGRADER_CONFIG.name, path=str(NBGRADER_CONFIG.parent)).load_config()
    if ref is not None:
        config.StudentEditionLinks.ref = check_ref(ref)
    if repository is not None:
        config.StudentEditionLinks.repository = repository
    return config


def _copy_notebooks(notebooks: list[Path], folder: Path) -> None:
    names = [path.name for path in notebooks]
    if len(set(names)) != len(names):
        twice = sorted({name for name in names if names.count(name) > 1})
        raise ValueError(f"notebooks: two notebooks share a file name: {twice}")
    folder.mkdir(parents=True)
    for path in notebooks:
        if path.suffix != ".ipynb" or not path.is_file():
            raise ValueError(f"notebooks: {path} is not a notebook file")
        shutil.copy2(path, folder / path.name)
    for parent in dict.fromkeys(path.parent for path in notebooks):  # figures, rise.css, ...
        for companion in ("figures", "rise.css"):
            source = parent / companion
            if source.is_dir():
                shutil.copytree(source, folder / companion, dirs_exist_ok=True)
            elif source.is_file():
                shutil.copy2(source, folder / companion)


def write_edition(notebooks: list[Path], output_dir: Path, ref: str | None = None,
                  repository: str | None = None) -> list[Path]:
    """Write the student edition of ``notebooks`` into ``output_dir``: nbgrader's
    ``generate_assignment`` release of them, configured by ``tools/nbgrader_config.py``.

    Args:
        notebooks: the instructor notebooks (their ``figures/`` and ``rise.css`` come along).
        output_dir: where the edition goes (created; files of the same names are replaced).
        ref: the tag the edition is published under; :func:`default_ref` by default.
        repository: the course repository's address; ``pyproject.toml``'s by default.

    Returns:
        The paths of the written notebooks, in the order of ``notebooks``.

    Raises:
        TypeError, ValueError: a bad ``ref`` (:func:`check_ref`) or notebook list.
        RuntimeError: nbgrader refused a notebook (a solution region unclosed, nested or outside
            a solution cell; a setup cell that is not current), naming the reason.
    """
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log

    notebooks = [Path(path) for path in notebooks]
    config = nbgrader_config(ref, repository)
    with tempfile.TemporaryDirectory(prefix="student-edition-") as tmp:
        course = Path(tmp)
        _copy_notebooks(notebooks, course / "source" / ASSIGNMENT)
        config.CourseDirectory.root = str(course)
        config.CourseDirectory.course_id = "student-edition"
        coursedir = CourseDirectory(config=config)
        coursedir.assignment_id = ASSIGNMENT
        converter = GenerateAssignment(coursedir=coursedir, config=config)
        converter.force = True
        # nbgrader records the assignment in a gradebook of the temporary course; it sets that
        # database up with the `alembic` command installed next to this Python.
        path = os.environ.get("PATH", "")
        os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), path])
        try:
            result = capture_log(converter)
        finally:
            os.environ["PATH"] = path
        if not result["success"]:
            log = result.get("log", "") + result.get("error", "")
            reasons = [line for line in re.findall(r"^\s*((?:\w+\.)*\w*(?:Error|Exception): .*)$", log, re.MULTILINE)
                       if "NbGraderException" not in line]
            reason = reasons[-1] if reasons else "see its log"
            raise RuntimeError(f"nbgrader generate_assignment failed: {reason}\n{log}")
        release = course / "release" / ASSIGNMENT
        output_dir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(release, output_dir, dirs_exist_ok=True)
    return [output_dir / path.name for path in notebooks]


# -- publishing ------------------------------------------------------------------------------
def _git(repo: Path, *args: str, env: dict[str, str] | None = None, data: bytes | None = None) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], input=data, capture_output=True,
                          env=None if env is None else {**os.environ, **env})
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode()


def publish(repo: Path = REPO_ROOT, release: str | None = None, ref: str | None = None) -> str:
    """Commit the student edition of ``release`` onto the tag ``ref`` of the git repository ``repo``.

    The new commit's parent is the release's commit, and its tree is the release's tree with
    every ``notebooks/*.ipynb`` replaced by its student edition, built (:func:`write_edition`)
    from the release's own notebooks with the repository address of the release's
    ``pyproject.toml``, and with the Colab badges of its ``README.md`` pointed at ``ref`` too.
    So the badges and the setup cell's clone of the published notebooks point at the tag that
    holds them, and the course code a Colab clone gets is the release's.
    Git plumbing with a temporary index: the working tree, the index and the branches are left
    alone, and nothing is pushed (``git push origin <ref>`` does).

    Args:
        repo: the course's git repository.
        release: the release tag; :func:`release_tag` of ``repo``'s ``pyproject.toml`` by default.
        ref: the tag to create; ``<release>-student`` (:func:`default_ref`) by default.

    Returns:
        The new commit's hash.

    Raises:
        RuntimeError: the release tag is missing, ``ref`` already exists, or git or nbgrader failed.
        TypeError, ValueError: a bad ``ref``.
    """
    repo = Path(repo)
    if release is None:
        release = release_tag(_pyproject((repo / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"])
    ref = check_ref(default_ref(release) if ref is None else ref)
    try:
        commit = _git(repo, "rev-parse", "--verify", "--quiet", f"refs/tags/{release}^{{commit}}").strip()
    except RuntimeError:
        raise RuntimeError(f"release: no tag {release!r} in {repo}; tag the release first "
                           f"(git tag {release} <commit>)") from None
    if subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"refs/tags/{ref}"],
                      capture_output=True).returncode == 0:
        raise RuntimeError(f"ref: the tag {ref!r} exists already in {repo}; a published edition is not "
                           "replaced (delete the tag on purpose, or publish under another --ref)")
    repository = _pyproject(_git(repo, "show", f"{commit}:pyproject.toml"))["project"]["urls"]["Repository"]
    with tempfile.TemporaryDirectory(prefix="student-publish-") as tmp:
        work = Path(tmp)
        index = {"GIT_INDEX_FILE": str(work / "index")}
        (work / "release").mkdir()
        _git(repo, "--work-tree", str(work / "release"), "checkout", commit, "--", "notebooks", env=index)
        notebooks = sorted((work / "release" / "notebooks").glob("*.ipynb"))
        if not notebooks:
            raise RuntimeError(f"release: {release} has no notebooks/*.ipynb")
        edition = write_edition(notebooks, work / "edition", ref, repository)
        _git(repo, "read-tree", commit, env=index)
        for path in edition:
            blob = _git(repo, "hash-object", "-w", str(path)).strip()
            _git(repo, "update-index", "--cacheinfo", f"100644,{blob},notebooks/{path.name}", env=index)
        if "README.md" in _git(repo, "ls-tree", "--name-only", commit).splitlines():
            readme, prefix = _git(repo, "show", f"{commit}:README.md"), colab_prefix(repository)
            pointed = readme.replace(f"{prefix}{MAIN_BRANCH}/", f"{prefix}{ref}/")
            blob = _git(repo, "hash-object", "-w", "--stdin", data=pointed.encode()).strip()
            _git(repo, "update-index", "--cacheinfo", f"100644,{blob},README.md", env=index)
        tree = _git(repo, "write-tree", env=index).strip()
    message = (f"Student edition of {release}: solutions replaced by stubs, outputs cleared; its Colab "
               f"badges and setup cells open and clone {ref}\n")
    published = _git(repo, "commit-tree", tree, "-p", commit, data=message.encode()).strip()
    _git(repo, "tag", ref, published)
    return published


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.student", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="the instructor notebooks to build from")
    parser.add_argument("--output-dir", type=Path, default=Path("build/student"))
    parser.add_argument("--ref", help="tag the badges open and the setup cell clones "
                                      "(default: <release>-student)")
    parser.add_argument("--publish", action="store_true",
                        help="build the edition of --release and commit it under the tag --ref (no push)")
    parser.add_argument("--release", help="with --publish: the release tag (default: v<pyproject version>)")
    args = parser.parse_args(argv)
    try:
        return _run(parser, args)
    except (RuntimeError, ValueError) as error:
        print(f"python -m tools.student: error: {error}", file=sys.stderr)
        return 1


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.publish:
        if args.notebooks:
            parser.error("--publish builds from the release's own notebooks; give no notebooks")
        release = args.release or release_tag()
        ref = args.ref or default_ref(release)
        commit = publish(REPO_ROOT, release, ref)
        print(f"published the student edition of {release} as tag {ref} ({commit[:12]}); "
              f"to make it public: git push origin {ref}", flush=True)
        return 0
    if args.release:
        parser.error("--release goes with --publish")
    if not args.notebooks:
        parser.error("give the notebooks to build from (or --publish)")
    for target in write_edition(args.notebooks, args.output_dir, args.ref):
        print(f"wrote {target}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
