"""The Edge secret never lands in a rendered file, the answers file or any log of a real run."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from support.sites import WITH_AIRFLOW_2_11, Site

pytestmark = pytest.mark.tracks(*WITH_AIRFLOW_2_11)


def files_holding(root: Path, needle: str) -> list[str]:
    data = needle.encode()
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                if data in path.read_bytes():
                    hits.append(str(path))
            except OSError:
                continue
    return hits


def test_no_file_of_the_run_holds_the_secret(site: Site) -> None:
    # Exercise every path that could print it: start, a task, a wrong secret, a shutdown.
    worker = site.worker(site.team_c, "hygiene")
    wrong = site.worker(site.team_a, "hygiene-wrong", secret="wrong-" + "y" * 64)
    try:
        site.registered(worker)
        run_id = site.central.trigger("team_c_example")
        assert site.finished("team_c_example", run_id)["state"] == "success"
        wrong.proc.popen.wait(60)
        worker.proc.popen.send_signal(signal.SIGTERM)
        worker.proc.popen.wait(30)
    finally:
        worker.stop()
        wrong.stop()

    site_root = site.logs.parent
    scanned = [p for p in site_root.rglob("*") if p.is_file()]
    assert any(p.name == "hygiene.log" for p in scanned)
    assert any("dag_id=team_c_example" in str(p) for p in scanned), "no task log was written"
    assert files_holding(site_root, site.secret) == []
