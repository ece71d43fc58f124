"""deploy.sh: a team sets up, builds and deploys its Edge worker with one script.

Every test runs the rendered deploy.sh against a recording stand-in for gcloud
(tests/gcloud_stub): it writes each call's argv down and answers from a small world
(a scenario) that remembers what earlier calls created.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from gcloud_stub import INTERRUPTED, GcloudStub, Result, Team, path_without_gcloud, rendered_team, scenario
from gcloud_stub.calls import is_creating, is_mutating
from support.matrix import MATRIX
from support.templates import run_tool, tool

TAG = "abc1234"
SA = "team-c-edge@my-gcp-project.iam.gserviceaccount.com"
READ_POLICY = ["--flatten=bindings[].members", "--format=value(bindings.role,bindings.members)"]
READ_BUCKET_POLICY = [
    "--flatten=bindings[].members",
    "--format=value(bindings.role,bindings.members,bindings.condition.title)",
]


def dags_read_condition(team: str, bucket: str, prefix: str) -> str:
    """The IAM condition on the runtime account's bucket read: the team's objects, the bucket's names."""
    return (
        f'--condition=^:^expression=resource.name.startsWith("projects/_/buckets/{bucket}/objects/{prefix}")'
        f' || resource.type == "storage.googleapis.com/Bucket":title={team} DAGs read, bucket listed'
    )


def old_dags_read_condition(team: str, bucket: str, prefix: str) -> str:
    """What releases before 2026-12 granted: listings inside the prefix only (it refuses the mount)."""
    return (
        f'--condition=^:^expression=resource.name.startsWith("projects/_/buckets/{bucket}/objects/{prefix}")'
        f' || api.getAttribute("storage.googleapis.com/objectListPrefix", "").startsWith("{prefix}")'
        f":title={team} DAGs read"
    )


def logs_write_condition(team: str, bucket: str, prefix: str) -> str:
    """The IAM condition on the runtime account's task log access: the team's log objects only."""
    return (
        f'--condition=^:^expression=resource.name.startsWith("projects/_/buckets/{bucket}/objects/{prefix}")'
        f":title={team} task logs write"
    )


# Every deploy puts the task logs ([logging] base_log_folder) on a size-limited in-memory volume.
LOG_VOLUME = [
    "--add-volume=name=logs,type=in-memory,size-limit=128Mi",
    "--add-volume-mount=volume=logs,mount-path=/opt/airflow/logs",
]

# What `./deploy.sh --tag abc1234 all` runs for the default answers (team-c, a worker pool,
# no VPC, DAGs from a bucket) in a project where only the Edge secret exists.
DEFAULTS_ALL = [
    ["gcloud", "version", '--format=value("Google Cloud SDK")'],
    ["gcloud", "projects", "describe", "my-gcp-project", "--format=value(projectId)"],
    ["gcloud", "services", "list", "--enabled", "--project=my-gcp-project", "--format=value(config.name)"],
    ["gcloud", "secrets", "describe", "airflow-edge-secret", "--project=my-gcp-project", "--format=value(name)"],
    # setup
    ["gcloud", "services", "enable", "artifactregistry.googleapis.com", "cloudbuild.googleapis.com",
     "iam.googleapis.com", "logging.googleapis.com", "monitoring.googleapis.com", "run.googleapis.com",
     "storage.googleapis.com", "--project=my-gcp-project"],
    ["gcloud", "artifacts", "repositories", "describe", "airflow-edge", "--project=my-gcp-project",
     "--location=europe-west1", "--format=value(name)"],
    ["gcloud", "artifacts", "repositories", "create", "airflow-edge", "--project=my-gcp-project",
     "--location=europe-west1", "--repository-format=docker", "--description=Airflow Edge worker images"],
    ["gcloud", "iam", "service-accounts", "describe", SA, "--project=my-gcp-project", "--format=value(email)"],
    ["gcloud", "iam", "service-accounts", "create", "team-c-edge", "--project=my-gcp-project",
     "--display-name=Airflow Edge worker of team team-c"],
    ["gcloud", "projects", "get-iam-policy", "my-gcp-project", *READ_POLICY],
    ["gcloud", "projects", "add-iam-policy-binding", "my-gcp-project", f"--member=serviceAccount:{SA}",
     "--role=roles/logging.logWriter", "--condition=None", "--format=none"],
    ["gcloud", "projects", "add-iam-policy-binding", "my-gcp-project", f"--member=serviceAccount:{SA}",
     "--role=roles/monitoring.metricWriter", "--condition=None", "--format=none"],
    ["gcloud", "secrets", "get-iam-policy", "airflow-edge-secret", "--project=my-gcp-project", *READ_POLICY],
    ["gcloud", "secrets", "add-iam-policy-binding", "airflow-edge-secret", "--project=my-gcp-project",
     f"--member=serviceAccount:{SA}", "--role=roles/secretmanager.secretAccessor", "--condition=None",
     "--format=none"],
    ["gcloud", "storage", "buckets", "describe", "gs://my-gcp-project-airflow-dags", "--project=my-gcp-project",
     "--format=value(name)"],
    ["gcloud", "storage", "buckets", "create", "gs://my-gcp-project-airflow-dags", "--project=my-gcp-project",
     "--location=europe-west1", "--uniform-bucket-level-access", "--public-access-prevention"],
    ["gcloud", "storage", "buckets", "get-iam-policy", "gs://my-gcp-project-airflow-dags",
     "--project=my-gcp-project", *READ_BUCKET_POLICY],
    ["gcloud", "storage", "buckets", "add-iam-policy-binding", "gs://my-gcp-project-airflow-dags",
     "--project=my-gcp-project", f"--member=serviceAccount:{SA}", "--role=roles/storage.objectViewer",
     dags_read_condition("team-c", "my-gcp-project-airflow-dags", "dags/team_c/"), "--format=none"],
    ["gcloud", "logging", "metrics", "describe", "team-c-edge-worker-errors", "--project=my-gcp-project",
     "--format=value(name)"],
    ["gcloud", "logging", "metrics", "create", "team-c-edge-worker-errors", "--project=my-gcp-project",
     "--description=Error lines of the Airflow Edge worker team-c-edge-worker: 403, version mismatch, crash",
     '--log-filter=resource.type="cloud_run_worker_pool" AND resource.labels.worker_pool_name="team-c-edge-worker"'
     ' AND (textPayload=~"(?i)403.*forbidden|version mismatch|exited on its own|edge api not reachable'
     '|edge api cannot be reached" OR textPayload=~"Container called exit[(][1-9]")'],
    ["gcloud", "monitoring", "policies", "list", "--project=my-gcp-project",
     '--filter=displayName="team-c-edge-worker errors"', "--format=value(name)"],
    ["gcloud", "monitoring", "policies", "create", "--project=my-gcp-project",
     "--display-name=team-c-edge-worker errors", "--combiner=OR",
     "--condition-display-name=team-c-edge-worker logged an error line",
     '--condition-filter=metric.type="logging.googleapis.com/user/team-c-edge-worker-errors"',
     '--aggregation={"alignmentPeriod": "300s", "perSeriesAligner": "ALIGN_SUM"}',
     "--if=> 0", "--duration=0s", "--trigger-count=1",
     "--documentation=The Airflow Edge worker team-c-edge-worker (team team-c) logged a 403 (its secret differs"
     " from the central site's), a version mismatch or a crash. See the Troubleshooting section of the team"
     " repo's README."],
    # build
    ["gcloud", "builds", "submit", "--project=my-gcp-project", "--region=europe-west1", "--config=cloudbuild.yaml",
     "--substitutions=_TAG=abc1234,_DEPLOY=false", "."],
    # dags
    ["gcloud", "storage", "rsync", "dags/team_c", "gs://my-gcp-project-airflow-dags/dags/team_c/", "--recursive",
     "--delete-unmatched-destination-objects", r"--exclude=.*__pycache__.*|.*\.pyc$", "--project=my-gcp-project"],
    # deploy
    ["gcloud", "run", "worker-pools", "deploy", "team-c-edge-worker", "--project=my-gcp-project",
     "--region=europe-west1",
     "--image=europe-west1-docker.pkg.dev/my-gcp-project/airflow-edge/team-c-edge-worker:abc1234",
     f"--service-account={SA}", "--env-vars-file=worker.env.yaml",
     "--set-secrets=EDGE_SHARED_SECRET=airflow-edge-secret:latest", "--cpu=1", "--memory=2Gi", "--instances=1",
     *LOG_VOLUME,
     "--add-volume=name=dags,type=cloud-storage,bucket=my-gcp-project-airflow-dags,readonly=true,"
     "mount-options=only-dir=dags/team_c;metadata-cache-ttl-secs=10",
     "--add-volume-mount=volume=dags,mount-path=/opt/airflow/dags-bucket/team_c",
     "--labels=app=airflow-edge-worker,team=team-c,managed-by=deploy-sh"],
]  # fmt: skip

# What every deploy passes for the worker's settings and secret, and a service's probes.
WORKER_ENV = ["--env-vars-file=worker.env.yaml", "--set-secrets=EDGE_SHARED_SECRET=airflow-edge-secret:latest"]
SERVICE_PROBES = [
    "--startup-probe=httpGet.path=/health,initialDelaySeconds=0,periodSeconds=5,timeoutSeconds=3,failureThreshold=24",
    "--liveness-probe=httpGet.path=/health,periodSeconds=30,timeoutSeconds=5,failureThreshold=3",
]


def service_flags(min_instances: int, max_instances: int, memory: str = "2Gi") -> list[str]:
    """What every service deploy passes between its service account and its network (1 CPU, 2Gi)."""
    return [*WORKER_ENV, "--cpu=1", f"--memory={memory}", "--execution-environment=gen2", "--no-cpu-throttling",
            f"--min-instances={min_instances}", f"--max-instances={max_instances}", "--ingress=internal",
            *SERVICE_PROBES]


# The deploy command of each other answer set: both targets, every network_mode.
DEPLOY_COMMANDS = {
    "af3-pool-directvpc-gcs": [
        "gcloud", "run", "worker-pools", "deploy", "analytics-edge-worker", "--project=acme-data-prod",
        "--region=us-central1",
        "--image=us-central1-docker.pkg.dev/acme-data-prod/airflow-edge/analytics-edge-worker:abc1234",
        "--service-account=analytics-edge@acme-data-prod.iam.gserviceaccount.com",
        "--env-vars-file=worker.env.yaml", "--set-secrets=EDGE_SHARED_SECRET=airflow-edge-secret:latest",
        "--cpu=1", "--memory=2Gi", "--instances=3",
        *LOG_VOLUME,
        "--add-volume=name=dags,type=cloud-storage,bucket=acme-dags,readonly=true,"
        "mount-options=only-dir=teams/analytics/dags/analytics;metadata-cache-ttl-secs=10",
        "--add-volume-mount=volume=dags,mount-path=/opt/airflow/dags-bucket/analytics",
        "--network=shared-vpc", "--subnet=edge-subnet", "--vpc-egress=all-traffic",
        "--labels=app=airflow-edge-worker,team=analytics,managed-by=deploy-sh",
    ],
    "af2-service-none-gcs": [
        "gcloud", "run", "deploy", "ml-platform-edge-worker", "--project=my-gcp-project", "--region=europe-west1",
        "--image=europe-west1-docker.pkg.dev/my-gcp-project/airflow-edge/ml-platform-edge-worker:abc1234",
        "--service-account=ml-platform-edge@my-gcp-project.iam.gserviceaccount.com",
        *service_flags(1, 1),
        *LOG_VOLUME,
        "--add-volume=name=dags,type=cloud-storage,bucket=my-gcp-project-airflow-dags,readonly=true,"
        "mount-options=only-dir=dags/ml_platform;metadata-cache-ttl-secs=10",
        "--add-volume-mount=volume=dags,mount-path=/opt/airflow/dags-bucket/ml_platform",
        "--labels=app=airflow-edge-worker,team=ml-platform,managed-by=deploy-sh",
    ],
    "af2-service-directvpc-image": [
        "gcloud", "run", "deploy", "team-b-edge-worker", "--project=my-gcp-project", "--region=europe-west1",
        "--image=europe-west1-docker.pkg.dev/my-gcp-project/airflow-edge/team-b-edge-worker:abc1234",
        "--service-account=team-b-edge@my-gcp-project.iam.gserviceaccount.com",
        *service_flags(2, 4),
        *LOG_VOLUME,
        "--network=default", "--subnet=default", "--vpc-egress=private-ranges-only",
        "--labels=app=airflow-edge-worker,team=team-b,managed-by=deploy-sh",
    ],
    "af3-service-connector-image": [
        "gcloud", "run", "deploy", "team-c-edge-worker", "--project=my-gcp-project", "--region=europe-west1",
        "--image=europe-west1-docker.pkg.dev/my-gcp-project/airflow-edge/team-c-edge-worker:abc1234",
        f"--service-account={SA}",
        *service_flags(1, 3),
        *LOG_VOLUME,
        "--vpc-connector=edge-connector", "--vpc-egress=private-ranges-only",
        "--labels=app=airflow-edge-worker,team=team-c,managed-by=deploy-sh",
    ],
}  # fmt: skip

SERVICE_CASES = ["af2-service-none-gcs", "af2-service-directvpc-image", "af3-service-connector-image"]
POOL_CASES = ["defaults", "af3-pool-directvpc-gcs"]


# --- The expected calls, built from a team's names (used for the non-default answer sets) ---


def preflight_calls(t: Team) -> list[list[str]]:
    return [
        ["gcloud", "version", '--format=value("Google Cloud SDK")'],
        ["gcloud", "projects", "describe", t.project, "--format=value(projectId)"],
        ["gcloud", "services", "list", "--enabled", f"--project={t.project}", "--format=value(config.name)"],
        ["gcloud", "secrets", "describe", t.secret, f"--project={t.project}", "--format=value(name)"],
    ]


def setup_calls(t: Team) -> list[list[str]]:
    p, member = f"--project={t.project}", f"--member=serviceAccount:{t.sa_email}"
    gcs = t.dags_source == "gcs-volume"
    remote_logs = t.answers.get("remote_logging", False)
    apis = ["artifactregistry", "cloudbuild", "iam", "logging", "monitoring", "run"]
    apis += ["storage"] if gcs or remote_logs else []
    log_resource = (
        f'resource.type="cloud_run_worker_pool" AND resource.labels.worker_pool_name="{t.resource}"'
        if t.target == "worker-pool"
        else f'resource.type="cloud_run_revision" AND resource.labels.service_name="{t.resource}"'
    )
    bucket = f"gs://{t.bucket}"
    calls = [
        ["gcloud", "services", "enable", *(f"{api}.googleapis.com" for api in apis), p],
        ["gcloud", "artifacts", "repositories", "describe", "airflow-edge", p, f"--location={t.region}",
         "--format=value(name)"],
        ["gcloud", "artifacts", "repositories", "create", "airflow-edge", p, f"--location={t.region}",
         "--repository-format=docker", "--description=Airflow Edge worker images"],
        ["gcloud", "iam", "service-accounts", "describe", t.sa_email, p, "--format=value(email)"],
        ["gcloud", "iam", "service-accounts", "create", f"{t.team}-edge", p,
         f"--display-name=Airflow Edge worker of team {t.team}"],
        ["gcloud", "projects", "get-iam-policy", t.project, *READ_POLICY],
        ["gcloud", "projects", "add-iam-policy-binding", t.project, member, "--role=roles/logging.logWriter",
         "--condition=None", "--format=none"],
        ["gcloud", "projects", "add-iam-policy-binding", t.project, member, "--role=roles/monitoring.metricWriter",
         "--condition=None", "--format=none"],
        ["gcloud", "secrets", "get-iam-policy", t.secret, p, *READ_POLICY],
        ["gcloud", "secrets", "add-iam-policy-binding", t.secret, p, member,
         "--role=roles/secretmanager.secretAccessor", "--condition=None", "--format=none"],
    ]  # fmt: skip
    if gcs:
        calls += [
            ["gcloud", "storage", "buckets", "describe", bucket, p, "--format=value(name)"],
            ["gcloud", "storage", "buckets", "create", bucket, p, f"--location={t.region}",
             "--uniform-bucket-level-access", "--public-access-prevention"],
            ["gcloud", "storage", "buckets", "get-iam-policy", bucket, p, *READ_BUCKET_POLICY],
            ["gcloud", "storage", "buckets", "add-iam-policy-binding", bucket, p, member,
             "--role=roles/storage.objectViewer",
             dags_read_condition(t.team, t.bucket, f"{t.answers['dags_bucket_path']}/{t.team_module}/"),
             "--format=none"],
        ]  # fmt: skip
    if remote_logs:
        log_bucket = f"gs://{t.log_bucket}"
        calls += [
            ["gcloud", "storage", "buckets", "describe", log_bucket, p, "--format=value(name)"],
            ["gcloud", "storage", "buckets", "create", log_bucket, p, f"--location={t.region}",
             "--uniform-bucket-level-access", "--public-access-prevention"],
            ["gcloud", "storage", "buckets", "get-iam-policy", log_bucket, p, *READ_BUCKET_POLICY],
            ["gcloud", "storage", "buckets", "add-iam-policy-binding", log_bucket, p, member,
             "--role=roles/storage.objectUser", logs_write_condition(t.team, t.log_bucket, t.log_prefix),
             "--format=none"],
        ]  # fmt: skip
    calls += [
        ["gcloud", "logging", "metrics", "describe", f"{t.resource}-errors", p, "--format=value(name)"],
        ["gcloud", "logging", "metrics", "create", f"{t.resource}-errors", p,
         f"--description=Error lines of the Airflow Edge worker {t.resource}: 403, version mismatch, crash",
         f'--log-filter={log_resource} AND (textPayload=~"(?i)403.*forbidden|version mismatch|exited on its own'
         '|edge api not reachable|edge api cannot be reached" OR textPayload=~"Container called exit[(][1-9]")'],
        ["gcloud", "monitoring", "policies", "list", p, f'--filter=displayName="{t.resource} errors"',
         "--format=value(name)"],
        ["gcloud", "monitoring", "policies", "create", p, f"--display-name={t.resource} errors", "--combiner=OR",
         f"--condition-display-name={t.resource} logged an error line",
         f'--condition-filter=metric.type="logging.googleapis.com/user/{t.resource}-errors"',
         '--aggregation={"alignmentPeriod": "300s", "perSeriesAligner": "ALIGN_SUM"}',
         "--if=> 0", "--duration=0s", "--trigger-count=1",
         f"--documentation=The Airflow Edge worker {t.resource} (team {t.team}) logged a 403 (its secret differs"
         " from the central site's), a version mismatch or a crash. See the Troubleshooting section of the team"
         " repo's README."],
    ]  # fmt: skip
    return calls


def build_and_dags_calls(t: Team) -> list[list[str]]:
    p = f"--project={t.project}"
    calls = [["gcloud", "builds", "submit", p, f"--region={t.region}", "--config=cloudbuild.yaml",
              f"--substitutions=_TAG={TAG},_DEPLOY=false", "."]]  # fmt: skip
    if t.dags_source == "gcs-volume":
        path = t.answers["dags_bucket_path"]
        calls.append(
            ["gcloud", "storage", "rsync", f"dags/{t.team_module}", f"gs://{t.bucket}/{path}/{t.team_module}/",
             "--recursive", "--delete-unmatched-destination-objects", r"--exclude=.*__pycache__.*|.*\.pyc$", p]
        )  # fmt: skip
    return calls


def expected_all(t: Team, case: str) -> list[list[str]]:
    return preflight_calls(t) + setup_calls(t) + build_and_dags_calls(t) + [DEPLOY_COMMANDS[case]]


# --- A new project: the exact plan ---


@dataclass(frozen=True)
class FirstRun:
    result: Result
    world: dict[str, Any]

    @property
    def resources(self) -> set[str]:
        return set(self.world["resources"])


@pytest.fixture(scope="session")
def first_run(tmp_path_factory: pytest.TempPathFactory, team_of: Callable[[str], Team]) -> Callable[[str], FirstRun]:
    """first_run(case): `./deploy.sh --tag abc1234 all` in a new project, and the world it leaves (once a case)."""
    cache: dict[str, FirstRun] = {}

    def _run(case: str) -> FirstRun:
        if case not in cache:
            stub = GcloudStub.create(tmp_path_factory.mktemp("first-run"), team_of(case))
            stub.load("nothing-exists")
            result = stub.run("--tag", TAG, "all")
            assert result.returncode == 0, result.stderr
            cache[case] = FirstRun(result, stub.world())
        return cache[case]

    return _run


def test_all_in_a_new_project_runs_exactly_the_planned_gcloud_calls(first_run: Callable[[str], FirstRun]) -> None:
    assert first_run("defaults").result.calls == DEFAULTS_ALL


def test_the_helpers_build_the_same_plan_as_the_literal_one(team_of: Callable[[str], Team]) -> None:
    # The expectations of the other answer sets are built by preflight_calls, setup_calls and
    # build_and_dags_calls: for the defaults they must say exactly what the literal plan says.
    t = team_of("defaults")
    assert preflight_calls(t) + setup_calls(t) + build_and_dags_calls(t) == DEFAULTS_ALL[:-1]


@pytest.mark.parametrize("case", sorted(DEPLOY_COMMANDS))
def test_all_runs_the_deploy_of_its_target_and_network_mode(
    case: str, first_run: Callable[[str], FirstRun], team_of: Callable[[str], Team]
) -> None:
    assert first_run(case).result.calls == expected_all(team_of(case), case)


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_dry_run_prints_the_plan_a_real_run_carries_out_and_calls_nothing(
    case: str, stub_for: Callable[[str], GcloudStub], first_run: Callable[[str], FirstRun]
) -> None:
    stub = stub_for(case)
    stub.load("nothing-exists")

    plan = stub.run("--dry-run", "--tag", TAG, "all")

    assert plan.returncode == 0, plan.stderr
    assert plan.calls == []
    assert all(line.startswith("gcloud ") for line in plan.stdout.splitlines())
    assert plan.plan() == first_run(case).result.calls


def test_dry_run_needs_no_gcloud_at_all(team_of: Callable[[str], Team], tmp_path: Path) -> None:
    stub = GcloudStub.create(tmp_path, team_of("defaults"))

    result = stub.run("--dry-run", "--tag", TAG, "all", path=path_without_gcloud(tmp_path))

    assert result.returncode == 0, result.stderr
    assert result.plan() == DEFAULTS_ALL


# --- An elastic worker pool: it starts at its minimum; the central site's scaler may change it ---

ELASTIC = "af3-pool-elastic"
CENTRAL_SA = "airflow-central@central-prod.iam.gserviceaccount.com"
ELASTIC_DEPLOY = [
    "gcloud", "run", "worker-pools", "deploy", "team-e-edge-worker", "--project=my-gcp-project",
    "--region=europe-west1",
    "--image=europe-west1-docker.pkg.dev/my-gcp-project/airflow-edge/team-e-edge-worker:abc1234",
    "--service-account=team-e-edge@my-gcp-project.iam.gserviceaccount.com", *WORKER_ENV,
    "--cpu=1", "--memory=2Gi", "--instances=0", *LOG_VOLUME,
    "--add-volume=name=dags,type=cloud-storage,bucket=my-gcp-project-airflow-dags,readonly=true,"
    "mount-options=only-dir=dags/team_e;metadata-cache-ttl-secs=10",
    "--add-volume-mount=volume=dags,mount-path=/opt/airflow/dags-bucket/team_e",
    "--labels=app=airflow-edge-worker,team=team-e,managed-by=deploy-sh",
]  # fmt: skip
SCALER_CALLS = [
    ["gcloud", "run", "worker-pools", "get-iam-policy", "team-e-edge-worker", "--project=my-gcp-project",
     "--region=europe-west1", *READ_POLICY],
    ["gcloud", "run", "worker-pools", "add-iam-policy-binding", "team-e-edge-worker", "--project=my-gcp-project",
     "--region=europe-west1", f"--member=serviceAccount:{CENTRAL_SA}", "--role=roles/run.developer",
     "--condition=None", "--format=none"],
    ["gcloud", "iam", "service-accounts", "get-iam-policy", "team-e-edge@my-gcp-project.iam.gserviceaccount.com",
     "--project=my-gcp-project", *READ_POLICY],
    ["gcloud", "iam", "service-accounts", "add-iam-policy-binding",
     "team-e-edge@my-gcp-project.iam.gserviceaccount.com", "--project=my-gcp-project",
     f"--member=serviceAccount:{CENTRAL_SA}", "--role=roles/iam.serviceAccountUser",
     "--condition=None", "--format=none"],
]  # fmt: skip


def test_an_elastic_pool_starts_at_its_minimum_and_the_central_account_may_scale_only_it(
    first_run: Callable[[str], FirstRun], team_of: Callable[[str], Team]
) -> None:
    t = team_of(ELASTIC)
    run = first_run(ELASTIC)

    assert run.result.calls == (
        preflight_calls(t) + setup_calls(t) + build_and_dags_calls(t) + [ELASTIC_DEPLOY] + SCALER_CALLS
    )
    central = {key for key in run.resources if key.startswith("binding:") and CENTRAL_SA in key}
    assert central == {
        f"binding:worker-pool:europe-west1/team-e-edge-worker|roles/run.developer|serviceAccount:{CENTRAL_SA}",
        f"binding:service-account:team-e-edge@my-gcp-project.iam.gserviceaccount.com|roles/iam.serviceAccountUser"
        f"|serviceAccount:{CENTRAL_SA}",
    }


def test_scaler_again_only_reads(
    stub_for: Callable[[str], GcloudStub], first_run: Callable[[str], FirstRun]
) -> None:
    stub = stub_for(ELASTIC)
    stub.write_world(first_run(ELASTIC).world)

    again = stub.run("scaler")

    assert again.returncode == 0, again.stderr
    assert again.calls[2:] == [SCALER_CALLS[0], SCALER_CALLS[2]]
    assert "exists: roles/run.developer for airflow-central@central-prod" in again.stderr
    assert "exists: roles/iam.serviceAccountUser for airflow-central@central-prod" in again.stderr


def test_scaler_without_autoscaling_changes_nothing(
    stub_for: Callable[[str], GcloudStub], first_run: Callable[[str], FirstRun]
) -> None:
    fixed = stub_for("defaults")
    fixed.write_world(first_run("defaults").world)
    off = fixed.run("scaler")
    assert off.returncode == 0, off.stderr
    assert off.mutating == []
    assert "autoscaling is off" in off.stderr


# --- A second run ---


@pytest.mark.parametrize("case", POOL_CASES + SERVICE_CASES)
def test_a_second_run_creates_nothing_and_only_rolls_out_the_image(
    case: str, stub_for: Callable[[str], GcloudStub], first_run: Callable[[str], FirstRun]
) -> None:
    stub = stub_for(case)
    stub.write_world(first_run(case).world)

    second = stub.run("--tag", TAG, "all")

    assert second.returncode == 0, second.stderr
    assert second.creating == []
    assert second.mutating == build_and_dags_calls(stub.team) + [DEPLOY_COMMANDS.get(case, DEFAULTS_ALL[-1])]


@pytest.mark.parametrize("case", POOL_CASES + SERVICE_CASES)
def test_everything_exists_is_what_a_first_run_leaves_behind(
    case: str, first_run: Callable[[str], FirstRun], team_of: Callable[[str], Team]
) -> None:
    left = {key for key in first_run(case).resources if not key.startswith("dags:")}

    assert left == set(scenario("everything-exists", team_of(case), TAG)["resources"])


def test_in_a_project_where_everything_exists_all_only_reads_then_rolls_out(
    defaults_in: Callable[..., GcloudStub],
) -> None:
    stub = defaults_in("everything-exists")

    result = stub.run("--tag", TAG, "all")

    assert result.returncode == 0, result.stderr
    assert result.creating == []
    assert result.mutating == DEFAULTS_ALL[-3:]  # build, dags, deploy
    assert [argv for argv in result.calls if not is_mutating(argv)] == [
        argv for argv in DEFAULTS_ALL if not is_mutating(argv)
    ]


# --- Preflight: one clear line, a non-zero exit, nothing changed ---

PREFLIGHT_FAILURES = {
    "gcloud-too-old": (
        "all",
        "deploy.sh: ERROR: gcloud 564.0.0 is too old: Cloud Run worker pools need 565.0.0 or newer; update it "
        "with: gcloud components update (or, where gcloud came from apt or yum, upgrade the google-cloud-cli package).",
    ),
    "project-unreachable": (
        "all",
        "deploy.sh: ERROR: project my-gcp-project cannot be reached: check the project id, that you are "
        "logged in (gcloud auth login) and may read it.",
    ),
    "secret-api-disabled": (
        "all",
        "deploy.sh: ERROR: secretmanager.googleapis.com is not enabled in project my-gcp-project, so secret "
        'airflow-edge-secret cannot exist: enable it and create the secret (docs/deploy.md, "Before the first run").',
    ),
    "secret-missing": (
        "all",
        "deploy.sh: ERROR: secret airflow-edge-secret does not exist in project my-gcp-project (or you may not "
        'see it): create it with the central site\'s Edge secret (docs/deploy.md, "Before the first run").',
    ),
    "setup-not-run": (
        "deploy",
        "deploy.sh: ERROR: not enabled in project my-gcp-project: artifactregistry.googleapis.com "
        "cloudbuild.googleapis.com iam.googleapis.com logging.googleapis.com monitoring.googleapis.com "
        "run.googleapis.com storage.googleapis.com -- run ./deploy.sh setup first.",
    ),
}


@pytest.mark.parametrize("name", sorted(PREFLIGHT_FAILURES))
def test_a_failed_preflight_says_why_in_one_line_and_changes_nothing(
    name: str, stub_for: Callable[[str], GcloudStub]
) -> None:
    command, line = PREFLIGHT_FAILURES[name]
    stub = stub_for("defaults")
    before = stub.load(name)

    result = stub.run("--tag", TAG, command)

    assert result.returncode == 1
    assert result.error_lines() == [line]
    assert result.mutating == []
    assert stub.world()["resources"] == before["resources"]


@pytest.mark.parametrize(
    ("case", "version", "refused"),
    [
        ("af2-service-none-gcs", "564.0.0", None),  # too old for worker pools, not for a service
        ("af2-service-none-gcs", "497.0.0", "this service's deploy flags need 498.0.0 or newer"),
        ("defaults", "564.0.0", "Cloud Run worker pools need 565.0.0 or newer"),
    ],
)
def test_the_oldest_gcloud_accepted_follows_the_deployment_target(
    case: str, version: str, refused: str | None, stub_for: Callable[[str], GcloudStub]
) -> None:
    stub = stub_for(case)
    stub.load("everything-exists", gcloud_version=version)

    result = stub.run("--tag", TAG, "deploy")

    if refused is None:
        assert result.returncode == 0, result.stderr
        assert result.mutating[-1][:3] == ["gcloud", "run", "deploy"]
    else:
        assert result.returncode == 1
        assert result.error_lines() == [
            f"deploy.sh: ERROR: gcloud {version} is too old: {refused}; update it with: gcloud components update "
            "(or, where gcloud came from apt or yum, upgrade the google-cloud-cli package)."
        ]
        assert result.mutating == []


def test_without_gcloud_on_path_it_says_so_and_runs_nothing(team_of: Callable[[str], Team], tmp_path: Path) -> None:
    stub = GcloudStub.create(tmp_path, team_of("defaults"))
    stub.load("nothing-exists")

    result = stub.run("--tag", TAG, "all", path=path_without_gcloud(tmp_path))

    assert result.returncode == 1
    assert result.error_lines() == [
        "deploy.sh: ERROR: gcloud is not installed or not on PATH: install the Google Cloud CLI 565.0.0 or newer "
        "(https://cloud.google.com/sdk/docs/install)."
    ]
    assert result.calls == []


# --- Failures and interruptions half-way: the same command finishes the job ---


def test_a_run_that_fails_half_way_stops_there_and_a_rerun_completes_it(
    defaults_in: Callable[..., GcloudStub],
) -> None:
    stub = defaults_in("fails-half-way")
    enable, repository_create, sa_create = DEFAULTS_ALL[4], DEFAULTS_ALL[6], DEFAULTS_ALL[8]
    assert [argv[1:4] for argv in (enable, repository_create, sa_create)] == [
        ["services", "enable", "artifactregistry.googleapis.com"],
        ["artifacts", "repositories", "create"],
        ["iam", "service-accounts", "create"],
    ]

    failed = stub.run("--tag", TAG, "all")

    assert failed.returncode == 1
    assert failed.error_lines()[-1].startswith(
        "deploy.sh: ERROR: this command failed (exit 1): gcloud iam service-accounts create team-c-edge"
    )
    assert failed.mutating == [enable, repository_create, sa_create]

    rerun = stub.run("--tag", TAG, "all")

    assert rerun.returncode == 0, rerun.stderr
    # What the first run made is not made again; the refused create is made once, now.
    assert failed.creating[:-1] + rerun.creating == [argv for argv in DEFAULTS_ALL if is_creating(argv)]
    assert rerun.calls[-1] == DEFAULTS_ALL[-1]


def test_a_new_service_account_not_yet_visible_to_iam_is_retried(stub_for: Callable[[str], GcloudStub]) -> None:
    stub = stub_for("defaults")
    not_yet = f"ERROR: (gcloud.projects.add-iam-policy-binding) INVALID_ARGUMENT: Service account {SA} does not exist."
    stub.load("nothing-exists", fail=[{"command": "projects add-iam-policy-binding", "times": 1, "message": not_yet}])

    result = stub.run("--tag", TAG, "all")

    assert result.returncode == 0, result.stderr
    binding = DEFAULTS_ALL[10]
    assert binding[2] == "add-iam-policy-binding"
    assert result.calls == DEFAULTS_ALL[:10] + [binding] + DEFAULTS_ALL[10:]


# The mutating calls of `all` in a new project.
# af2-service-directvpc-image: its DAGs in the image, its task logs in a bucket of their own.
CHANGES = {"defaults": 13, "af2-service-directvpc-image": 12}


@pytest.mark.parametrize("case", sorted(CHANGES))
def test_a_full_run_makes_this_many_changes(case: str, first_run: Callable[[str], FirstRun]) -> None:
    assert len(first_run(case).result.mutating) == CHANGES[case]


INTERRUPTIONS = [
    pytest.param(case, n, after, id=f"{case}-change{n}-{'after' if after else 'before'}-effect")
    for case, modes in (("defaults", (True, False)), ("af2-service-directvpc-image", (True,)))
    for after in modes
    for n in range(1, CHANGES[case] + 1)
]


@pytest.mark.parametrize(("case", "n", "after_effect"), INTERRUPTIONS)
def test_interrupted_at_any_change_a_rerun_completes_without_creating_twice(
    case: str,
    n: int,
    after_effect: bool,
    stub_for: Callable[[str], GcloudStub],
    first_run: Callable[[str], FirstRun],
) -> None:
    full = first_run(case)
    stub = stub_for(case)
    stub.load("nothing-exists", interrupt_at_mutation=n, interrupt_after_effect=after_effect)

    interrupted = stub.run("--tag", TAG, "all")

    assert interrupted.returncode == INTERRUPTED
    assert interrupted.mutating == full.result.mutating[:n]

    rerun = stub.run("--tag", TAG, "all")

    assert rerun.returncode == 0, rerun.stderr
    made_before = interrupted.creating
    if not after_effect and is_creating(interrupted.mutating[-1]):
        made_before = made_before[:-1]  # stopped before it took effect: the rerun makes it
    assert made_before + rerun.creating == full.result.creating
    assert stub.resources() == full.resources


# --- The image tag ---


def head_commit(repo: Path) -> str:
    git = subprocess.run(
        ["git", "rev-parse", "--short=7", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    )
    return git.stdout.strip()


def test_the_default_tag_is_the_commit_and_says_when_the_tree_is_dirty(committed_team: Team, tmp_path: Path) -> None:
    stub = GcloudStub.create(tmp_path, committed_team)
    sha = head_commit(committed_team.repo)

    clean = stub.run("--dry-run", "build")
    (committed_team.repo / "dags" / "team_c" / "new_dag.py").write_text("# a DAG in progress\n")
    dirty = stub.run("--dry-run", "build")

    assert clean.plan()[-1][-2] == f"--substitutions=_TAG={sha},_DEPLOY=false"
    assert dirty.plan()[-1][-2] == f"--substitutions=_TAG={sha}-dirty,_DEPLOY=false"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("build",), "deploy.sh: ERROR: cannot choose an image tag: this folder has no git commit (git init && git "
                     "add -A && git commit), or pass --tag TAG."),
        (("--tag", "-bad tag", "deploy"), "deploy.sh: ERROR: --tag -bad tag is not a Docker tag: 1 to 128 letters, "
                                          "digits, '_', '.', '-', not starting with '.' or '-'."),
    ],
    ids=["no-commit-no-tag", "tag-docker-refuses"],
)
def test_an_image_tag_it_cannot_use_is_refused_before_any_call(
    args: tuple[str, ...], line: str, defaults_in: Callable[..., GcloudStub]
) -> None:
    stub = defaults_in("everything-exists")

    result = stub.run(*args)

    assert result.returncode == 1
    assert result.error_lines() == [line]
    assert result.calls == []


# --- The other subcommands ---


def test_deploy_alone_checks_then_rolls_out_the_given_image(defaults_in: Callable[..., GcloudStub]) -> None:
    stub = defaults_in("everything-exists", tag="v2")

    result = stub.run("--tag=v2", "deploy")

    assert result.returncode == 0, result.stderr
    assert result.calls == DEFAULTS_ALL[:4] + [[word.replace(":abc1234", ":v2") for word in DEFAULTS_ALL[-1]]]


def test_dags_with_the_dags_baked_into_the_image_syncs_nothing(stub_for: Callable[[str], GcloudStub]) -> None:
    stub = stub_for("af3-service-connector-image")
    stub.load("everything-exists")

    result = stub.run("dags")

    assert result.returncode == 0, result.stderr
    assert result.mutating == []
    assert "baked into the image" in result.stderr


def test_status_describes_the_worker_pool(defaults_in: Callable[..., GcloudStub]) -> None:
    stub = defaults_in("everything-exists")

    result = stub.run("status")

    assert result.returncode == 0, result.stderr
    assert result.calls == DEFAULTS_ALL[:2] + [
        ["gcloud", "run", "worker-pools", "describe", "team-c-edge-worker", "--project=my-gcp-project",
         "--region=europe-west1"]
    ]  # fmt: skip
    assert "gcloud run worker-pools logs read team-c-edge-worker" in result.stderr


def test_status_of_a_service_that_was_never_deployed_says_so(stub_for: Callable[[str], GcloudStub]) -> None:
    stub = stub_for("af2-service-none-gcs")
    stub.load("nothing-exists")

    result = stub.run("status")

    assert result.returncode == 1
    assert result.calls[-1][:4] == ["gcloud", "run", "services", "describe"]
    assert result.error_lines()[-1] == (
        "deploy.sh: ERROR: ml-platform-edge-worker is not deployed in my-gcp-project/europe-west1 "
        "(or you may not see it): run ./deploy.sh deploy."
    )


def test_pools_prints_the_exact_commands_for_the_central_site_and_composer(
    stub_for: Callable[[str], GcloudStub],
) -> None:
    stub = stub_for("defaults")

    placeholders = stub.run("pools")
    filled = stub.run(
        "pools", COMPOSER_ENVIRONMENT="airflow-prod", COMPOSER_LOCATION="europe-west4", COMPOSER_PROJECT="central"
    )

    assert placeholders.returncode == 0
    assert placeholders.calls == []
    assert [line for line in placeholders.stdout.splitlines() if not line.startswith("#")] == [
        "airflow pools import pools.json",
        "gcloud composer environments storage data import --project=my-gcp-project --environment=ENVIRONMENT "
        "--location=LOCATION --source=pools.json",
        "gcloud composer environments run ENVIRONMENT --project=my-gcp-project --location=LOCATION pools import "
        "-- /home/airflow/gcs/data/pools.json",
    ]
    assert [line for line in filled.stdout.splitlines() if not line.startswith("#")] == [
        "airflow pools import pools.json",
        "gcloud composer environments storage data import --project=central --environment=airflow-prod "
        "--location=europe-west4 --source=pools.json",
        "gcloud composer environments run airflow-prod --project=central --location=europe-west4 pools "
        "import -- /home/airflow/gcs/data/pools.json",
    ]
    assert (stub.team.repo / "pools.json").is_file()


def test_pools_prints_no_composer_command_where_gcloud_refuses_it(stub_for: Callable[[str], GcloudStub]) -> None:
    # gcloud 578 allows `composer environments run ... pools` only for Airflow 1.10.14 to 3.3.0 (excluded).
    stub = stub_for("af3-pool-directvpc-gcs")  # Airflow 3.3.2

    result = stub.run("pools", COMPOSER_ENVIRONMENT="airflow-prod", COMPOSER_LOCATION="us-central1")

    assert result.returncode == 0
    assert result.calls == []
    assert [line for line in result.stdout.splitlines() if not line.startswith("#")] == [
        "airflow pools import pools.json"
    ]
    assert "gcloud refuses \"composer environments run ... pools\" for Airflow 3.3.0 and newer" in result.stdout
    assert "(this is 3.3.2)" in result.stdout
    pool_doc = (stub.team.repo / "docs" / "deploy.md").read_text().split("## The pool")[1].split("\n## ")[0]
    assert "storage data import" not in pool_doc
    assert "pools import --" not in pool_doc
    assert "refuses `gcloud composer environments run ... pools`" in pool_doc


@pytest.mark.parametrize("args", [[], ["deploy-everything"], ["--tag"]])
def test_a_wrong_command_line_prints_the_usage_and_calls_nothing(
    args: list[str], defaults_in: Callable[..., GcloudStub]
) -> None:
    stub = defaults_in("everything-exists")

    result = stub.run(*args)

    assert result.returncode == 2
    assert "Usage: ./deploy.sh" in result.stderr
    assert result.calls == []


def test_it_runs_from_any_folder(defaults_in: Callable[..., GcloudStub], tmp_path: Path) -> None:
    stub = defaults_in("nothing-exists")

    result = stub.run("--tag", TAG, "all", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.calls == DEFAULTS_ALL


# --- Least privilege and secrets ---


@pytest.mark.parametrize("case", ["defaults", "af2-service-directvpc-image"])
def test_the_runtime_account_gets_only_the_roles_it_needs(
    case: str, first_run: Callable[[str], FirstRun], team_of: Callable[[str], Team]
) -> None:
    t = team_of(case)

    granted = {key for key in first_run(case).resources if key.startswith("binding:")}

    expected = {
        f"binding:project:{t.project}|roles/logging.logWriter|serviceAccount:{t.sa_email}",
        f"binding:project:{t.project}|roles/monitoring.metricWriter|serviceAccount:{t.sa_email}",
        f"binding:secret:{t.secret}|roles/secretmanager.secretAccessor|serviceAccount:{t.sa_email}",
    }
    if t.dags_source == "gcs-volume":
        expected.add(
            f"binding:bucket:gs://{t.bucket}|roles/storage.objectViewer|serviceAccount:{t.sa_email}"
            f"|{t.team} DAGs read, bucket listed"
        )
    if t.answers.get("remote_logging"):
        expected.add(f"binding:bucket:gs://{t.log_bucket}|roles/storage.objectUser|serviceAccount:{t.sa_email}"
                     f"|{t.team} task logs write")
    assert granted == expected


def test_the_worker_mounts_only_its_team_prefix_of_the_dag_bucket(first_run: Callable[[str], FirstRun]) -> None:
    """What the worker may read there is tests/test_google_permissions.py's; this is the plan."""
    run = first_run("af3-pool-directvpc-gcs")
    member = "serviceAccount:analytics-edge@acme-data-prod.iam.gserviceaccount.com"
    key = f"binding:bucket:gs://acme-dags|roles/storage.objectViewer|{member}|analytics DAGs read, bucket listed"
    prefix = "teams/analytics/dags/analytics/"

    assert key in run.resources
    assert run.world["conditions"][key] == (
        f'resource.name.startsWith("projects/_/buckets/acme-dags/objects/{prefix}")'
        ' || resource.type == "storage.googleapis.com/Bucket"'
    )
    deploy = run.result.calls[-1]
    assert [w for w in deploy if w.startswith("--add-volume") and "dags" in w] == [
        "--add-volume=name=dags,type=cloud-storage,bucket=acme-dags,readonly=true,"
        "mount-options=only-dir=teams/analytics/dags/analytics;metadata-cache-ttl-secs=10",
        "--add-volume-mount=volume=dags,mount-path=/opt/airflow/dags-bucket/analytics",
    ]


def test_the_worker_writes_only_its_team_folder_of_the_task_log_bucket(
    first_run: Callable[[str], FirstRun], team_of: Callable[[str], Team]
) -> None:
    run = first_run("af3-pool-directvpc-gcs")
    member = "serviceAccount:analytics-edge@acme-data-prod.iam.gserviceaccount.com"
    key = f"binding:bucket:gs://acme-airflow-logs|roles/storage.objectUser|{member}|analytics task logs write"
    env = (team_of("af3-pool-directvpc-gcs").repo / "worker.env.yaml").read_text()

    assert key in run.resources
    assert run.world["conditions"][key] == (
        'resource.name.startsWith("projects/_/buckets/acme-airflow-logs/objects/teams/analytics/")'
    )
    # The worker's own setting names the same folder, uploading as its service account.
    assert 'EDGE_REMOTE_LOG_FOLDER: "gs://acme-airflow-logs/teams/analytics"\n' in env
    # Nothing else of either bucket is granted to it.
    assert {k for k in run.resources if k.startswith("binding:bucket:") and member in k} == {
        f"binding:bucket:gs://acme-dags|roles/storage.objectViewer|{member}|analytics DAGs read, bucket listed", key,
    }


def test_setup_again_keeps_the_task_log_grant_as_it_is(
    stub_for: Callable[[str], GcloudStub], first_run: Callable[[str], FirstRun]
) -> None:
    stub = stub_for("af3-pool-directvpc-gcs")
    stub.write_world(first_run("af3-pool-directvpc-gcs").world)

    again = stub.run("setup")

    assert again.returncode == 0, again.stderr
    assert again.mutating == []
    assert "exists: roles/storage.objectUser for analytics-edge@acme-data-prod.iam.gserviceaccount.com on " \
           "gs://acme-airflow-logs, objects under teams/analytics/ only" in again.stderr


def test_task_logs_in_the_dag_bucket_make_no_second_bucket(
    render_to: Callable[..., Path], tmp_path: Path
) -> None:
    answers = {"team_name": "team-c", "remote_logging": True,
               "remote_log_folder": "gs://my-gcp-project-airflow-dags/logs/team-c"}
    stub = GcloudStub.create(tmp_path, rendered_team("logs-in-dag-bucket", answers, render_to))
    stub.load("nothing-exists")

    result = stub.run("setup")

    assert result.returncode == 0, result.stderr
    bucket = [argv[3:5] for argv in result.calls if argv[1:3] == ["storage", "buckets"]]
    dags = "gs://my-gcp-project-airflow-dags"
    assert bucket == [["describe", dags], ["create", dags], ["get-iam-policy", dags], ["add-iam-policy-binding", dags],
                      ["get-iam-policy", dags], ["add-iam-policy-binding", dags]]
    grant = [argv for argv in result.calls if argv[3:4] == ["add-iam-policy-binding"]][-1]
    assert grant[-2] == (
        '--condition=^:^expression=resource.name.startsWith("projects/_/buckets/my-gcp-project-airflow-dags/objects/'
        'logs/team-c/"):title=team-c task logs write'
    )


def test_the_worker_dag_folder_holds_the_mounted_team_folder(team_of: Callable[[str], Team]) -> None:
    """Each DAG file's path relative to the DAG folder is the central site's: <team_module>/..."""
    t = team_of("af3-pool-directvpc-gcs")
    env = (t.repo / "worker.env.yaml").read_text()
    mount = next(w for w in DEPLOY_COMMANDS["af3-pool-directvpc-gcs"] if w.startswith("--add-volume-mount=volume=dags"))

    assert 'AIRFLOW__CORE__DAGS_FOLDER: "/opt/airflow/dags-bucket"\n' in env
    assert mount.endswith("mount-path=/opt/airflow/dags-bucket/analytics")


def test_setup_replaces_a_bucket_wide_read_grant_with_the_team_prefix_one(
    stub_for: Callable[[str], GcloudStub],
) -> None:
    stub = stub_for("defaults")
    world = stub.load("everything-exists")
    conditional = f"binding:bucket:gs://my-gcp-project-airflow-dags|roles/storage.objectViewer|serviceAccount:{SA}"
    world["resources"] = [key.replace(f"{conditional}|team-c DAGs read, bucket listed", conditional)
                          for key in world["resources"]]
    stub.write_world(world)  # what setup of an earlier release granted: the whole bucket

    first = stub.run("setup")
    second = stub.run("setup")

    assert first.returncode == 0, first.stderr
    bucket, p, member = "gs://my-gcp-project-airflow-dags", "--project=my-gcp-project", f"--member=serviceAccount:{SA}"
    assert first.mutating == [
        ["gcloud", "storage", "buckets", "add-iam-policy-binding", bucket, p, member,
         "--role=roles/storage.objectViewer", dags_read_condition("team-c", bucket[5:], "dags/team_c/"),
         "--format=none"],
        ["gcloud", "storage", "buckets", "remove-iam-policy-binding", bucket, p, member,
         "--role=roles/storage.objectViewer", "--condition=None", "--format=none"],
    ]  # fmt: skip
    assert conditional not in stub.resources()
    assert f"{conditional}|team-c DAGs read, bucket listed" in stub.resources()
    assert second.returncode == 0, second.stderr
    assert second.mutating == []


def test_the_stand_in_refuses_a_bucket_binding_without_condition_once_the_policy_has_conditions(
    defaults_in: Callable[..., GcloudStub],
) -> None:
    stub = defaults_in("everything-exists")

    result = stub.run_shell(
        "gcloud storage buckets add-iam-policy-binding gs://my-gcp-project-airflow-dags --project=my-gcp-project"
        f" --member=serviceAccount:{SA} --role=roles/storage.objectViewer"
    )

    assert result.returncode == 1
    assert "pass --condition" in result.stderr


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_no_secret_value_is_read_and_no_public_access_is_granted(
    case: str, first_run: Callable[[str], FirstRun], team_of: Callable[[str], Team]
) -> None:
    calls = first_run(case).result.calls
    script = (team_of(case).repo / "deploy.sh").read_text()

    assert not any("versions" in argv and "access" in argv for argv in calls)
    assert not any("--allow-unauthenticated" in argv for argv in calls)
    assert "versions access" not in script
    assert not re.search(r"(?<!no-)allow-unauthenticated", script)


# --- The docs ---


def doc_deploy_commands(doc: str) -> list[str]:
    """The ./deploy.sh lines of the docs' sh code blocks, in order."""
    commands, in_sh = [], False
    for line in doc.splitlines():
        if line.strip().startswith("```"):
            in_sh = line.strip() == "```sh" and not in_sh
            continue
        if in_sh and line.strip().startswith("./deploy.sh"):
            commands.append(line.strip())
    return commands


@pytest.mark.parametrize("doc", ["docs/deploy.md", "README.md"])
def test_the_docs_deploy_commands_work_as_written(doc: str, committed_team: Team, tmp_path: Path) -> None:
    commands = doc_deploy_commands((committed_team.repo / doc).read_text())
    stub = GcloudStub.create(tmp_path, committed_team)
    stub.load("nothing-exists")
    sha = head_commit(committed_team.repo)

    assert [command.split("#")[0].strip() for command in commands[:2]] == [
        "./deploy.sh --dry-run all",
        "./deploy.sh all",
    ]
    for command in commands:
        result = stub.run_shell(command)
        assert result.returncode == 0, f"{command}: {result.stderr}"
        if "--dry-run" in command:
            assert result.calls == []
            assert result.plan() == DEFAULTS_ALL[:-3] + [
                [word.replace("abc1234", sha) for word in argv] for argv in DEFAULTS_ALL[-3:]
            ]


def test_the_docs_secret_creation_works_as_written_and_the_value_goes_nowhere(
    team_of: Callable[[str], Team], tmp_path: Path
) -> None:
    doc = (team_of("defaults").repo / "docs" / "deploy.md").read_text()
    block = next(b for b in doc.split("```sh\n")[1:] if "gcloud secrets create" in b).split("```", 1)[0]
    stub = GcloudStub.create(tmp_path, team_of("defaults"))
    stub.load("secret-missing")
    value = "edge-secret-typed-at-the-prompt-" + "z" * 40

    result = stub.run_shell(block, stdin=value + "\n")

    assert result.returncode == 0, result.stderr
    assert result.calls == [
        ["gcloud", "services", "enable", "secretmanager.googleapis.com", "--project=my-gcp-project"],
        ["gcloud", "secrets", "create", "airflow-edge-secret", "--project=my-gcp-project",
         "--replication-policy=automatic", "--data-file=-"],
    ]
    assert "secret:airflow-edge-secret" in stub.resources()
    assert value not in result.stdout + result.stderr + stub.log_path.read_text() + stub.state_path.read_text()


def test_the_docs_bucket_grants_work_as_written_and_stay_in_the_team_prefix(
    team_of: Callable[[str], Team], tmp_path: Path
) -> None:
    doc = (team_of("defaults").repo / "docs" / "deploy.md").read_text()
    block = next(b for b in doc.split("```sh\n")[1:] if "BUILD_SA=" in b).split("```", 1)[0]
    lines = [line for line in block.splitlines() if line.startswith(("BUILD_SA=", "gcloud storage buckets"))]
    stub = GcloudStub.create(tmp_path, team_of("defaults"))
    world = stub.load("everything-exists")
    build_sa = "PROJECT_NUMBER-compute@developer.gserviceaccount.com"
    world["resources"] += [f"service-account:{build_sa}", "bucket:gs://my-gcp-project_cloudbuild"]
    stub.write_world(world)

    result = stub.run_shell("set -euo pipefail\n" + "\n".join(lines))

    assert result.returncode == 0, result.stderr
    member = f"--member=serviceAccount:{build_sa}"
    assert result.calls == [
        ["gcloud", "storage", "buckets", "add-iam-policy-binding", "gs://my-gcp-project_cloudbuild",
         "--project=my-gcp-project", member, "--role=roles/storage.objectViewer",
         '--condition=^:^expression=resource.name.startsWith("projects/_/buckets/my-gcp-project_cloudbuild/objects/'
         'source/"):title=build source only'],
        ["gcloud", "storage", "buckets", "add-iam-policy-binding", "gs://my-gcp-project-airflow-dags",
         "--project=my-gcp-project", member, "--role=roles/storage.objectUser",
         dags_read_condition("team-c", "my-gcp-project-airflow-dags", "dags/team_c/").replace(
             "DAGs read, bucket listed", "DAGs write")],
    ]  # fmt: skip
    assert "--role=roles/storage.objectAdmin" not in doc


def test_the_docs_name_the_gcloud_release_checked_against(team_of: Callable[[str], Team]) -> None:
    doc = (team_of("defaults").repo / "docs" / "deploy.md").read_text()

    assert "Google Cloud CLI 578.0.0" in doc
    assert "565.0.0 or\nnewer" in doc or "565.0.0 or newer" in doc
    service_doc = (team_of("af2-service-none-gcs").repo / "docs" / "deploy.md").read_text()
    assert "498.0.0 or\nnewer" in service_doc or "498.0.0 or newer" in service_doc


# --- The script itself ---


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_the_rendered_script_is_executable_and_shellcheck_clean(case: str, team_of: Callable[[str], Team]) -> None:
    script = team_of(case).repo / "deploy.sh"

    assert script.stat().st_mode & 0o111
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in script.read_text()
    result = run_tool([tool("shellcheck"), "--severity=style", "deploy.sh"], cwd=script.parent)
    assert result.returncode == 0, result.stdout + result.stderr
