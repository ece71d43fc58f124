"""What task code on team c's worker can reach: its DAG folder and the Edge secret.

The worker is the rendered entrypoint.sh of a team-c repo with `dags_source: gcs-volume`, on
the real central site. Cloud Run's Cloud Storage volume is modelled locally, from the flags
the rendered `deploy.sh` passes (read from its dry run, so a change there changes the model):

- the bucket: the central site's DAG folder (every team's files) at `<dags_bucket_path>/`;
- the mount: only the `only-dir` folder of the bucket is copied to the `mount-path`, as Cloud
  Storage FUSE's `only-dir` exposes only that folder;
- the DAG folder: worker.env.yaml's AIRFLOW__CORE__DAGS_FOLDER, under the same local root.

Not modelled: Cloud Storage FUSE itself and the IAM conditions (no Google Cloud here); the
gcloud stand-in tests assert the exact flags and conditions.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from support import harness
from support.sites import WITH_AIRFLOW_2_11, Site
from support.templates import load_answers, render

pytestmark = pytest.mark.tracks(*WITH_AIRFLOW_2_11)


def deploy_volume_flags(repo: Path) -> dict[str, str]:
    """The bucket, only-dir and mount path of the rendered deploy.sh's deploy command (dry run)."""
    result = subprocess.run(
        ["./deploy.sh", "--dry-run", "--tag", "probe", "deploy"],
        cwd=repo, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    deploy = next(shlex.split(line) for line in result.stdout.splitlines() if " deploy " in line)
    volume = flag_pairs(deploy, "--add-volume", "name=dags")
    mount = flag_pairs(deploy, "--add-volume-mount", "volume=dags")
    options = dict(option.split("=", 1) for option in volume["mount-options"].split(";"))
    return {"bucket": volume["bucket"], "only_dir": options["only-dir"], "mount_path": mount["mount-path"]}


def flag_pairs(argv: list[str], flag: str, first: str) -> dict[str, str]:
    """KEY=VALUE,... of the --FLAG=FIRST,... (the DAG volume's, not the task logs'), split as
    gcloud's ArgDict splits it (first '=' of each item)."""
    value = next(word for word in argv if word.startswith(f"{flag}={first},")).split("=", 1)[1]
    return dict(item.split("=", 1) for item in value.split(","))


def files_under(folder: Path) -> list[str]:
    files = [path for path in folder.rglob("*") if path.is_file() and path.suffix != ".pyc"]
    return sorted(str(path.relative_to(folder)) for path in files)


def test_a_team_task_sees_only_its_team_dags_and_can_read_the_shared_secret(site: Site, tmp_path: Path) -> None:
    # The site's own team-c answers (its DAG bundle among them), with the DAGs from a bucket.
    answers = {**site.answers, "dags_source": "gcs-volume"}
    repo = render(tmp_path / "team-c-gcs", answers)
    flags = deploy_volume_flags(repo)
    bucket_path = load_answers(repo)["dags_bucket_path"]
    assert flags["only_dir"] == f"{bucket_path}/team_c"

    bucket = tmp_path / "bucket"
    shutil.copytree(site.central.dags, bucket / bucket_path)
    assert (bucket / bucket_path / "team_a").is_dir(), "the bucket must hold team a's DAGs, or this proves nothing"
    container = tmp_path / "container"
    shutil.copytree(bucket / flags["only_dir"], container / flags["mount_path"].lstrip("/"))
    dags_folder = container / harness.worker_env_file(repo)["AIRFLOW__CORE__DAGS_FOLDER"].lstrip("/")

    report_path = tmp_path / "probe.json"
    worker = site.worker(
        repo,
        "probe",
        overrides={
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "EDGE_PROBE_OUT": str(report_path),
            "EDGE_PROBE_SHA256": hashlib.sha256(site.secret.encode()).hexdigest(),
        },
    )
    try:
        name = site.registered(worker)
        run_id = site.central.trigger("team_c_probe")
        assert site.finished("team_c_probe", run_id)["state"] == "success", worker.proc.text()[-3000:]
        assert site.central.task_instance("team_c_probe", run_id)["hostname"] == name
    finally:
        worker.stop()
    report = json.loads(report_path.read_text())

    # The DAG folder: team c's files, at the central site's relative paths, and nothing of team a.
    assert report["dags_folder_files"] == [f"team_c/{path}" for path in files_under(site.central.dags / "team_c")]
    assert "team_c/probe_dag.py" in report["dags_folder_files"]
    assert not [path for path in report["dags_folder_files"] if not path.startswith("team_c/")]

    # The secret (SECURITY.md, "Task code and the Edge secret"): task code can read it, from its
    # own environment, from Airflow's configuration, and from the entrypoint's /proc/<pid>/environ.
    secret_var = "AIRFLOW__CORE__INTERNAL_API_SECRET_KEY" if site.track.airflow_version[0] == "2" else (
        "AIRFLOW__API_AUTH__JWT_SECRET"
    )
    assert report["own_env"] == [secret_var]
    assert report["config_holds_secret"] is True
    *between, entrypoint = report["parents"]  # the task's parents up to the entrypoint (PID 1 on Cloud Run)
    assert "entrypoint.sh" in entrypoint["argv"], report["parents"]
    assert entrypoint["secret_in"] == ["EDGE_SHARED_SECRET"], report["parents"]
    assert any("airflow edge worker" in parent["argv"] for parent in between), report["parents"]
    # Between the task and the entrypoint: on 2.10 every parent's environ holds it; on Airflow 3 the
    # worker and the task supervisor rename themselves (setproctitle), which overwrites the memory
    # /proc/<pid>/environ shows. The task's own environment holds it on both (asserted above).
    in_between = [[secret_var]] * len(between) if site.track.airflow_version[0] == "2" else [[]] * len(between)
    assert [parent["secret_in"] for parent in between] == in_between, report["parents"]
