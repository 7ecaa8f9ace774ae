"""A sharper bound for the pairs of units that are never observed in a contrast's two
conditions together: Young's inequality per pair replaced, on complete blocks of such
pairs, by one inequality on the blocks' totals.

Horvitz-Thompson's variance for a contrast of conditions ``k`` and ``l`` holds, for every
pair ``(i, j)`` whose joint probability ``pi_kl(i, j)`` is zero, the term
``2 e_i(k) e_j(l)``, never observed. Aronow & Samii bound each by
``e_i(k)^2 + e_j(l)^2``. When the zero pairs form a complete block ``K x L`` (every unit
of ``K`` is never in ``k`` while any unit of ``L`` is in ``l``: under cluster randomization
the units of one cluster against every unit that needs that cluster in control), the
block's terms sum to ``2 E_k E_l`` with ``E_k = sum_K e(k)`` and ``E_l = sum_L e(l)``, and

    2 E_k E_l <= c E_k^2 + E_l^2 / c,      c = |L| / |K|,

whose right side is at most Young's ``|L| sum_K e(k)^2 + |K| sum_L e(l)^2`` for every
outcome (Cauchy-Schwarz): never looser, and much tighter when the units of a block move
together (a cluster effect), because the totals keep their signs. Both squares are
estimated without bias from pairs of one condition, which the design does observe
together (Horvitz-Thompson over the block's pairs; Young's bound for any pair of the
block that is not). The bound belongs to the family that Harshaw, Middleton & Sävje
optimise ("Optimized variance estimation under interference and complex experimental
designs"), with a closed form instead of a semidefinite program.

Blocks are found from the zero pattern alone, so no design is assumed: units whose rows
of zero pairs are identical form ``K``, their common row is ``L``; blocks of one unit are
left to Young (their gain is small and unsigned).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..graph import csr_rows

_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F))


def complete_blocks(zero: sp.csr_array, weights: np.ndarray | None = None,
                    min_rows: float = 2) -> tuple[np.ndarray, sp.csr_array]:
    """The complete blocks of a 0/1 pattern ``zero`` (rows: units, or classes of units,
    in ``k``; columns: in ``l``): ``block`` (each row's block, -1 for none) and
    ``columns`` (blocks x columns, 0/1: each block's ``L``). Rows with identical
    non-empty patterns form a block when their ``weights`` (units per row; default 1)
    sum to at least ``min_rows``.

    Examples
    --------
    >>> zero = sp.csr_array(np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]]))
    >>> block, columns = complete_blocks(zero)
    >>> block.tolist(), columns.toarray().tolist()
    ([0, 0, -1], [[1, 1, 0]])
    """
    zero = sp.csr_array(zero, copy=True)  # sorted in place below: never the caller's arrays
    zero.sum_duplicates()
    zero.sort_indices()
    n_rows = zero.shape[0]
    weights = np.ones(n_rows) if weights is None else np.asarray(weights, dtype=float)
    lengths = np.diff(zero.indptr)
    filled = np.flatnonzero(lengths > 0)
    block = np.full(n_rows, -1, dtype=np.int64)
    empty = sp.csr_array((0, zero.shape[1]), dtype=np.int8)
    if filled.size == 0:
        return block, empty
    keys = [lengths[filled].astype(np.uint64)]
    column = zero.indices.astype(np.uint64) + np.uint64(1)
    with np.errstate(over="ignore"):
        for mix in _MIX:  # two independent 64-bit hashes of each row's columns
            mixed = column * mix
            mixed ^= mixed >> np.uint64(29)
            mixed *= mix
            keys.append(np.add.reduceat(mixed, zero.indptr[filled]))
    _, group = np.unique(np.column_stack(keys), axis=0, return_inverse=True)
    group = group.ravel()
    shared = np.bincount(group, weights=weights[filled])[group] >= min_rows
    rows, group = filled[shared], group[shared]
    if rows.size == 0:
        return block, empty
    ids, code = np.unique(group, return_inverse=True)
    first = np.zeros(ids.size, dtype=np.int64)
    first[code[::-1]] = rows[::-1]  # the first row of each block
    columns = sp.csr_array(zero[first], dtype=np.int8)
    # exactness: each row of a block has all of its block's columns (its hash could only collide)
    own = sp.csr_array((np.ones(rows.size), (np.arange(rows.size), code)), shape=(rows.size, ids.size))
    hits = np.asarray((zero[rows].astype(np.int64) @ columns.T.astype(np.int64)).multiply(own).sum(axis=1)).ravel()
    code = np.where(hits == np.diff(columns.indptr)[code], code, -1)
    counts = np.bincount(code[code >= 0], weights=weights[rows][code >= 0], minlength=ids.size)
    kept = np.flatnonzero(counts >= min_rows)  # blocks still of min_rows rows once any collision is out
    renumber = np.full(ids.size, -1, dtype=np.int64)
    renumber[kept] = np.arange(kept.size)
    block[rows] = np.where(code >= 0, renumber[np.maximum(code, 0)], -1)
    return block, sp.csr_array(columns[kept])


def _squared_totals(a: np.ndarray, s: np.ndarray, q: np.ndarray, pi: np.ndarray, size: np.ndarray,
                    joint: sp.csr_array, membership: sp.csr_array, scale: np.ndarray) -> float:
    """``sum_b scale_b * Q_b``, ``Q_b`` the unbiased estimate of ``(sum over the units of
    block b of e)^2``, from class sums (a class: units with the same condition in every
    draw; one unit per class when the probabilities are per unit): ``a = sum I e / pi``,
    ``s = sum I e^2 / pi``, ``q = sum (I e / pi)^2``, the class's probability ``pi`` and
    its units ``size``. It is ``(sum a)^2`` with each unit's own square replaced by its HT
    term ``s``, the pairs of one class (in the condition together with probability
    ``pi``) weighted by ``pi``, and each stored pair of classes re-weighted by
    ``pi_c pi_d / p_cd``, or, where ``p_cd = 0``, replaced by Young's bound
    ``(size_d s_c + size_c s_d) / 2``."""
    totals = membership.T @ a
    own = membership.T @ (s + (pi - 1.0) * a**2 - pi * q)
    value = float(scale @ (totals**2 + own))
    rows, cols, p = csr_rows(joint), joint.indices, joint.data
    product = a[rows] * a[cols]
    with np.errstate(divide="ignore", invalid="ignore"):
        corrected = np.where(rows == cols, 0.0,  # a class with itself: the own term above
                             np.where(p > 0, product * (pi[rows] * pi[cols] / p - 1.0),
                                      (s[rows] * size[cols] + s[cols] * size[rows]) / 2.0 - product))
    # copies: a product may sort indices in place, and these are the probabilities' own
    pairs = sp.csr_array((corrected, joint.indices.copy(), joint.indptr.copy()), shape=joint.shape)
    # sum over blocks b of scale_b * (the corrections of the stored pairs inside b): diag(M' C M) . scale
    inside = np.asarray(sp.csr_array(membership).multiply(pairs @ membership).sum(axis=0)).ravel()
    return value + float(inside @ scale)


def block_adjustment(joint_kl: sp.csr_array, joint_kk: sp.csr_array, joint_ll: sp.csr_array, a_k: np.ndarray,
                     a_l: np.ndarray, s_k: np.ndarray, s_l: np.ndarray, size: np.ndarray, pi_k: np.ndarray,
                     pi_l: np.ndarray) -> tuple[float, int]:
    """What replacing Young's bound by the block bound changes in the variance of the HT
    total contrast ``k - l`` (to divide by ``N^2`` as the rest), and the number of blocks.

    Arrays are per class of units (one unit per class when the probabilities are per
    unit; a class of ``size`` 0 is not analysed): ``a = sum I e / pi`` and
    ``s = sum I e^2 / pi`` in each condition, ``e`` the outcome (HT) or the linearised
    residual (Hajek), and the class's probabilities. ``joint_kl``, ``joint_kk`` and
    ``joint_ll`` hold the stored joint probabilities (explicit zeros included); the
    class pairs of ``joint_kl`` with probability 0 are the ones never in ``k`` and ``l``
    together (each unit pair's Young term in the variance is
    ``I_i e_i^2 / pi_k(i) + I_j e_j^2 / pi_l(j)``). The change is
    never positive in expectation.

    Examples
    --------
    >>> never = sp.csr_array((np.zeros(4), ([0, 0, 1, 1], [0, 1, 0, 1])), shape=(2, 2))  # never in k and l together
    >>> pairs = sp.csr_array(np.full((2, 2), 0.5))               # both in k, or both in l, half the time
    >>> a, s, none = np.array([2.0, -2.0]), np.array([2.0, 2.0]), np.zeros(2)   # e = 1, -1, both in k
    >>> change, n = block_adjustment(never, pairs, pairs, a, none, s, none, np.ones(2), np.full(2, .5),
    ...                              np.full(2, .5))
    >>> n, change < 0                                             # opposite residuals: their total is 0
    (1, True)
    """
    # the pattern of stored zero pairs, over analysed classes (new arrays: never the probabilities' own)
    pattern = sp.csr_array(((joint_kl.data <= 0).astype(np.int8), joint_kl.indices.copy(), joint_kl.indptr.copy()),
                           shape=joint_kl.shape)
    present = sp.diags_array((size > 0).astype(np.int8))
    zero = sp.csr_array(present @ pattern @ present)
    zero.eliminate_zeros()
    block, columns = complete_blocks(zero, size)
    n_blocks = columns.shape[0]
    if n_blocks == 0:
        return 0.0, 0
    in_block = block >= 0
    rows_k = sp.csr_array((np.ones(int(in_block.sum()), dtype=np.int8), (np.flatnonzero(in_block), block[in_block])),
                          shape=(size.size, n_blocks))
    rows_l = sp.csr_array(columns.T)
    size_k, size_l = rows_k.T @ size, rows_l.T @ size
    c = size_l / size_k
    young = float(size_l @ (rows_k.T @ s_k) + size_k @ (rows_l.T @ s_l))
    with np.errstate(divide="ignore", invalid="ignore"):
        q_k = np.where(pi_k > 0, s_k / pi_k, 0.0)  # a class's units share pi: sum (I e / pi)^2 = s / pi
        q_l = np.where(pi_l > 0, s_l / pi_l, 0.0)
    sharper = (_squared_totals(a_k, s_k, q_k, pi_k, size, joint_kk, rows_k, c)
               + _squared_totals(a_l, s_l, q_l, pi_l, size, joint_ll, rows_l, 1.0 / c))
    return sharper - young, n_blocks
