"""`benchmarks/caption_knobs.py`: the agreement its wording knobs select by, and how it saves and merges rows."""
import importlib.util, json
from pathlib import Path
import datasets

ROOT = Path(__file__).resolve().parents[1]

def _knobs():
    spec = importlib.util.spec_from_file_location('caption_knobs', ROOT/'benchmarks'/'caption_knobs.py')
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m

K = _knobs()
CAPS = [['a sar image of a ship .', 'a ship in a sar image .', 'a sar image of a ship at sea .',
         'mostly sea can be seen .', 'a sar image of a ship .'],
        ['two trucks on a road .', 'a sar image of two trucks .', 'a sar image of 2 trucks .',
         'a sar image of two trucks .', 'mainly farmland .']]

def test_agreement_prefers_the_shared_wording():
    a = K.agreement(CAPS)
    assert a.shape == (2, 5)
    # a caption repeated among the others agrees most; a land-cover caption that shares nothing least
    assert a[0].argmax() in (0, 4) and a[0].argmin() == 3
    assert a[1].argmax() in (1, 3) and a[1].argmin() == 4

def test_consensus_pool_keeps_one_caption_per_scene():
    pool = datasets.Dataset.from_dict({'captions': CAPS, 'n': [0, 1]})
    out = K.consensus_pool(pool)
    assert out['n'] == [0, 1] and out['captions'] == [['a sar image of a ship .'], ['a sar image of two trucks .']]

def test_merge_replaces_a_rerun_and_keeps_the_rest():
    old = [{'knob': 'baseline', 'seed': 0, 'x': 1}, {'knob': 'baseline', 'seed': 1, 'x': 2}]
    rows = K._merge(old, [{'knob': 'baseline', 'seed': 1, 'x': 3}, {'knob': 'mbr_decoding', 'seed': 1, 'x': 4}])
    assert [(r['knob'], r['seed'], r['x']) for r in rows] == [('baseline', 0, 1), ('baseline', 1, 3),
                                                              ('mbr_decoding', 1, 4)]
    assert K._merge([], old) == old

def test_save_writes_the_rows_as_json(tmp_path):
    f = tmp_path/'results'/'k.json'
    K._save(f, [{'knob': 'baseline', 'seed': 0}])
    assert json.loads(f.read_text()) == {'benchmark': 'caption_knobs', 'rows': [{'knob': 'baseline', 'seed': 0}]}
    assert [p.name for p in f.parent.iterdir()] == ['k.json']   # no temporary file left behind

def test_budget_knobs_scale_the_scenes_at_the_committed_epochs():
    from sarvlm.tasks.captioning import CaptionConfig
    base = CaptionConfig()
    budgets = {k: v for k, v in K.KNOBS.items() if k.startswith('budget_x')}
    assert sorted(int(k.split('_x')[1]) for k in budgets) == [2, 4, 8, 16]
    for k, ov in budgets.items():   # n times the scenes, every epoch count as committed: n times the steps
        assert ov == {'n_scenes': int(k.split('_x')[1]) * base.n_scenes}
    assert not set(budgets) & set(K.SCREEN) and set(budgets) | set(K.SCREEN) == set(K.KNOBS)
