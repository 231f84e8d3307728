"""Captioning (sarvlm.caption_metrics, sarvlm.tasks.captioning): pycocoevalcap metrics against hand-computed cases, both protocols, the
no-Java fallback, the authors' token decoding, open_clip's uninitialised CoCa projection, and a generation smoke test."""
import math
import numpy as np
import pytest
import torch
from sarvlm import caption_metrics as M
from sarvlm.tasks import captioning as C

REF = {0: ['a ship in the sea'], 1: ['a tank on the land']}
needs_java = pytest.mark.skipif(not M.java_available(), reason="METEOR / PTB tokenizer need Java: " + M.JAVA_HINT)


def test_perfect_and_disjoint_captions():
    p = M.score_corpus(REF, {0: ['a ship in the sea'], 1: ['a tank on the land']}, meteor=False)
    z = M.score_corpus(REF, {0: ['x y z w v'], 1: ['q r s t u']}, meteor=False)
    for k in ['BLEU-1', 'BLEU-2', 'BLEU-3', 'BLEU-4', 'ROUGE-L']:
        assert p[k] == pytest.approx(1, abs=1e-6) and z[k] == pytest.approx(0, abs=1e-6), k
    assert p['CIDEr'] == pytest.approx(10, abs=1e-6) and z['CIDEr'] == pytest.approx(0, abs=1e-9)
    assert p['METEOR'] is None


def test_partial_overlap_by_hand():
    s = M.score_corpus({0: ['a ship in the sea']}, {0: ['a ship in the harbour']}, meteor=False)
    p = [4/5, 3/4, 2/3, 1/2]   # clipped n-gram precisions; equal lengths, so no brevity penalty
    for n in range(1, 5): assert s[f'BLEU-{n}'] == pytest.approx(math.prod(p[:n]) ** (1/n), abs=1e-6)
    assert s['ROUGE-L'] == pytest.approx(0.8, abs=1e-6)   # LCS 4 of 5 both ways


def test_brevity_penalty():
    s = M.score_corpus({0: ['a ship in the open sea']}, {0: ['a ship in the']}, meteor=False)
    assert s['BLEU-1'] == pytest.approx(math.exp(1 - 6/4), abs=1e-6)   # all 4 unigrams right, BP = exp(1 - r/c)


def test_cider_one_image_corpus_is_zero():
    s = M.score_corpus({0: ['a ship in the sea']}, {0: ['a ship in the sea']}, meteor=False)
    assert s['CIDEr'] == pytest.approx(0, abs=1e-9) and s['BLEU-4'] == pytest.approx(1, abs=1e-6)


def test_bad_inputs():
    with pytest.raises(ValueError, match='same image ids'): M.score_corpus(REF, {0: ['a']}, meteor=False)
    with pytest.raises(ValueError, match='list of ONE string'): M.score_corpus({0: ['a b']}, {0: 'a b'}, meteor=False)
    with pytest.raises(ValueError, match='protocol must be one of'): M.evaluate_captions(['a'], [['a']], 'coco')
    with pytest.raises(ValueError, match='1 hypotheses but 2'): M.evaluate_captions(['a'], [['a'], ['b']])


REFS5 = [['A ship in the open sea.', 'a vessel at sea', 'one ship on water', 'a boat in the sea', 'a ship at sea'],
         ['A SAR image of a tank.', 'a tank seen by radar', 'a radar image of a tank on land', 'one tank', 'a tank on land']]
HYPS = ['a ship in the open sea', 'a tank seen by radar']


def test_protocols_differ_as_documented():
    a = M.evaluate_captions(HYPS, REFS5, 'authors', meteor=False)
    s = M.evaluate_captions(HYPS, REFS5, 'standard', meteor=False)
    assert a['tokenizer'] == 'raw' and a['BLEU-4'] < 0.5   # case, full stop and the other 4 references all count against
    assert s['BLEU-4'] == pytest.approx(1, abs=1e-6)


def test_no_java_fallback(monkeypatch):
    monkeypatch.setattr(M, 'java_available', lambda: False)
    s = M.evaluate_captions(HYPS, REFS5, 'standard')
    assert s['tokenizer'] == 'python (no Java)' and s['METEOR'] is None and s['BLEU-4'] == pytest.approx(1, abs=1e-6)
    with pytest.raises(RuntimeError, match='openjdk'): M.score_corpus(REF, REF, meteor=True)
    assert 'Java' in M.spice_status()


@needs_java
def test_meteor_hand_checks():
    assert M.score_corpus(REF, {0: ['a ship in the sea'], 1: ['a tank on the land']})['METEOR'] == pytest.approx(1, abs=0.01)
    assert M.score_corpus(REF, {0: ['x y z w v'], 1: ['q r s t u']})['METEOR'] == pytest.approx(0, abs=1e-6)


@needs_java
def test_python_tokenizer_matches_ptb_on_sarvlm_style_captions():
    caps = ['A SAR image of the ZSU-23-4 anti-aircraft gun.', "The quay harbour, as seen in a SAR view.",
            'Mainly bare land can be seen in this radar view!', 'A vessel (cargo ship) near the coast; calm water.']
    ptb = M.ptb_tokenize({i: [c] for i, c in enumerate(caps)})
    for i, c in enumerate(caps):
        a, b = ptb[i][0].split(), M.simple_tokenize(c).split()
        # PTB keeps the hyphenated name as one token; the fallback splits it: the only documented difference
        assert [w for w in a if '-' not in w] == [w for w in b if w not in ('zsu', '23', '4', 'anti', 'aircraft')], (a, b)


def test_decode_tokens_authors_rules():
    import open_clip
    tokenizer = open_clip.get_tokenizer('SARCap-Tiny')
    ids = tokenizer(['A SAR image of a ship.'])[0]
    assert C.decode_tokens(ids, tokenizer) == 'a sar image of a ship .'
    n = int((ids != 0).sum())
    assert C.decode_tokens([*ids[:3].tolist(), C.EOT, *ids[3:n].tolist()], tokenizer) == C.decode_tokens(ids[:3].tolist() + [C.EOT], tokenizer)


@pytest.fixture(scope='module')
def tiny():
    torch.set_num_threads(1)
    from sarvlm.models import create
    junk = torch.full((128 * 49408,), 1e30); del junk   # freed memory that torch.empty may hand back
    m, train_tf, eval_tf, tokenizer = create('SARCap-Tiny')
    return m, train_tf, eval_tf, tokenizer


def test_init_caption_decoder(tiny):
    m = tiny[0]
    C.init_caption_decoder(m)
    p = m.text_decoder.text_projection
    p = p.detach()
    assert torch.isfinite(p).all() and float(p.std()) == pytest.approx(128 ** -0.5, rel=0.05)
    with pytest.raises(TypeError, match='expected an open_clip CoCa'): C.init_caption_decoder(torch.nn.Linear(2, 2))


def test_trim_tokens_keeps_caption_loss(tiny):
    from open_clip.loss import CoCaLoss
    m, _, _, tokenizer = tiny
    C.init_caption_decoder(m); m.eval()
    t = tokenizer(['a sar image of a ship', 'a radar view of two tanks on land near a road']); L = int((t != 0).sum(1).max())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        full = CoCaLoss(1.0, 1.0)(**m(x, t), output_dict=True)['caption_loss']
        trim = CoCaLoss(1.0, 1.0)(**m(x, t[:, :L]), output_dict=True)['caption_loss']
    assert float(full) == pytest.approx(float(trim), abs=1e-4)


def test_generation_smoke(tiny):
    from PIL import Image
    m, _, eval_tf, tokenizer = tiny
    C.init_caption_decoder(m)
    rng = np.random.default_rng(0)
    imgs = [Image.fromarray(rng.exponential(1, (64, 64)).astype(np.float32), mode='F') for _ in range(2)]
    for meth in C.DECODING:
        caps = C.generate_captions(m, imgs, eval_tf, tokenizer, meth, seq_len=8)
        assert len(caps) == 2 and all(isinstance(c, str) for c in caps), (meth, caps)
    a = C.generate_captions(m, imgs, eval_tf, tokenizer, 'top_p', seq_len=8, seed=5)
    assert a == C.generate_captions(m, imgs, eval_tf, tokenizer, 'top_p', seq_len=8, seed=5)
    with pytest.raises(ValueError, match='method must be one of'): C.generate_captions(m, imgs, eval_tf, tokenizer, 'nucleus')


def test_probe_top1_hit_reads_a_linear_class():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 6, generator=g)
    x[:, 2] += torch.sign(x[:, 2])   # a margin between the two classes
    y = np.stack([x[:, 2] > 0, x[:, 2] <= 0, np.zeros(300, bool)], 1).astype(np.float32)   # class = sign of x2
    assert C.probe_top1_hit(x[:200], y[:200], x[200:], y[200:]) == 100.0
    assert C.probe_top1_hit(x[:200], y[:200], x[200:], y[200:][:, [1, 0, 2]]) == 0.0   # the other class
    y_none = y[200:].copy(); y_none[:50] = 0   # rows without a class are not scored
    assert C.probe_top1_hit(x[:200], y[:200], x[200:], y_none) == 100.0


def test_present_matrix():
    meta = {'caption_objects': [dict(cls='ship', fine_type=None, x=.5, y=.5)], 'landcover': {'open sea': 1.0},
            'kind': 'chip'}
    m = C.present_matrix([meta], classes=['tank', 'ship'])
    assert m.tolist() == [[0.0, 1.0]]


class _BlindCaptioner(torch.nn.Module):
    "A CoCa stand-in whose next-token logits do not depend on the image: image reliance 0."
    def forward(self, x, t):
        lg = torch.nn.functional.one_hot(t[:, 1:], 8).float() * 0.5 + t[:, :-1, None].float() * 0.01
        return {'logits': lg, 'labels': t[:, 1:]}


def test_image_reliance_of_a_blind_decoder_is_zero():
    import datasets
    from PIL import Image
    rng = np.random.default_rng(0)
    imgs = [Image.fromarray(rng.exponential(1, (8, 8)).astype(np.float32), mode='F') for _ in range(6)]
    ds = datasets.Dataset.from_dict({'image': imgs, 'caption': [f'c{i}' for i in range(6)]})
    tokenizer = lambda caps: torch.tensor([[1, 2 + int(c[1]) % 5, 7] for c in caps])
    tf = lambda im: torch.zeros(1)
    assert C.image_reliance(_BlindCaptioner(), ds, tf, tokenizer) == pytest.approx(0, abs=1e-9)


# --- the three additions to CoCa's recipe (13: class warm-up, frozen tower, class words weighted) ---

def test_weighted_caption_loss_is_the_weighted_mean_over_tokens():
    "The CrossEntropyLoss swapped into CoCaLoss averages sum(w * ce) / sum(w) over non-padding tokens."
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(3, 5, 5, generator=g), torch.tensor([[4, 2, 0, 0, 0], [1, 1, 3, 4, 0], [2, 3, 4, 1, 2]])
    w = torch.tensor([1., 1., 5., 1., 2.])
    got = torch.nn.CrossEntropyLoss(weight=w, ignore_index=0)(logits, labels)
    ce = torch.nn.functional.cross_entropy(logits, labels, reduction='none')
    keep = (labels != 0).float() * w[labels]
    assert float(got) == pytest.approx(float((ce * keep).sum() / keep.sum()), rel=1e-6)
    assert float(got) != pytest.approx(float(ce[labels != 0].mean()), rel=1e-3)   # not the plain mean


def test_class_word_weights():
    import open_clip
    base = open_clip.get_tokenizer('SARCap-Tiny')
    vocab = C.CaptionVocab.from_captions(['a sar image of two ships and a vehicle', 'a radar view of land'], base)
    w = C.class_word_weights(vocab, base, 5.0)
    word = lambda s: float(w[vocab.lut[base.encode(s)[0]]])
    assert word('ships') == 5.0 and word('image') == 1.0 and word('land') == 1.0
    assert word('vehicle') == 1.0          # shared by several classes: not a class word
    assert float(w[:C.CaptionVocab.SPECIAL].max()) == 1.0


def _records(captions):
    import datasets
    from PIL import Image
    imgs = [Image.fromarray(np.full((8, 8), 0.1, np.float32), mode='F') for _ in captions]
    return datasets.Dataset.from_dict({'image': imgs, 'caption': [c[0] for c in captions], 'captions': captions})


def test_object_captions_draw_only_captions_that_name_an_object():
    import open_clip
    tok = open_clip.get_tokenizer('SARCap-Tiny')
    caps = [['a sar image of mainly land .', 'this sar view shows two ships .', 'a radar image of open sea .',
             'a sar image of a tank .', 'a view of fields .'],
            ['a sar image of mainly land .', 'a radar image of open sea .', 'a view of fields .',
             'a view of a road .', 'a sar image .']]
    ds = C.ObjectCaptions(_records(caps), lambda im: torch.zeros(1), tok, seed=0)
    drawn = {i: {C.decode_tokens(ds[(i, e)][1], tok) for e in range(40)} for i in range(2)}
    assert drawn[0] == {'this sar view shows two ships .', 'a sar image of a tank .'}
    assert len(drawn[1]) > 2                 # no caption names an object: all five are drawn from
    plain = C.AllCaptions(_records(caps), lambda im: torch.zeros(1), tok, seed=0)
    assert len({C.decode_tokens(plain[(0, e)][1], tok) for e in range(40)}) > 2


def test_template_captions():
    ship = dict(cls='ship', fine_type=None, x=.5, y=.5)
    metas = [{'caption_objects': [ship, ship, dict(cls='tank', fine_type=None, x=.2, y=.2)],
              'landcover': {'open sea': 1.0}, 'kind': 'chip'},
             {'caption_objects': [], 'landcover': {'open sea': 1.0}, 'kind': 'chip'}]
    caps = C.template_captions({'meta': metas})
    assert caps == ['a sar image of ships .', 'a sar image of mainly land .']
    assert M.caption_measures(caps[:1], metas[:1])['class_hit'] == 100.0


def test_warm_up_trains_the_tower_and_freeze_keeps_only_the_pooler(tmp_path):
    import open_clip
    from sarvlm.train import TrainConfig
    torch.set_num_threads(1)
    ship = dict(cls='ship', fine_type=None, x=.5, y=.5)
    metas = [{'caption_objects': [ship] if i % 2 else [], 'landcover': {'open sea': 1.0}, 'kind': 'chip'}
             for i in range(4)]
    ds = _records([['a sar image .'] * 5] * 4).add_column('meta', metas)
    base = open_clip.get_tokenizer('SARCap-Tiny')
    vocab = C.CaptionVocab.from_captions(['a sar image .'], base)
    m, _ = C.compact_captioner(vocab)
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    losses = C.warm_up_tower(m, ds, TrainConfig(model='SARCap-Tiny', epochs=2, batch_size=2, lr=1e-3, wd=0.1,
                                                warmup=1, seed=0))
    assert len(losses) == 4 and all(math.isfinite(l) for l in losses)
    moved = {n.split('.')[0] for n, p in m.named_parameters() if not torch.equal(p, before[n])}
    assert moved == {'visual'}
    n = C.freeze_tower(m)
    assert n > 10 and {k.split('.')[1] for k, p in m.named_parameters()
                       if p.requires_grad and k.startswith('visual.')} == {'attn_pool', 'ln_post', 'proj'}
    assert all(p.requires_grad for k, p in m.named_parameters() if not k.startswith('visual.'))
