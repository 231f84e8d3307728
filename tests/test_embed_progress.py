"""Progress while embedding (issue 15, item 7): periodic lines on stderr, off with verbose=False, never inside a
notebook's outputs. A random SARCLIP-Tiny on 40 toy records: runs in seconds."""
import numpy as np
import pytest
import torch
from sarvlm import models as M
from sarvlm import features as F
from sarvlm.core import set_seed
from sarvlm.train import toy_records


@pytest.fixture(scope='module')
def setup():
    set_seed(0)
    model, _, eval_tf, tokenizer = M.create('SARCLIP-Tiny')
    return model.eval(), eval_tf, tokenizer, toy_records(40, seed=1)


def test_images_and_captions_report_progress(setup, capfd, monkeypatch):
    model, eval_tf, tokenizer, ds = setup
    monkeypatch.setattr(F, 'PROGRESS_SECONDS', 0.0)   # a line after every batch
    F.embed_images(model, ds['image'], eval_tf, batch_size=16, progress=True)
    F.embed_texts(model, ds['caption'], tokenizer, batch_size=16, progress=True)
    out, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert out == ''
    assert [l.split(' (')[0] for l in lines] == ['embedding images: 16/40', 'embedding images: 32/40', 'embedding images: 40/40',
                                               'embedding captions: 16/40', 'embedding captions: 32/40',
                                               'embedding captions: 40/40'], lines
    assert 'left' in lines[0] and lines[2].startswith('embedding images: 40/40 (100 %)')


def test_embed_follows_verbose(setup, capfd, tmp_path):
    model, eval_tf, tokenizer, ds = setup
    F.embed(model, eval_tf, tokenizer, ds, key='quiet', cache_dir=tmp_path, verbose=False)
    assert capfd.readouterr().err == ''                        # verbose=False: no progress
    F.embed(model, eval_tf, tokenizer, ds, key='loud', cache_dir=tmp_path)
    err = capfd.readouterr().err
    assert 'embedding images: 40/40 (100 %)' in err and 'embedding captions: 40/40 (100 %)' in err, err
    a, b = (np.load(tmp_path/f'{k}.npz') for k in ('quiet', 'loud'))
    np.testing.assert_array_equal(a['image'], b['image'])     # the same features either way


def test_no_progress_inside_a_notebook(setup, capfd, tmp_path, monkeypatch):
    "Inside Jupyter (stderr is the kernel's stream) the lines would stay in the page: verbose embed stays quiet."
    model, eval_tf, tokenizer, ds = setup
    monkeypatch.setattr(F, 'in_notebook', lambda: True)
    F.embed(model, eval_tf, tokenizer, ds, key='nb', cache_dir=tmp_path)
    assert 'embedding images' not in capfd.readouterr().err


def test_not_a_notebook_here():
    assert F.in_notebook() is False


def test_workers_give_the_same_features(setup, tmp_path):
    "`workers=2`: DataLoader processes decode a lazily read split; the features equal the in-process ones."
    model, eval_tf, tokenizer, ds = setup
    from sarvlm import files
    p = files.to_sarvlm_csv(ds, tmp_path/'csv')['data']
    lazy = files.from_sarvlm_csv(p, lazy=True)
    one = F.embed_images(model, lazy['image'], eval_tf, batch_size=16)
    two = F.embed_images(model, F.TransformedRows(lazy, 'image', eval_tf), F._same, batch_size=16, workers=2)
    torch.testing.assert_close(two, one, rtol=0, atol=0)
    a = F.embed(model, eval_tf, tokenizer, lazy, key='w0', cache_dir=tmp_path, verbose=False)
    b = F.embed(model, eval_tf, tokenizer, lazy, key='w2', cache_dir=tmp_path, verbose=False, workers=2)
    np.testing.assert_array_equal(a['image'], b['image'])
    with pytest.raises(ValueError, match='no images'): F.embed_images(model, [], eval_tf, workers=2)


def test_workers_only_for_a_streamed_split(setup, tmp_path, monkeypatch):
    "Pixels held in memory are not sent through worker processes; a streamed split is, with the same features."
    import functools
    from sarvlm import files
    model, eval_tf, tokenizer, ds = setup
    lazy = files.from_sarvlm_csv(files.to_sarvlm_csv(ds, tmp_path/'csv')['data'], lazy=True)
    used, batches = [], F.image_batches
    monkeypatch.setattr(F, 'image_batches', lambda *a: used.append(a[-1]) or batches(*a))
    F._PIXELS.clear()
    held = F.embed(model, eval_tf, tokenizer, lazy, key='held', cache_dir=tmp_path, verbose=False, workers=2)
    F._PIXELS.clear()
    monkeypatch.setattr(F, 'dataset_pixels', functools.partial(F.dataset_pixels, max_bytes=0))
    streamed = F.embed(model, eval_tf, tokenizer, lazy, key='streamed', cache_dir=tmp_path, verbose=False, workers=2)
    assert used == [0, 2]
    np.testing.assert_array_equal(held['image'], streamed['image'])
