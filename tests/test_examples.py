"""The committed example team repos are exactly what the template renders from their answers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from support.templates import ROOT, git, rendered_files

sys.path.insert(0, str(ROOT / "scripts"))
from render_examples import EXAMPLES, render_example  # noqa: E402

ANSWER_FILES = sorted(EXAMPLES.glob("*.yml"))


def tree(repo: Path, git_view: bool = False) -> dict[str, bytes]:
    """The repo's files; with git_view, as git sees them (a linter's cache left in the checkout is ignored)."""
    files = {str(p.relative_to(repo)): p.read_bytes() for p in rendered_files(repo)}
    if not git_view:
        return files
    listed = git(repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard", ".").split("\0")
    return {name: data for name, data in files.items() if name in set(listed)}


def test_there_is_an_example() -> None:
    assert [p.name for p in ANSWER_FILES] == ["team-c.yml"]


@pytest.mark.parametrize("answers_file", ANSWER_FILES, ids=[p.stem for p in ANSWER_FILES])
def test_committed_example_matches_a_fresh_render(answers_file: Path, tmp_path: Path) -> None:
    fresh = render_example(answers_file, tmp_path / answers_file.stem)
    committed = EXAMPLES / answers_file.stem
    fresh_tree, committed_tree = tree(fresh), tree(committed, git_view=True)
    stale = sorted(
        name for name in fresh_tree.keys() | committed_tree.keys() if fresh_tree.get(name) != committed_tree.get(name)
    )
    assert stale == [], "the example is stale: run `python3 scripts/dev.py examples` and commit the diff"
    modes = {str(p.relative_to(committed)): p.stat().st_mode & 0o111 for p in rendered_files(committed)}
    assert modes == {str(p.relative_to(fresh)): p.stat().st_mode & 0o111 for p in rendered_files(fresh)}
