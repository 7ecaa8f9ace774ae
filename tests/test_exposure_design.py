"""Exposure-Design's seller clusters (Harshaw et al. 2023, section 6): the objective
``sum_i Var(x_i) - lambda sum_{i != k} Cov(x_i, x_k)`` equals the Constant Potts Model on
the sellers' projection that Leiden maximizes (checked against the design moments ERL's
enumeration tests verify), Leiden's clusters score above METIS's, single sellers and one
cluster, and the command line writes them with their diagnostics."""

from __future__ import annotations

import numpy as np
import pytest

from spillover import synth
from spillover.estimate.erl import joint_probabilities, moment
from spillover.design.base import Randomization
from spillover.errors import InputError
from spillover.marketplace import (exposure_design, exposure_objective, exposure_purity, seller_clusters,
                                   seller_projection, unit_weights)

MARKET = synth.marketplace(3_000, 300, categories=6, seed=4)


@pytest.mark.parametrize("resolution", [0.5, 1.0, 8.0])
def test_the_objective_is_exposure_variance_less_covariance_and_the_potts_model_leiden_maximizes(resolution):
    """For random clusterings: (1) the objective equals sum_i Var(x_i) - lambda sum_{i != k}
    Cov(x_i, x_k) over p(1 - p) with the moments of Bernoulli(0.3) on clusters from ERL's
    moment function (1e-9 relative); (2) it equals (1 + lambda) sum_c sum_{j, j' in c}
    (P_jj' - gamma d_j d_j') / n from the projection (the form Leiden is given)."""
    rng = np.random.default_rng(1)
    n = int(np.count_nonzero(MARKET.unit_degrees() > 0))
    gamma = resolution / n
    lam = gamma / (1 - gamma)
    projection = seller_projection(MARKET).toarray()
    d = projection.sum(axis=1)
    p = 0.3
    for n_clusters in (2, 17, 300):
        labels = rng.integers(0, n_clusters, size=300)
        objective = exposure_objective(MARKET, labels, resolution)
        same = labels[:, None] == labels[None, :]
        potts = (1 + lam) * np.sum(same * (projection - gamma * np.outer(d, d))) / n
        assert objective == pytest.approx(potts, rel=1e-9)
        codes = np.unique(labels, return_inverse=True)[1]
        a = unit_weights(MARKET, codes)
        a = a[np.diff(a.indptr) > 0].toarray()
        pi = joint_probabilities(Randomization(np.arange(a.shape[1]), a.shape[1], "bernoulli", p=p))
        own = {(1, 0): a.sum(axis=1), (2, 0): (a**2).sum(axis=1)}
        var = moment(pi, own, 2, 0) - moment(pi, own, 1, 0) ** 2
        mean = a.sum(axis=1) * p
        cross = {(1, 0): a.sum(axis=1)[:, None] + 0 * a[:, :1].T, (0, 1): a.sum(axis=1)[None, :] + 0 * a[:, :1],
                 (1, 1): a @ a.T}
        cov = moment(pi, cross, 1, 1) - np.outer(mean, mean)
        direct = (var.sum() - lam * (cov.sum() - np.trace(cov))) / (p * (1 - p)) / n
        assert objective == pytest.approx(direct, rel=1e-9)


def test_leiden_finds_clusters_that_score_above_metis_single_sellers_and_one_cluster():
    labels = exposure_design(MARKET, seed=2)
    assert labels.index.equals(MARKET.treated) and labels.nunique() > 1
    best = exposure_objective(MARKET, labels.to_numpy())
    assert best > exposure_objective(MARKET, np.arange(300))
    assert best > exposure_objective(MARKET, np.zeros(300, dtype=int))
    for parts in (6, labels.nunique()):
        assert best > exposure_objective(MARKET, seller_clusters(MARKET, parts, seed=2).to_numpy())
    assert exposure_purity(MARKET, labels)["pure_buyers"] > 0.6  # buyers mostly all-or-none
    assert exposure_design(MARKET, seed=2).equals(labels)  # reproducible from a seed
    assert exposure_design(MARKET, resolution=16.0, seed=2).nunique() > labels.nunique()


def test_a_resolution_outside_its_range_is_refused():
    with pytest.raises(InputError, match="resolution"):
        exposure_design(MARKET, resolution=0.0)


def test_the_command_line_writes_exposure_design_clusters_and_the_study_compares_them(tmp_path, capsys, cli_json):
    from spillover.cli import main

    run = cli_json
    links, sellers = str(tmp_path / "links.parquet"), str(tmp_path / "sellers.parquet")
    run("synth", "marketplace", "--buyers", "3000", "--sellers", "300", "--categories", "6", "--seed", "4",
        "--out", links)
    made = run("cluster", links, "--bipartite", "--side", "treated", "--method", "exposure-design", "--seed", "2",
               "--out", sellers)
    assert made["method"].startswith("exposure-design") and made["n_clusters"] > 1 and made["pure_buyers"] > 0.6
    assert made["objective"] == pytest.approx(exposure_objective(MARKET, exposure_design(MARKET, seed=2).to_numpy()))
    study = run("simulate", "--compare", "marketplace", "--edges", links, "--seller-clusters", "exposure-design",
                "--n-sims", "20", "--seed", "3")
    designs = {r["design"] for r in study["rows"]}
    assert "sellers" in designs and any(d.startswith("exposure-design (") for d in designs)
    assert main(["cluster", links, "--method", "exposure-design"]) != 0
    assert "--bipartite --side treated" in capsys.readouterr().err
