"""Write README.md from nbs/index.ipynb without Quarto.

nbdev's `nbdev_readme` renders through Quarto, which cannot be installed on every machine (it has no pip wheel).
This script does the same job for what index.ipynb holds: markdown cells verbatim, visible code cells as python
blocks with their text outputs; cells marked `#| hide` are left out. Relative links are rewritten for the
repository root, where README.md lives (`00_core.ipynb` -> `nbs/00_core.ipynb`, `../LICENSE` -> `LICENSE`).

    python tools/make_readme.py          # write README.md
    python tools/make_readme.py --check  # exit 1 if README.md is not what index.ipynb gives
"""
import re, sys, json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def _src(cell): return ''.join(cell['source']) if isinstance(cell['source'], list) else cell['source']

def _hidden(src): return any(l.strip().replace(' ', '') in ('#|hide', '#|include:false') for l in src.splitlines())

def _text_outputs(cell):
    out = []
    for o in cell.get('outputs', []):
        if o.get('output_type') == 'stream': out.append(''.join(o['text']))
        elif 'text/markdown' in o.get('data', {}): out.append(''.join(o['data']['text/markdown']))
        elif 'text/plain' in o.get('data', {}): out.append(''.join(o['data']['text/plain']))
    return '\n'.join(out).rstrip()

def root_links(md:str) -> str:
    "Relative links of nbs/index.ipynb as README.md at the root needs them: `x.ipynb` -> `nbs/x.ipynb`, `../X` -> `X`."
    md = re.sub(r'\]\((?!\w+:|/|#|\.\./)([^)\s]+\.ipynb(?:#[^)\s]*)?)\)', r'](nbs/\1)', md)
    return re.sub(r'\]\(\.\./([^)\s]+)\)', r'](\1)', md)

def render(nb_path=ROOT/'nbs'/'index.ipynb') -> str:
    nb = json.loads(Path(nb_path).read_text(encoding='utf-8'))
    parts = []
    for c in nb['cells']:
        s = _src(c)
        if c['cell_type'] == 'markdown': parts.append(root_links(s.strip()))
        elif c['cell_type'] == 'code' and not _hidden(s):
            body = '\n'.join(l for l in s.splitlines() if not l.startswith('#|')).strip()
            if body: parts.append(f"```python\n{body}\n```")
            out = _text_outputs(c)
            if out: parts.append(f"```\n{out}\n```")
    head = "<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file. -->"
    return head + '\n\n' + '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    text, readme = render(), ROOT/'README.md'
    if '--check' in sys.argv:
        if not readme.exists() or readme.read_text(encoding='utf-8') != text:
            print("README.md is not what nbs/index.ipynb gives: run `python tools/make_readme.py` and commit."); sys.exit(1)
        print("README.md matches nbs/index.ipynb")
    else:
        readme.write_text(text, encoding='utf-8'); print(f"wrote {readme}")
