"""Airflow 3 central sites as they are in production: a DAG bundle of their own name, and the
api-server behind a load balancer under a path prefix that must route both /edge_worker/ and
/execution/ to it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from support import harness
from support.proxy import prefix_proxy
from support.sites import Site
from support.templates import render

# Airflow 3's default [dag_processor] dag_bundle_config_list.
AIRFLOW_DEFAULT_BUNDLES = json.dumps(
    [{"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {}}]
)

pytestmark = pytest.mark.tracks("airflow3")


def team_c_at(site: Site, tmp_path: Path, **answers: object) -> Path:
    """Team c's repo rendered again with other answers (same pins, so the same venv)."""
    return render(tmp_path / "team-c", {**site.answers, **answers})


def exit_code(worker: harness.Worker, timeout: float = 60) -> int:
    try:
        return worker.proc.popen.wait(timeout)
    except subprocess.TimeoutExpired as error:
        raise harness.HarnessError(f"the entrypoint did not exit:\n{worker.proc.text()[-3000:]}") from error


def test_a_task_from_a_bundle_of_another_name_runs_on_the_worker(site: Site) -> None:
    assert site.track.bundle == "team-dags"
    bundles = site.central.query("SELECT bundle_name FROM dag WHERE dag_id = 'team_c_example'")
    assert bundles == [["team-dags"]]
    configured = json.loads(harness.worker_env_file(site.team_c)["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
    assert configured == [
        {"name": "team-dags", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {}}
    ]
    worker = site.worker(site.team_c, "bundle-team-dags")
    try:
        name = site.registered(worker)
        run_id = site.central.trigger("team_c_example")
        assert site.finished("team_c_example", run_id) == {
            "state": "success", "hostname": name, "queue": "team_c_queue", "pool": "team_c_pool"
        }
    finally:
        worker.stop()


def test_a_worker_that_knows_only_dags_folder_fails_the_task(site: Site) -> None:
    """Without the rendered bundle setting (what the template did before): the finding itself."""
    worker = site.worker(site.team_c, "bundle-missing",
                         overrides={"AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": AIRFLOW_DEFAULT_BUNDLES})
    try:
        site.registered(worker)
        run_id = site.central.trigger("team_c_example")
        ti = harness.wait_until(
            "the task to fail on the worker",
            lambda: (ti := site.central.task_instance("team_c_example", run_id))
            and ti["state"] in ("up_for_retry", "failed") and ti,
            timeout=120,
        )
        assert ti["state"] in ("up_for_retry", "failed")
        logs = worker.proc.text() + "".join(
            p.read_text(errors="replace") for p in (worker.home / "logs").rglob("*") if p.is_file()
        )
        assert "Requested bundle 'team-dags' is not configured" in logs
    finally:
        worker.stop()
        site.central.airflow("dags", "pause", "team_c_example")


def test_behind_a_prefix_proxy_with_both_routes_the_task_succeeds(site: Site, tmp_path: Path) -> None:
    with prefix_proxy(site.central.port, "/airflow", ("/edge_worker/", "/execution/")) as proxy:
        base = f"http://127.0.0.1:{proxy.server_address[1]}/airflow"
        repo = team_c_at(site, tmp_path, edge_api_url=f"{base}/edge_worker/v1/rpcapi")
        env = harness.worker_env_file(repo)
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"{base}/execution"
        worker = site.worker(repo, "proxy-both-routes")
        try:
            name = site.registered(worker)
            assert f"Execution API is up at {base}/execution/health" in worker.proc.text()
            site.central.airflow("dags", "unpause", "team_c_example")
            run_id = site.central.trigger("team_c_example")
            assert site.finished("team_c_example", run_id)["state"] == "success", worker.proc.text()[-3000:]
            assert site.central.task_instance("team_c_example", run_id)["hostname"] == name
            # The task really went through the proxy's /execution/ route.
            assert any(line.startswith(("PATCH /airflow/execution/", "PUT /airflow/execution/"))
                       for line in proxy.seen), proxy.seen[-20:]
        finally:
            worker.stop()


def test_with_only_edge_worker_routed_the_entrypoint_names_the_execution_api_url(
    site: Site, tmp_path: Path
) -> None:
    with prefix_proxy(site.central.port, "/airflow", ("/edge_worker/",)) as proxy:
        base = f"http://127.0.0.1:{proxy.server_address[1]}/airflow"
        repo = team_c_at(site, tmp_path, edge_api_url=f"{base}/edge_worker/v1/rpcapi")
        worker = site.worker(repo, "proxy-edge-only", overrides={"EDGE_API_WAIT_SECONDS": "3"})
        try:
            assert exit_code(worker) == 1
            text = worker.proc.text()
            assert f"Edge API is up at {base}/edge_worker/v1/health" in text
            assert f"Execution API not reachable at {base}/execution/health after 3 s (HTTP 404)" in text
            assert "entrypoint: ERROR:" in text
            assert "worker name" not in text  # the worker never started
        finally:
            worker.stop()
