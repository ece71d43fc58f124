#!/usr/bin/env bash
# Set up, build and deploy team team-c's Airflow Edge worker on Cloud Run.
#
#   ./deploy.sh [--dry-run] [--tag TAG] COMMAND...
#
# Commands: setup, build, dags, deploy, scaler, status, pools, all (= setup build dags deploy,
# and scaler when autoscaling is on).
# Every command looks before it changes anything: a second run creates nothing and
# only builds and rolls out the image. --dry-run prints every gcloud command it
# would run, one per line, ready to paste, and runs none. See docs/deploy.md.
# An answer that is a shell keyword (e.g. pool_name "then") is rendered bare: a plain value.
# shellcheck disable=SC1010
set -euo pipefail

# --- The answers (rendered by the template; change them with copier update) ---
TEAM=team-c
TEAM_MODULE=team_c
PROJECT=acme-data-prod
REGION=europe-west1
AR_REPO=airflow-edge
IMAGE_REPOSITORY=europe-west1-docker.pkg.dev/acme-data-prod/airflow-edge/team-c-edge-worker
RESOURCE=team-c-edge-worker
SA_ID=team-c-edge
SECRET=airflow-edge-secret
TARGET=service
MIN_GCLOUD_VERSION=498.0.0
INSTANCES=1
# autoscaling: the central site's one scaler sets the count (central/README.md); deploy starts at scale_min.
AUTOSCALING=false
CENTRAL_SA=airflow-central@acme-central.iam.gserviceaccount.com
MIN_INSTANCES=1
MAX_INSTANCES=2
CPU=1
MEMORY=2Gi
NETWORK_MODE=direct-vpc
VPC_NETWORK=shared-vpc
VPC_SUBNET=airflow-edge
VPC_EGRESS=private-ranges-only
VPC_CONNECTOR=edge-connector
DAGS_SOURCE=gcs-volume
DAGS_BUCKET=acme-airflow-dags
DAGS_OBJECT_PREFIX=dags/team_c/
DAGS_MOUNT_PATH=/opt/airflow/dags-bucket/team_c
DAGS_METADATA_CACHE_TTL=10
HEALTH_PATH=/health
REMOTE_LOGGING=false
LOG_BUCKET=''
LOG_OBJECT_PREFIX=''
LOG_FOLDER=/opt/airflow/logs
LOG_VOLUME_MIB=128
POOL_NAME=team_c_pool
AIRFLOW_VERSION=3.3.2
# gcloud refuses `composer environments run ... pools` for Airflow 3.3.0 and newer.
COMPOSER_POOLS_RUN_WORKS=false

# --- Plain bash from here on ---
if [[ "$TARGET" == worker-pool ]]; then
  MIN_GCLOUD_REASON="Cloud Run worker pools need"
else
  MIN_GCLOUD_REASON="this service's deploy flags need"
fi
GCLOUD_UPDATE_HINT="update it with: gcloud components update (or, where gcloud came from apt or yum, upgrade the google-cloud-cli package)"
SA_EMAIL="${SA_ID}@${PROJECT}.iam.gserviceaccount.com"
MEMBER="serviceAccount:${SA_EMAIL}"
IMAGE_TAG_PATTERN='^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$'
# The IAM condition of the worker's DAG bucket read (docs/deploy.md, "The DAG bucket"): the
# objects under the team's prefix, and the bucket-level calls, which list names only. Cloud
# Storage FUSE asks for the bucket's layout with an empty prefix when it mounts, whatever
# only-dir is, and a refusal stops the mount.
DAGS_OBJECTS_CONDITION="resource.name.startsWith(\"projects/_/buckets/${DAGS_BUCKET}/objects/${DAGS_OBJECT_PREFIX}\")"
DAGS_READ_TITLE="${TEAM} DAGs read, bucket listed"
DAGS_READ_CONDITION="^:^expression=${DAGS_OBJECTS_CONDITION} || resource.type == \"storage.googleapis.com/Bucket\":title=${DAGS_READ_TITLE}"
# What releases before 2026-12 granted: listings inside the prefix only, which refuses that mount.
OLD_DAGS_READ_TITLE="${TEAM} DAGs read"
OLD_DAGS_READ_CONDITION="^:^expression=${DAGS_OBJECTS_CONDITION} || api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"${DAGS_OBJECT_PREFIX}\"):title=${OLD_DAGS_READ_TITLE}"
# remote_logging: the runtime service account reads and writes the team's log objects only (an
# upload of a try's log reads what is there first and replaces it, so objectUser, not objectCreator).
LOGS_WRITE_TITLE="${TEAM} task logs write"
LOGS_WRITE_CONDITION="^:^expression=resource.name.startsWith(\"projects/_/buckets/${LOG_BUCKET}/objects/${LOG_OBJECT_PREFIX}\"):title=${LOGS_WRITE_TITLE}"
METRIC="${RESOURCE}-errors"
POLICY_NAME="${RESOURCE} errors"
LABELS="app=airflow-edge-worker,team=${TEAM},managed-by=deploy-sh"
RETRY_DELAY="${DEPLOY_RETRY_DELAY:-5}"

REQUIRED_APIS=(
  artifactregistry.googleapis.com
  cloudbuild.googleapis.com
  iam.googleapis.com
  logging.googleapis.com
  monitoring.googleapis.com
  run.googleapis.com
  secretmanager.googleapis.com
)
if [[ "$DAGS_SOURCE" == gcs-volume || "$REMOTE_LOGGING" == true ]]; then
  REQUIRED_APIS+=(storage.googleapis.com)
fi

if [[ "$TARGET" == worker-pool ]]; then
  LOG_RESOURCE="resource.type=\"cloud_run_worker_pool\" AND resource.labels.worker_pool_name=\"${RESOURCE}\""
else
  LOG_RESOURCE="resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${RESOURCE}\""
fi
# The worker's own error lines (README "Troubleshooting") and Cloud Run's line for a
# container that exits non-zero, which repeats when the worker crash-loops.
ERROR_LOG_FILTER="${LOG_RESOURCE} AND (textPayload=~\"(?i)403.*forbidden|version mismatch|exited on its own|edge api not reachable|edge api cannot be reached\" OR textPayload=~\"Container called exit[(][1-9]\")"

usage() {
  cat <<'EOF'
Usage: ./deploy.sh [--dry-run] [--tag TAG] COMMAND...

Commands (run in this order whatever order they are given in):
  setup    once: enable the APIs, create the Artifact Registry repository, the runtime
           service account, its IAM roles, its access to the secret, the DAG bucket
           (gcs-volume), the task log bucket (remote_logging) and the error alert.
           Creates only what is missing.
  build    build and push the image with Cloud Build (cloudbuild.yaml), tagged TAG.
  dags     check that the DAG files load on the central site (tools/check_dag_imports.py),
           then sync dags/ to the DAG bucket (dags_source gcs-volume only).
  deploy   deploy the image TAG to the Cloud Run worker pool or service.
  scaler   autoscaling only: let the central site's service account change this worker
           pool's instance count (roles/run.developer on this worker pool and
           roles/iam.serviceAccountUser on its runtime account); needs roles/run.admin.
  status   describe the deployed worker pool or service.
  pools    print the commands that create the team's pool on the central site.
  all      setup build dags deploy (and scaler when autoscaling is on).

Options:
  --dry-run   print every gcloud command, one per line, shell-quoted; run none.
  --tag TAG   the image tag for build and deploy (default: git's short commit id,
              with "-dirty" when the work tree has changes).
  -h, --help  this help.
EOF
}

say() { printf 'deploy.sh: %s\n' "$*" >&2; }
die() { printf 'deploy.sh: ERROR: %s\n' "$*" >&2; exit 1; }

# quoted WORD...: prints the words as one line, each quoted for the shell when needed.
quoted() {
  local word line="" quote="'\\''"
  for word in "$@"; do
    if [[ ! "$word" =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
      word="'${word//\'/$quote}'"
    fi
    line+="${line:+ }${word}"
  done
  printf '%s\n' "$line"
}

failed() {  # failed STATUS COMMAND...
  local status=$1
  shift
  die "this command failed (exit ${status}): $(quoted "$@") -- fix the cause and run ./deploy.sh again: it skips what already exists."
}

# probe COMMAND...: a read that succeeds when the thing exists. A dry run prints it and
# answers "missing".
probe() {
  if $DRY_RUN; then quoted "$@"; return 1; fi
  "$@" >/dev/null 2>&1
}

# query COMMAND...: a read whose output lands in OUT. A dry run prints it and answers "".
# (A global, not $(query ...): in a command substitution a failed read would stop only the
# subshell, not the deploy.)
query() {
  OUT=""
  if $DRY_RUN; then quoted "$@"; return 0; fi
  OUT="$("$@")" || failed $? "$@"
}

# change COMMAND...: a call that changes something. A dry run only prints it.
change() {
  if $DRY_RUN; then quoted "$@"; return 0; fi
  printf '+ %s\n' "$(quoted "$@")" >&2
  "$@" || failed $? "$@"
}

# change_with_retry COMMAND...: an IAM or alert change that may meet a service account
# or metric created seconds ago and not visible everywhere yet.
change_with_retry() {
  local attempt status line
  line="$(quoted "$@")"
  if $DRY_RUN; then printf '%s\n' "$line"; return 0; fi
  for attempt in 1 2 3 4; do
    printf '+ %s\n' "$line" >&2
    status=0
    "$@" || status=$?
    if (( status == 0 )); then return 0; fi
    if (( attempt == 4 )); then break; fi
    say "retrying in ${RETRY_DELAY} s (new service accounts and metrics take a few seconds to appear)"
    sleep "$RETRY_DELAY"
  done
  failed "$status" "$@"
}

has_line() {  # has_line LINE TEXT
  [[ $'\n'"$2"$'\n' == *$'\n'"$1"$'\n'* ]]
}

# --- Preflight: checks only, before anything changes ---

ENABLED_APIS=""

preflight() {  # preflight full|light
  if ! $DRY_RUN && ! command -v gcloud >/dev/null 2>&1; then
    die "gcloud is not installed or not on PATH: install the Google Cloud CLI ${MIN_GCLOUD_VERSION} or newer (https://cloud.google.com/sdk/docs/install)."
  fi
  local version
  if $DRY_RUN; then
    query gcloud version '--format=value("Google Cloud SDK")'
  else
    version="$(gcloud version '--format=value("Google Cloud SDK")' 2>/dev/null)" \
      || die "gcloud does not run (gcloud version failed): reinstall the Google Cloud CLI ${MIN_GCLOUD_VERSION} or newer."
    [[ "$version" =~ ^([0-9]+)\.[0-9]+\.[0-9]+ ]] \
      || die "cannot tell gcloud's version (got '${version}'): install the Google Cloud CLI ${MIN_GCLOUD_VERSION} or newer."
    (( BASH_REMATCH[1] >= ${MIN_GCLOUD_VERSION%%.*} )) \
      || die "gcloud ${version} is too old: ${MIN_GCLOUD_REASON} ${MIN_GCLOUD_VERSION} or newer; ${GCLOUD_UPDATE_HINT}."
  fi

  if $DRY_RUN; then
    query gcloud projects describe "$PROJECT" '--format=value(projectId)'
  elif ! gcloud projects describe "$PROJECT" '--format=value(projectId)' >/dev/null 2>&1; then
    die "project ${PROJECT} cannot be reached: check the project id, that you are logged in (gcloud auth login) and may read it."
  fi
  [[ "$1" == full ]] || return 0

  if $DRY_RUN; then
    query gcloud services list --enabled "--project=${PROJECT}" '--format=value(config.name)'
    # A dry run assumes what the preflight checks: the secret exists, so its API is on.
    # With setup in the plan nothing else exists yet; without it, setup was done.
    if [[ " ${COMMANDS[*]} " == *" setup "* ]]; then
      ENABLED_APIS=secretmanager.googleapis.com
    else
      ENABLED_APIS="$(printf '%s\n' "${REQUIRED_APIS[@]}")"
    fi
  else
    ENABLED_APIS="$(gcloud services list --enabled "--project=${PROJECT}" '--format=value(config.name)' 2>/dev/null)" \
      || die "cannot list the enabled APIs of project ${PROJECT}: you need serviceusage.services.list there (e.g. roles/serviceusage.serviceUsageViewer)."
  fi
  has_line secretmanager.googleapis.com "$ENABLED_APIS" \
    || die "secretmanager.googleapis.com is not enabled in project ${PROJECT}, so secret ${SECRET} cannot exist: enable it and create the secret (docs/deploy.md, \"Before the first run\")."

  if $DRY_RUN; then
    query gcloud secrets describe "$SECRET" "--project=${PROJECT}" '--format=value(name)'
  elif ! gcloud secrets describe "$SECRET" "--project=${PROJECT}" '--format=value(name)' >/dev/null 2>&1; then
    die "secret ${SECRET} does not exist in project ${PROJECT} (or you may not see it): create it with the central site's Edge secret (docs/deploy.md, \"Before the first run\")."
  fi

  if [[ " ${COMMANDS[*]} " != *" setup "* ]]; then
    local api missing=()
    for api in "${REQUIRED_APIS[@]}"; do
      has_line "$api" "$ENABLED_APIS" || missing+=("$api")
    done
    if (( ${#missing[@]} > 0 )); then
      die "not enabled in project ${PROJECT}: ${missing[*]} -- run ./deploy.sh setup first."
    fi
  fi
}

# --- setup ---

ensure_apis() {
  local api missing=()
  for api in "${REQUIRED_APIS[@]}"; do
    has_line "$api" "$ENABLED_APIS" || missing+=("$api")
  done
  if (( ${#missing[@]} == 0 )); then
    say "APIs: all enabled"
    return 0
  fi
  change gcloud services enable "${missing[@]}" "--project=${PROJECT}"
}

ensure_repository() {
  if probe gcloud artifacts repositories describe "$AR_REPO" "--project=${PROJECT}" "--location=${REGION}" '--format=value(name)'; then
    say "exists: Artifact Registry repository ${AR_REPO}"
    return 0
  fi
  change gcloud artifacts repositories create "$AR_REPO" "--project=${PROJECT}" "--location=${REGION}" \
    --repository-format=docker '--description=Airflow Edge worker images'
}

ensure_service_account() {
  if probe gcloud iam service-accounts describe "$SA_EMAIL" "--project=${PROJECT}" '--format=value(email)'; then
    say "exists: service account ${SA_EMAIL}"
    return 0
  fi
  change gcloud iam service-accounts create "$SA_ID" "--project=${PROJECT}" \
    "--display-name=Airflow Edge worker of team ${TEAM}"
}

# ensure_roles KIND RESOURCE ROLE...: grant the runtime service account each ROLE on
# RESOURCE (a project, a secret or a bucket) that it does not hold yet.
ensure_roles() {
  local kind=$1 resource=$2 role policy read=()
  shift 2
  case "$kind" in
    project) read=(gcloud projects get-iam-policy "$resource") ;;
    secret) read=(gcloud secrets get-iam-policy "$resource" "--project=${PROJECT}") ;;
    bucket) read=(gcloud storage buckets get-iam-policy "$resource" "--project=${PROJECT}") ;;
  esac
  query "${read[@]}" '--flatten=bindings[].members' '--format=value(bindings.role,bindings.members)'
  policy=$OUT
  for role in "$@"; do
    if has_line "${role}"$'\t'"${MEMBER}" "$policy"; then
      say "exists: ${role} for ${SA_EMAIL} on ${kind} ${resource}"
      continue
    fi
    case "$kind" in
      project)
        change_with_retry gcloud projects add-iam-policy-binding "$resource" "--member=${MEMBER}" "--role=${role}" \
          --condition=None --format=none ;;
      secret)
        change_with_retry gcloud secrets add-iam-policy-binding "$resource" "--project=${PROJECT}" "--member=${MEMBER}" \
          "--role=${role}" --condition=None --format=none ;;
      bucket)
        change_with_retry gcloud storage buckets add-iam-policy-binding "$resource" "--project=${PROJECT}" \
          "--member=${MEMBER}" "--role=${role}" --format=none ;;
    esac
  done
}

# ensure_bucket gs://BUCKET: uniform access (IAM conditions need it), never public.
ensure_bucket() {
  local bucket=$1
  if probe gcloud storage buckets describe "$bucket" "--project=${PROJECT}" '--format=value(name)'; then
    say "exists: bucket ${bucket}"
  else
    change gcloud storage buckets create "$bucket" "--project=${PROJECT}" "--location=${REGION}" \
      --uniform-bucket-level-access --public-access-prevention
  fi
}

# ensure_dags_read_access gs://BUCKET: the runtime service account may read the team's
# objects and list the bucket's names, nothing else of the bucket. The grants that earlier
# releases of this template left (bucket-wide, or listings inside the prefix only) are removed.
ensure_dags_read_access() {
  local bucket=$1 policy role=roles/storage.objectViewer
  query gcloud storage buckets get-iam-policy "$bucket" "--project=${PROJECT}" '--flatten=bindings[].members' \
    '--format=value(bindings.role,bindings.members,bindings.condition.title)'
  policy=$OUT
  if has_line "${role}"$'\t'"${MEMBER}"$'\t'"${DAGS_READ_TITLE}" "$policy"; then
    say "exists: ${role} for ${SA_EMAIL} on ${bucket}, objects under ${DAGS_OBJECT_PREFIX} and the bucket's names only"
  else
    change_with_retry gcloud storage buckets add-iam-policy-binding "$bucket" "--project=${PROJECT}" \
      "--member=${MEMBER}" "--role=${role}" "--condition=${DAGS_READ_CONDITION}" --format=none
  fi
  if has_line "${role}"$'\t'"${MEMBER}" "$policy" || has_line "${role}"$'\t'"${MEMBER}"$'\t' "$policy"; then
    change gcloud storage buckets remove-iam-policy-binding "$bucket" "--project=${PROJECT}" \
      "--member=${MEMBER}" "--role=${role}" --condition=None --format=none
  fi
  if has_line "${role}"$'\t'"${MEMBER}"$'\t'"${OLD_DAGS_READ_TITLE}" "$policy"; then
    change gcloud storage buckets remove-iam-policy-binding "$bucket" "--project=${PROJECT}" \
      "--member=${MEMBER}" "--role=${role}" "--condition=${OLD_DAGS_READ_CONDITION}" --format=none
  fi
}

# ensure_log_write_access gs://BUCKET: the runtime service account may read and write the team's
# task log objects (LOG_OBJECT_PREFIX), nothing else of the bucket.
ensure_log_write_access() {
  local bucket=$1 role=roles/storage.objectUser
  query gcloud storage buckets get-iam-policy "$bucket" "--project=${PROJECT}" '--flatten=bindings[].members' \
    '--format=value(bindings.role,bindings.members,bindings.condition.title)'
  if has_line "${role}"$'\t'"${MEMBER}"$'\t'"${LOGS_WRITE_TITLE}" "$OUT"; then
    say "exists: ${role} for ${SA_EMAIL} on ${bucket}, objects under ${LOG_OBJECT_PREFIX} only"
    return 0
  fi
  change_with_retry gcloud storage buckets add-iam-policy-binding "$bucket" "--project=${PROJECT}" \
    "--member=${MEMBER}" "--role=${role}" "--condition=${LOGS_WRITE_CONDITION}" --format=none
}

ensure_alert() {
  if probe gcloud logging metrics describe "$METRIC" "--project=${PROJECT}" '--format=value(name)'; then
    say "exists: log-based metric ${METRIC}"
  else
    change gcloud logging metrics create "$METRIC" "--project=${PROJECT}" \
      "--description=Error lines of the Airflow Edge worker ${RESOURCE}: 403, version mismatch, crash" \
      "--log-filter=${ERROR_LOG_FILTER}"
  fi
  query gcloud monitoring policies list "--project=${PROJECT}" "--filter=displayName=\"${POLICY_NAME}\"" '--format=value(name)'
  if [[ -n "$OUT" ]]; then
    say "exists: alert policy \"${POLICY_NAME}\""
    return 0
  fi
  change_with_retry gcloud monitoring policies create "--project=${PROJECT}" "--display-name=${POLICY_NAME}" \
    --combiner=OR "--condition-display-name=${RESOURCE} logged an error line" \
    "--condition-filter=metric.type=\"logging.googleapis.com/user/${METRIC}\"" \
    '--aggregation={"alignmentPeriod": "300s", "perSeriesAligner": "ALIGN_SUM"}' \
    '--if=> 0' --duration=0s --trigger-count=1 \
    "--documentation=The Airflow Edge worker ${RESOURCE} (team ${TEAM}) logged a 403 (its secret differs from the central site's), a version mismatch or a crash. See the Troubleshooting section of the team repo's README."
}

do_setup() {
  ensure_apis
  ensure_repository
  ensure_service_account
  ensure_roles project "$PROJECT" roles/logging.logWriter roles/monitoring.metricWriter
  # Access to the one secret, not to every secret of the project.
  ensure_roles secret "$SECRET" roles/secretmanager.secretAccessor
  if [[ "$DAGS_SOURCE" == gcs-volume ]]; then
    ensure_bucket "gs://${DAGS_BUCKET}"
    ensure_dags_read_access "gs://${DAGS_BUCKET}"
  fi
  if [[ "$REMOTE_LOGGING" == true ]]; then
    if [[ "$DAGS_SOURCE" != gcs-volume || "$LOG_BUCKET" != "$DAGS_BUCKET" ]]; then
      ensure_bucket "gs://${LOG_BUCKET}"
    fi
    ensure_log_write_access "gs://${LOG_BUCKET}"
  fi
  ensure_alert
}

# --- build, dags, deploy, status, pools ---

do_build() {
  change gcloud builds submit "--project=${PROJECT}" "--region=${REGION}" --config=cloudbuild.yaml \
    "--substitutions=_TAG=${TAG},_DEPLOY=false" .
}

# The DAG files must load on the central site, which has only Airflow, edge3 and
# central_python_deps (README "DAG files both sides can load"). SKIP as for pre-commit.
check_dag_imports() {
  if [[ ",${SKIP:-}," == *",edge-template-dag-imports,"* ]]; then
    say "skipped the DAG import check (SKIP=${SKIP})."
    return 0
  fi
  command -v python3 >/dev/null || die "python3 is missing: the DAG import check (tools/check_dag_imports.py) needs python3 3.10 or newer."
  python3 tools/check_dag_imports.py >&2 \
    || die "DAG files that the central site cannot load (above): fix them; nothing was changed."
}

do_dags() {
  if [[ "$DAGS_SOURCE" != gcs-volume ]]; then
    say "dags: the DAG files are baked into the image (dags_source image): build and deploy instead."
    return 0
  fi
  # Only the team's own folder, so that --delete-unmatched-destination-objects never
  # touches other files in a shared bucket.
  # The trailing slash: without it gcloud first looks up an object named like the folder,
  # outside the prefix the DAG writer may read (docs/deploy.md, "The DAG bucket").
  change gcloud storage rsync "dags/${TEAM_MODULE}" "gs://${DAGS_BUCKET}/${DAGS_OBJECT_PREFIX}" \
    --recursive --delete-unmatched-destination-objects '--exclude=.*__pycache__.*|.*\.pyc$' "--project=${PROJECT}"
}

do_deploy() {
  local args=(
    "$RESOURCE" "--project=${PROJECT}" "--region=${REGION}" "--image=${IMAGE_REPOSITORY}:${TAG}"
    "--service-account=${SA_EMAIL}" --env-vars-file=worker.env.yaml
    "--set-secrets=EDGE_SHARED_SECRET=${SECRET}:latest" "--cpu=${CPU}" "--memory=${MEMORY}"
  )
  if [[ "$TARGET" == worker-pool ]]; then
    args+=("--instances=${INSTANCES}")
  else
    # A poller gets no requests: CPU always on and at least one instance, or it never polls. No
    # --no-allow-unauthenticated: on an existing service gcloud then sets its IAM policy, which
    # roles/run.developer may not; without it a new service admits no unauthenticated caller
    # (gcloud 578, run/deploy.py and serverless_operations.py _HandleAllowUnauthenticated).
    args+=(
      --execution-environment=gen2 --no-cpu-throttling
      "--min-instances=${MIN_INSTANCES}" "--max-instances=${MAX_INSTANCES}"
      --ingress=internal
      "--startup-probe=httpGet.path=${HEALTH_PATH},initialDelaySeconds=0,periodSeconds=5,timeoutSeconds=3,failureThreshold=24"
      "--liveness-probe=httpGet.path=${HEALTH_PATH},periodSeconds=30,timeoutSeconds=5,failureThreshold=3"
    )
  fi
  # Task logs on a size-limited in-memory volume (the filesystem is memory either way; this
  # bounds it): the entrypoint keeps them below the limit (worker.env.yaml, EDGE_LOG_KEEP_MIB).
  args+=(
    "--add-volume=name=logs,type=in-memory,size-limit=${LOG_VOLUME_MIB}Mi"
    "--add-volume-mount=volume=logs,mount-path=${LOG_FOLDER}"
  )
  if [[ "$DAGS_SOURCE" == gcs-volume ]]; then
    args+=(
      "--add-volume=name=dags,type=cloud-storage,bucket=${DAGS_BUCKET},readonly=true,mount-options=only-dir=${DAGS_OBJECT_PREFIX%/};metadata-cache-ttl-secs=${DAGS_METADATA_CACHE_TTL}"
      "--add-volume-mount=volume=dags,mount-path=${DAGS_MOUNT_PATH}"
    )
  fi
  case "$NETWORK_MODE" in
    direct-vpc) args+=("--network=${VPC_NETWORK}" "--subnet=${VPC_SUBNET}" "--vpc-egress=${VPC_EGRESS}") ;;
    vpc-connector) args+=("--vpc-connector=${VPC_CONNECTOR}" "--vpc-egress=${VPC_EGRESS}") ;;
  esac
  args+=("--labels=${LABELS}")
  if [[ "$TARGET" == worker-pool ]]; then
    change gcloud run worker-pools deploy "${args[@]}"
  else
    change gcloud run deploy "${args[@]}"
  fi
}

do_status() {
  local describe=(gcloud run worker-pools describe "$RESOURCE" "--project=${PROJECT}" "--region=${REGION}")
  local logs=(gcloud run worker-pools logs read "$RESOURCE" "--project=${PROJECT}" "--region=${REGION}" --limit=50)
  if [[ "$TARGET" == service ]]; then
    describe=(gcloud run services describe "$RESOURCE" "--project=${PROJECT}" "--region=${REGION}")
    logs=(gcloud run services logs read "$RESOURCE" "--project=${PROJECT}" "--region=${REGION}" --limit=50)
  fi
  if $DRY_RUN; then
    quoted "${describe[@]}"
    return 0
  fi
  "${describe[@]}" || die "${RESOURCE} is not deployed in ${PROJECT}/${REGION} (or you may not see it): run ./deploy.sh deploy."
  say "recent logs: $(quoted "${logs[@]}")"
}

do_pools() {
  printf '# Create the pool %s on the central site, next to a copy of pools.json:\n' "$POOL_NAME"
  quoted airflow pools import pools.json
  if [[ "$COMPOSER_POOLS_RUN_WORKS" != "true" ]]; then
    printf '# Cloud Composer: gcloud refuses "composer environments run ... pools" for Airflow 3.3.0 and newer\n'
    printf '# (this is %s): create the pool in the Airflow UI (Admin > Pools) with the name and slots of pools.json.\n' \
      "$AIRFLOW_VERSION"
    return
  fi
  local env_name="${COMPOSER_ENVIRONMENT:-ENVIRONMENT}" location="${COMPOSER_LOCATION:-LOCATION}"
  local project="${COMPOSER_PROJECT:-$PROJECT}"
  printf '# Or, on Cloud Composer (whether it can run the EdgeExecutor is not confirmed: see platform/README.md;\n'
  printf '# set COMPOSER_ENVIRONMENT, COMPOSER_LOCATION and COMPOSER_PROJECT to fill these in):\n'
  quoted gcloud composer environments storage data import "--project=${project}" "--environment=${env_name}" \
    "--location=${location}" --source=pools.json
  quoted gcloud composer environments run "$env_name" "--project=${project}" "--location=${location}" \
    pools import -- /home/airflow/gcs/data/pools.json
}

# The central site's scaler (edge_site.py scale, the platform's kit) runs as CENTRAL_SA. Google's "Manual
# scaling for worker pools" asks for roles/run.developer and roles/iam.serviceAccountUser on the
# pool's service identity to change the count: both on this worker pool and this runtime account
# only, never the project. run.developer on the pool can also change its image and command, and
# delete it (docs/deploy.md, "The scaler's access"). Setting the pool's IAM policy needs
# run.workerpools.setIamPolicy, which roles/run.developer does not have: roles/run.admin does.
do_scaler() {
  local member="serviceAccount:${CENTRAL_SA}"
  if [[ "$AUTOSCALING" != true ]]; then
    say "scaler: autoscaling is off (answer autoscaling=true with copier update); nothing to do."
    return 0
  fi
  query gcloud run worker-pools get-iam-policy "$RESOURCE" "--project=${PROJECT}" "--region=${REGION}" \
    '--flatten=bindings[].members' '--format=value(bindings.role,bindings.members)'
  if has_line "roles/run.developer"$'\t'"${member}" "$OUT"; then
    say "exists: roles/run.developer for ${CENTRAL_SA} on worker pool ${RESOURCE}"
  else
    change_with_retry gcloud run worker-pools add-iam-policy-binding "$RESOURCE" "--project=${PROJECT}" \
      "--region=${REGION}" "--member=${member}" --role=roles/run.developer --condition=None --format=none
  fi
  query gcloud iam service-accounts get-iam-policy "$SA_EMAIL" "--project=${PROJECT}" \
    '--flatten=bindings[].members' '--format=value(bindings.role,bindings.members)'
  if has_line "roles/iam.serviceAccountUser"$'\t'"${member}" "$OUT"; then
    say "exists: roles/iam.serviceAccountUser for ${CENTRAL_SA} on ${SA_EMAIL}"
  else
    change_with_retry gcloud iam service-accounts add-iam-policy-binding "$SA_EMAIL" "--project=${PROJECT}" \
      "--member=${member}" --role=roles/iam.serviceAccountUser --condition=None --format=none
  fi
}

resolve_tag() {
  if [[ -z "$TAG" ]]; then
    TAG="$(git rev-parse --short=7 HEAD 2>/dev/null)" \
      || die "cannot choose an image tag: this folder has no git commit (git init && git add -A && git commit), or pass --tag TAG."
    if [[ -n "$(git status --porcelain 2>/dev/null)" ]]; then
      TAG+=-dirty
    fi
  fi
  [[ "$TAG" =~ $IMAGE_TAG_PATTERN ]] \
    || die "--tag ${TAG} is not a Docker tag: 1 to 128 letters, digits, '_', '.', '-', not starting with '.' or '-'."
}

# --- Main ---

DRY_RUN=false
TAG=""
COMMANDS=()
while (( $# > 0 )); do
  case "$1" in
    --dry-run) DRY_RUN=true ;;
    --tag) (( $# > 1 )) || { usage >&2; exit 2; }; TAG=$2; shift ;;
    --tag=*) TAG=${1#--tag=} ;;
    -h | --help) usage; exit 0 ;;
    setup | build | dags | deploy | scaler | status | pools) COMMANDS+=("$1") ;;
    all)
      COMMANDS+=(setup build dags deploy)
      if [[ "$AUTOSCALING" == true ]]; then COMMANDS+=(scaler); fi
      ;;
    *) printf 'deploy.sh: unknown argument: %s\n\n' "$1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if (( ${#COMMANDS[@]} == 0 )); then
  usage >&2
  exit 2
fi

cd "$(dirname "${BASH_SOURCE[0]}")"
export CLOUDSDK_CORE_DISABLE_PROMPTS=1

wants() { [[ " ${COMMANDS[*]} " == *" $1 "* ]]; }

if wants build || wants deploy; then
  resolve_tag
fi
if wants dags && [[ "$DAGS_SOURCE" == gcs-volume && ! -d "dags/${TEAM_MODULE}" ]]; then
  die "dags/${TEAM_MODULE} is missing: the team's DAG files go there."
fi
# Before anything changes: the DAG files that dags syncs, or that build bakes into the image.
if { wants dags && [[ "$DAGS_SOURCE" == gcs-volume ]]; } || { wants build && [[ "$DAGS_SOURCE" == image ]]; }; then
  check_dag_imports
fi
if wants setup || wants build || wants dags || wants deploy; then
  preflight full
elif wants status || wants scaler; then
  preflight light
fi

if wants setup; then do_setup; fi
if wants build; then do_build; fi
if wants dags; then do_dags; fi
if wants deploy; then do_deploy; fi
if wants scaler; then do_scaler; fi
if wants status; then do_status; fi
if wants pools; then do_pools; fi
if ! $DRY_RUN && wants deploy; then
  say "deployed ${IMAGE_REPOSITORY}:${TAG} to ${TARGET} ${RESOURCE}; the central site needs the pool ${POOL_NAME} (./deploy.sh pools)."
fi
