"""The command-line contract of shared/INTERFACE.md: names, flags, columns, JSON keys."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from spillover import synth
from spillover.cli import main

CLUSTER_KEYS = {
    "n_units", "n_edges", "n_clusters", "cut_fraction", "modularity",
    "cluster_size_min", "cluster_size_median", "cluster_size_max",
}


@pytest.fixture(scope="module")
def edge_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "edges.parquet"
    graph = synth.social_graph(2_000, mixing=0.05, seed=1)
    edges = synth.edge_table(graph)
    edges["source"] = "u" + edges["source"].astype(str)  # string ids survive the round trip
    edges["target"] = "u" + edges["target"].astype(str)
    edges.to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module")
def n_ids(edge_file):
    """Users in the edge file (isolated nodes of the generator have no row)."""
    edges = pd.read_parquet(edge_file)
    return pd.concat([edges.source, edges.target]).nunique()


def run_json(capsys, argv):
    assert main(argv) == 0
    out = capsys.readouterr().out
    return json.loads(out)  # stdout holds exactly one JSON object


def test_cluster_json_has_the_contract_keys_and_writes_clusters(capsys, edge_file, n_ids, tmp_path):
    out = tmp_path / "clusters.csv"
    summary = run_json(capsys, ["cluster", str(edge_file), "--method", "louvain", "--seed", "1", "--out", str(out), "--json"])
    assert CLUSTER_KEYS <= set(summary)
    clusters = pd.read_csv(out)
    assert list(clusters.columns) == ["unit_id", "cluster_id"]
    assert clusters["unit_id"].str.startswith("u").all()
    assert summary["n_units"] == len(clusters) == n_ids
    assert summary["n_clusters"] == clusters["cluster_id"].nunique()


@pytest.mark.parametrize("method", ["components", "leiden", "ego", "3net", "metis"])
def test_every_method_runs_from_the_command_line(capsys, edge_file, n_ids, method):
    summary = run_json(capsys, ["cluster", str(edge_file), "--method", method, "--seed", "0", "--json"])
    assert summary["n_units"] == n_ids and summary["n_clusters"] >= 1


def test_cluster_prints_a_table_without_json(capsys, edge_file):
    assert main(["cluster", str(edge_file), "--method", "components"]) == 0
    out = capsys.readouterr().out
    assert "n_clusters" in out and "cut_fraction" in out


def test_bipartite_and_membership_inputs(capsys, tmp_path):
    market = synth.marketplace(1_000, 100, seed=0)
    buyers, sellers = market.edge_index()
    path = tmp_path / "market.csv"
    pd.DataFrame({"buyer_id": buyers, "seller_id": sellers}).to_csv(path, index=False)
    summary = run_json(capsys, ["cluster", str(path), "--method", "components", "--bipartite",
                                "--source", "buyer_id", "--target", "seller_id", "--json"])
    assert summary["n_units"] == 1_000
    members = tmp_path / "members.parquet"
    synth.collaboration_memberships(synth.collaboration_network(500, seed=1)).to_parquet(members)
    summary = run_json(capsys, ["cluster", str(members), "--method", "components", "--memberships", "--json"])
    assert summary["n_units"] == 500 and summary["cut_fraction"] == 0.0


def test_bad_input_exits_2_with_a_message(capsys, tmp_path):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"src": [1], "dst": [2]}).to_csv(path, index=False)
    assert main(["cluster", str(path), "--method", "components"]) == 2
    assert "missing column(s) ['source', 'target']" in capsys.readouterr().err


def test_console_script_is_installed():
    done = subprocess.run([sys.executable, "-m", "spillover.cli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and "spillover" in done.stdout


EVOLVE_KEYS = {"date", "created", "split", "merged", "removed", "merged_across_arms",
               "users_switched", "n_units", "n_components"}


@pytest.fixture(scope="module")
def collab_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("collab")
    days = synth.evolving_memberships(1_500, 3, churn=0.02, seed=5)
    paths = []
    for i, day in enumerate(days):
        paths.append(folder / f"day{i}.parquet")
        day.to_parquet(paths[-1], index=False)
    from spillover import CollaborationNetwork, cluster
    network = CollaborationNetwork.from_memberships(days[0])
    units = pd.DataFrame({"unit_id": network.users, "cluster_id": cluster(network, "components").labels,
                          "usage": network.user_data["usage"].to_numpy()})
    units.to_csv(folder / "units.csv", index=False)
    return folder, paths


def test_assign_writes_the_contract_columns_and_records_the_ledger(capsys, collab_files, tmp_path):
    folder, _ = collab_files
    out, ledger_path = tmp_path / "assignment.parquet", tmp_path / "l.duckdb"
    summary = run_json(capsys, ["assign", "--units", str(folder / "units.csv"), "--design", "stratified-cluster",
                                "--strata-by", "size,usage", "--n-bins", "2", "--sample-fraction", "0.4",
                                "--seed", "3", "--experiment", "exp", "--ledger", str(ledger_path), "--out", str(out),
                                "--json"])
    assignment = pd.read_parquet(out)
    assert list(assignment.columns) == ["unit_id", "cluster_id", "arm"]
    assert set(assignment["arm"]) == {0, 1}  # units not sampled are left out
    assert summary["n_in_experiment"] == len(assignment)
    from spillover.ledger import Ledger
    with Ledger(ledger_path) as ledger:
        stored = ledger.current_arms("exp")
    assert len(stored) == summary["n_units"]
    merged = assignment.merge(stored, on="unit_id", suffixes=("", "_ledger"))
    assert (merged["arm"] == merged["arm_ledger"]).all()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--design", "cluster", "--cluster-col", "team"], "no cluster column 'team'"),
        (["--design", "stratified-cluster", "--sample-fraction", "1.5"], "--sample-fraction: 1.5 is outside (0, 1]"),
        (["--design", "stratified-cluster", "--sample-fraction", "0.01", "--n-bins", "4"], "too few to split"),
    ],
)
def test_assign_bad_input_is_refused_and_nothing_is_written(capsys, collab_files, tmp_path, flags, message):
    folder, _ = collab_files
    ledger_path = tmp_path / "l.duckdb"
    code = main(["assign", "--units", str(folder / "units.csv"), *flags, "--ledger", str(ledger_path), "--salt", "x"])
    assert code == 2
    assert message in capsys.readouterr().err.replace("\n", " ")
    assert not ledger_path.exists()


def test_evolve_runs_day_by_day_with_the_contract_keys(capsys, collab_files, tmp_path):
    _, paths = collab_files
    ledger_path = str(tmp_path / "l.duckdb")
    first = run_json(capsys, ["evolve", "--ledger", ledger_path, "--snapshot", str(paths[0]), "--date", "2026-05-01",
                              "--design", "stratified-cluster", "--sample-fraction", "0.5", "--salt", "exp", "--json"])
    assert EVOLVE_KEYS <= set(first) and first["created"] == first["n_components"]
    for i, path in enumerate(paths[1:], start=2):
        report = run_json(capsys, ["evolve", "--ledger", ledger_path, "--snapshot", str(path), "--date", f"2026-05-0{i}", "--json"])
        assert EVOLVE_KEYS <= set(report) and report["date"] == f"2026-05-0{i}"
    assert main(["evolve", "--ledger", ledger_path, "--snapshot", str(paths[0]), "--date", "2026-04-01"]) == 2
    assert "never rewrites history" in capsys.readouterr().err


def test_evolve_first_snapshot_needs_design_flags(capsys, collab_files, tmp_path):
    _, paths = collab_files
    assert main(["evolve", "--ledger", str(tmp_path / "l.duckdb"), "--snapshot", str(paths[0]), "--date", "2026-05-01"]) == 2
    assert "needs the design flags" in capsys.readouterr().err


EXPOSURE_COLUMNS = ["unit_id", "arm", "n_neighbors", "n_treated_neighbors", "treated_fraction", "condition"]
EFFECT_KEYS = {"estimand", "condition", "estimate", "se", "ci_low", "ci_high", "p_value", "n_units", "n_clusters", "method"}


@pytest.fixture(scope="module")
def experiment_files(tmp_path_factory):
    import numpy as np
    from spillover import SocialGraph
    from spillover.design import IndividualDesign

    folder = tmp_path_factory.mktemp("experiment")
    source = synth.social_graph(1_500, mean_degree=4, seed=3)
    edges = synth.edge_table(source)
    edges.to_csv(folder / "edges.csv", index=False)
    graph = SocialGraph.from_edges(edges)
    assignment = IndividualDesign(graph.nodes, 0.3).assign(seed=1)
    assignment.to_frame().to_csv(folder / "assignment.csv", index=False)
    rng = np.random.default_rng(0)
    y = rng.normal(size=graph.n_nodes) + assignment.arms
    pd.DataFrame({"unit_id": graph.nodes, "y": y}).to_csv(folder / "outcomes.csv", index=False)
    communities = source.node_data["community"].reindex(graph.nodes).to_numpy()
    pd.DataFrame({"unit_id": graph.nodes, "cluster_id": communities}).to_csv(folder / "clusters.csv", index=False)
    draws = IndividualDesign(graph.nodes, 0.3).draw(300, seed=2)
    pd.DataFrame(draws.T, columns=[str(u) for u in graph.nodes]).to_parquet(folder / "draws.parquet")
    return folder


def test_exposure_command_writes_the_contract_columns(capsys, experiment_files, tmp_path):
    out = tmp_path / "exposure.parquet"
    summary = run_json(capsys, ["exposure", str(experiment_files / "edges.csv"), "--assignment",
                                str(experiment_files / "assignment.csv"), "--mapping", "as4", "--out", str(out), "--json"])
    table = pd.read_parquet(out)
    # the contract's columns in order, then each unit's randomization unit (the assignment's cluster_id)
    assert list(table.columns) == EXPOSURE_COLUMNS + ["cluster_id"]
    assignment = pd.read_csv(experiment_files / "assignment.csv")
    assert table.set_index("unit_id")["cluster_id"].reindex(assignment["unit_id"]).tolist() == \
        assignment["cluster_id"].tolist()
    assert set(summary["conditions"]) == {"dir_ind1", "isol_dir", "ind1", "no"}
    assert sum(summary["conditions"].values()) == len(table)


@pytest.mark.parametrize("method, extra", [
    ("difference-in-means", ["--ignore-design"]),  # refused on an exposure mapping unless asked for explicitly
    ("ols-cluster", ["--clusters", "CLUSTERS"]),
    ("cluster-means", ["--clusters", "CLUSTERS"]),
    ("hajek", ["--edges", "EDGES", "--mapping", "as4", "--draws", "DRAWS", "--prob-correction", "add-one"]),
    ("ht", ["--edges", "EDGES", "--mapping", "as4", "--design", "individual", "--treat-fraction", "0.3",
            "--n-draws", "300", "--prob-correction", "add-one"]),
])
@pytest.mark.filterwarnings("ignore::spillover.errors.PositivityWarning")
def test_estimate_command_prints_one_row_per_contrast(capsys, experiment_files, tmp_path, method, extra):
    exposure_path = tmp_path / "exposure.csv"
    assert main(["exposure", str(experiment_files / "edges.csv"), "--assignment", str(experiment_files / "assignment.csv"),
                 "--mapping", "as4", "--out", str(exposure_path)]) == 0
    capsys.readouterr()
    paths = {"CLUSTERS": experiment_files / "clusters.csv", "EDGES": experiment_files / "edges.csv",
             "DRAWS": experiment_files / "draws.parquet"}
    extra = [str(paths.get(v, v)) for v in extra]
    result = run_json(capsys, ["estimate", "--outcomes", str(experiment_files / "outcomes.csv"), "--exposure",
                               str(exposure_path), "--method", method, *extra, "--json"])
    assert result["control"] == "no"
    assert {row["condition"] for row in result["effects"]} == {"dir_ind1", "isol_dir", "ind1"}
    for row in result["effects"]:
        assert EFFECT_KEYS <= set(row)
        assert row["ci_low"] <= row["estimate"] <= row["ci_high"]
        assert row["method"].endswith("[ignores the design]") == (method == "difference-in-means")


def test_estimate_reads_the_design_from_the_data_and_refuses_without_arms(capsys, experiment_files, tmp_path):
    """The assignment CSV was written by pandas (no .design.json): the design is read from
    the arms (each unit its own cluster: units randomized one by one) and the notes say
    so; with no arms at all, design-based methods need the design or its draws."""
    exposure_path = tmp_path / "exposure.csv"
    main(["exposure", str(experiment_files / "edges.csv"), "--assignment", str(experiment_files / "assignment.csv"),
          "--mapping", "as4", "--out", str(exposure_path)])
    capsys.readouterr()
    result = run_json(capsys, ["estimate", "--outcomes", str(experiment_files / "outcomes.csv"), "--exposure",
                               str(exposure_path), "--method", "ht", "--edges", str(experiment_files / "edges.csv"),
                               "--prob-correction", "add-one", "--json"])
    assert any(note.startswith("design: individual design (inferred)") for note in result["notes"])
    bare = pd.read_csv(exposure_path)[["unit_id", "condition"]]
    bare.to_csv(tmp_path / "bare.csv", index=False)
    assert main(["estimate", "--outcomes", str(experiment_files / "outcomes.csv"), "--exposure", str(tmp_path / "bare.csv"),
                 "--method", "ht", "--edges", str(experiment_files / "edges.csv")]) == 2
    assert "needs the design's draws" in capsys.readouterr().err
    assert main(["estimate", "--outcomes", str(experiment_files / "outcomes.csv"), "--exposure",
                 str(exposure_path), "--method", "difference-in-means"]) == 2
    assert "--method hajek" in capsys.readouterr().err  # an exposure mapping's groups need the design's weights


@pytest.mark.parametrize("command", [
    ["cluster", "EDGES", "--method", "components", "--out", "EDGES"],
    ["exposure", "EDGES", "--assignment", "ASSIGNMENT", "--mapping", "as4", "--out", "ASSIGNMENT"],
])
def test_an_output_path_equal_to_an_input_is_refused_and_nothing_is_written(capsys, tmp_path, command):
    edges = tmp_path / "edges.csv"
    pd.DataFrame({"source": [1, 2], "target": [2, 3]}).to_csv(edges, index=False)
    assignment = tmp_path / "assignment.csv"
    pd.DataFrame({"unit_id": [1, 2, 3], "arm": [0, 1, 0]}).to_csv(assignment, index=False)
    before = {p: p.read_bytes() for p in (edges, assignment)}
    argv = [str({"EDGES": edges, "ASSIGNMENT": assignment}.get(v, v)) for v in command]
    assert main(argv) == 2
    assert "would destroy it" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in (edges, assignment)} == before



@pytest.mark.parametrize("argv, message", [
    (["assign", "--units", "U", "--design", "individual"], "exactly one of --seed"),
    (["assign", "--units", "U", "--design", "individual", "--seed", "1", "--salt", "s"], "exactly one of --seed"),
    (["assign", "--units", "U", "--design", "individual", "--seed", "-1"], "--seed: -1 is outside [0, inf]"),
    (["simulate", "--n-sims", "0"], "--n-sims: 0 is outside [2, inf]"),
    (["simulate", "--tau", "nan"], "--tau: 'nan' is not a finite number"),
    (["simulate", "--users", "0"], "--users: 0 is outside [100, inf]"),
    (["estimate", "--outcomes", "O", "--exposure", "E", "--method", "ht", "--alpha", "0"], "--alpha: 0 is outside (0, 1)"),
    (["estimate", "--outcomes", "O", "--exposure", "E", "--method", "ht", "--n-draws", "0"], "--n-draws: 0 is outside"),
    (["cluster", "E", "--method", "louvain", "--resolution", "-1"], "--resolution: -1 is outside (0, inf]"),
    (["assign", "--units", "U", "--design", "stratified-cluster", "--seed", "1", "--n-bins", "-3"], "--n-bins: -3"),
])
def test_out_of_range_flags_exit_2_with_a_message_and_no_traceback(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_arms_that_are_not_arms_are_refused():
    from spillover import InputError, SocialGraph
    from spillover.exposure import exposure

    graph = SocialGraph.from_edges(pd.DataFrame({"source": [1, 2], "target": [2, 3]}))
    for arms in ([0, 0.5, 1], [0, 7, -3]):
        with pytest.raises(InputError, match="is not an arm"):
            exposure(graph, pd.DataFrame({"unit_id": [1, 2, 3], "arm": arms}), "as4")


def test_design_draws_zero_leaves_the_aronow_samii_error_alone(capsys, tmp_path):
    """estimate --design-draws: by default Hajek's standard error is never below the
    Aronow-Samii one and its note names the design simulation; with 0 the note says the
    bound alone, and no standard error is larger than the default's."""
    import numpy as np

    from spillover.design import IndividualDesign
    from spillover.exposure import exposure

    graph = synth.social_graph(600, seed=3)
    edges, table_path, outcomes = (str(tmp_path / name) for name in ("e.parquet", "x.parquet", "y.parquet"))
    synth.edge_table(graph).to_parquet(edges)
    table = exposure(graph, IndividualDesign(graph.nodes, 0.5).assign(seed=1), "as4")
    from spillover.io import write_table

    write_table(table, table_path)
    pd.DataFrame({"unit_id": table["unit_id"], "y": np.random.default_rng(2).normal(size=len(table))}).to_parquet(outcomes)
    out = {}
    for draws in ("400", "0"):
        assert main(["estimate", "--outcomes", outcomes, "--exposure", table_path, "--edges", edges,
                     "--method", "hajek", "--design-draws", draws, "--json"]) == 0, capsys.readouterr().err
        out[draws] = json.loads(capsys.readouterr().out)
    assert any("fresh draws of the design" in note for note in out["400"]["notes"])
    assert not any("fresh draws of the design" in note for note in out["0"]["notes"])
    se = {d: {r["condition"]: r["se"] for r in out[d]["effects"]} for d in out}
    assert se["400"].keys() == se["0"].keys() and all(se["400"][c] >= se["0"][c] - 1e-12 for c in se["0"])
