"""The calibration study's quick grid (validation/calibration.py): the intervals the
default paths print cover at least as promised, up to Monte Carlo error.

With n experiments, a coverage near 0.95 has Monte Carlo sd sqrt(.95 * .05 / n) (0.0097
at n = 500); a cell fails below 0.95 minus 3 of them. Cells documented in
docs/inference.md as under-covering (too few units in a condition, positivity
violations without trimming, t intervals with few clusters) are the reason the defaults
are what they are; they are reported, not asserted.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from spillover.design import IndividualDesign
from spillover.estimate import estimate
from validation.calibration import run, scenarios

N_SIMS = 500
FLOOR = 0.95 - 3 * np.sqrt(0.95 * 0.05 / N_SIMS)

DOCUMENTED = (
    ("Bernoulli units (50%)", "hajek (exact)", None),  # extreme weights at p = 0.5: 0.83-0.90 with the bound alone
    ("Bernoulli units (50%)", "ht (exact)", None),
    ("Bernoulli units (50%)", "hajek (monte carlo)", None),
    ("Bernoulli units (50%)", "ht (monte carlo)", None),
    ("Bernoulli units (50%)", "hajek (draws)", None),
    ("Bernoulli units (50%)", "ht (draws)", None),
    ("Bernoulli units (50%)", "hajek (exact, p >= 0.01)", None),
    ("complete units (30%)", "hajek (draws)", "ind1"),  # 0.928-0.930 over 1,000 runs: just below
    (None, "hajek (exact)", "isol_dir"),             # positivity without trimming
    (None, "ht (exact)", "isol_dir"),
    (None, "hajek (exact, simulated)", "isol_dir"),  # the same positivity failure: a variance cannot fix it
    (None, "ht (exact, simulated)", "isol_dir"),
    ("cluster", "ols-cluster CR1, t", None),         # t intervals with few clusters
    ("cluster", "ols-cluster CR2, t", None),
)


def documented(row) -> bool:
    return any((design is None or row.design.startswith(design)) and (estimator is None or row.estimator == estimator)
               and (condition is None or row.condition == condition) for design, estimator, condition in DOCUMENTED)


def grid(cells, n_sims: int) -> pd.DataFrame:
    """Every cell of a grid run ``n_sims`` times, warnings (the point of some cells) quiet."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.concat([run(s, n_sims) for s in cells], ignore_index=True)


@pytest.fixture(scope="module")
def table():
    return grid(scenarios(quick=True), N_SIMS)


@pytest.mark.slow
def test_every_default_path_covers_at_least_as_promised(table):
    checked = table[~table.apply(documented, axis=1)]
    assert len(checked) >= 15
    low = checked[checked["coverage"] < FLOOR]
    assert low.empty, low[["design", "estimator", "condition", "coverage"]].to_string()


@pytest.mark.slow
def test_the_design_simulation_brings_hajek_at_half_treated_to_its_level(table):
    """Bernoulli(0.5): the Aronow-Samii bound alone under-covers (documented above); the
    command line's default (the larger of it and the design simulation's error) covers."""
    cells = table[(table["design"] == "Bernoulli units (50%)") & table["estimator"].str.endswith("simulated)")]
    assert len(cells) == 6
    assert (cells["coverage"] >= FLOOR).all(), cells[["estimator", "condition", "coverage"]].to_string()


@pytest.mark.slow
def test_few_clusters_defaults_use_the_bootstrap_and_cover(table):
    few = table[table["design"].str.contains("few") & (table["estimator"] == "ols-cluster (defaults)")]
    assert len(few) == 1 and few["coverage"].iloc[0] >= FLOOR


@pytest.mark.slow
def test_trimming_restores_coverage_where_positivity_fails(table):
    cluster = table[table["design"].str.startswith("cluster") & (table["condition"] == "isol_dir")]
    trimmed = cluster[cluster["estimator"].str.contains("p >= 0.01")]
    assert len(trimmed) == 1 and trimmed["coverage"].iloc[0] >= FLOOR


NX_SIMS = 300


@pytest.fixture(scope="module")
def nx_table():
    from validation.calibration import networkx_scenarios

    return grid(networkx_scenarios(quick=True), NX_SIMS)


@pytest.mark.slow
def test_default_paths_cover_on_graphs_we_did_not_generate(nx_table):
    """Issue 25, point 7: networkx's Watts-Strogatz graph at a treated share of one half
    and its 40 x 25 block model under cluster randomization, analysed by the command
    line's defaults. Each printed cell's floor is 0.95 less 3 Monte Carlo sd at its own
    number of intervals."""
    printed = nx_table[nx_table["n"] > 0]
    assert len(printed) >= 5
    floor = 0.95 - 3 * np.sqrt(0.95 * 0.05 / printed["n"])
    low = printed[printed["coverage"] < floor]
    assert low.empty, low[["design", "estimator", "condition", "n", "coverage"]].to_string()


@pytest.mark.slow
def test_hajek_under_forty_clusters_by_default_is_tight_and_covers(nx_table):
    """Issue 25, point 1: by default (the block bound, residuals widened by G / (G - 1)
    and t(G - 1), the design simulation), Hajek's mean standard error under the
    40-cluster design is at most 1.3x the estimator's true sd (1.0x measured; 1.4-1.5x
    with the pair bound) and it covers at least 0.93. The blocks bind on the total
    effect (dir_ind1: 0.99 against 1.36 with pairs, 300 experiments); on ind1 they do not,
    and the widening leaves the default within 2% of the pairs' 1.00."""
    cells = nx_table[nx_table["design"].str.startswith("nx block model")].set_index(["estimator", "condition"])
    default = cells.loc["hajek (exact, simulated)"]
    assert len(default) == 2
    assert (default["se_sd"] <= 1.3).all() and (default["coverage"] >= 0.93).all(), default.to_string()
    pairs = cells.loc["hajek (exact, simulated, pairs)", "se_sd"]
    assert pairs["dir_ind1"] > 1.2 * default["se_sd"]["dir_ind1"], (pairs, default)
    assert (default["se_sd"] <= 1.02 * pairs + 1e-12).all(), (pairs, default)


@pytest.mark.slow
def test_designs_no_estimate_can_serve_are_refused_with_the_alternative(nx_table):
    """A dense graph (mean degree 40) at a treated share of one half, the karate club and
    the Davis graph: every experiment refused, never an interval that cannot hold; the
    refusal names what to do instead."""
    import networkx as nx

    from spillover import SocialGraph, SpilloverError
    from spillover.exposure import exposure, probabilities

    refused = nx_table[nx_table["design"].str.contains("powerlaw|karate|Davis")]
    assert len(refused) == 3 and (refused["n"] == 0).all() and (refused["refused"] == NX_SIMS).all()
    karate = SocialGraph.from_edges(pd.DataFrame(list(nx.karate_club_graph().edges()), columns=["source", "target"]))
    design = IndividualDesign(karate.nodes, 0.5)
    table = exposure(karate, design.assign(seed=1), "as4")
    outcomes = pd.DataFrame({"unit_id": karate.nodes, "y": 0.0})
    with warnings.catch_warnings(), pytest.raises(SpilloverError, match="smaller treated share or a cluster design"):
        warnings.simplefilter("ignore")
        estimate(outcomes, table, "hajek", probabilities=probabilities(karate, "as4", design=design))
