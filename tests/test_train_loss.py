"""A short training run whose loss falls (CLIP), and a CoCa run through the same learner."""
import os, math, tempfile
from pathlib import Path
import numpy as np, torch
from sarvlm.core import set_seed
from sarvlm.models import create
from sarvlm.train import TrainConfig, RecordsDataset, clip_learner, fit_clip, toy_records
from sarvlm.resume import read_metrics

os.environ.setdefault('HF_HUB_OFFLINE', '1')

def run(name, n, epochs, bs, lr, tmp):
    set_seed(0); torch.set_num_threads(1)
    model, tr, ev, tokenizer = create(name)
    cfg = TrainConfig(model=name, epochs=epochs, batch_size=bs, lr=lr, wd=0.1, warmup=5)
    recs = toy_records(n)
    learn = clip_learner(model, RecordsDataset(recs, tr, tokenizer), RecordsDataset(recs.select(range(bs)), ev, tokenizer), cfg, tmp, progress=False)
    fit_clip(learn)
    return read_metrics(Path(tmp)/'metrics.csv')

def test_clip_loss_falls(tmp_path):
    m = run('SARCLIP-Tiny', 128, 4, 32, 1e-3, tmp_path)
    L = [float(r['loss']) for r in m if r['loss']]
    print(f'CLIP loss {np.mean(L[:3]):.3f} -> {np.mean(L[-3:]):.3f} over {len(L)} steps')
    assert len(L) == 16 and np.mean(L[-3:]) < np.mean(L[:3]) - 0.3
    assert all(float(r['logit_scale']) <= 100 + 1e-4 for r in m if r['logit_scale'])
    assert any(r['valid_loss'] for r in m)

def test_coca_trains(tmp_path):
    m = run('SARCap-Tiny', 32, 3, 8, 1e-3, tmp_path)
    L = [float(r['loss']) for r in m if r['loss']]
    cap = [float(r['caption_loss']) for r in m if r['caption_loss']]
    print(f'CoCa loss {L[0]:.3f} -> {L[-1]:.3f}; caption part {cap[0]:.3f} -> {cap[-1]:.3f}')
    assert len(L) == 12 and all(map(math.isfinite, L)) and cap[-1] < cap[0] - 1.0
