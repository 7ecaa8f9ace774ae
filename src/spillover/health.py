"""Health checks of a running experiment, the ones every experimentation platform shows.

- **Sample-ratio mismatch (SRM):** are units (and clusters) split between arms as the
  design says? A chi-square goodness-of-fit test; by convention flagged below
  ``p = 0.001``, since a true mismatch (a logging bug, arms losing units at different
  rates) invalidates every comparison.
- **Balance of pre-period covariates:** standardised mean differences and a test per
  covariate, clustered by the unit of randomization (the variance kernel's CR2).
- **Contamination:** the share of treated units' edges that reach the control arm, the
  interference a design leaves in.

:func:`spillover.estimate.estimate` runs the SRM check of the analysed units on every
analysis whose exposure table carries the arms, and says so in its notes when it fails.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .errors import InputError
from .graph import SocialGraph, csr_rows
from .variance import ols

__all__ = ["SRM_THRESHOLD", "Check", "contamination", "covariate_balance", "sample_ratio_mismatch"]

SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class Check:
    """One health check: its ``name``, test ``statistic``, ``p_value``, whether it is
    ``flagged``, and a one-line ``detail`` a person can act on.

    Examples
    --------
    >>> check = sample_ratio_mismatch({0: 5_000, 1: 5_100}, {0: 0.5, 1: 0.5})
    >>> check.name, check.flagged
    ('sample ratio (units)', False)
    """

    name: str
    statistic: float
    p_value: float
    flagged: bool
    detail: str

    def to_dict(self) -> dict:
        """The check as a dict (the ``--json`` ``health`` entries)."""
        return asdict(self)


def sample_ratio_mismatch(counts: Mapping[int, int], shares: Mapping[int, float], *, what: str = "units",
                          threshold: float = SRM_THRESHOLD) -> Check:
    """Chi-square test that ``counts`` per arm follow the design's ``shares``.

    Examples
    --------
    >>> sample_ratio_mismatch({0: 49_000, 1: 51_000}, {0: 0.5, 1: 0.5}).flagged   # a 2% imbalance
    True
    """
    arms = sorted(set(counts) | set(shares))
    observed = np.array([counts.get(arm, 0) for arm in arms], dtype=float)
    expected_share = np.array([shares.get(arm, 0.0) for arm in arms], dtype=float)
    if observed.sum() == 0 or expected_share.sum() <= 0:
        raise InputError(f"sample ratio ({what}): no {what} to count.")
    expected = observed.sum() * expected_share / expected_share.sum()
    if ((expected == 0) & (observed > 0)).any():
        arm = arms[int(np.flatnonzero((expected == 0) & (observed > 0))[0])]
        return Check(f"sample ratio ({what})", float("inf"), 0.0, True,
                     f"arm {arm} has {what} but the design gives it none")
    keep = expected > 0
    chi2 = float(np.sum((observed[keep] - expected[keep]) ** 2 / expected[keep]))
    df = int(keep.sum()) - 1
    p = float(stats.chi2.sf(chi2, df)) if df > 0 else 1.0
    shares_seen = ", ".join(f"arm {a}: {o / observed.sum():.2%} (expected {e / observed.sum():.2%})"
                            for a, o, e in zip(arms, observed, expected))
    flagged = p < threshold
    detail = (f"{what} per arm do not follow the design (p = {p:.2g}): {shares_seen}; find where units are lost or "
              "added before trusting any estimate") if flagged else f"{what} per arm as designed: {shares_seen}"
    return Check(f"sample ratio ({what})", chi2, p, flagged, detail)


def covariate_balance(frame: pd.DataFrame, covariates: Sequence[str], *, arm_col: str = "arm",
                      cluster_col: str | None = None, threshold: float = 0.01) -> pd.DataFrame:
    """Balance of pre-period covariates between arm 1 and arm 0: the means, the
    standardised mean difference (pooled sd) and the p-value of the difference, with
    CR2 errors clustered by ``cluster_col`` (units when None).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"arm": np.tile([0, 1], 500), "usage": rng.normal(size=1_000)})
    >>> table = covariate_balance(frame, ["usage"])
    >>> table.columns.tolist(), bool(table["flagged"].iloc[0])
    (['covariate', 'mean_control', 'mean_treated', 'smd', 'p_value', 'flagged'], False)
    """
    missing = [c for c in [arm_col, *covariates, *([cluster_col] if cluster_col else [])] if c not in frame.columns]
    if missing:
        raise InputError(f"balance: missing column(s) {missing}; the table has {list(frame.columns)}.")
    data = frame[frame[arm_col].isin([0, 1])]
    z = (data[arm_col].to_numpy() == 1).astype(float)
    clusters = data[cluster_col].to_numpy() if cluster_col else np.arange(len(data))
    X = np.column_stack([np.ones(z.size), z])
    rows = []
    for name in covariates:  # a loop over covariates; each regression is vectorised
        x = data[name].to_numpy(dtype=float)
        fit = ols(x, X, clusters)
        _, _, _, p = fit.interval(1)
        treated, control = x[z == 1], x[z == 0]
        pooled = np.sqrt((treated.var(ddof=1) + control.var(ddof=1)) / 2)
        smd = (treated.mean() - control.mean()) / pooled if pooled > 0 else 0.0
        rows.append({"covariate": name, "mean_control": control.mean(), "mean_treated": treated.mean(),
                     "smd": float(smd), "p_value": float(p), "flagged": bool(p < threshold)})
    return pd.DataFrame(rows)


def contamination(graph: SocialGraph, arms: np.ndarray) -> float:
    """The share of treated units' edges that end at a control unit (arm 0): the
    interference the design leaves between arms (0 for a perfect cluster design).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from spillover import SocialGraph
    >>> g = SocialGraph.from_edges(pd.DataFrame({"source": [0, 1, 2], "target": [1, 2, 3]}))
    >>> contamination(g, np.array([1, 1, 0, 0]))                 # edge 1-2 crosses: 1 of 3 treated edge ends
    0.3333333333333333
    """
    adjacency = graph.symmetric()
    arms = np.asarray(arms)
    if arms.size != adjacency.shape[0]:
        raise InputError(f"contamination: {arms.size} arms for {adjacency.shape[0]} units.")
    rows = csr_rows(adjacency)
    from_treated = arms[rows] >= 1
    if not from_treated.any():
        return 0.0
    return float(np.mean(arms[adjacency.indices[from_treated]] == 0))
