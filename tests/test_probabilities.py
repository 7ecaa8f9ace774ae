"""Exact exposure probabilities against full enumeration of every assignment of a small
design (each weighted by its probability), and the dependence structure of supplied
draws found from the draws themselves."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from spillover import BipartiteGraph, InputError, SocialGraph, synth
from spillover.design import BipartiteDesign, ClusterDesign, IndividualDesign
from spillover.errors import PositivityWarning
from spillover.exposure import ExposureGraph, exposure, get_mapping, probabilities

# units of these small graphs that cannot reach some condition are expected here
pytestmark = pytest.mark.filterwarnings("ignore::spillover.errors.PositivityWarning")

# 11 nodes: a path, a triangle, a star and an isolate-like pendant; clusters cut edges
SOCIAL = SocialGraph.from_edges(pd.DataFrame({
    "source": [0, 1, 2, 3, 4, 4, 6, 6, 6, 9],
    "target": [1, 2, 3, 4, 5, 3, 7, 8, 9, 10],
}))
CLUSTERS = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 1])
MARKET = BipartiteGraph.from_edges(pd.DataFrame({
    "buyer": ["a", "a", "b", "c", "c", "c", "d", "e", "e"],
    "seller": ["s1", "s2", "s2", "s1", "s3", "s4", "s4", "s5", "s1"],
}), "buyer", "seller")


def enumerate_design(randomization, n_nodes):
    """Every block assignment with its probability, expanded to nodes: ``(n_nodes, A)``."""
    blocks, m = randomization.blocks, randomization.n_blocks
    rows, weights = [], []
    if randomization.scheme == "bernoulli":
        for bits in itertools.product([0, 1], repeat=m):
            t = sum(bits)
            rows.append(np.array(bits)[blocks])
            weights.append(randomization.p ** t * (1 - randomization.p) ** (m - t))
    elif randomization.scheme == "complete":
        combos = list(itertools.combinations(range(m), randomization.n_treated))
        for combo in combos:
            bits = np.zeros(m, dtype=int)
            bits[list(combo)] = 1
            rows.append(bits[blocks])
            weights.append(1 / len(combos))
    else:  # stratified: every stratum's treated set, each count with its probability, independently
        per_stratum = []
        for stratum, counts in enumerate(randomization.treated_counts):
            members = np.flatnonzero(randomization.strata == stratum)
            per_stratum.append([(combo, weight / math.comb(members.size, k)) for k, weight in counts.items()
                                for combo in itertools.combinations(members, k)])
        for choice in itertools.product(*per_stratum):
            bits = np.zeros(m, dtype=int)
            bits[[b for combo, _ in choice for b in combo]] = 1
            rows.append(bits[blocks])
            weights.append(math.prod(w for _, w in choice))
    return np.array(rows).T.astype(np.int8), np.array(weights)


def enumerated_probabilities(graph, mapping, randomization):
    rule = get_mapping(mapping)
    kernel = ExposureGraph.build(graph, rule.hops)
    draws, weights = enumerate_design(randomization, len(kernel.randomized))
    codes = rule.codes(kernel.counts(draws))            # (n_units, A)
    ind = np.stack([(codes == k) for k in range(len(rule.conditions))])  # (K, n, A)
    marginal = (ind * weights).sum(axis=2).T
    joint = np.einsum("kia,lja,a->klij", ind.astype(float), ind.astype(float), weights)
    return marginal, joint


def assert_exact_equals_enumeration(graph, mapping, design):
    """Exact marginal and all-pairs joint probabilities equal full enumeration to 1e-12."""
    exact = probabilities(graph, mapping, design=design, joint="all", method="exact")
    marginal, joint = enumerated_probabilities(graph, mapping, design.randomization())
    np.testing.assert_allclose(exact.marginal, marginal, atol=1e-12)
    for (k, l), values in exact.joint.items():
        np.testing.assert_allclose(values.toarray(), joint[k, l], atol=1e-12, err_msg=str((k, l)))
    return exact


DESIGNS = {
    "bernoulli units": lambda units: IndividualDesign(units, 0.3, complete=False),
    "complete units": lambda units: IndividualDesign(units, 0.4, complete=True),
    "bernoulli clusters": lambda units: ClusterDesign(CLUSTERS, units, treat_fraction=0.6, complete=False),
    "complete clusters": lambda units: ClusterDesign(CLUSTERS, units, treat_fraction=0.4),
}


@pytest.mark.parametrize("design_name", list(DESIGNS))
@pytest.mark.parametrize("mapping", ["as4", "fraction", get_mapping("threshold", threshold_q=1.0)],
                         ids=["as4", "fraction", "threshold-q1"])
def test_exact_probabilities_equal_full_enumeration_on_a_social_graph(design_name, mapping):
    design = DESIGNS[design_name](SOCIAL.nodes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PositivityWarning)
        exact = assert_exact_equals_enumeration(SOCIAL, mapping, design)
    assert exact.method.startswith("exact")


@pytest.mark.parametrize("complete", [False, True])
@pytest.mark.parametrize("seller_clusters", [None, np.array([0, 0, 1, 1, 2])], ids=["sellers", "seller-clusters"])
@pytest.mark.parametrize("thresholds", [(0.0, 1.0), (0.3, 0.6)], ids=["default", "other-thresholds"])
def test_exact_bipartite_probabilities_equal_full_enumeration(complete, seller_clusters, thresholds):
    from spillover.exposure import bipartite

    if seller_clusters is None:
        design = IndividualDesign(MARKET.treated, 0.4, complete=complete)
    else:
        design = ClusterDesign(seller_clusters, MARKET.treated, treat_fraction=0.34, complete=complete)
    assert_exact_equals_enumeration(MARKET, bipartite(*thresholds), design)


def test_bipartite_design_object_gives_the_same_exact_probabilities():
    design = BipartiteDesign(MARKET, 0.4)
    a = probabilities(MARKET, "bipartite", design=design)
    b = probabilities(MARKET, "bipartite", design=IndividualDesign(MARKET.treated, 0.4))
    np.testing.assert_array_equal(a.marginal, b.marginal)


def test_exact_dependent_pairs_agree_with_all_pairs_under_bernoulli():
    design = ClusterDesign(CLUSTERS, SOCIAL.nodes, complete=False)
    dependent = probabilities(SOCIAL, "as4", design=design, joint="dependent")
    everything = probabilities(SOCIAL, "as4", design=design, joint="all")
    for key, values in dependent.joint.items():
        dense = values.toarray()
        stored = dependent.pairs.toarray().astype(bool)
        np.testing.assert_allclose(dense[stored], everything.joint[key].toarray()[stored], atol=1e-14)
        # pairs left out are independent: their joint is the product of the marginals
        k, l = key
        product = np.outer(everything.marginal[:, k], everything.marginal[:, l])
        np.testing.assert_allclose(everything.joint[key].toarray()[~stored], product[~stored], atol=1e-14)


def test_monte_carlo_converges_to_exact():
    design = ClusterDesign(CLUSTERS, SOCIAL.nodes, treat_fraction=0.4)
    exact = probabilities(SOCIAL, "as4", design=design)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PositivityWarning)
        mc = probabilities(SOCIAL, "as4", design=design, method="monte-carlo", n_draws=20_000, seed=1)
    # binomial sd of a share over 20,000 draws is at most 0.0035; allow 5 of them
    assert np.abs(mc.marginal - exact.marginal).max() < 5 * 0.0036


@pytest.mark.parametrize("design", [ClusterDesign(CLUSTERS, SOCIAL.nodes, treat_fraction=0.4),
                                    IndividualDesign(SOCIAL.nodes, 0.3, complete=False)])
def test_fused_tally_counts_what_the_rule_codes_count(design):
    # as4's tally (compact counts, no codes formed) against the same rule without it,
    # on the same draws: every marginal count identical
    import dataclasses

    as4 = get_mapping("as4")
    plain = dataclasses.replace(as4, tally=None)
    fused = probabilities(SOCIAL, as4, design=design, joint=None, method="monte-carlo", n_draws=500, seed=4, chunk=64)
    coded = probabilities(SOCIAL, plain, design=design, joint=None, method="monte-carlo", n_draws=500, seed=4, chunk=64)
    np.testing.assert_array_equal(fused.marginal, coded.marginal)
    assert (fused.marginal > 0).any(axis=0).all()                      # every condition occurs somewhere
    counts = ExposureGraph.build(SOCIAL).counts(design.draw(50, seed=5).astype(np.int8), compact=True)
    np.testing.assert_array_equal(as4.tally(counts), np.stack([(as4.codes(counts) == k).sum(axis=1)
                                                              for k in range(4)], axis=1))
    # on the blocks: units with a neighbour in their own cluster skip the treated-and-unexposed count
    blocks = pd.factorize(np.asarray(CLUSTERS))[0]
    blocked = ExposureGraph.build(SOCIAL).blocked(blocks, int(blocks.max()) + 1)
    counts = blocked.counts(np.random.default_rng(6).integers(0, 2, (blocks.max() + 1, 50)).astype(np.int8),
                            compact=True)
    assert 0 < counts.own_reached.sum() < counts.own_reached.size  # both kinds of unit are here
    np.testing.assert_array_equal(as4.tally(counts), np.stack([(as4.codes(counts) == k).sum(axis=1)
                                                              for k in range(4)], axis=1))


def test_draws_reveal_their_clusters_and_complete_randomization():
    design = ClusterDesign(CLUSTERS, SOCIAL.nodes, treat_fraction=0.4)
    draws = design.draw(200, seed=3)
    found = probabilities(SOCIAL, "as4", draws=draws)
    assert any("5 blocks found in the draws" in note and "complete randomization (2 of 5" in note
               for note in found.notes)
    # the same pairs as when the design is given: same-cluster pairs further apart are kept
    given = probabilities(SOCIAL, "as4", design=design)
    assert (found.pairs != given.pairs).nnz == 0
    bernoulli = IndividualDesign(SOCIAL.nodes, 0.5, complete=False).draw(300, seed=4)
    assert any("treated count varies" in note for note in probabilities(SOCIAL, "as4", draws=bernoulli).notes)


def test_clusters_that_disagree_with_the_draws_are_refused():
    draws = IndividualDesign(SOCIAL.nodes, 0.5).draw(50, seed=1)
    with pytest.raises(InputError, match="clusters do not describe"):
        probabilities(SOCIAL, "as4", draws=draws, clusters=CLUSTERS)


def test_exact_is_refused_where_it_does_not_apply():
    from spillover.design import StratifiedClusterDesign

    stratified = StratifiedClusterDesign.from_units(CLUSTERS, SOCIAL.nodes, {"size": None}, n_bins=1,
                                                    sample_fraction=1.0)
    with pytest.raises(InputError, match="no closed form"):
        probabilities(SOCIAL, "threshold", design=stratified, method="exact")
    # auto falls back to Monte Carlo and says so
    result = probabilities(SOCIAL, "threshold", design=stratified, n_draws=100, seed=1)
    assert result.method.startswith("monte carlo")


def test_positivity_is_checked_on_raw_counts_even_with_add_one():
    # a path 0-1-2 with 1 always treated with 0: node 1 can never be isol_dir... under
    # complete randomization of one of three nodes, 'dir_ind1' is impossible for everyone
    path = SocialGraph.from_edges(pd.DataFrame({"source": [0, 1], "target": [1, 2]}))
    draws = IndividualDesign(path.nodes, 1 / 3).draw(300, seed=1)
    with pytest.warns(PositivityWarning, match=r"no unit can reach \['dir_ind1'\]"):
        probabilities(path, "as4", draws=draws, correction="add-one")


def test_an_unreachable_control_condition_is_an_error():
    pair = SocialGraph.from_edges(pd.DataFrame({"source": [0], "target": [1]}))
    with pytest.raises(InputError, match="no unit can be in the control condition 'no'"):
        probabilities(pair, "as4", design=IndividualDesign(pair.nodes, 0.5, complete=True))


def test_designs_without_a_closed_form_still_pair_units_of_one_cluster():
    from spillover.design import StratifiedClusterDesign

    design = StratifiedClusterDesign.from_units(CLUSTERS, SOCIAL.nodes, {"size": None}, n_bins=1, sample_fraction=1.0)
    probs = probabilities(SOCIAL, "fraction", design=design, n_draws=200, seed=1)
    same_cluster = CLUSTERS[:, None] == CLUSTERS[None, :]
    assert probs.pairs.toarray()[same_cluster].all()
    assert any("stratified" in note for note in probs.notes)


@pytest.mark.parametrize("design_name", ["bernoulli units", "complete units"])
@pytest.mark.parametrize("q", [0.5, 0.75, 0.3])
def test_exact_threshold_probabilities_under_individual_designs_equal_enumeration(design_name, q):
    design = DESIGNS[design_name](SOCIAL.nodes)
    mapping = get_mapping("threshold", threshold_q=q)
    assert_exact_equals_enumeration(SOCIAL, mapping, design)



@pytest.mark.parametrize("design_name", list(DESIGNS))
def test_exact_two_hop_probabilities_equal_enumeration(design_name):
    design = DESIGNS[design_name](SOCIAL.nodes)
    mapping = get_mapping("as4", hops=2)
    assert_exact_equals_enumeration(SOCIAL, mapping, design)


@pytest.mark.parametrize("design_name", ["bernoulli clusters", "complete clusters"])
@pytest.mark.parametrize("q", [0.5, 0.75])
def test_exact_threshold_probabilities_under_cluster_designs_equal_enumeration(design_name, q):
    design = DESIGNS[design_name](SOCIAL.nodes)
    mapping = get_mapping("threshold", threshold_q=q)
    assert_exact_equals_enumeration(SOCIAL, mapping, design)



@pytest.mark.slow  # 10 s: an equivalence of chunk sizes, run by CI
def test_weighted_count_chunks_give_the_same_probabilities(monkeypatch):
    import spillover.exposure.counts as counts_module
    from spillover import synth

    graph = synth.social_graph(300, mean_degree=4, community_size_range=(3, 8), seed=3)
    labels = graph.node_data["community"].reindex(graph.nodes).to_numpy()
    design = ClusterDesign(labels, graph.nodes, treat_fraction=0.4)
    whole = probabilities(graph, "threshold", design=design, method="exact")
    monkeypatch.setattr(counts_module, "_DP_CELLS", 500.0)  # many small chunks
    chunked = probabilities(graph, "threshold", design=design, method="exact")
    np.testing.assert_allclose(chunked.marginal, whole.marginal, atol=1e-14)
    for key in whole.joint:
        np.testing.assert_allclose(chunked.joint[key].toarray(), whole.joint[key].toarray(), atol=1e-14)
    mc = probabilities(graph, "threshold", design=design, method="monte-carlo", n_draws=4_000, seed=2)
    # binomial sd of a share over 4,000 draws is at most 0.008; allow 5 of them
    assert np.abs(mc.marginal - whole.marginal).max() < 0.04


@pytest.mark.parametrize("design_name", ["bernoulli clusters", "complete clusters"])
def test_the_general_set_engine_agrees_with_the_one_hop_closed_form(design_name):
    from spillover.exposure.exact import exact_by_events, exact_by_sets

    design = DESIGNS[design_name](SOCIAL.nodes)
    rule = get_mapping("as4")
    kernel = ExposureGraph.build(SOCIAL)
    pairs = kernel.dependence(design.randomization().blocks)
    keys = [(0, 0), (0, 3), (2, 3)]
    a = exact_by_events(kernel, rule, design.randomization(), pairs, keys)
    b = exact_by_sets(kernel, rule, design.randomization(), pairs, keys)
    np.testing.assert_allclose(a[0], b[0], atol=1e-14)
    for key in keys:
        np.testing.assert_allclose(a[1][key], b[1][key], atol=1e-14)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["powerlaw-cluster, as4, complete", "watts-strogatz, as4, bernoulli",
                                  "market, bipartite, complete"])
def test_pairs_evaluated_once_per_distinct_relation_agree_with_the_general_set_engine(case):
    # beyond 1,000 pairs the closed form is evaluated once per distinct relation of the two
    # units' block sets (sizes, overlap, own blocks) and copied to every pair; the set
    # engine counts every pair's unions row by row, on graphs we did not generate
    import networkx as nx

    from spillover.exposure.exact import exact_by_events, exact_by_sets

    rng = np.random.default_rng(5)
    if case.startswith("market"):
        graph = synth.marketplace(1_500, 150, seed=3)
        units, mapping = graph.treated, "bipartite"
    else:
        nx_graph = (nx.powerlaw_cluster_graph(1_500, 3, 0.3, seed=2) if case.startswith("powerlaw")
                    else nx.watts_strogatz_graph(1_500, 6, 0.1, seed=2))
        graph = SocialGraph.from_edges(nx.to_pandas_edgelist(nx_graph))
        units, mapping = graph.nodes, "as4"
    clusters = rng.integers(0, len(units) // 8, len(units))
    design = ClusterDesign(clusters, units, treat_fraction=0.4, complete=case.endswith("complete"))
    rule = get_mapping(mapping)
    kernel = ExposureGraph.build(graph)
    pairs = kernel.dependence(design.randomization().blocks)
    assert pairs.nnz > 10_000  # the distinct-relation path is taken
    keys = [(k, l) for k in range(len(rule.conditions)) for l in range(k, len(rule.conditions))]
    a = exact_by_events(kernel, rule, design.randomization(), pairs, keys)
    b = exact_by_sets(kernel, rule, design.randomization(), pairs, keys)
    np.testing.assert_allclose(a[0], b[0], atol=1e-13)
    for key in keys:
        np.testing.assert_allclose(a[1][key], b[1][key], atol=1e-13, err_msg=str(key))


def test_a_mapping_with_no_exact_form_is_refused_by_name():
    from spillover.exposure import Mapping

    custom = Mapping("two+", ("two_plus", "fewer"), "fewer", lambda c: np.where(c.n_treated >= 2, 0, 1))
    with pytest.raises(InputError, match="'two\\+' has neither events nor counts_only"):
        probabilities(SOCIAL, custom, design=IndividualDesign(SOCIAL.nodes), method="exact")
    exact = probabilities(SOCIAL, Mapping("two+", ("two_plus", "fewer"), "fewer",
                                          lambda c: np.where(c.n_treated >= 2, 0, 1), counts_only=True),
                          design=IndividualDesign(SOCIAL.nodes), joint="all", method="exact")
    marginal, _ = enumerated_probabilities(SOCIAL, custom, IndividualDesign(SOCIAL.nodes).randomization())
    np.testing.assert_allclose(exact.marginal, marginal, atol=1e-12)


def test_marginals_only_still_give_the_diagonal_of_the_variance():
    """joint=None used to store no pair at all, and the HT variance came out 0. Under a
    Bernoulli design with the own-arm mapping units are independent, so the variance from
    marginals alone must equal the one with every dependent pair."""
    from spillover.design import IndividualDesign
    from spillover.estimate import estimate

    graph = synth.social_graph(400, seed=3)
    design = IndividualDesign(graph.nodes, 0.4, complete=False)
    table = exposure(graph, design.assign(seed=1), "fraction")
    outcomes = pd.DataFrame({"unit_id": graph.nodes, "y": np.random.default_rng(2).normal(3, 1, graph.n_nodes)})
    ses = [estimate(outcomes, table, "ht", probabilities=probabilities(graph, "fraction", design=design, joint=joint))
           .to_frame()["se"].iloc[0] for joint in (None, "dependent")]
    assert ses[0] > 0 and ses[0] == pytest.approx(ses[1], rel=1e-12)


@pytest.mark.parametrize("mapping, method", [("as4", "exact"), ("threshold", "auto"), ("as4", "monte-carlo"),
                                             ("fraction", "exact"), ("threshold", "monte-carlo")])
def test_grouping_units_by_class_changes_no_probability_and_no_standard_error(mapping, method):
    """Units with the same own cluster and the same neighbours per cluster share every
    probability: grouped (pairs between classes) and per unit give the same marginals,
    the same joints once expanded, and the same HT and Hajek standard errors (1e-10),
    exactly or from the same Monte Carlo draws."""
    from spillover.design import ClusterDesign
    from spillover.estimate import estimate

    graph = synth.social_graph(600, mean_degree=4, seed=5)
    labels = graph.node_data["community"].reindex(graph.nodes).to_numpy()
    design = ClusterDesign(labels, graph.nodes, treat_fraction=0.5)
    kwargs = dict(design=design, method=method, n_draws=300, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grouped = probabilities(graph, mapping, grouped=True, **kwargs)
        per_unit = probabilities(graph, mapping, grouped=False, **kwargs)
    assert grouped.groups is not None and grouped.groups.max() + 1 < 0.8 * graph.n_nodes  # it did group
    # Monte Carlo too: the same draws, and units of a class are in the same condition in each
    assert grouped.method == per_unit.method
    np.testing.assert_allclose(grouped.marginal, per_unit.marginal, atol=1e-12)
    expanded = grouped.per_unit()
    assert (expanded.pairs != per_unit.pairs).nnz == 0
    for key, values in per_unit.joint.items():
        np.testing.assert_allclose(expanded.joint[key].toarray(), values.toarray(), atol=1e-12)
    table = exposure(graph, design.assign(seed=7), mapping)
    y = pd.DataFrame({"unit_id": graph.nodes, "y": np.random.default_rng(8).normal(2, 1, graph.n_nodes)})
    for estimator in ("ht", "hajek"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = estimate(y, table, estimator, probabilities=grouped).to_frame()
            b = estimate(y, table, estimator, probabilities=per_unit).to_frame()
        np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=1e-10)
        np.testing.assert_allclose(a["se"], b["se"], rtol=1e-10)


def test_exact_joints_and_variance_sums_are_the_same_in_many_chunks(monkeypatch):
    # the exact engine builds pair tables and the Aronow-Samii sums run in chunks of pairs;
    # 9 and 7 chunks of uneven length give the single-chunk results
    from spillover.estimate import estimate
    from spillover.estimate import weighting as weighting_module
    from spillover.exposure import exact as exact_module

    graph = synth.social_graph(300, seed=3)
    design = ClusterDesign(graph.nodes % 25, graph.nodes, treat_fraction=0.4)
    table = exposure(graph, design.assign(seed=1), "as4")
    outcomes = pd.DataFrame({"unit_id": graph.nodes, "y": np.random.default_rng(2).normal(size=graph.n_nodes)})
    whole = probabilities(graph, "as4", design=design, grouped=False)
    assert whole.pairs.nnz > 100
    reference = estimate(outcomes, table, "hajek", probabilities=whole, min_units=0)  # every contrast's sums
    monkeypatch.setattr(exact_module, "EXACT_PAIR_CHUNK", whole.pairs.nnz // 9 + 1)
    monkeypatch.setattr(weighting_module, "PAIR_CHUNK", whole.pairs.nnz // 7 + 1)
    chunked = probabilities(graph, "as4", design=design, grouped=False)
    for key, values in whole.joint.items():
        np.testing.assert_array_equal(chunked.joint[key].data, values.data)
    again = estimate(outcomes, table, "hajek", probabilities=chunked, min_units=0)
    for condition in ("dir_ind1", "isol_dir", "ind1"):
        assert again[condition].se == pytest.approx(reference[condition].se, rel=1e-12)
    # factored: the per-block sums' share of the stored pairs is subtracted chunk by chunk
    factored = probabilities(graph, "as4", design=design, factored=True)
    assert factored.factored is not None and factored.factored.corrections.nnz > 100
    monkeypatch.setattr(weighting_module, "PAIR_CHUNK", factored.pairs.nnz // 7 + 1)
    in_chunks = estimate(outcomes, table, "hajek", probabilities=factored, min_units=0)
    monkeypatch.setattr(weighting_module, "PAIR_CHUNK", 10**9)
    at_once = estimate(outcomes, table, "hajek", probabilities=factored, min_units=0)
    for condition in ("dir_ind1", "isol_dir", "ind1"):
        assert in_chunks[condition].se == pytest.approx(at_once[condition].se, rel=1e-12)
        assert at_once[condition].se == pytest.approx(reference[condition].se, rel=1e-9)


FACTORED_CASES = {
    **{f"social, {name}": (SOCIAL, "as4", DESIGNS[name]) for name in DESIGNS},
    "social, threshold q=1": (SOCIAL, get_mapping("threshold", threshold_q=1.0), DESIGNS["complete clusters"]),
    "market, sellers": (MARKET, "bipartite", lambda units: IndividualDesign(units, 0.4, complete=True)),
    "market, seller clusters": (MARKET, "bipartite",
                                lambda units: ClusterDesign(np.array([0, 0, 1, 1, 2]), units, treat_fraction=0.5,
                                                            complete=False)),
}


@pytest.mark.parametrize("case", list(FACTORED_CASES))
@pytest.mark.parametrize("grouped", [False, True])
def test_factored_probabilities_hold_the_same_joints_as_stored_ones(case, grouped):
    # pairs that share one block are not stored but described by their types there;
    # formed again they equal the joints the stored path computes (itself checked against
    # full enumeration above), and the pairs sharing two or more blocks are stored exactly
    graph, mapping, make = FACTORED_CASES[case]
    design = make(graph.treated if isinstance(graph, BipartiteGraph) else graph.nodes)
    factored = probabilities(graph, mapping, design=design, factored=True, grouped=grouped)
    stored = probabilities(graph, mapping, design=design, factored=False, grouped=grouped)
    assert factored.factored is not None and stored.factored is None
    assert factored.pairs.nnz < stored.pairs.nnz  # some pairs share a single block
    np.testing.assert_array_equal(factored.marginal, stored.marginal)
    again = factored.unfactored()
    assert (again.pairs != stored.pairs).nnz == 0
    for key, values in stored.joint.items():
        np.testing.assert_allclose(again.joint[key].toarray(), values.toarray(), atol=1e-14, err_msg=str(key))


@pytest.mark.parametrize("design_name", ["complete clusters", "bernoulli clusters", "complete units",
                                         "bernoulli units"])
def test_factored_variances_equal_the_pairwise_sums(design_name):
    # the per-block sums plus the stored pairs' corrections give the same HT and Hajek
    # standard errors (pair-by-pair bound) as the sum over every stored pair (rounding only: 1e-10), with and
    # without trimming, and weighted least squares (which expands the pairs) agrees too
    from spillover.estimate import estimate

    graph = synth.social_graph(1_500, mean_degree=6, seed=11)
    labels = graph.node_data["community"].reindex(graph.nodes).to_numpy()
    design = {"complete clusters": ClusterDesign(labels, graph.nodes, treat_fraction=0.4),
              "bernoulli clusters": ClusterDesign(labels, graph.nodes, treat_fraction=0.5, complete=False),
              "complete units": IndividualDesign(graph.nodes, 0.3, complete=True),
              "bernoulli units": IndividualDesign(graph.nodes, 0.3, complete=False)}[design_name]
    table = exposure(graph, design.assign(seed=3), "as4")
    y = pd.DataFrame({"unit_id": graph.nodes,
                      "y": np.random.default_rng(4).normal(size=graph.n_nodes) + table["n_treated_neighbors"]})
    factored = probabilities(graph, "as4", design=design, factored=True)
    stored = probabilities(graph, "as4", design=design, factored=False)
    assert factored.pairs.nnz < 0.5 * stored.pairs.nnz
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # factored sums keep the pair-by-pair bound: compared with the stored pairs' same bound
        pairs = {"variance_bound": "pairs"}
        for method, options in (("ht", pairs), ("hajek", pairs), ("hajek", {"min_probability": 0.05, **pairs}),
                                ("wls", {})):
            a = estimate(y, table, method, probabilities=factored, **options).to_frame()
            b = estimate(y, table, method, probabilities=stored, **options).to_frame()
            np.testing.assert_allclose(a["estimate"], b["estimate"], rtol=1e-12)
            np.testing.assert_allclose(a["se"], b["se"], rtol=1e-10, err_msg=f"{method} {options}")


def test_type_pair_positions_from_the_table_equal_the_lookup(monkeypatch):
    # few types: each shared block's type pair is found in a dense table; many: looked up in the
    # types' meeting matrix. Both give the same corrections matrix, entry for entry
    from spillover.exposure import factored as factored_module

    graph = synth.social_graph(1_500, mean_degree=6, seed=11)
    labels = graph.node_data["community"].reindex(graph.nodes).to_numpy()
    design = ClusterDesign(labels, graph.nodes, treat_fraction=0.4)
    table = probabilities(graph, "as4", design=design, factored=True).factored.corrections
    monkeypatch.setattr(factored_module, "TYPE_TABLE_MAX", 0)
    lookup = probabilities(graph, "as4", design=design, factored=True).factored.corrections
    assert table.nnz > 1_000 and (table != lookup).nnz == 0


def test_cross_products_dense_and_sparse_agree_with_the_sums_per_block(monkeypatch):
    # few (block, type) cells: each product of the per-cell sums is one dense BLAS call; many: a sparse product.
    # Both give, per type pair, the sum over blocks of the two types' sums there, formed here from the incidences
    from spillover.exposure import results as results_module

    graph = synth.social_graph(1_500, mean_degree=6, seed=11)
    labels = graph.node_data["community"].reindex(graph.nodes).to_numpy()
    f = probabilities(graph, "as4", design=ClusterDesign(labels, graph.nodes, treat_fraction=0.4),
                      factored=True).factored
    values = np.random.default_rng(5).normal(size=(3, int(f.classes.max()) + 1))
    pairs = [(0, 1), (1, 1), (2, 0)]
    per_block = np.zeros((3, f.n_blocks, f.n_types))
    for row in range(3):
        np.add.at(per_block[row], (f.blocks, f.types), values[row, f.classes])
    expected = np.array([(per_block[x].T @ per_block[y]).ravel()[f.type_pairs] for x, y in pairs])
    dense = f.cross_products(f.cell_sums(values), pairs)
    monkeypatch.setattr(results_module, "DENSE_CELLS", 0)
    sparse = f.cross_products(f.cell_sums(values), pairs)
    assert np.abs(expected).max() > 1 and f.n_blocks > 10
    for got in (dense, sparse):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


def test_large_designs_are_factored_by_default_and_small_ones_are_not(monkeypatch):
    from spillover.exposure import probability as probability_module

    graph = synth.social_graph(600, mean_degree=4, seed=5)
    labels = graph.node_data["community"].reindex(graph.nodes).to_numpy()
    design = ClusterDesign(labels, graph.nodes, treat_fraction=0.5)
    assert probabilities(graph, "as4", design=design).factored is None
    monkeypatch.setattr(probability_module, "FACTOR_ABOVE_PAIRS", 1_000)
    monkeypatch.setattr(probability_module, "GROUP_ABOVE_PAIRS", 1_000)
    large = probabilities(graph, "as4", design=design)
    assert large.factored is not None and any("factored" in note for note in large.notes)
    # what cannot be factored is computed as before, or refused when factoring is asked for
    assert probabilities(graph, "as4", design=design, method="monte-carlo", n_draws=50, seed=1).factored is None
    for options in ({"method": "monte-carlo", "n_draws": 50}, {"hops": 2}, {"joint": "all"}):
        with pytest.raises(InputError, match="factored pairs need exact probabilities"):
            probabilities(graph, "as4", design=design, factored=True, **options)


def test_max_pairs_bounds_the_pairs_a_factored_design_stores():
    graph = synth.social_graph(600, mean_degree=6, seed=5)
    design = ClusterDesign(graph.node_data["community"].reindex(graph.nodes).to_numpy(), graph.nodes)
    factored = probabilities(graph, "as4", design=design, factored=True, grouped=False, max_pairs=None)
    off_diagonal = factored.pairs.nnz - graph.n_nodes
    assert off_diagonal > 0
    with pytest.raises(InputError, match=f"max_pairs={off_diagonal - 1:,}"):
        probabilities(graph, "as4", design=design, factored=True, grouped=False, max_pairs=off_diagonal - 1)


@pytest.mark.parametrize("mapping", ["fraction", "as4", "threshold"])
def test_a_mapping_that_reads_the_own_arm_is_refused_on_a_bipartite_graph(mapping):
    # the unit side has no arm: exposure() refused these, probabilities() computed them
    # as if every unit were untreated
    design = IndividualDesign(MARKET.treated, 0.4)
    with pytest.raises(InputError, match="reads a unit's own arm"):
        probabilities(MARKET, mapping, design=design)


def stratified_design(units, clusters, strata, **options):
    from spillover.design import StratifiedClusterDesign

    return StratifiedClusterDesign(np.asarray(clusters), units, np.asarray(strata), **options)


@pytest.mark.parametrize("mapping", ["as4", "fraction", get_mapping("threshold", threshold_q=1.0)],
                         ids=["as4", "fraction", "threshold-q1"])
@pytest.mark.parametrize("odd", [False, True], ids=["fixed-counts", "rounded-counts"])
def test_exact_stratified_probabilities_equal_full_enumeration(mapping, odd):
    # each stratum completely randomized on its own: conjunctions are products over strata;
    # with three clusters in a stratum split 50/50 the treated count is 1 or 2 (rounding)
    clusters = np.arange(SOCIAL.n_nodes) // 2  # six clusters
    strata = [0, 0, 0, 1, 1, 1] if odd else [0, 0, 1, 1, 2, 2]
    design = stratified_design(SOCIAL.nodes, clusters, strata, sample_fraction=1.0)
    randomization = design.randomization()
    assert randomization.scheme == "stratified" and len(randomization.treated_counts[0]) == (2 if odd else 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PositivityWarning)
        exact = assert_exact_equals_enumeration(SOCIAL, mapping, design)
    assert exact.method.startswith(f"exact: complete randomization within each of {2 if odd else 3} strata")


def test_exact_stratified_probabilities_match_the_designs_own_draws():
    # the sampler itself (sampling a fraction, three arms, rounding slots drawn by weight)
    # against the closed form: 40,000 draws, binomial sd at most 0.0025; allow 5 of them
    design = stratified_design(SOCIAL.nodes, np.arange(SOCIAL.n_nodes), [0] * 6 + [1] * 5, sample_fraction=0.7,
                               arm_weights=(0.4, 0.35, 0.25))
    assert all(len(counts) == 2 for counts in design.randomization().treated_counts)
    exact = probabilities(SOCIAL, "as4", design=design, joint="all")
    mc = probabilities(SOCIAL, "as4", design=design, joint="all", method="monte-carlo", n_draws=40_000, seed=3)
    assert exact.method.startswith("exact") and mc.method.startswith("monte carlo")
    np.testing.assert_allclose(exact.marginal, mc.marginal, atol=5 * 0.0025)
    for key, values in exact.joint.items():
        np.testing.assert_allclose(values.toarray(), mc.joint[key].toarray(), atol=5 * 0.0025, err_msg=str(key))


def test_reach_of_a_blocked_kernel_leaves_its_counts_alone():
    # a bipartite kernel on blocks has counts above 1 and no own node: its reach (0/1) is a copy
    from spillover.exposure.kernel import ExposureGraph

    kernel = ExposureGraph.build(synth.marketplace(2_000, 200, seed=1)).blocked(np.arange(200) % 13, 13)
    counts = kernel.neighbors.data.copy()
    assert counts.max() > 1 and set(np.unique(kernel.reach().data)) == {1}
    np.testing.assert_array_equal(kernel.neighbors.data, counts)


@pytest.mark.parametrize("collide", [False, True])
def test_classes_are_the_units_with_equal_counts_per_block(monkeypatch, collide):
    # units are grouped by one 64-bit key and checked member by member against their class's
    # first; where the key collides (forced here: every unit one key) all three columns are
    # compared. Either way the classes are exactly the units with the same own block and
    # the same neighbours per block, numbered in order of first appearance
    import networkx as nx

    graph = SocialGraph.from_edges(nx.to_pandas_edgelist(nx.powerlaw_cluster_graph(600, 2, 0.4, seed=3)))
    blocks = np.random.default_rng(2).integers(0, 40, graph.n_nodes)
    blocked = ExposureGraph.build(graph).blocked(blocks, 40)
    dense = blocked.neighbors.toarray()
    reference = pd.factorize(pd.Series([(own, *row) for own, row in zip(blocked.own_index, dense.tolist())]))[0]
    if collide:
        monkeypatch.setattr(pd, "factorize", lambda values: (np.zeros(len(values), dtype=np.int64), np.zeros(1)))
    np.testing.assert_array_equal(blocked.block_signatures(), reference)
    assert reference.max() + 1 < graph.n_nodes  # some units do share a class
