"""ols-bipartite: buyer outcomes under seller randomization, the estimator added as one
module (spillover/estimate/bipartite.py) that registers itself."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from spillover import DesignError, synth
from spillover.design import BipartiteDesign, IndividualDesign
from spillover.estimate import ESTIMATORS, METHODS, estimate, validity
from spillover.estimate.bipartite import seller_jackknife
from spillover.exposure import exposure


def test_the_jackknife_is_refitting_without_each_block_by_hand():
    """Overlapping blocks (a row in several), covariates: every delete-one-block fit done
    with numpy's least squares gives the same variance."""
    rng = np.random.default_rng(1)
    n, g = 200, 25
    links = [(i, b) for i in range(n) for b in rng.choice(g, size=rng.integers(1, 4), replace=False)]
    rows, cols = np.array(links).T
    incidence = sp.csr_array((np.ones(rows.size), (rows, cols)), shape=(n, g))
    x = np.column_stack([np.ones(n), rng.integers(0, 2, n), rng.normal(size=n)])
    y = x @ [1.0, 0.4, -0.2] + rng.normal(size=n)
    contrasts = np.array([[0.0, 1.0, 0.0]])
    estimate_, variance, blocks = seller_jackknife(x, y, incidence, contrasts)
    thetas = []
    for b in range(g):  # by hand: drop the rows linked to block b, refit
        keep = np.asarray(incidence[:, [b]].todense()).ravel() == 0
        thetas.append(np.linalg.lstsq(x[keep], y[keep], rcond=None)[0][1])
    thetas = np.array(thetas)
    assert blocks == g
    assert estimate_[0] == pytest.approx(np.linalg.lstsq(x, y, rcond=None)[0][1], abs=1e-12)
    assert variance[0] == pytest.approx((g - 1) / g * np.sum((thetas - thetas.mean()) ** 2), rel=1e-10)


def test_it_is_registered_and_refused_where_units_are_the_randomized_ones():
    assert "ols-bipartite" in METHODS and ESTIMATORS["ols-bipartite"].needs == ("graph",)
    assert validity("ols-bipartite", "treated-side", "exposure").allowed
    assert validity("ols-bipartite", "cluster", "own").instead == "ols-cluster"
    graph = synth.social_graph(300, seed=1)
    table = exposure(graph, IndividualDesign(graph.nodes).assign(seed=1), "fraction")
    outcomes = pd.DataFrame({"unit_id": graph.nodes, "y": 0.0})
    with pytest.raises(DesignError, match="ols-bipartite does not fit this individual design"):
        estimate(outcomes, table, "ols-bipartite", graph=graph)


@pytest.mark.slow
def test_buyer_intervals_cover_under_seller_randomization_where_unit_level_ones_do_not():
    """10,000 buyers and 1,000 sellers of heavy-tailed popularity (the largest seller has
    about a tenth of the buyers), outcomes sharing their sellers' effects, a true effect of
    0.3 times a buyer's treated share, 300 complete randomizations of the sellers. Monte
    Carlo se of a 0.95 coverage over 600 contrasts is 0.009; allow 3 of them."""
    market = synth.marketplace(10_000, 1_000, seed=1)
    rng = np.random.default_rng(0)
    degree = np.diff(market.incidence.indptr)
    base = (market.incidence @ rng.normal(0, 1, 1_000)) / np.maximum(degree, 1) + rng.normal(0, 1, 10_000)
    design = BipartiteDesign(market, 0.5)
    covered, naive = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in range(300):
            table = exposure(market, design.assign(seed=10 + r), "bipartite")
            share, condition = table["treated_fraction"].to_numpy(), table["condition"].astype(str).to_numpy()
            outcomes = pd.DataFrame({"unit_id": market.units, "y": base + 0.3 * share})
            truth = {c: 0.3 * share[condition == c].mean() for c in ("direct", "indirect")}
            covered += [e.ci_low <= truth[e.condition] <= e.ci_high
                        for e in estimate(outcomes, table, "ols-bipartite", graph=market).effects]
            naive += [e.ci_low <= truth[e.condition] <= e.ci_high
                      for e in estimate(outcomes, table, "difference-in-means", ignore_design=True).effects]
    assert abs(np.mean(covered) - 0.95) < 3 * np.sqrt(0.95 * 0.05 / len(covered)), np.mean(covered)
    assert np.mean(naive) < 0.6, np.mean(naive)


def test_the_marketplace_pipeline_runs_from_the_command_line_with_a_known_truth(tmp_path, cli_json):
    """synth marketplace -> cluster the sellers -> assign -> exposure -> synth outcomes
    --bipartite (it used to end in AttributeError) -> estimate, with the truth stated."""
    run = cli_json
    links, sellers, arms = (str(tmp_path / name) for name in ("links.parquet", "sellers.parquet", "arms.parquet"))
    made = run("synth", "marketplace", "--buyers", "4000", "--sellers", "400", "--seed", "3", "--out", links)
    assert (made["n_buyers"], made["n_sellers"]) == (4000, 400) and made["n_links"] > 4000
    run("cluster", links, "--bipartite", "--method", "components", "--side", "treated", "--out", sellers)
    run("assign", "--units", sellers, "--design", "individual", "--seed", "1", "--out", arms)
    exposure = str(tmp_path / "exposure.parquet")
    run("exposure", links, "--bipartite", "--assignment", arms, "--mapping", "bipartite", "--out", exposure)
    outcomes = str(tmp_path / "y.parquet")
    truth = run("synth", "outcomes", "--bipartite", "--edges", links, "--assignment", arms, "--tau", "0.5",
                "--seed", "4", "--out", outcomes)
    assert truth["direct"] == truth["gate"] == 0.5 and 0.1 < truth["indirect"] < 0.4
    effects = {row["condition"]: row for row in run("estimate", "--outcomes", outcomes, "--exposure", exposure,
                                                     "--edges", links, "--bipartite", "--assignment", arms)["effects"]}
    assert effects["direct"]["ci_low"] < truth["direct"] < effects["direct"]["ci_high"]
    assert abs(effects["indirect"]["estimate"] - truth["indirect"]) < 4 * effects["indirect"]["se"]
    # the exposure table records that the other side was randomized: the bipartite
    # estimators run on it (ols-bipartite was refused here as "an individual design")
    for method, condition, truth_key in (("ols-bipartite", "direct", "direct"), ("erl", "all sellers treated", "gate")):
        rows = run("estimate", "--outcomes", outcomes, "--exposure", exposure, "--edges", links, "--bipartite",
                   "--assignment", arms, "--method", method)["effects"]
        row = next(r for r in rows if r["condition"] == condition)
        assert row["ci_low"] < truth[truth_key] < row["ci_high"], (method, row)


def test_seller_clusters_follow_a_markets_categories_and_the_study_ranks_the_designs(tmp_path, cli_json):
    """synth marketplace --categories -> cluster --side treated --method metis (the sellers'
    projection) gives clusters under which most buyers can be all-or-none (the categories
    themselves reach 0.76 on this market, single sellers 0.16); simulate --compare
    marketplace ranks seller randomization against seller clusters and recommends a row
    that covered; the naive difference in means never covers near 0.95 there."""
    run = cli_json
    links, sellers = str(tmp_path / "links.parquet"), str(tmp_path / "sellers.parquet")
    run("synth", "marketplace", "--buyers", "5000", "--sellers", "500", "--categories", "10", "--seed", "1",
        "--out", links)
    made = run("cluster", links, "--bipartite", "--side", "treated", "--method", "metis", "--n-parts", "10",
               "--seed", "1", "--out", sellers)
    assert made["n_clusters"] == 10 and made["pure_buyers"] > 0.6 and made["cut_weight"] < 0.4
    arms = str(tmp_path / "arms.parquet")
    run("assign", "--units", sellers, "--design", "cluster", "--seed", "2", "--out", arms)
    study = run("simulate", "--compare", "marketplace", "--edges", links, "--seller-clusters", "10",
                "--n-sims", "60", "--tau", "0.3", "--seed", "3")
    rows = {(r["design"], r["estimator"]): r for r in study["rows"]}
    assert {design for design, _ in rows} == {"sellers", "10 seller clusters"}
    assert rows[("10 seller clusters", "erl")]["pure_buyers"] > rows[("sellers", "erl")]["pure_buyers"] + 0.4
    assert all(r["coverage"] < 0.8 for (_, estimator), r in rows.items() if estimator == "difference-in-means")
    best = study["recommendation"]
    assert rows[(best["design"], best["estimator"])]["coverage"] >= 0.93
