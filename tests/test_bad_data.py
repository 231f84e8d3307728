"""Every case of the malformed-data corpus (tests/bad_data.py) through the Python API and through `sarvlm_data convert`.

A case either reads (the records expected, anything ignored counted), or fails with a message that names the file
and the line / annotation / image, and with skip_bad / --skip-bad reads what is usable and counts what it skipped.
No case may show a traceback, merge rows, or lose a row without counting it. The mutation tests remove one guard
at a time (the function's source with the guard edited out) and check that the corpus then notices.
"""
import inspect, json, os, subprocess, sys, textwrap
from pathlib import Path
import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bad_data
from sarvlm import files, boxes, formats, sario as IO
from sarvlm.cli import data_main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp('bad_data')
    return out, bad_data.write(out)


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv('HF_DATASETS_CACHE', str(tmp_path/'hf'))
    monkeypatch.setenv('SARVLM_CACHE', str(tmp_path/'cache'))
    monkeypatch.delenv('SARVLM_MAX_PIXELS', raising=False)


def api_read(path: Path, c: dict, skip: bool) -> tuple:
    "(records, report) from the sarvlm.data reader of the case."
    rep, kw = {}, dict(c['kw'], skip_bad=skip, report={})
    kw['report'] = rep
    if c['fmt'] == 'csv': d = files.from_sarvlm_csv(path, **kw)
    elif c['fmt'] == 'coco': d = boxes.from_coco(path, **kw)
    elif c['fmt'] == 'yolo': d = boxes.from_box_folder(path, 'yolo', **kw)
    elif c['fmt'] == 'folders': d = files.from_class_folders(path, **kw)
    else: d = formats.load_saved(path)
    n = sum(map(len, d.values())) if hasattr(d, 'values') else len(d)
    return n, rep


def check_api(root: Path, name: str, c: dict, skip: bool):
    "Assert the outcome of one reading of a case (AssertionError, never another exception, when it is wrong)."
    path = root/name/c['input']
    fails = c['error'] is not None and (not skip or c['read'] is None)
    try: n, rep = api_read(path, c, skip)
    except (ValueError, FileNotFoundError) as e:
        assert fails, f"{name}: unexpected error {e}"
        assert c['error'] in str(e), f"{name}: {str(e)[:300]!r} does not say {c['error']!r}"
        assert path.name in str(e) or name in str(e), f"{name}: the message does not name the input: {e}"
        return
    except Exception as e: raise AssertionError(f"{name}: {type(e).__name__} escaped from the reader: {e}") from e
    assert not fails, f"{name}: read {n} records, expected the error {c['error']!r}"
    assert n == c['read'], f"{name}: read {n} records, expected {c['read']}"
    if c['fmt'] != 'hf':
        assert (rep.get('skipped', 0), rep.get('ignored', 0)) == (c['skipped'] if skip else 0, c['ignored']), (name, rep)
        assert rep['kept'] == n


def cli(root, name, c, skip, out, capsys) -> tuple:
    argv = ['convert', str(root/name/c['input']), '--to', 'hf', '--out', str(out), *c['cli']] + (['--skip-bad'] if skip else [])
    code = data_main(argv)
    o = capsys.readouterr()
    return code, o.out, o.err


NAMES = sorted(bad_data.cases())


@pytest.mark.parametrize('skip', [False, True], ids=['strict', 'skip_bad'])
@pytest.mark.parametrize('name', NAMES)
def test_api(corpus, name, skip):
    root, cs = corpus
    check_api(root, name, cs[name], skip)


@pytest.mark.parametrize('name', NAMES)
def test_convert(corpus, name, tmp_path, capsys):
    "`sarvlm_data convert`: the documented exit code and the message, no traceback; --skip-bad: exit 0 and the counts."
    root, cs = corpus
    c = cs[name]
    code, out, err = cli(root, name, c, False, tmp_path/'strict', capsys)
    assert 'Traceback' not in err, err
    if c['error'] is None:
        assert code == 0 and f"read {c['read']} records" in out, (code, out, err)
    else:
        assert code == c['code'] and 'sarvlm_data: error:' in err and c['error'] in err, (code, err)
    code, out, err = cli(root, name, c, True, tmp_path/'skip', capsys)
    assert 'Traceback' not in err, err
    if c['error'] is not None and c['read'] is None:
        assert code == c['code'] and c['error'] in err, (code, err)
        return
    assert code == 0, (code, err)
    assert f"read {c['read']} records" in out, out
    if c['skipped']: assert f"kept {c['read']}, skipped {c['skipped']}:" in out, out
    if c['ignored']: assert f"ignored {c['ignored']} entries" in out, out


@pytest.mark.parametrize('name', ['csv_unclosed_quote', 'bomb_tif_zlib'])
def test_console_script(corpus, name, tmp_path):
    "The real command in a fresh process: exit code, message on stderr, no traceback."
    root, cs = corpus
    c = cs[name]
    env = {**os.environ, 'PYTHONPATH': str(ROOT), 'HF_DATASETS_CACHE': str(tmp_path/'hf')}
    env.pop('SARVLM_MAX_PIXELS', None)
    r = subprocess.run([sys.executable, '-m', 'sarvlm.cli', 'convert', str(root/name/c['input']), '--to', 'hf',
                        '--out', str(tmp_path/'o')], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == c['code'] and c['error'] in r.stderr and 'Traceback' not in r.stderr, r.stderr


def test_corpus_covers_the_issue():
    "The corpus holds every reported problem, and the generator's field limit is the library's."
    need = {'csv_unclosed_quote', 'csv_duplicate_column', 'csv_long_caption', 'csv_field_over_limit', 'csv_tab_typed_in_a_shell',
            'coco_duplicate_image_id', 'coco_size_differs_from_file', 'coco_bbox_3_values', 'coco_bbox_null',
            'coco_bbox_missing', 'coco_image_without_width', 'coco_image_without_id', 'yolo_polygon_line',
            'folders_hidden_thumbs', 'folders_loose_image', 'folders_gif_webp_optical', 'hf_not_a_saved_dataset',
            'bomb_png_16bit', 'bomb_tif_zlib', 'max_pixels_lowered'}
    assert need <= set(NAMES), need - set(NAMES)
    assert bad_data.CSV_FIELD_LIMIT == files.CSV_FIELD_LIMIT


def test_env_raises_the_limit(corpus, monkeypatch):
    "SARVLM_MAX_PIXELS (and max_pixels=) raise the limit: the bomb is then refused only by its (missing) data."
    root, _ = corpus
    monkeypatch.setenv('SARVLM_MAX_PIXELS', str(10**9))
    with pytest.raises(ValueError) as e: IO.read_sar(root/'bomb_png_16bit'/'bomb.png')
    assert 'more than the limit' not in str(e.value) and 'bomb.png' in str(e.value)
    monkeypatch.setenv('SARVLM_MAX_PIXELS', 'lots')
    with pytest.raises(ValueError, match="SARVLM_MAX_PIXELS must be a positive whole number of pixels, got 'lots'"):
        IO.read_sar(root/'bomb_png_16bit'/'a.tif')


# ---------------------------------------------------------------- mutation checks
def mutant(fn, old: str, new: str):
    "`fn` recompiled with `old` replaced by `new` in its source (in its module's namespace)."
    src = textwrap.dedent(inspect.getsource(fn))
    assert src.count(old) == 1, f"{fn.__name__}: {old!r} found {src.count(old)} times"
    ns = dict(vars(sys.modules[fn.__module__]))
    exec(compile(src.replace(old, new), f'<mutant of {fn.__name__}>', 'exec'), ns)
    return ns[fn.__name__]


MUTANTS = {   # guard removed -> (module, function, old, new, cases that must notice)
    'csv unclosed quote': (files, '_csv_fields', 'if last > ln:', 'if False:',
                           ['csv_unclosed_quote', 'csv_quote_closes_later']),
    'csv duplicate column': (files, '_check_header', 'if dup: raise', 'if False: raise', ['csv_duplicate_column']),
    'csv field limit': (files, '_csv_rows', 'old = csv.field_size_limit(CSV_FIELD_LIMIT)', 'old = csv.field_size_limit()',
                        ['csv_long_caption']),
    'coco duplicate id': (boxes, '_coco_images', 'if i in first:', 'if False:', ['coco_duplicate_image_id']),
    'coco size vs file': (boxes, '_coco_record', "if tuple(size) != (im['width'], im['height']):", 'if False:',
                          ['coco_size_differs_from_file']),
    'coco bbox shape': (boxes, '_coco_box', "if not _nums(a.get('bbox'), 4):", 'if False:',
                        ['coco_bbox_3_values', 'coco_bbox_null', 'coco_bbox_missing']),
    'coco image entry': (boxes, '_coco_images', 'if msg:', 'if False:', ['coco_image_without_width', 'coco_image_without_id']),
    'yolo polygon': (boxes, 'yolo_to_boxes', 'if len(f) != 5:', 'if False:', ['yolo_polygon_line']),
    'hidden class folder': (files, '_class_dirs', ' and not _hidden(p)', '', ['folders_hidden_thumbs']),
    'hidden entries counted': (files, '_loose', "if _hidden(p): bad.ignore('hidden file or folder', str(p))", 'if False: pass',
                               ['folders_hidden_thumbs']),
    'loose image': (files, '_loose', "elif _is_image(p):", "elif False:", ['folders_loose_image']),
    'image size limit': (IO, '_check_size', 'if n <= lim: return', 'return',
                         ['bomb_png_16bit', 'bomb_tif_zlib', 'max_pixels_lowered', 'bomb_png_optical_coco']),
}


@pytest.mark.parametrize('guard', sorted(MUTANTS))
def test_guard_is_needed(corpus, guard, monkeypatch):
    "With the guard edited out, the corpus check of each of its cases fails (the tests can fail)."
    root, cs = corpus
    mod, fn, old, new, names = MUTANTS[guard]
    with monkeypatch.context() as m:
        m.setattr(mod, fn, mutant(getattr(mod, fn), old, new))
        for name in names:
            with pytest.raises(AssertionError):
                for skip in (False, True): check_api(root, name, cs[name], skip)
    for name in names: check_api(root, name, cs[name], False)   # and the real code passes again
