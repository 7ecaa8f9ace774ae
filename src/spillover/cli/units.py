"""The commands of the graph and design stages: ``cluster``, ``assign``, ``evolve``,
``ledger`` and ``exposure``."""

from __future__ import annotations

import argparse
import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from rich.markup import escape

from ..console import print_json, print_summary, print_table, progress, stderr
from ..errors import SampleRatioWarning
from ..graph import CollaborationNetwork
from ..io import write_table
from .common import dates_as_text, engine_for, engine_only, engine_poll, load_edges, name_list, read_options


def _cluster_with_engine(args: argparse.Namespace, engine) -> int:
    engine_only(args, "--method components on an edge list", args.method == "components" and not args.memberships
                 and not args.bipartite)
    with progress(f"connected components ({engine.name})", args.json, poll=engine_poll(engine)):
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
    from ..clustering import cluster  # here, not at the top: the other commands of this module do not need it

    engine = engine_for(args)
    if engine is not None:
        return _cluster_with_engine(args, engine)
    with progress(f"loading {args.edges}", args.json):
        if args.memberships:
            graph = CollaborationNetwork.from_memberships(args.edges, options=read_options(args))
        else:
            graph = load_edges(args, args.edges)
    if args.side != "units" and not args.bipartite:
        from ..errors import InputError

        raise InputError("--side treated writes the randomized side of a bipartite graph: add --bipartite.")
    if args.side == "treated" and args.method in ("metis", "exposure-design"):
        return _cluster_sellers(args, graph)
    if args.method == "exposure-design":
        from ..errors import InputError

        raise InputError("--method exposure-design clusters the sellers of a marketplace: add --bipartite --side "
                         "treated.")
    with progress(f"clustering ({args.method})", args.json):
        options = {"resolution": args.resolution, "n_parts": args.n_parts}  # only those given: the method's own
        result = cluster(graph, args.method, seed=args.seed, cut_threshold=args.cut_threshold,
                         **{key: value for key, value in options.items() if value is not None})
    if args.out:
        write_table(result.to_frame(args.side), args.out)
        stderr.print(f"[dim]wrote {args.out}[/dim]")
    summary = result.to_dict()
    if args.side == "treated":
        from ..marketplace import exposure_purity

        purity = exposure_purity(graph, result.other_labels["treated"])
        summary |= {key: value for key, value in purity.items() if key != "n_clusters"}
    if args.json:
        print_json(summary)
    else:
        print_summary(summary, title=f"clustering: {args.method}")
    return 0


def _cluster_sellers(args: argparse.Namespace, graph) -> int:
    """``cluster --bipartite --side treated --method metis|exposure-design``: clusters of
    the sellers' projection, and how pure the buyers' exposure can be under them."""
    from ..marketplace import exposure_design, exposure_objective, exposure_purity, seller_clusters

    if args.method == "metis":
        n_parts = args.n_parts or max(2, graph.n_treated_side // 50)
        what = f"metis on the sellers' projection, {n_parts} parts"
        with progress(f"seller clusters ({what})", args.json):
            labels = seller_clusters(graph, n_parts, seed=args.seed)
        summary = {"method": "metis (sellers' projection by shared buyers)"}
    else:
        resolution = 1.0 if args.resolution is None else args.resolution
        with progress(f"seller clusters (exposure-design, resolution {resolution:g})", args.json):
            labels = exposure_design(graph, resolution=resolution, seed=args.seed)
        summary = {"method": f"exposure-design (Leiden on the sellers' projection, resolution {resolution:g})",
                   "objective": exposure_objective(graph, labels.to_numpy(), resolution)}
    if args.out:
        write_table(pd.DataFrame({"unit_id": labels.index, "cluster_id": labels.to_numpy()}), args.out)
        stderr.print(f"[dim]wrote {args.out}[/dim]")
    summary |= {"n_sellers": graph.n_treated_side, "n_buyers": graph.n_units, **exposure_purity(graph, labels)}
    if args.json:
        print_json(summary)
    else:
        print_summary(summary, title="seller clusters")
    return 0


def design_spec(args: argparse.Namespace) -> dict:
    """The design the ``assign`` / ``evolve`` flags name: only the options given, so the
    design's own defaults apply and an option it does not use is refused."""
    spec = {"design": args.design, "cluster_col": args.cluster_col, "treat_fraction": args.treat_fraction,
            "arm_weights": args.arm_weights, "sample_fraction": args.sample_fraction,
            "holdout_fraction": args.holdout_fraction, "strata_by": name_list(args.strata_by) or None,
            "n_bins": args.n_bins}
    return {key: value for key, value in spec.items() if value is not None}


def _assign_with_engine(args: argparse.Namespace, engine):
    """Keyed-hash assignment where the units live; the same arms as in memory."""
    from ..design import Assignment, check_spec, hash_spec
    from ..errors import DesignError

    if not args.salt or args.seed is not None:
        raise DesignError(f"--engine {args.engine} assigns by keyed hash: pass --salt (and no --seed).")
    spec = check_spec(design_spec(args))
    key = spec.get("cluster_col", "unit_id")
    frame = engine.hash_assign(args.units, salt=args.salt, spec=hash_spec(spec), key=key)
    codes, ids = pd.factorize(frame[key].to_numpy(), sort=True) if key != "unit_id" else (None, None)
    options = {name: value for name, value in spec.items() if name not in ("design", "cluster_col")}
    return Assignment(pd.Index(frame["unit_id"]), frame["arm"].to_numpy().astype(np.int8), args.design, None,
                      args.salt, codes, None if ids is None else pd.Index(ids), {**options, "engine": engine.name})


def cmd_assign(args: argparse.Namespace) -> int:
    """``spillover assign``: randomize units into arms (and record them in a ledger)."""
    from ..errors import DesignError
    from ..io import check_table_path, read_table
    from ..ledger import Ledger, record_assignment

    if (args.seed is None) == (args.salt is None):
        raise DesignError("assign needs exactly one of --seed (a seeded permutation, exact counts) or --salt (a keyed "
                          "hash, stable as units come and go): an assignment must be reproducible.")
    if args.out:  # every output checked before anything is written
        check_table_path(args.out)
    if args.ledger:
        Ledger.check_path(args.ledger)
    engine = engine_for(args)
    if engine is not None:
        assignment = _assign_with_engine(args, engine)
    else:
        from ..design import design_from_spec

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
    summary = assignment.to_dict()
    checks = assignment_checks(assignment)
    for check in checks:
        if check.flagged:
            warnings.warn(check.detail, SampleRatioWarning, stacklevel=2)
    if args.json:
        print_json({**summary, "health": [check.to_dict() for check in checks]})
    else:
        arms = summary.pop("arms")
        summary.update({f"arm {k}": v for k, v in arms.items()})
        print_summary(summary, title=f"assignment: {args.design}")
        for check in checks:
            if not check.flagged:  # a flagged check is already a warning
                stderr.print(f"[dim]health: {escape(check.detail)}[/dim]", highlight=False)
    return 0


def assignment_checks(assignment) -> tuple:
    """The assignment's arms against its design's intended shares (what ``assign`` prints)."""
    from ..health import design_balance

    arms = pd.Series(assignment.arms, index=assignment.units)
    clusters = None if assignment.clusters is None or assignment.cluster_ids is None else \
        pd.Series(np.asarray(assignment.cluster_ids)[assignment.clusters], index=assignment.units)
    return design_balance(assignment.record, arms, clusters)


def cmd_evolve(args: argparse.Namespace) -> int:
    """``spillover evolve``: apply one day's snapshot to the ledger (the first day starts the experiment)."""
    from ..design import check_spec
    from ..errors import DesignError
    from ..evolve import check_design_unchanged, evolve, start
    from ..ledger import Ledger

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
            given = {key: value for key, value in design_spec(args).items() if key != "cluster_col"}
            check_design_unchanged(ledger.experiment(name), {**given, **({"seed": args.seed} if args.seed is not None
                                                                         else {})})
            with progress(f"applying snapshot of {args.date}", args.json):
                report = evolve(ledger, snapshot, args.date, experiment=name, merge_policy=args.merge_policy,
                                replace=args.replace, allow_future=args.allow_future)
    if args.json:
        print_json(report.to_dict())
    else:
        print_summary(report.to_dict(), title=f"evolve: {name or args.design} on {args.date}")
    return 0


def cmd_ledger(args: argparse.Namespace) -> int:
    """``spillover ledger``: read what a ledger recorded (show, history, export), check its
    seals (verify) or void a day."""
    import json

    from ..errors import InputError
    from ..ledger import Ledger

    from ..warehouse import open_warehouse, publish, verify_files

    writes = args.action in ("void", "publish")
    if args.action == "publish" and not (args.ledger and args.warehouse):
        raise InputError("ledger publish needs --ledger (the DuckDB file) and --warehouse (the folder to publish to).")
    if not args.action == "publish" and bool(args.ledger) == bool(args.warehouse):
        raise InputError(f"ledger {args.action} reads one ledger: give --ledger (the DuckDB file)"
                         + ("" if writes else " or --warehouse (a folder it was published to)") + ".")
    if args.action == "void" and args.warehouse:
        raise InputError("ledger void writes the ledger file (--ledger); a warehouse follows at the next publish.")
    source = args.ledger if args.ledger else args.warehouse
    if not Path(source).exists():
        raise InputError(f"{'ledger' if args.ledger else 'warehouse'} '{source}' does not exist.")
    with (Ledger(args.ledger, lock_timeout=args.lock_timeout) if args.ledger else open_warehouse(args.warehouse)) \
            as ledger:
        name = args.experiment or ledger.only_experiment()
        record = ledger.experiment(name)
        if args.action == "publish":
            done = publish(ledger, name, args.warehouse)
            summary = {"experiment": name, "warehouse": args.warehouse, "published": len(done["published"]),
                       "withdrawn": len(done["withdrawn"]), "last_date": str(ledger.last_date(name))}
            print_json(summary) if args.json else print_summary(summary, title=f"ledger publish: {name}")
            return 0
        if args.action == "verify":
            problems = ledger.verify(name) + (verify_files(args.warehouse) if args.warehouse else [])
            if problems:
                from ..errors import LedgerError

                raise LedgerError(f"{'ledger' if args.ledger else 'warehouse'} '{source}', experiment {name!r}: "
                                  f"{len(problems)} problem(s): " + "; ".join(problems))
            summary = {"experiment": name, "intact": True, "days": len(ledger.checksums(name)),
                       "audit_rows": len(ledger.audit(name))}
            print_json(summary) if args.json else print_summary(summary, title=f"ledger verify: {name}")
            return 0
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
        frame = dates_as_text(frame)
        if args.json:
            payload = {"experiment": name, "design": record["design"], "params": record["params"],
                       ("days" if args.action == "show" else "history"): json.loads(frame.to_json(orient="records"))}
            if args.action == "show":
                payload["audit"] = json.loads(dates_as_text(ledger.audit(name)).to_json(orient="records"))
            print_json(payload)
            return 0
        shown = frame.head(args.limit)
        print_table(shown, title=title + ("" if len(frame) <= args.limit else f" (first {args.limit} of "
                                                                                 f"{len(frame):,} rows; --limit)"))
        audit = ledger.audit(name)
        if args.action == "show" and len(audit):
            print_table(dates_as_text(audit), title="audit")
    return 0


def cmd_exposure(args: argparse.Namespace) -> int:
    """``spillover exposure``: each unit's exposure condition."""
    from ..exposure import exposure
    from ..io import read_table

    engine = engine_for(args)
    if engine is not None:
        engine_only(args, "one-hop exposure", args.hops == 1)
        with progress(f"exposure ({args.mapping}, {engine.name})", args.json, poll=engine_poll(engine)):
            table = engine.exposure(args.edges, args.assignment, args.mapping, source=args.source, target=args.target,
                                    bipartite=args.bipartite, threshold_q=args.threshold)
    else:
        with progress(f"loading {args.edges}", args.json):
            graph = load_edges(args, args.edges)
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
