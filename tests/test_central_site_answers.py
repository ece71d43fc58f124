"""Answers about the central site's shape and the network: DAG bundle, Execution API route,
shutdown settings per edge3 release, the start-up wait and Shared VPC names."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from gcloud_stub import GcloudStub, rendered_team

AF3 = {"airflow_version": "3.3.2"}
SHARED_NETWORK = "projects/acme-net-host/global/networks/shared-vpc"
SHARED_SUBNET = "projects/acme-net-host/regions/us-central1/subnetworks/edge-subnet"



def worker_env(repo: Path) -> dict[str, str]:
    return yaml.safe_load((repo / "worker.env.yaml").read_text())


LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"


def test_airflow3_worker_serves_the_central_bundle_and_names_the_execution_api(render_to) -> None:
    env = worker_env(render_to({"team_name": "team-c", **AF3, "dag_bundle_name": "team-dags"}))
    assert json.loads(env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"]) == [
        {"name": "team-dags", "classpath": LOCAL_BUNDLE, "kwargs": {}}
    ]
    # What edge3 derives from [edge] api_url when it is unset, written out.
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "https://airflow.example.com/execution"


def test_airflow3_defaults_are_airflow_s_own_bundle_and_a_prefixed_execution_route(render_to) -> None:
    env = worker_env(render_to({
        "team_name": "team-c", **AF3, "edge_api_url": "https://lb.example.com/airflow/edge_worker/v1/rpcapi",
    }))
    assert json.loads(env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"]) == [
        {"name": "dags-folder", "classpath": LOCAL_BUNDLE, "kwargs": {}}
    ]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "https://lb.example.com/airflow/execution"


def test_an_execution_api_routed_elsewhere_is_rendered_as_given(render_to) -> None:
    env = worker_env(render_to({"team_name": "team-c", **AF3, "execution_api_url": "https://exec.example.com/x"}))
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "https://exec.example.com/x"


def test_airflow2_worker_has_no_airflow3_settings(render_to) -> None:
    env = worker_env(render_to({"team_name": "team-c", "airflow_version": "2.10.5"}))
    assert "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST" not in env
    assert "AIRFLOW__CORE__EXECUTION_API_SERVER_URL" not in env
    assert env["AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC"] == "2"


@pytest.mark.parametrize(
    ("answers", "has_drain_settings"),
    [
        ({"airflow_version": "2.10.5"}, False),
        ({"airflow_version": "3.0.6", "edge_provider_version": "3.5.0"}, False),
        ({"airflow_version": "3.0.6", "edge_provider_version": "3.6.0"}, True),
        ({"airflow_version": "3.0.6", "edge_provider_version": "4.3.2", "python_version": "3.10"}, True),
        ({"airflow_version": "3.3.2"}, True),
    ],
    ids=["2.10-edge1.5", "3.0-edge3.5", "3.0-edge3.6", "3.0-edge4.3", "3.3-edge5.1"],
)
def test_drain_settings_only_for_edge3_releases_that_read_them(render_to, answers, has_drain_settings) -> None:
    repo = render_to({"team_name": "team-c", **answers})
    env = worker_env(repo)
    assert ("AIRFLOW__EDGE__DRAIN_TIMEOUT_SEC" in env) is has_drain_settings
    assert ("AIRFLOW__EDGE__DRAIN_KILL_GRACE_SEC" in env) is has_drain_settings


@pytest.mark.parametrize(("network_mode", "wait"), [("none", "60"), ("direct-vpc", "180")])
def test_the_start_up_wait_follows_the_network_mode(render_to, network_mode: str, wait: str) -> None:
    repo = render_to({"team_name": "team-c", "network_mode": network_mode})
    assert worker_env(repo)["EDGE_API_WAIT_SECONDS"] == wait


SHARED_VPC_TEAM = {
    "team_name": "analytics",
    "gcp_project_id": "acme-data-prod",
    "region": "us-central1",
    "airflow_version": "3.3.2",
    "network_mode": "direct-vpc",
    "vpc_network": SHARED_NETWORK,
    "vpc_subnet": SHARED_SUBNET,
    "vpc_egress": "all-traffic",
    "dags_source": "image",
}


@pytest.mark.parametrize("target", ["worker-pool", "service"])
def test_deploy_passes_shared_vpc_names_to_gcloud_as_given(
    tmp_path: Path, render_to: Callable[..., Path], target: str
) -> None:
    team = rendered_team(f"shared-vpc-{target}", {**SHARED_VPC_TEAM, "deployment_target": target}, render_to)
    stub = GcloudStub.create(tmp_path, team)
    stub.load("everything-exists", tag="v2")

    result = stub.run("--tag=v2", "deploy")

    assert result.returncode == 0, result.stderr
    deploy = result.calls[-1]
    command = ["worker-pools", "deploy"] if target == "worker-pool" else ["deploy"]
    assert deploy[: 3 + len(command)] == ["gcloud", "run", *command, "analytics-edge-worker"]
    network_flags = [arg for arg in deploy if arg.startswith(("--network", "--subnet", "--vpc"))]
    assert network_flags == [f"--network={SHARED_NETWORK}", f"--subnet={SHARED_SUBNET}", "--vpc-egress=all-traffic"]


@pytest.mark.parametrize(
    ("answers", "tasks"),
    [
        ({"airflow_version": "2.10.5"}, None),
        ({"airflow_version": "3.0.6", "edge_provider_version": "4.3.2", "python_version": "3.10"}, None),
        ({"airflow_version": "3.3.2"}, 4),
        ({"airflow_version": "3.3.2", "autoscaling": True, "scale_max": 5, "worker_concurrency": 3}, 15),
        ({"airflow_version": "3.3.2", "deployment_target": "service", "max_instances": 3}, 12),
    ],
    ids=["2.10-edge1.5", "3.0-edge4.3", "3.3-edge5.1-pool", "3.3-edge5.1-elastic", "3.3-edge5.1-service"],
)
def test_from_edge3_5_the_central_notes_size_parallelism_from_the_team_s_slots(render_to, answers, tasks) -> None:
    repo = render_to({"team_name": "team-c", **answers})
    notes = (repo / "central" / "README.md").read_text()

    assert ("`[core] parallelism`" in notes) is (tasks is not None)
    if tasks is not None:
        assert f"This team runs at most\n  **{tasks}** tasks at once" in notes
    assert "API servers first, then the schedulers, then the workers" in notes


@pytest.mark.parametrize(
    ("answers", "by_weight"),
    [
        ({"airflow_version": "2.10.5"}, False),
        ({"airflow_version": "3.3.2", "edge_provider_version": "5.0.0"}, False),
        ({"airflow_version": "3.3.2"}, True),
    ],
    ids=["2.10-edge1.5", "3.3-edge5.0", "3.3-edge5.1"],
)
def test_from_edge3_5_1_the_readme_says_priority_weight_orders_the_team_s_tasks(render_to, answers, by_weight) -> None:
    readme = (render_to({"team_name": "team-c", **answers}) / "README.md").read_text()

    assert ("highest `priority_weight`" in readme) is by_weight
