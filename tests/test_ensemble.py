"""The ensemble readings of `sarvlm.tasks.ensemble` (nbs/12_ensemble.ipynb): WiSE-FT endpoints reproduce their
checkpoints exactly (weights and features), interpolation is linear, mismatched architectures fail naming the key,
an output ensemble of one model is that model, a prompt ensemble of one set is that set's classifier, and the study's
metrics agree with the transfer study's evaluation, and the forgetting table reads the WiSE-FT rows. Tiny random SARCLIP-Tiny models on toy records: a few seconds."""
import numpy as np
import pytest
import torch

from sarvlm.core import set_seed
from sarvlm.models import create, save_checkpoint
from sarvlm.features import embed_images
from sarvlm.train import toy_records
from sarvlm.models import load_model
from sarvlm.scores import zeroshot_classifier, load_templates, retrieval_metrics
from sarvlm.data import DOMAINS
from sarvlm.transfer import TEMPLATES, evaluate_embeddings
from sarvlm.tasks.ensemble import (interpolate_state_dicts, interpolated_model, checkpoint_state, prompt_ensemble_classifier,
                                   output_ensemble, ensemble_features, ensemble_scores, member_scores, feature_probs,
                                   score_metrics, model_eval_features, EvalSet, wise_ft,
                                   study_classifiers, wise_forgetting, forgetting_sentence)

CLASSES = ['ship', 'aircraft', 'tank', 'car', 'truck', 'bus', 'bridge', 'storage tank', 'harbour', 'building']


@pytest.fixture(scope='module')
def cks(module_tmp):
    torch.set_num_threads(1)
    d = module_tmp
    for i, name in enumerate(('a', 'b')):
        set_seed(i); m, _, eval_tf, tokenizer = create('SARCLIP-Tiny'); save_checkpoint(m, d/f'{name}.pt', name='SARCLIP-Tiny')
    set_seed(0); c, *_ = create('SARCap-Tiny'); save_checkpoint(c, d/'c.pt', name='SARCap-Tiny')
    return d/'a.pt', d/'b.pt', d/'c.pt', eval_tf, tokenizer


@pytest.fixture(scope='module')
def images():
    return toy_records(12, seed=1)['image']


@pytest.mark.parametrize('alpha,end', [(0, 0), (1, 1), (0.0, 0), (1.0, 1)])
def test_endpoints_reproduce_checkpoints_exactly(cks, images, alpha, end):
    a, b, _, eval_tf, tokenizer = cks
    ref, _, _, _ = create('SARCLIP-Tiny', pretrained=(a, b)[end])
    m, etf2, _ = interpolated_model(a, b, alpha)
    sd, sr = m.state_dict(), ref.state_dict()
    assert sd.keys() == sr.keys() and all(torch.equal(sd[k], sr[k]) for k in sd)
    assert torch.equal(embed_images(m, images, etf2), embed_images(ref, images, eval_tf))      # features identical, bit for bit


def test_interpolation_is_linear(cks):
    (na, sa), (nb, sb) = checkpoint_state(cks[0]), checkpoint_state(cks[1])
    mid = interpolate_state_dicts(sa, sb, 0.5)
    q1, q3 = interpolate_state_dicts(sa, sb, 0.25), interpolate_state_dicts(sa, sb, 0.75)
    for k, v in sa.items():
        if v.is_floating_point() and not torch.equal(v, sb[k]):
            torch.testing.assert_close(mid[k], (sa[k] + sb[k]) / 2, rtol=0, atol=1e-6)
            torch.testing.assert_close((q1[k] + q3[k]) / 2, mid[k], rtol=0, atol=1e-6)
            torch.testing.assert_close(interpolate_state_dicts(sa, sb, 0.3)[k], 0.7 * sa[k] + 0.3 * sb[k], rtol=0, atol=1e-6)
        else: assert torch.equal(mid[k], v)        # e.g. the causal attn_mask (holds -inf): copied, never mixed into NaN
    assert all(torch.isfinite(v).any() for v in mid.values())


def test_mismatched_architectures_name_the_key(cks):
    a, b, c = cks[:3]
    sa = checkpoint_state(a)[1]
    with pytest.raises(ValueError, match="different architectures .'SARCLIP-Tiny' and 'SARCap-Tiny'."): interpolated_model(a, c, .5)
    with pytest.raises(ValueError, match='state dicts have different keys'): interpolate_state_dicts(sa, checkpoint_state(c)[1], .5)
    bad = dict(checkpoint_state(b)[1]); k = 'visual.conv1.weight'; bad[k] = torch.zeros(1, *bad[k].shape[1:])
    with pytest.raises(ValueError, match=f"entry '{k}': shapes differ"): interpolate_state_dicts(sa, bad, .5)
    del bad[k]
    with pytest.raises(ValueError, match=f"only in the first \\['{k}'\\]"): interpolate_state_dicts(sa, bad, .5)
    for alpha in (-0.1, 1.1, 'half', None, True):
        with pytest.raises(ValueError, match=r'alpha must be a number in \[0, 1\]'): interpolate_state_dicts(sa, sa, alpha)


def test_output_ensemble_of_one_model_is_that_model():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(10), size=40)
    np.testing.assert_array_equal(output_ensemble([p]), p)
    np.testing.assert_allclose(output_ensemble([p, p, p], [1, 2, 3]), p, atol=1e-12)
    f, g = rng.normal(size=(40, 16)), rng.normal(size=(40, 16))
    sc = dict(probs=p, ret_img=f, ret_txt=g)
    one = ensemble_scores([sc])
    np.testing.assert_array_equal(one['probs'], p)
    np.testing.assert_allclose(one['ret_img'] @ one['ret_txt'].T, (f / np.linalg.norm(f, axis=1, keepdims=True)) @ (g / np.linalg.norm(g, axis=1, keepdims=True)).T, atol=1e-12)
    with pytest.raises(ValueError, match='member 1: probabilities of shape'): output_ensemble([p, p[:, :3]])
    with pytest.raises(ValueError, match='non-negative'): output_ensemble([p, p], [1, -1])


def test_prompt_ensemble_of_one_set_is_that_set(cks):
    m, _, _, tokenizer = create('SARCLIP-Tiny', pretrained=cks[0])
    for s in ('sar', 'optical', 'simple', 'sar_opt'):
        w = zeroshot_classifier(m, tokenizer, CLASSES, s)
        assert torch.equal(prompt_ensemble_classifier(m, tokenizer, CLASSES, s), w)
        assert torch.equal(prompt_ensemble_classifier(m, tokenizer, CLASSES, [s], weighting='set'), w)
    union = list(dict.fromkeys(load_templates('sar') + load_templates('optical')))   # each template once
    torch.testing.assert_close(prompt_ensemble_classifier(m, tokenizer, CLASSES, ('sar', 'optical')),
                               zeroshot_classifier(m, tokenizer, CLASSES, union), rtol=0, atol=1e-5)
    # the authors' sar_opt is not quite that union: it leaves out optical's 'imagery showing {}.'
    assert set(union) - set(load_templates('sar_opt')) == {'imagery showing {}.'}
    assert set(load_templates('sar_opt')) <= set(union)


def _toy_eval_set(n=30):
    "An EvalSet over toy records: half SAR, half optical; the SAR half also scored by retrieval; 'tank' held out."
    ds = toy_records(n, seed=2)
    rng = np.random.default_rng(0)
    lab = np.array(CLASSES)[rng.integers(0, len(CLASSES), n)]
    dom = np.where(np.arange(n) < n // 2, 'sar', 'optical')
    ret = np.arange(n // 2)
    return EvalSet(ds, np.arange(n), ret, list(ds['caption'][:n // 2]), CLASSES, ['tank'], lab, dom)


def _balanced(pred, t, m):
    "Mean over the classes present in `m` of the share of their images predicted right (by hand)."
    return 100 * np.mean([(pred[m & (t == c)] == c).mean() for c in np.unique(t[m])])


def test_metrics_by_hand_and_in_memory_features(cks):
    ev = _toy_eval_set()
    m, eval_tf, tokenizer = interpolated_model(cks[0], cks[1], 0.0)
    feats = model_eval_features(m, eval_tf, tokenizer, ev)                      # not cached (no key)
    ref, _, etf_r, _ = create('SARCLIP-Tiny', pretrained=cks[0])
    np.testing.assert_array_equal(feats['zs'], embed_images(ref, ev.test['image'], etf_r).numpy())
    np.testing.assert_array_equal(feats['ret_img'], feats['zs'][ev.ret_idx])
    w = zeroshot_classifier(m, tokenizer, CLASSES, 'sar')
    sc = member_scores(feats, ev, w)
    pred = sc['probs'].argmax(1); t = np.array([CLASSES.index(l) for l in ev.zs_label]); sar = ev.zs_domain == 'sar'
    res = score_metrics(sc, ev)
    held = np.isin(ev.zs_label, ['tank'])
    assert res['optical_zs'] == pytest.approx(_balanced(pred, t, ~sar))          # balanced, as 07_transfer
    assert res['sar_zs_held_in'] == pytest.approx(_balanced(pred, t, sar & ~held))
    assert res['sar_zs_balanced'] == pytest.approx(_balanced(pred, t, sar))
    assert res['sar_retrieval_mr'] == pytest.approx(retrieval_metrics(feats['ret_img'], feats['ret_txt'])['mean_recall'])
    np.testing.assert_allclose(sc['probs'].sum(1), 1, atol=1e-9)
    np.testing.assert_array_equal(feature_probs(feats['zs'], w).argmax(1), (torch.as_tensor(feats['zs']) @ w).argmax(1).numpy())
    with pytest.raises(ValueError, match='do not fit the evaluation set'): score_metrics(dict(sc, probs=sc['probs'][:3]), ev)


def test_metrics_agree_with_the_transfer_study(cks):
    "12's measures with 07's domain-matched templates are `sarvlm.transfer.evaluate_embeddings`'s, key by key."
    ev = _toy_eval_set()
    lm = load_model(cks[1])
    feats = model_eval_features(lm.model, lm.transform, lm.tokenizer, ev)
    ours = score_metrics(member_scores(feats, ev, *study_classifiers(lm.model, lm.tokenizer, CLASSES)), ev)
    wz = {d: zeroshot_classifier(lm.model, lm.tokenizer, CLASSES, list(TEMPLATES[d])) for d in DOMAINS}
    emb = dict(image=feats['zs'], label=list(ev.zs_label), domain=list(ev.zs_domain))
    theirs = evaluate_embeddings(emb, wz, ev.ret_idx, feats['ret_txt'], ev.held)
    for k in ('sar_zs_held_in', 'sar_zs_held_out', 'optical_zs', 'sar_retrieval_mr', 'sar_zs_majority'):
        assert ours[k] == pytest.approx(theirs[k], abs=1e-9), k


def test_wise_ft_rows(cks):
    ev = _toy_eval_set(18)
    with pytest.raises(ValueError, match='state dicts have different keys'): wise_ft(cks[0], cks[2], ev, alphas=(0, .5, 1), cache=False)
    # endpoints come from the checkpoints' cached features; here the interior point must lie between them in weight space only
    rows = wise_ft(cks[0], cks[1], ev, alphas=(0.5,), cache=False)
    assert len(rows) == 1 and rows[0]['alpha'] == 0.5 and 0 <= rows[0]['sar_zs_held_in'] <= 100


def test_output_ensemble_spaces():
    rng = np.random.default_rng(1)
    lg = [rng.normal(size=(10, 5)) * 20 for _ in range(3)]
    sc = [dict(logits=l, probs=torch.softmax(torch.from_numpy(l), 1).numpy(), ret_img=rng.normal(size=(10, 8)), ret_txt=rng.normal(size=(10, 8))) for l in lg]
    np.testing.assert_array_equal(ensemble_scores(sc[:1])['probs'], sc[0]['probs'])
    np.testing.assert_allclose(ensemble_scores(sc[:1], space='logit')['probs'], sc[0]['probs'], atol=1e-12)
    np.testing.assert_allclose(ensemble_scores(sc, [1, 1, 2], space='logit')['logits'], (lg[0] + lg[1] + 2 * lg[2]) / 4, atol=1e-12)
    with pytest.raises(ValueError, match="space must be 'prob' or 'logit'"): ensemble_scores(sc, space='vote')


def test_wise_forgetting_reads_the_sweep():
    import pandas as pd
    rows = [dict(reading='weights', pair='p', seed=s, alpha=a, sar_zs_held_out=10 * a + s, optical_zs=50 - 10 * a,
                 sar_zs_held_in=20 * a) for s in range(3) for a in (0.0, 0.5, 1.0)]
    fg = wise_forgetting(pd.DataFrame(rows))
    r = fg.xs(('p', 'held-out SAR'))
    np.testing.assert_array_equal(r['before'], [0, 1, 2]); np.testing.assert_array_equal(r['after SAR'], [10, 11, 12])
    np.testing.assert_array_equal(r['WiSE α=0.5'], [5, 6, 7])
    txt = forgetting_sentence(fg)
    assert 'held-out SAR 1.0 → 11.0 → 6.0 (mix − SAR model -5.0' in txt and ': lower)' in txt, txt
    with pytest.raises(ValueError, match='no α = 0.25 in the sweep'): wise_forgetting(pd.DataFrame(rows), alpha=0.25)
