"""The everyday designs: units randomized one by one, whole clusters randomized
together, and a holdout of whole clusters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..clustering import Clustering
from ..errors import DesignError, InputError, show_id
from ..seeds import check_seed, seed_value
from .base import Assignment, Design, Randomization
from .hashing import HashSpec
from .randomize import arm_probabilities, complete_draws, exact_counts


@dataclass(frozen=True, eq=False)
class IndividualDesign(Design):
    """Each unit randomized on its own: complete randomization (exactly ``round(n p)``
    treated, the default) or independent Bernoulli(``p``) draws. With ``arm_weights``,
    more than two arms.

    Examples
    --------
    >>> design = IndividualDesign(range(10), treat_fraction=0.3)
    >>> int(design.assign(seed=4).arms.sum()), design.draw(5, seed=4).shape
    (3, (10, 5))
    """

    units: pd.Index
    treat_fraction: float = 0.5
    complete: bool = True
    arm_weights: Sequence[float] | None = None
    name: str = "individual"

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", pd.Index(self.units))
        if len(self.units) == 0:
            raise DesignError("individual design: no units to randomize.")
        if self.units.has_duplicates:
            dup = self.units[self.units.duplicated()][0]
            raise InputError(f"units: id {show_id(dup)} appears more than once; unit ids must be unique.")

    @property
    def weights(self) -> np.ndarray:
        """Probability of each arm."""
        return arm_probabilities(self.treat_fraction, self.arm_weights)

    def hash_spec(self) -> HashSpec:
        """The keyed hash's arms and slices for ``assign(salt=...)``."""
        return HashSpec.of(self.weights)

    def probabilities(self) -> np.ndarray:
        """``(n_units, n_arms)`` marginal probability of each arm (exact counts over ``n``
        under complete randomization)."""
        n = len(self.units)
        p = exact_counts(n, self.weights) / n if self.complete else self.weights
        return np.broadcast_to(p, (n, self.weights.size))

    def randomization(self) -> Randomization:
        """Units are their own blocks: complete (exact counts) or Bernoulli."""
        return self.randomization_of(np.arange(len(self.units)))

    def randomization_of(self, blocks: np.ndarray) -> Randomization:
        """This design's scheme, drawn over the units as blocks of ``blocks``'s nodes."""
        n = len(self.units)
        if self.complete:
            return Randomization(blocks, n, "complete", n_treated=int(n - exact_counts(n, self.weights)[0]))
        return Randomization(blocks, n, "bernoulli", p=float(1.0 - self.weights[0]))

    def draw(self, n_draws: int, seed=None) -> np.ndarray:
        """``(n_units, n_draws)`` matrix of arms, one column per independent draw of the design."""
        rng = check_seed(seed)
        n = len(self.units)
        if self.complete:
            return complete_draws(n, self.weights, n_draws, rng)
        uniform = rng.random((n, n_draws), dtype=np.float32)
        if self.weights.size == 2:
            return (uniform < np.float32(self.weights[1])).view(np.int8)
        cumulative = np.cumsum(self.weights)[:-1].astype(np.float32)
        return np.searchsorted(cumulative, uniform, side="right").astype(np.int8)

    def assign(self, seed=None, *, salt: str | None = None) -> Assignment:
        """One assignment: seeded (exact counts) or, with ``salt``, by keyed hash."""
        arms = self.hash_spec().assign(self.units, salt) if salt is not None else self.draw(1, seed)[:, 0]
        return Assignment(self.units, arms, self.name, seed_value(seed), salt, params=self.spec())

    def spec(self) -> dict[str, Any]:
        """The options: treated share, complete or Bernoulli, arm weights."""
        return {"treat_fraction": self.treat_fraction, "complete": self.complete, "arm_weights": self.arm_weights}


@dataclass(frozen=True, eq=False)
class ClusterDesign(Design):
    """Graph cluster randomization (Ugander et al. 2013): complete randomization of whole
    clusters (exact counts, the default) or independent Bernoulli draws per cluster
    (``complete=False``); every unit takes its cluster's arm.

    Examples
    --------
    >>> design = ClusterDesign(clusters=[0, 0, 1, 1, 2, 2, 3, 3], units=range(8))
    >>> assignment = design.assign(seed=1)
    >>> design.n_clusters, assignment.counts()
    (4, {0: 4, 1: 4})
    """

    clusters: np.ndarray
    units: pd.Index
    cluster_ids: pd.Index | None = None
    treat_fraction: float = 0.5
    arm_weights: Sequence[float] | None = None
    name: str = "cluster"
    complete: bool = True

    def __post_init__(self) -> None:
        clusters = np.asarray(self.clusters)
        if clusters.size != len(self.units):
            raise InputError(f"{clusters.size} cluster labels for {len(self.units)} units.")
        codes, ids = pd.factorize(clusters, sort=True) if self.cluster_ids is None else (clusters, self.cluster_ids)
        object.__setattr__(self, "clusters", np.asarray(codes, dtype=np.int64))
        object.__setattr__(self, "cluster_ids", pd.Index(ids))
        object.__setattr__(self, "units", pd.Index(self.units))
        if self.n_clusters < 2:
            raise DesignError(
                f"cluster design: {self.n_clusters} cluster(s); randomizing needs at least two. "
                "Use smaller clusters or an individual design."
            )

    @classmethod
    def from_clustering(cls, clustering: Clustering, **kwargs) -> "ClusterDesign":
        """A cluster design over the clusters that :func:`spillover.clustering.cluster` found."""
        return cls(clusters=clustering.labels, units=clustering.nodes, cluster_ids=pd.RangeIndex(clustering.n_clusters), **kwargs)

    @property
    def n_clusters(self) -> int:
        """Number of clusters."""
        return len(self.cluster_ids)

    @property
    def weights(self) -> np.ndarray:
        """Probability of each arm (for each cluster)."""
        return arm_probabilities(self.treat_fraction, self.arm_weights)

    def hash_spec(self) -> HashSpec:
        """The keyed hash's arms and slices for ``assign(salt=...)``."""
        return HashSpec.of(self.weights)

    def cluster_sizes(self) -> np.ndarray:
        """Number of units in each cluster."""
        return np.bincount(self.clusters, minlength=self.n_clusters)

    def probabilities(self) -> np.ndarray:
        """``(n_units, n_arms)`` marginal probability of each arm."""
        p = exact_counts(self.n_clusters, self.weights) / self.n_clusters if self.complete else self.weights
        return np.broadcast_to(p, (len(self.units), self.weights.size))

    def randomization(self) -> Randomization:
        """Clusters are the blocks: complete (exact counts) or Bernoulli."""
        return self._cluster_level().randomization_of(self.clusters)

    def _cluster_level(self) -> "IndividualDesign":
        return IndividualDesign(self.cluster_ids, self.treat_fraction, self.complete, self.arm_weights)

    def draw_clusters(self, n_draws: int, seed=None) -> np.ndarray:
        """``(n_clusters, n_draws)`` arms of the clusters; units take ``W[clusters]``."""
        return self._cluster_level().draw(n_draws, seed)

    def draw(self, n_draws: int, seed=None) -> np.ndarray:
        """``(n_units, n_draws)`` matrix of arms, one column per independent draw of the design. Units take their cluster's arm."""
        return self.draw_clusters(n_draws, seed)[self.clusters]

    def dependence_blocks(self) -> np.ndarray:
        """Units of one cluster share their arm."""
        return self.clusters

    def draw_blocks(self, n_draws: int, seed=None) -> np.ndarray:
        """The clusters' draws (units take their cluster's)."""
        return self.draw_clusters(n_draws, seed)

    def spec(self) -> dict[str, Any]:
        """The options: treated share, arm weights, complete or Bernoulli."""
        return {"treat_fraction": self.treat_fraction, "arm_weights": self.arm_weights, "complete": self.complete}

    def cluster_arms(self, seed=None, salt: str | None = None) -> np.ndarray:
        """One arm per cluster: seeded (exact counts) or, with ``salt``, by keyed hash."""
        if salt is not None:
            return self.hash_spec().assign(self.cluster_ids, salt)
        return self.draw_clusters(1, seed)[:, 0]

    def assign(self, seed=None, *, salt: str | None = None) -> Assignment:
        """One assignment: seeded (exact cluster counts) or by keyed hash of the cluster id."""
        arms = self.cluster_arms(seed, salt)[self.clusters]
        return Assignment(
            self.units, arms, self.name, seed_value(seed), salt, self.clusters, self.cluster_ids, self.spec())


def holdout_design(clusters: np.ndarray, units: pd.Index, holdout_fraction: float = 0.05, **kwargs) -> ClusterDesign:
    """A fixed share of whole markets/components held out from a launch.

    Arm ``0`` is the holdout (control), arm ``1`` gets the launch; whole clusters move
    together so the holdout is not contaminated by launched neighbours.

    Examples
    --------
    >>> holdout_design(clusters=list(range(20)), units=range(20), holdout_fraction=0.1).assign(seed=0).counts()
    {0: 2, 1: 18}
    """
    if not 0.0 < holdout_fraction < 1.0:
        raise DesignError(f"holdout_fraction={holdout_fraction} must be strictly between 0 and 1.")
    return ClusterDesign(clusters, units, treat_fraction=1.0 - holdout_fraction, name="holdout", **kwargs)
