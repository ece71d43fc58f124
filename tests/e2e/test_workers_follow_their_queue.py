"""An elastic worker pool follows its team's queue: from zero to its maximum and back, never
killing a running task.

Closed loop, nothing faked but Cloud Run (tests/support/elastic.py): a real central Airflow
site (3.3.2 or 2.10.5, on PostgreSQL); the rendered scaler
(central/scale_team_e_workers.py) run as deployed, a process in the central site's environment;
a stand-in for the Cloud Run Admin API v2 and the metadata server that turns each PATCHed
instance count into real workers (the rendered entrypoint.sh) and stops the newest with SIGTERM
on a scale-in."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import harness
from support.elastic import BURST, SCALE_MAX, run_scenario
from support.sites import TRACKS


@pytest.mark.parametrize("track", ["airflow3", "airflow2"])
def test_the_pool_scales_out_for_a_burst_and_back_to_zero_without_killing_a_task(
    track: str, tmp_path: Path, edge_secret: str
) -> None:
    if harness.postgres_bin() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are missing: apt-get install postgresql")
    run = run_scenario(tmp_path, edge_secret, TRACKS[track])

    # Idle at 0: the scaler looked and changed nothing.
    assert run.idle_patches == []
    # Every burst task succeeded at its first try: no scale-in cut one short.
    assert len(run.burst_rows) == BURST
    assert {(row[0], int(row[1])) for row in run.burst_rows} == {("success", 1)}
    assert [(row[0], int(row[1])) for row in run.one_rows] == [("success", 1)]
    # Out to the maximum for the burst (in one step when the scaler sees the burst queued at
    # once, as in every run here; in rising steps when it reads while the executor is still
    # writing the jobs), then back to 0 when idle, 1 for the single task, back to 0: no
    # scale-in between, so none while a task ran.
    out, rest = run.patches[:-3], run.patches[-3:]
    assert rest == [0, 1, 0], run.patches
    assert out == sorted(set(out)), run.patches
    assert out[-1:] == [SCALE_MAX], run.patches
    assert run.refused == []
    assert run.scaler_alive, run.scaler_log[-3000:]
    assert "step failed" not in run.scaler_log
    print(f"\nelastic ({TRACKS[track].airflow_version}): {run.figures()}")
