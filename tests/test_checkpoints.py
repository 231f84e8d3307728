"""Checkpoint formats, bad checkpoints and malicious pickles."""
import os, pickle, warnings
from pathlib import Path
import pytest, torch, open_clip
from sarvlm.models import create, load_checkpoint, save_checkpoint, read_checkpoint

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

def test_torchscript(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        js = open_clip.create_model('SARCLIP-Tiny', jit=True); torch.jit.save(js, str(tmp_path/'ViT-openai.pt'))
    m = fresh(); rep = load_checkpoint(m, tmp_path/'ViT-openai.pt')
    assert rep.format == 'torchscript' and rep.ok
    assert all(torch.equal(m.state_dict()[k], v) for k, v in js.state_dict().items() if k in m.state_dict())

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
        with pytest.raises(ValueError, match='refused'): load_checkpoint(tiny, tmp_path/f'evil_zip{i}.pt')
    assert not flag.exists(), 'the malicious pickle ran code'

def test_bad_files(tiny, tmp_path):
    with pytest.raises(FileNotFoundError, match='no checkpoint'): load_checkpoint(tiny, tmp_path/'missing.pt')
    torch.save(tiny.state_dict(), tmp_path/'ok.pt')
    (tmp_path/'trunc.pt').write_bytes((tmp_path/'ok.pt').read_bytes()[:4096])
    with pytest.raises(ValueError, match='not a readable'): load_checkpoint(tiny, tmp_path/'trunc.pt')
    (tmp_path/'junk.safetensors').write_bytes(b'not safetensors')
    with pytest.raises(ValueError, match='not a readable safetensors'): load_checkpoint(tiny, tmp_path/'junk.safetensors')
    (tmp_path/'text.pt').write_text('hello')
    with pytest.raises(ValueError): load_checkpoint(tiny, tmp_path/'text.pt')
    torch.save([1, 2, 3], tmp_path/'list.pt')
    with pytest.raises(TypeError, match='dict of tensors'): load_checkpoint(tiny, tmp_path/'list.pt')
    torch.save({'a': 1}, tmp_path/'notensors.pt')
    with pytest.raises(TypeError, match='not tensors'): load_checkpoint(tiny, tmp_path/'notensors.pt')

def test_resume_needs_a_training_checkpoint(tiny, tmp_path):
    from sarvlm.train import _load_resume
    torch.save(tiny.state_dict(), tmp_path/'weights.pt')
    with pytest.raises(ValueError, match='not a sarvlm training checkpoint'): _load_resume(tmp_path, tmp_path/'weights.pt')
    assert _load_resume(tmp_path, 'latest') is None  # nothing to resume: start fresh
