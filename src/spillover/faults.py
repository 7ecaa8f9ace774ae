"""Fault injection for the kill tests: the daily job must survive being killed anywhere.

``SPILLOVER_CRASH_AT=<point>`` makes the process end at that named point as a kill would
(``os._exit``: no clean-up, no flush, no ``finally``). The points sit inside the ledger's
transaction, inside an atomic file write, and between the daily job's steps. Unset (the
normal case), :func:`crash_point` costs one environment lookup.
"""

from __future__ import annotations

import os

__all__ = ["CRASH_POINTS", "WAREHOUSE_POINTS", "crash_point"]

#: Every named point, in the order a day passes them.
CRASH_POINTS = ("ledger-before-commit", "after-ledger", "file-before-rename", "after-arms", "before-marker")
#: The points a day passes only when it is also published to a warehouse (:mod:`spillover.warehouse`).
WAREHOUSE_POINTS = ("warehouse-before-rename",)


_passed: dict[str, int] = {}


def crash_point(name: str) -> None:
    """End the process here when ``SPILLOVER_CRASH_AT`` names this point (``point`` or
    ``point:k``, the k-th time the process passes it: a kill later in a long run).

    Examples
    --------
    >>> crash_point("after-ledger")            # not asked for: nothing happens
    """
    wanted = os.environ.get("SPILLOVER_CRASH_AT")
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point == name:
        _passed[name] = _passed.get(name, 0) + 1
        if _passed[name] >= int(nth or 1):
            os._exit(137)
