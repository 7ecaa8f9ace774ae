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
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .design import OUT, Assignment
from .errors import DataWarning, InputError, PositivityWarning
from .graph import BipartiteGraph, SocialGraph, csr_rows, group_indicator

# --------------------------------------------------------------------------- mappings


@dataclass(frozen=True)
class Counts:
    """What a mapping sees for each unit (arrays of shape ``(n,)`` or ``(n, R)``).

    ``own`` is 1 when the unit itself is treated (always 0 on the unit side of a bipartite
    graph); ``n_neighbors`` and ``n_treated`` count neighbours and treated neighbours;
    ``n_treated_2hop`` counts treated units exactly two hops away (only with ``hops=2``).
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


@dataclass(frozen=True)
class Mapping:
    """An exposure mapping: ``rule(counts) -> integer codes`` into ``conditions``.

    ``control`` is the condition every contrast is taken against; ``estimands`` names
    the estimand each other condition's contrast targets (``direct``, ``indirect``,
    ``total``). A user-defined mapping is any ``Mapping`` with a vectorised rule, e.g.::

        Mapping("two+", ("two_plus", "fewer"), "fewer",
                lambda c: np.where(c.n_treated >= 2, 0, 1))
    """

    name: str
    conditions: tuple[str, ...]
    control: str
    rule: Callable[[Counts], np.ndarray]
    estimands: dict[str, str] = field(default_factory=dict)
    hops: int = 1

    def codes(self, counts: Counts) -> np.ndarray:
        return np.asarray(self.rule(counts), dtype=np.int8)

    def estimand(self, condition: str) -> str:
        return self.estimands.get(condition, f"{condition} vs {self.control}")


def as4() -> Mapping:
    """Aronow & Samii's four conditions for one hop: treated or not x some or no treated
    neighbour (``dir_ind1``, ``isol_dir``, ``ind1``, ``no``)."""
    def rule(c: Counts) -> np.ndarray:
        # 0 dir_ind1, 1 isol_dir, 2 ind1, 3 no: arithmetic on int8 beats nested where
        untreated = (c.own == 0).view(np.int8)
        unexposed = (c.n_treated == 0).view(np.int8)
        return 2 * untreated + unexposed

    return Mapping("as4", ("dir_ind1", "isol_dir", "ind1", "no"), "no", rule,
                   {"dir_ind1": "total", "isol_dir": "direct", "ind1": "indirect"})


def as4_two_hop() -> Mapping:
    """The two-hop extension: an untreated-neighbourhood unit is still ``*ind2`` when a
    unit two hops away is treated (``dir_ind1``, ``dir_ind2``, ``isol_dir``, ``ind1``,
    ``ind2``, ``no``)."""
    def rule(c: Counts) -> np.ndarray:
        level = np.where(c.n_treated > 0, 0, np.where(c.n_treated_2hop > 0, 1, 2))
        return np.where(c.own == 1, level, 3 + level)

    return Mapping("as4-2hop", ("dir_ind1", "dir_ind2", "isol_dir", "ind1", "ind2", "no"), "no", rule,
                   {"dir_ind1": "total", "isol_dir": "direct", "ind1": "indirect", "ind2": "indirect (2 hops)",
                    "dir_ind2": "direct + indirect (2 hops)"}, hops=2)


def threshold(q: float = 0.75) -> Mapping:
    """Fractional q-neighbourhood exposure (Ugander et al. 2013): ``treated`` when the unit
    and at least a share ``q`` of its neighbours are treated, ``control`` when the unit and
    at least ``q`` of its neighbours are untreated, ``other`` otherwise. The contrast
    approximates the global average treatment effect."""
    if not 0.0 <= q <= 1.0:
        raise InputError(f"threshold q={q} must be in [0, 1].")

    def rule(c: Counts) -> np.ndarray:
        fraction = np.where(c.n_neighbors > 0, c.treated_fraction, c.own)  # isolated: vacuous
        treated = (c.own == 1) & (fraction >= q)
        control = (c.own == 0) & (1.0 - fraction >= q)
        return np.where(treated, 0, np.where(control, 1, 2))

    return Mapping("threshold", ("treated", "control", "other"), "control", rule, {"treated": "total"})


def own_arm() -> Mapping:
    """Own assignment only (``treated`` / ``control``): the no-interference mapping, whose
    contrast is the naive difference; the treated share of neighbours is reported beside
    it as the continuous exposure."""
    return Mapping("fraction", ("treated", "control"), "control", lambda c: np.where(c.own == 1, 0, 1),
                   {"treated": "direct (ignoring interference)"})


def bipartite(lower: float = 0.0, upper: float = 1.0) -> Mapping:
    """Buyer exposure to a seller-side design: ``direct`` when at least ``upper`` of the
    unit's treated-side neighbours are treated (all of them by default), ``control`` when
    at most ``lower`` are (none by default), ``indirect`` in between."""
    if not 0.0 <= lower < upper <= 1.0:
        raise InputError(f"bipartite thresholds need 0 <= lower < upper <= 1, got {lower}, {upper}.")

    def rule(c: Counts) -> np.ndarray:
        share = c.treated_fraction
        return np.where(share >= upper, 0, np.where(share <= lower, 2, 1))

    return Mapping("bipartite", ("direct", "indirect", "control"), "control", rule,
                   {"direct": "direct", "indirect": "indirect"})


MAPPINGS = {"fraction": own_arm, "as4": as4, "threshold": threshold, "bipartite": bipartite}


def get_mapping(mapping: str | Mapping, *, threshold_q: float | None = None, hops: int = 1) -> Mapping:
    """A mapping by its command-line name (``fraction``, ``as4``, ``threshold``,
    ``bipartite``), or the given :class:`Mapping`."""
    if isinstance(mapping, Mapping):
        return mapping
    if mapping == "as4":
        return as4_two_hop() if hops == 2 else as4()
    if mapping == "threshold":
        return threshold(0.75 if threshold_q is None else threshold_q)
    if mapping in MAPPINGS:
        return MAPPINGS[mapping]()
    raise InputError(f"unknown exposure mapping {mapping!r}; choose one of {list(MAPPINGS)} or pass a Mapping.")


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

    def counts(self, treated: np.ndarray) -> Counts:
        """Counts for a 0/1 vector or ``(n_randomized, R)`` matrix of treated indicators."""
        degree = np.diff(self.neighbors.indptr)
        if treated.ndim == 2:
            degree = degree[:, None]
        n_treated = self.neighbors @ treated
        own = treated[self.own_index] if self.own_index is not None else np.zeros_like(n_treated)
        return Counts(
            own=own,
            n_neighbors=np.broadcast_to(degree, own.shape),
            n_treated=n_treated,
            n_treated_2hop=None if self.two_hop is None else self.two_hop @ treated,
        )

    def dependence(self, clusters: np.ndarray | None = None) -> sp.csr_array:
        """Pairs of units whose exposures share a randomization unit: ``N N^T`` with ``N``
        the closed neighbourhood (two-hop reach included when used) mapped to clusters
        when nodes are randomized in clusters, plus every unit with itself."""
        reach = self.neighbors
        if self.two_hop is not None:
            reach = reach + self.two_hop
        if self.own_index is not None:
            reach = reach + sp.eye_array(reach.shape[0], dtype=np.int32, format="csr")
        reach = sp.csr_array(reach)
        if clusters is not None:  # exposures depend on the clusters their neighbours are in
            reach = sp.csr_array(reach @ group_indicator(clusters, int(clusters.max()) + 1).T)
        reach.data[:] = 1
        pairs = (reach @ reach.T + sp.eye_array(reach.shape[0], dtype=np.int32)).tocsr()
        pairs.data[:] = 1
        pairs.sort_indices()
        return sp.csr_array(pairs)


def _treated(arms: np.ndarray) -> np.ndarray:
    """Arm 1 (and any arm >= 1) is treated; control and units out of the experiment are not."""
    return (arms >= 1).astype(np.int8)


def _arms_for(randomized: pd.Index, assignment: Assignment | pd.Series | pd.DataFrame) -> np.ndarray:
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
        raise InputError(f"assignment: unit id {series.index[series.index.duplicated()][0]!r} appears twice.")
    unknown = series.index.difference(randomized)
    if len(unknown):
        raise InputError(f"assignment: {len(unknown)} unit id(s) not in the graph, e.g. {list(unknown[:5])}.")
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
    rule = get_mapping(mapping, threshold_q=threshold_q, hops=hops)
    kernel = ExposureGraph.build(graph, rule.hops)
    arms = _arms_for(kernel.randomized, assignment)
    counts = kernel.counts(_treated(arms))
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
class ExposureProbabilities:
    """Probability of each exposure condition for each unit under a design.

    ``marginal[i, k]`` is unit ``i``'s probability of condition ``k``. ``joint[(k, l)]``
    holds ``P(D_i = k, D_j = l)`` for the pairs in ``pairs`` (units whose exposures can
    depend on each other), for ``l = k`` and for ``l`` the control condition (what the
    variance of a contrast with the control needs); pairs outside ``pairs`` are
    independent, with joint probability the product of the marginals. ``n_draws`` and ``method`` say how they were obtained.
    """

    units: pd.Index
    conditions: tuple[str, ...]
    marginal: np.ndarray
    pairs: sp.csr_array
    joint: dict[tuple[int, int], sp.csr_array]
    n_draws: int | None
    method: str

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.marginal, columns=[f"p_{c}" for c in self.conditions])
        frame.insert(0, "unit_id", self.units)
        return frame

    def condition_index(self, condition: str) -> int:
        try:
            return self.conditions.index(condition)
        except ValueError:
            raise InputError(f"condition {condition!r} is not one of {list(self.conditions)}.") from None


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
) -> ExposureProbabilities:
    """Exposure probabilities by Monte Carlo over ``design.draw`` (``n_draws`` draws in
    chunks of ``chunk``) or from a matrix of ``draws`` made elsewhere (one column per
    draw, rows in the graph's randomized-node order; a DataFrame has one row per draw and
    one column per unit id).

    ``joint`` says which pairs get joint probabilities: ``"dependent"`` (units whose
    exposures share a randomized node; all other pairs are independent under designs
    that randomize nodes or clusters independently), ``"all"`` (every pair: small graphs,
    and exact agreement with a dense reference) or ``None`` (marginals only).
    ``correction="add-one"`` uses ``(count + 1) / (R + 1)``, the convention of Aronow and
    Samii's reference implementation. Units whose probability of a condition is below
    ``positivity_floor`` (default: no draw at all) are reported in a
    :class:`PositivityWarning`.
    """
    rule = get_mapping(mapping, threshold_q=threshold_q, hops=hops)
    kernel = ExposureGraph.build(graph, rule.hops)
    n_cond = len(rule.conditions)
    if draws is not None:
        matrix = _draws_matrix(draws, kernel.randomized)
        total = matrix.shape[1]
        chunks = (matrix[:, s:s + chunk] for s in range(0, total, chunk))
        method = "given draws"
    else:
        if design is None:
            raise InputError("exposure probabilities need a design or a matrix of draws.")
        rng = np.random.default_rng(seed)
        total = int(n_draws)
        chunks = (design.draw(min(chunk, total - s), rng) for s in range(0, total, chunk))
        method = "monte carlo"
    n_units = len(kernel.units)
    if joint == "dependent":
        pairs = kernel.dependence(getattr(design, "clusters", None) if draws is None else None)
    elif joint == "all":
        pairs = sp.csr_array(np.ones((n_units, n_units), dtype=np.int32))
    elif joint is None:
        pairs = sp.csr_array((n_units, n_units), dtype=np.int32)
    else:
        raise InputError(f"joint must be 'dependent', 'all' or None, not {joint!r}.")
    counts = np.zeros((n_units, n_cond), dtype=np.int64)
    # the variance of a contrast with the control needs (k, k) and (k, control) only
    control = rule.conditions.index(rule.control)
    keys = [(k, k) for k in range(n_cond)] + [(k, control) for k in range(n_cond) if k != control]
    joint_counts = {key: np.zeros(pairs.nnz, dtype=np.int64) for key in keys} if pairs.nnz else {}
    for arms in chunks:  # a loop over chunks of draws; each chunk is one sparse product
        codes = rule.codes(kernel.counts(_treated(np.asarray(arms))))
        indicators = [(codes == k).astype(np.int8) for k in range(n_cond)]
        for k in range(n_cond):
            counts[:, k] += indicators[k].sum(axis=1)
        for (k, l), acc in joint_counts.items():
            acc += _joint_on_pairs(pairs, indicators[k], indicators[l])
    if correction not in ("none", "add-one"):
        raise InputError(f"prob correction must be 'none' or 'add-one', not {correction!r}.")
    add_one = correction == "add-one"
    # add-one follows Aronow & Samii's reference code exactly: marginals (c+1)/(R+1),
    # same-condition joints c/(R+1), cross-condition joints c/R
    marginal = (counts + 1) / (total + 1) if add_one else counts / total
    rows = csr_rows(pairs)
    diagonal = rows == pairs.indices
    joint_probs = {}
    for (k, l), acc in joint_counts.items():
        values = acc / ((total + 1) if add_one and k == l else total)
        values[diagonal] = marginal[rows[diagonal], k] if k == l else 0.0
        joint_probs[(k, l)] = sp.csr_array((values, pairs.indices, pairs.indptr), shape=pairs.shape)
    floor = positivity_floor if positivity_floor is not None else 0.5 / total
    low = marginal < floor
    if low.any():
        per = {rule.conditions[k]: int(low[:, k].sum()) for k in range(n_cond) if low[:, k].any()}
        warnings.warn(
            f"positivity: units with (almost) no chance of a condition under the design, by condition: {per}. "
            "No estimator can represent them in that condition (Horvitz-Thompson is biased for them, "
            "weights near 0 are unstable). "
            "Use another mapping, a design that reaches every condition, or more draws.",
            PositivityWarning, stacklevel=2,
        )
    return ExposureProbabilities(kernel.units, rule.conditions, marginal, pairs, joint_probs, total,
                                 f"{method}, {total} draws, correction {correction}")


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
