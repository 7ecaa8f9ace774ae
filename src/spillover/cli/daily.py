"""The commands of the daily job and the demo: ``init``, ``validate``, ``run``,
``report`` and ``demo``."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape

from ..console import print_json, print_summary, print_table, progress, stderr, stdout


def cmd_init(args: argparse.Namespace) -> int:
    """``spillover init``: write a commented experiment file (and, with --example, 30 days of data)."""
    from ..errors import InputError
    from ..experiment import EXAMPLE, write_example_data

    path = Path(args.path)
    if path.exists() and not args.force:
        raise InputError(f"{path} exists; pass --force to overwrite it.")
    if args.example and not args.force:
        from ..experiment import example_data_paths

        existing = [p for p in example_data_paths(path, args.days) if p.exists()]
        if existing:
            raise InputError(f"{len(existing)} data file(s) of the example exist already (e.g. {existing[0]}): a "
                             "running experiment's snapshots and outcomes are never overwritten; init in an empty "
                             "folder, or pass --force.")
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
    from ..experiment import load_config, validate

    config = load_config(args.experiment)
    checked = validate(config, args.date)
    if args.json:
        print_json({"valid": True, "checked": checked})
    else:
        print_summary({"valid": "yes", **{f"check {i + 1}": text for i, text in enumerate(checked)}},
                      title=f"validate: {config.name}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """``spillover run``: bring the daily job up to date (or up to --date), day by day."""
    from ..daily import daily_engine, run_pending
    from ..experiment import load_config

    config = load_config(args.experiment)
    engine = daily_engine(config, args.engine, args.memory_limit, args.spark_master)
    say = None if args.json else (lambda message: stderr.print(f"[dim]{escape(message)}[/dim]"))
    decisions, days = run_pending(config, args.date, progress=say, engine=engine,
                                  warehouse=Path(args.warehouse) if args.warehouse else None)
    day = days[-1]
    if args.json:
        print_json({**day, "decisions": [d.to_dict() for d in decisions]})
    else:
        summary = {"date": day["date"], **{f"arm {k} units": v for k, v in day["units_per_arm"].items()},
                   **{k: day["ledger"][k] for k in ("created", "split", "merged", "removed", "users_switched")}}
        if day.get("carried_from"):
            summary["snapshot"] = f"missing: arms of {day['carried_from']} carried"
        if day["effects"]:
            effect = day["effects"][0]
            summary.update({"estimate": effect["estimate"], "ci_low": effect["ci_low"], "ci_high": effect["ci_high"]})
        changed = [d for d in decisions if d.action != "done"]
        summary["days"] = f"{len(decisions)} checked, {len(changed)} changed"
        print_summary(summary, title=f"run: {config.name} on {day['date']}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """``spillover report``: one HTML page over all days so far, and its verdict and last days printed."""
    from ..errors import InputError
    from ..experiment import days_table, load_config, report, verdict

    config = load_config(args.experiment)
    if args.out and Path(args.out).suffix.lower() not in (".html", ".htm"):
        raise InputError(f"--out {args.out}: the report is an HTML page; name a .html file (an input such as a "
                         "snapshot is never overwritten).")
    path = report(config, args.out)
    days, table = days_table(config)
    said = verdict(days[-1], config.higher_is_better)
    bands = ["band_low", "band_high"] if config.inference == "sequential" else []
    shown = table[["date", "estimate", "ci_low", "ci_high", *bands, "units analysed", "units assigned",
                   "users_switched"]]
    if args.json:
        print_json({"report": str(path), "verdict": said, "days": shown.to_dict(orient="records")})
    else:
        stdout.print(f"[bold]verdict on {days[-1]['date']}:[/bold] {escape(said)}", highlight=False)
        print_table(shown.tail(10), title=f"{config.name}: the last {min(10, len(shown))} of {len(shown)} day(s)")
        stderr.print(f"[dim]wrote {escape(str(path))}[/dim]")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """``spillover demo``: the whole pipeline on built-in data."""
    from ..demo import FULL, QUICK, run_demo

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        from ..errors import InputError
        raise InputError(f"--out {out} is a file; the demo writes a folder (report.html and its tables).")
    tables = run_demo(out=out, seed=args.seed, console=stderr if args.json else stdout,
                      scale=FULL if args.full else QUICK, quiet=args.json)
    if args.json:  # where everything went, and the design the study recommends
        print_json({"out": str(out), "report": str(out / "report.html"),
                    "tables": {name: str(out / f"{name}.csv") for name in tables},
                    "recommended_design": tables["recommendation"]["design"].iloc[0]})
    return 0
