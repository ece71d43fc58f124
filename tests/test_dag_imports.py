"""The DAG import check without Airflow: how its central environment is built, and what needs no venv.

The check itself, on real Airflow venvs: tests/e2e/test_the_dag_import_check.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from gcloud_stub import GcloudStub
from support.matrix import MATRIX
from support.templates import ROOT

# The hook's own build, on a requirement set without Airflow (small, not an Airflow dependency).
BUILD = f"""
import subprocess, sys
sys.path.insert(0, {str(ROOT / "hooks")!r})
import check_dag_imports
path = check_dag_imports.central_venv(["tomli-w==1.2.0"])
subprocess.run([str(path / "bin" / "python"), "-c", "import tomli_w"], check=True)
"""


def first_runs_at_once(cache: Path, path: str, count: int = 3) -> list[subprocess.CompletedProcess[str]]:
    runs = [
        subprocess.Popen([sys.executable, "-c", BUILD], text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={**os.environ, "PATH": path, "EDGE_TEMPLATE_CACHE": str(cache)})
        for _ in range(count)
    ]
    outputs = [run.communicate(timeout=600) for run in runs]
    return [subprocess.CompletedProcess(run.args, run.returncode, *out) for run, out in zip(runs, outputs, strict=True)]


def test_first_runs_started_at_once_wait_for_one_pip_build(tmp_path: Path) -> None:
    # No uv on PATH: pip builds it, once; the others wait and use it.
    (tmp_path / "bin").mkdir()
    results = first_runs_at_once(tmp_path / "cache", str(tmp_path / "bin"))

    for result in results:
        assert result.returncode == 0, result.stderr
    builds = [r.stderr for r in results if "building the central site's environment once" in r.stderr]
    assert len(builds) == 1, [r.stderr for r in results]
    assert "with pip" in builds[0]
    built = sorted(p.name for p in (tmp_path / "cache" / "dag-check").iterdir())
    assert len(built) == 2, built  # the venv and its lock file: no half-built folder left
    assert built[1] == f"{built[0]}.lock"


def test_uv_builds_it_when_on_path_and_a_build_that_died_is_redone(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    uv = Path(sys.executable).parent  # the dev toolchain's uv
    assert (uv / "uv").exists()
    [first] = first_runs_at_once(cache, str(uv), count=1)
    assert first.returncode == 0, first.stderr
    assert "with uv" in first.stderr
    [venv] = [p for p in (cache / "dag-check").iterdir() if p.is_dir()]
    # A run that died after moving its folder into place, before writing the marker.
    (venv / ".complete").unlink()

    [again] = first_runs_at_once(cache, str(uv), count=1)

    assert again.returncode == 0, again.stderr
    assert "building the central site's environment once" in again.stderr
    assert (venv / ".complete").exists()


def test_the_rendered_check_is_the_hook_itself(render_to: Callable[..., Path]) -> None:
    repo = render_to(MATRIX["defaults"], name="team-c")
    for name in ("check_dag_imports.py", "answers.py"):
        assert (repo / "tools" / name).read_bytes() == (ROOT / "hooks" / name).read_bytes()


def test_deploy_sh_says_when_skip_names_the_check(stub_for: Callable[[str], GcloudStub]) -> None:
    stub = stub_for("defaults")
    stub.load("everything-exists")

    result = stub.run("--dry-run", "dags", SKIP="ruff,edge-template-dag-imports")

    assert result.returncode == 0, result.stderr
    assert "deploy.sh: skipped the DAG import check (SKIP=ruff,edge-template-dag-imports)." in result.stderr
