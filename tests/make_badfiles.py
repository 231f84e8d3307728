"""Write the corpus of broken and unusual SAR files under tests/badfiles/ (deterministic: same bytes every run).

    python tests/make_badfiles.py [OUTPUT_DIR]

Each file is named after what is odd about it; tests/test_sar_files.py says what `sarvlm.sario.read_sar` must do
with each one (read it and give the expected values, or raise ValueError/FileNotFoundError naming the file and
the problem). The files are small (a few KiB in all) and are committed; rerun this script only to regenerate them.
"""
import io, json, shutil, sys
from pathlib import Path
import numpy as np
import tifffile
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bad_data import bomb_png, bomb_tif    # headers that claim a huge image (a few dozen bytes)


def _png(a, mode=None, **kw) -> bytes:
    b = io.BytesIO(); (Image.fromarray(a, mode) if mode else Image.fromarray(a)).save(b, 'PNG', **kw)
    return b.getvalue()


def _tif(a, **kw) -> bytes:
    b = io.BytesIO(); tifffile.imwrite(b, a, **kw); return b.getvalue()


def _desc(**kw) -> str: return json.dumps(kw)


def files() -> dict:
    "name -> bytes (or None for a directory) of every file in the corpus."
    rng = np.random.default_rng(2024)
    u8 = (rng.random((32, 32)) * 255).astype(np.uint8)
    f32 = (rng.exponential(0.1, (32, 32))).astype(np.float32)
    good_png, good_tif = _png(u8), _tif(f32)
    some_inf = f32.copy(); some_inf[0, :3] = np.inf; some_inf[1, :2] = np.nan
    neg = f32.copy(); neg[5, 5] = -0.5
    z = ((rng.standard_normal((16, 16)) + 1j * rng.standard_normal((16, 16))) * 0.1).astype(np.complex64)
    iq = np.stack([np.round(z.real * 1000), np.round(z.imag * 1000)], -1).astype(np.int16)
    dual_db = np.stack([np.full((8, 8), -10., np.float32), np.full((8, 8), -20., np.float32)], -1)
    pal = Image.fromarray(u8).convert('P'); pb = io.BytesIO(); pal.save(pb, 'PNG')
    jb = io.BytesIO(); Image.fromarray(u8).save(jb, 'JPEG', quality=90); jpg = jb.getvalue()
    return {
        'empty.png': b'',                                                      # zero bytes
        'truncated.png': good_png[:len(good_png) // 2],                        # cut in the middle of IDAT
        'truncated.tif': good_tif[:len(good_tif) // 2],                        # strip data cut
        'truncated.jpg': jpg[:len(jpg) // 2],
        'garbage_after_header.tif': b'II*\x00' + bytes(rng.integers(0, 256, 200, dtype=np.uint8)),
        'png_with_tif_extension.tif': _png(np.full((4, 6), 9, np.uint8)),      # wrong extension, valid content
        'one_pixel.png': _png(np.full((1, 1), 7, np.uint8)),                   # 1x1 image
        'all_nan.tif': _tif(np.full((8, 8), np.nan, np.float32)),
        'some_inf_nan.tif': _tif(some_inf),                                    # 3 inf + 2 NaN
        'negative_intensity.tif': _tif(neg),                                   # linear intensity with a negative value
        'complex_as_intensity.tif': _tif(z, description=_desc(kind='intensity')),  # SLC labelled as intensity
        'slc_complex64.tif': _tif(z),                                          # a proper SLC
        'iq_int16.tif': _tif(iq, photometric='minisblack', planarconfig='contig', description=_desc(kind='complex')),
        'iq_int16_no_kind.tif': _tif(iq, photometric='minisblack', planarconfig='contig'),  # I/Q without saying so
        'dual_pol_db.tif': _tif(dual_db, photometric='minisblack', planarconfig='contig', description=_desc(kind='db', bands=['VV', 'VH'])),
        'many_bands.tif': _tif(np.arange(8 * 8 * 12, dtype=np.float32).reshape(8, 8, 12), photometric='minisblack', planarconfig='contig'),
        'stack_4d.tif': _tif(np.ones((2, 3, 8, 8), np.float32), photometric='minisblack'),              # too many dimensions
        'flat_uint16.png': _png(np.full((8, 8), 1000, np.uint16)),             # 16-bit, no dynamic range
        'uint16_dn.tif': _tif(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000),
        'rgb_grey.png': _png(np.repeat(u8[:8, :8, None], 3, -1)),             # grey chip saved as RGB
        'palette.png': pb.getvalue(),                                          # palette image
        'unknown_kind.tif': _tif(f32[:4, :4], description=_desc(kind='sigma_nought')),
        'overflow_float64.tif': _tif(np.full((4, 4), 1e300, np.float64)),     # finite float64, inf as float32
        'not_an_image.tif': b'this is a text file, not an image\n',
        'notes.txt': b'plain text with a text extension\n',
        'bomb_12000x12000_uint16.png': bomb_png(12000, 12000),                # 144 megapixels claimed: refused from the header
        'bomb_20000x20000_zlib.tif': bomb_tif(20000, 20000),                  # 400 megapixels claimed (was a raw MemoryError)
        'directory.tif': None,                                                 # a directory named like an image
    }


def main(out=HERE / 'badfiles'):
    out = Path(out); out.mkdir(parents=True, exist_ok=True)
    for name, data in files().items():
        p = out / name
        if data is None:
            if p.is_file(): p.unlink()
            p.mkdir(exist_ok=True); (p / 'keep.txt').write_bytes(b'a directory named like an image file\n')
        else:
            if p.is_dir(): shutil.rmtree(p)
            p.write_bytes(data)
    return out


if __name__ == '__main__':
    print('wrote', main(*sys.argv[1:]))
