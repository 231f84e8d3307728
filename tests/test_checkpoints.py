"""Checkpoint formats, bad checkpoints, malicious pickles and TorchScript archives that would run code."""
import os, pickle, re, sys, subprocess, warnings
from pathlib import Path
import pytest, torch, open_clip
import sarvlm.models as models
import sarvlm.checkpoint_files as ckfiles
from sarvlm.checkpoint_files import CheckpointError
from sarvlm.models import (create, load_checkpoint, save_checkpoint, read_checkpoint, convert_torchscript,
                           save_safetensors)
sys.path.insert(0, str(Path(__file__).parent))
from bad_checkpoints import write_cases, markers, torchscript_bytes, TS_REFUSED

os.environ.setdefault('HF_HUB_OFFLINE', '1')

@pytest.fixture(scope='module')
def tiny():
    torch.manual_seed(0)
    return create('SARCLIP-Tiny')[0]

def fresh(name='SARCLIP-Tiny'): return open_clip.create_model(name)
def same(a, b): return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))

def write_formats(model, d:Path):
    sd = model.state_dict()
    save_checkpoint(model, d/'train.pt', name='SARCLIP-Tiny', epoch=3, optimizer={}, step=7)
    torch.save({'epoch': 1, 'state_dict': {'module.' + k: v for k, v in sd.items()}}, d/'ddp.pt')
    torch.save(sd, d/'raw.pth'); torch.save({'model': sd}, d/'model.bin')
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in sd.items()}, str(d/'w.safetensors'))
    return ['train.pt', 'ddp.pt', 'raw.pth', 'model.bin', 'w.safetensors']

def test_all_formats_load_strictly(tiny, tmp_path):
    for f in write_formats(tiny, tmp_path):
        m = fresh(); rep = load_checkpoint(m, tmp_path/f)
        assert rep.ok and rep.loaded == len(tiny.state_dict()), str(rep)
        assert same(m, tiny), f

def test_torchscript_refused_then_converted_when_trusted(tmp_path):
    "A harmless TorchScript archive is refused too (with the conversion command); converted with trust_code it loads."
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        js = open_clip.create_model('SARCLIP-Tiny', jit=True); torch.jit.save(js, str(tmp_path/'ViT-openai.pt'))
    with pytest.raises(CheckpointError, match=re.escape(TS_REFUSED) + '.*convert_torchscript.*trust_code=True'):
        load_checkpoint(fresh(), tmp_path/'ViT-openai.pt')
    with pytest.raises(CheckpointError, match='pass trust_code=True only if you trust'):
        convert_torchscript(tmp_path/'ViT-openai.pt', tmp_path/'w.safetensors')
    assert not (tmp_path/'w.safetensors').exists()
    convert_torchscript(tmp_path/'ViT-openai.pt', tmp_path/'w.safetensors', trust_code=True, name='SARCLIP-Tiny')
    m = fresh(); rep = load_checkpoint(m, tmp_path/'w.safetensors')
    assert rep.format == 'safetensors' and rep.ok
    assert all(torch.equal(m.state_dict()[k], v) for k, v in js.state_dict().items() if k in m.state_dict())
    assert read_checkpoint(tmp_path/'w.safetensors')[0]['name'] == 'SARCLIP-Tiny'
    m2 = fresh(); assert load_checkpoint(m2, tmp_path/'ViT-openai.pt', trust_code=True).format == 'torchscript' and same(m, m2)

def test_safetensors_export_is_read_by_open_clip(tiny, tmp_path):
    save_safetensors(tiny, tmp_path/'w.safetensors', name='SARCLIP-Tiny')
    assert same(open_clip.create_model('SARCLIP-Tiny', pretrained=str(tmp_path/'w.safetensors')), tiny)
    from sarvlm.models import checkpoint_model_name
    assert checkpoint_model_name(tmp_path/'w.safetensors') == 'SARCLIP-Tiny'

def test_plain_open_clip_reads_ours(tiny, tmp_path):
    save_checkpoint(tiny, tmp_path/'epoch_1.pt', name='SARCLIP-Tiny', epoch=1)
    ref = open_clip.create_model('SARCLIP-Tiny', pretrained=str(tmp_path/'epoch_1.pt'))
    assert same(ref, tiny)
    ck = torch.load(tmp_path/'epoch_1.pt', weights_only=True)
    assert {'epoch', 'name', 'state_dict'} <= set(ck) and ck['name'] == 'SARCLIP-Tiny'

def test_strict_refuses_partial_and_reports_keys(tiny, tmp_path):
    sd = {k: v for k, v in tiny.state_dict().items() if not k.startswith('transformer.')}
    sd['extra.weight'] = torch.zeros(2)
    torch.save(sd, tmp_path/'partial.pt')
    with pytest.raises(ValueError, match=r'missing \(\d+\): transformer\.'): load_checkpoint(fresh(), tmp_path/'partial.pt')
    with pytest.raises(ValueError, match=r'unexpected \(1\): extra.weight'): load_checkpoint(fresh(), tmp_path/'partial.pt')
    rep = load_checkpoint(fresh(), tmp_path/'partial.pt', strict=False)
    assert not rep.ok and rep.unexpected == ['extra.weight'] and all(k.startswith('transformer.') for k in rep.missing)
    assert 'transformer.' in str(rep) and 'missing' in str(rep)

def test_wrong_architecture_and_shapes(tiny, tmp_path):
    torch.save(fresh('SARCap-Tiny').state_dict(), tmp_path/'coca.pt')
    with pytest.raises(ValueError, match='does not match'): load_checkpoint(fresh(), tmp_path/'coca.pt')
    sd = dict(tiny.state_dict()); sd['text_projection'] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match='mismatched'): load_checkpoint(fresh(), sd)
    rep = load_checkpoint(fresh(), sd, strict=False)
    assert rep.mismatched == [('text_projection', (3, 3), tuple(tiny.text_projection.shape))]
    # a position-embedding table of another width: open_clip's resize asserts; we name the key instead
    for k in ('positional_embedding', 'visual.positional_embedding'):
        odd = {**tiny.state_dict(), k: torch.zeros(7, tiny.state_dict()[k].shape[1] + 1)}
        with pytest.raises(ValueError, match=f'mismatched.*{k}'): load_checkpoint(fresh(), odd)

class Evil:
    def __reduce__(self): return (os.system, ('touch "$SARVLM_PWNED"',))

def test_malicious_pickle_is_refused(tiny, tmp_path, monkeypatch):
    flag = tmp_path/'pwned'; monkeypatch.setenv('SARVLM_PWNED', str(flag))
    for i, payload in enumerate([Evil(), {'state_dict': Evil()}, {'model': {'w': Evil()}}]):
        p = tmp_path/f'evil{i}.pt'
        with open(p, 'wb') as f: pickle.dump(payload, f)
        with pytest.raises(ValueError, match='refused.*would run code'): load_checkpoint(tiny, p)
        torch.save(payload, tmp_path/f'evil_zip{i}.pt')   # the torch.save (zip) flavour too
        with pytest.raises(ValueError, match=f'refused.*would run code.*imports {os.system.__module__}.system'):
            load_checkpoint(tiny, tmp_path/f'evil_zip{i}.pt')
    assert not flag.exists(), 'the malicious pickle ran code'

def test_bad_files(tiny, tmp_path):
    with pytest.raises(FileNotFoundError, match='no checkpoint'): load_checkpoint(tiny, tmp_path/'missing.pt')
    torch.save(tiny.state_dict(), tmp_path/'ok.pt')
    (tmp_path/'trunc.pt').write_bytes((tmp_path/'ok.pt').read_bytes()[:4096])
    with pytest.raises(ValueError, match='trunc.pt: not a readable checkpoint: it is a truncated or corrupt zip archive'):
        load_checkpoint(tiny, tmp_path/'trunc.pt')
    (tmp_path/'junk.safetensors').write_bytes(b'not safetensors')
    with pytest.raises(ValueError, match="not a readable safetensors file: it is a text file"):
        load_checkpoint(tiny, tmp_path/'junk.safetensors')
    (tmp_path/'text.pt').write_text('hello')
    with pytest.raises(ValueError, match=re.escape("text.pt: not a readable checkpoint: it is a text file (it starts 'hello')")):
        load_checkpoint(tiny, tmp_path/'text.pt')
    torch.save([1, 2, 3], tmp_path/'list.pt')
    with pytest.raises(TypeError, match='dict of tensors'): load_checkpoint(tiny, tmp_path/'list.pt')
    torch.save({'a': 1}, tmp_path/'notensors.pt')
    with pytest.raises(TypeError, match='not tensors'): load_checkpoint(tiny, tmp_path/'notensors.pt')

def test_resume_needs_a_training_checkpoint(tiny, tmp_path):
    from sarvlm.train import _load_resume
    torch.save(tiny.state_dict(), tmp_path/'weights.pt')
    with pytest.raises(ValueError, match='not a sarvlm training checkpoint'): _load_resume(tmp_path, tmp_path/'weights.pt')
    assert _load_resume(tmp_path, 'latest') is None  # nothing to resume: start fresh

# --- the corpus of bad and hostile files (tests/bad_checkpoints.py) ----------------------------------------------

@pytest.fixture(scope='module')
def corpus(module_tmp):
    d = module_tmp/'corpus'
    return d, write_cases(d)

def outcome(load, path, folder) -> str:
    "'ok', or the error message; an 'AssertionError' naming the marker when code from the file ran."
    try: load(path); got = 'ok'
    except (ValueError, TypeError, FileNotFoundError) as e: got = str(e)
    assert not markers(folder), f'{path.name}: code from the file ran (markers: {markers(folder)})'
    return got

def refused_without_running(load, path, folder, msg) -> str|None:
    "None when `load(path)` fails with `msg` and runs no code from the file; else what went wrong."
    try: got = outcome(load, path, folder)
    except AssertionError as e: return str(e)
    return None if msg in got else f'{path.name}: not refused with {msg!r}: {got[:300]}'

def test_the_torchscript_case_is_really_malicious(tmp_path):
    "Plain torch.jit.load on the corpus' TorchScript archive writes the marker: refusing it is meaningful."
    (tmp_path/'markers').mkdir(); (tmp_path/'evil.pt').write_bytes(torchscript_bytes(tmp_path/'markers'/'torchscript'))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); torch.jit.load(str(tmp_path/'evil.pt'))
    assert markers(tmp_path) == ['torchscript']

def test_corpus_read_checkpoint(corpus):
    d, cases = corpus
    for name, (want, msg) in cases.items():
        got = outcome(read_checkpoint, d/name, d)
        if want == 'ok': assert got == 'ok', f'{name}: {got}'
        else: assert msg in got and got.startswith(str(d/name)), f'{name}: expected {msg!r}, got {got!r}'

def test_corpus_load_checkpoint_refuses_code(corpus, tiny):
    d, cases = corpus
    for name, (want, msg) in cases.items():
        if want == 'refused': assert refused_without_running(lambda p: load_checkpoint(tiny, p), d/name, d, msg) is None

def test_mutation_guards_removed_the_check_fails(corpus, tiny, monkeypatch):
    "With the guards patched away the same check reports a failure: the TorchScript test bites."
    d, _ = corpus
    load = lambda p: load_checkpoint(tiny, p)
    # 1. the archive classifier calls TorchScript a plain torch zip (and the pickle scan sees nothing): no refusal
    monkeypatch.setattr(ckfiles, 'classify_checkpoint', lambda p: ('torch-zip', 'archive/data.pkl'))
    monkeypatch.setattr(ckfiles, '_unsafe_globals', lambda p, k: [])
    assert 'not refused' in (refused_without_running(load, d/'evil_torchscript.pt', d, TS_REFUSED) or '')
    assert not markers(d)   # torch.load(weights_only=True) itself still declines TorchScript
    # 2. the file check lets TorchScript through (as trust_code does): the code runs and the check says so
    monkeypatch.setattr(models, 'check_checkpoint_file', lambda p, trust_code=False: 'torchscript')
    try: assert 'code from the file ran' in (refused_without_running(load, d/'evil_torchscript.pt', d, TS_REFUSED) or '')
    finally:
        for p in (d/'markers').iterdir(): p.unlink()

# --- the console scripts: refusal or "what it is", exit 2, no traceback, with or without --model -------------------

CLI_CASES = {'evil_torchscript.pt': TS_REFUSED, 'evil_torchscript.bin': TS_REFUSED, 'code_folder.pt': 'carries code',
             'evil_torch_zip.pt': 'would run code', 'legacy_truncated.pt': 'cannot read', 'truncated.pt': 'truncated or corrupt zip',
             'text.pt': "it is a text file (it starts 'hello')", 'empty.pt': 'empty file (0 bytes)', 'folder.pt': 'is a directory'}

FOUND_WHEN_LOADING = {'legacy_truncated.pt'}   # its first bytes are those of a good file: found when torch.load reads it

@pytest.mark.parametrize('model', [[], ['--model', 'SARCLIP-Tiny']])
def test_eval_refuses_before_anything(corpus, capsys, model):
    "The checkpoint is classified before the data is read (the data named here does not exist) or a model is built."
    from sarvlm.cli_eval import eval_main
    d, _ = corpus
    for name, msg in CLI_CASES.items():
        data = 'mini' if name in FOUND_WHEN_LOADING else str(d/'no-such-data')   # the file is checked first
        code = eval_main(['retrieval', '--checkpoint', str(d/name), '--data', data, *model])
        err = capsys.readouterr().err
        assert code == 2 and msg in err and 'Traceback' not in err and 'does not store its model name' not in err, (name, err)
        assert not markers(d), name

def test_train_init_refuses_before_anything(corpus, capsys, tmp_path):
    from sarvlm.cli_train import train_main
    d, _ = corpus
    for i, (name, msg) in enumerate(CLI_CASES.items()):
        code = train_main(['--data', 'toy:8', '--out', str(tmp_path/f'o{i}'), '--init', str(d/name), '--epochs', '1', '--no-progress'])
        err = capsys.readouterr().err
        assert code == 2 and f'--init {d/name}: ' in err and msg in err and 'Traceback' not in err, (name, err)
        assert not markers(d), name

def test_console_scripts_refuse_the_malicious_archive(corpus, tmp_path):
    """An installed script in a real process: exit 2, the refusal on stderr, no traceback, no marker. (`sarvlm_train
    --init` refuses the same archives through its function above; a process start costs ~7 s of imports.)"""
    d, _ = corpus
    bin_ = Path(sys.executable).parent
    runs = [('sarvlm_eval', ['retrieval', '--checkpoint', str(d/'evil_torchscript.pt'), '--data', 'mini'])]
    for script, args in runs:
        exe = [str(bin_/script)] if (bin_/script).is_file() else [sys.executable, '-m', {'sarvlm_data': 'sarvlm.cli'}.get(script, script.replace('sarvlm_', 'sarvlm.cli_'))]
        p = subprocess.run([*exe, *args], capture_output=True, text=True, timeout=300)
        assert p.returncode == 2 and TS_REFUSED in p.stderr and 'Traceback' not in p.stderr, (script, p.stderr[-2000:])
    assert not markers(d)
