"Tests of sarvlm.core that need real processes: interrupted writes and the notebook runner."
import json, os, re, signal, subprocess, sys, time, textwrap
from pathlib import Path
import pytest
from sarvlm.core import atomic_write, get_paths
from sarvlm.reproduce import run_notebooks

def test_sigkill_during_write_keeps_saved_file(tmp_path):
    "A process killed with SIGKILL in the middle of an atomic write leaves the previous file intact."
    target = tmp_path/'weights.bin'
    target.write_bytes(b'saved by the user')
    code = textwrap.dedent(f"""
        import time, sys
        from sarvlm.core import atomic_write
        with atomic_write({str(target)!r}, 'wb') as f:
            f.write(b'x' * 1_000_000); f.flush()
            print('writing', flush=True)
            time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == 'writing'
    p.send_signal(signal.SIGKILL); p.wait(timeout=30)
    assert target.read_bytes() == b'saved by the user'

def test_paths_follow_environment(tmp_path, monkeypatch):
    for k in ('DATA', 'CACHE', 'RUNS', 'OUTPUTS'): monkeypatch.setenv(f'SARVLM_{k}', str(tmp_path/k.lower()))
    ps = get_paths(create=True)
    assert ps.runs == tmp_path/'runs' and ps.runs.is_dir() and ps.outputs.is_dir() and ps.cache.is_dir()

def _nb(cells):
    return {"cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": s} for s in cells],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}

def test_run_study_writes_copies_and_skips_network_cells(tmp_path):
    src = tmp_path/'nb.ipynb'
    src.write_text(json.dumps(_nb(["x = 1 + 1\nprint(x)", "#| eval: false\nraise RuntimeError('needs the network')"])))
    before = src.read_text()
    times = run_notebooks([src], tmp_path/'out', log=lambda s: None)
    assert set(times) == {'nb'}
    out = json.loads((tmp_path/'out'/'nb.ipynb').read_text())
    assert out['cells'][0]['outputs'][0]['text'] == ['2\n'] or ''.join(out['cells'][0]['outputs'][0]['text']) == '2\n'
    assert src.read_text() == before  # the user's notebook is never overwritten

def test_run_study_stops_on_error(tmp_path):
    src = tmp_path/'bad.ipynb'
    src.write_text(json.dumps(_nb(["raise ValueError('boom')"])))
    with pytest.raises(Exception, match='boom'): run_notebooks([src], tmp_path/'out', log=lambda s: None)

def test_run_study_reports_progress_while_a_notebook_runs(tmp_path):
    "A long notebook gets heartbeat lines naming it and its running time, and the time left shrinks as it runs."
    src = tmp_path/'slow.ipynb'
    src.write_text(json.dumps(_nb(["import time; time.sleep(6)"])))
    (tmp_path/'out').mkdir(); (tmp_path/'out'/'times.json').write_text(json.dumps({'seconds': {'slow': 100}}))
    lines = []
    run_notebooks([src], tmp_path/'out', log=lines.append, heartbeat=1)
    beats = [l for l in lines if l.startswith('[reproduce] running slow (')]
    assert len(beats) >= 2, lines
    left = [int(re.search(r'about 1 min (\d+) s to go', l).group(1)) for l in beats]
    assert left == sorted(left, reverse=True) and left[0] > left[-1], beats
