"""Domain-gap measures on synthetic embeddings whose answer is known, their monotonic response to a growing gap, bad
input, and the shared UMAP (seeded: the same coordinates twice)."""
import numpy as np, pytest
from sarvlm import alignment as A

def test_identical_clouds_are_mixed():
    X, d, l = A.synthetic_clouds(n=200, shift=0.0, seed=3)
    assert 35 < A.domain_classifier_acc(X, d) < 65
    mx = A.knn_mixing(X, d); assert 0.8 < mx['ratio'] < 1.2 and mx['ideal'] == pytest.approx(0.5, abs=0.01)
    assert A.centroid_distance(X, d, l) < 0.05

def test_separated_clouds_are_apart():
    X, d, l = A.synthetic_clouds(n=200, shift=8.0, seed=3)
    assert A.domain_classifier_acc(X, d) > 99
    assert A.knn_mixing(X, d)['ratio'] < 0.02
    assert A.centroid_distance(X, d, l) > 0.5

def test_gap_grows_with_shift():
    t = [A.domain_gap(*A.synthetic_clouds(n=150, shift=s, seed=1)) for s in (0, 1, 3)]
    assert t[0]['domain_acc'] < t[1]['domain_acc'] <= t[2]['domain_acc']
    assert t[0]['centroid_dist'] < t[1]['centroid_dist'] < t[2]['centroid_dist']
    assert t[0]['knn_mixing'] > t[1]['knn_mixing'] > t[2]['knn_mixing']

def test_silhouette_sees_classes():
    X, d, l = A.synthetic_clouds(n=200, noise=0.2)
    assert A.class_silhouette(X, l, d, 'sar') > 0.3
    assert abs(A.class_silhouette(X, np.random.default_rng(0).permutation(l), d, 'sar')) < 0.1
    with pytest.raises(ValueError, match='at least 2 classes'): A.class_silhouette(X, np.full(len(X), 'a'))

def test_bad_input():
    X, d, l = A.synthetic_clouds(n=20)
    with pytest.raises(ValueError, match="domain 'natural' has 0 rows"): A.domain_classifier_acc(X, d, 'natural', 'sar')
    with pytest.raises(ValueError, match='one domain per row'): A.knn_mixing(X[:5], d)
    with pytest.raises(ValueError, match='same embedding dimension'): A.fit_shared_umap({'a': X, 'b': X[:, :3]})

def test_describe_gap_reads_direction():
    syn = {s: A.synthetic_clouds(n=100, shift=s, seed=1) for s in (4, 1, 0)}
    t = A.gap_table({s: v[0] for s, v in syn.items()}, syn[0][1], syn[0][2])
    assert '**closes**' in A.describe_gap(t) and '**does not close**' in A.describe_gap(t.iloc[::-1])

def test_shared_umap_is_seeded(tmp_path):
    embs = {s: A.synthetic_clouds(n=40, dim=16, shift=s, seed=2)[0] for s in (0, 2)}
    a, b = A.fit_shared_umap(embs, seed=0, n_epochs=50), A.fit_shared_umap(embs, seed=0, n_epochs=50)
    assert {k: v.shape for k, v in a.items()} == {0: (80, 2), 2: (80, 2)}
    np.testing.assert_allclose(a[2], b[2])
    p = A.save_alignment(tmp_path/'x.npz', {str(k): v for k, v in embs.items()}, {str(k): v for k, v in a.items()}, kind=np.array(['image'] * 80))
    e, c, m = A.load_alignment(p); np.testing.assert_allclose(c['2'], a[2], rtol=1e-6); assert list(e) == ['0', '2']
