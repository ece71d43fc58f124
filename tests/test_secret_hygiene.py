"""The Edge secret's value never reaches a rendered file, the answers file or the deploy plan.

(The end-to-end runs scan their worker and central logs too: tests/e2e/test_secret_never_leaks.py.)
"""

from __future__ import annotations

import secrets
from pathlib import Path

from gcloud_stub import GcloudStub, Team
from support.matrix import MatrixCase
from support.templates import load_answers, rendered_files, template_questions


def test_no_question_asks_for_a_secret_value() -> None:
    config = template_questions()
    asked = {name: spec for name, spec in config.items() if not name.startswith("_") and spec.get("when") is not False}
    assert not [name for name, spec in asked.items() if spec.get("secret")]
    secretive = [name for name in asked if any(word in name for word in ("secret", "password", "token", "key"))]
    assert secretive == []  # the secret's name is a fact of the site (sites/), its value is nowhere
    assert config["edge_secret_name"]["when"] is False


def test_a_secret_passed_by_mistake_is_not_stored(render_to) -> None:
    value = secrets.token_urlsafe(48)
    repo = render_to({"team_name": "team-c", "edge_shared_secret": value, "jwt_secret": value})
    holders = [str(p) for p in rendered_files(repo) if value in p.read_text()]
    assert holders == []


def test_the_deploy_plan_never_holds_the_secret(matrix_case: MatrixCase, tmp_path: Path) -> None:
    value = secrets.token_urlsafe(48)
    team = Team(matrix_case.repo, load_answers(matrix_case.repo))
    stub = GcloudStub.create(tmp_path, team)
    stub.load("nothing-exists")
    # Even with the value in the environment (as on a worker), nothing prints or stores it.
    result = stub.run("--dry-run", "--tag", "abc1234", "all", EDGE_SHARED_SECRET=value,
                      AIRFLOW__API_AUTH__JWT_SECRET=value)
    assert result.returncode == 0, result.stderr
    assert "gcloud run" in result.stdout
    assert value not in result.stdout + result.stderr
    assert [str(p) for p in rendered_files(matrix_case.repo) if value in p.read_text()] == []
