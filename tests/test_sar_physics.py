"""Key speckle and point-target physics of sarvlm.sar (sar_physics.md §6.1-6.2), fixed seeds, thresholds from the reference.

The notebook nbs/01_sar.ipynb runs the full set with figures; these are the same checks in a fast pytest form so
that a change in sarvlm/sar.py that breaks the physics fails `make test` even if nobody reads the notebook.
"""
import numpy as np
import pytest
from scipy import stats, special
from sarvlm.sar import (speckle, slc, enl, to_db, autocorr, speckle_acf, decorrelation_lag, multilook, boxcar_enl,
                        irf_metrics, cross_ratio, normalize)


@pytest.mark.parametrize('looks', [1, 4])
@pytest.mark.parametrize('oversample,window', [(1, 'rect'), (2, 'rect'), (2, 'hamming')])
def test_mean_and_enl(looks, oversample, window):                      # S1, S2
    I = speckle(np.full((256, 256), 0.05), looks, oversample, window, rng=100 + looks)
    assert 0.97 <= I.mean() / 0.05 <= 1.03
    assert abs(enl(I, decorrelation_lag(oversample, window)) / looks - 1) <= 0.10


@pytest.mark.parametrize('looks', [1, 4])
def test_gamma_pdf_ks(looks):                                          # S3
    G = stats.gamma(looks, scale=1 / looks).cdf
    ok = [stats.kstest(speckle(np.ones((142, 142)), looks, 2, 'rect', rng=s)[::2, ::2].ravel()[:5000], G).pvalue > 0.01 for s in range(20)]
    assert np.mean(ok) >= 0.9
    r = np.random.default_rng(0); sg = np.sqrt(np.log1p(1 / looks))
    assert stats.kstest(r.lognormal(-sg ** 2 / 2, sg, 5000), G).pvalue < 0.01          # the wrong recipes are rejected
    assert stats.kstest(1 + r.standard_normal(5000) / np.sqrt(looks), G).pvalue < 0.01


@pytest.mark.parametrize('looks,target,tol', [(1, 5.57, 0.15), (4, 2.31, 0.10)])
def test_db_spread(looks, target, tol):                                # S4
    assert abs(to_db(speckle(np.full((256, 256), 0.02), looks, rng=41)).std() - target) <= tol
    assert abs(10 / np.log(10) * np.sqrt(special.polygamma(1, looks)) - target) < 0.01


def test_slc_gaussian():                                               # S5
    z = slc(np.full((512, 512), 0.3), rng=5).ravel()
    re, im, A = z.real.astype(float), z.imag.astype(float), np.abs(z).astype(float)
    assert abs(re.var() / im.var() - 1) <= 0.03 and abs(np.corrcoef(re, im)[0, 1]) < 0.02
    assert stats.kstest(np.angle(z), stats.uniform(-np.pi, 2 * np.pi).cdf).pvalue > 0.01
    assert abs((4 / np.pi - 1) * (A.mean() / A.std()) ** 2 - 1) <= 0.05


def test_multiplicative_over_40db():                                   # S6
    s0 = np.repeat(10 ** (np.array([-30, -20, -10, 0, 10.]) / 10), 64)[:, None] * np.ones((1, 256))
    I = speckle(s0, rng=6)
    e = [enl(I[64 * i:64 * (i + 1)]) for i in range(5)]
    assert max(e) / min(e) <= 1.10 and abs(np.corrcoef((I / s0).ravel(), s0.ravel())[0, 1]) < 0.05


def test_correlation_matches_window():                                 # S7
    for o, win in [(1, 'rect'), (2, 'rect'), (2, 'hamming')]:
        I = speckle(np.ones((256, 256)), 1, o, win, rng=72)
        for axis in (0, 1): assert np.all(np.abs(autocorr(I, 5, axis) - speckle_acf((256, 256), o, win, 5, axis)) <= 0.05)
    assert abs(autocorr(speckle(np.ones((256, 256)), 1, 2, rng=3), 1)[1] - 0.41) <= 0.05


def test_boxcar_enl_bookkeeping():                                     # S8
    for k in (2, 3, 4):
        m = enl(multilook(speckle(np.ones((384, 384)), 1, 2, 'rect', rng=80 + k), k))
        assert abs(m / boxcar_enl(k, 2, 'rect') - 1) <= 0.10 and m < 0.75 * k * k


@pytest.mark.parametrize('window,pslr,width', [('rect', -13.26, 0.886), ('hamming', -21.3, 1.01)])
def test_point_target(window, pslr, width):                            # G1, G2
    n, o, clutter = 128, 4, 1e-8
    z = slc(np.full((n, n), clutter), o, window, rng=11, points=[(n // 2 + 0.3, n // 2 - 0.2, 1.0)])
    P = np.abs(z) ** 2; r0, c0 = np.unravel_index(np.argmax(P), P.shape)
    assert 10 * np.log10(P.max() / clutter) >= 40
    for cut in (z[r0, :], z[:, c0]):
        p, w = irf_metrics(cut)
        assert abs(p - pslr) <= 0.5 and abs(w / o / width - 1) <= 0.05
    assert cross_ratio(P, r0, c0, o) >= 10


def test_normalize_default_scale():
    x = normalize(np.array([[10 ** -2.5, 1., 10 ** 0.5, 0.]], np.float32))
    assert np.allclose(x, [[0, 25 / 30, 1, 0]], atol=1e-5)
