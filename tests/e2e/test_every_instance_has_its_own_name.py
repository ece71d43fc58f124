"""Two instances of one rendered repo (Cloud Run scaling out) register under different names."""

from __future__ import annotations

import subprocess

import pytest
from support.sites import WITH_AIRFLOW_2_11, Site


@pytest.mark.tracks(*WITH_AIRFLOW_2_11)
def test_two_instances_of_one_repo_register_under_different_names(site: Site) -> None:
    with site.running(site.team_c, "instance-1") as (first, name_1), \
            site.running(site.team_c, "instance-2") as (second, name_2):
        assert name_1 != name_2
        assert name_1.startswith("team-c-")
        assert name_2.startswith("team-c-")
        rows = site.central.worker_rows()
        assert rows[name_1] in ("idle", "running")
        assert rows[name_2] in ("idle", "running")
        assert first.proc.alive()
        assert second.proc.alive()


@pytest.mark.tracks("airflow2.11")  # edge3 1.6.0 (apache/airflow PR #58586); 1.5.0 takes the row over
def test_a_worker_that_takes_a_live_worker_s_name_is_refused_and_exits(site: Site) -> None:
    with site.running(site.team_c, "holder") as (holder, name):
        duplicate = site.worker(site.team_c, "duplicate", overrides={"EDGE_WORKER_NAME": name})
        try:
            try:
                code = duplicate.proc.popen.wait(60)
            except subprocess.TimeoutExpired as error:
                raise AssertionError(f"the duplicate did not exit:\n{duplicate.proc.text()[-3000:]}") from error
            assert code != 0
            assert f"A worker with the name '{name}' is already active" in duplicate.proc.text()
            assert site.central.worker_rows()[name] in ("idle", "running")
            assert holder.proc.alive()
        finally:
            duplicate.stop()
