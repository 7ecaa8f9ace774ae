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


@dataclass(frozen=True)
class RandomizationIntervals:
    """Exact randomization intervals under the linear interference model
    ``y_i(z) = y_i(0) + tau z_i + gamma s_i(z)`` (``s_i``: the share of ``i``'s neighbours
    treated): the estimates (least squares on the observed assignment), and for the direct
    effect ``tau``, the spillover ``gamma`` and the total ``tau + gamma`` the range of the
    ``1 - alpha`` joint confidence region (projections of it: each covers at least
    ``1 - alpha``), from ``n_draws`` re-draws at each of ``n_hypotheses`` sharp nulls.

    Examples
    --------
    >>> RandomizationIntervals(0.5, 0.3, (0.2, 0.8), (-0.1, 0.7), (0.4, 1.2), 0.05, 999, 3721).summary()[:72]
    'exact randomization intervals (95%, 999 re-draws; y = y(0) + tau z + gam'
    """

    tau: float
    gamma: float
    tau_interval: tuple[float, float]
    gamma_interval: tuple[float, float]
    total_interval: tuple[float, float]
    alpha: float
    n_draws: int
    n_hypotheses: int

    def summary(self) -> str:
        """The intervals in a line."""
        def show(name, value, bounds):
            return f"{name} {value:.4g} [{bounds[0]:.4g}, {bounds[1]:.4g}]"

        return (f"exact randomization intervals ({1 - self.alpha:.0%}, {self.n_draws:,} re-draws; y = y(0) + tau z + "
                f"gamma * share of neighbours treated, each projected from the joint region): "
                f"{show('direct tau', self.tau, self.tau_interval)}, "
                f"{show('spillover gamma', self.gamma, self.gamma_interval)}, "
                f"{show('total tau + gamma', self.tau + self.gamma, self.total_interval)}")


def _linear_coefficients(kernel, z: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per draw (columns of ``z``), the least-squares coefficients of each target (columns
    of ``targets``) on ``[1, z, s]`` (``s``: the share of neighbours treated, 0 for
    isolates): ``(R, 2, T)``, the ``z`` and ``s`` rows; and those rows' block of
    ``(X'X)^-1`` ``(R, 2, 2)`` (their covariance for unit-variance noise). One batched
    3 x 3 solve per draw."""
    z = z.astype(float)
    s = kernel.counts(z).treated_fraction
    n = float(z.shape[0])
    sz, ss = z.sum(axis=0), s.sum(axis=0)
    gram = np.stack([np.stack([np.full_like(sz, n), sz, ss], -1),
                     np.stack([sz, (z * z).sum(axis=0), (z * s).sum(axis=0)], -1),
                     np.stack([ss, (z * s).sum(axis=0), (s * s).sum(axis=0)], -1)], -2)       # (R, 3, 3)
    cross = np.stack([np.broadcast_to(targets.sum(axis=0), (z.shape[1], targets.shape[1])),
                      z.T @ targets, s.T @ targets], -2)                                    # (R, 3, T)
    with np.errstate(invalid="ignore"):
        inverse = np.linalg.inv(gram + 1e-12 * np.eye(3))
    return (inverse @ cross)[:, 1:, :], inverse[:, 1:, 1:]


def randomization_intervals(
    graph,
    design,
    assignment,
    outcomes: pd.DataFrame,
    *,
    outcome_col: str = "y",
    alpha: float = 0.05,
    n_draws: int = 1_000,
    grid: int = 61,
    seed=None,
) -> RandomizationIntervals:
    """Intervals for the direct effect and the spillover by inverting Fisher tests.

    Model: ``y_i(z) = y_i(0) + tau z_i + gamma s_i(z)``, ``s_i`` the share of unit
    ``i``'s neighbours treated. Each hypothesis ``(tau, gamma)`` is sharp: it gives every
    unit's ``y_i(0) = y_i - tau z_i - gamma s_i``, fixed whatever the assignment, so the
    design's re-draws give the exact null distribution of a statistic of those adjusted
    outcomes. The statistic is the least-squares coefficients of the adjusted outcomes on
    ``[1, z, s]`` under the draw, as a distance from their mean over 200 further draws
    (drawn apart from the test's, so the test stays exact) in the metric of their
    covariance for unit-variance noise (from the design alone: one fixed function for
    every hypothesis, so hypotheses far from the estimate are rejected). The
    coefficients are linear in the outcomes, so every hypothesis reuses one batched
    solve per draw. The ``1 - alpha`` joint region is the hypotheses on
    a ``grid x grid`` lattice around the estimate that are not rejected. It grows until no
    accepted hypothesis is on its edge; a side still reached after growing 4^7-fold is
    unbounded (the design cannot bound that parameter there: an infinite end). The
    intervals are its projections, widened by one lattice step, so each covers at least
    ``1 - alpha`` (Athey, Eckles & Imbens 2018; Basse, Feller & Toulis 2019). Any design
    with ``draw`` (individual, cluster); a social graph.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from spillover import synth
    >>> from spillover.design import IndividualDesign
    >>> graph = synth.social_graph(300, seed=1)
    >>> design = IndividualDesign(graph.nodes)
    >>> assignment = design.assign(seed=1)
    >>> y = np.random.default_rng(0).normal(size=300) + 1.0 * (assignment.arms == 1)
    >>> result = randomization_intervals(graph, design, assignment, pd.DataFrame({"unit_id": graph.nodes, "y": y}),
    ...                                  n_draws=199, seed=2)
    >>> result.tau_interval[0] < 1.0 < result.tau_interval[1]
    True
    """
    from ..exposure import ExposureGraph, arms_for, treated_indicator
    from ..graph import SocialGraph

    if not isinstance(graph, SocialGraph):
        raise InputError("randomization intervals model the share of neighbours treated: they need a social graph.")
    if not 0 < alpha < 1 or grid < 5:
        raise InputError(f"alpha={alpha} must be in (0, 1) and grid={grid} at least 5.")
    kernel = ExposureGraph.build(graph)
    table = outcomes.set_index("unit_id")[outcome_col].reindex(kernel.units)
    if table.isna().any():
        raise InputError(f"randomization intervals need every unit's outcome: {int(table.isna().sum())} of "
                         f"{table.size} are missing (the sharp null fixes them all).")
    y = table.to_numpy(dtype=float)
    observed_z = treated_indicator(arms_for(kernel.randomized, assignment)).astype(float)
    observed_s = kernel.counts(observed_z).treated_fraction
    targets = np.column_stack([y, observed_z, observed_s])
    rng = check_seed(seed)
    estimate = _linear_coefficients(kernel, observed_z[:, None], targets)[0][0]    # (2, 3)
    if not np.all(np.isfinite(estimate)):
        raise InputError("the observed assignment leaves tau and gamma unidentified (no variation in own or "
                         "neighbours' treatment).")
    theta_hat = estimate[:, 0]
    residual = y - theta_hat[0] * observed_z - theta_hat[1] * observed_s
    if np.std(residual) <= 1e-9 * max(float(np.std(y)), 1e-300):  # the model fits exactly: one hypothesis holds
        point = (float(theta_hat[0]), float(theta_hat[1]))
        return RandomizationIntervals(point[0], point[1], (point[0],) * 2, (point[1],) * 2, (sum(point),) * 2, alpha,
                                      0, 1)
    moments, unit_cov = _linear_coefficients(kernel, treated_indicator(design.draw(200, rng)), targets)
    tests = _linear_coefficients(kernel, treated_indicator(design.draw(n_draws, rng)), targets)[0]
    finite = np.all(np.isfinite(moments), axis=(1, 2))
    moments, tests = moments[finite], tests[np.all(np.isfinite(tests), axis=(1, 2))]
    # the distance's metric comes from the design alone (the coefficients' covariance for unit-variance noise), so
    # it is one fixed function for every hypothesis and draw: exact, and far hypotheses are rejected
    metric = np.linalg.pinv(unit_cov[finite].mean(axis=0))

    def p_values(points: np.ndarray) -> np.ndarray:
        """p-value of each hypothesis (rows of ``points``: tau, gamma)."""
        def coefficients(c):  # (R, 2, 3) -> (R, H, 2): a - B theta
            return c[:, None, :, 0] - np.einsum("rij,hj->rhi", c[:, :, 1:], points)
        centre = coefficients(moments).mean(axis=0)                                # (H, 2)
        observed = coefficients(estimate[None])[0] - centre  # theta_hat - theta, in the draws' arithmetic
        t_obs = np.einsum("hi,ij,hj->h", observed, metric, observed)
        draws = coefficients(tests) - centre
        t_draws = np.einsum("rhi,ij,rhj->rh", draws, metric, draws)
        return (1 + np.sum(t_draws >= t_obs - 1e-12 * (1 + t_obs), axis=0)) / (1 + tests.shape[0])

    # the lattice's half-width: 4 sd of the coefficients under the estimate's null
    scale = np.std(moments[:, :, 0] - np.einsum("rij,j->ri", moments[:, :, 1:], theta_hat), axis=0)
    half = 4.0 * np.maximum(scale, 1e-6 * float(np.std(y)))
    open_sides = np.zeros(4, dtype=bool)  # tau low, tau high, gamma low, gamma high
    for _ in range(8):  # widen the lattice until the region sits inside it
        axes = [np.linspace(theta_hat[i] - half[i], theta_hat[i] + half[i], grid) for i in range(2)]
        tt, gg = np.meshgrid(*axes, indexing="ij")
        points = np.column_stack([tt.ravel(), gg.ravel()])
        accepted = (p_values(points) > alpha).reshape(grid, grid)
        if not accepted.any():
            half = half / 2  # the lattice stepped over a small region: refine
            continue
        open_sides = np.array([accepted[0].any(), accepted[-1].any(), accepted[:, 0].any(), accepted[:, -1].any()])
        if not open_sides.any():
            break
        half = half * 4
    if not accepted.any():
        raise InputError("no hypothesis of the linear model was accepted on the searched lattice: the model does not "
                         "describe these outcomes (or increase the lattice with grid=).")
    step = np.array([axes[0][1] - axes[0][0], axes[1][1] - axes[1][0]])
    chosen = points[accepted.ravel()]
    total = chosen.sum(axis=1)

    def bounds(values: np.ndarray, width: float, low_open: bool, high_open: bool) -> tuple[float, float]:
        """The projection widened by a step; a side where the region reached the widest lattice is unbounded."""
        return (-np.inf if low_open else float(values.min() - width)), (np.inf if high_open else
                                                                         float(values.max() + width))

    tau_low, tau_high, gamma_low, gamma_high = open_sides
    return RandomizationIntervals(
        float(theta_hat[0]), float(theta_hat[1]), bounds(chosen[:, 0], step[0], tau_low, tau_high),
        bounds(chosen[:, 1], step[1], gamma_low, gamma_high),
        bounds(total, step.sum(), tau_low or gamma_low, tau_high or gamma_high), alpha, int(tests.shape[0]),
        int(points.shape[0]))
