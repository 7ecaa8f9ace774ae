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

from .errors import InputError
from .graph import SocialGraph, csr_rows
from .variance import ols

__all__ = ["IMBALANCE_THRESHOLD", "SRM_THRESHOLD", "Check", "contamination", "covariate_balance", "design_balance",
           "sample_ratio_mismatch"]

SRM_THRESHOLD = 0.001
IMBALANCE_THRESHOLD = 0.05  # a realized split this unlikely under the design is worth a word, though not a bug
BALANCE_DRAWS = 10_000  # draws of the design behind the probability of a split at least as lopsided


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
    from scipy.special import chdtrc  # the chi-square survival function

    p = float(chdtrc(df, chi2)) if df > 0 else 1.0
    shares_seen = ", ".join(f"arm {a}: {o / observed.sum():.2%} (expected {e / observed.sum():.2%})"
                            for a, o, e in zip(arms, observed, expected))
    flagged = p < threshold
    detail = (f"{what} per arm do not follow the design (p = {p:.2g}): {shares_seen}; find where units are lost or "
              "added before trusting any estimate") if flagged else f"{what} per arm as designed: {shares_seen}"
    return Check(f"sample ratio ({what})", chi2, p, flagged, detail)


def design_balance(record, arms: pd.Series, clusters: pd.Series | None = None, *, seed=0,
                   n_draws: int = BALANCE_DRAWS) -> tuple[Check, ...]:
    """Are arms split as the design intended? Checked against the design's own shares
    (:class:`~spillover.design.record.DesignRecord`), not against the data's.

    ``arms`` is the assigned arm of each unit (by unit id; ``-1``: out of the
    experiment) and ``clusters`` each unit's randomization unit (for cluster designs).
    Two checks:

    - **randomization units per arm** (clusters under a cluster design): under complete
      randomization the counts are fixed, so any difference is a mismatch; under
      independent draws (a keyed hash) a chi-square test of the counts against the shares.
      Flagged below ``p = 0.001``: a bug, not chance.
    - **units per arm** when clusters of unequal size were randomized: the probability,
      over ``n_draws`` draws of the design, of a treated share of units at least as far
      from its expectation as the realized one. Flagged below ``p = 0.05``: not a bug,
      but a lopsided split that costs power and is worth knowing before reading effects.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from spillover.design import ClusterDesign
    >>> sizes = np.r_[np.full(14, 10), 300]                       # one giant cluster among 15
    >>> clusters = pd.Series(np.repeat(np.arange(15), sizes))
    >>> assignment = ClusterDesign(clusters.to_numpy(), clusters.index).assign(salt="s1")
    >>> checks = design_balance(assignment.record, pd.Series(assignment.arms), clusters)
    >>> [check.name for check in checks]
    ['sample ratio (randomization units)', 'treated share (units)']
    """
    from .design import exact_counts

    arms = pd.to_numeric(pd.Series(arms), errors="coerce").dropna().astype(np.int64)
    arms = arms[arms >= 0]
    shares = {arm: share for arm, share in record.shares.items() if arm >= 0 and share == share}
    if arms.empty or len(shares) < 2:
        return ()
    if record.clustered and clusters is not None:
        labels = pd.Series(clusters).reindex(arms.index)
        if labels.isna().any():
            return ()
        block_of, block_ids = pd.factorize(labels.to_numpy())
        first = np.zeros(len(block_ids), dtype=np.int64)
        first[block_of[::-1]] = arms.to_numpy()[::-1]
        block_arms, sizes, what = first, np.bincount(block_of), "randomization units"
    else:
        block_arms, sizes, what = arms.to_numpy(), None, "randomization units"
    counts = {int(a): int(n) for a, n in zip(*np.unique(block_arms, return_counts=True))}
    weights = np.array([shares[a] for a in sorted(shares)]) / sum(shares.values())
    checks = []
    designed = record.n_clusters if record.clustered else record.n_units
    if record.scheme == "complete" and designed and record.source == "recorded":
        # the design's exact counts, of the randomization units it had (a lost unit is a mismatch too)
        expected = dict(zip(sorted(shares), exact_counts(int(designed), weights).tolist()))
    elif record.scheme == "complete":
        expected = dict(zip(sorted(shares), exact_counts(block_arms.size, weights).tolist()))
    if record.scheme == "complete":
        differ = {a: (counts.get(a, 0), n) for a, n in expected.items() if counts.get(a, 0) != n}
        seen = ", ".join(f"arm {a}: {counts.get(a, 0)}" for a in expected)
        if differ:
            detail = (f"{what} per arm do not follow the design: it gives exactly "
                      + ", ".join(f"{n} to arm {a}" for a, n in expected.items())
                      + f" of {sum(expected.values())}; the data have {seen}. Units were lost or added: find where "
                        "before trusting any estimate")
            checks.append(Check(f"sample ratio ({what})", float("inf"), 0.0, True, detail))
        else:
            checks.append(Check(f"sample ratio ({what})", 0.0, 1.0, False, f"{what} per arm as designed ({seen})"))
    else:
        checks.append(sample_ratio_mismatch(counts, dict(zip(sorted(shares), weights)), what=what))
    if sizes is not None and np.unique(sizes).size > 1 and 0 in shares and 1 in shares:
        treated_weight = float(sum(w for a, w in zip(sorted(shares), weights) if a >= 1))
        observed = float(sizes @ (block_arms >= 1) / sizes.sum())
        centre, p, how = _lopsided(block_arms >= 1, sizes.astype(float), record.scheme == "complete", treated_weight,
                                   observed, seed, n_draws)
        flagged = p < IMBALANCE_THRESHOLD
        detail = (f"{observed:.1%} of units treated where the design expects {centre:.1%} on average: a split at least "
                  f"this lopsided has probability {p:.2g} under the design ({block_arms.size} clusters of unequal "
                  f"size; {how})" + ("; estimates stay unbiased, but the arms are unbalanced and power is lower"
                                     if flagged else ""))
        checks.append(Check("treated share (units)", abs(observed - centre), p, flagged, detail))
    return tuple(checks)


BALANCE_CELLS = 50_000_000  # draws x clusters the exact check may use: its time and memory, bounded
NORMAL_LINDEBERG = 0.01  # no cluster carries more than this share of the size variance: the normal limit holds


def _lopsided(treated: np.ndarray, sizes: np.ndarray, complete: bool, weight: float, observed: float, seed,
              n_draws: int) -> tuple[float, float, str]:
    """The expected treated share of units under the design, the probability of a share
    at least as far from it as ``observed``, and how that probability was found.

    Many clusters none of which dominates (each at most :data:`NORMAL_LINDEBERG` of the
    size variance): the finite-population normal limit, from the design's exact mean and
    variance (sampling ``treated.sum()`` clusters without replacement when ``complete``,
    independent draws with probability ``weight`` otherwise). Else draws of the design,
    in chunks (memory bounded), at most :data:`BALANCE_CELLS` cluster draws in all.

    >>> sizes = 10.0 + np.arange(1_000) % 3
    >>> centre, p, how = _lopsided(np.arange(1_000) % 2 == 0, sizes, True, 0.5, 0.5, 0, 10_000)
    >>> round(centre, 4), p > 0.9, how
    (0.5, True, 'normal limit of the design')
    """
    total, n = sizes.sum(), sizes.size
    if complete:
        k = int(treated.sum())
        mean = k / n
        deviations = (sizes - sizes.mean()) ** 2
        var = k * (n - k) / (n * (n - 1)) * deviations.sum() / total**2 if n > 1 else 0.0
    else:
        mean = weight
        deviations = sizes**2
        var = weight * (1 - weight) * deviations.sum() / total**2
    if deviations.sum() > 0 and deviations.max() <= NORMAL_LINDEBERG * deviations.sum():
        from scipy.special import ndtr

        z = abs(observed - mean) / np.sqrt(var) if var > 0 else 0.0
        return float(mean), float(min(1.0, 2 * ndtr(-z))), "normal limit of the design"
    rng = np.random.default_rng(seed)
    draws = int(min(n_draws, max(1_000, BALANCE_CELLS // max(n, 1))))
    chunk = max(1, (1 << 22) // max(n, 1))
    share = np.empty(draws)
    for start in range(0, draws, chunk):  # a loop over chunks of draws: memory bounded by the chunk
        m = min(chunk, draws - start)
        drawn = (rng.permuted(np.broadcast_to(treated, (m, n)), axis=1) if complete else rng.random((m, n)) < weight)
        share[start:start + m] = drawn @ sizes / total
    centre = float(share.mean())
    p = float((1 + np.sum(np.abs(share - centre) >= abs(observed - centre) - 1e-12)) / (1 + draws))
    return centre, p, f"{draws:,} draws of the design"


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
