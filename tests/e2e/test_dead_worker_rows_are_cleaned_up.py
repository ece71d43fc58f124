"""The platform's scheduled clean-up leaves only live workers in the central worker table, for
every team of the site at once.

Every instance registers under a name of its own, so each restart leaves a row; edge3 removes
none. The platform's kit (platform/edge_site.py remove-dead-workers), run on the central site
as its guide says, removes the rows of every registered team (each team's pool registers it)
that have been gone longer than a bound, and no row of a name no registered team owns.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from support.harness import wait_until
from support.sites import WITH_AIRFLOW_2_11, Site
from support.templates import ROOT, render, sh_blocks

pytestmark = pytest.mark.tracks(*WITH_AIRFLOW_2_11)

# The test's bound, in seconds (the kit's default is a day).
BOUND = 5
# What edge3 calls a worker that is gone; the clean-up removes these.
GONE = ("offline", "unknown", "offline maintenance")
KIT = ROOT / "platform" / "edge_site.py"


def clean_up(site: Site, *args: str) -> str:
    """The kit's clean-up, run with the central site's Python and settings."""
    result = subprocess.run([str(site.venv / "bin" / "python"), str(KIT), "remove-dead-workers", *args],
                            env=site.central.env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    print(result.stdout)
    return result.stdout


def rows_of(site: Site, *teams: str) -> dict[str, str]:
    return {name: state for name, state in site.central.worker_rows().items()
            if name.rsplit("-", 1)[0] in teams}  # fmt: skip


def test_after_restarts_of_two_teams_and_the_clean_up_only_the_live_worker_is_left(
    site: Site, tmp_path: Path
) -> None:
    rows = site.central.worker_rows
    # team-a's worker stopped cleanly: an "offline" row of the other registered team.
    with site.running(site.team_a, "rows-team-a") as (_, team_a_worker):
        pass
    assert rows()[team_a_worker] == "offline"
    # A worker of a team this site has no pool for (not registered): its row is not the kit's.
    stranger = render(tmp_path / "team-z", {**site.answers, "team_name": "team-z"})
    with site.running(stranger, "rows-team-z") as (_, team_z_worker):
        pass
    assert rows()[team_z_worker] == "offline"

    # One instance is killed (SIGKILL): it cannot say it is going, so its row stays "idle"
    # until edge3's scheduler has missed 5 of its heartbeats and marks it "unknown".
    killed_worker = site.worker(site.team_c, "rows-killed")
    killed = site.registered(killed_worker)
    killed_worker.stop(signal.SIGKILL)
    assert rows()[killed] in ("idle", "running")
    out = clean_up(site, "--older-than", "0")
    assert f"left {killed}: still '{rows()[killed]}'" in out
    assert killed in rows()
    # Across teams: team-a's offline row goes too; the unregistered team's stays.
    assert f"removed {team_a_worker} (offline," in out
    assert team_a_worker not in rows()
    assert rows()[team_z_worker] == "offline"

    # Four instances stop cleanly (SIGTERM): each leaves an "offline" row.
    stopped = []
    for restart in range(1, 5):
        with site.running(site.team_c, f"rows-restart-{restart}") as (_, name):
            stopped.append(name)
    last_stop = time.monotonic()
    assert {rows()[name] for name in stopped} == {"offline"}
    # Rows younger than the bound stay.
    clean_up(site, "--older-than", "3600")
    assert set(stopped) | {killed} <= set(rows())
    # The platform guide's dry run, as written there, from the kit's folder: it removes nothing.
    guide = ROOT / "platform" / "README.md"
    documented = [line for block in sh_blocks(guide.read_text()) for line in block
                  if "remove-dead-workers --dry-run" in line]
    assert documented == ["python edge_site.py remove-dead-workers --dry-run"]
    dry = subprocess.run(["bash", "-c", documented[0]],
                         cwd=KIT.parent, env=site.central.env, capture_output=True, text=True, timeout=300,
                         check=False)  # fmt: skip
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "0 row(s) would be removed" in dry.stdout
    assert set(stopped) | {killed} <= set(rows())

    # The fifth restart is the live worker.
    with site.running(site.team_c, "rows-live") as (_, live):
        # Every other row of both teams is gone by edge3's account (earlier tests of the session
        # may have killed workers too).
        wait_until(f"edge3's scheduler to mark the killed {killed} unknown",
                   lambda: all(state in GONE for name, state in rows_of(site, "team-c", "team-a").items()
                               if name != live), timeout=400, interval=2)  # fmt: skip
        assert rows()[killed] == "unknown"
        time.sleep(max(0.0, BOUND + 1 - (time.monotonic() - last_stop)))
        out = clean_up(site, "--older-than", str(BOUND))

        assert rows_of(site, "team-c", "team-a") == {live: rows()[live]}
        assert rows()[live] in ("idle", "running")
        assert f"removed {killed} (unknown," in out
        assert all(f"removed {name} (offline," in out for name in stopped)
        # The unregistered team's row is older than the bound, and stays.
        assert rows()[team_z_worker] == "offline"
        assert team_z_worker not in out
