"""The daily job from one experiment file: config errors a new user would make, a run of
many days that estimates the known effect, idempotence, no going back in time, survival
of a kill anywhere in a day (byte-identical results), and the report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spillover.cli import main
from spillover.experiment import EXAMPLE, load_config, run, write_example_data
from spillover.faults import CRASH_POINTS

N_USERS, N_DAYS = 2_000, 4


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    """An experiment file and its example data (snapshots with churn, known effect 0.3)."""
    folder = tmp_path_factory.mktemp("example")
    (folder / "experiment.toml").write_text(EXAMPLE)
    write_example_data(folder / "experiment.toml", n_users=N_USERS, n_days=N_DAYS, seed=1)
    return folder


def copy_of(example: Path, tmp_path: Path) -> Path:
    target = tmp_path / "exp"
    shutil.copytree(example, target, ignore=shutil.ignore_patterns("results"))
    return target


DATES = [f"2026-11-0{d}" for d in range(1, N_DAYS + 1)]


# --------------------------------------------------------------------------- the file


@pytest.mark.parametrize("change, message", [
    (("n_bins = 2", "n_bins = 2\ncolour = 'red'"), r"\[design\] unknown key 'colour'; the keys are kind"),
    (("n_bins = 2", "n_bins = 'three'"), r"\[design.n_bins\] must be a int, not str 'three'"),
    (("arm_weights = [0.5, 0.5]", "arm_weights = [0.5, 0.6]"), r"\[design.arm_weights\] .* sum to 1.1; shares must"),
    (('kind = "stratified-cluster"', 'kind = "individual"'), r"\[design.kind\] 'individual' is not one of cluster"),
    (('method = "ols-cluster"', 'method = "ols"'), r"\[analysis.method\] 'ols' is not one of ols-cluster"),
    (('salt = "collab-launch-2026"', ''), r"\[experiment.salt\] is missing"),
    (('[output]', '[outputs]'), r"\[outputs\] unknown section"),
    (('sample_fraction = 0.2', 'sample_fraction = 0.2\ntreat_fraction = 0.5'),
     r"the stratified-cluster design does not use \['treat_fraction'\]"),
    (('"data/memberships-{date}.parquet"', '"data/memberships.parquet"'), r"has no \{date\}: one file a day"),
])
def test_config_errors_are_one_line_naming_the_key_and_write_nothing(tmp_path, capsys, change, message):
    path = tmp_path / "experiment.toml"
    path.write_text(EXAMPLE.replace(*change))
    assert main(["run", str(path), "--date", "2026-11-01"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and __import__("re").search(message, error), error
    assert not (tmp_path / "results").exists()


def test_a_missing_snapshot_or_file_is_one_line(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.toml")]) == 2
    assert "no such experiment file; `spillover init" in capsys.readouterr().err
    (tmp_path / "experiment.toml").write_text(EXAMPLE)
    assert main(["validate", str(tmp_path / "experiment.toml")]) == 2
    assert "[inputs.memberships] no snapshot matches 'data/memberships-{date}.parquet'" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "experiment.toml"), "--date", "2026-11-01"]) == 2
    assert "no snapshot for 2026-11-01" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_init_writes_a_file_that_validates(tmp_path, capsys):
    assert main(["init", str(tmp_path / "experiment.toml"), "--example", "--days", "2", "--users", "2000"]) == 0
    assert main(["validate", str(tmp_path / "experiment.toml"), "--json"]) == 0
    capsys.readouterr()
    assert main(["init", str(tmp_path / "experiment.toml")]) == 2  # no silent overwrite
    assert "exists; pass --force" in capsys.readouterr().err


# --------------------------------------------------------------------------- days


def test_days_run_in_order_estimate_the_known_effect_and_are_idempotent(example, tmp_path, capsys):
    folder = copy_of(example, tmp_path)
    config = load_config(folder / "experiment.toml")
    days = [run(config, date) for date in DATES]
    assert [d["date"] for d in days] == DATES
    assert days[-1]["ledger"]["created"] > 0 and sum(d["ledger"]["merged"] for d in days) > 0
    effect = days[-1]["effects"][0]
    assert effect["ci_low"] < 0.3 < effect["ci_high"], effect  # the example's true effect
    before = {p: p.read_bytes() for p in (config.results).rglob("*") if p.is_file() and p.suffix != ".duckdb"
            and ".sequential" not in p.parts}  # the band's carried state: a cache, its digest in day.json
    assert main(["run", str(folder / "experiment.toml"), "--date", DATES[-1]]) == 0
    assert "already done: nothing changes" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in before} == before
    assert main(["run", str(folder / "experiment.toml"), "--date", "2026-10-31"]) == 2
    assert "2026-10-31 is before 2026-11-01, the experiment's first day" in capsys.readouterr().err


def test_run_up_to_a_date_does_the_days_before_it_and_a_snapshot_older_than_day_one_is_left_out(
        example, tmp_path, capsys):
    folder = copy_of(example, tmp_path)
    assert main(["run", str(folder / "experiment.toml"), "--date", DATES[2], "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [d["date"] for d in printed["decisions"]] == DATES[:3]
    assert {d["action"] for d in printed["decisions"]} == {"run"}
    assert main(["run", str(folder / "experiment.toml"), "--date", DATES[1], "--json"]) == 0  # done: nothing changes
    assert {d["action"] for d in json.loads(capsys.readouterr().out)["decisions"]} == {"done"}
    data = folder / "data"
    (data / "memberships-2026-10-31.parquet").write_bytes((data / f"memberships-{DATES[0]}.parquet").read_bytes())
    with pytest.warns(UserWarning, match="predate the experiment's first day 2026-11-01 and are left out"):
        run(load_config(folder / "experiment.toml"))


def run_job(folder: Path, crash_at: str | None = None) -> int:
    env = {**os.environ, "SPILLOVER_CRASH_AT": crash_at or ""}
    return subprocess.run([sys.executable, "-m", "spillover", "run", str(folder / "experiment.toml"), "--json"],
                          env=env, capture_output=True, text=True).returncode


def result_files(folder: Path) -> dict[str, bytes]:
    root = folder / "results" / "collab-launch"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix != ".duckdb" and p.name != "report.html"
            and ".sequential" not in p.parts}  # the band's carried state: a cache, its digest in day.json


@pytest.mark.slow
def test_killed_anywhere_in_a_day_and_run_again_the_results_are_byte_identical(example, tmp_path):
    """Ten kills: every crash point once and five again, on different days (the points sit
    inside the ledger's transaction, inside an atomic file write, and between steps)."""
    reference = copy_of(example, tmp_path / "reference")
    assert run_job(reference) == 0
    expected = result_files(reference)
    trials = list(CRASH_POINTS) + list(CRASH_POINTS)
    for trial, point in enumerate(trials):  # a loop over kill trials
        folder = copy_of(example, tmp_path / f"trial-{trial}")
        # run the first days cleanly, then kill the job at `point` on the next one
        days_before = trial % N_DAYS
        for date in DATES[:days_before]:
            assert main(["run", str(folder / "experiment.toml"), "--date", date, "--json"]) == 0
        assert run_job(folder, crash_at=point) == 137, point
        assert run_job(folder) == 0, point
        got = result_files(folder)
        assert got.keys() == expected.keys(), (point, sorted(set(got) ^ set(expected)))
        assert all(got[name] == expected[name] for name in expected), (point, [n for n in expected
                                                                               if got[n] != expected[n]])
        assert not list((folder / "results").rglob("*.partial"))


def test_the_report_shows_every_day_and_a_verdict(example, tmp_path, capsys):
    folder = copy_of(example, tmp_path)
    assert main(["run", str(folder / "experiment.toml"), "--json"]) == 0  # every snapshot, in order
    day = json.loads(capsys.readouterr().out)
    assert day["date"] == DATES[-1]
    assert main(["report", str(folder / "experiment.toml"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    path = Path(printed["report"])
    text = path.read_text()
    assert all(date in text for date in DATES)
    assert [row["date"] for row in printed["days"]] == DATES  # the printed table: one row a day
    assert all(row["units analysed"] <= row["units assigned"] for row in printed["days"])
    assert printed["verdict"] in text
    assert "Verdict on 2026-11-04" in text and ("ship" in text or "not enough data yet" in text)
    assert "data:image/png;base64," in text


@pytest.mark.slow
def test_the_report_renders_in_headless_chromium(example, tmp_path):
    from tests.test_report import find_browser

    browser = find_browser()
    if browser is None:
        pytest.skip("no Chromium here: .ci/run installs Debian's chromium where it can")
    folder = copy_of(example, tmp_path)
    assert main(["run", str(folder / "experiment.toml"), "--json"]) == 0
    assert main(["report", str(folder / "experiment.toml"), "--out", str(tmp_path / "report.html")]) == 0
    shot = tmp_path / "report.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}",
                    "--window-size=1280,2000", f"--screenshot={shot}", (tmp_path / "report.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    from PIL import Image

    histogram = Image.open(shot).convert("L").histogram()
    assert 0.005 < sum(histogram[:128]) / sum(histogram) < 0.5, "the page shows text and a plot"
