"""The elastic-worker scenario, run by tests/e2e/test_workers_follow_their_queue.py and bench/.

A real central site (3.3.2 or 2.10.5, on PostgreSQL) with two elastic teams of different
bounds: team-e (0 to SCALE_MAX instances of CONCURRENCY slots) and team-f (F_MIN to F_MAX
instances of 1 slot). The platform's one scaler (platform/edge_site.py scale) runs as a process
in the central site's environment, as deployed; a stand-in for the Cloud Run Admin API and the
metadata server (support/cloud_run.py) turns each PATCHed count into real workers (the rendered
entrypoint.sh of that team). Idle; a burst of BURST short tasks of team-e, with the fleet view
taken while it runs; idle; PAIR tasks of team-f; idle. The scenario waits (bounded) for each
stage and returns what it saw; it asserts nothing."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from support import harness
from support.cloud_run import CloudRunStandIn, WorkerPoolStandIn
from support.sites import TRACKS, Track, running_central_site, site_answers
from support.templates import ROOT, render

BURST = 20
TASK_SECONDS = 4
SCALE_MAX = 3
IDLE_SECONDS = 20
PERIOD_SECONDS = 2
CONCURRENCY = 4
# team-f: always one instance, a second for a pair of tasks (one slot each).
F_MIN, F_MAX, PAIR = 1, 2, 2

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

PAIR_DAG = f'''"""A pair of short tasks of team-f: one slot each, so two instances."""

import time

from team_f import team_default_args

try:
    from airflow.sdk import DAG, task
except ImportError:
    from airflow import DAG
    from airflow.decorators import task

with DAG(dag_id="team_f_pair", default_args=team_default_args(), schedule=None, catchup=False):

    @task
    def part(number: int) -> int:
        time.sleep({TASK_SECONDS})
        return number

    part.expand(number=list(range({PAIR})))
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
    patches: dict[str, list[int]] = field(default_factory=dict)  # per team, every PATCHed count
    refused: list[str] = field(default_factory=list)
    idle_patches: dict[str, list[int]] = field(default_factory=dict)  # before any task
    f_patches_during_burst: list[int] = field(default_factory=list)  # team-f's, when team-e's burst is done
    e_patches_during_pair: list[int] = field(default_factory=list)  # team-e's, when team-f's pair is done
    burst_rows: list[list[object]] = field(default_factory=list)
    pair_rows: list[list[object]] = field(default_factory=list)
    fleet: str = ""  # the fleet view's output while team-e's burst runs
    history: str = ""  # the scaler's --history file
    chart: str = ""  # the kit's chart of it (SVG)
    fleet_rc: int | None = None
    scaler_log: str = ""
    scaler_alive: bool = False
    seconds: float = 0.0  # the scenario's wall time
    instance_seconds: float = 0.0  # team-e's
    fixed_rows: list[list[object]] = field(default_factory=list)  # the burst on one fixed instance

    @property
    def first_from_zero(self) -> float:
        return queued_to_started(min(self.burst_rows, key=lambda row: when(row[2])))

    def figures(self) -> str:
        always_on = SCALE_MAX * self.seconds
        line = (
            f"first burst task queued -> started from 0 instances: {self.first_from_zero:.1f} s; "
            f"burst of {BURST} x {TASK_SECONDS} s makespan: {makespan(self.burst_rows):.1f} s"
        )
        if self.fixed_rows:
            line += f" (one fixed instance: {makespan(self.fixed_rows):.1f} s)"
        return line + (
            f"; team-e instance-seconds {self.instance_seconds:.0f} vs {SCALE_MAX} always-on {always_on:.0f} over "
            f"{self.seconds:.0f} s ({self.instance_seconds / always_on:.0%}); PATCHes {self.patches}"
        )


def render_team(root: Path, name: str, port: int, track: Track, src: Path, vcs_ref: str, **answers: object) -> Path:
    data = {
        "team_name": name, "deployment_target": "worker-pool", "autoscaling": True,
        "scale_in_idle_seconds": IDLE_SECONDS, **site_answers(track, port), **answers,
    }  # fmt: skip
    if track.airflow_version.startswith("3."):
        data["dag_bundle_name"] = track.bundle
    return render(root / name, data, src=src, vcs_ref=vcs_ref)


def run_scenario(root: Path, secret: str, track: Track = TRACKS["airflow3"], src: Path = ROOT, vcs_ref: str = "HEAD",
                 fixed_floor: bool = False) -> ElasticRun:
    """The scenario; with fixed_floor, then team-e's burst on one always-on instance (no scaler).

    The central site runs on PostgreSQL on every track: edge3 hands a job to one worker with
    SELECT ... FOR UPDATE SKIP LOCKED, which SQLite ignores, so two of several workers polling
    at once can both take the same job there (seen on 3.3.2: the second fails the task with
    "TI was not in a state where it could be marked as running")."""
    track = replace(track, postgres=True)
    port = harness.free_port()
    logs = root / "logs"
    team_e = render_team(root, "team-e", port, track, src, vcs_ref, worker_concurrency=CONCURRENCY,
                         pool_slots=CONCURRENCY * SCALE_MAX, scale_min=0, scale_max=SCALE_MAX)
    (team_e / "dags" / "team_e" / "burst_dag.py").write_text(BURST_DAG)
    team_f = render_team(root, "team-f", port, track, src, vcs_ref, worker_concurrency=1, pool_slots=F_MAX,
                         scale_min=F_MIN, scale_max=F_MAX)
    (team_f / "dags" / "team_f" / "pair_dag.py").write_text(PAIR_DAG)
    kit = [str(src / "platform" / "edge_site.py")]
    result = ElasticRun()
    with running_central_site(track, root, port, secret, [team_e, team_f], logs) as central:
        def pool_of(repo: Path, name: str) -> WorkerPoolStandIn:
            return WorkerPoolStandIn(f"{name}-edge-worker", lambda n: harness.start_worker(
                repo, central.venv, secret, logs, f"{name}-instance-{n}"))

        pool_e, pool_f = pool_of(team_e, "team-e"), pool_of(team_f, "team-f")
        cloud_run = CloudRunStandIn({pool.name: pool for pool in (pool_e, pool_f)})
        base = cloud_run.serve()
        env = {**central.env, "EDGE_SCALER_RUN_API": base, "EDGE_SCALER_METADATA": base,
               "EDGE_SCALER_PERIOD_SECONDS": str(PERIOD_SECONDS)}  # fmt: skip
        python = str(central.venv / "bin" / "python")
        history = root / "scaler-history.csv"
        scaler = harness.start("scaler", [python, *kit, "scale", "--history", str(history)], env, logs)
        try:
            begin = time.monotonic()
            # Idle: the scaler starts and brings team-f to its minimum; team-e stays at 0.
            harness.wait_until("the scaler to start",
                               lambda: f"every {PERIOD_SECONDS} s" in scaler.text() or not scaler.alive(), timeout=60)
            harness.wait_until("team-f at its minimum", lambda: pool_f.count == F_MIN, timeout=60)
            time.sleep(3 * PERIOD_SECONDS)
            result.idle_patches = {"team-e": list(pool_e.patches), "team-f": list(pool_f.patches)}

            burst = central.trigger("team_e_burst")
            harness.wait_until("team-e's pool at its maximum", lambda: pool_e.count == SCALE_MAX, timeout=120)
            # The fleet view while both teams have live workers: team-e's first instance is busy.
            harness.wait_until("a worker of each team live", lambda: {
                name.rsplit("-", 1)[0] for name, state in central.worker_rows().items() if state in ("idle", "running")
            } >= {"team-e", "team-f"}, timeout=120)  # fmt: skip
            fleet = harness.start("fleet", [python, *kit, "fleet"], env, logs)
            harness.wait_until("the fleet view", lambda: not fleet.alive(), timeout=120)
            result.fleet, result.fleet_rc = fleet.text(), fleet.popen.returncode
            harness.wait_until("every burst task to succeed",
                               lambda: all_succeeded(central, "team_e_burst", burst, BURST), timeout=600)
            result.burst_rows = run_rows(central, "team_e_burst", burst)
            harness.wait_until("team-e's pool back at 0", lambda: pool_e.count == 0 and pool_e.patches[-1] == 0,
                               timeout=IDLE_SECONDS + 120)
            result.f_patches_during_burst = list(pool_f.patches)

            pair = central.trigger("team_f_pair")
            harness.wait_until("team-f's pair to succeed",
                               lambda: all_succeeded(central, "team_f_pair", pair, PAIR), timeout=300)
            result.pair_rows = run_rows(central, "team_f_pair", pair)
            result.e_patches_during_pair = list(pool_e.patches)
            harness.wait_until("team-f back at its minimum", lambda: pool_f.count == F_MIN and len(pool_f.patches) >= 3,
                               timeout=IDLE_SECONDS + 120)
            end = time.monotonic()
            result.seconds = end - begin
            result.instance_seconds = pool_e.instance_seconds(end)
        except harness.HarnessError as error:
            # What the workers and the scaler said, for the failure's cause.
            said = [f"--- {log.name}: " + " | ".join(
                line[-300:] for line in log.read_text(errors="replace").splitlines()
                if any(word in line for word in ("ERROR", "rror", "SIGTERM", "failed", "Traceback"))
            )[-3000:] for log in sorted(logs.glob("team-*-instance-*.log")) + [scaler.log]]
            raise harness.HarnessError(f"{error}\n" + "\n".join(said)) from error
        finally:
            result.scaler_alive = scaler.alive()
            scaler.stop()
            cloud_run.close()
            result.patches = {"team-e": list(pool_e.patches), "team-f": list(pool_f.patches)}
            result.refused = list(cloud_run.refused)
            result.scaler_log = scaler.text()
            if history.exists():
                result.history = history.read_text()
                drawn = subprocess.run([python, *kit, "chart", str(history)], capture_output=True, text=True,
                                       timeout=60, check=False)
                result.chart = drawn.stdout if drawn.returncode == 0 else drawn.stderr
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
