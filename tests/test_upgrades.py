"""A team upgrades Airflow when its central site does, with the command its README gives."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.templates import load_answers, release_with_old_copier_yml, render, team_repo_at
from support.upgrades import assert_built_for, upgrade

# The question a release before base_image_repository asked (the FROM line kept its answer).
OLD_BASE_IMAGE_QUESTION = """base_image:
  type: str
  help: The image the worker builds FROM.
  default: "apache/airflow:{{ airflow_version }}-python{{ python_version }}"

"""


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (("2.10.3", "1.5.0"), ("2.10.5", "1.5.0")),
        (("3.2.2", "5.1.0"), ("3.3.2", "5.1.0")),
        (("2.10.5", "1.5.0"), ("3.3.2", "5.1.0")),
    ],
    ids=["2.10.3-to-2.10.5", "3.2.2-to-3.3.2", "2.10.5-to-3.3.2"],
)
def test_the_readme_upgrade_moves_the_image_the_pins_and_the_settings(
    template_releases: Path, tmp_path: Path, before: tuple[str, str], after: tuple[str, str]
) -> None:
    repo = team_repo_at(template_releases, tmp_path / "team-c", "v1.0.0",
                        {"airflow_version": before[0], "edge_provider_version": before[1]})
    assert_built_for(repo, *before)

    upgrade(repo, *after)

    assert_built_for(repo, *after)


def test_a_python_upgrade_moves_the_image_too(template_releases: Path, tmp_path: Path) -> None:
    repo = team_repo_at(template_releases, tmp_path / "team-c", "v1.0.0", {"airflow_version": "3.3.2"})
    result = subprocess.run([sys.executable, "-m", "copier", "update", "--defaults", "--data", "python_version=3.11"],
                            cwd=repo, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert_built_for(repo, "3.3.2", "5.1.0", python="3.11")


@pytest.fixture
def release_with_base_image_question(tmp_path: Path) -> Path:
    """v1.0.0 asks base_image as a question (as releases before base_image_repository did); v2.0.0 is today's."""

    def old(today: str) -> str:
        return today[: today.index("base_image_variant:\n")] + OLD_BASE_IMAGE_QUESTION + today[
            today.index("secret_env_var:\n"):]

    return release_with_old_copier_yml(tmp_path / "edge-template", old, "with base_image as a question")


def test_a_repo_rendered_before_base_image_repository_keeps_its_mirror_and_its_regular_image(
    release_with_base_image_question: Path, tmp_path: Path
) -> None:
    mirror = "europe-docker.pkg.dev/acme/mirror/apache/airflow"
    repo = team_repo_at(release_with_base_image_question, tmp_path / "team-c", "v1.0.0",
                        {"airflow_version": "3.2.2", "base_image": f"{mirror}:3.2.2-python3.12"})
    assert load_answers(repo)["base_image"] == f"{mirror}:3.2.2-python3.12"

    upgrade(repo, "3.3.2", "5.1.0")

    answers = load_answers(repo)
    assert answers["_commit"] == "v2.0.0"
    assert answers["base_image_repository"] == mirror
    assert "base_image" not in answers
    # The image it built before (the regular one) stays: slim would drop the providers its tasks may use.
    assert answers["base_image_variant"] == "regular"
    assert_built_for(repo, "3.3.2", "5.1.0", base=mirror, variant="regular")


@pytest.fixture
def release_before_base_image_variant(tmp_path: Path) -> Path:
    """v1.0.0 builds FROM the regular image with no base_image_variant question; v2.0.0 is today's."""

    def old(today: str) -> str:
        before = today[: today.index("base_image_variant:\n")] + today[today.index("base_image_repository:\n"):]
        tag = re.search(r"^base_image_tag:\n(?:  .*\n)*?  default: .*\n", before, re.MULTILINE)
        assert tag
        return before.replace(tag.group(0), 'base_image_tag:\n  type: str\n  when: false\n'
                                             '  default: "{{ airflow_version }}-python{{ python_version }}"\n')

    return release_with_old_copier_yml(tmp_path / "edge-template", old, "before base_image_variant")


def test_a_repo_rendered_before_base_image_variant_keeps_the_regular_image(
    release_before_base_image_variant: Path, tmp_path: Path
) -> None:
    repo = team_repo_at(release_before_base_image_variant, tmp_path / "team-c", "v1.0.0", {"airflow_version": "3.3.2"})
    assert_built_for(repo, "3.3.2", "5.1.0", variant="regular")

    result = subprocess.run([sys.executable, "-m", "copier", "update", "--defaults"], cwd=repo, capture_output=True,
                            text=True, check=False, stdin=subprocess.DEVNULL)

    assert result.returncode == 0, result.stderr
    assert load_answers(repo)["base_image_variant"] == "regular"
    assert_built_for(repo, "3.3.2", "5.1.0", variant="regular")


def test_a_new_repo_starts_slim_even_with_its_mirror_given_on_the_command_line(tmp_path: Path) -> None:
    mirror = "europe-docker.pkg.dev/acme/mirror/apache/airflow"
    repo = render(tmp_path / "team-c", {"team_name": "team-c", "airflow_version": "3.3.2",
                                        "base_image_repository": mirror})

    assert load_answers(repo)["base_image_variant"] == "slim"
    assert_built_for(repo, "3.3.2", "5.1.0", base=mirror)
