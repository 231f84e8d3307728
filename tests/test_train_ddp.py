"""Data parallel: `torchrun --nproc_per_node 2` (gloo, CPU) matches one process with the same global batch."""
import os, sys, csv, socket, subprocess
from pathlib import Path
import pytest, torch

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1', PYTHONHASHSEED='0', OMP_NUM_THREADS='1')
# 64 toy records, global batch 16: 4 steps per epoch, 5 epochs = 20 steps
ARGS = ['-m', 'sarvlm.train', '--data', 'toy:64', '--model', 'SARCLIP-Tiny', '--epochs', '5', '--batch-size', '16',
        '--lr', '1e-3', '--warmup', '3', '--threads', '1', '--no-progress', '--seed', '0']

def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def start(cmd, out):
    return subprocess.Popen([*cmd, *ARGS, '--out', str(out)], cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)

def finish(p):
    _, err = p.communicate(timeout=240)
    assert p.returncode == 0, err[-3000:]

def losses(run_dir):
    with open(Path(run_dir)/'metrics.csv') as f: return [float(r['loss']) for r in csv.DictReader(f) if r['loss']]

def test_two_processes_match_one(tmp_path):
    torchrun = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_addr', '127.0.0.1',
                '--master_port', str(free_port())]
    procs = [start([sys.executable], tmp_path/'one'), start(torchrun, tmp_path/'two')]  # side by side: results do not depend on timing
    for p in procs: finish(p)
    a, b = losses(tmp_path/'one'), losses(tmp_path/'two')
    assert len(a) == len(b) == 20
    diffs = [abs(x - y) for x, y in zip(a, b)]
    print(f'losses over 20 steps: max |1 process - 2 processes| = {max(diffs):.2e}; first {a[0]:.4f}, last {a[-1]:.4f}')
    assert max(diffs) < 1e-4
    assert a[-1] < a[0]  # it trained
    wa = torch.load(tmp_path/'one'/'latest.pt', weights_only=True)['state_dict']
    wb = torch.load(tmp_path/'two'/'latest.pt', weights_only=True)['state_dict']
    dw = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    print(f'final weights: max |1 process - 2 processes| = {dw:.2e}')
    assert dw < 1e-3
