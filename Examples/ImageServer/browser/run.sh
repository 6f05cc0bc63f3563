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
swift build --product ImageServer
binary="$(swift build --show-bin-path)/ImageServer"
port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$binary" --host 127.0.0.1 --port "$port" --slots 1 --step-ms 100 --test-hooks >"$out/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do
    if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/queue')" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
"$venv/bin/python" browser/test_page.py "http://127.0.0.1:$port" "$out/screenshot.png"
echo "screenshot: $out/screenshot.png"
