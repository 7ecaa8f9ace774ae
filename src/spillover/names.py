"""Every name list the command line offers as choices, and the defaults it prints, in one
module that imports nothing: the parser reads them here without loading the library
(``spillover estimate --help`` starts in the time of Python itself).

Each list is owned here and imported by the module it names. Where a registry is built
at import (the estimators, the exposure mappings, the engines), that module checks its
registry against the list here and refuses to import when they disagree, so the two
cannot drift apart.

>>> "hajek" in ESTIMATE_METHODS and "louvain" in CLUSTER_METHODS
True
"""

from __future__ import annotations

from typing import Any

__all__ = ["CLUSTER_METHODS", "DEFAULT_VCOV", "DESIGN_NAMES", "DESIGN_OPTIONS", "ENGINES", "ESTIMATE_METHODS",
           "EVOLVE_DESIGNS", "FORMATS", "ID_TYPES", "LOCK_TIMEOUT", "MAPPING_NAMES", "MAX_DEPENDENT_PAIRS",
           "MERGE_POLICIES", "MIN_UNITS", "PROBABILITY_METHODS", "SIMULATED_DESIGNS", "VCOV_TYPES",
           "check_registry"]

#: clustering methods (``spillover.clustering``)
CLUSTER_METHODS = ("components", "louvain", "leiden", "ego", "3net", "1hop-max", "metis", "greedy-modularity")

#: the engines (``spillover.engines``), in the order they are listed
ENGINES = ("memory", "duckdb", "spark")

#: The designs ``assign``, ``evolve`` and experiment files build by name, and the options
#: each takes with its default: the one registry the command line's choices come from
#: (``spillover.design``).
DESIGN_OPTIONS: dict[str, dict[str, Any]] = {
    "individual": {"treat_fraction": 0.5, "arm_weights": None},
    "cluster": {"cluster_col": "cluster_id", "treat_fraction": 0.5, "arm_weights": None},
    "stratified-cluster": {"cluster_col": "cluster_id", "sample_fraction": 0.1, "arm_weights": (0.5, 0.5),
                           "strata_by": ("size",), "n_bins": 4},
    "holdout": {"cluster_col": "cluster_id", "holdout_fraction": 0.05},
}
DESIGN_NAMES = tuple(DESIGN_OPTIONS)
#: the designs that randomize whole clusters: components stay together as the graph changes (``spillover.evolve``)
EVOLVE_DESIGNS = tuple(name for name in DESIGN_NAMES if "cluster_col" in DESIGN_OPTIONS[name])
#: what a component merging units of several arms becomes (``spillover.evolve``)
MERGE_POLICIES = ("majority", "exclude")

#: the estimators' names, the --method choices besides auto (``spillover.estimate.ESTIMATORS``)
ESTIMATE_METHODS = ("difference-in-means", "cluster-means", "ols-cluster", "ols-network", "regression-adjustment",
                    "ht", "hajek", "wls", "ols-bipartite", "erl")
#: fewer units in (or able to reach) a condition and it gets no effect, interval or p-value
MIN_UNITS = 5
#: cluster-robust variance types (``spillover.variance``), and the default
VCOV_TYPES = ("CR0", "CR1", "CR2")
DEFAULT_VCOV = "CR2"

#: the built-in exposure mappings (``spillover.exposure.MAPPINGS``)
MAPPING_NAMES = ("fraction", "as4", "threshold", "bipartite")
#: how exposure probabilities are computed (``spillover.exposure``)
PROBABILITY_METHODS = ("auto", "exact", "monte-carlo")
# joint probabilities beyond this many pairs are refused: Hajek with as4's exact probabilities
# under a cluster design peaked at about 145 bytes a pair (3.4 GB for 24M pairs, graph
# included), so this keeps such a step under 8 GB
MAX_DEPENDENT_PAIRS = 50_000_000

#: how id columns are typed (``spillover.io``), and the edge list formats read
ID_TYPES = ("auto", "str", "int")
FORMATS = ("auto", "csv", "tsv", "snap", "parquet", "mtx", "graphml", "gml")

#: seconds a ledger writer waits for another writer's lock by default (``spillover.ledger``)
LOCK_TIMEOUT = 10.0

#: the designs a study compares on a collaboration network, each a design of
#: :data:`DESIGN_OPTIONS` over a randomization unit of the network (``spillover.simulate``)
SIMULATED_DESIGNS = {"project": ("cluster", "project"), "component": ("cluster", "component"),
                     "stratified-component": ("stratified-cluster", "component"), "individual": ("individual", "user")}


def check_registry(what: str, registry, names: tuple[str, ...]) -> None:
    """Refuse a registry built at import whose names are not the list here, in order.

    >>> check_registry("engines", {"memory": 1, "duckdb": 2, "spark": 3}, ENGINES)
    >>> check_registry("engines", {"memory": 1}, ENGINES)
    Traceback (most recent call last):
    ...
    RuntimeError: the engines registered are ('memory',), but spillover.names lists ('memory', 'duckdb', 'spark'): update one to match the other.
    """
    if tuple(registry) != tuple(names):
        raise RuntimeError(f"the {what} registered are {tuple(registry)}, but spillover.names lists {tuple(names)}: "
                           "update one to match the other.")
