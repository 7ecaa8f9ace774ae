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
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from .errors import DataWarning, EmptyConditionWarning, FewClustersWarning, InputError
from .exposure import ExposureProbabilities, get_mapping
from .graph import csr_rows, group_indicator

METHODS = ("difference-in-means", "cluster-means", "ols-cluster", "ht", "hajek")
_ESTIMANDS = {
    "isol_dir": "direct", "ind1": "indirect", "dir_ind1": "total", "ind2": "indirect (2 hops)",
    "dir_ind2": "direct + indirect (2 hops)", "direct": "direct", "indirect": "indirect",
    "treated": "total",
}
FEW_CLUSTERS = 30


@dataclass(frozen=True)
class Effect:
    """One contrast of an exposure condition against the control condition."""

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


@dataclass(frozen=True)
class Effects:
    """The effects of one analysis: a tidy table, one row per contrast."""

    effects: tuple[Effect, ...]
    control: str

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(e) for e in self.effects], columns=list(Effect.__dataclass_fields__))

    def __getitem__(self, estimand_or_condition: str) -> Effect:
        for effect in self.effects:
            if estimand_or_condition in (effect.estimand, effect.condition):
                return effect
        raise KeyError(estimand_or_condition)

    def __len__(self) -> int:
        return len(self.effects)

    def __repr__(self) -> str:
        lines = [f"Effects against '{self.control}':"]
        for e in self.effects:
            lines.append(
                f"  {e.estimand:<10} ({e.condition}) {e.estimate:+.4f}  se {e.se:.4f}  "
                f"95% CI [{e.ci_low:+.4f}, {e.ci_high:+.4f}]  p {e.p_value:.3g}  "
                f"n={e.n_units}{'' if e.n_clusters is None else f', G={e.n_clusters}'}  [{e.method}]"
            )
        return "\n".join(lines)


def estimand_of(condition: str, control: str) -> str:
    return _ESTIMANDS.get(condition, f"{condition} vs {control}")


# --------------------------------------------------------------------------- inputs


def _analysis_table(
    outcomes: pd.DataFrame,
    exposure: pd.DataFrame,
    outcome_col: str,
    clusters: pd.DataFrame | pd.Series | None,
    missing: str,
    covariates: Sequence[str] = (),
) -> pd.DataFrame:
    """Outcomes joined to exposure (and clusters) by ``unit_id``, with bad input refused."""
    for name, frame, needed in (("outcomes", outcomes, ["unit_id", outcome_col, *covariates]),
                                ("exposure", exposure, ["unit_id", "condition"])):
        absent = [c for c in needed if c not in frame.columns]
        if absent:
            raise InputError(f"{name} table: missing column(s) {absent}; it has {list(frame.columns)}.")
        if frame["unit_id"].duplicated().any():
            dup = frame.loc[frame["unit_id"].duplicated(), "unit_id"].iloc[0]
            raise InputError(f"{name} table: unit_id {dup!r} appears more than once.")
    unknown = pd.Index(outcomes["unit_id"]).difference(pd.Index(exposure["unit_id"]))
    if len(unknown):
        raise InputError(
            f"outcomes: {len(unknown)} unit id(s) have no exposure, e.g. {list(unknown[:5])}: "
            "outcomes must belong to units of the graph."
        )
    table = exposure.merge(outcomes[["unit_id", outcome_col, *covariates]].rename(columns={outcome_col: "y"}),
                           on="unit_id", how="left")
    if "arm" in table and table["arm"].notna().any():
        table = table[table["arm"].isna() | (table["arm"] != -1)]  # out of the experiment
    if clusters is not None:
        series = clusters.set_index("unit_id")["cluster_id"] if isinstance(clusters, pd.DataFrame) else clusters
        table["cluster"] = series.reindex(table["unit_id"]).to_numpy()
        if table["cluster"].isna().any():
            bad = table.loc[table["cluster"].isna(), "unit_id"].iloc[0]
            raise InputError(f"clusters: unit {bad!r} (and {int(table['cluster'].isna().sum()) - 1} more) has no cluster.")
    lacking = table[["y", *covariates]].isna().any(axis=1)
    if lacking.any():
        n = int(lacking.sum())
        if missing == "error":
            example = table.loc[lacking, "unit_id"].iloc[0]
            raise InputError(f"outcomes: {n} unit(s) have no outcome, e.g. {example!r}; fill them or use missing='drop'.")
        warnings.warn(f"outcomes: dropped {n} unit(s) with a missing outcome or covariate.", DataWarning, stacklevel=3)
        table = table[~lacking]
    return table.reset_index(drop=True)


def _conditions(table: pd.DataFrame, control: str) -> list[str]:
    """Conditions to contrast with ``control``; empty ones warn and are skipped."""
    categories = list(table["condition"].cat.categories) if isinstance(table["condition"].dtype, pd.CategoricalDtype) \
        else sorted(table["condition"].unique())
    present = set(table["condition"].astype(str))
    if control not in present:
        raise InputError(f"no units in the control condition '{control}': nothing to compare with.")
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


def _interval(estimate: float, se: float, alpha: float, df: float | None = None) -> tuple[float, float, float]:
    """Confidence interval and two-sided p-value: normal, or t with ``df`` degrees of freedom."""
    dist = stats.norm if df is None else stats.t(df)
    if not np.isfinite(se) or se <= 0:
        return float("nan"), float("nan"), float("nan")
    z = dist.ppf(1 - alpha / 2)
    p = 2 * dist.sf(abs(estimate / se))
    return estimate - z * se, estimate + z * se, float(p)


# --------------------------------------------------------------------------- estimators


def difference_in_means(table: pd.DataFrame, control: str, alpha: float = 0.05) -> list[Effect]:
    """Difference of the conditions' mean outcomes with Neyman standard errors."""
    groups = table.groupby("condition", observed=True)["y"]
    mean, var, n = groups.mean(), groups.var(ddof=1), groups.size()
    effects = []
    for condition in _conditions(table, control):
        est = float(mean[condition] - mean[control])
        se = float(np.sqrt(var[condition] / n[condition] + var[control] / n[control]))
        low, high, p = _interval(est, se, alpha)
        effects.append(Effect(estimand_of(condition, control), condition, est, se, low, high, p,
                              int(n[condition] + n[control]), None, "difference in means / Neyman"))
    return effects


def cluster_means(table: pd.DataFrame, control: str, alpha: float = 0.05) -> list[Effect]:
    """Mean of cluster means in a condition minus that in control; the standard error
    comes from the spread of cluster means, with Welch-Satterthwaite t."""
    if "cluster" not in table:
        raise InputError("cluster-means needs clusters (unit_id, cluster_id).")
    means = table.groupby(["condition", "cluster"], observed=True)["y"].mean()
    effects = []
    control_means = means.loc[control]
    for condition in _conditions(table, control):
        treated_means = means.loc[condition]
        g1, g0 = len(treated_means), len(control_means)
        if min(g1, g0) < 2:
            raise InputError(f"cluster-means: '{condition}' has {g1} and '{control}' {g0} cluster(s); "
                             "each needs at least two for a standard error.")
        v1, v0 = treated_means.var(ddof=1) / g1, control_means.var(ddof=1) / g0
        est = float(treated_means.mean() - control_means.mean())
        se = float(np.sqrt(v1 + v0))
        df = (v1 + v0) ** 2 / (v1**2 / (g1 - 1) + v0**2 / (g0 - 1)) if v1 + v0 > 0 else None
        low, high, p = _interval(est, se, alpha, df)
        clusters_used = len(set(treated_means.index) | set(control_means.index))
        units = int(table["condition"].isin([condition, control]).sum())
        effects.append(Effect(estimand_of(condition, control), condition, est, se, low, high, p,
                              units, clusters_used, "cluster means / Welch t"))
    return effects


def cluster_robust_ols(
    y: np.ndarray, X: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """OLS coefficients and their CR1 cluster-robust covariance.

    ``V = c (X'X)^-1 (sum_g X_g' e_g e_g' X_g) (X'X)^-1`` with
    ``c = G/(G-1) * (N-1)/(N-K)``: the same as ``statsmodels`` ``OLS(...).fit(
    cov_type="cluster")``. Returns ``(beta, cov, n_clusters)``.
    """
    codes, uniques = pd.factorize(groups)
    n, k = X.shape
    g = len(uniques)
    xtx_inv = np.linalg.inv(X.T @ X)
    beta = xtx_inv @ (X.T @ y)
    resid = y - X @ beta
    scores = group_indicator(codes, g) @ (X * resid[:, None])
    meat = scores.T @ scores
    correction = g / (g - 1) * (n - 1) / (n - k)
    return beta, correction * xtx_inv @ meat @ xtx_inv, g


def _check_cluster_count(n_clusters: int) -> None:
    """Refuse one cluster; warn below :data:`FEW_CLUSTERS`."""
    if n_clusters < 2:
        raise InputError(f"ols-cluster: {n_clusters} cluster: a cluster-robust standard error needs at least two.")
    if n_clusters < FEW_CLUSTERS:
        warnings.warn(f"only {n_clusters} clusters: cluster-robust standard errors are unreliable below about "
                      f"{FEW_CLUSTERS}; inference uses t with {n_clusters - 1} degrees of freedom.",
                      FewClustersWarning, stacklevel=4)


def ols_cluster(
    table: pd.DataFrame,
    control: str,
    alpha: float = 0.05,
    covariates: Sequence[str] = (),
    small_sample: bool = True,
) -> list[Effect]:
    """Regression of the outcome on condition indicators (+ covariates) with CR1 errors;
    ``small_sample`` uses t with ``G - 1`` degrees of freedom instead of the normal."""
    if "cluster" not in table:
        raise InputError("ols-cluster needs clusters (unit_id, cluster_id) for cluster-robust errors.")
    conditions = _conditions(table, control)
    _check_cluster_count(table["cluster"].nunique())
    condition = table["condition"].astype(str).to_numpy()
    columns = [np.ones(len(table))] + [(condition == c).astype(float) for c in conditions]
    columns += [table[c].to_numpy(dtype=float) for c in covariates]
    beta, cov, g = cluster_robust_ols(table["y"].to_numpy(dtype=float), np.column_stack(columns),
                                      table["cluster"].to_numpy())
    df = g - 1 if small_sample else None
    effects = []
    for index, cond in enumerate(conditions, start=1):
        est, se = float(beta[index]), float(np.sqrt(cov[index, index]))
        low, high, p = _interval(est, se, alpha, df)
        effects.append(Effect(estimand_of(cond, control), cond, est, se, low, high, p, len(table), g,
                              f"OLS / CR1{', t(G-1)' if small_sample else ''}"))
    return effects


# --------------------------------------------------------------------------- Horvitz-Thompson


def _subset_pairs(matrix: sp.csr_array, keep: np.ndarray) -> sp.csr_array:
    return sp.csr_array(matrix[keep][:, keep])


def _ht_variance(y, ind, pi, joint) -> float:
    """Aronow-Samii conservative variance of the HT total of one condition: the
    unadjusted double sum over pairs with positive joint probability, plus the bound
    ``I_i y_i^2 / (2 pi_i) + I_j y_j^2 / (2 pi_j)`` for pairs (i != j) whose joint
    probability is zero. Pairs not stored are independent and add nothing."""
    rows = csr_rows(joint)
    cols, pij = joint.indices, joint.data
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(ind, y / pi, 0.0)
        positive = pij > 0
        r, c, p = rows[positive], cols[positive], pij[positive]
        unadjusted = np.sum(ind[r] * ind[c] * (p - pi[r] * pi[c]) / p * a[r] * a[c])
        m = np.where(ind, y**2 / (2 * pi), 0.0)
    zero = ~positive & (rows != cols)
    bound = np.sum(m[rows[zero]] + m[cols[zero]])
    return float(unadjusted + bound)


def _ht_covariance(y, ind_k, ind_l, pi_k, pi_l, joint_kl) -> float:
    """Aronow-Samii covariance of two conditions' HT totals, with the bound subtracted
    for every pair (a unit with itself included) of zero joint probability."""
    rows = csr_rows(joint_kl)
    cols, pij = joint_kl.indices, joint_kl.data
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(ind_k, y / pi_k, 0.0)
        b = np.where(ind_l, y / pi_l, 0.0)
        positive = pij > 0
        r, c, p = rows[positive], cols[positive], pij[positive]
        first = np.sum(ind_k[r] * ind_l[c] * (p - pi_k[r] * pi_l[c]) / p * a[r] * b[c])
        m_k = np.where(ind_k, y**2 / (2 * pi_k), 0.0)
        m_l = np.where(ind_l, y**2 / (2 * pi_l), 0.0)
    zero = ~positive
    return float(first - np.sum(m_k[rows[zero]] + m_l[cols[zero]]))


def horvitz_thompson(
    table: pd.DataFrame,
    probs: ExposureProbabilities,
    control: str,
    alpha: float = 0.05,
    hajek: bool = False,
) -> list[Effect]:
    """HT (or Hajek) contrasts of each condition against ``control`` under the design
    that produced ``probs``, with the Aronow-Samii conservative variance. The finite
    population is the units of ``table`` (their outcomes observed), ``N`` of them."""
    keep = probs.units.get_indexer(pd.Index(table["unit_id"]))
    if (keep < 0).any():
        raise InputError("exposure probabilities do not cover every analysed unit; compute them on the same graph.")
    n = len(table)
    y = table["y"].to_numpy(dtype=float)
    condition = table["condition"].astype(str).to_numpy()
    l = probs.condition_index(control)
    pi_l = probs.marginal[keep, l]
    ind_l = condition == control
    effects = []
    for name in _conditions(table, control):
        k = probs.condition_index(name)
        pi_k = probs.marginal[keep, k]
        ind_k = condition == name
        for ind, pi, label in ((ind_k, pi_k, name), (ind_l, pi_l, control)):
            if (ind & (pi <= 0)).any():
                raise InputError(
                    f"{int((ind & (pi <= 0)).sum())} unit(s) observed in '{label}' have estimated probability 0 "
                    "of it: use more draws or --prob-correction add-one."
                )
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
        joint = {key: _subset_pairs(probs.joint[key], keep) for key in ((k, k), (l, l), (k, l))}
        variance = (
            _ht_variance(target, ind_k, pi_k, joint[(k, k)])
            + _ht_variance(target, ind_l, pi_l, joint[(l, l)])
            - 2 * _ht_covariance(target, ind_k, ind_l, pi_k, pi_l, joint[(k, l)])
        ) / n**2
        se = float(np.sqrt(max(variance, 0.0)))
        low, high, p = _interval(float(est), se, alpha)
        effects.append(Effect(estimand_of(name, control), name, float(est), se, low, high, p,
                              int(ind_k.sum() + ind_l.sum()), None,
                              f"{'hajek' if hajek else 'horvitz-thompson'} / aronow-samii ({probs.method})"))
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
    table = _analysis_table(outcomes, exposure, outcome_col, None, "drop")
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
    clusters: pd.DataFrame | pd.Series | None = None,
    control: str | None = None,
    outcome_col: str = "y",
    covariates: Sequence[str] = (),
    missing: str = "drop",
    alpha: float = 0.05,
    small_sample: bool = True,
) -> Effects:
    """Estimate every condition's contrast with the control condition.

    ``outcomes`` has ``unit_id`` and the outcome column; ``exposure`` is the table of
    :func:`spillover.exposure.exposure`. ``ht``/``hajek`` need the design's exposure
    ``probabilities``; ``cluster-means`` and ``ols-cluster`` need ``clusters``. Units out
    of the experiment (arm ``-1``) are left out; missing outcomes are dropped with a
    warning, or refused with ``missing="error"``.
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose one of {list(METHODS)}.")
    if missing not in ("drop", "error"):
        raise InputError(f"missing must be 'drop' or 'error', not {missing!r}.")
    table = _analysis_table(outcomes, exposure, outcome_col, clusters, missing, covariates)
    if control is None:
        control = _default_control(table)
    if method == "difference-in-means":
        effects = difference_in_means(table, control, alpha)
    elif method == "cluster-means":
        effects = cluster_means(table, control, alpha)
    elif method == "ols-cluster":
        effects = ols_cluster(table, control, alpha, covariates, small_sample)
    else:
        if probabilities is None:
            raise InputError(f"{method} needs exposure probabilities under the design (draws or a design).")
        effects = horvitz_thompson(table, probabilities, control, alpha, hajek=method == "hajek")
    return Effects(tuple(effects), control)


def _default_control(table: pd.DataFrame) -> str:
    """The control condition of the built-in mapping whose conditions these are."""
    present = set(table["condition"].astype(str))
    for candidate in ("no", "control"):
        if candidate in present or candidate in getattr(table["condition"].dtype, "categories", []):
            return candidate
    raise InputError(f"cannot tell the control condition among {sorted(present)}; pass control=.")


# --------------------------------------------------------------------------- sufficient statistics


def estimate_from_stats(
    stats: pd.DataFrame,
    method: str,
    control: str,
    *,
    alpha: float = 0.05,
    small_sample: bool = True,
) -> Effects:
    """``difference-in-means``, ``cluster-means`` or ``ols-cluster`` (without covariates)
    from per-(cluster, condition) sufficient statistics ``cluster_id, condition, n,
    sum_y, sum_y2``: what an out-of-core or distributed engine reduces the data to, so
    the estimate is computed on a small table and equals the in-memory one."""
    needed = {"cluster_id", "condition", "n", "sum_y", "sum_y2"}
    if not needed <= set(stats.columns):
        raise InputError(f"sufficient statistics need columns {sorted(needed)}; got {list(stats.columns)}.")
    stats = stats.assign(condition=stats["condition"].astype(str))
    per = stats.groupby("condition")[["n", "sum_y", "sum_y2"]].sum()
    present = list(per.index)
    if control not in present:
        raise InputError(f"no units in the control condition '{control}': nothing to compare with.")
    conditions = [c for c in present if c != control]
    n, mean = per["n"], per["sum_y"] / per["n"]
    effects = []
    if method == "difference-in-means":
        var = (per["sum_y2"] - n * mean**2) / (n - 1)
        for c in conditions:
            est = float(mean[c] - mean[control])
            se = float(np.sqrt(var[c] / n[c] + var[control] / n[control]))
            low, high, p = _interval(est, se, alpha)
            effects.append(Effect(estimand_of(c, control), c, est, se, low, high, p, int(n[c] + n[control]), None,
                                  "difference in means / Neyman"))
    elif method == "cluster-means":
        table = pd.DataFrame({"condition": stats["condition"], "cluster": stats["cluster_id"],
                              "y": stats["sum_y"] / stats["n"]})
        for effect in cluster_means(table, control, alpha):
            units = int(n[effect.condition] + n[control])
            effects.append(Effect(**{**asdict(effect), "n_units": units}))
    elif method == "ols-cluster":
        g = stats["cluster_id"].nunique()
        _check_cluster_count(g)
        total = int(n.sum())
        k = len(conditions) + 1
        xtx = np.zeros((k, k))
        xtx[0, 0] = total
        for j, c in enumerate(conditions, start=1):
            xtx[0, j] = xtx[j, 0] = xtx[j, j] = n[c]
        # residual sums per (cluster, condition): sum_y - n * condition mean
        resid = stats["sum_y"] - stats["n"] * stats["condition"].map(mean)
        codes, _ = pd.factorize(stats["cluster_id"])
        scores = np.zeros((g, k))
        np.add.at(scores[:, 0], codes, resid.to_numpy())
        for j, c in enumerate(conditions, start=1):
            rows = (stats["condition"] == c).to_numpy()
            np.add.at(scores[:, j], codes[rows], resid.to_numpy()[rows])
        bread = np.linalg.inv(xtx)
        cov = g / (g - 1) * (total - 1) / (total - k) * bread @ (scores.T @ scores) @ bread
        df = g - 1 if small_sample else None
        for j, c in enumerate(conditions, start=1):
            est, se = float(mean[c] - mean[control]), float(np.sqrt(cov[j, j]))
            low, high, p = _interval(est, se, alpha, df)
            effects.append(Effect(estimand_of(c, control), c, est, se, low, high, p, total, g,
                                  f"OLS / CR1{', t(G-1)' if small_sample else ''}"))
    else:
        raise InputError(f"{method} cannot be computed from sufficient statistics; use the memory engine.")
    return Effects(tuple(effects), control)


def sufficient_stats(table: pd.DataFrame) -> pd.DataFrame:
    """Per-(cluster, condition) ``n, sum_y, sum_y2`` of an analysis table (memory engine)."""
    grouped = table.assign(y2=table["y"] ** 2).groupby(["cluster", "condition"], observed=True)
    out = grouped.agg(n=("y", "size"), sum_y=("y", "sum"), sum_y2=("y2", "sum")).reset_index()
    return out.rename(columns={"cluster": "cluster_id"})


# --------------------------------------------------------------------------- randomization tests


@dataclass(frozen=True)
class RandomizationTest:
    """A Fisher randomization test: the observed statistic, its p-value
    ``(1 + #{|T_r| >= |T_obs|}) / (1 + R)`` over ``n_draws`` re-drawn assignments."""

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
    """
    from .design import IndividualDesign
    from .exposure import ExposureGraph, _arms_for, _treated

    rule = get_mapping(mapping)
    kernel = ExposureGraph.build(graph, rule.hops)
    arms = _arms_for(kernel.randomized, assignment)
    table = outcomes.set_index("unit_id")[outcome_col].reindex(kernel.units)
    observed_units = table.notna().to_numpy()
    y = table.fillna(0.0).to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    observed_z = _treated(arms)

    if null == "no-effect":
        k = rule.conditions.index(condition) if condition else 0
        l = rule.conditions.index(rule.control)

        def statistic(z: np.ndarray) -> np.ndarray:
            codes = rule.codes(kernel.counts(z))
            return _mean_difference(y, (codes == k) & observed_units[:, None], (codes == l) & observed_units[:, None])

        draws = _treated(design.draw(n_draws, rng))
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
        raise InputError(f"null must be 'no-effect' or 'no-spillover', not {null!r}.")

    observed = float(statistic(observed_z[:, None])[0])
    if not np.isfinite(observed):
        raise InputError("the test statistic is undefined for the observed assignment (an empty group).")
    replicates = statistic(draws)
    replicates = replicates[np.isfinite(replicates)]
    p_value = (1 + np.sum(np.abs(replicates) >= abs(observed) - 1e-12)) / (1 + replicates.size)
    return RandomizationTest(null, label, observed, float(p_value), int(replicates.size))
