"""Exposure: each unit's condition from its own and its neighbours' assignments, and the
probability of each condition under a design.

Everything runs on one kernel: ``A @ Z`` (sparse adjacency times a dense matrix of
draws) gives every unit's count of treated neighbours in every draw at once. Exposure
probabilities are the share of draws in which a unit lands in a condition; joint
probabilities, needed by the Aronow-Samii variance, are kept only for pairs of units
whose exposures can depend on a common randomization unit (stored sparsely).
"""

from __future__ import annotations

import warnings
import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .design import OUT, Assignment
from .seeds import check_seed
from .errors import DataWarning, InputError, PositivityWarning, show_id
from .graph import BipartiteGraph, SocialGraph, csr_rows, group_indicator, with_isolates

# --------------------------------------------------------------------------- mappings

__all__ = ["FACTOR_ABOVE_PAIRS", "MAPPINGS", "MAX_DEPENDENT_PAIRS", "PROBABILITY_METHODS", "Counts",
           "ExposureProbabilities", "FactoredPairs", "Mapping",
           "as4", "as4_two_hop", "bipartite", "default_control", "exposure", "get_mapping", "infer_mapping", "own_arm",
           "probabilities", "threshold"]


@dataclass(frozen=True)
class Counts:
    """What a mapping sees for each unit (arrays of shape ``(n,)`` or ``(n, R)``).

    ``own`` is 1 when the unit itself is treated (always 0 on the unit side of a bipartite
    graph); ``n_neighbors`` and ``n_treated`` count neighbours and treated neighbours;
    ``n_treated_2hop`` counts treated units exactly two hops away (only with ``hops=2``).

    Examples
    --------
    >>> import numpy as np
    >>> Counts(own=np.array([1, 0]), n_neighbors=np.array([4, 0]), n_treated=np.array([1, 0])).treated_fraction
    array([0.25, 0.  ])
    """

    own: np.ndarray
    n_neighbors: np.ndarray
    n_treated: np.ndarray
    n_treated_2hop: np.ndarray | None = None

    @cached_property
    def treated_fraction(self) -> np.ndarray:
        """Share of neighbours treated; 0 for a unit without neighbours."""
        out = np.zeros(self.n_treated.shape, dtype=float)
        return np.divide(self.n_treated, self.n_neighbors, out=out, where=self.n_neighbors > 0)


# A condition as a signed sum of conjunctions ("terms") of block events: ("own", 1) says
# the unit's own block is treated, ("nbr", 0) that every block touching its neighbours
# is untreated (vacuously true without neighbours). Mappings that can be written so
# have exact exposure probabilities under Bernoulli and complete designs.
Term = tuple[int, tuple[tuple[str, int], ...]]


@dataclass(frozen=True)
class Mapping:
    """An exposure mapping: ``rule(counts) -> integer codes`` into ``conditions``.

    ``control`` is the condition every contrast is taken against; ``estimands`` names
    the estimand each other condition's contrast targets (``direct``, ``indirect``,
    ``total``). ``counts_only`` says the rule reads nothing but ``own``,
    ``n_neighbors`` and ``n_treated``, and ``events`` writes conditions as block events:
    either gives exact exposure probabilities under Bernoulli and complete designs.
    ``tally`` (optional) counts, for counts over ``R`` draws, each unit's draws in each
    condition (``(n, n_conditions)``, what counting the rule's codes gives) in fewer
    passes over the draws: Monte Carlo marginals use it, with treated-neighbour counts
    in the smallest integer type that holds them (compare them; do no arithmetic). A
    user-defined mapping is any ``Mapping`` with a vectorised rule.

    Examples
    --------
    >>> import numpy as np
    >>> two_plus = Mapping("two+", ("two_plus", "fewer"), "fewer", lambda c: np.where(c.n_treated >= 2, 0, 1))
    >>> counts = Counts(own=np.array([0, 1]), n_neighbors=np.array([3, 3]), n_treated=np.array([2, 1]))
    >>> [two_plus.conditions[k] for k in two_plus.codes(counts)]
    ['two_plus', 'fewer']
    """

    name: str
    conditions: tuple[str, ...]
    control: str
    rule: Callable[[Counts], np.ndarray]
    estimands: dict[str, str] = field(default_factory=dict)
    hops: int = 1
    events: dict[str, tuple[Term, ...]] | None = None
    counts_only: bool = False
    tally: Callable[[Counts], np.ndarray] | None = None

    def codes(self, counts: Counts) -> np.ndarray:
        """The condition code (index into ``conditions``) of each unit."""
        return np.asarray(self.rule(counts), dtype=np.int8)

    def estimand(self, condition: str, control: str | None = None) -> str:
        """The estimand a contrast of ``condition`` with ``control`` (default: the
        mapping's) targets: the mapping's name for it, else ``"<condition> vs <control>"``."""
        control = self.control if control is None else control
        if control == self.control and condition in self.estimands:
            return self.estimands[condition]
        return f"{condition} vs {control}"


def as4() -> Mapping:
    """Aronow & Samii's four conditions for one hop: treated or not x some or no treated
    neighbour (``dir_ind1``, ``isol_dir``, ``ind1``, ``no``).

    Examples
    --------
    >>> as4().estimand("ind1")
    'indirect'
    """
    def rule(c: Counts) -> np.ndarray:
        # 0 dir_ind1, 1 isol_dir, 2 ind1, 3 no: arithmetic on int8 beats nested where
        untreated = (c.own == 0).view(np.int8)
        unexposed = (c.n_treated == 0).view(np.int8)
        return 2 * untreated + unexposed

    def tally(c: Counts) -> np.ndarray:
        # the four counts from two boolean counts and their overlap, no codes formed
        draws = c.n_treated.shape[1]
        unexposed = c.n_treated == 0
        treated = c.own.sum(axis=1, dtype=np.int64)
        n_unexposed = _row_count(unexposed)
        neither = _row_count(unexposed.view(np.int8) > c.own)       # untreated and unexposed (own is 0 or 1)
        isolated = n_unexposed - neither
        return np.column_stack([treated - isolated, isolated, draws - treated - neither, neither])

    events = {
        "dir_ind1": ((1, (("own", 1),)), (-1, (("own", 1), ("nbr", 0)))),
        "isol_dir": ((1, (("own", 1), ("nbr", 0))),),
        "ind1": ((1, (("own", 0),)), (-1, (("own", 0), ("nbr", 0)))),
        "no": ((1, (("own", 0), ("nbr", 0))),),
    }
    return Mapping("as4", ("dir_ind1", "isol_dir", "ind1", "no"), "no", rule,
                   {"dir_ind1": "total", "isol_dir": "direct", "ind1": "indirect"}, events=events, counts_only=True,
                   tally=tally)


def _row_count(mask: np.ndarray) -> np.ndarray:
    """Number of true entries in each row of a boolean ``(n, R)`` matrix (an int8 sum:
    about twice as fast as ``count_nonzero`` along rows)."""
    return mask.view(np.int8).sum(axis=1, dtype=np.int64)


def as4_two_hop() -> Mapping:
    """The two-hop extension: an untreated-neighbourhood unit is still ``*ind2`` when a
    unit two hops away is treated (``dir_ind1``, ``dir_ind2``, ``isol_dir``, ``ind1``,
    ``ind2``, ``no``).

    Examples
    --------
    >>> as4_two_hop().conditions
    ('dir_ind1', 'dir_ind2', 'isol_dir', 'ind1', 'ind2', 'no')
    """
    def rule(c: Counts) -> np.ndarray:
        level = np.where(c.n_treated > 0, 0, np.where(c.n_treated_2hop > 0, 1, 2))
        return np.where(c.own == 1, level, 3 + level)

    events = {}
    for own, prefix in ((1, ("dir_ind1", "dir_ind2", "isol_dir")), (0, ("ind1", "ind2", "no"))):
        first, second, none = prefix
        mine = ("own", own)
        events[first] = ((1, (mine,)), (-1, (mine, ("nbr", 0))))
        events[second] = ((1, (mine, ("nbr", 0))), (-1, (mine, ("nbr", 0), ("nbr2", 0))))
        events[none] = ((1, (mine, ("nbr", 0), ("nbr2", 0))),)
    return Mapping("as4-2hop", ("dir_ind1", "dir_ind2", "isol_dir", "ind1", "ind2", "no"), "no", rule,
                   {"dir_ind1": "total", "isol_dir": "direct", "ind1": "indirect", "ind2": "indirect (2 hops)",
                    "dir_ind2": "direct + indirect (2 hops)"}, hops=2, events=events)


def threshold(q: float = 0.75) -> Mapping:
    """Fractional q-neighbourhood exposure (Ugander et al. 2013): ``treated`` when the unit
    and at least a share ``q`` of its neighbours are treated, ``control`` when the unit and
    at least ``q`` of its neighbours are untreated, ``other`` otherwise. The contrast
    approximates the global average treatment effect.

    Examples
    --------
    >>> threshold(0.9).control, threshold(1.0).events is not None
    ('control', True)
    """
    if not 0.0 <= q <= 1.0:
        raise InputError(f"threshold q={q} must be in [0, 1].")

    def rule(c: Counts) -> np.ndarray:
        fraction = np.where(c.n_neighbors > 0, c.treated_fraction, c.own)  # isolated: vacuous
        treated = (c.own == 1) & (fraction >= q)
        control = (c.own == 0) & (1.0 - fraction >= q)
        return np.where(treated, 0, np.where(control, 1, 2))

    events = None
    if q == 1.0:  # all neighbours in the unit's own arm
        events = {"treated": ((1, (("own", 1), ("nbr", 1))),), "control": ((1, (("own", 0), ("nbr", 0))),),
                  "other": ((1, ()), (-1, (("own", 1), ("nbr", 1))), (-1, (("own", 0), ("nbr", 0))))}
    elif q == 0.0:  # the unit's own arm alone
        events = {"treated": ((1, (("own", 1),)),), "control": ((1, (("own", 0),)),), "other": ()}
    return Mapping("threshold", ("treated", "control", "other"), "control", rule, {"treated": "total"},
                   events=events, counts_only=True)


def own_arm() -> Mapping:
    """Own assignment only (``treated`` / ``control``): the no-interference mapping, whose
    contrast is the naive difference; the treated share of neighbours is reported beside
    it as the continuous exposure.

    Examples
    --------
    >>> own_arm().conditions
    ('treated', 'control')
    """
    return Mapping("fraction", ("treated", "control"), "control", lambda c: np.where(c.own == 1, 0, 1),
                   {"treated": "direct (ignoring interference)"},
                   events={"treated": ((1, (("own", 1),)),), "control": ((1, (("own", 0),)),)}, counts_only=True)


def bipartite(lower: float = 0.0, upper: float = 1.0) -> Mapping:
    """Buyer exposure to a seller-side design: ``direct`` when at least ``upper`` of the
    unit's treated-side neighbours are treated (all of them by default), ``control`` when
    at most ``lower`` are (none by default), ``indirect`` in between.

    Examples
    --------
    >>> bipartite().estimand("indirect")
    'indirect'
    """
    if not 0.0 <= lower < upper <= 1.0:
        raise InputError(f"bipartite thresholds need 0 <= lower < upper <= 1, got {lower}, {upper}.")

    def rule(c: Counts) -> np.ndarray:
        share = c.treated_fraction
        return np.where(share >= upper, 0, np.where(share <= lower, 2, 1))

    events = None
    if (lower, upper) == (0.0, 1.0):  # all / some / none of the unit's sellers treated
        both = ("nbr", 1), ("nbr", 0)  # only possible without sellers, who are control
        events = {"direct": ((1, (("nbr", 1),)), (-1, both)), "control": ((1, (("nbr", 0),)),),
                  "indirect": ((1, ()), (-1, (("nbr", 1),)), (-1, (("nbr", 0),)), (1, both))}
    return Mapping("bipartite", ("direct", "indirect", "control"), "control", rule,
                   {"direct": "direct", "indirect": "indirect"}, events=events, counts_only=True)


MAPPINGS = {"fraction": own_arm, "as4": as4, "threshold": threshold, "bipartite": bipartite}


def _built_in_mappings() -> tuple[Mapping, ...]:
    return (*(factory() for factory in MAPPINGS.values()), as4_two_hop())


def infer_mapping(conditions) -> Mapping | None:
    """The built-in mapping (one or two hops) that made an exposure table with these
    ``conditions``: the one whose conditions are exactly these, else the only one whose
    conditions include them and its control, the smallest such (a condition no unit
    reached is absent from a table read back from a file); None when none fits or two
    fit equally. This is how contrasts
    are named when only an exposure table, not its mapping, is at hand.

    >>> infer_mapping(["dir_ind1", "ind1", "no"]).name
    'as4'
    """
    wanted = set(map(str, conditions))
    mappings = _built_in_mappings()
    exact = [m for m in mappings if set(m.conditions) == wanted]
    if exact:
        return exact[0]
    covering = sorted((m for m in mappings if wanted <= set(m.conditions) and m.control in wanted),
                      key=lambda m: len(m.conditions))
    if len(covering) > 1 and len(covering[0].conditions) == len(covering[1].conditions):
        return None  # two mappings fit equally well: do not guess
    return covering[0] if covering else None


def default_control(conditions) -> str:
    """The control condition of an exposure table's ``conditions``: its mapping's, or the
    one built-in control among them.

    >>> default_control(["treated", "control"])
    'control'
    """
    mapping = infer_mapping(conditions)
    if mapping is not None:
        return mapping.control
    present = set(map(str, conditions))
    controls = sorted({m.control for m in _built_in_mappings()} & present)
    if len(controls) == 1:
        return controls[0]
    raise InputError(f"cannot tell the control condition among {sorted(present)}: name it (control= in Python, "
                     "--control on the command line).")


def get_mapping(mapping: str | Mapping, *, threshold_q: float | None = None, hops: int = 1,
                bipartite_graph: bool = False) -> Mapping:
    """A mapping by its command-line name (``fraction``, ``as4``, ``threshold``,
    ``bipartite``), or the given :class:`Mapping`. ``threshold_q`` sets the threshold
    mapping's ``q`` and the bipartite mapping's bounds (:func:`bipartite_bounds`); a
    mapping that reads a unit's own arm is refused on a bipartite graph.

    Examples
    --------
    >>> get_mapping("as4", hops=2).name, get_mapping("threshold", threshold_q=0.5).name
    ('as4-2hop', 'threshold')
    """
    if threshold_q is not None and mapping in ("fraction", "as4"):
        raise InputError(f"--threshold applies to the threshold and bipartite mappings, not {mapping!r}.")
    if isinstance(mapping, Mapping):
        rule = mapping
    elif mapping == "as4":
        rule = as4_two_hop() if hops == 2 else as4()
    elif mapping == "threshold":
        rule = threshold(0.75 if threshold_q is None else threshold_q)
    elif mapping == "bipartite":
        rule = bipartite() if threshold_q is None else bipartite(*bipartite_bounds(threshold_q))
    elif mapping in MAPPINGS:
        rule = MAPPINGS[mapping]()
    else:
        raise InputError(f"unknown exposure mapping {mapping!r}; choose one of {list(MAPPINGS)} or pass a Mapping.")
    if bipartite_graph and rule.name in OWN_ARM_MAPPINGS:
        raise InputError(f"--mapping {rule.name} reads a unit's own arm, and the unit side of a bipartite graph has "
                         "none (the other side is randomized): use --mapping bipartite (--threshold Q for a "
                         "fractional rule).")
    return rule


# the built-in mappings that read a unit's own arm: undefined on the unit side of a bipartite graph
OWN_ARM_MAPPINGS = ("fraction", "as4", "as4-2hop", "threshold")


def bipartite_bounds(threshold_q: float) -> tuple[float, float]:
    """``(lower, upper)`` of the bipartite mapping with threshold ``q``: direct when at
    least ``q`` of a unit's treated-side neighbours are treated, control when at most
    ``1 - q`` are; ``q`` in ``(0.5, 1]`` (1: all / none, the default).

    Examples
    --------
    >>> bipartite_bounds(0.75)
    (0.25, 0.75)
    """
    q = float(threshold_q)
    if not 0.5 < q <= 1.0:
        raise InputError(f"--threshold {threshold_q:g} with --mapping bipartite: a unit is direct when at least that "
                         "share of its treated-side neighbours is treated and control when at most 1 - that share "
                         "is, so it must be above 0.5 and at most 1.")
    return 1.0 - q, q


# --------------------------------------------------------------------------- kernel


@dataclass(frozen=True, eq=False)
class ExposureGraph:
    """The sparse operators a mapping needs, built once per graph and reused for every
    draw: ``neighbors`` (units x randomized units), the unit's own randomized node, and
    the exact-two-hop operator when asked for."""

    neighbors: sp.csr_array
    own_index: np.ndarray | None
    two_hop: sp.csr_array | None
    units: pd.Index
    randomized: pd.Index

    @classmethod
    def build(cls, graph: SocialGraph | BipartiteGraph, hops: int = 1) -> "ExposureGraph":
        """The operators of ``graph`` for mappings of ``hops`` hops."""
        if isinstance(graph, BipartiteGraph):
            if hops != 1:
                raise InputError("two-hop exposure is defined for social graphs only.")
            return cls(graph.incidence, None, None, graph.units, graph.treated)
        adjacency = graph.symmetric()
        two_hop = None
        if hops == 2:
            reach = (adjacency @ adjacency).tocsr()
            reach.data[:] = 1
            two_hop = (reach - adjacency.multiply(reach)).tocsr()  # drop direct neighbours
            two_hop.setdiag(0)
            two_hop.eliminate_zeros()
            two_hop = sp.csr_array(two_hop.astype(np.int32))
        elif hops != 1:
            raise InputError(f"hops={hops}: exposure is defined for 1 or 2 hops.")
        return cls(adjacency, np.arange(graph.n_nodes), two_hop, graph.nodes, graph.nodes)

    @cached_property
    def degree(self) -> np.ndarray:
        """Each unit's number of neighbours (row sums: a blocked kernel stores counts)."""
        return np.asarray(self.neighbors.sum(axis=1)).ravel().astype(np.int64)

    def blocked(self, blocks: np.ndarray, n_blocks: int) -> "ExposureGraph":
        """The same operators on the blocks a design randomizes (``blocks[i]`` of
        randomized node ``i``): ``N C``, the number of neighbours in each block, so a
        draw of the blocks ``W`` gives every count as ``(N C) W`` without expanding the
        draws to nodes. Counts are exact integers.

        Examples
        --------
        >>> from spillover import synth
        >>> graph = synth.social_graph(300, seed=1)
        >>> kernel = ExposureGraph.build(graph)
        >>> blocks = np.arange(graph.n_nodes) % 10
        >>> draws = np.random.default_rng(0).integers(0, 2, (10, 5)).astype(np.int8)
        >>> by_node, by_block = kernel.counts(draws[blocks]), kernel.blocked(blocks, 10).counts(draws)
        >>> bool((by_node.n_treated == by_block.n_treated).all() and (by_node.own == by_block.own).all())
        True
        """
        indicator = group_indicator(np.asarray(blocks, dtype=np.int64), n_blocks).T.tocsr().astype(np.int32)
        return ExposureGraph(sp.csr_array(self.neighbors @ indicator),
                             None if self.own_index is None else np.asarray(blocks)[self.own_index],
                             None if self.two_hop is None else sp.csr_array(self.two_hop @ indicator),
                             self.units, pd.RangeIndex(n_blocks))

    @cached_property
    def _compact_neighbors(self) -> sp.csr_array:
        """``neighbors`` in the smallest integer type that holds every unit's degree: its
        products with int8 draws are exact and 4-8 times smaller than in int32."""
        top = int(self.degree.max(initial=0))
        dtype = next(t for t in (np.int8, np.int16, np.int32, np.int64) if top <= np.iinfo(t).max)
        return sp.csr_array(self.neighbors.astype(dtype))

    def counts(self, treated: np.ndarray, *, compact: bool = False) -> Counts:
        """Counts for a 0/1 vector or ``(n_randomized, R)`` matrix of treated indicators.
        ``compact`` (int8 ``treated``): treated-neighbour counts in the smallest integer
        type that holds the degrees, exact but liable to overflow in further arithmetic;
        for built-in mappings' ``tally`` only."""
        degree = self.degree
        if treated.ndim == 2:
            degree = degree[:, None]
        n_treated = (self._compact_neighbors if compact else self.neighbors) @ treated
        own = treated[self.own_index] if self.own_index is not None else np.zeros_like(n_treated)
        return Counts(
            own=own,
            n_neighbors=np.broadcast_to(degree, own.shape),
            n_treated=n_treated,
            n_treated_2hop=None if self.two_hop is None else self.two_hop @ treated,
        )

    def reach(self, clusters: np.ndarray | None = None) -> sp.csr_array:
        """0/1 ``units x randomized nodes`` (or ``x clusters``): what each unit's exposure
        reads, its closed neighbourhood (two-hop reach included when used), mapped to the
        clusters of the randomized nodes when they are randomized in clusters."""
        reach = self.neighbors
        if self.two_hop is not None:
            reach = reach + self.two_hop
        if self.own_index is not None:  # each unit's own randomized node
            n = reach.shape[0]
            reach = reach + sp.csr_array((np.ones(n, dtype=np.int32), (np.arange(n), self.own_index)), shape=reach.shape)
        reach = sp.csr_array(reach)
        if clusters is not None:  # exposures depend on the clusters their neighbours are in
            reach = sp.csr_array(reach @ group_indicator(clusters, int(clusters.max()) + 1).T)
        reach.data[:] = 1
        return reach

    def dependence(self, clusters: np.ndarray | None = None, max_pairs: int | None = None) -> sp.csr_array:
        """Pairs of units whose exposures share a randomization unit: ``R R^T`` with ``R``
        the :meth:`reach`, plus every unit with itself. With ``max_pairs``, an
        :class:`InputError` (before anything is formed) when the upper bound
        ``sum_b c_b^2`` (``c_b`` the units whose exposure reads block ``b``) exceeds it."""
        reach = self.reach(clusters)
        if max_pairs is not None:
            _check_pairs(_pairs_bound(reach), max_pairs)
        pairs = (reach @ reach.T + sp.eye_array(reach.shape[0], dtype=np.int32)).tocsr()
        pairs.data[:] = 1
        pairs.sort_indices()
        return sp.csr_array(pairs)


    def signatures(self, blocks: np.ndarray, n_blocks: int, *, sets: bool = False) -> np.ndarray:
        """A class per unit such that two units of one class have the same counts in every
        draw of a design that randomizes ``blocks`` (all nodes of a block share an arm):
        the same own block and the same number of neighbours (and two-hop neighbours) in
        each block; with ``sets``, the same *set* of blocks their neighbours are in (all a
        mapping written as events on block sets reads). Rows are compared by two
        independent 64-bit hashes of their entries.

        Examples
        --------
        >>> from spillover import synth
        >>> graph = synth.social_graph(200, seed=1)
        >>> kernel = ExposureGraph.build(graph)
        >>> blocks = np.zeros(graph.n_nodes, dtype=np.int64)  # one block: units differ by degree only
        >>> int(kernel.signatures(blocks, 1).max()) + 1 == np.unique(graph.degrees()).size
        True
        """
        by_block = group_indicator(np.asarray(blocks, dtype=np.int64), n_blocks).T.tocsr().astype(np.int64)
        n = len(self.units)
        keys = [np.zeros(n, dtype=np.uint64), np.zeros(n, dtype=np.uint64)]
        parts = [self.neighbors] + ([self.two_hop] if self.two_hop is not None else [])
        for salt, operator in enumerate(parts):
            counts = sp.csr_array(operator @ by_block)
            counts.sum_duplicates()
            if sets:
                counts.data[:] = 1
            entry = (counts.indices.astype(np.uint64) << np.uint64(20)) ^ counts.data.astype(np.uint64) \
                ^ (np.uint64(salt) << np.uint64(60))
            for h, seed in ((0, 0x9E3779B97F4A7C15), (1, 0xC2B2AE3D27D4EB4F)):
                mixed = _mix64(entry + np.uint64(seed))
                keys[h] += _row_sums_uint64(mixed, counts.indptr)
        own = self.own_index if self.own_index is not None else None
        own_block = np.asarray(blocks, dtype=np.int64)[own] if own is not None else np.full(n, -1, dtype=np.int64)
        frame = pd.DataFrame({"own": own_block, "h0": keys[0], "h1": keys[1]})
        return frame.groupby(["own", "h0", "h1"], sort=False).ngroup().to_numpy(dtype=np.int64)

    def restricted(self, rows: np.ndarray) -> "ExposureGraph":
        """The operators of the units ``rows`` only (the randomized nodes unchanged)."""
        return ExposureGraph(sp.csr_array(self.neighbors[rows]),
                             None if self.own_index is None else self.own_index[rows],
                             None if self.two_hop is None else sp.csr_array(self.two_hop[rows]),
                             self.units[rows], self.randomized)


# joint probabilities beyond this many pairs are refused: Hajek with as4's exact probabilities
# under a cluster design peaked at about 145 bytes a pair (3.4 GB for 24M pairs, graph
# included), so this keeps such a step under 8 GB
MAX_DEPENDENT_PAIRS = 50_000_000
PEAK_BYTES_PER_PAIR = 145


def _pairs_bound(reach: sp.csr_array) -> int:
    """``sum_b c_b^2``: at least the pairs of units that share a block of ``reach``."""
    return int(np.sum(np.bincount(reach.indices).astype(np.float64) ** 2))


def _check_pairs(n_pairs: int, max_pairs: int) -> None:
    """Refuse, with what to do instead, a number of stored pairs above ``max_pairs``."""
    if n_pairs > max_pairs:
        raise InputError(
            f"joint exposure probabilities would be needed for up to {n_pairs:,} dependent pairs (about "
            f"{n_pairs * PEAK_BYTES_PER_PAIR / 1e9:.1f} GB to compute), above max_pairs={max_pairs:,}: analyse with "
            "ols-cluster (CR2 on the randomization clusters), use fewer or smaller clusters, or raise max_pairs "
            "(--max-pairs) on a machine with the memory.")


def _mix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, elementwise on uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64, copy=True)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _row_sums_uint64(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Wrapping uint64 sum of each CSR row's entries (order-free, so a row's hash does not
    depend on how its entries are stored)."""
    totals = np.zeros(indptr.size - 1, dtype=np.uint64)
    nonempty = np.flatnonzero(np.diff(indptr) > 0)
    if nonempty.size:
        with np.errstate(over="ignore"):
            sums = np.add.reduceat(values, indptr[:-1][nonempty], dtype=np.uint64)
        totals[nonempty] = sums
    return totals


def treated_indicator(arms: np.ndarray) -> np.ndarray:
    """Arm 1 (and any arm >= 1) is treated; control and units out of the experiment are not."""
    return (arms >= 1).astype(np.int8)


def assignment_ids(assignment: Assignment | pd.Series | pd.DataFrame) -> pd.Index:
    """The unit ids an assignment names (a table's ``unit_id`` column, a Series' index)."""
    if isinstance(assignment, Assignment):
        return assignment.units
    if isinstance(assignment, pd.DataFrame):
        if "unit_id" not in assignment.columns:
            raise InputError(f"assignment table needs columns unit_id and arm; it has {list(assignment.columns)}.")
        ids = pd.Index(assignment["unit_id"])
    else:
        ids = assignment.index
    if ids.hasnans:
        raise InputError(f"assignment: {int(ids.isna().sum()):,} row(s) with a missing 'unit_id', the first row "
                         f"{int(np.flatnonzero(ids.isna())[0])}. Drop or fill them.")
    return ids


def arms_for(randomized: pd.Index, assignment: Assignment | pd.Series | pd.DataFrame) -> np.ndarray:
    """Arms aligned with the randomized nodes; unknown ids are an error, nodes without an
    arm are out of the experiment (untreated), with a warning."""
    if isinstance(assignment, Assignment):
        series = pd.Series(assignment.arms, index=assignment.units)
    elif isinstance(assignment, pd.DataFrame):
        if not {"unit_id", "arm"} <= set(assignment.columns):
            raise InputError(f"assignment table needs columns unit_id and arm; it has {list(assignment.columns)}.")
        series = assignment.set_index("unit_id")["arm"]
    else:
        series = assignment
    if series.index.has_duplicates:
        raise InputError(f"assignment: unit id {show_id(series.index[series.index.duplicated()][0])} appears twice.")
    unknown = series.index.difference(randomized)
    if len(unknown):
        raise InputError(f"assignment: {len(unknown)} unit id(s) not in the graph, e.g. {list(unknown[:5])}.")
    values = pd.to_numeric(series, errors="coerce")
    bad = values.isna() & series.notna() | (values.notna() & ((values % 1 != 0) | (values < OUT)))
    if bad.any():
        raise InputError(f"assignment: arm {show_id(series[bad].iloc[0])} of unit {show_id(series.index[bad][0])} is not an arm: "
                         f"arms are whole numbers, {OUT} (out of the experiment), 0 (control), 1, 2, ...")
    aligned = series.reindex(randomized)
    missing = int(aligned.isna().sum())
    if missing:
        warnings.warn(f"assignment: {missing} node(s) of the graph have no arm; they count as untreated "
                      "(out of the experiment).", DataWarning, stacklevel=3)
    return aligned.fillna(OUT).to_numpy(dtype=np.int64)


def exposure(
    graph: SocialGraph | BipartiteGraph,
    assignment: Assignment | pd.Series | pd.DataFrame,
    mapping: str | Mapping = "as4",
    *,
    threshold_q: float | None = None,
    hops: int = 1,
) -> pd.DataFrame:
    """Each unit's exposure: ``unit_id, arm, n_neighbors, n_treated_neighbors,
    treated_fraction, condition`` (``arm`` empty on the unit side of a bipartite graph,
    whose treated side carries the assignment).

    >>> from spillover import synth
    >>> from spillover.design import IndividualDesign
    >>> g = synth.social_graph(500, seed=1)
    >>> table = exposure(g, IndividualDesign(g.nodes).assign(seed=1), "as4")
    >>> sorted(table["condition"].unique())
    ['dir_ind1', 'ind1', 'isol_dir', 'no']
    """
    rule = get_mapping(mapping, threshold_q=threshold_q, hops=hops, bipartite_graph=isinstance(graph, BipartiteGraph))
    graph = with_isolates(graph, assignment_ids(assignment), "assignment")
    kernel = ExposureGraph.build(graph, rule.hops)
    arms = arms_for(kernel.randomized, assignment)
    counts = kernel.counts(treated_indicator(arms))
    codes = rule.codes(counts)
    n = len(kernel.units)
    if kernel.own_index is not None:
        own_arm = pd.arrays.IntegerArray(arms.astype(np.int64), np.zeros(n, dtype=bool))
    else:  # the unit side of a bipartite graph has no arm of its own
        own_arm = pd.arrays.IntegerArray(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool))
    return pd.DataFrame({
        "unit_id": kernel.units,
        "arm": own_arm,
        "n_neighbors": counts.n_neighbors,
        "n_treated_neighbors": counts.n_treated,
        "treated_fraction": counts.treated_fraction,
        "condition": pd.Categorical.from_codes(codes, categories=list(rule.conditions)),
    }, copy=False)


# --------------------------------------------------------------------------- probabilities


@dataclass(frozen=True, eq=False)
class FactoredPairs:
    """The dependent pairs of classes that share exactly one randomization block, in
    factored form (:func:`probabilities` with ``factored``).

    Two classes whose block sets (own block and neighbours' blocks) meet in one block
    ``b`` only have a joint exposure probability that depends only on their *types* at
    ``b``: the role ``b`` plays for each (own block, a neighbour's block, or both) and
    each one's signature (the number of its neighbours' blocks and whether its own
    block is among them), since under Bernoulli and complete randomization the
    probability of an event on block sets depends only on their sizes. A pairwise sum
    over such pairs is therefore a sum over blocks of per-type sums (:meth:`cross`),
    linear in the graph. Each incidence ``p`` (``classes[p]`` reads ``blocks[p]`` as type
    ``types[p]``) feeds it; ``type_pairs`` (``tau_r * n_types + tau_c``, sorted) are the
    type pairs that meet in some block, with their joint probabilities in ``joint`` (keys
    as :attr:`ExposureProbabilities.joint`) and ``type_marginal`` (types x conditions).

    The pairs that share two or more blocks, and every class with itself, are stored
    with their exact joints in :attr:`ExposureProbabilities.pairs`; the block sums count
    them once per shared block with the one-block formula, which ``corrections`` undoes:
    for each (stored pair ``corrections[0]``, shared block) the type pair's position in
    ``type_pairs`` (``corrections[1]``).

    Examples
    --------
    >>> from spillover import synth
    >>> from spillover.design import ClusterDesign
    >>> graph = synth.social_graph(500, seed=2)
    >>> probs = probabilities(graph, "as4", design=ClusterDesign(graph.nodes % 20, graph.nodes), factored=True)
    >>> f = probs.factored
    >>> probs.pairs.nnz < probs.unfactored().pairs.nnz, f.joint[(0, 0)].shape == f.type_pairs.shape
    (True, True)
    """

    classes: np.ndarray
    blocks: np.ndarray
    types: np.ndarray
    n_blocks: int
    type_marginal: np.ndarray
    type_pairs: np.ndarray
    joint: dict[tuple[int, int], np.ndarray]
    corrections: tuple[np.ndarray, np.ndarray]

    @property
    def n_types(self) -> int:
        """The number of distinct (role, signature) types."""
        return self.type_marginal.shape[0]

    def cross(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """For each type pair ``(tau, tau')`` of ``type_pairs``: the sum over blocks ``b``
        of ``(sum of left over the classes of type tau at b) x (sum of right over those
        of type tau' at b)`` (``left``, ``right``: one value per class)."""
        shape = (self.n_blocks, self.n_types)
        sums = [sp.csr_array((np.asarray(v, dtype=float)[self.classes], (self.blocks, self.types)), shape=shape)
                for v in (left, right)]
        product = sp.csr_array(sums[0].T @ sums[1])
        width = self.n_types
        return np.asarray(product[self.type_pairs // width, self.type_pairs % width]).ravel()


@dataclass(frozen=True, eq=False)
class ExposureProbabilities:
    """Probability of each exposure condition for each unit under a design.

    ``marginal[i, k]`` is unit ``i``'s probability of condition ``k``. ``joint[(k, l)]``
    holds ``P(D_i = k, D_j = l)`` for the pairs in ``pairs`` (units whose exposures can
    depend on each other), for ``l = k`` and for ``l`` the control condition (what the
    variance of a contrast with the control needs); pairs outside ``pairs`` are
    independent, with joint probability the product of the marginals. ``n_draws`` and ``method`` say how they were obtained.

    On large cluster designs units are grouped (``groups[i]`` is unit ``i``'s class): units
    of a class have the same counts in every draw, hence the same exposure and the same
    probabilities, and ``pairs`` and ``joint`` are stored between classes (a class with
    itself holding the class's marginal, as a unit with itself does). The variance of an
    estimate then sums over class pairs, in time and memory linear in the graph instead of
    quadratic in the cluster sizes; :meth:`per_unit` expands them to units (small graphs).

    ``bound_negative_pairs`` (set for mixtures of designs, where units can be negatively
    dependent with a tiny joint probability): a variance from these bounds every
    negatively dependent pair as Aronow and Samii bound pairs of joint probability zero,
    instead of an unbiased term whose ``1 / p_ij`` weight can make the estimate negative.

    ``factored`` (large one-hop designs, see :func:`probabilities`): ``pairs`` and
    ``joint`` then hold only the pairs that share two or more blocks (and each class
    with itself); the pairs that share one block are in :class:`FactoredPairs`, summed
    per block. :meth:`unfactored` and :meth:`per_unit` store every pair again.

    Examples
    --------
    >>> from spillover import synth
    >>> from spillover.design import ClusterDesign
    >>> graph = synth.social_graph(300, seed=2)
    >>> design = ClusterDesign(graph.nodes % 30, graph.nodes)
    >>> probs = probabilities(graph, "fraction", design=design)
    >>> probs.method, probs.to_frame().columns.tolist()
    ('exact: complete randomization of 15 of 30 blocks', ['unit_id', 'p_treated', 'p_control'])
    """

    units: pd.Index
    conditions: tuple[str, ...]
    marginal: np.ndarray
    pairs: sp.csr_array
    joint: dict[tuple[int, int], sp.csr_array]
    n_draws: int | None
    method: str
    mapping: Mapping | None = None
    notes: tuple[str, ...] = ()
    groups: np.ndarray | None = None
    bound_negative_pairs: bool = False
    factored: FactoredPairs | None = None

    def to_frame(self) -> pd.DataFrame:
        """``unit_id`` and one ``p_<condition>`` column per condition."""
        frame = pd.DataFrame(self.marginal, columns=[f"p_{c}" for c in self.conditions])
        frame.insert(0, "unit_id", self.units)
        return frame

    def per_unit(self) -> "ExposureProbabilities":
        """The same probabilities with pairs and joints between units (a grouped object
        expanded: every pair of units whose classes are a stored pair; quadratic in the
        cluster sizes, for small graphs and checks)."""
        if self.factored is not None:
            return self.unfactored().per_unit()
        if self.groups is None:
            return self
        members = group_indicator(self.groups, self.pairs.shape[0]).T.tocsr()  # units x classes
        pairs = sp.csr_array(members @ self.pairs @ members.T)
        pairs.sort_indices()
        rows, cols = csr_rows(pairs), pairs.indices
        g_rows, g_cols = self.groups[rows], self.groups[cols]
        joint = {}
        for key, values in self.joint.items():
            found = sp.csr_array(values)[g_rows, g_cols]
            found = found.toarray() if sp.issparse(found) else np.asarray(found)
            joint[key] = sp.csr_array((np.asarray(found, dtype=float).ravel(), pairs.indices.copy(),
                                       pairs.indptr.copy()), shape=pairs.shape)
            if key[0] != key[1]:  # a unit is never in two conditions at once
                diagonal = rows == cols
                joint[key].data[diagonal] = 0.0
        pairs.data[:] = 1
        return ExposureProbabilities(self.units, self.conditions, self.marginal, sp.csr_array(pairs, dtype=np.int32),
                                     joint, self.n_draws, self.method, self.mapping, self.notes, None,
                                     self.bound_negative_pairs)

    def unfactored(self) -> "ExposureProbabilities":
        """The same probabilities with every dependent pair stored (a factored object's
        pairs that share one block formed, with their types' joints; quadratic in the
        cluster sizes, for small graphs and checks)."""
        f = self.factored
        if f is None:
            return self
        n = self.pairs.shape[0]
        reads = sp.csr_array((np.ones(f.classes.size), (f.classes, f.blocks)), shape=(n, f.n_blocks))
        which = sp.csr_array((f.blocks + 1.0, (f.classes, f.blocks)), shape=(n, f.n_blocks))
        shared, block_sum = sp.csr_array(reads @ reads.T), sp.csr_array(which @ reads.T)  # one pattern
        shared = sp.csr_array(shared + sp.eye_array(n, format="csr") * 0.5)  # every class with itself
        block_sum = sp.csr_array(block_sum + sp.eye_array(n, format="csr") * 0.5)
        for matrix in (shared, block_sum):
            matrix.sort_indices()
        rows, cols = csr_rows(shared), shared.indices.astype(np.int64)
        one = (shared.data == 1) & (rows != cols)  # the only shared block: the sum of shared blocks' ids
        block = np.rint(block_sum.data[one]).astype(np.int64) - 1
        incidence_keys = _pair_keys(f.classes, f.blocks, f.n_blocks)
        type_r = f.types[_lookup(incidence_keys, _pair_keys(rows[one], block, f.n_blocks))]
        type_c = f.types[_lookup(incidence_keys, _pair_keys(cols[one], block, f.n_blocks))]
        position = _lookup(f.type_pairs, _pair_keys(type_r, type_c, f.n_types))
        stored = _lookup(_csr_keys(self.pairs, n), _pair_keys(rows[~one], cols[~one], n))
        pairs = sp.csr_array((np.ones(rows.size, dtype=np.int32), shared.indices, shared.indptr), shape=(n, n))
        joint = {}
        for key, values in self.joint.items():
            data = np.empty(rows.size)
            data[one] = f.joint[key][position]
            data[~one] = values.data[stored]
            joint[key] = sp.csr_array((data, pairs.indices, pairs.indptr), shape=(n, n))
        return dataclasses.replace(self, pairs=pairs, joint=joint, factored=None)

    def condition_index(self, condition: str) -> int:
        """The column of ``condition`` in ``marginal``; an unknown one is an error."""
        try:
            return self.conditions.index(condition)
        except ValueError:
            raise InputError(f"condition {show_id(condition)} is not one of {list(self.conditions)}.") from None


def _joint_on_pairs(pairs: sp.csr_array, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Count of draws in which row unit is in ``left`` and column unit in ``right``, for
    every stored pair: a sum over draws of elementwise products, chunked by pairs."""
    rows = csr_rows(pairs)
    cols = pairs.indices
    out = np.empty(rows.size, dtype=np.int64)
    step = max(1, int(2e7 // max(left.shape[1], 1)))
    for start in range(0, rows.size, step):  # chunks of pairs keep memory bounded
        r, c = rows[start:start + step], cols[start:start + step]
        out[start:start + step] = np.einsum("ij,ij->i", left[r], right[c], dtype=np.int64)
    return out


def _pair_keys(rows: np.ndarray, cols: np.ndarray, width: int) -> np.ndarray:
    """One sorted-comparable int64 key per (row, column) pair."""
    return np.asarray(rows, dtype=np.int64) * width + cols


def _csr_keys(matrix: sp.csr_array, width: int) -> np.ndarray:
    """The keys of a CSR matrix's stored entries, sorted when its indices are."""
    return _pair_keys(csr_rows(matrix), matrix.indices, width)


def _lookup(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Position of each query in the sorted ``keys``, or -1."""
    if keys.size == 0:
        return np.full(queries.shape, -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(keys, queries), keys.size - 1)
    return np.where(keys[pos] == queries, pos, -1)


@dataclass(frozen=True, eq=False)
class _BlockSets:
    """Each unit's own block and the set of blocks its neighbours are in (``reach``,
    units x blocks, binary): what a mapping with ``events`` depends on."""

    reach: sp.csr_array
    size: np.ndarray
    keys: np.ndarray
    own: np.ndarray | None
    n_blocks: int

    @classmethod
    def build(cls, kernel: "ExposureGraph", blocks: np.ndarray, n_blocks: int,
              only: np.ndarray | None = None) -> "_BlockSets":
        """The block sets of ``kernel``'s units when randomized node ``i`` is in block
        ``blocks[i]``; with ``only`` (some blocks: a stratum), those blocks alone (a unit
        whose own block is elsewhere has own block -1)."""
        kept = np.ones(n_blocks, dtype=bool)
        if only is not None:
            kept = np.zeros(n_blocks, dtype=bool)
            kept[only] = True
        nodes = np.flatnonzero(kept[blocks])
        indicator = sp.csr_array((np.ones(nodes.size), (nodes, blocks[nodes])), shape=(blocks.size, n_blocks))
        reach = sp.csr_array(kernel.neighbors @ indicator)
        reach.eliminate_zeros()
        reach.data[:] = 1
        reach.sort_indices()
        keys = _csr_keys(reach, n_blocks)
        own = None
        if kernel.own_index is not None:
            own = blocks[kernel.own_index]
            own = np.where(kept[own], own, -1)
        return cls(reach, np.diff(reach.indptr), keys, own, n_blocks)

    def contains(self, units: np.ndarray, blocks: np.ndarray) -> np.ndarray:
        """Whether ``blocks[p]`` is among unit ``units[p]``'s neighbours' blocks (never
        when it is -1: no block)."""
        return (_lookup(self.keys, _pair_keys(units, blocks, self.n_blocks)) >= 0) & (blocks >= 0)


def _pattern_probability(m, k, treated, control) -> np.ndarray:
    """With exactly ``k`` of ``m`` blocks treated, every set equally likely: P(these
    ``treated`` blocks all treated and these ``control`` blocks all untreated), for
    disjoint sets of the given sizes, ``[k]_t [m-k]_c / [m]_(t+c)`` (arrays broadcast)."""
    from scipy.special import gammaln

    m, k, t, c = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (m, k, treated, control)))
    ok = (t >= 0) & (c >= 0) & (t <= k) & (c <= m - k)
    t, c = np.where(ok, t, 0.0), np.where(ok, c, 0.0)
    log_p = (gammaln(k + 1) - gammaln(k - t + 1) + gammaln(m - k + 1) - gammaln(m - k - c + 1)
             - gammaln(m + 1) + gammaln(m - t - c + 1))
    return np.where(ok, np.exp(log_p), 0.0)


def _event_probability(randomization, treated, control) -> np.ndarray:
    """P(these ``treated`` blocks all treated and these ``control`` blocks all untreated)
    under the design's scheme, for disjoint sets of the given sizes."""
    if randomization.scheme == "bernoulli":
        t, c = np.asarray(treated), np.asarray(control)
        if t.ndim and t.dtype.kind in "iu" and c.dtype.kind in "iu":  # integer sizes: powers from a table
            top = int(max(t.max(initial=0), c.max(initial=0)))
            steps = np.arange(top + 1)
            return (randomization.p ** steps)[t] * ((1.0 - randomization.p) ** steps)[c]
        return randomization.p ** t.astype(float) * (1.0 - randomization.p) ** c.astype(float)
    t, c = np.asarray(treated), np.asarray(control)
    m, k = int(randomization.n_blocks), int(randomization.n_treated)
    if t.ndim and t.dtype.kind in "iu" and c.dtype.kind in "iu":  # integer sizes: log-factorials from a table
        from scipy.special import gammaln

        log_factorial = gammaln(np.arange(m + 2, dtype=float))  # log(j!) = gammaln(j + 1), at index j + 1

        def table(t, c):
            ok = (t >= 0) & (c >= 0) & (t <= k) & (c <= m - k)
            t, c = np.where(ok, t, 0), np.where(ok, c, 0)
            log_p = (log_factorial[k + 1] - log_factorial[k - t + 1] + log_factorial[m - k + 1]
                     - log_factorial[m - k - c + 1] - log_factorial[m + 1] + log_factorial[m - t - c + 1])
            return np.where(ok, np.exp(log_p), 0.0)

        t_top, c_top = int(t.max(initial=0)), int(c.max(initial=0))
        if t.min(initial=0) >= 0 and c.min(initial=0) >= 0 and (t_top + 1) * (c_top + 1) <= 4_000_000:
            grid = table(np.arange(t_top + 1)[:, None], np.arange(c_top + 1)[None, :])  # every (t, c) once
            return grid[t, c]
        return table(t, c)
    return _pattern_probability(m, k, t.astype(float), c.astype(float))


def _neighbour_overlap(sets: _BlockSets) -> tuple[sp.csr_array, np.ndarray]:
    """How many neighbour blocks every two units share (``reach reach^T``), with its
    sorted pair keys: computed once for all chunks of pairs."""
    overlap = sp.csr_array(sets.reach @ sets.reach.T)
    overlap.sort_indices()
    return overlap, _csr_keys(overlap, sets.reach.shape[0])


def _pair_event_tables(sets: _BlockSets, rows: np.ndarray, cols: np.ndarray, overlap=None):
    """For pairs ``(r, c)``, which of the four block sets (own r, neighbours of r, own
    c, neighbours of c: atoms 0-3) meet, and the sizes needed for unions (``overlap``:
    :func:`_neighbour_overlap`, computed here when not given)."""
    n_rows = sets.reach.shape[0]
    if np.array_equal(rows, cols):  # marginals: a unit's set meets itself
        shared = sets.size[rows].astype(np.int64)
    else:
        matrix, keys = _neighbour_overlap(sets) if overlap is None else overlap
        pos = _lookup(keys, _pair_keys(rows, cols, n_rows))
        shared = np.where(pos >= 0, matrix.data[np.maximum(pos, 0)], 0).astype(np.int64)
    if sets.own is None:
        false = np.zeros(rows.size, dtype=bool)
        own, has_r, has_c = (false,) * 5, false, false
    else:
        o_r, o_c = sets.own[rows], sets.own[cols]
        has_r, has_c = o_r >= 0, o_c >= 0
        own = (sets.contains(rows, o_r), sets.contains(cols, o_c), (o_r == o_c) & has_r, sets.contains(cols, o_r),
               sets.contains(rows, o_c))
    return _event_tables(sets.size[rows], sets.size[cols], shared, *own, has_own_r=has_r, has_own_c=has_c)


def _event_tables(size_r, size_c, shared, own_r_in_r, own_c_in_c, own_eq, own_r_in_c, own_c_in_r, *, has_own_r,
                  has_own_c):
    """The tables of :func:`_pair_event_tables` from the sets' sizes and relations: the
    neighbour sets' sizes and overlap, whether each unit has an own block (among the
    blocks considered), and whether it is the other's or lies in either neighbour set."""
    n = np.asarray(size_r).size
    has_own_r, has_own_c = np.broadcast_to(has_own_r, (n,)), np.broadcast_to(has_own_c, (n,))
    meets = {(0, 0): has_own_r, (1, 1): size_r > 0, (2, 2): has_own_c,
             (3, 3): size_c > 0, (0, 1): own_r_in_r, (0, 2): own_eq, (0, 3): own_r_in_c, (1, 2): own_c_in_r,
             (1, 3): shared > 0, (2, 3): own_c_in_c}
    meets.update({(b, a): v for (a, b), v in list(meets.items())})

    cache: dict[frozenset, np.ndarray] = {}

    def union(atoms: frozenset) -> np.ndarray:
        if atoms not in cache:
            cache[atoms] = _union(atoms)
        return cache[atoms]

    def _union(atoms: frozenset) -> np.ndarray:
        n1, n3 = 1 in atoms, 3 in atoms
        total = n1 * size_r + n3 * size_c - (n1 and n3) * shared
        if 0 in atoms:
            total = total + (has_own_r & ~((n1 & own_r_in_r) | (n3 & own_r_in_c)))
        if 2 in atoms:
            total = total + (has_own_c & ~((n1 & own_c_in_r) | (n3 & own_c_in_c) | ((0 in atoms) & own_eq)))
        return np.asarray(total, dtype=np.int64)

    return meets, union


def _conjunction(randomization, meets, union, treated: frozenset, control: frozenset, n: int) -> np.ndarray:
    """P(every block of the ``treated`` atoms treated and of the ``control`` atoms not)."""
    clash = np.zeros(n, dtype=bool)
    for a in treated:
        for b in control:
            clash |= meets[(a, b)]
    prob = _event_probability(randomization, union(treated) if treated else np.zeros(n, np.int64),
                              union(control) if control else np.zeros(n, np.int64))
    return np.where(clash, 0.0, prob)


def _term_atoms(term, offset: int) -> tuple[frozenset, frozenset]:
    """Treated and untreated atoms of a term; unit r's atoms are 0-1, unit c's 2-3."""
    atom = {"own": 0, "nbr": 1}
    treated = frozenset(atom[a] + offset for a, status in term if status == 1)
    control = frozenset(atom[a] + offset for a, status in term if status == 0)
    return treated, control


def _events_probability(layers, n: int, events_r, events_c) -> np.ndarray:
    """P(unit r in the condition of ``events_r`` and unit c in that of ``events_c``) for
    ``n`` pairs, by expanding both signed sums of terms (``events_c`` None: marginals).
    ``layers``: for each independently randomized stratum of blocks (one, unless the design
    is stratified), its scheme as a mixture ``[(weight, randomization)]``, the
    :func:`_pair_event_tables` on its blocks of the pairs ``subset`` (None: all) that touch
    them; a conjunction's probability is the product over strata of each one's mixture
    (1 for a stratum a pair does not touch: its sets there are empty)."""
    total = np.zeros(n)
    for sign_r, term_r in events_r:  # a few terms per condition
        t_r, c_r = _term_atoms(term_r, 0)
        for sign_c, term_c in (events_c if events_c is not None else ((1, ()),)):
            t_c, c_c = _term_atoms(term_c, 2)
            prob = np.ones(n)
            for mixture, (meets, union), subset in layers:
                size = n if subset is None else subset.size
                factor = sum(weight * _conjunction(randomization, meets, union, t_r | t_c, c_r | c_c, size)
                             for weight, randomization in mixture)
                if subset is None:
                    prob *= factor
                else:
                    prob[subset] *= factor
            total += sign_r * sign_c * prob
    return np.clip(total, 0.0, 1.0)


def _exact(kernel: "ExposureGraph", rule: Mapping, randomization, pairs: sp.csr_array, keys, overlap=None,
           sets: _BlockSets | None = None):
    """Exact marginal and joint probabilities of a mapping with ``events`` (``overlap``:
    the pairs' shared neighbour blocks when known, :func:`_neighbour_overlap` otherwise;
    a stratified design: every stratum's block sets, its factors multiplied)."""
    blocks = np.asarray(randomization.blocks, dtype=np.int64)
    if randomization.scheme == "stratified":
        strata = [(mixture, _BlockSets.build(kernel, blocks, randomization.n_blocks, members))
                  for members, mixture in randomization.strata_parts()]
        overlaps = [_neighbour_overlap(layer) for _, layer in strata] if keys else []
    else:
        strata = [([(1.0, randomization)], sets or _BlockSets.build(kernel, blocks, randomization.n_blocks))]
        overlaps = [overlap if overlap is not None else _neighbour_overlap(strata[0][1])] if keys else []
    # the units whose exposure reads a stratum's blocks (all of them: one stratum)
    touches = [None if len(strata) == 1 else (layer.size > 0) | (layer.own is not None and layer.own >= 0)
               for _, layer in strata]

    def layers(r: np.ndarray, c: np.ndarray, shared=None):
        out = []
        for i, (mixture, layer) in enumerate(strata):
            subset = None if touches[i] is None else np.flatnonzero(touches[i][r] | touches[i][c])
            r_s, c_s = (r, c) if subset is None else (r[subset], c[subset])
            out.append((mixture, _pair_event_tables(layer, r_s, c_s, None if shared is None else shared[i]), subset))
        return out

    units = np.arange(len(kernel.units))
    tables = layers(units, units)
    marginal = np.column_stack([_events_probability(tables, units.size, rule.events[c], None)
                                for c in rule.conditions])
    rows, cols = csr_rows(pairs), pairs.indices
    joint = {key: np.empty(rows.size) for key in keys}
    for start in range(0, rows.size if keys else 0, EXACT_PAIR_CHUNK):  # chunks of pairs bound the tables' memory
        r, c = rows[start:start + EXACT_PAIR_CHUNK], cols[start:start + EXACT_PAIR_CHUNK]
        tables = layers(r, c, overlaps)  # shared by every pair of conditions
        for k, l in keys:
            joint[(k, l)][start:start + r.size] = _events_probability(
                tables, r.size, rule.events[rule.conditions[k]], rule.events[rule.conditions[l]])
    return marginal, joint


EXACT_PAIR_CHUNK = 2_000_000  # pairs whose event tables (a dozen int64 arrays) are built at once


FACTOR_ABOVE_PAIRS = 1_000_000  # dependent class pairs beyond which exact one-hop joints are factored by block


def _segment_arange(counts: np.ndarray) -> np.ndarray:
    """``0, 1, ..., c - 1`` for each ``c`` of ``counts``, concatenated."""
    counts = np.asarray(counts, dtype=np.int64)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(starts.size, dtype=np.int64) - starts


def _factor_pairs(kernel: "ExposureGraph", rule: Mapping, randomization, keys, max_pairs: int | None):
    """Exact probabilities of a one-hop mapping with ``events`` in factored form: the
    class pairs sharing two or more blocks (and every class with itself) as stored pairs
    with exact joints, the rest per block and type (:class:`FactoredPairs`). Returns
    ``(marginal, joint, pairs, factored)``; time and memory linear in the graph plus the
    multiply-sharing pairs (``max_pairs`` bounds those, before they are formed)."""
    blocks = np.asarray(randomization.blocks, dtype=np.int64)
    n_blocks = int(randomization.n_blocks)
    sets = _BlockSets.build(kernel, blocks, n_blocks)
    n = len(kernel.units)
    roles = sp.csr_array(2 * sp.csr_array(sets.reach, dtype=np.int64))  # role bits: 1 own block, 2 a neighbour's
    own_in_nbr = np.zeros(n, dtype=bool)
    if sets.own is not None:
        roles = sp.csr_array(roles + sp.csr_array((np.ones(n, dtype=np.int64), (np.arange(n), sets.own)),
                                                  shape=roles.shape))
        own_in_nbr = sets.contains(np.arange(n), sets.own)
    roles.sort_indices()
    classes, read = csr_rows(roles), roles.indices.astype(np.int64)
    width = np.diff(roles.indptr).astype(np.int64)  # blocks each class reads
    code = (sets.size[classes].astype(np.int64) * 2 + own_in_nbr[classes]) * 4 + roles.data
    type_codes, types = np.unique(code, return_inverse=True)
    types = types.ravel()
    n_types = type_codes.size

    # pairs sharing two or more blocks: classes grouped by the pairs of blocks they read
    per_class = width * (width - 1) // 2
    if max_pairs is not None:
        _check_pairs(int(per_class.sum()), max_pairs)
    position = np.arange(classes.size, dtype=np.int64) - roles.indptr[classes]
    later = width[classes] - 1 - position
    first = np.repeat(np.arange(classes.size, dtype=np.int64), later)
    second = first + 1 + _segment_arange(later)
    block_pair = _pair_keys(read[first], read[second], n_blocks)
    order = np.argsort(block_pair, kind="stable")
    block_pair, owner = block_pair[order], classes[first[order]]
    starts = np.flatnonzero(np.r_[True, block_pair[1:] != block_pair[:-1]]) if block_pair.size else block_pair
    sizes = np.diff(np.r_[starts, block_pair.size])
    if max_pairs is not None:
        _check_pairs(int(np.sum(sizes.astype(np.float64) ** 2)), max_pairs)
    member_size = np.repeat(sizes, sizes)
    member_start = np.repeat(starts, sizes)
    rows = np.repeat(owner, member_size)
    cols = owner[np.repeat(member_start, member_size) + _segment_arange(np.repeat(sizes, sizes))]
    diagonal = np.arange(n, dtype=np.int64)
    pairs = sp.csr_array((np.ones(rows.size + n, dtype=np.int32), (np.r_[rows, diagonal], np.r_[cols, diagonal])),
                         shape=(n, n))
    pairs.sum_duplicates()
    pairs.sort_indices()
    pairs.data[:] = 1

    # each stored pair's shared blocks, found from the side that reads fewer
    p_rows, p_cols = csr_rows(pairs), pairs.indices.astype(np.int64)
    swap = width[p_rows] > width[p_cols]
    small, large = np.where(swap, p_cols, p_rows), np.where(swap, p_rows, p_cols)
    pair_of = np.repeat(np.arange(p_rows.size, dtype=np.int64), width[small])
    incidence = roles.indptr[small][pair_of] + _segment_arange(width[small])
    found = _lookup(_pair_keys(classes, read, n_blocks), _pair_keys(large[pair_of], read[incidence], n_blocks))
    hit = found >= 0
    pair_of, type_small, type_large = pair_of[hit], types[incidence[hit]], types[found[hit]]
    flip = swap[pair_of]
    tau_r, tau_c = np.where(flip, type_large, type_small), np.where(flip, type_small, type_large)
    both_nbr = (roles.data[incidence[hit]] & 2).astype(bool) & (roles.data[found[hit]] & 2).astype(bool)
    overlap = sp.csr_array((both_nbr.astype(np.int64), (p_rows[pair_of], p_cols[pair_of])), shape=(n, n))
    overlap.sum_duplicates()
    overlap.sort_indices()
    marginal, joint = _exact(kernel, rule, randomization, pairs, keys, (overlap, _csr_keys(overlap, n)), sets)

    # one-block joints of every pair of types that meet in a block
    meet = sp.csr_array((np.ones(classes.size), (types, read)), shape=(n_types, n_blocks))  # types x blocks
    meet = sp.csr_array(meet @ meet.T)
    meet.sort_indices()
    t_r, t_c = csr_rows(meet), meet.indices.astype(np.int64)
    type_pairs = _pair_keys(t_r, t_c, n_types)
    role_r, role_c = type_codes[t_r] % 4, type_codes[t_c] % 4
    tables = _event_tables(type_codes[t_r] // 8, type_codes[t_c] // 8, ((role_r & 2) & (role_c & 2)) // 2,
                           ((type_codes[t_r] // 4) % 2).astype(bool), ((type_codes[t_c] // 4) % 2).astype(bool),
                           ((role_r & 1) & (role_c & 1)).astype(bool), ((role_r & 1) & (role_c >> 1)).astype(bool),
                           ((role_c & 1) & (role_r >> 1)).astype(bool), has_own_r=sets.own is not None,
                           has_own_c=sets.own is not None)
    layers = [([(1.0, randomization)], tables, None)]
    type_joint = {(k, l): _events_probability(layers, t_r.size, rule.events[rule.conditions[k]],
                                              rule.events[rule.conditions[l]]) for k, l in keys}
    representative = np.zeros(n_types, dtype=np.int64)
    representative[types] = classes
    factored = FactoredPairs(classes, read, types, n_blocks, marginal[representative], type_pairs, type_joint,
                             (pair_of, _lookup(type_pairs, _pair_keys(tau_r, tau_c, n_types))))
    return marginal, joint, pairs, factored


def _exact_by_sets(kernel: "ExposureGraph", rule: Mapping, randomization, pairs: sp.csr_array, keys):
    """Exact probabilities of a mapping with ``events`` under any block design, for
    events over the unit's own block, its neighbours' blocks and (two hops) the blocks
    of units two hops away, which may overlap: every union of block sets that a term
    needs is counted directly, row by row, on sparse indicator matrices."""
    blocks = np.asarray(randomization.blocks, dtype=np.int64)
    indicator = group_indicator(blocks, randomization.n_blocks).T
    atoms = {"nbr": sp.csr_array(sp.csr_array(kernel.neighbors, dtype=np.float64) @ indicator)}
    if kernel.own_index is not None:
        atoms["own"] = sp.csr_array(sp.eye_array(len(kernel.units), format="csr")[:, kernel.own_index] @ indicator)
    if kernel.two_hop is not None:
        atoms["nbr2"] = sp.csr_array(sp.csr_array(kernel.two_hop, dtype=np.float64) @ indicator)
    for matrix in atoms.values():
        matrix.data[:] = 1.0
    mean_set = sum(m.nnz for m in atoms.values()) / max(len(kernel.units), 1)
    if pairs.nnz * mean_set * len(keys) > MAX_DP_WORK:  # many dependent pairs: Monte Carlo is cheaper
        return None

    def probability(rows, cols, events_r, events_c) -> np.ndarray:
        cache: dict = {}

        def union(group: frozenset) -> sp.csr_array:
            if group not in cache:
                total = sp.csr_array((rows.size, randomization.n_blocks))
                for unit, name in group:
                    total = total + atoms[name][rows if unit == 0 else cols]
                total = sp.csr_array(total)
                total.data[:] = 1.0
                cache[group] = total
            return cache[group]

        out = np.zeros(rows.size)
        for sign_r, term_r in events_r:
            for sign_c, term_c in (events_c if events_c is not None else ((1, ()),)):
                literals = [((0, a), st) for a, st in term_r] + [((1, a), st) for a, st in term_c]
                treated = union(frozenset(atom for atom, st in literals if st == 1))
                control = union(frozenset(atom for atom, st in literals if st == 0))
                clash = np.diff(sp.csr_array(treated.multiply(control)).indptr) > 0
                prob = _event_probability(randomization, np.diff(treated.indptr), np.diff(control.indptr))
                out += sign_r * sign_c * np.where(clash, 0.0, prob)
        return np.clip(out, 0.0, 1.0)

    units = np.arange(len(kernel.units))
    marginal = np.column_stack([probability(units, units, rule.events[c], None) for c in rule.conditions])
    rows, cols = csr_rows(pairs), pairs.indices
    joint = {(k, l): probability(rows, cols, rule.events[rule.conditions[k]], rule.events[rule.conditions[l]])
             for k, l in keys}
    return marginal, joint


MAX_COUNT_WORK = 5e7  # beyond this many (pair-signature x count) terms, exact-by-counts defers to Monte Carlo


def _count_codes(rule: Mapping, degree: int) -> np.ndarray:
    """``codes[own, c]``: the condition of a unit with ``degree`` neighbours, ``c`` of them
    treated, by the mapping's own rule."""
    c = np.arange(degree + 1)
    own = np.repeat([[0], [1]], degree + 1, axis=1)
    counts = Counts(own=own, n_neighbors=np.full(own.shape, degree), n_treated=np.broadcast_to(c, own.shape))
    return np.asarray(rule.codes(counts)).reshape(2, degree + 1)


def _count_distribution(randomization, draws: int, treated_left: int | None, pool: int | None) -> np.ndarray:
    """P(c of ``draws`` other units treated), c = 0..draws: binomial under Bernoulli,
    hypergeometric (``treated_left`` of ``pool`` remaining units treated) under complete."""
    from scipy import stats as scipy_stats

    c = np.arange(draws + 1)
    if randomization.scheme == "bernoulli":
        return scipy_stats.binom.pmf(c, draws, randomization.p)
    return scipy_stats.hypergeom.pmf(c, pool, treated_left, draws)


def _own_cases(randomization, has_own: bool, n_fixed: int = 1):
    """``(own statuses, their probability, treated left, pool left)`` for ``n_fixed`` units
    whose own arms are conditioned on (none on the unit side of a bipartite graph)."""
    import itertools

    if not has_own:
        yield (0,) * n_fixed, 1.0, randomization.n_treated, randomization.n_blocks
        return
    m, k = randomization.n_blocks, randomization.n_treated
    for statuses in itertools.product((0, 1), repeat=n_fixed):
        t = sum(statuses)
        prob = float(_event_probability(randomization, t, n_fixed - t))  # this one pattern of own arms
        if randomization.scheme == "bernoulli":
            yield statuses, prob, None, None
        else:
            yield statuses, prob, k - t, m - n_fixed


def _exact_by_counts(kernel: "ExposureGraph", rule: Mapping, randomization, pairs: sp.csr_array, keys):
    """Exact probabilities of a counts-only mapping when every randomized node is its own
    block: a unit's treated-neighbour count is binomial (Bernoulli) or hypergeometric
    (complete); a pair's counts share the common neighbours (and each other's arm when
    adjacent). Work is grouped by degree (marginals) and by pair signature (joints)."""
    adjacency = sp.csr_array(kernel.neighbors, dtype=np.int64)
    adjacency.data[:] = 1
    degree = np.diff(adjacency.indptr)
    has_own = kernel.own_index is not None
    n_cond = len(rule.conditions)
    marginal = np.zeros((len(kernel.units), n_cond))
    tables = {}
    for d in np.unique(degree):  # a loop over distinct degrees
        codes = tables.setdefault(int(d), _count_codes(rule, int(d)))
        probs = np.zeros(n_cond)
        for (own,), weight, left, pool in _own_cases(randomization, has_own):
            dist = _count_distribution(randomization, int(d), left, pool)
            probs += weight * np.bincount(codes[own], weights=dist, minlength=n_cond)
        marginal[degree == d] = probs
    rows, cols = csr_rows(pairs), pairs.indices
    joint = {key: np.zeros(rows.size) for key in keys}
    off = rows != cols
    if not keys or not off.any():
        return marginal, joint
    shared_matrix = sp.csr_array(adjacency @ adjacency.T)
    shared_matrix.sort_indices()
    n = adjacency.shape[0]
    query = _pair_keys(rows[off], cols[off], n)
    pos = _lookup(_csr_keys(shared_matrix, n), query)
    shared = np.where(pos >= 0, shared_matrix.data[np.maximum(pos, 0)], 0)
    adjacent = (_lookup(_csr_keys(adjacency, n), query) >= 0).astype(np.int64) if has_own else np.zeros(query.size, np.int64)
    only_r = degree[rows[off]] - shared - adjacent
    only_c = degree[cols[off]] - shared - adjacent
    signature = np.column_stack([only_r, shared, only_c, adjacent])
    unique, inverse = np.unique(signature, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    work = float(np.sum((unique[:, 1] + 1) * (unique[:, 0] + 1) * (unique[:, 2] + 1)))
    if randomization.scheme == "complete" and work > MAX_COUNT_WORK:
        return None
    values = {key: np.zeros(len(unique)) for key in keys}
    for index, (a, s_, b, adj) in enumerate(unique):  # a loop over pair signatures
        code_r = tables.setdefault(int(a + s_ + adj), _count_codes(rule, int(a + s_ + adj)))
        code_c = tables.setdefault(int(b + s_ + adj), _count_codes(rule, int(b + s_ + adj)))
        for (own_r, own_c), weight, left, pool in _own_cases(randomization, has_own, 2):
            c_r_extra, c_c_extra = adj * own_c, adj * own_r
            if randomization.scheme == "bernoulli":
                p_s = _count_distribution(randomization, int(s_), None, None)
                p_a = _count_distribution(randomization, int(a), None, None)
                p_b = _count_distribution(randomization, int(b), None, None)
                # P(r in k, c in l) = sum_x P(S=x) [sum_y P(A=y) 1(k)] [sum_z P(B=z) 1(l)]
                for x in range(int(s_) + 1):
                    in_r = np.bincount(code_r[own_r, x + np.arange(a + 1) + c_r_extra], weights=p_a,
                                       minlength=n_cond)
                    in_c = np.bincount(code_c[own_c, x + np.arange(b + 1) + c_c_extra], weights=p_b,
                                       minlength=n_cond)
                    for k, l in keys:
                        values[(k, l)][index] += weight * p_s[x] * in_r[k] * in_c[l]
            else:
                from scipy import stats as scipy_stats

                rest = pool - s_ - a - b
                x, y, z = np.meshgrid(np.arange(s_ + 1), np.arange(a + 1), np.arange(b + 1), indexing="ij")
                # multivariate hypergeometric: x of s, y of a, z of b and the rest of `rest` treated
                log_p = (scipy_stats.hypergeom.logpmf(x, pool, left, s_)
                         + scipy_stats.hypergeom.logpmf(y, pool - s_, left - x, a)
                         + scipy_stats.hypergeom.logpmf(z, pool - s_ - a, left - x - y, b))
                with np.errstate(invalid="ignore"):
                    p = np.nan_to_num(np.where(left - x - y - z <= rest, np.exp(log_p), 0.0))
                cond_r = code_r[own_r, x + y + c_r_extra]
                cond_c = code_c[own_c, x + z + c_c_extra]
                for k, l in keys:
                    values[(k, l)][index] += weight * np.sum(p * (cond_r == k) * (cond_c == l))
    for key in keys:
        joint[key][off] = values[key][inverse]
    return marginal, joint


MAX_EXACT_DEGREE = 400  # above this degree, exact-by-weighted-counts defers to Monte Carlo
MAX_DP_WORK = 3e8  # cell updates of the dynamic programme beyond which it defers to Monte Carlo
_DP_CELLS = 2e7  # dynamic-programming cells per chunk: bounds memory


def _padded(matrix: sp.csr_array) -> tuple[np.ndarray, np.ndarray]:
    """Each row's stored columns and values, padded to the longest row (value 0 there)."""
    lengths = np.diff(matrix.indptr)
    width = int(lengths.max()) if lengths.size else 0
    columns = np.zeros((matrix.shape[0], width), dtype=np.int64)
    values = np.zeros((matrix.shape[0], width), dtype=np.int64)
    position = np.arange(matrix.nnz) - np.repeat(matrix.indptr[:-1], lengths)
    rows = csr_rows(matrix)
    columns[rows, position] = matrix.indices
    values[rows, position] = matrix.data
    return columns, values


def _slot_dp(randomization, weights_a: np.ndarray, weights_b: np.ndarray, real: np.ndarray, size_a: int,
             size_b: int) -> np.ndarray:
    """For each row, the distribution of ``(sum_s w_a Z_s, sum_s w_b Z_s)`` over its real
    slots (blocks): probabilities under Bernoulli, shape ``(P, 1, A, B)``; under complete
    randomization the number of subsets of each treated count ``j`` instead,
    ``(P, J + 1, A, B)``."""
    rows, n_slots = weights_a.shape
    complete = randomization.scheme == "complete"
    depth = n_slots + 1 if complete else 1
    state = np.zeros((rows, depth, size_a, size_b))
    state[:, 0, 0, 0] = 1.0
    grid_a, grid_b = np.arange(size_a), np.arange(size_b)
    for slot in range(n_slots):  # a loop over block slots; every row at once
        wa, wb = weights_a[:, slot], weights_b[:, slot]
        index_a = grid_a[None, :] - wa[:, None]
        index_b = grid_b[None, :] - wb[:, None]
        moved = np.take_along_axis(state, np.clip(index_a, 0, None)[:, None, :, None], axis=2)
        moved = moved * (index_a >= 0)[:, None, :, None]
        moved = np.take_along_axis(moved, np.clip(index_b, 0, None)[:, None, None, :], axis=3)
        moved = moved * (index_b >= 0)[:, None, None, :]
        if complete:  # treated: one more treated block
            moved = np.concatenate([np.zeros_like(moved[:, :1]), moved[:, :-1]], axis=1)
            updated = state + moved
        else:
            updated = (1.0 - randomization.p) * state + randomization.p * moved
        state = np.where(real[:, slot][:, None, None, None], updated, state)
    return state


def _subset_weights(randomization, n_real: np.ndarray, pool: np.ndarray, left: np.ndarray, depth: int) -> np.ndarray:
    """Complete randomization: probability of one specific set of ``j`` treated among a
    row's ``n_real`` slots and the rest untreated, ``left`` of ``pool`` blocks treated."""
    j = np.arange(depth)[None, :]
    return _pattern_probability(pool[:, None], left[:, None], j, n_real[:, None] - j)


def _exact_by_weighted_counts(kernel: "ExposureGraph", rule: Mapping, randomization, pairs: sp.csr_array, keys):
    """Exact probabilities of a counts-only mapping under Bernoulli or complete
    randomization of clusters: a unit's treated-neighbour count is a weighted sum of its
    touched clusters' draws (weights: its neighbours in each), a pair's two counts share
    the clusters both touch. Distributions by dynamic programming over clusters, every
    unit (pair) of a chunk at once, conditioned on the own clusters' arms."""
    blocks = np.asarray(randomization.blocks, dtype=np.int64)
    n_blocks = randomization.n_blocks
    weights = sp.csr_array(sp.csr_array(kernel.neighbors, dtype=np.int64) @ group_indicator(blocks, n_blocks).T)
    weights = sp.csr_array(weights.astype(np.int64))
    weights.eliminate_zeros()
    weights.sort_indices()
    degree = np.asarray(np.diff(sp.csr_array(kernel.neighbors).indptr))
    if degree.max(initial=0) > MAX_EXACT_DEGREE:
        return None
    has_own = kernel.own_index is not None
    own = blocks[kernel.own_index] if has_own else np.full(len(kernel.units), -1)
    n_cond = len(rule.conditions)
    top = int(degree.max(initial=0))
    table = np.zeros((top + 1, 2, top + 1), dtype=np.int64)
    for d in np.unique(degree):  # a loop over distinct degrees
        table[d, :, : d + 1] = _count_codes(rule, int(d))
    w_flat = _csr_keys(weights, n_blocks)

    def weight_of(units: np.ndarray, block: np.ndarray) -> np.ndarray:
        pos = _lookup(w_flat, _pair_keys(units, np.maximum(block, 0), n_blocks))
        return np.where((pos >= 0) & (block >= 0), weights.data[np.maximum(pos, 0)], 0)

    def own_cases(own_blocks: list[np.ndarray]):
        """(statuses per own block slot, probability, pool, left) per row."""
        import itertools

        distinct = [own_blocks[0]] if len(own_blocks) == 1 else own_blocks
        same = np.zeros(own_blocks[0].shape, bool) if len(own_blocks) == 1 else own_blocks[0] == own_blocks[1]
        for statuses in itertools.product((0, 1), repeat=len(distinct) if has_own else 0):
            statuses = statuses or (0,) * len(own_blocks)
            if not has_own:
                yield statuses, np.ones(same.shape), np.full(same.shape, n_blocks), \
                    np.full(same.shape, randomization.n_treated or 0)
                continue
            valid = ~same | (statuses[0] == statuses[-1])
            n_own = np.where(same, 1, len(distinct))
            treated = np.where(same, statuses[0], sum(statuses))
            prob = _event_probability(randomization, treated, n_own - treated)
            if randomization.scheme == "bernoulli":
                pool = left = np.zeros(same.shape)
            else:
                pool, left = n_blocks - n_own, randomization.n_treated - treated
            yield statuses, np.where(valid, prob, 0.0), pool, left

    def distribution(sub_a: sp.csr_array, sub_b: sp.csr_array | None, size_a, size_b):
        union = sub_a if sub_b is None else sp.csr_array(sub_a + sub_b)
        union.sort_indices()
        columns, _ = _padded(union)
        real = np.zeros(columns.shape, bool)
        lengths = np.diff(union.indptr)
        real[np.arange(columns.shape[1])[None, :] < lengths[:, None]] = True
        rows = np.repeat(np.arange(union.shape[0])[:, None], columns.shape[1], axis=1)
        wa = np.asarray(sub_a[rows.ravel(), columns.ravel()]).reshape(columns.shape) if columns.size else columns
        wb = (np.asarray(sub_b[rows.ravel(), columns.ravel()]).reshape(columns.shape)
              if sub_b is not None and columns.size else np.zeros_like(columns))
        wa, wb = np.where(real, wa, 0), np.where(real, wb, 0)
        return _slot_dp(randomization, wa, wb, real, size_a, size_b), lengths

    def rest_matrix(units: np.ndarray, drop: list[np.ndarray]) -> sp.csr_array:
        """Rows of ``weights`` for ``units`` with the given own blocks removed."""
        sub = sp.csr_array(weights[units])
        for block in drop:
            mask = sp.csr_array((np.ones(units.size), (np.arange(units.size), np.maximum(block, 0))),
                                shape=sub.shape)
            keep_own = block >= 0
            mask = sp.csr_array(mask.multiply(keep_own[:, None]))
            sub = sp.csr_array(sub - sub.multiply(mask.astype(bool)))
            sub.eliminate_zeros()
        return sub

    def chunks(n_rows: int, size: int):
        step = max(1, int(_DP_CELLS // max(size, 1)))
        return (np.arange(s, min(s + step, n_rows)) for s in range(0, n_rows, step))

    units = np.arange(len(kernel.units))
    marginal = np.zeros((units.size, n_cond))
    max_slots = int(np.diff(weights.indptr).max(initial=0)) + 1
    depth = max_slots + 1 if randomization.scheme == "complete" else 1
    off_pairs = int(np.sum(csr_rows(pairs) != pairs.indices)) if keys else 0
    joint_depth = 2 * max_slots + 1 if randomization.scheme == "complete" else 1
    work = units.size * max_slots * depth * (top + 1) + off_pairs * 2 * max_slots * joint_depth * (top + 1) ** 2
    if work > MAX_DP_WORK:  # e.g. large clusters with many dependent pairs: Monte Carlo is cheaper
        return None
    for part in chunks(units.size, depth * (top + 1)):  # chunks of units bound the memory
        sub = rest_matrix(part, [own[part]])
        state, lengths = distribution(sub, None, top + 1, 1)
        for (s,), prob, pool, left in own_cases([own[part]]):
            counts = np.arange(top + 1)[None, :] + s * weight_of(part, own[part])[:, None]
            codes = table[degree[part][:, None], s, np.minimum(counts, top)]
            codes = np.where(counts <= degree[part][:, None], codes, -1)
            if randomization.scheme == "complete":
                mass = np.einsum("pjab,pj->pa", state, _subset_weights(randomization, lengths, pool, left,
                                                                          state.shape[1]))
            else:
                mass = state[:, 0, :, 0]
            for k in range(n_cond):
                marginal[part, k] += prob * np.sum(mass * (codes == k), axis=1)
    rows, cols = csr_rows(pairs), pairs.indices
    joint = {key: np.zeros(rows.size) for key in keys}
    off = np.flatnonzero(rows != cols)
    if not keys or off.size == 0:
        return marginal, joint
    for part in chunks(off.size, joint_depth * (top + 1) ** 2):  # chunks of pairs bound the memory
        r, c = rows[off[part]], cols[off[part]]
        own_r, own_c = own[r], own[c]
        sub_a = rest_matrix(r, [own_r, own_c])
        sub_b = rest_matrix(c, [own_r, own_c])
        sub_a = sp.csr_array(sub_a + 0 * sub_b)  # both on the union's pattern
        sub_b = sp.csr_array(sub_b + 0 * sub_a)
        state, lengths = distribution(sub_a, sub_b, top + 1, top + 1)
        for (s_r, s_c), prob, pool, left in own_cases([own_r, own_c]):
            count_r = np.arange(top + 1)[None, :] + s_r * weight_of(r, own_r)[:, None] \
                + s_c * np.where(own_c != own_r, weight_of(r, own_c), 0)[:, None]
            count_c = np.arange(top + 1)[None, :] + s_c * weight_of(c, own_c)[:, None] \
                + s_r * np.where(own_c != own_r, weight_of(c, own_r), 0)[:, None]
            code_r = np.where(count_r <= degree[r][:, None], table[degree[r][:, None], s_r, np.minimum(count_r, top)], -1)
            code_c = np.where(count_c <= degree[c][:, None], table[degree[c][:, None], s_c, np.minimum(count_c, top)], -1)
            if randomization.scheme == "complete":
                mass = np.einsum("pjab,pj->pab", state, _subset_weights(randomization, lengths, pool, left,
                                                                           state.shape[1]))
            else:
                mass = state[:, 0]
            for k, l in keys:
                joint[(k, l)][off[part]] += prob * np.einsum("pab,pa,pb->p", mass, code_r == k, code_c == l)
    return marginal, joint


PROBABILITY_METHODS = ("auto", "exact", "monte-carlo")
EXACT_POSITIVITY_FLOOR = 1e-6  # a chance below one in a million is, for weighting, none


def probabilities(
    graph: SocialGraph | BipartiteGraph,
    mapping: str | Mapping,
    *,
    design=None,
    draws: np.ndarray | pd.DataFrame | None = None,
    n_draws: int = 1_000,
    seed=None,
    chunk: int = 100,
    threshold_q: float | None = None,
    hops: int = 1,
    correction: str = "none",
    joint: str | None = "dependent",
    positivity_floor: float | None = None,
    method: str = "auto",
    clusters: np.ndarray | None = None,
    control: str | None = None,
    grouped: bool | None = None,
    max_pairs: int | None = MAX_DEPENDENT_PAIRS,
    factored: bool | None = None,
) -> ExposureProbabilities:
    """Probability of each exposure condition for each unit under a design.

    Exact where the design allows it (``method="auto"`` or ``"exact"``): designs with
    ``randomization()`` (Bernoulli or complete randomization of units or of clusters),
    with every built-in mapping (``as4`` with one or two hops, ``threshold`` and
    ``bipartite`` with any thresholds) and any ``Mapping`` with ``events`` or
    ``counts_only``. Conditions written as events on block sets have closed forms in the
    sizes of those sets (hypergeometric under complete randomization); treated-neighbour
    counts are binomial / hypergeometric under individual designs and weighted sums of
    cluster draws (a dynamic programme) under cluster designs. Where that would cost more
    than Monte Carlo (very high degrees, many dependent pairs), ``auto`` uses Monte
    Carlo and says so in ``notes``. Stratified cluster designs (complete randomization
    within each stratum) are exact for one-hop mappings with ``events``: products over
    strata. Otherwise by
    Monte Carlo over ``design.draw`` (``n_draws`` draws in chunks of ``chunk``) or from a
    matrix of ``draws`` made elsewhere (one column per draw, rows in the graph's
    randomized-node order; a DataFrame has one row per draw and one column per unit id).

    ``joint`` says which pairs get joint probabilities: ``"dependent"`` (units whose
    exposures share a randomization block; other pairs are treated as independent,
    which is exact under Bernoulli designs), ``"all"`` (every pair: small graphs, and
    the convention of Aronow and Samii's reference implementation) or ``None``
    (marginals only). With supplied ``draws`` the blocks are found from the draws (nodes
    whose arms agree in every draw move together) unless ``clusters`` (one label per
    randomized node) is given. ``correction="add-one"`` uses ``(count + 1) / (R + 1)``
    (Monte Carlo only), the reference implementation's convention. Positivity is checked
    on the raw counts: units whose chance of a condition is below ``positivity_floor``
    (default: no draw at all, or below :data:`EXACT_POSITIVITY_FLOOR` for exact ones) are
    counted in a :class:`PositivityWarning`,
    and a control condition no unit can reach is an error. Joint probabilities are kept
    for what contrasts with ``control`` (default: the mapping's) need.

    ``grouped`` (``joint="dependent"`` on a design that randomizes blocks): units with the
    same own block and the same number of neighbours in each block have the same exposure
    in every draw; grouped, the pairs and joints are computed between such classes
    (:class:`ExposureProbabilities`), which keeps large clusters linear. ``None`` (default)
    groups when the unit pairs would number more than :data:`GROUP_ABOVE_PAIRS`.

    ``max_pairs`` (default :data:`MAX_DEPENDENT_PAIRS`; None: no limit): more stored pairs
    than this (an upper bound, counted before any is formed) is an error that says what to
    do instead, not a process killed for memory.

    ``factored`` (exact probabilities of a one-hop mapping with ``events``,
    ``joint="dependent"``, a design that randomizes blocks independently or completely):
    pairs that share exactly one block are not stored; their joint probabilities depend
    only on each unit's type at that block, so a variance sums them per block and type
    (:class:`FactoredPairs`), in time and memory linear in the graph; only pairs sharing
    two or more blocks are stored (and bounded by ``max_pairs``). ``None`` (default)
    factors when units are grouped into classes (``grouped``) and the dependent pairs
    would number more than :data:`FACTOR_ABOVE_PAIRS`.
    Estimates and variances are the same either way (to rounding).

    >>> from spillover import synth
    >>> from spillover.design import IndividualDesign
    >>> g = synth.social_graph(200, seed=1)
    >>> probs = probabilities(g, "as4", design=IndividualDesign(g.nodes, 0.5, complete=False))
    >>> probs.method
    'exact: Bernoulli(0.5) over 200 blocks'
    """
    rule = get_mapping(mapping, threshold_q=threshold_q, hops=hops, bipartite_graph=isinstance(graph, BipartiteGraph))
    kernel = ExposureGraph.build(graph, rule.hops)
    n_cond = len(rule.conditions)
    n_units = len(kernel.units)
    units = kernel.units
    if method not in PROBABILITY_METHODS:
        raise InputError(f"probability method {method!r} is not one of {list(PROBABILITY_METHODS)}.")
    if correction not in ("none", "add-one"):
        raise InputError(f"prob correction must be 'none' or 'add-one', not {correction!r}.")
    if joint not in ("dependent", "all", None):
        raise InputError(f"joint must be 'dependent', 'all' or None, not {joint!r}.")
    notes: list[str] = []
    randomization = None
    matrix = None
    if draws is not None:
        if design is not None:
            raise InputError("give the design or its draws, not both.")
        matrix = _draws_matrix(draws, kernel.randomized)
        if matrix.shape[1] < 1:
            raise InputError("draws: no draw at all; exposure probabilities need at least one.")
        randomization, found = _randomization_from_draws(matrix, clusters)
        notes.append(found)
    elif design is None:
        raise InputError("exposure probabilities need a design or a matrix of draws.")
    else:
        randomization = design.randomization() if hasattr(design, "randomization") else None
    # a mixture of randomizations (RGCR: a clustering drawn, then its clusters): exact
    # probabilities are the average of each randomization's
    mixture = design.randomizations() if draws is None and hasattr(design, "randomizations") else None
    individual = randomization is not None and randomization.n_blocks == len(kernel.randomized) \
        and np.array_equal(randomization.blocks, np.arange(randomization.n_blocks))
    by_counts = rule.events is None and rule.counts_only
    two_hop_events = rule.hops == 2 and rule.events is not None
    # stratified designs: products over strata of the one-hop event tables (not the counts engines)
    stratified = randomization is not None and randomization.scheme == "stratified"
    exact_possible = (draws is None and (randomization is not None or mixture is not None) and correction == "none"
                      and (rule.events is not None or by_counts)
                      and not (stratified and (rule.events is None or two_hop_events)))
    if method == "exact" and not exact_possible:
        why = ("draws were supplied" if draws is not None else
               "the design has no closed form (saturation or custom)"
               if randomization is None and mixture is None else
               "a stratified design has no closed form for this mapping (one-hop mappings with events have one)"
               if stratified and (rule.events is None or two_hop_events) else
               f"the mapping {rule.name!r} has neither events nor counts_only" if not (rule.events or by_counts) else
               "add-one applies to Monte Carlo counts only")
        raise InputError(f"exact exposure probabilities are not available here: {why}; use method='monte-carlo'.")
    use_exact = exact_possible and method != "monte-carlo"
    factorable = use_exact and joint == "dependent" and mixture is None and rule.events is not None \
        and not two_hop_events and not stratified
    if factored and not factorable:
        raise InputError("factored pairs need exact probabilities (a design with randomization()) of a one-hop "
                         "mapping with events, with joint='dependent'; use factored=None.")
    # which randomized nodes move together: the design says so (clusters of a stratified
    # or saturation design too), or the draws do
    blocks = np.asarray(randomization.blocks) if randomization is not None else getattr(design, "clusters", None)
    groups = None
    if joint == "dependent" and blocks is not None and grouped is not False:
        groups = _classes(kernel, np.asarray(blocks, dtype=np.int64), force=bool(grouped),
                          sets=rule.events is not None)
        if groups is not None:  # one representative unit per class carries the computation
            _, first = np.unique(groups, return_index=True)
            kernel = kernel.restricted(first)
            notes.append(f"{n_units:,} units grouped into {first.size:,} classes with the same exposure in every draw: "
                         "joint probabilities between classes, variance sums linear in the graph")
    if joint == "dependent" and mixture is not None:
        if max_pairs is not None:  # every clustering's pairs are formed before their union
            _check_pairs(sum(_pairs_bound(kernel.reach(r.blocks)) for r in mixture), max_pairs)
        pairs = _union_of_patterns(kernel.dependence(r.blocks) for r in mixture)
        notes.append(f"pairs that share no cluster in any of the {len(mixture)} clusterings are treated as "
                     "independent; through the draw of the clustering they are weakly dependent, a "
                     "between-clusterings term the variance leaves out (joint='all' computes every pair)")
    elif joint == "dependent":
        if factorable and factored is not False and (factored or (
                groups is not None and _pairs_bound(kernel.reach(blocks)) > FACTOR_ABOVE_PAIRS)):
            pairs = None  # formed with the factored probabilities
            notes.append("pairs that share one randomization block are summed per block and type of unit "
                         "(factored): variance sums linear in the graph")
        else:
            pairs = kernel.dependence(blocks, max_pairs)
        if randomization is not None and randomization.scheme in ("complete", "stratified"):
            notes.append("pairs that share no randomization block are treated as independent; under complete "
                         f"randomization{' within strata (stratified)' if stratified else ''} they are slightly "
                         "negatively dependent (joint='all' / --joint all computes every pair)")
        elif randomization is None:
            notes.append("pairs that share no randomization cluster are treated as independent (exact when "
                         "clusters or units are randomized independently; an approximation for stratified "
                         "and saturation designs)")
    elif joint == "all":
        if max_pairs is not None:
            _check_pairs(n_units**2, max_pairs)
        pairs = sp.csr_array(np.ones((n_units, n_units), dtype=np.int32))
    else:  # marginals only: each unit with itself, so a variance still has its diagonal terms
        pairs = sp.csr_array(sp.eye_array(n_units, dtype=np.int32, format="csr"))
        notes.append("no joint probabilities (joint=None): a variance from these treats every pair of units as "
                     "independent, too small where units share a randomization unit; use joint='dependent'")
    if control is not None and control not in rule.conditions:
        raise InputError(f"control condition {control!r} is not one of {list(rule.conditions)}.")
    control = rule.conditions.index(rule.control if control is None else control)
    # the variance of a contrast with the control needs (k, k) and (k, control) only
    keys = [(k, k) for k in range(n_cond)] + [(k, control) for k in range(n_cond) if k != control]
    exact_values = None
    factored_pairs = None
    if pairs is None:
        *exact_values, pairs, factored_pairs = _factor_pairs(kernel, rule, randomization, keys, max_pairs)
    elif use_exact:
        engine = (_exact_by_counts if by_counts and individual else _exact_by_weighted_counts if by_counts
                  else _exact_by_sets if two_hop_events else _exact)
        if mixture is None:
            exact_values = engine(kernel, rule, randomization, pairs, keys if pairs.nnz else [])
        else:
            exact_values = _mixture_average(engine, kernel, rule, mixture, pairs, keys if pairs.nnz else [])
        if exact_values is None:
            if method == "exact":
                raise InputError("exact probabilities would take too long here (a unit of very high degree, or "
                                 "large shared neighbourhoods under complete randomization); use "
                                 "method='monte-carlo'.")
            notes.append("exact probabilities would take too long here (high degrees, or many dependent pairs in "
                         "large clusters); Monte Carlo was used")
    if exact_values is not None:
        marginal, joint_values = exact_values
        raw = marginal
        total = None
        label = (f"exact: {randomization.describe()}" if mixture is None else
                 f"exact: mixture of {len(mixture)} {getattr(design, 'method', 'random')} clusterings, "
                 f"Bernoulli({mixture[0].p:g}) per cluster")
    else:
        if matrix is not None:
            total = matrix.shape[1]
            chunks = (matrix[:, s:s + chunk] for s in range(0, total, chunk))
            source = "given draws"
        else:
            rng = check_seed(seed)
            total = int(n_draws)
            if total < 1:
                raise InputError(f"n_draws={n_draws}: Monte Carlo probabilities need at least one draw.")
            if hasattr(design, "draw_clusters") and getattr(design, "clusters", None) is not None:
                # draws of the clusters, counts as (N C) W: no draws x nodes matrix; the same numbers
                kernel = kernel.blocked(np.asarray(design.clusters), int(np.asarray(design.clusters).max()) + 1)
                chunks = (design.draw_clusters(min(chunk, total - s), rng) for s in range(0, total, chunk))
            else:
                chunks = (design.draw(min(chunk, total - s), rng) for s in range(0, total, chunk))
            source = "monte carlo"
        counts, joint_counts = _count_conditions(kernel, rule, chunks, pairs, keys if pairs.nnz else [])
        add_one = correction == "add-one"
        # add-one follows Aronow & Samii's reference code exactly: marginals (c+1)/(R+1),
        # same-condition joints c/(R+1), cross-condition joints c/R
        raw = counts / total
        marginal = (counts + 1) / (total + 1) if add_one else raw
        joint_values = {(k, l): acc / ((total + 1) if add_one and k == l else total)
                        for (k, l), acc in joint_counts.items()}
        label = f"{source}, {total} draws, correction {correction}"
        notes.append(f"exposure probabilities estimated from {total} draws (Monte Carlo error about "
                     f"sqrt(p(1-p)/{total}) each)")
    rows = csr_rows(pairs)
    diagonal = rows == pairs.indices
    joint_probs = {}
    for (k, l), values in joint_values.items():
        values = np.array(values, dtype=float)
        values[diagonal] = marginal[rows[diagonal], k] if k == l else 0.0
        joint_probs[(k, l)] = sp.csr_array((values, pairs.indices, pairs.indptr), shape=pairs.shape)
    if groups is not None:  # classes' probabilities back to their units
        marginal, raw = marginal[groups], raw[groups]
    _check_positivity(raw, rule, control, positivity_floor if positivity_floor is not None else
                      (0.5 / total if total else EXACT_POSITIVITY_FLOOR))
    if mixture is not None and joint is not None:
        notes.append("under a mixture of clusterings two units can be negatively dependent with a tiny joint "
                     "probability; a variance from these bounds such pairs (conservative) instead of weighting "
                     "them by 1 / p_ij")
    return ExposureProbabilities(units, rule.conditions, marginal, pairs, joint_probs, total, label,
                                 rule, tuple(notes), groups, mixture is not None, factored_pairs)


def _union_of_patterns(matrices) -> sp.csr_array:
    """The 0/1 union of the sparsity patterns of square matrices."""
    total = None
    for matrix in matrices:
        total = matrix if total is None else total + matrix
    total = sp.csr_array(total, dtype=np.int32)
    total.data[:] = 1
    total.sort_indices()
    return total


def _mixture_average(engine, kernel: "ExposureGraph", rule: Mapping, mixture, pairs: sp.csr_array, keys):
    """Exact probabilities under a uniform mixture of randomizations: the mean of each
    one's exact marginals and joints (``None`` when one of them would take too long)."""
    marginal, joint = None, {}
    for randomization in mixture:
        values = engine(kernel, rule, randomization, pairs, keys)
        if values is None:
            return None
        marginal = values[0] if marginal is None else marginal + values[0]
        for key, v in values[1].items():
            joint[key] = v if key not in joint else joint[key] + v
    return marginal / len(mixture), {key: v / len(mixture) for key, v in joint.items()}


GROUP_ABOVE_PAIRS = 250_000  # dependent unit pairs beyond which probabilities are grouped by class


def _classes(kernel: "ExposureGraph", blocks: np.ndarray, force: bool, sets: bool) -> np.ndarray | None:
    """Each unit's class (:meth:`ExposureGraph.signatures`) when grouping pays: forced, or
    the dependent unit pairs (bounded by the sum over blocks of the squared number of
    units reaching each) exceed :data:`GROUP_ABOVE_PAIRS` and classes are fewer than units."""
    n_blocks = int(blocks.max()) + 1 if blocks.size else 0
    if not force:
        per_block = np.bincount(kernel.reach(blocks).indices, minlength=n_blocks).astype(float)
        if float(np.sum(per_block**2)) <= GROUP_ABOVE_PAIRS:
            return None
    classes = kernel.signatures(blocks, n_blocks, sets=sets)
    if not force and classes.max() + 1 >= 0.9 * classes.size:
        return None
    return classes


def _count_conditions(kernel: "ExposureGraph", rule: Mapping, chunks, pairs: sp.csr_array, keys):
    """Per unit and condition, the number of draws in that condition; per stored pair
    and key ``(k, l)``, the number of draws with the row unit in ``k`` and the column
    unit in ``l`` (the diagonal is left at 0: a unit with itself is its marginal, filled in
    by the caller, so only pairs of different units are counted)."""
    n_cond = len(rule.conditions)
    counts = np.zeros((len(kernel.units), n_cond), dtype=np.int64)
    off = csr_rows(pairs) != pairs.indices
    others = sp.csr_array((np.ones(int(off.sum()), dtype=np.int8), pairs.indices[off],
                           np.concatenate([[0], np.cumsum(np.bincount(csr_rows(pairs)[off], minlength=pairs.shape[0]))])),
                          shape=pairs.shape)
    joint_off = {key: np.zeros(others.nnz, dtype=np.int64) for key in keys} if others.nnz else {}
    total = 0
    fused = rule.tally is not None and not joint_off  # marginals only: the mapping counts its conditions
    for arms in chunks:  # a loop over chunks of draws; each chunk is one sparse product
        chunk_counts = kernel.counts(treated_indicator(np.asarray(arms)), compact=fused)
        if fused:
            counts += rule.tally(chunk_counts)
            total += chunk_counts.n_treated.shape[1]
            continue
        codes = rule.codes(chunk_counts)
        if total == 0 and codes.size and (codes.min() < 0 or codes.max() >= n_cond):
            raise InputError(f"mapping {rule.name!r} returned condition codes outside 0..{n_cond - 1}.")
        for k in range(n_cond - 1):
            counts[:, k] += np.count_nonzero(codes == k, axis=1)
        total += codes.shape[1]
        if joint_off:
            indicators = [(codes == k).astype(np.int8) for k in range(n_cond)]
            for (k, l), acc in joint_off.items():
                acc += _joint_on_pairs(others, indicators[k], indicators[l])
    if not fused:
        counts[:, n_cond - 1] = total - counts[:, :n_cond - 1].sum(axis=1)  # every draw puts a unit in one condition
    joint_counts = {}
    for key in keys:
        values = np.zeros(pairs.nnz, dtype=np.int64)
        if key in joint_off:
            values[off] = joint_off[key]
        joint_counts[key] = values
    return counts, joint_counts


def _check_positivity(raw: np.ndarray, rule: Mapping, control: int, floor: float) -> None:
    """Warn with counts per condition where units (almost) cannot reach a condition, on
    the raw probabilities (before any add-one correction); refuse a control condition
    that no unit can reach."""
    low = raw < floor
    if low[:, control].all():
        raise InputError(f"positivity: no unit can be in the control condition '{rule.conditions[control]}' under this "
                         "design, so no contrast can be estimated; use another mapping or design.")
    if low.any():
        per = {rule.conditions[k]: int(low[:, k].sum()) for k in range(raw.shape[1]) if low[:, k].any()}
        impossible = [rule.conditions[k] for k in range(raw.shape[1]) if low[:, k].all()]
        warnings.warn(
            f"positivity: units with (almost) no chance of a condition under the design, by condition: {per}"
            f"{f'; no unit can reach {impossible}' if impossible else ''}. "
            "No estimator can represent them in that condition (Horvitz-Thompson is biased for them, "
            "weights near 0 are unstable). "
            "Use another mapping, a design that reaches every condition, or more draws.",
            PositivityWarning, stacklevel=3,
        )


def _randomization_from_draws(matrix: np.ndarray, clusters: np.ndarray | None):
    """The blocks of supplied draws (given ``clusters``, else nodes whose arms agree in
    every draw) and whether the treated count of blocks is constant (complete) or not."""
    from .design import Randomization

    treated = treated_indicator(matrix)
    if clusters is not None:
        blocks, uniques = pd.factorize(np.asarray(clusters))
        if (blocks < 0).any() or blocks.size != matrix.shape[0]:
            raise InputError("clusters: one label per randomized unit is needed to describe the draws.")
        n_blocks = len(uniques)
        first = np.zeros(n_blocks, dtype=np.int64)
        first[blocks[::-1]] = np.arange(blocks.size)[::-1]
        if np.any(treated != treated[first[blocks]]):
            raise InputError("draws: units of one cluster have different arms in some draw; the clusters do not "
                             "describe how these draws were made.")
        how = f"{n_blocks} blocks from the given clusters"
    else:
        packed = np.packbits(treated.astype(bool), axis=1)
        _, first, blocks = np.unique(packed, axis=0, return_index=True, return_inverse=True)
        blocks = blocks.ravel()
        n_blocks = first.size
        how = f"{n_blocks} blocks found in the draws (units whose arms agree in every draw)"
    per_draw = treated[first].sum(axis=0)
    if per_draw.size > 1 and np.all(per_draw == per_draw[0]):
        scheme = f"complete randomization ({int(per_draw[0])} of {n_blocks} blocks treated in every draw)"
        randomization = Randomization(blocks, n_blocks, "complete", n_treated=int(per_draw[0]))
    else:
        scheme = "independent blocks (treated count varies across draws)"
        randomization = Randomization(blocks, n_blocks, "bernoulli", p=float(per_draw.mean() / n_blocks))
    return randomization, f"draws: {how}; {scheme}; joint probabilities kept for pairs sharing a block"


def _draws_matrix(draws: np.ndarray | pd.DataFrame, randomized: pd.Index) -> np.ndarray:
    """Draws as ``(n_randomized, R)``; a DataFrame (one row per draw, columns = unit ids)
    must name exactly the randomized nodes."""
    if isinstance(draws, pd.DataFrame):
        columns = pd.Index(draws.columns)
        if randomized.dtype.kind in "iu" and not pd.api.types.is_numeric_dtype(columns):
            # column names of a Parquet/CSV file are text: read integer ids back as integers
            try:
                columns = columns.astype(randomized.dtype)
            except (TypeError, ValueError):
                pass
        missing, unknown = randomized.difference(columns), columns.difference(randomized)
        if len(missing) or len(unknown):
            raise InputError(
                f"draws: columns do not match the graph's randomized units: {len(unknown)} unknown "
                f"(e.g. {list(unknown[:3])}), {len(missing)} missing (e.g. {list(missing[:3])})."
            )
        draws = pd.DataFrame(draws.to_numpy(), columns=columns)[randomized].to_numpy().T
    matrix = np.asarray(draws)
    if matrix.ndim != 2 or matrix.shape[0] != len(randomized):
        raise InputError(f"draws: expected {len(randomized)} rows (one per unit), got shape {matrix.shape}.")
    if np.isnan(matrix.astype(float)).any():
        raise InputError("draws: missing values; every draw needs every unit's arm.")
    return matrix.astype(np.int8)
