"""GPU training throughput: sarvlm's loop vs `python -m open_clip_train.main`, ViT-B-32 at batch 256.

Same protocol as `bench_train.py` (the same SARVLM CSV of toy SAR PNGs, here 224 px; median step time over each
run, first 3 steps dropped; runs alternate), on one CUDA GPU with mixed precision ('amp': fp16 autocast and a
gradient scaler in both), 8 data-loader workers, 1 epoch of n/256 steps. Expected wall time on one H100: data
generation ~1-2 min, then ~1 min per run.

    python benchmarks/gpu_train_vitb32.py [--n 5120] [--repeats 2]

Run once, 2026-12-04, on one NVIDIA H200 (torch 2.11.0+cu130, 16 CPU cores) with `--n 2560 --repeats 2`
(results/gpu_train_vitb32.json): ours 0.097 s/step (2,639 img/s), open_clip_train 0.085 s/step (3,012 img/s),
ratio 0.88, below the target of 1.0. Only 7 timed steps per run (10 per epoch, first 3 dropped), so the ratio is
rough; the images are RGB PNGs, which take sarvlm's general reader, not the 8-bit codes road. Not investigated further
(15 minutes of GPU time per session).
"""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
import bench_train

if __name__ == '__main__':
    if not torch.cuda.is_available(): sys.exit('gpu_train_vitb32.py needs a CUDA GPU')
    a = bench_train.parse(None, model='ViT-B-32', batch=256, n=5120, size=224, precision='amp', device='cuda', workers=8)
    print('GPU:', torch.cuda.get_device_name(0))
    bench_train.main(a)
