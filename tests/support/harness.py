"""A real Airflow central site, PostgreSQL and Edge workers, run from rendered team repos.

Nothing here is faked: the venv holds exactly what the rendered Dockerfile installs,
the central site is configured from the rendered central/ files, and workers are the
rendered entrypoint.sh with the rendered worker.env.yaml plus the secret. How a site and a
worker are run is the team repo's tools/run_locally.py (hooks/run_locally.py here): one
source for the tests, bench/ and a team trying its DAGs on a laptop.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

# The /proc helpers, called as harness.X by the tests and bench/.
from support.procs import alive, all_pids, cmdline, descendants, pss_mib, rss_mib  # noqa: F401

HOOKS = Path(__file__).resolve().parents[2] / "hooks"
if str(HOOKS) not in sys.path:
    sys.path.append(str(HOOKS))  # run_locally imports check_dag_imports and answers from beside it

from run_locally import (  # noqa: E402, F401 - re-exported: the tests call them as harness.X
    BuildStep,
    CentralSite,
    Image,
    Postgres,
    Proc,
    Worker,
    airflow_venv,
    central_extra,
    dockerfile_steps,
    free_port,
    image_built,
    kill_strays,
    local_path,
    pids_with_env,
    postgres,
    postgres_bin,
    read_env_file,
    run_build_step,
    start,
    uv,
    wait_until,
)
from run_locally import SiteError as HarnessError  # noqa: E402, F401
from run_locally import start_worker as _start_worker  # noqa: E402


def worker_env_file(repo: Path) -> dict[str, str]:
    return yaml.safe_load((repo / "worker.env.yaml").read_text())


def start_worker(
    repo: Path, venv_path: Path, secret: str | None, logs: Path, name: str, overrides: dict[str, str] | None = None
) -> Worker:
    """The rendered entrypoint.sh with the rendered worker.env.yaml, the secret and `overrides`."""
    return _start_worker(repo, venv_path, worker_env_file(repo), secret, logs, name, overrides)
