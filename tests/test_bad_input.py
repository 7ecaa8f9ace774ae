"""A matrix of bad input across every command, as a new user would produce it: missing,
empty, truncated, binary, wrong-format and wrong-column files; numbers that are not
numbers, not finite, or out of range; bad table contents. Every case must end in one
line on stderr starting with ``error:``, exit code 2 and no output written; no case may
raise (a traceback) or succeed silently."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spillover import synth
from spillover.cli import main
from spillover.design import ClusterDesign
from spillover.experiment import EXAMPLE
from spillover.exposure import exposure

BAD_FILES = ["missing.parquet", "adir", "empty.csv", "empty.parquet", "truncated.parquet", "binary.csv", "notes.txt",
             "wrongcols.parquet"]
NOT_NUMBERS = ["nan", "inf", "abc", "", "1e999"]
EDGE_NUMBERS = ["-1", "0"]  # valid for some flags (a negative effect), out of range for others

# command: (valid argv, file arguments to spoil, numeric flags to spoil)
COMMANDS = {
    "cluster": (["cluster", "edges.parquet", "--method", "louvain", "--seed", "1", "--out", "out/c.parquet"],
                ["edges.parquet"], ["--seed", "--resolution", "--cut-threshold"]),
    "cluster-metis": (["cluster", "edges.csv", "--method", "metis", "--n-parts", "5", "--out", "out/c.parquet"],
                      ["edges.csv"], ["--n-parts"]),
    "assign": (["assign", "--units", "clusters.parquet", "--design", "cluster", "--seed", "1", "--out", "out/a.parquet"],
               ["clusters.parquet"], ["--seed", "--treat-fraction"]),
    "assign-stratified": (["assign", "--units", "clusters.parquet", "--design", "stratified-cluster", "--salt", "s",
                           "--sample-fraction", "0.5", "--n-bins", "2", "--out", "out/a.parquet"],
                          [], ["--sample-fraction", "--n-bins"]),
    "exposure": (["exposure", "edges.parquet", "--assignment", "assignment.parquet", "--mapping", "threshold",
                  "--threshold", "0.5", "--out", "out/x.parquet"],
                 ["edges.parquet", "assignment.parquet"], ["--threshold", "--hops"]),
    "estimate": (["estimate", "--outcomes", "outcomes.parquet", "--exposure", "exposure.parquet", "--method",
                  "ols-cluster", "--clusters", "clusters.parquet"],
                 ["outcomes.parquet", "exposure.parquet", "clusters.parquet"], ["--alpha", "--wild-bootstrap"]),
    "estimate-hajek": (["estimate", "--outcomes", "outcomes.parquet", "--exposure", "exposure.parquet", "--method",
                        "hajek", "--edges", "edges.parquet", "--design", "cluster", "--clusters", "clusters.parquet",
                        "--n-draws", "50"], ["edges.parquet"], ["--n-draws", "--min-probability", "--seed"]),
    "simulate": (["simulate", "--users", "300", "--n-sims", "20", "--designs", "component", "--out", "out/sim"], [],
                 ["--users", "--n-sims", "--tau", "--gamma", "--seed"]),
    "plan": (["plan", "--edges", "edges.parquet", "--outcomes", "outcomes.parquet", "--clusters", "clusters.parquet"],
             ["edges.parquet", "outcomes.parquet", "clusters.parquet"], ["--power", "--alpha", "--spillover", "--effect"]),
    "synth": (["synth", "social", "--users", "50", "--out", "out/e.parquet"], [], ["--users", "--seed"]),
    "evolve": (["evolve", "--ledger", "out/l.duckdb", "--snapshot", "memberships.parquet", "--date", "2026-11-01",
                "--design", "cluster", "--salt", "x"], ["memberships.parquet"], ["--treat-fraction"]),
    "validate": (["validate", "experiment.toml"], ["experiment.toml"], []),
    "run": (["run", "experiment.toml", "--date", "2026-11-01"], ["experiment.toml"], []),
}
CONTENT = [  # valid files whose contents are wrong
    ["estimate", "--outcomes", bad, "--exposure", "exposure.parquet", "--method", "ols-cluster", "--clusters",
     "clusters.parquet"] for bad in ("texty.parquet", "dupids.parquet", "nanids.parquet", "infy.parquet")
] + [["demo", "--out", "notes.txt"], ["demo", "--seed", "-1"], ["cluster", "edges.parquet", "--method", "components",
                                                                 "--resolution", "2"],
     ["assign", "--units", "clusters.parquet", "--design", "holdout", "--treat-fraction", "0.3", "--seed", "1"],
     ["assign", "--units", "clusters.parquet", "--design", "cluster", "--seed", "1", "--salt", "s"],
     ["estimate", "--outcomes", "outcomes.parquet", "--exposure", "exposure.parquet", "--method", "difference-in-means",
      "--covariates", "y"]]
ASSIGN = ["assign", "--units", "clusters.parquet", "--design", "cluster"]
CONTENT += [  # issue 26: outputs onto inputs or folders, empty salts, text in lists, dates far ahead
    ASSIGN + ["--salt", "", "--out", "out/a.parquet"],
    ASSIGN + ["--salt", "  ", "--out", "out/a.parquet"],
    ASSIGN + ["--seed", "1", "--arm-weights", "a,b", "--out", "out/a.parquet"],
    ASSIGN + ["--seed", "1", "--arm-weights", "0.5", "--out", "out/a.parquet"],
    ASSIGN + ["--seed", "1", "--ledger", "edges.csv", "--out", "out/a.csv"],
    ASSIGN + ["--seed", "1", "--ledger", "out", "--out", "out/a.csv"],
    ASSIGN + ["--seed", "1", "--out", "out/a.txt"],
    ASSIGN + ["--seed", "1", "--out", "clusters.parquet"],
    ["evolve", "--ledger", "out/l.duckdb", "--snapshot", "memberships.parquet", "--date", "2062-01-01", "--design",
     "cluster", "--salt", "x"],
    ["evolve", "--ledger", "out/l.duckdb", "--snapshot", "memberships.parquet", "--date", "2026-11-01", "--design",
     "cluster", "--salt", ""],
    ["cluster", "edges.parquet", "--method", "components", "--out", "edges.parquet"],
    ["cluster", "edges.parquet", "--method", "components", "--out", "out"],
    ["cluster", "edges.parquet", "--method", "components", "--out", "notes.txt/c.parquet"],
    ["exposure", "edges.parquet", "--assignment", "assignment.parquet", "--mapping", "as4", "--out", "assignment.parquet"],
    ["plan", "--edges", "edges.parquet", "--outcomes", "texty.parquet"],
    ["report", "experiment.toml", "--out", "experiment.toml"],
    ["report", "experiment.toml", "--out", "out/report.parquet"],
    ["init", "experiment.toml"],
    ["synth", "social", "--users", "50", "--out", "out"],
]


def cases() -> list[tuple[str, list[str], bool]]:
    """(id, argv, must_fail): must_fail is False only for edge numbers a flag may accept."""
    out = []
    for name, (argv, files, numbers) in COMMANDS.items():
        for spoil in files:
            for bad in BAD_FILES:
                out.append((f"{name}:{spoil}={bad}", [bad if a == spoil else a for a in argv], True))
        for flag in numbers:
            for bad in NOT_NUMBERS + EDGE_NUMBERS:
                new = list(argv)
                if flag in new:
                    new[new.index(flag) + 1] = bad
                else:
                    new += [flag, bad]
                out.append((f"{name}:{flag}={bad!r}", new, bad in NOT_NUMBERS))
    out += [(f"content:{' '.join(argv[:3])}", argv, True) for argv in CONTENT]
    return out


CASES = cases()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad")
    graph = synth.social_graph(300, seed=1)
    edges = synth.edge_table(graph)
    edges.to_parquet(root / "edges.parquet")
    edges.to_csv(root / "edges.csv", index=False)
    clusters = pd.DataFrame({"unit_id": graph.nodes, "cluster_id": graph.nodes // 10})
    clusters.to_parquet(root / "clusters.parquet")
    assignment = ClusterDesign(clusters["cluster_id"].to_numpy(), graph.nodes).assign(seed=1)
    assignment.to_frame().to_parquet(root / "assignment.parquet")
    table = exposure(graph, assignment, "as4")
    table.assign(condition=table["condition"].astype(str)).to_parquet(root / "exposure.parquet")
    y = np.random.default_rng(0).normal(size=300)
    pd.DataFrame({"unit_id": graph.nodes, "y": y}).to_parquet(root / "outcomes.parquet")
    synth.collaboration_memberships(synth.collaboration_network(300, seed=1)).to_parquet(root / "memberships.parquet")
    (root / "experiment.toml").write_text(EXAMPLE)  # valid, but no snapshot exists
    (root / "empty.csv").write_bytes(b"")
    (root / "empty.parquet").write_bytes(b"")
    whole = (root / "edges.parquet").read_bytes()
    (root / "truncated.parquet").write_bytes(whole[: len(whole) // 2])
    (root / "binary.csv").write_bytes(b"\xff\xfe\x00garbage\x80\x81\n\x00\x01")
    (root / "adir").mkdir()
    (root / "notes.txt").write_text("hello")
    pd.DataFrame({"a": [1], "b": [2]}).to_parquet(root / "wrongcols.parquet")
    pd.DataFrame({"unit_id": graph.nodes, "y": ["x"] * 300}).to_parquet(root / "texty.parquet")
    pd.DataFrame({"unit_id": list(graph.nodes[:5]) * 2, "y": 1.0}).to_parquet(root / "dupids.parquet")
    pd.DataFrame({"unit_id": [1.5, np.nan], "y": [1.0, 2.0]}).to_parquet(root / "nanids.parquet")
    pd.DataFrame({"unit_id": graph.nodes, "y": np.inf}).to_parquet(root / "infy.parquet")
    return root


def test_the_matrix_has_at_least_200_cases():
    assert len(CASES) >= 200


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(folder, monkeypatch, case):
    _, argv, must_fail = case
    monkeypatch.chdir(folder)
    out_dir = folder / "out"
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    out_dir.mkdir()
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = main(argv)  # an exception here is the traceback a user would see
    err = stderr.getvalue().strip()
    if must_fail:
        assert rc == 2, f"rc {rc}: {err[-500:]}"
    assert rc in (0, 2)
    if rc == 2:
        last = err.splitlines()[-1]
        assert last.startswith("error:"), err[-500:]
        assert not any(out_dir.iterdir()), sorted(os.listdir(out_dir))  # nothing partial is written


@pytest.mark.slow
@pytest.mark.parametrize("argv", [
    ["cluster", "edges.parquet", "--method", "components", "--out", "out.parquet"],
    ["assign", "--units", "clusters.parquet", "--design", "cluster", "--seed", "1", "--out", "out.parquet"],
    ["exposure", "edges.parquet", "--assignment", "assignment.parquet", "--mapping", "as4", "--out", "out.parquet"],
], ids=["cluster", "assign", "exposure"])
def test_a_command_killed_while_writing_leaves_its_output_absent_or_whole(folder, tmp_path, argv):
    """Killed inside the atomic write (after the data, before the rename): the output is
    absent when there was none, and the previous whole file when there was one."""
    import shutil
    import subprocess
    import sys

    work = tmp_path / "work"
    shutil.copytree(folder, work, ignore=shutil.ignore_patterns("out", "adir"))
    env = {**os.environ, "SPILLOVER_CRASH_AT": "file-before-rename"}
    command = [sys.executable, "-m", "spillover", *argv]
    assert subprocess.run(command, cwd=work, env=env, capture_output=True).returncode == 137
    assert not (work / "out.parquet").exists()
    assert subprocess.run(command, cwd=work, capture_output=True).returncode == 0
    whole = (work / "out.parquet").read_bytes()
    assert subprocess.run(command, cwd=work, env=env, capture_output=True).returncode == 137
    assert (work / "out.parquet").read_bytes() == whole
    assert len(pd.read_parquet(work / "out.parquet")) > 0
