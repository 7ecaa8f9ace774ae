"""How large an input each step handles on one machine: the time and peak memory of each
step at growing sizes, each (step, size) in a fresh process, and the size at which the
peak would reach the memory budget, extrapolated linearly from the two largest sizes run.

    python -m benchmarks.bench_scale [--steps exposure hajek ...] [--budget-gb 24] [--out scale.json]

In each process the inputs are built first (a graph generated, or an edge list written
to Parquet); then, on Linux, the process's peak memory is reset to what it holds (the
inputs), the step runs, and the peak is read: the step's peak with its inputs in memory,
not the generator's. Steps that read a file (exposure) load it inside the measured part,
as the command line does. A size whose peak passes the budget (or whose process dies)
ends that step's ladder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from benchmarks.suite import collaboration_graph, design_data, peak_gb, social_graph

#: each step's sizes, smallest first, and what the size counts
LADDERS = {
    "exposure": ("links", (10_000_000, 50_000_000, 150_000_000)),
    "louvain": ("nodes", (1_000_000, 3_000_000, 10_000_000)),
    "probabilities": ("nodes", (1_000_000, 3_000_000, 10_000_000)),
    "hajek": ("nodes", (1_000_000, 3_000_000, 10_000_000)),
    "hajek_components": ("users", (1_000_000, 3_000_000, 10_000_000)),
    "simulate": ("users", (1_000_000, 3_000_000, 10_000_000)),
}
WHAT = {
    "exposure": "bipartite exposure, Parquet edge list to Parquet table (what `spillover exposure` runs)",
    "louvain": "Louvain clustering of a social graph (mean degree 10)",
    "probabilities": "Monte Carlo exposure probabilities, 1,000 draws, cluster design of the graph's communities",
    "hajek": "Hajek with the design's exact probabilities, social graph, communities",
    "hajek_components": "Hajek with the design's exact probabilities, collaboration network, components",
    "simulate": "design study, 100 simulated experiments x 3 designs, collaboration network",
}


def _reset_peak() -> None:
    """Make the process's peak resident memory what it holds now (Linux; elsewhere a no-op)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        pass


def one(step: str, size: int, folder: Path) -> dict:
    """Build ``step``'s inputs at ``size``, then time it with its peak memory."""
    import gc

    import numpy as np

    from spillover.design import ClusterDesign

    warnings.simplefilter("ignore")
    if step == "exposure":
        import pyarrow as pa
        import pyarrow.parquet as pq

        rng = np.random.default_rng(1)
        links, sellers = folder / "links.parquet", folder / "sellers.parquet"
        buyer, seller = rng.integers(0, size // 5, size), rng.integers(0, size // 50, size)
        pq.write_table(pa.table({"buyer_id": buyer, "seller_id": seller}), links)
        ids = np.unique(seller)
        pq.write_table(pa.table({"unit_id": ids, "arm": (rng.random(ids.size) < 0.5).astype(np.int64)}), sellers)
        del buyer, seller, ids

        def run():
            from spillover.exposure import exposure
            from spillover.graph import BipartiteGraph
            from spillover.io import read_table, write_table

            graph = BipartiteGraph.from_edges(links, unit="buyer_id", treated="seller_id")
            write_table(exposure(graph, read_table(sellers), "bipartite"), folder / "exposure.parquet")
    elif step in ("louvain", "probabilities"):
        graph, labels = social_graph(size)
        design = ClusterDesign(labels, graph.nodes, treat_fraction=0.5)

        def run():
            if step == "louvain":
                from spillover.clustering import cluster

                cluster(graph, "louvain", seed=1)
            else:
                from spillover.exposure import probabilities

                probabilities(graph, "as4", design=design, joint=None, method="monte-carlo", n_draws=1_000, seed=2)
    elif step in ("hajek", "hajek_components"):
        graph, design, table, outcomes, _ = design_data(*(social_graph if step == "hajek" else
                                                          collaboration_graph)(size))

        def run():
            from spillover.estimate import estimate
            from spillover.exposure import probabilities

            estimate(outcomes, table, "hajek", probabilities=probabilities(graph, "as4", design=design))
    elif step == "simulate":
        from spillover import synth
        from spillover.simulate import OutcomeModel, Study

        study = Study.from_network(synth.collaboration_network(size, seed=0))

        def run():
            from spillover.simulate import compare_designs

            compare_designs(study, ("project", "component", "stratified-component"), OutcomeModel(), n_sims=100,
                            seed=1)
    else:
        raise SystemExit(f"unknown step {step!r}; choose from {list(LADDERS)}")
    gc.collect()
    _reset_peak()
    held = peak_gb()
    start = time.perf_counter()
    run()
    return {"step": step, "size": size, "unit": LADDERS[step][0], "seconds": round(time.perf_counter() - start, 2),
            "peak_gb": round(peak_gb(), 2), "inputs_gb": round(held, 2)}


def ladder(step: str, budget_gb: float, timeout: float, log=print) -> list[dict]:
    """Run ``step`` at each size of its ladder, each in a fresh process, until one's
    peak passes ``budget_gb`` or fails."""
    rows = []
    for size in LADDERS[step][1]:
        with tempfile.TemporaryDirectory(prefix="spillover-scale-") as folder:
            try:
                done = subprocess.run([sys.executable, "-m", "benchmarks.bench_scale", "--one", step, str(size), folder],
                                      capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f"{step} at {size:,}: did not finish in {timeout:.0f} s")
                break
        if done.returncode != 0:
            log(f"{step} at {size:,}: exited with code {done.returncode}: {done.stderr.strip()[-300:]}")
            break
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        log(json.dumps(row))
        if row["peak_gb"] > budget_gb:
            break
    return rows


def limit(rows: list[dict], budget_gb: float) -> float | None:
    """The size whose peak would reach ``budget_gb``, by a line through the two largest
    sizes run (None with fewer than two, or no growth)."""
    if len(rows) < 2:
        return None
    (a, b) = rows[-2], rows[-1]
    slope = (b["peak_gb"] - a["peak_gb"]) / (b["size"] - a["size"])
    return None if slope <= 0 else b["size"] + (budget_gb - b["peak_gb"]) / slope


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", nargs="+", choices=list(LADDERS), default=list(LADDERS))
    parser.add_argument("--budget-gb", type=float, default=24.0, help="the machine's memory")
    parser.add_argument("--timeout", type=float, default=1_800.0, help="seconds one size may take")
    parser.add_argument("--out", help="write the rows and limits as JSON here")
    parser.add_argument("--one", nargs=3, metavar=("STEP", "SIZE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), Path(args.one[2]))))
        return 0
    results = {}
    for step in args.steps:
        rows = ladder(step, args.budget_gb, args.timeout)
        results[step] = {"what": WHAT[step], "rows": rows, "limit": limit(rows, args.budget_gb)}
        print(f"{step}: largest run {rows[-1]['size'] if rows else '-'}, extrapolated limit in "
              f"{args.budget_gb:g} GB: {results[step]['limit']}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
