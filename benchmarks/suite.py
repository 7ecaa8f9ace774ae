"""Every speed target of spillover, measured against its baseline in the same run.

    python -m benchmarks [--scale small|medium|full] [--only NAME ...] [--out results.json] [--readme]

Each measurement (spillover's step, and the baseline it is compared with) runs in a fresh
process, so the peak memory printed beside its time is that step's own. The ratio is
spillover's time over the baseline's; ``target`` is what the issue tracker asks for. Data
are generated once into a temporary folder, outside the timings. ``--readme`` writes the
table between the ``benchmarks`` markers of README.md; ``--out`` writes the rows as JSON.

Scales: ``small`` runs in a few minutes on 2 cores (the test suite runs a tiny one);
``full`` is the issue's sizes (50M edges, 1M nodes: an hour or more on 2 cores).
"""

from __future__ import annotations

import argparse
import importlib
import datetime as dt
import json
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

SCALES = {
    #                 tiny     small      medium      full
    "edges":        (200_000, 2_000_000, 10_000_000, 50_000_000),  # bipartite links (load, exposure)
    "small_edges":  (200_000, 1_000_000, 1_000_000,  1_000_000),   # the command line's smallest target size
    "nodes":        (20_000,  200_000,   500_000,    1_000_000),   # social graph (probabilities, louvain)
    "draws":        (100,     1_000,     1_000,      1_000),
    "hajek_units":  (5_000,   20_000,    50_000,     1_000_000),   # social graph, planted communities
    "component_users": (20_000, 200_000, 500_000,    1_000_000),   # collaboration network, component design
    "users":        (20_000,  100_000,   200_000,    1_000_000),   # design study
    "sims":         (50,      200,       500,        1_000),
    "ols_units":    (50_000,  500_000,   1_000_000,  5_000_000),
    "daily_users":  (20_000,  100_000,   300_000,    1_000_000),   # the daily job's example, one day
    "large_daily_users": (50_000, 300_000, 1_000_000, 10_000_000),  # the same at the 10 million
    "buyers":       (5_000,   20_000,    50_000,     100_000),     # marketplace study (sellers: a tenth)
    "market_sims":  (20,      100,       500,        500),
}
SCALE_NAMES = ("tiny", "small", "medium", "full")


def size(name: str, scale: str) -> int:
    return SCALES[name][SCALE_NAMES.index(scale)]


# --------------------------------------------------------------------------- data


def prepare(scale: str, folder: Path) -> None:
    """Inputs shared by several steps, written once: bipartite edge lists (``edges`` and
    ``small_edges`` links) and their seller assignments."""
    _write_links(size("edges", scale), folder, "")
    _write_links(size("small_edges", scale), folder, "-small")


def _write_links(n_edges: int, folder: Path, suffix: str) -> None:
    """``links{suffix}.parquet``: ``n_edges`` random buyer-seller links (a fifth as many
    buyers, a fiftieth as many sellers); ``sellers{suffix}.parquet``: half the sellers treated."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    n_buyers, n_sellers = n_edges // 5, n_edges // 50
    rng = np.random.default_rng(1)
    links = folder / f"links{suffix}.parquet"
    pq.write_table(pa.table({"buyer_id": rng.integers(0, n_buyers, n_edges),
                             "seller_id": rng.integers(0, n_sellers, n_edges)}), links)
    sellers = np.unique(pq.read_table(links, columns=["seller_id"])["seller_id"].to_numpy())
    pq.write_table(pa.table({"unit_id": sellers, "arm": (rng.random(sellers.size) < 0.5).astype(np.int64)}),
                   folder / f"sellers{suffix}.parquet")


DAILY_DATES = ("2026-11-01", "2026-11-02")


def _prepare_daily(scale: str, folder: Path, users: str = "daily_users", name: str = "daily") -> None:
    """The daily job's example (two days of ``users`` users with churn, and outcomes), its
    first day already run once per engine, each in its own folder: the steps time day two."""
    import shutil

    from spillover.daily import daily_engine, run_pending
    from spillover.experiment import EXAMPLE, load_config, write_example_data

    root = folder / name
    root.mkdir()
    (root / "experiment.toml").write_text(EXAMPLE, encoding="utf-8")
    write_example_data(root / "experiment.toml", n_users=size(users, scale), n_days=len(DAILY_DATES), seed=1)
    for engine in ("memory", "duckdb"):  # a loop over the two engines of the daily job
        shutil.copytree(root, folder / f"{name}-{engine}")
        config = load_config(folder / f"{name}-{engine}" / "experiment.toml")
        run_pending(config, DAILY_DATES[0], engine=daily_engine(config, engine))
    if name == "daily":
        shutil.copytree(folder / "daily-memory", folder / "daily-spark")  # day one's ledger: the same on every engine


def social_graph(n: int):
    """A synthetic social graph of ``n`` nodes (mean degree 10) and its planted communities."""
    from spillover import synth

    graph = synth.social_graph(n, mean_degree=10, seed=1)
    return graph, graph.node_data["community"].reindex(graph.nodes).to_numpy()


def collaboration_graph(n: int):
    """The user graph of a synthetic collaboration network of ``n`` users, and its components."""
    from spillover import synth
    from spillover.clustering import cluster

    graph = synth.collaboration_network(n, seed=0).user_graph()
    return graph, cluster(graph, "components").labels


def _social(scale: str):
    return social_graph(size("nodes", scale))


# --------------------------------------------------------------------------- steps
# each returns the seconds of its measured part (set-up excluded)


def load_ours(scale: str, folder: Path) -> float:
    import warnings

    from spillover.graph import BipartiteGraph

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate links of random data are collapsed with a warning
        BipartiteGraph.from_edges(folder / "links.parquet", unit="buyer_id", treated="seller_id")
    return time.perf_counter() - start


def load_anchor(scale: str, folder: Path) -> float:
    import numpy as np
    import pyarrow.parquet as pq
    import scipy.sparse as sp

    start = time.perf_counter()
    table = pq.read_table(folder / "links.parquet")
    b, s = table["buyer_id"].to_numpy(), table["seller_id"].to_numpy()
    sp.csr_array((np.ones(b.size, dtype=np.int32), (b, s)), shape=(int(b.max()) + 1, int(s.max()) + 1))
    return time.perf_counter() - start


def exposure_ours(scale: str, folder: Path, suffix: str = "") -> float:
    """``spillover exposure`` from launch to exit, in a new process: imports included."""
    return _launch(*_spillover_command(), "exposure", str(folder / f"links{suffix}.parquet"), "--source", "buyer_id",
                   "--target", "seller_id", "--bipartite", "--assignment", str(folder / f"sellers{suffix}.parquet"),
                   "--mapping", "bipartite", "--out", str(folder / "exposure-ours.parquet"), "--json", best_of=1)


def exposure_small_ours(scale: str, folder: Path) -> float:
    return exposure_ours(scale, folder, "-small")


def exposure_read_ours(scale: str, folder: Path) -> float:
    """Bipartite exposure from the Parquet edge list, through the API: the graph loaded
    (ids checked, duplicate links collapsed) and every buyer's exposure mapped."""
    import warnings

    from spillover.exposure import exposure
    from spillover.graph import BipartiteGraph
    from spillover.io import read_table

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate links of random data are collapsed with a warning
        graph = BipartiteGraph.from_edges(folder / "links.parquet", unit="buyer_id", treated="seller_id")
        exposure(graph, read_table(folder / "sellers.parquet"), "bipartite")
    return time.perf_counter() - start


def parquet_read_anchor(scale: str, folder: Path) -> float:
    """Reading the edge list's Parquet file with pyarrow: the floor of any step that reads it."""
    import pyarrow.parquet as pq

    start = time.perf_counter()
    pq.read_table(folder / "links.parquet")
    return time.perf_counter() - start


EXPOSURE_SQL = """
import sys, duckdb
links, sellers, out = sys.argv[1:]
duckdb.connect().execute(f'''COPY (
    SELECT l.buyer_id AS unit_id, count(*) AS n_neighbors, sum(a.arm) AS n_treated_neighbors,
           avg(a.arm) AS treated_fraction,
           CASE WHEN avg(a.arm) >= 1 THEN 'direct' WHEN avg(a.arm) <= 0 THEN 'control' ELSE 'indirect' END
    FROM (SELECT DISTINCT buyer_id, seller_id FROM '{links}') l
    JOIN '{sellers}' a ON l.seller_id = a.unit_id GROUP BY l.buyer_id
) TO '{out}' (FORMAT parquet)''')
"""


def exposure_anchor(scale: str, folder: Path, suffix: str = "") -> float:
    """The DuckDB SQL a team would write (join links to arms, group by buyer, label), run
    as a script from launch to exit, as the command is."""
    return _launch(sys.executable, "-c", EXPOSURE_SQL, str(folder / f"links{suffix}.parquet"),
                   str(folder / f"sellers{suffix}.parquet"), str(folder / "exposure-duckdb.parquet"), best_of=1)


def exposure_small_anchor(scale: str, folder: Path) -> float:
    return exposure_anchor(scale, folder, "-small")


def probabilities_ours(scale: str, folder: Path) -> float:
    import warnings

    from spillover.design import ClusterDesign
    from spillover.exposure import probabilities

    graph, labels = _social(scale)
    design = ClusterDesign(labels, graph.nodes, treat_fraction=0.5)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probabilities(graph, "as4", design=design, joint=None, method="monte-carlo", n_draws=size("draws", scale),
                      seed=2)
    return time.perf_counter() - start


def probabilities_anchor(scale: str, folder: Path) -> float:
    """The bare factored product (A C) W over the same draws, in chunks of 100."""
    import numpy as np
    import scipy.sparse as sp

    from spillover.design import ClusterDesign
    from spillover.graph import group_indicator

    graph, labels = _social(scale)
    design = ClusterDesign(labels, graph.nodes, treat_fraction=0.5)
    start = time.perf_counter()
    factored = sp.csr_array(graph.symmetric() @ group_indicator(design.clusters, design.n_clusters).T)
    rng = np.random.default_rng(2)
    for first in range(0, size("draws", scale), 100):
        factored @ design.draw_clusters(min(100, size("draws", scale) - first), rng)
    return time.perf_counter() - start


def design_data(graph, labels):
    """A cluster design of ``labels`` on ``graph``, one as4 exposure table and noise outcomes."""
    import numpy as np
    import pandas as pd

    from spillover.design import ClusterDesign
    from spillover.exposure import exposure

    design = ClusterDesign(labels, graph.nodes, treat_fraction=0.5)
    table = exposure(graph, design.assign(seed=1), "as4")
    outcomes = pd.DataFrame({"unit_id": graph.nodes, "y": np.random.default_rng(1).normal(size=graph.n_nodes)})
    return graph, design, table, outcomes, labels


def _community_data(scale: str):
    """A social graph of ``hajek_units`` nodes, its planted communities as clusters."""
    return design_data(*social_graph(size("hajek_units", scale)))


def _component_data(scale: str):
    """A collaboration network of ``component_users`` users, its components as clusters."""
    return design_data(*collaboration_graph(size("component_users", scale)))


def _time_hajek(data) -> float:
    """Hajek with the design's exact probabilities (computing them is part of the time)."""
    import warnings

    from spillover.estimate import estimate
    from spillover.exposure import probabilities

    graph, design, table, outcomes, _ = data
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimate(outcomes, table, "hajek", probabilities=probabilities(graph, "as4", design=design))
    return time.perf_counter() - start


def _time_ols_cluster(data) -> float:
    """ols-cluster (CR2) on the same data: the estimator a user would fall back to."""
    import warnings

    import pandas as pd

    from spillover.estimate import estimate

    graph, _, table, outcomes, labels = data
    clusters = pd.DataFrame({"unit_id": graph.nodes, "cluster_id": labels})
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimate(outcomes, table, "ols-cluster", clusters=clusters)
    return time.perf_counter() - start


def hajek_ours(scale: str, folder: Path) -> float:
    return _time_hajek(_community_data(scale))


def hajek_anchor(scale: str, folder: Path) -> float:
    return _time_ols_cluster(_community_data(scale))


def hajek_components_ours(scale: str, folder: Path) -> float:
    return _time_hajek(_component_data(scale))


def hajek_components_anchor(scale: str, folder: Path) -> float:
    return _time_ols_cluster(_component_data(scale))


DESIGNS = ("project", "component", "stratified-component")


def simulate_ours(scale: str, folder: Path) -> float:
    from spillover import synth
    from spillover.simulate import OutcomeModel, Study, compare_designs

    study = Study.from_network(synth.collaboration_network(size("users", scale), seed=0))
    start = time.perf_counter()
    compare_designs(study, DESIGNS, OutcomeModel(), n_sims=size("sims", scale), seed=1)
    return time.perf_counter() - start


def simulate_anchor(scale: str, folder: Path) -> float:
    """The tutorial's loop, one statsmodels cluster-robust OLS per experiment, timed on 10
    experiments per design and scaled to the same number of experiments."""
    import numpy as np
    import pandas as pd
    import statsmodels.formula.api as smf

    from spillover import synth
    from spillover.simulate import OutcomeModel, Study

    study = Study.from_network(synth.collaboration_network(size("users", scale), seed=0))
    model, rng, per_design = OutcomeModel(), np.random.default_rng(2), 10
    start = time.perf_counter()
    for design in DESIGNS:
        codes, ids = pd.factorize(study.units(design))
        for _ in range(per_design):
            z = rng.permutation(np.arange(len(ids)) < len(ids) // 2).astype(float)[codes]
            y = (model.tau * z + model.gamma * model.tau * (study.adjacency @ z)
                 + rng.standard_normal(study.component.max() + 1)[study.component] + rng.standard_normal(z.size))
            frame = pd.DataFrame({"y": y, "z": z, "g": codes})
            smf.ols("y ~ z", data=frame).fit(cov_type="cluster", cov_kwds={"groups": frame["g"]})
    return (time.perf_counter() - start) * size("sims", scale) / per_design


MARKET_DESIGNS = {"sellers": None, "40 seller clusters": 40, "160 seller clusters": 160,  # the command's default
                  "exposure-design": "exposure-design"}


def _market(scale: str):
    from spillover import synth

    buyers = size("buyers", scale)
    return synth.marketplace(buyers, buyers // 10, categories=40, seed=1)


def marketplace_ours(scale: str, folder: Path) -> float:
    from spillover.simulate import marketplace_study

    market = _market(scale)
    start = time.perf_counter()
    marketplace_study(market, MARKET_DESIGNS, n_sims=size("market_sims", scale), seed=2)
    return time.perf_counter() - start


def marketplace_anchor(scale: str, folder: Path) -> float:
    """The plain loop: per design, the ERL kernel built once, then one draw at a time
    through the public functions (``erl``, the seller jackknife, the difference in
    means), timed on 10 draws per design and scaled to the study's number of draws."""
    import numpy as np

    from spillover.design import BipartiteDesign
    from spillover.estimate.bipartite import seller_jackknife
    from spillover.estimate.erl import ERLKernel, erl, joint_probabilities
    from spillover.marketplace import exposure_design, link_shares, seller_clusters, unit_weights

    market, per_design, rng = _market(scale), 10, np.random.default_rng(2)
    shares = link_shares(market)
    alpha = shares @ rng.normal(0, 0.5, market.n_treated_side) + rng.normal(size=market.n_units)
    beta = 0.5 + 0.5 * rng.normal(size=market.n_units)
    built = looped = 0.0
    for spec in MARKET_DESIGNS.values():
        labels = (None if spec is None else exposure_design(market, seed=1).to_numpy() if isinstance(spec, str)
                  else seller_clusters(market, spec, seed=1).to_numpy())
        design = BipartiteDesign(market, clusters=labels)
        randomization = design.randomization()
        start = time.perf_counter()
        weights = unit_weights(market, randomization.blocks)
        kernel = ERLKernel.build(weights, joint_probabilities(randomization), max_pairs=None)
        built += time.perf_counter() - start
        start = time.perf_counter()
        for draw in range(per_design):
            x = shares @ (design.assign(seed=draw).arms >= 1).astype(float)
            y = alpha + beta * x
            erl(y, x, kernel)
            direct, control = x >= 1 - 1e-12, x <= 1e-12
            y[direct].mean() - y[control].mean()
            matrix = np.column_stack([np.ones(y.size), direct, ~direct & ~control]).astype(float)
            seller_jackknife(matrix, y, weights, np.array([[0.0, 1.0, 0.0]]))
        looped += time.perf_counter() - start
    return built + looped * size("market_sims", scale) / per_design


def louvain_ours(scale: str, folder: Path) -> float:
    import warnings

    importlib.import_module("networkit")  # imported before the clock, as the baseline's is

    from spillover.clustering import cluster

    graph, _ = _social(scale)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster(graph, "louvain", seed=1)
    return time.perf_counter() - start


def louvain_anchor(scale: str, folder: Path) -> float:
    """networkit's parallel Louvain (PLM) on the same graph, built from its edge list."""
    import networkit as nk

    graph, _ = _social(scale)
    rows, cols = graph.edge_index()
    start = time.perf_counter()
    nk_graph = nk.GraphFromCoo((rows, cols), n=graph.n_nodes, directed=False)
    nk.community.PLM(nk_graph, refine=False).run()
    return time.perf_counter() - start


def _ols_data(scale: str):
    import numpy as np

    n = size("ols_units", scale)
    rng = np.random.default_rng(3)
    clusters = rng.integers(0, n // 20, n)
    z = (clusters % 2).astype(float)
    y = 0.3 * z + rng.normal(size=n // 20 + 1)[clusters] + rng.normal(size=n)
    return y, z, clusters


def ols_ours(scale: str, folder: Path) -> float:
    import numpy as np

    from spillover.variance import ols

    y, z, clusters = _ols_data(scale)
    start = time.perf_counter()
    ols(y, np.column_stack([np.ones_like(z), z]), clusters, "CR1")
    return time.perf_counter() - start


def ols_anchor(scale: str, folder: Path) -> float:
    import numpy as np
    import statsmodels.api as sm

    y, z, clusters = _ols_data(scale)
    start = time.perf_counter()
    sm.OLS(y, np.column_stack([np.ones_like(z), z])).fit(cov_type="cluster", cov_kwds={"groups": clusters})
    return time.perf_counter() - start


def _launch(*args: str, best_of: int = 5) -> float:
    """Seconds from launching ``args`` as a new process to its exit, the best of ``best_of``
    runs (what a person at a shell waits for, imports included)."""
    import subprocess

    times = []
    for _ in range(best_of):
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)


def _spillover_command() -> list[str]:
    """The installed ``spillover`` script beside this Python (``python -m spillover`` if absent)."""
    script = Path(sys.executable).parent / "spillover"
    return [str(script)] if script.exists() else [sys.executable, "-m", "spillover"]


def version_ours(scale: str, folder: Path) -> float:
    return _launch(*_spillover_command(), "--version")


def help_ours(scale: str, folder: Path) -> float:
    return _launch(*_spillover_command(), "--help")


def command_start_ours(scale: str, folder: Path) -> float:
    return _launch(*_spillover_command(), "estimate", "--help")


def python_anchor(scale: str, folder: Path) -> float:
    """An empty Python process: the floor any command-line tool in Python starts from."""
    return _launch(sys.executable, "-c", "pass")


def _daily_day(folder: Path, engine: str, *options: str, name: str = "daily") -> float:
    """Day two of the daily job on ``engine``, launch to exit, in a fresh copy of its folder."""
    import shutil

    target = Path(tempfile.mkdtemp(prefix="daily-", dir=folder))
    shutil.copytree(folder / f"{name}-{engine}", target / "exp")
    return _launch(*_spillover_command(), "run", str(target / "exp" / "experiment.toml"), "--engine", engine,
                   "--date", DAILY_DATES[1], "--json", *options, best_of=1)


def daily_duckdb_ours(scale: str, folder: Path) -> float:
    return _daily_day(folder, "duckdb", "--memory-limit", "2GB")


def daily_spark_ours(scale: str, folder: Path) -> float:
    return _daily_day(folder, "spark", "--spark-master", "local[2]")


def daily_memory_ours(scale: str, folder: Path) -> float:
    return _daily_day(folder, "memory")


def daily_large_ours(scale: str, folder: Path) -> float:
    return _daily_day(folder, "duckdb", "--memory-limit", "4GB", name="daily-large")


def daily_large_anchor(scale: str, folder: Path) -> float:
    return _daily_day(folder, "memory", name="daily-large")


def daily_read_anchor(scale: str, folder: Path) -> float:
    """Reading the day's snapshot and outcomes with pandas: the I/O floor of any daily job."""
    import pandas as pd

    start = time.perf_counter()
    for name in ("memberships", "outcomes"):
        pd.read_parquet(folder / "daily" / "data" / f"{name}-{DAILY_DATES[1]}.parquet")
    return time.perf_counter() - start


def demo_ours(scale: str, folder: Path) -> float:
    return _launch(*_spillover_command(), "demo", "--out", str(folder / "demo"), best_of=1)


def demo_anchor(scale: str, folder: Path) -> float:
    """Importing the libraries the demo uses, in a fresh process: its fixed cost."""
    return _launch(sys.executable, "-c", "import spillover.demo", best_of=1)


# name: (what, ours, baseline name, baseline, target ratio or None, absolute target seconds or None)
STEPS: dict[str, tuple[str, Callable, str, Callable, float | None, float | None]] = {
    "load": ("bipartite graph from Parquet ({edges:,} links)", load_ours,
             "pyarrow read + one scipy CSR", load_anchor, 1.5, None),
    "exposure": ("`spillover exposure` CLI, bipartite, Parquet to Parquet ({edges:,} links), launch to exit",
                 exposure_ours, "DuckDB SQL script, launch to exit", exposure_anchor, 1.0, None),
    "exposure_small": ("`spillover exposure` CLI, the same at {small_edges:,} links, launch to exit",
                       exposure_small_ours, "DuckDB SQL script, launch to exit", exposure_small_anchor, 1.0, None),
    "exposure_read": ("bipartite exposure from Parquet through the API, graph loaded and checked ({edges:,} links)",
                      exposure_read_ours, "pyarrow read of the Parquet file", parquet_read_anchor, 2.0, None),
    "probabilities": ("Monte Carlo probabilities, {draws:,} draws, {nodes:,} nodes, cluster design", probabilities_ours,
                      "bare factored product (A C) W", probabilities_anchor, 1.0, None),
    "hajek": ("hajek with the design's exact probabilities, social graph, communities, {hajek_units:,} units",
              hajek_ours, "ols-cluster on the same data", hajek_anchor, 3.0, None),
    "hajek_components": ("hajek with the design's exact probabilities, collaboration network, components, "
                         "{component_users:,} users", hajek_components_ours, "ols-cluster on the same data",
                         hajek_components_anchor, 3.0, None),
    "simulate": ("design study, {sims:,} sims x 3 designs, {users:,} users", simulate_ours,
                 "statsmodels loop per experiment", simulate_anchor, None, 300.0),
    "marketplace": ("marketplace design study, {market_sims:,} sims x 4 designs (sellers, 40 and 160 seller clusters, "
                    "exposure-design; ERL, ols-bipartite, difference in means), {buyers:,} buyers", marketplace_ours,
                    "a plain loop, one draw at a time", marketplace_anchor, None, 300.0),
    "louvain": ("Louvain, {nodes:,} nodes", louvain_ours, "raw networkit PLM", louvain_anchor, 1.2, None),
    "ols": ("cluster-robust OLS (CR1), {ols_units:,} units", ols_ours, "statsmodels OLS cluster", ols_anchor, 1.0,
            None),
    "daily_memory": ("`spillover run --engine memory`, one day of the daily job, {daily_users:,} users, launch to exit",
                     daily_memory_ours, "pandas read of the day's snapshot and outcomes", daily_read_anchor, None,
                     60.0),
    "daily_duckdb": ("`spillover run --engine duckdb --memory-limit 2GB`, the same day", daily_duckdb_ours,
                     "`spillover run --engine memory`, the same day", daily_memory_ours, 1.5, None),
    "daily_spark": ("`spillover run --engine spark --spark-master local[2]`, the same day (the JVM's start included)",
                    daily_spark_ours, "`spillover run --engine memory`, the same day", daily_memory_ours, None, None),
    "daily_large": ("`spillover run --engine duckdb --memory-limit 4GB`, one day of the daily job, "
                    "{large_daily_users:,} users, launch to exit", daily_large_ours,
                    "`spillover run --engine memory`, the same day", daily_large_anchor, None, None),
    "version": ("`spillover --version`, launch to exit", version_ours, "`python -c pass`", python_anchor, None, 0.3),
    "help": ("`spillover --help`, launch to exit", help_ours, "`python -c pass`", python_anchor, None, 0.3),
    "command_start": ("`spillover estimate --help`: a command's start-up before it reads data", command_start_ours,
                      "`python -c pass`", python_anchor, None, 0.5),
    "demo": ("`spillover demo`, launch to exit", demo_ours, "`python -c 'import spillover.demo'`", demo_anchor, None,
             60.0),
}
# steps whose absolute target holds at every scale (what a person waits for does not grow with the data)
EVERY_SCALE = {"version", "help", "command_start", "demo"}


# --------------------------------------------------------------------------- running


def peak_gb() -> float:
    """This process's peak resident memory in GB: ``VmHWM`` where Linux has it (the
    peak of this process's own memory), else ``ru_maxrss``, which on Linux keeps the
    peak of the process that started it (the runner's, holding the generated data)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1e6
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def _child(step: Callable, scale: str, folder: str, queue) -> None:
    try:
        seconds = step(scale, Path(folder))
        launched = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6  # a step that launches a command
        queue.put(("ok", seconds, max(peak_gb(), launched)))
    except BaseException as error:  # reported in the table, not raised: one failure must not hide the rest
        queue.put(("error", f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}", None))


def measure(step: Callable, scale: str, folder: Path, timeout: float) -> dict:
    """Run one step in a fresh process: its seconds and its peak memory (GB), or why not."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(step, scale, str(folder), queue))
    process.start()
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
        return {"seconds": None, "peak_gb": None, "note": f"did not finish in {timeout:.0f} s"}
    if queue.empty():
        return {"seconds": None, "peak_gb": None, "note": f"exited with code {process.exitcode} (out of memory?)"}
    status, value, peak = queue.get()
    if status != "ok":
        return {"seconds": None, "peak_gb": None, "note": value}
    return {"seconds": round(value, 3), "peak_gb": round(peak, 2), "note": ""}


def _best(first: dict, other: dict) -> dict:
    """The faster of two measurements of one side (a failure only where both failed)."""
    if first["seconds"] is None:
        return other
    if other["seconds"] is None or first["seconds"] <= other["seconds"]:
        return first
    return other


#: Steps whose target is their peak memory (GB), at full scale.
PEAK_TARGETS_GB = {"daily_large": 6.0}
#: Steps whose peak memory must also be at most their baseline's.
PEAK_NOT_ABOVE_BASELINE = ("exposure",)
REPEAT_BELOW_S = 30.0  # steps faster than this are measured ``repeats`` times, alternating sides


def _byte_compile() -> None:
    """Byte-compile spillover's modules once, as installing the package from a wheel does:
    from an editable install under ``PYTHONDONTWRITEBYTECODE`` every command-line row would
    otherwise time compiling them again at each launch (0.1-0.2 s here), which an installed
    package never does."""
    import compileall

    import spillover

    compileall.compile_dir(Path(spillover.__file__).parent, quiet=1)


def run(scale: str, only: list[str] | None = None, timeout: float = 1_800.0, log=print,
        repeats: int = 3) -> list[dict]:
    """Measure every step (or ``only`` those) at ``scale``; one row per step. Each side
    runs in a fresh process; steps under :data:`REPEAT_BELOW_S` run ``repeats`` times,
    ours and the baseline alternating, and the fastest run of each side is kept (page
    cache and allocator state otherwise favour whichever side runs second)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="spillover-bench-") as name:
        folder = Path(name)
        prepare(scale, folder)
        _byte_compile()
        if not only or any(key.startswith("daily") and key != "daily_large" for key in only):
            _prepare_daily(scale, folder)
        if not only or "daily_large" in only:
            _prepare_daily(scale, folder, "large_daily_users", "daily-large")
        for key, (what, ours, baseline, anchor, ratio_target, seconds_target) in STEPS.items():
            if only and key not in only:
                continue
            sizes = {name: size(name, scale) for name in SCALES}
            load = _load()
            mine, theirs = measure(ours, scale, folder, timeout), measure(anchor, scale, folder, timeout)
            pairs = [(mine["seconds"], theirs["seconds"])]
            for _ in range(repeats - 1):
                if max(mine["seconds"] or timeout, theirs["seconds"] or timeout) > REPEAT_BELOW_S:
                    break
                again, other = measure(ours, scale, folder, timeout), measure(anchor, scale, folder, timeout)
                pairs.append((again["seconds"], other["seconds"]))
                mine, theirs = _best(mine, again), _best(theirs, other)
            ratio = (mine["seconds"] / theirs["seconds"] if mine["seconds"] is not None and theirs["seconds"]
                     else None)
            # the ratio of each alternated pair of runs: how much it moves from run to run
            spread = [a / b for a, b in pairs if a is not None and b]
            if key in PEAK_TARGETS_GB:  # a bound on memory, at the sizes
                target = f"peak <= {PEAK_TARGETS_GB[key]:g} GB" + ("" if scale == "full" else " at full scale")
                met = (mine["peak_gb"] is not None and mine["peak_gb"] <= PEAK_TARGETS_GB[key]) if scale == "full" \
                    else None
            elif ratio_target is not None:
                target, met = f"ratio <= {ratio_target:g}", ratio is not None and ratio <= ratio_target
                if key in PEAK_NOT_ABOVE_BASELINE:
                    target += ", peak <= the baseline's"
                    met = met and None not in (mine["peak_gb"], theirs["peak_gb"]) \
                        and mine["peak_gb"] <= theirs["peak_gb"]
            elif seconds_target is None:  # measured, with no target set
                target, met = "none set", None
            elif scale == "full" or key in EVERY_SCALE:  # an absolute target is set for the sizes
                target = f"<= {seconds_target:g} s"
                met = mine["seconds"] is not None and mine["seconds"] <= seconds_target
            else:
                target, met = f"<= {seconds_target:g} s at full scale", None
            row = {"step": key, "work": what.format(**sizes), "spillover_s": mine["seconds"],
                   "spillover_peak_gb": mine["peak_gb"], "baseline": baseline, "baseline_s": theirs["seconds"],
                   "baseline_peak_gb": theirs["peak_gb"], "ratio": None if ratio is None else round(ratio, 2),
                   "ratio_range": [round(min(spread), 2), round(max(spread), 2)] if len(spread) > 1 else None,
                   "load": load, "target": target, "met": met,
                   "note": "; ".join(n for n in (mine["note"], theirs["note"]) if n)}
            rows.append(row)
            log(f"{key}: {row['spillover_s']} s ({row['spillover_peak_gb']} GB) vs {row['baseline_s']} s "
                f"({row['baseline_peak_gb']} GB): ratio {row['ratio']} (runs {row['ratio_range']}, load {load}), "
                f"target {target}: "
                f"{'-' if met is None else 'met' if met else 'NOT met'}"
                f"{' - ' + row['note'] if row['note'] else ''}")
    return rows


def _load() -> float | None:
    """The machine's one-minute load average (None where the system has none): a table
    measured on a busy machine says so."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def markdown(rows: list[dict], scale: str) -> str:
    """The rows as a Markdown table: a ratio that moved between the alternated runs shows
    its range; a missed target says so."""
    def show(value, unit=""):
        return "-" if value is None else f"{value:g}{unit}"

    loads = [r["load"] for r in rows if r.get("load") is not None]
    load = f"; load average {min(loads):g}-{max(loads):g} on {os.cpu_count()} cores" if loads else ""
    lines = [f"Measured by `python -m benchmarks --scale {scale}` on {dt.date.today()} "
             f"({os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}{load}); "
             "times in seconds (steps under 30 s: the best of 3 runs, ours and the baseline alternating, the "
             "ratios of the alternated runs in brackets); command-line rows are new processes from launch to exit; "
             "peak memory of each step's own process (and of the command it launched).",
             "",
             "| work | spillover | peak | baseline | baseline time | peak | ratio | target | met |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['work']} | {show(r['spillover_s'], ' s')} | {show(r['spillover_peak_gb'], ' GB')} | "
                     f"{r['baseline']} | {show(r['baseline_s'], ' s')} | {show(r['baseline_peak_gb'], ' GB')} | "
                     f"{show(r['ratio'])}{_range(r.get('ratio_range'))} | {r['target']} | "
                     f"{'-' if r['met'] is None else 'yes' if r['met'] else '**no**'}"
                     f"{' (' + r['note'] + ')' if r['note'] else ''} |")
    return "\n".join(lines)


def _range(bounds) -> str:
    """`` (a-b)`` for a ratio that moved between runs; nothing otherwise."""
    return "" if not bounds or bounds[0] == bounds[1] else f" ({bounds[0]:g}-{bounds[1]:g})"


def update_readme(table: str, path: Path, block: str = "benchmarks") -> None:
    """Replace the text between the README's ``block`` markers with ``table``."""
    start, end = f"<!-- {block}:start -->", f"<!-- {block}:end -->"
    text = path.read_text(encoding="utf-8")
    if start not in text or end not in text:
        raise SystemExit(f"{path} has no '{start}' ... '{end}' block to update.")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{table}\n{end}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=SCALE_NAMES, default="small")
    parser.add_argument("--only", nargs="+", choices=list(STEPS), help="run these steps only")
    parser.add_argument("--timeout", type=float, default=1_800.0, help="seconds one measurement may take")
    parser.add_argument("--out", help="write the rows as JSON here")
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    parser.add_argument("--repeats", type=int, default=3,
                        help=f"runs of each side of a step under {REPEAT_BELOW_S:g} s (the fastest is kept)")
    args = parser.parse_args(argv)
    rows = run(args.scale, args.only, args.timeout, repeats=args.repeats)
    waits = [r for r in rows if r["step"] in EVERY_SCALE]  # what a person waits for: its own README block
    data = [r for r in rows if r["step"] not in EVERY_SCALE]
    tables = {block: markdown(part, args.scale) for block, part in (("benchmarks", data), ("benchmarks-wait", waits))
              if part}
    print("\n\n".join(tables.values()))
    if args.out:
        Path(args.out).write_text(json.dumps({"scale": args.scale, "date": str(dt.date.today()),
                                              "cores": os.cpu_count(), "rows": rows}, indent=2), encoding="utf-8")
    if args.readme:
        for block, table in tables.items():
            update_readme(table, Path(__file__).resolve().parent.parent / "README.md", block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
