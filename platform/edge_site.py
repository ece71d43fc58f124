"""The platform's kit for a central Airflow site whose teams run edge-template Edge workers.

One process for all teams instead of one copy per team. Run it on the central site, with the
Python and the configuration of its `airflow` command (where `airflow db check` works):

    python edge_site.py fleet                       # each team: pool, instances, workers, tasks
    python edge_site.py teams                       # each team's project, region and resource, tab-separated
    python edge_site.py scale                       # one scaler for every elastic team, until stopped
    python edge_site.py scale --once                # one step (for a cron job)
    python edge_site.py scale --history steps.csv   # ... keeping each step's backlog and instances
    python edge_site.py chart steps.csv --out fleet.svg   # those, as a picture (no Airflow needed)
    python edge_site.py remove-dead-workers         # every team's worker rows gone for more than a day
    python edge_site.py remove-dead-workers --older-than 3600 --dry-run

It learns the teams from the central site itself: each team's pool (its repo's pools.json,
which the platform imports when the team joins and whenever the file changes) carries the
team's record in its description, after "edge-template: " (docs/decisions/0010). A team
without that pool runs no task at this site, so the list cannot leave out a working team.

Python's standard library and the central site's Airflow and edge3 only.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html import escape

# The mark before a team's record in its pool's description (pools.json of the team repo).
MARK = "edge-template: "
# What edge3 calls a worker that is gone: edge3's remove_worker accepts only these.
GONE = ("offline", "unknown", "offline maintenance")
LIVE = ("idle", "running", "starting", "maintenance pending", "maintenance request", "maintenance mode",
        "maintenance exit", "terminating")
DEFAULT_OLDER_THAN = 24 * 3600

# Overridable for tests and for a private endpoint (Private Service Connect).
RUN_API = os.environ.get("EDGE_SCALER_RUN_API", "https://run.googleapis.com").rstrip("/")
METADATA = os.environ.get("EDGE_SCALER_METADATA", "http://metadata.google.internal").rstrip("/")
PERIOD_SECONDS = float(os.environ.get("EDGE_SCALER_PERIOD_SECONDS", "15"))


class RecordError(ValueError):
    """A pool description whose edge-template record cannot be read."""


@dataclass(frozen=True)
class Team:
    """One team's record, as its pools.json registers it at the central site."""

    name: str
    pool: str
    slots: int
    queues: tuple[str, ...]
    worker_concurrency: int
    project: str
    region: str
    deployment_target: str  # worker-pool or service
    resource: str  # the Cloud Run worker pool's or service's name
    instances_min: int
    instances_max: int
    elastic: bool
    scale_in_idle_seconds: int
    airflow_team: str = ""
    release: str = ""

    @property
    def resource_path(self) -> str:
        kind = "workerPools" if self.deployment_target == "worker-pool" else "services"
        return f"projects/{self.project}/locations/{self.region}/{kind}/{self.resource}"

    @property
    def tasks_at_most(self) -> int:
        """The most of the team's tasks running at once: what it adds to the site's [core] parallelism."""
        return self.worker_concurrency * self.instances_max

    def owns_worker(self, worker_name: str) -> bool:
        # The names entrypoint.sh gives the team's instances: the team, then 10 hex digits.
        return re.fullmatch(re.escape(self.name) + r"-[0-9a-f]{10}", worker_name) is not None


def team_from_pool(pool: str, slots: int, description: str | None) -> Team | None:
    """The team a pool registers, or None for a pool that is not a team's."""
    if not description or MARK not in description:
        return None
    try:
        record = json.loads(description.split(MARK, 1)[1])
        team = Team(
            name=str(record["team"]), pool=pool, slots=int(slots), queues=tuple(map(str, record["queues"])),
            worker_concurrency=int(record["worker_concurrency"]), project=str(record["project"]),
            region=str(record["region"]), deployment_target=str(record["deployment_target"]),
            resource=str(record["resource"]), instances_min=int(record["instances_min"]),
            instances_max=int(record["instances_max"]), elastic=bool(record["elastic"]),
            scale_in_idle_seconds=int(record["scale_in_idle_seconds"]),
            airflow_team=str(record.get("airflow_team") or ""), release=str(record.get("release") or ""),
        )  # fmt: skip
    except (ValueError, KeyError, TypeError) as error:
        raise RecordError(f"pool {pool}: its edge-template record cannot be read ({type(error).__name__}: "
                          f"{error}); import the team's pools.json again") from error
    if team.worker_concurrency < 1 or not team.queues or team.instances_max < team.instances_min:
        raise RecordError(f"pool {pool}: its edge-template record is not a team's (no queue, concurrency < 1 "
                          "or max < min); import the team's pools.json again")
    return team


def teams_of(pools: Iterable[tuple[str, int, str | None]], warn: Callable[[str], None]) -> list[Team]:
    """Every team registered by the pools (name, slots, description); a bad record is named and skipped."""
    teams = []
    for pool, slots, description in pools:
        try:
            team = team_from_pool(pool, slots, description)
        except RecordError as error:
            warn(str(error))
            continue
        if team is not None:
            teams.append(team)
    return sorted(teams, key=lambda team: team.name)


# ---------------------------------------------------------------------- the central database


def load_airflow() -> None:
    """Import Airflow with its start-up messages (deprecation warnings, logging set-up) on stderr:
    stdout carries only what the kit prints, for scripts."""
    with contextlib.redirect_stdout(sys.stderr):
        import airflow.models  # noqa: F401 - loads the configuration and the ORM once


def site_pools() -> list[tuple[str, int, str | None]]:
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return [tuple(row) for row in session.execute(select(Pool.pool, Pool.slots, Pool.description)).all()]


@dataclass
class Load:
    queued: int = 0  # slots
    running: int = 0
    newest: float | None = None  # the newest last_update of any of the team's jobs

    @property
    def active(self) -> int:
        return self.queued + self.running


def job_rows() -> list[tuple[str, str, int, float | None, str | None]]:
    """(state, queue, slots, last_update, team_name) of every edge job the central site keeps."""
    from airflow.providers.edge3.models.edge_job import EdgeJobModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    team_column = getattr(EdgeJobModel, "team_name", None)  # edge3 3.8.0 and later
    columns = [EdgeJobModel.state, EdgeJobModel.queue, EdgeJobModel.concurrency_slots, EdgeJobModel.last_update]
    with create_session() as session:
        rows = session.execute(select(*columns, *([team_column] if team_column is not None else []))).all()
    return [(str(row[0]), str(row[1]), max(int(row[2] or 1), 1),
             row[3].timestamp() if row[3] is not None else None,  # UtcDateTime: timezone-aware
             row[4] if len(row) > 4 else None) for row in rows]  # fmt: skip


def loads_of(teams: list[Team], jobs: Iterable[tuple[str, str, int, float | None, str | None]]) -> dict[str, Load]:
    """Each team's queued and running slots and newest job update, by its queues (and its Airflow team)."""
    loads = {team.name: Load() for team in teams}
    for state, queue, slots, last_update, job_team in jobs:
        for team in teams:
            if queue not in team.queues or (team.airflow_team and job_team not in (None, team.airflow_team)):
                continue
            load = loads[team.name]
            if state == "queued":
                load.queued += slots
            elif state == "running":
                load.running += slots
            if last_update is not None:
                load.newest = last_update if load.newest is None else max(load.newest, last_update)
    return loads


@dataclass
class WorkerRow:
    name: str
    state: str
    age: float | None  # seconds since its last heartbeat
    airflow_version: str = ""
    edge_version: str = ""
    jobs_active: int = 0


def worker_rows(now: float) -> list[WorkerRow]:
    from airflow.providers.edge3.models.edge_worker import get_registered_edge_hosts

    rows = []
    for worker in get_registered_edge_hosts():
        state = getattr(worker, "state", "")
        sysinfo = worker.sysinfo if isinstance(worker.sysinfo, dict) else json.loads(worker.sysinfo or "{}")
        rows.append(WorkerRow(
            name=worker.worker_name, state=str(getattr(state, "value", state)),
            age=now - worker.last_update.timestamp() if worker.last_update is not None else None,
            airflow_version=str(sysinfo.get("airflow_version", "")),
            edge_version=str(sysinfo.get("edge_provider_version", "")), jobs_active=int(worker.jobs_active or 0),
        ))  # fmt: skip
    return rows


# ---------------------------------------------------------------------- Cloud Run


_token: tuple[str, float] = ("", 0.0)


def access_token() -> str:
    """The central site's service account token, from the metadata server (cached until it nears expiry)."""
    global _token
    if time.monotonic() < _token[1]:
        return _token[0]
    url = f"{METADATA}/computeMetadata/v1/instance/service-accounts/default/token"
    request = urllib.request.Request(url, headers={"Metadata-Flavor": "Google"})  # noqa: S310 (http(s) only)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        body = json.load(response)
    _token = (body["access_token"], time.monotonic() + max(int(body.get("expires_in", 0)) - 60, 0))
    return _token[0]


def run_api(method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {access_token()}", "Content-Type": "application/json"}
    request = urllib.request.Request(f"{RUN_API}/v2/{path}", data=data, method=method, headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (https)
        return json.load(response)


def instance_count(team: Team) -> int:
    # JSON leaves a proto3 zero out: no manualInstanceCount means 0.
    return int(run_api("GET", team.resource_path).get("scaling", {}).get("manualInstanceCount", 0))


def set_instance_count(team: Team, count: int) -> None:
    run_api("PATCH", f"{team.resource_path}?updateMask=scaling.manualInstanceCount",
            {"scaling": {"manualInstanceCount": count}})


# ---------------------------------------------------------------------- scale


def decide(team: Team, current: int, active_slots: int, idle_seconds: float) -> int | None:
    """The team's new instance count, or None to leave it: out at once to ceil(slots / concurrency)
    within the bounds; in only when idle long enough, and then straight to the minimum (Cloud Run
    picks which instance stops, so the count never goes down while a task of the team runs)."""
    desired = min(max(math.ceil(active_slots / team.worker_concurrency), team.instances_min), team.instances_max)
    if desired > current:
        return desired
    if active_slots == 0 and idle_seconds >= team.scale_in_idle_seconds and current > team.instances_min:
        return team.instances_min
    return None


def log(message: str) -> None:
    print(f"edge_site: {message}", file=sys.stderr, flush=True)


@dataclass
class Scaler:
    """One scaler for every elastic team: each team follows only its own queues and bounds."""

    only: tuple[str, ...] = ()  # team names; empty: every elastic team
    history: str | None = None  # a CSV file each step appends to
    known: dict[str, Team] = field(default_factory=dict)

    def step(self) -> list[str]:
        """One look at every elastic team; the teams whose step failed."""
        teams = [team for team in teams_of(site_pools(), log)
                 if team.elastic and (not self.only or team.name in self.only)]
        self.announce(teams)
        loads = loads_of(teams, job_rows())
        now, failed, seen = time.time(), [], []
        for team in teams:
            load = loads[team.name]
            if load.active:
                idle = 0.0
            elif load.newest is None:  # no job left in the table: idle for longer than it keeps them
                idle = math.inf
            else:
                idle = max(now - load.newest, 0.0)
            try:  # one team's failure (its pool, its grant) must not stop the others
                current = instance_count(team)
                new = decide(team, current, load.active, idle)
                if new is not None:
                    log(f"{team.name}: {load.active} task slot(s) queued or running; instances {current} -> {new}")
                    set_instance_count(team, new)
                seen.append((team.name, load.queued, load.running, current if new is None else new))
            except (OSError, ValueError, KeyError) as error:
                failed.append(team.name)
                http = isinstance(error, urllib.error.HTTPError)
                detail = error.read().decode(errors="replace")[:300] if http else ""
                log(f"{team.name}: step failed: {type(error).__name__}: {error} {detail}".rstrip())
        if self.history and seen:
            append_history(self.history, now, seen)
        return failed

    def announce(self, teams: list[Team]) -> None:
        now = {team.name: team for team in teams}
        for name, team in now.items():
            if self.known.get(name) != team:
                log(f"{name}: worker pool {team.resource_path}, queues {','.join(team.queues)}, "
                    f"{team.instances_min} to {team.instances_max} instances of {team.worker_concurrency} slots, "
                    f"scale-in after {team.scale_in_idle_seconds} s idle")
        for name in set(self.known) - set(now):
            log(f"{name}: no longer registered as elastic; left as it is")
        self.known = now


def scale(args: argparse.Namespace) -> int:
    scaler = Scaler(only=tuple(args.team or ()), history=args.history)
    log(f"scaling every elastic team of this site every {PERIOD_SECONDS:g} s")
    while True:
        try:
            failed = scaler.step()
            if args.once:
                return 1 if failed else 0
        except Exception as error:  # the database or the registry: retry next period
            if args.once:
                raise
            log(f"step failed, retrying in {PERIOD_SECONDS:g} s: {type(error).__name__}: {error}")
        time.sleep(PERIOD_SECONDS)


# ---------------------------------------------------------------------- remove-dead-workers


def dead_rows(teams: list[Team], rows: list[WorkerRow], older_than: float) -> tuple[list[WorkerRow], list[WorkerRow]]:
    """(rows to remove, rows to leave): a registered team's rows silent longer than the bound;
    removed when edge3 counts the worker gone, left (and named) while it still says idle or running."""
    remove, leave = [], []
    for row in rows:
        if not any(team.owns_worker(row.name) for team in teams):
            continue
        if row.age is not None and row.age <= older_than:
            continue
        (remove if row.state in GONE else leave).append(row)
    return remove, leave


def remove_dead_workers(args: argparse.Namespace) -> int:
    from airflow.providers.edge3.models.edge_worker import remove_worker

    teams = teams_of(site_pools(), log)
    remove, leave = dead_rows(teams, worker_rows(time.time()), args.older_than)
    removed, left = 0, len(leave)
    for row in leave:
        print(f"left {row.name}: still {row.state!r} at the central site, {silent(row)}; edge3's scheduler marks "
              "it 'unknown' after 5 heartbeat intervals without one, and a later run removes it")
    for row in remove:
        if args.dry_run:
            removed += 1
            print(f"would remove {row.name} ({row.state}, {silent(row)})")
            continue
        try:
            remove_worker(row.name)
        except (TypeError, ValueError) as error:  # it came back, or another run removed it
            left += 1
            print(f"left {row.name}: {error}")
            continue
        removed += 1
        print(f"removed {row.name} ({row.state}, {silent(row)})")
    would = " would be" if args.dry_run else ""
    print(f"{len(teams)} team(s): {removed} row(s){would} removed, {left} left "
          f"(rows silent for more than {args.older_than} s)")
    return 0


def silent(row: WorkerRow) -> str:
    return f"silent {row.age:.0f} s" if row.age is not None else "never heard from"


# ---------------------------------------------------------------------- fleet


def site_versions() -> tuple[str, str]:
    from airflow import __version__ as airflow_version
    from airflow.providers.edge3 import __version__ as edge_version

    return airflow_version, edge_version


def fleet_table(teams: list[Team], loads: dict[str, Load], rows: list[WorkerRow], counts: dict[str, str],
                site: tuple[str, str]) -> str:
    """The fleet as a plain-text table, one line per team (no colour: it goes to logs and pipes too)."""
    header = ("team", "release", "pool target", "instances", "workers live", "gone", "versions", "queued",
              "running", "slots")
    lines = [header]
    for team in teams:
        mine = [row for row in rows if team.owns_worker(row.name)]
        live = [row for row in mine if row.state in LIVE]
        states: dict[str, int] = {}
        for row in live:
            states[row.state] = states.get(row.state, 0) + 1
        versions = sorted({f"{row.airflow_version}/{row.edge_version}" for row in live})
        site_pair = f"{site[0]}/{site[1]}"
        shown = ", ".join(v if v == site_pair else f"{v} (site {site_pair})" for v in versions) or "-"
        bounds = (f"{team.instances_min}-{team.instances_max}" if team.instances_min != team.instances_max
                  else str(team.instances_min))
        load = loads[team.name]
        lines.append((
            team.name, short(team.release), f"{team.deployment_target} {team.resource}",
            f"{counts.get(team.name, '?')} of {bounds}",
            ", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "0",
            str(len(mine) - len(live)), shown, str(load.queued), str(load.running), str(team.slots),
        ))  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(text)


def parallelism_line(teams: list[Team], parallelism: int, edge_version: str) -> str:
    """Every team's Edge tasks at most against the site's [core] parallelism, which counts them from edge3 5.0.0."""
    total = sum(team.tasks_at_most for team in teams)
    line = f"every team's Edge tasks at most: {total}; [core] parallelism: {parallelism}"
    counts = int(edge_version.split(".", 1)[0]) >= 5
    if counts and parallelism < total:
        line += (f" (too low: edge3 {edge_version} counts Edge tasks against it, so the site hands out no more than "
                 f"{parallelism} at once; raise it to at least {total} plus the other executors' tasks)")
    elif not counts:
        line += f" (edge3 {edge_version} does not count Edge tasks against it)"
    return line


def teams_lines(teams: list[Team]) -> str:
    rows = [("team", "project", "region", "target", "resource", "tasks_at_most")]
    rows += [(team.name, team.project, team.region, team.deployment_target, team.resource, str(team.tasks_at_most))
             for team in teams]  # fmt: skip
    return "\n".join("\t".join(row) for row in rows)


def teams(args: argparse.Namespace) -> int:
    print(teams_lines(teams_of(site_pools(), log)))
    return 0


def short(release: str) -> str:
    """A release tag as it is; a commit (a repo rendered from no release) by its first 12 digits."""
    return release[:12] if re.fullmatch(r"[0-9a-f]{40}", release) else (release or "?")


def fleet(args: argparse.Namespace) -> int:
    teams = teams_of(site_pools(), log)
    if not teams:
        print("no team is registered at this site: import each team's pools.json (airflow pools import pools.json)")
        return 1
    loads = loads_of(teams, job_rows())
    counts = {}
    for team in teams:
        if team.deployment_target != "worker-pool":
            continue
        try:  # the central account may read the pools it scales (docs/platform: the fleet view)
            counts[team.name] = str(instance_count(team))
        except (OSError, ValueError, KeyError):
            counts[team.name] = "?"
    from airflow.configuration import conf

    site = site_versions()
    print(fleet_table(teams, loads, worker_rows(time.time()), counts, site))
    print(parallelism_line(teams, conf.getint("core", "parallelism"), site[1]))
    print("instances: the worker pool's count at Cloud Run, '?' where this site's account may not read it; "
          "workers live: rows that sent a heartbeat lately, by state; gone: rows edge3 counts as gone "
          "(remove-dead-workers clears them); versions: Airflow/edge3 of the live workers")
    return 0


# ---------------------------------------------------------------------- history and chart

HISTORY_FIELDS = ("time", "team", "queued", "running", "instances")


def append_history(path: str, now: float, rows: list[tuple[str, int, int, int]]) -> None:
    """One CSV line per team of a scaler step: time, team, queued and running slots, instances after it."""
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    with open(path, "a", newline="") as out:
        writer = csv.writer(out)
        if new:
            writer.writerow(HISTORY_FIELDS)
        writer.writerows((f"{now:.1f}", team, queued, running, instances) for team, queued, running, instances in rows)


def read_history(path: str) -> dict[str, list[tuple[float, int, int]]]:
    """team -> [(time, backlog slots (queued + running), instances)], in time order."""
    series: dict[str, list[tuple[float, int, int]]] = {}
    with open(path, newline="") as source:
        for row in csv.DictReader(source):
            series.setdefault(row["team"], []).append(
                (float(row["time"]), int(row["queued"]) + int(row["running"]), int(row["instances"])))
    return {team: sorted(points) for team, points in sorted(series.items())}


def chart_svg(series: dict[str, list[tuple[float, int, int]]], title: str = "") -> str:
    """Each team's backlog (queued + running task slots) and instance count over time, one panel
    per team on a shared time axis: a standalone SVG, no library."""
    width, panel, left, right, top, gap = 760, 150, 60, 20, 40, 30
    times = [t for points in series.values() for t, _, _ in points] or [0.0]
    start, span = min(times), max(max(times) - min(times), 1.0)
    height = top + len(series) * (panel + gap) + 10
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f"<title>{escape(title or 'Edge workers: backlog and instances per team')}</title>",
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{left}" y="20" font-size="14">{escape(title or "Backlog (task slots) and instances")}</text>',
           f'<text x="{width - right}" y="20" text-anchor="end"><tspan fill="#d9480f">backlog</tspan> '
           '<tspan fill="#1c7ed6">instances</tspan></text>']
    for index, (team, points) in enumerate(series.items()):
        y0 = top + index * (panel + gap)
        peak = max([1, *(backlog for _, backlog, _ in points), *(count for _, _, count in points)])

        def x(t: float) -> float:
            return left + (t - start) / span * (width - left - right)

        def y(value: float, y0: float = y0, peak: int = peak) -> float:
            return y0 + panel - value / peak * panel

        backlog = " ".join(f"{x(t):.1f},{y(b):.1f}" for t, b, _ in points)
        plot = width - left - right
        steps, last = [], None  # the instance count holds until the next step: a step line
        for t, _, count in points:
            if last is not None:
                steps.append(f"{x(t):.1f},{y(last):.1f}")
            steps.append(f"{x(t):.1f},{y(count):.1f}")
            last = count
        instances = " ".join(steps)
        out += [f'<g id="{escape(team)}">',
                f'<text x="{left}" y="{y0 - 6}">{escape(team)} (peak {peak})</text>',
                f'<rect x="{left}" y="{y0}" width="{plot}" height="{panel}" fill="none" stroke="#ccc"/>',
                f'<text x="{left - 6}" y="{y0 + 4}" text-anchor="end">{peak}</text>',
                f'<text x="{left - 6}" y="{y0 + panel}" text-anchor="end">0</text>',
                f'<polyline class="backlog" fill="none" stroke="#d9480f" stroke-width="1.5" points="{backlog}"/>',
                f'<polyline class="instances" fill="none" stroke="#1c7ed6" stroke-width="2" points="{instances}"/>',
                "</g>"]
    out.append(f'<text x="{width - right}" y="{height - 2}" text-anchor="end">{span:.0f} s</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def chart(args: argparse.Namespace) -> int:
    series = read_history(args.history)
    if not series:
        print(f"{args.history}: no scaler step recorded yet", file=sys.stderr)
        return 1
    svg = chart_svg(series)
    if args.out:
        with open(args.out, "w") as out:
            out.write(svg)
    else:
        sys.stdout.write(svg)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    scale_parser = commands.add_parser("scale", help="set every elastic team's instance count from its queue")
    scale_parser.add_argument("--once", action="store_true", help="one step, then exit (1 if a team's step failed)")
    scale_parser.add_argument("--team", action="append", metavar="NAME", help="only this team (repeatable)")
    scale_parser.add_argument("--history", metavar="CSV", help="append each step's backlog and instances per team")
    scale_parser.set_defaults(run=scale)
    clean = commands.add_parser("remove-dead-workers", help="remove every team's worker rows gone longer than a bound")
    clean.add_argument("--older-than", type=int, default=DEFAULT_OLDER_THAN, metavar="SECONDS",
                       help=f"remove rows whose last heartbeat is older than this (default {DEFAULT_OLDER_THAN})")
    clean.add_argument("--dry-run", action="store_true", help="print what would be removed, remove nothing")
    clean.set_defaults(run=remove_dead_workers)
    commands.add_parser("fleet", help="each team's pool, instances, workers and tasks").set_defaults(run=fleet)
    commands.add_parser("teams", help="each registered team's project, region and resource, tab-separated "
                        "(for scripts: the secret's rotation)").set_defaults(run=teams)
    chart_parser = commands.add_parser("chart", help="draw a scaler history as SVG: backlog and instances per team")
    chart_parser.add_argument("history", metavar="CSV", help="the file of scale --history")
    chart_parser.add_argument("--out", metavar="SVG", help="write here instead of stdout")
    chart_parser.set_defaults(run=chart)
    args = parser.parse_args(argv)
    if getattr(args, "older_than", 0) < 0:
        parser.error("--older-than must be 0 or more seconds")
    if args.run is not chart:
        load_airflow()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
