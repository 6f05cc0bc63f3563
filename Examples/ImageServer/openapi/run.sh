#!/usr/bin/env bash
# Runs schemathesis (PyPI, installed in a virtual environment when missing) against a live example server on a
# free loopback port, from the server's own /openapi.json: every response must match the document (status
# code, content type, headers, schema), none may be a 5xx, and the server must still be running at the end.
# The stateful phase follows the document's links from a 202 to the job routes with the new owner's
# session, and the check below asks that it reached them. Stops the server by its pid.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.build/schemathesis-venv
if [ ! -x "$venv/bin/st" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q schemathesis
fi

out=${OPENAPI_OUT:-.build/openapi}
mkdir -p "$out"
swift build --product ImageServer
binary="$(swift build --show-bin-path)/ImageServer"
port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# A default start (no test hooks), with quick steps so that the jobs the run submits end within its requests.
"$binary" --host 127.0.0.1 --port "$port" --step-ms 1 --token-ms 1 >"$out/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do
    if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/queue')" 2>/dev/null; then
        break
    fi
    sleep 0.1
done

"$venv/bin/st" run "http://127.0.0.1:$port/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --max-examples 50 --seed 20261205 --request-timeout 30 \
    --report har --report-har-path "$out/run.har"

kill -0 "$server" || { echo "the server is gone after the run" >&2; cat "$out/server.log" >&2; exit 1; }
"$venv/bin/python" openapi/reached.py "$out/run.har"
