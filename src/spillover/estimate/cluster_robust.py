"""Estimators whose uncertainty comes from the randomization clusters: difference in
means, cluster means, OLS with cluster-robust errors (CR2 with Bell-McCaffrey df, the
wild cluster bootstrap) or a network HAC, and the same from per-cluster sufficient
statistics (what the engines reduce the data to)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import (
    FEW_CLUSTERS,
    InputError,
)
from ..exposure import ExposureGraph, Mapping, infer_mapping
from ..graph import group_indicator
from ..seeds import check_seed
from ..variance import (
    DEFAULT_VCOV,
    ClusterStats,
    check_vcov,
    cluster_stats,
    dependence_robust,
    ols,
    sandwich,
    wild_cluster_bootstrap_from_sums,
)
from .registry import CLUSTERED, SHARED_SIDE, SOCIAL_ONLY, UNEQUAL, Analysis, Estimator, Verdict, register
from .results import Effect, Effects, estimand_of
from .table import check_cluster_count, contrasted_conditions, indicator_columns, make_effect, no_control_error, vcov_label


AUTO_BOOTSTRAP_DRAWS = 1_999


def difference_in_means(table: pd.DataFrame, control: str, alpha: float = 0.05,
                        mapping: Mapping | None = None) -> list[Effect]:
    """Difference of the conditions' mean outcomes with Neyman standard errors."""
    groups = table.groupby("condition", observed=True)["y"]
    mean, var, n = groups.mean(), groups.var(ddof=1), groups.size()
    effects = []
    for condition in contrasted_conditions(table, control):
        if min(n[condition], n[control]) < 2:
            raise InputError(f"difference-in-means: '{condition}' has {n[condition]} and '{control}' {n[control]} "
                             "unit(s); each needs at least two for a standard error.")
        est = float(mean[condition] - mean[control])
        se = float(np.sqrt(var[condition] / n[condition] + var[control] / n[control]))
        effects.append(make_effect(condition, control, mapping, est, se, np.inf, alpha, n[condition] + n[control],
                               None, "difference in means / Neyman"))
    return effects


def cluster_means(table: pd.DataFrame, control: str, alpha: float = 0.05, vcov: str = DEFAULT_VCOV,
                  mapping: Mapping | None = None, covariates: Sequence[str] = ()) -> list[Effect]:
    """Mean of cluster means in a condition minus that in control.

    Each cluster contributes one mean per condition it has units in, and the standard
    error is cluster-robust over those cell means (a regression of cell means on
    condition indicators, clustered by cluster): a cluster that feeds several conditions
    (control units beside exposed ones, as exposure mappings produce) is not counted as
    independent of itself. When every cluster is in one condition, CR2 is the
    two-sample variance of cluster means, with Bell-McCaffrey degrees of freedom.

    With ``covariates`` (a pre-period outcome: CUPED; a prediction of the outcome from
    pre-period data: CUPAC), each cell's mean of every covariate, centred, joins the
    regression: the cluster-level regression adjustment whose variance falls by about
    ``1 - rho^2`` (``rho``: the correlation of cluster means of outcome and covariate).
    """
    if "cluster" not in table:
        raise InputError("cluster-means needs clusters (unit_id, cluster_id).")
    vcov = check_vcov(vcov)
    conditions = contrasted_conditions(table, control)
    cells = table.groupby(["cluster", "condition"], observed=True).agg(
        mean=("y", "mean"), size=("y", "size"), **{f"x_{c}": (c, "mean") for c in covariates}).reset_index()
    cells = cells[cells["condition"].astype(str).isin([control, *conditions])].reset_index(drop=True)
    per_condition = cells.groupby("condition", observed=True)["cluster"].nunique()
    check_cluster_count(cells["cluster"].nunique(), "cluster-means", vcov)
    for condition in conditions:
        g1, g0 = int(per_condition.get(condition, 0)), int(per_condition.get(control, 0))
        if min(g1, g0) < 2:
            raise InputError(f"cluster-means: '{condition}' has {g1} and '{control}' {g0} cluster(s); "
                             "each needs at least two for a standard error.")
    adjust = [cells[[f"x_{c}"]].to_numpy(dtype=float) - cells[f"x_{c}"].mean() for c in covariates]
    fit = ols(cells["mean"].to_numpy(dtype=float), np.column_stack([indicator_columns(cells, conditions), *adjust]),
              cells["cluster"].to_numpy(), vcov)
    label = f"cluster means / {vcov_label(vcov)}" + (f"; adjusted for {', '.join(covariates)}" if covariates else "")
    units = table["condition"].astype(str).value_counts()
    effects = []
    for index, condition in enumerate(conditions, start=1):
        se = np.sqrt(fit.cov[index, index])
        in_pair = cells["condition"].astype(str).isin([condition, control])
        effects.append(make_effect(condition, control, mapping, fit.beta[index], se, fit.df[index], alpha,
                               units[condition] + units[control], int(cells.loc[in_pair, "cluster"].nunique()),
                               label))
    return effects


def ols_cluster(
    table: pd.DataFrame,
    control: str,
    alpha: float = 0.05,
    covariates: Sequence[str] = (),
    vcov: str = DEFAULT_VCOV,
    mapping: Mapping | None = None,
    bootstrap: int | None = None,
    bootstrap_weights: str = "rademacher",
    seed=None,
) -> list[Effect]:
    """Regression of the outcome on condition indicators (+ covariates) with
    cluster-robust errors from :func:`spillover.variance.sandwich` (``vcov``: CR2 with
    Bell-McCaffrey df by default; CR1 as statsmodels, with t(G-1)).

    With ``bootstrap`` (a number of draws), the p-value and interval of each contrast
    come from the restricted wild cluster bootstrap
    (:func:`spillover.variance.wild_cluster_bootstrap`, CR1-studentized); the standard
    error stays ``vcov``'s: the choice for few clusters."""
    if "cluster" not in table:
        raise InputError("ols-cluster needs clusters (unit_id, cluster_id) for cluster-robust errors.")
    vcov = check_vcov(vcov)
    conditions = contrasted_conditions(table, control)
    g = table["cluster"].nunique()
    check_cluster_count(g, "ols-cluster", vcov)
    columns = [indicator_columns(table, conditions)] + [table[[c]].to_numpy(dtype=float) for c in covariates]
    X = np.column_stack(columns)
    if len(table) <= X.shape[1]:
        raise InputError(f"ols-cluster: {len(table)} units for {X.shape[1]} parameters; it needs more units "
                         "than conditions plus covariates.")
    y, groups = table["y"].to_numpy(dtype=float), table["cluster"].to_numpy()
    if bootstrap is None:
        fit = ols(y, X, groups, vcov)
        return [make_effect(cond, control, mapping, fit.beta[i], np.sqrt(fit.cov[i, i]), fit.df[i], alpha, len(table), g,
                        f"OLS / {vcov_label(vcov)}")
                for i, cond in enumerate(conditions, start=1)]
    fit = ols(y, X, groups, vcov)
    codes, uniques = pd.factorize(groups)
    sums = cluster_stats(X, y, codes, len(uniques))
    return _bootstrapped(fit, sums.cross, sums.scores, len(table), conditions, control, mapping, alpha, bootstrap,
                         bootstrap_weights, seed, vcov)


def _bootstrapped(fit, cross, xty, n_obs, conditions, control, mapping, alpha, bootstrap, weights, seed, vcov):
    """Effects whose p-values and intervals come from the wild cluster bootstrap on
    per-cluster sums; standard errors from ``fit`` (the ``vcov`` sandwich)."""
    rng = check_seed(seed)
    effects = []
    for i, cond in enumerate(conditions, start=1):
        boot = wild_cluster_bootstrap_from_sums(cross, xty, n_obs, i, n_boot=bootstrap, weights=weights,
                                                alpha=alpha, seed=rng)
        draws = f"all {boot.n_boot} sign patterns" if boot.enumerated else f"{boot.n_boot} draws"
        effects.append(Effect(estimand_of(cond, control, mapping), cond, boot.estimate,
                              float(np.sqrt(fit.cov[i, i])), boot.ci[0], boot.ci[1], boot.p_value, int(n_obs),
                              cross.shape[0],
                              f"OLS / {vcov} se; p-value and CI: wild cluster bootstrap (WCR, {weights}, {draws})",
                              float(fit.df[i])))
    return effects


def network_pairs(graph, unit_ids: pd.Index, clusters: np.ndarray, bandwidth: int = 2) -> sp.csr_array:
    """Pairs of the given units treated as dependent by :func:`ols_network`: units of one
    randomization cluster, and units within ``bandwidth`` hops of each other in the
    graph among the given units (two units whose one-hop exposures share a neighbour are
    two hops apart). A unit the graph does not hold (an isolate: an edge list cannot list
    it) depends on its cluster only.

    Examples
    --------
    >>> from spillover import SocialGraph
    >>> graph = SocialGraph.from_edges(pd.DataFrame({"source": [0, 1], "target": [1, 2]}))
    >>> network_pairs(graph, pd.Index([0, 1, 2, 9]), np.array([0, 1, 2, 3]), bandwidth=1).toarray().astype(int)
    array([[1, 1, 0, 0],
           [1, 1, 1, 0],
           [0, 1, 1, 0],
           [0, 0, 0, 1]])
    """
    if bandwidth < 0:
        raise InputError(f"bandwidth={bandwidth} must be a number of hops >= 0.")
    adjacency = _unit_adjacency(graph, unit_ids)
    n = adjacency.shape[0]
    reach = sp.eye_array(n, format="csr")
    step = reach
    for _ in range(bandwidth):  # a loop over hops
        step = sp.csr_array(step @ adjacency)
        step.data[:] = 1.0
        reach = reach + step
    codes, uniques = pd.factorize(clusters)
    members = group_indicator(codes, len(uniques))
    pairs = sp.csr_array(reach + members.T @ members)
    pairs.data[:] = 1.0
    return pairs


def _unit_adjacency(graph, unit_ids: pd.Index) -> sp.csr_array:
    """The graph among the given units (rows and columns in their order); units the graph
    does not hold have no edge."""
    kernel = ExposureGraph.build(graph, 1)
    if kernel.own_index is None:
        raise InputError("ols-network is defined on social graphs (units are the randomized nodes).")
    where = kernel.units.get_indexer(unit_ids)
    inside = np.flatnonzero(where >= 0)
    sub = sp.csr_array(kernel.neighbors[where[inside]][:, where[inside]], dtype=np.float64).tocoo()
    n = len(unit_ids)
    return sp.csr_array((sub.data, (inside[sub.row], inside[sub.col])), shape=(n, n))


LEUNG_EXACT_NODES = 3_000  # up to this many units in the giant component the average path length is exact
LEUNG_SOURCES = 64  # beyond, it is averaged over the shortest paths from this many random sources


def leung_bandwidth(adjacency: sp.csr_array, seed=0) -> tuple[int, float, bool]:
    """Leung's (2022) bandwidth for the network HAC, as ``networkinference`` chooses it:
    with ``L`` the average path length of the giant component and ``d`` the mean degree,
    ``round(L / 2)`` when ``L < 2 log(n) / log(d)`` (neighbourhoods grow exponentially),
    else ``round(L ** (1/3))``. Returns the bandwidth, ``L`` and whether ``L`` is exact (up
    to :data:`LEUNG_EXACT_NODES` units in the giant component; beyond, it is the mean over
    :data:`LEUNG_SOURCES` random sources' shortest paths).

    Examples
    --------
    >>> import networkx as nx
    >>> ring = sp.csr_array(nx.to_scipy_sparse_array(nx.cycle_graph(40)))
    >>> leung_bandwidth(ring)                       # networkinference gives b = 5 too
    (5, 10.256410256410257, True)
    """
    from scipy.sparse import csgraph

    n = adjacency.shape[0]
    if n < 2 or adjacency.nnz == 0:
        return 0, 0.0, True
    _, labels = csgraph.connected_components(adjacency, directed=False)
    giant = np.flatnonzero(labels == np.bincount(labels).argmax())
    sub = sp.csr_array(adjacency[giant][:, giant])
    g = giant.size
    exact = g <= LEUNG_EXACT_NODES
    sources = np.arange(g) if exact else np.sort(check_seed(seed).choice(g, LEUNG_SOURCES, replace=False))
    total = 0.0
    for start in range(0, sources.size, 256):  # chunks of sources bound the (sources x nodes) distances
        distances = csgraph.shortest_path(sub, directed=False, unweighted=True, indices=sources[start:start + 256])
        total += float(distances.sum())
    path_length = total / (sources.size * (g - 1))
    mean_degree = float(adjacency.sum()) / n
    growing = mean_degree > 1 and path_length < 2 * np.log(n) / np.log(mean_degree)
    return int(round(path_length / 2 if growing else path_length ** (1 / 3))), path_length, exact


def ols_network(
    table: pd.DataFrame,
    control: str,
    graph,
    alpha: float = 0.05,
    covariates: Sequence[str] = (),
    mapping: Mapping | None = None,
    bandwidth: int | str = "auto",
    notes: list[str] | None = None,
) -> list[Effect]:
    """The regression of :func:`ols_cluster` with a network-HAC variance (uniform kernel;
    Leung 2022, Gao & Ding 2023): units of one randomization cluster and units within
    ``bandwidth`` hops are treated as dependent (:func:`network_pairs`,
    :func:`spillover.variance.dependence_robust`). Exposure to spillover depends on
    neighbours' clusters, and outcomes of nearby units are correlated across cluster
    borders, which clustering by the randomization cluster alone misses.

    ``bandwidth="auto"`` (default) takes Leung's rule (:func:`leung_bandwidth`) on the
    graph among the analysed units; ``notes`` (a list) gets the rule and the value."""
    if "cluster" not in table:
        raise InputError("ols-network needs the randomization clusters (unit_id, cluster_id).")
    if graph is None:
        raise InputError("ols-network needs the graph (--edges), to find which units are near each other.")
    conditions = contrasted_conditions(table, control)
    units = pd.Index(table["unit_id"])
    if bandwidth == "auto":
        bandwidth, path_length, exact = leung_bandwidth(_unit_adjacency(graph, units))
        if notes is not None:
            notes.append(f"network-HAC bandwidth {bandwidth} hops by Leung's rule (average path length "
                         f"{path_length:.2f}{'' if exact else f', from {LEUNG_SOURCES} sources'}); --bandwidth to "
                         "choose another")
    bandwidth = int(bandwidth)
    pairs = network_pairs(graph, units, table["cluster"].to_numpy(), bandwidth)
    X = np.column_stack([indicator_columns(table, conditions)] + [table[[c]].to_numpy(dtype=float) for c in covariates])
    y = table["y"].to_numpy(dtype=float)
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    g = table["cluster"].nunique()
    fit = dependence_robust(X, y - X @ beta, pairs, g)
    return [make_effect(cond, control, mapping, beta[i], np.sqrt(fit.cov[i, i]), fit.df[i], alpha, len(table), g,
                        f"OLS / network HAC ({bandwidth} hops + cluster), t(G-1)")
            for i, cond in enumerate(conditions, start=1)]


def estimate_from_stats(
    stats: pd.DataFrame,
    method: str,
    control: str,
    *,
    alpha: float = 0.05,
    vcov: str = DEFAULT_VCOV,
    bootstrap: int | str | None = "auto",
    bootstrap_weights: str = "rademacher",
    seed=None,
) -> Effects:
    """``difference-in-means``, ``cluster-means`` or ``ols-cluster`` (without covariates)
    from per-(cluster, condition) sufficient statistics ``cluster_id, condition, n,
    sum_y, sum_y2``: what an out-of-core or distributed engine reduces the data to, so
    the estimate is computed on a small table and equals the in-memory one (the same
    variance kernel, fed per-cluster cross-products and scores).

    Examples
    --------
    >>> import pandas as pd
    >>> stats = pd.DataFrame({"cluster_id": [0, 1, 2, 3], "condition": ["treated", "control"] * 2,
    ...                       "n": [10, 10, 10, 10], "sum_y": [30.0, 10.0, 25.0, 12.0],
    ...                       "sum_y2": [100.0, 14.0, 70.0, 16.0]})
    >>> round(estimate_from_stats(stats, "difference-in-means", "control")["treated"].estimate, 3)
    1.65
    """
    needed = {"cluster_id", "condition", "n", "sum_y", "sum_y2"}
    if not needed <= set(stats.columns):
        raise InputError(f"sufficient statistics need columns {sorted(needed)}; got {list(stats.columns)}.")
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha={alpha} must be strictly between 0 and 1.")
    vcov = check_vcov(vcov)
    stats = stats.assign(condition=stats["condition"].astype(str))
    per = stats.groupby("condition")[["n", "sum_y", "sum_y2"]].sum()
    present = list(per.index)
    if control not in present:
        raise no_control_error(control, per["n"].astype(int).to_dict())
    conditions = [c for c in present if c != control]
    mapping = infer_mapping(present)
    n, mean = per["n"], per["sum_y"] / per["n"]
    effects = []
    if method == "difference-in-means":
        var = (per["sum_y2"] - n * mean**2) / (n - 1)
        for c in conditions:
            est = float(mean[c] - mean[control])
            se = float(np.sqrt(var[c] / n[c] + var[control] / n[control]))
            effects.append(make_effect(c, control, mapping, est, se, np.inf, alpha, n[c] + n[control], None,
                                   "difference in means / Neyman"))
    elif method == "cluster-means":
        table = pd.DataFrame({"condition": stats["condition"], "cluster": stats["cluster_id"],
                              "y": stats["sum_y"] / stats["n"]})
        for effect in cluster_means(table, control, alpha, vcov, mapping):
            effects.append(Effect(**{**asdict(effect), "n_units": int(n[effect.condition] + n[control])}))
    elif method == "ols-cluster":
        codes, uniques = pd.factorize(stats["cluster_id"])
        g = len(uniques)
        check_cluster_count(g, "ols-cluster", vcov)
        X = indicator_columns(stats, conditions)                       # one row per (cluster, condition) cell
        weight = stats["n"].to_numpy(dtype=float)
        resid = (stats["sum_y"] - stats["n"] * stats["condition"].map(mean)).to_numpy(dtype=float)
        k = X.shape[1]
        cross = np.zeros((g, k, k))
        np.add.at(cross, codes, weight[:, None, None] * X[:, :, None] * X[:, None, :])
        scores = np.zeros((g, k))
        np.add.at(scores, codes, X * resid[:, None])
        fit = sandwich(ClusterStats(cross, scores, int(n.sum())), vcov)
        total = int(n.sum())
        if bootstrap == "auto":
            bootstrap = AUTO_BOOTSTRAP_DRAWS if g < FEW_CLUSTERS else None
        if bootstrap is not None:
            xty = np.zeros((g, k))
            np.add.at(xty, codes, X * stats["sum_y"].to_numpy(dtype=float)[:, None])
            effects = _bootstrapped(fit, cross, xty, total, conditions, control, mapping, alpha, bootstrap,
                                    bootstrap_weights, seed, vcov)
        else:
            for j, c in enumerate(conditions, start=1):
                effects.append(make_effect(c, control, mapping, mean[c] - mean[control], np.sqrt(fit.cov[j, j]),
                                       fit.df[j], alpha, total, g, f"OLS / {vcov_label(vcov)}"))
    else:
        raise InputError(f"{method} cannot be computed from sufficient statistics; use the memory engine.")
    return Effects(tuple(effects), control, alpha)


def sufficient_stats(table: pd.DataFrame) -> pd.DataFrame:
    """Per-(cluster, condition) ``n, sum_y, sum_y2`` of an analysis table (memory engine).

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"cluster": [0, 0, 1], "condition": ["t", "t", "c"], "y": [1.0, 3.0, 2.0]})
    >>> sufficient_stats(table).values.tolist()
    [[0, 't', 2, 4.0, 10.0], [1, 'c', 1, 2.0, 4.0]]
    """
    grouped = table.assign(y2=table["y"] ** 2).groupby(["cluster", "condition"], observed=True)
    out = grouped.agg(n=("y", "size"), sum_y=("y", "sum"), sum_y2=("y2", "sum")).reset_index()
    return out.rename(columns={"cluster": "cluster_id"})


# --------------------------------------------------------------------------- the registry's entries


def _fit_difference(a: Analysis) -> list[Effect]:
    return difference_in_means(a.table, a.control, a.alpha, a.mapping)


def _fit_cluster_means(a: Analysis) -> list[Effect]:
    return cluster_means(a.table, a.control, a.alpha, a.vcov, a.mapping, a.covariates)


def _fit_ols_cluster(a: Analysis) -> list[Effect]:
    if a.kind != "own":
        a.notes.append("cluster-robust errors by the randomization cluster treat units of different clusters as "
                       "independent; where outcomes are correlated across cluster borders (communities larger "
                       "than the clusters), intervals are too narrow: compare ols-network, or cluster coarser")
    return ols_cluster(a.table, a.control, a.alpha, a.covariates, a.vcov, a.mapping, a.bootstrap, a.bootstrap_weights,
                       a.seed)


def _fit_ols_network(a: Analysis) -> list[Effect]:
    return ols_network(a.table, a.control, a.graph, a.alpha, a.covariates, a.mapping, a.bandwidth, a.notes)


_BY_CLUSTER = ("whole clusters were randomized: errors clustered by the randomization cluster (CR2; the wild "
               "bootstrap for few clusters)")
register(Estimator(
    "difference-in-means", "difference of the conditions' means, Neyman standard errors", _fit_difference,
    verdicts={("unit", "own"): Verdict("recommended", "each unit was randomized on its own: the difference in arm "
                                                      "means with Neyman errors"),
              ("unit", "exposure"): Verdict("refused", UNEQUAL, "hajek"),
              ("cluster", "own"): Verdict("refused", CLUSTERED, "ols-cluster"),
              ("cluster", "exposure"): Verdict("refused", CLUSTERED, "ols-cluster"),
              ("treated-side", "exposure"): Verdict("refused", SHARED_SIDE, "hajek")}))
register(Estimator(
    "cluster-means", "difference of the conditions' mean cluster means, cluster-robust errors", _fit_cluster_means,
    ("clusters",), covariates=True))
register(Estimator(
    "ols-cluster", "OLS on condition indicators, cluster-robust errors (CR2, Bell-McCaffrey df; the wild cluster "
    "bootstrap below 30 clusters)", _fit_ols_cluster, ("clusters",), covariates=True, bootstrap=True,
    verdicts={("cluster", "own"): Verdict("recommended", _BY_CLUSTER),
              ("cluster", "exposure"): Verdict("recommended", _BY_CLUSTER)}))
register(Estimator(
    "ols-network", "OLS on condition indicators, network-HAC errors (neighbours within a bandwidth and units of one "
    "randomization cluster are dependent)", _fit_ols_network, ("clusters", "graph"), covariates=True,
    verdicts={("treated-side", "exposure"): Verdict("refused", SOCIAL_ONLY, "hajek")}))
