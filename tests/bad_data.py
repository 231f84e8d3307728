"""Write a corpus of malformed datasets, one folder per case, each with the outcome every reader must give.

    python tests/bad_data.py OUTPUT_DIR

Every case folder holds its input and a `case.json`:
    input    the path to read, relative to the case folder
    fmt      the reader: csv, coco, yolo, folders or hf
    kw       extra keyword arguments of the sarvlm.data reader (sep, domain, max_pixels)
    cli      the same as extra `sarvlm_data convert` options
    error    a fragment of the error raised without skip_bad / --skip-bad (None: the input reads)
    code     the exit status of `sarvlm_data convert` without --skip-bad (the documented contract: 1 when an
             input exists but cannot be used, 2 for a missing file)
    read     records read (with --skip-bad when `error` is set; None: --skip-bad does not help, the same error)
    skipped  rows / images / boxes skipped and counted with --skip-bad
    ignored  entries that are not data (hidden folders, stray files), ignored but counted
tests/test_bad_data.py runs every case through the Python API and through `sarvlm_data convert`. Nothing large is
written: the image bombs are headers that claim a huge size (a few dozen bytes); the only big file is the 4 MiB
CSV field that goes past the CSV field limit.
"""
import io, json, struct, sys, zlib
from pathlib import Path
import numpy as np
import tifffile
from PIL import Image

CSV_FIELD_LIMIT = 4 * 2**20      # sarvlm.files.CSV_FIELD_LIMIT (checked by the test)


def sar_tif(seed: int, side: int = 8) -> bytes:
    "A small float32 linear-intensity TIFF."
    b = io.BytesIO()
    a = np.random.default_rng(seed).exponential(1.0, (side, side)).astype(np.float32)
    tifffile.imwrite(b, a, description=json.dumps({'kind': 'intensity'}))
    return b.getvalue()


def rgb(fmt: str, seed: int = 0) -> bytes:
    b = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(b, fmt)
    return b.getvalue()


def _chunk(t: bytes, d: bytes) -> bytes: return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))


def bomb_png(w: int, h: int) -> bytes:
    "A PNG whose header claims a w x h 16-bit grey image (a few dozen bytes)."
    ihdr = struct.pack('>IIBBBBB', w, h, 16, 0, 0, 0, 0)
    return b'\x89PNG\r\n\x1a\n' + _chunk(b'IHDR', ihdr) + _chunk(b'IDAT', zlib.compress(b'\0' * 64)) + _chunk(b'IEND', b'')


def bomb_tif(w: int, h: int) -> bytes:
    "A zlib TIFF whose header claims a w x h 8-bit image, with one kilobyte of compressed data."
    data = zlib.compress(b'\0' * 1024)
    tags = [(256, 4, w), (257, 4, h), (258, 3, 8), (259, 3, 8), (262, 3, 1), (273, 4, 8 + 2 + 9 * 12 + 4),
            (277, 3, 1), (278, 4, h), (279, 4, len(data))]
    ifd = struct.pack('<H', len(tags)) + b''.join(struct.pack('<HHII', t, k, 1, v) for t, k, v in tags) + b'\0' * 4
    return b'II*\x00' + struct.pack('<I', 8) + ifd + data


def case(fmt, input, files, error=None, read=None, skipped=0, ignored=0, kw=None, cli=None, code=None):
    return dict(fmt=fmt, input=input, files=files, error=error, read=read, skipped=skipped, ignored=ignored,
                kw=kw or {}, cli=cli or [], code=(1 if error else 0) if code is None else code)


def _imgs(*names, side=8) -> dict: return {n: sar_tif(i, side) for i, n in enumerate(names)}


HEAD = b'imgpath,caption\n'
def _row(img: str, cap: str) -> bytes: return f'{img},{cap}\n'.encode()


def _coco(images, annotations, cats=('ship',)) -> bytes:
    return json.dumps(dict(images=images, annotations=annotations,
                           categories=[{'id': i + 1, 'name': c} for i, c in enumerate(cats)])).encode()


def _im(i, name, w=8, h=8, **kw): return dict(id=i, file_name=name, width=w, height=h, **kw)
def _ann(i, img, bbox='default', **kw):
    a = dict(id=i, image_id=img, category_id=1, **kw)
    if bbox != 'missing': a['bbox'] = [1, 1, 3, 3] if bbox == 'default' else bbox
    return a


def _coco_case(images, annotations, error, read, skipped, files=None):
    fs = {'images/' + n: b for n, b in (files or _imgs('a.tif', 'b.tif')).items()}
    return case('coco', 'instances.json', {'instances.json': _coco(images, annotations), **fs}, error, read, skipped)


def cases() -> dict:
    "name -> case (files: relative path -> bytes)."
    good = _row('a.tif', 'A SAR image of a ship.')
    four = _imgs('a.tif', 'b.tif', 'c.tif', 'd.tif')
    big = 'A SAR image' + ' of a ship' * 20_000 + '.'           # 200,012 characters: under the limit, read
    return {
        # ---- SARVLM CSV
        'csv_unclosed_quote': case('csv', 'data.csv', {**four, 'data.csv': HEAD + good + b'b.tif,"A SAR image of a tank.\n'
                                   + _row('c.tif', 'A SAR image of a car.') + _row('d.tif', 'A SAR image of a bus.')},
                                   'line 3: a quoted field opens on line 3 and runs to line 5: an unclosed quote', 1, 3),
        'csv_quote_closes_later': case('csv', 'data.csv', {**four, 'data.csv': HEAD + good + b'b.tif,"A SAR image of a tank.\n'
                                       + b'c.tif,a car."\n' + _row('d.tif', 'A SAR image of a bus.')},
                                       'line 3: a quoted field opens on line 3 and runs to line 4', 2, 2),
        'csv_duplicate_column': case('csv', 'data.csv', {**four, 'data.csv': b'imgpath,caption,caption\na.tif,A ship.,A boat.\n'},
                                     "line 1: column(s) ['caption'] appear more than once"),
        'csv_long_caption': case('csv', 'data.csv', {**four, 'data.csv': HEAD + _row('a.tif', big)}, read=1),
        'csv_field_over_limit': case('csv', 'data.csv', {**four, 'data.csv': HEAD + good + b'b.tif,"'
                                     + b'x' * (CSV_FIELD_LIMIT + 10) + b'"\n'},
                                     f'line 3: field larger than field limit ({CSV_FIELD_LIMIT})'),
        'csv_tab_typed_in_a_shell': case('csv', 'data.csv', {**four, 'data.csv': b'imgpath\tcaption\na.tif\tA ship.\n'},
                                         read=1, kw={'sep': '\\t'}, cli=['--sep', '\\t']),
        'csv_tab_by_name': case('csv', 'data.csv', {**four, 'data.csv': b'imgpath\tcaption\na.tif\tA ship.\n'},
                                read=1, kw={'sep': 'tab'}, cli=['--sep', 'tab']),
        # ---- COCO
        'coco_duplicate_image_id': _coco_case([_im(1, 'a.tif'), _im(1, 'b.tif'), _im(2, 'a.tif')], [_ann(1, 1), _ann(2, 2)],
                                              "image index 1 ('b.tif'): image id 1 is also the id of image index 0", 1, 3),
        'coco_size_differs_from_file': _coco_case([_im(1, 'a.tif', 640, 480), _im(2, 'b.tif')],
                                                  [_ann(1, 1, [100, 100, 10, 10]), _ann(2, 2)],
                                                  "image id 1 ('a.tif'): the JSON says 640x480, the file", 1, 1),
        'coco_bbox_3_values': _coco_case([_im(1, 'a.tif')], [_ann(7, 1, [1, 2, 3]), _ann(8, 1)],
                                         "annotation id 7 (image 'a.tif'): bbox is [1, 2, 3]; expected [x, y, width, height], 4 numbers", 1, 1),
        'coco_bbox_null': _coco_case([_im(1, 'a.tif')], [_ann(7, 1, None)], 'annotation id 7 (image \'a.tif\'): bbox is null', 1, 1),
        'coco_bbox_missing': _coco_case([_im(1, 'a.tif')], [_ann(7, 1, 'missing')], 'annotation id 7 (image \'a.tif\'): bbox is missing', 1, 1),
        'coco_image_without_width': _coco_case([{'id': 1, 'file_name': 'a.tif', 'height': 8}, _im(2, 'b.tif')], [_ann(1, 1)],
                                               "image index 0 ('a.tif'): missing ['width']", 1, 2),
        'coco_image_without_id': _coco_case([{'file_name': 'a.tif', 'width': 8, 'height': 8}, _im(2, 'b.tif')], [_ann(1, 2)],
                                            "image index 0 ('a.tif'): missing ['id']", 1, 1),
        'coco_annotation_not_an_object': _coco_case([_im(1, 'a.tif')], [[1, 2, 3, 4]], 'annotation index 0: expected an object', 1, 1),
        # ---- YOLO
        'yolo_polygon_line': case('yolo', '.', {**{f'images/{n}': b for n, b in _imgs('a.tif', 'b.tif', side=16).items()},
                                                'classes.txt': b'ship\n', 'labels/a.txt': b'0 0.1 0.1 0.5 0.1 0.5 0.4\n',
                                                'labels/b.txt': b'0 0.5 0.5 0.25 0.25\n'},
                                  "a.txt: line 1: expected 'class x_centre y_centre width height' (5 values), got 7 values (a polygon", 1, 1),
        # ---- class folders
        'folders_hidden_thumbs': case('folders', 'root', {**{f'root/{c}/{n}': b for c, (n, b) in
                                                             zip(['T72', 'BMP2', '.thumbs'], _imgs('a.tif', 'b.tif', 'c.tif').items())},
                                                          'root/T72/notes.txt': b'shot list\n', 'root/.DS_Store': b'\0'},
                                      read=2, ignored=3),
        'folders_loose_image': case('folders', 'root', {'root/T72/a.tif': sar_tif(0), 'root/BMP2/b.tif': sar_tif(1),
                                                        'root/stray.tif': sar_tif(2)}, 'stray.tif lies in', 2, 1),
        'folders_gif_webp_optical': case('folders', 'root', {'root/ship/a.png': rgb('PNG'), 'root/ship/b.gif': rgb('GIF', 1),
                                                             'root/tank/c.webp': rgb('WEBP', 2)}, read=3,
                                         kw={'domain': 'optical'}, cli=['--domain', 'optical']),
        'folders_gif_as_sar': case('folders', 'root', {'root/T72/a.tif': sar_tif(0), 'root/T72/b.gif': rgb('GIF', 1)},
                                   'b.gif: not a PNG, TIFF or JPEG image', 1, 1),
        # ---- HF folders
        'hf_not_a_saved_dataset': case('hf', 'data', {'data/state.json': b'{}'}, 'data: a damaged or incomplete saved dataset'),
        'hf_plain_folder': case('hf', 'data', {'data/a.tif': sar_tif(0)}, 'data: not a dataset saved with save_to_disk',
                                cli=['--from', 'hf']),
        # ---- images too large (headers only)
        'bomb_png_16bit': case('csv', 'data.csv', {**four, 'bomb.png': bomb_png(12000, 12000),
                                                   'data.csv': HEAD + good + _row('bomb.png', 'A SAR image of a port.')},
                               'bomb.png: the image is 12000x12000 = 144,000,000 pixels, more than the limit of 100,000,000', 1, 1),
        'bomb_tif_zlib': case('folders', 'root', {'root/T72/a.tif': sar_tif(0), 'root/T72/bomb.tif': bomb_tif(20000, 20000)},
                              'bomb.tif: the image is 20000x20000 = 400,000,000 pixels', 1, 1),
        'bomb_png_optical_coco': _coco_case([_im(1, 'a.png'), _im(2, 'bomb.png', 12000, 12000)], [_ann(1, 1)],
                                            'bomb.png: the image is 12000x12000', 1, 1,
                                            files={'a.png': rgb('PNG'), 'bomb.png': bomb_png(12000, 12000)})
                                 | dict(kw={'domain': 'optical'}, cli=['--domain', 'optical']),
        'max_pixels_lowered': case('csv', 'data.csv', {'a.tif': sar_tif(0), 'b.tif': sar_tif(1, 32),
                                                       'data.csv': HEAD + good + _row('b.tif', 'A SAR image of a tank.')},
                                   'b.tif: the image is 32x32 = 1,024 pixels, more than the limit of 1,000', 1, 1,
                                   kw={'max_pixels': 1000}, cli=['--max-pixels', '1000']),
    }


def write(out) -> dict:
    "Write every case under `out`; returns name -> case (without the file bytes)."
    out, done = Path(out), {}
    for name, c in cases().items():
        d = out / name
        for rel, data in c['files'].items():
            (d / rel).parent.mkdir(parents=True, exist_ok=True); (d / rel).write_bytes(data)
        meta = {k: v for k, v in c.items() if k != 'files'}
        (d / 'case.json').write_text(json.dumps(meta, indent=1)); done[name] = meta
    return done


if __name__ == '__main__':
    if len(sys.argv) != 2: sys.exit(__doc__)
    print(f"wrote {len(write(sys.argv[1]))} cases under {sys.argv[1]}")
