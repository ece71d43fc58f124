"""Example DAG of team team-c: one task that runs on the team's Edge worker."""

from __future__ import annotations

import socket

from team_c import team_default_args

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.10
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
        host = socket.gethostname()
        print(f"Hello from the team-c Edge worker on {host}")
        return host

    hello_from_edge()
