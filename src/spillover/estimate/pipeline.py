"""``analyse()``: an analysis from files (or tables) as the command line gives them: it
reads the tables, decides the estimator by the design (:func:`plan_analysis`), loads the
graph and computes the exposure probabilities when the estimator needs them, and calls
:func:`estimate`. ``spillover estimate`` is this function with flags."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ContextManager


import pandas as pd

from ..design.record import design_from_record, stated_record
from ..errors import InputError
from ..exposure import probabilities as exposure_probabilities
from ..graph import BipartiteGraph, SocialGraph, load_graph, with_isolates
from ..io import ReadOptions, TableLike, read_table
from .dispatch import estimate, plan_analysis
from .registry import ESTIMATORS
from .results import Effects
from .table import cluster_series

__all__ = ["analyse", "analyse_on_engine"]


def _quiet(message: str) -> ContextManager:
    import contextlib

    return contextlib.nullcontext()


SIMULATED_METHODS = ("ht", "hajek", "wls")  # whose error also takes the design simulation's (analyse's design_draws)
DESIGN_DRAWS = 400  # analyse's default design_draws (the simulated se's relative error: about 1/sqrt(2 x 400))


def analyse(
    outcomes: TableLike,
    exposure: TableLike,
    method: str = "auto",
    *,
    edges: "TableLike | SocialGraph | BipartiteGraph | None" = None,
    source: str = "source",
    target: str = "target",
    bipartite: bool = False,
    directed: bool = False,
    read_options: ReadOptions | None = None,
    assignment: TableLike | None = None,
    clusters: TableLike | None = None,
    draws: TableLike | None = None,
    design: str | None = None,
    bernoulli: bool = False,
    treat_fraction: float | None = None,
    mapping: str | None = None,
    threshold_q: float | None = None,
    hops: int | None = None,
    n_draws: int = 1_000,
    prob_correction: str = "none",
    prob_method: str = "auto",
    joint: str = "dependent",
    max_pairs: int | None = None,
    seed: int | None = 0,
    design_draws: int = DESIGN_DRAWS,
    test: str | None = None,
    test_draws: int = 1_000,
    step: Callable[[str], ContextManager] = _quiet,
    **options: Any,
) -> Effects:
    """Effects from an outcomes table and an exposure table (paths or DataFrames), the way
    ``spillover estimate`` computes them.

    The design is the one recorded with the assignment (``exposure``'s metadata), or
    ``design`` (``individual`` / ``cluster``, with ``bernoulli`` and ``treat_fraction``;
    checked against the data), or read from the data. ``method="auto"`` picks the
    estimator the design supports. Design-based estimators get their exposure
    probabilities from ``draws`` (the design's draws made elsewhere) or from the design's
    own randomization, on the graph ``edges`` (a graph, or an edge list read with
    ``source``/``target``/``bipartite``/``directed`` and ``read_options`` as by
    :func:`~spillover.graph.load_graph`), with the treated side's
    arms from ``assignment`` on a bipartite graph. With the design's own randomization,
    ``ht`` and ``hajek`` also replay the design ``design_draws`` times (0: never) and
    take the larger of the Aronow-Samii standard error and the estimator's simulated one
    (:func:`~spillover.estimate.weighting.horvitz_thompson`). ``test`` (``no-effect`` or
    ``no-spillover``) adds an exact randomization test of that sharp null by
    ``test_draws`` re-draws of the design
    (:func:`~spillover.estimate.randomization.randomization_test`), its verdict a note;
    ``intervals`` adds exact intervals for the direct effect and the spillover under the
    linear model, by inverting such tests
    (:func:`~spillover.estimate.randomization.randomization_intervals`).
    ``step(message)`` wraps each long step (progress on a terminal). Other ``options`` go
    to :func:`estimate`.

    Examples
    --------
    >>> from spillover import synth
    >>> from spillover.design import ClusterDesign
    >>> from spillover.exposure import exposure
    >>> from spillover.simulate import social_outcomes
    >>> graph = synth.social_graph(2_000, seed=1)
    >>> labels = graph.node_data["community"].reindex(graph.nodes).to_numpy()
    >>> assignment = ClusterDesign(labels, graph.nodes).assign(seed=2)
    >>> table = exposure(graph, assignment, "fraction")
    >>> y = social_outcomes(graph, (assignment.arms == 1).astype(float), tau=0.5, gamma=0.0, seed=3)
    >>> effects = analyse(pd.DataFrame({"unit_id": graph.nodes, "y": y}), table)
    >>> effects.effects[0].method.startswith("OLS"), effects.notes[0].startswith("method auto: ols-cluster")
    (True, True)
    """
    outcomes = read_table(outcomes, what=_what("outcomes", outcomes))
    exposure = read_table(exposure, what=_what("exposure", exposure))
    if clusters is not None:
        clusters = cluster_series(read_table(clusters, what=_what("clusters", clusters)))
    stated = stated_record(design, complete=not bernoulli, treat_fraction=treat_fraction) if design else None
    plan = plan_analysis(exposure, method, design=stated, ignore_design=options.get("ignore_design", False),
                         clusters=clusters, mapping=mapping)
    needs = ESTIMATORS[plan.method].needs
    graph = None
    if "graph" in needs or "probabilities" in needs or test:
        if edges is None:
            raise InputError(f"{plan.method if not test else 'a randomization test'} needs the graph (--edges)"
                             + (" to compute exposure probabilities under the design." if "probabilities" in needs
                                else "."))
        if isinstance(edges, (SocialGraph, BipartiteGraph)):
            graph = edges
        else:
            with step(f"loading {edges if not isinstance(edges, pd.DataFrame) else 'the graph'}"):
                graph = load_graph(edges, source, target, bipartite=bipartite, directed=directed,
                                   options=read_options)
    # the design the assignment was made by, rebuilt once: exact probabilities, ERL's moments and the simulation
    design_graph = design_obj = None
    if graph is not None:
        design_graph = graph if isinstance(graph, BipartiteGraph) or "unit_id" not in exposure else \
            with_isolates(graph, exposure["unit_id"], "exposure table")  # isolates of the exposure step
    if ("probabilities" in needs and draws is None or "randomization" in needs or test
            or isinstance(graph, BipartiteGraph) and assignment is not None and plan.record is not None):
        design_obj = design_object(design_graph, plan, exposure, clusters, assignment)
    probs = simulated = None
    if "probabilities" in needs:
        probs = _probabilities(design_graph, plan, exposure, clusters, draws, design_obj, step,
                               dict(threshold_q=threshold_q, hops=hops, correction=prob_correction, joint=joint,
                                    method=prob_method, control=options.get("control"), max_pairs=max_pairs),
                               n_draws, seed)
        if design_draws and draws is None and plan.method in SIMULATED_METHODS and probs.mapping is not None:
            simulated = _simulated_conditions(design_graph, design_obj, probs, design_draws, seed, step)
    randomization = None if design_obj is None else design_obj.randomization()  # the bipartite methods read it
    effects = estimate(outcomes, exposure, method, design=stated, probabilities=probs, randomization=randomization,
                       simulated_conditions=simulated,
                       clusters=clusters,
                       mapping=plan.mapping if probs is None else probs.mapping, graph=graph, seed=seed, **options)
    if test:
        from .randomization import randomization_intervals, randomization_test

        if "arm" not in exposure:
            raise InputError("a randomization test re-draws the design: the exposure table needs each unit's arm.")
        with step(f"randomization test ({test}, {test_draws:,} re-draws)"):
            if test == "intervals":
                result = randomization_intervals(design_graph, design_obj, exposure[["unit_id", "arm"]], outcomes,
                                                 outcome_col=options.get("outcome_col", "y"),
                                                 alpha=options.get("alpha", 0.05), n_draws=test_draws, seed=seed)
            else:
                result = randomization_test(design_graph, design_obj, exposure[["unit_id", "arm"]], outcomes,
                                            null=test, mapping=plan.mapping or "as4",
                                            condition=options.get("condition"),
                                            outcome_col=options.get("outcome_col", "y"), n_draws=test_draws,
                                            seed=seed)
        effects = dataclasses.replace(effects, notes=(*effects.notes, result.summary()))
    return effects


def _ols_bipartite_on_engine(engine, outcomes, exposure, record, control, outcome_col, edges, assignment, source,
                             target, alpha: float, mapping=None) -> Effects:
    """ols-bipartite from the engine's per-condition totals and per-seller (per seller
    cluster) sums."""
    from ..exposure import default_control
    from .bipartite import ols_bipartite_from_stats

    if edges is None:
        raise InputError("ols-bipartite needs the buyer-seller links (--edges, --bipartite).")
    clustered = record is not None and (record.unit == "cluster" or bool(record.options.get("clustered")))
    if clustered and assignment is None:
        raise InputError("seller clusters were randomized: give the assignment (--assignment: unit_id, arm, "
                         "cluster_id) so the jackknife deletes one cluster at a time.")
    totals = engine.cluster_stats(outcomes, exposure, None, outcome_col=outcome_col)
    blocks = engine.treated_side_stats(outcomes, exposure, edges, assignment if clustered else None, source=source,
                                       target=target, outcome_col=outcome_col)
    control = control or default_control(totals["condition"].astype(str).unique())
    notes = ("ols-bipartite: the jackknife deletes one randomized seller cluster at a time",) if clustered else ()
    return Effects(tuple(ols_bipartite_from_stats(totals, blocks, control, alpha, mapping)), control, alpha, notes, ())


def _simulated_conditions(graph, design, probs, n: int, seed, step):
    """Each unit's condition (in ``probs``' units and conditions) in ``n`` fresh draws of
    ``design``, on ``graph`` (with the exposure step's isolates)."""
    from ..exposure.montecarlo import condition_draws

    with step(f"design simulation ({n} draws)"):
        units, codes = condition_draws(graph, probs.mapping, design, n, seed=0 if seed is None else seed)
    rows = pd.Index(units).get_indexer(probs.units)
    if (rows < 0).any() or tuple(probs.mapping.conditions) != tuple(probs.conditions):
        raise InputError("the design simulation's units or conditions differ from the exposure probabilities'.")
    return codes[rows]


def _what(name: str, source) -> str:
    return name if isinstance(source, pd.DataFrame) else f"{name} '{source}'"


def _probabilities(graph, plan, exposure: pd.DataFrame, clusters, draws, design, step, common: dict,
                   n_draws: int, seed):
    """Exposure probabilities of the plan's mapping on ``graph`` (with the exposure step's
    isolates): from draws made elsewhere, or under ``design`` (:func:`design_object`)."""
    mapping = plan.mapping
    if mapping is None:
        raise InputError("the exposure table's mapping is unknown (a mapping of your own?): name it (--mapping).")
    made = exposure.attrs.get("spillover.mapping") or {}
    common = {**common, "threshold_q": common["threshold_q"] if common["threshold_q"] is not None
              else made.get("threshold_q"), "hops": common["hops"] or made.get("hops") or 1}
    name = mapping.name if mapping.name != "as4-2hop" else "as4"
    randomized = graph.treated if isinstance(graph, BipartiteGraph) else graph.nodes
    if draws is not None:
        table = read_table(draws, what=_what("draws", draws))
        blocks = None if clusters is None else clusters.reindex(randomized).to_numpy()
        if blocks is not None and pd.isna(blocks).any():
            raise InputError(f"clusters: {int(pd.isna(blocks).sum())} randomized unit(s) have no cluster.")
        with step("exposure probabilities (given draws)"):
            return exposure_probabilities(graph, name, draws=table, clusters=blocks, **common)
    record = plan.record
    with step(f"exposure probabilities ({record.name} design)"):
        probs = exposure_probabilities(graph, name, design=design, n_draws=n_draws, seed=seed, **common)
    if record.scheme == "stratified":
        probs = probs.with_notes("the stratified design's probabilities are those of complete randomization of its "
                                 "treated clusters among all clusters (its strata are not in the assignment table)")
    return probs


def design_object(graph, plan, exposure: pd.DataFrame, clusters, assignment):
    """The design object of the plan's record, rebuilt from the arms it assigned (the
    assignment table, or the exposure table's arms on a social graph) and their clusters:
    what exact exposure probabilities and ERL's moments are computed under."""
    randomized = graph.treated if isinstance(graph, BipartiteGraph) else graph.nodes
    record = plan.record
    if record is None:
        raise InputError(f"{plan.method} needs the design's draws (--draws) or the design (--design individual|cluster).")
    if assignment is not None:
        assigned = read_table(assignment, what=_what("assignment", assignment))
    elif isinstance(graph, BipartiteGraph):
        raise InputError("a bipartite graph's treated side is randomized: give its assignment (--assignment: "
                         "unit_id, arm).")
    else:
        assigned = exposure
    if not {"unit_id", "arm"} <= set(assigned.columns):
        raise InputError(f"the design's arms are read from a table with unit_id and arm; it has {list(assigned.columns)}.")
    arms = assigned.drop_duplicates("unit_id").set_index("unit_id")["arm"].reindex(randomized)
    units_of = None
    if "cluster_id" in assigned.columns and assigned["cluster_id"].notna().any():
        units_of = assigned.drop_duplicates("unit_id").set_index("unit_id")["cluster_id"]
    if units_of is None or units_of.reindex(randomized).isna().any():
        units_of = clusters if clusters is not None else units_of
    return design_from_record(record, arms, None if units_of is None else units_of.reindex(randomized))


ENGINE_METHODS = ("difference-in-means", "cluster-means", "ols-cluster", "ols-bipartite")  # what engines' sums estimate


def analyse_on_engine(engine, outcomes: TableLike, exposure: TableLike, method: str = "auto", *,
                      clusters: TableLike | None = None, design: str | None = None, bernoulli: bool = False,
                      treat_fraction: float | None = None, mapping: str | None = None, ignore_design: bool = False,
                      control: str | None = None, outcome_col: str = "y", edges: TableLike | None = None,
                      assignment: TableLike | None = None, source: str = "source", target: str = "target",
                      **options: Any) -> Effects:
    """Effects from an engine's per-(cluster, condition) sufficient statistics, the data
    staying where it lives: the design is the one recorded with the exposure table (its
    file's metadata) or ``design`` (then stated), the method checked against it (``auto``
    resolved) as :func:`estimate` does; the errors cluster by ``clusters``, else by the
    randomization units (the exposure table's ``cluster_id``). ``options`` go to
    :func:`~spillover.estimate.estimate_from_stats`. ``ols-bipartite`` reads the
    buyer-seller links (``edges``, ``source`` buyers, ``target`` sellers) and, when seller
    clusters were randomized, the ``assignment`` with their ``cluster_id``: its jackknife
    comes from per-seller (per-cluster) sums the engine computes.

    Examples
    --------
    >>> import numpy as np
    >>> from spillover import synth
    >>> from spillover.design import ClusterDesign
    >>> from spillover.engines import get_engine
    >>> from spillover.exposure import exposure
    >>> graph = synth.social_graph(1_000, seed=1)
    >>> labels = graph.node_data["community"].reindex(graph.nodes).to_numpy()
    >>> table = exposure(graph, ClusterDesign(labels, graph.nodes).assign(seed=2), "fraction")
    >>> outcomes = pd.DataFrame({"unit_id": graph.nodes, "y": np.arange(1_000) % 7})
    >>> effects = analyse_on_engine(get_engine("duckdb"), outcomes, table)
    >>> effects.notes[0].startswith("method auto: ols-cluster"), effects.effects[0].method.startswith("OLS / CR2")
    (True, True)
    """
    from ..design.record import DesignRecord
    from ..errors import DesignError
    from ..exposure import default_control, get_mapping
    from ..io import DESIGN_KEY, MAPPING_KEY, table_metadata
    from .cluster_robust import estimate_from_stats
    from .registry import mapping_kind, recommend, validity

    metadata = table_metadata(exposure)
    record = stated_record(design, complete=not bernoulli, treat_fraction=treat_fraction) if design else \
        DesignRecord.from_dict(metadata[DESIGN_KEY]) if DESIGN_KEY in metadata else None
    made = (metadata.get(MAPPING_KEY) or {}).get("name")
    kind = mapping_kind(get_mapping(mapping or made) if (mapping or made) else None)
    notes, asked = [], method
    if method == "auto":
        if record is None:
            raise DesignError("method auto on an engine reads the design recorded with the exposure table; it has "
                              "none: name a method (--method) or the design (--design).")
        method, why = recommend(record, kind)
        notes.append(f"method auto: {method}, because {why}")
    elif record is not None:
        verdict = validity(method, record.unit, kind)
        if not verdict.allowed and not ignore_design:
            raise DesignError(f"{method} does not fit this {record.name} design: {verdict.reason}. Use --method "
                              f"{verdict.instead} (or --method auto).")
    if method not in ENGINE_METHODS:
        raise InputError(f"--engine {engine.name} runs {', '.join(ENGINE_METHODS)} (no covariates), not {method}; "
                         "use --engine memory.")
    if method == "ols-bipartite":
        effects = _ols_bipartite_on_engine(engine, outcomes, exposure, record, control, outcome_col, edges,
                                           assignment, source, target, options.get("alpha", 0.05),
                                           get_mapping(mapping or made) if (mapping or made) else None)
        if record is not None:
            notes.insert(1 if asked == "auto" else 0, f"design: {record.describe()}")
        return dataclasses.replace(effects, notes=tuple(notes) + effects.notes)
    if method != "difference-in-means" and clusters is None:
        if record is None:
            raise InputError(f"{method} needs clusters (--clusters).")
        clusters = exposure  # the exposure table's cluster_id: the randomization units
        notes.append("errors clustered by the randomization units (the exposure table's cluster_id)")
    stats = engine.cluster_stats(outcomes, exposure, clusters if method != "difference-in-means" else None,
                                 outcome_col=outcome_col)
    control = control or default_control(stats["condition"].astype(str).unique())
    effects = estimate_from_stats(stats, method, control, **options)
    if record is not None:
        notes.insert(1 if asked == "auto" else 0, f"design: {record.describe()}")
    return dataclasses.replace(effects, notes=tuple(notes) + effects.notes)
