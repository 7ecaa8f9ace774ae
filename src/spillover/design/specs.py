"""Designs by name: the registry of designs and their options (what the command line,
the experiment file and the engines build from), and the design read back from an
assignment."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..errors import DesignError, InputError, show_id
from ..names import DESIGN_NAMES, DESIGN_OPTIONS
from .basic import ClusterDesign, IndividualDesign, holdout_design
from .hashing import HashSpec, sampled_arm_weights
from .randomize import arm_probabilities
from .record import design_from_record, stated_record
from .stratified import StratifiedClusterDesign


def design_from_assignment(
    kind: str,
    arms: pd.Series,
    *,
    clusters: pd.Series | None = None,
    complete: bool = True,
    treat_fraction: float | None = None,
) -> IndividualDesign | ClusterDesign:
    """The design that produced ``arms`` (randomized unit id -> arm), its parameters read
    from the data: the treated share, and the clusters (``clusters``: unit id -> cluster
    id) for ``kind="cluster"``: :func:`~spillover.design.record.design_from_record` of the
    design the user states.

    Under complete randomization the number of treated units (clusters) is the observed
    one; a stated ``treat_fraction`` that implies another count is an error. Under
    Bernoulli randomization a stated ``treat_fraction`` is used when the observed share
    is within four binomial standard errors of it (an error otherwise), else the
    observed share is used.

    >>> import pandas as pd
    >>> design = design_from_assignment("individual", pd.Series([1, 0, 0, 0, 1], index=list("abcde")))
    >>> design.randomization().n_treated
    2
    """
    if kind not in ("individual", "cluster"):
        raise DesignError(f"design {kind!r}: exposure probabilities from the data support 'individual' and "
                          "'cluster' designs; pass the design's draws otherwise.")
    return design_from_record(stated_record(kind, complete=complete, treat_fraction=treat_fraction), arms, clusters)




def check_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` with the design's defaults filled in; unknown designs, options the design
    does not use and out-of-range shares are errors that name the design's own options.

    >>> check_spec({"design": "holdout", "holdout_fraction": 0.1})
    {'design': 'holdout', 'cluster_col': 'cluster_id', 'holdout_fraction': 0.1}
    """
    name = spec.get("design")
    if name not in DESIGN_OPTIONS:
        raise DesignError(f"unknown design {name!r}; choose one of {list(DESIGN_NAMES)}.")
    options = DESIGN_OPTIONS[name]
    unused = [key for key in spec if key != "design" and key not in options]
    if unused:
        raise DesignError(f"the {name} design does not use {unused}; its options are {list(options)}.")
    full = {"design": name, **options, **{k: v for k, v in spec.items() if v is not None}}
    if "sample_fraction" in full and not 0.0 < full["sample_fraction"] <= 1.0:
        raise DesignError(f"sample_fraction={full['sample_fraction']} must be in (0, 1].")
    if "holdout_fraction" in full and not 0.0 < full["holdout_fraction"] < 1.0:
        raise DesignError(f"holdout_fraction={full['holdout_fraction']} must be strictly between 0 and 1.")
    if "treat_fraction" in full and not 0.0 < full["treat_fraction"] < 1.0:
        raise DesignError(f"treat_fraction={full['treat_fraction']} must be strictly between 0 and 1.")
    if "n_bins" in full and (isinstance(full["n_bins"], bool) or not isinstance(full["n_bins"], (int, np.integer))
                             or full["n_bins"] < 1):
        raise DesignError(f"n_bins={full['n_bins']!r} must be a whole number of at least 1 (quantile bins per "
                          "stratification variable).")
    return full


def hash_spec(spec: Mapping[str, Any]) -> HashSpec:
    """The keyed hash of the design ``spec`` names, without its units: what the engines,
    the ledger's new components and ``assign --salt`` use.

    >>> hash_spec({"design": "stratified-cluster", "sample_fraction": 0.2}).weights
    (0.8, 0.1, 0.1)
    """
    spec = check_spec(spec)
    if spec["design"] == "stratified-cluster":
        return HashSpec.of(*sampled_arm_weights(spec["sample_fraction"], arm_probabilities(None, spec["arm_weights"])))
    if spec["design"] == "holdout":
        return HashSpec.of(arm_probabilities(1.0 - spec["holdout_fraction"], None))
    return HashSpec.of(arm_probabilities(spec["treat_fraction"], spec["arm_weights"]))


def design_from_spec(spec: Mapping[str, Any], units: pd.DataFrame, *, what: str = "units table"):
    """The design ``spec`` names over the rows of ``units`` (``unit_id``, the cluster
    column, and any columns the strata are summed from): how the command line and the
    experiment file build designs.

    >>> import pandas as pd
    >>> units = pd.DataFrame({"unit_id": range(8), "cluster_id": [0, 0, 1, 1, 2, 2, 3, 3]})
    >>> design_from_spec({"design": "cluster"}, units).n_clusters
    4
    """
    from ..io import require_columns, require_no_nulls, unique_rows

    spec = check_spec(spec)
    require_columns(units, ["unit_id"], what)
    require_no_nulls(units, ["unit_id"], what)
    units = unique_rows(units, "unit_id", what)
    ids = pd.Index(units["unit_id"])
    if ids.has_duplicates:
        raise InputError(f"{what}: unit_id {show_id(ids[ids.duplicated()][0])} appears more than once; one row per unit.")
    name = spec["design"]
    if name == "individual":
        return IndividualDesign(ids, spec["treat_fraction"], arm_weights=spec["arm_weights"])
    column = spec["cluster_col"]
    if column not in units.columns:
        raise InputError(f"{what}: no cluster column '{column}' for the {name} design; it has {list(units.columns)}. "
                         "Run `spillover cluster` first or name the column (--cluster-col).")
    require_no_nulls(units, [column], what)
    clusters = units[column].to_numpy()
    if name == "cluster":
        return ClusterDesign(clusters, ids, treat_fraction=spec["treat_fraction"], arm_weights=spec["arm_weights"])
    if name == "holdout":
        return holdout_design(clusters, ids, spec["holdout_fraction"])
    strata = list(spec["strata_by"])
    require_columns(units, [c for c in strata if c != "size"], what)
    stratify = {c: None if c == "size" else units[c].to_numpy(dtype=float) for c in strata}
    return StratifiedClusterDesign.from_units(clusters, ids, stratify, n_bins=spec["n_bins"],
                                              sample_fraction=spec["sample_fraction"],
                                              arm_weights=spec["arm_weights"])
