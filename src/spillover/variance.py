"""Cluster-robust (sandwich) variances: the one place every estimator gets them from.

``estimate`` (``ols-cluster``), the sufficient-statistics path of the engines and the
design study in ``simulate`` all call :func:`sandwich`, so the coverage a design study
reports is the coverage of the estimator a user then runs.

Everything is computed from two per-cluster statistics, ``X_g'X_g`` (``cross``) and
``X_g'e_g`` (``scores``), which an out-of-core engine can reduce its data to:

- ``CR0``: ``M (sum_g s_g s_g') M`` with ``M = (X'X)^-1``;
- ``CR1``: CR0 times ``G/(G-1) (N-1)/(N-K)``, what ``statsmodels`` and Stata report;
- ``CR2`` (Bell & McCaffrey 2002; Pustejovsky & Tipton 2018): each cluster's residuals
  are first multiplied by ``(I - H_gg)^{-1/2}``, which makes the variance unbiased when
  the errors are independent and homoskedastic, and its degrees of freedom are the
  Bell-McCaffrey Satterthwaite approximation (the "BM" df of Imbens & Kolesar 2016).

``CR2`` with BM degrees of freedom is the default: with few or very unequal clusters,
CR1 with ``t(G-1)`` over-rejects (Imbens & Kolesar 2016; Pustejovsky & Tipton 2018,
whose simulations show CR2 + Satterthwaite df close to nominal from about 10 clusters),
and with many balanced clusters the two agree.

``H_gg = X_g M X_g'`` has rank at most ``K``, so ``(I - H_gg)^{-1/2}`` acts on a cluster's
score through a ``K x K`` matrix: no ``n_g x n_g`` matrix is ever formed, and the cost is
linear in the data. Fixed effects of groups that nest the clusters (strata, and the
intercept as one group) can be absorbed (within-transformed) and still enter the CR2
adjustment and the degrees of freedom exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import InputError
from .graph import group_indicator
from .names import DEFAULT_VCOV, VCOV_TYPES
from .seeds import check_seed

__all__ = ["BOOTSTRAP_WEIGHTS", "DEFAULT_VCOV", "VCOV_TYPES", "ClusterStats", "OLSFit", "Sandwich", "WildBootstrap",
           "cluster_stats", "dependence_robust", "ols", "ols_cluster_sums", "sandwich", "t_interval",
           "t_quantile",
           "wild_cluster_bootstrap", "wild_cluster_bootstrap_from_sums"]

_TINY = 1e-12


@dataclass(frozen=True)
class ClusterStats:
    """Per-cluster statistics of a (possibly batched) regression.

    ``cross[..., g]`` is ``X_g'X_g`` (``K x K``), ``scores[..., g]`` is ``X_g'e_g``. With
    absorbed fixed effects (groups ``group[g]`` that nest the clusters), ``X`` and ``e``
    are within-transformed and ``share[g] = n_g / n_group``, ``x_sum[..., g] = X_g'1 /
    sqrt(n_group)`` and ``e_sum[..., g] = 1'e_g / sqrt(n_group)`` carry what the absorbed
    columns add to the hat matrix. Leading ``...`` dimensions are independent regressions
    (e.g. simulated experiments) on the same clusters. When every regressor is constant
    within every cluster (treatment assigned by cluster), ``rows[..., g, :]`` is cluster
    ``g``'s row of ``X`` and ``sizes[g]`` its number of units: each ``H_gg`` then has rank
    one and :func:`sandwich` takes its closed form.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> codes = np.repeat(np.arange(12), 5)                       # 12 clusters of 5 units
    >>> X = np.column_stack([np.ones(60), codes % 2])              # treatment by cluster
    >>> y = X @ [1.0, 0.5] + rng.normal(size=12)[codes] + rng.normal(size=60)
    >>> stats = cluster_stats(X, y - y.mean(), codes, 12)
    >>> stats.cross.shape, stats.scores.shape, stats.n_clusters
    ((12, 2, 2), (12, 2), 12)
    """

    cross: np.ndarray
    scores: np.ndarray
    n_obs: int
    group: np.ndarray | None = None
    share: np.ndarray | None = None
    x_sum: np.ndarray | None = None
    e_sum: np.ndarray | None = None
    rows: np.ndarray | None = None
    sizes: np.ndarray | None = None

    @property
    def n_clusters(self) -> int:
        """Number of clusters."""
        return int(self.cross.shape[-3])

    @property
    def n_absorbed(self) -> int:
        """Number of absorbed fixed-effect groups (0 when none)."""
        return 0 if self.group is None else int(self.group.max()) + 1


@dataclass(frozen=True)
class Sandwich:
    """A cluster-robust covariance: ``cov[..., K, K]``, the degrees of freedom of each
    requested contrast ``df[..., m]``, and how it was computed.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> codes = np.repeat(np.arange(12), 5)                       # 12 clusters of 5 units
    >>> X = np.column_stack([np.ones(60), codes % 2])              # treatment by cluster
    >>> y = X @ [1.0, 0.5] + rng.normal(size=12)[codes] + rng.normal(size=60)
    >>> fit = ols(y, X, codes, "CR2")
    >>> se, low, high, p = fit.sandwich.interval(fit.beta[1], 1)
    >>> bool(low < 0.5 < high), float(fit.sandwich.df[1]) < 11
    (True, True)
    """

    cov: np.ndarray
    df: np.ndarray
    n_clusters: int
    vcov: str

    def interval(self, estimate: np.ndarray, contrast: int, alpha: float = 0.05):
        """``(se, ci_low, ci_high, p_value)`` of coefficient ``contrast`` with t(df)."""
        se = np.sqrt(np.maximum(self.cov[..., contrast, contrast], 0.0))
        return t_interval(estimate, se, self.df[..., contrast], alpha)


def t_quantile(df, probability: float):
    """The ``probability`` quantile of t(``df``), normal where ``df`` is infinite (arrays
    of ``df`` elementwise); from ``scipy.special``, which imports in a fraction of
    ``scipy.stats``' time.

    >>> t_quantile(np.array([10.0, np.inf]), 0.975).round(4).tolist()
    [2.2281, 1.96]
    """
    from scipy import special

    df = np.asarray(df, dtype=float)
    finite = np.isfinite(df)
    return np.where(finite, special.stdtrit(np.where(finite, df, 1.0), probability), special.ndtri(probability))


def t_interval(estimate, se, df, alpha: float = 0.05):
    """``(se, low, high, p)``: the two-sided t(df) interval and p-value (normal where df
    is infinite); NaN where the standard error is zero or undefined.

    Examples
    --------
    >>> se, low, high, p = t_interval(1.0, 0.5, df=10)
    >>> round(float(low), 3), round(float(high), 3), round(float(p), 4)
    (-0.114, 2.114, 0.0734)
    """
    estimate, se, df = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (estimate, se, df)))
    ok = np.isfinite(se) & (se > 0) & (df > 0)
    safe_df = np.where(ok, df, 1.0)
    from scipy import special  # t and normal quantiles (what scipy.stats calls), imported when first needed

    quantile = t_quantile(safe_df, 1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * special.stdtr(safe_df, -np.abs(estimate / se))
    nan = np.full(estimate.shape, np.nan)
    low = np.where(ok, estimate - quantile * se, nan)
    high = np.where(ok, estimate + quantile * se, nan)
    return se, low, high, np.where(ok, p, nan)


def check_vcov(vcov: str) -> str:
    """The variance type, upper-cased, or an :class:`InputError` naming the choices."""
    name = str(vcov).upper()
    if name not in VCOV_TYPES:
        raise InputError(f"vcov {vcov!r} is not one of {list(VCOV_TYPES)}.")
    return name


# --------------------------------------------------------------------------- statistics


def cluster_stats(
    X: np.ndarray, resid: np.ndarray, codes: np.ndarray, n_clusters: int, absorbed: np.ndarray | None = None
) -> ClusterStats:
    """Per-cluster ``X_g'X_g`` and ``X_g'e_g`` from unit-level arrays.

    ``X`` is ``(n, K)`` or ``(n, K, S)`` (``S`` regressions at once), ``resid`` ``(n,)``
    or ``(n, S)``, ``codes`` the dense cluster of each unit. With ``absorbed`` (the dense
    group of each unit, groups nesting the clusters), ``X`` and ``resid`` must already be
    within-transformed (see :func:`within`).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> codes = np.repeat(np.arange(12), 5)                       # 12 clusters of 5 units
    >>> X = np.column_stack([np.ones(60), codes % 2])              # treatment by cluster
    >>> y = X @ [1.0, 0.5] + rng.normal(size=12)[codes] + rng.normal(size=60)
    >>> cluster_stats(X, y, codes, 12).cross[0]                  # X_g'X_g of cluster 0 (control)
    array([[5., 0.],
           [0., 0.]])
    """
    n = X.shape[0]
    batched = X.ndim == 3
    if not batched:
        X, resid = X[:, :, None], resid[:, None]
    k, s = X.shape[1], X.shape[2]
    members = group_indicator(codes, n_clusters)
    outer = (X[:, :, None, :] * X[:, None, :, :]).reshape(n, k * k * s)
    cross = np.moveaxis(np.asarray(members @ outer).reshape(n_clusters, k, k, s), -1, 0)
    scores = np.moveaxis(np.asarray(members @ (X * resid[:, None, :]).reshape(n, k * s)).reshape(n_clusters, k, s), -1, 0)
    extra = {}
    if absorbed is not None:
        group = np.zeros(n_clusters, dtype=np.int64)
        group[codes] = absorbed
        if np.any(group[codes] != absorbed):
            raise InputError("absorbed fixed effects must nest the clusters (every cluster in one group).")
        group_size = np.bincount(absorbed).astype(float)
        root = np.sqrt(group_size[group])
        extra = dict(
            group=group,
            share=np.bincount(codes, minlength=n_clusters) / group_size[group],
            x_sum=np.moveaxis(np.asarray(members @ X.reshape(n, k * s)).reshape(n_clusters, k, s), -1, 0)
            / root[:, None],
            e_sum=np.asarray(members @ resid).T / root,
        )
    rows = _constant_rows(X, codes, n_clusters)
    if rows is not None:
        extra.update(rows=rows, sizes=np.bincount(codes, minlength=n_clusters))
    if not batched:
        cross, scores = cross[0], scores[0]
        extra = {key: (value if key in ("group", "share", "sizes") else value[0]) for key, value in extra.items()}
    return ClusterStats(cross, scores, n, **extra)


def _constant_rows(X: np.ndarray, codes: np.ndarray, n_clusters: int, chunk: int = 16) -> np.ndarray | None:
    """Each cluster's row of ``X`` (``(n, K, S)``) as ``(S, G, K)`` when every regressor is
    constant within every cluster (exactly), else None; compared ``chunk`` experiments at
    a time so no second copy of ``X`` is made."""
    first = np.empty(n_clusters, dtype=np.int64)
    first[codes[::-1]] = np.arange(codes.size - 1, -1, -1)          # each cluster's first unit
    rows = X[first]                                                  # (G, K, S)
    for start in range(0, X.shape[2], chunk):
        part = slice(start, start + chunk)
        if not np.array_equal(X[:, :, part], rows[codes, :, part]):
            return None
    return np.ascontiguousarray(np.moveaxis(rows, -1, 0))


def within(matrix: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``matrix`` (rows = units, any trailing shape) minus its group means."""
    codes, uniques = pd.factorize(groups)
    members = group_indicator(codes, len(uniques))
    size = np.bincount(codes).astype(float)
    flat = matrix.reshape(matrix.shape[0], -1)
    means = np.asarray(members @ flat) / size[:, None]
    return (flat - means[codes]).reshape(matrix.shape)


# --------------------------------------------------------------------------- the kernel


def _gram(rows: np.ndarray) -> np.ndarray:
    """``sum_g r_g r_g'`` over the cluster axis (``(..., G, K)`` to ``(..., K, K)``): a
    batched matrix product when the rows are contiguous, ``einsum`` when the experiments
    axis is innermost (as the batched statistics are laid out); each is several times
    faster than the other on the other layout."""
    if rows.ndim > 2 and rows.strides[-1] == rows.itemsize:
        return np.swapaxes(rows, -1, -2) @ rows
    return np.einsum("...gi,...gj->...ij", rows, rows)


def _eigh(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched symmetric eigendecomposition; 2 x 2 (an intercept and a treatment, the
    common case, millions of times in a design study) by the closed-form rotation."""
    if matrix.shape[-1] != 2:
        return np.linalg.eigh(matrix)
    a, b, c = matrix[..., 0, 0], matrix[..., 0, 1], matrix[..., 1, 1]
    theta = 0.5 * np.arctan2(2 * b, a - c)
    cos, sin = np.cos(theta), np.sin(theta)
    lam = np.stack([a * cos**2 + 2 * b * sin * cos + c * sin**2, a * sin**2 - 2 * b * sin * cos + c * cos**2], -1)
    vec = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    return lam, vec


def sandwich(
    cluster: ClusterStats,
    vcov: str = DEFAULT_VCOV,
    contrasts: np.ndarray | None = None,
) -> Sandwich:
    """The cluster-robust covariance of OLS coefficients and the degrees of freedom of
    each contrast (rows of ``contrasts``, default: each coefficient).

    CR0 and CR1 use ``G - 1`` degrees of freedom; CR2 the Bell-McCaffrey
    Satterthwaite approximation under a working model of independent, homoskedastic
    errors, computed in ``O(G K^2)`` from ``cross`` alone.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> codes = np.repeat(np.arange(10), 5)
    >>> X = np.column_stack([np.ones(50), codes % 2])
    >>> y = X @ [1.0, 0.5] + rng.normal(size=10)[codes] + rng.normal(size=50)
    >>> beta = np.linalg.lstsq(X, y, rcond=None)[0]
    >>> result = sandwich(cluster_stats(X, y - X @ beta, codes, 10), "CR2")
    >>> result.df.round(2)    # control mean: 5 clusters, 4 df; the difference: 10 clusters, 8 df
    array([4., 8.])
    """
    vcov = check_vcov(vcov)
    cross, scores = cluster.cross, cluster.scores
    g, k = cluster.n_clusters, cross.shape[-1]
    if g < 2:
        raise InputError(f"{g} cluster: a cluster-robust standard error needs at least two.")
    total = cross.sum(axis=-3)
    try:
        bread = np.linalg.inv(total)
    except np.linalg.LinAlgError:
        raise InputError("the regressors are collinear (X'X is singular): drop a condition or covariate.") from None
    contrasts = np.eye(k) if contrasts is None else np.atleast_2d(np.asarray(contrasts, dtype=float))
    if vcov in ("CR0", "CR1"):
        meat = _gram(scores)
        cov = bread @ meat @ bread
        if vcov == "CR1":
            n, params = cluster.n_obs, k + cluster.n_absorbed
            if n <= params:
                raise InputError(f"{n} observations for {params} parameters: no residual degrees of freedom.")
            cov = cov * (g / (g - 1) * (n - 1) / (n - params))
        df = np.full(cov.shape[:-2] + (contrasts.shape[0],), float(g - 1))
        return Sandwich(cov, df, g, vcov)

    # CR2. H_gg = B_g B_g' with B_g = [1/sqrt(n_group) (absorbed), X_g L], L L' = M.
    root = np.linalg.cholesky(bread)                                   # L L' = M, (..., K, K)
    if cluster.rows is not None:
        return _rank_one_cr2(cluster, bread, root, contrasts)
    root_g = root[..., None, :, :]
    gram_x = np.swapaxes(root_g, -1, -2) @ cross @ root_g              # L' S_g L
    proj_x = cross @ root_g                                            # X_g' (X_g L) = S_g L
    score_b = np.einsum("...ji,...gj->...gi", root, scores)            # (X_g L)' e_g
    absorbed = cluster.group is not None
    if absorbed:
        top = np.einsum("...gi,...ij->...gj", cluster.x_sum, root)     # (1/sqrt n_s)' X_g L
        share = np.broadcast_to(cluster.share, top.shape[:-1])
        gram = np.concatenate([
            np.concatenate([share[..., None, None], top[..., None, :]], axis=-1),
            np.concatenate([np.swapaxes(top[..., None, :], -1, -2), gram_x], axis=-1),
        ], axis=-2)
        proj = np.concatenate([cluster.x_sum[..., None], proj_x], axis=-1)       # X_g' B_g
        score_b = np.concatenate([cluster.e_sum[..., None], score_b], axis=-1)   # B_g' e_g
    else:
        gram, proj = gram_x, proj_x
    lam, vec = _eigh(gram)
    lam = np.clip(lam, 0.0, None)
    rest = 1.0 - lam
    inv_root = np.where(rest > _TINY, 1.0 / np.sqrt(np.where(rest > _TINY, rest, 1.0)), 0.0)  # Moore-Penrose
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = np.where(lam > 1e-8, (inv_root - 1.0) / lam, 0.5)      # ((1-l)^-1/2 - 1) / l, limit 1/2
    rotated = np.einsum("...gji,...gj->...gi", vec, score_b) * phi
    adjusted = scores + np.einsum("...gij,...gj->...gi", proj @ vec, rotated)
    meat = _gram(adjusted)
    cov = bread @ meat @ bread
    df = _bell_mccaffrey_df(cluster, bread, root, proj_x, gram, lam, vec, inv_root, contrasts, absorbed)
    return Sandwich(cov, df, g, vcov)


def _rank_one_cr2(cluster: ClusterStats, bread, root, contrasts) -> Sandwich:
    """CR2 when the regressors are constant within each cluster (``X_g = 1 x_g'``): then
    ``H_gg = h_g 1 1'`` with ``h_g = x_g'M x_g`` (plus ``1/n_group`` when absorbed), its
    one eigenvalue is ``l_g = n_g h_g`` and ``(I - H_gg)^{-1/2}`` multiplies the cluster's
    score by ``(1 - l_g)^{-1/2}`` (0 where ``l_g = 1``, Moore-Penrose), so the adjusted
    meat and the Bell-McCaffrey df take ``O(G K^2)`` scalar work with no eigensolve. Equal
    to the general path (``tests/test_variance.py`` checks it)."""
    x, n_g = cluster.rows, cluster.sizes.astype(float)                 # (..., G, K), (G,)
    lam = n_g * np.einsum("...gi,...ij,...gj->...g", x, bread, x)
    if cluster.group is not None:
        lam = lam + cluster.share
    rest = 1.0 - lam
    scale = np.where(rest > _TINY, 1.0 / np.sqrt(np.where(rest > _TINY, rest, 1.0)), 0.0)  # (1 - l_g)^{-1/2}
    meat = _gram(cluster.scores * scale[..., None])
    cov = bread @ meat @ bread
    x_root = np.einsum("...gi,...ij->...gj", x, root)                 # (L' x_g)'
    out = []
    for c in contrasts:
        b = n_g * scale * np.einsum("...gi,...i->...g", x, bread @ c)  # n_g a_g (1 - l_g)^{-1/2}, a_g = x_g'M c
        d = b * b / n_g                                                # w_g'w_g, w_g = A_g X_g M c
        q = b[..., None] * x_root                                      # B_g' w_g, the X part
        q0 = b / np.sqrt(n_g / cluster.share) if cluster.group is not None else None
        out.append(_satterthwaite(d, q, q0, cluster))
    return Sandwich(cov, np.stack(out, axis=-1), cluster.n_clusters, "CR2")


def _bell_mccaffrey_df(cluster, bread, root, proj_x, gram, lam, vec, inv_root, contrasts, absorbed) -> np.ndarray:
    """Satterthwaite degrees of freedom of ``c'V c`` under independent homoskedastic
    errors (see :func:`_satterthwaite`), with ``D_g = w_g'w_g``, ``w_g = A_g X_g M c`` and
    ``q_g = B_g'w_g`` its coordinates along the hat matrix's directions."""
    out = []
    with np.errstate(divide="ignore", invalid="ignore"):
        psi = np.where(1.0 - lam > _TINY, 1.0 / np.where(1.0 - lam > _TINY, 1.0 - lam, 1.0), 0.0)
    for c in contrasts:  # a handful of contrasts
        m_c = bread @ c                                                     # (..., K)
        beta_x = np.einsum("...gij,...j->...gi", np.swapaxes(proj_x, -1, -2), m_c)  # L' S_g M c
        if absorbed:
            beta_0 = np.einsum("...gi,...i->...g", cluster.x_sum, m_c)
            beta = np.concatenate([beta_0[..., None], beta_x], axis=-1)
        else:
            beta = beta_x
        plain = np.einsum("...gi,...gij,...j->...g", np.broadcast_to(m_c[..., None, :], cluster.scores.shape),
                          cluster.cross, m_c)                               # u'u = c'M S_g M c
        coords = np.einsum("...gji,...gj->...gi", vec, beta)
        d = plain + np.einsum("...gi,...gi->...g", coords**2, psi)   # u' A_g^2 u = u'u + u'V h V'u
        q = np.einsum("...gij,...gj->...gi", vec, coords * inv_root)        # B_g' A_g u
        out.append(_satterthwaite(d, q[..., 1:], q[..., 0], cluster) if absorbed else
                   _satterthwaite(d, q, None, cluster))
    return np.stack(out, axis=-1)


def _satterthwaite(d: np.ndarray, q_x: np.ndarray, q0: np.ndarray | None, cluster: ClusterStats) -> np.ndarray:
    """``tr(U'U)^2 / tr((U'U)^2)`` with ``U'U = D - Q Q'`` (``G x G``, never formed):
    ``d`` the diagonal ``D``, ``q_x`` (``(..., G, K)``) and ``q0`` (``(..., G)``, the
    absorbed group's direction, or None) the rows of ``Q``; only ``K x K`` sums are formed."""
    q_norm = np.einsum("...gi,...gi->...g", q_x, q_x)
    if q0 is not None:
        q_norm = q_norm + q0**2
    trace = d.sum(axis=-1) - q_norm.sum(axis=-1)
    big = _gram(q_x)
    frob = np.einsum("...ij,...ij->...", big, big)
    if q0 is not None:  # one hat direction per absorbed group: blocks of Q'Q by group
        members = group_indicator(cluster.group, cluster.n_absorbed)
        per_group = _group_sum(members, q0**2, -1)                          # (..., n_groups)
        mixed = _group_sum(members, q0[..., None] * q_x, -2)                # (..., n_groups, K)
        frob = frob + np.einsum("...s,...s->...", per_group, per_group) \
            + 2 * np.einsum("...si,...si->...", mixed, mixed)
    square = np.einsum("...g,...g->...", d, d) - 2 * np.einsum("...g,...g->...", d, q_norm) + frob
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(square > 0, trace**2 / square, np.nan)


def _group_sum(members, values: np.ndarray, axis: int) -> np.ndarray:
    """Sums over clusters by group along ``axis`` (the cluster axis): ``G`` -> ``n_groups``."""
    moved = np.moveaxis(values, axis, 0)
    flat = moved.reshape(moved.shape[0], -1)
    summed = np.asarray(members @ flat).reshape((members.shape[0],) + moved.shape[1:])
    return np.moveaxis(summed, 0, axis)


# --------------------------------------------------------------------------- regression


@dataclass(frozen=True)
class OLSFit:
    """OLS coefficients ``beta[..., K]`` and their cluster-robust :class:`Sandwich`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> codes = np.repeat(np.arange(12), 5)                       # 12 clusters of 5 units
    >>> X = np.column_stack([np.ones(60), codes % 2])              # treatment by cluster
    >>> y = X @ [1.0, 0.5] + rng.normal(size=12)[codes] + rng.normal(size=60)
    >>> fit = ols(y, X, codes)                                     # CR2 with Bell-McCaffrey df
    >>> fit.n_clusters, fit.cov.shape, fit.df.shape
    (12, (2, 2), (2,))
    """

    beta: np.ndarray
    sandwich: Sandwich

    @property
    def cov(self) -> np.ndarray:
        """The cluster-robust covariance of the coefficients."""
        return self.sandwich.cov

    @property
    def df(self) -> np.ndarray:
        """Degrees of freedom of each coefficient's t reference."""
        return self.sandwich.df

    @property
    def n_clusters(self) -> int:
        """Number of clusters."""
        return self.sandwich.n_clusters

    def interval(self, index: int, alpha: float = 0.05):
        """``(se, low, high, p)`` of coefficient ``index``."""
        return self.sandwich.interval(self.beta[..., index], index, alpha)


def _solve(xtx: np.ndarray, xty: np.ndarray) -> np.ndarray:
    """OLS coefficients from the normal equations (batched), or the collinearity error."""
    try:
        return np.linalg.solve(xtx, xty[..., None])[..., 0]
    except np.linalg.LinAlgError:
        raise InputError("the regressors are collinear (X'X is singular): drop a condition or covariate.") from None


def ols(
    y: np.ndarray,
    X: np.ndarray,
    clusters: np.ndarray,
    vcov: str = DEFAULT_VCOV,
    *,
    absorb: np.ndarray | None = None,
) -> OLSFit:
    """OLS of ``y`` on ``X`` with cluster-robust errors clustered by ``clusters``.

    ``y`` ``(n,)`` with ``X`` ``(n, K)``, or ``S`` regressions at once: ``y`` ``(n, S)``
    with ``X`` ``(n, K, S)``. ``absorb`` (a group per unit, nesting the clusters) adds
    group fixed effects by the within transformation, exactly (coefficients, CR1's
    ``N - K`` and CR2's adjustment all count them); pass ``absorb`` of all zeros for an
    intercept without a column of ones.

    ``CR1`` equals ``statsmodels.OLS(y, X).fit(cov_type="cluster")``'s covariance.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> codes = np.repeat(np.arange(12), 5)                       # 12 clusters of 5 units
    >>> X = np.column_stack([np.ones(60), codes % 2])              # treatment by cluster
    >>> y = X @ [1.0, 0.5] + rng.normal(size=12)[codes] + rng.normal(size=60)
    >>> se, low, high, p = ols(y, X, codes, "CR1").interval(1)
    >>> round(float(se), 4) > 0, bool(low < 0.5 < high)
    (True, True)
    """
    vcov = check_vcov(vcov)
    codes, uniques = pd.factorize(np.asarray(clusters))
    if (codes < 0).any():
        raise InputError("clusters: missing cluster labels; every unit needs a cluster.")
    batched = X.ndim == 3
    groups = None
    if absorb is not None:
        groups = pd.factorize(np.asarray(absorb))[0]
        X, y = within(X, groups), within(y, groups)
    Xb = np.moveaxis(X, -1, 0) if batched else X                      # (S, n, K)
    yb = y.T if batched else y
    xtx = np.swapaxes(Xb, -1, -2) @ Xb
    xty = np.einsum("...ni,...n->...i", Xb, yb)
    beta = _solve(xtx, xty)
    resid = yb - np.einsum("...ni,...i->...n", Xb, beta)
    stats_ = cluster_stats(X, resid.T if batched else resid, codes, len(uniques), groups)
    return OLSFit(beta, sandwich(stats_, vcov))


def ols_cluster_sums(
    sums: np.ndarray,
    rows: np.ndarray,
    sizes: np.ndarray,
    vcov: str = DEFAULT_VCOV,
    *,
    absorb: np.ndarray | None = None,
) -> OLSFit:
    """:func:`ols` when every regressor is constant within each cluster (treatment
    assigned by cluster), from each cluster's outcome sum alone: the same coefficients
    and the same CR0 / CR1 / CR2 covariance and degrees of freedom as ``ols`` on the
    units (to rounding), in time linear in the clusters.

    ``sums`` is ``(G,)`` (or ``(G, S)``: ``S`` regressions at once), the sum of ``y`` over
    each cluster's units; ``rows`` ``(G, K)`` (or ``(G, K, S)``) each cluster's regressors;
    ``sizes`` ``(G,)`` its number of units; ``absorb`` a group per cluster (fixed effects
    of groups nesting the clusters, as in ``ols``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> codes = np.repeat(np.arange(12), 5)                       # 12 clusters of 5 units
    >>> X = np.column_stack([np.ones(60), codes % 2])              # treatment by cluster
    >>> y = X @ [1.0, 0.5] + rng.normal(size=12)[codes] + rng.normal(size=60)
    >>> by_units = ols(y, X, codes)
    >>> by_sums = ols_cluster_sums(np.bincount(codes, y), X[::5], np.full(12, 5))
    >>> bool(np.allclose(by_units.cov, by_sums.cov)), bool(np.allclose(by_units.df, by_sums.df))
    (True, True)
    """
    vcov = check_vcov(vcov)
    batched = rows.ndim == 3
    x = np.moveaxis(rows, -1, 0).astype(float) if batched else np.asarray(rows, dtype=float)   # (S, G, K)
    total = np.asarray(sums, dtype=float).T if batched else np.asarray(sums, dtype=float)     # (S, G)
    n_g = np.asarray(sizes, dtype=float)
    if n_g.shape != total.shape[-1:] or x.shape[-2] != n_g.size or not (n_g >= 1).all():
        raise InputError(f"cluster sums: {total.shape[-1]} sums, {x.shape[-2]} rows and {n_g.size} sizes must "
                         "agree, one per cluster, and every cluster needs at least one unit.")
    extra = {}
    if absorb is not None:
        group = pd.factorize(np.asarray(absorb))[0]
        members = group_indicator(group, int(group.max()) + 1)
        n_s = members @ n_g
        x = x - (_group_sum(members, x * n_g[:, None], -2) / n_s[:, None])[..., group, :]
        total = total - n_g * (_group_sum(members, total, -1) / n_s)[..., group]
        root = np.sqrt(n_s[group])
    xtx = np.einsum("...gi,g,...gj->...ij", x, n_g, x)
    beta = _solve(xtx, np.einsum("...gi,...g->...i", x, total))
    resid = total - n_g * np.einsum("...gi,...i->...g", x, beta)      # each cluster's residual sum
    if absorb is not None:
        extra = dict(group=group, share=n_g / n_s[group], x_sum=x * (n_g / root)[:, None], e_sum=resid / root)
    stats_ = ClusterStats(n_g[:, None, None] * x[..., :, None] * x[..., None, :], x * resid[..., None],
                          int(n_g.sum()), rows=x, sizes=np.asarray(sizes), **extra)
    return OLSFit(beta, sandwich(stats_, vcov))


# --------------------------------------------------------------------------- dependence through the graph


def dependence_robust(
    X: np.ndarray, resid: np.ndarray, pairs, n_groups: int
) -> Sandwich:
    """Sandwich variance for units that are dependent along given pairs:
    ``M (sum_{(i,j) in pairs} x_i e_i e_j x_j') M`` (Aronow, Samii & Assenova 2015; the
    uniform-kernel network HAC of Leung 2022 with the dependence graph as its
    neighbourhood).

    ``pairs`` is a symmetric sparse ``n x n`` 0/1 matrix with a full diagonal, e.g. units
    of one cluster and units near each other in the graph. With the same-cluster pairs
    alone it is CR1. The meat is
    scaled as CR1 with ``n_groups`` (the randomization clusters) and projected onto the
    positive semidefinite cone (a kernel of this kind need not be PSD); degrees of
    freedom are ``n_groups - 1``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> codes = np.repeat(np.arange(12), 5)                       # 12 clusters of 5 units
    >>> X = np.column_stack([np.ones(60), codes % 2])              # treatment by cluster
    >>> y = X @ [1.0, 0.5] + rng.normal(size=12)[codes] + rng.normal(size=60)
    >>> import scipy.sparse as sp
    >>> same_cluster = sp.csr_array((codes[:, None] == codes[None, :]).astype(float))
    >>> beta = np.linalg.lstsq(X, y, rcond=None)[0]
    >>> network = dependence_robust(X, y - X @ beta, same_cluster, n_groups=12)
    >>> np.allclose(network.cov, ols(y, X, codes, "CR1").cov)        # same-cluster pairs alone: CR1
    True
    """
    n, k = X.shape
    if n_groups < 2:
        raise InputError(f"{n_groups} randomization cluster: a dependence-robust standard error needs at least two.")
    if n <= k:
        raise InputError(f"{n} observations for {k} parameters: no residual degrees of freedom.")
    try:
        bread = np.linalg.inv(X.T @ X)
    except np.linalg.LinAlgError:
        raise InputError("the regressors are collinear (X'X is singular): drop a condition or covariate.") from None
    scores = X * resid[:, None]
    meat = scores.T @ np.asarray(pairs @ scores)
    meat = (meat + meat.T) / 2
    lam, vec = np.linalg.eigh(meat)
    meat = (vec * np.clip(lam, 0.0, None)) @ vec.T
    correction = n_groups / (n_groups - 1) * (n - 1) / (n - k)
    cov = correction * bread @ meat @ bread
    return Sandwich(cov, np.full(k, float(n_groups - 1)), n_groups, "network")


# --------------------------------------------------------------------------- wild cluster bootstrap

BOOTSTRAP_WEIGHTS = ("rademacher", "webb")
_WEBB = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])


@dataclass(frozen=True)
class WildBootstrap:
    """A restricted wild cluster bootstrap (WCR) test of ``beta[index] = null`` and the
    interval that inverts it: ``p_value``, ``ci``, ``n_boot`` draws of cluster weights
    (every sign pattern when ``2^G <= n_boot`` with Rademacher weights).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> codes = np.repeat(np.arange(12), 5)                       # 12 clusters of 5 units
    >>> X = np.column_stack([np.ones(60), codes % 2])              # treatment by cluster
    >>> y = X @ [1.0, 0.5] + rng.normal(size=12)[codes] + rng.normal(size=60)
    >>> result = wild_cluster_bootstrap(y, X, codes, index=1, n_boot=999, seed=1)
    >>> result.enumerated, result.n_boot                      # 2^12 > 999 sign patterns: random draws
    (False, 999)
    """

    estimate: float
    null: float
    t_stat: float
    p_value: float
    ci: tuple[float, float]
    n_boot: int
    weights: str
    enumerated: bool


def _bootstrap_weights(n_clusters: int, n_boot: int, weights: str, rng: np.random.Generator):
    if weights not in BOOTSTRAP_WEIGHTS:
        raise InputError(f"bootstrap weights {weights!r} are not one of {list(BOOTSTRAP_WEIGHTS)}.")
    if weights == "rademacher" and 2**n_clusters <= n_boot:
        patterns = (np.arange(2**n_clusters)[:, None] >> np.arange(n_clusters)) & 1
        return 2.0 * patterns - 1.0, True
    if weights == "rademacher":
        return rng.choice([-1.0, 1.0], size=(n_boot, n_clusters)), False
    return rng.choice(_WEBB, size=(n_boot, n_clusters)), False


def wild_cluster_bootstrap(
    y: np.ndarray,
    X: np.ndarray,
    clusters: np.ndarray,
    index: int,
    *,
    null: float = 0.0,
    n_boot: int = 999,
    weights: str = "rademacher",
    alpha: float = 0.05,
    seed=None,
) -> WildBootstrap:
    """Restricted wild cluster bootstrap-t (WCR; Cameron, Gelbach & Miller 2008; Roodman
    et al. 2019) of coefficient ``index`` with CR1 studentization: reliable with few
    clusters (down to about 6-10), where cluster-robust t intervals are not. Webb's
    six-point weights are better than Rademacher below about 12 clusters.

    The interval collects the values ``b`` not rejected at level ``alpha`` (test
    inversion by bisection, the same cluster weights for every ``b``). Everything runs on
    per-cluster ``X_g'X_g`` and ``X_g'y_g`` (:func:`wild_cluster_bootstrap_from_sums`,
    which engines with only those sums call): ``O(B G K^2)`` per tested value.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> codes = np.repeat(np.arange(12), 5)                       # 12 clusters of 5 units
    >>> X = np.column_stack([np.ones(60), codes % 2])              # treatment by cluster
    >>> y = X @ [1.0, 0.5] + rng.normal(size=12)[codes] + rng.normal(size=60)
    >>> result = wild_cluster_bootstrap(y, X, codes, index=1, weights="webb", seed=1)
    >>> bool(result.ci[0] < 0.5 < result.ci[1]), 0 <= result.p_value <= 1
    (True, True)
    """
    codes, uniques = pd.factorize(np.asarray(clusters))
    sums = cluster_stats(X, y, codes, len(uniques))          # scores here are X_g'y_g
    return wild_cluster_bootstrap_from_sums(sums.cross, sums.scores, X.shape[0], index, null=null, n_boot=n_boot,
                                            weights=weights, alpha=alpha, seed=seed)


def wild_cluster_bootstrap_from_sums(
    cross: np.ndarray,
    xty: np.ndarray,
    n_obs: int,
    index: int,
    *,
    null: float = 0.0,
    n_boot: int = 999,
    weights: str = "rademacher",
    alpha: float = 0.05,
    seed=None,
) -> WildBootstrap:
    """:func:`wild_cluster_bootstrap` from per-cluster ``X_g'X_g`` (``cross``, ``G x K x
    K``) and ``X_g'y_g`` (``xty``, ``G x K``) over ``n_obs`` observations.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> codes = np.repeat(np.arange(12), 5)                       # 12 clusters of 5 units
    >>> X = np.column_stack([np.ones(60), codes % 2])              # treatment by cluster
    >>> y = X @ [1.0, 0.5] + rng.normal(size=12)[codes] + rng.normal(size=60)
    >>> sums = cluster_stats(X, y, codes, 12)                        # X_g'X_g and X_g'y_g
    >>> a = wild_cluster_bootstrap_from_sums(sums.cross, sums.scores, 60, 1, seed=3)
    >>> b = wild_cluster_bootstrap(y, X, codes, 1, seed=3)
    >>> a.p_value == b.p_value and a.ci == b.ci
    True
    """
    g, k = cross.shape[0], cross.shape[-1]
    n = n_obs
    if g < 2:
        raise InputError(f"{g} cluster: the wild cluster bootstrap needs at least two.")
    if n_boot < 1:
        raise InputError(f"n_boot={n_boot} must be at least 1.")
    rng = check_seed(seed)
    bread = np.linalg.inv(cross.sum(axis=0))
    beta = bread @ xty.sum(axis=0)
    scale = g / (g - 1) * (n - 1) / (n - k)
    m_j = bread[:, index]
    c = cross @ m_j                                  # (G, K): S_g m_j
    resid_scores = xty - cross @ beta                # X_g' e_g
    se = np.sqrt(scale * np.sum((resid_scores @ m_j) ** 2))
    draws, enumerated = _bootstrap_weights(g, n_boot, weights, rng)
    others = [i for i in range(k) if i != index]
    restricted_bread = np.linalg.inv(cross.sum(axis=0)[np.ix_(others, others)])

    def p_value(b: float) -> float:
        # restricted fit under beta_index = b, then bootstrap outcomes X beta~ + v_g u~_g
        beta_r = np.zeros(k)
        beta_r[index] = b
        beta_r[others] = restricted_bread @ (xty.sum(axis=0)[others] - cross.sum(axis=0)[others, index] * b)
        s_tilde = xty - cross @ beta_r               # X_g' u~_g
        u = (draws @ s_tilde) @ bread                # (B, K): beta* - beta~
        a = s_tilde @ m_j                            # (G,)
        projected = draws * a - u @ c.T              # m_j' X_g' e*_g for every draw and cluster
        se_star = np.sqrt(scale * np.sum(projected**2, axis=1))
        with np.errstate(divide="ignore", invalid="ignore"):
            t_star = u[:, index] / se_star
        t_obs = (beta[index] - b) / se
        return float(np.mean(np.abs(t_star) >= abs(t_obs) - 1e-12))

    def bound(direction: float) -> float:
        inside, step = beta[index], se
        outside = inside + direction * step
        for _ in range(60):  # widen until rejected
            if p_value(outside) < alpha:
                break
            inside, outside = outside, outside + direction * step
            step *= 2
        for _ in range(50):  # bisection
            middle = (inside + outside) / 2
            if p_value(middle) < alpha:
                outside = middle
            else:
                inside = middle
        return float((inside + outside) / 2)

    return WildBootstrap(float(beta[index]), float(null), float((beta[index] - null) / se), p_value(null),
                         (bound(-1.0), bound(1.0)), int(draws.shape[0]), weights, enumerated)
