"""Pictures of results, drawn on a matplotlib ``Axes``: the ``.plot()`` of
:class:`~spillover.estimate.Effects`, :class:`~spillover.simulate.Comparison` and
:class:`~spillover.clustering.Clustering`, :func:`plot_exposure` for an exposure table,
and the HTML report's figures (:mod:`spillover.report` draws with the same functions).

With no ``ax`` a function draws on a new pyplot figure (shown inline in a notebook) and
returns its axes, as pandas' ``.plot()`` does; the report passes axes of figures made
outside pyplot. Nothing here computes statistics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["DESIGN_COLOURS", "PALETTE", "draw_cluster_sizes", "draw_conditions", "draw_effects", "draw_estimates",
           "plot_exposure"]

PALETTE = {"covered": "#2b8cbe", "missed": "#e34a33", "truth": "#111111"}
DESIGN_COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]


def _axes(ax: "Axes | None", figsize: tuple[float, float]) -> "Axes":
    """``ax``, or the axes of a new pyplot figure of ``figsize``."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)[1]


def draw_effects(effects: Any, ax: "Axes | None" = None) -> "Axes":
    """Each contrast's estimate and interval (at the analysis's level) against zero, one
    row per contrast, labelled with its estimand, condition and n.

    Examples
    --------
    >>> import pandas as pd
    >>> from matplotlib.figure import Figure
    >>> from spillover.estimate import estimate
    >>> exposure = pd.DataFrame({"unit_id": range(10), "condition": ["treated", "control"] * 5})
    >>> outcomes = pd.DataFrame({"unit_id": range(10), "y": [3.0, 1.0, 2.5, 1.5, 3.5, 0.5, 2.0, 1.0, 3.0, 1.0]})
    >>> ax = draw_effects(estimate(outcomes, exposure, "difference-in-means"), Figure().subplots())
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['direct (ignoring interference): treated (n=10)']
    """
    rows = list(effects.effects)
    ax = _axes(ax, (7.0, 0.55 * len(rows) + 1.4))
    y = np.arange(len(rows))[::-1]
    for row, effect in zip(y, rows):  # display only: one line per contrast
        ax.plot([effect.ci_low, effect.ci_high], [row, row], color=PALETTE["covered"], linewidth=2.2)
        ax.plot([effect.estimate], [row], marker="o", color=PALETTE["truth"])
    ax.axvline(0, color=PALETTE["truth"], linewidth=1, linestyle="--")
    ax.set_yticks(y)
    ax.set_yticklabels([f"{e.estimand}: {e.condition} (n={e.n_units:,})" for e in rows], fontsize=8)
    ax.set_xlabel(f"effect against '{effects.control}' ({effects.level} interval)")
    return ax


def draw_estimates(comparison: Any, ax: "Axes | None" = None) -> "Axes":
    """Histogram of each design's estimates over the simulated experiments, the true
    effect dashed.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from spillover import synth
    >>> from spillover.simulate import Study, compare_designs
    >>> comparison = compare_designs(Study.from_network(synth.collaboration_network(1_000, seed=1)), ["component"],
    ...                              n_sims=30, seed=1)
    >>> draw_estimates(comparison, Figure().subplots()).get_xlabel()
    'estimated effect'
    """
    ax = _axes(ax, (7.5, 3.6))
    everything = np.concatenate([r.estimates for r in comparison.results])
    bins = np.linspace(np.quantile(everything, 0.002), np.quantile(everything, 0.998), 60)
    for colour, result in zip(DESIGN_COLOURS, comparison.results):
        ax.hist(result.estimates, bins=bins, histtype="step", linewidth=1.6, color=colour, label=result.design,
                density=True)
    ax.axvline(comparison.true_effect, color=PALETTE["truth"], linestyle="--", label="true effect (GATE)")
    ax.set_xlabel("estimated effect")
    ax.set_ylabel("density")
    ax.legend(frameon=False, fontsize=8)
    return ax


def draw_conditions(counts: pd.Series, title: str = "", ax: "Axes | None" = None) -> "Axes":
    """Units per exposure condition as horizontal bars.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> ax = draw_conditions(pd.Series({"direct": 40, "control": 35}), "buyers", Figure().subplots())
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['direct', 'control']
    """
    ax = _axes(ax, (5.5, 2.8))
    ax.barh(counts.index.astype(str), counts.to_numpy(), color=DESIGN_COLOURS[2])
    ax.set_xlabel("units")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def draw_cluster_sizes(sizes: dict[str, np.ndarray], ax: "Axes | None" = None) -> "Axes":
    """Per clustering method, how many clusters have each size (log-spaced bins, log
    counts): heavy tails are what make cluster designs lose power.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> ax = draw_cluster_sizes({"louvain": np.array([3, 40, 12, 7])}, Figure().subplots())
    >>> ax.get_xscale()
    'log'
    """
    ax = _axes(ax, (7.5, 3.4))
    largest = max(int(s.max()) for s in sizes.values())
    bins = np.unique(np.geomspace(1, largest + 1, 30).astype(int))
    for colour, (method, values) in zip(DESIGN_COLOURS, sizes.items()):
        ax.hist(values, bins=bins, histtype="step", linewidth=1.5, color=colour, label=method)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("cluster size (units)")
    ax.set_ylabel("clusters")
    ax.legend(frameon=False, fontsize=8, ncols=2)
    return ax


def plot_exposure(table: pd.DataFrame, ax: "Axes | None" = None) -> "Axes":
    """An exposure table's distribution (:func:`spillover.exposure.exposure`'s output):
    units per condition, in the mapping's order.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> table = pd.DataFrame({"unit_id": range(4), "condition": pd.Categorical(["c", "t", "t", "c"])})
    >>> [t.get_text() for t in plot_exposure(table, Figure().subplots()).get_yticklabels()]
    ['c', 't']
    """
    counts = table["condition"].value_counts(sort=False)
    if isinstance(table["condition"].dtype, pd.CategoricalDtype):
        counts = counts.reindex(table["condition"].cat.categories, fill_value=0)
    mapping = (table.attrs.get("spillover.mapping") or {}).get("name")  # the mapping the table was made with
    return draw_conditions(counts, f"units per exposure condition{f' ({mapping})' if mapping else ''}", ax)
