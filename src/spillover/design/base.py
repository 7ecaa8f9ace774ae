"""What every design produces: an :class:`Assignment` of arms, and the
:class:`Randomization` that exact exposure probabilities read."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable

import numpy as np
import pandas as pd

from ..display import mapping_html
from ..errors import InputError
from ..io import DESIGN_KEY

OUT = -1  # arm of a unit not sampled into the experiment


@dataclass(frozen=True, eq=False)
class Assignment:
    """Arms of units: ``arms[i]`` for unit ``units[i]``, ``-1`` when not in the experiment.

    ``clusters[i]`` is the dense cluster index of unit ``i`` (``cluster_ids`` maps it back)
    for cluster designs, else ``None``. ``design``, ``seed``/``salt`` and ``params`` say
    how it was produced, so it can be reproduced; :attr:`record` says it as a
    :class:`~spillover.design.record.DesignRecord`, which :meth:`to_frame` attaches to the
    table (``frame.attrs``) so that writing it keeps the design beside the arms.

    Examples
    --------
    >>> from spillover.design import IndividualDesign
    >>> assignment = IndividualDesign(["a", "b", "c", "d"]).assign(seed=1)
    >>> assignment.counts(), assignment.to_frame().columns.tolist()
    ({0: 2, 1: 2}, ['unit_id', 'cluster_id', 'arm'])
    >>> assignment.record.name, assignment.record.scheme
    ('individual', 'complete')
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

    @cached_property
    def record(self):
        """The :class:`~spillover.design.record.DesignRecord`: the design, its options, how it was drawn."""
        from .record import record_of

        return record_of(self)

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
        if not include_out:
            frame = frame[self.arms != OUT].reset_index(drop=True)
        frame.attrs[DESIGN_KEY] = self.record.to_dict()
        return frame

    def arm_of(self, ids: Iterable[Any]) -> np.ndarray:
        """Arms of the given unit ids; unknown ids raise :class:`InputError`."""
        positions = self.units.get_indexer(pd.Index(ids))
        if (positions < 0).any():
            bad = pd.Index(ids)[positions < 0]
            raise InputError(f"assignment: {bad.size} unknown unit id(s), e.g. {list(bad[:5])}.")
        return self.arms[positions]

    def summary(self) -> str:
        """How the assignment was made and how many units each arm has, in a line."""
        data = self.to_dict()
        arms = ", ".join(f"arm {arm}: {n:,}" for arm, n in data["arms"].items())
        drawn = f"salt {self.salt!r}" if self.salt else f"seed {self.seed}"
        of = "" if data["n_clusters"] is None else f" in {data['n_clusters']:,} clusters"
        return f"{self.design} assignment of {data['n_units']:,} units{of} ({drawn}): {arms}"

    def _repr_html_(self) -> str:
        data = self.to_dict()
        arms = {f"units in arm {arm}": n for arm, n in data["arms"].items()}
        return mapping_html(f"{self.design} assignment", {**data, **arms})

    def to_dict(self) -> dict[str, Any]:
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
    >>> from spillover.design import ClusterDesign
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


class Design(abc.ABC):
    """What every design is and says about itself: the interface ``probabilities``,
    ``simulate``, the randomization tests and the analysis ask, never probing attributes.

    A design ``assign`` s one assignment and ``draw`` s many at once (an ``(n_units,
    n_draws)`` matrix of arms). It says what it can give exactly: its
    :meth:`randomization` (which blocks move together and how they are drawn: exact
    exposure probabilities), or :meth:`randomizations` for a mixture of them; which
    randomized nodes' arms depend on each other (:meth:`dependence_blocks`); and, when
    units take their block's arm, the blocks' draws alone (:meth:`draw_blocks`, what
    Monte Carlo counts as ``(A C) W``). :meth:`spec` gives its options.

    Examples
    --------
    >>> from spillover.design import ClusterDesign, IndividualDesign
    >>> isinstance(ClusterDesign([0, 0, 1, 1], range(4)), Design)
    True
    >>> IndividualDesign(range(4)).dependence_blocks() is None, ClusterDesign([0, 0, 1, 1], range(4)).exact
    (True, True)
    """

    name = "design"

    @abc.abstractmethod
    def assign(self, seed=None) -> Assignment:
        """One assignment (seeded; some designs also take a ``salt`` for a keyed hash)."""

    @abc.abstractmethod
    def draw(self, n_draws: int, seed=None) -> np.ndarray:
        """``(n_units, n_draws)`` matrix of arms, one column per independent draw."""

    def randomization(self) -> "Randomization | None":
        """Which blocks move together and how they are drawn (None: no closed form)."""
        return None

    def randomizations(self) -> "list[Randomization] | None":
        """For a uniform mixture of randomizations (RGCR): each one (None otherwise)."""
        return None

    @property
    def exact(self) -> bool:
        """Whether exposure probabilities under this design have closed forms."""
        return self.randomization() is not None or self.randomizations() is not None

    def dependence_blocks(self) -> np.ndarray | None:
        """Each randomized node's block, where arms of one block depend on each other
        (a cluster's); None when nodes are drawn independently of one another."""
        return None

    def draw_blocks(self, n_draws: int, seed=None) -> np.ndarray | None:
        """``(n_blocks, n_draws)`` arms of whole blocks when every unit takes its block's
        arm (units take ``W[dependence_blocks()]``); None otherwise."""
        return None

    def components(self) -> "list[Design]":
        """The designs a mixture mixes (itself otherwise)."""
        return [self]

    def spec(self) -> dict[str, Any]:
        """The design's options by name (what its record and the experiment file write)."""
        return {}

    def describe(self) -> str:
        """The design in a few words, for notes."""
        return self.name
