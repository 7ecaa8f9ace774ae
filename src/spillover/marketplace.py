"""Clusters of sellers built for their buyers' exposure, and how pure that exposure is.

Under seller randomization a buyer of several sellers is usually *mixed*: some of its
sellers treated, some not. Randomizing clusters of sellers that share their buyers
pushes buyers toward all-or-none exposure, which is what the direct and total effects
compare. :func:`seller_clusters` partitions the sellers' projection (two sellers linked
by the buyers they share, each buyer spreading one unit of weight over its pairs of
sellers: ``A^T A`` with ``A`` the buyer x seller shares) into balanced parts with METIS,
each part weighed by its sellers' share of buyer links (Brennan, Mirrokni &
Pouget-Abadie's one-sided bipartite clustering, with METIS as the partitioner).
:func:`exposure_purity` gives the diagnostics an analyst reads before choosing: the share
of buyers whose sellers all lie in one cluster (they can be fully treated or fully
control), the mean purity ``sum_c a_ic^2`` (the chance two of a buyer's links fall in one
cluster), the share of the projection's weight that crosses clusters, and cluster sizes.

Examples
--------
>>> from spillover import synth
>>> market = synth.marketplace(5_000, 500, categories=10, seed=1)   # 90% of purchases in a buyer's region
>>> labels = seller_clusters(market, 10, seed=1)
>>> labels.nunique()
10
>>> round(exposure_purity(market, labels)["pure_buyers"], 2)          # buyers that can be all-or-none
0.74
>>> round(exposure_purity(market, pd.Series(range(500), index=market.treated))["pure_buyers"], 2)  # each seller alone
0.18
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import InputError
from .graph import BipartiteGraph, group_indicator
from .seeds import Seed, int_seed

__all__ = ["exposure_design", "exposure_objective", "exposure_purity", "link_shares", "seller_clusters",
           "seller_projection", "unit_weights"]

WEIGHT_SCALE = 10_000  # METIS takes integer weights: shares are scaled to this and rounded up


def link_shares(graph: BipartiteGraph) -> sp.csr_array:
    """Buyers x sellers: each link's share of its buyer's links (rows sum to 1).

    >>> links = pd.DataFrame({"buyer": [0, 0, 1], "seller": ["s", "t", "t"]})
    >>> link_shares(BipartiteGraph.from_edges(links, unit="buyer", treated="seller")).toarray().tolist()
    [[0.5, 0.5], [0.0, 1.0]]
    """
    shares = sp.csr_array(graph.incidence, dtype=np.float64)
    shares.data[:] = 1.0
    degree = np.asarray(shares.sum(axis=1)).ravel()
    return sp.csr_array(sp.diags_array(np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)) @ shares)


def unit_weights(graph: BipartiteGraph, blocks: np.ndarray) -> sp.csr_array:
    """Buyers x randomization units: ``a_ic``, the share of buyer ``i``'s sellers in unit
    ``c`` (``blocks[j]``: the unit of seller ``j``), so that ``x = a @ z`` is the
    ``bipartite`` mapping's treated share. Rows of buyers without sellers are empty.

    >>> links = pd.DataFrame({"buyer": [0, 0, 0, 1], "seller": ["s", "t", "u", "u"]})
    >>> market = BipartiteGraph.from_edges(links, unit="buyer", treated="seller")
    >>> unit_weights(market, np.array([0, 0, 1])).toarray().round(3).tolist()
    [[0.667, 0.333], [0.0, 1.0]]
    """
    blocks = np.asarray(blocks, dtype=np.int64)
    weights = sp.csr_array(link_shares(graph) @ group_indicator(blocks, int(blocks.max()) + 1).T)
    weights.sum_duplicates()
    weights.sort_indices()
    return weights


def seller_projection(graph: BipartiteGraph) -> sp.csr_array:
    """Sellers x sellers: the weight of the buyers two sellers share (``A^T A``, ``A`` the
    link shares); the diagonal is each seller's own weight.

    >>> links = pd.DataFrame({"buyer": [0, 0, 1], "seller": ["s", "t", "t"]})
    >>> seller_projection(BipartiteGraph.from_edges(links, unit="buyer", treated="seller")).toarray().tolist()
    [[0.25, 0.25], [0.25, 1.25]]
    """
    shares = link_shares(graph)
    return sp.csr_array(shares.T @ shares)


def seller_clusters(graph: BipartiteGraph, n_clusters: int, *, seed: Seed = None) -> pd.Series:
    """Up to ``n_clusters`` balanced clusters of the sellers (by seller id), cutting as
    little of the weight of shared buyers as METIS finds; each seller weighs its share of
    buyer links, so clusters carry similar numbers of buyers. Sellers without buyers are
    spread by METIS like the others. On a market without structure, or with a seller too
    heavy to balance, METIS can leave parts empty: the labels are renumbered densely, so
    count them."""
    if not isinstance(graph, BipartiteGraph):
        raise InputError("seller clusters are built on a bipartite graph (buyers x sellers).")
    m = graph.n_treated_side
    if not 2 <= n_clusters <= m:
        raise InputError(f"n_clusters={n_clusters} must be between 2 and the {m} sellers.")
    import pymetis

    projection = seller_projection(graph)
    mass = projection.diagonal() + np.asarray(projection.sum(axis=1)).ravel()
    off = sp.csr_array(projection - sp.diags_array(projection.diagonal()))
    off.eliminate_zeros()
    off.sort_indices()
    eweights = np.ceil(off.data * WEIGHT_SCALE).astype(np.int64)
    vweights = np.ceil(mass / max(mass.max(), 1e-300) * WEIGHT_SCALE).astype(np.int64) + 1
    adjacency = pymetis.CSRAdjacency(adj_starts=off.indptr.astype(np.int64), adjacent=off.indices.astype(np.int64))
    _, parts = pymetis.part_graph(int(n_clusters), adjacency, vweights=vweights, eweights=eweights,
                                  options=pymetis.Options(seed=int_seed(seed)))
    labels = pd.factorize(np.asarray(parts, dtype=np.int64), sort=False)[0]
    return pd.Series(labels, index=graph.treated, name="cluster_id")


def _penalty(graph: BipartiteGraph, resolution: float) -> float:
    """``gamma = lambda / (1 + lambda)``, the weight of the exposures' covariance, on the
    scale of modularity: ``resolution`` over the buyers with sellers (the projection's
    total weight), so that 1 is modularity's own null model."""
    n = int(np.count_nonzero(graph.unit_degrees() > 0))
    if not 0 < resolution < n:
        raise InputError(f"exposure-design: resolution={resolution} must be above 0 and below the {n:,} buyers.")
    return resolution / n


def exposure_objective(graph: BipartiteGraph, labels: np.ndarray, resolution: float = 1.0) -> float:
    """Exposure-Design's objective for seller clusters ``labels`` (one per seller, in the
    graph's order), per buyer: ``sum_i Var(x_i) - lambda sum_{i != k} Cov(x_i, x_k)`` over
    ``p (1 - p)`` (Bernoulli(p) on clusters), computed from the buyers' exposures
    themselves, ``lambda`` from ``resolution`` (:func:`exposure_design`). Larger is better:
    buyers' exposures spread toward all-or-none while staying uncorrelated.

    >>> from spillover import synth
    >>> market = synth.marketplace(2_000, 200, categories=8, seed=1)
    >>> alone, regions = np.arange(200), exposure_design(market, seed=1).to_numpy()
    >>> exposure_objective(market, regions) > exposure_objective(market, alone)
    True
    """
    gamma = _penalty(graph, resolution)
    lam = gamma / (1 - gamma)
    codes = pd.factorize(np.asarray(labels))[0]
    a = unit_weights(graph, codes)
    variance = float(a.power(2).sum())
    per_cluster = np.asarray(a.sum(axis=0)).ravel()
    covariance = float(np.sum(per_cluster**2)) - variance  # sum over i != k of sum_c a_ic a_kc
    return (variance - lam * covariance) / max(int(np.count_nonzero(graph.unit_degrees() > 0)), 1)


def exposure_design(graph: BipartiteGraph, *, resolution: float = 1.0, seed: Seed = None,
                    n_iterations: int = -1) -> pd.Series:
    """Clusters of sellers by Exposure-Design's objective (Harshaw, Sävje, Eisenstat,
    Mirrokni & Pouget-Abadie 2023, section 6): make each buyer's exposure ``x_i`` as
    variable as possible (ERL weighs buyers by ``1 / Var x_i``) while keeping the
    exposures of different buyers uncorrelated, ``max sum_i Var(x_i) - lambda sum_{i != k}
    Cov(x_i, x_k)`` (:func:`exposure_objective`). Under Bernoulli randomization of the
    clusters ``Var(x_i) = p (1 - p) sum_c a_ic^2`` and ``Cov(x_i, x_k) = p (1 - p) sum_c
    a_ic a_kc``, so the objective is, up to a factor, ``sum_c sum_{j, j' in c} (P_jj' -
    gamma d_j d_j')`` with ``P`` the sellers' projection (:func:`seller_projection`), ``d``
    its row sums (each seller's share of buyers) and ``gamma = lambda / (1 + lambda)``:
    the Constant Potts Model with node weights ``d``, which Leiden (igraph) maximizes.
    ``resolution`` sets ``gamma = resolution / n`` (``n`` buyers with sellers: 1 is
    modularity's null model); larger gives more, smaller clusters. The paper solves its
    correlation-clustering form with its own heuristic; this is the same objective by a
    different optimizer. Returns one label per seller, by seller id.

    >>> from spillover import synth
    >>> market = synth.marketplace(5_000, 500, categories=10, seed=1)
    >>> labels = exposure_design(market, seed=1)
    >>> labels.nunique(), round(exposure_purity(market, labels)["pure_buyers"], 2)   # METIS, 10 parts: 0.74
    (30, 0.77)
    """
    if not isinstance(graph, BipartiteGraph):
        raise InputError("exposure-design clusters the sellers of a bipartite graph (buyers x sellers).")
    import igraph as ig

    gamma = _penalty(graph, resolution)
    projection = seller_projection(graph)
    weight = np.asarray(projection.sum(axis=1)).ravel()
    off = sp.triu(projection, k=1, format="coo")
    network = ig.Graph(n=graph.n_treated_side, edges=np.column_stack([off.row, off.col]))
    ig.set_random_number_generator(random.Random(int_seed(seed)))
    try:
        parts = network.community_leiden(objective_function="CPM", weights=off.data, resolution=gamma,
                                         node_weights=weight, n_iterations=n_iterations)
    finally:
        ig.set_random_number_generator(random)
    labels = pd.factorize(np.asarray(parts.membership, dtype=np.int64), sort=False)[0]
    return pd.Series(labels, index=graph.treated, name="cluster_id")


def exposure_purity(graph: BipartiteGraph, labels: pd.Series | np.ndarray) -> dict[str, Any]:
    """How all-or-none buyers' exposure can be when the sellers are randomized by
    ``labels`` (one cluster label per seller, by seller id or in the graph's order):
    ``pure_buyers`` (share of buyers with sellers whose sellers all lie in one cluster),
    ``mean_purity`` (mean over buyers of ``sum_c a_ic^2``), ``cut_weight`` (share of the
    sellers' projection weight between different clusters), the number of clusters and
    their sizes in sellers and in buyer-link weight (min, median, max)."""
    if isinstance(labels, pd.Series):
        missing = graph.treated.difference(labels.index)
        if len(missing):
            raise InputError(f"clusters: {len(missing)} seller(s) have no cluster, e.g. {missing[0]!r}.")
        labels = labels.reindex(graph.treated).to_numpy()
    codes, _ = pd.factorize(np.asarray(labels), sort=True)
    if codes.size != graph.n_treated_side:
        raise InputError(f"clusters: {codes.size} labels for {graph.n_treated_side} sellers.")
    per_cluster = unit_weights(graph, codes)
    linked = np.diff(per_cluster.indptr) > 0
    purity = np.asarray(per_cluster.power(2).sum(axis=1)).ravel()[linked]
    projection = seller_projection(graph)
    members = group_indicator(codes, int(codes.max()) + 1)
    within = float((members @ projection @ members.T).diagonal().sum() - projection.diagonal().sum())
    between = float(projection.sum() - projection.diagonal().sum()) - within
    sellers = np.bincount(codes)
    weight = np.asarray(per_cluster.sum(axis=0)).ravel()
    return {"n_clusters": int(sellers.size), "pure_buyers": float(np.mean(purity > 1 - 1e-12)),
            "mean_purity": float(purity.mean()), "cut_weight": max(between, 0.0) / max(within + between, 1e-300),
            "sellers_min": int(sellers.min()), "sellers_median": float(np.median(sellers)),
            "sellers_max": int(sellers.max()), "buyer_weight_min": float(weight.min()),
            "buyer_weight_median": float(np.median(weight)), "buyer_weight_max": float(weight.max())}
