"""The Spark engine: the heavy steps as Spark SQL where the data lives. Inputs are Spark
DataFrames, table names, Parquet/CSV paths or pandas DataFrames; results come back as
pandas (small ones) or are written to Parquet with ``out=``.

Connected components run on GraphX, which ships inside the PySpark distribution and is
reached through py4j; where py4j internals are absent (Spark Connect) a DataFrame
min-label propagation with pointer jumping does the same job (slower).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..design import HashSpec
from ..exposure import assignment_design, check_arms, exposure_metadata
from ..errors import DataWarning, EngineError, InputError, SpilloverError
from ..graph import report_isolates
from ..io import (CANONICAL_INT, ID_COLUMNS, MISSING_TEXT, atomic_path, auto_integer_columns,
                  current_id_type, metadata_sidecar)
from . import sql
from .base import Engine, literal_path
from .memory import check_mapping

__all__ = ["SparkEngine", "java_available"]


def java_available() -> bool:
    """Whether a Java runtime (which Spark needs) is on ``PATH`` or under ``JAVA_HOME``.

    Examples
    --------
    >>> isinstance(java_available(), bool)
    True
    """
    home = os.environ.get("JAVA_HOME")
    return bool(shutil.which("java") or (home and Path(home, "bin", "java").exists()))


def _reason(error: BaseException) -> str:
    """The line of a Spark (Java) error that says what went wrong, without the stack.

    >>> _reason(RuntimeError("An error occurred while calling o35.parquet.\\n: org.apache.spark.SparkException: "
    ...                      "[FAILED_READ_FILE] Could not read footer.\\n\\tat org.apache..."))
    '[FAILED_READ_FILE] Could not read footer.'
    """
    lines = [line.strip() for line in str(error).replace("\\n", "\n").splitlines() if line.strip()]
    for line in lines:
        if "Exception: " in line:
            return line.split("Exception: ", 1)[1]
    return lines[0] if lines else type(error).__name__


class SparkEngine(Engine):
    """The Spark engine: Spark SQL and GraphX where the data lives. Inputs are Spark
    DataFrames, catalog table names or Parquet/CSV paths; outputs go to ``out=`` (Parquet) or
    come back as pandas. Without ``spark`` a local session is started on ``master``.

    Examples
    --------
    >>> SparkEngine.name                        # get_engine("spark", spark=session) on a cluster
    'spark'
    """
    name = "spark"
    options = ("spark", "master")

    def __init__(self, spark: Any = None, master: str = "local[*]"):
        if spark is None:
            if not java_available():
                raise EngineError("the spark engine needs a Java runtime (17 or newer) and none was found: install "
                                  "one (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME.")
            try:
                from pyspark.sql import SparkSession
            except ImportError as error:
                raise EngineError("the spark engine needs PySpark: pip install 'spillover[spark]' (or pyspark).") from error
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # local mode talks to itself only
            spark = (SparkSession.builder.master(master).appName("spillover")
                     .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
                     .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "8")
                     .getOrCreate())
            spark.sparkContext.setLogLevel("ERROR")
        self.spark = spark
        self._views = 0
        self.components_backend: str | None = None  # "graphx" or "dataframe", after components()

    # -- inputs and outputs
    def _frame(self, source: Any, what: str, ids: Sequence[str] = ()):
        """A Spark DataFrame over a DataFrame, a file or a table, its id columns typed by
        the id policy as :func:`~spillover.graph.read_table` types them."""
        from pyspark.sql import DataFrame as SparkFrame

        if isinstance(source, SparkFrame):
            return source
        if isinstance(source, pd.DataFrame):
            return self._typed_ids(self.spark.createDataFrame(source), ids, what, from_text=False)
        text = str(source)
        path = Path(text)
        if path.suffix.lower() in (".parquet", ".pq", ".csv") or path.exists():
            if not path.exists():
                raise InputError(f"{what}: file '{path}' does not exist.")
            text = str(literal_path(path))  # a name, never a glob pattern
            try:
                if path.suffix.lower() == ".csv":  # ids as text: 007 and 7 stay two ids
                    from pyspark.sql.types import StringType, StructField, StructType

                    inferred = self.spark.read.csv(text, header=True, inferSchema=True).schema
                    schema = StructType([StructField(f.name, StringType(), True)
                                         if f.name in ID_COLUMNS or f.name in ids else f for f in inferred])
                    frame = self._missing_text_as_null(self.spark.read.csv(text, header=True, schema=schema), [
                        f.name for f in schema if isinstance(f.dataType, StringType)
                        and f.name not in ID_COLUMNS and f.name not in ids])
                    return self._typed_ids(frame, ids, what, True)
                return self._typed_ids(self.spark.read.parquet(text), ids, what, from_text=False)
            except SpilloverError:
                raise
            except Exception as error:  # noqa: BLE001 - Spark raises Java errors through py4j: one line instead
                raise InputError(f"{what}: cannot read '{path}': {_reason(error)}") from None
        if self.spark.catalog.tableExists(text):
            return self.spark.table(text)
        raise InputError(f"{what}: '{text}' is neither a file nor a table Spark knows.")

    @staticmethod
    def _missing_text_as_null(frame, columns: Sequence[str]):
        """Text columns (not ids) that are numbers once pandas' missing values ('NA', 'nan',
        ...) are missing, as ``read_table`` reads them: doubles with nulls."""
        from pyspark.sql import functions as F

        if not columns:
            return frame
        cleaned = {c: F.when(F.col(c).isin(list(MISSING_TEXT)), None).otherwise(F.col(c)) for c in columns}
        bad = frame.agg(*[F.sum((cleaned[c].isNotNull() & cleaned[c].try_cast("double").isNull()).cast("long"))
                          .alias(c) for c in columns]).first()
        numeric = [c for c in columns if not bad[c]]
        if not numeric:
            return frame
        return frame.select([cleaned[c].try_cast("double").alias(c) if c in numeric else F.col(c)
                             for c in frame.columns])

    def _typed_ids(self, frame, ids: Sequence[str], what: str, from_text: bool):
        """The id policy (``--id-type``) in Spark, as the DuckDB engine applies it in SQL."""
        from pyspark.sql import functions as F

        kind = current_id_type()
        columns = [c for c in frame.columns if c in ID_COLUMNS or c in ids]
        if not columns or (kind == "auto" and not from_text):
            return frame
        if kind != "str":
            pattern = f"^{CANONICAL_INT}$"
            bad = frame.select([F.sum((~F.col(c).cast("string").rlike(pattern)).cast("int")).alias(c)
                                for c in columns]).collect()[0]
            if kind == "auto":
                columns = auto_integer_columns(columns, ids, {c: bool(bad[c]) for c in columns})
                if not columns:
                    return frame
            elif any(bad[c] for c in columns):
                column = next(c for c in columns if bad[c])
                raise InputError(f"{what}: --id-type int, but column '{column}' holds ids that are not integers (at "
                                 "most 18 digits, no leading zero); use --id-type str or auto.")
        return frame.select([F.col(c).cast("string" if kind == "str" else "long").alias(c) if c in columns
                             else F.col(c) for c in frame.columns])

    def _view(self, frame) -> str:
        self._views += 1
        name = f"spillover_{self._views}"
        frame.createOrReplaceTempView(name)
        return name

    def _require(self, frame, columns: Sequence[str], what: str) -> None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise InputError(f"{what}: the Spark table is missing column(s) {missing}; it has {frame.columns}. "
                             "Select or rename them before calling spillover.")

    def _scalar(self, query: str):
        return self.spark.sql(query).collect()[0][0]

    @staticmethod
    def to_pandas(frame) -> pd.DataFrame:
        """A (small) Spark DataFrame as pandas."""
        rows = frame.collect()
        return pd.DataFrame([r.asDict() for r in rows], columns=frame.columns)

    def _finish(self, frame, out, order: str = "unit_id", metadata: dict | None = None):
        if out is not None:
            frame.write.mode("overwrite").parquet(str(out))
            if metadata:  # a folder of parts: the design and mapping beside it, as beside a CSV
                with atomic_path(metadata_sidecar(out)) as temporary:
                    temporary.write_text(json.dumps(metadata, sort_keys=True, indent=1), encoding="utf-8")
            return Path(out)
        table = self.to_pandas(frame.orderBy(order)).reset_index(drop=True)
        table.attrs.update(metadata or {})
        return table

    def _edges(self, edges: Any, source: str, target: str) -> str:
        frame = self._frame(edges, "edge list", ids=(source, target))
        self._require(frame, [source, target], "edge list")
        relation = self._view(frame)
        nulls = self._scalar(f"SELECT count(*) FROM {relation} WHERE {sql.quote_identifier(source, '`')} IS NULL "
                             f"OR {sql.quote_identifier(target, '`')} IS NULL")
        if nulls:
            raise InputError(f"edge list: {nulls} row(s) with a missing id in '{source}' or '{target}'. Drop or fill them.")
        return self._view(self.spark.sql(sql.edges_view(relation, source, target, "`")))

    def _check_ids(self, frame, what: str, column: str = "unit_id", arm: str | None = None) -> None:
        """The shared input rule (:func:`~spillover.engines.sql.check_ids`) in Spark."""
        counts = self.spark.sql(sql.id_problems(self._view(frame), column, "`", arm)).collect()[0].asDict()
        sql.check_ids(what, column, counts, dict(frame.dtypes)[column], arms=arm is not None)

    def _arms(self, assignment: Any, edges: str, bipartite: bool) -> tuple[str, bool]:
        """The assignment as a view (``unit_id, arm[, cluster_id]``), checked as the memory
        engine checks it (ids, arms the design can give); and whether it has ``cluster_id``."""
        frame = self._frame(assignment, "assignment")
        self._require(frame, ["unit_id", "arm"], "assignment")
        self._check_ids(frame, "assignment", arm="arm")
        given = [row[0] for row in frame.select("arm").distinct().collect()]
        check_arms(np.array(given, dtype=np.int64), assignment_design(assignment))
        clusters = "cluster_id" in frame.columns and not bipartite
        arms = self._view(frame.select("unit_id", "arm", *(["cluster_id"] if clusters else [])))
        nodes = sql.node_ids(edges, bipartite)
        unknown = self.spark.sql(f"SELECT count(*) AS n, min(CAST(unit_id AS STRING)) AS e FROM {arms} "
                                 f"LEFT ANTI JOIN ({nodes}) n USING (unit_id)").collect()[0]
        missing = self._scalar(f"SELECT count(*) FROM ({nodes}) n LEFT ANTI JOIN {arms} a USING (unit_id)")
        report_isolates(unknown["n"], self._scalar(f"SELECT count(*) FROM {arms}"), repr(unknown["e"]), "assignment",
                        bipartite, n_nodes=self._scalar(f"SELECT count(*) FROM ({nodes}) n"), n_nodes_unmatched=missing)
        if missing:
            warnings.warn(f"assignment: {missing} node(s) of the graph have no arm; they count as untreated "
                          "(out of the experiment).", DataWarning, stacklevel=3)
        return arms, clusters

    # -- the steps
    def exposure(self, edges: Any, assignment: Any, mapping: str = "fraction", *, source: str = "source",
                 target: str = "target", bipartite: bool = False, threshold_q: float | None = None, out=None):
        """Each unit's neighbour counts, treated share and condition (one hop), as the memory engine computes them."""
        threshold_q = check_mapping(mapping, threshold_q, bipartite)
        edge_view = self._edges(edges, source, target)
        arms, clusters = self._arms(assignment, edge_view, bipartite)
        query = sql.bipartite_exposure(edge_view, arms, mapping, threshold_q) if bipartite else \
            sql.social_exposure(edge_view, arms, mapping, threshold_q, clusters)
        return self._finish(self.spark.sql(query), out, metadata=exposure_metadata(
            assignment, mapping, threshold_q, bipartite=bipartite))

    def components(self, edges: Any, *, source: str = "source", target: str = "target", out=None):
        """Connected components with the labels of the memory engine (numbered by their
        smallest id): GraphX through py4j, else DataFrame label propagation."""
        from pyspark.sql import functions as F
        from pyspark.sql.window import Window

        edge_view = self._edges(edges, source, target)
        ids = self.spark.sql(sql.node_ids(edge_view, False)).withColumn(
            "v", F.row_number().over(Window.orderBy("unit_id")).cast("long") - 1).cache()
        ids_view = self._view(ids)
        pairs = self.spark.sql(f"""
            WITH e AS (SELECT DISTINCT least(s, t) AS a, greatest(s, t) AS b FROM {edge_view} WHERE s <> t)
            SELECT i.v AS a, j.v AS b FROM e JOIN {ids_view} i ON e.a = i.unit_id JOIN {ids_view} j ON e.b = j.unit_id""")
        labels = self._labels(pairs, ids)
        result = (ids.join(labels, "v", "left").withColumn("l", F.coalesce("l", "v"))
                  .withColumn("cluster_id", (F.dense_rank().over(Window.orderBy("l")) - 1).cast("long"))
                  .select("unit_id", "cluster_id"))
        return self._finish(result, out)

    def snapshot(self, memberships: Any, *, user: str = "user_id", project: str = "project_id",
                 account: str = "account_id"):
        """One day's membership snapshot for the daily job (:class:`~spillover.evolve.Snapshot`):
        read, checked and split into components on the executors (the account graph,
        :func:`~spillover.engines.sql.user_accounts`, its components by GraphX); the users,
        components and keys come back to the driver, equal to the memory engine's. A
        snapshot is a file (the daily job's inputs are), whose ``rows-v1`` checksum the
        driver computes in one DuckDB scan; one that fails a check gets the memory loader's
        one-line error."""
        from pyspark.sql import functions as F

        from ..evolve import Snapshot
        from ..io import source_name
        from .duck import DuckDBEngine

        if not isinstance(memberships, (str, os.PathLike, pd.DataFrame)):
            raise InputError("the daily job reads each day's snapshot from a file (Parquet or CSV).")
        what = source_name(memberships, "memberships")
        frame = self._frame(memberships, what, ids=(user, project, account))
        types = dict(frame.dtypes)
        ok = all(c in types for c in (user, project, account)) and not any(
            types[c] in ("float", "double") or types[c].startswith("decimal") for c in (user, project, account))
        extras = sql.membership_extras(frame.columns, user, project, account)
        relation = self._view(frame)
        checks = (self.spark.sql(sql.membership_checks(relation, user, project, account, extras, "`")).first().asDict()
                  if ok else None)
        sql.settle_membership_checks(checks, ok, memberships, what, frame.columns, user, project, account)
        users = self.spark.sql(sql.numbered_users(relation, user, "`")).cache()
        users_view = self._view(users)
        pairs = self.spark.sql(sql.user_accounts(relation, user, account, users_view, "`")).cache()
        pairs_view = self._view(pairs)
        edges = self.spark.sql(sql.stars(pairs_view, "u", "a"))
        labels = self._labels(edges, pairs.select(F.col("a").alias("v")).distinct())
        smallest = self.spark.sql(sql.first_user(pairs_view, self._view(labels))).orderBy("u").toPandas()["first"]
        ids = users.orderBy("v").toPandas()["id"]
        first, codes = np.unique(smallest.to_numpy(), return_inverse=True)
        index = pd.Index(ids.to_numpy())
        user_data = pd.DataFrame(index=index)
        if extras:
            per_user = frame.select(user, *extras).distinct().orderBy(user).toPandas()
            user_data = per_user.drop(columns=[user]).set_axis(index)
        checksum = DuckDBEngine().checksum(memberships, user=user, project=project, account=account)
        users.unpersist()
        pairs.unpersist()
        return Snapshot(index, codes.astype(np.int64), pd.Index(index[first].astype(str)), user_data, checksum)

    def _labels(self, pairs, ids):
        """Each vertex of ``ids`` (``v``) with the smallest vertex of its component over the
        edges ``pairs`` (``a, b``): GraphX through py4j, else DataFrame label propagation
        (Spark Connect has no py4j); :attr:`components_backend` says which ran."""
        try:
            labels = self._graphx_components(pairs, ids)
            self.components_backend = "graphx"
        except Exception as error:  # noqa: BLE001 - no py4j (Spark Connect) or no GraphX: use DataFrames
            warnings.warn(f"GraphX is not reachable here ({type(error).__name__}); connected components run as "
                          "DataFrame label propagation instead (same result, slower).", DataWarning, stacklevel=3)
            labels = self._dataframe_components(pairs, ids)
            self.components_backend = "dataframe"
        return labels

    def _graphx_components(self, pairs, ids):
        from pyspark.sql import DataFrame as SparkFrame

        jvm = self.spark._jvm
        encoders = jvm.org.apache.spark.sql.Encoders
        pair_encoder = encoders.tuple(encoders.LONG(), encoders.LONG())
        # self-edges keep isolated vertices in the graph; GraphX's own labels are the smallest vertex id
        with_self = pairs.unionByName(ids.selectExpr("v AS a", "v AS b"))
        rdd = getattr(with_self._jdf, "as")(pair_encoder).rdd()
        level = jvm.org.apache.spark.storage.StorageLevel.MEMORY_AND_DISK()
        tag = jvm.scala.reflect.ClassTag.apply(jvm.java.lang.Class.forName("java.lang.Object"))
        graph = jvm.org.apache.spark.graphx.Graph.fromEdgeTuples(rdd, 1, jvm.scala.Option.empty(), level, level, tag)
        vertices = graph.ops().connectedComponents().vertices()
        frame = SparkFrame(self.spark._jsparkSession.createDataset(vertices, pair_encoder).toDF(), self.spark)
        return frame.withColumnRenamed("_1", "v").withColumnRenamed("_2", "l")

    def _dataframe_components(self, pairs, ids):
        from pyspark.sql import functions as F

        both = pairs.unionByName(pairs.selectExpr("b AS a", "a AS b")).cache()
        labels = ids.select("v", F.col("v").alias("l"))
        while True:  # a loop over rounds; each round is one join, checkpointed to cut lineage
            smallest = both.join(labels.withColumnRenamed("v", "b"), "b").groupBy("a").agg(F.min("l").alias("m"))
            step = (labels.join(smallest.withColumnRenamed("a", "v"), "v", "left")
                    .select("v", F.least("l", F.coalesce("m", "l")).alias("l")))
            jumped = (step.alias("s").join(step.alias("p"), F.col("s.l") == F.col("p.v"))
                      .select(F.col("s.v").alias("v"), F.col("p.l").alias("l"))).localCheckpoint()
            changed = jumped.join(labels.withColumnRenamed("l", "old"), "v").where("l <> old").count()
            labels = jumped
            if changed == 0:
                return labels

    def hash_assign(self, units: Any, *, salt: str, spec: HashSpec, key: str = "unit_id", out=None):
        """The keyed-hash assignment of ``spec`` (a :class:`~spillover.design.HashSpec`) keyed by column ``key``: ``unit_id[, key], arm``."""
        frame = self._frame(units, "units", ids=(key,))
        self._require(frame, list(dict.fromkeys(["unit_id", key])), "units")
        self._check_ids(frame, "units")
        relation = self._view(frame)
        column = sql.quote_identifier(key, "`")
        # the salt is a bound parameter (:salt): no escaping rules to get wrong
        hashed = f"CAST(conv(substr(md5(concat(:salt, ':', CAST({column} AS STRING))), 1, 15), 16, 10) AS BIGINT)"
        keep = "unit_id" if key == "unit_id" else f"unit_id, {column}"
        return self._finish(self.spark.sql(
            f"SELECT {keep}, CAST({sql.hash_case(hashed, spec.thresholds, spec.arms)} AS BIGINT) AS arm FROM {relation}",
            args={"salt": str(salt)}), out)

    def cluster_stats(self, outcomes: Any, exposure_table: Any, clusters: Any | None, *,
                      outcome_col: str = "y") -> pd.DataFrame:
        """Per-(cluster, condition) ``n, sum_y, sum_y2``: all :func:`~spillover.estimate.estimate_from_stats` needs."""
        o_view, e_view, c_view = self._stats_views(outcomes, exposure_table, clusters, outcome_col)
        return self.to_pandas(self.spark.sql(sql.cluster_stats(o_view, e_view, c_view)))

    def treated_side_stats(self, outcomes: Any, exposure_table: Any, edges: Any, blocks: Any | None = None, *,
                           source: str = "source", target: str = "target", outcome_col: str = "y") -> pd.DataFrame:
        """Per-(treated-side block, condition) ``n, sum_y`` of the units linked to each block
        (``blocks``: the treated side's ``unit_id, cluster_id`` when its clusters were
        randomized): what the seller jackknife of ``ols-bipartite`` needs."""
        o_view, e_view, _ = self._stats_views(outcomes, exposure_table, None, outcome_col)
        edge_view = self._edges(edges, source, target)
        b_view = None
        if blocks is not None:
            b = self._frame(blocks, "blocks")
            self._require(b, ["unit_id", "cluster_id"], "blocks")
            b_view = self._view(b.select("unit_id", "cluster_id"))
        return self.to_pandas(self.spark.sql(sql.treated_side_stats(o_view, e_view, edge_view, b_view)))

    def _stats_views(self, outcomes: Any, exposure_table: Any, clusters: Any | None, outcome_col: str):
        """The outcomes, exposure (and clusters) as views, checked as the memory engine checks them."""
        o, e = self._frame(outcomes, "outcomes"), self._frame(exposure_table, "exposure")
        c = None if clusters is None else self._frame(clusters, "clusters")
        self._require(o, ["unit_id", outcome_col], "outcomes")
        self._require(e, ["unit_id", "condition"], "exposure")
        if c is not None:
            self._require(c, ["unit_id", "cluster_id"], "clusters")
            self._check_ids(c, "clusters")
        self._check_ids(o, "outcomes")
        self._check_ids(e, "exposure")
        o_view = self._view(o.selectExpr("unit_id", f"CAST({sql.quote_identifier(outcome_col, '`')} AS DOUBLE) AS y"))
        arm = "CAST(arm AS BIGINT) AS arm" if "arm" in e.columns else "CAST(NULL AS BIGINT) AS arm"
        e_view = self._view(e.selectExpr("unit_id", arm, "CAST(condition AS STRING) AS condition"))
        c_view = None if c is None else self._view(c.select("unit_id", "cluster_id"))
        if self._scalar(f"SELECT count(*) FROM {o_view} LEFT ANTI JOIN {e_view} USING (unit_id)"):
            raise InputError("outcomes: unit id(s) have no exposure: outcomes must belong to units of the graph.")
        missing = self._scalar(f"SELECT count(*) FROM {e_view} e LEFT JOIN {o_view} o ON e.unit_id = o.unit_id "
                               "WHERE (e.arm IS NULL OR e.arm <> -1) AND o.y IS NULL")
        if missing:
            warnings.warn(f"outcomes: dropped {missing} unit(s) with a missing outcome or covariate.", DataWarning, stacklevel=3)
        if c_view and self._scalar(f"SELECT count(*) FROM {e_view} LEFT ANTI JOIN {c_view} USING (unit_id)"):
            raise InputError("clusters: unit(s) of the exposure table have no cluster.")
        return o_view, e_view, c_view
