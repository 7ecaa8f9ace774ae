"""``estimate()``: the one entry point. It reads the design the exposure table carries
(or infers it, or takes the one the user states, checked against the data), refuses an
estimator the design does not support (:mod:`~spillover.estimate.registry`), picks the
recommended one for ``method="auto"``, drops contrasts that too few units can reach, and
runs the design-aware sample-ratio checks."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping as TypingMapping, Sequence

import numpy as np
import pandas as pd

from ..design.base import Randomization
from ..design.record import DesignRecord, check_nesting, resolve_design, stated_record
from ..errors import FEW_CLUSTERS, DesignError, InputError, SampleRatioWarning, show_id
from ..exposure import ExposureProbabilities, Mapping, default_control, get_mapping, infer_mapping
from ..health import Check, design_balance
from ..io import DESIGN_KEY, MAPPING_KEY
from ..names import MIN_UNITS
from ..variance import DEFAULT_VCOV, check_vcov
from .cluster_robust import AUTO_BOOTSTRAP_DRAWS
from .registry import ESTIMATORS, Analysis, mapping_kind, recommend, validity
from .results import Effect, Effects
from .table import (analysis_table, check_probabilities_match, cluster_series, condition_categories,
                    sample_ratio_checks, too_small)



def estimate(
    outcomes: pd.DataFrame,
    exposure: pd.DataFrame,
    method: str = "auto",
    *,
    design: "str | DesignRecord | None" = None,
    ignore_design: bool = False,
    probabilities: ExposureProbabilities | None = None,
    randomization: "Randomization | None" = None,
    simulated_conditions: "np.ndarray | None" = None,
    clusters: "pd.DataFrame | pd.Series | None" = None,
    control: str | None = None,
    mapping: str | Mapping | None = None,
    outcome_col: str = "y",
    covariates: Sequence[str] = (),
    missing: str = "drop",
    alpha: float = 0.05,
    vcov: str = DEFAULT_VCOV,
    graph=None,
    bandwidth: int | str = "auto",
    bootstrap: int | str | None = "auto",
    bootstrap_weights: str = "rademacher",
    seed=None,
    min_probability: float = 0.0,
    min_units: int = MIN_UNITS,
    expected_shares: TypingMapping[int, float] | None = None,
    variance_bound: str = "auto",
) -> Effects:
    """Estimate every condition's contrast with the control condition, by the design that
    made the assignment.

    Parameters
    ----------
    outcomes
        ``unit_id`` and the outcome column (and any ``covariates``).
    exposure
        The table of :func:`spillover.exposure.exposure`, with the design its assignment
        carried (``exposure.attrs``, kept when written and read by the library) and each
        unit's randomization unit (``cluster_id``).
    method
        ``"auto"`` (default): the estimator the registry recommends for the design and
        mapping (:func:`~spillover.estimate.registry.recommend`; the notes say which and
        why). Else one of :data:`~spillover.estimate.METHODS`; one the design does not support (e.g. the
        difference in means of units on a cluster-randomized assignment) is refused
        with the estimator to use. ``ht``/``hajek``/``wls`` need the design's exposure
        ``probabilities``; ``ols-network`` and ``regression-adjustment`` the ``graph``.
    design
        Override the recorded design: ``"individual"``, ``"cluster"`` or a
        :class:`~spillover.design.record.DesignRecord`. It must agree with the record and
        the data. Without a record or an override the design is inferred from the data
        (arms constant within ``cluster_id``: a cluster design) and the notes say so.
    ignore_design
        Run a method the design does not support anyway; its effects are labelled as
        ignoring the design.
    simulated_conditions
        ``ht``/``hajek``: each unit's condition index (in ``probabilities``' units and
        conditions) in fresh draws of the design, ``(units, draws)``: the standard error
        is then the larger of the Aronow-Samii one and the estimator's sd over them
        (:func:`~spillover.estimate.weighting.horvitz_thompson`).
    variance_bound
        ``ht``/``hajek``: how the variance bounds the pairs never observed in a contrast's
        two conditions together: ``"blocks"`` (on complete blocks of such pairs, one
        inequality on the blocks' totals: :mod:`spillover.estimate.blocks`, never
        looser), ``"pairs"`` (Aronow & Samii's, pair by pair: the reference package's
        convention) or ``"auto"`` (default: blocks for HT, pairs for Hajek, whose
        linearised estimate needs the slack; see
        :func:`~spillover.estimate.weighting.horvitz_thompson`).
    randomization
        ``erl`` only: the design's :class:`~spillover.design.base.Randomization` (which
        sellers are randomized together, and how), for its exposure moments.
    clusters
        ``unit_id, cluster_id`` (a table, a Series indexed by unit id, or the
        :class:`~spillover.clustering.Clustering` that ``cluster()`` returned) for the
        cluster-robust methods. Default: the randomization units (the exposure table's
        ``cluster_id``). Under a cluster design they must not split a randomization
        cluster.
    bootstrap, bootstrap_weights, seed
        ``ols-cluster`` only: p-values and intervals from the wild cluster bootstrap
        with this many draws (Rademacher or Webb weights). ``"auto"`` (default) uses it
        with 1,999 draws when there are fewer than 30 clusters, where the calibration
        study found cluster-robust t intervals too narrow even with CR2; ``None``
        never.
    min_probability
        ``ht``/``hajek`` only: each contrast is estimated on the units whose
        probabilities of both its conditions reach this (a trimmed population, named and
        counted in the notes); a contrast no such unit is observed in is dropped, not the
        call.
    min_units
        A condition with fewer units (that can reach it, for ``ht``/``hajek``; that are
        in it, otherwise), or in fewer than two clusters for the cluster-robust methods,
        gets no effect, interval or p-value: the notes say why (0: no minimum, to check a
        formula on a toy design).
    control, mapping
        The control condition (default: the mapping's) and the mapping (default: the one
        the exposure table was made with, else read from its conditions).
    vcov
        ``CR2`` (default: Bell-McCaffrey with its Satterthwaite degrees of freedom,
        reliable with few or unequal clusters), ``CR1`` (statsmodels' default) or ``CR0``.
    outcome_col, covariates
        The outcome column, and outcome-table columns to adjust for (``cluster-means``,
        ``ols-cluster``, ``ols-network``, ``wls``): a pre-period outcome (CUPED) or a
        prediction of the outcome from pre-period data (CUPAC).
    missing
        Units with no outcome: ``"drop"`` (with a warning) or ``"error"``.
    graph, bandwidth
        ``ols-network``: the graph, and the hops within which units are dependent
        (``"auto"``: Leung's rule from the average path length);
        ``regression-adjustment``: the graph.
    alpha
        Intervals have level ``1 - alpha``.
    expected_shares
        The design's share of each arm (e.g. ``{0: 0.5, 1: 0.5}``), for a design not
        recorded with the assignment: the arms are checked against them.

    Returns
    -------
    Effects
        One :class:`Effect` per contrast, with the level, the method and notes on the
        design, what the interval approximates, and what was left out.

    Notes
    -----
    Units out of the experiment (arm ``-1``) are left out.

    Examples
    --------
    >>> import pandas as pd
    >>> exposure = pd.DataFrame({"unit_id": range(10), "arm": [1, 0] * 5, "condition": ["treated", "control"] * 5})
    >>> outcomes = pd.DataFrame({"unit_id": range(10), "y": [3.0, 1.0, 2.5, 1.5, 3.5, 0.5, 2.0, 1.0, 3.0, 1.0]})
    >>> effects = estimate(outcomes, exposure)              # method auto: units were randomized one by one
    >>> round(effects["treated"].estimate, 3), effects["treated"].method
    (1.8, 'difference in means / Neyman')
    """
    if missing not in ("drop", "error"):
        raise InputError(f"missing must be 'drop' or 'error', not {show_id(missing)}.")
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha={alpha} must be strictly between 0 and 1 (0.05 gives 95% intervals).")
    if int(min_units) < 0:
        raise InputError(f"min_units={min_units} must be 0 (no minimum: to check a formula on a toy design) or more.")
    vcov = check_vcov(vcov)
    plan = plan_analysis(exposure, method, design=design, ignore_design=ignore_design, clusters=clusters,
                         mapping=mapping, probabilities=probabilities, expected_shares=expected_shares)
    method, mapping, kind, record, units_of, clusters = (plan.method, plan.mapping, plan.kind, plan.record,
                                                         plan.units_of, plan.clusters)
    notes, label = list(plan.notes), plan.label
    entry = ESTIMATORS[method]
    covariates = list(covariates)
    if covariates and not entry.covariates:
        raise InputError(f"{method} does not adjust for covariates; use one of "
                         f"{[name for name, e in ESTIMATORS.items() if e.covariates]} "
                         "(CUPED: the pre-period outcome as a covariate).")
    if "clusters" in entry.needs:
        clusters = _analysis_clusters(clusters, units_of, record, notes)
    elif clusters is not None:
        clusters = None  # only the cluster-robust methods read clusters
    if bootstrap == "auto":
        bootstrap = AUTO_BOOTSTRAP_DRAWS if entry.bootstrap and clusters is not None \
            and clusters.nunique() < FEW_CLUSTERS else None
    elif bootstrap is not None and not entry.bootstrap:
        raise InputError(f"the wild cluster bootstrap applies to ols-cluster, not {method}.")
    if "graph" in entry.needs and graph is None:
        raise InputError(f"{method} needs the graph (--edges).")
    if "probabilities" in entry.needs and probabilities is None:
        raise InputError(f"{method} needs exposure probabilities under the design (draws or a design).")
    if "randomization" in entry.needs and randomization is None:
        raise InputError(f"{method} needs the design's randomization (the design and the arms it assigned).")
    table = analysis_table(outcomes, exposure, outcome_col, clusters, missing, covariates)
    if control is None:
        control = mapping.control if mapping is not None else default_control(condition_categories(table))
    if entry.minimum == "observed":
        table = too_small(table, control, int(min_units), "clusters" in entry.needs, notes)
    if probabilities is not None and "probabilities" in entry.needs:
        check_probabilities_match(table, probabilities)
        notes.extend(probabilities.notes)
    analysis = Analysis(table, control, alpha, mapping, kind, outcomes, exposure, outcome_col, missing, covariates,
                        vcov, bootstrap, bootstrap_weights, seed, graph, bandwidth, probabilities, min_probability,
                        int(min_units), notes, randomization, simulated_conditions, variance_bound)
    effects = entry.fit(analysis)
    control = analysis.control
    if label:
        effects = [Effect(**{**e.__dict__, "method": e.method + label}) for e in effects]
    health = _health(record, exposure, table, units_of, expected_shares)
    for check in health:
        if check.flagged:
            warnings.warn(check.detail, SampleRatioWarning, stacklevel=2)
            notes.append(f"health: {check.detail}")
    if not effects:
        why = "; ".join(n for n in notes if n.startswith("no effect")) or "no contrast had the units it needs"
        instead = (". Under this design too few units reach a compared condition (on a dense graph almost no one "
                   "has no treated neighbour): use a smaller treated share or a cluster design, or the 'fraction' "
                   "mapping, whose share of treated neighbours every unit has (--mapping fraction with --method "
                   "regression-adjustment, or ols-cluster under a cluster design)"
                   if "probabilities" in entry.needs else "")
        raise InputError(f"no contrast could be estimated: {why}{instead}.")
    return Effects(tuple(effects), control, alpha, tuple(notes), health)


@dataclass(frozen=True)
class AnalysisPlan:
    """What :func:`estimate` will do, decided before any outcome is read: the ``method``
    (``auto`` resolved), the ``mapping`` and its ``kind``, the design ``record`` and each
    unit's randomization unit (``units_of``), the ``clusters`` given, the opening
    ``notes`` and a ``label`` appended to the method of an estimator run against its
    design.

    Examples
    --------
    >>> import pandas as pd
    >>> exposure = pd.DataFrame({"unit_id": range(8), "cluster_id": [0, 0, 1, 1, 2, 2, 3, 3],
    ...                          "arm": [1, 1, 0, 0, 1, 1, 0, 0], "condition": ["treated", "treated", "control",
    ...                          "control"] * 2})
    >>> plan_analysis(exposure).method
    'ols-cluster'
    """

    method: str
    mapping: Mapping | None
    kind: str
    record: DesignRecord | None
    units_of: pd.Series | None
    clusters: pd.Series | None
    notes: tuple[str, ...]
    label: str = ""


def plan_analysis(exposure: pd.DataFrame, method: str = "auto", *, design=None, ignore_design: bool = False,
                  clusters=None, mapping=None, probabilities=None, expected_shares=None) -> AnalysisPlan:
    """The design, mapping and estimator an analysis of ``exposure`` follows (the
    arguments of :func:`estimate`): ``auto`` resolved to the recommended estimator, a
    method the design does not support refused (unless ``ignore_design``).

    Examples
    --------
    >>> import pandas as pd
    >>> exposure = pd.DataFrame({"unit_id": range(4), "arm": [1, 0, 1, 0], "condition": ["treated", "control"] * 2})
    >>> plan = plan_analysis(exposure)
    >>> plan.method, plan.record.describe()
    ('difference-in-means', 'individual design (inferred): units randomized by exact counts, treated share 0.5, no seed')
    """
    if method != "auto" and method not in ESTIMATORS:
        raise InputError(f"unknown method {method!r}; choose one of {['auto', *ESTIMATORS]}.")
    if "condition" not in exposure.columns or "unit_id" not in exposure.columns:
        raise InputError(f"exposure table: missing column(s) {[c for c in ('unit_id', 'condition') if c not in exposure]}"
                         f"; it has {list(exposure.columns)}.")
    mapping = _mapping(mapping, probabilities, exposure)
    kind = mapping_kind(mapping, condition_categories(exposure))
    if clusters is not None:
        clusters = cluster_series(clusters)
    record, units_of = _design(exposure, design, clusters, expected_shares)
    notes: list[str] = [f"design: {record.describe()}"] if record is not None else []
    label = ""
    if method == "auto":
        if record is None:
            raise DesignError("method auto reads the design from the exposure table (its arms, the design recorded "
                              "with the assignment): this table has neither; name a method (--method) or the design "
                              "(--design).")
        method, why = recommend(record, kind)
        notes.insert(0, f"method auto: {method}, because {why}")
    elif record is not None:
        verdict = validity(method, record.unit, kind)
        if not verdict.allowed:
            if not ignore_design:
                raise DesignError(f"{method} does not fit this {record.name} design: {verdict.reason}. Use --method "
                                  f"{verdict.instead} (or --method auto); to run {method} anyway, labelled as "
                                  "ignoring the design, pass --ignore-design.")
            label = " [ignores the design]"
            notes.append(f"{method} ignores the design ({verdict.reason}): its intervals are not valid for this "
                         f"design; --method {verdict.instead} is")
    return AnalysisPlan(method, mapping, kind, record, units_of, clusters, tuple(notes), label)


def _mapping(mapping, probabilities, exposure: pd.DataFrame) -> Mapping | None:
    """The mapping named, else the probabilities', else the one the exposure table was made
    with (its ``attrs``), else the built-in mapping with the table's conditions."""
    if isinstance(mapping, str):
        return get_mapping(mapping)
    if mapping is not None:
        return mapping
    if probabilities is not None and probabilities.mapping is not None:
        return probabilities.mapping
    made = exposure.attrs.get(MAPPING_KEY)
    conditions = condition_categories(exposure)
    if made:
        try:
            found = get_mapping(made["name"], threshold_q=made.get("threshold_q"), hops=made.get("hops") or 1)
        except (InputError, KeyError, TypeError):
            found = None  # a mapping of the user's own: read from the conditions
        if found is not None and set(conditions) <= set(found.conditions):  # not conditions rewritten since
            return found
    return infer_mapping(conditions)


def _design(exposure: pd.DataFrame, design, clusters: pd.Series | None, expected_shares):
    """The design to analyse by (recorded, stated and checked, or inferred) and each unit's
    randomization unit (the exposure table's ``cluster_id``; under a stated cluster design
    without one, the given clusters)."""
    arms = None
    if "arm" in exposure.columns and exposure["arm"].notna().any():
        arms = exposure.drop_duplicates("unit_id").set_index("unit_id")["arm"]
    units_of = None
    if "cluster_id" in exposure.columns and exposure["cluster_id"].notna().any():
        units_of = exposure.drop_duplicates("unit_id").set_index("unit_id")["cluster_id"]
    stated = design if isinstance(design, DesignRecord) or design is None else stated_record(str(design))
    recorded = exposure.attrs.get(DESIGN_KEY)
    if units_of is None and clusters is not None and (stated is not None and stated.clustered or
                                                      stated is None and recorded is None):
        units_of = clusters  # stated (or to be inferred) cluster design: the given clusters are the randomization
    if stated is None and recorded is None and expected_shares is not None and arms is not None:
        inferred = resolve_design(None, None, arms, units_of)
        if inferred is not None:
            stated = DesignRecord(inferred.name, {}, unit=inferred.unit, scheme="bernoulli",
                                  shares={int(a): float(s) for a, s in expected_shares.items()},
                                  n_units=inferred.n_units, n_clusters=inferred.n_clusters, source="stated")
    record = resolve_design(recorded, stated, arms, units_of)
    if units_of is None and record is not None and record.unit == "unit" and arms is not None:
        units_of = pd.Series(arms.index, index=arms.index)  # units randomized one by one: each its own unit
    return record, units_of


def _analysis_clusters(clusters: pd.Series | None, units_of: pd.Series | None, record: DesignRecord | None,
                       notes: list[str]) -> pd.Series | None:
    """The clusters of a cluster-robust method: the ones given (which must not split a
    randomization cluster), else the randomization units."""
    if clusters is None:
        if units_of is not None:
            notes.append("errors clustered by the randomization units ("
                         + ("each unit: randomized one by one)" if record is not None and record.unit == "unit"
                            else "the exposure table's cluster_id)"))
        return units_of
    if units_of is not None and record is not None and record.clustered:
        check_nesting(clusters, units_of)
    return clusters


def _health(record: DesignRecord | None, exposure: pd.DataFrame, table: pd.DataFrame, units_of: pd.Series | None,
            expected_shares) -> tuple[Check, ...]:
    """The design's own balance checks (its intended shares), then units lost by arm."""
    checks: tuple[Check, ...] = ()
    if record is not None and "arm" in exposure.columns and exposure["arm"].notna().any():
        arms = exposure.drop_duplicates("unit_id").set_index("unit_id")["arm"]
        checks = design_balance(record, arms, units_of)
    lost = sample_ratio_checks(exposure, table, None)
    return checks + lost[:1]
