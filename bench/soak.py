"""Soak: one worker runs many short tasks with a restart in the middle; is everything bounded?

The rendered worker (entrypoint.sh, with its log pruner) serves a real central site of the
track. Two DAG runs of SOAK_TASKS / 2 mapped tasks each; between them the worker gets SIGTERM
and a new instance starts, as a redeploy would. Figures at 0, half and all tasks done: the
container's memory (its process tree's RSS plus the task log folder, which Cloud Run holds in
memory), the log folder's size, and the central site's worker rows for the team. The pruner's
bound is set low (EDGE_LOG_KEEP_MIB=SOAK_KEEP_MIB) so that the run crosses it.
"""

from __future__ import annotations

import secrets
import signal
import time
from pathlib import Path

from support import harness
from support.sites import Track, running_central_site
from support.templates import render

SOAK_TASKS = 500
SOAK_KEEP_MIB = 1
SOAK_DAG = '''"""Soak: many short mapped tasks on the team's worker."""

from team_c import team_default_args


try:
    from airflow.sdk import DAG, task
except ImportError:
    from airflow import DAG
    from airflow.decorators import task

with DAG(dag_id="team_c_soak", default_args=team_default_args(), schedule=None, catchup=False,
         max_active_tasks=16):

    @task
    def short(index: int) -> int:
        print("soak task", index, "x" * 2000)
        return index

    short.expand(index=list(range({count})))
'''


def folder_mib(path: Path) -> float:
    if not path.exists():
        return 0.0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def tree_rss(pid: int) -> float:
    return sum(harness.rss_mib(p) for p in [pid, *harness.descendants(pid)] if harness.alive(p))


def succeeded(central: harness.CentralSite, run_id: str) -> int:
    rows = central.query("SELECT count(*) FROM task_instance WHERE dag_id = 'team_c_soak' "
                         f"AND run_id = '{run_id}' AND state = 'success'")
    return int(rows[0][0])


def team_rows(central: harness.CentralSite) -> dict[str, str]:
    return {name: state for name, state in central.worker_rows().items() if name.startswith("team-c-")}


def bench_soak(work: Path, template: Path, track: Track, tasks: int = SOAK_TASKS) -> list[str]:
    """Markdown lines: a table of the figures at 0, tasks/2 and tasks done."""
    port = harness.free_port()
    root = work / f"{track.name}-soak"
    answers = {
        "team_name": "team-c", "airflow_version": track.airflow_version, "deployment_target": "worker-pool",
        "edge_api_url": f"http://127.0.0.1:{port}/edge_worker/v1/rpcapi", "dags_source": "image",
        **dict(track.answers),
    }
    if track.airflow_version.startswith("3."):
        answers["dag_bundle_name"] = track.bundle
    repo = render(root / "team-c", answers, src=template, vcs_ref="v1.0.0")
    half = tasks // 2
    (repo / "dags" / "team_c" / "soak_dag.py").write_text(SOAK_DAG.replace("{count}", str(half)))
    secret = secrets.token_urlsafe(64)
    logs = root / "logs"
    overrides = {"EDGE_LOG_KEEP_MIB": str(SOAK_KEEP_MIB), "EDGE_LOG_PRUNE_SECONDS": "5"}
    figures: list[tuple[str, float, float, float, int]] = []
    started = time.monotonic()
    with running_central_site(track, root, port, secret, [repo], logs) as central:
        worker = harness.start_worker(repo, central.venv, secret, logs, "soak-1", overrides=overrides)

        def sample(label: str, worker: harness.Worker) -> None:
            time.sleep(6)  # one pruner pass after the last task
            log_mib = folder_mib(worker.home / "logs")
            rss = tree_rss(worker.proc.pid)
            figures.append((label, rss + log_mib, rss, log_mib, len(team_rows(central))))

        try:
            harness.wait_until("the soak worker registered",
                               lambda: any(s in ("idle", "running") for s in team_rows(central).values()), 120)
            sample("0 tasks", worker)
            for index, label in ((1, f"{half} tasks, then a restart"), (2, f"{2 * half} tasks")):
                run_id = central.trigger("team_c_soak")
                harness.wait_until(f"{half} soak tasks of run {index}", lambda run_id=run_id: succeeded(
                    central, run_id) >= half, timeout=3600, interval=5)
                sample(label, worker)
                if index == 1:
                    worker.stop(signal.SIGTERM)
                    worker = harness.start_worker(repo, central.venv, secret, logs, "soak-2", overrides=overrides)
                    harness.wait_until("the second soak instance registered",
                                       lambda: sum(s in ("idle", "running") for s in team_rows(central).values()), 120)
        finally:
            worker.stop(signal.SIGTERM)
    lines = [
        f"{track.airflow_version}; one worker (concurrency {harness.worker_env_file(repo)['EDGE_WORKER_CONCURRENCY']}, "
        f"poll {harness.worker_env_file(repo)['AIRFLOW__EDGE__JOB_POLL_INTERVAL']} s) runs {2 * half} mapped tasks "
        f"that print 2 KB each, SIGTERM and a new instance after {half}; log pruner bound {SOAK_KEEP_MIB} MiB "
        f"(the template's is larger); {time.monotonic() - started:.0f} s in all. Worker rows: the team's rows at "
        "the central site (the stopped instance's stays offline until the clean-up in central/ removes it).",
        "",
        "| after | container MiB (RSS + logs) | processes RSS MiB | log folder MiB | team worker rows |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {label} | {total:.0f} | {rss:.0f} | {log:.2f} | {rows} |" for label, total, rss, log, rows in figures]
    return lines
