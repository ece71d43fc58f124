"""The platform team keeps each central site's facts in sites/: teams never type them, and a site
change reaches every team repo through an unattended `copier update`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from support.templates import (
    ROOT,
    git,
    leftovers,
    load_answers,
    release_after,
    render,
    rendered_files,
    snapshot_template,
    team_repo_at,
)
from support.templates import (
    copier_cli as copier,
)
from support.upgrades import release, write_site

# What Renovate's copier manager runs (it trusts nothing, passes no --data).
RENOVATE_UPDATE = ["update", "--skip-answered", "--defaults", "--vcs-ref", "v2.0.0"]
# The last commit of main before the site profile: its teams typed the site's facts as answers.
BEFORE_SITE_PROFILES = "94f0183"
PROD = yaml.safe_load((ROOT / "sites" / "prod.yml").read_text())


def tree(repo: Path) -> dict[str, str]:
    return {str(path.relative_to(repo)): path.read_text() for path in rendered_files(repo)}


# --------------------------------------------------------------------------- a team never types them


def test_the_site_s_facts_are_recorded_for_the_checks_but_are_not_answers(render_to) -> None:
    repo = render_to({}, name="team-c")
    recorded = yaml.safe_load((repo / ".copier-answers.yml").read_text())

    assert recorded["site"] == "prod"
    for fact in ("airflow_version", "edge_provider_version", "edge_api_url", "dags_bucket", "edge_secret_name"):
        assert fact not in recorded  # an answer would be read back on update
        assert recorded[f"_site_{fact}"] == PROD[fact]
    dockerfile = (repo / "Dockerfile").read_text()
    assert f"FROM apache/airflow:slim-{PROD['airflow_version']}-python{PROD['python_version']}" in dockerfile
    assert f'"apache-airflow-providers-edge3=={PROD["edge_provider_version"]}"' in dockerfile
    # The team's own questions take the site's defaults.
    assert (recorded["gcp_project_id"], recorded["region"]) == (PROD["gcp_project_id"], PROD["region"])


def test_a_fact_given_with_data_holds_for_that_render_only_and_its_line_follows(render_to) -> None:
    repo = render_to({"airflow_version": "3.3.2"}, name="team-c")
    answers = load_answers(repo)

    assert answers["airflow_version"] == "3.3.2"
    # The facts that depend on the Airflow line take that line's defaults, not the site's 2.x ones.
    assert (answers["edge_provider_version"], answers["job_poll_interval"]) == ("5.1.0", 5)
    assert "airflow_version" not in yaml.safe_load((repo / ".copier-answers.yml").read_text())


@pytest.fixture(scope="module")
def two_sites(tmp_path_factory: pytest.TempPathFactory) -> Path:
    template = snapshot_template(tmp_path_factory.mktemp("two-sites"))
    write_site(template, "staging", airflow_version="3.3.2", edge_provider_version="5.1.0",
               edge_api_url="https://airflow-staging.example.com/edge_worker/v1/rpcapi", dags_bucket="staging-dags")
    release(template, "v1.1.0")
    return template


def test_a_team_of_the_second_site_gets_that_site_s_facts(two_sites: Path, tmp_path: Path) -> None:
    repo = render(tmp_path / "team-s", {"site": "staging"}, src=two_sites, vcs_ref="v1.1.0")
    answers = load_answers(repo)

    assert (answers["site"], answers["airflow_version"], answers["dags_bucket"]) == ("staging", "3.3.2", "staging-dags")
    env = yaml.safe_load((repo / "worker.env.yaml").read_text())
    assert env["AIRFLOW__EDGE__API_URL"] == "https://airflow-staging.example.com/edge_worker/v1/rpcapi"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "https://airflow-staging.example.com/execution"


def test_a_site_that_does_not_exist_is_refused_naming_the_sites(two_sites: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="site must be one of the sites in the template's sites/: prod, staging"):
        render(tmp_path / "team-x", {"site": "qa"}, src=two_sites, vcs_ref="v1.1.0")
    assert not (tmp_path / "team-x").exists()


# --------------------------------------------------------------------------- a bad profile stops every render

BAD_PROFILES = [
    ({"airflow_version": None}, "site prod must say airflow_version"),
    ({"airflow_verison": "2.10.5"}, "site prod has facts the template does not know: airflow_verison"),
    ({"airflow_version": 2.10}, "site prod: airflow_version: not a supported release"),
    ({"airflow_version": "3.3.2"}, "site prod: edge_provider_version: 3.x takes edge3 2.0+"),
    ({"edge_api_url": "https://airflow.example.com/edge_worker/v1"}, "site prod: edge_api_url: not an Edge API URL"),
    ({"job_poll_interval": 10}, "site prod: job_poll_interval: at most 2 s on Airflow 2"),
    ({"dags_bucket": None}, "site prod: dags_bucket: not a bucket name"),
    ({"python_version": 3.12}, "site prod: python_version: one of 3.10, 3.11, 3.12"),
    ({"central_python_deps": ["pandas; os_name=='nt'"]}, "site prod: central_python_deps: not a plain requirement"),
    ({"multi_team": "yes"}, "site prod: multi_team: true or false"),
    ({"multi_team": True}, "site prod: multi_team: needs Airflow 3.2.0 or newer"),
    ({"multi_team": True, "airflow_version": "3.3.2", "edge_provider_version": "3.7.0", "python_version": "3.12"},
     "site prod: multi_team: needs edge3 3.8.0 or newer"),
]


@pytest.mark.parametrize(("facts", "error"), BAD_PROFILES, ids=[next(iter(f)) + "-" + str(i) for i, (f, _) in
                                                              enumerate(BAD_PROFILES)])
def test_a_bad_site_profile_stops_copier_naming_the_site_and_the_fact(
    tmp_path: Path, facts: dict[str, Any], error: str
) -> None:
    template = snapshot_template(tmp_path / "template")
    write_site(template, "prod", **facts)
    release(template, "v1.1.0")

    with pytest.raises(ValueError, match="Validation error for question 'site'") as err:
        render(tmp_path / "team-c", {}, src=template, vcs_ref="v1.1.0")
    assert error in " ".join(str(err.value).split())
    assert not (tmp_path / "team-c").exists()


def test_two_sites_of_one_name_are_refused(tmp_path: Path) -> None:
    template = snapshot_template(tmp_path / "template")
    (template / "sites" / "prod-copy.yml").write_text((template / "sites" / "prod.yml").read_text())
    release(template, "v1.1.0")

    with pytest.raises(ValueError, match="Two site profiles in sites/ have the same name"):
        render(tmp_path / "team-c", {}, src=template, vcs_ref="v1.1.0")


# --------------------------------------------------------------------------- a site change is one release


def test_a_site_upgrade_reaches_a_team_repo_with_no_data_and_keeps_its_edits(tmp_path: Path) -> None:
    template = snapshot_template(tmp_path / "template")  # v1.0.0: prod on Airflow 2.10.5
    repo = team_repo_at(template, tmp_path / "team-c", "v1.0.0", {"python_deps": ["pandas==2.2.3"]})
    with (repo / "requirements.txt").open("a") as requirements:
        requirements.write("requests==2.32.3  # our own line\n")
    (repo / "dags" / "team_c" / "report.py").write_text("# our DAG\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "our edits")
    write_site(template, "prod", airflow_version="3.3.2", edge_provider_version="5.1.0", job_poll_interval=5)
    release(template, "v2.0.0")

    result = copier(repo, *RENOVATE_UPDATE)

    assert result.returncode == 0, result.stderr
    answers = load_answers(repo)
    assert (answers["_commit"], answers["airflow_version"], answers["edge_provider_version"]) == ("v2.0.0", "3.3.2",
                                                                                                "5.1.0")
    dockerfile = (repo / "Dockerfile").read_text()
    assert "FROM apache/airflow:slim-3.3.2-python3.12" in dockerfile
    assert '"apache-airflow==3.3.2"' in dockerfile
    assert '"apache-airflow-providers-edge3==5.1.0"' in dockerfile
    env = yaml.safe_load((repo / "worker.env.yaml").read_text())
    assert env["AIRFLOW__EDGE__JOB_POLL_INTERVAL"] == "5"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "https://airflow.example.com/execution"
    assert "requests==2.32.3  # our own line" in (repo / "requirements.txt").read_text()
    assert (repo / "dags" / "team_c" / "report.py").read_text() == "# our DAG\n"
    assert answers["python_deps"] == ["pandas==2.2.3"]
    assert leftovers(repo) == []


def test_a_repo_rendered_before_site_profiles_updates_to_a_fresh_copy(tmp_path: Path) -> None:
    """A team repo of the release before this one, where the site's facts were answers, takes this
    release unattended and ends up byte for byte what a fresh copy with its team answers renders."""
    template = release_after(tmp_path / "template", BEFORE_SITE_PROFILES)
    team_answers = {"queues": ["team_c_queue", "team_c_heavy"], "pool_slots": 12, "worker_concurrency": 2}
    repo = team_repo_at(template, tmp_path / "team-c", "v1.0.0", team_answers)
    assert "airflow_version" in yaml.safe_load((repo / ".copier-answers.yml").read_text())  # an answer, then

    result = copier(repo, *RENOVATE_UPDATE)

    assert result.returncode == 0, result.stderr
    fresh = render(tmp_path / "fresh" / "team-c", {"team_name": "team-c", **team_answers}, src=template,
                   vcs_ref="v2.0.0")
    updated, expected = tree(repo), tree(fresh)
    assert sorted(updated) == sorted(expected)
    assert [name for name in expected if updated[name] != expected[name]] == []
