"""read_sar on the bad-file corpus (tests/badfiles/, written by tests/make_badfiles.py).

Every file either reads with the expected values, or raises ValueError / FileNotFoundError whose message names the
file and the problem. No other exception type may escape (no bare PIL or tifffile traceback).
"""
import warnings
from pathlib import Path
import numpy as np
import pytest
from sarvlm.sar import normalize
from sarvlm.sario import read_sar

BAD = Path(__file__).resolve().parent / 'badfiles'

# name -> (kwargs, expected exception type or None, message fragment or a checker of (I, meta))
def _ok(shape, check): return (None, lambda I, m: (I.shape == shape and I.dtype == np.float32 and check(I, m)))

CASES = {
    'empty.png': ({}, ValueError, 'empty file'),
    'truncated.png': ({}, ValueError, 'cannot read PNG'),
    'truncated.tif': ({}, ValueError, 'cannot read TIFF'),
    'truncated.jpg': ({}, ValueError, 'cannot read JPEG'),
    'garbage_after_header.tif': ({}, ValueError, 'cannot read TIFF'),
    'all_nan.tif': ({}, ValueError, 'no finite pixel'),
    'negative_intensity.tif': ({}, ValueError, 'negative values'),
    'complex_as_intensity.tif': ({}, ValueError, 'complex (SLC) data'),
    'iq_int16_no_kind.tif': ({}, ValueError, "kind='complex'"),
    'stack_4d.tif': ({}, ValueError, 'too many dimensions'),
    'palette.png': ({}, ValueError, 'palette'),
    'unknown_kind.tif': ({}, ValueError, 'kind must be one of'),
    'overflow_float64.tif': ({}, ValueError, 'overflow'),
    'not_an_image.tif': ({}, ValueError, 'not a PNG, TIFF or JPEG'),
    'notes.txt': ({}, ValueError, 'not a PNG, TIFF or JPEG'),
    'directory.tif': ({}, ValueError, 'is a directory'),
    'missing.tif': ({}, FileNotFoundError, 'no such file'),
    'bomb_12000x12000_uint16.png': ({}, ValueError, 'is 12000x12000 = 144,000,000 pixels, more than the limit of 100,000,000'),
    'bomb_20000x20000_zlib.tif': ({}, ValueError, 'is 20000x20000 = 400,000,000 pixels, more than the limit of 100,000,000'),
    'png_with_tif_extension.tif': ({}, *_ok((4, 6), lambda I, m: np.all(I == 81) and m['extension_mismatch'] and m['format'] == 'png')),
    'one_pixel.png': ({}, *_ok((1, 1), lambda I, m: I[0, 0] == 49 and m['kind'] == 'amplitude' and not m['calibrated'])),
    'some_inf_nan.tif': ({}, *_ok((32, 32), lambda I, m: m['n_nonfinite'] == 5 and np.all(I[0, :3] == 0) and np.all(I[1, :2] == 0) and np.all(np.isfinite(I)))),
    'slc_complex64.tif': ({}, *_ok((16, 16), lambda I, m: m['kind'] == 'complex' and m['kind_source'] == 'dtype' and I.min() >= 0)),
    'iq_int16.tif': ({}, *_ok((16, 16), lambda I, m: m['kind'] == 'complex' and m['kind_source'] == 'metadata' and np.all(I == np.round(I)))),
    'dual_pol_db.tif': ({}, *_ok((8, 8, 2), lambda I, m: np.allclose(I[..., 0], 0.1) and np.allclose(I[..., 1], 0.01) and m['band_names'] == ['VV', 'VH'])),
    'many_bands.tif': ({}, *_ok((8, 8, 12), lambda I, m: I[0, 0, 11] == 11 and I[7, 7, 0] == 63 * 12 and m['bands'] == 12)),
    'flat_uint16.png': ({}, *_ok((8, 8), lambda I, m: np.all(I == 1e6) and m['dtype'] == 'uint16')),
    'uint16_dn.tif': ({}, *_ok((8, 8), lambda I, m: I[0, 1] == 1e6 and I[7, 7] == 63000.0 ** 2)),
    'rgb_grey.png': ({}, *_ok((8, 8), lambda I, m: m['bands'] == 1 and I.min() >= 0)),
}
# extra readings of corpus files with non-default arguments
EXTRA = [
    ('some_inf_nan.tif', dict(nonfinite='error'), ValueError, 'non-finite'),
    ('slc_complex64.tif', dict(kind='db'), ValueError, 'complex (SLC) data'),
    ('negative_intensity.tif', dict(kind='db'), None, lambda I, m: I.shape == (32, 32) and m['kind_source'] == 'caller'),
    ('iq_int16_no_kind.tif', dict(kind='complex'), None, lambda I, m: I.shape == (16, 16)),
    ('many_bands.tif', dict(kind='sigma'), ValueError, 'kind must be one of'),
    ('one_pixel.png', dict(nonfinite='drop'), ValueError, 'nonfinite must be'),
    ('uint16_dn.tif', dict(max_pixels=63), ValueError, 'is 8x8 = 64 pixels, more than the limit of 63'),
    ('flat_uint16.png', dict(max_pixels=63), ValueError, 'is 8x8 = 64 pixels, more than the limit of 63'),
    ('flat_uint16.png', dict(max_pixels=64), None, lambda I, m: I.shape == (8, 8)),
]


def _read(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return read_sar(path, **kw)


def _check(name, kw, exc, what):
    path = BAD / name
    if exc is None:
        I, meta = _read(path, **kw)
        assert what(I, meta), f'{name}: unexpected values or metadata {meta}'
        assert normalize(I).dtype == np.float32                         # and it goes through the model's input path
    else:
        with pytest.raises(exc) as e: _read(path, **kw)
        msg = str(e.value)
        assert name in msg, f'message does not name the file: {msg}'
        assert what in msg, f'message does not say {what!r}: {msg}'
        assert type(e.value) in (ValueError, FileNotFoundError)


@pytest.mark.parametrize('name', sorted(CASES))
def test_badfile(name): _check(name, *CASES[name])


@pytest.mark.parametrize('name,kw,exc,what', EXTRA)
def test_badfile_options(name, kw, exc, what): _check(name, kw, exc, what)


def test_corpus_covered_and_large_enough():
    on_disk = {p.name for p in BAD.iterdir()}
    assert on_disk == set(CASES) - {'missing.tif'}, f'corpus and table differ: {on_disk ^ (set(CASES) - {"missing.tif"})}'
    assert len(CASES) >= 15


def test_no_other_exception_escapes():
    for p in sorted(BAD.iterdir()) + [BAD / 'missing.tif']:
        for kw in ({}, dict(kind='intensity'), dict(kind='amplitude'), dict(kind='db'), dict(kind='complex'), dict(nonfinite='error')):
            try: _read(p, **kw)
            except (ValueError, FileNotFoundError) as e: assert p.name in str(e)
            except Exception as e: pytest.fail(f'{p.name} {kw}: {type(e).__name__} escaped: {e}')


def test_nonfinite_warns_with_file_name():
    with pytest.warns(UserWarning, match='some_inf_nan.tif: 5 non-finite'): read_sar(BAD / 'some_inf_nan.tif')


def test_corpus_is_reproducible(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location('make_badfiles', Path(__file__).resolve().parent / 'make_badfiles.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    out = mod.main(tmp_path / 'bf')
    for p in BAD.iterdir():
        q = out / p.name
        if p.is_dir(): assert q.is_dir()
        else: assert q.read_bytes() == p.read_bytes(), f'{p.name} differs from what make_badfiles.py writes'
