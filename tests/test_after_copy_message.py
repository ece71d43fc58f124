"""What copier prints after a copy works as printed, and warns where a later update would hurt."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from support.templates import ROOT, load_answers

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t.invalid"}
UNTAGGED = "Warning: this repo was rendered from an untagged template commit"


def copy(src: str, dst: Path, *args: str) -> str:
    """copier copy on the command line; what it printed (copier writes its messages to stderr)."""
    result = subprocess.run([sys.executable, "-m", "copier", "copy", "--defaults", *args, src, str(dst)],
                            capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_the_first_step_works_as_printed_in_a_folder_with_a_space(tmp_path: Path) -> None:
    dst = tmp_path / "our teams" / "team-c"
    printed = copy(str(ROOT), dst, "--vcs-ref", "HEAD", "--data", "team_name=team-c")
    step = next(line.strip() for line in printed.splitlines() if line.strip().startswith("1. cd "))
    command = step.removeprefix("1. ")

    result = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, check=False,
                            env={**os.environ, **GIT_ENV})

    assert result.returncode == 0, result.stderr
    assert subprocess.run(["git", "log", "--oneline"], cwd=dst, capture_output=True, text=True,
                          check=True).stdout.count("\n") == 1


def test_a_render_from_an_untagged_commit_warns(tmp_path: Path) -> None:
    printed = copy(str(ROOT), tmp_path / "team-c", "--vcs-ref", "HEAD")
    assert UNTAGGED in printed
    assert not re.fullmatch(r"v?[0-9]+(\.[0-9]+)*", load_answers(tmp_path / "team-c")["_commit"])


def test_a_render_from_a_release_does_not_warn(template_releases: Path, tmp_path: Path) -> None:
    printed = copy(str(template_releases), tmp_path / "team-c", "--vcs-ref", "v2.0.0")
    assert UNTAGGED not in printed
    assert "Next steps:" in printed
