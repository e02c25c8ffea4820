#!/usr/bin/env bash
# A local SPIRE server and agent on loopback, for the demo and the tests.
#
#   scripts/spire-local.sh start DIR [--tuned] [--watch PID [--remove-dir]]
#       Builds (or reuses) SPIRE, starts spire-server (SQLite, admin socket DIR/server.sock)
#       and spire-agent (join_token, unix workload attestor, Workload API at
#       DIR/workload/agent.sock), waits until both are healthy and writes DIR/env (shell syntax):
#       SPIRE_BIN, SPIRE_SERVER_SOCKET, SPIFFE_ENDPOINT_SOCKET, SPIRE_AGENT_ID, TRUST_DOMAIN.
#       --tuned   shortens propagation: server cache reload 1 s, agent sync 1 s
#                 (defaults: 5 s each; see spire-config/README.md).
#       --audit-log  the server logs every API call ("API accessed", with its method):
#                 the controller benchmark counts ListEntries calls with it.
#       --watch   stops both when process PID exits (tests pass their own PID, so
#                 nothing outlives them even when they are killed).
#       --remove-dir  with --watch: the watchdog then also deletes DIR.
#   scripts/spire-local.sh stop DIR
#       Stops both (TERM, then KILL after 10 s). Safe to call twice.
#   scripts/spire-local.sh stop-server DIR | start-server DIR
#       Stops, or starts again with the same configuration and data, only the server
#       (fault tests: the agent and the controller keep running).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
config_dir="$here/../spire-config/local"
TRUST_DOMAIN=${TRUST_DOMAIN:-example.org}

say() { printf 'spire-local: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# shellcheck source=lib/local-service.sh
source "$here/lib/local-service.sh"

render() { # template output port server_extra agent_extra
  sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$3|g" -e "s|@TRUST_DOMAIN@|$TRUST_DOMAIN|g" \
      -e "s|@SERVER_EXTRA@|$4|g" -e "s|@AGENT_EXTRA@|$5|g" "$1" >"$2"
}

start_server() {
  local bin
  bin=$(SPIRE_NO_BUILD=1 "$here/spire.sh")
  "$bin/spire-server" run -config "$dir/server.conf" >>"$dir/server.log" 2>&1 &
  echo $! >"$dir/server.pid"
  wait_for server 30 "$bin/spire-server" healthcheck -socketPath "$dir/server.sock"
}

stop() {
  stop_process agent
  stop_process server
  stop_watchdog
}

start() {
  local tuned=0 watch="" remove_dir=0 audit=0
  while [[ $# -gt 0 ]]; do
    case $1 in
      --tuned) tuned=1 ;;
      --audit-log) audit=1 ;;
      --watch) watch=$2; shift ;;
      --remove-dir) remove_dir=1 ;;
      *) die "unknown option $1" ;;
    esac
    shift
  done
  local bin
  bin=$("$here/spire.sh") || die "SPIRE could not be built; see the messages above"
  mkdir -p "$dir/server-data" "$dir/agent-data" "$dir/workload"
  local port server_extra="" agent_extra=""
  port=$(free_port)
  if [[ $tuned == 1 ]]; then
    server_extra='experimental { cache_reload_interval = "1s" }'
    agent_extra='experimental { sync_interval = "1s" }'
  fi
  if [[ $audit == 1 ]]; then
    server_extra="$server_extra audit_log_enabled = true"
  fi
  render "$config_dir/server.conf" "$dir/server.conf" "$port" "$server_extra" ""
  render "$config_dir/agent.conf" "$dir/agent.conf" "$port" "" "$agent_extra"

  "$bin/spire-server" run -config "$dir/server.conf" >"$dir/server.log" 2>&1 &
  echo $! >"$dir/server.pid"
  if [[ -n $watch ]]; then
    start_watchdog "$watch" "$here/spire-local.sh" "$remove_dir"
  fi
  wait_for server 30 "$bin/spire-server" healthcheck -socketPath "$dir/server.sock" || { stop; exit 1; }

  local token
  token=$("$bin/spire-server" token generate -socketPath "$dir/server.sock" -ttl 3600 | awk '/^Token:/ {print $2}')
  [[ -n $token ]] || { stop; die "spire-server did not generate a join token"; }
  "$bin/spire-agent" run -config "$dir/agent.conf" -joinToken "$token" >"$dir/agent.log" 2>&1 &
  echo $! >"$dir/agent.pid"
  wait_for agent 30 "$bin/spire-agent" healthcheck -socketPath "$dir/workload/agent.sock" || { stop; exit 1; }

  cat >"$dir/env.tmp" <<ENV
SPIRE_BIN=$bin
SPIRE_SERVER_SOCKET=$dir/server.sock
SPIFFE_ENDPOINT_SOCKET=unix://$dir/workload/agent.sock
SPIRE_AGENT_ID=spiffe://$TRUST_DOMAIN/spire/agent/join_token/$token
TRUST_DOMAIN=$TRUST_DOMAIN
ENV
  mv "$dir/env.tmp" "$dir/env"
  say "server and agent healthy (server port $port, Workload API unix://$dir/workload/agent.sock)"
}

[[ $# -ge 2 ]] || die "usage: spire-local.sh start DIR [--tuned] [--audit-log] [--watch PID [--remove-dir]] | stop DIR | stop-server DIR | start-server DIR"
cmd=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
shift 2
case $cmd in
  start) start "$@" ;;
  stop) stop ;;
  stop-server) stop_process server ;;
  start-server) start_server ;;
  *) die "unknown command $cmd (start or stop)" ;;
esac
