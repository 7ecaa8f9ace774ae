"""Seeds, one meaning everywhere (the scikit-learn convention).

Every function of spillover that draws at random takes ``seed``:

- an ``int`` (>= 0): reproducible, the same result on any machine;
- a :class:`numpy.random.Generator`: drawn from, so a caller can chain several steps
  off one generator;
- ``None``: fresh operating-system entropy, a different result on every call.

Libraries that want an integer seed (networkit, igraph, METIS) get :func:`int_seed`.
"""

from __future__ import annotations

import numbers

import numpy as np

from .errors import InputError

__all__ = ["Seed", "check_seed", "int_seed"]

Seed = int | np.random.Generator | None


def check_seed(seed: Seed) -> np.random.Generator:
    """A generator from ``seed`` (an int, a Generator, or None for fresh entropy).

    >>> a, b = check_seed(3).random(), check_seed(3).random()
    >>> a == b
    True
    >>> g = check_seed(None)
    >>> check_seed(g) is g
    True
    """
    if seed is None or isinstance(seed, np.random.Generator):
        return np.random.default_rng(seed)
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        if seed < 0:
            raise InputError(f"seed={seed}: a seed is a whole number >= 0, a numpy Generator or None.")
        return np.random.default_rng(int(seed))
    raise InputError(f"seed={seed!r}: a seed is a whole number >= 0, a numpy Generator or None "
                     f"(not {type(seed).__name__}).")


def int_seed(seed: Seed) -> int:
    """An integer seed for libraries that take one: the int itself, or a draw from the
    generator (fresh entropy for None).

    >>> int_seed(7)
    7
    >>> int_seed(np.random.default_rng(0)) == int_seed(np.random.default_rng(0))
    True
    """
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        check_seed(seed)
        return int(seed)
    return int(check_seed(seed).integers(2**31 - 1))


def seed_value(seed: Seed) -> int | None:
    """What an assignment records of its seed: the int, or None where it cannot be replayed."""
    return int(seed) if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) else None
