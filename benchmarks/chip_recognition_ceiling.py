"""How well can the single-target SAR chips of sarvlm-mini's test split be told apart at 64 px at all?

Notebook 13 finds that CIDEr is earned mostly on the chips (one target in the middle): a caption naming a chip's
class right scores about 1 in CIDEr there, while on a scene with many objects, whose five references agree little, any
caption earns far less. So the captioners' CIDEr is set mostly by how often they name a chip's class, and the notebook
computes the chip `class_hit` that CIDEr 0.5 would need. This script
measures what a recogniser built for nothing else reaches on the same chips, as a yardstick for that need: a small
convolutional network (4 conv layers, 0.13 M parameters) trained with cross-entropy on many fresh chips of the
captioners' world (the eight classes they train on, held-out bus and bridge excluded, as in their scenes), then
scored on sarvlm-mini's SAR test chips of those classes. It is not a captioner and shares nothing with one; it says
how far recognition at 64 px can go with far more chips and a convolutional prior, not what SARCap-Tiny's ViT tower
could reach.

    python benchmarks/chip_recognition_ceiling.py [--n 4000] [--epochs 12] [--seeds 0 1 2] [--workers 2]
        [--out benchmarks/results/chip_recognition_ceiling.json]

Each seed draws its own chips (a stream of its own), initialisation and batch order; seeds run side by side in
`--workers` processes of one thread each. Prints and saves per seed the top-1 accuracy on the test chips after
every epoch and the confusion of the last, and over seeds the mean of the last epoch with its 95 % t interval.
"""
import os
for _v in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS'):
    os.environ.setdefault(_v, '1')
import argparse, collections, json, time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
import numpy as np

def _test_chips():
    "(images (n, 1, 64, 64) in the dB window, class indices, class names) of the held-in SAR test chips."
    import torch
    from sarvlm.data import build_mini, domain_split
    from sarvlm.caption_metrics import record_annot
    from sarvlm.transfer import held_out_classes
    from sarvlm.scenes import CLASSES
    from sarvlm.sar import normalize
    held = set(held_out_classes())
    classes = [c for c in CLASSES if c not in held]
    test = domain_split(build_mini(verbose=False), 'test', 'sar')
    keep = [(im, record_annot(m)) for im, m in zip(test['image'], test['meta'])]
    keep = [(im, a.objects[0].cls) for im, a in keep if a.kind == 'chip' and a.objects[0].cls not in held]
    x = torch.tensor(np.stack([normalize(np.asarray(im, np.float32)) for im, _ in keep]))[:, None]
    return x, torch.tensor([classes.index(c) for _, c in keep]), classes

def _net(n_classes):
    import torch.nn as nn
    c = lambda i, o: [nn.Conv2d(i, o, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*c(1, 32), nn.MaxPool2d(2), *c(32, 64), nn.MaxPool2d(2), *c(64, 64), nn.MaxPool2d(2),
                         *c(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, n_classes))

def run_seed(seed:int, n:int, epochs:int) -> dict:
    "Train the network on `n` fresh held-in chips of stream `seed`; test accuracy per epoch, last confusion."
    import torch, torch.nn.functional as F
    from sarvlm.data import fresh_record
    from sarvlm.transfer import study_config, stream_id, held_out_classes
    from sarvlm.tasks.captioning import present_matrix
    from sarvlm.scenes import CLASSES
    from sarvlm.sar import normalize
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    xt, yt, classes = _test_chips()
    t0 = time.perf_counter()
    stream = stream_id(study_config(), seed, 'sar', 'chip-ceiling')
    recs = [fresh_record(stream, 'train', 0, i, 'sar', 64, held_out_classes(), chip_fraction=1.0) for i in range(n)]
    x = torch.tensor(np.stack([normalize(np.asarray(r['image'], np.float32)) for r in recs]))[:, None]
    y = torch.tensor(present_matrix([r['meta'] for r in recs], classes)).argmax(1)
    render_s = time.perf_counter() - t0
    net = _net(len(classes))
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=0.05)
    g = torch.Generator().manual_seed(seed)
    acc = []
    for _ in range(epochs):
        net.train()
        for b in torch.randperm(len(x), generator=g).split(64):
            xb = x[b]
            if bool(torch.rand(1, generator=g) < 0.5): xb = xb.flip(3)   # left-right: the class does not change
            loss = F.cross_entropy(net(xb), y[b])
            opt.zero_grad(); loss.backward(); opt.step()
        net.eval()
        with torch.no_grad(): pred = net(xt).argmax(1)
        acc.append(100 * float((pred == yt).float().mean()))
    conf = {classes[k]: dict(collections.Counter(classes[j] for j in pred[yt == k].tolist()))
            for k in range(len(classes)) if (yt == k).any()}
    return dict(seed=seed, train_chips=n, train_per_class=dict(collections.Counter(classes[i] for i in y.tolist())),
                test_chips=len(yt), accuracy_by_epoch=acc, accuracy=acc[-1], confusion=conf,
                render_s=render_s, train_s=time.perf_counter() - t0 - render_s)

def main(n=4000, epochs=12, seeds=(0, 1, 2), workers=2, out=None):
    from sarvlm.stats import mean_ci
    t = time.perf_counter()
    with ProcessPoolExecutor(workers) as ex:
        runs = list(ex.map(run_seed, seeds, [n] * len(seeds), [epochs] * len(seeds)))
    for r in runs:
        print(f"seed {r['seed']}: {r['test_chips']} test chips, top-1 {r['accuracy']:.1f} % after {epochs} epochs "
              f"(by epoch {', '.join(f'{a:.0f}' for a in r['accuracy_by_epoch'])}); "
              f"render {r['render_s']:.0f} s, train {r['train_s']:.0f} s")
    accs = [r['accuracy'] for r in runs]
    mean, half = mean_ci(accs)
    lo, hi = mean - half, mean + half
    summary = dict(mean=mean, ci_low=lo, ci_high=hi, seeds=list(seeds))
    print(f"held-in SAR test chips, top-1 over {len(seeds)} seeds: {summary['mean']:.1f} % [{lo:.1f}, {hi:.1f}] "
          f"(chance {100 / len(runs[0]['confusion']):.1f} %); wall {time.perf_counter() - t:.0f} s")
    if out:
        res = dict(benchmark='chip_recognition_ceiling', n=n, epochs=epochs, runs=runs, summary=summary,
                   chance=100 / len(runs[0]['confusion']))
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(res, indent=1))
        print(f"saved {out}")
    return runs

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--n', type=int, default=4000, help='fresh training chips per seed')
    p.add_argument('--epochs', type=int, default=12)
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--out', default=None, help='write the results here as JSON')
    a = p.parse_args()
    main(a.n, a.epochs, tuple(a.seeds), a.workers, a.out)
