"""Terminal output shared by the command line and the demo: rich tables on stdout,
progress and warnings on stderr, one JSON object for ``--json``.

Nothing here computes statistics; it only formats what the pipeline returns.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import threading
import time
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import SpilloverWarning

# wide when piped (CI logs, files): tables of a dozen columns stay readable
stdout = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
stderr = Console(stderr=True, soft_wrap=True)


def _live_bar(message: str, total: float | None):
    """A transient rich progress display on stderr: a spinner, the step, and with a
    ``total`` a bar, ``done/total``, the time so far and the time left."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn(), TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("left"),
                    TimeRemainingColumn()]
    else:
        columns += [TimeElapsedColumn()]
    return Progress(*columns, console=stderr, transient=True)


@contextlib.contextmanager
def counting(message: str, total: int, quiet: bool = False) -> Iterator[Callable[[int], None]]:
    """Progress of a step of ``total`` known parts (experiments, draws): on a terminal a
    bar with the count, the time so far and an estimate of the time left; with
    ``quiet`` (``--json``) or when stderr is not a terminal, one line at the start and
    one at the end. Yields ``advance(k)``, to call as parts finish.

    Examples
    --------
    >>> with counting("simulating", total=3, quiet=True) as advance:
    ...     for _ in range(3):
    ...         advance(1)
    """
    start = time.perf_counter()
    if quiet or not stderr.is_terminal:
        stderr.print(f"[dim]{message} ({total:,}) ...[/dim]")
        yield lambda k=1: None
    else:
        with _live_bar(message, total) as bar:
            task = bar.add_task(message, total=total)
            yield lambda k=1: bar.advance(task, k)
    stderr.print(f"[dim]{message}: done in {time.perf_counter() - start:.1f}s[/dim]")


@contextlib.contextmanager
def progress(message: str, quiet: bool = False, *, poll: Callable[[], float] | None = None,
             every: float = 10.0) -> Iterator[None]:
    """A spinner and the time so far on stderr while a step runs, then the step's time.
    With ``poll`` (a percentage, negative when unknown, such as DuckDB's
    ``query_progress``) a line every ``every`` seconds says how far a long step has
    come, so a run of minutes is never silent. Steps of known size use :func:`counting`."""
    start = time.perf_counter()
    stop = threading.Event()

    def report() -> None:
        while not stop.wait(every):
            try:
                done = poll()
            except Exception:  # the engine is between statements: nothing to say this time
                done = -1.0
            elapsed = time.perf_counter() - start
            share = f"{done:.0f}% of the current query, " if done is not None and done >= 0 else ""
            stderr.print(f"[dim]{message}: {share}{elapsed:,.0f}s so far[/dim]")

    reporter = threading.Thread(target=report, daemon=True) if poll is not None else None
    if reporter is not None:
        reporter.start()
    try:
        if quiet or not stderr.is_terminal:
            stderr.print(f"[dim]{message} ...[/dim]")
            yield
        else:
            with _live_bar(message, None) as bar:
                bar.add_task(message, total=None)
                yield
    finally:
        stop.set()
    stderr.print(f"[dim]{message}: done in {time.perf_counter() - start:.1f}s[/dim]")


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Print a warning on stderr as one line labelled with its class (installed by the CLI)."""
    label = category.__name__ if issubclass(category, SpilloverWarning) else "warning"
    stderr.print(f"[yellow]{label}:[/yellow] {escape(str(message))}", highlight=False)


def jsonable(value: Any) -> Any:
    """A value with numpy scalars as Python numbers and NaN or infinity as None, for JSON."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def print_json(payload: dict[str, Any]) -> None:
    """Write ``payload`` as one line of JSON on stdout (numpy values converted, NaN as null)."""
    sys.stdout.write(json.dumps(jsonable(payload)) + "\n")


def format_value(value: Any) -> str:
    """A number or text as a table cell shows it: thousands separated, four significant digits."""
    if value is None:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else ""
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
    """A dict as a two-column table titled ``title``."""
    frame = pd.DataFrame({"": list(summary.keys()), "value": [format_value(v) for v in summary.values()]})
    print_table(frame, title=title)
