"""cloudbuild.yaml: Cloud Build builds, pushes and deploys the worker through the same deploy.sh.

The build steps' scripts are run here the way Cloud Build runs them (its substitutions
applied, the step's env set), against the recording gcloud stand-in.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from gcloud_stub import BUILD_ACCOUNT, GcloudStub, Result, Team
from gcloud_stub.permissions import Request, granting, object_request
from support.templates import run_tool, tool

SUBSTITUTION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
MIN_GCLOUD = 565  # Cloud Run worker pools are GA from gcloud 565.0.0


def substitute(text: str, values: dict[str, str]) -> str:
    """Cloud Build's substitution: $$ is a literal $, and a variable it does not know is empty."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return values.get(match.group(1) or match.group(2), "")

    return SUBSTITUTION.sub(one, text)


def substitutions_used(config: dict[str, Any]) -> set[str]:
    text = yaml.safe_dump({key: value for key, value in config.items() if key != "substitutions"})
    text += "\n".join(str(value) for value in config["substitutions"].values())
    return {m.group(1) or m.group(2) for m in SUBSTITUTION.finditer(text) if m.group(0) != "$$"}


def values_for(config: dict[str, Any], short_sha: str, **overrides: str) -> dict[str, str]:
    """The substitutions of a build: built-ins, then the file's defaults (dynamic), then --substitutions."""
    values = {"PROJECT_ID": "my-gcp-project", "BUILD_ID": "b-1", "SHORT_SHA": short_sha}
    for name, default in config["substitutions"].items():
        values[name] = substitute(str(default), values)
    values.update(overrides)
    return values


def step(config: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in config["steps"] if s["id"] == step_id)


def run_step(stub: GcloudStub, config: dict[str, Any], step_id: str, values: dict[str, str]) -> Result:
    """Run a bash step as Cloud Build would: substituted script, substituted env, in /workspace (the repo)."""
    s = step(config, step_id)
    assert s.get("entrypoint") == "bash"
    assert s["args"][0] == "-c"
    env = dict(substitute(item, values).split("=", 1) for item in s.get("env", []))
    return stub.run_shell(substitute(s["args"][1], values), **env)


def config_of(team: Team) -> dict[str, Any]:
    return yaml.safe_load((team.repo / "cloudbuild.yaml").read_text())


def defaults_with_stub(team_of: Callable[[str], Team], tmp_path: Path) -> tuple[Team, dict, GcloudStub]:
    """The default team repo, its cloudbuild.yaml and a gcloud stand-in for it."""
    team = team_of("defaults")
    return team, config_of(team), GcloudStub.create(tmp_path, team)


# --- Valid Cloud Build config, lint clean ---


@pytest.mark.parametrize("case", ["defaults", "af3-service-connector-image"])
def test_cloudbuild_yaml_is_valid_for_cloud_build_and_yamllint_strict(
    case: str, team_of: Callable[[str], Team]
) -> None:
    # (test_rendered_repo.py runs the same linters over every MATRIX case.)
    repo = team_of(case).repo
    schema = run_tool([tool("check-jsonschema"), "--builtin-schema", "vendor.cloudbuild", "cloudbuild.yaml"], repo)
    lint = run_tool([tool("yamllint"), "--strict", "-c", ".yamllint.yaml", "cloudbuild.yaml"], repo)

    assert schema.returncode == 0, schema.stdout + schema.stderr
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert (repo / "cloudbuild.yaml").read_text().startswith("---\n")


# --- What the build does ---


@pytest.mark.parametrize("case", ["defaults", "af3-service-connector-image"])
def test_the_build_reuses_the_last_image_and_pushes_both_tags_before_deploying(
    case: str, team_of: Callable[[str], Team]
) -> None:
    team = team_of(case)
    config = config_of(team)
    image = team.image

    assert [s["id"] for s in config["steps"]] == [
        "check-tag",
        "check-dags",
        "pull-cache",
        "build",
        "push-tag",
        "push-latest",
        "deploy",
    ]
    assert f"docker pull {image}:latest" in step(config, "pull-cache")["args"][1]
    assert step(config, "build")["args"] == [
        "build",
        f"--cache-from={image}:latest",
        "--build-arg=BUILDKIT_INLINE_CACHE=1",
        f"--tag={image}:${{_TAG}}",
        f"--tag={image}:latest",
        ".",
    ]
    assert step(config, "push-tag")["args"] == ["push", f"{image}:${{_TAG}}"]
    assert step(config, "push-latest")["args"] == ["push", f"{image}:latest"]
    assert config["images"] == [f"{image}:${{_TAG}}", f"{image}:latest"]


def test_the_deploy_step_runs_in_a_pinned_gcloud_new_enough_for_worker_pools(team_of: Callable[[str], Team]) -> None:
    config = config_of(team_of("defaults"))

    assert step(config, "deploy")["name"] == "${_GCLOUD_IMAGE}"
    pinned = re.fullmatch(
        r"gcr\.io/google\.com/cloudsdktool/google-cloud-cli:(\d+)\.(\d+)\.(\d+)-stable",
        config["substitutions"]["_GCLOUD_IMAGE"],
    )
    assert pinned, config["substitutions"]["_GCLOUD_IMAGE"]
    assert int(pinned.group(1)) >= MIN_GCLOUD


def test_logging_and_substitutions_are_set(team_of: Callable[[str], Team]) -> None:
    config = config_of(team_of("defaults"))

    assert config["options"]["logging"] == "CLOUD_LOGGING_ONLY"
    assert config["options"]["dynamicSubstitutions"] is True
    assert config["substitutions"]["_TAG"] == "${SHORT_SHA}"
    user_defined = {name for name in substitutions_used(config) if name.startswith("_")}
    assert user_defined == set(config["substitutions"])  # none undefined, none unused


def test_deploy_sh_build_passes_only_substitutions_the_config_defines(
    team_of: Callable[[str], Team], tmp_path: Path
) -> None:
    team, config, stub = defaults_with_stub(team_of, tmp_path)

    plan = stub.run("--dry-run", "--tag", "abc1234", "build").plan()

    submit = plan[-1]
    assert submit[:3] == ["gcloud", "builds", "submit"]
    assert "--config=cloudbuild.yaml" in submit
    passed = dict(item.split("=", 1) for item in submit[-2].removeprefix("--substitutions=").split(","))
    assert passed == {"_TAG": "abc1234", "_DEPLOY": "false"}
    assert set(passed) <= set(config["substitutions"])


# --- The steps, run as Cloud Build runs them ---


@pytest.mark.parametrize("case", ["defaults", "af3-service-connector-image"])
def test_a_triggered_build_deploys_the_commit_through_deploy_sh(
    case: str, team_of: Callable[[str], Team], tmp_path: Path
) -> None:
    team = team_of(case)
    config = config_of(team)
    stub = GcloudStub.create(tmp_path, team)
    world = stub.load("everything-exists", tag="1a2b3c4", account=BUILD_ACCOUNT)  # the build's own identity
    plan = stub.run("--dry-run", "--tag", "1a2b3c4", "dags", "deploy").plan()

    result = run_step(stub, config, "deploy", values_for(config, short_sha="1a2b3c4"))

    assert result.returncode == 0, result.stderr
    assert stub.world().get("denied", []) == []
    assert result.calls == plan
    assert result.mutating[-1][:3] in (["gcloud", "run", "worker-pools"], ["gcloud", "run", "deploy"])
    assert f"--image={team.image}:1a2b3c4" in result.mutating[-1]
    if team.dags_source == "gcs-volume":
        assert result.mutating[0][1:3] == ["storage", "rsync"]
    else:
        assert len(result.mutating) == 1
    # Every role docs/deploy.md gives the build account serves the build: its gcloud calls, and
    # what Cloud Build does as it (fetch the source, push the image, write the build's logs).
    own = [
        object_request("storage.objects.get", f"{team.project}_cloudbuild", "source/1a2b3c4.tgz"),
        Request("artifactregistry.repositories.uploadArtifacts", f"repository:{team.region}/airflow-edge"),
        Request("logging.logEntries.create", f"project:{team.project}"),
    ]
    used = {entry.split("|")[1] for entry in stub.world()["used"] if entry.startswith(BUILD_ACCOUNT + "|")}
    used |= {binding.role for request in own for binding in granting(world, BUILD_ACCOUNT, request)}
    held = {grant.split("|")[1] for grant in world["held"] if grant.split("|")[2] == BUILD_ACCOUNT}
    assert held - used == set()


def test_a_build_with_deploy_false_only_pushes(team_of: Callable[[str], Team], tmp_path: Path) -> None:
    team, config, stub = defaults_with_stub(team_of, tmp_path)
    stub.load("everything-exists")

    result = run_step(stub, config, "deploy", values_for(config, short_sha="", _TAG="abc1234", _DEPLOY="false"))

    assert result.returncode == 0, result.stderr
    assert result.calls == []


@pytest.mark.parametrize(
    ("short_sha", "overrides", "ok"),
    [
        pytest.param("1a2b3c4", {}, True, id="trigger"),
        pytest.param("", {"_TAG": "abc1234"}, True, id="manual-with-tag"),
        pytest.param("", {}, False, id="manual-without-tag"),
    ],
)
def test_a_manual_build_without_a_tag_stops_first_and_says_how(
    short_sha: str, overrides: dict[str, str], ok: bool, team_of: Callable[[str], Team], tmp_path: Path
) -> None:
    team, config, stub = defaults_with_stub(team_of, tmp_path)

    result = run_step(stub, config, "check-tag", values_for(config, short_sha=short_sha, **overrides))

    assert (result.returncode == 0) is ok, result.stderr
    if not ok:
        assert "pass --substitutions=_TAG=$(git rev-parse --short=7 HEAD)" in result.stderr


def test_the_documented_manual_build_command_names_the_config_and_a_tag(team_of: Callable[[str], Team]) -> None:
    team = team_of("defaults")
    doc = (team.repo / "docs" / "deploy.md").read_text()

    command = re.search(r"^gcloud builds submit .*?\.$", doc.replace("\\\n", ""), re.MULTILINE | re.DOTALL)

    assert command, "docs/deploy.md shows no manual gcloud builds submit"
    words = shlex.split(command.group(0))
    assert "--config=cloudbuild.yaml" in words
    assert any(word.startswith("--substitutions=_TAG=") for word in words)
