"""A team answers the questions: good answers render, bad ones stop copier with a clear rule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from support.matrix import BAD_ANSWERS
from support.templates import ROOT, load_answers, render


@pytest.mark.parametrize(
    ("question", "value", "others", "rule"),
    BAD_ANSWERS,
    ids=[f"{q}={v!r}" for q, v, _, _ in BAD_ANSWERS],
)
def test_bad_answer_stops_copier_and_creates_nothing(
    tmp_path: Path, question: str, value: Any, others: dict[str, Any], rule: str
) -> None:
    dst = tmp_path / "team-c"
    stop = r"(Validation error for question|Invalid choice for) '" + question + "'"
    with pytest.raises(ValueError, match=stop) as err:
        render(dst, {"team_name": "team-c", **others, question: value})
    assert rule in " ".join(str(err.value).split())  # the rule as a reader sees it, however it wraps
    assert not dst.exists()


def test_at_least_25_distinct_bad_answers_are_covered() -> None:
    assert len({(q, repr(v)) for q, v, _, _ in BAD_ANSWERS}) >= 25


def test_cli_prints_the_rule_and_exits_non_zero(tmp_path: Path) -> None:
    dst = tmp_path / "team-c"
    result = subprocess.run(
        [sys.executable, "-m", "copier", "copy", "--defaults", "--vcs-ref", "HEAD", "--data", "region=mars-north1",
         str(ROOT), str(dst)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "Validation error for question 'region'" in result.stderr
    assert "must be a Cloud Run region" in result.stderr
    assert not dst.exists()


def test_team_name_defaults_to_the_destination_folder(render_to) -> None:
    repo = render_to({}, name="team-c")
    answers = load_answers(repo)
    assert answers["team_name"] == "team-c"
    assert answers["queues"] == ["team_c_queue"]
    assert answers["pool_name"] == "team_c_pool"


@pytest.mark.parametrize(
    ("answers", "expected_edge"),
    [
        ({"airflow_version": "2.10.5"}, "1.5.0"),
        ({"airflow_version": "2.10.0"}, "1.5.0"),
        ({"airflow_version": "3.3.2"}, "5.1.0"),
        ({"airflow_version": "3.0.6", "python_version": "3.10"}, "4.3.2"),
    ],
)
def test_edge_provider_version_follows_airflow_version(render_to, answers, expected_edge) -> None:
    repo = render_to({"team_name": "team-c", **answers})
    assert load_answers(repo)["edge_provider_version"] == expected_edge
    assert f'"apache-airflow-providers-edge3=={expected_edge}"' in (repo / "Dockerfile").read_text()


@pytest.mark.parametrize(("airflow_version", "poll"), [("2.10.5", 1), ("3.3.2", 5)])
def test_job_poll_interval_default_lets_a_shutdown_fit_cloud_run(render_to, airflow_version, poll) -> None:
    repo = render_to({"team_name": "team-c", "airflow_version": airflow_version})
    assert load_answers(repo)["job_poll_interval"] == poll
    assert f'AIRFLOW__EDGE__JOB_POLL_INTERVAL: "{poll}"' in (repo / "worker.env.yaml").read_text()


def test_every_question_has_a_default_so_bots_never_hit_a_prompt(tmp_path: Path) -> None:
    """`copier copy --defaults` with no --data and no terminal must succeed."""
    dst = tmp_path / "team-x"
    result = subprocess.run(
        [sys.executable, "-m", "copier", "copy", "--defaults", "--quiet", "--vcs-ref", "HEAD", str(ROOT), str(dst)],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert load_answers(dst)["team_name"] == "team-x"


def test_pep_508_spaces_are_taken_and_requirements_txt_is_written_without_them(render_to) -> None:
    deps = ["pandas >= 2.2", "requests [socks] >=2.32, <3", "numpy~=2.1"]
    repo = render_to({"team_name": "team-c", "python_deps": deps})
    for dep in deps:
        Requirement(dep)  # what pip reads
    lines = (repo / "requirements.txt").read_text().splitlines()[-3:]
    assert lines == ["pandas>=2.2", "requests[socks]>=2.32,<3", "numpy~=2.1"]
    assert [str(Requirement(line)) for line in lines] == [str(Requirement(dep)) for dep in deps]
    assert load_answers(repo)["python_deps"] == deps
