"""A central site in Airflow's multi-team mode: the team's worker runs as its Airflow team, and
its central notes say what the site needs for it (the real site: tests/e2e/test_teams_of_a_multi_team_site.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import yaml
from support.templates import render, snapshot_template
from support.upgrades import release, write_site

MULTI_TEAM = {"airflow_version": "3.3.2", "edge_provider_version": "5.1.0", "python_version": "3.12",
              "multi_team": True}


def test_on_a_multi_team_site_the_worker_runs_as_the_team_s_airflow_team(tmp_path: Path) -> None:
    template = snapshot_template(tmp_path / "template")
    write_site(template, "prod", **MULTI_TEAM)
    release(template, "v1.1.0")

    repo = render(tmp_path / "team-c", {"team_name": "team-c"}, src=template, vcs_ref="v1.1.0")

    env = yaml.safe_load((repo / "worker.env.yaml").read_text())
    assert env["EDGE_TEAM_NAME"] == "team_c"
    bundles = json.loads(env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
    assert [bundle["name"] for bundle in bundles] == ["team_c"]  # a bundle of its own, named after the team
    central_env = (repo / "central" / "edge.env").read_text()
    edge = "airflow.providers.edge3.executors.EdgeExecutor"
    assert "AIRFLOW__CORE__MULTI_TEAM=True\n" in central_env
    assert f"AIRFLOW__CORE__EXECUTOR={edge};team_c={edge}\n" in central_env
    assert f"executor = {edge};team_c={edge}\n" in (repo / "central" / "airflow.cfg").read_text()
    notes = " ".join((repo / "central" / "README.md").read_text().split())
    for step in ("airflow teams create team_c", '"team_name": "team_c"', "airflow triggerer --team-name team_c",
                 "gives the pool to team `team_c`", "not: a security boundary"):
        assert step in notes, step
    # The pool is the team's own at the site: pools.json says so, and `airflow pools import` reads it.
    assert json.loads((repo / "pools.json").read_text())["team_c_pool"]["team_name"] == "team_c"


def test_on_a_site_without_teams_nothing_names_a_team(render_to: Callable[..., Path]) -> None:
    repo = render_to({"team_name": "team-c", "airflow_version": "3.3.2"})

    assert "EDGE_TEAM_NAME" not in (repo / "worker.env.yaml").read_text()
    assert "MULTI_TEAM" not in (repo / "central" / "edge.env").read_text()
    assert "airflow teams create" not in (repo / "central" / "README.md").read_text()
    assert "team_name" not in json.loads((repo / "pools.json").read_text())["team_c_pool"]
