"""Linear probe and few-shot protocol (sarvlm.tasks.recognition): no validation leakage, deterministic saved splits,
C chosen without the test set. Synthetic features: runs in seconds."""
import json
import numpy as np
import pytest
from sarvlm.tasks import recognition as R


def blobs(n_per, k=4, d=16, sep=1.2, seed=0, noise_seed=None):
    g = np.random.default_rng(seed); centres = g.normal(0, sep, (k, d))
    h = np.random.default_rng(seed if noise_seed is None else noise_seed)
    X = np.concatenate([c + h.normal(0, 1, (n_per, d)) for c in centres])
    return X, np.repeat([f'c{i}' for i in range(k)], n_per)


@pytest.fixture(scope='module')
def data():
    Xtr, ytr = blobs(30); Xte, yte = blobs(20, noise_seed=99)
    return Xtr, ytr, np.array([f'tr{i}' for i in range(len(ytr))]), Xte, yte, np.array([f'te{i}' for i in range(len(yte))])


def test_C_never_depends_on_test(data):
    Xtr, ytr, _, Xte, yte, _ = data
    a = R.linear_probe(Xtr, ytr, Xte, yte)
    for s in range(3):   # scrambled labels, and features replaced by noise: the choice of C must not move
        b = R.linear_probe(Xtr, ytr, np.random.default_rng(s).normal(size=Xte.shape), np.random.default_rng(s).permutation(yte))
        assert b['C'] == a['C'] and b['val_scores'] == a['val_scores']
    assert a['top1'] > 70   # the probe works (4 classes: chance 25)


def test_validation_is_carved_from_train_only(data, monkeypatch):
    "The C search (GridSearchCV) sees only rows of the training set, and no row twice across its train/val halves."
    Xtr, ytr, _, Xte, yte, _ = data
    seen = {}
    real = R.search_C
    def spy(X, y, val, Cs=R.C_GRID, refit=True):
        X, val = np.asarray(X), np.asarray(val, bool)
        seen.update(tr=X[~val], va=X[val]); return real(X, y, val, Cs, refit)
    monkeypatch.setattr(R, 'search_C', spy)
    R.linear_probe(Xtr, ytr, Xte, yte)
    rows = {r.tobytes() for r in Xtr}; test_rows = {r.tobytes() for r in Xte}
    for part in ('tr', 'va'):
        assert len(seen[part]) and all(r.tobytes() in rows and r.tobytes() not in test_rows for r in seen[part])
    assert not ({r.tobytes() for r in seen['tr']} & {r.tobytes() for r in seen['va']})


def test_grid_search_picks_what_the_loop_picked(data):
    "GridSearchCV + PredefinedSplit: the same C (ties to the smallest), scores and probe as fitting each C by hand."
    Xtr, ytr, _, Xte, yte, _ = data
    for seed in range(3):
        tr, va = R.stratified_split(ytr, 0.3, seed)
        acc = lambda C: 100.0 * float((R.fit_probe(Xtr[tr], ytr[tr], C).predict(Xtr[va]) == ytr[va]).mean())
        by_hand = {C: acc(C) for C in R.C_GRID}
        C, scores = R.select_C(Xtr[tr], ytr[tr], Xtr[va], ytr[va])
        assert scores == by_hand and C == max(by_hand, key=lambda c: (by_hand[c], -c))
        lp = R.linear_probe(Xtr, ytr, Xte, yte, seed=seed)
        pred = R.fit_probe(Xtr, ytr, lp['C']).predict(Xte)
        assert lp['top1'] == 100.0 * float((pred == yte).mean())


def test_fewshot_splits_disjoint_deterministic_saved(data, tmp_path):
    Xtr, ytr, ids, Xte, yte, tids = data
    sp = R.fewshot_splits(ids, ytr, ks=(1, 5, 10), seeds=range(5))
    assert sp == R.fewshot_splits(ids, ytr, ks=(1, 5, 10), seeds=range(5))
    assert sp['1']['0'] != sp['1']['1']                       # seeds differ
    for K, by_seed in sp.items():
        assert len(by_seed) >= 5
        for s, x in by_seed.items():
            lab = dict(zip(ids, ytr))
            assert sorted(np.unique([lab[i] for i in x['train']], return_counts=True)[1]) == [int(K)] * 4
            assert len(x['val']) == 4 * min(int(K), 4)
    assert R.assert_no_leak(sp, tids, Xtr, Xte) == 15
    p = R.save_splits(sp, tmp_path/'fewshot_demo.json', pool='demo')
    assert R.load_splits(p, ids) == sp and json.loads(p.read_text())['pool'] == 'demo'
    with pytest.raises(ValueError, match='ids not in the training pool'): R.load_splits(p, ids[:60])


def test_leaks_are_caught(data):
    Xtr, ytr, ids, Xte, yte, tids = data
    sp = R.fewshot_splits(ids, ytr, ks=(5,), seeds=range(5))
    with pytest.raises(AssertionError, match='test ids in the few-shot sets'): R.assert_no_leak(sp, [sp['5']['4']['train'][0]])
    bad = json.loads(json.dumps(sp)); bad['5']['0']['val'].append(bad['5']['0']['train'][0])
    with pytest.raises(AssertionError, match='in both train and validation'): R.assert_no_leak(bad, tids)
    with pytest.raises(AssertionError, match='identical to training-pool rows'): R.assert_no_leak(sp, tids, Xtr, np.concatenate([Xte, Xtr[:1]]))
    with pytest.raises(AssertionError, match='test ids'):
        R.fewshot_eval(Xtr, ytr, ids, Xte, yte, sp, test_ids=[sp['5']['2']['val'][0]])


def test_fewshot_mean_std_over_seeds(data):
    Xtr, ytr, ids, Xte, yte, tids = data
    df = R.fewshot_eval(Xtr, ytr, ids, Xte, yte, R.fewshot_splits(ids, ytr, ks=(1, 10), seeds=range(5)), test_ids=tids)
    s = R.summarize_fewshot(df)
    assert list(s['seeds']) == [5, 5] and (s['top1 std'] > 0).any()
    assert s.loc[10, 'top1 mean'] > s.loc[1, 'top1 mean']     # more shots help on separable blobs


def test_split_file_reused_or_redrawn(data, tmp_path, capsys):
    Xtr, ytr, ids, *_ = data
    p = tmp_path/'fewshot_x.json'
    a = R.get_fewshot_splits(ids, ytr, p, ks=(1, 5))
    mtime = p.stat().st_mtime_ns
    assert R.get_fewshot_splits(ids, ytr, p, ks=(1, 5)) == a and p.stat().st_mtime_ns == mtime     # loaded, not rewritten
    b = R.get_fewshot_splits(ids[::-1], ytr[::-1], p, ks=(1, 5))                                     # same pool, other order
    assert b == a
    R.get_fewshot_splits(np.array([f'new{i}' for i in range(len(ids))]), ytr, p, ks=(1, 5))         # another pool: redrawn, said so
    assert 'drawing it again' in capsys.readouterr().out
