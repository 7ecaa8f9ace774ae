"""One switch, three engines for the heavy steps: ``memory`` (scipy/numpy, the default),
``duckdb`` (out-of-core on one machine: Parquet in, Parquet out, a memory limit, spilling
to disk) and ``spark`` (PySpark DataFrames where the data lives).

Every engine offers the same steps, with results identical to the memory engine:

- ``exposure(edges, assignment, mapping)``: each unit's neighbour counts, treated share
  and condition (``fraction``, ``as4``, ``threshold``, ``bipartite``; one hop);
- ``components(edges)``: connected components (``unit_id, cluster_id``);
- ``hash_assign(units, salt, weights)``: the keyed-hash assignment, bit for bit;
- ``cluster_stats(outcomes, exposure, clusters)``: per-(cluster, condition) sufficient
  statistics from which :func:`spillover.estimate.estimate_from_stats` computes
  difference-in-means, cluster-means and CR1 estimates on a small table;
- ``snapshot(memberships)``: the daily job's day, read, checked and split into components
  (:class:`spillover.evolve.Snapshot`). DuckDB also runs the day's diff against the ledger
  beside the ledger's tables (``evolve_day``).
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import InputError
from ..names import ENGINES, check_registry
from .base import STEPS, Engine
from .memory import MemoryEngine

#: every engine by name: its module and class (imported when chosen: DuckDB and Spark are heavy)
ENGINE_CLASSES = {"memory": ("spillover.engines.memory", "MemoryEngine"),
                  "duckdb": ("spillover.engines.duck", "DuckDBEngine"),
                  "spark": ("spillover.engines.spark", "SparkEngine")}
check_registry("engines", ENGINE_CLASSES, ENGINES)


def engine_class(name: str) -> type[Engine]:
    """The class of the engine called ``name``; an unknown name is an error listing them.

    >>> engine_class("duckdb").options
    ('memory_limit', 'temp_directory', 'threads')
    """
    if name not in ENGINE_CLASSES:
        raise InputError(f"unknown engine {name!r}; choose one of {list(ENGINES)}.")
    module, cls = ENGINE_CLASSES[name]
    return getattr(importlib.import_module(module), cls)


def get_engine(name: str = "memory", **options: Any) -> Engine:
    """The engine called ``name`` with its options; an option it does not take is an error
    naming the ones it does (``memory_limit``, ``temp_directory`` and ``threads`` for
    duckdb; ``spark`` (a SparkSession) or ``master`` for spark; none for memory).

    Examples
    --------
    >>> get_engine("duckdb", memory_limit="1GB").name
    'duckdb'
    >>> get_engine("duckdb", memory_limt="1GB")
    Traceback (most recent call last):
    ...
    spillover.errors.InputError: the duckdb engine does not take ['memory_limt']; its options are ['memory_limit', 'temp_directory', 'threads'].
    """
    cls = engine_class(name)
    unknown = sorted(set(options) - set(cls.options))
    if unknown:
        raise InputError(f"the {name} engine does not take {unknown}; its options are {list(cls.options) or 'none'}.")
    return cls(**options)


__all__ = ["ENGINES", "STEPS", "Engine", "MemoryEngine", "engine_class", "get_engine"]
