"""The worker image: what the slim set installs against the regular image's, and uv against pip.

No Docker engine runs here, so the image is measured as the venvs model it (tests/support/
harness.py): the slim set is core Airflow as of its release plus the rendered Dockerfile's
steps; the regular set adds the extras Airflow's own Dockerfile installs into the reference
image (REGULAR_EXTRAS, from its `ARG AIRFLOW_EXTRAS` at 2.10.2 and 3.1.5). Install times are
for team c's whole worker set into a clean venv with a cold cache, pip against uv.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import venv
from pathlib import Path

from support import harness

# `ARG AIRFLOW_EXTRAS` of apache/airflow's Dockerfile: the providers of the regular image.
REGULAR_EXTRAS = {
    2: "aiobotocore,amazon,async,celery,cncf-kubernetes,common-io,docker,elasticsearch,fab,ftp,google,google-auth,"
       "graphviz,grpc,hashicorp,http,ldap,microsoft-azure,mysql,odbc,openlineage,pandas,postgres,redis,sendgrid,"
       "sftp,slack,snowflake,ssh,statsd,uv,virtualenv",
    3: "aiobotocore,amazon,async,celery,cncf-kubernetes,common-io,common-messaging,docker,elasticsearch,fab,ftp,git,"
       "google,google-auth,graphviz,grpc,hashicorp,http,ldap,microsoft-azure,mysql,odbc,openlineage,pandas,postgres,"
       "redis,sendgrid,sftp,slack,snowflake,ssh,statsd,uv",
}
# Packages that need system libraries this machine lacks to build from source; the size
# comparison leaves them out of the regular set (so it errs small, in the regular set's favour).
UNBUILDABLE_EXTRAS = {"mysql", "odbc", "ldap"}


def site_packages_mib(path: Path) -> float:
    found = next((path / "lib").glob("python3*/site-packages"))
    total = sum(f.stat().st_size for f in found.rglob("*") if f.is_file() and not f.is_symlink())
    return total / 2**20


def fresh_venv(path: Path) -> str:
    shutil.rmtree(path, ignore_errors=True)
    venv.EnvBuilder(with_pip=True).create(path)
    return str(path / "bin" / "python")


def installed_mib(work: Path, name: str, airflow: str, image: list[str], worker: list[str]) -> float:
    """MiB in site-packages after the image's packages (as of its release), then the worker's (today)."""
    python = fresh_venv(work / name)
    as_of = harness.Image(airflow).uv_args()[:2]
    for step in ([*as_of, *image], [f"apache-airflow=={airflow}", *worker]):
        subprocess.run([harness.uv(), "pip", "install", "--quiet", "--python", python, *step],
                       check=True, capture_output=True, text=True)
    size = site_packages_mib(work / name)
    shutil.rmtree(work / name, ignore_errors=True)
    return size


def sizes(work: Path, repo: Path, airflow: str, edge3: str) -> tuple[float, float]:
    """MiB in site-packages: the slim set (airflow, edge3, team c's requirements), the regular set."""
    worker = worker_set(repo, airflow, edge3)[1:]
    extras = ",".join(e for e in REGULAR_EXTRAS[int(airflow[0])].split(",") if e not in UNBUILDABLE_EXTRAS)
    slim = installed_mib(work, "slim", airflow, [f"apache-airflow=={airflow}"], worker)
    regular = installed_mib(work, "regular", airflow, [f"apache-airflow[{extras}]=={airflow}"], worker)
    return slim, regular


def install_seconds(work: Path, tool: str, packages: list[str]) -> float:
    """One install of `packages` into a clean venv, with a cache of its own that starts empty."""
    python = fresh_venv(work / f"venv-{tool}")
    cache = work / f"cache-{tool}"
    shutil.rmtree(cache, ignore_errors=True)
    if tool == "pip":
        argv = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--cache-dir", str(cache),
                *packages]
    else:
        argv = [harness.uv(), "pip", "install", "--quiet", "--python", python, "--cache-dir", str(cache), *packages]
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    shutil.rmtree(work / f"venv-{tool}", ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    return elapsed


def worker_set(repo: Path, airflow: str, edge3: str) -> list[str]:
    requirements = [line for line in (repo / "requirements.txt").read_text().splitlines()
                    if line and not line.startswith("#")]
    return [f"apache-airflow=={airflow}", f"apache-airflow-providers-edge3=={edge3}", *dockerfile_extras(repo),
            *requirements]


def dockerfile_extras(repo: Path) -> list[str]:
    """What the rendered Dockerfile's first install adds beside Airflow and edge3 (one quoted
    requirement a line)."""
    install = (repo / "Dockerfile").read_text().split("RUN uv pip install", 1)[1].split("&&", 1)[0]
    found = re.findall(r'^\s+"([^"]+)" \\$', install, re.MULTILINE)
    return [r for r in found if not r.startswith(("apache-airflow==", "apache-airflow-providers-edge3=="))]


def added_mib(work: Path, repo: Path, airflow: str, edge3: str, more: list[str]) -> float:
    """MiB the packages `more` add to the worker's slim set."""
    worker = worker_set(repo, airflow, edge3)[1:]
    image = [f"apache-airflow=={airflow}"]
    return installed_mib(work, "more", airflow, image, [*worker, *more]) - installed_mib(work, "base", airflow, image,
                                                                                         worker)
