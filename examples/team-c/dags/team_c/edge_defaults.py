"""Default task arguments that send team team-c's tasks to its Edge worker.

Use them in every DAG of the team:

    from team_c import team_default_args

    with DAG("my_dag", default_args=team_default_args(), ...):
        ...

A task can still pick another of the team's queues: `queue=QUEUES[1]`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

TEAM = "team-c"
QUEUES: tuple[str, ...] = ("team_c_queue", "team_c_heavy", )
QUEUE = QUEUES[0]
POOL = "team_c_pool"

_DEFAULTS: dict[str, Any] = {
    "owner": TEAM,
    # Only a worker serving this queue takes the task.
    "queue": QUEUE,
    # Caps the team's concurrent tasks across all its workers.
    "pool": POOL,
    # A task cut short by a worker shutdown (deploy, scale-in) fails and runs again.
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
}


def team_default_args(**overrides: Any) -> dict[str, Any]:
    """The team's default_args, with `overrides` on top."""
    return {**_DEFAULTS, **overrides}
