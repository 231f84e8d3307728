"""Domain-gap measures on synthetic embeddings whose answer is known, their monotonic response to a growing gap, bad
input, and the shared UMAP (seeded: the same coordinates twice); the measures that use the scene pairing (same-scene
retrieval, class neighbours, the cross-domain probe, the modality gap) on synthetic pairs with known answers."""
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

# --- measures that use the pairing (issue 16, item 7): known answers and bad input

def _shuffle(emb, key, d='sar', seed=0):
    out, m = {**emb, key: np.array(emb[key])}, emb['domain'] == d
    out[key][m] = np.random.default_rng(seed).permutation(out[key][m])
    return out

def test_paired_retrieval_known_answers():
    e = A.synthetic_pairs(n=80, seed=2)
    r = A.paired_retrieval(e)
    assert (r['r1'], r['r10'], r['median_rank'], r['n']) == (100.0, 100.0, 1.0, 80)
    assert (r['r1_chance'], r['r10_chance'], r['median_rank_chance']) == (1.25, 12.5, 40.5)
    s = A.paired_retrieval(_shuffle(e, 'scene_id'), 'natural', 'sar')
    assert s['r1'] < 6 and abs(s['median_rank'] - 40.5) < 10
    # query 0 finds its own partner first; queries 1 and 2 each find the other's partner first,
    # and their own ties with the first gallery image
    above, ties = A.partner_ranks(np.eye(3), np.eye(3)[[0, 2, 1]])
    assert above.tolist() == [0, 1, 1] and ties.tolist() == [0, 1, 1]

def test_collapsed_embedding_scores_chance_not_perfect():
    e = A.synthetic_pairs(n=50)
    c = A.paired_retrieval({**e, 'image': np.ones_like(e['image'])})
    assert c['r1'] == pytest.approx(2.0) and c['r10'] == pytest.approx(20.0) and c['median_rank'] == 25.5

def test_paired_retrieval_drops_unpaired_rows():
    e = A.synthetic_pairs(n=40)
    keep = np.ones(120, bool)
    keep[[40, 41, 42]] = False   # three optical renderings missing
    r = A.paired_retrieval({k: v[keep] for k, v in e.items()})
    assert (r['n'], r['dropped_a'], r['dropped_b']) == (37, 0, 3)

def test_paired_retrieval_bad_input():
    e = A.synthetic_pairs(n=20)
    with pytest.raises(ValueError, match="b='radar': 0 rows"):
        A.paired_retrieval(e, 'optical', 'radar')
    with pytest.raises(ValueError, match="emb lacks \\['scene_id'\\]"):
        A.paired_retrieval({k: v for k, v in e.items() if k != 'scene_id'})
    with pytest.raises(ValueError, match='must be different'): A.paired_retrieval(e, 'sar', 'sar')
    dup = {**e, 'scene_id': np.where(e['domain'] == 'sar', 'same', e['scene_id'])}
    with pytest.raises(ValueError, match="b='sar': a scene_id repeats"): A.paired_retrieval(dup)
    with pytest.raises(TypeError, match='emb must be a dict'): A.paired_retrieval([1, 2])

def test_neighbour_agreement_and_its_chance():
    assert A.label_chance(['x', 'x', 'y', 'y'], ['x', 'y', 'y', 'y']) == pytest.approx(50.0)
    e = A.synthetic_pairs(n=100, seed=1)
    na = A.neighbour_agreement(e)
    assert na['agreement'] == 100.0 and na['chance'] == pytest.approx(25.0) and na['n'] == 100
    assert abs(A.neighbour_agreement(_shuffle(e, 'label'))['agreement'] - 25) < 12
    with pytest.raises(ValueError, match="a='radar'"): A.neighbour_agreement(e, 'radar', 'sar')

def test_cross_domain_probe():
    e = A.synthetic_pairs(n=100, seed=1)
    p = A.cross_domain_probe(e)
    assert p['balanced_acc'] > 95 and p['chance'] == 25.0
    assert (p['n_train'], p['n'], p['dropped']) == (100, 100, 0)
    assert abs(A.cross_domain_probe(_shuffle(e, 'label'))['balanced_acc'] - 25) < 12
    new_class = (e['domain'] == 'sar') & (e['label'] == 'class3')
    odd = {**e, 'label': np.where(new_class, 'new', e['label'])}
    q = A.cross_domain_probe(odd)
    assert (q['n'], q['dropped'], q['chance']) == (75, 25, 100 / 3)
    with pytest.raises(ValueError, match="train='radar'"): A.cross_domain_probe(e, 'radar', 'sar')
    one = {**e, 'label': np.where(e['domain'] == 'optical', 'class0', e['label'])}
    with pytest.raises(ValueError, match="train='optical': one class only"):
        A.cross_domain_probe(one)

def test_modality_gap_known_answers():
    hand = dict(image=np.tile([1., 0], (3, 1)), text=np.tile([0., 5], (3, 1)),
                domain=np.array(['sar'] * 3))
    assert A.modality_gap(hand) == pytest.approx(np.sqrt(2))
    assert A.modality_gap(A.synthetic_pairs(n=20), 'sar') == pytest.approx(0.0, abs=1e-12)
    g = [A.modality_gap(A.synthetic_pairs(n=50, text_gap=t), 'optical') for t in (0.5, 1, 3)]
    assert g[0] < g[1] < g[2]
    with pytest.raises(ValueError, match="domain='radar'"): A.modality_gap(hand, 'radar')

def test_stage_alignment_table_and_sentences():
    st = {f'tn {t}': A.synthetic_pairs(n=80, shift=1, twin_noise=t, text_gap=1, seed=1)
          for t in (3, 1, 0.3)}
    tab = A.alignment_table(st)
    for c in ('optical_sar_r1', 'natural_sar_r1', 'nn_agreement', 'probe_bacc'):
        assert tab[c].is_monotonic_increasing, c
        assert f'{c}_chance' in tab
    assert {'modality_gap_natural', 'modality_gap_optical', 'modality_gap_sar'} <= set(tab.columns)
    d = A.describe_alignment(tab)
    assert d.startswith('From tn 3 to tn 0.3, optical and SAR draw together by: same-scene optical')
    r1 = tab.optical_sar_r1
    assert f"rises from {r1.iloc[0]:.1f} % (tn 3) to {r1.iloc[-1]:.1f} %" in d
    assert 'no paired measure both rises' in A.describe_alignment(tab.iloc[::-1])
    flat = tab.assign(optical_sar_r1=tab.optical_sar_r1_chance,
                      natural_sar_r1=tab.natural_sar_r1_chance)   # retrieval at chance everywhere
    never = 'Never above chance: same-scene optical → SAR R@1; same-scene natural → SAR R@1'
    assert never in A.describe_alignment(flat)
    assert 'higher than' in A.compare_alignment(tab, 'tn 3', 'tn 0.3')
    e1 = st['tn 1']
    no_nat = {k: v[e1['domain'] != 'natural'] for k, v in e1.items()}
    assert not any(k.startswith('natural_') for k in A.stage_alignment(no_nat))

def test_above_chance_is_a_binomial_test():
    assert A.above_chance(30, 10, 100) and not A.above_chance(12, 10, 100)
    assert not A.above_chance(100, 50, 3)   # 3 of 3 at chance 1/2: p = 0.125

def test_map_numbers_and_paragraph():
    far = A.map_numbers(A.synthetic_pairs(n=60, text_gap=5))
    near = A.map_numbers(A.synthetic_pairs(n=60))
    assert far['caption_mixing'] < 0.25 < 0.75 < near['caption_mixing']
    assert 'captions (crosses) sit apart' in A.describe_map(far, 's')
    assert 'captions (crosses) mix' in A.describe_map(near, 's')
    assert 'Classes are mixed' in A.describe_map({**near, 'class_silhouette': -0.5}, 's')
    e = A.synthetic_pairs(n=40)
    xy = np.concatenate([e['image'], e['text']])[:, :2]
    assert 'on the map' in A.describe_map(A.map_numbers(e, xy), 's')

def test_top_half_reads_weak_scene_alignment():
    e = A.synthetic_pairs(n=100, twin_noise=3, seed=4)   # twins far apart: R@1 near chance
    r = A.paired_retrieval(e)
    assert r['top_half_chance'] == 50.0 and r['r1'] < 10 and r['top_half'] > 60
    s = A.paired_retrieval(_shuffle(e, 'scene_id'))
    assert abs(s['top_half'] - 50) < 15
