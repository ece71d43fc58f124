"""A team repo takes a template release with `copier update`, unattended, and keeps its own edits."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support.templates import (
    V1_DOCKERFILE_LINE,
    V2_DOCKERFILE_LINE,
    git,
    leftovers,
    load_answers,
    render,
    rendered_files,
    team_repo_at,
)
from support.templates import (
    copier_cli as copier,
)

# What Renovate's copier manager runs (it trusts nothing): no --trust anywhere.
RENOVATE_UPDATE = ["update", "--skip-answered", "--defaults", "--vcs-ref", "v2.0.0"]


def test_unattended_update_takes_the_release(template_releases: Path, tmp_path: Path) -> None:
    repo = team_repo_at(template_releases, tmp_path / "team-c", "v1.0.0")
    assert (repo / ".dockerignore").exists()

    result = copier(repo, *RENOVATE_UPDATE)

    assert result.returncode == 0, result.stderr
    assert load_answers(repo)["_commit"] == "v2.0.0"
    env = yaml.safe_load((repo / "worker.env.yaml").read_text())
    assert env["AIRFLOW__LOGGING__LOGGING_LEVEL"] == "INFO"
    assert V2_DOCKERFILE_LINE in (repo / "Dockerfile").read_text()
    assert not (repo / ".dockerignore").exists()
    assert leftovers(repo) == []
    assert "rev: v2.0.0" in (repo / ".pre-commit-config.yaml").read_text()


def test_the_team_s_own_edits_survive_the_update(template_releases: Path, tmp_path: Path) -> None:
    repo = team_repo_at(template_releases, tmp_path / "team-c", "v1.0.0")
    with (repo / "requirements.txt").open("a") as requirements:
        requirements.write("rich==13.9.4\n")
    dockerfile = repo / "Dockerfile"
    custom_step = "# Team step: our CA bundle.\nENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt\n"
    dockerfile.write_text(dockerfile.read_text().replace("ENTRYPOINT", custom_step + "ENTRYPOINT"))
    extra_dag = repo / "dags" / "team_c" / "nightly.py"
    extra_dag.write_text('"""Our nightly DAG."""\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Team edits")

    result = copier(repo, *RENOVATE_UPDATE)

    assert result.returncode == 0, result.stderr
    assert "rich==13.9.4" in (repo / "requirements.txt").read_text().splitlines()
    text = dockerfile.read_text()
    assert custom_step in text
    assert V2_DOCKERFILE_LINE in text
    assert extra_dag.read_text() == '"""Our nightly DAG."""\n'
    assert leftovers(repo) == []


def test_an_answer_change_re_renders_every_file_that_uses_it(template_releases: Path, tmp_path: Path) -> None:
    repo = team_repo_at(template_releases, tmp_path / "team-c", "v2.0.0")

    result = copier(repo, "update", "--defaults", "--vcs-ref", "v2.0.0", "--data",
                    "queues=[team_c_queue, team_c_heavy]")

    assert result.returncode == 0, result.stderr
    assert load_answers(repo)["queues"] == ["team_c_queue", "team_c_heavy"]
    env = yaml.safe_load((repo / "worker.env.yaml").read_text())
    assert env["EDGE_WORKER_QUEUES"] == "team_c_queue,team_c_heavy"
    assert 'QUEUES: tuple[str, ...] = ("team_c_queue", "team_c_heavy", )' in (
        repo / "dags" / "team_c" / "edge_defaults.py").read_text()
    assert "team_c_heavy" in (repo / "pools.json").read_text()
    assert "`team_c_heavy`" in (repo / "README.md").read_text()
    assert leftovers(repo) == []


def test_updating_an_untouched_repo_converges_to_a_fresh_copy(template_releases: Path, tmp_path: Path) -> None:
    answers = {"deployment_target": "service", "worker_concurrency": 2, "queues": ["a_q", "b_q"]}
    updated = team_repo_at(template_releases, tmp_path / "old" / "team-c", "v1.0.0", answers)
    result = copier(updated, *RENOVATE_UPDATE)
    assert result.returncode == 0, result.stderr
    fresh = render(tmp_path / "new" / "team-c", {"team_name": "team-c", **answers}, src=template_releases,
                   vcs_ref="v2.0.0")

    def tree(repo: Path) -> dict[str, bytes]:
        return {str(p.relative_to(repo)): p.read_bytes() for p in rendered_files(repo)}

    assert tree(updated) == tree(fresh)


def test_a_real_conflict_gives_inline_markers_the_readme_explains(template_releases: Path, tmp_path: Path) -> None:
    repo = team_repo_at(template_releases, tmp_path / "team-c", "v1.0.0")
    dockerfile = repo / "Dockerfile"
    team_line = "# Dependencies first (our team keeps this comment short).\n"
    dockerfile.write_text(dockerfile.read_text().replace(V1_DOCKERFILE_LINE, team_line))
    git(repo, "commit", "-q", "-am", "Team rewords a comment")

    result = copier(repo, *RENOVATE_UPDATE)

    assert result.returncode == 0, result.stderr
    text = dockerfile.read_text()
    assert "<<<<<<< before updating" in text
    assert ">>>>>>> after updating" in text
    assert team_line in text
    assert V2_DOCKERFILE_LINE in text
    readme = (repo / "README.md").read_text()
    assert "<<<<<<< before updating" in readme
    assert "remove the markers" in readme


@pytest.mark.parametrize("ref", ["v1.0.0", "v2.0.0"])
def test_update_runs_without_trust_and_refuses_a_dirty_repo(template_releases: Path, tmp_path: Path, ref) -> None:
    repo = team_repo_at(template_releases, tmp_path / "team-c", ref)
    (repo / "requirements.txt").write_text("uncommitted==1.0\n")
    result = copier(repo, *RENOVATE_UPDATE)
    assert result.returncode != 0
    assert "dirty" in (result.stderr + result.stdout).lower()
