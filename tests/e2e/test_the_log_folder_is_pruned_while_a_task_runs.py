"""The entrypoint's pruner keeps the task log folder bounded and never deletes a running task's log."""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path
from types import ModuleType

from support.harness import wait_until
from support.sites import Site

MIB = 1024 * 1024


def rendered_startup(repo: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("rendered_startup", repo / "startup.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_past_the_bound_an_old_log_goes_and_the_running_task_s_log_stays(site: Site) -> None:
    name = "logs-pruned"
    worker = site.worker(site.team_c, name, overrides={"EDGE_LOG_KEEP_MIB": "1", "EDGE_LOG_PRUNE_SECONDS": "1"})
    folder = worker.home / "logs"  # the worker's [logging] base_log_folder
    try:
        site.registered(worker)
        run_id = site.central.trigger("team_c_slow")
        site.task_in("team_c_slow", run_id, ("running",), timeout=120)
        running = wait_until("the running task's log file",
                             lambda: list(folder.glob(f"dag_id=team_c_slow/run_id={run_id}/**/*.log")), timeout=60)[0]
        # A running task's log file is held open by its own processes (the task on 2.10, the
        # supervisor on Airflow 3): that is what spares it, however old its last line.
        assert str(running) in rendered_startup(site.team_c).open_files()
        age(running, 24 * 3600)

        # A finished task's log from an hour ago puts the folder past its 1 MiB bound.
        old = folder / "dag_id=team_c_old" / "run_id=manual__1" / "task_id=work" / "attempt=1.log"
        old.parent.mkdir(parents=True)
        old.write_bytes(b"x" * 2 * MIB)
        age(old, 3600)

        wait_until("the pruner to delete the finished task's log", lambda: not old.exists(), timeout=30)
        assert running.exists()
        assert not (folder / "dag_id=team_c_old").exists()
        assert "startup: deleted 1 task log file(s), oldest first" in worker.proc.text()
    finally:
        worker.stop()
        site.central.airflow("dags", "pause", "team_c_slow")
