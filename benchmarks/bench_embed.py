"""Embedding extraction: `sarvlm.features.embed_images/embed_texts` vs a plain open_clip loop, same model, images, batch, threads.

The plain loop is open_clip's README recipe: preprocess each image, stack a batch, `torch.no_grad()`,
`model.encode_image`, divide by the norm. Images are 8-bit RGB renderings of toy SAR records (what plain open_clip
can read). Runs alternate; medians over `--repeats`; ratio = plain time / ours (> 1: ours is faster).

    .venv/bin/python benchmarks/bench_embed.py [--n 1024] [--batch 256] [--repeats 5] [--model SARCLIP-Tiny]
"""
import os, time, argparse, statistics
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import numpy as np, torch, open_clip
from PIL import Image
from sarvlm.models import create
from sarvlm.features import embed_images, embed_texts
from sarvlm.sar import normalize
from sarvlm.train import toy_records

def plain_images(model, images, preprocess, batch):
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            f = model.encode_image(torch.stack([preprocess(im) for im in images[i:i + batch]]))
            out.append(f / f.norm(dim=-1, keepdim=True))
    return torch.cat(out)

def plain_texts(model, texts, tokenizer, batch):
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            f = model.encode_text(tokenizer(texts[i:i + batch])); out.append(f / f.norm(dim=-1, keepdim=True))
    return torch.cat(out)

def timed(f):
    t = time.perf_counter(); r = f(); return time.perf_counter() - t, r

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--n', type=int, default=1024); ap.add_argument('--batch', type=int, default=256)
    ap.add_argument('--repeats', type=int, default=5); ap.add_argument('--model', default='SARCLIP-Tiny'); a = ap.parse_args()
    torch.set_num_threads(1); torch.manual_seed(0)
    recs = toy_records(a.n)
    images = [Image.fromarray((normalize(np.asarray(r['image']))*255).astype(np.uint8)).convert('RGB') for r in recs]
    texts = list(recs['caption'])
    model, _, pre, tokenizer = create(a.model)
    ref, _, ref_pre = open_clip.create_model_and_transforms(a.model); ref.load_state_dict(model.state_dict()); ref.eval()
    ref_tok = open_clip.get_tokenizer(a.model)
    ti = {'ours': [], 'plain': []}; tt = {'ours': [], 'plain': []}
    runs = {'ours': (lambda: embed_images(model, images, pre, a.batch), lambda: embed_texts(model, texts, tokenizer, a.batch)),
            'plain': (lambda: plain_images(ref, images, ref_pre, a.batch),
                      lambda: plain_texts(ref, texts, ref_tok, a.batch))}
    for k in runs: runs[k][0](); runs[k][1]()   # warm-up
    feats = {}
    for r in range(a.repeats):
        for k in (['ours', 'plain'] if r % 2 == 0 else ['plain', 'ours']):   # alternate who goes first
            d, fi = timed(runs[k][0]); ti[k].append(d)
            d, ft = timed(runs[k][1]); tt[k].append(d)
            feats[k] = (fi, ft)
    (fo, go), (fp, gp) = feats['ours'], feats['plain']
    assert torch.allclose(fo, fp, atol=1e-5) and torch.allclose(go, gp, atol=1e-5), 'embeddings differ'
    print(f'{a.model}, {a.n} images/texts, batch {a.batch}, 1 thread; max |ours - plain| image {float((fo - fp).abs().max()):.1e}')
    for what, t in (('images', ti), ('texts', tt)):
        mo, mp = statistics.median(t['ours']), statistics.median(t['plain'])
        print(f'{what:6s}: ours {a.n/mo:7.0f}/s, plain open_clip {a.n/mp:7.0f}/s, ratio (plain time / ours) = {mp/mo:.2f}  target >= 1.0')

if __name__ == '__main__': main()
