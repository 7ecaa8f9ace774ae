"""What the command line is before any command runs: its commands and their one-line
help, and the parser classes every command's parser uses. Importing this module imports
nothing but argparse, so ``spillover --version`` and ``spillover --help`` answer at once."""

from __future__ import annotations

import argparse

__all__ = ["COMMANDS", "HelpFormatter", "OneLineParser", "top_parser"]

#: every command, in the order ``--help`` lists them (the pipeline's), with its one-line help
COMMANDS = {
    'demo': 'run the whole pipeline on built-in synthetic data and write an HTML report',
    'synth': "write example inputs: a social graph's edges, daily membership snapshots, or outcomes with a known effect for an assignment",
    'plan': 'before the experiment: the ICC, design effect, minimum detectable effect and interference bias of each candidate design, from your own outcome history',
    'cluster': 'cluster a graph into randomization units',
    'assign': 'randomize units into arms',
    'exposure': "map each unit's exposure from the assignment and the graph",
    'estimate': 'estimate direct, indirect and total effects with standard errors and intervals',
    'simulate': 'compare designs, or estimators of the global effect, on simulated experiments with a known effect',
    'evolve': "apply one day's graph snapshot to the ledger, keeping every unit's arm",
    'ledger': 'read what a ledger recorded (show, history, export) or void a day, with an audit row',
    'init': 'write a commented experiment file to start from',
    'validate': 'check an experiment file, and check it against the data',
    'run': 'run one day of an experiment: ledger, exposure, estimate, results; idempotent',
    'report': 'build one HTML page over all days of an experiment so far',
}


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


def top_parser(version: str) -> OneLineParser:
    """The parser of ``spillover`` itself: ``--version``, ``--help`` and the list of commands
    (each command's own options are built only when it runs).

    >>> top_parser("0.1.0").parse_args(["demo"]).command
    'demo'
    """
    parser = OneLineParser(prog="spillover", formatter_class=HelpFormatter,
                           description="Design and analyse randomized experiments on networks, where SUTVA fails.")
    parser.add_argument("--version", action="version", version=f"spillover {version}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)
    for name, text in COMMANDS.items():
        commands.add_parser(name, help=text, add_help=False)
    return parser
