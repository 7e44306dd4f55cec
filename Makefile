# The course's commands.  `make lab` to learn, `make test` to check everything.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg --nbval-cell-timeout=600

.PHONY: install lab test notebooks html slides lock clean

$(STAMP): pyproject.toml requirements.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt -e .
	@# jupyterlab-rise pulls in jupyterlab-mathjax3, which JupyterLab 4.6 flags as incompatible
	@# and which floods slideshows with "Maximum call stack size exceeded" errors; JupyterLab's
	@# built-in MathJax renders LaTeX in notebooks and RISE slides without it.
	$(VENV)/bin/jupyter labextension disable --level=sys_prefix @jupyterlab/mathjax3-extension >/dev/null 2>&1
	@# nbgrader (installed for `make student` and the grading tests) and the `notebook` package it
	@# pulls in add JupyterLab extensions.  The RISE slideshow loads every installed extension,
	@# disabled or not, and these two fail to load there (JavaScript errors, caught by
	@# tests/test_browser.py), so their front-end files are removed and the nbgrader server
	@# extensions switched off: the course's lab stays as it was.  Grading in the browser:
	@# TEACHING.md, "Build-it-yourself exercises and grading".
	rm -rf $(VENV)/share/jupyter/labextensions/@jupyter/nbgrader $(VENV)/share/jupyter/labextensions/@jupyter-notebook
	for ext in formgrader validate_assignment assignment_list course_list; do \
	  $(VENV)/bin/jupyter server extension disable --sys-prefix nbgrader.server_extensions.$$ext >/dev/null 2>&1; done
	@# The course's prebuilt extension (labextension/README.md): lets the RISE slideshow load
	@# the widget manager, so sliders stay live in slides.  Linked, as editable installs do.
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/jupyter labextension develop --overwrite . >/dev/null
	touch $(STAMP)

install: $(STAMP)  ## create .venv if missing and install the pinned packages

# JupyterLab refuses to start as root unless told; containers and CI often run as root.
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: install  ## open JupyterLab on the course
	$(VENV)/bin/jupyter lab $(LAB_FLAGS) notebooks/

# The browser tests (tests/test_browser.py) drive Debian's chromium; installed here when
# missing (as root or in CI), else they are skipped saying how to install it (CI fails).
.PHONY: chromium
chromium:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  elif [ "$${CI:-}" = true ] && command -v sudo >/dev/null; then \
	    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "Chromium is missing, so the browser tests will be skipped: sudo apt-get install chromium"; fi; }

# Test tiers (CONTRIBUTING.md, "Test tiers").  Both run on two pytest-xdist workers, each file
# (each notebook's cells) on one worker, one torch thread per worker.
#   make test      the contributor's check, under 5 minutes on 2 cores: unit tests, strict nbval of
#                  every notebook (each executes once), the student edition's exercises, a browser
#                  smoke test (panel gallery, RISE, one handout), lint and types.  No `slow` test.
#   make test-all  what CI runs (.ci/run): everything, `slow` included (every notebook in the
#                  browser, the student edition top to bottom, nbgrader's autograde), strict nbval
#                  once more with other numerics (torch's kernels without vector instructions, two
#                  threads; the same stored outputs must match), and `make test-colab`.
PYTEST        := $(PY) -m pytest -p no:cacheprovider
XDIST         := -n 2 --dist loadscope
# The longest files first, so that both workers finish together (pytest collects each path once).
TEST_PATHS    := tests/test_browser.py tests/test_types.py notebooks tests
OTHER_NUMERICS := ATEN_CPU_CAPABILITY=default OMP_NUM_THREADS=2 MKL_NUM_THREADS=2

.PHONY: test-all test-other-numerics
test: install chromium  ## unit tests + strict nbval + student exercises + browser smoke test (under 5 minutes)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PYTEST) $(XDIST) --durations=15 -m "not slow" $(TEST_PATHS) $(PYTEST_NBVAL)

# Each part runs even when an earlier one failed (CI reports everything); the exit status fails if any did.
test-all: install chromium  ## everything (what CI runs): slow tests, nbval with other numerics, test-colab
	@status=0; \
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PYTEST) $(XDIST) --durations=30 $(TEST_PATHS) $(PYTEST_NBVAL) || status=1; \
	$(MAKE) test-other-numerics || status=1; \
	$(MAKE) test-colab || status=1; \
	exit $$status

test-other-numerics: install  ## strict nbval of every notebook with other CPU kernels and thread count
	$(OTHER_NUMERICS) $(PYTEST) notebooks $(PYTEST_NBVAL)

# Lint: ruff with the rules in pyproject.toml ([tool.ruff]) over code and notebooks; the same
# check runs in `make test` (tests/test_lint.py).  lint-fix applies ruff's safe fixes.
.PHONY: lint lint-fix
lint: install  ## ruff over helpers, tools, tests, benchmarks and the notebooks
	$(PY) -m ruff check .

lint-fix: install  ## apply ruff's safe fixes (import order and the like), then lint
	$(PY) -m ruff check --fix .

# Type check: mypy over the course package with the settings in pyproject.toml ([tool.mypy]);
# the same check runs in `make test` (tests/test_types.py).
.PHONY: typecheck
typecheck: install  ## mypy over helpers
	$(PY) -m mypy

# The course in a Colab-like runtime (tests/colab/colab_check.py): a venv with Colab's versions
# (tests/colab/colab-versions.txt), the setup cell's install logic run against a clone of HEAD,
# pip asserted to install or upgrade nothing preinstalled, every notebook executed.  Temporary
# files are removed; reports go to test-artifacts/colab.  About 10 minutes; at most 55.
.PHONY: test-colab
test-colab: install  ## every notebook in a Colab-like venv; the setup cell must upgrade nothing
	timeout --kill-after=30 55m $(PY) tests/colab/colab_check.py --budget-minutes 40

# The student edition: every notebook with the solutions between `### BEGIN SOLUTION` and
# `### END SOLUTION` replaced by nbgrader's stub and the outputs cleared, as nbgrader's own
# preprocessors do it (tools/student.py).  STUDENT_REF: the branch or tag the edition is
# published under, which its Colab badges open.
STUDENT_REF ?= student
.PHONY: student
student: install  ## student edition (solutions replaced by stubs) in build/student
	$(PY) -m tools.student --output-dir build/student --ref $(STUDENT_REF) notebooks/*.ipynb

# The course table, notebooks/course.toml, is the one place a notebook's title, topic, lectures,
# time and budget are written; this rewrites what is generated from it (README's table,
# TEACHING's tables, notebook 00's course map; run times from benchmarks/results.json).
.PHONY: course
course: install  ## regenerate the tables from notebooks/course.toml
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

notebooks: install  ## re-execute every notebook in place (deterministic)
	$(PY) -m tools.notebook_tools execute notebooks/*.ipynb

# Handouts: executed copies (with widget state) in build/executed, exported side by side
# with the JavaScript they need, so they open offline.  That JavaScript is committed in
# tools/vendor (no npm, no network); each export checks it against tools/vendor/SHA256SUMS
# and copies it to build/vendor.  Refreshing it from npm: tools/vendor/README.md.
EXECUTED := $(patsubst notebooks/%.ipynb,build/executed/%.ipynb,$(wildcard notebooks/*.ipynb))

build/executed/%.ipynb: notebooks/%.ipynb $(shell find helpers tools -name "*.py") | install
	$(PY) -m tools.notebook_tools execute --widget-state --output-dir build/executed $<

html: $(EXECUTED)  ## self-contained HTML handouts in build/html
	$(PY) -m tools.handouts html --output-dir build/html $(EXECUTED)

slides: $(EXECUTED)  ## reveal.js slide decks in build/slides
	$(PY) -m tools.handouts slides --output-dir build/slides $(EXECUTED)

# Timings of every notebook (fresh kernel, 3 runs) and slider redraw, checked against
# the budgets in benchmarks/budgets.py; writes benchmarks/RESULTS.md and results.json.
.PHONY: bench
bench: install  ## time notebooks and sliders; fails naming what is over budget
	$(PY) -m benchmarks.run

# A whole class on one server (not part of `make test`): a real JupyterHub on 127.0.0.1 with
# N simulated students (1, 5, 10, 20) running a notebook and moving its slider at once;
# writes benchmarks/CLASSROOM.md and classroom.json.  The hub gets its own environment in
# build/classroom (the shared .venv is left alone), configurable-http-proxy comes from npm.
# Takes about 8 minutes on 2 cores (460 s measured); needs an otherwise idle machine to mean anything.
CLASSROOM        := build/classroom
CLASSROOM_PY     := $(CLASSROOM)/venv/bin/python
CLASSROOM_STAMP  := $(CLASSROOM)/venv/.installed
JUPYTERHUB_PIN   := jupyterhub==6.1.1
CHP_PIN          := configurable-http-proxy@5.3.0
CLASSROOM_ARGS   ?=

$(CLASSROOM_STAMP): pyproject.toml requirements.txt constraints.txt
	test -x $(CLASSROOM_PY) || $(PYTHON) -m venv $(CLASSROOM)/venv
	$(CLASSROOM_PY) -m pip install --quiet -r requirements.txt -c constraints.txt -e . $(JUPYTERHUB_PIN)
	cd $(CLASSROOM) && npm install --no-audit --no-fund --silent --save-exact $(CHP_PIN)
	touch $(CLASSROOM_STAMP)

.PHONY: classroom-bench
classroom-bench: $(CLASSROOM_STAMP)  ## N students at once on a local JupyterHub; writes benchmarks/CLASSROOM.md
	$(CLASSROOM_PY) -m benchmarks.classroom $(CLASSROOM_ARGS)

# Rebuild labextension/prebuilt from labextension/ (maintainers only: needs npm and network).
# The build is made against JupyterLab 4.3.4, the version the RISE app bundles.
JLAB_CORE := build/jupyterlab-4.3.4
.PHONY: labextension
labextension: install  ## rebuild the prebuilt JupyterLab extension (needs npm)
	$(PY) -m pip download --quiet --no-deps jupyterlab==4.3.4 -d $(JLAB_CORE)
	$(PY) -c "import glob, zipfile; zipfile.ZipFile(glob.glob('$(JLAB_CORE)/*.whl')[0]).extract('jupyterlab/staging/package.json', '$(JLAB_CORE)')"
	cd labextension && npm ci --no-audit --no-fund && \
	  JUPYTERLAB_CORE="$(CURDIR)/$(JLAB_CORE)/jupyterlab/staging" npm run build && \
	  cp install.json LICENSE prebuilt/

lock: install  ## refresh constraints.txt from the installed environment
	(echo "# Exact versions CI and 'make' install (pip constraints file; regenerate with 'make lock')."; \
	 $(PY) -m pip freeze --exclude-editable | sed 's/+cpu$$//') > constraints.txt

clean:  ## remove the virtual environment and build products
	rm -rf $(VENV) build test-artifacts .pytest_cache *.egg-info labextension/node_modules
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
