"""Interrupted saves leave nothing that blocks or confuses the next run: a dataset build killed while saving (its
temp folder is removed by the next build, which says so) and an export killed while writing (no partial --out; the same
command then succeeds). The kills happen at named points through SARVLM_TEST_KILL (`sarvlm.core.kill_point`)."""
import os, sys, shutil, signal, subprocess
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SIZE = '20'   # the smallest sarvlm-mini with every split non-empty at seed 0

@pytest.fixture(scope='module')
def world(module_tmp):
    "A scratch project: a copy of data/ and an empty cache, for the console scripts run below."
    shutil.copytree(ROOT/'data', module_tmp/'data')
    return module_tmp

def data(world, *args, kill=None):
    "Run `sarvlm_data` (the console script, else `python -m sarvlm.cli`); returns (exit code, stdout + stderr)."
    exe = [str(BIN/'sarvlm_data')] if (BIN/'sarvlm_data').is_file() else [sys.executable, '-m', 'sarvlm.cli']
    env = dict(os.environ, SARVLM_DATA=str(world/'data'), SARVLM_CACHE=str(world/'cache'), HF_HUB_OFFLINE='1',
               HF_DATASETS_OFFLINE='1', OMP_NUM_THREADS='1', PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
    env.pop('SARVLM_TEST_KILL', None)
    if kill: env['SARVLM_TEST_KILL'] = kill
    r = subprocess.run([*exe, *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout + r.stderr

def data_here(world, capsys, *args):
    """The same command as `data`, through the console script's function (`sarvlm.cli.data_main`) in this process: for
    the runs that are not killed (a process start costs ~7 s of imports). Returns (exit code, stdout + stderr)."""
    from sarvlm.cli import data_main
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('SARVLM_DATA', str(world/'data'))
        mp.setenv('SARVLM_CACHE', str(world/'cache'))
        mp.delenv('SARVLM_TEST_KILL', raising=False)
        rc = data_main([*map(str, args)])
    out = capsys.readouterr()
    return rc, out.out + out.err

def temps(folder:Path) -> list: return sorted(p.name for p in folder.iterdir() if p.name.startswith('.tmp-'))

def test_build_killed_while_saving(world, capsys):
    rc, out = data(world, 'build', '--size', SIZE, kill='build-save')
    assert rc == -signal.SIGKILL, f'expected death by SIGKILL, got {rc}: {out[-1500:]}'
    cache = world/'cache'/'sarvlm-mini'
    left = temps(cache)
    assert len(left) == 1 and not [p for p in cache.iterdir() if not p.name.startswith('.')], left   # only the temp folder
    rc, out = data_here(world, capsys, 'build', '--size', SIZE)
    assert rc == 0, out[-2000:]
    assert f'removed 1 unfinished build folder(s) of ended processes' in out and str(cache) in out, out
    assert temps(cache) == [] and len([p for p in cache.iterdir() if (p/'build.json').is_file()]) == 1

@pytest.mark.parametrize('command', ['build', 'convert'])
def test_export_killed_while_writing(world, capsys, command):
    "A killed export leaves no --out (only a temp folder beside it); the same command then succeeds and removes the temp."
    out = world/f'out-{command}'
    args = (['build', '--size', SIZE, '--format', 'csv', '--split', 'test'] if command == 'build' else
            ['convert', world/'src'/'test.csv', '--to', 'hf'])
    if command == 'convert':
        src = data_here(world, capsys, 'build', '--size', SIZE, '--format', 'csv', '--split', 'test', '--out', world/'src')
        assert src[0] == 0, src[1][-2000:]
    rc, log = data(world, *args, '--out', out, kill='export')
    assert rc == -signal.SIGKILL, f'expected death by SIGKILL, got {rc}: {log[-1500:]}'
    assert not out.exists() and len(temps(world)) == 1 and temps(world)[0].startswith(f'.tmp-{out.name}-'), temps(world)
    rc, log = data_here(world, capsys, *args, '--out', out)
    assert rc == 0, log[-2000:]
    assert 'removed 1 unfinished export(s) of ended processes' in log and temps(world) == [], log
    assert (out/'test.csv').is_file() if command == 'build' else (out/'dataset_info.json').is_file()
