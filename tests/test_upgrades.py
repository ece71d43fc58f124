"""A team upgrades Airflow when its central site does, with the command its README gives."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import git, load_answers, snapshot_template, team_repo_at
from test_readme import sh_blocks

# The question a release before base_image_repository asked (the FROM line kept its answer).
OLD_BASE_IMAGE_QUESTION = """base_image:
  type: str
  help: The image the worker builds FROM.
  default: "apache/airflow:{{ airflow_version }}-python{{ python_version }}"

"""


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


def assert_built_for(repo: Path, airflow: str, edge3: str, python: str = "3.12", base: str = "apache/airflow") -> None:
    dockerfile = (repo / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)$", dockerfile, re.MULTILINE) == [f"{base}:{airflow}-python{python}"]
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


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (("2.10.3", "1.5.0"), ("2.10.5", "1.5.0")),
        (("3.2.2", "5.1.0"), ("3.3.2", "5.1.0")),
        (("2.10.5", "1.5.0"), ("3.3.2", "5.1.0")),
    ],
    ids=["2.10.3-to-2.10.5", "3.2.2-to-3.3.2", "2.10.5-to-3.3.2"],
)
def test_the_readme_upgrade_moves_the_image_the_pins_and_the_settings(
    template_releases: Path, tmp_path: Path, before: tuple[str, str], after: tuple[str, str]
) -> None:
    repo = team_repo_at(template_releases, tmp_path / "team-c", "v1.0.0",
                        {"airflow_version": before[0], "edge_provider_version": before[1]})
    assert_built_for(repo, *before)

    upgrade(repo, *after)

    assert_built_for(repo, *after)


def test_a_python_upgrade_moves_the_image_too(template_releases: Path, tmp_path: Path) -> None:
    repo = team_repo_at(template_releases, tmp_path / "team-c", "v1.0.0", {"airflow_version": "3.3.2"})
    result = subprocess.run([sys.executable, "-m", "copier", "update", "--defaults", "--data", "python_version=3.11"],
                            cwd=repo, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert_built_for(repo, "3.3.2", "5.1.0", python="3.11")


@pytest.fixture
def release_with_base_image_question(tmp_path: Path) -> Path:
    """v1.0.0 asks base_image as a question (as releases before base_image_repository did); v2.0.0 is today's."""
    template = snapshot_template(tmp_path / "edge-template")
    copier_yml = template / "copier.yml"
    today = copier_yml.read_text()
    start = today.index("base_image_repository:\n")
    end = today.index("secret_env_var:\n")
    copier_yml.write_text(today[:start] + OLD_BASE_IMAGE_QUESTION + today[end:])
    git(template, "commit", "-q", "-am", "v1.0.0 with base_image as a question")
    git(template, "tag", "-f", "v1.0.0")
    copier_yml.write_text(today)
    git(template, "commit", "-q", "-am", "v2.0.0")
    git(template, "tag", "v2.0.0")
    return template


def test_a_mirror_answered_before_base_image_repository_is_kept_through_an_upgrade(
    release_with_base_image_question: Path, tmp_path: Path
) -> None:
    mirror = "europe-docker.pkg.dev/acme/mirror/apache/airflow"
    repo = team_repo_at(release_with_base_image_question, tmp_path / "team-c", "v1.0.0",
                        {"airflow_version": "3.2.2", "base_image": f"{mirror}:3.2.2-python3.12"})
    assert load_answers(repo)["base_image"] == f"{mirror}:3.2.2-python3.12"

    upgrade(repo, "3.3.2", "5.1.0")

    answers = load_answers(repo)
    assert answers["_commit"] == "v2.0.0"
    assert answers["base_image_repository"] == mirror
    assert "base_image" not in answers
    assert_built_for(repo, "3.3.2", "5.1.0", base=mirror)
