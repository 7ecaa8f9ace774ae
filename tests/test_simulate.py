"""The design study's findings, reproduced on a synthetic collaboration network of 50,000
users with heavy-tailed component sizes, at 1,000 simulated experiments per design."""

from __future__ import annotations

import numpy as np
import pytest

from spillover import synth
from spillover.simulate import (
    OutcomeModel,
    Study,
    choose_design,
    cluster_robust_difference,
    compare_designs,
    gamma_sweep,
    marketplace_outcomes,
    social_outcomes,
)
from spillover.variance import ols

N_SIMS = 1_000
# coverage of 1,000 experiments has a Monte Carlo sd of sqrt(.95 * .05 / 1000) = 0.0069:
# "about 95%" means within 3 of them
COVERAGE_BAND = (0.95 - 3 * 0.0069, 0.95 + 3 * 0.0069)


@pytest.fixture(scope="module")
def study():
    network = synth.collaboration_network(50_000, seed=0)
    sizes = np.bincount(Study.from_network(network).component)
    assert sizes.max() >= 100 * np.median(sizes), "heavy-tailed component sizes"
    return Study.from_network(network)


@pytest.fixture(scope="module")
def aa(study):
    return compare_designs(study, ("project", "component", "stratified-component"), OutcomeModel(tau=0.0),
                           n_sims=N_SIMS, seed=11)


@pytest.fixture(scope="module")
def with_effect(study):
    return compare_designs(study, ("project", "component", "stratified-component"),
                           OutcomeModel(tau=1 / 8, gamma=2**-4), n_sims=N_SIMS, seed=12)


def mc_se(result) -> float:
    return result.estimates.std(ddof=1) / np.sqrt(result.estimates.size)


@pytest.mark.slow
def test_aa_every_design_covers_zero_about_95_percent(aa):
    assert aa.true_effect == 0.0
    for row in aa.to_frame().itertuples():
        assert COVERAGE_BAND[0] <= row.coverage <= COVERAGE_BAND[1], (row.design, row.coverage)


@pytest.mark.slow
def test_aa_ci_width_orders_project_stratified_component(aa):
    width = aa.to_frame().set_index("design")["ci_width"]
    assert width["project"] < width["stratified-component"] < width["component"]


@pytest.mark.slow
def test_project_design_is_biased_toward_zero_and_component_designs_are_not(with_effect, study):
    truth = with_effect.true_effect
    assert truth == pytest.approx(0.125 * (1 + study.mean_degree() / 16))
    project = with_effect["project"]
    bias = project.estimates.mean() - truth
    assert bias < -4 * mc_se(project), "toward zero, beyond 4 Monte Carlo standard errors"
    for design in ("component", "stratified-component"):
        result = with_effect[design]
        assert abs(result.estimates.mean() - truth) < 3 * mc_se(result), design


@pytest.mark.slow
def test_project_bias_shrinks_with_m_and_is_detectable_up_to_m_6(study):
    sweep = gamma_sweep(study, ("project",), ms=range(1, 9), n_sims=N_SIMS, seed=5)
    bias = sweep.set_index("m")["bias"]
    se = sweep.set_index("m")["sd"] / np.sqrt(N_SIMS)  # Monte Carlo standard error of each bias
    size, step_se = np.abs(bias.to_numpy()), np.hypot(se.to_numpy()[1:], se.to_numpy()[:-1])
    # a trend, not a strict decrease: halving gamma never raises |bias| by more than 3 Monte
    # Carlo standard errors of the step, and m = 1 to 8 lowers it by more than 6 of them
    assert (np.diff(size) < 3 * step_se).all(), bias.to_dict()
    assert size[0] - size[-1] > 6 * np.hypot(se.iloc[0], se.iloc[-1]), bias.to_dict()
    # the 95% Monte Carlo interval of the mean estimate (bias +- 1.96 se) excludes the true
    # effect for m <= 6
    half = 1.96 * se
    assert ((bias + half) < 0).loc[1:6].all(), (bias + half).to_dict()


def test_vectorised_cr1_matches_the_regression_per_experiment():
    rng = np.random.default_rng(3)
    clusters = np.repeat(np.arange(60), rng.integers(1, 30, 60))
    strata = (np.arange(60) % 3)[clusters]
    z = rng.integers(0, 2, (60, 4))[clusters].astype(float)
    y = rng.normal(size=(clusters.size, 4)) + 0.5 * z
    beta, se, *_ = cluster_robust_difference(y, z, clusters, strata, variance="CR1")
    for s in range(4):
        X = np.column_stack([np.ones(clusters.size), z[:, s], strata == 1, strata == 2]).astype(float)
        fit = ols(y[:, s], X, clusters, "CR1")
        assert beta[s] == pytest.approx(fit.beta[1], abs=1e-10)
        assert se[s] == pytest.approx(np.sqrt(fit.cov[1, 1]), abs=1e-10)


def test_cr2_equals_the_bell_mccaffrey_formula_on_a_small_case():
    rng = np.random.default_rng(4)
    clusters = np.repeat(np.arange(8), [1, 2, 3, 5, 8, 2, 4, 6])
    z = np.array([1, 0, 1, 0, 1, 0, 1, 0], dtype=float)[clusters][:, None]
    y = rng.normal(size=(clusters.size, 1))
    beta, se, *_ = cluster_robust_difference(y, z, clusters, variance="CR2")
    X = np.column_stack([np.ones(clusters.size), z[:, 0]])
    bread = np.linalg.inv(X.T @ X)
    resid = y[:, 0] - X @ (bread @ X.T @ y[:, 0])
    meat = np.zeros((2, 2))
    for g in range(8):  # the textbook definition, cluster by cluster
        rows = clusters == g
        H = X[rows] @ bread @ X[rows].T
        vals, vecs = np.linalg.eigh(np.eye(rows.sum()) - H)
        adjust = vecs @ np.diag(vals ** -0.5) @ vecs.T
        score = X[rows].T @ adjust @ resid[rows]
        meat += np.outer(score, score)
    assert se[0] == pytest.approx(np.sqrt((bread @ meat @ bread)[1, 1]), rel=1e-10)


def test_choose_design_prefers_small_clusters_when_spillover_is_modest():
    graph = synth.social_graph(8_000, mean_degree=10, mixing=0.2, seed=1)
    modest = choose_design(graph, effect=0.1, gamma=0.1, n_sims=200, seed=1, s_community=0.5)
    best = modest.loc[modest["best"]].iloc[0]
    assert best["n_clusters"] >= modest["n_clusters"].median()
    assert {"bias", "sd", "rmse", "mde_80", "coverage"} <= set(modest.columns)
    strong = choose_design(graph, effect=0.1, gamma=4.0, n_sims=200, seed=1, s_community=0.5)
    individual = strong.set_index("design").loc["individual"]
    assert individual["coverage"] < 0.5, "individual randomization misses strong spillover"


def test_other_outcome_models_have_the_stated_global_effect():
    graph = synth.social_graph(2_000, seed=2)
    everyone = social_outcomes(graph, np.ones(graph.n_nodes), tau=0.2, gamma=0.5, s_community=0.0, s_e=0.0)
    nobody = social_outcomes(graph, np.zeros(graph.n_nodes), tau=0.2, gamma=0.5, s_community=0.0, s_e=0.0)
    connected = np.diff(graph.adjacency.indptr) > 0
    np.testing.assert_allclose((everyone - nobody)[connected], 0.2 * 1.5)
    market = synth.marketplace(1_000, 100, seed=2)
    gap = marketplace_outcomes(market, np.ones(100), tau=0.3, s_buyer=0.0) - \
        marketplace_outcomes(market, np.zeros(100), tau=0.3, s_buyer=0.0)
    np.testing.assert_allclose(gap, 0.3)


@pytest.mark.parametrize("design", ["component", "stratified-component"])
@pytest.mark.parametrize("vcov", ["CR1", "CR2"])
def test_simulated_coverage_is_that_of_estimate_with_the_same_vcov(design, vcov):
    # the design study and `estimate --method ols-cluster --vcov` analyse the same data
    # identically: every interval equal, hence the same coverage
    import pandas as pd
    from spillover.estimate import estimate
    from spillover.simulate import simulate_design, simulate_experiments

    study = Study.from_network(synth.collaboration_network(3_000, seed=4))
    model = OutcomeModel(tau=0.1, gamma=0.05)
    result = simulate_design(study, design, model, n_sims=6, seed=9, chunk=3, vcov=vcov)
    lows, highs = [], []
    for data in simulate_experiments(study, design, model, n_sims=6, seed=9, chunk=3):
        units = np.arange(study.n_users)
        covariates = []
        frame = pd.DataFrame({"unit_id": units})
        if data.strata is not None:  # stratum fixed effects as dummy covariates
            for s in np.unique(data.strata)[1:]:
                frame[f"stratum_{s}"] = (data.strata == s).astype(float)
                covariates.append(f"stratum_{s}")
        clusters = pd.Series(data.clusters, index=units)
        for j in range(data.z.shape[1]):
            exposure_table = pd.DataFrame({"unit_id": units, "condition": pd.Categorical(
                np.where(data.z[:, j] == 1, "treated", "control"), ["treated", "control"])})
            outcomes = frame.assign(y=data.y[:, j])
            effect = estimate(outcomes, exposure_table, "ols-cluster", clusters=clusters, covariates=covariates,
                              vcov=vcov)["treated"]
            lows.append(effect.ci_low)
            highs.append(effect.ci_high)
    np.testing.assert_allclose(result.ci_low, lows, rtol=1e-9)
    np.testing.assert_allclose(result.ci_high, highs, rtol=1e-9)


@pytest.mark.parametrize("design", ["project", "stratified-component"])
def test_design_study_from_cluster_sums_equals_the_analysis_of_the_users_data(design):
    # simulate_design builds each cluster's outcome sum from the random effects (unit
    # noise too, s_e > 0); the same seed's users' data analysed unit by unit agree
    from spillover.simulate import simulate_design, simulate_experiments

    study = Study.from_network(synth.collaboration_network(3_000, seed=4))
    model = OutcomeModel(tau=0.2, gamma=0.1, s_e=0.7)
    result = simulate_design(study, design, model, n_sims=9, seed=3, chunk=4)
    pieces = [cluster_robust_difference(data.y, data.z, data.clusters, data.strata)
              for data in simulate_experiments(study, design, model, n_sims=9, seed=3, chunk=4)]
    np.testing.assert_allclose(result.estimates, np.concatenate([p[0] for p in pieces]), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(result.ses, np.concatenate([p[1] for p in pieces]), rtol=1e-9)
    np.testing.assert_allclose(result.ci_low, np.concatenate([p[2] for p in pieces]), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("design", ["project", "stratified-component"])
def test_a_sampled_design_analyses_its_enrolled_clusters_alone(design):
    """Issue 25, point 5 (``simulate --sample-fraction``): each experiment enrolls 30% of
    the clusters (within strata for the stratified design), the rest untreated; the
    study's analysis from cluster sums equals the users' data of the same experiments
    analysed unit by unit on the enrolled users alone."""
    from spillover.simulate import simulate_design, simulate_experiments

    study = Study.from_network(synth.collaboration_network(3_000, seed=4))
    model = OutcomeModel(tau=0.2, gamma=0.1, s_e=0.7)
    result = simulate_design(study, design, model, n_sims=5, seed=3, chunk=2, sample_fraction=0.3)
    expected, enrolled = [], set()
    for data in simulate_experiments(study, design, model, n_sims=5, seed=3, chunk=2, sample_fraction=0.3):
        for j in range(data.z.shape[1]):
            keep = data.in_sample[:, j]
            assert not data.z[~keep, j].any()  # clusters left out stay untreated
            enrolled.add(len(np.unique(data.clusters[keep])))
            strata = None if data.strata is None else data.strata[keep]
            piece = cluster_robust_difference(data.y[keep, j:j + 1], data.z[keep, j:j + 1], data.clusters[keep],
                                              strata)
            expected.append([float(np.ravel(p)[0]) for p in piece[:3]])
    expected = np.array(expected)
    n_clusters = len(np.unique(study.units(design)))
    assert enrolled == {result.n_clusters} and abs(result.n_clusters - 0.3 * n_clusters) <= 8  # rounding per stratum
    np.testing.assert_allclose(result.estimates, expected[:, 0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(result.ses, expected[:, 1], rtol=1e-9)
    np.testing.assert_allclose(result.ci_low, expected[:, 2], rtol=1e-9, atol=1e-12)


def test_a_sample_fraction_outside_zero_to_one_is_refused():
    from spillover.errors import InputError
    from spillover.simulate import simulate_design

    study = Study.from_network(synth.collaboration_network(1_000, seed=4))
    with pytest.raises(InputError, match="sample_fraction"):
        simulate_design(study, "component", n_sims=3, sample_fraction=1.5)


def test_a_design_whose_intervals_under_cover_is_flagged_and_never_recommended():
    """Issue 25, point 5: coverage below 0.93 flags a design, even when Monte Carlo error
    alone (few experiments) would have let it pass, and the recommendation skips it."""
    from spillover.simulate.designs import Comparison, DesignResult
    from spillover.simulate.ranking import COVERAGE_FLOOR

    rng = np.random.default_rng(0)
    n = 60
    estimates = rng.normal(0.0, 0.1, n)

    def result(name: str, half_width: float) -> DesignResult:
        return DesignResult(name, 0.0, estimates, np.full(n, half_width / 2), estimates - half_width,
                            estimates + half_width, 100)

    narrow, wide = result("narrow", 0.12), result("wide", 0.3)  # narrow covers about 0.77, wide about 1.0
    comparison = Comparison(0.0, OutcomeModel(), (narrow, wide))
    table = comparison.to_frame().set_index("design")
    assert table.loc["narrow", "coverage"] < COVERAGE_FLOOR <= table.loc["wide", "coverage"]
    assert table.loc["narrow", "intervals"] == "UNDER-COVERS" and table.loc["wide", "intervals"] == "ok"
    assert comparison.recommend()["design"].iloc[0] == "wide"


def test_the_usage_effect_reaches_the_simulated_outcomes():
    """--usage-effect 0 removes usage from the outcomes: the spread of the estimates then
    shrinks for the unstratified component design (usage is a component-level effect)."""
    from spillover.simulate.designs import simulate_design

    study = Study.from_network(synth.collaboration_network(3_000, seed=1))
    sd = {u: simulate_design(study, "component", OutcomeModel(usage_effect=u), n_sims=200, seed=3).estimates.std()
          for u in (0.0, 3.0)}
    assert sd[3.0] > 1.2 * sd[0.0], sd


def test_simulate_sample_fraction_from_the_command_line(capsys):
    """``simulate --sample-fraction 0.5`` enrolls half of each design's clusters: the JSON
    reports the enrolled count per design."""
    import json

    from spillover.cli import main

    args = ["simulate", "--users", "2000", "--n-sims", "20", "--designs", "component", "--json"]
    assert main(args) == 0
    full = json.loads(capsys.readouterr().out)["designs"][0]["n_clusters"]
    assert main(args + ["--sample-fraction", "0.5"]) == 0
    half = json.loads(capsys.readouterr().out)["designs"][0]["n_clusters"]
    assert half == round(0.5 * full)


def test_one_rule_ranks_every_study_and_skips_rows_without_honest_intervals():
    """Issue 25, point 5: the estimators' study is ranked by the designs' rule. A row
    that printed no interval in some experiments, or covered below 0.93, or is biased
    beyond Monte Carlo error, is never recommended, however narrow its intervals."""
    import pandas as pd

    from spillover.simulate.ranking import interval_verdicts, recommend

    table = pd.DataFrame({
        "estimator": ["narrow, some none", "narrow, under", "biased", "honest", "wide"],
        "bias": [0.0, 0.0, 0.05, 0.001, 0.0], "sd": [0.1] * 5, "rmse": [0.1] * 5,
        "coverage": [0.95, 0.90, 0.95, 0.95, 0.99], "ci_width": [0.1, 0.1, 0.1, 0.3, 0.5],
        "no_interval": [0.1, 0.0, 0.0, 0.0, 0.0], "n_sims": [400] * 5})
    assert interval_verdicts(table).tolist() == ["ok", "UNDER-COVERS", "ok", "ok", "ok"]
    assert recommend(table, ["estimator"], what="estimator")["estimator"].iloc[0] == "honest"
    none = table.assign(coverage=np.nan)
    assert set(interval_verdicts(none)) == {"no interval"}
    assert "cannot be trusted" in recommend(none, ["estimator"])["reason"].iloc[0]


def test_the_estimators_study_flags_rows_and_counts_missing_intervals():
    from spillover.simulate import compare_estimators

    table = compare_estimators(synth.social_graph(400, seed=1), n_sims=6, n_clusterings=3, seed=2)
    assert {"intervals", "no_interval", "power"} <= set(table.columns)
    assert table["no_interval"].between(0, 1).all()
    assert set(table["intervals"]) <= {"ok", "UNDER-COVERS", "no interval"}
    assert any(name.startswith("rgcr") for name in table["design"])  # RGCR and the rollout among the designs
    assert "rollout" in set(table["design"])
