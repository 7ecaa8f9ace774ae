"""The demo end to end, the simulate command, and the HTML report in a real browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from spillover.cli import main

SIMULATE_KEYS = {"design", "bias", "sd", "rmse", "coverage", "ci_width", "power", "n_sims"}


def test_simulate_command_json_and_report(capsys, tmp_path):
    assert main(["simulate", "--users", "5000", "--designs", "project,component", "--n-sims", "200",
                 "--out", str(tmp_path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["true_effect"] > 0.125
    assert [d["design"] for d in payload["designs"]] == ["project", "component"]
    assert all(SIMULATE_KEYS <= set(d) for d in payload["designs"])
    assert (tmp_path / "report.html").exists() and (tmp_path / "design_comparison.csv").exists()
    recommended = payload["recommendation"]
    assert recommended["design"] in ("project", "component") and recommended["reason"]
    assert "Recommended design" in (tmp_path / "report.html").read_text()


def test_simulate_refuses_unknown_designs(capsys):
    assert main(["simulate", "--designs", "project,bogus", "--n-sims", "10"]) == 2
    assert "unknown design" in capsys.readouterr().err


def find_browser() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    """The README's main job, its command word for word, in a folder laid out like a fresh
    clone: ``spillover demo --out demo-out``."""
    from tests.test_readme import fresh_folder, run_bash, start_commands

    folder = fresh_folder(tmp_path_factory.mktemp("demo"))
    command = start_commands()[0].split("&& ")[-1]
    run_bash(command, folder, timeout=900)
    return folder / "demo-out"


@pytest.mark.slow
def test_demo_writes_a_self_contained_report_with_its_tables(demo_report):
    html = (demo_report / "report.html").read_text()
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert len(images) >= 6 and all(len(i) > 5_000 for i in images)
    assert "http://" not in html and "https://" not in html  # nothing fetched when opened
    for name in ("clustering", "cluster_tradeoff", "marketplace_effects", "design_comparison_aa",
                 "design_comparison_effect", "gamma_sweep", "recommendation"):
        assert (demo_report / f"{name}.csv").exists(), name


@pytest.mark.slow
def test_demo_tables_say_what_is_true(demo_report):
    """Not only files: the numbers in them agree with what the demo simulated."""
    clustering = pd.read_csv(demo_report / "clustering.csv").set_index("method")
    assert clustering.loc["components", "cut_fraction"] == 0.0
    assert clustering["cut_fraction"].between(0, 1).all()
    # community detection cuts far fewer edges than the 3-net's small balls on planted communities
    assert clustering.loc["louvain", "cut_fraction"] < clustering.loc["3net", "cut_fraction"] / 2
    # marketplace: every ols-cluster interval covers its known truth (3 contrasts; the
    # chance that a 95% interval misses is 5% each, so this fails by chance < 15% of seeds;
    # the seed is fixed, so it does not flake)
    effects = pd.read_csv(demo_report / "marketplace_effects.csv")
    ols = effects[effects["method"].str.startswith("OLS")]
    assert len(ols) >= 2 and ((ols["ci_low"] <= ols["truth"]) & (ols["truth"] <= ols["ci_high"])).all()
    # A/A: coverage of 1,000 experiments within 4 Monte Carlo standard errors of 95%
    aa = pd.read_csv(demo_report / "design_comparison_aa.csv")
    assert ((aa["coverage"] - 0.95).abs() < 4 * (0.95 * 0.05 / aa["n_sims"]) ** 0.5).all(), aa
    # the recommendation follows its rule on the comparison it was made from
    effect = recommended_by_rule(pd.read_csv(demo_report / "design_comparison_effect.csv"))
    assert pd.read_csv(demo_report / "recommendation.csv")["design"].iloc[0] == effect


def recommended_by_rule(table: pd.DataFrame, level: float = 0.95) -> str:
    unbiased = table["bias"].abs() <= 2 * table["sd"] / table["n_sims"] ** 0.5
    honest = table[(table["coverage"] >= level - 2 * (level * (1 - level) / table["n_sims"]) ** 0.5) & unbiased]
    return honest.loc[honest["ci_width"].idxmin(), "design"]


@pytest.mark.slow
def test_demo_json_names_every_file_and_the_recommended_design(capsys, tmp_path):
    assert main(["demo", "--out", str(tmp_path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["report"] == str(tmp_path / "report.html")
    assert all(Path(p).exists() for p in payload["tables"].values())
    assert payload["recommended_design"] in ("project", "component", "stratified-component")


@pytest.mark.slow
def test_report_renders_in_headless_chromium(demo_report, tmp_path):
    browser = find_browser()
    if browser is None:
        pytest.skip("no Chromium here: .ci/run installs Debian's chromium where it can; this test needs it")
    shot = tmp_path / "report.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,3000", f"--screenshot={shot}",
         (demo_report / "report.html").as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    from PIL import Image

    image = Image.open(shot).convert("L")
    assert image.size == (1280, 3000)
    histogram = image.histogram()
    dark = sum(histogram[:128]) / sum(histogram)
    assert 0.01 < dark < 0.5, "the page shows text and plots, not a blank or failed page"
