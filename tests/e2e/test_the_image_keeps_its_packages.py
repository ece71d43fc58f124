"""A team's packages may add to the worker image but never move what the image holds.

Airflow 3.0's image holds PyJWT 2.10; PyJWT 2.11 refuses the empty issuer list Airflow 3.0.6
signs with, and the worker dies at registration. The rendered Dockerfile freezes what the image
and edge3 installed and installs the team's requirements under that freeze, so a requirement
that would move PyJWT fails the build, naming it, instead of the worker failing on Cloud Run.
The steps run as harness.airflow_venv runs them: the rendered Dockerfile's own RUN lines.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from support import harness
from support.sites import TRACKS
from support.templates import render

TRACK = TRACKS["airflow3.0"]


def team(path: Path, python_deps: list[str]) -> Path:
    return render(path, {"team_name": "team-c", "airflow_version": TRACK.airflow_version, **dict(TRACK.answers),
                         "python_deps": python_deps})


def test_a_requirement_that_would_move_an_image_package_fails_the_build_naming_it(tmp_path: Path) -> None:
    built = harness.airflow_venv(team(tmp_path / "plain", []))
    frozen = (built / "worker-constraints.txt").read_text().splitlines()
    assert "pyjwt==2.10.1" in [line.lower() for line in frozen]
    moving = team(tmp_path / "moving", ["PyJWT>=2.11"])
    _, steps = harness.dockerfile_steps(moving)
    assert "--constraint" in steps[-1].argv, "the team's packages are installed under the image's freeze"

    build = harness.run_build_step(steps[-1], moving, built, dry_run=True)

    assert build.returncode != 0
    assert "you require pyjwt>=2.11 and pyjwt==2.10.1" in build.stderr, build.stderr
    # Without the freeze the same line resolves, and would move PyJWT past 2.10.
    unguarded = subprocess.run(
        [harness.uv(), "pip", "install", "--dry-run", "--python", str(built / "bin" / "python"),
         "--requirement", str(moving / "requirements.txt")],
        capture_output=True, text=True, check=False,
    )
    assert unguarded.returncode == 0, unguarded.stderr
    assert " - pyjwt==2.10.1\n" in unguarded.stderr, unguarded.stderr
    assert " + pyjwt==2." in unguarded.stderr, unguarded.stderr


def test_a_requirement_that_only_adds_packages_builds(tmp_path: Path) -> None:
    built = harness.airflow_venv(team(tmp_path / "plain", []))
    adding = team(tmp_path / "adding", ["xmltodict==0.14.2", "requests>=2.32"])
    _, steps = harness.dockerfile_steps(adding)

    build = harness.run_build_step(steps[-1], adding, built, dry_run=True)

    assert build.returncode == 0, build.stderr
    assert "+ xmltodict==0.14.2" in build.stderr
    assert "requests" not in build.stderr.split("Would install", 1)[-1].lower(), "requests stays as the image has it"
