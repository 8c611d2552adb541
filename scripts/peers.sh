#!/usr/bin/env bash
# peers.sh — install, start, stop and inspect the peer servers Felix is
# benchmarked against on this machine (docs: DESIGN.md "Peers to measure
# against"). Every peer listens on 127.0.0.1 only.
#
#   scripts/peers.sh install [NAME...]   install peers that are missing (default: all)
#   scripts/peers.sh start NAME [--js]   start NAME in the background, print its URL (--js: nats only)
#   scripts/peers.sh stop NAME           stop NAME (by the PID in its PID file only)
#   scripts/peers.sh status              show every peer: binary, running, URL
#
# Peers: nats (nats-server, pub/sub), redis (redis-server, cache; pure
# in-memory: no RDB snapshots, no AOF).
#
# State lives under .peers/ at the repository root (override: FELIX_PEERS_DIR):
#   .peers/bin/        binaries installed with `go install` (fallback)
#   .peers/run/        PID files, one per NAME and port: nats-4222.pid, redis-6379.pid
#   .peers/log/        server logs
#   .peers/data/       JetStream store dirs; redis's working dir (left empty:
#                      redis runs without persistence)
#
# Environment:
#   FELIX_NATS_PORT     client port for nats (default 4222)
#   FELIX_NATS_JS=1     start nats with JetStream (same as --js)
#   FELIX_NATS_SERVER   path of a nats-server binary to use instead of searching
#   FELIX_REDIS_PORT    port for redis (default 6379)
#   FELIX_REDIS_SERVER  path of a redis-server binary to use instead of searching
#   FELIX_PEERS_WAIT    seconds to wait for a port to accept / a process to exit (default 10)
#   FELIX_PEERS_NO_APT=1  install nats with `go install` even where apt-get could
#                         (redis has no such fallback: apt-get only)
#
# start and stop are idempotent: starting a running peer prints its URL,
# stopping a stopped one is a no-op. Nothing is ever killed by name.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS_DIR=${FELIX_PEERS_DIR:-$ROOT/.peers}
BIN_DIR=$PEERS_DIR/bin
RUN_DIR=$PEERS_DIR/run
LOG_DIR=$PEERS_DIR/log
DATA_DIR=$PEERS_DIR/data
WAIT_SECS=${FELIX_PEERS_WAIT:-10}

PEERS=(nats redis)

# init_dirs creates the state directories; .peers/ ignores itself in git.
init_dirs() {
  mkdir -p "$BIN_DIR" "$RUN_DIR" "$LOG_DIR" "$DATA_DIR"
  [ -e "$PEERS_DIR/.gitignore" ] || echo '*' >"$PEERS_DIR/.gitignore"
}

# The nats-server module version `go install` uses when Debian's package
# cannot be had. Bump deliberately; the version is printed by `status`.
NATS_GO_VERSION=v2.14.9

die() { echo "peers.sh: $*" >&2; exit 1; }
log() { echo "peers.sh: $*" >&2; }

usage() {
  sed -n '2,32p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 2
}

known_peer() {
  local p
  for p in "${PEERS[@]}"; do [ "$p" = "$1" ] && return 0; done
  return 1
}

# port_open PORT: true when 127.0.0.1:PORT accepts a TCP connection.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pid_alive PID EXE: true when PID is a live process whose command line
# names EXE (guards against a stale PID file whose PID was reused).
pid_alive() {
  local pid=$1 exe=$2
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  [ -r "/proc/$pid/cmdline" ] || return 0 # no /proc: trust kill -0
  local cmdline
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$exe"* ]]
}

# wait_port PORT PID EXE LOG: wait (bounded) until PORT accepts while PID lives.
wait_port() {
  local port=$1 pid=$2 exe=$3 logf=$4 i
  for ((i = 0; i < WAIT_SECS * 20; i++)); do
    port_open "$port" && return 0
    if ! pid_alive "$pid" "$exe"; then
      log "$exe exited during start-up; last lines of $logf:"
      tail -n 20 "$logf" >&2 || true
      return 1
    fi
    sleep 0.05
  done
  log "127.0.0.1:$port did not accept connections within ${WAIT_SECS}s"
  return 1
}

# stop_pidfile FILE EXE: TERM the process named in FILE, wait, KILL if it lingers.
stop_pidfile() {
  local file=$1 exe=$2 pid i
  pid=$(cat "$file" 2>/dev/null || true)
  if ! pid_alive "$pid" "$exe"; then
    rm -f "$file"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < WAIT_SECS * 20; i++)); do
    pid_alive "$pid" "$exe" || { rm -f "$file"; return 0; }
    sleep 0.05
  done
  log "pid $pid did not exit within ${WAIT_SECS}s of SIGTERM; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.1
  rm -f "$file"
}

# find_bin VAR EXE [PATH...]: print the EXE binary to use: $VAR when set
# (it must be executable), else $BIN_DIR/EXE, else EXE on PATH, else the
# first executable PATH; fail when there is none.
find_bin() {
  local var=$1 exe=$2 p
  shift 2
  if [ -n "${!var:-}" ]; then
    [ -x "${!var}" ] || die "$var=${!var} is not executable"
    echo "${!var}"
    return 0
  fi
  for p in "$BIN_DIR/$exe" "$(command -v "$exe" 2>/dev/null || true)" "$@"; do
    if [ -n "$p" ] && [ -f "$p" ] && [ -x "$p" ]; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

# bin_version BIN: the first line of BIN --version.
bin_version() { "$1" --version 2>&1 | head -n 1; }

# launch NAME EXE PORT NOTE BIN [ARGS...]: start BIN ARGS in the background
# (PID file $RUN_DIR/NAME-PORT.pid, log $LOG_DIR/NAME-PORT.log), wait until
# PORT accepts, print the URL NAME://127.0.0.1:PORT. EXE is what the process's
# command line contains; NOTE is appended to the start-up log line. A
# running NAME on PORT is left as it is; a PORT in use by anything else fails.
launch() {
  local name=$1 exe=$2 port=$3 note=$4 bin=$5 pidfile logf pid
  shift 5
  pidfile=$RUN_DIR/$name-$port.pid
  logf=$LOG_DIR/$name-$port.log
  if pid_alive "$(cat "$pidfile" 2>/dev/null || true)" "$exe"; then
    log "$name already running (pid $(cat "$pidfile"))"
    echo "$name://127.0.0.1:$port"
    return 0
  fi
  rm -f "$pidfile"
  if port_open "$port"; then
    local var
    var=FELIX_$(echo "$name" | tr '[:lower:]' '[:upper:]')_PORT
    die "127.0.0.1:$port is already in use by a process this script did not start; set $var"
  fi
  # setsid: the server outlives this shell and ignores its terminal's signals.
  setsid "$bin" "$@" </dev/null >"$logf" 2>&1 &
  pid=$!
  echo "$pid" >"$pidfile"
  if ! wait_port "$port" "$pid" "$exe" "$logf"; then
    stop_pidfile "$pidfile" "$exe"
    die "$name failed to start"
  fi
  log "$name started (pid $pid, log $logf$note)"
  echo "$name://127.0.0.1:$port"
}

# halt NAME EXE PORT: stop the NAME launched on PORT, if any.
halt() {
  local name=$1 exe=$2 port=$3 pidfile
  pidfile=$RUN_DIR/$name-$port.pid
  if [ ! -e "$pidfile" ]; then
    log "$name on port $port is not running (no $pidfile)"
    return 0
  fi
  stop_pidfile "$pidfile" "$exe"
  log "$name on port $port stopped"
}

# report NAME EXE BIN: print NAME's binary (BIN, empty when not installed)
# and every instance with a PID file, on any port.
report() {
  local name=$1 exe=$2 bin=$3 f pid port any=0
  if [ -n "$bin" ]; then
    echo "$name: binary $bin ($(bin_version "$bin"))"
  else
    echo "$name: not installed (scripts/peers.sh install $name)"
  fi
  shopt -s nullglob
  for f in "$RUN_DIR/$name"-*.pid; do
    port=${f##*/"$name"-}
    port=${port%.pid}
    pid=$(cat "$f" 2>/dev/null || true)
    if pid_alive "$pid" "$exe"; then
      echo "$name: running pid $pid url $name://127.0.0.1:$port"
    else
      echo "$name: stale PID file $f (pid $pid not running)"
    fi
    any=1
  done
  [ "$any" = 1 ] || echo "$name: not running"
}

# ---------------------------------------------------------------- nats

nats_port() { echo "${FELIX_NATS_PORT:-4222}"; }

nats_bin() { find_bin FELIX_NATS_SERVER nats-server /usr/sbin/nats-server; } # Debian's: not on a user's PATH

nats_install() {
  local bin
  if bin=$(nats_bin); then
    log "nats-server already installed: $bin ($(bin_version "$bin"))"
    return 0
  fi
  if [ "${FELIX_PEERS_NO_APT:-0}" != 1 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    log "installing Debian's nats-server package"
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server; then
      bin=$(nats_bin) || die "apt-get installed nats-server but it is not on PATH"
      log "installed $bin ($(bin_version "$bin"))"
      return 0
    fi
    log "apt-get install nats-server failed; falling back to go install"
  fi
  command -v go >/dev/null 2>&1 || die "neither apt-get (as root) nor go can install nats-server"
  log "go install github.com/nats-io/nats-server/v2@$NATS_GO_VERSION into $BIN_DIR"
  # Outside the module so that go.mod is left alone.
  (cd "$PEERS_DIR" && GOBIN="$BIN_DIR" go install "github.com/nats-io/nats-server/v2@$NATS_GO_VERSION")
  bin=$(nats_bin) || die "go install finished but $BIN_DIR/nats-server is missing"
  log "installed $bin ($(bin_version "$bin"))"
}

nats_start() {
  local js=${FELIX_NATS_JS:-0} bin port note=""
  for arg in "$@"; do
    case $arg in
      --js | js) js=1 ;;
      *) die "start nats: unknown argument $arg (want --js)" ;;
    esac
  done
  port=$(nats_port)
  bin=$(nats_bin) || die "nats-server is not installed: run scripts/peers.sh install"
  local args=(-a 127.0.0.1 -p "$port")
  if [ "$js" = 1 ]; then
    mkdir -p "$DATA_DIR/nats-$port"
    args+=(-js -sd "$DATA_DIR/nats-$port")
    note=", JetStream store $DATA_DIR/nats-$port"
  fi
  launch nats nats-server "$port" "$note" "$bin" "${args[@]}"
}

nats_stop() { halt nats nats-server "$(nats_port)"; }

nats_status() { report nats nats-server "$(nats_bin || true)"; }

# ---------------------------------------------------------------- redis

redis_port() { echo "${FELIX_REDIS_PORT:-6379}"; }

redis_bin() { find_bin FELIX_REDIS_SERVER redis-server /usr/bin/redis-server; }

# redis_install installs Debian's redis-server package when no redis-server
# is found. On a host with an init system the package may also start a
# system service on 6379; this script never touches it (set FELIX_REDIS_PORT).
redis_install() {
  local bin
  if bin=$(redis_bin); then
    log "redis-server already installed: $bin ($(bin_version "$bin"))"
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
    die "redis-server is missing and only apt-get (as root) can install it here: apt-get install redis-server"
  fi
  log "installing Debian's redis-server package"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
  bin=$(redis_bin) || die "apt-get installed redis-server but it is not on PATH"
  log "installed $bin ($(bin_version "$bin"))"
}

redis_start() {
  local bin port dir
  [ $# -eq 0 ] || die "start redis: unexpected argument $1"
  port=$(redis_port)
  dir=$DATA_DIR/redis-$port
  bin=$(redis_bin) || die "redis-server is not installed: run scripts/peers.sh install redis"
  mkdir -p "$dir"
  # A pure in-memory cache: no RDB snapshots (--save ""), no AOF. Loopback
  # only; protected mode stays on; logs to stdout, i.e. the log file.
  launch redis redis-server "$port" "" "$bin" --bind 127.0.0.1 --port "$port" \
    --save "" --appendonly no --protected-mode yes --daemonize no --dir "$dir" --logfile ""
}

redis_stop() { halt redis redis-server "$(redis_port)"; }

redis_status() { report redis redis-server "$(redis_bin || true)"; }

# ---------------------------------------------------------------- main

cmd=${1:-}
[ -n "$cmd" ] || usage
shift
init_dirs

case $cmd in
  install)
    if [ $# -eq 0 ]; then set -- "${PEERS[@]}"; fi
    for name in "$@"; do
      known_peer "$name" || die "unknown peer $name (known: ${PEERS[*]})"
      "${name}_install"
    done
    ;;
  start | stop)
    name=${1:-}
    [ -n "$name" ] || die "$cmd needs a peer name (known: ${PEERS[*]})"
    known_peer "$name" || die "unknown peer $name (known: ${PEERS[*]})"
    shift
    "${name}_${cmd}" "$@"
    ;;
  status)
    for name in "${PEERS[@]}"; do "${name}_status"; done
    ;;
  -h | --help | help) usage ;;
  *) die "unknown command $cmd (install, start NAME, stop NAME, status)" ;;
esac
