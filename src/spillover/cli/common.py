"""What the commands share: the engine the flags name, lists in flags, reading the
graph the edge flags describe."""

from __future__ import annotations

import argparse
from typing import Callable

import pandas as pd

from ..graph import load_graph


def engine_for(args: argparse.Namespace):
    """The engine the flags ask for (with the flags its options are), or None for the
    in-memory path; a flag of another engine's is refused, not ignored."""
    from ..errors import InputError

    name = getattr(args, "engine", "memory")
    if name != "memory" and getattr(args, "format", "auto") != "auto" or name != "memory" and any(
            getattr(args, flag, None) for flag in ("sep", "comment", "no_header")):
        raise InputError(f"--format, --sep, --comment and --no-header read the edge list in memory; --engine {name} "
                         "reads CSV and Parquet files as they are (convert the file, or use --engine memory).")
    given = {"memory_limit": args.memory_limit, "master": args.spark_master} if hasattr(args, "memory_limit") else {}
    given = {key: value for key, value in given.items() if value is not None}
    if name == "memory":
        if given:
            flag = "--" + next(iter(given)).replace("_", "-").replace("master", "spark-master")
            raise InputError(f"{flag} applies to --engine duckdb or spark, not the memory engine.")
        return None
    from ..engines import engine_class, get_engine

    takes = engine_class(name).options
    foreign = [key for key in given if key not in takes]
    if foreign:
        flag = "--" + foreign[0].replace("_", "-").replace("master", "spark-master")
        raise InputError(f"{flag} does not apply to --engine {name}.")
    return get_engine(name, **given)


def engine_poll(engine) -> Callable[[], float] | None:
    """The engine's progress of its running query (DuckDB's), for long steps' progress lines."""
    return getattr(engine, "query_progress", None)


def engine_only(args: argparse.Namespace, what: str, allowed: bool) -> None:
    """Refuse a step the engine does not run (``allowed`` false), naming what it runs."""
    from ..errors import InputError

    if not allowed:
        raise InputError(f"--engine {args.engine} runs {what}; use --engine memory for the rest.")


def name_list(text: str | None) -> list[str]:
    """``a, b`` as a list of names, blanks dropped."""
    return [v.strip() for v in text.split(",") if v.strip()] if text else []


def dates_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Date columns as ``YYYY-MM-DD`` (times to the second where they have one), for printing and JSON."""
    frame = frame.copy()
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            values = frame[column]
            dated = (values.dropna() == values.dropna().dt.normalize()).all()
            frame[column] = values.dt.strftime("%Y-%m-%d" if dated else "%Y-%m-%d %H:%M:%S").where(values.notna())
    return frame


def read_options(args: argparse.Namespace):
    """How the edge flags say to read the edge list (``--format``, ``--sep``, ``--comment``, ``--no-header``)."""
    from ..io import ReadOptions

    sep = None if args.sep is None else args.sep.encode().decode("unicode_escape")  # '\t' typed as two characters
    return ReadOptions(args.format, sep, args.comment, False if args.no_header else None)


def load_edges(args: argparse.Namespace, path: str):
    """The graph the edge flags describe (``--source``, ``--target``, ``--bipartite``,
    ``--directed`` and how to read the file)."""
    return load_graph(path, args.source, args.target, bipartite=args.bipartite, directed=args.directed,
                      options=read_options(args))
