"""Regression estimators of the global effect: Chin's regression adjustment (exact, hence
unbiased, under a linear model in the interference features: full enumeration of a
14-node design) and Gao & Ding's weighted least squares (the Hajek estimator when
saturated, to 1e-12; unbiased-ish and tighter with covariates)."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

from spillover import SocialGraph, synth
from spillover.design import IndividualDesign
from spillover.errors import InputError
from spillover.estimate import estimate, regression_adjustment, weighted_least_squares
from spillover.exposure import exposure, probabilities


def _small_graph(n: int = 14, seed: int = 2) -> SocialGraph:
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((n, n)) < 0.3, 1)
    upper[np.arange(n - 1), np.arange(1, n)] = True  # a path through every node: no isolate
    rows, cols = np.nonzero(upper)
    return SocialGraph.from_edges(pd.DataFrame({"source": rows, "target": cols}))


@pytest.mark.parametrize("n, features", [
    (10, ("fraction",)),
    pytest.param(14, ("fraction", "count"), marks=pytest.mark.slow),
])
def test_regression_adjustment_is_unbiased_under_the_linear_model_by_full_enumeration(n, features):
    """Every assignment of n/2 treated among n nodes (924 for 12, 3,432 for 14): where both
    arms' features vary (the estimator is defined) the estimate equals the truth, so its
    mean does, to 1e-12; the difference in means is biased toward zero on the same data."""
    graph = _small_graph(n)
    adjacency = graph.adjacency.toarray()
    degree = adjacency.sum(axis=1)
    tau, gamma = 0.7, 1.3
    delta = 0.2 if "count" in features else 0.0  # the model is linear in the features used

    def outcome(z):
        count = adjacency @ z
        return 1.0 + tau * z + gamma * count / degree + delta * count

    truth = float(np.mean(outcome(np.ones(n)) - outcome(np.zeros(n))))
    estimates, naive, undefined = [], [], 0
    for treated in itertools.combinations(range(n), n // 2):  # every assignment of the design
        z = np.zeros(n)
        z[list(treated)] = 1
        y = outcome(z)
        try:
            effect = regression_adjustment(pd.DataFrame({"unit_id": graph.nodes, "y": y}), graph,
                                           pd.DataFrame({"unit_id": graph.nodes, "arm": z.astype(int)}),
                                           features=features)
        except InputError:  # an arm whose features do not vary: the estimator is not defined
            undefined += 1
            continue
        estimates.append(effect.estimate)
        naive.append(y[z == 1].mean() - y[z == 0].mean())
    assert len(estimates) > 0.9 * (len(estimates) + undefined)
    assert np.mean(estimates) == pytest.approx(truth, abs=1e-12)
    assert np.max(np.abs(np.asarray(estimates) - truth)) < 1e-9  # exact assignment by assignment
    assert truth - np.mean(naive) > 0.5  # the difference in means misses most of the spillover


@pytest.mark.slow
def test_regression_adjustment_with_too_few_features_is_biased_so_the_check_can_fail():
    graph = _small_graph()
    n = graph.n_nodes
    adjacency = graph.adjacency.toarray()
    rng = np.random.default_rng(3)
    total, truth_total = [], None
    for _ in range(300):
        z = np.zeros(n)
        z[rng.choice(n, n // 2, replace=False)] = 1
        y = 1 + 0.5 * z + 0.4 * (adjacency @ z) ** 2  # quadratic in the count
        truth_total = np.mean(0.5 + 0.4 * adjacency.sum(axis=1) ** 2)
        outcomes = pd.DataFrame({"unit_id": graph.nodes, "y": y})
        try:
            total.append(regression_adjustment(outcomes, graph, pd.DataFrame({"unit_id": graph.nodes, "arm": z}),
                                               features=("fraction",)).estimate)
        except InputError:
            continue
    assert abs(np.mean(total) - truth_total) > 0.5


def test_weighted_least_squares_saturated_is_hajek_to_1e_12_and_covariates_tighten_it():
    graph = synth.social_graph(3_000, mean_degree=6, seed=5)
    design = IndividualDesign(graph.nodes, 0.5, complete=False)
    assignment = design.assign(seed=6)
    table = exposure(graph, assignment, "as4")
    rng = np.random.default_rng(7)
    x = rng.normal(size=graph.n_nodes)
    treated = (table["arm"] == 1).to_numpy()
    y = 1 + 2 * x + 0.5 * treated + 0.8 * table["treated_fraction"].to_numpy() + rng.normal(0, 0.5, graph.n_nodes)
    outcomes = pd.DataFrame({"unit_id": graph.nodes, "y": y, "x": x})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probs = probabilities(graph, "as4", design=design)
        hajek = estimate(outcomes, table, "hajek", probabilities=probs).to_frame().set_index("condition")
        plain = {e.condition: e for e in weighted_least_squares(outcomes, table, probs)}
        adjusted = {e.condition: e for e in weighted_least_squares(outcomes, table, probs, covariates=["x"])}
    for condition, effect in plain.items():
        assert effect.estimate == pytest.approx(hajek.loc[condition, "estimate"], abs=1e-12)
        assert adjusted[condition].se < 0.7 * effect.se  # x explains most of the variance


@pytest.mark.slow
def test_regression_adjustment_covers_the_global_effect_in_simulation():
    """300 Bernoulli experiments on a 3,000-node graph, outcomes linear in the treated share
    with noise: mean estimate at the truth, 95% intervals cover (Monte Carlo sd of the
    coverage 0.013; 0.90 is nearly four sd below)."""
    graph = synth.social_graph(3_000, mean_degree=6, seed=8)
    degree = graph.degrees()
    rng = np.random.default_rng(9)
    noise = rng.normal(0, 1, graph.n_nodes)
    truth = 0.5 + 1.0 * float(np.mean(degree > 0))
    estimates, covered = [], 0
    for _ in range(300):
        z = (rng.random(graph.n_nodes) < 0.5).astype(int)
        share = (graph.adjacency @ z) / np.maximum(degree, 1)
        y = 1 + 0.5 * z + 1.0 * share + noise
        effect = regression_adjustment(pd.DataFrame({"unit_id": graph.nodes, "y": y}), graph,
                                       pd.DataFrame({"unit_id": graph.nodes, "arm": z}))
        estimates.append(effect.estimate)
        covered += effect.ci_low <= truth <= effect.ci_high
    sd = np.std(estimates, ddof=1)
    assert abs(np.mean(estimates) - truth) < 4 * sd / np.sqrt(300)
    assert covered / 300 >= 0.90


def test_unknown_features_are_refused():
    graph = _small_graph()
    assignment = pd.DataFrame({"unit_id": graph.nodes, "arm": np.arange(graph.n_nodes) % 2})
    with pytest.raises(InputError, match="choose one or more"):
        regression_adjustment(pd.DataFrame({"unit_id": graph.nodes, "y": 1.0}), graph, assignment,
                              features=("degree",))


@pytest.mark.slow
def test_the_comparison_of_estimators_reports_the_known_biases():
    """Linear spillover on a 3,000-node graph, 80 simulated experiments per estimator: the
    difference in means under individual randomization misses about half of the global
    effect; regression adjustment and the rollout are unbiased within four Monte Carlo
    standard errors."""
    from spillover.simulate import compare_estimators

    graph = synth.social_graph(3_000, mean_degree=8, seed=1)
    table = compare_estimators(graph, n_sims=80, seed=4)
    assert set(table["design"]) == {"individual", "cluster", "rollout", "rgcr (20 clusterings)"}
    table = table.set_index(["estimator", "design"])
    assert table.loc[("difference in means", "individual"), "bias"] < -0.3
    for key in (("regression adjustment (Chin)", "individual"), ("polynomial interpolation", "rollout"),
                ("Hajek, fully exposed", "cluster"), ("Hajek, fully exposed", "rgcr (20 clusterings)")):
        row = table.loc[key]
        assert abs(row["bias"]) < 4 * row["sd"] / np.sqrt(row["n_sims"]), key
    assert table.loc[("regression adjustment (Chin)", "individual"), "coverage"] >= 0.85


@pytest.mark.slow  # end to end: runs with --full (CI)
def test_cli_simulate_compares_the_estimators(capsys, tmp_path):
    import json

    from spillover.cli import main

    assert main(["simulate", "--compare", "estimators", "--users", "1500", "--n-sims", "6", "--tau", "0.5",
                 "--gamma", "1", "--out", str(tmp_path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    names = [row["estimator"] for row in payload["estimators"]]
    assert "regression adjustment (Chin)" in names and "polynomial interpolation" in names
    assert payload["true_effect"] > 0.5 and (tmp_path / "estimator_comparison.csv").exists()
    assert main(["simulate", "--compare", "estimators", "--users", "1500", "--n-sims", "6", "--tau", "0.5",
                 "--gamma", "1", "--spillover", "threshold", "--json"]) == 0
    threshold = json.loads(capsys.readouterr().out)
    bias = {run: {r["estimator"]: r["bias"] for r in data["estimators"]} for run, data in
            (("linear", payload), ("threshold", threshold))}
    # a threshold spillover is far from linear in the share: the rollout of degree 2 misses it
    assert bias["threshold"]["polynomial interpolation"] - bias["linear"]["polynomial interpolation"] > 0.3
    assert main(["simulate", "--compare", "estimators", "--memberships", "m.parquet"]) == 2


def test_cli_estimate_runs_wls_and_regression_adjustment(tmp_path, capsys):
    import json

    from spillover.cli import main

    paths = {name: str(tmp_path / f"{name}.parquet") for name in ("e", "a", "x", "o")}
    graph = synth.social_graph(2_000, seed=4)
    synth.edge_table(graph).to_parquet(paths["e"])
    IndividualDesign(graph.nodes, 0.5).assign(seed=5).to_frame()[["unit_id", "arm"]].to_parquet(paths["a"])
    assert main(["exposure", paths["e"], "--assignment", paths["a"], "--mapping", "as4", "--out", paths["x"]]) == 0
    assert main(["synth", "outcomes", "--edges", paths["e"], "--assignment", paths["a"], "--tau", "0.5",
                 "--gamma", "1", "--out", paths["o"]]) == 0
    capsys.readouterr()
    common = ["estimate", "--outcomes", paths["o"], "--exposure", paths["x"], "--edges", paths["e"], "--json"]
    results = {}
    for method in ("hajek", "wls"):
        assert main(common + ["--method", method, "--design", "individual"]) == 0
        results[method] = json.loads(capsys.readouterr().out)["effects"]
    for a, b in zip(results["hajek"], results["wls"]):
        assert a["estimate"] == pytest.approx(b["estimate"], abs=1e-12)
    assert main(common + ["--method", "regression-adjustment"]) == 0
    (effect,) = json.loads(capsys.readouterr().out)["effects"]
    assert effect["estimand"] == "total" and effect["ci_low"] < effect["ci_high"]


@pytest.mark.slow
def test_design_bootstrap_matches_the_spread_over_redraws():
    """Over 100 experiments on a 4,000-node graph (linear model, Bernoulli 1/2), the mean
    design-bootstrap standard error (200 redraws) is within 20% of the estimates' sd,
    about three Monte Carlo standard errors of an sd from 100 draws (7% each)."""
    graph = synth.social_graph(4_000, seed=1)
    design = IndividualDesign(graph.nodes, 0.5, complete=False)
    degree = np.maximum(graph.degrees(), 1)
    rng = np.random.default_rng(2)
    base = rng.normal(0, 1, graph.n_nodes)
    estimates, ses = [], []
    for _ in range(100):
        assignment = design.assign(seed=rng)
        z = assignment.arms.astype(float)
        y = base + 0.5 * z + 1.0 * (graph.adjacency @ z) / degree + rng.normal(0, 1, graph.n_nodes)
        effect = regression_adjustment(pd.DataFrame({"unit_id": graph.nodes, "y": y}), graph, assignment,
                                       bootstrap=200, design=design, seed=rng)
        estimates.append(effect.estimate)
        ses.append(effect.se)
        assert "design bootstrap, 200 redraws" in effect.method
    assert 0.8 < np.mean(ses) / np.std(estimates, ddof=1) < 1.2


def test_design_bootstrap_needs_the_design():
    graph = synth.social_graph(500, seed=1)
    assignment = IndividualDesign(graph.nodes, 0.5).assign(seed=2)
    outcomes = pd.DataFrame({"unit_id": graph.nodes, "y": np.arange(graph.n_nodes, dtype=float)})
    with pytest.raises(InputError, match="give the design"):
        regression_adjustment(outcomes, graph, assignment, bootstrap=50)
    with pytest.raises(InputError, match="at least 2"):
        regression_adjustment(outcomes, graph, assignment, bootstrap=1, design=IndividualDesign(graph.nodes, 0.5))
