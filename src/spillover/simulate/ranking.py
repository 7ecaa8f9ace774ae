"""How a simulation study judges and ranks what it compared (designs, estimators,
marketplace designs): the coverage floor below which intervals are flagged, and the
rule that recommends one row. One rule for every study the command line prints.

Examples
--------
>>> import pandas as pd
>>> table = pd.DataFrame({"design": ["a", "b"], "bias": [0.0, 0.0], "sd": [0.1, 0.1], "rmse": [0.1, 0.1],
...                       "coverage": [0.80, 0.95], "ci_width": [0.2, 0.4], "n_sims": [400, 400]})
>>> interval_verdicts(table).tolist()
['UNDER-COVERS', 'ok']
>>> recommend(table, ["design"])["design"].iloc[0]
'b'
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

#: below this coverage of its 95% intervals a row is flagged and never recommended
COVERAGE_FLOOR = 0.93


def interval_verdicts(table: pd.DataFrame) -> pd.Series:
    """Per row: ``ok``; ``UNDER-COVERS`` where the coverage is below :data:`COVERAGE_FLOOR`;
    ``no interval`` where no experiment printed one (``coverage`` missing)."""
    return pd.Series(np.select([table["coverage"].isna(), table["coverage"] < COVERAGE_FLOOR],
                               ["no interval", "UNDER-COVERS"], "ok"), index=table.index)


def recommend(table: pd.DataFrame, names: Sequence[str], level: float = 0.95, what: str = "design") -> pd.DataFrame:
    """One row: the ``names`` columns of the row to run, and why.

    A row is *honest* when its bias is within two Monte Carlo standard errors of zero
    (``2 sd / sqrt(n_sims)``) and its coverage is not below ``level`` by more than two
    Monte Carlo standard errors, nor below :data:`COVERAGE_FLOOR`, and every experiment
    printed an interval (a ``no_interval`` share of 0, where the table has one). The
    recommendation is the honest row with the narrowest intervals (``ci_width``: the most
    power); if none is honest, the one with the smallest RMSE, flagged. More simulated
    experiments make the test of bias sharper."""
    floor = level - 2 * np.sqrt(level * (1 - level) / table["n_sims"])
    unbiased = table["bias"].abs() <= 2 * table["sd"] / np.sqrt(table["n_sims"])
    complete = table["no_interval"] == 0 if "no_interval" in table else True
    honest = table[(table["coverage"] >= np.maximum(floor, COVERAGE_FLOOR)) & unbiased & complete]
    if len(honest):
        row = honest.loc[honest["ci_width"].idxmin()]
        reason = (f"narrowest intervals ({row['ci_width']:.4g}) among {what}s without detectable bias and with "
                  f"coverage within Monte Carlo error of {level:.0%}")
    else:
        row = table.loc[table["rmse"].idxmin()]
        reason = (f"no {what} is free of detectable bias with {level:.0%} coverage: smallest RMSE, but its "
                  "intervals cannot be trusted")
    keys = list(names) + [c for c in ("coverage", "ci_width", "bias", "power") if c in table]
    return pd.DataFrame([{**{k: row[k] for k in keys}, "reason": reason}])
