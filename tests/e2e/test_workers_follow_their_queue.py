"""Elastic worker pools follow their own team's queue: one scaler for the whole site takes each
team from zero (or its minimum) to its maximum and back, never killing a running task, and one
team's burst never scales another team.

Closed loop, nothing faked but Cloud Run (tests/support/elastic.py): a real central Airflow
site (3.3.2 or 2.10.5, on PostgreSQL) with two elastic teams of different bounds, registered by
their own pools.json; the platform's kit (platform/edge_site.py scale) run as deployed, a process
in the central site's environment; a stand-in for the Cloud Run Admin API v2 and the metadata
server that turns each PATCHed instance count into real workers of that team (the rendered
entrypoint.sh) and stops the newest with SIGTERM on a scale-in. The fleet view
(platform/edge_site.py fleet) is read while both teams' workers are live."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest
from support import harness
from support.elastic import BURST, F_MAX, F_MIN, PAIR, SCALE_MAX, run_scenario
from support.sites import TRACKS


@pytest.mark.parametrize("track", ["airflow3", "airflow2"])
def test_one_scaler_follows_each_team_s_queue_and_the_fleet_view_shows_both(
    track: str, tmp_path: Path, edge_secret: str
) -> None:
    if harness.postgres_bin() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are missing: apt-get install postgresql")
    run = run_scenario(tmp_path, edge_secret, TRACKS[track])
    e, f = run.patches["team-e"], run.patches["team-f"]

    # Idle: team-e stays at 0, team-f is brought to its minimum.
    assert run.idle_patches == {"team-e": [], "team-f": [F_MIN]}
    # team-e's burst: every task succeeded at its first try (no scale-in cut one short); the
    # pool went out to its maximum (in one step when the scaler sees the burst queued at once,
    # in rising steps when it reads while the executor is still writing the jobs), then back to
    # 0 once idle; no scale-in between, so none while a task ran.
    assert len(run.burst_rows) == BURST
    assert {(row[0], int(row[1])) for row in run.burst_rows} == {("success", 1)}
    out, rest = e[:-1], e[-1:]
    assert rest == [0], e
    assert out == sorted(set(out)), e
    assert out[-1:] == [SCALE_MAX], e
    # ... and team-f was never moved by it.
    assert run.f_patches_during_burst == [F_MIN]
    # team-f's pair (one slot per instance): out to its own maximum, back to its own minimum;
    # team-e was never moved by it.
    assert [(row[0], int(row[1])) for row in run.pair_rows] == [("success", 1)] * PAIR
    assert f == [F_MIN, F_MAX, F_MIN]
    assert run.e_patches_during_pair == e
    assert run.refused == []
    assert run.scaler_alive, run.scaler_log[-3000:]
    assert "step failed" not in run.scaler_log

    # The fleet view while team-e bursts: one line per team, its instances against its bounds,
    # its live workers on the site's own versions, its queue.
    assert run.fleet_rc == 0, run.fleet
    lines = {line.split()[0]: line for line in run.fleet.splitlines() if line.startswith("team-")}
    version = f"{TRACKS[track].airflow_version}/"
    team_e = lines["team-e"].split()
    assert team_e[2:7] == ["worker-pool", "team-e-edge-worker", str(SCALE_MAX), "of", f"0-{SCALE_MAX}"], run.fleet
    assert re.search(r" [0-9]+ (idle|running)", lines["team-e"]), run.fleet
    assert any(cell.startswith(version) for cell in team_e), run.fleet
    assert "(site" not in lines["team-e"], run.fleet
    queued, running, slots = (int(cell) for cell in team_e[-3:])
    assert 0 < queued + running <= BURST
    assert slots == 4 * SCALE_MAX
    team_f = lines["team-f"].split()
    assert team_f[2:7] == ["worker-pool", "team-f-edge-worker", str(F_MIN), "of", f"{F_MIN}-{F_MAX}"], run.fleet
    assert " 1 idle " in lines["team-f"], run.fleet
    assert team_f[-3:] == ["0", "0", str(F_MAX)], run.fleet
    # The scaler's history, as the kit's chart draws it: each team's backlog and instances.
    steps = list(csv.DictReader(io.StringIO(run.history)))
    peaks = {team: max(int(step["instances"]) for step in steps if step["team"] == team)
             for team in ("team-e", "team-f")}
    assert peaks == {"team-e": SCALE_MAX, "team-f": F_MAX}
    assert max(int(step["queued"]) + int(step["running"]) for step in steps if step["team"] == "team-e") > SCALE_MAX
    svg = ElementTree.fromstring(run.chart)  # noqa: S314 - the kit's own output
    panels = svg.findall("{http://www.w3.org/2000/svg}g")
    assert [panel.get("id") for panel in panels] == ["team-e", "team-f"]
    assert all(len(panel.findall("{http://www.w3.org/2000/svg}polyline")) == 2 for panel in panels)
    (tmp_path / "fleet.svg").write_text(run.chart)
    print(f"\nelastic ({TRACKS[track].airflow_version}): {run.figures()}\n{run.fleet}\nchart: {tmp_path / 'fleet.svg'}")
