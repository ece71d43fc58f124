"""A platform engineer follows platform/README.md on a real central site: every command it gives
in a shell block runs as written, in the folder it names, with the site's own `airflow` and
Python (and gcloud's stand-in, for the secret's rotation), and does what the guide says.
The guide's one command that needs no site (the site settings' render) is in tests/test_readme.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from gcloud_stub import GcloudStub, Team, scenario
from support.sites import Site
from support.templates import ROOT, load_answers, sh_blocks

GUIDE = ROOT / "platform" / "README.md"
PLATFORM = "user:PLATFORM@EXAMPLE.COM"


def run(site: Site, script: str, cwd: Path, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    """Guide lines, in bash, with the central site's PATH (its `airflow`, its `python`) and settings."""
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{script}"],
        cwd=cwd,
        env={**site.central.env, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.stdout[-2000:]} {result.stderr[-3000:]}"
    return result.stdout


def test_the_guide_s_commands_run_as_written_on_a_central_site(site: Site, tmp_path: Path, edge_secret: str) -> None:
    blocks = [block for block in sh_blocks(GUIDE.read_text()) if not block[0].startswith("copier ")]
    rotation = next(block for block in blocks if any("gcloud secrets versions add" in line for line in block))
    lines = [line for block in blocks if block is not rotation for line in block]
    assert lines == [
        "airflow pools import pools.json",
        "python edge_site.py fleet",
        "python edge_site.py remove-dead-workers --dry-run",
    ]
    kit = tmp_path / "kit"  # the kit's folder, as the platform copies it to a central-site host
    shutil.copytree(GUIDE.parent, kit)

    # A team joins (again: importing the same file twice changes nothing), from its repo.
    ok(run(site, lines[0], site.team_c))
    # The kit: both teams of the site, one line each.
    fleet = ok(run(site, lines[1], kit))
    print(fleet)
    table = {line.split()[0]: line.split() for line in fleet.splitlines() if line.startswith("team-")}
    assert set(table) == {"team-a", "team-c"}
    for team, target in (("team-c", site.track.team_c_target), ("team-a", site.track.team_a_target)):
        assert table[team][2:4] == [target, f"{team}-edge-worker"], fleet
    assert re.search(r"^every team's Edge tasks at most: [0-9]+; \[core\] parallelism: [0-9]+", fleet, re.M), fleet
    dry = ok(run(site, lines[2], kit))
    assert re.search(r"^2 team\(s\): [0-9]+ row\(s\) would be removed, [0-9]+ left", dry, re.M), dry

    # The secret's rotation, as the platform's account, against gcloud's stand-in for the teams'
    # project: refused without a role on the team's secret, done with the one the guide names.
    team = Team(site.team_c, load_answers(site.team_c))
    stub = GcloudStub.create(tmp_path / "gcloud", team)
    world = scenario("everything-exists", team, with_people=False) | {"account": PLATFORM, "held": []}
    stub.write_world(world)
    script, new_value = "\n".join(rotation), f"{edge_secret}-rotated"
    gcloud = {"PATH": f"{stub.bin_dir}:{site.central.env['PATH']}", "GCLOUD_STUB_STATE": str(stub.state_path),
              "GCLOUD_STUB_LOG": str(stub.log_path)}  # fmt: skip
    refused = run(site, script, kit, stdin=new_value + "\n", **gcloud)
    assert refused.returncode != 0
    assert "PERMISSION_DENIED: Permission 'secretmanager.versions.add' denied" in refused.stderr
    stub.write_world(
        world
        | {"held": [f"secret:{team.answers['edge_secret_name']}|roles/secretmanager.secretVersionAdder|{PLATFORM}"]}
    )
    done = run(site, script, kit, stdin=new_value + "\n", **gcloud)
    ok(done)
    project = team.answers["gcp_project_id"]
    assert (kit / "team-projects.txt").read_text() == f"{project}\n"  # team-c and team-a share it here
    assert stub.calls() == [
        [
            "gcloud",
            "secrets",
            "versions",
            "add",
            team.answers["edge_secret_name"],
            f"--project={project}",
            "--data-file=-",
        ]
    ]
    # The value went to gcloud on stdin only: not on a command line, in the stand-in's record, or printed.
    for text in (done.stdout, done.stderr, stub.log_path.read_text(), stub.state_path.read_text()):
        assert new_value not in text
