"""A real Airflow central site, PostgreSQL and Edge workers, run from rendered team repos.

Nothing here is faked: the venv holds exactly what the rendered Dockerfile installs,
the central site is configured from the rendered central/ files, and workers are the
rendered entrypoint.sh with the rendered worker.env.yaml plus the secret.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
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
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CACHE = Path(os.environ.get("EDGE_TEMPLATE_CACHE", Path.home() / ".cache" / "edge-template"))
PIP_ARGS = re.compile(r'RUN pip install --no-cache-dir \\\n((?:\s+.+\\\n)*\s+.+)\n')


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


def dockerfile_pip_args(repo: Path) -> list[str]:
    """The arguments of the rendered Dockerfile's `pip install`, with paths made local."""
    match = PIP_ARGS.search((repo / "Dockerfile").read_text())
    if not match:
        raise HarnessError("no `RUN pip install --no-cache-dir` in the rendered Dockerfile")
    args = [a.strip().rstrip("\\").strip().strip('"') for a in match.group(1).splitlines()]
    args = [a for a in args if a]
    out: list[str] = []
    for arg in args:
        if arg.startswith("-r "):
            out += ["-r", str(repo / "requirements.txt")]
        else:
            out.append(arg)
    return out


@dataclass(frozen=True)
class ResolveAsOf:
    """Resolve a venv as the image of an older release was: nothing uploaded after `date`,
    except the packages in `later` (name -> date), which need newer releases."""

    date: str
    later: dict[str, str] = field(default_factory=dict)

    def uv_args(self) -> list[str]:
        args = ["--exclude-newer", self.date]
        for name, date in sorted(self.later.items()):
            args += ["--exclude-newer-package", f"{name}={date}"]
        return args


def uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if not found:
        raise HarnessError("uv is missing: install requirements-dev.txt (python3 scripts/dev.py test does)")
    return found


def airflow_venv(repo: Path, extra: tuple[str, ...] = (), resolve_as_of: ResolveAsOf | None = None) -> Path:
    """A venv with what the rendered Dockerfile installs (plus `extra`), cached by its pins.

    With `resolve_as_of`, uv resolves it as of that date; the resolved set is written to
    pip-freeze.txt in the venv (its path is printed)."""
    args = dockerfile_pip_args(repo)
    requirements = (repo / "requirements.txt").read_text()
    key_parts: list[Any] = [
        sys.version_info[:2], [a for a in args if a != str(repo / "requirements.txt")], requirements, extra
    ]
    if resolve_as_of is not None:
        key_parts.append(resolve_as_of.uv_args())
    key_source = json.dumps(key_parts)
    key = hashlib.sha256(key_source.encode()).hexdigest()[:16]
    path = CACHE / "venvs" / key
    freeze = path / "pip-freeze.txt"
    if (path / ".complete").exists():
        if freeze.exists():
            print(f"e2e: venv {path}, resolved set in {freeze}", file=sys.stderr)
        return path
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    venv.EnvBuilder(with_pip=True).create(path)
    python = str(path / "bin" / "python")
    if resolve_as_of is None:
        install = [python, "-m", "pip", "--disable-pip-version-check", "-q", "install"]
    else:
        install = [uv(), "pip", "install", "--quiet", "--python", python, *resolve_as_of.uv_args()]
    started = time.monotonic()
    result = subprocess.run([*install, *args, *extra], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise HarnessError(f"{' '.join(install[:3])} install {' '.join(args)} failed:\n{result.stderr[-4000:]}")
    if resolve_as_of is not None:
        frozen = subprocess.run([uv(), "pip", "freeze", "--python", python], capture_output=True, text=True,
                                check=True)
        freeze.write_text(frozen.stdout)
        print(f"e2e: venv {path} resolved as of {resolve_as_of.date} in {time.monotonic() - started:.0f} s; "
              f"resolved set in {freeze}", file=sys.stderr)
    (path / ".complete").write_text(key_source)
    return path


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
        # Task processes run in sessions of their own: end any left in our group.
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


def _as_postgres(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: run its tools as the postgres user.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL server on a free loopback port."""
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
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        run([str(pg_bin / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "pg.log"), "-o", options, "start"])
        try:
            run([str(pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "airflow"],
                as_postgres=False)
            yield Postgres(root, port, pg_bin)
        finally:
            subprocess.run(_as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                           check=False, capture_output=True)
    finally:
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

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/edge_worker/v1/rpcapi"

    @property
    def dags(self) -> Path:
        return self.home / "dags"

    def configure(self, central_env: dict[str, str], bundle: str = "dags-folder") -> None:
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
        if self.airflow_major == 3 and bundle != "dags-folder":
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
            timeout=timeout, check=False,
        )
        if result.returncode != 0:
            raise HarnessError(f"airflow {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}")
        return result.stdout

    def migrate(self) -> None:
        """Create the metadata database; teams can be added after this, before start()."""
        self.dags.mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate")

    def start(self) -> None:
        """Serialize the DAGs once, then start the servers (so no CLI races the DAG processor)."""
        self.airflow("dags", "reserialize")
        bin_airflow = str(self.venv / "bin" / "airflow")
        if self.airflow_major == 2:
            server = [bin_airflow, "webserver", "--port", str(self.port), "--hostname", "127.0.0.1"]
            self.procs.append(start("central-webserver", server, self.env, self.logs))
            self.procs.append(start("central-scheduler", [bin_airflow, "scheduler"], self.env, self.logs))
        else:
            server = [bin_airflow, "api-server", "--port", str(self.port), "--host", "127.0.0.1"]
            self.procs.append(start("central-api-server", server, self.env, self.logs))
            self.procs.append(start("central-scheduler", [bin_airflow, "scheduler"], self.env, self.logs))
            self.procs.append(start("central-dag-processor", [bin_airflow, "dag-processor"], self.env, self.logs))
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

    def add_team(self, repo: Path) -> None:
        """The team's DAG files into the central DAG folder, and its pool (between migrate and start)."""
        shutil.copytree(repo / "dags", self.dags, dirs_exist_ok=True)
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


def pids_with_env(marker: str) -> list[int]:
    """Processes whose environment holds `marker` (KEY=VALUE)."""
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


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, by parent links in /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, level = [], children.get(pid, [])
    while level:
        found += level
        level = [child for p in level for child in children.get(p, [])]
    return found


def all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").glob("[0-9]*")]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _proc_kib_field_mib(pid: int, file: str, key: str) -> float:
    """A "Key: N kB" line of /proc/PID/FILE, in MiB (0 once the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/{file}").read_text()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pss_mib(pid: int) -> float:
    """Proportional set size of one process, in MiB: shared pages split among their users."""
    return _proc_kib_field_mib(pid, "smaps_rollup", "Pss")


def rss_mib(pid: int) -> float:
    """Resident memory of one process, in MiB (0 once it is gone)."""
    return _proc_kib_field_mib(pid, "status", "VmRSS")
