"""The DAG import check: a team package imported at module level is caught before the DAGs ship.

The check builds (once, cached by its pins) a real venv with the central site's Airflow and
edge3, and imports the rendered repo's DAG files there, as the central site's DAG processor does.
Its build without Airflow (the lock, pip and uv) and the checks that need no venv:
tests/test_dag_imports.py.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from gcloud_stub import GcloudStub, Team
from support.dags import MODULE_LEVEL_PANDAS_DAG, SAFE_PANDAS_DAG
from support.matrix import MATRIX
from support.templates import git, load_answers, sh_blocks, team_repo_at, tool
from test_deploy import DEFAULTS_ALL
from test_deploy_cloudbuild import defaults_with_stub, run_step, step, values_for

HOW_TO_FIX = 'import it inside the task function (see README "DAG files both sides can load")'



HELPER = '''"""A helper of team c that DAG files import."""

from airflow.models import Variable

import tomli_w

SESSION = tomli_w.dumps
'''

HELPER_USER = '''"""A DAG that imports the team helper at module level."""

from airflow import DAG

from team_c.clients import SESSION
'''


README_COMMAND = "python3 tools/check_dag_imports.py"


def check(repo: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The README's command in the team repo."""
    return subprocess.run(
        shlex.split(README_COMMAND), cwd=repo, capture_output=True, text=True, check=False,
        env={**os.environ, **env}, timeout=600,
    )


@pytest.fixture(scope="module")
def pandas_team(render_to: Callable[..., Path]) -> Path:
    """Team c with pandas in requirements.txt (the worker has it; the central site does not)."""
    return render_to({**MATRIX["defaults"], "python_deps": ["pandas==2.2.3"]}, name="team-c")


def test_the_example_dag_loads_on_the_central_site(render_to: Callable[..., Path]) -> None:
    repo = render_to(MATRIX["defaults"], name="team-c")
    assert [README_COMMAND] in sh_blocks((repo / "README.md").read_text())

    result = check(repo)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_first_runs_started_at_once_build_the_central_environment_once(
    render_to: Callable[..., Path], tmp_path: Path
) -> None:
    # Three first runs on one machine (an empty cache): one builds, the others wait for it.
    repo = render_to(MATRIX["defaults"], name="team-c")
    env = {**os.environ, "EDGE_TEMPLATE_CACHE": str(tmp_path / "cache")}
    runs = [
        subprocess.Popen(shlex.split(README_COMMAND), cwd=repo, env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    results = [(run.communicate(timeout=600), run.returncode) for run in runs]

    for (stdout, stderr), code in results:
        assert code == 0, stdout + stderr
        assert stdout == ""
    builds = [stderr for (_, stderr), _ in results if "building the central site's environment once" in stderr]
    assert len(builds) == 1, [stderr for (_, stderr), _ in results]
    assert "with uv" in builds[0]  # the dev toolchain's uv is on PATH
    built = sorted(p.name for p in (tmp_path / "cache" / "dag-check").iterdir())
    assert len(built) == 2, built  # the venv and its lock file: no half-built folder left
    assert built[1] == f"{built[0]}.lock"


def check_with(repo: Path, added: dict[Path, str]) -> subprocess.CompletedProcess[str]:
    """The check with these files added to the team repo for the time of the run."""
    for path, text in added.items():
        path.write_text(text)
    try:
        return check(repo)
    finally:
        for path in added:
            path.unlink()


def test_a_module_level_team_import_is_flagged_with_file_line_module_and_fix(pandas_team: Path) -> None:
    assert "pandas==2.2.3" in (pandas_team / "requirements.txt").read_text().splitlines()
    result = check_with(pandas_team, {pandas_team / "dags" / "team_c" / "report.py": MODULE_LEVEL_PANDAS_DAG})

    assert result.returncode == 1
    line = f"dags/team_c/report.py:3: module 'pandas' is not installed on the central site; {HOW_TO_FIX}"
    assert result.stdout.splitlines()[0] == line
    assert "1 DAG file(s) would be import errors on the central site, which has only apache-airflow==2.10.5, " \
        "apache-airflow-providers-edge3==1.5.0" in result.stdout


def test_the_safe_pattern_of_the_readme_passes(pandas_team: Path) -> None:
    result = check_with(pandas_team, {pandas_team / "dags" / "team_c" / "report_safe.py": SAFE_PANDAS_DAG})

    assert result.returncode == 0, result.stdout + result.stderr


def test_files_the_dag_processor_ignores_are_not_checked(pandas_team: Path) -> None:
    # Airflow's own discovery: .airflowignore, and safe mode (no "airflow" and "dag" in the file).
    folder = pandas_team / "dags" / "team_c"
    added = {
        folder / "report.py": MODULE_LEVEL_PANDAS_DAG,
        folder / ".airflowignore": "report.py\n",
        folder / "plain_helper.py": '"""No DAG here."""\n\nimport pandas\n',
    }
    result = check_with(pandas_team, added)

    assert result.returncode == 0, result.stdout + result.stderr


def test_an_import_in_a_team_helper_points_at_the_helper_and_other_errors_are_named(pandas_team: Path) -> None:
    folder = pandas_team / "dags" / "team_c"
    added = {
        folder / "clients.py": HELPER,
        folder / "uses_clients.py": HELPER_USER,
        folder / "broken.py": '"""An airflow DAG file with a typo."""\n\nfrom airflow import DAG\n\nDAG(dag_id=nme)\n',
    }
    result = check_with(pandas_team, added)

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "dags/team_c/broken.py:5: the central site cannot load this file: NameError: name 'nme' is not defined" \
        in lines
    # Both the helper itself and the DAG file importing it fail there; each points at the helper's line.
    helper_line = f"dags/team_c/clients.py:5: module 'tomli_w' is not installed on the central site; {HOW_TO_FIX}"
    assert lines.count(helper_line) == 2
    assert "3 DAG file(s) would be import errors" in result.stdout


def test_central_python_deps_are_installed_in_the_check_and_the_worker(render_to: Callable[..., Path]) -> None:
    # tomli-w is small and not an Airflow dependency: named as central, module level is fine.
    repo = render_to({**MATRIX["defaults"], "central_python_deps": ["tomli-w==1.2.0"]}, name="team-c")
    (repo / "dags" / "team_c" / "uses_tomli_w.py").write_text(
        '"""An airflow DAG file using a central package."""\n\nimport tomli_w\n\nfrom airflow import DAG\n'
    )
    assert "tomli-w==1.2.0" in (repo / "requirements.txt").read_text().splitlines()
    assert "`tomli-w==1.2.0`" in (repo / "central" / "README.md").read_text()

    result = check(repo)

    assert result.returncode == 0, result.stdout + result.stderr


# --- The same check as a pre-commit hook of the template release ---


def test_the_pre_commit_hook_runs_the_check(template_releases: Path, tmp_path: Path) -> None:
    repo = team_repo_at(template_releases, tmp_path / "team-c", "v2.0.0", {"python_deps": ["pandas==2.2.3"]})
    assert "id: edge-template-dag-imports" in (repo / ".pre-commit-config.yaml").read_text()
    (repo / "dags" / "team_c" / "report.py").write_text(MODULE_LEVEL_PANDAS_DAG)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "report")
    cache = os.environ.get("EDGE_TEMPLATE_CACHE", str(Path.home() / ".cache" / "edge-template"))

    result = subprocess.run(
        [tool("pre-commit"), "try-repo", str(template_releases), "edge-template-dag-imports", "--ref", "v2.0.0",
         "--all-files", "--color", "never"],
        cwd=repo, capture_output=True, text=True, check=False, timeout=600,
        env={"PATH": f"{Path(tool('pre-commit')).parent}:/usr/bin:/bin", "HOME": str(tmp_path),
             "PRE_COMMIT_HOME": str(tmp_path / "pre-commit"), "EDGE_TEMPLATE_CACHE": cache},
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"DAG files load on the central site.*Failed", result.stdout)
    assert f"dags/team_c/report.py:3: module 'pandas' is not installed on the central site; {HOW_TO_FIX}" \
        in result.stdout


# --- deploy.sh runs it before anything changes ---



def test_deploy_sh_dags_stops_before_any_gcloud_call_when_the_check_fails(pandas_team: Path, tmp_path: Path) -> None:
    stub = GcloudStub.create(tmp_path, Team(pandas_team, load_answers(pandas_team)))
    stub.load("everything-exists")
    report = pandas_team / "dags" / "team_c" / "report.py"
    report.write_text(MODULE_LEVEL_PANDAS_DAG)
    try:
        failed = stub.run("--tag", "abc1234", "dags", SKIP="")
    finally:
        report.unlink()
    passed = stub.run("--tag", "abc1234", "dags", SKIP="")

    assert failed.returncode == 1
    assert failed.calls == []
    assert f"dags/team_c/report.py:3: module 'pandas' is not installed on the central site; {HOW_TO_FIX}" \
        in failed.stderr
    assert "deploy.sh: ERROR: DAG files that the central site cannot load (above): fix them; nothing was changed." \
        in failed.stderr
    assert passed.returncode == 0, passed.stderr
    rsync = [argv for argv in DEFAULTS_ALL if argv[1:3] == ["storage", "rsync"]]
    assert passed.calls == DEFAULTS_ALL[:4] + rsync


def test_deploy_sh_build_checks_the_dag_files_it_bakes_into_the_image(
    team_of: Callable[[str], Team], tmp_path: Path
) -> None:
    team = team_of("af3-service-connector-image")  # Airflow 3.3.2, dags_source image, pandas in python_deps
    stub = GcloudStub.create(tmp_path, team)
    stub.load("everything-exists")
    report = team.repo / "dags" / "team_c" / "report.py"
    report.write_text(MODULE_LEVEL_PANDAS_DAG)
    try:
        result = stub.run("--tag", "abc1234", "build", SKIP="")
    finally:
        report.unlink()

    assert result.returncode == 1
    assert result.calls == []
    assert f"dags/team_c/report.py:3: module 'pandas' is not installed on the central site; {HOW_TO_FIX}" \
        in result.stderr


# --- Cloud Build runs it first, in the worker's Python ---


def test_the_dag_import_check_runs_first_in_the_worker_python_and_deploy_does_not_repeat_it(
    team_of: Callable[[str], Team], tmp_path: Path
) -> None:
    team, config, stub = defaults_with_stub(team_of, tmp_path)
    report = team.repo / "dags" / "team_c" / "report.py"

    assert step(config, "check-dags")["name"] == "python:3.12-slim"
    passed = run_step(stub, config, "check-dags", values_for(config, short_sha="1a2b3c4"))
    report.write_text('"""An airflow DAG."""\n\nimport pandas\n\nfrom airflow import DAG\n')
    try:
        failed = run_step(stub, config, "check-dags", values_for(config, short_sha="1a2b3c4"))
    finally:
        report.unlink()

    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert failed.returncode == 1
    assert "dags/team_c/report.py:3: module 'pandas' is not installed on the central site" in failed.stdout
    assert "SKIP=edge-template-dag-imports" in step(config, "deploy")["env"]
