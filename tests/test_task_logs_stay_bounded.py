"""A worker that runs for months keeps its task logs bounded: Cloud Run's filesystem is its memory.

The task logs ([logging] base_log_folder) live on an in-memory volume of a fixed size (deploy.sh;
its flags are in tests/test_deploy.py), the memory rule counts that volume, and the entrypoint's
log keeper (startup.py keep-logs) deletes the oldest finished tasks' files past a bound, never a
running task's. These tests run the real pruning code on real files.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from support.templates import ROOT, load_module

MIB = 1024 * 1024
HOUR = 3600


startup = load_module(ROOT / "template" / "startup.py", "edge_startup")


def task_log(folder: Path, dag: str, attempt: int, mib: float, age_seconds: float) -> Path:
    """A task's log file as Airflow lays them out, `mib` large, last written `age_seconds` ago."""
    path = folder / f"dag_id={dag}" / "run_id=manual__1" / "task_id=work" / f"attempt={attempt}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * int(mib * MIB))
    then = time.time() - age_seconds
    os.utime(path, (then, then))
    for parent in (path.parent, path.parent.parent, path.parent.parent.parent):
        os.utime(parent, (then, then))
    return path


def held_open(path: Path) -> Callable[[], None]:
    handle = path.open("ab")  # as a running task's process holds its log file
    return handle.close


def test_past_the_bound_the_oldest_log_files_go_first_until_the_folder_fits(tmp_path: Path) -> None:
    oldest = task_log(tmp_path, "a", 1, 1, 5 * HOUR)
    older = task_log(tmp_path, "b", 1, 1, 4 * HOUR)
    old = task_log(tmp_path, "c", 1, 1, 3 * HOUR)
    newer = task_log(tmp_path, "d", 1, 1, 2 * HOUR)

    removed, left = startup.prune_logs(tmp_path, keep_bytes=2 * MIB)

    assert removed == [oldest, older]
    assert left == 2 * MIB
    assert old.exists()
    assert newer.exists()
    # The emptied task folders go too; the log folder itself stays.
    assert not (tmp_path / "dag_id=a").exists()
    assert not (tmp_path / "dag_id=b").exists()
    assert tmp_path.is_dir()


def test_within_the_bound_nothing_is_deleted(tmp_path: Path) -> None:
    files = [task_log(tmp_path, dag, 1, 1, HOUR) for dag in ("a", "b")]

    assert startup.prune_logs(tmp_path, keep_bytes=2 * MIB) == ([], 2 * MIB)
    assert all(path.exists() for path in files)


def test_a_running_task_s_log_file_is_never_deleted_however_old(tmp_path: Path) -> None:
    running = task_log(tmp_path, "long_running", 1, 1, 6 * HOUR)
    finished = task_log(tmp_path, "finished", 1, 1, 5 * HOUR)
    close = held_open(running)
    try:
        assert str(running) in startup.open_files()
        removed, left = startup.prune_logs(tmp_path, keep_bytes=MIB)
    finally:
        close()

    assert removed == [finished]
    assert running.exists()
    assert left == MIB


def test_a_log_written_in_the_last_minute_stays_for_edge3_to_push_its_last_lines(tmp_path: Path) -> None:
    just_ended = task_log(tmp_path, "just_ended", 1, 2, 10)

    removed, left = startup.prune_logs(tmp_path, keep_bytes=MIB)

    assert removed == []
    assert just_ended.exists()
    assert left == 2 * MIB


def test_a_missing_log_folder_is_an_empty_one(tmp_path: Path) -> None:
    assert startup.prune_logs(tmp_path / "not-yet", keep_bytes=0) == ([], 0)


@pytest.mark.parametrize("case", ["defaults", "af3-pool-directvpc-gcs"])
def test_the_worker_writes_its_task_logs_where_deploy_mounts_the_bounded_volume(case: str, team_of) -> None:
    team = team_of(case)
    env = yaml.safe_load((team.repo / "worker.env.yaml").read_text())
    deploy = (team.repo / "deploy.sh").read_text()

    assert env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] == "/opt/airflow/logs"
    assert "LOG_FOLDER=/opt/airflow/logs\n" in deploy
    assert "LOG_VOLUME_MIB=128\n" in deploy
    # The pruner keeps the folder at half the volume: room for running tasks' files.
    assert env["EDGE_LOG_KEEP_MIB"] == "64"
