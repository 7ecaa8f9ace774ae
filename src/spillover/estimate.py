"""Effects with honest uncertainty: direct, indirect (spillover) and total effects.

Every estimator contrasts each exposure condition with the mapping's control condition
and returns one :class:`Effect` per contrast, with its standard error, confidence
interval, p-value, the units and clusters used, and the variance method:

- ``difference-in-means``: the naive baseline, Neyman standard errors; ignores the design
  and, under interference, is biased for the effects below.
- ``cluster-means``: means of cluster means, standard error from their spread (Welch t).
- ``ols-cluster``: OLS of the outcome on condition indicators (+ covariates) with
  cluster-robust CR1 errors, as ``statsmodels`` computes them; t with ``G - 1`` degrees
  of freedom for few clusters (Cameron & Miller 2015).
- ``ht`` / ``hajek``: Horvitz-Thompson and Hajek estimators of the average potential
  outcome under each condition (Aronow & Samii 2017), with their conservative variance
  including the bound for pairs of units with zero joint probability.

Which estimand a contrast targets depends on the mapping: under ``as4``, ``isol_dir``
vs ``no`` is the direct effect, ``ind1`` vs ``no`` the indirect (spillover) effect and
``dir_ind1`` vs ``no`` the total effect; under ``bipartite``, ``direct`` vs ``control``
is the effect of all of a unit's sellers being treated.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Mapping as TypingMapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from .cluster import Clustering
from .design import OUT
from .seeds import check_seed
from .errors import (
    FEW_CLUSTERS,
    DataWarning,
    EmptyConditionWarning,
    FewClustersWarning,
    InputError,
    PositivityWarning,
    SampleRatioWarning,
    SmallConditionWarning,
    show_id,
)
from .exposure import ExposureGraph, ExposureProbabilities, Mapping, default_control, get_mapping, infer_mapping
from .graph import csr_rows, group_indicator
from .health import Check, sample_ratio_mismatch
from .variance import (
    DEFAULT_VCOV,
    ClusterStats,
    check_vcov,
    dependence_robust,
    ols,
    sandwich,
    cluster_stats,
    t_interval,
    wild_cluster_bootstrap_from_sums,
)

__all__ = ["FEW_CLUSTERS", "METHODS", "Effect", "Effects", "InterferenceTest", "RandomizationTest", "estimate",
           "estimate_from_stats", "interference_test", "lagrange_weights", "polynomial_interpolation",
           "randomization_test", "regression_adjustment", "snipe", "sufficient_stats", "weighted_least_squares"]

METHODS = ("difference-in-means", "cluster-means", "ols-cluster", "ols-network", "ht", "hajek", "wls",
           "regression-adjustment")
COVARIATE_METHODS = ("cluster-means", "ols-cluster", "ols-network", "wls")  # the methods that adjust for covariates
PROBABILITY_ESTIMATORS = ("ht", "hajek", "wls")  # the methods that weight by the design's exposure probabilities
AUTO_BOOTSTRAP_DRAWS = 1_999


@dataclass(frozen=True)
class Effect:
    """One contrast of an exposure condition against the control condition.

    ``df`` is the degrees of freedom of the t reference distribution (``inf``: normal).

    Examples
    --------
    >>> import pandas as pd
    >>> exposure = pd.DataFrame({"unit_id": range(8), "condition": ["treated", "control"] * 4})
    >>> outcomes = pd.DataFrame({"unit_id": range(8), "y": [3.0, 1.0, 2.5, 1.5, 3.5, 0.5, 2.0, 1.0]})
    >>> effects = estimate(outcomes, exposure, "difference-in-means")
    >>> effect = effects["treated"]
    >>> round(effect.estimate, 3), [round(v, 3) for v in effect.conf_int(0.1)]
    (1.75, [1.122, 2.378])
    """

    estimand: str
    condition: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    n_units: int
    n_clusters: int | None
    method: str
    df: float = float("inf")

    def conf_int(self, alpha: float = 0.05) -> tuple[float, float]:
        """The ``1 - alpha`` interval, from the same standard error and reference."""
        _, low, high, _ = t_interval(self.estimate, self.se, self.df, alpha)
        return float(low), float(high)


@dataclass(frozen=True)
class Effects:
    """The effects of one analysis: a tidy table, one row per contrast.

    ``alpha`` is the level of the intervals (``1 - alpha`` coverage); ``notes`` say what
    the variance approximates, if anything (e.g. a conservative bound, Monte Carlo
    probabilities, pairs assumed independent); ``health`` holds the sample-ratio checks
    (:class:`~spillover.health.Check`) run on the analysed units.

    Examples
    --------
    >>> import pandas as pd
    >>> exposure = pd.DataFrame({"unit_id": range(8), "condition": ["treated", "control"] * 4})
    >>> outcomes = pd.DataFrame({"unit_id": range(8), "y": [3.0, 1.0, 2.5, 1.5, 3.5, 0.5, 2.0, 1.0]})
    >>> effects = estimate(outcomes, exposure, "difference-in-means")
    >>> effects.to_frame()[["estimand", "condition", "estimate"]].round(3).values.tolist()
    [['direct (ignoring interference)', 'treated', 1.75]]
    """

    effects: tuple[Effect, ...]
    control: str
    alpha: float = 0.05
    notes: tuple[str, ...] = ()
    health: tuple[Check, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        """One row per contrast, the columns of :class:`Effect`."""
        return pd.DataFrame([asdict(e) for e in self.effects], columns=list(Effect.__dataclass_fields__))

    def conf_int(self, alpha: float | None = None) -> pd.DataFrame:
        """Intervals at level ``1 - alpha`` (default: the analysis's), one row per contrast."""
        alpha = self.alpha if alpha is None else alpha
        rows = [(e.condition, *e.conf_int(alpha)) for e in self.effects]
        return pd.DataFrame(rows, columns=["condition", "ci_low", "ci_high"]).set_index("condition")

    def __getitem__(self, estimand_or_condition: str) -> Effect:
        for effect in self.effects:
            if estimand_or_condition in (effect.estimand, effect.condition):
                return effect
        raise KeyError(estimand_or_condition)

    def __len__(self) -> int:
        return len(self.effects)

    @property
    def level(self) -> str:
        """The interval level as printed, e.g. ``95%``."""
        return f"{100 * (1 - self.alpha):g}%"

    def summary(self) -> str:
        """A readable table: the contrasts, the variance method and what it approximates."""
        a = max([10, *(len(e.estimand) + 2 for e in self.effects)])  # columns as wide as the longest name
        b = max([11, *(len(e.condition) + 2 for e in self.effects)])
        lines = [f"Effects against '{self.control}' ({self.level} intervals)",
                 f"{'estimand':<{a}}{'condition':<{b}}{'estimate':>10}{'se':>9}{'ci_low':>10}{'ci_high':>10}"
                 f"{'p':>9}{'df':>7}{'n':>8}{'G':>6}"]
        for e in self.effects:
            df = "inf" if not np.isfinite(e.df) else f"{e.df:.1f}"
            lines.append(f"{e.estimand:<{a}}{e.condition:<{b}}{e.estimate:>+10.4f}{e.se:>9.4f}{e.ci_low:>+10.4f}"
                         f"{e.ci_high:>+10.4f}{e.p_value:>9.3g}{df:>7}{e.n_units:>8}"
                         f"{'-' if e.n_clusters is None else e.n_clusters:>6}")
        methods = sorted({e.method for e in self.effects})
        lines.append(f"method: {'; '.join(methods)}")
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)

    def __repr__(self) -> str:
        lines = [f"Effects against '{self.control}':"]
        for e in self.effects:
            lines.append(
                f"  {e.estimand:<10} ({e.condition}) {e.estimate:+.4f}  se {e.se:.4f}  "
                f"{self.level} CI [{e.ci_low:+.4f}, {e.ci_high:+.4f}]  p {e.p_value:.3g}  "
                f"n={e.n_units}{'' if e.n_clusters is None else f', G={e.n_clusters}'}  [{e.method}]"
            )
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def estimand_of(condition: str, control: str, mapping: Mapping | None = None) -> str:
    """The estimand a contrast of ``condition`` with ``control`` targets, as the mapping
    names it (``"<condition> vs <control>"`` when it names none, or with no mapping)."""
    return mapping.estimand(condition, control) if mapping is not None else f"{condition} vs {control}"


# --------------------------------------------------------------------------- inputs


def analysis_table(
    outcomes: pd.DataFrame,
    exposure: pd.DataFrame,
    outcome_col: str,
    clusters: pd.DataFrame | pd.Series | None,
    missing: str,
    covariates: Sequence[str] = (),
) -> pd.DataFrame:
    """Outcomes joined to exposure (and clusters) by ``unit_id``, with bad input refused.

    A covariate is read from the outcomes table, or else from the exposure table (e.g.
    ``treated_fraction``, the continuous exposure)."""
    from_exposure = [c for c in covariates if c not in outcomes.columns and c in exposure.columns]
    own = [c for c in covariates if c not in from_exposure]
    for name, frame, needed in (("outcomes", outcomes, ["unit_id", outcome_col, *own]),
                                ("exposure", exposure, ["unit_id", "condition"])):
        absent = [c for c in needed if c not in frame.columns]
        if absent:
            raise InputError(f"{name} table: missing column(s) {absent}; it has {list(frame.columns)}.")
        if frame["unit_id"].duplicated().any():
            dup = frame.loc[frame["unit_id"].duplicated(), "unit_id"].iloc[0]
            raise InputError(f"{name} table: unit_id {show_id(dup)} appears more than once.")
    unknown = pd.Index(outcomes["unit_id"]).difference(pd.Index(exposure["unit_id"]))
    if len(unknown):
        raise InputError(
            f"outcomes: {len(unknown)} unit id(s) have no exposure, e.g. {list(unknown[:5])}: "
            "outcomes must belong to units of the graph."
        )
    for column in (outcome_col, *own):
        values = outcomes[column]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            numeric = pd.to_numeric(values, errors="coerce")
            bad = numeric.isna() & values.notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise InputError(f"outcomes table: column '{column}' has text, e.g. {show_id(values.iloc[row])} in row "
                                 f"{row}; outcomes and covariates must be numbers.")
        infinite = np.isinf(pd.to_numeric(values, errors="coerce").to_numpy(dtype=float))
        if infinite.any():
            row = int(np.flatnonzero(infinite)[0])
            raise InputError(f"outcomes table: column '{column}' has {int(infinite.sum())} infinite value(s), e.g. "
                             f"row {row}; fix them or drop those units.")
    outcomes = outcomes.assign(**{c: pd.to_numeric(outcomes[c]) for c in (outcome_col, *own)})
    clashing = [c for c in (outcome_col, *own) if c in exposure.columns and c != "unit_id"]
    table = exposure.drop(columns=clashing).merge(  # the outcomes table's column wins over the exposure table's
        outcomes[["unit_id", outcome_col, *own]].rename(columns={outcome_col: "y"}), on="unit_id", how="left")
    if "arm" in table and table["arm"].notna().any():
        table = table[table["arm"].isna() | (table["arm"] != -1)]  # out of the experiment
    if clusters is not None:
        series = clusters.set_index("unit_id")["cluster_id"] if isinstance(clusters, pd.DataFrame) else clusters
        table["cluster"] = series.reindex(table["unit_id"]).to_numpy()
        if table["cluster"].isna().any():
            bad = table.loc[table["cluster"].isna(), "unit_id"].iloc[0]
            raise InputError(f"clusters: unit {show_id(bad)} (and {int(table['cluster'].isna().sum()) - 1} more) has no cluster.")
    lacking = table[["y", *covariates]].isna().any(axis=1)
    if lacking.any():
        n = int(lacking.sum())
        if missing == "error":
            example = table.loc[lacking, "unit_id"].iloc[0]
            raise InputError(f"outcomes: {n} unit(s) have no outcome, e.g. {show_id(example)}; fill them or use missing='drop'.")
        warnings.warn(f"outcomes: dropped {n} unit(s) with a missing outcome or covariate.", DataWarning, stacklevel=3)
        table = table[~lacking]
    return table.reset_index(drop=True)


def _categories(table: pd.DataFrame) -> list[str]:
    """Every condition of the exposure table's mapping (a categorical keeps the empty ones)."""
    column = table["condition"]
    if isinstance(column.dtype, pd.CategoricalDtype):
        return [str(c) for c in column.cat.categories]
    return sorted(map(str, column.unique()))


def _no_control(control: str, counts: dict) -> InputError:
    """No unit is in the control condition: say which conditions the units are in and what to change."""
    seen = ", ".join(f"{k} {int(v):,}" for k, v in counts.items() if v) or "none"
    return InputError(f"no units in the control condition '{control}' (units per condition: {seen}): nothing to compare "
                      "with. The design treated too many (a smaller treated share), or the mapping's control is too "
                      "strict (a lower --threshold), or name another control condition (--control).")


def _conditions(table: pd.DataFrame, control: str) -> list[str]:
    """Conditions to contrast with ``control``; empty ones warn and are skipped."""
    categories = _categories(table)
    present = set(table["condition"].astype(str))
    if control not in present:
        raise _no_control(control, table["condition"].astype(str).value_counts().to_dict())
    out = []
    for condition in categories:
        if condition == control:
            continue
        if condition not in present:
            warnings.warn(f"no units in exposure condition '{condition}': its contrast is skipped.",
                          EmptyConditionWarning, stacklevel=3)
            continue
        out.append(condition)
    return out


def _effect(condition: str, control: str, mapping: Mapping | None, estimate: float, se: float, df: float,
            alpha: float, n_units: int, n_clusters: int | None, method: str) -> Effect:
    """An :class:`Effect` with its t(df) interval and p-value (normal for ``df = inf``)."""
    se, low, high, p = (float(v) for v in t_interval(estimate, se, df, alpha))
    return Effect(estimand_of(condition, control, mapping), condition, float(estimate), se, low, high, p,
                  int(n_units), n_clusters, method, float(df))


def _vcov_label(vcov: str) -> str:
    return f"{vcov}, t(BM df)" if vcov == "CR2" else f"{vcov}, t(G-1)"


# --------------------------------------------------------------------------- estimators


def difference_in_means(table: pd.DataFrame, control: str, alpha: float = 0.05,
                        mapping: Mapping | None = None) -> list[Effect]:
    """Difference of the conditions' mean outcomes with Neyman standard errors."""
    groups = table.groupby("condition", observed=True)["y"]
    mean, var, n = groups.mean(), groups.var(ddof=1), groups.size()
    effects = []
    for condition in _conditions(table, control):
        if min(n[condition], n[control]) < 2:
            raise InputError(f"difference-in-means: '{condition}' has {n[condition]} and '{control}' {n[control]} "
                             "unit(s); each needs at least two for a standard error.")
        est = float(mean[condition] - mean[control])
        se = float(np.sqrt(var[condition] / n[condition] + var[control] / n[control]))
        effects.append(_effect(condition, control, mapping, est, se, np.inf, alpha, n[condition] + n[control],
                               None, "difference in means / Neyman"))
    return effects


def _check_cluster_count(n_clusters: int, method: str, vcov: str) -> None:
    """Refuse one cluster; warn below :data:`FEW_CLUSTERS`."""
    if n_clusters < 2:
        raise InputError(f"{method}: {n_clusters} cluster: a cluster-robust standard error needs at least two.")
    if n_clusters < FEW_CLUSTERS:
        reference = "Bell-McCaffrey degrees of freedom" if vcov == "CR2" else f"t with {n_clusters - 1} df"
        warnings.warn(f"{method}: only {n_clusters} clusters: cluster-robust standard errors are unreliable below "
                      f"about {FEW_CLUSTERS}; inference uses {vcov} with {reference}"
                      f"{'' if vcov == 'CR2' else ' (CR2 is safer: --vcov CR2)'}; ols-cluster then takes p-values and "
                      "intervals from the wild cluster bootstrap (--wild-bootstrap auto, the default).",
                      FewClustersWarning, stacklevel=4)


def _indicator_columns(table: pd.DataFrame, conditions: Sequence[str]) -> np.ndarray:
    condition = table["condition"].astype(str).to_numpy()
    return np.column_stack([np.ones(len(table))] + [(condition == c).astype(float) for c in conditions])


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
    conditions = _conditions(table, control)
    cells = table.groupby(["cluster", "condition"], observed=True).agg(
        mean=("y", "mean"), size=("y", "size"), **{f"x_{c}": (c, "mean") for c in covariates}).reset_index()
    cells = cells[cells["condition"].astype(str).isin([control, *conditions])].reset_index(drop=True)
    per_condition = cells.groupby("condition", observed=True)["cluster"].nunique()
    _check_cluster_count(cells["cluster"].nunique(), "cluster-means", vcov)
    for condition in conditions:
        g1, g0 = int(per_condition.get(condition, 0)), int(per_condition.get(control, 0))
        if min(g1, g0) < 2:
            raise InputError(f"cluster-means: '{condition}' has {g1} and '{control}' {g0} cluster(s); "
                             "each needs at least two for a standard error.")
    adjust = [cells[[f"x_{c}"]].to_numpy(dtype=float) - cells[f"x_{c}"].mean() for c in covariates]
    fit = ols(cells["mean"].to_numpy(dtype=float), np.column_stack([_indicator_columns(cells, conditions), *adjust]),
              cells["cluster"].to_numpy(), vcov)
    label = f"cluster means / {_vcov_label(vcov)}" + (f"; adjusted for {', '.join(covariates)}" if covariates else "")
    units = table["condition"].astype(str).value_counts()
    effects = []
    for index, condition in enumerate(conditions, start=1):
        se = np.sqrt(fit.cov[index, index])
        in_pair = cells["condition"].astype(str).isin([condition, control])
        effects.append(_effect(condition, control, mapping, fit.beta[index], se, fit.df[index], alpha,
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
    conditions = _conditions(table, control)
    g = table["cluster"].nunique()
    _check_cluster_count(g, "ols-cluster", vcov)
    columns = [_indicator_columns(table, conditions)] + [table[[c]].to_numpy(dtype=float) for c in covariates]
    X = np.column_stack(columns)
    if len(table) <= X.shape[1]:
        raise InputError(f"ols-cluster: {len(table)} units for {X.shape[1]} parameters; it needs more units "
                         "than conditions plus covariates.")
    y, groups = table["y"].to_numpy(dtype=float), table["cluster"].to_numpy()
    if bootstrap is None:
        fit = ols(y, X, groups, vcov)
        return [_effect(cond, control, mapping, fit.beta[i], np.sqrt(fit.cov[i, i]), fit.df[i], alpha, len(table), g,
                        f"OLS / {_vcov_label(vcov)}")
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
    graph (two units whose one-hop exposures share a neighbour are two hops apart)."""
    if bandwidth < 0:
        raise InputError(f"bandwidth={bandwidth} must be a number of hops >= 0.")
    kernel = ExposureGraph.build(graph, 1)
    if kernel.own_index is None:
        raise InputError("ols-network is defined on social graphs (units are the randomized nodes).")
    keep = kernel.units.get_indexer(unit_ids)
    if (keep < 0).any():
        raise InputError("outcomes: some units are not in the graph given to ols-network.")
    adjacency = sp.csr_array(kernel.neighbors[keep][:, keep], dtype=np.float64)
    n = len(keep)
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


def ols_network(
    table: pd.DataFrame,
    control: str,
    graph,
    alpha: float = 0.05,
    covariates: Sequence[str] = (),
    mapping: Mapping | None = None,
    bandwidth: int = 2,
) -> list[Effect]:
    """The regression of :func:`ols_cluster` with a network-HAC variance (uniform kernel;
    Leung 2022, Gao & Ding 2023): units of one randomization cluster and units within
    ``bandwidth`` hops are treated as dependent (:func:`network_pairs`,
    :func:`spillover.variance.dependence_robust`). Exposure to spillover depends on
    neighbours' clusters, and outcomes of nearby units are correlated across cluster
    borders, which clustering by the randomization cluster alone misses."""
    if "cluster" not in table:
        raise InputError("ols-network needs the randomization clusters (unit_id, cluster_id).")
    if graph is None:
        raise InputError("ols-network needs the graph (--edges), to find which units are near each other.")
    conditions = _conditions(table, control)
    pairs = network_pairs(graph, pd.Index(table["unit_id"]), table["cluster"].to_numpy(), bandwidth)
    X = np.column_stack([_indicator_columns(table, conditions)] + [table[[c]].to_numpy(dtype=float) for c in covariates])
    y = table["y"].to_numpy(dtype=float)
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    g = table["cluster"].nunique()
    fit = dependence_robust(X, y - X @ beta, pairs, g)
    return [_effect(cond, control, mapping, beta[i], np.sqrt(fit.cov[i, i]), fit.df[i], alpha, len(table), g,
                    f"OLS / network HAC ({bandwidth} hops + cluster), t(G-1)")
            for i, cond in enumerate(conditions, start=1)]


# --------------------------------------------------------------------------- design-based (HT / Hajek)


def _class_sums(groups: np.ndarray, n_groups: int, ind: np.ndarray, y: np.ndarray, pi: np.ndarray):
    """Per class of units with identical exposures in every draw (one unit per class when
    the probabilities are per unit): ``a = sum I y / pi``, ``m = sum I y^2 / (2 pi)``, the
    class's analysed units, and its probability."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.bincount(groups, weights=np.where(ind, y / pi, 0.0), minlength=n_groups)
        m = np.bincount(groups, weights=np.where(ind, y**2 / (2 * pi), 0.0), minlength=n_groups)
    size = np.bincount(groups, minlength=n_groups).astype(float)
    p = np.zeros(n_groups)
    p[groups] = pi
    return a, m, size, p


def _bounded(p: np.ndarray, product: np.ndarray, bound_negative: bool) -> np.ndarray:
    """Weight of the Aronow-Samii bound for each stored pair: 1 where the joint
    probability is zero; with ``bound_negative``, ``1 - p / (pi_s pi_t)`` where the pair
    is negatively dependent (the bound ``-d y_s y_t <= d (y_s^2 + y_t^2) / 2``, equal to
    the zero-probability bound at ``p = 0``); 0 elsewhere (the unbiased term is used)."""
    weight = (p <= 0).astype(float)
    if bound_negative:
        with np.errstate(divide="ignore", invalid="ignore"):
            negative = (p > 0) & (p < product)
            weight = np.where(negative, 1.0 - p / product, weight)
    return weight


def _ht_variance(a, m, size, pi, joint, bound_negative: bool = False, factored=None, key=None) -> float:
    """Aronow-Samii conservative variance of the HT total of one condition, over classes
    of units (:func:`_class_sums`; a class is one unit when the probabilities are per
    unit): the unadjusted double sum ``(p_st - pi_s pi_t) / p_st a_s a_t`` over pairs with
    positive joint probability, plus the bound ``I_i y_i^2 / (2 pi_i) + I_j y_j^2 / (2 pi_j)``
    summed over every unit pair whose joint probability is zero. Pairs not stored are
    independent and add nothing (or, with ``factored``, share one block: summed per block,
    :func:`_factored_terms`). Two units of one class share every probability, so the
    class sums give the unit-level double sum exactly, in time linear in the classes' pairs."""
    unadjusted, bound = _dependent_terms(joint, pi, pi, a, a, m, m, size, bound_negative, factored, key)
    return unadjusted + bound


def _ht_covariance(a, b, m_k, m_l, size, pi_k, pi_l, joint_kl, bound_negative: bool = False, factored=None,
                   key=None) -> float:
    """Aronow-Samii covariance of two conditions' HT totals over classes of units, with
    the bound subtracted for every unit pair (a unit with itself included) of zero joint
    probability (and, with ``bound_negative``, weighted, for negatively dependent pairs)."""
    first, bound = _dependent_terms(joint_kl, pi_k, pi_l, a, b, m_k, m_l, size, bound_negative, factored, key)
    return first - bound


def _dependent_terms(joint, pi_r, pi_c, a_r, a_c, m_r, m_c, size, bound_negative: bool, factored=None,
                     key=None) -> tuple[float, float]:
    """:func:`_pair_terms` over the stored pairs of ``joint``, plus, with ``factored``, over
    the pairs that share one block (:func:`_factored_terms`)."""
    unadjusted, bound = _pair_terms(csr_rows(joint), joint.indices, joint.data, pi_r, pi_c, a_r, a_c, m_r, m_c,
                                    size, bound_negative)
    if factored is None:
        return unadjusted, bound
    more, more_bound = _factored_terms(factored, key, pi_r, pi_c, a_r, a_c, m_r, m_c, size, joint)
    return unadjusted + more, bound + more_bound


PAIR_CHUNK = 4_000_000  # stored pairs summed at once: bounds the variance's temporaries


def _pair_terms(rows, cols, joint, pi_r, pi_c, a_r, a_c, m_r, m_c, size, bound_negative: bool) -> tuple[float, float]:
    """Over the pairs ``(rows, cols)`` with joint probabilities ``joint``, in chunks: the sum of
    ``(p - pi_r pi_c) / p a_r a_c`` where the unbiased term is used, and the sum of the
    bound's ``weight (m_r size_c + m_c size_r)`` where the pair is bounded (:func:`_bounded`)."""
    unadjusted = bound = 0.0
    for start in range(0, rows.size, PAIR_CHUNK):
        part = slice(start, start + PAIR_CHUNK)
        r, c = rows[part], cols[part]
        unbiased, weight = _pair_coefficients(joint[part], pi_r[r] * pi_c[c], bound_negative)
        unadjusted += float(unbiased @ (a_r[r] * a_c[c]))
        bound += float(weight @ (m_r[r] * size[c] + m_c[c] * size[r]))
    return unadjusted, bound


def _pair_coefficients(p: np.ndarray, product: np.ndarray, bound_negative: bool) -> tuple[np.ndarray, np.ndarray]:
    """For pairs of joint probability ``p`` and product of marginals ``product``: the
    coefficient ``(p - product) / p`` of ``a_r a_c`` where the unbiased term is used (0
    elsewhere), and the bound's weight (:func:`_bounded`; 0 where the term is used)."""
    weight = _bounded(p, product, bound_negative)
    with np.errstate(divide="ignore", invalid="ignore"):
        unbiased = np.where(weight == 0, (p - product) / p, 0.0)
    return unbiased, weight


def _factored_terms(factored, key, pi_r, pi_c, a_r, a_c, m_r, m_c, size, stored) -> tuple[float, float]:
    """:func:`_pair_terms` over the class pairs of a :class:`~spillover.exposure.FactoredPairs`
    that share exactly one block: per block and pair of types, ``sum_b A_b(tau) A_b(tau')``
    (:meth:`~spillover.exposure.FactoredPairs.cross`) weighted by the types' term, minus
    what those per-block sums give the ``stored`` pairs (which share two or more blocks, or
    are a class with itself, and have their exact terms): time linear in the graph."""
    k, l = key
    p = factored.joint[key]
    width = factored.n_types
    marginal = factored.type_marginal
    product = marginal[factored.type_pairs // width, k] * marginal[factored.type_pairs % width, l]
    unbiased, weight = _pair_coefficients(p, product, False)
    unadjusted = float(unbiased @ factored.cross(a_r, a_c))
    bound = float(weight @ (factored.cross(m_r, size) + factored.cross(size, m_c)))
    pair, position = factored.corrections
    rows = csr_rows(stored)[pair]
    counted, counted_bound = _pair_terms(rows, stored.indices[pair], p[position], pi_r, pi_c, a_r, a_c, m_r, m_c,
                                         size, False)
    return unadjusted - counted, bound - counted_bound


SMALL_PROBABILITY = 0.01  # below this, a unit's weight can dominate and the variance estimate falters
FEW_UNITS = 30  # fewer units in a compared condition and a normal interval rests on little data


def horvitz_thompson(
    table: pd.DataFrame,
    probs: ExposureProbabilities,
    control: str,
    alpha: float = 0.05,
    hajek: bool = False,
    mapping: Mapping | None = None,
    min_probability: float = 0.0,
) -> list[Effect]:
    """HT (or Hajek) contrasts of each condition against ``control`` under the design
    that produced ``probs``, with the Aronow-Samii conservative variance. The finite
    population is the units of ``table`` (their outcomes observed), ``N`` of them; with
    ``min_probability``, only the units whose probabilities of both conditions of a
    contrast reach it (a trimmed population: the estimand changes, and the method says
    so)."""
    keep_all = probs.units.get_indexer(pd.Index(table["unit_id"]))
    if (keep_all < 0).any():
        raise InputError("exposure probabilities do not cover every analysed unit; compute them on the same graph.")
    if not 0.0 <= min_probability < 1.0:
        raise InputError(f"min_probability={min_probability} must be in [0, 1).")
    y_all = table["y"].to_numpy(dtype=float)
    condition_all = table["condition"].astype(str).to_numpy()
    l = probs.condition_index(control)
    effects = []
    for name in _conditions(table, control):
        k = probs.condition_index(name)
        member = np.ones(len(table), dtype=bool)
        if min_probability > 0:
            member = (probs.marginal[keep_all, k] >= min_probability) & (probs.marginal[keep_all, l] >= min_probability)
        keep, y, condition = keep_all[member], y_all[member], condition_all[member]
        n = int(member.sum())
        pi_k, pi_l = probs.marginal[keep, k], probs.marginal[keep, l]
        ind_k, ind_l = condition == name, condition == control
        if not ind_k.any() or not ind_l.any():
            raise InputError(f"no unit with probabilities of at least {min_probability:g} is observed in '{name}' "
                             f"and in '{control}': lower min_probability.")
        for ind, pi, label in ((ind_k, pi_k, name), (ind_l, pi_l, control)):
            if (ind & (pi <= 0)).any():
                raise InputError(
                    f"{int((ind & (pi <= 0)).sum())} unit(s) observed in '{label}' have estimated probability 0 "
                    "of it: use more draws or --prob-correction add-one."
                )
        few = {c: int(ind.sum()) for c, ind in ((name, ind_k), (control, ind_l)) if ind.sum() < FEW_UNITS}
        if few:
            warnings.warn(f"few units in compared conditions {few}: with fewer than {FEW_UNITS}, the normal interval "
                          "of HT/Hajek rests on little data and may cover less than its level; choose a design "
                          "(treated share, clusters) that puts more units in every condition.",
                          SmallConditionWarning, stacklevel=3)
        small = int(np.sum((ind_k & (pi_k < SMALL_PROBABILITY)) | (ind_l & (pi_l < SMALL_PROBABILITY))))
        if small:
            warnings.warn(f"positivity: {small} unit(s) observed in '{name}' or '{control}' had a probability below "
                          f"{SMALL_PROBABILITY:g} of being there; their weights dominate and the variance estimate "
                          "can be too small (see docs/inference.md). Restrict the population with "
                          f"min_probability={SMALL_PROBABILITY:g} (--min-probability), or use a design that reaches "
                          "the condition more often.", PositivityWarning, stacklevel=3)
        with np.errstate(divide="ignore", invalid="ignore"):
            weight_k = np.where(ind_k, 1.0 / pi_k, 0.0)
            weight_l = np.where(ind_l, 1.0 / pi_l, 0.0)
        total_k, total_l = np.sum(weight_k * y), np.sum(weight_l * y)
        if hajek:
            mu_k, mu_l = total_k / weight_k.sum(), total_l / weight_l.sum()
            est = mu_k - mu_l
            target = np.where(ind_k, y - mu_k, np.where(ind_l, y - mu_l, 0.0))  # linearised residuals
        else:
            est = (total_k - total_l) / n
            target = y
        keys = ((k, k), (l, l), (k, l))
        if probs.pairs.nnz and any(key not in probs.joint for key in keys):
            raise InputError(f"the exposure probabilities hold joint probabilities for contrasts with another "
                             f"control; compute them with control='{control}' (--control {control}).")
        no_pairs = sp.csr_array(probs.pairs.shape, dtype=float)  # marginals only: every pair independent
        joint = {key: probs.joint.get(key, no_pairs) for key in keys}
        groups = keep if probs.groups is None else probs.groups[keep]
        a_k, m_k, size, p_k = _class_sums(groups, probs.pairs.shape[0], ind_k, target, pi_k)
        a_l, m_l, _, p_l = _class_sums(groups, probs.pairs.shape[0], ind_l, target, pi_l)
        bound_negative, factored = probs.bound_negative_pairs, probs.factored
        variance = (
            _ht_variance(a_k, m_k, size, p_k, joint[(k, k)], bound_negative, factored, (k, k))
            + _ht_variance(a_l, m_l, size, p_l, joint[(l, l)], bound_negative, factored, (l, l))
            - 2 * _ht_covariance(a_k, a_l, m_k, m_l, size, p_k, p_l, joint[(k, l)], bound_negative, factored, (k, l))
        ) / n**2
        se = float(np.sqrt(max(variance, 0.0)))
        trimmed = f", units with p >= {min_probability:g}: {n} of {len(table)}" if min_probability > 0 else ""
        effects.append(_effect(name, control, mapping, est, se, np.inf, alpha, ind_k.sum() + ind_l.sum(), None,
                               f"{'hajek' if hajek else 'horvitz-thompson'} / aronow-samii ({probs.method}{trimmed})"))
    return effects


def condition_means(
    outcomes: pd.DataFrame,
    exposure: pd.DataFrame,
    probabilities: ExposureProbabilities,
    *,
    hajek: bool = False,
    outcome_col: str = "y",
) -> pd.Series:
    """Estimated average potential outcome under every condition: Horvitz-Thompson
    ``sum_i 1[D_i = k] y_i / pi_i(k) / N`` or its Hajek ratio form (NaN for a condition
    no unit is in)."""
    table = analysis_table(outcomes, exposure, outcome_col, None, "drop")
    keep = probabilities.units.get_indexer(pd.Index(table["unit_id"]))
    y = table["y"].to_numpy(dtype=float)
    condition = table["condition"].astype(str).to_numpy()
    means = {}
    for k, name in enumerate(probabilities.conditions):
        ind = condition == name
        pi = probabilities.marginal[keep, k]
        with np.errstate(divide="ignore", invalid="ignore"):
            weights = np.where(ind, 1.0 / pi, 0.0)
        denominator = weights.sum() if hajek else len(table)
        means[name] = float(np.sum(weights * y) / denominator) if ind.any() else float("nan")
    return pd.Series(means, name="hajek" if hajek else "horvitz-thompson")


# --------------------------------------------------------------------------- entry point


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
        :class:`~spillover.cluster.Clustering` that ``cluster()`` returned).
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
            and _n_clusters(clusters) < FEW_CLUSTERS else None
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
        mapping = infer_mapping(_categories(table))
    if control is None:
        control = mapping.control if mapping is not None else default_control(_categories(table))
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
        _check_probabilities_match(table, probabilities)
        effects = weighted_least_squares(outcomes, exposure, probabilities, covariates=covariates, control=control,
                                         outcome_col=outcome_col, missing=missing, alpha=alpha)
        notes.extend(probabilities.notes)
    else:
        if probabilities is None:
            raise InputError(f"{method} needs exposure probabilities under the design (draws or a design).")
        _check_probabilities_match(table, probabilities)
        effects = horvitz_thompson(table, probabilities, control, alpha, hajek=method == "hajek", mapping=mapping,
                                   min_probability=min_probability)
        notes.extend(probabilities.notes)
        notes.append("the Aronow-Samii variance is conservative: intervals cover at least their level when "
                     "the probabilities are exact (wider than needed where pairs have zero joint probability)")
    health = _sample_ratio_checks(exposure, table, expected_shares)
    for check in health:
        if check.flagged:
            warnings.warn(check.detail, SampleRatioWarning, stacklevel=2)
            notes.append(f"health: {check.detail}")
    return Effects(tuple(effects), control, alpha, tuple(notes), health)


def _sample_ratio_checks(exposure: pd.DataFrame, table: pd.DataFrame,
                         expected_shares: TypingMapping[int, float] | None) -> tuple[Check, ...]:
    """SRM of the analysed units (and clusters) per arm against the design's shares, or
    against the assignment's own shares (units lost at different rates by arm)."""
    if "arm" not in exposure.columns or "arm" not in table.columns:
        return ()
    assigned = pd.to_numeric(exposure["arm"], errors="coerce")
    assigned = assigned[assigned.notna() & (assigned >= 0)].astype(int)
    analysed = pd.to_numeric(table["arm"], errors="coerce").dropna().astype(int)
    analysed = analysed[analysed >= 0]
    if assigned.nunique() < 2 or analysed.empty:
        return ()
    shares = dict(expected_shares) if expected_shares is not None \
        else assigned.value_counts(normalize=True).to_dict()
    checks = [sample_ratio_mismatch(analysed.value_counts().to_dict(), shares, what="analysed units")]
    if "cluster" in table.columns and expected_shares is not None:
        per_cluster = table.loc[analysed.index].groupby("cluster")["arm"].first().astype(int)
        checks.append(sample_ratio_mismatch(per_cluster.value_counts().to_dict(), shares, what="clusters"))
    return tuple(checks)


def _n_clusters(clusters: "pd.DataFrame | pd.Series") -> int:
    series = clusters["cluster_id"] if isinstance(clusters, pd.DataFrame) else clusters
    return int(pd.Series(series).nunique())


def _check_probabilities_match(table: pd.DataFrame, probabilities: ExposureProbabilities) -> None:
    """The exposure table's conditions must be the probabilities' conditions."""
    unknown = sorted(set(map(str, _categories(table))) - set(probabilities.conditions))
    if unknown:
        raise InputError(f"exposure conditions {unknown} are not the probabilities' conditions "
                         f"{list(probabilities.conditions)}: compute both with the same mapping.")


# --------------------------------------------------------------------------- sufficient statistics


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
        raise _no_control(control, per["n"].astype(int).to_dict())
    conditions = [c for c in present if c != control]
    mapping = infer_mapping(present)
    n, mean = per["n"], per["sum_y"] / per["n"]
    effects = []
    if method == "difference-in-means":
        var = (per["sum_y2"] - n * mean**2) / (n - 1)
        for c in conditions:
            est = float(mean[c] - mean[control])
            se = float(np.sqrt(var[c] / n[c] + var[control] / n[control]))
            effects.append(_effect(c, control, mapping, est, se, np.inf, alpha, n[c] + n[control], None,
                                   "difference in means / Neyman"))
    elif method == "cluster-means":
        table = pd.DataFrame({"condition": stats["condition"], "cluster": stats["cluster_id"],
                              "y": stats["sum_y"] / stats["n"]})
        for effect in cluster_means(table, control, alpha, vcov, mapping):
            effects.append(Effect(**{**asdict(effect), "n_units": int(n[effect.condition] + n[control])}))
    elif method == "ols-cluster":
        codes, uniques = pd.factorize(stats["cluster_id"])
        g = len(uniques)
        _check_cluster_count(g, "ols-cluster", vcov)
        X = _indicator_columns(stats, conditions)                       # one row per (cluster, condition) cell
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
                effects.append(_effect(c, control, mapping, mean[c] - mean[control], np.sqrt(fit.cov[j, j]),
                                       fit.df[j], alpha, total, g, f"OLS / {_vcov_label(vcov)}"))
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


# --------------------------------------------------------------------------- a test for interference


@dataclass(frozen=True)
class InterferenceTest:
    """The interference test of a :class:`~spillover.design.MixedDesign` experiment.

    ``cluster_estimate`` and ``unit_estimate`` are the effect estimated in the cluster
    branch (clusters randomized: most spillover kept inside the comparison) and in the
    unit branch (units randomized: spillover leaks between arms); ``z`` and ``p_value``
    test their equality, which holds without interference. ``share_explained`` is the
    share of the cluster-branch effect that the unit-randomized estimate misses,
    ``1 - unit / cluster``: how much an ordinary A/B test would have understated it.

    Examples
    --------
    >>> test = InterferenceTest(0.30, 0.20, 0.10, 0.03, 3.33, 0.0009, 0.333, 100, 5_000, 0.05)
    >>> test.detected, test.summary().splitlines()[0]
    (True, 'interference detected (p = 0.0009): the unit-randomized estimate 0.2 against 0.3 with clusters randomized')
    """

    cluster_estimate: float
    unit_estimate: float
    difference: float
    se: float
    z: float
    p_value: float
    share_explained: float
    n_clusters: int
    n_units: int
    alpha: float = 0.05

    @property
    def detected(self) -> bool:
        """Whether the test rejects no interference at level ``alpha``."""
        return bool(self.p_value < self.alpha)

    def summary(self) -> str:
        """The verdict in two lines."""
        verdict = "interference detected" if self.detected else "no interference detected"
        share = (f"; an A/B test of units would miss {self.share_explained:.0%} of the cluster-randomized effect"
                 if self.detected else "")
        return (f"{verdict} (p = {self.p_value:.2g}): the unit-randomized estimate {self.unit_estimate:.4g} against "
                f"{self.cluster_estimate:.4g} with clusters randomized\n"
                f"difference {self.difference:+.4g} (se {self.se:.4g}){share}")


def interference_test(outcomes: pd.DataFrame, assignment, *, outcome_col: str = "y", alpha: float = 0.05,
                      vcov: str = DEFAULT_VCOV) -> InterferenceTest:
    """Test for interference from a :class:`~spillover.design.MixedDesign` experiment
    (Saveski et al. 2017): the effect estimated in the cluster branch (difference in
    means with ``vcov`` cluster-robust errors) against the unit branch (difference in
    means with Neyman errors), ``z = (cluster - unit) / sqrt(V_cluster + V_unit)``, against
    a t reference with Welch-Satterthwaite degrees of freedom (the cluster branch's are
    its Bell-McCaffrey df: few clusters make the test wider, not looser).

    Without interference both branches estimate the same average effect, and the
    variance of the difference is bounded above by the sum (Pouget-Abadie et al. 2019),
    so the test is conservative. Spillover through the graph makes the unit branch
    understate the effect (treated units' neighbours are partly treated controls), and
    the test rejects.

    Parameters
    ----------
    outcomes
        ``unit_id`` and the outcome column.
    assignment
        The :class:`~spillover.design.Assignment` of a ``MixedDesign``, or its
        ``to_frame()``: ``unit_id, cluster_id, arm, branch``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from spillover.design import MixedDesign
    >>> clusters = np.repeat(np.arange(200), 10)
    >>> assignment = MixedDesign(clusters, range(2_000)).assign(seed=1)
    >>> rng = np.random.default_rng(0)
    >>> y = 0.5 * (assignment.arms == 1) + rng.normal(size=200)[clusters] + rng.normal(size=2_000)
    >>> test = interference_test(pd.DataFrame({"unit_id": range(2_000), "y": y}), assignment)
    >>> test.detected                                # no spillover in these outcomes
    False
    """
    from .design import Assignment

    frame = assignment.to_frame() if isinstance(assignment, Assignment) else pd.DataFrame(assignment)
    missing = [c for c in ("unit_id", "cluster_id", "arm", "branch") if c not in frame.columns]
    if missing:
        raise InputError(f"interference_test needs the assignment of a MixedDesign (unit_id, cluster_id, arm, branch); "
                         f"missing {missing}.")
    table = frame.merge(outcomes[["unit_id", outcome_col]].rename(columns={outcome_col: "y"}), on="unit_id")
    table = table[table["y"].notna() & table["arm"].isin([0, 1])]
    cluster_branch, unit_branch = table[table["branch"] == 1], table[table["branch"] == 0]
    for name, part in (("cluster", cluster_branch), ("unit", unit_branch)):
        if part["arm"].nunique() < 2:
            raise InputError(f"interference_test: the {name} branch has units of one arm only.")
    z = cluster_branch["arm"].to_numpy(dtype=float)
    fit = ols(cluster_branch["y"].to_numpy(dtype=float), np.column_stack([np.ones(z.size), z]),
              cluster_branch["cluster_id"].to_numpy(), vcov)
    cluster_est, cluster_var = float(fit.beta[1]), float(fit.cov[1, 1])
    groups = unit_branch.groupby("arm")["y"]
    mean, var, n = groups.mean(), groups.var(ddof=1), groups.size()
    unit_est = float(mean[1] - mean[0])
    unit_var = float(var[1] / n[1] + var[0] / n[0])
    difference = cluster_est - unit_est
    se = float(np.sqrt(cluster_var + unit_var))
    statistic = difference / se
    # a t reference with Welch-Satterthwaite degrees of freedom: the cluster branch's
    # variance rests on its few clusters (its Bell-McCaffrey df), the unit branch's on many units
    df = (cluster_var + unit_var) ** 2 / (cluster_var**2 / float(fit.df[1]) + unit_var**2 / (len(unit_branch) - 2))
    p = float(2 * stats.t.sf(abs(statistic), df))
    share = difference / cluster_est if cluster_est != 0 else float("nan")
    return InterferenceTest(cluster_est, unit_est, difference, se, float(statistic), p, float(share),
                            int(cluster_branch["cluster_id"].nunique()), int(len(unit_branch)), alpha)


# --------------------------------------------------------------------------- randomization tests


@dataclass(frozen=True)
class RandomizationTest:
    """A Fisher randomization test: the observed statistic, its p-value
    ``(1 + #{|T_r| >= |T_obs|}) / (1 + R)`` over ``n_draws`` re-drawn assignments.

    Examples
    --------
    >>> import pandas as pd
    >>> from spillover import synth
    >>> from spillover.design import IndividualDesign
    >>> graph = synth.social_graph(300, seed=1)
    >>> design = IndividualDesign(graph.nodes)
    >>> outcomes = pd.DataFrame({"unit_id": graph.nodes, "y": 0.0})
    >>> test = randomization_test(graph, design, design.assign(seed=1), outcomes, n_draws=99, seed=2)
    >>> test.null, test.p_value
    ('no-effect', 1.0)
    """

    null: str
    statistic: str
    observed: float
    p_value: float
    n_draws: int


def _mean_difference(y: np.ndarray, in_k: np.ndarray, in_l: np.ndarray) -> np.ndarray:
    """Per draw (columns), the mean of ``y`` over units in ``k`` minus over ``l``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (y @ in_k) / in_k.sum(axis=0) - (y @ in_l) / in_l.sum(axis=0)


def randomization_test(
    graph,
    design,
    assignment,
    outcomes: pd.DataFrame,
    *,
    null: str = "no-effect",
    mapping: str = "as4",
    condition: str | None = None,
    outcome_col: str = "y",
    n_draws: int = 1_000,
    seed=None,
) -> RandomizationTest:
    """Exact test of a sharp null by re-drawing assignments from ``design``.

    ``null="no-effect"``: no unit's outcome depends on any assignment; the statistic is
    the difference in means between ``condition`` (default: the mapping's first) and the
    control condition, recomputed under every draw (one sparse product for all draws).

    ``null="no-spillover"``: outcomes depend on a unit's own assignment only (Athey,
    Eckles & Imbens 2018). A random half of the units is focal; their arms stay as
    observed and the others are re-drawn (a permutation of their observed arms, exact for
    complete randomization; Bernoulli redraws otherwise). The statistic compares untreated
    focal units with and without a treated neighbour, whose outcomes the null fixes.
    Needs an individual design on a social graph.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from spillover import synth
    >>> from spillover.design import IndividualDesign
    >>> graph = synth.social_graph(400, seed=1)
    >>> design = IndividualDesign(graph.nodes)
    >>> assignment = design.assign(seed=1)
    >>> y = 1.0 * (assignment.arms == 1) + np.random.default_rng(0).normal(size=400)
    >>> test = randomization_test(graph, design, assignment, pd.DataFrame({"unit_id": graph.nodes, "y": y}),
    ...                           mapping="fraction", n_draws=199, seed=2)
    >>> test.p_value < 0.01
    True
    """
    from .design import IndividualDesign
    from .exposure import ExposureGraph, arms_for, treated_indicator

    rule = get_mapping(mapping)
    kernel = ExposureGraph.build(graph, rule.hops)
    arms = arms_for(kernel.randomized, assignment)
    table = outcomes.set_index("unit_id")[outcome_col].reindex(kernel.units)
    observed_units = table.notna().to_numpy()
    y = table.fillna(0.0).to_numpy(dtype=float)
    rng = check_seed(seed)
    observed_z = treated_indicator(arms)

    if null == "no-effect":
        k = rule.conditions.index(condition) if condition else 0
        l = rule.conditions.index(rule.control)

        def statistic(z: np.ndarray) -> np.ndarray:
            codes = rule.codes(kernel.counts(z))
            return _mean_difference(y, (codes == k) & observed_units[:, None], (codes == l) & observed_units[:, None])

        draws = treated_indicator(design.draw(n_draws, rng))
        label = f"mean difference {rule.conditions[k]} - {rule.control}"
    elif null == "no-spillover":
        if not isinstance(design, IndividualDesign) or kernel.own_index is None:
            raise InputError("the no-spillover test needs an individual design on a social graph.")
        focal = rng.random(len(observed_z)) < 0.5

        def statistic(z: np.ndarray) -> np.ndarray:
            exposed = kernel.counts(z).n_treated > 0
            base = (focal & observed_units & (observed_z == 0))[:, None]
            return _mean_difference(y, base & exposed, base & ~exposed)

        others = np.flatnonzero(~focal)
        draws = np.repeat(observed_z[:, None], n_draws, axis=1)
        if design.complete:
            draws[others] = rng.permuted(np.broadcast_to(observed_z[others], (n_draws, others.size)), axis=1).T
        else:
            draws[others] = (rng.random((others.size, n_draws)) < design.weights[1]).astype(np.int8)
        label = "untreated focal units: mean difference exposed - unexposed"
    else:
        raise InputError(f"null must be 'no-effect' or 'no-spillover', not {show_id(null)}.")

    observed = float(statistic(observed_z[:, None])[0])
    if not np.isfinite(observed):
        raise InputError("the test statistic is undefined for the observed assignment (an empty group).")
    replicates = statistic(draws)
    replicates = replicates[np.isfinite(replicates)]
    p_value = (1 + np.sum(np.abs(replicates) >= abs(observed) - 1e-12)) / (1 + replicates.size)
    return RandomizationTest(null, label, observed, float(p_value), int(replicates.size))


# --------------------------------------------------------------------------- staggered rollout


def _dependent_mean(w: np.ndarray, pairs: sp.csr_array, alpha: float) -> tuple[float, float, float, float, float]:
    """The mean of per-unit terms ``w`` with the dependence-robust variance over
    ``pairs`` (the variance kernel) and a normal interval: estimate, se, low, high, p."""
    estimate_ = float(w.mean())
    cov = dependence_robust(np.ones((w.size, 1)), w - estimate_, pairs, n_groups=w.size).cov
    se, low, high, p = (float(v) for v in t_interval(estimate_, float(np.sqrt(cov[0, 0])), float("inf"), alpha))
    return estimate_, se, low, high, p


def lagrange_weights(nodes: Sequence[float], at: float) -> np.ndarray:
    """The Lagrange basis polynomials of ``nodes`` evaluated at ``at``: the weights with
    which the values of a polynomial of degree ``len(nodes) - 1`` at the nodes give its
    value at ``at``.

    Examples
    --------
    >>> w = lagrange_weights([0.0, 0.1, 0.2], 1.0)
    >>> round(float(w @ np.array([0.0, 0.1, 0.2]) ** 2), 12)          # x^2 at 1, from three points
    1.0
    """
    nodes = np.asarray(nodes, dtype=float)
    if np.unique(nodes).size != nodes.size:
        raise InputError(f"interpolation nodes {nodes.tolist()} must be distinct.")
    weights = np.ones(nodes.size)
    for t in range(nodes.size):  # a handful of stages
        others = np.delete(nodes, t)
        weights[t] = np.prod((at - others) / (nodes[t] - others))
    return weights


def polynomial_interpolation(
    outcomes: pd.DataFrame,
    design,
    *,
    degree: int | None = None,
    graph=None,
    stages: np.ndarray | None = None,
    outcome_col: str = "y",
    alpha: float = 0.05,
) -> Effect:
    """The total treatment effect (everyone treated against no one) from a staggered
    rollout, without the network (Cortez-Rodriguez, Eichhorn & Yu 2022).

    A two-stage rollout (``design.clusters`` given; Cortez-Rodriguez, Eichhorn & Yu 2024)
    needs ``stages`` (``design.stages(...)``, ``-1`` for units of unsampled clusters):
    the estimate is the mean of ``W`` over the sampled units, exactly unbiased when the
    clusters cut no edge and have equal sizes, with a variance that takes units of one
    cluster as dependent (clusters are what was sampled).

    ``outcomes`` holds ``unit_id, stage, y``: every unit of ``design`` (a
    :class:`~spillover.design.RolloutDesign`) measured at stages ``0..degree``. Under
    Bernoulli(``p``) treatment the mean outcome ``F(p)`` is a polynomial of degree ``beta``
    in ``p`` when outcomes are polynomials of degree ``beta`` in the treatment vector (at
    most ``beta`` units' treatments interact); the stage means are unbiased for
    ``F(p_0 = 0), F(p_1), ..., F(p_beta)``, and Lagrange extrapolation to ``p = 1`` gives
    ``F(1) - F(0)`` **exactly unbiased** under that model (``degree = beta``, default: every
    stage). Per unit ``W_i = sum_t (l_t(1) - [t = 0]) y_i(t)`` and the estimate is their mean.

    Standard error: with ``graph``, the network-robust variance of the mean of ``W``
    (:func:`~spillover.variance.dependence_robust`, pairs whose closed neighbourhoods
    overlap: their ``W`` share treatments); without it, units are treated as independent,
    which interference makes optimistic (the method says so). Extrapolating far beyond the
    largest share inflates the variance: the weights ``l_t(1)`` grow as ``p_beta`` shrinks.

    Examples
    --------
    >>> from spillover import synth
    >>> from spillover.design import RolloutDesign
    >>> graph = synth.social_graph(5_000, seed=1)
    >>> design = RolloutDesign(graph.nodes, (0.1, 0.2))
    >>> stages = design.stages(seed=2)
    >>> rows = []
    >>> for t in range(3):                                   # y = 1 + 0.5 z_i + 1.0 * share of treated friends
    ...     z = design.treated_at(stages, t)
    ...     share = (graph.adjacency @ z) / np.maximum(graph.degrees(), 1)
    ...     rows.append(pd.DataFrame({"unit_id": graph.nodes, "stage": t, "y": 1 + 0.5 * z + 1.0 * share}))
    >>> effect = polynomial_interpolation(pd.concat(rows), design, degree=1, graph=graph)
    >>> truth = 0.5 + 1.0 * float(np.mean(graph.degrees() > 0))   # everyone treated: all friends treated
    >>> effect.estimand, effect.ci_low < truth < effect.ci_high
    ('total', True)
    """
    n_stages = design.n_stages
    degree = n_stages if degree is None else int(degree)
    if not 1 <= degree <= n_stages:
        raise InputError(f"degree={degree}: a rollout of {n_stages} stage(s) supports degrees 1..{n_stages} "
                         "(degree beta needs stages 0..beta).")
    require = [c for c in ("unit_id", "stage", outcome_col) if c not in outcomes.columns]
    if require:
        raise InputError(f"rollout outcomes: missing column(s) {require}; they need unit_id, stage and "
                         f"{outcome_col!r}, one row per unit and stage.")
    units = design.units
    if design.two_stage:
        if stages is None:
            raise InputError("a two-stage rollout needs stages= (design.stages(...)): which clusters were sampled.")
        stages = np.asarray(stages)
        if stages.shape != (len(units),):
            raise InputError(f"stages: {stages.size} values for the design's {len(units)} units.")
        sampled = stages != OUT
        if not sampled.any():
            raise InputError("two-stage rollout: no cluster was sampled; nothing to estimate from.")
        units = units[sampled]
    used = outcomes[outcomes["stage"].isin(range(degree + 1))]
    if used.duplicated(["unit_id", "stage"]).any():
        row = used[used.duplicated(["unit_id", "stage"])].iloc[0]
        raise InputError(f"rollout outcomes: unit {show_id(row['unit_id'])} has two rows at stage {int(row['stage'])}.")
    wide = used.pivot(index="unit_id", columns="stage", values=outcome_col).reindex(
        index=units, columns=range(degree + 1))
    values = wide.to_numpy(dtype=float)
    missing = ~np.isfinite(values)
    if missing.any():
        unit, stage = np.argwhere(missing)[0]
        raise InputError(f"rollout outcomes: unit {show_id(units[unit])} has no finite {outcome_col!r} at stage "
                         f"{stage} ({int(missing.sum())} missing in all); every unit is measured at stages "
                         f"0..{degree}.")
    nodes = np.concatenate([[0.0], design.fractions[:degree]])
    coefficients = lagrange_weights(nodes, 1.0)
    coefficients[0] -= 1.0  # minus F(0): the baseline stage
    w = values @ coefficients
    n = w.size
    if graph is not None:
        pairs = _network_pairs(graph, units)
        how = "network-robust variance (pairs sharing a neighbour)"
    else:
        pairs = sp.eye_array(n, format="csr")
        how = "units taken as independent (no graph given: optimistic under interference)"
    two_stage = ""
    if design.two_stage:  # units of one sampled cluster are dependent: the cluster was the draw
        members = group_indicator(design.clusters[sampled], int(design.clusters.max()) + 1).T.tocsr()
        pairs = sp.csr_array(pairs + members @ members.T)
        pairs.data[:] = 1
        how += " and units of one cluster"
        two_stage = f"two-stage ({int(np.unique(design.clusters[sampled]).size)} clusters sampled, q = " \
                    f"{design.cluster_fraction:g}), "
    estimate_, se, low, high, p = _dependent_mean(w, pairs, alpha)
    return Effect("total", "all treated", estimate_, se, low, high, p, n, None,
                  f"polynomial interpolation, {two_stage}degree {degree}, shares "
                  f"{[0.0, *design.fractions[:degree]]}; {how}")


# --------------------------------------------------------------------------- regression estimators of the global effect

GATE_FEATURES = ("fraction", "count")  # interference features of regression_adjustment


def _closed_neighbourhoods(graph, units: pd.Index) -> sp.csr_array:
    """0/1 ``units x nodes``: each unit and its neighbours in ``graph``."""
    closed = sp.csr_array(graph.symmetric() + sp.eye_array(graph.n_nodes, format="csr"))
    closed.data[:] = 1
    positions = graph.nodes.get_indexer(units)
    if (positions < 0).any():
        raise InputError("the analysed units are not all nodes of the graph.")
    return sp.csr_array(closed[positions])


def _network_pairs(graph, units: pd.Index) -> sp.csr_array:
    """Pairs of ``units`` whose closed neighbourhoods in ``graph`` overlap: their outcomes
    (and exposures) share a treatment, so their errors may be dependent."""
    closed = _closed_neighbourhoods(graph, units)
    pairs = sp.csr_array(closed @ closed.T)
    pairs.data[:] = 1
    return pairs


def regression_adjustment(
    outcomes: pd.DataFrame,
    graph,
    assignment,
    *,
    features: Sequence[str] = ("fraction",),
    outcome_col: str = "y",
    missing: str = "drop",
    alpha: float = 0.05,
    bootstrap: int | None = None,
    design=None,
    seed=None,
) -> Effect:
    """The global average treatment effect (everyone treated against no one) by Chin's
    (2019) regression adjustment.

    In each arm, OLS of the outcome on interference features (``fraction``: the share of
    treated neighbours; ``count``: their number), then each unit's prediction under
    treatment with every neighbour treated (share 1, count = degree) minus its prediction
    under control with none (0, 0), averaged. Under a linear model in those features the
    estimate is exact for every assignment, hence unbiased (checked by full enumeration);
    the difference in means, which leaves neighbours half-treated, is biased toward zero.

    The two arms' fits are one regression with arm-interacted columns; the standard error
    of the contrast is the network-robust sandwich of the variance kernel
    (:func:`~spillover.variance.dependence_robust`, pairs of units sharing a neighbour,
    whose features share treatments).

    ``bootstrap=B`` with the ``design`` that made the assignment: a bootstrap over the
    design instead. Each replicate redraws the assignment from the design
    (``design.draw``), recomputes every unit's features, builds outcomes from the fitted
    arm models plus each unit's own residual with a random sign (wild, Rademacher), and
    refits; the standard error is the replicates' standard deviation. It carries what the
    network does to the features of a fresh assignment, which a sandwich around one
    assignment does not see.

    Examples
    --------
    >>> from spillover import synth
    >>> from spillover.design import IndividualDesign
    >>> from spillover.exposure import exposure
    >>> graph = synth.social_graph(4_000, seed=1)
    >>> assignment = IndividualDesign(graph.nodes, 0.5).assign(seed=2)
    >>> table = exposure(graph, assignment, "fraction")
    >>> y = 1 + 0.5 * (table["arm"] == 1) + 1.0 * table["treated_fraction"]      # spillover 1.0
    >>> effect = regression_adjustment(pd.DataFrame({"unit_id": table["unit_id"], "y": y}), graph, assignment)
    >>> truth = 0.5 + 1.0 * float(np.mean(graph.degrees() > 0))
    >>> round(effect.estimate - truth, 12), effect.estimand
    (0.0, 'total')
    """
    from .exposure import assignment_ids, exposure as exposure_of
    from .graph import with_isolates

    unknown = [f for f in features if f not in GATE_FEATURES]
    if unknown or not features:
        raise InputError(f"features {list(features)}: choose one or more of {list(GATE_FEATURES)}.")
    graph = with_isolates(graph, assignment_ids(assignment), "assignment")  # units without edges are units
    table = analysis_table(outcomes, exposure_of(graph, assignment, "fraction"), outcome_col, None, missing)
    z = (table["arm"].to_numpy() >= 1).astype(float)
    degree = table["n_neighbors"].to_numpy(dtype=float)
    observed = {"fraction": table["treated_fraction"].to_numpy(dtype=float),
                "count": table["n_treated_neighbors"].to_numpy(dtype=float)}
    all_treated = {"fraction": (degree > 0).astype(float), "count": degree}
    n = len(table)
    x = np.column_stack([np.ones(n)] + [observed[f] for f in features])
    x_treated = np.column_stack([np.ones(n)] + [all_treated[f] for f in features])
    x_control = np.column_stack([np.ones(n)] + [np.zeros(n) for _ in features])
    regressors = np.hstack([z[:, None] * x, (1 - z)[:, None] * x])  # arm-interacted: the two fits at once
    for arm, label in ((1.0, "treated"), (0.0, "control")):
        rows = x[z == arm]
        if len(rows) <= x.shape[1] or np.linalg.matrix_rank(rows) < x.shape[1]:
            raise InputError(f"regression adjustment: the {label} arm has {len(rows)} unit(s) and its features "
                             f"{list(features)} do not vary enough to fit {x.shape[1]} coefficients; use fewer features "
                             "or a design with more units in each arm.")
    y = table["y"].to_numpy(dtype=float)
    theta = np.linalg.lstsq(regressors, y, rcond=None)[0]
    contrast = np.concatenate([x_treated.mean(axis=0), -x_control.mean(axis=0)])
    estimate_ = float(contrast @ theta)
    if bootstrap is None:
        pairs = _network_pairs(graph, pd.Index(table["unit_id"]))
        cov = dependence_robust(regressors, y - regressors @ theta, pairs, n_groups=n).cov
        se = float(np.sqrt(max(float(contrast @ cov @ contrast), 0.0)))
        how = "network-robust variance"
    else:
        se = _design_bootstrap_se(graph, table, features, theta, y - regressors @ theta, contrast, int(bootstrap),
                                  design, seed)
        how = f"design bootstrap, {int(bootstrap)} redraws"
    se, low, high, p = (float(v) for v in t_interval(estimate_, se, float("inf"), alpha))
    return Effect("total", "all treated", estimate_, se, low, high, p, n, None,
                  f"regression adjustment (Chin 2019) on {list(features)}; {how}")


def _design_bootstrap_se(graph, table: pd.DataFrame, features, theta, residual, contrast, n_boot: int, design,
                         seed) -> float:
    """Standard deviation of the regression-adjustment estimate over redraws of the
    design, outcomes from the fitted arm models plus sign-flipped own residuals."""
    if n_boot < 2:
        raise InputError(f"bootstrap={n_boot}: a design bootstrap needs at least 2 redraws.")
    if design is None or not hasattr(design, "draw"):
        raise InputError("a design bootstrap redraws the assignment: give the design that made it (design=).")
    units = pd.Index(table["unit_id"])
    design_units = pd.Index(getattr(design, "units", graph.nodes))
    where = design_units.get_indexer(graph.nodes)
    if (where < 0).any() or units.difference(graph.nodes).size:
        raise InputError("design bootstrap: the design does not cover every unit of the graph; give the design "
                         "that made this assignment.")
    rows = graph.nodes.get_indexer(units)
    kernel = ExposureGraph.build(graph)  # the same counts the observed features came from
    rng = check_seed(seed)
    k = 1 + len(features)
    estimates = []
    for start in range(0, n_boot, 50):  # chunks of redraws bound the (units x redraws) memory
        b = min(50, n_boot - start)
        z_all = (design.draw(b, rng)[where] >= 1).astype(float)  # (nodes, b), graph order
        counts = kernel.counts(z_all)
        columns = {"fraction": counts.treated_fraction, "count": counts.n_treated}
        z = z_all[rows]
        x = np.stack([np.ones_like(z)] + [columns[f][rows] for f in features], axis=2)  # (n, b, k)
        fitted = np.where(z == 1, np.einsum("nbk,k->nb", x, theta[:k]), np.einsum("nbk,k->nb", x, theta[k:]))
        y = fitted + residual[:, None] * rng.choice((-1.0, 1.0), size=z.shape)
        estimate_b = np.zeros(b)
        for arm_z, part in ((1.0, slice(0, k)), (0.0, slice(k, 2 * k))):  # each arm's refit, per redraw
            w = (z == arm_z).astype(float)
            xtx = np.einsum("nb,nbk,nbl->bkl", w, x, x)
            xty = np.einsum("nb,nbk,nb->bk", w, x, y)
            solved = np.stack([np.linalg.lstsq(xtx[i], xty[i], rcond=None)[0] for i in range(b)])  # k x k each
            estimate_b += solved @ contrast[part]
        estimates.append(estimate_b)
    return float(np.std(np.concatenate(estimates), ddof=1))


def weighted_least_squares(
    outcomes: pd.DataFrame,
    exposure: pd.DataFrame,
    probabilities: ExposureProbabilities,
    *,
    covariates: Sequence[str] = (),
    control: str | None = None,
    graph=None,
    outcome_col: str = "y",
    missing: str = "drop",
    alpha: float = 0.05,
) -> list[Effect]:
    """Gao & Ding's (2023) design-based regression: weighted least squares of the outcome
    on the exposure-condition indicators (no intercept), weights ``1 / pi_i(D_i)``, with
    ``covariates`` centred and interacted with the conditions. Without covariates the
    coefficients are the Hajek means of the conditions, so each contrast equals
    ``estimate(..., "hajek")`` (to 1e-12); covariates reduce its variance.

    Standard errors: the weighted network-robust sandwich of the variance kernel over the
    pairs whose exposures depend on each other (``probabilities.pairs``, or with ``graph``
    the pairs sharing a neighbour).

    Examples
    --------
    >>> from spillover import synth
    >>> from spillover.design import IndividualDesign
    >>> from spillover.exposure import exposure, probabilities
    >>> graph = synth.social_graph(2_000, seed=3)
    >>> design = IndividualDesign(graph.nodes, 0.5, complete=False)
    >>> table = exposure(graph, design.assign(seed=4), "as4")
    >>> y = pd.DataFrame({"unit_id": table["unit_id"], "y": np.random.default_rng(5).normal(size=len(table))})
    >>> probs = probabilities(graph, "as4", design=design)
    >>> wls = weighted_least_squares(y, table, probs)
    >>> hajek = estimate(y, table, "hajek", probabilities=probs)
    >>> abs(wls[0].estimate - hajek.effects[0].estimate) < 1e-12
    True
    """
    table = analysis_table(outcomes, exposure, outcome_col, None, missing, covariates)
    positions = probabilities.units.get_indexer(pd.Index(table["unit_id"]))
    if (positions < 0).any():
        raise InputError("exposure probabilities do not cover every analysed unit; compute them on the same graph.")
    control = control or (probabilities.mapping.control if probabilities.mapping else
                          default_control(probabilities.conditions))
    condition = table["condition"].astype(str).to_numpy()
    present = [c for c in probabilities.conditions if (condition == c).any()]
    if control not in present:
        raise _no_control(control, pd.Series(condition).value_counts().to_dict())
    k_of = np.array([probabilities.condition_index(c) for c in condition])
    pi = probabilities.marginal[positions, k_of]
    if (pi <= 0).any():
        raise InputError(f"{int((pi <= 0).sum())} unit(s) are observed in a condition of probability 0 under the "
                         "design: use more draws or another design.")
    w = 1.0 / pi
    indicators = np.column_stack([(condition == c).astype(float) for c in present])
    columns = [indicators]
    if covariates:
        values = table[list(covariates)].to_numpy(dtype=float)
        centred = values - np.average(values, axis=0, weights=w)
        columns += [indicators[:, [j]] * centred for j in range(len(present))]
    x = np.hstack(columns)
    y = table["y"].to_numpy(dtype=float)
    root = np.sqrt(w)
    beta = np.linalg.lstsq(x * root[:, None], y * root, rcond=None)[0]
    if graph is not None:
        pairs = _network_pairs(graph, pd.Index(table["unit_id"]))
        how = "pairs sharing a neighbour"
    else:
        expanded = probabilities.per_unit()
        pairs = sp.csr_array(expanded.pairs[positions][:, positions])
        how = "pairs with dependent exposures under the design"
    cov = dependence_robust(x * root[:, None], (y - x @ beta) * root, pairs, n_groups=len(table)).cov
    l = present.index(control)
    mapping = probabilities.mapping
    effects = []
    for j, name in enumerate(present):
        if name == control:
            continue
        c = np.zeros(x.shape[1])
        c[j], c[l] = 1.0, -1.0
        est = float(c @ beta)
        se = float(np.sqrt(max(float(c @ cov @ c), 0.0)))
        n_units = int(((condition == name) | (condition == control)).sum())
        effects.append(_effect(name, control, mapping, est, se, np.inf, alpha, n_units, None,
                               f"weighted least squares (Gao & Ding 2023){' + ' + ', '.join(covariates) if covariates else ''}; "
                               f"network-robust variance ({how})"))
    return effects


def snipe(
    outcomes: pd.DataFrame,
    graph,
    assignment,
    treat_fraction: float,
    *,
    degree: int = 1,
    outcome_col: str = "y",
    missing: str = "drop",
    alpha: float = 0.05,
) -> Effect:
    """The total treatment effect under Bernoulli(``p``) randomization of units with a
    known graph: SNIPE(``beta``) (Cortez-Rodriguez, Eichhorn & Yu 2023).

    If each unit's outcome is a polynomial of degree ``beta`` in the treatments of its
    closed neighbourhood ``N_i`` (itself and its neighbours), then with
    ``phi_j = (z_j - p) / sqrt(p (1 - p))`` (an orthonormal basis under the design) the
    unit's effect is ``sum_{T in N_i, 1 <= |T| <= beta} E[y_i phi_T] (a^|T| - b^|T|)``,
    ``a = (1 - p) / sqrt(p (1 - p))`` and ``b = -p / sqrt(p (1 - p))``, and replacing each
    expectation by ``y_i phi_T(z)`` is **exactly unbiased**. The sums over subsets are
    elementary symmetric polynomials of the ``phi_j``, computed from power sums by
    Newton's identities: sparse products, linear in the graph. ``beta = 1`` is
    ``y_i sum_{j in N_i} (z_j - p) / (p (1 - p))``.

    The standard error is the network-robust variance of the mean of the per-unit terms
    (pairs of units sharing a neighbour), as for the rollout.

    Examples
    --------
    >>> from spillover import synth
    >>> from spillover.design import IndividualDesign
    >>> graph = synth.social_graph(20_000, seed=1)
    >>> assignment = IndividualDesign(graph.nodes, 0.5, complete=False).assign(seed=2)
    >>> z = assignment.arms.astype(float)
    >>> y = 1 + 0.5 * z + 0.1 * (graph.adjacency @ z)                  # each treated friend adds 0.1
    >>> effect = snipe(pd.DataFrame({"unit_id": graph.nodes, "y": y}), graph, assignment, 0.5)
    >>> truth = 0.5 + 0.1 * float(graph.degrees().mean())
    >>> effect.ci_low < truth < effect.ci_high
    True
    """
    from .exposure import assignment_ids, exposure as exposure_of
    from .graph import with_isolates

    p = float(treat_fraction)
    if not 0.0 < p < 1.0:
        raise InputError(f"treat_fraction={treat_fraction}: SNIPE needs a Bernoulli share strictly between 0 and 1.")
    degree = int(degree)
    if degree < 1:
        raise InputError(f"degree={degree}: the interaction order beta is at least 1.")
    graph = with_isolates(graph, assignment_ids(assignment), "assignment")  # units without edges are units
    full = exposure_of(graph, assignment, "fraction")
    table = analysis_table(outcomes, full, outcome_col, None, missing)
    z = np.zeros(graph.n_nodes)  # every node's treatment, in the graph's order
    z[graph.nodes.get_indexer(pd.Index(full["unit_id"]))] = (full["arm"].to_numpy() >= 1)
    scale = np.sqrt(p * (1 - p))
    phi = (z - p) / scale
    closed = _closed_neighbourhoods(graph, pd.Index(table["unit_id"]))
    power = [None] + [closed @ phi**m for m in range(1, degree + 1)]  # p_m = sum over N_i of phi^m
    elementary = [np.ones(closed.shape[0])]
    for k in range(1, degree + 1):  # Newton's identities: k e_k = sum_m (-1)^(m-1) e_(k-m) p_m
        elementary.append(sum((-1) ** (m - 1) * elementary[k - m] * power[m] for m in range(1, k + 1)) / k)
    a, b = (1 - p) / scale, -p / scale
    weight = sum((a**k - b**k) * elementary[k] for k in range(1, degree + 1))
    w = table["y"].to_numpy(dtype=float) * weight
    estimate_, se, low, high, p_value = _dependent_mean(w, _network_pairs(graph, pd.Index(table["unit_id"])), alpha)
    return Effect("total", "all treated", estimate_, se, low, high, p_value, w.size, None,
                  f"SNIPE({degree}), Bernoulli({p:g}); network-robust variance")
