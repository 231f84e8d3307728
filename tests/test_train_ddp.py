"""Data parallel: `torchrun --nproc_per_node 2` (gloo, CPU) matches one process with the same global batch, and
leaves no gloo thread running when training returns (see tests/ddp_probe.py)."""
import os, sys, csv, socket, subprocess
from pathlib import Path
import pytest, torch

# Under `pytest -n 2` (make pytest) this module and test_cli.py::test_end_to_end run as one unit (conftest.TOGETHER):
# two torchrun jobs never run at the same time, and the unit starts first, beside single-threaded tests.
ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1', PYTHONHASHSEED='0', OMP_NUM_THREADS='1')
# 64 toy records, global batch 16: 4 steps per epoch, 5 epochs = 20 steps
FLAGS = ['--data', 'toy:64', '--model', 'SARCLIP-Tiny', '--epochs', '5', '--batch-size', '16',
        '--lr', '1e-3', '--warmup', '3', '--threads', '1', '--no-progress', '--seed', '0']

def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def start(cmd, out):
    return subprocess.Popen([*cmd, *FLAGS, '--out', str(out)], cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)

def finish(p):
    _, err = p.communicate(timeout=240)
    assert p.returncode == 0, err[-3000:]

def losses(run_dir):
    with open(Path(run_dir)/'metrics.csv') as f: return [float(r['loss']) for r in csv.DictReader(f) if r['loss']]

def test_two_processes_match_one(tmp_path):
    torchrun = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_addr', '127.0.0.1',
                '--master_port', str(free_port())]
    probe = str(ROOT/'tests'/'ddp_probe.py')   # `python -m sarvlm.train` that also lists its threads at the end
    procs = [start([sys.executable, '-m', 'sarvlm.train'], tmp_path/'one'), start([*torchrun, probe], tmp_path/'two')]  # side by side: results do not depend on timing
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
    if Path('/proc/self/task').is_dir(): assert_no_gloo_threads(tmp_path/'two')

GLOO_THREADS = ('pt_gloo', 'gloo_tcp')

def assert_no_gloo_threads(run_dir):
    "Each rank's gloo worker threads were joined before `main` returned (under destroy_process_group)."
    for rank in (0, 1):
        names = (Path(run_dir)/f'threads-rank{rank}.txt').read_text().split()
        left = [n for n in names if n.startswith(GLOO_THREADS)]
        assert not left, (f"rank {rank}: gloo threads {left} still run after training returned: something holds the "
                          f"DDP wrapper past destroy_process_group (all threads: {names})")


def test_lazy_data_rank_decodes_only_its_shard(tmp_path, monkeypatch):
    """Under torchrun each rank's sampler picks its own rows (the trainer's `EpochBatchSampler` slices each global
    batch by rank, as `DistributedSampler` here); a lazily read CSV (what `--data` reads) decodes only those."""
    import numpy as np
    from sarvlm import data as D, files
    monkeypatch.setenv('HF_DATASETS_CACHE', str(tmp_path/'hf'))
    for i in range(16): files.save_image(D.sar_image(np.full((4, 4), i + 1.0, np.float32)), tmp_path/f'{i}.tif')
    (tmp_path/'d.csv').write_text('imgpath,caption\n' + ''.join(f'{i}.tif,SAR image {i}.\n' for i in range(16)))
    ds = files.from_sarvlm_csv(tmp_path/'d.csv', lazy=True)
    seen, load = [], files.load_image
    monkeypatch.setattr(files, 'load_image', lambda p, *a: seen.append(p) or load(p, *a))
    mine = list(torch.utils.data.DistributedSampler(ds, num_replicas=2, rank=1, seed=0))
    loader = torch.utils.data.DataLoader(ds, batch_size=4, sampler=mine, collate_fn=lambda b: b)
    assert sum(len(b) for b in loader) == 8
    assert sorted(seen) == sorted(str(tmp_path/f'{i}.tif') for i in mine)
