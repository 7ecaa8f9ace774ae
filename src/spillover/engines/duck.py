"""The DuckDB engine: out-of-core on one machine. Inputs are DataFrames or Parquet/CSV
paths scanned in place; results come back as DataFrames or are written to Parquet with
``out=``; ``memory_limit`` caps DuckDB's memory and it spills to ``temp_directory``."""

from __future__ import annotations

import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..design import OUT, HashSpec
from ..exposure import assignment_design, check_arms, exposure_metadata
from ..errors import DataWarning, EngineError, InputError
from ..graph import report_isolates
from ..io import (CANONICAL_INT, ID_COLUMNS, MISSING_TEXT, TableLike, atomic_path, auto_integer_columns,
                  current_id_type)
from . import sql
from .base import EVOLVE, STEPS, Engine, literal_path
from .memory import check_mapping

__all__ = ["DuckDBEngine", "propagate_labels"]


_SIZE = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


def _literal(text: str) -> str:
    """A SQL string literal, single quotes doubled (for the settings SET cannot bind)."""
    return "'" + str(text).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return sql.quote_identifier(name, '"')


def _keyed_hash(column: str) -> str:
    """The keyed hash of a column's values (its first 60 bits of md5 of ``salt:value``),
    the salt a bound parameter ``$salt``: :class:`~spillover.design.HashSpec`'s, bit for bit."""
    return f"('0x' || substr(md5($salt || ':' || CAST({column} AS VARCHAR)), 1, 15))::UBIGINT"


def propagate_labels(con, vertices: str, edges: str = "cc_edges", out: str = "cc_label") -> None:
    """Label every vertex of ``vertices`` (a query of ``v``) with the smallest vertex of its
    component over table ``edges`` (``a, b``, both directions), in DuckDB connection
    ``con``: table ``out`` (``v, l``), by min-label propagation with pointer jumping.

    >>> import duckdb
    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE cc_edges AS SELECT * FROM (VALUES (0, 1), (1, 0), (2, 3), (3, 2)) t(a, b)")
    >>> propagate_labels(con, "SELECT range AS v FROM range(5)")
    >>> con.execute("SELECT l FROM cc_label ORDER BY v").fetchnumpy()["l"].tolist()
    [0, 0, 2, 2, 4]
    """
    con.execute(f"CREATE OR REPLACE TEMP TABLE {out} AS SELECT v, v AS l FROM ({vertices})")
    while True:  # a loop over rounds (O(log n) with pointer jumping); each round is one join
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {out}_next AS
            WITH m AS (SELECT e.a AS v, min(x.l) AS l FROM {edges} e JOIN {out} x ON e.b = x.v GROUP BY e.a),
            step AS (SELECT x.v, least(x.l, coalesce(m.l, x.l)) AS l FROM {out} x LEFT JOIN m ON x.v = m.v)
            SELECT s.v, p.l FROM step s JOIN step p ON s.l = p.v""")
        changed = con.execute(f"SELECT count(*) FROM {out}_next n JOIN {out} x ON n.v = x.v WHERE n.l <> x.l").fetchone()[0]
        con.execute(f"CREATE OR REPLACE TEMP TABLE {out} AS SELECT * FROM {out}_next")
        if changed == 0:
            break


class DuckDBEngine(Engine):
    """The DuckDB engine: out-of-core SQL on one machine, Parquet or DataFrames in, Parquet
    (``out=``) or pandas out, ``memory_limit`` with spilling to a private temporary folder.

    Examples
    --------
    >>> import pandas as pd
    >>> edges = pd.DataFrame({"source": [1, 2, 4], "target": [2, 3, 5]})
    >>> DuckDBEngine(memory_limit="1GB").components(edges).values.tolist()
    [[1, 0], [2, 0], [3, 0], [4, 1], [5, 1]]
    """
    name = "duckdb"
    options = ("memory_limit", "temp_directory", "threads")
    steps = (*STEPS, EVOLVE)

    def __init__(self, memory_limit: str | None = None, temp_directory: str | os.PathLike | None = None,
                 threads: int | None = None, *, connection=None):
        import duckdb

        self._duckdb = duckdb
        self._settings = {"memory_limit": memory_limit, "temp_directory": temp_directory, "threads": threads}
        self.con = connection if connection is not None else duckdb.connect()
        self._views = 0
        if memory_limit and not _SIZE.fullmatch(str(memory_limit).strip()):
            raise InputError(f"--memory-limit {memory_limit!r} is not a size such as 4GB or 512MB.")
        try:
            if memory_limit:
                self.con.execute(f"SET memory_limit = {_literal(str(memory_limit).strip())}")
            # a private folder of this process (mode 0700), not a shared, world-readable one
            self.temp_directory = str(temp_directory or tempfile.mkdtemp(prefix="spillover-duckdb-"))
            self.con.execute(f"SET temp_directory = {_literal(self.temp_directory)}")
            self.con.execute("SET preserve_insertion_order = false")  # lets big results spill
            self.con.execute("SET enable_progress_bar = false")  # its bar goes to stdout; progress() polls instead
            if threads:
                self.con.execute(f"SET threads = {int(threads)}")
        except duckdb.Error as error:
            raise EngineError(f"duckdb: cannot apply the settings (memory_limit={memory_limit!r}): {error}") from error

    def query_progress(self) -> float:
        """How far the running query has come, in percent (-1 when DuckDB cannot tell), for
        :func:`~spillover.console.progress` to report on long steps."""
        return float(self.con.query_progress())

    # -- inputs
    def _relation(self, source: TableLike, what: str, ids: Sequence[str] = ()) -> str:
        """A view over a DataFrame or a file, scanned lazily (files are not loaded), its id
        columns typed by the id policy as :func:`~spillover.graph.read_table` types them."""
        self._views += 1
        name = f"input_{self._views}"
        if isinstance(source, pd.DataFrame):
            self.con.register(name, source)
            return self._typed_ids(name, ids, what, from_text=False)
        path = Path(source)
        if not path.exists():
            raise InputError(f"{what}: file '{path}' does not exist.")
        suffix = path.suffix.lower()
        if suffix not in (".parquet", ".pq", ".csv"):
            raise InputError(f"{what}: cannot read '{path}': use a .csv or .parquet file.")
        path = literal_path(path)  # a name, never a glob pattern
        try:  # the path is an argument, never SQL text
            if suffix == ".csv":  # as read_table reads it: ids as text (007 and 7 stay two ids, NA is an id),
                # other columns typed with pandas' missing values ('NA', 'nan', ...) read as missing
                raw = self.con.read_csv(str(path), header=True, all_varchar=True)
                header = raw.columns
                text = {c: "VARCHAR" for c in header if c in ID_COLUMNS or c in ids}
                sniffed = self.con.read_csv(str(path), header=True, dtype=text or None, na_values=list(MISSING_TEXT))
                types = dict(zip(sniffed.columns, (str(t) for t in sniffed.types)))
                raw.create_view(f"{name}_text", replace=True)
                missing = ", ".join(_literal(value) for value in MISSING_TEXT)
                columns = ", ".join(_ident(c) if c in text else
                                    f"CAST(CASE WHEN {_ident(c)} IN ({missing}) THEN NULL ELSE {_ident(c)} END "
                                    f"AS {types[c]}) AS {_ident(c)}" for c in header)
                self.con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT {columns} FROM {name}_text")
            else:
                self.con.read_parquet(str(path)).create_view(name, replace=True)
        except self._duckdb.Error as error:
            raise InputError(f"{what}: cannot read '{path}': {str(error).splitlines()[0]}") from error
        return self._typed_ids(name, ids, what, from_text=suffix == ".csv")

    def _typed_ids(self, relation: str, ids: Sequence[str], what: str, from_text: bool) -> str:
        """The id policy (``--id-type``) applied in SQL: text ids become BIGINT when every
        one is a canonical integer (auto) or must (int); every id becomes text (str)."""
        kind = current_id_type()
        columns = [c for c in self._columns(relation) if c in ID_COLUMNS or c in ids]
        if not columns or (kind == "auto" and not from_text):
            return relation
        if kind != "str":
            checks = ", ".join(f"count(*) FILTER (WHERE NOT regexp_full_match(CAST({_ident(c)} AS VARCHAR), ?))"
                               for c in columns)
            bad = self._sql(f"SELECT {checks} FROM {relation}", [CANONICAL_INT] * len(columns)).fetchall()[0]
            if kind == "auto":
                columns = auto_integer_columns(columns, ids, {c: bool(n) for c, n in zip(columns, bad)})
                if not columns:
                    return relation
            elif any(bad):
                column = columns[next(i for i, n in enumerate(bad) if n)]
                raise InputError(f"{what}: --id-type int, but column '{column}' holds ids that are not integers (at "
                                 "most 18 digits, no leading zero); use --id-type str or auto.")
        target = "VARCHAR" if kind == "str" else "BIGINT"
        casts = ", ".join(f"CAST({_ident(c)} AS {target}) AS {_ident(c)}" for c in columns)
        self._views += 1
        name = f"typed_{self._views}"
        self._sql(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * REPLACE ({casts}) FROM {relation}")
        return name

    def _columns(self, relation: str) -> list[str]:
        return [row[0] for row in self._sql(f"DESCRIBE {relation}").fetchall()]

    def _require(self, relation: str, columns: Sequence[str], what: str) -> None:
        have = self._columns(relation)
        missing = [c for c in columns if c not in have]
        if missing:
            raise InputError(f"{what}: missing column(s) {missing}; it has {have}.")

    def _sql(self, query: str, params=None):
        """Run one statement; running out of memory becomes an error that says what to do."""
        try:
            return self.con.execute(query, params) if params is not None else self.con.execute(query)
        except self._duckdb.OutOfMemoryException as error:
            raise self._out_of_memory(error) from error

    def _out_of_memory(self, error) -> EngineError:
        limit = self.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        return EngineError(
            f"duckdb ran out of memory under its limit ({limit}), even spilling to '{self.temp_directory}': "
            f"raise --memory-limit or free disk there. ({str(error).splitlines()[0]})"
        )

    def _run(self, query: str, out: str | os.PathLike | None = None, params=None,
             metadata: dict | None = None) -> pd.DataFrame | Path:
        if out is None:
            frame = self._sql(query, params).df()
            frame.attrs.update(metadata or {})
            return frame
        try:  # written whole or not at all
            with atomic_path(out) as temporary:
                if metadata:  # the table's design and mapping, in the Parquet key-value metadata
                    pairs = ", ".join(f"{_literal(key)}: {_literal(json.dumps(value, sort_keys=True))}"
                                      for key, value in metadata.items())
                    self._sql(f"COPY ({query}) TO {_literal(str(temporary))} (FORMAT PARQUET, KV_METADATA {{{pairs}}})",
                              params)
                else:  # the output path is an argument, never SQL text
                    self.con.sql(query, params=params).write_parquet(str(temporary))
        except self._duckdb.OutOfMemoryException as error:
            raise self._out_of_memory(error) from error
        return Path(out)

    def _edges(self, edges: TableLike, source: str, target: str) -> str:
        relation = self._relation(edges, "edge list", ids=(source, target))
        self._require(relation, [source, target], "edge list")
        nulls = self._sql(f"SELECT count(*) FROM {relation} WHERE {_ident(source)} IS NULL "
                          f"OR {_ident(target)} IS NULL").fetchall()[0][0]
        if nulls:
            raise InputError(f"edge list: {nulls} row(s) with a missing id in '{source}' or '{target}'. Drop or fill them.")
        name = f"edges_{self._views}"
        self._sql(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql.edges_view(relation, source, target, chr(34))}")
        return name

    def _check_ids(self, relation: str, what: str, column: str = "unit_id", arm: str | None = None) -> None:
        """The shared input rule (:func:`~spillover.engines.sql.check_ids`) in DuckDB."""
        cursor = self._sql(sql.id_problems(relation, column, '"', arm))
        counts = dict(zip([d[0] for d in cursor.description], cursor.fetchall()[0]))
        dtype = dict((row[0], row[1]) for row in self._sql(f"DESCRIBE {relation}").fetchall())[column]
        sql.check_ids(what, column, counts, dtype, arms=arm is not None)

    def _arms(self, assignment: TableLike, edges: str, bipartite: bool) -> tuple[str, bool]:
        """The assignment as a view (``unit_id, arm[, cluster_id]``), checked as the memory
        engine checks it (ids, arms the design can give); and whether it has ``cluster_id``."""
        relation = self._relation(assignment, "assignment")
        self._require(relation, ["unit_id", "arm"], "assignment")
        self._check_ids(relation, "assignment", arm="arm")
        arms = [row[0] for row in self._sql(f"SELECT DISTINCT arm FROM {relation}").fetchall()]
        check_arms(np.array(arms, dtype=np.int64), assignment_design(assignment))
        clusters = "cluster_id" in self._columns(relation) and not bipartite
        name = f"arms_{self._views}"
        self._sql(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT unit_id, arm{', cluster_id' if clusters else ''} "
                  f"FROM {relation}")
        nodes = sql.node_ids(edges, bipartite)
        unknown, example, n_ids = self._sql(
            f"SELECT count(*) FILTER (WHERE unit_id NOT IN ({nodes})), "
            f"min(CAST(unit_id AS VARCHAR)) FILTER (WHERE unit_id NOT IN ({nodes})), count(*) FROM {name}").fetchall()[0]
        missing, n_nodes = self._sql(
            f"SELECT count(*) FILTER (WHERE unit_id NOT IN (SELECT unit_id FROM {name})), count(*) "
            f"FROM ({nodes}) x").fetchall()[0]
        report_isolates(unknown, n_ids, repr(example), "assignment", bipartite, n_nodes=n_nodes,
                        n_nodes_unmatched=missing)
        if missing:
            warnings.warn(f"assignment: {missing} node(s) of the graph have no arm; they count as untreated "
                          "(out of the experiment).", DataWarning, stacklevel=3)
        return name, clusters

    # -- the steps
    def exposure(self, edges: TableLike, assignment: TableLike, mapping: str = "fraction", *,
                 source: str = "source", target: str = "target", bipartite: bool = False,
                 threshold_q: float | None = None, out: str | os.PathLike | None = None):
        """Each unit's neighbour counts, treated share and condition (one hop), as the memory engine computes them."""
        threshold_q = check_mapping(mapping, threshold_q, bipartite)
        edge_view = self._edges(edges, source, target)
        arms, clusters = self._arms(assignment, edge_view, bipartite)
        query = sql.bipartite_exposure(edge_view, arms, mapping, threshold_q) if bipartite else \
            sql.social_exposure(edge_view, arms, mapping, threshold_q, clusters)
        return self._run(query + " ORDER BY unit_id", out, metadata=exposure_metadata(
            assignment, mapping, threshold_q, bipartite=bipartite))

    def components(self, edges: TableLike, *, source: str = "source", target: str = "target",
                   out: str | os.PathLike | None = None):
        """Connected components by min-label propagation with pointer jumping, in SQL; the
        labels equal the memory engine's (components numbered by their smallest id)."""
        edge_view = self._edges(edges, source, target)
        self._sql(f"CREATE OR REPLACE TEMP TABLE cc_ids AS SELECT unit_id, row_number() OVER (ORDER BY unit_id) - 1 AS v "
                    f"FROM ({sql.node_ids(edge_view, False)})")
        self._sql(f"""CREATE OR REPLACE TEMP TABLE cc_edges AS
            WITH e AS (SELECT DISTINCT least(s, t) AS a, greatest(s, t) AS b FROM {edge_view} WHERE s <> t)
            SELECT i.v AS a, j.v AS b FROM e JOIN cc_ids i ON e.a = i.unit_id JOIN cc_ids j ON e.b = j.unit_id
            UNION ALL SELECT j.v, i.v FROM e JOIN cc_ids i ON e.a = i.unit_id JOIN cc_ids j ON e.b = j.unit_id""")
        self._propagate("SELECT v FROM cc_ids")
        query = ("SELECT i.unit_id, CAST(dense_rank() OVER (ORDER BY x.l) - 1 AS BIGINT) AS cluster_id "
                 "FROM cc_ids i JOIN cc_label x ON i.v = x.v ORDER BY i.unit_id")
        return self._run(query, out)

    def _propagate(self, vertices: str) -> None:
        try:
            propagate_labels(self.con, vertices)
        except self._duckdb.OutOfMemoryException as error:
            raise self._out_of_memory(error) from error

    def checksum(self, memberships: TableLike, *, user: str = "user_id", project: str = "project_id",
                 account: str = "account_id") -> str:
        """The ``rows-v1`` checksum of a membership snapshot's distinct rows (its ids and
        per-user columns, :func:`~spillover.engines.sql.rows_checksum`): one scan, memory
        bounded, without splitting it into components."""
        from ..io import source_name

        relation = self._relation(memberships, source_name(memberships, "memberships"), ids=(user, project, account))
        return self._rows_checksum(relation, [user, project, account,
                                              *sql.membership_extras(self._columns(relation), user, project, account)])

    def _rows_checksum(self, relation: str, columns: Sequence[str]) -> str:
        return sql.rows_checksum(self._sql(sql.rows_digest_query(relation, columns, '"')).fetchall()[0])

    def snapshot(self, memberships: TableLike, *, user: str = "user_id", project: str = "project_id",
                 account: str = "account_id"):
        """One day's membership snapshot for the daily job (:class:`~spillover.evolve.Snapshot`),
        read, checked and split into components (users linked through projects and their
        accounts) in SQL; the users, components and keys equal the memory engine's. Its
        checksum is the ``rows-v1`` rule (:func:`~spillover.engines.sql.rows_checksum`).
        A snapshot that fails a check is handed to the memory loader, whose one-line error
        is raised: one rule for bad input, whichever engine reads it."""
        from ..evolve import Snapshot
        from ..io import source_name

        what = source_name(memberships, "memberships")
        relation = self._relation(memberships, what, ids=(user, project, account))
        columns = self._columns(relation)
        types = dict((row[0], str(row[1])) for row in self._sql(f"DESCRIBE {relation}").fetchall())
        ok = all(c in columns for c in (user, project, account)) and not any(
            kind in types[c].upper() for c in (user, project, account) for kind in ("FLOAT", "DOUBLE", "DECIMAL"))
        extras = sql.membership_extras(columns, user, project, account)
        checks = self._sql(sql.membership_checks(relation, user, project, account, extras, '"')).df().iloc[0] if ok else None
        sql.settle_membership_checks(checks, ok, memberships, what, columns, user, project, account)
        # users numbered by id; components found on the (small) account graph (sql.user_accounts, each user a
        # star over its accounts); a component
        # is named by its smallest user
        self._sql(f"CREATE OR REPLACE TEMP TABLE snap_users AS {sql.numbered_users(relation, user, chr(34))}")
        self._sql(f"CREATE OR REPLACE TEMP TABLE snap_ua AS "
                  f"{sql.user_accounts(relation, user, account, 'snap_users', chr(34))}")
        self._sql(f"CREATE OR REPLACE TEMP TABLE cc_edges AS {sql.stars('snap_ua', 'u', 'a')}")
        self._propagate("SELECT DISTINCT a AS v FROM snap_ua")
        users = self._sql("SELECT id FROM snap_users ORDER BY v").df()["id"]
        smallest = self._sql(f"SELECT first FROM ({sql.first_user('snap_ua', 'cc_label')}) ORDER BY u").fetchnumpy()["first"]
        first, labels = np.unique(smallest, return_inverse=True)
        users = pd.Index(users.to_numpy())
        user_data = pd.DataFrame(index=users)
        if extras:
            per_user = ", ".join(map(_ident, [user, *extras]))
            frame = self._sql(f"SELECT DISTINCT {per_user} FROM {relation} ORDER BY {_ident(user)}").df()
            user_data = frame.drop(columns=[user]).set_axis(users)
        checksum = self._rows_checksum(relation, [user, project, account, *extras])
        return Snapshot(users, labels.astype(np.int64), pd.Index(users[first].astype(str)), user_data, checksum,
                        table="snap_users")

    def beside(self, ledger) -> "DuckDBEngine":
        """This engine's settings on ``ledger``'s connection (:attr:`~spillover.ledger.Ledger.connection`):
        the daily job's SQL then reads and writes the ledger's tables where they are."""
        return DuckDBEngine(**self._settings, connection=ledger.connection)

    def evolve_day(self, ledger, experiment: str, day, stratum: np.ndarray, new_arms, merge_policy: str):
        """The day's changes against the ledger (:func:`spillover.evolve.evolve`), in SQL beside
        the ledger's tables: temporary tables of the arm rows to append, every user's component
        and the events, and the day's counts; equal to the memory engine's, row for row.
        ``day`` is this engine's :meth:`snapshot` on the ledger's connection (:meth:`beside`)."""
        if day.table is None or self._sql(f"SELECT count(*) FROM {day.table}").fetchall()[0][0] != day.n_users:
            raise EngineError("duckdb: evolve_day needs the snapshot this engine made on the ledger's connection.")
        known, current = ledger.stage(experiment)
        spec, salt = new_arms
        self.con.register("day_users", pd.DataFrame({"v": np.arange(day.n_users, dtype=np.int64), "comp": day.labels}))
        self.con.register("day_comps", pd.DataFrame({
            "comp": np.arange(len(day.keys), dtype=np.int64), "key": day.keys.to_numpy(dtype=object),
            "stratum": np.asarray(stratum, dtype=np.int64), "size": np.bincount(day.labels, minlength=len(day.keys))}))
        # today's users with their last known component (known by its key and the date it was seen) and arm
        self._sql(f"""CREATE OR REPLACE TEMP TABLE ev_users AS
            SELECT CAST(s.id AS VARCHAR) AS unit_id, d.comp, k.component AS pc,
                   k.component || '@' || CAST(k.date AS VARCHAR) AS prior, c.arm, c.contaminated
            FROM {day.table} s JOIN day_users d ON s.v = d.v
            LEFT JOIN {known} k ON k.unit_id = CAST(s.id AS VARCHAR) LEFT JOIN {current} c ON c.unit_id = CAST(s.id AS VARCHAR)""")
        # each component's arm: the majority of its known users (ties: lowest arm); created ones by the keyed hash
        self._sql(f"""CREATE OR REPLACE TEMP TABLE ev_comps AS
            WITH per AS (SELECT comp, count(DISTINCT prior) AS n_prior, count(DISTINCT arm) AS n_arms
                         FROM ev_users GROUP BY comp),
            votes AS (SELECT comp, arm, count(*) AS n FROM ev_users WHERE prior IS NOT NULL AND arm IS NOT NULL
                      GROUP BY comp, arm QUALIFY row_number() OVER (PARTITION BY comp ORDER BY count(*) DESC, arm) = 1)
            SELECT c.comp, c.key, c.stratum, c.size, coalesce(p.n_prior, 0) = 0 AS created,
                   coalesce(p.n_prior, 0) > 1 AS merged, coalesce(p.n_prior, 0) > 1 AND coalesce(p.n_arms, 0) > 1 AS across,
                   CASE WHEN coalesce(p.n_prior, 0) = 0 THEN {sql.hash_case(_keyed_hash("c.key"), spec.thresholds, spec.arms)}
                        ELSE coalesce(v.arm, -1) END AS arm
            FROM day_comps c LEFT JOIN per p ON c.comp = p.comp LEFT JOIN votes v ON c.comp = v.comp""",
                  {"salt": str(salt)})
        majority = merge_policy == "majority"
        self._sql(f"""CREATE OR REPLACE TEMP TABLE ev_all AS
            WITH u AS (SELECT e.unit_id, e.arm AS before, coalesce(e.contaminated, false) AS was, e.arm IS NULL AS is_new,
                              c.arm AS target, c.across, c.created FROM ev_users e JOIN ev_comps c ON e.comp = c.comp),
            n AS (SELECT *, CASE WHEN is_new {'OR across' if majority else ''} THEN target ELSE before END AS new_arm FROM u),
            f AS (SELECT *, {'NOT is_new AND new_arm <> before' if majority else 'false'} AS switched FROM n)
            SELECT unit_id, new_arm AS arm, was OR {'switched' if majority else 'across'} AS contaminated, was, switched,
                   is_new, CASE WHEN is_new THEN CASE WHEN created THEN 'created' ELSE 'joined' END
                                ELSE $reason END AS reason FROM f""", {"reason": f"merge-{merge_policy}"})
        self._sql("""CREATE OR REPLACE TEMP TABLE ev_arms AS SELECT unit_id, arm, contaminated, reason FROM ev_all
                     WHERE is_new OR switched OR contaminated <> was""")
        self._sql("""CREATE OR REPLACE TEMP TABLE ev_components AS
            SELECT e.unit_id, c.key AS component, c.stratum FROM ev_users e JOIN ev_comps c ON e.comp = c.comp""")
        self._sql("""CREATE OR REPLACE TEMP TABLE ev_split AS SELECT any_value(pc) AS component, count(DISTINCT comp) AS parts
                     FROM ev_users WHERE prior IS NOT NULL GROUP BY prior HAVING count(DISTINCT comp) > 1""")
        self._sql(f"""CREATE OR REPLACE TEMP TABLE ev_removed AS SELECT DISTINCT component FROM {known}
            WHERE date = (SELECT max(date) FROM {known})
              AND component || '@' || CAST(date AS VARCHAR) NOT IN (SELECT prior FROM ev_users WHERE prior IS NOT NULL)""")
        self._sql(f"""CREATE OR REPLACE TEMP TABLE ev_events AS
            SELECT 'created' AS event, key AS component, size AS n_units, arm, '' AS detail FROM ev_comps WHERE created
            UNION ALL SELECT 'split', component, 0, {OUT}, CAST(parts AS VARCHAR) || ' parts' FROM ev_split
            UNION ALL SELECT 'merged', key, size, arm, CASE WHEN across THEN $across ELSE 'same arm' END
                      FROM ev_comps WHERE merged
            UNION ALL SELECT 'removed', component, 0, {OUT}, '' FROM ev_removed""",
                  {"across": f"across arms; policy {merge_policy}"})
        counts = self._sql("""SELECT (SELECT count(*) FILTER (WHERE created) FROM ev_comps),
            (SELECT count(*) FROM ev_split), (SELECT count(*) FILTER (WHERE merged) FROM ev_comps),
            (SELECT count(*) FROM ev_removed), (SELECT count(*) FILTER (WHERE across) FROM ev_comps),
            count(*) FILTER (WHERE switched), count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE contaminated)
            FROM ev_all""").fetchall()[0]
        names = ("created", "split", "merged", "removed", "merged_across_arms", "users_switched", "new_units",
                 "contaminated_units")
        self.con.unregister("day_users")
        self.con.unregister("day_comps")
        return "ev_arms", "ev_components", "ev_events", dict(zip(names, map(int, counts)))

    def hash_assign(self, units: TableLike, *, salt: str, spec: HashSpec, key: str = "unit_id", out: str | os.PathLike | None = None):
        """The keyed-hash assignment of ``spec`` (a :class:`~spillover.design.HashSpec`) keyed by column ``key``: ``unit_id[, key], arm``."""
        relation = self._relation(units, "units", ids=(key,))
        self._require(relation, list(dict.fromkeys(["unit_id", key])), "units")
        self._check_ids(relation, "units")
        # the salt is a bound parameter ($salt), the key a quoted identifier
        hashed = _keyed_hash(_ident(key))
        keep = "unit_id" if key == "unit_id" else f"unit_id, {_ident(key)}"
        return self._run(f"SELECT {keep}, CAST({sql.hash_case(hashed, spec.thresholds, spec.arms)} AS BIGINT) AS arm "
                         f"FROM {relation} ORDER BY unit_id", out, params={"salt": str(salt)})

    def cluster_stats(self, outcomes: TableLike, exposure_table: TableLike, clusters: TableLike | None, *,
                      outcome_col: str = "y") -> pd.DataFrame:
        """Per-(cluster, condition) ``n, sum_y, sum_y2``: all :func:`~spillover.estimate.estimate_from_stats` needs."""
        c = self._stats_views(outcomes, exposure_table, clusters, outcome_col)
        return self._run(sql.cluster_stats("st_o", "st_e", c))

    def treated_side_stats(self, outcomes: TableLike, exposure_table: TableLike, edges: TableLike,
                           blocks: TableLike | None = None, *, source: str = "source", target: str = "target",
                           outcome_col: str = "y") -> pd.DataFrame:
        """Per-(treated-side block, condition) ``n, sum_y`` of the units linked to each block
        (``blocks``: the treated side's ``unit_id, cluster_id`` when its clusters were
        randomized): what the seller jackknife of ``ols-bipartite`` needs."""
        self._stats_views(outcomes, exposure_table, None, outcome_col)
        edge_view = self._edges(edges, source, target)
        b = None
        if blocks is not None:
            b = self._relation(blocks, "blocks")
            self._require(b, ["unit_id", "cluster_id"], "blocks")
        return self._run(sql.treated_side_stats("st_o", "st_e", edge_view, b))

    def _stats_views(self, outcomes: TableLike, exposure_table: TableLike, clusters: TableLike | None,
                     outcome_col: str) -> str | None:
        """The outcomes and exposure as views ``st_o``, ``st_e`` (and the clusters'
        relation), checked as the memory engine checks them."""
        o = self._relation(outcomes, "outcomes")
        e = self._relation(exposure_table, "exposure")
        c = None if clusters is None else self._relation(clusters, "clusters")
        self._require(o, ["unit_id", outcome_col], "outcomes")
        self._require(e, ["unit_id", "condition"], "exposure")
        if c is not None:
            self._require(c, ["unit_id", "cluster_id"], "clusters")
            self._check_ids(c, "clusters")
        self._check_ids(o, "outcomes")
        self._check_ids(e, "exposure")
        arm = "arm" if "arm" in self._columns(e) else "CAST(NULL AS BIGINT) AS arm"
        self._sql(f"CREATE OR REPLACE TEMP VIEW st_o AS SELECT unit_id, {_ident(outcome_col)} AS y FROM {o}")
        self._sql(f"CREATE OR REPLACE TEMP VIEW st_e AS SELECT unit_id, {arm}, CAST(condition AS VARCHAR) AS condition FROM {e}")
        unknown = self._sql("SELECT count(*) FROM st_o WHERE unit_id NOT IN (SELECT unit_id FROM st_e)").fetchall()[0][0]
        if unknown:
            raise InputError(f"outcomes: {unknown} unit id(s) have no exposure: outcomes must belong to units of the graph.")
        missing = self._sql("SELECT count(*) FROM st_e e LEFT JOIN st_o o ON e.unit_id = o.unit_id "
                                   "WHERE (e.arm IS NULL OR e.arm <> -1) AND o.y IS NULL").fetchall()[0][0]
        if missing:
            warnings.warn(f"outcomes: dropped {missing} unit(s) with a missing outcome or covariate.", DataWarning, stacklevel=3)
        orphans = c and self._sql(f"SELECT count(*) FROM st_e WHERE unit_id NOT IN (SELECT unit_id FROM {c})").fetchall()[0][0]
        if orphans:
            raise InputError(f"clusters: {orphans} unit(s) of the exposure table have no cluster.")
        return c
