"""The worker image runs as the base image's non-root user and ships nothing world-writable.

No Docker engine runs on these machines, so the image is checked where it is decided: the
rendered Dockerfile (hadolint runs on it in test_rendered_repo.py) and the modes of the files
it copies.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

from support.templates import rendered_files

COPIED = ["entrypoint.sh", "startup.py", "health_server.py", "requirements.txt"]


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split()[0].upper(), line) for line in lines]


def test_everything_after_from_runs_as_the_non_root_airflow_user(matrix_repo: Path) -> None:
    steps = instructions(matrix_repo / "Dockerfile")
    assert steps[0][0] == "FROM"
    users = [line for op, line in steps if op == "USER"]
    assert users == ["USER 50000"]
    assert [op for op, _ in steps].index("USER") == 1, "USER must come before any RUN or COPY"
    assert steps[-1] == ("ENTRYPOINT", 'ENTRYPOINT ["/opt/edge/entrypoint.sh"]')


def test_copied_files_belong_to_airflow_and_nothing_is_made_world_writable(matrix_repo: Path) -> None:
    steps = instructions(matrix_repo / "Dockerfile")
    copies = [line for op, line in steps if op == "COPY"]
    assert copies
    assert all("--chown=50000:0" in line for line in copies)
    text = (matrix_repo / "Dockerfile").read_text()
    assert not re.search(r"chmod\s+(-R\s+)?(0?777|[ao]\+w|666)", text)
    assert "--chmod" not in text
    for path in rendered_files(matrix_repo):
        assert not path.stat().st_mode & stat.S_IWOTH, f"{path} is world-writable"


def test_no_secret_goes_into_the_image(matrix_repo: Path) -> None:
    steps = instructions(matrix_repo / "Dockerfile")
    assert not [line for op, line in steps if op in ("ARG", "ENV") and re.search(r"SECRET|TOKEN|PASSWORD|KEY", line)]
    dockerignore = (matrix_repo / ".dockerignore").read_text().splitlines()
    assert dockerignore[1] == "*", "the build context starts from nothing"
    assert "!.copier-answers.yml" not in dockerignore
    for name in COPIED:
        if (matrix_repo / name).exists():
            assert f"!{name}" in dockerignore
