"""The memory engine: the library's own scipy/numpy stages behind the engine interface."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..clustering import cluster
from ..design import HashSpec
from ..estimate import analysis_table, sufficient_stats
from ..exposure import exposure
from ..graph import load_graph
from ..io import TableLike, read_table, require_columns
from .base import Engine
from .sql import SQL_MAPPINGS


def check_mapping(mapping: str, threshold_q: float | None, bipartite: bool = False) -> float | None:
    """The one-hop mappings every engine implements, with the threshold's default (the
    rules of :func:`~spillover.exposure.get_mapping`: a mapping reading a unit's own arm is
    refused on a bipartite graph, and the bipartite mapping's threshold is checked).

    Examples
    --------
    >>> check_mapping("threshold", None)
    0.75
    """
    from ..errors import InputError
    from ..exposure import get_mapping

    if mapping not in SQL_MAPPINGS:
        raise InputError(f"engines implement the mappings {', '.join(SQL_MAPPINGS)}, not {mapping!r}.")
    get_mapping(mapping, threshold_q=threshold_q, bipartite_graph=bipartite)
    return (0.75 if threshold_q is None else float(threshold_q)) if mapping == "threshold" else threshold_q


class MemoryEngine(Engine):
    """The library's own scipy/numpy stages behind the engine interface (the reference the
    other engines are tested against).

    Examples
    --------
    >>> import pandas as pd
    >>> edges = pd.DataFrame({"source": [1, 2, 4], "target": [2, 3, 5]})
    >>> MemoryEngine().components(edges)["cluster_id"].tolist()
    [0, 0, 0, 1, 1]
    """
    name = "memory"
    options = ()

    def exposure(self, edges: TableLike, assignment: TableLike, mapping: str = "fraction", *,
                 source: str = "source", target: str = "target", bipartite: bool = False,
                 threshold_q: float | None = None) -> pd.DataFrame:
        """Each unit's neighbour counts, treated share and condition (one hop), as the memory engine computes them."""
        threshold_q = check_mapping(mapping, threshold_q, bipartite)
        graph = load_graph(edges, source, target, bipartite=bipartite)
        table = exposure(graph, read_table(assignment, what="assignment"), mapping, threshold_q=threshold_q)
        return table.assign(condition=table["condition"].astype(str))

    def components(self, edges: TableLike, *, source: str = "source", target: str = "target") -> pd.DataFrame:
        """Connected components of the edge list: ``unit_id, cluster_id``, labels as the memory engine numbers them."""
        return cluster(load_graph(edges, source, target), "components").to_frame()

    def hash_assign(self, units: TableLike, *, salt: str, spec: HashSpec, key: str = "unit_id") -> pd.DataFrame:
        """The keyed-hash assignment of ``spec`` (a :class:`~spillover.design.HashSpec`) keyed by column ``key``: ``unit_id[, key], arm``."""
        frame = read_table(units, what="units")
        require_columns(frame, ["unit_id", key], "units")
        keys = pd.Index(frame[key].unique())
        per_key = pd.Series(spec.assign(keys, salt), index=keys)
        out = {"unit_id": frame["unit_id"].to_numpy()}
        if key != "unit_id":
            out[key] = frame[key].to_numpy()
        out["arm"] = per_key.reindex(frame[key]).to_numpy().astype(np.int64)
        return pd.DataFrame(out)

    def cluster_stats(self, outcomes: TableLike, exposure_table: TableLike, clusters: TableLike | None, *,
                      outcome_col: str = "y") -> pd.DataFrame:
        """Per-(cluster, condition) ``n, sum_y, sum_y2``: all :func:`~spillover.estimate.estimate_from_stats` needs."""
        table = analysis_table(read_table(outcomes, what="outcomes"), read_table(exposure_table, what="exposure"),
                                outcome_col, None if clusters is None else read_table(clusters, what="clusters"), "drop")
        return sufficient_stats(table if clusters is not None else table.assign(cluster=0))

    def snapshot(self, memberships: TableLike, *, user: str = "user_id", project: str = "project_id",
                 account: str = "account_id"):
        """One day's membership snapshot for the daily job (:class:`~spillover.evolve.Snapshot`),
        from the in-memory network."""
        from ..evolve import Snapshot
        from ..graph import CollaborationNetwork

        return Snapshot.of(CollaborationNetwork.from_memberships(memberships, user=user, project=project,
                                                                 account=account))

    def treated_side_stats(self, outcomes: TableLike, exposure_table: TableLike, edges: TableLike,
                           blocks: TableLike | None = None, *, source: str = "source", target: str = "target",
                           outcome_col: str = "y") -> pd.DataFrame:
        """Per-(treated-side block, condition) ``n, sum_y`` of the units linked to each block
        (``blocks``: the treated side's ``unit_id, cluster_id`` when its clusters were
        randomized): what the seller jackknife of ``ols-bipartite`` needs."""
        table = analysis_table(read_table(outcomes, what="outcomes"), read_table(exposure_table, what="exposure"),
                               outcome_col, None, "drop")
        graph = load_graph(edges, source, target, bipartite=True)
        rows, cols = graph.edge_index()
        links = pd.DataFrame({"unit_id": graph.units[rows], "cluster_id": graph.treated[cols]})
        if blocks is not None:
            frame = read_table(blocks, what="blocks")
            require_columns(frame, ["unit_id", "cluster_id"], "blocks")
            links["cluster_id"] = frame.drop_duplicates("unit_id").set_index("unit_id")["cluster_id"] \
                .reindex(links["cluster_id"]).to_numpy()
        links = links.drop_duplicates().merge(table[["unit_id", "condition", "y"]], on="unit_id")
        links["condition"] = links["condition"].astype(str)
        grouped = links.groupby(["cluster_id", "condition"], sort=True)["y"]
        return grouped.agg(n="count", sum_y="sum").reset_index()


__all__ = ["MemoryEngine"]
