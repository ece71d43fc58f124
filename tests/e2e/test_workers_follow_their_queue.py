"""An elastic worker pool follows its team's queue: from zero to its maximum and back, never
killing a running task.

Closed loop, nothing faked but Cloud Run: a real central Airflow site; the rendered scaler
(central/scale_team_e_workers.py) run as deployed, a process in the central site's environment;
a stand-in for the Cloud Run Admin API v2 and the metadata server (tests/support/cloud_run.py)
that turns each PATCHed instance count into real workers (the rendered entrypoint.sh) and
stops the newest with SIGTERM on a scale-in.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest
from support import harness
from support.cloud_run import WorkerPoolStandIn
from support.sites import TRACKS, running_central_site
from support.templates import render

pytestmark = [pytest.mark.e2e, pytest.mark.tracks("airflow3")]

BURST = 20
TASK_SECONDS = 4
SCALE_MAX = 3
IDLE_SECONDS = 20
PERIOD_SECONDS = 2

BURST_DAG = f'''"""A burst: {BURST} short tasks on the team's queue and pool."""

import time

from team_e import team_default_args

from airflow.sdk import DAG, task

with DAG(dag_id="team_e_burst", default_args=team_default_args(), schedule=None, catchup=False,
         max_active_tasks={BURST}):

    @task
    def crunch(part: int) -> int:
        time.sleep({TASK_SECONDS})
        return part

    crunch.expand(part=list(range({BURST})))
'''

ONE_DAG = '''"""One short task, later, when the pool is back at zero."""

import time

from team_e import team_default_args

from airflow.sdk import DAG, task

with DAG(dag_id="team_e_one", default_args=team_default_args(), schedule=None, catchup=False):

    @task
    def once() -> None:
        time.sleep(2)

    once()
'''


def when(value: object) -> float:
    return datetime.fromisoformat(str(value).replace(" ", "T")).timestamp()


def run_rows(central: harness.CentralSite, dag_id: str, run_id: str) -> list[list[object]]:
    return central.query(
        "SELECT state, try_number, queued_dttm, start_date, end_date FROM task_instance "
        f"WHERE dag_id = '{dag_id}' AND run_id = '{run_id}'"
    )


def all_succeeded(central: harness.CentralSite, dag_id: str, run_id: str, count: int) -> bool:
    rows = run_rows(central, dag_id, run_id)
    failed = [row for row in rows if row[0] in ("failed", "upstream_failed", "up_for_retry")]
    if failed:
        raise harness.HarnessError(f"{dag_id}: task instances failed or retried: {failed}")
    return len(rows) == count and all(row[0] == "success" for row in rows)


def test_the_pool_scales_out_for_a_burst_and_back_to_zero_without_killing_a_task(
    tmp_path: Path, edge_secret: str
) -> None:
    track = TRACKS["airflow3"]
    port = harness.free_port()
    logs = tmp_path / "logs"
    team_e = render(tmp_path / "team-e", {
        "team_name": "team-e", "airflow_version": track.airflow_version, "deployment_target": "worker-pool",
        "edge_api_url": f"http://127.0.0.1:{port}/edge_worker/v1/rpcapi", "job_poll_interval": 1,
        "heartbeat_interval": 5, "dags_source": "image", "dag_bundle_name": track.bundle,
        "worker_concurrency": 4, "pool_slots": 4 * SCALE_MAX, "autoscaling": True, "scale_min": 0,
        "scale_max": SCALE_MAX, "scale_in_idle_seconds": IDLE_SECONDS,
    })  # fmt: skip
    (team_e / "dags" / "team_e" / "burst_dag.py").write_text(BURST_DAG)
    (team_e / "dags" / "team_e" / "one_dag.py").write_text(ONE_DAG)

    with running_central_site(track, tmp_path, port, edge_secret, [team_e], logs) as central:
        pool = WorkerPoolStandIn(
            "team-e-edge-worker",
            lambda n: harness.start_worker(team_e, central.venv, edge_secret, logs, f"team-e-instance-{n}"),
        )
        base = pool.serve()
        scaler = harness.start(
            "scaler",
            [str(central.venv / "bin" / "python"), str(team_e / "central" / "scale_team_e_workers.py")],
            {**central.env, "EDGE_SCALER_RUN_API": base, "EDGE_SCALER_METADATA": base,
             "EDGE_SCALER_PERIOD_SECONDS": str(PERIOD_SECONDS)},
            logs,
        )  # fmt: skip
        try:
            begin = time.monotonic()
            # Idle: the scaler looks (its start line, then a few steps) and leaves the pool at 0.
            harness.wait_until("the scaler to start", lambda: "every 2 s" in scaler.text() or not scaler.alive(),
                               timeout=60)
            time.sleep(3 * PERIOD_SECONDS)
            assert scaler.alive(), scaler.text()[-3000:]
            assert pool.patches == []
            assert pool.running() == []

            # A burst: out to the maximum; every task succeeds at its first try.
            burst = central.trigger("team_e_burst")
            harness.wait_until("the pool at its maximum", lambda: pool.count == SCALE_MAX, timeout=120)
            harness.wait_until("every burst task to succeed",
                               lambda: all_succeeded(central, "team_e_burst", burst, BURST), timeout=600)
            rows = run_rows(central, "team_e_burst", burst)
            assert {int(row[1]) for row in rows} == {1}, rows  # no task was cut and retried

            # Idle again: back to zero, every instance stopped.
            harness.wait_until("the pool back at 0", lambda: pool.count == 0 and pool.patches[-1] == 0,
                               timeout=IDLE_SECONDS + 120)
            # One new task: from zero again, then back to zero.
            one = central.trigger("team_e_one")
            harness.wait_until("the single task to succeed", lambda: all_succeeded(central, "team_e_one", one, 1),
                               timeout=300)
            harness.wait_until("the pool back at 0 again", lambda: pool.count == 0 and len(pool.patches) >= 4,
                               timeout=IDLE_SECONDS + 120)
            end = time.monotonic()

            assert pool.refused == []
            assert pool.patches == [SCALE_MAX, 0, 1, 0]
            assert scaler.alive(), scaler.text()[-3000:]
            assert "step failed" not in scaler.text()
        finally:
            scaler.stop()
            pool.close()

    first = sorted(rows, key=lambda row: when(row[2]))[0]
    one_row = run_rows(central, "team_e_one", one)[0]
    makespan = max(when(row[4]) for row in rows) - min(when(row[2]) for row in rows)
    used = pool.instance_seconds(end)
    print(
        f"\nelastic: first burst task queued -> started from 0 instances: {when(first[3]) - when(first[2]):.1f} s; "
        f"single task queued -> started from 0: {when(one_row[3]) - when(one_row[2]):.1f} s; "
        f"burst of {BURST} x {TASK_SECONDS} s makespan (first queued -> last done): {makespan:.1f} s; "
        f"instance-seconds {used:.0f} vs {SCALE_MAX} always-on {SCALE_MAX * (end - begin):.0f} "
        f"over {end - begin:.0f} s ({used / (SCALE_MAX * (end - begin)):.0%}); PATCHes {pool.patches}"
    )
