#!/usr/bin/env bash
# Writes deploy/'s plain manifests (what `kubectl apply -k deploy/` applies)
# from the Helm chart's default render, so the two never drift: edit the
# chart, then run this. tests/helm.rs fails while they differ.
# namespace.yaml and kustomization.yaml are written by hand.
#
# Needs Helm's engine from scripts/test-servers.sh (helm-python-sdk).
set -euo pipefail
cd "$(dirname "$0")/.."
env_file=${AETHERIUS_CACHE:-/var/cache/aetherius}/servers.env
[[ -f $env_file ]] || ./scripts/test-servers.sh
# shellcheck source=/dev/null
. "$env_file"
"$HELM_PYTHON" tests/helm/render.py manifests deploy/helm/aetherius deploy
