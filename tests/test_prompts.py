"""A person answers at copier's real prompt, on an 80-column terminal.

Copier shows each help line as it is (cut at the screen edge), shows only the first line
of an error while a question is asked, and runs no question validator on a choice picked
with the arrow keys. So: help lines fit, errors start with the rule, and an impossible
choice is disabled in the list rather than accepted.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pexpect
import pytest
import yaml
from support.matrix import BAD_ANSWERS
from support.templates import ROOT, load_answers, render, snapshot_template, template_questions, tool
from support.upgrades import release, write_site

COLUMNS = 80
DOWN, ENTER = "\x1b[B", "\r"
PROMPT_PREFIX = 3  # copier's "🎤 " before the first help line: the emoji is two columns wide
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
QUESTIONS = template_questions()


def copier_prompt(dst: Path, data: dict[str, Any], src: Path = ROOT) -> pexpect.spawn:
    """copier copy on a pseudo-terminal of 80 columns, with `data` answered on the command line."""
    args = ["copy", "--vcs-ref", "HEAD"]
    for name, value in data.items():
        args += ["--data", f"{name}={value}"]
    return pexpect.spawn(
        tool("copier"), [*args, str(src), str(dst)], dimensions=(40, COLUMNS), encoding="utf-8", timeout=60,
        env={**os.environ, "TERM": "xterm", "COLUMNS": str(COLUMNS), "LINES": "40"},
    )


# Every team question but the two a test answers by hand (the site's facts come from sites/).
OTHER_ANSWERS = {
    "team_name": "team-c", "gcp_project_id": "my-gcp-project", "region": "europe-west1",
    "queues": "[team_c_queue]", "pool_name": "team_c_pool", "pool_slots": 8, "python_deps": "[]",
    "autoscaling": False, "scale_min": 0, "scale_max": 3,
    "instances": 1, "min_instances": 1, "max_instances": 1, "worker_concurrency": 4, "cpu": "1", "memory": "2Gi",
    "vpc_connector": "edge-connector", "vpc_network": "default", "vpc_subnet": "default",
    "remote_logging": False, "remote_log_folder": "gs://my-gcp-project-airflow-logs/team-c",
}
# A data team's default path (one site, a fixed worker pool) asks at most this many questions.
MOST_PROMPTS_ON_THE_DEFAULT_PATH = 15


def pick(child: pexpect.spawn, question_help: str, last_choice: str, moves: int) -> str:
    """Wait for a select prompt down to its last choice, move down `moves` times, press Enter.

    Returns the text of the list as shown.
    """
    child.expect_exact(question_help)
    child.expect_exact("(Use arrow keys)")
    child.expect_exact(last_choice)
    shown = ANSI.sub("", child.before + child.after)
    child.send(DOWN * moves + ENTER)
    return shown


def finish(child: pexpect.spawn) -> None:
    child.expect(pexpect.EOF, timeout=120)
    child.close()
    assert child.exitstatus == 0, child.before


def test_a_worker_pool_cannot_pick_a_vpc_connector(tmp_path: Path) -> None:
    child = copier_prompt(tmp_path / "team-c", OTHER_ANSWERS)
    pick(child, "Where the worker runs on Cloud Run.", "service", moves=0)  # worker-pool
    # Two steps down from "none": direct-vpc, then past the disabled vpc-connector back to none.
    shown = pick(child, "How the worker reaches a private central site.", "Direct VPC only)", moves=2)
    finish(child)

    assert "vpc-connector (worker pools support Direct VPC only)" in shown
    answers = load_answers(tmp_path / "team-c")
    assert answers["deployment_target"] == "worker-pool"
    assert answers["network_mode"] == "none"
    assert "--vpc-connector" not in (tmp_path / "team-c" / "deploy.sh").read_text().split("# --- Plain bash")[0]


def test_a_service_can_pick_a_vpc_connector(tmp_path: Path) -> None:
    child = copier_prompt(tmp_path / "team-c", OTHER_ANSWERS)
    pick(child, "Where the worker runs on Cloud Run.", "service", moves=1)
    shown = pick(child, "How the worker reaches a private central site.", "vpc-connector", moves=2)
    finish(child)

    assert "Direct VPC only" not in shown
    answers = load_answers(tmp_path / "team-c")
    assert (answers["deployment_target"], answers["network_mode"]) == ("service", "vpc-connector")


def test_the_disabled_choice_is_refused_from_data_too(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Invalid choice for 'network_mode': worker pools support Direct VPC only"):
        render(tmp_path / "team-c", {"team_name": "team-c", "network_mode": "vpc-connector"})
    assert not (tmp_path / "team-c").exists()


def test_a_default_copy_asks_only_the_team_s_questions(tmp_path: Path) -> None:
    """Enter at every prompt, as a new user would: the site's facts are never asked."""
    child = copier_prompt(tmp_path / "team-c", {})
    asked = []
    while child.expect(["🎤", pexpect.EOF], timeout=60) == 0:
        child.expect(r"\r?\n")  # the question's first help line
        shown = ANSI.sub("", child.before).strip()
        if asked and shown == asked[-1]:
            continue  # copier shows an answered question again, with its answer
        asked.append(shown)
        child.send(ENTER)
    child.close()

    assert child.exitstatus == 0, child.before
    assert 0 < len(asked) <= MOST_PROMPTS_ON_THE_DEFAULT_PATH, asked
    answers = yaml.safe_load((tmp_path / "team-c" / ".copier-answers.yml").read_text())
    recorded = [name for name in answers if not name.startswith("_")]
    # Every recorded answer but the site (one site: not asked) was a prompt; no site fact is among them.
    assert len(recorded) == len(asked) + 1, (recorded, asked)
    assert answers["site"] == "prod"
    for fact in ("airflow_version", "edge_api_url", "edge_secret_name", "dags_bucket", "artifact_registry_repo"):
        assert fact not in recorded


def test_with_two_sites_the_team_is_asked_which_first(tmp_path: Path) -> None:
    template = snapshot_template(tmp_path / "edge-template")
    write_site(template, "staging", airflow_version="3.3.2", edge_provider_version="5.1.0")
    release(template, "v1.1.0")
    answers = {**{k: v for k, v in OTHER_ANSWERS.items() if k != "team_name"}, "deployment_target": "worker-pool",
               "network_mode": "none"}
    child = copier_prompt(tmp_path / "team-c", answers, template)

    child.expect_exact("The central Airflow site your worker joins: prod, staging.")
    child.expect_exact("prod")  # the default, filled in
    child.send("\x15staging" + ENTER)  # Ctrl-U clears it
    child.expect_exact("Your team's short name")
    child.sendline("")
    finish(child)

    answers = load_answers(tmp_path / "team-c")
    assert (answers["site"], answers["airflow_version"]) == ("staging", "3.3.2")


def test_the_first_question_reads_in_full_at_80_columns(tmp_path: Path) -> None:
    child = copier_prompt(tmp_path / "team-c", {})
    child.expect_exact("team-c")  # the default, on the line below the help
    screen = ANSI.sub("", child.before)
    child.sendcontrol("c")
    child.close()

    help_lines = QUESTIONS["team_name"]["help"].splitlines()
    for line in help_lines:
        assert line in screen


def visible_questions() -> dict[str, dict[str, Any]]:
    return {
        name: spec for name, spec in QUESTIONS.items()
        if isinstance(spec, dict) and not name.startswith("_") and spec.get("when") is not False
    }


@pytest.mark.parametrize("name", sorted(visible_questions()))
def test_every_help_line_fits_80_columns(name: str) -> None:
    help_text = visible_questions()[name]["help"]
    # Rendered values ({{ ... }}) are a few characters at most: count them as 6.
    lines = [re.sub(r"\{\{.*?\}\}", "x" * 6, line) for line in help_text.splitlines()]
    assert len(lines[0]) + PROMPT_PREFIX <= COLUMNS, lines[0]
    assert all(len(line) <= COLUMNS for line in lines), lines


# Our own errors: not copier's "'x' is not in [...]" for a value outside a choice list,
# which a prompt cannot produce (a select offers only its choices).
OUR_ERRORS = [
    (q, v, o) for q, v, o, _ in BAD_ANSWERS
    if "choices" not in QUESTIONS[q] or (isinstance(QUESTIONS[q]["choices"], dict) and v in QUESTIONS[q]["choices"])
]


@pytest.mark.parametrize(("question", "value", "others"), OUR_ERRORS, ids=[f"{q}={v!r}" for q, v, _ in OUR_ERRORS])
def test_every_error_starts_with_a_rule_that_fits_one_line(tmp_path: Path, question: str, value, others) -> None:
    with pytest.raises(ValueError, match=question) as err:
        render(tmp_path / "team-c", {"team_name": "team-c", **others, question: value})
    message = str(err.value)
    first, *rest = message.splitlines()
    assert len(first) <= COLUMNS, first
    # Detail lines wrap too, but for the value a person typed, which may be long.
    typed = [str(value), *(map(str, value) if isinstance(value, list) else [])]

    def without_typed(line: str) -> str:
        for text in typed:
            line = line.replace(text, "x") if text else line
        return line

    assert all(len(without_typed(line)) <= COLUMNS for line in rest), rest
