"""The demo end to end, the simulate command, and the HTML report in a real browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

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


def test_simulate_refuses_unknown_designs(capsys):
    assert main(["simulate", "--designs", "project,bogus", "--n-sims", "10"]) == 2
    assert "unknown design" in capsys.readouterr().err


def find_browser() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out), "--seed", "0"]) == 0
    return out


@pytest.mark.slow
def test_demo_writes_a_self_contained_report_with_its_tables(demo_report):
    html = (demo_report / "report.html").read_text()
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert len(images) >= 5 and all(len(i) > 5_000 for i in images)
    assert "http://" not in html and "https://" not in html  # nothing fetched when opened
    for name in ("clustering", "cluster_tradeoff", "marketplace_effects", "design_comparison_aa",
                 "design_comparison_effect", "gamma_sweep"):
        assert (demo_report / f"{name}.csv").exists(), name


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
