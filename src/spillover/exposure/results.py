"""Exposure probabilities as a value: marginals per unit and condition, joint
probabilities of the dependent pairs (stored, or factored by block)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import InputError, show_id
from ..graph import csr_rows, factorize_ids, group_indicator
from .mappings import Mapping


DENSE_CELLS = 1 << 21  # (blocks x types) grids up to this many cells (16 MB) are multiplied dense


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
    row ``p`` of this (stored pairs x ``type_pairs``) matrix counts the blocks stored pair
    ``p`` shares as each type pair, so ``corrections @ c`` is each stored pair's share of
    per-type-pair coefficients ``c``.

    Examples
    --------
    >>> from spillover import synth
    >>> from spillover.design import ClusterDesign
    >>> graph = synth.social_graph(500, seed=2)
    >>> from spillover.exposure import probabilities
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
    corrections: sp.csr_array

    @property
    def n_types(self) -> int:
        """The number of distinct (role, signature) types."""
        return self.type_marginal.shape[0]

    @cached_property
    def _cells(self) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
        """The (block, type) cells the incidences fall in, once: each incidence's cell, the
        number of cells, and the cells as a CSR layout of blocks x types (each block's
        first cell, each cell's type): what :meth:`cross_products` multiplies."""
        width = self.n_types
        cell_of, cells = factorize_ids(self.blocks.astype(np.int64) * width + self.types)  # sorted by block, type
        cells = cells.to_numpy()
        indptr = np.r_[0, np.cumsum(np.bincount(cells // width, minlength=self.n_blocks))]
        return cell_of.astype(np.int64, copy=False), int(cells.size), indptr, cells % width

    @cached_property
    def _cell_matrix(self) -> sp.csr_array:
        """Cells x classes: how many incidences of each class fall in each cell."""
        cell_of, n_cells, _, _ = self._cells
        n_classes = int(self.classes.max()) + 1 if self.classes.size else 0
        return sp.csr_array((np.ones(cell_of.size), (cell_of, self.classes)), shape=(n_cells, n_classes))

    @cached_property
    def swapped(self) -> np.ndarray:
        """For each type pair ``(tau, tau')`` of ``type_pairs``, the position of ``(tau',
        tau)``: types that meet in a block meet either way round."""
        width = self.n_types
        return np.searchsorted(self.type_pairs, (self.type_pairs % width) * width + self.type_pairs // width)

    def cell_sums(self, values: np.ndarray) -> np.ndarray:
        """The sum of ``values`` (one per class; or rows of them, each summed) over the
        classes of each (block, type) cell: what :meth:`cross_products` pairs up."""
        values = np.asarray(values, dtype=float)
        matrix = self._cell_matrix
        if values.shape[-1] > matrix.shape[1]:  # classes beyond the last that reads a block
            values = values[..., :matrix.shape[1]]
        return matrix @ values if values.ndim == 1 else np.ascontiguousarray((matrix @ values.T).T)

    def cross_products(self, cells: np.ndarray, pairs: list[tuple[int, int]]) -> np.ndarray:
        """For rows of :meth:`cell_sums` and pairs ``(x, y)`` of their positions: for each
        type pair ``(tau, tau')`` of ``type_pairs``, the sum over blocks ``b`` of ``cells[x]``
        at ``(b, tau)`` times ``cells[y]`` at ``(b, tau')``, one row per pair. Each is a
        product of the (blocks x types) cells, ``X' Y``: dense, one BLAS call, where the
        grid holds at most :data:`DENSE_CELLS` cells; else sparse, in time linear in the
        pairs of cells that meet in a block."""
        _, _, indptr, kind = self._cells
        width = self.n_types
        out = np.zeros((len(pairs), self.type_pairs.size))
        if self.n_blocks * width <= DENSE_CELLS:  # dense grids, one BLAS call a product: 2.5-3x faster at 1M units
            flat = np.repeat(np.arange(self.n_blocks, dtype=np.int64) * width, np.diff(indptr)) + kind
            dense = {}
            for x in {x for pair in pairs for x in pair}:
                dense[x] = np.zeros((self.n_blocks, width))
                dense[x].ravel()[flat] = cells[x]
            outside = np.ones(width * width, dtype=bool)
            outside[self.type_pairs] = False
            for row, (x, y) in enumerate(pairs):
                product = (dense[x].T @ dense[y]).ravel()
                if product[outside].any():
                    raise AssertionError("factored pairs: two types meet in a block without a type pair")
                out[row] = product[self.type_pairs]
            return out
        grid = {x: sp.csr_array((cells[x], kind, indptr), shape=(self.n_blocks, width)) for pair in pairs for x in pair}
        for row, (x, y) in enumerate(pairs):
            product = (grid[x].T @ grid[y]).tocoo()
            keys = product.row.astype(np.int64) * width + product.col
            position = np.searchsorted(self.type_pairs, keys)
            if (position >= self.type_pairs.size).any() or (self.type_pairs[position] != keys).any():
                raise AssertionError("factored pairs: two types meet in a block without a type pair")
            out[row, position] = product.data
        return out

    def cross(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """For each type pair ``(tau, tau')`` of ``type_pairs``: the sum over blocks ``b``
        of ``(sum of left over the classes of type tau at b) x (sum of right over those
        of type tau' at b)`` (``left``, ``right``: one value per class): each summed per
        cell (:meth:`cell_sums`) and multiplied per block (:meth:`cross_products`); the
        cells are found once (:attr:`_cells`). A variance multiplies the per-cell sums of
        several vectors at once.

        >>> f = FactoredPairs(np.array([0, 1, 2]), np.array([0, 0, 1]), np.array([0, 1, 0]), 2, np.ones((2, 1)),
        ...                   np.array([0, 1, 2, 3]), {}, sp.csr_array((0, 4)))
        >>> f.cross(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0])).tolist()   # (0,0): 1 + 3, (1,0): 2
        [4.0, 1.0, 2.0, 2.0]
        """
        return self.cross_products(self.cell_sums(np.vstack([left, right])), [(0, 1)])[0]


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

    ``unit_blocks[i]`` (social graphs, from a design's blocks) is the randomization block
    (cluster; the unit itself under individual designs) of unit ``i``: how many
    independent draws a condition's units stand on (:func:`~spillover.estimate.weighting.
    horvitz_thompson`'s small-sample care). None on bipartite graphs (a buyer sits on
    several blocks) and where no design was given.

    Examples
    --------
    >>> from spillover import synth
    >>> from spillover.design import ClusterDesign
    >>> graph = synth.social_graph(300, seed=2)
    >>> design = ClusterDesign(graph.nodes % 30, graph.nodes)
    >>> from spillover.exposure import probabilities
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
    unit_blocks: np.ndarray | None = None

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
                                     self.bound_negative_pairs, unit_blocks=self.unit_blocks)

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
        incidence_keys = pair_keys(f.classes, f.blocks, f.n_blocks)
        type_r = f.types[lookup_keys(incidence_keys, pair_keys(rows[one], block, f.n_blocks))]
        type_c = f.types[lookup_keys(incidence_keys, pair_keys(cols[one], block, f.n_blocks))]
        position = lookup_keys(f.type_pairs, pair_keys(type_r, type_c, f.n_types))
        stored = lookup_keys(csr_keys(self.pairs, n), pair_keys(rows[~one], cols[~one], n))
        pairs = sp.csr_array((np.ones(rows.size, dtype=np.int32), shared.indices, shared.indptr), shape=(n, n))
        joint = {}
        for key, values in self.joint.items():
            data = np.empty(rows.size)
            data[one] = f.joint[key][position]
            data[~one] = values.data[stored]
            joint[key] = sp.csr_array((data, pairs.indices, pairs.indptr), shape=(n, n))
        return dataclasses.replace(self, pairs=pairs, joint=joint, factored=None)

    def with_notes(self, *notes: str) -> "ExposureProbabilities":
        """The same probabilities with more notes (what an analysis from them should say)."""
        return dataclasses.replace(self, notes=self.notes + tuple(notes))

    def condition_index(self, condition: str) -> int:
        """The column of ``condition`` in ``marginal``; an unknown one is an error."""
        try:
            return self.conditions.index(condition)
        except ValueError:
            raise InputError(f"condition {show_id(condition)} is not one of {list(self.conditions)}.") from None


def joint_on_pairs(pairs: sp.csr_array, left: np.ndarray, right: np.ndarray) -> np.ndarray:
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


def pair_keys(rows: np.ndarray, cols: np.ndarray, width: int) -> np.ndarray:
    """One sorted-comparable int64 key per (row, column) pair."""
    return np.asarray(rows, dtype=np.int64) * width + cols


def csr_keys(matrix: sp.csr_array, width: int) -> np.ndarray:
    """The keys of a CSR matrix's stored entries, sorted when its indices are."""
    return pair_keys(csr_rows(matrix), matrix.indices, width)


def csr_lookup(matrix: sp.csr_array, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Position of each entry ``(rows[p], cols[p])`` among ``matrix``'s stored entries (in
    CSR order: the index into ``matrix.data``), or -1 where none is stored. Each query
    searches its own row only (scipy's sampling of a CSR matrix), about ten times faster
    than :func:`lookup_keys` over every key at a million rows. ``matrix`` must hold no
    duplicate entries (sorted indices make each search a bisection); ``cols`` must be
    non-negative.

    >>> m = sp.csr_array(np.array([[0, 5, 0], [7, 0, 9]]))
    >>> csr_lookup(m, np.array([0, 1, 1, 0]), np.array([1, 2, 1, 0])).tolist()
    [0, 2, -1, -1]
    """
    if matrix.nnz == 0 or np.size(rows) == 0:
        return np.full(np.shape(rows), -1, dtype=np.int64)
    position = sp.csr_array((np.arange(1, matrix.nnz + 1, dtype=np.int64), matrix.indices, matrix.indptr),
                            shape=matrix.shape)
    return np.asarray(position[np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)]).ravel() - 1


def lookup_keys(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Position of each query in the sorted ``keys``, or -1."""
    if keys.size == 0:
        return np.full(queries.shape, -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(keys, queries), keys.size - 1)
    return np.where(keys[pos] == queries, pos, -1)
