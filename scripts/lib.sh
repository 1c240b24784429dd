# shellcheck shell=bash
# scripts/lib.sh — the command skeleton that scripts/testenv.sh and
# scripts/benchenv.sh share; sourced by them, not run.
#
# The sourcing script sets, before it calls main:
#   PROG          its name without .sh ("testenv"): the prefix of log and die
#   STATE_DIR     its state dir (made absolute by main)
#   HOST          the address its servers listen on
#   LOCK_TIMEOUT  seconds take_lock waits for another run of the script
#   SUBCOMMANDS   array of its subcommands (with start, stop, status, env)
# and defines init_paths (paths below the absolute STATE_DIR), cmd_env,
# cmd_status, cmd_start, cmd_stop CLEAN (CLEAN is true or false) and, for
# any further subcommand such as kafka-start, cmd_kafka_start.

# SC2154: the variables above are assigned by the sourcing script.
# shellcheck disable=SC2154

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

# Create the state dir and make its path absolute (the servers run with
# their own cwd, and the caller's cwd may be anything).
init_state_dir() {
  mkdir -p -- "$STATE_DIR"
  STATE_DIR="$(CDPATH= cd -- "$STATE_DIR" && pwd)"
}

# Serialise start/stop calls (e.g. two `make` targets in parallel). The
# servers are started with fd 9 closed, or they would hold the lock for as
# long as they run.
take_lock() {
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>"$STATE_DIR/.lock"
  flock -w "$LOCK_TIMEOUT" 9 || die "another $PROG.sh holds $STATE_DIR/.lock for ${LOCK_TIMEOUT}s"
}

# True if something accepts TCP connections on $HOST:$1 (bash /dev/tcp).
port_open() {
  timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# apt_install NAME PACKAGES...: install Debian packages for server NAME,
# with sudo unless root.
apt_install() {
  local name=$1
  shift
  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to apt-get install $*"
    sudo=(sudo)
  fi
  log "$name: installing $* with apt-get"
  "${sudo[@]}" apt-get update -qq >&2 || die "apt-get update failed"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$@" >&2 \
    || die "apt-get install $* failed"
}

# Print the script's header comment (line 2 up to the first empty line).
# The outermost entry of BASH_SOURCE is the script that was run.
usage() {
  sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[${#BASH_SOURCE[@]} - 1]}" >&2
  exit "${1:-2}"
}

is_subcommand() {
  local c
  for c in "${SUBCOMMANDS[@]}"; do
    [[ "$1" == "$c" ]] && return 0
  done
  return 1
}

# main SUBCOMMAND [ARGS]: only stop takes an argument (--clean). Every
# subcommand but status and env holds the lock.
main() {
  local cmd="${1:-}"
  (($# > 0)) && shift
  case "$cmd" in
    -h|--help|help) usage 0 ;;
  esac
  is_subcommand "$cmd" || { log "unknown or missing subcommand '${cmd}'"; usage; }
  if [[ "$cmd" != stop && $# -gt 0 ]]; then
    die "$cmd takes no arguments"
  fi

  # `env` needs only the settings: no state dir, no side effects.
  if [[ "$cmd" == env ]]; then
    cmd_env
    return 0
  fi

  init_state_dir
  init_paths
  case "$cmd" in
    status) cmd_status ;;
    stop)
      local clean=false
      case "${1:-}" in
        "") ;;
        --clean) clean=true ;;
        *) die "stop: unknown option '$1' (only --clean)" ;;
      esac
      take_lock
      cmd_stop "$clean"
      ;;
    *)
      take_lock
      "cmd_${cmd//-/_}"
      ;;
  esac
}
