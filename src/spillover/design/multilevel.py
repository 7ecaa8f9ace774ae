"""Designs with more than one level of randomization: two-stage saturation, the
bipartite design (randomize one side, measure the other) and the mixed design of the
interference test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import DesignError
from ..graph import BipartiteGraph
from ..seeds import check_seed, seed_value
from .base import Assignment, Design, Randomization
from .basic import ClusterDesign, IndividualDesign
from .randomize import arm_probabilities, complete_draws, exact_counts


@dataclass(frozen=True, eq=False)
class SaturationDesign(Design):
    """Two-stage randomized saturation (Hudgens & Halloran 2008; Baird et al. 2018).

    Stage one gives each cluster a treated share drawn from ``saturations`` (complete
    randomization of clusters over the saturations, by ``saturation_weights``); stage two
    treats exactly ``round(share * size)`` units within each cluster at random. Varying
    saturation identifies spillover onto untreated units in treated clusters.

    Examples
    --------
    >>> design = SaturationDesign(clusters=[0] * 4 + [1] * 4 + [2] * 4, units=range(12))
    >>> assignment = design.assign(seed=2)
    >>> sorted(assignment.params["cluster_saturation"].tolist())
    [0.0, 0.5, 1.0]
    """

    clusters: np.ndarray
    units: pd.Index
    saturations: Sequence[float] = (0.0, 0.5, 1.0)
    saturation_weights: Sequence[float] | None = None
    cluster_ids: pd.Index | None = None
    name: str = "saturation"

    def __post_init__(self) -> None:
        base = ClusterDesign(self.clusters, self.units, self.cluster_ids)
        object.__setattr__(self, "clusters", base.clusters)
        object.__setattr__(self, "cluster_ids", base.cluster_ids)
        object.__setattr__(self, "units", base.units)
        sat = np.asarray(self.saturations, dtype=float)
        if sat.size < 2 or (sat < 0).any() or (sat > 1).any():
            raise DesignError(f"saturations={list(self.saturations)} must be two or more shares in [0, 1].")

    @property
    def n_clusters(self) -> int:
        """Number of clusters."""
        return len(self.cluster_ids)

    def draw_saturations(self, n_draws: int, rng: np.random.Generator) -> np.ndarray:
        """``(n_clusters, n_draws)`` index into ``saturations`` of each cluster."""
        weights = np.full(len(self.saturations), 1.0 / len(self.saturations)) if self.saturation_weights is None \
            else arm_probabilities(None, self.saturation_weights)
        return complete_draws(self.n_clusters, weights, n_draws, rng)

    def _draw(self, n_draws: int, seed) -> tuple[np.ndarray, np.ndarray]:
        rng = check_seed(seed)
        level = self.draw_saturations(n_draws, rng)
        share = np.asarray(self.saturations, dtype=float)[level]
        sizes = np.bincount(self.clusters, minlength=self.n_clusters)
        n_treated = np.rint(share * sizes[:, None]).astype(np.int64)
        # rank of each unit inside its cluster by a random key, all draws at once
        key = rng.random((len(self.units), n_draws)) + self.clusters[:, None]
        order = np.argsort(key, axis=0, kind="stable")
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(len(self.units))[:, None] - starts[np.sort(self.clusters)][:, None], axis=0)
        return (rank < n_treated[self.clusters]).astype(np.int8), level

    def draw(self, n_draws: int, seed=None) -> np.ndarray:
        """``(n_units, n_draws)`` matrix of arms, one column per independent draw of the design."""
        return self._draw(n_draws, seed)[0]

    def dependence_blocks(self) -> np.ndarray:
        """Units of one cluster share its saturation draw."""
        return self.clusters

    def spec(self) -> dict[str, Any]:
        """The options: the saturations and their weights."""
        return {"saturations": list(self.saturations), "saturation_weights": self.saturation_weights}

    def assign(self, seed=None) -> Assignment:
        """One seeded assignment; ``params['cluster_saturation']`` holds each cluster's share."""
        arms, level = self._draw(1, seed)
        return Assignment(
            self.units, arms[:, 0], self.name, seed_value(seed), None, self.clusters, self.cluster_ids,
            {"saturations": list(self.saturations),
             "cluster_saturation": np.asarray(self.saturations, dtype=float)[level[:, 0]]},
        )


@dataclass(frozen=True, eq=False)
class BipartiteDesign(Design):
    """Randomize the treated side (e.g. sellers) of a bipartite graph; outcomes are
    measured on the unit side (buyers) through their exposure. ``clusters`` (one label
    per treated-side node) randomizes groups of sellers together.

    Examples
    --------
    >>> from spillover import synth
    >>> market = synth.marketplace(200, 40, seed=1)
    >>> assignment = BipartiteDesign(market, treat_fraction=0.5).assign(seed=1)
    >>> assignment.n_units == market.n_treated_side, assignment.counts()
    (True, {0: 20, 1: 20})
    """

    graph: BipartiteGraph
    treat_fraction: float = 0.5
    clusters: np.ndarray | None = None
    name: str = "bipartite"

    @property
    def units(self) -> pd.Index:
        """The randomized (treated-side) nodes."""
        return self.graph.treated

    def _inner(self):
        if self.clusters is None:
            return IndividualDesign(self.graph.treated, self.treat_fraction, name=self.name)
        return ClusterDesign(self.clusters, self.graph.treated, treat_fraction=self.treat_fraction, name=self.name)

    def draw(self, n_draws: int, seed=None) -> np.ndarray:
        """``(n_units, n_draws)`` matrix of arms, one column per independent draw of the design."""
        return self._inner().draw(n_draws, seed)

    def probabilities(self) -> np.ndarray:
        """``(n_treated_side, n_arms)`` marginal probability of each arm."""
        return self._inner().probabilities()

    def randomization(self) -> Randomization:
        """Blocks and scheme of the treated side, for exact exposure probabilities."""
        return self._inner().randomization()

    def dependence_blocks(self) -> np.ndarray | None:
        """Treated-side nodes of one cluster share their arm (None: each on its own)."""
        return self._inner().dependence_blocks()

    def draw_blocks(self, n_draws: int, seed=None) -> np.ndarray | None:
        """The treated-side clusters' draws, when sellers are randomized in clusters."""
        return self._inner().draw_blocks(n_draws, seed)

    def spec(self) -> dict[str, Any]:
        """The options: the treated share, whether sellers are clustered."""
        return {"treat_fraction": self.treat_fraction, "clustered": self.clusters is not None}

    def assign(self, seed=None, *, salt: str | None = None) -> Assignment:
        """One assignment of the treated side: seeded, or by keyed hash with ``salt``."""
        return self._inner().assign(seed, salt=salt)


@dataclass(frozen=True, eq=False)
class MixedDesign(Design):
    """The interference-test design (Saveski et al. 2017; Pouget-Abadie et al. 2019):
    clusters are split at random into two branches; in the *cluster* branch (a share
    ``cluster_share`` of clusters) whole clusters are randomized, in the *unit* branch
    units are randomized one by one. Without interference both branches estimate the
    same average effect; :func:`spillover.estimate.interference_test` compares them.

    Each assignment's ``params["unit_branch"]`` holds every unit's branch (1: cluster
    branch, 0: unit branch), and ``to_frame`` a ``branch`` column.

    Examples
    --------
    >>> import numpy as np
    >>> design = MixedDesign(np.repeat(np.arange(20), 5), range(100))
    >>> assignment = design.assign(seed=1)
    >>> int(assignment.params["unit_branch"].sum()), assignment.counts()
    (50, {0: 50, 1: 50})
    """

    clusters: np.ndarray
    units: pd.Index
    treat_fraction: float = 0.5
    cluster_share: float = 0.5
    cluster_ids: pd.Index | None = None
    name: str = "mixed"

    def __post_init__(self) -> None:
        base = ClusterDesign(self.clusters, self.units, self.cluster_ids, treat_fraction=self.treat_fraction)
        object.__setattr__(self, "clusters", base.clusters)
        object.__setattr__(self, "cluster_ids", base.cluster_ids)
        object.__setattr__(self, "units", base.units)
        n_branch = int(round(self.cluster_share * base.n_clusters))
        if not 0.0 < self.cluster_share < 1.0 or min(n_branch, base.n_clusters - n_branch) < 2:
            raise DesignError(f"cluster_share={self.cluster_share} of {base.n_clusters} clusters: each branch needs at "
                              "least two clusters (the test compares them).")

    @property
    def n_clusters(self) -> int:
        """Number of clusters."""
        return len(self.cluster_ids)

    def _draw(self, n_draws: int, seed) -> tuple[np.ndarray, np.ndarray]:
        rng = check_seed(seed)
        share = np.array([1.0 - self.cluster_share, self.cluster_share])
        branch = complete_draws(self.n_clusters, share, n_draws, rng)[self.clusters]   # 1: cluster branch
        weights = arm_probabilities(self.treat_fraction, None)
        by_cluster = complete_draws(self.n_clusters, weights, n_draws, rng)[self.clusters]
        # the unit branch: exactly round(p m) of its m units treated in each draw, the first
        # by a random key (cluster-branch units sort last)
        in_branch = (branch == 0).sum(axis=0)
        n_treated = np.array([m - exact_counts(int(m), weights)[0] for m in in_branch])  # a handful of scalars
        key = np.where(branch == 0, rng.random(branch.shape), np.inf)
        rank = np.argsort(np.argsort(key, axis=0), axis=0)
        by_unit = (rank < n_treated[None, :]).astype(np.int8)
        return np.where(branch == 1, by_cluster, by_unit).astype(np.int8), branch

    def draw(self, n_draws: int, seed=None) -> np.ndarray:
        """``(n_units, n_draws)`` matrix of arms, one column per independent draw of the design."""
        return self._draw(n_draws, seed)[0]

    def dependence_blocks(self) -> np.ndarray:
        """Units of one cluster share their branch (and, in the cluster branch, their arm)."""
        return self.clusters

    def spec(self) -> dict[str, Any]:
        """The options: the treated share and the share of clusters in the cluster branch."""
        return {"treat_fraction": self.treat_fraction, "cluster_share": self.cluster_share}

    def assign(self, seed=None) -> Assignment:
        """One seeded assignment, with each unit's branch in ``params["unit_branch"]``."""
        arms, branch = self._draw(1, seed)
        return Assignment(self.units, arms[:, 0], self.name, seed_value(seed), None, self.clusters, self.cluster_ids,
                          {"treat_fraction": self.treat_fraction, "cluster_share": self.cluster_share,
                           "unit_branch": branch[:, 0]})

