"""Always-valid intervals for the daily job (issue 31): the confidence sequence's width
against its closed form, its time-uniform coverage on i.i.d. normal data, the daily
job's band and verdict, and the A/A calibration of the whole job."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spillover.cli import main
from spillover.experiment import EXAMPLE, load_config, verdict, write_example_data
from spillover.sequential import (best_ratio, calibrate, days_to_detection, half_width, lineage_clusters,
                                  sequence, tuning)


def waudby_smith(t: np.ndarray, sigma: float, rho: float, alpha: float) -> np.ndarray:
    """The asymptotic confidence sequence's half-width as Waudby-Smith et al. (2023, eq. 8)
    write it: ``sigma * sqrt(2 (t rho^2 + 1) / (t^2 rho^2) * log(sqrt(t rho^2 + 1) / alpha))``."""
    return sigma * np.sqrt(2 * (t * rho**2 + 1) / (t**2 * rho**2) * np.log(np.sqrt(t * rho**2 + 1) / alpha))


def test_the_width_is_the_papers_closed_form_in_information_time():
    """With t i.i.d. observations of sd sigma, se_t = sigma / sqrt(t), and the mixing
    variance tau2 = rho^2 sigma^2, the band is the paper's, to rounding."""
    t = np.arange(1, 201, dtype=float)
    sigma, alpha = 1.7, 0.05
    rho = math.sqrt(best_ratio(alpha) / 50)  # the paper's optimal rho for a target time of 50
    ours = half_width(sigma / np.sqrt(t), rho**2 * sigma**2, alpha)
    np.testing.assert_allclose(ours, waudby_smith(t, sigma, rho, alpha), rtol=1e-12)
    assert tuning(sigma / math.sqrt(1), 1, 50, alpha) == pytest.approx(rho**2 * sigma**2, rel=1e-12)
    widths = half_width(sigma / np.sqrt(t), rho**2 * sigma**2, alpha) * np.sqrt(t) / sigma
    # tightest, relative to the fixed interval, near the planned look (the paper's rho is a close approximation)
    assert abs(int(np.argmin(widths[:120])) - 49) <= 3 and widths[49] <= widths.min() * 1.001


def test_the_band_covers_at_every_look_at_once_on_iid_normal_data():
    """4,000 paths of 200 looks at i.i.d. N(0.3, 1) data: the share whose band ever misses
    0.3 is at most alpha + 2 Monte Carlo se (0.05 + 0.007), while a fixed 95% interval
    looked at every time misses far more often."""
    rng = np.random.default_rng(3)
    paths, looks, alpha = 4_000, 200, 0.05
    data = 0.3 + rng.standard_normal((paths, looks))
    t = np.arange(1, looks + 1)
    means = data.cumsum(axis=1) / t
    sds = np.sqrt(np.maximum(((data - means[:, -1:]) ** 2).cumsum(axis=1) / np.maximum(t - 1, 1), 1e-12))
    se = np.where(t > 1, sds / np.sqrt(t), 1.0)  # the estimated se, as the job uses (first look: sd 1 assumed)
    tau2 = tuning(1.0, 1, 100, alpha)
    half = half_width(se, tau2, alpha)
    low, high = np.maximum.accumulate(means - half, axis=1), np.minimum.accumulate(means + half, axis=1)
    ever = ((low > 0.3) | (high < 0.3))[:, 9:].any(axis=1).mean()  # from the 10th look, the asymptotic regime
    assert ever <= alpha + 2 * math.sqrt(alpha * (1 - alpha) / paths), ever
    fixed = ((np.abs(means - 0.3) > 1.96 * se)[:, 9:]).any(axis=1).mean()
    assert fixed > 0.3, fixed


def test_a_noisy_cluster_robust_se_widens_the_band_as_t_widens_an_interval():
    tau2 = tuning(0.1, 1, 30, 0.05)
    normal, few = half_width(0.05, tau2, 0.05), half_width(0.05, tau2, 0.05, df=5)
    assert few > normal and half_width(0.05, tau2, 0.05, df=1e9) == pytest.approx(normal, rel=1e-6)


def test_days_to_detection_match_simulated_paths():
    """plan's days to detection against 4,000 simulated daily paths (equal information per
    day, the band tuned to 30 days): by the reported median day at least half the paths'
    bands have excluded zero, by the power day at least 80% (Monte Carlo sd 0.008 and
    0.006), and one day earlier the band of that day alone excludes zero less often than
    one half (the day is the first such, not a loose bound)."""
    effect, se_end, planned, alpha = 0.3, 0.1, 30, 0.05
    median, sure = (int(v[0]) for v in days_to_detection(effect, se_end, planned, alpha=alpha, power=0.8))
    rng = np.random.default_rng(4)
    info = 1.0 / (planned * se_end**2)  # each day's information
    days = np.arange(1, 4 * planned + 1)
    increments = effect * info + np.sqrt(info) * rng.standard_normal((4_000, days.size))
    estimates = np.cumsum(increments, axis=1) / (days * info)
    ses = se_end * np.sqrt(planned / days)
    width = half_width(ses, best_ratio(alpha) * se_end**2, alpha)
    excludes = np.abs(estimates) > width
    detected_by = np.maximum.accumulate(estimates - width > 0, axis=1)
    assert detected_by[:, median - 1].mean() >= 0.5 - 0.016
    assert detected_by[:, sure - 1].mean() >= 0.8 - 0.012
    assert excludes[:, median - 2].mean() < 0.5
    assert 1 < median < sure < 4 * planned


def test_the_running_band_never_widens_and_lineages_follow_merges():
    table = sequence(np.array([0.4, 0.1, 0.3, 0.2]), np.array([0.3, 0.2, 0.15, 0.12]), tuning(0.3, 1, 4, 0.05), 0.05)
    assert (table["band_low"].diff().dropna() >= 0).all() and (table["band_high"].diff().dropna() <= 0).all()
    rows = pd.DataFrame({"unit_id": [1, 2, 3, 4, 3, 4], "component": ["a", "a", "b", "c", "d", "d"],
                         "date": ["d1", "d1", "d1", "d1", "d2", "d2"]})
    assert lineage_clusters(rows).tolist() == [0, 0, 1, 1]


def test_lineages_grown_day_by_day_equal_those_of_the_whole_history():
    """Random memberships over eight days (users come and go, components merge and split):
    the lineages grown one day at a time equal :func:`lineage_table` over every row, names too."""
    import duckdb

    from spillover.sequential import _grown_lineages, lineage_table

    rng = np.random.default_rng(5)
    con = duckdb.connect()
    days = [pd.DataFrame({"unit_id": rng.choice(400, size=250, replace=False).astype(str),
                          "component": rng.integers(0, 150, size=250).astype(str), "date": f"2026-11-0{d + 1}"})
            for d in range(8)]
    state = None
    for d, day in enumerate(days):  # a loop over eight days
        con.register("day_rows", day)
        con.execute("CREATE OR REPLACE TABLE today AS SELECT * FROM day_rows")
        grown = _grown_lineages(con, state, "today", out=f"grown_{d}")
        state = grown
        con.register("all_rows", pd.concat(days[:d + 1]))
        whole = lineage_table(con, "all_rows", out="whole")
        assert con.execute(f"SELECT * FROM {grown} ORDER BY unit_id").fetchall() == \
            con.execute(f"SELECT * FROM {whole} ORDER BY unit_id").fetchall(), d
    assert con.execute(f"SELECT count(DISTINCT lineage) FROM {state}").fetchone()[0] > 1


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sequential")
    (folder / "experiment.toml").write_text(EXAMPLE.replace("duration_days = 30", "duration_days = 6"))
    write_example_data(folder / "experiment.toml", n_users=2_000, n_days=6, seed=2)
    return folder


def test_the_daily_job_reports_the_band_and_says_stopping_is_safe(example, tmp_path, capsys):
    folder = tmp_path / "exp"
    shutil.copytree(example, folder)
    assert main(["run", str(folder / "experiment.toml"), "--json"]) == 0
    capsys.readouterr()
    days = [json.loads(p.read_text()) for p in sorted((folder / "results" / "collab-launch").glob("*/day.json"))]
    bands = [(d["sequential"]["band_low"], d["sequential"]["band_high"]) for d in days]
    assert all(low2 >= low1 - 1e-12 and high2 <= high1 + 1e-12 for (low1, high1), (low2, high2) in zip(bands, bands[1:]))
    assert [d["sequential"]["n_days"] for d in days] == list(range(1, 7))
    last = days[-1]
    width_band = last["sequential"]["band_high"] - last["sequential"]["band_low"]
    width_day = last["effects"][0]["ci_high"] - last["effects"][0]["ci_low"]
    assert width_band < 2 * width_day  # pooling six days pays for most of the always-valid price
    said = verdict(last)
    assert "always-valid 95% band over 6 day(s)" in said
    assert main(["report", str(folder / "experiment.toml"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["verdict"] == said and all("band_low" in row for row in printed["days"])
    page = Path(printed["report"]).read_text()
    assert "The rule is sequential" in page and "always-valid" in page


def test_the_carried_state_equals_the_full_history_and_is_rebuilt_when_missing_or_edited(example, tmp_path, capsys):
    """Each look adds one day to the state carried from the look before; here it is
    checked against the full history, recomputed independently on the last day: every
    component row of every day for the lineages, every day's outcomes summed in pandas
    for the pooled means. A missing or edited state file is rebuilt, to the same bytes."""
    from spillover.ledger import Ledger
    from spillover.sequential import lineage_codes, look

    folder = tmp_path / "exp"
    shutil.copytree(example, folder)
    assert main(["run", str(folder / "experiment.toml"), "--json"]) == 0
    capsys.readouterr()
    root = folder / "results" / "collab-launch"
    dates = sorted(p.parent.name for p in root.glob("*/day.json"))
    last = json.loads((root / dates[-1] / "day.json").read_text())
    assert sorted(p.stem for p in (root / ".sequential").glob("*.parquet")) == dates[-2:]  # older states removed
    total, count, arms = {}, {}, {}
    with Ledger(root / "ledger.duckdb") as ledger:
        for date in dates:  # the full history, summed in pandas
            users, _ = ledger.users_on("collab-launch", date)
            users = users[(users["arm"] >= 0) & ~users["contaminated"]]
            day = pd.read_parquet(folder / "data" / f"outcomes-{date}.parquet").merge(users, on="unit_id")
            for unit, y, arm in zip(day["unit_id"], day["y"], day["arm"]):  # a loop over a few thousand rows
                total[unit], count[unit] = total.get(unit, 0.0) + y, count.get(unit, 0) + 1
                arms.setdefault(unit, set()).add(arm)
        lineage = lineage_codes(ledger.connection, ledger.stage_history("collab-launch", dates[-1]))
    kept = sorted(u for u in total if len(arms[u]) == 1)
    pooled = pd.DataFrame({"unit_id": kept, "y": [total[u] / count[u] for u in kept],
                           "arm": [min(arms[u]) for u in kept]})
    estimate, se, df = look(pooled, lineage, method="ols-cluster", vcov="CR2", alpha=0.05)
    assert abs(estimate - last["sequential"]["estimate"]) < 1e-12 and abs(se - last["sequential"]["se"]) < 1e-12
    assert abs(df - last["sequential"]["df"]) < 1e-9
    # an edited state, and a lost one: each rebuilt from the first look, to the same bytes
    for damage in ("edited", "lost"):
        for state in sorted((root / ".sequential").glob("*.parquet")):  # after a loss, the last day's alone
            if damage == "lost":
                state.unlink()
            else:
                pd.read_parquet(state).assign(y_sum=0.0).to_parquet(state)
        (root / dates[-1] / "day.json").unlink()
        assert main(["run", str(folder / "experiment.toml"), "--json"]) == 0
        capsys.readouterr()
        assert json.loads((root / dates[-1] / "day.json").read_text()) == last, damage


def test_the_fixed_rule_says_it_is_one_look(example, tmp_path, capsys):
    folder = tmp_path / "exp"
    shutil.copytree(example, folder)
    path = folder / "experiment.toml"
    path.write_text(path.read_text().replace('inference = "sequential"', 'inference = "fixed"'))
    assert load_config(path).inference == "fixed"
    assert main(["run", str(path), "--json"]) == 0
    day = json.loads(capsys.readouterr().out)
    assert "sequential" not in day and day["inference"] == "fixed"
    said = verdict(day)
    assert "interval" in said and "band" not in said and ("one look" in said or "includes 0" in said)
    path.write_text(path.read_text().replace('inference = "fixed"', 'inference = "bayesian"'))
    assert main(["validate", str(path)]) == 2
    assert "[analysis.inference] 'bayesian' is not one of sequential, fixed" in capsys.readouterr().err


@pytest.mark.slow
def test_a_a_calibration_of_the_whole_daily_job(tmp_path):
    """120 simulated experiments (3 assignments by the job's own ledger x 40 outcome draws,
    15 days of the example's churn): the always-valid band ever excludes 0 in at most
    alpha + 2 Monte Carlo se of them (0.05 + 0.04); the fixed daily interval, looked at
    every day, far more often (measured: about 0.6-0.9, depending on the draw)."""
    table = calibrate(tmp_path, n_users=1_500, n_days=15, n_salts=3, n_draws=40, seed=5)
    n = len(table)
    assert n == 120
    sequential, fixed = table["ever_sequential"].mean(), table["ever_fixed"].mean()
    assert sequential <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / n), sequential
    assert fixed > sequential + 0.2, (fixed, sequential)
    assert table["covered_end"].mean() >= 0.95 - 2 * math.sqrt(0.05 * 0.95 / n)


def test_plan_duration_days_sets_the_days_to_detection(tmp_path, capsys):
    """plan --duration-days: the design's se is the planned end's, so with a longer plan
    each day holds less information and the same effect takes more days to detect; the
    band's MDE at its own planned end does not depend on the duration."""
    from spillover import synth

    graph = synth.social_graph(1_500, seed=2)
    edges, history = tmp_path / "edges.parquet", tmp_path / "history.parquet"
    synth.edge_table(graph).to_parquet(edges)
    pd.DataFrame({"unit_id": graph.nodes, "y": np.random.default_rng(1).normal(size=1_500)}).to_parquet(history)
    rows = {}
    for days in ("10", "60"):
        assert main(["plan", "--edges", str(edges), "--outcomes", str(history), "--effect", "0.3",
                     "--duration-days", days, "--json"]) == 0
        rows[days] = json.loads(capsys.readouterr().out)["candidates"][0]
    assert rows["10"]["days_to_detect"] < rows["60"]["days_to_detect"]
    assert rows["10"]["days_to_power"] < rows["60"]["days_to_power"]
    assert rows["60"]["mde_sequential"] == pytest.approx(rows["10"]["mde_sequential"], rel=1e-12)
