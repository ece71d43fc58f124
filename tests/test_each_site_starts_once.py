"""The e2e tests that share a central site run in one test process, so that each site starts
once (tests/e2e/conftest.py marks them one xdist_group, its hook driven here; scripts/dev.py runs
--dist loadgroup).
Checked on the pinned pytest and pytest-xdist: a pytest release once broke the grouping silently."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.sites import MAIN_TRACKS

TESTS = Path(__file__).parent

# Tests parametrized over the main tracks' sites, grouped by the e2e suite's own hook.
SAMPLE = '''
import os
import pytest
from support.sites import MAIN_TRACKS

@pytest.mark.parametrize("n", range(6))
@pytest.mark.parametrize("site", MAIN_TRACKS)
def test_one(site, n):
    with open(os.environ["RAN_ON"], "a") as out:
        out.write(f"{site} {os.environ['PYTEST_XDIST_WORKER']}\\n")
'''
CONFTEST = "from e2e.conftest import pytest_collection_modifyitems  # noqa: F401\n"


def test_tests_of_one_site_run_in_one_process(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    ran_on = tmp_path / "ran_on.txt"

    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "3", "--dist", "loadgroup",
                    "--rootdir", str(tmp_path), str(tmp_path)], cwd=tmp_path, env={"RAN_ON": str(ran_on),
                   "PATH": "/usr/bin:/bin", "PYTHONPATH": str(TESTS)}, check=True, timeout=120)  # fmt: skip

    runs = [line.split() for line in ran_on.read_text().splitlines()]
    assert len(runs) == 12
    assert {site: len({worker for s, worker in runs if s == site}) for site in MAIN_TRACKS} == dict.fromkeys(
        MAIN_TRACKS, 1)
