"""Each engine gives exactly the memory engine's results: the same exposure table, the
same components, the same hash assignment and the same estimates (to 1e-9)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from spillover import InputError, SocialGraph, synth
from spillover.design import HashSpec, IndividualDesign
from spillover.engines import get_engine
from spillover.errors import DataWarning, EngineError
from spillover.engines.spark import java_available
from spillover.estimate import estimate, estimate_from_stats

COUNT_COLUMNS = ["n_neighbors", "n_treated_neighbors"]


def normalise(table: pd.DataFrame) -> pd.DataFrame:
    """Same values, same dtypes: engines differ only in how a column is typed."""
    table = table.sort_values("unit_id").reset_index(drop=True)
    out = table.assign(**{c: table[c].astype(np.int64) for c in COUNT_COLUMNS if c in table})
    if "arm" in out:
        out["arm"] = out["arm"].astype("Int64")
    if "condition" in out:
        out["condition"] = out["condition"].astype(str)
    return out


@pytest.fixture(scope="module")
def social():
    edges = synth.edge_table(synth.social_graph(2_000, mean_degree=6, seed=1))
    # a duplicate in reverse, a self-loop and string ids: the engines must treat them alike
    edges = pd.concat([edges, edges.iloc[:3].rename(columns={"source": "target", "target": "source"}),
                       pd.DataFrame({"source": [5], "target": [5]})], ignore_index=True)
    edges = edges.assign(source="u" + edges["source"].astype(str), target="u" + edges["target"].astype(str))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = SocialGraph.from_edges(edges)
    assignment = IndividualDesign(graph.nodes, 0.3).assign(seed=2).to_frame()[["unit_id", "arm"]]
    rng = np.random.default_rng(3)
    outcomes = pd.DataFrame({"unit_id": graph.nodes, "y": rng.normal(size=graph.n_nodes) + assignment["arm"].to_numpy()})
    clusters = pd.DataFrame({"unit_id": graph.nodes, "cluster_id": rng.integers(0, 60, graph.n_nodes)})
    return {"edges": edges, "assignment": assignment, "outcomes": outcomes, "clusters": clusters}


@pytest.fixture(scope="module")
def market():
    graph = synth.marketplace(3_000, 300, seed=4)
    buyers, sellers = graph.edge_index()
    edges = pd.DataFrame({"buyer_id": buyers, "seller_id": sellers})
    from spillover import BipartiteGraph

    sellers_in_data = BipartiteGraph.from_edges(edges, unit="buyer_id", treated="seller_id").treated
    assignment = IndividualDesign(sellers_in_data, 0.5).assign(seed=5).to_frame()[["unit_id", "arm"]]
    return {"edges": edges, "assignment": assignment}


@pytest.fixture(scope="module")
def spark_engine():
    if not java_available():
        pytest.skip("no Java runtime here: the Spark engine needs Java 17 (apt-get install openjdk-17-jre-headless)")
    pytest.importorskip("pyspark", reason="PySpark is installed by the dev extra")
    return get_engine("spark", master="local[2]")


SPARK = pytest.param("spark", marks=pytest.mark.spark)


@pytest.fixture(scope="module", params=["duckdb", SPARK])
def engine(request):
    if request.param == "spark":
        return request.getfixturevalue("spark_engine")
    return get_engine("duckdb", memory_limit="1GB")


MEMORY = get_engine("memory")


@pytest.mark.parametrize("mapping", ["fraction", "as4", "threshold"])
def test_social_exposure_is_identical(engine, social, mapping):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = MEMORY.exposure(social["edges"], social["assignment"], mapping)
        got = engine.exposure(social["edges"], social["assignment"], mapping)
    pd.testing.assert_frame_equal(normalise(got), normalise(expected), check_exact=True)


def test_bipartite_exposure_is_identical(engine, market):
    kwargs = dict(source="buyer_id", target="seller_id", bipartite=True)
    expected = MEMORY.exposure(market["edges"], market["assignment"], "bipartite", **kwargs)
    got = engine.exposure(market["edges"], market["assignment"], "bipartite", **kwargs)
    pd.testing.assert_frame_equal(normalise(got), normalise(expected), check_exact=True)


def test_components_are_identical(engine):
    network = synth.collaboration_network(1_500, seed=6)

    graph = network.user_graph()
    edges = synth.edge_table(graph)
    edges = pd.concat([edges, pd.DataFrame({"source": [10_000], "target": [10_000]})], ignore_index=True)  # isolated
    expected = MEMORY.components(edges)
    got = engine.components(edges)
    assert expected["cluster_id"].nunique() > 50
    if engine.name == "spark":
        assert engine.components_backend == "graphx", "GraphX ships with PySpark and is reachable in local mode"
    pd.testing.assert_frame_equal(got.sort_values("unit_id").reset_index(drop=True).astype(np.int64),
                                  expected.sort_values("unit_id").reset_index(drop=True).astype(np.int64))


@pytest.mark.parametrize("key", ["unit_id", "cluster_id"])
def test_hash_assignment_is_bit_for_bit(engine, social, key):
    units = social["clusters"]
    kwargs = dict(salt="exp'7", spec=HashSpec.of([0.8, 0.1, 0.1], arms=[-1, 0, 1]), key=key)
    expected = MEMORY.hash_assign(units, **kwargs)
    got = engine.hash_assign(units, **kwargs)
    pd.testing.assert_frame_equal(got.sort_values("unit_id").reset_index(drop=True).astype({"arm": np.int64}),
                                  expected.sort_values("unit_id").reset_index(drop=True))


@pytest.mark.parametrize("method", ["difference-in-means", "cluster-means", "ols-cluster"])
def test_estimates_from_the_engines_statistics_equal_memory(engine, social, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = MEMORY.exposure(social["edges"], social["assignment"], "as4")
        clusters = social["clusters"]
        # the same formula from both paths; the difference in means of exposure groups ignores the design (labelled)
        direct = estimate(social["outcomes"], table.assign(condition=pd.Categorical(table["condition"])),
                          method, clusters=clusters if method != "difference-in-means" else None,
                          ignore_design=True).to_frame()
        stats = engine.cluster_stats(social["outcomes"], table, clusters)
    got = estimate_from_stats(stats, method, "no").to_frame()
    merged = direct.merge(got, on="condition", suffixes=("", "_engine"))
    assert len(merged) == 3
    for column in ("estimate", "se", "ci_low", "ci_high", "p_value"):
        np.testing.assert_allclose(merged[f"{column}_engine"], merged[column], rtol=0, atol=1e-9, err_msg=column)


@pytest.mark.parametrize("clustered", [False, True], ids=["sellers", "seller-clusters"])
def test_ols_bipartite_from_the_engines_sums_equals_memory(engine, market, clustered):
    """The seller jackknife from per-seller (per seller cluster) sums the engine computes:
    the sums equal the memory engine's exactly, and the effects equal the in-memory
    ols-bipartite (which refits on the buyers) to 1e-10."""
    from spillover import BipartiteGraph
    from spillover.design import BipartiteDesign
    from spillover.estimate import analyse_on_engine
    from spillover.estimate.bipartite import ols_bipartite

    edges = market["edges"]
    graph = BipartiteGraph.from_edges(edges, unit="buyer_id", treated="seller_id")
    clusters = np.arange(graph.n_treated_side) % 40 if clustered else None
    assignment = BipartiteDesign(graph, clusters=clusters).assign(seed=7).to_frame()
    kwargs = dict(source="buyer_id", target="seller_id")
    table = MEMORY.exposure(edges, assignment[["unit_id", "arm"]], "bipartite", bipartite=True, **kwargs)
    rng = np.random.default_rng(8)
    outcomes = pd.DataFrame({"unit_id": table["unit_id"], "y": rng.normal(size=len(table))
                             + 0.4 * table["treated_fraction"].to_numpy()})
    blocks = assignment[["unit_id", "cluster_id"]] if clustered else None
    expected = MEMORY.treated_side_stats(outcomes, table, edges, blocks, **kwargs)
    got = engine.treated_side_stats(outcomes, table, edges, blocks, **kwargs)
    order = ["cluster_id", "condition"]
    pd.testing.assert_frame_equal(got.sort_values(order).reset_index(drop=True)[expected.columns],
                                  expected.sort_values(order).reset_index(drop=True), check_dtype=False,
                                  check_exact=False, rtol=1e-12)
    rows = graph.units.get_indexer(pd.Index(table["unit_id"]))
    assert (rows >= 0).all()
    direct = ols_bipartite(table.assign(y=outcomes["y"].to_numpy()), "control", graph,
                           blocks=None if clusters is None else clusters)
    effects = analyse_on_engine(engine, outcomes, table, "ols-bipartite", edges=edges, assignment=assignment,
                                **kwargs).effects
    assert [e.condition for e in effects] == [e.condition for e in direct]
    for a, b in zip(effects, direct):
        assert a.n_clusters == b.n_clusters
        np.testing.assert_allclose([a.estimate, a.se, a.ci_low, a.ci_high], [b.estimate, b.se, b.ci_low, b.ci_high],
                                   rtol=0, atol=1e-10)


def test_missing_outcomes_written_as_na_in_a_csv_are_missing_on_every_engine(engine, social, tmp_path):
    # pandas reads 'NA' and 'nan' in a number column as missing; DuckDB's sniffer read the
    # whole column as text. Ids stay text either way ('NA' can be an id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = MEMORY.exposure(social["edges"], social["assignment"], "as4")
    outcomes = social["outcomes"].astype({"y": object})
    outcomes.loc[outcomes.index[:5], "y"] = "NA"
    outcomes.loc[outcomes.index[5:8], "y"] = "nan"
    path = tmp_path / "outcomes.csv"
    outcomes.to_csv(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected, got = (runner.cluster_stats(str(path), table, social["clusters"]) for runner in (MEMORY, engine))
    assert int(expected["n"].sum()) == len(outcomes) - 8
    key = list(expected.columns[:2])
    pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True).astype(expected.dtypes.to_dict()),
                                  expected.sort_values(key).reset_index(drop=True), check_exact=False, rtol=1e-12)


@pytest.mark.spark
def test_spark_dataframe_components_fallback_agrees(spark_engine):
    engine = spark_engine
    ids = engine.spark.createDataFrame(pd.DataFrame({"unit_id": range(8), "v": range(8)}))
    pairs = engine.spark.createDataFrame(pd.DataFrame({"a": [0, 1, 3, 5, 6], "b": [1, 2, 4, 6, 7]}))
    labels = engine._dataframe_components(pairs, ids).orderBy("v").select("l").collect()
    assert [r[0] for r in labels] == [0, 0, 0, 3, 3, 5, 5, 5]


def test_bad_input_is_named(engine, social):
    with pytest.raises(InputError, match=r"missing column\(s\) \['target'\]"):
        engine.exposure(social["edges"].rename(columns={"target": "dst"}), social["assignment"], "as4")
    with pytest.raises(InputError, match="none of its 2 ids is in the graph"):
        engine.exposure(social["edges"], pd.DataFrame({"unit_id": ["zz", "yy"], "arm": [1, 0]}), "as4")


@pytest.mark.parametrize("bipartite", [False, True], ids=["social", "bipartite"])
def test_assigned_units_without_edges_are_kept_as_isolates_by_every_engine(engine, social, market, bipartite):
    """Isolates expose no one and are exposed by no one: a counted warning, not an error."""
    if bipartite:
        data, kwargs, mapping = market, dict(source="buyer_id", target="seller_id", bipartite=True), "bipartite"
        extra = pd.DataFrame({"unit_id": [10_001, 10_002], "arm": [1, 1]})  # sellers with no buyers this week
    else:
        data, kwargs, mapping = social, {}, "as4"
        extra = pd.DataFrame({"unit_id": ["new-1", "new-2"], "arm": [1, 0]})
    assignment = pd.concat([data["assignment"], extra], ignore_index=True)
    tables = []
    for runner in (MEMORY, engine):
        with pytest.warns(DataWarning, match="2 of its .* ids have no edge"):
            tables.append(normalise(runner.exposure(data["edges"], assignment, mapping, **kwargs)))
    pd.testing.assert_frame_equal(tables[1], tables[0], check_exact=True)
    if not bipartite:
        rows = tables[0].set_index("unit_id").loc[["new-1", "new-2"]]
        assert rows["n_neighbors"].tolist() == [0, 0] and rows["condition"].tolist() == ["isol_dir", "no"]
    else:  # the buyers' exposures are those without the isolated sellers
        expected = normalise(MEMORY.exposure(data["edges"], data["assignment"], mapping, **kwargs))
        pd.testing.assert_frame_equal(tables[0], expected, check_exact=True)


def test_csv_ids_are_text_on_every_engine_unless_declared(engine, tmp_path):
    """007, 7 and 0007 are three ids, NA is an id; --id-type int refuses them in every engine."""
    from spillover.graph import id_type

    edges, assignment = tmp_path / "edges.csv", tmp_path / "assignment.csv"
    edges.write_text("source,target\n007,7\n7,8\n0007,8\nNA,8\n")
    assignment.write_text("unit_id,arm\n007,1\n7,0\n8,1\n0007,0\nNA,1\n")
    expected = normalise(MEMORY.exposure(str(edges), str(assignment), "as4"))
    assert expected["unit_id"].tolist() == ["0007", "007", "7", "8", "NA"]
    assert expected.set_index("unit_id")["n_neighbors"].to_dict() == {"0007": 1, "007": 1, "7": 2, "8": 3, "NA": 1}
    pd.testing.assert_frame_equal(normalise(engine.exposure(str(edges), str(assignment), "as4")), expected)
    with id_type("int"), pytest.raises(InputError, match="--id-type int"):
        engine.exposure(str(edges), str(assignment), "as4")
    edges.write_text("source,target\n1,2\n2,3\n")  # canonical integers: numbers on every engine
    assignment.write_text("unit_id,arm\n1,1\n2,0\n3,1\n")
    for runner in (MEMORY, engine):
        assert normalise(runner.exposure(str(edges), str(assignment), "as4"))["unit_id"].tolist() == [1, 2, 3]
    with id_type("str"):
        for runner in (MEMORY, engine):
            assert normalise(runner.exposure(str(edges), str(assignment), "as4"))["unit_id"].tolist() == ["1", "2", "3"]


def test_duckdb_memory_limit_too_small_is_a_clear_error(tmp_path):
    edges = synth.edge_table(synth.social_graph(200_000, mean_degree=20, seed=7))
    path = tmp_path / "edges.parquet"
    edges.to_parquet(path)
    engine = get_engine("duckdb", memory_limit="4MB", temp_directory=str(tmp_path / "spill"))
    engine.con.execute("SET max_temp_directory_size = '1MB'")  # no room to spill either
    with pytest.raises(EngineError, match="ran out of memory.*raise --memory-limit"):
        engine.components(path)


@pytest.mark.spark
def test_a_missing_java_runtime_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(EngineError, match="needs a Java runtime"):
        get_engine("spark")


# --------------------------------------------------------------------------- command line


def run(capsys, argv):
    import json

    from spillover.cli import main

    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def files(tmp_path_factory, social):
    folder = tmp_path_factory.mktemp("engine_cli")
    for name in ("edges", "assignment", "outcomes", "clusters"):
        social[name].to_parquet(folder / f"{name}.parquet", index=False)
    return folder


@pytest.mark.parametrize("engine_name", ["duckdb", SPARK])
@pytest.mark.filterwarnings("ignore::spillover.errors.DataWarning")
def test_cli_engines_match_memory(capsys, files, tmp_path, engine_name):
    if engine_name == "spark" and not java_available():
        pytest.skip("no Java runtime here: the Spark engine needs Java 17")
    flags = ["--engine", engine_name, *(["--memory-limit", "1GB"] if engine_name == "duckdb" else
                                         ["--spark-master", "local[2]"])]  # each engine's own options
    edges = str(files / "edges.parquet")
    # components
    mem = run(capsys, ["cluster", edges, "--method", "components", "--out", str(tmp_path / "c_mem.parquet"), "--json"])
    eng = run(capsys, ["cluster", edges, "--method", "components", "--out", str(tmp_path / "c_eng.parquet"), "--json", *flags])
    assert {k: mem[k] for k in ("n_units", "n_clusters", "cluster_size_max")} == \
        {k: eng[k] for k in ("n_units", "n_clusters", "cluster_size_max")}
    # hash assignment
    common = ["assign", "--units", str(files / "clusters.parquet"), "--design", "cluster", "--salt", "e1", "--json"]
    run(capsys, [*common, "--out", str(tmp_path / "a_mem.parquet")])
    run(capsys, [*common, "--out", str(tmp_path / "a_eng.parquet"), *flags])
    a_mem = pd.read_parquet(tmp_path / "a_mem.parquet").sort_values("unit_id").reset_index(drop=True)
    a_eng = pd.read_parquet(tmp_path / "a_eng.parquet").sort_values("unit_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a_eng, a_mem, check_dtype=False)
    # exposure and estimate
    expo = ["exposure", edges, "--assignment", str(files / "assignment.parquet"), "--mapping", "as4", "--json"]
    run(capsys, [*expo, "--out", str(tmp_path / "e_mem.parquet")])
    run(capsys, [*expo, "--out", str(tmp_path / "e_eng.parquet"), *flags])
    pd.testing.assert_frame_equal(normalise(pd.read_parquet(tmp_path / "e_eng.parquet")),
                                  normalise(pd.read_parquet(tmp_path / "e_mem.parquet")))
    est = ["estimate", "--outcomes", str(files / "outcomes.parquet"), "--exposure", str(tmp_path / "e_mem.parquet"),
           "--method", "ols-cluster", "--clusters", str(files / "clusters.parquet"), "--json"]
    by_memory = {r["condition"]: r for r in run(capsys, est)["effects"]}
    by_engine = {r["condition"]: r for r in run(capsys, [*est, *flags])["effects"]}
    assert set(by_memory) == set(by_engine)
    for condition, row in by_memory.items():
        for key in ("estimate", "se", "p_value"):
            assert by_engine[condition][key] == pytest.approx(row[key], abs=1e-9)


def test_engines_refuse_what_they_do_not_run(capsys, files):
    from spillover.cli import main

    assert main(["cluster", str(files / "edges.parquet"), "--method", "louvain", "--engine", "duckdb"]) == 2
    assert "runs --method components" in capsys.readouterr().err
    assert main(["assign", "--units", str(files / "clusters.parquet"), "--design", "cluster", "--seed", "1",
                 "--engine", "duckdb"]) == 2
    assert "assigns by keyed hash" in capsys.readouterr().err


# --------------------------------------------------------------------------- injection


SALTS = ["exp'7", "C:\\temp\\exp", "tab\there", "new\nline", "ends with \\", "ünïcødé ✓", "'; DROP TABLE x; --"]


@pytest.mark.parametrize("salt", SALTS, ids=range(len(SALTS)))
def test_salts_give_identical_arms_on_every_engine(engine, social, salt):
    kwargs = dict(salt=salt, spec=HashSpec.of([0.5, 0.5]), key="cluster_id")
    expected = MEMORY.hash_assign(social["clusters"], **kwargs)
    got = engine.hash_assign(social["clusters"], **kwargs)
    pd.testing.assert_frame_equal(got.sort_values("unit_id").reset_index(drop=True).astype({"arm": np.int64}),
                                  expected.sort_values("unit_id").reset_index(drop=True))


def test_crafted_duckdb_settings_and_paths_run_no_sql(tmp_path, social):
    from spillover.engines.duck import DuckDBEngine

    target = tmp_path / "pwned.csv"
    crafted = f"1GB'; COPY (SELECT 42) TO '{target}' (FORMAT csv); --"
    with pytest.raises(InputError, match="is not a size"):
        DuckDBEngine(memory_limit=crafted)
    assert not target.exists()
    # a file name with quotes and SQL in it is read as a file name
    odd = tmp_path / f"edges'); COPY (SELECT 42) TO '{target.name}' (FORMAT csv); --.csv"
    social["edges"].to_csv(odd, index=False)
    engine = DuckDBEngine()
    table = engine.exposure(str(odd), social["assignment"], "as4")
    assert len(table) > 0 and not target.exists()
    # an output path with a quote is written where it says, and nowhere else
    out = tmp_path / "it's here.parquet"
    engine.exposure(social["edges"], social["assignment"], "as4", out=out)
    assert out.exists() and not target.exists()
    # column names with quotes are identifiers, not SQL
    edges = social["edges"].rename(columns={"source": 'so"urce'})
    quoted = engine.exposure(edges, social["assignment"], "as4", source='so"urce')
    pd.testing.assert_frame_equal(normalise(quoted), normalise(engine.exposure(social["edges"], social["assignment"],
                                                                               "as4")))


def test_duckdb_spills_to_a_private_folder():
    import os
    import stat

    from spillover.engines.duck import DuckDBEngine

    engine = DuckDBEngine(memory_limit="1GB")
    mode = stat.S_IMODE(os.stat(engine.temp_directory).st_mode)
    assert mode & 0o077 == 0, oct(mode)


@pytest.mark.parametrize("case, match", [
    ("null", "missing 'unit_id'"), ("repeat", "appears more than once"), ("float", "floating-point ids"),
    ("half_arm", "is not an arm"), ("negative_arm", "is not an arm"),
])
def test_every_engine_refuses_the_ids_and_arms_the_memory_engine_refuses(engine, social, case, match):
    """One input rule for every engine: missing, repeated and floating-point ids, and arms
    that are not whole numbers >= -1, are one-line errors everywhere."""
    good = social["assignment"].head(50)
    ids = good["unit_id"].tolist()
    bad = {
        "null": pd.DataFrame({"unit_id": [None] + ids[1:], "arm": good["arm"]}),
        "repeat": pd.DataFrame({"unit_id": [ids[1]] + ids[1:], "arm": good["arm"]}),
        "float": pd.DataFrame({"unit_id": np.arange(50) + 0.5, "arm": good["arm"]}),
        "half_arm": good.assign(arm=[0.5] + good["arm"].tolist()[1:]),
        "negative_arm": good.assign(arm=[-3] + good["arm"].tolist()[1:]),
    }[case]
    for runner in (MEMORY, engine):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(InputError, match="|".join([match, "missing id", "appears twice", "not in the graph",
                                                           "none of its"])):
                runner.exposure(social["edges"], bad, "as4")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputError, match=match):
            engine.exposure(social["edges"], bad, "as4")


def test_get_engine_refuses_options_an_engine_does_not_take_with_its_list():
    from spillover import InputError
    from spillover.engines import Engine, engine_class

    with pytest.raises(InputError, match=r"duckdb engine does not take \['memory_limt'\]; its options are "
                                         r"\['memory_limit', 'temp_directory', 'threads'\]"):
        get_engine("duckdb", memory_limt="1GB")  # a typo is an error, not an engine without a limit
    with pytest.raises(InputError, match=r"memory engine does not take \['whatever'\]; its options are none"):
        get_engine("memory", whatever=1)
    with pytest.raises(InputError, match="unknown engine 'postgres'"):
        get_engine("postgres")
    assert all(issubclass(engine_class(name), Engine) for name in ("memory", "duckdb", "spark"))


def test_the_command_line_refuses_an_engine_flag_of_another_engine(capsys, tmp_path):
    from spillover.cli import main

    pd.DataFrame({"source": [1, 2], "target": [2, 3]}).to_csv(tmp_path / "edges.csv", index=False)
    assert main(["cluster", str(tmp_path / "edges.csv"), "--method", "components", "--memory-limit", "1GB"]) == 2
    assert "--memory-limit applies to --engine duckdb or spark" in capsys.readouterr().err
    assert main(["cluster", str(tmp_path / "edges.csv"), "--method", "components", "--engine", "duckdb",
                 "--spark-master", "local[2]"]) == 2
    assert "--spark-master does not apply to --engine duckdb" in capsys.readouterr().err


def test_difference_in_means_without_clusters_runs_on_every_engine(engine, social):
    """No clusters: one group of sufficient statistics per condition (it used to end in
    DuckDB's ``GROUP BY 0`` error), the memory engine's numbers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = MEMORY.exposure(social["edges"], social["assignment"], "fraction")
        direct = estimate(social["outcomes"], table, "difference-in-means", ignore_design=True).to_frame()
        stats = engine.cluster_stats(social["outcomes"], table, None)
    got = estimate_from_stats(stats, "difference-in-means", "control").to_frame()
    merged = direct.merge(got, on="condition", suffixes=("", "_engine"))
    assert len(merged) == len(direct) >= 1
    for column in ("estimate", "se", "p_value"):
        np.testing.assert_allclose(merged[f"{column}_engine"], merged[column], rtol=0, atol=1e-9, err_msg=column)


@pytest.mark.parametrize("name", ["edges[1].csv", "edges?.csv", "e{dges,dges1}.csv", "edges*.parquet"])
def test_file_names_are_names_not_patterns_on_every_engine(engine, social, tmp_path, name):
    """A file whose name has glob characters is read as itself, beside decoys its pattern
    would match, on every engine as on the memory engine."""
    edges = social["edges"]
    target = tmp_path / name
    (edges.to_parquet if target.suffix == ".parquet" else lambda p: edges.to_csv(p, index=False))(target)
    decoy = pd.DataFrame({"source": edges["source"].to_numpy()[:50], "target": edges["target"].to_numpy()[::-1][:50]})
    for other in ("edges1.csv", "edges2.csv", "edges1.parquet", "edges2.parquet"):
        (decoy.to_parquet if other.endswith(".parquet") else lambda p: decoy.to_csv(p, index=False))(tmp_path / other)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = MEMORY.exposure(str(target), social["assignment"], "fraction")
        got = engine.exposure(str(target), social["assignment"], "fraction")
    pd.testing.assert_frame_equal(normalise(got), normalise(expected))
