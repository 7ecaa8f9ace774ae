"""Exposure mappings: how a unit's own and its neighbours' arms make its exposure
condition (fraction treated, Aronow-Samii's four conditions with one or two hops, the
q-fractional neighbourhood, the bipartite mapping, and user-defined ones), and the
registry of the built-in ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import numpy as np

from ..errors import InputError
from ..names import MAPPING_NAMES, check_registry


@dataclass(frozen=True)
class Counts:
    """What a mapping sees for each unit (arrays of shape ``(n,)`` or ``(n, R)``).

    ``own`` is 1 when the unit itself is treated (always 0 on the unit side of a bipartite
    graph); ``n_neighbors`` and ``n_treated`` count neighbours and treated neighbours;
    ``n_treated_2hop`` counts treated units exactly two hops away (only with ``hops=2``).
    ``own_reached`` (optional, one flag per unit) marks units a neighbour of which always
    shares their own arm (a neighbour in their own cluster): for them ``own == 1`` implies
    ``n_treated >= 1``, which a ``tally`` may use to skip work.

    Examples
    --------
    >>> import numpy as np
    >>> Counts(own=np.array([1, 0]), n_neighbors=np.array([4, 0]), n_treated=np.array([1, 0])).treated_fraction
    array([0.25, 0.  ])
    """

    own: np.ndarray
    n_neighbors: np.ndarray
    n_treated: np.ndarray
    n_treated_2hop: np.ndarray | None = None
    own_reached: np.ndarray | None = None

    @cached_property
    def treated_fraction(self) -> np.ndarray:
        """Share of neighbours treated; 0 for a unit without neighbours."""
        out = np.zeros(self.n_treated.shape, dtype=float)
        return np.divide(self.n_treated, self.n_neighbors, out=out, where=self.n_neighbors > 0)


# A condition as a signed sum of conjunctions ("terms") of block events: ("own", 1) says
# the unit's own block is treated, ("nbr", 0) that every block touching its neighbours
# is untreated (vacuously true without neighbours). Mappings that can be written so
# have exact exposure probabilities under Bernoulli and complete designs.
Term = tuple[int, tuple[tuple[str, int], ...]]


@dataclass(frozen=True)
class Mapping:
    """An exposure mapping: ``rule(counts) -> integer codes`` into ``conditions``.

    ``control`` is the condition every contrast is taken against; ``estimands`` names
    the estimand each other condition's contrast targets (``direct``, ``indirect``,
    ``total``). ``counts_only`` says the rule reads nothing but ``own``,
    ``n_neighbors`` and ``n_treated``, and ``events`` writes conditions as block events:
    either gives exact exposure probabilities under Bernoulli and complete designs.
    ``tally`` (optional) counts, for counts over ``R`` draws, each unit's draws in each
    condition (``(n, n_conditions)``, what counting the rule's codes gives) in fewer
    passes over the draws: Monte Carlo marginals use it, with treated-neighbour counts
    in the smallest integer type that holds them (compare them; do no arithmetic). A
    user-defined mapping is any ``Mapping`` with a vectorised rule.

    Examples
    --------
    >>> import numpy as np
    >>> two_plus = Mapping("two+", ("two_plus", "fewer"), "fewer", lambda c: np.where(c.n_treated >= 2, 0, 1))
    >>> counts = Counts(own=np.array([0, 1]), n_neighbors=np.array([3, 3]), n_treated=np.array([2, 1]))
    >>> [two_plus.conditions[k] for k in two_plus.codes(counts)]
    ['two_plus', 'fewer']
    """

    name: str
    conditions: tuple[str, ...]
    control: str
    rule: Callable[[Counts], np.ndarray]
    estimands: dict[str, str] = field(default_factory=dict)
    hops: int = 1
    events: dict[str, tuple[Term, ...]] | None = None
    counts_only: bool = False
    tally: Callable[[Counts], np.ndarray] | None = None

    def codes(self, counts: Counts) -> np.ndarray:
        """The condition code (index into ``conditions``) of each unit."""
        return np.asarray(self.rule(counts), dtype=np.int8)

    def estimand(self, condition: str, control: str | None = None) -> str:
        """The estimand a contrast of ``condition`` with ``control`` (default: the
        mapping's) targets: the mapping's name for it, else ``"<condition> vs <control>"``."""
        control = self.control if control is None else control
        if control == self.control and condition in self.estimands:
            return self.estimands[condition]
        return f"{condition} vs {control}"


def as4() -> Mapping:
    """Aronow & Samii's four conditions for one hop: treated or not x some or no treated
    neighbour (``dir_ind1``, ``isol_dir``, ``ind1``, ``no``).

    Examples
    --------
    >>> as4().estimand("ind1")
    'indirect'
    """
    def rule(c: Counts) -> np.ndarray:
        # 0 dir_ind1, 1 isol_dir, 2 ind1, 3 no: arithmetic on int8 beats nested where
        untreated = (c.own == 0).view(np.int8)
        unexposed = (c.n_treated == 0).view(np.int8)
        return 2 * untreated + unexposed

    def tally(c: Counts) -> np.ndarray:
        # the four counts from two boolean counts and their overlap, no codes formed
        draws = c.n_treated.shape[1]
        unexposed = c.n_treated == 0
        treated = _row_count(c.own)
        n_unexposed = _row_count(unexposed)
        if c.own_reached is None:
            isolated = _row_count(unexposed.view(np.int8) & c.own)      # treated and unexposed
        else:  # a unit with a neighbour in its own cluster is never both: count the others only
            isolated = np.zeros_like(n_unexposed)
            rows = np.flatnonzero(~c.own_reached)
            isolated[rows] = _row_count(unexposed[rows].view(np.int8) & c.own[rows])
        neither = n_unexposed - isolated
        return np.column_stack([treated - isolated, isolated, draws - treated - neither, neither])

    events = {
        "dir_ind1": ((1, (("own", 1),)), (-1, (("own", 1), ("nbr", 0)))),
        "isol_dir": ((1, (("own", 1), ("nbr", 0))),),
        "ind1": ((1, (("own", 0),)), (-1, (("own", 0), ("nbr", 0)))),
        "no": ((1, (("own", 0), ("nbr", 0))),),
    }
    return Mapping("as4", ("dir_ind1", "isol_dir", "ind1", "no"), "no", rule,
                   {"dir_ind1": "total", "isol_dir": "direct", "ind1": "indirect"}, events=events, counts_only=True,
                   tally=tally)


def _row_count(mask: np.ndarray) -> np.ndarray:
    """Number of true (or 1) entries in each row of a boolean or 0/1 int8 ``(n, R)``
    matrix: an int8 sum into the smallest type that holds ``R`` (int16 for a chunk of draws:
    twice as fast as into int64, which is twice as fast as ``count_nonzero`` along rows).

    >>> _row_count(np.array([[True, False, True], [False, False, False]])).tolist()
    [2, 0]
    """
    dtype = np.int16 if mask.shape[1] <= np.iinfo(np.int16).max else np.int64
    return mask.view(np.int8).sum(axis=1, dtype=dtype)


def as4_two_hop() -> Mapping:
    """The two-hop extension: an untreated-neighbourhood unit is still ``*ind2`` when a
    unit two hops away is treated (``dir_ind1``, ``dir_ind2``, ``isol_dir``, ``ind1``,
    ``ind2``, ``no``).

    Examples
    --------
    >>> as4_two_hop().conditions
    ('dir_ind1', 'dir_ind2', 'isol_dir', 'ind1', 'ind2', 'no')
    """
    def rule(c: Counts) -> np.ndarray:
        level = np.where(c.n_treated > 0, 0, np.where(c.n_treated_2hop > 0, 1, 2))
        return np.where(c.own == 1, level, 3 + level)

    events = {}
    for own, prefix in ((1, ("dir_ind1", "dir_ind2", "isol_dir")), (0, ("ind1", "ind2", "no"))):
        first, second, none = prefix
        mine = ("own", own)
        events[first] = ((1, (mine,)), (-1, (mine, ("nbr", 0))))
        events[second] = ((1, (mine, ("nbr", 0))), (-1, (mine, ("nbr", 0), ("nbr2", 0))))
        events[none] = ((1, (mine, ("nbr", 0), ("nbr2", 0))),)
    return Mapping("as4-2hop", ("dir_ind1", "dir_ind2", "isol_dir", "ind1", "ind2", "no"), "no", rule,
                   {"dir_ind1": "total", "isol_dir": "direct", "ind1": "indirect", "ind2": "indirect (2 hops)",
                    "dir_ind2": "direct + indirect (2 hops)"}, hops=2, events=events)


def threshold(q: float = 0.75) -> Mapping:
    """Fractional q-neighbourhood exposure (Ugander et al. 2013): ``treated`` when the unit
    and at least a share ``q`` of its neighbours are treated, ``control`` when the unit and
    at least ``q`` of its neighbours are untreated, ``other`` otherwise. The contrast
    approximates the global average treatment effect.

    Examples
    --------
    >>> threshold(0.9).control, threshold(1.0).events is not None
    ('control', True)
    """
    if not 0.0 <= q <= 1.0:
        raise InputError(f"threshold q={q} must be in [0, 1].")

    def rule(c: Counts) -> np.ndarray:
        fraction = np.where(c.n_neighbors > 0, c.treated_fraction, c.own)  # isolated: vacuous
        treated = (c.own == 1) & (fraction >= q)
        control = (c.own == 0) & (1.0 - fraction >= q)
        return np.where(treated, 0, np.where(control, 1, 2))

    events = None
    if q == 1.0:  # all neighbours in the unit's own arm
        events = {"treated": ((1, (("own", 1), ("nbr", 1))),), "control": ((1, (("own", 0), ("nbr", 0))),),
                  "other": ((1, ()), (-1, (("own", 1), ("nbr", 1))), (-1, (("own", 0), ("nbr", 0))))}
    elif q == 0.0:  # the unit's own arm alone
        events = {"treated": ((1, (("own", 1),)),), "control": ((1, (("own", 0),)),), "other": ()}
    return Mapping("threshold", ("treated", "control", "other"), "control", rule, {"treated": "total"},
                   events=events, counts_only=True)


def own_arm() -> Mapping:
    """Own assignment only (``treated`` / ``control``): the no-interference mapping, whose
    contrast is the naive difference; the treated share of neighbours is reported beside
    it as the continuous exposure.

    Examples
    --------
    >>> own_arm().conditions
    ('treated', 'control')
    """
    return Mapping("fraction", ("treated", "control"), "control", lambda c: np.where(c.own == 1, 0, 1),
                   {"treated": "direct (ignoring interference)"},
                   events={"treated": ((1, (("own", 1),)),), "control": ((1, (("own", 0),)),)}, counts_only=True)


def bipartite(lower: float = 0.0, upper: float = 1.0) -> Mapping:
    """Buyer exposure to a seller-side design: ``direct`` when at least ``upper`` of the
    unit's treated-side neighbours are treated (all of them by default), ``control`` when
    at most ``lower`` are (none by default), ``indirect`` in between.

    Examples
    --------
    >>> bipartite().estimand("indirect")
    'indirect'
    """
    if not 0.0 <= lower < upper <= 1.0:
        raise InputError(f"bipartite thresholds need 0 <= lower < upper <= 1, got {lower}, {upper}.")

    def rule(c: Counts) -> np.ndarray:
        # 0 direct, 1 indirect, 2 control: the two tests exclude each other (lower < upper); int8 arithmetic
        share = c.treated_fraction
        return (share <= lower).view(np.int8) - (share >= upper).view(np.int8) + np.int8(1)

    events = None
    if (lower, upper) == (0.0, 1.0):  # all / some / none of the unit's sellers treated
        both = ("nbr", 1), ("nbr", 0)  # only possible without sellers, who are control
        events = {"direct": ((1, (("nbr", 1),)), (-1, both)), "control": ((1, (("nbr", 0),)),),
                  "indirect": ((1, ()), (-1, (("nbr", 1),)), (-1, (("nbr", 0),)), (1, both))}
    return Mapping("bipartite", ("direct", "indirect", "control"), "control", rule,
                   {"direct": "direct", "indirect": "indirect"}, events=events, counts_only=True)


MAPPINGS = {"fraction": own_arm, "as4": as4, "threshold": threshold, "bipartite": bipartite}
check_registry("mappings", MAPPINGS, MAPPING_NAMES)


def _built_in_mappings() -> tuple[Mapping, ...]:
    return (*(factory() for factory in MAPPINGS.values()), as4_two_hop())


def infer_mapping(conditions) -> Mapping | None:
    """The built-in mapping (one or two hops) that made an exposure table with these
    ``conditions``: the one whose conditions are exactly these, else the only one whose
    conditions include them and its control, the smallest such (a condition no unit
    reached is absent from a table read back from a file); None when none fits or two
    fit equally. This is how contrasts
    are named when only an exposure table, not its mapping, is at hand.

    >>> infer_mapping(["dir_ind1", "ind1", "no"]).name
    'as4'
    """
    wanted = set(map(str, conditions))
    mappings = _built_in_mappings()
    exact = [m for m in mappings if set(m.conditions) == wanted]
    if exact:
        return exact[0]
    covering = sorted((m for m in mappings if wanted <= set(m.conditions) and m.control in wanted),
                      key=lambda m: len(m.conditions))
    if len(covering) > 1 and len(covering[0].conditions) == len(covering[1].conditions):
        return None  # two mappings fit equally well: do not guess
    return covering[0] if covering else None


def default_control(conditions) -> str:
    """The control condition of an exposure table's ``conditions``: its mapping's, or the
    one built-in control among them.

    >>> default_control(["treated", "control"])
    'control'
    """
    mapping = infer_mapping(conditions)
    if mapping is not None:
        return mapping.control
    present = set(map(str, conditions))
    controls = sorted({m.control for m in _built_in_mappings()} & present)
    if len(controls) == 1:
        return controls[0]
    raise InputError(f"cannot tell the control condition among {sorted(present)}: name it (control= in Python, "
                     "--control on the command line).")


def get_mapping(mapping: str | Mapping, *, threshold_q: float | None = None, hops: int = 1,
                bipartite_graph: bool = False) -> Mapping:
    """A mapping by its command-line name (``fraction``, ``as4``, ``threshold``,
    ``bipartite``), or the given :class:`Mapping`. ``threshold_q`` sets the threshold
    mapping's ``q`` and the bipartite mapping's bounds (:func:`bipartite_bounds`); a
    mapping that reads a unit's own arm is refused on a bipartite graph.

    Examples
    --------
    >>> get_mapping("as4", hops=2).name, get_mapping("threshold", threshold_q=0.5).name
    ('as4-2hop', 'threshold')
    """
    if threshold_q is not None and mapping in ("fraction", "as4"):
        raise InputError(f"--threshold applies to the threshold and bipartite mappings, not {mapping!r}.")
    if isinstance(mapping, Mapping):
        rule = mapping
    elif mapping == "as4":
        rule = as4_two_hop() if hops == 2 else as4()
    elif mapping == "threshold":
        rule = threshold(0.75 if threshold_q is None else threshold_q)
    elif mapping == "bipartite":
        rule = bipartite() if threshold_q is None else bipartite(*bipartite_bounds(threshold_q))
    elif mapping in MAPPINGS:
        rule = MAPPINGS[mapping]()
    else:
        raise InputError(f"unknown exposure mapping {mapping!r}; choose one of {list(MAPPINGS)} or pass a Mapping.")
    if bipartite_graph and rule.name in OWN_ARM_MAPPINGS:
        raise InputError(f"--mapping {rule.name} reads a unit's own arm, and the unit side of a bipartite graph has "
                         "none (the other side is randomized): use --mapping bipartite (--threshold Q for a "
                         "fractional rule).")
    return rule


# the built-in mappings that read a unit's own arm: undefined on the unit side of a bipartite graph
OWN_ARM_MAPPINGS = ("fraction", "as4", "as4-2hop", "threshold")


def bipartite_bounds(threshold_q: float) -> tuple[float, float]:
    """``(lower, upper)`` of the bipartite mapping with threshold ``q``: direct when at
    least ``q`` of a unit's treated-side neighbours are treated, control when at most
    ``1 - q`` are; ``q`` in ``(0.5, 1]`` (1: all / none, the default).

    Examples
    --------
    >>> bipartite_bounds(0.75)
    (0.25, 0.75)
    """
    q = float(threshold_q)
    if not 0.5 < q <= 1.0:
        raise InputError(f"--threshold {threshold_q:g} with --mapping bipartite: a unit is direct when at least that "
                         "share of its treated-side neighbours is treated and control when at most 1 - that share "
                         "is, so it must be above 0.5 and at most 1.")
    return 1.0 - q, q
