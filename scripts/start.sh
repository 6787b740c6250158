#!/usr/bin/env bash
# `npm start`: refuses at once when the local cluster is already up (before installing or
# building anything), else runs the setup (apt, npm ci, incremental build) and brings it up.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -e /run/flotilla-harness/demo.json ]; then
  echo 'cluster: a local cluster is already up (npm run cluster -- status); run `npm run cluster -- down` first' >&2
  exit 1
fi
bash scripts/setup.sh
exec node dist/scripts/cluster.js up
