"""spillover: design and analyse randomized experiments on networks, where SUTVA fails.

The pipeline reads as a chain: graph -> cluster -> design -> exposure -> estimate,
with ``simulate`` to compare designs before launch and ``report`` to show the results.
"""

from .cluster import Clustering, cluster, cut_fraction, modularity, sweep
from .errors import (
    DataWarning,
    DesignError,
    EngineError,
    EmptyConditionWarning,
    FewClustersWarning,
    InputError,
    InterferenceWarning,
    LedgerError,
    PositivityWarning,
    SampleRatioWarning,
    SmallConditionWarning,
    SpilloverError,
    SpilloverWarning,
)
from .graph import BipartiteGraph, CollaborationNetwork, SocialGraph, load_graph, read_table

__version__ = "0.1.0"

__all__ = [
    "BipartiteGraph",
    "Clustering",
    "CollaborationNetwork",
    "DataWarning",
    "DesignError",
    "EngineError",
    "EmptyConditionWarning",
    "FewClustersWarning",
    "InputError",
    "InterferenceWarning",
    "LedgerError",
    "PositivityWarning",
    "SampleRatioWarning",
    "SmallConditionWarning",
    "SocialGraph",
    "SpilloverError",
    "SpilloverWarning",
    "cluster",
    "cut_fraction",
    "load_graph",
    "modularity",
    "read_table",
    "sweep",
]
