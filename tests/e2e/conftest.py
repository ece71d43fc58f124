"""Real central sites (Airflow 2.10 on PostgreSQL, Airflow 3 on SQLite) with two rendered teams."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import render

from e2e import harness

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
    # Resolve the venv as of this date, like the image of that release (None: today).
    resolve_as_of: harness.ResolveAsOf | None = None


TRACKS = {
    "airflow2": Track("airflow2", "2.10.5", "service", "worker-pool", postgres=True),
    # A central bundle named otherwise than Airflow's default "dags-folder".
    "airflow3": Track("airflow3", "3.3.2", "worker-pool", "service", postgres=False, bundle="team-dags"),
    # The oldest Airflow 3 line with the newest edge3 that accepts it (task SDK 1.0: its
    # supervisors die on SIGTERM without passing it on). Only the tests that name it run here.
    "airflow3.0": Track(
        "airflow3.0", "3.0.6", "worker-pool", "service", postgres=False,
        answers=(("python_version", "3.11"), ("edge_provider_version", "5.1.0")),
        resolve_as_of=harness.ResolveAsOf(
            # Airflow 3.0.6's release: what its image holds. edge3 5.1.0 and what it requires
            # newer than that date are taken as of edge3 5.1.0's release.
            "2025-09-05",
            {name: "2026-10-25" for name in (
                "apache-airflow-providers-edge3", "apache-airflow-providers-common-compat", "aiohttp",
                "retryhttp", "aiofiles",
            )},
        ),
    ),
}
# Every e2e test runs on the main tracks; @pytest.mark.tracks(NAME, ...) names others instead.
# The site fixture is parametrized over all of them and the rest are deselected (not skipped),
# so each site is set up once per session.
MAIN_TRACKS = ["airflow2", "airflow3"]
ALL_TRACKS = [*MAIN_TRACKS, "airflow3.0"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        track = callspec.params.get("site") if callspec else None
        marker = item.get_closest_marker("tracks")
        wanted = marker.args if marker else MAIN_TRACKS
        (keep if track is None or track in wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


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


@pytest.fixture(scope="session")
def edge_secret() -> str:
    # Made at run time, never written to a file: the hygiene test looks for it everywhere.
    return secrets.token_urlsafe(64)


@pytest.fixture(scope="session", params=ALL_TRACKS)
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, edge_secret: str) -> Iterator[Site]:
    track = TRACKS[request.param]
    if track.postgres and harness.postgres_bin() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are missing: apt-get install postgresql")
    root = tmp_path_factory.mktemp(track.name)
    port = harness.free_port()
    common = {
        "airflow_version": track.airflow_version,
        "edge_api_url": f"http://127.0.0.1:{port}/edge_worker/v1/rpcapi",
        "job_poll_interval": 1,
        "heartbeat_interval": 5,
        "dags_source": "image",
        **dict(track.answers),
    }
    if track.airflow_version.startswith("3."):
        common["dag_bundle_name"] = track.bundle
    team_c = render(root / "team-c", {"team_name": "team-c", "deployment_target": track.team_c_target, **common})
    team_a = render(root / "team-a", {"team_name": "team-a", "deployment_target": track.team_a_target, **common})
    (team_c / "dags" / "team_c" / "slow_dag.py").write_text(SLOW_DAG)
    central_extra = ("psycopg2-binary",) if track.postgres else ()
    venv_path = harness.airflow_venv(team_c, extra=central_extra, resolve_as_of=track.resolve_as_of)
    with ExitStack() as stack:
        db = stack.enter_context(harness.postgres()) if track.postgres else None
        central = harness.CentralSite(
            venv_path, root / "central", port, edge_secret, int(track.airflow_version[0]), db, root / "logs"
        )
        central.configure(harness.read_env_file(team_c / "central" / "edge.env"), bundle=track.bundle)
        stack.callback(central.stop)
        central.migrate()
        central.add_team(team_c)
        central.add_team(team_a)
        central.start()
        answers = {"team_name": "team-c", "deployment_target": track.team_c_target, **common}
        yield Site(track, central, venv_path, team_c, team_a, root / "logs", edge_secret, answers)
