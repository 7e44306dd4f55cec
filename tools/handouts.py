"""Offline handouts: executed notebooks exported to self-contained HTML pages and slide decks.

``make html`` and ``make slides`` drive this module, and need no network:

1. notebooks are executed with their widget state saved (``tools.notebook_tools``), so a
   panel shows its default picture in the static page;
2. ``html`` / ``slides``: nbconvert exports every executed notebook, with images embedded and
   every script pointed at ``../vendor/``, plus an ``index.html`` listing them;
3. the JavaScript those pages load (reveal.js, require.js, jQuery, the Jupyter widgets HTML
   manager and MathJax 2) is committed in ``tools/vendor/`` (:data:`VENDOR_DIR`), trimmed
   to the files the pages use.  Every export checks each of those files against
   ``tools/vendor/SHA256SUMS`` and copies them next to the pages (``build/vendor/``), so
   the whole ``build/`` folder opens offline, e.g. from a USB stick.

Only ``python -m tools.handouts vendor`` uses the network (and npm): it downloads the pinned
:data:`VENDOR_PACKAGES` again, keeps the files matching :data:`VENDOR_FILES` plus each
package's license, and rewrites ``SHA256SUMS``.  It refreshes the committed copy; see
``tools/vendor/README.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

import nbformat
from nbconvert import HTMLExporter, SlidesExporter

#: The committed, trimmed JavaScript the exported pages load (not installed with ``helpers``).
VENDOR_DIR: Path = Path(__file__).resolve().parent / "vendor"
#: Checksum file of a vendor folder (``sha256sum`` format, paths relative to the folder).
CHECKSUMS = "SHA256SUMS"
#: reveal.js theme of the slide decks (nbconvert's default) and MathJax 2 configuration.
REVEAL_THEME = "simple"
MATHJAX_CONFIG = "TeX-AMS_CHTML-full"

#: npm packages vendored for offline pages: folder name -> package spec.
VENDOR_PACKAGES: dict[str, str] = {
    "reveal.js": "reveal.js@4.6.1",
    "requirejs": "requirejs@2.3.7",
    "html-manager": "@jupyter-widgets/html-manager@1.0.15",
    "mathjax": "mathjax@2.7.9",
    "jquery": "jquery@2.2.4",
}
#: The files kept of each package (``fnmatch`` patterns, ``*`` also matches ``/``), besides
#: its license: what the pages were seen to request in Chromium, plus whatever MathJax's
#: CommonHTML output and TeX input may load lazily for other formulas (font data, woff
#: fonts, TeX extensions, operator tables) and its menu's help dialog.  Everything else
#: (other MathJax outputs and fonts, source maps, non-AMD builds, sources) is dropped.
VENDOR_FILES: dict[str, tuple[str, ...]] = {
    "reveal.js": ("dist/reveal.js", "dist/reveal.css", f"dist/theme/{REVEAL_THEME}.css",
                  "plugin/notes/notes.js"),
    "requirejs": ("require.js",),
    # embed-amd.js bundles its dependencies; embed.js.LICENSE.txt lists their licenses.
    "html-manager": ("dist/embed-amd.js", "dist/embed.js.LICENSE.txt"),
    "mathjax": ("MathJax.js", f"config/{MATHJAX_CONFIG}.js", "config/Safe.js",
                "extensions/Safe.js", "extensions/HelpDialog.js", "extensions/TeX/*.js",
                "jax/input/TeX/*.js", "jax/element/mml/*.js", "jax/output/CommonHTML/*.js",
                "fonts/HTML-CSS/TeX/woff/*.woff"),
    "jquery": ("dist/jquery.min.js",),
}
#: A package's license file, at its top level.
LICENSE_FILE = re.compile(r"(?i)(licen[cs]e|copying)(\.(txt|md))?")
KINDS = ("html", "slides")
_SHA256_LINE = re.compile(r"([0-9a-f]{64}) [ *](.+)")


class VendorError(RuntimeError):
    """A vendor folder is incomplete or does not match its ``SHA256SUMS``."""


def _as_path(value: object, name: str) -> Path:
    """``value`` as a :class:`Path`; TypeError naming ``name`` when it is not path-like."""
    if isinstance(value, (str, os.PathLike)):
        return Path(value)
    raise TypeError(f"{name} must be a path (str or os.PathLike), got {type(value).__name__}")


# -- checksums ------------------------------------------------------------------------------
def _listed_files(folder: Path) -> list[str]:
    """Every file below ``folder`` (posix paths relative to it), except its checksum file
    and hidden files, sorted."""
    files = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if path.is_file() and relative.as_posix() != CHECKSUMS \
                and not any(part.startswith(".") for part in relative.parts):
            files.append(relative.as_posix())
    return sorted(files)


def write_checksums(folder: Path) -> Path:
    """Write ``folder/SHA256SUMS`` for every file below ``folder`` (except itself and hidden
    files), in ``sha256sum`` format; returns its path."""
    folder = _as_path(folder, "folder")
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    lines = [f"{hashlib.sha256((folder / rel).read_bytes()).hexdigest()}  {rel}\n"
             for rel in _listed_files(folder)]
    checksums = folder / CHECKSUMS
    checksums.write_text("".join(lines), encoding="utf-8", newline="\n")
    return checksums


def read_checksums(folder: Path) -> dict[str, str]:
    """The entries of ``folder/SHA256SUMS``: relative path -> sha256 hex digest.

    Raises:
        VendorError: the file is missing, malformed, or lists a path outside ``folder``.
    """
    folder = _as_path(folder, "folder")
    checksums = folder / CHECKSUMS
    if not checksums.is_file():
        raise VendorError(f"{checksums} is missing: every vendored file must be listed there "
                          "(see tools/vendor/README.md)")
    entries: dict[str, str] = {}
    for number, line in enumerate(checksums.read_text(encoding="utf-8").splitlines(), 1):
        match = _SHA256_LINE.fullmatch(line)
        if not match:
            raise VendorError(f"{checksums}, line {number}: not '<sha256>  <path>': {line!r}")
        digest, name = match.groups()
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts or "\\" in name:
            raise VendorError(f"{checksums}, line {number}: {name!r} is not a path inside the folder")
        entries[relative.as_posix()] = digest
    return entries


def _verified_contents(folder: Path) -> dict[str, bytes]:
    """The bytes of every file listed in ``folder/SHA256SUMS``, each checked against it."""
    expected = read_checksums(folder)
    contents: dict[str, bytes] = {}
    for name, digest in expected.items():
        path = folder / name
        if not path.is_file():
            raise VendorError(f"{path} is listed in {CHECKSUMS} but missing")
        data = path.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise VendorError(
                f"{path} does not match {folder / CHECKSUMS} (sha256 {actual}, expected {digest}): "
                "the vendored copy was modified or damaged; restore it (git checkout -- tools/vendor) "
                "or refresh it with `python -m tools.handouts vendor` (tools/vendor/README.md)")
        contents[name] = data
    unlisted = sorted(set(_listed_files(folder)) - set(expected))
    if unlisted:
        raise VendorError(f"{folder} holds files not listed in {CHECKSUMS}: {', '.join(unlisted)} "
                          "(remove them, or refresh the folder so that SHA256SUMS lists them)")
    return contents


def verify_vendor(folder: Path = VENDOR_DIR) -> list[str]:
    """Check every file of a vendor folder against its ``SHA256SUMS``; returns the files.

    Raises:
        VendorError: naming the first file that is missing, modified, or not listed.
    """
    return list(_verified_contents(_as_path(folder, "folder")))


def install_vendor(destination: Path, source: Path = VENDOR_DIR) -> list[Path]:
    """Copy the verified vendor folder ``source`` to ``destination`` (e.g. ``build/vendor``).

    Every file is checked against ``source/SHA256SUMS`` first (a :class:`VendorError` names
    a mismatch, and nothing is copied).  Files already up to date are left alone and files
    the checksums do not list are removed, so ``destination`` ends up an exact copy; it
    must be missing, empty, or an earlier copy (it holds a ``SHA256SUMS`` or the old npm
    stamp ``.complete``).  Returns the copied files, ``SHA256SUMS`` last.
    """
    destination = _as_path(destination, "destination")
    source = _as_path(source, "source")
    if not source.is_dir():
        raise ValueError(f"the vendor folder {source} does not exist")
    if destination.exists() and destination.resolve() == source.resolve():
        raise ValueError(f"the vendor copy must be another folder than its source {source}")
    contents = _verified_contents(source)
    if destination.exists() and not destination.is_dir():
        raise ValueError(f"{destination} exists and is not a folder")
    if destination.is_dir() and any(destination.iterdir()) and not any(
            (destination / stamp).is_file() for stamp in (CHECKSUMS, ".complete")):
        raise ValueError(f"{destination} is not empty and is not a vendor copy (it has no "
                         f"{CHECKSUMS}); refusing to replace its contents")
    contents[CHECKSUMS] = (source / CHECKSUMS).read_bytes()
    written = []
    for name, data in contents.items():
        path = destination / name
        written.append(path)
        if path.is_file() and not path.is_symlink() and path.read_bytes() == data:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")  # atomic: make -j safe
        partial.write_bytes(data)
        os.replace(partial, path)
    # Remove what an earlier copy (or the old npm download) left behind.  Folders holding a
    # copied file are kept, so that a concurrent export (make -j html slides) is not disturbed.
    needed = {parent.as_posix() for name in contents for parent in PurePosixPath(name).parents}
    for path in sorted(destination.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        name = path.relative_to(destination).as_posix()
        if path.is_dir() and not path.is_symlink():
            if name not in needed:
                try:
                    path.rmdir()  # only succeeds when empty
                except OSError:
                    pass
        elif name not in contents and not path.name.endswith(".partial"):
            path.unlink(missing_ok=True)
    return written


# -- refreshing the committed copy from npm (online) ----------------------------------------
def _unpack_trimmed(archive: Path, destination: Path, patterns: Sequence[str]) -> list[str]:
    """Extract the files of an npm tarball matching ``patterns`` (plus its top-level license)
    into ``destination``; returns their relative paths."""
    with tarfile.open(archive) as tar:
        members = []
        for member in tar.getmembers():
            if not member.isfile() or not member.name.startswith("package/"):
                continue
            name = member.name.removeprefix("package/")
            if LICENSE_FILE.fullmatch(name) or any(fnmatchcase(name, p) for p in patterns):
                member.name = name
                members.append(member)
        unused = [p for p in patterns if not any(fnmatchcase(m.name, p) for m in members)]
        if unused:
            raise VendorError(f"{archive.name}: no file matches {unused}; update VENDOR_FILES")
        tar.extractall(destination, members=members, filter="data")
    return sorted(m.name for m in members)


def vendor(target: Path = VENDOR_DIR) -> list[str]:
    """Refresh ``target`` from the npm registry (needs npm and the network).

    Downloads :data:`VENDOR_PACKAGES` with ``npm pack``, keeps the files matching
    :data:`VENDOR_FILES` plus each package's top-level license, replaces the package
    folders of ``target`` with them and rewrites ``target/SHA256SUMS`` (other files of
    ``target``, such as its README, are kept and listed).  A package whose tarball ships
    no license file (require.js, html-manager) keeps the LICENSE already in ``target`` or
    in :data:`VENDOR_DIR`.  Returns the files listed in ``SHA256SUMS``.
    """
    target = _as_path(target, "target")
    if shutil.which("npm") is None:
        raise RuntimeError("npm is needed to refresh the vendored JavaScript (the handouts "
                           "themselves build without it, from tools/vendor)")
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        packed = subprocess.run(
            ["npm", "pack", "--json", "--pack-destination", tmp, *VENDOR_PACKAGES.values()],
            capture_output=True, text=True,
        )
        if packed.returncode != 0:
            raise RuntimeError(f"npm pack failed:\n{packed.stderr.strip()}")
        archives = {entry["name"]: entry["filename"] for entry in json.loads(packed.stdout)}
        staging = Path(tmp, "staging")
        for folder, spec in VENDOR_PACKAGES.items():
            name = spec.rsplit("@", 1)[0]
            files = _unpack_trimmed(Path(tmp, archives[name]), staging / folder, VENDOR_FILES[folder])
            if not any(LICENSE_FILE.fullmatch(f) for f in files):
                kept = [p for base in (target / folder, VENDOR_DIR / folder) if base.is_dir()
                        for p in sorted(base.iterdir()) if LICENSE_FILE.fullmatch(p.name)]
                if not kept:
                    raise VendorError(f"{spec} ships no license file: add its LICENSE to "
                                      f"{VENDOR_DIR / folder} by hand (see tools/vendor/README.md)")
                shutil.copy2(kept[0], staging / folder / kept[0].name)
        for folder in VENDOR_PACKAGES:
            shutil.rmtree(target / folder, ignore_errors=True)
            shutil.move(staging / folder, target / folder)
    (target / ".complete").unlink(missing_ok=True)  # stamp of the former build/vendor download
    write_checksums(target)
    return list(read_checksums(target))


# -- export ---------------------------------------------------------------------------------
def _exporter(kind: str, vendor_url: str) -> HTMLExporter:
    """An nbconvert exporter whose pages load every script from ``vendor_url``."""
    scripts = {
        "require_js_url": f"{vendor_url}/requirejs/require.js",
        "mathjax_url": f"{vendor_url}/mathjax/MathJax.js?config={MATHJAX_CONFIG},Safe",
        "widget_renderer_url": f"{vendor_url}/html-manager/dist/embed-amd.js",
        "jquery_url": f"{vendor_url}/jquery/dist/jquery.min.js",
    }
    if kind == "html":
        return HTMLExporter(template_name="lab", embed_images=True, **scripts)
    if kind == "slides":
        return SlidesExporter(reveal_url_prefix=f"{vendor_url}/reveal.js", reveal_theme=REVEAL_THEME,
                              reveal_scroll=True, embed_images=True, **scripts)
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def title_of(nb: nbformat.NotebookNode) -> str:
    """The notebook's H1 title (its first markdown line starting with '# ')."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return "Untitled"


def export(kind: str, notebooks: Sequence[Path], out_dir: Path, vendor_dir: Path,
           *, vendor_source: Path = VENDOR_DIR) -> list[Path]:
    """Export executed ``notebooks`` as ``kind`` pages into ``out_dir``, plus an index page.

    The scripts the pages load are copied from ``vendor_source`` (the committed
    ``tools/vendor``) to ``vendor_dir`` after every file is checked against its
    ``SHA256SUMS`` (see :func:`install_vendor`); no network is used.  Script URLs are
    relative, so ``out_dir`` and ``vendor_dir`` must stay side by side.

    Args:
        kind: ``"html"`` (one page per notebook) or ``"slides"`` (reveal.js decks).
        notebooks: executed notebooks (``.ipynb``), ideally with their widget state.
        out_dir: folder for the pages, created if missing.
        vendor_dir: folder for the copy of the scripts, a sibling of ``out_dir``.
        vendor_source: the verified vendor folder to copy.

    Returns:
        The written pages (index last).

    Raises:
        TypeError: an argument has the wrong type.
        ValueError: bad ``kind``, a notebook that does not exist, or the folder layout.
        VendorError: a vendored file is missing, modified or unlisted.
    """
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a str, got {type(kind).__name__}")
    exporter = _exporter(kind, Path("..", _as_path(vendor_dir, "vendor_dir").name).as_posix())
    if isinstance(notebooks, (str, os.PathLike)) or not isinstance(notebooks, Sequence):
        raise TypeError("notebooks must be a list of paths")
    paths = [_as_path(path, "each notebook") for path in notebooks]
    out_dir, vendor_dir = _as_path(out_dir, "out_dir"), _as_path(vendor_dir, "vendor_dir")
    if out_dir.parent.resolve() != vendor_dir.parent.resolve():
        raise ValueError("out_dir and vendor_dir must share a parent folder (relative script URLs)")
    if out_dir.resolve() == vendor_dir.resolve():
        raise ValueError("out_dir and vendor_dir must be two different folders")
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise ValueError(f"no such notebook: {', '.join(missing)}")
    install_vendor(vendor_dir, _as_path(vendor_source, "vendor_source"))
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = ".html" if kind == "html" else ".slides.html"
    pages, rows = [], []
    for path in sorted(paths):
        nb = nbformat.read(path, as_version=4)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title_of(nb)}})
        page = out_dir / (path.stem + suffix)
        page.write_text(body, encoding="utf-8")
        pages.append(page)
        rows.append(f'<li><a href="{page.name}">{html.escape(title_of(nb))}</a></li>')
    index = out_dir / "index.html"
    heading = "Handouts" if kind == "html" else "Slide decks"
    index.write_text(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Initialization and normalization — {heading}</title></head>\n<body>\n"
        f"<h1>Why deep networks need good initialization and normalization — {heading}</h1>\n"
        f"<ol>\n{chr(10).join(rows)}\n</ol>\n</body></html>\n",
        encoding="utf-8",
    )
    return [*pages, index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.handouts")
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser(
        "vendor", help="refresh the committed JavaScript from npm (online; the exports do not need it)")
    fetch.add_argument("--vendor-dir", type=Path, default=VENDOR_DIR,
                       help="folder to (re)write (default: the committed tools/vendor)")
    for kind in KINDS:
        command = commands.add_parser(kind, help=f"export executed notebooks as {kind}")
        command.add_argument("notebooks", nargs="+", type=Path)
        command.add_argument("--output-dir", type=Path, default=Path("build") / kind)
        command.add_argument("--vendor-dir", type=Path, default=Path("build/vendor"),
                             help="where the checked copy of tools/vendor goes (next to the pages)")
    args = parser.parse_args(argv)
    if args.command == "vendor":
        files = vendor(args.vendor_dir)
        print(f"wrote {len(files)} files to {args.vendor_dir}/ and their {CHECKSUMS}")
        return 0
    pages = export(args.command, args.notebooks, args.output_dir, args.vendor_dir)
    print(f"wrote {len(pages)} pages to {args.output_dir}/ (open index.html), "
          f"scripts checked and copied to {args.vendor_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
