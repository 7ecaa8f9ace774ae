"""Time the daily job: ``spillover init --example`` (30 daily snapshots of 100k users with
churn, and outcomes) and ``spillover run`` over all 30 days, against a baseline measured in
the same run: reading the 30 snapshots with pandas (the I/O floor of any daily job).
Run by hand: ``python benchmarks/bench_experiment.py``."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def spillover(*args: str, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "spillover", *args], cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        init = spillover("init", "--example", "--days", "30", "--users", "100000", "--json", cwd=root)
        start = time.perf_counter()
        for path in sorted((root / "data").glob("memberships-*.parquet")):
            pd.read_parquet(path)
        baseline = time.perf_counter() - start
        run = spillover("run", "experiment.toml", "--json", cwd=root)
        report = spillover("report", "experiment.toml", "--json", cwd=root)
        print(f"init --example (30 days x 100k users, with outcomes): {init:.1f} s")
        print(f"run, 30 days: {run:.1f} s ({run / 30:.2f} s a day); baseline (reading the snapshots) {baseline:.1f} s; "
              f"ratio {run / baseline:.1f}x")
        print(f"report over 30 days: {report:.1f} s; init + run: {init + run:.1f} s (target: under 60 s)")


if __name__ == "__main__":
    main()
