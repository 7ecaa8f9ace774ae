"""``estimate()``: the one entry point that picks the estimator, checks its inputs and
runs the sample-ratio checks."""

from __future__ import annotations

import warnings
from typing import Mapping as TypingMapping, Sequence

import pandas as pd

from ..clustering import Clustering
from ..errors import (
    FEW_CLUSTERS,
    InputError,
    SampleRatioWarning,
    show_id,
)
from ..exposure import ExposureProbabilities, Mapping, default_control, get_mapping, infer_mapping
from ..variance import (
    DEFAULT_VCOV,
    check_vcov,
)
from .cluster_robust import AUTO_BOOTSTRAP_DRAWS, cluster_means, difference_in_means, ols_cluster, ols_network
from .global_effect import regression_adjustment
from .results import Effects
from .table import analysis_table, condition_categories, check_probabilities_match, count_clusters, sample_ratio_checks
from .weighting import horvitz_thompson, weighted_least_squares


METHODS = ("difference-in-means", "cluster-means", "ols-cluster", "ols-network", "ht", "hajek", "wls",
           "regression-adjustment")


COVARIATE_METHODS = ("cluster-means", "ols-cluster", "ols-network", "wls")  # the methods that adjust for covariates


PROBABILITY_ESTIMATORS = ("ht", "hajek", "wls")  # the methods that weight by the design's exposure probabilities


def estimate(
    outcomes: pd.DataFrame,
    exposure: pd.DataFrame,
    method: str = "hajek",
    *,
    probabilities: ExposureProbabilities | None = None,
    clusters: "pd.DataFrame | pd.Series | Clustering | None" = None,
    control: str | None = None,
    mapping: str | Mapping | None = None,
    outcome_col: str = "y",
    covariates: Sequence[str] = (),
    missing: str = "drop",
    alpha: float = 0.05,
    vcov: str = DEFAULT_VCOV,
    graph=None,
    bandwidth: int = 2,
    bootstrap: int | str | None = "auto",
    bootstrap_weights: str = "rademacher",
    seed=None,
    min_probability: float = 0.0,
    expected_shares: TypingMapping[int, float] | None = None,
) -> Effects:
    """Estimate every condition's contrast with the control condition.

    Parameters
    ----------
    outcomes
        ``unit_id`` and the outcome column (and any ``covariates``).
    exposure
        The table of :func:`spillover.exposure.exposure`.
    method
        One of :data:`METHODS`. ``ht``/``hajek`` need the design's exposure
        ``probabilities``; ``cluster-means``, ``ols-cluster`` and ``ols-network`` need
        ``clusters`` (the randomization clusters), and ``ols-network`` the ``graph``
        (its network-HAC ``bandwidth`` in hops, default 2).
    bootstrap, bootstrap_weights, seed
        ``ols-cluster`` only: p-values and intervals from the wild cluster bootstrap
        with this many draws (Rademacher or Webb weights). ``"auto"`` (default) uses it
        with 1,999 draws when there are fewer than 30 clusters, where the calibration
        study found cluster-robust t intervals too narrow even with CR2; ``None``
        never.
    min_probability
        ``ht``/``hajek`` only: analyse the units whose probabilities of both conditions
        of a contrast are at least this (a trimmed population, reported in ``method``).
    clusters
        ``unit_id, cluster_id`` (a table, a Series indexed by unit id, or the
        :class:`~spillover.clustering.Clustering` that ``cluster()`` returned).
    control, mapping
        The control condition (default: the mapping's) and the mapping, whose
        ``estimands`` name the contrasts (default: the built-in mappings' names).
    vcov
        ``CR2`` (default: Bell-McCaffrey with its Satterthwaite degrees of freedom,
        reliable with few or unequal clusters), ``CR1`` (statsmodels' default) or ``CR0``.
    outcome_col, covariates
        The outcome column, and outcome-table columns to adjust for (``cluster-means``,
        ``ols-cluster``, ``ols-network``): a pre-period outcome (CUPED) or a prediction of
        the outcome from pre-period data (CUPAC); any other method refuses them.
    missing
        Units with no outcome: ``"drop"`` (with a warning) or ``"error"``.
    graph, bandwidth
        ``ols-network``: the graph, and the hops within which units are dependent;
        ``regression-adjustment``: the graph (the global effect by Chin's regression
        adjustment on the treated share of neighbours, arms from ``exposure``).
    alpha
        Intervals have level ``1 - alpha``.
    expected_shares
        The design's share of each arm (e.g. ``{0: 0.5, 1: 0.5}``): the analysed units
        (and clusters) per arm are tested against them for a sample-ratio mismatch.
        Without them, the analysed units are tested against the assignment's own
        shares (units lost at different rates by arm). A mismatch warns
        (:class:`~spillover.errors.SampleRatioWarning`) and is in the notes.

    Returns
    -------
    Effects
        One :class:`Effect` per contrast, with the level, the method and notes on what
        the interval approximates.

    Notes
    -----
    Units out of the experiment (arm ``-1``) are left out.

    Examples
    --------
    >>> import pandas as pd
    >>> exposure = pd.DataFrame({"unit_id": range(8), "condition": ["treated", "control"] * 4})
    >>> outcomes = pd.DataFrame({"unit_id": range(8), "y": [3.0, 1.0, 2.5, 1.5, 3.5, 0.5, 2.0, 1.0]})
    >>> effect = estimate(outcomes, exposure, "difference-in-means")["treated"]
    >>> round(effect.estimate, 3)
    1.75
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose one of {list(METHODS)}.")
    if missing not in ("drop", "error"):
        raise InputError(f"missing must be 'drop' or 'error', not {show_id(missing)}.")
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha={alpha} must be strictly between 0 and 1 (0.05 gives 95% intervals).")
    vcov = check_vcov(vcov)
    if isinstance(clusters, Clustering):
        clusters = clusters.to_frame()
    if bootstrap == "auto":
        bootstrap = AUTO_BOOTSTRAP_DRAWS if method == "ols-cluster" and clusters is not None \
            and count_clusters(clusters) < FEW_CLUSTERS else None
    elif bootstrap is not None and method != "ols-cluster":
        raise InputError(f"the wild cluster bootstrap applies to ols-cluster, not {method}.")
    if isinstance(mapping, str):
        mapping = get_mapping(mapping)
    covariates = list(covariates)
    if covariates and method not in COVARIATE_METHODS:
        raise InputError(f"{method} does not adjust for covariates; use one of {list(COVARIATE_METHODS)} "
                         "(CUPED: the pre-period outcome as a covariate).")
    table = analysis_table(outcomes, exposure, outcome_col, clusters, missing, covariates)
    if mapping is None and probabilities is not None:
        mapping = probabilities.mapping
    if mapping is None:
        mapping = infer_mapping(condition_categories(table))
    if control is None:
        control = mapping.control if mapping is not None else default_control(condition_categories(table))
    notes: list[str] = []
    if method == "difference-in-means":
        effects = difference_in_means(table, control, alpha, mapping)
    elif method == "cluster-means":
        effects = cluster_means(table, control, alpha, vcov, mapping, covariates)
    elif method == "ols-cluster":
        effects = ols_cluster(table, control, alpha, covariates, vcov, mapping, bootstrap, bootstrap_weights, seed)
        if mapping is None or mapping.name != "fraction":
            notes.append("cluster-robust errors by the randomization cluster treat units of different clusters as "
                         "independent; where outcomes are correlated across cluster borders (communities larger "
                         "than the clusters), intervals are too narrow: compare ols-network, or cluster coarser")
    elif method == "ols-network":
        effects = ols_network(table, control, graph, alpha, covariates, mapping, bandwidth)
    elif method == "regression-adjustment":
        if graph is None or "arm" not in exposure.columns:
            raise InputError("regression-adjustment needs the graph (--edges) and the exposure table's arms.")
        effects = [regression_adjustment(outcomes, graph, exposure[["unit_id", "arm"]].dropna(), outcome_col=outcome_col,
                                         missing=missing, alpha=alpha)]
        control = "no one treated"
        notes.append("the global effect: each unit's fit with every neighbour treated against none (Chin 2019), "
                     "exact when outcomes are linear in the treated share of neighbours")
    elif method == "wls":
        if probabilities is None:
            raise InputError("wls needs exposure probabilities under the design (draws or a design).")
        check_probabilities_match(table, probabilities)
        effects = weighted_least_squares(outcomes, exposure, probabilities, covariates=covariates, control=control,
                                         outcome_col=outcome_col, missing=missing, alpha=alpha)
        notes.extend(probabilities.notes)
    else:
        if probabilities is None:
            raise InputError(f"{method} needs exposure probabilities under the design (draws or a design).")
        check_probabilities_match(table, probabilities)
        effects = horvitz_thompson(table, probabilities, control, alpha, hajek=method == "hajek", mapping=mapping,
                                   min_probability=min_probability)
        notes.extend(probabilities.notes)
        notes.append("the Aronow-Samii variance is conservative: intervals cover at least their level when "
                     "the probabilities are exact (wider than needed where pairs have zero joint probability)")
    health = sample_ratio_checks(exposure, table, expected_shares)
    for check in health:
        if check.flagged:
            warnings.warn(check.detail, SampleRatioWarning, stacklevel=2)
            notes.append(f"health: {check.detail}")
    return Effects(tuple(effects), control, alpha, tuple(notes), health)
