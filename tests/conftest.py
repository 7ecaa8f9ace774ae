"""Shared fixtures: small seeded graphs, so tests are fast and deterministic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spillover import synth

SLOW_MARKS = ("slow", "spark")


def pytest_addoption(parser):
    parser.addoption("--full", action="store_true",
                     help="run every test, the slow statistical checks and the Spark engine's too (what CI runs)")


def pytest_collection_modifyitems(config, items):
    """``pytest -q`` runs the fast set; ``--full`` (or an explicit ``-m``) runs what it names."""
    if config.getoption("--full") or config.option.markexpr:
        return
    slow = [any(item.get_closest_marker(mark) for mark in SLOW_MARKS) for item in items]
    if any(slow):
        config.hook.pytest_deselected(items=[item for item, s in zip(items, slow) if s])
        items[:] = [item for item, s in zip(items, slow) if not s]


@pytest.fixture(scope="session")
def planted_graph():
    """An easy planted partition: 3,000 nodes, 5% of edges between communities."""
    return synth.social_graph(3_000, mean_degree=12, mixing=0.05, community_size_range=(50, 150), seed=7)


@pytest.fixture(scope="session")
def small_collab():
    return synth.collaboration_network(2_000, seed=3)


@pytest.fixture
def cli_json(capsys):
    """Run a ``spillover`` command with ``--json`` in this process: it must succeed, and its
    JSON object is returned (stderr on failure)."""
    import json

    from spillover.cli import main

    def run(*argv):
        assert main([*argv, "--json"]) == 0, capsys.readouterr().err
        return json.loads(capsys.readouterr().out)

    return run


@pytest.fixture
def tiny_edges() -> pd.DataFrame:
    return pd.DataFrame({"source": ["a", "b", "c", "e"], "target": ["b", "c", "a", "f"]})


def random_sparse_edges(n: int, m: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    src, dst = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = src != dst
    frame = pd.DataFrame({"source": src[keep], "target": dst[keep]})
    lo = frame.min(axis=1)
    hi = frame.max(axis=1)
    return pd.DataFrame({"source": lo, "target": hi}).drop_duplicates().reset_index(drop=True)


def pytest_configure(config):
    """``--full`` (what CI runs) prints the slowest tests: where the suite's time goes."""
    if config.getoption("--full") and not config.option.durations:
        config.option.durations = 25
