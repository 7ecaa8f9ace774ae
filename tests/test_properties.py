"""Property-based tests (hypothesis) of the loaders and estimators over degenerate inputs:
whatever the table, the answer is right or the error is a one-line SpilloverError; never a
traceback, never a silent wrong number."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from spillover import SocialGraph
from spillover.errors import SpilloverError
from spillover.estimate import estimate
from spillover.graph import read_table

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

ids = st.one_of(st.integers(-3, 12), st.sampled_from(["a", "b", "007", "7", "NA", "None", "é", ""]))


@SETTINGS
@given(st.lists(st.tuples(ids, ids), max_size=25))
def test_edge_lists_load_to_the_simple_undirected_graph_or_fail_with_one_line(pairs):
    frame = pd.DataFrame(pairs, columns=["source", "target"], dtype=object)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = SocialGraph.from_edges(frame)
    except SpilloverError as error:
        assert "\n" not in str(error)
        return
    expected = {frozenset((s, t)) for s, t in pairs if s != t}
    adjacency = graph.adjacency.toarray()
    assert (adjacency == adjacency.T).all() and not adjacency.diagonal().any()
    assert graph.n_edges == len(expected)
    got = {frozenset((graph.nodes[i], graph.nodes[j])) for i, j in zip(*graph.edge_index())}
    assert got == expected


text_ids = st.text(alphabet="0123456789abNA-+ é", min_size=1, max_size=4).filter(lambda s: s.strip() == s)


@SETTINGS
@given(st.lists(text_ids, min_size=1, max_size=20, unique=True))
def test_csv_ids_come_back_as_written(tmp_path, values):
    """Text ids stay text (007 is not 7, NA is an id); canonical integers become numbers."""
    path = tmp_path / "units.csv"
    pd.DataFrame({"unit_id": values, "y": range(len(values))}).to_csv(path, index=False)
    got = read_table(path)["unit_id"].tolist()
    canonical = all(re.fullmatch(r"0|-?[1-9][0-9]{0,17}", v) for v in values)
    assert got == ([int(v) for v in values] if canonical else values)


@st.composite
def experiments(draw):
    n = draw(st.integers(1, 30))
    conditions = draw(st.lists(st.sampled_from(["dir_ind1", "isol_dir", "ind1", "no"]), min_size=n, max_size=n))
    y = draw(st.lists(st.one_of(st.floats(-5, 5), st.just(0.0)), min_size=n, max_size=n))
    clusters = draw(st.lists(st.integers(0, draw(st.integers(0, 6))), min_size=n, max_size=n))
    return n, conditions, y, clusters


@SETTINGS
@given(experiments(), st.sampled_from(["difference-in-means", "cluster-means", "ols-cluster"]))
def test_estimators_on_degenerate_tables_answer_or_refuse_in_one_line(experiment, method):
    n, conditions, y, clusters = experiment
    ids = np.arange(n)
    exposure = pd.DataFrame({"unit_id": ids, "arm": [int(c in ("dir_ind1", "isol_dir")) for c in conditions],
                             "condition": pd.Categorical(conditions, categories=["dir_ind1", "isol_dir", "ind1", "no"])})
    outcomes = pd.DataFrame({"unit_id": ids, "y": y})
    cluster_table = pd.DataFrame({"unit_id": ids, "cluster_id": clusters})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            effects = estimate(outcomes, exposure, method, clusters=None if method == "difference-in-means"
                               else cluster_table, seed=1)
    except SpilloverError as error:
        assert "\n" not in str(error)
        event("refused")
        return
    event("answered")
    table = effects.to_frame()
    y = np.asarray(y)
    for row in table.itertuples():
        in_k = np.array(conditions) == row.condition
        in_l = np.array(conditions) == "no"
        if method == "difference-in-means":  # the estimate itself is a closed form
            assert row.estimate == pytest.approx(y[in_k].mean() - y[in_l].mean(), abs=1e-9)
        if math.isfinite(row.se):
            assert row.se >= 0
            if math.isfinite(row.ci_low) and math.isfinite(row.ci_high):
                assert row.ci_low <= row.estimate + 1e-9 and row.estimate - 1e-9 <= row.ci_high
        if math.isfinite(row.p_value):
            assert 0.0 <= row.p_value <= 1.0
