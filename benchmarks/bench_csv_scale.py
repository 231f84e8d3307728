"""SARVLM-1M scale: a SARVLM CSV of `--rows` rows read lazily by `sarvlm.files.from_sarvlm_csv(lazy=True)` and fed
through the training dataset (`sarvlm.train.RecordsDataset`) vs open_clip_train's `CsvDataset` on the same files.

The scratch folder holds `--distinct` 256-px 8-bit grey PNGs (speckle-like noise) and one symlink per row to one of
them (writing 100,000 distinct PNGs would take ~6 GB and many minutes; every row still has its own file name, so
both readers open one path per row), plus `data.csv` (`imgpath,caption`, absolute paths: what `CsvDataset` needs).
Each reader runs in a fresh subprocess that reports:

* open_s: time to open the dataset (sarvlm: every row checked, each image's header read; open_clip: pandas),
* images_per_s: load + decode + transform of the first `--k` samples through a torch DataLoader (the same batch
  size, `--workers`, shuffled order and tokenizer), first batch included; the median of `--repeats` runs,
* images_per_cpu_s: the same samples per CPU-second of the process and its workers (less sensitive than
  images/s to other programs sharing the CPUs),
* peak_rss_mb: `resource.getrusage` maxrss of the subprocess (and of its DataLoader workers, `workers_rss_mb`).

Both use the model's train transform (`SARAwareTransform`, open_clip's `image_transform_v2` behind the SAR step):
sarvlm's `RecordsDataset` hands the transform each file (`sarvlm.files.ImageRef`), which reads an 8-bit PNG as its
codes and normalises them through a table ('auto': the image's dB percentiles), the same tensor as decoding it as
SAR intensity first; open_clip's reader hands PIL's 8-bit image to the same transform, which treats it as a photo
(no SAR normalisation, three channels resampled). A third run, `open_clip_sar`, gives `CsvDataset` a transform
that decodes the file it was handed as a record image (`load_image`, SAR intensity as float, then the same
transform): the record-image road, which sarvlm's own reader no longer takes for such files.
ratio = sarvlm images/s / open_clip images/s, for both open_clip runs: the ratio of the medians, and the paired
estimate the must-hold is read from. Each repeat runs the readers back to back (the order alternating), so a repeat
is a pair: the geometric mean of the per-repeat ratios with its 95 % t interval (`sarvlm.stats.paired_test` on the
logs), the paired t-test's p-value against a ratio of 1, and the smallest ratio the design could tell from 1
(80 % power). This machine's load moves single runs by 5-10 %, so a ratio within that of 1 is read from the
interval, not from one median.

    .venv/bin/python benchmarks/bench_csv_scale.py [--rows 100000] [--k 4096] [--workers 2] [--repeats 6]
        [--models SARCLIP-Tiny,ViT-B-32] [--scratch /tmp/sarvlm-bench-csv] [--keep]

Run with nothing else on the machine: other load lands on one reader's run and not its pair's. Last run
(results/bench_csv_scale.json, 2026-12-04, 2 cores, 6 repeats, about 10 min): SARCLIP-Tiny, sarvlm over
`CsvDataset` 1.062 images/s [1.016, 1.111], p = 0.017 (per CPU-second 1.057 [1.017, 1.099]); ViT-B-32 1.214
[0.907, 1.624]; peak memory 1,401 MB for sarvlm (994 MB for `CsvDataset`). A run made while other programs
used the CPUs gave 1.229 [0.925, 1.632] for SARCLIP-Tiny: the same estimate, an interval four times wider. A
second quiet run 40 min later (results/bench_csv_scale_repeat.json) gave 1.036 [0.991, 1.083], p = 0.099; the two
quiet runs' 12 pairs together: 1.049 [1.021, 1.078], p = 0.003 (per CPU-second 1.039 [1.013, 1.066]).
"""
import os, sys, json, time, argparse, resource, shutil, subprocess, platform
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import numpy as np

HERE = Path(__file__).resolve().parent
# this checkout's sarvlm, not whatever an editable install of the venv points at (the subprocesses too)
if str(HERE.parent) not in sys.path: sys.path.insert(0, str(HERE.parent))

def write_data(folder:Path, rows:int, distinct:int, px:int=256) -> Path:
    "`distinct` PNGs, one symlink per row, and data.csv; reused when already there with the same sizes."
    csv = folder/'data.csv'
    stamp = folder/'done.json'
    want = dict(rows=rows, distinct=distinct, px=px)
    if stamp.is_file() and json.loads(stamp.read_text()) == want: return csv
    shutil.rmtree(folder, ignore_errors=True)
    from PIL import Image
    (folder/'png').mkdir(parents=True)
    (folder/'rows').mkdir()
    rng = np.random.default_rng(0)
    for i in range(distinct):   # speckle: exponential intensity, shown as 8-bit amplitude
        a = np.sqrt(rng.exponential(1.0, (px, px))) * 60
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(folder/'png'/f'{i}.png')
    with open(csv, 'w') as f:
        f.write('imgpath,caption\n')
        for r in range(rows):
            link = folder/'rows'/f'{r}.png'
            os.symlink(folder/'png'/f'{r % distinct}.png', link)
            f.write(f'{link},A SAR image number {r} of the sea with {r % 7} ships.\n')
    stamp.write_text(json.dumps(want))
    return csv

def transforms(name:str):
    "The model's train transform (as `sarvlm.models.make_transforms` builds it) and tokenizer, without the model."
    import open_clip
    from open_clip.transform import PreprocessCfg, image_transform_v2
    from sarvlm.models import SARAwareTransform
    size = open_clip.get_model_config(name)['vision_cfg']['image_size']
    tr = image_transform_v2(PreprocessCfg(size=size), is_train=True, aug_cfg=dict(scale=(0.9, 1.0)))
    return SARAwareTransform(tr, 'auto'), open_clip.get_tokenizer(name)

class SarFromFile:
    "For `CsvDataset`: decode the file PIL opened as sarvlm does (`load_image`), then apply `tf`."
    def __init__(self, tf): self.tf = tf
    def __call__(self, im):
        from sarvlm.files import load_image
        im.close()
        return self.tf(load_image(im.filename, 'sar'))

def open_dataset(reader:str, csv:str, tf, tokenizer):
    if reader == 'sarvlm':
        from sarvlm.files import from_sarvlm_csv
        from sarvlm.train import RecordsDataset
        return RecordsDataset(from_sarvlm_csv(csv, lazy=True), tf, tokenizer)
    from open_clip_train.data import CsvDataset
    tf = SarFromFile(tf) if reader == 'open_clip_sar' else tf
    return CsvDataset(csv, tf, img_key='imgpath', caption_key='caption', sep=',', tokenizer=tokenizer)

def cpu_seconds() -> float:
    "CPU time (user + system) of this process and of its joined children (the DataLoader workers)."
    ru = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(r.ru_utime + r.ru_stime for r in ru)

def child(a) -> dict:
    "One reader in this (fresh) process: open, then a DataLoader over the first `k` samples."
    import torch
    torch.set_num_threads(1)
    tf, tokenizer = transforms(a.model)
    t0 = time.perf_counter()
    ds = open_dataset(a.child, a.csv, tf, tokenizer)
    open_s = time.perf_counter() - t0
    rss_open = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    dl = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=a.workers,
                                     generator=torch.Generator().manual_seed(0), drop_last=True)
    n, t0, c0, it = 0, time.perf_counter(), cpu_seconds(), iter(dl)
    while n < a.k:
        b = next(it)
        n += len(b[0])
    dt = time.perf_counter() - t0
    it._shutdown_workers()   # joined: their CPU time is counted
    cpu = cpu_seconds() - c0
    return dict(reader=a.child, model=a.model, rows=len(ds), open_s=round(open_s, 2), samples=n,
                seconds=round(dt, 2), images_per_s=round(n / dt, 1), image_shape=list(b[0].shape[1:]),
                cpu_s=round(cpu, 2), images_per_cpu_s=round(n / cpu, 1),
                rss_after_open_mb=round(rss_open),
                peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                workers_rss_mb=round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))

def run_child(a, reader:str, model:str, csv:Path) -> dict:
    cmd = [sys.executable, __file__, '--child', reader, '--model', model, '--csv', str(csv), '--k', str(a.k),
           '--batch', str(a.batch), '--workers', str(a.workers)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS='ignore'))
    if p.returncode: raise RuntimeError(f"{reader} {model} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])

def summary(runs:list) -> dict:
    "One reader and model over the repeats: the median images/s, the largest memory, the times of each run."
    ips, cps = [r['images_per_s'] for r in runs], [r['images_per_cpu_s'] for r in runs]   # in repeat order
    return {**runs[0], 'images_per_s': round(float(np.median(ips)), 1), 'images_per_s_runs': ips,
            'images_per_cpu_s': round(float(np.median(cps)), 1), 'images_per_cpu_s_runs': cps,
            'open_s': max(r['open_s'] for r in runs),
            **{k: max(r[k] for r in runs) for k in ('peak_rss_mb', 'workers_rss_mb', 'rss_after_open_mb')}}

def paired_ratio(a:list, b:list) -> dict:
    """Reader a over reader b from runs paired by repeat: the geometric mean of the ratios, its 95 % interval,
    the p-value against 1 and the detectable ratio (`sarvlm.stats.paired_test` on the logs)."""
    from sarvlm.stats import paired_test
    t = paired_test(np.log(a), np.log(b))
    e = lambda v: round(float(np.exp(v)), 3)
    return dict(ratio=e(t['mean_diff']), ci_low=e(t['ci_low']), ci_high=e(t['ci_high']),
                p_value=round(t['p_value'], 3), detectable=e(t['mdd']), pairs=t['n'],
                per_repeat=[round(float(x / y), 3) for x, y in zip(a, b)])

def table(res:list) -> str:
    head = (f"{'model':<13} {'reader':<14} {'open s':>7} {'images/s':>9} {'per CPU s':>9} {'peak MB':>8} "
            f"{'workers MB':>10}")
    lines = [head, '-' * len(head)]
    for r in res:
        lines.append(f"{r['model']:<13} {r['reader']:<14} {r['open_s']:>7.2f} {r['images_per_s']:>9.1f} "
                     f"{r['images_per_cpu_s']:>9.1f} "
                     f"{r['peak_rss_mb']:>8} {r['workers_rss_mb']:>10}")
    return '\n'.join(lines)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--rows', type=int, default=100_000)
    ap.add_argument('--distinct', type=int, default=500, help='distinct PNG files behind the per-row symlinks')
    ap.add_argument('--k', type=int, default=4096, help='samples timed per reader')
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--repeats', type=int, default=6,
                    help='runs of each reader (alternating order), paired by repeat; median images/s')
    ap.add_argument('--models', default='SARCLIP-Tiny,ViT-B-32')
    ap.add_argument('--scratch', default='/tmp/sarvlm-bench-csv')
    ap.add_argument('--out', default=str(HERE/'results'/'bench_csv_scale.json'))
    ap.add_argument('--keep', action='store_true', help='keep the scratch folder')
    ap.add_argument('--child', default=None, help=argparse.SUPPRESS)
    ap.add_argument('--model', default=None, help=argparse.SUPPRESS)
    ap.add_argument('--csv', default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child: return print(json.dumps(child(a)))
    t0 = time.perf_counter()
    csv = write_data(Path(a.scratch), a.rows, a.distinct)
    print(f"{a.rows:,} rows ({a.distinct} distinct 256-px PNGs) written in {time.perf_counter() - t0:.1f} s")
    readers, models = ('sarvlm', 'open_clip', 'open_clip_sar'), a.models.split(',')
    runs = [run_child(a, r, m, csv) for i in range(a.repeats) for m in models
            for r in (readers if i % 2 == 0 else readers[::-1])]   # alternate who goes first
    res = [summary([x for x in runs if (x['model'], x['reader']) == (m, r)]) for m in models for r in readers]
    ips = {(r['model'], r['reader']): r['images_per_s'] for r in res}
    cps = {(r['model'], r['reader']): r['images_per_cpu_s'] for r in res}
    ratio = {f"{m} vs {o}": round(ips[m, 'sarvlm'] / ips[m, o], 3) for m in models for o in readers[1:]}
    ratio_cpu = {f"{m} vs {o}": round(cps[m, 'sarvlm'] / cps[m, o], 3) for m in models for o in readers[1:]}
    by = {(r['model'], r['reader']): r for r in res}
    paired = {f"{m} vs {o}": {k: paired_ratio(by[m, 'sarvlm'][k + '_runs'], by[m, o][k + '_runs'])
                              for k in ('images_per_s', 'images_per_cpu_s')}
              for m in models for o in readers[1:]} if a.repeats > 1 else {}
    out = dict(rows=a.rows, distinct=a.distinct, k=a.k, batch=a.batch, workers=a.workers, repeats=a.repeats,
               cpus=os.cpu_count(),
               python=platform.python_version(), results=res, ratio_sarvlm_over_open_clip=ratio,
               ratio_per_cpu_second=ratio_cpu, paired_ratio=paired,
               date=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1) + '\n')
    print(table(res))
    print('images/s ratio sarvlm / open_clip:', ratio)
    print('images per CPU-second ratio (less sensitive to other load on the machine):', ratio_cpu)
    for pair, v in paired.items():
        for k, t in v.items():
            print(f"paired {pair}, {k}: {t['ratio']} [{t['ci_low']}, {t['ci_high']}], p = {t['p_value']}, "
                  f"detectable {t['detectable']}, {t['pairs']} repeats")
    print(f'-> {a.out}')
    if not a.keep: shutil.rmtree(a.scratch, ignore_errors=True)

if __name__ == '__main__': main()
