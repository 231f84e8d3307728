"""The transfer study's machinery: stage chains and fair budgets, fresh-scene streams paired across arms, held-out
classes that share no word and never reach SAR training, a balanced test set no stream can draw, stage folders that
are skipped when finished and retrained when forced or when their recipe changes, stage 0 loaded from a local file,
measures that collapse cannot game, and paired tests and a verdict that follow the numbers."""
import json
import numpy as np, pandas as pd, pytest, torch

from sarvlm import transfer as T
from sarvlm.data import fresh_scene, check_held_out_words
from sarvlm.scenes import CLASSES

@pytest.fixture(scope='module', autouse=True)
def small():
    "The small configuration for every test here (without leaking it to other test modules)."
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('SARVLM_SMALL', '1'); yield

@pytest.fixture()
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv('SARVLM_RUNS', str(tmp_path)); return tmp_path

def tiny(**kw):
    return T.study_config(**{**dict(experiment='t', seeds=(0,), batch_size=8, steps_natural=4, steps=2,
                                    steps_sar=2, steps_per_epoch=1, test_per_class=2, val_pairs=8), **kw})

def test_chains_arms_and_budgets():
    assert T.chain('stage2_sar_from1') == ['stage0_natural', 'stage1_optical', 'stage2_sar_from1']
    assert T.chain('stage2_sar_control') == ['stage0_natural', 'stage1_natural', 'stage2_sar_control']
    assert set(T.ARMS.values()) <= set(T.STAGES)
    with pytest.raises(ValueError, match='unknown stage'): T.chain('nope')
    b = T.budgets(T.study_config(steps=40, steps_sar=80, steps_per_epoch=10))
    sar = [s for s in T.STAGES if T.STAGES[s]['domains'] == ('sar',)]
    assert set(b.loc[sar, 'steps']) == {80} and set(b.loc[['stage1_optical', 'stage1_natural'], 'steps']) == {40}
    assert b.loc['stage2_sar_from1', 'total_steps'] == b.loc['stage2_sar_control', 'total_steps']   # equal compute
    assert b.loc['joint', 'steps'] == 120 and b.loc['joint', 'sar_steps'] == 80
    with pytest.raises(ValueError, match='multiple of steps_per_epoch'): T.stage_epochs(T.study_config(steps_sar=15, steps_per_epoch=10), 'joint')

def test_joint_sees_stage_ones_optical_pairs_and_the_sar_pairs_once():
    "With twice the SAR steps, joint reads the optical stream at half rate: stage 1's optical pairs, each once."
    cfg = tiny(steps=2, steps_sar=4, batch_size=4)
    streams, tf = T.seed_streams(cfg, 0), (lambda im: im, lambda im: im, lambda caps: caps)
    ids = lambda ds, epochs: sorted(ds.streams[k].item(i, e)['scene_id'] for e in range(epochs)
                                    for k in range(len(ds.streams)) for i in range(len(ds.streams[k])))
    joint, _ = T.stage_data(cfg, 0, 'joint', streams, tf)
    opt, _ = T.stage_data(cfg, 0, 'stage1_optical', streams, tf)
    sar, _ = T.stage_data(cfg, 0, 'stage2_sar_from1', streams, tf)
    e_joint, e_opt = T.stage_epochs(cfg, 'joint'), T.stage_epochs(cfg, 'stage1_optical')
    assert (e_joint, e_opt) == (4, 2) and len(joint) == 4 + 2
    assert ids(joint, e_joint) == sorted(ids(opt, e_opt) + ids(sar, e_joint))
    assert len(set(ids(joint, e_joint))) == 4 * 4 + 2 * 4
    assert T.stage_steps(cfg, 'joint') == e_joint * len(joint) // cfg.batch_size   # 4 SAR + 2 optical steps

def test_streams_are_paired_and_fresh():
    cfg = tiny()
    a, b = T.seed_streams(cfg, 0)['sar'], T.seed_streams(cfg, 0)['sar']
    assert [a.item(i, 0)['scene_id'] for i in range(4)] == [b.item(i, 0)['scene_id'] for i in range(4)]   # same seed: same pairs
    c = T.seed_streams(cfg, 1)['sar']
    assert not {a.item(i, 0)['scene_id'] for i in range(4)} & {c.item(i, 0)['scene_id'] for i in range(4)}
    assert not {a.item(i, 0)['scene_id'] for i in range(4)} & {a.item(i, 1)['scene_id'] for i in range(4)}   # new epoch, new scenes

def test_held_out_classes_share_no_word_and_stay_out_of_sar_training():
    held = T.held_out_classes()
    check_held_out_words(held)
    with pytest.raises(ValueError, match='lexical leak'): check_held_out_words(['tank'])
    for i in range(150):
        sc, _ = fresh_scene(5, 'train', 0, i, 'sar', held=held)
        assert not {o.cls for o in sc.objects} & set(held)
    # natural and optical draws keep them
    assert any(o.cls in held for i in range(150) for o in fresh_scene(5, 'train', 0, i, 'optical', held=held)[0].objects)

def test_balanced_test_set_cannot_be_drawn_in_training():
    test = T.test_set(tiny())
    lab = pd.Series(test['label'])
    assert set(lab.value_counts()) == {2 * 3} and set(lab) == set(CLASSES)   # 2 per class x 3 domains
    assert all(int(s.split('-')[1]) % 3 == 1 for s in test['scene_id'])      # test seeds; training seeds are 0 mod 3
    rows, caps = T.retrieval_captions(test)
    assert len(set(caps)) == len(caps) and all(test['domain'][int(r)] == 'sar' for r in rows)

def test_balanced_measure_cannot_be_gamed_by_collapse():
    lab = np.array(['ship'] * 67 + ['car'] * 10 + ['truck'] * 10)
    assert T.balanced_top1(np.full(len(lab), 'ship'), lab, ['ship', 'car', 'truck']) == pytest.approx(100 / 3)
    assert T.chance_levels(10, 100)['sar_retrieval_mr'] == pytest.approx((1 + 5 + 10) / 3)

def test_stage_run_skip_force_recipe(runs):
    cfg = tiny(); d = T.stage_dir(cfg, 0, 'sar_scratch')
    m = T.run_stage(cfg, 0, 'sar_scratch')
    assert d == runs/'t-seed0'/'sar_scratch'
    names = {p.name for p in d.iterdir()}
    assert {'checkpoint.pt', 'config.json', 'metrics.csv', 'metrics.json', 'stage.json'} <= names
    assert not {'latest.pt'} & names and not list(d.glob('epoch_*.pt'))
    from sarvlm.features import features_key, features_path
    test = T.test_set(cfg)
    assert features_path(features_key(d/'checkpoint.pt', test), texts=False).is_file()   # images, one cache
    for k in T.MEASURES: assert np.isfinite(m[k])
    vl = [r['valid_loss'] for r in T.read_metrics(d/'metrics.csv') if r['valid_loss']]
    assert len(vl) == T.stage_epochs(cfg, 'sar_scratch')                      # a validation loss per epoch
    t0 = (d/'checkpoint.pt').stat().st_mtime_ns
    assert T.run_stage(cfg, 0, 'sar_scratch') == m                            # finished: read, not trained
    assert (d/'checkpoint.pt').stat().st_mtime_ns == t0
    T.run_stage(cfg, 0, 'sar_scratch', force=True)                            # forced: trained again
    t1 = (d/'checkpoint.pt').stat().st_mtime_ns; assert t1 != t0
    T.run_stage(tiny(lr_scratch=5e-4), 0, 'sar_scratch')                      # another recipe: trained again
    assert (d/'checkpoint.pt').stat().st_mtime_ns != t1
    import open_clip, sarvlm.models  # noqa: registers the tiny config
    ck = torch.load(d/'checkpoint.pt', map_location='cpu', weights_only=True)
    assert {'epoch', 'name', 'state_dict'} <= set(ck) and ck['name'] == 'SARCLIP-Tiny'
    open_clip.create_model('SARCLIP-Tiny').load_state_dict(ck['state_dict'])  # strict load by plain open_clip

def test_fine_tune_starts_from_parent_and_stage0_is_shared(runs):
    cfg = tiny(seeds=(0, 1))
    T.run_stage(cfg, 0, 'stage1_optical')
    p0, p1 = (T.stage_dir(cfg, 0, s) for s in ('stage0_natural', 'stage1_optical'))
    assert p0 == T.stage_dir(cfg, 1, 'stage0_natural') == runs/'t'/'stage0_natural'
    rec = json.loads((p1/'stage.json').read_text())['recipe']
    assert rec['init']['stage'] == 'stage0_natural' and rec['config']['lr_finetune'] == cfg.lr_finetune
    sd0 = torch.load(p0/'checkpoint.pt', weights_only=True)['state_dict']
    sd1 = torch.load(p1/'checkpoint.pt', weights_only=True)['state_dict']
    diff = max((sd0[k] - sd1[k]).abs().max().item() for k in sd0 if sd0[k].is_floating_point())
    assert 0 < diff < 1.0   # moved, but a fine-tune of stage 0, not a fresh model

def test_stage0_from_a_local_open_clip_file(runs, tmp_path):
    "The scale switch's pretrained stage 0, offline: any local open_clip checkpoint file is loaded, not trained."
    from sarvlm.models import create, save_safetensors
    m = create('SARCLIP-Tiny')[0]
    f = save_safetensors(m, tmp_path/'my_clip.safetensors', 'SARCLIP-Tiny')
    cfg = tiny(init=str(f), experiment='t-init')
    met = T.run_stage(cfg, None, 'stage0_natural')
    ck = torch.load(T.stage_dir(cfg, None, 'stage0_natural')/'checkpoint.pt', weights_only=True)['state_dict']
    sd = m.state_dict()
    assert all(torch.equal(ck[k], sd[k]) for k in sd) and met['train_seconds'] < 30
    assert not (T.stage_dir(cfg, None, 'stage0_natural')/'metrics.csv').exists()   # nothing was trained

def fake(two, other):
    return pd.DataFrame([dict(arm=a, seed=s, **{k: (two if a.startswith('two') else other) + s % 3 for k in T.MEASURES})
                         for a in T.ARMS for s in range(6)])

def test_verdict_follows_the_tests():
    ch = T.chance_levels(10, 100)
    assert '**beats** direct' in T.verdict(T.study_tests(fake(50, 40)), ch)
    assert '**loses to** direct' in T.verdict(T.study_tests(fake(30, 40)), ch)
    assert '**does not beat** direct' in T.verdict(T.study_tests(fake(40, 40)), ch)

def test_seeds_side_by_side_match_one_after_the_other(runs):
    "Two worker processes (spawned) give the same stages as one process: the seeds are independent."
    T.run_stage(tiny(experiment='t-par'), None, 'stage0_natural')   # stage 0 first, as run_study does
    T.run_stage(tiny(experiment='t-seq'), None, 'stage0_natural')
    par = T.run_seeds(tiny(seeds=(0, 1), experiment='t-par', workers=2), verbose=False, stages=('stage2_sar_from0',))
    seq = T.run_seeds(tiny(seeds=(0, 1), experiment='t-seq', workers=1), verbose=False, stages=('stage2_sar_from0',))
    key = lambda rows: {(r['seed'], r['stage']): r.get('sar_zs_held_in') for r in rows if r['stage'] != '_streams'}
    assert key(par) == key(seq) and len(key(par)) == 2
