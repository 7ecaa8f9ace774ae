"""Exact exposure probabilities of mappings written as events on block sets: closed
forms in the sizes of those sets (Bernoulli, complete and stratified randomization),
for one and two hops."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..graph import csr_rows, first_rows, group_indicator
from .kernel import ExposureGraph
from .mappings import Mapping
from .results import csr_lookup


@dataclass(frozen=True, eq=False)
class BlockSets:
    """Each unit's own block and the set of blocks its neighbours are in (``reach``,
    units x blocks, binary): what a mapping with ``events`` depends on. ``own_in_reach``:
    whether a unit's own block is among its neighbours' (None without own blocks)."""

    reach: sp.csr_array
    size: np.ndarray
    own: np.ndarray | None
    n_blocks: int
    own_in_reach: np.ndarray | None = None

    @classmethod
    def build(cls, kernel: "ExposureGraph", blocks: np.ndarray, n_blocks: int,
              only: np.ndarray | None = None) -> "BlockSets":
        """The block sets of ``kernel``'s units when randomized node ``i`` is in block
        ``blocks[i]``; with ``only`` (some blocks: a stratum), those blocks alone (a unit
        whose own block is elsewhere has own block -1)."""
        kept = np.ones(n_blocks, dtype=bool)
        if only is not None:
            kept = np.zeros(n_blocks, dtype=bool)
            kept[only] = True
        nodes = np.flatnonzero(kept[blocks])
        indicator = sp.csr_array((np.ones(nodes.size), (nodes, blocks[nodes])), shape=(blocks.size, n_blocks))
        own = None if kernel.own_index is None else blocks[kernel.own_index]
        return cls._from_counts(sp.csr_array(kernel.neighbors @ indicator), None if own is None else
                                np.where(kept[own], own, -1))

    @classmethod
    def from_blocked(cls, blocked: "ExposureGraph") -> "BlockSets":
        """The block sets of a kernel already on the blocks (:meth:`ExposureGraph.blocked`:
        its counts of neighbours per block), without forming that product again."""
        return cls._from_counts(sp.csr_array(blocked.neighbors, dtype=np.float64, copy=True), blocked.own_index)

    @classmethod
    def _from_counts(cls, counts: sp.csr_array, own: np.ndarray | None) -> "BlockSets":
        """From each unit's neighbours per block (``counts``, units x blocks, its own: it
        becomes the binary reach) and own block (-1: none among the blocks)."""
        counts.eliminate_zeros()
        counts.data[:] = 1
        counts.sort_indices()
        sets = cls(counts, np.diff(counts.indptr), None, counts.shape[1])
        if own is None:
            return sets
        return cls(counts, sets.size, own, sets.n_blocks, sets.contains(np.arange(own.size), own))

    def contains(self, units: np.ndarray, blocks: np.ndarray) -> np.ndarray:
        """Whether ``blocks[p]`` is among unit ``units[p]``'s neighbours' blocks (never
        when it is -1: no block)."""
        return (csr_lookup(self.reach, units, np.maximum(blocks, 0)) >= 0) & (blocks >= 0)


def pattern_probability(m, k, treated, control) -> np.ndarray:
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


def event_probability(randomization, treated, control) -> np.ndarray:
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
    return pattern_probability(m, k, t.astype(float), c.astype(float))


def _neighbour_overlap(sets: BlockSets) -> sp.csr_array:
    """How many neighbour blocks every two units share (``reach reach^T``, indices
    sorted): computed once for all chunks of pairs."""
    overlap = sp.csr_array(sets.reach @ sets.reach.T)
    overlap.sort_indices()
    return overlap


def _pair_event_tables(sets: BlockSets, rows: np.ndarray, cols: np.ndarray, overlap=None, relations=None, *,
                       distinct: bool = True):
    """For pairs ``(r, c)``, which of the four block sets (own r, neighbours of r, own
    c, neighbours of c: atoms 0-3) meet, and the sizes needed for unions. ``relations``,
    when known: each pair's number of shared neighbour blocks and whether the own blocks
    are one, r's own is among c's neighbours' and c's among r's (:func:`pair_relations`);
    otherwise they are looked up (``overlap``: :func:`_neighbour_overlap`, computed here
    when not given). Pairs whose sets relate alike have equal tables: with ``distinct``,
    returns the tables of the distinct relations and each pair's among them
    (:func:`_distinct`; None: the tables are the pairs')."""
    if relations is not None:
        shared, own_eq, own_r_in_c, own_c_in_r = relations
    elif np.array_equal(rows, cols):  # marginals: a unit's set meets itself
        shared = sets.size[rows].astype(np.int64)
    else:
        matrix = _neighbour_overlap(sets) if overlap is None else overlap
        pos = csr_lookup(matrix, rows, cols)
        shared = np.where(pos >= 0, matrix.data[np.maximum(pos, 0)], 0).astype(np.int64)
    if sets.own is None:
        false = np.zeros(rows.size, dtype=bool)
        own, has_r, has_c = (false,) * 5, false, false
    else:
        has_own = sets.own >= 0
        has_r, has_c = has_own[rows], has_own[cols]
        if relations is None:
            o_r, o_c = sets.own[rows], sets.own[cols]
            own_eq, own_r_in_c, own_c_in_r = (o_r == o_c) & has_r, sets.contains(cols, o_r), sets.contains(rows, o_c)
        own = (sets.own_in_reach[rows], sets.own_in_reach[cols], own_eq, own_r_in_c, own_c_in_r)
    fields, inverse = _distinct(sets.size[rows], sets.size[cols], shared, *own, has_r, has_c, skip=not distinct)
    return event_tables(*fields[:8], has_own_r=fields[8], has_own_c=fields[9]), inverse


def pair_relations(pair: np.ndarray, role_r: np.ndarray, role_c: np.ndarray, n_pairs: int) -> tuple:
    """How the block sets of ``n_pairs`` pairs relate, from each (pair, shared block) with
    the block's role for either unit (bits: 1 its own block, 2 a neighbour's): the number
    of shared neighbour blocks, whether the two own blocks are one, whether r's own block
    is among c's neighbours' and whether c's is among r's (what :func:`_pair_event_tables`
    would otherwise look up).

    >>> shared, own_eq, r_in_c, c_in_r = pair_relations(np.array([0, 0, 1]), np.array([3, 2, 1]),
    ...                                                 np.array([2, 2, 1]), 2)
    >>> shared.tolist(), own_eq.tolist(), r_in_c.tolist(), c_in_r.tolist()
    ([2, 0], [False, True], [True, False], [False, False])
    """
    # one weighted count: the shared neighbour blocks below bit 32, each flag (at most once per pair: a unit has
    # one own block) a bit above; the weight of each of the 16 pairs of roles from a table
    r, c = np.arange(16) & 3, np.arange(16) >> 2
    weight = (((r & c & 2) >> 1) | (r & c & 1) << 32 | (r & (c >> 1) & 1) << 33 | (c & (r >> 1) & 1) << 34).astype(float)
    roles = np.asarray(role_r, dtype=np.uint8) | np.asarray(role_c, dtype=np.uint8) << 2
    total = np.bincount(pair, weights=weight[roles], minlength=n_pairs).astype(np.int64)  # exact: below 2^53
    return total & 0xFFFFFFFF, (total >> 32 & 1) > 0, (total >> 33 & 1) > 0, (total >> 34 & 1) > 0


def _distinct(size_r, size_c, shared, *flags, skip: bool = False) -> tuple[tuple, np.ndarray | None]:
    """The distinct rows of the columns (three counts, then booleans) and each row's
    position among them; the rows themselves (and None) with ``skip``, for few rows, or
    when their codes could overflow. A social graph's million pairs take a few hundred
    distinct rows."""
    top = int(max(size_r.max(initial=0), size_c.max(initial=0))) + 1
    if skip or size_r.size < 1_000 or top ** 3 >= 2 ** 62 >> len(flags):
        return (size_r, size_c, shared, *flags), None
    bits = np.zeros(size_r.size, dtype=np.min_scalar_type(2 ** len(flags) - 1))  # the flags, a bit each
    for i, flag in enumerate(flags):
        bits |= np.asarray(flag, dtype=np.uint8) << np.uint8(i)
    code = ((size_r.astype(np.int64) * top + size_c) * top + shared) << len(flags) | bits
    inverse, uniques = pd.factorize(code)
    first = first_rows(inverse, uniques.size)  # each distinct row's first pair
    return tuple(column[first] for column in (size_r, size_c, shared, *flags)), inverse


def event_tables(size_r, size_c, shared, own_r_in_r, own_c_in_c, own_eq, own_r_in_c, own_c_in_r, *, has_own_r,
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
    prob = event_probability(randomization, union(treated) if treated else np.zeros(n, np.int64),
                              union(control) if control else np.zeros(n, np.int64))
    return np.where(clash, 0.0, prob)


def _term_atoms(term, offset: int) -> tuple[frozenset, frozenset]:
    """Treated and untreated atoms of a term; unit r's atoms are 0-1, unit c's 2-3."""
    atom = {"own": 0, "nbr": 1}
    treated = frozenset(atom[a] + offset for a, status in term if status == 1)
    control = frozenset(atom[a] + offset for a, status in term if status == 0)
    return treated, control


def events_probability(layers, n: int, events_r, events_c) -> np.ndarray:
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


def exact_by_events(kernel: "ExposureGraph", rule: Mapping, randomization, pairs: sp.csr_array, keys,
                    sets: BlockSets | None = None, relations: tuple | None = None):
    """Exact marginal and joint probabilities of a mapping with ``events`` (``relations``:
    how each stored pair's block sets relate, in ``pairs``' order, when known:
    :func:`pair_relations`; a stratified design: every stratum's block sets, its factors
    multiplied). Pairs whose block sets relate alike are evaluated once (one stratum).
    ``sets``: the block sets, when already formed (one stratum); ``kernel`` then gives the
    units alone."""
    blocks = np.asarray(randomization.blocks, dtype=np.int64)
    if randomization.scheme == "stratified":
        strata = [(mixture, BlockSets.build(kernel, blocks, randomization.n_blocks, members))
                  for members, mixture in randomization.strata_parts()]
        overlaps = [_neighbour_overlap(layer) for _, layer in strata] if keys else []
        relations = None
    else:
        strata = [([(1.0, randomization)], sets or BlockSets.build(kernel, blocks, randomization.n_blocks))]
        overlaps = [None if relations is not None else _neighbour_overlap(strata[0][1])] if keys else []
    # the units whose exposure reads a stratum's blocks (all of them: one stratum)
    touches = [None if len(strata) == 1 else (layer.size > 0) | (layer.own is not None and layer.own >= 0)
               for _, layer in strata]

    def layers(r: np.ndarray, c: np.ndarray, overlaps=None, relations=None):
        out, inverse = [], None
        for i, (mixture, layer) in enumerate(strata):
            subset = None if touches[i] is None else np.flatnonzero(touches[i][r] | touches[i][c])
            r_s, c_s = (r, c) if subset is None else (r[subset], c[subset])
            tables, inverse = _pair_event_tables(layer, r_s, c_s, None if overlaps is None else overlaps[i], relations,
                                                 distinct=len(strata) == 1)
            out.append((mixture, tables, subset))
        return out, inverse

    def evaluate(tables, inverse, n: int, events_r, events_c) -> np.ndarray:
        if inverse is None:
            return events_probability(tables, n, events_r, events_c)
        return events_probability(tables, int(inverse.max()) + 1, events_r, events_c)[inverse]

    units = np.arange(len(kernel.units))
    tables, inverse = layers(units, units)
    marginal = np.column_stack([evaluate(tables, inverse, units.size, rule.events[c], None) for c in rule.conditions])
    rows, cols = csr_rows(pairs), pairs.indices
    joint = {key: np.empty(rows.size) for key in keys}
    for start in range(0, rows.size if keys else 0, EXACT_PAIR_CHUNK):  # chunks of pairs bound the tables' memory
        stop = min(start + EXACT_PAIR_CHUNK, rows.size)
        r, c = rows[start:stop], cols[start:stop]
        chunk = None if relations is None else tuple(column[start:stop] for column in relations)
        tables, inverse = layers(r, c, overlaps, chunk)  # shared by every key
        for k, l in keys:
            joint[(k, l)][start:stop] = evaluate(tables, inverse, r.size, rule.events[rule.conditions[k]],
                                                 rule.events[rule.conditions[l]])
    return marginal, joint


MAX_DP_WORK = 3e8  # work (pair x set-size x key terms; counts: DP cell updates) beyond which Monte Carlo is used
EXACT_PAIR_CHUNK = 500_000  # pairs whose event tables (a dozen arrays) are built at once: bounds their memory


def exact_by_sets(kernel: "ExposureGraph", rule: Mapping, randomization, pairs: sp.csr_array, keys):
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
                prob = event_probability(randomization, np.diff(treated.indptr), np.diff(control.indptr))
                out += sign_r * sign_c * np.where(clash, 0.0, prob)
        return np.clip(out, 0.0, 1.0)

    units = np.arange(len(kernel.units))
    marginal = np.column_stack([probability(units, units, rule.events[c], None) for c in rule.conditions])
    rows, cols = csr_rows(pairs), pairs.indices
    joint = {(k, l): probability(rows, cols, rule.events[rule.conditions[k]], rule.events[rule.conditions[l]])
             for k, l in keys}
    return marginal, joint
