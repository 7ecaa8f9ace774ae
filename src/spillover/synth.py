"""Synthetic networks for demos, tests and benchmarks.

Each generator is vectorised and seeded, so a 1M-node graph takes seconds and the same
seed gives the same graph on any machine. Ground truth the generator knows (planted
communities, teams) is returned in the graph's node data.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import InputError
from .graph import EDGE_DTYPE, BipartiteGraph, CollaborationNetwork, SocialGraph
from .seeds import check_seed

__all__ = ["collaboration_memberships", "collaboration_network", "edge_table", "evolving_memberships",
           "iter_memberships", "marketplace", "small_world", "social_graph"]

def _power_law_sizes(
    rng: np.random.Generator, total: int, exponent: float, min_size: int, max_size: int
) -> np.ndarray:
    """Integer sizes from a truncated power law ``p(s) ~ s^-exponent`` summing to ``total``."""
    support = np.arange(min_size, max_size + 1)
    weights = support.astype(float) ** -exponent
    mean = float(np.sum(support * weights) / weights.sum())
    draws = rng.choice(support, size=int(2 * total / mean) + 10, p=weights / weights.sum())
    cumulative = np.cumsum(draws)
    k = int(np.searchsorted(cumulative, total))
    sizes = draws[: k + 1].copy()
    sizes[-1] -= int(cumulative[k] - total)  # trim the last so the sizes sum to total
    return sizes[sizes > 0]


def _weighted_pick(
    rng: np.random.Generator, group: np.ndarray, starts: np.ndarray, cum_weights: np.ndarray
) -> np.ndarray:
    """For each entry of ``group``, a member of that group with probability proportional
    to its weight; members of group ``g`` are positions ``starts[g]:starts[g+1]`` of the
    inclusive cumulative weights ``cum_weights``."""
    lower = np.where(starts[group] > 0, cum_weights[starts[group] - 1], 0.0)
    upper = cum_weights[starts[group + 1] - 1]
    u = lower + rng.random(group.size) * (upper - lower)
    picked = np.searchsorted(cum_weights, u, side="right")
    return np.clip(picked, starts[group], starts[group + 1] - 1)


def _dedupe_pairs(a: np.ndarray, b: np.ndarray, n_b: int) -> tuple[np.ndarray, np.ndarray]:
    keys = np.sort(a.astype(np.int64) * n_b + b)
    keep = np.ones(keys.size, dtype=bool)
    keep[1:] = keys[1:] != keys[:-1]
    keys = keys[keep]
    return keys // n_b, keys % n_b


def social_graph(
    n: int = 10_000,
    *,
    mean_degree: float = 12.0,
    mixing: float = 0.1,
    community_size_range: tuple[int, int] = (20, 200),
    community_size_exponent: float = 1.5,
    degree_heterogeneity: float = 0.5,
    seed: int | None = 0,
) -> SocialGraph:
    """A social graph with planted communities (an LFR-like planted partition).

    Community sizes follow a truncated power law; each edge starts at a node chosen in
    proportion to a lognormal activity (``degree_heterogeneity`` is its sigma) and, with
    probability ``1 - mixing``, ends inside the same community, else anywhere. The planted
    community of each node is in ``graph.node_data["community"]``.

    Examples
    --------
    >>> graph = social_graph(2_000, mean_degree=10, seed=1)
    >>> graph.n_nodes, bool(8 < graph.degrees().mean() <= 10)     # duplicate draws collapse
    (2000, True)
    """
    rng = check_seed(seed)
    lo, hi = community_size_range
    sizes = _power_law_sizes(rng, n, community_size_exponent, lo, min(hi, n))
    community = np.repeat(np.arange(sizes.size), sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    activity = rng.lognormal(0.0, degree_heterogeneity, size=n)
    cum_activity = np.cumsum(activity)

    n_draws = int(round(n * mean_degree / 2))
    source = np.searchsorted(cum_activity, rng.random(n_draws) * cum_activity[-1], side="right")
    source = np.minimum(source, n - 1)
    inside = rng.random(n_draws) >= mixing
    target = np.empty(n_draws, dtype=np.int64)
    target[inside] = _weighted_pick(rng, community[source[inside]], starts, cum_activity)
    outside = ~inside
    target[outside] = np.minimum(
        np.searchsorted(cum_activity, rng.random(int(outside.sum())) * cum_activity[-1], side="right"),
        n - 1,
    )
    keep = source != target
    lo_end, hi_end = _dedupe_pairs(
        np.minimum(source[keep], target[keep]), np.maximum(source[keep], target[keep]), n
    )
    rows = np.concatenate([lo_end, hi_end])
    cols = np.concatenate([hi_end, lo_end])
    adjacency = sp.csr_array((np.ones(rows.size, dtype=EDGE_DTYPE), (rows, cols)), shape=(n, n))
    adjacency.sort_indices()
    nodes = pd.RangeIndex(n, name="node")
    return SocialGraph(
        adjacency=adjacency, nodes=pd.Index(nodes), node_data=pd.DataFrame({"community": community}, index=nodes)
    )


def small_world(side: int = 32, *, neighbours: int = 1, rewire: float = 0.1, seed: int | None = 0) -> SocialGraph:
    """A Watts-Strogatz small world on a ``side x side`` torus: each node linked to the
    nodes within ``neighbours`` steps along each axis, then each edge's far end moved to
    a uniformly random node with probability ``rewire`` (duplicates and self-loops
    dropped). The graphs of Ugander & Yin's RGCR experiments are of this kind.

    Examples
    --------
    >>> graph = small_world(16, rewire=0.0)
    >>> graph.n_nodes, int(graph.degrees().min()), int(graph.degrees().max())
    (256, 4, 4)
    """
    if side < 3 or neighbours < 1 or 2 * neighbours >= side or not 0.0 <= rewire <= 1.0:
        raise ValueError(f"small_world: need side >= 3, 1 <= neighbours < side / 2 and rewire in [0, 1]; "
                         f"got side={side}, neighbours={neighbours}, rewire={rewire}.")
    rng = check_seed(seed)
    n = side * side
    row, col = np.divmod(np.arange(n), side)
    sources, targets = [], []
    for step in range(1, neighbours + 1):  # right and down: every lattice edge once
        sources += [np.arange(n), np.arange(n)]
        targets += [row * side + (col + step) % side, ((row + step) % side) * side + col]
    source, target = np.concatenate(sources), np.concatenate(targets)
    moved = rng.random(source.size) < rewire
    target[moved] = rng.integers(0, n, size=int(moved.sum()))
    keep = source != target
    lo_end, hi_end = _dedupe_pairs(np.minimum(source[keep], target[keep]), np.maximum(source[keep], target[keep]), n)
    rows, cols = np.concatenate([lo_end, hi_end]), np.concatenate([hi_end, lo_end])
    adjacency = sp.csr_array((np.ones(rows.size, dtype=EDGE_DTYPE), (rows, cols)), shape=(n, n))
    adjacency.sort_indices()
    return SocialGraph(adjacency=adjacency, nodes=pd.Index(pd.RangeIndex(n, name="node")))


def marketplace(
    n_buyers: int = 100_000,
    n_sellers: int = 10_000,
    *,
    mean_sellers_per_buyer: float = 3.0,
    popularity_sigma: float = 1.5,
    categories: int = 0,
    within_category: float = 0.9,
    seed: int | None = 0,
) -> BipartiteGraph:
    """Buyers linked to the sellers they buy from; seller popularity is heavy-tailed.

    Each buyer has ``1 + Poisson(mean - 1)`` seller draws, each seller chosen in
    proportion to a lognormal popularity (sigma ``popularity_sigma``); repeated draws of
    the same seller collapse. Seller popularity is in ``treated_data["popularity"]``.
    With ``categories`` (e.g. regions), sellers and buyers get one of that many
    categories at random and each draw stays in the buyer's category with probability
    ``within_category`` (in ``treated_data`` / ``unit_data["category"]``): the structure
    seller clusters can follow.

    Examples
    --------
    >>> market = marketplace(1_000, 100, seed=1)
    >>> market.n_units, market.n_treated_side
    (1000, 100)
    """
    rng = check_seed(seed)
    popularity = rng.lognormal(0.0, popularity_sigma, size=n_sellers)
    cum_popularity = np.cumsum(popularity)
    draws = 1 + rng.poisson(max(mean_sellers_per_buyer - 1.0, 0.0), size=n_buyers)
    buyer = np.repeat(np.arange(n_buyers), draws)
    seller = np.searchsorted(cum_popularity, rng.random(buyer.size) * cum_popularity[-1], side="right")
    seller = np.minimum(seller, n_sellers - 1)
    seller_category = buyer_category = None
    if categories:
        if not 0.0 <= within_category <= 1.0:
            raise InputError(f"within_category={within_category} must be between 0 and 1.")
        seller_category = rng.integers(0, categories, size=n_sellers)
        buyer_category = rng.integers(0, categories, size=n_buyers)
        # a draw kept in the buyer's category: by popularity among that category's sellers
        order = np.lexsort((np.arange(n_sellers), seller_category))
        starts = np.searchsorted(seller_category[order], np.arange(categories + 1))
        cum = np.cumsum(popularity[order])
        base = np.concatenate([[0.0], cum])[starts]
        stay = rng.random(buyer.size) < within_category
        c = buyer_category[buyer[stay]]
        has = starts[c + 1] > starts[c]
        target = base[c] + rng.random(c.size) * (base[c + 1] - base[c])
        picked = np.clip(np.searchsorted(cum, target, side="right"), starts[c], np.maximum(starts[c + 1] - 1, starts[c]))
        seller[np.flatnonzero(stay)[has]] = order[picked[has]]
    buyer, seller = _dedupe_pairs(buyer, seller, n_sellers)
    incidence = sp.csr_array(
        (np.ones(buyer.size, dtype=EDGE_DTYPE), (buyer, seller)), shape=(n_buyers, n_sellers)
    )
    incidence.sort_indices()
    buyers = pd.Index(np.arange(n_buyers), name="buyer_id")
    sellers = pd.Index(np.arange(n_sellers), name="seller_id")
    return BipartiteGraph(
        incidence=incidence,
        units=buyers,
        treated=sellers,
        treated_data=pd.DataFrame({"popularity": popularity} | ({"category": seller_category} if categories else {}),
                                  index=sellers),
        unit_data=pd.DataFrame({"category": buyer_category}, index=buyers) if categories else None,
    )


def collaboration_network(
    n_users: int = 10_000,
    *,
    team_size_range: tuple[int, int] = (1, 500),
    team_size_exponent: float = 2.0,
    users_per_project: float = 4.0,
    projects_per_user_exponent: float = 2.5,
    seed: int | None = 0,
) -> CollaborationNetwork:
    """Accounts -> projects -> users, with many components of very different sizes.

    Users come in teams whose sizes follow a power law (most teams are a single user, a
    few have thousands). A team has about ``size / users_per_project`` projects billed to
    one account per ten projects; each user joins ``Zipf(projects_per_user_exponent)``
    projects of its team (capped at 20), favouring the team's first projects, so project
    sizes and projects per user are heavy-tailed. A team can split into several
    components when its users' projects do not overlap. Per-user ``usage`` (lognormal
    with a team effect) and the generating ``team`` are in ``user_data``.

    Examples
    --------
    >>> network = collaboration_network(1_000, seed=1)
    >>> network.n_users, "usage" in network.user_data
    (1000, True)
    """
    rng = check_seed(seed)
    lo, hi = team_size_range
    team_sizes = _power_law_sizes(rng, n_users, team_size_exponent, lo, min(hi, n_users))
    n_teams = team_sizes.size
    team = np.repeat(np.arange(n_teams), team_sizes)
    projects_per_team = np.maximum(1, np.round(team_sizes / users_per_project)).astype(np.int64)
    project_start = np.concatenate([[0], np.cumsum(projects_per_team)])
    accounts_per_team = 1 + (projects_per_team - 1) // 10
    account_start = np.concatenate([[0], np.cumsum(accounts_per_team)])
    n_projects = int(project_start[-1])

    memberships = np.minimum(rng.zipf(projects_per_user_exponent, size=n_users), 20)
    user = np.repeat(np.arange(n_users), memberships)
    user_team = team[user]
    # u**2 favours a team's first projects: a few large projects, many small ones
    offset = np.floor(rng.random(user.size) ** 2 * projects_per_team[user_team]).astype(np.int64)
    project = project_start[user_team] + offset
    user, project = _dedupe_pairs(user, project, n_projects)

    project_team = np.repeat(np.arange(n_teams), projects_per_team)
    project_account = account_start[project_team] + rng.integers(
        0, accounts_per_team[project_team]
    )
    membership = sp.csr_array(
        (np.ones(user.size, dtype=EDGE_DTYPE), (user, project)), shape=(n_users, n_projects)
    )
    membership.sort_indices()
    team_effect = rng.normal(0.0, 1.0, size=n_teams)
    usage = np.exp(rng.normal(0.0, 1.0, size=n_users) + team_effect[team])

    users = pd.Index(np.arange(n_users), name="user_id")
    used_projects = np.diff(membership.tocsc().indptr) > 0
    keep = np.flatnonzero(used_projects)  # projects nobody joined are not in the data
    membership = sp.csr_array(membership[:, keep])
    account_codes, account_ids = pd.factorize(project_account[keep], sort=True)
    return CollaborationNetwork(
        membership=membership,
        users=users,
        projects=pd.Index(np.arange(keep.size), name="project_id"),
        accounts=pd.Index(account_ids, name="account_id"),
        project_account=account_codes.astype(np.int64),
        user_data=pd.DataFrame({"usage": usage, "team": team}, index=users),
    )


def collaboration_memberships(network: CollaborationNetwork) -> pd.DataFrame:
    """The network as the membership table users load: ``user_id, project_id, account_id,
    usage``.

    Examples
    --------
    >>> collaboration_memberships(collaboration_network(500, seed=1)).columns.tolist()
    ['user_id', 'project_id', 'account_id', 'usage']
    """
    coo = network.membership.tocoo()
    frame = pd.DataFrame(
        {
            "user_id": network.users[coo.row],
            "project_id": network.projects[coo.col],
            "account_id": network.accounts[network.project_account[coo.col]],
        }
    )
    if "usage" in network.user_data:
        frame["usage"] = network.user_data["usage"].to_numpy()[coo.row]
    return frame


def edge_table(graph: SocialGraph, source: str = "source", target: str = "target") -> pd.DataFrame:
    """The graph's edges as a table of ids, each undirected edge once.

    Examples
    --------
    >>> graph = social_graph(500, seed=1)
    >>> len(edge_table(graph)) == graph.n_edges
    True
    """
    src, dst = graph.edge_index()
    return pd.DataFrame({source: graph.nodes[src], target: graph.nodes[dst]})


def evolving_memberships(
    n_users: int = 5_000, n_days: int = 30, *, churn: float = 0.01, seed: int | None = 0
) -> list[pd.DataFrame]:
    """Daily membership snapshots of a collaboration network with churn (all in memory:
    :func:`iter_memberships` yields them one at a time).

    Day one is :func:`collaboration_network`. Each later day a ``churn`` share of
    memberships ends (components shrink, split or vanish), as many new users arrive (half
    join an existing project, half start a project of their own: new components), and a
    quarter as many existing users join another existing project (components merge).

    Examples
    --------
    >>> days = evolving_memberships(1_000, n_days=3, seed=1)
    >>> len(days), days[0].columns.tolist()
    (3, ['user_id', 'project_id', 'account_id', 'usage'])
    """
    return list(iter_memberships(n_users, n_days, churn=churn, seed=seed))


def iter_memberships(
    n_users: int = 5_000, n_days: int = 30, *, churn: float = 0.01, seed: int | None = 0
) -> Iterator[pd.DataFrame]:
    """:func:`evolving_memberships`' snapshots, yielded one day at a time: memory holds
    one day (what writing 30 days of 10 million users needs).

    Examples
    --------
    >>> [len(day) for day in iter_memberships(1_000, n_days=3, seed=1)] == [
    ...     len(day) for day in evolving_memberships(1_000, n_days=3, seed=1)]
    True
    """
    rng = check_seed(seed)
    frame = collaboration_memberships(collaboration_network(n_users, seed=seed))
    account_of = frame.drop_duplicates("project_id").set_index("project_id")["account_id"]
    usage = frame.drop_duplicates("user_id").set_index("user_id")["usage"]
    next_user, next_project = int(frame["user_id"].max()) + 1, int(frame["project_id"].max()) + 1
    next_account = int(frame["account_id"].max()) + 1
    yield frame
    for _ in range(n_days - 1):  # a loop over days; each day's changes are vectorised
        keep = rng.random(len(frame)) >= churn
        frame = frame[keep]
        n_new = max(1, int(churn * n_users))
        new_users = np.arange(next_user, next_user + n_new)
        next_user += n_new
        own = rng.random(n_new) < 0.5
        projects = account_of.index.to_numpy()
        joined = rng.choice(projects, size=n_new)
        new_projects = np.arange(next_project, next_project + int(own.sum()))
        next_project += new_projects.size
        joined[own] = new_projects
        account_of = pd.concat([account_of, pd.Series(np.arange(next_account, next_account + new_projects.size),
                                                      index=new_projects)])
        next_account += new_projects.size
        usage = pd.concat([usage, pd.Series(rng.lognormal(0.0, 1.0, n_new), index=new_users)])
        movers = rng.choice(frame["user_id"].unique(), size=max(1, n_new // 4), replace=False)
        extra = pd.DataFrame({"user_id": np.concatenate([new_users, movers]),
                              "project_id": np.concatenate([joined, rng.choice(projects, size=movers.size)])})
        extra["account_id"] = account_of.reindex(extra["project_id"]).to_numpy()
        extra["usage"] = usage.reindex(extra["user_id"]).to_numpy()
        frame = pd.concat([frame, extra], ignore_index=True).drop_duplicates(["user_id", "project_id"])
        frame = frame.reset_index(drop=True)
        yield frame
