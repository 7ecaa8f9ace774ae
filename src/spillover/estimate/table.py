"""The analysis table (outcomes joined to exposure and clusters, bad input refused) and
the helpers every estimator shares: the conditions to contrast, an effect with its
interval, the sample-ratio checks."""

from __future__ import annotations

import warnings
from typing import Mapping as TypingMapping, Sequence

import numpy as np
import pandas as pd

from ..errors import (
    FEW_CLUSTERS,
    DataWarning,
    EmptyConditionWarning,
    FewClustersWarning,
    InputError,
    show_id,
)
from ..clustering import Clustering
from ..exposure import ExposureProbabilities, Mapping
from ..io import require_numbers, unique_rows
from ..health import Check, sample_ratio_mismatch
from ..variance import (
    t_interval,
)
from .results import Effect, estimand_of


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
    outcomes = unique_rows(outcomes, "unit_id", "outcomes table")
    exposure = unique_rows(exposure, "unit_id", "exposure table")
    unknown = pd.Index(outcomes["unit_id"]).difference(pd.Index(exposure["unit_id"]))
    if len(unknown):
        raise InputError(
            f"outcomes: {len(unknown)} unit id(s) have no exposure, e.g. {list(unknown[:5])}: "
            "outcomes must belong to units of the graph."
        )
    outcomes = require_numbers(outcomes, [outcome_col, *own], "outcomes table")
    clashing = [c for c in (outcome_col, *own) if c in exposure.columns and c != "unit_id"]
    table = exposure.drop(columns=clashing).merge(  # the outcomes table's column wins over the exposure table's
        outcomes[["unit_id", outcome_col, *own]].rename(columns={outcome_col: "y"}), on="unit_id", how="left")
    if "arm" in table and table["arm"].notna().any():
        table = table[table["arm"].isna() | (table["arm"] != -1)]  # out of the experiment
    if clusters is not None:
        series = cluster_series(clusters)
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


def cluster_series(clusters) -> pd.Series:
    """Clusters given as a ``unit_id, cluster_id`` table, a Series (by unit id) or a
    :class:`~spillover.clustering.Clustering`, as a Series by unit id; a unit in two
    clusters is an error, a repeated identical row is dropped with a warning.

    >>> cluster_series(pd.DataFrame({"unit_id": [1, 2, 2], "cluster_id": ["a", "b", "b"]})).to_dict()
    {1: 'a', 2: 'b'}
    """
    if isinstance(clusters, Clustering):
        clusters = clusters.to_frame()
    if isinstance(clusters, pd.Series):
        frame = pd.DataFrame({"unit_id": clusters.index, "cluster_id": clusters.to_numpy()})
    else:
        absent = [c for c in ("unit_id", "cluster_id") if c not in clusters.columns]
        if absent:
            raise InputError(f"clusters table: missing column(s) {absent}; it has {list(clusters.columns)}.")
        frame = clusters[["unit_id", "cluster_id"]]
    frame = unique_rows(frame, "unit_id", "clusters table")
    return pd.Series(frame["cluster_id"].to_numpy(), index=pd.Index(frame["unit_id"]), name="cluster_id")


def condition_categories(table: pd.DataFrame) -> list[str]:
    """Every condition of the exposure table's mapping (a categorical keeps the empty ones)."""
    column = table["condition"]
    if isinstance(column.dtype, pd.CategoricalDtype):
        return [str(c) for c in column.cat.categories]
    return sorted(map(str, column.unique()))


def no_control_error(control: str, counts: dict) -> InputError:
    """No unit is in the control condition: say which conditions the units are in and what to change."""
    seen = ", ".join(f"{k} {int(v):,}" for k, v in counts.items() if v) or "none"
    return InputError(f"no units in the control condition '{control}' (units per condition: {seen}): nothing to compare "
                      "with. The design treated too many (a smaller treated share), or the mapping's control is too "
                      "strict (a lower --threshold), or name another control condition (--control).")


def contrasted_conditions(table: pd.DataFrame, control: str) -> list[str]:
    """Conditions to contrast with ``control``; empty ones warn and are skipped."""
    categories = condition_categories(table)
    present = set(map(str, pd.unique(table["condition"])))  # distinct values, not a set over every row
    if control not in present:
        raise no_control_error(control, table["condition"].astype(str).value_counts().to_dict())
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


def make_effect(condition: str, control: str, mapping: Mapping | None, estimate: float, se: float, df: float,
            alpha: float, n_units: int, n_clusters: int | None, method: str) -> Effect:
    """An :class:`Effect` with its t(df) interval and p-value (normal for ``df = inf``)."""
    se, low, high, p = (float(v) for v in t_interval(estimate, se, df, alpha))
    return Effect(estimand_of(condition, control, mapping), condition, float(estimate), se, low, high, p,
                  int(n_units), n_clusters, method, float(df))


def vcov_label(vcov: str) -> str:
    """How a cluster-robust method prints its variance and reference distribution."""
    return f"{vcov}, t(BM df)" if vcov == "CR2" else f"{vcov}, t(G-1)"


def check_cluster_count(n_clusters: int, method: str, vcov: str) -> None:
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


def indicator_columns(table: pd.DataFrame, conditions: Sequence[str]) -> np.ndarray:
    """An intercept and one 0/1 column per condition (the regression of the contrasts)."""
    condition = table["condition"].astype(str).to_numpy()
    return np.column_stack([np.ones(len(table))] + [(condition == c).astype(float) for c in conditions])


def sample_ratio_checks(exposure: pd.DataFrame, table: pd.DataFrame,
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


def count_clusters(clusters: "pd.DataFrame | pd.Series") -> int:
    """The number of distinct clusters in a clusters table or Series."""
    series = clusters["cluster_id"] if isinstance(clusters, pd.DataFrame) else clusters
    return int(pd.Series(series).nunique())


def check_probabilities_match(table: pd.DataFrame, probabilities: ExposureProbabilities) -> None:
    """The exposure table's conditions must be the probabilities' conditions."""
    unknown = sorted(set(map(str, condition_categories(table))) - set(probabilities.conditions))
    if unknown:
        raise InputError(f"exposure conditions {unknown} are not the probabilities' conditions "
                         f"{list(probabilities.conditions)}: compute both with the same mapping.")


def too_small(table: pd.DataFrame, control: str, min_units: int, clustered: bool, notes: list[str]) -> pd.DataFrame:
    """``table`` without the conditions too small to estimate: fewer than ``min_units``
    units, or (``clustered``: a cluster-robust method) units in fewer than two clusters.
    Each dropped condition gets a note; a control condition too small is an error.

    >>> table = pd.DataFrame({"condition": ["a"] * 6 + ["b"] + ["c"] * 6, "cluster": range(13), "y": 0.0})
    >>> notes = []
    >>> sorted(too_small(table, "c", 5, True, notes)["condition"].unique()), notes[0][:40]
    (['a', 'c'], "no effect for 'b': 1 unit is in it (at l")
    """
    condition = table["condition"].astype(str)
    units = condition.value_counts()
    groups = table.groupby(condition, observed=True)["cluster"].nunique() if clustered and "cluster" in table else None
    small = {}
    for name, n in units.items():
        if n < min_units:
            small[name] = f"{n} unit{'s are' if n != 1 else ' is'} in it (at least {min_units} are needed)"
        elif groups is not None and groups[name] < 2:
            small[name] = f"its {n} units are all in one cluster (a cluster-robust error needs at least two clusters)"
    if control in small:
        raise InputError(f"the control condition '{control}' is too small to compare with: {small[control]}. Choose a "
                         "design that puts more units in it (a smaller treated share, larger clusters) or another "
                         "control (--control).")
    if not small:
        return table
    for name, why in small.items():
        notes.append(f"no effect for '{name}': {why}; an interval from so few would not mean what it says")
    keep = ~condition.isin(small).to_numpy()
    table = table[keep].reset_index(drop=True)
    if isinstance(table["condition"].dtype, pd.CategoricalDtype):
        table["condition"] = table["condition"].cat.remove_categories(
            [c for c in small if c in table["condition"].cat.categories])
    return table
