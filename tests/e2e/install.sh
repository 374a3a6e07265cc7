#!/bin/sh
# Install what the end-to-end browser test needs: Debian's chromium and the Playwright
# Python package (driving that chromium through executable_path; never `playwright install`).
# Idempotent and quick when everything is present.
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
python="$here/.venv/bin/python"
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
    fi
fi
if ! "$python" -c "import playwright" >/dev/null 2>&1; then
    "$python" -m pip install -q playwright
fi
