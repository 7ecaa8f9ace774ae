"""Randomization tests: Fisher tests of sharp nulls by redrawing the design, and the
interference test of a mixed design."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import (
    InputError,
    show_id,
)
from ..exposure import get_mapping
from ..seeds import check_seed
from ..variance import (
    DEFAULT_VCOV,
    ols,
)


@dataclass(frozen=True)
class InterferenceTest:
    """The interference test of a :class:`~spillover.design.MixedDesign` experiment.

    ``cluster_estimate`` and ``unit_estimate`` are the effect estimated in the cluster
    branch (clusters randomized: most spillover kept inside the comparison) and in the
    unit branch (units randomized: spillover leaks between arms); ``z`` and ``p_value``
    test their equality, which holds without interference. ``share_explained`` is the
    share of the cluster-branch effect that the unit-randomized estimate misses,
    ``1 - unit / cluster``: how much an ordinary A/B test would have understated it.

    Examples
    --------
    >>> test = InterferenceTest(0.30, 0.20, 0.10, 0.03, 3.33, 0.0009, 0.333, 100, 5_000, 0.05)
    >>> test.detected, test.summary().splitlines()[0]
    (True, 'interference detected (p = 0.0009): the unit-randomized estimate 0.2 against 0.3 with clusters randomized')
    """

    cluster_estimate: float
    unit_estimate: float
    difference: float
    se: float
    z: float
    p_value: float
    share_explained: float
    n_clusters: int
    n_units: int
    alpha: float = 0.05

    @property
    def detected(self) -> bool:
        """Whether the test rejects no interference at level ``alpha``."""
        return bool(self.p_value < self.alpha)

    def summary(self) -> str:
        """The verdict in two lines."""
        verdict = "interference detected" if self.detected else "no interference detected"
        share = (f"; an A/B test of units would miss {self.share_explained:.0%} of the cluster-randomized effect"
                 if self.detected else "")
        return (f"{verdict} (p = {self.p_value:.2g}): the unit-randomized estimate {self.unit_estimate:.4g} against "
                f"{self.cluster_estimate:.4g} with clusters randomized\n"
                f"difference {self.difference:+.4g} (se {self.se:.4g}){share}")


def interference_test(outcomes: pd.DataFrame, assignment, *, outcome_col: str = "y", alpha: float = 0.05,
                      vcov: str = DEFAULT_VCOV) -> InterferenceTest:
    """Test for interference from a :class:`~spillover.design.MixedDesign` experiment
    (Saveski et al. 2017): the effect estimated in the cluster branch (difference in
    means with ``vcov`` cluster-robust errors) against the unit branch (difference in
    means with Neyman errors), ``z = (cluster - unit) / sqrt(V_cluster + V_unit)``, against
    a t reference with Welch-Satterthwaite degrees of freedom (the cluster branch's are
    its Bell-McCaffrey df: few clusters make the test wider, not looser).

    Without interference both branches estimate the same average effect, and the
    variance of the difference is bounded above by the sum (Pouget-Abadie et al. 2019),
    so the test is conservative. Spillover through the graph makes the unit branch
    understate the effect (treated units' neighbours are partly treated controls), and
    the test rejects.

    Parameters
    ----------
    outcomes
        ``unit_id`` and the outcome column.
    assignment
        The :class:`~spillover.design.Assignment` of a ``MixedDesign``, or its
        ``to_frame()``: ``unit_id, cluster_id, arm, branch``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from spillover.design import MixedDesign
    >>> clusters = np.repeat(np.arange(200), 10)
    >>> assignment = MixedDesign(clusters, range(2_000)).assign(seed=1)
    >>> rng = np.random.default_rng(0)
    >>> y = 0.5 * (assignment.arms == 1) + rng.normal(size=200)[clusters] + rng.normal(size=2_000)
    >>> test = interference_test(pd.DataFrame({"unit_id": range(2_000), "y": y}), assignment)
    >>> test.detected                                # no spillover in these outcomes
    False
    """
    from ..design import Assignment

    frame = assignment.to_frame() if isinstance(assignment, Assignment) else pd.DataFrame(assignment)
    missing = [c for c in ("unit_id", "cluster_id", "arm", "branch") if c not in frame.columns]
    if missing:
        raise InputError(f"interference_test needs the assignment of a MixedDesign (unit_id, cluster_id, arm, branch); "
                         f"missing {missing}.")
    table = frame.merge(outcomes[["unit_id", outcome_col]].rename(columns={outcome_col: "y"}), on="unit_id")
    table = table[table["y"].notna() & table["arm"].isin([0, 1])]
    cluster_branch, unit_branch = table[table["branch"] == 1], table[table["branch"] == 0]
    for name, part in (("cluster", cluster_branch), ("unit", unit_branch)):
        if part["arm"].nunique() < 2:
            raise InputError(f"interference_test: the {name} branch has units of one arm only.")
    z = cluster_branch["arm"].to_numpy(dtype=float)
    fit = ols(cluster_branch["y"].to_numpy(dtype=float), np.column_stack([np.ones(z.size), z]),
              cluster_branch["cluster_id"].to_numpy(), vcov)
    cluster_est, cluster_var = float(fit.beta[1]), float(fit.cov[1, 1])
    groups = unit_branch.groupby("arm")["y"]
    mean, var, n = groups.mean(), groups.var(ddof=1), groups.size()
    unit_est = float(mean[1] - mean[0])
    unit_var = float(var[1] / n[1] + var[0] / n[0])
    difference = cluster_est - unit_est
    se = float(np.sqrt(cluster_var + unit_var))
    statistic = difference / se
    # a t reference with Welch-Satterthwaite degrees of freedom: the cluster branch's
    # variance rests on its few clusters (its Bell-McCaffrey df), the unit branch's on many units
    df = (cluster_var + unit_var) ** 2 / (cluster_var**2 / float(fit.df[1]) + unit_var**2 / (len(unit_branch) - 2))
    from scipy.special import stdtr

    p = float(2 * stdtr(df, -abs(statistic)))
    share = difference / cluster_est if cluster_est != 0 else float("nan")
    return InterferenceTest(cluster_est, unit_est, difference, se, float(statistic), p, float(share),
                            int(cluster_branch["cluster_id"].nunique()), int(len(unit_branch)), alpha)


@dataclass(frozen=True)
class RandomizationTest:
    """A Fisher randomization test: the observed statistic, its p-value
    ``(1 + #{|T_r| >= |T_obs|}) / (1 + R)`` over ``n_draws`` re-drawn assignments.

    Examples
    --------
    >>> import pandas as pd
    >>> from spillover import synth
    >>> from spillover.design import IndividualDesign
    >>> graph = synth.social_graph(300, seed=1)
    >>> design = IndividualDesign(graph.nodes)
    >>> outcomes = pd.DataFrame({"unit_id": graph.nodes, "y": 0.0})
    >>> test = randomization_test(graph, design, design.assign(seed=1), outcomes, n_draws=99, seed=2)
    >>> test.null, test.p_value
    ('no-effect', 1.0)
    """

    null: str
    statistic: str
    observed: float
    p_value: float
    n_draws: int

    def summary(self) -> str:
        """The verdict in a line.

        >>> RandomizationTest("no-spillover", "a slope", 0.21, 0.004, 999).summary()[:60]
        'randomization test of no-spillover: p = 0.004 over 999 re-dr'
        """
        return (f"randomization test of {self.null}: p = {self.p_value:.3g} over {self.n_draws:,} re-draws of the "
                f"design (exact; {self.statistic} = {self.observed:.4g})")


def _mean_difference(y: np.ndarray, in_k: np.ndarray, in_l: np.ndarray) -> np.ndarray:
    """Per draw (columns), the mean of ``y`` over units in ``k`` minus over ``l``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (y @ in_k) / in_k.sum(axis=0) - (y @ in_l) / in_l.sum(axis=0)


def _focal_units(kernel, observed: np.ndarray, focal: str | float, rng, rounds: int = 100) -> np.ndarray:
    """The no-spillover test's focal units: observed units chosen from the graph alone.

    ``"optimized"``: local search for a set ``F`` maximising ``sum_{i in F} m_i / d_i^2``
    (``m_i`` neighbours outside ``F``, ``d_i`` the degree), the spread of focal units'
    treated shares over re-draws, which is what the test's power grows with. From a
    random half, each round moves a random 30% of the units whose move would raise it.
    On a Watts-Strogatz graph (1,000 nodes, k = 6) this raises the sum by 1.5x over a
    random half."""
    n = observed.size
    if focal != "optimized":
        try:
            share = float(focal)
        except (TypeError, ValueError):
            share = -1.0  # not a share: the error below
        if not 0 < share < 1:
            raise InputError(f"focal must be 'optimized' or a share between 0 and 1, not {show_id(focal)}.")
        return (rng.random(n) < share) & observed
    adjacency = kernel.neighbors
    degree = kernel.degree.astype(float)
    weight = np.divide(observed, degree**2, out=np.zeros(n), where=degree > 0)
    chosen = (rng.random(n) < 0.5) & observed
    for _ in range(rounds):
        gain = (adjacency @ (~chosen).astype(float)) * weight - adjacency @ (chosen * weight)  # of becoming focal
        gain = np.where(chosen, -gain, gain)
        move = (gain > 1e-12) & (rng.random(n) < 0.3)
        if not move.any():
            break
        chosen ^= move
    return chosen


def _share_slope(kernel, focal: np.ndarray, own: np.ndarray, y: np.ndarray):
    """The no-spillover test's default statistic: per draw (columns of ``z``), the slope
    of focal units' outcomes on the share of their neighbours treated, both centred
    within each own arm (which the test holds fixed). The share counts focal neighbours
    too: their fixed arms add the same to every draw's share, and under spillover the
    outcomes follow them, which adds power without touching the size."""
    keep = focal & (kernel.degree > 0)
    if not keep.any():
        raise InputError("the no-spillover test has nothing to compare: no focal unit has a neighbour.")
    neighbors = kernel.neighbors[np.flatnonzero(keep)]
    degree = kernel.degree[keep].astype(float)
    arm = own[keep].astype(bool)
    centred = y[keep].copy()
    for group in (arm, ~arm):
        if group.any():
            centred[group] -= centred[group].mean()

    def slope(z: np.ndarray) -> np.ndarray:
        share = (neighbors @ z) / degree[:, None]
        spread = (share**2).sum(axis=0)
        for group in (arm, ~arm):
            if group.any():
                spread -= share[group].sum(axis=0) ** 2 / group.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            return (centred @ share) / spread

    return slope, "focal units: slope of outcome on the share of neighbours treated, within own arm"


def randomization_test(
    graph,
    design,
    assignment,
    outcomes: pd.DataFrame,
    *,
    null: str = "no-effect",
    mapping: str = "as4",
    condition: str | None = None,
    outcome_col: str = "y",
    n_draws: int = 1_000,
    seed=None,
    statistic: str = "share",
    focal: str | float = "optimized",
) -> RandomizationTest:
    """Exact test of a sharp null by re-drawing assignments from ``design``.

    ``null="no-effect"``: no unit's outcome depends on any assignment; the statistic is
    the difference in means between ``condition`` (default: the mapping's first) and the
    control condition, recomputed under every draw (one sparse product for all draws).

    ``null="no-spillover"``: outcomes depend on a unit's own assignment only, whatever
    its direct effect (Athey, Eckles & Imbens 2018). A random ``focal_share`` of the
    units is focal; their arms stay as observed and the others are re-drawn from the
    design given them (a permutation of their observed arms under complete
    randomization; Bernoulli redraws otherwise), so the null fixes every focal outcome
    and the test's size is exact by construction. ``statistic="share"`` (the default) is
    the slope of focal outcomes on the share of their neighbours treated, within each own
    arm: every focal unit with a neighbour counts, and no group can be empty.
    ``focal="optimized"`` (the default) chooses the focal units from the graph alone (so
    the size stays exact) to maximise the spread of their treated shares over re-draws,
    ``sum over focal i of (non-focal neighbours of i) / degree_i^2``, by local search
    from a random half; a number ``f`` makes each unit focal with probability ``f``.
    ``statistic="exposed"`` compares untreated focal units with and without a treated
    neighbour; it is undefined (and refused) when nearly every unit has a treated
    neighbour, as at a treated share of one half. Needs an individual design on a social
    graph.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from spillover import synth
    >>> from spillover.design import IndividualDesign
    >>> graph = synth.social_graph(400, seed=1)
    >>> design = IndividualDesign(graph.nodes)
    >>> assignment = design.assign(seed=1)
    >>> y = 1.0 * (assignment.arms == 1) + np.random.default_rng(0).normal(size=400)
    >>> test = randomization_test(graph, design, assignment, pd.DataFrame({"unit_id": graph.nodes, "y": y}),
    ...                           mapping="fraction", n_draws=199, seed=2)
    >>> test.p_value < 0.01
    True
    """
    from ..design import IndividualDesign
    from ..exposure import ExposureGraph, arms_for, treated_indicator

    rule = get_mapping(mapping)
    kernel = ExposureGraph.build(graph, rule.hops)
    arms = arms_for(kernel.randomized, assignment)
    table = outcomes.set_index("unit_id")[outcome_col].reindex(kernel.units)
    observed_units = table.notna().to_numpy()
    y = table.fillna(0.0).to_numpy(dtype=float)
    rng = check_seed(seed)
    observed_z = treated_indicator(arms)
    statistic_name = statistic

    if null == "no-effect":
        k = rule.conditions.index(condition) if condition else 0
        l = rule.conditions.index(rule.control)

        def statistic(z: np.ndarray) -> np.ndarray:
            codes = rule.codes(kernel.counts(z))
            return _mean_difference(y, (codes == k) & observed_units[:, None], (codes == l) & observed_units[:, None])

        draws = treated_indicator(design.draw(n_draws, rng))
        label = f"mean difference {rule.conditions[k]} - {rule.control}"
    elif null == "no-spillover":
        if not isinstance(design, IndividualDesign) or kernel.own_index is None:
            raise InputError("the no-spillover test needs an individual design on a social graph; with clusters "
                             "randomized, test for interference with a mixed design (spillover.design.MixedDesign "
                             "and spillover.estimate.interference_test).")
        focal = _focal_units(kernel, observed_units, focal, rng)
        if statistic_name == "share":
            statistic, label = _share_slope(kernel, focal, observed_z, y)
        elif statistic_name == "exposed":
            def statistic(z: np.ndarray) -> np.ndarray:
                exposed = kernel.counts(z).n_treated > 0
                base = (focal & (observed_z == 0))[:, None]
                return _mean_difference(y, base & exposed, base & ~exposed)

            label = "untreated focal units: mean difference exposed - unexposed"
        else:
            raise InputError(f"statistic must be 'share' or 'exposed', not {show_id(statistic_name)}.")
        others = np.flatnonzero(~focal)
        draws = np.repeat(observed_z[:, None], n_draws, axis=1)
        if design.complete:
            draws[others] = rng.permuted(np.broadcast_to(observed_z[others], (n_draws, others.size)), axis=1).T
        else:
            draws[others] = (rng.random((others.size, n_draws)) < design.weights[1]).astype(np.int8)
    else:
        raise InputError(f"null must be 'no-effect' or 'no-spillover', not {show_id(null)}.")

    observed = float(statistic(observed_z[:, None])[0])
    if not np.isfinite(observed):
        raise InputError("the test statistic is undefined for the observed assignment (an empty group).")
    replicates = statistic(draws)
    replicates = replicates[np.isfinite(replicates)]
    p_value = (1 + np.sum(np.abs(replicates) >= abs(observed) - 1e-12)) / (1 + replicates.size)
    return RandomizationTest(null, label, observed, float(p_value), int(replicates.size))
