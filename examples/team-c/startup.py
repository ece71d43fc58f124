"""Start-up steps of the Edge worker container (stdlib only; one Python start).

    python3 startup.py prepare PREFIX RPCAPI_URL SECONDS [EXECUTION_API_URL]
        Print "<airflow major> <worker name>" once GET <api base>/health answers 200
        and, on Airflow 3, GET <execution api>/health too (EXECUTION_API_URL, or what edge3
        derives from RPCAPI_URL), waiting at most SECONDS in all (exit 1 with one line on
        stderr naming the URL that did not answer).
        The name is PREFIX-<10 hex>, unique to this instance: the suffix is derived
        from the Cloud Run instance id (metadata server), random where there is none.
        The name is the key of the central worker table, so two live instances must
        never share it.

    python3 startup.py end-tasks AFTER_SECONDS ENTRYPOINT_PID WORKER_PID [SPARED_PID...]
        After AFTER_SECONDS (SIGTERM meanwhile: nothing done), SIGKILL the task processes
        below the entrypoint: every descendant of ENTRYPOINT_PID but the worker, its direct
        children (the task supervisors, which then report their task failed) while it
        lives, the SPARED_PIDs and this command; return once they are gone (at most
        ENDED_WAIT_SECONDS), so nothing of a task outlives the entrypoint. A task whose
        supervisor died is re-parented to the entrypoint (a child subreaper), so it is
        found too.

    python3 startup.py stop-worker GRACE_SECONDS DEADLINE_SECONDS ENTRYPOINT_PID WORKER_PID [SPARED_PID...]
        Run from SIGTERM on: end-tasks after GRACE_SECONDS; then, if the worker has not exited
        DEADLINE_SECONDS after the start, SIGKILL it, so that the entrypoint ends before
        Cloud Run's SIGKILL. A worker retrying a call to a central site it cannot reach
        (edge3: up to 10 attempts, 1 to 90 s apart) acts on SIGTERM only once the call
        returns.

    python3 startup.py keep-logs FOLDER KEEP_MIB SECONDS [UPLOAD_TO]
        Keep the task log files under FOLDER ([logging] base_log_folder, an in-memory volume
        on Cloud Run) at KEEP_MIB or less (0: no bound): every SECONDS, when they hold more,
        delete them oldest first (by last write) until they fit, sparing every file a process
        has open (a running task's) and every file written in the last minute (edge3 pushes a
        task's last lines to the central site just after it ends); then remove emptied folders.
        With UPLOAD_TO (gs://BUCKET/FOLDER), every few seconds each finished log file (no
        process holds it, unchanged for UPLOAD_SETTLE_SECONDS) is uploaded once to
        UPLOAD_TO/<its path under FOLDER>, Airflow's own layout, as the instance's service
        account (its token from the metadata server); a failed upload is retried with backoff
        and its file is not deleted until it is uploaded. On SIGTERM: an upload under way
        finishes, then one last upload pass of every file no process holds, then exit. Runs
        until then.

    python3 startup.py fence RPCAPI_URL SECONDS ENTRYPOINT_PID WORKER_PID [SPARED_PID...]
        Airflow 2 only: the central site gives up on a task it has not heard from for
        [scheduler] scheduler_zombie_task_threshold (300 s) and runs it again, while an
        Airflow 2 task on a cut-off worker runs on. Every few seconds ask the Edge API's
        /health; when it has not answered for SECONDS, stop the running tasks (SIGTERM, then
        SIGKILL a few seconds later; the worker and its task supervisors stay), so a task is
        never running here when its retry starts elsewhere. Said once per outage. Runs
        until SIGTERM.

    python3 startup.py subreaper PROGRAM [ARGS...]
        Make this process a child subreaper (prctl PR_SET_CHILD_SUBREAPER, kept across
        exec), then exec PROGRAM ARGS (a full path) with EDGE_SUBREAPER=1 in its environment.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from stat import S_ISREG

METADATA_ID_URL = "http://metadata.google.internal/computeMetadata/v1/instance/id"


# urllib, hashlib and secrets are imported where they are used: keep-logs runs for the
# container's life and stays small (about 11 MiB instead of 20 MiB resident).

# A log file is created a moment before its task opens it: one that no process holds and that
# has not changed for this long is finished.
UPLOAD_SETTLE_SECONDS = 5.0
UPLOAD_CHECK_SECONDS = 5.0
UPLOAD_BACKOFF_MAX_SECONDS = 300.0
FENCE_CHECK_SECONDS = 5.0
FENCE_GRACE_SECONDS = 3.0  # a stopped Airflow 2 task runs its on_kill and finally blocks
ENDED_WAIT_SECONDS = 2.0  # a killed process frees its memory a moment after the signal, longer under load


def instance_id(url: str, timeout: float = 1.0) -> str | None:
    """The Cloud Run instance id, or None outside Google Cloud."""
    import urllib.request

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
    import hashlib
    import secrets

    found = instance_id(os.environ.get("EDGE_METADATA_URL", METADATA_ID_URL))
    suffix = hashlib.sha256(found.encode()).hexdigest()[:10] if found else secrets.token_hex(5)
    return f"{prefix}-{suffix}"


def health_url(rpcapi_url: str) -> str:
    return rpcapi_url.removesuffix("/rpcapi") + "/health"


def execution_api_url(rpcapi_url: str, configured: str) -> str:
    """[core] execution_api_server_url, or what edge3 derives from [edge] api_url when it is unset."""
    return configured or rpcapi_url.replace("edge_worker/v1/rpcapi", "execution")


def wait_for(what: str, url: str, deadline: float, seconds: float) -> bool:
    """Poll GET url until it answers 200 or the deadline passes (one try at least)."""
    import urllib.error
    import urllib.request

    last_error = "no answer"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - URL validated at render time
                if response.status == 200:
                    print(f"startup: {what} is up at {url}", file=sys.stderr)
                    return True
                last_error = f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            last_error = f"HTTP {error.code}"
        except (OSError, ValueError) as error:
            last_error = str(getattr(error, "reason", error))
        if time.monotonic() >= deadline:
            print(f"startup: {what} not reachable at {url} after {seconds:g} s ({last_error})", file=sys.stderr)
            return False
        time.sleep(1)


def wait_for_api(rpcapi_url: str, seconds: float, execution_url: str | None = None) -> bool:
    deadline = time.monotonic() + seconds
    if not wait_for("Edge API", health_url(rpcapi_url), deadline, seconds):
        return False
    if execution_url is None:
        return True
    return wait_for("Execution API", execution_url.rstrip("/") + "/health", deadline, seconds)


def children_of() -> dict[int, list[int]]:
    """parent pid -> child pids, for every process visible in /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name may hold spaces and parentheses: split after the last ')'.
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return children


def task_processes(entrypoint_pid: int, worker_pid: int, spared: set[int]) -> list[int]:
    """The entrypoint's descendants but the worker, its children while it lives, the spared and us."""
    children = children_of()
    keep = {entrypoint_pid, worker_pid, os.getpid(), os.getppid(), *spared}
    if Path(f"/proc/{worker_pid}").exists():
        keep.update(children.get(worker_pid, []))
    found: list[int] = []
    level = children.get(entrypoint_pid, [])
    while level:
        found += [pid for pid in level if pid not in keep]
        level = [child for pid in level for child in children.get(pid, [])]
    return found


def answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=FENCE_CHECK_SECONDS) as response:  # noqa: S310 - validated URL
            return response.status == 200
    except OSError:
        return False


def fence(rpcapi_url: str, seconds: float, entrypoint_pid: int, worker_pid: int, spared: set[int]) -> None:
    """Stop the running tasks once the central site has not answered for `seconds` (see __doc__)."""
    url, heard, fenced = health_url(rpcapi_url), time.monotonic(), False
    while True:
        if answers(url):
            if fenced:
                print(f"startup: the central site answers again after {time.monotonic() - heard:.0f} s",
                      file=sys.stderr)
            heard, fenced = time.monotonic(), False
        elif not fenced and time.monotonic() - heard >= seconds:
            stopped = signal_all(task_processes(entrypoint_pid, worker_pid, spared), signal.SIGTERM)
            if stopped:
                time.sleep(FENCE_GRACE_SECONDS)
                signal_all(task_processes(entrypoint_pid, worker_pid, spared), signal.SIGKILL)
            print(f"startup: the central site has not answered for {seconds:.0f} s: stopped {stopped} running "
                  "task process(es), before it gives up on them and runs them again", file=sys.stderr)
            fenced = True
        time.sleep(FENCE_CHECK_SECONDS)


def signal_all(pids: list[int], sig: int) -> int:
    """Send `sig` to each of `pids`; how many were still there."""
    sent = 0
    for pid in pids:
        try:
            os.kill(pid, sig)
            sent += 1
        except ProcessLookupError:
            continue
    return sent


def gone(pid: int) -> bool:
    """The process has ended: not in /proc, or a zombie (its memory freed, its exit status unread)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def wait_gone(pids: list[int], timeout: float) -> bool:
    """Wait until every one of `pids` has ended, at most `timeout` s; whether they all did."""
    deadline = time.monotonic() + timeout
    while not all(gone(pid) for pid in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def end_tasks(entrypoint_pid: int, worker_pid: int, spared: set[int]) -> int:
    pids = task_processes(entrypoint_pid, worker_pid, spared)
    ended = signal_all(pids, signal.SIGKILL)
    if ended:
        wait_gone(pids, ENDED_WAIT_SECONDS)
        print(f"startup: ended {ended} task process(es) still running after SIGTERM", file=sys.stderr)
    return ended


def stop_worker(grace: float, deadline: float, entrypoint_pid: int, worker_pid: int, spared: set[int]) -> None:
    """End the tasks after `grace` s, then the worker if it is still there after `deadline` s."""
    began = time.monotonic()
    time.sleep(grace)
    end_tasks(entrypoint_pid, worker_pid, spared)
    time.sleep(max(0.0, deadline - (time.monotonic() - began)))
    if gone(worker_pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(worker_pid, signal.SIGKILL)
    print(f"startup: the worker had not exited {deadline:g} s after SIGTERM (a call to the central site may "
          "still be retrying): killed it, so that the container ends before Cloud Run's SIGKILL", file=sys.stderr)


def open_files() -> set[str]:
    """Every file some process visible in /proc has open (our own user's, in a container: all)."""
    held: set[str] = set()
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            held.add(os.readlink(fd))
        except OSError:
            continue
    return held


def log_files(folder: Path) -> list[tuple[float, int, str]]:
    """(last write, size, path) of each regular file under folder."""
    files: list[tuple[float, int, str]] = []
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if S_ISREG(info.st_mode):
                files.append((info.st_mtime, info.st_size, path))
    return files


def prune_logs(folder: Path, keep_bytes: int, min_age: float = 60.0,
               spared: frozenset[str] = frozenset()) -> tuple[list[Path], int]:
    """Delete the oldest log files under folder until they hold keep_bytes or less, sparing open,
    recently written and `spared` ones (not yet uploaded), then the emptied folders. (The files
    deleted, the bytes left.)"""
    files = log_files(folder)
    total = sum(size for _mtime, size, _path in files)
    if total <= keep_bytes:
        return [], total
    held, newest = open_files(), time.time() - min_age
    removed: list[Path] = []
    for mtime, size, path in sorted(files):
        if total <= keep_bytes or mtime > newest:
            break
        if path in held or path in spared:
            continue
        try:
            os.unlink(path)
        except OSError:
            continue
        total -= size
        removed.append(Path(path))
    # The folders these files left empty (dag_id=/run_id=/task_id=), up to the log folder.
    for parent in {path.parent for path in removed}:
        while parent != folder and folder in parent.parents:
            try:
                parent.rmdir()  # only an empty one
            except OSError:
                break
            parent = parent.parent
    return removed, total


class LogUploader:
    """Copies finished task log files to gs://BUCKET/PREFIX/<path under the log folder> with the
    Cloud Storage JSON API's simple upload, as the instance's service account: the standard
    library only, so the image needs no Google provider and a task process loads nothing more.

    Google's sources: the simple upload is POST /upload/storage/v1/b/BUCKET/o?uploadType=media
    &name=NAME (cloud.google.com/storage/docs/uploading-objects, JSON API); the token is GET
    /computeMetadata/v1/instance/service-accounts/default/token with Metadata-Flavor: Google
    (Cloud Run's "Fetching an access token" on the metadata server page)."""

    def __init__(self, folder: Path, destination: str) -> None:
        bucket, _, prefix = destination.removeprefix("gs://").partition("/")
        self.folder, self.bucket, self.prefix = folder, bucket, prefix.strip("/")
        # The variables google-auth and google-cloud-storage read too (emulators, tests).
        self.metadata = "http://" + os.environ.get("GCE_METADATA_HOST", "metadata.google.internal")
        self.storage = os.environ.get("STORAGE_EMULATOR_HOST", "https://storage.googleapis.com").rstrip("/")
        self.sent: dict[str, tuple[float, int]] = {}  # path -> (last write, size) as uploaded
        self.retry: dict[str, tuple[float, float]] = {}  # path -> (not before, backoff)
        self.token, self.token_until = "", 0.0
        self.failing = ""
        self.in_flight = False  # an upload under way: a SIGTERM waits for it (else it would be sent twice)

    def object_name(self, path: str) -> str:
        relative = os.path.relpath(path, self.folder)
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def unsent(self, files: list[tuple[float, int, str]]) -> list[tuple[float, int, str]]:
        return [(mtime, size, path) for mtime, size, path in files if self.sent.get(path) != (mtime, size)]

    def access_token(self) -> str:
        import json
        import urllib.request

        if time.monotonic() < self.token_until:
            return self.token
        request = urllib.request.Request(  # noqa: S310 - the metadata server's fixed http URL
            f"{self.metadata}/computeMetadata/v1/instance/service-accounts/default/token",
            headers={"Metadata-Flavor": "Google"})
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            answer = json.load(response)
        self.token = answer["access_token"]
        self.token_until = time.monotonic() + max(0, int(answer.get("expires_in", 0)) - 60)
        return self.token

    def upload(self, path: str) -> None:
        import urllib.parse
        import urllib.request

        query = urllib.parse.urlencode({"uploadType": "media", "name": self.object_name(path)})
        url = f"{self.storage}/upload/storage/v1/b/{urllib.parse.quote(self.bucket, safe='')}/o?{query}"
        with open(path, "rb") as body:
            size = os.fstat(body.fileno()).st_size
            request = urllib.request.Request(url, data=body, method="POST", headers={  # noqa: S310 - gs:// checked
                "Authorization": f"Bearer {self.access_token()}",
                "Content-Type": "text/plain; charset=utf-8", "Content-Length": str(size)})
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                response.read()

    def upload_finished(self, settle: float = UPLOAD_SETTLE_SECONDS, final: bool = False) -> None:
        """Upload each finished file not uploaded as it is now; retry failures with backoff."""
        import urllib.error

        now, wall = time.monotonic(), time.time()
        files = [f for f in self.unsent(log_files(self.folder)) if f[0] <= wall - settle
                 and (final or self.retry.get(f[2], (0.0, 0.0))[0] <= now)]
        if not files:
            return
        held = open_files()
        failed: list[str] = []
        for mtime, size, path in sorted(files):
            if path in held:
                continue
            self.in_flight = True
            try:
                self.upload(path)
            except urllib.error.HTTPError as error:
                if error.code == 401:
                    self.token_until = 0.0
                failed.append(f"HTTP {error.code} {error.reason}")
            except (OSError, ValueError, KeyError) as error:
                failed.append(str(getattr(error, "reason", error)))
            else:
                self.sent[path] = (mtime, size)
                self.retry.pop(path, None)
                continue
            finally:
                self.in_flight = False
            backoff = min(UPLOAD_BACKOFF_MAX_SECONDS, 2 * self.retry.get(path, (0.0, UPLOAD_CHECK_SECONDS / 2))[1])
            self.retry[path] = (now + backoff, backoff)
        if failed and failed[0] != self.failing:  # said once per cause, and again when it changes
            print(f"startup: could not upload {len(failed)} task log file(s) to gs://{self.bucket}/{self.prefix} "
                  f"({failed[0]}): kept here and retried", file=sys.stderr)
        elif not failed and self.failing:
            print(f"startup: task log uploads to gs://{self.bucket}/{self.prefix} work again", file=sys.stderr)
        self.failing = failed[0] if failed else ""

    def forget_gone(self) -> None:
        for path in [p for p in self.sent if not os.path.exists(p)]:
            del self.sent[path]


class Stopping(Exception):  # noqa: N818 - a signal, not an error
    pass


def keep_logs(folder: Path, keep_mib: int, seconds: float, upload_to: str = "") -> None:
    """Prune (keep_mib > 0) and upload (upload_to) the task log folder until SIGTERM."""
    keep, over = keep_mib * 1024 * 1024, False
    uploader = LogUploader(folder, upload_to) if upload_to else None

    stop_after_upload = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stop_after_upload
        if uploader and uploader.in_flight:  # cut, it would be sent again by the last pass
            stop_after_upload = True
            return
        raise Stopping

    signal.signal(signal.SIGTERM, stop)
    next_prune = 0.0
    try:
        while True:
            if uploader:
                uploader.upload_finished()
                if stop_after_upload:
                    raise Stopping
            if keep and time.monotonic() >= next_prune:
                unsent = frozenset(p for _m, _s, p in uploader.unsent(log_files(folder))) if uploader else frozenset()
                removed, left = prune_logs(folder, keep, spared=unsent)
                if removed:
                    print(f"startup: deleted {len(removed)} task log file(s), oldest first: {folder} holds "
                          f"{left / 1048576:.1f} MiB (bound {keep_mib} MiB)", file=sys.stderr)
                    if uploader:
                        uploader.forget_gone()
                if left > keep and not over:  # said once, until it fits again
                    print(f"startup: {folder} holds {left / 1048576:.1f} MiB, over its {keep_mib} MiB bound, in the "
                          "files of running tasks, of tasks that ended in the last minute"
                          f"{' or not uploaded yet' if uploader else ''}", file=sys.stderr)
                over = left > keep
                next_prune = time.monotonic() + seconds
            time.sleep(min(seconds, UPLOAD_CHECK_SECONDS) if uploader else seconds)
    except Stopping:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the last pass
        if uploader:
            uploader.upload_finished(settle=0.0, final=True)


def subreaper(argv: list[str]) -> None:
    """Become a child subreaper, then exec argv (never returns)."""
    import ctypes

    pr_set_child_subreaper = 36  # <linux/prctl.h>
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        failed = libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) != 0
        reason = f"errno {ctypes.get_errno()}"
    except (AttributeError, OSError) as error:  # no prctl: not Linux
        failed, reason = True, str(error)
    if failed:
        print(f"startup: cannot become a child subreaper ({reason}): task processes whose supervisor "
              "dies are re-parented to init", file=sys.stderr)
    os.environ["EDGE_SUBREAPER"] = "1"
    os.execv(argv[0], argv)  # noqa: S606 - bash running the entrypoint script again


def airflow_major() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("apache-airflow").split(".")[0]
    except importlib.metadata.PackageNotFoundError:
        print(f"startup: apache-airflow is not installed for {sys.executable}", file=sys.stderr)
        raise SystemExit(1) from None


def main(argv: list[str]) -> int:
    if len(argv) in (4, 5) and argv[0] == "prepare":
        major, name = airflow_major(), worker_name(argv[1])
        execution_url = execution_api_url(argv[2], argv[4] if len(argv) == 5 else "") if major != "2" else None
        if not wait_for_api(argv[2], float(argv[3]), execution_url):
            return 1
        print(major, name)
        return 0
    if len(argv) >= 4 and argv[0] == "end-tasks":
        time.sleep(float(argv[1]))
        end_tasks(int(argv[2]), int(argv[3]), {int(pid) for pid in argv[4:]})
        return 0
    if len(argv) >= 5 and argv[0] == "stop-worker":
        stop_worker(float(argv[1]), float(argv[2]), int(argv[3]), int(argv[4]), {int(pid) for pid in argv[5:]})
        return 0
    if len(argv) in (4, 5) and argv[0] == "keep-logs":
        keep_logs(Path(argv[1]), int(argv[2]), float(argv[3]), argv[4] if len(argv) == 5 else "")
        return 0
    if len(argv) >= 5 and argv[0] == "fence":
        fence(argv[1], float(argv[2]), int(argv[3]), int(argv[4]), {int(pid) for pid in argv[5:]})
        return 0
    if len(argv) >= 2 and argv[0] == "subreaper":
        subreaper(argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
