"""The daily job of an experiment file: which days to do or redo, decided from the
ledger and the inputs, and one day's run.

The ledger is the truth and each day's ``day.json`` a cache of its results. Every
``spillover run`` walks the days from the experiment's first to its latest snapshot and
decides, for each (:class:`Decision`):

- **run**: a day with its snapshot and no ledger entry (new, or voided by hand) is
  recorded and analysed;
- **carry**: a day without a snapshot while later ones exist is recorded with the day
  before's arms (checksum ``missing``), with a warning naming the day;
- **replay**: a snapshot that arrives for a carried day (or for a day later days were
  recorded without) voids that day and the later ones in the ledger (an audit row says
  why) and runs them again, giving what an on-time run would have given;
- **reanalyse**: a recorded day whose outcomes arrived or changed since its results were
  written (or whose results a crash left unwritten) is analysed again, arms as the ledger
  had them that day; the ledger is not touched;
- **done**: nothing changed.

A snapshot that changed after its day was recorded is refused with both checksums; a
changed salt or design is refused with the difference (the experiment's identity is its
name). Snapshots dated after tomorrow or before the first day are left out with a warning.
Everything is checked before anything is written: a refused run leaves no file behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import math
import shutil
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np
import pandas as pd

from .errors import DataWarning, InputError, LedgerError
from .faults import crash_point
from .io import atomic_path, read_table, write_table
from .ledger import as_date

if TYPE_CHECKING:
    from .engines import Engine
    from .evolve import Snapshot
    from .experiment import ExperimentConfig
    from .ledger import Ledger

__all__ = ["MISSING", "Decision", "file_digest", "run_pending", "snapshot_dates"]

MISSING = "missing"  # the ledger checksum of a day recorded without its snapshot (arms carried)


@dataclass(frozen=True)
class Decision:
    """What ``spillover run`` did with one day, and why (printed, and in ``--json``).

    Examples
    --------
    >>> Decision("2026-11-02", "carry", "no snapshot yet; arms of 2026-11-01 carried").to_dict()["action"]
    'carry'
    """

    date: str
    action: str  # run | carry | replay | reanalyse | done
    reason: str

    def to_dict(self) -> dict[str, str]:
        """``date``, ``action`` and ``reason``, as ``run --json`` prints them."""
        return asdict(self)


@contextlib.contextmanager
def _step(say: Callable[[str], Any], what: str) -> Iterator[None]:
    """Say ``what`` was done, and in how long, once it is (the daily job's progress per step)."""
    began = time.perf_counter()
    yield
    say(f"  {what} ({time.perf_counter() - began:.1f} s)")


def file_digest(path: str | Path) -> str | None:
    """SHA-256 of a file's bytes (None when it does not exist): how a day's results
    know which inputs they were made from.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "a.csv"
    ...     _ = path.write_text("x\\n1\\n")
    ...     file_digest(path)[:12], file_digest(pathlib.Path(folder) / "b.csv")
    ('daff832f8020', None)
    """
    path = Path(path)
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def snapshot_dates(config: "ExperimentConfig") -> list[dt.date]:
    """The dates of every snapshot on disk, in order.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from spillover.experiment import EXAMPLE, load_config
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "experiment.toml"
    ...     _ = path.write_text(EXAMPLE)
    ...     (pathlib.Path(folder) / "data").mkdir()
    ...     for day in ("2026-11-02", "2026-11-01"):
    ...         _ = (pathlib.Path(folder) / f"data/memberships-{day}.parquet").write_bytes(b"")
    ...     [str(d) for d in snapshot_dates(load_config(path))]
    ['2026-11-01', '2026-11-02']
    """
    pattern = Path(config.memberships)
    head, _, tail = pattern.name.partition("{date}")
    dates = []
    for found in pattern.parent.iterdir() if pattern.parent.is_dir() else []:
        name = found.name
        if not (name.startswith(head) and name.endswith(tail) and len(name) == len(head) + 10 + len(tail)):
            continue
        try:
            dates.append(dt.date.fromisoformat(name[len(head):len(name) - len(tail)]))
        except ValueError:
            continue  # another file that happens to match the pattern
    return sorted(dates)


def experiment_key(config: "ExperimentConfig", names: list[str]) -> str:
    """The ledger's name for the experiment: its ``name`` (ledgers written before names
    were the key used the salt; such a ledger keeps its key)."""
    if config.name not in names and config.salt in names:
        return config.salt
    return config.name


def check_identity(config: "ExperimentConfig", record: dict[str, Any]) -> None:
    """The file's salt and design must be the ones the experiment started with: a change
    would move arms mid-experiment. Refused with every difference and the ways out."""
    from .design import check_spec
    from .evolve import design_changes

    given = {k: v for k, v in check_spec(config.design_spec()).items() if k not in ("cluster_col",)}
    changes = design_changes(record, given)
    if record["salt"] != config.salt:
        changes.insert(0, f"salt {record['salt']!r} -> {config.salt!r}")
    if changes:
        raise InputError(
            f"{config.path}: experiment {config.name!r} was started (on {record['created']:%Y-%m-%d}) with another "
            f"design: {'; '.join(changes)}. A running experiment keeps its salt and design, or arms would move: "
            "restore the recorded values, or start a new experiment under a new [experiment] name (its own "
            "results folder and ledger).")


def _marker(config: "ExperimentConfig", date: dt.date) -> dict[str, Any] | None:
    path = config.results / str(date) / "day.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _write_json(payload: dict, path: Path) -> None:
    """Atomic, deterministic JSON (sorted keys, no timestamps): a re-run writes the same bytes."""
    from .console import jsonable

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(jsonable(payload), indent=1, sort_keys=True) + "\n", encoding="utf-8")


def _outcomes(config: "ExperimentConfig", date: dt.date) -> tuple[pd.DataFrame | None, str | None]:
    """The day's outcomes (None when not there yet) and their digest, checked before
    anything is written."""
    path = config.input_for(config.outcomes, date) if config.outcomes else None
    if path is None or not path.exists():
        return None, None
    table = read_table(path, what=f"outcomes '{path}'")
    missing = [c for c in ("unit_id", config.outcome) if c not in table.columns]
    if missing:
        raise InputError(f"{config.path}: [analysis.outcome] '{path.name}' has columns {list(table.columns)}; it "
                         f"needs unit_id and {config.outcome!r} ({missing} missing).")
    return table, file_digest(path)


def run_pending(config: "ExperimentConfig", until: str | dt.date | None = None, *,
                progress: Callable[[str], Any] | None = None, engine: "Engine | None" = None,
                warehouse: Path | None = None) -> tuple[list[Decision], list[dict[str, Any]]]:
    """Bring the experiment up to date (up to ``until``): every day decided as the
    module says, in date order. Returns the decisions and each touched day's summary.
    Each day's snapshot is read and split into components by ``engine`` (default: the
    file's ``[run] engine``); the arms are the same on every engine. With a ``warehouse``
    (else the file's ``[run] warehouse``) every committed day is also published there as
    Parquet partitions (:mod:`spillover.warehouse`), after each day and once at the end
    (which finishes what a killed run left).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from spillover import synth
    >>> from spillover.experiment import EXAMPLE, load_config
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     root = pathlib.Path(folder)
    ...     _ = (root / "experiment.toml").write_text(EXAMPLE)
    ...     (root / "data").mkdir()
    ...     days = synth.evolving_memberships(1_000, n_days=3, seed=1)
    ...     for i in (0, 2):                                   # the second day's snapshot is late
    ...         days[i].to_parquet(root / f"data/memberships-2026-11-0{i + 1}.parquet")
    ...     decisions, _ = run_pending(load_config(root / "experiment.toml"))
    ...     [d.action for d in decisions]
    ['run', 'carry', 'run']
    """
    from .ledger import Ledger

    say = progress or (lambda message: None)
    engine = engine or daily_engine(config)
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    on_disk = snapshot_dates(config)
    future = [d for d in on_disk if d > tomorrow]
    if future:
        warnings.warn(f"{config.path.name}: snapshot(s) dated after tomorrow left out: "
                      f"{', '.join(map(str, future[:3]))}{' ...' if len(future) > 3 else ''} (a mistyped date would "
                      "block every real day); rename or remove them.", DataWarning, stacklevel=2)
        on_disk = [d for d in on_disk if d <= tomorrow]
    until = None if until is None else as_date(until)
    created = not config.ledger_path.exists()
    if created and (not on_disk or (until is not None and until < on_disk[0])):
        day = f" for {until}" if until is not None else ""
        raise InputError(f"{config.path}: [inputs.memberships] no snapshot{day}: "
                         f"'{config.input_for(config.memberships, until or dt.date.today())}' does not exist.")
    try:
        with Ledger(config.ledger_path) as ledger:
            return _reconcile(config, ledger, on_disk, until, say, engine.beside(ledger),
                              warehouse or config.warehouse)
    except BaseException:
        if created:  # a refused first run leaves no empty ledger or results folder behind
            _remove_if_empty(config)
        raise


def _remove_if_empty(config: "ExperimentConfig") -> None:
    """After a refused first run: the results folders, if nothing was recorded in them
    (the ledger removes its own empty file)."""
    if config.results.exists() and not config.ledger_path.exists() and not any(config.results.rglob("*.json")):
        shutil.rmtree(config.results, ignore_errors=True)
        if config.folder.exists() and not any(config.folder.iterdir()):
            config.folder.rmdir()


def daily_engine(config: "ExperimentConfig", name: str | None = None, memory_limit: str | None = None,
                 spark_master: str | None = None) -> "Engine":
    """The engine that reads each day's snapshot: ``name`` (else the file's ``[run]
    engine``), with ``memory_limit`` (else the file's) on DuckDB, ``spark_master`` (else
    the file's, else local) on Spark.

    >>> from spillover.experiment import ExperimentConfig
    >>> daily_engine(ExperimentConfig(Path("e.toml"), "e", "s", "m-{date}.csv", None, {}), "duckdb").name
    'duckdb'
    """
    from .engines import get_engine

    name = name or config.engine
    limit, master = memory_limit or config.memory_limit, spark_master or config.spark_master
    options = {"duckdb": {"memory_limit": limit} if limit else {}, "spark": {"master": master} if master else {}}
    return get_engine(name, **options.get(name, {}))


def _reconcile(config: "ExperimentConfig", ledger: "Ledger", on_disk: list[dt.date], until: dt.date | None,
               say: Callable[[str], Any], engine: "Engine", warehouse: Path | None = None,
               ) -> tuple[list[Decision], list[dict[str, Any]]]:
    """The walk over days of :func:`run_pending`, in an open ledger."""
    decisions, summaries = _walk(config, ledger, on_disk, until, say, engine, warehouse)
    if warehouse is not None:
        from .warehouse import publish

        key = experiment_key(config, ledger.experiments()["experiment"].tolist())
        done = publish(ledger, key, warehouse)
        if done["published"] or done["withdrawn"]:
            say(f"warehouse {warehouse}: {len(done['published'])} day(s) published, {len(done['withdrawn'])} "
                "withdrawn")
    return decisions, summaries


def _walk(config: "ExperimentConfig", ledger: "Ledger", on_disk: list[dt.date], until: dt.date | None,
          say: Callable[[str], Any], engine: "Engine", warehouse: Path | None,
          ) -> tuple[list[Decision], list[dict[str, Any]]]:
    """The days of :func:`_reconcile`, each published to ``warehouse`` once recorded."""
    key = experiment_key(config, ledger.experiments()["experiment"].tolist())
    known = key in ledger.experiments()["experiment"].tolist()
    if known:
        with _step(say, "the ledger checked: unchanged since its last write, or every seal verified"):
            # the seals, before anything is read from it or appended (all of them unless the rows are
            # exactly those the ledger's own last write left, by their fingerprint)
            problems = [] if ledger.unchanged(key) else ledger.verify(key)
        if problems:
            raise LedgerError(f"ledger '{config.ledger_path}' fails its seals: {problems[0]}; nothing was run. "
                              "`spillover ledger verify` lists every problem; restore the ledger from a backup.")
        check_identity(config, ledger.experiment(key))
    recorded = ledger.checksums(key) if known else {}
    first = min(recorded) if recorded else on_disk[0]
    early = [d for d in on_disk if d < first]
    if early:
        warnings.warn(f"{config.path.name}: snapshot(s) {', '.join(map(str, early[:3]))} predate the experiment's "
                      f"first day {first} and are left out (the first day cannot be replayed: start a new experiment "
                      "to include them).", DataWarning, stacklevel=3)
    available = {d for d in on_disk if d >= first}
    last = max([*available, *recorded])
    if until is not None:
        if until < first:
            raise InputError(f"{config.path}: {until} is before {first}, the experiment's first day.")
        if until > last:
            raise InputError(f"{config.path}: [inputs.memberships] no snapshot for {until}: "
                             f"'{config.input_for(config.memberships, until)}' does not exist.")
        last = until
    decisions: list[Decision] = []
    summaries: list[dict[str, Any]] = []
    changed = False  # a day done again: under sequential inference, every later day's band follows from it
    date = first
    while date <= last:  # a loop over days, in order: each is one transaction in the ledger
        snapshot = config.input_for(config.memberships, date)
        later = [d for d in recorded if d > date]
        if date in available and (recorded.get(date) == MISSING or (date not in recorded and later)):
            start = date if date in recorded else min(later)
            why = (f"the snapshot of {date} arrived after {'it was carried' if date in recorded else 'later days'}: "
                   f"replaying {start} to {max(recorded)}")
            ledger.void(key, start, reason=why)
            recorded = {d: c for d, c in recorded.items() if d < start}
            decisions.append(Decision(str(date), "replay", why))
            say(f"{date}: {why}")
        if date not in recorded:
            with _step(say, f"{date}: the snapshot read and split into components on {engine.name}"):
                members = engine.snapshot(snapshot) if date in available else None
            previous = max(recorded) if recorded else None
            action = "run" if members is not None else "carry"
            reason = ("recorded and analysed" if members is not None else
                      f"no snapshot for {date} while later ones exist: arms of {previous} carried, replayed when it "
                      "arrives")
            if members is None:
                warnings.warn(f"{config.path.name}: {reason}.", DataWarning, stacklevel=3)
            summaries.append(_run_day(config, ledger, key, date, members, record=True, known=bool(recorded),
                                      engine=engine, say=say))
            if warehouse is not None:
                from .warehouse import publish

                publish(ledger, key, warehouse)
            recorded[date] = MISSING if members is None else "recorded"
            changed = True
            if not decisions or decisions[-1].date != str(date):
                decisions.append(Decision(str(date), action, reason))
            say(f"{date}: {reason}")
        else:
            marker = _marker(config, date)
            digest = _check_snapshot(config, key, date, snapshot, recorded[date], marker, engine)
            inputs = {"memberships": digest,
                      "outcomes": file_digest(config.input_for(config.outcomes, date)) if config.outcomes else None}
            written = (marker or {}).get("inputs") or {}
            follows = changed and config.inference == "sequential" and marker is not None and marker.get("effects")
            if marker is None or written != inputs or follows:
                reason = ("results not written yet" if marker is None else
                          "an earlier day changed: its always-valid band is recomputed" if written == inputs else
                          "outcomes arrived or changed since the day was analysed"
                          if written.get("memberships") == digest else "results written from other inputs")
                summaries.append(_run_day(config, ledger, key, date, None, record=False, known=True, say=say))
                decisions.append(Decision(str(date), "reanalyse", reason))
                changed = True
                say(f"{date}: {reason}: analysed again, arms as recorded that day")
            else:
                summaries.append(marker)
                decisions.append(Decision(str(date), "done", "already done: nothing changes"))
                say(f"{date} is already done: nothing changes")
        date += dt.timedelta(days=1)
    return decisions, summaries


def _check_snapshot(config: "ExperimentConfig", key: str, date: dt.date, snapshot: Path, checksum: str,
                    marker: dict[str, Any] | None, engine: "Engine") -> str | None:
    """A recorded day's snapshot must still be the one recorded (the file's digest first;
    its contents' checksum when the file was rewritten, by the rule the recorded checksum
    names: an experiment may move between engines). A snapshot that went away after its
    day was recorded keeps the record, with a warning. Returns the digest the day's
    results should carry (None for a carried day)."""
    if checksum == MISSING:
        return None
    digest = file_digest(snapshot)
    if digest is None:
        warnings.warn(f"{config.path.name}: the snapshot of {date} is gone; the day stays as recorded.",
                      DataWarning, stacklevel=4)
        return (marker or {}).get("inputs", {}).get("memberships")
    if marker is not None and (marker.get("inputs") or {}).get("memberships") == digest:
        return digest
    from .engines import get_engine
    from .engines.sql import ROWS_RULE

    # by the rule that made the recorded checksum: DuckDB's one scan, or the memory engine's network
    now = (get_engine("duckdb").checksum(snapshot) if checksum.startswith(ROWS_RULE)
           else (engine if engine.name == "memory" else get_engine("memory")).snapshot(snapshot).checksum)
    if now != checksum:
        raise InputError(
            f"{config.path}: the snapshot of {date} changed after the day was recorded (checksum {checksum[:12]}, "
            f"now {now[:12]}): the ledger keeps what was recorded. To record the new one, `spillover ledger void "
            f"--ledger {config.ledger_path} --experiment {key} --date {date} --reason '...'` and run again (the days "
            f"from {date} are replayed).")
    return digest


def _run_day(config: "ExperimentConfig", ledger: "Ledger", key: str, date: dt.date,
             members: "Snapshot | None", *, record: bool, known: bool, engine: "Engine | None" = None,
             say: Callable[[str], Any] = lambda message: None) -> dict[str, Any]:
    """One day: (when ``record``) the ledger's day from the snapshot, or carried without
    one; then the day's results from the arms the ledger had that day."""
    from .evolve import DayReport, evolve, start

    folder = config.results / str(date)
    outcomes, outcomes_digest = _outcomes(config, date)  # checked before anything is written
    config.results.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(".*.partial") if folder.exists() else []:  # left by a job killed mid-write
        stale.unlink()
    if record:  # a day recorded anew: its old results (a voided day's) are a stale cache from here on
        (folder / "day.json").unlink(missing_ok=True)
        if members is None:
            before = DayReport(**ledger.day_summary(key, ledger.last_date(key)))
            report = DayReport(str(date), created=0, split=0, merged=0, removed=0, merged_across_arms=0,
                               users_switched=0, n_units=before.n_units, n_components=before.n_components,
                               contaminated_units=before.contaminated_units)
            ledger.write_day(key, date, summary=report.to_dict(), checksum=MISSING)
        elif not known:
            from .design import check_spec

            spec = check_spec(config.design_spec())
            options = {k: v for k, v in spec.items() if k not in ("design", "cluster_col")}
            with _step(say, f"{date}: day one assigned and recorded"):
                start(ledger, members, date, salt=config.salt, design=spec["design"], experiment=key, **options)
        else:
            with _step(say, f"{date}: changes against the ledger found and recorded"):
                evolve(ledger, members, date, experiment=key, engine=engine)
        crash_point("after-ledger")
    day = DayReport(**ledger.day_summary(key, date))
    carried = ledger.checksums(key).get(date) == MISSING
    users, snapshot_date = ledger.stage_users(key, date)  # the day's users stay in DuckDB: counted and written there
    con, uid = ledger.connection, ledger.typed_id(key)
    per_arm = con.execute(f"SELECT arm, count(*) FROM {users} GROUP BY arm ORDER BY arm").fetchall()
    by_component = dict(con.execute(f"""SELECT arm, count(*) FROM (SELECT arg_min(arm, {uid}) AS arm FROM {users}
        WHERE arm >= 0 AND NOT contaminated GROUP BY component) GROUP BY arm ORDER BY arm""").fetchall())
    snapshot = config.input_for(config.memberships, date)
    summary: dict[str, Any] = {
        "date": str(date), "experiment": config.name, "ledger": day.to_dict(),
        "units_per_arm": {str(arm): int(n) for arm, n in per_arm},
        "components_per_arm": {str(arm): int(n) for arm, n in by_component.items()},
        "contaminated_units": con.execute(f"SELECT count(*) FILTER (WHERE contaminated) FROM {users}").fetchone()[0],
        "effects": [], "health": [], "notes": [], "alpha": config.alpha, "inference": config.inference,
        "inputs": {"memberships": None if carried else file_digest(snapshot), "outcomes": outcomes_digest},
    }
    if carried:
        summary["carried_from"] = str(snapshot_date)
    from .health import sample_ratio_mismatch

    srm = sample_ratio_mismatch(by_component, config.expected_shares(), what="components")
    summary["health"].append(srm.to_dict())
    folder.mkdir(parents=True, exist_ok=True)
    _copy_to(con, f"SELECT {uid} AS unit_id, arm, contaminated, valid_from, component FROM {users} ORDER BY 1",
             folder / "arms.parquet")
    crash_point("after-arms")
    if outcomes is not None:
        from .estimate import estimate

        active = con.execute(f"SELECT {uid} AS unit_id, arm, component FROM {users} "
                             "WHERE arm >= 0 AND NOT contaminated ORDER BY 1").df()  # the analysed users only

        outcomes = outcomes.astype({"unit_id": active["unit_id"].dtype}) if len(outcomes) else outcomes
        exposure = pd.DataFrame({"unit_id": active["unit_id"], "arm": active["arm"],
                                 "condition": np.where(active["arm"] >= 1, "treated", "control")})
        clusters = pd.DataFrame({"unit_id": active["unit_id"], "cluster_id": active["component"]})
        with warnings.catch_warnings(record=True) as caught, _step(say, f"{date}: {len(active):,} users analysed"):
            warnings.simplefilter("always")
            effects = estimate(outcomes[outcomes["unit_id"].isin(active["unit_id"])], exposure, config.method,
                               clusters=clusters, outcome_col=config.outcome, vcov=config.vcov, alpha=config.alpha,
                               control="control", seed=0)
        summary["effects"] = effects.to_frame().to_dict(orient="records")
        summary["health"] += [check.to_dict() for check in effects.health]
        summary["notes"] = list(effects.notes) + sorted({str(w.message) for w in caught})
        write_table(effects.to_frame(), folder / "effects.csv")
        if config.inference == "sequential" and effects.effects:
            with _step(say, f"{date}: the always-valid band"):
                summary["sequential"] = _sequential(config, ledger, key, date, outcomes)
    elif (folder / "effects.csv").exists():
        (folder / "effects.csv").unlink()  # a replayed day whose outcomes went away
    crash_point("before-marker")
    _write_json(summary, folder / "day.json")
    return summary


def _sequential(config: "ExperimentConfig", ledger: "Ledger", key: str, date: dt.date,
                outcomes: pd.DataFrame) -> dict[str, Any]:
    """The always-valid band on ``date`` (:mod:`spillover.sequential`): the pooled estimate
    over every day with outcomes so far (``outcomes``: today's), clustered by lineage, and
    the band intersected with the day before's. The pooled sums and lineages are carried
    from the last look (its state file, checked against the digest its day.json recorded),
    so a look reads one day's outcomes and components; without a usable state they are
    rebuilt from the first look, with the same additions in the same order."""
    from . import sequential

    looks = [d for d in ledger.checksums(key) if d <= date and config.input_for(config.outcomes, d).exists()]
    previous = _marker(config, looks[-2]) if len(looks) > 1 else None
    state = _carried_state(config, ledger, key, looks, previous, outcomes)
    digest = _keep_state(config, ledger, state, date)
    pooled = sequential.pooled_table(ledger, key, state)
    estimate, se, df = sequential.look(pooled, None, method=config.method, vcov=config.vcov, alpha=config.alpha)
    earlier = (previous or {}).get("sequential")
    if earlier is None and len(looks) > 1:  # the first look's results are gone: its tuning, recomputed
        first = sequential.pooled_table(ledger, key, _carried_state(config, ledger, key, looks[:1], None, None))
        se_first = sequential.look(first, None, method=config.method, vcov=config.vcov, alpha=config.alpha)[1]
        earlier = {"tau2": sequential.tuning(se_first, 1, config.duration_days, config.alpha),
                   "band_low": -math.inf, "band_high": math.inf}
    tau2 = earlier["tau2"] if earlier else sequential.tuning(se, 1, config.duration_days, config.alpha)
    band = sequential.sequence([estimate], [se], tau2, config.alpha, df).iloc[0]
    low = max(band["cs_low"], earlier["band_low"] if earlier else -math.inf)
    high = min(band["cs_high"], earlier["band_high"] if earlier else math.inf)
    return {**sequential.summary(estimate, se, (low, high), tau2=tau2, n_days=len(looks),
                                 planned_days=config.duration_days, df=df), "state": digest}


def _copy_to(con, query: str, path: Path) -> None:
    """The rows of ``query`` (DuckDB connection ``con``) written to the Parquet file ``path``
    atomically: no reader sees a partial file, a killed job leaves none."""
    with atomic_path(path) as tmp:
        con.execute(f"COPY ({query}) TO '{str(tmp).replace(chr(39), chr(39) * 2)}' (FORMAT PARQUET)")


def _state_path(config: "ExperimentConfig", date: dt.date) -> Path:
    """Where the sequential state of a look is kept (a cache: rebuilt when missing)."""
    return config.results / ".sequential" / f"{date}.parquet"


def _carried_state(config: "ExperimentConfig", ledger: "Ledger", key: str, looks: list[dt.date],
                   previous: dict[str, Any] | None, outcomes: pd.DataFrame | None) -> str:
    """The state of the look ``looks[-1]`` as a table of the ledger's connection: carried
    from the look before's file when its digest is the one ``previous`` (that look's
    day.json) recorded, else added up from the first look (``outcomes``: the last look's,
    when already read)."""
    from . import sequential

    con = ledger.connection
    last = looks[-1]
    if len(looks) > 1:
        path = _state_path(config, looks[-2])
        wanted = ((previous or {}).get("sequential") or {}).get("state")
        if wanted is not None and file_digest(path) == wanted:
            con.execute("CREATE OR REPLACE TEMP TABLE seq_carried AS SELECT * FROM read_parquet(?)", [str(path)])
            today = outcomes if outcomes is not None else _outcomes(config, last)[0]
            return sequential.carry(ledger, key, "seq_carried", looks[-2], last, today, config.outcome)
    days = ((day, outcomes if (day == last and outcomes is not None) else _outcomes(config, day)[0])
            for day in looks)  # read one look at a time: only when no state is carried
    return sequential.added_up(ledger, key, days, config.outcome)


def _keep_state(config: "ExperimentConfig", ledger: "Ledger", state: str, date: dt.date) -> str | None:
    """Write the look's state (sorted, atomically) beside the results and return its
    digest; states older than the look before are removed (a replay rebuilds them)."""
    path = _state_path(config, date)
    path.parent.mkdir(parents=True, exist_ok=True)
    for partial in path.parent.glob(".*.partial"):  # left by a job killed mid-write
        partial.unlink()
    _copy_to(ledger.connection, f"SELECT * FROM {state} ORDER BY unit_id", path)
    kept = sorted(path.parent.glob("*.parquet"))
    for stale in kept[:max(0, kept.index(path) - 1)]:
        stale.unlink(missing_ok=True)
    return file_digest(path)
