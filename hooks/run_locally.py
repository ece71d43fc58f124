#!/usr/bin/env python3
"""Try this team's DAGs on its own worker before a deploy: a throwaway central site and the worker, here.

    python3 tools/run_locally.py                    # the central site's UI; Ctrl-C stops everything
    python3 tools/run_locally.py --trigger DAG_ID   # trigger DAG_ID, print each task's state and log;
                                                    # exit 0 when the run succeeds, 1 when it fails
    python3 tools/run_locally.py --containers       # the same with the images, on a Docker engine
                                                    # (--dry-run: print its docker commands)

What runs, from this repo's own files and nothing of Google Cloud or the real site:
- Packages: a venv built as the Dockerfile builds the image, with uv as the image does (uv is
  fetched once with pip when it is not on PATH): apache-airflow at the FROM line's version as
  PyPI held it a day after that release (when the image was built), then each RUN step
  (edge3 at the site's pin, requirements.txt under the image's versions). Cached in
  ~/.cache/edge-template/venvs (EDGE_TEMPLATE_CACHE): the first run takes minutes, later ones seconds.
- The central site: the same Airflow and edge3, from that venv (plus PostgreSQL's driver), with
  central/edge.env's settings, the team's pool (pools.json) and its DAG files (dags/). Airflow 3
  keeps its database in SQLite; Airflow 2 refuses SQLite with the EdgeExecutor, so it starts a
  PostgreSQL server, whose binaries must be installed (apt-get install postgresql, brew install
  postgresql). Its UI listens on 127.0.0.1 only and needs no login: every visitor is admin.
- The worker: entrypoint.sh with worker.env.yaml, pointed at that site, with a shared secret
  made for this run (never printed, never written to a file).
Everything it starts stops when it ends (Ctrl-C, SIGTERM or the end of --trigger): the worker as
Cloud Run stops it (SIGTERM), then the site. Its only state is the folder --folder (default
.local-run/ in this repo, git-ignored), emptied at the next start; it keeps the logs. The
venv's Python is this python3: use the image's version (python_version) to match it exactly.
Standard library only; tested on Linux (macOS is not tested here). The template's own tests
run their central sites with this file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import venv
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

# Beside this file, in tools/ (and hooks/ in the template, whose tests import this file).
from check_dag_imports import built_once, cache_root, central_requirements


class SiteError(AssertionError):
    """The real system did not reach the expected state; the message says what was seen."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Poll `check` until it returns a truthy value; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SiteError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------- the image, as a venv


PYPI_SIMPLE = "https://pypi.org/simple/apache-airflow/"


def image_built(airflow_version: str) -> str:
    """A day after apache-airflow `airflow_version`'s wheel reached PyPI (RFC 3339, from PyPI's
    index): when its image was built, with the release and the packages it came with."""
    request = urllib.request.Request(PYPI_SIMPLE, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - PyPI's https index
        files = json.load(response)["files"]
    wheel = f"apache_airflow-{airflow_version}-py3-none-any.whl"
    for file in files:
        if file["filename"] == wheel and file.get("upload-time"):
            uploaded = datetime.fromisoformat(file["upload-time"].replace("Z", "+00:00"))
            return (uploaded + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    raise SiteError(f"PyPI's index ({PYPI_SIMPLE}) lists no upload time for {wheel}")


@dataclass(frozen=True)
class Image:
    """What a FROM line's apache/airflow image holds, as far as a venv can model it: core
    Airflow and its preinstalled providers (the slim image), resolved from what PyPI held
    when that release was published, as the image was built then."""

    airflow_version: str
    extra: tuple[str, ...] = ()

    def uv_args(self) -> list[str]:
        return ["--exclude-newer", image_built(self.airflow_version), f"apache-airflow=={self.airflow_version}",
                *self.extra]


@dataclass(frozen=True)
class BuildStep:
    """One RUN line of the rendered Dockerfile, with the image's paths made local."""

    argv: tuple[str, ...]
    output: str | None = None  # `> PATH`: where the step's stdout goes


def dockerfile_steps(repo: Path) -> tuple[Image, list[BuildStep]]:
    """The rendered Dockerfile's base image and its RUN steps, in order.

    Only the commands the template writes are understood (uv pip install, uv pip freeze > FILE,
    joined by &&); anything else fails here, so that the venv never silently differs from the image."""
    text = re.sub(r"\\\n", " ", (repo / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    base = next((line.split()[1] for line in lines if line.startswith("FROM ")), None)
    if base is None:
        raise SiteError("no FROM line in the Dockerfile")
    tag = base.rsplit(":", 1)[-1]
    version = re.match(r"(?:slim-)?(\d+\.\d+\.\d+)-python", tag)
    if version is None:
        raise SiteError(f"the FROM line's tag {tag!r} is not [slim-]<airflow>-python<python>")
    steps = []
    for line in lines:
        if not line.startswith("RUN "):
            continue
        words = shlex.split(line[4:])
        while words:
            argv = words[: words.index("&&")] if "&&" in words else words
            words = words[len(argv) + 1:]
            output = None
            if ">" in argv:
                output = argv[argv.index(">") + 1]
                argv = argv[: argv.index(">")]
            if argv[:3] not in (["uv", "pip", "install"], ["uv", "pip", "freeze"]):
                raise SiteError(f"only `uv pip install` and `uv pip freeze` RUN steps run outside Docker: {line}")
            steps.append(BuildStep(tuple(argv), output))
    return Image(version.group(1)), steps


def local_path(path: str, repo: Path, venv_path: Path) -> str:
    """/opt/edge/<file> is the repo's file (COPY); /opt/airflow/<file> the venv's own."""
    if path.startswith("/opt/edge/"):
        return str(repo / path.removeprefix("/opt/edge/"))
    if path.startswith("/opt/airflow/"):
        return str(venv_path / path.removeprefix("/opt/airflow/"))
    return path


def run_build_step(
    step: BuildStep, repo: Path, venv_path: Path, dry_run: bool = False
) -> subprocess.CompletedProcess[str]:
    """A RUN step of the Dockerfile against the venv, as the image's uv would run it."""
    argv = [uv(), *step.argv[1:3], "--python", str(venv_path / "bin" / "python")]
    argv += [local_path(arg, repo, venv_path) for arg in step.argv[3:] if arg != "--no-cache"]
    if dry_run:
        argv.append("--dry-run")
    result = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603 - uv, our argv
    if result.returncode == 0 and step.output and not dry_run:
        Path(local_path(step.output, repo, venv_path)).write_text(result.stdout)
    return result


def uv() -> str:
    """uv beside this Python, on PATH, or installed once with pip into the cache."""
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found:
        return found
    tools = cache_root() / "uv"

    def build(target: Path) -> None:
        print(f"local: installing uv (the image's installer) once into {tools}", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(target)
        subprocess.run([str(target / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q",  # noqa: S603
                        "install", "uv"], check=True)

    return str(built_once(tools, build, "uv") / "bin" / "uv")


def airflow_venv(repo: Path, extra: tuple[str, ...] = ()) -> Path:
    """A venv built as the Dockerfile builds the image, cached by what goes in.

    First the image: apache-airflow at the FROM line's version (plus `extra`, what only the
    central site needs) resolved as of that release; then each RUN step of the Dockerfile,
    resolved today as a build today would be. The resolved set is in pip-freeze.txt.
    Built once per pin set, by the DAG import check's built_once: into a temporary folder
    moved into place when whole, under a lock, so that runs needing the same venv at once
    wait for one build (uv's relocatable venv: its scripts still run once moved)."""
    image, steps = dockerfile_steps(repo)
    image = Image(image.airflow_version, extra)
    key_source = json.dumps([sys.version_info[:2], image.airflow_version, image.extra,
                             [[*s.argv, s.output] for s in steps],
                             (repo / "requirements.txt").read_text()])
    key = hashlib.sha256(key_source.encode()).hexdigest()[:16]
    path = cache_root() / "venvs" / key

    def build(target: Path) -> None:
        started = time.monotonic()
        print(f"local: building the worker's packages as its image holds them, once, into {path}", file=sys.stderr)
        subprocess.run([uv(), "venv", "--quiet", "--relocatable", "--seed", "--python", sys.executable,  # noqa: S603
                        str(target)], capture_output=True, text=True, check=True)
        python = str(target / "bin" / "python")
        image_args = image.uv_args()
        result = subprocess.run([uv(), "pip", "install", "--quiet", "--python", python, *image_args],  # noqa: S603
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SiteError(f"the image ({' '.join(image_args)}) failed to install:\n{result.stderr[-4000:]}")
        for step in steps:
            result = run_build_step(step, repo, target)
            if result.returncode != 0:
                raise SiteError(f"Dockerfile step `{' '.join(step.argv)}` failed:\n{result.stderr[-4000:]}")
        frozen = subprocess.run([uv(), "pip", "freeze", "--python", python], capture_output=True,  # noqa: S603
                                text=True, check=True)
        (target / "pip-freeze.txt").write_text(frozen.stdout)
        print(f"local: venv {path} built in {time.monotonic() - started:.0f} s (image: {' '.join(image_args)})",
              file=sys.stderr)

    return built_once(path, build, key_source)


def central_extra(airflow_version: str, postgres: bool) -> tuple[str, ...]:
    """What the central site needs beyond the worker's packages: PostgreSQL's drivers."""
    if not postgres:
        return ()
    # Airflow 3 also opens an async engine on the same database (postgresql+asyncpg).
    return ("psycopg2-binary", "asyncpg") if airflow_version.startswith("3.") else ("psycopg2-binary",)


# --------------------------------------------------------------------------- processes


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Stop this process by its own PID; then end what it started in its process group."""
        if self.alive():
            with suppress(ProcessLookupError):
                os.kill(self.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(10)
        # End what is left in our group. Our PID is free once reaped, and with many processes at
        # once another may get it: PostgreSQL's postmaster or a central site's server, leaders of
        # their own groups. A live process with our PID is not ours, so neither is its group;
        # while a process of our group lives, the kernel gives our PID to no other.
        if not pid_alive(self.pid):
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        return self.popen.returncode


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start(name: str, argv: list[str], env: dict[str, str], logs: Path, cwd: Path | None = None) -> Proc:
    """`argv` in a session of its own (a Ctrl-C at the terminal reaches only this tool), output to logs/NAME.log."""
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(  # noqa: S603 - our argv
            argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Proc(name, popen, log)


def pids_with_env(marker: str) -> list[int]:
    """Processes whose environment holds `marker` (KEY=VALUE); none where there is no /proc."""
    needle = marker.encode()
    found = []
    for proc_dir in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (proc_dir / "environ").read_bytes():
                found.append(int(proc_dir.name))
        except (OSError, ValueError):
            continue
    return found


def kill_strays(marker: str) -> list[int]:
    """SIGKILL processes whose environment holds `marker` (task processes run in their own session)."""
    killed = []
    for pid in pids_with_env(marker):
        with suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed


# --------------------------------------------------------------------------- PostgreSQL


def postgres_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def _as_postgres(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: run its tools as the postgres user.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@dataclass
class Postgres:
    root: Path
    port: int
    bin: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/airflow"

    def psql(self, sql: str) -> list[list[str]]:
        result = subprocess.run(  # noqa: S603 - PostgreSQL's psql
            [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "airflow",
             "-At", "-F", "\t", "-c", sql],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise SiteError(f"psql failed: {result.stderr}")
        return [line.split("\t") for line in result.stdout.splitlines() if line]

    def _pg_ctl(self, *args: str) -> None:
        argv = [str(self.bin / "pg_ctl"), *args]
        result = subprocess.run(_as_postgres(argv), capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise SiteError(f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}")

    @property
    def options(self) -> str:
        return f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"

    def restart(self, down: float = 0.0) -> None:
        """What clients see of a database failover: every connection ended (a fast shutdown), the
        server back `down` seconds later."""
        data = str(self.root / "data")
        self._pg_ctl("-D", data, "-m", "fast", "-w", "stop")
        time.sleep(down)
        self._pg_ctl("-D", data, "-w", "-l", str(self.root / "pg.log"), "-o", self.options, "start")


@contextmanager
def postgres(logs: Path | None = None) -> Iterator[Postgres]:
    """A throwaway PostgreSQL server on a free loopback port; its log is copied into `logs` at the end."""
    pg_bin = postgres_bin()
    if pg_bin is None:
        raise SiteError("PostgreSQL's server binaries (pg_ctl, initdb) are missing: Airflow 2's EdgeExecutor "
                        "refuses SQLite. Install them (apt-get install postgresql, brew install postgresql).")
    # Not under the caller's folder: as root, the postgres user cannot enter root's 0700 folders.
    root = Path(tempfile.mkdtemp(prefix="edge-template-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data = root / "data"
    port = free_port()

    def run(argv: list[str], as_postgres: bool = True) -> None:
        result = subprocess.run(_as_postgres(argv) if as_postgres else argv, capture_output=True,  # noqa: S603
                                text=True, check=False)
        if result.returncode != 0:
            raise SiteError(f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}")

    try:
        run([str(pg_bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"])
        options = Postgres(root, port, pg_bin).options
        run([str(pg_bin / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "pg.log"), "-o", options, "start"])
        try:
            run([str(pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "airflow"],
                as_postgres=False)
            yield Postgres(root, port, pg_bin)
        finally:
            subprocess.run(_as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),  # noqa: S603
                           check=False, capture_output=True)
    finally:
        if logs is not None and (root / "pg.log").exists():
            logs.mkdir(parents=True, exist_ok=True)
            shutil.copy(root / "pg.log", logs / f"postgresql-{port}.log")
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- the team repo's files


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a rendered .env file (comments and blanks skipped)."""
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    return env


def read_worker_env(repo: Path) -> dict[str, str]:
    """worker.env.yaml as the template writes it: `KEY: "JSON string"` or `KEY: 'single-quoted'` lines
    (the format of `gcloud run ... --env-vars-file`), comments and `---` skipped."""
    env = {}
    for number, line in enumerate((repo / "worker.env.yaml").read_text().splitlines(), 1):
        if not line.strip() or line.startswith(("#", "---")):
            continue
        match = re.fullmatch(r'([A-Za-z_][A-Za-z0-9_]*): (".*"|\'.*\')', line)
        if match is None:
            raise SiteError(f"worker.env.yaml:{number}: not KEY: \"VALUE\" (a line this tool cannot read): {line}")
        key, value = match.groups()
        env[key] = json.loads(value) if value[0] == '"' else value[1:-1].replace("''", "'")
    return env


def bundle_name(worker_env: dict[str, str]) -> str:
    """The central DAG bundle the worker serves (Airflow 3), from its bundle list."""
    bundles = json.loads(worker_env.get("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST") or "[]")
    return str(bundles[0]["name"]) if bundles else "dags-folder"


# --------------------------------------------------------------------------- the central site


@dataclass
class CentralSite:
    """A central Airflow site, configured from a team repo's central/edge.env."""

    venv: Path
    home: Path
    port: int
    secret: str
    airflow_major: int
    db: Postgres | None
    logs: Path
    env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    commands: dict[str, list[str]] = field(default_factory=dict)  # each server's command line, by name
    teams: tuple[str, ...] = ()  # Airflow teams, in multi-team mode

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/edge_worker/v1/rpcapi"

    @property
    def dags(self) -> Path:
        return self.home / "dags"

    def configure(self, central_env: dict[str, str], bundle: str = "dags-folder", teams: tuple[str, ...] = (),
                  open_ui: bool = False) -> None:
        """The site's settings; with `teams`, Airflow's multi-team mode as each team's central/README.md
        asks: a global executor and one EdgeExecutor per team, a bundle per team. With `open_ui`,
        every visitor of the UI is admin (on 127.0.0.1 only), so that it needs no login."""
        secret_var = (
            "AIRFLOW__CORE__INTERNAL_API_SECRET_KEY" if self.airflow_major == 2 else "AIRFLOW__API_AUTH__JWT_SECRET"
        )
        self.env = {
            "PATH": f"{self.venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.home),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__WEBSERVER__WORKERS": "2",
            "AIRFLOW__WEBSERVER__SECRET_KEY": hashlib.sha256(self.secret.encode() + b"web").hexdigest(),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            "PYTHONUNBUFFERED": "1",
            **central_env,
            "AIRFLOW__EDGE__API_URL": self.api_url,
            secret_var: self.secret,
        }
        if open_ui:
            self.home.mkdir(parents=True, exist_ok=True)
            if self.airflow_major == 2:  # Flask-AppBuilder's public role
                (self.home / "webserver_config.py").write_text('AUTH_ROLE_PUBLIC = "Admin"\n')
            else:
                self.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "True"
        self.teams = teams
        if teams:
            edge = "airflow.providers.edge3.executors.EdgeExecutor"
            self.env["AIRFLOW__CORE__MULTI_TEAM"] = "True"
            self.env["AIRFLOW__CORE__EXECUTOR"] = edge + "".join(f";{team}={edge}" for team in teams)
            self.env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps([{
                "name": team,
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(self.home / "bundles" / team)},
                "team_name": team,
            } for team in teams])
        elif self.airflow_major == 3 and bundle != "dags-folder":
            # The central DAG folder served as an unversioned local bundle of another name.
            self.env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps([{
                "name": bundle,
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(self.dags)},
            }])
        if self.db is not None:
            self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = self.db.url
        else:
            self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{self.home / 'airflow.db'}"

    def airflow(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(  # noqa: S603 - the venv's airflow
            [str(self.venv / "bin" / "airflow"), *args], env=self.env, capture_output=True, text=True,
            timeout=timeout, check=False, cwd=self.home,
        )
        if result.returncode != 0:
            raise SiteError(f"airflow {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}")
        return result.stdout

    def migrate(self) -> None:
        """Create the metadata database; teams can be added after this, before start()."""
        self.dags.mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate")
        for team in self.teams:  # before any server starts: each refuses a team it cannot find
            self.airflow("teams", "create", team)

    def start(self) -> None:
        """Serialize the DAGs once, then start the servers (so no CLI races the DAG processor)."""
        self.airflow("dags", "reserialize")
        bin_airflow = str(self.venv / "bin" / "airflow")

        # Each server runs in the site's own folder: what it writes where it stands (gunicorn's
        # gunicorn.ctl on Airflow 2.11) stays there.
        def serve(name: str, argv: list[str]) -> None:
            self.commands[name] = argv
            self.procs.append(start(name, argv, self.env, self.logs, cwd=self.home))

        if self.airflow_major == 2:
            serve("central-webserver", [bin_airflow, "webserver", "--port", str(self.port), "--hostname", "127.0.0.1"])
            serve("central-scheduler", [bin_airflow, "scheduler"])
        else:
            serve("central-api-server", [bin_airflow, "api-server", "--port", str(self.port), "--host", "127.0.0.1"])
            serve("central-scheduler", [bin_airflow, "scheduler"])
            serve("central-dag-processor", [bin_airflow, "dag-processor"])
        wait_until("the central site's Edge API /health", self.edge_api_up, timeout=180, interval=1)

    def edge_api_up(self) -> bool:
        for proc in self.procs:
            if not proc.alive():
                raise SiteError(f"{proc.name} exited:\n{proc.text()[-4000:]}")
        try:
            with urllib.request.urlopen(self.api_url.removesuffix("/rpcapi") + "/health", timeout=3) as response:  # noqa: S310
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def restart(self, name: str) -> None:
        """One server of the site stopped as an upgrade stops it (SIGTERM) and started again,
        until the Edge API answers again with every server up."""
        next(proc for proc in self.procs if proc.name == name).stop()
        self.revive()

    def revive(self) -> list[str]:
        """Start again each server that is not running, as the site's orchestrator does, and wait
        until the Edge API answers with every server up; their names."""
        gone = [proc.name for proc in self.procs if not proc.alive()]
        self.procs = [proc if proc.alive() else start(proc.name, self.commands[proc.name], self.env, self.logs,
                                                      cwd=self.home) for proc in self.procs]  # fmt: skip
        wait_until("the central site's servers back", self.edge_api_up, timeout=180, interval=0.5)
        return gone

    def add_team(self, repo: Path, team: str | None = None) -> None:
        """The team's DAG files into the central DAG folder (its Airflow team's bundle, in
        multi-team mode), and its pool (between migrate and start)."""
        shutil.copytree(repo / "dags", self.home / "bundles" / team if team else self.dags, dirs_exist_ok=True)
        self.airflow("pools", "import", str(repo / "pools.json"))

    def query(self, sql: str) -> list[list[Any]]:
        if self.db is not None:
            return self.db.psql(sql)
        with sqlite3.connect(self.home / "airflow.db", timeout=30) as conn:
            return [list(row) for row in conn.execute(sql).fetchall()]

    def worker_rows(self) -> dict[str, str]:
        """worker_name -> state, as the central site records it."""
        return {str(name): str(state) for name, state in self.query("SELECT worker_name, state FROM edge_worker")}

    def trigger(self, dag_id: str, run_id: str | None = None) -> str:
        run_id = run_id or f"e2e_{dag_id}_{time.time_ns()}"
        self.airflow("dags", "unpause", dag_id)
        self.airflow("dags", "trigger", dag_id, "--run-id", run_id)
        return run_id

    def task_instance(self, dag_id: str, run_id: str) -> dict[str, str] | None:
        rows = self.query(
            "SELECT state, hostname, queue, pool FROM task_instance "  # noqa: S608 - quoted by sql_text
            f"WHERE dag_id = {sql_text(dag_id)} AND run_id = {sql_text(run_id)}"
        )
        if not rows:
            return None
        state, hostname, queue, pool = rows[0]
        return {"state": str(state), "hostname": str(hostname), "queue": str(queue), "pool": str(pool)}


# --------------------------------------------------------------------------- workers


@dataclass
class Worker:
    """entrypoint.sh, started with the worker environment plus the secret."""

    proc: Proc
    repo: Path
    home: Path
    port: int | None

    def name(self) -> str | None:
        match = re.search(r"entrypoint: worker name (\S+),", self.proc.text())
        return match.group(1) if match else None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        code = self.proc.stop(sig, timeout)
        kill_strays(f"AIRFLOW_HOME={self.home}")
        return code

    def worker_pid(self) -> int | None:
        path = self.home / "run" / "worker.pid"
        try:
            return int(path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None


def start_worker(
    repo: Path, venv_path: Path, worker_env: dict[str, str], secret: str | None, logs: Path, name: str,
    overrides: dict[str, str] | None = None,
) -> Worker:
    """entrypoint.sh as the image runs it, with `worker_env` (worker.env.yaml): the container's
    paths made local (the venv, a home under `logs`, the repo's dags/), nothing else added but
    the secret and `overrides`."""
    home = logs / name / "airflow-home"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(worker_env)
    env.update(
        {
            "PATH": f"{venv_path / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(home),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(repo / "dags"),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    port = None
    if env.get("EDGE_HEALTH_SERVER") == "true":
        port = free_port()
        env["PORT"] = str(port)
    if secret is not None:
        env["EDGE_SHARED_SECRET"] = secret
    env.update(overrides or {})
    proc = start(name, [str(repo / "entrypoint.sh")], env, logs)
    return Worker(proc, repo, home, port)


# --------------------------------------------------------------------------- the local run


FINISHED = ("success", "failed", "skipped", "upstream_failed", "removed")
TRY_ENDED = (*FINISHED, "up_for_retry", "up_for_reschedule")


def say(line: str) -> None:
    print(f"local: {line}", flush=True)


def sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class LocalRun:
    """A throwaway central site and this repo's worker, in `folder`."""

    repo: Path
    folder: Path
    port: int
    open_ui: bool
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    central: CentralSite | None = None
    worker: Worker | None = None
    worker_name: str = ""

    @contextmanager
    def running(self) -> Iterator[LocalRun]:
        image, _ = dockerfile_steps(self.repo)
        major = int(image.airflow_version.split(".")[0])
        if self.folder.exists():
            shutil.rmtree(self.folder)
        logs = self.folder / "logs"
        started = time.monotonic()
        venv_path = airflow_venv(self.repo, extra=central_extra(image.airflow_version, postgres=major == 2))
        say(f"packages: a venv built as the Dockerfile builds the image (uv), {venv_path} "
            f"({time.monotonic() - started:.0f} s); no containers")
        worker_env = read_worker_env(self.repo)
        marker = f"AIRFLOW_HOME={self.folder.resolve()}{os.sep}"
        try:
            with postgres(logs) if major == 2 else nullcontext() as db:
                if db is not None:
                    say(f"database: PostgreSQL ({db.bin}) on 127.0.0.1:{db.port}, removed at the end")
                central = CentralSite(venv_path, self.folder.resolve() / "central", self.port, self.secret, major, db,
                                      logs)
                team = worker_env.get("EDGE_TEAM_NAME")
                central.configure(read_env_file(self.repo / "central" / "edge.env"), bundle=bundle_name(worker_env),
                                  teams=(team,) if team else (), open_ui=self.open_ui)
                self.central = central
                try:
                    central.migrate()
                    central.add_team(self.repo, team)
                    say(f"central site: Airflow {image.airflow_version} starting on 127.0.0.1:{self.port}")
                    central.start()
                    overrides = {"AIRFLOW__EDGE__API_URL": central.api_url}
                    if "AIRFLOW__CORE__EXECUTION_API_SERVER_URL" in worker_env:
                        overrides["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://127.0.0.1:{self.port}/execution/"
                    overrides["EDGE_REMOTE_LOG_FOLDER"] = ""  # no Cloud Storage here: logs stay in the folder
                    self.worker = start_worker(self.repo, venv_path, worker_env, self.secret, self.folder.resolve(),
                                               "worker", overrides)
                    self.worker_name = self.registered()
                    say(f"worker {self.worker_name} registered (queues {worker_env.get('EDGE_WORKER_QUEUES')}), "
                        f"{time.monotonic() - started:.0f} s after the start; its log: {self.worker.proc.log}")
                    yield self
                finally:
                    self.stop()
        finally:
            left = kill_strays(marker)
            if left:
                say(f"ended {len(left)} process(es) left behind")

    def registered(self) -> str:
        assert self.worker is not None
        assert self.central is not None
        worker, central = self.worker, self.central
        name = wait_until("the worker to print its name", lambda: worker.name() or self.worker_gone(), timeout=240)
        wait_until(f"{name} to register at the central site",
                   lambda: central.worker_rows().get(name) in ("idle", "running") or self.worker_gone(), timeout=120)
        return name

    def worker_gone(self) -> bool:
        assert self.worker is not None
        if not self.worker.proc.alive():
            raise SiteError(f"the worker exited ({self.worker.proc.popen.returncode}):\n"
                            f"{self.worker.proc.text()[-3000:]}")
        return False

    def stop(self) -> None:
        """The worker first, as Cloud Run stops it (SIGTERM: it ends its tasks and deregisters), then the site."""
        if self.worker is not None:
            say("stopping the worker (SIGTERM), then the central site")
            self.worker.stop()
            self.worker = None
        if self.central is not None:
            self.central.stop()
            self.central = None

    # ------------------------------------------------------------------ trigger and wait

    def trigger_and_wait(self, dag_id: str, timeout: float) -> int:
        assert self.central is not None
        central = self.central
        if not central.query(f"SELECT dag_id FROM dag WHERE dag_id = {sql_text(dag_id)}"):  # noqa: S608
            known = sorted(str(row[0]) for row in central.query("SELECT dag_id FROM dag"))
            errors = central.airflow("dags", "list-import-errors")
            say(f"no DAG {dag_id!r} at the central site; it has: {', '.join(known) or 'none'}\n{errors}")
            return 1
        run_id = f"local__{datetime.now().strftime('%Y%m%dT%H%M%S')}"
        started = time.monotonic()
        central.trigger(dag_id, run_id)
        say(f"triggered {dag_id}, run {run_id}")
        seen: dict[str, tuple[str, int]] = {}
        printed: set[tuple[str, int]] = set()
        deadline = started + timeout
        while True:
            run_state = self.run_state(dag_id, run_id)
            for task, state, try_number, hostname in self.task_states(dag_id, run_id):
                if state and seen.get(task) != (state, try_number):
                    seen[task] = (state, try_number)
                    where = f" on {hostname}" if hostname and state not in ("queued", "scheduled", "") else ""
                    print(f"  {task}: {state or 'none'}{where} (try {try_number})", flush=True)
                if state in TRY_ENDED and (task, try_number) not in printed:
                    printed.add((task, try_number))
                    self.print_log(dag_id, run_id, task, try_number)
            if run_state in ("success", "failed"):
                say(f"{dag_id} {run_id}: {run_state} in {time.monotonic() - started:.0f} s")
                return 0 if run_state == "success" else 1
            if time.monotonic() > deadline:
                say(f"{dag_id} {run_id}: still {run_state} after {timeout:g} s; giving up")
                return 1
            self.worker_gone()
            time.sleep(1)

    def run_state(self, dag_id: str, run_id: str) -> str:
        assert self.central is not None
        rows = self.central.query(f"SELECT state FROM dag_run WHERE dag_id = {sql_text(dag_id)} "  # noqa: S608
                                  f"AND run_id = {sql_text(run_id)}")
        return str(rows[0][0]) if rows else ""

    def task_states(self, dag_id: str, run_id: str) -> list[tuple[str, str, int, str]]:
        """(task, state, try, hostname) of each task instance of the run (mapped ones by index)."""
        assert self.central is not None
        rows = self.central.query(
            "SELECT task_id, map_index, state, try_number, hostname FROM task_instance "  # noqa: S608
            f"WHERE dag_id = {sql_text(dag_id)} AND run_id = {sql_text(run_id)} ORDER BY task_id, map_index")
        return [(f"{task}[{index}]" if int(index) >= 0 else str(task), str(state or ""), int(try_number or 0),
                 str(hostname or "")) for task, index, state, try_number, hostname in rows]

    def print_log(self, dag_id: str, run_id: str, task: str, try_number: int) -> None:
        """The try's log file: the worker's own, else what edge3 pushed to the central site."""
        assert self.central is not None
        task_id, _, index = task.partition("[")
        relative = f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}"
        if index:
            relative += f"/map_index={index.rstrip(']')}"
        relative += f"/attempt={try_number}.log"
        homes = [self.folder.resolve() / "worker" / "airflow-home" / "logs", self.central.home / "logs"]
        for log in (home / relative for home in homes):
            if settled(log):
                text = "\n".join(readable(line) for line in log.read_text(errors="replace").rstrip().splitlines())
                print(f"  --- {task}, try {try_number}: {log}\n{text}\n  --- end of {task}, try {try_number}",
                      flush=True)
                return
        print(f"  (no log file of {task}, try {try_number}: the task never started on the worker)", flush=True)


def settled(log: Path, quiet: float = 1.5, most: float = 20) -> bool:
    """Whether `log` exists, once it has not changed for `quiet` s (at most `most` s): a try's last
    lines (Airflow 2 logs a failed task's traceback) come after the central site has its state."""
    deadline = time.monotonic() + most
    last = None
    while True:
        try:
            now = (log.stat().st_size, log.stat().st_mtime_ns)
        except FileNotFoundError:
            now = None
        if now is not None and now == last:
            return True
        if time.monotonic() > deadline:
            return now is not None
        last = now
        time.sleep(quiet)


def readable(line: str) -> str:
    """A task log line as the UI shows it: Airflow 3 writes JSON records, with tracebacks as frames."""
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict) or "event" not in record:
        return line
    text = f"[{record.get('timestamp', '')}] {str(record.get('level', '')).upper()} - {record['event']}"
    for error in record.get("error_detail") or []:
        frames = "".join(f'\n  File "{frame.get("filename")}", line {frame.get("lineno")}, in {frame.get("name")}'
                         for frame in error.get("frames") or [])
        text += f"\nTraceback (most recent call last):{frames}\n{error.get('exc_type')}: {error.get('exc_value')}"
    return text


# --------------------------------------------------------------------------- the same with containers


def container_script(repo: Path, port: int) -> str:
    """A bash script that runs the same with images, where a Docker engine runs: the worker from
    this repo's Dockerfile with worker.env.yaml; the central site from the official apache/airflow
    image of the same release (it holds PostgreSQL's driver), which installs edge3 and the site's
    packages at start (_PIP_ADDITIONAL_REQUIREMENTS, the image's way for a quick try), configured as
    the venv run configures it; PostgreSQL's image for Airflow 2's database. The secret is made by
    the script and passed by name only. Ctrl-C removes every container and the network."""
    from answers import read_answers, site_facts

    answers = read_answers(repo / ".copier-answers.yml")
    team = str(answers["team_name"])
    image, _ = dockerfile_steps(repo)
    major = int(image.airflow_version.split(".")[0])
    python = re.search(r"-python(\d+\.\d+)", (repo / "Dockerfile").read_text())
    central_image = f"apache/airflow:{image.airflow_version}-python{python.group(1) if python else '3.12'}"
    worker_image = f"{team}-worker:local"
    net = f"{team}-local"
    central_host = f"{team}-central"
    worker_env = read_worker_env(repo)
    # The venv run's settings (configure) at the image's paths; the database URL is set below.
    site = CentralSite(Path("/home/airflow/.local"), Path("/opt/airflow"), 8080, "unused", major, None,
                       Path("/opt/airflow/logs"))
    team_name = worker_env.get("EDGE_TEAM_NAME")
    site.configure(read_env_file(repo / "central" / "edge.env"), bundle=bundle_name(worker_env),
                   teams=(team_name,) if team_name else ())
    secret_var = "AIRFLOW__CORE__INTERNAL_API_SECRET_KEY" if major == 2 else "AIRFLOW__API_AUTH__JWT_SECRET"
    # The image's own PATH and HOME; the webserver makes its own session key.
    dropped = ("PATH", "HOME", secret_var, "AIRFLOW__WEBSERVER__SECRET_KEY")
    site_env = {key: value for key, value in site.env.items() if key not in dropped}
    site_env["AIRFLOW__EDGE__API_URL"] = f"http://{central_host}:8080/edge_worker/v1/rpcapi"
    if major == 2:
        site_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"postgresql+psycopg2://postgres:local@{team}-db:5432/airflow"
    else:
        site_env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "True"
    site_env["_PIP_ADDITIONAL_REQUIREMENTS"] = " ".join(central_requirements(site_facts(answers))[1:])
    if team_name:  # the bundle of the team's DAGs, mounted where the site looks for it
        site_env["AIRFLOW__CORE__DAGS_FOLDER"] = "/opt/airflow/dags"
    dags_at = f"/opt/airflow/bundles/{team_name}" if team_name else "/opt/airflow/dags"
    site_flags = ["--network", net, "--env", secret_var,
                  "--volume", f"{(repo / 'dags').resolve()}:{dags_at}:ro",
                  "--volume", f"{(repo / 'pools.json').resolve()}:/opt/edge/pools.json:ro",
                  *[flag for key, value in site_env.items() for flag in ("--env", f"{key}={value}")]]
    worker_overrides = {"AIRFLOW__EDGE__API_URL": site_env["AIRFLOW__EDGE__API_URL"], "EDGE_REMOTE_LOG_FOLDER": ""}
    if "AIRFLOW__CORE__EXECUTION_API_SERVER_URL" in worker_env:
        worker_overrides["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://{central_host}:8080/execution/"
    worker_flags = ["--network", net, "--env", "EDGE_SHARED_SECRET",
                    "--volume", f"{(repo / 'dags').resolve()}:{worker_env['AIRFLOW__CORE__DAGS_FOLDER']}:ro",
                    *[flag for key, value in {**worker_env, **worker_overrides}.items()
                      for flag in ("--env", f"{key}={value}")]]
    servers = [["webserver"], ["scheduler"]] if major == 2 else [["api-server"], ["scheduler"], ["dag-processor"]]
    containers = [f"{team}-db"] if major == 2 else []
    commands = [["docker", "build", "--tag", worker_image, str(repo.resolve())],
                ["docker", "network", "create", net]]
    if major == 2:
        commands.append(["docker", "run", "--detach", "--name", f"{team}-db", "--network", net, "--env",
                         "POSTGRES_PASSWORD=local", "--env", "POSTGRES_DB=airflow", "postgres:16"])
    # The image's own start-up: wait for the database, migrate it, create the UI's admin.
    init = ["--env", "_AIRFLOW_DB_MIGRATE=true", "--env", "_AIRFLOW_WWW_USER_CREATE=true",
            "--env", "_AIRFLOW_WWW_USER_USERNAME=admin", "--env", "_AIRFLOW_WWW_USER_PASSWORD=admin"]
    commands.append(["docker", "run", "--rm", *site_flags, *init, central_image, "pools", "import",
                     "/opt/edge/pools.json"])
    for server in servers:
        name = central_host if server[0] in ("webserver", "api-server") else f"{team}-{server[0]}"
        publish = ["--publish", f"127.0.0.1:{port}:8080"] if name == central_host else []
        containers.append(name)
        commands.append(["docker", "run", "--detach", "--name", name, *publish, *site_flags, central_image, *server])
    containers.append(f"{team}-worker")
    commands.append(["docker", "run", "--detach", "--name", f"{team}-worker", *worker_flags, worker_image])
    login = "admin, password admin" if major == 2 else "none: every visitor is admin"
    lines = [
        "#!/usr/bin/env bash",
        f"# Team {team}'s worker and a throwaway central site in containers: printed by",
        "# `python3 tools/run_locally.py --containers --dry-run`; run it from the repo's folder.",
        "set -euo pipefail",
        'EDGE_SHARED_SECRET="$(python3 -c \'import secrets; print(secrets.token_urlsafe(32))\')"',
        f'{secret_var}="$EDGE_SHARED_SECRET"',
        f"export EDGE_SHARED_SECRET {secret_var}",
        "cleanup() {",
        f"  docker rm --force {' '.join(reversed(containers))} >/dev/null 2>&1 || true",
        f"  docker network rm {net} >/dev/null 2>&1 || true",
        "}",
        "trap cleanup EXIT",
        *[shlex.join(command) for command in commands],
        f"echo 'The central site: http://127.0.0.1:{port} (login: {login}). Ctrl-C stops everything.'",
        f"docker logs --follow {team}-worker",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- command line


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tools/run_locally.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trigger", metavar="DAG_ID", help="trigger this DAG, print each task's state and log, "
                        "stop everything and exit 0 when the run succeeds, 1 when it fails")
    parser.add_argument("--port", type=int, default=8080, help="the central site's port on 127.0.0.1 (8080)")
    parser.add_argument("--folder", type=Path, default=None, help="where its state goes (.local-run/ in this repo)")
    parser.add_argument("--timeout", type=float, default=1800, help="--trigger: seconds to wait for the run (1800)")
    parser.add_argument("--containers", action="store_true",
                        help="the same with the images, on a Docker engine (the UI run; Ctrl-C removes them)")
    parser.add_argument("--dry-run", action="store_true", help="--containers: print its commands, run nothing")
    args = parser.parse_args(argv)
    repo = Path(__file__).resolve().parents[1]
    if args.dry_run and not args.containers:
        parser.error("--dry-run goes with --containers")
    if args.containers:
        if args.trigger:
            parser.error("--containers runs the UI run only: trigger from the UI")
        script = container_script(repo, args.port)
        if args.dry_run:
            print(script, end="")
            return 0
        engine = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)  # noqa: S607
        if engine.returncode != 0:
            say(f"no Docker engine answers here (docker info: {engine.stderr.strip()[:300]}): "
                "--containers --dry-run prints the commands")
            return 2
        say("containers: the worker from this repo's Dockerfile, the central site from the apache/airflow image")
        os.chdir(repo)
        os.execvp("bash", ["bash", "-c", script])  # noqa: S606, S607 - bash runs the script printed by --dry-run
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", args.port))
        except OSError:
            say(f"port {args.port} on 127.0.0.1 is taken: pass --port N")
            return 2
    folder = args.folder or repo / ".local-run"
    say(f"state and logs in {folder} (emptied at the next start); nothing of Google Cloud is used")

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, interrupted)
    run = LocalRun(repo, folder, args.port, open_ui=not args.trigger)
    try:
        with run.running():
            if args.trigger:
                return run.trigger_and_wait(args.trigger, args.timeout)
            say(f"the central site's UI: http://127.0.0.1:{args.port} (no login: every visitor is admin); "
                "trigger your DAGs there. Ctrl-C stops everything.")
            while True:
                run.worker_gone()
                time.sleep(1)
    except KeyboardInterrupt:
        say("stopped")
        return 130
    except SiteError as error:
        say(f"failed: {error}")
        return 1
    finally:
        say("everything it started has stopped")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
