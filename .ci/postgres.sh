#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server on a free loopback port for the `Postgres` trait's tests and the
# cluster demo; installs Debian's `postgresql` package when no server binaries are found. Source it:
#
#   source .ci/postgres.sh && postgres_start    # exports CQ_POSTGRES_URL and CQ_POSTGRES_RESTART
#   ...
#   postgres_stop                                # stops the server by its pid, removes its folder
#
# The server refuses to run as root, so as root it runs as the `postgres` user. Settings are for tests
# (no fsync); never point it at data you keep.

postgres_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

postgres_start() {
    if [ -z "$(postgres_bin)" ]; then
        echo "installing PostgreSQL from Debian's packages"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
    fi
    local bin; bin=$(postgres_bin)
    CQ_POSTGRES_DIR=$(mktemp -d)
    local run=""
    if [ "$(id -u)" = 0 ]; then
        chown postgres:postgres "$CQ_POSTGRES_DIR"
        run="runuser -u postgres --"
    fi
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    $run "$bin/initdb" -D "$CQ_POSTGRES_DIR/data" -U cq --auth=trust -E UTF8 --no-locale --no-sync >/dev/null
    local options="-c listen_addresses=127.0.0.1 -p $port -k $CQ_POSTGRES_DIR -c fsync=off"
    options="$options -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    # What the restart fault test runs: a fast stop, then a start with the same settings.
    cat >"$CQ_POSTGRES_DIR/restart.sh" <<SCRIPT
#!/usr/bin/env bash
set -e
$run "$bin/pg_ctl" -D "$CQ_POSTGRES_DIR/data" -m fast -w stop >/dev/null
sleep "\${1:-0}"
$run "$bin/pg_ctl" -D "$CQ_POSTGRES_DIR/data" -l "$CQ_POSTGRES_DIR/log" -w -t 30 -o "$options" start >/dev/null
SCRIPT
    chmod +x "$CQ_POSTGRES_DIR/restart.sh"
    $run "$bin/pg_ctl" -D "$CQ_POSTGRES_DIR/data" -l "$CQ_POSTGRES_DIR/log" -w -t 30 -o "$options" start >/dev/null
    psql -q -h 127.0.0.1 -p "$port" -U cq -d postgres -c 'CREATE DATABASE cqtest'
    export CQ_POSTGRES_DIR
    export CQ_POSTGRES_URL="postgres://cq@127.0.0.1:$port/cqtest"
    export CQ_POSTGRES_RESTART="$CQ_POSTGRES_DIR/restart.sh"
    echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($CQ_POSTGRES_DIR)"
}

postgres_stop() {
    [ -n "${CQ_POSTGRES_DIR:-}" ] || return 0
    local pidfile="$CQ_POSTGRES_DIR/data/postmaster.pid"
    if [ -f "$pidfile" ]; then
        local pid; pid=$(head -1 "$pidfile")
        kill -INT "$pid" 2>/dev/null || true  # fast shutdown
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$CQ_POSTGRES_DIR"
    unset CQ_POSTGRES_DIR CQ_POSTGRES_URL CQ_POSTGRES_RESTART
}
