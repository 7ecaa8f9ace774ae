"""Effects with honest uncertainty: direct, indirect (spillover) and total effects.

Every estimator contrasts each exposure condition with the mapping's control condition
and returns one :class:`Effect` per contrast, with its standard error, confidence
interval, p-value, the units and clusters used, and the variance method:

- ``difference-in-means``: the naive baseline, Neyman standard errors; ignores the design
  and, under interference, is biased for the effects below.
- ``cluster-means``: means of cluster means, standard error from their spread.
- ``ols-cluster``: OLS of the outcome on condition indicators (+ covariates) with
  cluster-robust errors (CR2 with Bell-McCaffrey degrees of freedom by default, CR1 as
  ``statsmodels`` computes it), and the wild cluster bootstrap for few clusters.
- ``ht`` / ``hajek``: Horvitz-Thompson and Hajek estimators of the average potential
  outcome under each condition (Aronow & Samii 2017), with their conservative variance
  including the bound for pairs of units with zero joint probability.

Which estimand a contrast targets depends on the mapping: under ``as4``, ``isol_dir``
vs ``no`` is the direct effect, ``ind1`` vs ``no`` the indirect (spillover) effect and
``dir_ind1`` vs ``no`` the total effect; under ``bipartite``, ``direct`` vs ``control``
is the effect of all of a unit's sellers being treated.

The modules: :mod:`~spillover.estimate.results` (:class:`Effect`, :class:`Effects`),
:mod:`~spillover.estimate.table` (the analysis table), one per family of estimators
(:mod:`~spillover.estimate.cluster_robust`, :mod:`~spillover.estimate.weighting`,
:mod:`~spillover.estimate.global_effect`, :mod:`~spillover.estimate.randomization`) and
:mod:`~spillover.estimate.dispatch` (:func:`estimate`).
"""

import importlib as _importlib
import pkgutil as _pkgutil

from ..errors import FEW_CLUSTERS  # noqa: F401
from ..names import ESTIMATE_METHODS, check_registry

# every module of the package, so that each estimator's module has registered it (adding an
# estimator is one new module that calls registry.register); the classic families first, which
# keeps --method's order: unit and cluster-robust regressions, design-based weighting, the global effect
for _module in ("cluster_robust", "weighting", "global_effect", *sorted(m.name for m in _pkgutil.iter_modules(__path__))):
    _importlib.import_module(f"{__name__}.{_module}")

from .cluster_robust import cluster_means, difference_in_means, estimate_from_stats, network_pairs  # noqa: E402, F401
from .cluster_robust import ols_cluster, ols_network, sufficient_stats  # noqa: E402, F401
from .dispatch import MIN_UNITS, AnalysisPlan, estimate, plan_analysis  # noqa: E402, F401
from .global_effect import lagrange_weights, polynomial_interpolation, regression_adjustment, snipe  # noqa: E402, F401
from .pipeline import analyse, analyse_on_engine  # noqa: E402, F401
from .randomization import InterferenceTest, RandomizationIntervals, RandomizationTest, interference_test  # noqa: E402, F401
from .randomization import randomization_intervals, randomization_test  # noqa: E402, F401
from .registry import ESTIMATORS, Analysis, Estimator, Verdict, recommend, register  # noqa: E402, F401
from .registry import validity, validity_table  # noqa: E402, F401
from .results import Effect, Effects, estimand_of  # noqa: E402, F401
from .table import analysis_table  # noqa: E402, F401
from .weighting import condition_means, horvitz_thompson, weighted_least_squares  # noqa: E402, F401

#: the estimators' names (the --method choices besides auto), and those that take covariates, read exposure
#: probabilities, or cluster their errors: read off the registry
METHODS = tuple(ESTIMATORS)
check_registry("estimators", ESTIMATORS, ESTIMATE_METHODS)
COVARIATE_METHODS = tuple(name for name, entry in ESTIMATORS.items() if entry.covariates)
PROBABILITY_ESTIMATORS = tuple(name for name, entry in ESTIMATORS.items() if "probabilities" in entry.needs)

# names above that are not in __all__ are shared across the library, not the documented API
__all__ = ["ESTIMATORS", "FEW_CLUSTERS", "METHODS", "MIN_UNITS", "Analysis", "AnalysisPlan", "Effect", "Effects",
           "Estimator", "InterferenceTest", "RandomizationTest", "Verdict", "analyse", "analyse_on_engine", "estimate",
           "estimate_from_stats", "interference_test", "lagrange_weights", "plan_analysis", "polynomial_interpolation",
           "RandomizationIntervals", "randomization_intervals", "randomization_test", "register", "regression_adjustment", "snipe", "sufficient_stats", "validity",
           "validity_table", "weighted_least_squares"]
