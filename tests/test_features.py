"""The one embedding cache: features are keyed by the checkpoint's bytes, the model name and config, the pretrained
tag, the image transform and the dataset split, so the same weights read as two models never share features
(the `sarvlm_eval --model ViT-B-32` then `--model ViT-B-32-quickgelu` bug of issue 14)."""
import json
import numpy as np
import pytest
import torch
from sarvlm.core import set_seed
from sarvlm.models import TINY_CONFIGS, register_configs, create, save_checkpoint
from sarvlm.train import toy_records


@pytest.fixture(scope='module')
def world(module_tmp):
    "A tiny checkpoint, a second model name for the same weights (QuickGELU), and a small dataset split."
    torch.set_num_threads(1); set_seed(0)
    cfg = module_tmp/'SARCLIP-Tiny-quickgelu.json'
    cfg.write_text(json.dumps({**TINY_CONFIGS['SARCLIP-Tiny'], 'quick_gelu': True}))
    register_configs(cfg)
    model = create('SARCLIP-Tiny')[0]
    ck = save_checkpoint(model, module_tmp/'w.pt', name='SARCLIP-Tiny')
    return ck, toy_records(12, seed=1)


def test_two_model_names_do_not_share_features(world, tmp_path, monkeypatch):
    "The command line's feature cache (`sarvlm_eval ... --model X`): a second model name computes its own features."
    from sarvlm.cli_eval import eval_features
    monkeypatch.setenv('SARVLM_CACHE', str(tmp_path/'cache'))
    ck, ds = world
    a = eval_features(str(ck), ds, 'SARCLIP-Tiny')
    b = eval_features(str(ck), ds, 'SARCLIP-Tiny-quickgelu')
    assert not np.allclose(a['image'], b['image'])   # the old key (checkpoint bytes + split) returned a's features
    ref = create('SARCLIP-Tiny-quickgelu', pretrained=ck)
    from sarvlm.features import embed_images
    np.testing.assert_allclose(b['image'], embed_images(ref[0], ds['image'], ref[2]).numpy(), atol=1e-6)
    again = eval_features(str(ck), ds, 'SARCLIP-Tiny')
    np.testing.assert_array_equal(again['image'], a['image'])


def test_key_names_everything_that_changes_features(world):
    from sarvlm.features import features_key
    ck, ds = world
    k = features_key(ck, ds)
    assert k == features_key(ck, ds, 'SARCLIP-Tiny')          # the name stored in the checkpoint
    others = [features_key(ck, ds, 'SARCLIP-Tiny-quickgelu'), features_key(ck, ds.select(range(6))),
              features_key(ck, ds, scheme='db_mean_std'), features_key(None, ds, 'SARCLIP-Tiny', weights='mix'),
              features_key(None, ds, 'SARCLIP-Tiny', pretrained='some-tag')]
    assert len({k, *others}) == 6


def test_checkpoint_features_under_two_names(world, tmp_path):
    from sarvlm.features import checkpoint_features
    ck, ds = world
    a = checkpoint_features(ck, ds, cache_dir=tmp_path, verbose=False)
    b = checkpoint_features(ck, ds, model='SARCLIP-Tiny-quickgelu', cache_dir=tmp_path, verbose=False)
    assert not np.allclose(a['image'], b['image']) and len(list(tmp_path.glob('*.npz'))) == 2


def test_images_only_features_are_the_same_images_in_a_file_of_their_own(world, tmp_path):
    "`texts=False` (the study's measures): the same image features, no caption features, and its own cache file."
    from sarvlm.features import checkpoint_features, features_key, features_path
    ck, ds = world
    only = checkpoint_features(ck, ds, cache_dir=tmp_path, verbose=False, texts=False)
    both = checkpoint_features(ck, ds, cache_dir=tmp_path, verbose=False)
    assert 'text' not in only and both['text'].shape == both['image'].shape
    np.testing.assert_array_equal(only['image'], both['image'])
    key = features_key(ck, ds)
    assert features_path(key, tmp_path).is_file() and features_path(key, tmp_path, texts=False).is_file()
    assert 'text' in checkpoint_features(ck, ds, cache_dir=tmp_path, verbose=False)   # a read, not the images-only file


def test_a_split_too_big_to_keep_is_streamed_with_the_same_features(world):
    "Past `max_bytes` the pixels are streamed batch by batch (`TransformedRows`), never held, and embed the same."
    from sarvlm.models import create
    from sarvlm.features import dataset_pixels, embed_images, TransformedRows
    ck, ds = world
    ds = ds.select(range(10))   # a split no earlier test has kept the pixels of
    model, _, eval_tf, _ = create('SARCLIP-Tiny', pretrained=ck)
    rows = dataset_pixels(ds, 'image', eval_tf, max_bytes=0)
    assert isinstance(rows, TransformedRows) and len(rows) == len(ds)
    streamed = embed_images(model, rows, lambda x: x, batch_size=5)
    held = embed_images(model, ds['image'], eval_tf, batch_size=5)
    assert torch.equal(streamed, held)
