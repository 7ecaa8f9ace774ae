"""Design-based estimators that weight by the exposure probabilities: Horvitz-Thompson
and Hajek with the Aronow-Samii conservative variance (pair sums stored or factored by
block), and Gao & Ding's weighted least squares."""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import (
    InputError,
    PositivityWarning,
    SmallConditionWarning,
)
from ..exposure import ExposureProbabilities, Mapping, default_control
from ..exposure.probability import EXACT_POSITIVITY_FLOOR
from ..graph import csr_rows
from ..variance import (
    dependence_robust,
)
from .blocks import block_adjustment
from .global_effect import shared_neighbour_pairs
from .registry import Analysis, Estimator, Verdict, register
from .results import Effect
from .table import analysis_table, contrasted_conditions, make_effect, no_control_error


def _class_sums(groups: np.ndarray, n_groups: int, ind: np.ndarray, y: np.ndarray, pi: np.ndarray):
    """Per class of units with identical exposures in every draw (one unit per class when
    the probabilities are per unit): ``a = sum I y / pi``, ``m = sum I y^2 / (2 pi)``, the
    class's analysed units, and its probability."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.bincount(groups, weights=np.where(ind, y / pi, 0.0), minlength=n_groups)
        m = np.bincount(groups, weights=np.where(ind, y**2 / (2 * pi), 0.0), minlength=n_groups)
    size = np.bincount(groups, minlength=n_groups).astype(float)
    p = np.zeros(n_groups)
    p[groups] = pi
    return a, m, size, p


def _bounded(p: np.ndarray, product: np.ndarray, bound_negative: bool) -> np.ndarray:
    """Weight of the Aronow-Samii bound for each stored pair: 1 where the joint
    probability is zero; with ``bound_negative``, ``1 - p / (pi_s pi_t)`` where the pair
    is negatively dependent (the bound ``-d y_s y_t <= d (y_s^2 + y_t^2) / 2``, equal to
    the zero-probability bound at ``p = 0``); 0 elsewhere (the unbiased term is used)."""
    weight = (p <= 0).astype(float)
    if bound_negative:
        with np.errstate(divide="ignore", invalid="ignore"):
            negative = (p > 0) & (p < product)
            weight = np.where(negative, 1.0 - p / product, weight)
    return weight


# the rows of the per-class values a contrast's variance sums over (:func:`_contrast_sums`), each a pair of rows
# (condition k's, condition l's) but size: a pair's two ends are gathered at once, a column of these per end
_PI, _A, _M, _SIZE = 0, 2, 4, 6


def _contrast_sums(joint: dict, k: int, l: int, a_k, a_l, m_k, m_l, size, p_k, p_l, bound_negative: bool,
                   factored=None) -> tuple[float, float, float]:
    """Aronow-Samii conservative variance parts of one contrast's two HT totals, over
    classes of units (:func:`_class_sums`; a class is one unit when the probabilities are
    per unit): the variance of condition ``k``'s total, of ``l``'s, and their covariance.

    A variance is the unadjusted double sum ``(p_st - pi_s pi_t) / p_st a_s a_t`` over pairs
    with positive joint probability, plus the bound ``I_i y_i^2 / (2 pi_i) + I_j y_j^2 /
    (2 pi_j)`` summed over every unit pair whose joint probability is zero; the covariance
    has the bound subtracted (a unit with itself included). With ``bound_negative``,
    negatively dependent pairs are bounded too, weighted (:func:`_bounded`). Pairs not
    stored are independent and add nothing (or, with ``factored``, share one block and are
    summed per block: :func:`_factored_sums`). Two units of one class share every
    probability, so the class sums give the unit-level double sum exactly, in time linear
    in the classes' pairs; the three sums share one pass over the stored pairs."""
    keys = ((k, k), (l, l), (k, l))
    terms = ((0, 0), (1, 1), (0, 1))  # each key's row and column condition, as rows of ``values``
    values = np.vstack([p_k, p_l, a_k, a_l, m_k, m_l, size])  # one row per quantity, one column per class
    sums = np.zeros((3, 2))
    less = None
    structure = joint[keys[0]]
    if factored is not None:  # the pairs sharing one block, per block; the stored pairs' one-block terms undone
        more, per_type = _factored_sums(factored, keys, terms, values)
        sums += more
        # each stored pair's share of every key's two coefficients: a product over its shared blocks, chunk by chunk
        less = (factored.corrections, np.column_stack([c for pair in per_type for c in pair]))
    if all(np.array_equal(joint[key].indptr, structure.indptr) and np.array_equal(joint[key].indices, structure.indices)
           for key in keys[1:]):
        sums += _pair_sums(csr_rows(structure), structure.indices,
                           [(joint[key].data, i, j) for key, (i, j) in zip(keys, terms)], values, bound_negative, less)
    else:  # joints stored on different pairs (one of them empty): a pass for each
        sums += np.vstack([_pair_sums(csr_rows(joint[key]), joint[key].indices, [(joint[key].data, i, j)], values,
                                      bound_negative, None if less is None else (less[0], less[1][:, 2 * t:2 * t + 2]))
                           for t, (key, (i, j)) in enumerate(zip(keys, terms))])
    (unadjusted_k, bound_k), (unadjusted_l, bound_l), (first, bound_kl) = sums
    return unadjusted_k + bound_k, unadjusted_l + bound_l, first - bound_kl


PAIR_CHUNK = 32_768  # stored pairs summed at once: their temporaries (a few MB) stay in a core's cache, 1.3x faster
# than 250,000 pairs a chunk on 1.65M pairs (memory bandwidth, not arithmetic, bounds these passes)


def _pair_sums(rows, cols, terms, values: np.ndarray, bound_negative: bool, less=None) -> np.ndarray:
    """Over the pairs ``(rows, cols)``, in chunks, for each term ``(p, i, j)`` (the pairs'
    joint probabilities, the row's and the column's condition: rows of ``values``, laid
    out as :data:`_PI` ...): the sum of ``(p - pi_r pi_c) / p a_r a_c`` where the unbiased
    term is used, and the sum of the bound's ``weight (m_r size_c + m_c size_r)`` where the
    pair is bounded (:func:`_bounded`). Each pair's two ends are gathered once, for every
    term. ``less``: a (pairs x type pairs) matrix and two columns of coefficients per term:
    their product is each pair's share of the term's two coefficients, to subtract from the
    pair's own (the per-block sums' share of a stored pair, :func:`_factored_sums`) before its
    values are multiplied in. Returns ``(terms, 2)``."""
    sums = np.zeros((len(terms), 2))
    for start in range(0, rows.size, PAIR_CHUNK):
        part = slice(start, start + PAIR_CHUNK)
        left, right = np.take(values, rows[part], axis=1), np.take(values, cols[part], axis=1)  # each end's values
        shares = None if less is None else less[0][part] @ less[1]
        for t, (p, i, j) in enumerate(terms):
            unbiased, weight = _pair_coefficients(p[part], left[_PI + i] * right[_PI + j], bound_negative)
            if shares is not None:
                unbiased -= shares[:, 2 * t]
                weight = weight - shares[:, 2 * t + 1]
            sums[t, 0] += float(unbiased @ (left[_A + i] * right[_A + j]))
            sums[t, 1] += float(weight @ (left[_M + i] * right[_SIZE] + right[_M + j] * left[_SIZE]))
    return sums


def _pair_coefficients(p: np.ndarray, product: np.ndarray, bound_negative: bool) -> tuple[np.ndarray, np.ndarray]:
    """For pairs of joint probability ``p`` and product of marginals ``product``: the
    coefficient ``(p - product) / p`` of ``a_r a_c`` where the unbiased term is used (0
    elsewhere), and the bound's weight (:func:`_bounded`; 0 where the term is used)."""
    weight = _bounded(p, product, bound_negative)
    with np.errstate(divide="ignore", invalid="ignore"):
        unbiased = np.where(weight == 0, (p - product) / p, 0.0)
    return unbiased, weight


def _factored_sums(factored, keys, terms, values: np.ndarray) -> tuple[np.ndarray, list]:
    """:func:`_pair_sums` over the class pairs of a :class:`~spillover.exposure.FactoredPairs`
    that share exactly one block, for each key and term, per block and pair of types:
    ``sum_b A_b(tau) A_b(tau')`` (:meth:`~spillover.exposure.FactoredPairs.cross_products`,
    each vector summed per cell once) weighted by the types' term: time linear in the
    graph. Returns the sums and, per key, the two coefficients of each type pair. The
    stored pairs (which share two or more blocks, or are a class with itself, and have
    their exact terms) are counted here too, once per shared block with their types'
    coefficients; :func:`_pair_sums` subtracts that share (``factored.corrections``)."""
    width, marginal, type_pairs = factored.n_types, factored.type_marginal, factored.type_pairs
    # the per-cell sums of a, m and size, multiplied per block for each key's two sums: a_i a_j, and m_i size (the
    # bound's other half, size m_j, is m_j size with the types swapped)
    a, m, size = _A - _A, _M - _A, _SIZE - _A
    wanted = sorted({pair for i, j in terms for pair in ((a + i, a + j), (m + i, size), (m + j, size))})
    products = dict(zip(wanted, factored.cross_products(factored.cell_sums(values[_A:]), wanted)))
    sums = np.zeros((len(keys), 2))
    per_type = []
    for t, ((k, l), (i, j)) in enumerate(zip(keys, terms)):
        unbiased, weight = _pair_coefficients(factored.joint[(k, l)],
                                              marginal[type_pairs // width, k] * marginal[type_pairs % width, l], False)
        sums[t, 0] = float(unbiased @ products[(a + i, a + j)])
        sums[t, 1] = float(weight @ (products[(m + i, size)] + products[(m + j, size)][factored.swapped]))
        per_type.append((unbiased, weight))
    return sums, per_type


def _condition_codes(column: pd.Series, conditions: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Each row's condition as its index in ``conditions`` (-1 for none of them, or
    missing), from one lookup per distinct label rather than a string comparison per row;
    and the labels seen that are not among ``conditions``.

    >>> _condition_codes(pd.Series(["b", "a", "x", "b"], dtype="category"), ("a", "b"))
    (array([ 1,  0, -1,  1]), ['x'])
    """
    codes, labels = pd.factorize(column)
    labels = pd.Index(labels).astype(str)
    lookup = pd.Index(conditions).get_indexer(labels)
    return np.where(codes >= 0, lookup[codes], -1), [label for label, at in zip(labels, lookup) if at < 0]


SMALL_PROBABILITY = 0.01  # below this, a unit's weight can dominate and the variance estimate falters
FEW_UNITS = 30  # fewer units in a compared condition and a normal interval rests on little data


def horvitz_thompson(
    table: pd.DataFrame,
    probs: ExposureProbabilities,
    control: str,
    alpha: float = 0.05,
    hajek: bool = False,
    mapping: Mapping | None = None,
    min_probability: float = 0.0,
    min_units: int = 1,
    notes: list[str] | None = None,
    simulated: np.ndarray | None = None,
    bound: str = "auto",
) -> list[Effect]:
    """HT (or Hajek) contrasts of each condition against ``control`` under the design
    that produced ``probs``, with the Aronow-Samii conservative variance.

    With ``simulated`` (each unit's condition index in fresh draws of the design,
    ``(units of probs, R)``: :func:`~spillover.exposure.montecarlo.condition_draws`) the
    standard error is the larger of the Aronow-Samii one and the sd of the same estimator
    over those draws, outcomes imputed under constant effects at the estimated condition
    means (:func:`simulated_se`): the bound's estimate misses the spread heavy weights
    cause (Hajek at p = 0.5: coverage 0.88-0.93 with the bound alone, 0.96-0.98 with the
    simulation, on our graph and a Watts-Strogatz one; docs/inference.md).

    Positivity decides each contrast's population: the units of ``table`` (their outcomes
    observed) that can be in both of its conditions, with probabilities of at least
    ``min_probability`` (and above the positivity floor: 1e-6 for exact probabilities,
    no draw at all for Monte Carlo ones); ``N`` of them. Where that trims units, the
    estimand is that population's average effect, and ``notes`` say how many units it
    holds. A contrast that fewer than ``min_units`` units can reach (or that fewer are
    expected or observed in) is left out with a note, never the whole call; one whose
    observed units' weights are so unequal that their effective sample size (Kish's
    ``(sum w)^2 / sum w^2``) in a compared condition is below ``min_units`` keeps its
    estimate and standard error but no interval or p-value (the normal approximation
    cannot hold), with a note.

    ``bound``: pairs of units never observed in the contrast's two conditions together
    are bounded pair by pair (``"pairs"``: Aronow & Samii, the reference package's
    convention) or, where such pairs form complete blocks, by the blocks' totals
    (``"blocks"``: :func:`~spillover.estimate.blocks.block_adjustment`, never looser,
    and conservative in expectation for HT; where the pairs are factored by block, beyond
    a million dependent class pairs, pair by pair). ``"auto"`` (the default): blocks for
    HT; for Hajek, blocks where the design simulation backs them (``simulated``: the
    command line's default) and the units' randomization blocks are known, pairs
    otherwise. Hajek's linearised estimate is conservative only to first order: its
    residuals about the estimated means are smaller than about the true ones, by
    ``(G - 1) / G`` in variance with ``G`` a condition's independent draws (Kish's
    effective number of the randomization blocks its units' weights fall in), so with the
    block bound they are widened by that factor, as CR1 widens cluster residuals (the pair
    bound's slack covers it: its results stay the reference package's), and the t
    reference has Welch's degrees of freedom from each condition's ``G - 1``. Measured
    (200 experiments each, docs/inference.md): under 40 equal clusters Hajek's default
    error was 1.0x its true sd (1.4x with pairs), covering 0.96-0.97; under 11
    heavy-tailed clusters 0.93-1.08x, covering 0.97-0.98 (0.90-0.91 before the widening
    and Welch's t). Without the simulation the block bound alone covered 0.86 for the
    40-cluster ``ind1`` contrast (se 0.73x), and on a 40-seller market (no blocks to
    count draws by) 0.90 even with it: there, pairs.
    Both estimators' intervals from the bound use that t reference (HT's and Hajek's)."""
    if bound not in ("auto", "blocks", "pairs"):
        raise InputError(f"bound must be 'auto', 'blocks' or 'pairs', not {bound!r}.")
    blocks = bound == "blocks" or bound == "auto" and (not hajek or probs.unit_blocks is not None
                                                       and simulated is not None)
    keep_all = probs.units.get_indexer(pd.Index(table["unit_id"]))
    if (keep_all < 0).any():
        raise InputError("exposure probabilities do not cover every analysed unit; compute them on the same graph.")
    if not 0.0 <= min_probability < 1.0:
        raise InputError(f"min_probability={min_probability} must be in [0, 1).")
    notes = [] if notes is None else notes
    floor = max(float(min_probability), EXACT_POSITIVITY_FLOOR if probs.n_draws is None else 0.5 / probs.n_draws)
    y_all = table["y"].to_numpy(dtype=float)
    observed_index, unknown = _condition_codes(table["condition"], probs.conditions)
    l = probs.condition_index(control)
    effects = []
    if simulated is not None:
        for label in unknown:
            probs.condition_index(label)  # the one error for a condition the probabilities lack
        levels = _condition_levels(y_all, observed_index, probs.marginal[keep_all], floor)
    for name in contrasted_conditions(table, control):
        k = probs.condition_index(name)
        for index, label in ((k, name), (l, control)):
            seen_never = (observed_index == index) & (probs.marginal[keep_all, index] <= 0)
            if seen_never.any():
                raise InputError(f"{int(seen_never.sum())} unit(s) observed in '{label}' have estimated probability 0 "
                                 "of it: use more draws or --prob-correction add-one.")
        member = (probs.marginal[keep_all, k] >= floor) & (probs.marginal[keep_all, l] >= floor)
        keep, y, condition = keep_all[member], y_all[member], observed_index[member]
        n = int(member.sum())
        pi_k, pi_l = probs.marginal[keep, k], probs.marginal[keep, l]
        ind_k, ind_l = condition == k, condition == l
        reach = f"probability of each at least {floor:.3g}"
        short = (f"only {n} unit(s) can be in both '{name}' and '{control}' ({reach})" if n < min_units else
                 f"in expectation only {min(pi_k.sum(), pi_l.sum()):.1f} unit(s) are in '{name}' or '{control}' "
                 "under the design" if min(pi_k.sum(), pi_l.sum()) < min_units else
                 f"only {int(min(ind_k.sum(), ind_l.sum()))} unit(s) of the {n} that can be in both are observed in "
                 f"'{name if ind_k.sum() < ind_l.sum() else control}'"
                 if min(ind_k.sum(), ind_l.sum()) < min_units else None)
        if short:
            notes.append(f"no effect for '{name}': {short} (at least {min_units} are needed)")
            continue
        if n < len(table):
            notes.append(f"'{name}' vs '{control}': the average effect on the {n:,} of {len(table):,} units that can "
                         f"be in both ({reach}); the others cannot be compared under this design")
        few = {c: int(ind.sum()) for c, ind in ((name, ind_k), (control, ind_l)) if ind.sum() < FEW_UNITS}
        if few:
            warnings.warn(f"few units in compared conditions {few}: with fewer than {FEW_UNITS}, the normal interval "
                          "of HT/Hajek rests on little data and may cover less than its level; choose a design "
                          "(treated share, clusters) that puts more units in every condition.",
                          SmallConditionWarning, stacklevel=3)
        small = int(np.sum((ind_k & (pi_k < SMALL_PROBABILITY)) | (ind_l & (pi_l < SMALL_PROBABILITY))))
        if small:
            warnings.warn(f"positivity: {small} unit(s) observed in '{name}' or '{control}' had a probability below "
                          f"{SMALL_PROBABILITY:g} of being there; their weights dominate and the variance estimate "
                          "can be too small (see docs/inference.md). Restrict the population with "
                          f"min_probability={SMALL_PROBABILITY:g} (--min-probability), or use a design that reaches "
                          "the condition more often.", PositivityWarning, stacklevel=3)
        with np.errstate(divide="ignore", invalid="ignore"):
            weight_k = np.where(ind_k, 1.0 / pi_k, 0.0)
            weight_l = np.where(ind_l, 1.0 / pi_l, 0.0)
        total_k, total_l = np.sum(weight_k * y), np.sum(weight_l * y)
        draws_k, draws_l = (_independent_draws(w, None if probs.unit_blocks is None else probs.unit_blocks[keep])
                            for w in (weight_k, weight_l))
        if hajek:
            mu_k, mu_l = total_k / weight_k.sum(), total_l / weight_l.sum()
            est = mu_k - mu_l
            # linearised residuals; with the block bound each condition's widened by G / (G - 1) in variance (G: its
            # independent draws): residuals about an estimated mean are smaller than about the true one, as CR1
            # corrects; the pair bound's slack covers that (and the reference package's convention is kept)
            widen_k, widen_l = (_widening(draws_k), _widening(draws_l)) if blocks else (1.0, 1.0)
            target = np.where(ind_k, (y - mu_k) * widen_k, np.where(ind_l, (y - mu_l) * widen_l, 0.0))
        else:
            est = (total_k - total_l) / n
            target = y
        keys = ((k, k), (l, l), (k, l))
        if probs.pairs.nnz and any(key not in probs.joint for key in keys):
            raise InputError(f"the exposure probabilities hold joint probabilities for contrasts with another "
                             f"control; compute them with control='{control}' (--control {control}).")
        no_pairs = sp.csr_array(probs.pairs.shape, dtype=float)  # marginals only: every pair independent
        joint = {key: probs.joint.get(key, no_pairs) for key in keys}
        groups = keep if probs.groups is None else probs.groups[keep]
        a_k, m_k, size, p_k = _class_sums(groups, probs.pairs.shape[0], ind_k, target, pi_k)
        a_l, m_l, _, p_l = _class_sums(groups, probs.pairs.shape[0], ind_l, target, pi_l)
        bound_negative, factored = probs.bound_negative_pairs, probs.factored
        part_k, part_l, covariance = _contrast_sums(joint, k, l, a_k, a_l, m_k, m_l, size, p_k, p_l, bound_negative,
                                                    factored)
        variance = (part_k + part_l - 2 * covariance) / n**2
        label = "aronow-samii"
        if blocks and factored is None and probs.pairs.nnz:
            change, n_blocks = block_adjustment(sp.csr_array(joint[(k, l)]), sp.csr_array(joint[(k, k)]),
                                                sp.csr_array(joint[(l, l)]), a_k, a_l, 2 * m_k, 2 * m_l, size, p_k,
                                                p_l)
            if n_blocks:
                variance += change / n**2
                label = f"aronow-samii, {n_blocks} block(s) bounded by their totals"
        se = float(np.sqrt(max(variance, 0.0)))
        if simulated is not None:
            se_sim, used = simulated_se(simulated[keep], k, l, y - levels[observed_index[member]], levels, pi_k, pi_l,
                                        hajek, max(min_units, 1))
            if used < simulated.shape[1]:
                notes.append(f"'{name}' vs '{control}': the simulated error is over the {used} of "
                             f"{simulated.shape[1]} design draws that would print an interval (enough units in both "
                             "conditions)")
            if np.isfinite(se_sim) and used >= MIN_SIMULATED and se_sim > se:
                label = f"design simulation of {used} draws (above aronow-samii's {se:.3g})"
                se = se_sim
        trimmed = f", units with p >= {floor:.3g}: {n} of {len(table)}" if n < len(table) else ""
        sizes = {c: _independent_draws(w, None) for c, w in ((name, weight_k), (control, weight_l))}  # units
        thin = min(sizes, key=sizes.get)
        # the bound: a t reference with Welch's degrees of freedom from each condition's independent draws less
        # one (weighted means of a few effective units or clusters are far from normal; Kish's n_eff over the
        # randomization blocks, as CR2 counts clusters); the simulated error already saw the weights' spread: normal
        df = _welch_df((part_k, part_l), (draws_k, draws_l)) if label.startswith("aronow-samii") else np.inf
        effect = make_effect(name, control, mapping, est, se, df, alpha, ind_k.sum() + ind_l.sum(), None,
                             f"{'hajek' if hajek else 'horvitz-thompson'} / {label} ({probs.method}{trimmed}); "
                             + (f"t({df:.1f} df, Welch over effective "
                                f"{'units' if probs.unit_blocks is None else 'randomization blocks'})"
                                if label.startswith("aronow-samii") else "normal"))
        if sizes[thin] < max(min_units, 1):
            effect = replace(effect, ci_low=float("nan"), ci_high=float("nan"), p_value=float("nan"))
            notes.append(f"no interval for '{name}': the weights of the units observed in '{thin}' are so unequal "
                         f"that they count as {sizes[thin]:.1f} unit(s) (effective sample size, fewer than "
                         f"{min_units}), so the normal approximation behind the interval cannot hold; the estimate "
                         "and its standard error stand. Use a design that reaches the condition more often "
                         "(clusters, a smaller treated share), or a randomization test")
        effects.append(effect)
    return effects


MIN_SIMULATED = 50  # design draws a simulated error needs before it counts
SIMULATION_CELLS = 10_000_000  # units x draws evaluated at once (a few float arrays of this size)


def _condition_levels(y: np.ndarray, observed: np.ndarray, marginal: np.ndarray, floor: float) -> np.ndarray:
    """Each condition's weighted mean outcome (Hajek, over the units observed in it with a
    probability of at least ``floor``); 0 for a condition no such unit is in (its level is
    then never used with a weight)."""
    levels = np.zeros(marginal.shape[1])
    for c in range(marginal.shape[1]):  # a loop over conditions
        pi = marginal[:, c]
        use = (observed == c) & (pi >= floor)
        if use.any():
            levels[c] = np.sum(y[use] / pi[use]) / np.sum(1.0 / pi[use])
    return levels


def simulated_se(codes: np.ndarray, k: int, l: int, baseline: np.ndarray, levels: np.ndarray, pi_k: np.ndarray,
                 pi_l: np.ndarray, hajek: bool, min_units: float = 1.0, chunk: int | None = None) -> tuple[float, int]:
    """The sd of the HT (or Hajek) contrast of conditions ``k`` and ``l`` over design draws
    (``codes``: each unit's condition in each draw), with each unit's outcome in a draw
    imputed as ``baseline + levels[condition]`` (constant effects at the estimated
    levels), over the draws in which the analysis would print an interval (both
    conditions' weights worth at least ``min_units`` units: Kish's effective size), as
    the printed interval is conditional on that; returns it and the number of such draws.

    >>> codes = np.array([[0, 1, 0, 1], [1, 0, 1, 0], [0, 0, 1, 1]])   # 3 units x 4 draws
    >>> se, used = simulated_se(codes, 1, 0, np.zeros(3), np.array([0.0, 1.0]), np.full(3, 0.5), np.full(3, 0.5),
    ...                         hajek=True)
    >>> round(se, 3), used
    (0.0, 4)
    """
    n = codes.shape[0]
    chunk = chunk or max(1, min(100, SIMULATION_CELLS // max(n, 1)))  # memory: a few arrays of n x chunk floats
    estimates = []
    for start in range(0, codes.shape[1], chunk):
        part = codes[:, start:start + chunk]
        y = baseline[:, None] + levels[part]
        in_k, in_l = part == k, part == l
        w_k, w_l = in_k / pi_k[:, None], in_l / pi_l[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            if hajek:
                values = (w_k * y).sum(axis=0) / w_k.sum(axis=0) - (w_l * y).sum(axis=0) / w_l.sum(axis=0)
            else:
                values = ((w_k * y).sum(axis=0) - (w_l * y).sum(axis=0)) / n
            size_k = w_k.sum(axis=0) ** 2 / (w_k**2).sum(axis=0)
            size_l = w_l.sum(axis=0) ** 2 / (w_l**2).sum(axis=0)
        estimates.append(np.where((size_k >= min_units) & (size_l >= min_units), values, np.nan))
    values = np.concatenate(estimates)
    values = values[np.isfinite(values)]
    return (float(np.std(values, ddof=1)) if values.size > 1 else float("nan")), int(values.size)


def _independent_draws(weights: np.ndarray, blocks: np.ndarray | None) -> float:
    """Kish's effective number of independent draws behind a weighted mean: over the
    units with positive weight, or, with ``blocks`` (each unit's randomization block),
    over the blocks' summed weights (units of one cluster move together).

    >>> float(_independent_draws(np.array([1.0, 1.0, 1.0, 1.0, 0.0]), np.array([0, 0, 1, 1, 2])))
    2.0
    """
    used = weights > 0
    if blocks is None:
        return _effective_size(weights[used])
    return _effective_size(np.bincount(pd.factorize(blocks[used])[0], weights=weights[used]))


def _welch_df(parts: Sequence[float], draws: Sequence[float]) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of variance parts, each estimated
    from ``G - 1`` degrees of freedom (``G``: its independent draws); between the smaller
    ``G - 1`` and the sum of them, at least 1.

    >>> _welch_df([1.0, 1.0], [11.0, 11.0]), _welch_df([1.0, 0.0], [5.0, 40.0])
    (20.0, 4.0)
    """
    dfs = np.maximum(np.asarray(draws, dtype=float) - 1.0, 1.0)
    parts = np.maximum(np.asarray(parts, dtype=float), 0.0)
    if parts.sum() <= 0:
        return float(dfs.min())
    return float(np.clip(parts.sum() ** 2 / np.sum(parts**2 / dfs), dfs.min(), dfs.sum()))


def _widening(draws: float) -> float:
    """The factor ``sqrt(G / (G - 1))`` that residuals about a mean estimated from ``G``
    independent draws need for an unbiased spread (1 when ``G <= 1``: no spread at all)."""
    return float(np.sqrt(draws / (draws - 1.0))) if draws > 1.0 else 1.0


def _effective_size(weights: np.ndarray) -> float:
    """Kish's effective sample size of positive weights: ``(sum w)^2 / sum w^2``."""
    return float(weights.sum() ** 2 / np.sum(weights**2))


def condition_means(
    outcomes: pd.DataFrame,
    exposure: pd.DataFrame,
    probabilities: ExposureProbabilities,
    *,
    hajek: bool = False,
    outcome_col: str = "y",
) -> pd.Series:
    """Estimated average potential outcome under every condition: Horvitz-Thompson
    ``sum_i 1[D_i = k] y_i / pi_i(k) / N`` or its Hajek ratio form (NaN for a condition
    no unit is in)."""
    table = analysis_table(outcomes, exposure, outcome_col, None, "drop")
    keep = probabilities.units.get_indexer(pd.Index(table["unit_id"]))
    y = table["y"].to_numpy(dtype=float)
    condition = table["condition"].astype(str).to_numpy()
    means = {}
    for k, name in enumerate(probabilities.conditions):
        ind = condition == name
        pi = probabilities.marginal[keep, k]
        with np.errstate(divide="ignore", invalid="ignore"):
            weights = np.where(ind, 1.0 / pi, 0.0)
        denominator = weights.sum() if hajek else len(table)
        means[name] = float(np.sum(weights * y) / denominator) if ind.any() else float("nan")
    return pd.Series(means, name="hajek" if hajek else "horvitz-thompson")


def weighted_least_squares(
    outcomes: pd.DataFrame,
    exposure: pd.DataFrame,
    probabilities: ExposureProbabilities,
    *,
    covariates: Sequence[str] = (),
    control: str | None = None,
    graph=None,
    outcome_col: str = "y",
    missing: str = "drop",
    alpha: float = 0.05,
    min_units: int = 1,
    simulated: np.ndarray | None = None,
    notes: list[str] | None = None,
) -> list[Effect]:
    """Gao & Ding's (2023) design-based regression: weighted least squares of the outcome
    on the exposure-condition indicators (no intercept), weights ``1 / pi_i(D_i)``, with
    ``covariates`` centred and interacted with the conditions. Without covariates the
    coefficients are the Hajek means of the conditions, so each contrast equals
    ``estimate(..., "hajek")`` (to 1e-12); covariates reduce its variance.

    Standard errors: the weighted network-robust sandwich of the variance kernel over the
    pairs whose exposures depend on each other (``probabilities.pairs``, or with ``graph``
    the pairs sharing a neighbour). Each contrast is fitted on the units that can be in
    both its conditions (as :func:`horvitz_thompson` estimates it). With ``simulated``
    (each unit's condition in fresh draws of the design, as for :func:`horvitz_thompson`)
    the standard error is the larger of the sandwich and the estimator's sd over those
    draws, each unit's outcome imputed from its condition's fitted line plus its own
    residual (:func:`simulated_wls_se`): the sandwich alone covered 0.75 at a treated
    share of 0.5 on a Watts-Strogatz graph. As for Hajek, a contrast with fewer than
    ``min_units`` units observed in a condition (or that many plus one per covariate)
    is left out with a note, and one whose weights count as fewer than ``min_units``
    effective units keeps no interval; the sandwich's reference is t(effective n - 1).

    Examples
    --------
    >>> from spillover import synth
    >>> from spillover.design import IndividualDesign
    >>> from spillover.exposure import exposure, probabilities
    >>> graph = synth.social_graph(2_000, seed=3)
    >>> design = IndividualDesign(graph.nodes, 0.5, complete=False)
    >>> table = exposure(graph, design.assign(seed=4), "as4")
    >>> y = pd.DataFrame({"unit_id": table["unit_id"], "y": np.random.default_rng(5).normal(size=len(table))})
    >>> probs = probabilities(graph, "as4", design=design)
    >>> wls = weighted_least_squares(y, table, probs)
    >>> from spillover.estimate import estimate
    >>> hajek = estimate(y, table, "hajek", probabilities=probs)
    >>> abs(wls[0].estimate - hajek.effects[0].estimate) < 1e-12
    True
    """
    table = analysis_table(outcomes, exposure, outcome_col, None, missing, covariates)
    positions = probabilities.units.get_indexer(pd.Index(table["unit_id"]))
    if (positions < 0).any():
        raise InputError("exposure probabilities do not cover every analysed unit; compute them on the same graph.")
    control = control or (probabilities.mapping.control if probabilities.mapping else
                          default_control(probabilities.conditions))
    condition = table["condition"].astype(str).to_numpy()
    present = [c for c in probabilities.conditions if (condition == c).any()]
    if control not in present:
        raise no_control_error(control, pd.Series(condition).value_counts().to_dict())
    k_of = np.array([probabilities.condition_index(c) for c in condition])
    pi = probabilities.marginal[positions, k_of]
    if (pi <= 0).any():
        raise InputError(f"{int((pi <= 0).sum())} unit(s) are observed in a condition of probability 0 under the "
                         "design: use more draws or another design.")
    if graph is not None:
        all_pairs = shared_neighbour_pairs(graph, pd.Index(table["unit_id"]))
        how = "pairs sharing a neighbour"
    else:
        all_pairs = sp.csr_array(probabilities.per_unit().pairs[positions][:, positions])
        how = "pairs with dependent exposures under the design"
    floor = EXACT_POSITIVITY_FLOOR if probabilities.n_draws is None else 0.5 / probabilities.n_draws
    l_index = probabilities.condition_index(control)
    mapping = probabilities.mapping
    notes = [] if notes is None else notes
    needed = max(min_units, 1) + len(covariates)  # each condition's line: an intercept and a slope per covariate
    effects = []
    for name in present:
        if name == control:
            continue
        # the contrast's population: units that can be in both conditions (as horvitz_thompson)
        k_index = probabilities.condition_index(name)
        rows = np.flatnonzero((probabilities.marginal[positions, k_index] >= floor)
                              & (probabilities.marginal[positions, l_index] >= floor))
        sub = condition[rows]
        counts = {c: int((sub == c).sum()) for c in (name, control)}
        thin_label = min(counts, key=counts.get)
        if counts[thin_label] < needed:
            notes.append(f"no effect for '{name}': only {counts[thin_label]} unit(s) that can be in both '{name}' "
                         f"and '{control}' are observed in '{thin_label}' (at least {needed} are needed"
                         f"{' with ' + str(len(covariates)) + ' covariate(s)' if covariates else ''})")
            continue
        levels = [c for c in present if (sub == c).any()]
        w = 1.0 / pi[rows]
        indicators = np.column_stack([(sub == c).astype(float) for c in levels])
        columns = [indicators]
        values = table[list(covariates)].to_numpy(dtype=float)[rows] if covariates else np.zeros((rows.size, 0))
        centred = values - np.average(values, axis=0, weights=w) if covariates else values
        if covariates:
            columns += [indicators[:, [j]] * centred for j in range(len(levels))]
        x = np.hstack(columns)
        y = table["y"].to_numpy(dtype=float)[rows]
        root = np.sqrt(w)
        beta = np.linalg.lstsq(x * root[:, None], y * root, rcond=None)[0]
        pairs = sp.csr_array(all_pairs[rows][:, rows])
        cov = dependence_robust(x * root[:, None], (y - x @ beta) * root, pairs, n_groups=rows.size).cov
        c = np.zeros(x.shape[1])
        c[levels.index(name)], c[levels.index(control)] = 1.0, -1.0
        est = float(c @ beta)
        se = float(np.sqrt(max(float(c @ cov @ c), 0.0)))
        label = f"network-robust variance ({how})"
        sizes = {lab: _effective_size(w[sub == lab]) for lab in (name, control)}
        thin = min(sizes, key=sizes.get)
        df = max(sizes[thin] - 1.0, 1.0)
        if simulated is not None:
            lines = {lab: (beta[j], beta[len(levels) + j * len(covariates):len(levels) + (j + 1) * len(covariates)])
                     for j, lab in enumerate(levels)}
            se_sim, used = simulated_wls_se(
                simulated[positions[rows]], k_index, l_index, values, y - x @ beta,
                {probabilities.condition_index(lab): line for lab, line in lines.items()},
                probabilities.marginal[positions[rows]], max(min_units, 1))
            if np.isfinite(se_sim) and used >= MIN_SIMULATED and se_sim > se:
                label, se, df = f"design simulation of {used} draws (above the network-robust {se:.3g})", se_sim, np.inf
        n_units = int(((sub == name) | (sub == control)).sum())
        trimmed = f"; units with p >= {floor:.3g}: {rows.size} of {len(table)}" if rows.size < len(table) else ""
        effect = make_effect(name, control, mapping, est, se, df, alpha, n_units, None,
                             f"weighted least squares (Gao & Ding 2023)"
                             f"{' + ' + ', '.join(covariates) if covariates else ''}; {label}{trimmed}; "
                             + ("normal" if np.isinf(df) else "t(effective n - 1)"))
        if sizes[thin] < max(min_units, 1):
            effect = replace(effect, ci_low=float("nan"), ci_high=float("nan"), p_value=float("nan"))
            notes.append(f"no interval for '{name}': the weights of the units observed in '{thin}' count as "
                         f"{sizes[thin]:.1f} unit(s) (effective sample size, fewer than {min_units})")
        effects.append(effect)
    return effects


def simulated_wls_se(codes: np.ndarray, k: int, l: int, x: np.ndarray, residual: np.ndarray, lines: dict,
                     marginal: np.ndarray, min_units: float = 1.0, chunk: int | None = None) -> tuple[float, int]:
    """The sd of the weighted-least-squares contrast of conditions ``k`` and ``l`` over
    design draws (``codes``: each unit's condition index per draw), each unit's outcome
    in a draw imputed as its drawn condition's fitted line (``lines[c] = (intercept,
    slopes)`` on ``x`` centred as fitted) plus its own ``residual``, the weights
    ``1 / marginal[i, condition]`` and the covariates' weighted centre recomputed per
    draw; over the draws in which both conditions' weights count as ``min_units``
    effective units. Returns the sd and the number of such draws.

    >>> codes = np.array([[0, 1, 0, 1], [1, 0, 1, 0], [0, 0, 1, 1]])   # 3 units x 4 draws
    >>> lines = {0: (0.0, np.zeros(0)), 1: (1.0, np.zeros(0))}
    >>> se, used = simulated_wls_se(codes, 1, 0, np.zeros((3, 0)), np.zeros(3), lines, np.full((3, 2), 0.5))
    >>> round(se, 3), used
    (0.0, 4)
    """
    n, p = x.shape
    chunk = chunk or max(1, min(100, SIMULATION_CELLS // max(n * (p + 1), 1)))
    estimates = []
    for start in range(0, codes.shape[1], chunk):
        part = codes[:, start:start + chunk]
        with np.errstate(divide="ignore"):
            w = 1.0 / np.take_along_axis(marginal, part, axis=1)
        centre = np.einsum("ib,ip->bp", w, x) / w.sum(axis=0)[:, None]  # (draws, p)
        values, ok = np.zeros(part.shape[1]), np.ones(part.shape[1], dtype=bool)
        for c, sign in ((k, 1.0), (l, -1.0)):
            intercept, slopes = lines.get(c, (0.0, np.zeros(p)))
            wc = np.where(part == c, w, 0.0)
            total = wc.sum(axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                ok &= total**2 / (wc**2).sum(axis=0) >= min_units
                y = intercept + x @ slopes + residual  # the line is on x centred as fitted; its centre is a constant
                mean_y = (wc * y[:, None]).sum(axis=0) / total
                if p:
                    mean_x = np.nan_to_num(np.einsum("ib,ip->bp", wc, x) / total[:, None])  # 0: an empty condition
                    dx = x[:, None, :] - mean_x[None]  # (n, draws, p)
                    sxx = np.einsum("ib,ibp,ibq->bpq", wc, dx, dx)
                    sxy = np.einsum("ib,ibp,i->bp", wc, dx, y)
                    slope = (np.linalg.pinv(sxx) @ sxy[..., None])[..., 0]  # each draw's weighted slopes
                    mean_y = mean_y - np.einsum("bp,bp->b", slope, mean_x - centre)
            values += sign * mean_y
        estimates.append(np.where(ok, values, np.nan))
    values = np.concatenate(estimates)
    values = values[np.isfinite(values)]
    return (float(np.std(values, ddof=1)) if values.size > 1 else float("nan")), int(values.size)


# --------------------------------------------------------------------------- the registry's entries


def _fit_weighting(hajek: bool):
    def fit(a: Analysis) -> list[Effect]:
        effects = horvitz_thompson(a.table, a.probabilities, a.control, a.alpha, hajek=hajek, mapping=a.mapping,
                                   simulated=a.simulated_conditions, bound=a.variance_bound,
                                   min_probability=a.min_probability, min_units=a.min_units, notes=a.notes)
        if a.simulated_conditions is not None:
            a.notes.append(f"standard errors: the larger of the Aronow-Samii bound and the sd of the estimator over "
                           f"{a.simulated_conditions.shape[1]} fresh draws of the design with constant effects imputed "
                           "(the bound is conservative in expectation, but its estimate misses the spread of heavy "
                           "weights: alone it covered 0.83-0.87 at a treated share of 0.5 in the calibration study)")
        else:
            a.notes.append("the Aronow-Samii variance is conservative in expectation, but its estimate misses the spread "
                           "of heavy weights (0.83-0.87 coverage at a treated share of 0.5 in the calibration study); "
                           "with the design's own draws (the design and its assignment) the error also takes the "
                           "design simulation's")
        return effects
    return fit


def _fit_wls(a: Analysis) -> list[Effect]:
    return weighted_least_squares(a.outcomes, a.exposure, a.probabilities, covariates=a.covariates, control=a.control,
                                  outcome_col=a.outcome_col, missing=a.missing, alpha=a.alpha, min_units=a.min_units,
                                  simulated=a.simulated_conditions, notes=a.notes)


_WEIGHTS = "Hajek weights each unit by its exact chance of its condition under the design"
register(Estimator("ht", "Horvitz-Thompson, the Aronow-Samii conservative variance", _fit_weighting(False),
                   ("probabilities",), minimum="design"))
register(Estimator(
    "hajek", "Hajek (ratio) Horvitz-Thompson, the Aronow-Samii conservative variance", _fit_weighting(True),
    ("probabilities",), minimum="design",
    verdicts={("unit", "exposure"): Verdict("recommended", "units were randomized one by one and exposure depends on "
                                                           f"neighbours: {_WEIGHTS}"),
              ("treated-side", "exposure"): Verdict("recommended", f"the other side was randomized: {_WEIGHTS}")}))
register(Estimator("wls", "Gao & Ding's weighted least squares (Hajek with covariates), network-robust errors",
                   _fit_wls, ("probabilities",), covariates=True, minimum="design"))
