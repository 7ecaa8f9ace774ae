"""The entry point: parse, refuse what would destroy an input, run the command, and
turn our errors into one line on stderr with exit code 2."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from pathlib import Path
from typing import Sequence

from .. import __version__
from .commands import COMMANDS, top_parser

# what to do when a command runs out of memory
_MEMORY_HINT = {
    **{command: "run it out of core with --engine duckdb --memory-limit 4GB (DuckDB spills to disk beyond the "
                "limit; --engine spark for a cluster), or on a machine with more memory."
       for command in ("cluster", "assign", "exposure", "estimate")},
    None: "use a machine with more memory, or fewer units or draws (--n-draws, --n-sims); the graph steps run out of "
          "core with --engine duckdb --memory-limit 4GB.",
}


_INPUT_FLAGS = ("edges", "units", "assignment", "ledger", "outcomes", "exposure", "clusters", "draws", "snapshot",
                "memberships", "experiment")
_FOLDER_OUTPUTS = ("demo", "simulate")  # the commands whose --out is a folder


def _refuse_overwriting_inputs(args: argparse.Namespace) -> None:
    """``--out`` naming an input (the ledger, the experiment file) would destroy it; a
    file's ``--out`` that is a folder, or lies under a file, cannot be written: refuse
    all of these before any work."""
    from ..errors import InputError

    out = getattr(args, "out", None)
    if not out:
        return
    target = Path(out).resolve()
    for flag in _INPUT_FLAGS:
        value = getattr(args, flag, None)
        if isinstance(value, str) and value and Path(value).resolve() == target:
            label = "experiment file" if flag == "experiment" else f"{flag.replace('_', '-')} input"
            raise InputError(f"--out {out} is also the {label}: writing there would destroy it; choose another "
                             "output path.")
    above = next((p for p in target.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise InputError(f"--out {out} lies under '{above}', which is a file, not a folder; choose another path.")
    if target.is_dir() and args.command not in _FOLDER_OUTPUTS:
        raise InputError(f"--out {out} is a folder; name the file to write (e.g. {Path(out) / 'out.parquet'}).")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv``; returns the exit code (2 for bad input, with a one-line message).

    ``spillover --version``, ``--help`` and a mistyped command are answered by the light
    top-level parser (:func:`~spillover.cli.commands.top_parser`), importing nothing of
    the library; a command builds its own options, and imports what it needs, only when
    it runs."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or argv[0] not in COMMANDS:
            top_parser(__version__).parse_args(argv)  # prints the version or help, or refuses, and exits
        from .parser import build_parser

        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or a flag argparse refused (its one-line message is printed)
        return int(exit_.code or 0)
    from rich.markup import escape

    from ..console import show_warning, stderr
    from ..errors import SpilloverError
    from ..io import id_type

    warnings.showwarning = show_warning
    try:
        _refuse_overwriting_inputs(args)
        with id_type(getattr(args, "id_type", "auto")):
            module, name = args.func.split(":")  # the command's module, imported only now
            return int(getattr(importlib.import_module(f"{__package__}.{module}"), name)(args) or 0)
    except SpilloverError as error:
        stderr.print(f"[red]error:[/red] {escape(str(error))}", highlight=False)
        return 2
    except MemoryError:
        hint = _MEMORY_HINT.get(args.command, _MEMORY_HINT[None])
        stderr.print(f"[red]error:[/red] out of memory in `spillover {args.command}`: {hint}", highlight=False)
        return 1
