#!/usr/bin/env python3
"""The rendered files still agree with .copier-answers.yml and the central site's facts.

Answers change only through `copier update --data NAME=VALUE`, and the site's facts only
through a template release (its site profile); either re-renders every file that uses them.
A hand edit of a pin, a queue or a pool drifts from them, and the next `copier update`
would undo it or conflict.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from answers import read_answers, site_facts  # noqa: E402


def env_value(text: str, key: str) -> str | None:
    match = re.search(rf'^{re.escape(key)}:\s*"([^"]*)"\s*$', text, re.MULTILINE)
    return match.group(1) if match else None


def shell_word(answer: str, value: object) -> str:
    """NAME=VALUE as copier's --data takes it, quoted for a shell: a list in YAML flow style."""
    text = f"[{', '.join(map(str, value))}]" if isinstance(value, list) else str(value)
    return shlex.quote(f"{answer}={text}")


def problems(answers: dict[str, object]) -> list[str]:
    found: list[str] = []

    site = site_facts(answers)

    def expect(file: str, what: str, seen: object, answer: str, wanted: object) -> None:
        if seen != wanted:
            found.append(
                f"{file}: {what} is {seen!r} but the answers give {wanted!r}; undo the hand edit, "
                f"or change the answer with `copier update --data {shell_word(answer, answers.get(answer))}`"
            )

    def expect_site(file: str, what: str, seen: object, fact: str) -> None:
        if seen != site.get(fact):
            found.append(
                f"{file}: {what} is {seen!r} but the central site {answers.get('_site')!r} gives "
                f"{site.get(fact)!r} ({fact}); undo the hand edit: the site's profile in the template sets it"
            )

    dockerfile = Path("Dockerfile")
    if dockerfile.exists():
        text = dockerfile.read_text()
        base = re.search(r"^FROM\s+(\S+)", text, re.MULTILINE)
        expect_site("Dockerfile", "the base image", base.group(1) if base else None, "base_image")
        for package, fact in (
            ("apache-airflow", "airflow_version"),
            ("apache-airflow-providers-edge3", "edge_provider_version"),
        ):
            pin = re.search(rf'"{re.escape(package)}==([^"]+)"', text)
            expect_site("Dockerfile", f"the {package} pin", pin.group(1) if pin else None, fact)
    worker_env = Path("worker.env.yaml")
    if worker_env.exists():
        text = worker_env.read_text()
        queues = answers.get("queues")
        expect("worker.env.yaml", "EDGE_WORKER_QUEUES", env_value(text, "EDGE_WORKER_QUEUES"), "queues",
               ",".join(map(str, queues)) if isinstance(queues, list) else queues)
        expect_site("worker.env.yaml", "AIRFLOW__EDGE__API_URL", env_value(text, "AIRFLOW__EDGE__API_URL"),
                    "edge_api_url")
        expect("worker.env.yaml", "EDGE_WORKER_CONCURRENCY", env_value(text, "EDGE_WORKER_CONCURRENCY"),
               "worker_concurrency", answers.get("worker_concurrency"))
        if str(answers.get("remote_logging")).lower() == "true":  # deploy.sh lets the worker write this folder only
            expect("worker.env.yaml", "EDGE_REMOTE_LOG_FOLDER",
                   env_value(text, "EDGE_REMOTE_LOG_FOLDER"), "remote_log_folder",
                   answers.get("remote_log_folder"))
    pools = Path("pools.json")
    if pools.exists():
        try:
            names = list(json.loads(pools.read_text()))
        except ValueError as error:
            found.append(f"pools.json: not valid JSON ({error})")
        else:
            expect("pools.json", "the pool", names, "pool_name", [answers.get("pool_name")])
    return found


def main(argv: list[str]) -> int:
    answers_file = Path(".copier-answers.yml")
    if not answers_file.exists():
        print(".copier-answers.yml is missing: this repo was not rendered by edge-template (copier copy).")
        return 1
    found = problems(read_answers(answers_file))
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
