"""``spillover <stage> ...``: one command per pipeline stage, plus ``spillover demo``.

The flags, output columns and ``--json`` keys are a public contract
(``shared/INTERFACE.md``). Tables go to stdout; progress and warnings go to stderr, so
``--json`` output is one JSON object on stdout and nothing else.

The modules: :mod:`~spillover.cli.parser` (every command's flags),
:mod:`~spillover.cli.main` (the entry point), and the commands by stage
(:mod:`~spillover.cli.units`, :mod:`~spillover.cli.analysis`, :mod:`~spillover.cli.daily`).
"""

from .main import main


def __getattr__(name: str):
    if name == "build_parser":  # the full parser imports every command's choices: only when asked
        from .parser import build_parser

        return build_parser
    raise AttributeError(name)


__all__ = ["build_parser", "main"]
