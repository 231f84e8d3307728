"""The committed outputs of nbs/*.ipynb are pages a learner reads: no machine paths, no progress-bar residue, no
warnings, no tracebacks. Each finding names the notebook, the cell (index and id), the kind and the text."""
import json, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT/'nbs').glob('*.ipynb'))
TEXT_KEYS = ('text/plain', 'text/html', 'text/markdown', 'text/latex')

# (kind, pattern) searched in every text output; the patterns are what each kind leaves on a page
RULES = [
    ('machine path', re.compile(r'(?<![\w.])/(?:work|root|tmp|home)/|/(?:site|dist)-packages/')),
    ('progress bar', re.compile(r'\d+%\|[^|\n]*\||\d+(?:\.\d+)?\s?(?:it/s|s/it)\b|<progress\b')),
    ('warning', re.compile(r'\w*Warning:|^\s*warnings\.warn\(', re.M)),
    ('traceback', re.compile(r'Traceback \(most recent call last\)')),
]

def _src(x): return ''.join(x) if isinstance(x, list) else (x or '')

def output_texts(o:dict) -> list:
    "(label, text) of each text an output shows: a stream's text, a result's text/* data, an error's traceback."
    if o.get('output_type') == 'stream': return [(f"stream {o.get('name')}", _src(o.get('text')))]
    if o.get('output_type') == 'error': return [('error', '\n'.join(o.get('traceback', [])) or 'Traceback')]
    return [(k, _src(v)) for k, v in o.get('data', {}).items() if k in TEXT_KEYS]

def _excerpt(text:str, m) -> str:
    return repr(text[max(0, m.start() - 60):m.end() + 60])

def findings(o:dict) -> list:
    "(kind, label, excerpt) for each rule an output breaks."
    found = []
    if o.get('output_type') == 'error': found.append(('traceback', 'error', f"{o.get('ename')}: {o.get('evalue')}"))
    for label, text in output_texts(o):
        if label == 'error': continue
        if '\r' in text.replace('\r\n', '\n'): found.append(('progress bar', label, repr(text[:120])))
        if label == 'stream stderr' and 'warn' in text.lower():
            found.append(('warning', label, repr(text[:160])))
        for kind, pat in RULES:
            m = pat.search(text)
            if m: found.append((kind, label, _excerpt(text, m)))
    first = {}
    for kind, label, ex in found: first.setdefault((kind, label), ex)   # one finding per kind and text
    return [(k, l, ex) for (k, l), ex in sorted(first.items())]

def notebook_findings(nb:Path) -> list:
    "Every finding of a notebook, as readable lines."
    cells = json.loads(nb.read_text(encoding='utf-8'))['cells']
    lines = []
    for i, c in enumerate(cells):
        for o in c.get('outputs', []):
            for kind, label, ex in findings(o):
                lines.append(f"{nb.name} cell {i} (id {c.get('id')}) {label}: {kind}: {ex}")
    return lines

@pytest.mark.parametrize('nb', NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_outputs_are_clean(nb):
    bad = notebook_findings(nb)
    assert not bad, f"{nb.name}: {len(bad)} unclean outputs\n" + '\n'.join(bad[:40])

# ---------------------------------------------------------------- the check can fail
def _stream(text, name='stdout'): return {'output_type': 'stream', 'name': name, 'text': text}
def _result(text, key='text/plain'): return {'output_type': 'execute_result', 'data': {key: text}, 'metadata': {}}

@pytest.mark.parametrize('out,kind', [
    (_stream('saved to /tmp/tmpab12/ckpt.pt\n'), 'machine path'),
    (_stream('wrote /work/main/runs/x.json\n'), 'machine path'),
    (_result("PosixPath('/home/me/sarvlm/cache')"), 'machine path'),
    (_stream('/usr/lib/python3/site-packages/torch/jit.py:12: UserWarning: x\n', 'stderr'), 'machine path'),
    (_stream('Filter:   0%|          | 0/300 [00:00<?, ? examples/s]\n', 'stderr'), 'progress bar'),
    (_stream('epoch 1\r epoch 2\r epoch 3\n'), 'progress bar'),
    (_stream('100 batches, 12.5 it/s\n'), 'progress bar'),
    (_result('<progress value="3" max="10"></progress>', 'text/html'), 'progress bar'),
    (_stream('FutureWarning: the default will change\n'), 'warning'),
    (_stream('huggingface/tokenizers: disabling parallelism to avoid deadlocks... warn\n', 'stderr'), 'warning'),
    (_stream('Traceback (most recent call last):\n  File "x.py"\n'), 'traceback'),
    ({'output_type': 'error', 'ename': 'ValueError', 'evalue': 'bad', 'traceback': ['Traceback']}, 'traceback'),
])
def test_each_kind_of_residue_is_found(out, kind):
    assert kind in {k for k, _, _ in findings(out)}, findings(out)

@pytest.mark.parametrize('out', [
    _stream('SAR mean recall 3.98 % (chance 1.82 %)\n'),
    _stream('wrote outputs/results/09_retrieval.json\n'),
    _stream('kept in runs/tmp/stage0 and cache/home/x\n'),   # project folders that happen to be named tmp or home
    _result('tensor([0.1000, 0.9000])'),
    _stream('a line\r\nanother line\r\n'),
    _result('<b>no warnings here</b>', 'text/html'),
])
def test_clean_outputs_pass(out):
    assert findings(out) == [], findings(out)
