"""Clustering checked against independent facts: networkx's own computations, planted
partitions, and the definitions of 3-net and ego clusters."""

from __future__ import annotations

import warnings

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from spillover import InterferenceWarning, SocialGraph, cluster, synth
from spillover.clustering import design_effect, effective_n_clusters, modularity, sweep

from .conftest import random_sparse_edges


def quiet_cluster(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InterferenceWarning)
        return cluster(*args, **kwargs)


def test_components_count_matches_a_known_construction():
    # 7 disjoint paths of different lengths plus 3 isolated nodes: 10 components
    edges = []
    start = 0
    for length in [2, 3, 5, 8, 13, 21, 34]:
        edges += [(start + i, start + i + 1) for i in range(length - 1)]
        start += length
    graph = SocialGraph.from_edges(pd.DataFrame(edges, columns=["source", "target"]), nodes=range(start + 3))
    result = cluster(graph, "components")
    assert result.n_clusters == 10
    assert sorted(result.sizes.tolist()) == [1, 1, 1, 2, 3, 5, 8, 13, 21, 34]
    assert result.cut_fraction == 0.0


def test_components_match_networkx_on_a_random_sparse_graph():
    graph = SocialGraph.from_edges(random_sparse_edges(5_000, 2_600, seed=1))
    result = cluster(graph, "components")
    reference = list(nx.connected_components(graph.to_networkx()))
    assert result.n_clusters == len(reference)
    for members in reference[:50]:
        assert np.unique(result.labels[list(members)]).size == 1


@pytest.mark.parametrize("method", ["louvain", "leiden", "metis", "3net", "1hop-max"])
def test_cut_fraction_and_modularity_equal_networkx(planted_graph, method):
    result = quiet_cluster(planted_graph, method, seed=2)
    g = planted_graph.to_networkx()
    labels = result.labels
    communities = [set(np.flatnonzero(labels == c).tolist()) for c in range(result.n_clusters)]
    assert result.modularity == pytest.approx(nx.community.modularity(g, communities), abs=1e-12)
    crossing = sum(labels[u] != labels[v] for u, v in g.edges())
    assert result.cut_fraction == pytest.approx(crossing / g.number_of_edges(), abs=1e-15)
    assert result.n_edges == g.number_of_edges()


def test_modularity_at_another_resolution_equals_networkx(planted_graph):
    labels = np.random.default_rng(0).integers(0, 20, planted_graph.n_nodes)
    g = planted_graph.to_networkx()
    communities = [set(np.flatnonzero(labels == c).tolist()) for c in range(20)]
    expected = nx.community.modularity(g, communities, resolution=2.5)
    assert modularity(planted_graph.adjacency, labels, resolution=2.5) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("method", ["louvain", "leiden"])
def test_community_detection_recovers_a_planted_partition(planted_graph, method):
    truth = planted_graph.node_data["community"].to_numpy()
    result = quiet_cluster(planted_graph, method, seed=5)
    assert adjusted_rand_score(truth, result.labels) > 0.9


@pytest.mark.parametrize("method", ["louvain", "leiden", "metis", "3net", "ego", "1hop-max"])
def test_same_seed_gives_the_same_labels(planted_graph, method):
    a = quiet_cluster(planted_graph, method, seed=11).labels
    b = quiet_cluster(planted_graph, method, seed=11).labels
    np.testing.assert_array_equal(a, b)


def _distances_from(graph: nx.Graph, sources, cutoff: int) -> dict[int, dict[int, int]]:
    return {s: nx.single_source_shortest_path_length(graph, s, cutoff=cutoff) for s in sources}


def test_one_hop_max_satisfies_its_definition():
    """One centre per cluster, and every cluster has a centre in the closed neighbourhood
    of each of its members (the centre holds the largest number there; it need not be in
    its own cluster, whose numbers around it may be larger)."""
    import scipy.sparse as sp

    graph = synth.social_graph(1_500, mean_degree=6, seed=4)
    result = quiet_cluster(graph, "1hop-max", seed=3, weights="degree")
    centers = graph.index_of(result.centers)
    assert len(centers) == result.n_clusters
    closed = sp.csr_array(graph.adjacency + sp.eye_array(graph.n_nodes, format="csr"))
    members = sp.csr_array((np.ones(graph.n_nodes), (np.arange(graph.n_nodes), result.labels)))
    reached = (closed @ members).toarray()[centers]  # members of each cluster around each centre
    sizes = np.bincount(result.labels)
    assert np.all((reached == sizes[None, :]).any(axis=0)), "some centre neighbours every member of its cluster"


def test_three_net_satisfies_its_definition():
    graph = synth.social_graph(1_500, mean_degree=6, seed=4)
    result = quiet_cluster(graph, "3net", seed=3)
    g = graph.to_networkx()
    centers = graph.index_of(result.centers)
    # one centre per cluster: clusters are disjoint and cover every node
    assert len(centers) == result.n_clusters
    assert np.unique(result.labels[centers]).size == result.n_clusters
    near = _distances_from(g, centers, cutoff=2)
    center_of_cluster = dict(zip(result.labels[centers], centers))
    for node in range(graph.n_nodes):
        center = center_of_cluster[result.labels[node]]
        assert node in near[center], "every node lies within 2 hops of its cluster centre"
    for center in centers:  # centres pairwise at least 3 hops apart
        assert not (set(near[center]) - {center}) & set(centers.tolist())
    covered = set().union(*(set(d) for d in near.values()))
    assert covered == set(range(graph.n_nodes)), "maximal: no node could become a new centre"


def test_ego_clusters_are_an_ego_with_all_its_alters():
    graph = synth.social_graph(1_500, mean_degree=6, seed=4)
    result = quiet_cluster(graph, "ego", seed=3)
    g = graph.to_networkx()
    egos = graph.index_of(result.centers)
    assert np.unique(result.labels[egos]).size == result.n_clusters == len(egos)
    members = pd.Series(np.arange(graph.n_nodes)).groupby(result.labels).apply(set)
    for ego in egos:
        cluster_members = members[result.labels[ego]]
        if len(cluster_members) > 1:
            assert cluster_members == set(g[ego]) | {ego}
    big = [e for e in egos if len(members[result.labels[e]]) > 1]
    near = _distances_from(g, big, cutoff=2)
    for ego in big:  # closed neighbourhoods disjoint: egos at least 3 hops apart
        assert not (set(near[ego]) - {ego}) & set(big)
    assert max(len(m) for m in members) == max(dict(g.degree()).values()) + 1  # top-degree ego first


def test_metis_makes_balanced_parts(planted_graph):
    result = quiet_cluster(planted_graph, "metis", n_parts=30, seed=0)
    assert result.n_clusters == 30
    assert result.sizes.max() <= 1.05 * planted_graph.n_nodes / 30 + 1


def test_greedy_modularity_matches_networkx_communities():
    graph = synth.social_graph(400, mean_degree=8, mixing=0.05, community_size_range=(20, 60), seed=2)
    result = quiet_cluster(graph, "greedy-modularity")
    reference = nx.community.greedy_modularity_communities(graph.to_networkx())
    assert result.n_clusters == len(reference)
    assert result.modularity == pytest.approx(nx.community.modularity(graph.to_networkx(), reference))


def test_collaboration_components_give_every_node_type_its_component(small_collab):
    result = cluster(small_collab, "components")
    users = result.labels
    projects = result.other_labels["projects"].to_numpy()
    accounts = result.other_labels["accounts"].to_numpy()
    coo = small_collab.membership.tocoo()
    assert (users[coo.row] == projects[coo.col]).all(), "a user shares its projects' component"
    assert (projects == accounts[small_collab.project_account]).all(), "a project shares its account's"
    separate = cluster(small_collab, "components", through_accounts=False)
    assert separate.n_clusters >= result.n_clusters
    sizes = np.sort(result.sizes)
    assert sizes[-1] >= 20 * np.median(sizes), "heavy-tailed component sizes"


def test_bipartite_components_cover_both_sides():
    graph = synth.marketplace(2_000, 300, seed=1)
    result = cluster(graph, "components")
    buyers, sellers = graph.edge_index()
    assert (result.labels[buyers] == result.other_labels["treated"].to_numpy()[sellers]).all()


def test_interference_warning_above_the_threshold_says_what_to_do(planted_graph):
    with pytest.warns(InterferenceWarning, match=r"below 5% is usually not reachable.*bipartite or holdout"):
        cluster(planted_graph, "3net", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InterferenceWarning)
        cluster(planted_graph, "3net", seed=0, cut_threshold=0.99)


def test_design_effect_and_effective_clusters_closed_forms():
    sizes = np.full(40, 25)
    assert design_effect(sizes, icc=0.1) == pytest.approx(1 + 24 * 0.1)
    assert effective_n_clusters(sizes) == pytest.approx(40)
    assert effective_n_clusters(np.array([1, 1, 98])) == pytest.approx(100**2 / (1 + 1 + 98**2))


def test_sweep_shows_the_trade_off(planted_graph):
    table = sweep(planted_graph, [0.1, 1.0, 10.0], "louvain", seed=1, icc=0.05)
    assert list(table["resolution"]) == [0.1, 1.0, 10.0]
    assert table["n_clusters"].is_monotonic_increasing
    assert table["effective_sample_size"].is_monotonic_increasing
    metis = sweep(planted_graph, [10, 100], "metis", seed=1)
    assert list(metis["n_clusters"]) == [10, 100]
    assert metis["cut_fraction"].iloc[0] < metis["cut_fraction"].iloc[1]
