"""Stratified cluster sampling and randomization: strata by cluster size and usage,
a sampled share of clusters per stratum, split into arms."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import DesignError, InputError
from ..seeds import check_seed, seed_value
from .base import Assignment, Design, Randomization
from .basic import ClusterDesign
from .hashing import HashSpec, sampled_arm_weights
from .randomize import arm_probabilities, exact_counts, extra_arm_draws, treated_count_distribution


def quantile_bins(values: np.ndarray, n_bins: int, edges: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bin index of each value by quantile edges (computed here unless given), and the
    edges; ties at an edge go to the lower bin, and repeated edges collapse."""
    values = np.asarray(values, dtype=float)
    if edges is None:
        edges = np.unique(np.quantile(values, np.linspace(0, 1, n_bins + 1)[1:-1]))
    return np.searchsorted(edges, values, side="left").astype(np.int64), np.asarray(edges)


def cluster_strata(
    clusters: np.ndarray,
    n_clusters: int,
    stratify: Mapping[str, np.ndarray | None] | None,
    *,
    n_bins: int = 4,
    edges: Mapping[str, Sequence[float]] | None = None,
) -> tuple[np.ndarray, dict[str, list[float]]]:
    """Stratum code of each cluster from unit-level variables summed per cluster
    (``"size"`` with no values counts units), each cut into quantile bins; the code
    crosses the bins. Pass the ``edges`` of an earlier day to place new clusters in the
    same strata."""
    stratify = dict(stratify or {"size": None})
    stratum = np.zeros(n_clusters, dtype=np.int64)
    found: dict[str, list[float]] = {}
    for name, values in stratify.items():  # a loop over stratification variables
        if values is None:
            if name != "size":
                raise InputError(f"stratification column '{name}' has no values.")
            per_cluster = np.bincount(clusters, minlength=n_clusters).astype(float)
        else:
            values = np.asarray(values, dtype=float)
            if np.isnan(values).any():
                raise InputError(f"stratification column '{name}' has missing values; fill or drop them.")
            per_cluster = np.bincount(clusters, weights=values, minlength=n_clusters)
        known = None if edges is None else np.asarray(edges[name], dtype=float)
        bins, bin_edges = quantile_bins(per_cluster, n_bins, known)
        found[name] = bin_edges.tolist()
        stratum = stratum * (len(bin_edges) + 1) + bins
    return stratum, found


@dataclass(frozen=True, eq=False)
class StratifiedClusterDesign(Design):
    """Stratified cluster sampling then randomization, as in collaboration networks.

    Strata are quantile bins (``n_bins`` per variable) of cluster-level variables, such as
    cluster size (number of units) and usage (summed over the cluster's units). From
    every stratum a ``sample_fraction`` of clusters is sampled (exactly, rounded), then
    split into arms by ``arm_weights`` (exactly, by largest remainder); e.g. a 5%
    treatment and a 5% control arm is ``sample_fraction=0.1`` split 50/50. Units of
    clusters not sampled get arm ``-1``.

    Examples
    --------
    >>> import numpy as np
    >>> clusters = np.repeat(np.arange(40), np.arange(40) % 5 + 1)     # 40 clusters of 1 to 5 units
    >>> design = StratifiedClusterDesign.from_units(clusters, range(clusters.size), {"size": None},
    ...                                             n_bins=2, sample_fraction=0.5)
    >>> assignment = design.assign(seed=3)
    >>> int((assignment.arms >= 0).sum()) > 0, sorted(assignment.counts())
    (True, [-1, 0, 1])
    """

    clusters: np.ndarray
    units: pd.Index
    strata: np.ndarray
    sample_fraction: float = 0.1
    arm_weights: Sequence[float] = (0.5, 0.5)
    cluster_ids: pd.Index | None = None
    stratum_edges: dict[str, list[float]] = field(default_factory=dict)
    name: str = "stratified-cluster"

    def __post_init__(self) -> None:
        if not 0.0 < self.sample_fraction <= 1.0:
            raise DesignError(f"sample_fraction={self.sample_fraction} must be in (0, 1].")
        base = ClusterDesign(self.clusters, self.units, self.cluster_ids, arm_weights=self.arm_weights)
        object.__setattr__(self, "clusters", base.clusters)
        object.__setattr__(self, "cluster_ids", base.cluster_ids)
        object.__setattr__(self, "units", base.units)
        strata = np.asarray(self.strata, dtype=np.int64)
        if strata.size != len(self.cluster_ids):
            raise InputError(f"{strata.size} strata for {len(self.cluster_ids)} clusters.")
        object.__setattr__(self, "strata", strata)
        weights = arm_probabilities(None, self.arm_weights)
        for stratum in np.unique(strata):  # a loop over strata
            n_s = int(np.sum(strata == stratum))
            sampled = int(round(self.sample_fraction * n_s))
            if (exact_counts(sampled, weights) == 0).any():
                raise DesignError(
                    f"stratum {stratum} has {n_s} cluster(s): sampling {self.sample_fraction:g} gives "
                    f"{sampled}, too few to split into {weights.size} arms {[round(float(w), 3) for w in weights]}. "
                    "Use fewer bins, a larger sample fraction, or merge small strata."
                )

    @classmethod
    def from_units(
        cls,
        clusters: np.ndarray,
        units: pd.Index,
        stratify: Mapping[str, np.ndarray] | None = None,
        *,
        n_bins: int = 4,
        sample_fraction: float = 0.1,
        arm_weights: Sequence[float] = (0.5, 0.5),
    ) -> "StratifiedClusterDesign":
        """Strata from unit-level variables summed per cluster (``"size"`` is the count of
        units), each cut into ``n_bins`` quantile bins; the strata are their crossings."""
        codes, cluster_ids = pd.factorize(np.asarray(clusters), sort=True)
        stratum, edges = cluster_strata(codes, len(cluster_ids), stratify, n_bins=n_bins)
        dense_strata, _ = pd.factorize(stratum, sort=True)
        return cls(codes, pd.Index(units), dense_strata, sample_fraction, tuple(arm_weights), cluster_ids, edges)

    @property
    def n_clusters(self) -> int:
        """Number of clusters."""
        return len(self.cluster_ids)

    @property
    def weights(self) -> np.ndarray:
        """Probability of each arm for a sampled cluster."""
        return arm_probabilities(None, self.arm_weights)

    def hash_spec(self) -> HashSpec:
        """Out with probability ``1 - sample_fraction``, else split by the arm weights."""
        return HashSpec.of(*sampled_arm_weights(self.sample_fraction, self.weights))

    def probabilities(self) -> np.ndarray:
        """``(n_units, n_arms)``: a cluster's chance of each arm is its stratum's count of
        that arm over the stratum's clusters."""
        probs = np.zeros((self.n_clusters, self.weights.size))
        for stratum in np.unique(self.strata):  # a loop over strata
            members = self.strata == stratum
            n_s = int(members.sum())
            probs[members] = round(self.sample_fraction * n_s) * self.weights / n_s
        return probs[self.clusters]

    def randomization(self) -> Randomization:
        """Clusters are the blocks, completely randomized within each stratum; the number
        treated in a stratum is fixed, or random when rounding leaves slots that
        :func:`extra_arm_draws` gives to arms in proportion to the fractional parts.

        Examples
        --------
        >>> design = StratifiedClusterDesign(np.arange(6), range(6), np.array([0, 0, 0, 1, 1, 1]),
        ...                                  sample_fraction=1.0)
        >>> design.randomization().treated_counts  # three clusters split 50/50: one or two treated
        ({1: 0.5, 2: 0.5}, {1: 0.5, 2: 0.5})
        """
        strata = np.unique(self.strata, return_inverse=True)[1].ravel()
        counts = []
        for stratum in range(int(strata.max()) + 1 if strata.size else 0):  # a loop over strata
            sampled = int(round(self.sample_fraction * int(np.sum(strata == stratum))))
            counts.append(treated_count_distribution(sampled, self.weights))
        return Randomization(self.clusters, self.n_clusters, "stratified", strata=strata, treated_counts=tuple(counts))

    def draw_clusters(self, n_draws: int, seed=None) -> np.ndarray:
        """``(n_clusters, n_draws)`` arms of the clusters, exact counts per stratum."""
        rng = check_seed(seed)
        out = np.empty((self.n_clusters, n_draws), dtype=np.int8)
        for stratum in np.unique(self.strata):  # a loop over strata; draws vectorised
            members = np.flatnonzero(self.strata == stratum)
            sampled = int(round(self.sample_fraction * members.size))
            out[members] = extra_arm_draws(sampled, self.weights, members.size - sampled, n_draws, rng)
        return out

    def draw(self, n_draws: int, seed=None) -> np.ndarray:
        """``(n_units, n_draws)`` matrix of arms, one column per independent draw of the design. Units take their cluster's arm."""
        return self.draw_clusters(n_draws, seed)[self.clusters]

    def dependence_blocks(self) -> np.ndarray:
        """Units of one cluster share their arm (strata make clusters of a stratum dependent too)."""
        return self.clusters

    def draw_blocks(self, n_draws: int, seed=None) -> np.ndarray:
        """The clusters' draws (units take their cluster's)."""
        return self.draw_clusters(n_draws, seed)

    def spec(self) -> dict[str, Any]:
        """The options: sampled share, arm weights, the strata's edges."""
        return {"sample_fraction": self.sample_fraction, "arm_weights": list(self.arm_weights),
                "stratum_edges": self.stratum_edges}

    def cluster_arms(self, seed=None, salt: str | None = None) -> np.ndarray:
        """Seeded: exact counts per stratum. Hashed: each cluster independently by its key,
        out with probability ``1 - sample_fraction`` (stable, not exact)."""
        if salt is not None:
            return self.hash_spec().assign(self.cluster_ids, salt)
        return self.draw_clusters(1, seed)[:, 0]

    def assign(self, seed=None, *, salt: str | None = None) -> Assignment:
        """One assignment: seeded (exact counts per stratum) or by keyed hash of the cluster id."""
        arms = self.cluster_arms(seed, salt)[self.clusters]
        return Assignment(
            self.units, arms, self.name, seed_value(seed), salt, self.clusters, self.cluster_ids, self.spec())
