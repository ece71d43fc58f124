#!/usr/bin/env python3
"""Flag files that a newer template release removed but that are still in the repo.

This is the safe stand-in for migration tasks: nothing is deleted or run, the hook only
says what to do. removed_files.txt (beside this script) lists them, one per line:
`path | release | what to do`; a path may hold glob wildcards (a file named after the team).
"""

from __future__ import annotations

import sys
from pathlib import Path

REMOVED = Path(__file__).resolve().parent / "removed_files.txt"


def removed_entries(listing: Path = REMOVED) -> list[tuple[str, str, str]]:
    entries = []
    for raw in listing.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        path, release, advice = (part.strip() for part in (line.split("|", 2) + ["", ""])[:3])
        entries.append((path, release, advice))
    return entries


def main(argv: list[str]) -> int:
    found = [(str(path), release, advice) for pattern, release, advice in removed_entries()
             for path in sorted(Path().glob(pattern))]
    for path, release, advice in found:
        print(f"{path}: removed from edge-template in {release}; {advice or 'delete it if you do not need it'}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
