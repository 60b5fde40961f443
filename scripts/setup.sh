#!/usr/bin/env bash
# Create .venv and install rclone-jupyter into it (editable). With "test": the test dependencies too,
# and Azurite (npm) for the Azure tests. Idempotent; installs missing system packages with apt when root.
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
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
if [ "${1:-}" = "test" ] && [ -f tests/azurite/package.json ] && [ ! -x tests/azurite/node_modules/.bin/azurite-blob ]; then
    command -v npm >/dev/null 2>&1 || apt_install nodejs npm
    npm install --prefix tests/azurite --no-audit --no-fund --silent
fi
