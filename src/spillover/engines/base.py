"""The engine interface: what every engine does and how one is chosen by name.

An engine runs the heavy steps where the data lives and gives what the memory engine
gives: ``exposure``, ``components``, ``hash_assign`` and ``cluster_stats`` (the
per-cluster sufficient statistics an estimate is computed from). It declares its name, the
options :func:`~spillover.engines.get_engine` may pass it, and the steps it runs; input
checks are the shared ones (:mod:`~spillover.engines.sql`), applied once per input.
"""

from __future__ import annotations

import abc
from typing import Any

__all__ = ["STEPS", "Engine"]

STEPS = ("exposure", "components", "hash_assign", "cluster_stats")  # what every engine runs


class Engine(abc.ABC):
    """An engine: :data:`name`, the :data:`options` it takes, the :data:`steps` it runs.

    Examples
    --------
    >>> from spillover.engines import MemoryEngine
    >>> engine = MemoryEngine()
    >>> isinstance(engine, Engine), engine.can("components"), engine.can("plan")
    (True, True, False)
    """

    name = "engine"
    options: tuple[str, ...] = ()  # the keyword options its constructor takes
    steps: tuple[str, ...] = STEPS

    def can(self, step: str) -> bool:
        """Whether this engine runs ``step``."""
        return step in self.steps

    @abc.abstractmethod
    def exposure(self, edges, assignment, mapping: str = "fraction", **kwargs: Any):
        """Each unit's neighbour counts, treated share and condition (one hop)."""

    @abc.abstractmethod
    def components(self, edges, **kwargs: Any):
        """Connected components: ``unit_id, cluster_id`` (labels numbered by smallest id)."""

    @abc.abstractmethod
    def hash_assign(self, units, *, salt: str, spec, key: str = "unit_id", **kwargs: Any):
        """The keyed-hash assignment of ``spec``, bit for bit the memory engine's."""

    @abc.abstractmethod
    def cluster_stats(self, outcomes, exposure_table, clusters, **kwargs: Any):
        """Per-(cluster, condition) ``n, sum_y, sum_y2``."""
