"""The benchmark command runs from a fresh clone (a short run: one round of the render figure)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
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


def test_a_partial_run_keeps_the_rows_and_sections_it_did_not_measure(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    run = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = run  # its dataclasses look their module up there
    spec.loader.exec_module(run)
    output = tmp_path / "BENCHMARKS.md"
    first = run.report([run.Row("render: a", "s", [1.0]), run.Row("update: b", "s", [2.0])],
                       {"airflow2": {"idle": 100.0}}, [], 1, [("### Fleet load (airflow2)", ["old fleet"])])
    run.write_report(output, first)
    output.write_text(output.read_text() + "A person's note.\n")
    second = run.report([run.Row("update: b", "s", [3.0]), run.Row("pickup (airflow2): c", "s", [4.0])], {}, [],
                        1, [("### Fleet load (airflow2)", ["new fleet"])])
    run.write_report(output, second)
    text = output.read_text()
    assert "| render: a | 1 / 1 / 1 s |" in text
    assert "| update: b | 3 / 3 / 3 s |" in text
    assert "| update: b | 2 / 2 / 2 s |" not in text
    assert text.index("| update: b |") < text.index("| pickup (airflow2): c | 4 / 4 / 4 s |")
    assert "### Memory (airflow2), MiB" in text
    assert "- idle: 100" in text
    assert "new fleet" in text
    assert "old fleet" not in text
    assert "kept from earlier runs" in text
    assert text.endswith("A person's note.\n")


def test_the_memory_check_reads_the_defaults_copier_renders() -> None:
    """The memory bench judges the rendered defaults (copier.yml with its site profiles)."""
    spec = importlib.util.spec_from_file_location("bench_run_memory", ROOT / "bench" / "run.py")
    run = importlib.util.module_from_spec(spec)
    sys.modules["bench_run_memory"] = run
    spec.loader.exec_module(run)
    def measured(idle: float, task: float) -> dict[str, float]:
        return {"idle container RSS (entrypoint + worker + health server)": idle, "RSS per running task": task}

    lines = run.memory_defaults({"airflow2": measured(170.0, 280.0), "airflow3": measured(200.0, 300.0)},
                                health_rss=12.0)

    # 2Gi and 4 tasks: 2048 MiB against the larger need, 200 + 4 x 300 = 1400 MiB (Airflow 3).
    assert lines[0].startswith("- default `memory: 2Gi` with `worker_concurrency: 4`: needs 1400 MiB by RSS "
                               "(idle container + 4 tasks importing pandas, 3.3.2)")
    assert "headroom 46% (met" in lines[0]
    assert lines[1] == "- health server RSS: 12.0 MiB (met: target <= 15 MiB)"
