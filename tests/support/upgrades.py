"""A team repo upgraded to a new Airflow as its README says, and what the upgraded repo must build."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from support.templates import load_answers, sh_blocks


def readme_upgrade_command(repo: Path, airflow: str, edge3: str) -> list[str]:
    """The team README's upgrade command, with NEW filled in."""
    commands = [line for block in sh_blocks((repo / "README.md").read_text()) for line in block]
    command = next(line for line in commands if "airflow_version=NEW" in line)
    assert command == "copier update --defaults --data airflow_version=NEW --data edge_provider_version=NEW"
    return command.replace("airflow_version=NEW", f"airflow_version={airflow}").replace(
        "edge_provider_version=NEW", f"edge_provider_version={edge3}").split()


def upgrade(repo: Path, airflow: str, edge3: str) -> None:
    argv = readme_upgrade_command(repo, airflow, edge3)
    assert argv[0] == "copier"
    result = subprocess.run([sys.executable, "-m", *argv], cwd=repo, capture_output=True, text=True, check=False,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr


def assert_built_for(
    repo: Path, airflow: str, edge3: str, python: str = "3.12", base: str = "apache/airflow", variant: str = "slim"
) -> None:
    dockerfile = (repo / "Dockerfile").read_text()
    slim = "slim-" if variant == "slim" else ""
    assert re.findall(r"^FROM (\S+)$", dockerfile, re.MULTILINE) == [f"{base}:{slim}{airflow}-python{python}"]
    assert f'"apache-airflow=={airflow}"' in dockerfile
    assert f'"apache-airflow-providers-edge3=={edge3}"' in dockerfile
    major = airflow.split(".")[0]
    env = yaml.safe_load((repo / "worker.env.yaml").read_text())
    assert env["AIRFLOW__CORE__EXECUTOR"] == "airflow.providers.edge3.executors.EdgeExecutor"
    # edge3 1.x (Airflow 2.10) kills tasks on SIGTERM and needs the short task heartbeat.
    assert ("AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC" in env) == (major == "2")
    central = (repo / "central" / "edge.env").read_text()
    secret = "AIRFLOW__CORE__INTERNAL_API_SECRET_KEY" if major == "2" else "AIRFLOW__API_AUTH__JWT_SECRET"
    assert f"# Settings the central Airflow site ({airflow}, edge3 {edge3})" in central
    assert f"set {secret} to the value" in central
    answers = load_answers(repo)
    assert (answers["airflow_version"], answers["edge_provider_version"]) == (airflow, edge3)
