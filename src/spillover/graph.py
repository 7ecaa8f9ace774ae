"""Load and validate graphs: social graphs, bipartite graphs and collaboration networks.

Users pass ids of any hashable type; inside, every graph holds dense ``0..n-1`` indices,
a CSR matrix (``scipy.sparse.csr_array``) and a pandas ``Index`` that maps indices back to
ids. Input problems raise :class:`~spillover.errors.InputError` naming the column, the row
and what to do; repairs (self-loops dropped, duplicate edges collapsed) warn with
:class:`~spillover.errors.DataWarning`.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Hashable, Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import DataWarning, InputError, show_id
from .io import ID_COLUMNS, ID_TYPES, id_type, write_table  # noqa: F401 (their home was here)
from .io import ReadOptions, TableLike, integer_columns, read_table, require_columns, require_no_nulls, source_name
from .links import EDGE_DTYPE, drop_empty, link_matrix, restrict, second_match

__all__ = ["BipartiteGraph", "CollaborationNetwork", "ID_COLUMNS", "ID_TYPES", "SocialGraph", "id_type", "load_graph",
           "read_table", "report_isolates", "with_isolates", "write_table"]


def factorize_ids(values: pd.Series | np.ndarray | pd.Index, *, compact: bool = False) -> tuple[np.ndarray, pd.Index]:
    """Dense codes for ids, with the ids sorted when they are comparable.

    Sorting makes the index order independent of the row order of the input, so a seeded
    design gives the same assignment for the same graph however its edges were listed.
    Non-negative integer ids in a compact range take a counting path (several times
    faster than hashing on millions of edges). Codes are int64, or int32 with
    ``compact`` (what a sparse matrix's indices take without a copy) when they fit.
    """
    array = np.asarray(values)
    span = compact_range([array])
    if span is not None:
        present = np.zeros(span, dtype=bool)
        present[array] = True
        uniques = np.flatnonzero(present)
        small = compact and uniques.size < np.iinfo(np.int32).max
        position = np.cumsum(present, dtype=np.int32 if small else np.int64) - 1
        return position[array], pd.Index(uniques.astype(array.dtype, copy=False))
    try:
        codes, uniques = pd.factorize(values, sort=True)
    except TypeError:  # mixed id types (e.g. ints and strings) have no order
        codes, uniques = pd.factorize(values, sort=False)
    small = compact and len(uniques) < np.iinfo(np.int32).max
    return codes.astype(np.int32 if small else np.int64, copy=False), pd.Index(uniques)


def compact_range(parts: Sequence[np.ndarray]) -> int | None:
    """``max + 1`` of integer ids (given in parts) when they are non-negative and below four
    times their number plus 1,000: ids that can index an array directly (the counting
    path of :func:`factorize_ids`); None for other ids.

    >>> compact_range([np.array([3, 0]), np.array([7])]), compact_range([np.array([-1])]), compact_range([])
    (8, None, None)
    """
    parts = [part for part in parts if part.size]
    if not parts or any(part.dtype.kind not in "iu" for part in parts):
        return None
    low, high = min(int(part.min()) for part in parts), max(int(part.max()) for part in parts)
    return high + 1 if low >= 0 and high < 4 * sum(part.size for part in parts) + 1_000 else None


def _link_codes(parts: Sequence) -> tuple[list[np.ndarray], int, pd.Index | None]:
    """Ids given in parts (one end of a link list, or both ends of an edge list in one id
    space): the codes of each part, their range, and the ids of the codes. Integer ids in
    a compact range are their own codes (ids None: the caller keeps those present, with
    :func:`~spillover.links.drop_empty` or :func:`~spillover.links.restrict`), with
    nothing computed or copied; other ids are factorized, the parts joined."""
    arrays = [np.asarray(part) for part in parts]
    span = compact_range(arrays)
    if span is not None and span <= 1 << 31:  # each end's codes within 31 bits: a link's key within 62
        return arrays, span, None
    joined = parts[0] if len(parts) == 1 else pd.concat([pd.Series(part) for part in parts], ignore_index=True)
    codes, ids = factorize_ids(joined, compact=True)
    return np.split(codes, np.cumsum([len(part) for part in parts[:-1]])), len(ids), ids


def _end_parts(edges: TableLike, ends: tuple[str, str], what: str, options: ReadOptions | None) -> list[list]:
    """The two end columns of an edge list, each as a list of parts: a Parquet file's
    integer ids as its record batches (:func:`~spillover.io.integer_columns`: no pandas
    copy), else the columns of the table :func:`~spillover.io.read_table` reads, checked."""
    parts = integer_columns(edges, list(ends), options)
    if parts is None:
        frame = read_table(edges, what=what, ids=ends, options=options)
        require_columns(frame, list(ends), what)
        require_no_nulls(frame, list(ends), what)
        parts = [[frame[end]] for end in ends]
    return parts


def _value_at(parts: Sequence, position: int):
    """The value at ``position`` of a column given in parts."""
    for part in parts:
        if position < len(part):
            return part.iloc[position] if isinstance(part, pd.Series) else part[position]
        position -= len(part)
    raise IndexError(position)


def _simple_matrix(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> tuple[sp.csr_array, int, int]:
    """The 0/1 CSR matrix of the entries ``(rows, cols)``, with the number of repeated
    entries and the input position of one repeat (-1 when none).

    >>> matrix, n_repeat, example = _simple_matrix(np.array([1, 0, 1]), np.array([2, 1, 2]), (2, 3))
    >>> matrix.toarray().tolist(), n_repeat, example
    ([[0, 1, 0], [0, 0, 1]], 1, 2)
    """
    matrix, n_repeat, repeat = link_matrix([(rows, cols)], rows.size, shape)
    return matrix, n_repeat, -1 if repeat is None else second_match([rows], [cols], *repeat)


def csr_rows(matrix: sp.csr_array) -> np.ndarray:
    """Row index of every stored entry of a CSR matrix (cheaper than ``tocoo``)."""
    return np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))


def first_rows(codes: np.ndarray, n_codes: int) -> np.ndarray:
    """The first row of each code ``0 .. n_codes - 1`` (every one present), in linear time:
    what ``np.unique(codes, return_index=True)[1]`` gives, without its sort.

    >>> first_rows(np.array([2, 0, 2, 1, 0]), 3)
    array([1, 3, 0])
    """
    first = np.empty(n_codes, dtype=np.int64)
    first[codes[::-1]] = np.arange(codes.size - 1, -1, -1)  # the last write of each code is its first row
    return first


def group_indicator(codes: np.ndarray, n_groups: int) -> sp.csr_array:
    """``n_groups x n`` sparse indicator: row ``g`` marks the members of group ``g``."""
    return sp.csr_array((np.ones(codes.size), (codes, np.arange(codes.size))), shape=(n_groups, codes.size))


def _codes_for(index: pd.Index, ids: Iterable[Hashable] | pd.Series, what: str) -> np.ndarray:
    positions = index.get_indexer(pd.Index(ids))
    if (positions < 0).any():
        bad = pd.Index(ids)[positions < 0]
        raise InputError(
            f"{what}: {bad.size} unknown id(s), e.g. {list(bad[:5])}; "
            "they are not in the graph."
        )
    return positions


def report_isolates(n_new: int, n_ids: int, example: str, what: str, bipartite: bool, *,
                    graph_example: str | None = None, n_nodes: int | None = None,
                    n_nodes_unmatched: int | None = None) -> None:
    """The one rule for ids of ``what`` that the graph lacks, shared by every engine: none
    matching is an error (the wrong table, or ids typed differently), and so is a table
    whose ids are mostly not in the graph while most of the graph's ``n_nodes`` are not in
    the table (``n_nodes_unmatched``): a table of another graph. Otherwise the missing ids
    are a counted :class:`DataWarning`, kept as isolated nodes (units with no edge).

    Examples
    --------
    >>> report_isolates(0, 10, "'a'", "assignment", False)  # every id matches: nothing to say
    >>> try:
    ...     report_isolates(10, 10, "'a'", "assignment", False)
    ... except InputError as error:
    ...     print(str(error)[:47])
    assignment: none of its 10 ids is in the graph
    """
    if not n_new:
        return
    if n_new == n_ids:
        like = f" like {graph_example}" if graph_example is not None else ""
        raise InputError(f"{what}: none of its {n_ids:,} ids is in the graph (this table has ids like {example}, the "
                         f"graph{like}): is it the right table? Ids typed differently (text against numbers) can be "
                         "aligned with --id-type str.")
    if n_nodes and n_nodes_unmatched is not None and n_new > n_ids / 2 and n_nodes_unmatched > n_nodes / 2:
        raise InputError(f"{what}: {n_new:,} of its {n_ids:,} ids are not in the graph, and {n_nodes_unmatched:,} of "
                         f"the graph's {n_nodes:,} nodes are not in it (e.g. {example} against the graph's "
                         f"{graph_example}): a table of another graph? Check the files; ids typed differently can be "
                         "aligned with --id-type str.")
    side = "treated-side node(s)" if bipartite else "node(s)"
    warnings.warn(f"{what}: {n_new:,} of its {n_ids:,} ids have no edge in the graph (e.g. {example}); they are kept "
                  f"as isolated {side}: exposed by no one and exposing no one.", DataWarning, stacklevel=4)


def with_isolates(graph: "SocialGraph | BipartiteGraph", ids: Iterable[Hashable], what: str) -> "SocialGraph | BipartiteGraph":
    """``graph`` with the ids of ``what`` that it lacks added as isolated nodes (on the
    randomized side of a bipartite graph), with a counted :class:`DataWarning`.

    A node with no edge this period is a legitimate unit: it exposes no one and is exposed
    by no one. Only when *no* id matches is it an error (the wrong table, or ids typed
    differently: ``--id-type``).

    Examples
    --------
    >>> import pandas as pd, warnings
    >>> graph = SocialGraph.from_edges(pd.DataFrame({"source": [1, 2], "target": [2, 3]}))
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     bigger = with_isolates(graph, [1, 2, 3, 9], "assignment")
    >>> bigger.nodes.tolist(), bigger.degrees().tolist(), len(caught)
    ([1, 2, 3, 9], [1, 2, 1, 0], 1)
    """
    ids = pd.Index(ids).unique()
    known = graph.treated if isinstance(graph, BipartiteGraph) else graph.nodes
    new = ids.difference(known, sort=False) if len(ids) else ids
    if not len(new):
        return graph
    report_isolates(len(new), len(ids), show_id(new[0]), what, isinstance(graph, BipartiteGraph),
                    graph_example=show_id(known[0]) if len(known) else None, n_nodes=len(known),
                    n_nodes_unmatched=int((~known.isin(ids)).sum()))
    try:
        nodes = known.append(new)
    except TypeError:  # pragma: no cover - mixed id types
        nodes = pd.Index(list(known) + list(new))
    if isinstance(graph, BipartiteGraph):
        incidence = sp.csr_array(graph.incidence, shape=(graph.n_units, len(nodes)))
        data = None if graph.treated_data is None else graph.treated_data.reindex(nodes)
        return BipartiteGraph(incidence, graph.units, nodes, graph.unit_data, data)
    n = len(nodes)
    adjacency = graph.adjacency.tocsr()
    indptr = np.concatenate([adjacency.indptr, np.full(len(new), adjacency.indptr[-1], dtype=adjacency.indptr.dtype)])
    adjacency = sp.csr_array((adjacency.data, adjacency.indices, indptr), shape=(n, n))
    data = None if graph.node_data is None else graph.node_data.reindex(nodes)
    return SocialGraph(adjacency, nodes, graph.directed, data)


@dataclass(frozen=True, eq=False)
class SocialGraph:
    """A graph of units (users) whose neighbours may interfere with them.

    ``adjacency`` is an ``n x n`` CSR matrix with ones where an edge exists; symmetric
    unless ``directed`` (then row ``i`` lists the nodes ``i`` points to). ``nodes`` maps
    row ``i`` back to the user's id.

    Examples
    --------
    >>> import pandas as pd
    >>> graph = SocialGraph.from_edges(pd.DataFrame({"source": ["a", "b"], "target": ["b", "c"]}))
    >>> graph.n_nodes, graph.n_edges, graph.degrees().tolist()
    (3, 2, [1, 2, 1])
    """

    adjacency: sp.csr_array
    nodes: pd.Index
    directed: bool = False
    node_data: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def n_nodes(self) -> int:
        """Number of nodes (units)."""
        return int(self.adjacency.shape[0])

    @property
    def n_edges(self) -> int:
        """Number of edges, each undirected edge counted once."""
        nnz = int(self.adjacency.nnz)
        return nnz if self.directed else nnz // 2

    def degrees(self) -> np.ndarray:
        """Number of neighbours of each node (out-neighbours when directed)."""
        return np.diff(self.adjacency.indptr)

    def edge_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Source and target indices of each edge, each undirected edge once."""
        coo = self.adjacency.tocoo()
        if self.directed:
            return coo.row.astype(np.int64), coo.col.astype(np.int64)
        upper = coo.row < coo.col
        return coo.row[upper].astype(np.int64), coo.col[upper].astype(np.int64)

    def symmetric(self) -> sp.csr_array:
        """The undirected adjacency (``A`` or ``A + A.T`` binarised)."""
        if not self.directed:
            return self.adjacency
        sym = (self.adjacency + self.adjacency.T).tocsr()
        sym.data[:] = 1
        return sym.astype(EDGE_DTYPE)

    def index_of(self, ids: Iterable[Hashable]) -> np.ndarray:
        """Dense indices of ``ids``; unknown ids raise :class:`InputError`."""
        return _codes_for(self.nodes, ids, "node ids")

    def to_networkx(self):
        """The graph as a ``networkx.Graph`` on dense indices (for small graphs, checks)."""
        import networkx as nx

        graph = nx.DiGraph() if self.directed else nx.Graph()
        graph.add_nodes_from(range(self.n_nodes))
        graph.add_edges_from(zip(*(a.tolist() for a in self.edge_index())))
        return graph

    @classmethod
    def from_edges(
        cls,
        edges: TableLike,
        source: str = "source",
        target: str = "target",
        *,
        directed: bool = False,
        nodes: Iterable[Hashable] | None = None,
        node_data: pd.DataFrame | None = None,
        options: ReadOptions | None = None,
    ) -> "SocialGraph":
        """Build from an edge list (a DataFrame, or a file :func:`~spillover.io.read_table`
        reads: CSV, TSV, SNAP-style text, Parquet, Matrix Market, GraphML, GML; ``options``
        for its format, separator, comments and header).

        Self-loops are dropped and duplicate edges collapsed (``a-b`` and ``b-a`` are one
        undirected edge), each with a :class:`DataWarning` giving counts and an example row.
        ``nodes`` adds isolated nodes that have no edge.
        """
        what = source_name(edges, "edge list")
        parts = _end_parts(edges, (source, target), what, options)
        if not sum(len(part) for part in parts[0]) and nodes is None:
            raise InputError(f"{what}: the graph is empty (no edges, no nodes).")
        # one id space for both ends (and the isolated nodes asked for)
        codes, n, index = _link_codes(parts[0] + parts[1] + ([pd.Series(list(nodes))] if nodes is not None else []))
        if n == 0:
            raise InputError(f"{what}: the graph is empty (no edges, no nodes).")
        pieces, n_loops, first_loop, offset = [], 0, -1, 0
        for src, dst in zip(codes[:len(parts[0])], codes[len(parts[0]):2 * len(parts[0])]):
            loop = src == dst
            if loop.any():
                first_loop = first_loop if first_loop >= 0 else offset + int(np.argmax(loop))
                n_loops += int(loop.sum())
                src, dst = src[~loop], dst[~loop]
            # undirected: a-b and b-a are one edge, stored in both directions
            pieces.append((src, dst) if directed else (np.minimum(src, dst), np.maximum(src, dst)))
            offset += loop.size
        if n_loops:
            warnings.warn(
                f"{what}: dropped {n_loops} self-loop(s), e.g. row {first_loop} "
                f"({show_id(_value_at(parts[0], first_loop))} -> itself). A unit is not its own neighbour.",
                DataWarning,
                stacklevel=2,
            )
        n_kept = sum(low.size for low, _ in pieces)
        if directed:
            adjacency, n_repeat, repeat = link_matrix(pieces, n_kept, (n, n))
        else:  # both directions sorted at once: each repeat is counted twice, and found in either direction
            adjacency, n_repeat, repeat = link_matrix(pieces + [(high, low) for low, high in pieces], 2 * n_kept, (n, n))
            n_repeat, repeat = n_repeat // 2, None if repeat is None else (min(repeat), max(repeat))
        if repeat is not None:
            ids = [code if index is None else index[code] for code in repeat]
            first = second_match(parts[0], parts[1], *ids, either=not directed)
            kind = "" if directed else " (either direction)"
            warnings.warn(
                f"{what}: collapsed {n_repeat} duplicate edge(s){kind}, e.g. row {first} "
                f"({show_id(_value_at(parts[0], first))} - {show_id(_value_at(parts[1], first))}).",
                DataWarning,
                stacklevel=2,
            )
        if index is None:  # ids that are their own codes: the nodes are the ids present (a self-loop's too)
            present = np.zeros(n, dtype=bool)
            for part in codes:
                present[part] = True
            kept = np.flatnonzero(present)
            adjacency = restrict(adjacency, kept, kept)
            index = pd.Index(kept.astype(np.result_type(*codes), copy=False))
        if node_data is not None:
            node_data = node_data.reindex(index)
        return cls(adjacency=adjacency, nodes=index, directed=directed, node_data=node_data)


@dataclass(frozen=True, eq=False)
class BipartiteGraph:
    """Units (the outcome side, e.g. buyers) linked to the treated side (e.g. sellers).

    ``incidence`` is ``n_units x n_treated`` with ones on links. Designs randomize the
    treated side; outcomes are measured on the unit side.

    Examples
    --------
    >>> import pandas as pd
    >>> links = pd.DataFrame({"buyer": ["b1", "b1", "b2"], "seller": ["s1", "s2", "s2"]})
    >>> market = BipartiteGraph.from_edges(links, unit="buyer", treated="seller")
    >>> market.n_units, market.n_treated_side, market.unit_degrees().tolist()
    (2, 2, [2, 1])
    """

    incidence: sp.csr_array
    units: pd.Index
    treated: pd.Index
    unit_data: pd.DataFrame | None = field(default=None, repr=False)
    treated_data: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def n_units(self) -> int:
        """Number of units on the outcome side."""
        return int(self.incidence.shape[0])

    @property
    def n_treated_side(self) -> int:
        """Number of nodes on the randomized side."""
        return int(self.incidence.shape[1])

    @property
    def n_edges(self) -> int:
        """Number of links."""
        return int(self.incidence.nnz)

    def edge_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Unit-side and treated-side indices of each link."""
        coo = self.incidence.tocoo()
        return coo.row.astype(np.int64), coo.col.astype(np.int64)

    def unit_degrees(self) -> np.ndarray:
        """Number of treated-side neighbours of each unit."""
        return np.diff(self.incidence.indptr)

    def combined_adjacency(self) -> sp.csr_array:
        """Both sides as one undirected adjacency: units first, then the treated side."""
        inc = self.incidence
        return sp.csr_array(sp.block_array([[None, inc], [inc.T, None]], format="csr").astype(EDGE_DTYPE))

    @classmethod
    def from_edges(
        cls,
        edges: TableLike,
        unit: str = "source",
        treated: str = "target",
        *,
        unit_data: pd.DataFrame | None = None,
        treated_data: pd.DataFrame | None = None,
        options: ReadOptions | None = None,
    ) -> "BipartiteGraph":
        """Build from a link list with one column per side (a DataFrame or a file, read as
        :func:`~spillover.io.read_table` reads it with ``options``)."""
        what = source_name(edges, "bipartite edge list")
        parts = _end_parts(edges, (unit, treated), what, options)
        n_links = sum(len(part) for part in parts[0])
        if n_links == 0:
            raise InputError(f"{what}: the graph is empty (no links).")
        with ThreadPoolExecutor(2) as pool:  # numpy releases the GIL: the two sides at once, in the same memory
            (u_codes, n_u, units), (t_codes, n_t, treated_ids) = pool.map(_link_codes, parts)
        incidence, n_repeat, repeat = link_matrix(list(zip(u_codes, t_codes)), n_links, (n_u, n_t))
        if repeat is not None:
            unit_id, treated_id = (code if ids is None else ids[code] for code, ids in zip(repeat, (units, treated_ids)))
            warnings.warn(
                f"{what}: collapsed {n_repeat} duplicate link(s), e.g. row {second_match(*parts, unit_id, treated_id)} "
                f"({show_id(unit_id)} - {show_id(treated_id)}).",
                DataWarning,
                stacklevel=2,
            )
        if units is None or treated_ids is None:  # ids that are their own codes: the ones present
            incidence, u_kept, t_kept = drop_empty(incidence)
            units = units if units is not None else pd.Index(u_kept.astype(u_codes[0].dtype, copy=False))
            treated_ids = treated_ids if treated_ids is not None else pd.Index(t_kept.astype(t_codes[0].dtype, copy=False))
        return cls(
            incidence=incidence,
            units=units,
            treated=treated_ids,
            unit_data=None if unit_data is None else unit_data.reindex(units),
            treated_data=None if treated_data is None else treated_data.reindex(treated_ids),
        )


@dataclass(frozen=True, eq=False)
class CollaborationNetwork:
    """Users who share projects; each project belongs to one billing account.

    ``membership`` is ``n_users x n_projects``; ``project_account[k]`` is the index (into
    ``accounts``) of project ``k``'s account. ``user_data`` holds per-user columns such as
    ``usage``, indexed by user id.

    Examples
    --------
    >>> import pandas as pd
    >>> memberships = pd.DataFrame({"user_id": [1, 2, 3], "project_id": ["p", "p", "q"],
    ...                             "account_id": ["acme", "acme", "initech"]})
    >>> network = CollaborationNetwork.from_memberships(memberships)
    >>> network.n_users, network.n_projects, network.user_graph().n_edges
    (3, 2, 1)
    """

    membership: sp.csr_array
    users: pd.Index
    projects: pd.Index
    accounts: pd.Index
    project_account: np.ndarray
    user_data: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    @property
    def n_users(self) -> int:
        """Number of users."""
        return int(self.membership.shape[0])

    @property
    def n_projects(self) -> int:
        """Number of projects."""
        return int(self.membership.shape[1])

    @property
    def n_memberships(self) -> int:
        """Number of (user, project) memberships."""
        return int(self.membership.nnz)

    def account_incidence(self) -> sp.csr_array:
        """``n_projects x n_accounts`` indicator of each project's account."""
        n_p = self.n_projects
        return sp.csr_array(
            (np.ones(n_p, dtype=EDGE_DTYPE), (np.arange(n_p), self.project_account)),
            shape=(n_p, len(self.accounts)),
        )

    def user_graph(self) -> SocialGraph:
        """Users linked when they share at least one project (``M @ M.T``, binarised).

        Its size grows with the square of project sizes: a project of 10,000 users alone
        adds 50 million edges.
        """
        m = self.membership
        co = (m @ m.T).tocsr()
        co.setdiag(0)
        co.eliminate_zeros()
        co.data[:] = 1
        co = sp.csr_array(co.astype(EDGE_DTYPE))
        co.sort_indices()
        return SocialGraph(adjacency=co, nodes=self.users, node_data=self.user_data)

    def primary_project(self) -> np.ndarray:
        """Each user's primary project index: the largest of its projects (ties: lowest index).

        This is what a user-level analysis means by "the user's project" when a user
        belongs to several.
        """
        m = self.membership.tocoo()
        sizes = np.diff(self.membership.tocsc().indptr)
        order = np.lexsort((m.col, -sizes[m.col], m.row))
        rows = m.row[order]
        first = np.ones(rows.size, dtype=bool)
        first[1:] = rows[1:] != rows[:-1]
        primary = np.full(self.n_users, -1, dtype=np.int64)
        primary[rows[first]] = m.col[order][first]
        return primary

    @classmethod
    def from_memberships(
        cls,
        memberships: TableLike,
        projects: TableLike | None = None,
        *,
        user: str = "user_id",
        project: str = "project_id",
        account: str = "account_id",
        options: ReadOptions | None = None,
    ) -> "CollaborationNetwork":
        """Build from user-project memberships and each project's billing account.

        The account comes from an ``account`` column of ``memberships`` or from a separate
        ``projects`` table (``project``, ``account``). Other columns of ``memberships`` are
        per-user attributes (e.g. ``usage``) and must agree across a user's rows.
        """
        what = source_name(memberships, "memberships")
        frame = read_table(memberships, what=what, ids=(user, project, account), options=options)
        require_columns(frame, [user, project], what)
        require_no_nulls(frame, [user, project], what)
        if len(frame) == 0:
            raise InputError(f"{what}: no memberships: the network is empty.")

        u_codes, users = factorize_ids(frame[user])
        p_codes, project_ids = factorize_ids(frame[project])

        if projects is not None:
            p_what = source_name(projects, "projects table")
            p_frame = read_table(projects, what=p_what)
            require_columns(p_frame, [project, account], p_what)
            require_no_nulls(p_frame, [project], p_what)
            pairs = pd.DataFrame(
                {"project": p_frame[project].to_numpy(), "account": p_frame[account].to_numpy()}
            )
            source_rows = np.arange(len(p_frame))
            acct_what = p_what
        elif account in frame.columns:
            pairs = pd.DataFrame(
                {"project": frame[project].to_numpy(), "account": frame[account].to_numpy()}
            )
            source_rows = np.arange(len(frame))
            acct_what = what
        else:
            raise InputError(
                f"{what}: no '{account}' column and no projects table: every project needs "
                "its billing account. Add the column or pass projects=(project, account)."
            )

        no_account = pairs["account"].isna().to_numpy()
        if no_account.any():
            row = int(source_rows[np.flatnonzero(no_account)[0]])
            raise InputError(
                f"{acct_what}: project {show_id(pairs['project'].iloc[row])} in row {row} has no "
                f"account ({int(no_account.sum())} row(s) in all). Every project needs its "
                "billing account."
            )
        per_project = pairs.drop_duplicates()
        n_accounts_per_project = per_project.groupby("project", sort=False)["account"].size()
        conflicted = n_accounts_per_project[n_accounts_per_project > 1]
        if len(conflicted):
            bad = conflicted.index[0]
            found = per_project.loc[per_project["project"] == bad, "account"].tolist()
            raise InputError(
                f"{acct_what}: project {show_id(bad)} belongs to several accounts {found[:5]} "
                f"({len(conflicted)} project(s) in all). A project has one billing account."
            )
        account_of = per_project.set_index("project")["account"]
        positions = account_of.index.get_indexer(project_ids)
        if (positions < 0).any():
            bad = project_ids[positions < 0][0]
            row = int(np.flatnonzero(frame[project].to_numpy() == bad)[0])
            raise InputError(
                f"{what}: project {show_id(bad)} (row {row}) is missing from {acct_what}: it has "
                "no account. Every project needs its billing account."
            )
        a_codes, account_ids = factorize_ids(account_of.to_numpy()[positions])

        membership, n_repeat, first = _simple_matrix(u_codes, p_codes, (len(users), len(project_ids)))
        if n_repeat:
            warnings.warn(
                f"{what}: collapsed {n_repeat} duplicate membership(s), e.g. row {first} "
                f"({show_id(frame[user].iloc[first])} in {show_id(frame[project].iloc[first])}).",
                DataWarning,
                stacklevel=2,
            )

        extra = [c for c in frame.columns if c not in (user, project, account)]
        user_data = pd.DataFrame(index=users)
        if extra:
            per_user = frame[[user] + extra].drop_duplicates()
            counts = per_user.groupby(user, sort=False).size()
            if (counts > 1).any():
                bad = counts.index[counts > 1][0]
                raise InputError(
                    f"{what}: user {show_id(bad)} has conflicting values of per-user column(s) "
                    f"{extra} across its rows; give each user one value."
                )
            user_data = per_user.set_index(user).reindex(users)
        return cls(
            membership=membership,
            users=users,
            projects=project_ids,
            accounts=account_ids,
            project_account=a_codes,
            user_data=user_data,
        )


Graph = SocialGraph | BipartiteGraph | CollaborationNetwork


def load_graph(
    edges: TableLike,
    source: str = "source",
    target: str = "target",
    *,
    bipartite: bool = False,
    directed: bool = False,
    options: ReadOptions | None = None,
) -> SocialGraph | BipartiteGraph:
    """Load an edge list as a social graph, or a bipartite graph (``source`` = unit side);
    ``options`` say how to read its file (:class:`~spillover.io.ReadOptions`).

    Examples
    --------
    >>> import pandas as pd
    >>> load_graph(pd.DataFrame({"source": [1, 2], "target": [2, 3]})).n_nodes
    3
    """
    if bipartite:
        return BipartiteGraph.from_edges(edges, unit=source, treated=target, options=options)
    return SocialGraph.from_edges(edges, source=source, target=target, directed=directed, options=options)
