"""Benchmarks: each figure against a floor measured in the same run, interleaved.

    python3 scripts/dev.py bench [--runs N] [--skip-suite]
        [--only render,update,health,registration,memory,shutdown,image,dagcheck,local,suite,fleet,pickup,soak,
               elastic,scaler]

Prints a table (min / median / max over N runs, the ratio of medians to the floor and the
target) and writes BENCHMARKS.md. Nothing here asserts: targets are checked by reading it.
fleet and pickup (bench/fleet.py) measure the central site under many idle workers and the
time a worker takes to pick a task up; elastic (tests/support/elastic.py) runs the
elastic-worker scenario once and reports scale-from-zero, the burst and the cost; scaler
(bench/scaler.py) weighs the platform kit's one scaler for 30 teams against 30 processes. A run that
measures only some benchmarks keeps the other rows and sections of BENCHMARKS.md as they were (merged by name).
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import fleet
import image
import scaler
import soak
from support import elastic, harness
from support.cloud_storage import cloud_storage
from support.sites import TRACKS, Track, running_central_site
from support.templates import ROOT, git, load_answers, release_v2, render, snapshot_template, template_questions

COPIER = [sys.executable, "-m", "copier"]


@dataclass
class Row:
    name: str
    unit: str
    values: list[float]
    floor_name: str = ""
    floor: list[float] = field(default_factory=list)
    target: str = ""
    limit: float | None = None
    on: str = "ratio"  # what the limit applies to: the ratio to the floor, or the median "value"

    @property
    def ratio(self) -> float | None:
        if not self.floor:
            return None
        return statistics.median(self.values) / statistics.median(self.floor)

    def verdict(self) -> str:
        if self.limit is None:
            return ""
        value = self.ratio if self.floor and self.on == "ratio" else statistics.median(self.values)
        return "met" if value is not None and value <= self.limit else "MISSED"


def fmt(values: list[float]) -> str:
    if not values:
        return "-"
    def one(value: float) -> str:
        return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"

    return f"{one(min(values))} / {one(statistics.median(values))} / {one(max(values))}"


def interleave(runs: int, measure: Callable[[], float], floor: Callable[[], float]) -> tuple[list[float], list[float]]:
    values, floors = [], []
    for _ in range(runs):
        values.append(measure())
        floors.append(floor())
    return values, floors


def timed(argv: list[str], cwd: Path | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started


# --------------------------------------------------------------------------- the worker image


def bench_image(work: Path, runs: int, template: Path) -> list[Row]:
    """Per major: installed size of the slim set against the regular one; install time, uv against pip."""
    rows = []
    for track in (TRACKS["airflow2"], TRACKS["airflow3"]):
        repo = render(work / "image" / track.name, {"team_name": "team-c", "airflow_version": track.airflow_version,
                                                    "python_deps": ["pandas==2.2.3", "requests>=2.32"]},
                      src=template, vcs_ref="v1.0.0")
        edge3 = load_answers(repo)["edge_provider_version"]
        slim, regular = image.sizes(work / "image", repo, track.airflow_version, edge3)
        rows.append(Row(f"image ({track.name}): installed, slim set (airflow, edge3, pandas, requests)", "MiB",
                        [slim], "regular image's providers, same set", [regular]))
        packages = image.worker_set(repo, track.airflow_version, edge3)
        uv_times, pip_times = interleave(
            max(1, min(runs, 2)),
            lambda packages=packages: image.install_seconds(work / "image", "uv", packages),
            lambda packages=packages: image.install_seconds(work / "image", "pip", packages),
        )
        rows.append(Row(f"install ({track.name}): uv, worker set, clean venv, cold cache", "s", uv_times,
                        "pip", pip_times))
        # remote_logging: what its render adds to the image, against the Google provider it added
        # before the entrypoint uploaded the logs itself.
        logs_repo = render(work / "image" / f"{track.name}-remote-logs",
                           {"team_name": "team-c", "airflow_version": track.airflow_version, "remote_logging": True,
                            "python_deps": ["pandas==2.2.3", "requests>=2.32"]}, src=template, vcs_ref="v1.0.0")
        now = image.added_mib(work / "image", repo, track.airflow_version, edge3, image.dockerfile_extras(logs_repo))
        before = image.added_mib(work / "image", repo, track.airflow_version, edge3,
                                 ["apache-airflow-providers-google"])
        rows.append(Row(f"image ({track.name}): what remote_logging adds, slim set", "MiB", [now],
                        "the Google provider (before)", [before], "<= 5 MiB", 5.0, on="value"))
    return rows


def bench_dag_check(work: Path, runs: int, template: Path) -> Row:
    """The team README's DAG import check on a fresh machine (no cache at all): its venv built with uv
    (on PATH, as the dev toolchain's), against the same check forced to pip (how it built it before)."""
    repo = render(work / "dag-check" / "team-c", {"team_name": "team-c"}, src=template, vcs_ref="v1.0.0")
    counter = iter(range(10_000))

    def cold(installer: str) -> float:
        fresh = work / "dag-check" / f"cold-{next(counter)}"
        env = {**os.environ, "EDGE_TEMPLATE_CACHE": str(fresh / "edge"), "UV_CACHE_DIR": str(fresh / "uv"),
               "PIP_CACHE_DIR": str(fresh / "pip"), "EDGE_TEMPLATE_INSTALLER": installer,
               "PATH": f"{Path(harness.uv()).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        started = time.perf_counter()
        subprocess.run(["python3", "tools/check_dag_imports.py"], cwd=repo, env=env, check=True, capture_output=True)
        elapsed = time.perf_counter() - started
        shutil.rmtree(fresh, ignore_errors=True)
        return elapsed

    uv_times, pip_times = interleave(max(1, min(runs, 2)), lambda: cold("uv"), lambda: cold("pip"))
    return Row("dag check: first run, fresh machine (venv built with uv)", "s", uv_times,
               "the same built with pip (before)", pip_times, "<= 0.4x", 0.4)


def bench_local_run(work: Path, runs: int, template: Path) -> Row:
    """The team README's first command on a default render, `python3 tools/run_locally.py --trigger
    team_c_example`, from its start to the example task's success line: warm (the venv cached), against
    cold (a fresh machine: no uv on PATH, empty caches, so uv is fetched and the venv built)."""
    repo = render(work / "local-run" / "team-c", {}, src=template, vcs_ref="v1.0.0")
    dev_bin = str(Path(harness.uv()).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != dev_bin)
    counter = iter(range(10_000))

    def first_task_done(env: dict[str, str]) -> float:
        started = time.perf_counter()
        with subprocess.Popen(["python3", "tools/run_locally.py", "--trigger", "team_c_example", "--port",
                               str(harness.free_port())], cwd=repo, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) as run:
            done = None
            for line in run.stdout:  # type: ignore[union-attr]
                if done is None and "hello_from_edge: success" in line:
                    done = time.perf_counter() - started
            if run.wait() != 0 or done is None:
                raise RuntimeError(f"the local run failed ({run.returncode})")
        return done

    def cold() -> float:
        fresh = work / "local-run" / f"cold-{next(counter)}"
        try:
            return first_task_done({**os.environ, "PATH": path, "EDGE_TEMPLATE_CACHE": str(fresh / "edge"),
                                    "UV_CACHE_DIR": str(fresh / "uv"), "PIP_CACHE_DIR": str(fresh / "pip")})
        finally:
            shutil.rmtree(fresh, ignore_errors=True)

    def warm() -> float:
        return first_task_done({**os.environ, "PATH": path})

    warm()  # the cache filled once, outside the figures
    warm_times, cold_times = interleave(max(1, min(runs, 2)), warm, cold)
    return Row("local run: command -> example task done, venv cached (warm)", "s", warm_times,
               "first run, fresh machine (cold: uv fetched, venv built)", cold_times)


# --------------------------------------------------------------------------- render and update


def one_file_template(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "copier.yml").write_text("_subdirectory: template\nname:\n  type: str\n  default: demo\n")
    (root / "template").mkdir()
    (root / "template" / "README.md.jinja").write_text("# {{ name }}\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "v1.0.0")
    git(root, "tag", "v1.0.0")
    return root


def bench_render(work: Path, runs: int, template: Path) -> Row:
    small = one_file_template(work / "one-file")
    counter = iter(range(10_000))

    def ours() -> float:
        return timed([*COPIER, "copy", "--defaults", "--quiet", "--vcs-ref", "v1.0.0", str(template),
                      str(work / f"ours-{next(counter)}" / "team-c")])

    def floor() -> float:
        return timed([*COPIER, "copy", "--defaults", "--quiet", str(small), str(work / f"small-{next(counter)}")])

    values, floors = interleave(runs, ours, floor)
    # No target since issue 15: the row stays to show any change; none may slow it by more than 10%.
    return Row("render: copier copy --defaults", "s", values, "one-file template", floors)


def bench_update(work: Path, runs: int, template: Path) -> Row:
    counter = iter(range(10_000))

    def update() -> float:
        repo = work / f"update-{next(counter)}" / "team-c"
        render(repo, {"team_name": "team-c"}, src=template, vcs_ref="v1.0.0")
        git(repo, "init", "-q")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "render")
        return timed([*COPIER, "update", "--skip-answered", "--defaults", "--quiet", "--vcs-ref", "v2.0.0"], repo)

    def copy() -> float:
        return timed([*COPIER, "copy", "--defaults", "--quiet", "--vcs-ref", "v2.0.0", str(template),
                      str(work / f"copy-{next(counter)}" / "team-c")])

    values, floors = interleave(runs, update, copy)
    return Row("update: copier update, one release", "s", values, "copier copy", floors, "<= 3x", 3.0)


# --------------------------------------------------------------------------- health


def first_200(url: str, proc: subprocess.Popen, timeout: float = 30) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter()
        except (urllib.error.URLError, OSError):
            time.sleep(0.005)
    raise RuntimeError(f"no 200 from {url}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def bench_health(work: Path, runs: int, repo: Path, venv: Path) -> tuple[Row, float]:
    env_base = dict(harness.worker_env_file(repo))
    health_rss: list[float] = []

    def entrypoint() -> float:
        port = harness.free_port()
        home = Path(tempfile.mkdtemp(dir=work))
        env = {**env_base, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "AIRFLOW_HOME": str(home),
               "HOME": str(home), "PORT": str(port), "EDGE_SHARED_SECRET": "bench-only-" + secrets.token_hex(8),
               # No central site here: the health server must answer while the worker waits for one.
               "AIRFLOW__EDGE__API_URL": f"http://127.0.0.1:{harness.free_port()}/edge_worker/v1/rpcapi",
               "EDGE_API_WAIT_SECONDS": "30"}
        started = time.perf_counter()
        proc = subprocess.Popen([str(repo / "entrypoint.sh")], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            took = first_200(f"http://127.0.0.1:{port}/health", proc) - started
            server = [p for p in harness.descendants(proc.pid) if "health_server.py" in harness.cmdline(p)]
            health_rss.extend(harness.rss_mib(p) for p in server)
            return took
        finally:
            stop(proc)

    def floor() -> float:
        port = harness.free_port()
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                 "--directory", str(work)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            return first_200(f"http://127.0.0.1:{port}/", proc) - started
        finally:
            stop(proc)

    values, floors = interleave(runs, entrypoint, floor)
    row = Row("health: entrypoint start -> /health 200", "s", values, "python3 -m http.server", floors, "<= 1.5x",
              1.5)
    return row, statistics.median(health_rss)


# --------------------------------------------------------------------------- registration and memory

SLOW_DAG = '''"""Bench DAG: tasks that import the team's packages and stay running."""

import time

from {module} import team_default_args

try:
    from airflow.sdk import DAG, task
except ImportError:
    from airflow import DAG
    from airflow.decorators import task

with DAG(dag_id="{module}_bench", default_args=team_default_args(retries=0), schedule=None, catchup=False):

    @task
    def hold(index: int) -> None:
        import pandas  # noqa: F401 - the team's dependency, loaded as a real task would

        time.sleep(60)

    hold.expand(index=list(range({count})))
'''


def bench_worker(work: Path, runs: int, track: Track, template: Path) -> tuple[Row, dict[str, float]]:
    port = harness.free_port()
    answers = {
        "team_name": "team-c", "airflow_version": track.airflow_version, "deployment_target": "service",
        "edge_api_url": f"http://127.0.0.1:{port}/edge_worker/v1/rpcapi", "job_poll_interval": 1,
        "heartbeat_interval": 5, "dags_source": "image", "python_deps": ["pandas==2.2.3"],
    }
    if track.airflow_version.startswith("3."):  # the worker serves the central site's bundle by name
        answers["dag_bundle_name"] = track.bundle
    repo = render(work / track.name / "team-c", answers, src=template, vcs_ref="v1.0.0")
    concurrency = int(harness.worker_env_file(repo)["EDGE_WORKER_CONCURRENCY"])
    (repo / "dags" / "team_c" / "bench_dag.py").write_text(SLOW_DAG.format(module="team_c", count=concurrency))
    secret = secrets.token_urlsafe(64)
    memory: dict[str, float] = {}
    with running_central_site(track, work / track.name, port, secret, [repo], work / track.name / "logs") as central:
        venv = central.venv
        counter = iter(range(10_000))

        def registered(name: str, proc: harness.Proc, started: float) -> float:
            while True:
                if central.worker_rows().get(name) in ("idle", "running"):
                    return time.perf_counter() - started
                if not proc.alive():
                    raise RuntimeError(proc.text()[-2000:])
                time.sleep(0.05)

        def entrypoint() -> float:
            index = next(counter)
            name = f"team-c-bench-{index}"
            started = time.perf_counter()
            worker = harness.start_worker(repo, venv, secret, work / track.name / "logs", f"ep-{index}",
                                          overrides={"EDGE_WORKER_NAME": name})
            try:
                return registered(name, worker.proc, started)
            finally:
                worker.stop(signal.SIGINT)

        def bare() -> float:
            index = next(counter)
            name = f"team-c-bare-{index}"
            home = work / track.name / "logs" / f"bare-{index}"
            home.mkdir(parents=True)
            env = {**harness.worker_env_file(repo), "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
                   "HOME": str(home), "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(repo / "dags"),
                   central_secret_var(track): secret}
            started = time.perf_counter()
            proc = harness.start(f"bare-{index}", [str(venv / "bin" / "airflow"), "edge", "worker", "-q",
                                                   env["EDGE_WORKER_QUEUES"], "-H", name, "-c", str(concurrency)],
                                 env, work / track.name / "logs")
            try:
                return registered(name, proc, started)
            finally:
                proc.stop(signal.SIGINT)
                harness.kill_strays(f"AIRFLOW_HOME={home}")

        values, floors = interleave(runs, entrypoint, bare)
        memory = measure_memory(central, repo, venv, secret, work / track.name / "logs", concurrency)
        # remote_logging: the entrypoint's log keeper uploads each finished log; no task process
        # loads anything for it (before, the Google provider's handler loaded in each).
        logs_answers = {**answers, "remote_logging": True}
        logs_repo = render(work / track.name / "team-c-remote-logs", logs_answers, src=template, vcs_ref="v1.0.0")
        (logs_repo / "dags" / "team_c" / "bench_dag.py").write_text(
            SLOW_DAG.format(module="team_c", count=concurrency))
        folder = load_answers(logs_repo)["remote_log_folder"]
        with cloud_storage(folder.split("/")[2], folder.split("/", 3)[3] + "/", work / track.name / "logs") as gcs:
            remote = measure_memory(central, logs_repo, harness.airflow_venv(logs_repo), secret,
                                    work / track.name / "logs", concurrency, overrides=gcs.worker_env())
        memory.update({f"{key}, remote_logging": value for key, value in remote.items()})
    row = Row(f"registration ({track.name}): entrypoint start -> registered", "s", values,
              "bare airflow edge worker", floors, "<= 1.2x", 1.2)
    return row, memory




# The most job_poll_interval the template's rule allows, per Airflow major (includes/rules.jinja).
SLOWEST_POLL = {"2": 2, "3": 5}


def bench_shutdown(work: Path, runs: int, track: Track, template: Path) -> Row:
    """SIGTERM with every slot busy -> the entrypoint's exit, at the slowest job_poll_interval the
    template allows (a draining worker sleeps it between checks), against the 10 s Cloud Run gives
    before SIGKILL. A figure here, not an assertion in the tests: a loaded CI machine stretches it."""
    port = harness.free_port()
    slowest_poll = SLOWEST_POLL[track.airflow_version.split(".")[0]]
    answers = {
        "team_name": "team-c", "airflow_version": track.airflow_version, "deployment_target": "service",
        "edge_api_url": f"http://127.0.0.1:{port}/edge_worker/v1/rpcapi", "dags_source": "image",
        "python_deps": ["pandas==2.2.3"], "job_poll_interval": slowest_poll,
    }
    if track.airflow_version.startswith("3."):
        answers["dag_bundle_name"] = track.bundle
    home = work / f"shutdown-{track.name}"
    repo = render(home / "team-c", answers, src=template, vcs_ref="v1.0.0")
    concurrency = int(harness.worker_env_file(repo)["EDGE_WORKER_CONCURRENCY"])
    (repo / "dags" / "team_c" / "bench_dag.py").write_text(SLOW_DAG.format(module="team_c", count=concurrency))
    secret = secrets.token_urlsafe(64)
    values = []
    with running_central_site(track, home, port, secret, [repo], home / "logs") as central:
        for index in range(runs):
            worker = harness.start_worker(repo, central.venv, secret, home / "logs", f"shutdown-{index}")
            try:
                name = harness.wait_until("the worker's name", worker.name, timeout=30)
                harness.wait_until("registration", lambda n=name: central.worker_rows().get(n) == "idle", timeout=60)
                run_id = central.trigger("team_c_bench")
                harness.wait_until(
                    f"{concurrency} bench tasks running",
                    lambda r=run_id: [row[0] for row in central.query(
                        f"SELECT state FROM task_instance WHERE run_id = '{r}'")].count("running") == concurrency,
                    timeout=180,
                )
                started = time.perf_counter()
                worker.proc.popen.send_signal(signal.SIGTERM)
                worker.proc.popen.wait(60)
                values.append(time.perf_counter() - started)
            finally:
                central.airflow("dags", "pause", "team_c_bench")
                worker.stop(signal.SIGTERM)
            # The cut tasks hold the team's pool until the central site marks them failed.
            harness.wait_until(
                "the cut tasks to leave 'running'",
                lambda r=run_id: "running" not in [row[0] for row in central.query(
                    f"SELECT state FROM task_instance WHERE run_id = '{r}'")],
                timeout=300,
            )
    return Row(f"shutdown ({track.name}): SIGTERM with {concurrency} tasks running, poll {slowest_poll} s -> exit",
               "s", values,
               "Cloud Run's SIGKILL", [10.0] * len(values), "< 1x", 0.99)


def central_secret_var(track: Track) -> str:
    return "AIRFLOW__CORE__INTERNAL_API_SECRET_KEY" if track.airflow_version.startswith("2.") else \
        "AIRFLOW__API_AUTH__JWT_SECRET"


def tree_rss(pid: int) -> float:
    return sum(harness.rss_mib(p) for p in [pid, *harness.descendants(pid)] if harness.alive(p))


def tree_pss(pid: int) -> float:
    """What the container really holds: forked processes share pages that RSS counts twice."""
    return sum(harness.pss_mib(p) for p in [pid, *harness.descendants(pid)] if harness.alive(p))


def measure_memory(central, repo: Path, venv: Path, secret: str, logs: Path, concurrency: int,
                   overrides: dict[str, str] | None = None) -> dict[str, float]:
    worker = harness.start_worker(repo, venv, secret, logs, f"memory-{time.monotonic_ns()}", overrides=overrides)
    try:
        name = harness.wait_until("the memory worker's name", worker.name, timeout=30)
        harness.wait_until("registration", lambda: central.worker_rows().get(name) == "idle", timeout=60)
        time.sleep(3)
        worker_pid = worker.worker_pid()
        idle_worker = harness.rss_mib(worker_pid)
        idle_tree = tree_rss(worker.proc.pid)
        idle_pss = tree_pss(worker.proc.pid)
        run_id = central.trigger("team_c_bench")
        harness.wait_until(
            f"{concurrency} bench tasks running",
            lambda: len([r for r in central.query(
                f"SELECT state FROM task_instance WHERE run_id = '{run_id}'") if r[0] == "running"]) == concurrency,
            timeout=180,
        )
        time.sleep(8)  # let each task finish importing the team's packages
        busy_tree = tree_rss(worker.proc.pid)
        busy_pss = tree_pss(worker.proc.pid)
        return {
            "idle worker RSS (airflow edge worker)": idle_worker,
            "idle container RSS (entrypoint + worker + health server)": idle_tree,
            f"busy container RSS ({concurrency} tasks importing pandas)": busy_tree,
            "RSS per running task": (busy_tree - idle_tree) / concurrency,
            "idle container PSS": idle_pss,
            f"busy container PSS ({concurrency} tasks)": busy_pss,
            "PSS per running task": (busy_pss - idle_pss) / concurrency,
        }
    finally:
        central.airflow("dags", "pause", "team_c_bench")
        worker.stop(signal.SIGTERM)


# --------------------------------------------------------------------------- pickup (bench/fleet.py)


def pickup_rows(pickup: dict) -> list[Row]:
    """Queued -> picked up by the worker, against half the rendered job_poll_interval."""
    floor = [pickup["poll"] / 2]
    name = f"pickup ({pickup['track']}): queued -> running"
    return [
        Row(name, "s", pickup["values"], "poll/2", floor),
        Row(f"{name}, p95 of {len(pickup['values'])}", "s", [fleet.p95(pickup["values"])], "poll/2", floor),
    ]


def elastic_rows(work: Path, template: Path) -> list[Row]:
    """The elastic-worker scenario once (3.3.2), then its burst on one fixed instance."""
    run = elastic.run_scenario(work / "elastic", secrets.token_urlsafe(64), src=template, vcs_ref="v1.0.0",
                               fixed_floor=True)  # 3.3.2
    e, f = run.patches["team-e"], run.patches["team-f"]
    if e[-2:] != [elastic.SCALE_MAX, 0] or f != [elastic.F_MIN, elastic.F_MAX, elastic.F_MIN] or run.refused:
        raise harness.HarnessError(f"the scenario went otherwise: PATCHes {run.patches}, refused {run.refused}")
    name = "elastic (3.3.2)"
    burst = f"burst of {elastic.BURST} x {elastic.TASK_SECONDS} s tasks"
    return [
        Row(f"{name}: queued -> started from 0 instances (burst's first task)", "s",
            [run.first_from_zero], target="< task_queued_timeout (600 s)", limit=600),
        Row(f"{name}: {burst}, makespan at 0 -> {elastic.SCALE_MAX} instances", "s",
            [elastic.makespan(run.burst_rows)], "1 fixed instance", [elastic.makespan(run.fixed_rows)]),
        Row(f"{name}: instance-seconds over the scenario", "s", [run.instance_seconds],
            f"{elastic.SCALE_MAX} always-on", [elastic.SCALE_MAX * run.seconds]),
    ]


# --------------------------------------------------------------------------- test suite


def scaler_rows(work: Path, template: Path) -> list[Row]:
    """The one scaler for TEAMS idle elastic teams, against one process per team, over the same periods."""
    got = scaler.bench_scaler(work, template)
    teams, steps = scaler.TEAMS, scaler.STEPS
    many = f"{teams} single-team processes"
    name = f"scaler (3.3.2): one process for {teams} elastic teams"
    return [
        Row(f"{name}, PSS", "MiB", [got["one_pss"]], many, [got["many_pss"]], "<= 0.1x", 0.1),
        Row(f"{name}, RSS", "MiB", [got["one_rss"]], many, [got["many_rss"]]),
        Row(f"{name}, CPU per period (every team read)", "ms", [1000 * got["one_cpu"] / steps], many,
            [1000 * got["many_cpu"] / steps], "<= 0.5x", 0.5),
        Row(f"{name}, Cloud Run reads per period", "", [got["one_reads"] / steps], many, [got["many_reads"] / steps]),
    ]


def bench_suite() -> list[Row]:
    rows = []
    for label, args in (("fast tests (-m 'not e2e')", ["-m", "not e2e"]), ("whole suite", [])):
        started = time.perf_counter()
        # The README's command, as CI runs it (its pytest-xdist processes included).
        subprocess.run([sys.executable, str(ROOT / "scripts" / "dev.py"), "test", "-q", "-p", "no:cacheprovider",
                        *args], cwd=ROOT, check=False, capture_output=True)
        rows.append(Row(f"test suite: {label}", "s", [time.perf_counter() - started]))
    return rows


# --------------------------------------------------------------------------- report


def memory_defaults(by_track: dict[str, dict[str, float]], health_rss: float) -> list[str]:
    """Does the memory default the template renders hold the worker plus its tasks with 25 % headroom,
    on the line that needs the most?"""
    import jinja2

    questions = template_questions()  # copier.yml with its site profiles (!include)
    memory = questions["memory"]["default"]
    concurrency = questions["worker_concurrency"]["default"]
    # The template's own rule turns memory into MiB (written once, in includes/rules.jinja).
    # Copier renders it with the Ansible filters (regex_search): so does this.
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROOT), autoescape=False,  # noqa: S701 - no HTML
                             extensions=["jinja2_ansible_filters.AnsibleCoreFiltersExtension"])
    rules = env.get_template(
        "includes/rules.jinja")
    mib = int(rules.module.mib(memory))
    # RSS, the larger figure: it counts pages that forked task processes share, so it errs high.
    need, track = max((measured["idle container RSS (entrypoint + worker + health server)"]
                       + concurrency * measured["RSS per running task"], TRACKS[name].airflow_version)
                      for name, measured in by_track.items())
    headroom = mib / need - 1
    return [
        f"- default `memory: {memory}` with `worker_concurrency: {concurrency}`: needs {need:.0f} MiB by RSS "
        f"(idle container + {concurrency} tasks importing pandas, {track}), headroom {headroom:.0%} "
        f"({'met' if headroom >= 0.25 else 'MISSED'}: target >= 25%)",
        f"- health server RSS: {health_rss:.1f} MiB ({'met' if health_rss <= 15 else 'MISSED'}: target <= 15 MiB)",
    ]


def report(rows: list[Row], memory: dict[str, dict[str, float]], extra: list[str], runs: int,
           sections: list[tuple[str, list[str]]] | None = None) -> str:
    lines = [
        "| measurement | min / median / max | floor: min / median / max | ratio | target | |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else ""
        floor = f"{row.floor_name}: {fmt(row.floor)}" if row.floor else ""
        lines.append(f"| {row.name} | {fmt(row.values)} {row.unit} | {floor} | {ratio} | {row.target} | "
                     f"{row.verdict()} |")
    for track, figures in memory.items():
        lines += ["", f"### Memory ({track}), MiB", ""]
        lines.extend(f"- {key}: {value:.0f}" for key, value in figures.items())
    if extra:
        lines += ["", "### Memory defaults", ""]
        lines.extend(extra)
    for title, body in sections or []:
        lines += ["", title, "", *body]
    head = (f"{runs} runs each, interleaved with the floor (pickup: {fleet.PICKUP_TASKS} tasks; fleet: one window "
            f"per step); {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.")
    return head + "\n\n" + "\n".join(lines) + "\n"


BEGIN, END = "<!-- generated by bench/run.py: begin -->", "<!-- generated by bench/run.py: end -->"
READING = """
## Reading it

(Hand-edited: what the figures mean and what was done about them. `bench/run.py` rewrites
only the part between the generated markers above.)
"""


def parse_block(text: str) -> tuple[str, list[str], dict[str, list[str]]]:
    """A generated block: its head line, the main table's rows, and its `### ` sections by title."""
    lines = text.strip("\n").splitlines()
    head = lines[0] if lines else ""
    rows: list[str] = []
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines[1:]:
        if line.startswith("### "):
            current = sections.setdefault(line, [])
        elif current is not None:
            current.append(line)
        elif line.startswith("| ") and not line.startswith("| measurement |"):
            rows.append(line)
    return head, rows, {title: body for title, body in sections.items()}


def row_name(line: str) -> str:
    return line.split("|")[1].strip()


def merge_block(old: str, new: str) -> str:
    """The new block, plus the rows and sections of the old one that the new one did not measure."""
    old_head, old_rows, old_sections = parse_block(old)
    new_head, new_rows, new_sections = parse_block(new)
    fresh = {row_name(line): line for line in new_rows}
    rows = [fresh.pop(row_name(line), line) for line in old_rows] + list(fresh.values())
    sections = {title: new_sections.get(title, body) for title, body in old_sections.items()}
    sections.update(new_sections)
    kept = len(rows) > len(new_rows) or len(sections) > len(new_sections)
    head = new_head
    if kept:
        marker = " Rows and sections this run did not measure are kept from earlier runs (the oldest: "
        oldest = old_head.split(marker)[1].removesuffix(")") if marker in old_head else old_head
        head += f"{marker}{oldest})"
    lines = [head, "", *new.strip("\n").splitlines()[2:4], *rows]
    for title, body in sections.items():
        while body and not body[-1].strip():
            body = body[:-1]
        lines += ["", title, *body]
    return "\n".join(lines) + "\n"


def write_report(path: Path, text: str) -> None:
    """The figures between the markers, merged by row and section with those already there;
    whatever a person wrote around them stays as it is."""
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        text = merge_block(old[old.index(BEGIN) + len(BEGIN): old.index(END)], text)
        generated = f"{BEGIN}\n{text.rstrip()}\n{END}"
        new = old[: old.index(BEGIN)] + generated + old[old.index(END) + len(END):]
    else:
        generated = f"{BEGIN}\n{text.rstrip()}\n{END}"
        new = f"# Benchmarks\n\nWritten by `python3 scripts/dev.py bench` (bench/run.py).\n\n{generated}\n{READING}"
    path.write_text(new)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-suite", action="store_true", help="do not time the test suite")
    parser.add_argument("--only",
                        default="render,update,health,registration,memory,shutdown,image,dagcheck,local,suite,fleet,"
                                "pickup,soak,elastic,scaler")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--soak-sites", default="airflow2,airflow3", help="the tracks `soak` runs on")
    parser.add_argument("--fleet-sites", default=",".join(fleet.FLEET_TRACKS),
                        help="the central sites `fleet` loads (default: all of them)")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    if args.skip_suite:
        only.discard("suite")
    work = Path(tempfile.mkdtemp(prefix="edge-bench-"))
    rows: list[Row] = []
    memory: dict[str, dict[str, float]] = {}
    extra: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    failed: list[str] = []
    try:
        template = snapshot_template(work / "edge-template")
        release_v2(template)
        if "render" in only:
            rows.append(bench_render(work, args.runs, template))
        if "update" in only:
            rows.append(bench_update(work, args.runs, template))
        health_rss = None
        if "health" in only:
            repo = render(work / "health" / "team-c", {"team_name": "team-c", "deployment_target": "service"},
                          src=template, vcs_ref="v1.0.0")
            venv = harness.airflow_venv(repo, extra=("psycopg2-binary",))
            row, health_rss = bench_health(work, args.runs, repo, venv)
            rows.append(row)
        if only & {"registration", "memory"}:
            for track in (TRACKS["airflow2"], TRACKS["airflow3"]):
                row, memory[track.name] = bench_worker(work, args.runs, track, template)
                rows.append(row)
            if health_rss is not None:
                extra = memory_defaults(memory, health_rss)
        if "shutdown" in only:
            for track in (TRACKS["airflow2"], TRACKS["airflow3"]):
                rows.append(bench_shutdown(work, args.runs, track, template))
        if "image" in only:
            rows.extend(bench_image(work, args.runs, template))
        if "dagcheck" in only:
            rows.append(bench_dag_check(work, args.runs, template))
        if "local" in only:
            rows.append(bench_local_run(work, args.runs, template))
        # One site failing loses its figures only: the others are written.
        if "fleet" in only:
            for track in (fleet.FLEET_TRACKS[name] for name in args.fleet_sites.split(",")):
                try:
                    sections.append(fleet.fleet_section(fleet.bench_fleet(work, template, track)))
                except Exception as error:  # noqa: BLE001 - reported, the run goes on
                    failed.append(f"fleet ({track.name}): {error}")
        if "pickup" in only:
            for name in fleet.PICKUP_TRACKS:
                try:
                    rows.extend(pickup_rows(fleet.bench_pickup(work, template, fleet.FLEET_TRACKS[name])))
                except Exception as error:  # noqa: BLE001 - reported, the run goes on
                    failed.append(f"pickup ({name}): {error}")
        if "soak" in only:
            for name in args.soak_sites.split(","):
                try:
                    sections.append((f"### Soak ({name})", soak.bench_soak(work, template, TRACKS[name])))
                except Exception as error:  # noqa: BLE001 - reported, the run goes on
                    failed.append(f"soak ({name}): {error}")
        if "elastic" in only:
            try:
                rows.extend(elastic_rows(work, template))
            except Exception as error:  # noqa: BLE001 - reported, the run goes on
                failed.append(f"elastic: {error}")
        if "scaler" in only:
            try:
                rows.extend(scaler_rows(work, template))
            except Exception as error:  # noqa: BLE001 - reported, the run goes on
                failed.append(f"scaler: {error}")
        if "suite" in only:
            rows.extend(bench_suite())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report(rows, memory, extra, args.runs, sections)
    print(text)
    write_report(args.output, text)
    for failure in failed:
        print(f"bench: FAILED {failure}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
