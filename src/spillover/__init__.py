"""spillover: design and analyse randomized experiments on networks, where SUTVA fails.

The pipeline reads as a chain: graph -> cluster -> design -> exposure -> estimate,
with ``simulate`` to compare designs before launch and ``report`` to show the results.
"""

import os as _os

__version__ = "0.1.0"

# numpy asks the kernel to back every large array with huge pages. Where the kernel then
# compacts memory to find them on the spot (transparent huge pages with defrag "madvise",
# the default of many distributions), a fresh array of a few hundred MB can stall for a
# second: building a graph of 50M links took 4.8-6.0 s with the advice, 3.2-3.5 s without
# (docs/scale.md). Read by numpy when it is imported, so this holds where spillover is
# imported first (always, from the command line); a value already set is kept.
_os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

# the public names, by the module that defines them: imported when first used, so that
# `import spillover` (and `spillover --version`) costs nothing until a name is needed
_HOMES = {
    **dict.fromkeys(("Clustering", "cluster", "cut_fraction", "modularity", "sweep"), "clustering"),
    **dict.fromkeys(("DataWarning", "DesignError", "EngineError", "EmptyConditionWarning", "FewClustersWarning",
                     "InputError", "InterferenceWarning", "LedgerError", "PositivityWarning", "SampleRatioWarning",
                     "SmallConditionWarning", "SpilloverError", "SpilloverWarning"), "errors"),
    **dict.fromkeys(("BipartiteGraph", "CollaborationNetwork", "SocialGraph", "load_graph"), "graph"),
    "read_table": "io",
}


def __getattr__(name: str):
    import importlib

    if name in _HOMES:
        value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
        globals()[name] = value  # the function `cluster` now hides nothing: the module is `clustering`
        return value
    if name == "cluster":
        raise AttributeError(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _moved_module(old: str, new: str) -> None:
    """``spillover.<old>`` still imports, with a DeprecationWarning naming the new home
    (the module was renamed so that the function of the same name no longer hides it)."""
    import sys
    import types

    alias = types.ModuleType(f"{__name__}.{old}", f"Deprecated alias of {__name__}.{new}.")

    def forward(name: str):
        import importlib
        import warnings

        if name.startswith("__"):  # introspection (inspect, hypothesis) is not a use of the old name
            raise AttributeError(name)
        warnings.warn(f"spillover.{old} is now spillover.{new}; import from there (spillover.{old} is the "
                      "function).", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(f"{__name__}.{new}"), name)

    alias.__getattr__ = forward
    sys.modules[alias.__name__] = alias


_moved_module("cluster", "clustering")

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
