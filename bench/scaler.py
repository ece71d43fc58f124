"""The footprint of the platform kit's one scaler for a site's elastic teams, against one scaler
process per team (what each elastic team repo rendered before the kit).

A real central site (3.3.2 on PostgreSQL) with TEAMS elastic teams registered by their pools
(one real render's pools.json, renamed per team); the Cloud Run Admin API stand-in serves their
worker pools (all idle at 0: every step reads each pool and changes none). First one
`edge_site.py scale` for every team, then TEAMS processes of `edge_site.py scale --team NAME`,
each measured over the same number of scaler periods once every team has been announced."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import replace
from pathlib import Path

from support import harness, procs
from support.cloud_run import CloudRunStandIn, WorkerPoolStandIn
from support.sites import TRACKS, Track, running_central_site, site_answers
from support.templates import render

TEAMS = 30
STEPS = 10  # the measured window, in scaler periods
PERIOD_SECONDS = 2.0


def team_names() -> list[str]:
    return [f"team-s{number:02d}" for number in range(1, TEAMS + 1)]


def register_teams(central: harness.CentralSite, repo: Path, work: Path) -> None:
    """Every team's pool, from the first team's real pools.json with the names changed."""
    text = (repo / "pools.json").read_text()
    for name in team_names()[1:]:
        path = work / f"{name}-pools.json"
        path.write_text(text.replace("team-s01", name).replace("team_s01", name.replace("-", "_")))
        json.loads(path.read_text())
        central.airflow("pools", "import", str(path))


def measure(procs_list: list[harness.Proc], seconds: float) -> tuple[float, float, float]:
    """(CPU seconds used in the window, PSS MiB, RSS MiB) summed over the processes."""
    before = sum(procs.cpu_seconds(proc.pid) for proc in procs_list)
    time.sleep(seconds)
    cpu = sum(procs.cpu_seconds(proc.pid) for proc in procs_list) - before
    return cpu, sum(procs.pss_mib(proc.pid) for proc in procs_list), sum(procs.rss_mib(proc.pid) for proc in procs_list)


def announced(proc: harness.Proc, teams: int) -> bool:
    if not proc.alive():
        raise harness.HarnessError(f"{proc.name} stopped: {proc.text()[-2000:]}")
    return proc.text().count(": worker pool projects/") >= teams


def bench_scaler(work: Path, template: Path, track: Track = TRACKS["airflow3"]) -> dict[str, float]:
    track = replace(track, postgres=True)
    root, port, secret = work / "scaler", harness.free_port(), secrets.token_urlsafe(64)
    logs = root / "logs"
    answers = {"team_name": "team-s01", "autoscaling": True, "scale_min": 0, "scale_max": 3,
               **site_answers(track, port)}  # fmt: skip
    if track.airflow_version.startswith("3."):
        answers["dag_bundle_name"] = track.bundle
    repo = render(root / "team-s01", answers, src=template, vcs_ref="v1.0.0")
    kit = str(template / "platform" / "edge_site.py")

    def no_instance(number: int) -> harness.Worker:
        raise harness.HarnessError("the idle scenario started an instance")

    with running_central_site(track, root, port, secret, [repo], logs) as central:
        register_teams(central, repo, root)
        api = CloudRunStandIn({f"{name}-edge-worker": WorkerPoolStandIn(f"{name}-edge-worker", no_instance)
                               for name in team_names()})  # fmt: skip
        base = api.serve()
        env = {**central.env, "EDGE_SCALER_RUN_API": base, "EDGE_SCALER_METADATA": base,
               "EDGE_SCALER_PERIOD_SECONDS": str(PERIOD_SECONDS)}  # fmt: skip
        python = str(central.venv / "bin" / "python")
        figures: dict[str, float] = {}
        try:
            one = harness.start("scaler-one", [python, kit, "scale"], env, logs)
            try:
                harness.wait_until(f"one scaler to announce {TEAMS} teams", lambda: announced(one, TEAMS), timeout=120)
                reads = api.reads
                figures["one_cpu"], figures["one_pss"], figures["one_rss"] = measure([one], STEPS * PERIOD_SECONDS)
                figures["one_reads"] = api.reads - reads
            finally:
                one.stop()
            many = [harness.start(f"scaler-{name}", [python, kit, "scale", "--team", name], env, logs)
                    for name in team_names()]
            try:
                harness.wait_until(f"{TEAMS} scalers to announce their team",
                                   lambda: all(announced(proc, 1) for proc in many), timeout=600)
                reads = api.reads
                figures["many_cpu"], figures["many_pss"], figures["many_rss"] = measure(many, STEPS * PERIOD_SECONDS)
                figures["many_reads"] = api.reads - reads
            finally:
                for proc in many:
                    proc.stop()
        finally:
            api.close()
        if api.refused or any(pool.patches for pool in api.pools.values()):
            raise harness.HarnessError(f"the idle scenario went otherwise: refused {api.refused}")
    return figures
