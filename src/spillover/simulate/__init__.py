"""Simulate before you launch: generative outcome models with spillover, and the
comparison of designs by bias, variance, coverage and power.

The modules: :mod:`~spillover.simulate.designs` (the collaboration-network model and the
design study), :mod:`~spillover.simulate.outcomes` (outcomes with a known effect) and
:mod:`~spillover.simulate.estimators` (estimators of the global effect compared on one
graph; exact variances under cluster designs and RGCR) and
:mod:`~spillover.simulate.marketplace` (seller designs and marketplace estimators).
"""

from .designs import DESIGNS, SIMULATED_DESIGNS, Comparison, DesignResult, OutcomeModel, SimulatedChunk, Study  # noqa: F401
from .designs import choose_design, cluster_robust_difference, compare_designs, gamma_sweep  # noqa: F401
from .designs import simulate_design, simulate_experiments  # noqa: F401
from .estimators import compare_estimators, exact_ht_variance, mixing_study  # noqa: F401
from .marketplace import MarketplaceStudy, marketplace_study  # noqa: F401
from .outcomes import SPILLOVERS, example_marketplace_outcomes, example_outcomes, marketplace_outcomes  # noqa: F401
from .outcomes import social_outcomes  # noqa: F401

__all__ = ["DESIGNS", "SPILLOVERS", "Comparison", "DesignResult", "MarketplaceStudy", "OutcomeModel", "SimulatedChunk",
           "Study", "marketplace_study",
           "choose_design", "cluster_robust_difference", "compare_designs", "compare_estimators", "exact_ht_variance",
           "example_marketplace_outcomes", "example_outcomes", "gamma_sweep", "marketplace_outcomes", "mixing_study", "simulate_design",
           "simulate_experiments", "social_outcomes"]
