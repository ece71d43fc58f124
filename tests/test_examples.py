"""The committed example team repos are exactly what the template renders from their answers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import ROOT, rendered_files

sys.path.insert(0, str(ROOT / "scripts"))
from render_examples import EXAMPLES, render_example  # noqa: E402

ANSWER_FILES = sorted(EXAMPLES.glob("*.yml"))


def tree(repo: Path) -> dict[str, bytes]:
    return {str(p.relative_to(repo)): p.read_bytes() for p in rendered_files(repo)}


def test_there_is_an_example() -> None:
    assert [p.name for p in ANSWER_FILES] == ["team-c.yml"]


@pytest.mark.parametrize("answers_file", ANSWER_FILES, ids=[p.stem for p in ANSWER_FILES])
def test_committed_example_matches_a_fresh_render(answers_file: Path, tmp_path: Path) -> None:
    fresh = render_example(answers_file, tmp_path / answers_file.stem)
    committed = EXAMPLES / answers_file.stem
    stale = sorted(
        name for name in tree(fresh).keys() | tree(committed).keys()
        if tree(fresh).get(name) != tree(committed).get(name)
    )
    assert stale == [], "the example is stale: run `python3 scripts/dev.py examples` and commit the diff"
    modes = {str(p.relative_to(committed)): p.stat().st_mode & 0o111 for p in rendered_files(committed)}
    assert modes == {str(p.relative_to(fresh)): p.stat().st_mode & 0o111 for p in rendered_files(fresh)}
