#!/usr/bin/env python3
"""Developer entry point; needs only python3.

    python3 scripts/dev.py demo [DEST]   render a demo team repo with every default (build/team-c)
    python3 scripts/dev.py test [ARGS]   run the whole test suite (pytest ARGS), 4 processes
                                         (EDGE_TEST_WORKERS=N; 0: one)
    python3 scripts/dev.py examples      render examples/*.yml into the committed example repos
    python3 scripts/dev.py bench [ARGS]  run the benchmarks (bench/run.py ARGS)

Each command first makes .venv from requirements-dev.txt (again only when that
file changes).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
REQUIREMENTS = ROOT / "requirements-dev.txt"
STAMP = VENV / ".requirements-dev.sha256"
DEFAULT_DEMO = ROOT / "build" / "team-c"


def venv_bin(name: str) -> Path:
    return VENV / ("Scripts" if os.name == "nt" else "bin") / name


def ensure_venv() -> None:
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted and venv_bin("python").exists():
        return
    print(f"dev: installing the dev toolchain into {VENV.relative_to(ROOT)}", file=sys.stderr)
    venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    pip = [str(venv_bin("python")), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "-r", str(REQUIREMENTS)], check=True)
    STAMP.write_text(wanted + "\n")


def run(args: list[str], pythonpath: str | None = None) -> int:
    env = dict(os.environ)
    env["PATH"] = f"{venv_bin('python').parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run(args, cwd=ROOT, env=env, check=False).returncode


def demo(args: list[str]) -> int:
    dest = Path(args[0]).resolve() if args else DEFAULT_DEMO
    if dest == DEFAULT_DEMO and dest.exists():
        shutil.rmtree(dest)  # a fresh render each time: no stale files from an older template
    # --vcs-ref HEAD: the working tree as it is; without it copier renders the newest tag.
    return run([str(venv_bin("copier")), "copy", "--defaults", "--vcs-ref", "HEAD", str(ROOT), str(dest)])


# Test processes (pytest-xdist): most e2e time is waiting for real servers, so more than the cores.
WORKERS = 4


def test(args: list[str]) -> int:
    return run([str(venv_bin("python")), "-m", "pytest", *parallel(args), *args])


def parallel(args: list[str]) -> list[str]:
    """-n WORKERS --dist loadgroup unless ARGS choose (-n, --dist, -p no:xdist): the tests that share
    a central site are one xdist_group (tests/e2e/conftest.py), so that each site starts once.
    EDGE_TEST_WORKERS=N sets the number (0: one process)."""
    if any(arg.startswith(("-n", "--numprocesses", "--dist", "no:xdist", "-pno:xdist")) for arg in args):
        return []
    workers = os.environ.get("EDGE_TEST_WORKERS", str(WORKERS))
    return ["-n", workers, "--dist", "loadgroup"] if workers != "0" else []


def bench(args: list[str]) -> int:
    # The shared test and bench code is tests/support (pytest finds it through pyproject's pythonpath).
    return run([str(venv_bin("python")), str(ROOT / "bench" / "run.py"), *args], pythonpath=str(ROOT / "tests"))


def examples(args: list[str]) -> int:
    return run([str(venv_bin("python")), str(ROOT / "scripts" / "render_examples.py"), *args])


COMMANDS = {"demo": demo, "test": test, "examples": examples, "bench": bench}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    ensure_venv()
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
