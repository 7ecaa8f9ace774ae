"""Time every clustering method on synthetic graphs of 10k, 100k and 1M nodes (mean degree
~12), against networkx greedy modularity (the classic) and networkit's raw parallel Louvain.

Run by hand: ``python benchmarks/bench_cluster.py [--quick]``. Prints one table; ratios are
against the networkx baseline on the 10k graph and against raw networkit on the same graph.
"""

from __future__ import annotations

import argparse
import time
import warnings

import pandas as pd

from spillover import SocialGraph, cluster, synth
from spillover.clustering import _to_networkit, cut_fraction, modularity
from spillover.errors import InterferenceWarning

warnings.simplefilter("ignore", InterferenceWarning)


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def raw_networkit_louvain(graph: SocialGraph) -> float:
    import networkit as nk

    nk_graph = _to_networkit(graph.adjacency)
    start = time.perf_counter()
    nk.community.PLM(nk_graph, refine=False, gamma=1.0, par="balanced").run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="10k and 100k only, no networkx baseline")
    parser.add_argument("--components-nodes", type=int, default=10_000_000)
    args = parser.parse_args()
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    methods = ["components", "louvain", "leiden", "3net", "ego", "metis"]
    rows = []
    baseline = None
    for n in sizes:
        graph = synth.social_graph(n, mean_degree=12, seed=1)
        edges = synth.edge_table(graph).sample(frac=1.0, random_state=0)  # real edge lists are not sorted
        _, load_s = timed(SocialGraph.from_edges, edges)
        _, diag_s = timed(lambda: (cut_fraction(graph.adjacency, graph.node_data["community"].to_numpy()),
                                   modularity(graph.adjacency, graph.node_data["community"].to_numpy())))
        rows.append({"nodes": n, "method": "load edge list (id mapping, CSR)", "seconds": load_s})
        rows.append({"nodes": n, "method": "diagnostics (cut, modularity)", "seconds": diag_s})
        if n == 10_000 and not args.quick:
            _, baseline = timed(cluster, graph, "greedy-modularity")
            rows.append({"nodes": n, "method": "greedy-modularity (networkx)", "seconds": baseline})
        raw = raw_networkit_louvain(graph)
        rows.append({"nodes": n, "method": "networkit PLM, raw call", "seconds": raw})
        for method in methods:
            _, seconds = timed(cluster, graph, method)
            rows.append({"nodes": n, "method": method, "seconds": seconds, "vs_raw_networkit": seconds / raw})
        _, seconds = timed(cluster, graph, "louvain", seed=1)
        rows.append({"nodes": n, "method": "louvain, seeded (1 thread)", "seconds": seconds, "vs_raw_networkit": seconds / raw})
        print(f"done {n:,} nodes", flush=True)
    if not args.quick:
        big = synth.social_graph(args.components_nodes, mean_degree=4, seed=2)
        _, seconds = timed(cluster, big, "components")
        rows.append({"nodes": args.components_nodes, "method": "components (mean degree 4)", "seconds": seconds})
    table = pd.DataFrame(rows)
    if baseline:
        table["speedup_vs_networkx_10k"] = baseline / table["seconds"]
    pd.set_option("display.width", 200)
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.3f}"))


if __name__ == "__main__":
    main()
