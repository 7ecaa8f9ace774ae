"""The result of an analysis: one :class:`Effect` per contrast, and :class:`Effects`, the
tidy table of them with the level, the notes on what the intervals approximate and the
health checks."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..display import notebook_html
from ..exposure import Mapping
from ..health import Check
from ..variance import (
    t_interval,
)


@dataclass(frozen=True)
class Effect:
    """One contrast of an exposure condition against the control condition.

    ``df`` is the degrees of freedom of the t reference distribution (``inf``: normal).

    Examples
    --------
    >>> import pandas as pd
    >>> exposure = pd.DataFrame({"unit_id": range(10), "condition": ["treated", "control"] * 5})
    >>> outcomes = pd.DataFrame({"unit_id": range(10), "y": [3.0, 1.0, 2.5, 1.5, 3.5, 0.5, 2.0, 1.0, 3.0, 1.0]})
    >>> from spillover.estimate import estimate
    >>> effects = estimate(outcomes, exposure, "difference-in-means")
    >>> effect = effects["treated"]
    >>> round(effect.estimate, 3), [round(v, 3) for v in effect.conf_int(0.1)]
    (1.8, [1.307, 2.293])
    """

    estimand: str
    condition: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    n_units: int
    n_clusters: int | None
    method: str
    df: float = float("inf")

    def conf_int(self, alpha: float = 0.05) -> tuple[float, float]:
        """The ``1 - alpha`` interval, from the same standard error and reference."""
        _, low, high, _ = t_interval(self.estimate, self.se, self.df, alpha)
        return float(low), float(high)


@dataclass(frozen=True)
class Effects:
    """The effects of one analysis: a tidy table, one row per contrast.

    ``alpha`` is the level of the intervals (``1 - alpha`` coverage); ``notes`` say what
    the variance approximates, if anything (e.g. a conservative bound, Monte Carlo
    probabilities, pairs assumed independent); ``health`` holds the sample-ratio checks
    (:class:`~spillover.health.Check`) run on the analysed units.

    Examples
    --------
    >>> import pandas as pd
    >>> exposure = pd.DataFrame({"unit_id": range(10), "condition": ["treated", "control"] * 5})
    >>> outcomes = pd.DataFrame({"unit_id": range(10), "y": [3.0, 1.0, 2.5, 1.5, 3.5, 0.5, 2.0, 1.0, 3.0, 1.0]})
    >>> from spillover.estimate import estimate
    >>> effects = estimate(outcomes, exposure, "difference-in-means")
    >>> effects.to_frame()[["estimand", "condition", "estimate"]].round(3).values.tolist()
    [['direct (ignoring interference)', 'treated', 1.8]]
    """

    effects: tuple[Effect, ...]
    control: str
    alpha: float = 0.05
    notes: tuple[str, ...] = ()
    health: tuple[Check, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        """One row per contrast, the columns of :class:`Effect`."""
        return pd.DataFrame([asdict(e) for e in self.effects], columns=list(Effect.__dataclass_fields__))

    def conf_int(self, alpha: float | None = None) -> pd.DataFrame:
        """Intervals at level ``1 - alpha`` (default: the analysis's), one row per contrast."""
        alpha = self.alpha if alpha is None else alpha
        rows = [(e.condition, *e.conf_int(alpha)) for e in self.effects]
        return pd.DataFrame(rows, columns=["condition", "ci_low", "ci_high"]).set_index("condition")

    def __getitem__(self, estimand_or_condition: str) -> Effect:
        for effect in self.effects:
            if estimand_or_condition in (effect.estimand, effect.condition):
                return effect
        raise KeyError(estimand_or_condition)

    def __len__(self) -> int:
        return len(self.effects)

    @property
    def level(self) -> str:
        """The interval level as printed, e.g. ``95%``."""
        return f"{100 * (1 - self.alpha):g}%"

    def summary(self) -> str:
        """A readable table: the contrasts, the variance method and what it approximates."""
        a = max([10, *(len(e.estimand) + 2 for e in self.effects)])  # columns as wide as the longest name
        b = max([11, *(len(e.condition) + 2 for e in self.effects)])
        lines = [f"Effects against '{self.control}' ({self.level} intervals)",
                 f"{'estimand':<{a}}{'condition':<{b}}{'estimate':>10}{'se':>9}{'ci_low':>10}{'ci_high':>10}"
                 f"{'p':>9}{'df':>7}{'n':>8}{'G':>6}"]
        for e in self.effects:
            df = "inf" if not np.isfinite(e.df) else f"{e.df:.1f}"
            lines.append(f"{e.estimand:<{a}}{e.condition:<{b}}{e.estimate:>+10.4f}{e.se:>9.4f}{e.ci_low:>+10.4f}"
                         f"{e.ci_high:>+10.4f}{e.p_value:>9.3g}{df:>7}{e.n_units:>8}"
                         f"{'-' if e.n_clusters is None else e.n_clusters:>6}")
        methods = sorted({e.method for e in self.effects})
        lines.append(f"method: {'; '.join(methods)}")
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The effects as a notebook shows them: a table, then what the intervals
        approximate and the flagged health checks."""
        frame = self.to_frame().drop(columns="method").rename(
            columns={"ci_low": f"ci_low ({self.level})", "ci_high": f"ci_high ({self.level})"})
        methods = sorted({e.method for e in self.effects})
        notes = [f"method: {'; '.join(methods)}", *self.notes,
                 *(f"health: {check.detail}" for check in self.health if check.flagged)]
        return notebook_html(f"Effects against '{self.control}' ({self.level} intervals)", frame, notes)

    def plot(self, ax=None):
        """Each contrast's estimate and interval against zero (a matplotlib ``Axes``; a
        new figure when ``ax`` is None). See :func:`spillover.plots.draw_effects`."""
        from ..plots import draw_effects

        return draw_effects(self, ax)

    def __repr__(self) -> str:
        lines = [f"Effects against '{self.control}':"]
        for e in self.effects:
            lines.append(
                f"  {e.estimand:<10} ({e.condition}) {e.estimate:+.4f}  se {e.se:.4f}  "
                f"{self.level} CI [{e.ci_low:+.4f}, {e.ci_high:+.4f}]  p {e.p_value:.3g}  "
                f"n={e.n_units}{'' if e.n_clusters is None else f', G={e.n_clusters}'}  [{e.method}]"
            )
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def estimand_of(condition: str, control: str, mapping: Mapping | None = None) -> str:
    """The estimand a contrast of ``condition`` with ``control`` targets, as the mapping
    names it (``"<condition> vs <control>"`` when it names none, or with no mapping)."""
    return mapping.estimand(condition, control) if mapping is not None else f"{condition} vs {control}"
