"""spillover: design and analyse randomized experiments on networks, where SUTVA fails.

The pipeline reads as a chain: graph -> cluster -> design -> exposure -> estimate,
with ``simulate`` to compare designs before launch and ``report`` to show the results.
"""

from .clustering import Clustering, cluster, cut_fraction, modularity, sweep
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
from .graph import BipartiteGraph, CollaborationNetwork, SocialGraph, load_graph
from .io import read_table

__version__ = "0.1.0"


def _moved_module(old: str, new_module) -> None:
    """``spillover.<old>`` still imports, with a DeprecationWarning naming the new home
    (the module was renamed so that the function of the same name no longer hides it)."""
    import sys
    import types
    import warnings

    alias = types.ModuleType(f"{__name__}.{old}", f"Deprecated alias of {new_module.__name__}.")

    def forward(name: str):
        if name.startswith("__"):  # introspection (inspect, hypothesis) is not a use of the old name
            raise AttributeError(name)
        warnings.warn(f"spillover.{old} is now {new_module.__name__}; import from there (spillover.{old} is the "
                      "function).", DeprecationWarning, stacklevel=2)
        return getattr(new_module, name)

    alias.__getattr__ = forward
    sys.modules[alias.__name__] = alias


_moved_module("cluster", clustering)  # noqa: F821 (the submodule, bound by the import above)

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
