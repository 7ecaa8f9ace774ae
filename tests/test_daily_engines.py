"""The daily job on the DuckDB engine (``spillover run --engine duckdb``): each day's
snapshot read, checked and split into components in SQL, with arms, results and ledger
identical to the memory engine's, day by day; the same one-line errors for bad input."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spillover import synth
from spillover.cli import main
from spillover.engines import get_engine
from spillover.errors import DataWarning, InputError
from spillover.experiment import EXAMPLE, write_example_data
from spillover.ledger import Ledger

NAME = "collab-launch"


def results(folder: Path) -> dict[str, bytes]:
    """Every result file of the experiment (the ledger apart), by path: day.json, arms, effects."""
    root = folder / "results" / NAME
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix != ".duckdb"
            and ".sequential" not in p.parts}  # the band's carried state: a cache, its digest in day.json


def ledger_tables(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    with Ledger(folder / "results" / NAME / "ledger.duckdb") as ledger:
        history = ledger.history(NAME).sort_values(["unit_id", "valid_from"]).reset_index(drop=True)
        components = ledger.components_until(NAME, "2100-01-01")
        return history, components, ledger.events(NAME)


def assert_same(folder: Path, reference: Path, markers: bool = True) -> None:
    """Results and ledger as ``reference``'s (with ``markers=False``, the day.json files
    apart: they record the digests of the files read)."""
    got, expected = results(folder), results(reference)
    if not markers:
        got, expected = ({k: v for k, v in d.items() if not k.endswith("day.json")} for d in (got, expected))
    assert got.keys() == expected.keys(), sorted(set(got) ^ set(expected))
    assert [name for name in expected if got[name] != expected[name]] == []
    for mine, theirs in zip(ledger_tables(folder), ledger_tables(reference)):
        pd.testing.assert_frame_equal(mine, theirs)


def test_a_snapshot_on_duckdb_equals_the_memory_engines(tmp_path):
    """Users, component codes, keys and per-user columns of a churned snapshot with integer
    ids, then with text ids, and a duplicate membership warned about on both engines."""
    day = synth.evolving_memberships(3_000, n_days=2, seed=7)[1]
    day = pd.concat([day, day.iloc[:3]])  # three duplicate memberships
    for ids in ("int", "str"):
        frame = day if ids == "int" else day.assign(user_id="u" + day["user_id"].astype(str))
        path = tmp_path / f"snapshot-{ids}.parquet"
        frame.to_parquet(path)
        with pytest.warns(DataWarning, match="collapsed 3 duplicate membership"):
            memory = get_engine("memory").snapshot(path)
        with pytest.warns(DataWarning, match="collapsed 3 duplicate membership"):
            duck = get_engine("duckdb").snapshot(path)
        assert memory.users.equals(duck.users)
        assert np.array_equal(memory.labels, duck.labels) and memory.keys.equals(duck.keys)
        pd.testing.assert_frame_equal(memory.user_data, duck.user_data, check_names=False)
        assert duck.checksum.startswith("rows-v1:")
        shuffled = tmp_path / f"shuffled-{ids}.csv"
        frame.sample(frac=1.0, random_state=1).to_csv(shuffled, index=False)  # same rows, another order and format
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            assert get_engine("duckdb").snapshot(shuffled).checksum == duck.checksum
            changed = frame.assign(usage=frame["usage"] + (frame["user_id"] == frame["user_id"].iloc[0]))
            changed.to_parquet(tmp_path / "changed.parquet")
            assert get_engine("duckdb").snapshot(tmp_path / "changed.parquet").checksum != duck.checksum


@pytest.mark.parametrize("problem", ["missing user", "two accounts", "conflicting usage", "no account column",
                                     "empty"])
def test_a_bad_snapshot_gets_the_memory_engines_one_line_error_on_duckdb(tmp_path, problem):
    frame = pd.DataFrame({"user_id": [1, 2, 3, 4], "project_id": ["p", "p", "q", "r"],
                          "account_id": ["a", "a", "b", "b"], "usage": [1.0, 2.0, 3.0, 4.0]})
    if problem == "missing user":
        frame["user_id"] = frame["user_id"].astype("Int64").mask(frame.index == 2)
    elif problem == "two accounts":
        frame.loc[1, "account_id"] = "b"
    elif problem == "conflicting usage":
        frame = pd.concat([frame, frame.iloc[[0]].assign(project_id="q", account_id="b", usage=9.0)])
    elif problem == "no account column":
        frame = frame.drop(columns="account_id")
    else:
        frame = frame.iloc[:0]
    path = tmp_path / "memberships.parquet"
    frame.to_parquet(path)
    errors = []
    for name in ("memory", "duckdb"):
        with pytest.raises(InputError) as caught:
            get_engine(name).snapshot(path)
        errors.append(str(caught.value))
    assert errors[0] == errors[1] and "\n" not in errors[0]


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    """The README's example, 30 days with churn (1,000 users on day one, to keep it quick)."""
    folder = tmp_path_factory.mktemp("thirty-days")
    (folder / "experiment.toml").write_text(EXAMPLE)
    write_example_data(folder / "experiment.toml", n_users=1_000, n_days=30, seed=2)
    return folder


def copy_of(example: Path, target: Path) -> Path:
    shutil.copytree(example, target, ignore=shutil.ignore_patterns("results"))
    return target


@pytest.fixture(scope="module")
def on_memory(example, tmp_path_factory) -> Path:
    folder = copy_of(example, tmp_path_factory.mktemp("memory") / "exp")
    assert main(["run", str(folder / "experiment.toml"), "--json"]) == 0
    return folder


@pytest.mark.slow  # 30 days of the daily job, twice
def test_thirty_days_on_duckdb_give_the_memory_engines_arms_results_and_ledger(example, on_memory, tmp_path):
    """Day by day: every day's arms, effects and summary byte for byte, the ledger's arm
    history, components and events equal; the engine named in the file or on the command line."""
    folder = copy_of(example, tmp_path / "exp")
    text = (folder / "experiment.toml").read_text().replace('engine = "memory"', 'engine = "duckdb"')
    (folder / "experiment.toml").write_text(text.replace('# memory_limit = "4GB"', 'memory_limit = "1GB"'))
    assert main(["run", str(folder / "experiment.toml"), "--json"]) == 0
    assert_same(folder, on_memory)
    with Ledger(folder / "results" / NAME / "ledger.duckdb") as ledger:
        assert all(c.startswith("rows-v1:") for c in ledger.checksums(NAME).values())


@pytest.mark.slow
def test_an_experiment_moves_between_engines_and_a_rewritten_snapshot_is_checked_by_its_rule(example, on_memory,
                                                                                             tmp_path):
    """Ten days on memory, the rest on DuckDB: the same as thirty on memory. Then every
    snapshot is rewritten (same rows, other bytes): each day is checked by the rule its
    recorded checksum names, and nothing changes; a changed one is refused."""
    folder = copy_of(example, tmp_path / "exp")
    experiment = str(folder / "experiment.toml")
    assert main(["run", experiment, "--date", "2026-11-10", "--json"]) == 0
    assert main(["run", experiment, "--engine", "duckdb", "--json"]) == 0
    assert_same(folder, on_memory)
    for path in sorted((folder / "data").glob("memberships-*.parquet")):  # a loop over 30 small files
        pd.read_parquet(path).iloc[::-1].to_parquet(path, index=False)
    for engine in ("memory", "duckdb"):
        assert main(["run", experiment, "--engine", engine, "--json"]) == 0
    assert_same(folder, on_memory, markers=False)
    day = folder / "data" / "memberships-2026-11-20.parquet"
    pd.read_parquet(day).iloc[1:].to_parquet(day)
    with pytest.raises(InputError, match="changed after the day was recorded"):
        from spillover.daily import run_pending
        from spillover.experiment import load_config

        run_pending(load_config(experiment), engine=get_engine("duckdb"))


@pytest.mark.spark  # five days of the daily job with each snapshot read on Spark (local mode)
def test_the_first_days_on_spark_give_the_memory_engines_arms_results_and_ledger(example, on_memory, tmp_path):
    from spillover.engines.spark import java_available

    if not java_available():
        pytest.skip("no Java runtime here: the Spark engine needs Java 17")
    folder = copy_of(example, tmp_path / "exp")
    last = "2026-11-05"
    assert main(["run", str(folder / "experiment.toml"), "--engine", "spark", "--spark-master", "local[2]",
                 "--date", last, "--json"]) == 0
    got, expected = results(folder), results(on_memory)
    assert sorted(got) == sorted(name for name in expected if name[:10] <= last)
    assert [name for name in got if got[name] != expected[name]] == []
    for mine, theirs in zip(ledger_tables(folder), ledger_tables(on_memory)):  # valid_to follows later days
        dated = "valid_from" if "valid_from" in theirs else "date"
        theirs = theirs[pd.to_datetime(theirs[dated]) <= pd.Timestamp(last)].drop(columns="valid_to", errors="ignore")
        pd.testing.assert_frame_equal(mine.drop(columns="valid_to", errors="ignore").reset_index(drop=True),
                                      theirs.reset_index(drop=True))


@pytest.mark.slow  # a kill at every crash point, each followed by a run to the end
def test_killed_mid_day_on_duckdb_and_run_again_the_results_are_the_memory_engines(example, on_memory, tmp_path):
    """Killed (SIGKILL, exit 137) at each crash point of a day, on day 2, 9, 17, 24 or 30
    (one each), then run again: the results and ledger of an uninterrupted memory run."""
    from spillover.faults import CRASH_POINTS

    def job(folder: Path, crash_at: str = "") -> int:
        return subprocess.run([sys.executable, "-m", "spillover", "run", str(folder / "experiment.toml"), "--engine",
                               "duckdb", "--json"], env={**os.environ, "SPILLOVER_CRASH_AT": crash_at},
                              capture_output=True, text=True).returncode

    for trial, point in enumerate(f"{p}:{k}" for p, k in zip(CRASH_POINTS, (2, 9, 17, 24, 30))):  # kill trials
        folder = copy_of(example, tmp_path / f"trial-{trial}")
        assert job(folder, point) == 137, point
        assert job(folder) == 0, point
        assert_same(folder, on_memory)
        assert not list((folder / "results").rglob("*.partial"))


@pytest.mark.spark  # three kills on Spark (local mode), each followed by a run to day 5
def test_killed_mid_day_on_spark_and_run_again_the_results_are_the_memory_engines(example, on_memory, tmp_path):
    """Killed (SIGKILL, exit 137) on Spark at the ledger's commit, a result file's rename or
    before a day's marker (the 2nd, 3rd or 5th time the job passes it), then run again: the
    first five days' results are the uninterrupted memory run's, byte for byte."""
    from spillover.engines.spark import java_available

    if not java_available():
        pytest.skip("no Java runtime here: the Spark engine needs Java 17")
    last = "2026-11-05"

    def job(folder: Path, crash_at: str = "") -> int:
        return subprocess.run([sys.executable, "-m", "spillover", "run", str(folder / "experiment.toml"), "--engine",
                               "spark", "--spark-master", "local[2]", "--date", last, "--json"],
                              env={**os.environ, "SPILLOVER_CRASH_AT": crash_at}, capture_output=True,
                              text=True).returncode

    expected = {name: data for name, data in results(on_memory).items() if name[:10] <= last}
    for trial, point in enumerate(("ledger-before-commit:2", "file-before-rename:3", "before-marker:5")):
        folder = copy_of(example, tmp_path / f"trial-{trial}")
        assert job(folder, point) == 137, point
        assert job(folder) == 0, point
        got = results(folder)
        assert sorted(got) == sorted(expected) and [n for n in got if got[n] != expected[n]] == [], point
        assert not list((folder / "results").rglob("*.partial"))


def test_run_refuses_an_engine_without_the_daily_step(tmp_path, capsys):
    path = tmp_path / "experiment.toml"
    path.write_text(EXAMPLE.replace('engine = "memory"', 'engine = "polars"'))
    assert main(["run", str(path), "--json"]) != 0
    assert "[run.engine] 'polars' is not one of memory, duckdb, spark" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("ids, policy", [("str", "exclude"), pytest.param("int", "majority", marks=pytest.mark.slow),
                                         pytest.param("int", "exclude", marks=pytest.mark.slow),
                                         pytest.param("str", "majority", marks=pytest.mark.slow)])
def test_evolve_on_duckdb_writes_the_memory_engines_rows_under_either_merge_policy(tmp_path, policy, ids):
    """Eight days of churn (merges across arms included) through ``evolve`` with the DuckDB
    engine beside the ledger and without: the arm history, components, events and reports equal."""
    from spillover.evolve import evolve, start

    days = synth.evolving_memberships(1_500, n_days=8, seed=11)
    if ids == "str":
        days = [d.assign(user_id="u" + d["user_id"].astype(str)) for d in days]
    paths = []
    for i, frame in enumerate(days):  # a loop over 8 small snapshots
        paths.append(tmp_path / f"m{i}.parquet")
        frame.to_parquet(paths[-1], index=False)
    tables, reports = [], []
    for name in ("memory", "duckdb"):
        with Ledger(tmp_path / f"{name}.duckdb") as ledger:
            engine = get_engine(name).beside(ledger)
            start(ledger, engine.snapshot(paths[0]), "2026-11-01", salt="s", design="cluster", experiment="e")
            reports.append([evolve(ledger, engine.snapshot(path), f"2026-11-0{i + 2}", experiment="e",
                                   merge_policy=policy, engine=engine) for i, path in enumerate(paths[1:])])
            history = ledger.history("e").sort_values(["unit_id", "valid_from"]).reset_index(drop=True)
            events = ledger.events("e").sort_values(["date", "event", "component", "detail"]).reset_index(drop=True)
            tables.append((history, ledger.components_until("e", "2026-12-01"), events))
    assert [r.to_dict() for r in reports[0]] == [r.to_dict() for r in reports[1]]
    assert sum(r.merged_across_arms for r in reports[0]) > 0  # the policy had something to decide
    for mine, theirs in zip(*tables):
        pd.testing.assert_frame_equal(mine, theirs)


@pytest.mark.parametrize("name", ["memory", "duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def test_a_corrupt_snapshot_is_one_line_on_every_engine(tmp_path, name):
    """No Java or DuckDB traceback: the file and why it cannot be read, in one line."""
    from spillover.engines.spark import java_available

    if name == "spark" and not java_available():
        pytest.skip("no Java runtime here: the Spark engine needs Java 17")
    path = tmp_path / "memberships.parquet"
    path.write_bytes(b"not a parquet file")
    engine = get_engine(name, **({"master": "local[1]"} if name == "spark" else {}))
    with pytest.raises(InputError, match=r"memberships '.*memberships.parquet': cannot read") as caught:
        engine.snapshot(path)
    assert len(str(caught.value).splitlines()) == 1


def test_run_refuses_a_memory_limit_that_is_not_a_size_before_writing_anything(tmp_path, capsys):
    path = tmp_path / "experiment.toml"
    path.write_text(EXAMPLE)
    assert main(["run", str(path), "--engine", "duckdb", "--memory-limit", "lots", "--json"]) == 2
    assert "--memory-limit 'lots' is not a size such as 4GB or 512MB" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()
