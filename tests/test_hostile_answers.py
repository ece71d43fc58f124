"""Any string a team may paste: copier refuses it, or the render is clean and the value inert.

Property-based: for every free-text answer, hypothesis generates strings full of shell
metacharacters, quotes, newlines, unicode, YAML specials, Jinja delimiters and very long
values, plus near-valid values with a hostile tail. Each is either refused by copier's
validators, or renders a repo whose YAML/JSON parse, whose shell passes shellcheck, and in
which the value is plain (no character a shell, YAML or Jinja would read as syntax).
No render ever runs a command.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.templates import ROOT, rendered_files, run_tool, tool

EXAMPLES_PER_ANSWER = int(os.environ.get("EDGE_TEMPLATE_FUZZ_EXAMPLES", "30"))
FUZZ = settings(
    max_examples=EXAMPLES_PER_ANSWER,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),  # CI replays the same cases; locally they vary
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

CANARY = Path(tempfile.gettempdir()) / "edge-template-canary"
ATTACKS = [
    f"$(touch {CANARY})",
    f"`touch {CANARY}`",
    f"; touch {CANARY}",
    f"' && touch {CANARY} && '",
    f"\" && touch {CANARY} && \"",
    "{{ cycler.__init__.__globals__.os.system('touch " + str(CANARY) + "') }}",
    "{% raw %}x{% endraw %}",
    "\n- injected: true\n",
    "key: value",
    "*alias",
    "&anchor x",
    "!!python/object/apply:os.system ['id']",
    "# comment",
    "'quoted'",
    "ümlaut-ñ-字",
    "\u202eevil",
    "a" * 300,
    "",
    " ",
]
HOSTILE = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)
# Characters a shell, YAML or Jinja would read as syntax in our files; no accepted value holds one.
SYNTAX = set(" \t\r\n'\"`$;&|(){}\\#%")

# question -> (a valid value to mutate, other answers it needs, characters allowed in an accepted value)
FREE_TEXT: dict[str, tuple[Any, dict[str, Any], str]] = {
    "team_name": ("team-c", {}, r"[a-z0-9-]"),
    "gcp_project_id": ("acme-data-prod", {}, r"[a-z0-9-]"),
    "region": ("europe-west1", {}, r"[a-z0-9-]"),
    "artifact_registry_repo": ("airflow-edge", {}, r"[a-z0-9-]"),
    "edge_api_url": ("https://airflow.example.com/edge_worker/v1/rpcapi", {}, r"[A-Za-z0-9.:/_~-]"),
    "airflow_version": ("2.10.5", {}, r"[0-9.]"),
    "edge_provider_version": ("1.5.0", {}, r"[0-9.]"),
    "base_image_repository": ("apache/airflow", {}, r"[A-Za-z0-9._/:-]"),
    "edge_secret_name": ("airflow-edge-secret", {}, r"[A-Za-z0-9_-]"),
    "pool_name": ("team_c_pool", {}, r"[A-Za-z0-9_.-]"),
    "memory": ("2Gi", {}, r"[0-9MGi]"),
    "vpc_network": ("shared-vpc", {"network_mode": "direct-vpc"}, r"[a-z0-9-]"),
    "vpc_subnet": ("edge-subnet", {"network_mode": "direct-vpc"}, r"[a-z0-9-]"),
    "vpc_connector": ("edge-connector", {"deployment_target": "service", "network_mode": "vpc-connector"},
                      r"[a-z0-9-]"),
    "dags_bucket": ("acme-dags", {}, r"[a-z0-9_-]"),
    "dags_bucket_path": ("teams/c/dags", {}, r"[A-Za-z0-9._/-]"),
}
LIST_ANSWERS: dict[str, tuple[str, str]] = {
    "queues": ("team_c_queue", r"[A-Za-z0-9_.-]"),
    # PEP 508 allows spaces ("pandas >= 2.2"): accepted, and dropped from requirements.txt.
    "python_deps": ("pandas==2.2.3", r"[A-Za-z0-9._\-\[\],=<>!~*+ ]"),
    "central_python_deps": ("apache-airflow-providers-google==18.1.0", r"[A-Za-z0-9._\-\[\],=<>!~*+ ]"),
}


@pytest.fixture(scope="module")
def template_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template outside git, so that thousands of renders stay fast."""
    root = tmp_path_factory.mktemp("template")
    shutil.copy2(ROOT / "copier.yml", root / "copier.yml")
    shutil.copytree(ROOT / "template", root / "template")
    shutil.copytree(ROOT / "includes", root / "includes")
    shutil.copytree(ROOT / "sites", root / "sites")
    shutil.copytree(ROOT / "hooks", root / "hooks")  # template/tools/ includes the hooks
    return root


def values_for(valid: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.just(valid),
        st.sampled_from(ATTACKS),
        HOSTILE,
        st.builds(lambda tail: valid + tail, st.one_of(st.sampled_from(ATTACKS), HOSTILE)),
        st.builds(lambda head: head + valid, st.one_of(st.sampled_from(ATTACKS), HOSTILE)),
    )


def try_render(template: Path, answers: dict[str, Any]) -> Path | None:
    dst = Path(tempfile.mkdtemp(prefix="edge-fuzz-")) / "team-c"
    try:
        copier.run_copy(str(template), str(dst), data={"team_name": "team-c", **answers}, defaults=True,
                        unsafe=False, quiet=True)
    except ValueError as error:
        assert "Validation error for question" in str(error) or "Invalid choice for" in str(error), error  # noqa: PT017
        assert not dst.exists()
        shutil.rmtree(dst.parent, ignore_errors=True)
        return None
    return dst


def check_clean_render(repo: Path) -> None:
    for path in rendered_files(repo):
        if path.suffix in (".yml", ".yaml"):
            yaml.safe_load(path.read_text())
        elif path.suffix == ".json":
            json.loads(path.read_text())
    shells = [str(p) for p in rendered_files(repo, "*.sh")]
    result = run_tool([tool("shellcheck"), *shells], repo)
    assert result.returncode == 0, result.stdout
    yamls = [str(p) for p in rendered_files(repo) if p.suffix in (".yml", ".yaml")]
    result = run_tool([tool("yamllint"), "--strict", "-c", ".yamllint.yaml", *yamls], repo)
    assert result.returncode == 0, result.stdout


def check_outcome(
    repo: Path | None, values: list[str], allowed: str, outcomes: Counter[str], spaces_dropped: bool = False
) -> None:
    assert not CANARY.exists(), "a render ran a command"
    outcomes["refused" if repo is None else "accepted"] += 1
    if repo is None:
        return
    try:
        for value in values:
            assert re.fullmatch(f"(?:{allowed})+", value), f"accepted {value!r}, outside {allowed}"
            assert not (SYNTAX - ({" "} if spaces_dropped else set())) & set(value), f"accepted {value!r}"
        if spaces_dropped:
            lines = (repo / "requirements.txt").read_text().splitlines()
            assert [line for line in lines if " " in line and not line.startswith("#")] == []
        check_clean_render(repo)
    finally:
        shutil.rmtree(repo.parent, ignore_errors=True)


@pytest.mark.parametrize("question", sorted(FREE_TEXT))
def test_free_text_answer_is_refused_or_inert(template_copy: Path, question: str) -> None:
    valid, others, allowed = FREE_TEXT[question]
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(value=values_for(valid))
    def check(value: str) -> None:
        repo = try_render(template_copy, {**others, question: value})
        check_outcome(repo, [value], allowed, outcomes)

    check()
    print(f"{question}: {dict(outcomes)}")
    # Both sides of the property ran: some values were refused, some rendered and checked.
    assert outcomes["refused"] > 0
    assert outcomes["accepted"] > 0


@pytest.mark.parametrize("question", sorted(LIST_ANSWERS))
def test_list_answer_items_are_refused_or_inert(template_copy: Path, question: str) -> None:
    valid, allowed = LIST_ANSWERS[question]
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(items=st.lists(values_for(valid), min_size=1, max_size=4, unique=True))
    def check(items: list[str]) -> None:
        repo = try_render(template_copy, {question: items})
        check_outcome(repo, items, allowed, outcomes, spaces_dropped=question.endswith("python_deps"))

    check()
    print(f"{question}: {dict(outcomes)}")
    assert outcomes["refused"] > 0
    assert outcomes["accepted"] > 0


def test_accepted_python_deps_land_only_in_requirements_txt(template_copy: Path) -> None:
    deps = ["pandas==2.2.3", "requests[socks]>=2.32,<3", "zope.interface~=7.1"]
    repo = try_render(template_copy, {"python_deps": deps})
    assert repo is not None
    try:
        holders = {str(p.relative_to(repo)) for p in rendered_files(repo) if "zope.interface~=7.1" in p.read_text()}
        assert holders == {"requirements.txt", ".copier-answers.yml"}
        assert (repo / "requirements.txt").read_text().splitlines()[-3:] == deps
    finally:
        shutil.rmtree(repo.parent, ignore_errors=True)


def test_the_canary_works(tmp_path: Path) -> None:
    """The canary would show a command run: prove the check itself can see one."""
    assert not CANARY.exists()
    os.system(ATTACKS[0].removeprefix("$(").removesuffix(")"))  # noqa: S605 - our own canary command
    try:
        assert CANARY.exists()
    finally:
        CANARY.unlink()
