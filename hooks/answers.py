"""Read a team repo's .copier-answers.yml with the standard library only.

Copier writes that file itself (scalars and lists of scalars, block style), so a small
reader is enough; the hooks must run under any python3 without installing anything.
"""

from __future__ import annotations

import re
from pathlib import Path

ANSWERS_FILE = ".copier-answers.yml"
# The site's facts are written below the answers under this prefix: copier reads no "_" key back.
SITE_PREFIX = "_site_"
_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):(?:\s+(.*))?$")


def _scalar(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        inner = text[1:-1]
        return inner.replace("''", "'") if text[0] == "'" else inner.replace('\\"', '"')
    return text


def read_answers(path: Path = Path(ANSWERS_FILE)) -> dict[str, object]:
    answers: dict[str, object] = {}
    current: str | None = None
    for raw in path.read_text().splitlines():
        line = raw.rstrip()
        if not line or line.lstrip().startswith("#") or line == "---":
            continue
        item = re.match(r"^\s*-\s+(.*)$", line)
        if item and current is not None:
            value = answers.setdefault(current, [])
            if isinstance(value, list):
                value.append(_scalar(item.group(1)))
            continue
        key = _KEY.match(line)
        if not key:
            continue
        current = key.group(1)
        value = key.group(2)
        if value is None or value.strip() == "[]":
            answers[current] = []
        else:
            answers[current] = _scalar(value)
    return answers


def site_facts(answers: dict[str, object]) -> dict[str, object]:
    """The central site's facts the repo was rendered with (the `_site_*` keys), by name."""
    return {key[len(SITE_PREFIX) :]: value for key, value in answers.items() if key.startswith(SITE_PREFIX)}


def normalize(name: str) -> str:
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()
