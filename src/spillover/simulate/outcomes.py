"""Outcomes with a known effect for an assignment: a social graph's (direct effect
plus a spillover in the treated share of neighbours) and a marketplace's buyers."""

from __future__ import annotations


import numpy as np
import pandas as pd

from ..graph import BipartiteGraph, SocialGraph
from ..seeds import Seed, check_seed


def social_outcomes(
    graph: SocialGraph, z: np.ndarray, *, tau: float, gamma: float, s_community: float = 1.0,
    s_e: float = 1.0, seed=None,
) -> np.ndarray:
    """Social-graph variant: ``y = tau z + gamma tau (treated share of neighbours) +
    community effect + noise`` (communities from ``node_data["community"]``, else one).
    Its GATE is ``tau (1 + gamma)`` over units with neighbours.

    Examples
    --------
    >>> import numpy as np
    >>> from spillover import synth
    >>> graph = synth.social_graph(500, seed=1)
    >>> y = social_outcomes(graph, np.zeros(500), tau=1.0, gamma=0.5, s_community=0.0, s_e=0.0)
    >>> float(np.abs(y).max())                                        # nobody treated: no effect, no noise
    0.0
    """
    rng = check_seed(seed)
    z = np.asarray(z, dtype=float)
    degree = np.diff(graph.adjacency.indptr).astype(float)
    share = np.divide(graph.adjacency @ z, degree if z.ndim == 1 else degree[:, None],
                      out=np.zeros_like(z), where=(degree if z.ndim == 1 else degree[:, None]) > 0)
    community = graph.node_data["community"].to_numpy() if graph.node_data is not None and "community" in graph.node_data \
        else np.zeros(graph.n_nodes, dtype=np.int64)
    codes, uniques = pd.factorize(community)
    shape = (len(uniques),) + z.shape[1:]
    return tau * z + gamma * tau * share + s_community * rng.standard_normal(shape)[codes] \
        + s_e * rng.standard_normal(z.shape)


def example_outcomes(graph: SocialGraph, assignment, *, tau: float = 0.2, gamma: float = 0.5,
                     seed: Seed = None) -> tuple[pd.DataFrame, dict[str, float]]:
    """Outcomes with a known effect for an assignment on ``graph``, to try a pipeline on:
    :func:`social_outcomes` with each unit's own arm (arm 1 and up treated).

    Returns the outcome table (``unit_id, y``) and the truth: ``tau``, ``gamma`` and the
    global average treatment effect ``tau (1 + gamma * share of units with neighbours)``.

    >>> from spillover import synth
    >>> from spillover.design import IndividualDesign
    >>> graph = synth.social_graph(500, seed=1)
    >>> table, truth = example_outcomes(graph, IndividualDesign(graph.nodes).assign(seed=2), seed=3)
    >>> list(table.columns), round(truth["gate"], 3)
    (['unit_id', 'y'], 0.3)
    """
    from ..exposure import arms_for, assignment_ids, treated_indicator
    from ..graph import with_isolates

    graph = with_isolates(graph, assignment_ids(assignment), "assignment")  # units without edges are units
    z = treated_indicator(arms_for(graph.nodes, assignment)).astype(float)
    y = social_outcomes(graph, z, tau=tau, gamma=gamma, seed=seed)
    connected = float(np.mean(np.diff(graph.adjacency.indptr) > 0))
    return (pd.DataFrame({"unit_id": graph.nodes, "y": y}),
            {"tau": tau, "gamma": gamma, "gate": tau * (1.0 + gamma * connected)})


def marketplace_outcomes(
    graph: BipartiteGraph, seller_z: np.ndarray, *, tau: float, s_buyer: float = 1.0, seed=None
) -> np.ndarray:
    """Marketplace variant: a buyer's outcome rises by ``tau`` times the treated share of
    its sellers (the GATE is ``tau``), plus buyer-level noise.

    Examples
    --------
    >>> import numpy as np
    >>> from spillover import synth
    >>> market = synth.marketplace(300, 30, seed=1)
    >>> marketplace_outcomes(market, np.ones(30), tau=0.5, seed=1).shape
    (300,)
    """
    rng = check_seed(seed)
    degree = graph.unit_degrees().astype(float)
    z = np.asarray(seller_z, dtype=float)
    treated = graph.incidence @ z
    share = treated / (degree if z.ndim == 1 else degree[:, None])
    return tau * share + s_buyer * rng.standard_normal(share.shape)


def example_marketplace_outcomes(graph: BipartiteGraph, assignment, *, tau: float = 0.5,
                                 seed: Seed = None) -> tuple[pd.DataFrame, dict[str, float]]:
    """Buyer outcomes with a known effect for a seller assignment on the marketplace
    ``graph``: :func:`marketplace_outcomes` (a buyer's outcome rises by ``tau`` times the
    treated share of its sellers), to try the marketplace pipeline on.

    Returns the outcome table (``unit_id, y``, one row per buyer) and the truth, in the
    ``bipartite`` mapping's terms: ``direct`` (all of a buyer's sellers treated against
    none: ``tau``), ``indirect`` (the buyers in ``indirect`` against none: ``tau`` times
    their mean treated share in this assignment) and ``gate`` (every seller treated
    against none: ``tau``).

    >>> from spillover import synth
    >>> from spillover.design import BipartiteDesign
    >>> market = synth.marketplace(2_000, 200, seed=1)
    >>> table, truth = example_marketplace_outcomes(market, BipartiteDesign(market).assign(seed=2), seed=3)
    >>> len(table) == market.n_units, truth["direct"], 0 < truth["indirect"] < 0.5
    (True, 0.5, True)
    """
    from ..exposure import arms_for, treated_indicator

    z = treated_indicator(arms_for(graph.treated, assignment)).astype(float)
    y = marketplace_outcomes(graph, z, tau=tau, seed=seed)
    share = (graph.incidence @ z) / np.maximum(graph.unit_degrees(), 1)
    mixed = (share > 0) & (share < 1)
    return (pd.DataFrame({"unit_id": graph.units, "y": y}),
            {"tau": tau, "direct": tau, "indirect": float(tau * share[mixed].mean()) if mixed.any() else float("nan"),
             "gate": tau})


SPILLOVERS = ("linear", "quadratic", "threshold")  # shapes g(share) of the spillover in compare_estimators


def spillover_shape(share: np.ndarray, kind: str) -> np.ndarray:
    """``g(share)``: how the outcome moves with the treated share of neighbours (one of :data:`SPILLOVERS`)."""
    if kind == "linear":
        return share
    if kind == "quadratic":
        return share**2
    return (share >= 0.5).astype(float)  # threshold: a unit reacts once half its friends are treated
