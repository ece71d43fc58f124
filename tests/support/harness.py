"""A real Airflow central site, PostgreSQL and Edge workers, run from rendered team repos.

Nothing here is faked: the venv holds exactly what the rendered Dockerfile installs,
the central site is configured from the rendered central/ files, and workers are the
rendered entrypoint.sh with the rendered worker.env.yaml plus the secret.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

# The /proc helpers, called as harness.X by the tests and bench/.
from support.procs import alive, all_pids, cmdline, descendants, pids_with_env, pss_mib, rss_mib  # noqa: F401

CACHE = Path(os.environ.get("EDGE_TEMPLATE_CACHE", Path.home() / ".cache" / "edge-template"))


class HarnessError(AssertionError):
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
            raise HarnessError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------- venvs


PYPI_SIMPLE = "https://pypi.org/simple/apache-airflow/"


def image_built(airflow_version: str) -> str:
    """A day after apache-airflow `airflow_version`'s wheel reached PyPI (RFC 3339, from PyPI's
    index): when its image was built, with the release and the packages it came with."""
    request = urllib.request.Request(PYPI_SIMPLE, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    wheel = f"apache_airflow-{airflow_version}-py3-none-any.whl"
    for file in files:
        if file["filename"] == wheel and file.get("upload-time"):
            uploaded = datetime.fromisoformat(file["upload-time"].replace("Z", "+00:00"))
            return (uploaded + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    raise HarnessError(f"PyPI's index ({PYPI_SIMPLE}) lists no upload time for {wheel}")


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
    joined by &&);
    anything else fails here, so that the venv never silently differs from the image."""
    text = re.sub(r"\\\n", " ", (repo / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    base = next((line.split()[1] for line in lines if line.startswith("FROM ")), None)
    if base is None:
        raise HarnessError("no FROM line in the rendered Dockerfile")
    tag = base.rsplit(":", 1)[-1]
    version = re.match(r"(?:slim-)?(\d+\.\d+\.\d+)-python", tag)
    if version is None:
        raise HarnessError(f"the FROM line's tag {tag!r} is not [slim-]<airflow>-python<python>")
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
                raise HarnessError(f"the harness does not know how to run this Dockerfile step: {line}")
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
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode == 0 and step.output and not dry_run:
        Path(local_path(step.output, repo, venv_path)).write_text(result.stdout)
    return result


def uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if not found:
        raise HarnessError("uv is missing: install requirements-dev.txt (python3 scripts/dev.py test does)")
    return found


def airflow_venv(repo: Path, extra: tuple[str, ...] = ()) -> Path:
    """A venv built as the rendered Dockerfile builds the image, cached by what goes in.

    First the image: apache-airflow at the FROM line's version (plus `extra`, what only the
    central site needs) resolved as of that release; then each RUN step of the Dockerfile,
    resolved today as a build today would be. The resolved set is in pip-freeze.txt.
    Built once per pin set, by the DAG import check's own built_once: into a temporary folder
    moved into place when whole, under a lock, so that test processes needing the same venv at
    once wait for one build (uv's relocatable venv: its scripts still run once moved)."""
    image, steps = dockerfile_steps(repo)
    image = Image(image.airflow_version, extra)
    key_source = json.dumps([sys.version_info[:2], image.airflow_version, image.extra,
                             [[*s.argv, s.output] for s in steps],
                             (repo / "requirements.txt").read_text()])
    key = hashlib.sha256(key_source.encode()).hexdigest()[:16]
    path = CACHE / "venvs" / key
    freeze = path / "pip-freeze.txt"

    def build(target: Path) -> None:
        started = time.monotonic()
        subprocess.run([uv(), "venv", "--quiet", "--relocatable", "--seed", "--python", sys.executable, str(target)],
                       capture_output=True, text=True, check=True)
        python = str(target / "bin" / "python")
        image_args = image.uv_args()
        result = subprocess.run([uv(), "pip", "install", "--quiet", "--python", python, *image_args],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise HarnessError(f"the image ({' '.join(image_args)}) failed to install:\n{result.stderr[-4000:]}")
        for step in steps:
            result = run_build_step(step, repo, target)
            if result.returncode != 0:
                raise HarnessError(f"Dockerfile step `{' '.join(step.argv)}` failed:\n{result.stderr[-4000:]}")
        frozen = subprocess.run([uv(), "pip", "freeze", "--python", python], capture_output=True, text=True,
                                check=True)
        (target / "pip-freeze.txt").write_text(frozen.stdout)
        print(f"e2e: venv {path} built in {time.monotonic() - started:.0f} s (image: {' '.join(image_args)})",
              file=sys.stderr)

    dag_check_hook().built_once(path, build, key_source)
    print(f"e2e: venv {path}, resolved set in {freeze}", file=sys.stderr)
    return path


def dag_check_hook() -> ModuleType:
    """hooks/check_dag_imports.py, the stdlib-only file shipped to team repos (one copy of built_once)."""
    name = "edge_template_check_dag_imports"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[2] / "hooks" /
                                                      "check_dag_imports.py")
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        sys.modules[name] = module
    return sys.modules[name]


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
        # End what is left in our group. Our PID is free once reaped, and with many tests at once
        # (pid_max 32768) another process may get it: PostgreSQL's postmaster or a central site's
        # server, leaders of their own groups. A live process with our PID is not ours, so neither
        # is its group; while a process of our group lives, Linux gives our PID to no other.
        if not alive(self.pid):
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        return self.popen.returncode


def start(name: str, argv: list[str], env: dict[str, str], logs: Path, cwd: Path | None = None) -> Proc:
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Proc(name, popen, log)


# --------------------------------------------------------------------------- PostgreSQL


def postgres_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


@dataclass
class Postgres:
    root: Path
    port: int
    bin: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/airflow"

    def psql(self, sql: str) -> list[list[str]]:
        result = subprocess.run(
            [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "airflow",
             "-At", "-F", "\t", "-c", sql],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise HarnessError(f"psql failed: {result.stderr}")
        return [line.split("\t") for line in result.stdout.splitlines() if line]

    def _pg_ctl(self, *args: str) -> None:
        argv = [str(self.bin / "pg_ctl"), *args]
        result = subprocess.run(_as_postgres(argv), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise HarnessError(f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}")

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


def _as_postgres(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: run its tools as the postgres user.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def postgres(logs: Path | None = None) -> Iterator[Postgres]:
    """A throwaway PostgreSQL server on a free loopback port; its log is copied into `logs` at the end."""
    pg_bin = postgres_bin()
    if pg_bin is None:
        raise HarnessError("PostgreSQL binaries (pg_ctl, initdb) are missing: apt-get install postgresql")
    # Not under pytest's tmp dir: the postgres user cannot enter root's 0700 folders.
    root = Path(tempfile.mkdtemp(prefix="edge-template-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data = root / "data"
    port = free_port()

    def run(argv: list[str], as_postgres: bool = True) -> None:
        result = subprocess.run(_as_postgres(argv) if as_postgres else argv, capture_output=True, text=True,
                                check=False)
        if result.returncode != 0:
            raise HarnessError(f"{' '.join(argv)} failed:\n{result.stdout}{result.stderr}")

    try:
        run([str(pg_bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"])
        options = Postgres(root, port, pg_bin).options
        run([str(pg_bin / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "pg.log"), "-o", options, "start"])
        try:
            run([str(pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "airflow"],
                as_postgres=False)
            yield Postgres(root, port, pg_bin)
        finally:
            subprocess.run(_as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                           check=False, capture_output=True)
    finally:
        if logs is not None and (root / "pg.log").exists():
            logs.mkdir(parents=True, exist_ok=True)
            shutil.copy(root / "pg.log", logs / f"postgresql-{port}.log")
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- rendered files


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a rendered .env file (comments and blanks skipped)."""
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    return env


def worker_env_file(repo: Path) -> dict[str, str]:
    return yaml.safe_load((repo / "worker.env.yaml").read_text())


# --------------------------------------------------------------------------- central site


@dataclass
class CentralSite:
    """A central Airflow site, configured from a rendered repo's central/edge.env."""

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

    def configure(self, central_env: dict[str, str], bundle: str = "dags-folder", teams: tuple[str, ...] = ()) -> None:
        """The site's settings; with `teams`, Airflow's multi-team mode as each team's central/README.md
        asks: a global executor and one EdgeExecutor per team, a bundle per team."""
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
        result = subprocess.run(
            [str(self.venv / "bin" / "airflow"), *args], env=self.env, capture_output=True, text=True,
            timeout=timeout, check=False, cwd=self.home,
        )
        if result.returncode != 0:
            raise HarnessError(f"airflow {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}")
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
                raise HarnessError(f"{proc.name} exited:\n{proc.text()[-4000:]}")
        try:
            with urllib.request.urlopen(self.api_url.removesuffix("/rpcapi") + "/health", timeout=3) as response:
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

    def add_team(self, repo: Path) -> None:
        """The team's DAG files into the central DAG folder, and its pool (between migrate and start)."""
        team = worker_env_file(repo).get("EDGE_TEAM_NAME")
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

    def trigger(self, dag_id: str) -> str:
        run_id = f"e2e_{dag_id}_{time.time_ns()}"
        self.airflow("dags", "unpause", dag_id)
        self.airflow("dags", "trigger", dag_id, "--run-id", run_id)
        return run_id

    def task_instance(self, dag_id: str, run_id: str) -> dict[str, str] | None:
        rows = self.query(
            "SELECT state, hostname, queue, pool FROM task_instance "
            f"WHERE dag_id = '{dag_id}' AND run_id = '{run_id}'"
        )
        if not rows:
            return None
        state, hostname, queue, pool = rows[0]
        return {"state": str(state), "hostname": str(hostname), "queue": str(queue), "pool": str(pool)}


# --------------------------------------------------------------------------- workers


@dataclass
class Worker:
    """A rendered entrypoint.sh, started with the rendered worker environment plus the secret."""

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
    repo: Path, venv_path: Path, secret: str | None, logs: Path, name: str, overrides: dict[str, str] | None = None
) -> Worker:
    home = logs / name / "airflow-home"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(worker_env_file(repo))
    # Container paths become local ones; nothing else is added but the secret.
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


def kill_strays(marker: str) -> list[int]:
    """SIGKILL processes whose environment holds `marker` (task processes run in their own session)."""
    killed = []
    for pid in pids_with_env(marker):
        with suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed
