"""One switch, three engines for the heavy steps: ``memory`` (scipy/numpy, the default),
``duckdb`` (out-of-core on one machine: Parquet in, Parquet out, a memory limit, spilling
to disk) and ``spark`` (PySpark DataFrames where the data lives).

Every engine offers the same four steps, with results identical to the memory engine:

- ``exposure(edges, assignment, mapping)``: each unit's neighbour counts, treated share
  and condition (``fraction``, ``as4``, ``threshold``, ``bipartite``; one hop);
- ``components(edges)``: connected components (``unit_id, cluster_id``);
- ``hash_assign(units, salt, weights)``: the keyed-hash assignment, bit for bit;
- ``cluster_stats(outcomes, exposure, clusters)``: per-(cluster, condition) sufficient
  statistics from which :func:`spillover.estimate.estimate_from_stats` computes
  difference-in-means, cluster-means and CR1 estimates on a small table.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from .memory import MemoryEngine

ENGINES = ("memory", "duckdb", "spark")


def get_engine(name: str = "memory", **options: Any):
    """The engine called ``name``; options: ``memory_limit`` and ``temp_directory``
    (duckdb), ``spark`` (a SparkSession) or ``master`` (spark, default ``local[*]``).

    Examples
    --------
    >>> get_engine("duckdb", memory_limit="1GB").name
    'duckdb'
    """
    if name == "memory":
        return MemoryEngine()
    if name == "duckdb":
        from .duck import DuckDBEngine

        return DuckDBEngine(**{k: v for k, v in options.items() if k in ("memory_limit", "temp_directory", "threads")})
    if name == "spark":
        from .spark import SparkEngine

        return SparkEngine(**{k: v for k, v in options.items() if k in ("spark", "master")})
    raise InputError(f"unknown engine {name!r}; choose one of {list(ENGINES)}.")


__all__ = ["ENGINES", "get_engine", "MemoryEngine"]
