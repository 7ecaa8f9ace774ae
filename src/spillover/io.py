"""Tables in and out: CSV and Parquet read with ids typed one way everywhere, written
atomically, with their columns checked; the design an assignment carries travels with it."""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
from pandas._libs.parsers import STR_NA_VALUES

from .errors import InputError, show_id
from .faults import crash_point
from .names import FORMATS, ID_TYPES

TableLike = pd.DataFrame | str | os.PathLike
DESIGN_KEY = "spillover.design"  # the design a table carries (DataFrame.attrs, Parquet metadata)
MAPPING_KEY = "spillover.mapping"  # the exposure mapping an exposure table was made with
METADATA_KEYS = (DESIGN_KEY, MAPPING_KEY)  # what travels with a table written by write_table

__all__ = ["FORMATS", "ID_COLUMNS", "ID_TYPES", "ReadOptions", "TableLike", "id_type", "read_table", "write_table"]


# columns that hold ids wherever they appear (edge lists add their --source/--target)
ID_COLUMNS = ("unit_id", "cluster_id", "user_id", "project_id", "account_id", "source", "target", "component")


_id_type: contextvars.ContextVar[str] = contextvars.ContextVar("id_type", default="auto")


# a canonical integer: no sign but '-', no leading zero, no '-0', at most 18 digits (fits int64)
CANONICAL_INT = r"(?:0|-?[1-9][0-9]{0,17})"


# the text that is a missing value in a CSV column other than an id ('NA', 'nan', 'NULL', ...:
# pandas' defaults); in an id column only an empty field is missing ('NA' can be an id)
MISSING_TEXT = tuple(sorted(STR_NA_VALUES))


@contextlib.contextmanager
def id_type(kind: str) -> Iterator[None]:
    """Within the block, :func:`read_table` types id columns as ``kind`` (the CLI's ``--id-type``).

    ``"auto"`` (default): CSV ids are read as text, and become integers only when every id
    of the table is a canonical integer (``7``, not ``007`` or ``+7``); ``"str"``: ids are
    text everywhere (Parquet integers too); ``"int"``: ids must be integers.

    Examples
    --------
    >>> import pandas as pd
    >>> with id_type("str"):
    ...     read_table(pd.DataFrame({"unit_id": [1, 2]}))["unit_id"].tolist()
    ['1', '2']
    """
    if kind not in ID_TYPES:
        raise InputError(f"id type must be one of {list(ID_TYPES)}, not {kind!r}.")
    token = _id_type.set(kind)
    try:
        yield
    finally:
        _id_type.reset(token)


def current_id_type() -> str:
    """The id policy in force (:func:`id_type`): ``"auto"``, ``"str"`` or ``"int"``; engines follow it too."""
    return _id_type.get()


# the file formats a table can be read as (FORMATS, in spillover.names); ``auto`` chooses by extension
_BY_SUFFIX = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "snap", ".edges": "snap", ".edgelist": "snap",
              ".parquet": "parquet", ".pq": "parquet", ".mtx": "mtx", ".graphml": "graphml", ".gml": "gml"}
# per text format: the column separator, the comment prefix, whether the first row names the columns
_TEXT = {"csv": (",", None, True), "tsv": ("\t", None, True), "snap": (r"\s+", "#", False)}


@dataclass(frozen=True)
class ReadOptions:
    """How to read a file whose extension does not say it all: its ``format`` (one of
    :data:`FORMATS`; ``snap``: whitespace-separated columns, ``#`` comment lines, no header,
    as SNAP edge lists and MovieLens' ``u.data`` come), and overrides of the format's
    column separator ``sep``, ``comment`` prefix and ``header`` (whether the first row
    names the columns). Without a header, columns are named by position, ``"0"``,
    ``"1"``, ...; an edge list's first two are its two ends unless ``--source`` and
    ``--target`` name others.

    Examples
    --------
    >>> ReadOptions("snap").text()[1:], ReadOptions("csv", header=False).text()
    (('#', False), (',', None, False))
    """

    format: str = "auto"
    sep: str | None = None
    comment: str | None = None
    header: bool | None = None

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise InputError(f"format {self.format!r} is not one of {list(FORMATS)}.")

    def resolved(self, path: Path) -> str:
        """The format of ``path``: the one named, else its extension's."""
        if self.format != "auto":
            return self.format
        found = _BY_SUFFIX.get(path.suffix.lower())
        if found is None:
            raise InputError(f"cannot tell the format of '{path}' from its extension: name it with --format (one of "
                             f"{', '.join(FORMATS[1:])}).")
        return found

    def text(self, fmt: str | None = None) -> tuple[str, str | None, bool]:
        """The separator, comment prefix and header of a text format, the overrides applied."""
        sep, comment, header = _TEXT[fmt or (self.format if self.format in _TEXT else "csv")]
        return (self.sep if self.sep is not None else sep, self.comment if self.comment is not None else comment,
                self.header if self.header is not None else header)


def read_table(source: TableLike, *, what: str = "table", ids: Sequence[str] = (),
               options: ReadOptions | None = None) -> pd.DataFrame:
    """Read a DataFrame, or a file: CSV, TSV, whitespace-separated text (SNAP edge lists,
    MovieLens' ``u.data``), Parquet, Matrix Market (``.mtx``), GraphML or GML, chosen by its
    extension or by ``options`` (:class:`ReadOptions`: format, separator, comment prefix,
    header).

    Id columns (:data:`ID_COLUMNS` and ``ids``) are typed by :func:`id_type`: in a text file
    they are read as text, so ``007`` and ``7`` stay two ids and ``NA`` or ``None`` is an id
    (only an empty cell is missing); they become integers when every id is a canonical
    integer. A file without a header keeps every row (its columns are named by position);
    an edge list read with a header whose names are all numbers is refused: its first row
    is data.

    Examples
    --------
    >>> import io, pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "units.csv"
    ...     _ = path.write_text("unit_id,y\\n007,1\\n7,NA\\nNA,2\\n")
    ...     table = read_table(path)
    ...     snap = pathlib.Path(folder) / "edges.txt"
    ...     _ = snap.write_text("# a SNAP edge list\\n0\\t1\\n1\\t2\\n")
    ...     edges = read_table(snap, ids=("source", "target"))
    >>> table["unit_id"].tolist(), table["y"].isna().tolist()
    (['007', '7', 'NA'], [False, True, False])
    >>> edges.columns.tolist(), len(edges)
    (['source', 'target'], 2)
    """
    if isinstance(source, pd.DataFrame):
        return _typed_ids(source, ids, what) if _id_type.get() != "auto" else source
    options = options or ReadOptions()
    path = Path(source)
    if not path.exists():
        raise InputError(f"{what}: file '{path}' does not exist.")
    if path.is_dir():
        raise InputError(f"{what}: '{path}' is a folder; give the table's file (.csv or .parquet).")
    fmt = options.resolved(path)
    if path.stat().st_size == 0:
        raise InputError(f"{what}: '{path}' is empty (0 bytes); the table needs a header row and data.")
    try:
        if fmt in _TEXT:
            frame = _read_text(path, options.text(fmt), ids, what)
        elif fmt == "parquet":
            frame = _read_parquet(path)
        else:
            frame = _read_graph_file(path, fmt, ids)
    except InputError:
        raise
    except (ValueError, OSError, UnicodeDecodeError, IndexError) as error:  # the readers' errors
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        kind = {"csv": "CSV (UTF-8 text)", "tsv": "tab-separated text", "snap": "whitespace-separated text"}.get(
            fmt, fmt.upper() if fmt == "mtx" else fmt.capitalize())
        raise InputError(f"{what}: cannot read '{path}' as {kind}: {first[:200]}. Is the file whole and of "
                         "that format?") from None
    frame = _typed_ids(frame, ids, what, from_text=fmt in _TEXT)
    for key in METADATA_KEYS:
        frame.attrs.pop(key, None)
    frame.attrs.update(read_metadata(path))
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    """A Parquet file through pandas. Arrow's allocator keeps the memory of the table it
    decoded after the conversion to pandas; it is handed back here, so the steps after a
    large read start from the frame's size alone (50M links: 2.4 GB held after the read
    before, 0.95 GB after)."""
    import pyarrow as pa

    frame = pd.read_parquet(path)
    pa.default_memory_pool().release_unused()
    return frame


def integer_columns(source: TableLike, columns: Sequence[str],
                    options: ReadOptions | None = None) -> list[list[np.ndarray]] | None:
    """The integer id ``columns`` of a Parquet file, each as the list of its record
    batches' arrays (aligned across columns, shared with Arrow's memory: no pandas copy),
    or None, and the caller reads the file with :func:`read_table`: when ``source`` is not
    a Parquet file, a column is missing, not integer or has a missing value (the reader's
    errors say which), or ids are typed by an ``--id-type`` other than ``auto``. At 50M
    links this skips the 800 MB copy into pandas.

    Examples
    --------
    >>> import pandas as pd, pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = write_table(pd.DataFrame({"source": [1, 2], "target": [3, 4]}), pathlib.Path(folder) / "e.parquet")
    ...     parts = integer_columns(path, ["source", "target"])
    >>> [[part.tolist() for part in column] for column in parts]
    [[[1, 2]], [[3, 4]]]
    """
    if isinstance(source, pd.DataFrame) or _id_type.get() != "auto":
        return None
    path = Path(source)
    options = options or ReadOptions()
    if not path.is_file() or options.format not in ("auto", "parquet") or \
            (options.format == "auto" and _BY_SUFFIX.get(path.suffix.lower()) != "parquet"):
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        if any(c not in schema.names or not pa.types.is_integer(schema.field(c).type) for c in columns):
            return None
        table = pq.read_table(path, columns=list(columns))
    except (OSError, ValueError, pa.ArrowException):
        return None
    if any(table.column(c).null_count for c in columns):
        return None
    batches = table.to_batches()
    return [[batch.column(c).to_numpy() for batch in batches] for c in columns]


def _read_text(path: Path, text: tuple[str, str | None, bool], ids: Sequence[str], what: str) -> pd.DataFrame:
    """A delimited text file, ids as text; without a header its columns are named by
    position and, when the ids asked for are not among them, the first ones take their names."""
    sep, comment, header = text
    if not header:
        frame = pd.read_csv(path, sep=sep, comment=comment, header=None, dtype=str, keep_default_na=False,
                            na_values=[""], skip_blank_lines=True)
        frame.columns = [str(c) for c in frame.columns]
        wanted = [c for c in ids if c not in frame.columns]
        if wanted and len(wanted) == len(ids) and frame.shape[1] >= len(ids):
            frame = frame.rename(columns={str(i): name for i, name in enumerate(ids)})
        numbers = [c for c in frame.columns if c not in ids and c not in ID_COLUMNS]
        for column in numbers:  # columns beyond the ids: numbers where they read as numbers (a rating, a time)
            converted = pd.to_numeric(frame[column], errors="coerce")
            if converted.notna().sum() == frame[column].notna().sum():
                frame[column] = converted
        return frame
    names = pd.read_csv(path, sep=sep, comment=comment, nrows=0).columns
    numeric = len(names) and pd.to_numeric(pd.Series([str(n) for n in names]), errors="coerce").notna().all()
    if ids and numeric:  # an edge list whose "header" is numbers: its first edge (a table of draws may be so)
        raise InputError(f"{what}: the first row of '{path}' ({', '.join(map(str, names[:4]))}) is all numbers: it is "
                         "data, not a header; pass --no-header (or --format snap) so that no row is lost.")
    id_cols = [c for c in names if c in ID_COLUMNS or c in ids]
    return pd.read_csv(path, sep=sep, comment=comment, dtype={c: str for c in id_cols}, keep_default_na=False,
                       na_values={c: ([""] if c in id_cols else list(MISSING_TEXT)) for c in names})


def _read_graph_file(path: Path, fmt: str, ids: Sequence[str]) -> pd.DataFrame:
    """An edge list from a Matrix Market file (1-based row and column numbers, as written)
    or, through networkx, a GraphML or GML graph (node ids as the file names them)."""
    source, target = (list(ids) + ["source", "target"])[:2] if len(ids) >= 2 else ("source", "target")
    if fmt == "mtx":
        from scipy.io import mmread

        matrix = mmread(path).tocoo()
        return pd.DataFrame({source: matrix.row.astype(np.int64) + 1, target: matrix.col.astype(np.int64) + 1})
    import networkx as nx

    graph = nx.read_graphml(path) if fmt == "graphml" else nx.read_gml(path, label="id")
    edges = list(graph.edges())
    return pd.DataFrame({source: [str(a) for a, _ in edges], target: [str(b) for _, b in edges]}).astype(object)


def auto_integer_columns(columns: Sequence[str], ids: Sequence[str], non_canonical: dict[str, bool]) -> list[str]:
    """The id columns ``--id-type auto`` makes integers: those whose every id is a
    canonical integer (``non_canonical[c]`` false), an edge list's two ends (``source`` and
    ``target``, or the columns named in ``ids``) only together, so that both ends of an
    edge have one type. Every engine applies this one rule.

    >>> auto_integer_columns(["unit_id", "cluster_id"], (), {"unit_id": False, "cluster_id": True})
    ['unit_id']
    >>> auto_integer_columns(["source", "target"], (), {"source": False, "target": True})
    []
    """
    ends = [c for c in columns if c in ("source", "target") or c in ids]
    groups = ([ends] if ends else []) + [[c] for c in columns if c not in ends]
    return [c for group in groups if not any(non_canonical[g] for g in group) for c in group]


def _typed_ids(frame: pd.DataFrame, ids: Sequence[str], what: str, from_text: bool = False) -> pd.DataFrame:
    """Id columns typed by the id policy: text, integers, or (auto) integers only where
    every id of a column (of both ends of an edge list) is a canonical integer."""
    kind = _id_type.get()
    columns = [c for c in frame.columns if c in ID_COLUMNS or c in ids]
    if not columns or (kind == "auto" and not from_text):
        return frame
    frame = frame.copy()
    if kind == "str":
        for c in columns:
            frame[c] = frame[c].astype("string").astype(object).where(frame[c].notna())
        return frame
    text = {c: frame[c].astype("string") for c in columns}
    canonical = {c: t.str.fullmatch(CANONICAL_INT).fillna(True) for c, t in text.items()}
    if kind == "auto":
        convert = auto_integer_columns(columns, ids, {c: not bool(m.all()) for c, m in canonical.items()})
        canonical = {c: canonical[c] for c in convert}
    for c, match in canonical.items():
        if not match.all():
            row = int(np.flatnonzero(~match.to_numpy())[0])
            raise InputError(f"{what}: --id-type int, but column '{c}' row {row} holds {text[c].iloc[row]!r}, not an "
                             "integer (at most 18 digits, no leading zero); use --id-type str or auto.")
        frame[c] = pd.to_numeric(text[c]).astype("Int64") if frame[c].isna().any() else \
            pd.to_numeric(text[c]).astype(np.int64)
    return frame


def check_table_path(path: str | os.PathLike) -> Path:
    """``path`` if a table can be written there: a .csv or .parquet name that is not a
    folder; checked before a command does any work or writes anything.

    >>> check_table_path("out/arms.parquet").name
    'arms.parquet'
    """
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise InputError(f"cannot write '{path}': use a .csv or .parquet extension.")
    if path.is_dir():
        raise InputError(f"cannot write '{path}': it is a folder; name the file to write.")
    return path


def write_table(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``frame`` as CSV or Parquet by the extension of ``path``; returns the path.

    Atomic: the table is written to a temporary file beside ``path``, flushed to disk and
    renamed over it, so a reader (or a crash) sees the old file or the whole new one,
    never a partial one. The design a table carries (``frame.attrs["spillover.design"]``,
    an assignment's; and an exposure table's mapping) is written with it: in the Parquet
    file's key-value metadata, or beside a CSV as ``<name>.design.json``
    (:func:`read_table` reads it back into ``attrs``).

    Examples
    --------
    >>> import pandas as pd, tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = write_table(pd.DataFrame({"unit_id": [1, 2]}), pathlib.Path(folder) / "units.parquet")
    ...     read_table(path)["unit_id"].tolist()
    [1, 2]
    """
    path = check_table_path(path)
    suffix = path.suffix.lower()
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {key: frame.attrs[key] for key in METADATA_KEYS if frame.attrs.get(key) is not None}
    sidecar = metadata_sidecar(path)
    with atomic_path(path) as temporary:
        if suffix == ".csv":
            frame.to_csv(temporary, index=False)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            extra = {key.encode(): json.dumps(value, sort_keys=True) for key, value in metadata.items()}
            pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), **extra}), temporary)
    if suffix == ".csv" and metadata:
        with atomic_path(sidecar) as temporary:
            temporary.write_text(json.dumps(metadata, sort_keys=True, indent=1), encoding="utf-8")
    elif suffix == ".csv" and sidecar.exists():  # a CSV without a design must not keep an older one's
        sidecar.unlink()
    return path


def table_metadata(source: TableLike) -> dict:
    """What a table carries besides its rows (:data:`METADATA_KEYS`): a DataFrame's
    ``attrs``, or a file's (:func:`read_metadata`).

    >>> frame = pd.DataFrame({"unit_id": [1]})
    >>> frame.attrs[DESIGN_KEY] = {"name": "cluster"}
    >>> table_metadata(frame)
    {'spillover.design': {'name': 'cluster'}}
    """
    if isinstance(source, pd.DataFrame):
        return {key: source.attrs[key] for key in METADATA_KEYS if source.attrs.get(key) is not None}
    return read_metadata(source)


def metadata_sidecar(path: str | os.PathLike) -> Path:
    """Where a CSV table's design (and mapping) is written: ``assignment.csv`` -> ``assignment.design.json``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.design.json")


def read_metadata(path: str | os.PathLike) -> dict:
    """What a table file carries besides its rows (:data:`METADATA_KEYS`: the design of an
    assignment, the mapping of an exposure table), from the Parquet key-value metadata or
    a CSV's ``.design.json`` sidecar; a damaged one is an :class:`InputError`.

    >>> import pandas as pd, tempfile, pathlib
    >>> frame = pd.DataFrame({"unit_id": [1, 2], "arm": [0, 1]})
    >>> frame.attrs[DESIGN_KEY] = {"name": "individual"}
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     csv = write_table(frame, pathlib.Path(folder) / "a.csv")
    ...     parquet = write_table(frame, pathlib.Path(folder) / "a.parquet")
    ...     read_metadata(csv) == read_metadata(parquet) == {"spillover.design": {"name": "individual"}}
    True
    """
    path = Path(path)
    try:
        if path.suffix.lower() not in (".parquet", ".pq") or path.is_dir():  # text, or a folder of Parquet parts
            sidecar = metadata_sidecar(path)
            found = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.exists() else {}
            if not isinstance(found, dict):
                raise ValueError("not a JSON object")
            return {key: found[key] for key in METADATA_KEYS if key in found}
        import pyarrow.parquet as pq

        metadata = pq.read_schema(path).metadata or {}
        return {key: json.loads(metadata[key.encode()]) for key in METADATA_KEYS if key.encode() in metadata}
    except (ValueError, OSError) as error:
        raise InputError(f"'{path}': its recorded design cannot be read ({str(error).splitlines()[0][:120]}); "
                         "rewrite the file, or name the design (--design).") from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; on success it is fsynced and renamed
    over ``path``, on failure removed (``path`` is untouched either way)."""
    path = Path(path)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent or ".")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        crash_point("file-before-rename")
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def source_name(source: TableLike, what: str) -> str:
    """How an error names a table: ``what`` for a DataFrame, ``what 'path'`` for a file."""
    return what if isinstance(source, pd.DataFrame) else f"{what} '{source}'"


def require_numbers(frame: pd.DataFrame, columns: Sequence[str], what: str) -> pd.DataFrame:
    """``frame`` with ``columns`` as numbers; text in one (naming the row) or an infinite
    value is an :class:`InputError` (missing values stay missing).

    >>> require_numbers(pd.DataFrame({"y": ["1.5", "2"]}), ["y"], "outcomes")["y"].tolist()
    [1.5, 2.0]
    >>> require_numbers(pd.DataFrame({"y": ["1", "x"]}), ["y"], "outcomes")
    Traceback (most recent call last):
    ...
    spillover.errors.InputError: outcomes: column 'y' has text, e.g. 'x' in row 1; outcomes and covariates must be numbers.
    """
    for column in columns:
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            numeric = pd.to_numeric(values, errors="coerce")
            bad = numeric.isna() & values.notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise InputError(f"{what}: column '{column}' has text, e.g. {show_id(values.iloc[row])} in row {row}; "
                                 "outcomes and covariates must be numbers.")
        infinite = np.isinf(pd.to_numeric(values, errors="coerce").to_numpy(dtype=float))
        if infinite.any():
            row = int(np.flatnonzero(infinite)[0])
            raise InputError(f"{what}: column '{column}' has {int(infinite.sum())} infinite value(s), e.g. row {row}; "
                             "fix them or drop those units.")
    return frame.assign(**{c: pd.to_numeric(frame[c]) for c in columns})


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise a clear error when ``frame`` lacks any of ``columns``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"{what}: missing column(s) {missing}; it has {list(frame.columns)}. "
            "Rename the columns or pass the right names (e.g. --source/--target)."
        )


def require_no_nulls(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise naming the first row whose id is missing."""
    for column in columns:
        null = frame[column].isna().to_numpy()
        if null.any():
            rows = np.flatnonzero(null)
            raise InputError(
                f"{what}: column '{column}' has a missing id in row {rows[0]}"
                f" ({rows.size} row(s) in all). Drop or fill those rows."
            )


def unique_rows(frame: pd.DataFrame, key: str, what: str) -> pd.DataFrame:
    """``frame`` with one row per ``key``: repeated rows that are identical are dropped
    (with a :class:`~spillover.errors.DataWarning` saying how many), repeated keys whose
    rows differ are an :class:`InputError` naming the first one.

    >>> unique_rows(pd.DataFrame({"unit_id": [1, 1, 2], "cluster_id": ["a", "a", "b"]}), "unit_id", "clusters")
       unit_id cluster_id
    0        1          a
    2        2          b
    """
    repeated = frame[key].duplicated(keep=False).to_numpy()
    if not repeated.any():
        return frame
    identical = frame.duplicated(keep="first")
    conflicting = frame.loc[~identical.to_numpy(), key].duplicated()
    if conflicting.any():
        example = frame.loc[~identical.to_numpy(), key][conflicting].iloc[0]
        rows = np.flatnonzero((frame[key] == example).to_numpy())[:3].tolist()
        raise InputError(f"{what}: {key} {show_id(example)} appears in {int((frame[key] == example).sum())} rows that differ "
                         f"(rows {rows}); one row per {key.removesuffix('_id')}.")
    import warnings

    from .errors import DataWarning

    warnings.warn(f"{what}: {int(identical.sum()):,} repeated identical row(s) dropped (e.g. {key} "
                  f"{show_id(frame.loc[identical.to_numpy(), key].iloc[0])}).", DataWarning, stacklevel=3)
    return frame[~identical.to_numpy()]
