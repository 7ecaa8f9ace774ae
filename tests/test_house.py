"""House rules a newcomer relies on: help that documents every option, one meaning of
``seed``, no private name crossing modules, a light import, ``python -m spillover``."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

import spillover
from spillover import DesignError, InputError, cluster, synth
from spillover.cli import build_parser
from spillover.design import DESIGN_NAMES, DESIGN_OPTIONS, check_spec, design_from_spec, hash_spec
from spillover.seeds import check_seed, int_seed

SRC = Path(spillover.__file__).parent


def subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_option_has_help_and_a_default(name):
    parser = subcommands()[name]
    assert parser.description and len(parser.description) > 20, name
    text = parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{name} {action.option_strings or action.dest}: no help line"
        if action.option_strings:
            line = parser._get_formatter()._get_help_string(action)
            assert "default:" in line or "(required)" in line, f"{name} {action.option_strings}: {line!r}"
    assert "%(default)" not in text and "None)" not in text, text


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "spillover", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"spillover {spillover.__version__}"


def test_the_version_is_written_once():
    assert version("spillover") == spillover.__version__


def test_no_private_name_crosses_a_module_line():
    crossings = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                crossings += [f"{path.name}: {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
    assert crossings == []


def test_importing_spillover_is_light_and_leaves_matplotlib_alone():
    code = ("import sys, spillover, spillover.report, spillover.cli; "
            "print(sorted(m for m in ('matplotlib.pyplot', 'statsmodels', 'pyspark') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_commands_parser_imports_none_of_the_library():
    """Every command's options come from spillover.names: building the whole parser (what
    ``spillover estimate --help`` does) loads neither numpy nor pandas nor a stage."""
    code = ("import sys; from spillover.cli.parser import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'pandas', 'scipy', 'rich') "
            "or m in ('spillover.estimate', 'spillover.graph', 'spillover.cli.units')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_registry_matches_its_name_list():
    from spillover import names
    from spillover.engines import ENGINE_CLASSES
    from spillover.estimate import ESTIMATORS
    from spillover.exposure import MAPPINGS

    assert (tuple(ENGINE_CLASSES), tuple(ESTIMATORS), tuple(MAPPINGS)) == (names.ENGINES, names.ESTIMATE_METHODS,
                                                                           names.MAPPING_NAMES)
    with pytest.raises(RuntimeError, match="update one to match"):
        names.check_registry("estimators", {**ESTIMATORS, "new": None}, names.ESTIMATE_METHODS)


# --------------------------------------------------------------------------- seeds


def test_check_seed_has_one_meaning():
    assert check_seed(5).random() == check_seed(5).random()  # an int: reproducible
    generator = np.random.default_rng(1)
    assert check_seed(generator) is generator  # a Generator: drawn from
    assert check_seed(None).random() != check_seed(None).random()  # None: fresh entropy
    assert int_seed(11) == 11
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(InputError, match="a seed is a whole number"):
            check_seed(bad)


@pytest.mark.parametrize("method", ["louvain", "leiden", "metis", "3net", "ego"])
def test_a_seed_makes_every_method_reproducible(method):
    graph = synth.social_graph(600, seed=2)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = cluster(graph, method, seed=4), cluster(graph, method, seed=4)
    assert np.array_equal(a.labels, b.labels)


def test_methods_refuse_options_they_do_not_use():
    graph = synth.social_graph(300, seed=2)
    with pytest.raises(InputError, match=r"components does not use \['resolution'\]; its options are none"):
        cluster(graph, "components", resolution=5)
    with pytest.raises(InputError, match=r"metis does not use \['resolution'\]; its options are \['n_parts'\]"):
        cluster(graph, "metis", resolution=2.0)


# --------------------------------------------------------------------------- design specs


def test_design_specs_fill_defaults_and_refuse_unused_options():
    for name in DESIGN_NAMES:
        assert check_spec({"design": name}) == {"design": name, **DESIGN_OPTIONS[name]}
    with pytest.raises(DesignError, match=r"holdout design does not use \['treat_fraction'\]"):
        check_spec({"design": "holdout", "treat_fraction": 0.3})
    with pytest.raises(DesignError, match="unknown design 'clustr'"):
        check_spec({"design": "clustr"})


@pytest.mark.parametrize("spec", [{"design": "cluster", "treat_fraction": 0.3},
                                  {"design": "holdout", "holdout_fraction": 0.2},
                                  {"design": "stratified-cluster", "sample_fraction": 0.5, "n_bins": 2},
                                  {"design": "individual", "arm_weights": [1, 2, 1]}])
def test_a_spec_hashes_like_the_design_built_from_it(spec):
    """The engines and the ledger hash from the spec alone; the design from the units:
    both must give the same arms."""
    units = synth.collaboration_memberships(synth.collaboration_network(400, seed=1)).drop_duplicates("user_id")
    units = units.rename(columns={"user_id": "unit_id", "project_id": "cluster_id"})
    design = design_from_spec(spec, units)
    keys = units["unit_id"] if spec["design"] == "individual" else design.cluster_ids
    assert design.hash_spec() == hash_spec(spec)
    by_design = design.assign(salt="s").arms
    by_spec = hash_spec(spec).assign(keys, "s")
    expected = by_spec if spec["design"] == "individual" else by_spec[design.clusters]
    assert np.array_equal(by_design, expected)


@pytest.mark.parametrize("path", sorted((SRC.parents[1] / "benchmarks").glob("bench_*.py")), ids=lambda p: p.name)
def test_every_benchmark_imports(path):
    """Benchmarks run by hand; importing them here catches a renamed or removed name."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
