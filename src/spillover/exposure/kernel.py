"""The exposure kernel: ``A @ Z`` (sparse adjacency times a matrix of draws) gives every
unit's count of treated neighbours in every draw at once, and :func:`exposure` maps one
assignment to each unit's condition."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..design import OUT, Assignment
from ..io import DESIGN_KEY, MAPPING_KEY, table_metadata
from ..errors import DataWarning, InputError, TooManyPairsError, show_id
from ..graph import BipartiteGraph, SocialGraph, csr_rows, first_rows, group_indicator, with_isolates
from .mappings import Counts, Mapping, get_mapping


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
        """Each unit's number of neighbours (row sums: a blocked kernel stores counts; a 0/1
        matrix's are its rows' lengths, read without a pass over its entries per row)."""
        data = self.neighbors.data
        if not data.size or data.min() == 1 == data.max():  # two reductions, no data-sized temporary
            return np.diff(self.neighbors.indptr).astype(np.int64)
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
        blocks = np.asarray(blocks)

        def on_blocks(matrix: sp.csr_array) -> sp.csr_array:
            # each entry's column replaced by its node's block, the repeats in a row summed: the product with the
            # nodes' block indicator, as fast as scipy's, and in canonical form (what signatures and sets read)
            index = np.int32 if max(matrix.nnz, n_blocks) < np.iinfo(np.int32).max else np.int64
            data = matrix.data.astype(np.promote_types(matrix.dtype, np.int32))  # a copy; the product's type
            out = sp.csr_array((data, blocks[matrix.indices].astype(index),
                                matrix.indptr.astype(index)), shape=(matrix.shape[0], n_blocks))
            out.has_sorted_indices = False
            out.sum_duplicates()
            return out

        return ExposureGraph(on_blocks(self.neighbors), None if self.own_index is None else blocks[self.own_index],
                             None if self.two_hop is None else on_blocks(self.two_hop), self.units,
                             pd.RangeIndex(n_blocks))

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
            own_reached=self._own_reached,
        )

    @cached_property
    def _own_reached(self) -> np.ndarray | None:
        """Units with a neighbour in their own randomized node or block (``neighbors[i,
        own_index[i]] > 0``): treated, they always have a treated neighbour."""
        if self.own_index is None:
            return None
        rows = csr_rows(self.neighbors)
        hit = (self.neighbors.indices == self.own_index[rows]) & (self.neighbors.data != 0)
        return np.bincount(rows, weights=hit, minlength=self.neighbors.shape[0]) > 0

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
        if clusters is not None:  # exposures depend on the clusters their neighbours are in
            reach = reach @ group_indicator(clusters, int(clusters.max()) + 1).T
        reach = sp.csr_array(reach, copy=reach is self.neighbors)  # the operator itself is never overwritten
        reach.data[:] = 1
        return reach

    def dependence(self, clusters: np.ndarray | None = None, max_pairs: int | None = None) -> sp.csr_array:
        """Pairs of units whose exposures share a randomization unit: ``R R^T`` with ``R``
        the :meth:`reach`, plus every unit with itself. With ``max_pairs``, an
        :class:`InputError` (before anything is formed) when the upper bound
        ``sum_b c_b^2`` (``c_b`` the units whose exposure reads block ``b``) exceeds it."""
        reach = self.reach(clusters)
        if max_pairs is not None:
            check_pairs(pairs_bound(reach), max_pairs)
        pairs = (reach @ reach.T + sp.eye_array(reach.shape[0], dtype=np.int32)).tocsr()
        pairs.data[:] = 1
        pairs.sort_indices()
        return sp.csr_array(pairs)


    def signatures(self, blocks: np.ndarray, n_blocks: int, *, sets: bool = False) -> np.ndarray:
        """A class per unit such that two units of one class have the same counts in every
        draw of a design that randomizes ``blocks`` (all nodes of a block share an arm):
        the same own block and the same number of neighbours (and two-hop neighbours) in
        each block; with ``sets``, the same *set* of blocks their neighbours are in (all a
        mapping written as events on block sets reads). :meth:`block_signatures` of the
        :meth:`blocked` operators.

        Examples
        --------
        >>> from spillover import synth
        >>> graph = synth.social_graph(200, seed=1)
        >>> kernel = ExposureGraph.build(graph)
        >>> blocks = np.zeros(graph.n_nodes, dtype=np.int64)  # one block: units differ by degree only
        >>> int(kernel.signatures(blocks, 1).max()) + 1 == np.unique(graph.degrees()).size
        True
        """
        return self.blocked(blocks, n_blocks).block_signatures(sets=sets)

    def block_signatures(self, *, sets: bool = False) -> np.ndarray:
        """:meth:`signatures` of operators already on blocks (:meth:`blocked`: each column a
        block, each entry a unit's neighbours in it, ``own_index`` its own block). Rows are
        compared by two independent 64-bit hashes of their entries.

        >>> from spillover import synth
        >>> kernel = ExposureGraph.build(synth.social_graph(200, seed=1))
        >>> blocks = np.arange(200) % 7
        >>> bool((kernel.blocked(blocks, 7).block_signatures() == kernel.signatures(blocks, 7)).all())
        True
        """
        n = len(self.units)
        keys = [np.zeros(n, dtype=np.uint64), np.zeros(n, dtype=np.uint64)]
        parts = [self.neighbors] + ([self.two_hop] if self.two_hop is not None else [])
        for salt, counts in enumerate(parts):
            if not counts.has_canonical_format:  # (:meth:`blocked`'s are)
                counts = sp.csr_array(counts, copy=True)
                counts.sum_duplicates()
            value = np.uint64(1) if sets else counts.data.astype(np.uint64)
            entry = (counts.indices.astype(np.uint64) << np.uint64(20)) ^ value ^ (np.uint64(salt) << np.uint64(60))
            for h, seed in ((0, 0x9E3779B97F4A7C15), (1, 0xC2B2AE3D27D4EB4F)):
                mixed = _mix64(entry + np.uint64(seed))
                keys[h] += _row_sums_uint64(mixed, counts.indptr)
        own_block = (np.asarray(self.own_index, dtype=np.int64) if self.own_index is not None
                     else np.full(n, -1, dtype=np.int64))
        # one 64-bit key with the own block folded in, then every unit checked against its class's first: equal
        # own block and both hashes (else, a collision of that key, all three compared)
        with np.errstate(over="ignore"):
            folded = keys[0] ^ _mix64(own_block.astype(np.uint64) + np.uint64(0x632BE59BD9B4E019))
        classes, uniques = pd.factorize(folded)
        head = first_rows(classes, uniques.size)[classes]
        if (own_block[head] == own_block).all() and (keys[0][head] == keys[0]).all() and \
                (keys[1][head] == keys[1]).all():
            return classes.astype(np.int64, copy=False)
        frame = pd.DataFrame({"own": own_block, "h0": keys[0], "h1": keys[1]})
        return frame.groupby(["own", "h0", "h1"], sort=False).ngroup().to_numpy(dtype=np.int64)

    def restricted(self, rows: np.ndarray) -> "ExposureGraph":
        """The operators of the units ``rows`` only (the randomized nodes unchanged)."""
        return ExposureGraph(sp.csr_array(self.neighbors[rows]),
                             None if self.own_index is None else self.own_index[rows],
                             None if self.two_hop is None else sp.csr_array(self.two_hop[rows]),
                             self.units[rows], self.randomized)




PEAK_BYTES_PER_PAIR = 145


def pairs_bound(reach: sp.csr_array) -> int:
    """``sum_b c_b^2``: at least the pairs of units that share a block of ``reach``."""
    return int(np.sum(np.bincount(reach.indices).astype(np.float64) ** 2))


def check_pairs(n_pairs: int, max_pairs: int) -> None:
    """Refuse, with what to do instead, a number of stored pairs above ``max_pairs``."""
    if n_pairs > max_pairs:
        raise TooManyPairsError(
            f"joint exposure probabilities would be needed for up to {n_pairs:,} dependent pairs (about "
            f"{n_pairs * PEAK_BYTES_PER_PAIR / 1e9:.1f} GB to compute), above max_pairs={max_pairs:,}: analyse with "
            "ols-cluster (CR2 on the randomization clusters), use fewer or smaller clusters, or raise max_pairs "
            "(--max-pairs) on a machine with the memory.", n_pairs=n_pairs, max_pairs=max_pairs)


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
        series = assignment.set_index("unit_id")["arm"]  # a repeated id is refused below, as every engine does
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
    whose treated side carries the assignment), and ``cluster_id``, each unit's
    randomization unit, when the assignment names one (a social graph's).

    The design the assignment carries (:attr:`~spillover.design.Assignment.record`, or a
    table's ``attrs``, as :func:`~spillover.io.read_table` reads it) is carried on in the
    table's ``attrs``, so ``estimate`` analyses by the design that made the arms; an arm
    that design cannot give is refused.

    >>> from spillover import synth
    >>> from spillover.design import IndividualDesign
    >>> g = synth.social_graph(500, seed=1)
    >>> table = exposure(g, IndividualDesign(g.nodes).assign(seed=1), "as4")
    >>> design = table.attrs["spillover.design"]
    >>> sorted(table["condition"].unique()), design["name"]
    (['dir_ind1', 'ind1', 'isol_dir', 'no'], 'individual')
    """
    rule = get_mapping(mapping, threshold_q=threshold_q, hops=hops, bipartite_graph=isinstance(graph, BipartiteGraph))
    graph = with_isolates(graph, assignment_ids(assignment), "assignment")
    kernel = ExposureGraph.build(graph, rule.hops)
    arms = arms_for(kernel.randomized, assignment)
    check_arms(arms, assignment_design(assignment))
    counts = kernel.counts(treated_indicator(arms))
    codes = rule.codes(counts)
    n = len(kernel.units)
    if kernel.own_index is not None:
        own_arm = pd.arrays.IntegerArray(arms.astype(np.int64), np.zeros(n, dtype=bool))
    else:  # the unit side of a bipartite graph has no arm of its own
        own_arm = pd.arrays.IntegerArray(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool))
    table = pd.DataFrame({
        "unit_id": kernel.units,
        "arm": own_arm,
        "n_neighbors": counts.n_neighbors,
        "n_treated_neighbors": counts.n_treated,
        "treated_fraction": counts.treated_fraction,
        "condition": pd.Categorical.from_codes(codes, categories=list(rule.conditions)),
    }, copy=False)
    units = randomization_units(assignment)
    if units is not None and kernel.own_index is not None:
        table["cluster_id"] = units.reindex(kernel.units).to_numpy()  # after the contract's columns
    table.attrs.update(exposure_metadata(assignment, mapping if isinstance(mapping, str) else rule.name,
                                         threshold_q, hops, bipartite=isinstance(graph, BipartiteGraph)))
    return table


def assignment_design(assignment) -> dict | None:
    """The design an assignment carries (an :class:`~spillover.design.Assignment`'s record,
    a table's or file's metadata), or None."""
    if isinstance(assignment, Assignment):
        return assignment.record.to_dict()
    if isinstance(assignment, pd.Series):
        return assignment.attrs.get(DESIGN_KEY)
    return table_metadata(assignment).get(DESIGN_KEY)


def exposure_metadata(assignment, mapping: str, threshold_q: float | None, hops: int = 1,
                      bipartite: bool = False) -> dict:
    """What an exposure table carries (every engine writes the same): the design its
    assignment carried, and the mapping it was made with. On a ``bipartite`` graph the
    measured units are not the randomized ones: the design's unit becomes the
    ``treated-side`` (whether it randomized sellers one by one or in clusters is kept
    in its ``clustered`` option), whatever design assigned the sellers.

    >>> exposure_metadata(pd.DataFrame({"unit_id": [1], "arm": [1]}), "as4", None)
    {'spillover.mapping': {'name': 'as4', 'threshold_q': None, 'hops': 1}}
    """
    design = assignment_design(assignment)
    if bipartite and design is not None and design.get("unit") != "treated-side":
        clustered = design.get("unit") == "cluster" or bool((design.get("options") or {}).get("clustered"))
        design = {**design, "unit": "treated-side", "options": {**(design.get("options") or {}), "clustered": clustered}}
    return {**({DESIGN_KEY: design} if design is not None else {}),
            MAPPING_KEY: {"name": mapping, "threshold_q": threshold_q, "hops": hops}}


def randomization_units(assignment: Assignment | pd.Series | pd.DataFrame) -> pd.Series | None:
    """Each assigned unit's randomization unit (its cluster's id; the unit itself under
    an individual design), by unit id; None when the assignment does not say.

    >>> from spillover.design import ClusterDesign
    >>> randomization_units(ClusterDesign([0, 0, 1, 1], list("abcd")).assign(seed=1)).tolist()
    [0, 0, 1, 1]
    """
    if isinstance(assignment, Assignment):
        labels = assignment.units if assignment.clusters is None else (
            assignment.cluster_ids[assignment.clusters] if assignment.cluster_ids is not None else assignment.clusters)
        return pd.Series(np.asarray(labels), index=assignment.units)
    if isinstance(assignment, pd.DataFrame) and "cluster_id" in assignment.columns:
        return assignment.drop_duplicates("unit_id").set_index("unit_id")["cluster_id"]
    return None


def check_arms(arms: np.ndarray, design: dict | None) -> None:
    """Arms the design cannot give are refused: those outside its recorded arms, or, with no
    design recorded, arms that skip a number (``0, 1, 7``: arms are ``0, 1, 2, ...``).

    >>> check_arms(np.array([0, 1, 7]), None)
    Traceback (most recent call last):
    ...
    spillover.errors.InputError: assignment: arms [0, 1, 7] skip a number; arms are -1 (out of the experiment), 0 (control), 1, 2, ... Is arm 7 a typo?
    """
    present = sorted(int(a) for a in np.unique(arms))  # a handful of arms
    given = [a for a in present if a != OUT]
    if design is not None and design.get("shares"):
        allowed = {int(a) for a in design["shares"]} | {OUT}  # units left without an arm are out
        foreign = [a for a in present if a not in allowed]
        if foreign:
            raise InputError(f"assignment: arm(s) {foreign} are not arms of its {design.get('name')} design, which "
                             f"gives {sorted(allowed - {OUT})}; fix the arms or the design.")
        return
    if len(given) > 1 and given != list(range(given[0], given[-1] + 1)):
        raise InputError(f"assignment: arms {given} skip a number; arms are -1 (out of the experiment), 0 "
                         f"(control), 1, 2, ... Is arm {given[-1]} a typo?")
