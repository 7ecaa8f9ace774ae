"""Docs that run: the site builds with warnings as errors, the worked studies run as
printed, and the public API (each module's ``__all__``) is documented with examples,
which pytest runs as doctests (``--doctest-modules`` in pyproject.toml)."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "spillover"
API_MODULES = ["graph", "plan", "health", "clustering", "design", "exposure", "estimate", "variance", "simulate", "ledger", "warehouse", "evolve", "experiment", "daily",
               "synth", "report", "plots", "display", "seeds", "errors", "engines", "engines.duck", "engines.spark", "engines.memory"]


@pytest.mark.slow
def test_the_docs_site_builds_with_no_warning(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True, env={"NO_MKDOCS_2_WARNING": "1",
                                                                           "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-4000:]
    assert "WARNING" not in result.stderr, result.stderr[-4000:]
    reference = (tmp_path / "site" / "api" / "design" / "index.html").read_text()
    assert 'id="spillover.design.design_from_spec"' in reference  # the API reference is generated
    cli = (tmp_path / "site" / "cli" / "index.html").read_text()
    assert "spillover synth" in cli and "default:" in cli  # and the CLI page, from the parser
    raw = [str(page.relative_to(tmp_path)) for page in (tmp_path / "site" / "api").rglob("index.html")
           if re.search(r":(class|func|meth|mod|data|attr):", page.read_text())]
    assert raw == [], raw  # no Sphinx role shown as raw text


@pytest.mark.slow  # end to end: runs with --full (CI)
@pytest.mark.parametrize("page", sorted(str(p.relative_to(ROOT / "docs")) for folder in ("studies", "methods")
                                         for p in (ROOT / "docs" / folder).glob("*.md")))
def test_a_worked_study_runs_as_printed(page, capsys):
    text = (ROOT / "docs" / page).read_text()
    code = "\n".join(re.findall(r"```python\n(.*?)```", text, re.S))
    assert code
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, page, "exec"), {"__name__": "study"})
    assert capsys.readouterr().out


def public_api() -> list[tuple[str, object]]:
    items = []
    for name in API_MODULES:
        module = importlib.import_module(f"spillover.{name}")
        assert hasattr(module, "__all__"), f"spillover.{name} declares no __all__"
        items += [(f"{name}.{member}", getattr(module, member)) for member in module.__all__]
    return items


@pytest.mark.parametrize("name, obj", [(n, o) for n, o in public_api() if inspect.isfunction(o) or inspect.isclass(o)],
                         ids=lambda value: value if isinstance(value, str) else "")
def test_public_api_has_a_docstring_with_a_runnable_example(name, obj):
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{name}: no docstring"
    assert ">>>" in doc, f"{name}: no example"
    if inspect.isclass(obj):
        for member, value in vars(obj).items():
            if member.startswith("_"):
                continue
            target = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
            if inspect.isfunction(target):
                assert inspect.getdoc(target), f"{name}.{member}: no docstring"


def test_every_public_definition_has_a_docstring():
    """Not only the API: every function and class without a leading underscore."""
    missing = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            nodes = [node] + (list(node.body) if isinstance(node, ast.ClassDef) else [])
            for item in nodes:
                if isinstance(item, (ast.FunctionDef, ast.ClassDef)) and not item.name.startswith("_") \
                        and not ast.get_docstring(item):
                    missing.append(f"{path.relative_to(SRC)}:{item.lineno} {item.name}")
    assert missing == []


@pytest.mark.slow  # builds the site and starts a browser: runs with --full (CI installs Chromium)
def test_an_api_page_renders_in_headless_chromium(tmp_path):
    """The estimate API page as a reader's browser lays it out: its DOM after scripts run
    names the functions and shows no raw Sphinx role, and the screenshot holds text."""
    from tests.test_report import find_browser

    browser = find_browser()
    if browser is None:
        pytest.skip("no Chromium here: .ci/run installs Debian's chromium where it can; this test needs it")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "-d", str(site)], cwd=ROOT, check=True,
                   capture_output=True, env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"}, timeout=300)
    page = (site / "api" / "estimate" / "index.html").as_uri()
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", page], check=True, capture_output=True, text=True, timeout=120).stdout
    assert "spillover.estimate.estimate" in dom and "Effects" in dom
    assert not re.search(r":(class|func|meth|mod|data|attr):`", dom)
    shot = tmp_path / "page.png"
    subprocess.run([*flags, "--window-size=1280,1600", f"--screenshot={shot}", page], check=True, capture_output=True,
                   timeout=120)
    from PIL import Image

    image = Image.open(shot).convert("L")
    histogram = image.histogram()
    dark = sum(histogram[:128]) / sum(histogram)
    assert image.size == (1280, 1600) and 0.005 < dark < 0.5, f"dark share {dark:.3f}: a blank or failed page"
