"""The template's pre-commit hooks catch a team repo drifting from its answers and its release."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.matrix import MATRIX
from support.templates import ROOT, git, load_module, team_repo_at, tool


def try_repo(repo: Path, template: Path, hook: str, home: Path, ref: str = "v2.0.0") -> subprocess.CompletedProcess:
    """`pre-commit try-repo` offline: the template is a local git repo, the hooks need nothing installed."""
    return subprocess.run(
        [tool("pre-commit"), "try-repo", str(template), hook, "--ref", ref, "--all-files", "--color", "never"],
        cwd=repo, capture_output=True, text=True, check=False,
        env={"PATH": str(Path(tool("pre-commit")).parent) + ":/usr/bin:/bin", "HOME": str(home),
             "PRE_COMMIT_HOME": str(home / "pre-commit")},
    )


@pytest.fixture
def team_repo(template_releases: Path, tmp_path: Path) -> Path:
    return team_repo_at(template_releases, tmp_path / "team-c", "v2.0.0")


def commit_all(repo: Path) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "edit")


@pytest.mark.parametrize("hook", ["edge-template-pins", "edge-template-answers", "edge-template-removed-files"])
def test_a_freshly_rendered_repo_passes_every_hook(template_releases, team_repo, tmp_path, hook) -> None:
    result = try_repo(team_repo, template_releases, hook, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Passed" in result.stdout


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("apache-airflow==2.9.3", "apache-airflow is pinned by the Dockerfile to 2.10.5"),
        ("Apache_Airflow_Providers_Edge3>=1.0", "apache-airflow-providers-edge3 is pinned by the Dockerfile to 1.5.0"),
        ("apache-airflow", "apache-airflow is pinned by the Dockerfile to 2.10.5"),
    ],
)
def test_pins_hook_flags_airflow_or_edge3_in_requirements(template_releases, team_repo, tmp_path, line, named):
    with (team_repo / "requirements.txt").open("a") as requirements:
        requirements.write(f"pandas==2.2.3\n{line}\n")
    commit_all(team_repo)
    result = try_repo(team_repo, template_releases, "edge-template-pins", tmp_path)
    assert result.returncode == 1
    assert f"requirements.txt:5: {named}" in result.stdout


def test_pins_hook_accepts_the_answers_own_pin(template_releases, team_repo, tmp_path) -> None:
    with (team_repo / "requirements.txt").open("a") as requirements:
        requirements.write("apache-airflow==2.10.5  # same as the Dockerfile\n")
    commit_all(team_repo)
    assert try_repo(team_repo, template_releases, "edge-template-pins", tmp_path).returncode == 0


@pytest.mark.parametrize(
    ("file", "old", "new", "named"),
    [
        ("Dockerfile", '"apache-airflow==2.10.5"', '"apache-airflow==2.10.4"',
         "the central site 'prod' gives '2.10.5' (airflow_version); undo the hand edit"),
        ("Dockerfile", "FROM apache/airflow:slim-2.10.5-python3.12", "FROM python:3.12",
         "the central site 'prod' gives 'apache/airflow:slim-2.10.5-python3.12' (base_image)"),
        ("worker.env.yaml", 'EDGE_WORKER_QUEUES: "team_c_queue"', 'EDGE_WORKER_QUEUES: "other_queue"',
         "--data 'queues=[team_c_queue]'`"),
        ("pools.json", '"team_c_pool"', '"renamed_pool"', "--data pool_name=team_c_pool`"),
    ],
)
def test_answers_hook_flags_a_hand_edit_that_drifts(template_releases, team_repo, tmp_path, file, old, new, named):
    path = team_repo / file
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    commit_all(team_repo)
    result = try_repo(team_repo, template_releases, "edge-template-answers", tmp_path)
    assert result.returncode == 1
    assert f"{file}: " in result.stdout
    assert named in result.stdout
    if "the central site" in named:  # a site's fact: no answer to change; undoing the edit passes
        path.write_text(path.read_text().replace(new, old))
        commit_all(team_repo)
        assert "`copier update" not in result.stdout
        assert try_repo(team_repo, template_releases, "edge-template-answers", tmp_path).returncode == 0
        return
    # The hint's --data is one copier takes as it is (a list in YAML flow style, not "a,b").
    data = shlex.split(result.stdout.split("`copier update ", 1)[1].split("`", 1)[0])
    update = subprocess.run(
        [sys.executable, "-m", "copier", "update", "--defaults", "--vcs-ref", "v2.0.0", *data],
        cwd=team_repo, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
    )
    assert update.returncode == 0, update.stderr


def test_removed_files_hook_flags_what_a_newer_release_removed(template_releases, tmp_path) -> None:
    old_repo = team_repo_at(template_releases, tmp_path / "team-c", "v1.0.0")
    assert (old_repo / ".dockerignore").exists()
    result = try_repo(old_repo, template_releases, "edge-template-removed-files", tmp_path, ref="v2.0.0")
    assert result.returncode == 1
    assert ".dockerignore: removed from edge-template in v2.0.0" in result.stdout


def test_hook_manifest_and_generated_config_are_valid(team_repo) -> None:
    manifest = subprocess.run([tool("pre-commit"), "validate-manifest", str(ROOT / ".pre-commit-hooks.yaml")],
                              capture_output=True, text=True, check=False)
    assert manifest.returncode == 0, manifest.stdout + manifest.stderr
    config = subprocess.run([tool("pre-commit"), "validate-config", ".pre-commit-config.yaml"],
                            cwd=team_repo, capture_output=True, text=True, check=False)
    assert config.returncode == 0, config.stdout + config.stderr
    text = (team_repo / ".pre-commit-config.yaml").read_text()
    assert "rev: v2.0.0" in text
    assert "id: edge-template-answers" in text


def test_a_repo_rendered_from_a_git_url_fetches_its_hooks(template_releases, tmp_path) -> None:
    # Copier takes git+file://, git+https:// and git+ssh://; git itself takes them without "git+".
    repo = tmp_path / "team-c"
    rendered = subprocess.run(
        [sys.executable, "-m", "copier", "copy", "--defaults", "--quiet", "--vcs-ref", "v2.0.0",
         f"git+file://{template_releases}", str(repo)],
        capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
    )
    assert rendered.returncode == 0, rendered.stderr
    config = yaml.safe_load((repo / ".pre-commit-config.yaml").read_text())
    ours = config["repos"][0]
    assert (ours["repo"], ours["rev"]) == (f"file://{template_releases}", "v2.0.0")
    # pre-commit clones `repo:` at `rev:` with git, as it would from a team's machine.
    (tmp_path / "ours.yaml").write_text(yaml.safe_dump({"repos": [ours]}))
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    result = subprocess.run(
        [tool("pre-commit"), "run", "--all-files", "--color", "never", "--config", str(tmp_path / "ours.yaml")],
        cwd=repo, capture_output=True, text=True, check=False,
        # The DAG import check builds an Airflow venv: tests/e2e/test_the_dag_import_check.py runs it as a hook.
        env={"PATH": str(Path(tool("pre-commit")).parent) + ":/usr/bin:/bin", "HOME": str(tmp_path),
             "PRE_COMMIT_HOME": str(tmp_path / "pre-commit"), "SKIP": "edge-template-dag-imports"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "edge-template-dag-imports" in [hook["id"] for hook in ours["hooks"]]
    assert result.stdout.count("Passed") == len(ours["hooks"]) - 1
    assert re.search(r"DAG files load on the central site.*Skipped", result.stdout)


def test_answers_hook_flags_a_task_log_folder_other_than_the_granted_one(render_to) -> None:
    """deploy.sh lets the worker write remote_log_folder only: another folder in worker.env.yaml would fail."""
    repo = render_to(MATRIX["af3-pool-directvpc-gcs"], name="analytics")
    hook = [sys.executable, str(ROOT / "hooks" / "check_answers.py")]
    assert subprocess.run(hook, cwd=repo, capture_output=True, text=True, check=False).returncode == 0
    env = repo / "worker.env.yaml"
    env.write_text(env.read_text().replace("gs://acme-airflow-logs/teams/analytics", "gs://acme-airflow-logs/teams"))

    result = subprocess.run(hook, cwd=repo, capture_output=True, text=True, check=False)

    assert result.returncode == 1
    assert result.stdout == (
        "worker.env.yaml: EDGE_REMOTE_LOG_FOLDER is 'gs://acme-airflow-logs/teams' but the answers "
        "give 'gs://acme-airflow-logs/teams/analytics'; undo the hand edit, or change the answer with "
        "`copier update --data remote_log_folder=gs://acme-airflow-logs/teams/analytics`\n"
    )


def test_removed_files_hook_names_a_leftover_named_after_the_team(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hook = load_module(ROOT / "hooks" / "check_removed_files.py", "check_removed_files")
    (tmp_path / "central").mkdir()
    (tmp_path / "central" / "scale_team_e_workers.py").write_text("# kept by hand\n")
    monkeypatch.chdir(tmp_path)

    assert hook.main([]) == 1
    assert capsys.readouterr().out.startswith(
        "central/scale_team_e_workers.py: removed from edge-template in the platform-kit release (CHANGELOG); "
        "the platform's one scaler follows every elastic team now")
