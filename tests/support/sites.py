"""Central sites as the e2e tests and bench/ run them: the tracks, and one bring-up for both."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from support import harness
from support.dags import OUTAGE_DAG, PROBE_DAG, SLOW_DAG
from support.templates import render


@dataclass(frozen=True)
class Track:
    name: str
    airflow_version: str
    team_c_target: str
    team_a_target: str
    postgres: bool
    # Airflow 3: the central site's DAG bundle that holds the teams' DAGs.
    bundle: str = "dags-folder"
    answers: tuple[tuple[str, object], ...] = ()


TRACKS = {
    "airflow2": Track("airflow2", "2.10.5", "service", "worker-pool", postgres=True),
    # A central bundle named otherwise than Airflow's default "dags-folder".
    "airflow3": Track("airflow3", "3.3.2", "worker-pool", "service", postgres=False, bundle="team-dags"),
    # The oldest Airflow 3 line with the newest edge3 that accepts it (task SDK 1.0: its
    # supervisors die on SIGTERM without passing it on). Only the tests that name it run here.
    # The last Airflow 2 line, with the only edge3 release that needs it (1.6.0). Only the tests
    # that name it run here (WITH_AIRFLOW_2_11).
    "airflow2.11": Track("airflow2.11", "2.11.2", "service", "worker-pool", postgres=True),
    "airflow3.0": Track(
        "airflow3.0", "3.0.6", "worker-pool", "service", postgres=False,
        answers=(("python_version", "3.11"), ("edge_provider_version", "5.1.0")),
    ),
}
# Every e2e test runs on the main tracks; @pytest.mark.tracks(NAME, ...) names others instead.
MAIN_TRACKS = ["airflow2", "airflow3"]
ALL_TRACKS = [*MAIN_TRACKS, "airflow3.0", "airflow2.11"]
# The scenarios where Airflow 2.11 with edge3 1.6.0 can differ from 2.10 with 1.5.0: a worker's
# registration and tasks, its name (1.6.0 refuses a live worker's name, 409), its shutdown,
# its secret and its rows at the central site.
WITH_AIRFLOW_2_11 = [*MAIN_TRACKS, "airflow2.11"]


@dataclass
class Site:
    track: Track
    central: harness.CentralSite
    venv: Path
    team_c: Path
    team_a: Path
    logs: Path
    secret: str
    answers: dict[str, object]

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
        seen: dict[str, str] = {}

        def check() -> dict[str, str] | None:
            ti = self.central.task_instance(dag_id, run_id)
            seen.update(ti or {})
            return ti if ti and ti["state"] in states else None

        try:
            return harness.wait_until(f"{dag_id} {run_id} to be {' or '.join(states)}", check, timeout=timeout)
        except harness.HarnessError as error:
            raise harness.HarnessError(f"{error}; last seen: {seen or 'no task instance'}") from error

    def finished(self, dag_id: str, run_id: str) -> dict[str, str]:
        return self.task_in(dag_id, run_id, ("success", "failed"))


def site_answers(track: Track, port: int, **extra: object) -> dict[str, object]:
    """The site facts a team of this track's local central site renders with (as --data)."""
    return {
        "airflow_version": track.airflow_version,
        "edge_api_url": f"http://127.0.0.1:{port}/edge_worker/v1/rpcapi",
        "job_poll_interval": 1,
        "heartbeat_interval": 5,
        "dags_source": "image",
        **dict(track.answers),
        **extra,
    }


def central_extra(track: Track) -> tuple[str, ...]:
    """What the central site needs beyond the worker's packages: PostgreSQL's drivers."""
    return harness.central_extra(track.airflow_version, track.postgres)


@contextmanager
def running_central_site(
    track: Track, root: Path, port: int, secret: str, teams: list[Path], logs: Path
) -> Iterator[harness.CentralSite]:
    """A central site of the track on `port`, configured from the first team's central/, serving every team's DAGs."""
    venv_path = harness.airflow_venv(teams[0], extra=central_extra(track))
    with ExitStack() as stack:
        db = stack.enter_context(harness.postgres(logs)) if track.postgres else None
        major = int(track.airflow_version[0])
        central = harness.CentralSite(venv_path, root / "central", port, secret, major, db, logs)
        multi_team = tuple(name for team in teams if (name := harness.worker_env_file(team).get("EDGE_TEAM_NAME")))
        central.configure(harness.read_env_file(teams[0] / "central" / "edge.env"), bundle=track.bundle,
                          teams=multi_team)
        stack.callback(central.stop)
        central.migrate()
        for team in teams:
            central.add_team(team, harness.worker_env_file(team).get("EDGE_TEAM_NAME"))
        central.start()
        yield central


@contextmanager
def running_site(track: Track, root: Path, secret: str) -> Iterator[Site]:
    """The e2e tests' site of a track: teams c and a rendered for it (team c with the tests'
    extra DAGs), and its central site running."""
    port = harness.free_port()
    common = site_answers(track, port)
    if track.airflow_version.startswith("3."):
        common["dag_bundle_name"] = track.bundle
    team_c = render(root / "team-c", {"team_name": "team-c", "deployment_target": track.team_c_target, **common})
    team_a = render(root / "team-a", {"team_name": "team-a", "deployment_target": track.team_a_target, **common})
    (team_c / "dags" / "team_c" / "slow_dag.py").write_text(SLOW_DAG)
    (team_c / "dags" / "team_c" / "probe_dag.py").write_text(PROBE_DAG)
    (team_c / "dags" / "team_c" / "outage_dag.py").write_text(OUTAGE_DAG)
    with running_central_site(track, root, port, secret, [team_c, team_a], root / "logs") as central:
        answers = {"team_name": "team-c", "deployment_target": track.team_c_target, **common}
        yield Site(track, central, central.venv, team_c, team_a, root / "logs", secret, answers)
