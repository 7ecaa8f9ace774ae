"""Planning from the user's own data: ICC against statsmodels and its closed form, the
analytic MDE against simulated experiments, the interference bias, and the command."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from spillover import DesignError, cluster, synth
from spillover.cli import main
from spillover.design import ClusterDesign
from spillover.plan import icc_anova, icc_reml, minimum_detectable_effect, outside_share, plan


def test_reml_icc_equals_statsmodels_mixedlm():
    smf = pytest.importorskip("statsmodels.formula.api")
    rng = np.random.default_rng(3)
    clusters = np.repeat(np.arange(150), rng.integers(2, 12, 150))
    y = 0.6 * rng.normal(size=150)[clusters] + rng.normal(size=clusters.size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MixedLM's convergence chatter
        fit = smf.mixedlm("y ~ 1", pd.DataFrame({"y": y, "g": clusters}), groups="g").fit(reml=True)
    between, within = float(fit.cov_re.iloc[0, 0]), float(fit.scale)
    assert icc_reml(y, clusters) == pytest.approx(between / (between + within), abs=1e-4)


def test_anova_icc_equals_its_closed_form_with_equal_clusters():
    rng = np.random.default_rng(4)
    g, m = 40, 6
    clusters = np.repeat(np.arange(g), m)
    y = rng.normal(size=g)[clusters] + rng.normal(size=g * m)
    frame = pd.DataFrame({"y": y, "g": clusters})
    means = frame.groupby("g")["y"].mean()
    msb = m * ((means - y.mean()) ** 2).sum() / (g - 1)
    msw = ((frame["y"] - frame["g"].map(means)) ** 2).sum() / (g * (m - 1))
    assert icc_anova(y, clusters) == pytest.approx((msb - msw) / (msb + (m - 1) * msw), abs=1e-12)


def test_reml_icc_is_zero_without_between_cluster_variance():
    clusters = np.repeat(np.arange(50), 4)
    y = np.tile([0.0, 1.0, 2.0, 3.0], 50)  # every cluster identical: no between variance
    assert icc_reml(y, clusters) == pytest.approx(0.0, abs=1e-9)


def simulated_se(labels: np.ndarray, y: np.ndarray, n_sims: int = 2_000, seed: int = 0) -> float:
    """The sd of the difference in means over re-randomizations of clusters (A/A)."""
    z = ClusterDesign(labels, np.arange(labels.size)).draw(n_sims, seed).astype(float)
    treated = z.sum(axis=0)
    estimates = (y @ z) / treated - (y @ (1 - z)) / (labels.size - treated)
    return float(estimates.std(ddof=1))


@pytest.mark.parametrize("kind", ["collaboration", "social"])
def test_analytic_mde_is_within_five_percent_of_simulated_experiments(kind):
    """2,000 simulated experiments: the Monte Carlo error of a standard deviation is about
    1 / sqrt(2 * 2000) = 1.6%, so 5% leaves three Monte Carlo errors for the approximation."""
    rng = np.random.default_rng(2)
    if kind == "collaboration":
        graph = synth.collaboration_network(20_000, seed=1)
        labels = cluster(graph, "components").labels
        units, name = graph.users, "component"
        y = rng.normal(size=labels.max() + 1)[labels] + rng.normal(size=labels.size)
        candidates = None
    else:
        graph = synth.social_graph(20_000, seed=3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            labels = cluster(graph, "louvain", seed=1).labels
        units, name = graph.nodes, "louvain"
        community = graph.node_data["community"].to_numpy()
        y = 0.5 * rng.normal(size=community.max() + 1)[community] + rng.normal(size=labels.size)
        candidates = {"individual": np.arange(labels.size), name: labels}
    result = plan(graph, pd.DataFrame({"unit_id": units, "y": y}), clusters=candidates, effect=0.1)
    row = result.table.set_index("design").loc[name]
    simulated = simulated_se(labels, y)
    assert row["se"] == pytest.approx(simulated, rel=0.05)
    assert row["mde"] == pytest.approx(minimum_detectable_effect(simulated, row["n_clusters"] - 2), rel=0.05)


def test_cuped_credits_the_pre_period_correlation():
    rng = np.random.default_rng(5)
    network = synth.collaboration_network(5_000, seed=2)
    labels = cluster(network, "components").labels
    level = rng.normal(size=labels.max() + 1)[labels]
    history = pd.DataFrame({"unit_id": network.users, "y": level + rng.normal(size=labels.size),
                            "y_pre": level + rng.normal(size=labels.size)})
    with_pre = plan(network, history, pre_col="y_pre").table.set_index("design")
    without = plan(network, history).table.set_index("design")
    assert (with_pre["variance_factor"] < 1).all()
    assert (with_pre["se"] < without["se"]).all()


def test_interference_bias_is_the_spillover_outside_the_clusters():
    graph = synth.social_graph(3_000, seed=5)
    labels = graph.node_data["community"].to_numpy()
    history = pd.DataFrame({"unit_id": graph.nodes, "y": np.random.default_rng(0).normal(size=3_000)})
    table = plan(graph, history, clusters={"individual": np.arange(3_000), "communities": labels}, effect=0.3,
                 spillover=0.5).table.set_index("design")
    connected = np.mean(graph.degrees() > 0)
    tau = 0.3 / (1 + 0.5 * connected)
    expected = -0.5 * tau * outside_share(graph, labels).mean()
    assert table.loc["communities", "interference_bias"] == pytest.approx(expected, rel=1e-12)
    assert table.loc["individual", "interference_bias"] == pytest.approx(-0.5 * tau * connected, rel=1e-12)


def test_one_giant_cluster_is_a_clear_error():
    graph = synth.social_graph(500, seed=1)
    history = pd.DataFrame({"unit_id": graph.nodes, "y": 1.0 * np.arange(500)})
    labels = np.zeros(500, dtype=int)
    labels[:3] = [1, 2, 3]
    with pytest.raises(DesignError, match="effective clusters"):
        plan(graph, history, clusters={"giant": labels})


def test_plan_command_json_has_the_contract_keys(tmp_path, capsys):
    graph = synth.social_graph(2_000, seed=1)
    synth.edge_table(graph).to_parquet(tmp_path / "edges.parquet")
    pd.DataFrame({"unit_id": graph.nodes, "y": np.random.default_rng(1).normal(size=2_000)}).to_parquet(
        tmp_path / "history.parquet")
    assert main(["plan", "--edges", str(tmp_path / "edges.parquet"), "--outcomes", str(tmp_path / "history.parquet"),
                 "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    keys = {"icc", "design_effect", "effective_n", "mde", "interference_bias", "recommended"}
    assert all(keys <= set(row) for row in payload["candidates"])
    assert payload["recommended"] in [row["design"] for row in payload["candidates"]]
    assert sum(row["recommended"] for row in payload["candidates"]) == 1


def test_a_design_the_interference_bias_would_push_below_the_floor_is_flagged_and_not_recommended():
    """Issue 25, point 5: under a stated spillover a cluster design keeps a bias; its 95%
    interval's coverage (the t interval shifted by bias / se, checked against a simulation
    of that interval) decides whether it may be recommended."""
    from spillover.plan import interval_coverage

    rng = np.random.default_rng(5)
    draws = rng.standard_t(8, 200_000)
    q = 2.306004135  # t(8) 0.975 quantile
    simulated = np.mean(np.abs(0.7 + draws) <= q)  # bias 0.7 se
    assert interval_coverage(np.array([0.7]), np.array([1.0]), np.array([8.0]))[0] == pytest.approx(simulated,
                                                                                                   abs=0.003)
    graph = synth.social_graph(3_000, mean_degree=8, mixing=0.1, seed=3)
    codes = pd.factorize(graph.node_data["community"].reindex(graph.nodes).to_numpy())[0]
    y = 0.3 * rng.normal(size=codes.max() + 1)[codes] + rng.normal(size=graph.n_nodes)  # an ICC: big clusters cost
    history = pd.DataFrame({"unit_id": graph.nodes, "y": y})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = plan(graph, history, resolutions=(1.0, 16.0, 64.0), effect=0.2, spillover=0.5)
    table = result.table.set_index("design")
    assert (table["intervals"] == np.where(table["coverage"] < 0.93, "UNDER-COVERS", "ok")).all()
    assert table.loc["individual", "coverage"] < 0.93  # individual randomization keeps all of the spillover out
    smallest = table["rmse"].idxmin()  # small clusters: the smallest error, but a bias of 0.75 se
    assert table.loc[smallest, "coverage"] < 0.93 and result.recommended != smallest
    honest = table[table["coverage"] >= 0.93]
    assert result.recommended == honest["rmse"].idxmin()
