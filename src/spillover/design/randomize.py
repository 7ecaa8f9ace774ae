"""The randomization primitives the designs share: arm probabilities, exact counts by
largest remainder, and permuted draws (all draws of a design as one matrix)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import DesignError
from .base import OUT


def arm_probabilities(treat_fraction: float | None, arm_weights: Sequence[float] | None) -> np.ndarray:
    """Arm probabilities (summing to 1) from a treated share or explicit weights."""
    if arm_weights is None:
        p = 0.5 if treat_fraction is None else float(treat_fraction)
        if not 0.0 < p < 1.0:
            raise DesignError(f"treat_fraction={p} must be strictly between 0 and 1.")
        return np.array([1.0 - p, p])
    weights = np.asarray(arm_weights, dtype=float)
    if weights.ndim != 1 or weights.size < 2 or (weights <= 0).any() or not np.isfinite(weights).all():
        raise DesignError(f"arm_weights={list(arm_weights)} must be two or more positive numbers.")
    return weights / weights.sum()


def exact_counts(n: int, weights: np.ndarray) -> np.ndarray:
    """Units per arm: ``n * weights`` rounded by largest remainder (ties: the first arm),
    so counts sum to ``n``."""
    raw = n * np.asarray(weights, dtype=float)
    counts = np.floor(raw).astype(np.int64)
    short = n - int(counts.sum())
    if short:
        order = np.lexsort((np.arange(raw.size), -np.round(raw - counts, 12)))
        counts[order[:short]] += 1
    return counts


def treated_count_distribution(n_total: int, weights: np.ndarray) -> dict[int, float]:
    """The number of treated (arm >= 1) units among ``n_total`` split by
    :func:`extra_arm_draws`: the floors of the arms, plus the leftover slots' arms drawn
    without replacement in proportion to the fractional parts (every order enumerated:
    a handful of arms)."""
    import itertools

    raw = n_total * np.asarray(weights, dtype=float)
    floors = np.floor(raw).astype(np.int64)
    extra = n_total - int(floors.sum())
    fraction = np.maximum(raw - floors, 1e-300)
    base = int(floors[1:].sum())
    out: dict[int, float] = {}
    for order in itertools.permutations(range(weights.size), extra):
        left, prob = fraction.sum(), 1.0
        for arm in order:
            prob *= fraction[arm] / left
            left -= fraction[arm]
        k = base + sum(1 for arm in order if arm >= 1)
        out[k] = out.get(k, 0.0) + float(prob)
    return out


def extra_arm_draws(
    n_total: int, weights: np.ndarray, n_out: int, n_draws: int, rng: np.random.Generator
) -> np.ndarray:
    """``(n_total + n_out, n_draws)`` draws with ``floor(n_total * w)`` units per arm and the
    few units left by rounding given, in each draw, to arms drawn in proportion to the
    fractional parts (Gumbel top-k). Each unit's chance of arm ``k`` is then
    ``n_total * w_k / (n_total + n_out)`` (exactly so with two arms), where fixed rounding
    would favour the first arm in every small stratum."""
    raw = n_total * weights
    floors = np.floor(raw).astype(np.int64)
    extra = n_total - int(floors.sum())
    marker = np.int8(127)
    base = np.concatenate([
        np.repeat(np.arange(weights.size, dtype=np.int8), floors),
        np.full(extra, marker, dtype=np.int8),
        np.full(n_out, OUT, dtype=np.int8),
    ])
    rows = rng.permuted(np.broadcast_to(base, (n_draws, base.size)), axis=1)  # one row per draw
    if extra:
        fraction = np.maximum(raw - floors, 1e-300)
        keys = np.log(fraction) - np.log(-np.log(rng.random((n_draws, weights.size))))
        chosen = np.argsort(-keys, axis=1)[:, :extra].astype(np.int8)
        rows[rows == marker] = chosen.ravel()  # row-major: each draw's slots in order
    return np.ascontiguousarray(rows.T)


def permuted_draws(labels: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """``(len(labels), n_draws)`` matrix whose columns are independent permutations."""
    tiled = np.broadcast_to(labels.astype(np.int8), (n_draws, labels.size))
    return np.ascontiguousarray(rng.permuted(tiled, axis=1).T)


def complete_draws(n: int, weights: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """Complete randomization: exactly ``exact_counts(n, weights)`` units in each arm."""
    base = np.repeat(np.arange(weights.size, dtype=np.int8), exact_counts(n, weights))
    return permuted_draws(base, n_draws, rng)
