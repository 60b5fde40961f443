#!/usr/bin/env bash
# Set up (first run only) and run the whole loop locally: JupyterLab on http://localhost:8000 (password
# "data"), its data folder ./demo/data synced to a built-in S3 server whose bucket is ./demo/bucket.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/rclone-jupyter demo "$@"
