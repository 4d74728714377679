#!/usr/bin/env bash
# Conformance stage: odprep's outputs fed to the real TF Object Detection API and Model Garden, in their own
# virtual environment (TF 2.15: the OD API's inputs module still imports tf.estimator).
set -euo pipefail
cd "$(dirname "$0")/.."
vendor=../shared/vendor
if ! ls "$vendor"/tf-slim-*.tar.gz >/dev/null 2>&1; then
  echo "conformance: skipped: ../shared/vendor/tf-slim-*.tar.gz is absent (the OD API needs that tf-slim)"
  exit 0
fi
started=$(date +%s)
env_dir=.venv-conformance
python3 -m venv "$env_dir"
# shellcheck disable=SC1091
. "$env_dir/bin/activate"
python -m pip install -q --upgrade pip
python -m pip install -q -r conformance/requirements.txt
python -m pip install -q --no-deps "tf-models-research-object-detection==2.8.0.post1"
slim=$(mktemp -d)
trap 'rm -rf "$slim"' EXIT
tar -xzf "$vendor"/tf-slim-*.tar.gz -C "$slim"
python -m pip install -q --no-deps "$slim"/*/
python conformance/regenerate_od_protos.py
python -m pip install -q -e .
echo "conformance: environment ready in $(( $(date +%s) - started )) s"
python -m pytest -q -p no:cacheprovider conformance
echo "conformance: stage took $(( $(date +%s) - started )) s"
