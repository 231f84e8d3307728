"""Training throughput: sarvlm's fastai loop vs `python -m open_clip_train.main` on the same config, data, batch and threads.

Both read the same SARVLM CSV (`imgpath,caption`, comma-separated; 8-bit PNGs of SAR images normalised with
`sarvlm.sar.normalize`), train SARCLIP-Tiny in fp32 on the CPU with AdamW, warm-up + cosine and gradient clipping
at 1.0, batch 64, no data-loader workers and 1 thread (OMP_NUM_THREADS=1). open_clip_train runs as
`python -m open_clip_train.main` after `import sarvlm.models` registers the tiny config (the only addition).
The step time of each is the median over the steps of a run (first 3 dropped), from open_clip_train's per-step log
(`--log-every-n-steps 1`, 'Batch (t)') and from our metrics.csv; runs alternate, `--repeats` times each, and the
ratio is median(open_clip_train step time) / median(ours): > 1 means ours is faster.

    .venv/bin/python benchmarks/bench_train.py [--n 1280] [--batch 64] [--repeats 2]
"""
import os, re, sys, csv, time, shutil, argparse, tempfile, subprocess, statistics
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_csv_scale import paired_ratio   # the same paired estimate of a ratio

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1', OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
           PYTHONHASHSEED='0')

def write_sarvlm_csv(n:int, dest:Path, size:int=64) -> Path:
    "n toy SAR records as 8-bit PNGs (sarvlm.sar.normalize -> 0..255) plus train.csv with imgpath,caption."
    from PIL import Image
    from sarvlm.sar import normalize
    from sarvlm.train import toy_records
    recs = toy_records(n, size=size, seed=0)
    (dest/'img').mkdir(parents=True, exist_ok=True)
    rows = []
    for i, r in enumerate(recs):
        p = dest/'img'/f'{i:06d}.png'
        Image.fromarray((normalize(np.asarray(r['image'])) * 255).round().astype(np.uint8)).convert('RGB').save(p)
        rows.append(dict(imgpath=str(p), caption=r['caption'], label=r['label']))
    with open(dest/'train.csv', 'w', newline='') as f:
        w = csv.DictWriter(f, ['imgpath', 'caption', 'label']); w.writeheader(); w.writerows(rows)
    return dest/'train.csv'

def csv_to_disk(csv_path:Path, dest:Path) -> Path:
    "The same CSV as a datasets.Dataset (image column read lazily from the PNG files), saved for `sarvlm.train`."
    import datasets
    ds = datasets.Dataset.from_csv(str(csv_path), cache_dir=str(dest.parent/'hf_cache'))
    ds = ds.rename_column('imgpath', 'image').cast_column('image', datasets.Image())
    ds.save_to_disk(str(dest)); return dest

def step_times_ours(run:Path) -> list:
    with open(run/'metrics.csv') as f: s = [float(r['seconds']) for r in csv.DictReader(f) if r['loss']]
    return list(np.diff(s))

def run_ours(data:Path, out:Path, a) -> list:
    cmd = [sys.executable, '-m', 'sarvlm.train', '--data', str(data), '--out', str(out), '--model', a.model,
           '--epochs', str(a.epochs), '--batch-size', str(a.batch), '--lr', '1e-3', '--wd', '0.1', '--warmup', '5', '--grad-clip', '1.0',
           '--precision', a.precision, '--num-workers', str(a.workers), '--no-progress'] + (['--threads', '1'] if a.device == 'cpu' else [])
    r = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True)
    if r.returncode: sys.exit(f'sarvlm.train failed:\n{r.stderr[-3000:]}')
    return step_times_ours(out)[3:]

def run_open_clip_train(csv_path:Path, out:Path, a) -> list:
    args = ['--train-data', str(csv_path), '--dataset-type', 'csv', '--csv-separator', ',', '--csv-img-key', 'imgpath',
            '--csv-caption-key', 'caption', '--model', a.model, '--batch-size', str(a.batch), '--epochs', str(a.epochs),
            '--lr', '1e-3', '--wd', '0.1', '--warmup', '5', '--grad-clip-norm', '1.0', '--precision', a.precision,
            '--workers', str(a.workers), '--device', a.device, '--log-every-n-steps', '1', '--logs', str(out), '--name', 'bench', '--save-frequency', '0',
            '--seed', '0', '--report-to', '']
    code = ("import sys, runpy, sarvlm.models; import torch; " + ("torch.set_num_threads(1); " if a.device == 'cpu' else '') +
            f"sys.argv = ['open_clip_train.main'] + {args!r}; runpy.run_module('open_clip_train.main', run_name='__main__')")
    r = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=ENV, capture_output=True, text=True)
    log = r.stdout + r.stderr
    if r.returncode: sys.exit(f'open_clip_train failed:\n{log[-3000:]}')
    t = [float(x) for x in re.findall(r'Batch \(t\): ([0-9.]+)', log)]
    if not t: sys.exit(f'no step times found in the open_clip_train log:\n{log[-2000:]}')
    return t[3:]

def parse(argv=None, **defaults):
    ap = argparse.ArgumentParser()
    ap.add_argument('--n', type=int, default=1280); ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--repeats', type=int, default=2); ap.add_argument('--model', default='SARCLIP-Tiny')
    ap.add_argument('--size', type=int, default=64); ap.add_argument('--precision', default='fp32')
    ap.add_argument('--device', default='cpu'); ap.add_argument('--workers', type=int, default=0)
    ap.add_argument('--epochs', type=int, default=1, help='epochs of each training run (more timed steps)')
    ap.add_argument('--loader-batches', type=int, default=0,
                    help='also time each reader alone: images/s of up to this many batches of one epoch')
    ap.set_defaults(**defaults)
    return ap.parse_args(argv)

def _loaders(a, csv_path:Path, data:Path) -> dict:
    """Each trainer's training data loader, built as it builds it: ours (`sarvlm.train`: `load_records`,
    `RecordsDataset`, `make_dls`) and open_clip_train's (`CsvDataset` in a shuffled `DataLoader`)."""
    import torch, open_clip
    from open_clip_train.data import CsvDataset
    from sarvlm.models import create
    from sarvlm.train import load_records, RecordsDataset, make_dls
    model, train_tf, _, tok = create(a.model)
    tr, _ = load_records(str(data))
    ours = make_dls(RecordsDataset(tr, train_tf, tok), None, a.batch, num_workers=a.workers, device=a.device).train
    pre = open_clip.create_model_and_transforms(a.model)[1]   # what open_clip_train.main trains with
    ds = CsvDataset(str(csv_path), pre, img_key='imgpath', caption_key='caption', sep=',', tokenizer=tok)
    ref = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=a.workers,
                                      pin_memory=a.device != 'cpu', drop_last=True)
    return {'ours': ours, 'open_clip_train': ref}

def loader_rate(dl, batches:int, device:str) -> tuple:
    """(images/s, batches timed) of `dl` alone: the batches of one epoch after its first 3 (worker start-up), at
    most `batches`. Within one epoch only: a new epoch starts the workers again, which training steps do not time."""
    import torch
    n, k, t0 = 0, 0, None
    for i, b in enumerate(dl):
        b[0].to(device, non_blocking=True)
        if device != 'cpu': torch.cuda.synchronize()
        if i == 2: t0 = time.perf_counter()
        elif i > 2: n, k = n + len(b[0]), k + 1
        if k >= batches: break
    if not k: raise SystemExit(f'loader_rate: an epoch of {i + 1} batches leaves none to time after the first 3')
    return n / (time.perf_counter() - t0), k

def main(a=None):
    a = a or parse()
    tmp = Path(tempfile.mkdtemp(prefix='bench_train_'))
    try: bench(a, tmp)
    finally: shutil.rmtree(tmp, ignore_errors=True)   # the runs' checkpoints are hundreds of MB

def bench(a, tmp:Path):
    t0 = time.perf_counter(); csv_path = write_sarvlm_csv(a.n, tmp/'csv', a.size); data = csv_to_disk(csv_path, tmp/'ds')
    print(f'data: {a.n} toy SAR records ({a.size} px) as SARVLM CSV + PNGs in {time.perf_counter() - t0:.1f} s; '
          f'{a.model}, batch {a.batch}, {a.precision}, {a.device}, {a.workers} workers' + (', 1 thread' if a.device == 'cpu' else ''))
    if a.loader_batches:   # is training waiting for data? each reader alone, alternating
        dls, rates = _loaders(a, csv_path, data), {'ours': [], 'open_clip_train': []}
        for i in range(a.repeats):
            for k in (list(dls) if i % 2 == 0 else list(dls)[::-1]):
                rates[k].append(loader_rate(dls[k], a.loader_batches, a.device))
        print('data loaders alone (images/s over the batches timed, each repeat): ' +
              '; '.join(f"{k} {', '.join(f'{r:.0f} ({m})' for r, m in v)}" for k, v in rates.items()))
    ours, ref = [], []
    med = {'ref': [], 'ours': []}   # per-repeat median step times: the repeats are the pairs
    for i in range(a.repeats):
        r, o = run_open_clip_train(csv_path, tmp/f'oct{i}', a), run_ours(data, tmp/f'ours{i}', a)
        ref += r; ours += o; med['ref'].append(statistics.median(r)); med['ours'].append(statistics.median(o))
        print(f"  repeat {i + 1}: open_clip_train {med['ref'][-1]:.4f} s/step, ours {med['ours'][-1]:.4f} "
              f"s/step (medians of {len(r)} and {len(o)} steps), ratio {med['ref'][-1] / med['ours'][-1]:.3f}", flush=True)
    if a.repeats > 1:
        t = paired_ratio(med['ref'], med['ours'])
        print(f"paired ratio over {t['pairs']} repeats: {t['ratio']:.3f} [{t['ci_low']:.3f}, {t['ci_high']:.3f}], "
              f"p = {t['p_value']:.2f}")
    mo, mr = statistics.median(ours), statistics.median(ref)
    print(f'median step time: ours {mo:.3f} s ({a.batch/mo:.0f} img/s), open_clip_train {mr:.3f} s ({a.batch/mr:.0f} img/s)')
    print(f'ratio (open_clip_train time / ours) = {mr/mo:.2f}   target >= 1.0')

if __name__ == '__main__': main()
