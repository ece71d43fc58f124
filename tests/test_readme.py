"""Every command the READMEs give works as written (with the published address swapped for a local release)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml
from gcloud_stub import GcloudStub, Team
from support.templates import ROOT, git, load_answers, sh_blocks, snapshot_template, team_repo_at, template_questions

PUBLISHED = "gh:org/edge-template"


def shell(command: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    return subprocess.run(["bash", "-c", f"set -euo pipefail\n{command}"], cwd=cwd, capture_output=True, text=True,
                          check=False, env={**os.environ, "PATH": path, **env}, stdin=subprocess.DEVNULL)


README = (ROOT / "README.md").read_text()
BLOCKS = sh_blocks(README)


def test_the_quick_start_is_exactly_two_commands_and_ci_runs_the_second() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert sh_blocks(quick_start) == [["python3 scripts/dev.py demo", "python3 scripts/dev.py test"]]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == "python3 scripts/dev.py test"


def test_the_demo_command_renders_team_c_with_every_default() -> None:
    result = shell("python3 scripts/dev.py demo", ROOT)
    assert result.returncode == 0, result.stderr
    demo = ROOT / "build" / "team-c"
    answers = load_answers(demo)
    assert answers["team_name"] == "team-c"
    assert answers["deployment_target"] == "worker-pool"
    assert (demo / "deploy.sh").exists()


def test_the_data_team_commands_work(tmp_path: Path) -> None:
    template = snapshot_template(tmp_path / "edge-template")
    block = next(b for b in BLOCKS if b and b[0].startswith(f"copier copy {PUBLISHED}"))
    assert block == [
        f"copier copy {PUBLISHED} team-c",
        'cd team-c && git init && git add -A && git commit -m "Render edge-template"',
        "./deploy.sh --dry-run all",
        "./deploy.sh all",
    ]
    # No terminal here to answer the prompts: take every default, as the README's next line says.
    first = block[0].replace(f"copier copy {PUBLISHED}", f"copier copy --defaults {shlex.quote(str(template))}")
    assert shell(first, tmp_path).returncode == 0
    git_env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t.invalid", "GIT_COMMITTER_NAME": "t",
               "GIT_COMMITTER_EMAIL": "t@t.invalid"}
    result = shell(block[1], tmp_path, **git_env)
    assert result.returncode == 0, result.stderr
    repo = tmp_path / "team-c"
    team = Team(repo, load_answers(repo))
    stub = GcloudStub.create(tmp_path / "gcloud", team)
    stub.load("nothing-exists")
    dry = stub.run_shell(block[2])
    assert dry.returncode == 0, dry.stderr
    assert dry.calls == []
    real = stub.run_shell(block[3])
    assert real.returncode == 0, real.stderr
    assert real.calls[-1][:4] == ["gcloud", "run", "worker-pools", "deploy"]


def test_the_release_and_update_commands_work(tmp_path: Path) -> None:
    template = snapshot_template(tmp_path / "edge-template")
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(template, "remote", "add", "origin", str(origin))
    team = team_repo_at(template, tmp_path / "team-c", "v1.0.0")

    release = next(b for b in BLOCKS if b and b[0].startswith("git tag"))
    assert release == ["git tag v1.1.0 && git push origin v1.1.0"]
    (template / "CHANGELOG.md").write_text("# Changelog\n\n## v1.1.0\n\nNothing for teams to do.\n")
    git(template, "commit", "-q", "-am", "v1.1.0")
    result = shell(release[0], template)
    assert result.returncode == 0, result.stderr
    assert "v1.1.0" in git(origin, "tag")

    update = next(b for b in BLOCKS if b and b[0].startswith("copier update"))
    assert update == ["copier update --skip-answered --defaults", "git diff"]
    for command in update:
        result = shell(command, team)
        assert result.returncode == 0, command + result.stderr
    assert load_answers(team)["_commit"] == "v1.1.0"


def test_the_generated_readme_update_command_works(template_releases: Path, tmp_path: Path) -> None:
    repo = team_repo_at(template_releases, tmp_path / "team-c", "v1.0.0")
    commands = [line for block in sh_blocks((repo / "README.md").read_text()) for line in block]
    assert "copier update --defaults" in commands
    result = shell("copier update --defaults", repo)
    assert result.returncode == 0, result.stderr
    assert load_answers(repo)["_commit"] == "v2.0.0"


def test_the_tools_install_as_written(tmp_path: Path) -> None:
    block = next(b for b in BLOCKS if b and b[0].startswith("python3 -m venv ~/.edge-tools"))
    assert len(block) == 2
    result = shell("\n".join([*block, "copier --version", "pre-commit --version"]), tmp_path, HOME=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert re.search(r"^copier \d+\.\d+", result.stdout, re.MULTILINE), result.stdout
    assert "pre-commit " in result.stdout
    assert (tmp_path / ".edge-tools" / "bin" / "copier").exists()


def test_the_fast_subset_command_selects_every_test_but_the_end_to_end_ones() -> None:
    block = next(b for b in BLOCKS if b and b[0].startswith("python3 scripts/dev.py test -m"))
    assert block == ['python3 scripts/dev.py test -m "not e2e"']
    result = shell(block[0] + " --collect-only -q", ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    collected = [line for line in result.stdout.splitlines() if "::" in line]
    assert collected
    assert not [line for line in collected if line.startswith("tests/e2e/")]
    assert re.search(r"\d+/\d+ tests collected \(\d+ deselected\)", result.stdout), result.stdout[-500:]


def test_the_generated_readme_pre_commit_command_works(template_releases: Path, tmp_path: Path) -> None:
    repo = team_repo_at(template_releases, tmp_path / "team-c", "v2.0.0")
    commands = [line for block in sh_blocks((repo / "README.md").read_text()) for line in block]
    assert "pre-commit install" in commands
    result = shell("pre-commit install", repo, HOME=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "pre-commit" in (repo / ".git" / "hooks" / "pre-commit").read_text()


def test_the_question_table_names_every_visible_question_and_no_other() -> None:
    questions = template_questions()
    visible = {name for name, spec in questions.items()
               if not name.startswith("_") and isinstance(spec, dict) and spec.get("when") is not False}
    table = README.split("### The questions", 1)[1].split("\n\n", 2)[1]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    first_column = {name for row in rows for name in re.findall(r"`([a-z_]+)`", row.split("|")[1])}
    anywhere = {name for name in re.findall(r"`([a-z_]+)`", table) if name in questions}
    assert first_column <= visible, first_column - visible
    assert anywhere == visible, visible ^ anywhere


def test_the_generated_readme_command_that_keeps_task_logs_turns_them_on(
    template_releases: Path, tmp_path: Path
) -> None:
    repo = team_repo_at(template_releases, tmp_path / "team-c", "v2.0.0")
    readme = (repo / "README.md").read_text()
    command = re.search(r"`(copier update --data remote_logging=true [^`]*)`", readme).group(1)
    assert command == "copier update --data remote_logging=true --data remote_log_folder=gs://BUCKET/FOLDER"

    command = command.replace("gs://BUCKET/FOLDER", "gs://acme-airflow-logs/team-c")
    result = shell(command.replace("copier update", "copier update --defaults --vcs-ref v2.0.0"), repo)

    assert result.returncode == 0, result.stderr
    answers = load_answers(repo)
    assert (answers["remote_logging"], answers["remote_log_folder"]) == (True, "gs://acme-airflow-logs/team-c")
    assert 'EDGE_REMOTE_LOG_FOLDER: "gs://acme-airflow-logs/team-c"' in (repo / "worker.env.yaml").read_text()
    assert "providers-google" not in (repo / "Dockerfile").read_text()  # the entrypoint uploads
    assert "Each finished try's log is also uploaded to" in (repo / "README.md").read_text()


def test_the_platform_guide_renders_a_site_s_settings_before_any_team(tmp_path: Path) -> None:
    guide = (ROOT / "platform" / "README.md").read_text()
    renders = [line for block in sh_blocks(guide) for line in block if line.startswith("copier ")]
    assert renders == [
        f"copier copy --defaults --data site=prod --data team_name=site-settings {PUBLISHED} site-settings"]
    template = snapshot_template(tmp_path / "edge-template")
    result = shell(renders[0].replace(PUBLISHED, shlex.quote(str(template))), tmp_path)
    assert result.returncode == 0, result.stderr
    site = yaml.safe_load((ROOT / "sites" / "prod.yml").read_text())
    settings = (tmp_path / "site-settings" / "central" / "edge.env").read_text()
    assert f"AIRFLOW__EDGE__API_URL={site['edge_api_url']}\n" in settings
    assert "AIRFLOW__CORE__EXECUTOR=airflow.providers.edge3.executors.EdgeExecutor\n" in settings
    assert f"({site['airflow_version']}, edge3 {site['edge_provider_version']})" in settings
