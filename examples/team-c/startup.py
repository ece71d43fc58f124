"""Start-up steps of the Edge worker container (stdlib only; one Python start).

    python3 startup.py prepare PREFIX RPCAPI_URL SECONDS
        Print "<airflow major> <worker name>" once GET <api base>/health answers 200,
        waiting at most SECONDS (exit 1 with one line on stderr otherwise).
        The name is PREFIX-<10 hex>, unique to this instance: the suffix is derived
        from the Cloud Run instance id (metadata server), random where there is none.
        The name is the key of the central worker table, so two live instances must
        never share it.

    python3 startup.py end-tasks WORKER_PID
        SIGKILL the task processes under the worker (its grandchildren and below),
        so that their supervisors report them failed before Cloud Run's SIGKILL.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

METADATA_ID_URL = "http://metadata.google.internal/computeMetadata/v1/instance/id"


def instance_id(url: str, timeout: float = 1.0) -> str | None:
    """The Cloud Run instance id, or None outside Google Cloud."""
    if not url:
        return None
    request = urllib.request.Request(url, headers={"Metadata-Flavor": "Google"})  # noqa: S310 - http metadata URL
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - fixed http URL
            value = response.read().decode().strip()
    except (OSError, ValueError):
        return None
    return value or None


def worker_name(prefix: str) -> str:
    found = instance_id(os.environ.get("EDGE_METADATA_URL", METADATA_ID_URL))
    suffix = hashlib.sha256(found.encode()).hexdigest()[:10] if found else secrets.token_hex(5)
    return f"{prefix}-{suffix}"


def health_url(rpcapi_url: str) -> str:
    return rpcapi_url.removesuffix("/rpcapi") + "/health"


def wait_for_api(rpcapi_url: str, seconds: float) -> bool:
    url = health_url(rpcapi_url)
    deadline = time.monotonic() + seconds
    last_error = "no answer"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - URL validated at render time
                if response.status == 200:
                    print(f"startup: Edge API is up at {url}", file=sys.stderr)
                    return True
                last_error = f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            last_error = f"HTTP {error.code}"
        except (OSError, ValueError) as error:
            last_error = str(getattr(error, "reason", error))
        if time.monotonic() >= deadline:
            print(
                f"startup: Edge API not reachable at {url} after {seconds:g} s ({last_error})",
                file=sys.stderr,
            )
            return False
        time.sleep(1)


def parent_pids() -> dict[int, int]:
    """pid -> parent pid, for every process visible in /proc."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name may hold spaces and parentheses: split after the last ')'.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    return parents


def task_processes(worker_pid: int) -> list[int]:
    """The worker's descendants below its children: the task processes, not their supervisors."""
    parents = parent_pids()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found: list[int] = []
    level = children.get(worker_pid, [])
    depth = 1
    while level:
        if depth >= 2:
            found += level
        level = [child for pid in level for child in children.get(pid, [])]
        depth += 1
    return found


def end_tasks(worker_pid: int) -> int:
    ended = 0
    for pid in task_processes(worker_pid):
        try:
            os.kill(pid, signal.SIGKILL)
            ended += 1
        except ProcessLookupError:
            continue
    if ended:
        print(f"startup: ended {ended} task process(es) still running after SIGTERM", file=sys.stderr)
    return ended


def airflow_major() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("apache-airflow").split(".")[0]
    except importlib.metadata.PackageNotFoundError:
        print(f"startup: apache-airflow is not installed for {sys.executable}", file=sys.stderr)
        raise SystemExit(1) from None


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "prepare":
        major, name = airflow_major(), worker_name(argv[1])
        if not wait_for_api(argv[2], float(argv[3])):
            return 1
        print(major, name)
        return 0
    if len(argv) == 2 and argv[0] == "end-tasks":
        end_tasks(int(argv[1]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
