"""The marketplace design study: seller randomization or seller clusters, and which
estimator, judged on simulated experiments with a known effect.

Buyers' potential outcomes follow the linear exposure-response model the marketplace
estimators are built for, fixed for the study: ``y_i = alpha_i + beta_i x_i``, ``x_i``
the treated share of buyer ``i``'s sellers, ``alpha_i`` a seller-level effect averaged
over the buyer's sellers (sd ``s_seller``) plus buyer noise (sd ``s_buyer``), and
``beta_i = tau + heterogeneity * N(0, 1)``. The estimand is the total effect, every
seller treated against none: ``mean(beta_i)``. Each design is drawn ``n_sims`` times;
each draw is analysed by

- ``erl``: the Exposure Reweighted Linear estimator and its design-based variance
  (:mod:`spillover.estimate.erl`), the one ``estimate --method erl`` runs;
- ``ols-bipartite``: the direct contrast (all of a buyer's sellers treated against none)
  by OLS on the ``bipartite`` mapping's conditions, the jackknife over randomization
  units (:func:`spillover.estimate.bipartite.seller_jackknife`);
- ``difference-in-means``: the same contrast with the Neyman error that treats buyers as
  independent: the baseline a marketplace team must not use.

Each row says the bias, the sd, the root mean square se over the sd, the coverage of the
interval and the power (share of draws rejecting no effect), with Monte Carlo errors.

Examples
--------
>>> from spillover import synth
>>> market = synth.marketplace(2_000, 200, categories=8, seed=1)
>>> study = marketplace_study(market, {"sellers": None, "8 seller clusters": 8}, n_sims=40, seed=2)
>>> sorted(set(study.table["design"]))
['8 seller clusters', 'sellers']
>>> study.table.columns.tolist()[:4]
['design', 'estimator', 'pure_buyers', 'truth']
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..design import BipartiteDesign
from ..errors import InputError, SpilloverWarning, TooManyPairsError
from ..estimate.bipartite import seller_jackknife
from ..estimate.erl import BYTES_PER_PAIR, ERLKernel, joint_probabilities
from ..exposure import MAX_DEPENDENT_PAIRS
from ..graph import BipartiteGraph
from ..marketplace import exposure_design, exposure_purity, link_shares, seller_clusters, unit_weights
from ..seeds import Seed, check_seed
from ..variance import t_quantile
from .ranking import recommend

__all__ = ["EXPOSURE_DESIGN", "MarketplaceStudy", "marketplace_study"]

ESTIMATORS = ("erl", "ols-bipartite", "difference-in-means")
CHUNK_DRAWS = 50  # draws analysed together (memory: buyers x this many floats per array)


@dataclass
class MarketplaceStudy:
    """The study's ``table`` (one row per design and estimator) and the true total effect.

    >>> study = MarketplaceStudy(pd.DataFrame([{"design": "sellers", "estimator": "erl", "coverage": 0.95,
    ...                                         "ci_width": 0.39, "rmse": 0.1, "sd": 0.1, "n_sims": 300,
    ...                                         "power": 0.8, "bias": 0.0}]), 0.5)
    >>> study.recommend()["estimator"], study.total_effect
    ('erl', 0.5)
    """

    table: pd.DataFrame
    total_effect: float

    def recommend(self) -> pd.Series:
        """The design and estimator to run, and why: the narrowest intervals among the rows
        without detectable bias whose coverage is within Monte Carlo error of 0.95 and not
        below 0.93 (:func:`~spillover.simulate.ranking.recommend`, the rule of every study).

        >>> MarketplaceStudy(pd.DataFrame([{"design": "sellers", "estimator": "erl", "coverage": 0.95, "se": 0.1,
        ...                                 "ci_width": 0.39, "rmse": 0.1, "sd": 0.1, "n_sims": 300, "power": 0.8,
        ...                                 "bias": 0.0}]), 0.5).recommend()["design"]
        'sellers'
        """
        return recommend(self.table, ["design", "estimator"], what="design and estimator").iloc[0]


def _row(estimates: np.ndarray, ses: np.ndarray, truth: float, alpha: float, df: float = np.inf) -> dict:
    n = estimates.size
    crit = float(t_quantile(df, 1 - alpha / 2))
    covered = np.abs(estimates - truth) <= crit * ses
    rejects = np.abs(estimates) > crit * ses
    sd = float(estimates.std(ddof=1))
    coverage = float(np.mean(covered))
    se = float(np.sqrt(np.nanmean(ses**2)))
    return {"truth": truth, "bias": float(estimates.mean() - truth), "bias_mc": sd / np.sqrt(n), "sd": sd, "se": se,
            "se/sd": se / sd if sd > 0 else np.nan, "rmse": float(np.sqrt(np.mean((estimates - truth) ** 2))),
            "coverage": coverage, "coverage_mc": float(np.sqrt(coverage * (1 - coverage) / n)),
            "ci_width": float(2 * crit * np.nanmean(ses)), "power": float(np.mean(rejects)), "n_sims": n}


def _conditions(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Direct (every seller treated) and control (none) masks of exposure shares."""
    return x >= 1 - 1e-12, x <= 1e-12


EXPOSURE_DESIGN = "exposure-design"  # a design of the study: Exposure-Design's seller clusters


def _seller_labels(graph: BipartiteGraph, spec: int | str | None, rng: np.random.Generator) -> pd.Series | None:
    """A study design's seller clusters: none (sellers one by one), ``spec`` METIS parts,
    or Exposure-Design's (:data:`EXPOSURE_DESIGN`)."""
    if spec is None:
        return None
    if spec == EXPOSURE_DESIGN:
        return exposure_design(graph, seed=rng.integers(2**31))
    if isinstance(spec, str):
        raise InputError(f"marketplace study: unknown design {spec!r}; give a number of seller clusters, None or "
                         f"{EXPOSURE_DESIGN!r}.")
    return seller_clusters(graph, int(spec), seed=rng.integers(2**31))


def marketplace_study(graph: BipartiteGraph, designs: dict[str, int | str | None], *, n_sims: int = 500,
                      tau: float = 0.5, heterogeneity: float = 0.5, s_seller: float = 0.5, s_buyer: float = 1.0,
                      treat_fraction: float = 0.5, alpha: float = 0.05, seed: Seed = 0,
                      progress: Callable[[int], None] | None = None,
                      max_pairs: int | None = MAX_DEPENDENT_PAIRS) -> MarketplaceStudy:
    """Compare seller designs (``designs``: name -> number of seller clusters, from
    :func:`~spillover.marketplace.seller_clusters`; ``None`` for sellers randomized one by
    one; ``"exposure-design"`` for :func:`~spillover.marketplace.exposure_design`'s clusters,
    their number added to the name)
    by the estimators above on ``n_sims`` draws each, under the model above.
    ``progress(k)`` is called as draws are analysed. A design under which ERL's variance
    would sum over more than ``max_pairs`` buyer pairs (large seller clusters on a large
    market) keeps its other rows, with a warning that says so.

    >>> from spillover import synth
    >>> market = synth.marketplace(1_000, 100, seed=1)
    >>> study = marketplace_study(market, {"sellers": None}, n_sims=20, seed=2)
    >>> study.table["estimator"].tolist()
    ['erl', 'ols-bipartite', 'difference-in-means']
    """
    if not isinstance(graph, BipartiteGraph):
        raise InputError("the marketplace study runs on a bipartite graph (buyers x sellers).")
    if n_sims < 2:
        raise InputError(f"n_sims={n_sims}: a study needs at least 2 draws.")
    rng = check_seed(seed)
    linked = graph.unit_degrees() > 0
    shares = link_shares(graph)
    seller_level = rng.normal(0.0, s_seller, size=graph.n_treated_side)
    alpha_ = shares @ seller_level + rng.normal(0.0, s_buyer, size=graph.n_units)
    beta = tau + heterogeneity * rng.normal(size=graph.n_units)
    alpha_, beta, shares = alpha_[linked], beta[linked], sp.csr_array(shares[linked])
    total = float(beta.mean())
    rows = []
    for name, spec in designs.items():
        labels = _seller_labels(graph, spec, rng)
        if isinstance(spec, str):
            name = f"{name} ({labels.nunique()} clusters)"
        design = BipartiteDesign(graph, treat_fraction=treat_fraction,
                                 clusters=None if labels is None else labels.to_numpy())
        randomization = design.randomization()
        weights = unit_weights(graph, randomization.blocks)[linked]
        try:
            kernel = ERLKernel.build(weights, joint_probabilities(randomization), max_pairs=max_pairs)
        except TooManyPairsError as error:
            kernel = None
            warnings.warn(f"design '{name}': ERL left out: {error.n_pairs:,} buyer pairs share a randomization unit, "
                          f"above max_pairs={error.max_pairs:,} (--max-pairs raises it, with the memory: about "
                          f"{BYTES_PER_PAIR} bytes a pair).", SpilloverWarning, stacklevel=2)
        purity = exposure_purity(graph, randomization.blocks)
        results = {e: ([], []) for e in ESTIMATORS}
        g = int(np.unique(weights.indices).size)  # the randomization units the buyers touch
        draws_done = 0
        while draws_done < n_sims:
            k = min(CHUNK_DRAWS, n_sims - draws_done)
            z = (design.draw(k, seed=rng.integers(2**31)) >= 1).astype(float)
            x = shares @ z
            y = alpha_[:, None] + beta[:, None] * x
            if kernel is not None:
                centred = kernel.centre(y)
                results["erl"][0].extend(kernel.estimate(centred, x))
                results["erl"][1].extend(np.sqrt(np.maximum(kernel.variance(centred, x), 0.0)))
            for d in range(k):
                direct, control = _conditions(x[:, d])
                yd = y[:, d]
                if direct.sum() < 2 or control.sum() < 2:
                    continue
                results["difference-in-means"][0].append(yd[direct].mean() - yd[control].mean())
                results["difference-in-means"][1].append(np.sqrt(yd[direct].var(ddof=1) / direct.sum()
                                                                 + yd[control].var(ddof=1) / control.sum()))
                indirect = ~direct & ~control
                design_matrix = np.column_stack([np.ones(yd.size), direct, indirect]).astype(float)
                estimate, variance, _ = seller_jackknife(design_matrix, yd, weights, np.array([[0.0, 1.0, 0.0]]))  # links: non-zero weights
                results["ols-bipartite"][0].append(float(estimate[0]))
                results["ols-bipartite"][1].append(float(np.sqrt(variance[0])))
            draws_done += k
            if progress is not None:
                progress(k)
        for estimator, (estimates, ses) in results.items():
            if len(estimates) < 2:
                continue
            df = g - 1 if estimator != "difference-in-means" else np.inf
            rows.append({"design": name, "estimator": estimator, "pure_buyers": purity["pure_buyers"],
                         **_row(np.array(estimates), np.array(ses), total, alpha, df)})
    return MarketplaceStudy(pd.DataFrame(rows), total)
