"""sarvlm.models: shipped configs, the factory, SAR-aware transforms, equivalence with plain open_clip."""
import json, os
from pathlib import Path
import numpy as np, pytest, torch, open_clip
from PIL import Image
import sarvlm.models as M

os.environ.setdefault('HF_HUB_OFFLINE', '1')

def test_configs_shipped_and_registered():
    shipped = sorted((Path(M.__file__).parent/'model_configs').glob('*.json'))
    assert [f.stem for f in shipped] == sorted(M.TINY_CONFIGS) == ['SARCLIP-Tiny', 'SARCap-Tiny']
    for f in shipped:   # the JSON files are the only source: TINY_CONFIGS is what they say
        name, cfg = f.stem, json.loads(f.read_text())
        assert M.TINY_CONFIGS[name] == cfg and M.read_configs(f.parent)[name] == cfg
        assert name in open_clip.list_models()
        assert open_clip.get_model_config(name)['embed_dim'] == cfg['embed_dim']

def test_create_returns_four_things():
    model, tr, ev, tokenizer = M.create('SARCap-Tiny')
    assert isinstance(model, open_clip.CoCa) and not model.training
    assert tokenizer(['a ship']).shape == (1, 32)
    with pytest.raises(ValueError, match='unknown model'): M.create('SARCLIP-Huge')

@pytest.mark.parametrize('name', ['SARCLIP-Tiny', 'SARCap-Tiny'])
def test_same_embeddings_as_plain_open_clip(name, tmp_path):
    torch.manual_seed(0)
    ours, _, pre, tokenizer = M.create(name)
    M.save_checkpoint(ours, tmp_path/'w.pt', name=name)
    ref, _, ref_pre = open_clip.create_model_and_transforms(name, pretrained=str(tmp_path/'w.pt'))
    ref.eval()
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (70, 90, 3), dtype=np.uint8))
    x = pre(img); assert torch.equal(x, ref_pre(img))
    t = tokenizer(['a SAR image of a ship in the harbour', 'an airport'])
    with torch.no_grad():
        assert torch.equal(ours.encode_image(x[None]), ref.encode_image(x[None]))
        assert torch.equal(ours.encode_text(t), ref.encode_text(t))
    ours2 = M.create(name, pretrained=tmp_path/'w.pt')[0]
    with torch.no_grad(): assert torch.equal(ours2.encode_image(x[None]), ref.encode_image(x[None]))

def test_sar_transform_uses_sar_normalize():
    from sarvlm.sar import normalize
    _, tr, ev, _ = M.create('SARCLIP-Tiny')
    I = np.random.default_rng(1).gamma(1, 0.05, (64, 64)).astype(np.float32)
    x = ev(Image.fromarray(I, mode='F'))
    mean, std = ev.base.transforms[-1].mean, ev.base.transforms[-1].std
    expect = (torch.from_numpy(normalize(I)) - mean[0]) / std[0]
    assert x.shape == (3, 64, 64) and torch.allclose(x[0], expect, atol=1e-5)
    assert torch.allclose(x[0]*std[0] + mean[0], x[1]*std[1] + mean[1], atol=1e-5)  # channels replicate one band
    assert tr(Image.fromarray(I, mode='F')).shape == (3, 64, 64)
    with pytest.raises(TypeError, match='expected a PIL image'): ev([1, 2, 3])

def test_speckle_resampling_keeps_mean_and_lowers_enl():
    I = np.full((256, 256), 0.2, np.float32)
    one = M.resample_speckle(I, looks=8, rng=0)
    assert abs(one.mean() - 0.2) < 0.005 and abs(one.mean()**2/one.var() - 8) < 0.6
    _, tr, _, _ = M.create('SARCLIP-Tiny', speckle_looks=4); tr.speckle_p = 1.0
    torch.manual_seed(0); a = tr(Image.fromarray(I, mode='F'))
    torch.manual_seed(0); b = tr(Image.fromarray(I, mode='F'))
    torch.manual_seed(1); c = tr(Image.fromarray(I, mode='F'))
    assert torch.equal(a, b) and not torch.equal(a, c)  # speckle draws follow torch's seed
