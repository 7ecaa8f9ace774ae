"""The analysis knows its design: the assignment carries it through files, estimate reads
it, refuses what the design does not support, keeps what positivity allows, and checks
arms against the design's own shares. Graphs from networkx, not only spillover.synth."""

from __future__ import annotations

import itertools
import json
import warnings

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from spillover import DesignError, InputError, SocialGraph
from spillover.cli import main
from spillover.design import DESIGN_NAMES, ClusterDesign, IndividualDesign, design_from_spec
from spillover.design.record import DesignRecord
from spillover.errors import DataWarning
from spillover.estimate import analyse, estimate, validity_table
from spillover.exposure import exposure, probabilities
from spillover.health import design_balance
from spillover.io import read_table, write_table

pytestmark = pytest.mark.filterwarnings("ignore::spillover.errors.PositivityWarning",
                                        "ignore::spillover.errors.EmptyConditionWarning",
                                        "ignore::spillover.errors.SmallConditionWarning",
                                        "ignore::spillover.errors.FewClustersWarning")


def sbm(blocks: int = 40, size: int = 25, p_in: float = 0.3, p_out: float = 0.004, seed: int = 1):
    """A networkx stochastic block model: the graph and each node's block."""
    g = nx.stochastic_block_model([size] * blocks, np.where(np.eye(blocks), p_in, p_out), seed=seed)
    graph = SocialGraph.from_edges(pd.DataFrame(list(g.edges()), columns=["source", "target"]))
    block = np.array([g.nodes[v]["block"] for v in graph.nodes])
    return graph, block


@pytest.fixture(scope="module")
def blocks():
    graph, block = sbm()
    rng = np.random.default_rng(0)
    y = rng.normal(0, 1, block.max() + 1)[block] + rng.normal(0, 1, graph.n_nodes)  # intra-block correlation 0.5
    return graph, block, pd.DataFrame({"unit_id": graph.nodes, "y": y})


def run_json(capsys, argv):
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


# --------------------------------------------------------------------------- the design travels


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_an_assignment_carries_its_design_through_files_and_exposure(tmp_path, blocks, suffix):
    graph, block, _ = blocks
    assignment = ClusterDesign(block, graph.nodes, treat_fraction=0.3).assign(salt="s-1")
    path = write_table(assignment.to_frame(), tmp_path / f"assignment{suffix}")
    assert (tmp_path / "assignment.design.json").exists() == (suffix == ".csv")
    read = read_table(path)
    record = DesignRecord.from_dict(read.attrs["spillover.design"])
    assert record == assignment.record
    assert (record.name, record.unit, record.scheme, record.salt) == ("cluster", "cluster", "bernoulli", "s-1")
    assert record.shares == {0: 0.7, 1: 0.3} and record.n_clusters == 40
    table = exposure(graph, read, "as4")
    assert table.attrs["spillover.design"] == read.attrs["spillover.design"]
    assert table.set_index("unit_id")["cluster_id"].reindex(read["unit_id"]).tolist() == read["cluster_id"].tolist()
    written = write_table(table, tmp_path / f"exposure{suffix}")
    assert read_table(written).attrs["spillover.mapping"]["name"] == "as4"


def test_a_csv_written_without_a_design_does_not_keep_an_older_ones(tmp_path):
    frame = pd.DataFrame({"unit_id": [1, 2], "arm": [0, 1]})
    frame.attrs["spillover.design"] = {"name": "individual"}
    write_table(frame, tmp_path / "a.csv")
    write_table(pd.DataFrame({"unit_id": [1, 2], "arm": [1, 0]}), tmp_path / "a.csv")
    assert "spillover.design" not in read_table(tmp_path / "a.csv").attrs


@pytest.mark.parametrize("name", DESIGN_NAMES)
@pytest.mark.parametrize("mapping", ["fraction", "as4"])
def test_the_default_path_gives_the_numbers_of_the_explicit_design(blocks, name, mapping):
    """assignment -> exposure -> estimate with no design named equals naming it, for every
    design of the registry (the recorded design and its randomization units are what an
    explicit --design and --clusters would say)."""
    graph, block, outcomes = blocks
    units = pd.DataFrame({"unit_id": graph.nodes, "cluster_id": block})
    options = {"stratified-cluster": {"sample_fraction": 0.5, "n_bins": 2}, "holdout": {"holdout_fraction": 0.3},
               "individual": {"treat_fraction": 0.2}}  # shares that leave units in every compared condition
    spec = {"design": name, **options.get(name, {})}
    assignment = design_from_spec(spec, units).assign(seed=3)
    table = exposure(graph, assignment, mapping)
    implicit = analyse(outcomes, table, edges=graph)
    stated = "individual" if name == "individual" else "cluster"
    bare = table.copy()
    bare.attrs.clear()  # as a file from another tool: no record, no mapping
    explicit = analyse(outcomes, bare, _method_of(implicit), edges=graph, design=stated, mapping=mapping,
                       clusters=units if stated == "cluster" else None)
    pd.testing.assert_frame_equal(implicit.to_frame(), explicit.to_frame(), rtol=1e-12, atol=1e-12)


def _method_of(effects) -> str:
    return next(note for note in effects.notes if note.startswith("method auto: ")).split(" ")[2].rstrip(",")


# --------------------------------------------------------------------------- what the design refuses


def test_a_unit_level_estimator_on_a_cluster_assignment_is_refused_with_the_fix(blocks):
    graph, block, outcomes = blocks
    table = exposure(graph, ClusterDesign(block, graph.nodes).assign(seed=1), "fraction")
    with pytest.raises(DesignError, match="Use --method ols-cluster"):
        estimate(outcomes, table, "difference-in-means")
    naive = estimate(outcomes, table, "difference-in-means", ignore_design=True)
    assert naive.effects[0].method.endswith("[ignores the design]")
    assert any("ignores the design" in note for note in naive.notes)
    auto = estimate(outcomes, table)
    assert auto.notes[0].startswith("method auto: ols-cluster") and auto.effects[0].n_clusters == 40
    assert auto.effects[0].estimate == pytest.approx(naive.effects[0].estimate, abs=1e-12)  # the same contrast
    assert auto.effects[0].se > 2 * naive.effects[0].se  # the clustering the naive error ignores


def test_a_stated_design_that_contradicts_the_assignment_is_refused(capsys, tmp_path, blocks):
    graph, block, outcomes = blocks
    edges = pd.DataFrame(np.column_stack(graph.edge_index()), columns=["source", "target"])
    write_table(edges, tmp_path / "edges.parquet")
    write_table(outcomes, tmp_path / "outcomes.parquet")
    assignment = ClusterDesign(block, graph.nodes).assign(seed=2)
    write_table(assignment.to_frame(), tmp_path / "assignment.parquet")
    assert main(["exposure", str(tmp_path / "edges.parquet"), "--assignment", str(tmp_path / "assignment.parquet"),
                 "--mapping", "as4", "--out", str(tmp_path / "exposure.parquet")]) == 0
    capsys.readouterr()
    def base(exposure_file):
        return ["estimate", "--outcomes", str(tmp_path / "outcomes.parquet"), "--exposure", str(exposure_file),
                "--edges", str(tmp_path / "edges.parquet")]

    assert main([*base(tmp_path / "exposure.parquet"), "--method", "hajek", "--design", "individual"]) == 2
    assert "--design individual contradicts the design recorded" in capsys.readouterr().err
    # a file from another tool (no record): the arms themselves show the clustering
    table = read_table(tmp_path / "exposure.parquet")
    table.attrs.clear()
    table.to_csv(tmp_path / "plain.csv", index=False)
    assert main([*base(tmp_path / "plain.csv"), "--method", "hajek", "--design", "individual"]) == 2
    assert "every one of the assignment's 40 clusters has a single arm" in capsys.readouterr().err
    # the same file analysed without --design: read as a cluster design, and said so
    result = run_json(capsys, [*base(tmp_path / "plain.csv"), "--json"])
    assert result["notes"][0].startswith("method auto: ols-cluster")
    assert any(note.startswith("design: cluster design (inferred)") for note in result["notes"])


def test_a_cluster_design_whose_clusters_hold_two_arms_is_refused(blocks):
    graph, block, outcomes = blocks
    table = exposure(graph, IndividualDesign(graph.nodes).assign(seed=1), "fraction")
    table.attrs.clear()
    with pytest.raises(DesignError, match=r"40 clusters have units in more than one arm \(cluster 0: "):
        estimate(outcomes, table.drop(columns="cluster_id"), "ols-cluster", design="cluster",
                 clusters=pd.Series(block, index=graph.nodes))


def test_clusters_that_split_a_randomization_cluster_are_refused(blocks):
    graph, block, outcomes = blocks
    table = exposure(graph, ClusterDesign(block, graph.nodes).assign(seed=1), "fraction")
    halves = pd.Series(block * 2 + (np.arange(graph.n_nodes) % 2), index=graph.nodes)
    with pytest.raises(DesignError, match="is split across 2 analysis clusters"):
        estimate(outcomes, table, "ols-cluster", clusters=halves)
    coarser = pd.Series(block // 4, index=graph.nodes)  # ten clusters of four blocks: allowed
    assert estimate(outcomes, table, "ols-cluster", clusters=coarser).effects[0].n_clusters == 10


@pytest.mark.parametrize("arms", [[0, 1, 7], [0, 2]])
def test_arms_the_design_cannot_give_are_refused(blocks, arms):
    graph, _, _ = blocks
    frame = pd.DataFrame({"unit_id": graph.nodes, "arm": np.resize(arms, graph.n_nodes)})
    with pytest.raises(InputError, match="skip a number"):
        exposure(graph, frame, "as4")
    recorded = IndividualDesign(graph.nodes).assign(seed=1).to_frame()
    recorded.loc[0, "arm"] = 7
    with pytest.raises(InputError, match=r"arm\(s\) \[7\] are not arms of its individual design"):
        exposure(graph, recorded, "as4")


# --------------------------------------------------------------------------- positivity decides the estimand


def test_a_contrast_one_unit_can_reach_is_left_out_and_the_others_stay():
    """Under a cluster design only a unit whose friends all sit in other clusters can be
    treated with no treated friend (isol_dir): on this graph, one."""
    g = nx.disjoint_union_all([nx.complete_graph(8) for _ in range(12)])
    g.add_edges_from([(0, 8), (0, 16), (0, 24)])  # unit 0 also knows one unit in each of three clusters
    g.remove_edges_from([(0, j) for j in range(1, 8)])  # ... and no one in its own
    graph = SocialGraph.from_edges(pd.DataFrame(list(g.edges()), columns=["source", "target"]))
    block = graph.nodes.to_numpy() // 8
    design = ClusterDesign(block, graph.nodes)
    probs = probabilities(graph, "as4", design=design)
    reach = (probs.marginal[:, probs.condition_index("isol_dir")] > 1e-6).sum()
    assert reach == 1
    outcomes = pd.DataFrame({"unit_id": graph.nodes, "y": np.random.default_rng(1).normal(size=graph.n_nodes)})
    for seed in range(40):  # find a draw that puts unit 0 in isol_dir
        table = exposure(graph, design.assign(seed=seed), "as4")
        if table.set_index("unit_id").loc[0, "condition"] == "isol_dir":
            break
    effects = estimate(outcomes, table, "hajek", probabilities=probs)
    assert "isol_dir" not in [e.condition for e in effects.effects]
    assert {"dir_ind1", "ind1"} & {e.condition for e in effects.effects}
    assert any(note.startswith("no effect for 'isol_dir': only 1 unit(s) can be in both") for note in effects.notes)
    unguarded = estimate(outcomes, table, "hajek", probabilities=probs, min_units=0)
    assert "isol_dir" in [e.condition for e in unguarded.effects]  # what the guard removes


def test_min_probability_trims_contrast_by_contrast_and_never_fails_the_call(blocks):
    graph, block, outcomes = blocks
    design = ClusterDesign(block, graph.nodes)
    probs = probabilities(graph, "as4", design=design)
    table = exposure(graph, design.assign(seed=4), "as4")
    everything = estimate(outcomes, table, "hajek", probabilities=probs)
    kept = {e.condition for e in everything.effects}
    isol = probs.marginal[:, probs.condition_index("ind1")]
    cut = float(np.quantile(isol[isol > 0], 0.999))  # nearly no unit reaches ind1 with this probability
    trimmed = estimate(outcomes, table, "hajek", probabilities=probs, min_probability=cut)
    assert "ind1" not in {e.condition for e in trimmed.effects} and "dir_ind1" in kept
    assert any(note.startswith("no effect for 'ind1'") for note in trimmed.notes)
    assert {e.condition for e in trimmed.effects} == kept - {"ind1"}


def test_a_weight_that_dominates_its_condition_gets_no_interval():
    """A hub of 12 friends is untreated with all of them untreated ('no') with probability
    2^-13 under Bernoulli(1/2); observed there, its weight (8,192) dwarfs the other units'
    in 'no' (4 to 8 each): the estimate stands, a normal interval would not."""
    g = nx.star_graph(12)
    g.add_edges_from((i, i + 12) for i in range(1, 13))  # each friend has one more friend
    g.add_edges_from((100 + 2 * i, 101 + 2 * i) for i in range(40))  # forty pairs elsewhere
    graph = SocialGraph.from_edges(pd.DataFrame(list(g.edges()), columns=["source", "target"]))
    design = IndividualDesign(graph.nodes, 0.5, complete=False)
    probs = probabilities(graph, "as4", design=design)
    arms = pd.Series((np.random.default_rng(3).random(graph.n_nodes) < 0.5).astype(int), index=graph.nodes)
    arms[list(range(0, 13))] = 0  # the hub and its friends untreated: the hub lands in 'no'
    table = exposure(graph, arms, "as4")
    assert table.set_index("unit_id").loc[0, "condition"] == "no"
    outcomes = pd.DataFrame({"unit_id": graph.nodes, "y": np.random.default_rng(2).normal(size=graph.n_nodes)})
    effects = estimate(outcomes, table, "hajek", probabilities=probs)
    assert effects.effects and all(np.isnan(e.ci_low) and np.isnan(e.p_value) and np.isfinite(e.se)
                                   for e in effects.effects)
    assert any(note.startswith("no interval for") and "observed in 'no' are so unequal" in note
               for note in effects.notes)


# --------------------------------------------------------------------------- the design's own shares


def test_the_treated_share_of_units_is_tested_against_the_design_with_its_exact_probability():
    """Fifteen clusters of very unequal size, hashed at 50%: the probability of a treated
    share of users at least as far from its expectation, against full enumeration of the
    2^15 equally likely cluster draws."""
    sizes = np.array([400, 300, 200, 120, 80, 60, 40, 30, 25, 20, 15, 10, 8, 5, 3])
    clusters = pd.Series(np.repeat(np.arange(15), sizes))
    design = ClusterDesign(clusters.to_numpy(), clusters.index)
    assignment = design.assign(salt="few-clusters")
    checks = {c.name: c for c in design_balance(assignment.record, pd.Series(assignment.arms), clusters, seed=1)}
    share = checks["treated share (units)"]
    observed = sizes @ (design.cluster_arms(salt="few-clusters") >= 1) / sizes.sum()
    every = np.array(list(itertools.product([0, 1], repeat=15)))
    shares = every @ sizes / sizes.sum()
    exact = np.mean(np.abs(shares - 0.5) >= abs(observed - 0.5) - 1e-12)
    # Monte Carlo over 10,000 draws: sd at most sqrt(0.25 / 10,000) = 0.005; allow 4 of them
    assert share.p_value == pytest.approx(exact, abs=0.02)
    assert f"{observed:.1%} of units treated" in share.detail
    assert share.flagged == (share.p_value < 0.05)


def test_a_seeded_assignment_that_lost_a_cluster_is_a_sample_ratio_mismatch(blocks):
    graph, block, outcomes = blocks
    assignment = ClusterDesign(block, graph.nodes).assign(seed=5)
    table = exposure(graph, assignment, "fraction")
    clean = estimate(outcomes, table)
    assert not any(check.flagged for check in clean.health)
    lost = table[table["cluster_id"] != block[np.flatnonzero(assignment.arms == 1)[0]]]  # one treated cluster gone
    lost.attrs.update(table.attrs)
    with pytest.warns(Warning, match="do not follow the design: it gives exactly 20 to arm 0, 20 to arm 1"):
        flagged = estimate(outcomes[outcomes["unit_id"].isin(lost["unit_id"])], lost)
    assert {c.name: c for c in flagged.health}["sample ratio (randomization units)"].flagged


# --------------------------------------------------------------------------- inputs at the door


def test_integer_unit_ids_with_text_cluster_ids_read_as_they_are(capsys, tmp_path, blocks):
    graph, block, outcomes = blocks
    clusters = pd.DataFrame({"unit_id": graph.nodes, "cluster_id": [f"c{b}" for b in block]})
    clusters.to_csv(tmp_path / "clusters.csv", index=False)
    typed = read_table(tmp_path / "clusters.csv")
    assert typed["unit_id"].dtype.kind == "i" and typed["cluster_id"].tolist()[:1] == [f"c{block[0]}"]
    table = exposure(graph, ClusterDesign(block, graph.nodes).assign(seed=1), "fraction")
    table.attrs.clear()
    table.drop(columns="cluster_id").to_csv(tmp_path / "exposure.csv", index=False)
    outcomes.to_csv(tmp_path / "outcomes.csv", index=False)
    result = run_json(capsys, ["estimate", "--outcomes", str(tmp_path / "outcomes.csv"), "--exposure",
                               str(tmp_path / "exposure.csv"), "--method", "ols-cluster", "--clusters",
                               str(tmp_path / "clusters.csv"), "--json"])
    assert result["effects"][0]["n_clusters"] == 40


def test_repeated_rows_of_a_clusters_table_are_dropped_when_identical_and_refused_when_not(capsys, tmp_path, blocks):
    graph, block, outcomes = blocks
    table = exposure(graph, ClusterDesign(block, graph.nodes).assign(seed=1), "fraction")
    clusters = pd.DataFrame({"unit_id": graph.nodes, "cluster_id": block})
    twice = pd.concat([clusters, clusters.iloc[:1]])
    with pytest.warns(DataWarning, match=r"1 repeated identical row\(s\) dropped"):
        effects = estimate(outcomes, table, "ols-cluster", clusters=twice)
    assert effects.effects[0].estimate == pytest.approx(estimate(outcomes, table, "ols-cluster").effects[0].estimate)
    clash = pd.concat([clusters, clusters.iloc[:1].assign(cluster_id=99)])
    for method in ("ols-cluster", "cluster-means", "ols-network"):
        with pytest.raises(InputError, match=r"unit_id 0 appears in 2 rows that differ"):
            estimate(outcomes, table, method, clusters=clash, graph=graph)
    clash.to_csv(tmp_path / "clusters.csv", index=False)
    write_table(table, tmp_path / "exposure.parquet")
    outcomes.to_csv(tmp_path / "outcomes.csv", index=False)
    assert main(["estimate", "--outcomes", str(tmp_path / "outcomes.csv"), "--exposure",
                 str(tmp_path / "exposure.parquet"), "--clusters", str(tmp_path / "clusters.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: clusters table: unit_id 0 appears in 2 rows") and "Traceback" not in err


# --------------------------------------------------------------------------- ols-network


def test_ols_network_takes_isolates_its_tables_control_and_leungs_bandwidth():
    import networkinference as ni
    import scipy.sparse as sp

    g = nx.watts_strogatz_graph(400, 6, 0.1, seed=3)
    graph = SocialGraph.from_edges(pd.DataFrame(list(g.edges()), columns=["source", "target"]))
    units = pd.Index(list(graph.nodes) + [1000, 1001])  # two isolates an edge list cannot list
    assignment = IndividualDesign(units, 0.5).assign(seed=4)
    table = exposure(graph, assignment, "fraction")
    rng = np.random.default_rng(5)
    outcomes = pd.DataFrame({"unit_id": table["unit_id"], "y": rng.normal(size=len(table))})
    effects = estimate(outcomes, table, "ols-network", graph=graph)
    assert effects.control == "control" and effects.effects[0].n_units == 402
    note = next(n for n in effects.notes if n.startswith("network-HAC bandwidth"))
    # networkinference's rule on the analysed units' graph (isolates included)
    full = nx.Graph(g)
    full.add_nodes_from([400, 401])
    _, _, b, _ = ni.core.network_hac(rng.normal(size=402), full, disp=True)
    assert note.startswith(f"network-HAC bandwidth {b} hops by Leung's rule")
    fixed = estimate(outcomes, table, "ols-network", graph=graph, bandwidth=b)
    assert fixed.effects[0].se == pytest.approx(effects.effects[0].se, rel=1e-12)
    assert sp.issparse(sp.csr_array((1, 1)))


# --------------------------------------------------------------------------- the one table


def test_the_validity_table_refuses_unit_level_errors_on_clustered_designs_and_recommends_one_each():
    table = validity_table()
    clustered = table[table["design"] == "cluster"]
    assert set(clustered.loc[clustered["estimator"] == "difference-in-means", "status"]) == {"refused"}
    for (_, _), group in table.groupby(["design", "mapping"]):
        assert (group["status"] == "recommended").sum() == 1
    refused = table[table["status"] == "refused"]
    assert (refused["instead"] != "").all()


# --------------------------------------------------------------------------- calibration


@pytest.mark.slow
@pytest.mark.parametrize("mapping", ["fraction", "as4"])
def test_the_default_analysis_of_a_cluster_assignment_covers_an_aa_effect(blocks, mapping):
    """A/A on a 40 x 25 networkx stochastic block model with block effects (intra-block
    correlation 0.5), 300 cluster assignments: the default (auto: ols-cluster by the
    randomization clusters, CR2) covers 0 at 95%, where the difference in means that
    ignores the clustering does not. Monte Carlo se of a 0.95 coverage over 300 draws is
    0.0126; allow 3 of them."""
    graph, block, outcomes = blocks
    design = ClusterDesign(block, graph.nodes)
    covered, naive = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in range(300):
            table = exposure(graph, design.assign(seed=1_000 + r), mapping)
            covered += [e.ci_low <= 0 <= e.ci_high for e in estimate(outcomes, table).effects]
            naive += [e.ci_low <= 0 <= e.ci_high for e in
                      estimate(outcomes, table, "difference-in-means", ignore_design=True).effects]
    coverage = float(np.mean(covered))
    assert abs(coverage - 0.95) < 3 * np.sqrt(0.95 * 0.05 / 300), coverage
    assert np.mean(naive) < 0.9  # the guard matters: the naive interval under-covers here


@pytest.mark.parametrize("complete", [True, False])
def test_the_treated_share_check_of_many_clusters_uses_the_normal_limit_and_agrees_with_draws(complete):
    """3,000 clusters of sizes 1-60 (none dominates): the check's normal-limit probability
    against 20,000 draws of the same design. The draws' probability has Monte Carlo sd at
    most sqrt(0.25 / 20,000) = 0.0035; the normal limit's error at this many clusters is
    smaller still: allow 0.02."""
    from spillover.health import _lopsided

    rng = np.random.default_rng(4)
    sizes = rng.integers(1, 61, size=3_000).astype(float)
    treated = np.zeros(3_000, dtype=bool)
    treated[rng.choice(3_000, 1_500, replace=False)] = True
    draws = (rng.permuted(np.broadcast_to(treated, (20_000, 3_000)), axis=1) if complete
             else rng.random((20_000, 3_000)) < 0.5) @ sizes / sizes.sum()
    for observed in (0.5, 0.51, 0.52):
        centre, p, how = _lopsided(treated, sizes, complete, 0.5, observed, 0, 10_000)
        assert how == "normal limit of the design" and centre == pytest.approx(0.5)
        assert p == pytest.approx(np.mean(np.abs(draws - draws.mean()) >= abs(observed - draws.mean())), abs=0.02)
    heavy = np.r_[sizes[:-1], 10_000.0]  # one cluster carries most of the variance: draws, not the normal limit
    assert "draws of the design" in _lopsided(treated, heavy, complete, 0.5, 0.5, 0, 2_000)[2]
