"""Serving the course to a class: the learner set and the files derived from it, nbgitpuller links,
the Kubernetes image's tag, the TLJH recipe, and the day-one setup sheet (DAY_ONE.md).

Nothing here needs the network, Docker or a hub: the derived files are compared with what
``tools.hub`` generates from pyproject.toml and constraints.txt, the links are parsed back, and the
recipes are read (``deploy/README.md`` says which steps were run by hand, and how).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tools import hub

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as the package tomli (the `test` extra)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
VALUES = ROOT / "deploy" / "z2jh" / "values.yaml"
TLJH_SCRIPT = ROOT / "deploy" / "tljh" / "install-course.sh"
Z2JH_SCRIPT = ROOT / "deploy" / "z2jh" / "deploy.sh"
POST_BUILD = ROOT / ".binder" / "postBuild"
DAY_ONE = ROOT / "DAY_ONE.md"
#: Test and grading tools: a learner's environment must not carry them.
DEV_TOOLS = ("pytest", "pytest-xdist", "nbval", "nbgrader", "playwright", "ruff", "mypy")


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", f"{line!r} is not an exact pin"
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def _learner_file_pins() -> dict[str, str]:
    return _pins((ROOT / hub.LEARNER_REQUIREMENTS).read_text(encoding="utf-8").splitlines())


def _binder() -> dict:
    return yaml.safe_load((ROOT / hub.BINDER_ENVIRONMENT).read_text(encoding="utf-8"))


def _binder_pip_lines() -> list[str]:
    (pip,) = [d["pip"] for d in _binder()["dependencies"] if isinstance(d, dict)]
    return pip


# -- the learner set, read from one place ------------------------------------------------------------
def test_learner_set_is_pyprojects_dependencies_and_lab_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    expected = [*project["dependencies"], *project["optional-dependencies"]["lab"]]
    assert [str(r) for r in hub.learner_requirements()] == [str(Requirement(r)) for r in expected]


def test_generated_files_are_current() -> None:
    """The drift check: regenerated from pyproject.toml, constraints.txt and the installed packages'
    dependencies, the learner requirements and the Binder recipe come out as committed."""
    stale = hub.stale_files()
    assert not stale, f"{[str(p) for p in stale]} differ from pyproject.toml + constraints.txt: " \
                      "run `python -m tools.hub generate`"


def test_every_learner_pin_is_constraints_pin() -> None:
    constraints = hub.read_constraints()
    for source, pins in (("deploy/requirements-learner.txt", _learner_file_pins()),
                         (".binder/environment.yml", _pins(_binder_pip_lines()))):
        assert pins, source
        wrong = {name: (version, constraints.get(name)) for name, version in pins.items()
                 if constraints.get(name) != version}
        assert not wrong, f"{source}: pins that are not constraints.txt's (file, constraints): {wrong}"


def test_learner_files_hold_the_learner_packages_and_no_dev_tools() -> None:
    for source, pins in (("deploy/requirements-learner.txt", _learner_file_pins()),
                         (".binder/environment.yml", _pins(_binder_pip_lines()))):
        for requirement in hub.learner_requirements():
            assert canonicalize_name(requirement.name) in pins, f"{source} misses {requirement.name}"
        assert not set(DEV_TOOLS) & set(pins), f"{source} carries test/grading tools {set(DEV_TOOLS) & set(pins)}"
    assert _learner_file_pins() == _pins(_binder_pip_lines())


def test_binder_recipe_is_python_of_the_lock_and_torch_cpu() -> None:
    binder = _binder()
    assert binder["channels"] == ["conda-forge"]
    assert f"python={hub.PYTHON_VERSION}" in binder["dependencies"] and "pip" in binder["dependencies"]
    assert _binder_pip_lines()[0] == f"--extra-index-url {hub.TORCH_CPU_INDEX}"
    assert hub.TORCH_CPU_INDEX in (ROOT / hub.LEARNER_REQUIREMENTS).read_text(encoding="utf-8")


def test_post_build_installs_the_course_package_and_nbgitpuller_only() -> None:
    text = POST_BUILD.read_text(encoding="utf-8")
    assert POST_BUILD.stat().st_mode & 0o111, "postBuild must be executable for repo2docker"
    commands = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert commands == ["set -euo pipefail", "pip install --no-deps -e .",
                        "pip install --no-deps nbgitpuller==1.3.0",  # repo2docker's base image lacks it
                        "jupyter labextension develop --overwrite .",
                        "jupyter labextension disable @jupyterlab/mathjax3-extension"]
    assert not (ROOT / ".binder" / "requirements.txt").exists(), "repo2docker would mix pip files into the recipe"


# -- the generator, on small made-up projects -----------------------------------------------------
def _project(tmp_path: Path, deps: list[str], lab: list[str] | None, pins: dict[str, str]) -> Path:
    extras = {"test": ["pytest>=8"]} | ({"lab": lab} if lab is not None else {})
    lines = ["[project]", 'name = "demo"', f"dependencies = {deps!r}", "[project.optional-dependencies]"]
    lines += [f"{name} = {reqs!r}" for name, reqs in extras.items()]
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "pyproject.toml").write_text("\n".join(lines) + "\n")  # TOML reads Python's 'quoted' lists
    (tmp_path / "constraints.txt").write_text(
        "# pins\n" + "".join(f"{name}=={version}\n" for name, version in pins.items()))
    (tmp_path / ".binder").mkdir()
    (tmp_path / "deploy").mkdir()
    return tmp_path


FAKE_REQUIRES = {
    "torch": ["filelock", "setuptools>=77", "triton ; sys_platform == 'darwin'",
              "opt-einsum>=3.3 ; extra == 'opt-einsum'"],
    "jupyterlab": ["jupyter-server>=2", "tomli ; python_version < '3.11'"],
    "jupyter-server": ["tornado", "jupyterlab ; extra == 'never'"],
    "ipywidgets": ["comm", "widgetsnbextension[dev] ; extra == 'all'"],
    "filelock": [], "setuptools": [], "tornado": [], "comm": [], "pytest": ["pluggy"], "pluggy": [],
    "widgetsnbextension": ["notebook ; extra == 'dev'"], "notebook": [], "opt-einsum": [], "tomli": [],
}
LINUX_311 = {"sys_platform": "linux", "python_version": "3.11", "python_full_version": "3.11.7",
             "platform_system": "Linux", "os_name": "posix", "platform_machine": "x86_64",
             "implementation_name": "cpython", "platform_python_implementation": "CPython",
             "platform_release": "", "platform_version": "", "implementation_version": "3.11.7", "extra": ""}


def test_closure_follows_dependencies_markers_and_extras() -> None:
    def requires(name: str) -> list[str]:
        return FAKE_REQUIRES[name]

    top = [Requirement("torch>=2.2"), Requirement("jupyterlab"), Requirement("ipywidgets[all]")]
    names = hub.learner_closure(top, requires, LINUX_311)
    # triton: darwin only; tomli: Python < 3.11; opt-einsum and 'never': extras nobody asked for;
    # widgetsnbextension comes through ipywidgets[all], and its own [dev] extra brings notebook.
    assert names == {"torch", "filelock", "setuptools", "jupyterlab", "jupyter-server", "tornado",
                     "ipywidgets", "comm", "widgetsnbextension", "notebook"}
    assert "tomli" in hub.learner_closure(top, requires, {**LINUX_311, "python_version": "3.10"})


def test_generator_pins_from_constraints_and_leaves_dev_extras_out(tmp_path: Path) -> None:
    root = _project(tmp_path, ["torch>=2.2"], ["jupyterlab>=4"],
                    {"torch": "2.13.0", "filelock": "4.2.12", "jupyterlab": "4.6.6", "jupyter_server": "2.21.1",
                     "tornado": "6.6.1", "pytest": "9.2.0", "pluggy": "1.7.0"})
    pinned = hub.pinned_learner_set(root, FAKE_REQUIRES.__getitem__)
    assert pinned == ["filelock==4.2.12", "jupyter-server==2.21.1", "jupyterlab==4.6.6", "torch==2.13.0",
                      "tornado==6.6.1"]  # setuptools: pip's to choose, as `make lock` never records it
    assert sorted(hub.stale_files(root, FAKE_REQUIRES.__getitem__)) == sorted(
        [hub.LEARNER_REQUIREMENTS, hub.BINDER_ENVIRONMENT])
    for path, text in hub.generated_files(root, FAKE_REQUIRES.__getitem__).items():
        (root / path).write_text(text)
    assert hub.stale_files(root, FAKE_REQUIRES.__getitem__) == []
    # The pins move in constraints.txt: both derived files are stale until regenerated.
    constraints = root / "constraints.txt"
    constraints.write_text(constraints.read_text().replace("torch==2.13.0", "torch==2.13.1"))
    assert sorted(hub.stale_files(root, FAKE_REQUIRES.__getitem__)) == sorted(
        [hub.LEARNER_REQUIREMENTS, hub.BINDER_ENVIRONMENT])


def test_generator_names_what_is_wrong(tmp_path: Path) -> None:
    requires = FAKE_REQUIRES.__getitem__
    root = _project(tmp_path / "a", ["torch>=2.2"], ["jupyterlab>=4"], {"torch": "2.13.0"})
    with pytest.raises(ValueError, match=r"does not pin \['filelock', 'jupyter-server', 'jupyterlab', 'tornado'\]"):
        hub.pinned_learner_set(root, requires)
    root = _project(tmp_path / "b", ["torch>=2.14"], [], {"torch": "2.13.0", "filelock": "1"})
    with pytest.raises(ValueError, match=r"pins torch==2.13.0, outside pyproject's torch>=2.14"):
        hub.pinned_learner_set(root, requires)
    root = _project(tmp_path / "c", ["torch>=2.2"], None, {"torch": "2.13.0", "filelock": "1"})
    with pytest.raises(ValueError, match=r"no optional-dependencies \['lab'\]"):
        hub.pinned_learner_set(root, requires)
    (root / "constraints.txt").write_text("torch>=2\n")
    with pytest.raises(ValueError, match="not an exact pin"):
        hub.read_constraints(root)


# -- nbgitpuller links ------------------------------------------------------------------------------
def _parse(link: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(link)
    query = {key: values[0] for key, values in parse_qs(parts.query, strict_parsing=True).items()}
    return f"{parts.scheme}://{parts.netloc}{parts.path}", query


def test_link_has_nbgitpullers_form_and_opens_the_notebook_in_the_clone() -> None:
    link = hub.nbgitpuller_link("https://hub.example.edu", "https://github.com/owner/course.git", "main",
                                "notebooks/00_start_here.ipynb")
    base, query = _parse(link)
    assert base == "https://hub.example.edu/hub/user-redirect/git-pull"
    assert query == {"repo": "https://github.com/owner/course.git", "branch": "main", "targetpath": "course",
                     "urlpath": "lab/tree/course/notebooks/00_start_here.ipynb"}
    assert "urlpath=lab%2Ftree%2Fcourse%2Fnotebooks%2F00_start_here.ipynb" in link  # encoded as the generator does


@pytest.mark.parametrize(("hub_url", "base"), [
    ("https://hub.example.edu/", "https://hub.example.edu/hub/user-redirect/git-pull"),
    ("https://example.edu/jupyter", "https://example.edu/jupyter/hub/user-redirect/git-pull"),
    ("http://10.0.0.5:8000/", "http://10.0.0.5:8000/hub/user-redirect/git-pull"),
])
def test_link_keeps_the_hubs_address_and_prefix(hub_url: str, base: str) -> None:
    assert _parse(hub.nbgitpuller_link(hub_url, "https://github.com/o/r", "main"))[0] == base


def test_link_options_target_app_and_folder() -> None:
    _base, query = _parse(hub.nbgitpuller_link("https://h.edu", "https://github.com/o/r/", "week-2",
                                               "notebooks", target="courses/init-norm", app="tree"))
    assert query == {"repo": "https://github.com/o/r/", "branch": "week-2", "targetpath": "courses/init-norm",
                     "urlpath": "tree/courses/init-norm/notebooks"}
    _base, query = _parse(hub.nbgitpuller_link("https://h.edu", "git@github.com:o/r.git", "main"))
    assert query["urlpath"] == "lab/tree/r" and query["targetpath"] == "r"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"hub": "hub.example.edu"}, "hub must be"),
    ({"hub": "https://hub.example.edu/?x=1"}, "hub must be"),
    ({"repo": "course"}, "repo must be"),
    ({"branch": ""}, "branch must be"),
    ({"path": "/etc/passwd"}, "path must be"),
    ({"path": "../other/x.ipynb"}, "path must be"),
    ({"target": "../elsewhere"}, "target must be"),
    ({"app": "voila"}, "app must be"),
])
def test_link_names_a_bad_argument(kwargs: dict, message: str) -> None:
    args = {"hub": "https://hub.example.edu", "repo": "https://github.com/o/r", "branch": "main"} | kwargs
    with pytest.raises(ValueError, match=message):
        hub.nbgitpuller_link(**args)


def test_link_command_defaults_to_the_course_repository(capsys: pytest.CaptureFixture[str]) -> None:
    paths = sorted(f"notebooks/{p.name}" for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert hub.main(["link", "--hub", "https://hub.example.edu", *paths]) == 0
    links = capsys.readouterr().out.split()
    assert len(links) == len(paths)
    repository = hub.course_repository()
    name = repository.rstrip("/").rsplit("/", 1)[-1]
    for link, path in zip(links, paths, strict=True):
        _base, query = _parse(link)
        assert query["repo"] == repository and query["branch"] == "main"
        assert query["urlpath"] == f"lab/tree/{name}/{path}" and (ROOT / path).is_file()


# -- the Kubernetes image's tag -----------------------------------------------------------------------
def _image_tree(tmp_path: Path) -> Path:
    for name in hub.IMAGE_INPUTS:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if name == "pyproject.toml":
            (tmp_path / name).write_text("[project]\n")
        else:
            (tmp_path / name).mkdir()
            (tmp_path / name / "a.txt").write_text(name)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01.ipynb").write_text("{}")
    return tmp_path


def test_image_tag_follows_what_the_image_is_built_from(tmp_path: Path) -> None:
    root = _image_tree(tmp_path)
    tag = hub.image_tag(root)
    assert re.fullmatch(r"sha-[0-9a-f]{12}", tag) and hub.image_tag(root) == tag
    (root / "notebooks" / "01.ipynb").write_text('{"edited": 1}')  # students get notebooks by nbgitpuller
    (root / "helpers" / "__pycache__").mkdir()
    (root / "helpers" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    assert hub.image_tag(root) == tag
    for changed in (".binder/a.txt", "helpers/a.txt", "data/a.txt"):
        (root / changed).write_text("changed")
        assert hub.image_tag(root) != tag, changed
        tag = hub.image_tag(root)
    (root / "helpers" / "a.txt").rename(root / "helpers" / "b.txt")  # a renamed file is another image
    assert hub.image_tag(root) != tag
    shutil.rmtree(root / "studies")
    with pytest.raises(ValueError, match="studies is missing"):
        hub.image_tag(root)


def test_values_carry_no_tag_of_their_own_and_the_deploy_script_derives_it() -> None:
    values = yaml.safe_load(VALUES.read_text(encoding="utf-8"))
    image = values["singleuser"]["image"]
    assert image["tag"] == "set-by-deploy-sh", "the tag is derived at deploy time, not written in values.yaml"
    script = Z2JH_SCRIPT.read_text(encoding="utf-8")
    assert Z2JH_SCRIPT.stat().st_mode & 0o111
    assert 'TAG="$("$PYTHON" -m tools.hub image-tag)"' in script
    assert '--image-name "$IMAGE:$TAG"' in script and 'docker push "$IMAGE:$TAG"' in script
    assert '--set-string singleuser.image.tag="$TAG"' in script
    assert '"$PYTHON" -m tools.hub check' in script  # the recipe holds constraints' pins
    assert subprocess.run(["bash", "-n", str(Z2JH_SCRIPT)], check=False).returncode == 0


def test_values_run_offline_and_show_the_students_volume() -> None:
    singleuser = yaml.safe_load(VALUES.read_text(encoding="utf-8"))["singleuser"]
    assert singleuser["extraEnv"]["HF_HUB_OFFLINE"] == "1"
    # nbgitpuller clones into the folder JupyterLab shows: it must be the persistent volume.
    assert singleuser["notebookDir"] == singleuser["storage"]["homeMountPath"]


# -- the TLJH recipe --------------------------------------------------------------------------------
def test_tljh_recipe_makes_its_own_environment_and_kernel() -> None:
    script = TLJH_SCRIPT.read_text(encoding="utf-8")
    assert TLJH_SCRIPT.stat().st_mode & 0o111
    assert subprocess.run(["bash", "-n", str(TLJH_SCRIPT)], check=False).returncode == 0
    assert 'REQUIREMENTS="$COURSE_DIR/deploy/requirements-learner.txt"' in script
    assert '"$COURSE_ENV/bin/python" -m pip install --quiet "${index[@]}" -r "$REQUIREMENTS"' in script
    assert '"$COURSE_DIR/tools/torch_index.py"' in script  # torch's CPU build on a server without a GPU
    assert f"python={hub.PYTHON_VERSION} pip" in script
    (kernel_env,) = re.findall(r"^KERNEL_ENV=\((.*)\)$", script, re.MULTILINE)
    pairs = dict(zip(kernel_env.split()[::2], kernel_env.split()[1::2], strict=True))
    assert pairs == {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                     "OPENBLAS_NUM_THREADS": "1"}
    assert '-m ipykernel install --prefix "$HUB_PREFIX" --name "$KERNEL_NAME"' in script
    # Nothing pinned goes into TLJH's shared environment: no pip install there, only advice.
    assert not re.search(r'^\s*"?\$HUB_PREFIX/bin/(pip|python -m pip)', script, re.MULTILINE)


# -- the day-one sheet -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sheet() -> dict[str, str]:
    assert DAY_ONE.is_file(), "DAY_ONE.md is missing"
    sections: dict[str, str] = {}
    title, fenced = "", False
    for line in DAY_ONE.read_text(encoding="utf-8").splitlines():
        fenced ^= line.startswith("```")
        if line.startswith("# ") and not fenced:
            title = line[2:]
            sections[title] = ""
        elif title:
            sections[title] += line + "\n"
    assert len(sections) == 2, f"DAY_ONE.md must have two top-level sections, English and Vietnamese: {list(sections)}"
    english, vietnamese = sections.values()
    return {"en": english, "vi": vietnamese}


def test_sheet_is_a_page_in_each_language(sheet: dict[str, str]) -> None:
    for language, text in sheet.items():
        lines = text.strip().splitlines()
        assert len(lines) <= 66, f"the {language} page has {len(lines)} lines: a printed page holds about 66"
    assert re.search(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệ]", sheet["vi"]), "the second section is not in Vietnamese"


@pytest.mark.parametrize(("language", "needles"), [
    ("en", ["not authored by Google", "Run anyway", "Save a copy in Drive", "Log in", "GB", "CUDA"]),
    ("vi", ["not authored by Google", "Run anyway", "Save a copy in Drive", "Đăng nhập", "GB", "CUDA",
            "môi trường ảo", "thanh trượt"]),
])
def test_sheet_names_what_the_first_ten_minutes_need(sheet: dict[str, str], language: str, needles: list[str]) -> None:
    for needle in needles:
        assert needle in sheet[language], f"the {language} page does not name {needle!r}"


def test_sheet_sizes_are_the_same_in_both_languages(sheet: dict[str, str]) -> None:
    sizes = {language: re.findall(r"\d+(?:[.,]\d+)? (?:GB|MB)", text) for language, text in sheet.items()}
    assert sizes["en"], "the English page gives no size"
    assert [s.replace(",", ".") for s in sizes["vi"]] == sizes["en"]


def test_sheet_install_commands_use_the_learner_set(sheet: dict[str, str]) -> None:
    """The laptop install is the learner set (requirements.txt) at the tested versions, torch's CPU
    build on Linux, and the size quoted is that of the learner packages (measured as the sheet says)."""
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    learner = {canonicalize_name(r.name) for r in hub.learner_requirements()}
    listed = {canonicalize_name(Requirement(line).name) for line in requirements.splitlines()
              if line.strip() and not line.lstrip().startswith(("#", "-"))}
    assert listed == learner, "requirements.txt is not the learner set the sheet's size was measured for"
    for language, text in sheet.items():
        assert "pip install -r requirements.txt -c constraints.txt -e ." in text, language
        assert f"--extra-index-url {hub.TORCH_CPU_INDEX}" in text, language
    count = len(hub.pinned_learner_set())
    assert f"{count} packages" in sheet["en"] and f"{count} gói" in sheet["vi"]


def test_teaching_links_the_sheet() -> None:
    assert "(DAY_ONE.md)" in (ROOT / "TEACHING.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("page", ["DAY_ONE.md", "deploy/README.md", "deploy/z2jh/README.md"])
def test_pages_link_to_files_that_exist(page: str) -> None:
    path = ROOT / page
    for target in re.findall(r"\]\(((?!https?://|#)[^)#]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
        assert (path.parent / target).exists(), f"{page} links to a missing file: {target}"


def test_command_line_check_and_image_tag(capsys: pytest.CaptureFixture[str]) -> None:
    assert hub.main(["check"]) == 0
    assert hub.main(["image-tag"]) == 0
    assert capsys.readouterr().out.split() == [hub.image_tag()]
    assert hub.main(["learner-set"]) == 0
    assert capsys.readouterr().out.split() == hub.pinned_learner_set()
