"""The engine interface: what every engine does and how one is chosen by name.

An engine runs the heavy steps where the data lives and gives what the memory engine
gives: ``exposure``, ``components``, ``hash_assign`` and ``cluster_stats`` (the
per-cluster sufficient statistics an estimate is computed from). It declares its name, the
options :func:`~spillover.engines.get_engine` may pass it, and the steps it runs; input
checks are the shared ones (:mod:`~spillover.engines.sql`), applied once per input.
"""

from __future__ import annotations

import abc
import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["EVOLVE", "STEPS", "Engine", "literal_path"]

# what every engine runs; "snapshot" is the daily job's: a day's memberships read, checked and split into components
STEPS = ("exposure", "components", "hash_assign", "cluster_stats", "snapshot")
EVOLVE = "evolve"  # the daily job's diff against the ledger, where the ledger's tables are (else in memory)
_GLOB = set("*?[]{}")  # characters DuckDB's and Hadoop's readers expand as patterns


def literal_path(path: str | os.PathLike) -> Path:
    """``path`` as a name to read, never a pattern: one whose text has glob characters
    (``edges[1].csv``, ``e{a,b}.csv``) is given to the engine as a link, in a private
    folder removed at exit, with a plain name, so it reads that file and no other.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "edges[1].csv").write_text("source,target")
    >>> linked = literal_path(folder / "edges[1].csv")
    >>> "[" in linked.name, linked.read_text() == (folder / "edges[1].csv").read_text()
    (False, True)
    """
    path = Path(path)
    if not _GLOB & set(str(path)):
        return path
    folder = Path(tempfile.mkdtemp(prefix="spillover-input-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    link = folder / f"input{path.suffix.lower()}"
    link.symlink_to(path.resolve())
    return link


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

    def beside(self, ledger) -> "Engine":
        """The engine to run the daily job's steps beside ``ledger``: itself, unless it runs
        :data:`EVOLVE` where the ledger's tables are."""
        return self

    @abc.abstractmethod
    def snapshot(self, memberships, **kwargs: Any):
        """One day's memberships for the daily job (:class:`~spillover.evolve.Snapshot`)."""

    @abc.abstractmethod
    def treated_side_stats(self, outcomes, exposure_table, edges, blocks=None, **kwargs: Any):
        """Per-(treated-side block, condition) ``n, sum_y`` of the units linked to each block."""
