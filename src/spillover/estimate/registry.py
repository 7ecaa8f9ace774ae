"""Which estimator is valid under which design: the one table that ``estimate()``, the
command line (its choices, help and ``--method auto``), ``simulate``, ``plan``, the daily
job and the docs read.

A design is described by what it randomized (:attr:`DesignRecord.unit
<spillover.design.record.DesignRecord.unit>`: each ``unit``, whole ``cluster`` s, or the
``treated-side`` of a bipartite graph) and a mapping by whether its conditions are a
unit's own arm (``own``: ``fraction``) or an exposure to neighbours' arms
(``exposure``: ``as4``, ``threshold``, ``bipartite``, your own). Each (estimator, design,
mapping) cell is ``recommended`` (what ``--method auto`` picks), ``valid`` or
``refused``, with the reason and what to use instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..design.record import DesignRecord
from ..errors import DesignError
from ..exposure import Mapping

__all__ = ["ESTIMATORS", "Estimator", "Verdict", "recommend", "validity", "validity_table"]

DESIGN_UNITS = ("unit", "cluster", "treated-side")
MAPPING_KINDS = ("own", "exposure")


@dataclass(frozen=True)
class Estimator:
    """One estimator's entry: its name, what it estimates and with which variance, what
    inputs it needs (``clusters``, ``probabilities``, ``graph``), whether it adjusts for
    covariates, and its verdict under each kind of design and mapping.

    Examples
    --------
    >>> ESTIMATORS["ols-cluster"].needs
    ('clusters',)
    """

    name: str
    summary: str
    needs: tuple[str, ...] = ()
    covariates: bool = False
    social_only: bool = False


@dataclass(frozen=True)
class Verdict:
    """``status`` (``recommended``, ``valid`` or ``refused``) of a method under a design
    and mapping, ``reason`` in a sentence, and ``instead`` (the estimator to use when
    refused).

    Examples
    --------
    >>> validity("difference-in-means", "cluster", "own").status
    'refused'
    """

    status: str
    reason: str
    instead: str | None = None

    @property
    def allowed(self) -> bool:
        """Whether the method may run (recommended or valid)."""
        return self.status != "refused"


ESTIMATORS: dict[str, Estimator] = {e.name: e for e in (
    Estimator("difference-in-means", "difference of the conditions' means, Neyman standard errors"),
    Estimator("cluster-means", "difference of the conditions' mean cluster means, cluster-robust errors",
              ("clusters",), covariates=True),
    Estimator("ols-cluster", "OLS on condition indicators, cluster-robust errors (CR2, Bell-McCaffrey df; the wild "
              "cluster bootstrap below 30 clusters)", ("clusters",), covariates=True),
    Estimator("ols-network", "OLS on condition indicators, network-HAC errors (neighbours within a bandwidth and "
              "units of one randomization cluster are dependent)", ("clusters", "graph"), covariates=True,
              social_only=True),
    Estimator("ht", "Horvitz-Thompson, the Aronow-Samii conservative variance", ("probabilities",)),
    Estimator("hajek", "Hajek (ratio) Horvitz-Thompson, the Aronow-Samii conservative variance", ("probabilities",)),
    Estimator("wls", "Gao & Ding's weighted least squares (Hajek with covariates), network-robust errors",
              ("probabilities",), covariates=True),
    Estimator("regression-adjustment", "the global effect (everyone treated against no one) by Chin's regression "
              "adjustment on the treated share of neighbours", ("graph",), social_only=True),
)}

_CLUSTERED = ("whole clusters were randomized, so units of a cluster share their arm; the Neyman error treats them as "
              "independent and is too small (on a 40-block stochastic block model an A/A test rejected 61% of the time)")
_UNEQUAL = ("a unit's chance of each exposure condition depends on its neighbours (a unit with more friends is less "
            "often in the control condition), so the plain difference in means compares unlike groups and its "
            "Neyman error ignores the neighbours they share")
_SHARED_SIDE = ("units that share a treated-side node (buyers of one seller) share its arm, and a unit touches several "
                "of them: the Neyman error that treats units as independent is too small")
_UNIT_BERNOULLI = "its variance assumes units randomized one by one"
_SOCIAL = "it is defined on social graphs, where units are the randomized nodes"

# (method, design unit, mapping kind) -> verdict; a missing cell is "valid"
_TABLE: dict[tuple[str, str, str], Verdict] = {
    ("difference-in-means", "unit", "own"): Verdict("recommended", "each unit was randomized on its own: the "
                                                    "difference in arm means with Neyman errors"),
    ("difference-in-means", "unit", "exposure"): Verdict("refused", _UNEQUAL, "hajek"),
    ("difference-in-means", "cluster", "own"): Verdict("refused", _CLUSTERED, "ols-cluster"),
    ("difference-in-means", "cluster", "exposure"): Verdict("refused", _CLUSTERED, "ols-cluster"),
    ("difference-in-means", "treated-side", "exposure"): Verdict("refused", _SHARED_SIDE, "hajek"),
    ("ols-cluster", "cluster", "own"): Verdict("recommended", "whole clusters were randomized: errors clustered by "
                                               "the randomization cluster (CR2; the wild bootstrap for few clusters)"),
    ("ols-cluster", "cluster", "exposure"): Verdict("recommended", "whole clusters were randomized: errors clustered "
                                                    "by the randomization cluster (CR2; the wild bootstrap for few "
                                                    "clusters)"),
    ("hajek", "unit", "exposure"): Verdict("recommended", "units were randomized one by one and exposure depends on "
                                           "neighbours: Hajek weights each unit by its exact chance of its "
                                           "condition under the design"),
    ("hajek", "treated-side", "exposure"): Verdict("recommended", "the other side was randomized: Hajek weights each "
                                                   "unit by its exact chance of its condition under the design"),
    ("regression-adjustment", "cluster", "own"): Verdict("refused", _UNIT_BERNOULLI, "ols-cluster"),
    ("regression-adjustment", "cluster", "exposure"): Verdict("refused", _UNIT_BERNOULLI, "ols-cluster"),
    ("regression-adjustment", "treated-side", "exposure"): Verdict("refused", _SOCIAL, "hajek"),
    ("ols-network", "treated-side", "exposure"): Verdict("refused", _SOCIAL, "hajek"),
}


def mapping_kind(mapping: Mapping | None, conditions=()) -> str:
    """``own`` when conditions are a unit's own arm (the ``fraction`` mapping), else ``exposure``.

    >>> from spillover.exposure import get_mapping
    >>> mapping_kind(get_mapping("fraction")), mapping_kind(get_mapping("as4"))
    ('own', 'exposure')
    """
    if mapping is not None:
        return "own" if mapping.name == "fraction" else "exposure"
    return "own" if set(map(str, conditions)) <= {"treated", "control"} else "exposure"


def validity(method: str, design_unit: str, kind: str) -> Verdict:
    """The verdict of ``method`` under a design that randomized ``design_unit`` with a
    mapping of ``kind`` (:func:`mapping_kind`).

    >>> validity("ols-cluster", "cluster", "exposure").status
    'recommended'
    >>> validity("difference-in-means", "cluster", "own").instead
    'ols-cluster'
    """
    if method not in ESTIMATORS:
        raise DesignError(f"unknown method {method!r}; choose one of {['auto', *ESTIMATORS]}.")
    if design_unit not in DESIGN_UNITS or kind not in MAPPING_KINDS:
        raise DesignError(f"no verdict for a design of {design_unit!r} with a {kind!r} mapping.")
    return _TABLE.get((method, design_unit, kind), Verdict("valid", ESTIMATORS[method].summary))


def recommend(design: DesignRecord, kind: str) -> tuple[str, str]:
    """The estimator ``--method auto`` picks for a design and mapping kind, and why.

    >>> from spillover.design.record import stated_record
    >>> recommend(stated_record("cluster"), "exposure")[0]
    'ols-cluster'
    """
    for method in ESTIMATORS:
        verdict = validity(method, design.unit, kind)
        if verdict.status == "recommended":
            return method, verdict.reason
    raise DesignError(f"no estimator is recommended for a {design.name} design with this mapping; name one (--method).")


def validity_table() -> pd.DataFrame:
    """Every (design, mapping, estimator) cell: status, what to use instead, and why, as the
    docs print it.

    >>> table = validity_table()
    >>> table.loc[(table["design"] == "cluster") & (table["estimator"] == "difference-in-means"), "status"].tolist()
    ['refused', 'refused']
    """
    rows = []
    for unit in DESIGN_UNITS:
        for kind in MAPPING_KINDS:
            if unit == "treated-side" and kind == "own":
                continue  # the measured side of a bipartite graph has no arm of its own
            for method in ESTIMATORS:
                verdict = validity(method, unit, kind)
                rows.append({"design": unit, "mapping": kind, "estimator": method, "status": verdict.status,
                             "instead": verdict.instead or "", "why": verdict.reason})
    return pd.DataFrame(rows)
