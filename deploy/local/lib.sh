# Shared helpers for deploy/local/{up,down,status}. Sourced, not executed.
# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this

LOCAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE_DIR="$LOCAL_DIR/.state"
CACHE_ROOT="$LOCAL_DIR/.cache"

# The Kafka version is pinned in pom.xml only; read it from there.
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$LOCAL_DIR/pom.xml" | head -n1)"
KAFKA_CP_DIR="$CACHE_ROOT/kafka-$KAFKA_VERSION"

REDIS_PIDFILE="$STATE_DIR/redis.pid"
REDIS_LOG="$STATE_DIR/redis.log"
REDIS_DATA="$STATE_DIR/redis"
REDIS_PORTFILE="$STATE_DIR/redis.port"

KAFKA_PIDFILE="$STATE_DIR/kafka.pid"
KAFKA_LOG="$STATE_DIR/kafka.log"   # broker log (log4j, size-capped)
KAFKA_OUT="$STATE_DIR/kafka.out"   # JVM stdout/stderr (crashes, startup errors)
KAFKA_DATA="$STATE_DIR/kafka-data"
KAFKA_PROPS="$STATE_DIR/server.properties"
KAFKA_PORTFILE="$STATE_DIR/kafka.ports"
KAFKA_ADMIN_PROPS="$STATE_DIR/admin.properties"

# Ports: env overrides; for status/down of a running stack the ports it was
# started with (saved in .state/) win.
REDIS_PORT="${HERALD_REDIS_PORT:-6379}"
KAFKA_PORT="${HERALD_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${HERALD_KAFKA_CONTROLLER_PORT:-9093}"

load_saved_ports() {
  if [[ -s "$REDIS_PORTFILE" ]]; then REDIS_PORT="$(cat "$REDIS_PORTFILE")"; fi
  if [[ -s "$KAFKA_PORTFILE" ]]; then
    read -r KAFKA_PORT KAFKA_CONTROLLER_PORT < "$KAFKA_PORTFILE"
  fi
}

log()  { printf '[herald-local] %s\n' "$*"; }
warn() { printf '[herald-local] WARNING: %s\n' "$*" >&2; }
die()  { printf '[herald-local] ERROR: %s\n' "$*" >&2; exit 1; }

# pid_of PIDFILE PATTERN -> prints the pid if the file names a live process whose
# command line contains PATTERN (so a stale pid reused by another program is ignored).
pid_of() {
  local pidfile="$1" pattern="$2" pid
  [[ -s "$pidfile" ]] || return 1
  pid="$(tr -dc '0-9' < "$pidfile")"
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern" || return 1
  printf '%s\n' "$pid"
}

redis_pid() { pid_of "$REDIS_PIDFILE" "redis-server"; }
kafka_pid() { pid_of "$KAFKA_PIDFILE" "kafka.Kafka"; }

# port_open PORT -> true if something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

redis_ping() {
  [[ "$(timeout 3 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == "PONG" ]]
}

# Short-lived Kafka CLI JVMs: small heap, fast start, warnings only, bounded run time.
kafka_tool() {
  timeout 60 java -Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
    -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$LOCAL_DIR/tools-log4j.properties" \
    -cp "$KAFKA_CP_DIR/*" "$@"
}

# stop_process NAME PIDFILE PATTERN GRACE_SECONDS
stop_process() {
  local name="$1" pidfile="$2" pattern="$3" grace="$4" pid i
  if ! pid="$(pid_of "$pidfile" "$pattern")"; then
    log "$name: not running"
    rm -f "$pidfile"
    return 0
  fi
  log "$name: stopping pid $pid (SIGTERM, up to ${grace}s)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    warn "$name: still alive after ${grace}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 25; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
  fi
  rm -f "$pidfile"
  log "$name: stopped"
}
