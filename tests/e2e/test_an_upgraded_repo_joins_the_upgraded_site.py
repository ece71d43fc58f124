"""A team repo rendered for Airflow 2.10 takes the README's upgrade and its worker joins a 3.3 site."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import harness
from support.sites import Site
from support.templates import team_repo_at
from support.upgrades import assert_built_for, upgrade


@pytest.mark.parametrize("site", ["airflow3"], indirect=True)
def test_the_upgraded_worker_registers_on_the_upgraded_central_site(
    site: Site, template_releases: Path, tmp_path: Path
) -> None:
    repo = team_repo_at(template_releases, tmp_path / "team-c", "v1.0.0", {
        "airflow_version": "2.10.5", "edge_api_url": site.central.api_url, "job_poll_interval": 1,
        "heartbeat_interval": 5, "dags_source": "image",
    })

    upgrade(repo, site.track.airflow_version, "5.1.0")

    assert_built_for(repo, site.track.airflow_version, "5.1.0")
    # The venv holds what the upgraded Dockerfile installs (the same pins as the site's).
    assert harness.airflow_venv(repo) == site.venv
    worker = site.worker(repo, "upgraded")
    try:
        name = site.registered(worker)
        assert name.startswith("team-c-")
    finally:
        worker.stop()
