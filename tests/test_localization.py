"""Semantic localization (sarvlm.tasks.localization): SLM metrics against hand-computable maps, invariances that must
hold (a map's scale, the order of polygons), tiling that covers every pixel, and the whole text-query pipeline on a
generated SAR scene with random weights and with any stage checkpoint that exists. Runs in a few seconds."""
import math
import numpy as np
import pytest
import torch
from sarvlm.tasks import localization as L

SQ = [[20, 20, 60, 20, 60, 50, 20, 50], [150, 160, 210, 160, 210, 200, 150, 200]]


def test_oracle_beats_every_other_map():
    M = L.polygons_mask(SQ, (256, 256)).astype(float)
    best = L.slm(M, SQ)
    assert best['Rmi'] > 0.99 and best['Rda'] == 1.0 and best['Ras'] < 0.01
    rng = np.random.default_rng(0)
    flat_noise_wrong = [np.ones_like(M), rng.random(M.shape), np.roll(M, 100, 0)]
    assert all(L.slm(o, SQ)['Rmi'] < best['Rmi'] - 0.5 for o in flat_noise_wrong)
    noisy = L.slm(0.5 * M + 0.5 * rng.random(M.shape), SQ)   # the right place, but a noisy map: close, still below
    assert 0.8 < noisy['Rmi'] < best['Rmi'] and noisy['Rsu'] < best['Rsu']


def test_uniform_rsu_is_hand_computable():
    M = L.polygons_mask(SQ, (256, 256))
    for c in (0.1, 1.0):   # Rsu depends on the ratio of mean inside to mean outside only
        assert L.rsu(np.full(M.shape, c), M) == pytest.approx(1 - math.exp(-0.707), abs=1e-6)


def test_polygon_order_does_not_matter():
    M = L.polygons_mask(SQ, (256, 256)).astype(float)
    P = np.clip(M * 0.8 + 0.1 * np.random.default_rng(1).random(M.shape), 0, 1)
    a, b = L.slm(P, SQ), L.slm(P, SQ[::-1])
    assert a == pytest.approx(b)


def test_ras_and_rda_edge_cases():
    assert L.ras([(50, 50, 10)], []) == 1.0 and L.rda([(50, 50, 10)], []) == 0.0
    assert L.ras([(50, 50, 10)], [(50, 50)]) == 0.0 and L.rda([(50, 50, 10)], [(50, 50)]) == 1.0
    with pytest.raises(ValueError, match='mask is empty'): L.rsu(np.ones((8, 8)), np.zeros((8, 8)))


@pytest.mark.parametrize('side', [256, 300, 512])
def test_tiles_cover_every_pixel(side):
    tiles = L.tile_grid(side)
    cover = np.zeros((side, side), int)
    for r, c, s in tiles: cover[r:r + s, c:c + s] += 1
    assert cover.min() >= 3 and len(set(tiles)) == len(tiles)   # every pixel is seen at every scale


def test_pipeline_on_a_generated_scene():
    scenes = L.make_scenes(1, 256, seed=3, themes=('harbour',))
    sid, img, qs = scenes[0]
    model, _, tokenizer, _ = L.load_model(model='SARCLIP-Tiny', seed=0)
    out = L.localize(model, tokenizer, img, [q for _, q, _ in qs], contrast=None)   # the raw map
    assert out['prob'].shape == (len(qs), 256, 256) and 0 <= out['prob'].min() and out['prob'].max() <= 1
    # tile scores are cosine similarities computed the same way as the model's own encode_image on a resized tile
    x = L.tile_batch(__import__('sarvlm.models', fromlist=['x']).sar_to_tensor(img), out['tiles'][:1], model)
    with torch.no_grad():
        e = model.encode_image(x, normalize=True); t = model.encode_text(tokenizer([qs[0][1]]), normalize=True)
    assert float(e @ t.T) == pytest.approx(out['scores'][0, 0], abs=1e-5)
    for (c, q, polys), p in zip(qs, out['prob']):
        m = L.slm(p, polys)
        assert set(m) == {'Rsu', 'Ras', 'Rda', 'Rmi'} and all(0 <= v <= 1 for v in m.values())


def test_any_existing_stage_checkpoint_loads():
    found = {k: v for k, v in L.available_models().items() if v is not None}
    if not found: pytest.skip('no stage checkpoint under runs/ (run 07_transfer first)')
    model, _, tokenizer, _ = L.load_model(next(iter(found.values())), 'SARCLIP-Tiny', seed=0)
    it = L.vit_internals(model, torch.zeros(2, 3, 64, 64))
    assert L.attention_rollout(it['attn']).shape == (2, 8, 8)
    with pytest.raises(FileNotFoundError): L.load_model('/nonexistent/checkpoint.pt')

def test_localize_uses_the_scheme_it_is_given():
    "`--scheme`/`scheme=` reaches the tiles: another normalisation gives other tile scores (it was ignored before)."
    sid, img, qs = L.make_scenes(1, 128, seed=3, themes=('harbour',))[0]
    model, _, tokenizer, _ = L.load_model(model='SARCLIP-Tiny', seed=0)
    q = [qs[0][1]]
    auto, clip = (L.localize(model, tokenizer, img, q, scales=(64, 128), scheme=s)['scores'] for s in ('auto', 'db_clip'))
    pct = L.localize(model, tokenizer, img, q, scales=(64, 128), scheme='db_pct')['scores']
    np.testing.assert_array_equal(auto, clip)   # sarvlm-mini is calibrated: 'auto' is the dB window
    assert np.abs(pct - clip).max() > 1e-4


def _contrast_case(seed=0, n=30, k=3, D=16):
    "Tiles in k regions (one per class) sharing a direction u whose weight varies from tile to tile; query c = 4u + class c."
    rng = np.random.default_rng(seed)
    E, region = np.eye(D), np.repeat(np.arange(k), n // k)
    e = rng.uniform(0.5, 4, n)[:, None] * E[0] + E[1 + region] + 0.05 * rng.normal(size=(n, D))
    t = np.stack([4 * E[0] + E[1 + c] for c in range(k)])
    f = lambda a: torch.nn.functional.normalize(torch.tensor(a, dtype=torch.float32), dim=-1)
    return f(t), f(e), region


def test_class_contrast_gives_maps_that_follow_the_query():
    "Issue 17: the shared direction makes every raw map the same map; subtracting the class-mean map leaves each class's own."
    t, e, region = _contrast_case()
    raw, con = L.query_scores(t, e), L.query_scores(t, e, t.mean(0))
    assert L.query_map_similarity(raw) > 0.75            # the symptom: three queries, nearly one map
    assert L.query_map_similarity(con) < 0               # after: the maps differ by query
    assert list(region[con.argmax(1)]) == [0, 1, 2]      # and each peaks in its own region
    np.testing.assert_allclose(con, raw - (t.mean(0) @ e.T).numpy()[None], atol=1e-6)   # = minus the mean class map


def test_query_map_similarity_hand_cases():
    a = np.arange(12.).reshape(3, 4)
    assert L.query_map_similarity([a, 3 * a + 2]) == pytest.approx(1.0)
    assert L.query_map_similarity([a, -a]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match='at least two'): L.query_map_similarity([a])


def test_localize_contrasts_on_a_generated_scene():
    "Default maps (class contrast) differ by query; contrast=None is the raw map; the contrasts are the documented ones."
    sid, img, qs = L.make_scenes(1, 128, seed=3, themes=('harbour',))[0]
    model, _, tokenizer, _ = L.load_model(model='SARCLIP-Tiny', seed=0)
    probe = [L.QUERY_TEMPLATE.format(c) for c in L.QUERY_CLASSES]
    default, raw = (L.localize(model, tokenizer, img, probe, scales=(64, 128), median=15, **kw) for kw in ({}, {'contrast': None}))
    assert L.query_map_similarity(default['heat']) < min(0.2, L.query_map_similarity(raw['heat']) - 0.3)
    ref = L.contrast_embedding(model, tokenizer, 'classes')
    tiles, e = L.tile_embeddings(model, img, (64, 128))
    np.testing.assert_allclose(default['scores'], raw['scores'] - (ref @ e.T).numpy()[None], atol=1e-5)
    neutral = L.localize(model, tokenizer, img, probe[:2], scales=(64, 128), median=15, contrast='neutral')
    assert neutral['prob'].shape == (2, 128, 128)
    with pytest.raises(ValueError, match="expected 'classes'"): L.contrast_embedding(model, tokenizer, 'mean')


def test_scene_bootstrap_interval():
    import pandas as pd
    df = pd.DataFrame(dict(scene=list('aabcc'), Rmi=[0.2, 0.4, 0.5, 0.8, 1.0]))
    b = L.scene_bootstrap(df, ['Rmi'])
    assert b.loc['Rmi', 'mean'] == pytest.approx(0.58)   # the mean over (scene, query) pairs
    assert 0.2 <= b.loc['Rmi', 'lo'] < 0.58 < b.loc['Rmi', 'hi'] <= 1.0
