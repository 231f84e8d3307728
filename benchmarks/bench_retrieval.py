"""Memory and time of exact retrieval metrics at 100,000 x 100,000 pairs (issue: evaluation I).

    python benchmarks/bench_retrieval.py [--n 100000] [--dim 512] [--budget-mb 256] [--threads 2]

Prints the peak resident memory of the process (ru_maxrss) and the wall time. The authors' full-matrix approach
would need n*n*4 bytes for the similarities alone (40 GB at n = 100,000); the target here is a peak under 2 GB.
"""
import argparse, resource, time, sys
import torch

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--n', type=int, default=100_000); ap.add_argument('--dim', type=int, default=512)
    ap.add_argument('--budget-mb', type=int, default=256); ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from sarvlm.scores import retrieval_metrics
    g = torch.Generator().manual_seed(0)
    img = torch.randn(a.n, a.dim, generator=g); txt = img.clone()
    for s in range(0, a.n, 10_000): txt[s:s+10_000].add_(torch.randn(min(10_000, a.n - s), a.dim, generator=g), alpha=10)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    t0 = time.perf_counter()
    m = retrieval_metrics(img, txt, max_bytes=a.budget_mb * 2**20)
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"n={a.n:,} dim={a.dim} budget={a.budget_mb} MB threads={a.threads}")
    print(f"mean recall {m['mean_recall']:.3f}  (i2t R@1 {m['i2t_R@1']:.2f}, t2i R@1 {m['t2i_R@1']:.2f})")
    print(f"wall time {dt:.1f} s; peak RSS {peak:,.0f} MB (features and torch before the metric: {base:,.0f} MB); "
          f"a full similarity matrix would be {4*a.n*a.n/2**30:,.1f} GB")
    ok = peak < 2048
    print('PASS: peak under 2 GB' if ok else 'FAIL: peak over 2 GB'); sys.exit(0 if ok else 1)

if __name__ == '__main__': main()
