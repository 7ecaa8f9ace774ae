"""The ledger where a warehouse reads it: every committed day of an experiment published
as Parquet, one folder per day, made visible whole by one atomic rename.

The DuckDB ledger (:mod:`spillover.ledger`) stays the one place a day is committed: it
locks out a second writer and writes a day in one transaction. :func:`publish` copies
each committed day it has not published yet into the warehouse folder, in the layout
Spark, DuckDB, Trino and Hive read as partitions::

    <folder>/experiment=<name>/_experiment.parquet             the experiment's record
    <folder>/experiment=<name>/_audit.parquet                  the audit trail (replaced whole)
    <folder>/experiment=<name>/date=<YYYY-MM-DD>/arms.parquet  the arm rows valid from that day
                                                 components.parquet, events.parquet, days.parquet
                                                 _COMMITTED     each file's SHA-256 and rows, the day's seal
    <folder>/experiment=<name>/_voided/void=<id>/...            the rows a void moved, kept
    <folder>/_staging/                                          in flight; cleared by the next publish

Partition columns (``experiment``, ``date``) live in the path, not in the files, as
Hive's layout has them; names starting with ``_`` are hidden from those readers.

The guarantees are the ledger's:

- **a day is visible whole or not at all**: its files and marker are written in
  ``_staging`` and the folder renamed into place in one step; a publish killed at any
  point leaves the days before it, and the next publish (every ``spillover run`` with a
  warehouse does one) clears what it left and publishes the rest;
- **checksums and seals**: the marker holds each file's SHA-256 and the ledger's seal of
  the day (the hash chained to the day before); :func:`open_warehouse` reads the
  partitions back into a read-only :class:`~spillover.ledger.Ledger`, whose
  :meth:`~spillover.ledger.Ledger.verify` recomputes every seal from the rows, and
  :func:`verify_files` checks the files against their markers;
- **void with an audit trail**: a day the ledger voided is withdrawn (renamed out of
  sight, then removed) only after the rows that void moved are published under
  ``_voided`` with the audit trail that names it;
- **one experiment per name**: a folder already holding another ledger's experiment of
  the same name (a different record) is refused.

Examples
--------
>>> import tempfile, pathlib
>>> from spillover.design import IndividualDesign
>>> from spillover.ledger import Ledger, record_assignment
>>> with tempfile.TemporaryDirectory() as folder:
...     root = pathlib.Path(folder)
...     with Ledger(root / "l.duckdb") as ledger:
...         record_assignment(ledger, IndividualDesign(["a", "b", "c", "d"]).assign(seed=1), "exp", "2026-11-23")
...         done = publish(ledger, "exp", root / "warehouse")
...     with open_warehouse(root / "warehouse") as read:
...         done, read.current_arms("exp")["unit_id"].tolist(), read.verify("exp"), verify_files(root / "warehouse")
({'published': ['2026-11-23'], 'withdrawn': []}, ['a', 'b', 'c', 'd'], [], [])
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from .errors import LedgerError
from .faults import crash_point
from .ledger import Ledger, as_date, create_tables

__all__ = ["open_warehouse", "publish", "verify_files"]

MARKER = "_COMMITTED"
# each table's columns in its day's file (partition columns in the path), and the column that dates a row
_FILES = {"arms": ("unit_id, arm, valid_from, contaminated, reason", "valid_from"),
          "components": ("unit_id, component, stratum", "date"),
          "events": ("event, component, n_units, arm, detail", "date"),
          "days": ("recorded, summary, checksum, chain", "date")}
_UNSAFE = set('/\\=:*?"<>|') | {"\0"}


def _experiment_folder(folder: Path, experiment: str) -> Path:
    if not experiment or set(experiment) & _UNSAFE or experiment.startswith((".", "_")):
        raise LedgerError(f"experiment {experiment!r} cannot name a warehouse partition (no / \\ = : * ? \" < > | and "
                          "no leading . or _): name the experiment without them.")
    return folder / f"experiment={experiment}"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_folder(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _staged(folder: Path) -> Path:
    staging = folder / "_staging" / uuid.uuid4().hex
    staging.mkdir(parents=True)
    return staging


def _copy(ledger: Ledger, query: str, params: dict[str, Any], path: Path) -> int:
    """Write ``query``'s rows to the Parquet file ``path`` from the ledger's connection; their number."""
    con = ledger.connection
    written = con.execute(f"COPY ({query}) TO '{str(path).replace(chr(39), chr(39) * 2)}' (FORMAT parquet)", params)
    return int(written.fetchall()[0][0])  # COPY answers with the rows it wrote: the query runs once


def _commit(staging: Path, target: Path, marker: dict[str, Any]) -> None:
    """Seal ``staging``'s files in its marker, make them durable, and rename the folder to ``target``."""
    marker["files"] = {p.name: {"sha256": _sha256_file(p), "rows": marker.get("rows", {}).get(p.stem)}
                       for p in sorted(staging.glob("*.parquet"))}
    marker.pop("rows", None)
    (staging / MARKER).write_text(json.dumps(marker, indent=1, sort_keys=True), encoding="utf-8")
    for path in staging.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    _fsync_folder(staging)
    crash_point("warehouse-before-rename")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(staging, target)
    _fsync_folder(target.parent)


def _replace_file(ledger: Ledger, folder: Path, query: str, params: dict[str, Any], target: Path) -> None:
    staging = _staged(folder)
    _copy(ledger, query, params, staging / target.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging / target.name, target)
    staging.rmdir()


def _marker(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def publish(ledger: Ledger, experiment: str, folder: str | os.PathLike) -> dict[str, list[str]]:
    """Bring ``folder``'s copy of ``experiment`` up to the ledger: the rows of voids not
    yet published, then withdraw the days the ledger no longer holds (or holds with another
    seal), replace the audit trail, and publish each committed day not yet there, in date
    order, each by one rename. Returns the dates published and withdrawn. Idempotent: a
    second call changes nothing; after a killed call it finishes the job.

    >>> import tempfile, pathlib
    >>> from spillover.design import IndividualDesign
    >>> from spillover.ledger import record_assignment
    >>> with tempfile.TemporaryDirectory() as folder, Ledger(pathlib.Path(folder) / "l.duckdb") as ledger:
    ...     record_assignment(ledger, IndividualDesign(["a", "b"]).assign(seed=1), "exp", "2026-11-23")
    ...     target = pathlib.Path(folder) / "w"
    ...     first, again = publish(ledger, "exp", target), publish(ledger, "exp", target)
    ...     sorted(p.name for p in (target / "experiment=exp").iterdir())
    ['_audit.parquet', '_experiment.parquet', 'date=2026-11-23']
    >>> first["published"], again["published"]
    (['2026-11-23'], [])
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise LedgerError(f"warehouse '{folder}' is a file; name a folder.")
    ledger.experiment(experiment)  # an unknown experiment is an error naming the known ones
    home = _experiment_folder(folder, experiment)
    shutil.rmtree(folder / "_staging", ignore_errors=True)  # what a killed publish left in flight
    params = {"e": experiment}
    con = ledger.connection
    published_record = home / "_experiment.parquet"
    if published_record.exists():
        theirs = con.execute("SELECT salt, design, params, id_type FROM read_parquet($p)",
                             {"p": str(published_record)}).fetchall()
        ours = con.execute("SELECT salt, design, params, id_type FROM experiments WHERE experiment = $e",
                           params).fetchall()
        if theirs != ours:
            raise LedgerError(f"warehouse '{folder}' already holds another experiment named {experiment!r} "
                              "(a different salt, design or parameters): publish it to another folder, or name "
                              "the experiment differently.")
    else:
        _replace_file(ledger, folder, "SELECT * FROM experiments WHERE experiment = $e", params, published_record)

    voids = [row[0] for row in con.execute("SELECT detail FROM audit WHERE experiment = $e AND action = 'void'",
                                           params).fetchall()]
    for detail in voids:  # a loop over voids: a few
        void_id = int(detail.split(":")[0].split()[-1])
        target = home / "_voided" / f"void={void_id}"
        if target.exists():
            continue
        staging, rows = _staged(folder), {}
        for table, (columns, dated) in _FILES.items():
            query = (f"SELECT {columns}{'' if dated == 'valid_from' else ', ' + dated} FROM voided_{table} "
                     "WHERE experiment = $e AND void_id = $v")
            rows[table] = _copy(ledger, query, params | {"v": void_id}, staging / f"{table}.parquet")
        _commit(staging, target, {"experiment": experiment, "void": void_id, "rows": rows})

    sealed = {as_date(d): chain for d, chain in con.execute("SELECT date, chain FROM days WHERE experiment = $e",
                                                            params).fetchall()}
    withdrawn = []
    for day in sorted(home.glob("date=*")) if home.exists() else []:  # a loop over published days
        date = as_date(day.name.split("=", 1)[1])
        marker = _marker(day)
        if date not in sealed or marker is None or marker.get("chain") != sealed[date]:
            out_of_sight = folder / "_staging" / f"withdrawn-{uuid.uuid4().hex}"
            out_of_sight.parent.mkdir(parents=True, exist_ok=True)
            os.rename(day, out_of_sight)  # gone from readers in one step, then removed
            shutil.rmtree(out_of_sight)
            withdrawn.append(str(date))
    _replace_file(ledger, folder, "SELECT * EXCLUDE (experiment) FROM audit WHERE experiment = $e ORDER BY \"time\"",
                  params, home / "_audit.parquet")

    published = []
    for date in sorted(sealed):  # a loop over days, in order
        target = home / f"date={date}"
        if target.exists():
            continue
        staging, rows = _staged(folder), {}
        for table, (columns, dated) in _FILES.items():
            query = f"SELECT {columns} FROM {table} WHERE experiment = $e AND {dated} = $d"
            rows[table] = _copy(ledger, query, params | {"d": date}, staging / f"{table}.parquet")
        _commit(staging, target, {"experiment": experiment, "date": str(date), "chain": sealed[date], "rows": rows})
        published.append(str(date))
    shutil.rmtree(folder / "_staging", ignore_errors=True)
    return {"published": published, "withdrawn": withdrawn}


def _committed(folder: Path) -> list[Path]:
    return sorted(day for day in folder.glob("experiment=*/date=*") if (day / MARKER).exists())


def open_warehouse(folder: str | os.PathLike) -> Ledger:
    """A read-only :class:`~spillover.ledger.Ledger` over the committed days of every
    experiment in ``folder`` (an in-memory DuckDB holding their rows): ``show``,
    ``history``, ``export`` and ``verify`` read it as they read the ledger file.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     open_warehouse(pathlib.Path(folder)).experiments().empty      # nothing published yet
    True
    """
    import duckdb

    folder = Path(folder)
    if not folder.is_dir():
        raise LedgerError(f"warehouse '{folder}' is not a folder: publish a ledger to it first "
                          "(`spillover ledger publish`).")
    con = duckdb.connect()
    create_tables(con)

    def files(pattern: list[Path]) -> str:
        return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in pattern) + "]"

    read = "read_parquet({}, hive_partitioning = true, hive_types_autocast = false)"
    experiments = sorted(folder.glob("experiment=*/_experiment.parquet"))
    if experiments:
        con.execute(f"INSERT INTO experiments BY NAME SELECT * FROM read_parquet({files(experiments)}, "
                    "hive_partitioning = false)")
    days = _committed(folder)
    for table, (columns, dated) in _FILES.items():
        paths = [day / f"{table}.parquet" for day in days]
        if paths:
            date = "" if dated == "valid_from" else f", CAST(date AS DATE) AS {dated}"
            con.execute(f"INSERT INTO {table} BY NAME SELECT experiment, {columns}{date} "
                        f"FROM {read.format(files(paths))}")
    audits = sorted(folder.glob("experiment=*/_audit.parquet"))
    if audits:
        con.execute(f"INSERT INTO audit BY NAME SELECT * FROM {read.format(files(audits))}")
    for table, (columns, dated) in _FILES.items():
        con.execute(f"CREATE TABLE voided_{table} AS SELECT 0::BIGINT AS void_id, * FROM {table} LIMIT 0")
        paths = sorted(folder.glob(f"experiment=*/_voided/void=*/{table}.parquet"))
        if paths:
            con.execute(f"INSERT INTO voided_{table} BY NAME SELECT experiment, CAST(void AS BIGINT) AS void_id, "
                        f"* EXCLUDE (experiment, void) FROM {read.format(files(paths))}")
    return Ledger.over(con, folder)


def verify_files(folder: str | os.PathLike) -> list[str]:
    """Check every published folder of ``folder`` against its marker: each file's SHA-256
    and that no file was added or removed; a day folder without a marker is a problem
    (a rename never leaves one). Returns the problems (empty: intact).

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     (pathlib.Path(folder) / "experiment=exp" / "date=2026-11-23").mkdir(parents=True)
    ...     verify_files(folder)
    ['experiment=exp/date=2026-11-23: no _COMMITTED marker (not published by spillover, or edited)']
    """
    folder = Path(folder)
    problems = []
    for day in sorted([*folder.glob("experiment=*/date=*"), *folder.glob("experiment=*/_voided/void=*")]):
        marker = _marker(day)
        name = day.relative_to(folder)
        if marker is None:
            problems.append(f"{name}: no {MARKER} marker (not published by spillover, or edited)")
            continue
        present = {p.name for p in day.glob("*.parquet")}
        if present != set(marker["files"]):
            problems.append(f"{name}: its files {sorted(present)} are not the ones committed {sorted(marker['files'])}")
            continue
        for file, sealed in marker["files"].items():
            if _sha256_file(day / file) != sealed["sha256"]:
                problems.append(f"{name}/{file}: its SHA-256 differs from the one committed (edited)")
    return problems
