"""The benchmark command runs from a fresh clone (a short run: one round of the render figure)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.templates import ROOT


def test_the_readme_bench_command_runs_and_writes_its_table(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    assert "python3 scripts/dev.py bench    # prints the table and writes BENCHMARKS.md" in readme
    output = tmp_path / "BENCHMARKS.md"
    result = subprocess.run(
        ["python3", "scripts/dev.py", "bench", "--runs", "1", "--only", "render", "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| render: copier copy --defaults |" in result.stdout
    table = output.read_text()
    assert table.startswith("# Benchmarks")
    assert "one-file template" in table
    assert "## Reading it" in table
