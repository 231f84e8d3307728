"""A screen of the knobs that might lift SARCap-Tiny's CIDEr (notebook 13): its chip recognition, or its wording.

Notebook 13 shows that its captioners' CIDEr is earned mostly on the single-target chips and computes the chip
`class_hit` that CIDEr 0.5 would need. This script trains the study's two-stage captioner of a seed again with one
knob changed at a time and scores it as the notebook does (beam search 6/3 on all SAR test images; CIDEr under the
standard protocol, `class_hit`, `class_hit` on the chips):

- `baseline`: `caption_config()` as committed (640 fresh scenes, 28 class warm-up and 10 captioning epochs);
- `warm_up_x2`: twice the class warm-up (56 epochs);
- `scenes_x2_same_steps`: 1,280 fresh scenes, half the epochs (the same number of steps);
- `scenes_x2_warm_up_x2`: 1,280 fresh scenes and 28 warm-up epochs (twice the warm-up steps), 5 captioning epochs;
- `all_ten_classes`: the caption scenes also show the two classes held out of SAR training (bus, bridge);

four knobs that scale the whole budget, to see how CIDEr grows with compute:

- `budget_x2` ... `budget_x16`: 2, 4, 8 or 16 times the fresh scenes at the committed epochs, so that many times
  the steps of both the class warm-up and the captioning (and the training time);

and two knobs that change the *wording* rather than the recognition (CIDEr rewards the n-grams an image's
references share, so a captioner could gain by writing the references' consensus):

- `consensus_caption`: each training scene is captioned by the one of its five captions that agrees best with
  the other four (CIDEr of it against them, document frequencies over the training scenes), instead of a draw
  among those that name an object;
- `mbr_decoding`: the baseline captioner, decoded by minimum-Bayes-risk selection: per test image, of its
  beam-search caption and `MBR_SAMPLES` top-p samples, the one that agrees best (CIDEr) with the others.

One run per knob and seed: at one seed it can only show an effect much larger than the study's seed-to-seed spread
(the notebook's table gives that spread); it cannot confirm a small one, so the knobs worth a closer look run at
three seeds, paired with the baseline. It reads the transfer study's checkpoints under `SARVLM_RUNS` (default
`runs/`; `make reproduce` or notebook 07 writes them) and writes its captioners under `<runs>/caption-knobs/`.

    python benchmarks/caption_knobs.py [--seeds 0] [--knobs baseline warm_up_x2 ...] [--workers 2]
        [--append] [--out benchmarks/results/caption_knobs.json]

The committed results come from
`python benchmarks/caption_knobs.py --out benchmarks/results/caption_knobs.json` (every knob but the budgets, seed 0),
then `... --knobs baseline consensus_caption mbr_decoding --seeds 1 2 --append --out` (the same file), then
`... --knobs budget_x4 budget_x2 --seeds 0 1 2 --append --out` and `... --knobs budget_x16 budget_x8 --seeds 0 1 2
--append --out` (about 16 and 63 minutes on two cores; the longest runs first, so that the two workers end together).
"""
import os
for _v in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS'):
    os.environ.setdefault(_v, '1')
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import argparse, json, time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

KNOBS = {'baseline': {}, 'warm_up_x2': dict(class_epochs=56),
         'scenes_x2_same_steps': dict(n_scenes=1280, class_epochs=14, epochs=5),
         'scenes_x2_warm_up_x2': dict(n_scenes=1280, class_epochs=28, epochs=5),
         'all_ten_classes': dict(all_classes=True), 'consensus_caption': dict(captions='consensus'),
         **{f'budget_x{n}': dict(n_scenes=n * 640) for n in (2, 4, 8, 16)},   # 640: the committed scenes
         'mbr_decoding': dict(decode='mbr')}
SCREEN = tuple(k for k in KNOBS if not k.startswith('budget_'))   # the default: one change at the committed budget
MBR_SAMPLES = 10   # top-p samples per test image beside the beam-search caption

def agreement(cands:list) -> 'np.ndarray':
    """(images, k): CIDEr of candidate j of each image against that image's other candidates (`cands`: a list
    of k strings per image), by notebook 13's scorer (`cider_per_image`: standard protocol, PTB tokenizer)."""
    import numpy as np
    from sarvlm.caption_metrics import cider_per_image
    others = lambda j: [[c for jj, c in enumerate(cs) if jj != j] for cs in cands]
    return np.stack([cider_per_image([cs[j] for cs in cands], others(j)) for j in range(len(cands[0]))], 1)

def consensus_pool(pool):
    "`pool` with each scene's captions cut to the one that agrees best with its other four."
    caps = list(pool['captions'])
    best = agreement(caps).argmax(1)
    return pool.remove_columns('captions').add_column('captions', [[cs[b]] for cs, b in zip(caps, best)])

def mbr_captions(model, images, transform, tokenizer, cfg, beam:list) -> list:
    "Per image, of `beam` and `MBR_SAMPLES` top-p samples, the caption that agrees best with the others."
    from sarvlm.tasks.captioning import generate_captions
    cands = [[b] for b in beam]
    for k in range(MBR_SAMPLES):
        for cs, c in zip(cands, generate_captions(model, images, transform, tokenizer, 'top_p', seq_len=cfg.seq_len,
                                                  seed=1000 + k, repetition_penalty=cfg.repetition_penalty)):
            cs.append(c)
    return [cs[j] for cs, j in zip(cands, agreement(cands).argmax(1))]

def run_knob(knob:str, seed:int) -> dict:
    "Train and score the two-stage captioner of `seed` with `KNOBS[knob]`."
    import warnings
    warnings.filterwarnings('ignore')
    import open_clip
    from sarvlm.core import get_paths
    from sarvlm.data import build_mini
    from sarvlm.caption_metrics import caption_measures, cider_anatomy
    from sarvlm.transfer import study_config, stream_id, held_out_classes
    from sarvlm.tasks.captioning import (CAPTION_ARMS, CaptionVocab, CompactTokenizer, caption_config,
        caption_pool, caption_test_records, reference_lists, train_captioner, generate_captions, arm_checkpoint,
        make_transforms)
    ov = dict(KNOBS[knob])
    all_classes, captions, decode = ov.pop('all_classes', False), ov.pop('captions', None), ov.pop('decode', None)
    cfg, tcfg = caption_config(**ov), study_config()
    test = caption_test_records(build_mini(verbose=False), cfg)
    refs = reference_lists(test)
    pool = caption_pool(stream_id(tcfg, seed, 'sar', 'captioning'), cfg.n_scenes, tcfg.img_size,
                        () if all_classes else held_out_classes())
    if captions == 'consensus': pool = consensus_pool(pool)
    base = open_clip.get_tokenizer(cfg.model)
    vocab = CaptionVocab.from_captions([c for cs in pool['captions'] for c in cs], base)
    t = time.perf_counter()
    m, hist, parts = train_captioner(pool, cfg, vocab, get_paths().runs/'caption-knobs'/f'seed{seed}'/knob,
                                     arm_checkpoint(tcfg, seed, CAPTION_ARMS[0]), seed)
    train_s = time.perf_counter() - t
    tf, tok = make_transforms(m)[1], CompactTokenizer(base, vocab)
    caps = generate_captions(m, test['image'], tf, tok, cfg.method, seq_len=cfg.seq_len, seed=seed,
                             repetition_penalty=cfg.repetition_penalty)
    if decode == 'mbr': caps = mbr_captions(m, test['image'], tf, tok, cfg, caps)
    a = cider_anatomy(caps, test, refs, held=held_out_classes())   # its `cider` is the corpus CIDEr
    return dict(knob=knob, seed=seed, overrides=KNOBS[knob], steps=len(hist),
                class_steps=cfg.class_epochs * (cfg.n_scenes // cfg.batch_size), train_s=train_s,
                class_loss=parts.get('class_loss'),
                class_hit=caption_measures(caps, test['meta'])['class_hit'], cider_standard=a['cider'], **{
                    k: a[k] for k in ('chip_hit', 'cider_chip', 'cider_scene', 'chip_hit_needed')})

def _merge(old:list, rows:list) -> list:
    "`old` rows with `rows` added, a (knob, seed) run again replacing its old row."
    new = {(r['knob'], r['seed']) for r in rows}
    return [r for r in old if (r['knob'], r['seed']) not in new] + rows

def _save(out:Path, rows:list):
    "Write `rows` to `out` in one step (an interrupted write leaves the last complete file)."
    from sarvlm.core import atomic_write
    with atomic_write(out, 'w', encoding='utf-8') as f:
        f.write(json.dumps(dict(benchmark='caption_knobs', rows=rows), indent=1))

def main(seeds=(0,), knobs=SCREEN, workers=2, out=None, append=False):
    bad = [k for k in knobs if k not in KNOBS]
    if bad: raise SystemExit(f"unknown knob(s) {bad}; choose from {list(KNOBS)}")
    runs = [(k, s) for s in seeds for k in knobs]
    out = Path(out) if out else None
    old = json.loads(out.read_text())['rows'] if out and append and out.exists() else []
    t, rows = time.perf_counter(), []
    print(f"{len(runs)} runs on {workers} workers; each row is printed, and saved, as its run ends", flush=True)
    with ProcessPoolExecutor(workers) as ex:
        for r in ex.map(run_knob, *zip(*runs)):   # in order, as they end
            rows.append(r)
            print(f"{r['knob']:22s} seed {r['seed']}  CIDEr {r['cider_standard']:.3f}  class_hit "
                  f"{r['class_hit']:5.1f} %  chips named right {r['chip_hit']:5.1f} %  ({r['class_steps']} warm-up + "
                  f"{r['steps']} captioning steps, {r['train_s']:.0f} s)", flush=True)
            if out: _save(out, _merge(old, rows))
    print(f"two-stage start; {len(runs)} runs, wall {time.perf_counter() - t:.0f} s")
    if out: print(f"saved {out} ({len(_merge(old, rows))} rows)")
    return rows

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[0])
    p.add_argument('--knobs', nargs='+', default=list(SCREEN), help=f'any of {list(KNOBS)}')
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--out', default=None, help='write the results here as JSON')
    p.add_argument('--append', action='store_true', help='keep the rows already in --out (a rerun replaces its row)')
    a = p.parse_args()
    main(tuple(a.seeds), tuple(a.knobs), a.workers, a.out, a.append)
