"""Errors and warnings of spillover.

Every input problem raises a subclass of :class:`SpilloverError` (a ``ValueError``) whose
message names the file or column, the offending value or row, and what to do. Statistical
red flags are warnings of class :class:`SpilloverWarning`, so a pipeline can turn them into
errors with ``warnings.simplefilter("error", SpilloverWarning)``.
"""

from __future__ import annotations

__all__ = ["FEW_CLUSTERS", "DataWarning", "DesignError", "EmptyConditionWarning", "EngineError", "FewClustersWarning",
           "InputError", "InterferenceWarning", "LedgerError", "PositivityWarning", "SampleRatioWarning", "SmallConditionWarning",
           "SpilloverError", "SpilloverWarning", "TooManyPairsError"]


class SpilloverError(ValueError):
    """Base class of every error spillover raises on purpose.

    Examples
    --------
    >>> issubclass(SpilloverError, ValueError)             # catch it as a ValueError too
    True
    """


class InputError(SpilloverError):
    """A table, column or value given to spillover is unusable as it is.

    Examples
    --------
    >>> from spillover import read_table
    >>> try:
    ...     read_table("no-such-file.csv", what="edges")
    ... except InputError as error:
    ...     print(error)
    edges: file 'no-such-file.csv' does not exist.
    """


class TooManyPairsError(InputError):
    """The design-based variance would store more dependent pairs than allowed
    (``max_pairs``, ``--max-pairs``): ``n_pairs`` and ``max_pairs`` say by how much.

    Examples
    --------
    >>> error = TooManyPairsError("too many pairs", n_pairs=10, max_pairs=5)
    >>> isinstance(error, InputError), error.n_pairs > error.max_pairs
    (True, True)
    """

    def __init__(self, message: str, *, n_pairs: int, max_pairs: int) -> None:
        super().__init__(message)
        self.n_pairs, self.max_pairs = n_pairs, max_pairs


class DesignError(SpilloverError):
    """A design cannot be run with the parameters or units given.

    Examples
    --------
    >>> from spillover.design import ClusterDesign
    >>> try:
    ...     ClusterDesign(clusters=[0, 0, 0], units=["a", "b", "c"])
    ... except DesignError as error:
    ...     print(str(error).split(";")[0])
    cluster design: 1 cluster(s)
    """


class LedgerError(SpilloverError):
    """The assignment ledger refuses an operation that would corrupt its history.

    Examples
    --------
    >>> from spillover.ledger import as_date
    >>> try:
    ...     as_date("23/11/2026")
    ... except LedgerError as error:
    ...     print(error)
    date '23/11/2026' is not a YYYY-MM-DD date.
    """


class EngineError(SpilloverError):
    """The engine could not run the step as configured (memory, Java, Spark).

    Examples
    --------
    >>> from spillover.engines import get_engine
    >>> try:
    ...     get_engine("duckdb", memory_limit="lots")
    ... except SpilloverError as error:                      # an InputError: the setting is not a size
    ...     print(error)
    --memory-limit 'lots' is not a size such as 4GB or 512MB.
    """


class SpilloverWarning(UserWarning):
    """Base class of spillover's statistical and data-quality warnings.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", SpilloverWarning)    # a pipeline that must stop on any red flag
    ...     try:
    ...         warnings.warn("cut 40% of edges", InterferenceWarning)
    ...     except InterferenceWarning as caught:
    ...         print(caught)
    cut 40% of edges
    """


class DataWarning(SpilloverWarning):
    """Input was repaired (self-loops dropped, duplicates collapsed): check it is expected.

    Examples
    --------
    >>> import warnings, pandas as pd
    >>> from spillover import SocialGraph
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     graph = SocialGraph.from_edges(pd.DataFrame({"source": [1, 1, 2], "target": [2, 2, 3]}))
    >>> graph.n_edges, caught[0].category.__name__
    (2, 'DataWarning')
    """


class InterferenceWarning(SpilloverWarning):
    """The clustering leaves much interference between clusters.

    Examples
    --------
    >>> import warnings
    >>> from spillover import cluster, synth
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = cluster(synth.social_graph(1_000, seed=1), "3net", seed=1)
    >>> any(w.category is InterferenceWarning for w in caught)
    True
    """


class PositivityWarning(SpilloverWarning):
    """Some units have (almost) no chance of an exposure condition under the design.

    Examples
    --------
    >>> issubclass(PositivityWarning, SpilloverWarning)
    True
    """


# below this many clusters a cluster-robust standard error is unreliable (Cameron & Miller 2015)
FEW_CLUSTERS = 30


class FewClustersWarning(SpilloverWarning):
    """Too few clusters for a trustworthy cluster-robust standard error.

    Examples
    --------
    >>> issubclass(FewClustersWarning, SpilloverWarning)
    True
    """


class EmptyConditionWarning(SpilloverWarning):
    """An exposure condition has no units, so its contrast cannot be estimated.

    Examples
    --------
    >>> issubclass(EmptyConditionWarning, SpilloverWarning)
    True
    """


class SampleRatioWarning(SpilloverWarning):
    """Units (or clusters) per arm do not follow the design: a sample-ratio mismatch.

    Examples
    --------
    >>> from spillover.health import sample_ratio_mismatch
    >>> sample_ratio_mismatch({0: 520, 1: 480}, {0: 0.5, 1: 0.5}).flagged      # within chance
    False
    """


class SmallConditionWarning(SpilloverWarning):
    """Few units in a compared condition: a normal interval may cover less than promised.

    Examples
    --------
    >>> issubclass(SmallConditionWarning, SpilloverWarning)
    True
    """


def show_id(value: object) -> str:
    """An id as a message shows it: ``10`` or ``'a'``, never ``np.int64(10)``.

    >>> import numpy as np
    >>> show_id(np.int64(10)), show_id("a")
    ('10', "'a'")
    """
    item = getattr(value, "item", None)
    return repr(item() if callable(item) and getattr(value, "ndim", None) == 0 else value)
