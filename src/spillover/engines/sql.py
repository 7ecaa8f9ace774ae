"""SQL shared by the DuckDB and Spark engines: one text per step, valid in both dialects,
so the two engines cannot drift apart. Each builder takes the names of registered
views/tables and returns a query."""

from __future__ import annotations

from typing import Sequence

from ..exposure import bipartite_bounds


def quote_identifier(name: str, quote: str) -> str:
    """A column name as a quoted identifier (``"`` for DuckDB, a backtick for Spark), the
    quote character doubled inside it: user text never becomes SQL."""
    return f"{quote}{str(name).replace(quote, quote * 2)}{quote}"


def edges_view(relation: str, source: str, target: str, quote: str) -> str:
    """The edge list as ``s, t`` (ids as given)."""
    return f"SELECT {quote_identifier(source, quote)} AS s, {quote_identifier(target, quote)} AS t FROM {relation}"


#: The mappings the SQL engines express (each a CASE in :func:`condition_sql`).
SQL_MAPPINGS = ("fraction", "as4", "threshold", "bipartite")


def condition_sql(mapping: str, threshold_q: float | None) -> str:
    """The mapping as a CASE over ``own``, ``n`` (neighbours), ``k`` (treated neighbours)
    and ``frac`` (their share), identical to the memory engine's rules."""
    if mapping == "fraction":
        return "CASE WHEN own = 1 THEN 'treated' ELSE 'control' END"
    if mapping == "as4":
        return ("CASE WHEN own = 1 AND k > 0 THEN 'dir_ind1' WHEN own = 1 THEN 'isol_dir' "
                "WHEN k > 0 THEN 'ind1' ELSE 'no' END")
    if mapping == "threshold":
        q = repr(float(threshold_q))
        share = "(CASE WHEN n > 0 THEN frac ELSE CAST(own AS DOUBLE) END)"
        return (f"CASE WHEN own = 1 AND {share} >= {q} THEN 'treated' "
                f"WHEN own = 0 AND 1.0 - {share} >= {q} THEN 'control' ELSE 'other' END")
    if mapping == "bipartite":
        lower, upper = (0.0, 1.0) if threshold_q is None else bipartite_bounds(threshold_q)
        return (f"CASE WHEN frac >= {upper!r} THEN 'direct' WHEN frac <= {lower!r} THEN 'control' "
                "ELSE 'indirect' END")
    raise ValueError(mapping)


def social_exposure(edges: str, arms: str, mapping: str, threshold_q: float | None, clusters: bool = False) -> str:
    """Exposure on an undirected social graph: self-loops dropped, duplicate edges (either
    direction) collapsed, nodes without an arm untreated (arm -1), assigned units without
    an edge kept as isolated nodes; with ``clusters`` (the assignment has ``cluster_id``)
    each unit's randomization unit last, as the memory engine writes it."""
    cluster = ", r.cluster_id" if clusters else ""
    carried = ", cluster_id" if clusters else ""
    return f"""
WITH e AS (SELECT DISTINCT least(s, t) AS a, greatest(s, t) AS b FROM {edges} WHERE s <> t),
d AS (SELECT a AS u, b AS v FROM e UNION ALL SELECT b AS u, a AS v FROM e),
nodes AS (SELECT s AS unit_id FROM {edges} UNION SELECT t AS unit_id FROM {edges}
          UNION SELECT unit_id FROM {arms}),
nb AS (SELECT d.u AS unit_id, count(*) AS n, CAST(sum(CASE WHEN r.arm >= 1 THEN 1 ELSE 0 END) AS BIGINT) AS k
       FROM d LEFT JOIN {arms} r ON d.v = r.unit_id GROUP BY d.u),
base AS (SELECT nodes.unit_id, coalesce(r.arm, -1) AS arm, coalesce(nb.n, 0) AS n, coalesce(nb.k, 0) AS k{cluster}
         FROM nodes LEFT JOIN {arms} r ON nodes.unit_id = r.unit_id LEFT JOIN nb ON nodes.unit_id = nb.unit_id),
shaped AS (SELECT unit_id, arm, n, k, CASE WHEN arm >= 1 THEN 1 ELSE 0 END AS own,
                  CASE WHEN n > 0 THEN k / n ELSE 0.0 END AS frac{carried} FROM base)
SELECT unit_id, arm, n AS n_neighbors, k AS n_treated_neighbors, frac AS treated_fraction,
       {condition_sql(mapping, threshold_q)} AS condition{carried}
FROM shaped"""


def bipartite_exposure(edges: str, arms: str, mapping: str, threshold_q: float | None) -> str:
    """Exposure of the unit side of a bipartite graph (``s`` units, ``t`` treated side)."""
    return f"""
WITH e AS (SELECT DISTINCT s, t FROM {edges}),
nb AS (SELECT e.s AS unit_id, count(*) AS n, CAST(sum(CASE WHEN r.arm >= 1 THEN 1 ELSE 0 END) AS BIGINT) AS k
       FROM e LEFT JOIN {arms} r ON e.t = r.unit_id GROUP BY e.s),
shaped AS (SELECT unit_id, n, k, 0 AS own, CASE WHEN n > 0 THEN k / n ELSE 0.0 END AS frac FROM nb)
SELECT unit_id, CAST(NULL AS BIGINT) AS arm, n AS n_neighbors, k AS n_treated_neighbors,
       frac AS treated_fraction, {condition_sql(mapping, threshold_q)} AS condition
FROM shaped"""


def node_ids(edges: str, bipartite: bool) -> str:
    """The randomized nodes: every id of a social graph, the treated side of a bipartite one."""
    if bipartite:
        return f"SELECT DISTINCT t AS unit_id FROM {edges}"
    return f"SELECT s AS unit_id FROM {edges} UNION SELECT t AS unit_id FROM {edges}"


def hash_case(hash_expr: str, thresholds: Sequence[int], arms: Sequence[int]) -> str:
    """Arm by comparing the 60-bit hash with integer thresholds (same as memory)."""
    whens = " ".join(f"WHEN {hash_expr} < {t} THEN {a}" for t, a in zip(thresholds, arms))
    return f"CASE {whens} ELSE {arms[-1]} END"


def cluster_stats(outcomes: str, exposure: str, clusters: str | None) -> str:
    """Per-(cluster, condition) count, sum and sum of squares of the outcome ``y``, for
    units in the experiment with an outcome (one cluster, 0, when ``clusters`` is None)."""
    cluster = "c.cluster_id" if clusters else "0"
    join = f"JOIN {clusters} c ON e.unit_id = c.unit_id" if clusters else ""
    group = "c.cluster_id, e.condition" if clusters else "e.condition"  # (GROUP BY 0 would name a position)
    return f"""
SELECT {cluster} AS cluster_id, e.condition, count(*) AS n, sum(o.y) AS sum_y, sum(o.y * o.y) AS sum_y2
FROM {exposure} e JOIN {outcomes} o ON e.unit_id = o.unit_id {join}
WHERE o.y IS NOT NULL AND (e.arm IS NULL OR e.arm <> -1)
GROUP BY {group}"""


def treated_side_stats(outcomes: str, exposure: str, edges: str, blocks: str | None) -> str:
    """Per-(treated-side block, condition) count and sum of the outcome ``y`` of the units
    linked to the block (each unit once per block): a bipartite graph's ``edges`` (``s``
    units, ``t`` treated side), ``blocks`` (``unit_id, cluster_id`` of the treated side, when
    clusters of it were randomized; else each treated-side node is its own block)."""
    block = "b.cluster_id" if blocks else "l.t"
    join = f"JOIN {blocks} b ON l.t = b.unit_id" if blocks else ""
    return f"""
WITH links AS (SELECT DISTINCT l.s AS unit_id, {block} AS cluster_id FROM {edges} l {join})
SELECT links.cluster_id, e.condition, count(*) AS n, sum(o.y) AS sum_y
FROM links JOIN {exposure} e ON links.unit_id = e.unit_id JOIN {outcomes} o ON e.unit_id = o.unit_id
WHERE o.y IS NOT NULL AND (e.arm IS NULL OR e.arm <> -1)
GROUP BY links.cluster_id, e.condition"""


def id_problems(relation: str, column: str, quote: str, arm: str | None = None) -> str:
    """One row of counts for the shared input checks of :func:`check_ids`: missing ids,
    repeated ids, ids with a fractional part, and (with ``arm``) arms that are not whole
    numbers of at least -1; each with an example."""
    col = quote_identifier(column, quote)
    text = f"CAST({col} AS STRING)" if quote == "`" else f"CAST({col} AS VARCHAR)"
    bad_arm = "FALSE"
    if arm is not None:
        a = quote_identifier(arm, quote)
        bad_arm = f"({a} IS NULL OR CAST({a} AS DOUBLE) <> floor(CAST({a} AS DOUBLE)) OR CAST({a} AS DOUBLE) < -1)"
    return f"""
SELECT sum(CASE WHEN {col} IS NULL THEN 1 ELSE 0 END) AS nulls,
       count({col}) - count(DISTINCT {col}) AS repeats,
       (SELECT min({text}) FROM (SELECT {col} FROM {relation} WHERE {col} IS NOT NULL GROUP BY {col}
                                 HAVING count(*) > 1) d) AS repeat_example,
       sum(CASE WHEN {bad_arm} THEN 1 ELSE 0 END) AS bad_arms,
       min(CASE WHEN {bad_arm} THEN {text} END) AS bad_arm_example
FROM {relation}"""


def check_ids(what: str, column: str, counts: dict, dtype: str, arms: bool = False) -> None:
    """The engines' input rule, the memory engine's: no missing id, no id twice, no
    floating-point ids (``dtype`` is the column's SQL type), and arms whole numbers >= -1."""
    from ..errors import InputError

    if any(kind in dtype.upper() for kind in ("FLOAT", "DOUBLE", "REAL", "DECIMAL")):
        raise InputError(f"{what}: column '{column}' holds floating-point ids ({dtype}); ids are integers or text: "
                         "write them as such (a float id like 7.0 cannot be matched exactly).")
    if counts["nulls"]:
        raise InputError(f"{what}: {int(counts['nulls']):,} row(s) with a missing '{column}'. Drop or fill them.")
    if counts["repeats"]:
        raise InputError(f"{what}: {column} {counts['repeat_example']} appears more than once "
                         f"({int(counts['repeats']):,} extra row(s)); one row per unit.")
    if arms and counts["bad_arms"]:
        raise InputError(f"{what}: arm of unit {counts['bad_arm_example']} is not an arm: arms are whole numbers, "
                         "-1 (out of the experiment), 0 (control), 1, 2, ...")


ROWS_RULE = "rows-v1:"  # the prefix of a checksum by rows_checksum (a checksum names the rule that made it)


def rows_digest_query(relation: str, columns: Sequence[str], quote: str) -> str:
    """One row: the number of distinct rows of ``columns`` and the sums of the two 64-bit
    halves of each row's MD5 (its values as text, separated by the unit separator): an
    order-independent digest of the table's distinct rows, in one scan."""
    text = ", ".join(f"coalesce(CAST({quote_identifier(c, quote)} AS VARCHAR), chr(0))" for c in columns)
    return (f"SELECT count(*), sum(md5_number_upper(t)), sum(md5_number_lower(t)) "
            f"FROM (SELECT DISTINCT concat_ws(chr(31), {text}) AS t FROM {relation})")


def rows_checksum(digest: Sequence) -> str:
    """The ``rows-v1`` checksum of a table from :func:`rows_digest_query`'s row: the same
    rows, in any order and however often repeated, give the same checksum.

    >>> rows_checksum((2, 10, 20))[:20]
    'rows-v1:b603c2a90776'
    """
    import hashlib

    count, upper, lower = (int(x or 0) for x in digest)
    return ROWS_RULE + hashlib.sha256(f"{count}:{upper}:{lower}".encode()).hexdigest()


def _text(quote: str) -> str:
    """The text type of the dialect: STRING in Spark (backtick quotes), VARCHAR in DuckDB."""
    return "STRING" if quote == "`" else "VARCHAR"


def membership_checks(relation: str, user: str, project: str, account: str, extras: Sequence[str], quote: str) -> str:
    """One row over a membership snapshot: ``n_rows``; ``nulls`` (rows missing a user,
    project or account); ``conflicted`` (projects billed to several accounts);
    ``disagree`` (users whose per-user ``extras`` differ between rows); ``repeats``
    (duplicate user-project rows) and an example of one."""
    u, p, a = (quote_identifier(c, quote) for c in (user, project, account))
    per_user = ", ".join([u, *(quote_identifier(c, quote) for c in extras)])
    text = _text(quote)
    return f"""
SELECT count(*) AS n_rows,
       coalesce(sum(CASE WHEN {u} IS NULL OR {p} IS NULL OR {a} IS NULL THEN 1 ELSE 0 END), 0) AS nulls,
       (SELECT count(*) FROM (SELECT {p} FROM {relation} GROUP BY {p} HAVING count(DISTINCT {a}) > 1) x) AS conflicted,
       (SELECT count(*) FROM (SELECT {u} FROM (SELECT DISTINCT {per_user} FROM {relation}) y GROUP BY {u}
                              HAVING count(*) > 1) z) AS disagree,
       count(*) - (SELECT count(*) FROM (SELECT DISTINCT {u}, {p} FROM {relation}) w) AS repeats,
       (SELECT min(CAST({u} AS {text}) || ' in ' || CAST({p} AS {text})) FROM (SELECT {u}, {p} FROM {relation}
        GROUP BY {u}, {p} HAVING count(*) > 1) d) AS repeat_example
FROM {relation}"""


def membership_extras(columns: Sequence[str], user: str, project: str, account: str) -> list[str]:
    """A snapshot's per-user columns: all but the three ids (and pandas' saved index,
    ``__index_level_N__``, which pandas reads back as the index, not a column).

    >>> membership_extras(["user_id", "project_id", "account_id", "usage", "__index_level_0__"],
    ...                   "user_id", "project_id", "account_id")
    ['usage']
    """
    import re

    return [c for c in columns if c not in (user, project, account) and not re.fullmatch(r"__index_level_\d+__", c)]


def settle_membership_checks(checks, ok: bool, memberships, what: str, columns: Sequence[str], user: str,
                             project: str, account: str) -> None:
    """Act on :func:`membership_checks`' row (``checks``; ``ok``: the ids are there and not
    floating point): a snapshot that fails is handed to the memory loader, whose one-line
    error (naming the row) is raised, so every engine refuses bad input in the same words;
    duplicate memberships are collapsed with a warning."""
    import warnings

    from ..errors import DataWarning, InputError
    from ..graph import CollaborationNetwork

    if not ok or not checks["n_rows"] or checks["nulls"] or checks["conflicted"] or checks["disagree"]:
        CollaborationNetwork.from_memberships(memberships, user=user, project=project, account=account)
        raise InputError(f"{what}: not a membership table the daily job can read (columns {list(columns)}).")
    if checks["repeats"]:
        warnings.warn(f"{what}: collapsed {checks['repeats']} duplicate membership(s), e.g. {checks['repeat_example']}.",
                      DataWarning, stacklevel=3)


def numbered_users(relation: str, user: str, quote: str) -> str:
    """The snapshot's users (``id``) numbered by id from 0 (``v``)."""
    u = quote_identifier(user, quote)
    return f"SELECT {u} AS id, row_number() OVER (ORDER BY {u}) - 1 AS v FROM (SELECT DISTINCT {u} FROM {relation}) x"


def user_accounts(relation: str, user: str, account: str, users: str, quote: str) -> str:
    """Each user (``u``: its number in ``users``) with each account (``a``, numbered by id)
    one of its projects is billed to: a project has one account, so users are linked
    exactly when they reach a common account."""
    u, a = quote_identifier(user, quote), quote_identifier(account, quote)
    return f"""
WITH accounts AS (SELECT account, row_number() OVER (ORDER BY account) - 1 AS a
                  FROM (SELECT DISTINCT {a} AS account FROM {relation}) x)
SELECT DISTINCT s.v AS u, c.a FROM {relation} r JOIN {users} s ON r.{u} = s.id JOIN accounts c ON r.{a} = c.account"""


def stars(pairs: str, group: str, member: str) -> str:
    """Edges (``a, b``, both directions) that link the ``member``s of each ``group`` of
    ``pairs``: a star on the group's smallest member, as few edges as keep them connected
    (the account graph: users' accounts; lineages: the users of a component on a day)."""
    return f"""
WITH star AS (SELECT {group} AS g, min({member}) AS root FROM {pairs} GROUP BY {group} HAVING count(*) > 1),
e AS (SELECT DISTINCT s.root AS a, x.{member} AS b FROM star s JOIN {pairs} x ON s.g = x.{group}
      WHERE x.{member} <> s.root)
SELECT a, b FROM e UNION ALL SELECT b, a FROM e"""


def first_user(user_accounts: str, labels: str) -> str:
    """Each user (``u``) with the smallest user of its component (``first``), from the
    accounts' component ``labels`` (``v``: account, ``l``: its label)."""
    return f"""
WITH label AS (SELECT x.u, min(c.l) AS l FROM {user_accounts} x JOIN {labels} c ON x.a = c.v GROUP BY x.u)
SELECT u, min(u) OVER (PARTITION BY l) AS first FROM label"""
