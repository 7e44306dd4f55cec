"""Offline handouts: executed notebooks exported to self-contained HTML pages and slide decks.

``make html`` and ``make slides`` drive this module:

1. ``vendor``: fetch the JavaScript the exported pages need (reveal.js, require.js, jQuery,
   the Jupyter widgets HTML manager and MathJax 2) from the npm registry once, into
   ``build/vendor/``, so the pages open without network;
2. notebooks are executed with their widget state saved (``helpers.notebook_tools``), so a
   panel shows its default picture in the static page;
3. ``html`` / ``slides``: nbconvert exports every executed notebook, with images embedded and
   every script pointed at ``build/vendor/``, plus an ``index.html`` listing them.
"""

from __future__ import annotations

import argparse
import html
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter, SlidesExporter

#: npm packages vendored for offline pages: folder name -> package spec.
VENDOR_PACKAGES: dict[str, str] = {
    "reveal.js": "reveal.js@4.6.1",
    "requirejs": "requirejs@2.3.7",
    "html-manager": "@jupyter-widgets/html-manager@1.0.15",
    "mathjax": "mathjax@2.7.9",
    "jquery": "jquery@2.2.4",
}
#: Parts of the vendored packages the pages never load (MathJax's PNG fonts and sources).
VENDOR_SKIP = ("/unpacked/", "/png/", "/test/", "/examples/")
KINDS = ("html", "slides")


def vendor(target: Path) -> None:
    """Download and unpack :data:`VENDOR_PACKAGES` into ``target`` (skipped when present)."""
    stamp = target / ".complete"
    if stamp.exists():
        return
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        packed = subprocess.run(
            ["npm", "pack", "--json", "--pack-destination", tmp, *VENDOR_PACKAGES.values()],
            capture_output=True, text=True, check=True,
        )
        archives = [entry["filename"] for entry in json.loads(packed.stdout)]
        for folder, archive in zip(VENDOR_PACKAGES, archives):
            destination = target / folder
            shutil.rmtree(destination, ignore_errors=True)
            with tarfile.open(Path(tmp) / archive) as tar:
                members = [
                    m for m in tar.getmembers()
                    if m.name.startswith("package/") and not any(s in m.name for s in VENDOR_SKIP)
                ]
                for member in members:
                    member.name = member.name.removeprefix("package/")
                tar.extractall(destination, members=members, filter="data")
    stamp.touch()


def _exporter(kind: str, vendor_url: str) -> HTMLExporter:
    """An nbconvert exporter whose pages load every script from ``vendor_url``."""
    scripts = {
        "require_js_url": f"{vendor_url}/requirejs/require.js",
        "mathjax_url": f"{vendor_url}/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe",
        "widget_renderer_url": f"{vendor_url}/html-manager/dist/embed-amd.js",
        "jquery_url": f"{vendor_url}/jquery/dist/jquery.min.js",
    }
    if kind == "html":
        return HTMLExporter(template_name="lab", embed_images=True, **scripts)
    if kind == "slides":
        return SlidesExporter(reveal_url_prefix=f"{vendor_url}/reveal.js", reveal_scroll=True,
                              embed_images=True, **scripts)
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def title_of(nb: nbformat.NotebookNode) -> str:
    """The notebook's H1 title (its first markdown line starting with '# ')."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return "Untitled"


def export(kind: str, notebooks: list[Path], out_dir: Path, vendor_dir: Path) -> list[Path]:
    """Export executed ``notebooks`` as ``kind`` pages into ``out_dir``, plus an index page.

    Script URLs are relative, so ``out_dir`` and ``vendor_dir`` must stay side by side.
    Returns the written pages (index last).
    """
    exporter = _exporter(kind, Path("..", vendor_dir.name).as_posix())
    if out_dir.parent.resolve() != vendor_dir.parent.resolve():
        raise ValueError("out_dir and vendor_dir must share a parent folder (relative script URLs)")
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = ".html" if kind == "html" else ".slides.html"
    pages, rows = [], []
    for path in sorted(notebooks):
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
    parser = argparse.ArgumentParser(prog="python -m helpers.handouts")
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("vendor", help="fetch the JavaScript the pages need")
    fetch.add_argument("--vendor-dir", type=Path, default=Path("build/vendor"))
    for kind in KINDS:
        command = commands.add_parser(kind, help=f"export executed notebooks as {kind}")
        command.add_argument("notebooks", nargs="+", type=Path)
        command.add_argument("--output-dir", type=Path, default=Path("build") / kind)
        command.add_argument("--vendor-dir", type=Path, default=Path("build/vendor"))
    args = parser.parse_args(argv)
    if args.command == "vendor":
        vendor(args.vendor_dir)
        return 0
    pages = export(args.command, args.notebooks, args.output_dir, args.vendor_dir)
    print(f"wrote {len(pages)} pages to {args.output_dir}/ (open index.html)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
