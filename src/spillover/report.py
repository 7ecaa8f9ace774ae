"""Plots and a self-contained HTML report (plots embedded as PNG), plus the same tables in
the terminal. Holds no statistics of its own: it draws what the other stages computed."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # no pyplot: importing this module leaves the user's backend alone

from .display import table_html
from .plots import DESIGN_COLOURS, PALETTE, draw_cluster_sizes, draw_conditions, draw_estimates
from .simulate import Comparison

__all__ = ["Section", "plot_bias_against_m", "plot_cluster_sizes", "plot_cluster_tradeoff", "plot_conditions",
           "plot_effect_by_day", "plot_estimator_comparison", "plot_effect_distributions", "plot_sorted_intervals", "render_html", "write_report"]



# --------------------------------------------------------------------------- plots


def _subplots(figsize: tuple[float, float], ncols: int = 1, **options):
    """A figure outside pyplot's state (nothing to close, no backend to set) and its axes."""
    figure = Figure(figsize=figsize)
    return figure, figure.subplots(1, ncols, **options)


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plot_sorted_intervals(comparison: Comparison, max_intervals: int = 200) -> str:
    """Per design, its experiments' 95% intervals sorted by estimate, blue when they
    cover the true effect and red when they miss it.

    Examples
    --------
    >>> from spillover import synth
    >>> from spillover.simulate import Study, compare_designs
    >>> comparison = compare_designs(Study.from_network(synth.collaboration_network(1_000, seed=1)), ["component"],
    ...                              n_sims=30, seed=1)
    >>> png = plot_sorted_intervals(comparison)
    >>> png.startswith("iVBOR")                                      # a base64 PNG
    True
    """
    results = comparison.results
    figure, axes = _subplots((4.2 * len(results), 3.6), len(results), sharey=True, squeeze=False)
    for ax, result in zip(axes[0], results):
        step = max(1, result.estimates.size // max_intervals)
        order = np.argsort(result.estimates)[::step]
        covered = (result.ci_low[order] <= comparison.true_effect) & (comparison.true_effect <= result.ci_high[order])
        x = np.arange(order.size)
        for mask, colour in ((covered, PALETTE["covered"]), (~covered, PALETTE["missed"])):
            ax.vlines(x[mask], result.ci_low[order][mask], result.ci_high[order][mask], colors=colour, linewidth=1)
        ax.axhline(comparison.true_effect, color=PALETTE["truth"], linewidth=1.2, linestyle="--")
        ax.set_title(f"{result.design}\ncoverage {result.to_dict()['coverage']:.1%}", fontsize=10)
        ax.set_xlabel("experiments, sorted by estimate")
    axes[0][0].set_ylabel("95% interval")
    return _png(figure)


def plot_effect_distributions(comparison: Comparison) -> str:
    """Histogram of each design's estimates with the true effect marked.

    Examples
    --------
    >>> from spillover import synth
    >>> from spillover.simulate import Study, compare_designs
    >>> comparison = compare_designs(Study.from_network(synth.collaboration_network(1_000, seed=1)), ["component"],
    ...                              n_sims=30, seed=1)
    >>> png = plot_effect_distributions(comparison)
    >>> png.startswith("iVBOR")                                      # a base64 PNG
    True
    """
    figure, ax = _subplots((7.5, 3.6))
    draw_estimates(comparison, ax)
    return _png(figure)


def plot_bias_against_m(sweep: pd.DataFrame) -> str:
    """Bias of each design against m (spillover gamma = 2^-m), with Monte Carlo 95% bars.

    Examples
    --------
    >>> import pandas as pd
    >>> sweep = pd.DataFrame({"design": "project", "m": [1, 2, 3], "bias": [-0.1, -0.05, -0.02], "sd": 0.1,
    ...                       "n_sims": 100})
    >>> png = plot_bias_against_m(sweep)
    >>> png.startswith("iVBOR")                                      # a base64 PNG
    True
    """
    figure, ax = _subplots((7.5, 3.4))
    for colour, (design, rows) in zip(DESIGN_COLOURS, sweep.groupby("design", sort=False)):
        half = 1.96 * rows["sd"] / np.sqrt(rows["n_sims"])
        ax.errorbar(rows["m"], rows["bias"], yerr=half, marker="o", capsize=3, color=colour, label=design)
    ax.axhline(0, color=PALETTE["truth"], linewidth=1)
    ax.set_xlabel("m  (spillover gamma = 2^-m)")
    ax.set_ylabel("bias of the estimate")
    ax.legend(frameon=False, fontsize=8)
    return _png(figure)


def plot_estimator_comparison(table: pd.DataFrame) -> str:
    """Each estimator's bias with a bar of +- one sd (its error in one experiment), and its
    interval coverage in the label: the estimator comparison at a glance.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"estimator": ["difference in means", "regression adjustment"],
    ...                       "design": ["individual", "individual"], "bias": [-0.5, 0.01], "sd": [0.05, 0.13],
    ...                       "coverage": [0.0, 0.94]})
    >>> plot_estimator_comparison(table).startswith("iVBOR")          # a base64 PNG
    True
    """
    rows = table.reset_index(drop=True)
    figure, ax = _subplots((7.5, 0.5 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    for index, row in rows.iterrows():  # display only: one bar per estimator
        colour = DESIGN_COLOURS[index % len(DESIGN_COLOURS)]
        ax.errorbar([row["bias"]], [y[index]], xerr=[[row["sd"]], [row["sd"]]], marker="o", capsize=3, color=colour)
    ax.axvline(0, color=PALETTE["truth"], linewidth=1)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{r['estimator']} ({r['design']}), coverage {r['coverage']:.0%}" for _, r in rows.iterrows()],
                       fontsize=8)
    ax.set_xlabel("bias (dot) +- sd of the estimate (bar); truth at 0")
    return _png(figure)


def plot_cluster_tradeoff(trade_off: pd.DataFrame) -> str:
    """Cut fraction against effective sample size over a resolution sweep.

    Examples
    --------
    >>> import pandas as pd
    >>> trade_off = pd.DataFrame({"resolution": [1.0, 4.0], "effective_sample_size": [900.0, 1500.0],
    ...                           "cut_fraction": [0.05, 0.12]})
    >>> png = plot_cluster_tradeoff(trade_off)
    >>> png.startswith("iVBOR")                                      # a base64 PNG
    True
    """
    figure, ax = _subplots((6.5, 3.4))
    ax.plot(trade_off["effective_sample_size"], trade_off["cut_fraction"], color="#999999", linewidth=1, zorder=1)
    knob = "resolution" if "resolution" in trade_off else "n_parts"
    points = trade_off[["effective_sample_size", "cut_fraction", knob]].to_numpy()
    markers = "osD^vP*X"
    for index, (x, y, value) in enumerate(points):  # display only: a handful of points
        # a legend entry per setting: labels never collide, however close the points
        ax.scatter([x], [y], s=42, zorder=2, marker=markers[index % len(markers)],
                   color=DESIGN_COLOURS[index % len(DESIGN_COLOURS)], label=f"{knob} {value:g}")
    ax.set_xlabel("effective sample size (design effect at the ICC)")
    ax.set_ylabel("share of edges cut")
    ax.set_ylim(bottom=0, top=max(points[:, 1].max() * 1.25, 0.05))
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    return _png(figure)


def plot_cluster_sizes(sizes: dict[str, np.ndarray]) -> str:
    """Per clustering method, how many clusters have each size (log-spaced bins, log
    counts): heavy tails are what make cluster designs lose power.

    Examples
    --------
    >>> import numpy as np
    >>> png = plot_cluster_sizes({"louvain": np.array([3, 40, 12, 7]), "components": np.array([60, 2])})
    >>> png.startswith("iVBOR")                                      # a base64 PNG
    True
    """
    figure, ax = _subplots((7.5, 3.4))
    draw_cluster_sizes(sizes, ax)
    return _png(figure)


def plot_effect_by_day(table: pd.DataFrame, level: str = "95%") -> str:
    """The estimate and its interval on each day (``date, estimate, ci_low, ci_high``),
    with the zero line, and the always-valid band where the table has one (``pooled,
    band_low, band_high``): how the evidence accumulates over an experiment; ``level``
    names the intervals' coverage (the analysis's ``1 - alpha``).

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"date": ["2026-11-23", "2026-11-24"], "estimate": [0.2, 0.25],
    ...                       "ci_low": [-0.1, 0.05], "ci_high": [0.5, 0.45]})
    >>> plot_effect_by_day(table).startswith("iVBOR")
    True
    """
    figure, ax = _subplots((7.5, 3.4))
    data = table.dropna(subset=["estimate"])
    x = pd.to_datetime(data["date"])
    ax.fill_between(x, data["ci_low"], data["ci_high"], color=PALETTE["covered"], alpha=0.25, label=f"{level} interval")
    ax.plot(x, data["estimate"], marker="o", color=PALETTE["covered"], label="estimate")
    if "band_low" in data and data["band_low"].notna().any():  # the always-valid band (sequential rule)
        band = data.dropna(subset=["band_low"])
        when = pd.to_datetime(band["date"])
        ax.plot(when, band["band_low"], color=PALETTE["truth"], linestyle="--", label=f"always-valid {level} band")
        ax.plot(when, band["band_high"], color=PALETTE["truth"], linestyle="--")
        ax.plot(when, band["pooled"], color=PALETTE["truth"], marker=".", linewidth=1, label="pooled estimate")
    ax.axhline(0, color=PALETTE["truth"], linewidth=1)
    ax.set_ylabel("effect")
    ax.legend(frameon=False, fontsize=8)
    figure.autofmt_xdate()
    return _png(figure)


def plot_conditions(counts: pd.Series, title: str) -> str:
    """Bar chart of units per exposure condition (a base64 PNG).

    Examples
    --------
    >>> import pandas as pd
    >>> png = plot_conditions(pd.Series({"direct": 40, "indirect": 25, "control": 35}), "buyer exposure")
    >>> png.startswith("iVBOR")                                      # a base64 PNG
    True
    """
    figure, ax = _subplots((5.5, 2.8))
    draw_conditions(counts, title, ax)
    return _png(figure)


# --------------------------------------------------------------------------- HTML


@dataclass
class Section:
    """One section of the HTML report: a title, a paragraph, captioned tables and images.

    Examples
    --------
    >>> import pandas as pd
    >>> section = Section("Effects", "Against control.", [("per contrast", pd.DataFrame({"estimate": [0.2]}))])
    >>> "<h2>Effects</h2>" in render_html("Report", "lede", [section])
    True
    """
    title: str
    text: str = ""
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)  # (caption, base64 png)


STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2rem auto; max-width: 1180px;
       color: #222; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; } h2 { margin-top: 2.4rem; border-bottom: 1px solid #ddd; padding-bottom: .3rem; }
p.lede { color: #555; margin-top: 0; } .caption { color: #555; font-size: .9rem; margin: .2rem 0 1rem; }
table { border-collapse: collapse; font-size: .86rem; margin: .6rem 0 1.2rem; }
th, td { padding: .28rem .6rem; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f6f6f6; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: .4rem 0; }
"""


def escape_text(text: str) -> str:
    """``text`` safe inside a section's HTML paragraph.

    Examples
    --------
    >>> escape_text("a < b")
    'a &lt; b'
    """
    return html.escape(text)


def render_html(title: str, lede: str, sections: list[Section]) -> str:
    """A self-contained HTML page (plots embedded, nothing fetched) of ``sections``.

    Examples
    --------
    >>> render_html("Report", "A lede.", []).startswith("<!doctype html>")
    True
    """
    body = [f"<h1>{html.escape(title)}</h1><p class='lede'>{lede}</p>"]
    for section in sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.text:
            body.append(f"<p>{section.text}</p>")
        for caption, frame in section.tables:
            body.append(f"<div class='caption'>{html.escape(caption)}</div>{table_html(frame)}")
        for caption, png in section.images:
            body.append(f"<img alt='{html.escape(caption)}' src='data:image/png;base64,{png}'>"
                        f"<div class='caption'>{html.escape(caption)}</div>")
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>{''.join(body)}</body></html>")


def write_report(path: Path, title: str, lede: str, sections: list[Section]) -> Path:
    """Write :func:`render_html`'s page to ``path`` (folders created); returns the path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = write_report(pathlib.Path(folder) / "report.html", "Report", "A lede.", [])
    ...     path.read_text().endswith("</html>")
    True
    """
    from .io import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:  # a reader sees the old report or the whole new one
        tmp.write_text(render_html(title, lede, sections), encoding="utf-8")
    return path
