"""Fixtures only: rendered team repos, the answer matrix, template releases, the gcloud stand-in.

The code behind them lives in support/ (shared with bench/).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gcloud_stub import GcloudStub, Team, rendered_team
from support.matrix import MATRIX, MatrixCase
from support.templates import V1_DOCKERFILE_LINE, git, load_answers, release_v2, render, snapshot_template


@pytest.fixture(scope="session")
def render_to(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """render_to(answers, name=...) renders into a fresh temporary folder."""

    def _render(answers: dict[str, Any], name: str = "team", **kwargs: Any) -> Path:
        return render(tmp_path_factory.mktemp("render") / name, answers, **kwargs)

    return _render


@pytest.fixture(scope="session", params=sorted(MATRIX), ids=sorted(MATRIX))
def matrix_case(request: pytest.FixtureRequest, render_to: Callable[..., Path]) -> MatrixCase:
    """One rendered team repo per answer set of MATRIX (rendered once per session)."""
    given = MATRIX[request.param]
    return MatrixCase(request.param, given, render_to(given, name=given["team_name"]))


@pytest.fixture(scope="session")
def matrix_repo(matrix_case: MatrixCase) -> Path:
    return matrix_case.repo


E2E = Path(__file__).resolve().parent / "e2e"


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/e2e/ is an e2e test (it runs real Airflow): marked by its folder."""
    for item in items:
        if item.path.is_relative_to(E2E):
            item.add_marker(pytest.mark.e2e)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: every prerequisite must be installed there."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("CI") and skipped and exitstatus == 0:
        reporter.write_line(f"CI must not skip: {len(skipped)} test(s) skipped", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED




@pytest.fixture(scope="session")
def template_releases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone-like copy of this template with two releases tagged: v1.0.0 and v2.0.0."""
    template = snapshot_template(tmp_path_factory.mktemp("edge-template"))
    assert V1_DOCKERFILE_LINE in (template / "template" / "Dockerfile.jinja").read_text()
    release_v2(template)
    return template


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
def defaults_in(stub_for: Callable[[str], GcloudStub]) -> Callable[..., GcloudStub]:
    """defaults_in(scenario, **changes): the stand-in for the default team repo, in that world."""

    def _in(scenario: str, **changes: Any) -> GcloudStub:
        stub = stub_for("defaults")
        stub.load(scenario, **changes)
        return stub

    return _in


@pytest.fixture
def committed_team(tmp_path: Path, render_to: Callable[..., Path]) -> Team:
    """A fresh default team repo, committed to git as the copier message says to."""
    repo = render_to(MATRIX["defaults"], name="team-c")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Render edge-template")
    return Team(repo, load_answers(repo))
