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
           '--epochs', '1', '--batch-size', str(a.batch), '--lr', '1e-3', '--wd', '0.1', '--warmup', '5', '--grad-clip', '1.0',
           '--precision', a.precision, '--num-workers', str(a.workers), '--no-progress'] + (['--threads', '1'] if a.device == 'cpu' else [])
    r = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True)
    if r.returncode: sys.exit(f'sarvlm.train failed:\n{r.stderr[-3000:]}')
    return step_times_ours(out)[3:]

def run_open_clip_train(csv_path:Path, out:Path, a) -> list:
    args = ['--train-data', str(csv_path), '--dataset-type', 'csv', '--csv-separator', ',', '--csv-img-key', 'imgpath',
            '--csv-caption-key', 'caption', '--model', a.model, '--batch-size', str(a.batch), '--epochs', '1',
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
    ap.set_defaults(**defaults)
    return ap.parse_args(argv)

def main(a=None):
    a = a or parse()
    tmp = Path(tempfile.mkdtemp(prefix='bench_train_'))
    try: bench(a, tmp)
    finally: shutil.rmtree(tmp, ignore_errors=True)   # the runs' checkpoints are hundreds of MB

def bench(a, tmp:Path):
    t0 = time.perf_counter(); csv_path = write_sarvlm_csv(a.n, tmp/'csv', a.size); data = csv_to_disk(csv_path, tmp/'ds')
    print(f'data: {a.n} toy SAR records ({a.size} px) as SARVLM CSV + PNGs in {time.perf_counter() - t0:.1f} s; '
          f'{a.model}, batch {a.batch}, {a.precision}, {a.device}, {a.workers} workers' + (', 1 thread' if a.device == 'cpu' else ''))
    ours, ref = [], []
    for i in range(a.repeats):
        ref += run_open_clip_train(csv_path, tmp/f'oct{i}', a)
        ours += run_ours(data, tmp/f'ours{i}', a)
        print(f'  repeat {i + 1}: open_clip_train {statistics.median(ref):.3f} s/step, ours {statistics.median(ours):.3f} s/step')
    mo, mr = statistics.median(ours), statistics.median(ref)
    print(f'median step time: ours {mo:.3f} s ({a.batch/mo:.0f} img/s), open_clip_train {mr:.3f} s ({a.batch/mr:.0f} img/s)')
    print(f'ratio (open_clip_train time / ours) = {mr/mo:.2f}   target >= 1.0')

if __name__ == '__main__': main()
