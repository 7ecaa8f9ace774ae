"""Time ``plan`` on 1M units: ICC (ANOVA and REML), design effect, MDE and interference
bias of three candidate clusterings, against a baseline measured in the same run (one
pandas group-by mean of the outcome per cluster, for each candidate). Run by hand:
``python benchmarks/bench_plan.py``."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from spillover import synth
from spillover.plan import plan


def main() -> None:
    n = 1_000_000
    graph = synth.social_graph(n, mean_degree=10, seed=0)
    rng = np.random.default_rng(1)
    community = graph.node_data["community"].to_numpy()
    y = 0.5 * rng.normal(size=community.max() + 1)[community] + rng.normal(size=n)
    history = pd.DataFrame({"unit_id": graph.nodes, "y": y})
    candidates = {"individual": np.arange(n), "communities": community, "pairs of communities": community // 2}

    start = time.perf_counter()
    for labels in candidates.values():  # the baseline: one group-by per candidate
        history["y"].groupby(labels).mean()
    baseline = time.perf_counter() - start

    start = time.perf_counter()
    result = plan(graph, history, clusters=candidates, effect=0.05)
    seconds = time.perf_counter() - start
    print(result.table[["design", "n_clusters", "icc", "design_effect", "mde", "interference_bias"]])
    print(f"plan on {n:,} units, {len(candidates)} candidates: {seconds:.2f} s; baseline (group-by means) "
          f"{baseline:.2f} s; ratio {seconds / baseline:.1f}x")


if __name__ == "__main__":
    main()
