"""Exposure at scale.

1. Bipartite buyer exposure, 10M buyers x 1M sellers x ~50M links: spillover's
   ``exposure`` against the pandas merge + groupby + apply code of the tutorial our users
   start from, and against one bare sparse product (the floor).
2. Exposure probabilities with R = 1,000 draws on a 1M-node, ~10M-edge social graph,
   draws processed in chunks: time and peak memory.

Run by hand: ``python benchmarks/bench_exposure.py [--buyers N] [--skip-baseline]``.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd

from spillover import synth
from spillover.design import IndividualDesign
from spillover.exposure import exposure, probabilities


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def tutorial_baseline(edges: pd.DataFrame, assignment: pd.DataFrame) -> pd.DataFrame:
    """What teams write first: join links to the sellers' arms, group by buyer, label."""
    merged = edges.merge(assignment, on="seller_id")
    per_buyer = merged.groupby("buyer_id")["treated"].agg(["sum", "count"])
    per_buyer["condition"] = per_buyer.apply(
        lambda row: "direct" if row["sum"] == row["count"] else ("control" if row["sum"] == 0 else "indirect"),
        axis=1,
    )
    return per_buyer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--buyers", type=int, default=10_000_000)
    parser.add_argument("--sellers", type=int, default=1_000_000)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--nodes", type=int, default=1_000_000, help="social graph for probabilities")
    args = parser.parse_args()

    market, seconds = timed(lambda: synth.marketplace(args.buyers, args.sellers, mean_sellers_per_buyer=5.5, seed=1))
    print(f"marketplace: {market.n_units:,} buyers, {market.n_treated_side:,} sellers, {market.n_edges:,} links "
          f"(generated in {seconds:.1f}s)", flush=True)
    arms = IndividualDesign(market.treated, 0.5).assign(seed=1)
    treated = (arms.arms == 1).astype(np.int8)
    _, sparse_s = timed(lambda: market.incidence @ treated)
    print(f"one sparse product (incidence @ z):           {sparse_s:8.2f} s", flush=True)
    table, ours_s = timed(lambda: exposure(market, arms, "bipartite"))
    print(f"spillover exposure(..., 'bipartite'):          {ours_s:8.2f} s   ({ours_s / sparse_s:.1f}x the bare product)",
          flush=True)
    if not args.skip_baseline:
        buyers, sellers = market.edge_index()
        edges = pd.DataFrame({"buyer_id": buyers, "seller_id": sellers})
        assignment = pd.DataFrame({"seller_id": np.arange(market.n_treated_side), "treated": treated})
        baseline, base_s = timed(lambda: tutorial_baseline(edges, assignment))
        print(f"tutorial pandas merge + groupby + apply:       {base_s:8.2f} s   (spillover is {base_s / ours_s:.0f}x faster)",
              flush=True)
        same = (baseline["condition"].to_numpy() == table["condition"].astype(str).to_numpy()[baseline.index]).all()
        print(f"conditions identical to the baseline: {bool(same)}", flush=True)
        del edges, baseline
    del market, table

    graph, seconds = timed(lambda: synth.social_graph(args.nodes, mean_degree=24, seed=2))
    print(f"social graph: {graph.n_nodes:,} nodes, {graph.n_edges:,} edges (generated in {seconds:.1f}s)", flush=True)
    design = IndividualDesign(graph.nodes, 0.5, complete=False)
    before = peak_gb()
    probs, seconds = timed(lambda: probabilities(graph, "as4", design=design, n_draws=1_000, seed=3, joint=None, chunk=100))
    print(f"as4 exposure probabilities, R = 1,000 (chunks of 100): {seconds:.1f} s; peak RSS {peak_gb():.1f} GB "
          f"(before: {before:.1f} GB); R x n as float64 would be {1_000 * graph.n_nodes * 8 / 1e9:.0f} GB", flush=True)


if __name__ == "__main__":
    main()
