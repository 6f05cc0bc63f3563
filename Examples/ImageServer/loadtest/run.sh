#!/usr/bin/env bash
# Builds ImageServer in release mode, installs Gradio and httpx into a virtual environment (PyPI) when
# missing, and runs loadtest.py against both. Extra arguments go to loadtest.py (--runs, --clients, ...).
# Run by hand: it takes several minutes, most of them Gradio's. CI does not run it.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.build/loadtest-venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -c 'import gradio, httpx' 2>/dev/null || "$venv/bin/pip" install -q "gradio>=6,<7" httpx
swift build -c release --product ImageServer
binary="$(swift build -c release --show-bin-path)/ImageServer"
"$venv/bin/python" loadtest/loadtest.py --swift "$binary" --gradio-python "$venv/bin/python" "$@"
