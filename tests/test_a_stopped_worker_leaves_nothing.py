"""A worker stopped by Cloud Run leaves no task process behind: the entrypoint's end-tasks step
returns only once the task processes it killed are gone, so nothing of them outlives it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.harness import wait_until
from support.procs import descendants, ended
from support.templates import ROOT

STARTUP = ROOT / "template" / "startup.py"
# A task holding 1 GiB: freeing it after SIGKILL takes the kernel a while (tens of ms, longer
# under load): the window in which a killed process is still there, not yet a zombie. (Its
# environment, which the e2e stops look for, empties sooner: too small a window to test here.)
BIG_TASK = "b = b'x' * (1 << 30); open(__import__('sys').argv[1], 'w').close(); __import__('time').sleep(600)"


def test_end_tasks_returns_once_the_killed_tasks_are_gone(tmp_path: Path) -> None:
    ready = [tmp_path / "task-1", tmp_path / "task-2"]
    script = " ".join(f"{sys.executable} -c \"{BIG_TASK}\" {path} &" for path in ready) + " wait"
    entrypoint = subprocess.Popen(["bash", "-c", script], start_new_session=True)
    try:
        wait_until("the tasks to hold their memory", lambda: all(path.exists() for path in ready), timeout=60)
        tasks = descendants(entrypoint.pid)
        assert len(tasks) == 2

        # No worker any more (PID 0): every process below the entrypoint is a task left over.
        subprocess.run([sys.executable, "-S", str(STARTUP), "end-tasks", "0", str(entrypoint.pid), "0"],
                       check=True, timeout=30)  # fmt: skip

        assert [pid for pid in tasks if not ended(pid)] == []
    finally:
        entrypoint.kill()
        entrypoint.wait()

