"""The design an assignment carries: which design made it, with every option, the seed or
salt, what was randomized (units or whole clusters), how (exact counts or independent
draws) and the arm shares it intended.

An :class:`~spillover.design.Assignment` knows its record (:attr:`Assignment.record`);
``assign``, ``evolve`` and ``run`` write it beside the arms (Parquet key-value metadata, a
``.design.json`` sidecar beside a CSV, the ledger), ``exposure`` carries it on, and
``estimate`` reads it: the design's own randomization gives the exposure probabilities
and the dependence, and an analysis the design does not support is refused. Files
written by other tools have no record; :func:`infer_record` reads one from the data
(arms constant within clusters, counts) and says it was inferred.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DesignError, InputError
from ..io import DESIGN_KEY  # noqa: F401 (the key, importable with the record)
from .base import OUT, Assignment
from .hashing import sampled_arm_weights
from .randomize import arm_probabilities, exact_counts

#: what each design randomizes: each unit, whole clusters, or the other side of a bipartite graph
DESIGN_UNITS = {"individual": "unit", "cluster": "cluster", "holdout": "cluster", "stratified-cluster": "cluster",
                "saturation": "cluster", "mixed": "cluster", "rgcr": "cluster", "rollout": "unit",
                "bipartite": "treated-side"}
SCHEMES = ("complete", "bernoulli", "stratified", "other")


@dataclass(frozen=True)
class DesignRecord:
    """How an assignment was made, in words a table can carry.

    ``name`` is the design (``individual``, ``cluster``, ``holdout``,
    ``stratified-cluster``, ``bipartite``, ...), ``options`` every option it was built
    with, ``seed`` or ``salt`` what drew it; ``unit`` what was randomized (``unit``,
    ``cluster`` or ``treated-side``) and ``scheme`` how: ``complete`` (exact counts, a
    seeded permutation), ``bernoulli`` (each randomization unit on its own: a keyed hash,
    or independent draws), ``stratified`` (exact counts within strata) or ``other``.
    ``shares`` is the share of randomization units the design meant for each arm
    (``-1``: out of the experiment); ``n_units`` and ``n_clusters`` count the units and
    randomization clusters; ``clusters_checksum`` fingerprints the unit-to-cluster map.
    ``source`` says where the record came from: ``recorded`` (written by ``assign``),
    ``inferred`` (read from the data by :func:`infer_record`) or ``stated`` (given by the
    user, and checked against the data).

    Examples
    --------
    >>> from spillover.design import ClusterDesign
    >>> record = ClusterDesign([0, 0, 1, 1, 2, 2, 3, 3], range(8)).assign(seed=1).record
    >>> record.name, record.unit, record.scheme, record.shares
    ('cluster', 'cluster', 'complete', {0: 0.5, 1: 0.5})
    >>> DesignRecord.from_dict(record.to_dict()) == record
    True
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    salt: str | None = None
    unit: str = "unit"
    scheme: str = "complete"
    shares: dict[int, float] = field(default_factory=dict)
    n_units: int | None = None
    n_clusters: int | None = None
    clusters_checksum: str | None = None
    source: str = "recorded"

    @property
    def clustered(self) -> bool:
        """Whether whole clusters were randomized together (units of a cluster share an arm)."""
        return self.unit == "cluster"

    def treated_share(self) -> float:
        """The intended share of randomization units in a treated arm (arm >= 1) among those
        in the experiment."""
        inside = {arm: share for arm, share in self.shares.items() if arm != OUT}
        total = sum(inside.values())
        return float(sum(share for arm, share in inside.items() if arm >= 1) / total) if total else float("nan")

    def arms(self) -> list[int]:
        """The arms the design can give (``-1`` included when units can be left out)."""
        return sorted(self.shares)

    def describe(self) -> str:
        """One line for notes: the design, how it was drawn, and where the record came from."""
        how = {"complete": "exact counts", "bernoulli": "independent draws (keyed hash)" if self.salt else
               "independent draws", "stratified": "exact counts within strata", "other": "its own scheme"}[self.scheme]
        of = {"unit": "units", "cluster": f"{self.n_clusters:,} clusters" if self.n_clusters else "clusters",
              "treated-side": "the treated side"}[self.unit]
        share = self.treated_share()
        drawn = f"salt {self.salt!r}" if self.salt else f"seed {self.seed}" if self.seed is not None else "no seed"
        return (f"{self.name} design ({self.source}): {of} randomized by {how}, treated share "
                f"{share:.3g}, {drawn}")

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values (arm keys as text)."""
        out = asdict(self)
        out["shares"] = {str(arm): share for arm, share in self.shares.items()}
        out["options"] = _jsonable(self.options)
        return out

    def to_json(self) -> str:
        """The record as one line of JSON (what Parquet metadata and sidecars hold)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DesignRecord":
        """The record :meth:`to_dict` wrote; a damaged one is an :class:`InputError`."""
        try:
            values = dict(data)
            values["shares"] = {int(arm): float(share) for arm, share in values.get("shares", {}).items()}
            known = {name for name in cls.__dataclass_fields__}
            record = cls(**{key: value for key, value in values.items() if key in known})
        except (TypeError, ValueError, AttributeError) as error:
            raise InputError(f"the recorded design cannot be read ({error}); re-run `spillover assign`, or pass "
                             "--design.") from None
        if record.scheme not in SCHEMES or record.unit not in set(DESIGN_UNITS.values()):
            raise InputError(f"the recorded design has scheme {record.scheme!r} and unit {record.unit!r}, which this "
                             "version does not know; pass --design.")
        return record


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


# per-unit arrays an assignment's params hold for the designs that need them: not options
_PER_UNIT_PARAMS = ("cluster_saturation", "unit_branch", "stage")


_CHUNK = 1 << 20  # rows whose ids are made text at once in a checksum


def clusters_checksum(units: pd.Index, clusters: np.ndarray | pd.Series) -> str:
    """A fingerprint of the unit-to-cluster map (order-free): equal maps, equal text.

    >>> clusters_checksum(pd.Index(["a", "b"]), ["x", "y"]) == clusters_checksum(pd.Index(["b", "a"]), ["y", "x"])
    True
    """
    units, clusters = pd.Index(units), np.asarray(clusters)
    hashed = np.empty(len(units), dtype=np.uint64)
    for start in range(0, len(units), _CHUNK):  # a loop over chunks: ids become text a million at a time
        part = slice(start, start + _CHUNK)
        frame = pd.DataFrame({"u": units[part].astype(str), "c": pd.Series(clusters[part]).astype(str).to_numpy()})
        hashed[part] = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    hashed.sort()
    return hashlib.sha256(hashed.tobytes()).hexdigest()[:16]


def record_of(assignment: Assignment) -> DesignRecord:
    """The :class:`DesignRecord` of an assignment made by one of the library's designs.

    >>> from spillover.design import IndividualDesign
    >>> record_of(IndividualDesign(range(10), treat_fraction=0.3).assign(seed=2)).shares
    {0: 0.7, 1: 0.3}
    """
    params = {key: value for key, value in assignment.params.items() if key not in _PER_UNIT_PARAMS}
    name = assignment.design
    unit = DESIGN_UNITS.get(name, "cluster" if assignment.clusters is not None else "unit")
    if name == "bipartite" and assignment.clusters is not None:
        params["clustered"] = True
    salted = bool(assignment.salt)
    n_clusters = None if assignment.clusters is None else int(assignment.clusters.max()) + 1
    n_blocks = n_clusters if unit == "cluster" or (name == "bipartite" and n_clusters) else assignment.n_units
    if name == "stratified-cluster":
        weights, arms = sampled_arm_weights(params.get("sample_fraction", 1.0),
                                            arm_probabilities(None, params.get("arm_weights")))
        shares = dict(zip(arms.tolist(), weights.tolist()))
        scheme = "bernoulli" if salted else "stratified"
    elif name in ("saturation", "mixed", "rollout"):
        counts = assignment.counts()
        total = sum(counts.values())
        shares = {arm: n / total for arm, n in counts.items()}
        scheme = "other"
    else:
        treat_fraction = params.get("treat_fraction")
        if params.get("holdout_fraction") is not None and treat_fraction is None:  # a holdout named by its spec
            treat_fraction = 1.0 - float(params["holdout_fraction"])
        weights = arm_probabilities(treat_fraction, params.get("arm_weights"))
        complete = bool(params.get("complete", True)) and not salted and name != "rgcr"
        if complete:
            weights = exact_counts(n_blocks, weights) / n_blocks
        shares = {arm: float(w) for arm, w in enumerate(weights)}
        scheme = "complete" if complete else "bernoulli"
    checksum = None
    if assignment.clusters is not None and assignment.cluster_ids is not None:
        checksum = clusters_checksum(assignment.units, assignment.cluster_ids[assignment.clusters])
    return DesignRecord(name, _jsonable(params), assignment.seed, assignment.salt, unit, scheme,
                        {int(arm): float(share) for arm, share in shares.items()}, assignment.n_units, n_clusters,
                        checksum)


def infer_record(arms: pd.Series, clusters: pd.Series | None = None) -> DesignRecord:
    """A design read from the data when no record came with it: whole clusters were
    randomized when every cluster (``clusters``: unit id -> cluster id) has one arm and
    there are fewer clusters than units, else units were; the shares are the observed
    ones, the scheme taken as complete (exact counts).

    >>> arms = pd.Series([1, 1, 0, 0, 1, 1], index=list("abcdef"))
    >>> infer_record(arms, pd.Series([0, 0, 1, 1, 2, 2], index=list("abcdef"))).unit
    'cluster'
    >>> infer_record(arms).unit
    'unit'
    """
    arms = pd.to_numeric(pd.Series(arms), errors="coerce").dropna().astype(np.int64)
    arms = arms[arms != OUT]
    if arms.empty:
        raise InputError("no unit has an arm: the design cannot be read from the data.")
    if clusters is not None:
        labels = pd.Series(clusters).reindex(arms.index)
        known = labels.notna().to_numpy()
        if known.all():
            codes, ids = pd.factorize(labels.to_numpy())
            first = np.full(len(ids), -1, dtype=np.int64)
            first[codes[::-1]] = arms.to_numpy()[::-1]
            constant = bool(np.all(arms.to_numpy() == first[codes]))
            if constant and len(ids) < len(arms):
                counts = pd.Series(first).value_counts(normalize=True).to_dict()
                return DesignRecord("cluster", {}, None, None, "cluster", "complete",
                                    {int(a): float(s) for a, s in counts.items()}, int(arms.size), len(ids),
                                    clusters_checksum(arms.index, labels.to_numpy()), "inferred")
    counts = arms.value_counts(normalize=True).to_dict()
    return DesignRecord("individual", {}, None, None, "unit", "complete", {int(a): float(s) for a, s in counts.items()},
                        int(arms.size), None, None, "inferred")


def stated_record(name: str, *, complete: bool = True, treat_fraction: float | None = None) -> DesignRecord:
    """A design the user names (``--design individual|cluster``), to be checked against
    the data by :func:`check_record`.

    >>> stated_record("cluster", treat_fraction=0.3).shares
    {0: 0.7, 1: 0.3}
    """
    if name not in ("individual", "cluster"):
        raise DesignError(f"--design {name!r}: name 'individual' or 'cluster' (other designs record themselves "
                          "when `spillover assign` makes them).")
    weights = arm_probabilities(treat_fraction, None) if treat_fraction is not None else np.array([np.nan, np.nan])
    return DesignRecord(name, {"treat_fraction": treat_fraction, "complete": complete}, None, None,
                        "cluster" if name == "cluster" else "unit", "complete" if complete else "bernoulli",
                        {0: float(weights[0]), 1: float(weights[1])}, source="stated")


def with_source(record: DesignRecord, source: str) -> DesignRecord:
    """The same record, saying where it came from."""
    return replace(record, source=source)


def resolve_design(recorded: dict | None, stated: DesignRecord | None, arms: pd.Series | None,
                   clusters: pd.Series | None) -> DesignRecord | None:
    """The design an analysis follows, checked against the data.

    ``recorded`` is the design the assignment carried (``attrs`` of the exposure table),
    ``stated`` one the user names (``--design``: an override that must agree with the
    record and the data), ``arms`` the assigned arm of each randomized unit (by unit id)
    and ``clusters`` each unit's randomization unit (the exposure table's ``cluster_id``).
    With neither record nor statement the design is inferred from the data
    (:func:`infer_record`); with no arms at all it is unknown (None).

    A stated design that contradicts the record, arms that are not constant within a
    cluster design's clusters, or a unit-level design stated for an assignment whose every
    cluster has one arm is a :class:`~spillover.errors.DesignError` naming the evidence.

    >>> arms = pd.Series([1, 1, 0, 0, 1, 1, 0, 0], index=range(8))
    >>> clusters = pd.Series([0, 0, 1, 1, 2, 2, 3, 3], index=range(8))
    >>> resolve_design(None, None, arms, clusters).describe()
    'cluster design (inferred): 4 clusters randomized by exact counts, treated share 0.5, no seed'
    >>> resolve_design(None, stated_record("individual"), arms, clusters)
    Traceback (most recent call last):
    ...
    spillover.errors.DesignError: --design individual, but every one of the assignment's 4 clusters has a single arm: it was randomized by cluster, and an individual design would treat units of one cluster as independent. Drop --design (the design is then read from the data) or use --design cluster.
    """
    record = DesignRecord.from_dict(recorded) if recorded else None
    if stated is not None and record is not None:
        if stated.unit != record.unit:
            raise DesignError(f"--design {stated.name} contradicts the design recorded with the assignment "
                              f"({record.describe()}); drop --design, or assign again with the design you mean.")
        stated_share = stated.options.get("treat_fraction")
        if stated_share is not None and abs(stated_share - record.treated_share()) > 1e-9:
            raise DesignError(f"--treat-fraction {stated_share:g} contradicts the recorded design's treated share "
                              f"{record.treated_share():g}; drop it.")
    if arms is not None:
        arms = pd.to_numeric(pd.Series(arms), errors="coerce").dropna().astype(np.int64)
        arms = arms[arms != OUT]
    if record is None and stated is None:
        return infer_record(arms, clusters) if arms is not None and len(arms) else None
    record = record or stated
    if arms is None or not len(arms):
        return record
    foreign = sorted(set(arms.unique().tolist()) - set(record.shares) - {OUT})
    if record.shares and foreign and record.source != "stated":
        raise DesignError(f"arm(s) {foreign} are not arms of the {record.name} design, which gives "
                          f"{sorted(a for a in record.shares if a != OUT)}; the arms or the design are wrong.")
    labels = None if clusters is None else pd.Series(clusters).reindex(arms.index)
    if labels is not None and labels.isna().any():
        labels = None  # some units' randomization unit is unknown: nothing to check against
    if record.clustered and labels is not None:
        mixed = _mixed_clusters(arms, labels)
        if mixed:
            n_mixed, example, counts = mixed
            raise DesignError(f"the {record.name} design randomizes whole clusters, but {n_mixed} of "
                              f"{labels.nunique():,} clusters have units in more than one arm (cluster {example}: "
                              f"{counts}); the assignment was not randomized by these clusters. Give the clusters "
                              "it was randomized by, or the design that made it.")
    if record.unit == "unit" and labels is not None and record.source == "stated":
        looks = infer_record(arms, labels)
        if looks.unit == "cluster" and looks.n_clusters <= len(arms) / 2:
            raise DesignError(f"--design {record.name}, but every one of the assignment's {looks.n_clusters:,} "
                              "clusters has a single arm: it was randomized by cluster, and an individual design "
                              "would treat units of one cluster as independent. Drop --design (the design is then "
                              "read from the data) or use --design cluster.")
    return record


def _mixed_clusters(arms: pd.Series, labels: pd.Series) -> tuple[int, Any, str] | None:
    """How many clusters hold more than one arm, and the first such one with its arm counts."""
    frame = pd.DataFrame({"cluster": labels.to_numpy(), "arm": arms.to_numpy()})
    per = frame.groupby("cluster")["arm"].nunique()
    mixed = per[per > 1]
    if mixed.empty:
        return None
    example = mixed.index[0]
    counts = frame.loc[frame["cluster"] == example, "arm"].value_counts().sort_index()
    return int(mixed.size), example, ", ".join(f"{n} unit(s) in arm {a}" for a, n in counts.items())


def check_nesting(analysis: pd.Series, randomization: pd.Series) -> None:
    """Clusters of a cluster-robust variance must not split a randomization cluster (each
    randomization cluster inside one analysis cluster); by unit id both.

    >>> check_nesting(pd.Series([0, 0, 1, 1]), pd.Series(["a", "b", "b", "c"]))
    Traceback (most recent call last):
    ...
    spillover.errors.DesignError: clusters: randomization cluster 'b' is split across 2 analysis clusters (1 of 3 randomization clusters are split); cluster-robust errors must cluster by the randomization unit or coarser. Leave --clusters out to cluster by the randomization clusters.
    """
    frame = pd.DataFrame({"analysis": pd.Series(analysis), "randomization": pd.Series(randomization)}).dropna()
    spread = frame.groupby("randomization")["analysis"].nunique()
    split = spread[spread > 1]
    if len(split):
        example = split.index[0]
        shown = f"'{example}'" if isinstance(example, str) else str(example)
        raise DesignError(f"clusters: randomization cluster {shown} is split across {int(split.iloc[0])} analysis "
                          f"clusters ({len(split)} of {len(spread)} randomization clusters are split); cluster-robust "
                          "errors must cluster by the randomization unit or coarser. Leave --clusters out to cluster "
                          "by the randomization clusters.")


def design_from_record(record: DesignRecord, arms: pd.Series, clusters: pd.Series | None = None):
    """The design object whose randomization gives exact exposure probabilities for an
    assignment made by ``record``'s design: arms of every randomized node (by id), their
    clusters for cluster designs.

    Units (clusters) are treated independently with the design's treated share under
    ``bernoulli`` (a keyed hash: sampling out included, ``-1`` arms untreated); under
    ``complete`` exactly the realized number of them is treated, every such set equally
    likely. A ``stratified`` design is taken as complete randomization of its treated
    clusters among all clusters (its strata are not in the assignment table; the notes
    of ``probabilities`` say so). A design the user states (or one inferred from the
    data) needs every randomized unit's arm, and a stated treated share must agree with
    the data: the exact count under complete randomization, within four binomial
    standard errors (then used) under Bernoulli.

    >>> from spillover.design import ClusterDesign
    >>> assignment = ClusterDesign([0, 0, 1, 1, 2, 2, 3, 3], range(8)).assign(seed=1)
    >>> frame = assignment.to_frame()
    >>> design = design_from_record(assignment.record, frame.set_index("unit_id")["arm"],
    ...                             frame.set_index("unit_id")["cluster_id"])
    >>> design.randomization().describe()
    'complete randomization of 2 of 4 blocks'
    """
    from .basic import ClusterDesign, IndividualDesign

    if record.scheme == "other":
        raise DesignError(f"the {record.name} design has no closed-form randomization here; pass its draws "
                          "(--draws) for exposure probabilities.")
    arms = pd.Series(arms)
    if record.source != "recorded" and (arms.isna().any() or (arms.to_numpy() == OUT).any()):
        n_out = int(arms.isna().sum() + (arms.to_numpy() == OUT).sum())
        raise DesignError(f"{n_out} randomized unit(s) have no arm (or arm -1, out of the experiment): a design "
                          "read from the data needs every randomized unit's arm; pass the design's draws instead.")
    arms = pd.to_numeric(arms, errors="coerce").fillna(OUT).astype(np.int64)
    treated = (arms.to_numpy() >= 1).astype(np.int8)
    clustered = record.clustered or bool(record.options.get("clustered"))
    codes = ids = None
    if clustered:
        if clusters is None:
            raise InputError("a cluster design needs the clusters (unit_id, cluster_id) of the randomized units.")
        labels = pd.Series(clusters).reindex(arms.index)
        if labels.isna().any():
            raise InputError(f"clusters: {int(labels.isna().sum())} randomized unit(s) have no cluster, "
                             f"e.g. {labels.index[labels.isna()][0]!r}.")
        codes, ids = pd.factorize(labels.to_numpy(), sort=True)
        per_block = np.bincount(codes, weights=treated) / np.bincount(codes)
        mixed = (per_block > 0) & (per_block < 1)
        if mixed.any():
            raise DesignError(f"{int(mixed.sum())} cluster(s) have treated and untreated units: the assignment "
                              "was not randomized by these clusters.")
        treated = (per_block > 0).astype(np.int8)
    n, k = treated.size, int(treated.sum())
    if k in (0, n):
        raise DesignError(f"{k} of {n} {'clusters' if clustered else 'units'} treated: an experiment needs both arms.")
    complete = record.scheme in ("complete", "stratified")
    stated = record.options.get("treat_fraction") if record.source != "recorded" else None
    if stated is not None:
        share = _checked_share(float(stated), k, n, complete)
    elif complete or record.source != "recorded":  # exact counts, or a Bernoulli share read from the data
        share = k / n
    else:  # the design's own share (a keyed hash: its sampling out included)
        share = record.treated_share() * (1.0 - record.shares.get(OUT, 0.0))
    if clustered:
        return ClusterDesign(codes, arms.index, pd.Index(ids), treat_fraction=share, complete=complete)
    return IndividualDesign(arms.index, share, complete)


def _checked_share(stated: float, k: int, n: int, complete: bool) -> float:
    """A stated treated share checked against ``k`` of ``n`` treated: the exact count under
    complete randomization, four binomial standard errors under Bernoulli (then used)."""
    if not 0.0 < stated < 1.0:
        raise DesignError(f"treat_fraction={stated} must be strictly between 0 and 1.")
    share = k / n
    if complete:
        expected = int(n - exact_counts(n, np.array([1 - stated, stated]))[0])
        if expected != k:
            raise DesignError(f"the stated treated share {stated:g} means {expected} of {n} treated under complete "
                              f"randomization, but the assignment treats {k} ({share:.4g}); leave the share out to "
                              "read it from the data.")
        return share
    if abs(share - stated) > 4 * np.sqrt(stated * (1 - stated) / n):
        raise DesignError(f"the stated treated share {stated:g} disagrees with the assignment's {share:.4g} ({k} of "
                          f"{n}) beyond Bernoulli sampling error.")
    return stated
