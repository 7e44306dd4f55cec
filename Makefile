# The course's commands.  `make lab` to learn, `make test` to check everything.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PYTEST_NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg --nbval-cell-timeout=600

.PHONY: install install-dev lab test browser-deps notebooks html slides lock clean

# Two install sets in one .venv (README, "Install"): the learner set (requirements.txt: the
# course, JupyterLab, torch, NumPy, matplotlib, ipywidgets, transformers) for `make lab`, and
# the full set (requirements-dev.txt: + tests, lint, types, nbgrader) for `make test` and the
# maintainer targets.  constraints.txt pins both, for Python LOCK_PYTHON (what CI runs; `make
# lock`); on another Python the ranges are installed unpinned, saying so.
LEARNER_STAMP := $(VENV)/.installed-learner
FULL_STAMP    := $(VENV)/.installed-full
LOCK_PYTHON   := 3.11
PY_VERSION     = $(shell $(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
CONSTRAINTS    = $(if $(filter $(LOCK_PYTHON),$(PY_VERSION)),-c constraints.txt,)
TORCH_REQUIREMENT := $(shell grep '^torch' requirements.txt)
# Where torch comes from (tools/torch_index.py): on Linux without an NVIDIA GPU PyTorch's CPU
# build (its CPU index, given to pip as an extra index: unreachable, pip goes on without it),
# else PyPI's torch.  TORCH_INDEX=pypi takes PyPI's (on Linux the CUDA build: the GPU path),
# TORCH_INDEX=cpu the CPU build anywhere; also a variant (cu128) or an index address.
# Switching an existing .venv: `.venv/bin/pip uninstall -y torch`, then `make install TORCH_INDEX=...`.
TORCH_INDEX ?=
export TORCH_INDEX

# $(call install_torch,PYTHON): torch alone first, from the index tools/torch_index.py picks;
# then the requirements install everything else from PyPI, torch's own dependencies included
# (torch is then installed and satisfies its pin, so that index is asked for torch only).
define install_torch
$(1) -m pip install --quiet --no-deps $(CONSTRAINTS) $$($(1) tools/torch_index.py --explain) "$(TORCH_REQUIREMENT)"
endef

$(PY):
	$(PYTHON) -m venv $(VENV)

$(LEARNER_STAMP): pyproject.toml requirements.txt constraints.txt tools/torch_index.py | $(PY)
	@test -n "$(CONSTRAINTS)" || echo "Note: constraints.txt pins the versions CI tests on Python $(LOCK_PYTHON);" \
	  "$(PY) is Python $(PY_VERSION), so the ranges of requirements.txt are installed unpinned."
	$(call install_torch,$(PY))
	$(PY) -m pip install --quiet -r requirements.txt $(CONSTRAINTS) -e .
	@# jupyterlab-rise pulls in jupyterlab-mathjax3, which JupyterLab 4.6 flags as incompatible
	@# and which floods slideshows with "Maximum call stack size exceeded" errors; JupyterLab's
	@# built-in MathJax renders LaTeX in notebooks and RISE slides without it.
	$(VENV)/bin/jupyter labextension disable --level=sys_prefix @jupyterlab/mathjax3-extension >/dev/null 2>&1
	@# The course's prebuilt extension (labextension/README.md): lets the RISE slideshow load
	@# the widget manager, so sliders stay live in slides.  Linked, as editable installs do.
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/jupyter labextension develop --overwrite . >/dev/null
	touch $@

# nbgrader (the `grading` extra) brings its JupyterLab extension and the `notebook` package's,
# which fail to load in RISE slideshows; they stay installed here (an instructor grading in
# the browser needs them), and the browser tests run JupyterLab with the learner set's
# extensions only (tests/test_browser.py), as learners, who do not install nbgrader, have it.
$(FULL_STAMP): $(LEARNER_STAMP) requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt $(CONSTRAINTS) -e .
	touch $@

install: $(LEARNER_STAMP)  ## create .venv if missing and install the learner set (pinned)

install-dev: $(FULL_STAMP)  ## the learner set plus tests, lint, types and nbgrader (pinned)

# JupyterLab refuses to start as root unless told; containers and CI often run as root.
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: install  ## open JupyterLab on the course
	$(VENV)/bin/jupyter lab $(LAB_FLAGS) notebooks/

# The browser tests (tests/test_browser.py) drive Debian's chromium.  An explicit step, which
# CI (.ci/run) runs: `make test` without /usr/bin/chromium skips them, naming this target (in
# CI, where CI=true, they fail instead).  Needs root or sudo.
browser-deps:  ## install Debian's chromium for the browser tests (root or sudo)
	@if [ -x /usr/bin/chromium ]; then echo "chromium: $$(/usr/bin/chromium --version 2>/dev/null)"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi

# Test tiers (CONTRIBUTING.md, "Test tiers").  Both run on two pytest-xdist workers, each file
# (each notebook's cells) on one worker, one torch thread per worker.
#   make test      the contributor's check, under 5 minutes on 2 cores: unit tests, strict nbval of
#                  every notebook (each executes once), the student edition's exercises, a browser
#                  smoke test (panel gallery, RISE, one handout), lint and types.  No `slow` test.
#   make test-all  what CI runs (.ci/run, after `make browser-deps`): everything, `slow` included (every notebook in the
#                  browser, the student edition top to bottom, nbgrader's autograde), strict nbval
#                  once more with other numerics (torch's kernels without vector instructions, two
#                  threads; the same stored outputs must match), and `make test-colab`.
PYTEST        := $(PY) -m pytest -p no:cacheprovider
XDIST         := -n 2 --dist loadscope
# The longest files first, so that both workers finish together (pytest collects each path once).
TEST_PATHS    := tests/test_browser.py tests/test_types.py notebooks tests
OTHER_NUMERICS := ATEN_CPU_CAPABILITY=default OMP_NUM_THREADS=2 MKL_NUM_THREADS=2

.PHONY: test-all test-other-numerics
test: install-dev  ## unit tests + strict nbval + student exercises + browser smoke test (under 5 minutes)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PYTEST) $(XDIST) --durations=15 -m "not slow" $(TEST_PATHS) $(PYTEST_NBVAL)

# Each part runs even when an earlier one failed (CI reports everything); the exit status fails if any did.
test-all: install-dev  ## everything (what CI runs): slow tests, nbval with other numerics, test-colab
	@status=0; \
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PYTEST) $(XDIST) --durations=30 $(TEST_PATHS) $(PYTEST_NBVAL) || status=1; \
	$(MAKE) test-other-numerics || status=1; \
	$(MAKE) test-colab || status=1; \
	exit $$status

test-other-numerics: install-dev  ## strict nbval of every notebook with other CPU kernels and thread count
	$(OTHER_NUMERICS) $(PYTEST) notebooks $(PYTEST_NBVAL)

# Lint: ruff with the rules in pyproject.toml ([tool.ruff]) over code and notebooks; the same
# check runs in `make test` (tests/test_lint.py).  lint-fix applies ruff's safe fixes.
.PHONY: lint lint-fix
lint: install-dev  ## ruff over helpers, tools, tests, benchmarks and the notebooks
	$(PY) -m ruff check .

lint-fix: install-dev  ## apply ruff's safe fixes (import order and the like), then lint
	$(PY) -m ruff check --fix .

# Type check: mypy over the course package with the settings in pyproject.toml ([tool.mypy]);
# the same check runs in `make test` (tests/test_types.py).
.PHONY: typecheck
typecheck: install-dev  ## mypy over helpers
	$(PY) -m mypy

# The course in a Colab-like runtime (tests/colab/colab_check.py): a venv with Colab's versions
# (tests/colab/colab-versions.txt), the setup cell's install logic run against a clone of HEAD,
# pip asserted to install or upgrade nothing preinstalled, every notebook executed.  Temporary
# files are removed; reports go to test-artifacts/colab.  About 10 minutes; at most 55.
.PHONY: test-colab
test-colab: install-dev  ## every notebook in a Colab-like venv; the setup cell must upgrade nothing
	timeout --kill-after=30 55m $(PY) tests/colab/colab_check.py --budget-minutes 40

# The student edition (TEACHING.md, "Two editions"): nbgrader's generate_assignment with the
# course's configuration (tools/nbgrader_config.py): the solutions between `### BEGIN SOLUTION`
# and `### END SOLUTION` replaced by nbgrader's stub, the outputs cleared, the Colab badges and
# the setup cell's clone pointed at STUDENT_REF, the tag the edition is published under
# (default v<version>-student, from pyproject.toml), never at main.  student-publish builds the
# edition of the release tag RELEASE_TAG (default v<version>) and commits it as notebooks/ on
# top of that release, under STUDENT_REF (tools/student.py; nothing is pushed).
STUDENT_REF ?=
RELEASE_TAG ?=
.PHONY: student student-publish
student: install-dev  ## student edition (solutions replaced by stubs) in build/student
	rm -rf build/student
	$(PY) -m tools.student --output-dir build/student $(if $(STUDENT_REF),--ref $(STUDENT_REF)) notebooks/*.ipynb

student-publish: install-dev  ## commit the release's student edition under the tag v<version>-student (no push)
	$(PY) -m tools.student --publish $(if $(RELEASE_TAG),--release $(RELEASE_TAG)) $(if $(STUDENT_REF),--ref $(STUDENT_REF))

# The course table, notebooks/course.toml, is the one place a notebook's title, topic, lectures,
# time and budget are written; this rewrites what is generated from it (README's table,
# TEACHING's tables, notebook 00's course map; run times from benchmarks/results.json), and the
# lesson plans measured from the notebooks (tools/plans.py: each section's minutes, the header
# Time lines, course.toml's minutes, TEACHING's plans for one lab, two labs and the full course).
.PHONY: course
course: install-dev  ## regenerate the tables from notebooks/course.toml
	$(PY) -m tools.course

# Studies (studies/): the long multi-seed experiments, run once and stored with their provenance
# in data/studies, which the notebooks load.  `make studies` reruns them all (28 minutes
# on 2 idle cores, measured) and overwrites the stored results; `make studies-verify` reruns them into
# build/studies-verify, leaves the stored arrays alone, checks every claim on the rerun and
# records the outcome in each study's provenance; `make studies-check` checks that every
# stored study is present, intact and current (fast).  One study: python -m studies run NAME.
.PHONY: studies studies-verify studies-check
studies: install  ## rerun every study and store its results in data/studies
	$(PY) -m studies run all

studies-verify: install  ## rerun every study into a scratch folder and check the claims on the rerun
	$(PY) -m studies verify all

studies-check: install  ## every stored study present, intact and current
	$(PY) -m studies check

notebooks: install-dev  ## re-execute every notebook in place (deterministic)
	$(PY) -m tools.notebook_tools execute notebooks/*.ipynb

# Handouts: executed copies (with widget state) in build/executed, exported side by side
# with the JavaScript they need, so they open offline.  That JavaScript is committed in
# tools/vendor (no npm, no network); each export checks it against tools/vendor/SHA256SUMS
# and copies it to build/vendor.  Refreshing it from npm: tools/vendor/README.md.
EXECUTED := $(patsubst notebooks/%.ipynb,build/executed/%.ipynb,$(wildcard notebooks/*.ipynb))

build/executed/%.ipynb: notebooks/%.ipynb $(shell find helpers tools -name "*.py") | install-dev
	$(PY) -m tools.notebook_tools execute --widget-state --output-dir build/executed $<

html: $(EXECUTED)  ## self-contained HTML handouts in build/html
	$(PY) -m tools.handouts html --output-dir build/html $(EXECUTED)

slides: $(EXECUTED)  ## reveal.js slide decks in build/slides
	$(PY) -m tools.handouts slides --output-dir build/slides $(EXECUTED)

# Timings of every notebook (fresh kernel, 3 runs) and slider redraw, checked against
# the budgets in benchmarks/budgets.py; writes benchmarks/RESULTS.md and results.json.
.PHONY: bench
bench: install-dev  ## time notebooks and sliders; fails naming what is over budget
	$(PY) -m benchmarks.run

# A whole class on one server (not part of `make test`): N simulated students (notebooks 01 and
# 02, N = 1, 2, 4, 8, 16), each a kernel of its own started with jupyter_client, running the
# notebook and moving its slider at once; fits over N extrapolate to a class of 40.  Writes
# benchmarks/CLASSROOM.md and classroom.json.  About 20 minutes on 2 cores (1208 s measured).
CLASSROOM_ARGS ?=
.PHONY: classroom-bench
classroom-bench: install-dev  ## N students at once on this machine; writes benchmarks/CLASSROOM.md
	$(PY) -m benchmarks.classroom $(CLASSROOM_ARGS)

# Rebuild labextension/prebuilt from labextension/ (maintainers only: needs npm and network).
# The build is made against JupyterLab 4.3.4, the version the RISE app bundles.
JLAB_CORE := build/jupyterlab-4.3.4
.PHONY: labextension
labextension: install-dev  ## rebuild the prebuilt JupyterLab extension (needs npm)
	$(PY) -m pip download --quiet --no-deps jupyterlab==4.3.4 -d $(JLAB_CORE)
	$(PY) -c "import glob, zipfile; zipfile.ZipFile(glob.glob('$(JLAB_CORE)/*.whl')[0]).extract('jupyterlab/staging/package.json', '$(JLAB_CORE)')"
	cd labextension && npm ci --no-audit --no-fund && \
	  JUPYTERLAB_CORE="$(CURDIR)/$(JLAB_CORE)/jupyterlab/staging" npm run build && \
	  cp install.json LICENSE prebuilt/

# The lock is made from the full set on Python LOCK_PYTHON, so it pins every package of every
# set.  torch's pin drops the build's local label (2.13.0+cpu -> 2.13.0): `torch==2.13.0` then
# admits both PyTorch's CPU build and PyPI's (CUDA) build of that release, so the GPU path
# (TORCH_INDEX=pypi) installs the same pinned release.
lock: install-dev  ## refresh constraints.txt from the installed full set
	@test "$(PY_VERSION)" = "$(LOCK_PYTHON)" || { echo "make lock needs Python $(LOCK_PYTHON) in $(VENV), not $(PY_VERSION)"; exit 1; }
	(echo "# Exact versions of every install set (pip constraints file; regenerate with 'make lock')."; \
	 $(PY) -m pip freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu$$/torch==\1/') > constraints.txt
	$(MAKE) hub-files

# The hub's and Binder's pinned learner set (deploy/requirements-learner.txt, .binder/environment.yml)
# is generated from pyproject's learner set and constraints.txt (tools/hub.py); tests/test_deploy.py
# fails when they drift.
.PHONY: hub-files
hub-files: install  ## regenerate the hub's and Binder's pinned learner set from constraints.txt
	$(PY) -m tools.hub generate

clean:  ## remove the virtual environment and build products
	rm -rf $(VENV) build test-artifacts .pytest_cache *.egg-info labextension/node_modules
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
