"""One DAG file, two environments: the central site without the team's packages, the worker with them.

Team c's repo is rendered again with python_deps=["pandas==2.2.3"]: its worker venv comes
from that Dockerfile's install steps (pandas included), while the central site keeps its venv,
the same pins without the team's requirements. A DAG written the safe way runs with pandas
on the worker; the module-level variant is flagged by the check and is an import error on
the central site. On Airflow 3 a deferrable sensor's trigger runs on a central triggerer.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from support import harness
from support.dags import MODULE_LEVEL_PANDAS_DAG, SAFE_PANDAS_DAG
from support.sites import Site
from support.templates import render

PANDAS = "pandas==2.2.3"
HOW_TO_FIX = 'import it inside the task function (see README "DAG files both sides can load")'



DEFERRING_DAG = '''"""A deferrable sensor on team c's queue: its trigger runs on the central triggerer."""

from datetime import timedelta

from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
from airflow.sdk import DAG, task

from team_c import team_default_args

with DAG(dag_id="team_c_deferring", default_args=team_default_args(), schedule=None, catchup=False):

    @task
    def after_the_wait() -> str:
        import pandas as pd

        return f"resumed with pandas {pd.__version__}"

    TimeDeltaSensor(task_id="wait", delta=timedelta(seconds=30), deferrable=True) >> after_the_wait()
'''


@pytest.fixture(scope="module")
def pandas_team(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Team c rendered with pandas in python_deps, with the new DAG files in its dags/ and at the central site."""
    repo = render(
        tmp_path_factory.mktemp("pandas-team") / "team-c",
        # The site's own team-c answers (its DAG bundle among them), with pandas for the tasks.
        {**site.answers, "python_deps": [PANDAS]},
    )
    files = {"report_safe.py": SAFE_PANDAS_DAG, "report.py": MODULE_LEVEL_PANDAS_DAG}
    if site.central.airflow_major == 3:
        files["deferring.py"] = DEFERRING_DAG
    for name, text in files.items():
        (repo / "dags" / "team_c" / name).write_text(text)
        (site.central.dags / "team_c" / name).write_text(text)
    return repo


def serialized(site: Site, dag_id: str) -> bool:
    return bool(site.central.query(f"SELECT dag_id FROM serialized_dag WHERE dag_id = '{dag_id}'"))


def return_value(site: Site, dag_id: str, run_id: str, task_id: str) -> object:
    rows = site.central.query(
        f"SELECT value FROM xcom WHERE dag_id = '{dag_id}' AND run_id = '{run_id}' AND task_id = '{task_id}' "
        "AND key = 'return_value'"
    )
    assert rows, f"no return value of {dag_id}.{task_id} in {run_id}"
    value = rows[0][0]
    if isinstance(value, bytes):
        value = value.decode()
    elif isinstance(value, str) and value.startswith("\\x"):  # psql prints bytea as hex
        value = bytes.fromhex(value[2:]).decode()
    return json.loads(value)


def test_the_check_flags_the_module_level_import_and_passes_the_safe_dag(pandas_team: Path, site: Site) -> None:
    result = subprocess.run(
        ["python3", "tools/check_dag_imports.py"], cwd=pandas_team, capture_output=True, text=True, check=False,
        timeout=600,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == (
        f"dags/team_c/report.py:3: module 'pandas' is not installed on the central site; {HOW_TO_FIX}"
    )
    pins = f"which has only apache-airflow=={site.track.airflow_version}, apache-airflow-providers-edge3=="
    assert f"1 DAG file(s) would be import errors on the central site, {pins}" in result.stdout


def test_the_module_level_import_is_an_import_error_on_the_central_site(pandas_team: Path, site: Site) -> None:
    def import_errors() -> list[dict[str, str]]:
        # What the central site's admins (and the UI's banner) show; exit 1 when there are errors.
        result = subprocess.run(
            [str(site.central.venv / "bin" / "airflow"), "dags", "list-import-errors", "--output", "json"],
            env=site.central.env, capture_output=True, text=True, timeout=300, check=False,
        )
        assert result.returncode in (0, 1), result.stderr[-3000:]
        listed = next((json.loads(line) for line in result.stdout.splitlines() if line.startswith("[{")), [])
        return [e for e in listed if e["filepath"].endswith("team_c/report.py")]

    errors = harness.wait_until("report.py's import error at the central site", import_errors, timeout=180)

    assert "ModuleNotFoundError: No module named 'pandas'" in errors[0]["error"]
    assert not serialized(site, "team_c_report")


def test_the_safe_dag_runs_with_pandas_on_the_worker(pandas_team: Path, site: Site) -> None:
    worker_venv = harness.airflow_venv(pandas_team)
    harness.wait_until("team_c_report_safe parsed at the central site",
                       lambda: serialized(site, "team_c_report_safe"), timeout=180)
    worker = harness.start_worker(pandas_team, worker_venv, site.secret, site.logs, "team-c-pandas")
    try:
        name = site.registered(worker)
        run_id = site.central.trigger("team_c_report_safe")

        ti = site.finished("team_c_report_safe", run_id)

        assert ti == {"state": "success", "hostname": name, "queue": "team_c_queue", "pool": "team_c_pool"}
        assert return_value(site, "team_c_report_safe", run_id, "report") == "pandas 2.2.3 summed 6"
    finally:
        worker.stop()


@pytest.mark.parametrize("site", ["airflow3"], indirect=True)
def test_a_deferrable_sensor_defers_to_the_central_triggerer_and_resumes_on_the_worker(
    pandas_team: Path, site: Site
) -> None:
    worker_venv = harness.airflow_venv(pandas_team)
    triggerer = harness.start(
        "central-triggerer", [str(site.central.venv / "bin" / "airflow"), "triggerer"], site.central.env, site.logs
    )
    worker = harness.start_worker(pandas_team, worker_venv, site.secret, site.logs, "team-c-deferring")
    try:
        harness.wait_until("team_c_deferring parsed at the central site",
                           lambda: serialized(site, "team_c_deferring"), timeout=180)
        name = site.registered(worker)
        run_id = site.central.trigger("team_c_deferring")

        deferred = site.task_in("team_c_deferring", run_id, ("deferred", "success", "failed"), timeout=120)
        assert deferred["state"] == "deferred", deferred
        # The central triggerer (a TriggererJob of the central site) took the trigger.
        taken = harness.wait_until(
            "the central triggerer to take the trigger",
            lambda: site.central.query(
                "SELECT t.classpath, j.job_type, j.state FROM trigger t JOIN job j ON t.triggerer_id = j.id"
            ),
            timeout=60,
        )
        assert taken == [["airflow.providers.standard.triggers.temporal.DateTimeTrigger", "TriggererJob", "running"]]

        rows = harness.wait_until(
            "the sensor and the task after it to finish",
            lambda: (r := site.central.query(
                "SELECT task_id, state, hostname, queue, try_number FROM task_instance "
                f"WHERE dag_id = 'team_c_deferring' AND run_id = '{run_id}' ORDER BY task_id"
            )) and all(row[1] in ("success", "failed", "upstream_failed") for row in r) and r,
            timeout=180,
        )
        assert [[str(v) for v in row] for row in rows] == [
            ["after_the_wait", "success", name, "team_c_queue", "1"],
            ["wait", "success", name, "team_c_queue", "1"],
        ], triggerer.text()[-3000:]
        assert return_value(site, "team_c_deferring", run_id, "after_the_wait") == "resumed with pandas 2.2.3"
    finally:
        worker.stop()
        triggerer.stop()
