# Shared by spire-local.sh and kube-local.sh: processes started in a directory $dir, each
# with $dir/NAME.pid and $dir/NAME.log, and a watchdog that stops them when a given
# process (a test) exits. The caller defines say() and sets $dir.

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for NAME SECONDS command...: polls every 0.2 s while process NAME lives.
wait_for() {
  local name=$1 seconds=$2; shift 2
  for _ in $(seq 1 $((seconds * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null; then
      say "$name exited; the end of its log:"
      tail -n 20 "$dir/$name.log" >&2 || true
      return 1
    fi
    sleep 0.2
  done
  say "$name was not ready within $seconds s; the end of its log:"
  tail -n 20 "$dir/$name.log" >&2 || true
  return 1
}

# stop_process NAME: TERM, then KILL after 10 s. Safe to call twice.
stop_process() {
  local pid
  [[ -f "$dir/$1.pid" ]] || return 0
  pid=$(cat "$dir/$1.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/$1.pid"
}

# start_watchdog PID SCRIPT REMOVE_DIR: runs "SCRIPT stop $dir" (and deletes $dir if
# REMOVE_DIR is 1) once PID has exited. setsid: it must outlive the caller's process
# group to clean up after it.
start_watchdog() {
  setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 0.5; done
    WATCHDOG_SELF=$$ "$2" stop "$3"; if [[ $4 == 1 ]]; then rm -rf "$3"; fi' \
    watchdog "$1" "$2" "$dir" "$3" </dev/null >/dev/null 2>&1 &
  echo $! >"$dir/watchdog.pid"
}

# stop_watchdog: unless this is the watchdog itself stopping the services.
stop_watchdog() {
  local pid
  [[ -f "$dir/watchdog.pid" ]] || return 0
  pid=$(cat "$dir/watchdog.pid")
  rm -f "$dir/watchdog.pid"
  [[ "$pid" != "${WATCHDOG_SELF:-}" ]] && kill "$pid" 2>/dev/null || true
}
