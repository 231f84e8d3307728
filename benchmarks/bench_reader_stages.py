"""Where one training sample's CPU time goes: sarvlm's SAR reader and transform vs open_clip_train's photo path.

`bench_csv_scale.py` compares whole readers (images/s through a DataLoader). This script splits one sample into its
steps and times each on the same 8-bit 256-px PNGs, in this one process, as CPU time of this thread
(`time.thread_time`: less sensitive than wall time to other programs sharing the cores), median of `--repeats` passes
over `--images` files:

* sarvlm: `read_sar` (PNG decode, 8-bit amplitude -> float32 intensity), the record image (`load_image`), the SAR
  normalisation ('auto': the per-image dB percentiles of an uncalibrated image), the model's transform on the one band
  (`_one_band_through`: random resized crop, CLIP's mean/std), the whole transform, the tokenizer;
* sarvlm, the road the training dataset takes for a file (`RecordsDataset` over a lazy dataset hands the transform
  an `ImageRef`): `read_sar_codes` (the PNG's 8-bit codes, no float image) and the whole image that way
  (`sarvlm_file_image`: codes normalised through their table, then the one-band transform);
* open_clip: PIL open + decode + `convert('RGB')`, and its transform on the RGB image.

`sar_path_extra` (record image road) and `file_path_extra` (file road) are what the SAR-aware path costs per image
over the photo path. The SAR step is paid on the full-size image before resampling, so it does not shrink with the
model's input size, while the photo path's three-channel resampling does.

    .venv/bin/python benchmarks/bench_reader_stages.py [--model SARCLIP-Tiny] [--images 300] [--repeats 5]
"""
import os, sys, json, time, argparse, tempfile, platform
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path: sys.path.insert(0, str(HERE.parent))

def write_pngs(folder:Path, n:int, px:int=256) -> list:
    "`n` 8-bit grey PNGs of speckle (exponential intensity shown as amplitude), as `bench_csv_scale.py` writes them."
    from PIL import Image
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        a = np.sqrt(rng.exponential(1.0, (px, px))) * 60
        p = folder/f'{i}.png'
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(p)
        out.append(p)
    return out

def per_item_ms(f, xs:list, repeats:int) -> float:
    "Median over `repeats` passes of the thread CPU time of `f` per item of `xs`, in ms."
    runs = []
    for _ in range(repeats):
        t0 = time.thread_time()
        for x in xs: f(x)
        runs.append((time.thread_time() - t0) / len(xs) * 1e3)
    return round(float(np.median(runs)), 3)

def stages(model:str, files:list, repeats:int) -> dict:
    import torch
    from PIL import Image
    from bench_csv_scale import transforms
    from sarvlm import sar
    from sarvlm.sario import read_sar
    from sarvlm.files import load_image, ImageRef
    from sarvlm.sario import read_sar_codes
    from sarvlm.models import _one_band_through, _sar_array
    torch.set_num_threads(1)
    tf, tokenizer = transforms(model)
    def open_rgb(p):
        with Image.open(p) as im: return im.convert('RGB')
    imgs = [load_image(p, 'sar') for p in files]
    arrays = [_sar_array(im) for im in imgs]
    bands = [torch.from_numpy(sar.normalize(a, 'auto'))[None] for a in arrays]
    rgbs = [open_rgb(p) for p in files]
    caps = [f'A SAR image number {i} of the sea with {i % 7} ships.' for i in range(len(files))]
    t = lambda f, xs: per_item_ms(f, xs, repeats)
    s = dict(sarvlm_read_sar=t(read_sar, files), sarvlm_load_image=t(lambda p: load_image(p, 'sar'), files),
             sarvlm_normalize=t(lambda a: sar.normalize(a, 'auto'), arrays),
             sarvlm_one_band=t(lambda b: _one_band_through(tf.base, b), bands),
             sarvlm_transform=t(tf, imgs), sarvlm_image=t(lambda p: tf(load_image(p, 'sar')), files),
             sarvlm_read_codes=t(read_sar_codes, files),
             sarvlm_file_image=t(lambda p: tf(ImageRef(str(p))), files),
             open_clip_open_rgb=t(open_rgb, files), open_clip_transform=t(tf.base, rgbs),
             open_clip_image=t(lambda p: tf.base(open_rgb(p)), files),
             tokenizer=t(lambda c: tokenizer([c])[0], caps))
    s['sar_path_extra'] = round(s['sarvlm_image'] - s['open_clip_image'], 3)
    s['file_path_extra'] = round(s['sarvlm_file_image'] - s['open_clip_image'], 3)
    return s

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--models', default='SARCLIP-Tiny,ViT-B-32')
    ap.add_argument('--images', type=int, default=300)
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--out', default=str(HERE/'results'/'bench_reader_stages.json'))
    a = ap.parse_args()
    sys.path.insert(0, str(HERE))
    with tempfile.TemporaryDirectory() as d:
        files = write_pngs(Path(d), a.images)
        res = {m: stages(m, files, a.repeats) for m in a.models.split(',')}
    out = dict(images=a.images, repeats=a.repeats, unit='ms of thread CPU time per image (median of passes)',
               python=platform.python_version(), cpus=os.cpu_count(), results=res,
               date=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))
    Path(a.out).write_text(json.dumps(out, indent=1) + '\n')
    keys = list(next(iter(res.values())))
    print(f"{'step (ms per image)':<22}" + ''.join(f'{m:>14}' for m in res))
    for k in keys: print(f'{k:<22}' + ''.join(f'{res[m][k]:>14.3f}' for m in res))
    print('->', a.out)

if __name__ == '__main__': main()
