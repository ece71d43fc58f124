"""With remote_logging, the entrypoint's log keeper (startup.py keep-logs) uploads each finished
try's log to the team's Cloud Storage folder, as the instance's service account, with the
standard library only: no Google provider in the image, nothing more in a task's memory.

These tests run the template's startup.py against the Cloud Storage stand-in (tests/support/
cloud_storage.py: the metadata server's token, the JSON API, the folder-only grant). The whole
path with a real worker and a real task is tests/e2e/test_task_logs_outlive_the_instance.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import harness
from support.cloud_storage import CloudStorage, cloud_storage
from support.templates import (
    ROOT,
    git,
    leftovers,
    load_answers,
    load_module,
    release_after,
    render,
    rendered_files,
    team_repo_at,
)
from support.templates import (
    copier_cli as copier,
)

startup = load_module(ROOT / "template" / "startup.py", "edge_startup_uploads")

BUCKET = "acme-airflow-logs"
FOLDER = "airflow/team-c"
MIB = 1024 * 1024


@pytest.fixture
def gcs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudStorage]:
    with cloud_storage(BUCKET, f"{FOLDER}/", tmp_path / "emulator-logs") as storage:
        for key, value in storage.worker_env().items():
            monkeypatch.setenv(key, value)
        yield storage


def task_log(folder: Path, attempt: int, text: str, age_seconds: float = 60) -> Path:
    """A finished try's log as Airflow lays them out, last written `age_seconds` ago."""
    path = folder / "dag_id=report" / "run_id=manual__1" / "task_id=load" / f"attempt={attempt}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    then = time.time() - age_seconds
    os.utime(path, (then, then))
    return path


def object_of(attempt: int) -> str:
    return f"{FOLDER}/dag_id=report/run_id=manual__1/task_id=load/attempt={attempt}.log"


def uploads(gcs: CloudStorage) -> list[str]:
    return [call for call in gcs.calls if call.startswith("POST")]


def test_a_finished_log_lands_once_under_airflow_s_layout_as_the_service_account(
    gcs: CloudStorage, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    task_log(logs, 1, "[2026-12-03] INFO - Done. Returned value was: None\n")
    uploader = startup.LogUploader(logs, f"gs://{BUCKET}/{FOLDER}")

    uploader.upload_finished()
    uploader.upload_finished()  # nothing changed: nothing sent again

    assert gcs.objects(FOLDER) == [object_of(1)]
    assert gcs.read(object_of(1)) == "[2026-12-03] INFO - Done. Returned value was: None\n"
    assert uploads(gcs) == [f"POST /upload/storage/v1/b/{BUCKET}/o -> 200"]
    assert [call for call in gcs.calls if not call.startswith("POST")] == []  # no read, no listing
    assert len(gcs.token_requests) == 1  # one token, kept until it expires
    assert gcs.unauthorized == []
    assert gcs.denied == []


def test_a_running_task_s_log_and_one_written_seconds_ago_wait(gcs: CloudStorage, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    running = task_log(logs, 1, "still running\n")
    just_written = task_log(logs, 2, "a moment ago\n", age_seconds=0)
    uploader = startup.LogUploader(logs, f"gs://{BUCKET}/{FOLDER}")
    with running.open("a"):  # as a running task's process holds its log file
        uploader.upload_finished()
        assert gcs.objects(FOLDER) == []

    uploader.upload_finished()

    assert gcs.objects(FOLDER) == [object_of(1)]  # attempt 2 settles for a few seconds first
    assert str(just_written) in {path for _mtime, _size, path in uploader.unsent(startup.log_files(logs))}


def test_a_log_that_changed_after_its_upload_is_uploaded_again(gcs: CloudStorage, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    path = task_log(logs, 1, "first lines\n")
    uploader = startup.LogUploader(logs, f"gs://{BUCKET}/{FOLDER}")
    uploader.upload_finished()
    task_log(logs, 1, "first lines\nand the last\n", age_seconds=30)

    uploader.upload_finished()

    assert gcs.read(object_of(1)) == path.read_text()
    assert len(uploads(gcs)) == 2


def test_a_refused_upload_keeps_the_file_past_the_bound_and_is_retried_until_it_lands(
    gcs: CloudStorage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = tmp_path / "logs"
    task_log(logs, 1, "x" * MIB, age_seconds=3600)
    uploader = startup.LogUploader(logs, f"gs://{BUCKET}/{FOLDER}")
    granted, gcs.prefix = gcs.prefix, "another-team/"  # the grant is on another folder

    uploader.upload_finished()
    uploader.upload_finished()  # still within its backoff: not tried again yet
    unsent = frozenset(path for _mtime, _size, path in uploader.unsent(startup.log_files(logs)))
    removed, left = startup.prune_logs(logs, keep_bytes=0, spared=unsent)

    assert removed == []  # never deleted before its upload succeeded
    assert left == MIB
    assert gcs.denied == [f"POST /upload/storage/v1/b/{BUCKET}/o"]
    assert capsys.readouterr().err == (
        f"startup: could not upload 1 task log file(s) to gs://{BUCKET}/{FOLDER} (HTTP 403 Forbidden): "
        "kept here and retried\n"
    )

    gcs.prefix = granted
    uploader.retry.clear()  # as if its backoff had passed
    uploader.upload_finished()
    unsent = frozenset(path for _mtime, _size, path in uploader.unsent(startup.log_files(logs)))

    assert gcs.objects(FOLDER) == [object_of(1)]
    assert startup.prune_logs(logs, keep_bytes=0, spared=unsent)[1] == 0
    assert capsys.readouterr().err == f"startup: task log uploads to gs://{BUCKET}/{FOLDER} work again\n"


def test_on_sigterm_the_keeper_uploads_what_just_ended_then_exits(gcs: CloudStorage, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    task_log(logs, 1, "an older try\n")
    keeper = subprocess.Popen(  # as entrypoint.sh starts it
        [sys.executable, "-S", str(ROOT / "template" / "startup.py"), "keep-logs", str(logs), "64", "30",
         f"gs://{BUCKET}/{FOLDER}"],
        env={**os.environ, **gcs.worker_env()}, stderr=subprocess.PIPE, text=True)
    try:
        harness.wait_until("the older try's upload", lambda: gcs.objects(FOLDER), timeout=30, interval=0.2)
        task_log(logs, 2, "cut by the shutdown\n", age_seconds=0)  # a try that ended a moment ago

        keeper.send_signal(signal.SIGTERM)

        assert keeper.wait(timeout=30) == 0
    finally:
        keeper.kill()
        keeper.wait()
    assert gcs.objects(FOLDER) == [object_of(1), object_of(2)]
    assert keeper.stderr.read() == ""


def test_a_sigterm_during_an_upload_lets_it_land_and_sends_nothing_twice(gcs: CloudStorage, tmp_path: Path) -> None:
    """Cloud Run's SIGTERM can come while a log is on its way: cut, it would be sent again by the
    last pass (the object is stored before its answer reaches the keeper)."""
    logs = tmp_path / "logs"
    task_log(logs, 1, "the last try before the shutdown\n")
    gcs.upload_delay = 2.0  # a slow link: the SIGTERM arrives while the upload waits on it
    keeper = subprocess.Popen(
        [sys.executable, "-S", str(ROOT / "template" / "startup.py"), "keep-logs", str(logs), "64", "30",
         f"gs://{BUCKET}/{FOLDER}"],
        env={**os.environ, **gcs.worker_env()}, stderr=subprocess.PIPE, text=True)
    try:
        assert gcs.upload_arrived.wait(timeout=30)

        keeper.send_signal(signal.SIGTERM)

        assert keeper.wait(timeout=30) == 0
    finally:
        keeper.kill()
        keeper.wait()
    assert [name for name, _digest in gcs.uploads] == [object_of(1)]
    assert uploads(gcs) == [f"POST /upload/storage/v1/b/{BUCKET}/o -> 200"]
    assert keeper.stderr.read() == ""


def test_the_entrypoint_refuses_a_log_folder_that_is_not_gs(tmp_path: Path) -> None:
    env = {**os.environ, "AIRFLOW__EDGE__API_URL": "http://127.0.0.1:9/edge_worker/v1/rpcapi",
           "EDGE_SHARED_SECRET": "s" * 64, "EDGE_WORKER_QUEUES": "team_c_queue", "EDGE_RUN_DIR": str(tmp_path),
           "EDGE_REMOTE_LOG_FOLDER": "s3://acme-airflow-logs/team-c"}

    done = subprocess.run(["bash", str(ROOT / "template" / "entrypoint.sh")], env=env, capture_output=True,
                          text=True, timeout=30, check=False)

    assert done.returncode == 1
    assert "EDGE_REMOTE_LOG_FOLDER must be gs://BUCKET/FOLDER (got s3://acme-airflow-logs/team-c)." in done.stderr


# The last commit of main whose remote_logging used Airflow's Google handler.
BEFORE_THE_UPLOADER = "62eecba"


def test_a_repo_with_remote_logging_on_updates_to_the_uploader_cleanly(tmp_path: Path) -> None:
    """A team that turned remote logging on in the release before takes this one unattended, keeps
    its edits, and ends up as a fresh copy: no Google provider, no AIRFLOW__LOGGING__REMOTE_*."""
    template = release_after(tmp_path / "template", BEFORE_THE_UPLOADER)
    team_answers = {"remote_logging": True, "remote_log_folder": "gs://acme-airflow-logs/team-c"}
    repo = team_repo_at(template, tmp_path / "team-c", "v1.0.0", team_answers)
    assert "apache-airflow-providers-google" in (repo / "Dockerfile").read_text()  # as it was
    recorded = load_answers(repo)
    requirements = repo / "requirements.txt"
    requirements.write_text(requirements.read_text() + "pandas==2.2.3\n")  # the team's own edit
    git(repo, "commit", "-qam", "team-c: pandas")

    result = copier(repo, "update", "--skip-answered", "--defaults", "--vcs-ref", "v2.0.0")

    assert result.returncode == 0, result.stderr
    assert leftovers(repo) == []
    assert "pandas==2.2.3" in requirements.read_text()
    env = (repo / "worker.env.yaml").read_text()
    assert 'EDGE_REMOTE_LOG_FOLDER: "gs://acme-airflow-logs/team-c"' in env
    assert "AIRFLOW__LOGGING__REMOTE_" not in env
    assert "providers-google" not in (repo / "Dockerfile").read_text()
    # The memory it was given (3Gi, the remote-logging default then) is its answer: kept.
    assert load_answers(repo)["memory"] == recorded["memory"] == "3Gi"
    fresh = render(tmp_path / "fresh" / "team-c", {"team_name": "team-c", **team_answers, "memory": "3Gi"},
                   src=template, vcs_ref="v2.0.0")
    (fresh / "requirements.txt").write_text((fresh / "requirements.txt").read_text() + "pandas==2.2.3\n")
    updated = {str(p.relative_to(repo)): p.read_text() for p in rendered_files(repo)}
    expected = {str(p.relative_to(fresh)): p.read_text() for p in rendered_files(fresh)}
    assert sorted(updated) == sorted(expected)
    assert [name for name in expected if updated[name] != expected[name]] == []
