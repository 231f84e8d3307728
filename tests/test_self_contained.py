"""The project names no file outside its own repository: no notebook (cells and outputs), README, docs config,
library module or tool points to the team's background files, to `../shared`, or to a machine path."""
import json, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
# files outside the repository that earlier drafts pointed to
OUTSIDE = re.compile(r"\.\./shared|shared/reference|\b(?:paper|sar_physics|peers|DESIGN|toolchain)\.md\b")
# absolute paths of the machine that ran a notebook (only searched in outputs)
MACHINE = re.compile(r"(?<![\w.~])/(?:work|root|tmp)/[\w.-]+(?:/[\w.-]+)*")

def _files():
    fs = [*sorted((ROOT/'nbs').glob('*.ipynb')), ROOT/'README.md', ROOT/'nbs'/'_quarto.yml', ROOT/'nbs'/'sidebar.yml',
          *sorted((ROOT/'sarvlm').glob('*.py')), *sorted((ROOT/'tools').glob('*.py'))]
    return [f for f in fs if f.exists()]

def _texts(path:Path):
    "(where, text, is_output) for each piece of `path`: every cell's source and outputs, or the whole file."
    if path.suffix != '.ipynb':
        yield path.name, path.read_text(encoding='utf-8'), False
        return
    for i, c in enumerate(json.loads(path.read_text(encoding='utf-8'))['cells']):
        src = c['source'] if isinstance(c['source'], str) else ''.join(c['source'])
        yield f"{path.name} cell {i} ({c['cell_type']})", src, False
        for o in c.get('outputs', []):
            yield f"{path.name} cell {i} output", json.dumps(o, ensure_ascii=False), True

def outside_refs(path:Path) -> list:
    "Every reference in `path` to a file outside the repository, as 'where: match'."
    out = []
    for where, text, is_out in _texts(path):
        pats = (OUTSIDE, MACHINE) if is_out else (OUTSIDE,)
        out += [f"{where}: {m.group(0)!r}" for p in pats for m in p.finditer(text)]
    return out

@pytest.mark.parametrize('path', _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_names_no_path_outside_the_repository(path):
    found = outside_refs(path)
    assert not found, (f"{path.relative_to(ROOT)} names {len(found)} path(s) outside the repository; link a page of the "
                       f"project instead (nbs/paper_notes.ipynb, nbs/sar_background.ipynb):\n" + '\n'.join(found[:20]))

def test_the_guard_sees_what_it_must(tmp_path):
    nb = {'cells': [{'cell_type': 'markdown', 'source': 'see `../shared/reference/paper.md` §4', 'metadata': {}},
                    {'cell_type': 'code', 'source': 'x = 1', 'metadata': {},
                     'outputs': [{'output_type': 'stream', 'name': 'stdout', 'text': 'saved /tmp/abc/x.json\n'}]}]}
    p = tmp_path/'t.ipynb'; p.write_text(json.dumps(nb))
    assert len(outside_refs(p)) == 3          # ../shared, paper.md, /tmp/ in the output
    clean = tmp_path/'c.ipynb'
    clean.write_text(json.dumps({'cells': [{'cell_type': 'markdown', 'metadata': {},
                                            'source': 'see [paper notes](paper_notes.ipynb); /tmp in prose is fine'}]}))
    assert outside_refs(clean) == []
