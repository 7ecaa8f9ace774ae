"""Exact one-hop joint probabilities in factored form: pairs that share one block are
summed per block and type of unit, only pairs sharing two or more blocks are stored."""

from __future__ import annotations


import numpy as np
import scipy.sparse as sp

from ..graph import csr_rows, factorize_ids
from .exact import BlockSets, event_tables, events_probability, exact_by_events, pair_relations
from .kernel import ExposureGraph, check_pairs
from .mappings import Mapping
from .results import FactoredPairs, csr_lookup, pair_keys


FACTOR_ABOVE_PAIRS = 1_000_000  # dependent class pairs beyond which exact one-hop joints are factored by block
TYPE_TABLE_MAX = 1_000_000  # type pairs up to which their positions are read from a dense table (else looked up)


def _segment_arange(counts: np.ndarray) -> np.ndarray:
    """``0, 1, ..., c - 1`` for each ``c`` of ``counts``, concatenated."""
    counts = np.asarray(counts, dtype=np.int64)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(starts.size, dtype=np.int64) - starts


def factor_pairs(kernel: "ExposureGraph", rule: Mapping, randomization, keys, max_pairs: int | None,
                 blocked: "ExposureGraph | None" = None):
    """Exact probabilities of a one-hop mapping with ``events`` in factored form: the
    class pairs sharing two or more blocks (and every class with itself) as stored pairs
    with exact joints, the rest per block and type (:class:`FactoredPairs`). Returns
    ``(marginal, joint, pairs, factored)``; time and memory linear in the graph plus the
    multiply-sharing pairs (``max_pairs`` bounds those, before they are formed). ``blocked``:
    ``kernel`` on the design's blocks, when already formed; it alone is read then (its rows
    may be a subset of ``kernel``'s: one unit per class)."""
    blocks = np.asarray(randomization.blocks, dtype=np.int64)
    n_blocks = int(randomization.n_blocks)
    sets = BlockSets.build(kernel, blocks, n_blocks) if blocked is None else BlockSets.from_blocked(blocked)
    operators = kernel if blocked is None else blocked  # one row per unit the probabilities are for
    n = len(operators.units)
    roles = sp.csr_array(2 * sp.csr_array(sets.reach, dtype=np.int64))  # role bits: 1 own block, 2 a neighbour's
    own_in_nbr = np.zeros(n, dtype=bool) if sets.own_in_reach is None else sets.own_in_reach
    if sets.own is not None:
        roles = sp.csr_array(roles + sp.csr_array((np.ones(n, dtype=np.int64), (np.arange(n), sets.own)),
                                                  shape=roles.shape))
    roles.sort_indices()
    classes, read = csr_rows(roles), roles.indices.astype(np.int64)
    width = np.diff(roles.indptr).astype(np.int64)  # blocks each class reads
    code = (sets.size[classes].astype(np.int64) * 2 + own_in_nbr[classes]) * 4 + roles.data
    types, type_codes = factorize_ids(code)  # sorted codes: a counting pass, as the codes are small
    type_codes = type_codes.to_numpy()
    n_types = type_codes.size

    pairs, pair_of, inc_r, inc_c = _stored_pairs(roles, classes, read, width, n, n_blocks, max_pairs)
    type_pairs, type_joint, meet = _type_pairs(sets, rule, randomization, keys, classes, read, types, type_codes,
                                               n_blocks)
    # each stored pair's shared blocks counted by type pair (meet's positions are type_pairs')
    if n_types ** 2 <= TYPE_TABLE_MAX:  # few types: their pairs' positions from a table
        table = np.full(n_types ** 2, -1, dtype=pair_of.dtype)
        table[type_pairs] = np.arange(type_pairs.size)
        position = table[pair_keys(types[inc_r], types[inc_c], n_types)]
    else:
        position = csr_lookup(meet, types[inc_r], types[inc_c]).astype(pair_of.dtype)
    # counts of shared blocks in the smallest type that holds them (a class reads at most width.max() blocks), and
    # the records' index type: scipy keeps both, at a quarter of float64's and int64's memory at most
    counts = np.ones(pair_of.size, dtype=np.min_scalar_type(int(width.max(initial=1))))
    corrections = sp.csr_array((counts, (pair_of, position)), shape=(pairs.nnz, type_pairs.size))
    del counts
    role = roles.data.astype(np.uint8)  # role bits, small
    relations = pair_relations(pair_of, role[inc_r], role[inc_c], pairs.nnz)
    del pair_of, inc_r, inc_c, position  # the records' memory serves the joints (a first touch of memory is slow)
    marginal, joint = exact_by_events(operators, rule, randomization, pairs, keys, sets, relations)
    representative = np.zeros(n_types, dtype=np.int64)
    representative[types] = classes
    factored = FactoredPairs(classes, read, types, n_blocks, marginal[representative], type_pairs, type_joint,
                             corrections)
    return marginal, joint, pairs, factored


def _stored_pairs(roles: sp.csr_array, classes: np.ndarray, read: np.ndarray, width: np.ndarray, n: int,
                  n_blocks: int, max_pairs: int | None) -> tuple[sp.csr_array, np.ndarray, np.ndarray, np.ndarray]:
    """The class pairs that share two or more blocks, and every class with itself (``n x n``
    pattern, :func:`factor_pairs`), with their shared blocks as records ``(pair, the row's
    incidence, the column's)``. Intermediates are let go as soon as they are used: at a
    million units they are several hundred MB, and memory touched for the first time costs
    more than the work on it."""
    # pairs sharing two or more blocks: classes grouped by the pairs of blocks they read
    per_class = width * (width - 1) // 2
    if max_pairs is not None:
        check_pairs(int(per_class.sum()), max_pairs)
    # each incidence with each later one of its class (incidences are in CSR order): the k-th pair of incidence i
    # is (i, i + 1 + k), and its place among all pairs is k past the pairs of the incidences before i
    incidence = np.arange(classes.size, dtype=np.int64)
    later = roles.indptr[1:][classes] - 1 - incidence
    first = np.repeat(incidence, later)
    second = np.repeat(incidence + 1 - (np.cumsum(later) - later), later)
    second += np.arange(second.size, dtype=np.int64)
    del incidence, later
    block_pair = pair_keys(read[first], read[second], n_blocks)
    by_pair = np.argsort(block_pair)  # the order within a group does not matter
    first_of, second_of = first[by_pair], second[by_pair]  # each membership's two incidences, grouped by block pair
    del first, second
    block_pair, owner = block_pair[by_pair], classes[first_of]
    del by_pair
    starts = np.flatnonzero(np.r_[True, block_pair[1:] != block_pair[:-1]]) if block_pair.size else block_pair
    sizes = np.diff(np.r_[starts, block_pair.size])
    del block_pair
    if max_pairs is not None:
        check_pairs(int(np.sum(sizes.astype(np.float64) ** 2)), max_pairs)
    # every two members of a block pair's group share both blocks: each such (row, column) entry names its two
    # memberships (the row's, the column's), and the entries of one class pair are its shared blocks' pairs. A class
    # reads a block pair once, so a group's members are distinct classes: a membership pairs with each other member
    # of its group (groups of one, most of them, with none); a class with itself is the diagonal, below
    size_of = np.repeat(sizes, sizes)
    local = np.arange(owner.size, dtype=np.int64) - np.repeat(starts, sizes)  # each membership's place in its group
    del sizes, starts
    grouped = np.flatnonzero(size_of > 1)
    others = size_of[grouped] - 1
    del size_of
    member = np.repeat(grouped, others)
    k = _segment_arange(others)
    place = np.repeat(local[grouped], others)
    del grouped, others, local
    other = member - place + k + (k >= place)  # the k-th other member: places before the row's, then after it
    del k, place
    diagonal = np.arange(n, dtype=np.int64)
    entries = pair_keys(np.r_[owner[member], diagonal], np.r_[owner[other], diagonal], n)
    del diagonal
    order = np.argsort(entries)
    entries = entries[order]
    new = np.r_[True, entries[1:] != entries[:-1]]
    pair_of_entry = np.empty(entries.size, dtype=np.int64)
    pair_of_entry[order] = np.cumsum(new) - 1  # each entry's position among the stored pairs (CSR order)
    del order
    stored = entries[new]
    del entries, new
    pairs = sp.csr_array((np.ones(stored.size, dtype=np.int32), (stored % n).astype(np.int32),
                          np.r_[0, np.cumsum(np.bincount(stored // n, minlength=n))]), shape=(n, n))
    del stored

    # each stored pair's shared blocks, as (pair, the row's incidence, the column's): both blocks of every entry
    # of a pair sharing two blocks (its one entry), every incidence of a class with itself, and the blocks of the
    # few pairs sharing k >= 3 (each block in k - 1 of their entries: once kept)
    index = np.int32 if max(classes.size, pairs.nnz) < np.iinfo(np.int32).max else np.int64  # what scipy keeps
    entry_pair = pair_of_entry[:member.size]
    many = (np.bincount(entry_pair, minlength=pairs.nnz) > 1)[entry_pair]
    if many.any():
        more = (np.r_[entry_pair[many], entry_pair[many]], np.r_[first_of[member[many]], second_of[member[many]]],
                np.r_[first_of[other[many]], second_of[other[many]]])
        _, keep = np.unique(pair_keys(more[0], more[1], classes.size), return_index=True)
        more = tuple(column[keep] for column in more)
        member, other, entry_pair = member[~many], other[~many], entry_pair[~many]
    else:
        more = (np.empty(0, dtype=index),) * 3
    own = pair_of_entry[pair_of_entry.size - n:][classes]  # each incidence's class with itself (the last n entries)
    pair_of = np.concatenate([entry_pair, entry_pair, own, more[0]], dtype=index)
    inc_r = np.concatenate([first_of[member], second_of[member], np.arange(classes.size), more[1]], dtype=index)
    inc_c = np.concatenate([first_of[other], second_of[other], np.arange(classes.size), more[2]], dtype=index)
    return pairs, pair_of, inc_r, inc_c


def _type_pairs(sets: BlockSets, rule: Mapping, randomization, keys, classes: np.ndarray, read: np.ndarray,
                types: np.ndarray, type_codes: np.ndarray, n_blocks: int) -> tuple[np.ndarray, dict, sp.csr_array]:
    """The pairs of types that meet in a block (``tau_r * n_types + tau_c``, sorted), their
    one-block joints for ``keys``, and the (types x types) pattern of their meeting, whose
    positions are theirs (:func:`factor_pairs`)."""
    n_types = type_codes.size
    meet = sp.csr_array((np.ones(classes.size), (types, read)), shape=(n_types, n_blocks))  # types x blocks
    meet = sp.csr_array(meet @ meet.T)
    meet.sort_indices()
    t_r, t_c = csr_rows(meet), meet.indices.astype(np.int64)
    type_pairs = pair_keys(t_r, t_c, n_types)
    # two types meeting in one block relate as that block's roles for each say (the block is all they share)
    shared, own_eq, own_r_in_c, own_c_in_r = pair_relations(np.arange(t_r.size), type_codes[t_r] % 4,
                                                             type_codes[t_c] % 4, t_r.size)
    tables = event_tables(type_codes[t_r] // 8, type_codes[t_c] // 8, shared,
                           ((type_codes[t_r] // 4) % 2).astype(bool), ((type_codes[t_c] // 4) % 2).astype(bool),
                           own_eq, own_r_in_c, own_c_in_r, has_own_r=sets.own is not None,
                           has_own_c=sets.own is not None)
    layers = [([(1.0, randomization)], tables, None)]
    type_joint = {(k, l): events_probability(layers, t_r.size, rule.events[rule.conditions[k]],
                                              rule.events[rule.conditions[l]]) for k, l in keys}
    return type_pairs, type_joint, meet
