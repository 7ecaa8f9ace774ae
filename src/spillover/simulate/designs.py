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

from ..clustering import cluster, cut_fraction
from ..design import ClusterDesign, StratifiedClusterDesign
from ..display import mapping_html, notebook_html
from ..errors import InputError
from ..graph import CollaborationNetwork, SocialGraph, group_indicator
from ..names import SIMULATED_DESIGNS
from ..seeds import check_seed
from ..variance import DEFAULT_VCOV, ols, ols_cluster_sums
from .outcomes import social_outcomes
from .ranking import interval_verdicts, recommend

DESIGNS = tuple(SIMULATED_DESIGNS)


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
        """Randomization unit of each user under ``design`` (:data:`SIMULATED_DESIGNS`)."""
        if design not in SIMULATED_DESIGNS:
            raise InputError(f"unknown design {design!r}; choose one of {list(DESIGNS)}.")
        unit = SIMULATED_DESIGNS[design][1]
        return {"project": self.project, "component": self.component}.get(unit, np.arange(self.n_users))


@dataclass(frozen=True)
class DesignResult:
    """Per-experiment estimates of one design, and their summary against the truth.

    Examples
    --------
    >>> from spillover import synth
    >>> study = Study.from_network(synth.collaboration_network(2_000, seed=1))
    >>> result = simulate_design(study, "component", OutcomeModel(), n_sims=50, seed=1)
    >>> result.estimates.shape, sorted(result.to_dict())[:3]
    ((50,), ['bias', 'ci_width', 'coverage'])
    """

    design: str
    true_effect: float
    estimates: np.ndarray
    ses: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n_clusters: int

    def summary(self) -> str:
        """Bias, coverage and power in a line."""
        data = self.to_dict()
        return (f"{self.design}: bias {data['bias']:+.4f}, sd {data['sd']:.4f}, coverage {data['coverage']:.1%}, "
                f"power {data['power']:.1%} over {data['n_sims']:,} experiments")

    def _repr_html_(self) -> str:
        return mapping_html(f"Design {self.design}: {self.estimates.size:,} simulated experiments", self.to_dict())

    def to_dict(self) -> dict:
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
        """One row per design: its :meth:`DesignResult.summary`, and ``intervals``: ``ok``,
        or ``UNDER-COVERS`` where the coverage is below :data:`~spillover.simulate.ranking.COVERAGE_FLOOR` (a design
        then never recommended)."""
        table = pd.DataFrame([r.to_dict() for r in self.results])
        table["intervals"] = interval_verdicts(table)
        return table

    def __getitem__(self, design: str) -> DesignResult:
        for result in self.results:
            if result.design == design:
                return result
        raise KeyError(design)

    def _repr_html_(self) -> str:
        """The comparison as a notebook shows it: one row per design, then the recommendation."""
        best = self.recommend().iloc[0]
        return notebook_html(f"Design comparison (true effect {self.true_effect:.4g})", self.to_frame(),
                             [f"recommended: {best['design']}, {best['reason']}"])

    def plot(self, ax=None):
        """Each design's estimates over the experiments, the true effect dashed (a
        matplotlib ``Axes``). See :func:`spillover.plots.draw_estimates`."""
        from ..plots import draw_estimates

        return draw_estimates(self, ax)

    def to_json(self) -> dict:
        """The ``simulate --json`` object: the true effect and each design's summary."""
        keys = ["design", "bias", "sd", "rmse", "coverage", "ci_width", "power", "n_sims", "n_clusters", "intervals"]
        return {"true_effect": self.true_effect, "designs": self.to_frame()[keys].to_dict(orient="records")}

    def recommend(self, level: float = 0.95) -> pd.DataFrame:
        """One row: the design to run and why (:func:`~spillover.simulate.ranking.recommend`:
        the narrowest intervals among designs without detectable bias whose coverage is
        within Monte Carlo error of ``level`` and not below :data:`~spillover.simulate.ranking.COVERAGE_FLOOR`).

        Examples
        --------
        >>> from spillover import synth
        >>> study = Study.from_network(synth.collaboration_network(2_000, seed=1))
        >>> comparison = compare_designs(study, ["component", "stratified-component"], n_sims=100, seed=2)
        >>> comparison.recommend()["design"].iloc[0] in ("component", "stratified-component")
        True
        """
        return recommend(self.to_frame(), ["design"], level)


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


def _cluster_draws(study: Study, design: str, n_sims: int, rng: np.random.Generator, n_bins: int,
                   sample_fraction: float = 1.0):
    """Cluster codes per user, draws ``(n_clusters, S)`` (arm ``-1``: a cluster left out
    of the experiment, with ``sample_fraction`` below 1), and strata per cluster (or
    None). A sample is drawn within strata (exact counts, as the stratified design draws
    it), or from all clusters at once for the other designs."""
    units = study.units(design)
    codes, ids = pd.factorize(units, sort=True)
    if not 0.0 < sample_fraction <= 1.0:
        raise InputError(f"sample_fraction={sample_fraction} must be in (0, 1].")
    if SIMULATED_DESIGNS[design][0] == "stratified-cluster":
        plan = StratifiedClusterDesign.from_units(codes, pd.RangeIndex(study.n_users),
                                                  {"size": None, "usage": study.usage},
                                                  n_bins=n_bins, sample_fraction=sample_fraction)
        return codes, plan.draw_clusters(n_sims, rng), plan.strata
    if sample_fraction < 1.0:  # one stratum: a simple random sample of clusters, split 50/50
        plan = StratifiedClusterDesign(codes, pd.RangeIndex(study.n_users), np.zeros(len(ids), dtype=np.int64),
                                       sample_fraction, cluster_ids=pd.RangeIndex(len(ids)))
        return codes, plan.draw_clusters(n_sims, rng), None
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
        w = cluster_draws[:, start:start + chunk].astype(float)  # -1: left out of the experiment
        s = w.shape[1]
        effects = [rng.standard_normal((size, s)) for size in levels]
        yield w, effects, (rng.standard_normal((study.n_users, s)) if model.s_e else None)


@dataclass(frozen=True)
class SimulatedChunk:
    """A chunk of simulated experiments: per user its randomization unit (``clusters``)
    and stratum (or None), and per experiment (columns) the treatment ``z``, outcome
    ``y`` and whether the user's cluster was sampled into the experiment (``in_sample``;
    the others are untreated and not analysed).

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
    in_sample: np.ndarray


def simulate_experiments(
    study: Study,
    design: str,
    model: OutcomeModel = OutcomeModel(),
    *,
    n_sims: int = 1_000,
    seed=None,
    chunk: int | None = None,
    n_bins: int = 4,
    sample_fraction: float = 1.0,
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
    codes, cluster_draws, strata = _cluster_draws(study, design, n_sims, rng, n_bins, sample_fraction)
    spill = sp.csr_array(study.adjacency @ group_indicator(codes, cluster_draws.shape[0]).T)  # A C
    levels = (study.component, study.account, study.project)
    unit_strata = None if strata is None else strata[codes]
    for arms, effects, noise in _random_parts(study, model, cluster_draws, rng, chunk):
        w = np.maximum(arms, 0.0)  # left out: untreated
        z = w[codes]
        y = (model.mu + model.usage_effect * study.usage_score[:, None]
             + model.tau * z + model.gamma * model.tau * (spill @ w))
        for scale, effect, level in zip((model.s_c, model.s_a, model.s_p), effects, levels):
            y += scale * effect[level]
        if noise is not None:
            y += model.s_e * noise
        yield SimulatedChunk(codes, unit_strata, z, y, (arms >= 0)[codes])


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
    sample_fraction: float = 1.0,
) -> DesignResult:
    """``n_sims`` experiments of ``design`` on ``study`` under ``model``, each analysed by
    the difference in means (stratum fixed effects for stratified designs) with ``vcov``
    errors clustered by the unit of randomization; processed ``chunk`` at a time (default:
    sized by the number of clusters; the same seed and chunk give the same experiments
    as :func:`simulate_experiments`). With ``sample_fraction`` below 1 each experiment
    samples that share of the clusters (within strata for the stratified design), splits
    them 50/50 and analyses them alone; the others stay untreated. The sampled clusters
    differ from one experiment to the next, so those are analysed one at a time.

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
    codes, cluster_draws, strata = _cluster_draws(study, design, n_sims, rng, n_bins, sample_fraction)
    n_clusters = cluster_draws.shape[0]
    members = group_indicator(codes, n_clusters)                                    # C
    sizes = np.bincount(codes, minlength=n_clusters)
    base = members @ (model.mu + model.usage_effect * study.usage_score)
    spill = sp.csr_array(members @ study.adjacency @ members.T)                     # C A C'
    counts = [sp.csr_array(members @ group_indicator(level, int(level.max()) + 1).T)  # users per cluster x level
              for level in (study.component, study.account, study.project)]
    absorb = np.zeros(n_clusters, dtype=np.int64) if strata is None else strata
    pieces = []
    for arms, effects, noise in _random_parts(study, model, cluster_draws, rng, chunk):
        w = np.maximum(arms, 0.0)  # left out: untreated
        sums = base[:, None] + model.tau * sizes[:, None] * w + model.gamma * model.tau * (spill @ w)
        for scale, effect, count in zip((model.s_c, model.s_a, model.s_p), effects, counts):
            sums += scale * (count @ effect)
        if noise is not None:
            sums += model.s_e * (members @ noise)
        if sample_fraction < 1.0:
            pieces.append(_sampled_fits(sums, arms, sizes, absorb, vcov))
        else:
            fit = ols_cluster_sums(sums, w[:, None, :], sizes, vcov, absorb=absorb)
            se, low, high, _ = fit.interval(0)
            pieces.append((fit.beta[:, 0], se, low, high))
        if on_chunk:
            on_chunk(w.shape[1])
    beta, se, low, high = (np.concatenate(p) for p in zip(*pieces))
    sampled = int((cluster_draws[:, 0] >= 0).sum()) if cluster_draws.shape[1] else n_clusters
    return DesignResult(design, study.gate(model), beta, se, low, high, sampled)


def _sampled_fits(sums: np.ndarray, arms: np.ndarray, sizes: np.ndarray, absorb: np.ndarray, vcov: str):
    """Each experiment's analysis of its sampled clusters alone (arm ``>= 0``): estimate,
    se and interval bounds, one experiment at a time (the sampled clusters, hence their
    sizes, differ between experiments)."""
    out = np.empty((4, arms.shape[1]))
    for j in range(arms.shape[1]):  # a loop over experiments; each fit is vectorised over its clusters
        kept = arms[:, j] >= 0
        fit = ols_cluster_sums(sums[kept, j], arms[kept, j][:, None], sizes[kept], vcov, absorb=absorb[kept])
        se, low, high, _ = fit.interval(0)
        out[:, j] = fit.beta[0], np.ravel(se)[0], np.ravel(low)[0], np.ravel(high)[0]
    return tuple(out)


def compare_designs(
    network: CollaborationNetwork | Study,
    designs: Sequence[str] = ("project", "component", "stratified-component"),
    model: OutcomeModel = OutcomeModel(),
    *,
    n_sims: int = 1_000,
    seed=0,
    vcov: str = DEFAULT_VCOV,
    progress: Callable[[int], None] | None = None,
    sample_fraction: float = 1.0,
) -> Comparison:
    """Run every design ``n_sims`` times under ``model`` and summarise each by bias, sd,
    RMSE, 95% CI coverage, mean CI width and power against the GATE, with ``vcov``
    errors (the same kernel as ``estimate``). ``tau = 0`` is the A/A calibration.
    ``sample_fraction``: the share of each design's clusters an experiment enrolls
    (:func:`simulate_design`).
    ``progress(k)`` is called as each chunk of ``k`` experiments finishes.

    Examples
    --------
    >>> from spillover import synth
    >>> study = Study.from_network(synth.collaboration_network(2_000, seed=1))
    >>> compare_designs(study, ["component"], OutcomeModel(tau=0.0), n_sims=40, seed=2).true_effect
    0.0
    """
    study = network if isinstance(network, Study) else Study.from_network(network)
    streams = check_seed(seed).spawn(len(designs))  # one independent stream per design
    results = tuple(simulate_design(study, d, model, n_sims=n_sims, seed=s, vcov=vcov, on_chunk=progress,
                                    sample_fraction=sample_fraction)
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
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Bias, coverage and power of each design as spillover shrinks: ``gamma = 2^-m``
    (``progress(k)`` is called as each chunk of ``k`` experiments finishes).

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
        comparison = compare_designs(study, designs, replace(model, gamma=2.0**-m), n_sims=n_sims, seed=seed + m,
                                     progress=progress)
        for row in comparison.to_frame().to_dict(orient="records"):
            rows.append({"m": m, "gamma": 2.0**-m, "true_effect": comparison.true_effect, **row})
    return pd.DataFrame(rows)


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
    from scipy import special
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
            "mde_80": float((special.ndtri(0.975) + special.ndtri(0.8)) * sd),
            "coverage": float(np.mean((low <= effect) & (effect <= high))),
        })
    table = pd.DataFrame(rows)
    table["best"] = table["rmse"] == table["rmse"].min()
    return table
