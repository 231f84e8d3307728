"""The reader's fast per-image path gives the tensors of the straightforward one, bit for bit.

The fast path: 8/16-bit pixels skip the float64 road in `read_sar`; whole-number images (8-bit DN, an
8-bit amplitude squared, 16-bit DN) are normalised through a table of their distinct values, with
percentiles from value counts; a one-band SAR image goes through the transform's crop/resize steps as one
channel, copied to three after. The reference below is the path as it was written before (float64
conversion, `np.nanpercentile`, `looks_calibrated`, three channels through open_clip's transform), kept
here on purpose. Compared on 8- and 16-bit PNG and TIFF, float intensity, amplitude and dB TIFFs, NaN
pixels, calibrated sarvlm-mini SAR images, edge cases (constant, all-zero, one pixel, -0.0) and RGB
optical images; every scheme; train (seeded, with and without speckle re-sampling) and eval transforms;
`RecordsDataset` items and batches, whose files a SAR-aware transform reads itself (one-band whole-number
files straight from their codes)."""
import json, warnings
from pathlib import Path
import numpy as np, pytest, torch, tifffile
from PIL import Image
from open_clip.transform import PreprocessCfg, image_transform_v2
import open_clip
from sarvlm import sar as S, sario
from sarvlm.files import load_image, lazy_dataset, save_image
from sarvlm.models import SARAwareTransform
from sarvlm.train import RecordsDataset, sample_seed, seeded_cpu_rng
from sarvlm.data import fresh_record

SCHEMES = [*S.NORM_SCHEMES, 'auto']

# ---------------------------------------------------------------- the reference (the straightforward path)
def ref_read(path) -> np.ndarray:
    "`read_sar`'s intensity through float64, as before the 8/16-bit shortcut."
    path = Path(path)
    fmt = sario._sniff(path)
    a, desc = sario._read_tiff(path) if fmt == 'tiff' else sario._read_pil(path, fmt)
    kind, _ = sario._resolve_kind(a, None, desc, path)
    x = np.where(np.isfinite(a), a, 0).astype(np.float64)
    if kind == 'db': return S.from_db(x)
    return (x ** 2 if kind == 'amplitude' else x).astype(np.float32)

def ref_to_db(x): return (10. * np.log10(np.maximum(np.asarray(x, np.float32), 1e-10))).astype(np.float32)

def ref_looks_calibrated(x) -> bool:
    v = x[np.isfinite(x) & (x > 0)]
    if v.size == 0: return True
    if np.all(v == np.round(v)): return False
    return bool(-40. <= np.median(ref_to_db(v)) <= 10.)

def ref_normalize(x, scheme:str) -> np.ndarray:
    "`normalize` of a 2-D image as it was written: every pixel through the scheme, `np.nanpercentile`."
    x = np.asarray(x, np.float32)
    if scheme == 'auto': scheme = 'db_clip' if ref_looks_calibrated(x) else 'db_pct'
    if scheme == 'minmax':
        lo, hi = np.nanmin(x), np.nanmax(x)
        y = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
        y = np.round(np.nan_to_num(y, nan=0.) * 255) / 255
    else:
        db = ref_to_db(x)
        if scheme in ('db_clip', 'db_window'):
            lo, hi = (-25., 5.) if scheme == 'db_clip' else (-25., 0.)
            y = (np.clip(db, lo, hi) - lo) / (hi - lo)
        elif scheme == 'db_pct':
            lo, hi = np.nanpercentile(db, (1., 99.), axis=(0, 1))
            y = (np.clip(db, lo, hi) - lo) / np.maximum(hi - lo, 1e-6)
        else:
            mu, sd = np.float32(-12.59), np.float32(5.26)
            y = (np.clip((db - mu) / sd, -3, 3) + 3) / 6
    return np.nan_to_num(y, nan=0.).astype(np.float32)

def ref_transform(tf:SARAwareTransform, img) -> torch.Tensor:
    "The record image through the transform as it was written: three channels through open_clip's steps."
    if not (isinstance(img, Image.Image) and img.mode == 'F'): return tf.base(img.convert('RGB'))
    y = ref_normalize(tf._speckle(np.asarray(img, np.float32)), tf.scheme)
    rgb = np.ascontiguousarray(np.repeat(y[..., None], 3, -1).transpose(2, 0, 1))
    return tf.base(torch.from_numpy(rgb))

def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), f"max |diff| {np.nanmax(np.abs(a - b))}"

# ---------------------------------------------------------------- inputs
def _speckle_dn(rng, shape, top=255, dt=np.uint8):
    return np.clip(np.sqrt(rng.exponential(1.0, shape)) * top / 4, 0, top).astype(dt)

@pytest.fixture(scope='module')
def files(module_tmp):
    "SAR image files of every kind the readers meet, and one RGB photo."
    rng, d = np.random.default_rng(0), module_tmp
    out = {}
    def png(name, a):
        Image.fromarray(a).save(d/f'{name}.png')
        out[name] = d/f'{name}.png'
    def tif(name, a, kind=None):
        tifffile.imwrite(d/f'{name}.tif', a, description=json.dumps({'kind': kind}) if kind else None)
        out[name] = d/f'{name}.tif'
    png('png8', _speckle_dn(rng, (256, 256)))
    png('png8_small', _speckle_dn(rng, (5, 7)))
    png('png8_const', np.full((16, 16), 37, np.uint8))
    png('png8_zero', np.zeros((16, 16), np.uint8))
    png('png16', _speckle_dn(rng, (64, 80), 65535, np.uint16))
    tif('tif8', _speckle_dn(rng, (48, 64)))
    tif('tif16', _speckle_dn(rng, (64, 48), 65535, np.uint16))
    tif('tif16_dn_intensity', _speckle_dn(rng, (40, 40), 65535, np.uint16), 'intensity')
    tif('tif16_small_intensity', _speckle_dn(rng, (40, 40), 900, np.uint16), 'intensity')
    tif('float_intensity', rng.exponential(0.05, (64, 64)).astype(np.float32))
    tif('float_uncalibrated', (rng.exponential(1., (64, 64)) * 3e4).astype(np.float32))
    tif('float_amplitude', np.sqrt(rng.exponential(0.05, (64, 64))).astype(np.float32), 'amplitude')
    tif('float_db', (10 * np.log10(rng.exponential(0.05, (64, 64)))).astype(np.float32), 'db')
    nan = rng.exponential(0.05, (32, 32)).astype(np.float32)
    nan[3, :5] = np.nan
    tif('float_nan', nan)
    mini = fresh_record(0, 'train', 0, 0, 'sar')['image']
    out['mini_saved'] = save_image(mini, d/'mini_saved')
    png('rgb', rng.integers(0, 256, (60, 70, 3)).astype(np.uint8))
    return out

@pytest.fixture(scope='module')
def sar_images(files):
    "Record images (PIL 'F'): every SAR file read, sarvlm-mini SAR records, edge cases."
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')   # the NaN file's 'set to 0' warning
        imgs = {k: load_image(p) for k, p in files.items() if k != 'rgb'}
    for i in range(3): imgs[f'mini{i}'] = fresh_record(0, 'train', 0, i, 'sar')['image']
    edge = {'one_pixel': [[9.]], 'neg_zero': [[0., -0.], [4., 1.]], 'zeros_f': np.zeros((4, 4)),
            'squares_f': np.arange(256.).reshape(16, 16) ** 2, 'big_whole': [[0., 70000.], [3., 1.]]}
    imgs.update({k: Image.fromarray(np.asarray(v, np.float32)) for k, v in edge.items()})
    return imgs

# ---------------------------------------------------------------- the tests
def test_the_fast_roads_are_taken(sar_images):
    "The comparisons below cover the table road (uint8 roots and uint16 values) and the direct one."
    kinds = {k: S._table_codes(np.asarray(im, np.float32)) for k, im in sar_images.items()}
    kind = lambda k: None if kinds[k] is None else kinds[k][0].dtype
    assert kind('png8') == kind('tif8') == kind('squares_f') == np.uint8
    assert kind('tif16_small_intensity') == np.uint16
    assert kind('float_intensity') is kind('tif16') is kind('neg_zero') is kind('big_whole') is None

def test_read_matches_reference(files):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for k, p in files.items():
            if k == 'rgb': continue
            same_bits(sario.read_sar(p)[0], ref_read(p))
            same_bits(np.asarray(load_image(p), np.float32), ref_read(p))

@pytest.mark.parametrize('scheme', SCHEMES)
def test_normalize_matches_reference(sar_images, scheme):
    for k, im in sar_images.items():
        same_bits(S.normalize(np.asarray(im, np.float32), scheme), ref_normalize(np.asarray(im), scheme))

@pytest.mark.parametrize('size', [64, 224])
def test_transform_matches_reference(sar_images, files, size):
    tr = image_transform_v2(PreprocessCfg(size=size), is_train=True, aug_cfg=dict(scale=(0.9, 1.0)))
    ev = image_transform_v2(PreprocessCfg(size=size), is_train=False)
    rgb = load_image(files['rgb'], 'optical')
    for scheme in SCHEMES:
        tfs = [SARAwareTransform(tr, scheme), SARAwareTransform(tr, scheme, speckle_looks=4, speckle_p=0.5),
               SARAwareTransform(ev, scheme)]
        for tf in tfs:
            for i, im in enumerate([*sar_images.values(), rgb]):
                with seeded_cpu_rng(100 + i): new = tf(im)
                with seeded_cpu_rng(100 + i): ref = ref_transform(tf, im)
                torch.testing.assert_close(new, ref, rtol=0, atol=0)

@pytest.mark.parametrize('looks', [4, None])   # None: whole-number files are normalised from their codes
def test_records_dataset_matches_reference(files, looks):
    names = ['png8', 'png16', 'tif8', 'tif16_small_intensity', 'float_intensity', 'mini_saved', 'rgb']
    recs = [dict(image=str(files[k]), caption=f'image {k}', label=k,
                 domain='optical' if k == 'rgb' else 'sar') for k in names]
    tr = image_transform_v2(PreprocessCfg(size=64), is_train=True, aug_cfg=dict(scale=(0.9, 1.0)))
    tf = SARAwareTransform(tr, 'auto', speckle_looks=looks)
    tokenizer = open_clip.get_tokenizer('SARCLIP-Tiny')
    ds = RecordsDataset(lazy_dataset(recs), tf, tokenizer, seed=7)
    batch = ds.__getitems__([(i, 2) for i in range(len(recs))])
    for i, k in enumerate(names):
        img = load_image(files[k], recs[i]['domain'])
        with seeded_cpu_rng(sample_seed(7, 2, i)): ref = ref_transform(tf, img)
        for got in (ds[(i, 2)][0], batch[i][0]):
            torch.testing.assert_close(got, ref, rtol=0, atol=0)

def test_files_read_as_codes(files):
    "One-band whole-number files are read as codes (8-bit amplitude: values code**2); no other file is."
    from sarvlm.files import ImageRef
    got = {k: ImageRef(str(p), 'optical' if k == 'rgb' else 'sar').codes() for k, p in files.items()}
    kind = {k: None if t is None else (t[0].dtype, t[1] is S._SQUARES) for k, t in got.items()}
    assert kind['png8'] == kind['tif8'] == kind['png8_zero'] == (np.uint8, True)
    assert kind['tif16_dn_intensity'] == kind['tif16_small_intensity'] == (np.uint16, False)
    for k in ('png16', 'tif16', 'float_intensity', 'float_db', 'float_nan', 'mini_saved', 'rgb'):
        assert kind[k] is None, k
    for k, t in got.items():
        if t is None: continue
        same_bits(t[0].astype(np.float32) if t[1] is None else t[1][t[0]], ref_read(files[k]))

def test_a_file_that_goes_bad_is_named(files, tmp_path):
    "A file damaged after the dataset was made: the codes road gives way, and `load_image` names the file."
    from sarvlm.files import ImageRef
    bad = tmp_path/'chip.png'
    bad.write_bytes(files['png8'].read_bytes()[:200])   # a cut PNG
    tr = image_transform_v2(PreprocessCfg(size=64), is_train=False)
    ds = RecordsDataset(lazy_dataset([dict(image=str(bad), caption='a chip', domain='sar')]),
                        SARAwareTransform(tr, 'auto'), open_clip.get_tokenizer('SARCLIP-Tiny'))
    assert isinstance(ds.rows[0]['image'], ImageRef)
    with pytest.raises(ValueError, match='chip.png'): ds[0]

# ---------------------------------------------------------------- the pieces of the faster path, one by one
def test_code_counts_match_bincount():
    "8-bit codes counted by PIL's histogram: np.bincount's counts (the table is 256 long, the codes the same)."
    rng = np.random.default_rng(3)
    cases = [rng.integers(0, 256, (64, 80)).astype(np.uint8), np.zeros((3, 4), np.uint8), np.full((2, 2), 255, np.uint8),
             np.array([[7]], np.uint8), rng.integers(0, 256, (40, 50)).astype(np.uint8)[::2, 1::3]]
    for c in cases:
        k = S._counts(c)
        assert k.dtype == np.intp and len(k) == 256
        np.testing.assert_array_equal(k, np.bincount(c.ravel(), minlength=256))
    c16 = rng.integers(0, 3000, (9, 9)).astype(np.uint16)
    np.testing.assert_array_equal(S._counts(c16), np.bincount(c16.ravel()))

def test_sar_images_without_copies(files):
    "A read image keeps the reader's array; its pixels are lent back as they are (NaN, -0.0 and all)."
    from sarvlm.data import sar_image, f_pixels, _own_sar_image
    x = np.array([[0., -0., np.nan, 1e-40], [3.5, np.inf, 65025., 1.]], np.float32)
    for a in (x, np.stack([x, x * 2], -1), np.asfortranarray(x)):
        im, ref = _own_sar_image(a.copy()), sar_image(a)
        assert (im.mode, im.size) == ('F', ref.size)
        same_bits(f_pixels(im), np.asarray(ref, np.float32))
        same_bits(f_pixels(ref), np.asarray(ref, np.float32))
        assert not f_pixels(im).flags.writeable
    im = _own_sar_image(x.copy())
    same_bits(np.asarray(im.copy(), np.float32), x)                       # PIL's own operations still work
    same_bits(np.asarray(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), np.float32), x[:, ::-1].copy())
    p = load_image(files['png8'])
    same_bits(f_pixels(p), ref_read(files['png8']))

def test_normalize_written_into_three_channels():
    "Normalize of one band copied to three: torchvision's numbers, bit for bit; other steps take the long road."
    from torchvision import transforms as T
    from sarvlm.models import _normalize_3
    t = torch.rand(1, 37, 29) * 1.3 - 0.1
    step = T.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
    got, ref = _normalize_3(step, t), step(t.expand(3, -1, -1).contiguous())
    assert got.is_contiguous() and got.shape == ref.shape
    torch.testing.assert_close(got, ref, rtol=0, atol=0)
    for other in (T.Normalize((0.5,), (0.5,)), T.Normalize((0.5,) * 3, (0.5,) * 3, inplace=True),
                  T.Normalize((0.5,) * 3, (0.5, 0., 0.5)), T.Resize(8)):
        assert _normalize_3(other, t) is None
    assert _normalize_3(step, t.to(torch.uint8)) is None
