"""The platform's kit (platform/edge_site.py) reads each team from the pool its repo registers,
and decides for every team by that team's record only. Its closed loops on real central sites:
tests/e2e/test_workers_follow_their_queue.py (the one scaler, two elastic teams, the fleet view)
and tests/e2e/test_dead_worker_rows_are_cleaned_up.py (the clean-up across teams)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from xml.etree import ElementTree

import pytest
from support.templates import ROOT, copier_cli, leftovers, load_answers, load_module, release_after, team_repo_at

IDLE = 300


@pytest.fixture(scope="module")
def kit() -> ModuleType:
    return load_module(ROOT / "platform" / "edge_site.py", "edge_site")  # imports no Airflow at module level


def registered(kit: ModuleType, repo: Path) -> object:
    """The team the repo's pools.json registers, read as the kit reads the imported pool."""
    ((pool, entry),) = json.loads((repo / "pools.json").read_text()).items()
    return kit.team_from_pool(pool, entry["slots"], entry["description"])


def team(kit: ModuleType, **changes: object) -> object:
    record = {
        "team": "team-e",
        "queues": ["team_e_queue"],
        "worker_concurrency": 4,
        "project": "p-1234",
        "region": "europe-west1",
        "deployment_target": "worker-pool",
        "resource": "team-e-edge-worker",
        "instances_min": 0,
        "instances_max": 5,
        "elastic": True,
        "scale_in_idle_seconds": IDLE,
        "airflow_team": "",
        "release": "v1.2.0",
        **changes,
    }
    return kit.team_from_pool("team_e_pool", 20, "Tasks of team team-e. edge-template: " + json.dumps(record))


def test_every_team_repo_registers_its_team_in_its_pool(kit: ModuleType, matrix_repo: Path) -> None:
    answers = load_answers(matrix_repo)
    found = registered(kit, matrix_repo)
    target = answers["deployment_target"]
    elastic = bool(answers.get("autoscaling"))
    if target == "service":
        bounds = (answers["min_instances"], answers["max_instances"])
    elif elastic:
        bounds = (answers["scale_min"], answers["scale_max"])
    else:
        bounds = (answers["instances"], answers["instances"])
    assert (found.name, found.pool, found.slots, list(found.queues)) == (
        answers["team_name"],
        answers["pool_name"],
        answers["pool_slots"],
        answers["queues"],
    )
    assert (found.project, found.region, found.deployment_target, found.resource) == (
        answers["gcp_project_id"],
        answers["region"],
        target,
        f"{answers['team_name']}-edge-worker",
    )
    assert (found.worker_concurrency, found.instances_min, found.instances_max, found.elastic) == (
        answers["worker_concurrency"],
        *bounds,
        elastic,
    )
    kind = "workerPools" if target == "worker-pool" else "services"
    assert found.resource_path == (
        f"projects/{answers['gcp_project_id']}/locations/{answers['region']}/{kind}/{answers['team_name']}-edge-worker"
    )
    # The Pools page still reads as prose first.
    description = json.loads((matrix_repo / "pools.json").read_text())[answers["pool_name"]]["description"]
    assert description.startswith(f"Tasks of team {answers['team_name']} on its Edge worker (queues: ")


def test_a_pool_that_is_not_a_team_s_is_left_alone_and_a_broken_record_is_named(kit: ModuleType) -> None:
    warnings: list[str] = []
    good = "Tasks. edge-template: " + json.dumps({
        "team": "team-a", "queues": ["a"], "worker_concurrency": 2, "project": "p", "region": "r",
        "deployment_target": "service", "resource": "team-a-edge-worker", "instances_min": 1, "instances_max": 1,
        "elastic": False, "scale_in_idle_seconds": 600})  # fmt: skip
    teams = kit.teams_of(
        [
            ("default_pool", 128, "Default pool"),
            ("hand_made", 4, None),
            ("team_b_pool", 8, "Tasks. edge-template: {not json"),
            ("team_a_pool", 8, good),
        ],
        warnings.append,
    )
    assert [found.name for found in teams] == ["team-a"]
    assert len(warnings) == 1
    assert warnings[0].startswith("pool team_b_pool: its edge-template record cannot be read (JSONDecodeError")
    assert warnings[0].endswith("import the team's pools.json again")


@pytest.mark.parametrize(
    ("current", "active", "idle", "new"),
    [
        (0, 0, math.inf, None),  # idle at the minimum: nothing to do
        (0, 1, 0, 1),  # one task from zero
        (0, 20, 0, 5),  # a burst: straight to the maximum
        (1, 9, 0, 3),  # ceil(9 / 4)
        (3, 4, 0, None),  # fewer tasks while some run: never in
        (3, 0, IDLE - 1, None),  # idle, not long enough
        (3, 0, IDLE, 0),  # idle long enough: straight to the minimum
        (7, 2, 0, None),  # above the maximum (set by hand) while busy: left alone
    ],
)
def test_out_at_once_in_only_when_idle_and_straight_to_the_minimum(
    kit: ModuleType, current: int, active: int, idle: float, new: int | None
) -> None:
    assert kit.decide(team(kit), current, active, idle) == new


def test_each_team_counts_only_its_own_queues_and_airflow_team(kit: ModuleType) -> None:
    team_e = team(kit)
    team_f = team(kit, team="team-f", queues=["shared", "team_f_queue"], airflow_team="team_f")
    team_g = team(kit, team="team-g", queues=["shared"], airflow_team="team_g")
    jobs = [
        ("queued", "team_e_queue", 1, 100.0, None),
        ("running", "team_e_queue", 2, 150.0, None),
        ("success", "team_e_queue", 1, 200.0, None),  # done: only its time counts
        ("queued", "shared", 1, 50.0, "team_f"),
        ("running", "team_f_queue", 1, 60.0, "team_f"),
        ("queued", "shared", 3, 70.0, "team_g"),
        ("queued", "elsewhere", 9, 300.0, None),
    ]
    loads = kit.loads_of([team_e, team_f, team_g], jobs)
    assert (loads["team-e"].queued, loads["team-e"].running, loads["team-e"].newest) == (1, 2, 200.0)
    assert (loads["team-f"].queued, loads["team-f"].running, loads["team-f"].newest) == (1, 1, 60.0)
    assert (loads["team-g"].queued, loads["team-g"].running) == (3, 0)


def test_the_clean_up_takes_registered_teams_gone_rows_only(kit: ModuleType) -> None:
    teams = [team(kit), team(kit, team="team-a")]
    row = kit.WorkerRow
    rows = [
        row("team-e-0123456789", "offline", 7200),
        row("team-e-abcdefabcd", "unknown", 90000),
        row("team-a-0000000000", "offline maintenance", 4000),
        row("team-e-1111111111", "idle", 7200),
        row("team-e-2222222222", "offline", 60),  # younger than the bound
        row("team-x-3333333333", "offline", 90000),  # no registered team's
        row("team-e-extra-4444444444", "offline", 90000),  # another team's name that starts alike
        row("team-e", "offline", 90000),
        row("team-e-5555555555", "offline", None),
    ]
    remove, leave = kit.dead_rows(teams, rows, 3600)
    assert [found.name for found in remove] == [
        "team-e-0123456789",
        "team-e-abcdefabcd",
        "team-a-0000000000",
        "team-e-5555555555",
    ]
    assert [found.name for found in leave] == ["team-e-1111111111"]


def test_the_fleet_view_is_one_line_per_team(kit: ModuleType) -> None:
    team_e, team_s = (
        team(kit),
        team(
            kit,
            team="team-s",
            deployment_target="service",
            elastic=False,
            resource="team-s-edge-worker",
            instances_min=1,
            instances_max=3,
            release="",
        ),
    )
    row = kit.WorkerRow
    rows = [
        row("team-e-0123456789", "running", 1, "3.3.2", "5.1.0", 2),
        row("team-e-abcdefabcd", "idle", 2, "3.3.2", "5.1.0"),
        row("team-e-1111111111", "offline", 900),
        row("team-s-2222222222", "idle", 3, "3.3.1", "5.1.0"),
    ]
    loads = {"team-e": kit.Load(queued=3, running=2), "team-s": kit.Load()}
    lines = kit.fleet_table([team_e, team_s], loads, rows, {"team-e": "2"}, ("3.3.2", "5.1.0")).splitlines()
    assert lines[0].split() == [
        "team",
        "release",
        "pool",
        "target",
        "instances",
        "workers",
        "live",
        "gone",
        "versions",
        "queued",
        "running",
        "slots",
    ]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == [
        "team-e",
        "v1.2.0",
        "worker-pool",
        "team-e-edge-worker",
        "2",
        "of",
        "0-5",
        "1",
        "idle,",
        "1",
        "running",
        "1",
        "3.3.2/5.1.0",
        "3",
        "2",
        "20",
    ]
    assert lines[3].split() == [
        "team-s",
        "?",
        "service",
        "team-s-edge-worker",
        "?",
        "of",
        "1-3",
        "1",
        "idle",
        "0",
        "3.3.1/5.1.0",
        "(site",
        "3.3.2/5.1.0)",
        "0",
        "0",
        "20",
    ]


def test_the_fleet_view_sizes_parallelism_from_every_team(kit: ModuleType) -> None:
    teams = [team(kit), team(kit, team="team-f", worker_concurrency=2, instances_max=3)]  # 4 x 5 + 2 x 3
    assert kit.parallelism_line(teams, 32, "5.1.0") == "every team's Edge tasks at most: 26; [core] parallelism: 32"
    low = kit.parallelism_line(teams, 16, "5.1.0")
    assert low.startswith("every team's Edge tasks at most: 26; [core] parallelism: 16 (too low: edge3 5.1.0 counts")
    assert "raise it to at least 26" in low
    assert kit.parallelism_line(teams, 16, "1.5.0").endswith("(edge3 1.5.0 does not count Edge tasks against it)")


def test_the_teams_list_is_for_scripts(kit: ModuleType) -> None:
    lines = kit.teams_lines([team(kit), team(kit, team="team-s", project="p-9", deployment_target="service",
                                            resource="team-s-edge-worker", instances_max=2)]).splitlines()
    assert [line.split("\t") for line in lines] == [
        ["team", "project", "region", "target", "resource", "tasks_at_most"],
        ["team-e", "p-1234", "europe-west1", "worker-pool", "team-e-edge-worker", "20"],
        ["team-s", "p-9", "europe-west1", "service", "team-s-edge-worker", "8"],
    ]


# The last commit of main whose team repos carried their own scaler and clean-up.
BEFORE_THE_PLATFORM_KIT = "494737d"


def test_an_elastic_team_of_the_release_before_updates_to_a_registered_pool_and_no_copies_of_the_kit(
    kit: ModuleType, tmp_path: Path
) -> None:
    template = release_after(tmp_path / "template", BEFORE_THE_PLATFORM_KIT)
    elastic = {"autoscaling": True, "scale_min": 0, "scale_max": 4}
    repo = team_repo_at(template, tmp_path / "team-e", "v1.0.0", elastic)
    copies = ["central/remove_dead_workers.py", "central/scale_team_e_workers.py"]
    assert all((repo / path).exists() for path in copies)
    assert registered(kit, repo) is None  # the old pool registers no team: the kit cannot see it

    result = copier_cli(repo, "update", "--skip-answered", "--defaults", "--vcs-ref", "v2.0.0")

    assert result.returncode == 0, result.stderr
    assert leftovers(repo) == []
    assert [path for path in copies if (repo / path).exists()] == []  # copier removed what moved
    found = registered(kit, repo)
    assert (found.name, found.elastic, found.instances_min, found.instances_max) == ("team-e", True, 0, 4)
    # The central notes send the admins to the kit, and to import the new pools.json.
    notes = " ".join((repo / "central" / "README.md").read_text().split())
    assert "Import `pools.json` again whenever it changes" in notes
    assert "python edge_site.py scale" in notes


SVG = "{http://www.w3.org/2000/svg}"


def test_the_scaler_history_draws_as_a_picture_without_airflow(kit: ModuleType, tmp_path: Path) -> None:
    history = tmp_path / "steps.csv"
    kit.append_history(str(history), 100.0, [("team-e", 0, 0, 0), ("team-f", 0, 0, 1)])
    kit.append_history(str(history), 115.0, [("team-e", 16, 4, 3), ("team-f", 0, 0, 1)])
    kit.append_history(str(history), 130.0, [("team-e", 0, 0, 0), ("team-f", 1, 1, 2)])
    assert history.read_text().splitlines()[:2] == ["time,team,queued,running,instances", "100.0,team-e,0,0,0"]
    assert kit.read_history(str(history)) == {"team-e": [(100.0, 0, 0), (115.0, 20, 3), (130.0, 0, 0)],
                                               "team-f": [(100.0, 0, 1), (115.0, 0, 1), (130.0, 2, 2)]}

    # The command needs no Airflow: the dev venv runs it.
    out = tmp_path / "fleet.svg"
    drawn = subprocess.run([sys.executable, str(ROOT / "platform" / "edge_site.py"), "chart", str(history),
                            "--out", str(out)], capture_output=True, text=True, timeout=60, check=False)
    assert drawn.returncode == 0, drawn.stderr
    svg = ElementTree.fromstring(out.read_text())  # noqa: S314 - the kit's own output
    panels = {panel.get("id"): panel for panel in svg.findall(f"{SVG}g")}
    assert list(panels) == ["team-e", "team-f"]
    for team, peak in (("team-e", 20), ("team-f", 2)):
        lines = {line.get("class"): [tuple(map(float, point.split(","))) for point in line.get("points").split()]
                 for line in panels[team].findall(f"{SVG}polyline")}
        assert len(lines["backlog"]) == 3
        assert len(lines["instances"]) == 5  # a step line: each count holds until the next step
        assert f"{team} (peak {peak})" in "".join(panels[team].itertext())
        assert all(0 <= y <= float(svg.get("height")) for _, y in lines["backlog"] + lines["instances"])
    # The peak of team-e's backlog is the top of its panel; its instances never reach it.
    e = {line.get("class"): line.get("points").split() for line in panels["team-e"].findall(f"{SVG}polyline")}
    backlog_y = [float(point.split(",")[1]) for point in e["backlog"]]
    assert min(backlog_y) == float(panels["team-e"].find(f"{SVG}rect").get("y"))

    empty = tmp_path / "empty.csv"
    empty.write_text("time,team,queued,running,instances\n")
    refused = subprocess.run([sys.executable, str(ROOT / "platform" / "edge_site.py"), "chart", str(empty)],
                             capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 1
    assert refused.stderr == f"{empty}: no scaler step recorded yet\n"
