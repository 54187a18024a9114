#!/usr/bin/env bash
# A throwaway PostgreSQL for local runs and tests.
#
#   local/pg.sh start <dir>   initdb in <dir>, start on a free 127.0.0.1 port (unix sockets in <dir>,
#                             trust auth), create database `dev`; the LAST line on stdout is
#                             postgres://postgres@127.0.0.1:<port>/dev
#   local/pg.sh stop <dir>    stop that server and remove <dir>
#
# As root, the server runs as the `postgres` user (initdb refuses root), so <dir> must be reachable
# by that user. Server binaries come from `pg_config --bindir` or /usr/lib/postgresql/*/bin.
# Progress goes to stderr; the server log is <dir>/postgres.log.
set -euo pipefail

MARKER=".pg.sh-instance"

die() {
    echo "pg.sh: $*" >&2
    exit 1
}

usage() {
    echo "usage: $0 start <dir> | stop <dir>" >&2
    exit 2
}

find_bindir() {
    local dir
    if command -v pg_config >/dev/null 2>&1; then
        dir="$(pg_config --bindir 2>/dev/null || true)"
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
            echo "$dir"
            return 0
        fi
    fi
    # Newest installed server first (an unmatched glob stays literal and fails the -x test).
    local candidates=()
    mapfile -t candidates < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5 -V -r)
    for dir in "${candidates[@]}"; do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

# Runs a command as the server's owner: `postgres` when we are root, ourselves otherwise.
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
    local port tries=0
    while ((tries < 50)); do
        port=$((20000 + RANDOM % 40000))
        if ! port_in_use "$port"; then
            echo "$port"
            return 0
        fi
        tries=$((tries + 1))
    done
    return 1
}

start() {
    local dir="$1" bindir port attempt url
    bindir="$(find_bindir)" || {
        echo "pg.sh: PostgreSQL server binaries not found (pg_config --bindir, /usr/lib/postgresql/*/bin)." >&2
        echo "pg.sh: install them with:  apt-get install -y postgresql   (or: make setup)" >&2
        exit 1
    }
    if [[ "$(id -u)" == 0 ]] && ! id postgres >/dev/null 2>&1; then
        die "running as root but there is no 'postgres' user to run the server (apt-get install -y postgresql creates it)"
    fi
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    [[ -e "$dir/data" ]] && die "$dir/data already exists; stop it first: $0 stop $dir"
    if [[ "$(id -u)" == 0 ]]; then
        chown postgres: "$dir"
        chmod 700 "$dir"
        runuser -u postgres -- test -w "$dir" ||
            die "user postgres cannot write $dir (a parent directory is not searchable by it); use a directory such as \$(mktemp -d)"
    fi
    touch "$dir/$MARKER"

    echo "pg.sh: initdb in $dir/data ($bindir)" >&2
    as_owner "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
        >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        die "initdb failed"
    }

    for attempt in 1 2 3 4 5; do
        port="$(free_port)" || die "no free port found"
        echo "pg.sh: starting on 127.0.0.1:$port (attempt $attempt)" >&2
        if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
            start >&2; then
            echo "$port" >"$dir/port"
            break
        fi
        port=""
        tail -n 20 "$dir/postgres.log" >&2 || true
    done
    [[ -n "$port" ]] || die "PostgreSQL did not start; see $dir/postgres.log"

    as_owner "$bindir/psql" -X -q -h "$dir" -p "$port" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 -c "create database dev" >&2 || die "could not create database dev"
    url="postgres://postgres@127.0.0.1:$port/dev"
    echo "pg.sh: ready: $url" >&2
    echo "$url"
}

stop() {
    local dir="$1" bindir
    [[ -d "$dir" ]] || {
        echo "pg.sh: $dir does not exist; nothing to stop" >&2
        return 0
    }
    [[ -e "$dir/$MARKER" ]] || die "$dir was not created by pg.sh start; not touching it"
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        if bindir="$(find_bindir)"; then
            as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >&2 || true
        fi
        # Last resort: the postmaster's pid is the first line of postmaster.pid.
        if [[ -f "$dir/data/postmaster.pid" ]]; then
            local pid
            pid="$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)"
            if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
                kill -QUIT "$pid" 2>/dev/null || true
                sleep 1
            fi
        fi
    fi
    rm -rf -- "$dir"
    echo "pg.sh: stopped and removed $dir" >&2
}

[[ $# -eq 2 ]] || usage
case "$1" in
    start) start "$2" ;;
    stop) stop "$2" ;;
    *) usage ;;
esac
