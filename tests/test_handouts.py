"""tools.handouts: offline HTML handouts and slide decks from executed notebooks."""

from __future__ import annotations

import hashlib
import re
import shutil
from fnmatch import fnmatchcase
from pathlib import Path

import nbformat
import pytest

from tools.handouts import (
    CHECKSUMS,
    LICENSE_FILE,
    VENDOR_DIR,
    VENDOR_FILES,
    VENDOR_PACKAGES,
    VendorError,
    export,
    install_vendor,
    title_of,
    vendor,
    verify_vendor,
)

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "00_start_here.ipynb"
# A script or stylesheet fetched from the network would break the page offline.  (The
# template's mermaid loader is only reached when a notebook contains a mermaid diagram.)
REMOTE_ASSET = re.compile(r"""(<script[^>]*src=|<link[^>]*href=|widgetRendererSrc = )["']https?://""")
# Every address into the copied vendor folder: script/link URLs, the widget renderer and the
# reveal.js modules.
VENDOR_URL = re.compile(r"""["'](\.\./vendor/[^"'?#]*)([^"']*)["']""")
WIDGET_STATE = {"application/vnd.jupyter.widget-state+json": {"version_major": 2, "version_minor": 0,
                                                               "state": {}}}


def _on_disk(folder: Path) -> set[str]:
    """Every file below ``folder`` (relative posix paths), hidden ones included."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def notebook_with_widgets(tmp_path: Path) -> Path:
    """A copy of the start notebook whose metadata holds (empty) widget state, so that its
    export loads the widget HTML manager like the executed handouts do."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.metadata["widgets"] = WIDGET_STATE
    path = tmp_path / "executed" / NOTEBOOK.name
    path.parent.mkdir()
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("kind", ["html", "slides"])
def test_export_is_self_contained(kind: str, tmp_path: Path) -> None:
    vendor_dir = tmp_path / "vendor"
    vendor_dir.mkdir()
    pages = export(kind, [NOTEBOOK], tmp_path / kind, vendor_dir)
    page, index = pages
    text = page.read_text(encoding="utf-8")
    assert "data:image/png;base64," in text, "figures are embedded in the page"
    assert not REMOTE_ASSET.search(text), "every script and stylesheet is loaded locally"
    assert "../vendor/requirejs/require.js" in text
    if kind == "slides":
        assert "../vendor/reveal.js/dist/reveal.js" in text
    assert page.name in index.read_text() and title_of(nbformat.read(NOTEBOOK, 4)) in index.read_text()


def test_title_of_reads_the_h1() -> None:
    assert title_of(nbformat.read(NOTEBOOK, 4)).startswith("00 · Start here")
    assert title_of(nbformat.v4.new_notebook()) == "Untitled"


def test_bad_kind_and_layout(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"kind must be one of \('html', 'slides'\)"):
        export("pdf", [NOTEBOOK], tmp_path / "pdf", tmp_path / "vendor")
    with pytest.raises(ValueError, match="must share a parent folder"):
        export("html", [NOTEBOOK], tmp_path / "a" / "html", tmp_path / "vendor")


def test_vendored_packages_are_pinned() -> None:
    assert all("@" in spec.lstrip("@") for spec in VENDOR_PACKAGES.values())


# -- the committed vendor folder ------------------------------------------------------------
def test_vendored_files_match_their_checksums() -> None:
    lines = (VENDOR_DIR / CHECKSUMS).read_text(encoding="utf-8").splitlines()
    assert lines, "SHA256SUMS is empty"
    listed = {}
    for line in lines:
        match = re.fullmatch(r"([0-9a-f]{64})  (\S.*)", line)
        assert match, f"not sha256sum format: {line!r}"
        listed[match[2]] = match[1]
    for name, digest in listed.items():
        path = VENDOR_DIR / name
        assert path.is_file(), f"{name} is listed in SHA256SUMS but missing"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{name} does not match SHA256SUMS"
    assert _on_disk(VENDOR_DIR) - {CHECKSUMS} == set(listed), "SHA256SUMS must list every vendored file"
    assert verify_vendor() == list(listed)


def test_every_vendored_package_has_its_license_and_is_documented() -> None:
    readme = (VENDOR_DIR / "README.md").read_text(encoding="utf-8")
    assert {p.name for p in VENDOR_DIR.iterdir() if p.is_dir()} == set(VENDOR_PACKAGES)
    for folder, spec in VENDOR_PACKAGES.items():
        licenses = [p for p in (VENDOR_DIR / folder).iterdir() if LICENSE_FILE.fullmatch(p.name)]
        assert licenses and all(p.stat().st_size > 200 for p in licenses), f"{folder} has no LICENSE"
        name, version = spec.rsplit("@", 1)
        assert f"`{folder}/`" in readme and f"`{name}`" in readme and version in readme, (
            f"tools/vendor/README.md does not describe {spec}")


def test_vendor_folder_is_exactly_the_trimming_rule() -> None:
    """What VENDOR_FILES keeps is what is committed: each pattern matches a file, and each
    package file matches a pattern or is the package's license."""
    for folder, patterns in VENDOR_FILES.items():
        files = _on_disk(VENDOR_DIR / folder)
        for pattern in patterns:
            assert any(fnmatchcase(f, pattern) for f in files), f"{folder}: nothing matches {pattern!r}"
        extra = [f for f in files
                 if not LICENSE_FILE.fullmatch(f) and not any(fnmatchcase(f, p) for p in patterns)]
        assert not extra, f"{folder}: files outside VENDOR_FILES: {extra}"
    total = sum((VENDOR_DIR / f).stat().st_size for f in _on_disk(VENDOR_DIR))
    assert total < 8 * 1024 * 1024, f"tools/vendor grew to {total / 2**20:.1f} MB"


# -- the export uses it, offline -----------------------------------------------------------
@pytest.mark.parametrize("kind", ["html", "slides"])
def test_export_copies_the_vendor_folder_and_pages_load_only_its_files(
        kind: str, notebook_with_widgets: Path, tmp_path: Path) -> None:
    build = tmp_path / "build"
    page, _ = export(kind, [notebook_with_widgets], build / kind, build / "vendor")
    vendor_dir = build / "vendor"
    assert _on_disk(vendor_dir) == _on_disk(VENDOR_DIR), "build/vendor is an exact copy of tools/vendor"
    assert verify_vendor(vendor_dir) == verify_vendor(VENDOR_DIR)
    text = page.read_text(encoding="utf-8")
    urls = VENDOR_URL.findall(text)
    referenced = {url for url, _ in urls}
    expected = {"../vendor/requirejs/require.js", "../vendor/mathjax/MathJax.js",
                "../vendor/html-manager/dist/embed-amd.js"}
    if kind == "slides":
        expected |= {"../vendor/jquery/dist/jquery.min.js", "../vendor/reveal.js/dist/reveal.js",
                     "../vendor/reveal.js/dist/reveal.css", "../vendor/reveal.js/plugin/notes/notes.js"}
    assert expected <= referenced, f"the page does not load {sorted(expected - referenced)}"
    for url, query in urls:
        relative = url.removeprefix("../vendor/")
        assert (vendor_dir / relative).is_file(), f"{page.name} refers to {url}, which is not in the vendor folder"
        if query.startswith("?config="):  # MathJax's configuration files
            for config in query.removeprefix("?config=").split(","):
                assert (vendor_dir / "mathjax" / "config" / f"{config}.js").is_file(), config


def test_tampered_vendored_file_stops_the_export(notebook_with_widgets: Path, tmp_path: Path) -> None:
    source = tmp_path / "vendor-source"
    shutil.copytree(VENDOR_DIR, source)
    with (source / "mathjax" / "MathJax.js").open("ab") as handle:
        handle.write(b"\n// changed\n")
    build = tmp_path / "build"
    with pytest.raises(VendorError, match=re.escape(str(source / "mathjax" / "MathJax.js"))):
        export("html", [notebook_with_widgets], build / "html", build / "vendor", vendor_source=source)
    assert not (build / "vendor").exists() and not (build / "html").exists(), "nothing is written"

    shutil.copy2(VENDOR_DIR / "mathjax" / "MathJax.js", source / "mathjax" / "MathJax.js")
    (source / "jquery" / "dist" / "jquery.min.js").unlink()
    with pytest.raises(VendorError, match=r"jquery\.min\.js is listed in SHA256SUMS but missing"):
        export("slides", [notebook_with_widgets], build / "slides", build / "vendor", vendor_source=source)
    shutil.copy2(VENDOR_DIR / "jquery" / "dist" / "jquery.min.js", source / "jquery" / "dist")
    (source / "mathjax" / "extra.js").write_text("// not listed")
    with pytest.raises(VendorError, match=r"not listed in SHA256SUMS: mathjax/extra\.js"):
        export("slides", [notebook_with_widgets], build / "slides", build / "vendor", vendor_source=source)
    (source / "mathjax" / "extra.js").unlink()
    (source / CHECKSUMS).unlink()
    with pytest.raises(VendorError, match="SHA256SUMS is missing"):
        export("slides", [notebook_with_widgets], build / "slides", build / "vendor", vendor_source=source)


def test_install_vendor_replaces_an_old_copy_but_not_a_foreign_folder(tmp_path: Path) -> None:
    old = tmp_path / "old" / "vendor"
    (old / "mathjax" / "unpacked").mkdir(parents=True)
    (old / "mathjax" / "unpacked" / "MathJax.js").write_text("// old npm download")
    (old / "mathjax" / "MathJax.js").write_text("// stale")
    (old / ".complete").touch()
    install_vendor(old)
    assert _on_disk(old) == _on_disk(VENDOR_DIR) and verify_vendor(old)

    foreign = tmp_path / "foreign" / "vendor"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a vendor copy"):
        install_vendor(foreign)
    assert (foreign / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="another folder than its source"):
        install_vendor(VENDOR_DIR)


def test_export_validates_its_arguments(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="notebooks must be a list of paths"):
        export("html", NOTEBOOK, tmp_path / "html", tmp_path / "vendor")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="out_dir must be a path"):
        export("html", [NOTEBOOK], 3, tmp_path / "vendor")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="kind must be a str"):
        export(None, [NOTEBOOK], tmp_path / "html", tmp_path / "vendor")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no such notebook"):
        export("html", [tmp_path / "missing.ipynb"], tmp_path / "html", tmp_path / "vendor")
    with pytest.raises(ValueError, match="two different folders"):
        export("html", [NOTEBOOK], tmp_path / "vendor", tmp_path / "vendor")


def test_refreshing_from_npm_is_the_only_step_needing_npm(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm
    with pytest.raises(RuntimeError, match="npm is needed"):
        vendor(tmp_path / "vendor")
    build = tmp_path / "build"
    assert export("slides", [NOTEBOOK], build / "slides", build / "vendor")[0].is_file()
