"""``spillover <stage> ...``: one command per pipeline stage, plus ``spillover demo``.

The flags, output columns and ``--json`` keys are a public contract
(``shared/INTERFACE.md``). Tables go to stdout; progress and warnings go to stderr, so
``--json`` output is one JSON object on stdout and nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import __version__
from .cluster import METHODS, cluster
from .errors import SpilloverError, SpilloverWarning
from .exposure import PROBABILITY_METHODS, get_mapping
from .graph import CollaborationNetwork, load_graph, write_table
from .estimate import METHODS as ESTIMATE_METHODS
from .variance import DEFAULT_VCOV, VCOV_TYPES

# wide when piped (CI logs, files): tables of a dozen columns stay readable
stdout = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
stderr = Console(stderr=True, soft_wrap=True)


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def progress(message: str, quiet: bool = False) -> Iterator[None]:
    """A spinner on stderr while a step runs, then the step's time."""
    start = time.perf_counter()
    if quiet or not stderr.is_terminal:
        stderr.print(f"[dim]{message} ...[/dim]")
        yield
    else:
        with stderr.status(message):
            yield
    stderr.print(f"[dim]{message}: done in {time.perf_counter() - start:.1f}s[/dim]")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    label = category.__name__ if issubclass(category, SpilloverWarning) else "warning"
    stderr.print(f"[yellow]{label}:[/yellow] {message}", highlight=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def print_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(_jsonable(payload)) + "\n")


def format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "-"
        if abs(value) >= 1000 or float(value).is_integer():
            return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"
        return f"{value:.4g}"
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    return str(value)


def print_table(frame: pd.DataFrame, title: str | None = None, console: Console = stdout) -> None:
    """A DataFrame as a rich table."""
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        table.add_column(str(column), justify="right" if numeric else "left")
    for row in frame.itertuples(index=False):  # display only: tables are a few rows
        table.add_row(*(format_value(v) for v in row))
    console.print(table)


def print_summary(summary: dict[str, Any], title: str) -> None:
    frame = pd.DataFrame({"": list(summary.keys()), "value": [format_value(v) for v in summary.values()]})
    print_table(frame, title=title)


def _engine(args: argparse.Namespace):
    """The engine the flags ask for, or None for the in-memory path."""
    if getattr(args, "engine", "memory") == "memory":
        return None
    from .engines import get_engine

    return get_engine(args.engine, memory_limit=args.memory_limit, master=args.spark_master)


def _engine_only(args: argparse.Namespace, what: str, allowed: bool) -> None:
    from .errors import InputError

    if not allowed:
        raise InputError(f"--engine {args.engine} runs {what}; use --engine memory for the rest.")


# --------------------------------------------------------------------------- commands


def _cluster_with_engine(args: argparse.Namespace, engine) -> int:
    _engine_only(args, "--method components on an edge list", args.method == "components" and not args.memberships
                 and not args.bipartite)
    with progress(f"connected components ({engine.name})", args.json):
        clusters = engine.components(args.edges, source=args.source, target=args.target)
    if args.out:
        write_table(clusters, args.out)
    sizes = clusters["cluster_id"].value_counts().to_numpy()
    summary = {"method": "components", "engine": engine.name, "n_units": len(clusters), "n_edges": None,
               "n_clusters": int(sizes.size), "cut_fraction": 0.0, "modularity": None,
               "cluster_size_min": int(sizes.min()), "cluster_size_median": float(np.median(sizes)),
               "cluster_size_max": int(sizes.max())}
    if args.json:
        print_json(summary)
    else:
        print_summary(summary, title=f"clustering: components ({engine.name})")
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    engine = _engine(args)
    if engine is not None:
        return _cluster_with_engine(args, engine)
    with progress(f"loading {args.edges}", args.json):
        if args.memberships:
            graph = CollaborationNetwork.from_memberships(args.edges)
        else:
            graph = load_graph(
                args.edges, args.source, args.target, bipartite=args.bipartite, directed=args.directed
            )
    with progress(f"clustering ({args.method})", args.json):
        result = cluster(
            graph,
            args.method,
            resolution=args.resolution,
            seed=args.seed,
            n_parts=args.n_parts,
            cut_threshold=args.cut_threshold,
        )
    if args.out:
        write_table(result.to_frame(), args.out)
        stderr.print(f"[dim]wrote {args.out}[/dim]")
    summary = result.summary()
    if args.json:
        print_json(summary)
    else:
        print_summary(summary, title=f"clustering: {args.method}")
    return 0


def _float_list(text: str | None) -> list[float] | None:
    return None if not text else [float(v) for v in text.split(",")]


def _names(text: str | None) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()] if text else []


def build_design(args: argparse.Namespace, units: pd.DataFrame):
    """The design the ``assign`` flags describe, over the rows of ``units``."""
    from .design import ClusterDesign, IndividualDesign, StratifiedClusterDesign, holdout_design
    from .errors import DesignError, InputError
    from .graph import require_columns, require_no_nulls

    what = f"units table '{args.units}'"
    require_columns(units, ["unit_id"], what)
    require_no_nulls(units, ["unit_id"], what)
    ids = pd.Index(units["unit_id"])
    if ids.has_duplicates:
        dup = ids[ids.duplicated()][0]
        raise InputError(f"{what}: unit_id {dup!r} appears more than once; one row per unit.")
    weights = _float_list(args.arm_weights)
    if args.design == "individual":
        return IndividualDesign(ids, args.treat_fraction, arm_weights=weights)
    if args.cluster_col not in units.columns:
        raise InputError(
            f"{what}: no cluster column '{args.cluster_col}' for the {args.design} design; it has "
            f"{list(units.columns)}. Run `spillover cluster` first or pass --cluster-col."
        )
    require_no_nulls(units, [args.cluster_col], what)
    clusters = units[args.cluster_col].to_numpy()
    if args.design == "cluster":
        return ClusterDesign(clusters, ids, treat_fraction=args.treat_fraction, arm_weights=weights)
    if args.design == "holdout":
        return holdout_design(clusters, ids, args.holdout_fraction)
    if args.design == "stratified-cluster":
        if not 0.0 < args.sample_fraction <= 1.0:
            raise DesignError(f"--sample-fraction {args.sample_fraction} must be in (0, 1].")
        strata = _names(args.strata_by) or ["size"]
        require_columns(units, [c for c in strata if c != "size"], what)
        stratify = {c: None if c == "size" else units[c].to_numpy(dtype=float) for c in strata}
        return StratifiedClusterDesign.from_units(
            clusters, ids, stratify, n_bins=args.n_bins, sample_fraction=args.sample_fraction,
            arm_weights=weights or (0.5, 0.5),
        )
    raise InputError(f"unknown design {args.design!r}.")


def _assign_with_engine(args: argparse.Namespace, engine):
    """Keyed-hash assignment where the units live; the same arms as in memory."""
    from .design import Assignment, _weights, sampled_arm_weights
    from .errors import DesignError

    if not args.salt or args.seed is not None:
        raise DesignError(f"--engine {args.engine} assigns by keyed hash: pass --salt (and no --seed).")
    key = "unit_id" if args.design == "individual" else args.cluster_col
    if args.design == "stratified-cluster":
        if not 0.0 < args.sample_fraction <= 1.0:
            raise DesignError(f"--sample-fraction {args.sample_fraction} must be in (0, 1].")
        weights, arms = sampled_arm_weights(args.sample_fraction, _float_list(args.arm_weights) or (0.5, 0.5))
    elif args.design == "holdout":
        weights, arms = [args.holdout_fraction, 1 - args.holdout_fraction], [0, 1]
    else:
        weights, arms = _weights(args.treat_fraction, _float_list(args.arm_weights)), None
    frame = engine.hash_assign(args.units, salt=args.salt, weights=list(weights),
                               arms=None if arms is None else list(arms), key=key)
    clusters = frame[key].to_numpy() if key != "unit_id" else None
    codes, ids = (pd.factorize(clusters, sort=True) if clusters is not None else (None, None))
    return Assignment(pd.Index(frame["unit_id"]), frame["arm"].to_numpy().astype(np.int8), args.design, None,
                      args.salt, codes, None if ids is None else pd.Index(ids), {"engine": engine.name})


def cmd_assign(args: argparse.Namespace) -> int:
    from .graph import read_table
    from .ledger import Ledger, record_assignment

    from .errors import DesignError

    if (args.seed is None) == (args.salt is None):
        raise DesignError("assign needs exactly one of --seed (a seeded permutation, exact counts) or --salt (a keyed "
                          "hash, stable as units come and go): an assignment must be reproducible.")
    engine = _engine(args)
    if engine is not None:
        assignment = _assign_with_engine(args, engine)
    else:
        units = read_table(args.units, what=f"units table '{args.units}'")
        design = build_design(args, units)
        assignment = design.assign(args.seed, salt=args.salt) if args.seed is None else design.assign(args.seed)
    if args.out:  # the output first: a bad output path must not leave a recorded experiment behind
        write_table(assignment.to_frame(), args.out)
        stderr.print(f"[dim]wrote {escape(str(args.out))}[/dim]")
    if args.ledger:
        with Ledger(args.ledger) as ledger:
            record_assignment(ledger, assignment, args.experiment or args.salt or args.design, args.date)
    summary = assignment.summary()
    if args.json:
        print_json(summary)
    else:
        arms = summary.pop("arms")
        summary.update({f"arm {k}": v for k, v in arms.items()})
        print_summary(summary, title=f"assignment: {args.design}")
    return 0


def cmd_evolve(args: argparse.Namespace) -> int:
    from .errors import DesignError
    from .evolve import evolve, start
    from .ledger import Ledger

    with Ledger(args.ledger) as ledger:
        known = ledger.experiments()["experiment"].tolist()
        name = args.experiment or args.salt or (known[0] if len(known) == 1 else None)
        if name is None or name not in known:
            if not args.design:
                raise DesignError(
                    "the first snapshot of an experiment needs the design flags of `assign` "
                    "(--design, --salt, --sample-fraction, --strata-by, ...)."
                )
            with progress("first snapshot: components and assignment", args.json):
                report = start(
                    ledger, args.snapshot, args.date, salt=name or args.design, design=args.design,
                    treat_fraction=args.treat_fraction, sample_fraction=args.sample_fraction,
                    holdout_fraction=args.holdout_fraction, arm_weights=_float_list(args.arm_weights) or (0.5, 0.5),
                    strata_by=_names(args.strata_by) or ["size"], n_bins=args.n_bins, seed=args.seed,
                )
        else:
            with progress(f"applying snapshot of {args.date}", args.json):
                report = evolve(ledger, args.snapshot, args.date, experiment=name, merge_policy=args.merge_policy)
    if args.json:
        print_json(report.summary())
    else:
        print_summary(report.summary(), title=f"evolve: {name or args.design} on {args.date}")
    return 0


def _load_edges(args: argparse.Namespace, path: str):
    return load_graph(path, args.source, args.target, bipartite=args.bipartite, directed=args.directed)


def cmd_exposure(args: argparse.Namespace) -> int:
    from .exposure import exposure
    from .graph import read_table

    engine = _engine(args)
    if engine is not None:
        _engine_only(args, "one-hop exposure", args.hops == 1)
        with progress(f"exposure ({args.mapping}, {engine.name})", args.json):
            table = engine.exposure(args.edges, args.assignment, args.mapping, source=args.source, target=args.target,
                                    bipartite=args.bipartite, threshold_q=args.threshold)
    else:
        with progress(f"loading {args.edges}", args.json):
            graph = _load_edges(args, args.edges)
        assignment = read_table(args.assignment, what=f"assignment '{args.assignment}'")
        with progress(f"exposure ({args.mapping})", args.json):
            table = exposure(graph, assignment, args.mapping, threshold_q=args.threshold, hops=args.hops)
    if args.out:
        write_table(table.assign(condition=table["condition"].astype(str)), args.out)
        stderr.print(f"[dim]wrote {args.out}[/dim]")
    counts = table["condition"].value_counts(sort=False)
    summary = {"mapping": args.mapping, "n_units": len(table),
               "conditions": {str(k): int(v) for k, v in counts.items()},
               "mean_treated_fraction": float(table["treated_fraction"].mean())}
    if args.json:
        print_json(summary)
    else:
        print_table(pd.DataFrame({"condition": counts.index.astype(str), "units": counts.to_numpy()}),
                    title=f"exposure: {args.mapping} ({len(table):,} units)")
    return 0


def _probabilities(args: argparse.Namespace, clusters: pd.DataFrame | None, exposure_table: pd.DataFrame):
    """Exposure probabilities for ht/hajek: from --draws, or from --design with its
    parameters read from the assignment (the exposure table's arms, or --assignment)."""
    from .design import design_from_assignment
    from .errors import InputError
    from .exposure import probabilities
    from .graph import BipartiteGraph, read_table

    if not args.edges:
        raise InputError(f"{args.method} needs the graph (--edges) and the mapping (--mapping) to compute "
                         "exposure probabilities.")
    graph = _load_edges(args, args.edges)
    randomized = graph.treated if isinstance(graph, BipartiteGraph) else graph.nodes
    labels = None
    if clusters is not None:
        labels = clusters.drop_duplicates("unit_id").set_index("unit_id")["cluster_id"]
    common = dict(threshold_q=args.threshold, hops=args.hops, correction=args.prob_correction,
                  joint=args.joint, method=args.prob_method, control=args.control)
    if args.draws:
        draws = read_table(args.draws, what=f"draws '{args.draws}'")
        blocks = None if labels is None else labels.reindex(randomized).to_numpy()
        if blocks is not None and pd.isna(blocks).any():
            raise InputError(f"clusters: {int(pd.isna(blocks).sum())} randomized unit(s) have no cluster.")
        with progress("exposure probabilities (given draws)", args.json):
            return probabilities(graph, args.mapping, draws=draws, clusters=blocks, **common)
    if not args.design:
        raise InputError(f"{args.method} needs the design's draws (--draws) or the design (--design individual|cluster).")
    if args.assignment:
        assigned = read_table(args.assignment, what=f"assignment '{args.assignment}'")
    elif isinstance(graph, BipartiteGraph):
        raise InputError("--design on a bipartite graph needs --assignment (the treated side's unit_id, arm).")
    else:
        assigned = exposure_table
    if not {"unit_id", "arm"} <= set(assigned.columns):
        raise InputError(f"--design reads the arms from a table with unit_id and arm; it has {list(assigned.columns)}.")
    arms = assigned.drop_duplicates("unit_id").set_index("unit_id")["arm"].reindex(randomized)
    design = design_from_assignment(args.design, arms, clusters=labels, complete=not args.bernoulli,
                                    treat_fraction=args.treat_fraction)
    with progress(f"exposure probabilities ({args.design} design)", args.json):
        return probabilities(graph, args.mapping, design=design, n_draws=args.n_draws, seed=args.seed, **common)


def _estimate_with_engine(args: argparse.Namespace, engine):
    """Sufficient statistics where the data lives, the estimate on the driver."""
    from .estimate import estimate_from_stats

    _engine_only(args, "difference-in-means, cluster-means and ols-cluster (no covariates)",
                 args.method in ("difference-in-means", "cluster-means", "ols-cluster") and not args.covariates)
    clusters = args.clusters if args.method != "difference-in-means" else None
    if args.method != "difference-in-means" and not clusters:
        from .errors import InputError
        raise InputError(f"{args.method} needs clusters (--clusters).")
    with progress(f"sufficient statistics ({engine.name})", args.json):
        stats = engine.cluster_stats(args.outcomes, args.exposure, clusters, outcome_col=args.outcome_col)
    present = set(stats["condition"].astype(str))
    control = args.control or next((c for c in ("no", "control") if c in present), None)
    return estimate_from_stats(stats, args.method, control, alpha=args.alpha, vcov=args.vcov,
                               bootstrap=args.wild_bootstrap, bootstrap_weights=args.bootstrap_weights, seed=args.seed)


def cmd_estimate(args: argparse.Namespace) -> int:
    from .estimate import estimate
    from .graph import read_table

    engine = _engine(args)
    if engine is not None:
        return _print_effects(args, _estimate_with_engine(args, engine))
    outcomes = read_table(args.outcomes, what=f"outcomes '{args.outcomes}'")
    exposure_table = read_table(args.exposure, what=f"exposure '{args.exposure}'")
    clusters = read_table(args.clusters, what=f"clusters '{args.clusters}'") if args.clusters else None
    if clusters is not None:
        from .graph import require_columns

        require_columns(clusters, ["unit_id", "cluster_id"], f"clusters '{args.clusters}'")
        clusters = clusters[["unit_id", "cluster_id"]]
    probs = _probabilities(args, clusters, exposure_table) if args.method in ("ht", "hajek") else None
    graph = None
    if args.method == "ols-network":
        if not args.edges:
            from .errors import InputError
            raise InputError("ols-network needs the graph (--edges) and the randomization clusters (--clusters).")
        graph = _load_edges(args, args.edges)
    effects = estimate(
        outcomes, exposure_table, args.method, probabilities=probs,
        clusters=clusters if args.method in ("cluster-means", "ols-cluster", "ols-network") else None,
        control=args.control,
        mapping=get_mapping(args.mapping, threshold_q=args.threshold, hops=args.hops)
        if args.method in ("ht", "hajek", "ols-network") else None,
        outcome_col=args.outcome_col, covariates=_names(args.covariates),
        missing=args.missing, alpha=args.alpha, vcov=args.vcov, graph=graph, bandwidth=args.bandwidth,
        bootstrap=args.wild_bootstrap, bootstrap_weights=args.bootstrap_weights, seed=args.seed,
        min_probability=args.min_probability,
    )
    return _print_effects(args, effects)


def _print_effects(args: argparse.Namespace, effects) -> int:
    frame = effects.to_frame()
    if args.json:
        print_json({"control": effects.control, "alpha": effects.alpha, "notes": list(effects.notes),
                    "effects": frame.to_dict(orient="records")})
    else:
        method = frame["method"].iloc[0] if len(frame) else args.method
        print_table(frame.drop(columns="method").rename(columns={"ci_low": f"ci_low ({effects.level})",
                                                                 "ci_high": f"ci_high ({effects.level})"}),
                    title=f"effects against '{effects.control}' ({method})")
        for note in effects.notes:
            stderr.print(f"[dim]note: {escape(note)}[/dim]", highlight=False)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from . import report, synth
    from .graph import CollaborationNetwork
    from .simulate import DESIGNS, OutcomeModel, Study, compare_designs
    from .errors import InputError

    designs = _names(args.designs)
    unknown = [d for d in designs if d not in DESIGNS]
    if unknown or not designs:
        raise InputError(f"unknown design(s) {unknown or designs}; choose from {list(DESIGNS)}.")
    with progress("preparing the network", args.json):
        if args.memberships:
            network = CollaborationNetwork.from_memberships(args.memberships)
        else:
            network = synth.collaboration_network(args.users, seed=args.seed)
        study = Study.from_network(network)
    model = OutcomeModel(tau=args.tau, gamma=args.gamma)
    from rich.progress import Progress

    total = args.n_sims * len(designs)
    with Progress(console=stderr, transient=True, disable=args.json or not stderr.is_terminal) as bar:
        task = bar.add_task(f"{len(designs)} designs x {args.n_sims} experiments", total=total)
        comparison = compare_designs(study, designs, model, n_sims=args.n_sims, seed=args.seed, vcov=args.vcov,
                                     progress=lambda k: bar.advance(task, k))
    table = comparison.to_frame()
    if args.out:
        out = Path(args.out)
        write_table(table, out / "design_comparison.csv")
        report.write_report(out / "report.html", "spillover simulate",
                            f"{study.n_users:,} users; tau = {args.tau:g}, gamma = {args.gamma:g}; "
                            f"true effect (GATE) {comparison.true_effect:.4f}.",
                            [report.Section("Design comparison", "", [("Per design", table)],
                                            [("Sorted 95% intervals", report.plot_sorted_intervals(comparison)),
                                             ("Estimates per design", report.plot_effect_distributions(comparison))])])
        stderr.print(f"[dim]wrote {out}/report.html and design_comparison.csv[/dim]")
    if args.json:
        print_json(comparison.to_json())
    else:
        print_table(table, title=f"design comparison (true effect {comparison.true_effect:.4f})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(out=Path(args.out), seed=args.seed, console=stdout)
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spillover",
        description="Design and analyse randomized experiments on networks.",
    )
    parser.add_argument("--version", action="version", version=f"spillover {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run the whole pipeline on built-in synthetic data")
    demo.add_argument("--out", default="demo-out", help="folder for report.html and tables")
    demo.add_argument("--seed", type=SEED, default=0)
    demo.set_defaults(func=cmd_demo)

    clus = commands.add_parser("cluster", help="cluster a graph into randomization units")
    clus.add_argument("edges", help="edge list (.csv or .parquet)")
    clus.add_argument("--method", required=True, choices=METHODS)
    clus.add_argument("--resolution", type=_number(float, 0, open_low=True), default=1.0, help="louvain/leiden/greedy-modularity")
    clus.add_argument("--n-parts", type=_number(int, 2), default=None, help="metis: number of parts")
    clus.add_argument("--seed", type=SEED, default=None)
    clus.add_argument("--out", help="write unit_id, cluster_id here (.csv or .parquet)")
    clus.add_argument("--cut-threshold", type=_number(float, 0, 1), default=0.10)
    _add_edge_flags(clus)
    clus.add_argument(
        "--memberships",
        action="store_true",
        help="EDGES is a collaboration table (user_id, project_id, account_id)",
    )
    clus.add_argument("--json", action="store_true", help="print one JSON object")
    _add_engine_flags(clus)
    clus.set_defaults(func=cmd_cluster)

    assign = commands.add_parser("assign", help="randomize units into arms")
    assign.add_argument("--units", required=True, help="table with unit_id (+ cluster and strata columns)")
    assign.add_argument("--design", required=True, choices=["individual", "cluster", "stratified-cluster", "holdout"])
    _add_design_flags(assign)
    assign.add_argument("--ledger", help="record the assignment in this ledger (DuckDB file)")
    assign.add_argument("--date", default=str(dt.date.today()), help="date recorded in the ledger")
    assign.add_argument("--out", help="write unit_id, cluster_id, arm here")
    assign.add_argument("--json", action="store_true")
    _add_engine_flags(assign)
    assign.set_defaults(func=cmd_assign)

    expo = commands.add_parser("exposure", help="each unit's exposure from the assignment and the graph")
    expo.add_argument("edges", help="edge list (.csv or .parquet)")
    expo.add_argument("--assignment", required=True, help="table with unit_id, arm")
    _add_mapping_flags(expo, required=True)
    _add_edge_flags(expo)
    expo.add_argument("--out", help="write the exposure table here")
    expo.add_argument("--json", action="store_true")
    _add_engine_flags(expo)
    expo.set_defaults(func=cmd_exposure)

    est = commands.add_parser("estimate", help="direct, indirect and total effects with standard errors")
    est.add_argument("--outcomes", required=True, help="table with unit_id and the outcome column")
    est.add_argument("--exposure", required=True, help="table written by `spillover exposure`")
    est.add_argument("--method", required=True, choices=list(ESTIMATE_METHODS),
                     help="ols-network: OLS with errors robust to dependence through the graph (needs --edges and "
                          "--clusters); ht/hajek: design-based (need --draws or --design)")
    est.add_argument("--clusters", help="table with unit_id, cluster_id")
    est.add_argument("--draws", help="ht/hajek: the design's draws, one row per draw, one column per unit id")
    est.add_argument("--design", choices=["individual", "cluster"],
                     help="ht/hajek: the design that made the assignment; its treated share (and clusters) are read "
                          "from the assignment")
    est.add_argument("--assignment", help="ht/hajek with --design: table with unit_id, arm of the randomized units "
                                          "(default: the exposure table's arm column)")
    est.add_argument("--n-draws", type=COUNT, default=1_000,
                     help="Monte Carlo draws where probabilities have no exact form (default: %(default)s)")
    est.add_argument("--treat-fraction", type=SHARE, default=None,
                     help="the design's treated share, checked against the assignment (default: read from it)")
    est.add_argument("--bernoulli", action="store_true",
                     help="the design drew units (clusters) independently, not an exact count")
    est.add_argument("--seed", type=SEED, default=0, help="seed of the Monte Carlo draws (default: %(default)s)")
    est.add_argument("--prob-correction", choices=["none", "add-one"], default="none",
                     help="add-one: Monte Carlo probabilities as (count+1)/(R+1), the reference package's "
                          "convention (default: %(default)s)")
    est.add_argument("--prob-method", choices=list(PROBABILITY_METHODS), default="auto",
                     help="exposure probabilities: exact where the design and mapping allow, else Monte Carlo "
                          "(default: %(default)s)")
    est.add_argument("--joint", choices=["dependent", "all"], default="dependent",
                     help="joint probabilities for pairs sharing a randomization unit, or for all pairs (the "
                          "reference package's convention) (default: %(default)s)")
    est.add_argument("--vcov", choices=list(VCOV_TYPES), default=DEFAULT_VCOV,
                     help="cluster-robust variance of ols-cluster and cluster-means: CR2 with Bell-McCaffrey df "
                          "(reliable with few or unequal clusters), CR1 as statsmodels, or CR0 "
                          "(default: %(default)s)")
    est.add_argument("--edges", help="ht/hajek: the graph, to map every draw to exposures")
    _add_mapping_flags(est, required=False)
    _add_edge_flags(est)
    est.add_argument("--outcome-col", default="y")
    est.add_argument("--covariates", help="comma-separated outcome-table columns (ols-cluster)")
    est.add_argument("--control", help="control condition (default: the mapping's)")
    est.add_argument("--wild-bootstrap", type=_bootstrap_draws, default="auto", metavar="B|auto|off",
                     help="ols-cluster: p-values and intervals from the restricted wild cluster bootstrap with B "
                          "draws (all sign patterns when 2^G <= B); auto: 1,999 draws below 30 clusters, where "
                          "t intervals under-cover (default: %(default)s)")
    est.add_argument("--bootstrap-weights", choices=["rademacher", "webb"], default="rademacher",
                     help="wild bootstrap weights; webb for fewer than about 12 clusters (default: %(default)s)")
    est.add_argument("--min-probability", type=_number(float, 0, 1, open_high=True), default=0.0,
                     help="ht/hajek: analyse only units whose probabilities of both compared conditions reach this "
                          "(e.g. 0.01; the estimand is then that population's) (default: %(default)s)")
    est.add_argument("--bandwidth", type=_number(int, 0), default=2,
                     help="ols-network: units within this many hops are treated as dependent (default: %(default)s)")
    est.add_argument("--missing", choices=["drop", "error"], default="drop")
    est.add_argument("--alpha", type=SHARE, default=0.05)
    est.add_argument("--json", action="store_true")
    _add_engine_flags(est)
    est.set_defaults(func=cmd_estimate)

    simulate = commands.add_parser("simulate", help="compare designs on simulated experiments")
    source = simulate.add_mutually_exclusive_group()
    source.add_argument("--network", choices=["synthetic-collaboration"], default="synthetic-collaboration")
    source.add_argument("--memberships", help="user_id, project_id, account_id[, usage] table")
    simulate.add_argument("--users", type=_number(int, 100), default=100_000, help="size of the synthetic network")
    simulate.add_argument("--designs", default="project,component,stratified-component")
    simulate.add_argument("--tau", type=FINITE, default=1 / 8)
    simulate.add_argument("--gamma", type=FINITE, default=2**-4)
    simulate.add_argument("--n-sims", type=_number(int, 2), default=1_000)
    simulate.add_argument("--seed", type=SEED, default=0)
    simulate.add_argument("--vcov", choices=list(VCOV_TYPES), default=DEFAULT_VCOV,
                          help="cluster-robust variance of each simulated analysis, as in `estimate --vcov` "
                               "(default: %(default)s)")
    simulate.add_argument("--out", help="folder for report.html and design_comparison.csv")
    simulate.add_argument("--json", action="store_true")
    simulate.set_defaults(func=cmd_simulate)

    evolve = commands.add_parser("evolve", help="apply one day's graph snapshot to the ledger")
    evolve.add_argument("--ledger", required=True)
    evolve.add_argument("--snapshot", required=True, help="memberships: user_id, project_id, account_id[, usage]")
    evolve.add_argument("--date", required=True, help="YYYY-MM-DD")
    evolve.add_argument("--design", choices=["cluster", "stratified-cluster", "holdout"],
                        help="first snapshot only")
    evolve.add_argument("--merge-policy", choices=["majority", "exclude"], default="majority")
    _add_design_flags(evolve)
    evolve.add_argument("--json", action="store_true")
    evolve.set_defaults(func=cmd_evolve)
    return parser


def _number(kind: type, low: float | None = None, high: float | None = None, *, open_low: bool = False,
            open_high: bool = False):
    """An argparse type: an int or finite float within bounds, or a one-line error."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        too_low = low is not None and (value < low or (open_low and value == low))
        too_high = high is not None and (value > high or (open_high and value == high))
        if too_low or too_high:
            left = "(" if open_low else "["
            right = ")" if open_high else "]"
            lower = "-inf" if low is None else f"{low:g}"
            upper = "inf" if high is None else f"{high:g}"
            span = f"{left}{lower}, {upper}{right}"
            raise argparse.ArgumentTypeError(f"{text} is outside {span}")
        return value
    return parse


SEED = _number(int, 0)
COUNT = _number(int, 1)
SHARE = _number(float, 0, 1, open_low=True, open_high=True)
FINITE = _number(float)


def _bootstrap_draws(text: str) -> int | str | None:
    if text in ("auto", "off"):
        return None if text == "off" else text
    try:
        draws = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of draws, 'auto' or 'off'") from None
    if draws < 1:
        raise argparse.ArgumentTypeError(f"{draws}: the bootstrap needs at least one draw")
    return draws


def _add_design_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster-col", default="cluster_id")
    parser.add_argument("--treat-fraction", type=SHARE, default=0.5)
    parser.add_argument("--sample-fraction", type=_number(float, 0, 1, open_low=True), default=0.1, help="stratified-cluster")
    parser.add_argument("--holdout-fraction", type=SHARE, default=0.05, help="holdout")
    parser.add_argument("--arm-weights", help="comma-separated weights of arms 0,1,2,...")
    parser.add_argument("--strata-by", help="comma-separated: size and/or unit columns summed per cluster")
    parser.add_argument("--n-bins", type=COUNT, default=4, help="quantile bins per stratification variable")
    parser.add_argument("--seed", type=SEED, default=None, help="seeded permutation (exact counts)")
    parser.add_argument("--salt", help="keyed-hash assignment (stable as units come and go); names the experiment")
    parser.add_argument("--experiment", help="experiment name in the ledger (default: the salt)")


def _add_engine_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=["memory", "duckdb", "spark"], default="memory",
                        help="where the heavy step runs (results are identical)")
    parser.add_argument("--memory-limit", default=None, help="duckdb: e.g. 2GB; it spills to disk beyond")
    parser.add_argument("--spark-master", default="local[*]", help="spark: the master URL")


def _add_mapping_flags(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--mapping", required=required, default=None if required else "as4",
                        choices=["fraction", "as4", "threshold", "bipartite"])
    parser.add_argument("--threshold", type=_number(float, 0, 1), default=None, help="threshold mapping: q")
    parser.add_argument("--hops", type=int, choices=[1, 2], default=1)


def _add_edge_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default="source", help="edge list column (unit side if bipartite)")
    parser.add_argument("--target", default="target", help="edge list column (treated side if bipartite)")
    parser.add_argument("--directed", action="store_true")
    parser.add_argument("--bipartite", action="store_true")


_INPUT_FLAGS = ("edges", "units", "assignment", "ledger", "outcomes", "exposure", "clusters", "draws", "snapshot",
                "memberships")


def _refuse_overwriting_inputs(args: argparse.Namespace) -> None:
    """``--out`` naming an input (or the ledger) would destroy it: refuse before any work."""
    from .errors import InputError

    out = getattr(args, "out", None)
    if not out:
        return
    target = Path(out).resolve()
    for flag in _INPUT_FLAGS:
        value = getattr(args, flag, None)
        if isinstance(value, str) and value and Path(value).resolve() == target:
            raise InputError(f"--out {out} is also the {flag.replace('_', '-')} input: writing there would destroy "
                             "it; choose another output path.")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or a flag argparse refused (its one-line message is printed)
        return int(exit_.code or 0)
    warnings.showwarning = _show_warning
    try:
        _refuse_overwriting_inputs(args)
        return int(args.func(args) or 0)
    except SpilloverError as error:
        stderr.print(f"[red]error:[/red] {error}", highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
