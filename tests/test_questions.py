"""A team answers the questions: good answers render, bad ones stop copier with a clear rule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, load_answers, render

# (question, bad value, other answers, a phrase of the rule the error must state)
BAD_ANSWERS: list[tuple[str, Any, dict[str, Any], str]] = [
    ("team_name", "Team_C", {}, "lowercase slug"),
    ("team_name", "team--c", {}, "single hyphens"),
    ("team_name", "team-c-", {}, "not ending with a hyphen"),
    ("team_name", "9team", {}, "starting with a letter"),
    ("team_name", "t", {}, "2 to 25 characters"),
    ("team_name", "a-team-name-that-is-far-too-long", {}, "2 to 25 characters"),
    ("team_name", "team c; rm -rf /", {}, "lowercase slug"),
    ("gcp_project_id", "My-Project", {}, "Google Cloud project id"),
    ("gcp_project_id", "short", {}, "6 to 30 characters"),
    ("gcp_project_id", "project-", {}, "not ending with a hyphen"),
    ("region", "mars-north1", {}, "must be a Cloud Run region"),
    ("artifact_registry_repo", "Airflow_Edge", {}, "lowercase letters, digits and"),
    ("edge_api_url", "http://airflow.example.com/edge_worker/v1/rpcapi", {}, "http only for localhost"),
    ("edge_api_url", "https://airflow.example.com/edge_worker/v1", {}, "/edge_worker/v1/rpcapi"),
    ("edge_api_url", "https://user:pw@airflow.example.com/edge_worker/v1/rpcapi", {}, "no credentials"),
    ("edge_api_url", "https://airflow.example.com/edge_worker/v1/rpcapi?x=1", {}, "no query"),
    ("airflow_version", "3.1.0", {}, "3.1.0 is excluded by the provider"),
    ("airflow_version", "2.11.0", {}, "2.11 is not supported"),
    ("airflow_version", "latest", {}, "must be one of the releases"),
    ("edge_provider_version", "5.1.0", {"airflow_version": "2.10.5"}, "Airflow 2.10 takes edge3 1.x"),
    ("edge_provider_version", "1.5.0", {"airflow_version": "3.3.2"}, "Airflow 3 takes edge3 2.0.0 or newer"),
    ("edge_provider_version", "5.1.0", {"airflow_version": "3.3.2", "python_version": "3.10"}, "needs Python 3.11"),
    ("python_version", "3.9", {}, "Invalid choice"),
    ("base_image", "apache/airflow:2.10.5 && curl evil", {}, "Docker image reference"),
    ("edge_secret_name", "my secret", {}, "Secret Manager secret id"),
    ("queues", "team_c_queue", {}, "YAML list of queue names"),
    ("queues", [], {}, "at least one queue"),
    ("queues", ["a", "a"], {}, "must not repeat"),
    ("queues", ["a,b"], {}, "no commas or whitespace"),
    ("queues", ["has space"], {}, "no commas or whitespace"),
    ("pool_name", "team pool", {}, "pool_name must be"),
    ("pool_slots", 0, {}, "pool_slots must be 1 or more"),
    ("python_deps", "pandas", {}, "YAML list of requirement strings"),
    ("python_deps", ["git+https://github.com/org/pkg.git"], {}, "not a plain PEP 508 requirement"),
    ("python_deps", ["pkg @ https://example.com/pkg.whl"], {}, "not a plain PEP 508 requirement"),
    ("python_deps", ["--extra-index-url=https://evil"], {}, "not a plain PEP 508 requirement"),
    ("python_deps", ["pandas; rm -rf /"], {}, "not a plain PEP 508 requirement"),
    ("python_deps", ["requests$(id)"], {}, "not a plain PEP 508 requirement"),
    ("python_deps", ["apache-airflow==2.10.5"], {}, "pinned by the template"),
    ("python_deps", ["Apache_Airflow.Providers-Edge3>=1"], {}, "pinned by the template"),
    ("python_deps", ["pandas", "pandas"], {}, "must not repeat"),
    ("central_python_deps", "apache-airflow-providers-google", {}, "YAML list of requirement strings"),
    ("central_python_deps", ["--index-url=https://evil"], {}, "not a plain PEP 508 requirement"),
    ("central_python_deps", ["six; echo hi"], {}, "not a plain PEP 508 requirement"),
    ("central_python_deps", ["apache-airflow-providers-edge3==1.5.0"], {}, "pinned by the template"),
    ("central_python_deps", ["six", "six"], {}, "must not repeat"),
    ("deployment_target", "cloud-function", {}, "Invalid choice"),
    ("instances", 0, {}, "instances must be 1 to 100"),
    ("min_instances", 0, {"deployment_target": "service"}, "a poller that scales to zero never polls"),
    ("max_instances", 1, {"deployment_target": "service", "min_instances": 2}, "must be at least min_instances"),
    ("worker_concurrency", 0, {}, "worker_concurrency must be 1 to 64"),
    ("cpu", "0.5", {}, "Invalid choice"),
    ("memory", "2GB", {}, "whole number of Mi or Gi"),
    ("memory", "256Mi", {"worker_concurrency": 1}, "between 512Mi and 32Gi"),
    ("memory", "512Mi", {"worker_concurrency": 4}, "cannot hold the worker plus 4 running tasks"),
    ("memory", "6Gi", {"cpu": "1"}, "more than 4Gi needs 2 CPUs"),
    ("memory", "1Gi", {"cpu": "4"}, "4 CPUs need at least 2Gi"),
    ("job_poll_interval", 0, {}, "job_poll_interval must be 1 to 600"),
    ("job_poll_interval", 5, {"airflow_version": "2.10.5"}, "outlasts Cloud Run's 10 s"),
    ("heartbeat_interval", 9999, {}, "heartbeat_interval must be 1 to 600"),
    ("network_mode", "vpc-connector", {"deployment_target": "worker-pool"}, "worker pools support Direct VPC only"),
    ("vpc_network", "My_VPC", {"network_mode": "direct-vpc"}, "vpc_network must be"),
    ("vpc_subnet", "-sub", {"network_mode": "direct-vpc"}, "vpc_subnet must be"),
    (
        "vpc_connector",
        "a-connector-name-that-is-too-long",
        {"deployment_target": "service", "network_mode": "vpc-connector"},
        "vpc_connector must be",
    ),
    ("vpc_egress", "everything", {"network_mode": "direct-vpc"}, "Invalid choice"),
    ("dags_source", "git", {}, "Invalid choice"),
    ("dags_bucket", "Bad_Bucket!", {}, "dags_bucket must be a bucket name"),
    ("dags_bucket", "my-google-dags", {}, 'without "goog"'),
    ("dags_bucket_path", "../other-team", {}, "no '..' or leading '/'"),
    ("dags_bucket_path", "/abs", {}, "no '..' or leading '/'"),
]


@pytest.mark.parametrize(
    ("question", "value", "others", "rule"),
    BAD_ANSWERS,
    ids=[f"{q}={v!r}" for q, v, _, _ in BAD_ANSWERS],
)
def test_bad_answer_stops_copier_and_creates_nothing(
    tmp_path: Path, question: str, value: Any, others: dict[str, Any], rule: str
) -> None:
    dst = tmp_path / "team-c"
    stop = r"(Validation error for question|Invalid choice for) '" + question + "'"
    with pytest.raises(ValueError, match=stop) as err:
        render(dst, {"team_name": "team-c", **others, question: value})
    assert rule in str(err.value)
    assert not dst.exists()


def test_at_least_25_distinct_bad_answers_are_covered() -> None:
    assert len({(q, repr(v)) for q, v, _, _ in BAD_ANSWERS}) >= 25


def test_cli_prints_the_rule_and_exits_non_zero(tmp_path: Path) -> None:
    dst = tmp_path / "team-c"
    result = subprocess.run(
        [sys.executable, "-m", "copier", "copy", "--defaults", "--data", "region=mars-north1", str(ROOT), str(dst)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "Validation error for question 'region'" in result.stderr
    assert "must be a Cloud Run region" in result.stderr
    assert not dst.exists()


def test_team_name_defaults_to_the_destination_folder(render_to) -> None:
    repo = render_to({}, name="team-c")
    answers = load_answers(repo)
    assert answers["team_name"] == "team-c"
    assert answers["queues"] == ["team_c_queue"]
    assert answers["pool_name"] == "team_c_pool"


@pytest.mark.parametrize(
    ("answers", "expected_edge"),
    [
        ({"airflow_version": "2.10.5"}, "1.5.0"),
        ({"airflow_version": "2.10.0"}, "1.5.0"),
        ({"airflow_version": "3.3.2"}, "5.1.0"),
        ({"airflow_version": "3.0.6", "python_version": "3.10"}, "4.3.2"),
    ],
)
def test_edge_provider_version_follows_airflow_version(render_to, answers, expected_edge) -> None:
    repo = render_to({"team_name": "team-c", **answers})
    assert load_answers(repo)["edge_provider_version"] == expected_edge
    assert f'"apache-airflow-providers-edge3=={expected_edge}"' in (repo / "Dockerfile").read_text()


@pytest.mark.parametrize(("airflow_version", "poll"), [("2.10.5", 1), ("3.3.2", 5)])
def test_job_poll_interval_default_lets_a_shutdown_fit_cloud_run(render_to, airflow_version, poll) -> None:
    repo = render_to({"team_name": "team-c", "airflow_version": airflow_version})
    assert load_answers(repo)["job_poll_interval"] == poll
    assert f'AIRFLOW__EDGE__JOB_POLL_INTERVAL: "{poll}"' in (repo / "worker.env.yaml").read_text()


def test_every_question_has_a_default_so_bots_never_hit_a_prompt(tmp_path: Path) -> None:
    """`copier copy --defaults` with no --data and no terminal must succeed."""
    dst = tmp_path / "team-x"
    result = subprocess.run(
        [sys.executable, "-m", "copier", "copy", "--defaults", "--quiet", str(ROOT), str(dst)],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert load_answers(dst)["team_name"] == "team-x"
