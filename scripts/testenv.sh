#!/usr/bin/env bash
# scripts/testenv.sh — real Redis and Kafka servers on 127.0.0.1 for the
# integration tests (no Docker needed).
#
#   scripts/testenv.sh start          start Redis and Kafka (idempotent)
#   scripts/testenv.sh stop [--clean] stop both; --clean also wipes Kafka data
#   scripts/testenv.sh status         show what runs (exit 0 only if both run)
#   scripts/testenv.sh env            print `export ...` lines, use with eval
#   scripts/testenv.sh kafka-stop     stop only the broker, keeping its data
#   scripts/testenv.sh kafka-start    start only the broker (after kafka-stop)
#
# Typical use:
#   scripts/testenv.sh start && eval "$(scripts/testenv.sh env)" && go test ./...
#
# Redis comes from Debian's redis-server package (installed with apt-get when
# missing). Kafka is the real broker (org.apache.kafka:kafka_2.13 from Maven
# Central, resolved through scripts/kafka/pom.xml and cached), run as a single
# KRaft node that is both broker and controller, on the machine's Java 17+.
#
# Settings (environment variables, all optional):
#   TICKETD_TESTENV_DIR              state dir   (~/.cache/ticketd-testenv)
#   TICKETD_TESTENV_REDIS_PORT       Redis port  (16379)
#   TICKETD_TESTENV_KAFKA_PORT       Kafka client listener port (19092)
#   TICKETD_TESTENV_KAFKA_CONTROLLER_PORT  KRaft controller port (19093)
#   TICKETD_TESTENV_KAFKA_VERSION    Kafka 4.x version (4.4.0; see scripts/kafka/pom.xml)
#   TICKETD_TESTENV_KAFKA_HEAP       broker heap flags ("-Xms256m -Xmx512m")
#   TICKETD_TESTENV_REDIS_TIMEOUT    seconds to wait for Redis PONG (20)
#   TICKETD_TESTENV_KAFKA_TIMEOUT    seconds to wait for the broker (90)
#   TICKETD_TESTENV_STOP_TIMEOUT     seconds between TERM and KILL (30)
#
# Progress and errors go to stderr; only `env` and `status` write to stdout,
# so `eval "$(scripts/testenv.sh env)"` stays clean.

set -euo pipefail

SCRIPT_DIR="$(CDPATH= cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"

STATE_DIR="${TICKETD_TESTENV_DIR:-${HOME:?HOME is unset; set TICKETD_TESTENV_DIR}/.cache/ticketd-testenv}"
REDIS_PORT="${TICKETD_TESTENV_REDIS_PORT:-16379}"
KAFKA_PORT="${TICKETD_TESTENV_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${TICKETD_TESTENV_KAFKA_CONTROLLER_PORT:-19093}"
KAFKA_VERSION="${TICKETD_TESTENV_KAFKA_VERSION:-4.4.0}"
KAFKA_HEAP="${TICKETD_TESTENV_KAFKA_HEAP:--Xms256m -Xmx512m}"
REDIS_TIMEOUT="${TICKETD_TESTENV_REDIS_TIMEOUT:-20}"
KAFKA_TIMEOUT="${TICKETD_TESTENV_KAFKA_TIMEOUT:-90}"
STOP_TIMEOUT="${TICKETD_TESTENV_STOP_TIMEOUT:-30}"

HOST=127.0.0.1
KAFKA_POM="$SCRIPT_DIR/kafka/pom.xml"
KAFKA_LOG4J="$SCRIPT_DIR/kafka/log4j2.properties"
KAFKA_TOOLS_LOG4J="$SCRIPT_DIR/kafka/tools-log4j2.properties"

# log, die, take_lock, port_open, apt_install, usage and main.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$SCRIPT_DIR/lib.sh"
PROG=testenv
SUBCOMMANDS=(start stop kafka-start kafka-stop status env)
LOCK_TIMEOUT=300

# ---------------------------------------------------------------------------
# small helpers

# Paths are derived after main has made the state dir absolute (java and
# redis-server run with their own cwd, and the caller's cwd may be anything).
init_paths() {
  REDIS_DIR="$STATE_DIR/redis"
  REDIS_PID="$REDIS_DIR/redis.pid"
  REDIS_LOG="$REDIS_DIR/redis.log"
  KAFKA_DIR="$STATE_DIR/kafka"
  KAFKA_JARS="$KAFKA_DIR/jars/$KAFKA_VERSION"
  KAFKA_DATA="$KAFKA_DIR/data"
  KAFKA_LOGS="$KAFKA_DIR/logs"
  KAFKA_PID="$KAFKA_DIR/kafka.pid"
  KAFKA_PROPS="$KAFKA_DIR/server.properties"
  KAFKA_CLUSTER_ID_FILE="$KAFKA_DIR/cluster-id"
}

# True if pid $1 exists and is not a zombie (a container's PID 1 may never
# reap our orphans, and `kill -0` succeeds on zombies).
is_alive() {
  local state
  state="$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [[ -n "$state" && "$state" != Z ]]
}

# Print the pid recorded in pid file $1 if that process is alive and its
# command line contains $2; guards against stale pid files with reused pids.
running_pid() {
  local pidfile=$1 pattern=$2 pid
  [[ -f "$pidfile" ]] || return 1
  pid="$(<"$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  is_alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern" || return 1
  printf '%s\n' "$pid"
}

# Wait up to $1 seconds (in 0.2 s steps) while command "${@:2}" succeeds.
wait_while() {
  local tries=$(($1 * 5))
  shift
  while "$@"; do
    ((tries-- > 0)) || return 1
    sleep 0.2
  done
}

# TERM the process from pid file $2 (matching $3), KILL after STOP_TIMEOUT,
# then wait until ports $4... are free again.
stop_process() {
  local name=$1 pidfile=$2 pattern=$3 pid port
  shift 3
  if ! pid="$(running_pid "$pidfile" "$pattern")"; then
    rm -f -- "$pidfile"
    log "$name: not running"
    return 0
  fi
  log "$name: stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_while "$STOP_TIMEOUT" is_alive "$pid"; then
    log "$name: still running after ${STOP_TIMEOUT}s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_while 10 is_alive "$pid" || die "$name: pid $pid survived KILL"
  fi
  # The main thread can be gone (a zombie) while the JVM's other threads
  # still hold the listening sockets; a restart right now would fail to bind.
  for port in "$@"; do
    wait_while 15 port_open "$port" || die "$name: pid $pid exited but $HOST:$port still accepts connections"
  done
  rm -f -- "$pidfile"
  log "$name: stopped"
}

# ---------------------------------------------------------------------------
# Redis

ensure_redis_installed() {
  local pkgs=()
  command -v redis-server >/dev/null 2>&1 || pkgs+=(redis-server)
  command -v redis-cli >/dev/null 2>&1 || pkgs+=(redis-tools)
  ((${#pkgs[@]} == 0)) && return 0
  # The package's postinst tries to start the system-wide service on 6379;
  # that is harmless here, ours runs on its own port with its own pid file.
  apt_install redis "${pkgs[@]}"
  command -v redis-server >/dev/null 2>&1 || die "redis-server still not on PATH after install"
}

redis_ping() {
  [[ "$(timeout 3 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
}

redis_start() {
  local pid deadline
  if pid="$(running_pid "$REDIS_PID" redis-server)"; then
    redis_ping || die "redis: pid $pid is running but does not answer PING on $HOST:$REDIS_PORT"
    log "redis: already running (pid $pid, $HOST:$REDIS_PORT)"
    return 0
  fi
  ensure_redis_installed
  port_open "$REDIS_PORT" \
    && die "redis: port $HOST:$REDIS_PORT is taken by a process this script did not start; stop it or set TICKETD_TESTENV_REDIS_PORT"

  mkdir -p -- "$REDIS_DIR"
  rm -f -- "$REDIS_PID"
  # No persistence: empty --save disables RDB snapshots, AOF stays off.
  redis-server \
    --bind "$HOST" --port "$REDIS_PORT" \
    --daemonize yes --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" \
    --dir "$REDIS_DIR" --save '' --appendonly no 9>&- \
    || die "redis: redis-server failed to start; see $REDIS_LOG"

  deadline=$((SECONDS + REDIS_TIMEOUT))
  # The daemon writes its pid file itself; wait for that too.
  until redis_ping && [[ -s "$REDIS_PID" ]]; do
    if ((SECONDS >= deadline)); then
      tail -n 20 "$REDIS_LOG" >&2 2>/dev/null || true
      redis_stop
      die "redis: no PONG from $HOST:$REDIS_PORT within ${REDIS_TIMEOUT}s (log: $REDIS_LOG)"
    fi
    sleep 0.1
  done
  log "redis: ready on $HOST:$REDIS_PORT (pid $(<"$REDIS_PID"))"
}

redis_stop() { stop_process redis "$REDIS_PID" redis-server "$REDIS_PORT"; }

# ---------------------------------------------------------------------------
# Kafka

check_java() {
  command -v java >/dev/null 2>&1 || die "java not found on PATH (Kafka ${KAFKA_VERSION} needs Java 17+)"
  local ver major
  ver="$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)"
  major="${ver%%.*}"
  [[ "$major" == 1 ]] && major="$(cut -d. -f2 <<<"$ver")" # "1.8.0_x" style
  if ! [[ "$major" =~ ^[0-9]+$ ]] || ((major < 17)); then
    die "java is version '${ver:-unknown}', Kafka ${KAFKA_VERSION} needs Java 17+"
  fi
}

# Resolve the broker jars into $KAFKA_JARS once. The stamp file records the
# version and a hash of the pom, so editing the pom triggers a new resolve
# and a half-finished download is never mistaken for a complete one.
ensure_kafka_jars() {
  local want stamp="$KAFKA_JARS/.complete" tmp
  want="kafka=$KAFKA_VERSION pom=$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(<"$stamp")" == "$want" ]]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found on PATH (needed once to fetch the Kafka jars)"
  log "kafka: resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its runtime dependencies with Maven"
  tmp="$KAFKA_JARS.tmp.$$"
  rm -rf -- "$tmp"
  mkdir -p -- "$(dirname -- "$KAFKA_JARS")"
  # Maven's output goes to stderr. Maven 3.8 with -q still prints bare
  # ESC[0m colour resets even in batch mode; sed strips them.
  if ! mvn -B -q -f "$KAFKA_POM" \
      -Dkafka.version="$KAFKA_VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$tmp" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2; then
    rm -rf -- "$tmp"
    die "kafka: mvn could not resolve the Kafka $KAFKA_VERSION jars (see Maven output above)"
  fi
  compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || die "kafka: no kafka_2.13 jar in $tmp after mvn"
  rm -rf -- "$KAFKA_JARS"
  mv -- "$tmp" "$KAFKA_JARS"
  printf '%s\n' "$want" >"$stamp"
  log "kafka: cached $(find "$KAFKA_JARS" -name '*.jar' | wc -l) jars in $KAFKA_JARS"
}

# Run a Kafka CLI class from the cached jars, quietly and with a small,
# quick-starting JVM, killed after $1 seconds: kafka_tool SECS CLASS ARGS...
kafka_tool() {
  local secs=$1
  shift
  timeout "$secs" java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$KAFKA_TOOLS_LOG4J" \
    -cp "$KAFKA_JARS/*" "$@"
}

write_server_properties() {
  # Rewritten on every start so port/path overrides take effect; the
  # identity of the node (cluster id, node id) lives in $KAFKA_DATA/meta.properties.
  cat >"$KAFKA_PROPS" <<EOF
# Generated by scripts/testenv.sh; edits are overwritten on the next start.
# Single KRaft node acting as both broker and controller.
process.roles=broker,controller
node.id=1
# Static quorum of one voter (works with a plain 'StorageTool format';
# a dynamic quorum would need controller.quorum.bootstrap.servers + --standalone).
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT

listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT

log.dirs=$KAFKA_DATA

# One node: every internal topic must make do with one replica.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1

auto.create.topics.enable=true
delete.topic.enable=true
# Consumer groups start at once instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0

# Test data is small and disposable.
log.segment.bytes=16777216
log.retention.hours=24
log.retention.check.interval.ms=60000
num.network.threads=2
num.io.threads=4
EOF
}

# Format the metadata/log dir once (KRaft refuses to start on an
# unformatted dir). The cluster id is generated once and kept.
ensure_kafka_formatted() {
  [[ -f "$KAFKA_DATA/meta.properties" ]] && return 0
  local cid
  if [[ ! -s "$KAFKA_CLUSTER_ID_FILE" ]]; then
    cid="$(kafka_tool 60 kafka.tools.StorageTool random-uuid | tail -n1)"
    [[ "$cid" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "kafka: StorageTool random-uuid printed '$cid'"
    printf '%s\n' "$cid" >"$KAFKA_CLUSTER_ID_FILE"
  fi
  cid="$(<"$KAFKA_CLUSTER_ID_FILE")"
  log "kafka: formatting $KAFKA_DATA (cluster id $cid)"
  local out
  if ! out="$(kafka_tool 120 kafka.tools.StorageTool format -t "$cid" -c "$KAFKA_PROPS" --ignore-formatted 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "kafka: StorageTool format failed"
  fi
}

kafka_log_tail() {
  local f
  for f in "$KAFKA_LOGS/kafka.out" "$KAFKA_LOGS/server.log"; do
    [[ -s "$f" ]] || continue
    printf -- '----- last lines of %s -----\n' "$f" >&2
    tail -n 40 "$f" >&2
  done
}

kafka_start() {
  local pid deadline
  if pid="$(running_pid "$KAFKA_PID" kafka.Kafka)"; then
    port_open "$KAFKA_PORT" || log "kafka: warning: pid $pid runs but $HOST:$KAFKA_PORT does not accept connections (yet?)"
    log "kafka: already running (pid $pid, $HOST:$KAFKA_PORT)"
    return 0
  fi
  rm -f -- "$KAFKA_PID"
  local p
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    port_open "$p" \
      && die "kafka: port $HOST:$p is taken by a process this script did not start; stop it or set TICKETD_TESTENV_KAFKA_PORT / TICKETD_TESTENV_KAFKA_CONTROLLER_PORT"
  done

  check_java
  mkdir -p -- "$KAFKA_DIR" "$KAFKA_LOGS"
  ensure_kafka_jars
  write_server_properties
  ensure_kafka_formatted

  log "kafka: starting broker $KAFKA_VERSION on $HOST:$KAFKA_PORT (logs: $KAFKA_LOGS)"
  # setsid: own session, so a Ctrl-C in the caller's terminal or the end of
  # a `make` recipe does not take the broker down. The inner shell writes
  # its own pid and then execs java, so the pid file holds the JVM's pid.
  # JVM flags follow Kafka's kafka-run-class.sh / kafka-server-start.sh.
  # kafka.out gets the JVM's own stdout/stderr (VM start-up errors, log4j
  # config problems) and is truncated per launch; the broker's log is
  # server.log (see scripts/kafka/log4j2.properties).
  (
    cd -- "$KAFKA_DIR"
    # SC2016: $$ and $@ belong to the inner shell. SC2086: KAFKA_HEAP is a
    # list of flags, split on purpose.
    # shellcheck disable=SC2016,SC2086
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$KAFKA_PID" \
      java $KAFKA_HEAP \
      -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
      -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError \
      -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$KAFKA_LOG4J" \
      -Dkafka.logs.dir="$KAFKA_LOGS" \
      -cp "$KAFKA_JARS/*" kafka.Kafka "$KAFKA_PROPS" \
      </dev/null >"$KAFKA_LOGS/kafka.out" 2>&1 9>&- &
  )

  # Wait: first the pid file, then the TCP port, then a real metadata
  # round trip (TopicCommand --list goes through the AdminClient).
  local launched=$SECONDS
  deadline=$((SECONDS + KAFKA_TIMEOUT))
  local stage=process
  while :; do
    if ((SECONDS >= deadline)); then
      kafka_log_tail
      # Do not leave a half-started broker behind: the next `start` would
      # take it for a running one.
      kafka_stop
      die "kafka: broker not ready within ${KAFKA_TIMEOUT}s (stuck at: $stage); logs in $KAFKA_LOGS"
    fi
    if [[ -s "$KAFKA_PID" ]] && ! running_pid "$KAFKA_PID" kafka.Kafka >/dev/null; then
      kafka_log_tail
      rm -f -- "$KAFKA_PID"
      die "kafka: broker process exited during startup; logs in $KAFKA_LOGS"
    fi
    case "$stage" in
      process) [[ -s "$KAFKA_PID" ]] && stage=port ;;
      port) port_open "$KAFKA_PORT" && stage=metadata ;;
      metadata)
        if kafka_tool 30 org.apache.kafka.tools.TopicCommand \
            --bootstrap-server "$HOST:$KAFKA_PORT" --list >/dev/null 2>&1; then
          break
        fi
        ;;
    esac
    sleep 0.3
  done
  log "kafka: ready on $HOST:$KAFKA_PORT (pid $(<"$KAFKA_PID"), ~$((SECONDS - launched))s after launch)"
}

kafka_stop() { stop_process kafka "$KAFKA_PID" kafka.Kafka "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; }

# ---------------------------------------------------------------------------
# subcommands

cmd_status() {
  local pid rc=0
  if pid="$(running_pid "$REDIS_PID" redis-server)"; then
    if redis_ping; then
      echo "redis: running, pid $pid, $HOST:$REDIS_PORT answers PONG"
    else
      echo "redis: running, pid $pid, but $HOST:$REDIS_PORT does not answer PING"; rc=3
    fi
  else
    echo "redis: not running"; rc=3
  fi
  if pid="$(running_pid "$KAFKA_PID" kafka.Kafka)"; then
    if port_open "$KAFKA_PORT"; then
      echo "kafka: running, pid $pid, $HOST:$KAFKA_PORT accepts connections (version $KAFKA_VERSION)"
    else
      echo "kafka: running, pid $pid, but $HOST:$KAFKA_PORT does not accept connections"; rc=3
    fi
  else
    echo "kafka: not running"; rc=3
  fi
  echo "state dir: $STATE_DIR"
  return "$rc"
}

cmd_env() {
  echo "export TICKETD_TEST_REDIS_URL=redis://$HOST:$REDIS_PORT/0"
  echo "export TICKETD_TEST_KAFKA_BROKERS=$HOST:$KAFKA_PORT"
}

cmd_start() {
  redis_start
  kafka_start
}

# $1: true with --clean.
cmd_stop() {
  kafka_stop
  redis_stop
  if $1; then
    # Jars stay cached; only data, logs and the cluster identity go.
    rm -rf -- "$KAFKA_DATA" "$KAFKA_LOGS" "$KAFKA_CLUSTER_ID_FILE" "$KAFKA_PROPS" "$REDIS_DIR"
    log "removed Kafka data and logs (jars kept in $KAFKA_DIR/jars)"
  fi
}

cmd_kafka_start() { kafka_start; }
cmd_kafka_stop() { kafka_stop; }

main "$@"
