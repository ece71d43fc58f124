"""Two instances of one rendered repo (Cloud Run scaling out) register under different names."""

from __future__ import annotations

from support.sites import Site


def test_two_instances_of_one_repo_register_under_different_names(site: Site) -> None:
    with site.running(site.team_c, "instance-1") as (first, name_1), \
            site.running(site.team_c, "instance-2") as (second, name_2):
        assert name_1 != name_2
        assert name_1.startswith("team-c-")
        assert name_2.startswith("team-c-")
        rows = site.central.worker_rows()
        assert rows[name_1] in ("idle", "running")
        assert rows[name_2] in ("idle", "running")
        assert first.proc.alive()
        assert second.proc.alive()
