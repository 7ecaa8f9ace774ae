"""The variance kernel against ground truth: statsmodels for CR0/CR1, and a dense
transcription of Bell & McCaffrey's CR2 and its Satterthwaite degrees of freedom
(``n x n`` hat matrix, ``(I - H_gg)^-1/2`` by eigendecomposition, ``U'U`` formed
explicitly) for CR2, with and without absorbed fixed effects, batched or not."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from spillover import InputError
from spillover.variance import cluster_stats, ols, ols_cluster_sums, sandwich, t_interval, within


def _data(seed: int, n_clusters: int = 12, k_extra: int = 1):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 25, n_clusters)                      # very unequal clusters
    codes = np.repeat(np.arange(n_clusters), sizes)
    n = codes.size
    strata = (np.arange(n_clusters) % 3)[codes]                  # clusters nested in strata
    z = (rng.random(n_clusters) < 0.5).astype(float)[codes]
    covariate = rng.normal(size=(n, k_extra))
    y = 0.3 * z + covariate @ rng.normal(size=k_extra) + rng.normal(size=n_clusters)[codes] + rng.normal(size=n)
    return y, z, covariate, codes, strata


def dense_cr2(y, X, codes, contrasts):
    """CR2 and BM degrees of freedom by the book: every matrix formed densely."""
    n = len(y)
    bread = np.linalg.inv(X.T @ X)
    hat = X @ bread @ X.T
    resid = y - hat @ y
    meat = np.zeros((X.shape[1],) * 2)
    adjust = {}
    for g in np.unique(codes):
        rows = np.flatnonzero(codes == g)
        lam, vec = np.linalg.eigh(np.eye(rows.size) - hat[np.ix_(rows, rows)])
        adjust[g] = vec @ np.diag(np.where(lam > 1e-12, lam, np.inf) ** -0.5) @ vec.T
        s = X[rows].T @ adjust[g] @ resid[rows]
        meat += np.outer(s, s)
    dfs = []
    for c in contrasts:
        columns = []
        for g in np.unique(codes):
            rows = np.flatnonzero(codes == g)
            omega = adjust[g] @ X[rows] @ bread @ c
            columns.append((np.eye(n) - hat)[:, rows] @ omega)
        U = np.column_stack(columns)
        lam = np.linalg.eigvalsh(U.T @ U)
        dfs.append(lam.sum() ** 2 / np.sum(lam**2))
    return bread @ meat @ bread, np.array(dfs)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cr2_and_df_equal_the_dense_formulas(seed):
    y, z, covariate, codes, _ = _data(seed)
    X = np.column_stack([np.ones_like(z), z, covariate])
    fit = ols(y, X, codes, "CR2")
    cov, df = dense_cr2(y, X, codes, np.eye(X.shape[1]))
    np.testing.assert_allclose(fit.cov, cov, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(fit.df, df, rtol=1e-9)


@pytest.mark.parametrize("seed", [3, 4])
def test_cr2_with_absorbed_strata_equals_the_full_regression(seed):
    y, z, covariate, codes, strata = _data(seed)
    dummies = (strata[:, None] == np.arange(3)).astype(float)
    full = np.column_stack([dummies, z, covariate])
    cov, df = dense_cr2(y, full, codes, np.eye(full.shape[1])[3:])
    fit = ols(y, np.column_stack([z, covariate]), codes, "CR2", absorb=strata)
    np.testing.assert_allclose(fit.cov, cov[3:, 3:], rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(fit.df, df, rtol=1e-9)
    # CR1 counts the absorbed parameters as statsmodels counts the dummies
    reference = sm.OLS(y, full).fit(cov_type="cluster", cov_kwds={"groups": codes})
    np.testing.assert_allclose(ols(y, np.column_stack([z, covariate]), codes, "CR1", absorb=strata).cov,
                               reference.cov_params()[3:, 3:], rtol=1e-9)


def _cluster_level_data(seed: int):
    """Regressors constant within clusters (treatment and a cluster covariate); one
    stratum holds a single cluster, whose H_gg has eigenvalue 1 (the Moore-Penrose case)."""
    y, z, _, codes, strata = _data(seed, n_clusters=13)
    level = np.random.default_rng(seed).normal(size=13)[codes]
    strata = np.where(codes == 12, 3, strata)
    return y, np.column_stack([z, level]), codes, strata


@pytest.mark.parametrize("seed", [5, 6])
def test_cluster_constant_regressors_take_the_rank_one_cr2_equal_to_the_book(seed):
    y, X, codes, strata = _cluster_level_data(seed)
    full = np.column_stack([np.ones_like(y), X])
    fit = ols(y, full, codes, "CR2")
    assert cluster_stats(full, y, codes, 13).rows is not None        # the closed form ran
    cov, df = dense_cr2(y, full, codes, np.eye(3))
    np.testing.assert_allclose(fit.cov, cov, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(fit.df, df, rtol=1e-9)
    dummies = (strata[:, None] == np.arange(4)).astype(float)
    cov, df = dense_cr2(y, np.column_stack([dummies, X]), codes, np.eye(6)[4:])
    fit = ols(y, X, codes, "CR2", absorb=strata)
    np.testing.assert_allclose(fit.cov, cov[4:, 4:], rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(fit.df, df, rtol=1e-9)


@pytest.mark.parametrize("vcov", ["CR0", "CR1", "CR2"])
@pytest.mark.parametrize("absorbed", [False, True])
def test_ols_from_cluster_sums_equals_ols_on_the_units(vcov, absorbed):
    y, X, codes, strata = _cluster_level_data(7)                      # and 2 more regressions on its clusters
    rng = np.random.default_rng(8)
    y = np.column_stack([y, y[:, None] + rng.normal(size=(len(y), 2))])
    X = np.stack([X, rng.normal(size=(13, 2))[codes], rng.normal(size=(13, 2))[codes]], axis=-1)   # (n, K, S)
    if not absorbed:
        X = np.concatenate([np.ones((len(codes), 1, 3)), X], axis=1)
    first = np.unique(codes, return_index=True)[1]
    sums = np.stack([np.bincount(codes, column) for column in y.T], axis=-1)
    absorb = strata if absorbed else None
    units = ols(y, X, codes, vcov, absorb=absorb)
    clusters = ols_cluster_sums(sums, X[first], np.bincount(codes), vcov,
                                absorb=None if absorb is None else absorb[first])
    np.testing.assert_allclose(clusters.beta, units.beta, rtol=1e-10)
    np.testing.assert_allclose(clusters.cov, units.cov, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(clusters.df, units.df, rtol=1e-9)


@pytest.mark.parametrize("vcov,kwds", [("CR1", {}), ("CR0", {"use_correction": False})])
def test_cr0_cr1_equal_statsmodels(vcov, kwds):
    y, z, covariate, codes, _ = _data(5, n_clusters=40, k_extra=2)
    X = np.column_stack([np.ones_like(z), z, covariate])
    reference = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": codes, **kwds})
    fit = ols(y, X, codes, vcov)
    np.testing.assert_allclose(fit.beta, reference.params, rtol=1e-12)
    np.testing.assert_allclose(fit.cov, reference.cov_params(), rtol=1e-10)
    assert np.all(fit.df == 39)


def test_batched_equals_one_at_a_time():
    rng = np.random.default_rng(7)
    y0, z0, _, codes, strata = _data(7)
    n, s = y0.size, 5
    z = (rng.random((codes.max() + 1, s)) < 0.5).astype(float)[codes]
    y = y0[:, None] + 0.2 * z + rng.normal(size=(n, s))
    batched = ols(y, z[:, None, :], codes, "CR2", absorb=strata)
    for j in range(s):
        single = ols(y[:, j], z[:, [j]], codes, "CR2", absorb=strata)
        np.testing.assert_allclose(batched.beta[j], single.beta, rtol=1e-12)
        np.testing.assert_allclose(batched.cov[j], single.cov, rtol=1e-10)
        np.testing.assert_allclose(batched.df[j], single.df, rtol=1e-10)


def test_balanced_two_arm_cluster_design_has_textbook_df():
    # treatment constant within 2m equal clusters, m per arm: CR2 is the two-sample
    # variance and the BM df is 2(m - 1), the classic cluster-level t test
    codes = np.repeat(np.arange(12), 4)
    z = (np.arange(12) % 2).astype(float)[codes]
    rng = np.random.default_rng(1)
    y = z + rng.normal(size=12)[codes] + rng.normal(size=48)
    fit = ols(y, np.column_stack([np.ones(48), z]), codes, "CR2")
    assert fit.df[1] == pytest.approx(10.0, rel=1e-10)
    means = np.bincount(codes, weights=y) / 4
    arm = np.arange(12) % 2
    two_sample = means[arm == 1].var(ddof=1) / 6 + means[arm == 0].var(ddof=1) / 6
    assert fit.cov[1, 1] == pytest.approx(two_sample, rel=1e-10)


def test_cluster_stats_from_within_transformed_data_match_ols():
    y, z, covariate, codes, strata = _data(8)
    X = within(np.column_stack([z, covariate]), strata)
    yt = within(y, strata)
    beta = np.linalg.lstsq(X, yt, rcond=None)[0]
    stats_ = cluster_stats(X, yt - X @ beta, codes, codes.max() + 1, strata)
    np.testing.assert_allclose(sandwich(stats_, "CR2").cov, ols(y, np.column_stack([z, covariate]), codes,
                                                                 absorb=strata).cov, rtol=1e-12)


def test_bad_inputs_are_refused():
    codes = np.zeros(10, dtype=int)
    with pytest.raises(InputError, match="at least two"):
        ols(np.arange(10.0), np.ones((10, 1)), codes)
    with pytest.raises(InputError, match="vcov"):
        ols(np.arange(10.0), np.ones((10, 1)), np.arange(10) % 2, "HC3")
    with pytest.raises(InputError, match="collinear"):
        ols(np.arange(10.0), np.ones((10, 2)), np.arange(10) % 2)
    with pytest.raises(InputError, match="at least one unit"):
        ols_cluster_sums(np.ones(3), np.ones((3, 1)), np.array([2, 0, 1]))
    with pytest.raises(InputError, match="must agree"):
        ols_cluster_sums(np.ones(3), np.ones((4, 1)), np.ones(3))


def test_t_interval_is_normal_for_infinite_df_and_nan_for_zero_se():
    se, low, high, p = t_interval(1.0, 0.5, np.inf, 0.05)
    assert (low, high) == pytest.approx((1 - 1.959963984540054 * 0.5, 1 + 1.959963984540054 * 0.5))
    assert np.isnan(t_interval(1.0, 0.0, 5)[1])


def test_dependence_robust_with_same_cluster_pairs_is_cr1():
    import scipy.sparse as sp
    from spillover.graph import group_indicator
    from spillover.variance import dependence_robust

    y, z, covariate, codes, _ = _data(9, n_clusters=30)
    X = np.column_stack([np.ones_like(z), z, covariate])
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    members = group_indicator(codes, codes.max() + 1)
    pairs = sp.csr_array(members.T @ members)
    result = dependence_robust(X, y - X @ beta, pairs, codes.max() + 1)
    np.testing.assert_allclose(result.cov, ols(y, X, codes, "CR1").cov, rtol=1e-10)


@pytest.mark.parametrize("null", [0.0, -2.0, 1.0, 3.4])
def test_wild_cluster_bootstrap_equals_wildboottest_under_full_enumeration(null):
    import pandas as pd
    import warnings
    from wildboottest.wildboottest import wildboottest
    from spillover.variance import wild_cluster_bootstrap

    rng = np.random.default_rng(3)
    codes = np.repeat(np.arange(8), rng.integers(3, 15, 8))
    n = codes.size
    z = (rng.random(8) < 0.5).astype(float)[codes]
    x2 = rng.normal(size=n)
    y = 0.3 * z + 0.5 * x2 + rng.normal(size=8)[codes] + rng.normal(size=n)
    X = np.column_stack([np.ones(n), z, x2])
    # testing beta_z = b is testing beta_z = 0 with y - b z; 2^8 < B: every sign pattern
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = wildboottest(sm.OLS(y - null * z, pd.DataFrame(X, columns=["c", "z", "x2"])), param="z",
                                 cluster=codes, B=9999, seed=1, show=False)
    ours = wild_cluster_bootstrap(y, X, codes, 1, null=null, n_boot=9999)
    assert ours.enumerated and ours.n_boot == 256
    assert ours.p_value == pytest.approx(reference["p-value"].iloc[0], abs=1e-12)
    assert ours.t_stat == pytest.approx(reference["statistic"].iloc[0], rel=1e-9)
    # the interval's ends are where the p-value crosses alpha
    low, high = ours.ci
    for end, inside in ((low, low + 1e-6), (high, high - 1e-6)):
        assert wild_cluster_bootstrap(y, X, codes, 1, null=inside, n_boot=9999).p_value >= 0.05
        assert wild_cluster_bootstrap(y, X, codes, 1, null=end + (end - inside) * 100, n_boot=9999).p_value < 0.05


def test_constant_rows_are_checked_in_every_chunk_of_experiments():
    # 20 regressions (two chunks of 16 and 4): constant within clusters in all of them,
    # then varying within a cluster in the last one only -> the general path
    rng = np.random.default_rng(11)
    codes = np.repeat(np.arange(6), 3)
    X = rng.normal(size=(6, 2, 20))[codes]
    assert cluster_stats(X, rng.normal(size=(18, 20)), codes, 6).rows is not None
    X[1, 1, 19] += 1.0
    assert cluster_stats(X, rng.normal(size=(18, 20)), codes, 6).rows is None
