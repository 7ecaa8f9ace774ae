"""Staggered rollout and the polynomial-interpolation estimator of the total effect:
exact unbiasedness by full enumeration of the design on a small graph, bias where the
outcome's degree exceeds the estimator's, and coverage by simulation."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from spillover import synth
from spillover.design import RolloutDesign
from spillover.errors import DesignError, InputError
from spillover.estimate import lagrange_weights, polynomial_interpolation


def _graph(n: int, seed: int) -> sp.csr_array:
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((n, n)) < 0.3, 1)
    return sp.csr_array((upper | upper.T).astype(np.int32))


def _outcome(adjacency: sp.csr_array, z: np.ndarray, coef: dict[str, np.ndarray]) -> np.ndarray:
    """A degree-2 polynomial in the treatment vector: own, treated neighbours, their square
    and own x treated neighbours, with unit-specific coefficients (heterogeneous effects)."""
    k = adjacency @ z
    return coef["a"] + coef["b"] * z + coef["c"] * k + coef["d"] * k**2 + coef["e"] * z * k


def _enumerate(n: int, design: RolloutDesign, adjacency, coef, degree: int):
    """E[estimate] over every stage-of-entry vector, weighted by its probability; the truth."""
    probs = design.stage_probabilities()
    coefficients = lagrange_weights(np.concatenate([[0.0], design.fractions[:degree]]), 1.0)
    coefficients[0] -= 1.0
    stages = np.array(list(itertools.product(range(design.n_stages + 1), repeat=n)), dtype=np.int8)  # (S, n)
    weight = np.prod(probs[stages], axis=1)
    estimate = np.zeros(len(stages))
    for t in range(degree + 1):  # the estimator, vectorised over every assignment
        z = ((stages >= 1) & (stages <= t)).astype(float)                   # (S, n)
        k = (adjacency @ z.T).T
        y = coef["a"] + coef["b"] * z + coef["c"] * k + coef["d"] * k**2 + coef["e"] * z * k
        estimate += coefficients[t] * y.mean(axis=1)
    ones, zeros = np.ones(n), np.zeros(n)
    truth = float(np.mean(_outcome(adjacency, ones, coef) - _outcome(adjacency, zeros, coef)))
    return float(weight @ estimate), truth, float(weight.sum())


@pytest.mark.parametrize("n, fractions, degree, kind", [
    (11, (0.1, 0.3), 2, "quadratic"),    # 3^11 = 177,147 assignments
    pytest.param(10, (0.2, 0.25, 0.5), 3, "quadratic", marks=pytest.mark.slow),  # a higher degree is unbiased too
    (12, (0.15,), 1, "linear"),          # 2^12 = 4,096
])
def test_the_estimator_is_exactly_unbiased_by_full_enumeration(n, fractions, degree, kind):
    rng = np.random.default_rng(n)
    adjacency = _graph(n, n)
    coef = {key: rng.normal(size=n) for key in "abcde"}
    if kind == "linear":
        coef["d"] = coef["e"] = np.zeros(n)
    design = RolloutDesign(pd.RangeIndex(n), fractions)
    expected, truth, total = _enumerate(n, design, adjacency, coef, degree)
    assert total == pytest.approx(1.0, abs=1e-12)
    assert expected == pytest.approx(truth, abs=1e-12)


def test_a_degree_below_the_outcomes_is_biased_so_the_check_can_fail():
    n = 10
    rng = np.random.default_rng(1)
    adjacency = _graph(n, 3)
    coef = {key: rng.normal(size=n) for key in "abcde"}
    design = RolloutDesign(pd.RangeIndex(n), (0.1, 0.3))
    expected, truth, _ = _enumerate(n, design, adjacency, coef, degree=1)
    assert abs(expected - truth) > 1e-2


def test_the_library_estimator_equals_the_enumerated_formula_on_one_assignment():
    graph = synth.social_graph(300, seed=4)
    design = RolloutDesign(graph.nodes, (0.1, 0.2, 0.4))
    stages = design.stages(seed=5)
    rows, ys = [], []
    for t in range(4):
        z = design.treated_at(stages, t)
        y = 2 + z + 0.3 * (graph.adjacency @ z) - 0.05 * (graph.adjacency @ z) ** 2
        rows.append(pd.DataFrame({"unit_id": graph.nodes, "stage": t, "y": y}))
        ys.append(y.mean())
    effect = polynomial_interpolation(pd.concat(rows, ignore_index=True), design, degree=2, graph=graph)
    weights = lagrange_weights([0.0, 0.1, 0.2], 1.0)
    assert effect.estimate == pytest.approx(weights @ ys[:3] - ys[0], rel=1e-12)
    assert effect.se > 0 and effect.ci_low < effect.estimate < effect.ci_high


def test_stages_are_nested_bernoulli_and_stable_by_hash():
    units = pd.RangeIndex(200_000)
    design = RolloutDesign(units, (0.05, 0.2, 0.5))
    stages = design.stages(seed=1)
    shares = [design.treated_at(stages, t).mean() for t in range(1, 4)]
    np.testing.assert_allclose(shares, [0.05, 0.2, 0.5], atol=4 * np.sqrt(0.25 / units.size))
    again = RolloutDesign(units[:1000], (0.05, 0.2, 0.5)).stages(salt="launch")
    np.testing.assert_array_equal(design.stages(salt="launch")[:1000], again)  # other units do not move a unit


@pytest.mark.parametrize("fractions, match", [((0.2, 0.1), "increase"), ((0.0, 0.5), "increase"), ((), "increase")])
def test_bad_rollout_fractions_are_one_line_errors(fractions, match):
    with pytest.raises(DesignError, match=match):
        RolloutDesign(pd.RangeIndex(5), fractions)


def test_missing_stage_outcomes_and_bad_degrees_are_refused():
    design = RolloutDesign(pd.RangeIndex(4), (0.5,))
    rows = pd.DataFrame({"unit_id": [0, 1, 2, 3, 0, 1, 2], "stage": [0, 0, 0, 0, 1, 1, 1], "y": 1.0})
    with pytest.raises(InputError, match="unit 3 has no finite 'y' at stage 1"):
        polynomial_interpolation(rows, design)
    with pytest.raises(InputError, match="supports degrees 1..1"):
        polynomial_interpolation(rows, design, degree=2)


@pytest.mark.slow
def test_coverage_and_variance_by_simulation_on_a_100k_node_graph():
    """200 rollouts on a 100,000-node graph, degree-2 outcomes with heterogeneous effects:
    the estimate is unbiased, the network-robust standard error matches the spread of the
    estimates, and the 95% interval covers. Monte Carlo error: coverage sd
    sqrt(0.95 * 0.05 / 200) = 0.015, so 0.90 is three sd below the nominal level."""
    graph = synth.social_graph(100_000, mean_degree=8, seed=7)
    n = graph.n_nodes
    rng = np.random.default_rng(8)
    a, b, c = rng.normal(1, 1, n), rng.normal(0.5, 0.2, n), rng.normal(0.1, 0.05, n)
    degree = np.maximum(graph.degrees(), 1)
    design = RolloutDesign(graph.nodes, (0.1, 0.2))

    def outcome(z: np.ndarray, noise: np.ndarray) -> np.ndarray:
        share = (graph.adjacency @ z) / degree
        return a + b * z + c * (graph.adjacency @ z) + 0.5 * share**2 + noise

    truth = float(np.mean(outcome(np.ones(n), 0) - outcome(np.zeros(n), 0)))
    estimates, ses, covered = [], [], 0
    for _ in range(200):  # a loop over simulated experiments
        stages = design.stages(seed=rng)
        noise = rng.normal(0, 1, n)  # a unit's noise is the same at every stage (a fixed potential outcome)
        rows = [pd.DataFrame({"unit_id": graph.nodes, "stage": t, "y": outcome(design.treated_at(stages, t), noise)})
                for t in range(3)]
        effect = polynomial_interpolation(pd.concat(rows, ignore_index=True), design, degree=2, graph=graph)
        estimates.append(effect.estimate)
        ses.append(effect.se)
        covered += effect.ci_low <= truth <= effect.ci_high
    estimates = np.asarray(estimates)
    sd = estimates.std(ddof=1)
    assert abs(estimates.mean() - truth) < 4 * sd / np.sqrt(len(estimates))
    assert 0.8 < np.mean(ses) / sd < 1.5  # honest (at most mildly conservative) standard errors
    assert covered / 200 >= 0.90


@pytest.mark.parametrize("n, p, degree", [(8, 0.3, 1), pytest.param(9, 0.35, 2, marks=pytest.mark.slow),
                                              pytest.param(8, 0.4, 3, marks=pytest.mark.slow)])
def test_snipe_is_exactly_unbiased_by_full_enumeration(n, p, degree):
    """Every one of the 2^n Bernoulli(p) assignments, weighted by its probability: SNIPE(beta)
    averages to the total effect of outcomes that are polynomials of degree beta in the
    closed neighbourhood's treatments (1e-12)."""
    from spillover import SocialGraph
    from spillover.estimate import snipe

    adjacency = _graph(n, n + 1)
    rows, cols = sp.triu(adjacency, 1).nonzero()
    graph = SocialGraph.from_edges(pd.DataFrame({"source": rows, "target": cols}), nodes=range(n))
    a = graph.adjacency.toarray()
    rng = np.random.default_rng(n)
    coef = {key: rng.normal(size=n) for key in "abcde"}

    def outcome(z):
        k = a @ z
        y = coef["a"] + coef["b"] * z + coef["c"] * k
        if degree >= 2:
            y = y + coef["d"] * z * k + coef["e"] * k**2 / 4
        if degree >= 3:
            y = y + 0.1 * z * k**2
        return y

    truth = float(np.mean(outcome(np.ones(n)) - outcome(np.zeros(n))))
    expected = lower = 0.0
    for bits in itertools.product((0, 1), repeat=n):
        z = np.array(bits)
        probability = p ** z.sum() * (1 - p) ** (n - z.sum())
        frame, arms = pd.DataFrame({"unit_id": graph.nodes, "y": outcome(z.astype(float))}), \
            pd.DataFrame({"unit_id": graph.nodes, "arm": z})
        expected += probability * snipe(frame, graph, arms, p, degree=degree, design_draws=0).estimate
        if degree > 1:  # one order too low: biased (p != 1/2, where even orders cancel), so the check can fail
            lower += probability * snipe(frame, graph, arms, p, degree=degree - 1, design_draws=0).estimate
    assert expected == pytest.approx(truth, abs=1e-12)
    if degree > 1:
        assert abs(lower - truth) > 1e-3


# --------------------------------------------------------------------------- two-stage rollout


def _components_graph(sizes: tuple[int, ...], seed: int, cross: int = 0) -> tuple[sp.csr_array, np.ndarray]:
    """Dense random blocks (one cluster each), plus ``cross`` edges between blocks."""
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    upper = np.triu((rng.random((n, n)) < 0.7) & (labels[:, None] == labels[None, :]), 1)
    for _ in range(cross):
        i, j = rng.choice(n, 2, replace=False)
        if labels[i] != labels[j]:
            upper[min(i, j), max(i, j)] = True
    return sp.csr_array((upper | upper.T).astype(np.int32)), labels


def _enumerate_two_stage(design: RolloutDesign, adjacency, coef, degree: int):
    """E[estimate | some cluster sampled] over every cluster sample and stage vector."""
    n, k = len(design.units), int(design.clusters.max()) + 1
    q = design.cluster_fraction
    coefficients = lagrange_weights(np.concatenate([[0.0], design.fractions[:degree]]), 1.0)
    coefficients[0] -= 1.0
    stages = np.array(list(itertools.product(range(design.n_stages + 1), repeat=n)), dtype=np.int8)
    stage_weight = np.prod(design.stage_probabilities()[stages], axis=1)
    expected, total = 0.0, 0.0
    for picked in itertools.product((0, 1), repeat=k):
        if not any(picked):
            continue  # nothing to estimate from: the estimator refuses
        weight = np.prod([q if b else 1 - q for b in picked])
        sampled = np.asarray(picked, dtype=bool)[design.clusters]
        w = np.zeros(len(stages))
        for t in range(degree + 1):
            z = (((stages >= 1) & (stages <= t)) & sampled).astype(float)
            kk = (adjacency @ z.T).T
            y = coef["a"] + coef["b"] * z + coef["c"] * kk + coef["d"] * kk**2 + coef["e"] * z * kk
            w += coefficients[t] * y[:, sampled].mean(axis=1)
        expected += weight * float(stage_weight @ w)
        total += weight
    truth = float(np.mean(_outcome(adjacency, np.ones(n), coef) - _outcome(adjacency, np.zeros(n), coef)))
    return expected / total, truth


def test_two_stage_rollout_is_exactly_unbiased_when_clusters_cut_no_edge():
    """Three equal clusters of three units, no edge between them, a quadratic outcome: the
    estimate given at least one sampled cluster has mean equal to the truth (1e-12), over
    all 7 cluster samples x 3^9 stage vectors; with edges across clusters it is biased."""
    rng = np.random.default_rng(5)
    adjacency, labels = _components_graph((3, 3, 3), seed=2)
    coef = {key: rng.normal(size=9) for key in "abcde"}
    design = RolloutDesign(pd.RangeIndex(9), (0.3, 0.6), clusters=labels, cluster_fraction=0.4)
    expected, truth = _enumerate_two_stage(design, adjacency, coef, degree=2)
    assert expected == pytest.approx(truth, abs=1e-12)
    crossing, _ = _components_graph((3, 3, 3), seed=2, cross=6)
    expected, truth = _enumerate_two_stage(design, crossing, coef, degree=2)
    assert abs(expected - truth) > 1e-2


def test_two_stage_library_estimate_equals_the_formula_and_refuses_without_stages():
    graph = synth.social_graph(2_000, seed=6)
    clusters = graph.node_data["community"].to_numpy()
    design = RolloutDesign(graph.nodes, (0.2, 0.4), clusters=clusters, cluster_fraction=0.3)
    stages = design.stages(seed=7)
    sampled = stages != -1
    assert 0 < sampled.mean() < 1
    for c in np.unique(clusters):  # whole clusters are in or out
        assert np.unique(sampled[clusters == c]).size == 1
    rows, means = [], []
    for t in range(3):
        z = design.treated_at(stages, t)
        y = 1 + z + 0.5 * (graph.adjacency @ z) / np.maximum(graph.degrees(), 1)
        rows.append(pd.DataFrame({"unit_id": graph.nodes, "stage": t, "y": y}))
        means.append(y[sampled].mean())
    outcomes = pd.concat(rows, ignore_index=True)
    effect = polynomial_interpolation(outcomes, design, graph=graph, stages=stages)
    weights = lagrange_weights([0.0, 0.2, 0.4], 1.0)
    assert effect.estimate == pytest.approx(weights @ means - means[0], rel=1e-12)
    assert "two-stage" in effect.method and effect.n_units == int(sampled.sum())
    with pytest.raises(InputError, match="needs stages"):
        polynomial_interpolation(outcomes, design, graph=graph)
    assert design.assign(seed=7).arms.min() == -1  # units of unsampled clusters are out
    keyed = design.stages(salt="launch-1")
    np.testing.assert_array_equal(keyed, design.stages(salt="launch-1"))
    with pytest.raises(DesignError, match="give the clusters"):
        RolloutDesign(graph.nodes, (0.2,), cluster_fraction=0.5)


def _small_world(n: int = 80, k: int = 4):
    import networkx as nx

    from spillover import SocialGraph

    edges = pd.DataFrame(list(nx.watts_strogatz_graph(n, k, 0.1, seed=1).edges()), columns=["source", "target"])
    return SocialGraph.from_edges(edges)


def _heterogeneous_linear(n: int, seed: int = 0):
    """Outcomes linear in own treatment and the number of treated neighbours, with
    unit-specific direct effects (0.5-1.5) and spillovers per treated neighbour (0-0.5)."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=n) + 1, rng.uniform(0.5, 1.5, n), rng.uniform(0, 0.5, n)


@pytest.mark.slow
@pytest.mark.parametrize("degree", [1, 2])
def test_snipe_covers_on_an_80_node_graph(degree):
    """Issue 25, point 4: SNIPE on a networkx Watts-Strogatz graph of 80 nodes (k = 4),
    Bernoulli(0.3), heterogeneous linear effects. The network-robust variance alone
    covered 0.89 (degree 1) and 0.78 (degree 2) over 600 runs; with the design replayed
    (the default) 0.975 and 0.973. With 400 runs a coverage of 0.95 has MC sd 0.011, so
    0.93 is two sd below it, and no interval may be NaN."""
    from spillover.design import IndividualDesign
    from spillover.estimate import snipe

    graph = _small_world()
    n, p = graph.n_nodes, 0.3
    base, direct, slope = _heterogeneous_linear(n)
    truth = float(np.mean(direct + slope * graph.degrees()))
    design = IndividualDesign(graph.nodes, p, complete=False)
    draws = design.draw(400, seed=3)
    rng = np.random.default_rng(4)
    covered = []
    for r in range(draws.shape[1]):  # a loop over simulated experiments
        z = draws[:, r].astype(float)
        y = base + direct * z + slope * (graph.adjacency @ z) + rng.normal(0, 0.5, n)
        effect = snipe(pd.DataFrame({"unit_id": graph.nodes, "y": y}), graph, pd.Series(draws[:, r], index=graph.nodes),
                       p, degree=degree, seed=r)
        assert np.isfinite(effect.ci_low) and np.isfinite(effect.ci_high)
        covered.append(effect.ci_low <= truth <= effect.ci_high)
    assert np.mean(covered) >= 0.93, np.mean(covered)


@pytest.mark.slow
@pytest.mark.parametrize("fractions", [(0.3,), (0.15, 0.3)])
def test_rollout_interpolation_covers_on_an_80_node_graph(fractions):
    """Issue 25, point 4: the rollout's interpolation on the same 80-node graph. The
    network-robust variance alone covered 0.915 (one stage) and 0.907 (two) over 400
    runs; with the stages given and the design replayed, 0.960 and 0.975. Floor 0.93 as
    above (400 runs, MC sd 0.011)."""
    graph = _small_world()
    n = graph.n_nodes
    base, direct, slope = _heterogeneous_linear(n)
    truth = float(np.mean(direct + slope * graph.degrees()))
    design = RolloutDesign(graph.nodes, fractions)
    rng = np.random.default_rng(5)
    covered = []
    for r in range(400):  # a loop over simulated experiments
        stages = design.stages(seed=1000 + r)
        unit = rng.normal(0, 0.5, n)
        rows = [pd.DataFrame({"unit_id": graph.nodes, "stage": t,
                              "y": base + direct * (z := design.treated_at(stages, t).astype(float))
                              + slope * (graph.adjacency @ z) + unit + rng.normal(0, 0.3, n)})
                for t in range(design.n_stages + 1)]
        effect = polynomial_interpolation(pd.concat(rows), design, graph=graph, stages=stages, seed=r)
        covered.append(effect.ci_low <= truth <= effect.ci_high)
    assert np.mean(covered) >= 0.93, np.mean(covered)


def test_the_replay_only_widens_and_says_so():
    """The replayed error is used only when larger than the network-robust one; the
    method names which was used, and design_draws=0 leaves the network-robust error."""
    from spillover.design import IndividualDesign
    from spillover.estimate import snipe

    graph = _small_world()
    base, direct, slope = _heterogeneous_linear(graph.n_nodes)
    z = IndividualDesign(graph.nodes, 0.3, complete=False).draw(1, seed=9)[:, 0]
    y = base + direct * z + slope * (graph.adjacency @ z.astype(float))
    frame, arms = pd.DataFrame({"unit_id": graph.nodes, "y": y}), pd.Series(z, index=graph.nodes)
    plain = snipe(frame, graph, arms, 0.3, design_draws=0)
    default = snipe(frame, graph, arms, 0.3)
    assert plain.estimate == default.estimate and default.se >= plain.se
    assert "network-robust" in plain.method and "replayed" not in plain.method
    assert ("replayed" in default.method) == (default.se > plain.se)
