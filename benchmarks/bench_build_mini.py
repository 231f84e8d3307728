"""Time sarvlm-mini: a cold build (fresh cache folder) and a cached load. Prints medians.

    python benchmarks/bench_build_mini.py [--size N] [--repeats R]

Target (issue 4): the default build takes <= 60 s on the project's 2-core machine.
"""
import argparse, os, statistics, sys, tempfile, time


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--size', type=int, default=None, help='scenes (default: the rules file default_size; small under SARVLM_SMALL=1)')
    ap.add_argument('--repeats', type=int, default=1, help='cold builds to time')
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args(argv)
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    import torch; torch.set_num_threads(1)
    import datasets; datasets.disable_progress_bars()
    from sarvlm import data as D
    cfg = D.mini_config(a.size)
    cold, cached = [], []
    for _ in range(a.repeats):
        with tempfile.TemporaryDirectory() as d:
            os.environ['SARVLM_CACHE'] = d; os.environ['HF_DATASETS_CACHE'] = os.path.join(d, 'hf')
            key = D.mini_path(a.seed, a.size)
            t0 = time.perf_counter(); dd = D.build_mini(a.seed, a.size, verbose=False); cold.append(time.perf_counter() - t0)
            if D.mini_path(a.seed, a.size) != key:  # the cache key hashes the code: an edit during the build invalidates it
                print('warning: sarvlm code or data files changed during the build; the cached timing below rebuilds once')
            for _ in range(3):
                t0 = time.perf_counter(); D.build_mini(a.seed, a.size, verbose=False); cached.append(time.perf_counter() - t0)
            rows = {k: len(v) for k, v in dd.items()}
    print(f"sarvlm-mini seed={a.seed} size={cfg['size']} scenes: rows {rows}")
    print(f"cold build   median {statistics.median(cold):6.2f} s over {len(cold)} run(s) (target <= 60 s)")
    print(f"cached load  median {statistics.median(cached):6.3f} s over {len(cached)} run(s)")
    return 0 if statistics.median(cold) <= 60 else 1


if __name__ == '__main__': sys.exit(main())
