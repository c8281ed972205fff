#!/usr/bin/env bash
# A Prefect server and an MLflow tracking server on this machine, in the background.
#
#   infra/local-stack.sh [start]   start both (skips one already answering), wait until healthy
#   infra/local-stack.sh stop      stop both (SIGTERM to each server's process group)
#   infra/local-stack.sh status    health of both
#   infra/local-stack.sh env       the exports that point `sentinel` at them
#
# State (SQLite databases, MLflow artifacts, logs, pid files) lives in STACK_DIR (default .sentinel/stack).
# Binaries: PREFECT / MLFLOW, else .venv/bin/{prefect,mlflow} if present, else the ones on PATH.
set -euo pipefail

STACK_DIR=${STACK_DIR:-.sentinel/stack}
HOST=${STACK_HOST:-127.0.0.1}
PREFECT_PORT=${PREFECT_PORT:-4200}
MLFLOW_PORT=${MLFLOW_PORT:-5000}
WAIT_S=${STACK_WAIT_S:-120}
PREFECT=${PREFECT:-$( [ -x .venv/bin/prefect ] && echo .venv/bin/prefect || echo prefect )}
MLFLOW=${MLFLOW:-$( [ -x .venv/bin/mlflow ] && echo .venv/bin/mlflow || echo mlflow )}

mkdir -p "$STACK_DIR"
STACK_DIR=$(cd "$STACK_DIR" && pwd)
PREFECT_URL="http://$HOST:$PREFECT_PORT"
MLFLOW_URL="http://$HOST:$MLFLOW_PORT"

healthy() {  # NAME -> 0 when its health endpoint answers
  case $1 in
    prefect) curl -fsS -m 2 "$PREFECT_URL/api/health" 2>/dev/null | grep -q true ;;
    mlflow) curl -fsS -m 2 "$MLFLOW_URL/health" >/dev/null 2>&1 ;;
  esac
}

alive() {  # NAME -> 0 when its pid file names a live process
  local pid_file="$STACK_DIR/$1.pid"
  [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

launch() {  # NAME COMMAND... : run in its own session (so stop can signal the whole group), log, pid file
  local name=$1; shift
  if healthy "$name"; then echo "$name: already answering"; return; fi
  if alive "$name"; then echo "$name: already starting (pid $(cat "$STACK_DIR/$name.pid"))"; return; fi
  setsid "$@" >"$STACK_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$STACK_DIR/$name.pid"
  echo "$name: started pid $!, log $STACK_DIR/$name.log"
}

wait_healthy() {  # NAME
  local name=$1 waited=0
  until healthy "$name"; do
    if ! alive "$name"; then
      echo "$name: exited before answering; last log lines:" >&2
      tail -n 20 "$STACK_DIR/$name.log" >&2
      return 1
    fi
    if [ "$waited" -ge "$WAIT_S" ]; then echo "$name: not healthy after ${WAIT_S}s" >&2; return 1; fi
    sleep 1; waited=$((waited + 1))
  done
  echo "$name: healthy"
}

print_env() {
  cat <<EOF
export SENTINEL_PREFECT_API_URL=$PREFECT_URL/api
export SENTINEL_REGISTRY__TRACKING_URI=$MLFLOW_URL
export SENTINEL_REGISTRY__ARTIFACT_LOCATION=mlflow-artifacts:/vae-sentinel
EOF
}

start() {
  # Prefect keeps its SQLite database in PREFECT_HOME; a client PREFECT_API_URL must not leak into the server.
  launch prefect env -u PREFECT_API_URL PREFECT_HOME="$STACK_DIR/prefect" \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    "$PREFECT" server start --host "$HOST" --port "$PREFECT_PORT"
  launch mlflow env MLFLOW_DISABLE_TELEMETRY=true \
    "$MLFLOW" server --backend-store-uri "sqlite:///$STACK_DIR/mlflow.db" \
    --artifacts-destination "$STACK_DIR/mlartifacts" --host "$HOST" --port "$MLFLOW_PORT"
  wait_healthy mlflow
  wait_healthy prefect
  echo "Prefect UI $PREFECT_URL, MLflow UI $MLFLOW_URL. Point sentinel at them with:"
  print_env
}

stop() {
  local name pid waited
  for name in prefect mlflow; do
    if ! alive "$name"; then echo "$name: not running"; rm -f "$STACK_DIR/$name.pid"; continue; fi
    pid=$(cat "$STACK_DIR/$name.pid")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    waited=0
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 20 ]; do sleep 1; waited=$((waited + 1)); done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"; fi
    rm -f "$STACK_DIR/$name.pid"
    echo "$name: stopped"
  done
}

status() {
  local name rc=0
  for name in prefect mlflow; do
    if healthy "$name"; then echo "$name: healthy"; else echo "$name: down"; rc=1; fi
  done
  return $rc
}

case ${1:-start} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) print_env ;;
  *) echo "usage: $0 [start|stop|status|env]" >&2; exit 2 ;;
esac
