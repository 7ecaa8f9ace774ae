"""The Spark engine on a real standalone cluster, not only ``local[*]``: a master and two
workers started on 127.0.0.1 by the test itself (Spark's own classes through
``spark-class``), the engine's steps run against ``spark://127.0.0.1:PORT`` from the
command line and from Python, with the memory engine's results."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from spillover import synth
from spillover.engines import get_engine
from spillover.engines.spark import java_available

pytestmark = pytest.mark.spark


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory):
    """``spark://127.0.0.1:PORT``: a standalone master and two one-core workers, stopped at the end."""
    if not java_available():
        pytest.skip("no Java runtime here: the Spark engine needs Java 17")
    pyspark = pytest.importorskip("pyspark", reason="PySpark is installed by the dev extra")
    home = Path(pyspark.__file__).parent
    folder = tmp_path_factory.mktemp("spark-cluster")
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false", "PYSPARK_PYTHON": sys.executable}
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    launch = [str(home / "bin" / "spark-class")]
    processes = [subprocess.Popen([*launch, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port",
                                   str(port), "--webui-port", str(free_port())], env=env,
                                  stdout=open(folder / "master.log", "w"), stderr=subprocess.STDOUT)]
    try:
        for k in range(2):  # two workers, one core each
            processes.append(subprocess.Popen(
                [*launch, "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1", "--cores", "1",
                 "--memory", "1g", "--webui-port", str(free_port()), "--work-dir", str(folder / f"work-{k}")],
                env=env, stdout=open(folder / f"worker-{k}.log", "w"), stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 120
        while (folder / "master.log").read_text().count("Registering worker") < 2:  # a wait for the workers
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                pytest.fail(f"the standalone cluster did not start: {(folder / 'master.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cluster-inputs")
    graph = synth.social_graph(3_000, mean_degree=6, seed=8)
    edges = synth.edge_table(graph)
    edges.to_parquet(folder / "edges.parquet", index=False)
    assignment = pd.DataFrame({"unit_id": graph.nodes, "arm": (graph.nodes.to_numpy() % 3 == 0).astype(int)})
    assignment.to_parquet(folder / "assignment.parquet", index=False)
    return folder, edges, assignment


SCRIPT = """
import json, sys
from spillover.design import HashSpec
from spillover.engines import get_engine
engine = get_engine("spark", master=sys.argv[1])
context = engine.spark.sparkContext
folder = sys.argv[2]
engine.components(folder + "/edges.parquet").to_parquet(folder + "/components.parquet")
engine.hash_assign(folder + "/assignment.parquet", salt="cluster-test", spec=HashSpec.of([0.5, 0.5])).to_parquet(
    folder + "/hashed.parquet")
print(json.dumps({"master": context.master, "executors": context._jsc.sc().getExecutorMemoryStatus().size() - 1,
                  "backend": engine.components_backend}))
"""


@pytest.mark.filterwarnings("ignore::spillover.errors.FewClustersWarning")
def test_the_engine_on_a_standalone_cluster_gives_the_memory_engines_results(spark_cluster, inputs):
    folder, edges, assignment = inputs
    from spillover.design import HashSpec

    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", SCRIPT, spark_cluster, str(folder)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    assert facts["master"] == spark_cluster and facts["executors"] == 2  # the work ran on the two workers
    memory = get_engine("memory")
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "components.parquet"), memory.components(edges),
                                  check_dtype=False)
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "hashed.parquet"),
                                  memory.hash_assign(assignment, salt="cluster-test", spec=HashSpec.of([0.5, 0.5])),
                                  check_dtype=False)
    # the command line, pointed at the cluster: exposure identical to the memory engine's
    command = [sys.executable, "-m", "spillover", "exposure", str(folder / "edges.parquet"), "--assignment",
               str(folder / "assignment.parquet"), "--mapping", "as4", "--json"]
    done = subprocess.run([*command, "--out", str(folder / "exposure-spark.parquet"), "--engine", "spark",
                           "--spark-master", spark_cluster], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert subprocess.run([*command, "--out", str(folder / "exposure-memory.parquet")], capture_output=True,
                          timeout=300).returncode == 0
    spark, mine = (pd.read_parquet(folder / f"exposure-{name}.parquet").sort_values("unit_id").reset_index(drop=True)
                   for name in ("spark", "memory"))
    pd.testing.assert_frame_equal(spark.astype({"condition": str}), mine.astype({"condition": str}), check_dtype=False)
    print(f"standalone cluster: two Spark applications in {time.monotonic() - started:.0f} s")


def test_the_daily_job_on_a_standalone_cluster_gives_the_memory_engines_days(spark_cluster, tmp_path):
    """Three days of the example (500 users) with each snapshot read and split into
    components on the cluster: every day's arms, effects and summary byte for byte."""
    from spillover.experiment import EXAMPLE, write_example_data

    folders = {}
    for name in ("memory", "spark"):  # the same data, written twice by the same seed
        folders[name] = tmp_path / name
        folders[name].mkdir()
        (folders[name] / "experiment.toml").write_text(EXAMPLE)
        write_example_data(folders[name] / "experiment.toml", n_users=500, n_days=3, seed=5)
    flags = {"memory": [], "spark": ["--engine", "spark", "--spark-master", spark_cluster]}
    for name, folder in folders.items():
        done = subprocess.run([sys.executable, "-m", "spillover", "run", str(folder / "experiment.toml"), "--json",
                               *flags[name]], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    files = {name: {str(p.relative_to(folder / "results")): p.read_bytes() for p in (folder / "results").rglob("*")
                    if p.is_file() and p.suffix != ".duckdb" and ".sequential" not in p.parts}  # the band's cache
             for name, folder in folders.items()}
    assert len(files["spark"]) == 9 and files["spark"] == files["memory"]
