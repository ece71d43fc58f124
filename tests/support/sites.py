"""Central sites as the e2e tests and bench/ run them: the tracks, and one bring-up for both."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from support import harness

# Team c's DAGs may hold this task, which runs long enough to be cut by a shutdown.
SLOW_DAG = '''"""A team DAG added by hand: one task that runs for a while."""

import time

from team_c import team_default_args

try:
    from airflow.sdk import DAG, task
except ImportError:
    from airflow import DAG
    from airflow.decorators import task

with DAG(dag_id="team_c_slow", default_args=team_default_args(), schedule=None, catchup=False):

    @task
    def sleep_a_while() -> None:
        time.sleep(120)

    sleep_a_while()
'''


# Team c's DAGs also hold this probe: a task that reports what task code on the worker can
# see. It writes names, hashes' matches and paths to EDGE_PROBE_OUT, never a value.
PROBE_DAG = '''"""A probe: what a task of team c can read on its worker (names and matches only, no values)."""

import hashlib
import json
import os

from team_c import team_default_args

try:
    from airflow.sdk import DAG, task
except ImportError:
    from airflow import DAG
    from airflow.decorators import task


def _matches(values, wanted):
    return sorted(name for name, value in values if hashlib.sha256(value.encode()).hexdigest() == wanted)


def _parent(pid):
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


with DAG(dag_id="team_c_probe", default_args=team_default_args(), schedule=None, catchup=False):

    @task
    def probe() -> None:
        from airflow.configuration import conf

        wanted = os.environ.get("EDGE_PROBE_SHA256", "")
        report = {"own_env": _matches(os.environ.items(), wanted), "parents": []}
        pid = _parent(os.getpid())
        while pid > 1:
            try:
                with open(f"/proc/{pid}/environ", "rb") as environ:
                    items = environ.read().split(b"\\0")
                pairs = [item.decode(errors="replace").partition("=") for item in items if item]
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    argv = [arg.decode(errors="replace") for arg in cmdline.read().split(b"\\0") if arg]
            except OSError as error:
                report["parents"].append({"argv": [], "error": type(error).__name__, "secret_in": []})
            else:
                command = " ".join(os.path.basename(arg) for arg in argv[:4])
                found = _matches([(key, value) for key, _, value in pairs], wanted)
                report["parents"].append({"argv": command, "secret_in": found})
            if "entrypoint.sh" in str(report["parents"][-1]["argv"]):
                break
            pid = _parent(pid)
        from airflow import __version__

        option = ("core", "internal_api_secret_key") if __version__.startswith("2.") else ("api_auth", "jwt_secret")
        report["config_holds_secret"] = bool(_matches([("conf", conf.get(*option, fallback="") or "")], wanted))
        folder = conf.get("core", "dags_folder")
        report["dags_folder_files"] = sorted(
            os.path.relpath(os.path.join(root, name), folder)
            for root, _dirs, names in os.walk(folder)
            for name in names
            if not name.endswith(".pyc")
        )
        if os.environ.get("EDGE_PROBE_OUT"):
            with open(os.environ["EDGE_PROBE_OUT"], "w") as out:
                json.dump(report, out)

    probe()
'''


@dataclass(frozen=True)
class Track:
    name: str
    airflow_version: str
    team_c_target: str
    team_a_target: str
    postgres: bool


TRACKS = {
    "airflow2": Track("airflow2", "2.10.5", "service", "worker-pool", postgres=True),
    "airflow3": Track("airflow3", "3.3.2", "worker-pool", "service", postgres=False),
}


@dataclass
class Site:
    track: Track
    central: harness.CentralSite
    venv: Path
    team_c: Path
    team_a: Path
    logs: Path
    secret: str

    def worker(self, repo: Path, name: str, **kwargs) -> harness.Worker:
        return harness.start_worker(repo, self.venv, kwargs.pop("secret", self.secret), self.logs, name, **kwargs)

    @contextmanager
    def running(self, repo: Path, name: str, **kwargs) -> Iterator[tuple[harness.Worker, str]]:
        """A worker of `repo`, registered at the central site: (the worker, its name); stopped on leaving."""
        worker = self.worker(repo, name, **kwargs)
        try:
            yield worker, self.registered(worker)
        finally:
            worker.stop()

    def registered(self, worker: harness.Worker) -> str:
        """Wait until the worker is registered at the central site; its name."""
        name = harness.wait_until("the worker to print its name", worker.name, timeout=30)
        harness.wait_until(
            f"{name} registered at the central site",
            lambda: self.central.worker_rows().get(name) in ("idle", "running") or not worker.proc.alive(),
            timeout=90,
        )
        assert worker.proc.alive(), worker.proc.text()[-3000:]
        return name

    def task_in(self, dag_id: str, run_id: str, states: tuple[str, ...], timeout: float = 180) -> dict[str, str]:
        """Wait until the run's task instance is in one of `states`; its row."""
        return harness.wait_until(
            f"{dag_id} {run_id} to be {' or '.join(states)}",
            lambda: (ti := self.central.task_instance(dag_id, run_id)) and ti["state"] in states and ti,
            timeout=timeout,
        )

    def finished(self, dag_id: str, run_id: str) -> dict[str, str]:
        return self.task_in(dag_id, run_id, ("success", "failed"))


def central_extra(track: Track) -> tuple[str, ...]:
    """What the central site needs beyond the worker's packages: PostgreSQL's driver for 2.10."""
    return ("psycopg2-binary",) if track.postgres else ()


@contextmanager
def running_central_site(
    track: Track, root: Path, port: int, secret: str, teams: list[Path], logs: Path
) -> Iterator[harness.CentralSite]:
    """A central site of the track on `port`, configured from the first team's central/, serving every team's DAGs."""
    venv_path = harness.airflow_venv(teams[0], extra=central_extra(track))
    with ExitStack() as stack:
        db = stack.enter_context(harness.postgres()) if track.postgres else None
        major = int(track.airflow_version[0])
        central = harness.CentralSite(venv_path, root / "central", port, secret, major, db, logs)
        central.configure(harness.read_env_file(teams[0] / "central" / "edge.env"))
        stack.callback(central.stop)
        central.migrate()
        for team in teams:
            central.add_team(team)
        central.start()
        yield central
