"""DAG files the tests add to team repos, each written once."""

# Line 3 imports pandas: the team README quotes what the check prints for this file.
MODULE_LEVEL_PANDAS_DAG = '''"""Team c's daily report: pandas at module level, the way people often write it."""

import pandas as pd

from team_c import team_default_args

try:
    from airflow.sdk import DAG, task
except ImportError:
    from airflow import DAG
    from airflow.decorators import task

with DAG(dag_id="team_c_report", default_args=team_default_args(), schedule=None, catchup=False):

    @task
    def report() -> str:
        return pd.__version__

    report()
'''


# The safe way, as the team README shows it: module level holds only what the central site has.
SAFE_PANDAS_DAG = '''"""Team c's daily report, written so that both sides can load it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from team_c import team_default_args

try:
    from airflow.sdk import DAG, task
except ImportError:
    from airflow import DAG
    from airflow.decorators import task

if TYPE_CHECKING:
    import pandas as pd

with DAG(dag_id="team_c_report_safe", default_args=team_default_args(), schedule=None, catchup=False):

    @task
    def report() -> str:
        import pandas as pd

        frame: pd.DataFrame = pd.DataFrame({"rows": [1, 2, 3]})
        return f"pandas {pd.__version__} summed {frame['rows'].sum()}"

    report()
'''


# Team c's DAGs may hold this task, which runs long enough to be cut by a shutdown.
SLOW_DAG = '''"""A team DAG added by hand: one task that runs for a while."""

import time

from team_c import team_default_args

try:
    from airflow.sdk import DAG, task
except ImportError:
    from airflow import DAG
    from airflow.decorators import task

with DAG(dag_id="team_c_slow", default_args=team_default_args(), schedule=None, catchup=False):

    @task
    def sleep_a_while() -> None:
        time.sleep(120)

    sleep_a_while()
'''


# Team c's DAGs also hold this probe: a task that reports what task code on the worker can
# see. It writes names, hashes' matches and paths to EDGE_PROBE_OUT, never a value.
PROBE_DAG = '''"""A probe: what a task of team c can read on its worker (names and matches only, no values)."""

import hashlib
import json
import os

from team_c import team_default_args

try:
    from airflow.sdk import DAG, task
except ImportError:
    from airflow import DAG
    from airflow.decorators import task


def _matches(values, wanted):
    return sorted(name for name, value in values if hashlib.sha256(value.encode()).hexdigest() == wanted)


def _parent(pid):
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


with DAG(dag_id="team_c_probe", default_args=team_default_args(), schedule=None, catchup=False):

    @task
    def probe() -> None:
        from airflow.configuration import conf

        wanted = os.environ.get("EDGE_PROBE_SHA256", "")
        report = {"own_env": _matches(os.environ.items(), wanted), "parents": []}
        pid = _parent(os.getpid())
        while pid > 1:
            try:
                with open(f"/proc/{pid}/environ", "rb") as environ:
                    items = environ.read().split(b"\\0")
                pairs = [item.decode(errors="replace").partition("=") for item in items if item]
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    argv = [arg.decode(errors="replace") for arg in cmdline.read().split(b"\\0") if arg]
            except OSError as error:
                report["parents"].append({"argv": [], "error": type(error).__name__, "secret_in": []})
            else:
                command = " ".join(os.path.basename(arg) for arg in argv[:4])
                found = _matches([(key, value) for key, _, value in pairs], wanted)
                report["parents"].append({"argv": command, "secret_in": found})
            if "entrypoint.sh" in str(report["parents"][-1]["argv"]):
                break
            pid = _parent(pid)
        from airflow import __version__

        option = ("core", "internal_api_secret_key") if __version__.startswith("2.") else ("api_auth", "jwt_secret")
        report["config_holds_secret"] = bool(_matches([("conf", conf.get(*option, fallback="") or "")], wanted))
        folder = conf.get("core", "dags_folder")
        report["dags_folder_files"] = sorted(
            os.path.relpath(os.path.join(root, name), folder)
            for root, _dirs, names in os.walk(folder)
            for name in names
            if not name.endswith(".pyc")
        )
        if os.environ.get("EDGE_PROBE_OUT"):
            with open(os.environ["EDGE_PROBE_OUT"], "w") as out:
                json.dump(report, out)

    probe()
'''


# Team c's DAGs also hold this task for the central-site fault scenarios: it notes each of its
# executions (start and end, its try, its process) in EDGE_FAULT_OUT, so that a test counts
# executions, not only the final state.
OUTAGE_DAG = '''"""A task that notes each execution in EDGE_FAULT_OUT; its first try runs EDGE_FAULT_TASK_SECONDS."""

import os
import time
from datetime import timedelta

from team_c import team_default_args

try:
    from airflow.sdk import DAG, get_current_context, task
except ImportError:
    from airflow import DAG
    from airflow.decorators import task
    from airflow.operators.python import get_current_context

# The team's defaults (its retries), with a 10 s retry delay: the wait before a retry is not
# what the fault tests measure, and the team's minute of it is CI time.
with DAG(dag_id="team_c_outage", default_args={**team_default_args(), "retry_delay": timedelta(seconds=10)},
         schedule=None, catchup=False):

    @task
    def ride_it_out() -> None:
        out = os.environ.get("EDGE_FAULT_OUT")
        context = get_current_context()
        try_number, run_id = context["ti"].try_number, context["run_id"]

        def note(what: str) -> None:
            if out:
                with open(out, "a") as notes:
                    notes.write(f"{what} try={try_number} run={run_id} pid={os.getpid()} at={time.time():.1f}\\n")

        note("start")
        finished = False
        try:
            # The first try runs long enough to meet the outage; a retry finishes soon.
            time.sleep(float(os.environ.get("EDGE_FAULT_TASK_SECONDS", "60")) if try_number == 1 else 5)
            finished = True
        finally:  # a stopped task (SIGTERM) notes when it stopped
            note("end" if finished else "stopped")

    ride_it_out()
'''
