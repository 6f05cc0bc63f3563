#!/usr/bin/env bash
# Runs the page's browser test: installs Chromium, its driver and Selenium when missing (Debian and PyPI
# packages), starts the example server on a free loopback port, runs test_page.py, and stops the server by
# its pid. Writes the screenshot to $BROWSER_OUT (default: .build/browser under the example).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromedriver >/dev/null || ! { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; }; then
    echo "installing chromium and chromium-driver from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
venv=.build/browser-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -c 'import selenium' 2>/dev/null || "$venv/bin/pip" install -q selenium

out=${BROWSER_OUT:-.build/browser}
mkdir -p "$out"
source ./serve.sh
start_server --slots 1 --step-ms 100 --test-hooks
"$venv/bin/python" browser/test_page.py "http://127.0.0.1:$port" "$out/screenshot.png"
echo "screenshot: $out/screenshot.png"
