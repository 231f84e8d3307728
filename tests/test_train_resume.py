"""Exact resume: a training run killed with SIGKILL and resumed ends with the same weights as an uninterrupted run."""
import os, sys, time, signal, subprocess
from pathlib import Path
import pytest, torch

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1', PYTHONHASHSEED='0', OMP_NUM_THREADS='1')
# 48 toy records, global batch 8: 6 steps per epoch, 4 epochs = 24 steps; a checkpoint every 4 steps
ARGS = ['--data', 'toy:48', '--model', 'SARCLIP-Tiny', '--epochs', '4', '--batch-size', '8', '--lr', '1e-3',
        '--warmup', '3', '--save-every', '4', '--threads', '1', '--no-progress', '--seed', '0']

def train(out, *extra, wait=True):
    cmd = [sys.executable, '-m', 'sarvlm.train', *ARGS, '--out', str(out), *extra]
    p = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if not wait: return p
    _, err = p.communicate(timeout=120)
    return p.returncode, err

def weights(run): return torch.load(Path(run)/'latest.pt', map_location='cpu', weights_only=True)

def max_diff(a, b):
    assert a['state_dict'].keys() == b['state_dict'].keys()
    return max(float((a['state_dict'][k] - b['state_dict'][k]).abs().max()) for k in a['state_dict'])

def losses(run):
    import csv
    with open(Path(run)/'metrics.csv') as f: return [(r['step'], r['loss']) for r in csv.DictReader(f) if r['loss']]

@pytest.fixture(scope='module')
def reference(module_tmp):
    out = module_tmp/'uninterrupted'
    rc, err = train(out); assert rc == 0, err[-2000:]
    return out

def check_same(ref, run):
    a, b = weights(ref), weights(run)
    d = max_diff(a, b)
    print(f'max |uninterrupted - resumed| = {d}')
    assert (a['epoch'], a['step']) == (b['epoch'], b['step']) == (4, 24)
    assert d == 0.0, f'resumed weights differ by {d}'
    assert all(torch.equal(a['optimizer']['state'][i]['exp_avg'], b['optimizer']['state'][i]['exp_avg']) for i in a['optimizer']['state'])
    assert losses(ref) == losses(run)

@pytest.mark.parametrize('kill_at', [6, 8])  # 6: last step of epoch 1, before its epoch checkpoint; 8: right after a step checkpoint
def test_sigkill_at_step_then_resume(reference, tmp_path, kill_at):
    rc, err = train(tmp_path, '--kill-at-step', str(kill_at))
    assert rc == -signal.SIGKILL, f'expected the run to die by SIGKILL, got rc={rc}: {err[-1000:]}'
    saved = weights(tmp_path)
    assert saved['step'] == kill_at // 4 * 4  # the last step checkpoint before the kill
    rc, err = train(tmp_path, '--resume', 'latest'); assert rc == 0, err[-2000:]
    check_same(reference, tmp_path)

def test_external_sigkill_then_resume(reference, tmp_path):
    "Kill from outside at whatever step the run has reached once metrics.csv shows step >= 10."
    p, t0 = train(tmp_path, wait=False), time.time()
    while time.time() - t0 < 90:
        m = tmp_path/'metrics.csv'
        if m.exists() and len(losses(tmp_path)) >= 10: break
        if p.poll() is not None: break
        time.sleep(0.005)
    p.send_signal(signal.SIGKILL); p.wait()
    if p.returncode != -signal.SIGKILL: pytest.skip('the run finished before it could be killed')
    print('killed after step', len(losses(tmp_path)))
    rc, err = train(tmp_path, '--resume', 'latest'); assert rc == 0, err[-2000:]
    check_same(reference, tmp_path)
