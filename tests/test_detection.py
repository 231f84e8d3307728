"""Detection with a SARCLIP backbone (sarvlm.tasks.detection): pycocotools mAP on hand-computable cases, targets read
from sarvlm-mini records, the ViT backbone's feature map, and a detector that learns to fit a handful of images."""
import json
import numpy as np
import pytest
import torch
from sarvlm.tasks import detection as D
from sarvlm.stats import mean_ci
from sarvlm.models import load_model

GT = [dict(boxes=torch.tensor([[10., 10, 30, 30], [40, 40, 50, 60]]), labels=torch.tensor([1, 2])),
      dict(boxes=torch.tensor([[5., 5, 25, 15]]), labels=torch.tensor([1]))]


def test_perfect_boxes_give_ap_one():
    perfect = [dict(t, scores=torch.ones(len(t['labels']))) for t in GT]
    assert D.coco_map(perfect, GT, ['a', 'b']) == dict(map=1.0, map50=1.0, map75=1.0)


def test_wrong_class_or_missing_boxes_lower_ap():
    wrong = [dict(t, labels=3 - t['labels'], scores=torch.ones(len(t['labels']))) for t in GT]
    assert D.coco_map(wrong, GT, ['a', 'b'])['map50'] == 0.0
    half = [dict(boxes=GT[0]['boxes'][:1], labels=GT[0]['labels'][:1], scores=torch.ones(1)),
            dict(boxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.int64), scores=torch.zeros(0))]
    # class 'a': one of two found (AP 0.5 at 101-point interpolation: 51/101); class 'b': none
    assert D.coco_map(half, GT, ['a', 'b'])['map50'] == pytest.approx((51 / 101 + 0) / 2, abs=1e-6)


def test_record_targets_drop_and_count():
    meta = json.dumps(dict(boxes=[dict(cls='ship', bbox=[1, 2, 11, 12]), dict(cls='car', bbox=[3, 3, 4, 4]),
                                  dict(cls='tank', bbox=[20, 20, 30, 30]), dict(cls='ship', bbox=None)]))
    img, t, dropped = D.record_targets(dict(image=np.ones((64, 64), np.float32), meta=meta), ['car', 'ship'], min_px=2)
    assert img.shape == (3, 64, 64) and t['labels'].tolist() == [2] and t['boxes'].tolist() == [[1, 2, 11, 12]]
    assert dropped == 3   # a 1 px car, a class outside the list, a box-less object


def test_backbone_is_the_clip_tower():
    model = load_model(model='SARCLIP-Tiny', seed=0).model
    det = D.make_detector(model, 3)
    assert det.backbone.visual is model.visual   # the same weights, not a copy
    x = torch.rand(2, 3, 64, 64)
    assert det.backbone(x)['0'].shape == (2, 64, 16, 16)


def test_detector_fits_a_few_images():
    torch.manual_seed(0); rng = np.random.default_rng(0)
    imgs, tgts = [], []
    for _ in range(8):   # bright squares on speckle-like noise
        im = torch.rand(3, 64, 64) * 0.2; x, y = rng.integers(4, 40, 2)
        im[:, y:y + 16, x:x + 16] = 0.9
        imgs.append(im); tgts.append(dict(boxes=torch.tensor([[x, y, x + 16, y + 16]], dtype=torch.float32), labels=torch.tensor([1])))
    model = load_model(model='SARCLIP-Tiny', seed=0).model
    det = D.make_detector(model, 1)
    hist = D.train_detector(det, dict(images=imgs, targets=tgts), epochs=10, batch_size=8, lr=3e-3, lr_backbone=1e-3)
    assert hist[-1] < 0.7 * hist[0]
    assert D.coco_map(D.predict(det, imgs), tgts, ['square'])['map50'] > 0.5


def test_box_sides_start_alive_and_a_dead_side_is_seen():
    """The box-side distances start above 0 everywhere (`reg_bias=1`), so each side has a gradient; a start below 0
    (the dead-ReLU collapse of the two-stage backbone under torchvision's default start) reads 0 % for that side."""
    model = load_model(model='SARCLIP-Tiny', seed=0).model
    images = list(torch.rand(4, 3, 64, 64))
    assert D.box_sides_alive(D.make_detector(model, 3), images) == [100.0] * 4
    dead = D.make_detector(model, 3)
    with torch.no_grad(): dead.head.regression_head.bbox_reg.bias[0] = -5.0   # the left side only
    alive = D.box_sides_alive(dead, images)
    assert alive[0] == 0.0 and alive[1:] == [100.0] * 3


def test_rendered_split_matches_the_records_and_counts_drops():
    """`render_detection_split` renders the scenes of a sarvlm-mini split at any size; at 64 px and 2 px it gives the
    boxes of the records, and at 128 px every drop below `min_px` is counted per class."""
    from sarvlm.data import build_mini
    dd = build_mini(0, verbose=False)
    recs = D.detection_split(dd['train'], n=6)
    r64 = D.render_detection_split('train', 64, min_px=2.0, n=6)
    assert [t['boxes'].tolist() for t in r64['targets']] == [t['boxes'].tolist() for t in recs['targets']]
    r = D.render_detection_split('train', 128, min_px=8.0, n=6)
    assert r['images'][0].shape == (3, 128, 128) and len(r['kinds']) == 6
    kept = [b for t in r['targets'] for b in t['boxes'].tolist()]
    assert all(min(x1 - x0, y1 - y0) >= 8 for x0, y0, x1, y1 in kept)
    everything = D.render_detection_split('train', 128, min_px=0.0, n=6)
    assert sum(len(t['labels']) for t in everything['targets']) == len(kept) + sum(r['dropped'].values())


def test_vit_tokens_match_the_tower_and_interpolate():
    model = load_model(model='SARCLIP-Tiny', seed=0).model
    x = torch.rand(2, 3, 64, 64)
    det = D.make_detector(model, 3, upsample=1)
    with torch.no_grad():
        v = model.visual
        _, mean, std = D._input_cfg(model)
        ref = v.ln_post(v.transformer(v._embeds((x - mean) / std))[:, 1:]).transpose(1, 2).reshape(2, -1, 8, 8)
    assert torch.allclose(D.vit_tokens(model, list(x), bf16=False), ref, atol=1e-5)
    assert D.vit_tokens(model, [torch.rand(3, 128, 128)]).shape == (1, 128, 16, 16)
    assert torch.equal(D.pos_embed(v, 8), v.positional_embedding)
    views = D.view_tokens(model, list(x), bf16=False)
    assert views.shape == (4, 2, 128, 8, 8) and views.is_contiguous()   # channels first (the fast layout)
    for k in range(4):   # view k: the tokens of the k-th flip of each image, not a flip of the tokens
        assert torch.allclose(views[k], D.vit_tokens(model, [D.flip_view(im, k) for im in x], bf16=False))


def test_flip_targets_follow_the_flipped_image():
    img = torch.zeros(1, 32, 32)
    img[0, 3:9, 20:30] = 1                                       # an object at x 20..30, y 3..9
    t = dict(boxes=torch.tensor([[20., 3., 30., 9.]]), labels=torch.tensor([2]))
    for k in range(4):
        x0, y0, x1, y1 = D.flip_targets(t, k, 32)['boxes'][0].int().tolist()
        v = D.flip_view(img, k)
        assert v[0, y0:y1, x0:x1].sum() == 60 and v.sum() == 60   # the whole object inside the flipped box
        assert torch.equal(D.flip_targets(D.flip_targets(t, k, 32), k, 32)['boxes'], t['boxes'])
    assert D.flip_targets(t, 3, 32)['labels'] is t['labels']


def test_token_detector_anchors_at_cell_centres_and_fits():
    torch.manual_seed(0)
    det = D.TokenFCOS(16, 1, 64, 8)
    from torchvision.models.detection.image_list import ImageList
    a = det.anchor_generator(ImageList(torch.zeros(1, 1, 64, 64), [(64, 64)]), [torch.zeros(1, 32, 8, 8)])[0]
    assert ((a[:, :2] + a[:, 2:]) / 2)[:2].tolist() == [[4.0, 4.0], [12.0, 4.0]]
    # token maps with a bright 2x2-cell square: the head alone has to find it
    rng = np.random.default_rng(0)
    toks, tgts = [], []
    for _ in range(16):
        f = torch.randn(16, 8, 8) * 0.1
        i, j = rng.integers(0, 6, 2)
        f[:, i:i + 2, j:j + 2] += 2.0
        toks.append(f)
        tgts.append(dict(boxes=torch.tensor([[8. * j, 8. * i, 8. * j + 16, 8. * i + 16]], dtype=torch.float32), labels=torch.tensor([1])))
    views = torch.stack([D.flip_view(torch.stack(toks), k) for k in range(len(D.FLIPS))])   # maps = images here
    hist = D.train_head(det, views, tgts, steps=150, batch_size=8, lr=1e-2)
    # `rows` trains on those images in place: the same run as on a copy of them
    r, runs = [1, 4, 6, 9, 15], []
    for v, t, rows in ((views, tgts, r), (views[:, r], [tgts[i] for i in r], None)):
        torch.manual_seed(1)
        runs.append(D.train_head(D.TokenFCOS(16, 1, 64, 8), v, t, steps=6, batch_size=4, rows=rows))
    assert runs[0] == runs[1]
    assert np.mean(hist[-10:]) < 0.7 * np.mean(hist[:10])
    assert D.coco_map(D.predict(det, torch.stack(toks)), tgts, ['square'])['map50'] > 0.5


def test_per_class_ap_and_paired_stats():
    one = [dict(boxes=torch.tensor([[10., 10, 30, 30]]), labels=torch.tensor([1]))]
    fp_first = [dict(boxes=torch.tensor([[40., 40, 60, 60], [10, 10, 30, 30]]), scores=torch.tensor([0.9, 0.8]),
                     labels=torch.tensor([1, 1]))]
    ap = D.coco_eval(fp_first, one, ['ship', 'tank'])['ap50']
    assert ap['ship'] == pytest.approx(0.5) and np.isnan(ap['tank'])
    m, h = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and h == pytest.approx(4.303 * 1 / np.sqrt(3), rel=1e-3)   # t(0.975, 2) = 4.303
    import pandas as pd
    curves = pd.DataFrame([dict(init=i, seed=s, n_train=10, map50=v) for i, vals in
                           (('a', (10., 12., 14.)), ('b', (8., 9.9, 12.1))) for s, v in enumerate(vals)])
    t = D.curve_paired_test(curves, 'a', 'b', 10)
    assert t['diff'] == 2.0 and t['seeds'] == 3 and t['p'] < 0.05
