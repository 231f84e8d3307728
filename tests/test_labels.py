"""Labels as the data has them (issue 15, item 2): class folders keep their folder names (MSTAR's BMP2, BTR70, T72,
ZSU234 stay four classes), a mapping to coarse classes only when asked (`--label-map`), `--label-col` picks a
column on `sarvlm_eval` and `sarvlm_train`, and zero-shot without labels stops with exit 2 naming what is missing.
A random SARCLIP-Tiny and a few 16-pixel images: runs in seconds."""
import json
import numpy as np
import pytest
import torch
from sarvlm import cli, cli_train, cli_eval, formats
from sarvlm.data import sar_image
from sarvlm.files import save_image
from sarvlm.models import create

MSTAR = ['BMP2', 'BTR70', 'T72', 'ZSU234']


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    t = tmp_path_factory.mktemp('labels')
    mp = pytest.MonkeyPatch()
    mp.setenv('SARVLM_CACHE', str(t/'cache'))
    mp.setenv('HF_HUB_OFFLINE', '1')
    rng = np.random.default_rng(0)
    for c in MSTAR:                                    # MSTAR SOC style: one folder per target type
        for i in range(2): save_image(sar_image(rng.gamma(1, 1, (16, 16)).astype(np.float32)), t/'mstar'/c/f'{c}_{i}.tif')
    rows = ['imgpath,caption,class']
    for i in range(6):
        save_image(sar_image(rng.gamma(1, 1, (16, 16)).astype(np.float32)), t/'csv'/f'{i}.tif')
        rows.append(f"{i}.tif,a SAR image number {i},{MSTAR[i % 2]}")
    (t/'csv'/'test.csv').write_text('\n'.join(rows) + '\n')
    empty = [rows[0]] + [r.rsplit(',', 1)[0] + ',' for r in rows[1:]]   # the class column left empty
    (t/'csv'/'nolabel.csv').write_text('\n'.join(empty) + '\n')
    torch.save({'state_dict': create('SARCLIP-Tiny')[0].state_dict(), 'epoch': 1, 'name': 'SARCLIP-Tiny'}, t/'w.pt')
    yield t
    mp.undo()


def zeroshot(world, data, *extra) -> tuple:
    out = world/'zs.json'
    out.unlink(missing_ok=True)
    code = cli_eval.eval_main(['zeroshot', '--checkpoint', str(world/'w.pt'), '--data', str(data), '--out', str(out), *extra])
    return code, (json.loads(out.read_text())['metrics'] if out.is_file() else None)


def test_class_folders_keep_their_names(world, capsys):
    code, m = zeroshot(world, world/'mstar')
    assert code == 0, capsys.readouterr().err
    assert m['classes'] == MSTAR and m['n'] == 8 and m['chance_top1'] == 25.0


def test_coarse_classes_only_when_asked(world, capsys):
    code, m = zeroshot(world, world/'mstar', '--label-map', 'coarse')
    assert code == 0, capsys.readouterr().err
    assert m['classes'] == ['tank', 'truck'] and m['n'] == 8
    (world/'map.json').write_text(json.dumps({'BMP2': 'apc', 'BTR70': 'apc', 'T72': 'mbt', 'ZSU234': 'spaa'}))
    code, m = zeroshot(world, world/'mstar', '--label-map', str(world/'map.json'))
    assert code == 0 and m['classes'] == ['apc', 'mbt', 'spaa']


def test_classes_option_keeps_rows_of_folder_names(world, capsys):
    "The issue's `--classes BMP2,...` dropped every row: folder names are the labels now."
    code, m = zeroshot(world, world/'mstar', '--classes', 'BMP2,T72')
    assert code == 0, capsys.readouterr().err
    assert m['classes'] == ['BMP2', 'T72'] and m['n'] == 4


def test_label_col_picks_a_csv_column(world, capsys):
    code, m = zeroshot(world, world/'csv'/'test.csv', '--label-col', 'class')
    assert code == 0, capsys.readouterr().err
    assert m['classes'] == ['BMP2', 'BTR70'] and m['n'] == 6


def test_missing_label_column_is_a_usage_error(world, capsys):
    code, m = zeroshot(world, world/'csv'/'test.csv', '--label-col', 'target')
    err = capsys.readouterr().err
    assert code == 2 and m is None
    assert "--label-col 'target': the data has no such column" in err and "'class'" in err, err


def test_zeroshot_without_labels_names_what_is_missing(world, capsys):
    for extra in ([], ['--label-col', 'class']):   # no label column at all; a label column that is empty
        code, m = zeroshot(world, world/'csv'/'nolabel.csv', *extra)
        err = capsys.readouterr().err
        assert code == 2 and m is None, err
        assert 'no class labels were found' in err and '--label-col' in err, err


def test_train_reads_the_same_labels(world):
    a = cli_train.parse_train(['--data', str(world/'mstar'), '--out', str(world/'run')])
    tr, va = cli_train.train_records(a)
    assert sorted(set(tr['label'])) == MSTAR and va is None
    a = cli_train.parse_train(['--data', str(world/'mstar'), '--out', str(world/'run'), '--label-map', 'coarse'])
    assert sorted(set(cli_train.train_records(a)[0]['label'])) == ['tank', 'truck']
    a = cli_train.parse_train(['--data', str(world/'csv'/'test.csv'), '--out', str(world/'run'), '--label-col', 'class'])
    assert sorted(set(cli_train.train_records(a)[0]['label'])) == ['BMP2', 'BTR70']


def test_data_labels_api(world):
    from sarvlm.files import from_class_folders
    ds = from_class_folders(world/'mstar')
    assert sorted(set(ds['label'])) == ['tank', 'truck']              # the reader's coarse classes, unchanged
    assert sorted(set(formats.data_labels(ds))) == MSTAR
    assert sorted(set(formats.data_labels(ds, 'folder', 'coarse'))) == ['tank', 'truck']
    with pytest.raises(formats.UsageError, match=r"--label-map: no class for the labels \['BTR70', 'T72', 'ZSU234'\]"):
        formats.data_labels(ds, label_map={'BMP2': 'apc'})
