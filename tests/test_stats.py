"sarvlm.stats against scipy.stats and against numbers worked out by hand."
import numpy as np, pandas as pd, pytest
from scipy import stats
from sarvlm.stats import mean_ci, paired_test, ci_reading, seed_summary, mean_sd_table

@pytest.mark.parametrize('n', [2, 3, 6, 10])
@pytest.mark.parametrize('conf', [0.9, 0.95, 0.99])
def test_mean_ci_is_scipys_t_interval(n, conf):
    x = np.random.default_rng(n).normal(40, 5, n)
    m, h = mean_ci(x, conf)
    lo, hi = stats.t.interval(conf, n - 1, loc=x.mean(), scale=stats.sem(x))
    assert m == pytest.approx(x.mean()) and (m - h, m + h) == pytest.approx((lo, hi), rel=1e-12)

def test_mean_ci_known_example_and_one_value():
    m, h = mean_ci([1.0, 2.0, 3.0])          # sd 1, n 3: t(0.975, 2) = 4.302652729749464
    assert m == 2.0 and h == pytest.approx(4.302652729749464 / np.sqrt(3), rel=1e-12)
    m, h = mean_ci([7.0])
    assert m == 7.0 and np.isnan(h)

@pytest.mark.parametrize('seed', range(5))
def test_paired_test_is_ttest_rel(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 11))
    a = rng.normal(50, 3, n); b = a + rng.normal(-1, 2, n)
    t, d = paired_test(a, b), a - b
    assert list(t) == ['n', 'mean_diff', 'sd_diff', 'ci_low', 'ci_high', 'p_value', 'mdd']   # saved columns
    assert t['n'] == n and t['p_value'] == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-12)
    lo, hi = stats.t.interval(0.95, n - 1, loc=d.mean(), scale=stats.sem(d))
    assert (t['ci_low'], t['ci_high']) == pytest.approx((lo, hi), rel=1e-12)
    mdd = (stats.t.ppf(0.975, n - 1) + stats.t.ppf(0.8, n - 1)) * d.std(ddof=1) / np.sqrt(n)
    assert t['mdd'] == pytest.approx(mdd, rel=1e-12) and t['sd_diff'] == pytest.approx(d.std(ddof=1))

def test_paired_test_known_example_and_constant_differences():
    t = paired_test([3., 5, 7], [1., 2, 3])             # d = 2, 3, 4: mean 3, sd 1
    assert (t['mean_diff'], t['sd_diff']) == (3.0, 1.0)
    assert t['ci_high'] - t['mean_diff'] == pytest.approx(4.302652729749464 / np.sqrt(3))
    assert paired_test([1., 2], [1., 2])['p_value'] == 1.0 and paired_test([2., 3], [1., 2])['p_value'] == 0.0
    with pytest.raises(ValueError, match='one length'): paired_test([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match='at least 2 seeds'): paired_test([1], [2])

def test_ci_reading():
    assert ci_reading(dict(ci_low=0.1, ci_high=2)) == 'better'
    assert ci_reading(dict(ci_low=-2, ci_high=-0.1), 'higher', 'lower') == 'lower'
    assert ci_reading(dict(ci_low=-1, ci_high=1), tie='tied') == 'tied'
    assert ci_reading(dict(ci_low=0.0, ci_high=1)) == 'not distinguishable'   # 0 inside the closed interval

def test_seed_summary_and_table():
    res = pd.DataFrame(dict(arm=['b', 'b', 'a', 'a', 'c'], seed=[0, 1, 0, 1, 0], x=[1., 3, 10, 14, 5]))
    s = seed_summary(res, 'arm', ['x'])
    assert list(s.index) == ['b', 'a', 'c'] and list(s.columns) == ['x_mean', 'x_std', 'seeds']
    assert s.loc['a', 'x_mean'] == 12 and s.loc['a', 'x_std'] == pytest.approx(np.sqrt(8)) and np.isnan(s.loc['c', 'x_std'])
    assert list(seed_summary(res, 'arm', ['x'], order=['c', 'z', 'a', 'b']).index) == ['c', 'a', 'b']
    t = mean_sd_table(s, {'x': 'X'})
    assert t['X'].tolist() == ['2.0 ± 1.4', '12.0 ± 2.8', '5.0'] and t['seeds'].tolist() == [2, 2, 1]
