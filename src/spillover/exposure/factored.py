"""Exact one-hop joint probabilities in factored form: pairs that share one block are
summed per block and type of unit, only pairs sharing two or more blocks are stored."""

from __future__ import annotations


import numpy as np
import scipy.sparse as sp

from ..graph import csr_rows
from .exact import BlockSets, event_tables, events_probability, exact_by_events
from .kernel import ExposureGraph, check_pairs
from .mappings import Mapping
from .results import FactoredPairs, csr_lookup, pair_keys


FACTOR_ABOVE_PAIRS = 1_000_000  # dependent class pairs beyond which exact one-hop joints are factored by block


def _segment_arange(counts: np.ndarray) -> np.ndarray:
    """``0, 1, ..., c - 1`` for each ``c`` of ``counts``, concatenated."""
    counts = np.asarray(counts, dtype=np.int64)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(starts.size, dtype=np.int64) - starts


def factor_pairs(kernel: "ExposureGraph", rule: Mapping, randomization, keys, max_pairs: int | None):
    """Exact probabilities of a one-hop mapping with ``events`` in factored form: the
    class pairs sharing two or more blocks (and every class with itself) as stored pairs
    with exact joints, the rest per block and type (:class:`FactoredPairs`). Returns
    ``(marginal, joint, pairs, factored)``; time and memory linear in the graph plus the
    multiply-sharing pairs (``max_pairs`` bounds those, before they are formed)."""
    blocks = np.asarray(randomization.blocks, dtype=np.int64)
    n_blocks = int(randomization.n_blocks)
    sets = BlockSets.build(kernel, blocks, n_blocks)
    n = len(kernel.units)
    roles = sp.csr_array(2 * sp.csr_array(sets.reach, dtype=np.int64))  # role bits: 1 own block, 2 a neighbour's
    own_in_nbr = np.zeros(n, dtype=bool) if sets.own_in_reach is None else sets.own_in_reach
    if sets.own is not None:
        roles = sp.csr_array(roles + sp.csr_array((np.ones(n, dtype=np.int64), (np.arange(n), sets.own)),
                                                  shape=roles.shape))
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
        check_pairs(int(per_class.sum()), max_pairs)
    position = np.arange(classes.size, dtype=np.int64) - roles.indptr[classes]
    later = width[classes] - 1 - position
    first = np.repeat(np.arange(classes.size, dtype=np.int64), later)
    second = first + 1 + _segment_arange(later)
    block_pair = pair_keys(read[first], read[second], n_blocks)
    order = np.argsort(block_pair, kind="stable")
    block_pair, owner = block_pair[order], classes[first[order]]
    starts = np.flatnonzero(np.r_[True, block_pair[1:] != block_pair[:-1]]) if block_pair.size else block_pair
    sizes = np.diff(np.r_[starts, block_pair.size])
    if max_pairs is not None:
        check_pairs(int(np.sum(sizes.astype(np.float64) ** 2)), max_pairs)
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
    found = csr_lookup(roles, large[pair_of], read[incidence])  # positions in roles are incidences
    hit = found >= 0
    pair_of, type_small, type_large = pair_of[hit], types[incidence[hit]], types[found[hit]]
    flip = swap[pair_of]
    tau_r, tau_c = np.where(flip, type_large, type_small), np.where(flip, type_small, type_large)
    both_nbr = (roles.data[incidence[hit]] & roles.data[found[hit]] & 2) > 0
    shared = np.bincount(pair_of[both_nbr], minlength=p_rows.size)  # each stored pair's shared neighbour blocks
    marginal, joint = exact_by_events(kernel, rule, randomization, pairs, keys, sets, shared)

    # one-block joints of every pair of types that meet in a block
    meet = sp.csr_array((np.ones(classes.size), (types, read)), shape=(n_types, n_blocks))  # types x blocks
    meet = sp.csr_array(meet @ meet.T)
    meet.sort_indices()
    t_r, t_c = csr_rows(meet), meet.indices.astype(np.int64)
    type_pairs = pair_keys(t_r, t_c, n_types)
    role_r, role_c = type_codes[t_r] % 4, type_codes[t_c] % 4
    tables = event_tables(type_codes[t_r] // 8, type_codes[t_c] // 8, ((role_r & 2) & (role_c & 2)) // 2,
                           ((type_codes[t_r] // 4) % 2).astype(bool), ((type_codes[t_c] // 4) % 2).astype(bool),
                           ((role_r & 1) & (role_c & 1)).astype(bool), ((role_r & 1) & (role_c >> 1)).astype(bool),
                           ((role_c & 1) & (role_r >> 1)).astype(bool), has_own_r=sets.own is not None,
                           has_own_c=sets.own is not None)
    layers = [([(1.0, randomization)], tables, None)]
    type_joint = {(k, l): events_probability(layers, t_r.size, rule.events[rule.conditions[k]],
                                              rule.events[rule.conditions[l]]) for k, l in keys}
    representative = np.zeros(n_types, dtype=np.int64)
    representative[types] = classes
    # each stored pair's shared blocks counted by type pair (pair_of is sorted: the rows of a CSR matrix)
    starts = np.r_[0, np.cumsum(np.bincount(pair_of, minlength=p_rows.size))]
    corrections = sp.csr_array((np.ones(pair_of.size), csr_lookup(meet, tau_r, tau_c), starts),  # meet's positions:
                               shape=(p_rows.size, type_pairs.size))  # type_pairs'
    factored = FactoredPairs(classes, read, types, n_blocks, marginal[representative], type_pairs, type_joint,
                             corrections)
    return marginal, joint, pairs, factored
