"""Exact exposure probabilities against Monte Carlo, measured in the same run.

Marginal probabilities of every as4 condition under complete randomization of clusters
(the graph's planted communities) on a social graph of ``--nodes`` nodes: exact (closed
form per unit) against Monte Carlo over ``R`` draws in chunks, which also carries
Monte Carlo error. Prints times, the ratio, and the largest gap between the two.

    python benchmarks/bench_probabilities.py --nodes 1000000 --draws 100 1000
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

import numpy as np

from spillover import synth
from spillover.design import ClusterDesign
from spillover.exposure import probabilities


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--draws", type=int, nargs="+", default=[100, 1_000])
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    graph = synth.social_graph(args.nodes, mean_degree=10, seed=1)
    labels = graph.node_data["community"].reindex(graph.nodes).to_numpy()
    design = ClusterDesign(labels, graph.nodes, treat_fraction=0.5)
    print(f"graph: {graph.n_nodes:,} nodes, {graph.n_edges:,} edges, {design.n_clusters:,} clusters "
          f"({time.perf_counter() - start:.1f}s)")
    start = time.perf_counter()
    exact = probabilities(graph, "as4", design=design, joint=None, method="exact")
    exact_s = time.perf_counter() - start
    print(f"exact marginals: {exact_s:.2f}s  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")
    for draws in args.draws:
        start = time.perf_counter()
        mc = probabilities(graph, "as4", design=design, joint=None, method="monte-carlo", n_draws=draws, seed=2)
        mc_s = time.perf_counter() - start
        gap = float(np.abs(mc.marginal - exact.marginal).max())
        print(f"monte carlo R={draws}: {mc_s:.2f}s  ({mc_s / exact_s:.1f}x the exact time)  "
              f"largest |MC - exact| {gap:.3f}  peak RSS "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")


if __name__ == "__main__":
    main()
