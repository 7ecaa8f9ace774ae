"""The durable assignment ledger: every unit's arm, and how it came to be, in one DuckDB file.

History is append-only: a unit's arm is a sequence of rows ``(arm, valid_from)``; a
change adds a row and never edits an old one (``valid_to`` is derived, the next row's
``valid_from``). Each day is written in one transaction whose last row is the day's entry
in ``days``, so a crash mid-write leaves the previous state intact and the day can be
re-run; re-running a recorded day changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import LedgerError
from .faults import crash_point
from .graph import write_table

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
"""

__all__ = ["Ledger", "record_assignment"]

_TABLES = ("experiments", "arms", "components", "events", "days")


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

    def __init__(self, path: str | os.PathLike):
        import duckdb

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path))
        except duckdb.Error as error:
            raise LedgerError(f"cannot open ledger '{self.path}': {error}") from error
        self._con.execute(_SCHEMA)

    # -- life cycle
    def close(self) -> None:
        """Close the DuckDB connection."""
        self._con.close()

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
        frame = self._con.execute(
            """SELECT unit_id, arm, contaminated, valid_from FROM arms WHERE experiment = ?
               QUALIFY row_number() OVER (PARTITION BY unit_id ORDER BY valid_from DESC) = 1
               ORDER BY unit_id""",
            [experiment],
        ).df()
        if not include_contaminated:
            frame = frame[~frame["contaminated"]].reset_index(drop=True)
        return self._typed(experiment, frame) if typed else frame

    def latest_components(self, experiment: str) -> pd.DataFrame:
        """Each unit's component on the last date it was seen: ``unit_id, component, date``."""
        frame = self._con.execute(
            """SELECT unit_id, component, stratum, date FROM components WHERE experiment = ?
               QUALIFY row_number() OVER (PARTITION BY unit_id ORDER BY date DESC) = 1 ORDER BY unit_id""",
            [experiment],
        ).df()
        return frame

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
        """Write the history (or ``events`` / ``current``) to CSV or Parquet."""
        frames = {"history": self.history, "events": self.events, "current": self.current_arms}
        if table not in frames:
            raise LedgerError(f"cannot export {table!r}; choose one of {list(frames)}.")
        return write_table(frames[table](experiment), path)

    # -- writing: every write is one transaction of inserts
    def write_day(
        self,
        experiment: str,
        date,
        *,
        arms: pd.DataFrame | None = None,
        components: pd.DataFrame | None = None,
        events: pd.DataFrame | None = None,
        summary: dict[str, Any],
        new_experiment: dict[str, Any] | None = None,
    ) -> None:
        """Append one day atomically: new arm rows, the day's components, its events, and
        the ``days`` row that marks the day as recorded. Refuses dates not after the last."""
        date = as_date(date)
        last = self.last_date(experiment) if new_experiment is None else None
        if new_experiment is not None and self.experiments()["experiment"].eq(experiment).any():
            raise LedgerError(f"experiment {experiment!r} already exists in '{self.path}'; pick another --salt.")
        if last is not None and date <= last:
            raise LedgerError(
                f"date {date} is not after {last}, the last date recorded for {experiment!r}; "
                "the ledger never rewrites history."
            )
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
                if frame is not None and len(frame):
                    self._insert(table, experiment, date, frame)
            con.execute(
                "INSERT INTO days VALUES (?, ?, now(), ?)",
                [experiment, date, json.dumps(summary, default=_json_default)],
            )
            crash_point("ledger-before-commit")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _insert(self, table: str, experiment: str, date: dt.date, frame: pd.DataFrame) -> None:
        frame = frame.copy()
        frame.insert(0, "experiment", experiment)
        if table == "arms":
            frame = frame.assign(valid_from=date)[["experiment", "unit_id", "arm", "valid_from", "contaminated", "reason"]]
        else:
            frame.insert(1, "date", date)
        for column in ("unit_id", "component"):  # ids are stored as text, typed on read
            if column in frame:
                frame[column] = frame[column].astype(str)
        self._con.register("incoming", frame)
        try:
            self._con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
        finally:
            self._con.unregister("incoming")


def record_assignment(ledger: Ledger, assignment, experiment: str, date) -> None:
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
    params = dict(assignment.params, seed=assignment.seed)
    ledger.write_day(
        experiment, date, arms=arms, summary={"date": str(as_date(date)), **assignment.summary()},
        new_experiment={"salt": assignment.salt or experiment, "design": assignment.design,
                        "params": params, "id_type": id_type(assignment.units)},
    )


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
