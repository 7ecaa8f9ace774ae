"""Results display where people read them: in a notebook (rendered through IPython's own
display formatter, what Jupyter calls) as HTML tables that carry the numbers, and as
pictures through ``.plot()``."""

from __future__ import annotations

import warnings
from html.parser import HTMLParser

import matplotlib
import numpy as np
import pandas as pd
import pytest
from IPython.core.formatters import DisplayFormatter

from spillover import synth
from spillover.clustering import cluster
from spillover.design import ClusterDesign
from spillover.estimate import estimate
from spillover.exposure import exposure
from spillover.plots import plot_exposure
from spillover.simulate import Study, compare_designs

matplotlib.use("Agg")


class Cells(HTMLParser):
    """The text of every table cell and header, and whether tags balance."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self.open: list[str] = []
        self._cell = False

    def handle_starttag(self, tag, attrs):
        self.open.append(tag)
        if tag in ("td", "th"):
            self._cell = True
            self.cells.append("")

    def handle_endtag(self, tag):
        assert self.open and self.open.pop() == tag, f"unbalanced </{tag}>"
        self._cell = self._cell and tag not in ("td", "th")

    def handle_data(self, data):
        if self._cell:
            self.cells[-1] += data


def rendered(obj) -> Cells:
    """What Jupyter shows for ``obj``: IPython's HTML rendering, parsed."""
    data, _ = DisplayFormatter().format(obj)
    assert "text/html" in data, f"{type(obj).__name__} has no HTML display"
    parser = Cells()
    parser.feed(data["text/html"])
    assert not parser.open, f"unclosed tags {parser.open}"
    return parser


@pytest.fixture(scope="module")
def analysis():
    graph = synth.social_graph(2_000, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clustering = cluster(graph, "louvain", seed=1)
    assignment = ClusterDesign(clustering.labels, graph.nodes).assign(seed=2)
    table = exposure(graph, assignment, "fraction")
    z = (assignment.arms == 1).astype(float)
    y = np.random.default_rng(4).normal(size=graph.n_nodes) + 0.5 * z
    effects = estimate(pd.DataFrame({"unit_id": graph.nodes, "y": y}), table, method="ols-cluster")
    return clustering, assignment, table, effects


def test_effects_render_as_a_table_with_their_numbers_level_and_method(analysis):
    *_, effects = analysis
    cells = rendered(effects).cells
    effect = effects.effects[0]
    assert "estimate" in cells and f"ci_low ({effects.level})" in cells
    assert f"{effect.estimate:,.4g}" in cells and f"{effect.ci_high:,.4g}" in cells
    assert f"{effect.n_units:,}" in cells
    data, _ = DisplayFormatter().format(effects)
    assert effect.method in data["text/html"]  # the variance method is named under the table


def test_other_results_render_in_a_notebook(analysis):
    clustering, assignment, *_ = analysis
    assert f"{clustering.n_clusters:,}" in rendered(clustering).cells
    counts = assignment.counts()
    assert all(f"{n:,}" in rendered(assignment).cells for n in counts.values())
    comparison = compare_designs(Study.from_network(synth.collaboration_network(1_000, seed=1)),
                                 ["component", "project"], n_sims=40, seed=1)
    cells = rendered(comparison).cells
    assert {"component", "project"} <= set(cells)
    data, _ = DisplayFormatter().format(comparison)
    assert "recommended: " + comparison.recommend()["design"].iloc[0] in data["text/html"]


def test_plots_draw_what_the_results_hold(analysis):
    clustering, _, table, effects = analysis
    ax = effects.plot()
    lines = [line for line in ax.get_lines() if len(line.get_xdata()) == 2]
    effect = effects.effects[0]
    assert np.allclose(lines[0].get_xdata(), [effect.ci_low, effect.ci_high])  # the interval as drawn
    assert "95% interval" in ax.get_xlabel()
    bars = plot_exposure(table).patches
    assert sum(bar.get_width() for bar in bars) == len(table)  # every unit in one bar
    sizes = clustering.plot().patches
    assert sizes  # one histogram of cluster sizes
    comparison = compare_designs(Study.from_network(synth.collaboration_network(1_000, seed=1)), ["component"],
                                 n_sims=30, seed=1)
    ax = comparison.plot()
    assert ax.get_lines()[0].get_xdata()[0] == pytest.approx(comparison.true_effect)  # the truth, dashed
    import matplotlib.pyplot as plt

    plt.close("all")
