"""Always-valid intervals for an experiment analysed every day: a confidence sequence
that covers the effect on every day at once with probability at least ``1 - alpha``, so
stopping on the first day it excludes zero is safe.

The daily estimate behind it pools the days so far: each user's mean outcome over the
days they were analysed (same arm throughout, never contaminated), regressed on their arm
by :func:`spillover.estimate.estimate` with the experiment's method and cluster-robust
variance, clustered by *lineage* (users who ever shared a component, through merges and
splits: the widest unit whose outcomes are correlated). With ``se_t`` its standard error
on day ``t``, the band is the normal-mixture boundary of Robbins, the asymptotic
confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas (2023, "Time-uniform
central limit theory and asymptotic confidence sequences"), in information time
``I_t = 1 / se_t^2``::

    estimate_t +- se_t * sqrt((1 + r_t) / r_t * (2 log(1 / alpha) + log(1 + r_t))),  r_t = tau2 * I_t

``tau2`` is fixed on the first day with outcomes, so that the band is tightest at the
planned end of the experiment (``duration_days``), assuming information grows with the
number of days: ``tau2 = r* se_1^2 d_1 / T`` with ``r* = 2 log(1/alpha) + log(1 + 2
log(1/alpha))``, the minimiser of the width at ``r = r*`` (Waudby-Smith et al., section
3.4). The band reported is the running intersection of the days' bands (also always
valid), so it never widens.

What it assumes: the pooled estimate is approximately normal and its path behaves like a
Gaussian process with independent increments in information time (the canonical joint
distribution of group-sequential designs: true when days add independent information,
approximately when user effects persist); ``docs/experiment.md`` reports the A/A
calibration of the whole daily job.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .ledger import Ledger

__all__ = ["INFERENCE", "added_up", "best_ratio", "calibrate", "carry", "days_to_detection", "half_width",
           "lineage_clusters", "lineage_codes", "lineage_table", "look", "pooled_outcomes", "pooled_table", "sequence",
           "summary", "tuning"]

#: The daily job's inference rules: ``sequential`` (always valid, the default for a job that
#: reports daily) and ``fixed`` (one look at the planned end).
INFERENCE = ("sequential", "fixed")


def best_ratio(alpha: float) -> float:
    """``r* = 2 log(1/alpha) + log(1 + 2 log(1/alpha))``: the ``tau2 I`` at which the
    mixture boundary is tightest.

    Examples
    --------
    >>> round(best_ratio(0.05), 3)
    7.936
    """
    a = 2.0 * math.log(1.0 / alpha)
    return a + math.log1p(a)


def half_width(se: np.ndarray | float, tau2: float, alpha: float, df: np.ndarray | float = np.inf) -> np.ndarray:
    """The confidence sequence's half-width on a day whose estimate has standard error
    ``se`` (mixing variance ``tau2``). With ``df`` (the variance estimate's degrees of
    freedom, e.g. Bell-McCaffrey's for CR2) the boundary's multiple of ``se`` is taken at
    the same tail probability of t(df) rather than the normal: a cluster-robust ``se``
    from few effective clusters is noisy, and the normal boundary would under-cover (the
    same correction a fixed interval makes with t quantiles).

    Examples
    --------
    >>> se = 0.1
    >>> tau2 = best_ratio(0.05) * se**2          # tightest at this se
    >>> round(float(half_width(se, tau2, 0.05) / se), 3)   # in units of se; a fixed interval is 1.96
    3.035
    >>> round(float(half_width(se, tau2, 0.05, df=10) / se), 3)   # wider with a noisy se
    4.029
    """
    from scipy import special

    se, df = np.broadcast_arrays(np.asarray(se, dtype=float), np.asarray(df, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = tau2 / se**2
        multiple = np.sqrt((1.0 + r) / r * (2.0 * math.log(1.0 / alpha) + np.log1p(r)))
        finite = np.isfinite(df) & (df > 0)
        tail = special.ndtr(-multiple)  # the normal boundary's one-sided tail probability
        multiple = np.where(finite, -special.stdtrit(np.where(finite, df, 1.0), tail), multiple)
        return se * multiple


def tuning(se_first: float, days_first: int, planned_days: int, alpha: float) -> float:
    """``tau2`` from the first look (standard error ``se_first`` on ``days_first`` days of
    outcomes) so the band is tightest after ``planned_days``: information taken to grow
    with the days.

    Examples
    --------
    >>> tau2 = tuning(0.3, 1, 30, 0.05)
    >>> se_end = 0.3 / 30 ** 0.5                 # the standard error after 30 days
    >>> round(tau2 / se_end**2, 3) == round(best_ratio(0.05), 3)
    True
    """
    if not (se_first > 0 and math.isfinite(se_first)):
        raise ValueError(f"the first look's standard error {se_first} must be positive and finite.")
    return best_ratio(alpha) * se_first**2 * days_first / max(planned_days, days_first)


def days_to_detection(effect: float, se_end: np.ndarray | float, planned_days: int, *, alpha: float = 0.05,
                      power: float = 0.8, df: np.ndarray | float = np.inf, horizon: int | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """How long the always-valid band takes to exclude zero for a true ``effect``, for a
    design whose estimate will have standard error ``se_end`` after ``planned_days``,
    information growing with the days (``se_t = se_end sqrt(T / t)``) and the band tuned
    to ``planned_days`` (:func:`tuning`). Returns two day counts: the first day on which
    the band excludes zero with probability one half (the median day of detection is at
    most this: the band may have excluded zero earlier), and the first day it does with
    probability ``power``; NaN where that takes more than ``horizon`` days (default four
    times the plan).

    Examples
    --------
    >>> median, sure = days_to_detection(0.3, 0.08, 30)
    >>> int(median[0]), int(sure[0])        # the fixed interval on day 30 would detect 0.224 with power 0.8
    (20, 33)
    >>> days_to_detection(0.01, 0.08, 30)[0].tolist()       # an effect too small for 120 days
    [nan]
    """
    from scipy import special

    se_end = np.atleast_1d(np.asarray(se_end, dtype=float))
    df = np.broadcast_to(np.asarray(df, dtype=float), se_end.shape)
    horizon = horizon or 4 * planned_days
    days = np.arange(1, horizon + 1, dtype=float)[:, None]
    se_t = se_end[None, :] * np.sqrt(planned_days / days)
    tau2 = best_ratio(alpha) * se_end**2
    width = half_width(se_t, tau2[None, :], alpha, df[None, :])
    z = special.ndtri(power)
    out = []
    for needed in (width, width + z * se_t):  # the estimate is centred on the effect, with sd se_t
        reached = abs(effect) >= needed
        first = np.where(reached.any(axis=0), reached.argmax(axis=0) + 1.0, np.nan)
        out.append(first)
    return out[0], out[1]


def sequence(estimates: np.ndarray, ses: np.ndarray, tau2: float, alpha: float,
             df: np.ndarray | float = np.inf) -> pd.DataFrame:
    """Each look's band (``cs_low, cs_high``) and the running intersection up to it
    (``band_low, band_high``, the one reported).

    Examples
    --------
    >>> table = sequence(np.array([0.5, 0.2, 0.3]), np.array([0.4, 0.28, 0.23]), tuning(0.4, 1, 3, 0.05), 0.05)
    >>> bool((table["band_high"] - table["band_low"]).is_monotonic_decreasing)
    True
    """
    estimates, ses = np.asarray(estimates, dtype=float), np.asarray(ses, dtype=float)
    half = half_width(ses, tau2, alpha, df)
    low, high = estimates - half, estimates + half
    return pd.DataFrame({"cs_low": low, "cs_high": high, "band_low": np.fmax.accumulate(np.nan_to_num(low, nan=-np.inf)),
                         "band_high": np.fmin.accumulate(np.nan_to_num(high, nan=np.inf))})


def lineage_clusters(components: pd.DataFrame) -> pd.Series:
    """Each user's lineage: users linked through any component they shared on any day
    (``components``: ``unit_id, component, date`` rows), as a dense code by unit id
    (:func:`lineage_codes` on the table).

    Examples
    --------
    >>> rows = pd.DataFrame({"unit_id": [1, 2, 3, 2, 3, 4], "component": ["a", "a", "b", "c", "c", "d"],
    ...                      "date": ["d1"] * 3 + ["d2"] * 3})
    >>> lineage_clusters(rows).tolist()          # 1 and 2 shared a; 2 and 3 later shared c
    [0, 0, 0, 1]
    """
    import duckdb

    con = duckdb.connect()
    con.register("lineage_rows", components[["unit_id", "component", "date"]])
    by_text = lineage_codes(con, "lineage_rows")
    index = pd.Index(components.drop_duplicates("unit_id")["unit_id"].to_numpy())
    return pd.Series(by_text.reindex(index.astype(str)).to_numpy(), index=index, name="cluster_id")


def lineage_codes(con, relation: str) -> pd.Series:
    """Each user's lineage from the ``unit_id, component, date`` rows of ``relation`` in
    DuckDB connection ``con``, indexed by unit id as text: lineages are the connected
    components of users and the (component, day) pairs they were in, found in SQL (each
    pair a star on its smallest user), numbered by their smallest unit id as text. Memory
    stays in DuckDB however many days the experiment has run."""
    table = lineage_table(con, relation)
    frame = con.execute(f"SELECT unit_id, dense_rank() OVER (ORDER BY lineage) - 1 AS code FROM {table}").df()
    return pd.Series(frame["code"].to_numpy(dtype=np.int64), index=pd.Index(frame["unit_id"]), name="cluster_id")


def lineage_table(con, relation: str, out: str = "lineage") -> str:
    """:func:`lineage_codes` as a temporary table ``out`` of ``con``: ``unit_id, lineage``
    (the lineage's smallest unit id, both as text). Returns its name.

    Examples
    --------
    >>> import duckdb
    >>> con = duckdb.connect()
    >>> rows = pd.DataFrame({"unit_id": [1, 2, 3, 2, 3, 4], "component": ["a", "a", "b", "c", "c", "d"],
    ...                      "date": ["d1"] * 3 + ["d2"] * 3})
    >>> con.register("rows", rows)  # doctest: +ELLIPSIS
    <...>
    >>> con.execute(f"SELECT * FROM {lineage_table(con, 'rows')} ORDER BY unit_id").fetchall()
    [('1', '1'), ('2', '1'), ('3', '1'), ('4', '4')]
    """
    from .engines import sql
    from .engines.duck import propagate_labels

    con.execute(f"""CREATE OR REPLACE TEMP TABLE lin_units AS SELECT unit_id, row_number() OVER (ORDER BY unit_id) - 1 AS v
                    FROM (SELECT DISTINCT CAST(unit_id AS VARCHAR) AS unit_id FROM {relation})""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE lin_pairs AS
        SELECT u.v, dense_rank() OVER (ORDER BY CAST(x.component AS VARCHAR), CAST(x.date AS VARCHAR)) AS g
        FROM {relation} x JOIN lin_units u ON CAST(x.unit_id AS VARCHAR) = u.unit_id""")
    con.execute(f"CREATE OR REPLACE TEMP TABLE lin_edges AS {sql.stars('lin_pairs', 'g', 'v')}")
    propagate_labels(con, "SELECT v FROM lin_units", edges="lin_edges", out="lin_label")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {out} AS
                    SELECT u.unit_id, min(u.unit_id) OVER (PARTITION BY x.l) AS lineage
                    FROM lin_units u JOIN lin_label x ON u.v = x.v""")
    for table in ("lin_units", "lin_pairs", "lin_edges", "lin_label"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return out


def carry(ledger: "Ledger", experiment: str, state: str | None, since: Any, date: Any,
          outcomes: pd.DataFrame | None, outcome: str, out: str = "seq_state") -> str:
    """The next look's state from the last one's: ``state`` (a table of ``con`` with
    ``unit_id, lineage, y_sum, n_days, arm_low, arm_high``, the users seen up to day ``since``; None before the first look)
    joined with the component rows of the days after ``since`` up to ``date`` (the
    lineages grow by them) and ``date``'s ``outcomes`` (each analysed user's sum, count of
    days and lowest and highest arm grow by them). Written to table ``out``; its name.
    Each day adds to the sums in day order, so a state carried day by day equals one
    rebuilt from the first day, bit for bit; and memory holds one day's outcomes.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from spillover.evolve import evolve, start
    >>> from spillover.ledger import Ledger
    >>> from spillover.synth import evolving_memberships
    >>> days = evolving_memberships(300, n_days=2, seed=1)
    >>> outcomes = lambda day: pd.DataFrame({"unit_id": day["user_id"].unique(), "y": 1.0})
    >>> with tempfile.TemporaryDirectory() as folder, Ledger(pathlib.Path(folder) / "l.duckdb") as ledger:
    ...     _ = start(ledger, days[0], "2026-11-23", salt="exp", design="cluster")
    ...     _ = evolve(ledger, days[1], "2026-11-24")
    ...     first = carry(ledger, "exp", None, None, "2026-11-23", outcomes(days[0]), "y", out="first")
    ...     second = carry(ledger, "exp", first, "2026-11-23", "2026-11-24", outcomes(days[1]), "y", out="second")
    ...     ledger.connection.execute(f"SELECT max(n_days), max(y_sum) FROM {second}").fetchone()
    (2, 2.0)
    """
    from .ledger import as_date

    con = ledger.connection
    users, _ = ledger.stage_users(experiment, date)
    after = "AND date > $since" if since is not None else ""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE seq_rows AS
                    SELECT CAST(unit_id AS VARCHAR) AS unit_id, component, CAST(date AS VARCHAR) AS date
                    FROM components WHERE experiment = $e AND date <= $d {after}""",
                {"e": experiment, "d": as_date(date), **({"since": as_date(since)} if since is not None else {})})
    lineage = _grown_lineages(con, state, "seq_rows")
    ids = outcomes["unit_id"] if outcomes is not None else pd.Series(dtype=str)
    frame = pd.DataFrame({"unit_id": ids if ids.dtype.kind in "iu" else ids.astype(str),  # made text in SQL
                          "y": (outcomes[outcome] if outcomes is not None else pd.Series(dtype=float)).to_numpy(float)})
    con.register("seq_outcomes", frame)
    previous = state if state is not None else ("(SELECT NULL::VARCHAR AS unit_id, NULL::DOUBLE AS y_sum, "
                                                "NULL::INTEGER AS n_days, NULL::INTEGER AS arm_low, "
                                                "NULL::INTEGER AS arm_high WHERE false)")
    try:
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {out} AS
            WITH today AS (SELECT u.unit_id, CAST(u.arm AS INTEGER) AS arm, o.y FROM {users} u
                           JOIN seq_outcomes o ON CAST(o.unit_id AS VARCHAR) = u.unit_id
                           WHERE u.arm >= 0 AND NOT u.contaminated AND o.y IS NOT NULL AND NOT isnan(o.y))
            SELECT l.unit_id, l.lineage,
                   CASE WHEN t.unit_id IS NULL THEN p.y_sum ELSE coalesce(p.y_sum, 0.0) + t.y END AS y_sum,
                   CAST(coalesce(p.n_days, 0) + CAST(t.unit_id IS NOT NULL AS INTEGER) AS INTEGER) AS n_days,
                   least(p.arm_low, t.arm) AS arm_low, greatest(p.arm_high, t.arm) AS arm_high
            FROM {lineage} l LEFT JOIN {previous} p ON p.unit_id = l.unit_id
            LEFT JOIN today t ON t.unit_id = l.unit_id""")
    finally:
        con.unregister("seq_outcomes")
    for table in (lineage, "seq_rows"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return out


def _grown_lineages(con, state: str | None, rows: str, out: str = "seq_lineage") -> str:
    """The lineages of ``state`` (``unit_id, lineage``, or None) grown by the component
    rows ``rows`` (``unit_id, component, date`` as text), as table ``out``: each user's
    lineage, named by its smallest unit id. Only the components that join two lineages (or
    a lineage and a new user) are walked (:func:`lineage_table` on them, with each lineage
    standing for its users); every other user keeps its lineage. The same partition and
    names as :func:`lineage_table` over every day's rows, from one day's."""
    carried = (f"SELECT unit_id, lineage AS label FROM {state} UNION ALL "
               f"SELECT DISTINCT r.unit_id, r.unit_id FROM {rows} r ANTI JOIN {state} s ON s.unit_id = r.unit_id"
               if state is not None else f"SELECT DISTINCT unit_id, unit_id AS label FROM {rows}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE seq_labels AS {carried}")  # a new user stands for itself
    con.execute(f"""CREATE OR REPLACE TEMP TABLE seq_links AS
        SELECT label AS unit_id, component, date FROM (SELECT DISTINCT r.component, r.date, l.label FROM {rows} r
                                                       JOIN seq_labels l ON l.unit_id = r.unit_id)
        QUALIFY count(*) OVER (PARTITION BY component, date) > 1""")
    merged = lineage_table(con, "seq_links", out="seq_merged")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {out} AS SELECT l.unit_id, coalesce(m.lineage, l.label) AS lineage
                    FROM seq_labels l LEFT JOIN {merged} m ON m.unit_id = l.label""")
    for table in ("seq_labels", "seq_links", merged):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return out


def pooled_table(ledger: "Ledger", experiment: str, state: str) -> pd.DataFrame:
    """The users a look analyses from a carried ``state`` (:func:`carry`): those with
    outcomes on at least one day and one arm throughout, with their mean outcome over
    those days (``y``), ``n_days``, ``arm`` and lineage (``cluster_id``, dense, numbered by
    the lineage's smallest unit id), ids typed as they went in, sorted."""
    return ledger.connection.execute(f"""
        SELECT {ledger.typed_id(experiment)} AS unit_id, y_sum / n_days AS y, n_days, arm_low AS arm,
               dense_rank() OVER (ORDER BY lineage) - 1 AS cluster_id
        FROM {state} WHERE n_days > 0 AND arm_low = arm_high ORDER BY 1""").df()


def added_up(ledger: "Ledger", experiment: str, days: Iterable[tuple[Any, pd.DataFrame | None]],
             outcome: str) -> str | None:
    """The state of the last of ``days`` (each look's date and outcomes, in order), added
    up from the first by :func:`carry`: a table of the ledger's connection (None without
    days). How a state is rebuilt, and what a carried one must equal.

    Examples
    --------
    >>> added_up(None, "exp", [], "y") is None
    True
    """
    state, since = None, None
    for date, outcomes in days:  # a loop over days: a few dozen, one day's outcomes in memory
        state = carry(ledger, experiment, state, since, date, outcomes, outcome,
                      out="seq_state_b" if state == "seq_state" else "seq_state")
        since = date
    return state


def pooled_outcomes(ledger: "Ledger", experiment: str, days: Iterable[tuple[Any, pd.DataFrame]],
                    outcome: str) -> pd.DataFrame:
    """Per user over the days so far (``days``: each day's date and outcomes, read one at
    a time): the mean outcome, the number of days it averages and the arm, for the users
    analysed that day (arm 0 or more, not contaminated, in the ledger); users whose arm
    changed between days are left out (their outcomes mix arms). The days are added up in
    DuckDB beside the ledger (:func:`carry`), so memory holds one day's outcomes at a time.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from spillover import synth
    >>> from spillover.evolve import start
    >>> from spillover.ledger import Ledger
    >>> snapshot = synth.evolving_memberships(300, n_days=1, seed=1)[0]
    >>> with tempfile.TemporaryDirectory() as folder, Ledger(pathlib.Path(folder) / "l.duckdb") as ledger:
    ...     _ = start(ledger, snapshot, "2026-11-23", salt="exp", design="cluster")
    ...     users = snapshot["user_id"].unique()
    ...     day = lambda ys: pd.DataFrame({"unit_id": users, "y": ys})
    ...     pooled = pooled_outcomes(ledger, "exp", [("2026-11-23", day(1.0)), ("2026-11-24", day(3.0))], "y")
    >>> len(pooled) == len(users), pooled["y"].unique().tolist(), int(pooled["n_days"].max())
    (True, [2.0], 2)
    """
    state = added_up(ledger, experiment, days, outcome)
    if state is None:
        return pd.DataFrame({"unit_id": [], "y": [], "n_days": [], "arm": []})
    return pooled_table(ledger, experiment, state).drop(columns="cluster_id")


def look(pooled: pd.DataFrame, lineage: pd.Series | None, *, method: str, vcov: str,
         alpha: float) -> tuple[float, float, float]:
    """One look: the estimate on the users' outcomes pooled over the days so far
    (``pooled``: ``unit_id, y, arm``, :func:`pooled_outcomes`), its standard error and
    degrees of freedom, by :func:`spillover.estimate.estimate` with ``method`` and ``vcov``
    errors clustered by ``lineage`` (:func:`lineage_codes`, indexed by unit id as text; or
    None when ``pooled`` has them as ``cluster_id``, as :func:`pooled_table` gives).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> pooled = pd.DataFrame({"unit_id": range(200), "y": rng.normal(size=200) / 2**0.5, "arm": np.arange(200) % 2})
    >>> lineage = pd.Series(np.arange(200) // 4, index=[str(i) for i in range(200)])
    >>> estimate, se, df = look(pooled, lineage, method="ols-cluster", vcov="CR2", alpha=0.05)
    >>> 0.05 < se < 0.15
    True
    """
    import warnings

    from .estimate import estimate

    codes = (pooled["cluster_id"].to_numpy() if lineage is None else
             lineage.reindex(pooled["unit_id"].astype(str).to_numpy()).to_numpy())
    clusters = pd.DataFrame({"unit_id": pooled["unit_id"], "cluster_id": codes})
    exposure = pd.DataFrame({"unit_id": pooled["unit_id"], "arm": pooled["arm"],
                             "condition": np.where(pooled["arm"] >= 1, "treated", "control")})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # each day's own analysis says what there is to say
        effect = estimate(pooled[["unit_id", "y"]], exposure, method, clusters=clusters, vcov=vcov, alpha=alpha,
                          control="control", seed=0).effects[0]
    return effect.estimate, effect.se, effect.df


def summary(estimate: float, se: float, band: tuple[float, float], *, tau2: float, n_days: int,
            planned_days: int, df: float = math.inf) -> dict[str, Any]:
    """The ``sequential`` block of a day's ``day.json``.

    >>> sorted(summary(0.2, 0.1, (0.0, 0.4), tau2=0.01, n_days=3, planned_days=30))[:3]
    ['band_high', 'band_low', 'df']
    """
    return {"estimate": estimate, "se": se, "df": df, "band_low": band[0], "band_high": band[1], "tau2": tau2,
            "n_days": n_days, "planned_days": planned_days}


def calibrate(folder: str | Path, *, n_users: int = 2_000, n_days: int = 30, n_salts: int = 10, n_draws: int = 50,
              effect: float = 0.0, alpha: float = 0.05, seed: int = 0, s_user: float = 0.5,
              s_component: float = 0.5, s_noise: float = 1.0,
              snapshots: list[pd.DataFrame] | None = None) -> pd.DataFrame:
    """The daily job's two rules on simulated experiments: ``n_salts`` runs of the job on
    ``n_days`` daily membership snapshots (``snapshots``, or by default the example's, of
    ``n_users`` users: churn, merges, splits; each salt a new assignment, recorded by the
    job's own ledger), each with ``n_draws`` draws
    of daily outcomes ``effect * treated + user effect (sd s_user, lasting) + component
    effect (sd s_component, new each day) + noise (sd s_noise)``. Both rules are computed
    as the job computes them, through the one variance kernel (CR2, clusters: the day's
    components for the daily interval, lineages for the pooled band).

    One row per simulated experiment: whether the fixed daily interval ever excluded 0
    (``ever_fixed``) and on which day first (``day_fixed``), the same for the always-valid
    band (``ever_sequential``, ``day_sequential``), and whether the last day's band covers
    ``effect``. Under ``effect = 0`` the share of ``ever_sequential`` must be at most
    ``alpha`` (within Monte Carlo error).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     table = calibrate(folder, n_users=600, n_days=4, n_salts=1, n_draws=5)
    >>> len(table), sorted(table.columns)[:3]
    (5, ['covered_end', 'day_fixed', 'day_sequential'])
    """
    import dataclasses

    from . import synth
    from .daily import run_pending
    from .experiment import EXAMPLE, load_config
    from .ledger import Ledger
    from .variance import ols

    folder = Path(folder)
    path = folder / "experiment.toml"
    if snapshots is None:
        snapshots = synth.evolving_memberships(n_users, n_days, seed=seed)
    n_days = len(snapshots)
    path.write_text(EXAMPLE.replace("duration_days = 30", f"duration_days = {n_days}"), encoding="utf-8")
    base = load_config(path)
    for day, frame in enumerate(snapshots):
        target = base.input_for(base.memberships, dt.date(2026, 11, 1) + dt.timedelta(days=day))
        target.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(target)
    rng = np.random.default_rng(seed)
    rows = []
    for salt in range(n_salts):  # a loop over assignments: each a run of the daily job
        config = dataclasses.replace(base, name=f"calibration-{salt}", salt=f"calibration-{salt}", outcomes=None)
        run_pending(config)
        with Ledger(config.ledger_path) as ledger:
            dates = list(ledger.checksums(config.name))
            days = []
            for date in dates:  # a loop over days
                users, _ = ledger.users_on(config.name, date)
                users = users[(users["arm"] >= 0) & ~users["contaminated"]].reset_index(drop=True)
                days.append((users, lineage_codes(ledger.connection, ledger.stage_history(config.name, date))))
        rows += _simulate_rules(days, rng, n_draws, effect, alpha, n_days, s_user, s_component, s_noise, ols)
    return pd.DataFrame(rows)


def _simulate_rules(days, rng, n_draws, effect, alpha, n_days, s_user, s_component, s_noise, ols) -> list[dict]:
    """Both rules on ``n_draws`` outcome draws over one assignment's days (all draws at
    once: the kernel takes a column per draw)."""
    ids = pd.Index(pd.concat([users["unit_id"].astype(str) for users, _ in days]).unique())
    user_effect = s_user * rng.standard_normal((len(ids), n_draws))
    total = np.zeros((len(ids), n_draws))
    count = np.zeros(len(ids))
    arm_low, arm_high = np.full(len(ids), np.iinfo(np.int64).max), np.full(len(ids), -1)
    fixed_ever = np.full(n_draws, -1)
    band_low, band_high = np.full(n_draws, -np.inf), np.full(n_draws, np.inf)
    seq_ever, tau2 = np.full(n_draws, -1), None
    for t, (users, lineage) in enumerate(days):  # a loop over days
        where = ids.get_indexer(users["unit_id"].astype(str))
        arm = users["arm"].to_numpy()
        comp_codes, comp_ids = pd.factorize(users["component"])
        y = ((effect * (arm >= 1))[:, None] + user_effect[where]
             + s_component * rng.standard_normal((len(comp_ids), n_draws))[comp_codes]
             + s_noise * rng.standard_normal((len(users), n_draws)))
        X = np.column_stack([np.ones(len(users)), (arm >= 1).astype(float)])
        fit = ols(y, np.repeat(X[:, :, None], n_draws, axis=2), comp_codes, "CR2")
        _, low, high, _ = fit.interval(1, alpha)
        fixed_ever = np.where((fixed_ever < 0) & ((low > 0) | (high < 0)), t + 1, fixed_ever)
        total[where] += y
        count[where] += 1
        arm_low[where], arm_high[where] = np.minimum(arm_low[where], arm), np.maximum(arm_high[where], arm)
        keep = (count > 0) & (arm_low == arm_high)  # the pooled users: one arm throughout
        codes, _ = pd.factorize(lineage.reindex(ids[keep]).to_numpy())
        Xp = np.column_stack([np.ones(keep.sum()), (arm_low[keep] >= 1).astype(float)])
        pooled = ols(total[keep] / count[keep, None], np.repeat(Xp[:, :, None], n_draws, axis=2), codes, "CR2")
        se = np.sqrt(pooled.cov[..., 1, 1])
        if tau2 is None:
            tau2 = np.array([tuning(s, 1, n_days, alpha) for s in se])
        half = half_width(se, tau2, alpha, pooled.df[..., 1])
        band_low = np.maximum(band_low, pooled.beta[:, 1] - half)
        band_high = np.minimum(band_high, pooled.beta[:, 1] + half)
        seq_ever = np.where((seq_ever < 0) & ((band_low > 0) | (band_high < 0)), t + 1, seq_ever)
    return [{"ever_fixed": bool(f > 0), "day_fixed": int(f) if f > 0 else None, "ever_sequential": bool(s > 0),
             "day_sequential": int(s) if s > 0 else None, "covered_end": bool(lo <= effect <= hi)}
            for f, s, lo, hi in zip(fixed_ever, seq_ever, band_low, band_high)]
