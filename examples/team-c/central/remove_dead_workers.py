"""Remove team team-c's dead Edge worker rows from the central site's worker table.

Every instance of the team's worker registers under a name of its own,
team-c-<10 hex digits>, and edge3 never deletes a worker row: each restart,
redeploy, crash or scale-in leaves one behind. Run this where the central site's `airflow`
command runs, with its Python and configuration (it uses the metadata database), for
example hourly (see README.md):

    python remove_dead_workers.py                      # rows silent for more than a day
    python remove_dead_workers.py --older-than 3600    # ... for more than an hour
    python remove_dead_workers.py --dry-run            # only print what it would remove

A row is removed when its name is this team's, team-c-<10 hex digits> (never
another team's), its worker has sent no heartbeat for longer than --older-than seconds, and
edge3 counts it as gone: "offline" (stopped cleanly), "unknown" (killed or lost: edge3's
scheduler marks a worker so after 5 x [edge] heartbeat_interval without a heartbeat) or
"offline maintenance". It is removed by edge3's own remove_worker, which
`airflow edge remove-remote-edge-worker` runs too and which refuses a row in any other
state. A row still "idle" or "running" whose heartbeat is older than the bound is a worker
that died less than 5 heartbeat intervals ago: it is left and named, and a later run
removes it. Exit 0 unless the arguments or the database are wrong.
"""

from __future__ import annotations

import argparse
import re
import sys
import time

TEAM = "team-c"
# The names entrypoint.sh gives the team's instances: the team, then 10 hex digits.
WORKER_NAME = re.compile(re.escape(TEAM) + r"-[0-9a-f]{10}")
# The states edge3's remove_worker accepts: the worker is gone.
GONE = ("offline", "unknown", "offline maintenance")
DEFAULT_OLDER_THAN = 24 * 3600


def state_of(worker: object) -> str:
    state = getattr(worker, "state", "")
    return str(getattr(state, "value", state))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=f"Remove team {TEAM}'s Edge worker rows that have been gone longer than a bound."
    )
    parser.add_argument("--older-than", type=int, default=DEFAULT_OLDER_THAN, metavar="SECONDS",
                        help=f"remove rows whose last heartbeat is older than this (default {DEFAULT_OLDER_THAN})")
    parser.add_argument("--dry-run", action="store_true", help="print what would be removed, remove nothing")
    args = parser.parse_args(argv)
    if args.older_than < 0:
        parser.error("--older-than must be 0 or more seconds")

    from airflow.providers.edge3.models.edge_worker import get_registered_edge_hosts, remove_worker

    now = time.time()
    removed, left = 0, 0
    for worker in get_registered_edge_hosts():
        name, state, last = worker.worker_name, state_of(worker), worker.last_update
        # last_update is the worker's last heartbeat (or its registration), timezone-aware.
        age = now - last.timestamp() if last is not None else None
        if not WORKER_NAME.fullmatch(name) or (age is not None and age <= args.older_than):
            continue
        silent = f"silent {age:.0f} s" if age is not None else "never heard from"
        if state not in GONE:
            left += 1
            print(f"left {name}: still {state!r} at the central site, {silent}; edge3's scheduler marks it "
                  "'unknown' after 5 heartbeat intervals without one, and a later run removes it")
            continue
        if args.dry_run:
            removed += 1
            print(f"would remove {name} ({state}, {silent})")
            continue
        try:
            remove_worker(name)
        except (TypeError, ValueError) as error:  # it came back, or another run removed it
            left += 1
            print(f"left {name}: {error}")
            continue
        removed += 1
        print(f"removed {name} ({state}, {silent})")
    would = " would be" if args.dry_run else ""
    print(f"team {TEAM}: {removed} row(s){would} removed, {left} left (rows silent for more than {args.older_than} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
