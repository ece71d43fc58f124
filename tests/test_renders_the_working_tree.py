"""The suite and the demo render the template as it is in the working tree, not its newest release tag.

Copier renders the newest tag when no ref is given; the platform team tags every release,
so without `vcs_ref="HEAD"` every test after the first release would check old code.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support.templates import ROOT, git, load_answers, render, snapshot_template

EDIT = ("pool_slots:\n  type: int\n", "  default: 8\n", "  default: 9\n")


@pytest.fixture
def tagged_clone_with_an_edit(tmp_path: Path) -> Path:
    """A template checkout whose newest tag (v1.0.0) says pool_slots defaults to 8; its tree says 9."""
    template = snapshot_template(tmp_path / "edge-template")
    copier_yml = template / "copier.yml"
    question, old, new = EDIT
    text = copier_yml.read_text()
    at = text.index(question)
    copier_yml.write_text(text[:at] + text[at:].replace(old, new, 1))
    return template


def test_render_takes_an_uncommitted_edit_of_a_tagged_checkout(tagged_clone_with_an_edit: Path, tmp_path: Path):
    repo = render(tmp_path / "team-c", {"team_name": "team-c"}, src=tagged_clone_with_an_edit)
    assert load_answers(repo)["pool_slots"] == 9


def test_render_takes_a_commit_after_the_newest_tag(tagged_clone_with_an_edit: Path, tmp_path: Path):
    git(tagged_clone_with_an_edit, "commit", "-q", "-am", "after v1.0.0")
    repo = render(tmp_path / "team-c", {"team_name": "team-c"}, src=tagged_clone_with_an_edit)
    answers = load_answers(repo)
    assert answers["pool_slots"] == 9
    assert answers["_commit"].startswith("v1.0.0-1-g")


def test_the_demo_renders_the_working_tree(tagged_clone_with_an_edit: Path):
    # The clone shares this checkout's dev toolchain (same requirements-dev.txt, so no reinstall).
    (tagged_clone_with_an_edit / ".venv").symlink_to(ROOT / ".venv")
    result = subprocess.run(["python3", "scripts/dev.py", "demo"], cwd=tagged_clone_with_an_edit, capture_output=True,
                            text=True, check=False, stdin=subprocess.DEVNULL,
                            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert result.returncode == 0, result.stderr
    assert load_answers(tagged_clone_with_an_edit / "build" / "team-c")["pool_slots"] == 9


def test_what_linters_leave_in_template_is_not_rendered(tmp_path: Path) -> None:
    """A template folder that is no git checkout (copier then takes every file in it)."""
    template = tmp_path / "edge-template"
    shutil.copytree(ROOT, template, ignore=shutil.ignore_patterns(".git", ".venv", "build", "examples"))
    (template / "template" / ".ruff_cache").mkdir(exist_ok=True)
    (template / "template" / ".ruff_cache" / "CACHEDIR.TAG").write_text("ruff\n")
    (template / "template" / "__pycache__").mkdir(exist_ok=True)
    (template / "template" / "__pycache__" / "startup.cpython-311.pyc").write_bytes(b"\0")

    repo = render(tmp_path / "team-c", {"team_name": "team-c"}, src=template)

    assert not (repo / ".ruff_cache").exists()
    assert not (repo / "__pycache__").exists()
    assert (repo / "startup.py").exists()
