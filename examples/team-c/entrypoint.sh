#!/usr/bin/env bash
# Starts one Airflow Edge worker and supervises it (PID 1 of the container).
#
# Every setting comes from the environment (worker.env.yaml at deploy time), with
# container defaults, so the same script runs unchanged outside a container.
#
# Shutdown: Cloud Run sends SIGTERM, then SIGKILL 10 s later. This script forwards
# SIGTERM to the worker (which terminates its running tasks; it does not drain), and
# EDGE_TASK_GRACE_SECONDS later, or as soon as the worker has exited, kills the task
# processes still running (an Airflow 3 task answers SIGTERM only with its on_kill
# hook); a worker still there after EDGE_WORKER_STOP_SECONDS is killed too (one retrying
# a call to a central site it cannot reach acts on SIGTERM late). This script is a child
# subreaper, so a task whose supervisor died on SIGTERM (task SDK 1.0/1.1) is re-parented
# to it, not to init, and is found too. The tasks are reported failed (the DAG defaults'
# retries run them again), the worker reports itself offline and exits, all before the
# SIGKILL. See README.md.
set -euo pipefail

log() { printf '%s entrypoint: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

script_dir="${BASH_SOURCE[0]%/*}"
[[ "$script_dir" != "${BASH_SOURCE[0]}" ]] || script_dir=.
EDGE_HOME="${EDGE_HOME:-$script_dir}"
EDGE_PYTHON="${EDGE_PYTHON:-python3}"

# Become a child subreaper first (prctl, through one short Python start that execs this
# script again, same PID): task processes whose supervisor dies are then re-parented to
# this script rather than to init, and end-tasks finds them below it.
if [[ -z "${EDGE_SUBREAPER:-}" ]]; then
  exec "$EDGE_PYTHON" -S "$EDGE_HOME/startup.py" subreaper "$BASH" "${BASH_SOURCE[0]}" "$@"
fi
EDGE_RUN_DIR="${EDGE_RUN_DIR:-${AIRFLOW_HOME:-/opt/airflow}/run}"
EDGE_API_WAIT_SECONDS="${EDGE_API_WAIT_SECONDS:-60}"
EDGE_EXIT_DELAY_SECONDS="${EDGE_EXIT_DELAY_SECONDS:-3}"
EDGE_TASK_GRACE_SECONDS="${EDGE_TASK_GRACE_SECONDS:-3}"
# A worker still there this long after SIGTERM is killed: Cloud Run's SIGKILL comes at 10 s.
EDGE_WORKER_STOP_SECONDS="${EDGE_WORKER_STOP_SECONDS:-8}"
EDGE_HEALTH_SERVER="${EDGE_HEALTH_SERVER:-false}"
EDGE_WORKER_CONCURRENCY="${EDGE_WORKER_CONCURRENCY:-4}"
EDGE_WORKER_NAME_PREFIX="${EDGE_WORKER_NAME_PREFIX:-edge-worker}"
# Task logs: on Cloud Run a size-limited in-memory volume; kept at EDGE_LOG_KEEP_MIB (0: not pruned).
EDGE_LOG_KEEP_MIB="${EDGE_LOG_KEEP_MIB:-0}"
EDGE_LOG_PRUNE_SECONDS="${EDGE_LOG_PRUNE_SECONDS:-30}"
# remote_logging: each finished task's log is also uploaded to this gs://BUCKET/FOLDER.
EDGE_REMOTE_LOG_FOLDER="${EDGE_REMOTE_LOG_FOLDER:-}"
# Airflow 2: stop running tasks when the central site has not answered for this long, before
# it gives up on them ([scheduler] scheduler_zombie_task_threshold, 300 s) and runs them again.
EDGE_CENTRAL_LOST_SECONDS="${EDGE_CENTRAL_LOST_SECONDS:-240}"
log_folder="${AIRFLOW__LOGGING__BASE_LOG_FOLDER:-${AIRFLOW_HOME:-/opt/airflow}/logs}"
export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-airflow.providers.edge3.executors.EdgeExecutor}"

[[ -n "${AIRFLOW__EDGE__API_URL:-}" ]] \
  || die "AIRFLOW__EDGE__API_URL is not set: set it to the central site's https://HOST/edge_worker/v1/rpcapi."
[[ "${AIRFLOW__EDGE__API_URL}" == */edge_worker/v1/rpcapi ]] \
  || die "AIRFLOW__EDGE__API_URL must end in /edge_worker/v1/rpcapi (got ${AIRFLOW__EDGE__API_URL})."
[[ -n "${EDGE_SHARED_SECRET:-}" ]] \
  || die "EDGE_SHARED_SECRET is not set: deploy injects it from Secret Manager (--set-secrets)."
[[ -n "${EDGE_WORKER_QUEUES:-}" ]] \
  || die "EDGE_WORKER_QUEUES is not set: give the comma-separated queues this worker serves."
[[ "$EDGE_LOG_KEEP_MIB" =~ ^[0-9]+$ && "$EDGE_LOG_PRUNE_SECONDS" =~ ^[1-9][0-9]*$ ]] \
  || die "EDGE_LOG_KEEP_MIB must be a whole number of MiB and EDGE_LOG_PRUNE_SECONDS of seconds (got ${EDGE_LOG_KEEP_MIB}, ${EDGE_LOG_PRUNE_SECONDS})."
[[ "$EDGE_CENTRAL_LOST_SECONDS" =~ ^[0-9]+$ ]] \
  || die "EDGE_CENTRAL_LOST_SECONDS must be a whole number of seconds, 0 for never (got ${EDGE_CENTRAL_LOST_SECONDS})."
[[ "$EDGE_TASK_GRACE_SECONDS" =~ ^[0-9]+$ && "$EDGE_WORKER_STOP_SECONDS" =~ ^[0-9]+$ ]] \
  || die "EDGE_TASK_GRACE_SECONDS and EDGE_WORKER_STOP_SECONDS must be whole numbers of seconds (got ${EDGE_TASK_GRACE_SECONDS}, ${EDGE_WORKER_STOP_SECONDS})."
(( EDGE_TASK_GRACE_SECONDS <= EDGE_WORKER_STOP_SECONDS )) \
  || die "EDGE_TASK_GRACE_SECONDS (${EDGE_TASK_GRACE_SECONDS}) must not be above EDGE_WORKER_STOP_SECONDS (${EDGE_WORKER_STOP_SECONDS}): the tasks end before the worker is killed."
[[ -z "${EDGE_TEAM_NAME:-}" || "$EDGE_TEAM_NAME" =~ ^[A-Za-z0-9_]{3,50}$ ]] \
  || die "EDGE_TEAM_NAME must be the team's Airflow team name: 3 to 50 letters, digits or '_' (got ${EDGE_TEAM_NAME})."
[[ -z "$EDGE_REMOTE_LOG_FOLDER" || "$EDGE_REMOTE_LOG_FOLDER" =~ ^gs://[a-z0-9][-_.a-z0-9]*[a-z0-9]/[^/].*$ ]] \
  || die "EDGE_REMOTE_LOG_FOLDER must be gs://BUCKET/FOLDER (got ${EDGE_REMOTE_LOG_FOLDER})."

mkdir -p "$EDGE_RUN_DIR"
worker_pid_file="$EDGE_RUN_DIR/worker.pid"
rm -f "$worker_pid_file"

health_pid=""
pruner_pid=""
fence_pid=""
worker_pid=""
reaper_pid=""
shutting_down=false

# shellcheck disable=SC2329  # invoked by the EXIT trap
stop_helpers() {
  local pid
  for pid in "$health_pid" "$pruner_pid" "$fence_pid" "$reaper_pid"; do
    if [[ -n "$pid" ]]; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
}
trap stop_helpers EXIT

# The startup.py command ($@: end-tasks or stop-worker and their seconds) that kills the task
# processes still running below this script and returns once they are gone (the worker and its
# direct children, the task supervisors, are spared while the worker lives; so are the
# helpers). One process, run as it is: killed before its time, it leaves nothing behind.
tasks_command() {
  tasks_command=("$EDGE_PYTHON" -S "$EDGE_HOME/startup.py" "$@" "$$" "$worker_pid"
    ${health_pid:+"$health_pid"} ${pruner_pid:+"$pruner_pid"} ${fence_pid:+"$fence_pid"})
}

# shellcheck disable=SC2329  # invoked by the TERM and INT traps
on_signal() {
  if [[ "$shutting_down" == "true" ]]; then
    return
  fi
  shutting_down=true
  if [[ -n "$worker_pid" ]]; then
    log "received $1: stopping worker ${worker_name}; tasks still running in ${EDGE_TASK_GRACE_SECONDS} s are ended and retried, the worker if still there in ${EDGE_WORKER_STOP_SECONDS} s"
    kill -TERM "$worker_pid" 2>/dev/null || true
    tasks_command stop-worker "$EDGE_TASK_GRACE_SECONDS" "$EDGE_WORKER_STOP_SECONDS"
    "${tasks_command[@]}" &
    reaper_pid=$!
  else
    log "received $1 before the worker started: exiting"
    exit 0
  fi
}
trap 'on_signal SIGTERM' TERM
trap 'on_signal SIGINT' INT

if [[ "$EDGE_HEALTH_SERVER" == "true" ]]; then
  # Listen on $PORT before anything slow, so Cloud Run's startup probe sees the container.
  env -u EDGE_SHARED_SECRET "$EDGE_PYTHON" -S "$EDGE_HOME/health_server.py" \
    --port "${PORT:-8080}" --path "${EDGE_HEALTH_PATH:-/health}" --pid-file "$worker_pid_file" &
  health_pid=$!
fi

if (( EDGE_LOG_KEEP_MIB > 0 )) || [[ -n "$EDGE_REMOTE_LOG_FOLDER" ]]; then
  # Uploads finished task logs (remote_logging) and deletes the oldest past the bound, never a
  # running task's nor one not uploaded yet. At exit (SIGTERM) it makes one last upload pass.
  env -u EDGE_SHARED_SECRET "$EDGE_PYTHON" -S "$EDGE_HOME/startup.py" keep-logs \
    "$log_folder" "$EDGE_LOG_KEEP_MIB" "$EDGE_LOG_PRUNE_SECONDS" ${EDGE_REMOTE_LOG_FOLDER:+"$EDGE_REMOTE_LOG_FOLDER"} &
  pruner_pid=$!
fi

# One Python start for three things: the installed Airflow major, a name unique to this
# instance (the key of the central worker table) and a bounded wait for the Edge API and,
# on Airflow 3, the Execution API its tasks call.
prepared="$("$EDGE_PYTHON" "$EDGE_HOME/startup.py" prepare \
  "$EDGE_WORKER_NAME_PREFIX" "$AIRFLOW__EDGE__API_URL" "$EDGE_API_WAIT_SECONDS" \
  "${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-}")" \
  || die "the central site cannot be reached at the URL named above; check it, the network mode, that [edge] api_enabled = True and that /edge_worker/ and /execution/ reach its api-server."
read -r airflow_major worker_name <<< "$prepared"
worker_name="${EDGE_WORKER_NAME:-$worker_name}"
log "worker name ${worker_name}, queues ${EDGE_WORKER_QUEUES}, concurrency ${EDGE_WORKER_CONCURRENCY}"

# The option the worker signs its requests with: [core] internal_api_secret_key on
# Airflow 2, [api_auth] jwt_secret on Airflow 3.
case "$airflow_major" in
  2) export AIRFLOW__CORE__INTERNAL_API_SECRET_KEY="$EDGE_SHARED_SECRET" ;;
  *) export AIRFLOW__API_AUTH__JWT_SECRET="$EDGE_SHARED_SECRET" ;;
esac
unset EDGE_SHARED_SECRET

team_args=()
if [[ -n "${EDGE_TEAM_NAME:-}" ]]; then
  # A team's worker (Airflow 3.2+) reads its settings as the team's, AIRFLOW__<TEAM>___<SECTION>__<KEY>,
  # with no fallback to the global ones (Airflow's ExecutorConf): give it each setting under
  # the team's prefix too. Not the secret: the worker signs with the global one.
  team_prefix="AIRFLOW__${EDGE_TEAM_NAME^^}___"
  while IFS= read -r name; do
    case "$name" in
      *___* | AIRFLOW__CORE__INTERNAL_API_SECRET_KEY | AIRFLOW__API_AUTH__JWT_SECRET) ;;
      AIRFLOW__*) export "${team_prefix}${name#AIRFLOW__}=${!name}" ;;
    esac
  done < <(compgen -e)
  team_args=(--team-name "$EDGE_TEAM_NAME")
fi

airflow edge worker \
  --queues "$EDGE_WORKER_QUEUES" \
  --edge-hostname "$worker_name" \
  --concurrency "$EDGE_WORKER_CONCURRENCY" \
  "${team_args[@]}" \
  --pid "$worker_pid_file.airflow" &
worker_pid=$!
printf '%s\n' "$worker_pid" > "$worker_pid_file"

if [[ "$airflow_major" == "2" ]] && (( EDGE_CENTRAL_LOST_SECONDS > 0 )); then
  # An Airflow 3 task stops by itself when the central site is gone (its supervisor, after 3
  # failed heartbeats); an Airflow 2 task runs on and may be run again elsewhere meanwhile.
  env -u AIRFLOW__CORE__INTERNAL_API_SECRET_KEY "$EDGE_PYTHON" -S "$EDGE_HOME/startup.py" fence \
    "$AIRFLOW__EDGE__API_URL" "$EDGE_CENTRAL_LOST_SECONDS" "$$" "$worker_pid" \
    ${health_pid:+"$health_pid"} ${pruner_pid:+"$pruner_pid"} &
  fence_pid=$!
fi

# `wait` returns early when a trapped signal arrives: wait again until the worker is gone.
status=0
while kill -0 "$worker_pid" 2>/dev/null; do
  wait "$worker_pid" && status=0 || status=$?
done

# Task processes that outlived the worker (their supervisor died on SIGTERM) end now.
if [[ -n "$reaper_pid" ]]; then
  kill "$reaper_pid" 2>/dev/null || true
  wait "$reaper_pid" 2>/dev/null || true
  reaper_pid=""
fi
tasks_command end-tasks 0
"${tasks_command[@]}" || true

if [[ "$shutting_down" == "true" ]]; then
  log "worker ${worker_name} stopped (exit ${status})"
  exit 0
fi
(( status != 0 )) || status=1
log "worker ${worker_name} exited on its own (exit ${status}): the container stops so that Cloud Run restarts it"
# Keep the health server answering 503 for a moment, so probes and people see why.
sleep "$EDGE_EXIT_DELAY_SECONDS"
exit "$status"
