"""Each engine side by side: bipartite exposure at 5M and 50M edges, connected components
at 1M nodes. At 50M edges DuckDB runs under a 2 GB memory limit (spilling) and its result
is compared with the memory engine's.

Run by hand: ``python benchmarks/bench_engines.py [--sizes 5 50] [--no-spark]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from spillover import synth
from spillover.design import IndividualDesign
from spillover.engines import get_engine

warnings.simplefilter("ignore")


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def same_exposure(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    a = a.sort_values("unit_id").reset_index(drop=True)
    b = b.sort_values("unit_id").reset_index(drop=True)
    return all(np.array_equal(a[c].to_numpy().astype(str), b[c].to_numpy().astype(str))
               for c in ("unit_id", "n_neighbors", "n_treated_neighbors", "treated_fraction", "condition"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 50], help="millions of edges")
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument("--components-nodes", type=int, default=1_000_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="spillover-bench-"))
    engines = {"memory": get_engine("memory")}
    rows = []
    for millions in args.sizes:
        buyers = millions * 200_000  # ~5 links per buyer
        market = synth.marketplace(buyers, max(buyers // 10, 1_000), mean_sellers_per_buyer=5.5, seed=1)
        units, sellers = market.edge_index()
        edges_path = folder / f"edges_{millions}m.parquet"
        pd.DataFrame({"buyer_id": units, "seller_id": sellers}).to_parquet(edges_path, index=False)
        assignment = IndividualDesign(market.treated[np.unique(sellers)], 0.5).assign(seed=2).to_frame()[["unit_id", "arm"]]
        arms_path = folder / f"arms_{millions}m.parquet"
        assignment.to_parquet(arms_path, index=False)
        print(f"{market.n_edges:,} links, {market.n_units:,} buyers", flush=True)
        del market
        kwargs = dict(source="buyer_id", target="seller_id", bipartite=True)
        reference, seconds = timed(lambda: engines["memory"].exposure(edges_path, arms_path, "bipartite", **kwargs))
        rows.append({"step": f"bipartite exposure, {millions}M edges", "engine": "memory (incl. Parquet read)", "seconds": seconds})
        limit = "2GB" if millions >= 50 else "4GB"
        duck = get_engine("duckdb", memory_limit=limit, temp_directory=folder / "spill")
        result, seconds = timed(lambda: duck.exposure(edges_path, arms_path, "bipartite", **kwargs))
        rows.append({"step": f"bipartite exposure, {millions}M edges", "engine": f"duckdb ({limit} limit)",
                     "seconds": seconds, "identical": same_exposure(result, reference)})
        del result
        if not args.no_spark:
            spark = engines.setdefault("spark", get_engine("spark", master="local[2]"))
            out = folder / f"spark_exposure_{millions}m"
            _, seconds = timed(lambda: spark.exposure(str(edges_path), str(arms_path), "bipartite", out=out, **kwargs))
            rows.append({"step": f"bipartite exposure, {millions}M edges", "engine": "spark local[2] (to Parquet)",
                         "seconds": seconds, "identical": same_exposure(pd.read_parquet(out), reference)})
        del reference
        print(pd.DataFrame(rows).tail(3).to_string(index=False), flush=True)

    graph = synth.social_graph(args.components_nodes, mean_degree=4, seed=3)
    edges = synth.edge_table(graph)
    path = folder / "social.parquet"
    edges.to_parquet(path, index=False)
    reference, seconds = timed(lambda: engines["memory"].components(path))
    rows.append({"step": f"components, {args.components_nodes:,} nodes", "engine": "memory", "seconds": seconds})
    duck = get_engine("duckdb", memory_limit="4GB")
    result, seconds = timed(lambda: duck.components(path))
    rows.append({"step": f"components, {args.components_nodes:,} nodes", "engine": "duckdb", "seconds": seconds,
                 "identical": result.sort_values("unit_id")["cluster_id"].to_numpy().tolist()
                 == reference.sort_values("unit_id")["cluster_id"].to_numpy().tolist()})
    if not args.no_spark:
        result, seconds = timed(lambda: engines["spark"].components(str(path)))
        rows.append({"step": f"components, {args.components_nodes:,} nodes", "engine": f"spark ({engines['spark'].components_backend})",
                     "seconds": seconds,
                     "identical": result.sort_values("unit_id")["cluster_id"].to_numpy().tolist()
                     == reference.sort_values("unit_id")["cluster_id"].to_numpy().tolist()})
    table = pd.DataFrame(rows)
    memory_time = table[table["engine"].str.startswith("memory")].set_index("step")["seconds"]
    table["vs_memory"] = table["seconds"] / table["step"].map(memory_time)
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))


if __name__ == "__main__":
    main()
