# Sourced by the example's test scripts: builds the server (debug), starts it on a free loopback port with the
# arguments given, waits until it answers, and stops it by its pid when the script exits. Sets $port and
# $server. Needs $venv (a virtual environment's folder) and $out (where the server's log goes).
start_server() {
    swift build --product ImageServer
    local binary
    binary="$(swift build --show-bin-path)/ImageServer"
    port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$binary" --host 127.0.0.1 --port "$port" "$@" >"$out/server.log" 2>&1 &
    server=$!
    trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
    for _ in $(seq 1 200); do
        if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/queue')" 2>/dev/null; then
            return
        fi
        sleep 0.1
    done
    echo "the server did not answer on port $port" >&2
    cat "$out/server.log" >&2
    return 1
}
