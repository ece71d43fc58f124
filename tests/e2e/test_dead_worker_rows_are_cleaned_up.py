"""The platform team's scheduled clean-up leaves only the team's live worker in the central worker table.

Every instance registers under a name of its own, so each restart leaves a row; edge3 removes
none. central/remove_dead_workers.py, run as rendered on the central site, removes the team's
rows that have been gone longer than a bound, and nothing of another team.
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
from support.harness import wait_until
from support.sites import WITH_AIRFLOW_2_11, Site
from support.templates import sh_blocks

pytestmark = pytest.mark.tracks(*WITH_AIRFLOW_2_11)

# The test's bound, in seconds (the rendered default is a day).
BOUND = 5
# What edge3 calls a worker that is gone; the clean-up removes these.
GONE = ("offline", "unknown", "offline maintenance")


def clean_up(site: Site, *args: str) -> str:
    """central/remove_dead_workers.py of team-c's repo, run with the central site's Python and settings."""
    script = site.team_c / "central" / "remove_dead_workers.py"
    result = subprocess.run([str(site.venv / "bin" / "python"), str(script), *args], env=site.central.env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    print(result.stdout)
    return result.stdout


def team_c_rows(site: Site) -> dict[str, str]:
    return {name: state for name, state in site.central.worker_rows().items() if name.startswith("team-c-")}


def test_after_five_restarts_and_the_clean_up_only_the_live_worker_is_left(site: Site) -> None:
    rows = site.central.worker_rows
    # Another team's worker that stopped cleanly: its row is not team-c's to remove.
    with site.running(site.team_a, "rows-team-a") as (_, team_a_worker):
        pass
    assert rows()[team_a_worker] == "offline"

    # One instance is killed (SIGKILL): it cannot say it is going, so its row stays "idle"
    # until edge3's scheduler has missed 5 of its heartbeats and marks it "unknown".
    killed_worker = site.worker(site.team_c, "rows-killed")
    killed = site.registered(killed_worker)
    killed_worker.stop(signal.SIGKILL)
    assert rows()[killed] in ("idle", "running")
    out = clean_up(site, "--older-than", "0")
    assert f"left {killed}: still '{rows()[killed]}'" in out
    assert killed in rows()
    assert rows()[team_a_worker] == "offline"

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
    # The central README's command, as written there, from the central folder: it removes nothing.
    central = site.team_c / "central"
    documented = [line for block in sh_blocks((central / "README.md").read_text()) for line in block
                  if "remove_dead_workers.py" in line]
    assert documented == ["python remove_dead_workers.py --dry-run"]
    dry = subprocess.run(["bash", "-c", documented[0]], cwd=central, env=site.central.env, capture_output=True,
                         text=True, timeout=300, check=False)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "team team-c: 0 row(s) would be removed" in dry.stdout
    assert set(stopped) | {killed} <= set(rows())

    # The fifth restart is the live worker.
    with site.running(site.team_c, "rows-live") as (_, live):
        # Every other team-c row is gone by edge3's account (earlier tests of the session may
        # have killed workers too).
        wait_until(f"edge3's scheduler to mark the killed {killed} unknown",
                   lambda: all(state in GONE for name, state in team_c_rows(site).items() if name != live),
                   timeout=400, interval=2)
        assert rows()[killed] == "unknown"
        time.sleep(max(0.0, BOUND + 1 - (time.monotonic() - last_stop)))
        out = clean_up(site, "--older-than", str(BOUND))

        assert team_c_rows(site) == {live: rows()[live]}
        assert rows()[live] in ("idle", "running")
        assert f"removed {killed} (unknown," in out
        assert all(f"removed {name} (offline," in out for name in stopped)
        # Isolation: team-a's offline row is older than the bound, and stays.
        assert rows()[team_a_worker] == "offline"
