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
    "$venv/bin/pip" install -q "schemathesis>=4,<5"
fi

out=${OPENAPI_OUT:-.build/openapi}
mkdir -p "$out"
source ./serve.sh
# A default start (no test hooks), with quick steps so that the jobs the run submits end within its requests.
start_server --step-ms 1 --token-ms 1

"$venv/bin/st" run "http://127.0.0.1:$port/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --max-examples 50 --seed 20261205 --request-timeout 30 \
    --report har --report-har-path "$out/run.har"

kill -0 "$server" || { echo "the server is gone after the run" >&2; cat "$out/server.log" >&2; exit 1; }
"$venv/bin/python" openapi/reached.py "$out/run.har"
