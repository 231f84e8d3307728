"Bad input and round trips for sarvlm.data readers and writers (SARVLM CSV, class folders, COCO, YOLO, DOTA)."
import json, os
import numpy as np
import pytest
from PIL import Image

os.environ.setdefault('HF_HUB_OFFLINE', '1')


@pytest.fixture(autouse=True)
def _hf_cache(tmp_path, monkeypatch):
    monkeypatch.setenv('HF_DATASETS_CACHE', str(tmp_path/'hf'))
    monkeypatch.setenv('SARVLM_CACHE', str(tmp_path/'cache'))


from sarvlm import data as D, files, boxes


def sar(seed, shape=(8, 9)): return D.sar_image(np.random.default_rng(seed).exponential(1.0, shape).astype(np.float32))
def rgb(seed, shape=(7, 6, 3)): return D.rgb_image(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8))

BOXES = [{'cls': 'ship', 'fine_type': 'tanker', 'bbox': [1.5, 2.25, 10.0, 7.75], 'rbox': [5.75, 5.0, 8.5, 3.0, 30.0]},
         {'cls': 'storage tank', 'fine_type': '', 'bbox': [20.0, 30.0, 24.0, 34.0], 'rbox': [22.0, 32.0, 4.0, 4.0, -135.5]}]


@pytest.fixture
def tiny():
    return D.records_to_dataset([
        dict(image=sar(1), caption='A SAR image of a ship.', captions=['A SAR image of a ship.', 'A radar image of a vessel.'], domain='sar', label='ship', scene_id='chip-1'),
        dict(image=sar(2), caption='A SAR image of sea, "quoted", with commas.', domain='sar', label='open sea', scene_id='scene-2'),
        dict(image=rgb(3), caption='An aerial image of a ship.', domain='optical', label='ship', scene_id='chip-1'),
        dict(image=sar(4, (48, 64)), caption='A SAR image of a ship and a storage tank.', domain='sar', label='ship', scene_id='s4',
             meta=json.dumps({'boxes': BOXES}))])


def csv_with(tmp_path, name, body: bytes):
    files.save_image(sar(0), tmp_path/'a.tif')
    p = tmp_path/name; p.write_bytes(body); return p


# ---------------------------------------------------------------- SARVLM CSV
def test_csv_round_trip_exact(tiny, tmp_path):
    p = files.to_sarvlm_csv(tiny, tmp_path/'out', all_captions=False)['data']
    back = files.from_sarvlm_csv(p)
    assert len(back) == len(tiny)
    for a, b in zip(tiny, back):
        assert a['image'].mode == b['image'].mode
        np.testing.assert_array_equal(D.image_array(a['image']), D.image_array(b['image']))
        for k in ('caption', 'domain', 'label', 'scene_id'): assert a[k] == b[k]


def test_csv_all_captions_grouped(tiny, tmp_path):
    p = files.to_sarvlm_csv(tiny, tmp_path/'out')['data']
    head = p.read_text(encoding='utf-8').splitlines()[0]
    assert head == 'imgpath,caption,domain,label,scene_id'
    assert [r['captions'] for r in files.from_sarvlm_csv(p, group=True)] == [r['captions'] for r in tiny]


def test_csv_bare_format(tiny, tmp_path):
    p = files.to_sarvlm_csv(tiny.select([0, 1]), tmp_path/'out', all_captions=False, extra=())['data']
    assert p.read_text().splitlines()[0] == 'imgpath,caption'
    assert list(files.from_sarvlm_csv(p)['caption']) == list(tiny.select([0, 1])['caption'])


@pytest.mark.parametrize('sep,name', [('\t', 'tab'), (';', 'semicolon')])
def test_csv_wrong_separator(tmp_path, sep, name):
    p = csv_with(tmp_path, 'x.csv', f'imgpath{sep}caption\na.tif{sep}A SAR image of a ship.\n'.encode())
    with pytest.raises(ValueError, match=f'{name}-separated.*comma-separated') as e: files.from_sarvlm_csv(p)
    assert 'x.csv' in str(e.value) and 'line 1' in str(e.value)
    assert len(files.from_sarvlm_csv(p, sep=sep)) == 1  # asked for explicitly: fine


def test_csv_missing_column(tmp_path):
    p = csv_with(tmp_path, 'x.csv', b'imgpath,text\na.tif,A SAR image of a ship.\n')
    with pytest.raises(ValueError, match=r"x.csv: line 1: missing column\(s\) \['caption'\]"): files.from_sarvlm_csv(p)
    p = csv_with(tmp_path, 'y.csv', b'filepath,caption\na.tif,A SAR image of a ship.\n')
    with pytest.raises(ValueError, match=r"missing column\(s\) \['imgpath'\]"): files.from_sarvlm_csv(p)


def test_csv_missing_file_and_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match='no CSV file'): files.from_sarvlm_csv(tmp_path/'nope.csv')
    p = csv_with(tmp_path, 'e.csv', b'')
    with pytest.raises(ValueError, match='e.csv: the CSV file is empty'): files.from_sarvlm_csv(p)


GOOD = b'imgpath,caption\na.tif,A SAR image of a ship.\n'
CASES = {'missing image': (b'missing.tif,A SAR image of a tank.\n', FileNotFoundError, 'line 3: image file not found'),
         'empty caption': (b'a.tif,   \n', ValueError, 'line 3: empty caption'),
         'duplicate row': (b'a.tif,A SAR image of a ship.\n', ValueError, 'line 3: duplicate of line 2'),
         'non-UTF-8 text': (b'a.tif,A SAR image of a \xff\xfe ship.\n', ValueError, 'line 3: not valid UTF-8'),
         'wrong number of fields': (b'a.tif,A SAR image,extra\n', ValueError, 'line 3: 3 fields, the header has 2')}


@pytest.mark.parametrize('reason', list(CASES))
def test_csv_bad_row_raises_naming_file_and_line(tmp_path, reason):
    row, exc, msg = CASES[reason]
    p = csv_with(tmp_path, 'bad.csv', GOOD + row)
    with pytest.raises(exc) as e: files.from_sarvlm_csv(p)
    assert 'bad.csv' in str(e.value) and msg in str(e.value), str(e.value)


def test_csv_skip_bad_counts_and_reports(tmp_path, capsys):
    p = csv_with(tmp_path, 'bad.csv', GOOD + b''.join(r for r, _, _ in CASES.values()) + b'a.tif,A SAR image of two ships.\n')
    rep = {}
    ds = files.from_sarvlm_csv(p, skip_bad=True, report=rep)
    assert len(ds) == 2 and rep['kept'] == 2 and rep['skipped'] == len(CASES)
    assert {k: len(v) for k, v in rep['reasons'].items()} == {k: 1 for k in CASES}
    assert rep['reasons']['missing image'] == ['line 3'] and rep['reasons']['duplicate row'] == ['line 5']
    out = capsys.readouterr().out
    assert 'kept 2, skipped 5' in out and 'bad.csv' in out


def test_csv_all_rows_bad(tmp_path):
    p = csv_with(tmp_path, 'allbad.csv', b'imgpath,caption\nmissing.tif,A ship.\n')
    with pytest.raises(ValueError, match='no usable rows'): files.from_sarvlm_csv(p, skip_bad=True)


def test_csv_unreadable_image(tmp_path):
    (tmp_path/'broken.png').write_bytes(b'not a png at all')
    p = tmp_path/'u.csv'; p.write_text('imgpath,caption\nbroken.png,A SAR image of a ship.\n')
    with pytest.raises(ValueError, match='u.csv: line 2: .*broken.png'): files.from_sarvlm_csv(p)


# ---------------------------------------------------------------- class folders
def make_tree(root):
    for split, n in [('train', 2), ('test', 1)]:
        for cls in ['T72', 'BMP2']:
            for i in range(n): files.save_image(sar(10*i + len(cls) + len(split)), root/split/cls/f'{cls}_{i}.tif')


def test_class_folders_read_and_round_trip(tmp_path):
    make_tree(tmp_path/'mstar')
    dd = files.from_class_folders(tmp_path/'mstar')
    assert set(dd) == {'train', 'test'} and len(dd['train']) == 4
    assert sorted(set(dd['train']['fine_type'])) == ['BMP2', 'T72'] and set(dd['train']['label']) == {'tank'}
    assert all(len(c) == 5 and len(set(c)) == 5 for c in dd['train']['captions'])
    assert any('T-72 tank' in c for cs in dd['train']['captions'] for c in cs)
    back = files.from_class_folders(files.to_class_folders(dd, tmp_path/'again', label_col='fine_type'))
    for s in dd:
        key = lambda r: (r['fine_type'], D.image_array(r['image']).tobytes())
        assert sorted(map(key, back[s])) == sorted(map(key, dd[s]))


def test_class_folders_flat_layout(tmp_path):
    make_tree(tmp_path/'m')
    ds = files.from_class_folders(tmp_path/'m'/'train')
    assert len(ds) == 4 and set(ds['split']) == {''}


def test_class_folder_without_images(tmp_path):
    make_tree(tmp_path/'m')
    (tmp_path/'m'/'train'/'ZSU234').mkdir(); (tmp_path/'m'/'train'/'ZSU234'/'notes.txt').write_text('no images here')
    with pytest.raises(ValueError, match="ZSU234.*class folder 'ZSU234' has no images"): files.from_class_folders(tmp_path/'m')
    rep = {}
    dd = files.from_class_folders(tmp_path/'m', skip_bad=True, report=rep)
    assert rep['skipped'] == 1 and list(rep['reasons']) == ['empty class folder'] and len(dd['train']) == 4


def test_class_folders_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match='no folder'): files.from_class_folders(tmp_path/'nope')
    (tmp_path/'empty').mkdir()
    with pytest.raises(ValueError, match='no class folders'): files.from_class_folders(tmp_path/'empty')


# ---------------------------------------------------------------- COCO / YOLO / DOTA
def test_coco_round_trip_exact(tiny, tmp_path):
    ds = tiny.select([3])
    back = boxes.from_coco(boxes.to_coco(ds, tmp_path/'coco'))
    assert json.loads(back[0]['meta'])['boxes'] == BOXES
    np.testing.assert_array_equal(D.image_array(back[0]['image']), D.image_array(ds[0]['image']))
    caps = back[0]['captions']
    assert len(caps) == 5 and len(set(caps)) == 5 and back[0]['label'] in ('ship', 'storage tank')


def _bad_coco(tiny, tmp_path, edit):
    p = boxes.to_coco(tiny.select([3]), tmp_path/'coco')
    j = json.loads(p.read_text()); edit(j); q = tmp_path/'coco'/'bad.json'; q.write_text(json.dumps(j)); return q


@pytest.mark.parametrize('bbox', [[60, 2, 10, 5], [-3, 2, 5, 5], [5, 40, 3, 20], [5, 5, 0, 3]])
def test_coco_box_outside_image(tiny, tmp_path, bbox):
    def edit(j): j['annotations'][0]['bbox'] = bbox
    q = _bad_coco(tiny, tmp_path, edit)
    with pytest.raises(ValueError, match=r"bad.json: annotation id 1 \(image 's4_sar.tif'\): bbox .* outside the 64x48 image"): boxes.from_coco(q)
    rep = {}
    ds = boxes.from_coco(q, skip_bad=True, report=rep)
    assert rep['reasons'] == {'box outside the image': ["annotation id 1 (image 's4_sar.tif')"]}
    assert len(json.loads(ds[0]['meta'])['boxes']) == 1


def test_coco_other_errors(tiny, tmp_path):
    q = _bad_coco(tiny, tmp_path, lambda j: j['annotations'][1].update(category_id=99))
    with pytest.raises(ValueError, match='annotation id 2.*category_id 99'): boxes.from_coco(q)
    q = _bad_coco(tiny, tmp_path, lambda j: j['images'][0].update(file_name='gone.tif'))
    with pytest.raises(FileNotFoundError, match='image id 1.*gone.tif'): boxes.from_coco(q)
    q = _bad_coco(tiny, tmp_path, lambda j: j.pop('categories'))
    with pytest.raises(ValueError, match="missing top-level key 'categories'"): boxes.from_coco(q)
    (tmp_path/'junk.json').write_bytes(b'\xff{')
    with pytest.raises(ValueError, match='junk.json is not valid UTF-8 JSON'): boxes.from_coco(tmp_path/'junk.json')


@pytest.mark.parametrize('fmt', ['yolo', 'dota'])
def test_box_folders_round_trip(tiny, tmp_path, fmt):
    ds = tiny.select([3])
    back = json.loads(boxes.from_box_folder(boxes.to_box_folder(ds, tmp_path/fmt, fmt), fmt)[0]['meta'])['boxes']
    if fmt == 'yolo': assert [(b['cls'], b['bbox']) for b in back] == [(b['cls'], b['bbox']) for b in BOXES]
    else: assert [(b['cls'], b['rbox']) for b in back] == [(b['cls'], boxes.norm_rbox(b['rbox'])) for b in BOXES]


def test_yolo_bad_lines(tmp_path):
    names = ['ship']
    with pytest.raises(ValueError, match='a.txt: line 2: box'): boxes.yolo_to_boxes('0 .5 .5 .1 .1\n0 0.99 0.5 0.2 0.1\n', (64, 48), names, 'a.txt')
    with pytest.raises(ValueError, match='a.txt: line 1: class id 3'): boxes.yolo_to_boxes('3 .5 .5 .1 .1\n', (64, 48), names, 'a.txt')
    with pytest.raises(ValueError, match="a.txt: line 1: expected 'class x_centre"): boxes.yolo_to_boxes('0 .5 .5\n', (64, 48), names, 'a.txt')


def test_yolo_folder_skip_bad(tiny, tmp_path):
    f = boxes.to_box_folder(tiny.select([3]), tmp_path/'y', 'yolo')
    (f/'classes.txt').write_text((f/'classes.txt').read_text().strip())  # no trailing newline: still read in full
    assert len(boxes.from_box_folder(f, 'yolo')) == 1
    files.save_image(sar(9, (48, 64)), f/'images'/'extra.tif'); (f/'labels'/'extra.txt').write_text('0 1.5 0.5 0.2 0.2\n')
    with pytest.raises(ValueError, match='extra.txt: line 1: box'): boxes.from_box_folder(f, 'yolo')
    rep = {}; ds = boxes.from_box_folder(f, 'yolo', skip_bad=True, report=rep)
    assert len(ds) == 1 and rep['skipped'] == 1


@pytest.mark.parametrize('seed', range(20))
def test_rbox_poly_round_trip(seed):
    r = np.random.default_rng(seed)
    rb = [float(np.round(v, 3)) for v in (*r.uniform(0, 64, 2), *r.uniform(1, 30, 2), r.uniform(-540, 540))]
    assert boxes.poly_to_rbox(boxes.rbox_to_poly(rb)) == boxes.norm_rbox(rb)
    assert boxes.poly_to_rbox(boxes.rbox_to_poly(boxes.norm_rbox(rb))) == boxes.norm_rbox(rb)


# ---------------------------------------------------------------- lazy reading (SARVLM-1M scale)
def same_records(a, b):
    "Two record datasets hold the same rows: equal pixels (and mode), equal other columns."
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x['image'].mode == y['image'].mode
        np.testing.assert_array_equal(D.image_array(x['image']), D.image_array(y['image']))
        assert {k: v for k, v in x.items() if k != 'image'} == {k: v for k, v in y.items() if k != 'image'}


def test_lazy_csv_same_as_eager(tiny, tmp_path):
    p = files.to_sarvlm_csv(tiny, tmp_path/'out')['data']
    Image.fromarray(np.arange(60, dtype=np.uint16).reshape(6, 10) * 1000).save(tmp_path/'out'/'i16.png')
    with open(p, 'a', encoding='utf-8') as f: f.write('i16.png,A 16-bit SAR image of a ship.,sar,ship,s16\n')
    for group in (False, True):
        lazy = files.from_sarvlm_csv(p, group=group, lazy=True)
        assert lazy.features['image'] == D.datasets.Image(decode=False) and lazy.format['type'] == files.LAZY_FORMAT
        same_records(files.from_sarvlm_csv(p, group=group), lazy)
    assert lazy[-1]['image'].mode == 'F'  # 16-bit PNG through read_sar: linear intensity, as eager


def test_lazy_csv_bad_rows_counted_as_eager(tmp_path, capsys):
    (tmp_path/'broken.png').write_bytes(b'not a png at all')
    files.save_image(sar(5, (40, 40)), tmp_path/'big.tif')
    body = GOOD + b''.join(r for r, _, _ in CASES.values()) + b'broken.png,A SAR image.\nbig.tif,A big one.\n'
    p = csv_with(tmp_path, 'bad.csv', body)
    eager, lazy = {}, {}
    files.from_sarvlm_csv(p, skip_bad=True, report=eager, max_pixels=1000)
    ds = files.from_sarvlm_csv(p, skip_bad=True, report=lazy, max_pixels=1000, lazy=True)
    assert lazy == eager and len(ds) == 1
    assert lazy['reasons']['unreadable image'] == ['line 8', 'line 9']   # bad header, too many pixels
    assert lazy['reasons']['missing image'] == ['line 3']
    q = csv_with(tmp_path, 'b.csv', GOOD + b'broken.png,A SAR image.\n')
    with pytest.raises(ValueError, match='b.csv: line 3: .*broken.png'): files.from_sarvlm_csv(q, lazy=True)


def test_lazy_csv_holds_no_pixels(tmp_path, monkeypatch):
    "2,000 rows of 500 images: the table holds paths (no image bytes), and reading it decodes nothing."
    (tmp_path/'img').mkdir()
    for i in range(500):
        Image.fromarray(np.full((32, 32), i % 256, np.uint8)).save(tmp_path/'img'/f'{i}.png')
    rows = ''.join(f'img/{i}.png,A SAR image number {i} caption {k}.\n' for i in range(500) for k in range(4))
    (tmp_path/'big.csv').write_text('imgpath,caption\n' + rows)
    decoded = []
    monkeypatch.setattr(files, 'load_image', lambda *a, **k: decoded.append(a[0]))
    ds = files.from_sarvlm_csv(tmp_path/'big.csv', lazy=True)
    assert len(ds) == 2000 and decoded == []
    assert ds.data.nbytes < 2000 * 400   # paths and captions; 2,000 decoded float images would be 8 MB
    assert set(ds['domain']) == {'sar'} and len(set(ds['caption'])) == 2000 and decoded == []
    ds[[3, 4]]
    assert len(decoded) == 2   # a batch read decodes only its rows


def test_lazy_class_folders_and_coco_same_as_eager(tiny, tmp_path):
    make_tree(tmp_path/'mstar')
    a, b = files.from_class_folders(tmp_path/'mstar'), files.from_class_folders(tmp_path/'mstar', lazy=True)
    for s in a: same_records(a[s], b[s])
    p = boxes.to_coco(tiny.select([3]), tmp_path/'coco')
    same_records(boxes.from_coco(p), boxes.from_coco(p, lazy=True))


@pytest.mark.parametrize('fmt', ['yolo', 'dota'])
def test_lazy_box_folders_same_as_eager(tiny, tmp_path, monkeypatch, fmt):
    f = boxes.to_box_folder(tiny.select([3]), tmp_path/fmt, fmt)
    eager = boxes.from_box_folder(f, fmt)
    decoded = []
    load = files.load_image
    monkeypatch.setattr(files, 'load_image', lambda *a, **k: decoded.append(a[0]) or load(*a, **k))
    lazy = boxes.from_box_folder(f, fmt, lazy=True)
    assert decoded == [] and lazy.format['type'] == files.LAZY_FORMAT   # headers read, nothing decoded
    same_records(eager, lazy)
    assert len(decoded) == 1   # the one image, decoded when its row was read


def test_root_for_relative_paths(tmp_path):
    from sarvlm.formats import read_data
    from sarvlm.cli import data_main
    files.save_image(sar(0), tmp_path/'imgs'/'a.tif')
    (tmp_path/'lists').mkdir(); p = tmp_path/'lists'/'d.csv'
    p.write_text('imgpath,caption\nimgs/a.tif,A SAR image of a ship.\n')
    with pytest.raises(FileNotFoundError, match='image file not found'): read_data(str(p))
    ds = read_data(str(p), root=str(tmp_path))
    np.testing.assert_array_equal(D.image_array(ds[0]['image']), D.image_array(sar(0)))
    assert data_main(['card', '--data', str(p), '--root', str(tmp_path)]) == 0
    assert data_main(['card', '--data', str(p)]) != 0


# ---------------------------------------------------------------- sarvlm-mini
N_MINI = 30


def test_build_mini_contract_cache_and_determinism(tmp_path, monkeypatch):
    import datasets, time
    pytest.importorskip('sarvlm.scenes')
    dd = D.build_mini(0, N_MINI, verbose=False)
    assert set(dd) == {'train', 'val', 'test', 'test_uni'}
    for k, ds in dd.items():
        for col in ('image', 'caption', 'captions', 'domain', 'label', 'scene_id', 'source', 'meta'): assert col in ds.column_names
        assert isinstance(ds.features['image'], datasets.Image)
    r = {d: next(x for x in dd['test'] if x['domain'] == d) for d in D.DOMAINS}
    assert r['sar']['image'].mode == 'F' and r['optical']['image'].mode == 'RGB' and r['natural']['image'].mode == 'RGB'
    assert D.image_array(r['sar']['image']).dtype == np.float32 and D.image_array(r['sar']['image']).min() >= 0
    assert all(len(c) == 5 and len(set(c)) == 5 for c in dd['train']['captions'])
    assert all(c in cs for c, cs in zip(dd['train']['caption'], dd['train']['captions']))
    assert set(dd['train']['source']) == {'sarvlm-mini'}
    # cached: the second call loads (fast), same content
    t0 = time.perf_counter(); dd2 = D.build_mini(0, N_MINI, verbose=False); assert time.perf_counter() - t0 < 5
    h = D.content_hash(dd)
    assert D.content_hash(dd2) == h
    # deterministic across a cold rebuild in another cache; another seed differs
    monkeypatch.setenv('SARVLM_CACHE', str(tmp_path/'cache2'))
    assert D.content_hash(D.build_mini(0, N_MINI, verbose=False)) == h
    assert D.content_hash(D.build_mini(1, N_MINI, verbose=False)) != h
    assert not list((tmp_path/'cache2'/'sarvlm-mini').glob('.tmp-*'))  # atomic: no temp folder left behind


def test_build_mini_held_out_and_uni():
    pytest.importorskip('sarvlm.scenes')
    cfg = D.mini_config(N_MINI)
    dd = D.build_mini(0, N_MINI, verbose=False)
    held = set(cfg['held_out_sar_classes'])
    assert held
    assert D.check_held_out(dd, held) > 0
    for s in ('train', 'val'):
        for dom, meta in zip(dd[s]['domain'], dd[s]['meta']):
            if dom == 'sar': assert not {o['cls'] for o in json.loads(meta)['objects']} & held
    u = dd['test_uni']
    assert len(set(u['caption'])) == len(u) and len(set(zip(u['scene_id'], u['domain']))) == len(u)
    # every scene lands in one split for all its domains
    where = {}
    for s in ('train', 'val', 'test'):
        for sid in dd[s]['scene_id']: where.setdefault(sid, set()).add(s)
    assert all(len(v) == 1 for v in where.values())


def test_build_mini_captions_consistent():
    pytest.importorskip('sarvlm.scenes')
    dd = D.build_mini(0, N_MINI, verbose=False)
    for k, ds in dd.items():
        res = D.check_records(ds)
        assert res['captions'] == 5 * len(ds) and res['inconsistent'] == 0, res['examples']


def test_check_held_out_can_fail():
    rec = dict(image=sar(0), caption='x', domain='sar', label='tank', scene_id='s', split='train',
               meta=json.dumps({'objects': [{'cls': 'tank'}]}))
    import datasets
    dd = datasets.DatasetDict(train=D.records_to_dataset([rec]))
    with pytest.raises(AssertionError, match='held-out SAR class'): D.check_held_out(dd, ['tank'])


def test_mini_config_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match='>= 10'): D.mini_config(5)
    monkeypatch.setenv('SARVLM_DATA', str(tmp_path))
    with pytest.raises(FileNotFoundError, match='sarvlm-mini.json'): D.mini_config()
