"""Errors and warnings of spillover.

Every input problem raises a subclass of :class:`SpilloverError` (a ``ValueError``) whose
message names the file or column, the offending value or row, and what to do. Statistical
red flags are warnings of class :class:`SpilloverWarning`, so a pipeline can turn them into
errors with ``warnings.simplefilter("error", SpilloverWarning)``.
"""

from __future__ import annotations


class SpilloverError(ValueError):
    """Base class of every error spillover raises on purpose."""


class InputError(SpilloverError):
    """A table, column or value given to spillover is unusable as it is."""


class DesignError(SpilloverError):
    """A design cannot be run with the parameters or units given."""


class LedgerError(SpilloverError):
    """The assignment ledger refuses an operation that would corrupt its history."""


class EngineError(SpilloverError):
    """The engine could not run the step as configured (memory, Java, Spark)."""


class SpilloverWarning(UserWarning):
    """Base class of spillover's statistical and data-quality warnings."""


class DataWarning(SpilloverWarning):
    """Input was repaired (self-loops dropped, duplicates collapsed): check it is expected."""


class InterferenceWarning(SpilloverWarning):
    """The clustering leaves much interference between clusters."""


class PositivityWarning(SpilloverWarning):
    """Some units have (almost) no chance of an exposure condition under the design."""


class FewClustersWarning(SpilloverWarning):
    """Too few clusters for a trustworthy cluster-robust standard error."""


class EmptyConditionWarning(SpilloverWarning):
    """An exposure condition has no units, so its contrast cannot be estimated."""


class SmallConditionWarning(SpilloverWarning):
    """Few units in a compared condition: a normal interval may cover less than promised."""


def show_id(value: object) -> str:
    """An id as a message shows it: ``10`` or ``'a'``, never ``np.int64(10)``.

    >>> import numpy as np
    >>> show_id(np.int64(10)), show_id("a")
    ('10', "'a'")
    """
    item = getattr(value, "item", None)
    return repr(item() if callable(item) and getattr(value, "ndim", None) == 0 else value)
