"""The elastic-worker scenario, run by tests/e2e/test_workers_follow_their_queue.py and bench/.

A real central site (3.3.2 or 2.10.5, on PostgreSQL); the rendered scaler
(central/scale_team_e_workers.py) as a process in the central site's environment, as deployed;
a stand-in for the Cloud Run Admin API and the metadata server (support/cloud_run.py) that
turns each PATCHed count into real workers (the rendered entrypoint.sh). Idle at 0; a burst of
BURST short tasks; idle; one task; idle. The scenario waits (bounded) for each stage and
returns what it saw; it asserts nothing."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from support import harness
from support.cloud_run import WorkerPoolStandIn
from support.sites import TRACKS, Track, running_central_site
from support.templates import ROOT, render

BURST = 20
TASK_SECONDS = 4
SCALE_MAX = 3
IDLE_SECONDS = 20
PERIOD_SECONDS = 2
CONCURRENCY = 4

BURST_DAG = f'''"""A burst: {BURST} short tasks on the team's queue and pool."""

import time

from team_e import team_default_args

try:
    from airflow.sdk import DAG, task
except ImportError:
    from airflow import DAG
    from airflow.decorators import task

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

try:
    from airflow.sdk import DAG, task
except ImportError:
    from airflow import DAG
    from airflow.decorators import task

with DAG(dag_id="team_e_one", default_args=team_default_args(), schedule=None, catchup=False):

    @task
    def once() -> None:
        time.sleep(2)

    once()
'''


def when(value: object) -> float:
    text = str(value).replace(" ", "T")
    if re.search(r"[+-][0-9]{2}$", text):  # PostgreSQL's "+00"
        text += ":00"
    return datetime.fromisoformat(text).timestamp()


def run_rows(central: harness.CentralSite, dag_id: str, run_id: str) -> list[list[object]]:
    """(state, try_number, queued_dttm, start_date, end_date) of each task instance of the run."""
    return central.query(
        "SELECT state, try_number, queued_dttm, start_date, end_date FROM task_instance "
        f"WHERE dag_id = '{dag_id}' AND run_id = '{run_id}'"
    )


def all_succeeded(central: harness.CentralSite, dag_id: str, run_id: str, count: int) -> bool:
    rows = run_rows(central, dag_id, run_id)
    failed = [row for row in rows if row[0] in ("failed", "upstream_failed", "up_for_retry")]
    if failed:
        raise harness.HarnessError(f"{dag_id}: task instances failed or were retried: {failed}")
    return len(rows) == count and all(row[0] == "success" for row in rows)


def makespan(rows: list[list[object]]) -> float:
    """First task queued -> last task done."""
    return max(when(row[4]) for row in rows) - min(when(row[2]) for row in rows)


def queued_to_started(row: list[object]) -> float:
    return when(row[3]) - when(row[2])


@dataclass
class ElasticRun:
    patches: list[int] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    idle_patches: list[int] = field(default_factory=list)  # before the burst
    burst_rows: list[list[object]] = field(default_factory=list)
    one_rows: list[list[object]] = field(default_factory=list)
    scaler_log: str = ""
    scaler_alive: bool = False
    seconds: float = 0.0  # the scenario's wall time
    instance_seconds: float = 0.0
    fixed_rows: list[list[object]] = field(default_factory=list)  # the burst on one fixed instance

    @property
    def first_from_zero(self) -> float:
        return queued_to_started(min(self.burst_rows, key=lambda row: when(row[2])))

    @property
    def one_from_zero(self) -> float:
        return queued_to_started(self.one_rows[0])

    def figures(self) -> str:
        always_on = SCALE_MAX * self.seconds
        line = (
            f"first burst task queued -> started from 0 instances: {self.first_from_zero:.1f} s; "
            f"single task queued -> started from 0: {self.one_from_zero:.1f} s; "
            f"burst of {BURST} x {TASK_SECONDS} s makespan: {makespan(self.burst_rows):.1f} s"
        )
        if self.fixed_rows:
            line += f" (one fixed instance: {makespan(self.fixed_rows):.1f} s)"
        return line + (
            f"; instance-seconds {self.instance_seconds:.0f} vs {SCALE_MAX} always-on {always_on:.0f} over "
            f"{self.seconds:.0f} s ({self.instance_seconds / always_on:.0%}); PATCHes {self.patches}"
        )


def render_team_e(root: Path, port: int, track: Track, src: Path = ROOT, vcs_ref: str = "HEAD") -> Path:
    answers = {
        "team_name": "team-e", "airflow_version": track.airflow_version, "deployment_target": "worker-pool",
        "edge_api_url": f"http://127.0.0.1:{port}/edge_worker/v1/rpcapi", "job_poll_interval": 1,
        "heartbeat_interval": 5, "dags_source": "image", "worker_concurrency": CONCURRENCY,
        "pool_slots": CONCURRENCY * SCALE_MAX, "autoscaling": True, "scale_min": 0, "scale_max": SCALE_MAX,
        "scale_in_idle_seconds": IDLE_SECONDS, **dict(track.answers),
    }  # fmt: skip
    if track.airflow_version.startswith("3."):
        answers["dag_bundle_name"] = track.bundle
    team_e = render(root / "team-e", answers, src=src, vcs_ref=vcs_ref)
    (team_e / "dags" / "team_e" / "burst_dag.py").write_text(BURST_DAG)
    (team_e / "dags" / "team_e" / "one_dag.py").write_text(ONE_DAG)
    return team_e


def run_scenario(root: Path, secret: str, track: Track = TRACKS["airflow3"], src: Path = ROOT, vcs_ref: str = "HEAD",
                 fixed_floor: bool = False) -> ElasticRun:
    """The scenario; with fixed_floor, then the same burst on one always-on instance (no scaler).

    The central site runs on PostgreSQL on every track: edge3 hands a job to one worker with
    SELECT ... FOR UPDATE SKIP LOCKED, which SQLite ignores, so two of several workers polling
    at once can both take the same job there (seen on 3.3.2: the second fails the task with
    "TI was not in a state where it could be marked as running")."""
    track = replace(track, postgres=True)
    port = harness.free_port()
    logs = root / "logs"
    team_e = render_team_e(root, port, track, src, vcs_ref)
    result = ElasticRun()
    with running_central_site(track, root, port, secret, [team_e], logs) as central:
        pool = WorkerPoolStandIn(
            "team-e-edge-worker",
            lambda n: harness.start_worker(team_e, central.venv, secret, logs, f"team-e-instance-{n}"),
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
            # Idle: the scaler starts and takes a few steps; the pool should stay at 0.
            harness.wait_until("the scaler to start",
                               lambda: f"every {PERIOD_SECONDS} s" in scaler.text() or not scaler.alive(), timeout=60)
            time.sleep(3 * PERIOD_SECONDS)
            result.idle_patches = list(pool.patches)

            burst = central.trigger("team_e_burst")
            harness.wait_until("the pool at its maximum", lambda: pool.count == SCALE_MAX, timeout=120)
            harness.wait_until("every burst task to succeed",
                               lambda: all_succeeded(central, "team_e_burst", burst, BURST), timeout=600)
            result.burst_rows = run_rows(central, "team_e_burst", burst)
            harness.wait_until("the pool back at 0", lambda: pool.count == 0 and pool.patches[-1] == 0,
                               timeout=IDLE_SECONDS + 120)

            one = central.trigger("team_e_one")
            harness.wait_until("the single task to succeed",
                               lambda: all_succeeded(central, "team_e_one", one, 1), timeout=300)
            result.one_rows = run_rows(central, "team_e_one", one)
            harness.wait_until("the pool back at 0 again", lambda: pool.count == 0 and len(pool.patches) >= 4,
                               timeout=IDLE_SECONDS + 120)
            end = time.monotonic()
            result.seconds = end - begin
            result.instance_seconds = pool.instance_seconds(end)
        except harness.HarnessError as error:
            # What the workers and the scaler said, for the failure's cause.
            said = [f"--- {log.name}: " + " | ".join(
                line[-300:] for line in log.read_text(errors="replace").splitlines()
                if any(word in line for word in ("ERROR", "rror", "SIGTERM", "failed", "Traceback"))
            )[-3000:] for log in sorted(logs.glob("team-e-instance-*.log")) + [scaler.log]]
            raise harness.HarnessError(f"{error}\n" + "\n".join(said)) from error
        finally:
            result.scaler_alive = scaler.alive()
            scaler.stop()
            pool.close()
            result.patches, result.refused = list(pool.patches), list(pool.refused)
            result.scaler_log = scaler.text()
        if fixed_floor:
            worker = harness.start_worker(team_e, central.venv, secret, logs, "team-e-fixed")
            try:
                name = harness.wait_until("the fixed worker's name", worker.name, timeout=60)
                harness.wait_until("the fixed worker registered",
                                   lambda: central.worker_rows().get(name) == "idle", timeout=90)
                fixed = central.trigger("team_e_burst")
                harness.wait_until("every burst task to succeed on one instance",
                                   lambda: all_succeeded(central, "team_e_burst", fixed, BURST), timeout=600)
                result.fixed_rows = run_rows(central, "team_e_burst", fixed)
            finally:
                worker.stop()
    return result
