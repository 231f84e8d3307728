"The project's layout: notebooks and library agree, every notebook has its badge, README is generated."
import json, re, subprocess, sys, importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = sorted((ROOT/'nbs').glob('[0-9][0-9]*_*.ipynb'))

def _cells(nb): return json.loads(nb.read_text(encoding='utf-8'))['cells']
def _src(c): return ''.join(c['source']) if isinstance(c['source'], list) else c['source']

def test_there_are_notebooks():
    assert len(NBS) >= 2, NBS

def test_each_notebook_exports_one_importable_module():
    for nb in NBS:
        mods = [m for c in _cells(nb) if c['cell_type'] == 'code' for m in re.findall(r'^#\|\s*default_exp\s+(\S+)', _src(c), re.M)]
        assert len(mods) == 1, f"{nb.name}: expected one `#| default_exp`, found {mods}"
        importlib.import_module(f'sarvlm.{mods[0]}')

def test_each_notebook_opens_with_a_title_and_colab_badge():
    for nb in NBS + [ROOT/'nbs'/'index.ipynb']:
        first = _src(_cells(nb)[0])
        assert first.lstrip().startswith('# '), f"{nb.name}: first cell must be a markdown title"
        assert f'colab.research.google.com/github/sarvlm/sarvlm/blob/main/nbs/{nb.name}' in first, f"{nb.name}: no Colab badge"

def test_notebooks_have_no_error_outputs():
    for nb in NBS:
        for i, c in enumerate(_cells(nb)):
            for o in c.get('outputs', []):
                assert o.get('output_type') != 'error', f"{nb.name} cell {i} has an error output: {o.get('ename')}"

def test_readme_is_generated_from_index():
    r = subprocess.run([sys.executable, str(ROOT/'tools'/'make_readme.py'), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

def test_each_notebook_has_the_colab_install_cell():
    "A hidden cell that installs sarvlm on Colab only (a no-op elsewhere), before anything imports sarvlm."
    for nb in NBS:
        cells = [c for c in _cells(nb) if c['cell_type'] == 'code']
        i = next((k for k, c in enumerate(cells) if "'google.colab' in sys.modules" in _src(c)), None)
        assert i is not None, f"{nb.name}: no Colab-only install cell"
        assert _src(cells[i]).startswith('#| hide'), f"{nb.name}: the Colab install cell must be hidden (#| hide)"
        first_import = next((k for k, c in enumerate(cells) if re.search(r'^(from|import) sarvlm', _src(c), re.M)), len(cells))
        assert i < first_import, f"{nb.name}: the Colab install cell comes after sarvlm is imported"

def test_console_scripts_are_declared_and_installed():
    import configparser, shutil
    cfg = configparser.ConfigParser(); cfg.read(ROOT/'settings.ini')
    scripts = dict(s.split('=', 1) for s in cfg['DEFAULT'].get('console_scripts', '').split())
    assert set(scripts) == {'sarvlm_data', 'sarvlm_train', 'sarvlm_eval', 'sarvlm_reproduce'}, scripts
    for name, target in scripts.items():
        mod, fn = target.split(':')
        assert callable(getattr(importlib.import_module(mod), fn)), f"{name}: {target} is not a function"
        assert shutil.which(name, path=str(Path(sys.executable).parent)), f"{name} is not installed next to {sys.executable}"
