"""Exact exposure probabilities of mappings that read only counts: binomial and
hypergeometric counts under individual designs, weighted sums of cluster draws (a
dynamic programme) under cluster designs."""

from __future__ import annotations


import numpy as np
import scipy.sparse as sp

from ..graph import csr_rows, group_indicator
from .exact import MAX_DP_WORK, event_probability, pattern_probability
from .kernel import ExposureGraph
from .mappings import Counts, Mapping
from .results import csr_lookup


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
        prob = float(event_probability(randomization, t, n_fixed - t))  # this one pattern of own arms
        if randomization.scheme == "bernoulli":
            yield statuses, prob, None, None
        else:
            yield statuses, prob, k - t, m - n_fixed


def exact_by_counts(kernel: "ExposureGraph", rule: Mapping, randomization, pairs: sp.csr_array, keys):
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
    pos = csr_lookup(shared_matrix, rows[off], cols[off])
    shared = np.where(pos >= 0, shared_matrix.data[np.maximum(pos, 0)], 0)
    adjacent = ((csr_lookup(adjacency, rows[off], cols[off]) >= 0).astype(np.int64) if has_own
                else np.zeros(pos.size, np.int64))
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
    return pattern_probability(pool[:, None], left[:, None], j, n_real[:, None] - j)


def exact_by_weighted_counts(kernel: "ExposureGraph", rule: Mapping, randomization, pairs: sp.csr_array, keys):
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
    def weight_of(units: np.ndarray, block: np.ndarray) -> np.ndarray:
        pos = csr_lookup(weights, units, np.maximum(block, 0))
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
            prob = event_probability(randomization, treated, n_own - treated)
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
