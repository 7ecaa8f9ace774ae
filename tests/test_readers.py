"""Files as people have them load as they are: SNAP edge lists (tab, # comments, no
header), MovieLens' u.data (tab, no header, four columns), header-less CSVs (no row
lost), Matrix Market, GraphML and GML."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from spillover import InputError, load_graph
from spillover.cli import main
from spillover.io import ReadOptions, read_table

SNAP = ("# Directed graph (each unordered pair of nodes is saved once): CA-GrQc.txt\n"
        "# Collaboration network of Arxiv General Relativity category\n"
        "# Nodes: 6 Edges: 5\n"
        "# FromNodeId\tToNodeId\n"
        "3466\t937\n3466\t5233\n3466\t8579\n937\t5233\n10310\t1854\n")
U_DATA = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n244\t51\t2\t880606923\n196\t377\t4\t881250950\n"


def run_json(capsys, argv):
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_a_snap_edge_list_loads_with_one_option_and_keeps_every_edge(tmp_path, capsys):
    (tmp_path / "ca-grqc.data").write_text(SNAP)  # an extension that says nothing: --format snap says it
    graph = load_graph(tmp_path / "ca-grqc.data", options=ReadOptions("snap"))
    assert graph.n_edges == 5 and set(graph.nodes) == {3466, 937, 5233, 8579, 10310, 1854}
    summary = run_json(capsys, ["cluster", str(tmp_path / "ca-grqc.data"), "--format", "snap", "--method",
                                "components", "--json"])
    assert (summary["n_units"], summary["n_edges"], summary["n_clusters"]) == (6, 5, 2)
    (tmp_path / "ca-grqc.txt").write_text(SNAP)  # .txt is read as SNAP-style text without being told
    assert load_graph(tmp_path / "ca-grqc.txt").n_edges == 5


def test_movielens_u_data_loads_as_a_bipartite_graph_with_one_option(tmp_path, capsys):
    (tmp_path / "u.data").write_text(U_DATA)
    market = load_graph(tmp_path / "u.data", bipartite=True, options=ReadOptions("snap"))
    assert (market.n_units, market.n_treated_side, market.n_edges) == (4, 4, 5)  # users x movies
    table = read_table(tmp_path / "u.data", ids=("source", "target"), options=ReadOptions("snap"))
    assert table.columns.tolist() == ["source", "target", "2", "3"] and table["2"].dtype.kind == "i"  # the rating
    summary = run_json(capsys, ["cluster", str(tmp_path / "u.data"), "--format", "snap", "--bipartite", "--method",
                                "components", "--json"])
    assert summary["n_edges"] == 5


def test_a_header_less_file_keeps_every_row_or_is_refused_before_losing_one(tmp_path, capsys):
    (tmp_path / "edges.csv").write_text("0,23977\n0,1\n1,2\n")
    # read with a header, the first edge would become the column names: refused, naming the fix
    assert main(["cluster", str(tmp_path / "edges.csv"), "--method", "components", "--source", "0",
                 "--target", "23977"]) == 2
    assert "pass --no-header" in capsys.readouterr().err
    with pytest.raises(InputError, match="is all numbers: it is data, not a header"):
        load_graph(tmp_path / "edges.csv", "0", "23977")
    graph = load_graph(tmp_path / "edges.csv", options=ReadOptions(header=False))
    assert graph.n_edges == 3 and 23977 in set(graph.nodes)
    summary = run_json(capsys, ["cluster", str(tmp_path / "edges.csv"), "--method", "components", "--no-header",
                                "--json"])
    assert summary["n_edges"] == 3
    # columns by position, the ends among others
    (tmp_path / "wide.tsv").write_text("x\t10\t20\nx\t20\t30\n")
    wide = load_graph(tmp_path / "wide.tsv", "1", "2", options=ReadOptions("tsv", header=False))
    assert wide.n_edges == 2


def test_matrix_market_graphml_and_gml_read_as_edge_lists(tmp_path):
    karate = nx.karate_club_graph()
    matrix = sp.coo_matrix(nx.to_scipy_sparse_array(karate, nodelist=range(34), weight=None))
    scipy.io.mmwrite(tmp_path / "karate.mtx", sp.triu(matrix))
    nx.write_graphml(karate, tmp_path / "karate.graphml")
    nx.write_gml(karate, tmp_path / "karate.gml")
    for name in ("karate.mtx", "karate.graphml", "karate.gml"):
        graph = load_graph(tmp_path / name)
        assert (graph.n_nodes, graph.n_edges) == (34, 78), name
    degrees = load_graph(tmp_path / "karate.mtx").degrees()
    np.testing.assert_array_equal(np.sort(degrees), np.sort([d for _, d in karate.degree()]))


def test_a_separator_and_a_comment_prefix_of_ones_own(tmp_path):
    (tmp_path / "edges.csv").write_text("% exported by a tool\nsource;target\na;b\nb;c\n")
    graph = load_graph(tmp_path / "edges.csv", options=ReadOptions(sep=";", comment="%"))
    assert graph.n_edges == 2
    (tmp_path / "edges.weird").write_text("a b\n")
    with pytest.raises(InputError, match="cannot tell the format of .*name it with --format"):
        load_graph(tmp_path / "edges.weird")


def test_the_bring_your_own_graph_page_runs_as_printed(capsys):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "byog.md").read_text()
    exec(compile("\n".join(re.findall(r"```python\n(.*?)```", text, re.S)), "byog.md", "exec"), {})
    assert capsys.readouterr().out.split() == ["5", "4", "2", "2"]


def test_an_assignment_of_another_graph_is_an_error_with_the_counts(tmp_path):
    from spillover.design import IndividualDesign
    from spillover.exposure import exposure

    graph = load_graph(pd.DataFrame({"source": range(0, 100), "target": range(1, 101)}))
    other = IndividualDesign(range(1_000, 1_080)).assign(seed=1).to_frame()
    other = pd.concat([other, pd.DataFrame({"unit_id": range(10), "cluster_id": range(10), "arm": 0})])
    with pytest.raises(InputError, match=r"80 of its 90 ids are not in the graph, and 91 of the graph's 101 nodes "
                                         r"are not in it"):
        exposure(graph, other, "fraction")
    # units with no edge beside a graph the table covers: isolates, kept with a warning
    mostly_isolated = IndividualDesign(range(0, 300)).assign(seed=1)
    with pytest.warns(Warning, match="199 of its 300 ids have no edge in the graph"):
        assert len(exposure(graph, mostly_isolated, "fraction")) == 300
