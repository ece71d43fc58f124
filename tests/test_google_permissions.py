"""Google Cloud as Google enforces it: each identity of the plan can do its job, and holds no role
it never uses.

The gcloud stand-in checks every call's permissions (tests/gcloud_stub/permissions.py, with
Google's sources beside each fact) against the roles its caller holds; the caller is the
deployer of docs/deploy.md, holding what its grant block has the project's admin give. What
Cloud Run and the central scaler do as their service identities is checked here against the
bindings `./deploy.sh all` leaves: an instance start, the Cloud Storage FUSE mount as its
releases make it (tests/support/gcsfuse.py), the worker's reads and task log uploads, a scale.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gcloud_stub import BUILD_ACCOUNT, DEPLOYER, GcloudStub, Team, documented_grants, scenario
from gcloud_stub.permissions import Request, bucket_request, granting, object_request, rsync_requests
from support import gcsfuse
from support.matrix import MATRIX
from support.templates import copier_cli, leftovers, load_answers, release_after, team_repo_at

TAG = "abc1234"
GCS_CASES = sorted(case for case, answers in MATRIX.items() if answers.get("dags_source", "gcs-volume") == "gcs-volume")
ELASTIC = "af3-pool-elastic"
KEPT = {"roles/logging.logWriter", "roles/monitoring.metricWriter"}  # docs/deploy.md marks them "kept"


@pytest.fixture(scope="module")
def after_all(tmp_path_factory: pytest.TempPathFactory, team_of: Callable[[str], Team]) -> Callable[[str], Any]:
    """after_all(case): the world `./deploy.sh --tag abc1234 all` leaves in a new project (once a case)."""
    cache: dict[str, dict[str, Any]] = {}

    def _run(case: str) -> dict[str, Any]:
        if case not in cache:
            stub = GcloudStub.create(tmp_path_factory.mktemp("permissions"), team_of(case))
            stub.load("nothing-exists")
            result = stub.run("--tag", TAG, "all")
            assert result.returncode == 0, result.stderr
            cache[case] = stub.world()
        return cache[case]

    return _run


def refused(world: dict[str, Any], member: str, requests: list[Request]) -> list[str]:
    return [str(request) for request in requests if not granting(world, member, request)]


def worker_requests(team: Team) -> list[Request]:
    """What Cloud Run and the worker do as the runtime account: read the secret at start, mount and
    read the team's DAG files (every gcsfuse line), upload and replace task logs."""
    requests = [Request("secretmanager.versions.access", f"secret:{team.secret}")]
    if team.dags_source == "gcs-volume":
        for release in gcsfuse.RELEASES:
            requests += gcsfuse.mount_requests(team.bucket, team.dags_prefix, release)
        requests += gcsfuse.read_requests(team.bucket, team.dags_prefix, "example_dag.py")
    if team.answers.get("remote_logging"):
        log = f"{team.log_prefix}dag_id=d/run_id=r/task_id=t/attempt=1.log"
        requests += [object_request(permission, team.log_bucket, log)
                     for permission in ("storage.objects.get", "storage.objects.create", "storage.objects.delete")]
    return requests


# --- The deployer ---


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_all_passes_as_the_documented_deployer(case: str, after_all: Callable[[str], Any]) -> None:
    world = after_all(case)

    assert world["account"] == DEPLOYER
    assert world.get("denied", []) == []


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_the_deployer_holds_no_role_it_never_uses(
    case: str, after_all: Callable[[str], Any], team_of: Callable[[str], Team]
) -> None:
    held = {grant.split("|")[1] for grant in documented_grants(team_of(case)) if grant.split("|")[2] == DEPLOYER}
    used = {entry.split("|")[1] for entry in after_all(case)["used"] if entry.startswith(DEPLOYER + "|")}

    assert held - used == set()
    assert ("roles/run.admin" in held) == bool(MATRIX[case].get("autoscaling"))


def test_without_run_admin_the_scaler_step_fails_naming_the_permission(
    stub_for: Callable[[str], GcloudStub], after_all: Callable[[str], Any]
) -> None:
    stub = stub_for(ELASTIC)
    world = after_all(ELASTIC)
    world = {**world, "resources": [key for key in world["resources"] if "airflow-central@" not in key or
                                    not key.startswith("binding:")]}
    world["held"] = [grant.replace("roles/run.admin", "roles/run.developer") for grant in world["held"]]
    stub.write_world(world)

    result = stub.run("scaler")

    assert result.returncode != 0
    assert "Permission 'run.workerpools.setIamPolicy' denied" in result.stderr
    assert result.mutating[-1][3] == "add-iam-policy-binding"
    assert not [key for key in stub.resources() if key.startswith("binding:") and "airflow-central@" in key]


# --- The worker's runtime account ---


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_the_worker_starts_mounts_reads_and_logs_with_exactly_its_roles(
    case: str, after_all: Callable[[str], Any], team_of: Callable[[str], Team]
) -> None:
    team, world = team_of(case), after_all(case)
    member = f"serviceAccount:{team.sa_email}"
    requests = worker_requests(team)

    assert refused(world, member, requests) == []
    used = {binding.role for request in requests for binding in granting(world, member, request)}
    held = {key.split("|")[1] for key in world["resources"] if key.startswith("binding:") and key.endswith(member)}
    assert held - used == KEPT


@pytest.mark.parametrize("case", GCS_CASES)
def test_the_worker_reads_no_other_team_s_dags_and_writes_none(
    case: str, after_all: Callable[[str], Any], team_of: Callable[[str], Team]
) -> None:
    team, world = team_of(case), after_all(case)
    member = f"serviceAccount:{team.sa_email}"
    own = team.dags_prefix
    other = f"{team.answers['dags_bucket_path']}/other_team/secret_dag.py"

    assert refused(world, member, [
        object_request("storage.objects.get", team.bucket, other),
        object_request("storage.objects.get", team.bucket, own.rstrip("/")),  # a name beside the folder
        object_request("storage.objects.create", team.bucket, own + "dropped.py"),
        object_request("storage.objects.delete", team.bucket, own + "example_dag.py"),
        bucket_request("storage.buckets.setIamPolicy", team.bucket),
    ]) == [
        f"storage.objects.get on projects/_/buckets/{team.bucket}/objects/{other}",
        f"storage.objects.get on projects/_/buckets/{team.bucket}/objects/{own.rstrip('/')}",
        f"storage.objects.create on projects/_/buckets/{team.bucket}/objects/{own}dropped.py",
        f"storage.objects.delete on projects/_/buckets/{team.bucket}/objects/{own}example_dag.py",
        f"storage.buckets.setIamPolicy on projects/_/buckets/{team.bucket}",
    ]


def test_the_grant_of_earlier_releases_refuses_the_mount(after_all: Callable[[str], Any],
                                                         team_of: Callable[[str], Team]) -> None:
    """Listings inside the prefix only (objectListPrefix): gcsfuse's empty-prefix layout call is refused."""
    team, world = team_of("defaults"), after_all("defaults")
    member = f"serviceAccount:{team.sa_email}"
    key = next(key for key in world["resources"] if key.endswith(f"{member}|team-c DAGs read, bucket listed"))
    old_key = key.removesuffix(", bucket listed")
    old = {**world, "resources": [old_key if k == key else k for k in world["resources"]],
           "conditions": {old_key: 'resource.name.startsWith("projects/_/buckets/my-gcp-project-airflow-dags/objects/'
                                   'dags/team_c/") || api.getAttribute("storage.googleapis.com/objectListPrefix", "")'
                                   '.startsWith("dags/team_c/")'}}

    for release in gcsfuse.RELEASES:
        assert refused(old, member, gcsfuse.mount_requests(team.bucket, "dags/team_c", release)) == [
            "storage.objects.list on projects/_/buckets/my-gcp-project-airflow-dags (list prefix '')"
        ]


def test_setup_replaces_the_grant_of_earlier_releases_and_the_mount_then_works(
    stub_for: Callable[[str], GcloudStub],
) -> None:
    stub = stub_for("defaults")
    world = stub.load("everything-exists")
    sa = "team-c-edge@my-gcp-project.iam.gserviceaccount.com"
    new_key = next(key for key in world["resources"] if key.endswith("|team-c DAGs read, bucket listed"))
    old_key = new_key.removesuffix(", bucket listed")
    old_condition = ('resource.name.startsWith("projects/_/buckets/my-gcp-project-airflow-dags/objects/dags/team_c/")'
                     ' || api.getAttribute("storage.googleapis.com/objectListPrefix", "").startsWith("dags/team_c/")')
    world["resources"] = [old_key if key == new_key else key for key in world["resources"]]
    world["conditions"] = {old_key: old_condition}
    stub.write_world(world)

    first = stub.run("setup")
    second = stub.run("setup")

    assert first.returncode == 0, first.stderr
    bucket, p, member = "gs://my-gcp-project-airflow-dags", "--project=my-gcp-project", f"--member=serviceAccount:{sa}"
    assert [argv[3] for argv in first.mutating] == ["add-iam-policy-binding", "remove-iam-policy-binding"]
    assert first.mutating[1] == [
        "gcloud", "storage", "buckets", "remove-iam-policy-binding", bucket, p, member,
        "--role=roles/storage.objectViewer", f"--condition=^:^expression={old_condition}:title=team-c DAGs read",
        "--format=none",
    ]
    assert old_key not in stub.resources()
    assert new_key in stub.resources()
    for release in gcsfuse.RELEASES:
        assert refused(stub.world(), f"serviceAccount:{sa}",
                       gcsfuse.mount_requests(bucket[5:], "dags/team_c", release)) == []
    assert second.mutating == []


# The last commit of main whose setup granted listings inside the prefix only.
BEFORE_THE_PERMISSION_MODEL = "5af1363"


def test_a_repo_of_the_release_before_updates_and_its_setup_lets_the_worker_mount(tmp_path: Path) -> None:
    template = release_after(tmp_path / "template", BEFORE_THE_PERMISSION_MODEL)
    repo = team_repo_at(template, tmp_path / "team-c", "v1.0.0")
    stub = GcloudStub.create(tmp_path / "gcloud", Team(repo, load_answers(repo)))
    stub.write_world(scenario("nothing-exists", stub.team, with_people=False))
    assert stub.run("--tag", TAG, "setup").returncode == 0  # the old release's setup
    sa = f"serviceAccount:{stub.team.sa_email}"
    assert refused(stub.world(), sa, gcsfuse.mount_requests(stub.team.bucket, "dags/team_c", "v3.10-v3.11.2"))

    result = copier_cli(repo, "update", "--skip-answered", "--defaults", "--vcs-ref", "v2.0.0")
    assert result.returncode == 0, result.stderr
    assert leftovers(repo) == []
    team = Team(repo, load_answers(repo))
    stub = GcloudStub(team, stub.bin_dir, stub.state_path, stub.log_path)
    stub.write_world({**stub.world(), "account": DEPLOYER, "held": documented_grants(team)})
    setup = stub.run("setup")

    assert setup.returncode == 0, setup.stderr
    assert [argv[3] for argv in setup.mutating] == ["add-iam-policy-binding", "remove-iam-policy-binding"]
    for release in gcsfuse.RELEASES:
        assert refused(stub.world(), sa, gcsfuse.mount_requests(team.bucket, "dags/team_c", release)) == []


# --- The DAG writer ---


@pytest.mark.parametrize("case", GCS_CASES)
def test_the_dag_sync_passes_the_writer_condition_only_with_the_trailing_slash(
    case: str, stub_for: Callable[[str], GcloudStub]
) -> None:
    stub = stub_for(case)
    world = stub.load("everything-exists")
    team = stub.team
    folder = team.dags_prefix.rstrip("/")
    source = str(team.repo / "dags" / team.team_module)

    with_slash = rsync_requests(source, f"gs://{team.bucket}/{folder}/")
    without = rsync_requests(source, f"gs://{team.bucket}/{folder}")

    # The DAG writer of docs/deploy.md: the Cloud Build account with its "DAGs write" condition.
    assert refused(world, BUILD_ACCOUNT, with_slash) == []
    assert refused(world, BUILD_ACCOUNT, without) == [
        f"storage.objects.get on projects/_/buckets/{team.bucket}/objects/{folder}"
    ]


# --- The central site's scaler ---


def test_the_scaler_may_change_its_team_s_pool_and_no_other(
    after_all: Callable[[str], Any], team_of: Callable[[str], Team]
) -> None:
    team, world = team_of(ELASTIC), after_all(ELASTIC)
    scaler = f"serviceAccount:{team.answers['central_service_account']}"
    pool = f"worker-pool:{team.region}/{team.resource}"
    other_pool = f"worker-pool:{team.region}/team-f-edge-worker"

    # The scaler reads the pool, then PATCHes scaling.manualInstanceCount (central/scale_*_workers.py).
    assert refused(world, scaler, [
        Request("run.workerpools.get", pool), Request("run.workerpools.update", pool),
        Request("iam.serviceAccounts.actAs", f"service-account:{team.sa_email}"),
    ]) == []
    assert refused(world, scaler, [
        Request("run.workerpools.update", other_pool), Request("run.workerpools.setIamPolicy", pool),
        Request("secretmanager.versions.access", f"secret:{team.secret}"),
    ]) == [f"run.workerpools.update on {other_pool}", f"run.workerpools.setIamPolicy on {pool}",
           f"secretmanager.versions.access on secret:{team.secret}"]
    held = {key.split("|")[1] for key in world["resources"] if key.startswith("binding:") and key.endswith(scaler)}
    assert held == {"roles/run.developer", "roles/iam.serviceAccountUser"}


# --- A service ---


@pytest.mark.parametrize("case", ["af2-service-none-gcs", "af3-service-connector-image"])
def test_a_service_redeploy_never_tries_to_set_its_iam_policy(
    case: str, stub_for: Callable[[str], GcloudStub], after_all: Callable[[str], Any], tmp_path: Path
) -> None:
    stub = stub_for(case)
    stub.write_world(after_all(case))

    again = stub.run("--tag", TAG, "deploy")
    deploy = again.mutating[-1]
    with_old_flag = stub.run_shell(" ".join(f"'{word}'" for word in [*deploy, "--no-allow-unauthenticated"]))

    assert again.returncode == 0, again.stderr
    assert "Setting IAM policy failed" not in again.stderr
    assert with_old_flag.returncode == 0  # gcloud only warns: what releases before 2026-12 showed on each deploy
    assert "WARNING: Setting IAM policy failed" in with_old_flag.stderr


# --- The platform's secret rotation (platform/README.md) ---

PLATFORM = "user:PLATFORM@EXAMPLE.COM"


def test_a_new_secret_version_needs_the_version_adder_role_and_the_api(
    stub_for: Callable[[str], GcloudStub],
) -> None:
    stub = stub_for("defaults")
    team = stub.team
    secret, project = team.answers["edge_secret_name"], team.answers["gcp_project_id"]
    add = f"gcloud secrets versions add {secret} --project={project} --data-file=-"
    world = scenario("everything-exists", team, with_people=False) | {"account": PLATFORM, "held": []}

    stub.write_world(world)
    refused = stub.run_shell(add, stdin="new-value")
    assert refused.returncode == 1
    assert f"PERMISSION_DENIED: Permission 'secretmanager.versions.add' denied on resource 'secret:{secret}'" in (
        refused.stderr)
    stub.write_world(world | {"held": [f"secret:{secret}|roles/secretmanager.secretVersionAdder|{PLATFORM}"]})
    assert stub.run_shell(add, stdin="new-value").returncode == 0
    without_api = [key for key in world["resources"] if key != "api:secretmanager.googleapis.com"]
    stub.write_world(world | {"resources": without_api, "account": None})
    disabled = stub.run_shell(add, stdin="new-value")
    assert disabled.returncode == 1
    assert "Secret Manager API has not been used in this project or it is disabled" in disabled.stderr
