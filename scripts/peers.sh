#!/usr/bin/env bash
# peers.sh — install, start, stop and inspect the peer servers Felix is
# benchmarked against on this machine (docs: DESIGN.md "Peers to measure
# against"). Every peer listens on 127.0.0.1 only.
#
#   scripts/peers.sh install [NAME...]   install peers that are missing (default: all)
#   scripts/peers.sh start NAME [--js]   start NAME in the background, print its URL
#   scripts/peers.sh stop NAME           stop NAME (by the PID in its PID file only)
#   scripts/peers.sh status              show every peer: binary, running, URL
#
# Peers: nats (redis is planned: add redis_* functions like the nats_* ones
# below and list it in PEERS).
#
# State lives under .peers/ at the repository root (override: FELIX_PEERS_DIR):
#   .peers/bin/        binaries installed with `go install` (fallback)
#   .peers/run/        PID files, one per NAME and port: nats-4222.pid
#   .peers/log/        server logs
#   .peers/data/       JetStream store dirs
#
# Environment:
#   FELIX_NATS_PORT     client port for nats (default 4222)
#   FELIX_NATS_JS=1     start nats with JetStream (same as --js)
#   FELIX_NATS_SERVER   path of a nats-server binary to use instead of searching
#   FELIX_PEERS_WAIT    seconds to wait for a port to accept / a process to exit (default 10)
#   FELIX_PEERS_NO_APT=1  install with `go install` even where apt-get could
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

PEERS=(nats) # planned: redis

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
  sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
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

# ---------------------------------------------------------------- nats

nats_port() { echo "${FELIX_NATS_PORT:-4222}"; }
nats_pidfile() { echo "$RUN_DIR/nats-$(nats_port).pid"; }
nats_url() { echo "nats://127.0.0.1:$(nats_port)"; }

# nats_bin prints the nats-server binary to use, or fails.
nats_bin() {
  if [ -n "${FELIX_NATS_SERVER:-}" ]; then
    [ -x "$FELIX_NATS_SERVER" ] || die "FELIX_NATS_SERVER=$FELIX_NATS_SERVER is not executable"
    echo "$FELIX_NATS_SERVER"
  elif [ -x "$BIN_DIR/nats-server" ]; then
    echo "$BIN_DIR/nats-server"
  elif command -v nats-server >/dev/null 2>&1; then
    command -v nats-server
  elif [ -x /usr/sbin/nats-server ]; then # Debian's package; not on a user's PATH
    echo /usr/sbin/nats-server
  else
    return 1
  fi
}

nats_install() {
  local bin
  if bin=$(nats_bin); then
    log "nats-server already installed: $bin ($("$bin" --version 2>&1 | head -n 1))"
    return 0
  fi
  if [ "${FELIX_PEERS_NO_APT:-0}" != 1 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    log "installing Debian's nats-server package"
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server; then
      bin=$(nats_bin) || die "apt-get installed nats-server but it is not on PATH"
      log "installed $bin ($("$bin" --version 2>&1 | head -n 1))"
      return 0
    fi
    log "apt-get install nats-server failed; falling back to go install"
  fi
  command -v go >/dev/null 2>&1 || die "neither apt-get (as root) nor go can install nats-server"
  log "go install github.com/nats-io/nats-server/v2@$NATS_GO_VERSION into $BIN_DIR"
  # Outside the module so that go.mod is left alone.
  (cd "$PEERS_DIR" && GOBIN="$BIN_DIR" go install "github.com/nats-io/nats-server/v2@$NATS_GO_VERSION")
  bin=$(nats_bin) || die "go install finished but $BIN_DIR/nats-server is missing"
  log "installed $bin ($("$bin" --version 2>&1 | head -n 1))"
}

nats_start() {
  local js=${FELIX_NATS_JS:-0} bin port pidfile logf pid
  for arg in "$@"; do
    case $arg in
      --js | js) js=1 ;;
      *) die "start nats: unknown argument $arg (want --js)" ;;
    esac
  done
  port=$(nats_port)
  pidfile=$(nats_pidfile)
  logf=$LOG_DIR/nats-$port.log
  bin=$(nats_bin) || die "nats-server is not installed: run scripts/peers.sh install"

  if pid_alive "$(cat "$pidfile" 2>/dev/null || true)" nats-server; then
    log "nats already running (pid $(cat "$pidfile"))"
    nats_url
    return 0
  fi
  rm -f "$pidfile"
  if port_open "$port"; then
    die "127.0.0.1:$port is already in use by a process this script did not start; set FELIX_NATS_PORT"
  fi

  local args=(-a 127.0.0.1 -p "$port")
  if [ "$js" = 1 ]; then
    mkdir -p "$DATA_DIR/nats-$port"
    args+=(-js -sd "$DATA_DIR/nats-$port")
  fi
  # setsid: the server outlives this shell and ignores its terminal's signals.
  setsid "$bin" "${args[@]}" </dev/null >"$logf" 2>&1 &
  pid=$!
  echo "$pid" >"$pidfile"
  if ! wait_port "$port" "$pid" nats-server "$logf"; then
    stop_pidfile "$pidfile" nats-server
    die "nats failed to start"
  fi
  log "nats started (pid $pid, log $logf$([ "$js" = 1 ] && echo ", JetStream store $DATA_DIR/nats-$port"))"
  nats_url
}

nats_stop() {
  local pidfile
  pidfile=$(nats_pidfile)
  if [ ! -e "$pidfile" ]; then
    log "nats on port $(nats_port) is not running (no $pidfile)"
    return 0
  fi
  stop_pidfile "$pidfile" nats-server
  log "nats on port $(nats_port) stopped"
}

nats_status() {
  local bin f pid port
  if bin=$(nats_bin); then
    echo "nats: binary $bin ($("$bin" --version 2>&1 | head -n 1))"
  else
    echo "nats: not installed (scripts/peers.sh install)"
  fi
  shopt -s nullglob
  local any=0
  for f in "$RUN_DIR"/nats-*.pid; do
    port=${f##*/nats-}
    port=${port%.pid}
    pid=$(cat "$f" 2>/dev/null || true)
    if pid_alive "$pid" nats-server; then
      echo "nats: running pid $pid url nats://127.0.0.1:$port"
    else
      echo "nats: stale PID file $f (pid $pid not running)"
    fi
    any=1
  done
  [ "$any" = 1 ] || echo "nats: not running"
}

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
