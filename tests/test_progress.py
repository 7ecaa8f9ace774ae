"""Long steps show progress on a terminal (a bar with counts, the time so far and the
time left) and stay quiet when piped: the commands run in a pseudo-terminal here, as a
person at a shell runs them."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import warnings

import networkx as nx
import pandas as pd
import pytest

from spillover import synth
from spillover.errors import SpilloverWarning
from spillover.simulate import compare_estimators

COUNT = re.compile(r"(\d+)/(\d+)")


def in_terminal(args: list[str], timeout: float = 300.0) -> tuple[int, str]:
    """Run ``spillover args`` with stdout and stderr on a pseudo-terminal; its exit code
    and everything it wrote (escape sequences and all)."""
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen([sys.executable, "-m", "spillover", *args], stdin=follower, stdout=follower,
                               stderr=follower, env=env, close_fds=True)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], timeout)
        if not ready:
            process.kill()
            raise TimeoutError(f"spillover {' '.join(args)} wrote nothing for {timeout}s")
        try:
            data = os.read(leader, 65536)
        except OSError:  # the child closed the terminal (EIO): it has finished
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return process.wait(timeout=timeout), b"".join(chunks).decode("utf-8", "replace")


def test_simulate_shows_a_bar_with_counts_on_a_terminal_and_plain_lines_when_piped(tmp_path):
    args = ["simulate", "--users", "3000", "--n-sims", "400", "--designs", "component,project"]
    rc, shown = in_terminal(args)
    assert rc == 0, shown[-2000:]
    counts = {(int(done), int(total)) for done, total in COUNT.findall(shown)}
    assert any(total == 800 for _, total in counts), shown[-2000:]  # 2 designs x 400 experiments
    assert "left" in shown and "elapsed" in shown  # the time so far and an estimate of the time left
    piped = subprocess.run([sys.executable, "-m", "spillover", *args], capture_output=True, text=True, timeout=300)
    assert piped.returncode == 0, piped.stderr
    assert not COUNT.search(piped.stderr) and "\x1b[" not in piped.stderr  # no bar, no escape codes in a log
    assert "2 designs x 400 experiments (800) ..." in piped.stderr and "done in" in piped.stderr


def test_json_output_stays_quiet_on_a_terminal():
    rc, shown = in_terminal(["simulate", "--users", "3000", "--n-sims", "200", "--designs", "component", "--json"])
    assert rc == 0, shown[-2000:]
    assert not any(int(total) == 200 for _, total in COUNT.findall(shown.split("{", 1)[0]))


@pytest.mark.slow
def test_estimator_study_counts_its_experiments_on_a_terminal(tmp_path):
    graph = nx.watts_strogatz_graph(300, 4, 0.1, seed=1)
    edges = tmp_path / "ws.csv"
    pd.DataFrame(list(graph.edges()), columns=["source", "target"]).to_csv(edges, index=False)
    rc, shown = in_terminal(["simulate", "--compare", "estimators", "--edges", str(edges), "--n-sims", "6"])
    assert rc == 0, shown[-2000:]
    assert any(int(total) == 6 for _, total in COUNT.findall(shown)), shown[-2000:]


def test_a_dense_graph_leaves_out_the_hajek_rows_it_cannot_afford_and_says_which_option_raises_it():
    """Under large clusters on a dense graph, Hajek's pair terms exceed the limit: the
    other estimators still run, and the warning names an option simulate has."""
    graph = synth.social_graph(600, seed=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = compare_estimators(graph, n_sims=3, seed=1, max_pairs=1_000)
    left_out = [str(w.message) for w in caught if issubclass(w.category, SpilloverWarning)
                and "left out" in str(w.message)]
    assert left_out and all("--max-pairs" in m for m in left_out)
    assert "Hajek, fully exposed" not in set(table["estimator"])
    assert len(table) == 5 and table["coverage"].notna().all()
    full = compare_estimators(graph, n_sims=3, seed=1)  # the default limit: every row
    assert len(full) == 7


@pytest.mark.slow
def test_the_demo_shows_its_progress_on_a_terminal_and_finishes_within_a_minute(tmp_path):
    import time

    start = time.perf_counter()
    rc, shown = in_terminal(["demo", "--out", str(tmp_path / "demo")], timeout=600)
    elapsed = time.perf_counter() - start
    assert rc == 0, shown[-2000:]
    assert any(int(total) == 10_800 for _, total in COUNT.findall(shown))  # 6 x 1,000 + 2 x 8 x 300 experiments
    assert (tmp_path / "demo" / "report.html").exists()
    # the README promises a demo in about a minute on 2 cores; a loaded CI runner gets twice that
    assert elapsed < 120, f"the demo took {elapsed:.0f}s"
