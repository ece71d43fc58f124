"""Example DAG of team team-c: one task that runs on the team's Edge worker.

The central site imports this file too, with only Airflow, its edge provider, the standard provider
and central_python_deps: import only those at module level, and the team's packages
(requirements.txt) inside the task function (README "DAG files both sides can load").
"""

from __future__ import annotations

import socket

from team_c import team_default_args

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.decorators import task

with DAG(
    dag_id="team_c_example",
    default_args=team_default_args(),
    schedule=None,
    catchup=False,
    tags=["team-c", "edge"],
):

    @task
    def hello_from_edge() -> str:
        # Runs on the worker: import the team's packages here, e.g. `import pandas as pd`.
        import platform

        host = socket.gethostname()
        print(f"Hello from the team-c Edge worker on {host}, Python {platform.python_version()}")
        return host

    hello_from_edge()
