"""Exposure probabilities counted over draws: Monte Carlo draws of a design, or a
matrix of draws made elsewhere (whose blocks and scheme are read from the draws)."""

from __future__ import annotations


import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import InputError
from ..graph import csr_rows
from .kernel import ExposureGraph, treated_indicator
from .mappings import Mapping
from .results import joint_on_pairs


def count_conditions(kernel: "ExposureGraph", rule: Mapping, chunks, pairs: sp.csr_array, keys):
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
                acc += joint_on_pairs(others, indicators[k], indicators[l])
    if not fused:
        counts[:, n_cond - 1] = total - counts[:, :n_cond - 1].sum(axis=1)  # every draw puts a unit in one condition
    joint_counts = {}
    for key in keys:
        values = np.zeros(pairs.nnz, dtype=np.int64)
        if key in joint_off:
            values[off] = joint_off[key]
        joint_counts[key] = values
    return counts, joint_counts


def randomization_from_draws(matrix: np.ndarray, clusters: np.ndarray | None):
    """The blocks of supplied draws (given ``clusters``, else nodes whose arms agree in
    every draw) and whether the treated count of blocks is constant (complete) or not."""
    from ..design import Randomization

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


def draws_matrix(draws: np.ndarray | pd.DataFrame, randomized: pd.Index) -> np.ndarray:
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


def condition_draws(graph, mapping: Mapping, design, n_draws: int, seed=None, chunk: int = 100
                    ) -> tuple[pd.Index, np.ndarray]:
    """Each unit's exposure condition (its index in ``mapping.conditions``) in ``n_draws``
    fresh draws of ``design``: the units (the exposure kernel's order) and a ``(units,
    n_draws)`` int8 matrix, drawn ``chunk`` at a time. What a design-based simulation of
    an estimator replays.

    >>> from spillover import synth
    >>> from spillover.design import IndividualDesign
    >>> from spillover.exposure import get_mapping
    >>> graph = synth.social_graph(500, seed=1)
    >>> units, codes = condition_draws(graph, get_mapping("as4"), IndividualDesign(graph.nodes, 0.3), 20, seed=2)
    >>> codes.shape, len(units) == graph.n_nodes
    ((500, 20), True)
    """
    from ..seeds import check_seed

    kernel = ExposureGraph.build(graph, mapping.hops)
    rng = check_seed(seed)
    out = np.empty((len(kernel.units), n_draws), dtype=np.int8)
    for start in range(0, n_draws, chunk):
        size = min(chunk, n_draws - start)
        treated = treated_indicator(design.draw(size, seed=rng))
        out[:, start:start + size] = mapping.codes(kernel.counts(treated))
    return kernel.units, out

