"""What the ledger refuses and how it undoes: not-a-ledger paths, a second writer's lock,
a recorded day re-run with other data, mistyped future dates, `ledger void` with its audit
trail, and design flags that disagree with the running experiment."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time

import pandas as pd
import pytest

from spillover import synth
from spillover.cli import main
from spillover.errors import LedgerError
from spillover.evolve import evolve, start
from spillover.ledger import Ledger

DAYS = ("2026-11-20", "2026-11-21", "2026-11-22")


@pytest.fixture(scope="module")
def snapshots():
    return synth.evolving_memberships(1_500, n_days=3, seed=11)


def _started(path, snapshots, n_days=3):
    ledger = Ledger(path)
    start(ledger, snapshots[0], DAYS[0], salt="exp", design="cluster")
    for day, snapshot in zip(DAYS[1:n_days], snapshots[1:n_days]):
        evolve(ledger, snapshot, day)
    return ledger


def _state(ledger):
    return {"arms": ledger.current_arms("exp"), "components": ledger.latest_components("exp"),
            "events": ledger.events("exp"), "last": ledger.last_date("exp")}


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_data_table_named_as_the_ledger_is_refused_and_left_untouched(tmp_path, kind):
    path = tmp_path / f"units.{kind}"
    frame = pd.DataFrame({"unit_id": [1, 2], "arm": [0, 1]})
    frame.to_csv(path, index=False) if kind == "csv" else frame.to_parquet(path)
    before = path.read_bytes()
    with pytest.raises(LedgerError, match="not a ledger"):
        Ledger(path)
    assert path.read_bytes() == before


def test_a_folder_named_as_the_ledger_is_refused(tmp_path):
    with pytest.raises(LedgerError, match="is a folder"):
        Ledger(tmp_path)


def test_a_second_writer_waits_for_the_lock_then_fails_clearly_or_gets_in(tmp_path):
    path = tmp_path / "l.duckdb"
    Ledger(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); "
                               "time.sleep(2.5)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        began = time.monotonic()
        with pytest.raises(LedgerError, match="locked by another writer"):
            Ledger(path, lock_timeout=0.5)
        assert time.monotonic() - began < 2.0  # it gave up at its timeout, not at the holder's exit
        with Ledger(path, lock_timeout=20) as ledger:  # retries with backoff until the holder exits
            assert ledger.experiments().empty
    finally:
        holder.kill()


def test_a_recorded_day_re_run_with_the_same_snapshot_writes_nothing(tmp_path, snapshots):
    with _started(tmp_path / "l.duckdb", snapshots) as ledger:
        before = _state(ledger)
        report = evolve(ledger, snapshots[1], DAYS[1])
        assert report.date == DAYS[1]
        after = _state(ledger)
    for key in before:
        assert before[key] == after[key] if key == "last" else before[key].equals(after[key])


def test_a_recorded_day_re_run_with_other_data_is_refused_and_replace_voids_with_an_audit_row(tmp_path, snapshots):
    with _started(tmp_path / "l.duckdb", snapshots, n_days=2) as ledger:
        with pytest.raises(LedgerError, match="different snapshot.*--replace"):
            evolve(ledger, snapshots[2], DAYS[1])
        report = evolve(ledger, snapshots[2], DAYS[1], replace=True)
        assert report.date == DAYS[1] and ledger.last_date("exp") == dt.date(2026, 11, 21)
        audit = ledger.audit("exp")
        assert audit["action"].tolist() == ["void"] and "replaced by a re-run" in audit["detail"].iloc[0]
        voided = ledger._con.execute("SELECT count(*) FROM voided_days").fetchone()[0]
        assert voided == 1  # the replaced day is kept, not deleted


def test_a_future_date_is_refused_unless_allowed(tmp_path, snapshots):
    later = dt.date.today() + dt.timedelta(days=2)
    with Ledger(tmp_path / "l.duckdb") as ledger:
        with pytest.raises(LedgerError, match="in the future"):
            start(ledger, snapshots[0], later, salt="exp", design="cluster")
        assert ledger.experiments().empty  # refused before anything was written
        start(ledger, snapshots[0], dt.date.today() + dt.timedelta(days=1), salt="exp", design="cluster")
        with pytest.raises(LedgerError, match="in the future"):
            evolve(ledger, snapshots[1], later + dt.timedelta(days=365 * 36))
        evolve(ledger, snapshots[1], later, allow_future=True)
        assert ledger.last_date("exp") == later


def test_void_restores_the_ledger_to_the_day_before_and_keeps_every_voided_row(tmp_path, snapshots):
    with Ledger(tmp_path / "one.duckdb") as reference:
        start(reference, snapshots[0], DAYS[0], salt="exp", design="cluster")
        expected = _state(reference)
    with _started(tmp_path / "l.duckdb", snapshots) as ledger:
        n_rows = {t: ledger._con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("arms", "events")}
        assert ledger.void("exp", DAYS[1], reason="wrong snapshots") == 2
        got = _state(ledger)
        assert got["last"] == expected["last"]
        for key in ("arms", "components", "events"):
            pd.testing.assert_frame_equal(got[key], expected[key])
        for table in ("arms", "events"):  # live + voided rows = every row ever written
            live = ledger._con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            kept = ledger._con.execute(f"SELECT count(*) FROM voided_{table}").fetchone()[0]
            assert live + kept == n_rows[table] and kept > 0
        evolve(ledger, snapshots[1], DAYS[1])  # the voided day can be recorded again
        with pytest.raises(LedgerError, match="first day"):
            ledger.void("exp", DAYS[0], reason="no")
        with pytest.raises(LedgerError, match="nothing to void"):
            ledger.void("exp", DAYS[2], reason="no")


def _cli(*argv):
    return main([str(a) for a in argv])


def _snapshot_files(folder, snapshots) -> list:
    """Each day's snapshot as a Parquet file, for the command line."""
    paths = []
    for day, snapshot in zip(DAYS, snapshots):
        paths.append(folder / f"m-{day}.parquet")
        snapshot.to_parquet(paths[-1])
    return paths


def test_cli_refuses_design_flags_that_disagree_with_the_running_experiment(tmp_path, snapshots, capsys):
    paths = _snapshot_files(tmp_path, snapshots)
    ledger = tmp_path / "l.duckdb"
    assert _cli("evolve", "--ledger", ledger, "--snapshot", paths[0], "--date", DAYS[0], "--design", "cluster",
                "--salt", "exp", "--treat-fraction", "0.4") == 0
    capsys.readouterr()
    for flags in (["--treat-fraction", "0.5"], ["--design", "holdout"], ["--seed", "3"]):
        assert _cli("evolve", "--ledger", ledger, "--snapshot", paths[1], "--date", DAYS[1], *flags) == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "was started with" in errors[0]
    assert _cli("evolve", "--ledger", ledger, "--snapshot", paths[1], "--date", DAYS[1], "--design", "cluster",
                "--treat-fraction", "0.4", "--json") == 0  # the same flags: accepted


def test_cli_ledger_show_history_export_void(tmp_path, snapshots, capsys):
    with _started(tmp_path / "l.duckdb", snapshots):
        pass
    ledger = tmp_path / "l.duckdb"
    assert _cli("ledger", "show", "--ledger", ledger, "--json") == 0
    import json

    shown = json.loads(capsys.readouterr().out)
    assert [d["date"] for d in shown["days"]] == list(DAYS) and shown["design"] == "cluster"
    assert all(len(d["checksum"]) == 12 for d in shown["days"])
    unit = str(snapshots[0]["user_id"].iloc[0])
    assert _cli("ledger", "history", "--ledger", ledger, "--unit", unit, "--json") == 0
    history = json.loads(capsys.readouterr().out)["history"]
    assert history and {str(row["unit_id"]) for row in history} == {unit}
    out = tmp_path / "events.csv"
    assert _cli("ledger", "export", "--ledger", ledger, "--table", "events", "--out", out) == 0
    assert len(pd.read_csv(out)) == len(Ledger(ledger).events("exp"))
    assert _cli("ledger", "void", "--ledger", ledger, "--date", DAYS[2], "--json") == 2  # no --reason
    assert "--reason" in capsys.readouterr().err
    assert _cli("ledger", "void", "--ledger", ledger, "--date", DAYS[2], "--reason", "bad feed", "--json") == 0
    assert json.loads(capsys.readouterr().out)["last_date"] == DAYS[1]
    assert _cli("ledger", "show", "--ledger", tmp_path / "absent.duckdb") == 2
    assert not (tmp_path / "absent.duckdb").exists()


def test_cli_ledger_flags_allow_future_replace_and_lock_timeout(tmp_path, snapshots, capsys):
    paths = _snapshot_files(tmp_path, snapshots)
    ledger = tmp_path / "l.duckdb"
    later = str(dt.date.today() + dt.timedelta(days=3))
    first = ["evolve", "--ledger", ledger, "--snapshot", paths[0], "--design", "cluster", "--salt", "exp"]
    assert _cli(*first, "--date", later) == 2 and "--allow-future" in capsys.readouterr().err
    assert _cli(*first, "--date", DAYS[0]) == 0
    assert _cli("evolve", "--ledger", ledger, "--snapshot", paths[1], "--date", DAYS[1]) == 0
    other = ["evolve", "--ledger", ledger, "--snapshot", paths[2], "--date", DAYS[1]]
    capsys.readouterr()
    assert _cli(*other) == 2 and "--replace" in capsys.readouterr().err
    assert _cli(*other, "--replace", "--json") == 0
    assert len(Ledger(ledger).audit("exp")) == 1
    assert _cli("evolve", "--ledger", ledger, "--snapshot", paths[2], "--date", later, "--allow-future") == 0
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(ledger)!r}); "
                               "print('held', flush=True); time.sleep(3)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        assert _cli("ledger", "show", "--ledger", ledger, "--lock-timeout", "0") == 2
        assert "locked by another writer" in capsys.readouterr().err
    finally:
        holder.kill()


def test_seals_are_a_multiset_hash_and_ledgers_sealed_by_the_first_rule_still_verify(tmp_path, snapshots):
    from spillover.ledger import SEAL_RULE

    ledger = _started(tmp_path / "l.duckdb", snapshots)
    try:
        con = ledger.connection
        seals = [row[0] for row in con.execute("SELECT chain FROM days ORDER BY date").fetchall()]
        assert all(seal.startswith(SEAL_RULE + ":") for seal in seals) and ledger.verify("exp") == []
        # the seal does not depend on the rows' order, and a moved value is found
        arms = "experiment = 'exp' AND valid_from = DATE '2026-11-20'"
        digest = ledger._rows_digest("arms", arms, [])
        con.execute("CREATE TABLE shuffled AS SELECT * FROM arms ORDER BY random()")
        assert ledger._rows_digest("shuffled", arms, []) == digest
        con.execute("UPDATE arms SET arm = 1 - arm WHERE unit_id IN (SELECT min(unit_id) FROM arms WHERE arm >= 0)")
        assert ledger._rows_digest("arms", arms, []) != digest
        assert ledger.verify("exp")[0].startswith("day 2026-11-20")
        con.execute("DROP TABLE arms; ALTER TABLE shuffled RENAME TO arms")
        # a ledger sealed before the rule existed: bare SHA-256 of the sorted rows, day by day
        for date in DAYS:
            summary, checksum, recorded = con.execute("SELECT summary, checksum, recorded FROM days WHERE date = ?",
                                                      [date]).fetchone()
            legacy = ledger._chain("exp", dt.date.fromisoformat(date), summary, checksum,
                                   ledger._audit_head("exp", recorded), rule="")
            con.execute("UPDATE days SET chain = ? WHERE date = ?", [legacy, date])
        assert ":" not in legacy and ledger.verify("exp") == []
        con.execute("UPDATE components SET stratum = stratum + 1 WHERE date = DATE '2026-11-22' AND unit_id = "
                    "(SELECT min(unit_id) FROM components)")
        assert ledger.verify("exp")[0].startswith("day 2026-11-22")
    finally:
        ledger.close()


@pytest.mark.parametrize("edit", [
    "UPDATE arms SET arm = 1 - arm WHERE unit_id = (SELECT min(unit_id) FROM arms WHERE arm >= 0)",
    "UPDATE components SET stratum = stratum + 1 WHERE unit_id = (SELECT min(unit_id) FROM components)",
    "DELETE FROM events WHERE component = (SELECT min(component) FROM events)",
    "UPDATE experiments SET salt = 'other'",
    "UPDATE days SET summary = summary || ' '",
    "DELETE FROM ledger_fingerprints",
])
def test_the_fingerprint_follows_every_write_and_any_edit_sends_the_run_to_the_seals(tmp_path, snapshots, edit):
    ledger = _started(tmp_path / "l.duckdb", snapshots)
    try:
        assert ledger.unchanged("exp")  # start and two evolves: the stored fingerprint grew with each day
        ledger.void("exp", DAYS[2], reason="test")
        assert ledger.unchanged("exp")  # a void: stored whole
        ledger.connection.execute(edit)
        assert not ledger.unchanged("exp")
    finally:
        ledger.close()
