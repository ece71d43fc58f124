"""How many idle Edge workers one central site carries, and how fast a worker picks up a task.

fleet: N simulated idle workers of team c, rendered with the template's defaults, each with its
own name, send edge3's own requests (bench/fleet_load.py, run with the site's venv) at the
rendered job_poll_interval and heartbeat_interval; N grows step by step until p99 passes 1 s
or errors begin. Per step: achieved polls/s, p50/p99 latency, the api-server's (2.10: the
webserver's) CPU time per poll, read from /proc for its whole process tree.

pickup: the rendered worker (entrypoint.sh) at the template's defaults; single-task DAG runs
triggered one after another at random moments; per task, edge_job's queued_dttm to the moment
a worker fetched it (its last_update when it left `queued`, kept by a database trigger),
against the floor job_poll_interval / 2 (a poller's mean wait for a task queued at a random
moment).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import sqlite3
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path

from support import harness
from support.sites import TRACKS, Track, central_extra, running_central_site
from support.templates import ROOT, render

HERE = Path(__file__).resolve().parent
LOAD = HERE / "fleet_load.py"

# Airflow 3 on PostgreSQL as well: the main airflow3 track runs on SQLite.
FLEET_TRACKS = {
    "airflow2": TRACKS["airflow2"],
    "airflow3": TRACKS["airflow3"],
    "airflow3-postgres": replace(TRACKS["airflow3"], name="airflow3-postgres", postgres=True),
}
PICKUP_TRACKS = ("airflow2", "airflow3")

STEPS = [25, 50, 100, 200, 300, 400, 600, 800, 1000, 1500, 2000]
P99_LIMIT = 1.0  # s
MAX_SECONDS = 420  # per site: the steps stop after this, broken or not
PICKUP_TASKS = 24

PICKUP_DAG = '''"""Bench DAG: one task that does nothing, to time the pickup."""

from {module} import team_default_args

try:
    from airflow.sdk import DAG, task
except ImportError:
    from airflow import DAG
    from airflow.decorators import task

with DAG(dag_id="{module}_pickup", default_args=team_default_args(retries=0), schedule=None, catchup=False,
         max_active_runs=64):

    @task
    def nothing() -> None:
        return None

    nothing()
'''


# Airflow 3 on PostgreSQL also opens an async engine: asyncpg beside psycopg2.
EXTRA = {"airflow3-postgres": ("psycopg2-binary", "asyncpg")}


@contextmanager
def central_site(track: Track, root: Path, port: int, secret: str, repo: Path, logs: Path
                 ) -> Iterator[harness.CentralSite]:
    """support.sites.running_central_site, with the packages the tracks defined here need."""
    if track.name not in EXTRA:
        with running_central_site(track, root, port, secret, [repo], logs) as central:
            yield central
        return
    venv_path = harness.airflow_venv(repo, extra=(*central_extra(track), *EXTRA[track.name]))
    with ExitStack() as stack:
        db = stack.enter_context(harness.postgres()) if track.postgres else None
        central = harness.CentralSite(venv_path, root / "central", port, secret, int(track.airflow_version[0]), db,
                                      logs)
        central.configure(harness.read_env_file(repo / "central" / "edge.env"), bundle=track.bundle)
        stack.callback(central.stop)
        central.migrate()
        central.add_team(repo)
        central.start()
        yield central


def secret_var(track: Track) -> str:
    """Where entrypoint.sh puts EDGE_SHARED_SECRET for the worker (the client reads it there)."""
    return "AIRFLOW__CORE__INTERNAL_API_SECRET_KEY" if track.airflow_version.startswith("2.") else \
        "AIRFLOW__API_AUTH__JWT_SECRET"


def team_repo(work: Path, track: Track, template: Path, port: int) -> Path:
    """Team c with the template's defaults; only what a local site needs is answered."""
    answers = {
        "team_name": "team-c", "airflow_version": track.airflow_version, "deployment_target": track.team_c_target,
        "edge_api_url": f"http://127.0.0.1:{port}/edge_worker/v1/rpcapi", "dags_source": "image",
        **dict(track.answers),
    }
    if track.airflow_version.startswith("3."):
        answers["dag_bundle_name"] = track.bundle
    return render(work / track.name / "team-c", answers, src=template, vcs_ref="v1.0.0")


def intervals(repo: Path) -> tuple[int, int]:
    env = harness.worker_env_file(repo)
    return int(env["AIRFLOW__EDGE__JOB_POLL_INTERVAL"]), int(env["AIRFLOW__EDGE__HEARTBEAT_INTERVAL"])


def site_shape(central: harness.CentralSite, track: Track) -> str:
    if central.airflow_major == 2:
        server = f"`airflow webserver`, {central.env['AIRFLOW__WEBSERVER__WORKERS']} gunicorn workers"
    else:
        server = f"`airflow api-server`, {central.env['AIRFLOW__API__WORKERS']} worker"
    db = "PostgreSQL" if central.db is not None else "SQLite"
    return f"{track.airflow_version}, {server}, {db}"


# --------------------------------------------------------------------------- fleet


def bench_fleet(work: Path, template: Path, track: Track) -> dict:
    port = harness.free_port()
    repo = team_repo(work, track, template, port)
    poll, heartbeat = intervals(repo)
    secret = secrets.token_urlsafe(64)
    logs = work / track.name / "logs"
    with central_site(track, work / track.name, port, secret, repo, logs) as central:
        server = central.procs[0]
        config = {
            "steps": STEPS, "poll": poll, "heartbeat": heartbeat, "window": max(15, 4 * poll),
            "queues": harness.worker_env_file(repo)["EDGE_WORKER_QUEUES"].split(","),
            "concurrency": int(harness.worker_env_file(repo)["EDGE_WORKER_CONCURRENCY"]),
            "prefix": "team-c-sim", "server_pid": server.pid, "p99_limit": P99_LIMIT, "max_seconds": MAX_SECONDS,
        }
        config_path = work / track.name / "fleet.json"
        config_path.write_text(json.dumps(config))
        home = work / track.name / "fleet-home"
        home.mkdir()
        # The rendered worker's environment, the secret where entrypoint.sh exports it, and no retries.
        env = {**harness.worker_env_file(repo), "PATH": f"{central.venv / 'bin'}:{os.environ['PATH']}",
               "HOME": str(home), "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(repo / "dags"),
               "AIRFLOW__EDGE__API_RETRIES": "1", secret_var(track): secret,
               "PYTHONPATH": str(ROOT / "tests")}  # fleet_load imports support.procs
        started = time.monotonic()
        result = subprocess.run([str(central.venv / "bin" / "python"), str(LOAD), str(config_path)], env=env,
                                capture_output=True, text=True, check=False, timeout=MAX_SECONDS + 600)
        took = time.monotonic() - started
        steps = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        if result.returncode != 0 or not steps:
            raise RuntimeError(f"fleet load generator failed ({result.returncode}):\n{result.stderr[-3000:]}")
        if not server.alive():
            raise RuntimeError(f"{server.name} died under load:\n{server.text()[-3000:]}")
        shape = site_shape(central, track)
        # gunicorn (2.10) kills a worker that has not answered its master for 120 s: say so, it served nothing.
        timeouts = server.text().count("WORKER TIMEOUT")
    return {"track": track.name, "shape": shape, "poll": poll, "heartbeat": heartbeat, "steps": steps,
            "took": took, "worker_timeouts": timeouts}


def breaking_point(fleet: dict) -> str:
    last = fleet["steps"][-1]
    if last["errors"]:
        return f"errors begin at N = {last['n']} ({last['errors']}, e.g. `{last['error_sample']}`)"
    if last["p99_ms"] > P99_LIMIT * 1000:
        return f"p99 passes 1 s at N = {last['n']}"
    return f"neither p99 > 1 s nor errors up to N = {last['n']} (the run's cap)"


def fleet_section(fleet: dict) -> tuple[str, list[str]]:
    title = f"### Fleet load ({fleet['track']})"
    lines = [
        f"{fleet['shape']}; simulated idle workers at the template's defaults: poll {fleet['poll']} s, "
        f"heartbeat {fleet['heartbeat']} s; edge3's own client, one process on the same 2 cores "
        f"({fleet['took']:.0f} s). CPU: the server's process tree over the window, per successful poll "
        "(heartbeats included).",
        "",
        "| N | offered polls/s | polls/s | p50 / p99 ms | heartbeats/s | CPU-ms per poll | server CPU | "
        "generator CPU | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for step in fleet["steps"]:
        lines.append(
            f"| {step['n']} | {step['offered_polls_per_s']:g} | {step['polls_per_s']:g} | "
            f"{step['p50_ms']:g} / {step['p99_ms']:g} | {step['heartbeats_per_s']:g} | {step['cpu_ms_per_poll']} | "
            f"{step['central_cpu_pct']:g}% | {step['generator_cpu_pct']:g}% | {step['errors']} |")
    lines += ["", f"Breaking point: {breaking_point(fleet)}."]
    if fleet.get("worker_timeouts"):
        lines.append(f"gunicorn killed {fleet['worker_timeouts']} hung worker(s) during the run (`WORKER TIMEOUT`, "
                     "after 120 s without answering its master): until then one worker fewer served.")
    return title, lines


# --------------------------------------------------------------------------- pickup


def record_pickups(central: harness.CentralSite) -> None:
    """A trigger on edge_job keeps the moment each job leaves `queued` (its last_update then)."""
    if central.db is not None:
        central.db.psql(
            "CREATE TABLE bench_pickup (run_id text, queued_dttm timestamptz, picked timestamptz);"
            "CREATE FUNCTION bench_pickup() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "INSERT INTO bench_pickup VALUES (NEW.run_id, NEW.queued_dttm, NEW.last_update); RETURN NEW; END $$;"
            "CREATE TRIGGER bench_pickup AFTER UPDATE ON edge_job FOR EACH ROW "
            "WHEN (OLD.state = 'queued' AND NEW.state <> 'queued') EXECUTE FUNCTION bench_pickup();")
        return
    with sqlite3.connect(central.home / "airflow.db", timeout=30) as conn:
        conn.executescript(
            "CREATE TABLE bench_pickup (run_id TEXT, queued_dttm TEXT, picked TEXT);"
            "CREATE TRIGGER bench_pickup AFTER UPDATE OF state ON edge_job "
            "WHEN OLD.state = 'queued' AND NEW.state != 'queued' BEGIN "
            "INSERT INTO bench_pickup VALUES (NEW.run_id, NEW.queued_dttm, NEW.last_update); END;")


def pickups(central: harness.CentralSite) -> dict[str, float]:
    if central.db is not None:
        sql = "SELECT run_id, EXTRACT(EPOCH FROM picked - queued_dttm) FROM bench_pickup"
    else:
        sql = "SELECT run_id, (julianday(picked) - julianday(queued_dttm)) * 86400.0 FROM bench_pickup"
    return {str(run_id): float(seconds) for run_id, seconds in central.query(sql)}


def bench_pickup(work: Path, template: Path, track: Track) -> dict:
    port = harness.free_port()
    root = work / f"{track.name}-pickup"
    repo = team_repo(root, track, template, port)
    (repo / "dags" / "team_c" / "pickup_dag.py").write_text(PICKUP_DAG.format(module="team_c"))
    poll, _ = intervals(repo)
    secret = secrets.token_urlsafe(64)
    logs = root / "logs"
    started = time.monotonic()
    with central_site(track, root / track.name, port, secret, repo, logs) as central:
        record_pickups(central)
        worker = harness.start_worker(repo, central.venv, secret, logs, "pickup")
        try:
            name = harness.wait_until("the pickup worker's name", worker.name, timeout=30)
            harness.wait_until(f"{name} registered", lambda: central.worker_rows().get(name) == "idle", timeout=90)
            central.airflow("dags", "unpause", "team_c_pickup")
            runs = []
            for index in range(PICKUP_TASKS):
                run_id = f"pickup_{index}_{time.time_ns()}"
                central.airflow("dags", "trigger", "team_c_pickup", "--run-id", run_id)
                runs.append(run_id)
                # A random moment in the worker's poll cycle for the next one.
                time.sleep(random.uniform(0, poll))  # noqa: S311 - not security
            seen = harness.wait_until(f"{PICKUP_TASKS} pickups", lambda: (p := pickups(central)) and
                                      all(run in p for run in runs) and p, timeout=300)
            hosts = {row[0] for row in central.query(
                "SELECT DISTINCT edge_worker FROM edge_job WHERE dag_id = 'team_c_pickup'")}
            if hosts != {name}:
                raise RuntimeError(f"pickup tasks ran on {hosts}, not only on {name}")
        finally:
            worker.stop(signal.SIGINT)
    values = [seen[run] for run in runs]
    return {"track": track.name, "poll": poll, "values": values, "took": time.monotonic() - started}


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]
