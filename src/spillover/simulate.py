"""Simulate before you launch: generative outcome models with spillover, and the
comparison of designs by bias, variance, coverage and power.

The collaboration-network model (one outcome per user ``k``) is

    y_k = mu + tau z_k + gamma tau (A z)_k + c_i + a_ij + p_ijk + e_k

with ``(A z)_k`` the number of user ``k``'s treated neighbours (users sharing a
project; first-order spillover only), and component, account and project random
effects ``c ~ N(0, s_c^2)``, ``a ~ N(0, s_a^2)``, ``p ~ N(0, s_p^2)`` (homophily).
A user who belongs to several projects is a unit of its **primary project** (its
largest), whose account it takes. The estimand is the **global average treatment
effect**, everyone treated against nobody treated:
``GATE = tau (1 + gamma * mean degree)``.

Every design is run ``n_sims`` times at once: cluster draws ``W`` form one matrix, and
each experiment is analysed by the difference in means (with stratum fixed effects for
stratified designs) with cluster-robust errors clustered by the unit of randomization,
from the same variance kernel as ``estimate`` (:mod:`spillover.variance`; CR2 with
Bell-McCaffrey degrees of freedom by default, ``vcov=`` to choose), vectorised across
experiments: the coverage a design study reports is that of ``estimate --method
ols-cluster --vcov`` on the same data. Treatment is constant within a cluster, so that
analysis needs only each cluster's outcome sum: ``C A C' W`` for the spillover term and
sparse cluster-by-component (account, project) counts times the random effects, in time
linear in the clusters (:func:`simulate_experiments` gives the users' data of the same
experiments).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from .cluster import cluster, cut_fraction
from .design import ClusterDesign, StratifiedClusterDesign
from .seeds import Seed, check_seed
from .errors import InputError
from .graph import BipartiteGraph, CollaborationNetwork, SocialGraph, csr_rows, group_indicator
from .variance import DEFAULT_VCOV, ols, ols_cluster_sums

__all__ = ["DESIGNS", "SPILLOVERS", "Comparison", "DesignResult", "OutcomeModel", "SimulatedChunk", "Study",
           "choose_design", "cluster_robust_difference", "compare_designs", "compare_estimators", "exact_ht_variance",
           "example_outcomes", "gamma_sweep", "marketplace_outcomes", "mixing_study", "simulate_design",
           "simulate_experiments", "social_outcomes"]

DESIGNS = ("project", "component", "stratified-component", "individual")


@dataclass(frozen=True)
class OutcomeModel:
    """Parameters of the collaboration-network outcome model (the study's defaults).

    ``usage_effect`` adds ``usage_effect * u_i`` to every user of component ``i``, where
    ``u`` is the standardised log of the component's total usage: heavy users behave
    differently, which is why the stratified design stratifies on usage (0 removes it).

    Examples
    --------
    >>> OutcomeModel(tau=0.0).gamma                                  # an A/A model keeps the default spillover
    0.0625
    """

    mu: float = 0.0
    tau: float = 1 / 8
    gamma: float = 2**-4
    s_c: float = 2.0
    s_a: float = 1.0
    s_p: float = 0.5
    s_e: float = 0.0
    usage_effect: float = 1.0


@dataclass(frozen=True, eq=False)
class Study:
    """A collaboration network prepared once for many simulated experiments.

    Examples
    --------
    >>> from spillover import synth
    >>> study = Study.from_network(synth.collaboration_network(2_000, seed=1))
    >>> study.n_users, round(study.gate(OutcomeModel(tau=1.0, gamma=0.0)), 3)
    (2000, 1.0)
    """

    network: CollaborationNetwork
    adjacency: sp.csr_array  # users sharing a project
    component: np.ndarray    # per user
    project: np.ndarray      # primary project per user
    account: np.ndarray      # the primary project's account per user
    usage: np.ndarray
    usage_score: np.ndarray  # standardised log usage of each user's component

    @classmethod
    def from_network(cls, network: CollaborationNetwork) -> "Study":
        """Prepare ``network``: its user graph, components, primary projects and usage."""
        project = network.primary_project()
        usage = network.user_data["usage"].to_numpy(dtype=float) if "usage" in network.user_data \
            else np.ones(network.n_users)
        component = cluster(network, "components").labels
        log_usage = np.log(np.bincount(component, weights=usage))
        score = (log_usage - log_usage.mean()) / log_usage.std()
        return cls(network, network.user_graph().adjacency, component, project,
                   network.project_account[project], usage, score[component])

    @property
    def n_users(self) -> int:
        """Number of users."""
        return self.network.n_users

    def mean_degree(self) -> float:
        """Mean number of users a user shares a project with."""
        return float(np.diff(self.adjacency.indptr).mean())

    def gate(self, model: OutcomeModel) -> float:
        """The global average treatment effect under ``model``."""
        return model.tau * (1.0 + model.gamma * self.mean_degree())

    def units(self, design: str) -> np.ndarray:
        """Randomization unit of each user under ``design``."""
        if design == "project":
            return self.project
        if design in ("component", "stratified-component"):
            return self.component
        if design == "individual":
            return np.arange(self.n_users)
        raise InputError(f"unknown design {design!r}; choose one of {list(DESIGNS)}.")


@dataclass(frozen=True)
class DesignResult:
    """Per-experiment estimates of one design, and their summary against the truth.

    Examples
    --------
    >>> from spillover import synth
    >>> study = Study.from_network(synth.collaboration_network(2_000, seed=1))
    >>> result = simulate_design(study, "component", OutcomeModel(), n_sims=50, seed=1)
    >>> result.estimates.shape, sorted(result.summary())[:3]
    ((50,), ['bias', 'ci_width', 'coverage'])
    """

    design: str
    true_effect: float
    estimates: np.ndarray
    ses: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n_clusters: int

    def summary(self) -> dict:
        """Bias, sd, RMSE, coverage, mean interval width and power against the true effect."""
        covered = (self.ci_low <= self.true_effect) & (self.true_effect <= self.ci_high)
        rejects = (self.ci_low > 0) | (self.ci_high < 0)
        return {
            "design": self.design,
            "bias": float(self.estimates.mean() - self.true_effect),
            "sd": float(self.estimates.std(ddof=1)),
            "rmse": float(np.sqrt(np.mean((self.estimates - self.true_effect) ** 2))),
            "coverage": float(covered.mean()),
            "ci_width": float(np.mean(self.ci_high - self.ci_low)),
            "power": float(rejects.mean()),
            "n_sims": int(self.estimates.size),
            "n_clusters": self.n_clusters,
        }


@dataclass(frozen=True)
class Comparison:
    """The design comparison: one :class:`DesignResult` per design.

    Examples
    --------
    >>> from spillover import synth
    >>> study = Study.from_network(synth.collaboration_network(2_000, seed=1))
    >>> comparison = compare_designs(study, ["project", "component"], n_sims=50, seed=1)
    >>> comparison.to_frame()["design"].tolist(), comparison["component"].n_clusters > 0
    (['project', 'component'], True)
    """

    true_effect: float
    model: OutcomeModel
    results: tuple[DesignResult, ...]

    def to_frame(self) -> pd.DataFrame:
        """One row per design: its :meth:`DesignResult.summary`."""
        return pd.DataFrame([r.summary() for r in self.results])

    def __getitem__(self, design: str) -> DesignResult:
        for result in self.results:
            if result.design == design:
                return result
        raise KeyError(design)

    def to_json(self) -> dict:
        """The ``simulate --json`` object: the true effect and each design's summary."""
        keys = ("design", "bias", "sd", "rmse", "coverage", "ci_width", "power", "n_sims")
        return {"true_effect": self.true_effect,
                "designs": [{k: r.summary()[k] for k in keys} for r in self.results]}

    def recommend(self, level: float = 0.95) -> pd.DataFrame:
        """One row: the design to run and why.

        A design is *honest* when its bias is within two Monte Carlo standard errors of
        zero (``2 sd / sqrt(n_sims)``) and its interval coverage is not below ``level`` by
        more than two Monte Carlo standard errors. The recommendation is the honest design
        with the narrowest intervals (the most power); if none is honest, the one with the
        smallest RMSE, flagged. More simulated experiments make the test of bias sharper.

        Examples
        --------
        >>> from spillover import synth
        >>> study = Study.from_network(synth.collaboration_network(2_000, seed=1))
        >>> comparison = compare_designs(study, ["component", "stratified-component"], n_sims=100, seed=2)
        >>> comparison.recommend()["design"].iloc[0] in ("component", "stratified-component")
        True
        """
        table = self.to_frame()
        floor = level - 2 * np.sqrt(level * (1 - level) / table["n_sims"])
        unbiased = table["bias"].abs() <= 2 * table["sd"] / np.sqrt(table["n_sims"])
        honest = table[(table["coverage"] >= floor) & unbiased]
        if len(honest):
            row = honest.loc[honest["ci_width"].idxmin()]
            reason = (f"narrowest intervals ({row['ci_width']:.4g}) among designs without detectable bias and with "
                      f"coverage within Monte Carlo error of {level:.0%}")
        else:
            row = table.loc[table["rmse"].idxmin()]
            reason = (f"no design is free of detectable bias with {level:.0%} coverage: smallest RMSE, but its "
                      "intervals cannot be trusted")
        return pd.DataFrame([{"design": row["design"], "coverage": row["coverage"], "ci_width": row["ci_width"],
                              "bias": row["bias"], "power": row["power"], "reason": reason}])


# --------------------------------------------------------------------------- analysis kernel


def cluster_robust_difference(
    y: np.ndarray,
    z: np.ndarray,
    clusters: np.ndarray,
    strata: np.ndarray | None = None,
    alpha: float = 0.05,
    variance: str = DEFAULT_VCOV,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """For every column (experiment) of ``y`` and ``z`` (``n x S``): the OLS coefficient of
    ``z`` with an intercept (or stratum fixed effects), its cluster-robust standard error
    clustered by ``clusters`` and its t interval, all from
    :func:`spillover.variance.ols` (the kernel ``estimate`` uses): ``variance="CR2"``
    (default) with Bell-McCaffrey degrees of freedom, ``"CR1"`` with ``G - 1``.

    Returns ``(beta, se, ci_low, ci_high, n_clusters)``, each array of length ``S``.

    Examples
    --------
    >>> import numpy as np
    >>> codes = np.repeat(np.arange(10), 4)
    >>> z = (codes % 2)[:, None].astype(float) * np.ones((1, 3))          # 3 experiments at once
    >>> y = np.random.default_rng(0).normal(size=(40, 3)) + z
    >>> beta, se, low, high, g = cluster_robust_difference(y, z, codes)
    >>> beta.shape, g
    ((3,), 10)
    """
    absorb = np.zeros(y.shape[0], dtype=np.int64) if strata is None else strata
    fit = ols(y, z.astype(float)[:, None, :], clusters, variance, absorb=absorb)
    se, low, high, _ = fit.interval(0, alpha)
    return fit.beta[:, 0], se, low, high, fit.n_clusters


# --------------------------------------------------------------------------- experiments


def _cluster_draws(study: Study, design: str, n_sims: int, rng: np.random.Generator, n_bins: int):
    """Cluster codes per user, draws ``(n_clusters, S)``, and strata per cluster (or None)."""
    units = study.units(design)
    codes, ids = pd.factorize(units, sort=True)
    if design == "stratified-component":
        plan = StratifiedClusterDesign.from_units(codes, pd.RangeIndex(study.n_users),
                                                  {"size": None, "usage": study.usage},
                                                  n_bins=n_bins, sample_fraction=1.0)
        return codes, plan.draw_clusters(n_sims, rng), plan.strata
    plan = ClusterDesign(codes, pd.RangeIndex(study.n_users), cluster_ids=pd.RangeIndex(len(ids)))
    return codes, plan.draw_clusters(n_sims, rng), None


def _random_parts(study: Study, model: "OutcomeModel", cluster_draws: np.ndarray, rng: np.random.Generator,
                  chunk: int | None) -> Iterator[tuple[np.ndarray, list[np.ndarray], np.ndarray | None]]:
    """Per chunk of experiments: the cluster draws ``w`` ``(G, s)``, the random effects of
    components, accounts and projects, and (when ``s_e``) every user's noise, drawn in
    one order, so the users' data and the clusters' sums from one seed are the same
    experiments. ``chunk=None`` keeps one ``G x s`` array near 16 MB: larger arrays
    cost more in fresh memory pages than they save in calls (at 1M users, 100
    experiments a chunk took 3x as long as 10)."""
    levels = (int(study.component.max()) + 1, int(study.account.max()) + 1, int(study.project.max()) + 1)
    if chunk is None:
        chunk = int(np.clip(2**21 // cluster_draws.shape[0], 1, 100))
    for start in range(0, cluster_draws.shape[1], chunk):  # a loop over chunks of experiments
        w = cluster_draws[:, start:start + chunk].astype(float)
        s = w.shape[1]
        effects = [rng.standard_normal((size, s)) for size in levels]
        yield w, effects, (rng.standard_normal((study.n_users, s)) if model.s_e else None)


@dataclass(frozen=True)
class SimulatedChunk:
    """A chunk of simulated experiments: per user its randomization unit (``clusters``)
    and stratum (or None), and per experiment (columns) the treatment ``z`` and outcome
    ``y``.

    Examples
    --------
    >>> from spillover import synth
    >>> study = Study.from_network(synth.collaboration_network(2_000, seed=1))
    >>> chunk = next(simulate_experiments(study, "project", OutcomeModel(), n_sims=20, seed=1))
    >>> chunk.z.shape[0] == study.n_users
    True
    """

    clusters: np.ndarray
    strata: np.ndarray | None
    z: np.ndarray
    y: np.ndarray


def simulate_experiments(
    study: Study,
    design: str,
    model: OutcomeModel = OutcomeModel(),
    *,
    n_sims: int = 1_000,
    seed=None,
    chunk: int | None = None,
    n_bins: int = 4,
) -> Iterator[SimulatedChunk]:
    """The simulated data of ``n_sims`` experiments of ``design``, ``chunk`` at a time:
    every user's assignment and outcome (random effects drawn anew in each experiment).
    :func:`simulate_design` analyses the same experiments (same seed) from the
    clusters' sums.

    Examples
    --------
    >>> from spillover import synth
    >>> study = Study.from_network(synth.collaboration_network(2_000, seed=1))
    >>> sum(chunk.y.shape[1] for chunk in simulate_experiments(study, "component", OutcomeModel(), n_sims=30,
    ...                                                       chunk=10, seed=1))
    30
    """
    rng = check_seed(seed)
    codes, cluster_draws, strata = _cluster_draws(study, design, n_sims, rng, n_bins)
    spill = sp.csr_array(study.adjacency @ group_indicator(codes, cluster_draws.shape[0]).T)  # A C
    levels = (study.component, study.account, study.project)
    unit_strata = None if strata is None else strata[codes]
    for w, effects, noise in _random_parts(study, model, cluster_draws, rng, chunk):
        z = w[codes]
        y = (model.mu + model.usage_effect * study.usage_score[:, None]
             + model.tau * z + model.gamma * model.tau * (spill @ w))
        for scale, effect, level in zip((model.s_c, model.s_a, model.s_p), effects, levels):
            y += scale * effect[level]
        if noise is not None:
            y += model.s_e * noise
        yield SimulatedChunk(codes, unit_strata, z, y)


def simulate_design(
    study: Study,
    design: str,
    model: OutcomeModel = OutcomeModel(),
    *,
    n_sims: int = 1_000,
    seed=None,
    chunk: int | None = None,
    n_bins: int = 4,
    vcov: str = DEFAULT_VCOV,
    on_chunk: Callable[[int], None] | None = None,
) -> DesignResult:
    """``n_sims`` experiments of ``design`` on ``study`` under ``model``, each analysed by
    the difference in means (stratum fixed effects for stratified designs) with ``vcov``
    errors clustered by the unit of randomization; processed ``chunk`` at a time (default:
    sized by the number of clusters; the same seed and chunk give the same experiments
    as :func:`simulate_experiments`).

    Treatment is constant within a unit of randomization, so each experiment's analysis
    needs only every cluster's outcome sum (:func:`spillover.variance.ols_cluster_sums`,
    equal to ``estimate --method ols-cluster`` on the users' data of
    :func:`simulate_experiments`): the sums are built from the random effects through
    sparse cluster-by-level counts, in time linear in the clusters, not the users.

    Examples
    --------
    >>> from spillover import synth
    >>> study = Study.from_network(synth.collaboration_network(2_000, seed=1))
    >>> simulate_design(study, "stratified-component", OutcomeModel(tau=0.0), n_sims=40, seed=2).estimates.size
    40
    """
    rng = check_seed(seed)
    codes, cluster_draws, strata = _cluster_draws(study, design, n_sims, rng, n_bins)
    n_clusters = cluster_draws.shape[0]
    members = group_indicator(codes, n_clusters)                                    # C
    sizes = np.bincount(codes, minlength=n_clusters)
    base = members @ (model.mu + model.usage_effect * study.usage_score)
    spill = sp.csr_array(members @ study.adjacency @ members.T)                     # C A C'
    counts = [sp.csr_array(members @ group_indicator(level, int(level.max()) + 1).T)  # users per cluster x level
              for level in (study.component, study.account, study.project)]
    absorb = np.zeros(n_clusters, dtype=np.int64) if strata is None else strata
    pieces = []
    for w, effects, noise in _random_parts(study, model, cluster_draws, rng, chunk):
        sums = base[:, None] + model.tau * sizes[:, None] * w + model.gamma * model.tau * (spill @ w)
        for scale, effect, count in zip((model.s_c, model.s_a, model.s_p), effects, counts):
            sums += scale * (count @ effect)
        if noise is not None:
            sums += model.s_e * (members @ noise)
        fit = ols_cluster_sums(sums, w[:, None, :], sizes, vcov, absorb=absorb)
        se, low, high, _ = fit.interval(0)
        pieces.append((fit.beta[:, 0], se, low, high))
        if on_chunk:
            on_chunk(w.shape[1])
    beta, se, low, high = (np.concatenate(p) for p in zip(*pieces))
    return DesignResult(design, study.gate(model), beta, se, low, high, n_clusters)


def compare_designs(
    network: CollaborationNetwork | Study,
    designs: Sequence[str] = ("project", "component", "stratified-component"),
    model: OutcomeModel = OutcomeModel(),
    *,
    n_sims: int = 1_000,
    seed=0,
    vcov: str = DEFAULT_VCOV,
    progress: Callable[[int], None] | None = None,
) -> Comparison:
    """Run every design ``n_sims`` times under ``model`` and summarise each by bias, sd,
    RMSE, 95% CI coverage, mean CI width and power against the GATE, with ``vcov``
    errors (the same kernel as ``estimate``). ``tau = 0`` is the A/A calibration.

    Examples
    --------
    >>> from spillover import synth
    >>> study = Study.from_network(synth.collaboration_network(2_000, seed=1))
    >>> compare_designs(study, ["component"], OutcomeModel(tau=0.0), n_sims=40, seed=2).true_effect
    0.0
    """
    study = network if isinstance(network, Study) else Study.from_network(network)
    streams = check_seed(seed).spawn(len(designs))  # one independent stream per design
    results = tuple(simulate_design(study, d, model, n_sims=n_sims, seed=s, vcov=vcov, on_chunk=progress)
                    for d, s in zip(designs, streams))
    return Comparison(study.gate(model), model, results)


def gamma_sweep(
    network: CollaborationNetwork | Study,
    designs: Sequence[str] = ("project", "component"),
    ms: Iterable[int] = range(1, 9),
    model: OutcomeModel = OutcomeModel(),
    *,
    n_sims: int = 300,
    seed=0,
) -> pd.DataFrame:
    """Bias, coverage and power of each design as spillover shrinks: ``gamma = 2^-m``.

    Examples
    --------
    >>> from spillover import synth
    >>> study = Study.from_network(synth.collaboration_network(2_000, seed=1))
    >>> gamma_sweep(study, ["component"], ms=[2, 6], n_sims=30, seed=1)["m"].tolist()
    [2, 6]
    """
    study = network if isinstance(network, Study) else Study.from_network(network)
    rows = []
    for m in ms:  # a loop over settings; each runs all experiments at once
        comparison = compare_designs(study, designs, replace(model, gamma=2.0**-m), n_sims=n_sims, seed=seed + m)
        for row in comparison.to_frame().to_dict(orient="records"):
            rows.append({"m": m, "gamma": 2.0**-m, "true_effect": comparison.true_effect, **row})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- other models


def social_outcomes(
    graph: SocialGraph, z: np.ndarray, *, tau: float, gamma: float, s_community: float = 1.0,
    s_e: float = 1.0, seed=None,
) -> np.ndarray:
    """Social-graph variant: ``y = tau z + gamma tau (treated share of neighbours) +
    community effect + noise`` (communities from ``node_data["community"]``, else one).
    Its GATE is ``tau (1 + gamma)`` over units with neighbours.

    Examples
    --------
    >>> import numpy as np
    >>> from spillover import synth
    >>> graph = synth.social_graph(500, seed=1)
    >>> y = social_outcomes(graph, np.zeros(500), tau=1.0, gamma=0.5, s_community=0.0, s_e=0.0)
    >>> float(np.abs(y).max())                                        # nobody treated: no effect, no noise
    0.0
    """
    rng = check_seed(seed)
    z = np.asarray(z, dtype=float)
    degree = np.diff(graph.adjacency.indptr).astype(float)
    share = np.divide(graph.adjacency @ z, degree if z.ndim == 1 else degree[:, None],
                      out=np.zeros_like(z), where=(degree if z.ndim == 1 else degree[:, None]) > 0)
    community = graph.node_data["community"].to_numpy() if graph.node_data is not None and "community" in graph.node_data \
        else np.zeros(graph.n_nodes, dtype=np.int64)
    codes, uniques = pd.factorize(community)
    shape = (len(uniques),) + z.shape[1:]
    return tau * z + gamma * tau * share + s_community * rng.standard_normal(shape)[codes] \
        + s_e * rng.standard_normal(z.shape)


def example_outcomes(graph: SocialGraph, assignment, *, tau: float = 0.2, gamma: float = 0.5,
                     seed: Seed = None) -> tuple[pd.DataFrame, dict[str, float]]:
    """Outcomes with a known effect for an assignment on ``graph``, to try a pipeline on:
    :func:`social_outcomes` with each unit's own arm (arm 1 and up treated).

    Returns the outcome table (``unit_id, y``) and the truth: ``tau``, ``gamma`` and the
    global average treatment effect ``tau (1 + gamma * share of units with neighbours)``.

    >>> from spillover import synth
    >>> from spillover.design import IndividualDesign
    >>> graph = synth.social_graph(500, seed=1)
    >>> table, truth = example_outcomes(graph, IndividualDesign(graph.nodes).assign(seed=2), seed=3)
    >>> list(table.columns), round(truth["gate"], 3)
    (['unit_id', 'y'], 0.3)
    """
    from .exposure import arms_for, assignment_ids, treated_indicator
    from .graph import with_isolates

    graph = with_isolates(graph, assignment_ids(assignment), "assignment")  # units without edges are units
    z = treated_indicator(arms_for(graph.nodes, assignment)).astype(float)
    y = social_outcomes(graph, z, tau=tau, gamma=gamma, seed=seed)
    connected = float(np.mean(np.diff(graph.adjacency.indptr) > 0))
    return (pd.DataFrame({"unit_id": graph.nodes, "y": y}),
            {"tau": tau, "gamma": gamma, "gate": tau * (1.0 + gamma * connected)})


def marketplace_outcomes(
    graph: BipartiteGraph, seller_z: np.ndarray, *, tau: float, s_buyer: float = 1.0, seed=None
) -> np.ndarray:
    """Marketplace variant: a buyer's outcome rises by ``tau`` times the treated share of
    its sellers (the GATE is ``tau``), plus buyer-level noise.

    Examples
    --------
    >>> import numpy as np
    >>> from spillover import synth
    >>> market = synth.marketplace(300, 30, seed=1)
    >>> marketplace_outcomes(market, np.ones(30), tau=0.5, seed=1).shape
    (300,)
    """
    rng = check_seed(seed)
    degree = graph.unit_degrees().astype(float)
    z = np.asarray(seller_z, dtype=float)
    treated = graph.incidence @ z
    share = treated / (degree if z.ndim == 1 else degree[:, None])
    return tau * share + s_buyer * rng.standard_normal(share.shape)


# --------------------------------------------------------------------------- choosing a design


def choose_design(
    graph: SocialGraph,
    effect: float,
    *,
    gamma: float = 0.25,
    resolutions: Sequence[float] = (1.0, 10.0, 100.0),
    n_sims: int = 200,
    seed=0,
    s_community: float = 1.0,
    s_e: float = 1.0,
) -> pd.DataFrame:
    """Tabulate candidate designs for a planning ``effect`` (the GATE) on ``graph``:
    individual randomization and Louvain clusters at each resolution, each by bias, sd,
    RMSE and the minimum detectable effect at 80% power (``(z_.975 + z_.8) sd``). The
    ``best`` column marks the lowest RMSE: with modest spillover it is often a small
    cluster size, since bias from cut edges costs less than the variance of big ones.

    Examples
    --------
    >>> import warnings
    >>> from spillover import synth
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     table = choose_design(synth.social_graph(1_000, seed=1), effect=0.2, resolutions=[1.0], n_sims=40)
    >>> table["design"].tolist()[0], int(table["best"].sum())
    ('individual', 1)
    """
    connected = float(np.mean(np.diff(graph.adjacency.indptr) > 0))
    tau = effect / (1.0 + gamma * connected)  # isolated units feel no spillover
    rng = check_seed(seed)
    candidates: list[tuple[str, np.ndarray]] = [("individual", np.arange(graph.n_nodes))]
    for resolution in resolutions:
        labels = cluster(graph, "louvain", resolution=resolution, seed=seed, cut_threshold=1.0).labels
        candidates.append((f"louvain r={resolution:g}", labels))
    rows = []
    for name, labels in candidates:  # a loop over candidate designs
        codes, ids = pd.factorize(labels)
        if len(ids) < 2:
            continue
        draws = ClusterDesign(codes, graph.nodes, cluster_ids=pd.RangeIndex(len(ids))).draw_clusters(n_sims, rng)
        z = draws[codes].astype(float)
        y = social_outcomes(graph, z, tau=tau, gamma=gamma, s_community=s_community, s_e=s_e, seed=rng)
        beta, se, low, high, g = cluster_robust_difference(y, z, codes)
        sd = float(beta.std(ddof=1))
        rows.append({
            "design": name, "n_clusters": g, "cut_fraction": cut_fraction(graph.adjacency, labels),
            "bias": float(beta.mean() - effect), "sd": sd, "rmse": float(np.sqrt(np.mean((beta - effect) ** 2))),
            "mde_80": float((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * sd),
            "coverage": float(np.mean((low <= effect) & (effect <= high))),
        })
    table = pd.DataFrame(rows)
    table["best"] = table["rmse"] == table["rmse"].min()
    return table


# --------------------------------------------------------------------------- estimators of the global effect

SPILLOVERS = ("linear", "quadratic", "threshold")  # shapes g(share) of the spillover in compare_estimators


def _spillover_shape(share: np.ndarray, kind: str) -> np.ndarray:
    if kind == "linear":
        return share
    if kind == "quadratic":
        return share**2
    return (share >= 0.5).astype(float)  # threshold: a unit reacts once half its friends are treated


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

    Examples
    --------
    >>> from spillover import synth
    >>> graph = synth.social_graph(800, seed=1)
    >>> table = compare_estimators(graph, n_sims=10, seed=2)
    >>> table.columns.tolist()[:4], len(table)
    (['estimator', 'design', 'truth', 'bias'], 7)
    """
    import warnings

    from .design import IndividualDesign, RandomizedClusterDesign, RolloutDesign
    from .estimate import estimate, polynomial_interpolation, regression_adjustment, snipe
    from .exposure import exposure, probabilities

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
        return base + tau * z + gamma * tau * _spillover_shape(share, spillover)

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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exposed = probabilities(graph, "threshold", threshold_q=1.0, design=cluster_design)
        rgcr = RandomizedClusterDesign.from_graph(graph, "1hop-max", n_clusterings, treat_fraction=treat_fraction,
                                                  seed=rng)
        exposed_rgcr = probabilities(graph, "threshold", threshold_q=1.0, design=rgcr)
    rows: dict[tuple[str, str], list[tuple[float, float, float]]] = {}

    def record(name: str, design: str, effect) -> None:
        rows.setdefault((name, design), []).append((effect.estimate, effect.ci_low, effect.ci_high))

    def experiment(design) -> tuple[pd.DataFrame, pd.DataFrame]:
        """One draw of ``design``: the outcomes it produces and the arms."""
        z = design.draw(1, rng)[:, 0].astype(float)
        return (pd.DataFrame({"unit_id": graph.nodes, "y": outcome(z)}),
                pd.DataFrame({"unit_id": graph.nodes, "arm": z.astype(np.int64)}))

    def fully_exposed_hajek(frame: pd.DataFrame, arms: pd.DataFrame, probs):
        full = exposure(graph, arms, "threshold", threshold_q=1.0)
        return estimate(frame, full, "hajek", probabilities=probs).effects[0]

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
            record("Hajek, fully exposed", "cluster", fully_exposed_hajek(frame_c, arms_c, exposed))
            stages = rollout.stages(seed=rng)
            staged = pd.concat([pd.DataFrame({"unit_id": graph.nodes, "stage": t,
                                              "y": outcome(rollout.treated_at(stages, t).astype(float))})
                                for t in range(rollout.n_stages + 1)], ignore_index=True)
            record("polynomial interpolation", "rollout", polynomial_interpolation(staged, rollout, graph=graph))
            frame_r, arms_r = experiment(rgcr)
            record("Hajek, fully exposed", f"rgcr ({n_clusterings} clusterings)",
                   fully_exposed_hajek(frame_r, arms_r, exposed_rgcr))
    out = []
    for (name, design), values in rows.items():
        est, low, high = (np.asarray(v) for v in zip(*values))
        out.append({"estimator": name, "design": design, "truth": truth, "bias": float(est.mean() - truth),
                    "sd": float(est.std(ddof=1)), "rmse": float(np.sqrt(np.mean((est - truth) ** 2))),
                    "coverage": float(np.mean((low <= truth) & (truth <= high))),
                    "ci_width": float(np.mean(high - low)), "n_sims": len(est)})
    return pd.DataFrame(out)


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

    from .exposure import probabilities

    components = design.cluster_designs() if hasattr(design, "cluster_designs") else [design]
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
    from .design import RandomizedClusterDesign

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
