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

from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from ..design.record import DesignRecord
from ..errors import DesignError
from ..exposure import Mapping

__all__ = ["ESTIMATORS", "Analysis", "Estimator", "Verdict", "bipartite_only_verdicts", "recommend", "register", "validity", "validity_table"]

DESIGN_UNITS = ("unit", "cluster", "treated-side")
MAPPING_KINDS = ("own", "exposure")


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


@dataclass
class Analysis:
    """What an estimator's ``fit`` gets from :func:`~spillover.estimate.estimate`: the
    analysis ``table`` (outcomes joined to exposure, ``y``, ``condition`` and, for the
    cluster-robust methods, ``cluster``), the ``control`` condition (a fit may rename it:
    the global effect's is "no one treated"), the level, the mapping and its ``kind``, the
    inputs some estimators read (``outcomes``, ``exposure``, ``graph``,
    ``probabilities``, the design's ``randomization``, each unit's condition in fresh
    draws of the design: ``simulated_conditions``), the options, and ``notes``, to which
    a fit adds what the output should say.

    Examples
    --------
    >>> Analysis(pd.DataFrame({"y": [1.0], "condition": ["treated"]}), "control").alpha
    0.05
    """

    table: pd.DataFrame
    control: str
    alpha: float = 0.05
    mapping: Mapping | None = None
    kind: str = "own"
    outcomes: pd.DataFrame | None = None
    exposure: pd.DataFrame | None = None
    outcome_col: str = "y"
    missing: str = "drop"
    covariates: list[str] = field(default_factory=list)
    vcov: str = "CR2"
    bootstrap: int | None = None
    bootstrap_weights: str = "rademacher"
    seed: Any = None
    graph: Any = None
    bandwidth: int | str = "auto"
    probabilities: Any = None
    min_probability: float = 0.0
    min_units: int = 5
    notes: list[str] = field(default_factory=list)
    randomization: Any = None
    simulated_conditions: Any = None
    variance_bound: str = "auto"


@dataclass(frozen=True)
class Estimator:
    """One estimator's entry: its ``name`` (the ``--method``), what it estimates and with
    which variance (``summary``), its ``fit`` (an :class:`Analysis` in, a list of
    :class:`~spillover.estimate.Effect` out), the inputs it ``needs`` (``clusters``,
    ``probabilities``, ``graph``, ``randomization``), whether it adjusts for ``covariates``, whether it takes
    the wild cluster ``bootstrap``, how its contrasts are kept to those enough units
    support (``minimum``: ``observed`` units per condition, checked before the fit;
    ``design``: the fit weighs what the design lets units reach; ``none``), and its
    ``verdicts`` under each (design unit, mapping kind): valid unless said otherwise.

    Adding an estimator is one module that defines its fit and calls :func:`register`.

    Examples
    --------
    >>> ESTIMATORS["ols-cluster"].needs, ESTIMATORS["hajek"].minimum
    (('clusters',), 'design')
    """

    name: str
    summary: str
    fit: Callable[[Analysis], list] = field(repr=False)
    needs: tuple[str, ...] = ()
    covariates: bool = False
    bootstrap: bool = False
    minimum: str = "observed"
    verdicts: dict[tuple[str, str], Verdict] = field(default_factory=dict, repr=False)

    def verdict(self, design_unit: str, kind: str) -> Verdict:
        """This estimator's verdict under a design that randomized ``design_unit`` with a
        mapping of ``kind``."""
        return self.verdicts.get((design_unit, kind), Verdict("valid", self.summary))


#: every estimator by name, in the order they were registered (what --method lists)
ESTIMATORS: dict[str, Estimator] = {}


def register(entry: Estimator) -> Estimator:
    """Add ``entry`` to :data:`ESTIMATORS` (its module calls this once, at import).

    >>> register(ESTIMATORS["ht"]) is ESTIMATORS["ht"]
    True
    """
    ESTIMATORS[entry.name] = entry
    return entry


# why a method is refused, in the words the refusals print
CLUSTERED = ("whole clusters were randomized, so units of a cluster share their arm; the Neyman error treats them as "
             "independent and is too small (on a 40-block stochastic block model an A/A test rejected 61% of the time)")
UNEQUAL = ("a unit's chance of each exposure condition depends on its neighbours (a unit with more friends is less "
           "often in the control condition), so the plain difference in means compares unlike groups and its "
           "Neyman error ignores the neighbours they share")
SHARED_SIDE = ("units that share a treated-side node (buyers of one seller) share its arm, and a unit touches several "
               "of them: the Neyman error that treats units as independent is too small")
UNIT_BERNOULLI = "its variance assumes units randomized one by one"
SOCIAL_ONLY = "it is defined on social graphs, where units are the randomized nodes"
BIPARTITE_ONLY = "it is defined on bipartite graphs, where the measured units are not the randomized ones"


def bipartite_only_verdicts() -> dict[tuple[str, str], Verdict]:
    """The verdicts of an estimator defined only on bipartite graphs: refused on social
    graphs' designs, with the estimator to use there."""
    return {(unit, kind): Verdict("refused", BIPARTITE_ONLY, "ols-cluster" if unit == "cluster" else "ols-network")
            for unit in ("unit", "cluster") for kind in ("own", "exposure")}


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
    return ESTIMATORS[method].verdict(design_unit, kind)


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
