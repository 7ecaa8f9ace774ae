"""Graph loading: id mapping, CSR storage and validation of bad input."""

from __future__ import annotations

import warnings

import networkx as nx
import pandas as pd
import pytest

from spillover import BipartiteGraph, CollaborationNetwork, DataWarning, InputError, SocialGraph
from spillover.graph import read_table


def test_social_graph_maps_string_ids_and_is_symmetric(tiny_edges):
    graph = SocialGraph.from_edges(tiny_edges)
    assert list(graph.nodes) == ["a", "b", "c", "e", "f"]
    assert graph.n_nodes == 5 and graph.n_edges == 4
    dense = graph.adjacency.toarray()
    assert (dense == dense.T).all() and dense.trace() == 0
    reference = nx.Graph(list(zip(tiny_edges.source, tiny_edges.target)))
    assert sorted(map(tuple, map(sorted, reference.edges()))) == sorted(
        (graph.nodes[s], graph.nodes[t]) for s, t in zip(*graph.edge_index())
    )


def test_row_order_does_not_change_the_graph(tiny_edges):
    shuffled = tiny_edges.sample(frac=1.0, random_state=3).rename(columns={"source": "target", "target": "source"})
    a, b = SocialGraph.from_edges(tiny_edges), SocialGraph.from_edges(shuffled)
    assert list(a.nodes) == list(b.nodes)
    assert (a.adjacency != b.adjacency).nnz == 0


def test_self_loops_are_dropped_with_a_warning_naming_the_row():
    edges = pd.DataFrame({"source": [1, 2, 3], "target": [2, 2, 1]})
    with pytest.warns(DataWarning, match=r"dropped 1 self-loop.*row 1"):
        graph = SocialGraph.from_edges(edges)
    assert graph.n_edges == 2


def test_duplicate_edges_in_either_direction_collapse_with_a_warning():
    edges = pd.DataFrame({"source": [1, 2, 1, 3], "target": [2, 1, 2, 1]})
    with pytest.warns(DataWarning, match=r"collapsed 2 duplicate edge.*row 1"):
        graph = SocialGraph.from_edges(edges)
    assert graph.n_edges == 2
    assert graph.adjacency.max() == 1


def test_directed_graph_keeps_both_directions_as_distinct_edges():
    edges = pd.DataFrame({"source": [1, 2], "target": [2, 1]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph = SocialGraph.from_edges(edges, directed=True)
    assert graph.n_edges == 2
    assert graph.symmetric().nnz == 2


def test_missing_column_is_named():
    with pytest.raises(InputError, match=r"missing column\(s\) \['target'\]"):
        SocialGraph.from_edges(pd.DataFrame({"source": [1], "dst": [2]}))


def test_null_id_names_the_column_and_row():
    edges = pd.DataFrame({"source": [1, 2, None], "target": [2, 3, 4]})
    with pytest.raises(InputError, match=r"column 'source' has a missing id in row 2"):
        SocialGraph.from_edges(edges)


def test_empty_graph_is_an_error():
    with pytest.raises(InputError, match="empty"):
        SocialGraph.from_edges(pd.DataFrame({"source": [], "target": []}))


def test_isolated_nodes_can_be_added():
    graph = SocialGraph.from_edges(pd.DataFrame({"source": [1], "target": [2]}), nodes=[1, 2, 3])
    assert graph.n_nodes == 3 and graph.degrees().tolist() == [1, 1, 0]


def test_csv_and_parquet_load_the_same_graph(tmp_path, tiny_edges):
    tiny_edges.to_csv(tmp_path / "e.csv", index=False)
    tiny_edges.to_parquet(tmp_path / "e.parquet", index=False)
    a = SocialGraph.from_edges(tmp_path / "e.csv")
    b = SocialGraph.from_edges(tmp_path / "e.parquet")
    assert list(a.nodes) == list(b.nodes) and (a.adjacency != b.adjacency).nnz == 0


def test_unreadable_paths_are_named(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "edges.weird").write_text("a b\n")  # .txt is SNAP-style text now; this says nothing
    with pytest.raises(InputError, match=r"cannot tell the format of .*edges\.weird.*--format"):
        read_table(tmp_path / "edges.weird")


def test_unknown_node_ids_are_an_error(tiny_edges):
    graph = SocialGraph.from_edges(tiny_edges)
    assert graph.index_of(["c", "a"]).tolist() == [2, 0]
    with pytest.raises(InputError, match=r"unknown id.*'zz'"):
        graph.index_of(["a", "zz"])


def test_bipartite_graph_collapses_duplicate_links():
    edges = pd.DataFrame({"buyer": ["x", "x", "y", "x"], "seller": [1, 2, 2, 1]})
    with pytest.warns(DataWarning, match=r"collapsed 1 duplicate link.*row 3"):
        graph = BipartiteGraph.from_edges(edges, unit="buyer", treated="seller")
    assert graph.incidence.shape == (2, 2) and graph.n_edges == 3
    assert graph.unit_degrees().tolist() == [2, 1]


MEMBERSHIPS = pd.DataFrame(
    {
        "user_id": ["u1", "u2", "u2", "u3", "u4"],
        "project_id": ["p1", "p1", "p2", "p3", "p3"],
        "account_id": ["a1", "a1", "a1", "a2", "a2"],
        "usage": [1.0, 2.0, 2.0, 3.0, 4.0],
    }
)


def test_collaboration_network_from_memberships():
    network = CollaborationNetwork.from_memberships(MEMBERSHIPS)
    assert network.n_users == 4 and network.n_projects == 3 and len(network.accounts) == 2
    assert network.accounts[network.project_account].tolist() == ["a1", "a1", "a2"]
    assert network.user_data.loc["u2", "usage"] == 2.0
    users = network.user_graph()
    assert sorted((users.nodes[s], users.nodes[t]) for s, t in zip(*users.edge_index())) == [
        ("u1", "u2"),
        ("u3", "u4"),
    ]


def test_collaboration_network_with_a_separate_projects_table():
    projects = pd.DataFrame({"project_id": ["p1", "p2", "p3"], "account_id": [10, 10, 11]})
    network = CollaborationNetwork.from_memberships(MEMBERSHIPS.drop(columns="account_id"), projects)
    assert network.accounts[network.project_account].tolist() == [10, 10, 11]


def test_project_without_account_is_an_error_naming_it():
    bad = MEMBERSHIPS.copy()
    bad.loc[3, "account_id"] = None
    with pytest.raises(InputError, match=r"project 'p3' in row 3 has no account"):
        CollaborationNetwork.from_memberships(bad)
    projects = pd.DataFrame({"project_id": ["p1", "p2"], "account_id": [10, 10]})
    with pytest.raises(InputError, match=r"project 'p3' \(row 3\) is missing"):
        CollaborationNetwork.from_memberships(MEMBERSHIPS.drop(columns="account_id"), projects)
    with pytest.raises(InputError, match="no 'account_id' column"):
        CollaborationNetwork.from_memberships(MEMBERSHIPS.drop(columns="account_id"))


def test_project_with_two_accounts_is_an_error():
    bad = MEMBERSHIPS.copy()
    bad.loc[1, "account_id"] = "a9"
    with pytest.raises(InputError, match=r"project 'p1' belongs to several accounts"):
        CollaborationNetwork.from_memberships(bad)


def test_conflicting_per_user_values_are_an_error():
    bad = MEMBERSHIPS.copy()
    bad.loc[2, "usage"] = 99.0
    with pytest.raises(InputError, match=r"user 'u2' has conflicting values"):
        CollaborationNetwork.from_memberships(bad)


def test_primary_project_is_the_users_largest_project():
    network = CollaborationNetwork.from_memberships(MEMBERSHIPS)
    primary = network.projects[network.primary_project()].tolist()
    assert primary == ["p1", "p1", "p3", "p3"]  # u2's p1 has two users, p2 one


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_table_is_atomic(tmp_path, monkeypatch, suffix):
    from spillover.graph import write_table

    path = tmp_path / f"table{suffix}"
    write_table(pd.DataFrame({"a": [1, 2]}), path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")  # a failure in the middle of writing

    if suffix == ".csv":
        monkeypatch.setattr(pd.DataFrame, "to_csv", crash)
    else:  # Parquet is written by pyarrow (with the table's design in its metadata)
        import pyarrow.parquet as pq

        monkeypatch.setattr(pq, "write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        write_table(pd.DataFrame({"a": [3, 4, 5]}), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "no partial file left behind"
