"""The ledger and the evolving graph: hand-built two-day snapshots for each event, a
30-day run with churn, durability against a killed process, and refused bad input."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pandas as pd
import pytest

from spillover import LedgerError, synth
from spillover.design import HashSpec
from spillover.evolve import evolve, start
from spillover.ledger import Ledger

DAY1, DAY2 = "2026-03-01", "2026-03-02"


def memberships(groups: dict[str, list[int]]) -> pd.DataFrame:
    """One project (and its own account) per group of users."""
    rows = [(user, project, f"acct-{project}") for project, users in groups.items() for user in users]
    return pd.DataFrame(rows, columns=["user_id", "project_id", "account_id"])


# ten two-user components on day one, so both arms occur
BASE = {f"p{k}": [2 * k, 2 * k + 1] for k in range(10)}


@pytest.fixture
def ledger(tmp_path):
    with Ledger(tmp_path / "ledger.duckdb") as led:
        start(led, memberships(BASE), DAY1, salt="exp", design="cluster", seed=1)
        yield led


def arms_by_user(ledger) -> pd.Series:
    return ledger.current_arms("exp").set_index("unit_id")["arm"]


def components_with_arm(ledger, arm: int) -> list[str]:
    arms = arms_by_user(ledger)
    return [p for p, users in BASE.items() if arms[users[0]] == arm]


def test_create_assigns_a_new_component_by_the_keyed_hash(ledger):
    report = evolve(ledger, memberships({**BASE, "new": [100, 101]}), DAY2)
    assert (report.created, report.split, report.merged, report.removed) == (1, 0, 0, 0)
    arms = arms_by_user(ledger)
    expected = HashSpec.of([0.5, 0.5]).assign(["100"], "exp")[0]  # component key: its smallest user
    assert arms[100] == arms[101] == expected
    assert report.users_switched == 0 and report.new_units == 2


def test_split_parts_keep_the_arm(tmp_path):
    with Ledger(tmp_path / "l.duckdb") as led:
        day1 = {"a": [1, 2], "b": [2, 3], **{f"q{k}": [10 + k] for k in range(5)}}
        start(led, memberships(day1), DAY1, salt="exp", design="cluster", seed=2)
        before = led.current_arms("exp").set_index("unit_id")["arm"]
        day2 = {"a": [1], "b": [3], **{f"q{k}": [10 + k] for k in range(5)}}  # user 2 leaves: 1 and 3 part
        report = evolve(led, memberships(day2), DAY2)
        assert report.split == 1 and report.removed == 0 and report.created == 0
        after = led.current_arms("exp").set_index("unit_id")["arm"]
        assert after[1] == after[3] == before[1]
        events = led.events("exp")
        assert events.loc[events.event == "split", "detail"].tolist() == ["2 parts"]


def test_remove_is_recorded(ledger):
    day2 = {p: u for p, u in BASE.items() if p != "p3"}
    report = evolve(ledger, memberships(day2), DAY2)
    assert report.removed == 1 and report.n_components == 9
    assert ledger.events("exp").query("event == 'removed'")["component"].tolist() == ["6"]


def test_merge_of_same_arm_components_is_simple(ledger):
    first, second = components_with_arm(ledger, 1)[:2]
    day2 = dict(BASE)
    day2["bridge"] = [BASE[first][0], BASE[second][0]]
    report = evolve(ledger, memberships(day2), DAY2)
    assert (report.merged, report.merged_across_arms, report.users_switched) == (1, 0, 0)
    assert not ledger.current_arms("exp")["contaminated"].any()


def test_merge_across_arms_majority_policy_switches_and_flags_the_minority(ledger):
    treated, control = components_with_arm(ledger, 1), components_with_arm(ledger, 0)
    day2 = dict(BASE)
    # a treated pair and a control pair plus one more control user: control has the majority
    day2[control[0]] = BASE[control[0]] + [500]
    day2["bridge"] = [BASE[treated[0]][0], BASE[control[0]][0]]
    report = evolve(ledger, memberships(day2), DAY2)
    assert (report.merged, report.merged_across_arms, report.users_switched) == (1, 1, 2)
    current = ledger.current_arms("exp").set_index("unit_id")
    for user in BASE[treated[0]]:
        assert current.loc[user, "arm"] == 0 and current.loc[user, "contaminated"]
    for user in BASE[control[0]] + [500]:
        assert current.loc[user, "arm"] == 0 and not current.loc[user, "contaminated"]
    history = ledger.history("exp").set_index("unit_id")
    switched = history.loc[BASE[treated[0]][0]]
    assert switched["arm"].tolist() == [1, 0], "the past arm is kept, not rewritten"
    analysis = ledger.current_arms("exp", include_contaminated=False)
    assert not set(BASE[treated[0]]) & set(analysis["unit_id"])


def test_merge_across_arms_exclude_policy_flags_everyone_and_switches_nobody(ledger):
    treated, control = components_with_arm(ledger, 1), components_with_arm(ledger, 0)
    day2 = dict(BASE)
    day2["bridge"] = [BASE[treated[0]][0], BASE[control[0]][0]]
    report = evolve(ledger, memberships(day2), DAY2, merge_policy="exclude")
    assert report.users_switched == 0 and report.merged_across_arms == 1
    current = ledger.current_arms("exp").set_index("unit_id")
    members = BASE[treated[0]] + BASE[control[0]]
    assert current.loc[members, "contaminated"].all()
    assert (current.loc[BASE[treated[0]], "arm"] == 1).all()


@pytest.mark.slow
def test_thirty_days_with_churn_no_unit_changes_arm_unless_a_merge_flags_it(tmp_path):
    days = synth.evolving_memberships(3_000, 30, churn=0.01, seed=4)
    with Ledger(tmp_path / "l.duckdb") as led:
        start(led, days[0], "2026-01-01", salt="churn", strata_by=("size", "usage"), n_bins=3, sample_fraction=0.3)
        totals = dict(created=0, split=0, merged=0, removed=0, merged_across_arms=0, users_switched=0)
        for i, snapshot in enumerate(days[1:], start=1):
            report = evolve(led, snapshot, dt.date(2026, 1, 1) + dt.timedelta(days=i))
            for key in totals:
                totals[key] += getattr(report, key)
        history = led.history("churn")
        summaries = led.daily_summaries("churn")
    assert len(summaries) == 30
    assert all(totals[k] > 0 for k in ("created", "split", "merged", "removed")), totals
    history = history.sort_values(["unit_id", "valid_from"])
    previous = history.groupby("unit_id")["arm"].shift()
    changed = previous.notna() & (history["arm"] != previous)
    assert changed.sum() == totals["users_switched"]
    assert (history.loc[changed, "reason"] == "merge-majority").all()
    assert history.loc[changed, "contaminated"].all()


def test_re_running_a_day_is_idempotent_and_earlier_dates_are_refused(ledger):
    day2 = memberships({**BASE, "new": [100]})
    first = evolve(ledger, day2, DAY2)
    rows = len(ledger.history("exp")), len(ledger.events("exp"))
    assert evolve(ledger, day2, DAY2) == first
    assert (len(ledger.history("exp")), len(ledger.events("exp"))) == rows
    with pytest.raises(LedgerError, match=r"before 2026-03-02.*never rewrites history"):
        evolve(ledger, day2, "2026-02-01")
    assert (len(ledger.history("exp")), len(ledger.events("exp"))) == rows


def test_a_second_experiment_with_the_same_salt_is_refused(ledger):
    with pytest.raises(LedgerError, match="already exists"):
        start(ledger, memberships(BASE), DAY2, salt="exp", design="cluster")


CRASH = """
import os, sys
import pandas as pd
from spillover import ledger as ledger_module
from spillover.evolve import evolve

original = ledger_module.Ledger._insert
calls = []
def dying_insert(self, *args, **kwargs):
    original(self, *args, **kwargs)
    calls.append(1)
    if len(calls) == 2:          # rows of the day are half written: the process dies
        os._exit(9)
ledger_module.Ledger._insert = dying_insert
led = ledger_module.Ledger(sys.argv[1])
evolve(led, pd.read_csv(sys.argv[2]), "2026-03-02")
"""


def test_a_process_killed_mid_write_leaves_the_previous_day_intact(tmp_path):
    path = tmp_path / "ledger.duckdb"
    with Ledger(path) as led:
        start(led, memberships(BASE), DAY1, salt="exp", design="cluster", seed=1)
        before = led.current_arms("exp")
    day2 = memberships({**BASE, "new": [100, 101], "bridge": [0, 2]})
    day2.to_csv(tmp_path / "day2.csv", index=False)
    done = subprocess.run([sys.executable, "-c", CRASH, str(path), str(tmp_path / "day2.csv")], capture_output=True)
    assert done.returncode == 9, done.stderr.decode()
    with Ledger(path) as led:
        assert str(led.last_date("exp")) == DAY1
        pd.testing.assert_frame_equal(led.current_arms("exp"), before)
        assert led.events("exp")["date"].astype(str).eq(DAY1).all()
        report = evolve(led, day2, DAY2)  # the day can be re-run
        assert report.created == 1 and str(led.last_date("exp")) == DAY2


def test_ledger_exports_history_to_parquet_and_csv(ledger, tmp_path):
    evolve(ledger, memberships({**BASE, "new": [100]}), DAY2)
    ledger.export("exp", tmp_path / "h.parquet")
    ledger.export("exp", tmp_path / "e.csv", table="events")
    history = pd.read_parquet(tmp_path / "h.parquet")
    assert {"unit_id", "arm", "valid_from", "valid_to", "contaminated", "reason"} <= set(history.columns)
    assert len(pd.read_csv(tmp_path / "e.csv")) == 11
    with pytest.raises(LedgerError, match="cannot export"):
        ledger.export("exp", tmp_path / "x.csv", table="nope")
