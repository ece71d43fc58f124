"""What a team sees when something is wrong: one clear line, a non-zero exit, and Cloud Run restarts it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from support.harness import HarnessError, all_pids, cmdline, free_port, wait_until
from support.sites import ALL_TRACKS, WITH_AIRFLOW_2_11, Site


def exit_code(worker, timeout: float = 60) -> int:
    try:
        return worker.proc.popen.wait(timeout)
    except subprocess.TimeoutExpired as error:
        raise HarnessError(f"the entrypoint did not exit:\n{worker.proc.text()[-3000:]}") from error


def health(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def service_repo(site: Site):
    return site.team_c if site.track.team_c_target == "service" else site.team_a


@pytest.mark.tracks(*WITH_AIRFLOW_2_11)
def test_a_wrong_secret_ends_the_entrypoint_with_the_403(site: Site) -> None:
    worker = site.worker(site.team_c, "wrong-secret", secret="not-the-central-secret-" + "x" * 48)
    try:
        assert exit_code(worker) != 0
        # 2.10: "403 Client Error: FORBIDDEN for url"; 3.x: "403 ... Forbidden".
        assert re.search(r"403\b.*forbidden", worker.proc.text(), re.IGNORECASE)
    finally:
        worker.stop()


@pytest.mark.parametrize(
    ("missing", "line"),
    [
        ("EDGE_SHARED_SECRET", "entrypoint: ERROR: EDGE_SHARED_SECRET is not set"),
        ("AIRFLOW__EDGE__API_URL", "entrypoint: ERROR: AIRFLOW__EDGE__API_URL is not set"),
    ],
)
def test_a_missing_setting_stops_at_once_with_one_clear_line(site: Site, missing: str, line: str) -> None:
    worker = site.worker(site.team_c, f"missing-{missing}", overrides={missing: ""})
    try:
        assert exit_code(worker, timeout=30) == 1
        assert line in worker.proc.text()
        assert "airflow edge worker" not in worker.proc.text().lower()
    finally:
        worker.stop()


def test_an_unreachable_edge_api_is_named_after_a_bounded_wait(site: Site) -> None:
    dead = f"http://127.0.0.1:{free_port()}/edge_worker/v1/rpcapi"
    worker = site.worker(site.team_c, "unreachable",
                         overrides={"AIRFLOW__EDGE__API_URL": dead, "EDGE_API_WAIT_SECONDS": "3"})
    try:
        assert exit_code(worker, timeout=30) == 1
        assert f"Edge API not reachable at {dead.removesuffix('/rpcapi')}/health after 3 s" in worker.proc.text()
    finally:
        worker.stop()


def test_health_answers_200_then_503_when_the_worker_dies_and_the_container_exits(site: Site) -> None:
    worker = site.worker(service_repo(site), "health")
    try:
        wait_until("the health port to answer 200", lambda: health(worker.port) == 200, timeout=30, interval=0.2)
        site.registered(worker)
        assert health(worker.port) == 200
        worker_pid = wait_until("the worker pid file", worker.worker_pid, timeout=10)
        os.kill(worker_pid, signal.SIGKILL)
        wait_until("the health path to answer 503", lambda: health(worker.port) == 503, timeout=10, interval=0.2)
        assert exit_code(worker, timeout=30) != 0
        assert "exited on its own" in worker.proc.text()
    finally:
        worker.stop()


def test_sigterm_leaves_the_worker_offline_at_the_central_site(site: Site) -> None:
    worker = site.worker(site.team_c, "sigterm")
    try:
        name = site.registered(worker)
        worker.proc.popen.send_signal(signal.SIGTERM)
        assert exit_code(worker, timeout=30) == 0
        assert site.central.worker_rows()[name] == "offline"
    finally:
        worker.stop()


def task_needles(site: Site, dag_id: str, run_id: str) -> list[str]:
    """What the command lines of a running task's processes hold: the run id (2.10, edge
    supervisors before 3.3) or the task instance id (Airflow 3's "airflow worker -- <id>";
    the id changes with each try, so take it while the task runs)."""
    needles = [run_id]
    if site.track.airflow_version.startswith("3."):
        rows = site.central.query(f"SELECT id FROM task_instance WHERE dag_id = '{dag_id}' AND run_id = '{run_id}'")
        needles += [str(row[0]).replace("-", "") for row in rows]
    return needles


def task_pids(needles: list[str]) -> list[int]:
    """Live processes whose command line holds one of `needles`, wherever they are in the process tree."""
    return [pid for pid in all_pids() if any(n in cmdline(pid).replace("-", "") for n in needles)]


# The template's default job_poll_interval is 1 s on Airflow 2.10 and 5 s on 3.x. On 2.10 it
# allows at most 2 s: a draining edge3 1.x worker sleeps it between checks, so the shutdown must
# fit Cloud Run's 10 s with it. On Airflow 3 the default is also the most it allows: when a
# terminated task ends just before edge3 5.1.0's shutdown check, it sleeps one full interval
# more (seen on 3.0.6: 30 s at 30). bench/run.py's `shutdown` measures it at the slowest allowed.


@pytest.mark.tracks(*ALL_TRACKS)
def test_sigterm_during_a_task_fails_it_for_a_retry_and_goes_offline(site: Site) -> None:
    poll_interval = "1" if site.track.airflow_version.startswith("2.") else "5"
    worker = site.worker(site.team_c, "sigterm-busy", overrides={"AIRFLOW__EDGE__JOB_POLL_INTERVAL": poll_interval})
    try:
        name = site.registered(worker)
        run_id = site.central.trigger("team_c_slow")
        site.task_in("team_c_slow", run_id, ("running",), timeout=120)
        # The task's own processes, found by their command line wherever they are in the
        # process tree (Airflow 3 titles the task process "airflow worker -- <ti id>").
        needles = task_needles(site, "team_c_slow", run_id)
        tasks = wait_until("the task's supervisor and task process",
                           lambda: len(pids := task_pids(needles)) >= 2 and pids, timeout=60)
        print(f"{site.track.name}: task processes before SIGTERM: {[cmdline(pid) for pid in tasks]}")
        started = time.monotonic()
        worker.proc.popen.send_signal(signal.SIGTERM)
        assert exit_code(worker, timeout=30) == 0
        print(f"SIGTERM -> exit with a running task, {site.track.name}, poll {poll_interval} s: "
              f"{time.monotonic() - started:.1f} s")
        # The worker leaves itself offline and no process of it behind (on Airflow 3.0 the
        # task's supervisor dies on SIGTERM and the task process is re-parented out of the
        # worker's tree). That it does so within the 10 s Cloud Run gives before SIGKILL is
        # bench/run.py's `shutdown` figure: a loaded CI machine stretches any time taken here.
        assert site.central.worker_rows()[name] == "offline"
        try:
            wait_until("no task process left", lambda: not task_pids(needles), timeout=30, interval=0.1)
        except HarnessError as error:
            raise AssertionError(f"{error}: {[cmdline(pid) for pid in task_pids(needles)]}; "
                                 f"before SIGTERM: {tasks}") from error
        ti = wait_until(
            "the cut task to leave 'running'",
            lambda: (ti := site.central.task_instance("team_c_slow", run_id)) and ti["state"] != "running" and ti,
            timeout=120,
        )
        assert ti["state"] in ("up_for_retry", "queued", "scheduled"), ti  # failed, to be retried
        print(f"{site.track.name}: the cut task was {ti['state']} {time.monotonic() - started:.1f} s after SIGTERM")
    finally:
        worker.stop()
        site.central.airflow("dags", "pause", "team_c_slow")
