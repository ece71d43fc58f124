"""DAG helpers of team team-c: route tasks to the team's Edge worker."""

from team_c.edge_defaults import POOL, QUEUE, QUEUES, team_default_args

__all__ = ["POOL", "QUEUE", "QUEUES", "team_default_args"]
