"""A team's DAG task runs on that team's Edge worker, on its queue and pool, and on no other team's."""

from __future__ import annotations

import time

import pytest
from support.sites import WITH_AIRFLOW_2_11, Site

pytestmark = pytest.mark.tracks(*WITH_AIRFLOW_2_11)


def test_each_team_task_runs_on_its_own_worker(site: Site) -> None:
    with site.running(site.team_c, "team-c-worker") as (_, name_c), \
            site.running(site.team_a, "team-a-worker") as (_, name_a):
        run_c = site.central.trigger("team_c_example")
        run_a = site.central.trigger("team_a_example")

        ti_c = site.finished("team_c_example", run_c)
        ti_a = site.finished("team_a_example", run_a)

        assert ti_c == {"state": "success", "hostname": name_c, "queue": "team_c_queue", "pool": "team_c_pool"}
        assert ti_a == {"state": "success", "hostname": name_a, "queue": "team_a_queue", "pool": "team_a_pool"}


def test_another_team_worker_never_takes_the_task(site: Site) -> None:
    worker_a = site.worker(site.team_a, "team-a-only")
    worker_c = None
    try:
        name_a = site.registered(worker_a)
        run_c = site.central.trigger("team_c_example")
        # Several poll intervals (1 s) with only team a's worker alive: the task must wait.
        site.task_in("team_c_example", run_c, ("queued",), timeout=60)
        time.sleep(8)
        assert site.central.task_instance("team_c_example", run_c)["state"] == "queued"
        jobs = site.central.query(f"SELECT edge_worker FROM edge_job WHERE run_id = '{run_c}'")
        assert [row[0] for row in jobs if row[0]] == []

        worker_c = site.worker(site.team_c, "team-c-late")
        name_c = site.registered(worker_c)
        ti_c = site.finished("team_c_example", run_c)
        assert ti_c["state"] == "success"
        assert ti_c["hostname"] == name_c != name_a
    finally:
        worker_a.stop()
        if worker_c:
            worker_c.stop()
