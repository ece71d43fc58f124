"""Load generator for bench/fleet.py: N idle Edge workers simulated in one process.

Run with the Python of a venv that holds the central site's Airflow and edge3 (the worker's
packages), and the environment the rendered worker gets (worker.env.yaml, plus the shared
secret under the name entrypoint.sh exports it as): every request goes through edge3's own
client (`airflow.providers.edge3.cli.api_client`), signed as the real worker signs it.

    python fleet_load.py CONFIG.json

CONFIG.json (no secret in it): {"steps": [25, 50, ...], "poll": s, "heartbeat": s, "window": s,
"queues": [...], "concurrency": n, "prefix": "...", "server_pid": pid, "p99_limit": s, "max_seconds": s}

Each simulated worker does what edge3's worker loop does when it has nothing to run:
register (state starting), heartbeat (idle), then each job_poll_interval one jobs_fetch,
and a heartbeat (worker_set_state) once heartbeat_interval has passed. The fleet grows
step by step; each step measures one window and prints one JSON line:
requests started in the window, their latency, the central server's CPU time over the window
(the process tree under `server_pid`, from /proc), and the errors. It stops after the first
step whose p99 passes `p99_limit` or that has errors, or after `max_seconds`.

Requests are not retried (AIRFLOW__EDGE__API_RETRIES=1, set by bench/fleet.py): a failure is
counted, not hidden behind edge3's back-off.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import statistics
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from airflow import __version__ as airflow_version
from airflow.providers.edge3 import __version__ as edge_version
from airflow.providers.edge3.cli import api_client
from airflow.providers.edge3.models.edge_worker import EdgeWorkerState
from support import procs  # tests/support, on PYTHONPATH (bench/fleet.py)

TICKS = os.sysconf("SC_CLK_TCK")
MAJOR = int(airflow_version.split(".")[0])


# --------------------------------------------------------------------------- /proc


def tree_cpu_seconds(root: int) -> float:
    """CPU time of the process tree under `root`: each live process's own time plus that of the
    children it has reaped (so a gunicorn worker that was replaced still counts)."""
    children = procs.children()
    total, level = 0, [root]
    while level:
        for pid in level:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # utime, stime, cutime, cstime: fields 14-17 of stat, 11-14 after the ")".
            total += sum(int(value) for value in fields[11:15])
        level = [child for pid in level for child in children.get(pid, [])]
    return total / TICKS


# --------------------------------------------------------------------------- measurements


class Recorder:
    def __init__(self) -> None:
        self.records: list[tuple[float, float, str, str | None]] = []  # start, latency, kind, error
        self.lock = threading.Lock()

    def add(self, start: float, latency: float, kind: str, error: BaseException | None) -> None:
        text = None if error is None else f"{type(error).__name__}: {str(error)[:160]}"
        with self.lock:
            self.records.append((start, latency, kind, text))

    def window(self, begin: float, end: float) -> list[tuple[float, float, str, str | None]]:
        with self.lock:
            return [r for r in self.records if begin <= r[0] < end]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def sysinfo(concurrency: int, started: datetime) -> dict:
    """What edge3's worker sends about itself when idle (its _get_sysinfo)."""
    info: dict = {
        "airflow_version": airflow_version,
        "edge_provider_version": edge_version,
        "concurrency": concurrency,
        "free_concurrency": concurrency,
    }
    if MAJOR >= 3:
        info.update({"status": logging.INFO, "python_version": sys.version, "worker_start_time": started})
    return info


# --------------------------------------------------------------------------- Airflow 2: threads, blocking client


def worker_thread(name: str, cfg: dict, rec: Recorder, stop: threading.Event, delay: float,
                  registered: list) -> None:
    poll, hb, queues, concurrency = cfg["poll"], cfg["heartbeat"], cfg["queues"], cfg["concurrency"]
    info = sysinfo(concurrency, datetime.now())
    if stop.wait(delay):
        return

    def call(kind: str, func, *args) -> bool:
        start = time.monotonic()
        try:
            func(*args)
        except Exception as error:  # noqa: BLE001 - every failure is a counted error
            rec.add(start, time.monotonic() - start, kind, error)
            return False
        rec.add(start, time.monotonic() - start, kind, None)
        return True

    if not call("register", api_client.worker_register, name, EdgeWorkerState.STARTING, queues, info):
        return
    call("heartbeat", api_client.worker_set_state, name, EdgeWorkerState.IDLE, 0, queues, info)
    registered.append(name)
    # A fleet whose workers started at different times: heartbeats spread over the interval.
    last_hb = time.monotonic() - random.uniform(0, hb)  # noqa: S311 - not security
    while not stop.is_set():
        # edge3 1.x's loop: fetch, heartbeat when due, then sleep job_poll_interval.
        call("poll", api_client.jobs_fetch, name, queues, concurrency)
        if time.monotonic() - last_hb > hb:
            call("heartbeat", api_client.worker_set_state, name, EdgeWorkerState.IDLE, 0, queues, info)
            last_hb = time.monotonic()
        stop.wait(poll)


class ThreadFleet:
    def __init__(self, cfg: dict, rec: Recorder) -> None:
        self.cfg, self.rec = cfg, rec
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.registered: list[str] = []

    def grow(self, count: int, spread: float) -> None:
        for _ in range(count - len(self.threads)):
            name = f"{self.cfg['prefix']}-{len(self.threads):05d}"
            delay = random.uniform(0, spread)  # noqa: S311 - not security
            thread = threading.Thread(target=worker_thread, daemon=True,
                                      args=(name, self.cfg, self.rec, self.stop, delay, self.registered))
            thread.start()
            self.threads.append(thread)

    def wait_registered(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.registered) < count and time.monotonic() < deadline:
            time.sleep(0.2)

    def close(self) -> None:
        self.stop.set()


# --------------------------------------------------------------------------- Airflow 3: asyncio, async client


class AsyncFleet:
    """edge3 2.x+'s loop: heartbeat when due, start a fetch without waiting for it, sleep job_poll_interval."""

    def __init__(self, cfg: dict, rec: Recorder, loop: asyncio.AbstractEventLoop) -> None:
        self.cfg, self.rec, self.loop = cfg, rec, loop
        self.tasks: list[asyncio.Task] = []
        self.background: set[asyncio.Task] = set()
        self.registered: list[str] = []
        self.stopping = False

    async def call(self, kind: str, coro_func, *args, **kwargs) -> bool:
        start = time.monotonic()
        try:
            await coro_func(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - every failure is a counted error
            self.rec.add(start, time.monotonic() - start, kind, error)
            return False
        self.rec.add(start, time.monotonic() - start, kind, None)
        return True

    async def worker(self, name: str, delay: float) -> None:
        poll, hb, queues, concurrency = self.cfg["poll"], self.cfg["heartbeat"], self.cfg["queues"], \
            self.cfg["concurrency"]
        info = sysinfo(concurrency, datetime.now())
        await asyncio.sleep(delay)
        if not await self.call("register", api_client.worker_register, name, EdgeWorkerState.STARTING, queues,
                               info, None):
            return
        await self.call("heartbeat", api_client.worker_set_state, name, EdgeWorkerState.IDLE, 0, queues, info,
                        None, team_name=None)
        self.registered.append(name)
        last_hb = time.monotonic() - random.uniform(0, hb)  # noqa: S311 - not security
        while not self.stopping:
            if time.monotonic() - last_hb > hb:
                await self.call("heartbeat", api_client.worker_set_state, name, EdgeWorkerState.IDLE, 0, queues,
                                info, None, team_name=None)
                last_hb = time.monotonic()
            task = asyncio.create_task(self.call("poll", api_client.jobs_fetch, name, queues, concurrency, None,
                                                 supports_task_instance_uuid=True))
            self.background.add(task)
            task.add_done_callback(self.background.discard)
            await asyncio.sleep(poll)

    def grow(self, count: int, spread: float) -> None:
        for _ in range(count - len(self.tasks)):
            name = f"{self.cfg['prefix']}-{len(self.tasks):05d}"
            delay = random.uniform(0, spread)  # noqa: S311 - not security
            self.tasks.append(self.loop.create_task(self.worker(name, delay)))

    async def wait_registered(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.registered) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.2)

    def close(self) -> None:
        self.stopping = True
        for task in self.tasks:
            task.cancel()


# --------------------------------------------------------------------------- steps


def summarize(cfg: dict, n: int, registered: int, rec: Recorder, begin: float, end: float,
              cpu: float, own_cpu: float) -> dict:
    records = rec.window(begin, end)
    window = end - begin
    polls = [r for r in records if r[2] == "poll"]
    ok_polls = [r[1] for r in polls if r[3] is None]
    ok_all = [r[1] for r in records if r[3] is None and r[2] in ("poll", "heartbeat")]
    errors = [r[3] for r in records if r[3] is not None]
    beats = [r for r in records if r[2] == "heartbeat" and r[3] is None]
    return {
        "n": n,
        "registered": registered,
        "window_s": round(window, 2),
        "offered_polls_per_s": round(n / cfg["poll"], 1),
        "polls_per_s": round(len(ok_polls) / window, 1),
        "heartbeats_per_s": round(len(beats) / window, 2),
        "p50_ms": round(percentile(ok_all, 50) * 1000, 1),
        "p99_ms": round(percentile(ok_all, 99) * 1000, 1),
        "poll_p99_ms": round(percentile(ok_polls, 99) * 1000, 1),
        "cpu_ms_per_poll": round(cpu * 1000 / len(ok_polls), 2) if ok_polls else None,
        "central_cpu_pct": round(cpu / window * 100, 1),
        "generator_cpu_pct": round(own_cpu / window * 100, 1),
        "errors": len(errors),
        "error_sample": errors[0] if errors else None,
    }


def emit(result: dict) -> None:
    print(json.dumps(result), flush=True)


def broke(cfg: dict, result: dict) -> bool:
    return result["errors"] > 0 or result["p99_ms"] > cfg["p99_limit"] * 1000


def spread_for(cfg: dict, new: int) -> float:
    # New workers start over one poll interval, and at most ~100 registrations a second.
    return max(cfg["poll"], new / 100)


def run_threads(cfg: dict) -> None:
    threading.stack_size(512 * 1024)  # hundreds of threads
    rec = Recorder()
    fleet = ThreadFleet(cfg, rec)
    deadline = time.monotonic() + cfg["max_seconds"]
    try:
        for n in cfg["steps"]:
            spread = spread_for(cfg, n - len(fleet.threads))
            fleet.grow(n, spread)
            fleet.wait_registered(n, spread + 60)
            time.sleep(cfg["poll"] + 2)
            begin, cpu0, own0 = time.monotonic(), tree_cpu_seconds(cfg["server_pid"]), time.process_time()
            time.sleep(cfg["window"])
            end, cpu1, own1 = time.monotonic(), tree_cpu_seconds(cfg["server_pid"]), time.process_time()
            time.sleep(min(cfg["poll"], 2))  # let the window's last requests finish
            result = summarize(cfg, n, len(fleet.registered), rec, begin, end, cpu1 - cpu0, own1 - own0)
            emit(result)
            if broke(cfg, result) or time.monotonic() > deadline:
                break
    finally:
        fleet.close()


async def run_async(cfg: dict) -> None:
    rec = Recorder()
    fleet = AsyncFleet(cfg, rec, asyncio.get_running_loop())
    deadline = time.monotonic() + cfg["max_seconds"]
    try:
        for n in cfg["steps"]:
            spread = spread_for(cfg, n - len(fleet.tasks))
            fleet.grow(n, spread)
            await fleet.wait_registered(n, spread + 60)
            await asyncio.sleep(cfg["poll"] + 2)
            begin, cpu0, own0 = time.monotonic(), tree_cpu_seconds(cfg["server_pid"]), time.process_time()
            await asyncio.sleep(cfg["window"])
            end, cpu1, own1 = time.monotonic(), tree_cpu_seconds(cfg["server_pid"]), time.process_time()
            await asyncio.sleep(min(cfg["poll"], 2))
            result = summarize(cfg, n, len(fleet.registered), rec, begin, end, cpu1 - cpu0, own1 - own0)
            emit(result)
            if broke(cfg, result) or time.monotonic() > deadline:
                break
    finally:
        fleet.close()
        await asyncio.gather(*fleet.tasks, *fleet.background, return_exceptions=True)


def main() -> None:
    cfg = json.loads(Path(sys.argv[1]).read_text())
    logging.basicConfig(level=logging.ERROR)
    if MAJOR >= 3:
        asyncio.run(run_async(cfg))
    else:
        run_threads(cfg)


if __name__ == "__main__":
    main()
