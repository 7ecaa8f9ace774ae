"""``spillover <stage> ...``: one command per pipeline stage, plus ``spillover demo``.

The flags, output columns and ``--json`` keys are a public contract
(``shared/INTERFACE.md``). Tables go to stdout; progress and warnings go to stderr, so
``--json`` output is one JSON object on stdout and nothing else.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from rich.markup import escape

from . import __version__
from .cluster import METHODS, cluster
from .console import print_json, print_summary, print_table, progress, show_warning, stderr, stdout
from .design import DESIGN_NAMES, DESIGN_OPTIONS
from .errors import SpilloverError
from .estimate import METHODS as ESTIMATE_METHODS, PROBABILITY_ESTIMATORS
from .evolve import EVOLVE_DESIGNS, MERGE_POLICIES
from .exposure import MAPPINGS, MAX_DEPENDENT_PAIRS, PROBABILITY_METHODS, default_control, get_mapping
from .graph import ID_TYPES, CollaborationNetwork, id_type, load_graph, write_table
from .ledger import LOCK_TIMEOUT
from .simulate import DESIGNS as SIMULATED_DESIGNS
from .variance import DEFAULT_VCOV, VCOV_TYPES

def _engine(args: argparse.Namespace):
    """The engine the flags ask for, or None for the in-memory path."""
    if getattr(args, "engine", "memory") == "memory":
        return None
    from .engines import get_engine

    return get_engine(args.engine, memory_limit=args.memory_limit, master=args.spark_master)


def _poll(engine) -> Callable[[], float] | None:
    """The engine's progress of its running query (DuckDB's), for long steps' progress lines."""
    return getattr(engine, "query_progress", None)


def _engine_only(args: argparse.Namespace, what: str, allowed: bool) -> None:
    from .errors import InputError

    if not allowed:
        raise InputError(f"--engine {args.engine} runs {what}; use --engine memory for the rest.")


# --------------------------------------------------------------------------- commands


def _cluster_with_engine(args: argparse.Namespace, engine) -> int:
    _engine_only(args, "--method components on an edge list", args.method == "components" and not args.memberships
                 and not args.bipartite)
    with progress(f"connected components ({engine.name})", args.json, poll=_poll(engine)):
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
    """``spillover cluster``: cluster a graph into randomization units."""
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
        options = {"resolution": args.resolution, "n_parts": args.n_parts}  # only those given: the method's own
        result = cluster(graph, args.method, seed=args.seed, cut_threshold=args.cut_threshold,
                         **{key: value for key, value in options.items() if value is not None})
    if args.side != "units" and not args.bipartite:
        from .errors import InputError

        raise InputError("--side treated writes the randomized side of a bipartite graph: add --bipartite.")
    if args.out:
        write_table(result.to_frame(args.side), args.out)
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


def design_spec(args: argparse.Namespace) -> dict:
    """The design the ``assign`` / ``evolve`` flags name: only the options given, so the
    design's own defaults apply and an option it does not use is refused."""
    spec = {"design": args.design, "cluster_col": args.cluster_col, "treat_fraction": args.treat_fraction,
            "arm_weights": _float_list(args.arm_weights), "sample_fraction": args.sample_fraction,
            "holdout_fraction": args.holdout_fraction, "strata_by": _names(args.strata_by) or None,
            "n_bins": args.n_bins}
    return {key: value for key, value in spec.items() if value is not None}


def _assign_with_engine(args: argparse.Namespace, engine):
    """Keyed-hash assignment where the units live; the same arms as in memory."""
    from .design import Assignment, check_spec, hash_spec
    from .errors import DesignError

    if not args.salt or args.seed is not None:
        raise DesignError(f"--engine {args.engine} assigns by keyed hash: pass --salt (and no --seed).")
    spec = check_spec(design_spec(args))
    key = spec.get("cluster_col", "unit_id")
    frame = engine.hash_assign(args.units, salt=args.salt, spec=hash_spec(spec), key=key)
    codes, ids = pd.factorize(frame[key].to_numpy(), sort=True) if key != "unit_id" else (None, None)
    return Assignment(pd.Index(frame["unit_id"]), frame["arm"].to_numpy().astype(np.int8), args.design, None,
                      args.salt, codes, None if ids is None else pd.Index(ids), {"engine": engine.name})


def cmd_assign(args: argparse.Namespace) -> int:
    """``spillover assign``: randomize units into arms (and record them in a ledger)."""
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
        from .design import design_from_spec

        units = read_table(args.units, what=f"units table '{args.units}'")
        design = design_from_spec(design_spec(args), units, what=f"units table '{args.units}'")
        assignment = design.assign(args.seed, salt=args.salt) if args.seed is None else design.assign(args.seed)
    if args.out:  # the output first: a bad output path must not leave a recorded experiment behind
        write_table(assignment.to_frame(), args.out)
        stderr.print(f"[dim]wrote {escape(str(args.out))}[/dim]")
    if args.ledger:
        with Ledger(args.ledger, lock_timeout=args.lock_timeout) as ledger:
            record_assignment(ledger, assignment, args.experiment or args.salt or args.design,
                              args.date or dt.date.today(), allow_future=args.allow_future)
    summary = assignment.summary()
    if args.json:
        print_json(summary)
    else:
        arms = summary.pop("arms")
        summary.update({f"arm {k}": v for k, v in arms.items()})
        print_summary(summary, title=f"assignment: {args.design}")
    return 0


def cmd_evolve(args: argparse.Namespace) -> int:
    """``spillover evolve``: apply one day's snapshot to the ledger (the first day starts the experiment)."""
    from .design import check_spec
    from .errors import DesignError
    from .evolve import evolve, start
    from .ledger import Ledger

    with progress(f"loading {args.snapshot}", args.json):  # a bad snapshot must not leave a ledger behind
        snapshot = CollaborationNetwork.from_memberships(args.snapshot)
    with Ledger(args.ledger, lock_timeout=args.lock_timeout) as ledger:
        known = ledger.experiments()["experiment"].tolist()
        name = args.experiment or args.salt or (known[0] if len(known) == 1 else None)
        if name is None or name not in known:
            if not args.design:
                raise DesignError(
                    "the first snapshot of an experiment needs the design flags of `assign` "
                    "(--design, --salt, --sample-fraction, --strata-by, ...)."
                )
            spec = check_spec(design_spec(args))  # components are the clusters: no cluster column
            options = {key: value for key, value in spec.items() if key not in ("design", "cluster_col")}
            with progress("first snapshot: components and assignment", args.json):
                report = start(ledger, snapshot, args.date, salt=name or args.design, design=args.design,
                               seed=args.seed, allow_future=args.allow_future, **options)
        else:
            _refuse_other_design(args, ledger.experiment(name))
            with progress(f"applying snapshot of {args.date}", args.json):
                report = evolve(ledger, snapshot, args.date, experiment=name, merge_policy=args.merge_policy,
                                replace=args.replace, allow_future=args.allow_future)
    if args.json:
        print_json(report.summary())
    else:
        print_summary(report.summary(), title=f"evolve: {name or args.design} on {args.date}")
    return 0


def _refuse_other_design(args: argparse.Namespace, record: dict) -> None:
    """Design flags given for a running experiment must be the ones it was started with:
    the ledger's design is the truth, and a flag that disagrees would be silently ignored."""
    from .errors import DesignError

    given = design_spec(args)
    given.pop("cluster_col", None)
    if args.seed is not None:
        given["seed"] = args.seed
    stored = dict(record["params"], design=record["design"])
    for key, value in given.items():
        if key in stored and _same(value, stored[key]):
            continue
        flag = "--" + key.replace("_", "-")
        raise DesignError(f"experiment {record['experiment']!r} was started with {flag} {stored.get(key, 'unset')}, "
                          f"not {value}; a running experiment keeps its design: drop {flag}, or start a new "
                          "experiment (--experiment NAME).")


def _same(given, stored) -> bool:
    if isinstance(given, (list, tuple)) or isinstance(stored, (list, tuple)):
        return isinstance(stored, (list, tuple)) and len(given) == len(stored) and all(
            _same(a, b) for a, b in zip(given, stored))
    if isinstance(given, (int, float)) and isinstance(stored, (int, float)):
        return math.isclose(given, stored, rel_tol=1e-12, abs_tol=1e-12)
    return given == stored


def cmd_ledger(args: argparse.Namespace) -> int:
    """``spillover ledger``: read what a ledger recorded (show, history, export) or void a day."""
    import json

    from .errors import InputError
    from .ledger import Ledger

    if not Path(args.ledger).exists():
        raise InputError(f"ledger '{args.ledger}' does not exist.")
    with Ledger(args.ledger, lock_timeout=args.lock_timeout) as ledger:
        name = args.experiment or ledger.only_experiment()
        record = ledger.experiment(name)
        if args.action == "void":
            if not args.date or not args.reason:
                raise InputError("ledger void needs --date (the first day to void) and --reason (kept in the audit).")
            n_days = ledger.void(name, args.date, reason=args.reason)
            summary = {"experiment": name, "voided_from": args.date, "days_voided": n_days,
                       "last_date": str(ledger.last_date(name))}
            print_json(summary) if args.json else print_summary(summary, title=f"ledger void: {name}")
            return 0
        if args.action == "export":
            if not args.out:
                raise InputError("ledger export needs --out (a .csv or .parquet path).")
            path = ledger.export(name, args.out, table=args.table)
            summary = {"experiment": name, "table": args.table, "out": str(path)}
            print_json(summary) if args.json else print_summary(summary, title=f"ledger export: {name}")
            return 0
        if args.action == "history":
            frame = ledger.history(name)
            if args.unit is not None:
                frame = frame[frame["unit_id"].astype(str) == args.unit].reset_index(drop=True)
                if frame.empty:
                    raise InputError(f"unit {args.unit!r} is not in experiment {name!r}.")
            title = f"arm history: {name}" + (f", unit {args.unit}" if args.unit is not None else "")
        else:  # show
            frame = ledger.days(name)
            frame["checksum"] = frame["checksum"].str[:12]
            title = (f"{name}: {record['design']}, salt {record['salt']}, "
                     f"started {str(record['created'])[:19]}")
        frame = _dates_as_text(frame)
        if args.json:
            payload = {"experiment": name, "design": record["design"], "params": record["params"],
                       ("days" if args.action == "show" else "history"): json.loads(frame.to_json(orient="records"))}
            if args.action == "show":
                payload["audit"] = json.loads(_dates_as_text(ledger.audit(name)).to_json(orient="records"))
            print_json(payload)
            return 0
        shown = frame.head(args.limit)
        print_table(shown, title=title + ("" if len(frame) <= args.limit else f" (first {args.limit} of "
                                                                                 f"{len(frame):,} rows; --limit)"))
        audit = ledger.audit(name)
        if args.action == "show" and len(audit):
            print_table(_dates_as_text(audit), title="audit")
    return 0


def _dates_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Date columns as ``YYYY-MM-DD`` (times to the second where they have one), for printing and JSON."""
    frame = frame.copy()
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            values = frame[column]
            dated = (values.dropna() == values.dropna().dt.normalize()).all()
            frame[column] = values.dt.strftime("%Y-%m-%d" if dated else "%Y-%m-%d %H:%M:%S").where(values.notna())
    return frame


def _load_edges(args: argparse.Namespace, path: str):
    return load_graph(path, args.source, args.target, bipartite=args.bipartite, directed=args.directed)


def cmd_exposure(args: argparse.Namespace) -> int:
    """``spillover exposure``: each unit's exposure condition."""
    from .exposure import exposure
    from .graph import read_table

    engine = _engine(args)
    if engine is not None:
        _engine_only(args, "one-hop exposure", args.hops == 1)
        with progress(f"exposure ({args.mapping}, {engine.name})", args.json, poll=_poll(engine)):
            table = engine.exposure(args.edges, args.assignment, args.mapping, source=args.source, target=args.target,
                                    bipartite=args.bipartite, threshold_q=args.threshold)
    else:
        with progress(f"loading {args.edges}", args.json):
            graph = _load_edges(args, args.edges)
        assignment = read_table(args.assignment, what=f"assignment '{args.assignment}'")
        with progress(f"exposure ({args.mapping})", args.json):
            table = exposure(graph, assignment, args.mapping, threshold_q=args.threshold, hops=args.hops)
    if args.out:
        write_table(table, args.out)  # the condition stays categorical: a dictionary-encoded string column
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
    from .graph import BipartiteGraph, read_table, with_isolates

    if not args.edges:
        raise InputError(f"{args.method} needs the graph (--edges) and the mapping (--mapping) to compute "
                         "exposure probabilities.")
    graph = _load_edges(args, args.edges)
    if not isinstance(graph, BipartiteGraph) and "unit_id" in exposure_table:  # isolates of the exposure step
        graph = with_isolates(graph, exposure_table["unit_id"], "exposure table")
    randomized = graph.treated if isinstance(graph, BipartiteGraph) else graph.nodes
    labels = None
    if clusters is not None:
        labels = clusters.drop_duplicates("unit_id").set_index("unit_id")["cluster_id"]
    common = dict(threshold_q=args.threshold, hops=args.hops, correction=args.prob_correction,
                  joint=args.joint, method=args.prob_method, control=args.control,
                  max_pairs=args.max_pairs or None)
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
    with progress(f"sufficient statistics ({engine.name})", args.json, poll=_poll(engine)):
        stats = engine.cluster_stats(args.outcomes, args.exposure, clusters, outcome_col=args.outcome_col)
    control = args.control or default_control(stats["condition"].astype(str).unique())
    return estimate_from_stats(stats, args.method, control, alpha=args.alpha, vcov=args.vcov,
                               bootstrap=args.wild_bootstrap, bootstrap_weights=args.bootstrap_weights, seed=args.seed)


def cmd_estimate(args: argparse.Namespace) -> int:
    """``spillover estimate``: effects with intervals, in memory or from an engine's sufficient statistics."""
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
    probs = _probabilities(args, clusters, exposure_table) if args.method in PROBABILITY_ESTIMATORS else None
    graph = None
    if args.method in ("ols-network", "regression-adjustment"):
        if not args.edges:
            from .errors import InputError
            raise InputError(f"{args.method} needs the graph (--edges)"
                             f"{' and the randomization clusters (--clusters)' if args.method == 'ols-network' else ''}.")
        graph = _load_edges(args, args.edges)
    effects = estimate(
        outcomes, exposure_table, args.method, probabilities=probs,
        clusters=clusters if args.method in ("cluster-means", "ols-cluster", "ols-network") else None,
        control=args.control,
        mapping=get_mapping(args.mapping, threshold_q=args.threshold, hops=args.hops)
        if args.method in (*PROBABILITY_ESTIMATORS, "ols-network") else None,
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
    from . import report

    folder = Path(out)
    write_table(table, folder / csv_name)
    report.write_report(folder / "report.html", title, lede, [section])
    stderr.print(f"[dim]wrote {folder}/report.html and {csv_name}[/dim]")


def _compare_estimators(args: argparse.Namespace) -> int:
    """``simulate --compare estimators``: the global effect's estimators on one social graph."""
    from . import report, synth
    from .simulate import compare_estimators

    with progress("preparing the graph", args.json):
        graph = load_graph(args.edges, args.source, args.target) if args.edges else \
            synth.social_graph(args.users or 5_000, seed=args.seed)
    n_sims = args.n_sims or 200
    with progress(f"7 estimators x {n_sims} experiments", args.json):
        table = compare_estimators(graph, tau=args.tau, gamma=args.gamma, spillover=args.spillover, n_sims=n_sims,
                                   seed=args.seed)
    truth = float(table["truth"].iloc[0])
    if args.out:
        _write_study(args.out, "estimator_comparison.csv", table, "spillover simulate: estimators of the global effect",
                     f"{graph.n_nodes:,} units; tau = {args.tau:g}, gamma = {args.gamma:g}, {args.spillover} "
                     f"spillover; true global effect {truth:.4f}.",
                     report.Section("Estimator comparison", "", [("Per estimator", table)],
                                    [("Bias and spread per estimator", report.plot_estimator_comparison(table))]))
    if args.json:
        print_json({"true_effect": truth, "estimators": table.drop(columns="truth").to_dict(orient="records")})
    else:
        print_table(table.drop(columns="truth"), title=f"estimators of the global effect (truth {truth:.4f}, "
                                                      f"{args.spillover} spillover)")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """``spillover simulate``: compare designs (or estimators) on simulated experiments."""
    from . import report, synth
    from .graph import CollaborationNetwork
    from .simulate import DESIGNS, OutcomeModel, Study, compare_designs
    from .errors import InputError

    if args.compare == "estimators":
        if args.memberships:
            raise InputError("--compare estimators runs on a social graph: give --edges (or nothing, for a synthetic "
                             "one), not --memberships.")
        return _compare_estimators(args)
    if args.edges:
        raise InputError("--edges is for --compare estimators; designs are compared on a collaboration network "
                         "(--memberships).")
    args.users, args.n_sims = args.users or 100_000, args.n_sims or 1_000
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
        _write_study(args.out, "design_comparison.csv", table, "spillover simulate",
                     f"{study.n_users:,} users; tau = {args.tau:g}, gamma = {args.gamma:g}; "
                     f"true effect (GATE) {comparison.true_effect:.4f}.",
                     report.Section("Design comparison", "", [("Per design", table)],
                                    [("Sorted 95% intervals", report.plot_sorted_intervals(comparison)),
                                     ("Estimates per design", report.plot_effect_distributions(comparison))]))
    if args.json:
        print_json(comparison.to_json())
    else:
        print_table(table, title=f"design comparison (true effect {comparison.true_effect:.4f})")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    """Example inputs: a social graph's edges, daily membership snapshots, or outcomes
    with a known effect for an assignment."""
    from . import synth
    from .graph import read_table
    from .ledger import as_date
    from .simulate import example_outcomes

    if args.kind == "social":
        write_table(synth.edge_table(synth.social_graph(args.users, seed=args.seed)), args.out)
        summary = {"kind": "social", "out": args.out, "n_units": args.users}
    elif args.kind == "memberships":
        start = as_date(args.start)
        days = synth.evolving_memberships(args.users, args.days, seed=args.seed)
        paths = [Path(args.out) / f"memberships-{start + dt.timedelta(days=d)}.parquet" for d in range(len(days))]
        for path, frame in zip(paths, days):
            write_table(frame, path)
        summary = {"kind": "memberships", "out": args.out, "files": [str(p) for p in paths]}
    else:
        if not (args.edges and args.assignment):
            from .errors import InputError
            raise InputError("synth outcomes needs the graph (--edges) and the assignment (--assignment).")
        graph = _load_edges(args, args.edges)
        table, truth = example_outcomes(graph, read_table(args.assignment, what=f"assignment '{args.assignment}'"),
                                        tau=args.tau, gamma=args.gamma, seed=args.seed)
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
    from .graph import read_table
    from .plan import plan

    with progress("loading the graph", args.json):
        graph = CollaborationNetwork.from_memberships(args.memberships) if args.memberships \
            else _load_edges(args, args.edges)
    candidates = None
    if args.clusters:
        units = graph.users if isinstance(graph, CollaborationNetwork) else graph.nodes
        candidates = {"individual": np.arange(len(units))}
        for path in args.clusters:  # a loop over the candidate files
            table = read_table(path, what=f"clusters '{path}'")
            from .graph import require_columns
            require_columns(table, ["unit_id", "cluster_id"], f"clusters '{path}'")
            labels = table.drop_duplicates("unit_id").set_index("unit_id")["cluster_id"].reindex(units)
            if labels.isna().any():
                from .errors import InputError
                raise InputError(f"clusters '{path}': {int(labels.isna().sum())} unit(s) of the graph have no cluster.")
            candidates[Path(path).stem] = labels.to_numpy()
    with progress("planning", args.json):
        result = plan(graph, args.outcomes, clusters=candidates, outcome_col=args.outcome_col, pre_col=args.pre_col,
                      effect=args.effect, spillover=args.spillover, treat_fraction=args.treat_fraction,
                      sample_fraction=args.sample_fraction, alpha=args.alpha, power=args.power, seed=args.seed)
    if args.json:
        print_json(result.to_json())
    else:
        columns = ["design", "n_clusters", "icc", "design_effect", "effective_n", "se", "mde", "interference_bias",
                   "recommended"]
        print_table(result.table[columns], title=f"plan: power {args.power:g} at alpha {args.alpha:g}, assumed "
                                                 f"spillover {args.spillover:g} (recommended: {result.recommended})")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    """``spillover init``: write a commented experiment file (and, with --example, 30 days of data)."""
    from .errors import InputError
    from .experiment import EXAMPLE, write_example_data

    path = Path(args.path)
    if path.exists() and not args.force:
        raise InputError(f"{path} exists; pass --force to overwrite it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    with progress(f"writing {path}", args.json):
        path.write_text(EXAMPLE, encoding="utf-8")
    written = {"experiment_file": str(path)}
    if args.example:
        with progress(f"example data: {args.days} days of {args.users:,} users with churn, and outcomes", args.json):
            written.update(write_example_data(path, n_users=args.users, n_days=args.days, seed=args.seed))
    if args.json:
        print_json(written)
    else:
        print_summary(written, title="init")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """``spillover validate``: check the experiment file, and against the data."""
    from .experiment import load_config, validate

    config = load_config(args.experiment)
    checked = validate(config, args.date)
    if args.json:
        print_json({"valid": True, "checked": checked})
    else:
        print_summary({"valid": "yes", **{f"check {i + 1}": text for i, text in enumerate(checked)}},
                      title=f"validate: {config.name}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """``spillover run``: one day of the daily job."""
    from .errors import InputError
    from .experiment import load_config, run, snapshot_dates

    config = load_config(args.experiment)
    say = None if args.json else (lambda message: stderr.print(f"[dim]{message}[/dim]"))
    dates = [args.date] if args.date else snapshot_dates(config)
    if not dates:
        raise InputError(f"{args.experiment}: [inputs.memberships] no snapshot found; nothing to run.")
    for date in dates:  # a loop over days, in order: each is one transaction in the ledger
        if say:
            say(f"--- {date}")
        day = run(config, date, progress=say)
    if args.json:
        print_json(day)
    else:
        summary = {"date": day["date"], **{f"arm {k} units": v for k, v in day["units_per_arm"].items()},
                   **{k: day["ledger"][k] for k in ("created", "split", "merged", "removed", "users_switched")}}
        if day["effects"]:
            effect = day["effects"][0]
            summary.update({"estimate": effect["estimate"], "ci_low": effect["ci_low"], "ci_high": effect["ci_high"]})
        print_summary(summary, title=f"run: {config.name} on {day['date']}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """``spillover report``: one HTML page over all days so far."""
    from .experiment import load_config, report

    config = load_config(args.experiment)
    path = report(config, args.out)
    if args.json:
        print_json({"report": str(path)})
    else:
        stderr.print(f"[dim]wrote {escape(str(path))}[/dim]")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """``spillover demo``: the whole pipeline on built-in data."""
    from .demo import run_demo

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        from .errors import InputError
        raise InputError(f"--out {out} is a file; the demo writes a folder (report.html and its tables).")
    tables = run_demo(out=out, seed=args.seed, console=stderr if args.json else stdout)
    if args.json:  # where everything went, and the design the study recommends
        print_json({"out": str(out), "report": str(out / "report.html"),
                    "tables": {name: str(out / f"{name}.csv") for name in tables},
                    "recommended_design": tables["recommendation"]["design"].iloc[0]})
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The ``spillover`` argument parser: every command, option and default."""
    parser = OneLineParser(
        prog="spillover", formatter_class=HelpFormatter,
        description="Design and analyse randomized experiments on networks, where SUTVA fails.",
    )
    parser.add_argument("--version", action="version", version=f"spillover {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".",
                                  formatter_class=HelpFormatter)
        if name in _READS_TABLES:
            sub.add_argument("--id-type", choices=ID_TYPES, default="auto",
                             help="how id columns are typed: auto reads CSV ids as text and makes them integers only "
                                  "when every id is a canonical integer (so 007 and 7 stay two ids); str or int force "
                                  "one type in every input")
        return sub

    demo = command("demo", "run the whole pipeline on built-in synthetic data and write an HTML report")
    demo.add_argument("--out", default="demo-out", help="folder for report.html and its tables")
    demo.add_argument("--seed", type=SEED, default=0, help="seed of the synthetic data and every random step")
    demo.add_argument("--json", action="store_true", help="print one JSON object: the files written and the headline "
                                                          "numbers")
    demo.set_defaults(func=cmd_demo)

    synth = command("synth", "write example inputs: a social graph's edges, daily membership snapshots, or "
                             "outcomes with a known effect for an assignment")
    synth.add_argument("kind", choices=["social", "memberships", "outcomes"], help="what to write")
    synth.add_argument("--out", required=True, help="social, outcomes: the table to write; memberships: a folder "
                                                    "for memberships-YYYY-MM-DD.parquet")
    synth.add_argument("--users", type=_number(int, 10), default=5_000, help="social, memberships: number of users")
    synth.add_argument("--days", type=COUNT, default=2, help="memberships: daily snapshots, with churn between them")
    synth.add_argument("--start", default="2026-11-23", help="memberships: the first snapshot's date")
    synth.add_argument("--edges", help="outcomes: the graph's edge list (default: none)")
    synth.add_argument("--assignment", help="outcomes: table with unit_id, arm (default: none)")
    synth.add_argument("--tau", type=FINITE, default=0.2, help="outcomes: the direct effect of treatment")
    synth.add_argument("--gamma", type=FINITE, default=0.5,
                       help="outcomes: spillover; y rises by gamma * tau times the treated share of neighbours")
    synth.add_argument("--seed", type=SEED, default=0, help="seed of the synthetic data")
    _add_edge_flags(synth)
    synth.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    synth.set_defaults(func=cmd_synth)

    init = command("init", "write a commented experiment file to start from")
    init.add_argument("path", nargs="?", default="experiment.toml", help="where to write it")
    init.add_argument("--example", action="store_true",
                      help="also write example data beside it: daily membership snapshots with churn and outcomes "
                           "with a known effect")
    init.add_argument("--days", type=COUNT, default=30, help="--example: number of daily snapshots")
    init.add_argument("--users", type=_number(int, 100), default=5_000, help="--example: users on day one")
    init.add_argument("--seed", type=SEED, default=0, help="--example: seed of the data")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    init.set_defaults(func=cmd_init)

    validate = command("validate", "check an experiment file, and check it against the data")
    validate.add_argument("experiment", help="the experiment file (experiment.toml)")
    validate.add_argument("--date", help="check that day's inputs (default: the first snapshot found)")
    validate.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    validate.set_defaults(func=cmd_validate)

    run = command("run", "run one day of an experiment: ledger, exposure, estimate, results; idempotent")
    run.add_argument("experiment", help="the experiment file (experiment.toml)")
    run.add_argument("--date", help="the day to run, YYYY-MM-DD (default: every snapshot on disk not yet run, in "
                                    "order; the summary printed is the last day's)")
    run.add_argument("--json", action="store_true", help="print the day's summary as one JSON object")
    run.set_defaults(func=cmd_run)

    rep = command("report", "build one HTML page over all days of an experiment so far")
    rep.add_argument("experiment", help="the experiment file (experiment.toml)")
    rep.add_argument("--out", help="where to write the page (default: <results>/<name>/report.html)")
    rep.add_argument("--json", action="store_true", help="print one JSON object instead of a line")
    rep.set_defaults(func=cmd_report)

    plan = command("plan", "before the experiment: the ICC, design effect, minimum detectable effect and "
                           "interference bias of each candidate design, from your own outcome history")
    source = plan.add_mutually_exclusive_group(required=True)
    source.add_argument("--edges", help="a social graph's edge list (default: none; or --memberships)")
    source.add_argument("--memberships", help="a collaboration network: user_id, project_id, account_id[, usage] "
                                              "(default: none; or --edges)")
    plan.add_argument("--outcomes", required=True, help="historical outcomes: unit_id and the outcome column")
    plan.add_argument("--clusters", nargs="+", help="candidate clusterings (unit_id, cluster_id), each a row "
                                                    "(default: Louvain at resolutions 1, 4, 16, or the collaboration "
                                                    "network's projects and components)")
    plan.add_argument("--outcome-col", default="y", help="the outcome column of --outcomes")
    plan.add_argument("--pre-col", help="a pre-period outcome column: CUPED's variance reduction is credited "
                                        "(default: none)")
    plan.add_argument("--effect", type=FINITE, help="the global effect to plan for, for the bias column (default: the "
                                                    "individual design's MDE)")
    plan.add_argument("--spillover", type=_number(float, 0), default=0.25,
                      help="assumed spillover: a fully treated neighbourhood's effect relative to the direct effect")
    plan.add_argument("--treat-fraction", type=SHARE, default=0.5, help="the treated share")
    plan.add_argument("--sample-fraction", type=_number(float, 0, 1, open_low=True), default=0.1,
                      help="the share of components the stratified design samples")
    plan.add_argument("--power", type=SHARE, default=0.8, help="the power the MDE is for")
    plan.add_argument("--alpha", type=SHARE, default=0.05, help="the test's level")
    plan.add_argument("--seed", type=SEED, default=0, help="seed of the Louvain clusterings")
    _add_edge_flags(plan)
    plan.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    plan.set_defaults(func=cmd_plan)

    clus = command("cluster", "cluster a graph into randomization units")
    clus.add_argument("edges", help="edge list (.csv or .parquet)")
    clus.add_argument("--method", required=True, choices=METHODS, help="the clustering algorithm")
    clus.add_argument("--side", choices=["units", "treated"], default="units",
                      help="--bipartite: which side's clusters --out holds: the measured units, or the treated "
                           "(randomized) side, to assign a cluster design to it")
    clus.add_argument("--resolution", type=_number(float, 0, open_low=True), default=None,
                      help="louvain, leiden, greedy-modularity: larger gives smaller clusters (default: 1)")
    clus.add_argument("--n-parts", type=_number(int, 2), default=None,
                      help="metis: number of parts (default: one per 100 nodes)")
    clus.add_argument("--seed", type=SEED, default=None,
                      help="a whole number makes the clusters reproducible (default: none, a fresh random run)")
    clus.add_argument("--out", help="write unit_id, cluster_id here (.csv or .parquet) (default: not written)")
    clus.add_argument("--cut-threshold", type=_number(float, 0, 1), default=0.10,
                      help="warn when a larger share of edges crosses clusters")
    _add_edge_flags(clus)
    clus.add_argument(
        "--memberships",
        action="store_true",
        help="EDGES is a collaboration table (user_id, project_id, account_id)",
    )
    clus.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    _add_engine_flags(clus)
    clus.set_defaults(func=cmd_cluster)

    assign = command("assign", "randomize units into arms")
    assign.add_argument("--units", required=True, help="table with unit_id (+ cluster and strata columns)")
    assign.add_argument("--design", required=True, choices=DESIGN_NAMES, help="how units are randomized")
    _add_design_flags(assign)
    assign.add_argument("--ledger", help="record the assignment in this ledger (DuckDB file) (default: not recorded)")
    assign.add_argument("--date", default=None, help="date recorded in the ledger (default: today)")
    assign.add_argument("--out", help="write unit_id, cluster_id, arm here (default: not written)")
    _add_ledger_flags(assign)
    assign.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    _add_engine_flags(assign)
    assign.set_defaults(func=cmd_assign)

    expo = command("exposure", "map each unit's exposure from the assignment and the graph")
    expo.add_argument("edges", help="edge list (.csv or .parquet)")
    expo.add_argument("--assignment", required=True, help="table with unit_id, arm")
    _add_mapping_flags(expo, required=True)
    _add_edge_flags(expo)
    expo.add_argument("--out", help="write the exposure table here (default: not written)")
    expo.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    _add_engine_flags(expo)
    expo.set_defaults(func=cmd_exposure)

    est = command("estimate", "estimate direct, indirect and total effects with standard errors and intervals")
    est.add_argument("--outcomes", required=True, help="table with unit_id and the outcome column")
    est.add_argument("--exposure", required=True, help="table written by `spillover exposure`")
    est.add_argument("--method", required=True, choices=list(ESTIMATE_METHODS),
                     help="ols-network: OLS with errors robust to dependence through the graph (needs --edges and "
                          "--clusters); ht/hajek/wls: design-based (need --draws or --design; wls is Hajek by weighted "
                          "least squares, with --covariates); regression-adjustment: the global effect, everyone "
                          "treated against no one, by Chin's regression adjustment (needs --edges)")
    est.add_argument("--clusters", help="table with unit_id, cluster_id (default: none)")
    est.add_argument("--draws", help="ht/hajek: the design's draws, one row per draw, one column per unit id "
                                     "(default: none)")
    est.add_argument("--design", choices=["individual", "cluster"],
                     help="ht/hajek: the design that made the assignment; its treated share (and clusters) are read "
                          "from the assignment (default: none)")
    est.add_argument("--assignment", help="ht/hajek with --design: table with unit_id, arm of the randomized units "
                                          "(default: the exposure table's arm column)")
    est.add_argument("--n-draws", type=COUNT, default=1_000,
                     help="Monte Carlo draws where probabilities have no exact form")
    est.add_argument("--treat-fraction", type=SHARE, default=None,
                     help="the design's treated share, checked against the assignment (default: read from it)")
    est.add_argument("--bernoulli", action="store_true",
                     help="the design drew units (clusters) independently, not an exact count")
    est.add_argument("--seed", type=SEED, default=0, help="seed of the Monte Carlo draws")
    est.add_argument("--prob-correction", choices=["none", "add-one"], default="none",
                     help="add-one: Monte Carlo probabilities as (count+1)/(R+1), the reference package's "
                          "convention")
    est.add_argument("--prob-method", choices=list(PROBABILITY_METHODS), default="auto",
                     help="exposure probabilities: exact where the design and mapping allow, else Monte Carlo")
    est.add_argument("--joint", choices=["dependent", "all"], default="dependent",
                     help="joint probabilities for pairs sharing a randomization unit, or for all pairs (the "
                          "reference package's convention)")
    est.add_argument("--max-pairs", type=int, default=MAX_DEPENDENT_PAIRS,
                     help="ht/hajek: refuse (before forming them) more stored pairs of joint probabilities than "
                          "this, rather than run out of memory (pairs sharing one block are summed per block "
                          "and not stored; 0: no limit)")
    est.add_argument("--vcov", choices=list(VCOV_TYPES), default=DEFAULT_VCOV,
                     help="cluster-robust variance of ols-cluster and cluster-means: CR2 with Bell-McCaffrey df "
                          "(reliable with few or unequal clusters), CR1 as statsmodels, or CR0")
    est.add_argument("--edges", help="ht/hajek/wls: the graph, to map every draw to exposures; ols-network, "
                                     "regression-adjustment: the graph (default: none)")
    _add_mapping_flags(est, required=False)
    _add_edge_flags(est)
    est.add_argument("--outcome-col", default="y", help="the outcome column of --outcomes")
    est.add_argument("--covariates", help="comma-separated outcome-table columns to adjust for: a pre-period outcome "
                                          "(CUPED) or a prediction of the outcome (CUPAC); ols-cluster, cluster-means "
                                          "(default: none)")
    est.add_argument("--control", help="control condition (default: the mapping's)")
    est.add_argument("--wild-bootstrap", type=_bootstrap_draws, default="auto", metavar="B|auto|off",
                     help="ols-cluster: p-values and intervals from the restricted wild cluster bootstrap with B "
                          "draws (all sign patterns when 2^G <= B); auto: 1,999 draws below 30 clusters, where "
                          "t intervals under-cover")
    est.add_argument("--bootstrap-weights", choices=["rademacher", "webb"], default="rademacher",
                     help="wild bootstrap weights; webb for fewer than about 12 clusters")
    est.add_argument("--min-probability", type=_number(float, 0, 1, open_high=True), default=0.0,
                     help="ht/hajek: analyse only units whose probabilities of both compared conditions reach this "
                          "(e.g. 0.01; the estimand is then that population's)")
    est.add_argument("--bandwidth", type=_number(int, 0), default=2,
                     help="ols-network: units within this many hops are treated as dependent")
    est.add_argument("--missing", choices=["drop", "error"], default="drop",
                     help="units with no outcome: left out of the analysis (with a warning), or an error")
    est.add_argument("--alpha", type=SHARE, default=0.05, help="intervals cover with probability 1 - alpha")
    est.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    _add_engine_flags(est)
    est.set_defaults(func=cmd_estimate)

    simulate = command("simulate", "compare designs, or estimators of the global effect, on simulated experiments "
                                   "with a known effect")
    simulate.add_argument("--compare", choices=["designs", "estimators"], default="designs",
                          help="designs: cluster designs of a collaboration network; estimators: difference in means, "
                               "cluster randomization, Hajek, regression adjustment, SNIPE and a staggered rollout on "
                               "a social graph")
    source = simulate.add_mutually_exclusive_group()
    source.add_argument("--network", choices=["synthetic-collaboration"], default="synthetic-collaboration",
                        help="the built-in network to simulate on")
    source.add_argument("--memberships", help="simulate on your own user_id, project_id, account_id[, usage] table "
                                              "(default: none, the built-in network)")
    source.add_argument("--edges", help="estimators: a social graph's edge list (default: none, a synthetic one)")
    simulate.add_argument("--users", type=_number(int, 100), default=None,
                          help="size of the synthetic network (default: 100,000; estimators: 5,000)")
    simulate.add_argument("--spillover", choices=["linear", "quadratic", "threshold"], default="linear",
                          help="estimators: how the outcome moves with the treated share of neighbours")
    simulate.add_argument("--designs", default="project,component,stratified-component",
                          help=f"comma-separated designs to compare, of {', '.join(SIMULATED_DESIGNS)}")
    simulate.add_argument("--tau", type=FINITE, default=1 / 8, help="the direct effect of treatment")
    simulate.add_argument("--gamma", type=FINITE, default=2**-4,
                          help="spillover: each treated neighbour adds gamma * tau")
    simulate.add_argument("--n-sims", type=_number(int, 2), default=None,
                          help="simulated experiments per design (default: 1,000; estimators: 200)")
    simulate.add_argument("--seed", type=SEED, default=0, help="seed of the network and the experiments")
    simulate.add_argument("--vcov", choices=list(VCOV_TYPES), default=DEFAULT_VCOV,
                          help="cluster-robust variance of each simulated analysis, as in `estimate --vcov`")
    simulate.add_argument("--source", default="source", help="estimators: --edges' first id column")
    simulate.add_argument("--target", default="target", help="estimators: --edges' second id column")
    simulate.add_argument("--out", help="folder for report.html and design_comparison.csv (default: not written)")
    simulate.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    simulate.set_defaults(func=cmd_simulate)

    evolve = command("evolve", "apply one day's graph snapshot to the ledger, keeping every unit's arm")
    evolve.add_argument("--ledger", required=True, help="the experiment's ledger (DuckDB file)")
    evolve.add_argument("--snapshot", required=True, help="memberships: user_id, project_id, account_id[, usage]")
    evolve.add_argument("--date", required=True, help="the snapshot's date, YYYY-MM-DD")
    evolve.add_argument("--design", choices=EVOLVE_DESIGNS,
                        help="first snapshot only: how components are randomized (default: none, a later day)")
    evolve.add_argument("--merge-policy", choices=MERGE_POLICIES, default="majority",
                        help="majority: a merged component takes its larger side's arm; exclude: nobody switches and "
                             "the merged users leave the analysis")
    evolve.add_argument("--replace", action="store_true",
                        help="a recorded day re-run with a different snapshot: void that day and the later ones (an "
                             "audit row keeps them) and record this one")
    _add_design_flags(evolve)
    _add_ledger_flags(evolve)
    evolve.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    evolve.set_defaults(func=cmd_evolve)

    led = command("ledger", "read what a ledger recorded (show, history, export) or void a day, with an audit row")
    led.add_argument("action", choices=["show", "history", "export", "void"],
                     help="show: the experiment and its days; history: every arm a unit has had; export: a table to "
                          "CSV/Parquet; void: undo --date and every later day (kept in voided_* tables)")
    led.add_argument("--ledger", required=True, help="the ledger (DuckDB file)")
    led.add_argument("--experiment", help="the experiment (default: the ledger's only one)")
    led.add_argument("--unit", help="history: one unit's history (default: every unit)")
    led.add_argument("--table", choices=["history", "current", "events", "components", "days", "audit"],
                     default="history", help="export: which table")
    led.add_argument("--out", help="export: the .csv or .parquet to write (default: none)")
    led.add_argument("--date", help="void: the first day to void, YYYY-MM-DD (default: none)")
    led.add_argument("--reason", help="void: why, kept in the audit trail (default: none)")
    led.add_argument("--limit", type=COUNT, default=50, help="show, history: rows printed")
    _add_ledger_flags(led, future=False)
    led.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    led.set_defaults(func=cmd_ledger)
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
    """The design options; unset ones take the design's own default (``DESIGN_OPTIONS``),
    and one the design does not use is refused."""
    default = {key: value for options in DESIGN_OPTIONS.values() for key, value in options.items()}
    parser.add_argument("--cluster-col", help=f"cluster designs: the units table's cluster column "
                                              f"(default: {default['cluster_col']})")
    parser.add_argument("--treat-fraction", type=SHARE, help=f"individual and cluster designs: the treated share "
                                                             f"(default: {default['treat_fraction']})")
    parser.add_argument("--sample-fraction", type=_number(float, 0, 1, open_low=True),
                        help=f"stratified-cluster: the share of clusters in the experiment "
                             f"(default: {default['sample_fraction']})")
    parser.add_argument("--holdout-fraction", type=SHARE,
                        help=f"holdout: the share of clusters held out (default: {default['holdout_fraction']})")
    parser.add_argument("--arm-weights", help="comma-separated weights of arms 0,1,2,... (default: the treated share; "
                                              "0.5,0.5 for stratified-cluster)")
    parser.add_argument("--strata-by", help="stratified-cluster: comma-separated size and/or unit columns summed per "
                                            "cluster (default: size)")
    parser.add_argument("--n-bins", type=COUNT, help=f"stratified-cluster: quantile bins per stratification variable "
                                                     f"(default: {default['n_bins']})")
    parser.add_argument("--seed", type=SEED, default=None,
                        help="a seeded permutation with exact counts (default: none; give --seed or --salt)")
    parser.add_argument("--salt", help="a keyed-hash assignment, stable as units come and go; names the experiment "
                                       "(default: none; give --seed or --salt)")
    parser.add_argument("--experiment", help="experiment name in the ledger (default: the salt)")


def _add_ledger_flags(parser: argparse.ArgumentParser, future: bool = True) -> None:
    if future:
        parser.add_argument("--allow-future", action="store_true",
                            help="record a date after tomorrow (refused by default: a mistyped date blocks every "
                                 "real one)")
    parser.add_argument("--lock-timeout", type=_number(float, 0), default=LOCK_TIMEOUT,
                        help="seconds to wait for another writer's lock on the ledger")


def _add_engine_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=["memory", "duckdb", "spark"], default="memory",
                        help="where the heavy step runs (results are identical)")
    parser.add_argument("--memory-limit", default=None,
                        help="duckdb: e.g. 2GB; it spills to disk beyond (default: DuckDB's, 80%% of memory)")
    parser.add_argument("--spark-master", default="local[*]", help="spark: the master URL")


def _add_mapping_flags(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--mapping", required=required, default=None if required else "as4", choices=MAPPINGS,
                        help="how a unit's own and its neighbours' arms make its exposure condition")
    parser.add_argument("--threshold", type=_number(float, 0, 1), default=None,
                        help="threshold mapping: exposed when at least this share of neighbours is treated "
                             "(default: 0.75); bipartite: direct when at least this share of a unit's treated-side "
                             "neighbours is treated, control when at most 1 minus it (above 0.5; default: 1, all or "
                             "none)")
    parser.add_argument("--hops", type=int, choices=[1, 2], default=1, help="as4: neighbours within this many hops")


def _add_edge_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default="source", help="edge list column (unit side if bipartite)")
    parser.add_argument("--target", default="target", help="edge list column (treated side if bipartite)")
    parser.add_argument("--directed", action="store_true", help="edges are directed: a unit's neighbours are its "
                                                                "targets")
    parser.add_argument("--bipartite", action="store_true",
                        help="SOURCE is the measured side, TARGET the randomized side")


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (exit code 2), naming the command and pointing
    at its ``--help``, like every other error of the command line."""

    def error(self, message: str):
        """Print ``message`` as one line and exit with code 2."""
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default (or says it is required)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or "default:" in text or action.default is argparse.SUPPRESS:
            return text
        if action.required:
            return f"{text} (required)"
        if action.const is True and action.default is False:  # a switch
            return f"{text} (default: off)"
        return f"{text} (default: %(default)s)"


# what to do when a command runs out of memory
_MEMORY_HINT = {
    **{command: "run it out of core with --engine duckdb --memory-limit 4GB (DuckDB spills to disk beyond the "
                "limit; --engine spark for a cluster), or on a machine with more memory."
       for command in ("cluster", "assign", "exposure", "estimate")},
    None: "use a machine with more memory, or fewer units or draws (--n-draws, --n-sims); the graph steps run out of "
          "core with --engine duckdb --memory-limit 4GB.",
}

# the commands that read tables named on the command line (the experiment commands read theirs from the file)
_READS_TABLES = ("synth", "plan", "cluster", "assign", "exposure", "estimate", "simulate", "evolve")
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
    """Run the command line on ``argv``; returns the exit code (2 for bad input, with a one-line message)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or a flag argparse refused (its one-line message is printed)
        return int(exit_.code or 0)
    warnings.showwarning = show_warning
    try:
        _refuse_overwriting_inputs(args)
        with id_type(getattr(args, "id_type", "auto")):
            return int(args.func(args) or 0)
    except SpilloverError as error:
        stderr.print(f"[red]error:[/red] {escape(str(error))}", highlight=False)
        return 2
    except MemoryError:
        hint = _MEMORY_HINT.get(args.command, _MEMORY_HINT[None])
        stderr.print(f"[red]error:[/red] out of memory in `spillover {args.command}`: {hint}", highlight=False)
        return 1


if __name__ == "__main__":
    sys.exit(main())
