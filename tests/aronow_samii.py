"""Aronow & Samii (2017) by the book: a dense, loop-by-loop transcription used as the
reference for the vectorised Horvitz-Thompson and Hajek code."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spillover.exposure import exposure


def aronow_samii(graph, draws, obs, y, k: str, l: str, add_one: bool, hajek: bool, hops: int = 1):
    """Aronow-Samii (2017) transcribed with plain loops over a dense joint-probability
    table built from every draw given (all pairs, the reference package's convention): an
    independent check of the vectorised code. Returns ``(estimate, se)``."""
    N = len(graph.nodes)
    conds = [exposure(graph, pd.Series(draws[:, r], index=graph.nodes), "as4", hops=hops)["condition"].astype(str).to_numpy()
             for r in range(draws.shape[1])]
    R = len(conds)
    D = np.array(conds)  # (R, N)
    observed = exposure(graph, pd.Series(obs, index=graph.nodes), "as4", hops=hops)["condition"].astype(str).to_numpy()

    def pi(i, a):
        count = np.sum(D[:, i] == a)
        return (count + 1) / (R + 1) if add_one else count / R

    def pij(i, j, a, b):
        if i == j:
            return pi(i, a) if a == b else 0.0
        count = np.sum((D[:, i] == a) & (D[:, j] == b))
        if add_one:
            return count / (R + 1) if a == b else count / R
        return count / R

    I = {a: (observed == a).astype(float) for a in (k, l)}
    if hajek:
        mu = {a: sum(I[a][i] * y[i] / pi(i, a) for i in range(N)) / sum(I[a][i] / pi(i, a) for i in range(N))
              for a in (k, l)}
        target = np.array([y[i] - mu[k] if observed[i] == k else (y[i] - mu[l] if observed[i] == l else 0.0)
                           for i in range(N)])
        est = mu[k] - mu[l]
    else:
        target = y
        est = sum(I[k][i] * y[i] / pi(i, k) - I[l][i] * y[i] / pi(i, l) for i in range(N)) / N

    def var(a):
        total = 0.0
        for i in range(N):
            for j in range(N):
                p = pij(i, j, a, a)
                if p > 0:
                    total += I[a][i] * I[a][j] * (p - pi(i, a) * pi(j, a)) / p * target[i] * target[j] / (pi(i, a) * pi(j, a))
                elif i != j:
                    total += I[a][i] * target[i] ** 2 / (2 * pi(i, a)) + I[a][j] * target[j] ** 2 / (2 * pi(j, a))
        return total

    cov = 0.0
    for i in range(N):
        for j in range(N):
            p = pij(i, j, k, l)
            if p > 0:
                cov += I[k][i] * I[l][j] * (p - pi(i, k) * pi(j, l)) / p * target[i] * target[j] / (pi(i, k) * pi(j, l))
            else:
                cov -= I[k][i] * target[i] ** 2 / (2 * pi(i, k)) + I[l][j] * target[j] ** 2 / (2 * pi(j, l))
    return est, np.sqrt((var(k) + var(l) - 2 * cov) / N**2)
