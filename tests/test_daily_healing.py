"""The daily job heals from the data of a real warehouse (issue 26) on a 10-day example:
a late snapshot is carried and then replayed, late outcomes are analysed when they
arrive, a replaced snapshot is refused with its checksums, a voided day runs again, and a
changed salt or design is refused. A healed run ends byte-identical (result files and
ledger arms) to an on-time one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from spillover.cli import main
from spillover.experiment import EXAMPLE, write_example_data
from spillover.ledger import Ledger

N_USERS, N_DAYS = 1_500, 10
DATES = [f"2026-11-{d:02d}" for d in range(1, N_DAYS + 1)]
NAME = "collab-launch"


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ten-days")
    (folder / "experiment.toml").write_text(EXAMPLE)
    write_example_data(folder / "experiment.toml", n_users=N_USERS, n_days=N_DAYS, seed=4)
    return folder


@pytest.fixture(scope="module")
def on_time(example, tmp_path_factory) -> Path:
    """The example run on time, every day as it came."""
    folder = copy_of(example, tmp_path_factory.mktemp("on-time"))
    assert main(["run", str(folder / "experiment.toml"), "--json"]) == 0
    return folder


def copy_of(example: Path, tmp_path: Path) -> Path:
    target = tmp_path / "exp"
    shutil.copytree(example, target, ignore=shutil.ignore_patterns("results"))
    return target


def results(folder: Path) -> dict[str, bytes]:
    root = folder / "results" / NAME
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix != ".duckdb" and p.name != "report.html"
            and ".sequential" not in p.parts}  # the band's carried state: a cache, its digest in day.json


def ledger_arms(folder: Path):
    with Ledger(folder / "results" / NAME / "ledger.duckdb") as ledger:
        return ledger.history(NAME).sort_values(["unit_id", "valid_from"]).reset_index(drop=True)


def run(folder: Path, capsys, *extra: str) -> tuple[int, dict | str]:
    """``spillover run --json``: its exit code, and the printed day (the error when refused;
    the warnings it printed under ``"stderr"``)."""
    rc = main(["run", str(folder / "experiment.toml"), "--json", *extra])
    captured = capsys.readouterr()
    return rc, ({**json.loads(captured.out), "stderr": captured.err} if rc == 0 else captured.err)


def assert_same_as_on_time(folder: Path, on_time: Path) -> None:
    got, expected = results(folder), results(on_time)
    assert got.keys() == expected.keys(), sorted(set(got) ^ set(expected))
    assert [name for name in expected if got[name] != expected[name]] == []
    assert ledger_arms(folder).equals(ledger_arms(on_time))


@pytest.mark.slow  # an end-to-end run of the daily job (the fast set keeps the quick refusals)
def test_a_late_snapshot_is_carried_then_replayed_to_what_an_on_time_run_gives(example, on_time, tmp_path, capsys):
    folder = copy_of(example, tmp_path)
    late = folder / "data" / f"memberships-{DATES[3]}.parquet"
    held = tmp_path / "held.parquet"
    shutil.move(late, held)
    rc, day = run(folder, capsys)
    assert rc == 0 and day["date"] == DATES[-1]
    assert f"DataWarning: exp/experiment.toml: no snapshot for {DATES[3]} while later ones exist: arms of " \
           f"{DATES[2]} carried" in day["stderr"].replace("experiment.toml", "exp/experiment.toml")
    actions = {d["date"]: d["action"] for d in day["decisions"]}
    assert actions[DATES[3]] == "carry" and {actions[d] for d in DATES if d != DATES[3]} == {"run"}
    carried = json.loads((folder / "results" / NAME / DATES[3] / "day.json").read_text())
    assert carried["carried_from"] == DATES[2] and carried["inputs"]["memberships"] is None
    assert results(folder) != results(on_time)  # the carried day differs from the on-time one
    shutil.move(held, late)  # the snapshot arrives: the next run replays from that day by itself
    rc, day = run(folder, capsys)
    assert rc == 0
    replay = [d for d in day["decisions"] if d["action"] == "replay"]
    assert [d["date"] for d in replay] == [DATES[3]] and "arrived after it was carried" in replay[0]["reason"]
    assert_same_as_on_time(folder, on_time)
    with Ledger(folder / "results" / NAME / "ledger.duckdb") as ledger:
        audit = ledger.audit(NAME)
    assert audit["action"].tolist() == ["void"] and f"replaying {DATES[3]} to {DATES[-1]}" in audit["detail"][0]
    assert main(["report", str(folder / "experiment.toml"), "--json"]) == 0
    page = Path(json.loads(capsys.readouterr().out)["report"]).read_text()
    assert "Timeline" in page and "arrived after it was carried" in page


@pytest.mark.slow  # an end-to-end run of the daily job (the fast set keeps the quick refusals)
def test_late_outcomes_are_analysed_on_the_next_run(example, on_time, tmp_path, capsys):
    folder = copy_of(example, tmp_path)
    held = {d: tmp_path / f"outcomes-{d}.parquet" for d in (DATES[5], DATES[-1])}
    for date, place in held.items():
        shutil.move(folder / "data" / f"outcomes-{date}.parquet", place)
    rc, day = run(folder, capsys)
    assert rc == 0 and day["effects"] == []
    for date, place in held.items():
        shutil.move(place, folder / "data" / f"outcomes-{date}.parquet")
    rc, day = run(folder, capsys)
    assert rc == 0 and day["effects"]
    again = {d["date"]: d["reason"] for d in day["decisions"] if d["action"] == "reanalyse"}
    assert set(again) == set(DATES[5:])  # the two days whose outcomes arrived, and (sequential) every day after
    assert {d for d, why in again.items() if why.startswith("outcomes arrived")} == set(held)
    assert {d for d, why in again.items() if "always-valid band is recomputed" in why} == set(DATES[6:-1])
    assert_same_as_on_time(folder, on_time)


@pytest.mark.slow  # an end-to-end run of the daily job (the fast set keeps the quick refusals)
def test_a_replaced_snapshot_is_refused_with_its_checksums_until_the_day_is_voided(example, on_time, tmp_path,
                                                                                  capsys):
    folder = copy_of(example, tmp_path)
    assert run(folder, capsys)[0] == 0
    data = folder / "data"
    original = (data / f"memberships-{DATES[4]}.parquet").read_bytes()
    (data / f"memberships-{DATES[4]}.parquet").write_bytes((data / f"memberships-{DATES[5]}.parquet").read_bytes())
    before = results(folder)
    rc, error = run(folder, capsys)
    assert rc == 2 and f"the snapshot of {DATES[4]} changed after the day was recorded (checksum" in error
    assert "spillover ledger void --ledger" in error and results(folder) == before  # nothing written
    (data / f"memberships-{DATES[4]}.parquet").write_bytes(original)  # the original, rewritten: same bytes
    assert run(folder, capsys)[0] == 0
    assert_same_as_on_time(folder, on_time)


@pytest.mark.slow  # an end-to-end run of the daily job (the fast set keeps the quick refusals)
def test_a_voided_day_runs_again_and_the_report_shows_only_recorded_days(example, on_time, tmp_path, capsys):
    folder = copy_of(example, tmp_path)
    assert run(folder, capsys)[0] == 0
    ledger = str(folder / "results" / NAME / "ledger.duckdb")
    assert main(["ledger", "void", "--ledger", ledger, "--date", DATES[6], "--reason", "bad export"]) == 0
    capsys.readouterr()
    assert main(["report", str(folder / "experiment.toml"), "--json"]) == 0
    shown = [row["date"] for row in json.loads(capsys.readouterr().out)["days"]]
    assert shown == DATES[:6]  # the voided days' old results are not reported
    rc, day = run(folder, capsys, "--date", DATES[6])
    assert rc == 0 and [d["action"] for d in day["decisions"]][6:] == ["run"]
    rc, day = run(folder, capsys)
    assert_same_as_on_time(folder, on_time)


@pytest.mark.parametrize("change, difference", [
    (('salt = "collab-launch-2026"', 'salt = "collab-launch-2027"'),
     "salt 'collab-launch-2026' -> 'collab-launch-2027'"),
    (("sample_fraction = 0.2", "sample_fraction = 0.3"), "sample_fraction 0.2 -> 0.3"),
    (('kind = "stratified-cluster"', 'kind = "cluster"'), "design 'stratified-cluster' -> 'cluster'"),
])
def test_a_changed_salt_or_design_is_refused_with_the_difference(example, tmp_path, capsys, change, difference):
    folder = copy_of(example, tmp_path)
    for date in DATES[3:]:
        (folder / "data" / f"memberships-{date}.parquet").unlink()
    assert run(folder, capsys)[0] == 0
    before = results(folder)
    path = folder / "experiment.toml"
    text = path.read_text()
    if "kind" in change[0]:
        text = text.replace("sample_fraction = 0.2", "").replace("arm_weights = [0.5, 0.5]", "") \
                   .replace('strata_by = ["size", "usage"]', "").replace("n_bins = 2", "")
    path.write_text(text.replace(*change))
    rc, error = run(folder, capsys)
    assert rc == 2 and difference in error, error
    assert "new experiment under a new [experiment] name" in error and len(error.strip().splitlines()) == 1
    assert results(folder) == before


@pytest.mark.slow
def test_killed_during_a_replay_and_run_again_the_results_are_those_of_an_on_time_run(example, on_time, tmp_path):
    """A late snapshot arrives; the replay that follows is killed at every crash point, at
    its first pass and later in the replay (the 3rd and 5th pass: days further on), and
    the next run ends where an uninterrupted one would."""
    import os
    import subprocess
    import sys

    from spillover.faults import CRASH_POINTS

    def job(folder: Path, crash_at: str = "") -> int:
        return subprocess.run([sys.executable, "-m", "spillover", "run", str(folder / "experiment.toml"), "--json"],
                              env={**os.environ, "SPILLOVER_CRASH_AT": crash_at}, capture_output=True,
                              text=True).returncode

    late = f"memberships-{DATES[3]}.parquet"
    for trial, point in enumerate(f"{p}:{k}" for p in CRASH_POINTS for k in (1, 3, 5)):  # a loop over kill trials
        folder = copy_of(example, tmp_path / f"trial-{trial}")
        shutil.move(folder / "data" / late, tmp_path / f"held-{trial}")
        assert job(folder) == 0
        shutil.move(tmp_path / f"held-{trial}", folder / "data" / late)
        assert job(folder, point) == 137, point
        assert job(folder) == 0, point
        assert results(folder) == results(on_time), point
        assert ledger_arms(folder).equals(ledger_arms(on_time)), point
        assert not list((folder / "results").rglob("*.partial"))


def test_a_stray_future_snapshot_is_left_out_and_validate_names_it(example, tmp_path, capsys):
    folder = copy_of(example, tmp_path)
    for date in DATES[2:]:
        (folder / "data" / f"memberships-{date}.parquet").unlink()
    stray = folder / "data" / "memberships-2062-11-04.parquet"
    stray.write_bytes((folder / "data" / f"memberships-{DATES[0]}.parquet").read_bytes())
    rc, day = run(folder, capsys)
    assert rc == 0 and day["date"] == DATES[1]  # the real days ran; the stray one did not block them
    assert "snapshot(s) dated after tomorrow left out: 2062-11-04" in day["stderr"]
    assert main(["validate", str(folder / "experiment.toml")]) == 2
    assert "dated after tomorrow: 2062-11-04" in capsys.readouterr().err


def test_a_run_refused_for_its_outcomes_leaves_nothing_behind(example, tmp_path, capsys):
    folder = copy_of(example, tmp_path)
    path = folder / "experiment.toml"
    path.write_text(path.read_text().replace('outcome = "y"', 'outcome = "revenue"'))
    rc, error = run(folder, capsys)
    assert rc == 2 and "needs unit_id and 'revenue'" in error
    assert not (folder / "results").exists()  # no ledger, no arms


@pytest.mark.slow  # an end-to-end run of the daily job (the fast set keeps the quick refusals)
def test_init_does_not_overwrite_a_running_experiments_data_and_report_does_not_overwrite_inputs(example, tmp_path,
                                                                                               capsys):
    folder = copy_of(example, tmp_path)
    data = {p: p.read_bytes() for p in (folder / "data").iterdir()}
    assert main(["init", str(folder / "other.toml"), "--example", "--days", "3", "--users", "500"]) == 2
    assert "data file(s) of the example exist already" in capsys.readouterr().err
    assert not (folder / "other.toml").exists() and {p: p.read_bytes() for p in data} == data
    assert run(folder, capsys)[0] == 0
    toml = (folder / "experiment.toml").read_bytes()
    for out in ("experiment.toml", f"data/memberships-{DATES[0]}.parquet"):
        assert main(["report", str(folder / "experiment.toml"), "--out", str(folder / out)]) == 2
        capsys.readouterr()
    assert (folder / "experiment.toml").read_bytes() == toml and {p: p.read_bytes() for p in data} == data


def test_an_experiment_name_is_a_name_not_a_path(example, tmp_path, capsys):
    folder = copy_of(example, tmp_path)
    path = folder / "experiment.toml"
    for name in ("../../escaped", "/tmp/absolute", "a/b", ".."):
        path.write_text(EXAMPLE.replace('name = "collab-launch"', f'name = "{name}"'))
        rc, error = run(folder, capsys)
        assert rc == 2 and "[experiment.name]" in error and "is not a name" in error
    assert not (tmp_path / "escaped").exists() and not (folder / "results").exists()


def tamper(folder: Path, *statements: str) -> None:
    import duckdb

    con = duckdb.connect(str(folder / "results" / NAME / "ledger.duckdb"))
    for statement in statements:
        con.execute(statement)
    con.close()


@pytest.fixture(scope="module")
def healed(example, tmp_path_factory) -> Path:
    """The example run with one snapshot late, then healed: its ledger holds a void."""
    folder = copy_of(example, tmp_path_factory.mktemp("healed"))
    late = folder / "data" / f"memberships-{DATES[3]}.parquet"
    held = folder / "held.parquet"
    shutil.move(late, held)
    assert main(["run", str(folder / "experiment.toml"), "--json"]) == 0
    shutil.move(held, late)
    assert main(["run", str(folder / "experiment.toml"), "--json"]) == 0
    return folder


@pytest.mark.slow  # nine tamperings of a healed 10-day ledger
@pytest.mark.parametrize("statements, first_bad", [
    ([f"UPDATE arms SET arm = 1 - arm WHERE arm >= 0 AND valid_from = DATE '{DATES[5]}' AND unit_id = "
      f"(SELECT min(unit_id) FROM arms WHERE arm >= 0 AND valid_from = DATE '{DATES[5]}')"], f"day {DATES[5]}"),
    ([f"DELETE FROM events WHERE date = DATE '{DATES[2]}' AND event = 'created'"], f"day {DATES[2]}"),
    ([f"UPDATE components SET component = 'x' WHERE date = DATE '{DATES[7]}' AND unit_id = "
      f"(SELECT min(unit_id) FROM components WHERE date = DATE '{DATES[7]}')"], f"day {DATES[7]}"),
    (["UPDATE experiments SET salt = 'other'"], f"day {DATES[0]}"),
    ([f"DELETE FROM days WHERE date = DATE '{DATES[6]}'"], f"day {DATES[7]}"),
    (["DELETE FROM audit"], f"day {DATES[3]}"),
    (["UPDATE audit SET detail = detail || ' (edited)'"], "audit row of"),
    (["DROP TABLE voided_arms"], "void 1"),
    (["UPDATE voided_arms SET arm = 1 - arm WHERE arm >= 0"], "void 1"),
], ids=["arm-edited", "event-removed", "component-edited", "salt-edited", "day-removed", "audit-emptied",
        "audit-edited", "voided-dropped", "voided-edited"])
def test_tampering_is_reported_with_the_first_bad_day_and_stops_the_job(healed, tmp_path, capsys, statements,
                                                                        first_bad):
    folder = tmp_path / "copy"
    shutil.copytree(healed, folder)
    ledger = str(folder / "results" / NAME / "ledger.duckdb")
    assert main(["ledger", "verify", "--ledger", ledger, "--json"]) == 0  # a healed ledger is intact
    assert json.loads(capsys.readouterr().out)["intact"] is True
    tamper(folder, *statements)
    assert main(["ledger", "verify", "--ledger", ledger]) == 2
    error = capsys.readouterr().err
    assert first_bad in error, error
    before = results(folder)
    rc, message = run(folder, capsys)
    assert rc == 2 and "fails its seals" in message and "nothing was run" in message
    assert results(folder) == before
