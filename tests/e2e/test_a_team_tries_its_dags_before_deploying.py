"""A data team tries its DAGs on its own worker before the first deploy: `tools/run_locally.py`
starts a throwaway central site of the site's Airflow and edge3, the team's pool and DAG files,
and the worker as its image runs it, all from the rendered repo, with nothing of Google Cloud.

On Airflow 2 (the default site: a default render, its README's command as written) and
Airflow 3 (a DAG bundle named otherwise, DAG files from a bucket folder on the real site):
the example DAG runs on the team's worker and the command exits 0; a failing task makes it
exit 1 and print the task's log; Ctrl-C leaves no process and no port behind. The container
path, which needs a Docker engine this machine lacks, is checked by the real docker client and
run against a recording stand-in for it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml
from support import harness
from support.sites import MAIN_TRACKS, TRACKS
from support.templates import copier_cli, git, leftovers, release_after, render, sh_blocks, team_repo_at, tool

FAILING_DAG = '''"""A DAG whose task fails on the worker, as a task missing a system library does."""

from __future__ import annotations

from team_c import team_default_args

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.decorators import task

with DAG("team_c_fails", default_args=team_default_args(retries=0), schedule=None, catchup=False):

    @task
    def load() -> None:
        raise RuntimeError("libgdal.so.32: cannot open shared object file")

    load()
'''


# The last commit of main whose team repos had no local run.
BEFORE_THE_LOCAL_RUN = "eb797ce"


def team_repo(track: str, root: Path) -> Path:
    """Team c of the track's site: on airflow2 the default render (the default site), on airflow3
    the same with that track's site facts."""
    if track == "airflow2":
        return render(root / "team-c", {})
    facts = TRACKS[track]
    return render(root / "team-c", {"airflow_version": facts.airflow_version, "dag_bundle_name": facts.bundle,
                                    **dict(facts.answers)})


def run_locally(repo: Path, *args: str, timeout: float = 1500) -> subprocess.CompletedProcess[str]:
    """The tool as a team runs it: the machine's python3, from the repo's folder."""
    return subprocess.run(["python3", "tools/run_locally.py", *args], cwd=repo, capture_output=True, text=True,
                          timeout=timeout, check=False, env=without_dev_tools())


def without_dev_tools() -> dict[str, str]:
    """This machine's environment without the dev venv on PATH (a team's laptop has no uv there)."""
    bin_dir = str(Path(tool("ruff")).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != bin_dir)
    return {**os.environ, "PATH": path}


def nothing_left(folder: Path, ports: list[int]) -> None:
    """No process of the run (each has AIRFLOW_HOME under its folder) and no port it listened on."""
    left = harness.pids_with_env(f"AIRFLOW_HOME={folder.resolve()}/")
    assert not left, [harness.cmdline(pid) for pid in left]
    for port in ports:
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"


def postgres_port(output: str) -> list[int]:
    match = re.search(r"PostgreSQL \(.*\) on 127\.0\.0\.1:(\d+)", output)
    return [int(match.group(1))] if match else []


@pytest.mark.parametrize("track", MAIN_TRACKS)
def test_the_example_dag_runs_on_the_team_s_worker_and_the_command_exits_0(track: str, tmp_path: Path) -> None:
    repo = team_repo(track, tmp_path)
    readme = (repo / "README.md").read_text()
    written = "python3 tools/run_locally.py --trigger team_c_example"
    assert [line for block in sh_blocks(readme) for line in block if "run_locally" in line] == [
        written, "python3 tools/run_locally.py"]
    port = [] if track == "airflow2" else ["--port", str(harness.free_port())]  # airflow2: as written (8080)
    result = run_locally(repo, *shlex.split(written)[2:], *port)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    worker = re.search(r"worker (team-c-[0-9a-f]{10}) registered", output)
    assert worker, output[-3000:]
    assert "hello_from_edge: success" in output
    # Its log is the team's worker's own, and says where it ran.
    assert f"--- hello_from_edge, try 1: {repo.resolve()}/.local-run/worker/airflow-home/logs/" in output
    assert f"Hello from the team-c Edge worker on {socket.gethostname()}" in output  # the task's own log
    assert re.search(r"team_c_example local__\S+: success in \d+ s", output)
    if track == "airflow2":
        assert "PostgreSQL" in output
    else:
        assert "PostgreSQL" not in output  # Airflow 3 keeps its database in SQLite
    nothing_left(repo / ".local-run", [8080 if not port else int(port[1]), *postgres_port(output)])


@pytest.mark.parametrize("track", MAIN_TRACKS)
def test_a_failing_task_makes_it_exit_1_and_print_the_task_s_log(track: str, tmp_path: Path) -> None:
    repo = team_repo(track, tmp_path)
    (repo / "dags" / "team_c" / "failing_dag.py").write_text(FAILING_DAG)
    port = harness.free_port()
    result = run_locally(repo, "--trigger", "team_c_fails", "--port", str(port))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-6000:]
    assert "load: failed" in output
    # From the task's log, its traceback as the UI shows it (Airflow 3 writes JSON records).
    assert "RuntimeError: libgdal.so.32: cannot open shared object file" in output
    assert re.search(r'File "\S+/dags/team_c/failing_dag.py", line \d+, in load', output), output[-4000:]
    assert re.search(r"team_c_fails local__\S+: failed in \d+ s", output)
    nothing_left(repo / ".local-run", [port, *postgres_port(output)])


def test_an_unknown_dag_is_named_with_those_there_are(tmp_path: Path) -> None:
    repo = team_repo("airflow3", tmp_path)
    result = run_locally(repo, "--trigger", "team_c_exmaple", "--port", str(harness.free_port()))
    assert result.returncode == 1
    assert "no DAG 'team_c_exmaple' at the central site; it has: team_c_example" in result.stdout


@pytest.mark.parametrize("track", MAIN_TRACKS)
def test_ctrl_c_stops_everything_it_started(track: str, tmp_path: Path) -> None:
    repo = team_repo(track, tmp_path)
    port = harness.free_port()
    log = tmp_path / "run_locally.out"
    with log.open("w") as out:
        # Its own process group, as a shell's foreground job: Ctrl-C is SIGINT to that group.
        tool_run = subprocess.Popen(["python3", "tools/run_locally.py", "--port", str(port)], cwd=repo, stdout=out,
                                    stderr=subprocess.STDOUT, env=without_dev_tools(), start_new_session=True)
    try:
        harness.wait_until("the UI's line", lambda: "the central site's UI:" in log.read_text()
                           or tool_run.poll() is not None, timeout=900)
        assert tool_run.poll() is None, log.read_text()[-4000:]
        assert f"http://127.0.0.1:{port} (no login" in log.read_text()
        page = "/home" if track == "airflow2" else "/api/v2/dags"  # a page for an admin only
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{page}", timeout=30) as response:
            assert response.status == 200
            assert "team_c_example" in response.read().decode()
        secret = made_secret(repo / ".local-run")
        os.killpg(tool_run.pid, signal.SIGINT)
        assert tool_run.wait(120) == 130
    finally:
        if tool_run.poll() is None:
            os.killpg(tool_run.pid, signal.SIGKILL)
    output = log.read_text()
    assert "stopping the worker (SIGTERM), then the central site" in output
    assert "everything it started has stopped" in output
    nothing_left(repo / ".local-run", [port, *postgres_port(output)])
    # The secret it made for the run is in no file it wrote and not in its output.
    assert secret not in output
    written = [path for path in (repo / ".local-run").rglob("*") if path.is_file()]
    assert written
    assert not [path for path in written if secret.encode() in path.read_bytes()]


def made_secret(folder: Path) -> str:
    """The shared secret the run made, read from its worker's environment."""
    for pid in harness.pids_with_env(f"AIRFLOW_HOME={folder.resolve()}/worker/"):
        with contextlib.suppress(OSError):
            for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                if entry.startswith(b"EDGE_SHARED_SECRET="):
                    return entry.split(b"=", 1)[1].decode()
    raise AssertionError("no worker process holds EDGE_SHARED_SECRET")


@pytest.mark.parametrize("track", MAIN_TRACKS)
def test_the_container_commands_are_what_the_docker_client_accepts(track: str, tmp_path: Path) -> None:
    """No Docker engine runs here: the docker client parses each command's flags before it asks
    the engine, so each must fail only for want of the engine. And the script holds what the
    venv run holds: the repo's image, every worker setting, the site's release, no secret value.
    Without --dry-run and without an engine, it says so and runs nothing."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.fail("docker is missing: this machine kind has its client (with no engine)")
    repo = team_repo(track, tmp_path)
    result = run_locally(repo, "--containers", "--dry-run", "--port", "18080", timeout=60)
    assert result.returncode == 0, result.stderr
    script = result.stdout
    (tmp_path / "local.sh").write_text(script)
    lint = subprocess.run([tool("shellcheck"), str(tmp_path / "local.sh")], capture_output=True, text=True,
                          check=False)
    assert lint.returncode == 0, lint.stdout
    commands = [shlex.split(line) for line in script.splitlines() if line.startswith("docker ")]
    assert [c[:2] for c in commands][:2] == [["docker", "build"], ["docker", "network"]]
    for command in commands:
        checked = subprocess.run([docker, *command[1:]], capture_output=True, text=True, check=False, timeout=60,
                                 env={**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})
        assert "Cannot connect to the Docker daemon" in checked.stderr, (command, checked.stderr)
    worker_run = next(c for c in commands if c[:2] == ["docker", "run"] and "team-c-worker:local" in c)
    passed = dict(flag.split("=", 1) for flag in worker_run[worker_run.index("--network"):] if "=" in flag)
    worker_env = yaml.safe_load((repo / "worker.env.yaml").read_text())
    assert set(worker_env) <= set(passed)
    assert passed["AIRFLOW__EDGE__API_URL"] == "http://team-c-central:8080/edge_worker/v1/rpcapi"
    version = TRACKS[track].airflow_version if track != "airflow2" else "2.10.5"
    assert f"apache/airflow:{version}-python3.12 " in script + " "
    assert "EDGE_SHARED_SECRET=" not in " ".join(" ".join(c) for c in commands)  # passed by name only
    no_engine = subprocess.run(["python3", "tools/run_locally.py", "--containers"], cwd=repo, capture_output=True,
                               text=True, check=False, timeout=60,
                               env={**without_dev_tools(), "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})
    assert no_engine.returncode == 2
    assert "no Docker engine answers here" in no_engine.stdout
    assert "--containers --dry-run prints the commands" in no_engine.stdout


DOCKER_STAND_IN = """#!/usr/bin/env bash
# The docker client where an engine answers, recording each call: no engine runs here.
printf '%s\\n' "$*" >>"$DOCKER_CALLS"
printf '%s\\n' "${EDGE_SHARED_SECRET:-}" >>"$DOCKER_CALLS.secret"
if [[ "$1 ${2:-}" == "logs --follow" ]]; then exec sleep 600; fi
"""


def test_where_docker_runs_ctrl_c_removes_every_container_it_started(tmp_path: Path) -> None:
    """With an engine (a recording stand-in for the docker client: no engine runs here), the
    script runs; Ctrl-C while it follows the worker's log removes every container and the network."""
    repo = team_repo("airflow2", tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(DOCKER_STAND_IN)
    (bin_dir / "docker").chmod(0o755)
    calls = tmp_path / "docker-calls"
    env = {**without_dev_tools(), "DOCKER_CALLS": str(calls)}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    tool_run = subprocess.Popen(["python3", "tools/run_locally.py", "--containers"], cwd=repo, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        harness.wait_until("the worker's log followed", lambda: calls.exists() and "logs --follow" in
                           calls.read_text() or tool_run.poll() is not None, timeout=60)
        os.killpg(tool_run.pid, signal.SIGINT)
        output = tool_run.communicate(timeout=60)[0]
    finally:
        if tool_run.poll() is None:
            os.killpg(tool_run.pid, signal.SIGKILL)
    assert tool_run.returncode == -signal.SIGINT, output  # bash ends itself by the interrupt, after its trap
    lines = calls.read_text().splitlines()
    assert lines[0] == "info"
    assert lines[1] == f"build --tag team-c-worker:local {repo.resolve()}"
    started = [words[words.index("--name") + 1] for words in map(str.split, lines) if "--name" in words]
    assert started == ["team-c-db", "team-c-central", "team-c-scheduler", "team-c-worker"]
    follow = lines.index("logs --follow team-c-worker")
    assert lines[follow + 1:] == [f"rm --force {' '.join(reversed(started))}", "network rm team-c-local"]
    secrets_seen = set(Path(f"{calls}.secret").read_text().splitlines()[1:])  # after `docker info`
    assert len(secrets_seen) == 1
    secret = secrets_seen.pop()
    assert len(secret) >= 40  # made by the script, in every docker call's environment
    assert secret not in calls.read_text()  # never in a command line
    assert secret not in output


def test_a_team_repo_of_the_release_before_takes_the_tool_with_copier_update_and_runs_its_dag(tmp_path: Path) -> None:
    template = release_after(tmp_path / "template", BEFORE_THE_LOCAL_RUN)
    facts = TRACKS["airflow3"]
    repo = team_repo_at(template, tmp_path / "team-c", "v1.0.0",
                        {"airflow_version": facts.airflow_version, "dag_bundle_name": facts.bundle})
    assert not (repo / "tools" / "run_locally.py").exists()
    (repo / "dags" / "team_c" / "failing_dag.py").write_text(FAILING_DAG)  # the team's own DAG
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Team c's DAG")

    update = copier_cli(repo, "update", "--skip-answered", "--defaults", "--vcs-ref", "v2.0.0")

    assert update.returncode == 0, update.stderr
    assert leftovers(repo) == []
    result = run_locally(repo, "--trigger", "team_c_fails", "--port", str(harness.free_port()))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-6000:]
    assert "load: failed" in output
    # Its folder is ignored: the update's files are all git sees.
    status = git(repo, "status", "--porcelain", "--ignored")
    assert "!! .local-run/" in status.splitlines()
    assert "tools/run_locally.py" in status
