"""Rendering the template as teams do, and releasing it as the platform team does.

Shared by the tests and bench/: one home for the code that makes team repos and template releases.
"""

from __future__ import annotations

import importlib.util
import io
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import copier
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = Path(sys.executable).parent


def render(dst: Path, answers: dict[str, Any], *, src: Path = ROOT, vcs_ref: str = "HEAD") -> Path:
    """Render the template the way a team does: copier's API, trust off, all defaults.

    From the working tree (HEAD plus uncommitted changes), never the newest release tag:
    copier picks that tag when no ref is given. Release tests pass their tag.
    """
    copier.run_copy(
        str(src),
        str(dst),
        data=answers,
        defaults=True,
        unsafe=False,
        quiet=True,
        vcs_ref=vcs_ref,
    )
    return dst


def rendered_files(repo: Path, pattern: str = "*") -> list[Path]:
    return sorted(p for p in repo.rglob(pattern) if p.is_file() and ".git" not in p.parts)


def tool(name: str) -> str:
    """A linter from the dev toolchain (installed beside this Python)."""
    found = shutil.which(name, path=str(TOOLS_BIN)) or shutil.which(name)
    if not found:
        pytest.fail(f"{name} is missing: install requirements-dev.txt (python3 scripts/dev.py test does)")
    return found


def run_tool(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False, env=env)


SITE_PREFIX = "_site_"


def load_answers(repo: Path) -> dict[str, Any]:
    """A team repo's answers, and the central site's facts it was rendered with (its `_site_*` keys) by name."""
    recorded = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    facts = {key[len(SITE_PREFIX) :]: value for key, value in recorded.items() if key.startswith(SITE_PREFIX)}
    return {**recorded, **facts}


class _ConfigLoader(yaml.SafeLoader):
    """copier.yml as copier reads it: `!include PATTERN` becomes the list of the matched files' documents."""


def _include(loader: yaml.SafeLoader, node: yaml.Node) -> list[Any]:
    pattern = loader.construct_scalar(node)
    return [doc for path in sorted(ROOT.glob(pattern)) for doc in yaml.safe_load_all(path.read_text()) if doc]


_ConfigLoader.add_constructor("!include", _include)


def template_questions() -> dict[str, Any]:
    """The working tree's copier.yml, its site profiles included."""
    return yaml.load((ROOT / "copier.yml").read_text(), Loader=_ConfigLoader)  # noqa: S506 (a SafeLoader)


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=edge-template tests", "-c", "user.email=tests@edge-template.invalid",
         "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
        cwd=cwd, capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def snapshot_template(dst: Path) -> Path:
    """A fresh git repo holding this template as it is in the working tree (tracked and new files)."""
    copy_working_tree(dst)
    git(dst, "init", "-q")
    git(dst, "add", "-A")
    git(dst, "commit", "-q", "-m", "v1.0.0")
    git(dst, "tag", "v1.0.0")
    return dst


def copy_working_tree(dst: Path) -> None:
    """This template's files as they are in the working tree (tracked and new ones), into dst."""
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dst / name)


def release_after(dst: Path, commit: str) -> Path:
    """A clone-like template whose v1.0.0 is this repo at `commit` (a real earlier release) and
    whose v2.0.0 is the working tree: what a team repo rendered from that commit updates across."""
    if subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT, check=False).returncode != 0:
        pytest.fail(f"commit {commit} is not in this clone's history: it needs a full clone (git fetch --unshallow)")
    dst.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=ROOT, capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dst, filter="tar")
    git(dst, "init", "-q")
    git(dst, "add", "-A")
    git(dst, "commit", "-q", "-m", f"v1.0.0 (this repo at {commit})")
    git(dst, "tag", "v1.0.0")
    git(dst, "rm", "-rq", ".")
    copy_working_tree(dst)
    git(dst, "add", "-A")
    git(dst, "commit", "-q", "-m", "v2.0.0 (the working tree)")
    git(dst, "tag", "v2.0.0")
    return dst


def release_v2(template: Path) -> None:
    """Change the template as a real release would, commit and tag v2.0.0."""
    copier_yml = template / "copier.yml"
    copier_yml.write_text(copier_yml.read_text() + V2_QUESTION)
    env = template / "template" / "worker.env.yaml.jinja"
    env.write_text(env.read_text() + 'AIRFLOW__LOGGING__LOGGING_LEVEL: "{{ worker_log_level }}"\n')
    dockerfile = template / "template" / "Dockerfile.jinja"
    dockerfile.write_text(dockerfile.read_text().replace(V1_DOCKERFILE_LINE, V2_DOCKERFILE_LINE))
    (template / "template" / ".dockerignore").unlink()
    removed = template / "hooks" / "removed_files.txt"
    removed.write_text(removed.read_text() + ".dockerignore | v2.0.0 | the build context is now the whole repo\n")
    git(template, "add", "-A")
    git(template, "commit", "-q", "-m", "v2.0.0")
    git(template, "tag", "v2.0.0")


V2_QUESTION = """
worker_log_level:
  type: str
  help: The worker's log level.
  default: INFO
  choices: [DEBUG, INFO, WARNING]
"""
V1_DOCKERFILE_LINE = "# The team's packages: a change to them rebuilds only from this line on.\n"
V2_DOCKERFILE_LINE = "# The team's packages: changing them rebuilds the image from here down.\n"


def team_repo_at(template: Path, dst: Path, ref: str, answers: dict[str, Any] | None = None) -> Path:
    """A team renders the template at `ref` and commits the result, as the after-copy message says."""
    render(dst, {"team_name": dst.name, **(answers or {})}, src=template, vcs_ref=ref)
    git(dst, "init", "-q")
    git(dst, "add", "-A")
    git(dst, "commit", "-q", "-m", "Render edge-template")
    return dst


def copier_cli(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """copier's command line in a team repo, with no terminal (as a bot runs it)."""
    return subprocess.run(
        [sys.executable, "-m", "copier", *args], cwd=repo, capture_output=True, text=True, check=False,
        stdin=subprocess.DEVNULL,
    )


def leftovers(repo: Path) -> list[str]:
    """Files that a messy update leaves: .rej files and conflict markers."""
    found = [str(p) for p in rendered_files(repo, "*.rej")]
    for path in rendered_files(repo):
        lines = path.read_text(errors="replace").splitlines()
        if any(line.startswith(("<<<<<<< ", ">>>>>>> ")) for line in lines):
            found.append(str(path))
    return found


def sh_blocks(markdown: str) -> list[list[str]]:
    """The command lines of each ```sh block (comments after # dropped)."""
    blocks, current = [], None
    for line in markdown.splitlines():
        if line.strip().startswith("```"):
            if current is None and line.strip() == "```sh":
                current = []
            elif current is not None:
                blocks.append(current)
                current = None
            continue
        if current is not None and line.strip():
            current.append(re.sub(r"\s+#\s.*$", "", line).strip())
    return blocks


def load_module(path: Path, name: str) -> ModuleType:
    """A Python file of the template or its kit (as is: the code that runs) as a module."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module
