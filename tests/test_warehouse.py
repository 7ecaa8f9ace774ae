"""The ledger published where a warehouse reads it (issue 29, point 2): each committed day
as Parquet partitions (experiment=/date=), made visible by one rename; read back, the
same history, seals that verify, files that match their markers; a void withdraws days
with the rows it moved kept; a publish killed at any point is finished by the next run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from spillover.cli import main
from spillover.errors import LedgerError
from spillover.experiment import EXAMPLE, write_example_data
from spillover.ledger import Ledger
from spillover.warehouse import open_warehouse, publish, verify_files

NAME = "collab-launch"


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    """The README's example, 6 days with churn (600 users on day one)."""
    folder = tmp_path_factory.mktemp("six-days")
    (folder / "experiment.toml").write_text(EXAMPLE.replace('engine = "memory"', 'engine = "duckdb"'))
    write_example_data(folder / "experiment.toml", n_users=600, n_days=6, seed=3)
    return folder


def copy_of(example: Path, target: Path) -> Path:
    shutil.copytree(example, target, ignore=shutil.ignore_patterns("results", "warehouse"))
    return target


def tables(ledger: Ledger) -> list[pd.DataFrame]:
    return [ledger.history(NAME), ledger.components_until(NAME, "2099-01-01"), ledger.events(NAME),
            ledger.days(NAME).drop(columns="recorded"), ledger.audit(NAME)]


def assert_same_ledger(folder: Path, warehouse: Path) -> None:
    with Ledger(folder / "results" / NAME / "ledger.duckdb") as ledger, open_warehouse(warehouse) as copy:
        for mine, theirs in zip(tables(ledger), tables(copy)):
            pd.testing.assert_frame_equal(mine.reset_index(drop=True), theirs.reset_index(drop=True))
        assert copy.verify(NAME) == [] and verify_files(warehouse) == []


def test_a_run_publishes_every_day_and_the_warehouse_reads_back_the_ledger(example, tmp_path, capsys):
    folder = copy_of(example, tmp_path / "exp")
    warehouse = tmp_path / "warehouse"
    assert main(["run", str(folder / "experiment.toml"), "--warehouse", str(warehouse), "--json"]) == 0
    capsys.readouterr()
    days = sorted(p.name for p in (warehouse / f"experiment={NAME}").glob("date=*"))
    assert days == [f"date=2026-11-0{d}" for d in range(1, 7)]
    assert_same_ledger(folder, warehouse)
    # what a warehouse sees: Hive partitions, no rows outside committed days, partition columns from the path
    arms = duckdb.sql(f"SELECT * FROM read_parquet('{warehouse}/experiment=*/date=*/arms.parquet', "
                      "hive_partitioning = true)").df()
    with Ledger(folder / "results" / NAME / "ledger.duckdb") as ledger:
        assert len(arms) == len(ledger.history(NAME)) and set(arms["experiment"]) == {NAME}
        assert publish(ledger, NAME, warehouse) == {"published": [], "withdrawn": []}  # idempotent
    # the command line reads the warehouse as it reads the file
    for source in (["--ledger", str(folder / "results" / NAME / "ledger.duckdb")], ["--warehouse", str(warehouse)]):
        assert main(["ledger", "show", *source, "--json"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert main(["ledger", "verify", *source, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["intact"] is True
        assert [d["date"] for d in shown["days"]] == [f"2026-11-0{d}" for d in range(1, 7)]
    assert main(["ledger", "export", "--warehouse", str(warehouse), "--table", "current", "--out",
                 str(tmp_path / "current.csv")]) == 0
    assert main(["ledger", "void", "--warehouse", str(warehouse), "--date", "2026-11-03", "--reason", "x"]) != 0
    assert "writes the ledger file" in capsys.readouterr().err


def test_an_edited_file_or_row_in_the_warehouse_is_found(example, tmp_path):
    folder = copy_of(example, tmp_path / "exp")
    warehouse = tmp_path / "warehouse"
    assert main(["run", str(folder / "experiment.toml"), "--warehouse", str(warehouse), "--json"]) == 0
    day = warehouse / f"experiment={NAME}" / "date=2026-11-04" / "arms.parquet"
    frame = pd.read_parquet(day)
    if len(frame) == 0:  # a day with no new arm rows: edit the components instead
        day = day.with_name("components.parquet")
        frame = pd.read_parquet(day)
    column = "arm" if "arm" in frame else "stratum"
    frame.loc[0, column] = frame.loc[0, column] + 1
    frame.to_parquet(day, index=False)
    assert any("SHA-256 differs" in p for p in verify_files(warehouse))
    with open_warehouse(warehouse) as copy:
        assert copy.verify(NAME)[0].startswith("day 2026-11-04")  # the seal, recomputed from the rows
    with pytest.raises(LedgerError, match="read-only"):
        with open_warehouse(warehouse) as copy:
            copy.void(NAME, "2026-11-05", reason="no")


def test_a_void_withdraws_days_and_keeps_the_rows_it_moved(example, tmp_path, capsys):
    folder = copy_of(example, tmp_path / "exp")
    warehouse = tmp_path / "warehouse"
    experiment = str(folder / "experiment.toml")
    ledger = str(folder / "results" / NAME / "ledger.duckdb")
    assert main(["run", experiment, "--warehouse", str(warehouse), "--json"]) == 0
    assert main(["ledger", "void", "--ledger", ledger, "--date", "2026-11-05", "--reason", "wrong snapshot"]) == 0
    assert main(["ledger", "publish", "--ledger", ledger, "--warehouse", str(warehouse), "--json"]) == 0
    published = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert published["withdrawn"] == 2 and published["last_date"] == "2026-11-04"
    home = warehouse / f"experiment={NAME}"
    assert not (home / "date=2026-11-05").exists() and (home / "_voided" / "void=1" / "_COMMITTED").exists()
    assert_same_ledger(folder, warehouse)  # the audit row and the voided rows verify from the warehouse alone
    assert main(["run", experiment, "--warehouse", str(warehouse), "--json"]) == 0  # the days recorded again
    assert (home / "date=2026-11-06").exists()
    assert_same_ledger(folder, warehouse)


def test_another_experiment_of_the_same_name_is_refused(example, tmp_path):
    first, second = copy_of(example, tmp_path / "a"), copy_of(example, tmp_path / "b")
    text = (second / "experiment.toml").read_text()
    (second / "experiment.toml").write_text(text.replace('salt = "collab-launch-2026"', 'salt = "other"'))
    warehouse = tmp_path / "warehouse"
    assert main(["run", str(first / "experiment.toml"), "--warehouse", str(warehouse), "--date", "2026-11-01",
                 "--json"]) == 0
    assert main(["run", str(second / "experiment.toml"), "--warehouse", str(warehouse), "--date", "2026-11-01",
                 "--json"]) != 0


@pytest.mark.slow  # six runs of the daily job, four of them killed
def test_a_publish_killed_at_any_point_is_finished_by_the_next_run(example, tmp_path):
    """SIGKILL (exit 137) while a day's partition is written but not yet renamed (days 1, 3
    and 6), and inside the ledger's transaction with a warehouse: the next run leaves the
    warehouse equal to the ledger, every day whole, nothing in flight."""
    from spillover.faults import WAREHOUSE_POINTS

    def job(folder: Path, crash_at: str = "") -> int:
        return subprocess.run([sys.executable, "-m", "spillover", "run", str(folder / "experiment.toml"),
                               "--warehouse", str(folder / "warehouse"), "--json"],
                              env={**os.environ, "SPILLOVER_CRASH_AT": crash_at}, capture_output=True,
                              text=True).returncode

    points = [f"{WAREHOUSE_POINTS[0]}:{k}" for k in (1, 3, 6)] + ["ledger-before-commit:4"]
    for trial, point in enumerate(points):  # a loop over kill trials
        folder = copy_of(example, tmp_path / f"trial-{trial}")
        assert job(folder, point) == 137, point
        committed = [p for p in (folder / "warehouse").rglob("date=*") if p.is_dir()]
        assert all((p / "_COMMITTED").exists() for p in committed)  # no day half visible
        assert job(folder) == 0, point
        assert_same_ledger(folder, folder / "warehouse")
        assert not (folder / "warehouse" / "_staging").exists()


@pytest.mark.spark  # what a team's Spark reads: partitions discovered, hidden files skipped
def test_spark_reads_the_published_days_as_partitions(example, tmp_path):
    from spillover.engines import get_engine
    from spillover.engines.spark import java_available

    if not java_available():
        pytest.skip("no Java runtime here: Spark needs Java 17")
    folder = copy_of(example, tmp_path / "exp")
    warehouse = tmp_path / "warehouse"
    assert main(["run", str(folder / "experiment.toml"), "--warehouse", str(warehouse), "--json"]) == 0
    spark = get_engine("spark", master="local[1]").spark

    def read(table: str):
        return spark.read.option("basePath", str(warehouse)).parquet(
            str(warehouse / "experiment=*" / "date=*" / f"{table}.parquet")).toPandas()

    arms, events = read("arms"), read("events")
    with Ledger(folder / "results" / NAME / "ledger.duckdb") as ledger:
        assert len(arms) == len(ledger.history(NAME)) and len(events) == len(ledger.events(NAME))
    assert set(arms["experiment"]) == {NAME} and arms["date"].nunique() == 6  # partition columns from the path
