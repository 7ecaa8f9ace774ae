"""Probability of each exposure condition for each unit under a design: the entry
point that chooses exact, factored or Monte Carlo probabilities."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..design import Design
from ..errors import InputError, PositivityWarning
from ..graph import BipartiteGraph, SocialGraph, csr_rows, first_rows
from ..names import MAX_DEPENDENT_PAIRS, PROBABILITY_METHODS
from ..seeds import check_seed
from .counts import exact_by_counts, exact_by_weighted_counts
from .exact import exact_by_events, exact_by_sets
from .factored import FACTOR_ABOVE_PAIRS, factor_pairs
from .kernel import ExposureGraph, check_pairs, pairs_bound
from .mappings import Mapping, get_mapping
from .montecarlo import count_conditions, draws_matrix, randomization_from_draws
from .results import ExposureProbabilities




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
        matrix = draws_matrix(draws, kernel.randomized)
        if matrix.shape[1] < 1:
            raise InputError("draws: no draw at all; exposure probabilities need at least one.")
        randomization, found = randomization_from_draws(matrix, clusters)
        notes.append(found)
    elif design is None:
        raise InputError("exposure probabilities need a design or a matrix of draws.")
    elif not isinstance(design, Design):
        raise InputError(f"design: a {type(design).__name__} is not a design; designs subclass "
                         "spillover.design.Design (assign, draw, and what they can give exactly).")
    else:
        randomization = design.randomization()
    # a mixture of randomizations (RGCR: a clustering drawn, then its clusters): exact
    # probabilities are the average of each randomization's
    mixture = design.randomizations() if draws is None else None
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
    blocks = np.asarray(randomization.blocks) if randomization is not None else \
        design.dependence_blocks() if design is not None else None
    groups = blocked = None
    if joint == "dependent" and blocks is not None and grouped is not False:
        # each unit's neighbours per block: whether grouping pays, the classes, and whether factoring pays read it
        codes = np.asarray(blocks, dtype=np.int64)
        blocked = kernel.blocked(codes, int(codes.max()) + 1 if codes.size else 0)
        groups = _classes(blocked, force=bool(grouped), sets=rule.events is not None)
        if groups is not None:  # one representative unit per class carries the computation
            first = first_rows(groups, int(groups.max()) + 1)  # classes are numbered 0, 1, ... in order of appearance
            blocked = blocked.restricted(first)
            notes.append(f"{n_units:,} units grouped into {first.size:,} classes with the same exposure in every draw: "
                         "joint probabilities between classes, variance sums linear in the graph")
    factor = factorable and factored is not False and (factored or (
        groups is not None and pairs_bound(blocked.reach()) > FACTOR_ABOVE_PAIRS))
    if groups is not None and not factor:  # the representatives' own operators (factoring reads ``blocked`` alone)
        kernel = kernel.restricted(first)
    if joint == "dependent" and mixture is not None:
        if max_pairs is not None:  # every clustering's pairs are formed before their union
            check_pairs(sum(pairs_bound(kernel.reach(r.blocks)) for r in mixture), max_pairs)
        pairs = _union_of_patterns(kernel.dependence(r.blocks) for r in mixture)
        notes.append(f"pairs that share no cluster in any of the {len(mixture)} clusterings are treated as "
                     "independent; through the draw of the clustering they are weakly dependent, a "
                     "between-clusterings term the variance leaves out (joint='all' computes every pair)")
    elif joint == "dependent":
        if factor:
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
            check_pairs(n_units**2, max_pairs)
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
        *exact_values, pairs, factored_pairs = factor_pairs(kernel, rule, randomization, keys, max_pairs, blocked)
    elif use_exact:
        engine = (exact_by_counts if by_counts and individual else exact_by_weighted_counts if by_counts
                  else exact_by_sets if two_hop_events else exact_by_events)
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
                 f"exact: {design.describe()}, Bernoulli({mixture[0].p:g}) per cluster")
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
            if design.draw_blocks(1, 0) is not None:
                # draws of the blocks, counts as (N C) W: no draws x nodes matrix; the same numbers
                labels = np.asarray(design.dependence_blocks())
                kernel = kernel.blocked(labels, int(labels.max()) + 1)
                chunks = (design.draw_blocks(min(chunk, total - s), rng) for s in range(0, total, chunk))
            else:
                chunks = (design.draw(min(chunk, total - s), rng) for s in range(0, total, chunk))
            source = "monte carlo"
        counts, joint_counts = count_conditions(kernel, rule, chunks, pairs, keys if pairs.nnz else [])
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
    diagonal = np.flatnonzero(rows == pairs.indices)  # each unit (class) with itself
    own = rows[diagonal]
    del rows
    joint_probs = {}
    for (k, l), values in joint_values.items():
        values = np.asarray(values, dtype=float)  # computed here for this key alone: set in place
        values[diagonal] = marginal[own, k] if k == l else 0.0
        joint_probs[(k, l)] = sp.csr_array((values, pairs.indices, pairs.indptr), shape=pairs.shape)
    if groups is not None:  # classes' probabilities back to their units
        marginal, raw = (marginal[groups],) * 2 if raw is marginal else (marginal[groups], raw[groups])
    _check_positivity(raw, rule, control, positivity_floor if positivity_floor is not None else
                      (0.5 / total if total else EXACT_POSITIVITY_FLOOR))
    if mixture is not None and joint is not None:
        notes.append("under a mixture of clusterings two units can be negatively dependent with a tiny joint "
                     "probability; a variance from these bounds such pairs (conservative) instead of weighting "
                     "them by 1 / p_ij")
    unit_blocks = None if blocks is None or isinstance(graph, BipartiteGraph) else np.asarray(blocks)
    return ExposureProbabilities(units, rule.conditions, marginal, pairs, joint_probs, total, label,
                                 rule, tuple(notes), groups, mixture is not None, factored_pairs, unit_blocks)


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


def _classes(blocked: "ExposureGraph", force: bool, sets: bool) -> np.ndarray | None:
    """Each unit's class (:meth:`ExposureGraph.block_signatures` of the operators on the
    design's blocks, :meth:`ExposureGraph.blocked`) when grouping pays: forced, or the
    dependent unit pairs (bounded by the sum over blocks of the squared number of units
    reaching each) exceed :data:`GROUP_ABOVE_PAIRS` and classes are fewer than units."""
    if not force and pairs_bound(blocked.reach()) <= GROUP_ABOVE_PAIRS:
        return None
    classes = blocked.block_signatures(sets=sets)
    if not force and classes.max() + 1 >= 0.9 * classes.size:
        return None
    return classes


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
