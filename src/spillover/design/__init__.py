"""Designs: who gets which arm.

Each design is a small object with ``assign(seed) -> Assignment`` and ``draw(n_draws,
seed) -> (n_units, n_draws)`` matrix of arms, the kernel that exposure probabilities,
randomization tests and simulations are built on. Arms are ``0`` (control), ``1``
(treatment), ``2..`` for more arms, and ``-1`` (:data:`OUT`) for units not sampled into
the experiment.

Two kinds of randomness: a seeded permutation gives exact counts (analysis, simulation);
a keyed hash of ``(salt, cluster key)`` gives assignments that do not move when other
units appear or vanish (production, the ledger). The hash is ``md5(salt ':' key)``'s
first 60 bits, computed by DuckDB in memory and expressible in any SQL engine, so Spark
and DuckDB reproduce it bit for bit.

The modules: :mod:`~spillover.design.base` (assignments and randomizations),
:mod:`~spillover.design.randomize` (the draws), :mod:`~spillover.design.hashing` (the keyed
hash), the designs (:mod:`~spillover.design.basic`, :mod:`~spillover.design.stratified`,
:mod:`~spillover.design.multilevel`, :mod:`~spillover.design.mixtures`) and
:mod:`~spillover.design.specs` (designs by name).
"""

from .base import OUT, Assignment, Design, Randomization  # noqa: F401
from .basic import ClusterDesign, IndividualDesign, holdout_design  # noqa: F401
from .hashing import HashSpec, check_salt, hash_uniform, sampled_arm_weights  # noqa: F401
from .mixtures import RandomizedClusterDesign, RolloutDesign  # noqa: F401
from .multilevel import BipartiteDesign, MixedDesign, SaturationDesign  # noqa: F401
from .randomize import exact_counts  # noqa: F401
from .specs import DESIGN_NAMES, DESIGN_OPTIONS, check_spec, design_from_assignment, design_from_spec  # noqa: F401
from .specs import hash_spec  # noqa: F401
from .stratified import StratifiedClusterDesign, cluster_strata, quantile_bins  # noqa: F401

# names above that are not in __all__ are shared across the library, not the documented API
__all__ = ["DESIGN_NAMES", "DESIGN_OPTIONS", "OUT", "Assignment", "BipartiteDesign", "ClusterDesign", "Design", "HashSpec",
           "IndividualDesign", "MixedDesign", "Randomization", "RandomizedClusterDesign", "RolloutDesign",
           "SaturationDesign", "StratifiedClusterDesign", "check_spec", "design_from_assignment",
           "design_from_spec", "hash_spec", "holdout_design"]
