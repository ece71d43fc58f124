"""Run a rendered deploy.sh against the recording gcloud stand-in (gcloud.py beside this file).

stub = GcloudStub.create(tmp_path, team)            # a PATH with the stand-in as `gcloud`
stub.load("nothing-exists")                         # scenarios/<name>.json, names filled in
result = stub.run("--tag", "abc1234", "all")        # ./deploy.sh in the team repo
stub.calls()                                        # every recorded argv, "gcloud" first
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from support.templates import load_answers

from .calls import is_creating, is_mutating

STUB = Path(__file__).resolve().parent / "gcloud.py"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
INTERRUPTED = -signal.SIGTERM  # the return code of a deploy.sh stopped by SIGTERM


@dataclass(frozen=True)
class Team:
    """A rendered team repo and the Google Cloud names its answers give."""

    repo: Path
    answers: dict[str, Any]

    project = property(lambda self: self.answers["gcp_project_id"])
    region = property(lambda self: self.answers["region"])
    secret = property(lambda self: self.answers["edge_secret_name"])
    team = property(lambda self: self.answers["team_name"])
    target = property(lambda self: self.answers["deployment_target"])
    dags_source = property(lambda self: self.answers["dags_source"])

    @property
    def team_module(self) -> str:
        return self.team.replace("-", "_")

    @property
    def resource(self) -> str:
        return f"{self.team}-edge-worker"

    @property
    def sa_email(self) -> str:
        return f"{self.team}-edge@{self.project}.iam.gserviceaccount.com"

    @property
    def bucket(self) -> str:
        return self.answers.get("dags_bucket") or f"{self.project}-airflow-dags"

    @property
    def dags_prefix(self) -> str:
        """The team's folder of the DAG bucket (dags_object_prefix), with its trailing slash."""
        return f"{self.answers.get('dags_bucket_path', '')}/{self.team_module}/"

    @property
    def log_bucket(self) -> str:
        """remote_logging: the bucket of remote_log_folder (gs://BUCKET/FOLDER)."""
        return self.answers["remote_log_folder"].split("/")[2]

    @property
    def log_prefix(self) -> str:
        return self.answers["remote_log_folder"].split("/", 3)[3] + "/"

    @property
    def image(self) -> str:
        return f"{self.region}-docker.pkg.dev/{self.project}/{self.answers['artifact_registry_repo']}/{self.resource}"

    def names(self, tag: str) -> dict[str, str]:
        return {
            "project": self.project,
            "secret": self.secret,
            "region": self.region,
            "repo": self.answers["artifact_registry_repo"],
            "sa_email": self.sa_email,
            "bucket": self.bucket,
            "dags_prefix": self.dags_prefix,
            "resource": self.resource,
            "team": self.team,
            "kind": self.target,
            "tag": tag,
        }


_RENDERED: dict[str, Team] = {}


def rendered_team(case: str, answers: dict[str, Any], render_to: Callable[..., Path]) -> Team:
    """The team repo of an answer set, rendered once per test session (deploy.sh only reads it)."""
    if case not in _RENDERED:
        repo = render_to(answers, name=answers["team_name"])
        _RENDERED[case] = Team(repo, load_answers(repo))
    return _RENDERED[case]


# The people of docs/deploy.md, as its grant blocks name them.
DEPLOYER = "user:YOU@EXAMPLE.COM"
BUILD_ACCOUNT = "serviceAccount:PROJECT_NUMBER-compute@developer.gserviceaccount.com"
_GRANTS: dict[str, list[str]] = {}  # by the text of docs/deploy.md


def doc_block(team: Team, marker: str) -> str:
    """The sh code block of the team's docs/deploy.md that holds MARKER."""
    doc = (team.repo / "docs" / "deploy.md").read_text()
    return next(block for block in doc.split("```sh\n")[1:] if marker in block.split("```", 1)[0]).split("```", 1)[0]


def documented_grants(team: Team) -> list[str]:
    """What docs/deploy.md has the project's admin grant the deployer and the Cloud Build account,
    by running its two grant blocks through the stand-in (as the admin, whom it does not check):
    "SCOPE|ROLE|MEMBER[|CONDITION]", as a world's "held" keeps them."""
    docs = (team.repo / "docs" / "deploy.md").read_text()
    if docs not in _GRANTS:
        with tempfile.TemporaryDirectory() as tmp:
            stub = GcloudStub.create(Path(tmp), team)
            world = scenario("everything-exists", team, with_people=False)
            world["resources"] += [f"service-account:{BUILD_ACCOUNT.removeprefix('serviceAccount:')}",
                                   f"bucket:gs://{team.project}_cloudbuild"]
            stub.write_world(world)
            for marker in ("DEPLOYER=", "BUILD_SA="):
                result = stub.run_shell(doc_block(team, marker))
                assert result.returncode == 0, f"docs/deploy.md's {marker} block: {result.stderr}"
            after = stub.world()
        conditions = after.get("conditions", {})
        made = [key for key in after["resources"] if key.startswith("binding:") and key not in world["resources"]]
        _GRANTS[docs] = [
            "|".join(key.removeprefix("binding:").split("|")[:3] + ([conditions[key]] if key in conditions else []))
            for key in made
        ]
    return _GRANTS[docs]


def scenario(name: str, team: Team, tag: str = "abc1234", with_people: bool = True) -> dict[str, Any]:
    """A scenario file with the team's names filled in; gcloud runs as the deployer of the docs,
    who holds what the docs have the admin grant."""
    text = Template((SCENARIOS / f"{name}.json").read_text()).substitute(team.names(tag))
    world = json.loads(text)
    if with_people:
        world["account"] = DEPLOYER
        world["held"] = documented_grants(team)
    if team.answers.get("autoscaling"):  # the central site's account: the platform team made it
        world["resources"].append(f"service-account:{team.answers['central_service_account']}")
    # A world with the DAG bucket (one where setup ran) has the task log bucket too, when there is one.
    setup_ran = f"bucket:gs://{team.bucket}" in world["resources"]
    if team.dags_source != "gcs-volume":  # no bucket is made nor read for an image with its DAGs inside
        world["resources"] = [key for key in world["resources"] if team.bucket not in key]
    if team.answers.get("remote_logging") and setup_ran:  # the log bucket, the worker's grant on its folder
        grant = (f"binding:bucket:gs://{team.log_bucket}|roles/storage.objectUser|serviceAccount:{team.sa_email}"
                 f"|{team.team} task logs write")
        world["resources"] += [f"bucket:gs://{team.log_bucket}", grant]
        world.setdefault("conditions", {})[grant] = (
            f'resource.name.startsWith("projects/_/buckets/{team.log_bucket}/objects/{team.log_prefix}")'
        )
    if team.dags_source != "gcs-volume" and not team.answers.get("remote_logging"):
        world["resources"] = [key for key in world["resources"] if key != "api:storage.googleapis.com"]
    return world


@dataclass
class GcloudStub:
    team: Team
    bin_dir: Path
    state_path: Path
    log_path: Path

    @classmethod
    def create(cls, tmp_path: Path, team: Team) -> GcloudStub:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(parents=True)
        wrapper = bin_dir / "gcloud"
        # -S -E: no site-packages nor PYTHON* variables, so each call starts fast and alike.
        wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -S -E {shlex.quote(str(STUB))} "$@"\n')
        wrapper.chmod(0o755)
        return cls(team, bin_dir, tmp_path / "world.json", tmp_path / "calls.jsonl")

    def load(self, name: str, tag: str = "abc1234", **changes: Any) -> dict[str, Any]:
        world = scenario(name, self.team, tag)
        world.update(changes)
        self.write_world(world)
        return world

    def write_world(self, world: dict[str, Any]) -> None:
        self.state_path.write_text(json.dumps(world, indent=2) + "\n")
        self.forget_calls()

    def world(self) -> dict[str, Any]:
        return json.loads(self.state_path.read_text())

    def resources(self) -> set[str]:
        return set(self.world()["resources"])

    def forget_calls(self) -> None:
        self.log_path.write_text("")

    def calls(self) -> list[list[str]]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line]

    def env(self, path: str | None = None, **extra: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("CLOUDSDK_", "GCLOUD_", "GOOGLE_", "COMPOSER_"))
        }
        env["PATH"] = path if path is not None else f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
        env["GCLOUD_STUB_STATE"] = str(self.state_path)
        env["GCLOUD_STUB_LOG"] = str(self.log_path)
        env["DEPLOY_RETRY_DELAY"] = "0"
        # The DAG import check builds a real Airflow venv per pin set: tests/test_dag_imports.py
        # runs it (pass SKIP="" there); these runs are about the gcloud calls.
        env["SKIP"] = "edge-template-dag-imports"
        env.update(extra)
        return env

    def run(self, *args: str, path: str | None = None, cwd: Path | None = None, **extra: str) -> Result:
        """./deploy.sh ARGS in its own session, so that an interruption stops it alone."""
        argv = ["./deploy.sh", *args] if cwd is None else [str(self.team.repo / "deploy.sh"), *args]
        return self._recorded(argv, cwd or self.team.repo, self.env(path, **extra))

    def run_shell(self, command: str, stdin: str | None = None, **extra: str) -> Result:
        """A command line (or script) as bash runs it in the team repo, with the stand-in on PATH."""
        return self._recorded(["bash", "-c", command], self.team.repo, self.env(**extra), stdin)

    def _recorded(self, argv: list[str], cwd: Path, env: dict[str, str], stdin: str | None = None) -> Result:
        """Run argv in its own session (so that an interruption stops it alone); the gcloud calls it made."""
        before = len(self.calls())
        proc = subprocess.run(argv, input=stdin, cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                              start_new_session=True, check=False)
        return Result(proc.returncode, proc.stdout, proc.stderr, self.calls()[before:])


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str
    calls: list[list[str]]

    @property
    def mutating(self) -> list[list[str]]:
        return [argv for argv in self.calls if is_mutating(argv)]

    @property
    def creating(self) -> list[list[str]]:
        return [argv for argv in self.calls if is_creating(argv)]

    def plan(self) -> list[list[str]]:
        """The --dry-run output, each line split the way a shell splits it."""
        return [shlex.split(line) for line in self.stdout.splitlines()]

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "ERROR" in line]


def path_without_gcloud(tmp_path: Path) -> str:
    """A PATH with what deploy.sh needs (bash, git) and no gcloud."""
    bin_dir = tmp_path / "bin-without-gcloud"
    bin_dir.mkdir()
    for name in ("bash", "git", "env"):
        found = shutil.which(name)
        assert found, f"{name} is needed on PATH for the tests"
        (bin_dir / name).symlink_to(found)
    return str(bin_dir)
