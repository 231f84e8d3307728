"""Zero-shot (sarvlm.tasks.zeroshot): the authors' template sets string for string, their top-1 on the same logits,
the scikit-learn metrics against hand-written ones, and a clear stop on data without labels. Runs in seconds."""
import json
import numpy as np
import pytest
import torch
from sarvlm.tasks import zeroshot as Z

# Copied from eval/zeroshot/eval_zeroshot.py of KlayMa527/SARVLM (commit 6444139feb1c74e0ba79e729c4506e1ff450172a):
# SAR_TEMPLATES, OPTICAL_TEMPLATES, SAR_OPTICAL_TEMPLATE, ISPRS_TEMPLATES and get_templates' fallback for 'simple'.
SAR = ["a SAR image of {}.", "a radar image of {}.", "a synthetic aperture radar image of {}.",
       "SAR imagery showing {}.", "a satellite SAR image of {}.", "radar remote sensing image of {}.",
       "{}.", "a photo of {}.", "an image of {}."]
OPTICAL = ["a satellite image of {}.", "an aerial image of {}.", "an aerial photo of {}.",
           "a remote sensing image of {}.", "an overhead view of {}.", "a high-resolution satellite image of {}.",
           "imagery showing {}.", "an image of {}.", "{}."]
SAR_OPT = SAR[:6] + OPTICAL[:6] + ["a photo of {}.", "an image of {}.", "{}."]
ISPRS = ["a SAR image of {}.", "a radar image showing {}.", "synthetic aperture radar image of {}.",
         "SAR land cover image of {}.", "{}."]
AUTHORS = dict(sar=SAR, optical=OPTICAL, sar_opt=SAR_OPT, isprs=ISPRS, simple=["a photo of {}."])


def test_template_sets_are_the_authors():
    assert Z.template_sets() == list(AUTHORS)
    for name, ts in AUTHORS.items(): assert Z.load_templates(name) == ts, name
    src = json.loads(Z.template_file().read_text(encoding='utf-8'))['_source']
    assert 'eval/zeroshot/eval_zeroshot.py' in src and 'KlayMa527/SARVLM' in src


def authors_metrics(logits, labels, n_classes, kind=None):
    "compute_metrics of the authors' eval_zeroshot.py on `logits` (their np.argsort takes the sort `kind`)."
    pred, probs = logits.argmax(dim=-1).numpy(), logits.softmax(dim=-1).numpy()
    r = {'top1': (pred == labels).sum() / len(labels) * 100.0}
    for k in (3, 5):
        if n_classes >= k:
            top = np.argsort(probs, axis=1, kind=kind)[:, -k:]
            r[f'top{k}'] = sum(labels[i] in top[i] for i in range(len(labels))) / len(labels) * 100.0
    acc = [(pred[labels == c] == c).mean() * 100.0 for c in range(n_classes) if (labels == c).any()]
    return {**r, 'mean_per_class': float(np.mean(acc))}


@pytest.mark.parametrize('ties', [False, True])
def test_same_numbers_as_the_authors_on_the_same_logits(ties):
    "Top-1 and mean per-class always; top-3/5 with a stable sort (numpy's default sort may reorder ties)."
    g = np.random.default_rng(1)
    for _ in range(300):
        n, m = int(g.integers(2, 25)), int(g.integers(1, 50))
        lg = g.integers(0, 3, (m, n)) * 10.0 if ties else g.normal(0, 10, (m, n))
        lg, y = torch.tensor(lg, dtype=torch.float32), g.integers(0, n, m)
        ours, theirs = Z.zeroshot_metrics(lg, y, [f'c{i}' for i in range(n)]), authors_metrics(lg, y, n, 'stable')
        for k, v in theirs.items(): assert ours[k] == pytest.approx(v, abs=1e-9), (k, ties)
        if not ties:   # no ties: their default sort gives the same top-k
            for k, v in authors_metrics(lg, y, n).items(): assert ours[k] == pytest.approx(v, abs=1e-9), k


def test_metrics_equal_hand_written_ones():
    "The scikit-learn calls give what the old hand-written code gave (classes without samples: NaN, left out)."
    g = np.random.default_rng(0)
    for _ in range(300):
        n, m = int(g.integers(2, 12)), int(g.integers(1, 60))
        lg, t = g.normal(size=(m, n)).astype(np.float32), g.integers(0, max(1, n - 2), m)
        pred = lg.argmax(1)
        cm = np.zeros((n, n), int)
        np.add.at(cm, (t, pred), 1)
        assert (Z.confusion(pred, t, n) == cm).all()
        rows = cm.sum(1)
        with np.errstate(invalid='ignore', divide='ignore'): pc = np.where(rows > 0, 100.0 * np.diag(cm) / rows, np.nan)
        np.testing.assert_allclose(Z.per_class_accuracy(pred, t, n), pc, rtol=1e-12)
        top = torch.as_tensor(lg).topk(min(5, n), dim=1).indices
        for k, v in Z.topk_accuracy(lg, t).items():
            assert v == pytest.approx(100.0 * (top[:, :k] == torch.as_tensor(t)[:, None]).any(1).double().mean().item())


def test_no_labels_stops_with_what_to_give():
    lg = torch.zeros(3, 1)
    with pytest.raises(ValueError, match="no class labels were found.*'label' column.*class folders"):
        Z.zeroshot_metrics(lg, ['', '', ''], [''])
    with pytest.raises(ValueError, match='no class labels were found'):
        Z.evaluate(None, None, np.ones((3, 4)), [''] * 3, [''], 'sar')
    assert list(Z.check_labels(['ship', ''])) == ['ship', '']   # some labels: the rows without one are dropped later
