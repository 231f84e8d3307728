"""The explorers of 16_explore (sarvlm.widgets): the plain functions give figures with the expected axes, probabilities
sum to 1, retrieval is sorted and rejects bad queries, and the three widgets build without a display and re-render
when a value changes. Runs on a throw-away untrained SARCLIP-Tiny checkpoint and a 12-scene dataset in tmp folders,
so it needs nothing from runs/ and never writes into the project's cache."""
import numpy as np, pytest
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import torch

from sarvlm import widgets as W
from sarvlm.scenes import CLASSES, DOMAINS
from sarvlm.procgen import random_scene
from sarvlm.render import render

@pytest.fixture(scope='module')
def world(module_tmp):
    "Two checkpoints of an untrained SARCLIP-Tiny, a tiny test split, with cache and runs in tmp folders."
    mp = pytest.MonkeyPatch()
    tmp = module_tmp
    mp.setenv('SARVLM_CACHE', str(tmp/'cache')); mp.setenv('SARVLM_RUNS', str(tmp/'runs'))
    from sarvlm.models import create, save_checkpoint
    from sarvlm.data import records_to_dataset, sar_image, rgb_image
    torch.manual_seed(0); torch.set_num_threads(1)
    cks = {}
    for i, st in enumerate(('stage0_natural', 'stage2_sar_from1')):
        torch.manual_seed(i); model = create('SARCLIP-Tiny')[0]
        save_checkpoint(model, tmp/st/'checkpoint.pt', name='SARCLIP-Tiny', epoch=0); cks[st] = tmp/st/'checkpoint.pt'
    recs = []
    for s in range(12):
        sc = random_scene(s, 'chip')
        for d in DOMAINS:
            im = render(sc, d, 64)['image']
            recs.append(dict(image=sar_image(im) if d == 'sar' else rgb_image(im), caption=f"a {d} image of a {sc.objects[0].cls}",
                             domain=d, label=sc.objects[0].cls, scene_id=sc.scene_id, split='test', source='test'))
    dd = {'test': records_to_dataset(recs)}
    index = W.retrieval_index(cks['stage2_sar_from1'], 'test', dd)
    yield dict(cks=cks, dd=dd, index=index)
    mp.undo(); plt.close('all')

def test_make_scene_knobs_and_errors():
    sc = W.make_scene('ship', 3, wind_mps=9.0, seed=1)
    assert sc.kind == 'scene' and [o.cls for o in sc.objects] == ['ship'] * 3 and sc.sea_state['wind_mps'] == 9.0
    assert W.make_scene('tank').kind == 'chip'
    for kw, msg in [(dict(cls='dragon'), 'unknown class'), (dict(n_objects=0), 'n_objects must be'),
                    (dict(n_objects=2, kind='chip'), 'exactly one object'), (dict(wind_mps=0), 'wind_mps'),
                    (dict(kind='strip'), 'kind must be')]:
        with pytest.raises(ValueError, match=msg): W.make_scene(**kw)
    with pytest.raises(ValueError, match='could place only'): W.make_scene('harbour', 8, seed=0)
    with pytest.raises(ValueError, match='incidence_deg'): W.render_domains(sc, incidence_deg=90)
    with pytest.raises(ValueError, match='looks'): W.render_domains(sc, looks=0)

def test_zeroshot_probabilities_sum_to_one(world):
    r = W.render_domains(W.make_scene('aircraft'), incidence_deg=30, looks=2)
    P = W.zeroshot_probs({d: v['image'] for d, v in r.items()}, world['cks'])
    P100 = W.zeroshot_probs({d: v['image'] for d, v in r.items()}, world['cks'], scale=100)
    for st in world['cks']:
        assert P[st].shape == (3, len(CLASSES)) and (P[st] >= 0).all()
        np.testing.assert_allclose(P[st].sum(1), 1, atol=1e-5); np.testing.assert_allclose(P100[st].sum(1), 1, atol=1e-5)
        assert (P[st].argmax(1) == P100[st].argmax(1)).all()
    with pytest.raises(ValueError, match='scale must be > 0'): W.zeroshot_probs({'sar': r['sar']['image']}, world['cks'], scale=-1)
    with pytest.raises(ValueError, match='need at least one'): W.zeroshot_probs({}, world['cks'])

def test_scene_panel_axes(world):
    d = W.scene_data('ship', 1, 35, 1, 5, 0, world['cks'])
    assert set(d['true_prob']) == set(world['cks']) and all(0 <= v <= 1 for t in d['true_prob'].values() for v in t.values())
    fig = W.scene_panel(data=d); assert len(fig.axes) == 3 + len(world['cks']); plt.close(fig)
    fig = W.zeroshot_bars(d['probs'], true='ship'); assert len(fig.axes) == len(world['cks']); plt.close(fig)
    one = {'demo': world['cks']['stage0_natural']}          # one stage still gives three image panels
    fig = W.scene_panel('bridge', checkpoints=one); assert len(fig.axes) == 4; plt.close(fig)

def test_retrieve_sorted_and_rejects_bad_input(world):
    idx = world['index']
    res = W.retrieve('a sar image of a ship', k=5, index=idx)
    assert len(res) == 5 and [h['rank'] for h in res] == [1, 2, 3, 4, 5]
    assert all(a['score'] >= b['score'] for a, b in zip(res, res[1:]))
    sar = W.retrieve('a sar image of a ship', k=4, domain='sar', index=idx); assert {h['domain'] for h in sar} == {'sar'}
    # the top hit really is the most similar image (brute force)
    model, _, tokenizer, _ = W.cached_model(idx['checkpoint'])
    from sarvlm.features import embed_texts
    s = idx['features']['image'] @ embed_texts(model, ['a sar image of a ship'], tokenizer).numpy()[0]
    assert res[0]['row'] == int(np.argmax(s)) and res[0]['score'] == pytest.approx(float(s.max()), abs=1e-5)
    for q, k, msg in [('', 5, 'query is empty'), ('   ', 5, 'query is empty'), (None, 5, 'query is empty'),
                      ('ship', 0, 'k must be an integer >= 1'), ('ship', -3, 'k must be an integer >= 1'),
                      ('ship', 2.5, 'k must be an integer >= 1'), ('ship', 10**6, 'holds only')]:
        with pytest.raises(ValueError, match=msg): W.retrieve(q, k, index=idx)
    with pytest.raises(ValueError, match='domain must be one of'): W.retrieve('ship', 3, 'infrared', index=idx)
    fig = W.retrieval_grid(res, idx, query='x'); assert len(fig.axes) == 5; plt.close(fig)

def test_stage_map_fallback_and_figure(world):
    assert not W.alignment_file().exists()                    # SARVLM_RUNS is an empty tmp folder
    sm = W.stage_map(checkpoints=world['cks'], dd=world['dd'])
    assert sm['method'].startswith('PCA') and list(sm['coords']) == list(world['cks'])
    n = 2 * len(world['dd']['test'])
    assert all(v.shape == (n, 2) for v in sm['coords'].values()) and len(sm['domain']) == len(sm['kind']) == n
    fig = W.umap_stage_figure('stage2_sar_from1', sm); assert len(fig.axes) == 2; plt.close(fig)
    with pytest.raises(ValueError, match='no stage'): W.umap_stage_figure('stage9', sm)
    with pytest.raises(FileNotFoundError, match='no alignment file'): W.stage_map('/nonexistent/alignment.npz')

def _kids(w): return {c.description: c for c in w.children if getattr(c, 'description', '')}

def test_widgets_build_and_rerender(world):
    se = W.scene_explorer(world['cks'])
    assert len(se.result.axes) == 3 + len(world['cks']) and '1 × ship' in se.result._suptitle.get_text()
    out = se.out.outputs; assert len(out) == 1 and out[0]['data']['image/png'] and se.text == ''
    k = _kids(se); k['class'].value = 'car'; k['objects'].value = 2; k['incidence (°)'].value = 50
    assert '2 × car' in se.result._suptitle.get_text() and '50°' in se.result._suptitle.get_text()
    k['class'].value = 'harbour'; k['objects'].value = 8
    assert se.result is None and 'could place only' in se.text and se.out.outputs[0]['output_type'] == 'stream'

    rw = W.retrieval_explorer(world['index'], k=6)
    assert len(rw.result.axes) == 6
    k = _kids(rw); k['k'].value = 2; k['query'].value = 'an aerial image of a bridge'
    assert len(rw.result.axes) == 2 and 'bridge' in rw.result._suptitle.get_text()
    k['query'].value = ''
    assert rw.result is None and 'query is empty' in rw.text

    ue = W.umap_explorer(W.stage_map(checkpoints=world['cks'], dd=world['dd']))
    assert 'stage 0' in ue.result._suptitle.get_text()
    png0 = ue.out.outputs[0]['data']['image/png']
    ue.children[0].value = 'stage2_sar_from1'
    assert 'stage 2' in ue.result._suptitle.get_text() and ue.out.outputs[0]['data']['image/png'] != png0
    plt.close('all')
