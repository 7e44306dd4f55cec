#!/usr/bin/env bash
# Build, push and deploy the course image on Zero to JupyterHub (deploy/z2jh/README.md).
#
#   deploy/z2jh/deploy.sh <registry>/init-norm-course your-site.yaml
#
# The image's tag is derived from the files it is built from (`python -m tools.hub image-tag`),
# so the chart always runs the image of this checkout: when those files change, the tag changes,
# a new image is built and the pre-puller fetches it; when only notebooks change (students get
# them through nbgitpuller), the image is reused.  Needs docker, helm, a pushable registry, and
# the course's .venv (`make install`) for tools.hub.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
IMAGE="${1:?usage: deploy/z2jh/deploy.sh <registry>/<image name> <site values file>}"
SITE="${2:?usage: deploy/z2jh/deploy.sh <registry>/<image name> <site values file>}"
PYTHON="${PYTHON:-.venv/bin/python}"

# The Binder recipe must hold the pins of constraints.txt, or the image is not what CI tested.
"$PYTHON" -m tools.hub check
TAG="$("$PYTHON" -m tools.hub image-tag)"

if docker manifest inspect "$IMAGE:$TAG" >/dev/null 2>&1; then
  echo "$IMAGE:$TAG is in the registry already: not rebuilt"
else
  jupyter-repo2docker --no-run --user-name jovyan --user-id 1000 --image-name "$IMAGE:$TAG" .
  docker push "$IMAGE:$TAG"
fi

helm upgrade --install course jupyterhub/jupyterhub --namespace course --create-namespace \
  --values deploy/z2jh/values.yaml --values "$SITE" \
  --set-string singleuser.image.name="$IMAGE" --set-string singleuser.image.tag="$TAG"
echo "deployed $IMAGE:$TAG"
