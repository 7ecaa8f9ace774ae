"""Time the design stage: 1,000 cluster-randomized draws of 1M units, and keyed-hash
assignment of 10M units. Run by hand: ``python benchmarks/bench_design.py``."""

from __future__ import annotations

import resource
import time

import numpy as np
import pandas as pd

from spillover.design import ClusterDesign, HashSpec


def timed(label: str, fn):
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"{label:<60} {seconds:8.2f} s   (peak RSS so far {peak_gb:.1f} GB)", flush=True)
    return result, seconds


def main() -> None:
    rng = np.random.default_rng(0)
    n_units, n_clusters = 1_000_000, 20_000
    clusters = rng.integers(0, n_clusters, n_units)
    design = ClusterDesign(clusters, pd.RangeIndex(n_units))
    cluster_draws, t_clusters = timed("1,000 draws of 20,000 clusters (cluster level)", lambda: design.draw_clusters(1_000, seed=1))
    draws, t_units = timed("1,000 draws of 1M units in clusters (unit level, int8)", lambda: design.draw(1_000, seed=1))
    print(f"   unit-level draws: {draws.nbytes / 1e9:.1f} GB; cluster-level: {cluster_draws.nbytes / 1e6:.0f} MB")
    del draws
    keys = pd.RangeIndex(10_000_000)
    _, t_hash = timed("keyed-hash assignment of 10M integer ids (DuckDB md5)", lambda: HashSpec.of([0.5, 0.5]).assign(keys, "bench"))
    text = pd.Index([f"user-{i}" for i in range(2_000_000)])
    _, t_text = timed("keyed-hash assignment of 2M string ids", lambda: HashSpec.of([0.5, 0.5]).assign(text, "bench"))
    print(f"hash throughput: {10_000_000 / t_hash / 1e6:.1f}M ids/s (ints), {2_000_000 / t_text / 1e6:.1f}M ids/s (strings)")


if __name__ == "__main__":
    main()
