"""Health checks: the sample-ratio test holds its size and flags a 2% imbalance, the
estimate reports units lost by arm, covariate balance and contamination."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from spillover import SampleRatioWarning, SocialGraph, synth
from spillover.design import ClusterDesign
from spillover.estimate import estimate
from spillover.health import contamination, covariate_balance, sample_ratio_mismatch


def test_srm_holds_its_size_over_a_thousand_correct_assignments():
    """1,000 Bernoulli(0.5) assignments of 10,000 units: the test rejects at 0.001, so
    more than 5 rejections (expected 1; P(>5) < 0.001 under Poisson(1)) would mean it is
    too eager. Rejections at 0.05 stay within 2 Monte Carlo errors of 5%."""
    rng = np.random.default_rng(0)
    treated = rng.binomial(10_000, 0.5, size=1_000)
    p = np.array([sample_ratio_mismatch({0: 10_000 - t, 1: t}, {0: 0.5, 1: 0.5}).p_value for t in treated])
    assert np.sum(p < 0.001) <= 5
    assert abs(np.mean(p < 0.05) - 0.05) < 2 * np.sqrt(0.05 * 0.95 / 1_000)


def test_srm_flags_a_two_percent_imbalance_of_100k_units():
    check = sample_ratio_mismatch({0: 49_000, 1: 51_000}, {0: 0.5, 1: 0.5})
    assert check.flagged and check.p_value < 1e-8 and "find where units are lost" in check.detail


def test_estimate_flags_outcomes_lost_in_one_arm():
    rng = np.random.default_rng(1)
    n = 20_000
    arms = rng.integers(0, 2, n)
    exposure = pd.DataFrame({"unit_id": range(n), "arm": arms,
                             "condition": np.where(arms == 1, "treated", "control")})
    keep = (arms == 0) | (rng.random(n) > 0.05)  # 5% of treated outcomes never logged
    outcomes = pd.DataFrame({"unit_id": np.arange(n)[keep], "y": rng.normal(size=int(keep.sum()))})
    with pytest.warns(SampleRatioWarning, match="analysed units per arm do not follow the design"):
        effects = estimate(outcomes, exposure, "difference-in-means")
    lost = {check.name: check for check in effects.health}["sample ratio (analysed units)"]
    assert lost.flagged and any(note.startswith("health:") for note in effects.notes)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SampleRatioWarning)  # nothing lost: no warning
        clean = estimate(pd.DataFrame({"unit_id": range(n), "y": rng.normal(size=n)}), exposure,
                         "difference-in-means")
    assert not any(check.flagged for check in clean.health)


def test_covariate_balance_flags_an_imbalanced_covariate_with_cluster_robust_errors():
    rng = np.random.default_rng(2)
    clusters = np.repeat(np.arange(200), 10)
    arm = (np.arange(200) % 2)[clusters]
    frame = pd.DataFrame({"arm": arm, "cluster": clusters,
                          "balanced": rng.normal(size=200)[clusters] + rng.normal(size=2_000),
                          "shifted": rng.normal(size=2_000) + 0.5 * arm})
    table = covariate_balance(frame, ["balanced", "shifted"], cluster_col="cluster").set_index("covariate")
    assert not table.loc["balanced", "flagged"] and table.loc["shifted", "flagged"]
    assert table.loc["shifted", "smd"] == pytest.approx(0.5, abs=0.1)


def test_contamination_is_zero_for_whole_components_and_about_half_for_individuals():
    graph = synth.social_graph(5_000, seed=3)
    from spillover import cluster

    components = cluster(graph, "components")
    whole = ClusterDesign.from_clustering(components).assign(seed=1).arms
    assert contamination(graph, whole) == 0.0
    individual = np.random.default_rng(4).integers(0, 2, graph.n_nodes)
    assert contamination(graph, individual) == pytest.approx(0.5, abs=0.02)
    assert contamination(SocialGraph.from_edges(pd.DataFrame({"source": [0], "target": [1]})), np.array([0, 0])) == 0
