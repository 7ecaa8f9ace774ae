"""Randomized graph cluster randomization (Ugander & Yin 2023): the random clusterings
against their definitions, the mixture's exposure probabilities and HT variance against
full enumeration, and the variance falling as the mixing grows."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from spillover import synth
from spillover.clustering import random_clusterings
from spillover.design import RandomizedClusterDesign
from spillover.errors import DesignError, InputError
from spillover.estimate import estimate
from spillover.exposure import exposure, probabilities
from spillover.graph import SocialGraph
from spillover.simulate import exact_ht_variance, mixing_study

# a 6-node graph with a triangle, a pendant and a path: clusterings differ by order
EDGES = pd.DataFrame({"source": [0, 0, 1, 2, 3, 4], "target": [1, 2, 2, 3, 4, 5]})


@pytest.fixture(scope="module")
def tiny() -> SocialGraph:
    return SocialGraph.from_edges(EDGES)


def _closed(adjacency: np.ndarray, i: int) -> list[int]:
    return [i] + [int(j) for j in np.flatnonzero(adjacency[i])]


def _one_hop_max(adjacency: np.ndarray, order: tuple[int, ...]) -> tuple[int, ...]:
    """By definition: node ``j`` joins the first node of ``order`` in its closed neighbourhood."""
    rank = {node: r for r, node in enumerate(order)}
    return tuple(min(_closed(adjacency, j), key=rank.__getitem__) for j in range(len(order)))


def _three_net(adjacency: np.ndarray, order: tuple[int, ...]) -> tuple[int, ...]:
    """Sequential greedy: a node is a centre when no earlier centre is within two hops;
    each node joins its nearest centre, ties to the earlier centre."""
    n = len(order)
    dist = np.full((n, n), 99)
    for i in range(n):
        dist[i, i] = 0
        frontier = [i]
        for step in (1, 2, 3, 4, 5):
            frontier = [j for f in frontier for j in np.flatnonzero(adjacency[f]) if dist[i, j] == 99]
            for j in frontier:
                dist[i, j] = step
    centres: list[int] = []
    for node in order:
        if all(dist[node, c] >= 3 for c in centres):
            centres.append(node)
    return tuple(min(centres, key=lambda c: (dist[j, c], centres.index(c))) for j in range(n))


def _plackett_luce(order: tuple[int, ...], weights: np.ndarray) -> float:
    remaining, prob = weights.sum(), 1.0
    for node in order:
        prob *= weights[node] / remaining
        remaining -= weights[node]
    return prob


@pytest.mark.parametrize("method, weights", [("1hop-max", "uniform"), ("1hop-max", "degree"),
                                             ("3net", "uniform"),
                                             pytest.param("3net", "degree", marks=pytest.mark.slow)])
def test_random_clusterings_follow_their_definition(tiny, method, weights):
    """The frequencies of the partitions drawn match the exact distribution over every
    ordering of the nodes (uniform, or Plackett-Luce with weights 1 + degree): a
    chi-square test, p above 1e-4 (it fails one run in 10,000 when the sampler is right)."""
    adjacency = tiny.adjacency.toarray() > 0
    w = np.ones(tiny.n_nodes) if weights == "uniform" else 1.0 + adjacency.sum(axis=1)
    rule = _one_hop_max if method == "1hop-max" else _three_net
    exact: dict[tuple, float] = {}
    for order in itertools.permutations(range(tiny.n_nodes)):
        key = rule(adjacency, order)
        exact[key] = exact.get(key, 0.0) + _plackett_luce(order, w)
    n_draws = 20_000
    labels = random_clusterings(tiny, method, n_draws, seed=7, weights=weights)
    drawn = pd.Series([tuple(int(v) for v in row) for row in labels]).value_counts()
    assert set(drawn.index) <= set(exact)  # every partition drawn is a possible one
    keys = list(exact)
    observed = np.array([drawn.get(k, 0) for k in keys], dtype=float)
    expected = np.array([exact[k] for k in keys]) * n_draws
    assert stats.chisquare(observed, expected).pvalue > 1e-4


def _enumerate(design: RandomizedClusterDesign):
    """Every (clustering, coins) assignment of the design with its probability."""
    p = design.treat_fraction
    for labels in design.clusterings:
        centres = np.unique(labels)
        for bits in itertools.product((0, 1), repeat=centres.size):
            coins = np.zeros(labels.size, dtype=np.int64)
            coins[centres] = bits
            weight = np.prod([p if b else 1 - p for b in bits]) / design.n_clusterings
            yield coins[labels], weight


def _full_neighbourhood(adjacency: np.ndarray, z: np.ndarray) -> np.ndarray:
    """0 treated (self and every neighbour), 1 control (none), 2 other: by definition."""
    out = np.full(z.size, 2)
    for i in range(z.size):
        around = z[_closed(adjacency, i)]
        out[i] = 0 if around.all() else 1 if not around.any() else 2
    return out


@pytest.mark.parametrize("method", ["1hop-max", "3net"])
def test_mixture_probabilities_equal_enumeration(tiny, method):
    """Marginal and joint probabilities of full-neighbourhood exposure under a mixture of
    four clusterings equal full enumeration of (clustering, cluster coins) to 1e-12."""
    design = RandomizedClusterDesign.from_graph(tiny, method, 4, treat_fraction=0.3, seed=5)
    adjacency = tiny.adjacency.toarray() > 0
    n = tiny.n_nodes
    marginal, joint = np.zeros((n, 3)), np.zeros((n, n, 3, 3))
    for z, weight in _enumerate(design):
        cond = _full_neighbourhood(adjacency, z)
        marginal[np.arange(n), cond] += weight
        joint[np.arange(n)[:, None], np.arange(n)[None, :], cond[:, None], cond[None, :]] += weight
    probs = probabilities(tiny, "threshold", threshold_q=1.0, design=design, joint="all")
    assert probs.method.startswith("exact: mixture of 4")
    np.testing.assert_allclose(probs.marginal, marginal, atol=1e-12)
    for (a, b), values in probs.joint.items():
        reference = joint[:, :, a, b].copy()
        if a != b:
            np.fill_diagonal(reference, 0.0)
        np.testing.assert_allclose(values.toarray(), reference, atol=1e-12)
    # the default keeps the pairs that share a cluster in some clustering, exactly
    dependent = probabilities(tiny, "threshold", threshold_q=1.0, design=design).per_unit()
    for key, values in dependent.joint.items():
        rows, cols = dependent.pairs.nonzero()
        np.testing.assert_allclose(values.toarray()[rows, cols], probs.joint[key].toarray()[rows, cols], atol=1e-12)
    assert dependent.bound_negative_pairs


def test_exact_ht_variance_equals_enumeration(tiny):
    """The law-of-total-variance formula equals the variance of the HT estimate over
    every assignment of a three-clustering mixture, and the HT estimate is unbiased."""
    design = RandomizedClusterDesign.from_graph(tiny, "1hop-max", 3, treat_fraction=0.4, seed=11)
    adjacency = tiny.adjacency.toarray() > 0
    rng = np.random.default_rng(3)
    y0 = rng.normal(2.0, 1.0, tiny.n_nodes)
    y1 = y0 + rng.normal(1.0, 0.5, tiny.n_nodes)
    probs = probabilities(tiny, "threshold", threshold_q=1.0, design=design, joint=None)
    pi1, pi0 = probs.marginal[:, 0], probs.marginal[:, 1]
    values, weights = [], []
    for z, weight in _enumerate(design):
        cond = _full_neighbourhood(adjacency, z)
        values.append(np.mean(np.where(cond == 0, y1 / pi1, 0.0) - np.where(cond == 1, y0 / pi0, 0.0)))
        weights.append(weight)
    values, weights = np.asarray(values), np.asarray(weights)
    assert weights.sum() == pytest.approx(1.0, abs=1e-12)
    mean = np.sum(weights * values)
    assert mean == pytest.approx(np.mean(y1 - y0), abs=1e-12)
    expected = np.sum(weights * (values - mean) ** 2)
    assert exact_ht_variance(tiny, design, y1, y0) == pytest.approx(expected, rel=1e-10)


def test_variance_falls_as_mixing_grows():
    """On a 16 x 16 small world (256 nodes, degree about 4), the exact HT variance of the
    global effect falls at every step of the mixing 1 -> 10 -> 50 clusterings, for both
    clusterings, and the least chance of full exposure rises (Ugander & Yin's finding)."""
    graph = synth.small_world(16, rewire=0.1, seed=2)
    for method in ("1hop-max", "3net"):
        table = mixing_study(graph, levels=(1, 10, 50), method=method, n_repeats=2, seed=4)
        variance = table["variance"].to_numpy()
        assert np.all(np.diff(variance) < 0), table
        assert variance[-1] < 0.8 * variance[0]
        assert table["min_p"].iloc[-1] > table["min_p"].iloc[0]


def test_rgcr_design_contract(tiny):
    design = RandomizedClusterDesign.from_graph(tiny, "1hop-max", 5, seed=1)
    np.testing.assert_array_equal(design.draw(4, seed=2), design.draw(4, seed=2))
    first, again = design.assign(seed=9), design.assign(seed=9)
    np.testing.assert_array_equal(first.arms, again.arms)
    chosen = design.clusterings[first.params["clustering"]]
    for centre in np.unique(chosen):  # a cluster moves together
        assert np.unique(first.arms[chosen == centre]).size == 1
    with pytest.raises(DesignError, match="treat_fraction"):
        RandomizedClusterDesign(design.clusterings, design.units, treat_fraction=1.0)
    with pytest.raises(InputError, match="clusterings of shape"):
        RandomizedClusterDesign(design.clusterings[:, :3], design.units)
    with pytest.raises(InputError, match="randomized clustering"):
        random_clusterings(tiny, "louvain", 2)
    with pytest.raises(InputError, match="node weights"):
        random_clusterings(tiny, "1hop-max", 2, weights=np.zeros(tiny.n_nodes))


@pytest.mark.slow
def test_rgcr_hajek_and_ht_by_simulation():
    """On a 40 x 40 small world (1,600 nodes) with outcomes of known global effect, over
    1,000 experiments of a 30-clustering RGCR design: the HT estimate is unbiased (mean
    within 4 Monte Carlo standard errors of the truth), its spread matches the exact
    variance (sd ratio within 0.9-1.1: the sd of 1,000 draws is known to about 2.2%),
    and the Aronow-Samii intervals (conservative) cover at least 95% - 3 MC se (0.93)."""
    graph = synth.small_world(40, rewire=0.1, seed=8)
    design = RandomizedClusterDesign.from_graph(graph, "1hop-max", 30, seed=8)
    rng = np.random.default_rng(9)
    degree = graph.degrees().astype(float)
    y0 = degree / degree.mean() * (1 + 0.5 * rng.standard_normal(graph.n_nodes))
    y1 = y0 + 1.0
    truth = float(np.mean(y1 - y0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probs = probabilities(graph, "threshold", threshold_q=1.0, design=design)
    variance = exact_ht_variance(graph, design, y1, y0)
    n_sims = 1_000
    draws = design.draw(n_sims, seed=rng)
    ht, covered = [], []
    for r in range(n_sims):
        arms = pd.DataFrame({"unit_id": graph.nodes, "arm": draws[:, r].astype(np.int64)})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exposed = exposure(graph, arms, "threshold", threshold_q=1.0)
            cond = exposed.set_index("unit_id")["condition"].reindex(graph.nodes).to_numpy()
            frame = pd.DataFrame({"unit_id": graph.nodes, "y": np.where(cond == "treated", y1, y0)})
            effect = estimate(frame, exposed, "ht", probabilities=probs).effects[0]
        ht.append(effect.estimate)
        covered.append(effect.ci_low <= truth <= effect.ci_high)
    ht = np.asarray(ht)
    assert abs(ht.mean() - truth) < 4 * np.sqrt(variance / n_sims)
    assert 0.9 < ht.std(ddof=1) / np.sqrt(variance) < 1.1
    assert np.mean(covered) >= 0.93
