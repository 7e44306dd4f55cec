#!/usr/bin/env bash
# The course on The Littlest JupyterHub (TLJH), in an environment and a kernel of its own.
#
#   sudo git clone <course repository> /srv/init-norm-course
#   sudo /srv/init-norm-course/deploy/tljh/install-course.sh
#
# 1. Creates /opt/init-norm-course, a conda environment with Python 3.11 (TLJH's conda), and
#    installs there the learners' packages at the versions CI tests
#    (deploy/requirements-learner.txt, generated from pyproject.toml and constraints.txt),
#    torch as its CPU build on a server without an NVIDIA GPU (tools/torch_index.py decides, as
#    for `make install`), then the course package from this clone (editable: `helpers` reads
#    data/ next to itself).  TLJH's shared user environment gets no pinned package.
# 2. Registers the environment's kernel, "Init-norm course (Python 3.11)", for every user, with
#    HF_HUB_OFFLINE=1 (notebook 05 uses the shipped GPT-2 snapshot without trying the hub) and
#    one thread per kernel (OMP/MKL/OPENBLAS_NUM_THREADS=1, as measured in benchmarks/CLASSROOM.md).
# 3. With AS_DEFAULT=1, also makes it the kernel the notebooks ask for ("python3"), for this
#    hub's users only, so no student has to choose a kernel (for a hub that serves this course;
#    see deploy/tljh/README.md).
# 4. Checks what the students' JupyterLab needs (the ipywidgets front-end, nbgitpuller) and runs
#    notebook 00's package check in the new kernel's environment.
#
# Run it again after `git pull` in the clone: it brings the environment to the new pins.
# Settings (environment variables): COURSE_ENV (default /opt/init-norm-course), HUB_PREFIX
# (TLJH's user environment, /opt/tljh/user), TLJH_CONFIG (/opt/tljh/config), KERNEL_NAME
# (init-norm-course), PYTHON (a Python 3.11 to make a venv with, instead of conda),
# TORCH_INDEX (cpu, pypi, a PyTorch variant or an index address: tools/torch_index.py), AS_DEFAULT.
set -euo pipefail

COURSE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
COURSE_ENV="${COURSE_ENV:-/opt/init-norm-course}"
HUB_PREFIX="${HUB_PREFIX:-/opt/tljh/user}"
TLJH_CONFIG="${TLJH_CONFIG:-/opt/tljh/config}"
KERNEL_NAME="${KERNEL_NAME:-init-norm-course}"
DISPLAY_NAME="${DISPLAY_NAME:-Init-norm course (Python 3.11)}"
AS_DEFAULT="${AS_DEFAULT:-0}"
REQUIREMENTS="$COURSE_DIR/deploy/requirements-learner.txt"
KERNEL_ENV=(HF_HUB_OFFLINE 1 OMP_NUM_THREADS 1 MKL_NUM_THREADS 1 OPENBLAS_NUM_THREADS 1)

say() { printf '\n== %s\n' "$*"; }
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

[ -f "$REQUIREMENTS" ] || fail "$REQUIREMENTS is missing: run this script from the course clone"
[ -x "$HUB_PREFIX/bin/python" ] || fail "no TLJH user environment at $HUB_PREFIX (set HUB_PREFIX)"

say "1. the course environment in $COURSE_ENV"
if [ ! -x "$COURSE_ENV/bin/python" ]; then
  if [ -n "${PYTHON:-}" ]; then
    "$PYTHON" -m venv "$COURSE_ENV"
  else
    "$HUB_PREFIX/bin/conda" create --yes --quiet --prefix "$COURSE_ENV" -c conda-forge python=3.11 pip
  fi
fi
version="$("$COURSE_ENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[ "$version" = 3.11 ] || fail "$COURSE_ENV has Python $version; the pins are tested with 3.11"
read -r -a index <<< "$("$COURSE_ENV/bin/python" "$COURSE_DIR/tools/torch_index.py" --explain)"
"$COURSE_ENV/bin/python" -m pip install --quiet "${index[@]}" -r "$REQUIREMENTS"
"$COURSE_ENV/bin/python" -m pip install --quiet --no-deps -e "$COURSE_DIR"

say "2. the kernel \"$DISPLAY_NAME\" for every user"
env_args=()
for ((i = 0; i < ${#KERNEL_ENV[@]}; i += 2)); do env_args+=(--env "${KERNEL_ENV[i]}" "${KERNEL_ENV[i+1]}"); done
"$COURSE_ENV/bin/python" -m ipykernel install --prefix "$HUB_PREFIX" --name "$KERNEL_NAME" \
  --display-name "$DISPLAY_NAME" "${env_args[@]}"

if [ "$AS_DEFAULT" = 1 ]; then
  say "3. the course kernel answers for \"python3\" on this hub"
  "$COURSE_ENV/bin/python" -m ipykernel install --prefix "$COURSE_ENV/share/default-kernel" --name python3 \
    --display-name "$DISPLAY_NAME" "${env_args[@]}"
  mkdir -p "$TLJH_CONFIG/jupyterhub_config.d"
  cat > "$TLJH_CONFIG/jupyterhub_config.d/init-norm-course.py" <<PY
# Written by deploy/tljh/install-course.sh (AS_DEFAULT=1): the kernel named "python3", which the
# course's notebooks ask for, is the course's own (JUPYTER_PATH is searched before the shared
# environment's kernels).  Delete this file and run 'sudo tljh-config reload' to undo.
c.Spawner.environment.update({"JUPYTER_PATH": "$COURSE_ENV/share/default-kernel/share/jupyter"})
PY
  echo "wrote $TLJH_CONFIG/jupyterhub_config.d/init-norm-course.py: run 'sudo tljh-config reload'"
fi

say "4. what the students' JupyterLab needs"
if ! "$HUB_PREFIX/bin/python" -c 'import jupyterlab_widgets, sys; sys.exit(jupyterlab_widgets.__version__.split(".")[0] != "3")' 2>/dev/null; then
  fail "the sliders need the ipywidgets 8 front-end in the hub's JupyterLab: sudo $HUB_PREFIX/bin/pip install 'jupyterlab_widgets>=3,<4'"
fi
"$HUB_PREFIX/bin/python" -c 'import nbgitpuller' 2>/dev/null \
  || fail "nbgitpuller links need nbgitpuller in the hub's environment: sudo $HUB_PREFIX/bin/pip install nbgitpuller"
env HF_HUB_OFFLINE=1 "$COURSE_ENV/bin/python" - <<'PY'
from helpers.environment import check_packages, python_version

checks = check_packages()
for check in checks:
    print(f"{'OK  ' if check.ok else 'FAIL'} {check.name:<13} {check.version}")
print(f"     python        {python_version()}")
if not all(check.ok for check in checks):
    raise SystemExit("install the packages marked FAIL")
PY
say "done: students open the notebooks with the kernel \"$DISPLAY_NAME\""
