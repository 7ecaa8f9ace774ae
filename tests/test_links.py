"""The sort-based CSR build of link lists (``spillover.links``), against scipy's COO
conversion, and the Parquet path of the graph loaders against their DataFrame path."""

from __future__ import annotations

import warnings

import networkx as nx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

import spillover.links as links
from spillover import BipartiteGraph, DataWarning, InputError, SocialGraph
from spillover.io import id_type, integer_columns


def _reference(rows, cols, shape):
    """scipy's construction: COO -> CSR, repeats summed, then set to 1."""
    matrix = sp.csr_array((np.ones(rows.size, dtype=np.int64), (rows, cols)), shape=shape)
    matrix.sum_duplicates()
    return matrix, rows.size - matrix.nnz


@pytest.mark.parametrize("chunk", [3, 1 << 21])
def test_link_matrix_equals_scipys_construction(monkeypatch, chunk):
    """Random link lists, many with repeats (some with most links repeated, which takes the
    copying path), cut into parts of random sizes, with chunks smaller than a part."""
    monkeypatch.setattr(links, "LINK_CHUNK", chunk)
    rng = np.random.default_rng(7)
    for trial in range(200):
        n, n_rows, n_cols = int(rng.integers(1, 300)), int(rng.integers(1, 40)), int(rng.integers(1, 40))
        rows, cols = rng.integers(0, n_rows, n), rng.integers(0, n_cols, n).astype(np.int32)
        if trial % 4 == 0:  # every link listed four times
            rows, cols = np.repeat(rows, 4)[:n], np.repeat(cols, 4)[:n]
        cuts = np.sort(rng.integers(0, n, int(rng.integers(0, 4))))
        pieces = list(zip(np.split(rows, cuts), np.split(cols, cuts)))
        matrix, n_repeat, repeat = links.link_matrix(pieces, n, (n_rows, n_cols))
        expected, expected_repeat = _reference(rows, cols, (n_rows, n_cols))
        assert n_repeat == expected_repeat
        assert np.array_equal(matrix.indptr, expected.indptr) and np.array_equal(matrix.indices, expected.indices)
        assert (matrix.data == 1).all() and matrix.data.dtype == links.EDGE_DTYPE
        if n_repeat:
            row, col = repeat
            assert ((rows == row) & (cols == col)).sum() >= 2
            second = links.second_match([p for p, _ in pieces], [q for _, q in pieces], row, col)
            assert second == np.flatnonzero((rows == row) & (cols == col))[1]
        else:
            assert repeat is None


def test_drop_empty_keeps_the_rows_and_columns_in_use():
    rng = np.random.default_rng(3)
    dense = (rng.random((30, 20)) < 0.05).astype(np.int32)
    dense[4] = 0
    dense[:, 7] = 0
    kept, rows, cols = links.drop_empty(sp.csr_array(dense))
    assert np.array_equal(rows, np.flatnonzero(dense.any(axis=1)))
    assert np.array_equal(cols, np.flatnonzero(dense.any(axis=0)))
    assert np.array_equal(kept.toarray(), dense[np.ix_(rows, cols)])


def _loaded(load, *sources):
    """``load`` of each source, with the DataWarnings each gave (less the source's name)."""
    graphs, messages = [], []
    for source in sources:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            graphs.append(load(source))
        messages.append([str(w.message).split(": ", 1)[1] for w in caught if issubclass(w.category, DataWarning)])
    return graphs, messages


def _links(n: int, seed: int, ids) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"buyer_id": ids(rng.integers(0, n // 3, n)), "seller_id": ids(rng.integers(0, n // 20, n))})
    return pd.concat([frame, frame.iloc[[5, 17]]], ignore_index=True)  # repeats, beyond those drawn by chance


@pytest.mark.parametrize("ids", [
    pytest.param(lambda a: a, id="compact integers"),
    pytest.param(lambda a: a * 1_000_003 + 10**12, id="sparse integers"),
    pytest.param(lambda a: a.astype(np.int32) - 50, id="negative integers"),
    pytest.param(lambda a: np.array([f"u{v}" for v in a], dtype=object), id="text"),
])
def test_a_parquet_file_and_its_frame_give_the_same_graph(tmp_path, ids):
    """The Parquet path reads the id columns' record batches without pandas; it must give
    what the DataFrame gives: the same ids, links and warning (count and row)."""
    frame = _links(20_000, 1, ids)
    path = tmp_path / "links.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=3_000)
    (from_frame, from_file), messages = _loaded(lambda source: BipartiteGraph.from_edges(
        source, unit="buyer_id", treated="seller_id"), frame, path)
    assert from_frame.units.equals(from_file.units) and from_frame.treated.equals(from_file.treated)
    assert from_frame.units.is_monotonic_increasing
    assert (from_frame.incidence != from_file.incidence).nnz == 0
    expected = frame.drop_duplicates()
    assert messages[0] == messages[1] == [messages[0][0]]
    assert messages[0][0].startswith(f"collapsed {len(frame) - len(expected)} duplicate link(s), e.g. row ")
    row = int(messages[0][0].split("row ")[1].split()[0])
    assert frame.duplicated().iloc[row]  # the row named repeats an earlier one
    assert from_file.n_edges == len(expected)


def test_the_parquet_path_steps_aside_for_what_the_reader_must_judge(tmp_path):
    """Missing values, a missing column, or ids typed by --id-type: the table is read as
    before, and its errors name the problem."""
    path = tmp_path / "links.parquet"
    pq.write_table(pa.table({"buyer_id": pa.array([1, None, 3], pa.int64()), "seller_id": [1, 2, 3]}), path)
    assert integer_columns(path, ["buyer_id", "seller_id"]) is None
    with pytest.raises(InputError, match="missing"):
        BipartiteGraph.from_edges(path, unit="buyer_id", treated="seller_id")
    pq.write_table(pa.table({"buyer_id": [1, 2, 3], "seller_id": [1, 2, 3]}), path)
    assert integer_columns(path, ["buyer_id", "nope"]) is None
    with pytest.raises(InputError, match="nope"):
        BipartiteGraph.from_edges(path, unit="buyer_id", treated="nope")
    with id_type("int"):  # the policy's own checks (18 digits at most) apply
        assert integer_columns(path, ["buyer_id", "seller_id"]) is None
    with id_type("str"):
        assert integer_columns(path, ["buyer_id", "seller_id"]) is None
        assert BipartiteGraph.from_edges(path, unit="buyer_id", treated="seller_id").units.tolist() == ["1", "2", "3"]
    assert [len(c) for c in integer_columns(path, ["buyer_id", "seller_id"])] == [1, 1]


@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("ids", [
    pytest.param(lambda a: a, id="compact integers"),
    pytest.param(lambda a: a * 1_000_003 + 10**12, id="sparse integers"),
    pytest.param(lambda a: np.array([f"n{v}" for v in a], dtype=object), id="text"),
])
def test_a_social_graph_from_parquet_equals_the_one_from_its_frame(tmp_path, ids, directed):
    """Self-loops (one node seen only in a loop), edges repeated in either direction: the
    Parquet path and the DataFrame path give the same nodes, adjacency and warnings; and
    the adjacency is what networkx builds from the same edges."""
    rng = np.random.default_rng(4)
    a, b = rng.integers(0, 3_000, 20_000), rng.integers(0, 3_000, 20_000)
    a[:3], b[:3] = [5_000, 7, 8], [5_000, 8, 7]  # a node only in a self-loop; an edge listed both ways
    frame = pd.DataFrame({"source": ids(a), "target": ids(b)})
    path = tmp_path / "edges.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=2_500)
    (from_frame, from_file), messages = _loaded(lambda source: SocialGraph.from_edges(source, directed=directed),
                                                frame, path)
    assert from_frame.nodes.equals(from_file.nodes) and (from_frame.adjacency != from_file.adjacency).nnz == 0
    assert messages[0] == messages[1] and len(messages[0]) == 2
    assert messages[0][0].startswith(f"dropped {int((a == b).sum())} self-loop(s), e.g. row 0 ")
    assert ids(np.array([5_000]))[0] in from_file.nodes  # kept, as an isolated node
    reference = (nx.DiGraph if directed else nx.Graph)()
    reference.add_nodes_from(frame["source"].tolist() + frame["target"].tolist())
    reference.add_edges_from((s, t) for s, t in zip(frame["source"], frame["target"]) if s != t)
    expected = nx.to_scipy_sparse_array(reference, nodelist=list(from_file.nodes), dtype=np.int32)
    assert (sp.csr_array(expected) != from_file.adjacency).nnz == 0
    n_kept = int((a != b).sum())
    assert messages[0][1].startswith(f"collapsed {n_kept - reference.number_of_edges()} duplicate edge(s)")
    row = int(messages[0][1].split("row ")[1].split()[0])
    pair = {frame["source"].iloc[row], frame["target"].iloc[row]} if not directed else None
    earlier = frame.iloc[:row]
    if directed:
        assert ((earlier["source"] == frame["source"].iloc[row]) & (earlier["target"] == frame["target"].iloc[row])).any()
    else:
        assert any({s, t} == pair for s, t in zip(earlier["source"], earlier["target"]))


def test_isolated_nodes_join_the_integer_id_space():
    graph = SocialGraph.from_edges(pd.DataFrame({"source": [1, 2], "target": [2, 3]}), nodes=[9, 1])
    assert graph.nodes.tolist() == [1, 2, 3, 9] and graph.degrees().tolist() == [1, 2, 1, 0]
