"""Run an experiment for weeks from one file: ``experiment.toml``, a daily job, a report.

The file names the experiment and its salt, the daily membership snapshots (and outcomes),
the design and the analysis. ``run(config, date)`` does one day, in order: load the day's
snapshot; update components and the ledger (:func:`spillover.evolve.start` on the first
day, :func:`spillover.evolve.evolve` after; new components are assigned by the keyed
hash); map each user's exposure (their component's arm: components never share an edge,
so nothing crosses arms); estimate when the day's outcomes exist; and write
``<results>/<name>/<date>/`` with ``day.json`` last, the marker of a finished day.

A day is idempotent: the ledger refuses to rewrite a recorded day and returns it, and every
result is a pure function of the ledger and the inputs, written atomically; a job killed
anywhere in a day and run again gives byte-identical results. An earlier date than the last
recorded one is refused.

:func:`report` builds one HTML page over all days so far, with a verdict at the top.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .design import check_salt, check_spec
from .errors import InputError
from .io import read_table, write_table
from .ledger import as_date
from .sequential import INFERENCE
from .variance import VCOV_TYPES

__all__ = ["ANALYSIS_METHODS", "EXAMPLE", "ExperimentConfig", "days_table", "load_config", "report", "run",
           "validate", "verdict", "write_example_data"]

def _analysis_methods() -> tuple[str, ...]:
    """The estimators of a component-randomized experiment, read off the registry: valid
    under a cluster design comparing arms, and needing nothing but the clusters; the
    recommended one first."""
    from .estimate import ESTIMATORS, validity

    valid = [name for name, entry in ESTIMATORS.items()
             if validity(name, "cluster", "own").allowed and set(entry.needs) <= {"clusters"}]
    return tuple(sorted(valid, key=lambda name: validity(name, "cluster", "own").status != "recommended"))


ANALYSIS_METHODS = _analysis_methods()
_DESIGNS = ("cluster", "stratified-cluster", "holdout")
NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # an experiment's name: a folder name on any system

#: The commented example ``spillover init`` writes.
EXAMPLE = '''# spillover experiment file: one experiment, run one day at a time with
#   spillover run experiment.toml --date YYYY-MM-DD
# Paths are relative to this file. {date} in a path is the day being run.

[experiment]
name = "collab-launch"             # names the results folder
salt = "collab-launch-2026"        # keyed-hash salt: the same salt gives the same arms on any machine

[inputs]
memberships = "data/memberships-{date}.parquet"   # one snapshot a day: user_id, project_id, account_id[, usage]
outcomes = "data/outcomes-{date}.parquet"         # optional: unit_id and the outcome, measured up to that day

[design]                           # components (users linked through projects and accounts) are randomized whole
kind = "stratified-cluster"        # cluster | stratified-cluster | holdout
sample_fraction = 0.2              # stratified-cluster: the share of components in the experiment
arm_weights = [0.5, 0.5]           # control, treatment
strata_by = ["size", "usage"]      # component size and summed user columns
n_bins = 2                         # quantile bins per stratification variable

[analysis]
method = "ols-cluster"             # ols-cluster | cluster-means
vcov = "CR2"                       # CR2 (Bell-McCaffrey df) | CR1 | CR0
alpha = 0.05                       # intervals cover with probability 1 - alpha
outcome = "y"                      # the outcome column of the outcomes tables
higher_is_better = true            # the verdict's direction
inference = "sequential"           # sequential: always-valid bands, safe to stop on any day | fixed: one look at the end
duration_days = 30                 # the planned length: the sequential band is tightest then

[output]
folder = "results"                 # results/<name>/<date>/ and the ledger results/<name>/ledger.duckdb

[run]
engine = "memory"                  # memory | duckdb (out of core) | spark: where each day's snapshot is read and split
# memory_limit = "4GB"             # duckdb: its memory cap; it spills to disk beyond
# spark_master = "spark://host:7077"   # spark: the cluster (default local[*])
# warehouse = "warehouse"          # also publish each committed day as Parquet partitions here (Spark, DuckDB, Trino)
'''

_SCHEMA: dict[str, dict[str, tuple[type | tuple[type, ...], bool]]] = {  # section -> key -> (types, required)
    "experiment": {"name": (str, True), "salt": (str, True)},
    "inputs": {"memberships": (str, True), "outcomes": (str, False)},
    "design": {"kind": (str, True), "treat_fraction": ((int, float), False), "sample_fraction": ((int, float), False),
               "holdout_fraction": ((int, float), False), "arm_weights": (list, False), "strata_by": (list, False),
               "n_bins": (int, False)},
    "analysis": {"method": (str, False), "vcov": (str, False), "alpha": ((int, float), False), "outcome": (str, False),
                 "higher_is_better": (bool, False), "inference": (str, False), "duration_days": (int, False)},
    "output": {"folder": (str, False)},
    "run": {"engine": (str, False), "memory_limit": (str, False), "spark_master": (str, False),
            "warehouse": (str, False)},
}


@dataclass(frozen=True)
class ExperimentConfig:
    """A validated ``experiment.toml``: paths resolved against the file's folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "experiment.toml"
    ...     _ = path.write_text(EXAMPLE)
    ...     config = load_config(path)
    >>> config.name, config.design["kind"], config.method
    ('collab-launch', 'stratified-cluster', 'ols-cluster')
    """

    path: Path
    name: str
    salt: str
    memberships: str
    outcomes: str | None
    design: dict[str, Any]
    method: str = "ols-cluster"
    vcov: str = "CR2"
    alpha: float = 0.05
    outcome: str = "y"
    higher_is_better: bool = True
    folder: Path = field(default=Path("results"))
    inference: str = "sequential"
    duration_days: int = 30
    engine: str = "memory"
    memory_limit: str | None = None
    spark_master: str | None = None
    warehouse: Path | None = None  # where each committed day is also published as Parquet partitions

    @property
    def results(self) -> Path:
        """``<folder>/<name>``: the experiment's days and its ledger."""
        return self.folder / self.name

    @property
    def ledger_path(self) -> Path:
        """The experiment's ledger (DuckDB file)."""
        return self.results / "ledger.duckdb"

    def input_for(self, pattern: str, date: dt.date) -> Path:
        """The input file of ``date`` (``{date}`` filled in)."""
        return Path(pattern.replace("{date}", str(date)))

    def expected_shares(self) -> dict[int, float]:
        """Each arm's share among components in the experiment, as the design says."""
        spec = check_spec(self.design_spec())
        if spec["design"] == "holdout":
            return {0: spec["holdout_fraction"], 1: 1.0 - spec["holdout_fraction"]}
        if spec["design"] == "cluster" and spec["arm_weights"] is None:
            return {0: 1.0 - spec["treat_fraction"], 1: spec["treat_fraction"]}
        weights = np.asarray(spec["arm_weights"], dtype=float)
        return {arm: float(w) for arm, w in enumerate(weights / weights.sum())}

    def design_spec(self) -> dict[str, Any]:
        """The design as :func:`spillover.design.check_spec` reads it."""
        return {"design": self.design["kind"], **{k: v for k, v in self.design.items() if k != "kind"}}


def _fail(path: Path, key: str, problem: str) -> InputError:
    return InputError(f"{path}: [{key}] {problem}")


def load_config(path: str | os.PathLike) -> ExperimentConfig:
    """Read and validate an experiment file; every problem is one line naming the key.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "experiment.toml"
    ...     _ = path.write_text(EXAMPLE.replace("n_bins = 2", "n_bins = 2\\ncolour = 1"))
    ...     try:
    ...         load_config(path)
    ...     except InputError as error:
    ...         print(str(error).split(": ", 1)[1])
    [design] unknown key 'colour'; the keys are kind, treat_fraction, sample_fraction, holdout_fraction, arm_weights, strata_by, n_bins
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such experiment file; `spillover init {path}` writes an example.")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give the experiment file (experiment.toml).")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not a valid TOML experiment file ({str(error).splitlines()[0][:120]}).") from None
    for section in raw:
        if section not in _SCHEMA:
            raise _fail(path, section, f"unknown section; the sections are {', '.join(_SCHEMA)}")
    values: dict[str, dict[str, Any]] = {}
    for section, keys in _SCHEMA.items():
        given = raw.get(section, {})
        if not isinstance(given, dict):
            raise _fail(path, section, "must be a table ([section] with keys)")
        for key in given:
            if key not in keys:
                raise _fail(path, section, f"unknown key {key!r}; the keys are {', '.join(keys)}")
        for key, (types, required) in keys.items():
            if key not in given:
                if required:
                    raise _fail(path, f"{section}.{key}", "is missing")
                continue
            value = given[key]
            if not isinstance(value, types) or (types is not bool and isinstance(value, bool)):
                expected = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
                raise _fail(path, f"{section}.{key}", f"must be a {expected}, not {type(value).__name__} {value!r}")
        values[section] = dict(given)
    name = values["experiment"]["name"]
    if not NAME_RULE.fullmatch(name) or ".." in name:
        raise _fail(path, "experiment.name", f"{name!r} is not a name: it names the results folder, so use letters, "
                                             "digits, '.', '_' and '-' (no '/', no '..'), starting with a letter or "
                                             "digit, e.g. 'checkout-2026'")
    try:
        check_salt(values["experiment"]["salt"])
    except InputError as error:
        raise _fail(path, "experiment.salt", str(error).rstrip(".")) from None
    design = values["design"]
    if design["kind"] not in _DESIGNS:
        raise _fail(path, "design.kind", f"{design['kind']!r} is not one of {', '.join(_DESIGNS)} (the daily job "
                                         "randomizes whole components)")
    if "arm_weights" in design:
        weights = design["arm_weights"]
        if len(weights) < 2 or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0
                                       for w in weights):
            raise _fail(path, "design.arm_weights", f"{weights} must be two or more positive shares")
        if abs(sum(weights) - 1.0) > 1e-9:
            raise _fail(path, "design.arm_weights", f"{weights} sum to {sum(weights):g}; shares must sum to 1")
    try:
        check_spec({"design": design["kind"], **{k: v for k, v in design.items() if k != "kind"}})
    except InputError as error:
        raise _fail(path, "design", str(error)) from None
    except ValueError as error:  # DesignError
        raise _fail(path, "design", str(error)) from None
    analysis = values.get("analysis", {})
    method = analysis.get("method", "ols-cluster")
    if method not in ANALYSIS_METHODS:
        raise _fail(path, "analysis.method", f"{method!r} is not one of {', '.join(ANALYSIS_METHODS)}")
    vcov = str(analysis.get("vcov", "CR2")).upper()
    if vcov not in VCOV_TYPES:
        raise _fail(path, "analysis.vcov", f"{analysis['vcov']!r} is not one of {', '.join(VCOV_TYPES)}")
    alpha = float(analysis.get("alpha", 0.05))
    if not 0 < alpha < 1:
        raise _fail(path, "analysis.alpha", f"{alpha} must be strictly between 0 and 1")
    inference = analysis.get("inference", "sequential")
    if inference not in INFERENCE:
        raise _fail(path, "analysis.inference", f"{inference!r} is not one of {', '.join(INFERENCE)}")
    duration = analysis.get("duration_days", 30)
    if duration < 1:
        raise _fail(path, "analysis.duration_days", f"{duration} must be at least 1 (the planned days)")
    from .engines import ENGINES

    run = values.get("run", {})
    engine = run.get("engine", "memory")
    if engine not in ENGINES:
        raise _fail(path, "run.engine", f"{engine!r} is not one of {', '.join(ENGINES)} (where each day's "
                                        "snapshot is read and split into components)")
    base = path.resolve().parent
    inputs = values["inputs"]
    for key in ("memberships", "outcomes"):
        if key in inputs and "{date}" not in inputs[key]:
            raise _fail(path, f"inputs.{key}", f"{inputs[key]!r} has no {{date}}: one file a day, e.g. "
                                               f"'data/{key}-{{date}}.parquet'")
    resolve = (lambda p: str(base / p))
    return ExperimentConfig(
        path=path, name=values["experiment"]["name"], salt=values["experiment"]["salt"],
        memberships=resolve(inputs["memberships"]), outcomes=resolve(inputs["outcomes"]) if "outcomes" in inputs else None,
        design=design, method=method, vcov=vcov, alpha=alpha, outcome=analysis.get("outcome", "y"),
        higher_is_better=bool(analysis.get("higher_is_better", True)), inference=inference, duration_days=duration,
        folder=base / values.get("output", {}).get("folder", "results"), engine=engine,
        memory_limit=run.get("memory_limit"), spark_master=run.get("spark_master"),
        warehouse=base / run["warehouse"] if run.get("warehouse") else None,
    )


def validate(config: ExperimentConfig, date: str | dt.date | None = None) -> list[str]:
    """Check the file against the data: the day's snapshot (the first and the latest when
    no date is given; none dated after tomorrow) has the membership columns and the
    strata's, and the outcomes the outcome column.
    Returns what was checked; a problem is an :class:`~spillover.errors.InputError`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "experiment.toml"
    ...     _ = path.write_text(EXAMPLE)
    ...     try:
    ...         validate(load_config(path))
    ...     except InputError as error:
    ...         print(str(error).split("]", 1)[1].split(";")[0])
     no snapshot matches 'data/memberships-{date}.parquet'
    """
    from .daily import snapshot_dates
    from .graph import CollaborationNetwork

    if date is None:
        dates = snapshot_dates(config)
        if not dates:
            shown = os.path.relpath(config.memberships, config.path.resolve().parent)
            raise _fail(config.path, "inputs.memberships", f"no snapshot matches {shown!r}; write the daily "
                                                           "snapshots there or fix the path")
        tomorrow = dt.date.today() + dt.timedelta(days=1)
        future = [d for d in dates if d > tomorrow]
        if future:
            raise _fail(config.path, "inputs.memberships", f"snapshot(s) dated after tomorrow: "
                                                           f"{', '.join(map(str, future[:3]))} (a mistyped date; "
                                                           "`run` leaves them out): rename or remove them")
        days = sorted({dates[0], dates[-1]})  # the first and the latest: columns that came or went show here
    else:
        days = [as_date(date)]
        if not config.input_for(config.memberships, days[0]).exists():
            raise _fail(config.path, "inputs.memberships", f"no snapshot for {days[0]}: "
                                                           f"'{config.input_for(config.memberships, days[0])}' does "
                                                           "not exist")
    checked = []
    for day in days:  # one or two snapshots
        snapshot = config.input_for(config.memberships, day)
        network = CollaborationNetwork.from_memberships(snapshot)
        checked.append(f"snapshot {snapshot.name}: {network.n_users:,} users, {network.n_projects:,} projects")
        strata = [s for s in config.design.get("strata_by", []) if s != "size"]
        absent = [s for s in strata if s not in network.user_data]
        if absent:
            raise _fail(config.path, "design.strata_by", f"{absent} are not columns of {snapshot.name}; it has "
                                                         f"{list(network.user_data.columns)}")
        outcomes = config.input_for(config.outcomes, day) if config.outcomes else None
        if outcomes is not None and outcomes.exists():
            columns = read_table(outcomes, what=f"outcomes '{outcomes}'").columns
            if config.outcome not in columns or "unit_id" not in columns:
                raise _fail(config.path, "analysis.outcome", f"'{outcomes.name}' has columns {list(columns)}; it "
                                                             f"needs unit_id and {config.outcome!r}")
            checked.append(f"outcomes {outcomes.name}: columns unit_id, {config.outcome}")
    return checked


# --------------------------------------------------------------------------- days


def run(config: ExperimentConfig, date: str | dt.date | None = None, *,
        progress: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Bring the experiment up to ``date`` (default: its latest snapshot) and return that
    day's summary (``day.json``): the days before it are done, carried, replayed or
    analysed again as :func:`spillover.daily.run_pending` decides.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from spillover import synth
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     root = pathlib.Path(folder)
    ...     _ = (root / "experiment.toml").write_text(EXAMPLE)
    ...     (root / "data").mkdir()
    ...     synth.evolving_memberships(2_000, n_days=1, seed=1)[0].to_parquet(root / "data/memberships-2026-11-23.parquet")
    ...     day = run(load_config(root / "experiment.toml"), "2026-11-23")
    >>> day["date"], day["ledger"]["created"] > 0, day["effects"]
    ('2026-11-23', True, [])
    """
    from .daily import run_pending

    _, summaries = run_pending(config, date, progress=progress)
    return summaries[-1]


# --------------------------------------------------------------------------- the report


def _days(config: ExperimentConfig) -> list[dict[str, Any]]:
    """Every finished day's summary, in date order: the days the ledger holds (a voided
    day's old results are not shown) whose results are written."""
    recorded = _ledger_view(config)[0]
    markers = [config.results / str(date) / "day.json" for date in recorded]
    return [json.loads(m.read_text(encoding="utf-8")) for m in markers if m.exists()]


def _ledger_view(config: ExperimentConfig) -> tuple[list[dt.date], pd.DataFrame]:
    """The experiment's recorded days and its audit trail (empty before the first run)."""
    from .daily import experiment_key
    from .ledger import Ledger

    if not config.ledger_path.exists():
        return [], pd.DataFrame(columns=["time", "action", "date", "detail"])
    with Ledger(config.ledger_path) as ledger:
        key = experiment_key(config, ledger.experiments()["experiment"].tolist())
        if key not in ledger.experiments()["experiment"].tolist():
            return [], pd.DataFrame(columns=["time", "action", "date", "detail"])
        return list(ledger.checksums(key)), ledger.audit(key)[["time", "action", "date", "detail"]]


def verdict(day: dict[str, Any], higher_is_better: bool = True) -> str:
    """Ship / don't ship / not enough data yet, from the last day's interval and health.

    Examples
    --------
    >>> verdict({"effects": [{"ci_low": 0.1, "ci_high": 0.5}], "health": []})
    'ship: the 95% interval (0.1 to 0.5) excludes 0, in the good direction'
    >>> verdict({"effects": [{"ci_low": 0.1, "ci_high": 0.5}], "health": [], "alpha": 0.1})
    'ship: the 90% interval (0.1 to 0.5) excludes 0, in the good direction'
    >>> verdict({"effects": [], "health": []})
    'not enough data yet: no outcomes so far'
    >>> verdict({"effects": [{"ci_low": 0.1, "ci_high": 0.5}], "health": [], "inference": "sequential",
    ...          "sequential": {"band_low": -0.05, "band_high": 0.6, "n_days": 3}})
    'not enough data yet: the always-valid 95% band over 3 day(s) (-0.05 to 0.6) includes 0'
    """
    failed = [check["detail"] for check in day["health"] if check["flagged"]]
    if failed:
        return f"don't ship: a health check failed ({failed[0]})"
    if not day["effects"]:
        return "not enough data yet: no outcomes so far"
    level = f"{100 * (1 - day.get('alpha', 0.05)):g}%"  # the level the day's analysis used
    band = day.get("sequential") if day.get("inference") == "sequential" else None
    if band is not None:
        low, high = band["band_low"], band["band_high"]
        what = f"always-valid {level} band over {band['n_days']} day(s)"
        safe = "; it holds on every day at once, so stopping now is safe"
    else:
        effect = day["effects"][0]
        low, high = effect["ci_low"], effect["ci_high"]
        what, safe = f"{level} interval", (" (one look: valid at the planned end, not if you stop on the first day it "
                                           "excludes 0)" if "inference" in day else "")
    if low is None or high is None or low != low or high != high:
        return "not enough data yet: the last day's effect has no interval"
    if low <= 0 <= high:
        return f"not enough data yet: the {what} ({low:.3g} to {high:.3g}) includes 0"
    good = (low > 0) == higher_is_better
    direction = "in the good direction" if good else "in the wrong direction"
    return f"{'ship' if good else 'do not ship'}: the {what} ({low:.3g} to {high:.3g}) excludes 0, {direction}{safe}"


def days_table(config: ExperimentConfig) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Every finished day's summary, and one row per day: the estimate and its interval,
    the units analysed (the estimate's own count) and assigned to an arm (not those left
    out of the sample, arm -1), units and components per arm, the sample-ratio check, churn and contamination.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "experiment.toml"
    ...     _ = path.write_text(EXAMPLE)
    ...     try:
    ...         days_table(load_config(path))
    ...     except InputError as error:
    ...         print(str(error).split(": ", 1)[1][:19])
    no finished day yet
    """
    days = _days(config)
    if not days:
        raise InputError(f"{config.path.name}: no finished day yet: run `spillover run {config.path.name} "
                         "--date YYYY-MM-DD` first.")
    rows = []
    for day in days:  # a loop over days: a few dozen
        effect = day["effects"][0] if day["effects"] else {}
        srm = next((c for c in day["health"] if c["name"].startswith("sample ratio (components)")), {})
        band = day.get("sequential") or {}
        rows.append({"date": day["date"], "estimate": effect.get("estimate"), "ci_low": effect.get("ci_low"),
                     "ci_high": effect.get("ci_high"), "pooled": band.get("estimate"), "band_low": band.get("band_low"),
                     "band_high": band.get("band_high"), "units analysed": effect.get("n_units"),
                     "units assigned": sum(v for k, v in day["units_per_arm"].items() if int(k) >= 0),
                     **{f"units arm {k}": v for k, v in day["units_per_arm"].items()},
                     **{f"components arm {k}": v for k, v in day["components_per_arm"].items()},
                     "srm_p": srm.get("p_value"), "created": day["ledger"]["created"],
                     "split": day["ledger"]["split"], "merged": day["ledger"]["merged"],
                     "removed": day["ledger"]["removed"], "users_switched": day["ledger"]["users_switched"],
                     "contaminated": day["contaminated_units"]})
    return days, pd.DataFrame(rows)


def report(config: ExperimentConfig, out: str | os.PathLike | None = None) -> Path:
    """One HTML page over all days so far: the verdict, the effect by day, units and
    components per arm, sample-ratio checks, contamination and component churn.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "experiment.toml"
    ...     _ = path.write_text(EXAMPLE)
    ...     try:
    ...         report(load_config(path))
    ...     except InputError as error:
    ...         print(str(error).split(": ", 1)[1])
    no finished day yet: run `spillover run experiment.toml --date YYYY-MM-DD` first.
    """
    from . import report as html

    days, table = days_table(config)
    last = days[-1]
    level = f"{100 * (1 - config.alpha):g}%"
    sequential = config.inference == "sequential"
    rule = (f"The rule is sequential: the always-valid {level} band (the pooled estimate over the days so far, "
            "clustered by lineage) covers the effect on every day at once, so acting on the first day it excludes 0 "
            f"is safe; it is tightest at the planned {config.duration_days} days. The daily {level} interval beside it "
            "is each day's alone and would not be safe to stop on." if sequential else
            f"The rule is fixed: the {level} interval is the last day's alone, valid for one look at the planned end "
            f"({config.duration_days} days); it is not corrected for having looked every day (set inference = "
            "\"sequential\" for always-valid bands).")
    columns = ["date", "estimate", "ci_low", "ci_high", *(["pooled", "band_low", "band_high"] if sequential else []),
               "units analysed"]
    sections = [
        html.Section(f"Verdict on {last['date']}", html.escape_text(verdict(last, config.higher_is_better) + ". " + rule),
                     [("Health checks on the last day", pd.DataFrame(last["health"])[["name", "p_value", "flagged",
                                                                                      "detail"]])]),
        html.Section("The effect, day by day",
                     f"{config.method} with {config.vcov} errors clustered by component, on each day's outcomes table; "
                     "users flagged contaminated by merges are left out."
                     + (" The band pools every day so far (each user's mean outcome)." if sequential else ""),
                     [("By day", table[columns])],
                     [(f"Estimate and {level} interval by day" + (", and the always-valid band" if sequential else ""),
                       html.plot_effect_by_day(table, level))] if table["estimate"].notna().any() else []),
        html.Section("Units, components and churn",
                     "Components are created, split, merged and removed as the graph changes; the ledger keeps every "
                     "user's arm and flags users who switched arm through a merge.",
                     [("By day", table.drop(columns=["estimate", "ci_low", "ci_high", "pooled", "band_low",
                                                     "band_high"]))]),
    ]
    carried = [(day["date"], "carried", f"no snapshot: arms of {day['carried_from']} carried")
               for day in days if day.get("carried_from")]
    audit = _ledger_view(config)[1]
    timeline = pd.DataFrame(
        carried + [(str(pd.Timestamp(row.date).date()), row.action, row.detail) for row in audit.itertuples()],
        columns=["date", "what", "detail"]).sort_values("date", kind="stable")
    if len(timeline):
        sections.append(html.Section(
            "Timeline", "Every decision the daily job took besides running a day: days recorded without their "
            "snapshot (arms carried from the day before) and days voided and replayed, from the ledger's audit "
            "trail.", [("Decisions", timeline)]))
    path = Path(out) if out else config.results / "report.html"
    html.write_report(path, f"spillover experiment: {config.name}",
                      f"{len(days)} day(s), {days[0]['date']} to {last['date']}; design {config.design['kind']}.",
                      sections)
    return path


# --------------------------------------------------------------------------- example data


EXAMPLE_START = "2026-11-01"  # the example data's first day


def example_data_paths(path: str | os.PathLike, n_days: int, start: str = EXAMPLE_START) -> list[Path]:
    """The files :func:`write_example_data` would write beside the experiment file ``path``
    (from :data:`EXAMPLE`'s inputs): what ``spillover init --example`` refuses to overwrite.

    Examples
    --------
    >>> [p.name for p in example_data_paths("exp/experiment.toml", 1)]
    ['memberships-2026-11-01.parquet', 'outcomes-2026-11-01.parquet']
    """
    inputs = tomllib.loads(EXAMPLE)["inputs"]
    base = Path(path).parent
    days = [as_date(start) + dt.timedelta(days=d) for d in range(n_days)]
    return [base / inputs[key].replace("{date}", str(day)) for day in days for key in ("memberships", "outcomes")]


def write_example_data(path: str | os.PathLike, *, n_users: int = 5_000, n_days: int = 30, seed: int = 0,
                       effect: float = 0.3, start: str = EXAMPLE_START) -> dict[str, Any]:
    """Daily inputs for the experiment file at ``path``: ``n_days`` membership snapshots
    of a collaboration network with churn (components created, split, merged, removed)
    and each day's outcomes with a known ``effect`` of treatment, so a run can be checked
    against the truth.

    The outcomes need the arms the run will give; they come from running the same
    experiment, without outcomes, in a scratch folder (the library's own logic, so nothing
    is reimplemented), which is then removed. The outcome of a user in arm ``a`` is
    ``effect * (a == 1) + component effect (sd 0.5) + noise (sd 1)``, drawn afresh each day.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "experiment.toml"
    ...     _ = path.write_text(EXAMPLE)
    ...     written = write_example_data(path, n_users=1_000, n_days=2)
    ...     sorted(p.name for p in (pathlib.Path(folder) / "data").iterdir())
    ['memberships-2026-11-01.parquet', 'memberships-2026-11-02.parquet', 'outcomes-2026-11-01.parquet', 'outcomes-2026-11-02.parquet']
    """
    import dataclasses
    import shutil
    import tempfile

    from . import synth
    from .seeds import check_seed

    config = load_config(path)
    if not config.outcomes:
        raise _fail(config.path, "inputs.outcomes", "is needed to write example outcomes")
    first = as_date(start)
    dates = [first + dt.timedelta(days=d) for d in range(n_days)]
    for date, frame in zip(dates, synth.iter_memberships(n_users, n_days, seed=seed)):  # one day in memory
        target = config.input_for(config.memberships, date)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_table(frame, target)
    rng = check_seed(seed)
    scratch = Path(tempfile.mkdtemp(prefix="spillover-example-"))
    try:
        dry = dataclasses.replace(config, outcomes=None, folder=scratch)
        for date in dates:  # a loop over days, as the daily job runs
            run(dry, date)
            arms = pd.read_parquet(dry.results / str(date) / "arms.parquet", columns=["unit_id", "arm", "component"])
            codes, uniques = pd.factorize(arms["component"])
            y = (effect * (arms["arm"].to_numpy() == 1) + 0.5 * rng.normal(size=len(uniques))[codes]
                 + rng.normal(size=len(arms)))
            target = config.input_for(config.outcomes, date)
            write_table(pd.DataFrame({"unit_id": arms["unit_id"], config.outcome: y}), target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"snapshots": n_days, "first_date": str(dates[0]), "last_date": str(dates[-1]), "true_effect": effect}
