"""Designs: who gets which arm.

Each design is a small object with ``assign(seed) -> Assignment`` and ``draw(n_draws,
seed) -> (n_units, n_draws)`` matrix of arms, the kernel that exposure probabilities,
randomization tests and simulations are built on. Arms are ``0`` (control), ``1``
(treatment), ``2..`` for more arms, and ``-1`` (:data:`OUT`) for units not sampled into
the experiment.

Two kinds of randomness: a seeded permutation gives exact counts (analysis, simulation);
a keyed hash of ``(salt, cluster key)`` gives assignments that do not move when other
units appear or vanish (production, the ledger). The hash is ``md5(salt ':' key)``'s
first 60 bits, computed by DuckDB in memory and expressible in any SQL engine, so Spark
and DuckDB reproduce it bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .cluster import Clustering
from .errors import DesignError, InputError, show_id
from .graph import BipartiteGraph
from .seeds import check_seed, seed_value

__all__ = ["DESIGN_NAMES", "DESIGN_OPTIONS", "OUT", "Assignment", "BipartiteDesign", "ClusterDesign", "HashSpec",
           "IndividualDesign", "MixedDesign", "Randomization", "RandomizedClusterDesign", "RolloutDesign", "SaturationDesign",
           "StratifiedClusterDesign", "check_spec", "design_from_assignment", "design_from_spec", "hash_spec",
           "holdout_design"]

OUT = -1  # arm of a unit not sampled into the experiment
_HASH_BITS = 60


# --------------------------------------------------------------------------- assignment


@dataclass(frozen=True, eq=False)
class Assignment:
    """Arms of units: ``arms[i]`` for unit ``units[i]``, ``-1`` when not in the experiment.

    ``clusters[i]`` is the dense cluster index of unit ``i`` (``cluster_ids`` maps it back)
    for cluster designs, else ``None``. ``design``, ``seed``/``salt`` and ``params`` say
    how it was produced, so it can be reproduced.

    Examples
    --------
    >>> assignment = IndividualDesign(["a", "b", "c", "d"]).assign(seed=1)
    >>> assignment.counts(), assignment.to_frame().columns.tolist()
    ({0: 2, 1: 2}, ['unit_id', 'cluster_id', 'arm'])
    """

    units: pd.Index
    arms: np.ndarray
    design: str
    seed: int | None = None
    salt: str | None = None
    clusters: np.ndarray | None = None
    cluster_ids: pd.Index | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_units(self) -> int:
        """Number of units, in the experiment or not."""
        return int(self.arms.size)

    def in_experiment(self) -> np.ndarray:
        """Boolean mask of the units in the experiment (arm not ``-1``)."""
        return self.arms != OUT

    def counts(self) -> dict[int, int]:
        """Units per arm (``-1``: not in the experiment)."""
        values, counts = np.unique(self.arms, return_counts=True)  # a handful of arms
        return {int(v): int(c) for v, c in zip(values, counts)}

    def to_frame(self, include_out: bool = False) -> pd.DataFrame:
        """``unit_id, cluster_id, arm``; units not sampled are left out unless asked."""
        frame = pd.DataFrame({"unit_id": self.units})
        if self.clusters is not None:
            frame["cluster_id"] = self.cluster_ids[self.clusters] if self.cluster_ids is not None else self.clusters
        else:
            frame["cluster_id"] = pd.Series(self.units, dtype=object)
        frame["arm"] = self.arms.astype(np.int64)
        if "unit_branch" in self.params:  # the interference-test design: cluster (1) or unit (0) branch
            frame["branch"] = np.asarray(self.params["unit_branch"]).astype(np.int64)
        return frame if include_out else frame[self.arms != OUT].reset_index(drop=True)

    def arm_of(self, ids: Iterable[Any]) -> np.ndarray:
        """Arms of the given unit ids; unknown ids raise :class:`InputError`."""
        positions = self.units.get_indexer(pd.Index(ids))
        if (positions < 0).any():
            bad = pd.Index(ids)[positions < 0]
            raise InputError(f"assignment: {bad.size} unknown unit id(s), e.g. {list(bad[:5])}.")
        return self.arms[positions]

    def summary(self) -> dict[str, Any]:
        """How the assignment was made and how many units each arm has (the ``--json`` keys)."""
        counts = self.counts()
        return {
            "design": self.design,
            "seed": self.seed,
            "salt": self.salt,
            "n_units": self.n_units,
            "n_clusters": None if self.clusters is None else int(self.clusters.max()) + 1,
            "n_in_experiment": int(self.in_experiment().sum()),
            "arms": {str(k): v for k, v in counts.items()},
        }


@dataclass(frozen=True, eq=False)
class Randomization:
    """Which randomized nodes move together and how their blocks are drawn: what exact
    exposure probabilities need from a design.

    ``blocks[i]`` is the block (cluster; the node itself under individual designs) of
    randomized node ``i``. Under ``scheme="bernoulli"`` each block is treated
    independently with probability ``p``; under ``"complete"`` exactly ``n_treated`` of
    the ``n_blocks`` blocks are treated, every such set equally likely. Under
    ``"stratified"`` blocks are in ``strata`` (one label per block, ``0..S-1``) and each
    stratum is completely randomized on its own: ``treated_counts[s]`` maps each possible
    number of treated blocks of stratum ``s`` to its probability (one count, unless
    rounding leaves a slot that is drawn). "Treated" is any arm ``>= 1``.

    Examples
    --------
    >>> ClusterDesign([0, 0, 1, 1, 2, 2], list("abcdef"), treat_fraction=1 / 3).randomization().describe()
    'complete randomization of 1 of 3 blocks'
    """

    blocks: np.ndarray
    n_blocks: int
    scheme: str
    p: float | None = None
    n_treated: int | None = None
    strata: np.ndarray | None = None
    treated_counts: tuple[dict[int, float], ...] = ()

    def describe(self) -> str:
        """The scheme in words, as notes and method strings print it."""
        if self.scheme == "bernoulli":
            return f"Bernoulli({self.p:g}) over {self.n_blocks} blocks"
        if self.scheme == "stratified":
            return (f"complete randomization within each of {len(self.treated_counts)} strata of "
                    f"{self.n_blocks} blocks")
        return f"complete randomization of {self.n_treated} of {self.n_blocks} blocks"

    def strata_parts(self) -> list[tuple[np.ndarray, list[tuple[float, "Randomization"]]]]:
        """Each stratum's blocks and its scheme (``scheme="stratified"``) as a mixture of
        complete randomizations of those blocks (weight, randomization of ``n_treated`` of
        the stratum's ``n_blocks``)."""
        parts = []
        for stratum, counts in enumerate(self.treated_counts):
            members = np.flatnonzero(self.strata == stratum)
            parts.append((members, [(weight, Randomization(self.blocks, members.size, "complete", n_treated=k))
                                    for k, weight in counts.items()]))
        return parts


# --------------------------------------------------------------------------- primitives


def _weights(treat_fraction: float | None, arm_weights: Sequence[float] | None) -> np.ndarray:
    """Arm probabilities (summing to 1) from a treated share or explicit weights."""
    if arm_weights is None:
        p = 0.5 if treat_fraction is None else float(treat_fraction)
        if not 0.0 < p < 1.0:
            raise DesignError(f"treat_fraction={p} must be strictly between 0 and 1.")
        return np.array([1.0 - p, p])
    weights = np.asarray(arm_weights, dtype=float)
    if weights.ndim != 1 or weights.size < 2 or (weights <= 0).any() or not np.isfinite(weights).all():
        raise DesignError(f"arm_weights={list(arm_weights)} must be two or more positive numbers.")
    return weights / weights.sum()


def exact_counts(n: int, weights: np.ndarray) -> np.ndarray:
    """Units per arm: ``n * weights`` rounded by largest remainder (ties: the first arm),
    so counts sum to ``n``."""
    raw = n * np.asarray(weights, dtype=float)
    counts = np.floor(raw).astype(np.int64)
    short = n - int(counts.sum())
    if short:
        order = np.lexsort((np.arange(raw.size), -np.round(raw - counts, 12)))
        counts[order[:short]] += 1
    return counts


def _treated_count_distribution(n_total: int, weights: np.ndarray) -> dict[int, float]:
    """The number of treated (arm >= 1) units among ``n_total`` split by
    :func:`_extra_arm_draws`: the floors of the arms, plus the leftover slots' arms drawn
    without replacement in proportion to the fractional parts (every order enumerated:
    a handful of arms)."""
    import itertools

    raw = n_total * np.asarray(weights, dtype=float)
    floors = np.floor(raw).astype(np.int64)
    extra = n_total - int(floors.sum())
    fraction = np.maximum(raw - floors, 1e-300)
    base = int(floors[1:].sum())
    out: dict[int, float] = {}
    for order in itertools.permutations(range(weights.size), extra):
        left, prob = fraction.sum(), 1.0
        for arm in order:
            prob *= fraction[arm] / left
            left -= fraction[arm]
        k = base + sum(1 for arm in order if arm >= 1)
        out[k] = out.get(k, 0.0) + float(prob)
    return out


def _extra_arm_draws(
    n_total: int, weights: np.ndarray, n_out: int, n_draws: int, rng: np.random.Generator
) -> np.ndarray:
    """``(n_total + n_out, n_draws)`` draws with ``floor(n_total * w)`` units per arm and the
    few units left by rounding given, in each draw, to arms drawn in proportion to the
    fractional parts (Gumbel top-k). Each unit's chance of arm ``k`` is then
    ``n_total * w_k / (n_total + n_out)`` (exactly so with two arms), where fixed rounding
    would favour the first arm in every small stratum."""
    raw = n_total * weights
    floors = np.floor(raw).astype(np.int64)
    extra = n_total - int(floors.sum())
    marker = np.int8(127)
    base = np.concatenate([
        np.repeat(np.arange(weights.size, dtype=np.int8), floors),
        np.full(extra, marker, dtype=np.int8),
        np.full(n_out, OUT, dtype=np.int8),
    ])
    rows = rng.permuted(np.broadcast_to(base, (n_draws, base.size)), axis=1)  # one row per draw
    if extra:
        fraction = np.maximum(raw - floors, 1e-300)
        keys = np.log(fraction) - np.log(-np.log(rng.random((n_draws, weights.size))))
        chosen = np.argsort(-keys, axis=1)[:, :extra].astype(np.int8)
        rows[rows == marker] = chosen.ravel()  # row-major: each draw's slots in order
    return np.ascontiguousarray(rows.T)


def _permuted_draws(labels: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """``(len(labels), n_draws)`` matrix whose columns are independent permutations."""
    tiled = np.broadcast_to(labels.astype(np.int8), (n_draws, labels.size))
    return np.ascontiguousarray(rng.permuted(tiled, axis=1).T)


def _complete_draws(n: int, weights: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """Complete randomization: exactly ``exact_counts(n, weights)`` units in each arm."""
    base = np.repeat(np.arange(weights.size, dtype=np.int8), exact_counts(n, weights))
    return _permuted_draws(base, n_draws, rng)


def hash_uniform(keys: Iterable[Any] | pd.Index, salt: str) -> np.ndarray:
    """Keyed hash of each key as an integer in ``[0, 2**60)``.

    ``int(md5(f"{salt}:{key}").hexdigest()[:15], 16)``, computed by DuckDB (vectorised);
    depends on nothing but the salt and the key's text, so a unit's draw never moves
    when other units appear or vanish. Keys must be integers or strings.
    """
    import duckdb

    keys = pd.Index(keys)
    if keys.dtype.kind == "f":
        raise InputError("hash keys must be integers or strings, not floats (their text is ambiguous).")
    frame = pd.DataFrame({"k": keys.to_numpy()})
    if frame["k"].dtype == object:
        frame["k"] = frame["k"].astype(str)
    con = duckdb.connect()
    try:
        con.register("hash_keys", frame)
        result = con.execute(
            "SELECT ('0x' || substr(md5(? || ':' || CAST(k AS VARCHAR)), 1, 15))::UBIGINT AS h "
            "FROM hash_keys",
            [str(salt)],
        ).fetchnumpy()["h"]
    finally:
        con.close()
    return np.asarray(result, dtype=np.int64)


@dataclass(frozen=True)
class HashSpec:
    """The keyed hash's slices of ``[0, 2**60)``: arm ``arms[k]`` when a key's hash falls in
    the ``k``-th slice, of width ``weights[k]``.

    The one rule every hashed assignment follows: designs, the DuckDB and Spark engines,
    the ledger's new components and the command line all build a ``HashSpec`` and read
    its integer :attr:`thresholds`, so any engine that computes the same md5 gives the
    same arms, bit for bit.

    >>> spec = HashSpec.of([0.5, 0.5])
    >>> spec.thresholds
    [576460752303423488]
    >>> spec.assign(["a", "b", "c"], salt="demo").tolist() == spec.assign(["a", "b", "c"], "demo").tolist()
    True
    """

    weights: tuple[float, ...]
    arms: tuple[int, ...]

    @classmethod
    def of(cls, weights: Sequence[float], arms: Sequence[int] | None = None) -> "HashSpec":
        """Normalised ``weights`` and their arm labels (``0, 1, ...`` unless given)."""
        w = np.asarray(weights, dtype=float)
        w = w / w.sum()
        labels = range(w.size) if arms is None else arms
        return cls(tuple(float(v) for v in w), tuple(int(a) for a in labels))

    @property
    def thresholds(self) -> list[int]:
        """Exact integer upper bounds of every slice but the last."""
        return [int(c * 2**_HASH_BITS) for c in np.cumsum(self.weights)[:-1]]

    def assign(self, keys: Iterable[Any] | pd.Index, salt: str) -> np.ndarray:
        """The arm of each key (an int8 array)."""
        slot = np.searchsorted(np.array(self.thresholds, dtype=np.int64), hash_uniform(keys, salt), side="right")
        return np.asarray(self.arms, dtype=np.int8)[slot]


def sampled_arm_weights(sample_fraction: float, weights: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and arm labels when a ``sample_fraction`` enters the experiment and
    is split by ``weights``; the rest is :data:`OUT`."""
    weights = np.asarray(weights, dtype=float) / np.sum(weights)
    arms = np.arange(weights.size)
    if sample_fraction >= 1.0:
        return weights, arms
    return (
        np.concatenate([[1.0 - sample_fraction], sample_fraction * weights]),
        np.concatenate([[OUT], arms]),
    )


# --------------------------------------------------------------------------- designs


@dataclass(frozen=True, eq=False)
class IndividualDesign:
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
        return _weights(self.treat_fraction, self.arm_weights)

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
            return _complete_draws(n, self.weights, n_draws, rng)
        uniform = rng.random((n, n_draws), dtype=np.float32)
        if self.weights.size == 2:
            return (uniform < np.float32(self.weights[1])).view(np.int8)
        cumulative = np.cumsum(self.weights)[:-1].astype(np.float32)
        return np.searchsorted(cumulative, uniform, side="right").astype(np.int8)

    def assign(self, seed=None, *, salt: str | None = None) -> Assignment:
        """One assignment: seeded (exact counts) or, with ``salt``, by keyed hash."""
        arms = self.hash_spec().assign(self.units, salt) if salt else self.draw(1, seed)[:, 0]
        return Assignment(self.units, arms, self.name, seed_value(seed), salt, params=self._params())

    def _params(self) -> dict[str, Any]:
        return {"treat_fraction": self.treat_fraction, "complete": self.complete, "arm_weights": self.arm_weights}


@dataclass(frozen=True, eq=False)
class ClusterDesign:
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
        """A cluster design over the clusters that :func:`spillover.cluster.cluster` found."""
        return cls(clusters=clustering.labels, units=clustering.nodes, cluster_ids=pd.RangeIndex(clustering.n_clusters), **kwargs)

    @property
    def n_clusters(self) -> int:
        """Number of clusters."""
        return len(self.cluster_ids)

    @property
    def weights(self) -> np.ndarray:
        """Probability of each arm (for each cluster)."""
        return _weights(self.treat_fraction, self.arm_weights)

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

    def cluster_arms(self, seed=None, salt: str | None = None) -> np.ndarray:
        """One arm per cluster: seeded (exact counts) or, with ``salt``, by keyed hash."""
        if salt:
            return self.hash_spec().assign(self.cluster_ids, salt)
        return self.draw_clusters(1, seed)[:, 0]

    def assign(self, seed=None, *, salt: str | None = None) -> Assignment:
        """One assignment: seeded (exact cluster counts) or by keyed hash of the cluster id."""
        arms = self.cluster_arms(seed, salt)[self.clusters]
        return Assignment(
            self.units, arms, self.name, seed_value(seed), salt, self.clusters, self.cluster_ids,
            {"treat_fraction": self.treat_fraction, "arm_weights": self.arm_weights},
        )


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
class StratifiedClusterDesign:
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
        weights = _weights(None, self.arm_weights)
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
        return _weights(None, self.arm_weights)

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
        :func:`_extra_arm_draws` gives to arms in proportion to the fractional parts.

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
            counts.append(_treated_count_distribution(sampled, self.weights))
        return Randomization(self.clusters, self.n_clusters, "stratified", strata=strata, treated_counts=tuple(counts))

    def draw_clusters(self, n_draws: int, seed=None) -> np.ndarray:
        """``(n_clusters, n_draws)`` arms of the clusters, exact counts per stratum."""
        rng = check_seed(seed)
        out = np.empty((self.n_clusters, n_draws), dtype=np.int8)
        for stratum in np.unique(self.strata):  # a loop over strata; draws vectorised
            members = np.flatnonzero(self.strata == stratum)
            sampled = int(round(self.sample_fraction * members.size))
            out[members] = _extra_arm_draws(sampled, self.weights, members.size - sampled, n_draws, rng)
        return out

    def draw(self, n_draws: int, seed=None) -> np.ndarray:
        """``(n_units, n_draws)`` matrix of arms, one column per independent draw of the design. Units take their cluster's arm."""
        return self.draw_clusters(n_draws, seed)[self.clusters]

    def cluster_arms(self, seed=None, salt: str | None = None) -> np.ndarray:
        """Seeded: exact counts per stratum. Hashed: each cluster independently by its key,
        out with probability ``1 - sample_fraction`` (stable, not exact)."""
        if salt:
            return self.hash_spec().assign(self.cluster_ids, salt)
        return self.draw_clusters(1, seed)[:, 0]

    def assign(self, seed=None, *, salt: str | None = None) -> Assignment:
        """One assignment: seeded (exact counts per stratum) or by keyed hash of the cluster id."""
        arms = self.cluster_arms(seed, salt)[self.clusters]
        return Assignment(
            self.units, arms, self.name, seed_value(seed), salt, self.clusters, self.cluster_ids,
            {"sample_fraction": self.sample_fraction, "arm_weights": list(self.arm_weights),
             "stratum_edges": self.stratum_edges},
        )


@dataclass(frozen=True, eq=False)
class SaturationDesign:
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
            else _weights(None, self.saturation_weights)
        return _complete_draws(self.n_clusters, weights, n_draws, rng)

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

    def assign(self, seed=None) -> Assignment:
        """One seeded assignment; ``params['cluster_saturation']`` holds each cluster's share."""
        arms, level = self._draw(1, seed)
        return Assignment(
            self.units, arms[:, 0], self.name, seed_value(seed), None, self.clusters, self.cluster_ids,
            {"saturations": list(self.saturations),
             "cluster_saturation": np.asarray(self.saturations, dtype=float)[level[:, 0]]},
        )


@dataclass(frozen=True, eq=False)
class BipartiteDesign:
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

    def assign(self, seed=None, *, salt: str | None = None) -> Assignment:
        """One assignment of the treated side: seeded, or by keyed hash with ``salt``."""
        return self._inner().assign(seed, salt=salt)


@dataclass(frozen=True, eq=False)
class MixedDesign:
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
        branch = _complete_draws(self.n_clusters, share, n_draws, rng)[self.clusters]   # 1: cluster branch
        weights = _weights(self.treat_fraction, None)
        by_cluster = _complete_draws(self.n_clusters, weights, n_draws, rng)[self.clusters]
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

    def assign(self, seed=None) -> Assignment:
        """One seeded assignment, with each unit's branch in ``params["unit_branch"]``."""
        arms, branch = self._draw(1, seed)
        return Assignment(self.units, arms[:, 0], self.name, seed_value(seed), None, self.clusters, self.cluster_ids,
                          {"treat_fraction": self.treat_fraction, "cluster_share": self.cluster_share,
                           "unit_branch": branch[:, 0]})


Design = IndividualDesign | ClusterDesign | StratifiedClusterDesign | SaturationDesign | BipartiteDesign | MixedDesign


@dataclass(frozen=True, eq=False)
class RandomizedClusterDesign:
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
    index; :func:`spillover.cluster.random_clusterings`).

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
        from .cluster import random_clusterings

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
class RolloutDesign:
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
        if salt:
            u = hash_uniform(self.units, salt) / float(2**_HASH_BITS)
        else:
            rng = check_seed(seed)
            u = rng.random(len(self.units))
        stages = self._stages_from_uniform(u)
        if self.two_stage:
            if salt:
                u_clusters = hash_uniform(self._cluster_ids, salt + ":clusters") / float(2**_HASH_BITS)
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
        return Assignment(self.units, arms, "rollout",
                          None if salt else seed_value(seed), salt, None, None,
                          {"fractions": list(self.fractions), "stage": stages})


def design_from_assignment(
    kind: str,
    arms: pd.Series,
    *,
    clusters: pd.Series | None = None,
    complete: bool = True,
    treat_fraction: float | None = None,
) -> IndividualDesign | ClusterDesign:
    """The design that produced ``arms`` (randomized unit id -> arm), its parameters read
    from the data: the treated share, and the clusters (``clusters``: unit id -> cluster
    id) for ``kind="cluster"``.

    Under complete randomization the number of treated units (clusters) is the observed
    one; a stated ``treat_fraction`` that implies another count is an error. Under
    Bernoulli randomization a stated ``treat_fraction`` is used when the observed share
    is within four binomial standard errors of it (an error otherwise), else the
    observed share is used.

    >>> import pandas as pd
    >>> design = design_from_assignment("individual", pd.Series([1, 0, 0, 0, 1], index=list("abcde")))
    >>> design.randomization().n_treated
    2
    """
    if kind not in ("individual", "cluster"):
        raise DesignError(f"design {kind!r}: exposure probabilities from the data support 'individual' and "
                          "'cluster' designs; pass the design's draws otherwise.")
    arms = pd.Series(arms)
    if arms.isna().any() or (arms.to_numpy() == OUT).any():
        n_out = int(arms.isna().sum() + (arms.to_numpy() == OUT).sum())
        raise DesignError(f"{n_out} randomized unit(s) have no arm (or arm -1, out of the experiment): a design "
                          "read from the data needs every randomized unit's arm; pass the design's draws instead.")
    treated = (arms.to_numpy() >= 1).astype(np.int8)
    units = pd.Index(arms.index)
    labels = None
    if kind == "cluster":
        if clusters is None:
            raise InputError("a cluster design needs the clusters (unit_id, cluster_id) of the randomized units.")
        labels = pd.Series(clusters).reindex(units)
        if labels.isna().any():
            raise InputError(f"clusters: {int(labels.isna().sum())} randomized unit(s) have no cluster, "
                             f"e.g. {show_id(labels.index[labels.isna()][0])}.")
        codes, _ = pd.factorize(labels.to_numpy(), sort=True)
        per_cluster = np.bincount(codes, weights=treated) / np.bincount(codes)
        mixed = (per_cluster > 0) & (per_cluster < 1)
        if mixed.any():
            raise DesignError(f"{int(mixed.sum())} cluster(s) have treated and untreated units: the assignment "
                              "was not randomized by these clusters.")
        treated = (per_cluster > 0).astype(np.int8)
    n, k = treated.size, int(treated.sum())
    if k == 0 or k == n:
        raise DesignError(f"{k} of {n} {'clusters' if kind == 'cluster' else 'units'} treated: an experiment needs "
                          "both arms.")
    share = k / n
    if treat_fraction is not None:
        if not 0.0 < treat_fraction < 1.0:
            raise DesignError(f"treat_fraction={treat_fraction} must be strictly between 0 and 1.")
        if complete:
            expected = int(n - exact_counts(n, np.array([1 - treat_fraction, treat_fraction]))[0])
            if expected != k:
                raise DesignError(f"the stated treated share {treat_fraction:g} means {expected} of {n} treated "
                                  f"under complete randomization, but the assignment treats {k} ({share:.4g}); "
                                  "leave the share out to read it from the data.")
        elif abs(share - treat_fraction) > 4 * np.sqrt(treat_fraction * (1 - treat_fraction) / n):
            raise DesignError(f"the stated treated share {treat_fraction:g} disagrees with the assignment's "
                              f"{share:.4g} ({k} of {n}) beyond Bernoulli sampling error.")
        else:
            share = treat_fraction
    if kind == "individual":
        return IndividualDesign(units, share, complete)
    return ClusterDesign(labels.to_numpy(), units, treat_fraction=share, complete=complete)


# --------------------------------------------------------------------------- specs

#: The designs ``assign``, ``evolve`` and experiment files build by name, and the options
#: each takes with its default: the one registry the command line's choices come from.
DESIGN_OPTIONS: dict[str, dict[str, Any]] = {
    "individual": {"treat_fraction": 0.5, "arm_weights": None},
    "cluster": {"cluster_col": "cluster_id", "treat_fraction": 0.5, "arm_weights": None},
    "stratified-cluster": {"cluster_col": "cluster_id", "sample_fraction": 0.1, "arm_weights": (0.5, 0.5),
                           "strata_by": ("size",), "n_bins": 4},
    "holdout": {"cluster_col": "cluster_id", "holdout_fraction": 0.05},
}
DESIGN_NAMES = tuple(DESIGN_OPTIONS)


def check_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` with the design's defaults filled in; unknown designs, options the design
    does not use and out-of-range shares are errors that name the design's own options.

    >>> check_spec({"design": "holdout", "holdout_fraction": 0.1})
    {'design': 'holdout', 'cluster_col': 'cluster_id', 'holdout_fraction': 0.1}
    """
    name = spec.get("design")
    if name not in DESIGN_OPTIONS:
        raise DesignError(f"unknown design {name!r}; choose one of {list(DESIGN_NAMES)}.")
    options = DESIGN_OPTIONS[name]
    unused = [key for key in spec if key != "design" and key not in options]
    if unused:
        raise DesignError(f"the {name} design does not use {unused}; its options are {list(options)}.")
    full = {"design": name, **options, **{k: v for k, v in spec.items() if v is not None}}
    if "sample_fraction" in full and not 0.0 < full["sample_fraction"] <= 1.0:
        raise DesignError(f"sample_fraction={full['sample_fraction']} must be in (0, 1].")
    if "holdout_fraction" in full and not 0.0 < full["holdout_fraction"] < 1.0:
        raise DesignError(f"holdout_fraction={full['holdout_fraction']} must be strictly between 0 and 1.")
    return full


def hash_spec(spec: Mapping[str, Any]) -> HashSpec:
    """The keyed hash of the design ``spec`` names, without its units: what the engines,
    the ledger's new components and ``assign --salt`` use.

    >>> hash_spec({"design": "stratified-cluster", "sample_fraction": 0.2}).weights
    (0.8, 0.1, 0.1)
    """
    spec = check_spec(spec)
    if spec["design"] == "stratified-cluster":
        return HashSpec.of(*sampled_arm_weights(spec["sample_fraction"], _weights(None, spec["arm_weights"])))
    if spec["design"] == "holdout":
        return HashSpec.of(_weights(1.0 - spec["holdout_fraction"], None))
    return HashSpec.of(_weights(spec["treat_fraction"], spec["arm_weights"]))


def design_from_spec(spec: Mapping[str, Any], units: pd.DataFrame, *, what: str = "units table"):
    """The design ``spec`` names over the rows of ``units`` (``unit_id``, the cluster
    column, and any columns the strata are summed from): how the command line and the
    experiment file build designs.

    >>> import pandas as pd
    >>> units = pd.DataFrame({"unit_id": range(8), "cluster_id": [0, 0, 1, 1, 2, 2, 3, 3]})
    >>> design_from_spec({"design": "cluster"}, units).n_clusters
    4
    """
    from .graph import require_columns, require_no_nulls

    spec = check_spec(spec)
    require_columns(units, ["unit_id"], what)
    require_no_nulls(units, ["unit_id"], what)
    ids = pd.Index(units["unit_id"])
    if ids.has_duplicates:
        raise InputError(f"{what}: unit_id {show_id(ids[ids.duplicated()][0])} appears more than once; one row per unit.")
    name = spec["design"]
    if name == "individual":
        return IndividualDesign(ids, spec["treat_fraction"], arm_weights=spec["arm_weights"])
    column = spec["cluster_col"]
    if column not in units.columns:
        raise InputError(f"{what}: no cluster column '{column}' for the {name} design; it has {list(units.columns)}. "
                         "Run `spillover cluster` first or name the column (--cluster-col).")
    require_no_nulls(units, [column], what)
    clusters = units[column].to_numpy()
    if name == "cluster":
        return ClusterDesign(clusters, ids, treat_fraction=spec["treat_fraction"], arm_weights=spec["arm_weights"])
    if name == "holdout":
        return holdout_design(clusters, ids, spec["holdout_fraction"])
    strata = list(spec["strata_by"])
    require_columns(units, [c for c in strata if c != "size"], what)
    stratify = {c: None if c == "size" else units[c].to_numpy(dtype=float) for c in strata}
    return StratifiedClusterDesign.from_units(clusters, ids, stratify, n_bins=spec["n_bins"],
                                              sample_fraction=spec["sample_fraction"],
                                              arm_weights=spec["arm_weights"])
