"""Real central sites (Airflow 2 on PostgreSQL, Airflow 3 on SQLite) with two rendered teams."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from support import harness
from support.sites import ALL_TRACKS, MAIN_TRACKS, TRACKS, Site, running_site


@pytest.fixture(scope="session")
def edge_secret() -> str:
    # Made at run time, never written to a file: the hygiene test looks for it everywhere.
    return secrets.token_urlsafe(64)


# tryfirst: xdist names each test's group from its xdist_group mark in this same hook; the
# mark must be there before, whatever order the plugins were loaded in.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The site fixture is parametrized over every track; a test runs on the main tracks, or on
    those its @pytest.mark.tracks(NAME, ...) names. The rest are deselected (not skipped).

    The tests of one track share its central site (session-scoped, one per test process): they
    are one xdist_group, run by one process, so that each site starts once; the groups and the
    tests without a site run side by side (scripts/dev.py test: --dist loadgroup)."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        track = callspec.params.get("site") if callspec else None
        marker = item.get_closest_marker("tracks")
        wanted = marker.args if marker else MAIN_TRACKS
        (keep if track is None or track in wanted else drop).append(item)
        if track is not None:
            item.add_marker(pytest.mark.xdist_group(f"site-{track}"))
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session", params=ALL_TRACKS)
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, edge_secret: str) -> Iterator[Site]:
    track = TRACKS[request.param]
    if track.postgres and harness.postgres_bin() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are missing: apt-get install postgresql")
    with running_site(track, tmp_path_factory.mktemp(track.name), edge_secret) as site:
        yield site
