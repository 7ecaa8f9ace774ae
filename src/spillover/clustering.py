"""Cluster a graph into randomization units, with the diagnostics that say how much
interference the clustering leaves in.

``cluster(graph, method=...)`` is the one entry point; every method returns a
:class:`Clustering` whose labels are keyed by the user's ids. Community detection runs in
the fastest well-kept implementation we measured (networkit's parallel Louvain, igraph's
Leiden); components use scipy; 3-net and ego clusters are vectorised here because no
library ships them.
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .display import mapping_html
from .errors import FEW_CLUSTERS, FewClustersWarning, InputError, InterferenceWarning
from .graph import BipartiteGraph, CollaborationNetwork, Graph, SocialGraph, csr_rows
from .names import CLUSTER_METHODS
from .seeds import Seed, check_seed, int_seed

__all__ = ["METHODS", "METHOD_OPTIONS", "RANDOMIZED_METHODS", "Clustering", "cluster", "cut_fraction",
           "design_effect", "effective_n_clusters", "modularity", "random_clusterings", "sweep"]

METHODS = CLUSTER_METHODS
RANDOMIZED_METHODS = ("1hop-max", "3net")  # clusterings that are a random draw: what RGCR mixes
NODE_WEIGHTS = ("uniform", "degree")
DEFAULT_CUT_THRESHOLD = 0.10


# --------------------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class Clustering:
    """Cluster labels of a graph's units plus the diagnostics of the partition.

    ``labels[i]`` is the dense cluster index (``0..n_clusters-1``) of the unit ``nodes[i]``.
    For bipartite and collaboration networks, ``other_labels`` holds the clusters of the
    other node types (``"treated"``; ``"projects"`` and ``"accounts"``). ``cut_fraction``
    and ``modularity`` are measured on the graph that was partitioned (``n_edges`` edges).

    Examples
    --------
    >>> from spillover import synth
    >>> clustering = cluster(synth.social_graph(1_000, seed=1), "components")
    >>> clustering.to_frame().columns.tolist(), clustering.n_units
    (['unit_id', 'cluster_id'], 1000)
    """

    labels: np.ndarray
    nodes: pd.Index
    method: str
    params: dict[str, Any]
    n_edges: int
    cut_fraction: float
    modularity: float | None
    other_labels: dict[str, pd.Series] = field(default_factory=dict)
    centers: pd.Index | None = None

    @property
    def n_units(self) -> int:
        """Number of clustered units."""
        return int(self.labels.size)

    @property
    def n_clusters(self) -> int:
        """Number of clusters."""
        return int(self.labels.max()) + 1 if self.labels.size else 0

    @property
    def sizes(self) -> np.ndarray:
        """Number of units in each cluster."""
        return np.bincount(self.labels, minlength=self.n_clusters)

    def to_frame(self, side: str = "units") -> pd.DataFrame:
        """Tidy table ``unit_id, cluster_id`` in the units' own ids; ``side`` names another
        node type of :attr:`other_labels` (``"treated"``: a bipartite graph's randomized side,
        so a seller-side cluster design can be assigned from it).

        Examples
        --------
        >>> from spillover import synth
        >>> clustering = cluster(synth.marketplace(300, 30, seed=1), "components")
        >>> len(clustering.to_frame()), len(clustering.to_frame("treated"))
        (300, 30)
        """
        if side == "units":
            return pd.DataFrame({"unit_id": self.nodes, "cluster_id": self.labels})
        if side not in self.other_labels:
            raise InputError(f"this clustering has no side {side!r}; it has {['units', *self.other_labels]}.")
        labels = self.other_labels[side]
        return pd.DataFrame({"unit_id": labels.index, "cluster_id": labels.to_numpy()})

    def to_dict(self) -> dict[str, Any]:
        """Diagnostics under the command line's stable ``--json`` keys."""
        sizes = self.sizes
        return {
            "method": self.method,
            "n_units": self.n_units,
            "n_edges": self.n_edges,
            "n_clusters": self.n_clusters,
            "cut_fraction": self.cut_fraction,
            "modularity": self.modularity,
            "cluster_size_min": int(sizes.min()),
            "cluster_size_median": float(np.median(sizes)),
            "cluster_size_max": int(sizes.max()),
            "effective_n_clusters": effective_n_clusters(sizes),
        }

    def summary(self) -> str:
        """The diagnostics in a line a person reads (:meth:`to_dict` holds them as data)."""
        return repr(self)

    def _repr_html_(self) -> str:
        return mapping_html(f"Clustering ({self.method})", self.to_dict())

    def plot(self, ax=None):
        """How many clusters have each size (log-log; a matplotlib ``Axes``). See
        :func:`spillover.plots.draw_cluster_sizes`."""
        from .plots import draw_cluster_sizes

        return draw_cluster_sizes({self.method: self.sizes}, ax)

    def __repr__(self) -> str:
        s = self.to_dict()
        mod = "n/a" if s["modularity"] is None else f"{s['modularity']:.3f}"
        return (
            f"Clustering({self.method}: {s['n_clusters']:,} clusters of {s['n_units']:,} units, "
            f"sizes {s['cluster_size_min']}-{s['cluster_size_median']:g}-"
            f"{s['cluster_size_max']} (min-median-max), cut {s['cut_fraction']:.1%}, "
            f"modularity {mod})"
        )


# --------------------------------------------------------------------------- diagnostics


def cut_fraction(adjacency: sp.csr_array, labels: np.ndarray) -> float:
    """Share of edges whose endpoints fall in different clusters.

    This is the share of neighbour pairs that a cluster design can put in different arms,
    i.e. how much interference the clustering leaves in.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> path = sp.csr_array(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]]))
    >>> cut_fraction(path, np.array([0, 0, 1]))
    0.5
    """
    if adjacency.nnz == 0:
        return 0.0
    return float(np.mean(labels[csr_rows(adjacency)] != labels[adjacency.indices]))


def modularity(adjacency: sp.csr_array, labels: np.ndarray, resolution: float = 1.0) -> float:
    """Newman modularity of ``labels`` on an undirected, unweighted graph.

    ``Q = sum_c [ L_c / m - resolution * (d_c / 2m)^2 ]`` with ``L_c`` the edges inside
    cluster ``c`` and ``d_c`` its total degree: the same quantity as
    ``networkx.community.modularity``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> two_pairs = sp.csr_array(np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]))
    >>> modularity(two_pairs, np.array([0, 0, 1, 1]))
    0.5
    """
    return _diagnostics(adjacency, labels, resolution)[1]


def _diagnostics(adjacency: sp.csr_array, labels: np.ndarray, resolution: float = 1.0) -> tuple[float, float]:
    """Cut fraction and modularity from one pass over the edges."""
    two_m = float(adjacency.nnz)
    if two_m == 0:
        return 0.0, 0.0
    row_labels = labels[csr_rows(adjacency)]
    inside = row_labels == labels[adjacency.indices]
    k = int(labels.max()) + 1
    internal = np.bincount(row_labels[inside], minlength=k) / 2.0
    degree = np.bincount(labels, weights=np.diff(adjacency.indptr), minlength=k)
    q = internal.sum() / (two_m / 2) - resolution * np.sum((degree / two_m) ** 2)
    return float(1.0 - inside.mean()), float(q)


def effective_n_clusters(sizes: np.ndarray) -> float:
    """``(sum m)^2 / sum m^2``: the number of equal clusters carrying the same information
    when outcomes are perfectly correlated within clusters (the worst case).

    Examples
    --------
    >>> import numpy as np
    >>> effective_n_clusters(np.array([10, 10, 10, 10])), round(effective_n_clusters(np.array([37, 1, 1, 1])), 2)
    (4.0, 1.17)
    """
    sizes = np.asarray(sizes, dtype=float)
    return float(sizes.sum() ** 2 / np.sum(sizes**2)) if sizes.size else 0.0


def design_effect(sizes: np.ndarray, icc: float) -> float:
    """Variance inflation of cluster randomization over individual randomization.

    ``1 + (m_w - 1) * icc`` with the size-weighted mean cluster size ``m_w = sum m^2 / sum
    m``, the unequal-cluster form of Kish's design effect (Eldridge et al., 2006).

    Examples
    --------
    >>> import numpy as np
    >>> round(design_effect(np.array([20, 20, 20]), icc=0.05), 4)
    1.95
    """
    sizes = np.asarray(sizes, dtype=float)
    weighted_mean = np.sum(sizes**2) / sizes.sum()
    return float(1.0 + (weighted_mean - 1.0) * icc)


# --------------------------------------------------------------------------- vectorised helpers


def _dense_labels(labels: np.ndarray) -> np.ndarray:
    """Relabel to ``0..k-1`` in order of first appearance, so labels are canonical."""
    codes, _ = pd.factorize(labels, sort=False)
    return codes.astype(np.int64)


def _neighbour_min(adjacency: sp.csr_array, values: np.ndarray) -> np.ndarray:
    """For each node, the minimum of ``values`` over itself and its neighbours."""
    out = values.copy()
    nonempty = np.diff(adjacency.indptr) > 0
    if nonempty.any():
        starts = adjacency.indptr[:-1][nonempty]
        gathered = values[adjacency.indices]
        out[nonempty] = np.minimum(out[nonempty], np.minimum.reduceat(gathered, starts))
    return out


def _spread(adjacency: sp.csr_array, mask: np.ndarray) -> np.ndarray:
    """Nodes that are in ``mask`` or adjacent to a node in it."""
    return mask | (adjacency @ mask.astype(np.int32) > 0)


def _distance3_centers(adjacency: sp.csr_array, priority: np.ndarray) -> np.ndarray:
    """A maximal set of centres pairwise at distance >= 3 (a 3-net's centres).

    Parallel greedy (Luby-style) with fixed priorities: in each round, an undecided node
    whose priority is the lowest among undecided nodes within distance 2 becomes a centre;
    nodes within distance 2 of a centre are decided. Each round is two sparse passes, and
    the rounds number O(log n) on typical graphs.
    """
    n = priority.size
    undecided = np.ones(n, dtype=bool)
    centers = np.zeros(n, dtype=bool)
    sentinel = np.iinfo(np.int64).max
    while undecided.any():
        masked = np.where(undecided, priority, sentinel)
        lowest = _neighbour_min(adjacency, _neighbour_min(adjacency, masked))
        new = undecided & (priority == lowest)
        centers |= new
        undecided &= ~_spread(adjacency, _spread(adjacency, new))
    return centers


def _assign_to_nearest_center(
    adjacency: sp.csr_array, centers: np.ndarray, priority: np.ndarray, max_hops: int
) -> np.ndarray:
    """Label each node with the priority of its nearest centre within ``max_hops``
    (ties: the centre of lowest priority); unreached nodes get the int64 maximum."""
    sentinel = np.iinfo(np.int64).max
    label = np.where(centers, priority, sentinel)
    for _ in range(max_hops):
        reached = _neighbour_min(adjacency, label)
        label = np.where(label == sentinel, reached, label)
    return label


def _priorities(n: int, seed, first: np.ndarray | None = None, weights: np.ndarray | None = None) -> np.ndarray:
    """A random ranking of the nodes (0 = first), optionally sorted by ``first`` before
    the random tie-break. With ``weights``, node ``i`` draws ``X_i = U_i^(1/w_i)`` and the
    ranking is by decreasing ``X`` (the first node is ``i`` with probability
    ``w_i / sum(w)``: a Plackett-Luce order, Ugander & Yin's weighted clusterings)."""
    rng = check_seed(seed)
    if weights is not None:
        noise = np.argsort(np.argsort(np.log(rng.random(n)) / weights)[::-1])  # rank by decreasing log X
    else:
        noise = rng.permutation(n)
    order = np.lexsort((noise,) if first is None else (noise, first))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank


def _node_weights(adjacency: sp.csr_array, weights) -> np.ndarray | None:
    """``None`` (uniform), ``1 + degree`` (``"degree"``) or the given positive weights."""
    if isinstance(weights, str):
        if weights not in NODE_WEIGHTS:
            raise InputError(f"node weights {weights!r}: choose one of {list(NODE_WEIGHTS)} or give an array.")
        return None if weights == "uniform" else 1.0 + np.diff(adjacency.indptr).astype(float)
    values = np.asarray(weights, dtype=float)
    if values.shape != (adjacency.shape[0],) or not np.all(np.isfinite(values) & (values > 0)):
        raise InputError(f"node weights: need {adjacency.shape[0]} finite positive numbers, one per node.")
    return values


# --------------------------------------------------------------------------- methods


def _components(adjacency: sp.csr_array, **_: Any) -> np.ndarray:
    from scipy.sparse.csgraph import connected_components  # here: it imports scipy.linalg (0.1 s)

    _, labels = connected_components(adjacency, directed=False)
    return labels


def _louvain(adjacency: sp.csr_array, *, resolution: float, seed, parallel: bool | None, **_):
    import networkit as nk

    graph = _to_networkit(adjacency)
    # networkit's parallel move phase is not reproducible across runs; with a seed we
    # run it single-threaded (about 2x slower on two cores) so the labels are exact.
    deterministic = seed is not None if parallel is None else not parallel
    threads = nk.getMaxNumberOfThreads()
    if deterministic:
        nk.setNumberOfThreads(1)
        nk.setSeed(int_seed(seed), False)
    try:
        plm = nk.community.PLM(graph, refine=False, gamma=float(resolution), par="balanced")
        plm.run()
        return np.asarray(plm.getPartition().getVector(), dtype=np.int64)
    finally:
        nk.setNumberOfThreads(threads)


def _leiden(adjacency: sp.csr_array, *, resolution: float, seed, n_iterations: int = 2, **_):
    import igraph as ig

    src, dst = _upper_edges(adjacency)
    graph = ig.Graph(n=adjacency.shape[0], edges=np.column_stack([src, dst]))
    # igraph draws from Python's `random` by default; give it a private seeded generator
    ig.set_random_number_generator(random.Random(int_seed(seed)))
    try:
        parts = graph.community_leiden(
            objective_function="modularity", resolution=float(resolution), n_iterations=n_iterations
        )
    finally:
        ig.set_random_number_generator(random)
    return np.asarray(parts.membership, dtype=np.int64)


def _three_net(adjacency: sp.csr_array, *, seed, weights="uniform", **_) -> tuple[np.ndarray, np.ndarray]:
    """Each node labelled with the index of its centre (a random 3-net's)."""
    n = adjacency.shape[0]
    priority = _priorities(n, seed, weights=_node_weights(adjacency, weights))
    centers = _distance3_centers(adjacency, priority)
    label = _assign_to_nearest_center(adjacency, centers, priority, max_hops=2)
    return np.argsort(priority)[label], np.flatnonzero(centers)  # centre rank -> centre node


def _one_hop_max(adjacency: sp.csr_array, *, seed, weights="uniform", **_) -> tuple[np.ndarray, np.ndarray]:
    """Ugander & Yin's 1-hop-max: every node draws a number and joins the cluster of the
    largest number in its closed neighbourhood (one sparse min over ranks); each node is
    labelled with the index of its centre."""
    n = adjacency.shape[0]
    priority = _priorities(n, seed, weights=_node_weights(adjacency, weights))
    node_of_rank = np.argsort(priority)
    rank = _neighbour_min(adjacency, priority)
    return node_of_rank[rank], node_of_rank[np.unique(rank)]  # centre rank -> centre node


def _ego(adjacency: sp.csr_array, *, seed, **_) -> tuple[np.ndarray, np.ndarray]:
    n = adjacency.shape[0]
    degree = np.diff(adjacency.indptr)
    # high-degree egos first: their clusters cover the most alters
    priority = _priorities(n, seed, first=-degree)
    centers = _distance3_centers(adjacency, priority)
    label = _assign_to_nearest_center(adjacency, centers, priority, max_hops=1)
    sentinel = np.iinfo(np.int64).max
    alone = label == sentinel
    # nodes two hops from every ego stay alone: each is an ego without alters in the design
    label[alone] = priority[alone]
    return label, np.flatnonzero(centers | alone)


def _metis(adjacency: sp.csr_array, *, n_parts: int | None, seed, **_) -> np.ndarray:
    import pymetis

    n = adjacency.shape[0]
    if n_parts is None:
        n_parts = max(2, n // 100)
    if not 2 <= n_parts <= n:
        raise InputError(f"metis: n_parts={n_parts} must be between 2 and the {n} nodes.")
    options = pymetis.Options(seed=int_seed(seed))
    _, parts = pymetis.part_graph(
        int(n_parts),
        pymetis.CSRAdjacency(adj_starts=adjacency.indptr, adjacent=adjacency.indices),
        options=options,
    )
    return np.asarray(parts, dtype=np.int64)


def _greedy_modularity(adjacency: sp.csr_array, *, resolution: float, **_) -> np.ndarray:
    import networkx as nx

    src, dst = _upper_edges(adjacency)
    graph = nx.Graph()
    graph.add_nodes_from(range(adjacency.shape[0]))
    graph.add_edges_from(zip(src.tolist(), dst.tolist()))
    communities = nx.community.greedy_modularity_communities(graph, resolution=resolution)
    labels = np.empty(adjacency.shape[0], dtype=np.int64)
    for index, members in enumerate(communities):  # a loop over clusters
        labels[np.fromiter(members, dtype=np.int64)] = index
    return labels


#: Each method's own options and their defaults; ``cluster`` refuses any other.
METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "components": {},
    "louvain": {"resolution": 1.0, "parallel": None},
    "leiden": {"resolution": 1.0, "n_iterations": 2},
    "ego": {},
    "3net": {"weights": "uniform"},
    "1hop-max": {"weights": "uniform"},
    "metis": {"n_parts": None},
    "greedy-modularity": {"resolution": 1.0},
}

_IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {
    "components": _components,
    "louvain": _louvain,
    "leiden": _leiden,
    "ego": _ego,
    "3net": _three_net,
    "1hop-max": _one_hop_max,
    "metis": _metis,
    "greedy-modularity": _greedy_modularity,
}


def _upper_edges(adjacency: sp.csr_array) -> tuple[np.ndarray, np.ndarray]:
    coo = adjacency.tocoo()
    upper = coo.row < coo.col
    return coo.row[upper].astype(np.int64), coo.col[upper].astype(np.int64)


def _to_networkit(adjacency: sp.csr_array):
    import networkit as nk

    # the upper triangle as CSR is networkit's fastest import (10x faster than from COO)
    upper = sp.triu(adjacency, k=1, format="csr")
    return nk.graph.GraphFromCsr(sp.csr_matrix(upper), directed=False)


# --------------------------------------------------------------------------- entry point


def _partitioned_graph(graph: Graph, method: str, through_accounts: bool):
    """The undirected adjacency to partition, its node ids, and how to split its labels
    into the units and the other node types."""
    if isinstance(graph, SocialGraph):
        return graph.symmetric(), graph.nodes, {}
    if isinstance(graph, BipartiteGraph):
        return graph.combined_adjacency(), graph.units, {"treated": (graph.n_units, graph.treated)}
    if isinstance(graph, CollaborationNetwork):
        if method != "components":
            return graph.user_graph().adjacency, graph.users, {}
        n_u, n_p = graph.n_users, graph.n_projects
        others = {"projects": (n_u, graph.projects)}
        if through_accounts:  # projects billed together join one component
            accounts = graph.account_incidence()
            blocks = [
                [None, graph.membership, None],
                [graph.membership.T, None, accounts],
                [None, accounts.T, None],
            ]
            others["accounts"] = (n_u + n_p, graph.accounts)
        else:
            blocks = [[None, graph.membership], [graph.membership.T, None]]
        combined = sp.csr_array(sp.block_array(blocks, format="csr"))
        return combined, graph.users, others
    raise InputError(f"cannot cluster a {type(graph).__name__}; pass a graph from spillover.graph.")


def cluster(
    graph: Graph,
    method: str = "louvain",
    *,
    seed: Seed = None,
    cut_threshold: float = DEFAULT_CUT_THRESHOLD,
    through_accounts: bool = True,
    **options: Any,
) -> Clustering:
    """Partition ``graph`` into randomization units.

    Methods: ``components`` (scipy), ``louvain`` (networkit parallel Louvain; with a seed
    it runs single-threaded so labels are reproducible, unless ``parallel=True``),
    ``leiden`` (igraph), ``ego`` (an ego with all its alters; egos pairwise three hops
    apart, high degree first; leftover nodes are singletons), ``3net`` (Ugander et al.
    2013: a maximal set of centres pairwise three hops apart, every node joined to a
    nearest centre), ``1hop-max`` (Ugander & Yin 2023: every node joins the cluster of the
    largest of the random numbers in its closed neighbourhood), ``metis`` (balanced,
    ``n_parts`` parts; default one per 100 nodes) and ``greedy-modularity`` (networkx;
    slow, for small graphs and comparison). ``3net`` and ``1hop-max`` are random draws;
    :func:`random_clusterings` draws many of them for randomized graph cluster
    randomization.

    For a collaboration network, ``components`` joins users, projects and (when
    ``through_accounts``) billing accounts, and every node type inherits its component;
    other methods partition the user graph. A bipartite graph is partitioned with both
    sides as one graph. Warns :class:`InterferenceWarning` when the cut fraction exceeds
    ``cut_threshold``.

    Parameters
    ----------
    graph
        A :class:`~spillover.graph.SocialGraph`, ``BipartiteGraph`` or ``CollaborationNetwork``.
    method
        One of :data:`METHODS`.
    seed
        An int (reproducible labels), a numpy ``Generator``, or None (a fresh random
        run); see :mod:`spillover.seeds`.
    cut_threshold
        Warn when a larger share of edges crosses clusters.
    through_accounts
        Collaboration networks: billing accounts join their projects' components.
    **options
        The method's own options (:data:`METHOD_OPTIONS`): ``resolution`` (louvain,
        leiden, greedy-modularity), ``parallel`` (louvain), ``n_iterations`` (leiden),
        ``n_parts`` (metis), ``weights`` (3net, 1hop-max: ``uniform``, ``degree`` or one
        positive weight per node). Any other option is an error.

    Returns
    -------
    Clustering
        The labels and the partition's diagnostics.

    Examples
    --------
    >>> from spillover import synth
    >>> clustering = cluster(synth.social_graph(n=2_000, seed=1), "components")
    >>> clustering.cut_fraction
    0.0
    """
    if method not in _IMPLEMENTATIONS:
        raise InputError(f"unknown clustering method {method!r}; choose one of {list(METHODS)}.")
    own = METHOD_OPTIONS[method]
    unused = [name for name in options if name not in own]
    if unused:
        raise InputError(f"{method} does not use {unused}; its options are {list(own) or 'none'} (and seed, "
                         "cut_threshold, through_accounts).")
    options = {**own, **options}
    check_seed(seed)  # a bad seed is an error even for methods that draw nothing
    adjacency, units, others = _partitioned_graph(graph, method, through_accounts)
    result = _IMPLEMENTATIONS[method](adjacency, seed=seed, **options)
    raw, center_index = result if isinstance(result, tuple) else (result, None)
    labels = _dense_labels(raw)

    # units come first in the partitioned graph and labels are numbered by first
    # appearance, so the units' labels are already dense and other node types share them
    n_units = len(units)
    other_labels = {
        name: pd.Series(labels[start : start + len(ids)], index=ids, name="cluster_id")
        for name, (start, ids) in others.items()
    }
    cut, q = _diagnostics(adjacency, labels)
    result_obj = Clustering(
        labels=labels[:n_units],
        nodes=units,
        method=method,
        params={"seed": seed, **options},
        n_edges=int(adjacency.nnz // 2),
        cut_fraction=cut,
        modularity=q,
        other_labels=other_labels,
        centers=None if center_index is None else pd.Index(units[center_index[center_index < n_units]]),
    )
    if method != "components" and cut > cut_threshold:
        warnings.warn(
            f"{cut:.1%} of edges cross clusters ({method}), above the {cut_threshold:.0%} "
            "threshold: neighbours in other arms will bias a cluster design's estimate toward "
            "zero. On social graphs a cut below 5% is usually not reachable with clusters small "
            "enough for power; a bipartite or holdout design is more honest there.",
            InterferenceWarning,
            stacklevel=2,
        )
    n_clusters = result_obj.n_clusters
    if n_clusters < FEW_CLUSTERS:
        warnings.warn(
            f"{method} gives only {n_clusters} cluster(s): a cluster design needs about {FEW_CLUSTERS} or more for "
            "cluster-robust standard errors to hold, and 2 to estimate anything. Use smaller clusters (e.g. a higher "
            "--resolution) or an individual or bipartite design.",
            FewClustersWarning,
            stacklevel=2,
        )
    return result_obj


def random_clusterings(
    graph: Graph,
    method: str = "1hop-max",
    n_clusterings: int = 100,
    *,
    seed: Seed = None,
    weights: Any = "uniform",
) -> np.ndarray:
    """``n_clusterings`` independent draws of a randomized clustering, as a ``(K, n_nodes)``
    int32 matrix: row ``k`` holds each node's cluster in draw ``k``, named by the index of
    its centre node. What randomized graph cluster randomization mixes (Ugander & Yin
    2023): ``1hop-max`` (each node joins the cluster of the largest of the numbers drawn in
    its closed neighbourhood) or ``3net`` (centres pairwise three hops apart in a random
    order, each node joined to a nearest one). ``weights``: ``uniform``, ``degree``
    (``1 + degree``: high-degree nodes tend to draw the larger numbers) or one positive
    weight per node. No diagnostics are computed: this is the design's raw material.

    Examples
    --------
    >>> from spillover import synth
    >>> graph = synth.social_graph(500, seed=1)
    >>> labels = random_clusterings(graph, "1hop-max", 3, seed=2)
    >>> labels.shape, bool((labels[0] != labels[1]).any())
    ((3, 500), True)
    """
    if method not in RANDOMIZED_METHODS:
        raise InputError(f"randomized clustering {method!r}: choose one of {list(RANDOMIZED_METHODS)}.")
    if int(n_clusterings) < 1:
        raise InputError(f"n_clusterings={n_clusterings}: draw at least one clustering.")
    if not isinstance(graph, SocialGraph):
        raise InputError("randomized clusterings are defined on a social graph (the exposure graph of RGCR).")
    adjacency, _, _ = _partitioned_graph(graph, method, True)
    rng = check_seed(seed)
    out = np.empty((int(n_clusterings), adjacency.shape[0]), dtype=np.int32)
    for k in range(out.shape[0]):  # one sparse pass (1hop-max) or O(log n) rounds (3net) per clustering
        out[k] = _IMPLEMENTATIONS[method](adjacency, seed=rng, weights=weights)[0]
    return out


def sweep(
    graph: Graph,
    values: Iterable[float],
    method: str = "louvain",
    *,
    seed: int | None = 0,
    icc: float = 0.05,
) -> pd.DataFrame:
    """The cluster-size trade-off: bigger clusters cut less interference but cost power.

    Clusters ``graph`` once per value of the method's size knob (``resolution`` for
    louvain/leiden/greedy-modularity, ``n_parts`` for metis) and tabulates the number of
    clusters, cut fraction, modularity, the design effect at intra-cluster correlation
    ``icc`` and the effective sample size ``n_units / design_effect``.

    Examples
    --------
    >>> from spillover import synth
    >>> table = sweep(synth.social_graph(2_000, seed=1), [1.0, 8.0], "louvain", seed=1)
    >>> table.columns[:4].tolist()
    ['method', 'resolution', 'n_clusters', 'cut_fraction']
    """
    rows = []
    for value in values:  # a loop over settings; each clustering is vectorised
        knob = {"n_parts": int(value)} if method == "metis" else {"resolution": float(value)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InterferenceWarning)
            result = cluster(graph, method, seed=seed, **knob)
        sizes = result.sizes
        deff = design_effect(sizes, icc)
        rows.append(
            {
                "method": method,
                next(iter(knob)): value,
                "n_clusters": result.n_clusters,
                "cut_fraction": result.cut_fraction,
                "modularity": result.modularity,
                "cluster_size_median": float(np.median(sizes)),
                "cluster_size_max": int(sizes.max()),
                "effective_n_clusters": effective_n_clusters(sizes),
                "design_effect": deff,
                "effective_sample_size": result.n_units / deff,
            }
        )
    return pd.DataFrame(rows)
