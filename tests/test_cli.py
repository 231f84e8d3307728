"""The command line end to end: the console scripts in real subprocesses (build tiny data -> train a stage for a few
steps under torchrun -> evaluate retrieval and zero-shot on its checkpoint -> JSON), plus in-process checks of conversions, config
files, resume and bad arguments. Everything is written under pytest's tmp_path (SARVLM_DATA/CACHE/RUNS/OUTPUTS)."""
import os, sys, json, shutil, socket, subprocess, importlib, importlib.metadata as md
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCRIPTS = {'sarvlm_data': 'data_main', 'sarvlm_train': 'train_main', 'sarvlm_eval': 'eval_main'}
MODULES = {'sarvlm_data': 'sarvlm.cli', 'sarvlm_train': 'sarvlm.cli_train', 'sarvlm_eval': 'sarvlm.cli_eval'}
SIZE = '20'   # sarvlm-mini scenes: the smallest build with every split non-empty at seed 0
TRAIN = ['--epochs', '2', '--batch-size', '8', '--lr', '1e-3', '--warmup', '2', '--precision', 'fp32', '--threads', '1', '--no-progress']

@pytest.fixture(scope='module')
def world(module_tmp):
    "A scratch project: a copy of data/ and empty cache, runs and outputs, set in the environment of this process and its children."
    t = module_tmp
    shutil.copytree(ROOT/'data', t/'data')
    env = dict(SARVLM_DATA=str(t/'data'), SARVLM_CACHE=str(t/'cache'), SARVLM_RUNS=str(t/'runs'), SARVLM_OUTPUTS=str(t/'outputs'),
               HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1', OMP_NUM_THREADS='1', PYTHONHASHSEED='0')
    mp = pytest.MonkeyPatch()
    for k, v in env.items(): mp.setenv(k, v)
    yield t
    mp.undo()

def free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def cmd(script:str) -> list:
    "The installed console script, or `python -m sarvlm.cli` (`cli_train`, `cli_eval`) where the package is not installed."
    exe = BIN/script
    return [str(exe)] if exe.is_file() else [sys.executable, '-m', MODULES[script]]

def main_of(script:str):
    "The function behind a console script: `main_of('sarvlm_train')` is `sarvlm.cli_train.train_main`."
    return getattr(importlib.import_module(MODULES[script]), SCRIPTS[script])

def start(script:str, *args):
    return subprocess.Popen([*cmd(script), *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

def finish(p, ok:int=0) -> str:
    out, err = p.communicate(timeout=300)
    assert p.returncode == ok, f"exit code {p.returncode} (expected {ok}) for {p.args}\n{out[-2000:]}\n{err[-3000:]}"
    return out + err

def run(script:str, *args, ok:int=0) -> str: return finish(start(script, *args), ok)

def test_console_scripts_declared():
    line = next(l for l in (ROOT/'settings.ini').read_text().splitlines() if l.startswith('console_scripts'))
    for s, f in SCRIPTS.items(): assert f"{s}={MODULES[s]}:{f}" in line
    try: eps = {e.name: e.value for e in md.entry_points(group='console_scripts') if e.name.startswith('sarvlm_')}
    except Exception: eps = {}
    if not eps: pytest.skip('sarvlm is not pip-installed here: console scripts not checked')
    for s, f in SCRIPTS.items(): assert eps.get(s) == f"{MODULES[s]}:{f}", eps

def test_help(capsys):
    "Each script's `--help` (through its function: the installed scripts run as processes in `test_end_to_end`)."
    outs = {}
    for s in SCRIPTS:
        assert main_of(s)(['--help']) == 0
        outs[s] = capsys.readouterr().out
    for s, out in outs.items():
        assert f"usage: {s}" in out and 'examples:' in out and 'exit codes:' in out, out[:500]
    assert '--batch-size' in outs['sarvlm_train']

def test_end_to_end(world):   # under `pytest -n 2`: one unit with tests/test_train_ddp.py (conftest.TOGETHER)
    w = world/'e2e'
    out = run('sarvlm_data', 'build', '--size', SIZE, '--format', 'hf', '--out', w/'mini')
    assert 'wrote hf' in out and (w/'mini'/'dataset_dict.json').is_file()
    # train through torchrun, 2 processes (gloo on CPU), running the console script itself: `torchrun $(which sarvlm_train)`
    torchrun = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_addr', '127.0.0.1', '--master_port', str(free_port())]
    target = [str(BIN/'sarvlm_train')] if (BIN/'sarvlm_train').is_file() else ['-m', 'sarvlm.cli_train']
    p = subprocess.Popen([*torchrun, *target, '--data', w/'mini', '--out', w/'stage', *TRAIN], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = finish(p)
    assert 'done: 8 steps' in out and '2 process(es)' in out, out   # 33 records, global batch 8: 4 steps x 2 epochs
    assert {'checkpoint.pt', 'latest.pt', 'metrics.csv', 'config.json', 'cli.json'} <= {p.name for p in (w/'stage').iterdir()}
    import torch
    ck = torch.load(w/'stage'/'checkpoint.pt', weights_only=True)
    assert ck['name'] == 'SARCLIP-Tiny' and ck['epoch'] == 2 and 'state_dict' in ck
    ps = [start('sarvlm_eval', 'retrieval', '--checkpoint', w/'stage'/'checkpoint.pt', '--data', w/'mini', '--out', w/'ret.json'),
          start('sarvlm_eval', 'zeroshot', '--checkpoint', w/'stage'/'checkpoint.pt', '--data', w/'mini', '--domain', 'sar',
                '--templates', 'sar_opt', '--out', w/'zs.json')]
    outs = [finish(p) for p in ps]
    assert 'mean_recall' in outs[0] and 'top1' in outs[1]
    ret, zs = json.loads((w/'ret.json').read_text()), json.loads((w/'zs.json').read_text())
    assert ret['task'] == 'retrieval' and ret['split'] == 'test_uni'
    m = ret['metrics']['all']
    assert m['pairs'] == 21 and 0 <= m['i2t_R@1'] <= m['i2t_R@5'] <= m['i2t_R@10'] <= 100 and 0 < m['mean_recall'] <= 100
    z = zs['metrics']
    assert zs['task'] == 'zeroshot' and zs['domain'] == 'sar' and zs['metrics']['templates'] == 'sar_opt'
    assert z['n'] == 7 and 0 <= z['top1'] <= z['top3'] <= z['top5'] <= 100 and len(z['confusion']) == len(z['classes'])
    # nothing was written into the repository's own folders
    assert not (ROOT/'runs'/'stage').exists() and (world/'cache'/'sarvlm-mini').is_dir()

def test_resume_and_config(world, capsys):
    "In-process: a YAML config, flags that win over it, and a second run that resumes and finds nothing left."
    from sarvlm.cli import data_main
    from sarvlm.cli_train import train_main
    w = world/'cfg'
    assert data_main(['build', '--size', SIZE, '--format', 'hf', '--out', str(w/'mini')]) == 0
    (w/'stage.yaml').write_text(f"data: {w/'mini'}\nout: {w/'stage'}\nepochs: 5\nbatch-size: 8\nlr: 0.001\nwarmup: 2\nprecision: fp32\nno_progress: true\n")
    assert train_main(['--config', str(w/'stage.yaml'), '--epochs', '1', '--domain', 'sar']) == 0
    cfg = json.loads((w/'stage'/'config.json').read_text())
    assert cfg['epochs'] == 1 and cfg['batch_size'] == 8 and cfg['lr'] == 1e-3
    rows = (w/'stage'/'metrics.csv').read_text().splitlines()
    assert train_main(['--config', str(w/'stage.yaml'), '--epochs', '1', '--domain', 'sar']) == 0
    assert (w/'stage'/'metrics.csv').read_text().splitlines() == rows  # resumed: finished, nothing retrained
    assert 'resuming from epoch 1' in capsys.readouterr().out
    (w/'bad.yaml').write_text('learning_rate: 1\n')
    assert train_main(['--config', str(w/'bad.yaml')]) == 2
    assert "unknown option 'learning_rate'" in capsys.readouterr().err

def test_same_as_sarvlm_train_main(world):
    "`sarvlm_train` wraps `sarvlm.train.main`: the same flags give the same weights (and it adds checkpoint.pt)."
    import torch
    from sarvlm.cli_train import train_main
    from sarvlm.train import main
    args = ['--data', 'toy:32', '--epochs', '1', '--batch-size', '8', '--lr', '1e-3', '--warmup', '2', '--seed', '3', '--no-progress']
    main([*args, '--out', str(world/'ref')])
    assert train_main([*args, '--out', str(world/'cli')]) == 0
    a, b = (torch.load(world/d/'latest.pt', weights_only=True)['state_dict'] for d in ('ref', 'cli'))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) == 0
    c = torch.load(world/'cli'/'checkpoint.pt', weights_only=True)['state_dict']
    assert all(torch.equal(c[k], b[k]) for k in b)

def test_transfer_stage(world, capsys, monkeypatch):
    "`sarvlm_train --stage`: a stage of 07_transfer's study (small recipe), written under SARVLM_RUNS, reused when run again."
    from sarvlm.cli_train import train_main
    monkeypatch.setenv('SARVLM_SMALL', '1')
    args = ['--stage', 'stage0_natural', '--experiment', 'cli-test', '--batch-size', '16', '--threads', '1']
    assert train_main(args) == 0
    d = world/'runs'/'cli-test'/'stage0_natural'           # stage 0 is shared by every seed: no -seed<k>
    m = json.loads((d/'metrics.json').read_text())
    assert (d/'checkpoint.pt').is_file() and m['stage'] == 'stage0_natural' and m['steps'] >= 1
    assert {'sar_zs_held_in', 'sar_zs_held_out', 'optical_zs', 'sar_retrieval_mr'} <= set(m)
    assert train_main(args) == 0                          # finished: reused, not retrained
    assert json.loads((d/'metrics.json').read_text()) == m
    assert f"stage folder {d}" in capsys.readouterr().out
    assert train_main([*args, '--data-size', '100']) == 2     # no fixed data set any more: a clear usage error
    assert '--data-size cannot be combined with --stage' in capsys.readouterr().err

def test_captioning(world, capsys):
    "In-process: train SARCap-Tiny (CoCa) a few steps with sarvlm_train, then `sarvlm_eval captioning`; a CLIP is refused."
    from sarvlm.cli import data_main
    from sarvlm.cli_train import train_main
    from sarvlm.cli_eval import eval_main
    w = world/'cap'
    assert data_main(['build', '--size', SIZE, '--format', 'hf', '--out', str(w/'mini')]) == 0
    assert train_main(['--model', 'SARCap-Tiny', '--data', str(w/'mini'), '--out', str(w/'stage'), '--epochs', '1', *TRAIN[2:]]) == 0
    ck = str(w/'stage'/'checkpoint.pt')
    assert eval_main(['captioning', '--checkpoint', ck, '--data', str(w/'mini'), '--domain', 'sar', '--decoding', 'greedy',
                      '--no-meteor', '--out', str(w/'cap.json')]) == 0
    r = json.loads((w/'cap.json').read_text())
    m = r['metrics']
    assert r['task'] == 'captioning' and m['n'] == 7 and m['METEOR'] is None and m['decoding'] == 'greedy'
    assert all(0 <= m[k] <= 1 for k in ('BLEU-1', 'BLEU-4', 'ROUGE-L')) and len(m['examples']) == 7
    capsys.readouterr()
    clip = world/'clip.pt'
    from sarvlm.models import create, save_checkpoint
    save_checkpoint(create('SARCLIP-Tiny')[0], clip, name='SARCLIP-Tiny')
    assert eval_main(['captioning', '--checkpoint', str(clip), '--data', str(w/'mini')]) == 1
    assert 'captioning needs a CoCa model' in capsys.readouterr().err

def test_localization(world, capsys):
    "In-process: SLM metrics on generated SAR scenes and on a COCO export of the tiny world's SAR test images."
    from sarvlm.cli import data_main
    from sarvlm.cli_eval import eval_main
    from sarvlm.models import create, save_checkpoint
    w = world/'loc'
    ck = save_checkpoint(create('SARCLIP-Tiny')[0], w/'clip.pt', name='SARCLIP-Tiny')
    assert eval_main(['localization', '--checkpoint', str(ck), '--scenes', '2', '--out', str(w/'scenes.json')]) == 0
    assert data_main(['build', '--size', SIZE, '--format', 'coco', '--out', str(w/'coco'), '--split', 'test', '--domain', 'sar']) == 0
    assert eval_main(['localization', '--checkpoint', str(ck), '--data', str(w/'coco'/'test'/'instances.json'), '--px-scale', '0.0625',
                      '--out', str(w/'coco.json')]) == 0
    for f in ('scenes.json', 'coco.json'):
        m = json.loads((w/f).read_text())['metrics']['per_class']['all']
        assert m['queries'] >= 1 and all(0 <= m[k] <= 1 for k in ('Rsu', 'Ras', 'Rda', 'Rmi')), m
    assert eval_main(['localization', '--checkpoint', str(ck), '--data', str(w/'coco'/'test'/'instances.json'), '--domain', 'optical']) == 2
    assert 'SAR images only' in capsys.readouterr().err

def images(ds) -> dict:
    "{image path: label} of records read from a SARVLM CSV (one row per caption)."
    return {json.loads(m)['imgpath']: l for m, l in zip(ds['meta'], ds['label'])}

def test_convert_csv_folders(world, capsys):
    "SARVLM CSV -> class folders -> CSV keeps the images and their labels."
    from sarvlm.formats import read_data
    from sarvlm.cli import data_main
    w = world/'conv'
    assert data_main(['build', '--size', SIZE, '--format', 'csv', '--out', str(w/'csv'), '--split', 'test', '--domain', 'sar']) == 0
    a = read_data(str(w/'csv'/'test.csv'))
    assert data_main(['convert', str(w/'csv'/'test.csv'), '--to', 'folders', '--out', str(w/'folders')]) == 0
    assert data_main(['convert', str(w/'folders'), '--to', 'csv', '--out', str(w/'csv2')]) == 0
    b = read_data(str(w/'csv2'/'data.csv'))
    ia, ib = images(a), images(b)
    assert len(ia) == len(ib) == len(list((w/'folders').rglob('*.tif'))) == 7   # the SAR test images of the tiny world
    assert sorted(ia.values()) == sorted(ib.values())                          # same labels
    assert set(a['domain']) == set(b['domain']) == {'sar'}
    assert data_main(['convert', str(w/'csv'/'test.csv'), '--to', 'hf', '--out', str(w/'hf')]) == 0
    hf = read_data(str(w/'hf'))   # grouped: one record per image, all its captions
    assert len(hf) == len(ia) and sum(map(len, hf['captions'])) == len(a)
    out = capsys.readouterr().out
    assert 'wrote folders' in out and 'wrote csv' in out

@pytest.mark.parametrize('script,args,code,msg', [
    ('eval', ['detect', '--checkpoint', 'x.pt'], 2, "invalid choice: 'detect'"),               # unknown task
    ('eval', ['retrieval', '--checkpoint', 'runs/none/missing.pt'], 2, 'no checkpoint file at runs/none/missing.pt'),
    ('eval', ['zeroshot', '--checkpoint', 'ViT-B-32'], 2, 'give --model too'),
    ('data', ['convert', 'no/such/data.csv', '--to', 'hf', '--out', 'x'], 2, 'no such file or folder: no/such/data.csv'),
    ('data', ['convert', 'data.csv', '--to', 'parquet', '--out', 'x'], 2, "argument --to: invalid choice: 'parquet'"),  # bad format
    ('data', ['build', '--size', '-3'], 2, 'argument --size: must be >= 10, got -3'),           # negative size
    ('data', ['build', '--img-size', 'big'], 2, "argument --img-size: expected an integer, got 'big'"),
    ('data', [], 2, 'the following arguments are required'),
    ('train', ['--data', 'mini'], 2, '--out required'),
    ('train', ['--config', 'no/such.yaml'], 2, 'argument --config: no such file: no/such.yaml'),
    ('train', ['--data', 'toy:8', '--out', 'o', '--epochs', '-'], 2, "argument --epochs: invalid int value: '-'"),
    ('train', ['--data', 'no/such/folder', '--out', 'o'], 2, 'no such file or folder: no/such/folder'),
])
def test_bad_arguments(world, capsys, script, args, code, msg):
    assert main_of(f'sarvlm_{script}')(args) == code
    err = capsys.readouterr().err
    assert msg in err and f'sarvlm_{script}' in err, err

def test_authors_formats(world, capsys):
    "Evaluate an authors'-style checkpoint (bare DDP state dict, no model name) on the authors' CSV and on class folders."
    import torch
    from sarvlm.cli import data_main
    from sarvlm.cli_eval import eval_main
    from sarvlm.models import create
    w = world/'authors'
    assert data_main(['build', '--size', SIZE, '--format', 'csv', '--out', str(w/'csv'), '--split', 'test', '--domain', 'sar']) == 0
    assert data_main(['convert', str(w/'csv'/'test.csv'), '--to', 'folders', '--out', str(w/'folders')]) == 0
    sd = {f'module.{k}': v for k, v in create('SARCLIP-Tiny')[0].state_dict().items()}
    torch.save({'state_dict': sd, 'epoch': 10}, w/'authors.pt')          # as open_clip_train under DDP: no 'name'
    ck = str(w/'authors.pt')
    assert eval_main(['retrieval', '--checkpoint', ck, '--data', str(w/'csv'/'test.csv')]) == 2   # needs --model
    assert 'does not store its model name: give --model' in capsys.readouterr().err
    assert eval_main(['retrieval', '--checkpoint', ck, '--model', 'SARCLIP-Tiny', '--data', str(w/'csv'/'test.csv'),
                      '--grouped', '--out', str(w/'ret.json')]) == 0
    m = json.loads((w/'ret.json').read_text())['metrics']
    assert m['all']['pairs'] == 35 and m['all (grouped by scene_id)']['pairs'] == 35   # 7 images x 5 caption rows
    assert m['all (grouped by scene_id)']['mean_recall'] >= m['all']['mean_recall']   # any caption of the image counts
    assert eval_main(['zeroshot', '--checkpoint', ck, '--model', 'SARCLIP-Tiny', '--data', str(w/'folders'),
                      '--templates', 'sar', '--workers', '2', '--out', str(w/'zs.json')]) == 0
    z = json.loads((w/'zs.json').read_text())['metrics']
    assert z['n'] == 7 and sorted(z['classes']) == sorted(p.name for p in (w/'folders').iterdir())

def test_bad_input_file(world, tmp_path, capsys):
    "A file that exists but cannot be used: exit code 1 and a message naming the file and line."
    from sarvlm.cli import data_main
    from sarvlm.cli_eval import eval_main
    import numpy as np
    from sarvlm.data import sar_image
    from sarvlm.files import save_image
    save_image(sar_image(np.ones((16, 16), np.float32)), tmp_path/'a.tif')
    (tmp_path/'tab.csv').write_text('imgpath\tcaption\na.tif\ta ship\n')
    assert data_main(['convert', str(tmp_path/'tab.csv'), '--to', 'hf', '--out', str(tmp_path/'o')]) == 1
    assert 'tab.csv: line 1' in capsys.readouterr().err
    (tmp_path/'junk.pt').write_text('not a checkpoint')   # what the file is, before the data: exit 2 (a bad argument)
    assert eval_main(['retrieval', '--checkpoint', str(tmp_path/'junk.pt'), '--model', 'SARCLIP-Tiny', '--data', str(tmp_path/'tab.csv'), '--sep', '\t']) == 2
    assert "junk.pt: not a readable checkpoint: it is a text file (it starts 'not a checkpoint')" in capsys.readouterr().err

# --- output locations checked before any work ----------------------------------------------------------------------
UNWRITABLE = {  # command -> arguments before --out (the checkpoint is any file: nothing is loaded before the check)
    'build': ('data', ['build', '--size', SIZE, '--format', 'csv']),
    'convert': ('data', ['convert', '{src}', '--to', 'hf']),
    'train': ('train', ['--data', 'toy:16', '--epochs', '1']),
    'eval': ('eval', ['retrieval', '--checkpoint', '{src}', '--model', 'SARCLIP-Tiny', '--data', '{src}']),
}

@pytest.mark.parametrize('kind', ['file', 'under_file', 'read_only'])
@pytest.mark.parametrize('command', list(UNWRITABLE))
def test_unwritable_out(world, tmp_path, capsys, monkeypatch, command, kind):
    "An --out that is a file, under a file or read-only: exit 2 at once, one line naming --out, the path and the problem."
    import time, sarvlm.core as core
    script, args = UNWRITABLE[command]
    src = tmp_path/'data.csv'; src.write_text('imgpath,caption\n')
    (tmp_path/'f').write_text('x'); (tmp_path/'ro').mkdir(); os.chmod(tmp_path/'ro', 0o555)
    leaf = 'r.json' if command == 'eval' else 'run'
    out = {'file': tmp_path/'f', 'under_file': tmp_path/'f'/leaf, 'read_only': tmp_path/'ro'/leaf}[kind]
    if command == 'eval' and kind == 'file': out = tmp_path   # a folder where a file is expected
    want = {'file': 'it is a folder; expected a file name' if command == 'eval' else 'it is a file; expected a folder',
            'under_file': f"{tmp_path/'f'} is a file, so no", 'read_only': f"cannot create files in {tmp_path/'ro'} (Permission denied)"}[kind]
    real = core._probe
    def denied(d):   # root writes in a read-only folder: there the probe fails as it would for anyone else
        if Path(d).resolve() == (tmp_path/'ro').resolve(): raise PermissionError(13, 'Permission denied')
        real(d)
    if kind == 'read_only' and os.geteuid() == 0: monkeypatch.setattr(core, '_probe', denied)
    t0 = time.perf_counter()
    try: code = main_of(f'sarvlm_{script}')([a.format(src=src) for a in args] + ['--out', str(out)])
    finally: os.chmod(tmp_path/'ro', 0o755)
    o, err = capsys.readouterr()
    assert code == 2 and f"sarvlm_{script}: error: --out {out}: {want}" in err, err
    assert 'Traceback' not in err and o == '' and time.perf_counter() - t0 < 5   # nothing loaded, nothing printed

def test_eval_writes_json_before_printing(tmp_path, monkeypatch):
    "`report` writes --out before it prints the results: a run that shows results has saved them."
    import io, types, pandas as pd
    from sarvlm.cli_eval import report
    out, seen = tmp_path/'r.json', []
    class Watch(io.StringIO):
        def write(self, s): seen.append(out.is_file()); return super().write(s)
    monkeypatch.setattr(sys, 'stdout', Watch())
    a = types.SimpleNamespace(checkpoint='c.pt', model=None, data='mini', split='test', domain=None, kind=None, out=str(out))
    report('retrieval', a, pd.DataFrame({'R@1': [1.0]}), {'R@1': 1.0}, 0.0)
    assert seen and all(seen) and json.loads(out.read_text())['metrics'] == {'R@1': 1.0}

def test_zeroshot_without_labels_is_a_usage_error(world, tmp_path, capsys):
    "A SARVLM CSV of captions only (the authors' val_uni layout): exit 2 and what to give, not top-1 100."
    import numpy as np, torch
    from sarvlm.cli_eval import eval_main
    from sarvlm.data import sar_image
    from sarvlm.files import save_image
    from sarvlm.models import create
    rows = ['imgpath,caption']
    for i in range(4):
        save_image(sar_image(np.random.default_rng(i).gamma(1, 1, (32, 32)).astype(np.float32)), tmp_path/f'{i}.tif')
        rows.append(f'{i}.tif,a SAR image of a ship number {i}')
    (tmp_path/'val_uni.csv').write_text('\n'.join(rows) + '\n')
    torch.save({'state_dict': create('SARCLIP-Tiny')[0].state_dict(), 'epoch': 1}, tmp_path/'w.pt')
    code = eval_main(['zeroshot', '--checkpoint', str(tmp_path/'w.pt'), '--model', 'SARCLIP-Tiny',
                      '--data', str(tmp_path/'val_uni.csv'), '--out', str(tmp_path/'zs.json')])
    err = capsys.readouterr().err
    assert code == 2, err
    assert 'no class labels were found' in err and "'label' column" in err and 'class folders' in err, err
    assert not (tmp_path/'zs.json').exists()
