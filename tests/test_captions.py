"Caption families: plurals, determinism, and the parser-based consistency check over many scenes (sar_physics.md §6.4 X3)."
import json, os, re
import numpy as np
import pytest
from sarvlm import captions as C
from sarvlm import caption_check as K
from sarvlm.core import is_small

N = 150 if is_small() else 1000   # annotations per check (x 3 domains x 5 captions)


def test_plurals_and_counts():
    v = C.load_vocabulary()
    assert [C.pluralize(w) for w in ['ship', 'bus', 'harbour', 'aircraft', 'lorry', 'storage tank']] == \
           ['ships', 'buses', 'harbours', 'aircraft', 'lorries', 'storage tanks']
    rng = np.random.default_rng(0)
    for n in range(1, 15):
        for cls in v.classes:
            p = C.count_phrase(n, cls, rng, v, 'digits')
            sing, plur = zip(*v.forms(cls))
            assert p.startswith(f'{n} ') and p[len(str(n))+1:] in (sing if n == 1 else plur), p


def test_five_distinct_deterministic_per_domain():
    a = C.random_boxes(3)
    for d in C.DOMAINS:
        caps = C.captions_for(a, d, 7)
        assert len(caps) == 5 and len(set(caps)) == 5 and caps == C.captions_for(a, d, 7)
    assert all('SAR' in c or 'radar' in c for c in C.captions_for(a, 'sar', 1) if 'image' in c.lower() or 'view' in c.lower())
    assert C.captions_for(a, 'sar', 1) != C.captions_for(a, 'optical', 1)


def test_paper_examples_parse_and_check():
    boxes = [{'cls': 'ship', 'bbox': [50, 2, 60, 8]}] + [{'cls': 'tank', 'bbox': [i, 40, i+3, 43]} for i in range(0, 42, 3)] \
          + [{'cls': 'bridge', 'bbox': [i, 56, i+8, 60]} for i in (0, 20, 40)]
    a = C.from_boxes(boxes, (64, 64))
    assert K.check_caption('This is a SAR view that includes 1 ship, 14 tanks and 3 bridges.', a, complete=True) == []
    assert K.check_caption('This is a SAR view that includes 1 ship, 13 tanks and 3 bridges.', a) != []
    assert K.check_caption('This is a SAR view that includes 1 ship and 14 tanks.', a, complete=True) != []
    assert K.check_caption('In this SAR image, 1 ship located in the upper right is positioned above the 3 bridges.', a) == []
    assert K.check_caption('In this SAR image, 1 ship located in the upper right is positioned below the 3 bridges.', a) != []
    assert K.check_caption('A SAR image of 1 ship located in the lower left of the image.', a) != []
    assert K.check_caption('A radar image of the T-72 tank acquired by a SAR sensor.', C.from_label('T72')) == []
    assert K.check_caption('A radar image of the T-62 tank acquired by a SAR sensor.', C.from_label('T72')) != []


def test_check_random_boxes_all_consistent_and_mutants_caught():
    res = K.check_many([C.random_boxes(s) for s in range(N)], seed=1)
    assert res['captions'] == 15 * N
    assert res['inconsistent'] == 0, res['examples'][:5]
    assert res['mutants'] > N and res['caught'] >= 0.95 * res['mutants'], (res['caught'], res['mutants'])


def test_check_generated_scenes():
    procgen = pytest.importorskip('sarvlm.procgen')
    sc = [procgen.random_scene(s, kind='chip' if s % 3 == 0 else 'scene') for s in range(N)]
    res = K.check_many(sc, seed=2)
    assert res['inconsistent'] == 0, res['examples'][:5]
    assert res['caught'] >= 0.95 * res['mutants']
    print(f"{res['captions']} captions on {N} scene graphs x 3 domains: 0 inconsistent; {res['caught']}/{res['mutants']} mutants caught")


def test_missing_data_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv('SARVLM_DATA', str(tmp_path))
    with pytest.raises(FileNotFoundError, match='templates.json'): C.load_caption_templates()
    with pytest.raises(FileNotFoundError, match='vocabulary.json'): C.load_vocabulary()


def test_data_files_are_valid_json_with_required_keys():
    from sarvlm.core import get_paths
    t = json.loads((get_paths().data/'captions'/'templates.json').read_text())
    v = json.loads((get_paths().data/'captions'/'vocabulary.json').read_text())
    assert set(C.DOMAINS) <= set(t['domains']) and set(C.FAMILIES) <= set(t['families'])
    for k in ('classes', 'landcover', 'regions', 'relations', 'numbers'): assert k in v
    assert set(v['regions']) == {r for row in C.REGION_GRID for r in row}
