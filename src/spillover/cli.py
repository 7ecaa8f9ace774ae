"""``spillover <stage> ...``: one command per pipeline stage, plus ``spillover demo``.

The flags, output columns and ``--json`` keys are a public contract
(``shared/INTERFACE.md``). Tables go to stdout; progress and warnings go to stderr, so
``--json`` output is one JSON object on stdout and nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from . import __version__
from .cluster import METHODS, cluster
from .errors import SpilloverError, SpilloverWarning
from .graph import CollaborationNetwork, load_graph, write_table

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


# --------------------------------------------------------------------------- commands


def cmd_cluster(args: argparse.Namespace) -> int:
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
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=cmd_demo)

    clus = commands.add_parser("cluster", help="cluster a graph into randomization units")
    clus.add_argument("edges", help="edge list (.csv or .parquet)")
    clus.add_argument("--method", required=True, choices=METHODS)
    clus.add_argument("--resolution", type=float, default=1.0, help="louvain/leiden/greedy-modularity")
    clus.add_argument("--n-parts", type=int, default=None, help="metis: number of parts")
    clus.add_argument("--seed", type=int, default=None)
    clus.add_argument("--out", help="write unit_id, cluster_id here (.csv or .parquet)")
    clus.add_argument("--cut-threshold", type=float, default=0.10)
    _add_edge_flags(clus)
    clus.add_argument(
        "--memberships",
        action="store_true",
        help="EDGES is a collaboration table (user_id, project_id, account_id)",
    )
    clus.add_argument("--json", action="store_true", help="print one JSON object")
    clus.set_defaults(func=cmd_cluster)
    return parser


def _add_edge_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default="source", help="edge list column (unit side if bipartite)")
    parser.add_argument("--target", default="target", help="edge list column (treated side if bipartite)")
    parser.add_argument("--directed", action="store_true")
    parser.add_argument("--bipartite", action="store_true")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.showwarning = _show_warning
    try:
        return int(args.func(args) or 0)
    except SpilloverError as error:
        stderr.print(f"[red]error:[/red] {error}", highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
