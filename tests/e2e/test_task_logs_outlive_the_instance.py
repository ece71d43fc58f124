"""With remote_logging, a finished task's log is in the team's Cloud Storage folder, written as
the runtime service account: after the instance is gone, its logs are not."""

from __future__ import annotations

import subprocess
import urllib.parse
from pathlib import Path

import pytest
from support import harness
from support.cloud_storage import cloud_storage
from support.sites import Site
from support.templates import render, sh_blocks

BUCKET = "acme-airflow-logs"
FOLDER = "airflow/team-c"


def central_connection_commands(repo: Path) -> list[str]:
    """The `airflow connections` lines of the central README's sh blocks: what the site must run."""
    blocks = sh_blocks((repo / "central" / "README.md").read_text())
    return [line for block in blocks for line in block if line.startswith("airflow connections")]


# Both majors, and Airflow 3.0's Task SDK (whose supervisor does the upload there).
@pytest.mark.tracks("airflow2", "airflow3", "airflow3.0")
def test_a_finished_task_s_log_lands_under_the_team_s_folder(site: Site) -> None:
    repo = render(site.logs.parent / "team-c-remote-logs",
                  {**site.answers, "remote_logging": True, "remote_log_folder": f"gs://{BUCKET}/{FOLDER}"})
    venv = harness.airflow_venv(repo)  # the rendered Dockerfile's steps: with the Google provider
    # Airflow 3.0 and 3.1 fail every task without the connection the central README asks for.
    commands = central_connection_commands(repo)
    assert len(commands) == (1 if site.track.airflow_version.startswith(("3.0.", "3.1.")) else 0)
    for command in commands * 2:  # as written, and again: the second run changes nothing
        done = subprocess.run(["bash", "-c", command], env=site.central.env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    with cloud_storage(BUCKET, f"{FOLDER}/", site.logs) as gcs:
        worker = harness.start_worker(repo, venv, site.secret, site.logs, "team-c-remote-logs",
                                      overrides=gcs.worker_env())
        try:
            name = site.registered(worker)
            run_id = site.central.trigger("team_c_example")
            ti = site.finished("team_c_example", run_id)
            assert ti["state"] == "success"
            assert ti["hostname"] == name

            wanted = f"{FOLDER}/dag_id=team_c_example/run_id={run_id}/task_id=hello_from_edge/attempt=1.log"
            landed = harness.wait_until("the task's log in Cloud Storage",
                                        lambda: gcs.objects(f"{FOLDER}/dag_id=team_c_example/run_id={run_id}/"),
                                        timeout=60)
            log = gcs.read(wanted)
        finally:
            worker.stop()

    assert landed == [wanted]
    # The try's log through to the task's end: its own line and its return value (on Airflow 3
    # the task's stdout arrives by another pipe, so the two may come in either order).
    assert "Hello from the team-c Edge worker" in log
    assert "Done. Returned value was" in log, log
    # Uploaded once, as the runtime service account (its token from the metadata server), and
    # nothing but the team's objects was touched: before an upload the handler only looks for an
    # earlier copy of that log; the library's bucket metadata read is refused, and it goes on.
    assert gcs.token_requests
    assert gcs.unauthorized == []
    looked_for = f"GET /download/storage/v1/b/{BUCKET}/o/{urllib.parse.quote(wanted, safe='')} -> 404"
    assert [call for call in gcs.calls if call.startswith("POST")] == [f"POST /upload/storage/v1/b/{BUCKET}/o -> 200"]
    assert {call for call in gcs.calls if not call.startswith("POST")} <= {looked_for}
    assert set(gcs.denied) <= {f"GET /storage/v1/b/{BUCKET}"}
