"""The transfer study's machinery: stage chains, equal SAR budgets, held-out classes, stage folders that are skipped
when finished and retrained when forced or when their recipe changes, checkpoints plain open_clip can read, and a
verdict that follows the numbers."""
import os, json
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch

from sarvlm.data import build_mini
from sarvlm import transfer as T

@pytest.fixture(scope='module', autouse=True)
def small():
    "The small configuration for every test here (without leaking it to other test modules)."
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('SARVLM_SMALL', '1'); yield

@pytest.fixture(scope='module')
def dd(small): return build_mini(0, verbose=False)

@pytest.fixture()
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv('SARVLM_RUNS', str(tmp_path)); return tmp_path

def tiny(**kw): return T.study_config(experiment='t', seeds=(0,), batch_size=32, epochs_natural=1, epochs_optical=1, epochs_sar=1, **kw)

def test_chains_and_variants():
    assert T.chain('stage2_sar_from1') == ['stage0_natural', 'stage1_optical', 'stage2_sar_from1']
    assert T.chain('stage2_sar_from0') == ['stage0_natural', 'stage2_sar_from0']
    assert set(T.VARIANTS.values()) == set(T.STAGES)
    with pytest.raises(ValueError, match='unknown stage'): T.chain('nope')

def test_equal_sar_budgets_and_joint(dd):
    cfg = T.study_config(); sizes = {s: len(T.stage_train_data(dd, s)) for s in T.STAGES}
    b = T.budgets(cfg, sizes)
    assert b['stage2_sar_from0']['steps'] == b['stage2_sar_from1']['steps'] == b['sar_scratch']['steps'] > 0
    chain_steps = sum(b[s]['steps'] for s in T.chain('stage2_sar_from1'))
    spe = T.steps_per_epoch(sizes['joint'], cfg.batch_size)
    assert abs(b['joint']['steps'] - chain_steps) <= spe / 2 + 1   # joint gets the chain's steps, to the nearest epoch

def test_no_held_out_class_in_sar_training(dd):
    held = set(T.held_out_classes()); assert held
    for s in T.STAGES:
        ds = T.domain_split(dd, 'train', T.STAGES[s]['domains'])
        assert not [l for d, l in zip(ds['domain'], ds['label']) if d == 'sar' and l in held]
    test_sar = T.domain_split(dd, 'test', ['sar'])
    assert held & set(test_sar['label'])   # the test split does hold them

def test_stage_run_skip_force_recipe(dd, runs):
    cfg = tiny(); d = T.stage_dir(cfg, 0, 'sar_scratch')
    m = T.run_stage(cfg, 0, 'sar_scratch', dd, verbose=False)
    assert d == runs/'t-seed0'/'sar_scratch'
    names = {p.name for p in d.iterdir()}
    assert {'checkpoint.pt', 'config.json', 'metrics.csv', 'metrics.json', 'stage.json'} <= names
    from sarvlm.models import features_key, features_path
    for split in ('test', 'test_uni'):   # its embeddings went to the project's one cache, keyed by the checkpoint's bytes
        assert features_path(features_key(d/'checkpoint.pt', dd[split])).is_file()
    assert not {'latest.pt'} & names and not list(d.glob('epoch_*.pt'))
    assert json.loads((d/'stage.json').read_text())['recipe']['data'].startswith('seed0-n')   # the data version is part of the recipe
    for k in T.METRICS: assert np.isfinite(m[k]) or k == 'sar_zs_held_out'
    t0 = (d/'checkpoint.pt').stat().st_mtime_ns
    assert T.run_stage(cfg, 0, 'sar_scratch', dd, verbose=False) == m          # finished: skipped
    assert (d/'checkpoint.pt').stat().st_mtime_ns == t0
    T.run_stage(cfg, 0, 'sar_scratch', dd, force=True, verbose=False)          # forced: trained again
    t1 = (d/'checkpoint.pt').stat().st_mtime_ns; assert t1 != t0
    T.run_stage(tiny(lr_scratch=5e-4), 0, 'sar_scratch', dd, verbose=False)    # another recipe: trained again
    assert (d/'checkpoint.pt').stat().st_mtime_ns != t1
    import open_clip, sarvlm.models  # noqa: registers the tiny config
    ck = torch.load(d/'checkpoint.pt', map_location='cpu', weights_only=True)
    assert {'epoch', 'name', 'state_dict'} <= set(ck) and ck['name'] == 'SARCLIP-Tiny'
    open_clip.create_model('SARCLIP-Tiny').load_state_dict(ck['state_dict'])  # strict load by plain open_clip

def test_fine_tune_starts_from_parent(dd, runs):
    cfg = tiny()
    T.run_stage(cfg, 0, 'stage1_optical', dd, verbose=False)
    p0, p1 = (T.stage_dir(cfg, 0, s) for s in ('stage0_natural', 'stage1_optical'))
    rec = json.loads((p1/'stage.json').read_text())['recipe']
    assert rec['init']['stage'] == 'stage0_natural' and rec['budget']['lr'] == cfg.lr_finetune
    sd0 = torch.load(p0/'checkpoint.pt', weights_only=True)['state_dict']
    sd1 = torch.load(p1/'checkpoint.pt', weights_only=True)['state_dict']
    diff = max((sd0[k] - sd1[k]).abs().max().item() for k in sd0 if sd0[k].is_floating_point())
    assert 0 < diff < 1.0   # moved, but a fine-tune of stage 0, not a fresh model

def fake(win):
    rows = [dict(variant=v, seed=s, **{k: (50 if (v.startswith('two') == win) else 40) + s for k in T.METRICS})
            for v in T.VARIANTS for s in range(3)]
    return T.summarize(pd.DataFrame(rows))

def test_verdict_follows_numbers():
    assert T.verdict(fake(True)).startswith('Two-stage transfer **beats**')
    assert 'does **not** beat' in T.verdict(fake(False))
    s = fake(True); assert T.compare(s, 'two-stage (0→1→2)', 'two-stage (0→1→2)', 'optical_zs') == 'tied'

def test_zero_shot_helpers():
    from sarvlm.models import zeroshot_logits, top1, class_index
    w = torch.eye(3); pred = zeroshot_logits(np.eye(3)[[2, 0, 1]], w).argmax(1).numpy()
    assert list(pred) == [2, 0, 1]
    assert top1(pred, class_index(['c', 'a', 'a'], ['a', 'b', 'c'])) == pytest.approx(200 / 3)
