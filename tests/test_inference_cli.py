"""Inference from the command line, the path most users take: the reference package's
all-pairs convention reproduced exactly, design parameters read from the data, the
dependence of supplied draws found, and the variance and level the user asked for."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from spillover import SocialGraph
from spillover.cli import main
from spillover.design import ClusterDesign, IndividualDesign

from .aronow_samii import aronow_samii

pytestmark = pytest.mark.filterwarnings("ignore::spillover.errors.PositivityWarning",
                                        "ignore::spillover.errors.EmptyConditionWarning",
                                        "ignore::spillover.errors.FewClustersWarning")


def run_json(capsys, argv):
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def karate(tmp_path_factory):
    folder = tmp_path_factory.mktemp("karate")
    karate = nx.karate_club_graph()
    edges = pd.DataFrame(list(karate.edges()), columns=["source", "target"])
    edges.to_csv(folder / "edges.csv", index=False)
    graph = SocialGraph.from_edges(edges)
    draws = IndividualDesign(graph.nodes, 0.2).draw(400, seed=5)            # complete randomization
    pd.DataFrame(draws.T, columns=[str(u) for u in graph.nodes]).to_csv(folder / "draws.csv", index=False)
    observed = draws[:, 0]
    pd.DataFrame({"unit_id": graph.nodes, "arm": observed}).to_csv(folder / "assignment.csv", index=False)
    y = np.random.default_rng(1).normal(size=graph.n_nodes) + observed
    pd.DataFrame({"unit_id": graph.nodes, "y": y}).to_csv(folder / "outcomes.csv", index=False)
    return folder, graph, draws, observed, y


@pytest.mark.parametrize("hops", [1, pytest.param(2, marks=pytest.mark.slow)])
@pytest.mark.parametrize("method", [pytest.param("ht", marks=pytest.mark.slow), "hajek"])
def test_cli_reproduces_the_reference_all_pairs_convention_on_the_karate_club(capsys, karate, hops, method):
    folder, graph, draws, observed, y = karate
    exposure_path = folder / f"exposure{hops}.csv"
    assert main(["exposure", str(folder / "edges.csv"), "--assignment", str(folder / "assignment.csv"),
                 "--mapping", "as4", "--hops", str(hops), "--out", str(exposure_path)]) == 0
    capsys.readouterr()
    # two hops from a 20% treated karate club reach almost everyone: contrast with ind2 there
    control = "no" if hops == 1 else "ind2"
    result = run_json(capsys, ["estimate", "--outcomes", str(folder / "outcomes.csv"), "--exposure",
                               str(exposure_path), "--method", method, "--edges", str(folder / "edges.csv"),
                               "--mapping", "as4", "--hops", str(hops), "--draws", str(folder / "draws.csv"),
                               "--joint", "all", "--prob-correction", "add-one", "--control", control,
                               "--variance-bound", "pairs",  # the reference's pair-by-pair bound
                               "--min-units", "0", "--json"])  # 34 units: the reference's formula, not the guard
    assert len(result["effects"]) >= 2
    for row in result["effects"]:
        est, se = aronow_samii(graph, draws, observed, y, row["condition"], control, add_one=True,
                               hajek=method == "hajek", hops=hops)
        assert row["estimate"] == pytest.approx(est, abs=1e-10)
        assert row["se"] == pytest.approx(se, abs=1e-10)
    assert any("complete randomization" in note for note in result["notes"])


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """A 20%-treated complete randomization on a planted-partition graph."""
    from spillover import synth

    folder = tmp_path_factory.mktemp("experiment")
    source = synth.social_graph(600, mean_degree=4, seed=3)
    edges = synth.edge_table(source)
    edges.to_csv(folder / "edges.csv", index=False)
    graph = SocialGraph.from_edges(edges)
    communities = source.node_data["community"].reindex(graph.nodes).to_numpy()
    pd.DataFrame({"unit_id": graph.nodes, "cluster_id": communities}).to_csv(folder / "clusters.csv", index=False)
    design = ClusterDesign(communities, graph.nodes, treat_fraction=0.2)
    assignment = design.assign(seed=1)
    assignment.to_frame().to_csv(folder / "assignment.csv", index=False)
    y = np.random.default_rng(0).normal(size=graph.n_nodes) + assignment.arms
    pd.DataFrame({"unit_id": graph.nodes, "y": y}).to_csv(folder / "outcomes.csv", index=False)
    pd.DataFrame(design.draw(300, seed=2).T, columns=[str(u) for u in graph.nodes]).to_csv(folder / "draws.csv",
                                                                                          index=False)
    assert main(["exposure", str(folder / "edges.csv"), "--assignment", str(folder / "assignment.csv"),
                 "--mapping", "as4", "--out", str(folder / "exposure.csv")]) == 0
    return folder, graph, design


def estimate_args(folder, *extra):
    return ["estimate", "--outcomes", str(folder / "outcomes.csv"), "--exposure", str(folder / "exposure.csv"),
            "--edges", str(folder / "edges.csv"), "--mapping", "as4", *extra, "--json"]


def test_design_flag_reads_the_treated_share_and_uses_exact_probabilities(capsys, experiment):
    folder, graph, design = experiment
    capsys.readouterr()
    result = run_json(capsys, estimate_args(folder, "--method", "hajek", "--design", "cluster", "--clusters",
                                            str(folder / "clusters.csv"), "--design-draws", "0"))  # the bound alone
    from spillover.estimate import estimate
    from spillover.exposure import probabilities

    table = pd.read_csv(folder / "exposure.csv")
    outcomes = pd.read_csv(folder / "outcomes.csv")
    expected = estimate(outcomes, table, "hajek", probabilities=probabilities(graph, "as4", design=design))
    for row in result["effects"]:
        assert row["estimate"] == pytest.approx(expected[row["condition"]].estimate, abs=1e-12)
        assert row["se"] == pytest.approx(expected[row["condition"]].se, abs=1e-12)
        assert "exact: complete randomization" in row["method"]


def test_a_stated_share_that_disagrees_with_the_assignment_is_refused(capsys, experiment):
    folder, *_ = experiment
    capsys.readouterr()
    assert main(estimate_args(folder, "--method", "hajek", "--design", "cluster", "--clusters",
                              str(folder / "clusters.csv"), "--treat-fraction", "0.5")) == 2
    err = capsys.readouterr().err
    assert "0.5" in err and "but the assignment treats" in err


def test_more_dependent_pairs_than_max_pairs_is_one_actionable_error(capsys, experiment):
    # refused before any pair is formed, with what to do instead; the bound counts at
    # least the pairs the probabilities would store
    folder, graph, design = experiment
    from spillover import InputError
    from spillover.exposure import probabilities

    stored = probabilities(graph, "as4", design=design, grouped=False, max_pairs=None).pairs.nnz
    with pytest.raises(InputError, match=f"max_pairs={stored - 1:,}.*ols-cluster"):
        probabilities(graph, "as4", design=design, grouped=False, max_pairs=stored - 1)
    capsys.readouterr()
    assert main(estimate_args(folder, "--method", "hajek", "--design", "cluster", "--clusters",
                              str(folder / "clusters.csv"), "--max-pairs", "100")) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "dependent pairs" in errors[0] and "--max-pairs" in errors[0]


def test_draws_from_a_cluster_design_keep_same_cluster_pairs(capsys, experiment):
    folder, graph, design = experiment
    capsys.readouterr()
    result = run_json(capsys, estimate_args(folder, "--method", "hajek", "--draws", str(folder / "draws.csv")))
    assert any("blocks found in the draws" in note for note in result["notes"])
    with_clusters = run_json(capsys, estimate_args(folder, "--method", "hajek", "--draws", str(folder / "draws.csv"),
                                                   "--clusters", str(folder / "clusters.csv")))
    for a, b in zip(result["effects"], with_clusters["effects"]):
        assert a["se"] == pytest.approx(b["se"], rel=1e-12)


@pytest.mark.parametrize("vcov", ["CR0", "CR1", "CR2"])
def test_vcov_flag_chooses_the_variance(capsys, experiment, vcov):
    """Each --vcov gives the standard errors of an independent computation: statsmodels'
    cluster-robust OLS for CR0 and CR1, the Bell-McCaffrey adjustment by hand for CR2."""
    import scipy.linalg
    import statsmodels.api as sm

    folder, *_ = experiment
    capsys.readouterr()
    result = run_json(capsys, estimate_args(folder, "--method", "ols-cluster", "--clusters",
                                            str(folder / "clusters.csv"), "--vcov", vcov))
    assert all(vcov in row["method"] for row in result["effects"])
    table = pd.read_csv(folder / "exposure.csv").merge(pd.read_csv(folder / "outcomes.csv"), on="unit_id")
    table = table.merge(pd.read_csv(folder / "clusters.csv"), on="unit_id", suffixes=("_randomized", ""))
    conditions = [row["condition"] for row in result["effects"]]
    x = np.column_stack([np.ones(len(table))] + [(table["condition"] == c).to_numpy(float) for c in conditions])
    y, groups = table["y"].to_numpy(), table["cluster_id"].to_numpy()
    if vcov == "CR2":
        bread = np.linalg.inv(x.T @ x)
        residual = y - x @ (bread @ x.T @ y)
        meat = np.zeros_like(bread)
        for g in np.unique(groups):  # a loop over clusters: the reference, not the library
            rows = groups == g
            hat = x[rows] @ bread @ x[rows].T
            adjusted = scipy.linalg.inv(np.real(scipy.linalg.sqrtm(np.eye(rows.sum()) - hat))) @ residual[rows]
            score = x[rows].T @ adjusted
            meat += np.outer(score, score)
        expected = np.sqrt(np.diag(bread @ meat @ bread))[1:]
    else:
        fit = sm.OLS(y, x).fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(groups)[0],
                                                             "use_correction": vcov == "CR1"})
        expected = fit.bse[1:]
    np.testing.assert_allclose([row["se"] for row in result["effects"]], expected, rtol=1e-8)


def test_alpha_sets_the_level_printed_and_used(capsys, experiment):
    folder, *_ = experiment
    capsys.readouterr()
    wide = run_json(capsys, estimate_args(folder, "--method", "ols-cluster", "--clusters", str(folder / "clusters.csv")))
    narrow = run_json(capsys, estimate_args(folder, "--method", "ols-cluster", "--clusters",
                                            str(folder / "clusters.csv"), "--alpha", "0.1"))
    assert narrow["alpha"] == 0.1
    for a, b in zip(wide["effects"], narrow["effects"]):
        assert b["ci_high"] - b["ci_low"] < a["ci_high"] - a["ci_low"]
    assert main(estimate_args(folder, "--method", "ols-cluster", "--clusters", str(folder / "clusters.csv"))[:-1]) == 0
    assert "95%" in capsys.readouterr().out


def test_effects_print_their_own_level_and_take_estimands_from_the_mapping():
    from spillover.estimate import estimate
    from spillover.exposure import Mapping

    units = range(40)
    condition = ["two+", "fewer"] * 20
    table = pd.DataFrame({"unit_id": units, "condition": pd.Categorical(condition, ["two+", "fewer"])})
    outcomes = pd.DataFrame({"unit_id": units, "y": np.random.default_rng(1).normal(size=40)})
    mapping = Mapping("two+", ("two+", "fewer"), "fewer", lambda c: c.n_treated, {"two+": "saturation"})
    effects = estimate(outcomes, table, "difference-in-means", mapping=mapping, alpha=0.1)
    assert effects["two+"].estimand == "saturation"
    assert "90% CI" in repr(effects) and "90% intervals" in effects.summary()
    low, high = effects.conf_int(0.01).loc["two+"]
    assert low < effects["two+"].ci_low and high > effects["two+"].ci_high


def test_ols_network_runs_from_the_command_line(capsys, experiment):
    """The network-HAC standard errors equal the definition computed here: residual
    products summed over pairs within --bandwidth hops (shortest paths by scipy) or in one
    randomization cluster, CR1-scaled by the clusters, projected onto the PSD cone."""
    from scipy.sparse import csgraph

    folder, graph, _ = experiment
    capsys.readouterr()
    result = run_json(capsys, estimate_args(folder, "--method", "ols-network", "--clusters",
                                            str(folder / "clusters.csv"), "--bandwidth", "1"))
    assert all("network HAC (1 hops + cluster)" in row["method"] for row in result["effects"])
    table = pd.read_csv(folder / "exposure.csv").merge(pd.read_csv(folder / "outcomes.csv"), on="unit_id")
    table = table.merge(pd.read_csv(folder / "clusters.csv"), on="unit_id", suffixes=("_randomized", ""))
    conditions = [row["condition"] for row in result["effects"]]
    x = np.column_stack([np.ones(len(table))] + [(table["condition"] == c).to_numpy(float) for c in conditions])
    y, clusters = table["y"].to_numpy(), table["cluster_id"].to_numpy()
    rows = graph.nodes.get_indexer(table["unit_id"])
    hops = csgraph.shortest_path(graph.symmetric(), unweighted=True)[np.ix_(rows, rows)]
    pairs = (hops <= 1) | (clusters[:, None] == clusters[None, :])
    bread = np.linalg.inv(x.T @ x)
    scores = x * (y - x @ (bread @ x.T @ y))[:, None]
    meat = scores.T @ pairs.astype(float) @ scores
    lam, vec = np.linalg.eigh(meat)
    meat = (vec * np.clip(lam, 0, None)) @ vec.T
    g, n, k = len(np.unique(clusters)), len(y), x.shape[1]
    expected = np.sqrt(np.diag(g / (g - 1) * (n - 1) / (n - k) * bread @ meat @ bread))[1:]
    np.testing.assert_allclose([row["se"] for row in result["effects"]], expected, rtol=1e-8)
    assert main(["estimate", "--outcomes", str(folder / "outcomes.csv"), "--exposure", str(folder / "exposure.csv"),
                 "--method", "ols-network", "--clusters", str(folder / "clusters.csv")]) == 2
    assert "needs the graph (--edges)" in capsys.readouterr().err


def test_probability_method_bootstrap_weights_and_assignment_flags(capsys, experiment):
    folder, graph, design = experiment
    capsys.readouterr()
    clusters = str(folder / "clusters.csv")
    mc = run_json(capsys, estimate_args(folder, "--method", "hajek", "--design", "cluster", "--clusters", clusters,
                                        "--prob-method", "monte-carlo", "--n-draws", "200"))
    assert all("monte carlo, 200 draws" in row["method"] for row in mc["effects"])
    given = run_json(capsys, estimate_args(folder, "--method", "hajek", "--design", "cluster", "--clusters", clusters,
                                           "--assignment", str(folder / "assignment.csv")))
    default = run_json(capsys, estimate_args(folder, "--method", "hajek", "--design", "cluster", "--clusters", clusters))
    assert [r["se"] for r in given["effects"]] == [r["se"] for r in default["effects"]]
    webb = run_json(capsys, estimate_args(folder, "--method", "ols-cluster", "--clusters", clusters,
                                          "--wild-bootstrap", "499", "--bootstrap-weights", "webb"))
    assert all("wild cluster bootstrap (WCR, webb, 499 draws)" in row["method"] for row in webb["effects"])
    off = run_json(capsys, estimate_args(folder, "--method", "ols-cluster", "--clusters", clusters,
                                         "--wild-bootstrap", "off"))
    assert all("wild" not in row["method"] for row in off["effects"])


def test_estimate_test_flag_adds_an_exact_randomization_test(capsys, karate, experiment):
    """--test runs the randomization test on the design the assignment recorded, and its
    verdict is a note; it needs the graph, and the no-spillover test refuses a cluster
    design with the alternative named."""
    folder = karate[0]
    exposure_path = folder / "exposure_test.csv"
    assert main(["exposure", str(folder / "edges.csv"), "--assignment", str(folder / "assignment.csv"),
                 "--mapping", "fraction", "--out", str(exposure_path)]) == 0
    capsys.readouterr()
    base = ["estimate", "--outcomes", str(folder / "outcomes.csv"), "--exposure", str(exposure_path)]
    result = run_json(capsys, [*base, "--edges", str(folder / "edges.csv"), "--test", "no-spillover",
                               "--test-draws", "199", "--json"])
    [note] = [n for n in result["notes"] if n.startswith("randomization test of no-spillover")]
    p_value = float(note.split("p = ")[1].split(" ")[0])
    assert 1 / 200 <= p_value <= 1 and "199 re-draws" in note
    assert main([*base, "--test", "no-effect"]) == 2
    assert "needs the graph (--edges)" in capsys.readouterr().err
    cluster_folder = experiment[0]
    assert main(estimate_args(cluster_folder, "--test", "no-spillover")) == 2
    assert "MixedDesign" in capsys.readouterr().err
    intervals = run_json(capsys, [*base, "--edges", str(folder / "edges.csv"), "--test", "intervals",
                                  "--test-draws", "199", "--json"])
    [note] = [n for n in intervals["notes"] if n.startswith("exact randomization intervals")]
    assert "direct tau" in note and "spillover gamma" in note and "199 re-draws" in note
