"""The ``spillover`` argument parser: every command, option and default, with help that
ends with each default."""

from __future__ import annotations

import argparse
import math

from .. import __version__
from ..names import (CLUSTER_METHODS, DEFAULT_VCOV, DESIGN_NAMES, DESIGN_OPTIONS, ENGINES, ESTIMATE_METHODS,
                     EVOLVE_DESIGNS, FORMATS, ID_TYPES, LOCK_TIMEOUT, MAPPING_NAMES, MAX_DEPENDENT_PAIRS,
                     MERGE_POLICIES, MIN_UNITS, PROBABILITY_METHODS, SIMULATED_DESIGNS, VCOV_TYPES)
from .commands import COMMANDS, HelpFormatter, OneLineParser

# each command's function, as "module:name" under spillover.cli: imported by main() only for the command run
# (the parser itself imports no more than the name lists, so a command's --help starts at once)
_HANDLERS = {"demo": "daily:cmd_demo", "init": "daily:cmd_init", "validate": "daily:cmd_validate",
             "run": "daily:cmd_run", "report": "daily:cmd_report", "synth": "analysis:cmd_synth",
             "plan": "analysis:cmd_plan", "estimate": "analysis:cmd_estimate", "simulate": "analysis:cmd_simulate",
             "cluster": "units:cmd_cluster", "assign": "units:cmd_assign", "exposure": "units:cmd_exposure",
             "evolve": "units:cmd_evolve", "ledger": "units:cmd_ledger"}


def build_parser() -> argparse.ArgumentParser:
    """The ``spillover`` argument parser: every command, option and default."""
    parser = OneLineParser(
        prog="spillover", formatter_class=HelpFormatter,
        description="Design and analyse randomized experiments on networks, where SUTVA fails.",
    )
    parser.add_argument("--version", action="version", version=f"spillover {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)

    def command(name: str) -> argparse.ArgumentParser:
        text = COMMANDS[name]
        sub = commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".",
                                  formatter_class=HelpFormatter)
        if name in _READS_TABLES:
            sub.add_argument("--id-type", choices=ID_TYPES, default="auto",
                             help="how id columns are typed: auto reads CSV ids as text and makes them integers only "
                                  "when every id is a canonical integer (so 007 and 7 stay two ids); str or int force "
                                  "one type in every input")
        sub.set_defaults(func=_HANDLERS[name])
        return sub

    demo = command("demo")
    demo.add_argument("--out", default="demo-out", help="folder for report.html and its tables")
    demo.add_argument("--seed", type=SEED, default=0, help="seed of the synthetic data and every random step")
    demo.add_argument("--full", action="store_true",
                      help="the larger study: ten times the users, buyers and sellers, twice the experiments "
                           "(minutes rather than under one)")
    demo.add_argument("--json", action="store_true", help="print one JSON object: the files written and the headline "
                                                          "numbers")

    synth = command("synth")
    synth.add_argument("kind", choices=["social", "marketplace", "memberships", "outcomes"],
                       help="what to write: a social graph's edges, a marketplace's buyer-seller links (source: "
                            "buyer, target: seller), daily membership snapshots, or outcomes with a known effect for "
                            "an assignment (with --bipartite: buyers' outcomes for a seller assignment)")
    synth.add_argument("--out", required=True, help="social, outcomes: the table to write; memberships: a folder "
                                                    "for memberships-YYYY-MM-DD.parquet")
    synth.add_argument("--users", type=_number(int, 10), default=5_000, help="social, memberships: number of users")
    synth.add_argument("--buyers", type=_number(int, 10), default=100_000, help="marketplace: number of buyers")
    synth.add_argument("--sellers", type=_number(int, 2), default=10_000,
                       help="marketplace: number of sellers (heavy-tailed popularity)")
    synth.add_argument("--categories", type=_number(int, 0), default=0,
                       help="marketplace: seller and buyer categories (e.g. regions); 90%% of a buyer's purchases "
                            "stay in its category (default: 0, none)")
    synth.add_argument("--days", type=COUNT, default=2, help="memberships: daily snapshots, with churn between them")
    synth.add_argument("--start", default="2026-11-23", help="memberships: the first snapshot's date")
    synth.add_argument("--edges", help="outcomes: the graph's edge list (default: none)")
    synth.add_argument("--assignment", help="outcomes: table with unit_id, arm (default: none)")
    synth.add_argument("--tau", type=FINITE, default=0.2, help="outcomes: the direct effect of treatment")
    synth.add_argument("--gamma", type=FINITE, default=0.5,
                       help="outcomes: spillover; y rises by gamma * tau times the treated share of neighbours")
    synth.add_argument("--seed", type=SEED, default=0, help="seed of the synthetic data")
    _add_edge_flags(synth)
    synth.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    init = command("init")
    init.add_argument("path", nargs="?", default="experiment.toml", help="where to write it")
    init.add_argument("--example", action="store_true",
                      help="also write example data beside it: daily membership snapshots with churn and outcomes "
                           "with a known effect")
    init.add_argument("--days", type=COUNT, default=30, help="--example: number of daily snapshots")
    init.add_argument("--users", type=_number(int, 100), default=5_000, help="--example: users on day one")
    init.add_argument("--seed", type=SEED, default=0, help="--example: seed of the data")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    validate = command("validate")
    validate.add_argument("experiment", help="the experiment file (experiment.toml)")
    validate.add_argument("--date", help="check that day's inputs (default: the first snapshot found)")
    validate.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    run = command("run")
    run.add_argument("experiment", help="the experiment file (experiment.toml)")
    run.add_argument("--date", help="the day to run, YYYY-MM-DD (default: every snapshot on disk not yet run, in "
                                    "order; the summary printed is the last day's)")
    run.add_argument("--json", action="store_true", help="print the day's summary as one JSON object")
    run.add_argument("--engine", choices=list(ENGINES), default=None,
                     help="where each day's snapshot is read and split into components (default: the file's [run] "
                          "engine, else memory); the arms are the same on every engine")
    run.add_argument("--memory-limit", default=None,
                     help="duckdb: e.g. 4GB; it spills to disk beyond (default: the file's [run] memory_limit)")
    run.add_argument("--spark-master", default=None,
                     help="spark: the master URL, e.g. spark://host:7077 (default: the file's [run] spark_master, "
                          "else local[*])")
    run.add_argument("--warehouse", default=None,
                     help="also publish each committed day of the ledger to this folder as Parquet partitions "
                          "(experiment=/date=, one atomic rename a day) that Spark, DuckDB or Trino read "
                          "(default: the file's [run] warehouse, else none)")

    rep = command("report")
    rep.add_argument("experiment", help="the experiment file (experiment.toml)")
    rep.add_argument("--out", help="where to write the page (default: <results>/<name>/report.html)")
    rep.add_argument("--json", action="store_true", help="print one JSON object instead of a line")

    plan = command("plan")
    source = plan.add_mutually_exclusive_group(required=True)
    source.add_argument("--edges", help="a social graph's edge list (default: none; or --memberships)")
    source.add_argument("--memberships", help="a collaboration network: user_id, project_id, account_id[, usage] "
                                              "(default: none; or --edges)")
    plan.add_argument("--outcomes", required=True, help="historical outcomes: unit_id and the outcome column")
    plan.add_argument("--clusters", nargs="+", help="candidate clusterings (unit_id, cluster_id), each a row "
                                                    "(default: Louvain at resolutions 1, 4, 16, or the collaboration "
                                                    "network's projects and components)")
    plan.add_argument("--outcome-col", default="y", help="the outcome column of --outcomes")
    plan.add_argument("--pre-col", help="a pre-period outcome column: CUPED's variance reduction is credited "
                                        "(default: none)")
    plan.add_argument("--effect", type=FINITE, help="the global effect to plan for, for the bias column (default: the "
                                                    "individual design's MDE)")
    plan.add_argument("--spillover", type=_number(float, 0), default=0.25,
                      help="assumed spillover: a fully treated neighbourhood's effect relative to the direct effect")
    plan.add_argument("--treat-fraction", type=SHARE, default=0.5, help="the treated share")
    plan.add_argument("--sample-fraction", type=_number(float, 0, 1, open_low=True), default=0.1,
                      help="the share of components the stratified design samples")
    plan.add_argument("--power", type=SHARE, default=0.8, help="the power the MDE is for")
    plan.add_argument("--alpha", type=SHARE, default=0.05, help="the test's level")
    plan.add_argument("--duration-days", type=COUNT, default=30,
                      help="a daily job's planned duration: the always-valid band's MDE by then and its days to "
                           "detection of the planned effect")
    plan.add_argument("--seed", type=SEED, default=0, help="seed of the Louvain clusterings")
    _add_edge_flags(plan)
    plan.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    clus = command("cluster")
    clus.add_argument("edges", help="edge list (.csv or .parquet)")
    clus.add_argument("--method", required=True, choices=[*CLUSTER_METHODS, "exposure-design"],
                      help="the clustering algorithm; exposure-design (--bipartite --side treated): seller clusters "
                           "by Exposure-Design's objective, each buyer's exposure variable and different buyers' "
                           "uncorrelated (Leiden on the sellers' projection; --resolution: larger, more clusters)")
    clus.add_argument("--side", choices=["units", "treated"], default="units",
                      help="--bipartite: which side's clusters --out holds: the measured units, or the treated "
                           "(randomized) side, to assign a cluster design to it; with --method metis the sellers' "
                           "projection (sellers linked by the buyers they share) is partitioned into --n-parts "
                           "balanced clusters (default: one per 50 sellers), and the buyers' exposure purity printed")
    clus.add_argument("--resolution", type=_number(float, 0, open_low=True), default=None,
                      help="louvain, leiden, greedy-modularity, exposure-design: larger gives smaller clusters "
                           "(default: 1)")
    clus.add_argument("--n-parts", type=_number(int, 2), default=None,
                      help="metis: number of parts (default: one per 100 nodes)")
    clus.add_argument("--seed", type=SEED, default=None,
                      help="a whole number makes the clusters reproducible (default: none, a fresh random run)")
    clus.add_argument("--out", help="write unit_id, cluster_id here (.csv or .parquet) (default: not written)")
    clus.add_argument("--cut-threshold", type=_number(float, 0, 1), default=0.10,
                      help="warn when a larger share of edges crosses clusters")
    _add_edge_flags(clus)
    clus.add_argument(
        "--memberships",
        action="store_true",
        help="EDGES is a collaboration table (user_id, project_id, account_id)",
    )
    clus.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    _add_engine_flags(clus)

    assign = command("assign")
    assign.add_argument("--units", required=True, help="table with unit_id (+ cluster and strata columns)")
    assign.add_argument("--design", required=True, choices=DESIGN_NAMES, help="how units are randomized")
    _add_design_flags(assign)
    assign.add_argument("--ledger", help="record the assignment in this ledger (DuckDB file) (default: not recorded)")
    assign.add_argument("--date", default=None, help="date recorded in the ledger (default: today)")
    assign.add_argument("--out", help="write unit_id, cluster_id, arm here (default: not written)")
    _add_ledger_flags(assign)
    assign.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    _add_engine_flags(assign)

    expo = command("exposure")
    expo.add_argument("edges", help="edge list (.csv or .parquet)")
    expo.add_argument("--assignment", required=True, help="table with unit_id, arm")
    _add_mapping_flags(expo, required=True)
    _add_edge_flags(expo)
    expo.add_argument("--out", help="write the exposure table here (default: not written)")
    expo.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    _add_engine_flags(expo)

    est = command("estimate")
    est.add_argument("--outcomes", required=True, help="table with unit_id and the outcome column")
    est.add_argument("--exposure", required=True, help="table written by `spillover exposure`")
    est.add_argument("--method", default="auto", choices=["auto", *ESTIMATE_METHODS],
                     help="auto: the estimator the design supports (the assignment's recorded design, else the one "
                          "read from the data; the output says which and why); ols-network: OLS with errors robust "
                          "to dependence through the graph (needs --edges); ht/hajek/wls: design-based (need --edges; "
                          "probabilities from the recorded design, --design or --draws; wls is Hajek by weighted "
                          "least squares, with --covariates); regression-adjustment: the global effect, everyone "
                          "treated against no one, by Chin's regression adjustment (needs --edges). A method the "
                          "design does not support is refused with the one to use")
    est.add_argument("--clusters", help="table with unit_id, cluster_id for the cluster-robust methods (default: the "
                                        "randomization units, the exposure table's cluster_id)")
    est.add_argument("--draws", help="ht/hajek: the design's draws, one row per draw, one column per unit id "
                                     "(default: none)")
    est.add_argument("--design", choices=["individual", "cluster"],
                     help="override the design recorded with the assignment (it must agree with the record and the "
                          "data; for files from other tools, whose design is otherwise read from the data) "
                          "(default: none, the recorded one)")
    est.add_argument("--ignore-design", action="store_true",
                     help="run a method the design does not support anyway, its effects labelled as ignoring the "
                          "design")
    est.add_argument("--assignment", help="ht/hajek: table with unit_id, arm of the randomized units, needed on a "
                                          "bipartite graph (default: the exposure table's arm column)")
    est.add_argument("--n-draws", type=COUNT, default=1_000,
                     help="Monte Carlo draws where probabilities have no exact form")
    est.add_argument("--design-draws", type=_number(int, 0), default=400,
                     help="ht, hajek: fresh draws of the design whose simulated error the standard error may not fall "
                          "below (the larger of it and the Aronow-Samii one; 0: the Aronow-Samii one alone)")
    est.add_argument("--variance-bound", choices=["auto", "blocks", "pairs"], default="auto",
                     help="ht, hajek: how pairs never observed in a contrast's two conditions together are bounded: "
                          "blocks (complete blocks of them by their totals, never looser), pairs (Aronow & Samii "
                          "pair by pair, the reference package's convention) or auto (blocks for ht; for hajek, "
                          "blocks with residuals widened for the clusters' count when the design is replayed on a "
                          "social graph, else pairs: docs/inference.md)")
    est.add_argument("--test", choices=["no-effect", "no-spillover", "intervals"], default=None,
                     help="also an exact randomization test of this sharp null, by re-drawing the design (needs "
                          "--edges; no-spillover: outcomes depend on a unit's own arm only, for individual designs), "
                          "or intervals: exact intervals for the direct effect and the spillover (y = y(0) + tau z + "
                          "gamma * share of neighbours treated) by inverting such tests (default: none)")
    est.add_argument("--test-draws", type=_number(int, 19), default=1_000,
                     help="re-draws of the design for --test")
    est.add_argument("--treat-fraction", type=SHARE, default=None,
                     help="the design's treated share, checked against the assignment (default: read from it)")
    est.add_argument("--bernoulli", action="store_true",
                     help="the design drew units (clusters) independently, not an exact count")
    est.add_argument("--seed", type=SEED, default=0, help="seed of the Monte Carlo draws")
    est.add_argument("--prob-correction", choices=["none", "add-one"], default="none",
                     help="add-one: Monte Carlo probabilities as (count+1)/(R+1), the reference package's "
                          "convention")
    est.add_argument("--prob-method", choices=list(PROBABILITY_METHODS), default="auto",
                     help="exposure probabilities: exact where the design and mapping allow, else Monte Carlo")
    est.add_argument("--joint", choices=["dependent", "all"], default="dependent",
                     help="joint probabilities for pairs sharing a randomization unit, or for all pairs (the "
                          "reference package's convention)")
    est.add_argument("--max-pairs", type=int, default=MAX_DEPENDENT_PAIRS,
                     help="ht/hajek: refuse (before forming them) more stored pairs of joint probabilities than "
                          "this, rather than run out of memory (pairs sharing one block are summed per block "
                          "and not stored; 0: no limit)")
    est.add_argument("--vcov", choices=list(VCOV_TYPES), default=DEFAULT_VCOV,
                     help="cluster-robust variance of ols-cluster and cluster-means: CR2 with Bell-McCaffrey df "
                          "(reliable with few or unequal clusters), CR1 as statsmodels, or CR0")
    est.add_argument("--edges", help="ht/hajek/wls: the graph, to map every draw to exposures; ols-network, "
                                     "regression-adjustment: the graph (default: none)")
    _add_mapping_flags(est, required=False, from_table=True)
    _add_edge_flags(est)
    est.add_argument("--outcome-col", default="y", help="the outcome column of --outcomes")
    est.add_argument("--covariates", help="comma-separated outcome-table columns to adjust for: a pre-period outcome "
                                          "(CUPED) or a prediction of the outcome (CUPAC); ols-cluster, cluster-means "
                                          "(default: none)")
    est.add_argument("--control", help="control condition (default: the mapping's)")
    est.add_argument("--wild-bootstrap", type=_bootstrap_draws, default="auto", metavar="B|auto|off",
                     help="ols-cluster: p-values and intervals from the restricted wild cluster bootstrap with B "
                          "draws (all sign patterns when 2^G <= B); auto: 1,999 draws below 30 clusters, where "
                          "t intervals under-cover")
    est.add_argument("--bootstrap-weights", choices=["rademacher", "webb"], default="rademacher",
                     help="wild bootstrap weights; webb for fewer than about 12 clusters")
    est.add_argument("--min-probability", type=_number(float, 0, 1, open_high=True), default=0.0,
                     help="ht/hajek: analyse only units whose probabilities of both compared conditions reach this "
                          "(e.g. 0.01; the estimand is then that population's)")
    est.add_argument("--bandwidth", type=_bandwidth, default="auto", metavar="HOPS|auto",
                     help="ols-network: units within this many hops are treated as dependent; auto: Leung's rule "
                          "from the graph's average path length (as networkinference chooses it)")
    est.add_argument("--min-units", type=SEED, default=MIN_UNITS,
                     help="a condition with fewer units (that can reach it, for ht/hajek), or in fewer than two "
                          "clusters for the cluster-robust methods, gets no effect, interval or p-value (0: no "
                          "minimum, to check a formula on a toy design)")
    est.add_argument("--missing", choices=["drop", "error"], default="drop",
                     help="units with no outcome: left out of the analysis (with a warning), or an error")
    est.add_argument("--alpha", type=SHARE, default=0.05, help="intervals cover with probability 1 - alpha")
    est.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    _add_engine_flags(est)

    simulate = command("simulate")
    simulate.add_argument("--compare", choices=["designs", "estimators", "marketplace"], default="designs",
                          help="designs: cluster designs of a collaboration network; estimators: difference in means, "
                               "cluster randomization, Hajek, regression adjustment, SNIPE, a staggered rollout and "
                               "randomized graph cluster randomization (RGCR) on a social graph, the one to run "
                               "recommended; marketplace: seller randomization against seller clusters, with ERL, "
                               "ols-bipartite and difference in means on buyers (--edges: buyer-seller links, source "
                               "buyer, target seller; default: a synthetic market)")
    source = simulate.add_mutually_exclusive_group()
    source.add_argument("--network", choices=["synthetic-collaboration"], default="synthetic-collaboration",
                        help="the built-in network to simulate on")
    source.add_argument("--memberships", help="simulate on your own user_id, project_id, account_id[, usage] table "
                                              "(default: none, the built-in network)")
    source.add_argument("--edges", help="estimators: a social graph's edge list (default: none, a synthetic one)")
    simulate.add_argument("--users", type=_number(int, 100), default=None,
                          help="size of the synthetic network (default: 100,000; estimators: 5,000)")
    simulate.add_argument("--buyers", type=_number(int, 10), default=20_000,
                          help="marketplace: buyers of the synthetic market")
    simulate.add_argument("--sellers", type=_number(int, 2), default=2_000,
                          help="marketplace: sellers of the synthetic market")
    simulate.add_argument("--categories", type=_number(int, 0), default=40,
                          help="marketplace: seller categories of the synthetic market (90%% of purchases within one)")
    simulate.add_argument("--seller-clusters", default="40,160,exposure-design",
                          help="marketplace: comma-separated seller designs to compare with sellers randomized one "
                               "by one: numbers of balanced METIS seller clusters, and exposure-design (the clusters "
                               "of Exposure-Design's objective, by Leiden)")
    simulate.add_argument("--spillover", choices=["linear", "quadratic", "threshold"], default="linear",
                          help="estimators: how the outcome moves with the treated share of neighbours")
    simulate.add_argument("--designs", default="project,component,stratified-component",
                          help=f"comma-separated designs to compare, of {', '.join(SIMULATED_DESIGNS)}")
    simulate.add_argument("--tau", type=FINITE, default=1 / 8, help="the direct effect of treatment")
    simulate.add_argument("--gamma", type=FINITE, default=2**-4,
                          help="spillover: each treated neighbour adds gamma * tau")
    simulate.add_argument("--usage-effect", type=FINITE, default=1.0,
                          help="designs: how much a component's (standardised log) usage moves its users' outcomes "
                               "(0: usage does not matter, so stratifying on it cannot help)")
    simulate.add_argument("--sample-fraction", type=_number(float, 0, 1, open_low=True), default=1.0,
                          help="designs: the share of each design's clusters an experiment enrolls (within strata "
                               "for stratified-component), split 50/50; the rest stay untreated and unanalysed, as "
                               "`plan --sample-fraction` (default: %(default)s, every cluster)")
    simulate.add_argument("--n-sims", type=_number(int, 2), default=None,
                          help="simulated experiments per design (default: 1,000; estimators: 200; marketplace: 300)")
    simulate.add_argument("--seed", type=SEED, default=0, help="seed of the network and the experiments")
    simulate.add_argument("--vcov", choices=list(VCOV_TYPES), default=DEFAULT_VCOV,
                          help="cluster-robust variance of each simulated analysis, as in `estimate --vcov`")
    simulate.add_argument("--max-pairs", type=_number(int, 0), default=MAX_DEPENDENT_PAIRS,
                          help="estimators: the most dependent pairs a design-based (Hajek) variance may store; "
                               "marketplace: the most buyer pairs ERL's variance may sum over; rows above it are left "
                               "out with a warning (0: no limit)")
    simulate.add_argument("--source", default="source", help="estimators: --edges' first id column")
    simulate.add_argument("--target", default="target", help="estimators: --edges' second id column")
    simulate.add_argument("--out", help="folder for report.html and design_comparison.csv (default: not written)")
    simulate.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    evolve = command("evolve")
    evolve.add_argument("--ledger", required=True, help="the experiment's ledger (DuckDB file)")
    evolve.add_argument("--snapshot", required=True, help="memberships: user_id, project_id, account_id[, usage]")
    evolve.add_argument("--date", required=True, help="the snapshot's date, YYYY-MM-DD")
    evolve.add_argument("--design", choices=EVOLVE_DESIGNS,
                        help="first snapshot only: how components are randomized (default: none, a later day)")
    evolve.add_argument("--merge-policy", choices=MERGE_POLICIES, default="majority",
                        help="majority: a merged component takes its larger side's arm; exclude: nobody switches and "
                             "the merged users leave the analysis")
    evolve.add_argument("--replace", action="store_true",
                        help="a recorded day re-run with a different snapshot: void that day and the later ones (an "
                             "audit row keeps them) and record this one")
    _add_design_flags(evolve)
    _add_ledger_flags(evolve)
    evolve.add_argument("--json", action="store_true", help="print one JSON object instead of a table")

    led = command("ledger")
    led.add_argument("action", choices=["show", "history", "export", "verify", "void", "publish"],
                     help="show: the experiment and its days; history: every arm a unit has had; export: a table to "
                          "CSV/Parquet; verify: check every day's seal (the hash chained to the day before), the "
                          "audit trail and the voided rows (and, on a --warehouse, every file against its commit "
                          "marker); void: undo --date and every later day (kept in voided_* tables); publish: copy "
                          "the --ledger's committed days to the --warehouse folder")
    led.add_argument("--ledger", help="the ledger (DuckDB file) (default: none; one of --ledger or --warehouse)")
    led.add_argument("--warehouse", help="the folder a ledger is published to (Parquet partitions): show, history, "
                                         "export and verify read it instead of --ledger; publish writes it "
                                         "(default: none)")
    led.add_argument("--experiment", help="the experiment (default: the ledger's only one)")
    led.add_argument("--unit", help="history: one unit's history (default: every unit)")
    led.add_argument("--table", choices=["history", "current", "events", "components", "days", "audit"],
                     default="history", help="export: which table")
    led.add_argument("--out", help="export: the .csv or .parquet to write (default: none)")
    led.add_argument("--date", help="void: the first day to void, YYYY-MM-DD (default: none)")
    led.add_argument("--reason", help="void: why, kept in the audit trail (default: none)")
    led.add_argument("--limit", type=COUNT, default=50, help="show, history: rows printed")
    _add_ledger_flags(led, future=False)
    led.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser


def _number(kind: type, low: float | None = None, high: float | None = None, *, open_low: bool = False,
            open_high: bool = False):
    """An argparse type: an int or finite float within bounds, or a one-line error."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        too_low = low is not None and (value < low or (open_low and value == low))
        too_high = high is not None and (value > high or (open_high and value == high))
        if too_low or too_high:
            left = "(" if open_low else "["
            right = ")" if open_high else "]"
            lower = "-inf" if low is None else f"{low:g}"
            upper = "inf" if high is None else f"{high:g}"
            span = f"{left}{lower}, {upper}{right}"
            raise argparse.ArgumentTypeError(f"{text} is outside {span}")
        return value
    return parse


SEED = _number(int, 0)


def WEIGHTS(text: str) -> list[float]:  # noqa: N802 - an argparse type, named like the others
    """An argparse type: two or more positive, finite, comma-separated weights."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers, e.g. 0.5,0.5") from None
    if len(values) < 2 or not all(math.isfinite(v) and v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give two or more positive weights, one per arm, e.g. 0.5,0.5")
    return values


def SALT(text: str) -> str:  # noqa: N802 - an argparse type, named like the others
    """An argparse type: a salt the keyed hash accepts (:func:`spillover.design.check_salt`)."""
    from ..design.hashing import check_salt
    from ..errors import InputError

    try:
        return check_salt(text)
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


COUNT = _number(int, 1)


SHARE = _number(float, 0, 1, open_low=True, open_high=True)


FINITE = _number(float)


def _bandwidth(text: str) -> int | str:
    if text == "auto":
        return text
    return _number(int, 0)(text)


def _bootstrap_draws(text: str) -> int | str | None:
    if text in ("auto", "off"):
        return None if text == "off" else text
    try:
        draws = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of draws, 'auto' or 'off'") from None
    if draws < 1:
        raise argparse.ArgumentTypeError(f"{draws}: the bootstrap needs at least one draw")
    return draws


def _add_design_flags(parser: argparse.ArgumentParser) -> None:
    """The design options; unset ones take the design's own default (``DESIGN_OPTIONS``),
    and one the design does not use is refused."""
    default = {key: value for options in DESIGN_OPTIONS.values() for key, value in options.items()}
    parser.add_argument("--cluster-col", help=f"cluster designs: the units table's cluster column "
                                              f"(default: {default['cluster_col']})")
    parser.add_argument("--treat-fraction", type=SHARE, help=f"individual and cluster designs: the treated share "
                                                             f"(default: {default['treat_fraction']})")
    parser.add_argument("--sample-fraction", type=_number(float, 0, 1, open_low=True),
                        help=f"stratified-cluster: the share of clusters in the experiment "
                             f"(default: {default['sample_fraction']})")
    parser.add_argument("--holdout-fraction", type=SHARE,
                        help=f"holdout: the share of clusters held out (default: {default['holdout_fraction']})")
    parser.add_argument("--arm-weights", type=WEIGHTS, help="comma-separated weights of arms 0,1,2,... (default: the treated share; "
                                              "0.5,0.5 for stratified-cluster)")
    parser.add_argument("--strata-by", help="stratified-cluster: comma-separated size and/or unit columns summed per "
                                            "cluster (default: size)")
    parser.add_argument("--n-bins", type=COUNT, help=f"stratified-cluster: quantile bins per stratification variable "
                                                     f"(default: {default['n_bins']})")
    parser.add_argument("--seed", type=SEED, default=None,
                        help="a seeded permutation with exact counts (default: none; give --seed or --salt)")
    parser.add_argument("--salt", type=SALT,
                        help="a keyed-hash assignment, stable as units come and go; names the experiment "
                             "(default: none; give --seed or --salt)")
    parser.add_argument("--experiment", help="experiment name in the ledger (default: the salt)")


def _add_ledger_flags(parser: argparse.ArgumentParser, future: bool = True) -> None:
    if future:
        parser.add_argument("--allow-future", action="store_true",
                            help="record a date after tomorrow (refused by default: a mistyped date blocks every "
                                 "real one)")
    parser.add_argument("--lock-timeout", type=_number(float, 0), default=LOCK_TIMEOUT,
                        help="seconds to wait for another writer's lock on the ledger")


def _add_engine_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=list(ENGINES), default="memory",
                        help="where the heavy step runs (results are identical)")
    parser.add_argument("--memory-limit", default=None,
                        help="duckdb: e.g. 2GB; it spills to disk beyond (default: DuckDB's, 80%% of memory)")
    parser.add_argument("--spark-master", default=None, help="spark: the master URL (default: local[*])")


def _add_mapping_flags(parser: argparse.ArgumentParser, required: bool, from_table: bool = False) -> None:
    parser.add_argument("--mapping", required=required, default=None if required or from_table else "as4",
                        choices=MAPPING_NAMES,
                        help="how a unit's own and its neighbours' arms make its exposure condition"
                             + (" (default: the one the exposure table was made with)" if from_table else ""))
    parser.add_argument("--threshold", type=_number(float, 0, 1), default=None,
                        help="threshold mapping: exposed when at least this share of neighbours is treated "
                             "(default: 0.75); bipartite: direct when at least this share of a unit's treated-side "
                             "neighbours is treated, control when at most 1 minus it (above 0.5; default: 1, all or "
                             "none)")
    parser.add_argument("--hops", type=int, choices=[1, 2], default=None if from_table else 1,
                        help="as4: neighbours within this many hops"
                             + (" (default: the exposure table's)" if from_table else ""))


def _add_edge_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", default="source", help="edge list column, a name or (with no header) a position "
                                                           "(unit side if bipartite)")
    parser.add_argument("--target", default="target", help="edge list column, a name or (with no header) a position "
                                                           "(treated side if bipartite)")
    parser.add_argument("--format", choices=FORMATS, default="auto",
                        help="the edge list's file format: auto (by extension), csv, tsv, snap (whitespace-separated, "
                             "# comment lines, no header: SNAP edge lists, MovieLens u.data), parquet, mtx (Matrix "
                             "Market), graphml, gml")
    parser.add_argument("--sep", default=None, help="the edge list's column separator, e.g. ';' or '\\t' (default: "
                                                    "the format's)")
    parser.add_argument("--comment", default=None, help="skip the edge list's lines that start with this, e.g. '%%' "
                                                        "(default: the format's; # for snap)")
    parser.add_argument("--no-header", action="store_true",
                        help="the edge list's first row is data: columns are named by position, 0, 1, ..., and the "
                             "first two are the two ends unless --source/--target name others")
    parser.add_argument("--directed", action="store_true", help="edges are directed: a unit's neighbours are its "
                                                                "targets")
    parser.add_argument("--bipartite", action="store_true",
                        help="SOURCE is the measured side, TARGET the randomized side")


# the commands that read tables named on the command line (the experiment commands read theirs from the file)
_READS_TABLES = ("synth", "plan", "cluster", "assign", "exposure", "estimate", "simulate", "evolve")
