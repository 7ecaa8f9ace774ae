"""The keyed hash: arms that do not move when other units appear or vanish.

``md5(salt ':' key)``'s first 60 bits, computed by DuckDB in memory and expressible in any
SQL engine, so Spark and DuckDB reproduce it bit for bit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from .base import OUT

HASH_BITS = 60  # the keyed hash's bits: an integer in [0, 2**60)


def check_salt(salt: Any) -> str:
    """``salt`` if it can key the hash: non-empty text with something besides spaces (an
    empty salt would read as 'no salt' and give a random, unrepeatable assignment).

    >>> check_salt("launch-2026")
    'launch-2026'
    >>> check_salt("  ")
    Traceback (most recent call last):
    ...
    spillover.errors.InputError: salt '  ' is empty: the keyed hash needs a name for the experiment, such as 'checkout-2026'.
    """
    if not isinstance(salt, str) or not salt.strip():
        raise InputError(f"salt {salt!r} is empty: the keyed hash needs a name for the experiment, such as "
                         "'checkout-2026'.")
    return salt


def hash_uniform(keys: Iterable[Any] | pd.Index, salt: str) -> np.ndarray:
    """Keyed hash of each key as an integer in ``[0, 2**60)``.

    ``int(md5(f"{salt}:{key}").hexdigest()[:15], 16)``, computed by DuckDB (vectorised);
    depends on nothing but the salt and the key's text, so a unit's draw never moves
    when other units appear or vanish. Keys must be integers or strings.
    """
    import duckdb

    keys = pd.Index(keys)
    if keys.dtype.kind == "f":
        raise InputError("hash keys must be integers or strings, not floats (their text is ambiguous).")
    frame = pd.DataFrame({"k": keys.to_numpy()})
    if frame["k"].dtype == object:
        frame["k"] = frame["k"].astype(str)
    con = duckdb.connect()
    try:
        con.register("hash_keys", frame)
        result = con.execute(
            "SELECT ('0x' || substr(md5(? || ':' || CAST(k AS VARCHAR)), 1, 15))::UBIGINT AS h "
            "FROM hash_keys",
            [check_salt(salt)],
        ).fetchnumpy()["h"]
    finally:
        con.close()
    return np.asarray(result, dtype=np.int64)


@dataclass(frozen=True)
class HashSpec:
    """The keyed hash's slices of ``[0, 2**60)``: arm ``arms[k]`` when a key's hash falls in
    the ``k``-th slice, of width ``weights[k]``.

    The one rule every hashed assignment follows: designs, the DuckDB and Spark engines,
    the ledger's new components and the command line all build a ``HashSpec`` and read
    its integer :attr:`thresholds`, so any engine that computes the same md5 gives the
    same arms, bit for bit.

    >>> spec = HashSpec.of([0.5, 0.5])
    >>> spec.thresholds
    [576460752303423488]
    >>> spec.assign(["a", "b", "c"], salt="demo").tolist() == spec.assign(["a", "b", "c"], "demo").tolist()
    True
    """

    weights: tuple[float, ...]
    arms: tuple[int, ...]

    @classmethod
    def of(cls, weights: Sequence[float], arms: Sequence[int] | None = None) -> "HashSpec":
        """Normalised ``weights`` and their arm labels (``0, 1, ...`` unless given)."""
        w = np.asarray(weights, dtype=float)
        w = w / w.sum()
        labels = range(w.size) if arms is None else arms
        return cls(tuple(float(v) for v in w), tuple(int(a) for a in labels))

    @property
    def thresholds(self) -> list[int]:
        """Exact integer upper bounds of every slice but the last."""
        return [int(c * 2**HASH_BITS) for c in np.cumsum(self.weights)[:-1]]

    def assign(self, keys: Iterable[Any] | pd.Index, salt: str) -> np.ndarray:
        """The arm of each key (an int8 array)."""
        slot = np.searchsorted(np.array(self.thresholds, dtype=np.int64), hash_uniform(keys, salt), side="right")
        return np.asarray(self.arms, dtype=np.int8)[slot]


def sampled_arm_weights(sample_fraction: float, weights: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and arm labels when a ``sample_fraction`` enters the experiment and
    is split by ``weights``; the rest is :data:`OUT`."""
    weights = np.asarray(weights, dtype=float) / np.sum(weights)
    arms = np.arange(weights.size)
    if sample_fraction >= 1.0:
        return weights, arms
    return (
        np.concatenate([[1.0 - sample_fraction], sample_fraction * weights]),
        np.concatenate([[OUT], arms]),
    )
