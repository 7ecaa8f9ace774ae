"""The commands of the analysis stages: ``estimate``, ``simulate``, ``plan`` and
``synth``."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
from rich.markup import escape

from ..console import counting, print_json, print_summary, print_table, progress, stderr
from ..graph import CollaborationNetwork, load_graph
from ..io import write_table
from .common import engine_for, engine_only, engine_poll, load_edges, name_list, read_options


def cmd_estimate(args: argparse.Namespace) -> int:
    """``spillover estimate``: effects with intervals, in memory or from an engine's sufficient statistics."""
    from ..estimate import analyse

    engine = engine_for(args)
    if engine is not None:
        from ..estimate import analyse_on_engine

        engine_only(args, "difference-in-means, cluster-means, ols-cluster and ols-bipartite (no covariates, no "
                          "--test)", not args.covariates and not args.test)
        with progress(f"sufficient statistics ({engine.name})", args.json, poll=engine_poll(engine)):
            effects = analyse_on_engine(engine, args.outcomes, args.exposure, args.method, clusters=args.clusters,
                                        edges=args.edges, assignment=args.assignment, source=args.source,
                                        target=args.target,
                                        design=args.design, bernoulli=args.bernoulli,
                                        treat_fraction=args.treat_fraction, mapping=args.mapping,
                                        ignore_design=args.ignore_design, control=args.control,
                                        outcome_col=args.outcome_col, alpha=args.alpha, vcov=args.vcov,
                                        bootstrap=args.wild_bootstrap, bootstrap_weights=args.bootstrap_weights,
                                        seed=args.seed)
        return _print_effects(args, effects)
    effects = analyse(
        args.outcomes, args.exposure, args.method, edges=args.edges, source=args.source, target=args.target,
        read_options=read_options(args),
        bipartite=args.bipartite, directed=args.directed, assignment=args.assignment, clusters=args.clusters,
        draws=args.draws, design=args.design, bernoulli=args.bernoulli, treat_fraction=args.treat_fraction,
        mapping=args.mapping, threshold_q=args.threshold, hops=args.hops, n_draws=args.n_draws,
        prob_correction=args.prob_correction, prob_method=args.prob_method, joint=args.joint,
        max_pairs=args.max_pairs or None, seed=args.seed, design_draws=args.design_draws,
        test=args.test, test_draws=args.test_draws, step=lambda message: progress(message, args.json),
        ignore_design=args.ignore_design, control=args.control, outcome_col=args.outcome_col,
        covariates=name_list(args.covariates), missing=args.missing, alpha=args.alpha, vcov=args.vcov,
        bandwidth=args.bandwidth, bootstrap=args.wild_bootstrap, bootstrap_weights=args.bootstrap_weights,
        min_probability=args.min_probability, min_units=args.min_units, variance_bound=args.variance_bound)
    return _print_effects(args, effects)


def _print_effects(args: argparse.Namespace, effects) -> int:
    frame = effects.to_frame()
    if args.json:
        print_json({"control": effects.control, "alpha": effects.alpha, "notes": list(effects.notes),
                    "health": [check.to_dict() for check in effects.health],
                    "effects": frame.to_dict(orient="records")})
    else:
        method = frame["method"].iloc[0] if len(frame) else args.method
        print_table(frame.drop(columns="method").rename(columns={"ci_low": f"ci_low ({effects.level})",
                                                                 "ci_high": f"ci_high ({effects.level})"}),
                    title=f"effects against '{effects.control}' ({method})")
        for note in effects.notes:
            stderr.print(f"[dim]note: {escape(note)}[/dim]", highlight=False)
        for check in effects.health:
            if not check.flagged:  # a failed check is already a warning and a note
                stderr.print(f"[dim]health: {escape(check.detail)}[/dim]", highlight=False)
    return 0


def _write_study(out: str, csv_name: str, table, title: str, lede: str, section) -> None:
    """A ``simulate`` run's outputs in ``out``: its table as ``csv_name`` and report.html."""
    from .. import report

    folder = Path(out)
    write_table(table, folder / csv_name)
    report.write_report(folder / "report.html", title, lede, [section])
    stderr.print(f"[dim]wrote {folder}/report.html and {csv_name}[/dim]")


def _compare_estimators(args: argparse.Namespace) -> int:
    """``simulate --compare estimators``: the global effect's estimators on one social graph."""
    from .. import report, synth
    from ..simulate import compare_estimators
    from ..simulate.ranking import recommend

    with progress("preparing the graph", args.json):
        graph = load_graph(args.edges, args.source, args.target) if args.edges else \
            synth.social_graph(args.users or 5_000, seed=args.seed)
    n_sims = args.n_sims or 200
    with counting(f"7 estimators x {n_sims:,} experiments", n_sims, args.json) as advance:
        table = compare_estimators(graph, tau=args.tau, gamma=args.gamma, spillover=args.spillover, n_sims=n_sims,
                                   seed=args.seed, max_pairs=args.max_pairs or None, on_sim=advance)
    truth = float(table["truth"].iloc[0])
    best = recommend(table, ["estimator", "design"], what="estimator")
    if args.out:
        _write_study(args.out, "estimator_comparison.csv", table, "spillover simulate: estimators of the global effect",
                     f"{graph.n_nodes:,} units; tau = {args.tau:g}, gamma = {args.gamma:g}, {args.spillover} "
                     f"spillover; true global effect {truth:.4f}.",
                     report.Section("Estimator comparison", "", [("Recommended", best), ("Per estimator", table)],
                                    [("Bias and spread per estimator", report.plot_estimator_comparison(table))]))
    if args.json:
        print_json({"true_effect": truth, "estimators": table.drop(columns="truth").to_dict(orient="records"),
                    "recommendation": best.iloc[0].to_dict()})
    else:
        print_table(table.drop(columns="truth"), title=f"estimators of the global effect (truth {truth:.4f}, "
                                                      f"{args.spillover} spillover)")
        print_table(best, title="recommended estimator and design")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """``spillover simulate``: compare designs (or estimators) on simulated experiments."""
    from .. import report, synth
    from ..errors import InputError
    from ..graph import CollaborationNetwork
    from ..simulate import DESIGNS, OutcomeModel, Study, compare_designs

    if args.compare == "marketplace":
        return _compare_marketplace(args)
    if args.compare == "estimators":
        if args.memberships:
            raise InputError("--compare estimators runs on a social graph: give --edges (or nothing, for a synthetic "
                             "one), not --memberships.")
        return _compare_estimators(args)
    if args.edges:
        raise InputError("--edges is for --compare estimators; designs are compared on a collaboration network "
                         "(--memberships).")
    args.users, args.n_sims = args.users or 100_000, args.n_sims or 1_000
    designs = name_list(args.designs)
    unknown = [d for d in designs if d not in DESIGNS]
    if unknown or not designs:
        raise InputError(f"unknown design(s) {unknown or designs}; choose from {list(DESIGNS)}.")
    with progress("preparing the network", args.json):
        if args.memberships:
            network = CollaborationNetwork.from_memberships(args.memberships)
        else:
            network = synth.collaboration_network(args.users, seed=args.seed)
        study = Study.from_network(network)
    model = OutcomeModel(tau=args.tau, gamma=args.gamma, usage_effect=args.usage_effect)
    with counting(f"{len(designs)} designs x {args.n_sims:,} experiments", args.n_sims * len(designs),
                  args.json) as advance:
        comparison = compare_designs(study, designs, model, n_sims=args.n_sims, seed=args.seed, vcov=args.vcov,
                                     progress=advance, sample_fraction=args.sample_fraction)
    table, recommendation = comparison.to_frame(), comparison.recommend()
    if args.out:
        _write_study(args.out, "design_comparison.csv", table, "spillover simulate",
                     f"{study.n_users:,} users; tau = {args.tau:g}, gamma = {args.gamma:g}, usage effect "
                     f"{args.usage_effect:g}; {args.sample_fraction:.0%} of each design's clusters enrolled; "
                     f"true effect (GATE) {comparison.true_effect:.4f}.",
                     report.Section("Design comparison", "", [("Recommended design", recommendation),
                                                              ("Per design", table)],
                                    [("Sorted 95% intervals", report.plot_sorted_intervals(comparison)),
                                     ("Estimates per design", report.plot_effect_distributions(comparison))]))
    if args.json:
        print_json({**comparison.to_json(), "recommendation": recommendation.iloc[0].to_dict()})
    else:
        enrolled = f", {args.sample_fraction:.0%} of clusters enrolled" if args.sample_fraction < 1 else ""
        print_table(table, title=f"design comparison (true effect {comparison.true_effect:.4f}{enrolled})")
        print_table(recommendation, title="recommended design")
    return 0


def _compare_marketplace(args: argparse.Namespace) -> int:
    """``simulate --compare marketplace``: seller designs and marketplace estimators."""
    from .. import report, synth
    from ..errors import InputError
    from ..simulate import marketplace_study

    if args.memberships:
        raise InputError("--compare marketplace runs on buyer-seller links (--edges), not --memberships.")
    from ..simulate.marketplace import EXPOSURE_DESIGN

    designs: dict[str, int | str | None] = {"sellers": None}
    for size in name_list(args.seller_clusters):
        if size == EXPOSURE_DESIGN:
            designs[EXPOSURE_DESIGN] = EXPOSURE_DESIGN
        elif size.isdigit() and int(size) >= 2:
            designs[f"{int(size)} seller clusters"] = int(size)
        else:
            raise InputError(f"--seller-clusters {args.seller_clusters!r}: give numbers of clusters (2 or more) or "
                             f"{EXPOSURE_DESIGN}, e.g. 40,160,{EXPOSURE_DESIGN}.")
    with progress("preparing the market", args.json):
        if args.edges:
            market = load_graph(args.edges, args.source, args.target, bipartite=True)
        else:
            market = synth.marketplace(args.buyers, args.sellers, categories=args.categories, seed=args.seed)
    n_sims = args.n_sims or 300
    with counting(f"{len(designs)} designs x {n_sims:,} experiments", n_sims * len(designs), args.json) as advance:
        study = marketplace_study(market, designs, n_sims=n_sims, tau=args.tau, seed=args.seed, progress=advance,
                                  max_pairs=args.max_pairs or None)
    best = study.recommend()
    table = study.table
    if args.out:
        lede = (f"{market.n_units:,} buyers, {market.n_treated_side:,} sellers; buyers' outcomes linear in the treated "
                f"share of their sellers; true total effect {study.total_effect:.4f}.")
        _write_study(args.out, "marketplace_comparison.csv", table, "spillover simulate --compare marketplace", lede,
                     report.Section("Marketplace designs", "", [("Recommended", best.to_frame().T),
                                                                ("Per design and estimator", table)], []))
    if args.json:
        print_json({"total_effect": study.total_effect, "rows": table.to_dict(orient="records"),
                    "recommendation": best.to_dict()})
    else:
        print_table(table, title=f"marketplace designs (true total effect {study.total_effect:.4f})")
        stderr.print(f"recommended: {best['design']} with {best['estimator']}: {best['reason']}", highlight=False)
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    """Example inputs: a social graph's edges, daily membership snapshots, or outcomes
    with a known effect for an assignment."""
    from .. import synth
    from ..io import read_table
    from ..ledger import as_date
    from ..simulate import example_marketplace_outcomes, example_outcomes

    if args.kind == "social":
        write_table(synth.edge_table(synth.social_graph(args.users, seed=args.seed)), args.out)
        summary = {"kind": "social", "out": args.out, "n_units": args.users}
    elif args.kind == "marketplace":
        import pandas as pd

        market = synth.marketplace(args.buyers, args.sellers, categories=args.categories, seed=args.seed)
        rows, cols = market.edge_index()
        write_table(pd.DataFrame({"source": market.units[rows], "target": market.treated[cols]}), args.out)
        summary = {"kind": "marketplace", "out": args.out, "n_buyers": market.n_units,
                   "n_sellers": market.n_treated_side, "n_links": market.n_edges, "categories": args.categories}
    elif args.kind == "memberships":
        start = as_date(args.start)
        paths = [Path(args.out) / f"memberships-{start + dt.timedelta(days=d)}.parquet" for d in range(args.days)]
        for path, frame in zip(paths, synth.iter_memberships(args.users, args.days, seed=args.seed)):
            write_table(frame, path)  # one day in memory at a time
        summary = {"kind": "memberships", "out": args.out, "files": [str(p) for p in paths]}
    else:
        if not (args.edges and args.assignment):
            from ..errors import InputError
            raise InputError("synth outcomes needs the graph (--edges) and the assignment (--assignment).")
        graph = load_edges(args, args.edges)
        assignment = read_table(args.assignment, what=f"assignment '{args.assignment}'")
        if args.bipartite:
            table, truth = example_marketplace_outcomes(graph, assignment, tau=args.tau, seed=args.seed)
        else:
            table, truth = example_outcomes(graph, assignment, tau=args.tau, gamma=args.gamma, seed=args.seed)
        write_table(table, args.out)
        summary = {"kind": "outcomes", "out": args.out, **truth}
    if args.json:
        print_json(summary)
    else:
        print_summary({k: v if not isinstance(v, list) else ", ".join(v) for k, v in summary.items()},
                      title=f"synth {args.kind}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """``spillover plan``: ICC, design effect, MDE and interference bias of each candidate design."""
    from ..io import read_table
    from ..plan import plan

    with progress("loading the graph", args.json):
        graph = CollaborationNetwork.from_memberships(args.memberships) if args.memberships \
            else load_edges(args, args.edges)
    candidates = None
    if args.clusters:
        units = graph.users if isinstance(graph, CollaborationNetwork) else graph.nodes
        candidates = {"individual": np.arange(len(units))}
        for path in args.clusters:  # a loop over the candidate files
            table = read_table(path, what=f"clusters '{path}'")
            from ..io import require_columns
            require_columns(table, ["unit_id", "cluster_id"], f"clusters '{path}'")
            labels = table.drop_duplicates("unit_id").set_index("unit_id")["cluster_id"].reindex(units)
            if labels.isna().any():
                from ..errors import InputError
                raise InputError(f"clusters '{path}': {int(labels.isna().sum())} unit(s) of the graph have no cluster.")
            candidates[Path(path).stem] = labels.to_numpy()
    with progress("planning", args.json):
        result = plan(graph, args.outcomes, clusters=candidates, outcome_col=args.outcome_col, pre_col=args.pre_col,
                      effect=args.effect, spillover=args.spillover, treat_fraction=args.treat_fraction,
                      sample_fraction=args.sample_fraction, alpha=args.alpha, power=args.power,
                      duration_days=args.duration_days, seed=args.seed)
    if args.json:
        print_json(result.to_json())
    else:
        columns = ["design", "n_clusters", "icc", "design_effect", "effective_n", "se", "mde", "interference_bias",
                   "coverage", "intervals", "mde_sequential", "days_to_detect", "days_to_power", "recommended"]
        print_table(result.table[columns], title=f"plan: power {args.power:g} at alpha {args.alpha:g}, assumed "
                                                 f"spillover {args.spillover:g} (recommended: {result.recommended})")
        stderr.print(f"[dim]coverage: of the 95% interval once the interference bias is counted (UNDER-COVERS below "
                     f"0.93: never recommended); mde: a fixed interval read once at the end; mde_sequential: the daily "
                     f"job's always-valid "
                     f"band by day {args.duration_days}; days_to_detect / days_to_power: days until the band excludes "
                     f"0 for the planned effect with probability 1/2 / {args.power:g} (blank: not within "
                     f"{4 * args.duration_days} days)[/dim]", highlight=False)
    return 0
