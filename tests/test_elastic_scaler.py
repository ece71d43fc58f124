"""The scaler's rule, as rendered (central/scale_<team>_workers.py of the elastic answer set):
out at once to ceil(slots / concurrency) within the bounds; in only when idle long enough, and
then straight to the minimum. The closed loop is tests/e2e/test_workers_follow_their_queue.py."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from types import ModuleType

import pytest
from gcloud_stub import Team

# af3-pool-elastic: worker_concurrency 4, scale_min 0, scale_max 5, scale_in_idle_seconds 300.
IDLE = 300


@pytest.fixture(scope="module")
def scaler(team_of: Callable[[str], Team]) -> ModuleType:
    path = team_of("af3-pool-elastic").repo / "central" / "scale_team_e_workers.py"
    spec = importlib.util.spec_from_file_location("scale_team_e_workers", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports no Airflow at module level
    return module


def test_the_rendered_constants_are_the_answers(scaler: ModuleType) -> None:
    assert (scaler.PROJECT, scaler.REGION, scaler.WORKER_POOL) == ("my-gcp-project", "europe-west1",
                                                                  "team-e-edge-worker")
    assert scaler.QUEUES == ["team_e_queue", "team_e_heavy"]
    assert (scaler.WORKER_CONCURRENCY, scaler.SCALE_MIN, scaler.SCALE_MAX, scaler.SCALE_IN_IDLE_SECONDS) == (
        4, 0, 5, IDLE)
    assert scaler.POOL_URL == (
        "https://run.googleapis.com/v2/projects/my-gcp-project/locations/europe-west1/workerPools/team-e-edge-worker"
    )


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
    scaler: ModuleType, current: int, active: int, idle: float, new: int | None
) -> None:
    assert scaler.decide(current, active, idle) == new
