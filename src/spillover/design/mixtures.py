"""Designs drawn in stages over time or over clusterings: randomized graph cluster
randomization (RGCR) and the staggered rollout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DesignError, InputError, show_id
from ..seeds import check_seed, seed_value
from .base import OUT, Assignment, Design, Randomization
from .basic import ClusterDesign
from .hashing import HASH_BITS, hash_uniform


@dataclass(frozen=True, eq=False)
class RandomizedClusterDesign(Design):
    """Randomized graph cluster randomization, RGCR (Ugander & Yin 2023): one of
    ``K`` random clusterings drawn at design time is chosen uniformly at random, then each
    of its clusters is treated independently with probability ``treat_fraction``.

    Mixing several clusterings is what makes the design work: a unit whose neighbourhood
    one clustering cuts into many clusters is whole in another, so the chance of being
    fully exposed, ``E[p^c]`` over clusterings (``c`` the number of clusters touching the
    unit's neighbourhood), is larger and more even than under any one clustering, and the
    Horvitz-Thompson variance falls as ``K`` (the mixing) grows. The design is the finite
    mixture: its exposure probabilities are exact (:func:`spillover.exposure.probabilities`
    averages each clustering's exact probabilities), and ``K`` large approximates the
    paper's fresh clustering per experiment.

    ``clusterings[k, i]`` is node ``i``'s cluster in clustering ``k`` (a centre node's
    index; :func:`spillover.clustering.random_clusterings`).

    Examples
    --------
    >>> from spillover import synth
    >>> graph = synth.social_graph(400, seed=1)
    >>> design = RandomizedClusterDesign.from_graph(graph, "1hop-max", n_clusterings=20, seed=2)
    >>> assignment = design.assign(seed=3)
    >>> design.n_clusterings, assignment.design, 0 <= assignment.params["clustering"] < 20
    (20, 'rgcr', True)
    """

    clusterings: np.ndarray
    units: pd.Index
    treat_fraction: float = 0.5
    method: str = "1hop-max"
    name: str = "rgcr"

    def __post_init__(self) -> None:
        labels = np.atleast_2d(np.asarray(self.clusterings))
        object.__setattr__(self, "units", pd.Index(self.units))
        if labels.shape[1] != len(self.units) or labels.shape[0] < 1:
            raise InputError(f"RGCR: clusterings of shape {labels.shape} for {len(self.units)} units; need "
                             "(K, n_units) with K >= 1.")
        if labels.min() < 0 or labels.max() >= labels.shape[1]:
            raise InputError("RGCR: cluster labels must be node indices 0..n_units-1 (the clusters' centres).")
        if not 0.0 < float(self.treat_fraction) < 1.0:
            raise DesignError(f"treat_fraction={self.treat_fraction} must be strictly between 0 and 1.")
        object.__setattr__(self, "clusterings", labels.astype(np.int32, copy=False))

    @classmethod
    def from_graph(cls, graph, method: str = "1hop-max", n_clusterings: int = 100, *, treat_fraction: float = 0.5,
                   weights: Any = "uniform", seed=None) -> "RandomizedClusterDesign":
        """``n_clusterings`` draws of ``method`` (``1hop-max`` or ``3net``, node ``weights``
        ``uniform``, ``degree`` or an array) on ``graph``, mixed."""
        from ..clustering import random_clusterings

        labels = random_clusterings(graph, method, n_clusterings, seed=seed, weights=weights)
        return cls(labels, graph.nodes, treat_fraction, method)

    @property
    def n_clusterings(self) -> int:
        """``K``, the number of clusterings mixed."""
        return int(self.clusterings.shape[0])

    def randomizations(self) -> list[Randomization]:
        """Each clustering's Bernoulli randomization of its clusters (blocks named by
        centre node), chosen with probability ``1 / K``: what exact probabilities average."""
        n = len(self.units)
        return [Randomization(labels, n, "bernoulli", p=float(self.treat_fraction)) for labels in self.clusterings]

    def cluster_designs(self) -> list[ClusterDesign]:
        """The mixture's components: a Bernoulli cluster design per clustering."""
        return [ClusterDesign(labels, self.units, treat_fraction=self.treat_fraction, complete=False)
                for labels in self.clusterings]

    def components(self) -> list[ClusterDesign]:
        """The mixture's components (:meth:`cluster_designs`)."""
        return self.cluster_designs()

    def spec(self) -> dict[str, Any]:
        """The options: the treated share, the clustering method, how many clusterings."""
        return {"treat_fraction": self.treat_fraction, "method": self.method, "n_clusterings": self.n_clusterings}

    def describe(self) -> str:
        """The mixture in words."""
        return f"mixture of {self.n_clusterings} {self.method} clusterings"

    def draw(self, n_draws: int, seed=None) -> np.ndarray:
        """``(n_units, n_draws)`` arms: per draw a clustering, then a coin per cluster."""
        rng = check_seed(seed)
        chosen = rng.integers(0, self.n_clusterings, size=n_draws)
        coins = (rng.random((len(self.units), n_draws)) < self.treat_fraction).astype(np.int8)
        return np.take_along_axis(coins, self.clusterings[chosen].T.astype(np.intp), axis=0)

    def assign(self, seed=None) -> Assignment:
        """One assignment; ``params["clustering"]`` says which clustering was drawn."""
        rng = check_seed(seed)
        k = int(rng.integers(0, self.n_clusterings))
        coins = (rng.random(len(self.units)) < self.treat_fraction).astype(np.int64)
        labels = self.clusterings[k]
        codes, ids = pd.factorize(labels, sort=True)
        return Assignment(self.units, coins[labels], self.name, seed_value(seed), None, codes.astype(np.int64),
                          pd.Index(self.units[ids]),
                          {"treat_fraction": self.treat_fraction, "method": self.method,
                           "n_clusterings": self.n_clusterings, "clustering": k})


@dataclass(frozen=True, eq=False)
class RolloutDesign(Design):
    """A staggered rollout: nested Bernoulli stages with treated shares ``p_1 < ... < p_T``
    (Yu, Airoldi, Borgs & Chayes 2022; Cortez-Rodriguez, Eichhorn & Yu 2022).

    Each unit draws one uniform ``u`` (seeded, or the keyed hash of ``salt``: stable as
    units come and go) and is treated from the first stage ``t`` with ``u < p_t`` on;
    stage 0 is the baseline with no one treated. At stage ``t`` the treated units are a
    Bernoulli(``p_t``) sample, and every stage's treated set holds the previous one's.
    Outcomes measured at each stage feed
    :func:`spillover.estimate.polynomial_interpolation`, which estimates the total
    treatment effect (everyone treated against no one) without knowing the network.

    **Two-stage rollout** (Cortez-Rodriguez, Eichhorn & Yu 2024): with ``clusters`` (one
    label per unit) and ``cluster_fraction`` ``q < 1``, each cluster is first sampled with
    probability ``q`` (seeded, or by keyed hash of the cluster label); the rollout runs
    inside the sampled clusters only, with the shares ``p_t`` among their units, and
    units of the other clusters are out (stage ``-1``, never treated). Sampling whole
    clusters keeps most of a sampled unit's neighbours in the rollout, so extrapolating to
    ``p = 1`` among them approaches everyone treated; what crosses to unsampled clusters
    is a bias toward zero (none when clusters cut no edge).

    Examples
    --------
    >>> design = RolloutDesign(list("abcdefgh"), (0.1, 0.25, 0.5))
    >>> stages = design.stages(seed=3)                  # each unit's stage of entry, 0: never
    >>> treated = [int(design.treated_at(stages, t).sum()) for t in range(4)]
    >>> treated[0], treated == sorted(treated)         # nobody at the baseline; nested stages
    (0, True)
    >>> two = RolloutDesign(list("abcdefgh"), (0.5,), clusters=[0, 0, 1, 1, 2, 2, 3, 3], cluster_fraction=0.5)
    >>> stages = two.stages(seed=1)                     # -1: the unit's cluster was not sampled
    >>> sorted(set(stages[:2].tolist())) != [-1] or bool((stages[:2] == -1).all())
    True
    """

    units: pd.Index
    fractions: tuple[float, ...]
    clusters: np.ndarray | None = None
    cluster_fraction: float = 1.0
    name: str = "rollout"

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", pd.Index(self.units))
        if not 0.0 < float(self.cluster_fraction) <= 1.0:
            raise DesignError(f"cluster_fraction={self.cluster_fraction} must be in (0, 1].")
        if self.clusters is not None:
            labels = np.asarray(self.clusters)
            if labels.shape != (len(self.units),):
                raise InputError(f"two-stage rollout: {labels.size} cluster labels for {len(self.units)} units.")
            if pd.isna(labels).any():
                raise InputError("two-stage rollout: a unit has no cluster label (NaN).")
            codes, ids = pd.factorize(labels, sort=True)
            if ids.size < 2:
                raise DesignError("two-stage rollout: one cluster; sampling clusters needs at least two.")
            object.__setattr__(self, "clusters", codes.astype(np.int64))
            object.__setattr__(self, "_cluster_ids", pd.Index(ids))
        elif self.cluster_fraction < 1.0:
            raise DesignError("cluster_fraction < 1 samples clusters: give the clusters too.")
        fractions = tuple(float(f) for f in self.fractions)
        if not fractions or any(not 0.0 < f <= 1.0 for f in fractions) or any(
                b <= a for a, b in zip(fractions, fractions[1:])):
            raise DesignError(f"rollout fractions {list(fractions)} must increase strictly within (0, 1], e.g. "
                              "0.05,0.1,0.2 (each stage treats a larger share, holding the earlier ones).")
        object.__setattr__(self, "fractions", fractions)
        if self.units.has_duplicates:
            raise InputError(f"rollout units: id {show_id(self.units[self.units.duplicated()][0])} appears twice.")

    @property
    def n_stages(self) -> int:
        """Number of treated stages ``T`` (stage 0, the baseline, not counted)."""
        return len(self.fractions)

    def stage_probabilities(self) -> np.ndarray:
        """``P(stage of entry = t)`` for ``t = 0`` (never) and ``1..T``."""
        p = np.concatenate([[0.0], self.fractions])
        return np.concatenate([[1.0 - p[-1]], np.diff(p)])

    def _stages_from_uniform(self, u: np.ndarray) -> np.ndarray:
        entered = np.searchsorted(np.asarray(self.fractions), u, side="right")  # stages whose share is <= u
        return np.where(entered < self.n_stages, entered + 1, 0).astype(np.int8)

    @property
    def two_stage(self) -> bool:
        """Whether clusters are sampled first."""
        return self.clusters is not None

    def _sampled(self, u_clusters: np.ndarray) -> np.ndarray:
        """Units whose cluster's uniform falls below ``cluster_fraction`` (broadcasts over draws)."""
        return u_clusters[self.clusters] < self.cluster_fraction

    def stages(self, seed=None, *, salt: str | None = None) -> np.ndarray:
        """Each unit's stage of entry (``1..T``; 0: not treated by the last stage; -1: its
        cluster not sampled), seeded or, with ``salt``, by keyed hash (the same salt gives
        the same stages anywhere; clusters hash their labels with ``salt + ':clusters'``)."""
        if salt is not None:
            u = hash_uniform(self.units, salt) / float(2**HASH_BITS)
        else:
            rng = check_seed(seed)
            u = rng.random(len(self.units))
        stages = self._stages_from_uniform(u)
        if self.two_stage:
            if salt is not None:
                u_clusters = hash_uniform(self._cluster_ids, salt + ":clusters") / float(2**HASH_BITS)
            else:
                u_clusters = rng.random(len(self._cluster_ids))
            stages = np.where(self._sampled(u_clusters), stages, OUT).astype(np.int8)
        return stages

    def draw(self, n_draws: int, seed=None) -> np.ndarray:
        """``(n_units, n_draws)`` stages of entry, one column per independent draw."""
        rng = check_seed(seed)
        stages = self._stages_from_uniform(rng.random((len(self.units), n_draws)))
        if self.two_stage:
            sampled = self._sampled(rng.random((len(self._cluster_ids), n_draws)))
            stages = np.where(sampled, stages, OUT).astype(np.int8)
        return stages

    @staticmethod
    def treated_at(stages: np.ndarray, stage: int) -> np.ndarray:
        """0/1 treatment of each unit at ``stage`` (0: the baseline, nobody)."""
        stages = np.asarray(stages)
        return ((stages >= 1) & (stages <= stage)).astype(np.int8)

    def assign(self, seed=None, *, salt: str | None = None) -> Assignment:
        """The rollout as an assignment: ``arms`` are the last stage's treatment and
        ``params["stage"]`` each unit's stage of entry."""
        stages = self.stages(seed, salt=salt)
        arms = np.where(stages == OUT, OUT, self.treated_at(stages, self.n_stages)).astype(np.int64)
        return Assignment(self.units, arms, self.name,
                          None if salt is not None else seed_value(seed), salt, None, None,
                          {"fractions": list(self.fractions), "stage": stages})
