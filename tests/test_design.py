"""Designs: exact counts where the design says so, empirical probabilities within Monte
Carlo error, reproducibility across processes, and stable hash assignment."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from spillover import DesignError, InputError, synth
from spillover.design import (
    OUT,
    BipartiteDesign,
    ClusterDesign,
    IndividualDesign,
    SaturationDesign,
    StratifiedClusterDesign,
    exact_counts,
    HashSpec,
    hash_uniform,
    holdout_design,
)

R = 4_000  # draws for empirical probabilities: a frequency's sd is at most 0.5/sqrt(R) = 0.0079


def within_mc(freq: np.ndarray, p: np.ndarray, n_draws: int, z: float = 5.0) -> bool:
    """Every empirical frequency within z binomial standard errors of its probability
    (z = 5: a false alarm among a few hundred units has probability < 1e-3)."""
    se = np.sqrt(p * (1 - p) / n_draws)
    return bool(np.all(np.abs(freq - p) <= z * np.maximum(se, 1e-12)))


def clustered_units(n_clusters=60, seed=0):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 30, n_clusters)
    clusters = np.repeat(np.arange(n_clusters), sizes)
    return clusters, pd.Index([f"u{i}" for i in range(clusters.size)])


def test_complete_individual_randomization_has_exact_counts_and_equal_probabilities():
    design = IndividualDesign(pd.RangeIndex(301), treat_fraction=0.3)
    draws = design.draw(R, seed=1)
    assert draws.shape == (301, R)
    assert (draws.sum(axis=0) == round(301 * 0.3)).all()
    assert within_mc(draws.mean(axis=1), np.full(301, 90 / 301), R)


def test_bernoulli_individual_design_matches_p():
    design = IndividualDesign(pd.RangeIndex(200), treat_fraction=0.2, complete=False)
    draws = design.draw(R, seed=2)
    assert within_mc(draws.mean(axis=1), np.full(200, 0.2), R)
    assert len(set(draws.sum(axis=0))) > 5  # counts vary: not complete randomization


def test_multi_arm_weights_give_exact_counts():
    design = IndividualDesign(pd.RangeIndex(100), arm_weights=[1, 1, 2])
    draws = design.draw(50, seed=3)
    for arm, count in enumerate([25, 25, 50]):
        assert ((draws == arm).sum(axis=0) == count).all()


def test_cluster_design_randomizes_whole_clusters():
    clusters, units = clustered_units()
    design = ClusterDesign(clusters, units, treat_fraction=0.5)
    cluster_draws = design.draw_clusters(R, seed=4)
    assert (cluster_draws.sum(axis=0) == 30).all()
    draws = design.draw(R, seed=4)
    np.testing.assert_array_equal(draws, cluster_draws[clusters])
    assert within_mc(cluster_draws.mean(axis=1), np.full(60, 0.5), R)
    assignment = design.assign(seed=5)
    frame = assignment.to_frame()
    assert list(frame.columns) == ["unit_id", "cluster_id", "arm"]
    assert frame.groupby("cluster_id")["arm"].nunique().max() == 1


def test_holdout_holds_out_whole_clusters():
    clusters, units = clustered_units(n_clusters=100)
    assignment = holdout_design(clusters, units, holdout_fraction=0.05).assign(seed=1)
    held = pd.Series(assignment.arms).groupby(clusters).first()
    assert (held == 0).sum() == 5 and (held == 1).sum() == 95


def test_stratified_cluster_design_samples_exact_fractions_per_stratum():
    network = synth.collaboration_network(6_000, seed=2)
    from spillover import cluster

    labels = cluster(network, "components").labels
    usage = network.user_data["usage"].to_numpy()
    design = StratifiedClusterDesign.from_units(
        labels, network.users, {"size": None, "usage": usage}, n_bins=3, sample_fraction=0.2
    )
    cluster_draws = design.draw_clusters(400, seed=6)
    for stratum in np.unique(design.strata):  # exact per stratum, in every draw
        members = design.strata == stratum
        sampled = round(0.2 * members.sum())
        in_exp = (cluster_draws[members] != OUT).sum(axis=0)
        assert (in_exp == sampled).all()
        treated = (cluster_draws[members] == 1).sum(axis=0)
        assert set(np.unique(treated)) <= {sampled // 2, (sampled + 1) // 2}
    probs = design.probabilities()
    freq = (design.draw(R, seed=7) == 1).mean(axis=1)
    assert within_mc(freq, probs[:, 1], R)
    assignment = design.assign(seed=8)
    assert (assignment.to_frame()["arm"] != OUT).all()  # units not sampled are left out


def test_stratified_errors_name_the_problem():
    clusters, units = clustered_units(n_clusters=12)
    with pytest.raises(DesignError, match=r"sample_fraction=1.5 must be in \(0, 1\]"):
        StratifiedClusterDesign.from_units(clusters, units, sample_fraction=1.5)
    with pytest.raises(DesignError, match=r"stratum \d+ has \d+ cluster\(s\).*too few to split"):
        StratifiedClusterDesign.from_units(clusters, units, n_bins=4, sample_fraction=0.1)


def test_saturation_design_treats_the_drawn_share_of_each_cluster():
    clusters, units = clustered_units(n_clusters=30)
    design = SaturationDesign(clusters, units, saturations=(0.0, 0.25, 0.75))
    assignment = design.assign(seed=9)
    share = assignment.params["cluster_saturation"]
    sizes = np.bincount(clusters)
    treated = np.bincount(clusters, weights=assignment.arms)
    np.testing.assert_array_equal(treated, np.rint(share * sizes))
    assert sorted(np.unique(share, return_counts=True)[1]) == [10, 10, 10]
    # each unit's chance of treatment is the mean saturation... averaged over cluster levels
    freq = design.draw(R, seed=10).mean(axis=1)
    expected = np.mean([np.rint(s * sizes[clusters]) / sizes[clusters] for s in (0.0, 0.25, 0.75)], axis=0)
    assert within_mc(freq, expected, R)


def test_bipartite_design_randomizes_the_treated_side():
    graph = synth.marketplace(500, 80, seed=0)
    design = BipartiteDesign(graph, treat_fraction=0.25)
    draws = design.draw(10, seed=0)
    assert draws.shape == (80, 10) and (draws.sum(axis=0) == 20).all()
    assert list(design.assign(seed=0).units) == list(graph.treated)


def test_single_cluster_and_duplicate_units_are_errors():
    with pytest.raises(DesignError, match="at least two"):
        ClusterDesign(np.zeros(5), pd.RangeIndex(5))
    with pytest.raises(InputError, match="appears more than once"):
        IndividualDesign(pd.Index([1, 2, 2]))
    with pytest.raises(DesignError, match="strictly between 0 and 1"):
        IndividualDesign(pd.RangeIndex(5), treat_fraction=1.0).draw(1)


def test_unknown_unit_ids_are_an_error():
    assignment = IndividualDesign(pd.Index(["a", "b"])).assign(seed=0)
    with pytest.raises(InputError, match=r"unknown unit id.*'zz'"):
        assignment.arm_of(["a", "zz"])


def test_exact_counts_sum_to_n():
    assert exact_counts(10, np.array([0.5, 0.5])).tolist() == [5, 5]
    assert exact_counts(7, np.array([0.2, 0.3, 0.5])).tolist() == [1, 2, 4]
    assert exact_counts(301, np.array([0.7, 0.3])).tolist() == [211, 90]


SCRIPT = """
import numpy as np, pandas as pd, sys
from spillover.design import ClusterDesign
clusters = np.repeat(np.arange(50), 3)
d = ClusterDesign(clusters, pd.Index([f"u{i}" for i in range(150)]))
sys.stdout.write("".join(map(str, d.assign(seed=123).arms)) + "|" + "".join(map(str, d.assign(salt="exp-7").arms)))
"""


def test_same_seed_and_salt_give_the_same_assignment_in_a_new_process():
    runs = {subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stdout
            for _ in range(2)}
    assert len(runs) == 1
    seeded, salted = runs.pop().split("|")
    clusters = np.repeat(np.arange(50), 3)
    here = ClusterDesign(clusters, pd.Index([f"u{i}" for i in range(150)]))
    assert seeded == "".join(map(str, here.assign(seed=123).arms))
    assert salted == "".join(map(str, here.assign(salt="exp-7").arms))


def test_hash_is_md5_of_salt_and_key():
    keys = [0, 17, 123456789]
    expected = [int(hashlib.md5(f"s1:{k}".encode()).hexdigest()[:15], 16) for k in keys]
    assert hash_uniform(keys, "s1").tolist() == expected
    texts = ["alice", "bob", "zoë"]
    expected = [int(hashlib.md5(f"s1:{k}".encode()).hexdigest()[:15], 16) for k in texts]
    assert hash_uniform(texts, "s1").tolist() == expected


def test_hash_assignment_is_stable_when_unrelated_units_are_added():
    before = pd.Index([f"user-{i}" for i in range(5_000)])
    after = before.append(pd.Index([f"new-{i}" for i in range(3_000)])).delete(np.arange(0, 5_000, 7))
    a = pd.Series(HashSpec.of([0.5, 0.5]).assign(before, "exp"), index=before)
    b = pd.Series(HashSpec.of([0.5, 0.5]).assign(after, "exp"), index=after)
    common = before.intersection(after)
    assert (a[common] == b[common]).all()
    assert (a != pd.Series(HashSpec.of([0.5, 0.5]).assign(before, "other"), index=before)).any()  # the salt matters


def test_hash_arm_shares_match_weights():
    keys = pd.RangeIndex(100_000)
    arms = HashSpec.of([0.9, 0.05, 0.05], [OUT, 0, 1]).assign(keys, "w")
    for arm, p in [(OUT, 0.9), (0, 0.05), (1, 0.05)]:
        share = np.mean(arms == arm)
        assert abs(share - p) < 5 * np.sqrt(p * (1 - p) / keys.size)
