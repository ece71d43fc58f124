"""Shared fixtures: rendering the template, the answer matrix, and the linters."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml
from gcloud_stub import GcloudStub, Team, rendered_team

ROOT = Path(__file__).resolve().parent.parent
TOOLS_BIN = Path(sys.executable).parent

# Answer sets every rendered-file check runs on. Together they cover both
# Airflow majors, both deployment targets, every network_mode and dags_source,
# several queues and many Python packages.
MATRIX: dict[str, dict[str, Any]] = {
    "defaults": {"team_name": "team-c"},
    "af3-service-connector-image": {
        "team_name": "team-c",
        "airflow_version": "3.3.2",
        "deployment_target": "service",
        "min_instances": 1,
        "max_instances": 3,
        "network_mode": "vpc-connector",
        "vpc_connector": "edge-connector",
        "dags_source": "image",
        "queues": ["team_c_queue", "team_c_heavy", "team-c.gpu"],
        "python_deps": ["pandas==2.2.3", "requests>=2.32", "pyarrow~=17.0"],
    },
    "af3-pool-directvpc-gcs": {
        "team_name": "analytics",
        "gcp_project_id": "acme-data-prod",
        "region": "us-central1",
        "airflow_version": "3.3.2",
        "network_mode": "direct-vpc",
        "vpc_network": "shared-vpc",
        "vpc_subnet": "edge-subnet",
        "vpc_egress": "all-traffic",
        "instances": 3,
        "dags_bucket": "acme-dags",
        "dags_bucket_path": "teams/analytics/dags",
    },
    "af2-service-directvpc-image": {
        "team_name": "team-b",
        "airflow_version": "2.10.5",
        "deployment_target": "service",
        "min_instances": 2,
        "max_instances": 4,
        "network_mode": "direct-vpc",
        "dags_source": "image",
    },
    "af2-service-none-gcs": {
        "team_name": "ml-platform",
        "airflow_version": "2.10.3",
        "python_version": "3.11",
        "deployment_target": "service",
        "network_mode": "none",
        "queues": ["ml_train", "ml_score"],
    },
    "af3.0-py310-edge4-pool-image": {
        "team_name": "finance",
        "airflow_version": "3.0.6",
        "python_version": "3.10",
        "edge_provider_version": "4.3.2",
        "dags_source": "image",
        "worker_concurrency": 2,
        "memory": "1Gi",
    },
    "af3.1-many-deps-directvpc": {
        "team_name": "geo",
        "airflow_version": "3.1.8",
        "network_mode": "direct-vpc",
        "vpc_egress": "private-ranges-only",
        "python_deps": [
            "pandas==2.2.3",
            "numpy>=1.26,<3",
            "requests[socks]>=2.32",
            "shapely==2.0.6",
            "pyproj>=3.6",
            "google-cloud-bigquery[pandas]==3.27.0",
            "sqlalchemy-utils",
            "python-dateutil>=2.9",
            "tenacity!=8.4.0",
            "zope.interface==7.1.1",
        ],
    },
    "af3.2-big-sizing": {
        "team_name": "heavy-jobs",
        "airflow_version": "3.2.2",
        "cpu": "4",
        "memory": "8Gi",
        "worker_concurrency": 16,
        "queues": ["q1", "q2", "q3", "q4", "q5"],
        "pool_slots": 40,
        "job_poll_interval": 2,
        "heartbeat_interval": 15,
    },
}


def render(dst: Path, answers: dict[str, Any], *, src: Path = ROOT, vcs_ref: str = "HEAD") -> Path:
    """Render the template the way a team does: copier's API, trust off, all defaults.

    From the working tree (HEAD plus uncommitted changes), never the newest release tag:
    copier picks that tag when no ref is given. Release tests pass their tag.
    """
    copier.run_copy(
        str(src),
        str(dst),
        data=answers,
        defaults=True,
        unsafe=False,
        quiet=True,
        vcs_ref=vcs_ref,
    )
    return dst


@pytest.fixture(scope="session")
def render_to(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """render_to(answers, name=...) renders into a fresh temporary folder."""

    def _render(answers: dict[str, Any], name: str = "team", **kwargs: Any) -> Path:
        return render(tmp_path_factory.mktemp("render") / name, answers, **kwargs)

    return _render


@dataclass(frozen=True)
class MatrixCase:
    name: str
    given: dict[str, Any]
    repo: Path


@pytest.fixture(scope="session", params=sorted(MATRIX), ids=sorted(MATRIX))
def matrix_case(request: pytest.FixtureRequest, render_to: Callable[..., Path]) -> MatrixCase:
    """One rendered team repo per answer set of MATRIX (rendered once per session)."""
    given = MATRIX[request.param]
    return MatrixCase(request.param, given, render_to(given, name=given["team_name"]))


@pytest.fixture(scope="session")
def matrix_repo(matrix_case: MatrixCase) -> Path:
    return matrix_case.repo


def rendered_files(repo: Path, pattern: str = "*") -> list[Path]:
    return sorted(p for p in repo.rglob(pattern) if p.is_file() and ".git" not in p.parts)


def tool(name: str) -> str:
    """A linter from the dev toolchain (installed beside this Python)."""
    found = shutil.which(name, path=str(TOOLS_BIN)) or shutil.which(name)
    if not found:
        pytest.fail(f"{name} is missing: install requirements-dev.txt (python3 scripts/dev.py test does)")
    return found


def run_tool(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False, env=env)


def load_answers(repo: Path) -> dict[str, Any]:
    return yaml.safe_load((repo / ".copier-answers.yml").read_text())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: every prerequisite must be installed there."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("CI") and skipped and exitstatus == 0:
        reporter.write_line(f"CI must not skip: {len(skipped)} test(s) skipped", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# --------------------------------------------------------------------------- releases


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=edge-template tests", "-c", "user.email=tests@edge-template.invalid",
         "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
        cwd=cwd, capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def snapshot_template(dst: Path) -> Path:
    """A fresh git repo holding this template as it is in the working tree (tracked and new files)."""
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dst / name)
    git(dst, "init", "-q")
    git(dst, "add", "-A")
    git(dst, "commit", "-q", "-m", "v1.0.0")
    git(dst, "tag", "v1.0.0")
    return dst


def release_v2(template: Path) -> None:
    """Change the template as a real release would, commit and tag v2.0.0."""
    copier_yml = template / "copier.yml"
    copier_yml.write_text(copier_yml.read_text() + V2_QUESTION)
    env = template / "template" / "worker.env.yaml.jinja"
    env.write_text(env.read_text() + 'AIRFLOW__LOGGING__LOGGING_LEVEL: "{{ worker_log_level }}"\n')
    dockerfile = template / "template" / "Dockerfile.jinja"
    dockerfile.write_text(dockerfile.read_text().replace(V1_DOCKERFILE_LINE, V2_DOCKERFILE_LINE))
    (template / "template" / ".dockerignore").unlink()
    removed = template / "hooks" / "removed_files.txt"
    removed.write_text(removed.read_text() + ".dockerignore | v2.0.0 | the build context is now the whole repo\n")
    git(template, "add", "-A")
    git(template, "commit", "-q", "-m", "v2.0.0")
    git(template, "tag", "v2.0.0")


V2_QUESTION = """
worker_log_level:
  type: str
  help: The worker's log level.
  default: INFO
  choices: [DEBUG, INFO, WARNING]
"""
V1_DOCKERFILE_LINE = "# Dependencies first, so code changes do not invalidate the pip layer.\n"
V2_DOCKERFILE_LINE = "# Dependencies first: a change to the code or DAGs keeps the cached pip layer.\n"


@pytest.fixture(scope="session")
def template_releases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone-like copy of this template with two releases tagged: v1.0.0 and v2.0.0."""
    template = snapshot_template(tmp_path_factory.mktemp("edge-template"))
    assert V1_DOCKERFILE_LINE in (template / "template" / "Dockerfile.jinja").read_text()
    release_v2(template)
    return template


def team_repo_at(template: Path, dst: Path, ref: str, answers: dict[str, Any] | None = None) -> Path:
    """A team renders the template at `ref` and commits the result, as the after-copy message says."""
    render(dst, {"team_name": dst.name, **(answers or {})}, src=template, vcs_ref=ref)
    git(dst, "init", "-q")
    git(dst, "add", "-A")
    git(dst, "commit", "-q", "-m", "Render edge-template")
    return dst


# --------------------------------------------------------------------------- deploy.sh against the gcloud stand-in


@pytest.fixture(scope="session")
def team_of(render_to: Callable[..., Path]) -> Callable[[str], Team]:
    """team_of(case): the team repo of a MATRIX answer set, rendered once per session."""
    return lambda case: rendered_team(case, MATRIX[case], render_to)


@pytest.fixture
def stub_for(tmp_path: Path, team_of: Callable[[str], Team]) -> Callable[[str], GcloudStub]:
    """stub_for(case): a recording gcloud stand-in on PATH for that team repo."""
    return lambda case: GcloudStub.create(tmp_path, team_of(case))


@pytest.fixture
def committed_team(tmp_path: Path, render_to: Callable[..., Path]) -> Team:
    """A fresh default team repo, committed to git as the copier message says to."""
    repo = render_to(MATRIX["defaults"], name="team-c")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Render edge-template")
    return Team(repo, load_answers(repo))
