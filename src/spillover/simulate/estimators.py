"""Estimators compared on one graph: the global effect's estimators by simulation, and
the exact variance of Horvitz-Thompson under cluster designs and their mixtures (RGCR)."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..clustering import cluster
from ..design import ClusterDesign
from ..errors import InputError, SpilloverError, SpilloverWarning, TooManyPairsError
from ..exposure import MAX_DEPENDENT_PAIRS
from ..graph import SocialGraph, csr_rows
from ..seeds import Seed, check_seed
from .outcomes import SPILLOVERS, spillover_shape
from .ranking import interval_verdicts


def compare_estimators(
    graph: SocialGraph,
    *,
    tau: float = 0.5,
    gamma: float = 1.0,
    spillover: str = "linear",
    n_sims: int = 200,
    treat_fraction: float = 0.5,
    rollout_fractions: Sequence[float] = (0.25, 0.5),
    clusters: np.ndarray | None = None,
    n_clusterings: int = 20,
    s_e: float = 1.0,
    alpha: float = 0.05,
    seed: Seed = None,
    max_pairs: int | None = MAX_DEPENDENT_PAIRS,
    on_sim: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Bias, sd, RMSE and interval coverage of the estimators of the global effect on one
    graph with a known truth: what a team reads to choose an analysis.

    Outcomes are fixed potential outcomes ``y_i(z) = b_i + tau z_i + gamma tau g(s_i)``
    (``s_i`` the treated share of ``i``'s neighbours, ``g`` linear, quadratic or a
    threshold at one half; ``b_i`` drawn once, sd ``s_e``), so the comparison is over
    the randomization alone. The truth is ``mean(y(1) - y(0))``. Rows:

    - difference in means under individual (Bernoulli) randomization;
    - cluster randomization (``clusters``, default the graph's communities) analysed by
      ``ols-cluster``;
    - Hajek on the fully exposed (``threshold`` mapping, q = 1) under the cluster design,
      with the design's exact probabilities;
    - Chin's regression adjustment on the treated share (individual randomization);
    - SNIPE(2) on the same individual randomization (it needs the graph);
    - the staggered rollout's polynomial interpolation (degree = number of stages);
    - Hajek on the fully exposed under randomized graph cluster randomization (a mixture
      of ``n_clusterings`` 1-hop-max clusterings, exact mixture probabilities).

    Coverage, width and power are over the experiments that printed an interval
    (``no_interval``: the share that did not, refusals included: a draw that leaves too
    few units in a condition); ``intervals`` flags a row whose coverage
    is below 0.93 (:func:`~spillover.simulate.ranking.interval_verdicts`), and
    :func:`~spillover.simulate.ranking.recommend` picks one row.

    A Hajek row whose design-based variance would store more than ``max_pairs``
    dependent pairs (a dense graph under large clusters) is left out with a warning
    that says so; the other rows are unaffected. ``on_sim(1)`` is called after each
    simulated experiment (a progress bar's advance).

    Examples
    --------
    >>> from spillover import synth
    >>> graph = synth.social_graph(800, seed=1)
    >>> table = compare_estimators(graph, n_sims=4, n_clusterings=3, seed=2)
    >>> table.columns.tolist()[:4], len(table)
    (['estimator', 'design', 'truth', 'bias'], 7)
    """
    import warnings

    from ..design import IndividualDesign, RandomizedClusterDesign, RolloutDesign
    from ..estimate import estimate, polynomial_interpolation, regression_adjustment, snipe
    from ..exposure import exposure, probabilities

    if spillover not in SPILLOVERS:
        raise InputError(f"spillover {spillover!r}: choose one of {list(SPILLOVERS)}.")
    if n_sims < 2:
        raise InputError(f"n_sims={n_sims}: a comparison needs at least 2 simulated experiments.")
    rng = check_seed(seed)
    n = graph.n_nodes
    degree = graph.degrees().astype(float)
    base = s_e * rng.standard_normal(n)

    def outcome(z: np.ndarray) -> np.ndarray:
        share = np.divide(graph.adjacency @ z, degree, out=np.zeros(n), where=degree > 0)
        return base + tau * z + gamma * tau * spillover_shape(share, spillover)

    truth = float(np.mean(outcome(np.ones(n)) - outcome(np.zeros(n))))
    if clusters is None:
        if graph.node_data is not None and "community" in graph.node_data:
            clusters = graph.node_data["community"].reindex(graph.nodes).to_numpy()
        else:
            clusters = cluster(graph, "louvain", seed=rng).labels
    individual = IndividualDesign(graph.nodes, treat_fraction, complete=False)
    cluster_design = ClusterDesign(np.asarray(clusters), graph.nodes, treat_fraction=treat_fraction)
    cluster_table = pd.DataFrame({"unit_id": graph.nodes, "cluster_id": cluster_design.clusters})
    rollout = RolloutDesign(graph.nodes, tuple(rollout_fractions))
    rgcr_name = f"rgcr ({n_clusterings} clusterings)"

    def fully_exposed_probabilities(design, name: str):
        """The design's exact probabilities of full exposure, or None (and a warning) when
        their pair terms exceed ``max_pairs``."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return probabilities(graph, "threshold", threshold_q=1.0, design=design, max_pairs=max_pairs)
        except TooManyPairsError as error:
            warnings.warn(f"Hajek, fully exposed under the {name} design left out: its variance needs "
                          f"{error.n_pairs:,} dependent pairs, above max_pairs={error.max_pairs:,} (raise --max-pairs "
                          "on a machine with the memory).", SpilloverWarning, stacklevel=3)
            return None

    exposed = fully_exposed_probabilities(cluster_design, "cluster")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rgcr = RandomizedClusterDesign.from_graph(graph, "1hop-max", n_clusterings, treat_fraction=treat_fraction,
                                                  seed=rng)
    exposed_rgcr = fully_exposed_probabilities(rgcr, rgcr_name)
    rows: dict[tuple[str, str], list[tuple[float, float, float]]] = {}

    def record(name: str, design: str, effect) -> None:
        """One experiment's estimate and interval (all NaN: the estimator refused this draw)."""
        values = (np.nan,) * 3 if effect is None else (effect.estimate, effect.ci_low, effect.ci_high)
        rows.setdefault((name, design), []).append(values)

    def experiment(design) -> tuple[pd.DataFrame, pd.DataFrame]:
        """One draw of ``design``: the outcomes it produces and the arms."""
        z = design.draw(1, rng)[:, 0].astype(float)
        return (pd.DataFrame({"unit_id": graph.nodes, "y": outcome(z)}),
                pd.DataFrame({"unit_id": graph.nodes, "arm": z.astype(np.int64)}))

    def fully_exposed_hajek(frame: pd.DataFrame, arms: pd.DataFrame, probs):
        """Hajek's effect on the fully exposed, or None where this draw leaves too few units
        in a condition (the refusal ``estimate`` prints)."""
        full = exposure(graph, arms, "threshold", threshold_q=1.0)
        try:
            return estimate(frame, full, "hajek", probabilities=probs).effects[0]
        except SpilloverError:
            return None

    for _ in range(n_sims):  # a loop over simulated experiments; each estimator is vectorised
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame, arms = experiment(individual)
            own = exposure(graph, arms, "fraction")
            record("difference in means", "individual", estimate(frame, own, "difference-in-means").effects[0])
            record("regression adjustment (Chin)", "individual", regression_adjustment(frame, graph, arms))
            record("SNIPE(2)", "individual", snipe(frame, graph, arms, treat_fraction, degree=2))
            frame_c, arms_c = experiment(cluster_design)
            own_c = exposure(graph, arms_c, "fraction")
            record("difference in means, cluster-robust", "cluster",
                   estimate(frame_c, own_c, "ols-cluster", clusters=cluster_table, bootstrap=None).effects[0])
            if exposed is not None:
                record("Hajek, fully exposed", "cluster", fully_exposed_hajek(frame_c, arms_c, exposed))
            stages = rollout.stages(seed=rng)
            staged = pd.concat([pd.DataFrame({"unit_id": graph.nodes, "stage": t,
                                              "y": outcome(rollout.treated_at(stages, t).astype(float))})
                                for t in range(rollout.n_stages + 1)], ignore_index=True)
            record("polynomial interpolation", "rollout",
                   polynomial_interpolation(staged, rollout, graph=graph, stages=stages))
            frame_r, arms_r = experiment(rgcr)
            if exposed_rgcr is not None:
                record("Hajek, fully exposed", rgcr_name, fully_exposed_hajek(frame_r, arms_r, exposed_rgcr))
        if on_sim is not None:
            on_sim(1)
    out = []
    for (name, design), values in rows.items():
        est, low, high = (np.asarray(v, dtype=float) for v in zip(*values))
        printed = np.isfinite(low) & np.isfinite(high)  # an experiment can print no interval (too few units)
        low, high, est = low[printed], high[printed], est[np.isfinite(est)]  # or no estimate (refused)
        out.append({"estimator": name, "design": design, "truth": truth,
                    "bias": float(est.mean() - truth) if est.size else np.nan,
                    "sd": float(est.std(ddof=1)) if est.size > 1 else np.nan,
                    "rmse": float(np.sqrt(np.mean((est - truth) ** 2))) if est.size else np.nan,
                    "coverage": float(np.mean((low <= truth) & (truth <= high))) if printed.any() else np.nan,
                    "ci_width": float(np.mean(high - low)) if printed.any() else np.nan,
                    "power": float(np.mean((low > 0) | (high < 0))) if printed.any() else np.nan,
                    "no_interval": float(1.0 - printed.mean()), "n_sims": len(values)})
    table = pd.DataFrame(out)
    table["intervals"] = interval_verdicts(table)
    return table


def exact_ht_variance(
    graph: SocialGraph,
    design,
    treated_outcomes: np.ndarray,
    control_outcomes: np.ndarray,
    *,
    mapping: str = "threshold",
    threshold_q: float | None = 1.0,
    condition: str = "treated",
    control: str = "control",
) -> float:
    """The exact randomization variance of the Horvitz-Thompson contrast
    ``mean y(condition) - mean y(control)`` under ``design``, given every unit's
    potential outcome in both exposure conditions: the truth a variance estimate and a
    design are judged against.

    ``design`` is a design with exact exposure probabilities (a cluster or individual
    design) or a mixture of them (:class:`~spillover.design.RandomizedClusterDesign`). For
    a mixture of ``K`` clusterings, by the law of total variance: the mean over clusterings
    of the conditional variance (on the pairs that share a cluster) plus the variance over
    clusterings of the conditional mean; the weights ``1 / pi`` are the mixture's. Linear
    in the graph per clustering. Exact when clusters are randomized independently
    (Bernoulli, as RGCR does); under complete randomization, pairs that share no cluster
    are taken as independent, leaving out their slight negative dependence.

    Examples
    --------
    >>> from spillover import synth
    >>> from spillover.design import RandomizedClusterDesign
    >>> graph = synth.small_world(12, seed=1)
    >>> one = RandomizedClusterDesign.from_graph(graph, n_clusterings=1, seed=2)
    >>> mixed = RandomizedClusterDesign.from_graph(graph, n_clusterings=50, seed=2)
    >>> y0 = np.ones(graph.n_nodes); y1 = y0 + 1.0
    >>> bool(exact_ht_variance(graph, mixed, y1, y0) < exact_ht_variance(graph, one, y1, y0))
    True
    """
    y_k, y_l = (np.asarray(v, dtype=float) for v in (treated_outcomes, control_outcomes))
    if y_k.shape != (graph.n_nodes,) or y_l.shape != (graph.n_nodes,):
        raise InputError(f"potential outcomes: need one value per node ({graph.n_nodes}) in each condition.")
    parts = _component_probabilities(graph, design, mapping, threshold_q, control)
    k, l = parts[0].condition_index(condition), parts[0].condition_index(control)
    return _mixture_ht_variance(parts, k, l, y_k, y_l)


def _component_probabilities(graph: SocialGraph, design, mapping: str, threshold_q: float | None, control: str):
    """Exact probabilities (joint ones on the dependent pairs) of each component of a
    mixture design, or of the design itself."""
    import warnings

    from ..exposure import probabilities

    components = design.components()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # positivity is checked on the mixture
        return [probabilities(graph, mapping, threshold_q=threshold_q, design=c, method="exact", grouped=False,
                              factored=False, control=control) for c in components]


def _mixture_ht_variance(parts, k: int, l: int, y_k: np.ndarray, y_l: np.ndarray) -> float:
    """The HT contrast's variance under the uniform mixture of ``parts`` (each
    component's exact probabilities): mean conditional variance plus the variance of
    the conditional means, with the mixture's ``1 / pi`` weights."""
    pi_k = np.mean([p.marginal[:, k] for p in parts], axis=0)
    pi_l = np.mean([p.marginal[:, l] for p in parts], axis=0)
    if (pi_k <= 0).any() or (pi_l <= 0).any():
        raise InputError("some unit can never be in one of the compared conditions: the HT estimator is undefined.")
    n = y_k.size
    b_k, b_l = y_k / (n * pi_k), y_l / (n * pi_l)
    means, within = [], []
    for part in parts:
        m_k, m_l = part.marginal[:, k], part.marginal[:, l]
        rows, cols = csr_rows(part.pairs), part.pairs.indices
        cov_kk = part.joint[(k, k)].data - m_k[rows] * m_k[cols]
        cov_ll = part.joint[(l, l)].data - m_l[rows] * m_l[cols]
        cov_kl = part.joint[(k, l)].data - m_k[rows] * m_l[cols]
        within.append(np.sum(b_k[rows] * b_k[cols] * cov_kk) + np.sum(b_l[rows] * b_l[cols] * cov_ll)
                      - 2 * np.sum(b_k[rows] * b_l[cols] * cov_kl))
        means.append(b_k @ m_k - b_l @ m_l)
    return float(np.mean(within) + np.var(means))


def mixing_study(
    graph: SocialGraph,
    levels: Sequence[int] = (1, 10, 100),
    *,
    method: str = "1hop-max",
    weights="uniform",
    treat_fraction: float = 0.5,
    n_repeats: int = 3,
    tau: float = 1.0,
    s_e: float = 0.5,
    seed: Seed = None,
) -> pd.DataFrame:
    """Exact Horvitz-Thompson variance of the global effect under randomized graph
    cluster randomization as the mixing grows (Ugander & Yin 2023, their variance-versus-
    mixing figure): for each of ``n_repeats`` independent designs, ``max(levels)``
    clusterings are drawn and the first ``K`` of them mixed for each ``K`` in ``levels``.

    Outcomes follow the paper's kind: ``y_i(0) = (d_i / mean d) (1 + s_e e_i)`` (degree-
    proportional, ``e`` standard normal, drawn once) and ``y_i(1) = y_i(0) + tau``, with
    full-neighbourhood exposure. Columns: ``n_clusterings``, ``variance`` (mean over
    repeats), ``variance_min`` / ``variance_max`` (their range), ``mean_p`` (mean chance
    of full treatment exposure) and ``min_p``.

    Examples
    --------
    >>> from spillover import synth
    >>> table = mixing_study(synth.small_world(10, seed=1), levels=(1, 20), n_repeats=2, seed=3)
    >>> table["n_clusterings"].tolist(), bool(table["variance"].iloc[1] < table["variance"].iloc[0])
    ([1, 20], True)
    """
    from ..design import RandomizedClusterDesign

    levels = sorted({int(v) for v in levels})
    if not levels or levels[0] < 1:
        raise InputError(f"mixing levels {levels}: give positive numbers of clusterings.")
    rng = check_seed(seed)
    degree = graph.degrees().astype(float)
    y0 = degree / degree.mean() * (1.0 + s_e * rng.standard_normal(graph.n_nodes))
    y1 = y0 + tau
    rows: dict[int, list[tuple[float, float, float]]] = {k: [] for k in levels}
    for _ in range(n_repeats):
        full = RandomizedClusterDesign.from_graph(graph, method, levels[-1], treat_fraction=treat_fraction,
                                                  weights=weights, seed=rng)
        # each clustering's exact probabilities once; the mixture of the first K reuses them
        parts = _component_probabilities(graph, full, "threshold", 1.0, "control")
        treated, control = parts[0].condition_index("treated"), parts[0].condition_index("control")
        for k in levels:
            pi = np.mean([p.marginal[:, treated] for p in parts[:k]], axis=0)
            rows[k].append((_mixture_ht_variance(parts[:k], treated, control, y1, y0), float(pi.mean()),
                            float(pi.min())))
    out = []
    for k in levels:
        var, mean_p, min_p = (np.asarray(v) for v in zip(*rows[k]))
        out.append({"method": method, "weights": weights if isinstance(weights, str) else "custom",
                    "n_nodes": graph.n_nodes, "n_clusterings": k, "variance": float(var.mean()),
                    "variance_min": float(var.min()), "variance_max": float(var.max()),
                    "mean_p": float(mean_p.mean()), "min_p": float(min_p.min()), "n_repeats": n_repeats})
    return pd.DataFrame(out)
