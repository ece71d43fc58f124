"""On a central site in Airflow's multi-team mode, each team's worker runs its own team's tasks,
never another team's, even when both teams serve the same queue name.

A real Airflow 3.3.2 site with `[core] multi_team` on, set up as each team's rendered
central/README.md says: the Airflow teams created, a global executor and one EdgeExecutor per
team, one DAG bundle per team. Two teams whose site profile says `multi_team: true`, both
serving the queue `shared_queue`; their rendered workers run with `--team-name`."""

from __future__ import annotations

from pathlib import Path

from support import harness
from support.sites import TRACKS, Site, running_central_site, site_answers
from support.templates import render


def test_each_team_s_worker_runs_its_team_s_tasks_and_never_the_other_s(tmp_path: Path, edge_secret: str) -> None:
    track = TRACKS["airflow3"]
    port = harness.free_port()
    common = site_answers(track, port, multi_team=True, queues=["shared_queue"])
    team_a = render(tmp_path / "team-a", {"team_name": "team-a", **common})
    team_b = render(tmp_path / "team-b", {"team_name": "team-b", **common})
    logs = tmp_path / "logs"
    with running_central_site(track, tmp_path, port, edge_secret, [team_a, team_b], logs) as central:
        site = Site(track, central, central.venv, team_a, team_b, logs, edge_secret, common)
        with site.running(team_b, "team-b-worker"):
            run_a = central.trigger("team_a_example")
            run_b = central.trigger("team_b_example")
            done_b = site.finished("team_b_example", run_b)
            waiting_a = central.task_instance("team_a_example", run_a)

        # Team b's worker took team b's task, and left team a's queued on the queue both serve.
        assert done_b["state"] == "success", done_b
        assert done_b["hostname"].startswith("team-b"), done_b
        assert waiting_a is not None, "team a's task was never scheduled"
        assert waiting_a["state"] in ("scheduled", "queued"), waiting_a
        assert waiting_a["queue"] == done_b["queue"] == "shared_queue"

        with site.running(team_a, "team-a-worker"):
            done_a = site.finished("team_a_example", run_a)
        assert done_a["state"] == "success", done_a
        assert done_a["hostname"].startswith("team-a"), done_a

        # Each job ran once, tagged with its team, on its team's worker.
        jobs = central.query("SELECT dag_id, team_name, edge_worker, try_number FROM edge_job ORDER BY dag_id")
        assert [(dag, team, worker.split("-")[1], int(tries)) for dag, team, worker, tries in jobs] == [
            ("team_a_example", "team_a", "a", 1),
            ("team_b_example", "team_b", "b", 1),
        ]
        rows = central.query("SELECT worker_name, team_name FROM edge_worker")
        workers = {name.split("-")[1]: team for name, team in rows}
        assert workers == {"a": "team_a", "b": "team_b"}
