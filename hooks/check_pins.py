#!/usr/bin/env python3
"""requirements.txt must not pin apache-airflow or its edge provider against the central site.

The Dockerfile pins both to the central site's versions (its site profile, recorded in
.copier-answers.yml); another pin in requirements.txt either repeats it or breaks the build.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from answers import normalize, read_answers, site_facts  # noqa: E402

PINNED = {"apache-airflow": "airflow_version", "apache-airflow-providers-edge3": "edge_provider_version"}
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")


def problems(path: Path, answers: dict[str, object]) -> list[str]:
    found = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        match = REQUIREMENT.match(line)
        if not line or not match:
            continue
        name = normalize(match.group(1))
        if name not in PINNED:
            continue
        wanted = f"=={site_facts(answers).get(PINNED[name], '?')}"
        if match.group(3).replace(" ", "") != wanted:
            found.append(
                f"{path}:{number}: {name} is pinned by the Dockerfile to {wanted[2:]}, the central "
                f"site's {PINNED[name]}; remove this line (the site's profile moves it for every team)"
            )
    return found


def main(argv: list[str]) -> int:
    answers = read_answers()
    found = [line for name in argv for line in problems(Path(name), answers)]
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
