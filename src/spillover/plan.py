"""Before the experiment: what each design can detect on your own data, and what
interference would cost it.

From a historical outcome table (``unit_id, y``, optionally a pre-period column) and the
graph, :func:`plan` estimates, for every candidate unit of randomization, the intraclass
correlation of the outcome, the design effect with unequal cluster sizes, the effective
sample size, the standard error and **minimum detectable effect** of the difference in
means, and the **interference bias** a cluster design keeps: under the linear spillover
model ``y = tau z + gamma tau (treated share of neighbours) + noise``, randomizing
clusters recovers only the spillover inside clusters, so the estimate of the global
effect misses ``gamma tau`` times the mean share of a unit's neighbours outside its
cluster. Everything is analytic (one pass over units and edges).

The intraclass correlation comes two ways: the ANOVA estimator (used for the design
effect; it is the classical pair of Kish's formula) and the REML variance ratio of the
random-intercept model, which equals ``statsmodels``' ``MixedLM`` fit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from .clustering import cluster, effective_n_clusters
from .display import notebook_html
from .errors import DesignError, InputError, InterferenceWarning
from .graph import CollaborationNetwork, SocialGraph
from .io import TableLike, read_table, require_columns, require_numbers
from .seeds import Seed
from .simulate.ranking import COVERAGE_FLOOR, interval_verdicts
from .variance import t_quantile

__all__ = ["Plan", "icc_anova", "icc_reml", "interval_coverage", "minimum_detectable_effect", "outside_share", "plan"]


# --------------------------------------------------------------------------- intraclass correlation


def _cluster_moments(y: np.ndarray, clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-cluster sizes and means, and the within-cluster sum of squares."""
    codes, _ = pd.factorize(np.asarray(clusters))
    if (codes < 0).any():
        raise InputError("clusters: missing cluster labels; every unit needs a cluster.")
    y = np.asarray(y, dtype=float)
    n = np.bincount(codes).astype(float)
    mean = np.bincount(codes, weights=y) / n
    within = float(np.sum((y - mean[codes]) ** 2))
    return n, mean, within


def icc_anova(y: np.ndarray, clusters: np.ndarray) -> float:
    """The ANOVA estimator of the intraclass correlation, for unequal cluster sizes:
    ``(MSB - MSW) / (MSB + (n0 - 1) MSW)`` with ``n0 = (N - sum n_g^2 / N) / (G - 1)``
    (Donner 1986). It can be negative; design effects use ``max(icc, 0)``.

    Examples
    --------
    >>> import numpy as np
    >>> clusters = np.repeat(np.arange(200), 10)
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=200)[clusters] + rng.normal(size=2_000)       # true ICC 0.5
    >>> round(icc_anova(y, clusters), 1)
    0.5
    """
    n, mean, within = _cluster_moments(y, clusters)
    big_n, g = n.sum(), n.size
    if g < 2 or big_n <= g:
        raise InputError(f"{g} cluster(s) of {int(big_n)} units: an intraclass correlation needs two clusters and "
                         "more units than clusters.")
    grand = np.sum(n * mean) / big_n
    msb = np.sum(n * (mean - grand) ** 2) / (g - 1)
    msw = within / (big_n - g)
    n0 = (big_n - np.sum(n**2) / big_n) / (g - 1)
    return float((msb - msw) / (msb + (n0 - 1) * msw))


def icc_reml(y: np.ndarray, clusters: np.ndarray) -> float:
    """The intraclass correlation ``s_b^2 / (s_b^2 + s_e^2)`` of the random-intercept
    model ``y = mu + b_g + e``, with variances by restricted maximum likelihood (what
    ``statsmodels.MixedLM`` fits by default), computed from per-cluster sizes, means and
    within sums of squares: the profile REML likelihood of ``lambda = s_b^2 / s_e^2`` is
    maximised in one dimension. Never negative.

    Examples
    --------
    >>> import numpy as np
    >>> clusters = np.repeat(np.arange(300), np.arange(300) % 7 + 2)     # unequal sizes
    >>> rng = np.random.default_rng(1)
    >>> y = 0.5 * rng.normal(size=300)[clusters] + rng.normal(size=clusters.size)   # true ICC 0.2
    >>> round(icc_reml(y, clusters), 1)
    0.2
    """
    n, mean, within = _cluster_moments(y, clusters)
    big_n = n.sum()
    if n.size < 2:
        raise InputError("one cluster: an intraclass correlation needs at least two.")

    def negative_restricted_loglik(log_lambda: float) -> float:
        lam = np.exp(log_lambda)
        w = n / (1.0 + lam * n)
        mu = np.sum(w * mean) / np.sum(w)
        q = within + np.sum(w * (mean - mu) ** 2)
        sigma2 = q / (big_n - 1)
        return 0.5 * ((big_n - 1) * np.log(sigma2) + np.sum(np.log1p(lam * n)) + np.log(np.sum(w)))

    from scipy import optimize

    result = optimize.minimize_scalar(negative_restricted_loglik, bounds=(-30.0, 15.0), method="bounded",
                                      options={"xatol": 1e-10})
    lam = float(np.exp(result.x))
    if negative_restricted_loglik(-30.0) <= result.fun:  # the boundary: no between-cluster variance
        lam = 0.0
    return lam / (1.0 + lam)


# --------------------------------------------------------------------------- power and interference


def minimum_detectable_effect(se: float, df: float = np.inf, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true effect a two-sided test at level ``alpha`` detects with
    probability ``power``: ``(t_{1-alpha/2, df} + t_{power, df}) se``.

    Examples
    --------
    >>> round(minimum_detectable_effect(0.1), 4)                 # normal reference: 2.8016 se
    0.2802
    """
    if not (0 < alpha < 1 and 0 < power < 1):
        raise InputError(f"alpha={alpha} and power={power} must be in (0, 1).")
    return float((t_quantile(df, 1 - alpha / 2) + t_quantile(df, power)) * se)


def outside_share(graph: SocialGraph, labels: np.ndarray) -> np.ndarray:
    """Each unit's share of neighbours in other clusters (0 for a unit without
    neighbours): what a cluster design leaves of interference.

    Examples
    --------
    >>> import pandas as pd
    >>> from spillover import SocialGraph
    >>> g = SocialGraph.from_edges(pd.DataFrame({"source": [0, 1, 2], "target": [1, 2, 3]}))
    >>> outside_share(g, np.array([0, 0, 1, 1])).tolist()
    [0.0, 0.5, 0.5, 0.0]
    """
    adjacency = graph.symmetric()
    labels = np.asarray(labels)
    degree = np.diff(adjacency.indptr)
    rows = np.repeat(np.arange(adjacency.shape[0]), degree)
    crossing = np.bincount(rows, weights=(labels[rows] != labels[adjacency.indices]).astype(float),
                           minlength=adjacency.shape[0])
    return np.divide(crossing, degree, out=np.zeros(adjacency.shape[0]), where=degree > 0)


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Plan:
    """One row per candidate design (``table``) and the one recommended.

    Columns: ``design``, ``n_units`` (analysed), ``n_clusters``, ``effective_n_clusters``,
    ``icc`` (ANOVA) and ``icc_reml``, ``design_effect``, ``effective_n``, ``variance_factor``
    (``1 - rho^2`` from the pre-period outcome, 1 without), ``se``, ``mde``,
    ``outside_share`` (mean share of neighbours in other clusters), ``interference_bias``
    (at the assumed spillover), ``rmse`` (``sqrt(se^2 + bias^2)``), ``coverage`` (of the
    95% interval with that bias: :func:`interval_coverage`) and ``intervals`` (``ok``, or
    ``UNDER-COVERS`` below 0.93), the daily job's always-valid band (``mde_sequential``,
    ``days_to_detect``, ``days_to_power``: see :func:`plan`'s ``duration_days``) and
    ``recommended`` (the smallest ``rmse`` among designs whose intervals cover at least
    0.93, when any does; on a collaboration network never the individual design, which
    would show users of one project different products).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from spillover import synth
    >>> network = synth.collaboration_network(3_000, seed=1)
    >>> history = pd.DataFrame({"unit_id": network.users, "y": np.random.default_rng(0).normal(size=3_000)})
    >>> result = plan(network, history, effect=0.1)
    >>> result.table["design"].tolist()
    ['individual', 'project', 'component', 'stratified-component']
    >>> result.recommended in result.table["design"].tolist()
    True
    """

    table: pd.DataFrame
    alpha: float
    power: float
    spillover: float
    effect: float | None

    @property
    def recommended(self) -> str:
        """The design with the smallest ``rmse``: the most precise once interference bias counts."""
        return str(self.table.loc[self.table["recommended"], "design"].iloc[0])

    def _repr_html_(self) -> str:
        return notebook_html(f"Plan: power {self.power:g} at alpha {self.alpha:g}, assumed spillover "
                             f"{self.spillover:g}", self.table, [f"recommended: {self.recommended}"])

    def to_json(self) -> dict:
        """The ``plan --json`` object: ``{"candidates": [...], "recommended": NAME}``."""
        return {"candidates": self.table.to_dict(orient="records"), "recommended": self.recommended,
                "alpha": self.alpha, "power": self.power, "spillover": self.spillover}


def _sequential_columns(table: pd.DataFrame, df: np.ndarray, target: float, alpha: float, power: float,
                        duration_days: int) -> None:
    """The always-valid band's MDE by the planned end and its days to detection, per design
    (``df``: each design's degrees of freedom, as its fixed MDE takes them)."""
    from scipy import special

    from .sequential import best_ratio, days_to_detection, half_width

    if duration_days < 1:
        raise InputError(f"duration_days={duration_days} must be at least 1.")
    se = table["se"].to_numpy(dtype=float)
    multiple = half_width(se, best_ratio(alpha) * se**2, alpha, df) / se
    table["mde_sequential"] = (multiple + special.ndtri(power)) * se
    for row, (effect, s, d) in enumerate(zip(target + table["interference_bias"], se, df)):
        median, sure = days_to_detection(float(effect), s, duration_days, alpha=alpha, power=power, df=d)
        table.loc[row, "days_to_detect"], table.loc[row, "days_to_power"] = median[0], sure[0]


def _candidates(graph, resolutions, seed: Seed, sample_fraction: float) -> dict[str, tuple[np.ndarray, float]]:
    """Cluster labels (aligned with the graph's units) and the analysed share of each candidate."""
    if isinstance(graph, CollaborationNetwork):
        components = cluster(graph, "components").labels
        return {"individual": (np.arange(graph.n_users), 1.0), "project": (graph.primary_project(), 1.0),
                "component": (components, 1.0), "stratified-component": (components, sample_fraction)}
    out = {"individual": (np.arange(graph.n_nodes), 1.0)}
    for resolution in resolutions:  # a loop over candidate clusterings; each is vectorised
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InterferenceWarning)  # the cut is reported as the bias term
            labels = cluster(graph, "louvain", resolution=resolution, seed=seed).labels
        out[f"louvain r={resolution:g}"] = (labels, 1.0)
    return out


def plan(
    graph: SocialGraph | CollaborationNetwork,
    history: TableLike,
    *,
    clusters: Mapping[str, np.ndarray] | None = None,
    resolutions: tuple[float, ...] = (1.0, 4.0, 16.0),
    outcome_col: str = "y",
    pre_col: str | None = None,
    effect: float | None = None,
    spillover: float = 0.25,
    treat_fraction: float = 0.5,
    sample_fraction: float = 0.1,
    alpha: float = 0.05,
    power: float = 0.8,
    duration_days: int = 30,
    seed: Seed = 0,
) -> Plan:
    """What each candidate design can detect on ``history``, and its interference bias.

    Parameters
    ----------
    graph
        A social graph or a collaboration network (whose user graph carries the spillover).
    history
        Historical outcomes: ``unit_id`` and ``outcome_col`` (and ``pre_col``, a pre-period
        outcome for CUPED, when given).
    clusters
        Candidates to compare, ``{name: label per unit}``; by default individual and
        Louvain clusters at ``resolutions`` (social graphs), or individual, project,
        component and stratified component (collaboration networks).
    effect
        The effect you hope to detect (the global effect); the bias is reported for it
        (default: the individual design's MDE).
    spillover
        Assumed spillover strength ``gamma``: the effect of a fully treated neighbourhood
        relative to the direct effect.
    treat_fraction, sample_fraction
        The treated share, and the share of clusters the stratified design samples.
    alpha, power
        The test's level and the power the MDE is for.
    duration_days
        The planned duration of a daily job analysed under the always-valid band
        (``inference = "sequential"``): ``mde_sequential`` is the effect the band detects
        with ``power`` by then, and ``days_to_detect`` / ``days_to_power`` the days it takes
        to exclude zero for the planned effect (less its interference bias) with probability
        one half / ``power`` (:func:`spillover.sequential.days_to_detection`; information
        taken to grow with the days, ``se`` being the planned end's).
    seed
        Seed of the Louvain clusterings.

    Returns
    -------
    Plan

    Notes
    -----
    The variance of the difference in means is ``s^2 / (n p (1 - p)) * deff * (1 - rho^2)``
    with ``deff = 1 + (m_w - 1) icc`` (``m_w``: the size-weighted mean cluster size), the
    t reference with ``G - 2`` degrees of freedom, and ``rho`` the correlation of cluster
    means of the outcome and the pre-period outcome. Stratification is not credited
    (conservative). A candidate with fewer than two effective clusters is an error.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from spillover import synth
    >>> graph = synth.social_graph(2_000, seed=1)
    >>> history = pd.DataFrame({"unit_id": graph.nodes, "y": np.random.default_rng(0).normal(size=2_000)})
    >>> table = plan(graph, history, resolutions=(1.0,), effect=0.2).table
    >>> table[["design", "design_effect"]].round(1).values.tolist()[0]
    ['individual', 1.0]
    """
    frame = read_table(history, what="history")
    require_columns(frame, ["unit_id", outcome_col] + ([pre_col] if pre_col else []), "history")
    frame = require_numbers(frame, [outcome_col] + ([pre_col] if pre_col else []), "history")
    if frame["unit_id"].duplicated().any():
        raise InputError("history: unit_id appears more than once; one row per unit.")
    if not 0 < treat_fraction < 1 or not 0 < sample_fraction <= 1:
        raise DesignError(f"treat_fraction={treat_fraction} must be in (0, 1) and sample_fraction={sample_fraction} "
                          "in (0, 1].")
    social = graph.user_graph() if isinstance(graph, CollaborationNetwork) else graph
    units = social.nodes
    aligned = frame.set_index("unit_id").reindex(units)
    y = aligned[outcome_col].to_numpy(dtype=float)
    observed = np.isfinite(y)
    if observed.sum() < 4:
        raise InputError(f"history: {int(observed.sum())} of the graph's units have an outcome; a plan needs more.")
    pre = aligned[pre_col].to_numpy(dtype=float) if pre_col else None
    if pre is not None:
        observed &= np.isfinite(pre)
    candidates = clusters if clusters is not None else _candidates(graph, resolutions, seed, sample_fraction)
    variance = float(np.var(y[observed], ddof=1))
    p = treat_fraction
    rows, dfs = [], []
    for name, value in candidates.items():  # a loop over candidates; each is one pass over units
        labels, share = value if isinstance(value, tuple) else (np.asarray(value), 1.0)
        labels = np.asarray(labels)
        if labels.size != len(units):
            raise InputError(f"candidate {name!r}: {labels.size} labels for {len(units)} units.")
        codes, _ = pd.factorize(labels[observed])
        sizes = np.bincount(codes)
        n_eff_clusters = effective_n_clusters(sizes) * share
        if n_eff_clusters < 2:
            raise DesignError(f"candidate {name!r}: {n_eff_clusters:.2f} effective clusters (one cluster holds most "
                              "units): no design can estimate an effect with it; split the largest clusters.")
        individual = sizes.max() == 1
        icc = 0.0 if individual else icc_anova(y[observed], codes)
        icc_mixed = 0.0 if individual else icc_reml(y[observed], codes)
        deff = 1.0 + (np.sum(sizes.astype(float) ** 2) / sizes.sum() - 1.0) * max(icc, 0.0)
        factor = 1.0
        if pre is not None:
            if individual:
                rho = np.corrcoef(y[observed], pre[observed])[0, 1]
            else:
                n_g = sizes.astype(float)
                my = np.bincount(codes, weights=y[observed]) / n_g
                mx = np.bincount(codes, weights=pre[observed]) / n_g
                rho = np.corrcoef(my, mx)[0, 1]
            factor = float(1.0 - rho**2)
        n_analysed = share * observed.sum()
        se = float(np.sqrt(variance / (n_analysed * p * (1 - p)) * deff * factor))
        n_clusters = share * sizes.size
        df = max(n_clusters - 2, 1.0)
        dfs.append(df)
        outside = float(outside_share(social, labels)[observed].mean())
        rows.append({"design": name, "n_units": int(round(n_analysed)), "n_clusters": int(round(n_clusters)),
                     "effective_n_clusters": n_eff_clusters, "icc": icc, "icc_reml": icc_mixed,
                     "design_effect": deff, "effective_n": n_analysed / deff, "variance_factor": factor, "se": se,
                     "mde": minimum_detectable_effect(se, df, alpha=alpha, power=power), "outside_share": outside})
    table = pd.DataFrame(rows)
    target = float(table["mde"].iloc[0]) if effect is None else float(effect)
    connected = float(np.mean(np.diff(social.symmetric().indptr)[observed] > 0))
    tau = target / (1.0 + spillover * connected)  # the direct effect behind the planned global effect
    table["interference_bias"] = -spillover * tau * table["outside_share"]
    table["rmse"] = np.hypot(table["se"], table["interference_bias"])
    table["coverage"] = interval_coverage(table["interference_bias"].to_numpy(), table["se"].to_numpy(),
                                          np.array(dfs), alpha)
    table["intervals"] = interval_verdicts(table)
    _sequential_columns(table, np.array(dfs), target, alpha, power, int(duration_days))
    # users who share a project must see the same product: on a collaboration network an
    # individual design is listed for reference but cannot be recommended; nor is one whose
    # intervals the interference bias would push below the coverage floor, unless all are
    admissible = ~((table["design"] == "individual") & isinstance(graph, CollaborationNetwork))
    honest = admissible & (table["coverage"] >= COVERAGE_FLOOR)
    table["recommended"] = False
    table.loc[table["rmse"].where(honest if honest.any() else admissible).idxmin(), "recommended"] = True
    return Plan(table, alpha, power, spillover, effect)


def interval_coverage(bias: np.ndarray, se: np.ndarray, df: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Coverage of the ``1 - alpha`` t interval (``df`` degrees of freedom) of an estimate
    with this ``bias`` and standard error ``se``: ``P(|bias / se + T| <= t_q)``, the share
    of experiments whose interval holds the truth when the bias is what interference
    leaves.

    >>> interval_coverage(np.array([0.0, 1.0]), np.array([1.0, 1.0]), np.array([np.inf, np.inf])).round(3).tolist()
    [0.95, 0.83]
    """
    from scipy import special

    df = np.asarray(df, dtype=float)
    shift = np.abs(np.asarray(bias, dtype=float)) / np.asarray(se, dtype=float)
    finite = np.isfinite(df)
    q = t_quantile(df, 1 - alpha / 2)
    cdf = (lambda x: np.where(finite, special.stdtr(np.where(finite, df, 1.0), x), special.ndtr(x)))
    return cdf(q - shift) - cdf(-q - shift)
