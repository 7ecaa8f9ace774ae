"""The durable assignment ledger: every unit's arm, and how it came to be, in one DuckDB file.

History is append-only: a unit's arm is a sequence of rows ``(arm, valid_from)``; a
change adds a row and never edits an old one (``valid_to`` is derived, the next row's
``valid_from``). Each day is written in one transaction whose last row is the day's entry
in ``days``, so a crash mid-write leaves the previous state intact and the day can be
re-run; re-running a recorded day with the same snapshot changes nothing.

What the ledger guards against:

- **a path that is not a ledger**: a CSV or Parquet file named as the ledger is refused
  (DuckDB would open it and record nothing);
- **a second writer**: DuckDB locks the file; a writer that finds it locked retries with
  backoff for ``lock_timeout`` seconds, then fails with a clear message;
- **different data for a recorded day**: each day stores a checksum of its snapshot, and a
  re-run with other data is refused (``replace`` voids the day first, with an audit row);
- **a mistyped date**: dates more than a day after today are refused unless
  ``allow_future``; a day recorded by mistake is undone by :meth:`Ledger.void`, which
  moves its rows (and every later day's) to ``voided_*`` tables and writes an ``audit`` row:
  nothing is deleted without a trace.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import LedgerError
from .faults import crash_point
from .io import write_table
from .names import LOCK_TIMEOUT

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    experiment VARCHAR PRIMARY KEY, salt VARCHAR, design VARCHAR, params VARCHAR,
    id_type VARCHAR, created TIMESTAMP);
CREATE TABLE IF NOT EXISTS arms (
    experiment VARCHAR, unit_id VARCHAR, arm INTEGER, valid_from DATE,
    contaminated BOOLEAN, reason VARCHAR);
CREATE TABLE IF NOT EXISTS components (
    experiment VARCHAR, date DATE, unit_id VARCHAR, component VARCHAR, stratum INTEGER);
CREATE TABLE IF NOT EXISTS events (
    experiment VARCHAR, date DATE, event VARCHAR, component VARCHAR, n_units INTEGER,
    arm INTEGER, detail VARCHAR);
CREATE TABLE IF NOT EXISTS days (
    experiment VARCHAR, date DATE, recorded TIMESTAMP, summary VARCHAR,
    PRIMARY KEY (experiment, date));
ALTER TABLE days ADD COLUMN IF NOT EXISTS checksum VARCHAR;
ALTER TABLE days ADD COLUMN IF NOT EXISTS chain VARCHAR;
CREATE TABLE IF NOT EXISTS audit (
    experiment VARCHAR, "time" TIMESTAMP, action VARCHAR, date DATE, detail VARCHAR);
ALTER TABLE audit ADD COLUMN IF NOT EXISTS voided VARCHAR;
ALTER TABLE audit ADD COLUMN IF NOT EXISTS chain VARCHAR;
"""
# the columns each table's seal covers (a day's rows, in a canonical order)
_SEALED = {"arms": ("unit_id", "arm", "valid_from", "contaminated", "reason"),
           "components": ("date", "unit_id", "component", "stratum"),
           "events": ("date", "event", "component", "n_units", "arm", "detail")}
# where a day's rows are dated, per table: what void moves
_DATED = {"arms": "valid_from", "components": "date", "events": "date", "days": "date"}
#: How a day's rows are sealed: ``ms1``, a multiset hash (each row's SHA-256 summed), one
#: streaming pass; seals name their rule, and ledgers sealed by the first rule still verify.
SEAL_RULE = "ms1"
_MAGIC = b"DUCK"  # a DuckDB database file has these bytes at offset 8
# each unit's arm in force on $d (its newest row valid from $d or before), and its component where last seen
_ARMS_IN_FORCE = ("SELECT unit_id, arm, contaminated, valid_from FROM arms WHERE experiment = $e AND valid_from <= $d "
                  "QUALIFY row_number() OVER (PARTITION BY unit_id ORDER BY valid_from DESC) = 1")
_LAST_SEEN = ("SELECT unit_id, arg_max(component, date) AS component, arg_max(stratum, date) AS stratum, "
              "max(date) AS date FROM components WHERE experiment = $e GROUP BY unit_id")  # one row per user a day
_ALWAYS = dt.date(9999, 12, 31)  # a date after every recorded one: the arm in force now

__all__ = ["Ledger", "create_tables", "record_assignment"]

_TABLES = ("experiments", "arms", "components", "events", "days")


def create_tables(connection) -> None:
    """The ledger's tables (empty where new) in a DuckDB ``connection``: a ledger file's,
    or an in-memory one a warehouse copy is read into.

    >>> import duckdb
    >>> connection = duckdb.connect()
    >>> create_tables(connection)
    >>> sorted(row[0] for row in connection.execute("SHOW TABLES").fetchall())
    ['arms', 'audit', 'components', 'days', 'events', 'experiments']
    """
    connection.execute(_SCHEMA)


def as_date(value: str | dt.date) -> dt.date:
    """A ``datetime.date`` from a date, a datetime or ``YYYY-MM-DD`` text; anything else is a :class:`LedgerError`."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as error:
        raise LedgerError(f"date {value!r} is not a YYYY-MM-DD date.") from error


class Ledger:
    """An assignment ledger in the DuckDB file ``path`` (created when missing).

    The ledger is append-only: a day is written whole in one transaction or not at all,
    and an arm is never overwritten (a change closes the old row and opens a new one).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder, Ledger(pathlib.Path(folder) / "l.duckdb") as ledger:
    ...     ledger.experiments().empty
    True
    """

    def __init__(self, path: str | os.PathLike, *, lock_timeout: float = LOCK_TIMEOUT):
        import duckdb

        self.path = self.check_path(path)
        self._read_only = False
        self._created = not self.path.exists()  # a ledger this opening made: removed on close if left empty
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline, wait = time.monotonic() + max(float(lock_timeout), 0.0), 0.05
        while True:
            try:
                self._con = duckdb.connect(str(self.path))
                break
            except duckdb.Error as error:
                locked = "lock" in str(error).lower()
                if not locked or time.monotonic() + wait > deadline:
                    why = (f"it is locked by another writer (waited {lock_timeout:g} s; raise --lock-timeout or "
                           "wait for the other job)" if locked else str(error).splitlines()[0])
                    raise LedgerError(f"cannot open ledger '{self.path}': {why}.") from error
                time.sleep(wait)
                wait = min(wait * 2, 1.0)
        create_tables(self._con)

    @classmethod
    def over(cls, connection, path: str | os.PathLike) -> "Ledger":
        """A read-only ledger over tables already in ``connection`` (an in-memory DuckDB
        holding a warehouse's partitions: :func:`spillover.warehouse.open_warehouse`),
        ``path`` naming where they came from. Reading and :meth:`verify` work as on the
        file; writing is refused."""
        ledger = cls.__new__(cls)
        ledger.path, ledger._created, ledger._con, ledger._read_only = Path(path), False, connection, True
        return ledger

    def _writable(self) -> None:
        if self._read_only:
            raise LedgerError(f"'{self.path}' is a warehouse copy of a ledger, read-only: write to the ledger file, "
                              "then publish it (`spillover ledger publish`).")

    @staticmethod
    def check_path(path: str | os.PathLike) -> Path:
        """``path`` if a ledger can live there (a new file, or a DuckDB file), checked
        without opening it: what a command checks before it writes anything.

        >>> Ledger.check_path("results/ledger.duckdb").name
        'ledger.duckdb'
        """
        path = Path(path)
        if path.is_dir():
            raise LedgerError(f"ledger '{path}' is a folder; name a DuckDB file (e.g. ledger.duckdb).")
        if path.exists() and path.stat().st_size:
            with open(path, "rb") as handle:
                head = handle.read(12)
            if head[8:12] != _MAGIC:
                raise LedgerError(f"'{path}' is not a ledger (not a DuckDB file): name a new or existing "
                                  "ledger file, not a data table.")
        return path

    # -- life cycle
    def close(self) -> None:
        """Close the DuckDB connection. A ledger file this object created and that holds
        no experiment (a refused command's) is removed: a refusal leaves nothing behind."""
        empty = self._created and not self._con.execute("SELECT count(*) FROM experiments").fetchone()[0]
        self._con.close()
        if empty:
            for leftover in (self.path, self.path.with_name(self.path.name + ".wal")):
                leftover.unlink(missing_ok=True)

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading
    def experiments(self) -> pd.DataFrame:
        """One row per experiment: its name, salt, design, parameters and creation time."""
        return self._con.execute("SELECT * FROM experiments ORDER BY created").df()

    def experiment(self, name: str) -> dict[str, Any]:
        """The record of experiment ``name`` (its ``params`` decoded); an unknown name is an error."""
        row = self._con.execute("SELECT * FROM experiments WHERE experiment = ?", [name]).df()
        if row.empty:
            known = self.experiments()["experiment"].tolist()
            raise LedgerError(f"ledger '{self.path}' has no experiment {name!r}; it has {known}.")
        record = row.iloc[0].to_dict()
        record["params"] = json.loads(record["params"])
        return record

    def only_experiment(self) -> str:
        """The name of the ledger's only experiment; several (or none) is an error."""
        names = self.experiments()["experiment"].tolist()
        if len(names) != 1:
            raise LedgerError(f"ledger '{self.path}' holds {len(names)} experiments {names}; name one (--salt).")
        return names[0]

    def last_date(self, experiment: str) -> dt.date | None:
        """The last date recorded for ``experiment`` (None before the first)."""
        value = self._con.execute("SELECT max(date) FROM days WHERE experiment = ?", [experiment]).fetchone()[0]
        return value

    def day_summary(self, experiment: str, date) -> dict[str, Any] | None:
        """The summary recorded for ``experiment`` on ``date``, or None."""
        row = self._con.execute(
            "SELECT summary FROM days WHERE experiment = ? AND date = ?", [experiment, as_date(date)]
        ).fetchone()
        return None if row is None else json.loads(row[0])

    def recorded_day(self, experiment: str, date, checksum: str | None) -> dict[str, Any] | None:
        """The summary of a recorded day if its snapshot had ``checksum``; None if the day is
        not recorded; a :class:`LedgerError` if it was recorded from different data."""
        date = as_date(date)
        row = self._con.execute("SELECT summary, checksum FROM days WHERE experiment = ? AND date = ?",
                                [experiment, date]).fetchone()
        if row is None:
            return None
        if checksum is not None and row[1] is not None and row[1] != checksum:
            raise LedgerError(
                f"{date} is already recorded for {experiment!r} from a different snapshot (checksum {row[1][:12]}, "
                f"this one {checksum[:12]}); re-run with --replace to void {date} and later days (an audit row keeps "
                "them) and record this one."
            )
        return json.loads(row[0])

    def days(self, experiment: str) -> pd.DataFrame:
        """One row per recorded day: ``date, recorded, checksum`` and the day's counts."""
        frame = self._con.execute(
            "SELECT date, recorded, checksum, summary FROM days WHERE experiment = ? ORDER BY date", [experiment]
        ).df()
        counts = pd.DataFrame([json.loads(text) for text in frame.pop("summary")], index=frame.index)
        return frame.join(counts.drop(columns=["date"], errors="ignore"))

    def audit(self, experiment: str | None = None) -> pd.DataFrame:
        """The audit trail: every void (and replace) with its time, date and reason."""
        if experiment is None:
            return self._con.execute("SELECT * FROM audit ORDER BY \"time\"").df()
        return self._con.execute("SELECT * FROM audit WHERE experiment = ? ORDER BY \"time\"", [experiment]).df()

    def _typed(self, experiment: str, frame: pd.DataFrame, column: str = "unit_id") -> pd.DataFrame:
        id_type = self.experiment(experiment)["id_type"]
        if id_type == "int" and len(frame):
            frame[column] = frame[column].astype(np.int64)
        return frame

    def history(self, experiment: str) -> pd.DataFrame:
        """Every arm a unit has had: ``unit_id, arm, valid_from, valid_to, contaminated,
        reason``; ``valid_to`` is empty for the arm in force."""
        frame = self._con.execute(
            """SELECT unit_id, arm, valid_from,
                      lead(valid_from) OVER (PARTITION BY unit_id ORDER BY valid_from) AS valid_to,
                      contaminated, reason
               FROM arms WHERE experiment = ? ORDER BY unit_id, valid_from""",
            [experiment],
        ).df()
        return self._typed(experiment, frame)

    def current_arms(
        self, experiment: str, *, include_contaminated: bool = True, typed: bool = True
    ) -> pd.DataFrame:
        """Each unit's arm in force: ``unit_id, arm, contaminated, valid_from``.

        Units a merge policy flagged are contaminated from that date; analyses leave them
        out with ``include_contaminated=False``. ``typed=False`` keeps ids as stored text.
        """
        frame = self._con.execute(_ARMS_IN_FORCE + " ORDER BY unit_id", {"e": experiment, "d": _ALWAYS}).df()
        if not include_contaminated:
            frame = frame[~frame["contaminated"]].reset_index(drop=True)
        return self._typed(experiment, frame) if typed else frame

    def arms_on(self, experiment: str, date) -> pd.DataFrame:
        """Each unit's arm in force on ``date`` (rows valid from that date or before):
        ``unit_id, arm, contaminated, valid_from``, ids typed as they went in. A day
        analysed again after later days were recorded sees the arms it had then."""
        frame = self._con.execute(_ARMS_IN_FORCE + " ORDER BY unit_id", {"e": experiment, "d": as_date(date)}).df()
        return self._typed(experiment, frame)

    def components_on(self, experiment: str, date) -> pd.DataFrame:
        """The components of the last snapshot recorded on or before ``date``: ``unit_id,
        component, stratum, date`` (a day whose snapshot was missing shows the day before's)."""
        return self._con.execute(
            """SELECT unit_id, component, stratum, date FROM components
               WHERE experiment = ? AND date = (SELECT max(date) FROM components WHERE experiment = ? AND date <= ?)
               ORDER BY unit_id""",
            [experiment, experiment, as_date(date)],
        ).df()

    def users_on(self, experiment: str, date) -> tuple[pd.DataFrame, dt.date | None]:
        """The users of the last snapshot recorded on or before ``date`` with the arm in
        force on ``date``: ``unit_id, arm, contaminated, valid_from, component`` (ids typed
        as they went in, sorted), joined here rather than in memory; and that snapshot's date.
        A day analyses those with ``arm >= 0`` and not ``contaminated``.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> from spillover import synth
        >>> from spillover.evolve import start
        >>> snapshot = synth.evolving_memberships(500, n_days=1, seed=1)[0]
        >>> with tempfile.TemporaryDirectory() as folder, Ledger(pathlib.Path(folder) / "l.duckdb") as ledger:
        ...     _ = start(ledger, snapshot, "2026-11-23", salt="exp", design="cluster")
        ...     users, day = ledger.users_on("exp", "2026-11-24")    # the day after: the last snapshot's
        >>> len(users) == snapshot["user_id"].nunique(), str(day)
        (True, '2026-11-23')
        """
        table, snapshot = self.stage_users(experiment, date)
        frame = self._con.execute(f"SELECT {self.typed_id(experiment)} AS unit_id, arm, contaminated, valid_from, "
                                  f"component FROM {table} ORDER BY 1").df()
        return frame, snapshot

    def typed_id(self, experiment: str, column: str = "unit_id") -> str:
        """SQL that types ``column`` (an id stored as text) as ``experiment``'s ids went in.

        >>> import tempfile, pathlib
        >>> from spillover.design import IndividualDesign
        >>> with tempfile.TemporaryDirectory() as folder, Ledger(pathlib.Path(folder) / "l.duckdb") as ledger:
        ...     record_assignment(ledger, IndividualDesign([1, 2]).assign(seed=1), "exp", "2026-11-23")
        ...     ledger.typed_id("exp")
        'CAST(unit_id AS BIGINT)'
        """
        return f"CAST({column} AS BIGINT)" if self.experiment(experiment)["id_type"] == "int" else column

    def stage_users(self, experiment: str, date) -> tuple[str, dt.date | None]:
        """:meth:`users_on` as a temporary table of this connection (ids as stored text),
        for SQL that joins a day's users without fetching them; its name and the snapshot's date."""
        date = as_date(date)
        snapshot = self._con.execute("SELECT max(date) FROM components WHERE experiment = ? AND date <= ?",
                                     [experiment, date]).fetchone()[0]
        self._con.execute(
            f"""CREATE OR REPLACE TEMP TABLE ledger_users AS WITH a AS ({_ARMS_IN_FORCE})
               SELECT a.unit_id, a.arm, a.contaminated, a.valid_from, c.component FROM a JOIN components c
               ON c.unit_id = a.unit_id WHERE c.experiment = $e AND c.date = $s""",
            {"e": experiment, "d": date, "s": snapshot})
        return "ledger_users", (None if snapshot is None else as_date(snapshot))

    def stage_history(self, experiment: str, date) -> str:
        """Every component row of ``experiment`` up to ``date`` (:meth:`components_until`) as
        a temporary table of this connection: its name."""
        self._con.execute("CREATE OR REPLACE TEMP TABLE ledger_history AS SELECT unit_id, component, date FROM components "
                          "WHERE experiment = $e AND date <= $d", {"e": experiment, "d": as_date(date)})
        return "ledger_history"

    def components_until(self, experiment: str, date) -> pd.DataFrame:
        """Every component row of ``experiment`` up to ``date``: ``unit_id, component, date``
        (who shared a component on which day: what lineages are built from)."""
        return self._con.execute("SELECT unit_id, component, date FROM components WHERE experiment = ? AND date <= ? "
                                 "ORDER BY date, unit_id", [experiment, as_date(date)]).df()

    def checksums(self, experiment: str) -> dict[dt.date, str | None]:
        """Each recorded day's snapshot checksum (``missing`` for a day recorded without
        its snapshot), by date."""
        rows = self._con.execute("SELECT date, checksum FROM days WHERE experiment = ? ORDER BY date",
                                 [experiment]).fetchall()
        return {as_date(date): checksum for date, checksum in rows}

    def latest_components(self, experiment: str) -> pd.DataFrame:
        """Each unit's component on the last date it was seen: ``unit_id, component, date``."""
        return self._con.execute(_LAST_SEEN + " ORDER BY unit_id", {"e": experiment}).df()

    def events(self, experiment: str) -> pd.DataFrame:
        """Component events (created, split, merged, removed) of every day."""
        return self._con.execute(
            "SELECT * FROM events WHERE experiment = ? ORDER BY date, event, component", [experiment]
        ).df()

    def daily_summaries(self, experiment: str) -> pd.DataFrame:
        """One row per recorded day: the counts of :class:`~spillover.evolve.DayReport`."""
        rows = self._con.execute(
            "SELECT summary FROM days WHERE experiment = ? ORDER BY date", [experiment]
        ).fetchall()
        return pd.DataFrame([json.loads(r[0]) for r in rows])

    def export(self, experiment: str, path: str | os.PathLike, table: str = "history") -> Path:
        """Write the history (or ``events``, ``current``, ``components``, ``days``, ``audit``) to CSV or Parquet."""
        frames = {"history": self.history, "events": self.events, "current": self.current_arms,
                  "components": self.latest_components, "days": self.days, "audit": self.audit}
        if table not in frames:
            raise LedgerError(f"cannot export {table!r}; choose one of {list(frames)}.")
        return write_table(frames[table](experiment), path)

    # -- writing: every write is one transaction of inserts
    def write_day(
        self,
        experiment: str,
        date,
        *,
        arms: pd.DataFrame | str | None = None,
        components: pd.DataFrame | str | None = None,
        events: pd.DataFrame | str | None = None,
        summary: dict[str, Any],
        new_experiment: dict[str, Any] | None = None,
        checksum: str | None = None,
        allow_future: bool = False,
    ) -> None:
        """Append one day atomically: new arm rows, the day's components, its events, and
        the ``days`` row (with the snapshot's ``checksum``) that marks the day as recorded.
        Refuses dates not after the last, and (unless ``allow_future``) after tomorrow."""
        self._writable()
        date = self.check_date(experiment, date, allow_future=allow_future, new=new_experiment is not None)
        con = self._con
        con.execute("BEGIN TRANSACTION")
        try:
            if new_experiment is not None:
                con.execute(
                    "INSERT INTO experiments VALUES (?, ?, ?, ?, ?, now())",
                    [experiment, new_experiment["salt"], new_experiment["design"],
                     json.dumps(new_experiment["params"], default=_json_default), new_experiment["id_type"]],
                )
            for table, frame in (("arms", arms), ("components", components), ("events", events)):
                if frame is not None and (isinstance(frame, str) or len(frame)):
                    self._insert(table, experiment, date, frame)
            text = json.dumps(summary, default=_json_default)
            chain = self._chain(experiment, date, text, checksum, self._audit_head(experiment))
            con.execute(
                "INSERT INTO days (experiment, date, recorded, summary, checksum, chain) VALUES (?, ?, now(), ?, ?, ?)",
                [experiment, date, text, checksum, chain],
            )
            self._store_fingerprint(experiment, date)
            crash_point("ledger-before-commit")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def check_date(self, experiment: str, date, *, allow_future: bool = False, new: bool = False) -> dt.date:
        """``date`` as a date if ``experiment`` may record it: after its last day (a new
        experiment: a name not yet used), and not after tomorrow unless ``allow_future``."""
        date = as_date(date)
        if not allow_future and date > dt.date.today() + dt.timedelta(days=1):
            raise LedgerError(f"date {date} is in the future (today is {dt.date.today()}); a mistyped date would block "
                              "every real one: check it, or pass --allow-future.")
        if new:
            if self.experiments()["experiment"].eq(experiment).any():
                raise LedgerError(f"experiment {experiment!r} already exists in '{self.path}'; name another "
                                  "(--experiment), or continue it with `spillover evolve`.")
            return date
        last = self.last_date(experiment)
        if last is not None and date <= last:
            raise LedgerError(
                f"date {date} is not after {last}, the last date recorded for {experiment!r}; "
                "the ledger never rewrites history (`spillover ledger void` undoes a day, with an audit row)."
            )
        return date

    def void(self, experiment: str, date, *, reason: str) -> int:
        """Undo ``date`` and every later day of ``experiment``: their rows move to the
        ``voided_*`` tables and an ``audit`` row records when, what and why. Returns the
        number of days voided. The first day cannot be voided (start a new experiment).

        Examples
        --------
        >>> import tempfile, pathlib
        >>> from spillover import synth
        >>> from spillover.evolve import evolve, start
        >>> days = synth.evolving_memberships(500, n_days=3, seed=1)
        >>> with tempfile.TemporaryDirectory() as folder, Ledger(pathlib.Path(folder) / "l.duckdb") as ledger:
        ...     _ = start(ledger, days[0], "2026-11-20", salt="exp", design="cluster")
        ...     _ = [evolve(ledger, day, f"2026-11-2{i}") for i, day in ((1, days[1]), (2, days[2]))]
        ...     n = ledger.void("exp", "2026-11-21", reason="snapshot of the wrong day")
        ...     str(ledger.last_date("exp")), n, ledger.audit("exp")["action"].tolist()
        ('2026-11-20', 2, ['void'])
        """
        self._writable()
        date = as_date(date)
        first = self._con.execute("SELECT min(date) FROM days WHERE experiment = ?", [experiment]).fetchone()[0]
        self.experiment(experiment)  # an unknown experiment is an error naming the known ones
        if first is None or date <= first:
            raise LedgerError(f"cannot void {date}: the first day of {experiment!r} is {first}; voiding it would "
                              "leave no design. Start a new experiment instead.")
        n_days = self._con.execute("SELECT count(*) FROM days WHERE experiment = ? AND date >= ?",
                                   [experiment, date]).fetchone()[0]
        if not n_days:
            raise LedgerError(f"nothing to void: {experiment!r} has no day on or after {date} "
                              f"(last: {self.last_date(experiment)}).")
        con = self._con
        con.execute("BEGIN TRANSACTION")
        try:
            void_id = con.execute("SELECT count(*) + 1 FROM audit").fetchone()[0]
            for table, column in _DATED.items():
                con.execute(f"CREATE TABLE IF NOT EXISTS voided_{table} AS "
                            f"SELECT 0::BIGINT AS void_id, * FROM {table} LIMIT 0")
                if table == "days":  # a ledger voided before days were sealed
                    con.execute("ALTER TABLE voided_days ADD COLUMN IF NOT EXISTS chain VARCHAR")
                con.execute(f"INSERT INTO voided_{table} BY NAME SELECT ?::BIGINT AS void_id, * FROM {table} "
                            f"WHERE experiment = ? AND {column} >= ?", [void_id, experiment, date])
                con.execute(f"DELETE FROM {table} WHERE experiment = ? AND {column} >= ?", [experiment, date])
            detail = f"void {void_id}: {n_days} day(s) from {date}; {reason}"
            voided = self._voided_digest(void_id)
            con.execute("INSERT INTO audit VALUES (?, now(), 'void', ?, ?, ?, NULL)", [experiment, date, detail, voided])
            con.execute("UPDATE audit SET chain = ? WHERE experiment = ? AND detail = ? AND chain IS NULL",
                        [self._audit_chain(experiment), experiment, detail])
            self._store_fingerprint(experiment)
            crash_point("ledger-before-commit")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return int(n_days)

    # -- tamper evidence: each day sealed by a hash chained to the day before
    def _rows_digest(self, table: str, where: str, params: list[Any], rule: str = SEAL_RULE) -> str:
        """The digest of ``table``'s rows matching ``where`` (their sealed columns), by ``rule``:
        :data:`SEAL_RULE`, each row's SHA-256 summed as two 64-bit numbers with the row count
        (a multiset hash: one streaming pass, memory flat however many rows a day has); or
        ``""``, the first rule, one SHA-256 of the rows sorted and joined (memory grows with
        the day: kept to verify ledgers sealed by it)."""
        columns = _SEALED.get(table) or tuple(c for c in self._columns(table) if c not in ("experiment",))
        row = " || '|' || ".join(f"coalesce(CAST({_quoted(c)} AS VARCHAR), '')" for c in columns)
        if rule == "":
            return self._con.execute(f"SELECT sha256(coalesce(string_agg({row}, chr(10) ORDER BY {row}), '')) "
                                     f"FROM {table} WHERE {where}", params).fetchone()[0]
        if rule != SEAL_RULE:
            raise LedgerError(f"seal rule {rule!r} is not known to this version of spillover; upgrade it.")
        parts = ", ".join(f"coalesce(sum(('0x' || substr(h, {start}, 16))::UBIGINT), 0)" for start in (1, 17))
        n, high, low = self._con.execute(f"SELECT count(*), {parts} FROM (SELECT sha256({row}) AS h FROM {table} "
                                         f"WHERE {where})", params).fetchone()
        return f"{n}:{high}:{low}"

    def _columns(self, table: str) -> list[str]:
        return [r[0] for r in self._con.execute(f"DESCRIBE {table}").fetchall()]

    def _chain(self, experiment: str, date: dt.date, summary: str, checksum: str | None, audit_head: str,
               rule: str = SEAL_RULE) -> str:
        """The seal of ``date``: the day before's seal (the experiment's record, for day one),
        the day's arm, component and event rows (by the seal ``rule``, which prefixes the
        seal), its summary and checksum, and the audit trail's head when the day was recorded."""
        before = self._con.execute("SELECT chain FROM days WHERE experiment = ? AND date < ? ORDER BY date DESC "
                                   "LIMIT 1", [experiment, date]).fetchone()
        if before is None:
            record = self._con.execute("SELECT salt, design, params, id_type FROM experiments WHERE experiment = ?",
                                       [experiment]).fetchone()
            previous = _sha256("experiment", experiment, *map(str, record or ()))
        else:
            previous = before[0] or ""
        rows = [self._rows_digest(table, f"experiment = ? AND {_DATED[table]} = ?", [experiment, date], rule)
                for table in _SEALED]
        return _sealed(rule, _sha256(previous, str(date), *rows, summary, checksum or "", audit_head))

    def _audit_head(self, experiment: str, before: Any = None) -> str:
        """The last audit row's seal for ``experiment`` (recorded before ``before``), or ''."""
        query = "SELECT chain FROM audit WHERE experiment = ?" + (' AND "time" < ?' if before is not None else "")
        row = self._con.execute(query + ' ORDER BY "time" DESC LIMIT 1',
                                [experiment] + ([before] if before is not None else [])).fetchone()
        return (row[0] or "") if row else ""

    def _audit_chain(self, experiment: str) -> str:
        """The seal of ``experiment``'s newest audit row: every audit row's text and voided
        rows' digest, chained in time order."""
        chain = ""
        rows = self._con.execute('SELECT "time", action, date, detail, voided FROM audit WHERE experiment = ? '
                                 'ORDER BY "time"', [experiment]).fetchall()
        for row in rows:  # a loop over the audit: a few rows
            chain = _sha256(chain, *map(str, row))
        return chain

    def _voided_digest(self, void_id: int, rule: str = SEAL_RULE) -> str:
        """The digest of the rows one void moved, in every ``voided_*`` table (seal ``rule``)."""
        return _sealed(rule, _sha256(*(self._rows_digest(f"voided_{table}", "void_id = ?", [void_id], rule)
                                       for table in _DATED)))

    # -- a cheap check that nothing changed since the ledger's own last write
    def fingerprint(self, experiment: str, date: dt.date | None = None,
                    tables: tuple[str, ...] | None = None) -> dict[str, list[str]]:
        """Per table holding ``experiment``'s rows (``voided_*`` included; or ``tables``):
        the row count and the sum of 64-bit hashes of the rows (every column), as text;
        with ``date``, of that day's rows only. One scan of the columns, several times
        cheaper than the seals, so :meth:`unchanged` can run before every day; like the
        seals it detects edits, additions and removals (neither is a signature)."""
        if tables is None:
            tables = ("experiments", "arms", "components", "events", "days", "audit",
                      *(f"voided_{t}" for t in _DATED if self._has_table(f"voided_{t}")))
        out = {}
        for table in tables:  # a loop over a few tables
            columns = ", ".join(_quoted(c) for c in self._columns(table) if c != "experiment")
            where, params = "experiment = ?", [experiment]
            if date is not None:
                where, params = where + f" AND {_DATED[table]} = ?", params + [date]
            n, total = self._con.execute(f"SELECT count(*), coalesce(sum(hash({columns})), 0) FROM {table} "
                                         f"WHERE {where}", params).fetchone()
            out[table] = [str(n), str(total)]
        return out

    def unchanged(self, experiment: str) -> bool:
        """Whether ``experiment``'s rows are exactly those the ledger's last write left
        (:meth:`fingerprint` against the one stored with that write); False where none was
        stored (a ledger written before fingerprints, or a warehouse copy)."""
        if not self._has_table("ledger_fingerprints"):
            return False
        row = self._con.execute("SELECT fingerprint FROM ledger_fingerprints WHERE experiment = ?",
                                [experiment]).fetchone()
        return row is not None and json.loads(row[0]) == self.fingerprint(experiment)

    def _store_fingerprint(self, experiment: str, date: dt.date | None = None) -> None:
        """Store ``experiment``'s :meth:`fingerprint`, inside the write's transaction: after
        a day is appended, the stored one plus that day's arm, component and event rows
        (the small days and audit tables in full); after a void, or where none is stored,
        the whole of it."""
        self._con.execute("CREATE TABLE IF NOT EXISTS ledger_fingerprints (experiment VARCHAR, fingerprint VARCHAR)")
        row = self._con.execute("SELECT fingerprint FROM ledger_fingerprints WHERE experiment = ?",
                                [experiment]).fetchone()
        stored = json.loads(row[0]) if row is not None else {}
        dated = ("arms", "components", "events")
        if date is None or not all(t in stored for t in dated):
            now = self.fingerprint(experiment)
        else:
            added = self.fingerprint(experiment, date, dated)
            grown = {t: [str(int(a) + int(b)) for a, b in zip(stored[t], added[t])] for t in dated}
            now = {**stored, **grown, **self.fingerprint(experiment, tables=("experiments", "days", "audit"))}
        self._con.execute("DELETE FROM ledger_fingerprints WHERE experiment = ?", [experiment])
        self._con.execute("INSERT INTO ledger_fingerprints VALUES (?, ?)", [experiment, json.dumps(now)])

    def _has_table(self, name: str) -> bool:
        return bool(self._con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?",
                                      [name]).fetchone()[0])

    def verify(self, experiment: str) -> list[str]:
        """Check the experiment's seals: each day's rows, summary and checksum against the
        chain recorded with it, the audit trail row by row, and the rows each void moved.
        Returns the problems found (empty: intact), the first bad day first.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> from spillover.design import IndividualDesign
        >>> assignment = IndividualDesign(["a", "b", "c", "d"]).assign(seed=1)
        >>> with tempfile.TemporaryDirectory() as folder, Ledger(pathlib.Path(folder) / "l.duckdb") as ledger:
        ...     record_assignment(ledger, assignment, "exp", "2026-11-23")
        ...     intact = ledger.verify("exp")
        ...     _ = ledger._con.execute("UPDATE arms SET arm = 1 - arm WHERE unit_id = 'a'")
        ...     intact, ledger.verify("exp")[0][:54]
        ([], 'day 2026-11-23: its arms, components, events or summar')
        """
        self.experiment(experiment)
        problems: list[str] = []
        audit = self._con.execute('SELECT "time", action, date, detail, voided, chain FROM audit '
                                  'WHERE experiment = ? ORDER BY "time"', [experiment]).fetchall()
        chain = ""
        for time_, action, date, detail, voided, stored in audit:  # a loop over the audit: a few rows
            chain = _sha256(chain, *map(str, (time_, action, date, detail, voided)))
            if stored is not None and stored != chain:
                problems.append(f"audit row of {time_:%Y-%m-%d %H:%M:%S} ({action} {date}): edited or a row before it "
                                "removed")
                break
            void_id = int(detail.split(":")[0].split()[-1]) if action == "void" and detail.startswith("void ") else None
            if void_id is not None and voided is not None:
                try:
                    digest = self._voided_digest(void_id, _rule_of(voided))
                except Exception:  # noqa: BLE001 - a voided_* table dropped
                    digest = None
                if digest != voided:
                    problems.append(f"the rows moved by void {void_id} ({date}) were edited or their voided_* table "
                                    "dropped")
        days = self._con.execute("SELECT date, recorded, summary, checksum, chain FROM days WHERE experiment = ? "
                                 "ORDER BY date", [experiment]).fetchall()
        for date, recorded, summary, checksum, stored in days:  # a loop over days
            if stored is None:
                continue  # recorded before days were sealed: nothing to check against
            if self._chain(experiment, date, summary, checksum, self._audit_head(experiment, recorded),
                           _rule_of(stored)) != stored:
                problems.insert(0, f"day {date}: its arms, components, events or summary differ from what was sealed "
                                   "(edited, added or removed rows; or an audit row before it removed)")
                break
        return problems

    @property
    def connection(self):
        """The ledger's DuckDB connection: an engine that runs the day's SQL beside the
        ledger's tables (:meth:`stage`) works in it, and hands its rows to :meth:`write_day`
        by the name of a temporary table."""
        return self._con

    def stage(self, experiment: str) -> tuple[str, str]:
        """Temporary tables of ``experiment`` for an engine's SQL: each unit's component on
        the last date it was seen (``unit_id, component, stratum, date``) and its arm in
        force (``unit_id, arm, contaminated, valid_from``), ids as stored text. Returns their names."""
        self._con.execute(f"CREATE OR REPLACE TEMP TABLE ledger_known AS {_LAST_SEEN}", {"e": experiment})
        self._con.execute(f"CREATE OR REPLACE TEMP TABLE ledger_current AS {_ARMS_IN_FORCE}",
                          {"e": experiment, "d": _ALWAYS})
        return "ledger_known", "ledger_current"

    def _insert(self, table: str, experiment: str, date: dt.date, frame: pd.DataFrame | str) -> None:
        if isinstance(frame, str):  # a temporary table of this connection, written by an engine
            columns = {"arms": "unit_id, arm, $d AS valid_from, contaminated, reason",
                       "components": "$d AS date, unit_id, component, stratum",
                       "events": "$d AS date, event, component, n_units, arm, detail"}[table]
            self._con.execute(f"INSERT INTO {table} BY NAME SELECT $e AS experiment, {columns} FROM {frame}",
                              {"e": experiment, "d": date})
            return
        dated = "valid_from" if table == "arms" else "date"
        texts = {c: frame[c] if frame[c].dtype.kind in "iu" else frame[c].astype(str)  # ids stored as text
                 for c in ("unit_id", "component") if c in frame}
        frame = frame.assign(**texts).drop(columns=[dated], errors="ignore")
        select = ", ".join(f"CAST({_quoted(c)} AS VARCHAR) AS {_quoted(c)}" if c in texts else _quoted(c)
                           for c in frame.columns)  # integer ids made text in SQL, not as a million Python strings
        self._con.register("incoming", frame)
        try:
            self._con.execute(f"INSERT INTO {table} BY NAME SELECT $e AS experiment, $d AS {dated}, {select} "
                              "FROM incoming", {"e": experiment, "d": date})
        finally:
            self._con.unregister("incoming")


def record_assignment(ledger: Ledger, assignment, experiment: str, date, *, allow_future: bool = False) -> None:
    """Store a new experiment's assignment (every unit, out-of-experiment ones as ``-1``)
    as its first day, in one transaction.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from spillover.design import IndividualDesign
    >>> assignment = IndividualDesign(["a", "b", "c", "d"]).assign(seed=1)
    >>> with tempfile.TemporaryDirectory() as folder, Ledger(pathlib.Path(folder) / "l.duckdb") as ledger:
    ...     record_assignment(ledger, assignment, "checkout-v2", "2026-11-23")
    ...     ledger.current_arms("checkout-v2")["arm"].tolist() == assignment.arms.tolist()
    True
    """
    arms = pd.DataFrame({"unit_id": assignment.units, "arm": assignment.arms.astype(np.int64),
                         "contaminated": False, "reason": "assigned"})
    params = dict(assignment.params, seed=assignment.seed, record=assignment.record.to_dict())
    ledger.write_day(
        experiment, date, arms=arms, summary={"date": str(as_date(date)), **assignment.to_dict()},
        new_experiment={"salt": assignment.salt or experiment, "design": assignment.design,
                        "params": params, "id_type": id_type(assignment.units)},
        allow_future=allow_future,
    )


def _sealed(rule: str, digest: str) -> str:
    """A seal names the rule that made it (the first rule's seals are bare hex)."""
    return f"{rule}:{digest}" if rule else digest


def _rule_of(seal: str) -> str:
    """The rule a stored seal was made by (:func:`_sealed`)."""
    return seal.split(":", 1)[0] if ":" in seal else ""


def _sha256(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass") + b"\x1e")
    return digest.hexdigest()


def _quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (dt.date,)):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in the ledger")


def id_type(index: pd.Index) -> str:
    """How unit ids are typed, so they come back from the ledger as they went in."""
    return "int" if index.dtype.kind in "iu" else "str"
