"""With remote_logging, a finished task's log is in the team's Cloud Storage folder, uploaded by
the entrypoint as the runtime service account: after the instance is gone, its logs are not.
No Google provider in the image and no connection on the central site, on every line."""

from __future__ import annotations

import pytest
from support import harness
from support.cloud_storage import cloud_storage
from support.sites import Site
from support.templates import render

BUCKET = "acme-airflow-logs"
FOLDER = "airflow/team-c"


# Both majors, and Airflow 3.0's Task SDK (whose supervisor writes the log there).
@pytest.mark.tracks("airflow2", "airflow3", "airflow3.0")
def test_a_finished_task_s_log_lands_under_the_team_s_folder(site: Site) -> None:
    repo = render(site.logs.parent / "team-c-remote-logs",
                  {**site.answers, "remote_logging": True, "remote_log_folder": f"gs://{BUCKET}/{FOLDER}"})
    assert "providers-google" not in (repo / "Dockerfile").read_text()
    assert "airflow connections" not in (repo / "central" / "README.md").read_text()
    venv = harness.airflow_venv(repo)  # the rendered Dockerfile's steps
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
    # nothing else asked of Cloud Storage: no read, no listing, no bucket metadata.
    assert gcs.token_requests
    assert gcs.unauthorized == []
    assert gcs.calls == [f"POST /upload/storage/v1/b/{BUCKET}/o -> 200"]
    assert [name for name, _digest in gcs.uploads] == [wanted]
    assert gcs.denied == []
