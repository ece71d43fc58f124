"""The process table, from /proc: one copy for the tests and bench/ (the team repo's startup.py has its own,
being self-contained). Stdlib only: bench/fleet_load.py imports it under an Airflow venv's Python."""

from __future__ import annotations

import os
from pathlib import Path


def children() -> dict[int, list[int]]:
    """parent pid -> child pids, for every process visible in /proc."""
    found: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        found.setdefault(parent, []).append(int(stat.parent.name))
    return found


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, by parent links in /proc."""
    below = children()
    found, level = [], below.get(pid, [])
    while level:
        found += level
        level = [child for p in level for child in below.get(p, [])]
    return found


def all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").glob("[0-9]*")]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def ended(pid: int) -> bool:
    """Not in /proc, or a zombie: its memory freed, only its exit status left (alive() counts a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _proc_kib_field_mib(pid: int, file: str, key: str) -> float:
    """A "Key: N kB" line of /proc/PID/FILE, in MiB (0 once the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/{file}").read_text()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pss_mib(pid: int) -> float:
    """Proportional set size of one process, in MiB: shared pages split among their users."""
    return _proc_kib_field_mib(pid, "smaps_rollup", "Pss")


def rss_mib(pid: int) -> float:
    """Resident memory of one process, in MiB (0 once it is gone)."""
    return _proc_kib_field_mib(pid, "status", "VmRSS")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time one process has used, in seconds (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
