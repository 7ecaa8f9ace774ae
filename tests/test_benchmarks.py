"""The benchmark runner works end to end: every step runs in its own process and reports
its time and peak memory beside its baseline's, as JSON and as the README's table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # end to end: runs with --full (CI)
def test_python_m_benchmarks_measures_each_step_against_its_baseline(tmp_path):
    out = tmp_path / "results.json"
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--scale", "tiny", "--only", "load", "exposure",
                          "probabilities", "ols", "daily_duckdb", "version", "--repeats", "2", "--out", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["step"] for r in rows] == ["load", "exposure", "probabilities", "ols", "daily_duckdb", "version"]
    for row in rows:
        assert row["spillover_s"] > 0 and row["baseline_s"] > 0 and row["spillover_peak_gb"] > 0, row
        assert row["ratio"] == round(row["spillover_s"] / row["baseline_s"], 2)
        low, high = row["ratio_range"]  # two alternated runs each: the spread of their ratios
        assert low <= high and row["load"] is not None
    exposure = rows[1]
    assert "launch to exit" in exposure["work"] and exposure["baseline"].endswith("launch to exit")
    assert exposure["spillover_s"] > 0.3  # a new process: the interpreter and imports are in the time
    assert "| bipartite graph from Parquet" in run.stdout  # the Markdown table
    assert rows[-1]["target"] == "<= 0.3 s" and rows[-1]["met"] is not None  # start-up is judged at every scale


def test_the_readme_holds_a_benchmark_table_the_runner_can_update():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = text.index("<!-- benchmarks:start -->"), text.index("<!-- benchmarks:end -->")
    assert start < end and "| work | spillover |" in text[start:end]


def test_the_scale_study_measures_a_step_and_extrapolates_its_limit(tmp_path):
    from benchmarks.bench_scale import limit, one

    row = one("hajek", 2_000, tmp_path)
    assert row["size"] == 2_000 and row["seconds"] > 0 and row["peak_gb"] >= row["inputs_gb"] > 0
    rows = [{"size": 1_000_000, "peak_gb": 2.0}, {"size": 3_000_000, "peak_gb": 5.0}]
    assert limit(rows, 24.0) == pytest.approx(3_000_000 + 19.0 / 1.5e-6)  # 1.5 GB per million more
    assert limit(rows[:1], 24.0) is None and limit([rows[1], rows[1] | {"size": 4_000_000}], 24.0) is None
