"""Keep every unit's arm while the graph changes from day to day.

Each day's membership snapshot is compared with the components the ledger holds: a
component with no known users is **created** (assigned within its stratum by the
experiment's keyed hash, as on day one); one whose known users came from one earlier
component continues (newcomers take its arm); one earlier component found in several
today is **split** (all parts keep the arm); several earlier components now connected
are **merged**; an earlier component with no users today is **removed**.

A merge of components in different arms cannot keep every user consistent; the policy
decides:

- ``"majority"`` (default): the merged component takes the arm of the side with the most
  users; the users who switch are flagged contaminated from that date (left out of
  analysis by default).
- ``"exclude"``: nobody switches; every user of the merged component is flagged
  contaminated from that date.

Users switched and components merged across arms are counted per day: they are the
quality measure of the whole experiment.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from .clustering import cluster
from .design import (
    OUT,
    HashSpec,
    cluster_strata,
    design_from_spec,
    hash_spec,
)
from .display import mapping_html
from .errors import DesignError, LedgerError
from .graph import CollaborationNetwork
from .io import TableLike
from .ledger import Ledger, as_date, id_type
from .names import EVOLVE_DESIGNS, MERGE_POLICIES

if TYPE_CHECKING:
    from .engines import Engine

__all__ = ["EVOLVE_DESIGNS", "MERGE_POLICIES", "DayReport", "Snapshot", "evolve", "snapshot_checksum", "start"]



@dataclass(frozen=True)
class DayReport:
    """What one day's snapshot did to the experiment (the ``evolve --json`` keys).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from spillover import synth
    >>> from spillover.ledger import Ledger
    >>> days = synth.evolving_memberships(1_000, n_days=2, seed=1)
    >>> with tempfile.TemporaryDirectory() as folder, Ledger(pathlib.Path(folder) / "l.duckdb") as ledger:
    ...     first = start(ledger, days[0], "2026-11-23", salt="launch", design="cluster")
    ...     second = evolve(ledger, days[1], "2026-11-24")
    >>> first.created == first.n_components, second.date
    (True, '2026-11-24')
    """

    date: str
    created: int
    split: int
    merged: int
    removed: int
    merged_across_arms: int
    users_switched: int
    n_units: int
    n_components: int
    new_units: int = 0
    contaminated_units: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The report as a dict (the ``evolve --json`` keys)."""
        return asdict(self)

    def _repr_html_(self) -> str:
        return mapping_html(f"Snapshot of {self.date}", self.to_dict())

    def summary(self) -> str:
        """The day in a line: what the graph did and what it did to the arms."""
        return (f"{self.date}: {self.n_units:,} users in {self.n_components:,} components; created {self.created}, "
                f"split {self.split}, merged {self.merged} ({self.merged_across_arms} across arms), removed "
                f"{self.removed}; {self.users_switched} user(s) switched arm")


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One day's membership snapshot as the daily job needs it, from any engine: the
    ``users`` (sorted), each user's component code (``labels``, numbered by smallest
    user), each component's ``keys`` (its smallest user id, as text), the per-user
    columns (``user_data``, indexed like ``users``) and the snapshot's ``checksum``.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"user_id": [3, 1, 2], "project_id": ["p", "p", "q"], "account_id": "a"})
    >>> day = Snapshot.of(CollaborationNetwork.from_memberships(rows))
    >>> day.users.tolist(), day.labels.tolist(), day.keys.tolist()
    ([1, 2, 3], [0, 0, 0], ['1'])
    """

    users: pd.Index
    labels: np.ndarray
    keys: pd.Index
    user_data: pd.DataFrame
    checksum: str
    table: str | None = None  # the engine's table of the users (id, v: position in users), when an engine made it

    @property
    def n_users(self) -> int:
        """How many users the snapshot has."""
        return len(self.users)

    @classmethod
    def of(cls, network: CollaborationNetwork) -> "Snapshot":
        """The snapshot of an in-memory network (the memory engine's)."""
        labels = cluster(network, "components").labels
        keys = pd.Series(network.users).groupby(labels).min().astype(str)
        return cls(network.users, labels, pd.Index(keys.to_numpy()), network.user_data, snapshot_checksum(network))


def snapshot_checksum(network: CollaborationNetwork) -> str:
    """SHA-256 of a snapshot's memberships (users, projects, accounts and who is in what):
    the ledger stores it with the day, so a re-run of the day with other data is refused.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"user_id": [1, 2], "project_id": ["p", "p"], "account_id": ["a", "a"]})
    >>> one = snapshot_checksum(CollaborationNetwork.from_memberships(rows))
    >>> one == snapshot_checksum(CollaborationNetwork.from_memberships(rows.iloc[::-1]))
    True
    >>> one == snapshot_checksum(CollaborationNetwork.from_memberships(rows.assign(project_id=["p", "q"])))
    False
    """
    digest = hashlib.sha256()
    for ids in (network.users, network.projects, network.accounts):
        digest.update("\x1f".join(map(str, ids)).encode("utf-8", "surrogatepass") + b"\x1e")
    membership = network.membership.tocsr()
    membership.sort_indices()
    for array in (membership.indptr, membership.indices, network.project_account):
        digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
    if len(network.user_data.columns):
        digest.update(pd.util.hash_pandas_object(network.user_data, index=True).to_numpy().tobytes())
    return digest.hexdigest()


def _stratify(snapshot: Snapshot, strata_by: Sequence[str]) -> dict[str, np.ndarray | None]:
    out: dict[str, np.ndarray | None] = {}
    for name in strata_by:
        if name == "size":
            out[name] = None
        elif name in snapshot.user_data:
            out[name] = snapshot.user_data[name].to_numpy(dtype=float)
        else:
            raise DesignError(
                f"cannot stratify by '{name}': the snapshot has per-user columns {list(snapshot.user_data.columns)}."
            )
    return out


_SPEC_KEYS = {"cluster": ("treat_fraction",), "holdout": ("holdout_fraction",),
              "stratified-cluster": ("sample_fraction", "arm_weights", "strata_by", "n_bins")}


def _spec(params: dict[str, Any]) -> dict[str, Any]:
    """The design spec of an experiment's recorded parameters, components as clusters."""
    design = params["design"]
    return {"design": design, "cluster_col": "component", **{key: params[key] for key in _SPEC_KEYS[design]}}


def _load(snapshot: TableLike | CollaborationNetwork | Snapshot) -> Snapshot:
    if isinstance(snapshot, Snapshot):
        return snapshot
    if not isinstance(snapshot, CollaborationNetwork):
        snapshot = CollaborationNetwork.from_memberships(snapshot)
    return Snapshot.of(snapshot)


def check_design_unchanged(record: dict[str, Any], given: dict[str, Any]) -> None:
    """Design options given for a running experiment (``record``: the ledger's) must be
    the ones it started with: the ledger's design is the truth, and an option that
    disagrees would be silently ignored, or would move arms.

    >>> record = {"experiment": "e", "design": "cluster", "params": {"treat_fraction": 0.5}}
    >>> check_design_unchanged(record, {"design": "cluster", "treat_fraction": 0.5})
    >>> check_design_unchanged(record, {"treat_fraction": 0.3})
    Traceback (most recent call last):
    ...
    spillover.errors.DesignError: experiment 'e' was started with --treat-fraction 0.5, not 0.3; a running experiment keeps its design: drop --treat-fraction, or start a new experiment (--experiment NAME).
    """
    stored = dict(record["params"], design=record["design"])
    for key, value in given.items():
        if key in stored and _same(value, stored[key]):
            continue
        flag = "--" + key.replace("_", "-")
        raise DesignError(f"experiment {record['experiment']!r} was started with {flag} {stored.get(key, 'unset')}, "
                          f"not {value}; a running experiment keeps its design: drop {flag}, or start a new "
                          "experiment (--experiment NAME).")


def design_changes(record: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """Every design option in ``given`` (``design`` and the options it uses) that differs
    from the experiment's ``record``, as ``name stored -> given``.

    >>> record = {"design": "cluster", "params": {"design": "cluster", "treat_fraction": 0.5, "n_bins": 4}}
    >>> design_changes(record, {"design": "cluster", "treat_fraction": 0.3})
    ['treat_fraction 0.5 -> 0.3']
    """
    stored = dict(record["params"], design=record["design"])
    if given.get("design", stored["design"]) != stored["design"]:
        return [f"design {stored['design']!r} -> {given['design']!r}"]
    return [f"{key} {stored.get(key)!r} -> {given[key]!r}" for key in _SPEC_KEYS.get(stored["design"], ())
            if key in given and not _same(given[key], stored.get(key))]


def _same(given, stored) -> bool:
    if given is None or stored is None:
        return given is stored
    if isinstance(given, (list, tuple)) or isinstance(stored, (list, tuple)):
        return isinstance(stored, (list, tuple)) and len(given) == len(stored) and all(
            _same(a, b) for a, b in zip(given, stored))
    if isinstance(given, (int, float)) and isinstance(stored, (int, float)):
        return math.isclose(given, stored, rel_tol=1e-12, abs_tol=1e-12)
    return given == stored


def start(
    ledger: Ledger,
    snapshot: "TableLike | CollaborationNetwork | Snapshot",
    date: str | dt.date,
    *,
    salt: str,
    design: str = "stratified-cluster",
    treat_fraction: float = 0.5,
    sample_fraction: float = 0.1,
    holdout_fraction: float = 0.05,
    arm_weights: Sequence[float] | None = (0.5, 0.5),
    strata_by: Sequence[str] = ("size",),
    n_bins: int = 4,
    seed: int | None = None,
    allow_future: bool = False,
    experiment: str | None = None,
) -> DayReport:
    """Day one: components of the snapshot, a design over them, every user's arm recorded
    under ``experiment`` (default: the salt).

    With ``seed`` the first day has exact counts (seeded permutation); without, every
    component is assigned by the keyed hash of ``salt``. Components created later are
    always assigned by the hash, within the day-one strata. A date after tomorrow is
    refused unless ``allow_future``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from spillover import synth
    >>> from spillover.ledger import Ledger
    >>> snapshot = synth.evolving_memberships(1_000, n_days=1, seed=2)[0]
    >>> with tempfile.TemporaryDirectory() as folder, Ledger(pathlib.Path(folder) / "l.duckdb") as ledger:
    ...     report = start(ledger, snapshot, "2026-11-23", salt="holdout-1", design="holdout", holdout_fraction=0.2)
    ...     arms = ledger.current_arms("holdout-1")["arm"]
    >>> report.n_units == len(arms), sorted(arms.unique().tolist())
    (True, [0, 1])
    """
    if design not in EVOLVE_DESIGNS:
        raise DesignError(f"evolve keeps components together: design must be one of {list(EVOLVE_DESIGNS)}, not {design!r}.")
    day = _load(snapshot)
    experiment = experiment or salt
    ledger.check_date(experiment, date, allow_future=allow_future, new=True)  # before the work
    labels, keys = day.labels, day.keys
    stratify = _stratify(day, strata_by)
    stratum, edges = cluster_strata(labels, len(keys), stratify, n_bins=n_bins)
    params = {
        "design": design, "treat_fraction": treat_fraction, "sample_fraction": sample_fraction,
        "holdout_fraction": holdout_fraction, "arm_weights": None if arm_weights is None else list(arm_weights),
        "strata_by": list(strata_by), "n_bins": n_bins, "stratum_edges": edges, "seed": seed,
    }
    units = pd.DataFrame({"unit_id": day.users, "component": keys[labels],
                          **{name: values for name, values in stratify.items() if values is not None}})
    plan = design_from_spec(_spec(params), units, what="snapshot")
    assignment = plan.assign(seed) if seed is not None else plan.assign(salt=salt)
    arms = pd.DataFrame({"unit_id": day.users, "arm": assignment.arms.astype(np.int64),
                         "contaminated": False, "reason": "assigned"})
    component_rows = pd.DataFrame({"unit_id": day.users, "component": keys[labels], "stratum": stratum[labels]})
    sizes = np.bincount(labels, minlength=len(keys))
    first_member = pd.Series(np.arange(labels.size)).groupby(labels).first().to_numpy()
    events = pd.DataFrame({"event": "created", "component": keys, "n_units": sizes,
                           "arm": assignment.arms[first_member].astype(np.int64), "detail": "day one"})
    report = DayReport(str(as_date(date)), created=len(keys), split=0, merged=0, removed=0,
                       merged_across_arms=0, users_switched=0, n_units=day.n_users,
                       n_components=len(keys), new_units=day.n_users, contaminated_units=0)
    params["record"] = assignment.record.to_dict()  # the design as every analysis reads it
    ledger.write_day(experiment, date, arms=arms, components=component_rows, events=events,
                     summary=report.to_dict(), checksum=day.checksum, allow_future=allow_future,
                     new_experiment={"salt": salt, "design": design, "params": params,
                                     "id_type": id_type(day.users)})
    return report


def evolve(
    ledger: Ledger,
    snapshot: "TableLike | CollaborationNetwork | Snapshot",
    date: str | dt.date,
    *,
    experiment: str | None = None,
    merge_policy: str = "majority",
    replace: bool = False,
    allow_future: bool = False,
    engine: "Engine | None" = None,
) -> DayReport:
    """Apply one day's membership snapshot to ``experiment`` in ``ledger``.

    Detects created, split, merged and removed components; keeps every existing user's
    arm except where ``merge_policy`` must act; writes the day in one transaction.
    Re-running a recorded day with the same snapshot returns its report and writes
    nothing; with a different snapshot it is refused, unless ``replace`` (which voids that
    day and the later ones, with an audit row, and records this one). A date before the
    last recorded one is refused, and so is one after tomorrow unless ``allow_future``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from spillover import synth
    >>> from spillover.ledger import Ledger
    >>> days = synth.evolving_memberships(1_000, n_days=3, seed=3)
    >>> with tempfile.TemporaryDirectory() as folder, Ledger(pathlib.Path(folder) / "l.duckdb") as ledger:
    ...     _ = start(ledger, days[0], "2026-11-23", salt="exp", design="cluster")
    ...     reports = [evolve(ledger, day, f"2026-11-{24 + i}") for i, day in enumerate(days[1:])]
    ...     again = evolve(ledger, days[2], "2026-11-25")          # a recorded day: nothing written
    >>> again == reports[-1]
    True
    """
    if merge_policy not in MERGE_POLICIES:
        raise DesignError(f"merge_policy must be one of {list(MERGE_POLICIES)}, not {merge_policy!r}.")
    experiment = experiment or ledger.only_experiment()
    record = ledger.experiment(experiment)
    date = as_date(date)
    day = _load(snapshot)
    checksum = day.checksum
    if replace and ledger.day_summary(experiment, date) is not None:
        ledger.void(experiment, date, reason=f"replaced by a re-run with snapshot {checksum[:12]}")
    done = ledger.recorded_day(experiment, date, checksum)
    if done is not None:
        return DayReport(**done)
    last = ledger.last_date(experiment)
    if last is not None and date < last:
        raise LedgerError(f"date {date} is before {last}, the last date recorded for {experiment!r}; "
                          "the ledger never rewrites history (`spillover ledger void` undoes a day, with an audit row).")
    ledger.check_date(experiment, date, allow_future=allow_future)
    params = record["params"]
    stratum, _ = cluster_strata(day.labels, len(day.keys), _stratify(day, params["strata_by"]),
                                n_bins=params["n_bins"], edges=params["stratum_edges"])
    new_arms = hash_spec(_spec(params)), record["salt"]
    from .engines.base import EVOLVE

    changes = (engine.evolve_day(ledger, experiment, day, stratum, new_arms, merge_policy)
               if engine is not None and engine.can(EVOLVE) else
               _changes(ledger, experiment, day, stratum, new_arms, merge_policy))
    arms, components, events, counts = changes
    report = DayReport(str(date), n_units=day.n_users, n_components=len(day.keys), **counts)
    ledger.write_day(experiment, date, arms=arms, components=components, events=events, summary=report.to_dict(),
                     checksum=checksum, allow_future=allow_future)
    return report


def _changes(ledger: Ledger, experiment: str, day: Snapshot, stratum: np.ndarray, new_arms: tuple[HashSpec, str],
             merge_policy: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """The day's changes against the ledger, in memory: the arm rows to append, every
    user's component, the events, and the day's counts (:class:`DayReport`'s)."""
    labels, keys = day.labels, day.keys

    # today's users with their last known component and arm in force; a component is
    # known by its key *and* the date it was seen, so keys of different days never collide
    today = pd.DataFrame({"unit_id": day.users.astype(str), "comp": labels})
    known = ledger.latest_components(experiment)
    known = known.assign(prior=known["component"].astype(str) + "@" + known["date"].astype(str))
    current = ledger.current_arms(experiment, typed=False)[["unit_id", "arm", "contaminated"]]
    users = (today.merge(known[["unit_id", "prior"]], on="unit_id", how="left")
                  .merge(current, on="unit_id", how="left"))
    n_comp = len(keys)
    by_comp = users.groupby("comp")
    n_prior = by_comp["prior"].nunique().reindex(range(n_comp), fill_value=0).to_numpy()
    n_arms = by_comp["arm"].nunique().reindex(range(n_comp), fill_value=0).to_numpy()
    created = n_prior == 0
    merged = n_prior > 1
    across = merged & (n_arms > 1)

    last_snapshot = known[known["date"] == known["date"].max()] if len(known) else known
    seen = users.dropna(subset=["prior"])
    parts = seen.groupby("prior")["comp"].nunique()
    split_keys = parts.index[parts > 1]
    removed = pd.Index(last_snapshot["prior"].unique()).difference(pd.Index(seen["prior"].unique()))
    removed_keys = removed.astype(str).str.rsplit("@", n=1).str[0]
    split_keys = split_keys.astype(str).str.rsplit("@", n=1).str[0]

    # the arm of each component today: majority of its known users (ties: lowest arm);
    # created components by the keyed hash, as on day one
    votes = seen.dropna(subset=["arm"]).groupby(["comp", "arm"]).size().rename("n").reset_index()
    votes = votes.sort_values(["comp", "n", "arm"], ascending=[True, False, True]).drop_duplicates("comp")
    comp_arm = np.full(n_comp, OUT, dtype=np.int64)
    comp_arm[votes["comp"].to_numpy()] = votes["arm"].to_numpy(dtype=np.int64)
    new_comps = np.flatnonzero(created)
    if new_comps.size:
        comp_arm[new_comps] = new_arms[0].assign(keys[new_comps], new_arms[1])

    arm_before = users["arm"].to_numpy(dtype=float)
    was_contaminated = users["contaminated"].fillna(False).to_numpy(dtype=bool)
    target = comp_arm[users["comp"].to_numpy()]
    in_across = across[users["comp"].to_numpy()]
    is_new = np.isnan(arm_before)
    if merge_policy == "majority":
        new_arm = np.where(is_new | in_across, target, arm_before).astype(np.int64)
        switched = ~is_new & (new_arm != arm_before)
        contaminated = was_contaminated | switched
    else:  # exclude: nobody switches, the whole merged component is flagged
        new_arm = np.where(is_new, target, arm_before).astype(np.int64)
        switched = np.zeros(len(users), dtype=bool)
        contaminated = was_contaminated | in_across
    changed = is_new | switched | (contaminated != was_contaminated)
    in_created = created[users["comp"].to_numpy()]
    reason = np.where(is_new, np.where(in_created, "created", "joined"), f"merge-{merge_policy}")
    arms = pd.DataFrame({"unit_id": users["unit_id"], "arm": new_arm, "contaminated": contaminated,
                         "reason": reason})[changed]

    sizes = np.bincount(labels, minlength=n_comp)
    events = pd.concat([
        pd.DataFrame({"event": "created", "component": keys[created], "n_units": sizes[created],
                      "arm": comp_arm[created], "detail": ""}),
        pd.DataFrame({"event": "split", "component": split_keys, "n_units": 0, "arm": OUT,
                      "detail": [f"{int(k)} parts" for k in parts[parts > 1]]}),
        pd.DataFrame({"event": "merged", "component": keys[merged], "n_units": sizes[merged],
                      "arm": comp_arm[merged],
                      "detail": np.where(across[merged], f"across arms; policy {merge_policy}", "same arm")}),
        pd.DataFrame({"event": "removed", "component": removed_keys, "n_units": 0, "arm": OUT, "detail": ""}),
    ], ignore_index=True)
    counts = dict(created=int(created.sum()), split=len(split_keys), merged=int(merged.sum()),
                  removed=len(removed_keys), merged_across_arms=int(across.sum()), users_switched=int(switched.sum()),
                  new_units=int(is_new.sum()), contaminated_units=int(contaminated.sum()))
    components = pd.DataFrame({"unit_id": users["unit_id"], "component": keys[labels], "stratum": stratum[labels]})
    return arms, components, events, counts
