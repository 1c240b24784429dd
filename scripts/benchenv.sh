#!/usr/bin/env bash
# scripts/benchenv.sh — a PostgreSQL server on 127.0.0.1 for the baseline
# benchmarks (the embedded event store against a plain PostgreSQL event
# table, in the same `go test -bench` run). `make test` starts it too: the
# baseline's own tests (internal/baseline/pgstore) check that it keeps the
# same append rules as our store, so that the comparison is fair.
#
#   scripts/benchenv.sh start          initialise (once) and start PostgreSQL
#   scripts/benchenv.sh stop [--clean] stop it; --clean also deletes its data dir
#   scripts/benchenv.sh status         show whether it runs (exit 0 only if it answers)
#   scripts/benchenv.sh env            print `export ...` lines, use with eval
#
# Typical use:
#   scripts/benchenv.sh start && eval "$(scripts/benchenv.sh env)"
#   go test -run '^$' -bench AppendSideBySide -benchmem ./infra/eventstore/embedded
#   scripts/benchenv.sh stop --clean
#
# PostgreSQL comes from Debian's postgresql package (installed with apt-get
# when no server binaries are found under /usr/lib/postgresql/*/bin). The
# cluster is a throwaway: initdb into the state dir, trust authentication,
# listening on 127.0.0.1 only, on its own port, no Unix socket. It runs with
# fsync = on and synchronous_commit = on, so that a committed transaction is
# on disk, as an acknowledged append of the embedded store is.
#
# The default state dir is under $TMPDIR (or /tmp): the Go benchmarks put the
# embedded store in a directory of $TMPDIR too, so both stores sync to the
# same file system. Keep it that way when comparing them.
#
# Settings (environment variables, all optional):
#   TICKETD_BENCHENV_DIR        state dir (${TMPDIR:-/tmp}/ticketd-benchenv)
#   TICKETD_BENCHENV_PG_PORT    port (15432)
#   TICKETD_BENCHENV_PG_DB      database the benchmarks use (ticketd_bench)
#   TICKETD_BENCHENV_PG_TIMEOUT seconds to wait for the server to start or stop (60)
#
# Progress and errors go to stderr; only `env` and `status` write to stdout,
# so `eval "$(scripts/benchenv.sh env)"` stays clean.

set -euo pipefail

STATE_DIR="${TICKETD_BENCHENV_DIR:-${TMPDIR:-/tmp}/ticketd-benchenv}"
PG_PORT="${TICKETD_BENCHENV_PG_PORT:-15432}"
PG_DB="${TICKETD_BENCHENV_PG_DB:-ticketd_bench}"
PG_TIMEOUT="${TICKETD_BENCHENV_PG_TIMEOUT:-60}"

HOST=127.0.0.1
# The cluster's superuser. With trust authentication on 127.0.0.1 it needs
# no password; the server accepts no other address.
PG_USER=postgres

SCRIPT_DIR="$(CDPATH= cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
# log, die, take_lock, port_open, apt_install, usage and main.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SCRIPT_DIR/lib.sh"
PROG=benchenv
SUBCOMMANDS=(start stop status env)
LOCK_TIMEOUT=120

# Below the state dir, which main has made absolute.
init_paths() {
  PG_DATA="$STATE_DIR/pgdata"
  PG_LOG="$STATE_DIR/postgres.log"
}

# PostgreSQL refuses to run as root. As root, its programs run as the
# postgres user that Debian's package creates; otherwise as the caller.
as_owner() {
  if ((EUID == 0)); then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# The newest server installed by Debian's packages, e.g. /usr/lib/postgresql/15/bin.
pg_bindir() {
  local dir best="" best_ver=0 ver
  for dir in /usr/lib/postgresql/*/bin; do
    [[ -x "$dir/postgres" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]] || continue
    ver="$(basename -- "$(dirname -- "$dir")")"
    [[ "$ver" =~ ^[0-9]+$ ]] || continue
    if ((ver > best_ver)); then
      best_ver=$ver
      best=$dir
    fi
  done
  [[ -n "$best" ]] || return 1
  printf '%s\n' "$best"
}

ensure_installed() {
  if PG_BIN="$(pg_bindir)"; then
    return 0
  fi
  # The package's postinst may create and start Debian's default cluster on
  # 5432; that is harmless here, ours has its own data dir and port.
  apt_install postgres postgresql
  PG_BIN="$(pg_bindir)" || die "no server binaries under /usr/lib/postgresql/*/bin after installing postgresql"
}

psql_cmd() {
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PG_PORT" -U "$PG_USER" "$@"
}

pg_ready() {
  "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -U "$PG_USER" -t 3 >/dev/null 2>&1
}

# pg_ctl status exits 0 only when the postmaster of this data dir runs.
pg_running() {
  [[ -f "$PG_DATA/PG_VERSION" ]] || return 1
  as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

ensure_initialised() {
  [[ -f "$PG_DATA/PG_VERSION" ]] && return 0
  if ((EUID == 0)); then
    # The postgres user must reach the data dir through every parent.
    runuser -u postgres -- test -x "$STATE_DIR" \
      || die "the postgres user cannot enter $STATE_DIR; choose a TICKETD_BENCHENV_DIR under /tmp"
  fi
  rm -rf -- "$PG_DATA"
  mkdir -p -- "$PG_DATA"
  if ((EUID == 0)); then chown postgres:postgres "$PG_DATA" "$STATE_DIR"; fi
  chmod 700 "$PG_DATA"
  log "postgres: initdb $PG_DATA"
  # --no-sync: the cluster is disposable, its creation need not be durable.
  # Everything written once the server runs is synced as usual.
  as_owner "$PG_BIN/initdb" -D "$PG_DATA" --username="$PG_USER" --auth=trust \
    --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$STATE_DIR/initdb.log" 2>&1 \
    || { tail -n 20 "$STATE_DIR/initdb.log" >&2; die "initdb failed; see $STATE_DIR/initdb.log"; }
  printf "include_if_exists = 'benchenv.conf'\n" | as_owner tee -a "$PG_DATA/postgresql.conf" >/dev/null
}

# Rewritten on every start so that a port override takes effect.
write_conf() {
  as_owner tee "$PG_DATA/benchenv.conf" >/dev/null <<EOF
# Generated by scripts/benchenv.sh; overwritten on the next start.
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = ''
# The 64-writer benchmark opens one connection per writer.
max_connections = 200
# Durable commits, as the embedded store's acknowledged appends are: the
# WAL is flushed (fdatasync) before COMMIT returns. Concurrent commits
# share a flush, which is PostgreSQL's own group commit.
fsync = on
synchronous_commit = on
full_page_writes = on
logging_collector = off
EOF
}

pg_start() {
  ensure_installed
  if pg_running; then
    pg_ready || die "postgres: the server of $PG_DATA runs but does not answer on $HOST:$PG_PORT"
    log "postgres: already running ($HOST:$PG_PORT, data $PG_DATA)"
    ensure_database
    return 0
  fi
  port_open "$PG_PORT" \
    && die "postgres: port $HOST:$PG_PORT is taken by a process this script did not start; stop it or set TICKETD_BENCHENV_PG_PORT"
  ensure_initialised
  write_conf
  : >"$PG_LOG"
  if ((EUID == 0)); then chown postgres:postgres "$PG_LOG"; fi
  log "postgres: starting $("$PG_BIN/postgres" --version) on $HOST:$PG_PORT"
  # pg_ctl detaches the server into its own session and waits (-w) until it
  # accepts connections.
  if ! as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$PG_TIMEOUT" start >/dev/null 9>&-; then
    tail -n 20 "$PG_LOG" >&2 || true
    die "postgres: did not start within ${PG_TIMEOUT}s; see $PG_LOG"
  fi
  pg_ready || die "postgres: started but does not answer on $HOST:$PG_PORT; see $PG_LOG"
  ensure_database
  log "postgres: ready on $HOST:$PG_PORT (data $PG_DATA)"
}

ensure_database() {
  if [[ "$(psql_cmd -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != 1 ]]; then
    psql_cmd -d postgres -c "CREATE DATABASE \"$PG_DB\"" >&2 || die "postgres: could not create database $PG_DB"
  fi
}

pg_stop() {
  if ! pg_running; then
    log "postgres: not running"
    return 0
  fi
  log "postgres: stopping"
  as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t "$PG_TIMEOUT" stop >/dev/null \
    || die "postgres: did not stop within ${PG_TIMEOUT}s; see $PG_LOG"
  log "postgres: stopped"
}

cmd_status() {
  if ! PG_BIN="$(pg_bindir)"; then
    echo "postgres: not installed (no server under /usr/lib/postgresql/*/bin)"
    return 3
  fi
  if ! pg_running; then
    echo "postgres: not running (data $PG_DATA)"
    return 3
  fi
  if ! pg_ready; then
    echo "postgres: running, but $HOST:$PG_PORT does not answer"
    return 3
  fi
  echo "postgres: running, $HOST:$PG_PORT answers ($("$PG_BIN/postgres" --version), data $PG_DATA)"
}

cmd_env() {
  echo "export TICKETD_BENCH_POSTGRES_URL=postgres://$PG_USER@$HOST:$PG_PORT/$PG_DB?sslmode=disable"
}

cmd_start() { pg_start; }

# $1: true with --clean.
cmd_stop() {
  PG_BIN="$(pg_bindir)" || { log "postgres: not installed"; return 0; }
  pg_stop
  if $1; then
    rm -rf -- "$PG_DATA" "$PG_LOG" "$STATE_DIR/initdb.log"
    log "removed $PG_DATA"
  fi
}

main "$@"
