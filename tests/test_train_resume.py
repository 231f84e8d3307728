"""Exact resume: a training run killed with SIGKILL, or stopped with SIGINT (Ctrl-C), through `python -m sarvlm.train` or
the `sarvlm_train` console script, and resumed ends with the same weights and losses as an uninterrupted run.
The interrupted runs are real processes (a kill must hit a process); the uninterrupted reference and the resumed runs
are the same entry points called in this process, which saves a ~7 s start (imports) for each."""
import os, sys, time, signal, subprocess
from pathlib import Path
import pytest, torch

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1', PYTHONHASHSEED='0', OMP_NUM_THREADS='1')
# 48 toy records, global batch 8: 6 steps per epoch, 4 epochs = 24 steps; a checkpoint every 4 steps
ARGS = ['--data', 'toy:48', '--model', 'SARCLIP-Tiny', '--epochs', '4', '--batch-size', '8', '--lr', '1e-3',
        '--warmup', '3', '--save-every', '4', '--threads', '1', '--no-progress', '--seed', '0']

def train(out, *extra, wait=True, env=None):
    "`python -m sarvlm.train` with ARGS in a new process; (exit code, stderr), or the process if not `wait`."
    cmd = [sys.executable, '-m', 'sarvlm.train', *ARGS, '--out', str(out), *extra]
    p = subprocess.Popen(cmd, cwd=ROOT, env=dict(ENV, **(env or {})), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if not wait: return p
    _, err = p.communicate(timeout=120)
    return p.returncode, err

def train_here(out, *extra):
    "The same run as `train`, through `sarvlm.train.main` in this process (for runs that are not interrupted)."
    from sarvlm.train import main
    main([*ARGS, '--out', str(out), *extra])

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
    train_here(out)
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
    train_here(tmp_path, '--resume', 'latest')
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
    train_here(tmp_path, '--resume', 'latest')
    check_same(reference, tmp_path)

# --- interruptions through the console script, SIGINT, and the global RNG -------------------------------------------
BIN = Path(sys.executable).parent

def console(out, *extra, env=None, wait=True):
    "`sarvlm_train` (the installed console script, else `python -m sarvlm.cli_train`) with ARGS; it resumes by default."
    exe = [str(BIN/'sarvlm_train')] if (BIN/'sarvlm_train').is_file() else [sys.executable, '-m', 'sarvlm.cli_train']
    env = dict(ENV, PYTHONPATH=os.pathsep.join([str(ROOT), ENV.get('PYTHONPATH', '')]), **(env or {}))
    p = subprocess.Popen([*exe, *ARGS, '--out', str(out), *extra], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    if not wait: return p
    _, err = p.communicate(timeout=120)
    return p.returncode, err

def console_here(out) -> int:
    "The same command as `console`, through the console script's function (`sarvlm.cli_train.train_main`) in this process."
    from sarvlm.cli_train import train_main
    return train_main([*ARGS, '--out', str(out)])

def test_console_script_sigkill_then_resume(reference, tmp_path):
    "`sarvlm_train` killed right after step 8 (a step checkpoint), run again as it was: the uninterrupted run."
    rc, err = console(tmp_path, env={'SARVLM_TEST_KILL': 'step-8'})
    assert rc == -signal.SIGKILL, f'expected the run to die by SIGKILL, got rc={rc}: {err[-1000:]}'
    assert weights(tmp_path)['step'] == 8
    assert console_here(tmp_path) == 0   # the same command resumes (--resume latest by default)
    check_same(reference, tmp_path)

@pytest.mark.parametrize('step,saved', [(5, (0, 5)), (6, (1, 0))])  # 5: mid-epoch; 6: last batch of epoch 1 (after its checkpoint)
def test_sigint_at_step_then_resume(reference, tmp_path, step, saved):
    "SIGINT right after step k: exit 130, a checkpoint at step k saying where it is, and the resumed run is the uninterrupted one."
    rc, err = train(tmp_path, env={'SARVLM_TEST_KILL': f'step-{step}:SIGINT'})
    assert rc == 130, f'expected exit code 130, got {rc}: {err[-1500:]}'
    assert f"saved a resumable checkpoint at step {step} to {tmp_path/'latest.pt'}" in err and '--resume latest' in err, err
    ck = weights(tmp_path)
    assert (ck['step'], ck['epoch'], ck['epoch_step']) == (step, *saved)
    assert int(losses(tmp_path)[-1][0]) == step
    train_here(tmp_path, '--resume', 'latest')
    check_same(reference, tmp_path)

def test_console_script_external_sigint_then_resume(reference, tmp_path):
    "Ctrl-C sent to `sarvlm_train` from outside once 10 steps are logged: exit 130, a checkpoint at the step it stopped at."
    p, t0 = console(tmp_path, wait=False), time.time()
    while time.time() - t0 < 90 and p.poll() is None:
        if (tmp_path/'metrics.csv').exists() and len(losses(tmp_path)) >= 10: break
        time.sleep(0.005)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    if p.returncode == 0: pytest.skip('the run finished before it could be interrupted')
    assert p.returncode == 130, f'expected exit code 130, got {p.returncode}: {err[-1500:]}'
    last = int(losses(tmp_path)[-1][0])
    assert weights(tmp_path)['step'] == last and f'at step {last} to' in err and 'Traceback' not in err, err[-1500:]
    assert console_here(tmp_path) == 0   # the same command resumes
    check_same(reference, tmp_path)

def _patch_dropout_run(out, stop=None, resume=None) -> dict:
    "6 steps of SARCLIP-Tiny with patch dropout (its forward pass draws from torch's global RNG), checkpoints every 2 steps."
    from open_clip.transformer import PatchDropout
    from sarvlm.core import set_seed
    from sarvlm.models import create, unwrap_model
    from sarvlm.train import TrainConfig, RecordsDataset, toy_records, clip_learner, fit_clip, StopAfterStep
    set_seed(0); torch.set_num_threads(1)
    m, train_tf, _, tokenizer = create('SARCLIP-Tiny')
    m.visual.patch_dropout = PatchDropout(0.5)
    cfg = TrainConfig(model='SARCLIP-Tiny', epochs=2, batch_size=8, lr=1e-3, warmup=2, save_every=2, precision='fp32')
    learn = clip_learner(m, RecordsDataset(toy_records(24), train_tf, tokenizer), None, cfg, out, resume=resume, progress=False)
    if stop: learn.add_cb(StopAfterStep(stop))
    return {k: v.clone() for k, v in unwrap_model(fit_clip(learn).model).state_dict().items()}

def test_resume_restores_global_rng(tmp_path):
    "Resuming puts back the global RNG state of the checkpoint: without it, a model that draws from it diverges."
    a = _patch_dropout_run(tmp_path/'a')
    _patch_dropout_run(tmp_path/'b', stop=4)
    b = _patch_dropout_run(tmp_path/'b', resume='latest')
    d = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert d == 0.0, f'resumed weights differ by {d}'
