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
