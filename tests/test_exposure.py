"""Exposure mappings against hand-checked cases and probabilities against closed forms."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from spillover import BipartiteGraph, DataWarning, InputError, SocialGraph, synth
from spillover.design import BipartiteDesign, ClusterDesign, IndividualDesign
from spillover.errors import PositivityWarning
from spillover.exposure import Mapping, exposure, probabilities

PATH = SocialGraph.from_edges(pd.DataFrame({"source": ["a", "b", "c", "d"], "target": ["b", "c", "d", "e"]}))


def arms(**values) -> pd.Series:
    return pd.Series(values)


def test_as4_conditions_on_a_path():
    # a - b - c - d - e with b and e treated
    table = exposure(PATH, arms(a=0, b=1, c=0, d=0, e=1), "as4").set_index("unit_id")
    assert table["condition"].astype(str).to_dict() == {
        "a": "ind1", "b": "isol_dir", "c": "ind1", "d": "ind1", "e": "isol_dir"}
    assert table["n_treated_neighbors"].tolist() == [1, 0, 1, 1, 0]
    assert table["treated_fraction"].tolist() == [1.0, 0.0, 0.5, 0.5, 0.0]
    table = exposure(PATH, arms(a=1, b=1, c=0, d=0, e=0), "as4").set_index("unit_id")
    assert table["condition"].astype(str).tolist() == ["dir_ind1", "dir_ind1", "ind1", "no", "no"]


def test_as4_two_hop_sees_treatment_two_steps_away():
    table = exposure(PATH, arms(a=1, b=0, c=0, d=0, e=0), "as4", hops=2).set_index("unit_id")
    assert table["condition"].astype(str).tolist() == ["isol_dir", "ind1", "ind2", "no", "no"]


def test_threshold_mapping_follows_ugander():
    table = exposure(PATH, arms(a=1, b=1, c=1, d=0, e=0), "threshold", threshold_q=0.5).set_index("unit_id")
    # c: treated with 1 of 2 neighbours treated (0.5 >= q) -> treated; d: untreated, 1 of 2 untreated -> control
    assert table["condition"].astype(str).tolist() == ["treated", "treated", "treated", "control", "control"]
    table = exposure(PATH, arms(a=1, b=1, c=1, d=0, e=0), "threshold", threshold_q=1.0).set_index("unit_id")
    assert table["condition"].astype(str).tolist() == ["treated", "treated", "other", "other", "control"]


def test_bipartite_exposure_direct_indirect_control():
    links = pd.DataFrame({"buyer": [1, 1, 2, 2, 3, 4], "seller": ["s1", "s2", "s1", "s3", "s3", "s2"]})
    graph = BipartiteGraph.from_edges(links, unit="buyer", treated="seller")
    table = exposure(graph, pd.Series({"s1": 1, "s2": 1, "s3": 0}), "bipartite").set_index("unit_id")
    assert table["condition"].astype(str).to_dict() == {1: "direct", 2: "indirect", 3: "control", 4: "direct"}
    assert table["arm"].isna().all()
    assert table["treated_fraction"].tolist() == [1.0, 0.5, 0.0, 1.0]


def test_user_defined_mapping_hook():
    at_least_two = Mapping("two+", ("two_plus", "fewer"), "fewer", lambda c: np.where(c.n_treated >= 2, 0, 1))
    table = exposure(PATH, arms(a=0, b=1, c=0, d=1, e=0), at_least_two).set_index("unit_id")
    assert table["condition"].astype(str).tolist() == ["fewer", "fewer", "two_plus", "fewer", "fewer"]


def test_exposure_matches_networkx_counts_on_a_random_graph():
    graph = synth.social_graph(800, mean_degree=8, seed=2)
    z = np.random.default_rng(1).integers(0, 2, graph.n_nodes)
    table = exposure(graph, pd.Series(z, index=graph.nodes), "fraction")
    g = graph.to_networkx()
    expected = [sum(z[j] for j in g[i]) for i in range(graph.n_nodes)]
    assert table["n_treated_neighbors"].tolist() == expected


def test_unknown_and_missing_assignment_ids():
    with pytest.warns(DataWarning, match=r"1 of its 2 ids have no edge in the graph \(e.g. 'zz'\)"):
        table = exposure(PATH, arms(a=1, zz=0), "as4")  # an isolate: kept, exposed by no one
    assert table.set_index("unit_id").loc["zz", ["n_neighbors", "condition"]].tolist() == [0, "no"]
    with pytest.raises(InputError, match=r"none of its 2 ids is in the graph"):
        exposure(PATH, arms(yy=1, zz=0), "as4")
    with pytest.warns(DataWarning, match="3 node"):
        table = exposure(PATH, arms(a=1, b=0), "as4")
    assert table["arm"].tolist() == [1, 0, -1, -1, -1]


def closed_form_as4(degree: np.ndarray, p: float) -> np.ndarray:
    none = (1 - p) ** degree
    return np.column_stack([p * (1 - none), p * none, (1 - p) * (1 - none), (1 - p) * none])


@pytest.mark.filterwarnings("ignore::spillover.errors.PositivityWarning")
def test_monte_carlo_probabilities_match_the_bernoulli_closed_form():
    graph = synth.social_graph(400, mean_degree=5, seed=4)
    design = IndividualDesign(graph.nodes, 0.3, complete=False)
    n_draws = 20_000
    probs = probabilities(graph, "as4", design=design, n_draws=n_draws, seed=2, joint=None, chunk=2_000)
    expected = closed_form_as4(graph.degrees(), 0.3)
    se = np.sqrt(expected * (1 - expected) / n_draws)
    assert np.all(np.abs(probs.marginal - expected) <= 5 * se + 1e-12)  # 5 binomial SEs


def test_joint_probabilities_are_exact_on_enumerated_draws():
    # all 10 ways to treat 2 of the 5 path nodes: every probability is a count over 10
    draws = np.array([[1 if i in c else 0 for i in range(5)] for c in itertools.combinations(range(5), 2)]).T
    probs = probabilities(PATH, "as4", draws=draws, joint="all")
    k = probs.condition_index("no")
    table = [exposure(PATH, pd.Series(draws[:, r], index=PATH.nodes), "as4")["condition"].astype(str).to_numpy()
             for r in range(10)]
    in_no = np.array([t == "no" for t in table])  # (10, 5)
    np.testing.assert_allclose(probs.marginal[:, k], in_no.mean(axis=0), atol=1e-15)
    np.testing.assert_allclose(probs.joint[(k, k)].toarray(), (in_no.T.astype(float) @ in_no) / 10, atol=1e-15)


@pytest.mark.filterwarnings("ignore::spillover.errors.PositivityWarning")
def test_cluster_designs_link_units_through_their_clusters():
    graph = synth.social_graph(300, mean_degree=4, seed=5)
    clusters = np.arange(300) // 30
    design = ClusterDesign(clusters, graph.nodes)
    probs = probabilities(graph, "as4", design=design, n_draws=50, seed=1)
    same_cluster = clusters[:, None] == clusters[None, :]
    assert np.all(probs.pairs.toarray()[same_cluster] == 1)


def test_draws_table_must_name_the_graphs_units():
    table = pd.DataFrame(np.ones((3, 5), dtype=int), columns=["a", "b", "c", "d", "zz"])
    with pytest.raises(InputError, match="1 unknown.*'zz'.*1 missing.*'e'"):
        probabilities(PATH, "as4", draws=table)


def test_positivity_warning_counts_units():
    star = SocialGraph.from_edges(pd.DataFrame({"source": ["hub"] * 30, "target": [f"l{i}" for i in range(30)]}))
    design = IndividualDesign(star.nodes, 0.5, complete=False)
    with pytest.warns(PositivityWarning, match=r"'isol_dir': 1"):
        probabilities(star, "as4", design=design, n_draws=200, seed=0)


@pytest.mark.filterwarnings("ignore::spillover.errors.PositivityWarning")
def test_bipartite_probabilities_match_closed_form():
    graph = synth.marketplace(300, 40, seed=2)
    design = BipartiteDesign(graph, treat_fraction=0.5)
    n_draws = 4_000
    probs = probabilities(graph, "bipartite", design=design, n_draws=n_draws, seed=3, joint=None)
    degree = graph.unit_degrees()
    # complete randomization of 20 of 40 sellers: P(all d treated) = C(40-d, 20-d) / C(40, 20)
    from scipy.special import comb
    all_treated = comb(40 - degree, 20 - degree) / comb(40, 20)
    se = np.sqrt(all_treated * (1 - all_treated) / n_draws)
    assert np.all(np.abs(probs.marginal[:, 0] - all_treated) <= 5 * se + 1e-12)
