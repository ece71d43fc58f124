"""The platform team upgrades a central site with one release of its site profile; every team repo
of that site follows with an unattended `copier update`, no --data."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.templates import snapshot_template, team_repo_at
from support.upgrades import assert_built_for, site_release, take_release, write_site

# A site's Airflow line and edge3, before and after an upgrade.
UPGRADES = [
    (("2.10.5", "1.5.0"), ("2.11.2", "1.6.0")),  # 1.6.0 requires 2.11: both move in one release
    (("3.2.2", "5.1.0"), ("3.3.2", "5.1.0")),
    (("2.10.5", "1.5.0"), ("3.3.2", "5.1.0")),
]


@pytest.mark.parametrize(("before", "after"), UPGRADES, ids=["2.10.5-to-2.11.2", "3.2.2-to-3.3.2", "2.10.5-to-3.3.2"])
def test_a_site_upgrade_moves_the_image_the_pins_and_the_settings(
    tmp_path: Path, before: tuple[str, str], after: tuple[str, str]
) -> None:
    template = snapshot_template(tmp_path / "edge-template")
    site_release(template, "v1.1.0", airflow_version=before[0], edge_provider_version=before[1])
    repo = team_repo_at(template, tmp_path / "team-c", "v1.1.0")
    assert_built_for(repo, *before)

    site_release(template, "v1.2.0", airflow_version=after[0], edge_provider_version=after[1])
    take_release(repo, "v1.2.0")

    assert_built_for(repo, *after)


def test_a_site_s_python_and_mirror_move_the_image_too(tmp_path: Path) -> None:
    mirror = "europe-docker.pkg.dev/acme/mirror/apache/airflow"
    template = snapshot_template(tmp_path / "edge-template")
    site_release(template, "v1.1.0", airflow_version="3.3.2", edge_provider_version="5.1.0")
    repo = team_repo_at(template, tmp_path / "team-c", "v1.1.0")

    site_release(template, "v1.2.0", airflow_version="3.3.2", edge_provider_version="5.1.0", python_version="3.11",
                 base_image_repository=mirror, base_image_variant="regular")
    take_release(repo, "v1.2.0")

    assert_built_for(repo, "3.3.2", "5.1.0", python="3.11", base=mirror, variant="regular")


def test_a_team_that_joins_another_site_follows_that_site(tmp_path: Path) -> None:
    template = snapshot_template(tmp_path / "edge-template")
    write_site(template, "staging", airflow_version="3.3.2", edge_provider_version="5.1.0")
    site_release(template, "v1.1.0")
    repo = team_repo_at(template, tmp_path / "team-c", "v1.1.0")
    assert_built_for(repo, "2.10.5", "1.5.0")

    write_site(template, "staging", airflow_version="3.3.1", edge_provider_version="5.1.0")
    site_release(template, "v1.2.0")
    take_release(repo, "v1.2.0")
    assert_built_for(repo, "2.10.5", "1.5.0")  # prod did not move

    take_release(repo, "v1.2.0", "site=staging")
    assert_built_for(repo, "3.3.1", "5.1.0")
