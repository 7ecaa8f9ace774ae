"""Calibration study: do the intervals spillover prints cover as promised?

For every cell of a grid (design x mapping x estimator x source of the exposure
probabilities) a fixed finite population of potential outcomes with known contrasts is
re-randomized ``n_sims`` times under the design, each experiment is analysed through
:func:`spillover.estimate.estimate` (the code path of the command line), and the share
of the printed 95% intervals that contain the true contrast is reported with its Monte
Carlo standard error ``sqrt(c (1 - c) / n)``; ``no_interval`` is the share of effects
printed without an interval (too few effective units), ``n`` the intervals printed.

Outcomes: ``y_i = b_i + tau_direct * own_i + tau_indirect * exposed_i`` (``exposed``: at
least one treated neighbour; on a bipartite graph ``tau_direct`` when all of a buyer's
sellers are treated and ``tau_indirect`` when some are), with ``b_i`` a community
effect plus unit noise, drawn once. Under ``as4`` the contrasts with ``no`` are then
exactly the direct (``isol_dir``), indirect (``ind1``) and total (``dir_ind1``) effects.

``(exact, simulated)`` cells are the command line's default: with the design known,
HT/Hajek's standard error is the larger of the Aronow-Samii one and the estimator's sd
over fresh draws of the design.

Run ``python -m validation.calibration [--n-sims 1000] [--quick] [--out FILE.csv]``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from spillover import BipartiteGraph, SocialGraph, SpilloverError, synth
from spillover.design import ClusterDesign, IndividualDesign, StratifiedClusterDesign
from spillover.estimate import estimate
from spillover.estimate.pipeline import DESIGN_DRAWS
from spillover.exposure import ExposureGraph, exposure, probabilities
from spillover.exposure.montecarlo import condition_draws

TAU_DIRECT, TAU_INDIRECT = 1.0, 0.5


@dataclass
class Scenario:
    """One design on one graph, with its fixed potential outcomes and the analyses run."""

    name: str
    graph: SocialGraph | BipartiteGraph
    design: object
    mapping: str
    truth: dict[str, float]
    clusters: pd.DataFrame | None = None
    spillover: bool = True
    analyses: dict[str, Callable] = field(default_factory=dict)
    base: np.ndarray | None = None


def _base(graph, seed: int) -> np.ndarray:
    """Outcomes without treatment: a community effect plus unit noise where the graph has
    communities; on a social graph without them, unit noise plus the mean of the
    neighbours' (outcomes correlated along edges, as homophily makes them); else noise."""
    rng = np.random.default_rng(seed)
    if isinstance(graph, SocialGraph) and graph.node_data is not None and "community" in graph.node_data:
        community = pd.factorize(graph.node_data["community"].reindex(graph.nodes).to_numpy())[0]
        return rng.normal(size=community.max() + 1)[community] + rng.normal(size=graph.n_nodes)
    if isinstance(graph, SocialGraph):
        noise = rng.normal(size=graph.n_nodes)
        adjacency = graph.symmetric()
        degree = np.maximum(graph.degrees(), 1)
        return noise + (adjacency @ noise) / degree
    return rng.normal(size=graph.n_units)


def _outcomes(scenario: Scenario, kernel: ExposureGraph, z: np.ndarray) -> np.ndarray:
    counts = kernel.counts(z.astype(np.int8))
    if isinstance(scenario.graph, BipartiteGraph):
        share = counts.treated_fraction
        return scenario.base + TAU_DIRECT * (share >= 1) + TAU_INDIRECT * ((share > 0) & (share < 1))
    exposed = (counts.n_treated > 0) if scenario.spillover else 0.0
    return scenario.base + TAU_DIRECT * counts.own + TAU_INDIRECT * exposed


AS4_TRUTH = {"dir_ind1": TAU_DIRECT + TAU_INDIRECT, "isol_dir": TAU_DIRECT, "ind1": TAU_INDIRECT}


def _probability_analyses(scenario: Scenario, sources: tuple[str, ...], estimators=("hajek", "ht"),
                          trim: float = 0.0, simulate: bool = True, bound_alone: bool = True,
                          pairs: bool = False) -> None:
    """HT/Hajek analyses, one per source of the exposure probabilities (and, with
    ``trim``, Hajek on the units whose probabilities reach it; with ``simulate``, the
    command line's default path: exact probabilities and the design simulation, and with
    ``pairs`` that path with ``--variance-bound pairs`` too; ``bound_alone=False``
    leaves out the exact probabilities' analysis without the simulation)."""
    graph, design, mapping = scenario.graph, scenario.design, scenario.mapping
    for source in sources:
        if source == "exact":
            probs = probabilities(graph, mapping, design=design, method="exact")
        elif source == "monte carlo":
            probs = probabilities(graph, mapping, design=design, method="monte-carlo", n_draws=2_000, seed=101)
        else:  # draws made elsewhere, their blocks found from the draws
            probs = probabilities(graph, mapping, draws=design.draw(2_000, seed=102))
        for method in estimators if bound_alone or source != "exact" else ():
            scenario.analyses[f"{method} ({source})"] = (
                lambda out, table, m=method, p=probs: estimate(out, table, m, probabilities=p))
        if source == "exact" and simulate:  # the command line's default: the design is known, so it is also simulated
            simulated = _simulated(graph, design, probs)
            for method in estimators:
                for bound in ("auto", "pairs") if pairs else ("auto",):
                    name = f"{method} (exact, simulated{', pairs' if bound == 'pairs' else ''})"
                    scenario.analyses[name] = (
                        lambda out, table, m=method, p=probs, b=bound: estimate(
                            out, table, m, probabilities=p, simulated_conditions=simulated, variance_bound=b))
        if trim:
            scenario.analyses[f"hajek ({source}, p >= {trim:g})"] = (
                lambda out, table, p=probs: estimate(out, table, "hajek", probabilities=p, min_probability=trim))


def _simulated(graph, design, probs) -> np.ndarray:
    """Each unit's condition in DESIGN_DRAWS fresh draws of the design, as ``analyse``
    computes them for the command line."""
    units, codes = condition_draws(graph, probs.mapping, design, DESIGN_DRAWS, seed=103)
    return codes[pd.Index(units).get_indexer(probs.units)]


def _regression_analyses(scenario: Scenario, vcovs=("CR2",), network: bool = False, bootstrap: int | None = None):
    """``ols-cluster`` with its defaults, and with each of ``vcovs`` and a t reference."""
    clusters = scenario.clusters
    scenario.analyses["ols-cluster (defaults)"] = lambda out, table: estimate(out, table, "ols-cluster",
                                                                              clusters=clusters, seed=7)
    for vcov in vcovs:
        scenario.analyses[f"ols-cluster {vcov}, t"] = (
            lambda out, table, v=vcov: estimate(out, table, "ols-cluster", clusters=clusters, vcov=v, bootstrap=None))
    if network:
        scenario.analyses["ols-network"] = (
            lambda out, table: estimate(out, table, "ols-network", clusters=clusters, graph=scenario.graph))
    if bootstrap:
        scenario.analyses["ols-cluster wild bootstrap (webb)"] = (
            lambda out, table: estimate(out, table, "ols-cluster", clusters=clusters, bootstrap=bootstrap,
                                        bootstrap_weights="webb", seed=7))


def _clustered(graph: SocialGraph, labels: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"unit_id": graph.nodes, "cluster_id": labels})


def scenarios(quick: bool = False) -> list[Scenario]:
    """The grid. ``quick`` keeps the cells the test suite runs."""
    out = []
    social = synth.social_graph(500, mean_degree=4, mixing=0.1, seed=1)

    s = Scenario("Bernoulli units (50%)", social, IndividualDesign(social.nodes, 0.5, complete=False), "as4",
                 AS4_TRUTH)
    _probability_analyses(s, ("exact",) if quick else ("exact", "monte carlo", "draws"), trim=0.01)
    out.append(s)

    s = Scenario("Bernoulli units (20%)", social, IndividualDesign(social.nodes, 0.2, complete=False), "as4",
                 AS4_TRUTH)
    _probability_analyses(s, ("exact",), trim=0.01)
    out.append(s)

    s = Scenario("complete units (30%)", social, IndividualDesign(social.nodes, 0.3), "as4", AS4_TRUTH)
    _probability_analyses(s, ("exact", "draws") if not quick else ("draws",), ("hajek",), simulate=not quick)
    out.append(s)

    s = Scenario("complete units, no spillover", social, IndividualDesign(social.nodes, 0.5), "fraction",
                 {"treated": TAU_DIRECT}, spillover=False)
    s.analyses["difference-in-means"] = lambda o, t: estimate(o, t, "difference-in-means")
    _probability_analyses(s, ("exact",), ("hajek",), simulate=not quick)
    out.append(s)

    heavy = synth.social_graph(1_000, mean_degree=6, mixing=0.05, community_size_range=(10, 400), seed=4)
    heavy_labels = heavy.node_data["community"].reindex(heavy.nodes).to_numpy()
    n_heavy = len(np.unique(heavy_labels))
    s = Scenario(f"cluster, {n_heavy} heavy-tailed clusters", heavy,
                 ClusterDesign(heavy_labels, heavy.nodes), "as4", AS4_TRUTH, _clustered(heavy, heavy_labels))
    _probability_analyses(s, ("exact",), ("hajek",), trim=0.01, simulate=not quick)
    _regression_analyses(s, ("CR2",) if quick else ("CR1", "CR2"), network=not quick)
    out.append(s)

    s = Scenario(f"cluster, {n_heavy} heavy-tailed clusters, no spillover", heavy,
                 ClusterDesign(heavy_labels, heavy.nodes), "fraction", {"treated": TAU_DIRECT},
                 _clustered(heavy, heavy_labels), spillover=False)
    _regression_analyses(s, ("CR1", "CR2"), bootstrap=None if quick else 999)
    out.append(s)

    if not quick:
        many = synth.social_graph(4_000, mean_degree=5, mixing=0.05, community_size_range=(3, 20), seed=5)
        many_labels = many.node_data["community"].reindex(many.nodes).to_numpy()
        s = Scenario(f"cluster, {len(np.unique(many_labels))} clusters", many,
                     ClusterDesign(many_labels, many.nodes), "as4", AS4_TRUTH, _clustered(many, many_labels))
        _probability_analyses(s, ("exact", "draws"), ("hajek",), trim=0.01)
        _regression_analyses(s, ("CR2",), network=True)
        out.append(s)

        codes = pd.factorize(heavy_labels, sort=True)[0]
        stratified = StratifiedClusterDesign.from_units(codes, heavy.nodes, {"size": None}, n_bins=2,
                                                        sample_fraction=1.0)
        s = Scenario("stratified cluster (size strata)", heavy, stratified, "fraction", {"treated": TAU_DIRECT},
                     _clustered(heavy, heavy_labels), spillover=False)
        _regression_analyses(s, ("CR2",))
        _probability_analyses(s, ("monte carlo",), ("hajek",))
        out.append(s)

    few = synth.social_graph(300, mean_degree=5, mixing=0.05, community_size_range=(5, 120), seed=6)
    few_labels = few.node_data["community"].reindex(few.nodes).to_numpy()
    s = Scenario(f"cluster, {len(np.unique(few_labels))} clusters (few)", few, ClusterDesign(few_labels, few.nodes),
                 "fraction", {"treated": TAU_DIRECT}, _clustered(few, few_labels), spillover=False)
    _regression_analyses(s, ("CR1", "CR2"), bootstrap=None if quick else 999)
    out.append(s)

    market = synth.marketplace(400, 40, seed=2)
    s = Scenario("bipartite, sellers complete", market, IndividualDesign(market.treated, 0.5), "bipartite",
                 {"direct": TAU_DIRECT, "indirect": TAU_INDIRECT})
    _probability_analyses(s, ("exact",) if quick else ("exact", "draws"), simulate=not quick)
    out.append(s)
    if not quick:
        seller_groups = np.arange(market.n_treated_side) % 20
        s = Scenario("bipartite, 20 seller clusters", market,
                     ClusterDesign(seller_groups, market.treated, complete=False), "bipartite",
                     {"direct": TAU_DIRECT, "indirect": TAU_INDIRECT})
        _probability_analyses(s, ("exact",), ("hajek",))
        out.append(s)
    return out


def _from_networkx(G, communities: str | None = None) -> SocialGraph:
    """A networkx graph as ours, with the node attribute ``communities`` (if named) as
    the graph's communities: they drive the outcomes and serve as clusters."""
    edges = pd.DataFrame(list(G.edges()), columns=["source", "target"])
    data = None
    if communities:
        data = pd.DataFrame({"community": [G.nodes[v][communities] for v in G.nodes]}, index=list(G.nodes))
    return SocialGraph.from_edges(edges, nodes=list(G.nodes), node_data=data)


def networkx_scenarios(quick: bool = False) -> list[Scenario]:
    """Graphs the project did not generate: networkx's generators and the small graphs it
    ships, each under the designs a team would run on it, analysed by the command line's
    default path (exact probabilities, the design replayed) and the regression where
    whole clusters are randomized. ``quick``: the cells the test suite runs (the
    default paths only, and the dense graph where every experiment is refused)."""
    import networkx as nx

    full = not quick
    out = []
    ws = _from_networkx(nx.watts_strogatz_graph(1_000, 6, 0.1, seed=1))
    for share, complete in ((0.2, False), (0.5, True)) if full else ((0.5, True),):
        s = Scenario(f"nx Watts-Strogatz 1000 k=6, {'complete' if complete else 'Bernoulli'} units "
                     f"({share:.0%})", ws, IndividualDesign(ws.nodes, share, complete=complete), "as4", AS4_TRUTH)
        _probability_analyses(s, ("exact",), ("hajek", "ht") if full else ("hajek",), bound_alone=full)
        out.append(s)

    block = nx.stochastic_block_model([25] * 40, np.where(np.eye(40), 0.3, 0.004).tolist(), seed=1)
    sbm = _from_networkx(block, "block")
    labels = sbm.node_data["community"].reindex(sbm.nodes).to_numpy()
    s = Scenario("nx block model 40 x 25, 40 clusters", sbm, ClusterDesign(labels, sbm.nodes), "as4", AS4_TRUTH,
                 _clustered(sbm, labels))
    _probability_analyses(s, ("exact",), ("hajek", "ht") if full else ("hajek",), trim=0.01 if full else 0.0,
                          bound_alone=full, pairs=True)
    _regression_analyses(s, ("CR2",) if full else ())
    out.append(s)

    dense = _from_networkx(nx.powerlaw_cluster_graph(2_000, 20, 0.1, seed=2))  # mean degree 40, minimum 20
    graphs = [(dense, "nx powerlaw-cluster 2000, mean degree 40")]
    if full:
        rng = np.random.default_rng(3)
        weights = np.minimum(40 / 3 * (rng.pareto(1.5, 2_000) + 1), 600)  # Chung-Lu: heavy-tailed, mean about 40
        graphs.append((_from_networkx(nx.expected_degree_graph(weights.tolist(), seed=3, selfloops=False)),
                       "nx Chung-Lu 2000, heavy-tailed degree, mean 40"))
    for graph, label in graphs:
        for share in (0.2, 0.5) if full else (0.5,):
            s = Scenario(f"{label}, Bernoulli units ({share:.0%})", graph,
                         IndividualDesign(graph.nodes, share, complete=False), "as4", AS4_TRUTH)
            _probability_analyses(s, ("exact",), ("hajek",), bound_alone=full)
            out.append(s)

    karate = _from_networkx(nx.karate_club_graph())
    s = Scenario("nx karate club (34), complete units (50%)", karate, IndividualDesign(karate.nodes, 0.5), "as4",
                 AS4_TRUTH)
    _probability_analyses(s, ("exact",), ("hajek",), bound_alone=full)
    out.append(s)

    davis = nx.davis_southern_women_graph()
    links = pd.DataFrame([(a, b) if davis.nodes[a]["bipartite"] == 0 else (b, a) for a, b in davis.edges()],
                         columns=["woman", "event"])
    women = BipartiteGraph.from_edges(links, "woman", "event")
    s = Scenario("nx Davis southern women (18 x 14), events complete (50%)", women,
                 IndividualDesign(women.treated, 0.5), "bipartite", {"direct": TAU_DIRECT, "indirect": TAU_INDIRECT})
    _probability_analyses(s, ("exact",), ("hajek",), bound_alone=full)
    out.append(s)
    return out


def run(scenario: Scenario, n_sims: int, seed: int = 0) -> pd.DataFrame:
    """Coverage, bias, interval width and mean se / sd of every analysis of ``scenario``."""
    scenario.base = _base(scenario.graph, seed + 17)
    kernel = ExposureGraph.build(scenario.graph)
    draws = scenario.design.draw(n_sims, seed=seed)
    records = []
    failures = {name: 0 for name in scenario.analyses}
    for r in range(n_sims):  # a loop over simulated experiments; each analysis is vectorised
        z = np.asarray(draws[:, r])
        table = exposure(scenario.graph, pd.Series(z, index=kernel.randomized), scenario.mapping)
        outcomes = pd.DataFrame({"unit_id": kernel.units, "y": _outcomes(scenario, kernel, (z >= 1).astype(float))})
        for name, analysis in scenario.analyses.items():
            try:
                effects = analysis(outcomes, table).effects
            except SpilloverError:  # e.g. a unit observed where its Monte Carlo probability is 0
                failures[name] += 1
                continue
            for effect in effects:
                if effect.condition in scenario.truth:
                    records.append((name, effect.condition, effect.estimate, effect.se, effect.ci_low, effect.ci_high,
                                    effect.n_units))
    frame = pd.DataFrame(records, columns=["estimator", "condition", "estimate", "se", "ci_low", "ci_high", "units"])
    frame["truth"] = frame["condition"].map(scenario.truth)
    # coverage of the intervals printed; an effect printed without one (too few effective units) is counted apart
    frame["printed"] = frame["ci_low"].notna()
    frame["covered"] = ((frame["ci_low"] <= frame["truth"]) & (frame["truth"] <= frame["ci_high"])).astype(float).where(
        frame["printed"])
    summary = frame.groupby(["estimator", "condition"], sort=False).agg(
        n=("covered", "count"), coverage=("covered", "mean"), bias=("estimate", "mean"),
        sd=("estimate", "std"), se=("se", "mean"), width=("ci_high", "mean"), units=("units", "mean"),
        no_interval=("printed", lambda printed: float(1 - printed.mean())))
    summary["bias"] -= frame.groupby(["estimator", "condition"], sort=False)["truth"].first()
    summary["width"] -= frame.groupby(["estimator", "condition"], sort=False)["ci_low"].mean()
    summary["se_sd"] = summary["se"] / summary["sd"]  # mean standard error against the estimates' true spread
    summary["mc_se"] = np.sqrt(summary["coverage"] * (1 - summary["coverage"]) / summary["n"].clip(lower=1))
    summary = summary.reset_index()
    # an analysis that printed no effect at all (every experiment refused) still gets its row
    silent = [name for name in scenario.analyses if name not in set(summary["estimator"])]
    summary = pd.concat([summary, pd.DataFrame({"estimator": silent, "condition": "(none)", "n": 0})],
                        ignore_index=True) if silent else summary
    summary["refused"] = summary["estimator"].map(failures)
    summary.insert(0, "design", scenario.name)
    summary.insert(1, "mapping", scenario.mapping)
    summary["verdict"] = np.select([summary["n"] == 0, summary["coverage"] < 0.93, summary["coverage"] > 0.97],
                                   ["no interval", "UNDER-COVERS", "conservative"], "ok")
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-sims", type=int, default=1_000, help="experiments per cell (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="the cells the test suite runs")
    parser.add_argument("--graphs", choices=("ours", "networkx", "all"), default="all",
                        help="the project's synthetic graphs, networkx's, or both (default: %(default)s)")
    parser.add_argument("--out", help="write the table here (.csv)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # positivity and few-cluster warnings are the point of some cells
    tables = []
    grid = (scenarios(args.quick) if args.graphs != "networkx" else []) + \
        (networkx_scenarios(args.quick) if args.graphs != "ours" else [])
    for scenario in grid:
        start = time.perf_counter()
        tables.append(run(scenario, args.n_sims))
        print(f"{scenario.name}: {time.perf_counter() - start:.1f}s", flush=True)
    table = pd.concat(tables, ignore_index=True)
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(table.round(4).to_string(index=False))
    if args.out:
        table.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
