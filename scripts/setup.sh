#!/usr/bin/env bash
# Create .venv and install rclone-jupyter into it (editable), with its JupyterLab extension built from
# labextension/ (npm) when the build is missing or older than its sources. With "test": the test dependencies
# too, Azurite (npm) for the Azure tests and Chromium for the browser tests. Idempotent; installs missing
# system packages with apt when root.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

apt_install() {
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        echo "ERROR: missing system packages: $*. Install them (e.g. sudo apt-get install $*) and run again." >&2
        exit 1
    fi
}

if [ ! -x .venv/bin/python ]; then
    # Debian's python3 needs python3-venv for ensurepip.
    "$PYTHON" -c "import ensurepip, venv" 2>/dev/null || apt_install python3-venv
    "$PYTHON" -m venv .venv
fi
extras=""
if [ "${1:-}" = "test" ]; then
    extras="[test]"
fi
# uv installs into the venv what pip would (the same versions, compared with `pip freeze`) in 11 s instead
# of 28, byte-compiling in parallel; pip does it where uv cannot be installed.
if .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv>=0.5,<1" 2> .venv/uv-install.log; then
    install=(.venv/bin/uv pip install --quiet --python .venv/bin/python --compile-bytecode)
else
    install=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
fi
need_node() {
    command -v npm >/dev/null 2>&1 || apt_install nodejs npm
}

# The npm and apt steps below run beside the Python install (they need nothing from it: the editable install
# does not read the built extension), which takes half a minute on its own.
background=()
wait_all() {
    local pid
    for pid in "${background[@]}"; do
        wait "$pid"  # a step that failed fails the setup (set -e)
    done
}

# The JupyterLab extension: TypeScript in labextension/, built into rclone_jupyter/labextension (not in git).
# Node comes from PATH when new enough, else from PyPI (labextension/build.sh).
built=rclone_jupyter/labextension/package.json
if [ ! -f "$built" ] || [ -n "$(find labextension/src labextension/style labextension/package.json \
        labextension/package-lock.json labextension/tsconfig.json -newer "$built" -print -quit)" ]; then
    PYTHON="$PWD/.venv/bin/python" bash labextension/build.sh &
    background+=($!)
fi
if [ "${1:-}" = "test" ] && [ -f tests/azurite/package.json ] && [ ! -x tests/azurite/node_modules/.bin/azurite-blob ]; then
    need_node  # in the foreground: apt runs one at a time
    npm install --prefix tests/azurite --no-audit --no-fund --silent &
    background+=($!)
fi
if [ "${1:-}" = "test" ] && ! command -v chromium >/dev/null 2>&1; then
    # The browser tests drive Debian's chromium with Playwright (`playwright install` cannot download here).
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt_install chromium &
        background+=($!)
    else
        echo "WARNING: chromium is missing: the browser tests will be skipped (apt-get install chromium)." >&2
    fi
fi
# setuptools' warnings about the built extension's folder are noise for a user: kept in a log, shown on failure.
# Byte-compiled here: skipped, each of the test run's processes compiled what it imports, the same modules
# several times over (the run took 30 s longer).
if ! "${install[@]}" -e ".${extras}" 2> .venv/pip-install.log; then
    cat .venv/pip-install.log >&2
    exit 1
fi
wait_all
# An editable install leaves out the wheel's data files: link the extension, its server config and JupyterLab's
# default settings to where the wheel puts them (share/jupyter/labextensions, etc/jupyter/jupyter_server_config.d,
# share/jupyter/lab/settings/overrides.d) so JupyterLab finds them.
mkdir -p .venv/share/jupyter/labextensions .venv/etc/jupyter/jupyter_server_config.d \
    .venv/share/jupyter/lab/settings/overrides.d
rm -rf .venv/share/jupyter/labextensions/rclone-jupyter
ln -s "$PWD/rclone_jupyter/labextension" .venv/share/jupyter/labextensions/rclone-jupyter
ln -sf "$PWD/jupyter-config/server-config/rclone_jupyter.json" .venv/etc/jupyter/jupyter_server_config.d/
ln -sf "$PWD/jupyter-config/lab-settings/overrides.d/rclone-jupyter.json" .venv/share/jupyter/lab/settings/overrides.d/
