"""A team repo that never typed its site's versions follows the site's upgrade from Airflow 2.10 to 3.3
through an unattended `copier update`, and its worker joins the upgraded central site."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import harness
from support.sites import Site
from support.templates import snapshot_template, team_repo_at
from support.upgrades import assert_built_for, site_release, take_release


@pytest.mark.parametrize("site", ["airflow3"], indirect=True)
def test_the_upgraded_worker_registers_on_the_upgraded_central_site(site: Site, tmp_path: Path) -> None:
    template = snapshot_template(tmp_path / "edge-template")
    local = {"edge_api_url": site.central.api_url, "job_poll_interval": 1, "heartbeat_interval": 5,
             "dags_source": "image"}
    site_release(template, "v1.1.0", airflow_version="2.10.5", edge_provider_version="1.5.0", **local)
    repo = team_repo_at(template, tmp_path / "team-c", "v1.1.0")  # the team answers only its name
    assert_built_for(repo, "2.10.5", "1.5.0")

    site_release(template, "v1.2.0", airflow_version=site.track.airflow_version, edge_provider_version="5.1.0",
                 dag_bundle_name=site.track.bundle, **local)
    take_release(repo, "v1.2.0")

    assert_built_for(repo, site.track.airflow_version, "5.1.0")
    # The venv holds what the upgraded Dockerfile installs (the same pins as the site's).
    assert harness.airflow_venv(repo) == site.venv
    worker = site.worker(repo, "upgraded")
    try:
        name = site.registered(worker)
        assert name.startswith("team-c-")
    finally:
        worker.stop()
