"""Our retrieval and zero-shot numbers agree with independent implementations on the same model and data:
the `clip_benchmark` package (LAION-AI/CLIP_benchmark 1.6.2: `metrics.zeroshot_retrieval.evaluate` / `recall_at_k`,
`metrics.zeroshot_classification.zero_shot_classifier` / `run_classification` / `accuracy`), open_clip's zero-shot
path (`build_zero_shot_classifier`, `encode_image`), and scikit-learn's balanced accuracy.

The model is a SARCLIP-Tiny with seeded random weights (or any checkpoint in SARVLM_EVAL_CHECKPOINT); the data are
`sarvlm.train.toy_records` (SAR chips of ships and tanks) with unique captions. Runs in a few seconds."""
import builtins, os
import numpy as np
import pytest
import torch

cb_ret = pytest.importorskip('clip_benchmark.metrics.zeroshot_retrieval')
cb_cls = pytest.importorskip('clip_benchmark.metrics.zeroshot_classification')

from sarvlm.core import set_seed
from sarvlm.models import create
from sarvlm.train import toy_records
from sarvlm.features import embed
from sarvlm.scores import retrieval_metrics
from sarvlm.scores import zeroshot_classifier, zeroshot_logits, load_templates
from sarvlm.tasks.zeroshot import zeroshot_metrics, evaluate

CLASSES = ['ship', 'tank', 'car', 'truck', 'bridge', 'harbour']   # two occur; the others compete (top-3/5 defined)


@pytest.fixture(scope='module')
def setup(module_tmp):
    torch.set_num_threads(1); set_seed(0)
    ck = os.environ.get('SARVLM_EVAL_CHECKPOINT')
    if ck:
        from sarvlm.models import load_model
        model, eval_tf, tokenizer, _ = load_model(ck)
    else: model, _, eval_tf, tokenizer = create('SARCLIP-Tiny')
    ds = toy_records(48, seed=3)
    ds = ds.map(lambda r, i: {'caption': f"{r['caption']}, number {i}"}, with_indices=True)   # unique captions
    feats = embed(model, eval_tf, tokenizer, ds, key='agreement', cache_dir=module_tmp/'feats', verbose=False)
    return model, eval_tf, tokenizer, ds, feats


def test_retrieval_matches_clip_benchmark_evaluate(setup):
    "Ours from cached features vs clip_benchmark computing features and recall itself from the images."
    model, eval_tf, tokenizer, ds, feats = setup
    items = [(eval_tf(im), [c]) for im, c in zip(ds['image'], ds['caption'])]
    dl = torch.utils.data.DataLoader(items, batch_size=16, collate_fn=lambda b: (torch.stack([x for x, _ in b]), [t for _, t in b]))
    theirs = cb_ret.evaluate(model, dl, tokenizer, 'cpu', amp=False, recall_k_list=[1, 5, 10])
    ours = retrieval_metrics(feats['image'], feats['text'])
    for k in (1, 5, 10):
        assert ours[f't2i_R@{k}'] == pytest.approx(100 * theirs[f'image_retrieval_recall@{k}'], abs=1e-4)
        assert ours[f'i2t_R@{k}'] == pytest.approx(100 * theirs[f'text_retrieval_recall@{k}'], abs=1e-4)


def _cb_recall(img, txt, positive, k):
    "clip_benchmark's recall@k (as in its `evaluate`), in %, both directions."
    scores = txt @ img.T
    t2i = (cb_ret.recall_at_k(scores, positive, k) > 0).float().mean().item()
    i2t = (cb_ret.recall_at_k(scores.T, positive.T, k) > 0).float().mean().item()
    return 100 * i2t, 100 * t2i


@pytest.mark.parametrize('grouped', [False, True])
def test_recall_at_k_matches_on_features(grouped):
    "Diagonal ground truth, and grouped ground truth (duplicates count) against clip_benchmark's positive-pair matrix."
    g = torch.Generator().manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(600, 64, generator=g), dim=1)
    txt = torch.nn.functional.normalize(img + 1.2 * torch.randn(600, 64, generator=g), dim=1)
    groups = (torch.arange(600) // 3) if grouped else torch.arange(600)
    positive = groups[:, None] == groups[None, :]
    ours = retrieval_metrics(img, txt, groups=groups.numpy() if grouped else None, max_bytes=4 * 600 * 50)
    for k in (1, 5, 10):
        i2t, t2i = _cb_recall(img, txt, positive, k)
        assert ours[f'i2t_R@{k}'] == pytest.approx(i2t, abs=1e-4) and ours[f't2i_R@{k}'] == pytest.approx(t2i, abs=1e-4)
    assert 5 < ours['mean_recall'] < 95   # a non-trivial case


def test_zeroshot_classifier_matches_clip_benchmark(setup):
    model, eval_tf, tokenizer, ds, feats = setup
    ts = load_templates('sar_opt')
    ours = zeroshot_classifier(model, tokenizer, CLASSES, ts)
    theirs = cb_cls.zero_shot_classifier(model, tokenizer, CLASSES, [t.replace('{}', '{c}') for t in ts], 'cpu', amp=False)
    torch.testing.assert_close(ours, theirs.float(), atol=1e-5, rtol=1e-4)


def _np2_float(x):
    "`float` that also takes a 1-element numpy array (clip_benchmark 1.6.2's `accuracy` calls float() on one; numpy 2 refuses)."
    return builtins.float(x.item()) if hasattr(x, 'item') else builtins.float(x)


def test_zeroshot_metrics_match_clip_benchmark_and_open_clip_path(setup, monkeypatch):
    "Logits from the open_clip path (`run_classification`: encode_image on images, 100 f.W) and clip_benchmark's `accuracy`."
    from sklearn.metrics import balanced_accuracy_score
    monkeypatch.setattr(cb_cls, 'float', _np2_float, raising=False)   # their formula unchanged; only the scalar conversion
    model, eval_tf, tokenizer, ds, feats = setup
    w = zeroshot_classifier(model, tokenizer, CLASSES, 'sar')
    y = torch.tensor([CLASSES.index(l) for l in ds['label']])
    dl = torch.utils.data.DataLoader([(eval_tf(im), t) for im, t in zip(ds['image'], y)], batch_size=16)
    logits_theirs, true = cb_cls.run_classification(model, w, dl, 'cpu', amp=False)
    logits_ours = zeroshot_logits(feats['image'], w)
    torch.testing.assert_close(logits_ours, logits_theirs, atol=1e-3, rtol=1e-4)
    m = zeroshot_metrics(logits_ours, ds['label'], CLASSES)
    acc1, acc3, acc5 = cb_cls.accuracy(logits_theirs, true, topk=(1, 3, 5))
    assert (m['top1'], m['top3'], m['top5']) == pytest.approx((100 * acc1, 100 * acc3, 100 * acc5), abs=1e-6)
    assert m['mean_per_class'] == pytest.approx(100 * balanced_accuracy_score(true.numpy(), logits_theirs.argmax(1).numpy()), abs=1e-6)
    m_img = evaluate(model, tokenizer, ds['image'], ds['label'], CLASSES, 'sar', preprocess=eval_tf)   # the one-call API, from images
    assert m_img['top1'] == pytest.approx(m['top1']) and m_img['mean_per_class'] == pytest.approx(m['mean_per_class'])


def test_feature_cache_keyed_by_checkpoint_bytes_and_dataset(setup, tmp_path, monkeypatch):
    "A second call loads without building the model; new checkpoint bytes or another split recompute."
    import sarvlm.models
    from sarvlm.models import save_checkpoint
    from sarvlm.features import checkpoint_features
    model, eval_tf, tokenizer, ds, feats = setup
    ck = save_checkpoint(model, tmp_path/'a.pt', name='SARCLIP-Tiny')
    first = checkpoint_features(ck, ds, cache_dir=tmp_path/'c', verbose=False)
    np.testing.assert_allclose(first['image'], feats['image'], atol=1e-6)
    def no_model(*a, **k): raise AssertionError('the model was built although the features are cached')
    monkeypatch.setattr(sarvlm.models, 'create', no_model)
    again = checkpoint_features(ck, ds, cache_dir=tmp_path/'c', verbose=False)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    with pytest.raises(AssertionError, match='was built'): checkpoint_features(ck, ds.select(range(10)), cache_dir=tmp_path/'c')
    with torch.no_grad(): model.logit_scale.add_(1.0)          # other bytes, same file name
    save_checkpoint(model, ck, name='SARCLIP-Tiny')
    with pytest.raises(AssertionError, match='was built'): checkpoint_features(ck, ds, cache_dir=tmp_path/'c')
    with torch.no_grad(): model.logit_scale.sub_(1.0)
