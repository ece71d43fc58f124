"""A central site upgraded by the platform team's release of its site profile, and what team repos then build."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from support.templates import ROOT, copier_cli, git, leftovers, load_answers


# What Renovate's copier manager runs for a release (it trusts nothing and passes no --data).
def renovate_update(tag: str) -> list[str]:
    return ["update", "--skip-answered", "--defaults", "--vcs-ref", tag]


def write_site(template: Path, name: str = "prod", **facts: Any) -> None:
    """sites/NAME.yml of a throwaway template: the working tree's prod site with `facts` changed (None drops one)."""
    site = {**yaml.safe_load((ROOT / "sites" / "prod.yml").read_text()), "name": name, **facts}
    text = yaml.safe_dump({key: value for key, value in site.items() if value is not None}, sort_keys=False)
    (template / "sites" / f"{name}.yml").write_text(text)


def release(template: Path, tag: str) -> None:
    git(template, "add", "-A")
    git(template, "commit", "-q", "-m", tag)
    git(template, "tag", tag)


def site_release(template: Path, tag: str, **facts: Any) -> None:
    """The platform team changes its prod site's facts and releases the template."""
    write_site(template, **facts)
    release(template, tag)


def take_release(repo: Path, tag: str, *data: str) -> None:
    """A team repo takes a template release unattended, as Renovate does, and the team merges it.

    `data`: NAME=VALUE answers the team changes on the way (none for a plain release)."""
    result = copier_cli(repo, *renovate_update(tag), *(arg for item in data for arg in ("--data", item)))
    assert result.returncode == 0, result.stderr
    assert leftovers(repo) == []
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"Take edge-template {tag}")


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
    assert f"set {secret} to the site's shared Edge secret" in central
    answers = load_answers(repo)
    assert (answers["airflow_version"], answers["edge_provider_version"]) == (airflow, edge3)
