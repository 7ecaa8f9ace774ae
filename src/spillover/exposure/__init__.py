"""Exposure: each unit's condition from its own and its neighbours' assignments, and the
probability of each condition under a design.

Everything runs on one kernel: ``A @ Z`` (sparse adjacency times a dense matrix of
draws) gives every unit's count of treated neighbours in every draw at once. Exposure
probabilities are the share of draws in which a unit lands in a condition; joint
probabilities, needed by the Aronow-Samii variance, are kept only for pairs of units
whose exposures can depend on a common randomization unit (stored sparsely).

The modules: :mod:`~spillover.exposure.mappings` (the mappings and their registry),
:mod:`~spillover.exposure.kernel` (the kernel and :func:`exposure`),
:mod:`~spillover.exposure.probability` (:func:`probabilities`, which chooses among
:mod:`~spillover.exposure.exact`, :mod:`~spillover.exposure.factored`,
:mod:`~spillover.exposure.counts` and :mod:`~spillover.exposure.montecarlo`) and
:mod:`~spillover.exposure.results` (:class:`ExposureProbabilities`).
"""

from .factored import FACTOR_ABOVE_PAIRS  # noqa: F401
from .kernel import assignment_design, check_arms, exposure_metadata  # noqa: F401
from ..names import MAX_DEPENDENT_PAIRS  # noqa: F401
from .kernel import ExposureGraph, arms_for, assignment_ids, exposure  # noqa: F401
from .kernel import treated_indicator  # noqa: F401
from .mappings import MAPPINGS, OWN_ARM_MAPPINGS, Counts, Mapping, as4, as4_two_hop, bipartite  # noqa: F401
from .mappings import bipartite_bounds, default_control, get_mapping, infer_mapping, own_arm, threshold  # noqa: F401
from .probability import GROUP_ABOVE_PAIRS, PROBABILITY_METHODS, probabilities  # noqa: F401
from .results import ExposureProbabilities, FactoredPairs  # noqa: F401

# names above that are not in __all__ are shared across the library, not the documented API
__all__ = ["FACTOR_ABOVE_PAIRS", "MAPPINGS", "MAX_DEPENDENT_PAIRS", "PROBABILITY_METHODS", "Counts",
           "ExposureProbabilities", "FactoredPairs", "Mapping", "as4", "as4_two_hop", "bipartite",
           "default_control", "exposure", "get_mapping", "infer_mapping", "own_arm", "probabilities", "threshold"]
